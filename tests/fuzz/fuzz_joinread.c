/* libFuzzer target: gatehouse join's response reading, end to end. The input
 * is what a hostile server sends back (status line, headers, body, in any
 * framing); a server thread of this target writes it on a loopback TCP
 * connection and libcurl reads it as plain HTTP through the client's
 * limits. The first byte picks what the client does with it: a join reply,
 * a manifest, or a resource to fetch and decrypt. Whatever the bytes, the
 * client must return, stay within its limits and never crash. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"

static int listen_fd;
static char server_url[64];
static uint8_t *reply_p; /* this input's copy; NULL between inputs */
static size_t reply_n;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Sends the current input's reply, then reads the request away until the
 * client hangs up. A connection that comes late (after its input ended)
 * gets nothing: the reply is taken away under the lock when an input ends,
 * and sends never block with it held. */
static void *serve(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        char sink[4096];
        if (fd == -1)
            continue;
        pthread_mutex_lock(&mu);
        if (reply_p != NULL && send(fd, reply_p, reply_n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
            (void)0; /* the client may already have gone: its business */
        pthread_mutex_unlock(&mu);
        shutdown(fd, SHUT_WR);
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
        close(fd);
    }
    return NULL;
}

static void start(void)
{
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    pthread_t t;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd == -1 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
        listen(listen_fd, 8) == -1 || getsockname(listen_fd, (struct sockaddr *)&a, &l) == -1 ||
        jc_global_init() == -1 || pthread_create(&t, NULL, serve, NULL) != 0)
        abort();
    snprintf(server_url, sizeof(server_url), "http://127.0.0.1:%u", ntohs(a.sin_port));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct jc_options o = {server_url, NULL, NULL, NULL, 5, 1};
    struct jc_client *c;
    struct jc_reply r;
    char err[512];

    if (size < 1)
        return 0;
    if (!ready) {
        start();
        ready = 1;
    }
    pthread_mutex_lock(&mu);
    reply_p = malloc(size);
    if (reply_p == NULL)
        abort();
    memcpy(reply_p, data + 1, size - 1);
    reply_n = size - 1;
    pthread_mutex_unlock(&mu);
    c = jc_new(&o, err, sizeof(err));
    if (c == NULL)
        abort();
    switch (data[0] % 3) {
    case 0:
        if (jc_request(c, "POST", "/api/v1/meetings/join", NULL, "uri=x", JC_MAX_JSON_BYTES, &r,
                       err, sizeof(err)) == 0) {
            char *t = jc_json_field(r.body.p, r.body.len, "token");
            if (r.body.len > JC_MAX_JSON_BYTES)
                abort();
            free(t);
            jc_buf_free(&r.body);
        }
        break;
    case 1:
        if (jc_request(c, "GET", "/api/v1/meetings/manifest", "ab", NULL, JC_MAX_JSON_BYTES, &r,
                       err, sizeof(err)) == 0) {
            struct jc_manifest m;
            if (jc_manifest_parse(r.body.p, r.body.len, &m, err, sizeof(err)) == 0) {
                size_t i;
                for (i = 0; i < m.n; i++)
                    if (strncmp(m.res[i].path, "/api/v1/content/", 16) != 0 ||
                        m.res[i].size < 0 || m.res[i].stored < 0)
                        abort();
                jc_manifest_free(&m);
            }
            jc_buf_free(&r.body);
        }
        break;
    default: {
        struct jc_resource res;
        struct jc_buf plain;
        memset(&res, 0, sizeof(res));
        res.path = (char *)"/api/v1/content/0a";
        res.size = 64;
        res.stored = 4096;
        if (jc_fetch_resource(c, "ab", &res, &plain, err, sizeof(err)) == 0) {
            if (plain.len != 64)
                abort();
            jc_buf_free(&plain);
        }
        break;
    }
    }
    jc_free(c);
    pthread_mutex_lock(&mu);
    free(reply_p);
    reply_p = NULL;
    pthread_mutex_unlock(&mu);
    return 0;
}

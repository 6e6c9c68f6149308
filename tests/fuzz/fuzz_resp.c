/* What a Redis server (or anyone on the path to it) may answer: bytes fed
 * to the store's Redis engine as the replies to its hello and to one
 * operation of each kind, over a real loopback connection. Every
 * operation must be answered exactly once, nothing may crash or leak, and
 * memory stays bounded whatever the bytes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/common.h"
#include "store/store.h"

static int lfd = -1;
static char addr[64];

static void done(void *arg, const struct store_reply *r)
{
    int *n = arg;

    (void)r;
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store_conf k;
    struct store *s;
    struct store_conn *c;
    char err[128];
    int answered[5] = {0}, cfd, i;

    if (lfd == -1) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0 ||
            getsockname(lfd, (struct sockaddr *)&a, &l) != 0)
            abort();
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
        gh_log_level = GH_LOG_ERR - 1; /* quiet */
    }
    memset(&k, 0, sizeof(k));
    k.engine = STORE_REDIS;
    k.timeout_ms = 200;
    k.durable_replicas = 1;
    snprintf(k.address, sizeof(k.address), "%s", addr);
    snprintf(k.password, sizeof(k.password), "pw");
    s = store_new(&k, err, sizeof(err));
    c = store_conn_new(s);
    cfd = accept(lfd, NULL, NULL);
    if (store_get(c, "k", 1, done, &answered[0]) || store_take(c, "t", 1, done, &answered[1]) ||
        store_set(c, "s", 1, "v", 1, 1000, STORE_DURABLE, done, &answered[2]) ||
        store_incr(c, "i", 1, 1, 1000, done, &answered[3]) ||
        store_bucket(c, "b", 1, 60, 3, done, &answered[4]))
        abort();
    store_conn_io(c, POLLOUT); /* connected: the hello and the five go out */
    if (cfd >= 0) {
        size_t off = 0;
        while (off < size) {
            ssize_t n = write(cfd, data + off, size - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        shutdown(cfd, SHUT_WR); /* then the end: every operation gets its answer */
    }
    store_conn_wait(c, 2000);
    for (i = 0; i < 5; i++)
        if (answered[i] != 1)
            abort();
    store_conn_free(c);
    store_free(s);
    if (cfd >= 0)
        close(cfd);
    return 0;
}

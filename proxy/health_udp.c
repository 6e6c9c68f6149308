/*
 * Health checks of mode udp pools: `check send TEXT recv TEXT` over UDP.
 * A check sends the decoded send text as one datagram from a fresh socket
 * connected to the server's check port, and waits up to the check's
 * timeout for a datagram that starts with the decoded recv text. A fresh
 * socket per check (a new source port) means a late answer to an earlier
 * check can never pass for this one. A connected socket also hears the
 * ICMP port unreachable a stopped server's host sends back, so a dead
 * server fails at once instead of at the timeout. rise and fall apply as
 * for every check (health.c's apply()).
 */
#include "proxy_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The parser accepted only printable bytes and these escapes (conf_parse.c
 * check_text), so anything else cannot occur; it is copied as it is. */
size_t proxy__check_text(const char *text, unsigned char *out, size_t cap)
{
    size_t n = 0;
    const char *p = text;

    while (*p != '\0' && n < cap) {
        if (p[0] == '\\' && p[1] != '\0') {
            switch (p[1]) {
            case 'r':
                out[n++] = '\r';
                p += 2;
                continue;
            case 'n':
                out[n++] = '\n';
                p += 2;
                continue;
            case 't':
                out[n++] = '\t';
                p += 2;
                continue;
            case '\\':
                out[n++] = '\\';
                p += 2;
                continue;
            case 'x':
                if (gh_hexval((unsigned char)p[2]) >= 0 && gh_hexval((unsigned char)p[3]) >= 0) {
                    out[n++] = (unsigned char)(gh_hexval((unsigned char)p[2]) * 16 +
                                               gh_hexval((unsigned char)p[3]));
                    p += 4;
                    continue;
                }
                break;
            default:
                break;
            }
        }
        out[n++] = (unsigned char)*p++;
    }
    return n;
}

int proxy__check_udp(const struct proxy_service *svc, const struct proxy_server *srv, char *res,
                     size_t rlen)
{
    const struct gh_conf_check *k = &svc->conf->check;
    unsigned char want[512], send_buf[512], buf[2048];
    struct sockaddr_storage ss = srv->ss;
    size_t nwant, nsend;
    uint64_t deadline = gh_now_ms() + (uint64_t)k->timeout;
    int fd, ok = 0;

    if (k->send == NULL || k->recv == NULL) {
        snprintf(res, rlen, "a UDP pool is checked with send ... recv ...");
        return 0;
    }
    nsend = proxy__check_text(k->send, send_buf, sizeof(send_buf));
    nwant = proxy__check_text(k->recv, want, sizeof(want));
    if (ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons(srv->check_port);
    else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(srv->check_port);
    fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        snprintf(res, rlen, "socket: %s", strerror(errno));
        return 0;
    }
    if (connect(fd, (struct sockaddr *)&ss, srv->sslen) == -1 ||
        send(fd, send_buf, nsend, 0) != (ssize_t)nsend) {
        snprintf(res, rlen, "UDP send: %s", strerror(errno));
        goto done;
    }
    for (;;) {
        uint64_t now = gh_now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        int r = now >= deadline ? 0 : poll(&p, 1, (int)(deadline - now));

        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(res, rlen, "no UDP reply within %lld ms", k->timeout);
            goto done;
        }
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == -1) {
            /* ECONNREFUSED: an ICMP port unreachable, nothing listens there */
            snprintf(res, rlen, "UDP: %s", strerror(errno));
            goto done;
        }
        if ((size_t)n >= nwant && memcmp(buf, want, nwant) == 0) {
            snprintf(res, rlen, "UDP reply of %zd bytes", n);
            ok = 1;
        } else {
            snprintf(res, rlen, "UDP reply of %zd bytes does not start with the recv text", n);
        }
        goto done;
    }
done:
    close(fd);
    return ok;
}

/* make bench: UDP round trips through a proxy's `mode udp` / nginx `stream
 * ... udp` service. FLOWS sockets (one source port each, so one flow each
 * for the proxy) each send a datagram and wait for its echo before sending
 * the next, for SECONDS, on one thread. A datagram not echoed within 200 ms
 * counts as lost and the flow sends a fresh one, so a drop stalls a flow
 * only briefly and never ends the run. Prints "key value" lines for
 * bench.py: round trips per second, latency percentiles, losses.
 * Latencies go into a histogram of 1 us buckets (a matched echo is never
 * older than the 200 ms timeout plus one scan), so memory does not grow with
 * the run's length.
 * Usage: udp_load IP:PORT FLOWS SECONDS [SIZE] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "udp_addr.h"

#define RTO_NS 200000000LL
#define MAX_SIZE 65507
#define HIST_US 1000000         /* 1 s of 1 us buckets; later ones land in the last */
#define RECV_BURST 64           /* datagrams taken from one socket per wakeup */

struct flow {
    int fd;
    uint32_t seq;
    int64_t sent_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "udp_load: bad number %s (%ld..%ld)\n", s, lo, hi);
        exit(2);
    }
    return v;
}

/* Datagram i of a flow: its index and sequence number, then padding. */
static void send_one(struct flow *f, uint32_t idx, unsigned char *buf, size_t size,
                     long *send_errors)
{
    memcpy(buf, &idx, 4);
    memcpy(buf + 4, &f->seq, 4);
    f->sent_ns = now_ns();
    if (send(f->fd, buf, size, 0) != (ssize_t)size)
        (*send_errors)++;   /* ECONNREFUSED after an ICMP unreachable, or a full buffer */
}

/* The latency in ms below which a share q of the n samples of hist lie. */
static double hist_quantile(const uint32_t *hist, uint64_t n, double q)
{
    uint64_t want = (uint64_t)((double)n * q), seen = 0;

    for (size_t us = 0; us < HIST_US; us++) {
        seen += hist[us];
        if (seen > want)
            return (double)us / 1000.0;
    }
    return (double)(HIST_US - 1) / 1000.0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in to, local;
    struct epoll_event ev, evs[256];
    struct flow *flows;
    unsigned char *buf, rbuf[MAX_SIZE + 1];
    uint32_t *hist;
    uint64_t nlat = 0, lat_max_us = 0;
    size_t size = 128;
    long nflows, secs, lost = 0, stale = 0, send_errors = 0, icmp_errors = 0;
    int64_t t0, end, last_scan;
    int ep;

    if (argc < 4 || argc > 5 || parse_addr(argv[1], &to) == -1) {
        fprintf(stderr, "usage: udp_load IP:PORT FLOWS SECONDS [SIZE]\n");
        return 2;
    }
    nflows = parse_num(argv[2], 1, 60000);
    secs = parse_num(argv[3], 1, 3600);
    if (argc == 5)
        size = (size_t)parse_num(argv[4], 8, MAX_SIZE);
    flows = calloc((size_t)nflows, sizeof(*flows));
    buf = calloc(1, size);
    hist = calloc(HIST_US, sizeof(*hist));
    ep = epoll_create1(0);
    if (flows == NULL || buf == NULL || hist == NULL || ep == -1) {
        perror("udp_load");
        return 1;
    }
    memset(buf, 'u', size);
    memset(&local, 0, sizeof(local));
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < nflows; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

        if (fd == -1 || bind(fd, (struct sockaddr *)&local, sizeof(local)) == -1 ||
            connect(fd, (struct sockaddr *)&to, sizeof(to)) == -1) {
            perror("udp_load: socket");
            return 1;
        }
        flows[i].fd = fd;
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
            perror("udp_load: epoll_ctl");
            return 1;
        }
    }
    t0 = now_ns();
    end = t0 + secs * 1000000000LL;
    last_scan = t0;
    for (long i = 0; i < nflows; i++)
        send_one(&flows[i], (uint32_t)i, buf, size, &send_errors);
    for (;;) {
        int64_t now;
        int n = epoll_wait(ep, evs, 256, 10);

        if (n == -1 && errno != EINTR) {
            perror("udp_load: epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            uint32_t idx = evs[k].data.u32;
            struct flow *f = &flows[idx];
            ssize_t got;

            /* at most RECV_BURST per wakeup: a peer flooding one socket
             * can neither starve the others nor hold the run past its end */
            for (int burst = 0; burst < RECV_BURST; burst++) {
                uint32_t ridx, rseq;
                int64_t t, us;

                got = recv(f->fd, rbuf, sizeof(rbuf), 0);
                if (got == -1) {
                    if (errno == ECONNREFUSED) {
                        icmp_errors++;  /* port unreachable: the timeout resends */
                        continue;
                    }
                    if (errno != EAGAIN && errno != EINTR) {
                        perror("udp_load: recv");
                        return 1;
                    }
                    break;
                }
                if ((size_t)got != size) {
                    stale++;    /* not one of ours: a runt or a datagram cut short */
                    continue;
                }
                memcpy(&ridx, rbuf, 4);
                memcpy(&rseq, rbuf + 4, 4);
                if (ridx != idx || rseq != f->seq) {
                    stale++;    /* the echo of a datagram already given up on */
                    continue;
                }
                t = now_ns();
                if (t >= end)
                    break;
                us = (t - f->sent_ns) / 1000;
                hist[us < HIST_US ? us : HIST_US - 1]++;
                if ((uint64_t)us > lat_max_us)
                    lat_max_us = (uint64_t)us;
                nlat++;
                f->seq++;
                send_one(f, idx, buf, size, &send_errors);
            }
        }
        now = now_ns();
        if (now >= end)
            break;
        if (now - last_scan >= 10000000LL) {
            last_scan = now;
            for (long i = 0; i < nflows; i++)
                if (now - flows[i].sent_ns > RTO_NS) {
                    lost++;
                    flows[i].seq++;
                    send_one(&flows[i], (uint32_t)i, buf, size, &send_errors);
                }
        }
    }
    {
        double elapsed = (double)(now_ns() - t0) / 1e9;
        double p50 = 0, p99 = 0;

        if (nlat > 0) {
            p50 = hist_quantile(hist, nlat, 0.50);
            p99 = hist_quantile(hist, nlat, 0.99);
        }
        printf("round_trips %llu\nseconds %.3f\nrate %.1f\np50_ms %.3f\np99_ms %.3f\n"
               "max_ms %.3f\nlost %ld\nstale %ld\nsend_errors %ld\nicmp_errors %ld\n",
               (unsigned long long)nlat, elapsed, (double)nlat / elapsed, p50, p99,
               (double)lat_max_us / 1000.0, lost, stale, send_errors, icmp_errors);
    }
    if (nlat == 0) {
        fprintf(stderr, "udp_load: no datagram came back from %s\n", argv[1]);
        return 1;
    }
    return 0;
}

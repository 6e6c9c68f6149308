/* make bench: a UDP echo server, the real server behind the `mode udp`
 * rows. Every datagram goes back whole to the address it came from, in
 * batches of up to 64 (recvmmsg/sendmmsg), on one blocking thread, so the
 * backends cost the load CPU as little as they can. It ends after
 * MAX_SECONDS (default 86400), or when the process that started it (bench.py)
 * is gone, so a bench that dies leaves no echo server behind for long.
 * Usage: udp_echo IP:PORT [MAX_SECONDS] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "udp_addr.h"

#define BATCH 64
#define DGRAM 65536

int main(int argc, char **argv)
{
    static unsigned char bufs[BATCH][DGRAM];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH], sa;
    struct timeval tick = { 1, 0 };
    long max_secs = 86400;
    pid_t parent = getppid();
    time_t end;
    char *stop;
    int fd;

    if (argc < 2 || argc > 3 || parse_addr(argv[1], &sa) == -1) {
        fprintf(stderr, "usage: udp_echo IP:PORT [MAX_SECONDS]\n");
        return 2;
    }
    if (argc == 3) {
        errno = 0;
        max_secs = strtol(argv[2], &stop, 10);
        if (errno != 0 || stop == argv[2] || *stop != '\0' || max_secs < 1 ||
            max_secs > 7 * 86400) {
            fprintf(stderr, "udp_echo: bad MAX_SECONDS %s (1..604800)\n", argv[2]);
            return 2;
        }
    }
    /* the parent's end is a SIGTERM; the getppid() test below covers a
     * parent gone before prctl took effect */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
        perror("udp_echo: prctl");
    end = time(NULL) + max_secs;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    /* a receive timeout, so the deadline and the parent are looked at
     * every second even when no datagram comes */
    if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) == -1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        perror("udp_echo");
        return 1;
    }
    while (time(NULL) < end && getppid() == parent) {
        int got, sent;

        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = DGRAM;
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        /* wait for one (at most a second), then take whatever else is queued */
        got = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (got == -1) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            perror("udp_echo: recvmmsg");
            return 1;
        }
        for (int i = 0; i < got; i++)
            iov[i].iov_len = msgs[i].msg_len;
        /* at most got calls: a datagram that cannot go is skipped */
        for (int done = 0; done < got; done += sent > 0 ? sent : 1) {
            sent = sendmmsg(fd, msgs + done, (unsigned)(got - done), 0);
            if (sent == -1 && errno != EINTR && errno != ECONNREFUSED && errno != EAGAIN)
                perror("udp_echo: sendmmsg");   /* that datagram is dropped, as UDP may */
        }
    }
    return 0;
}

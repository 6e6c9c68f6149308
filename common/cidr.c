/*
 * Address ranges written as ADDRESS or ADDRESS/PREFIX (IPv4 or IPv6), for
 * lists such as trusted-proxies. An IPv4-mapped IPv6 peer (::ffff:a.b.c.d)
 * matches the IPv4 range it stands for, since a dual-stack listener reports
 * IPv4 clients that way.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int gh_cidr_parse(const char *s, struct gh_cidr *out)
{
    char addr[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    long bits;
    int max;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, s, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = 6;
        max = 128;
    } else {
        return -1;
    }
    bits = max;
    if (slash != NULL && gh_parse_long(slash + 1, 0, max, &bits) == -1)
        return -1;
    out->bits = (int)bits;
    return 0;
}

static int prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
    int full = bits / 8, rest = bits % 8;

    if (memcmp(a, b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

int gh_cidr_match(const struct gh_cidr *c, const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const unsigned char *a;

    if (sa->sa_family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
        return c->family == 4 && prefix_eq(a, c->addr, c->bits);
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    a = (const unsigned char *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (c->family == 6)
        return prefix_eq(a, c->addr, c->bits);
    return memcmp(a, mapped, 12) == 0 && prefix_eq(a + 12, c->addr, c->bits);
}

/*
 * Virtual-host names: normalising what clients send (Host, the authority of
 * an absolute target, SNI) and matching it against a service's allowed list.
 * Matching works on normalised forms only, so "Meet.Example.COM.:443" and
 * "meet.example.com" are the same name and nothing else is.
 */
#include "rules.h"

#include <string.h>

/* What a name byte becomes: its lower case for a label character, '.' for
 * the separator, 0 for anything a name may not hold. One lookup a byte:
 * every request normalises its Host and SNI here. */
static const unsigned char name_byte[256] = {
    ['-'] = '-', ['_'] = '_', ['.'] = '.',
    ['0'] = '0', ['1'] = '1', ['2'] = '2', ['3'] = '3', ['4'] = '4',
    ['5'] = '5', ['6'] = '6', ['7'] = '7', ['8'] = '8', ['9'] = '9',
    ['a'] = 'a', ['b'] = 'b', ['c'] = 'c', ['d'] = 'd', ['e'] = 'e', ['f'] = 'f', ['g'] = 'g',
    ['h'] = 'h', ['i'] = 'i', ['j'] = 'j', ['k'] = 'k', ['l'] = 'l', ['m'] = 'm', ['n'] = 'n',
    ['o'] = 'o', ['p'] = 'p', ['q'] = 'q', ['r'] = 'r', ['s'] = 's', ['t'] = 't', ['u'] = 'u',
    ['v'] = 'v', ['w'] = 'w', ['x'] = 'x', ['y'] = 'y', ['z'] = 'z',
    ['A'] = 'a', ['B'] = 'b', ['C'] = 'c', ['D'] = 'd', ['E'] = 'e', ['F'] = 'f', ['G'] = 'g',
    ['H'] = 'h', ['I'] = 'i', ['J'] = 'j', ['K'] = 'k', ['L'] = 'l', ['M'] = 'm', ['N'] = 'n',
    ['O'] = 'o', ['P'] = 'p', ['Q'] = 'q', ['R'] = 'r', ['S'] = 's', ['T'] = 't', ['U'] = 'u',
    ['V'] = 'v', ['W'] = 'w', ['X'] = 'x', ['Y'] = 'y', ['Z'] = 'z',
};

int rules_host_norm(const char *in, size_t len, char *out, size_t outlen)
{
    size_t i, n = len;

    if (len == 0 || outlen < len + 1)
        return -1;
    if (in[0] == '[') {
        /* IPv6 literal: hex digits, ':' and '.' inside brackets. */
        const char *close = memchr(in, ']', len);
        size_t k;
        if (close == NULL)
            return -1;
        n = (size_t)(close - in) + 1;
        if (n < 4)
            return -1;
        for (k = 1; k + 1 < n; k++) {
            unsigned char c = (unsigned char)in[k];
            if (c >= 'A' && c <= 'F')
                c = (unsigned char)(c + 32);
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return -1;
            out[k] = (char)c;
        }
        out[0] = '[';
        out[n - 1] = ']';
        if (n < len) {
            if (in[n] != ':' || n + 1 == len)
                return -1;
            for (k = n + 1; k < len; k++)
                if (in[k] < '0' || in[k] > '9')
                    return -1;
        }
        out[n] = '\0';
        return 0;
    }
    {
        const char *colon = memchr(in, ':', len);
        if (colon != NULL) {
            size_t k;
            i = (size_t)(colon - in);
            if (i + 1 == len)
                return -1;
            for (k = i + 1; k < len; k++)
                if (in[k] < '0' || in[k] > '9')
                    return -1;
            n = i;
        }
    }
    if (n > 0 && in[n - 1] == '.')
        n--; /* the root label: "example.com." is "example.com" */
    if (n == 0 || n > 253)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned char c = name_byte[(unsigned char)in[i]];
        if (c == 0)
            return -1;
        if (c == '.' && (i == 0 || out[i - 1] == '.'))
            return -1; /* empty label */
        out[i] = (char)c;
    }
    if (out[n - 1] == '.')
        return -1;
    out[n] = '\0';
    return 0;
}

int rules_host_match(char *const *pats, size_t n, const char *name)
{
    size_t i, nl = strlen(name);

    for (i = 0; i < n; i++) {
        const char *p = pats[i];
        if (p[0] == '*' && p[1] == '\0')
            return 1;
        if (p[0] == '*' && p[1] == '.') {
            size_t sl = strlen(p + 1); /* ".example.com" */
            if (nl > sl && strcmp(name + nl - sl, p + 1) == 0 &&
                memchr(name, '.', nl - sl) == NULL)
                return 1;
            continue;
        }
        if (strcmp(p, name) == 0)
            return 1;
    }
    return 0;
}

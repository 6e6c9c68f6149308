/* Allowed virtual directories: globs as the seeds write them ("/abs/" then a star),
 * matched against the normalised path, which is also what is forwarded.
 * IIS treats paths without regard to case, and its clients send
 * "/Autodiscover/..." or "/ABS/...": allowed-dirs-case insensitive matches
 * those against lower-case patterns and forwards the path unchanged. */
#include "rules.h"

static int same(char a, char b, int nocase)
{
    if (nocase) {
        a = (a >= 'A' && a <= 'Z') ? (char)(a + 32) : a;
        b = (b >= 'A' && b <= 'Z') ? (char)(b + 32) : b;
    }
    return a == b;
}

/* nocase folds ASCII letters only: the normalised path holds no other
 * letters (bytes past 0x7e stay percent-encoded); it also lets an escape
 * written "%2f" in a pattern meet the normaliser's upper-case "%2F". */
static int glob(const char *pat, const char *s, size_t slen, int nocase)
{
    size_t i = 0, star_p = (size_t)-1, star_s = 0;
    const char *p = pat;

    /* Iterative wildcard match with one backtrack point: linear for the
     * single-star patterns the seeds use, and never exponential. */
    while (i < slen) {
        if (*p == '*') {
            star_p = (size_t)(p - pat);
            star_s = i;
            p++;
        } else if (*p != '\0' && same(*p, s[i], nocase)) {
            p++;
            i++;
        } else if (star_p != (size_t)-1) {
            p = pat + star_p + 1;
            i = ++star_s;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

int rules_glob_match(const char *pat, const char *s, size_t slen)
{
    return glob(pat, s, slen, 0);
}

int rules_glob_match_nocase(const char *pat, const char *s, size_t slen)
{
    return glob(pat, s, slen, 1);
}

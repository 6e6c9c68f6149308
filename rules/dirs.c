/* Allowed virtual directories: globs as the seeds write them ("/abs/" then a star),
 * matched against the normalised path, which is also what is forwarded. */
#include "rules.h"

int rules_glob_match(const char *pat, const char *s, size_t slen)
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
        } else if (*p != '\0' && *p == s[i]) {
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

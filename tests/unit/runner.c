/* Runs every test in list.h; each test counts as passed when it added no
 * failure. Ends with "N passed, N failed" like the rest of the suite. */
#include <stdio.h>
#include <string.h>

#include "unit.h"

int unit_failures;

#define X(name) void test_##name(void);
#include "list.h"
#undef X

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
#define X(name) {#name, test_##name},
#include "list.h"
#undef X
};

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    size_t i;

    for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        int before = unit_failures;
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL)
            continue;
        tests[i].fn();
        if (unit_failures == before) {
            passed++;
            printf("ok   unit/%s\n", tests[i].name);
        } else {
            failed++;
            printf("FAIL unit/%s\n", tests[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

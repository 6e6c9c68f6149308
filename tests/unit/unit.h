/* A small test runner: TEST(name) defines a test, CHECK* report file:line. */
#ifndef GH_TESTS_UNIT_H
#define GH_TESTS_UNIT_H

#include <stdio.h>
#include <string.h>

extern int unit_failures;

#define TEST(name) void test_##name(void); void test_##name(void)
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);              \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)
#define CHECK_EQ(a, b, ctx)                                                                        \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: [%s] %s == %lld, expected %lld\n", __FILE__, __LINE__, (ctx), \
                    #a, a_, b_);                                                                   \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)
#define CHECK_STR(a, b, ctx)                                                                       \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || strcmp(a_, b_) != 0) {                                                   \
            fprintf(stderr, "%s:%d: [%s] %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__,    \
                    (ctx), #a, a_ ? a_ : "(null)", b_);                                            \
            unit_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#endif

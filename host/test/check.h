/* check.h - the C unit tests' tiny assertion kit.
 *
 * Each test file is one executable registered with ctest. CHECK records a
 * failure with file and line and goes on, so one run reports every broken
 * case; check_done() prints "N passed, M failed" for the file and returns the
 * exit status ctest reads. */
#ifndef CCHOST_CHECK_H
#define CCHOST_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (cond) {                                                          \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *check_a_ = (a), *check_b_ = (b);                         \
        if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) {       \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    check_a_ ? check_a_ : "(null)",                          \
                    check_b_ ? check_b_ : "(null)");                         \
        }                                                                    \
    } while (0)

static inline int check_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif

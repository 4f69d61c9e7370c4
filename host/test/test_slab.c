/* test_slab.c - slab.c: objects are zeroed, distinct and dense; freed slots
 * are reused first; chunks go back to the kernel once empty, but one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../slab.h"
#include "check.h"

#define N 2000

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

int main(void) {
    static slab_t s = SLAB_INIT(248);
    CHECK(s.size == 256);
    static unsigned char *obj[N];
    int zeroed = 1, aligned = 1;
    for (int i = 0; i < N; i++) {
        obj[i] = slab_alloc(&s);
        if (!obj[i]) break;
        zeroed &= all_zero(obj[i], 248);
        aligned &= ((uintptr_t)obj[i] % 16) == 0;
        memset(obj[i], 0xA5, 248); /* dirty it, so reuse must zero it again */
    }
    CHECK(obj[N - 1] != NULL);
    CHECK(zeroed);
    CHECK(aligned);
    /* 255 objects of 256 bytes per 64 KiB chunk: 2000 need 8 chunks */
    CHECK(s.chunks == 8);
    /* no two objects overlap: sorted, each starts at least 256 bytes after the last */
    int apart = 1;
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0 && obj[j - 1] > obj[j]; j--) {
            unsigned char *t = obj[j];
            obj[j] = obj[j - 1];
            obj[j - 1] = t;
        }
    for (int i = 1; i < N; i++) apart &= obj[i] - obj[i - 1] >= 256;
    CHECK(apart);

    /* A freed slot is the next one handed out, zeroed again. */
    unsigned char *victim = obj[777];
    slab_free(&s, victim);
    unsigned char *again = slab_alloc(&s);
    CHECK(again == victim);
    CHECK(all_zero(again, 248));
    CHECK(s.chunks == 8);

    /* Freeing everything unmaps every chunk but the one kept. */
    for (int i = 0; i < N; i++) slab_free(&s, obj[i]);
    CHECK(s.chunks == 1);
    CHECK(s.partial == NULL);
    slab_free(&s, NULL); /* a no-op */

    /* The kept chunk serves the next object; one object opening and closing
     * keeps one chunk mapped, not a map and unmap each time. */
    for (int i = 0; i < 100; i++) {
        unsigned char *p = slab_alloc(&s);
        CHECK(p != NULL && all_zero(p, 248));
        slab_free(&s, p);
    }
    CHECK(s.chunks == 1);
    return check_done("test_slab");
}

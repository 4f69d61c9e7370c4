/* slab.h - pools of one object size, kept apart from the heap, for objects
 * that live long next to many that do not.
 *
 * An open WebSocket keeps three small objects for hours (its libuv handle,
 * its protocol state, its fan-out entry), while the HTTP request that opened
 * it used several KiB for milliseconds. From one heap, each long-lived
 * object pins the page of the short-lived ones freed around it: after a
 * burst of 10 000 upgrades the heap stayed twice the size of what was live,
 * and no trim could give the pages back. A slab keeps its objects densely in
 * 64 KiB chunks of its own (mmap), reuses freed slots first, and unmaps a
 * chunk when its last object is freed (keeping one empty chunk, so a single
 * object opening and closing does not map and unmap each time).
 *
 * One loop thread per slab: nothing here locks. */
#ifndef CCHOST_SLAB_H
#define CCHOST_SLAB_H

#include <stddef.h>

typedef struct slab_chunk slab_chunk_t;

/* A pool: static slab_t s = SLAB_INIT(sizeof(T)); at most a quarter of a
 * chunk per object. */
typedef struct {
    size_t size;           /* object size, rounded up to 16 */
    slab_chunk_t *partial; /* chunks with a free slot, most recently freed into first */
    slab_chunk_t *empty;   /* the one empty chunk kept, or NULL */
    size_t chunks;         /* mapped, the kept empty one included */
} slab_t;

#define SLAB_INIT(object_size) {.size = ((object_size) + 15) & ~(size_t)15}

/* A zeroed object, or NULL when no memory can be mapped. */
void *slab_alloc(slab_t *s);

/* Gives p (from slab_alloc on s, or NULL) back. */
void slab_free(slab_t *s, void *p);

#endif

/* slab.c - fixed-size object pools in 64 KiB chunks of their own (slab.h).
 *
 * A chunk is mapped aligned to its size, so an object finds its chunk by
 * masking its address; the chunk's header holds its free list (the links
 * live in the free slots themselves), its count of objects in use and its
 * place on the slab's list of chunks with room. */
#include "slab.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define CHUNK (64 * 1024)

typedef struct slot {
    struct slot *next;
} slot_t;

struct slab_chunk {
    slab_chunk_t *prev, *next; /* on the slab's partial list */
    slot_t *free;              /* freed slots, most recent first */
    unsigned used;             /* objects handed out */
    unsigned fresh;            /* slots never handed out start at this index */
    int listed;                /* on the partial list */
};

#define HEADER ((sizeof(slab_chunk_t) + 15) & ~(size_t)15)

static unsigned slab__per_chunk(const slab_t *s) { return (unsigned)((CHUNK - HEADER) / s->size); }

static slab_chunk_t *slab__chunk_of(void *p) { return (slab_chunk_t *)((uintptr_t)p & ~(uintptr_t)(CHUNK - 1)); }

/* A new chunk aligned to CHUNK: twice the size is mapped and the ends cut. */
static slab_chunk_t *slab__map(void) {
    char *m = mmap(NULL, 2 * CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    char *aligned = (char *)(((uintptr_t)m + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1));
    if (aligned > m) munmap(m, (size_t)(aligned - m));
    if (aligned + CHUNK < m + 2 * CHUNK) munmap(aligned + CHUNK, (size_t)(m + 2 * CHUNK - (aligned + CHUNK)));
    return (slab_chunk_t *)aligned; /* fresh anonymous memory is zero: the header is ready */
}

static void slab__list(slab_t *s, slab_chunk_t *c) {
    c->prev = NULL;
    c->next = s->partial;
    if (s->partial) s->partial->prev = c;
    s->partial = c;
    c->listed = 1;
}

static void slab__unlist(slab_t *s, slab_chunk_t *c) {
    if (c->prev) c->prev->next = c->next;
    else s->partial = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->listed = 0;
}

void *slab_alloc(slab_t *s) {
    slab_chunk_t *c = s->partial;
    if (!c) {
        if (s->empty) {
            c = s->empty;
            s->empty = NULL;
        } else {
            if (!(c = slab__map())) return NULL;
            s->chunks++;
        }
        slab__list(s, c);
    }
    void *p;
    if (c->free) {
        p = c->free;
        c->free = c->free->next;
        memset(p, 0, s->size);
    } else {
        p = (char *)c + HEADER + (size_t)c->fresh++ * s->size; /* never used: still zero */
    }
    if (++c->used == slab__per_chunk(s)) slab__unlist(s, c);
    return p;
}

void slab_free(slab_t *s, void *p) {
    if (!p) return;
    slab_chunk_t *c = slab__chunk_of(p);
    slot_t *slot = p;
    slot->next = c->free;
    c->free = slot;
    c->used--;
    if (c->used > 0) {
        if (!c->listed) slab__list(s, c);
        return;
    }
    if (c->listed) slab__unlist(s, c);
    if (!s->empty) {
        s->empty = c; /* kept, its slots on its free list */
        return;
    }
    munmap(c, CHUNK);
    s->chunks--;
}

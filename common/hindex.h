/* SPDX-License-Identifier: BSD-2-Clause */
/* An open-addressed hash index of the owner's items: one array of
 * (64-bit hash, pointer) slots, linear probing, backward-shift deletion.
 *
 * Two users on qdbd's request path: the in-memory store's point lookups
 * (storage/memory.c) and the node's reply memory (node/serve.c, dedup).
 * Both had a GHashTable, which keeps hashes and keys in two arrays and
 * compares through a callback: a lookup read two cold lines of the table and
 * then the item, and under make bench's load (100,000 keys) the store index
 * alone was 18% of qdbd's CPU.  Here the hash and the pointer share a slot
 * (four to a cache line), so a lookup reads one line of the table, and the
 * item only when the full 64-bit hash matches.  The caller compares the
 * items itself (no callback): qdb_hindex_next() yields the candidates.
 *
 * The index never looks at the items and never owns them.  It may hold
 * equal hashes (different items whose hashes collide) and even the same
 * item twice; the owner decides what equality means.  It has no iteration
 * over its contents, so nothing can depend on its order.
 *
 * Slots are placed by the hash's top bits after a multiplication (Fibonacci
 * hashing), so hashes with poor low bits still spread.  Storage grows by
 * doubling from 16 slots past 3/4 full and halves below 1/8 (never under 16
 * slots); an empty index holds no storage at all.  Single-threaded.
 *
 * Header-only (static inline): it is used by the node library and by the
 * storage library, which are linked into programs in different orders, and
 * the lookup belongs inlined in its caller's loop anyway.
 */
#ifndef QDB_HINDEX_H
#define QDB_HINDEX_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct qdb_hindex_slot {
    uint64_t hash;
    void *item; /* NULL: the slot is free */
} qdb_hindex_slot;

/* Embedded by value in its owner; zero-initialised (or qdb_hindex_init) is
 * an empty index.  The fields are private: use the functions. */
typedef struct qdb_hindex {
    qdb_hindex_slot *slots; /* NULL while no slot was ever needed */
    unsigned shift;         /* 64 - log2(slots) */
    size_t mask;            /* slots - 1 */
    size_t count;
} qdb_hindex;

#define QDB_HINDEX_MIN 16

static inline void qdb_hindex_init(qdb_hindex *ix)
{
    *ix = (qdb_hindex){0};
}

/* Frees the slots; the items are the owner's. */
static inline void qdb_hindex_clear(qdb_hindex *ix)
{
    g_free(ix->slots);
    qdb_hindex_init(ix);
}

static inline size_t qdb_hindex_count(const qdb_hindex *ix)
{
    return ix->count;
}

/* Slots allocated (0 for an empty index): for tests and memory estimates. */
static inline size_t qdb_hindex_capacity(const qdb_hindex *ix)
{
    return ix->slots ? ix->mask + 1 : 0;
}

static inline size_t qdb_hindex_home(const qdb_hindex *ix, uint64_t hash)
{
    return (size_t)((hash * UINT64_C(0x9E3779B97F4A7C15)) >> ix->shift);
}

/* The items added with this hash, one per call: *pos starts at 0 and is
 * the caller's cursor; NULL when there are no more.  Valid until the index
 * is changed. */
static inline void *qdb_hindex_next(const qdb_hindex *ix, uint64_t hash, size_t *pos)
{
    if (ix->slots == NULL)
        return NULL;
    for (;;) {
        const qdb_hindex_slot *s = &ix->slots[(qdb_hindex_home(ix, hash) + *pos) & ix->mask];
        if (s->item == NULL)
            return NULL;
        ++*pos;
        if (s->hash == hash)
            return s->item;
    }
}

/* Start fetching the first slot this hash would probe: a caller that knows
 * its next lookups (a pipelined batch) overlaps their cache misses. */
static inline void qdb_hindex_prefetch(const qdb_hindex *ix, uint64_t hash)
{
    if (ix->slots != NULL)
        __builtin_prefetch(&ix->slots[qdb_hindex_home(ix, hash)]);
}

/* Rebuild with 2^bits slots, moving every item by its stored hash. */
static inline void qdb_hindex_resize(qdb_hindex *ix, unsigned bits)
{
    qdb_hindex old = *ix;
    ix->slots = g_new0(qdb_hindex_slot, (size_t)1 << bits);
    ix->shift = 64 - bits;
    ix->mask = ((size_t)1 << bits) - 1;
    for (size_t i = 0; old.slots != NULL && i <= old.mask; i++) {
        if (old.slots[i].item == NULL)
            continue;
        size_t j = qdb_hindex_home(ix, old.slots[i].hash);
        while (ix->slots[j].item != NULL)
            j = (j + 1) & ix->mask;
        ix->slots[j] = old.slots[i];
    }
    g_free(old.slots);
}

static inline unsigned qdb_hindex_bits(const qdb_hindex *ix)
{
    return 64 - ix->shift;
}

/* Add item (not NULL) under hash.  O(1) amortised. */
static inline void qdb_hindex_add(qdb_hindex *ix, uint64_t hash, void *item)
{
    g_return_if_fail(item != NULL);
    if (ix->slots == NULL)
        qdb_hindex_resize(ix, 4); /* QDB_HINDEX_MIN slots */
    else if ((ix->count + 1) * 4 > (ix->mask + 1) * 3)
        qdb_hindex_resize(ix, qdb_hindex_bits(ix) + 1);
    size_t j = qdb_hindex_home(ix, hash);
    while (ix->slots[j].item != NULL)
        j = (j + 1) & ix->mask;
    ix->slots[j] = (qdb_hindex_slot){hash, item};
    ix->count++;
}

/* Remove this item (the pointer, added under this hash).  False if it is
 * not there.  The slots after it that probed past it move back, so no
 * tombstone is left and lookups stay short. */
static inline bool qdb_hindex_remove(qdb_hindex *ix, uint64_t hash, const void *item)
{
    if (ix->slots == NULL || item == NULL)
        return false;
    size_t i = qdb_hindex_home(ix, hash);
    while (ix->slots[i].item != item) {
        if (ix->slots[i].item == NULL)
            return false;
        i = (i + 1) & ix->mask;
    }
    /* Backward shift: slot j may fill the hole at i unless its home lies
     * cyclically in (i, j] (it would then be moved before its home). */
    for (size_t j = (i + 1) & ix->mask; ix->slots[j].item != NULL; j = (j + 1) & ix->mask) {
        size_t home = qdb_hindex_home(ix, ix->slots[j].hash);
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i] = (qdb_hindex_slot){0, NULL};
    ix->count--;
    if (ix->mask + 1 > QDB_HINDEX_MIN && ix->count * 8 < ix->mask + 1)
        qdb_hindex_resize(ix, qdb_hindex_bits(ix) - 1);
    return true;
}

#endif

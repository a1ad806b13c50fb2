/* SPDX-License-Identifier: BSD-2-Clause */
/* A binary min-heap of small fixed-size entries ordered by (time, seq).
 *
 * Two users share it: the simulator's event queue (transport-sim/eventq.h,
 * its hottest path: millions of pushes and pops per run) and the real loop's
 * timers (transport-real/timers.h: endpoint deadlines and periodic
 * callbacks, which are re-armed and cancelled in place).
 *
 * Order: by time, then by seq, both compared as unsigned 64-bit integers.
 * The heap only compares; it never assigns a seq.  Its users give every
 * entry a distinct (time, seq) -- a counter incremented at each push -- so
 * the order is total and entries come out in exactly one order whatever
 * the heap's shape: that is what makes a simulation reproducible.
 *
 * Why a fixed entry and not a comparison callback: sift up/down are the
 * simulator's inner loop.  With the key at a known place the comparison is
 * two integer compares, inlined, and an entry moves as one 32-byte copy; a
 * callback per comparison (and a memcpy of a run-time size per move) would
 * cost a call per level.  ptr, kind and gen belong to the owner; the heap
 * carries them and never looks at them.
 *
 * Index tracking (optional): a heap made with a moved() hook calls it every
 * time an entry lands at a new position, and with QDB_HEAP_NONE when it
 * leaves the heap, so an owner can keep each entry's index in the object
 * its ptr points at and remove or re-key that entry in O(log n) without a
 * search (libevent's minheap-internal.h does the same with min_heap_idx).
 * A heap without the hook pays nothing for it: the choice is made once per
 * operation, not per level.
 *
 * Push, pop, remove and re-key are O(log n); top is O(1).  Storage grows by
 * doubling from 64 entries and is given back (halved) when a heap of more
 * than 1,024 slots is less than a quarter full, so a burst does not keep
 * its memory.  Entries are stored by value: no allocation per push.  Not
 * thread-safe.
 */
#ifndef QDB_HEAP_H
#define QDB_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The key first, so comparing two entries reads one cache line each. */
typedef struct qdb_heap_entry {
    uint64_t time;      /* primary key: any clock, as long as one per heap */
    uint64_t seq;       /* tie-break among equal times */
    void *ptr;          /* owner's payload */
    uint32_t kind;      /* owner's tag */
    uint32_t gen;       /* owner's generation (e.g. for lazy cancellation) */
} qdb_heap_entry;

/* The index moved() reports for an entry that left the heap. */
#define QDB_HEAP_NONE SIZE_MAX

/* Called with the entry at its new place (e is &heap->v[idx]) or, with
 * idx == QDB_HEAP_NONE, with a copy of an entry just removed.  It must not
 * touch the heap. */
typedef void (*qdb_heap_moved_fn)(const qdb_heap_entry *e, size_t idx, void *arg);

/* Embedded by value in its owner.  The fields are private: use the
 * functions below. */
typedef struct qdb_heap {
    qdb_heap_entry *v;
    size_t len, cap;
    qdb_heap_moved_fn moved;
    void *arg;
} qdb_heap;

/* moved may be NULL (no index tracking); arg is passed to it. */
void qdb_heap_init(qdb_heap *h, qdb_heap_moved_fn moved, void *arg);
/* Frees the storage; entries still held are dropped without moved() (their
 * owners are going away too).  The heap may be initialised again. */
void qdb_heap_clear(qdb_heap *h);

static inline size_t qdb_heap_len(const qdb_heap *h)
{
    return h->len;
}

/* The least entry, or NULL when empty.  Valid until the next change. */
static inline const qdb_heap_entry *qdb_heap_top(const qdb_heap *h)
{
    return h->len > 0 ? &h->v[0] : (const qdb_heap_entry *)NULL;
}

/* Entry idx (0 <= idx < len), in no particular order: for teardown walks
 * and tests, never for anything whose order matters. */
static inline const qdb_heap_entry *qdb_heap_at(const qdb_heap *h, size_t idx)
{
    return &h->v[idx];
}

void qdb_heap_push(qdb_heap *h, const qdb_heap_entry *e);
/* Remove the least entry into *out (out may be NULL).  The heap must not be
 * empty. */
void qdb_heap_pop(qdb_heap *h, qdb_heap_entry *out);
/* Remove the entry at idx (as reported by moved()) into *out (may be NULL). */
void qdb_heap_remove(qdb_heap *h, size_t idx, qdb_heap_entry *out);
/* Give the entry at idx a new key and restore the order. */
void qdb_heap_rekey(qdb_heap *h, size_t idx, uint64_t time, uint64_t seq);

/* Bytes held by the heap's storage (not by payloads). */
size_t qdb_heap_memory(const qdb_heap *h);

#endif

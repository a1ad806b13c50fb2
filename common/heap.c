/* SPDX-License-Identifier: BSD-2-Clause */
/* Binary min-heap on (time, seq); see heap.h.
 *
 * Sections: comparison and placement, sift up/down, storage, public API.
 * Sifting moves a "hole" instead of swapping, as libevent's minheap does:
 * one copy per level instead of three.  Each sift exists in two inlined
 * versions, chosen once per operation by whether the heap tracks indices,
 * so the simulator's untracked heap never tests for the hook in its loop.
 */
#include "config.h"

#include "heap.h"

#include <glib.h>

#define HEAP_MIN_CAP 64
#define HEAP_SHRINK_ABOVE 1024

/* ---- comparison and placement -------------------------------------------- */

static inline bool before(const qdb_heap_entry *a, const qdb_heap_entry *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

/* `track` is a constant at every call site (see the sifts' callers). */
static inline __attribute__((always_inline)) void
place(qdb_heap *h, size_t i, const qdb_heap_entry *e, bool track)
{
    h->v[i] = *e;
    if (track)
        h->moved(&h->v[i], i, h->arg);
}

/* ---- sift up / down --------------------------------------------------------- */

static inline __attribute__((always_inline)) void
sift_up(qdb_heap *h, size_t i, qdb_heap_entry e, bool track)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &h->v[parent]))
            break;
        place(h, i, &h->v[parent], track);
        i = parent;
    }
    place(h, i, &e, track);
}

static inline __attribute__((always_inline)) void
sift_down(qdb_heap *h, size_t i, qdb_heap_entry e, bool track)
{
    size_t len = h->len;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= len)
            break;
        if (child + 1 < len && before(&h->v[child + 1], &h->v[child]))
            child++;
        if (!before(&h->v[child], &e))
            break;
        place(h, i, &h->v[child], track);
        i = child;
    }
    place(h, i, &e, track);
}

/* Put e at i (a hole) and move it whichever way the order asks. */
static void settle_at(qdb_heap *h, size_t i, qdb_heap_entry e)
{
    bool up = i > 0 && before(&e, &h->v[(i - 1) / 2]);
    if (h->moved) {
        if (up)
            sift_up(h, i, e, true);
        else
            sift_down(h, i, e, true);
    } else {
        if (up)
            sift_up(h, i, e, false);
        else
            sift_down(h, i, e, false);
    }
}

/* ---- storage ------------------------------------------------------------------ */

/* Give memory back after a burst (a partition healing floods the
 * simulator's queue), with hysteresis so a heap oscillating around a size
 * does not thrash. */
static void maybe_shrink(qdb_heap *h)
{
    if (h->cap > HEAP_SHRINK_ABOVE && h->len < h->cap / 4) {
        h->cap /= 2;
        h->v = g_renew(qdb_heap_entry, h->v, h->cap);
    }
}

/* ---- public API ----------------------------------------------------------------- */

void qdb_heap_init(qdb_heap *h, qdb_heap_moved_fn moved, void *arg)
{
    h->len = 0;
    h->cap = HEAP_MIN_CAP;
    h->v = g_new(qdb_heap_entry, h->cap);
    h->moved = moved;
    h->arg = arg;
}

void qdb_heap_clear(qdb_heap *h)
{
    g_free(h->v);
    h->v = NULL;
    h->len = h->cap = 0;
}

void qdb_heap_push(qdb_heap *h, const qdb_heap_entry *e)
{
    if (h->len == h->cap) {
        h->cap = h->cap ? h->cap * 2 : HEAP_MIN_CAP;
        h->v = g_renew(qdb_heap_entry, h->v, h->cap);
    }
    size_t i = h->len++;
    if (h->moved)
        sift_up(h, i, *e, true);
    else
        sift_up(h, i, *e, false);
}

void qdb_heap_pop(qdb_heap *h, qdb_heap_entry *out)
{
    g_assert(h->len > 0);
    qdb_heap_entry top = h->v[0];
    h->len--;
    if (h->len > 0) {
        if (h->moved)
            sift_down(h, 0, h->v[h->len], true);
        else
            sift_down(h, 0, h->v[h->len], false);
    }
    maybe_shrink(h);
    if (h->moved)
        h->moved(&top, QDB_HEAP_NONE, h->arg);
    if (out)
        *out = top;
}

void qdb_heap_remove(qdb_heap *h, size_t idx, qdb_heap_entry *out)
{
    g_assert(idx < h->len);
    qdb_heap_entry gone = h->v[idx];
    h->len--;
    if (idx < h->len)
        settle_at(h, idx, h->v[h->len]);
    maybe_shrink(h);
    if (h->moved)
        h->moved(&gone, QDB_HEAP_NONE, h->arg);
    if (out)
        *out = gone;
}

void qdb_heap_rekey(qdb_heap *h, size_t idx, uint64_t time, uint64_t seq)
{
    g_assert(idx < h->len);
    qdb_heap_entry e = h->v[idx];
    e.time = time;
    e.seq = seq;
    settle_at(h, idx, e);
}

size_t qdb_heap_memory(const qdb_heap *h)
{
    return h->cap * sizeof(qdb_heap_entry);
}

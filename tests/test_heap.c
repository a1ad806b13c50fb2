/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests for common/heap.h: the min-heap shared by the simulator's event
 * queue and the real loop's timers.
 *
 * Suites: order (by time, ties by seq), index tracking (removal and re-keying
 * in place, every index reported right), storage (growth and give-back), and
 * randomized runs of both kinds of heap against a sorted reference.
 */
#include "config.h"

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>

#include "common/heap.h"
#include "testutil.h"

/* An owner object for the tracked heap: where its entry is. */
typedef struct item {
    size_t idx;
    uint32_t id;
} item;

static void item_moved(const qdb_heap_entry *e, size_t idx, void *arg)
{
    (void)arg;
    item *it = e->ptr;
    g_assert(idx == QDB_HEAP_NONE || e->kind == it->id);
    it->idx = idx;
}

/* Every entry's owner knows its index, and the heap property holds. */
static bool heap_consistent(const qdb_heap *h)
{
    for (size_t i = 0; i < qdb_heap_len(h); i++) {
        const qdb_heap_entry *e = qdb_heap_at(h, i);
        if (h->moved && ((item *)e->ptr)->idx != i)
            return false;
        if (i > 0) {
            const qdb_heap_entry *p = qdb_heap_at(h, (i - 1) / 2);
            if (p->time > e->time || (p->time == e->time && p->seq > e->seq))
                return false;
        }
    }
    return true;
}

static void test_order(void)
{
    qdb_heap h;
    qdb_heap_init(&h, NULL, NULL);
    CU_ASSERT_PTR_NULL(qdb_heap_top(&h));
    const uint64_t times[] = {50, 10, 40, 30, 20, 60, 0, 45, 5};
    for (uint32_t i = 0; i < G_N_ELEMENTS(times); i++) {
        qdb_heap_entry e = {.time = times[i], .seq = i, .kind = i};
        qdb_heap_push(&h, &e);
    }
    CU_ASSERT_EQUAL(qdb_heap_len(&h), G_N_ELEMENTS(times));
    CU_ASSERT_EQUAL(qdb_heap_top(&h)->time, 0);
    const uint64_t sorted[] = {0, 5, 10, 20, 30, 40, 45, 50, 60};
    for (unsigned i = 0; i < G_N_ELEMENTS(sorted); i++) {
        qdb_heap_entry e;
        qdb_heap_pop(&h, &e);
        CU_ASSERT_EQUAL(e.time, sorted[i]);
        CU_ASSERT_EQUAL(times[e.kind], e.time); /* the payload travelled with it */
    }
    CU_ASSERT_EQUAL(qdb_heap_len(&h), 0);
    CU_ASSERT_PTR_NULL(qdb_heap_top(&h));
    qdb_heap_clear(&h);
}

static void test_ties(void)
{
    qdb_heap h;
    qdb_heap_init(&h, NULL, NULL);
    /* Equal times pushed with falling seqs: they must come out by seq. */
    for (uint32_t i = 0; i < 100; i++) {
        qdb_heap_entry e = {.time = (i % 2) ? 7 : 3, .seq = 1000 - i, .kind = i};
        qdb_heap_push(&h, &e);
    }
    uint64_t last_time = 0, last_seq = 0;
    for (int i = 0; i < 100; i++) {
        qdb_heap_entry e;
        qdb_heap_pop(&h, &e);
        CU_ASSERT_EQUAL(e.time, i < 50 ? 3u : 7u);
        if (e.time == last_time)
            CU_ASSERT(e.seq > last_seq);
        last_time = e.time;
        last_seq = e.seq;
    }
    qdb_heap_clear(&h);
}

static void test_tracking(void)
{
    qdb_heap h;
    qdb_heap_init(&h, item_moved, NULL);
    item items[16];
    for (uint32_t i = 0; i < 16; i++) {
        items[i] = (item){.idx = QDB_HEAP_NONE, .id = i};
        qdb_heap_entry e = {.time = 100 - i * 5, .seq = i, .ptr = &items[i], .kind = i};
        qdb_heap_push(&h, &e);
        CU_ASSERT_NOT_EQUAL(items[i].idx, QDB_HEAP_NONE);
    }
    CU_ASSERT_TRUE(heap_consistent(&h));
    CU_ASSERT_EQUAL(items[15].idx, 0); /* the earliest (time 25) is on top */

    /* Remove three from the middle, by the index their owners hold. */
    const uint32_t gone[] = {3, 8, 12};
    for (unsigned i = 0; i < G_N_ELEMENTS(gone); i++) {
        qdb_heap_entry e;
        qdb_heap_remove(&h, items[gone[i]].idx, &e);
        CU_ASSERT_EQUAL(e.kind, gone[i]);
        CU_ASSERT_EQUAL(items[gone[i]].idx, QDB_HEAP_NONE);
        CU_ASSERT_TRUE(heap_consistent(&h));
    }
    /* Re-key: the latest (item 0, time 100) becomes the earliest, and the
     * earliest (item 15) the latest. */
    qdb_heap_rekey(&h, items[0].idx, 1, 100);
    CU_ASSERT_EQUAL(items[0].idx, 0);
    qdb_heap_rekey(&h, items[15].idx, 1000, 101);
    CU_ASSERT_TRUE(heap_consistent(&h));
    CU_ASSERT_EQUAL(qdb_heap_len(&h), 13);

    qdb_heap_entry e;
    qdb_heap_pop(&h, &e);
    CU_ASSERT_EQUAL(e.kind, 0);
    CU_ASSERT_EQUAL(items[0].idx, QDB_HEAP_NONE);
    uint32_t last = 0;
    while (qdb_heap_len(&h) > 0) {
        qdb_heap_pop(&h, &e);
        last = e.kind;
        CU_ASSERT(e.kind != 3 && e.kind != 8 && e.kind != 12);
        CU_ASSERT_TRUE(heap_consistent(&h));
    }
    CU_ASSERT_EQUAL(last, 15); /* re-keyed to the end */
    for (uint32_t i = 0; i < 16; i++)
        CU_ASSERT_EQUAL(items[i].idx, QDB_HEAP_NONE);
    qdb_heap_clear(&h);
}

static void test_storage(void)
{
    qdb_heap h;
    qdb_heap_init(&h, NULL, NULL);
    size_t m0 = qdb_heap_memory(&h);
    for (uint32_t i = 0; i < 10000; i++) {
        qdb_heap_entry e = {.time = i, .seq = i};
        qdb_heap_push(&h, &e);
    }
    size_t m1 = qdb_heap_memory(&h);
    CU_ASSERT(m1 >= 10000 * sizeof(qdb_heap_entry));
    for (uint32_t i = 0; i < 9990; i++)
        qdb_heap_pop(&h, NULL);
    CU_ASSERT(qdb_heap_memory(&h) < m1 / 8); /* a burst does not keep its memory */
    CU_ASSERT(qdb_heap_memory(&h) >= m0);
    CU_ASSERT_EQUAL(qdb_heap_top(&h)->time, 9990);
    qdb_heap_clear(&h);
}

/* ---- randomized against a sorted reference ----------------------------------- */

static gint key_cmp(gconstpointer a, gconstpointer b)
{
    const qdb_heap_entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The reference: a GArray kept sorted by (time, seq).  O(n) per change,
 * which is fine for a test of a few thousand entries. */
static void ref_insert(GArray *ref, const qdb_heap_entry *e)
{
    guint i = 0;
    while (i < ref->len && key_cmp(&g_array_index(ref, qdb_heap_entry, i), e) < 0)
        i++;
    g_array_insert_val(ref, i, *e);
}

static void ref_remove_kind(GArray *ref, uint32_t kind)
{
    for (guint i = 0; i < ref->len; i++)
        if (g_array_index(ref, qdb_heap_entry, i).kind == kind) {
            g_array_remove_index(ref, i);
            return;
        }
    g_assert_not_reached();
}

#define RAND_ITEMS 512
#define RAND_OPS 40000

static void run_random(bool tracked, guint32 seed)
{
    GRand *r = g_rand_new_with_seed(seed);
    qdb_heap h;
    qdb_heap_init(&h, tracked ? item_moved : NULL, NULL);
    GArray *ref = g_array_new(FALSE, FALSE, sizeof(qdb_heap_entry));
    item *items = g_new(item, RAND_ITEMS);
    for (uint32_t i = 0; i < RAND_ITEMS; i++)
        items[i] = (item){.idx = QDB_HEAP_NONE, .id = i};
    uint64_t seq = 0;
    unsigned mismatches = 0;
    for (int op = 0; op < RAND_OPS; op++) {
        uint32_t id = g_rand_int_range(r, 0, RAND_ITEMS);
        /* Few distinct times, so ties are common. */
        uint64_t t = (uint64_t)g_rand_int_range(r, 0, 64);
        int what = g_rand_int_range(r, 0, 10);
        if (tracked && items[id].idx != QDB_HEAP_NONE && what < 3) {
            qdb_heap_entry e;
            qdb_heap_remove(&h, items[id].idx, &e);
            mismatches += e.kind != id || items[id].idx != QDB_HEAP_NONE;
            ref_remove_kind(ref, id);
        } else if (tracked && items[id].idx != QDB_HEAP_NONE && what < 6) {
            qdb_heap_entry e = *qdb_heap_at(&h, items[id].idx);
            ref_remove_kind(ref, id);
            e.time = t;
            e.seq = seq++;
            qdb_heap_rekey(&h, items[id].idx, e.time, e.seq);
            ref_insert(ref, &e);
        } else if (what < 8 && (!tracked || items[id].idx == QDB_HEAP_NONE)) {
            qdb_heap_entry e = {.time = t, .seq = seq++, .ptr = &items[id], .kind = id};
            qdb_heap_push(&h, &e);
            ref_insert(ref, &e);
        } else if (qdb_heap_len(&h) > 0) {
            qdb_heap_entry e;
            qdb_heap_pop(&h, &e);
            const qdb_heap_entry *want = &g_array_index(ref, qdb_heap_entry, 0);
            mismatches += e.time != want->time || e.seq != want->seq || e.kind != want->kind;
            g_array_remove_index(ref, 0);
        }
        mismatches += qdb_heap_len(&h) != ref->len;
        if (op % 997 == 0)
            mismatches += !heap_consistent(&h);
    }
    /* Drain: the whole order must match. */
    while (qdb_heap_len(&h) > 0) {
        qdb_heap_entry e;
        qdb_heap_pop(&h, &e);
        const qdb_heap_entry *want = &g_array_index(ref, qdb_heap_entry, 0);
        mismatches += e.time != want->time || e.seq != want->seq || e.kind != want->kind;
        g_array_remove_index(ref, 0);
    }
    if (mismatches)
        printf("\n  %s heap, seed %" PRIu32 ": %u mismatches\n", tracked ? "tracked" : "plain",
               seed, mismatches);
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT_EQUAL(ref->len, 0);
    g_array_free(ref, TRUE);
    g_free(items);
    qdb_heap_clear(&h);
    g_rand_free(r);
}

static void test_random_plain(void)
{
    for (guint32 seed = 1; seed <= 3; seed++)
        run_random(false, seed);
}

static void test_random_tracked(void)
{
    for (guint32 seed = 1; seed <= 3; seed++)
        run_random(true, seed);
}

int main(void)
{
    CU_TestInfo order[] = {
        {.pName = "by time", .pTestFunc = test_order},
        {.pName = "ties by seq", .pTestFunc = test_ties},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo tracking[] = {
        {.pName = "remove and rekey by index", .pTestFunc = test_tracking},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo storage[] = {
        {.pName = "grows and gives back", .pTestFunc = test_storage},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo random[] = {
        {.pName = "plain heap vs sorted reference", .pTestFunc = test_random_plain},
        {.pName = "tracked heap vs sorted reference", .pTestFunc = test_random_tracked},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "heap order", .pTests = order},
        {.pName = "heap index tracking", .pTests = tracking},
        {.pName = "heap storage", .pTests = storage},
        {.pName = "heap randomized", .pTests = random},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

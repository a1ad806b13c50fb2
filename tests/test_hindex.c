/* SPDX-License-Identifier: BSD-2-Clause */
/* Tests for common/hindex.h: the open-addressed index of the in-memory
 * store and of the node's reply memory.
 *
 * Suites: basics (empty, add, colliding hashes, removal of one item among
 * equal hashes), storage (growth past 3/4, give-back under 1/8), and
 * randomized runs against a GHashTable reference with few distinct hashes,
 * so probe chains are long, wrap past the end of the array and are cut by
 * removals (the backward shift), checking after every step that each item
 * is found from its home and nothing else is.
 */
#include "config.h"

#include <glib.h>
#include <stdio.h>

#include "common/hindex.h"
#include "testutil.h"

/* True if item was added under hash and is still there. */
static bool found(const qdb_hindex *ix, uint64_t hash, const void *item)
{
    size_t pos = 0;
    for (void *it; (it = qdb_hindex_next(ix, hash, &pos)) != NULL;)
        if (it == item)
            return true;
    return false;
}

/* Every item sits at or after its home with no free slot in between (what
 * lookups rely on), and the count is right. */
static bool consistent(const qdb_hindex *ix)
{
    size_t used = 0;
    for (size_t i = 0; i < qdb_hindex_capacity(ix); i++) {
        if (ix->slots[i].item == NULL)
            continue;
        used++;
        for (size_t j = qdb_hindex_home(ix, ix->slots[i].hash); j != i; j = (j + 1) & ix->mask)
            if (ix->slots[j].item == NULL)
                return false;
    }
    return used == qdb_hindex_count(ix) && used * 4 <= qdb_hindex_capacity(ix) * 3;
}

static void test_empty(void)
{
    qdb_hindex ix;
    qdb_hindex_init(&ix);
    size_t pos = 0;
    CU_ASSERT_PTR_NULL(qdb_hindex_next(&ix, 42, &pos));
    CU_ASSERT_FALSE(qdb_hindex_remove(&ix, 42, &ix));
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), 0);
    qdb_hindex_prefetch(&ix, 42); /* no storage: a no-op */
    qdb_hindex_clear(&ix);
}

static void test_add_find_remove(void)
{
    qdb_hindex ix = {0};
    int a, b, c;
    qdb_hindex_add(&ix, 7, &a);
    qdb_hindex_add(&ix, 7, &b); /* the same hash: both kept */
    qdb_hindex_add(&ix, 9, &c);
    CU_ASSERT_EQUAL(qdb_hindex_count(&ix), 3);
    CU_ASSERT_TRUE(found(&ix, 7, &a));
    CU_ASSERT_TRUE(found(&ix, 7, &b));
    CU_ASSERT_FALSE(found(&ix, 7, &c));
    CU_ASSERT_TRUE(found(&ix, 9, &c));
    CU_ASSERT_FALSE(found(&ix, 8, &a));
    CU_ASSERT_FALSE(qdb_hindex_remove(&ix, 9, &a)); /* not under that hash */
    CU_ASSERT_TRUE(qdb_hindex_remove(&ix, 7, &a));
    CU_ASSERT_FALSE(found(&ix, 7, &a));
    CU_ASSERT_TRUE(found(&ix, 7, &b));
    CU_ASSERT_FALSE(qdb_hindex_remove(&ix, 7, &a)); /* already gone */
    CU_ASSERT_EQUAL(qdb_hindex_count(&ix), 2);
    CU_ASSERT_TRUE(consistent(&ix));
    qdb_hindex_clear(&ix);
    CU_ASSERT_EQUAL(qdb_hindex_count(&ix), 0);
}

static void test_storage(void)
{
    qdb_hindex ix = {0};
    static int items[1000];
    qdb_hindex_add(&ix, 0, &items[0]);
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), QDB_HINDEX_MIN);
    for (int i = 1; i < 12; i++) /* 12 of 16: exactly 3/4 */
        qdb_hindex_add(&ix, (uint64_t)i, &items[i]);
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), 16);
    qdb_hindex_add(&ix, 12, &items[12]); /* past 3/4: doubles */
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), 32);
    for (int i = 13; i < 1000; i++)
        qdb_hindex_add(&ix, (uint64_t)i, &items[i]);
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), 2048); /* 1000 > 3/4 of 1024 */
    CU_ASSERT_TRUE(consistent(&ix));
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_TRUE(found(&ix, (uint64_t)i, &items[i]));
    for (int i = 999; i >= 10; i--)
        CU_ASSERT_TRUE(qdb_hindex_remove(&ix, (uint64_t)i, &items[i]));
    /* 10 left: halved while under 1/8, never below the minimum */
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), 64);
    for (int i = 9; i >= 0; i--)
        CU_ASSERT_TRUE(qdb_hindex_remove(&ix, (uint64_t)i, &items[i]));
    CU_ASSERT_EQUAL(qdb_hindex_capacity(&ix), QDB_HINDEX_MIN);
    CU_ASSERT_EQUAL(qdb_hindex_count(&ix), 0);
    qdb_hindex_clear(&ix);
}

/* Random adds and removes of N items drawn from `hashes` distinct hashes. */
static void run_random(guint32 seed, unsigned hashes)
{
    enum { N = 600, STEPS = 6000 };
    static int items[N];
    uint64_t hash_of[N];
    GHashTable *ref = g_hash_table_new(g_direct_hash, g_direct_equal); /* present items */
    GRand *r = g_rand_new_with_seed(seed);
    qdb_hindex ix = {0};
    for (int i = 0; i < N; i++)
        hash_of[i] = g_rand_int_range(r, 0, (gint32)hashes) * UINT64_C(0x1000003);
    bool ok = true;
    for (int step = 0; step < STEPS && ok; step++) {
        int i = g_rand_int_range(r, 0, N);
        if (g_hash_table_contains(ref, &items[i])) {
            ok = qdb_hindex_remove(&ix, hash_of[i], &items[i]);
            g_hash_table_remove(ref, &items[i]);
        } else {
            qdb_hindex_add(&ix, hash_of[i], &items[i]);
            g_hash_table_add(ref, &items[i]);
        }
        ok = ok && consistent(&ix) && qdb_hindex_count(&ix) == g_hash_table_size(ref);
        for (int k = 0; k < N && ok && step % 50 == 0; k++)
            ok = found(&ix, hash_of[k], &items[k]) == g_hash_table_contains(ref, &items[k]);
    }
    if (!ok)
        printf("\nhindex randomized run failed: seed %u, %u hashes\n", seed, hashes);
    CU_ASSERT_TRUE(ok);
    qdb_hindex_clear(&ix);
    g_rand_free(r);
    g_hash_table_destroy(ref);
}

static void test_random_few_hashes(void)
{
    for (guint32 seed = 1; seed <= 3; seed++)
        run_random(seed, 8); /* long chains of equal hashes */
}

static void test_random_spread(void)
{
    for (guint32 seed = 1; seed <= 3; seed++)
        run_random(seed, 100000);
}

int main(void)
{
    CU_TestInfo basics[] = {
        {.pName = "empty index", .pTestFunc = test_empty},
        {.pName = "add, colliding hashes, remove", .pTestFunc = test_add_find_remove},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo storage[] = {
        {.pName = "grows past 3/4, gives back under 1/8", .pTestFunc = test_storage},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo random[] = {
        {.pName = "few hashes vs reference", .pTestFunc = test_random_few_hashes},
        {.pName = "spread hashes vs reference", .pTestFunc = test_random_spread},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "hindex basics", .pTests = basics},
        {.pName = "hindex storage", .pTests = storage},
        {.pName = "hindex randomized", .pTests = random},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

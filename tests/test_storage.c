/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for the in-memory storage backend (storage/memory.c), the
 * fault-injecting wrapper (storage/fault.c) and the storage record format
 * (node/record.c): basic operations, key order (memcmp, shorter first),
 * half-open and unbounded ranges, early stop; injected failures (n-th call,
 * persistent, seeded fraction, iterate at the start and part-way) that leave
 * the inner store alone, and the wrapper's counters; record encode/decode with
 * corruption detection.  The conformance suite over every backend, the
 * unarmed wrapper included, is in test_store_bdb.c. */
#include <glib.h>
#include <string.h>
#include <zlib.h>

#include "codec.h"
#include "env.h"
#include "record.h"
#include "types.h"
#include "storage/fault.h"
#include "storage/memory.h"
#include "testutil.h"

#define K(s) (const uint8_t *)(s), strlen(s)

/* ---- memory backend --------------------------------------------------------------- */

static void test_put_get_del(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    CU_ASSERT_EQUAL(s->version, QDB_SEAM_VERSION);
    CU_ASSERT_PTR_NOT_NULL(s->impl);
    CU_ASSERT_EQUAL(s->count(s), 0);

    uint8_t *v = NULL;
    size_t vl = 99;
    CU_ASSERT_EQUAL(s->get(s, K("a"), &v, &vl), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_ALIAS_NOT_FOUND);

    uint8_t val[5] = {1, 2, 3, 4, 5};
    CU_ASSERT_EQUAL(s->put(s, K("a"), val, sizeof val), QDB_OK);
    val[0] = 9; /* the store copied it */
    CU_ASSERT_EQUAL(s->count(s), 1);
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, 5);
    CU_ASSERT_EQUAL(v[0], 1);
    CU_ASSERT_EQUAL(v[4], 5);
    v[1] = 0; /* the caller owns a copy */
    g_free(v);
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(v[1], 2);
    g_free(v);

    /* Overwrite with a longer and then a shorter value. */
    CU_ASSERT_EQUAL(s->put(s, K("a"), K("a much longer value")), QDB_OK);
    CU_ASSERT_EQUAL(s->count(s), 1);
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, strlen("a much longer value"));
    CU_ASSERT_EQUAL(memcmp(v, "a much longer value", vl), 0);
    g_free(v);
    CU_ASSERT_EQUAL(s->put(s, K("a"), K("x")), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, 1);
    CU_ASSERT_EQUAL(v[0], 'x');
    g_free(v);

    /* Empty value: found, length 0, a pointer the caller can free. */
    CU_ASSERT_EQUAL(s->put(s, K("empty"), NULL, 0), QDB_OK);
    v = NULL;
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("empty"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, 0);
    CU_ASSERT_PTR_NOT_NULL(v);
    g_free(v);

    /* Keys are byte strings: embedded NULs and prefixes are distinct keys. */
    static const uint8_t k0[] = {'a', 0};
    CU_ASSERT_EQUAL(s->get(s, k0, 2, &v, &vl), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->put(s, k0, 2, K("nul")), QDB_OK);
    CU_ASSERT_EQUAL(s->put(s, NULL, 0, K("empty key")), QDB_OK);
    CU_ASSERT_EQUAL(s->count(s), 4);
    CU_ASSERT_EQUAL_FATAL(s->get(s, NULL, 0, &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, strlen("empty key"));
    g_free(v);

    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_OK);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->get(s, K("a"), &v, &vl), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(s->get(s, k0, 2, &v, &vl), QDB_OK); /* neighbour untouched */
    g_free(v);
    CU_ASSERT_EQUAL(s->count(s), 3);
    s->destroy(s);
}

typedef struct collected {
    GPtrArray *keys;
    int stop_after; /* 0: never stop */
    int calls;
} collected;

static int collect(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    collected *c = arg;
    c->calls++;
    /* Values were stored as "v:" + key: check the pairing. */
    CU_ASSERT_EQUAL(value_len, key_len + 2);
    CU_ASSERT_TRUE(value_len >= 2 && memcmp(value, "v:", 2) == 0 &&
                   (key_len == 0 || memcmp(value + 2, key, key_len) == 0));
    g_ptr_array_add(c->keys, g_strndup((const char *)key, key_len));
    return c->stop_after && c->calls >= c->stop_after;
}

/* Iterate [from, to): the keys fn saw joined by ",", and iterate's code in *rc. */
static char *range_rc(qdb_storage *s, const char *from, const char *to, int stop_after, int *rc)
{
    collected c = {g_ptr_array_new_with_free_func(g_free), stop_after, 0};
    *rc = s->iterate(s, (const uint8_t *)from, strlen(from), (const uint8_t *)to,
                     to ? strlen(to) : 0, collect, &c);
    g_ptr_array_add(c.keys, NULL);
    char *joined = g_strjoinv(",", (char **)c.keys->pdata);
    g_ptr_array_unref(c.keys);
    return joined;
}

static char *range(qdb_storage *s, const char *from, const char *to, int stop_after)
{
    int rc;
    char *joined = range_rc(s, from, to, stop_after, &rc);
    CU_ASSERT_EQUAL(rc, QDB_OK);
    return joined;
}

static void check_range(qdb_storage *s, const char *from, const char *to, int stop_after,
                        const char *expect)
{
    char *got = range(s, from, to, stop_after);
    CU_ASSERT_STRING_EQUAL(got, expect);
    if (strcmp(got, expect) != 0)
        fprintf(stderr, "\n  [%s, %s): got \"%s\", want \"%s\"\n", from, to ? to : "NULL", got,
                expect);
    g_free(got);
}

static qdb_storage *fill(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    /* Inserted out of order on purpose. */
    static const char *keys[] = {"b", "ab", "a", "", "c", "abc", "b\x01", "ba", "\xff", "aa"};
    for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
        char *v = g_strconcat("v:", keys[k], NULL);
        CU_ASSERT_EQUAL(s->put(s, K(keys[k]), K(v)), QDB_OK);
        g_free(v);
    }
    CU_ASSERT_EQUAL(s->count(s), G_N_ELEMENTS(keys));
    return s;
}

static void test_iterate_order(void)
{
    qdb_storage *s = fill();
    /* memcmp order, shorter first on a common prefix; bytes are unsigned. */
    check_range(s, "", NULL, 0, ",a,aa,ab,abc,b,b\x01,ba,c,\xff");
    s->destroy(s);
}

static void test_iterate_ranges(void)
{
    qdb_storage *s = fill();
    check_range(s, "a", "b", 0, "a,aa,ab,abc");      /* from included, to excluded */
    check_range(s, "aa", "abc", 0, "aa,ab");
    check_range(s, "ab", "abd", 0, "ab,abc");
    check_range(s, "a\x01", "ab", 0, "aa");           /* bounds need not exist */
    check_range(s, "b", NULL, 0, "b,b\x01,ba,c,\xff"); /* unbounded */
    check_range(s, "d", NULL, 0, "\xff");
    check_range(s, "\xff\x01", NULL, 0, "");           /* past the last key */
    check_range(s, "zz", "\xff", 0, "");
    check_range(s, "b", "b", 0, "");                   /* empty range */
    check_range(s, "c", "b", 0, "");                   /* inverted range: empty too */
    check_range(s, "", "", 0, "");
    check_range(s, "", "a", 0, "");                    /* the empty key */
    check_range(s, "", "aa", 0, ",a");
    s->destroy(s);
}

static void test_iterate_stop(void)
{
    qdb_storage *s = fill();
    check_range(s, "", NULL, 1, "");
    check_range(s, "a", NULL, 3, "a,aa,ab");
    check_range(s, "a", "ab", 5, "a,aa"); /* the bound comes first */
    s->destroy(s);

    /* An empty store calls nothing. */
    s = qdb_storage_memory_new();
    check_range(s, "", NULL, 0, "");
    s->destroy(s);
}

static int count_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                    size_t value_len)
{
    (*(int *)arg)++;
    return 0;
}

static void test_many(void)
{
    /* Ring-shaped keys (ID + alias): a range is an arc, iterated in order. */
    qdb_storage *s = qdb_storage_memory_new();
    const int n = 2000;
    for (int k = 0; k < n; k++) {
        char alias[16];
        int al = g_snprintf(alias, sizeof alias, "e%d", k);
        qdb_id id;
        qdb_id_hash(&id, alias, (size_t)al);
        uint8_t key[QDB_ID_BYTES + 16];
        size_t kl = qdb_record_key(key, &id, (const uint8_t *)alias, (size_t)al);
        CU_ASSERT_EQUAL(s->put(s, key, kl, (const uint8_t *)alias, (size_t)al), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), (uint64_t)n);
    /* Split the ring at 2^255: the two halves add up to everything. */
    qdb_id mid;
    qdb_id_from_top64(&mid, UINT64_C(1) << 63);
    int low = 0, high = 0, all = 0;
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, mid.b, QDB_ID_BYTES, count_cb, &low), QDB_OK);
    CU_ASSERT_EQUAL(s->iterate(s, mid.b, QDB_ID_BYTES, NULL, 0, count_cb, &high), QDB_OK);
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, count_cb, &all), QDB_OK);
    CU_ASSERT_EQUAL(low + high, n);
    CU_ASSERT_EQUAL(all, n);
    CU_ASSERT_TRUE(low > n / 3 && high > n / 3); /* SHA-3 spreads them */
    s->destroy(s);
}

static int append_key_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                         size_t value_len)
{
    g_string_append_len(arg, (const char *)key, (gssize)key_len);
    g_string_append_c(arg, ' ');
    return 0;
}

/* Past MEM_INDEX_AT (64) entries, new keys wait outside the tree until the
 * order is needed: iterate, del and count must see them all the same, and a
 * store destroyed with some still waiting frees them (ASan, valgrind). */
static void test_fresh_keys(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    for (int k = 199; k >= 0; k--) { /* descending: the worst order for a tree */
        char key[8];
        g_snprintf(key, sizeof key, "k%03d", k);
        CU_ASSERT_EQUAL(s->put(s, K(key), K(key)), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->put(s, K("k0"), K("short")), QDB_OK); /* a prefix of others */
    CU_ASSERT_EQUAL(s->count(s), 201);
    CU_ASSERT_EQUAL(s->del(s, K("k150")), QDB_OK); /* still waiting when removed */
    CU_ASSERT_EQUAL(s->del(s, K("k150")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->count(s), 200);
    GString *got = g_string_new(NULL), *want = g_string_new("k0 ");
    for (int k = 0; k < 200; k++)
        if (k != 150)
            g_string_append_printf(want, "k%03d ", k);
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, append_key_cb, got), QDB_OK);
    CU_ASSERT_STRING_EQUAL(got->str, want->str);
    g_string_set_size(got, 0);
    CU_ASSERT_EQUAL(s->iterate(s, K("k0"), K("k003"), append_key_cb, got), QDB_OK);
    CU_ASSERT_STRING_EQUAL(got->str, "k0 k000 k001 k002 ");
    for (int k = 300; k < 310; k++) { /* left waiting for destroy */
        char key[8];
        g_snprintf(key, sizeof key, "k%03d", k);
        CU_ASSERT_EQUAL(s->put(s, K(key), K(key)), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), 210);
    g_string_free(got, TRUE);
    g_string_free(want, TRUE);
    s->destroy(s);
}

/* Past 64 entries (the hash index, new keys waiting outside the tree, the
 * entry found last): after removing every third key of thousands, and adding
 * some back, every key is found or not exactly as it should be. */
static void test_index_removals(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    enum { N = 5000 };
    char key[16];
    for (int k = 0; k < N; k++) {
        int kl = g_snprintf(key, sizeof key, "key:%d", k);
        CU_ASSERT_EQUAL(s->put(s, (const uint8_t *)key, (size_t)kl, (const uint8_t *)key,
                               (size_t)kl), QDB_OK);
    }
    for (int k = 0; k < N; k += 3) {
        int kl = g_snprintf(key, sizeof key, "key:%d", k);
        CU_ASSERT_EQUAL(s->del(s, (const uint8_t *)key, (size_t)kl), QDB_OK);
    }
    for (int k = 0; k < N; k += 6) { /* half of them come back */
        int kl = g_snprintf(key, sizeof key, "key:%d", k);
        CU_ASSERT_EQUAL(s->put(s, (const uint8_t *)key, (size_t)kl, K("back")), QDB_OK);
    }
    int found = 0, right = 0;
    for (int k = 0; k < N; k++) {
        int kl = g_snprintf(key, sizeof key, "key:%d", k);
        const uint8_t *v;
        size_t vl;
        bool there = s->peek(s, (const uint8_t *)key, (size_t)kl, &v, &vl) == QDB_OK;
        bool want = k % 3 != 0 || k % 6 == 0;
        found += there;
        right += there == want &&
                 (!there || (k % 6 == 0 ? vl == 4 && memcmp(v, "back", 4) == 0
                                        : vl == (size_t)kl && memcmp(v, key, vl) == 0));
    }
    CU_ASSERT_EQUAL(right, N);
    CU_ASSERT_EQUAL((uint64_t)found, s->count(s));
    s->destroy(s);
}

/* prefetch() (issue 12) is a hint: every pass, for present and absent keys,
 * small and indexed stores, leaves every answer as it was. */
static void test_prefetch(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->prefetch);
    char key[16];
    for (int n = 0; n < 200; n++) { /* past the index threshold on the way */
        int kl = g_snprintf(key, sizeof key, "key:%d", n);
        CU_ASSERT_EQUAL(s->put(s, (const uint8_t *)key, (size_t)kl, (const uint8_t *)key,
                               (size_t)kl), QDB_OK);
        for (int k = 0; k <= n + 1; k++) { /* n + 1: absent */
            kl = g_snprintf(key, sizeof key, "key:%d", k);
            for (int pass = 0; pass <= 2; pass++)
                s->prefetch(s, (const uint8_t *)key, (size_t)kl, pass);
        }
    }
    int right = 0;
    for (int k = 0; k <= 200; k++) {
        int kl = g_snprintf(key, sizeof key, "key:%d", k);
        const uint8_t *v;
        size_t vl;
        int rc = s->peek(s, (const uint8_t *)key, (size_t)kl, &v, &vl);
        right += k == 200 ? rc == QDB_E_ALIAS_NOT_FOUND
                          : rc == QDB_OK && vl == (size_t)kl && memcmp(v, key, vl) == 0;
    }
    CU_ASSERT_EQUAL(right, 201);
    CU_ASSERT_EQUAL(s->count(s), 200);
    s->destroy(s);
}

/* peek() and put_parts() (issue 12): the stored bytes without a copy, and a
 * value given in two parts; the entry found last, which the store checks
 * first, never outlives a del() nor answers for another key. */
static void test_peek_put_parts(void)
{
    qdb_storage *s = qdb_storage_memory_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->peek);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->put_parts);
    const uint8_t *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL(s->peek(s, K("a"), &v, &vl), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->put_parts(s, K("a"), K("head:"), K("body")), QDB_OK);
    CU_ASSERT_EQUAL(s->put_parts(s, K("b"), K("bee"), NULL, 0), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(s->peek(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, 9);
    CU_ASSERT_EQUAL(memcmp(v, "head:body", 9), 0);
    const uint8_t *again = NULL;
    CU_ASSERT_EQUAL(s->peek(s, K("a"), &again, &vl), QDB_OK);
    CU_ASSERT_PTR_EQUAL(again, v); /* the store's bytes, not a copy */
    /* get() still copies the same bytes */
    uint8_t *copy = NULL;
    CU_ASSERT_EQUAL_FATAL(s->get(s, K("a"), &copy, &vl), QDB_OK);
    CU_ASSERT_PTR_NOT_EQUAL(copy, v);
    CU_ASSERT_EQUAL(memcmp(copy, "head:body", 9), 0);
    g_free(copy);
    /* a put right after a peek of another key lands on its own key */
    CU_ASSERT_EQUAL(s->put_parts(s, K("b"), NULL, 0, K("new bee")), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(s->peek(s, K("a"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(memcmp(v, "head:body", vl), 0);
    CU_ASSERT_EQUAL_FATAL(s->peek(s, K("b"), &v, &vl), QDB_OK);
    CU_ASSERT_EQUAL(vl, 7);
    CU_ASSERT_EQUAL(memcmp(v, "new bee", 7), 0);
    CU_ASSERT_EQUAL(s->count(s), 2);
    /* removed right after it was found: gone, and can come back */
    CU_ASSERT_EQUAL(s->del(s, K("b")), QDB_OK);
    CU_ASSERT_EQUAL(s->peek(s, K("b"), &v, &vl), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->put_parts(s, K("b"), NULL, 0, NULL, 0), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(s->peek(s, K("b"), &v, &vl), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_EQUAL(vl, 0);
    CU_ASSERT_EQUAL(s->count(s), 2);
    s->destroy(s);
}

/* ---- fault wrapper ------------------------------------------------------------------ */

/* Every record of a store, keys and values length-prefixed, in key order: two
 * stores hold the same records iff their dumps are equal. */
static int dump_cb(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    g_string_append_printf(arg, "%zu:", key_len);
    g_string_append_len(arg, (const char *)key, (gssize)key_len);
    g_string_append_printf(arg, "=%zu:", value_len);
    g_string_append_len(arg, (const char *)value, (gssize)value_len);
    g_string_append_c(arg, ';');
    return 0;
}

static char *dump(qdb_storage *s)
{
    GString *out = g_string_new(NULL);
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, dump_cb, out), QDB_OK);
    return g_string_free(out, FALSE);
}

/* A wrapper around a memory store holding "a", "b", "c" (value "v:" + key). */
static qdb_storage *fault_abc(void)
{
    qdb_storage *s = qdb_storage_fault_new(qdb_storage_memory_new());
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->version, QDB_SEAM_VERSION);
    CU_ASSERT_PTR_NULL(s->data);
    CU_ASSERT_EQUAL(s->put(s, K("a"), K("v:a")), QDB_OK);
    CU_ASSERT_EQUAL(s->put(s, K("b"), K("v:b")), QDB_OK);
    CU_ASSERT_EQUAL(s->put(s, K("c"), K("v:c")), QDB_OK);
    qdb_storage_fault_reset(s);
    return s;
}

static bool get_equals_str(qdb_storage *s, const char *key, const char *value)
{
    uint8_t *v = NULL;
    size_t vl = 0;
    bool ok = s->get(s, K(key), &v, &vl) == QDB_OK && vl == strlen(value) &&
              memcmp(v, value, vl) == 0;
    g_free(v);
    return ok;
}

static qdb_fault_stats stats_of(qdb_storage *s)
{
    qdb_fault_stats st;
    qdb_storage_fault_stats(s, &st);
    return st;
}

static void test_fault_nth_once(void)
{
    qdb_storage *s = fault_abc();
    qdb_storage_fault_fail_nth(s, QDB_FAULT_PUT, 3, false);
    CU_ASSERT_EQUAL(s->put(s, K("d"), K("v:d")), QDB_OK);
    CU_ASSERT_EQUAL(s->get(s, K("x"), &(uint8_t *){NULL}, &(size_t){0}), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->put(s, K("e"), K("v:e")), QDB_OK); /* gets do not match */
    CU_ASSERT_EQUAL(s->put(s, K("f"), K("v:f")), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: put (call 3)");
    CU_ASSERT_EQUAL(s->put(s, K("g"), K("v:g")), QDB_OK); /* one-shot: disarmed */
    CU_ASSERT_EQUAL(s->put(s, K("f"), K("v:f")), QDB_OK);
    CU_ASSERT_EQUAL(s->count(s), 7);
    qdb_fault_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_PUT], 5);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_PUT], 1);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_GET], 1);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_GET], 0);

    /* Re-arming counts matching calls from the arming; n = 1 is the next. */
    qdb_storage_fault_fail_nth(s, QDB_FAULT_DEL | QDB_FAULT_GET, 1, false);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: del (call 1)");
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_OK);
    s->destroy(s);
}

static void test_fault_persistent(void)
{
    qdb_storage *s = fault_abc();
    qdb_storage_fault_fail_nth(s, QDB_FAULT_WRITES, 2, true);
    CU_ASSERT_EQUAL(s->put(s, K("d"), K("v:d")), QDB_OK);
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(s->put(s, K("e"), K("v:e")), QDB_E_STORAGE);
        CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_STORAGE);
    }
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: del (call 5)");
    CU_ASSERT_TRUE(get_equals_str(s, "a", "v:a")); /* reads still work */
    qdb_fault_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_PUT], 6);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_PUT], 5);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_DEL], 5);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_DEL], 5);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_GET], 0);

    /* Disarmed: writes work again, counters kept. */
    qdb_storage_fault_disarm(s);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_OK);
    CU_ASSERT_EQUAL(s->put(s, K("e"), K("v:e")), QDB_OK);
    st = stats_of(s);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_DEL], 6);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_DEL], 5);

    /* Reset: counters back to 0. */
    qdb_storage_fault_reset(s);
    st = stats_of(s);
    for (int m = 0; m < QDB_FAULT_N_METHODS; m++) {
        CU_ASSERT_EQUAL(st.calls[m], 0);
        CU_ASSERT_EQUAL(st.injected[m], 0);
    }
    CU_ASSERT_STRING_EQUAL(s->errmsg, "");
    s->destroy(s);
}

static bool usage_failed(qdb_storage *s)
{
    qdb_storage_usage u;
    s->usage(s, &u);
    return u.failed;
}

/* A panic: the n-th matching call fails, then every call whatever the mask,
 * usage() says failed; disarming does not heal it, reset does.  The memory
 * store has no usage(): the wrapper's reports zeros but for failed. */
static void test_fault_panic(void)
{
    qdb_storage *s = fault_abc();
    CU_ASSERT_PTR_NULL(qdb_storage_fault_inner(s)->usage);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->usage);
    qdb_storage_usage u;
    memset(&u, 0xff, sizeof u);
    s->usage(s, &u);
    CU_ASSERT_TRUE(u.depot_bytes == 0 && u.max_bytes == 0 && !u.warning && !u.disk_full &&
                   !u.failed);
    qdb_storage_fault_panic(s, QDB_FAULT_PUT, 2);
    CU_ASSERT_EQUAL(s->put(s, K("d"), K("v:d")), QDB_OK);
    CU_ASSERT_FALSE(usage_failed(s));
    CU_ASSERT_TRUE(get_equals_str(s, "a", "v:a"));
    CU_ASSERT_EQUAL(s->put(s, K("e"), K("v:e")), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected panic: put (call 2): the store has failed");
    CU_ASSERT_TRUE(usage_failed(s));
    uint8_t *v = NULL;
    size_t vl = 0;
    CU_ASSERT_EQUAL(s->get(s, K("a"), &v, &vl), QDB_E_STORAGE);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected panic: del (call 1): the store has failed");
    qdb_storage_fault_disarm(s);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_STORAGE);
    CU_ASSERT_TRUE(usage_failed(s));
    CU_ASSERT_EQUAL(s->count(s), 4); /* nothing reached the inner store since */
    qdb_storage_fault_reset(s);
    CU_ASSERT_FALSE(usage_failed(s));
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_OK);
    s->destroy(s);
}

/* Which of n gets fail under fraction p drawn from `seed`: a string of 0/1.
 * With puts, a put (not a matching call) follows each get. */
static char *fraction_pattern(qdb_storage *s, double p, uint64_t seed, int n, bool puts)
{
    qdb_storage_fault_fail_fraction(s, QDB_FAULT_GET, p, seed);
    char *out = g_malloc((size_t)n + 1);
    for (int i = 0; i < n; i++) {
        uint8_t *v = NULL;
        size_t vl = 0;
        int rc = s->get(s, K("b"), &v, &vl);
        CU_ASSERT_TRUE(rc == QDB_OK || rc == QDB_E_STORAGE);
        if (puts)
            CU_ASSERT_EQUAL(s->put(s, K("b"), K("v:b")), QDB_OK);
        out[i] = rc == QDB_OK ? '0' : '1';
        g_free(v);
    }
    out[n] = '\0';
    return out;
}

static int ones(const char *pattern)
{
    int n = 0;
    for (; *pattern; pattern++)
        n += *pattern == '1';
    return n;
}

static void test_fault_fraction(void)
{
    enum { N = 400 };
    qdb_storage *s = fault_abc();
    char *first = fraction_pattern(s, 0.25, 1234, N, true);
    char *again = fraction_pattern(s, 0.25, 1234, N, false);
    char *other = fraction_pattern(s, 0.25, 1235, N, true);
    /* The seed alone fixes the pattern: calls that do not match take no draw. */
    CU_ASSERT_STRING_EQUAL(first, again);
    CU_ASSERT_STRING_NOT_EQUAL(first, other);
    /* Binomial(400, 0.25): mean 100, sd 8.7; these bounds are 5 sd wide. */
    CU_ASSERT_TRUE(ones(first) > 56 && ones(first) < 144);
    CU_ASSERT_TRUE(ones(other) > 56 && ones(other) < 144);
    qdb_fault_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_GET], 3 * N);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_GET],
                    (uint64_t)(ones(first) + ones(again) + ones(other)));
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_PUT], 2 * N);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_PUT], 0);
    g_free(first);
    g_free(again);
    g_free(other);

    /* The edges: p = 0 never fails, p = 1 always does. */
    char *never = fraction_pattern(s, 0.0, 1, 50, false);
    char *always = fraction_pattern(s, 1.0, 1, 50, false);
    CU_ASSERT_EQUAL(ones(never), 0);
    CU_ASSERT_EQUAL(ones(always), 50);
    g_free(never);
    g_free(always);
    s->destroy(s);
}

static void test_fault_leaves_inner(void)
{
    qdb_storage *s = fault_abc();
    qdb_storage *inner = qdb_storage_fault_inner(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
    char *before = dump(inner);
    qdb_storage_fault_fail_nth(s, QDB_FAULT_ALL, 1, true);
    CU_ASSERT_EQUAL(s->put(s, K("new"), K("v:new")), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(s->put(s, K("a"), K("overwritten")), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(s->del(s, K("b")), QDB_E_STORAGE);
    /* A failed get leaves the caller's outputs alone. */
    uint8_t sentinel = 0, *v = &sentinel;
    size_t vl = 77;
    CU_ASSERT_EQUAL(s->get(s, K("a"), &v, &vl), QDB_E_STORAGE);
    CU_ASSERT_PTR_EQUAL(v, &sentinel);
    CU_ASSERT_EQUAL(vl, 77);
    CU_ASSERT_EQUAL(s->count(s), 3); /* count() never fails */
    char *after = dump(inner);
    CU_ASSERT_STRING_EQUAL(before, after);
    qdb_fault_stats st = stats_of(s);
    for (int m = 0; m < QDB_FAULT_N_METHODS - 1; m++) /* iterate was not called */
        CU_ASSERT_EQUAL(st.injected[m], st.calls[m]);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_PUT], 2);
    g_free(before);
    g_free(after);
    s->destroy(s);
}

/* One iterate over [from, NULL): its code, and the keys fn saw. */
static void expect_walk(qdb_storage *s, const char *from, int stop_after, int rc,
                        const char *keys)
{
    int got_rc;
    char *got = range_rc(s, from, NULL, stop_after, &got_rc);
    CU_ASSERT_EQUAL(got_rc, rc);
    CU_ASSERT_STRING_EQUAL(got, keys);
    g_free(got);
}

static void test_fault_iterate(void)
{
    qdb_storage *s = fault_abc();
    expect_walk(s, "", 0, QDB_OK, "a,b,c");

    /* At the start (the default): fn is never called. */
    qdb_storage_fault_fail_nth(s, QDB_FAULT_ITERATE, 1, false);
    expect_walk(s, "", 0, QDB_E_STORAGE, "");
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: iterate (call 2)");
    expect_walk(s, "", 0, QDB_OK, "a,b,c");

    /* Part-way: after k records. */
    qdb_storage_fault_iterate_after(s, 2);
    qdb_storage_fault_fail_nth(s, QDB_FAULT_ITERATE, 1, true);
    expect_walk(s, "", 0, QDB_E_STORAGE, "a,b");
    expect_walk(s, "b", 0, QDB_E_STORAGE, "b,c");
    expect_walk(s, "c", 0, QDB_E_STORAGE, "c");  /* a shorter range still fails */
    expect_walk(s, "z", 0, QDB_E_STORAGE, "");
    expect_walk(s, "", 1, QDB_E_STORAGE, "a");   /* and so does one fn stopped */
    qdb_fault_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.calls[QDB_FAULT_METHOD_ITERATE], 8);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_ITERATE], 6);

    /* Only the iterate mask matches: point operations pass. */
    CU_ASSERT_EQUAL(s->put(s, K("d"), K("v:d")), QDB_OK);
    CU_ASSERT_TRUE(get_equals_str(s, "d", "v:d"));
    qdb_storage_fault_reset(s); /* iterate_after back to 0 */
    qdb_storage_fault_fail_nth(s, QDB_FAULT_ITERATE, 1, false);
    expect_walk(s, "", 0, QDB_E_STORAGE, "");
    s->destroy(s);
}

/* A store that fails by itself (here a wrapper armed inside an unarmed one):
 * the outer wrapper returns its code and its message, and counts no
 * injection of its own. */
static void test_fault_passes_inner_errors(void)
{
    qdb_storage *inner = qdb_storage_fault_new(qdb_storage_memory_new());
    qdb_storage *s = qdb_storage_fault_new(inner);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_EQUAL(qdb_storage_fault_inner(s), inner);
    qdb_storage_fault_fail_nth(inner, QDB_FAULT_ALL, 1, true);
    CU_ASSERT_EQUAL(s->put(s, K("a"), K("v:a")), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: put (call 1)");
    qdb_storage_fault_iterate_after(s, 1);
    qdb_storage_fault_fail_nth(s, QDB_FAULT_ITERATE, 1, false);
    expect_walk(s, "", 0, QDB_E_STORAGE, "");
    CU_ASSERT_STRING_EQUAL(s->errmsg, "injected fault: iterate (call 1)");
    qdb_fault_stats st = stats_of(s);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_PUT], 0);
    CU_ASSERT_EQUAL(st.injected[QDB_FAULT_METHOD_ITERATE], 0); /* the inner one's */
    CU_ASSERT_EQUAL(stats_of(inner).injected[QDB_FAULT_METHOD_ITERATE], 1);
    /* Absent keys are not failures. */
    qdb_storage_fault_disarm(inner);
    CU_ASSERT_EQUAL(s->del(s, K("a")), QDB_E_ALIAS_NOT_FOUND);
    s->destroy(s); /* both wrappers and the memory store */
}

static void test_fault_refuses_version(void)
{
    qdb_storage *mem = qdb_storage_memory_new();
    mem->version = QDB_SEAM_VERSION + 1;
    CU_ASSERT_PTR_NULL(qdb_storage_fault_new(mem));
    mem->version = QDB_SEAM_VERSION;
    mem->destroy(mem); /* still the caller's */
}

/* ---- records ------------------------------------------------------------------------ */

static void test_record_round_trip(void)
{
    static const uint8_t content[] = "the content of an entry";
    qdb_record_meta meta = {.version = 3, .origin = UINT64_C(0x0102030405060708), .created_us = -5,
                            .modified_us = INT64_C(1700000000000000),
                            .size = sizeof content - 1, .checksum = 0xdeadbeef /* ignored */};
    GByteArray *out = g_byte_array_new();
    g_byte_array_append(out, (const uint8_t *)"pre", 3);
    qdb_record_encode(&meta, content, out);
    CU_ASSERT_EQUAL_FATAL(out->len, 3 + QDB_RECORD_HEADER + meta.size);
    const uint8_t *rec = out->data + 3;
    size_t rec_len = out->len - 3;

    /* Header layout. */
    CU_ASSERT_EQUAL(rec[0], QDB_RECORD_FORMAT);
    CU_ASSERT_EQUAL(rec[1], 0);
    uint32_t crc = (uint32_t)crc32(0L, content, (uInt)meta.size);
    CU_ASSERT_EQUAL(rec[4], crc >> 24);
    CU_ASSERT_EQUAL(rec[7], crc & 0xff);
    CU_ASSERT_EQUAL(rec[15], 3);
    CU_ASSERT_EQUAL(rec[16], 1); /* origin */
    CU_ASSERT_EQUAL(rec[23], 8);
    CU_ASSERT_EQUAL(rec[24], 0xff); /* -5, two's complement big-endian */
    CU_ASSERT_EQUAL(rec[31], 0xfb);
    CU_ASSERT_EQUAL(rec[47], meta.size);
    CU_ASSERT_EQUAL(memcmp(rec + QDB_RECORD_HEADER, content, meta.size), 0);

    qdb_record_meta d;
    const uint8_t *body = NULL;
    CU_ASSERT_EQUAL_FATAL(qdb_record_decode(rec, rec_len, &d, &body), QDB_OK);
    CU_ASSERT_EQUAL(d.version, 3);
    CU_ASSERT_EQUAL(d.origin, UINT64_C(0x0102030405060708));
    CU_ASSERT_FALSE(d.tombstone);
    CU_ASSERT_EQUAL(d.created_us, -5);
    CU_ASSERT_EQUAL(d.modified_us, INT64_C(1700000000000000));
    CU_ASSERT_EQUAL(d.size, meta.size);
    CU_ASSERT_EQUAL(d.checksum, crc);
    CU_ASSERT_PTR_EQUAL(body, rec + QDB_RECORD_HEADER);

    /* Empty content. */
    g_byte_array_set_size(out, 0);
    meta.size = 0;
    qdb_record_encode(&meta, NULL, out);
    CU_ASSERT_EQUAL(out->len, QDB_RECORD_HEADER);
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_OK);
    CU_ASSERT_EQUAL(d.size, 0);
    CU_ASSERT_EQUAL(d.checksum, 0); /* CRC-32 of nothing */

    /* A tombstone: flag bit 0, no content. */
    g_byte_array_set_size(out, 0);
    meta.tombstone = true;
    qdb_record_encode(&meta, NULL, out);
    CU_ASSERT_EQUAL(out->data[1], QDB_RECORD_TOMBSTONE);
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_OK);
    CU_ASSERT_TRUE(d.tombstone);
    CU_ASSERT_EQUAL(d.expiry_s, 0);

    /* An expiry: flag bit 1, the i64 after the header, the content after it;
     * a tombstone drops it. */
    g_byte_array_set_size(out, 0);
    meta.tombstone = false;
    meta.size = 2;
    meta.expiry_s = QDB_EXPIRY_MAX;
    qdb_record_encode(&meta, (const uint8_t *)"hi", out);
    CU_ASSERT_EQUAL_FATAL(out->len, QDB_RECORD_HEADER + 8 + 2);
    CU_ASSERT_EQUAL(out->data[1], QDB_RECORD_HAS_EXPIRY);
    CU_ASSERT_EQUAL(qdb_be64_get(out->data + QDB_RECORD_HEADER), (uint64_t)QDB_EXPIRY_MAX);
    CU_ASSERT_EQUAL_FATAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_OK);
    CU_ASSERT_EQUAL(d.expiry_s, QDB_EXPIRY_MAX);
    CU_ASSERT_PTR_EQUAL(body, out->data + QDB_RECORD_HEADER + 8);
    CU_ASSERT_EQUAL(memcmp(body, "hi", 2), 0);
    CU_ASSERT_TRUE(qdb_record_expired(&d, (QDB_EXPIRY_MAX + 1) * 1000000));
    CU_ASSERT_FALSE(qdb_record_expired(&d, (QDB_EXPIRY_MAX - 1) * 1000000));
    qdb_be64_put(out->data + QDB_RECORD_HEADER, 0); /* never written: no expiry, no field */
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_E_STORAGE);
    g_byte_array_set_size(out, 0);
    meta.tombstone = true;
    meta.size = 0;
    qdb_record_encode(&meta, NULL, out);
    CU_ASSERT_EQUAL(out->len, QDB_RECORD_HEADER);
    CU_ASSERT_EQUAL(out->data[1], QDB_RECORD_TOMBSTONE);
    out->data[1] |= QDB_RECORD_HAS_EXPIRY; /* a tombstone with an expiry is never written */
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_E_STORAGE);
    g_byte_array_unref(out);
}

/* Format 1, as roots written before versions hold it: still read, its
 * modification time standing for its version. */
static void test_record_format1(void)
{
    uint8_t v1[QDB_RECORD_HEADER_V1 + 2] = {1, 0, 0, 0};
    uint32_t crc = (uint32_t)crc32(0L, (const uint8_t *)"hi", 2);
    qdb_be32_put(v1 + 4, crc);
    qdb_be64_put(v1 + 8, 7);                          /* the old modification counter */
    qdb_be64_put(v1 + 16, UINT64_C(1600000000000000)); /* created */
    qdb_be64_put(v1 + 24, UINT64_C(1700000000000000)); /* modified */
    qdb_be64_put(v1 + 32, 2);
    memcpy(v1 + QDB_RECORD_HEADER_V1, "hi", 2);
    qdb_record_meta d;
    const uint8_t *body;
    CU_ASSERT_EQUAL_FATAL(qdb_record_decode(v1, sizeof v1, &d, &body), QDB_OK);
    CU_ASSERT_EQUAL(d.version, UINT64_C(1700000000000000));
    CU_ASSERT_EQUAL(d.origin, 0);
    CU_ASSERT_FALSE(d.tombstone);
    CU_ASSERT_EQUAL(d.created_us, INT64_C(1600000000000000));
    CU_ASSERT_EQUAL(d.size, 2);
    CU_ASSERT_EQUAL(memcmp(body, "hi", 2), 0);
    v1[1] = QDB_RECORD_TOMBSTONE; /* format 1 had no flags */
    CU_ASSERT_EQUAL(qdb_record_decode(v1, sizeof v1, &d, &body), QDB_E_STORAGE);

    /* A newer write wins over it by version, and equal versions by origin. */
    qdb_record_meta a = {.version = d.version + 1}, b = {.version = d.version, .origin = 9};
    CU_ASSERT_TRUE(qdb_record_cmp(&a, &b) > 0);
    CU_ASSERT_TRUE(qdb_record_cmp(&b, &a) < 0);
    a.version = b.version;
    CU_ASSERT_TRUE(qdb_record_cmp(&a, &b) < 0);
    a.origin = 9;
    CU_ASSERT_EQUAL(qdb_record_cmp(&a, &b), 0);
}

static void test_record_corruption(void)
{
    static const uint8_t content[] = "0123456789";
    qdb_record_meta meta = {.version = 1, .size = 10};
    GByteArray *out = g_byte_array_new();
    qdb_record_encode(&meta, content, out);
    qdb_record_meta d;
    const uint8_t *body;
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_OK);

    /* Any flipped bit in the content, format, reserved or size is caught. */
    for (size_t at = 0; at < out->len; at++) {
        if (at >= 8 && at < 40)
            continue; /* version, origin and times are not covered by the checksum */
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = g_memdup2(out->data, out->len);
            copy[at] ^= (uint8_t)(1u << bit);
            CU_ASSERT_EQUAL(qdb_record_decode(copy, out->len, &d, &body), QDB_E_STORAGE);
            g_free(copy);
        }
    }
    /* Lengths that disagree with the size field. */
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len - 1, &d, &body), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, QDB_RECORD_HEADER - 1, &d, &body), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, 0, &d, &body), QDB_E_STORAGE);
    g_byte_array_append(out, (const uint8_t *)"x", 1);
    CU_ASSERT_EQUAL(qdb_record_decode(out->data, out->len, &d, &body), QDB_E_STORAGE);
    g_byte_array_unref(out);
}

static void test_record_key(void)
{
    qdb_id id;
    qdb_id_hash(&id, "alias", 5);
    uint8_t key[QDB_ID_BYTES + QDB_MAX_ALIAS];
    size_t n = qdb_record_key(key, &id, (const uint8_t *)"alias", 5);
    CU_ASSERT_EQUAL(n, QDB_ID_BYTES + 5);
    CU_ASSERT_EQUAL(memcmp(key, id.b, QDB_ID_BYTES), 0);
    CU_ASSERT_EQUAL(memcmp(key + QDB_ID_BYTES, "alias", 5), 0);
    CU_ASSERT_EQUAL(qdb_record_key(key, &id, NULL, 0), QDB_ID_BYTES);
}

static CU_TestInfo memory_tests[] = {
    {.pName = "put get overwrite del", .pTestFunc = test_put_get_del},
    {.pName = "iteration order", .pTestFunc = test_iterate_order},
    {.pName = "half-open ranges", .pTestFunc = test_iterate_ranges},
    {.pName = "stop early", .pTestFunc = test_iterate_stop},
    {.pName = "ring-shaped keys", .pTestFunc = test_many},
    {.pName = "peek and put_parts", .pTestFunc = test_peek_put_parts},
    {.pName = "keys waiting outside the tree", .pTestFunc = test_fresh_keys},
    {.pName = "index: removals and returns", .pTestFunc = test_index_removals},
    {.pName = "prefetch changes nothing", .pTestFunc = test_prefetch},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo fault_tests[] = {
    {.pName = "n-th call, one-shot", .pTestFunc = test_fault_nth_once},
    {.pName = "persistent, disarm, reset", .pTestFunc = test_fault_persistent},
    {.pName = "seeded fraction", .pTestFunc = test_fault_fraction},
    {.pName = "failures leave the inner store", .pTestFunc = test_fault_leaves_inner},
    {.pName = "iterate at the start and part-way", .pTestFunc = test_fault_iterate},
    {.pName = "inner errors pass through", .pTestFunc = test_fault_passes_inner_errors},
    {.pName = "refuses an unknown version", .pTestFunc = test_fault_refuses_version},
    {.pName = "panic: every call fails, usage says failed", .pTestFunc = test_fault_panic},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo record_tests[] = {
    {.pName = "round trip", .pTestFunc = test_record_round_trip},
    {.pName = "format 1 still read; versions ordered", .pTestFunc = test_record_format1},
    {.pName = "corruption", .pTestFunc = test_record_corruption},
    {.pName = "key", .pTestFunc = test_record_key},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {.pName = "storage memory", .pTests = memory_tests},
    {.pName = "storage fault", .pTests = fault_tests},
    {.pName = "storage record", .pTests = record_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return qdb_test_run(suites);
}

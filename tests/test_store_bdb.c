/* SPDX-License-Identifier: BSD-2-Clause */
/* Storage seam tests: one conformance suite run over the memory backend, over
 * the Berkeley DB backend and over the fault wrapper (storage/fault.h) around
 * the memory backend with no fault armed, then BDB-only tests.  The fault
 * wrapper's own tests are in test_storage.c.
 *
 * Sections:
 *   - helpers: temp roots, reference records, collecting an iteration
 *   - conformance (written once over a backend factory, run per backend)
 *   - BDB: reopen, compression, corrupt values, checkpoint and log removal,
 *     crash durability (fork + SIGKILL), bad roots
 *   - suites and main
 */
#include "storage/bdb.h"

#include <db.h>
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "node/error.h"
#include "storage/fault.h"
#include "storage/memory.h"
#include "tests/testutil.h"

/* ---- helpers ---------------------------------------------------------------- */

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d) {
        const char *name;
        while ((name = g_dir_read_name(d)) != NULL) {
            char *child = g_build_filename(path, name, NULL);
            rm_rf(child);
            g_free(child);
        }
        g_dir_close(d);
        g_rmdir(path);
    } else {
        g_remove(path);
    }
}

static char *tmp_root(void)
{
    GError *gerr = NULL;
    char *root = g_dir_make_tmp("qdb-test-bdb-XXXXXX", &gerr);
    if (!root) {
        fprintf(stderr, "g_dir_make_tmp: %s\n", gerr->message);
        g_error_free(gerr);
    }
    return root;
}

static qdb_storage *bdb_open_or_report(const char *root, const qdb_bdb_options *opt)
{
    char err[QDB_ERRMSG_SIZE];
    qdb_storage *s = qdb_storage_bdb_open(root, opt, err);
    if (!s)
        fprintf(stderr, "qdb_storage_bdb_open(%s): %s\n", root, err);
    return s;
}

/* A backend under test: open a fresh empty store, close it (and clean up). */
typedef struct backend {
    const char *name;
    qdb_storage *(*open)(void);
    void (*close)(qdb_storage *s);
} backend;

static qdb_storage *memory_open(void)
{
    return qdb_storage_memory_new();
}

static void memory_close(qdb_storage *s)
{
    s->destroy(s);
}

/* The owner's `data` pointer carries the temp root to remove afterwards. */
static qdb_storage *bdb_tmp_open(void)
{
    char *root = tmp_root();
    if (!root)
        return NULL;
    qdb_storage *s = bdb_open_or_report(root, NULL);
    if (!s) {
        rm_rf(root);
        g_free(root);
        return NULL;
    }
    s->data = root;
    return s;
}

static void bdb_tmp_close(qdb_storage *s)
{
    char *root = s->data;
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

/* Unarmed, the wrapper must be indistinguishable from what it wraps. */
static qdb_storage *fault_memory_open(void)
{
    return qdb_storage_fault_new(qdb_storage_memory_new());
}

static void fault_memory_close(qdb_storage *s)
{
    qdb_fault_stats st;
    qdb_storage_fault_stats(s, &st);
    for (int m = 0; m < QDB_FAULT_N_METHODS; m++)
        CU_ASSERT_EQUAL(st.injected[m], 0);
    s->destroy(s); /* the memory store with it */
}

static const backend memory_backend = { "memory", memory_open, memory_close };
static const backend bdb_backend = { "bdb", bdb_tmp_open, bdb_tmp_close };
static const backend fault_memory_backend = { "fault(memory)", fault_memory_open,
                                              fault_memory_close };

#define BYTES(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

static int put_s(qdb_storage *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    return s->put(s, k, kl, v, vl);
}

/* get() and compare bit for bit. */
static bool get_equals(qdb_storage *s, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    uint8_t *out = NULL;
    size_t out_len = 12345;
    int rc = s->get(s, k, kl, &out, &out_len);
    bool ok = rc == QDB_OK && out_len == vl && (vl == 0 || memcmp(out, v, vl) == 0);
    if (rc != QDB_OK)
        fprintf(stderr, "get: %s (%s)\n", qdb_strerror(rc), rc == QDB_E_STORAGE ? s->errmsg : "");
    g_free(out);
    return ok;
}

static int get_rc(qdb_storage *s, const uint8_t *k, size_t kl)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    int rc = s->get(s, k, kl, &out, &out_len);
    g_free(out);
    return rc;
}

/* What an iteration saw: keys and values in order. */
typedef struct seen {
    GPtrArray *keys;   /* GBytes */
    GPtrArray *values; /* GBytes */
    guint stop_after;  /* 0: never stop */
} seen;

static void seen_init(seen *w, guint stop_after)
{
    w->keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    w->values = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    w->stop_after = stop_after;
}

static void seen_clear(seen *w)
{
    g_ptr_array_free(w->keys, TRUE);
    g_ptr_array_free(w->values, TRUE);
}

static int seen_fn(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    seen *w = arg;
    g_ptr_array_add(w->keys, g_bytes_new(key, key_len));
    g_ptr_array_add(w->values, g_bytes_new(value, value_len));
    return w->stop_after && w->keys->len >= w->stop_after;
}

static bool bytes_is(GBytes *b, const uint8_t *p, size_t n)
{
    gsize len;
    const uint8_t *d = g_bytes_get_data(b, &len);
    return len == n && (n == 0 || memcmp(d, p, n) == 0);
}

/* Fill buf with pseudo-random bytes from a seeded generator. */
static void random_bytes(GRand *r, uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)g_rand_int_range(r, 0, 256);
}

/* Compressible text: words from a small vocabulary, chosen by r. */
static void text_bytes(GRand *r, uint8_t *buf, size_t n)
{
    static const char *const words[] = { "ring ", "node ", "finger ", "successor ",
                                         "stabilize ", "alias ", "entry ", "hive " };
    size_t i = 0;
    while (i < n) {
        const char *w = words[g_rand_int_range(r, 0, G_N_ELEMENTS(words))];
        for (size_t j = 0; w[j] && i < n; j++)
            buf[i++] = (uint8_t)w[j];
    }
}

/* ---- conformance ------------------------------------------------------------- */

static void conf_put_get(const backend *b)
{
    qdb_storage *s = b->open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->version, QDB_SEAM_VERSION);

    static const uint8_t zk[] = { 0, 0, 0 };
    static const uint8_t zv[] = { 0, 1, 0, 0, 255, 0 };
    CU_ASSERT_EQUAL(put_s(s, zk, sizeof zk, zv, sizeof zv), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("empty"), (const uint8_t *)"", 0), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("one"), BYTES("x")), QDB_OK);

    GRand *r = g_rand_new_with_seed(7);
    uint8_t big_text[3000], big_rand[5000], zeros[700] = { 0 };
    text_bytes(r, big_text, sizeof big_text);
    random_bytes(r, big_rand, sizeof big_rand);
    CU_ASSERT_EQUAL(put_s(s, BYTES("text"), big_text, sizeof big_text), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("rand"), big_rand, sizeof big_rand), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("zeros"), zeros, sizeof zeros), QDB_OK);

    CU_ASSERT(get_equals(s, zk, sizeof zk, zv, sizeof zv));
    CU_ASSERT(get_equals(s, BYTES("empty"), (const uint8_t *)"", 0));
    CU_ASSERT(get_equals(s, BYTES("one"), BYTES("x")));
    CU_ASSERT(get_equals(s, BYTES("text"), big_text, sizeof big_text));
    CU_ASSERT(get_equals(s, BYTES("rand"), big_rand, sizeof big_rand));
    CU_ASSERT(get_equals(s, BYTES("zeros"), zeros, sizeof zeros));

    /* An empty value still comes back as a buffer the caller frees. */
    uint8_t *out = NULL;
    size_t out_len = 99;
    CU_ASSERT_EQUAL(s->get(s, BYTES("empty"), &out, &out_len), QDB_OK);
    CU_ASSERT_EQUAL(out_len, 0);
    CU_ASSERT_PTR_NOT_NULL(out);
    g_free(out);

    /* Absent keys, including prefixes and extensions of present ones. */
    CU_ASSERT_EQUAL(get_rc(s, BYTES("on")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(get_rc(s, BYTES("one\0")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(get_rc(s, zk, 2), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(get_rc(s, BYTES("nothing")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->count(s), 6);
    g_rand_free(r);
    b->close(s);
}

static void conf_overwrite(const backend *b)
{
    qdb_storage *s = b->open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint8_t long_v[2048];
    memset(long_v, 'L', sizeof long_v);
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), BYTES("short")), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), long_v, sizeof long_v), QDB_OK);
    CU_ASSERT(get_equals(s, BYTES("k"), long_v, sizeof long_v));
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), BYTES("s")), QDB_OK);
    CU_ASSERT(get_equals(s, BYTES("k"), BYTES("s")));
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), (const uint8_t *)"", 0), QDB_OK);
    CU_ASSERT(get_equals(s, BYTES("k"), (const uint8_t *)"", 0));
    CU_ASSERT_EQUAL(s->count(s), 1);
    b->close(s);
}

static void conf_del(const backend *b)
{
    qdb_storage *s = b->open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->del(s, BYTES("a")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(put_s(s, BYTES("a"), BYTES("1")), QDB_OK);
    CU_ASSERT_EQUAL(put_s(s, BYTES("ab"), BYTES("2")), QDB_OK);
    CU_ASSERT_EQUAL(s->del(s, BYTES("ab\0")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->count(s), 2);
    CU_ASSERT_EQUAL(s->del(s, BYTES("a")), QDB_OK);
    CU_ASSERT_EQUAL(get_rc(s, BYTES("a")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT(get_equals(s, BYTES("ab"), BYTES("2")));
    CU_ASSERT_EQUAL(s->del(s, BYTES("a")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->count(s), 1);
    /* Deleted then written again. */
    CU_ASSERT_EQUAL(put_s(s, BYTES("a"), BYTES("3")), QDB_OK);
    CU_ASSERT(get_equals(s, BYTES("a"), BYTES("3")));
    CU_ASSERT_EQUAL(s->count(s), 2);
    CU_ASSERT_EQUAL(s->del(s, BYTES("a")), QDB_OK);
    CU_ASSERT_EQUAL(s->del(s, BYTES("ab")), QDB_OK);
    CU_ASSERT_EQUAL(s->count(s), 0);
    b->close(s);
}

static void conf_count(const backend *b)
{
    qdb_storage *s = b->open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->count(s), 0);
    char key[32];
    for (int i = 0; i < 300; i++) {
        int n = g_snprintf(key, sizeof key, "key-%d", i);
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, (uint8_t *)key, (size_t)n), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), 300);
    for (int i = 0; i < 300; i += 2) { /* overwrites do not count */
        int n = g_snprintf(key, sizeof key, "key-%d", i);
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, BYTES("v")), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), 300);
    for (int i = 0; i < 300; i += 3) {
        int n = g_snprintf(key, sizeof key, "key-%d", i);
        CU_ASSERT_EQUAL(s->del(s, (uint8_t *)key, (size_t)n), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), 200);
    b->close(s);
}

/* Keys in the order the seam promises: memcmp, shorter first on a common
 * prefix, bytes unsigned. */
static const struct {
    const char *k;
    size_t n;
} ordered[] = {
    { "", 0 },          { "\x00", 1 },      { "\x00\x00", 2 }, { "\x00\x01", 2 }, { "a", 1 },
    { "a\x00", 2 },     { "a\x00\x00", 3 }, { "a\x01", 2 },   { "ab", 2 },
    { "abc", 3 },       { "abd", 3 },      { "b", 1 },        { "\x7f", 1 },
    { "\x80", 1 },      { "\xff", 1 },     { "\xff\x00", 2 }, { "\xff\xff", 2 },
};
#define N_ORDERED G_N_ELEMENTS(ordered)

/* A store with the ordered keys inserted in a shuffled order; the value of a
 * key is "v" + its index. */
static qdb_storage *open_ordered(const backend *b)
{
    qdb_storage *s = b->open();
    if (!s)
        return NULL;
    guint idx[N_ORDERED];
    for (guint i = 0; i < N_ORDERED; i++)
        idx[i] = i;
    GRand *r = g_rand_new_with_seed(42);
    for (guint i = N_ORDERED - 1; i > 0; i--) {
        guint j = (guint)g_rand_int_range(r, 0, (gint32)i + 1);
        guint t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    g_rand_free(r);
    for (guint i = 0; i < N_ORDERED; i++) {
        char v[8];
        int n = g_snprintf(v, sizeof v, "v%u", idx[i]);
        put_s(s, (const uint8_t *)ordered[idx[i]].k, ordered[idx[i]].n, (uint8_t *)v, (size_t)n);
    }
    return s;
}

/* Iterates [from, to) and checks the result is ordered[first .. last). */
static void check_range(qdb_storage *s, const char *from, size_t from_len, const char *to,
                        size_t to_len, guint first, guint last)
{
    seen w;
    seen_init(&w, 0);
    int rc = s->iterate(s, (const uint8_t *)from, from_len, (const uint8_t *)to, to_len, seen_fn, &w);
    CU_ASSERT_EQUAL(rc, QDB_OK);
    CU_ASSERT_EQUAL(w.keys->len, last - first);
    for (guint i = 0; i < w.keys->len && first + i < last; i++) {
        char v[8];
        int n = g_snprintf(v, sizeof v, "v%u", first + i);
        CU_ASSERT(bytes_is(w.keys->pdata[i], (const uint8_t *)ordered[first + i].k,
                           ordered[first + i].n));
        CU_ASSERT(bytes_is(w.values->pdata[i], (uint8_t *)v, (size_t)n));
    }
    seen_clear(&w);
}

static void conf_iterate_order(const backend *b)
{
    qdb_storage *s = open_ordered(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->count(s), N_ORDERED);
    check_range(s, NULL, 0, NULL, 0, 0, N_ORDERED);  /* everything */
    check_range(s, "", 0, NULL, 0, 0, N_ORDERED);    /* empty from = from the start */
    b->close(s);
}

static void conf_iterate_ranges(const backend *b)
{
    qdb_storage *s = open_ordered(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    /* Indices into ordered[]: 0 "", 1 "\0", 2 "\0\0", 4 "a", 5 "a\0",
     * 6 "a\0\0", 7 "a\1", 8 "ab", 9 "abc", 10 "abd", 11 "b", 16 "\xff\xff". */
    check_range(s, "a", 1, "b", 1, 4, 11);          /* from inclusive, to exclusive */
    check_range(s, "a", 1, "a\0", 2, 4, 5);         /* just "a": to is its successor */
    check_range(s, "a\0", 2, "ab", 2, 5, 8);        /* prefixes of each other */
    check_range(s, "a\0\0\0", 4, "abc", 3, 7, 9);   /* from between keys */
    check_range(s, "abc", 3, "abc", 3, 9, 9);       /* from == to: empty */
    check_range(s, "b", 1, "a", 1, 11, 11);         /* to < from: empty */
    check_range(s, "aa", 2, "ab", 2, 8, 8);         /* nothing in between */
    check_range(s, "\xff\xff\x00", 3, NULL, 0, 17, 17); /* past the end */
    check_range(s, "b", 1, NULL, 0, 11, N_ORDERED);  /* unbounded */
    check_range(s, "", 0, "a", 1, 0, 4);            /* from the start */
    check_range(s, "", 0, "\x00", 1, 0, 1);         /* only the empty key */
    check_range(s, "\x00", 1, "\x00\x00", 2, 1, 2);
    b->close(s);
}

static void conf_iterate_stop(const backend *b)
{
    qdb_storage *s = open_ordered(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    seen w;
    seen_init(&w, 3);
    CU_ASSERT_EQUAL(s->iterate(s, BYTES("a"), NULL, 0, seen_fn, &w), QDB_OK);
    CU_ASSERT_EQUAL(w.keys->len, 3);
    if (w.keys->len == 3) {
        CU_ASSERT(bytes_is(w.keys->pdata[0], BYTES("a")));
        CU_ASSERT(bytes_is(w.keys->pdata[2], BYTES("a\0\0")));
    }
    seen_clear(&w);
    seen_init(&w, 1); /* stop at the first */
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, seen_fn, &w), QDB_OK);
    CU_ASSERT_EQUAL(w.keys->len, 1);
    seen_clear(&w);
    b->close(s);
}

/* Many records of mixed sizes (some past 1 MiB in total per few records):
 * order, values and counts survive a walk that spans many cursor batches. */
static size_t big_size(int i)
{
    return i % 97 == 0 ? (size_t)200000 + (size_t)i : (size_t)(i * 37 % 3001);
}

static void big_value(int i, uint8_t *buf, size_t n)
{
    GRand *r = g_rand_new_with_seed((guint32)i);
    if (i % 2)
        text_bytes(r, buf, n);
    else
        random_bytes(r, buf, n);
    g_rand_free(r);
}

static void conf_iterate_many(const backend *b)
{
    qdb_storage *s = b->open();
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    enum { N = 1000 };
    uint8_t *buf = g_malloc(300000);
    char key[16];
    for (int i = N - 1; i >= 0; i--) {
        int n = g_snprintf(key, sizeof key, "%06d", i);
        big_value(i, buf, big_size(i));
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, buf, big_size(i)), QDB_OK);
    }
    CU_ASSERT_EQUAL(s->count(s), N);
    seen w;
    seen_init(&w, 0);
    CU_ASSERT_EQUAL(s->iterate(s, BYTES("000100"), BYTES("000900"), seen_fn, &w), QDB_OK);
    CU_ASSERT_EQUAL(w.keys->len, 800);
    for (guint j = 0; j < w.keys->len; j++) {
        int i = 100 + (int)j;
        int n = g_snprintf(key, sizeof key, "%06d", i);
        big_value(i, buf, big_size(i));
        CU_ASSERT(bytes_is(w.keys->pdata[j], (uint8_t *)key, (size_t)n));
        CU_ASSERT(bytes_is(w.values->pdata[j], buf, big_size(i)));
    }
    seen_clear(&w);
    seen_init(&w, 0);
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, seen_fn, &w), QDB_OK);
    CU_ASSERT_EQUAL(w.keys->len, N);
    seen_clear(&w);
    g_free(buf);
    b->close(s);
}

/* One CUnit wrapper per backend for each conformance test. */
#define CONFORMANCE(X)                                                                        \
    X(put_get) X(overwrite) X(del) X(count) X(iterate_order) X(iterate_ranges)                \
        X(iterate_stop) X(iterate_many)
#define WRAP(name)                                                                            \
    static void mem_##name(void) { conf_##name(&memory_backend); }                            \
    static void bdb_##name(void) { conf_##name(&bdb_backend); }                               \
    static void flt_##name(void) { conf_##name(&fault_memory_backend); }
CONFORMANCE(WRAP)

/* ---- BDB: reopen, compression, corruption, checkpoint ------------------------ */

static void test_reopen(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint8_t *buf = g_malloc(300000);
    char key[16];
    for (int i = 0; i < 200; i++) {
        int n = g_snprintf(key, sizeof key, "r%04d", i);
        big_value(i, buf, big_size(i));
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, buf, big_size(i)), QDB_OK);
    }
    for (int i = 0; i < 200; i += 4) {
        int n = g_snprintf(key, sizeof key, "r%04d", i);
        CU_ASSERT_EQUAL(s->del(s, (uint8_t *)key, (size_t)n), QDB_OK);
    }
    s->destroy(s);

    /* Reopened with compression off: compressed values still read back. */
    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.compress_threshold = SIZE_MAX;
    s = bdb_open_or_report(root, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->count(s), 150);
    for (int i = 0; i < 200; i++) {
        int n = g_snprintf(key, sizeof key, "r%04d", i);
        if (i % 4 == 0) {
            CU_ASSERT_EQUAL(get_rc(s, (uint8_t *)key, (size_t)n), QDB_E_ALIAS_NOT_FOUND);
        } else {
            big_value(i, buf, big_size(i));
            CU_ASSERT(get_equals(s, (uint8_t *)key, (size_t)n, buf, big_size(i)));
        }
    }
    s->destroy(s);
    g_free(buf);
    rm_rf(root);
    g_free(root);
}

static void test_compression(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    qdb_bdb_stats st;
    GRand *r = g_rand_new_with_seed(2024);
    enum { BIG = 64 * 1024 };
    uint8_t *v = g_malloc(BIG);

    text_bytes(r, v, BIG);
    CU_ASSERT_EQUAL(put_s(s, BYTES("text"), v, BIG), QDB_OK);
    qdb_storage_bdb_stats(s, &st);
    CU_ASSERT_EQUAL(st.puts, 1);
    CU_ASSERT_EQUAL(st.compressed_puts, 1);
    CU_ASSERT_EQUAL(st.bytes_in, BIG);
    CU_ASSERT(st.bytes_stored < BIG / 4);
    CU_ASSERT(get_equals(s, BYTES("text"), v, BIG));

    /* Incompressible: stored raw, one codec byte more than the value. */
    random_bytes(r, v, BIG);
    CU_ASSERT_EQUAL(put_s(s, BYTES("rand"), v, BIG), QDB_OK);
    qdb_bdb_stats st2;
    qdb_storage_bdb_stats(s, &st2);
    CU_ASSERT_EQUAL(st2.puts, 2);
    CU_ASSERT_EQUAL(st2.compressed_puts, 1);
    CU_ASSERT_EQUAL(st2.bytes_in, 2 * BIG);
    CU_ASSERT_EQUAL(st2.bytes_stored - st.bytes_stored, BIG + 1);
    CU_ASSERT(get_equals(s, BYTES("rand"), v, BIG));

    /* The threshold: 511 zero bytes raw, 512 compressed. */
    memset(v, 0, 512);
    CU_ASSERT_EQUAL(put_s(s, BYTES("z511"), v, 511), QDB_OK);
    qdb_storage_bdb_stats(s, &st);
    CU_ASSERT_EQUAL(st.compressed_puts, 1);
    CU_ASSERT_EQUAL(st.bytes_stored - st2.bytes_stored, 512);
    CU_ASSERT_EQUAL(put_s(s, BYTES("z512"), v, 512), QDB_OK);
    qdb_storage_bdb_stats(s, &st2);
    CU_ASSERT_EQUAL(st2.compressed_puts, 2);
    CU_ASSERT(st2.bytes_stored - st.bytes_stored < 64);
    CU_ASSERT(get_equals(s, BYTES("z511"), v, 511));
    CU_ASSERT(get_equals(s, BYTES("z512"), v, 512));

    /* Compression that saves less than 1/8 is not kept: half random, half
     * zeros compresses to about 1/2, kept; 15/16 random is not. */
    random_bytes(r, v, 4096);
    memset(v + 2048, 0, 2048);
    CU_ASSERT_EQUAL(put_s(s, BYTES("half"), v, 4096), QDB_OK);
    qdb_storage_bdb_stats(s, &st);
    CU_ASSERT_EQUAL(st.compressed_puts, 3);
    CU_ASSERT(get_equals(s, BYTES("half"), v, 4096));
    random_bytes(r, v, 4096);
    memset(v + 3840, 0, 256);
    CU_ASSERT_EQUAL(put_s(s, BYTES("mostly"), v, 4096), QDB_OK);
    qdb_storage_bdb_stats(s, &st2);
    CU_ASSERT_EQUAL(st2.compressed_puts, 3);
    CU_ASSERT_EQUAL(st2.bytes_stored - st.bytes_stored, 4097);
    CU_ASSERT(get_equals(s, BYTES("mostly"), v, 4096));

    g_rand_free(r);
    g_free(v);
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

/* Writes raw stored values with BDB directly, bypassing the codec. */
static bool poke_raw(const char *root, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    DB_ENV *env;
    DB *db;
    if (db_env_create(&env, 0))
        return false;
    bool ok = env->open(env, root, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                                       DB_INIT_MPOOL | DB_RECOVER, 0600) == 0 &&
              db_create(&db, env, 0) == 0;
    if (ok) {
        ok = db->open(db, NULL, "entries.db", NULL, DB_BTREE, DB_AUTO_COMMIT, 0600) == 0;
        if (ok) {
            DBT dk = { .data = (void *)k, .size = (u_int32_t)kl };
            DBT dv = { .data = (void *)v, .size = (u_int32_t)vl };
            ok = db->put(db, NULL, &dk, &dv, DB_AUTO_COMMIT) == 0;
        }
        db->close(db, 0);
    }
    env->close(env, 0);
    return ok;
}

static void test_corrupt(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint8_t v[4096] = { 0 };
    CU_ASSERT_EQUAL(put_s(s, BYTES("good"), v, sizeof v), QDB_OK);
    uint8_t *stored = NULL;
    size_t stored_len = 0;
    s->destroy(s);

    /* The good record's stored form, to damage it in different ways. */
    {
        DB_ENV *env;
        DB *db;
        CU_ASSERT_FATAL(db_env_create(&env, 0) == 0);
        CU_ASSERT_FATAL(env->open(env, root, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK |
                                                 DB_INIT_LOG | DB_INIT_MPOOL, 0600) == 0);
        CU_ASSERT_FATAL(db_create(&db, env, 0) == 0);
        CU_ASSERT_FATAL(db->open(db, NULL, "entries.db", NULL, DB_BTREE, DB_AUTO_COMMIT, 0600) == 0);
        DBT dk = { .data = "good", .size = 4 };
        DBT dv = { .flags = DB_DBT_MALLOC };
        CU_ASSERT_FATAL(db->get(db, NULL, &dk, &dv, 0) == 0);
        stored = g_malloc(dv.size);
        memcpy(stored, dv.data, dv.size);
        stored_len = dv.size;
        free(dv.data);
        db->close(db, 0);
        env->close(env, 0);
    }
    CU_ASSERT_EQUAL_FATAL(stored[0], 1); /* zstd */
    CU_ASSERT_FATAL(stored_len > 12);
    /* The layout in bdb.c's banner, which stores on disk depend on: the
     * codec byte, then the original length as a big-endian u64. */
    static const uint8_t len_4096_be[8] = { 0, 0, 0, 0, 0, 0, 0x10, 0x00 };
    CU_ASSERT_EQUAL(memcmp(stored + 1, len_4096_be, sizeof len_4096_be), 0);

    uint8_t bad_codec[] = { 7, 'x' };
    CU_ASSERT(poke_raw(root, BYTES("codec"), bad_codec, sizeof bad_codec));
    CU_ASSERT(poke_raw(root, BYTES("empty"), (const uint8_t *)"", 0));
    CU_ASSERT(poke_raw(root, BYTES("short"), stored, 5)); /* header cut */
    uint8_t *dam = g_malloc(stored_len);
    memcpy(dam, stored, stored_len);
    dam[8] ^= 1; /* declared length differs from the frame's */
    CU_ASSERT(poke_raw(root, BYTES("length"), dam, stored_len));
    memcpy(dam, stored, stored_len);
    CU_ASSERT(poke_raw(root, BYTES("trunc"), dam, stored_len - 3)); /* frame cut */
    g_free(dam);

    s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT(get_equals(s, BYTES("good"), v, sizeof v));
    static const char *const names[] = { "codec", "empty", "short", "length", "trunc" };
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        s->errmsg[0] = '\0';
        CU_ASSERT_EQUAL(get_rc(s, (const uint8_t *)names[i], strlen(names[i])), QDB_E_STORAGE);
        CU_ASSERT_PTR_NOT_NULL(strstr(s->errmsg, "corrupt"));
    }
    seen w;
    seen_init(&w, 0);
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, seen_fn, &w), QDB_E_STORAGE);
    seen_clear(&w);
    /* The corrupt records can still be overwritten and deleted. */
    CU_ASSERT_EQUAL(put_s(s, BYTES("codec"), BYTES("fixed")), QDB_OK);
    CU_ASSERT(get_equals(s, BYTES("codec"), BYTES("fixed")));
    CU_ASSERT_EQUAL(s->del(s, BYTES("trunc")), QDB_OK);
    CU_ASSERT_EQUAL(s->count(s), 5);
    s->destroy(s);
    g_free(stored);
    rm_rf(root);
    g_free(root);
}

/* The BDB walk holds no cursor while fn runs, so a callback that writes
 * (beyond the seam's contract, but easy to get wrong in hand-over code)
 * neither deadlocks nor derails the walk. */
static int delete_visited(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                          size_t value_len)
{
    qdb_storage *s = arg;
    int *visited = s->data;
    (*visited)++;
    return s->del(s, key, key_len) != QDB_OK;
}

static void test_iterate_callback_writes(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    char key[16];
    for (int i = 0; i < 600; i++) { /* more than two batches of 256 */
        int n = g_snprintf(key, sizeof key, "%05d", i);
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, BYTES("value")), QDB_OK);
    }
    int visited = 0;
    s->data = &visited;
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, delete_visited, s), QDB_OK);
    CU_ASSERT_EQUAL(visited, 600);
    CU_ASSERT_EQUAL(s->count(s), 0);
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

static guint count_logs(const char *root)
{
    guint n = 0;
    GDir *d = g_dir_open(root, 0, NULL);
    if (!d)
        return 0;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL)
        n += g_str_has_prefix(name, "log.");
    g_dir_close(d);
    return n;
}

/* 40 MB of incompressible writes span several 10 MB log files; after
 * checkpoints only the files recovery needs are left. */
static void test_checkpoint_removes_logs(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    enum { VAL = 8192, N = 5000, KEYS = 500 };
    uint8_t *v = g_malloc(VAL);
    GRand *r = g_rand_new_with_seed(99);
    guint most = 0;
    char key[16];
    for (int i = 0; i < N; i++) {
        random_bytes(r, v, VAL);
        int n = g_snprintf(key, sizeof key, "k%d", i % KEYS);
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, (size_t)n, v, VAL), QDB_OK);
        if (i % 1000 == 999) {
            CU_ASSERT_EQUAL(qdb_storage_bdb_checkpoint(s), QDB_OK);
            most = MAX(most, count_logs(root));
        }
    }
    CU_ASSERT_EQUAL(qdb_storage_bdb_checkpoint(s), QDB_OK);
    CU_ASSERT_EQUAL(qdb_storage_bdb_checkpoint(s), QDB_OK);
    CU_ASSERT(count_logs(root) >= 1);
    CU_ASSERT(count_logs(root) <= 2);
    CU_ASSERT(most <= 3);
    CU_ASSERT_EQUAL(s->count(s), KEYS);
    s->destroy(s);
    s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->count(s), KEYS);
    CU_ASSERT(get_equals(s, BYTES("k499"), v, VAL)); /* the last write */
    s->destroy(s);
    g_rand_free(r);
    g_free(v);
    rm_rf(root);
    g_free(root);
}

/* ---- BDB: depot limit, disk reserve, panic ----------------------------------- */

static qdb_storage_usage usage_of(qdb_storage *s)
{
    qdb_storage_usage u;
    s->usage(s, &u);
    return u;
}

/* Values stored raw (compression off): a record is its key (3 bytes) and the
 * codec byte + value.  Limit 10,000 bytes, warning at 50%. */
static void test_depot_limit(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.compress_threshold = SIZE_MAX;
    o.max_depot_bytes = 10000;
    o.warn_percent = 50;
    qdb_storage *s = bdb_open_or_report(root, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint8_t v[2000];
    memset(v, 'x', sizeof v);
    char key[8];
    qdb_storage_usage u = usage_of(s);
    CU_ASSERT_TRUE(u.depot_bytes == 0 && u.max_bytes == 10000 && u.warn_bytes == 5000 &&
                   !u.warning && !u.disk_full && !u.failed);
    for (int i = 0; i < 9; i++) {
        g_snprintf(key, sizeof key, "d%02d", i);
        CU_ASSERT_EQUAL(put_s(s, (uint8_t *)key, 3, v, 1000), QDB_OK);
        CU_ASSERT_EQUAL(usage_of(s).warning, i >= 4); /* 5 x 1004 >= 5000 */
    }
    CU_ASSERT_EQUAL(usage_of(s).depot_bytes, 9 * 1004);
    /* 10 x 1004 > 10,000: refused, nothing written */
    CU_ASSERT_EQUAL(put_s(s, BYTES("d09"), v, 1000), QDB_E_DEPOT_FULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->errmsg, "depot full (9036 of 10000 bytes)"));
    CU_ASSERT_EQUAL(get_rc(s, BYTES("d09")), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(s->count(s), 9);
    /* an overwrite that grows past the limit is refused, one that fits or
     * shrinks runs; a put exactly to the limit runs */
    CU_ASSERT_EQUAL(put_s(s, BYTES("d00"), v, 2000), QDB_E_DEPOT_FULL);
    CU_ASSERT_TRUE(get_equals(s, BYTES("d00"), v, 1000));
    CU_ASSERT_EQUAL(put_s(s, BYTES("d00"), v, 10), QDB_OK);
    CU_ASSERT_EQUAL(usage_of(s).depot_bytes, 8 * 1004 + 14);
    CU_ASSERT_EQUAL(put_s(s, BYTES("d00"), v, 10000 - 8 * 1004 - 4), QDB_OK);
    CU_ASSERT_EQUAL(usage_of(s).depot_bytes, 10000);
    CU_ASSERT_EQUAL(put_s(s, BYTES("d99"), v, 0), QDB_E_DEPOT_FULL);
    /* removes make room; below the warning level it clears */
    for (int i = 0; i < 6; i++) {
        g_snprintf(key, sizeof key, "d%02d", i);
        CU_ASSERT_EQUAL(s->del(s, (uint8_t *)key, 3), QDB_OK);
    }
    u = usage_of(s);
    CU_ASSERT_EQUAL(u.depot_bytes, 3 * 1004);
    CU_ASSERT_FALSE(u.warning);
    CU_ASSERT_EQUAL(put_s(s, BYTES("d09"), v, 1000), QDB_OK);
    s->destroy(s);
    /* the count at open finds the same bytes */
    s = bdb_open_or_report(root, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(usage_of(s).depot_bytes, 4 * 1004);
    CU_ASSERT_EQUAL(s->count(s), 4);
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

/* The reserve is a file of real blocks under the root, none by default. */
static void test_disk_reserve(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    char *path = g_build_filename(root, "disk.reserve", NULL);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_FALSE(g_file_test(path, G_FILE_TEST_EXISTS));
    s->destroy(s);
    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.disk_reserve = 1 << 20;
    s = bdb_open_or_report(root, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    GStatBuf sb;
    CU_ASSERT_EQUAL_FATAL(g_stat(path, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_size, 1 << 20);
    CU_ASSERT_TRUE((uint64_t)sb.st_blocks * 512 >= (1 << 20)); /* allocated, not sparse */
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), BYTES("v")), QDB_OK);
    CU_ASSERT_FALSE(usage_of(s).disk_full);
    s->destroy(s);
    g_free(path);
    rm_rf(root);
    g_free(root);
}

static int count_fn(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)k, (void)kl, (void)v, (void)vl;
    ++*(int *)arg;
    return 0;
}

/* A panicked environment: usage says failed, every call fails with a
 * message that says so, destroy lets go quietly; the next open recovers
 * what was committed. */
static void test_panic(void)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    qdb_storage *s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put_s(s, BYTES("k"), BYTES("v")), QDB_OK);
    CU_ASSERT_FALSE(usage_of(s).failed);
    qdb_storage_bdb_panic(s);
    CU_ASSERT_TRUE(usage_of(s).failed);
    CU_ASSERT_EQUAL(get_rc(s, BYTES("k")), QDB_E_STORAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(s->errmsg, "restart qdbd"));
    CU_ASSERT_EQUAL(put_s(s, BYTES("l"), BYTES("w")), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(s->del(s, BYTES("k")), QDB_E_STORAGE);
    int n = 0;
    CU_ASSERT_EQUAL(s->iterate(s, NULL, 0, NULL, 0, count_fn, &n), QDB_E_STORAGE);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(qdb_storage_bdb_checkpoint(s), QDB_E_STORAGE);
    s->destroy(s);
    s = bdb_open_or_report(root, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_FALSE(usage_of(s).failed);
    CU_ASSERT_TRUE(get_equals(s, BYTES("k"), BYTES("v")));
    CU_ASSERT_EQUAL(get_rc(s, BYTES("l")), QDB_E_ALIAS_NOT_FOUND);
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

/* ---- BDB: crash durability ------------------------------------------------- */

enum { CRASH_RECORDS = 200, CRASH_SELF_KILL_AT = 137, CRASH_PARENT_KILL_AT = 100 };
#define CRASH_DEADLINE_US (60 * G_USEC_PER_SEC)

/* Record i of the crash tests: an ID-like 32-byte prefix + alias, and a
 * value of 50..3000 bytes, every third one compressible. */
static size_t crash_record(int i, uint8_t *key, uint8_t *val)
{
    for (int j = 0; j < 32; j++)
        key[j] = (uint8_t)(i * 131 + j * 7);
    g_snprintf((char *)key + 32, 16, "alias-%d", i);
    GRand *r = g_rand_new_with_seed(1000u + (guint32)i);
    size_t len = 50 + (size_t)(i * 53 % 2950);
    if (i % 3 == 0)
        text_bytes(r, val, len);
    else
        random_bytes(r, val, len);
    g_rand_free(r);
    return len;
}

static size_t crash_key_len(int i)
{
    char tmp[16];
    return 32 + (size_t)g_snprintf(tmp, sizeof tmp, "alias-%d", i);
}

/* Child: open, put records, acknowledge each one on the pipe after put()
 * returned, and die by SIGKILL after record self_kill_at (or be killed by the
 * parent).  Never returns. */
static G_GNUC_NORETURN void crash_child(const char *root, int sync, int self_kill_at, int ack_fd)
{
    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.sync = sync;
    char err[QDB_ERRMSG_SIZE];
    qdb_storage *s = qdb_storage_bdb_open(root, &o, err);
    if (!s)
        _exit(3);
    uint8_t key[64], val[3000];
    for (int i = 0; i < CRASH_RECORDS; i++) {
        size_t vl = crash_record(i, key, val);
        if (s->put(s, key, crash_key_len(i), val, vl) != QDB_OK)
            _exit(4);
        uint32_t ack = (uint32_t)i;
        if (write(ack_fd, &ack, sizeof ack) != sizeof ack)
            _exit(5);
        if (i == self_kill_at)
            kill(getpid(), SIGKILL);
    }
    /* Every record written before the parent's kill arrived (a loaded
     * machine lets the child run ahead of the acks the parent reads): wait
     * for the kill rather than exit, so the outcome does not depend on who
     * ran first. */
    if (self_kill_at >= 0)
        _exit(6); /* unreachable: we killed ourselves above */
    for (;;)
        pause();
}

/* Reads acknowledgements until EOF, or until `kill_after` of them when
 * kill_after > 0 (then SIGKILLs the child), within CRASH_DEADLINE_US.
 * Returns the number acknowledged, or -1 on timeout or a protocol error. */
static int crash_collect(pid_t pid, int fd, int kill_after)
{
    gint64 deadline = g_get_monotonic_time() + CRASH_DEADLINE_US;
    int acked = 0;
    for (;;) {
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, (int)(left / 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return -1;
        uint32_t ack;
        ssize_t n = read(fd, &ack, sizeof ack);
        if (n == 0)
            return acked;
        if (n != sizeof ack || ack != (uint32_t)acked)
            return -1;
        acked++;
        if (kill_after > 0 && acked == kill_after)
            kill(pid, SIGKILL); /* mid-way: the child may be inside put() */
    }
}

static void crash_run(int sync, int self_kill_at, int parent_kill_at)
{
    char *root = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    int fds[2];
    CU_ASSERT_FATAL(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        crash_child(root, sync, self_kill_at, fds[1]);
    }
    close(fds[1]);
    int acked = crash_collect(pid, fds[0], parent_kill_at);
    close(fds[0]);
    if (acked < 0)
        kill(pid, SIGKILL);
    int status = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (WIFEXITED(status))
        fprintf(stderr, "crash child exited with %d\n", WEXITSTATUS(status));
    if (self_kill_at >= 0) {
        CU_ASSERT_EQUAL(acked, self_kill_at + 1);
    } else {
        CU_ASSERT(acked >= parent_kill_at);
    }

    /* Reopen: recovery runs; every acknowledged record is there intact, and
     * a record whose put() was cut short is there entirely or not at all. */
    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.sync = sync;
    qdb_storage *s = bdb_open_or_report(root, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    uint8_t key[64], val[3000];
    int present = 0;
    for (int i = 0; i < CRASH_RECORDS; i++) {
        size_t vl = crash_record(i, key, val);
        if (i < acked) {
            CU_ASSERT(get_equals(s, key, crash_key_len(i), val, vl));
            present++;
        } else if (get_rc(s, key, crash_key_len(i)) == QDB_OK) {
            CU_ASSERT(get_equals(s, key, crash_key_len(i), val, vl));
            CU_ASSERT_EQUAL(i, acked); /* only the one in flight */
            present++;
        }
    }
    CU_ASSERT_EQUAL(s->count(s), (uint64_t)present);
    if (self_kill_at >= 0)
        CU_ASSERT_EQUAL(present, acked);
    s->destroy(s);
    rm_rf(root);
    g_free(root);
}

static void test_crash_nosync(void)
{
    crash_run(0, CRASH_SELF_KILL_AT, -1);
}

static void test_crash_sync(void)
{
    crash_run(1, CRASH_SELF_KILL_AT, -1);
}

static void test_crash_killed_by_parent(void)
{
    crash_run(0, -1, CRASH_PARENT_KILL_AT);
}

/* ---- BDB: bad roots and options -------------------------------------------- */

static void expect_open_fails(const char *root, const qdb_bdb_options *o, const char *needle)
{
    char err[QDB_ERRMSG_SIZE] = "untouched";
    qdb_storage *s = qdb_storage_bdb_open(root, o, err);
    CU_ASSERT_PTR_NULL(s);
    if (s)
        s->destroy(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    if (!strstr(err, needle))
        fprintf(stderr, "open(%s): \"%s\" lacks \"%s\"\n", root, err, needle);
}

static void test_bad_root(void)
{
    char *dir = tmp_root();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *file = g_build_filename(dir, "plain-file", NULL);
    CU_ASSERT_FATAL(g_file_set_contents(file, "x", 1, NULL));
    expect_open_fails(file, NULL, "not a directory");
    char *below = g_build_filename(file, "sub", NULL);
    expect_open_fails(below, NULL, "cannot create root");
    expect_open_fails("/proc/qdb-no-such-root", NULL, "cannot create root");

    /* Read-only directory: only meaningful when not root (root may write). */
    char *ro = g_build_filename(dir, "ro", NULL);
    CU_ASSERT_FATAL(g_mkdir(ro, 0500) == 0);
    if (geteuid() != 0)
        expect_open_fails(ro, NULL, "not writable");

    /* A new root is created with mode 0700, parents included. */
    char *fresh = g_build_filename(dir, "a", "b", "root", NULL);
    qdb_storage *s = bdb_open_or_report(fresh, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    struct stat sb;
    CU_ASSERT(g_stat(fresh, &sb) == 0 && (sb.st_mode & 0777) == 0700);
    /* A second open of a live root is refused: recovery would wreck it. */
    expect_open_fails(fresh, NULL, "in use");
    s->destroy(s);
    s = bdb_open_or_report(fresh, NULL); /* released by destroy */
    CU_ASSERT_PTR_NOT_NULL(s);
    if (s)
        s->destroy(s);

    qdb_bdb_options o = qdb_bdb_options_defaults();
    o.compress_level = 1000;
    expect_open_fails(fresh, &o, "zstd level");

    g_chmod(ro, 0700);
    rm_rf(dir);
    g_free(fresh);
    g_free(ro);
    g_free(below);
    g_free(file);
    g_free(dir);
}

static void test_defaults(void)
{
    qdb_bdb_options o = qdb_bdb_options_defaults();
    CU_ASSERT_EQUAL(o.sync, 0);
    CU_ASSERT_EQUAL(o.compress_threshold, 512);
    CU_ASSERT_EQUAL(o.compress_level, 3);
    CU_ASSERT_EQUAL(o.cache_bytes, (size_t)16 << 20);
    CU_ASSERT_EQUAL(o.max_depot_bytes, 0);
    CU_ASSERT_EQUAL(o.warn_percent, 90);
    CU_ASSERT_EQUAL(o.disk_reserve, 0);
}

/* ---- suites and main ---------------------------------------------------------- */

#define TEST_ENTRY(prefix, name) { .pName = #name, .pTestFunc = prefix##_##name },
#define MEM_ENTRY(name) TEST_ENTRY(mem, name)
#define BDB_ENTRY(name) TEST_ENTRY(bdb, name)
#define FLT_ENTRY(name) TEST_ENTRY(flt, name)

static CU_TestInfo memory_tests[] = { CONFORMANCE(MEM_ENTRY) CU_TEST_INFO_NULL };
static CU_TestInfo bdb_conformance_tests[] = { CONFORMANCE(BDB_ENTRY) CU_TEST_INFO_NULL };
static CU_TestInfo fault_conformance_tests[] = { CONFORMANCE(FLT_ENTRY) CU_TEST_INFO_NULL };

static CU_TestInfo bdb_tests[] = {
    { .pName = "defaults", .pTestFunc = test_defaults },
    { .pName = "reopen", .pTestFunc = test_reopen },
    { .pName = "compression", .pTestFunc = test_compression },
    { .pName = "corrupt values", .pTestFunc = test_corrupt },
    { .pName = "iterate callback writes", .pTestFunc = test_iterate_callback_writes },
    { .pName = "checkpoint removes logs", .pTestFunc = test_checkpoint_removes_logs },
    { .pName = "crash, no-sync", .pTestFunc = test_crash_nosync },
    { .pName = "crash, sync", .pTestFunc = test_crash_sync },
    { .pName = "crash, killed mid-put", .pTestFunc = test_crash_killed_by_parent },
    { .pName = "bad root", .pTestFunc = test_bad_root },
    { .pName = "depot limit and warning", .pTestFunc = test_depot_limit },
    { .pName = "disk reserve", .pTestFunc = test_disk_reserve },
    { .pName = "panic: failed until reopened", .pTestFunc = test_panic },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { .pName = "storage conformance: memory", .pTests = memory_tests },
    { .pName = "storage conformance: bdb", .pTests = bdb_conformance_tests },
    { .pName = "storage conformance: fault(memory), unarmed", .pTests = fault_conformance_tests },
    { .pName = "bdb", .pTests = bdb_tests },
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return qdb_test_run(suites);
}

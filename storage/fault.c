/* SPDX-License-Identifier: BSD-2-Clause */
/* The fault-injecting storage wrapper (contract in fault.h).
 *
 * Sections:
 *   - state and the decision: does this call fail?
 *   - the seam's methods: get, put, del, iterate, count, destroy
 *   - construction and the arming API
 *
 * The decision is taken once, on entry to a failable method, before the inner
 * store is reached: the pattern of failures is then a function of the arming
 * and of the sequence of calls only, never of what the inner store holds.
 */
#define G_LOG_DOMAIN "qdb-fault"

#include "storage/fault.h"

#include <glib.h>

#include "node/error.h"

/* ---- state and the decision ---------------------------------------------- */

typedef enum arming {
    ARM_NONE,
    ARM_NTH,      /* fail the `nth` matching call (and later ones if persistent) */
    ARM_FRACTION, /* fail each matching call with probability `p` */
    ARM_PANIC,    /* at the `nth` matching call the store fails for good */
} arming;

typedef struct fault_store {
    qdb_storage seam;
    qdb_storage *inner; /* owned */
    arming mode;
    unsigned ops;        /* QDB_FAULT_* mask of matching methods */
    uint64_t nth;        /* ARM_NTH: the matching call that fails, from 1 */
    bool persistent;     /* ARM_NTH: and every matching call after it */
    uint64_t matched;    /* matching calls since arming */
    double p;            /* ARM_FRACTION */
    GRand *rng;          /* ARM_FRACTION: created at arming, from its seed */
    uint64_t iterate_after;
    bool panicked;       /* ARM_PANIC struck: every failable call fails */
    qdb_fault_stats stats;
} fault_store;

static const char *const method_name[QDB_FAULT_N_METHODS] = {
    [QDB_FAULT_METHOD_GET] = "get",
    [QDB_FAULT_METHOD_PUT] = "put",
    [QDB_FAULT_METHOD_DEL] = "del",
    [QDB_FAULT_METHOD_ITERATE] = "iterate",
};

static fault_store *fault_of(qdb_storage *s)
{
    return s->impl;
}

/* Counts the call and says whether it must fail; sets errmsg when it must. */
static bool fault_select(fault_store *f, qdb_fault_method m)
{
    uint64_t call = ++f->stats.calls[m];
    if (f->panicked) {
        qdb_error_set(f->seam.errmsg, QDB_E_STORAGE,
                      "injected panic: %s (call %" G_GUINT64_FORMAT "): the store has failed",
                      method_name[m], call);
        return true;
    }
    if (f->mode == ARM_NONE || !(f->ops & (1u << m)))
        return false;
    bool fail;
    f->matched++;
    if (f->mode == ARM_FRACTION) {
        /* One draw per matching call, failing or not: see fault.h. */
        fail = g_rand_double(f->rng) < f->p;
    } else {
        fail = f->matched == f->nth || (f->persistent && f->matched > f->nth);
    }
    if (fail && f->mode == ARM_PANIC) {
        f->panicked = true;
        qdb_error_set(f->seam.errmsg, QDB_E_STORAGE,
                      "injected panic: %s (call %" G_GUINT64_FORMAT "): the store has failed",
                      method_name[m], call);
    } else if (fail) {
        qdb_error_set(f->seam.errmsg, QDB_E_STORAGE, "injected fault: %s (call %" G_GUINT64_FORMAT ")",
                      method_name[m], call);
    }
    return fail;
}

static int fault_injected(fault_store *f, qdb_fault_method m)
{
    f->stats.injected[m]++;
    return QDB_E_STORAGE;
}

/* The inner store's own failure, surfaced through the wrapper's errmsg, which
 * is the one the caller reads. */
static int fault_pass(fault_store *f, int rc)
{
    if (rc == QDB_E_STORAGE)
        g_strlcpy(f->seam.errmsg, f->inner->errmsg, sizeof f->seam.errmsg);
    return rc;
}

/* ---- the seam's methods ---------------------------------------------------- */

static int fault_get(qdb_storage *s, const uint8_t *key, size_t key_len, uint8_t **value,
                     size_t *value_len)
{
    fault_store *f = fault_of(s);
    if (fault_select(f, QDB_FAULT_METHOD_GET))
        return fault_injected(f, QDB_FAULT_METHOD_GET);
    return fault_pass(f, f->inner->get(f->inner, key, key_len, value, value_len));
}

static int fault_put(qdb_storage *s, const uint8_t *key, size_t key_len, const uint8_t *value,
                     size_t value_len)
{
    fault_store *f = fault_of(s);
    if (fault_select(f, QDB_FAULT_METHOD_PUT))
        return fault_injected(f, QDB_FAULT_METHOD_PUT);
    return fault_pass(f, f->inner->put(f->inner, key, key_len, value, value_len));
}

static int fault_del(qdb_storage *s, const uint8_t *key, size_t key_len)
{
    fault_store *f = fault_of(s);
    if (fault_select(f, QDB_FAULT_METHOD_DEL))
        return fault_injected(f, QDB_FAULT_METHOD_DEL);
    return fault_pass(f, f->inner->del(f->inner, key, key_len));
}

/* A failing walk: hands the first `left` records to the caller's fn, then
 * stops the inner walk. */
typedef struct partial_walk {
    qdb_storage_iter_fn fn;
    void *arg;
    uint64_t left;
} partial_walk;

static int partial_step(void *arg, const uint8_t *key, size_t key_len, const uint8_t *value,
                        size_t value_len)
{
    partial_walk *w = arg;
    if (w->left == 0)
        return 1; /* the injected failure strikes here */
    w->left--;
    return w->fn(w->arg, key, key_len, value, value_len);
}

static int fault_iterate(qdb_storage *s, const uint8_t *from, size_t from_len, const uint8_t *to,
                         size_t to_len, qdb_storage_iter_fn fn, void *arg)
{
    fault_store *f = fault_of(s);
    if (!fault_select(f, QDB_FAULT_METHOD_ITERATE))
        return fault_pass(f, f->inner->iterate(f->inner, from, from_len, to, to_len, fn, arg));
    if (f->iterate_after > 0 && !f->panicked) {
        partial_walk w = {.fn = fn, .arg = arg, .left = f->iterate_after};
        int rc = f->inner->iterate(f->inner, from, from_len, to, to_len, partial_step, &w);
        if (rc != QDB_OK)
            return fault_pass(f, rc); /* a real failure wins, see fault.h */
    }
    return fault_injected(f, QDB_FAULT_METHOD_ITERATE);
}

static uint64_t fault_count(qdb_storage *s)
{
    fault_store *f = fault_of(s);
    return f->inner->count(f->inner);
}

/* The inner store's usage (zeros when it has none), failed once panicked. */
static void fault_usage(qdb_storage *s, qdb_storage_usage *out)
{
    fault_store *f = fault_of(s);
    *out = (qdb_storage_usage){0};
    if (f->inner->usage)
        f->inner->usage(f->inner, out);
    out->failed = out->failed || f->panicked;
}

static void fault_destroy(qdb_storage *s)
{
    if (s == NULL)
        return;
    fault_store *f = fault_of(s);
    f->inner->destroy(f->inner);
    if (f->rng)
        g_rand_free(f->rng);
    g_free(f);
}

/* ---- construction and the arming API ---------------------------------------- */

qdb_storage *qdb_storage_fault_new(qdb_storage *inner)
{
    g_return_val_if_fail(inner != NULL, NULL);
    if (inner->version != QDB_SEAM_VERSION)
        return NULL;
    fault_store *f = g_new0(fault_store, 1);
    f->inner = inner;
    f->seam = (qdb_storage){
        .version = QDB_SEAM_VERSION,
        .impl = f,
        .get = fault_get,
        .put = fault_put,
        .del = fault_del,
        .iterate = fault_iterate,
        .count = fault_count,
        .destroy = fault_destroy,
        .usage = fault_usage,
    };
    return &f->seam;
}

/* The wrapper behind `s`, or NULL (with a GLib critical) for another store. */
static fault_store *checked(qdb_storage *s)
{
    g_return_val_if_fail(s != NULL && s->get == fault_get, NULL);
    return fault_of(s);
}

qdb_storage *qdb_storage_fault_inner(qdb_storage *s)
{
    fault_store *f = checked(s);
    return f ? f->inner : NULL;
}

void qdb_storage_fault_disarm(qdb_storage *s)
{
    fault_store *f = checked(s);
    if (!f)
        return;
    f->mode = ARM_NONE;
    f->matched = 0;
    if (f->rng) {
        g_rand_free(f->rng);
        f->rng = NULL;
    }
}

void qdb_storage_fault_fail_nth(qdb_storage *s, unsigned ops, uint64_t n, bool persistent)
{
    g_return_if_fail(n >= 1);
    qdb_storage_fault_disarm(s);
    fault_store *f = checked(s);
    if (!f)
        return;
    f->mode = ARM_NTH;
    f->ops = ops;
    f->nth = n;
    f->persistent = persistent;
}

void qdb_storage_fault_panic(qdb_storage *s, unsigned ops, uint64_t n)
{
    qdb_storage_fault_fail_nth(s, ops, n, true);
    fault_store *f = checked(s);
    if (f)
        f->mode = ARM_PANIC;
}

void qdb_storage_fault_fail_fraction(qdb_storage *s, unsigned ops, double p, uint64_t seed)
{
    g_return_if_fail(p >= 0.0 && p <= 1.0);
    qdb_storage_fault_disarm(s);
    fault_store *f = checked(s);
    if (!f)
        return;
    /* Both halves of the seed, high word first, as transport-sim seeds its
     * generators. */
    guint32 words[2] = {(guint32)(seed >> 32), (guint32)seed};
    f->mode = ARM_FRACTION;
    f->ops = ops;
    f->p = p;
    f->rng = g_rand_new_with_seed_array(words, 2);
}

void qdb_storage_fault_iterate_after(qdb_storage *s, uint64_t k)
{
    fault_store *f = checked(s);
    if (f)
        f->iterate_after = k;
}

void qdb_storage_fault_reset(qdb_storage *s)
{
    qdb_storage_fault_disarm(s);
    fault_store *f = checked(s);
    if (!f)
        return;
    f->iterate_after = 0;
    f->panicked = false;
    f->stats = (qdb_fault_stats){0};
    f->seam.errmsg[0] = '\0';
}

void qdb_storage_fault_stats(qdb_storage *s, qdb_fault_stats *out)
{
    fault_store *f = checked(s);
    if (f)
        *out = f->stats;
}

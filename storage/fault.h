/* SPDX-License-Identifier: BSD-2-Clause */
/* A fault-injecting wrapper around any storage backend (qdb_storage, node/env.h),
 * for tests and the simulator: the idea of SQLite's test_vfs.c ("ioerr") and
 * raft's test/lib/fault.h, applied to the storage seam.
 *
 * The wrapper is itself a qdb_storage.  Unarmed, every call goes to the inner
 * store unchanged and returns what it returned (the inner store's errmsg is
 * copied into the wrapper's when it fails by itself).  Armed, it makes chosen
 * calls fail without reaching the inner store.
 *
 * Which calls.  Four methods can fail; a mask of QDB_FAULT_GET, _PUT, _DEL and
 * _ITERATE says which ones an arming applies to, and a call to one of them is
 * a "matching call".  count() and destroy() never fail: count() has no error
 * return in the seam, and a failing destroy() would leak.  Two ways to pick
 * the matching calls that fail, one armed at a time (arming replaces the
 * previous arming):
 *
 *   qdb_storage_fault_fail_nth(s, ops, n, persistent)
 *       the n-th matching call from now fails (n = 1: the next one).  One-shot
 *       (persistent false): only that call; the calls after it pass.
 *       Persistent: that call and every matching call after it, until
 *       disarmed -- a disk that died.
 *   qdb_storage_fault_fail_fraction(s, ops, p, seed)
 *       each matching call fails with probability p (0 <= p <= 1), drawn from
 *       the wrapper's own GRand seeded here with `seed`.  Exactly one draw per
 *       matching call, so the pattern of failures depends only on the seed and
 *       on the sequence of matching calls: the same seed and calls give the
 *       same failures, in every run and every build.  No other randomness.
 *
 * What a failure is.  The call returns QDB_E_STORAGE and sets the wrapper's
 * errmsg to "injected fault: <method> (call <c>)", where c counts that
 * method's calls since creation or reset, from 1.  get(), put() and del() do
 * not call the inner store at all: it is left exactly as it was, and get()
 * leaves *value and *value_len untouched.  iterate() fails part-way when
 * qdb_storage_fault_iterate_after(s, k) was set: fn is called for at most the
 * first k records of the range (fewer if the range is shorter or fn stops the
 * walk), then the call returns QDB_E_STORAGE.  k = 0, the default, fails
 * before any call back.  A selected iterate() always fails, whatever the
 * range holds.  When the inner store fails by itself during a failing
 * iterate(), its error is returned and no injection is counted.
 *
 * Ownership.  The wrapper takes ownership of the inner store: the wrapper's
 * destroy() destroys the inner store too, so a host that holds one
 * qdb_storage pointer (the simulator's world, a test fixture) releases both
 * with one call.  Until then qdb_storage_fault_inner() gives the inner store,
 * so a test can read it directly (e.g. to check a failed put left it alone);
 * writing to it directly bypasses the wrapper's counters.  The wrapper's
 * `data` is the caller's, NULL on return; the inner store's `data` is not
 * touched.
 *
 * Determinism.  The wrapper reads no clock, no environment and no randomness
 * but its own seeded GRand, so it may sit under the simulator: a node whose
 * store is wrapped behaves the same in every run of a scenario.
 *
 * Every function below takes a store made by qdb_storage_fault_new() (it is
 * checked with g_return_if_fail).  One thread, like every seam.
 *
 * Example: the third write from now, and every one after it, fails.
 *
 *     qdb_storage *s = qdb_storage_fault_new(qdb_storage_memory_new());
 *     qdb_storage_fault_fail_nth(s, QDB_FAULT_WRITES, 3, true);
 *     ... hand s to the node, drive it, look at qdb_storage_fault_stats() ...
 *     s->destroy(s);                  (the memory store goes with it)
 */
#ifndef QDB_STORAGE_FAULT_H
#define QDB_STORAGE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

#include "node/env.h"

/* The failable methods, as indices into qdb_fault_stats ... */
typedef enum qdb_fault_method {
    QDB_FAULT_METHOD_GET,
    QDB_FAULT_METHOD_PUT,
    QDB_FAULT_METHOD_DEL,
    QDB_FAULT_METHOD_ITERATE,
    QDB_FAULT_N_METHODS
} qdb_fault_method;

/* ... and as bits of the `ops` masks. */
#define QDB_FAULT_GET (1u << QDB_FAULT_METHOD_GET)
#define QDB_FAULT_PUT (1u << QDB_FAULT_METHOD_PUT)
#define QDB_FAULT_DEL (1u << QDB_FAULT_METHOD_DEL)
#define QDB_FAULT_ITERATE (1u << QDB_FAULT_METHOD_ITERATE)
#define QDB_FAULT_WRITES (QDB_FAULT_PUT | QDB_FAULT_DEL)
#define QDB_FAULT_ALL (QDB_FAULT_GET | QDB_FAULT_PUT | QDB_FAULT_DEL | QDB_FAULT_ITERATE)

/* Wraps `inner` (taking ownership of it, see above), unarmed, counters at 0.
 * Returns NULL, and leaves `inner` to the caller, when inner->version is not
 * QDB_SEAM_VERSION. */
qdb_storage *qdb_storage_fault_new(qdb_storage *inner);

/* The wrapped store, still owned by the wrapper. */
qdb_storage *qdb_storage_fault_inner(qdb_storage *s);

/* Arms "the n-th matching call fails" (n >= 1), one-shot or persistent. */
void qdb_storage_fault_fail_nth(qdb_storage *s, unsigned ops, uint64_t n, bool persistent);

/* Arms a storage panic (Berkeley DB's DB_RUNRECOVERY): the n-th matching
 * call from now (n >= 1) fails, and from then on every get, put, del and
 * iterate fails whatever the mask ("injected panic: ..."), and usage()
 * reports failed = true (node/env.h) -- the node must then leave its ring.
 * Disarming does not heal a panicked store; reset() does.  usage() is the
 * inner store's otherwise (zeros when it has none). */
void qdb_storage_fault_panic(qdb_storage *s, unsigned ops, uint64_t n);

/* Arms "each matching call fails with probability p", from a generator seeded
 * with `seed` now (re-arming with the same seed replays the same pattern). */
void qdb_storage_fault_fail_fraction(qdb_storage *s, unsigned ops, double p, uint64_t seed);

/* How many records a failing iterate() hands to fn before it fails (0, the
 * default: none).  Kept across armings; reset() sets it back to 0. */
void qdb_storage_fault_iterate_after(qdb_storage *s, uint64_t k);

/* No more failures (but a panicked store stays failed); counters and
 * iterate_after kept. */
void qdb_storage_fault_disarm(qdb_storage *s);

/* Back to the state right after qdb_storage_fault_new(): disarmed, not
 * panicked, counters at 0, iterate_after 0.  The inner store is not touched. */
void qdb_storage_fault_reset(qdb_storage *s);

/* Counters since creation or reset, per method (indexed by qdb_fault_method).
 * calls counts every call, armed or not, failed or not; injected counts the
 * calls the wrapper made fail (failures of the inner store are not in it). */
typedef struct qdb_fault_stats {
    uint64_t calls[QDB_FAULT_N_METHODS];
    uint64_t injected[QDB_FAULT_N_METHODS];
} qdb_fault_stats;

void qdb_storage_fault_stats(qdb_storage *s, qdb_fault_stats *out);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* The data model: what clients were told.
 *
 * Every client operation the simulator issues goes through here: the model
 * submits it to a client core, remembers it until its result arrives, adds
 * the result to the trace hash, and keeps the consequences -- per alias the
 * versions written and the highest one acknowledged, and the counters the
 * oracle and the report read (lookups and their hop counts, failed requests,
 * wrong-node retries, stale or impossible reads).
 *
 * Workload values carry their alias and version, "ALIAS#VERSION" padded with
 * '.' to the value size, so any read can be checked against the writes
 * issued: a value never written is a safety violation, an older version than
 * the one acknowledged when the read was issued is a stale read (unless
 * only writes acknowledged while the hive was split are newer: see
 * split_stale_reads).
 *
 * Determinism: keys are looked up by alias in a hash table but walked only in
 * creation order (sim_model_keys); operations in flight are in a table that
 * is only looked up, or walked to free them.
 */
#ifndef QDB_SIM_MODEL_H
#define QDB_SIM_MODEL_H

#include <glib.h>
#include <stdbool.h>

#include "client/core.h"
#include "transport-sim/simnet.h"

typedef struct sim_key {
    char *alias;
    uint64_t writes_issued;      /* versions are 1..writes_issued */
    uint64_t acked_version;      /* highest acknowledged write; 0: none */
    uint64_t acked_whole;        /* highest acknowledged by a write submitted and answered
                                  * while the hive was whole (not split); 0: none */
    bool removed;                /* the last acknowledged operation removed it */
    bool excused;                /* a holder died with its storage: loss is allowed */
    /* K holders crashed before a repair (sim_oracle_crashing): */
    unsigned crashed;            /* holders of the acknowledged version that crashed since a
                                  * check last saw it on K live nodes */
    bool down;                   /* the K-th of them took its last live copy: until its owner
                                  * holds it again, reads may miss it (down_stale_reads) */
    bool writes_inflight;        /* one write per key at a time */
} sim_key;

typedef enum sim_op_kind { SIM_OP_SCRIPTED, SIM_OP_WRITE, SIM_OP_READ, SIM_OP_LOOKUP } sim_op_kind;

/* One client operation in flight.  Created by sim_op_new, owned by the model
 * from a successful submit until its result has been handled. */
typedef struct sim_model sim_model;

typedef struct sim_op {
    sim_model *model;            /* set by submit */
    sim_op_kind kind;
    const void *tag;             /* scripted: the caller's (the scenario event) */
    char *expect;                /* scripted get: content expected; NULL: none */
    int expect_status;           /* scripted: QDB_OK unless told otherwise */
    bool mutates;                /* set by submit from the request type: an
                                  * acknowledged one counts in acked_writes */
    sim_key *key;                /* workload */
    uint64_t version;            /* workload write: the version written */
    uint64_t min_version;        /* workload read: acknowledged when it was issued */
    uint64_t min_whole;          /* workload read: acked_whole when it was issued */
    qdb_id target;               /* lookup */
    int64_t expiry;              /* scripted put/update: UTC seconds (0: none) */
    bool split;                  /* submitted while the hive was split */
    bool down;                   /* workload read: submitted while its key was down */
} sim_op;

/* The counters of what clients were told. */
typedef struct sim_client_stats {
    GArray *hops;                /* guint per completed lookup */
    uint64_t lookups, lookup_timeouts, lookup_failures;
    uint64_t lookup_wrong;       /* answered, but not the ID's first live successor then
                                  * (under churn Chord answers so for a moment after a join) */
    uint64_t lookup_dead_contacts; /* dead or silent nodes met, over every lookup */
    uint64_t requests, failed_requests, wrong_node_retries, unstable_answers;
    uint64_t unstable_requests;  /* failed with QDB_E_UNSTABLE: the ring could not be explored */
    uint64_t timeout_requests;   /* failed with QDB_E_TIMEOUT: no answer by the deadline */
    uint64_t unavailable_reads;  /* workload reads of an acknowledged entry answered
                                  * QDB_E_UNAVAILABLE (every copy the node knew of is on
                                  * failed nodes): availability, never missing_reads */
    uint64_t acked_writes;       /* mutations (workload or scripted) answered OK */
    uint64_t bad_reads, stale_reads, missing_reads;
    uint64_t lost_last_copy;     /* acknowledged keys whose every copy was lost (excused from
                                  * then on); with K = 1, the keys a lost store held */
    /* Stale and missing reads issued or answered while the hive was split
     * (a partition, until the rings merged again): what qdbd(8) allows
     * there -- no quorum, each side serves what it has.  Counted apart,
     * never in stale_reads and missing_reads.  So are reads after the
     * merge that miss only writes acknowledged while split: qdbd(8) lets
     * such a write be lost when the side that took it does not own the
     * entry after the merge (its copies reach the owner later, or never);
     * a read older than a write acknowledged while whole stays stale. */
    uint64_t split_stale_reads, split_missing_reads;
    /* Stale and missing reads issued or answered while every live copy of
     * the key's acknowledged version was gone: K of its holders crashed
     * (storage kept) before a repair brought it back to K live copies, so
     * the version waits on a crashed node's disk, or on its way back to
     * the owner -- outside what qdbd(8) promises ("k - 1 failures at
     * once").  Counted apart, never in stale_reads and missing_reads.
     * lost_live_copy counts the keys such a K-th crash took.  A crash that
     * takes the last live copy with fewer than K holders crashed (a copy
     * that was never made, or dropped) is the nodes' fault: its reads stay
     * stale. */
    uint64_t down_stale_reads, down_missing_reads, lost_live_copy;
} sim_client_stats;

typedef struct sim_model_hooks {
    /* A scripted operation completed (already counted); op is freed after. */
    void (*scripted)(void *arg, const sim_op *op, const qdb_client_result *r);
    /* A read returned a value that was never written. */
    void (*bad_read)(void *arg, const char *alias);
    /* Is owner, a lookup's answer, the first live successor of target now?
     * NULL: lookups are not checked. */
    bool (*lookup_right)(void *arg, const qdb_id *target, const qdb_peer *owner);
    void *arg;
} sim_model_hooks;

/* Results are added to net's trace hash. */
sim_model *sim_model_new(qdb_simnet *net, const sim_model_hooks *hooks);
/* Frees the keys and every operation still in flight (free the client cores
 * first: their callbacks must never fire afterwards). */
void sim_model_free(sim_model *m);

/* ---- keys ------------------------------------------------------------------- */

/* The key for alias, created on first use. */
sim_key *sim_model_key(sim_model *m, const char *alias);
/* NULL when no operation ever used alias. */
sim_key *sim_model_find(sim_model *m, const char *alias);
/* Every key, in creation order. */
const GPtrArray *sim_model_keys(const sim_model *m);
/* A store was lost with its node: the keys it held may be lost (the excuse
 * is for the rest of the run). */
void sim_model_excuse_store(sim_model *m, qdb_storage *st);
/* With replicas: a store was lost; excuse the keys it held whose
 * acknowledged state (that version or newer, or the removal) no other store
 * -- of a live node, or kept on the disk of a crashed one -- still holds:
 * their last copy went with it.  O(records x stores). */
void sim_model_excuse_last_copies(sim_model *m, qdb_storage *lost, qdb_storage *const *others,
                                  unsigned n_others);

/* Keys with crashed holders or down (sim_key), in the order they became
 * so; the oracle clears them and removes the keys (sim_oracle_check). */
GPtrArray *sim_model_watched(sim_model *m);

/* Does st hold alias (at storage key k) at version ver or newer -- or, when
 * removed, its tombstone? */
bool sim_model_store_holds(qdb_storage *st, const uint8_t *k, size_t kl, const char *alias,
                           uint64_t ver, bool removed);
char *sim_model_value(const char *alias, uint64_t version, size_t size, size_t *len);
bool sim_model_parse_value(const uint8_t *v, size_t len, const char *alias, uint64_t *version);

/* ---- operations ----------------------------------------------------------------- */

sim_op *sim_op_new(sim_op_kind kind);
void sim_op_free(sim_op *op);
/* Submit a request (QDB_MSG_PUT, ...) on client core c.  On failure the
 * operation is freed and the error returned. */
int sim_model_submit(sim_model *m, qdb_client_core *c, int type, const char *alias,
                     const uint8_t *content, size_t len, sim_op *op);
/* A lookup of op->target starting at node `start`, the location cache off;
 * same contract. */
int sim_model_lookup(sim_model *m, qdb_client_core *c, qdb_addr start, sim_op *op);
/* Operations submitted and not completed yet. */
unsigned sim_model_pending(const sim_model *m);
sim_client_stats *sim_model_stats(sim_model *m);
/* The first stale or missing read counted (alias, time, versions, the
 * node that answered), for the failure report; NULL while none. */
const char *sim_model_first_bad_read(const sim_model *m);
/* The hive is split (a partition, or its two rings not merged yet): reads
 * issued or answered meanwhile are counted apart (split_stale_reads). */
void sim_model_set_split(sim_model *m, bool split);

#endif

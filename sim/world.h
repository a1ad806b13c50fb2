/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulated world: a fixture of nodes and clients driven by a scenario,
 * its clients' results kept by the data model, watched by the oracle.
 *
 * Everything is single-threaded and deterministic: the same scenario and
 * seed give the same events, frames, results and trace hash.  The world's
 * own choices (node IDs, which nodes crash, workload keys) come from one
 * GRand seeded from the scenario seed; each node and client gets its own
 * seed derived from it.
 */
#ifndef QDB_SIM_WORLD_H
#define QDB_SIM_WORLD_H

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

#include "fixture.h"
#include "model.h"
#include "oracle.h"
#include "scenario.h"

typedef struct sim_params {
    char *name;
    uint64_t seed;
    unsigned nodes;
    qdb_time_us end;
    qdb_addr address_base;
    unsigned succlist;
    unsigned replication; /* K, the hive's copies of each entry */
    qdb_time_us stabilize_fast, stabilize_slow, rpc_timeout;
    qdb_time_us client_timeout;
    qdb_time_us check_period;
    qdb_time_us reorder_window;
    int log_level;
    bool storage_bdb;
    bool random_faults;          /* --sweep: crashes, restarts, partitions drawn from the seed */
    bool crash_host;             /* crash = host: a crash silences the machine (timeouts);
                                  * process (default): its address refuses at once */
    qdb_time_us fault_until;
    bool stop_settled;           /* stop = settled: end the run early once it is (world.c) */
} sim_params;

typedef struct sim_world {
    qdb_scenario *sc;
    sim_params p;
    qdb_fixture *fx;             /* nodes and clients over the network */
    qdb_simnet *net;             /* qdb_fixture_net(fx) */
    GRand *rng;                  /* qdb_fixture_rng(fx): every choice of the world */
    sim_model *model;            /* what clients were told */
    sim_oracle oracle;
    GHashTable *via_clients;     /* node index + 1 -> qdb_client_core* (put/get via=) */
    GPtrArray *lookup_pool;      /* qdb_client_core* used by `lookups` */
    GPtrArray *workload_clients; /* qdb_client_core* */
    GPtrArray *failures;         /* char* messages of failed expectations */
    unsigned expectations, expectations_failed;
    uint64_t events;             /* processed, for the report */
    double wall_s;               /* wall time of the run, for the report only */
    /* the event queue's length, sampled every 1,024 events, for the report
     * (make bench times a bare queue of that length) */
    uint64_t pending_sum, pending_samples;
    FILE *out;                   /* where progress and failures go (stderr) */
    bool quiet;
    char *replay;                /* the command that replays this run (for reports) */
    GPtrArray *owned;            /* contexts of scheduled callbacks, freed with the world
                                  * (a run may stop with some still queued) */
    char *bdb_root;              /* storage = bdb: the temporary folder of the stores */
    bool maintenance_off;        /* `stabilize off`: nodes (even new ones) do no rounds */
    unsigned timed_left;         /* timed scenario events not yet run */
    unsigned loads_running;      /* lookups, workloads, churn still scheduling work */
    bool settled;                /* stop = settled saw the run settled: it ends now */
    /* progress on a terminal: called every 65,536 events */
    void (*progress)(struct sim_world *w, void *arg);
    void *progress_arg;
} sim_world;

/* ---- sim/world.c: the world and the run ------------------------------------------ */

/* Reads sc's parameters and adds the nodes (none started).  NULL and *err
 * on a bad or unknown parameter, with nothing left behind.  sc must outlive
 * the world. */
sim_world *sim_world_new(qdb_scenario *sc, qdb_scn_err *err);
/* Runs every event and the oracle until the end; false on a setup error. */
bool sim_world_run(sim_world *w, qdb_scn_err *err);
void sim_world_free(sim_world *w);
/* Zeroed memory owned by the world (freed by sim_world_free). */
void *sim_world_alloc(sim_world *w, size_t size);
void sim_world_fail(sim_world *w, const qdb_scn_pos *pos, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Node life cycle with the oracle told of each membership change.  join:
 * through node `via` when it is up, else through up to three random live
 * nodes, else a new ring.  depart: a graceful leave, or a crash keeping the
 * storage. */
void sim_join(sim_world *w, unsigned i, int via);
bool sim_boot(sim_world *w, unsigned i, const qdb_addr *peers, size_t n_peers);
/* The `warm` verb: nodes lo..hi that are down start as settled members of
 * the ring (qdb_fixture_start_warm). */
void sim_warm(sim_world *w, unsigned lo, unsigned hi);
/* host: the machine goes silent too (no reset: peers learn by timeout);
 * otherwise only the process dies and its address refuses at once. */
void sim_crash(sim_world *w, unsigned i, bool keep_storage, bool host);
void sim_depart(sim_world *w, unsigned i, bool graceful);
/* A random live node other than `except` (not a joining one while there is
 * another), or -1; a random node that is down, or -1. */
int sim_random_live_node(sim_world *w, int except);
int sim_random_down_node(sim_world *w);

/* Clients: the one that goes through node `via` (created on first use), and
 * k new ones at random live nodes added to `to`. */
qdb_client_core *sim_client_via(sim_world *w, unsigned via);
void sim_add_clients(sim_world *w, GPtrArray *to, uint64_t k);
/* Submit through the model; a failure is reported (at the scripted event). */
bool sim_submit(sim_world *w, qdb_client_core *c, int type, const char *alias,
                const uint8_t *content, size_t len, sim_op *op);

/* A token that is one of two words: *second says it is the second. */
bool sim_tok_either(const qdb_scn_token *t, const char *first, const char *second, bool *second_,
                    qdb_scn_err *err);

/* ---- sim/verbs.c ------------------------------------------------------------------- */

/* Run one scenario event now; false and *err on a semantic error in it. */
bool sim_verb_run(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err);
/* A scripted operation completed (the model's hook). */
void sim_verb_result(void *arg, const sim_op *op, const qdb_client_result *r);

#endif

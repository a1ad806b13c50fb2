/* The simulated world: nodes and clients over the virtual network, driven by
 * a scenario, watched by the oracle.
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

#include "client/core.h"
#include "node.h"
#include "scenario.h"
#include "transport-sim/simnet.h"

typedef struct sim_node {
    unsigned index;
    qdb_peer peer;            /* ID and address: fixed for the node's life */
    qdb_node *node;           /* NULL while down or never started */
    qdb_sim_endpoint *ep;
    qdb_storage *storage;     /* survives a crash with storage=keep */
    bool started;             /* has been started or joined at least once */
    bool leaving;
} sim_node;

typedef struct sim_client {
    unsigned index;
    qdb_addr addr;
    qdb_client_core *core;
    qdb_sim_endpoint *ep;
    struct sim_world *w;
} sim_client;

typedef struct sim_params {
    char *name;
    uint64_t seed;
    unsigned nodes;
    qdb_time_us end;
    qdb_addr address_base;
    unsigned succlist;
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
} sim_params;

/* Everything the oracle measures; printed at the end. */
typedef struct sim_metrics {
    uint64_t events;
    double wall_s;
    GArray *hops;                /* guint per completed lookup */
    uint64_t lookups, lookup_timeouts, lookup_failures;
    uint64_t lookup_wrong;       /* answered, but not the key's first live successor then */
    uint64_t lookup_dead_contacts; /* dead or silent nodes met, over every lookup */
    uint64_t requests, failed_requests, wrong_node_retries, unstable_answers;
    uint64_t acked_writes, bad_reads, stale_reads, missing_reads, lost_entries;
    qdb_time_us last_change;     /* last membership change (join, crash, leave, restart, heal) */
    qdb_time_us ring_ok_at;      /* first check since which the ring has stayed right; 0: not */
    qdb_time_us full_ok_at;      /* same, with every finger right too */
    bool ring_ok, full_ok;
    unsigned expectations, expectations_failed;
} sim_metrics;

typedef struct sim_world {
    qdb_scenario *sc;
    sim_params p;
    qdb_simnet *net;
    GRand *rng;
    sim_node *nodes;
    GPtrArray *clients;          /* sim_client*, by index */
    GHashTable *via_clients;     /* node index -> sim_client* (scenario put/get via=) */
    GPtrArray *lookup_pool;      /* sim_client* used by `lookups` */
    GPtrArray *workload_clients;
    /* the oracle's data model (workload and scenario writes) */
    GHashTable *model;           /* alias (char*) -> sim_key* */
    GPtrArray *model_keys;       /* sim_key*, in creation order: deterministic walks */
    /* the live ring, sorted by ID; rebuilt when membership changes */
    GArray *ring;                /* unsigned node indices */
    bool ring_dirty;
    qdb_time_us last_full_check;
    GPtrArray *failures;         /* char* messages of failed expectations */
    sim_metrics m;
    FILE *out;                   /* where progress and failures go (stderr) */
    bool quiet;
    unsigned pending_ops;        /* client operations not yet completed */
    bool partitioned;            /* a partition is in force: one ring is not expected */
    bool maintenance_off;        /* `stabilize off`: nodes (even new ones) do no rounds */
    bool ever_partitioned;       /* safety checks stop after the first partition */
    char *replay;                /* the command that replays this run (for reports) */
    bool violated;               /* a safety violation was reported (first one only) */
    GHashTable *pending;         /* client operations in flight (looked up, never walked
                                  * but to free them) */
    GPtrArray *owned;            /* contexts of scheduled callbacks, freed with the world
                                  * (a run may stop with some still queued) */
    char *bdb_root;              /* storage = bdb: the temporary folder of the stores */
    FILE *series;                /* --series: one line per oracle check, or NULL */
    /* progress on a terminal: called every 65,536 events */
    void (*progress)(struct sim_world *w, void *arg);
    void *progress_arg;
} sim_world;

/* sim/world.c */
sim_world *sim_world_new(qdb_scenario *sc, GError **err);
/* Runs every event and the oracle until the end; false on a setup error. */
bool sim_world_run(sim_world *w, GError **err);
void sim_world_free(sim_world *w);
/* Zeroed memory owned by the world (freed by sim_world_free). */
void *sim_world_alloc(sim_world *w, size_t size);
void sim_world_fail(sim_world *w, const qdb_scn_pos *pos, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
bool sim_node_up(const sim_node *sn);

/* sim/oracle.c */
/* The `expect` verb. */
bool sim_expect(sim_world *w, const qdb_scn_event *ev, GError **err);
/* Issue a read for `expect readable` (world.c). */
bool sim_expect_readable(sim_world *w, const qdb_scn_event *ev, const char *alias, GError **err);
void oracle_rebuild_ring(sim_world *w);
/* The correct owner of id among live nodes (index), or -1 with no live node. */
int oracle_owner(sim_world *w, const qdb_id *id);
bool oracle_ring_ok(sim_world *w, GString *why);
bool oracle_fingers_ok(sim_world *w, GString *why);
/* Zave's safety invariants over the best-successor graph; false and why. */
bool oracle_safety(sim_world *w, GString *why);
void oracle_check(sim_world *w);   /* the periodic check: updates ring_ok_at etc. */
void oracle_membership_changed(sim_world *w);
/* Data: counts acknowledged entries that a live node should hold but no live
 * node does; returns that count (excused: entries whose holder died). */
uint64_t oracle_lost_entries(sim_world *w, GString *why);
double oracle_hops_percentile(sim_world *w, double p);
double oracle_hops_mean(sim_world *w);
/* The value of a metric by name, for `expect METRIC OP NUMBER`; false if
 * the name is unknown. */
bool oracle_metric(sim_world *w, const char *name, double *out);

/* The data model: what clients were told. */
typedef struct sim_key {
    char *alias;
    uint64_t writes_issued;      /* versions are 1..writes_issued */
    uint64_t acked_version;      /* highest acknowledged write; 0: none */
    bool removed;                /* the last acknowledged operation removed it */
    bool excused;                /* a holder died: loss is allowed */
    bool writes_inflight;        /* one write per key at a time */
} sim_key;
sim_key *model_key(sim_world *w, const char *alias);
/* Workload values carry their alias and version, so a read can be checked:
 * "ALIAS#VERSION" padded with '.' to the value size. */
char *model_value(const char *alias, uint64_t version, size_t size, size_t *len);
bool model_parse_value(const uint8_t *v, size_t len, const char *alias, uint64_t *version);

#endif

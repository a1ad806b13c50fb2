/* SPDX-License-Identifier: BSD-2-Clause */
/* The oracle: it sees every node of a fixture and the data model, and checks
 * what no node can check alone.
 *
 * Ring invariant (Zave, IEEE TSE 2017, "one ordered ring"): every live node's
 * successor is the next live ID clockwise, its predecessor the previous one,
 * and its successor list the next r live IDs (fewer in a smaller ring).
 * Safety (Zave, Sec. 4), at every check until the first partition: the
 * best-successor graph is one ordered cycle with every node reaching it.
 * Data: every acknowledged write is at its owner, unless its holders died
 * with their storage.
 *
 * It only reads the fixture and the model; it changes neither, schedules
 * nothing and adds nothing to the trace.
 */
#ifndef QDB_SIM_ORACLE_H
#define QDB_SIM_ORACLE_H

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

#include "fixture.h"
#include "model.h"

typedef struct sim_oracle {
    qdb_fixture *fx;
    sim_model *model;
    unsigned succlist;           /* r, as the nodes are configured */
    /* stabilization, tracked by the periodic check */
    qdb_time_us last_change;     /* last membership change (join, crash, leave, restart, heal) */
    qdb_time_us ring_ok_at;      /* first check since which the ring has stayed right; 0: not */
    qdb_time_us full_ok_at;      /* same, with every finger right too */
    bool ring_ok, full_ok;
    qdb_time_us last_full_check;
    bool ever_partitioned;       /* safety checks stop after the first partition */
    bool split;                  /* partitioned, or its rings not merged again yet */
    bool violated;               /* a safety violation was found (the first one only) */
    uint64_t lost_entries;       /* at the last sim_oracle_lost_entries */
    /* re-replication after the last crash: K, the crash time (0: none yet),
     * the first check since then that saw every entry at K live copies */
    unsigned copies;
    qdb_time_us crash_at, copies_ok_at;
    bool copies_ok;
    /* with K > 1: checks at which two live nodes served one key (both
     * settled and in lease, qdb_node_serving, their ranges overlapping),
     * no partition in force */
    uint64_t two_owners;
    FILE *series;                /* one line per check, or NULL */
} sim_oracle;

void sim_oracle_init(sim_oracle *o, qdb_fixture *fx, sim_model *model, unsigned succlist);
/* The hive keeps K copies of each entry (rereplicated_s waits for them). */
void sim_oracle_set_copies(sim_oracle *o, unsigned k);
/* A node crashed now: rereplicated_s is timed from here.  From then on the
 * periodic check counts the live copies of each acknowledged entry until
 * every one has min(K, live nodes) again: O(entries x N) per check until
 * then, and nothing before the first crash. */
void sim_oracle_crashed(sim_oracle *o);
/* Node i is about to crash (with K > 1): for each acknowledged entry it
 * holds, count the copies left on live nodes.  Fewer than K: one more of
 * its holders crashed (sim_key.crashed, cleared by the first check that
 * sees K live copies again); none left, and that was the K-th (K holders
 * crashed before a repair): the entry is down until its owner holds it
 * again, and its reads count apart (model.h: down_stale_reads).
 * O(records of i x N), plus the entries with crashed holders x N. */
void sim_oracle_crashing(sim_oracle *o, unsigned i);
/* Membership changed now: stabilization is timed from here. */
void sim_oracle_membership_changed(sim_oracle *o);

/* The invariants; false and why (why may be NULL). */
bool sim_oracle_ring_ok(sim_oracle *o, GString *why);
bool sim_oracle_fingers_ok(sim_oracle *o, GString *why);
bool sim_oracle_safety(sim_oracle *o, GString *why);

/* The periodic check: updates the stabilization times, writes the series
 * line, and checks safety.  False (and why) on the first safety violation
 * only. */
bool sim_oracle_check(sim_oracle *o, GString *why);

/* Acknowledged entries that their owner should hold and no node holds
 * (entries a down node still holds are not lost); why names the first. */
uint64_t sim_oracle_lost_entries(sim_oracle *o, GString *why);

double sim_oracle_hops_percentile(sim_oracle *o, double p);
double sim_oracle_hops_mean(sim_oracle *o);
/* The value of a metric by name (for `expect METRIC OP NUMBER` and the
 * report); false if the name is unknown. */
bool sim_oracle_metric(sim_oracle *o, const char *name, double *out);

#endif

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
    unsigned crashes_since_ok;   /* crashes since every entry was last at K live copies */
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

/* Is a read of k older than version beyond what qdbd(8) covers?  True when
 * K or more nodes crashed since every entry was last at K live copies and
 * no live node holds k at version or newer (its copies are on crashed
 * nodes' disks, or gone): more than K - 1 failures before the repair. */
bool sim_oracle_beyond_k(sim_oracle *o, const sim_key *k, uint64_t version);

/* Acknowledged entries that their owner should hold and no node holds
 * (entries a down node still holds are not lost); why names the first. */
uint64_t sim_oracle_lost_entries(sim_oracle *o, GString *why);

double sim_oracle_hops_percentile(sim_oracle *o, double p);
double sim_oracle_hops_mean(sim_oracle *o);
/* The value of a metric by name (for `expect METRIC OP NUMBER` and the
 * report); false if the name is unknown. */
bool sim_oracle_metric(sim_oracle *o, const char *name, double *out);

#endif

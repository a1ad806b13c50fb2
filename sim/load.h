/* SPDX-License-Identifier: BSD-2-Clause */
/* Load generators on the simulated world: client workload, lookups, churn and
 * --sweep's random faults.  Each starts now and reschedules itself with
 * qdb_simnet_at; every choice (which client, key, node, when) comes from the
 * world's generator, so a run is a function of its seed. */
#ifndef QDB_SIM_LOAD_H
#define QDB_SIM_LOAD_H

#include "world.h"

/* Reads and writes of `keys` keys "w0".."wK-1" through `clients` new clients
 * at random live nodes, as a Poisson process at puts + gets per second, until
 * `until`.  Writes are UPDATEs of the model's next version, one in flight per
 * key; reads are checked against the model. */
typedef struct sim_workload {
    double puts, gets;
    uint64_t keys;
    uint64_t value_size;
    qdb_time_us until;
} sim_workload;
void sim_workload_start(sim_world *w, const sim_workload *spec, uint64_t clients);

/* `count` lookups of random IDs at `rate` per second, each from a random one
 * of 64 fresh clients at random live nodes, with the location cache off. */
void sim_lookups_start(sim_world *w, uint64_t count, double rate);

/* Joins and departures as a Poisson process at `rate` per second until
 * `until`: the join of a random down node (when there is one, with
 * probability 1/2) or the departure of a random live node -- a graceful leave
 * with probability `leave`, else a crash with storage kept.  No departure
 * leaves fewer than `min` live nodes: at the floor a join comes instead. */
void sim_churn_start(sim_world *w, double rate, double leave, qdb_time_us until, unsigned min);

/* --sweep's random faults, from time `at` to the fault_until parameter. */
void sim_random_faults_start(sim_world *w, qdb_time_us at);

#endif

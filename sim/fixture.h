/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulator as a library: real nodes and real client cores over the
 * simulated network (transport-sim/simnet.h), with plain functions to start,
 * crash, restart, partition and heal them, and to run the clock.  qdbsim's
 * world is built on it, and so are the node and client suites; it knows
 * nothing about scenarios or oracles.  (Modelled on canonical/raft's
 * raft_fixture: include/raft/fixture.h.)
 *
 * Hosts.  The fixture reaches the network only through a host (host.h):
 * qdb_fixture_new puts it on the simulated network; qdb_fixture_new_on puts
 * it on any host, such as the real epoll loop over loopback sockets
 * (tests/host_loop.h), so one test body runs over both transports.  On a
 * host that is not simulated, time is real (now, run_until and step_until
 * limits are real microseconds since the host was made), the endpoints'
 * seeds are drawn but not used, a crash closes the node's connections and
 * its listening socket (peers see a reset, or a refused connect), and
 * partitions do not exist: calling them there is a bug (an assertion).
 *
 * Nodes.  A node is added once, with its peer (ID and address, fixed for its
 * life) and its configuration, and gets the next index (0, 1, ...).  It can
 * then be started (create a ring, or join through peers), crashed (its
 * storage kept, as a disk survives a process crash, or lost), started again
 * (a restart: fresh volatile state on the kept storage), or asked to leave
 * gracefully (qdb_fixture_leave; it stays up until qdb_node_left(), then
 * qdb_fixture_reap takes it down).  Every start attaches a fresh endpoint.
 *
 * Storage.  A node's store comes from the storage factory given at creation
 * (NULL: the memory store), when the node starts without one: at its first
 * start, and after a crash that lost its storage.  A test wraps a store (a
 * fault injector) here; qdbsim opens Berkeley DB stores.
 *
 * Clients.  A client is a client core on its own endpoint at 100.64.0.K:40000
 * (K = index + 1), bootstrapped at the address in its configuration.
 *
 * Determinism.  The fixture owns one generator, seeded from the network
 * configuration's seed (qdb_fixture_new_on: the seed given); every
 * endpoint's seed (node starts, clients) is drawn from it at the moment the
 * endpoint attaches.  A program built on the fixture (qdbsim's world) may
 * draw its own choices from the same generator (qdb_fixture_rng): one
 * stream, one order.  Nothing here depends on pointer values or hash-table
 * order; on the simulated host, nothing depends on anything else either.
 *
 * Lifetime.  Everything (nodes, stores, clients, endpoints, the network) is
 * freed by qdb_fixture_free, without any callback running; a client's
 * pending operations never complete then.
 */
#ifndef QDB_SIM_FIXTURE_H
#define QDB_SIM_FIXTURE_H

#include <glib.h>
#include <stdbool.h>

#include "client/core.h"
#include "host.h"
#include "node.h"
#include "transport-sim/simnet.h"

typedef struct qdb_fixture qdb_fixture;

/* Where nodes' stores come from.  open() returns a new store for node i, or
 * NULL with a message in err (QDB_ERRMSG_SIZE bytes).  lose() disposes of a
 * crashed node's store when the crash loses it (and of what it left behind,
 * files); NULL: st->destroy(st).  Stores still held when the fixture is
 * freed are only destroyed (the disk survives the process). */
typedef struct qdb_fixture_storage {
    qdb_storage *(*open)(void *arg, unsigned i, char *err);
    void (*lose)(void *arg, unsigned i, qdb_storage *st);
    void *arg;
} qdb_fixture_storage;

/* On the simulated network.  net_cfg NULL: simnet's defaults.  storage NULL:
 * memory stores.  Both are copied. */
qdb_fixture *qdb_fixture_new(const qdb_simnet_config *net_cfg, const qdb_fixture_storage *storage);
/* On host (taken: the fixture frees it); seed seeds the fixture's generator. */
qdb_fixture *qdb_fixture_new_on(qdb_host *host, uint64_t seed, const qdb_fixture_storage *storage);
void qdb_fixture_free(qdb_fixture *f);

qdb_host *qdb_fixture_host(qdb_fixture *f);
/* The simulated network; NULL on another host. */
qdb_simnet *qdb_fixture_net(qdb_fixture *f);
GRand *qdb_fixture_rng(qdb_fixture *f);
/* The message of the last failed start (storage or node creation). */
const char *qdb_fixture_errmsg(const qdb_fixture *f);

/* ---- nodes ------------------------------------------------------------------- */

/* Add a node, down; returns its index.  cfg NULL: the node defaults; cfg->self
 * is replaced by peer.  The ID and the address must be unused. */
unsigned qdb_fixture_add_node(qdb_fixture *f, const qdb_peer *peer, const qdb_node_config *cfg);
unsigned qdb_fixture_n_nodes(const qdb_fixture *f);

/* Bring node i up: attach an endpoint, open its store if it has none, create
 * the node and start it -- a one-node ring with no peers, or a join through
 * them (qdb_node_start).  Starting a node that crashed is a restart: fresh
 * volatile state, the store it kept.  False when it is up already (nothing
 * changes), or when the endpoint, store or node could not be created
 * (qdb_fixture_errmsg; the endpoint's seed was drawn, nothing else stays). */
bool qdb_fixture_start(qdb_fixture *f, unsigned i, const qdb_addr *peers, size_t n_peers);
/* A warm start of every node of lo..hi that is down (scale experiments):
 * all are brought up, then each is placed in the ring of the live nodes as
 * the oracle sees it (qdb_node_start_warm: predecessor, successor list and
 * fingers exact, nothing sent).  Nodes already up are not told about the
 * newcomers: use it on an empty world, or let stabilization catch up.
 * Returns how many started. */
unsigned qdb_fixture_start_warm(qdb_fixture *f, unsigned lo, unsigned hi);
/* Crash node i (nothing if it is down): the node and its endpoint go, frames
 * in flight to it are lost.  keep_storage false: its store is lost too. */
void qdb_fixture_crash(qdb_fixture *f, unsigned i, bool keep_storage);
/* Graceful departure of node i (up): qdb_node_leave. */
void qdb_fixture_leave(qdb_fixture *f, unsigned i);
/* Take down (storage kept) every leaving node that has finished leaving --
 * and, on a host that queues frames, written its last ones -- in index
 * order; returns how many.  O(nodes). */
unsigned qdb_fixture_reap(qdb_fixture *f);

bool qdb_fixture_up(const qdb_fixture *f, unsigned i);
/* Has node i been up at least once? */
bool qdb_fixture_started(const qdb_fixture *f, unsigned i);
bool qdb_fixture_leaving(const qdb_fixture *f, unsigned i);
const qdb_peer *qdb_fixture_peer(const qdb_fixture *f, unsigned i);
/* The node added at addr, or -1. */
int qdb_fixture_index_of(const qdb_fixture *f, qdb_addr addr);
/* The same, checking first whether it is guess (the node the caller
 * expects there, e.g. the next on the ring): no table lookup then. */
int qdb_fixture_index_near(const qdb_fixture *f, qdb_addr addr, unsigned guess);
/* A hint, changing nothing, for a walk over many nodes (the oracle's):
 * pass 0 asks for node i's record here, pass 1 (once that is likely
 * cached) for the node's ring state, pass 2 for its successor list. */
void qdb_fixture_prefetch(const qdb_fixture *f, unsigned i, int pass);
/* NULL while down. */
qdb_node *qdb_fixture_node(const qdb_fixture *f, unsigned i);
qdb_host_endpoint *qdb_fixture_endpoint(const qdb_fixture *f, unsigned i);
/* Node i's store: kept while it is down after a crash that kept it; NULL
 * before its first start and after a crash that lost it. */
qdb_storage *qdb_fixture_storage_of(const qdb_fixture *f, unsigned i);

/* ---- the live ring ---------------------------------------------------------- */

/* The indices (unsigned) of the nodes that are up, in ID order.  Brought
 * up to date lazily after membership changes (O(N) per batch of changes,
 * O(N log N) after many starts at once); valid until the next change. */
const GArray *qdb_fixture_ring(qdb_fixture *f);
/* The live node whose range holds id -- the first at or after it,
 * wrapping -- or -1 with no node up.  O(log N). */
int qdb_fixture_owner(qdb_fixture *f, const qdb_id *id);

/* ---- partitions (the simulated network only) -------------------------------- */

/* Put node i's address in a group (simnet groups: 0 talks to everyone). */
void qdb_fixture_set_group(qdb_fixture *f, unsigned i, int group);
/* One-way: frames from node i to node j are dropped. */
void qdb_fixture_block(qdb_fixture *f, unsigned i, unsigned j);
void qdb_fixture_heal(qdb_fixture *f);
/* Has a group or block been set since the last heal? */
bool qdb_fixture_partitioned(const qdb_fixture *f);

/* ---- clients ------------------------------------------------------------------ */

/* A client core at 100.64.0.K:40000 (K = its index + 1; on the loop it only
 * connects out) with its own endpoint; cfg NULL: the client defaults.
 * Returns its index. */
unsigned qdb_fixture_add_client(qdb_fixture *f, const qdb_client_config *cfg);
qdb_client_core *qdb_fixture_client(const qdb_fixture *f, unsigned c);
qdb_host_endpoint *qdb_fixture_client_endpoint(const qdb_fixture *f, unsigned c);

/* ---- running -------------------------------------------------------------------- */

qdb_time_us qdb_fixture_now(const qdb_fixture *f);
/* One event; false when none is left (or a hash-log divergence).  On the
 * loop: one turn. */
bool qdb_fixture_step(qdb_fixture *f);
/* Every event up to and including time t; the clock then reads t. */
void qdb_fixture_run_until(qdb_fixture *f, qdb_time_us t);
/* Step until done(f, arg) holds (checked before the first step and after
 * each): true; false when no event is left at or before limit (on the loop:
 * once the real clock passes limit). */
bool qdb_fixture_step_until(qdb_fixture *f, bool (*done)(qdb_fixture *f, void *arg), void *arg,
                            qdb_time_us limit);

#endif

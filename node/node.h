/* SPDX-License-Identifier: BSD-2-Clause */
/* A qdb node: Chord ring maintenance and the entry store, with no I/O of its
 * own (sans-I/O).  It is driven by three entry points -- a frame arrived, a
 * peer is unreachable, the timer fired -- and acts only through the
 * environment given at creation (env.h).  qdbd drives it from an epoll loop
 * over TCP; qdbsim drives thousands of them from one event queue.
 *
 * Protocol, as seen by a client (the client core in client/ follows it):
 *  - HELLO(client id) -> REPLY(seq 0, OK, node incarnation).  A node that
 *    gets a request from an address it holds no session for answers
 *    QDB_E_NO_SESSION (the request did not run).
 *  - FIND(id) -> FIND_REPLY: done=1 and the owner (the successor of id) when
 *    id is in (this node, its successor]; otherwise done=0 and the closest
 *    preceding node it knows (Chord ToN 2003, Fig. 5, made iterative).
 *  - Entry requests are served by the owner only: the node whose range
 *    (predecessor, self] holds SHA-3-256(alias).  Others answer WRONG_NODE with
 *    a peer hint; a node that has no predecessor yet or is still receiving its
 *    hand-over answers UNSTABLE.  Neither ran the request.
 *  - Requests carry (client id, seq).  A node remembers the replies to recent
 *    mutations, so a frame that arrives twice is applied at most once and the
 *    second copy gets the first reply.
 *
 * Ownership: qdb_node_new() borrows the seams; they must outlive the node.
 */
#ifndef QDB_NODE_H
#define QDB_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "types.h"

typedef struct qdb_node qdb_node;

typedef struct qdb_node_config {
    qdb_peer self;                 /* ID and the address others reach it at */
    unsigned succlist_len;         /* r, 1..QDB_SUCCLIST_MAX; default 8 */
    qdb_time_us stabilize_fast;    /* period while unstable; default 1 s */
    qdb_time_us stabilize_slow;    /* period bound once stable; default 30 s (the original
                                    * Chord/quasardb went to 2 min; a lost hint or notify
                                    * costs up to one slow period, so we keep it shorter) */
    qdb_time_us rpc_timeout;       /* a peer that does not answer is suspected; default 2 s.
                                    * The first wait for a peer; afterwards each peer's
                                    * adapts to its measured round trip (rto.h), within
                                    * [200 ms, 60 s] */
    qdb_time_us watch_period;      /* each neighbour not heard from within it gets a PING
                                    * (node/watch.c); default 1 s */
    qdb_time_us finger_cycle;      /* a new fix-fingers cycle at most this often while
                                    * the ring is quiet (ring.c); default 30 s */
    unsigned handover_batch;       /* records per HANDOVER frame; default 256 */
    unsigned dedup_capacity;       /* replies remembered for retried requests; default 4096 */
    int log_level;                 /* 0 none, 1 error, 2 warning, 3 info, 4 debug,
                                    * 5 trace (every FIND answer and round; logged as debug) */
    bool no_jitter;                /* rounds exactly every period instead of uniformly in
                                    * [0.5, 1.5) x period: for tests that assert times */
    qdb_time_us tombstone_grace;   /* a removed entry's tombstone is kept this long, so a
                                    * node back with older storage cannot bring the entry
                                    * back; default 1 day */
    unsigned repair_rate;          /* records a second an owner sends to repair a replica
                                    * (node/replica.c), so clients keep priority; default
                                    * QDB_DEFAULT_REPAIR_RATE */
    qdb_time_us dead_node_grace;   /* a failed node's arc, inherited without its entries
                                    * (K = 1), answers "unavailable" this long, then "not
                                    * found" (node/forget.c); 0: until qdbsh forget_node */
    /* Hive-wide settings: the node that creates a hive fixes them, a joining
     * node is told them by its successor and adopts them (0: no opinion), or
     * is refused when it asked for a different value (qdb_node_refusal). */
    unsigned replication;          /* K, copies of each entry, 1..QDB_REPLICATION_MAX and
                                    * at most succlist_len + 1; 0: the hive's (a new hive:
                                    * QDB_DEFAULT_REPLICATION) */
    /* Dangerous operations, off unless the hive enables them (quasardb's
     * enable_purge_all / enable_stop); false: no opinion, the hive's.  Off,
     * REMOVE_ALL and STOP are answered QDB_E_DISABLED. */
    bool enable_purge_all;         /* qdbd --enable-purge-all */
    bool enable_stop;              /* qdbd --enable-stop (alias --allow-remote-stop) */
    /* Resource limits (qdbd --max-content-size, --amo-bytes) */
    size_t max_content;            /* bytes of content (or comparand) a request may carry;
                                    * more is answered QDB_E_CONTENT_TOO_LARGE; default
                                    * 64 MiB */
    size_t dedup_bytes;            /* reply payloads the at-most-once table keeps, in
                                    * bytes; past it the oldest payloads are dropped and
                                    * only their outcome is kept; default 32 MiB */
} qdb_node_config;

/* Fill in the defaults for every zero field. */
void qdb_node_config_defaults(qdb_node_config *cfg);

/* NULL and a message in err (QDB_ERRMSG_SIZE bytes) when the configuration or
 * a seam version is unacceptable. */
qdb_node *qdb_node_new(const qdb_node_config *cfg, qdb_clock *clock, qdb_transport *transport,
                       qdb_random *random, qdb_storage *storage, char *err);
void qdb_node_free(qdb_node *n);

/* Start: with no peers, create a one-node ring; otherwise join through the
 * peers (tried in turn until one answers). */
void qdb_node_start(qdb_node *n, const qdb_addr *peers, size_t n_peers);
/* Where a warm start asks for the node owning an ID: the first node at or
 * after id, clockwise (out), and the node before that one (before: the
 * node a finger's cheap check asks first, ring.c fix-fingers). */
typedef void (*qdb_node_owner_fn)(void *arg, const qdb_id *id, qdb_peer *out, qdb_peer *before);
/* A warm start, for scale experiments only (qdbsim's `warm` verb): the node
 * starts as a settled member of a ring it is told about instead of joining
 * it -- predecessor, successor list (n_succ >= 1 entries, at most the
 * configured length are kept) and every finger from owner_of, as an oracle
 * that sees the whole ring would fill them, with the node before each
 * finger as the one its next refresh asks first.  Nothing is sent and no entry is
 * handed over (start on an empty store); from then on the node runs as if
 * it had joined and settled: rounds at the slow period (the first one at a
 * random point of it), the watch, requests.  With a wrong picture
 * it repairs itself like any node with stale pointers. */
void qdb_node_start_warm(qdb_node *n, const qdb_peer *pred, const qdb_peer *succ,
                         unsigned n_succ, qdb_node_owner_fn owner_of, void *arg);
/* Graceful departure: hand every entry to the successor, tell the
 * neighbours.  The node stays usable until qdb_node_left() is true. */
void qdb_node_leave(qdb_node *n);
bool qdb_node_left(const qdb_node *n);
/* True from the start of a departure (qdb_node_leave, or a STOP obeyed) on. */
bool qdb_node_leaving(const qdb_node *n);
/* True when the node left because its store failed for good (the storage
 * seam's usage() reported failed, e.g. Berkeley DB's DB_RUNRECOVERY): its
 * entries could not be handed over, so it told its predecessor and
 * successor it was leaving without them (LEAVE with QDB_LEAVE_FAILED) --
 * they take over its arc at once, as after a crash, rather than after the
 * failure detector's strikes -- and qdb_node_left() is true.  The host
 * should exit: a restart recovers the store. */
bool qdb_node_storage_failed(const qdb_node *n);
/* Time since qdb_node_start(), on the node's clock seam (0 before). */
qdb_time_us qdb_node_uptime(const qdb_node *n);

/* Entry points for the backends; qdb_node_inbound gathers them for a host's
 * bind call (the core pointer is the qdb_node). */
void qdb_node_recv(qdb_node *n, qdb_addr src, const uint8_t *frame, size_t len);
void qdb_node_unreachable(qdb_node *n, qdb_addr dst);
/* A connection to dst broke (qdb_inbound.reset): our calls to dst fail now
 * (their frames may be lost) and go on as after any failed call -- a
 * strike, which waits out the suspicion window before it drops a
 * neighbour, and whose next call finds out at once whether dst's process
 * is gone (a refused connection: qdb_node_unreachable). */
void qdb_node_reset(qdb_node *n, qdb_addr dst);
void qdb_node_tick(qdb_node *n);
/* The connection src spoke from closed (qdb_inbound.gone): its client
 * session ends with it. */
void qdb_node_gone(qdb_node *n, qdb_addr src);
extern const qdb_inbound qdb_node_inbound;

/* Stop (true) or resume (false) ring maintenance: stabilize, fix-fingers and
 * the neighbour watch (predecessor check included) are skipped while paused, as in the Chord paper's
 * "no stabilization between the failures and the lookups" experiment
 * (ToN 2003, Sec. V-D).  Lookups are still answered and failures they meet
 * still repaired locally.  Resuming starts over at the fast period. */
void qdb_node_pause_maintenance(qdb_node *n, bool paused);

/* Introspection: for the oracle, tests and logs. */
const qdb_peer *qdb_node_self(const qdb_node *n);
/* NULL when unknown. */
const qdb_peer *qdb_node_successor(const qdb_node *n);
const qdb_peer *qdb_node_predecessor(const qdb_node *n);
unsigned qdb_node_succlist(const qdb_node *n, qdb_peer *out, unsigned max);
/* Finger i (0..255): the node's belief of successor(self + 2^i); NULL when unknown. */
const qdb_peer *qdb_node_finger(const qdb_node *n, unsigned i);
/* True when the last stabilization rounds changed nothing, the hand-over is
 * done and the predecessor is known: the node believes the ring is settled. */
bool qdb_node_is_stable(const qdb_node *n);
/* True while the node is still receiving its range from its successor. */
bool qdb_node_is_joining(const qdb_node *n);
/* A hint, changing nothing: the caller will soon read n's ring state
 * (successor, predecessor, successor list, is_joining), as the oracle does
 * for every node of a big ring.  Pass 0 asks for the node's lines, pass 1,
 * once those are likely there, for its successor list. */
void qdb_node_prefetch_ring(const qdb_node *n, int pass);
/* Answer a FIND locally: 1 and the owner when this node knows it, 0 and the
 * next hop otherwise.  Used by the oracle to measure lookup paths. */
int qdb_node_route(const qdb_node *n, const qdb_id *target, qdb_peer *out);
/* Does this node consider itself the owner of id right now? */
bool qdb_node_owns(const qdb_node *n, const qdb_id *id);
/* Would this node serve requests for its range (*lo, itself] right now --
 * settled, and with replicas under its lease?  For the oracle, which
 * checks that no two nodes serve one key at once (qdbd(8), "Leases"). */
bool qdb_node_serving(const qdb_node *n, qdb_id *lo);
uint64_t qdb_node_incarnation(const qdb_node *n);
/* The hive's replication factor K as this node knows it: 0 while it joins
 * without an opinion of its own, then the hive's. */
unsigned qdb_node_replication(const qdb_node *n);
/* NULL, or why the hive refused this node (its settings differ from the
 * hive's): the node has stopped and answers nothing; qdbd exits. */
const char *qdb_node_refusal(const qdb_node *n);
size_t qdb_node_memory(const qdb_node *n); /* bytes held, approximately */

typedef struct qdb_node_stats {
    uint64_t frames_in, frames_out, bad_frames;
    uint64_t requests, wrong_node, unstable, duplicates;
    uint64_t rpc_timeouts, handover_sent, handover_received;
    uint64_t finds;          /* FIND messages answered (lookup hops through this node) */
    uint64_t storage_errors; /* storage calls that failed (requests and hand-over) */
    uint64_t status_requests, stops; /* STATUS answered; STOP obeyed or refused */
    uint64_t expired; /* expired records the collector deleted */
    uint64_t repair_sent;  /* records sent by repair (to replicas, and back to owners) */
    uint64_t repair_bytes; /* bytes of repair frames sent: digests, answers, records */
    /* frames refused by the admission rules (ring.c; a stranger's claim not
     * believed) and the connection classes (serve.c; a node's message on a
     * client's session or the reverse) */
    uint64_t admission_refused, class_refused;
    uint64_t handover_batches; /* HANDOVER frames built: hand-over and replica copies */
    uint64_t stray_deleted;  /* copies dropped once their owner held them (stray.c) */
    uint64_t handover_bytes; /* bytes of hand-over frames sent (joins, leaves) */
    uint64_t ids_ahead; /* requests served with the ID worked out when announced
                         * ahead (qdb_inbound.ahead: pipelined batches) */
} qdb_node_stats;
/* Entry requests answered, by type (QDB_MSG_PUT .. QDB_MSG_REMOVE_ALL) and
 * result (a qdb_error_t).  The results a node gives by itself are counted
 * apart; any other code shares one count ("other" in the metrics). */
uint64_t qdb_node_requests(const qdb_node *n, int type, int status);
const qdb_node_stats *qdb_node_get_stats(const qdb_node *n);

/* Storage keys: ID (32 bytes) followed by the alias.  Values: a record
 * header followed by the content (record.h). */
#define QDB_KEY_MAX (QDB_ID_BYTES + 1024)

#endif

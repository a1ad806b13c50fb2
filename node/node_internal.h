/* SPDX-License-Identifier: BSD-2-Clause */
/* Internals shared by node.c (life cycle, RPC table, timers), ring.c (Chord
 * maintenance and routing) and serve.c (sessions, entry requests, hand-over).
 * Not installed; nothing outside node/ includes it. */
#ifndef QDB_NODE_INTERNAL_H
#define QDB_NODE_INTERNAL_H

#include <glib.h>

#include "codec.h"
#include "node.h"
#include "rto.h"

/* Fingers.  Finger i is successor(self + 2^i).  With N random IDs the gaps
 * between nodes are about 2^256 / N, so for every i below 256 - log2(N) - a few
 * finger i is simply the successor.  We store only the top QDB_FINGER_WINDOW
 * fingers and answer the successor for the others: 64 x 40 bytes instead of
 * 256 x 40, which is what lets a million nodes fit in memory.  The cost:
 * when two node IDs are closer than 2^(256-64) (hand-picked IDs, or with
 * probability ~N^2 / 2^193 for random ones) lookups take a few more hops;
 * they are never wrong, since routing only needs successors to be right. */
#define QDB_FINGER_WINDOW 64
#define QDB_FINGER_LO (QDB_ID_BITS - QDB_FINGER_WINDOW)

/* Lookups a node makes on its own (join, fix-fingers) give up after this many
 * hops; a correct ring needs O(log N). */
#define QDB_NODE_MAX_HOPS 64

/* Silent answers in a row before a neighbour is declared failed. */
#define QDB_NODE_STRIKES 3

/* Peers a joining node keeps trying; silent peers remembered for merging,
 * and how many probes each gets (one a round: ~20 min at the slow period). */
#define QDB_JOIN_PEERS 8
#define QDB_REMEMBERED 8
#define QDB_REMEMBERED_TRIES 40

/* Strike-outs (QDB_NODE_STRIKES silences each) a node survives when it is
 * the only other node known, before we fall back to a ring of one. */
#define QDB_LONE_STRIKEOUTS 2

/* Finger lookups per stabilization round (beyond fingers never known). */
#define QDB_FINGERS_PER_ROUND 4

/* Peers whose round trip is measured (rto.h): the neighbours, the fingers
 * in use and a few more; the least recently used is forgotten. */
#define QDB_NODE_RTO_PEERS 16
/* RPCs that timed out, kept to turn their late answer into an RTT sample. */
#define QDB_NODE_LATE 8
/* Peers reported dead (a FIND's exclusion list) and not yet checked: never
 * offered as a hop while there, probed at once. */
#define QDB_NODE_SUSPECTS 16
/* Confirmations (watch.c, "Confirmation") that must time out, since the
 * peer last vouched for itself, before it is struck out; and the peers
 * whose confirmations timed out that are kept, the newest replacing the
 * oldest. */
#define QDB_CONFIRMS_FAILED 2
#define QDB_NODE_CONFIRMS 8
/* Successor candidates asked at once, the others presumed lost (ring.c,
 * consider_candidate). */
#define QDB_CANDIDATE_CHECKS 4
/* Admission (ring.c): peers whose claim was checked (they answered from the
 * address they named, as nodes that have us where they say), and the checks
 * in flight at most -- a stranger's frames cost at most this many probes. */
#define QDB_NODE_ADMITTED 8
#define QDB_NODE_ADMIT_CHECKS 4
/* ...and the last peers whose answer did not name us: not checked again
 * on their STABILIZE alone (only on their NOTIFY), see ring_on_stabilize. */
#define QDB_NODE_REFUSED 16

typedef enum node_phase {
    PHASE_IDLE,     /* created, not started */
    PHASE_JOINING,  /* looking for its successor through a peer */
    PHASE_ACTIVE,   /* in the ring */
    PHASE_LEAVING,  /* handing its entries to its successor */
    PHASE_LEFT      /* gone: answers nothing */
} node_phase;

typedef enum rpc_kind {
    RPC_JOIN_FIND,    /* iterative lookup of our own ID, for join */
    RPC_RELOCATE_FIND, /* the same, by an active node that finds itself misplaced */
    RPC_FINGER_FIND,  /* iterative lookup of a finger start; arg = finger index */
    RPC_STABILIZE,    /* ask our successor for its predecessor and list */
    RPC_CANDIDATE,    /* ask a would-be successor, before adopting it (Zave) */
    RPC_JOIN_CONFIRM, /* ask the successor found by join, before adopting it */
    RPC_PING,         /* check_predecessor (watch.c) */
    RPC_HANDOVER,     /* one HANDOVER batch, until its HANDOVER_ACK */
    RPC_PROBE,        /* is a peer a client reported dead alive?  arg = strike */
    RPC_WATCH,        /* is our successor alive (watch.c)?  arg = strike, as RPC_STABILIZE */
    RPC_REPLICATE,    /* a client's mutation copied to a replica (replica.c) */
    RPC_REPAIR,       /* one batch of our range copied to a replica (replica.c) */
    RPC_DIGEST,       /* our range's digest, to a replica (replica.c) */
    RPC_ADMIT,        /* check a stranger's claim before believing it (ring.c, admission);
                       * arg = the NOTIFY's flags, or ADMIT_SENDER */
    RPC_STRAY_FIND,   /* the owner of a stray copy's key (stray.c) */
    RPC_STRAY_DIGEST, /* a stray arc's digest, offered to its owner (stray.c) */
    RPC_STRAY,        /* one batch of stray records, to their owner (stray.c) */
    RPC_REJOIN_DIGEST, /* what we hand a rejoining predecessor, by digest (stray.c) */
    RPC_CONFIRM       /* is a peer about to be struck out alive (watch.c, "Confirmation")? */
    /* NOTIFY and LEAVE expect no answer: they are sent, not called. */
} rpc_kind;

/* A peer's confirmations that timed out (watch.c, "Confirmation"): when
 * the last n of them (at most QDB_CONFIRMS_FAILED) were sent, oldest
 * first. */
typedef struct node_unconfirmed {
    qdb_addr addr;
    unsigned n;
    qdb_time_us sent[QDB_CONFIRMS_FAILED];
} node_unconfirmed;

typedef struct node_rpc {
    uint64_t id;
    qdb_time_us sent;     /* for the round-trip sample */
    qdb_time_us deadline;
    qdb_addr dst;
    uint16_t kind;
    uint16_t arg;
    uint16_t hops;
    qdb_peer peer; /* RPC_CANDIDATE/JOIN_CONFIRM: the peer asked */
} node_rpc;

/* When a neighbour was last heard from (watch.c). */
typedef struct node_heard {
    qdb_addr addr;
    qdb_time_us at;
} node_heard;

struct qdb_node {
    /* What nearly every event reads first, together at the start: spread
     * over the struct, each of these was a cache miss of its own (perf at
     * 10,000 simulated nodes: the node's phase, its RPC table and its frame
     * counters were a third of qdb_node_recv). */
    node_phase phase;
    bool round_changed;
    bool gc_resume;        /* gc_cursor holds a key (serve_ext.c, expiry collection) */
    unsigned quiet_rounds;
    unsigned replication;  /* hive-wide K (hive.c); 0 until known */
    /* RPCs in flight: few, so a small array searched linearly */
    GArray *rpcs; /* node_rpc */
    /* timers: one round every `period`, adapting between fast and slow */
    qdb_time_us period;
    qdb_time_us round_at;
    qdb_time_us armed;
    uint64_t next_rpc;
    /* ...then what most events read next, so that a frame or a tick reads
     * the node mostly within its first eleven cache lines (stats, rto,
     * cfg.self and pred included: rto ends in the tenth line and pred,
     * which nearly every frame's watch_heard compares, lies in the
     * eleventh), which the simulator prefetches one event ahead
     * (transport-sim/simnet.c, prefetch_upcoming): scattered over the
     * struct, each of these fields was a cache miss of its own (perf at
     * 10,000 nodes). */
    qdb_clock *clock;
    qdb_transport *transport;
    qdb_random *random;
    qdb_storage *storage;
    qdb_peer *succ;       /* succ[0] is the successor; cfg.succlist_len slots */
    unsigned n_succ;      /* 0 only while joining */
    bool has_pred;
    bool storage_failed; /* the store failed for good: the node left (node_storage_check) */
    uint64_t finger_valid; /* bit j: finger[j] (finger index QDB_FINGER_LO + j) known */
    uint64_t finger_same;  /* bit j: finger[j] holds the same peer as finger[j + 1]
                            * (valid or not); 0 is always safe (ring.c, finger_set) */
    unsigned n_suspects, suspects_next; /* see suspects[] */
    qdb_time_us watch_at;          /* the neighbour watch's next look (watch.c) */
    /* K > 1: our leases (watch.c, "Lease"): lease_until[d - 1] ends the one
     * of depth d; we serve our range until lease_until[K - 2] */
    qdb_time_us lease_until[QDB_REPLICATION_MAX - 1];
    bool lease_resync;             /* ...renewed after it lapsed: compare the range first */
    node_heard heard_succ, heard_pred; /* the last frame from each neighbour */
    GHashTable *classes;   /* qdb_addr_key(src) -> SRC_CLIENT or SRC_NODE (serve.c) */
    uint64_t class_memo;   /* the last source looked up there, qdb_addr_key << 2 | its
                            * class (0: none): the predecessor's STABILIZE and NOTIFY
                            * every round are answered without the table's misses */
    qdb_time_us repair_at;   /* the next repair batch may leave then (cfg.repair_rate); 0: now */
    struct stray_state *stray; /* stray copies and rejoins (stray.c); NULL until used */
    qdb_node_config cfg;
    qdb_node_stats stats;
    /* their timeouts, adapted to each peer's round trip (every answer and
     * every RPC sent reads them: in the prefetched lines too) */
    qdb_rto rto;

    uint64_t incarnation;

    /* ring state */
    qdb_peer pred;
    qdb_peer finger[QDB_FINGER_WINDOW];
    unsigned next_finger;  /* the next finger index fix-fingers refreshes */
    bool finger_busy;      /* a finger lookup is in flight */
    unsigned finger_budget; /* finger lookups left this round */
    qdb_time_us finger_cycle_at; /* the next fix-fingers cycle may start then */
    /* finger_hop[j]: the node whose answer last set finger[j] by a lookup
     * (the predecessor of its start), asked first next time (ring.c,
     * fix-fingers); the null address: none */
    qdb_addr finger_hop[QDB_FINGER_WINDOW];
    bool awaiting_handover;
    /* The arc a failed predecessor owned, which we inherited without its
     * entries: a missing entry there is "unavailable", not "not found",
     * until the failed node comes back (replication comes later). */
    qdb_id orphan_lo, orphan_hi; /* (lo, hi] */
    bool has_orphan;
    qdb_time_us orphan_since;    /* when the orphaned arc was inherited (forget.c) */
    qdb_id forgotten[4];         /* the last IDs an operator declared gone (forget.c) */
    unsigned n_forgotten;
    qdb_id failed_pred;          /* the predecessor that failed, until we adopt another */
    bool pred_failed;
    qdb_peer cand_next;    /* the best successor candidate waiting its turn */
    bool has_cand_next;
    bool restabilize;      /* a hint came while a stabilize was in flight */
    qdb_peer hint_to;      /* the last node sent a hint (send_hint) ... */
    unsigned hint_owed;    /* ... resent each round until it stabilizes with
                            * us, at most QDB_HINT_RESENDS times; 0: none */
    unsigned walk_steps;   /* successive rounds that found a closer successor */

    /* join: the peers given at start, then the ones join lookups name (so a
     * join survives its first peer leaving), at most QDB_JOIN_PEERS */
    qdb_addr *join_peers;
    size_t n_join_peers;
    size_t join_next;

    /* peers forgotten because they fell silent (not because they left):
     * probed one a round, so two rings a long partition made merge again */
    qdb_peer remembered[QDB_REMEMBERED];
    uint8_t remembered_tries[QDB_REMEMBERED];
    unsigned n_remembered;
    unsigned remembered_next;
    /* strike-outs of the only node we know, kept (ring.c, forget_silent) */
    unsigned lone_strikeouts;

    node_rpc late[QDB_NODE_LATE]; /* timed out recently (id 0: empty slot) */
    unsigned late_next;

    /* failure knowledge from others: see QDB_NODE_SUSPECTS */
    qdb_addr suspects[QDB_NODE_SUSPECTS];
    qdb_time_us suspected_at[QDB_NODE_SUSPECTS]; /* when each was reported */
    /* confirmations that timed out (watch.c) */
    node_unconfirmed unconfirmed[QDB_NODE_CONFIRMS];
    unsigned n_unconfirmed, unconfirmed_next;
    /* the neighbour watch (watch.c) */
    qdb_peer contender;            /* a NOTIFY refused because of a predecessor... */
    qdb_addr contender_vs;         /* ...this one, which is being checked */
    unsigned contender_flags;
    bool has_contender;
    /* admission (ring.c): peers checked, newest replacing the oldest */
    qdb_peer admitted[QDB_NODE_ADMITTED];
    unsigned n_admitted, admitted_next;
    qdb_addr refused[QDB_NODE_REFUSED]; /* newest replacing the oldest */
    unsigned n_refused, refused_next;
    /* ring maintenance paused (qdb_node_pause_maintenance) */
    bool paused;

    /* hand-over we send: one batch in flight at a time */
    uint64_t ho_rpc;       /* 0: none in flight */
    GPtrArray *ho_keys;    /* GBytes keys of the batch in flight */
    bool ho_retry;         /* the batch in flight timed out: the next push builds a new one */
    bool ho_last;          /* the batch in flight is the last one */
    bool ho_tried;         /* leaving: the batch in flight is sent again once before
                            * its receiver is given up (serve_on_handover_failed) */
    qdb_id ho_cursor;      /* with replicas: pushed up to here (serve.c, push_scan) */
    bool ho_continue;      /* the next push goes on from ho_cursor */
    qdb_id ho_from;        /* with replicas, ho_give: our range ran from here before a */
    bool ho_give;          /* closer predecessor, not a joining one, appeared: what we
                            * hold in (ho_from, pred] is pushed to it (ring.c,
                            * ring_notify_admitted) */
    /* hand-over we receive: recent (sender, rpc) pairs, to apply a batch once */
    uint64_t ho_seen[8];
    unsigned ho_seen_next;

    /* clients: created on first use, so idle simulated nodes stay small */
    GHashTable *sessions;  /* qdb_addr_key(src) -> client id */
    struct qdb_hindex *dedup; /* the dedup_entry in use, by dedup_hash() */
    struct serve_ahead *ahead; /* IDs of aliases announced ahead (serve_ahead) */
    GPtrArray *dedup_ring; /* blocks of DEDUP_BLOCK entries: entry i of all ever
                            * remembered is slot i mod cfg.dedup_capacity, so the
                            * oldest is evicted where the next one goes */
    uint64_t dedup_added;  /* entries ever remembered */
    GQueue *dedup_kept;    /* the entries that still keep a payload, oldest first */
    size_t dedup_bytes;    /* the payload bytes they keep, at most cfg.dedup_bytes */

    /* replication (replica.c) */
    GPtrArray *repl_writes;  /* mutations waiting for their replicas; NULL until one */
    uint64_t repair_rpc;     /* the repair batch in flight, or 0 */
    bool repair_active;      /* copying our range to repair_dst */
    bool repair_lo_set;
    qdb_id repair_lo;        /* the predecessor our range was copied for */
    qdb_peer repair_dst;
    qdb_id repair_cursor, repair_next_cursor; /* copied up to (after the ack) */
    GPtrArray *repair_keys;  /* GBytes: the batch in flight */
    qdb_addr repaired[QDB_REPLICATION_MAX]; /* replicas that have our range */
    unsigned n_repaired;
    bool repair_digested;    /* repair_dst answered our DIGEST: repair_diff is known */
    unsigned repair_buckets; /* the digest's buckets (a power of two) */
    uint8_t repair_diff[QDB_DIGEST_BUCKETS_MAX / 8]; /* bit b: bucket b differs there */
    qdb_time_us repair_again_at; /* the next comparison with every replica (anti-entropy) */
    uint64_t repair_shape;   /* replica_shape when replica_kick last looked */
    /* The arc (sync_lo, sync_hi] we took over from a failed predecessor,
     * until each replica answered a digest of it (replica_sync_start): a
     * replica may hold a newer copy than ours there (a write its owner
     * copied past us), so reads there answer "unstable" meanwhile. */
    bool syncing;
    qdb_id sync_lo, sync_hi;
    /* The arcs owners last sent us a repair digest of (lo, hi]: hi is the
     * owner's ID.  What we hold as a replica, so what a take-over brings
     * us with its entries (replica_covered_from). */
    qdb_id covered_lo[2 * QDB_REPLICATION_MAX], covered_hi[2 * QDB_REPLICATION_MAX];
    unsigned n_covered;
    uint64_t sync_rpc[QDB_REPLICATION_MAX]; /* the digests out; 0: answered or failed */
    bool stored_at_join;     /* we started joining with a non-empty store (a restart) */

    /* versions (version.c) */
    uint64_t hlc;            /* the last version issued or seen */
    qdb_time_us collect_at;  /* the next tombstone sweep */

    /* hive-wide settings (hive.c) */
    bool purge_all_enabled, stop_enabled; /* REMOVE_ALL and STOP obeyed (false until known) */
    char *refusal;         /* why the hive refused us, or NULL */

    GByteArray *gc_cursor; /* expiry collection resumes after this key (see gc_resume) */
    /* replies to entry requests by type and status: allocated on the first
     * request, so idle simulated nodes stay small (serve.c) */
    uint64_t *req_counts;
    qdb_time_us started_at; /* qdb_node_start(), for the uptime */
    /* the STABILIZE (sender, rpc, asker) that the node we were confirming
     * as our successor sent while we were joining, answered once we joined
     * (ring.c, ring_on_stabilize) */
    qdb_addr early_src;
    uint64_t early_rpc;
    qdb_peer early_peer;
    bool has_early;
};

/* Rows (request types) and columns (the results a node gives, and one for
 * any other) of req_counts: 7 x 10 counters, 560 bytes. */
#define QDB_REQ_TYPES (QDB_MSG_REMOVE_ALL - QDB_MSG_PUT + 1 + 5) /* + status.c's extra rows */
#define QDB_REQ_RESULTS 10

/* node.c */
void node_log_at(const qdb_node *n, int level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Its arguments are evaluated only when the level is logged: an address
 * formatted for every STABILIZE reply and dropped cost 2% of the simulator's
 * time at 10,000 nodes.  So they must not have side effects the caller
 * needs (a formatted buffer is read by the log line only). */
#define node_log(n, level, ...)                                                                    \
    do {                                                                                           \
        if ((level) <= (n)->cfg.log_level)                                                         \
            node_log_at((n), (level), __VA_ARGS__);                                                \
    } while (0)
qdb_time_us node_now(const qdb_node *n);
/* We serve requests for our range now (serve.c): active, a predecessor,
 * our hand-over in, and with replicas under our lease (watch.c). */
bool node_serves(const qdb_node *n);
int node_send(qdb_node *n, qdb_addr dst, const qdb_msg *m);
/* node_send() of a REPLY, framed from its fields (qdb_reply_encode_buf): the
 * answer to every entry request. */
int node_send_reply(qdb_node *n, qdb_addr dst, uint64_t seq, int status, const uint8_t *payload,
                    size_t len);
/* Send m as an RPC (m->rpc is filled in) and remember it until its answer
 * or its deadline.  Returns the RPC record's id. */
uint64_t node_call(qdb_node *n, qdb_addr dst, qdb_msg *m, rpc_kind kind, unsigned arg,
                   unsigned hops, const qdb_peer *peer);
/* Remember an RPC whose frame the caller sent itself (hand-over batches). */
void node_expect(qdb_node *n, qdb_addr dst, uint64_t id, rpc_kind kind, const qdb_peer *peer);
void node_rearm(qdb_node *n);
/* The store failed for good (its usage() says so): leave the ring at once,
 * without hand-over (serve_leave_failed).  Every entry point ends with it. */
void node_storage_check(qdb_node *n);
bool node_rpc_pending(const qdb_node *n, rpc_kind kind);
bool node_rpc_pending_to(const qdb_node *n, rpc_kind kind, qdb_addr dst);
/* The call id times out at `at` rather than after its peer's RTO. */
void node_deadline(qdb_node *n, uint64_t id, qdb_time_us at);
/* Forget the calls of this kind to dst: their answer or failure is moot. */
void node_cancel(qdb_node *n, qdb_addr dst, rpc_kind kind);

/* ring.c */
void ring_start(qdb_node *n);
void ring_start_warm(qdb_node *n, const qdb_peer *pred, const qdb_peer *succ, unsigned n_succ,
                     qdb_node_owner_fn owner_of, void *arg);
void ring_round(qdb_node *n);
void ring_on_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m);
void ring_on_failure(qdb_node *n, const node_rpc *rpc);
void ring_forget(qdb_node *n, qdb_addr addr);
void ring_on_find(qdb_node *n, qdb_addr src, const qdb_msg *m);
void ring_on_stabilize(qdb_node *n, qdb_addr src, const qdb_msg *m);
void ring_on_notify(qdb_node *n, qdb_addr src, const qdb_msg *m);
void ring_on_leave(qdb_node *n, qdb_addr src, const qdb_msg *m);
void ring_set_changed(qdb_node *n);
/* Admission: does src speak from the host of the address a frame claims?
 * (A node's outgoing connections leave from its listening IP, on another
 * port; the simulator's from the address itself.) */
bool ring_same_host(qdb_addr src, qdb_addr claimed);
/* Is p a peer whose claims we have checked or adopted (predecessor,
 * successor list, admitted)? */
bool ring_vouched(const qdb_node *n, const qdb_peer *p);
/* Check p (a HANDOVER's sender we do not know) before believing it: it must
 * name us among its first K - 1 successors (the first when K = 1).  Bounded
 * like every admission check. */
void ring_admit_sender(qdb_node *n, const qdb_peer *p);
/* The same for a HANDOVER of stray copies of our own range (stray.h): p
 * must answer, at the address it named, as a node with successors. */
void ring_admit_stray(qdb_node *n, const qdb_peer *p);
/* NOTIFY from c, already admitted (the contender's replay, watch.c). */
void ring_notify_admitted(qdb_node *n, const qdb_peer *c, unsigned flags);
void ring_on_admit_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m);
/* Closest preceding node for target, or the owner when done (returns 1),
 * never a suspect nor one of the n_excl addresses in excl.  Returns -1
 * (out = self) when every node it knows is excluded. */
int ring_route(const qdb_node *n, const qdb_id *target, const qdb_addr *excl, unsigned n_excl,
               qdb_peer *out);
/* A stabilization period drawn uniformly in [period / 2, 3 period / 2) from
 * the node's generator, so rounds do not march in step (Chord ToN 2003,
 * Sec. V: "stabilization ... at intervals uniformly distributed"). */
qdb_time_us ring_jitter(qdb_node *n, qdb_time_us period);
const qdb_peer *ring_successor(const qdb_node *n);

/* watch.c: the neighbours watched between rounds */
void watch_start(qdb_node *n);
/* A frame of this type came from src. */
void watch_heard(qdb_node *n, qdb_addr src, unsigned type);
/* The node's wake-up: look at the neighbours if watch_at has come. */
void watch_tick(qdb_node *n);
/* c's NOTIFY (with these flags) was refused: our predecessor outranks it.
 * If the predecessor is dead, c is the one: check it now. */
void watch_contender(qdb_node *n, const qdb_peer *c, unsigned flags);
/* The predecessor check of `pred` failed (pred is forgotten) or answered. */
void watch_pred_failed(qdb_node *n, qdb_addr pred);
/* When a may be struck out, if it stays silent (0: already): once nothing
 * vouched for it (an answer; from our predecessor, any frame) within
 * QDB_SUSPECT_WINDOW (see watch.c), its silence counted from `since` at
 * the earliest (0: from its last answer only). */
qdb_time_us watch_suspect_at(qdb_node *n, qdb_addr a, qdb_time_us since);
/* A call to a timed out, one strike of a series that may strike it out:
 * ask it again with a frame of this type (QDB_MSG_STABILIZE, which only a
 * ring member answers, or QDB_MSG_PING) to confirm -- one confirmation in
 * flight at a time -- unless QDB_CONFIRMS_FAILED sent since it last
 * vouched for itself timed out already. */
void watch_doubt(qdb_node *n, qdb_addr a, qdb_time_us since, int type);
/* The last strike of a series on a: 0 when a is struck out now -- silent
 * (watch_suspect_at) and QDB_CONFIRMS_FAILED confirmations sent since it
 * last vouched for itself timed out -- else when to decide again (when
 * the window ends, or just after the confirmation under way times out).
 * See watch.c, "Confirmation". */
qdb_time_us watch_strike_at(qdb_node *n, qdb_addr a, qdb_time_us since, int type);
/* The confirmation rpc timed out. */
void watch_confirm_failed(qdb_node *n, const node_rpc *rpc);
void watch_pred_alive(qdb_node *n);
/* The lease on our range (K > 1; watch.c, "Lease"): may we serve it as its
 * owner now?  Always with K = 1, and alone in the ring. */
bool watch_leased(const qdb_node *n);
/* The frame the watch asks the successor with: a STABILIZE with replicas
 * (its answer renews the lease), else a PING. */
int watch_succ_frame(const qdb_node *n);
/* A STABILIZE_REPLY m answered our call rpc (a round's or the watch's):
 * renew the lease if it comes from our successor and names us its
 * predecessor. */
void watch_confirmed(qdb_node *n, const node_rpc *rpc, const qdb_msg *m);
/* A STABILIZE_REPLY we send carries our leases, with K >= 3: the asker's
 * deeper leases end no later than ours. */
void watch_describe(qdb_node *n, qdb_msg *reply);
/* We notified our successor while out of lease: ask it again one round
 * trip later, not at the next look. */
void watch_renew_soon(qdb_node *n);
/* Compare our range with our replicas if our lease was renewed after it
 * lapsed, once we have a predecessor and our hand-over (ring_notify_admitted
 * calls it too). */
void watch_resync(qdb_node *n);

/* replica.c */
/* Our replicas: the first K - 1 distinct successors; returns how many. */
unsigned replica_targets(const qdb_node *n, qdb_peer *out, unsigned max);
/* A mutation wrote keys (GBytes; a reference is taken: the caller unrefs, never frees): copy them to the
 * replicas and answer the client (serve_answer) once they all have them.
 * False when there is nobody to copy to: the caller answers now. */
bool replica_write(qdb_node *n, qdb_addr src, uint64_t client, const qdb_msg *m, int status,
                   const uint8_t *payload, size_t plen, GPtrArray *keys);
/* A write no client waits for (the expiry collector's): copy keys (GBytes,
 * as replica_write) to the replicas, answering nobody. */
void replica_copy(qdb_node *n, GPtrArray *keys);
/* A batch of a leaving node's hand-over (rpc, from src) is stored:
 * copy keys (GBytes, as replica_write) to our replicas but the leaver, and
 * acknowledge the batch to src once they all have them.  False when there
 * is nobody to copy to: the caller acknowledges now. */
bool replica_handover(qdb_node *n, qdb_addr src, uint64_t rpc, const qdb_peer *leaver,
                      GPtrArray *keys);
/* Is this leaver's batch (rpc, from src) waiting for our replicas?  A copy
 * of it (the network duplicated it) is then acknowledged with it, not
 * before. */
bool replica_handover_pending(const qdb_node *n, qdb_addr src, uint64_t rpc);
/* Is this request waiting for its replicas?  (A retry then waits too.) */
bool replica_pending(const qdb_node *n, uint64_t client, uint64_t seq);
void replica_round(qdb_node *n);
/* Our predecessor and replicas, summed: a change moves what we hold. */
uint64_t replica_shape(const qdb_node *n);
/* At the end of each entry point: when our range or our replicas changed,
 * repair now rather than at the next round.  A new owner compares its
 * range with its replicas at once, so a copy of theirs newer than its own
 * (a write its predecessor made while it was joining) comes back within
 * round trips; a new replica gets the writes it missed the same way. */
void replica_kick(qdb_node *n);
void replica_on_ack(qdb_node *n, const node_rpc *rpc);
void replica_on_failed(qdb_node *n, const node_rpc *rpc);
/* An owner's DIGEST of a range we replicate, and our answer to ours. */
void replica_on_digest(qdb_node *n, qdb_addr src, const qdb_msg *m);
void replica_on_digest_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m);
void replica_free(qdb_node *n);
/* We took (lo, hi] over from a failed predecessor: send each replica a
 * digest of it (its answer brings back what it holds newer), and until
 * all answered (or failed) replica_syncing is true for keys there. */
void replica_sync_start(qdb_node *n, const qdb_id *lo, const qdb_id *hi);
bool replica_syncing(const qdb_node *n, const qdb_id *id);
/* We joined and now have both our hand-over and a predecessor: the same
 * sync of our whole range.  The hand-over came from our successor, which
 * held the arc before us only as a replica: an owner that did not know us
 * yet may have copied a write there after that batch left, and may have
 * failed since (then no repair of its brings it to us). */
void replica_sync_first(qdb_node *n);
/* The start of the arc ending at hi that we hold as a replica: following
 * the owners' digests back from the one whose ID is hi, at most K - 1 of
 * them (hi itself: none). */
qdb_id replica_covered_from(const qdb_node *n, const qdb_id *hi);
/* For stray.c: replica.c's digest of (lo, hi] in `buckets` buckets (0: by
 * the count), as DIGEST carries it; is key in a bucket set in diff; the next
 * batch of records in diff's buckets after *cursor, up to hi (*cursor moves
 * to the batch's last key; true: full, more may follow); and a batch of
 * copies sent to dst under rpc, awaited as kind (returns the frame's length). */
unsigned replica_digest(qdb_node *n, const qdb_id *lo, const qdb_id *hi, unsigned buckets,
                        uint64_t sums[QDB_DIGEST_BUCKETS_MAX]);
bool replica_diff_has(const qdb_id *lo, const qdb_id *hi, unsigned buckets, const uint8_t *diff,
                      const uint8_t *key);
bool replica_diff_batch(qdb_node *n, const qdb_id *lo, const qdb_id *hi, unsigned buckets,
                        const uint8_t *diff, qdb_id *cursor, GPtrArray *keys);
size_t replica_send(qdb_node *n, const qdb_peer *dst, uint64_t rpc, GPtrArray *keys,
                    rpc_kind kind);

/* version.c */
struct qdb_record_meta;
/* The version of a new write at wall-clock time wall of an entry whose
 * current record is old (NULL: none): at least wall, above every version
 * this node issued or saw, and above old's. */
uint64_t version_next(qdb_node *n, int64_t wall, const struct qdb_record_meta *old);
/* A version another node issued: later ones are issued above it. */
void version_witness(qdb_node *n, uint64_t version);
/* This node's tie-breaker for equal versions. */
uint64_t version_origin(const qdb_node *n);
/* Delete the tombstones older than the grace period, when a sweep is due. */
void version_collect(qdb_node *n);

/* hive.c: the hive-wide settings */
/* A ring of one: this node fixes them. */
void hive_create(qdb_node *n);
/* The answer of the successor a join found (its STABILIZE_REPLY): adopt
 * the hive's settings, or refuse ours (false: the node stopped). */
bool hive_join(qdb_node *n, qdb_addr from, const qdb_msg *reply);
/* Stop the node for good with this reason (qdb_node_refusal); returns false. */
bool hive_refuse(qdb_node *n, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* Fill in the settings of a STABILIZE_REPLY. */
void hive_describe(const qdb_node *n, qdb_msg *reply);

/* serve.c */
void serve_request(qdb_node *n, qdb_addr src, const qdb_msg *m);
void serve_hello(qdb_node *n, qdb_addr src, const qdb_msg *m);
/* Connection classes: false when a frame of this type may not come from src
 * (a node's message on a client's session or the reverse); the frame is then
 * refused (serve.c). */
bool serve_class_ok(qdb_node *n, qdb_addr src, const qdb_msg *m);
/* The connection src spoke from closed: forget its session and class. */
void serve_gone(qdb_node *n, qdb_addr src);
void serve_on_handover(qdb_node *n, qdb_addr src, const qdb_msg *m);
void serve_on_handover_ack(qdb_node *n, const node_rpc *rpc);
void serve_on_handover_failed(qdb_node *n, const node_rpc *rpc);
/* Push entries we do not own to dst (our predecessor, or our successor
 * when leaving).  force_last: send a (possibly empty) last batch even when
 * there is nothing to move, so a joining node learns it has everything. */
void serve_push(qdb_node *n, const qdb_peer *dst, bool force_last);
/* The store failed: a LEAVE flagged QDB_LEAVE_FAILED to the neighbours (when
 * the node is in a ring), no hand-over; the node has left. */
void serve_leave_failed(qdb_node *n);
void serve_free(qdb_node *n);
/* qdb_inbound.ahead: a frame of a pipelined batch that recv() gets next
 * (frame NULL: the batch is complete).  Hashes its alias now and asks the
 * store for its entry; serve_request() then takes the ID from here.  Pure
 * hint: no outcome depends on it. */
void serve_ahead(qdb_node *n, qdb_addr src, const uint8_t *frame, size_t len);
/* Answer a client's mutation, and remember the answer for its retries. */
void serve_answer(qdb_node *n, qdb_addr src, uint64_t client, int type, uint64_t seq, int status,
                  const uint8_t *payload, size_t len);
/* Do we hold the entry at key at theirs' version or newer?  (A record that
 * is not there, or corrupt, is older than any.) */
bool serve_holds_newer(qdb_node *n, const uint8_t *key, size_t kl,
                       const struct qdb_record_meta *theirs);
bool serve_has_foreign(qdb_node *n);
/* status.c: operators' requests */
void status_on_status(qdb_node *n, qdb_addr src, const qdb_msg *m);
void status_on_stop(qdb_node *n, qdb_addr src, const qdb_msg *m);
/* Count the answer to an entry request (the metrics). */
void status_count_request(qdb_node *n, int type, int status);
/* Calls fn for every stored entry whose ID lies in (a, b] (a == b: the
 * whole circle), in ring order; returns fn's stop value or the store's error. */
int serve_iterate_arc(qdb_node *n, const qdb_id *a, const qdb_id *b, qdb_storage_iter_fn fn,
                      void *arg);
/* Write a record for key: a new one (old NULL: none stored) or the next
 * version of old -- content expiring at expiry_s (0: never), or a tombstone
 * (content ignored).  What a client's write stores is then copied to the
 * replicas by serve_request (replica_write). */
int serve_store_record(qdb_node *n, const uint8_t *key, size_t kl,
                       const struct qdb_record_meta *old, const uint8_t *content, size_t len,
                       bool tombstone, int64_t expiry_s);

/* serve_ext.c: the requests beyond the tutorial's, and expiry collection */
/* QDB_OK, or the code refusing a request's arguments (checked on every node
 * whatever the client checked: empty or long alias, content over
 * cfg.max_content, bad expiry, bad max). */
int serve_ext_check(const qdb_node *n, const qdb_msg *m);
/* GET_REMOVE, REMOVE_IF, GET_META, EXPIRE on an owned entry (old NULL: it
 * does not exist or expired); as execute() in serve.c. */
int serve_ext_execute(qdb_node *n, const qdb_msg *m, const uint8_t *key, size_t kl,
                      const struct qdb_record_meta *old, const uint8_t *cur, uint8_t **hold,
                      const uint8_t **payload, size_t *plen);
/* PREFIX over the arc this node owns; the payload points into *hold. */
int serve_prefix(qdb_node *n, const qdb_msg *m, uint8_t **hold, const uint8_t **payload,
                 size_t *plen);
/* Delete expired records, visiting at most QDB_GC_BATCH (defaults.h) of them from where
 * the last call stopped (one call per stabilization round). */
void serve_collect_expired(qdb_node *n);

/* forget.c: nodes gone for good */
/* An operator's or a node's FORGET. */
void forget_on_forget(qdb_node *n, qdb_addr src, const qdb_msg *m);
/* The orphaned arc was just set: start its grace, drop it if forgotten. */
void forget_orphaned(qdb_node *n);
/* Each round: release an orphaned arc older than cfg.dead_node_grace. */
void forget_round(qdb_node *n);

/* Is id in the arc inherited from a failed predecessor? */
bool ring_orphaned(const qdb_node *n, const qdb_id *id);

#endif

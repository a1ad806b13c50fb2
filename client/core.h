/* SPDX-License-Identifier: BSD-2-Clause */
/* The client core: routing, location cache, sessions, retries and timeouts
 * of a qdb client, with no I/O of its own (sans-I/O, like node/).
 *
 * It is driven by three entry points -- a frame arrived, an address is
 * unreachable, the timer fired -- plus the calls that start operations, and
 * acts only through the seams given at creation (env.h): clock (now, arm),
 * transport (send), random (the client id when none is configured).  qdbsim
 * drives thousands of cores from its event queue; libqdb wraps one in a
 * blocking API over sockets.  Nothing here reads the wall clock, real
 * randomness, the environment or pointer values: the same calls in the same
 * order give the same frames and results.
 *
 * What an operation does (node.h's top comment is the protocol):
 *  1. Locate the owner of the ID (SHA-3-256 of the alias).  With the cache
 *     on, a cached node whose known range covers the ID is used directly;
 *     otherwise an iterative lookup sends FIND(id) to the closest preceding
 *     node the cache knows (or the bootstrap) and follows done=0 hops until a
 *     done=1 answer names the owner.  Every hop is learned into the cache.
 *  2. Open a session: HELLO(client id) before the first request to a node,
 *     then the request with seq = a core-wide 32-bit counter (from 1; 0 is
 *     HELLO's).  An operation keeps its seq for every retransmission (a
 *     REMOVE_ALL takes one seq per node it visits).
 *  3. Act on the REPLY.  WRONG_NODE: look up again from the hint; UNSTABLE:
 *     back off (config.backoff, doubling) and ask again; both count an
 *     attempt, and at config.max_attempts the operation ends with that code.
 *     NO_SESSION to the first transmission: HELLO again and resend; to a
 *     later one: a mutation ends with QDB_E_OUTCOME_UNKNOWN (it may have run
 *     before the node restarted), a GET resends (more than max_attempts
 *     NO_SESSION in one operation: QDB_E_NO_SESSION).  Any other status
 *     ends the operation with it.
 *  4. Failures.  Each wait for an answer lasts the peer's RTO, adapted to
 *     its measured round trip (node/rto.h: RFC 6298, starting at
 *     rpc_timeout, within [200 ms, 60 s], doubled after a timeout).  A
 *     FIND, HELLO, a GET or a pure lookup's owner check (PING) that times
 *     out or finds the node unreachable: the lookup routes around the
 *     node -- it goes back to the newest live hop of its path and asks it
 *     again with an exclusion list naming every node this operation found
 *     silent or dead (Chord ToN 2003, Sec. IV-E; never the asked node
 *     itself), so that hop answers with its next best finger, or the next
 *     live successor when the owner died.  With no hop to go back to, the
 *     lookup starts again from the bootstrap (or, when the bootstrap failed,
 *     the closest cached node; none: the bootstrap again, its RTO doubled,
 *     or QDB_E_CONNECTION_REFUSED when it refused).
 *     A timeout is not a death: a node that answers late is slow.  Refusals
 *     (unreachable) and useless answers count: more than max_hops detours
 *     or lookup_retries restarts end the operation with QDB_E_UNSTABLE (the
 *     ring cannot be explored).  Silences do not count; each only costs the
 *     node's RTO, and the operation goes on until its timeout.  A late
 *     answer still counts as the answer: a FIND's (the CL_LATE newest timed-
 *     out FINDs and PINGs are remembered) when the operation still looks for
 *     the same ID -- the lookup follows it --; a PING's (the owner is
 *     alive: the lookup's answer); a HELLO's (the session is open); a GET's
 *     from the owner it routed around (its result).  When the detour around
 *     a GET's silent owner answers WRONG_NODE, the GET goes back to that
 *     owner (a silent attempt is not a WRONG_NODE attempt).
 *     A pure lookup reports an owner only once it answered a PING (unless it
 *     was the node that answered the last FIND).  A mutation that times out
 *     is retransmitted (same frame, same seq) to the same node, never to
 *     another, whose dedup table answers with the first reply if it ran.
 *     Unreachable after a mutation frame went out -> QDB_E_OUTCOME_UNKNOWN.
 *     Whatever happens, an operation ends at start + config.timeout with
 *     QDB_E_TIMEOUT (for a mutation already sent: outcome unknown too).
 *  REMOVE_ALL walks the ring: the owner of ID 0, then the owner of (that
 *  owner's ID + 1), ... until the walk is back at its first node; each step
 *  is located by a FIND (never from a cached range alone, since a node runs
 *  REMOVE_ALL on whatever it owns and a stale range would skip a newcomer)
 *  and sent under its own seq; done OK when every node answered OK.
 *  The core never sends a mutation under a new seq once an earlier
 *  transmission may have run: no replays.
 *
 * A WRONG_NODE or UNSTABLE answer to a retransmitted mutation is trusted to
 * mean "did not run": this relies on the node consulting its dedup table
 * before its range.
 *
 * Threading: single-threaded; every call on one core from one thread.
 */
#ifndef QDB_CLIENT_CORE_H
#define QDB_CLIENT_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "error.h"
#include "id.h"
#include "types.h"

typedef struct qdb_client_core qdb_client_core;

typedef struct qdb_client_config {
    uint64_t client_id;        /* 0: drawn from the random seam (never 0) */
    qdb_addr bootstrap;        /* the one node the client knows */
    qdb_time_us timeout;       /* a whole operation; default 60 s */
    qdb_time_us rpc_timeout;   /* wait for one answer; default 2 s */
    unsigned max_attempts;     /* WRONG_NODE / UNSTABLE attempts; default 3 */
    unsigned max_hops;         /* done=0 answers in one lookup, and also hops
                                * routed around in one operation (refused or
                                * no help; silent ones do not count); default 64 */
    int use_cache;             /* location cache on submitted ops; default 1 */
    /* beyond the minimum */
    unsigned lookup_retries;   /* lookup restarts when no live hop is left to go
                                * back to, after a refusal or a useless answer
                                * (a timeout does not count: see 4.); default 3 */
    qdb_time_us backoff;       /* first back-off after UNSTABLE, doubling per
                                * operation; default 100 ms */
    unsigned cache_capacity;   /* cached nodes; default 256 */
    unsigned session_capacity; /* remembered sessions; default 64 */
} qdb_client_config;

/* Overwrite *cfg with every default (client_id 0, bootstrap null, use_cache
 * 1).  Set fields afterwards.  qdb_client_core_new() also reads a zero in
 * any numeric field (not use_cache) as "the default". */
void qdb_client_config_defaults(qdb_client_config *cfg);

/* The outcome of one operation, passed to its done callback. */
typedef struct qdb_client_result {
    uint64_t op_id;            /* as returned by submit / lookup */
    int op;                    /* QDB_MSG_PUT ... QDB_MSG_REMOVE_ALL; 0 for a pure lookup */
    int status;                /* a qdb_error_t */
    const uint8_t *content;    /* GET, GET_UPDATE (old content), CAS when
                                * UNMATCHED_CONTENT (current content); NULL
                                * otherwise.  Valid only during the callback. */
    size_t content_len;
    qdb_id id;                 /* the ID looked up (SHA-3 of the alias; 0 for REMOVE_ALL) */
    qdb_peer owner;            /* who answered (lookup: the owner found; REMOVE_ALL:
                                * the last node visited); null when none did */
    unsigned hops;             /* FIND messages answered done=0 */
    unsigned lookups;          /* iterative lookups started (0 on a cache hit) */
    unsigned wrong_node;       /* WRONG_NODE answers met */
    unsigned unstable;         /* UNSTABLE answers met */
    unsigned attempts;         /* requests sent to a located owner (not counting
                                * retransmissions of the same attempt) */
    unsigned dead_contacts;    /* nodes met that timed out or refused (the Chord
                                * paper's "timeouts" per lookup) */
    qdb_time_us latency;       /* completion time - submit time, on the core's clock */
} qdb_client_result;

/* Called exactly once per accepted operation, never from inside submit() or
 * lookup().  It may call submit() / lookup() (e.g. a closed-loop client), but
 * must not free the core. */
typedef void (*qdb_client_done_fn)(void *arg, const qdb_client_result *r);

/* NULL and a message in err (QDB_ERRMSG_SIZE bytes) when a seam is missing,
 * of an unknown version, or lacks a method.  Borrows the seams: they must
 * outlive the core.  A configured client id of 0 draws one from random. */
qdb_client_core *qdb_client_core_new(const qdb_client_config *cfg, qdb_clock *clock,
                                     qdb_transport *transport, qdb_random *random, char *err);
/* Pending operations are dropped without callbacks. */
void qdb_client_core_free(qdb_client_core *c);

/* Start an entry operation.  op is QDB_MSG_PUT, GET, UPDATE, REMOVE, CAS,
 * GET_UPDATE or REMOVE_ALL.  content: PUT, UPDATE, GET_UPDATE (the new
 * content), CAS (the new content); comparand: CAS only; alias: all but
 * REMOVE_ALL (ignored there).  The bytes are copied: the caller may free them
 * on return.  Returns QDB_OK and *op_id (when op_id is non-NULL), after which
 * done fires exactly once, later.  Or an immediate error without calling
 * done: QDB_E_INVALID_ARGUMENT (unknown op, NULL pointer with a non-zero
 * length), QDB_E_ALIAS_EMPTY, QDB_E_ALIAS_TOO_LONG (longer than QDB_MAX_ALIAS),
 * QDB_E_OVERSIZED (frame over QDB_FRAME_MAX).  done may be NULL. */
int qdb_client_core_submit(qdb_client_core *c, int op, const uint8_t *alias, size_t alias_len,
                           const uint8_t *content, size_t content_len,
                           const uint8_t *comparand, size_t comparand_len,
                           qdb_client_done_fn done, void *arg, uint64_t *op_id);

/* One entry operation, for qdb_client_core_submit_request().  Fields an op
 * does not use must be zero. */
typedef struct qdb_client_request {
    int op;                    /* QDB_MSG_PUT ... REMOVE_ALL, GET_REMOVE, REMOVE_IF,
                                * GET_META, EXPIRE, PREFIX (never PUT_EX/UPDATE_EX:
                                * PUT and UPDATE with an expiry become those) */
    const uint8_t *alias;      /* PREFIX: the prefix, may be empty */
    size_t alias_len;
    const uint8_t *content;    /* PUT, UPDATE, GET_UPDATE, CAS (the new content) */
    size_t content_len;
    const uint8_t *comparand;  /* CAS, REMOVE_IF */
    size_t comparand_len;
    int64_t expiry;            /* PUT, UPDATE: 0 none; EXPIRE: 0 never; else absolute
                                * UTC seconds in [1, QDB_EXPIRY_MAX] */
    uint64_t max;              /* PREFIX: most aliases wanted, <= QDB_PREFIX_MAX */
    unsigned flags;            /* PREFIX: QDB_PREFIX_COUNT for the number only */
} qdb_client_request;

/* What submit_request() refuses before sending anything: QDB_OK, or
 * QDB_E_INVALID_ARGUMENT (unknown op, NULL bytes with a length, an expiry
 * out of range or on an op without one, max over QDB_PREFIX_MAX, unknown
 * flags), QDB_E_ALIAS_EMPTY (alias empty -- but a prefix), QDB_E_ALIAS_TOO_LONG
 * (longer than QDB_MAX_ALIAS). */
int qdb_client_core_check_request(const qdb_client_request *r);

/* submit() for every op.  Results: GET_REMOVE gives the removed content,
 * REMOVE_IF the current content when UNMATCHED_CONTENT, GET_META
 * QDB_META_WIRE bytes (qdb_meta_decode).  PREFIX walks the ring like
 * REMOVE_ALL, each node answering for the arc it owns, and gives a PREFIX
 * reply payload (codec.h): the aliases of every node merged, sorted
 * bytewise, without duplicates (or, count only, the sum), or QDB_E_TOO_MANY
 * when more than max match. */
int qdb_client_core_submit_request(qdb_client_core *c, const qdb_client_request *r,
                                   qdb_client_done_fn done, void *arg, uint64_t *op_id);

/* Find the owner of target: result.op 0, status QDB_OK with result.owner and
 * result.hops, or the lookup's failure code.  use_cache 0 starts from the
 * bootstrap and ignores the cache (what the simulator does to measure path
 * lengths); 1 answers from the cache when it covers target (hops 0, still
 * reported later, never from inside this call).  Returns QDB_OK or
 * QDB_E_INVALID_ARGUMENT (target NULL). */
int qdb_client_core_lookup(qdb_client_core *c, const qdb_id *target, int use_cache,
                           qdb_client_done_fn done, void *arg, uint64_t *op_id);

/* The same, without the cache, starting at `start` instead of the bootstrap
 * (the simulator starts each lookup at a random live node, as the Chord
 * paper does).  QDB_E_INVALID_ARGUMENT for a NULL target or a null start. */
int qdb_client_core_lookup_at(qdb_client_core *c, const qdb_id *target, qdb_addr start,
                              qdb_client_done_fn done, void *arg, uint64_t *op_id);

/* Entry points for the backends. */
/* A frame from src.  Frames that do not decode are counted (bad_frames) and
 * ignored; replies that match no pending operation (late, duplicated, from
 * the wrong address) are counted (stray_frames) and ignored.  The frame
 * buffer need only live for the call. */
void qdb_client_core_recv(qdb_client_core *c, qdb_addr src, const uint8_t *frame, size_t len);
/* The transport learned that dst cannot be reached (refused, reset). */
void qdb_client_core_unreachable(qdb_client_core *c, qdb_addr dst);
/* The armed deadline passed (calling it early is harmless).  The core keeps
 * exactly one deadline armed -- the earliest of all its operations -- and
 * re-arms after every entry point; with nothing pending it arms nothing. */
void qdb_client_core_tick(qdb_client_core *c);
/* The three entry points above, for a host's bind call (core = the
 * qdb_client_core). */
extern const qdb_inbound qdb_client_core_inbound;

/* Operations accepted and not yet completed. */
unsigned qdb_client_core_pending(const qdb_client_core *c);
uint64_t qdb_client_core_client_id(const qdb_client_core *c);

typedef struct qdb_client_stats {
    uint64_t ops;          /* operations accepted (submit + lookup) */
    uint64_t ok;           /* completed with QDB_OK */
    uint64_t failed;       /* completed with any other code (ALIAS_NOT_FOUND too) */
    uint64_t wrong_node;   /* WRONG_NODE answers met */
    uint64_t unstable;     /* UNSTABLE answers met */
    uint64_t timeouts;     /* operations ended by QDB_E_TIMEOUT */
    uint64_t hops;         /* FIND answers with done=0 */
    uint64_t lookups;      /* iterative lookups started */
    uint64_t cache_hits;   /* owners taken from the cache without a lookup */
    uint64_t frames_out, frames_in;
    uint64_t bad_frames;   /* frames that did not decode */
    uint64_t stray_frames; /* decoded, matched nothing pending */
    uint64_t retransmits;  /* mutation frames sent again with the same seq */
    uint64_t hellos;       /* HELLO frames sent */
    uint64_t dead_contacts; /* nodes that timed out or refused during lookups or requests */
} qdb_client_stats;

const qdb_client_stats *qdb_client_core_stats(const qdb_client_core *c);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* Every default of qdb, in one table.
 *
 * One convention: durations are microseconds (qdb_time_us), named *_US and
 * written with QDB_US_PER_S / QDB_US_PER_MS from types.h (which includes this
 * file); counts are plain numbers.  The programs convert at their edges only
 * (qdbsh's --timeout and libqdb's qdb_o_operation_timeout are milliseconds).
 *
 * The documents state the same values: doc/qdbd.8 (STABILIZATION, SIGNALS,
 * DURABILITY), doc/qdbsh.1 (--timeout), doc/scenarios.md (the parameter
 * table) and doc/qdbsim.1.  Change them together.
 */
#ifndef QDB_DEFAULTS_H
#define QDB_DEFAULTS_H

/* ---- where to find a node ---------------------------------------------- */
#define QDB_DEFAULT_PORT 2836
#define QDB_DEFAULT_ADDRESS "127.0.0.1:2836" /* qdbd --address, qdbsh --daemon */

/* ---- the node (qdb_node_config_defaults(); qdbsim's parameters too) -------
 * Tuned for the simulator's wide-area latencies: a round every second while
 * the neighbourhood changes, backing off to 30 s once it is quiet (the
 * original Chord implementation went to 2 min). */
#define QDB_DEFAULT_SUCCLIST 8 /* successor-list length r */
#define QDB_DEFAULT_STABILIZE_FAST_US (1 * QDB_US_PER_S)
#define QDB_DEFAULT_STABILIZE_SLOW_US (30 * QDB_US_PER_S)
/* A hint (ring.c send_hint) not followed by its receiver's STABILIZE is
 * sent again at each of our next rounds, this many times at most. */
#define QDB_HINT_RESENDS 4
#define QDB_DEFAULT_RPC_TIMEOUT_US (2 * QDB_US_PER_S) /* the first wait for a peer */
/* Between rounds each node watches its two neighbours (node/watch.c): one
 * PING a period to a neighbour it has not heard from, so a crash is seen in
 * about a second, not at the next (slow) round. */
#define QDB_DEFAULT_WATCH_US (1 * QDB_US_PER_S)
/* A peer is struck out after three timeouts in a row only once it has also
 * not answered any call of ours (our predecessor: sent us no frame) for this
 * long (node/watch.c, "Suspicion"): 5/4 of rpc_timeout, 2.5 s for the
 * simulator's nodes and 1.25 s for qdbd's.  No later than before for a dead
 * host: the three timeouts take longer already. */
#define QDB_SUSPECT_WINDOW(rpc_timeout) ((rpc_timeout) * 5 / 4)
/* With replicas an owner serves its range only for this long after a call
 * its successor answered naming it as predecessor (node/watch.c, "Lease"):
 * shorter than the window, which the successor waits from that call on
 * before it may strike the owner out and take its range over. */
#define QDB_OWNER_LEASE(rpc_timeout) (QDB_SUSPECT_WINDOW(rpc_timeout) * 7 / 8)
/* Afterwards each peer's wait adapts to its round trip (rto.h, RFC 6298),
 * within these bounds (nodes and client cores). */
#define QDB_DEFAULT_RTO_FLOOR_US (200 * QDB_US_PER_MS)
#define QDB_DEFAULT_RTO_CEILING_US (60 * QDB_US_PER_S)
#define QDB_DEFAULT_HANDOVER_BATCH 256   /* records per HANDOVER frame */
#define QDB_DEFAULT_DEDUP_CAPACITY 4096  /* replies kept for retried requests */
/* Resource limits (qdbd --max-content-size, --amo-bytes): the largest
 * content a request may carry, and the reply payloads the at-most-once table
 * keeps in all (one larger than a quarter of it is never kept). */
#define QDB_DEFAULT_MAX_CONTENT ((size_t)64 << 20)
#define QDB_DEFAULT_DEDUP_BYTES ((size_t)32 << 20)
#define QDB_GC_BATCH 64 /* records the expiry collector visits per round */
/* How long a removed entry's tombstone is kept (qdbd --tombstone-grace, in
 * seconds, at most QDB_TOMBSTONE_GRACE_MAX_S: ten years). */
#define QDB_DEFAULT_TOMBSTONE_GRACE_S 86400
#define QDB_DEFAULT_TOMBSTONE_GRACE_US (QDB_DEFAULT_TOMBSTONE_GRACE_S * QDB_US_PER_S)
#define QDB_TOMBSTONE_GRACE_MAX_S 315360000
/* Records a second an owner sends to bring a replica up to date (qdbd
 * --repair-rate): 256-record batches every 25.6 ms at the default. */
#define QDB_DEFAULT_REPAIR_RATE 10000
/* Owners compare their range with each replica by digest this often even
 * without a membership change (anti-entropy): a digest frame of at most 8 KB
 * per replica, and a scan of the range on both ends. */
#define QDB_ANTI_ENTROPY_US (60 * QDB_US_PER_S)
/* Hive-wide: copies of each entry, the owner's included (qdbd --replication). */
#define QDB_DEFAULT_REPLICATION 1
#define QDB_REPLICATION_MAX 4

/* ---- the client core (qdb_client_config_defaults(); libqdb, qdbsh, qdbsim) */
#define QDB_DEFAULT_CLIENT_TIMEOUT_US (60 * QDB_US_PER_S) /* a whole operation */
#define QDB_DEFAULT_CLIENT_RPC_TIMEOUT_US QDB_DEFAULT_RPC_TIMEOUT_US
#define QDB_DEFAULT_CLIENT_MAX_ATTEMPTS 3   /* WRONG_NODE / UNSTABLE */
#define QDB_DEFAULT_CLIENT_MAX_HOPS 64      /* in one lookup */
#define QDB_DEFAULT_CLIENT_LOOKUP_RETRIES 3 /* restarts with no live hop left */
#define QDB_DEFAULT_CLIENT_BACKOFF_US (100 * QDB_US_PER_MS)
#define QDB_DEFAULT_CLIENT_CACHE_CAPACITY 256
#define QDB_DEFAULT_CLIENT_SESSION_CAPACITY 64

/* ---- the Berkeley DB store (qdb_bdb_options_defaults(), storage/bdb.h) ---- */
#define QDB_DEFAULT_BDB_COMPRESS_THRESHOLD 512 /* bytes: smaller values stay raw */
#define QDB_DEFAULT_BDB_COMPRESS_LEVEL 3       /* zstd's level */
#define QDB_DEFAULT_BDB_CACHE_BYTES ((size_t)16 << 20)
/* qdbd --disk-reserve (storage/bdb.h, "Disk full"): room kept for removes,
 * which Berkeley DB logs with the value they drop, and for checkpoints.  The
 * store's own default is none (tests and the simulator open many). */
#define QDBD_DEFAULT_DISK_RESERVE ((uint64_t)64 << 20)
/* The depot warning level, in percent of --max-depot-size. */
#define QDB_DEFAULT_BDB_DEPOT_WARN_PERCENT 90

/* ---- qdbd -----------------------------------------------------------------
 * Its ring timers differ from the node's: on a LAN an answer takes well under
 * a millisecond, and a 3-node loopback hive settles within about 2 s. */
#define QDBD_DEFAULT_ROOT "./db"
#define QDBD_DEFAULT_LOG_LEVEL "info" /* error, warning, info or debug */
#define QDBD_DEFAULT_STABILIZE_FAST_US (250 * QDB_US_PER_MS)
#define QDBD_DEFAULT_STABILIZE_SLOW_US QDB_DEFAULT_STABILIZE_SLOW_US
#define QDBD_DEFAULT_RPC_TIMEOUT_US (1 * QDB_US_PER_S)
#define QDBD_DEFAULT_CHECKPOINT_PERIOD_US (30 * QDB_US_PER_S)
#define QDBD_DEFAULT_LEAVE_TIMEOUT_US (10 * QDB_US_PER_S) /* hand-over on SIGTERM */
#define QDBD_DEFAULT_DRAIN_TIMEOUT_US (1 * QDB_US_PER_S)  /* last frames after it */
#define QDBD_DEFAULT_STATUS_PERIOD_US (500 * QDB_US_PER_MS)
/* Resource limits (qdbd(8), LIMITS).  Sessions are also capped by the
 * descriptor limit less QDBD_FD_RESERVE kept for Berkeley DB's files, the
 * node's own connections to its peers, the HTTP status server and the log. */
#define QDBD_DEFAULT_SESSIONS 4096
#define QDBD_FD_RESERVE 256
#define QDBD_PEER_RESERVE 64 /* accepted over --sessions from the node's neighbours */
#define QDBD_DEFAULT_IDLE_TIMEOUT_S 300
#define QDBD_DEFAULT_HANDSHAKE_TIMEOUT_S 10 /* keyed nodes: a TLS handshake, from accept */
#define QDBD_DEFAULT_INPUT_MEMORY ((size_t)256 << 20) /* unfinished frames, in all */
#define QDBD_DEFAULT_LOG_RATE 20 /* lines a second of one kind, then a count */
/* The largest frame a node takes for a given maximum content: CAS carries a
 * comparand as large as its content, plus room for the other fields. */
#define QDB_FRAME_FOR_CONTENT(c) (2 * (size_t)(c) + ((size_t)64 << 10))

/* ---- what operators see (node/status.h, transport-real/http.h, libqdb) -----
 * Bounds rather than settings: none is an option. */
#define QDB_DEFAULT_STATUS_SCAN_MAX 100000 /* records summed for "bytes" */
#define QDB_DEFAULT_HIVE_WALK_MAX 4096     /* nodes hive_status visits */
#define QDBD_DEFAULT_HTTP_CONNECTIONS 64   /* --http: connections at once */
#define QDBD_DEFAULT_HTTP_PER_CLIENT 8     /* ... from one address */
#define QDBD_DEFAULT_HTTP_IDLE_US (10 * QDB_US_PER_S)
#define QDBD_DEFAULT_HTTP_MEMORY ((size_t)32 << 10) /* per connection, headers included */
#define QDBD_DEFAULT_HTTP_FRESH_US (500 * QDB_US_PER_MS) /* a snapshot this old is served */
#define QDBD_DEFAULT_HTTP_WAIT_US (2 * QDB_US_PER_S)     /* for a fresh one, at most */

#endif

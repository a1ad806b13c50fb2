/* SPDX-License-Identifier: BSD-2-Clause */
/* The environment: the only way node/ and the client core touch the world.
 *
 * Four separate seams -- clock, transport, random, storage -- so that a test or
 * the simulator can replace one and keep the others (the simulator can run the
 * real Berkeley DB store under its virtual network).  Each seam is a small
 * versioned struct: a version, the owner's `data`, the backend's `impl`, an
 * error-message buffer, then methods.  Methods are only ever appended, under a
 * comment naming the version they arrived in; a core refuses a seam whose
 * version it does not know.
 *
 * Every call is made from the one thread that drives the node.  Nothing a
 * backend does may reach the node except through the entry points declared in
 * node.h (qdb_node_recv, qdb_node_unreachable, qdb_node_tick), which the
 * qdb_inbound table below gathers for the hosts.
 */
#ifndef QDB_ENV_H
#define QDB_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h" /* qdb_error_t, QDB_ERRMSG_SIZE */
#include "types.h"

#define QDB_SEAM_VERSION 1

/* ---- inbound: what a host calls on the core it carries ------------------------
 * Every host (the epoll loop in transport-real/, the simulated network in
 * transport-sim/) delivers events to the core bound to an endpoint through
 * this one table: a frame arrived, an earlier send found nobody, the armed
 * deadline passed.  The node and the client core each export theirs
 * (qdb_node_inbound, qdb_client_core_inbound), so no host writes pass-through
 * glue; a host with nothing bound drops the event.  `core` is the pointer the
 * host was given with the table; `frame` is valid only during the call. */
typedef struct qdb_inbound {
    void (*recv)(void *core, qdb_addr src, const uint8_t *frame, size_t len);
    void (*unreachable)(void *core, qdb_addr dst); /* may be NULL */
    void (*tick)(void *core);                      /* may be NULL */
    /* Added for admission (may be NULL): a connection a peer opened to us,
     * whose frames arrived as src, closed -- src may now be reused by
     * someone else, so nothing bound to it (a client's session) may outlive
     * it.  Called synchronously from the host's close; the core sends
     * nothing from it.  A host whose addresses are never reused (the
     * simulator's) need not call it. */
    void (*gone)(void *core, qdb_addr src);
    /* Added for the simulator's speed (may be NULL): an event for core is
     * about to be delivered.  A hint: the core may ask the processor for the
     * memory the event will read (what its own fields point at), and must
     * change nothing -- it reads only pointers and lengths.  Called twice:
     * pass 0 an event ahead (the core's own lines were asked for earlier:
     * only the pointers in them may be read), pass 1 just before delivery
     * (what pass 0 asked for may be read too). */
    void (*prefetch)(const void *core, int pass);
    /* Added for pipelined requests (may be NULL): frames from src that
     * arrived together and go to recv() next, in order, each given here
     * first, then a call with frame NULL ending the batch.  A hint, like
     * prefetch: the core may work out what their delivery will need (the
     * IDs of their aliases) and ask for the memory it will read, so the
     * cache misses of a 16-deep batch overlap instead of stalling one after
     * the other; what recv() then does must not depend on it, and nothing
     * is sent.  The real loop calls it for two complete frames or more. */
    void (*ahead)(void *core, qdb_addr src, const uint8_t *frame, size_t len);
    /* Added for the owners' leases (may be NULL: the host calls unreachable
     * instead): a connection to dst that worked broke -- reset, or closed
     * by dst.  Unlike a refused connection this says nothing of dst's
     * process, which may well live (it closed an idle connection, a
     * middlebox reset it): only that frames sent on it may be lost.  A
     * core that keeps a lease on dst's silence (node/watch.c) must not
     * take it for a death. */
    void (*reset)(void *core, qdb_addr dst);
    /* Added for the simulator's speed (may be NULL): with prefetch's pass
     * 0, when the event ahead is the core's wake-up (tick).  A wake-up runs
     * the core's timers and rounds, which read more of it than a frame
     * does; a hint like prefetch, reading only the pointers in the core's
     * own lines. */
    void (*prefetch_tick)(const void *core);
} qdb_inbound;

/* ---- clock and timer ----------------------------------------------------
 * One wake-up per owner: arm() replaces any earlier deadline.  The owner
 * computes its earliest deadline itself (stabilization rounds, request
 * timeouts), so a backend holds at most one timer per node: this keeps the
 * simulator's queue small with a million nodes.  When the deadline passes the
 * backend calls the owner's tick entry point once; it may call it late, never
 * early. */
typedef struct qdb_clock {
    int version;
    void *data;
    void *impl;
    char errmsg[QDB_ERRMSG_SIZE];
    /* version 1 */
    qdb_time_us (*now)(struct qdb_clock *c);
    void (*arm)(struct qdb_clock *c, qdb_time_us deadline);
    /* Microseconds since the Unix epoch, for the creation and modification
     * times stored with entries; nothing is ordered or timed by it.  The
     * simulator derives it from virtual time. */
    int64_t (*wall)(struct qdb_clock *c);
} qdb_clock;

/* ---- transport ------------------------------------------------------------
 * send() takes a complete encoded frame and copies it: the caller may free or
 * reuse its buffer when send() returns.  0 means queued; a non-zero qdb_error_t
 * means it failed at once (e.g. unusable address).  Delivery is not promised:
 * frames may be lost, duplicated or reordered (in the simulator by design,
 * over TCP when a connection breaks).  When the backend learns that `dst` is
 * unreachable (connection refused or reset) it reports it later through the
 * owner's unreachable entry point, never from inside send(). */
typedef struct qdb_transport {
    int version;
    void *data;
    void *impl;
    char errmsg[QDB_ERRMSG_SIZE];
    /* version 1 */
    int (*send)(struct qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len);
    /* version 1, optional (NULL: the host authenticates nobody), since the
     * hive key: what the sender of the frame being delivered by recv() from
     * src has proven to be (qdb_peer_role); called from inside recv() only.
     * The real loop answers from the TLS identity of the connection the
     * frame came on (transport-real/tls.h); the simulator leaves it NULL. */
    int (*peer_role)(struct qdb_transport *t, qdb_addr src);
} qdb_transport;

/* What a peer has proven about itself (qdb_transport.peer_role).  Without a
 * hive key nothing is proven: every peer is QDB_PEER_UNVERIFIED. */
typedef enum qdb_peer_role {
    QDB_PEER_UNVERIFIED = 0,
    QDB_PEER_NODE = 1,   /* holds the hive key and presented itself as a node */
    QDB_PEER_CLIENT = 2, /* holds the hive key and presented itself as a client */
} qdb_peer_role;

/* ---- random ----------------------------------------------------------------
 * A seeded generator owned by the node (the simulator derives it from the
 * scenario seed; qdbd seeds it once from the OS at start). */
typedef struct qdb_random {
    int version;
    void *data;
    void *impl;
    char errmsg[QDB_ERRMSG_SIZE];
    /* version 1 */
    uint64_t (*next)(struct qdb_random *r);
} qdb_random;

/* ---- storage ---------------------------------------------------------------
 * An ordered map from keys to values, both byte strings, ordered by memcmp of
 * the keys (shorter first on a common prefix).  The node builds keys as
 * ID (32 bytes) + alias, so the order is ring order and a key range is an
 * arc of the ring: that is what hand-over iterates.  A value is one record,
 * metadata header and content together, so put() is atomic for both.
 *
 * get(): QDB_OK and *value, *value_len set to a buffer the caller frees with
 *        g_free(); QDB_E_ALIAS_NOT_FOUND when absent; QDB_E_STORAGE on failure
 *        (message in errmsg).
 * put(): replaces any earlier value.  Returns once the write is as durable as
 *        the backend promises (see the backend's header).
 * del(): QDB_E_ALIAS_NOT_FOUND when absent.
 * iterate(): calls fn for each key k with from <= k < to (to == NULL: no upper
 *        bound) in key order; fn returns non-zero to stop.  The callback must
 *        not modify the store.
 * count(): the number of records.
 *
 * usage(), appended for issue 9 and optional (NULL: a store that has no size
 *        limit and cannot fail for good, like the memory store): fills a
 *        qdb_storage_usage.  It must be cheap (no I/O: the node calls it on
 *        every tick and after every failed call), and in the simulator it must
 *        depend only on the calls made so far.
 *        A store that refuses a write for room answers put() with
 *        QDB_E_DISK_FULL or QDB_E_DEPOT_FULL (nothing written), and must still
 *        accept puts that do not grow it -- a tombstone over a live record
 *        above all, so that removes can free space -- and del().
 *
 * peek() and put_parts(), appended for issue 12 and optional (NULL: the node
 *        uses get() and put(), as through storage/fault.h): the same calls
 *        without a copy.  peek() sets *value to the stored bytes themselves,
 *        valid until the next call on the store; put_parts() stores
 *        head || body as one value, so a record's header and content need not
 *        be joined first (neither part may be bytes that peek() lent).  A memory store copies 1 KiB values three times
 *        per request without them (make bench).
 *
 * prefetch(), appended for issue 12 and optional (NULL: nothing to fetch):
 *        key will be looked up soon.  A hint that changes nothing: the
 *        backend may ask the processor for the memory the lookup reads.
 *        The node calls it three times per key of a pipelined batch, pass
 *        0 for every key, then pass 1 for every key, then pass 2, so a
 *        backend can fetch its index first and, once that has arrived, the
 *        entry it points at, then what the entry points at.
 *
 * The backends live in storage/, one header each: storage/memory.h (a GTree),
 * storage/bdb.h (Berkeley DB) and storage/fault.h (a wrapper that injects
 * failures into any of them, for tests). */
typedef int (*qdb_storage_iter_fn)(void *arg, const uint8_t *key, size_t key_len,
                                   const uint8_t *value, size_t value_len);

/* What usage() reports. */
typedef struct qdb_storage_usage {
    uint64_t depot_bytes;   /* the records' keys and stored values, in bytes */
    uint64_t max_bytes;     /* puts that grow the depot past it get DEPOT_FULL; 0: none */
    uint64_t warn_bytes;    /* the warning level (a share of max_bytes); 0: none */
    bool warning;           /* depot_bytes is at or above warn_bytes */
    bool disk_full;         /* the file system ran out of room: growing puts get
                             * DISK_FULL until room is back */
    /* The store is broken beyond repair (Berkeley DB asked for recovery,
     * DB_RUNRECOVERY): every call fails from now on, only a restart (which
     * runs recovery) can help.  A node that sees it leaves the ring. */
    bool failed;
} qdb_storage_usage;

typedef struct qdb_storage {
    int version;
    void *data;
    void *impl;
    char errmsg[QDB_ERRMSG_SIZE];
    /* version 1 */
    int (*get)(struct qdb_storage *s, const uint8_t *key, size_t key_len,
               uint8_t **value, size_t *value_len);
    int (*put)(struct qdb_storage *s, const uint8_t *key, size_t key_len,
               const uint8_t *value, size_t value_len);
    int (*del)(struct qdb_storage *s, const uint8_t *key, size_t key_len);
    int (*iterate)(struct qdb_storage *s, const uint8_t *from, size_t from_len,
                   const uint8_t *to, size_t to_len, qdb_storage_iter_fn fn, void *arg);
    uint64_t (*count)(struct qdb_storage *s);
    void (*destroy)(struct qdb_storage *s);
    /* version 1, appended for issue 9; may be NULL */
    void (*usage)(struct qdb_storage *s, qdb_storage_usage *out);
    /* version 1, appended for issue 12; may be NULL */
    int (*peek)(struct qdb_storage *s, const uint8_t *key, size_t key_len,
                const uint8_t **value, size_t *value_len);
    int (*put_parts)(struct qdb_storage *s, const uint8_t *key, size_t key_len,
                     const uint8_t *head, size_t head_len, const uint8_t *body,
                     size_t body_len);
    void (*prefetch)(struct qdb_storage *s, const uint8_t *key, size_t key_len, int pass);
} qdb_storage;

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* libqdb: the blocking C client API of qdb, in the style of quasardb's.
 *
 *     #include <qdb/qdb.h>        cc ... $(pkg-config --cflags --libs libqdb)
 *
 *     qdb_handle_t h;
 *     qdb_open(&h, qdb_p_tcp);
 *     qdb_connect(h, "qdb://127.0.0.1:2836");
 *     qdb_put(h, "entry", "thisismyentry", 13);
 *     ...
 *     qdb_close(h);
 *
 * A handle knows one node.  For every call it hashes the alias (SHA-3-256),
 * finds the owner through the ring, sends the request there and waits for
 * the answer: it retries "wrong node" three times, reports QDB_E_UNSTABLE when
 * the ring cannot be explored, and gives up with QDB_E_TIMEOUT after the
 * operation timeout (default 60 s).  A node that is only slow (answers
 * after its timeout) is waited for, up to the operation timeout; one that
 * refuses the connection is routed around at once.  It never replays a mutation that may
 * have run: when it cannot know, it returns QDB_E_OUTCOME_UNKNOWN.
 *
 * Threads: a handle is used by one thread at a time; separate handles are
 * independent.  Content is bytes, bit for bit; aliases are 1 to 1024 bytes
 * (QDB_E_ALIAS_EMPTY, QDB_E_ALIAS_TOO_LONG otherwise); a node refuses content
 * over its maximum (qdbd --max-content-size) with QDB_E_CONTENT_TOO_LARGE.
 */
#ifndef QDB_QDB_H
#define QDB_QDB_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qdb_session *qdb_handle_t;

/* Absolute UTC time in seconds since the epoch (expiry). */
typedef int64_t qdb_time_t;
/* The latest expiry accepted: 9999-12-31 23:59:59 UTC. */
#define QDB_MAX_EXPIRY_TIME ((qdb_time_t)253402300799)

/* What qdb_get_metadata() tells about an entry. */
typedef struct qdb_metadata_t {
    uint64_t size;                 /* content bytes */
    int64_t creation_time_us;      /* owner's wall clock, microseconds since the epoch */
    int64_t modification_time_us;  /* the same, at the last write */
    qdb_time_t expiry_time;        /* seconds since the epoch; 0: never expires */
    uint64_t version;              /* the last write's replication version: a
                                    * hybrid clock, microseconds; grows with
                                    * every modification */
} qdb_metadata_t;

typedef enum qdb_protocol_t { qdb_p_tcp = 0 } qdb_protocol_t;

typedef enum qdb_option_t {
    /* int: the operation timeout in milliseconds (default 60000) */
    qdb_o_operation_timeout = 0,
    /* const char *: a hive key file (qdbd --gen-key; not readable by
     * others), or NULL for none.  With a key every connection is TLS 1.3
     * authenticated by it (qdbd(8), SECURITY), as the hive's nodes require
     * when they run with --hive-key-file; a node that refuses the key (or
     * its absence) makes calls fail with QDB_E_AUTHENTICATION.  An unreadable,
     * malformed or world-readable file is QDB_E_INVALID_ARGUMENT (the reason
     * goes to the GLib log).  Since version-info 2. */
    qdb_o_hive_key_file = 1,
} qdb_option_t;

/* Create a handle (not yet connected).  QDB_E_INVALID_ARGUMENT for an unknown
 * protocol or a NULL pointer. */
qdb_error_t qdb_open(qdb_handle_t *handle, qdb_protocol_t proto);
/* Connect to one node: "qdb://HOST:PORT", "HOST:PORT" or "HOST" (port 2836).
 * HOST is an IPv4 address or a host name (resolved to IPv4).  IPv6 addresses
 * are QDB_E_INVALID_ARGUMENT: the transport speaks IPv4 only.  Asks the node
 * a lookup, so QDB_E_CONNECTION_REFUSED (also: unknown host), QDB_E_TIMEOUT
 * or QDB_E_INVALID_ARGUMENT come back here. */
qdb_error_t qdb_connect(qdb_handle_t handle, const char *uri);
/* Close the connections and free the handle and every buffer it returned. */
qdb_error_t qdb_close(qdb_handle_t handle);

/* Set an option; see qdb_option_t for the type of the value. */
qdb_error_t qdb_set_option(qdb_handle_t handle, qdb_option_t option, ...);

/* Create an entry.  QDB_E_ALIAS_ALREADY_EXISTS if it exists.  Every write
 * that grows the owner's store may get QDB_E_DISK_FULL (its disk is full) or
 * QDB_E_DEPOT_FULL (its --max-depot-size); removes still run there. */
qdb_error_t qdb_put(qdb_handle_t handle, const char *alias, const void *content,
                    size_t content_length);
/* Create or replace an entry. */
qdb_error_t qdb_update(qdb_handle_t handle, const char *alias, const void *content,
                       size_t content_length);
/* Read into the caller's buffer of *content_length bytes.  On return
 * *content_length is the entry's size; QDB_E_BUFFER_TOO_SMALL (and nothing
 * copied) when it does not fit -- call again with a buffer that size. */
qdb_error_t qdb_get(qdb_handle_t handle, const char *alias, void *content,
                    size_t *content_length);
/* Read into a buffer the library allocates; release it with
 * qdb_free_buffer() (or it goes with qdb_close()). */
qdb_error_t qdb_get_buffer(qdb_handle_t handle, const char *alias, const void **content,
                           size_t *content_length);
void qdb_free_buffer(qdb_handle_t handle, const void *buffer);
/* Replace an existing entry and return its previous content (a buffer for
 * qdb_free_buffer).  QDB_E_ALIAS_NOT_FOUND if it does not exist. */
qdb_error_t qdb_get_update(qdb_handle_t handle, const char *alias, const void *new_content,
                           size_t new_content_length, const void **old_content,
                           size_t *old_content_length);
/* Replace the content with new_content if it equals comparand: QDB_OK.
 * Otherwise QDB_E_UNMATCHED_CONTENT, and *original_content (a buffer for
 * qdb_free_buffer; may be NULL if not wanted) holds the current content. */
qdb_error_t qdb_compare_and_swap(qdb_handle_t handle, const char *alias,
                                 const void *new_content, size_t new_content_length,
                                 const void *comparand, size_t comparand_length,
                                 const void **original_content, size_t *original_length);
/* Delete an entry.  QDB_E_ALIAS_NOT_FOUND if it does not exist. */
qdb_error_t qdb_remove(qdb_handle_t handle, const char *alias);
/* Delete every entry of the hive, node by node around the ring.
 * QDB_E_DISABLED unless the hive enables it (qdbd --enable-purge-all). */
qdb_error_t qdb_remove_all(qdb_handle_t handle);

/* ---- administration ---------------------------------------------------------
 * These ask one node directly, by address: node is "HOST:PORT" as for
 * qdb_connect, or NULL for the node given to qdb_connect (QDB_E_NOT_CONNECTED
 * without one).  They wait at most the operation timeout.  JSON results are
 * NUL-terminated compact JSON in buffers for qdb_free_buffer(); their
 * members are described in qdbsh(1). */

/* Is the node there?  *rtt_us (may be NULL): the round trip, microseconds. */
qdb_error_t qdb_ping(qdb_handle_t handle, const char *node, unsigned *rtt_us);
/* node_status: ID, address, state, stable or settling, uptime, entries and
 * bytes held, predecessor, successors, fingers, counters, configuration. */
qdb_error_t qdb_node_status(qdb_handle_t handle, const char *node, const char **json);
/* node_config: the node's configuration and the hive-wide settings. */
qdb_error_t qdb_node_config(qdb_handle_t handle, const char *node, const char **json);
/* node_topology: predecessor, successors and fingers. */
qdb_error_t qdb_node_topology(qdb_handle_t handle, const char *node, const char **json);
/* Ask the node to leave the hive gracefully (hand its entries over, then
 * exit).  QDB_E_DISABLED unless the hive enables it (qdbd --enable-stop). */
qdb_error_t qdb_node_stop(qdb_handle_t handle, const char *node);
/* Declare the node with this ID (64 hex digits, as hive_status shows it)
 * gone for good: its entries stop answering QDB_E_UNAVAILABLE (K = 1) and
 * become QDB_E_ALIAS_NOT_FOUND.  node (NULL: the connected one) passes it on
 * to the ID's successor.  QDB_E_REFUSED when that node still routes to the
 * ID (it is alive, or its failure is not repaired yet: try again later);
 * QDB_E_INVALID_ARGUMENT for a malformed ID.  Idempotent.  Since version-info 2. */
qdb_error_t qdb_forget_node(qdb_handle_t handle, const char *node, const char *id);
/* Walk the ring from node along successors: every node with its arc as a
 * share of the ring and its entry count.  *json is set in every case where
 * the walk started; QDB_E_UNSTABLE when the walk found the ring broken (an
 * unreachable node, a missing successor, predecessors that disagree, IDs out
 * of order), with the problems listed in the JSON. */
qdb_error_t qdb_hive_status(qdb_handle_t handle, const char *node, const char **json);

/* ---- since version-info 1 (with administration): expiry, metadata, prefixes
 *
 * Expiry.  An entry may carry an expiry time: absolute UTC seconds since the
 * epoch, 0 for never, at most QDB_MAX_EXPIRY_TIME (otherwise, or negative:
 * QDB_E_INVALID_ARGUMENT, on the client and again on the node).  From the
 * second its owner's clock reaches that time the entry reads as not found
 * by every call, at once (qdb_put may then create it again); the node
 * reclaims its space in the background.  qdb_update and qdb_put set no
 * expiry (the entry never expires); qdb_get_update and qdb_compare_and_swap
 * keep the entry's expiry. */

/* qdb_put / qdb_update with an expiry (0: never). */
qdb_error_t qdb_put_with_expiry(qdb_handle_t handle, const char *alias, const void *content,
                                size_t content_length, qdb_time_t expiry_time);
qdb_error_t qdb_update_with_expiry(qdb_handle_t handle, const char *alias, const void *content,
                                   size_t content_length, qdb_time_t expiry_time);
/* Set (or, with 0, clear) an existing entry's expiry.  QDB_E_ALIAS_NOT_FOUND
 * if it does not exist.  A time already past makes it expire now. */
qdb_error_t qdb_expires_at(qdb_handle_t handle, const char *alias, qdb_time_t expiry_time);
/* qdb_expires_at(now + seconds), now by this machine's clock; seconds >= 0. */
qdb_error_t qdb_expires_from_now(qdb_handle_t handle, const char *alias, qdb_time_t seconds);
/* The entry's expiry (0: never). */
qdb_error_t qdb_get_expiry(qdb_handle_t handle, const char *alias, qdb_time_t *expiry_time);

/* Read and delete an entry in one step on its node: no other call sees it in
 * between.  *content is a buffer for qdb_free_buffer. */
qdb_error_t qdb_get_remove(qdb_handle_t handle, const char *alias, const void **content,
                           size_t *content_length);
/* Delete the entry only if its content equals comparand: QDB_OK, or
 * QDB_E_UNMATCHED_CONTENT (nothing deleted), QDB_E_ALIAS_NOT_FOUND. */
qdb_error_t qdb_remove_if(qdb_handle_t handle, const char *alias, const void *comparand,
                          size_t comparand_length);
/* Size, creation and modification times, expiry and version of an entry,
 * without its content. */
qdb_error_t qdb_get_metadata(qdb_handle_t handle, const char *alias, qdb_metadata_t *metadata);

/* The aliases starting with prefix (which may be empty: every alias),
 * sorted bytewise, from every node of the hive (the call visits each node
 * around the ring; each answers for what it owns).  *aliases is a
 * NULL-terminated array of *count strings in one buffer for
 * qdb_free_buffer.  QDB_E_TOO_MANY (nothing returned) when more than max
 * aliases match; max is at most 1,000,000 (else QDB_E_INVALID_ARGUMENT). */
qdb_error_t qdb_prefix_get(qdb_handle_t handle, const char *prefix, size_t max,
                           const char ***aliases, size_t *count);
/* How many aliases start with prefix, over the whole hive. */
qdb_error_t qdb_prefix_count(qdb_handle_t handle, const char *prefix, uint64_t *count);

/* ---- batches -----------------------------------------------------------------
 * Many operations in one call.  Every operation is sent before any answer is
 * awaited: those for the same node go out together on its connection and
 * are answered one after another (pipelined), nodes in parallel.  Each gets
 * its own result in its slot; one failing does not stop the others.  The
 * order in which operations on different aliases run is not defined; two on
 * the same alias run in batch order unless one of them had to be retried
 * (do not put both in one batch when their order matters). */

typedef enum qdb_operation_type_t {
    qdb_op_uninitialized = -1, /* refused with QDB_E_INVALID_ARGUMENT */
    qdb_op_get = 0,        /* result: the content */
    qdb_op_put = 1,        /* content; expiry_time (0: never) */
    qdb_op_update = 2,     /* content; expiry_time (0: never) */
    qdb_op_remove = 3,
    qdb_op_cas = 4,        /* content (new), comparand; result on
                            * QDB_E_UNMATCHED_CONTENT: the current content */
    qdb_op_get_update = 5, /* content (new); result: the previous content */
    qdb_op_get_remove = 6, /* result: the removed content */
    qdb_op_remove_if = 7,  /* comparand; result on QDB_E_UNMATCHED_CONTENT:
                            * the current content */
} qdb_operation_type_t;

typedef struct qdb_operation_t {
    /* in */
    qdb_operation_type_t type;
    const char *alias;
    const void *content;
    size_t content_size;
    const void *comparand;
    size_t comparand_size;
    qdb_time_t expiry_time;
    /* out */
    qdb_error_t error;
    const void *result; /* a buffer for qdb_free_buffer, or NULL */
    size_t result_size;
} qdb_operation_t;

/* Zero count operations and mark them qdb_op_uninitialized. */
qdb_error_t qdb_init_operations(qdb_operation_t *operations, size_t count);
/* Run count operations; returns how many ended with QDB_OK.  Each
 * operation's error (and result) is set; arguments are checked per
 * operation, as the single calls check them (a bad one gets its error and
 * is not sent).  A NULL handle or operations: 0, nothing set. */
size_t qdb_run_batch(qdb_handle_t handle, qdb_operation_t *operations, size_t count);

/* Text for an error code (never NULL). */
const char *qdb_error(qdb_error_t error);
/* "qdb x.y.z". */
const char *qdb_version(void);

#ifdef __cplusplus
}
#endif

#endif

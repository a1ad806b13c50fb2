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
 * operation timeout (default 60 s).  It never replays a mutation that may
 * have run: when it cannot know, it returns QDB_E_OUTCOME_UNKNOWN.
 *
 * Threads: a handle is used by one thread at a time; separate handles are
 * independent.  Content is bytes, bit for bit; aliases are 1 to 1024 bytes
 * (QDB_E_ALIAS_TOO_LONG otherwise).
 */
#ifndef QDB_QDB_H
#define QDB_QDB_H

#include <stddef.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qdb_session *qdb_handle_t;

typedef enum qdb_protocol_t { qdb_p_tcp = 0 } qdb_protocol_t;

typedef enum qdb_option_t {
    /* int: the operation timeout in milliseconds (default 60000) */
    qdb_o_operation_timeout = 0,
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

/* Create an entry.  QDB_E_ALIAS_ALREADY_EXISTS if it exists. */
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
/* Delete every entry of the hive, node by node around the ring. */
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
 * exit).  QDB_E_REFUSED unless that node runs with --allow-remote-stop. */
qdb_error_t qdb_node_stop(qdb_handle_t handle, const char *node);
/* Walk the ring from node along successors: every node with its arc as a
 * share of the ring and its entry count.  *json is set in every case where
 * the walk started; QDB_E_UNSTABLE when the walk found the ring broken (an
 * unreachable node, a missing successor, predecessors that disagree, IDs out
 * of order), with the problems listed in the JSON. */
qdb_error_t qdb_hive_status(qdb_handle_t handle, const char *node, const char **json);

/* Text for an error code (never NULL). */
const char *qdb_error(qdb_error_t error);
/* "qdb x.y.z". */
const char *qdb_version(void);

#ifdef __cplusplus
}
#endif

#endif

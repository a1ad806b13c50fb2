/* SPDX-License-Identifier: BSD-2-Clause */
/* libqdb's handle (qdb_handle_t), shared by the files of the library:
 * libqdb.c (one blocking call at a time) and batch.c (qdb_run_batch).  Not
 * installed; nothing outside libqdb includes it.
 *
 * A handle owns one real event loop hosting one client endpoint, and one
 * client core driven by it (NULL until connected).  Every buffer handed to
 * the caller is in `buffers` until qdb_free_buffer or qdb_close. */
#ifndef QDB_CLIENT_SESSION_H
#define QDB_CLIENT_SESSION_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/core.h"
#include "client/qdb.h"
#include "transport-real/loop.h"

struct qdb_session {
    qdb_loop *loop;
    qdb_loop_endpoint *ep;
    qdb_client_core *core; /* NULL until connected */
    qdb_addr node;         /* the node given to qdb_connect */
    int timeout_ms;        /* qdb_o_operation_timeout */
    GHashTable *buffers;   /* buffers handed to the caller (a set of pointers) */
    qdb_tls *tls;          /* qdb_o_hive_key_file's, or NULL: plaintext */

    /* administration: the request in flight (at most one) and its answer */
    qdb_loop_endpoint *admin_ep;
    qdb_addr admin_dst;
    uint64_t admin_rpc;    /* rpc id of the request in flight; ids count from 1 */
    int admin_expect;      /* the message type that answers it */
    bool admin_done;
    int admin_status;
    GByteArray *admin_reply; /* the answer's frame */

    /* the single call in flight (qdb_run_batch keeps its own results) */
    bool done;
    int status;
    uint8_t *content; /* a copy of the result's content (g_malloc), or NULL */
    size_t content_len;
};

/* Forget the core and every connection it used (the loop was stopped under
 * a call, or the handle connects elsewhere). */
void session_drop_core(struct qdb_session *h);
/* A g_malloc copy of len bytes plus a NUL (so never NULL, even for 0). */
uint8_t *session_copy(const uint8_t *content, size_t len);
/* The same copy, tracked as a buffer of the handle (qdb_free_buffer). */
const void *session_keep(struct qdb_session *h, const uint8_t *content, size_t len);
/* QDB_OK, or QDB_E_INVALID_ARGUMENT (NULL) / QDB_E_ALIAS_TOO_LONG (empty or
 * longer than QDB_MAX_ALIAS). */
qdb_error_t session_check_alias(const char *alias);
/* Authentication failures of the handle's endpoints so far (a mark), and
 * rc, or QDB_E_AUTHENTICATION for a transport failure during which a node
 * refused the key (or its absence) since the mark. */
uint64_t session_auth_mark(const struct qdb_session *h);
qdb_error_t session_auth_status(const struct qdb_session *h, uint64_t mark, qdb_error_t rc);
/* 0 (never) .. QDB_MAX_EXPIRY_TIME. */
bool session_expiry_ok(qdb_time_t t);

#endif

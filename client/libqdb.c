/* SPDX-License-Identifier: BSD-2-Clause */
/* libqdb: the blocking C API (qdb.h) over the sans-I/O client core.
 *
 * A handle owns one real event loop (transport-real/loop.h) hosting one client
 * endpoint, and one client core (core.h) driven by that endpoint.  Every call
 * submits one operation and turns the loop until the operation's done
 * callback fired; the core promises that it fires by its configured timeout,
 * so no call blocks for longer than the operation timeout (plus one loop
 * wake-up).  All routing, retries, sessions and timeouts live in the core:
 * this file only validates arguments, copies results out and tracks the
 * buffers it hands to the caller.  There is no process-wide state.
 *
 * Sections: the handle -- seams glue -- running one operation -- the API.
 */
#include "config.h"

#include <glib.h>
#include <stdarg.h>
#include <string.h>

#include "client/core.h"
#include "client/qdb.h"
#include "codec.h"
#include "transport-real/loop.h"

#define QDB_URI_SCHEME "qdb://"

/* ---- the handle ------------------------------------------------------------ */

struct qdb_session {
    qdb_loop *loop;
    qdb_loop_endpoint *ep;
    qdb_client_core *core; /* NULL until connected */
    qdb_addr node;         /* the node given to qdb_connect */
    int timeout_ms;        /* qdb_o_operation_timeout */
    GHashTable *buffers;   /* buffers handed to the caller (a set of pointers) */

    /* the operation in flight: at most one, since every call blocks */
    bool done;
    int status;
    uint8_t *content; /* a copy of the result's content (g_malloc), or NULL */
    size_t content_len;
};

/* ---- seams glue: the loop calls these for the endpoint ---------------------- */

/* Forget the core and every connection it used.  A new core draws a new
 * client id, so sequence numbers starting again at 1 never meet the old
 * session's dedup entries on a node. */
static void h_drop_core(struct qdb_session *h)
{
    if (h->core != NULL) {
        qdb_loop_endpoint_bind(h->ep, NULL, NULL);
        qdb_client_core_free(h->core);
        h->core = NULL;
    }
    qdb_loop_endpoint_disconnect_all(h->ep);
}

static qdb_error_t h_make_core(struct qdb_session *h, qdb_addr node)
{
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.bootstrap = node;
    cfg.timeout = (qdb_time_us)h->timeout_ms * QDB_US_PER_MS;
    /* One answer may not take longer than the whole operation. */
    if (cfg.rpc_timeout == 0 || cfg.rpc_timeout > cfg.timeout)
        cfg.rpc_timeout = cfg.timeout;
    char err[QDB_ERRMSG_SIZE] = "";
    h->core = qdb_client_core_new(&cfg, qdb_loop_endpoint_clock(h->ep),
                                  qdb_loop_endpoint_transport(h->ep),
                                  qdb_loop_endpoint_random(h->ep), err);
    if (h->core == NULL) {
        g_warning("libqdb: cannot create the client core: %s", err);
        return QDB_E_INTERNAL;
    }
    qdb_loop_endpoint_bind(h->ep, &qdb_client_core_inbound, h->core);
    h->node = node;
    return QDB_OK;
}

/* ---- running one operation ------------------------------------------------- */

static void h_done(void *arg, const qdb_client_result *r)
{
    struct qdb_session *h = arg;
    h->done = true;
    h->status = r->status;
    g_free(h->content);
    h->content = NULL;
    h->content_len = 0;
    if (r->content != NULL) {
        /* One spare byte: an empty content still gets a pointer, and text
         * content is NUL-terminated for free. */
        h->content = g_malloc(r->content_len + 1);
        memcpy(h->content, r->content, r->content_len);
        h->content[r->content_len] = '\0';
        h->content_len = r->content_len;
    }
}

static void h_reset_result(struct qdb_session *h)
{
    h->done = false;
    h->status = QDB_E_INTERNAL;
    g_free(h->content);
    h->content = NULL;
    h->content_len = 0;
}

/* Turn the loop until the pending operation's callback fired.  The core arms
 * a deadline no later than the operation's timeout, so this ends; the
 * one-second cap on each wait only guards against a lost wake-up. */
static qdb_error_t h_wait(struct qdb_session *h)
{
    while (!h->done) {
        if (!qdb_loop_run_once(h->loop, 1000)) {
            /* The loop was stopped under us: drop the operation with the core. */
            h_drop_core(h);
            return QDB_E_INTERNAL;
        }
    }
    return (qdb_error_t)h->status;
}

static qdb_error_t h_run(struct qdb_session *h, int op, const char *alias, const void *content,
                         size_t content_len, const void *comparand, size_t comparand_len)
{
    if (h->core == NULL)
        return QDB_E_NOT_CONNECTED;
    h_reset_result(h);
    size_t alias_len = alias != NULL ? strlen(alias) : 0;
    int rc = qdb_client_core_submit(h->core, op, (const uint8_t *)alias, alias_len, content,
                                    content_len, comparand, comparand_len, h_done, h, NULL);
    if (rc != QDB_OK)
        return (qdb_error_t)rc;
    return h_wait(h);
}

/* Hand the result's content to the caller as a tracked buffer. */
static const void *h_take_content(struct qdb_session *h, size_t *len)
{
    uint8_t *buf = h->content;
    if (buf == NULL)
        buf = g_malloc0(1);
    *len = h->content != NULL ? h->content_len : 0;
    h->content = NULL;
    h->content_len = 0;
    g_hash_table_add(h->buffers, buf);
    return buf;
}

/* QDB_OK, or the code for an alias the API refuses. */
static qdb_error_t check_alias(const char *alias)
{
    if (alias == NULL)
        return QDB_E_INVALID_ARGUMENT;
    size_t n = strnlen(alias, QDB_MAX_ALIAS + 1);
    if (n == 0 || n > QDB_MAX_ALIAS)
        return QDB_E_ALIAS_TOO_LONG;
    return QDB_OK;
}

/* ---- the API ----------------------------------------------------------------- */

qdb_error_t qdb_open(qdb_handle_t *handle, qdb_protocol_t proto)
{
    if (handle == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *handle = NULL;
    if (proto != qdb_p_tcp)
        return QDB_E_INVALID_ARGUMENT;

    char err[QDB_ERRMSG_SIZE] = "";
    struct qdb_session *h = g_new0(struct qdb_session, 1);
    h->timeout_ms = (int)(QDB_DEFAULT_CLIENT_TIMEOUT_US / QDB_US_PER_MS);
    h->loop = qdb_loop_new(err);
    if (h->loop == NULL) {
        g_warning("libqdb: cannot create the event loop: %s", err);
        goto fail_alloc;
    }
    h->ep = qdb_loop_attach(h->loop, NULL, NULL, NULL, err);
    if (h->ep == NULL) {
        g_warning("libqdb: cannot create the client endpoint: %s", err);
        goto fail_loop;
    }
    h->buffers = g_hash_table_new_full(g_direct_hash, g_direct_equal, g_free, NULL);
    *handle = h;
    return QDB_OK;

fail_loop:
    qdb_loop_free(h->loop);
fail_alloc:
    g_free(h);
    return QDB_E_INTERNAL;
}

qdb_error_t qdb_connect(qdb_handle_t h, const char *uri)
{
    if (h == NULL || uri == NULL)
        return QDB_E_INVALID_ARGUMENT;
    const char *text = uri;
    if (g_ascii_strncasecmp(text, QDB_URI_SCHEME, strlen(QDB_URI_SCHEME)) == 0)
        text += strlen(QDB_URI_SCHEME);
    /* "HOST:" (empty port) and a trailing "/" are refused rather than guessed. */
    qdb_addr node;
    if (!qdb_addr_parse(&node, text) || node.port == 0 || node.ip == 0)
        return QDB_E_INVALID_ARGUMENT;

    h_drop_core(h);
    qdb_error_t rc = h_make_core(h, node);
    if (rc != QDB_OK)
        return rc;

    /* Ask the node for the owner of some ID, bypassing the cache: that is a
     * FIND to this very node, answered only if something listens there and
     * speaks the protocol.  Refused, timed out or garbled come back here. */
    qdb_id target;
    memset(&target, 0, sizeof target);
    h_reset_result(h);
    int lrc = qdb_client_core_lookup(h->core, &target, 0, h_done, h, NULL);
    rc = lrc == QDB_OK ? h_wait(h) : (qdb_error_t)lrc;
    if (rc != QDB_OK && h->core != NULL)
        h_drop_core(h);
    return rc;
}

qdb_error_t qdb_close(qdb_handle_t h)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    if (h->core != NULL)
        qdb_client_core_free(h->core);
    qdb_loop_detach(h->loop, h->ep);
    qdb_loop_free(h->loop);
    g_hash_table_destroy(h->buffers);
    g_free(h->content);
    g_free(h);
    return QDB_OK;
}

qdb_error_t qdb_set_option(qdb_handle_t h, qdb_option_t option, ...)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    va_list ap;
    va_start(ap, option);
    qdb_error_t rc = QDB_OK;
    switch (option) {
    case qdb_o_operation_timeout: {
        int ms = va_arg(ap, int);
        if (ms <= 0) {
            rc = QDB_E_INVALID_ARGUMENT;
            break;
        }
        h->timeout_ms = ms;
        /* The core reads its timeout once, at creation: make a new one for
         * the same node (losing only the location cache and sessions). */
        if (h->core != NULL) {
            qdb_addr node = h->node;
            h_drop_core(h);
            rc = h_make_core(h, node);
        }
        break;
    }
    default:
        rc = QDB_E_INVALID_ARGUMENT;
        break;
    }
    va_end(ap);
    return rc;
}

qdb_error_t qdb_put(qdb_handle_t h, const char *alias, const void *content, size_t content_length)
{
    if (h == NULL || (content == NULL && content_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    return h_run(h, QDB_MSG_PUT, alias, content, content_length, NULL, 0);
}

qdb_error_t qdb_update(qdb_handle_t h, const char *alias, const void *content,
                       size_t content_length)
{
    if (h == NULL || (content == NULL && content_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    return h_run(h, QDB_MSG_UPDATE, alias, content, content_length, NULL, 0);
}

qdb_error_t qdb_get(qdb_handle_t h, const char *alias, void *content, size_t *content_length)
{
    if (h == NULL || content_length == NULL || (content == NULL && *content_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    size_t room = *content_length;
    rc = h_run(h, QDB_MSG_GET, alias, NULL, 0, NULL, 0);
    if (rc != QDB_OK)
        return rc;
    *content_length = h->content_len;
    if (h->content_len > room)
        return QDB_E_BUFFER_TOO_SMALL;
    if (h->content_len > 0)
        memcpy(content, h->content, h->content_len);
    return QDB_OK;
}

qdb_error_t qdb_get_buffer(qdb_handle_t h, const char *alias, const void **content,
                           size_t *content_length)
{
    if (h == NULL || content == NULL || content_length == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *content = NULL;
    *content_length = 0;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    rc = h_run(h, QDB_MSG_GET, alias, NULL, 0, NULL, 0);
    if (rc == QDB_OK)
        *content = h_take_content(h, content_length);
    return rc;
}

void qdb_free_buffer(qdb_handle_t h, const void *buffer)
{
    if (h == NULL || buffer == NULL)
        return;
    /* Buffers this handle did not hand out are ignored, not freed. */
    g_hash_table_remove(h->buffers, buffer);
}

qdb_error_t qdb_get_update(qdb_handle_t h, const char *alias, const void *new_content,
                           size_t new_content_length, const void **old_content,
                           size_t *old_content_length)
{
    if (h == NULL || (new_content == NULL && new_content_length > 0) || old_content == NULL ||
        old_content_length == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *old_content = NULL;
    *old_content_length = 0;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    rc = h_run(h, QDB_MSG_GET_UPDATE, alias, new_content, new_content_length, NULL, 0);
    if (rc == QDB_OK)
        *old_content = h_take_content(h, old_content_length);
    return rc;
}

qdb_error_t qdb_compare_and_swap(qdb_handle_t h, const char *alias, const void *new_content,
                                 size_t new_content_length, const void *comparand,
                                 size_t comparand_length, const void **original_content,
                                 size_t *original_length)
{
    if (h == NULL || (new_content == NULL && new_content_length > 0) ||
        (comparand == NULL && comparand_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    if (original_content != NULL)
        *original_content = NULL;
    if (original_length != NULL)
        *original_length = 0;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    rc = h_run(h, QDB_MSG_CAS, alias, new_content, new_content_length, comparand,
               comparand_length);
    if (rc == QDB_E_UNMATCHED_CONTENT && original_content != NULL) {
        size_t len;
        *original_content = h_take_content(h, &len);
        if (original_length != NULL)
            *original_length = len;
    }
    return rc;
}

qdb_error_t qdb_remove(qdb_handle_t h, const char *alias)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    return h_run(h, QDB_MSG_REMOVE, alias, NULL, 0, NULL, 0);
}

qdb_error_t qdb_remove_all(qdb_handle_t h)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    return h_run(h, QDB_MSG_REMOVE_ALL, NULL, NULL, 0, NULL, 0);
}

const char *qdb_error(qdb_error_t error)
{
    return qdb_strerror((int)error);
}

const char *qdb_version(void)
{
    return "qdb " PACKAGE_VERSION;
}

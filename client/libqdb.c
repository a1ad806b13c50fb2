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
 * Administration (qdb_ping, qdb_node_status, qdb_node_stop, qdb_hive_status)
 * asks one given node directly: one request frame, one answer, matched by
 * its rpc id, on a second endpoint of the same loop, so these calls never
 * disturb the client core's sessions.
 *
 * Sections: seams glue -- running one operation -- addresses --
 * administration -- the API.  The handle (struct qdb_session) is in
 * session.h; qdb_run_batch in batch.c.
 */
#include "config.h"

#include <glib.h>
#include <netdb.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "client/session.h"
#include "codec.h"
#include "transport-real/tls.h"

#define QDB_URI_SCHEME "qdb://"

/* ---- seams glue: the loop calls these for the endpoint ---------------------- */

/* Forget the core and every connection it used.  A new core draws a new
 * client id, so sequence numbers starting again at 1 never meet the old
 * session's dedup entries on a node. */
void session_drop_core(struct qdb_session *h)
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
        h->content = session_copy(r->content, r->content_len);
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
    uint64_t mark = session_auth_mark(h);
    while (!h->done) {
        if (!qdb_loop_run_once(h->loop, 1000)) {
            /* The loop was stopped under us: drop the operation with the core. */
            session_drop_core(h);
            return QDB_E_INTERNAL;
        }
    }
    return session_auth_status(h, mark, (qdb_error_t)h->status);
}

uint64_t session_auth_mark(const struct qdb_session *h)
{
    return qdb_loop_endpoint_auth_failures(h->ep) + qdb_loop_endpoint_auth_failures(h->admin_ep);
}

qdb_error_t session_auth_status(const struct qdb_session *h, uint64_t mark, qdb_error_t rc)
{
    /* A node that refused our key (or our lack of one) looks like a node that
     * went away to the core; it never ran anything, so say what it was. */
    switch (rc) {
    case QDB_E_CONNECTION_REFUSED:
    case QDB_E_CONNECTION_RESET:
    case QDB_E_OUTCOME_UNKNOWN:
    case QDB_E_TIMEOUT:
    case QDB_E_UNSTABLE:
    case QDB_E_UNAVAILABLE:
        return session_auth_mark(h) != mark ? QDB_E_AUTHENTICATION : rc;
    default:
        return rc;
    }
}

static qdb_error_t h_run_request(struct qdb_session *h, const qdb_client_request *req)
{
    if (h->core == NULL)
        return QDB_E_NOT_CONNECTED;
    h_reset_result(h);
    int rc = qdb_client_core_submit_request(h->core, req, h_done, h, NULL);
    if (rc != QDB_OK)
        return (qdb_error_t)rc;
    return h_wait(h);
}

static qdb_error_t h_run(struct qdb_session *h, int op, const char *alias, const void *content,
                         size_t content_len, const void *comparand, size_t comparand_len)
{
    qdb_client_request req = {.op = op, .alias = (const uint8_t *)alias,
                              .alias_len = alias != NULL ? strlen(alias) : 0,
                              .content = content, .content_len = content_len,
                              .comparand = comparand, .comparand_len = comparand_len};
    return h_run_request(h, &req);
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

uint8_t *session_copy(const uint8_t *content, size_t len)
{
    /* One spare byte: an empty content still gets a pointer, and text
     * content is NUL-terminated for free. */
    uint8_t *copy = g_malloc(len + 1);
    if (len > 0)
        memcpy(copy, content, len);
    copy[len] = '\0';
    return copy;
}

const void *session_keep(struct qdb_session *h, const uint8_t *content, size_t len)
{
    uint8_t *buf = session_copy(content, len);
    g_hash_table_add(h->buffers, buf);
    return buf;
}

G_STATIC_ASSERT(QDB_EXPIRY_MAX == QDB_MAX_EXPIRY_TIME);

bool session_expiry_ok(qdb_time_t t)
{
    return t >= 0 && t <= QDB_EXPIRY_MAX;
}

/* QDB_OK, or the code for an alias the API refuses. */
qdb_error_t session_check_alias(const char *alias)
{
    if (alias == NULL)
        return QDB_E_INVALID_ARGUMENT;
    size_t n = strnlen(alias, QDB_MAX_ALIAS + 1);
    if (n == 0 || n > QDB_MAX_ALIAS)
        return QDB_E_ALIAS_TOO_LONG;
    return QDB_OK;
}

/* ---- addresses ----------------------------------------------------------------- */

/* "[qdb://]HOST[:PORT]" -> an IPv4 address.  HOST is a dotted quad or a name
 * resolved (IPv4) through getaddrinfo, which may block like any call here.
 * IPv6 ("[::1]:2836", "::1") is QDB_E_INVALID_ARGUMENT: the transport speaks
 * IPv4 only.  "HOST:" (empty port) and a trailing "/" are refused rather
 * than guessed. */
static qdb_error_t resolve(const char *uri, qdb_addr *out)
{
    const char *text = uri;
    if (g_ascii_strncasecmp(text, QDB_URI_SCHEME, strlen(QDB_URI_SCHEME)) == 0)
        text += strlen(QDB_URI_SCHEME);
    if (text[0] == '[' || strchr(text, ':') != strrchr(text, ':'))
        return QDB_E_INVALID_ARGUMENT; /* IPv6 */
    if (qdb_addr_parse(out, text))
        return out->port != 0 && out->ip != 0 ? QDB_OK : QDB_E_INVALID_ARGUMENT;
    const char *colon = strchr(text, ':');
    char *host = g_strndup(text, colon ? (size_t)(colon - text) : strlen(text));
    guint64 port = QDB_DEFAULT_PORT;
    qdb_error_t rc = QDB_E_INVALID_ARGUMENT;
    if (host[0] != '\0' &&
        (!colon || g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT16, &port, NULL))) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, NULL, &hints, &res) == 0 && res != NULL) {
            const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
            out->ip = g_ntohl(sin->sin_addr.s_addr);
            out->port = (uint16_t)port;
            rc = out->ip != 0 ? QDB_OK : QDB_E_INVALID_ARGUMENT;
        } else {
            rc = QDB_E_CONNECTION_REFUSED; /* no such host */
        }
        if (res != NULL)
            freeaddrinfo(res);
    }
    g_free(host);
    return rc;
}

/* ---- administration ------------------------------------------------------------- */

static void admin_recv(void *arg, qdb_addr src, const uint8_t *frame, size_t len)
{
    struct qdb_session *h = arg;
    qdb_msg m;
    if (h->admin_done || !qdb_addr_eq(src, h->admin_dst))
        return;
    if (qdb_msg_decode(frame, len, &m) != QDB_OK) {
        h->admin_done = true;
        h->admin_status = QDB_E_PROTOCOL;
        return;
    }
    if (m.type != h->admin_expect || m.rpc != h->admin_rpc)
        return; /* the late answer of an earlier request */
    g_byte_array_set_size(h->admin_reply, 0);
    g_byte_array_append(h->admin_reply, frame, (guint)len);
    h->admin_done = true;
    h->admin_status = QDB_OK;
}

static void admin_unreachable(void *arg, qdb_addr dst)
{
    struct qdb_session *h = arg;
    if (!h->admin_done && qdb_addr_eq(dst, h->admin_dst)) {
        h->admin_done = true;
        h->admin_status = QDB_E_CONNECTION_REFUSED;
    }
}

static const qdb_inbound admin_inbound = {.recv = admin_recv, .unreachable = admin_unreachable};

/* The node an administration call is about: node, or the connected one. */
static qdb_error_t admin_target(struct qdb_session *h, const char *node, qdb_addr *dst)
{
    if (node != NULL)
        return resolve(node, dst);
    if (h->core == NULL)
        return QDB_E_NOT_CONNECTED;
    *dst = h->node;
    return QDB_OK;
}

/* Send req (its rpc is filled in) to dst and wait for the message of type
 * expect that answers it, at most the operation timeout.  QDB_OK and *reply
 * decoded (pointing into h->admin_reply, valid until the next call). */
static qdb_error_t admin_call(struct qdb_session *h, qdb_addr dst, qdb_msg *req, int expect,
                              qdb_msg *reply)
{
    req->rpc = ++h->admin_rpc;
    GByteArray *frame = g_byte_array_new();
    int rc = qdb_msg_encode(req, frame);
    g_assert(rc == QDB_OK);
    h->admin_dst = dst;
    h->admin_expect = expect;
    h->admin_done = false;
    h->admin_status = QDB_E_TIMEOUT;
    uint64_t mark = session_auth_mark(h);
    qdb_transport *t = qdb_loop_endpoint_transport(h->admin_ep);
    if (t->send(t, dst, frame->data, frame->len) != QDB_OK) {
        h->admin_done = true;
        h->admin_status = QDB_E_CONNECTION_REFUSED;
    }
    g_byte_array_unref(frame);
    gint64 deadline = g_get_monotonic_time() + (gint64)h->timeout_ms * 1000;
    while (!h->admin_done) {
        gint64 left = deadline - g_get_monotonic_time();
        if (left <= 0)
            break;
        if (!qdb_loop_run_once(h->loop, (int)MIN(left / 1000 + 1, 1000)))
            break;
    }
    if (!h->admin_done || h->admin_status != QDB_OK) {
        /* A node that never answered may still: forget its connection. */
        qdb_loop_endpoint_disconnect_all(h->admin_ep);
        return session_auth_status(h, mark,
                                   (qdb_error_t)(h->admin_done ? h->admin_status : QDB_E_TIMEOUT));
    }
    rc = qdb_msg_decode(h->admin_reply->data, h->admin_reply->len, reply);
    return rc == QDB_OK ? QDB_OK : QDB_E_PROTOCOL;
}

static qdb_error_t admin_ask_status(struct qdb_session *h, qdb_addr dst, unsigned what,
                                    qdb_msg *reply)
{
    qdb_msg req = {.type = QDB_MSG_STATUS, .what = what};
    return admin_call(h, dst, &req, QDB_MSG_STATUS_REPLY, reply);
}

/* A tracked, NUL-terminated copy of bytes for the caller. */
static const char *h_take_text(struct qdb_session *h, const uint8_t *p, size_t len)
{
    char *s = g_malloc(len + 1);
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    g_hash_table_add(h->buffers, s);
    return s;
}

static qdb_error_t node_json(qdb_handle_t h, const char *node, unsigned what, const char **json)
{
    if (h == NULL || json == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *json = NULL;
    qdb_addr dst;
    qdb_error_t rc = admin_target(h, node, &dst);
    qdb_msg r;
    if (rc == QDB_OK)
        rc = admin_ask_status(h, dst, what, &r);
    if (rc == QDB_OK)
        *json = h_take_text(h, r.content, r.content_len);
    return rc;
}

/* The hive walk: one step per node, following successors. */
typedef struct walk_node {
    qdb_peer self, pred, succ;
    bool has_pred, has_succ, stable;
    uint64_t entries;
} walk_node;

/* The top 64 bits of an ID: enough for arcs as fractions of the ring. */
static uint64_t id_top(const qdb_id *id)
{
    return qdb_be64_get(id->b);
}

static void json_problem(GString *o, bool *first, const char *kind, qdb_addr at, int code)
{
    char a[QDB_ADDR_STRLEN];
    g_string_append_printf(o, "%s{\"problem\":\"%s\",\"at\":\"%s\"", *first ? "" : ",", kind,
                           qdb_addr_format(at, a));
    if (code)
        g_string_append_printf(o, ",\"error\":%d", code);
    g_string_append_c(o, '}');
    *first = false;
}

/* Walk from start along successors until back at start; record what is
 * wrong on the way (an unreachable node, a missing successor, a cycle that
 * misses start, predecessors that disagree, IDs out of ring order).  At
 * most QDB_HIVE_WALK_MAX nodes. */
#define QDB_HIVE_WALK_MAX QDB_DEFAULT_HIVE_WALK_MAX

static bool hive_walk(struct qdb_session *h, qdb_addr start, GString *o)
{
    GArray *nodes = g_array_new(FALSE, TRUE, sizeof(walk_node));
    GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    GString *problems = g_string_new("");
    bool first = true, complete = false;
    qdb_addr at = start;
    for (;;) {
        if (nodes->len >= QDB_HIVE_WALK_MAX) {
            json_problem(problems, &first, "walk_limit", at, 0);
            break;
        }
        qdb_msg r;
        qdb_error_t rc = admin_ask_status(h, at, QDB_STATUS_CONFIG, &r);
        if (rc != QDB_OK) {
            json_problem(problems, &first, "unreachable", at, rc);
            break;
        }
        walk_node w = {.self = r.peer, .pred = r.pred, .has_pred = r.flags & QDB_STATUS_F_PRED,
                       .has_succ = r.flags & QDB_STATUS_F_SUCC,
                       .stable = r.flags & QDB_STATUS_F_STABLE, .entries = r.count};
        if (w.has_succ)
            w.succ = r.peers[0];
        g_array_append_val(nodes, w);
        g_hash_table_add(seen, GSIZE_TO_POINTER(qdb_addr_key(at)));
        if (!w.has_succ) {
            json_problem(problems, &first, "no_successor", at, 0);
            break;
        }
        at = w.succ.addr;
        if (qdb_addr_eq(at, start)) {
            complete = true;
            break;
        }
        if (g_hash_table_contains(seen, GSIZE_TO_POINTER(qdb_addr_key(at)))) {
            json_problem(problems, &first, "cycle_misses_start", at, 0);
            break;
        }
    }
    /* Each node's predecessor must be the node before it, and walking the
     * successors must pass ID 0 exactly once (once around the ring). */
    unsigned n = nodes->len, wraps = 0;
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        walk_node *w = &g_array_index(nodes, walk_node, i);
        total += w->entries;
        if (i == 0 && !complete)
            continue;
        walk_node *prev = &g_array_index(nodes, walk_node, (i + n - 1) % n);
        if (!w->has_pred || !qdb_peer_eq(&w->pred, &prev->self))
            json_problem(problems, &first, "predecessor_mismatch", w->self.addr, 0);
        if (n > 1 && qdb_id_cmp(&w->self.id, &prev->self.id) <= 0)
            wraps++;
    }
    if (complete && n > 1 && wraps != 1)
        json_problem(problems, &first, "out_of_order", start, 0);
    g_string_append_printf(o, "{\"complete\":%s,\"broken\":%s,\"nodes\":%u,\"entries\":%"
                              G_GUINT64_FORMAT ",\"ring\":[",
                           complete ? "true" : "false", first ? "false" : "true", n, total);
    for (unsigned i = 0; i < n; i++) {
        walk_node *w = &g_array_index(nodes, walk_node, i);
        char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
        qdb_id_to_hex(&w->self.id, hex);
        g_string_append_printf(o, "%s{\"id\":\"%s\",\"address\":\"%s\",\"entries\":%"
                                  G_GUINT64_FORMAT ",\"stable\":%s",
                               i ? "," : "", hex, qdb_addr_format(w->self.addr, a), w->entries,
                               w->stable ? "true" : "false");
        /* Its arc, (previous node, this node], as a share of the ring: known
         * when the previous node is (the walk is complete, or i > 0). */
        if (n == 1 && complete) {
            g_string_append(o, ",\"arc\":1");
        } else if (i > 0 || complete) {
            walk_node *prev = &g_array_index(nodes, walk_node, (i + n - 1) % n);
            uint64_t d = id_top(&w->self.id) - id_top(&prev->self.id);
            g_string_append_printf(o, ",\"arc\":%.4f", (double)d / 18446744073709551616.0);
        }
        g_string_append_c(o, '}');
    }
    g_string_append_printf(o, "],\"problems\":[%s]}", problems->str);
    g_string_free(problems, TRUE);
    g_hash_table_destroy(seen);
    g_array_free(nodes, TRUE);
    return first; /* no problem */
}

/* ---- the API ----------------------------------------------------------------- */

qdb_error_t qdb_ping(qdb_handle_t h, const char *node, unsigned *rtt_us)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    qdb_addr dst;
    qdb_error_t rc = admin_target(h, node, &dst);
    if (rc != QDB_OK)
        return rc;
    gint64 t0 = g_get_monotonic_time();
    qdb_msg req = {.type = QDB_MSG_PING}, r;
    rc = admin_call(h, dst, &req, QDB_MSG_PONG, &r);
    if (rc == QDB_OK && rtt_us != NULL)
        *rtt_us = (unsigned)MIN(g_get_monotonic_time() - t0, (gint64)G_MAXUINT);
    return rc;
}

qdb_error_t qdb_node_status(qdb_handle_t h, const char *node, const char **json)
{
    return node_json(h, node, QDB_STATUS_NODE, json);
}

qdb_error_t qdb_node_config(qdb_handle_t h, const char *node, const char **json)
{
    return node_json(h, node, QDB_STATUS_CONFIG, json);
}

qdb_error_t qdb_node_topology(qdb_handle_t h, const char *node, const char **json)
{
    return node_json(h, node, QDB_STATUS_TOPOLOGY, json);
}

qdb_error_t qdb_node_stop(qdb_handle_t h, const char *node)
{
    if (h == NULL || node == NULL)
        return QDB_E_INVALID_ARGUMENT;
    qdb_addr dst;
    qdb_error_t rc = resolve(node, &dst);
    qdb_msg req = {.type = QDB_MSG_STOP}, r;
    if (rc == QDB_OK)
        rc = admin_call(h, dst, &req, QDB_MSG_STOP_REPLY, &r);
    return rc == QDB_OK ? (qdb_error_t)r.status : rc;
}

qdb_error_t qdb_hive_status(qdb_handle_t h, const char *node, const char **json)
{
    if (h == NULL || json == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *json = NULL;
    qdb_addr start;
    qdb_error_t rc = admin_target(h, node, &start);
    if (rc != QDB_OK)
        return rc;
    GString *o = g_string_new("");
    bool whole = hive_walk(h, start, o);
    *json = h_take_text(h, (const uint8_t *)o->str, o->len);
    g_string_free(o, TRUE);
    return whole ? QDB_OK : QDB_E_UNSTABLE;
}

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
    h->admin_ep = qdb_loop_attach(h->loop, NULL, &admin_inbound, h, err);
    if (h->admin_ep == NULL) {
        g_warning("libqdb: cannot create the administration endpoint: %s", err);
        goto fail_ep;
    }
    h->admin_reply = g_byte_array_new();
    h->buffers = g_hash_table_new_full(g_direct_hash, g_direct_equal, g_free, NULL);
    *handle = h;
    return QDB_OK;

fail_ep:
    qdb_loop_detach(h->loop, h->ep);
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
    qdb_addr node;
    qdb_error_t rc = resolve(uri, &node);
    if (rc != QDB_OK)
        return rc;

    session_drop_core(h);
    rc = h_make_core(h, node);
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
        session_drop_core(h);
    return rc;
}

qdb_error_t qdb_close(qdb_handle_t h)
{
    if (h == NULL)
        return QDB_E_INVALID_ARGUMENT;
    if (h->core != NULL)
        qdb_client_core_free(h->core);
    qdb_loop_detach(h->loop, h->ep);
    qdb_loop_detach(h->loop, h->admin_ep);
    qdb_loop_free(h->loop);
    qdb_tls_free(h->tls);
    g_byte_array_unref(h->admin_reply);
    g_hash_table_destroy(h->buffers);
    g_free(h->content);
    g_free(h);
    return QDB_OK;
}

/* qdb_o_hive_key_file: every connection from now on authenticates with the
 * key (or, path NULL, with none).  The connections made so far go. */
static qdb_error_t h_set_key_file(struct qdb_session *h, const char *path)
{
    qdb_tls *tls = NULL;
    if (path != NULL) {
        char err[QDB_ERRMSG_SIZE];
        int rc;
        if ((tls = qdb_tls_from_file(path, QDB_PEER_CLIENT, &rc, err)) == NULL) {
            g_warning("libqdb: hive key file %s", err);
            return rc == QDB_E_INTERNAL ? QDB_E_INTERNAL : QDB_E_INVALID_ARGUMENT;
        }
    }
    /* Like the timeout, the core is rebuilt for the same node. */
    bool connected = h->core != NULL;
    qdb_addr node = h->node;
    session_drop_core(h);
    qdb_loop_endpoint_disconnect_all(h->admin_ep);
    qdb_loop_endpoint_secure(h->ep, tls);
    qdb_loop_endpoint_secure(h->admin_ep, tls);
    qdb_tls_free(h->tls);
    h->tls = tls;
    return connected ? h_make_core(h, node) : QDB_OK;
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
            session_drop_core(h);
            rc = h_make_core(h, node);
        }
        break;
    }
    case qdb_o_hive_key_file:
        rc = h_set_key_file(h, va_arg(ap, const char *));
        break;
    default:
        rc = QDB_E_INVALID_ARGUMENT;
        break;
    }
    va_end(ap);
    return rc;
}

/* PUT or UPDATE, with an expiry or none (0). */
static qdb_error_t h_write(qdb_handle_t h, int op, const char *alias, const void *content,
                           size_t content_length, qdb_time_t expiry)
{
    if (h == NULL || (content == NULL && content_length > 0) || !session_expiry_ok(expiry))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = session_check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    qdb_client_request req = {.op = op, .alias = (const uint8_t *)alias,
                              .alias_len = strlen(alias), .content = content,
                              .content_len = content_length, .expiry = expiry};
    return h_run_request(h, &req);
}

qdb_error_t qdb_put(qdb_handle_t h, const char *alias, const void *content, size_t content_length)
{
    return h_write(h, QDB_MSG_PUT, alias, content, content_length, 0);
}

qdb_error_t qdb_update(qdb_handle_t h, const char *alias, const void *content,
                       size_t content_length)
{
    return h_write(h, QDB_MSG_UPDATE, alias, content, content_length, 0);
}

qdb_error_t qdb_put_with_expiry(qdb_handle_t h, const char *alias, const void *content,
                                size_t content_length, qdb_time_t expiry_time)
{
    return h_write(h, QDB_MSG_PUT, alias, content, content_length, expiry_time);
}

qdb_error_t qdb_update_with_expiry(qdb_handle_t h, const char *alias, const void *content,
                                   size_t content_length, qdb_time_t expiry_time)
{
    return h_write(h, QDB_MSG_UPDATE, alias, content, content_length, expiry_time);
}

qdb_error_t qdb_get(qdb_handle_t h, const char *alias, void *content, size_t *content_length)
{
    if (h == NULL || content_length == NULL || (content == NULL && *content_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = session_check_alias(alias);
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

/* GET or GET_REMOVE into a buffer the library allocates. */
static qdb_error_t h_read_buffer(qdb_handle_t h, int op, const char *alias, const void **content,
                                 size_t *content_length)
{
    if (h == NULL || content == NULL || content_length == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *content = NULL;
    *content_length = 0;
    qdb_error_t rc = session_check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    rc = h_run(h, op, alias, NULL, 0, NULL, 0);
    if (rc == QDB_OK)
        *content = h_take_content(h, content_length);
    return rc;
}

qdb_error_t qdb_get_buffer(qdb_handle_t h, const char *alias, const void **content,
                           size_t *content_length)
{
    return h_read_buffer(h, QDB_MSG_GET, alias, content, content_length);
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
    qdb_error_t rc = session_check_alias(alias);
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
    qdb_error_t rc = session_check_alias(alias);
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
    qdb_error_t rc = session_check_alias(alias);
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

qdb_error_t qdb_get_remove(qdb_handle_t h, const char *alias, const void **content,
                           size_t *content_length)
{
    return h_read_buffer(h, QDB_MSG_GET_REMOVE, alias, content, content_length);
}

qdb_error_t qdb_remove_if(qdb_handle_t h, const char *alias, const void *comparand,
                          size_t comparand_length)
{
    if (h == NULL || (comparand == NULL && comparand_length > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = session_check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    return h_run(h, QDB_MSG_REMOVE_IF, alias, NULL, 0, comparand, comparand_length);
}

qdb_error_t qdb_get_metadata(qdb_handle_t h, const char *alias, qdb_metadata_t *metadata)
{
    if (h == NULL || metadata == NULL)
        return QDB_E_INVALID_ARGUMENT;
    memset(metadata, 0, sizeof *metadata);
    qdb_error_t rc = session_check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    rc = h_run(h, QDB_MSG_GET_META, alias, NULL, 0, NULL, 0);
    if (rc != QDB_OK)
        return rc;
    qdb_meta m;
    if (qdb_meta_decode(h->content, h->content_len, &m) != QDB_OK)
        return QDB_E_PROTOCOL;
    metadata->size = m.size;
    metadata->version = m.version;
    metadata->creation_time_us = m.created_us;
    metadata->modification_time_us = m.modified_us;
    metadata->expiry_time = m.expiry_s;
    return QDB_OK;
}

qdb_error_t qdb_expires_at(qdb_handle_t h, const char *alias, qdb_time_t expiry_time)
{
    if (h == NULL || !session_expiry_ok(expiry_time))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = session_check_alias(alias);
    if (rc != QDB_OK)
        return rc;
    qdb_client_request req = {.op = QDB_MSG_EXPIRE, .alias = (const uint8_t *)alias,
                              .alias_len = strlen(alias), .expiry = expiry_time};
    return h_run_request(h, &req);
}

qdb_error_t qdb_expires_from_now(qdb_handle_t h, const char *alias, qdb_time_t seconds)
{
    /* This machine's clock: the owner decides by its own, so clocks apart
     * by more than the margin wanted must be kept in step (NTP). */
    qdb_time_t now = (qdb_time_t)(g_get_real_time() / G_USEC_PER_SEC);
    if (seconds < 0 || seconds > QDB_EXPIRY_MAX - now)
        return QDB_E_INVALID_ARGUMENT;
    return qdb_expires_at(h, alias, now + seconds);
}

qdb_error_t qdb_get_expiry(qdb_handle_t h, const char *alias, qdb_time_t *expiry_time)
{
    if (expiry_time == NULL)
        return QDB_E_INVALID_ARGUMENT;
    qdb_metadata_t m;
    qdb_error_t rc = qdb_get_metadata(h, alias, &m);
    *expiry_time = m.expiry_time;
    return rc;
}

/* PREFIX (count_only or not); leaves the reply payload in h->content. */
static qdb_error_t h_prefix(qdb_handle_t h, const char *prefix, uint64_t max, bool count_only,
                            uint64_t *n, size_t *at)
{
    if (h == NULL || prefix == NULL || max > QDB_PREFIX_MAX)
        return QDB_E_INVALID_ARGUMENT;
    size_t len = strnlen(prefix, QDB_MAX_ALIAS + 1);
    if (len > QDB_MAX_ALIAS)
        return QDB_E_ALIAS_TOO_LONG;
    qdb_client_request req = {.op = QDB_MSG_PREFIX, .alias = (const uint8_t *)prefix,
                              .alias_len = len, .max = count_only ? 0 : max,
                              .flags = count_only ? QDB_PREFIX_COUNT : 0};
    qdb_error_t rc = h_run_request(h, &req);
    if (rc != QDB_OK)
        return rc;
    int k = qdb_varint_get(h->content, h->content_len, n);
    if (k <= 0)
        return QDB_E_PROTOCOL;
    *at = (size_t)k;
    return QDB_OK;
}

qdb_error_t qdb_prefix_count(qdb_handle_t h, const char *prefix, uint64_t *count)
{
    if (count == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *count = 0;
    size_t at;
    return h_prefix(h, prefix, 0, true, count, &at);
}

qdb_error_t qdb_prefix_get(qdb_handle_t h, const char *prefix, size_t max, const char ***aliases,
                           size_t *count)
{
    if (aliases == NULL || count == NULL)
        return QDB_E_INVALID_ARGUMENT;
    *aliases = NULL;
    *count = 0;
    uint64_t n;
    size_t at;
    qdb_error_t rc = h_prefix(h, prefix, max, false, &n, &at);
    if (rc != QDB_OK)
        return rc;
    /* One buffer: n + 1 pointers (NULL last), then the NUL-terminated
     * aliases.  The core checked the payload's shape. */
    if (n > h->content_len)
        return QDB_E_PROTOCOL;
    size_t table = ((size_t)n + 1) * sizeof(char *);
    char *buf = g_malloc0(table + h->content_len + (size_t)n);
    const char **ptrs = (const char **)(void *)buf;
    char *text = buf + table;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        int k = qdb_varint_get(h->content + at, h->content_len - at, &len);
        g_assert(k > 0 && len <= h->content_len - at - (size_t)k);
        at += (size_t)k;
        memcpy(text, h->content + at, (size_t)len);
        ptrs[i] = text;
        text += len + 1;
        at += (size_t)len;
    }
    g_hash_table_add(h->buffers, buf);
    *aliases = ptrs;
    *count = (size_t)n;
    return QDB_OK;
}

const char *qdb_error(qdb_error_t error)
{
    return qdb_strerror((int)error);
}

const char *qdb_version(void)
{
    return "qdb " PACKAGE_VERSION;
}

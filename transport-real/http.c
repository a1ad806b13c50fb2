/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's status page, /status.json and /metrics over libmicrohttpd.  The
 * contract, and why MHD runs in its own thread, are in http.h.
 *
 * Sections
 *   snapshots: built by the loop thread, read by the HTTP thread
 *   requests (the HTTP thread)
 *   start and stop
 */
#define G_LOG_DOMAIN "qdbd"

#include "config.h"

#include "transport-real/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <microhttpd.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "node/codec.h"
#include "node/status.h"
#include "transport-real/status-page.h" /* QDB_STATUS_PAGE, from status-page.html */

#define PAGE_MARK "<!--STATUS-->"

struct qdb_http {
    qdb_loop *loop;
    qdb_node *node;
    struct MHD_Daemon *mhd;
    int efd; /* the HTTP thread asks the loop for a snapshot here */

    GMutex lock; /* guards everything below */
    GCond fresh;
    GBytes *json, *metrics; /* the latest snapshot; NULL before the first */
    gint64 taken_at;        /* monotonic, microseconds */
    uint64_t generation;
    bool stopping;
};

/* ---- snapshots --------------------------------------------------------------------- */

static void loop_metrics(qdb_loop *loop, GString *o)
{
    qdb_loop_stats ls;
    qdb_loop_get_stats(loop, &ls);
    qdb_metric(o, "qdb_connections_open", "gauge", "TCP connections open.", ls.connections_open);
    qdb_metric(o, "qdb_connections_total", "counter", "TCP connections opened or accepted.",
               ls.connections_total);
    qdb_metric(o, "qdb_connections_refused_total", "counter", "Connections refused by peers.",
               ls.refused);
    qdb_metric(o, "qdb_connections_reset_total", "counter", "Connections reset or closed early.",
               ls.resets);
    qdb_metric(o, "qdb_auth_failures_total", "counter",
               "Connections refused for the hive key (failed handshakes, plaintext peers).",
               ls.auth_failures);
    qdb_metric(o, "qdb_network_bytes_in_total", "counter", "Bytes received over TCP.",
               ls.bytes_in);
    qdb_metric(o, "qdb_network_bytes_out_total", "counter", "Bytes sent over TCP.",
               ls.bytes_out);
    /* the limits of qdbd(8) */
    qdb_metric(o, "qdb_sessions_refused_total", "counter",
               "Connections closed at once: --sessions were open.", ls.sessions_refused);
    qdb_metric(o, "qdb_idle_closed_total", "counter",
               "Connections closed after --idle-timeout without a request.", ls.idle_closed);
    qdb_metric(o, "qdb_oversized_frames_total", "counter",
               "Frames over the largest taken (twice --max-content-size), dropped.",
               ls.oversized);
    qdb_metric(o, "qdb_input_waits_total", "counter",
               "Times a connection waited for --input-memory.", ls.input_waits);
    qdb_metric(o, "qdb_stalled_closed_total", "counter",
               "Connections closed for holding input memory without sending.",
               ls.stalled_closed);
    qdb_metric(o, "qdb_handshake_timeouts_total", "counter",
               "Connections closed after --handshake-timeout without a TLS handshake.",
               ls.handshake_closed);
}

/* The loop thread: a request for a snapshot arrived on the eventfd. */
static void on_snapshot_wanted(void *arg, int fd)
{
    qdb_http *h = arg;
    uint64_t n;
    if (read(fd, &n, sizeof n) != (ssize_t)sizeof n)
        return; /* spurious wake-up: nothing asked */
    GString *json = g_string_sized_new(4096);
    qdb_node_status_json(h->node, QDB_STATUS_NODE, json);
    GString *metrics = g_string_sized_new(4096);
    qdb_node_metrics(h->node, metrics);
    loop_metrics(h->loop, metrics);
    g_mutex_lock(&h->lock);
    if (h->json)
        g_bytes_unref(h->json);
    if (h->metrics)
        g_bytes_unref(h->metrics);
    h->json = g_string_free_to_bytes(json);
    h->metrics = g_string_free_to_bytes(metrics);
    h->taken_at = g_get_monotonic_time();
    h->generation++;
    g_cond_broadcast(&h->fresh);
    g_mutex_unlock(&h->lock);
}

/* The HTTP thread: a snapshot at most QDB_HTTP_FRESH_MS old if the loop
 * gives one within QDB_HTTP_WAIT_MS, else the latest (NULL if none yet).
 * The caller unrefs what it gets. */
static void snapshot(qdb_http *h, GBytes **json, GBytes **metrics)
{
    g_mutex_lock(&h->lock);
    gint64 now = g_get_monotonic_time();
    if (!h->json || now - h->taken_at > (gint64)QDBD_DEFAULT_HTTP_FRESH_US) {
        uint64_t gen = h->generation, one = 1;
        if (write(h->efd, &one, sizeof one) == (ssize_t)sizeof one) {
            gint64 until = now + (gint64)QDBD_DEFAULT_HTTP_WAIT_US;
            while (h->generation == gen && !h->stopping)
                if (!g_cond_wait_until(&h->fresh, &h->lock, until))
                    break; /* the loop is busy: serve what we have */
        }
    }
    *json = h->json ? g_bytes_ref(h->json) : NULL;
    *metrics = h->metrics ? g_bytes_ref(h->metrics) : NULL;
    g_mutex_unlock(&h->lock);
}

/* ---- requests ------------------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type,
                               const void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned code, const char *text)
{
    return respond(c, code, "text/plain; charset=utf-8", text, strlen(text));
}

/* The page with the snapshot inlined, so the ring is drawn at once (and by
 * a browser that runs no fetch before it is looked at).  In a <script>
 * element "</" would end it early: '<' only occurs inside JSON strings, and
 * is written \u003c there. */
static GString *page(GBytes *json)
{
    const char *mark = strstr(QDB_STATUS_PAGE, PAGE_MARK);
    g_assert(mark != NULL);
    GString *o = g_string_sized_new(sizeof QDB_STATUS_PAGE + 8192);
    g_string_append_len(o, QDB_STATUS_PAGE, mark - QDB_STATUS_PAGE);
    gsize len = 0;
    const char *j = json ? g_bytes_get_data(json, &len) : NULL;
    if (!j)
        g_string_append(o, "null");
    for (gsize i = 0; i < len; i++) {
        if (j[i] == '<')
            g_string_append(o, "\\u003c");
        else
            g_string_append_c(o, j[i]);
    }
    g_string_append(o, mark + strlen(PAGE_MARK));
    return o;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    qdb_http *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (*upload_data_size != 0)
        return respond_text(c, MHD_HTTP_BAD_REQUEST, "no request body, please\n");
    bool is_page = strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0;
    bool is_json = strcmp(url, "/status.json") == 0;
    bool is_metrics = strcmp(url, "/metrics") == 0;
    if (!is_page && !is_json && !is_metrics)
        return respond_text(c, MHD_HTTP_NOT_FOUND, "not found: try /, /status.json or /metrics\n");

    GBytes *json, *metrics;
    snapshot(h, &json, &metrics);
    enum MHD_Result ret;
    if (!json) {
        ret = respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the node is busy; try again\n");
    } else if (is_page) {
        GString *o = page(json);
        ret = respond(c, MHD_HTTP_OK, "text/html; charset=utf-8", o->str, o->len);
        g_string_free(o, TRUE);
    } else {
        GBytes *b = is_json ? json : metrics;
        gsize len;
        const void *data = g_bytes_get_data(b, &len);
        ret = respond(c, MHD_HTTP_OK,
                      is_json ? "application/json" : "text/plain; version=0.0.4; charset=utf-8",
                      data, len);
    }
    if (json)
        g_bytes_unref(json);
    if (metrics)
        g_bytes_unref(metrics);
    return ret;
}

/* ---- start and stop ------------------------------------------------------------------- */

qdb_http *qdb_http_start(qdb_loop *loop, qdb_node *node, const qdb_addr *addr, char *err)
{
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(*addr, a);
    qdb_http *h = g_new0(qdb_http, 1);
    h->loop = loop;
    h->node = node;
    g_mutex_init(&h->lock);
    g_cond_init(&h->fresh);
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->efd < 0) {
        qdb_error_set(err, QDB_E_INTERNAL, "http %s: eventfd: %s", a, g_strerror(errno));
        goto fail_alloc;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(addr->port),
                              .sin_addr.s_addr = htonl(addr->ip)};
    errno = 0;
    h->mhd = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, addr->port, NULL, NULL, on_request, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)QDBD_DEFAULT_HTTP_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)QDBD_DEFAULT_HTTP_PER_CLIENT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(QDBD_DEFAULT_HTTP_IDLE_US / QDB_US_PER_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, QDBD_DEFAULT_HTTP_MEMORY,
        MHD_OPTION_END);
    if (!h->mhd) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "cannot serve HTTP on %s: %s", a,
                      errno ? g_strerror(errno) : "libmicrohttpd failed");
        goto fail_efd;
    }
    /* Watched last: the loop keeps a watch until it is freed, so no failure
     * may follow it. */
    if (!qdb_loop_watch_fd(loop, h->efd, on_snapshot_wanted, h)) {
        qdb_error_set(err, QDB_E_INTERNAL, "http %s: cannot watch the eventfd: %s", a,
                      g_strerror(errno));
        MHD_stop_daemon(h->mhd);
        goto fail_efd;
    }
    return h;

fail_efd:
    close(h->efd);
fail_alloc:
    g_cond_clear(&h->fresh);
    g_mutex_clear(&h->lock);
    g_free(h);
    return NULL;
}

void qdb_http_stop(qdb_http *h)
{
    if (!h)
        return;
    g_mutex_lock(&h->lock);
    h->stopping = true; /* a request waiting for the (stopped) loop gives up */
    g_cond_broadcast(&h->fresh);
    g_mutex_unlock(&h->lock);
    MHD_stop_daemon(h->mhd);
    /* Out of the loop first: a close() alone would leave the eventfd in its
     * epoll set while another descriptor holds it (a dup, a child's copy),
     * and the watch would call on_snapshot_wanted with h freed. */
    qdb_loop_unwatch_fd(h->loop, h->efd);
    close(h->efd);
    if (h->json)
        g_bytes_unref(h->json);
    if (h->metrics)
        g_bytes_unref(h->metrics);
    g_cond_clear(&h->fresh);
    g_mutex_clear(&h->lock);
    g_free(h);
}

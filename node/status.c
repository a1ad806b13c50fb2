/* SPDX-License-Identifier: BSD-2-Clause */
/* Operators' view of a node: the node_status JSON, the Prometheus metrics,
 * and the STATUS and STOP requests.  The contract is in status.h.
 *
 * Sections
 *   JSON pieces: peers, the node's neighbourhood, counters, configuration
 *   node_status / node_config / node_topology
 *   metrics
 *   STATUS and STOP from the network
 */
#define G_LOG_DOMAIN "qdb-node"

#include "status.h"

#include <stddef.h>
#include <string.h>

#include "node_internal.h"

/* ---- JSON pieces --------------------------------------------------------------
 * Every string written below is a literal key, 64 hex digits or a formatted
 * address: none can hold a quote, a backslash or a control character. */

static void j_peer(GString *o, const qdb_peer *p)
{
    char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
    qdb_id_to_hex(&p->id, hex);
    g_string_append_printf(o, "{\"id\":\"%s\",\"address\":\"%s\"}", hex,
                           qdb_addr_format(p->addr, a));
}

/* "id":"...","address":"..." of the node itself, opening its object. */
static void j_self(GString *o, const qdb_node *n)
{
    char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
    qdb_id_to_hex(&n->cfg.self.id, hex);
    g_string_append_printf(o, "{\"id\":\"%s\",\"address\":\"%s\"", hex,
                           qdb_addr_format(n->cfg.self.addr, a));
}

static void j_bool(GString *o, const char *key, bool v)
{
    g_string_append_printf(o, ",\"%s\":%s", key, v ? "true" : "false");
}

static void j_u64(GString *o, const char *key, uint64_t v)
{
    g_string_append_printf(o, ",\"%s\":%" G_GUINT64_FORMAT, key, v);
}

/* "predecessor", "successors" and "fingers". */
static void j_neighbours(GString *o, const qdb_node *n)
{
    const qdb_peer *p = qdb_node_predecessor(n);
    g_string_append(o, ",\"predecessor\":");
    if (p)
        j_peer(o, p);
    else
        g_string_append(o, "null");
    g_string_append(o, ",\"successors\":[");
    for (unsigned i = 0; i < n->n_succ; i++) {
        if (i)
            g_string_append_c(o, ',');
        j_peer(o, &n->succ[i]);
    }
    /* Consecutive fingers are mostly the same node: list each run once, by
     * its first bit.  At most QDB_FINGER_WINDOW entries. */
    g_string_append(o, "],\"fingers\":[");
    const qdb_peer *last = NULL;
    for (unsigned i = QDB_FINGER_LO; i < QDB_ID_BITS; i++) {
        const qdb_peer *f = qdb_node_finger(n, i);
        if (!f || (last && qdb_peer_eq(f, last)))
            continue;
        if (last)
            g_string_append_c(o, ',');
        char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
        qdb_id_to_hex(&f->id, hex);
        g_string_append_printf(o, "{\"bit\":%u,\"id\":\"%s\",\"address\":\"%s\"}", i, hex,
                               qdb_addr_format(f->addr, a));
        last = f;
    }
    g_string_append_c(o, ']');
}

/* The row of req_counts for a request type, or -1: PUT .. REMOVE_ALL, then
 * the requests beyond the tutorial's (PUT_EX and UPDATE_EX count as put and
 * update). */
static int request_row(int type)
{
    switch (type) {
    case QDB_MSG_PUT_EX: return QDB_MSG_PUT - QDB_MSG_PUT;
    case QDB_MSG_UPDATE_EX: return QDB_MSG_UPDATE - QDB_MSG_PUT;
    case QDB_MSG_GET_REMOVE: return 7;
    case QDB_MSG_REMOVE_IF: return 8;
    case QDB_MSG_GET_META: return 9;
    case QDB_MSG_EXPIRE: return 10;
    case QDB_MSG_PREFIX: return 11;
    default:
        return type >= QDB_MSG_PUT && type <= QDB_MSG_REMOVE_ALL ? type - QDB_MSG_PUT : -1;
    }
}

/* Names of the request rows and results, as JSON keys and metric labels. */
static const char *request_name(int row)
{
    static const char *const names[] = {"put", "get", "update", "remove", "cas", "get_update",
                                        "remove_all", "get_remove", "remove_if", "get_metadata",
                                        "expire", "prefix"};
    G_STATIC_ASSERT(G_N_ELEMENTS(names) == QDB_REQ_TYPES);
    G_STATIC_ASSERT(QDB_MSG_PUT == 2 && QDB_MSG_REMOVE_ALL == 8);
    return names[row];
}

/* The columns of req_counts: the results a node gives by itself, then
 * "other" for any code not listed. */
static const struct {
    int code;
    const char *name;
} results[QDB_REQ_RESULTS] = {
    {QDB_OK, "ok"},
    {QDB_E_ALIAS_NOT_FOUND, "alias_not_found"},
    {QDB_E_ALIAS_ALREADY_EXISTS, "alias_already_exists"},
    {QDB_E_UNMATCHED_CONTENT, "unmatched_content"},
    {QDB_E_WRONG_NODE, "wrong_node"},
    {QDB_E_UNSTABLE, "unstable"},
    {QDB_E_NO_SESSION, "no_session"},
    {QDB_E_UNAVAILABLE, "unavailable"},
    {QDB_E_STORAGE, "storage_error"},
    {-1, "other"},
};

static int result_column(int status)
{
    int k = 0;
    while (k < QDB_REQ_RESULTS - 1 && results[k].code != status)
        k++;
    return k;
}

void status_count_request(qdb_node *n, int type, int status)
{
    int row = request_row(type);
    if (row < 0)
        return;
    if (!n->req_counts)
        n->req_counts = g_new0(uint64_t, QDB_REQ_TYPES * QDB_REQ_RESULTS);
    n->req_counts[row * QDB_REQ_RESULTS + result_column(status)]++;
}

uint64_t qdb_node_requests(const qdb_node *n, int type, int status)
{
    int row = request_row(type);
    if (!n->req_counts || row < 0)
        return 0;
    return n->req_counts[row * QDB_REQ_RESULTS + result_column(status)];
}

typedef void (*request_cell_fn)(void *arg, int row, const char *result, uint64_t count);

/* Every non-zero request counter, in (row, result) order. */
static void each_request_count(const qdb_node *n, request_cell_fn fn, void *arg)
{
    for (int t = 0; t < QDB_REQ_TYPES; t++)
        for (int r = 0; r < QDB_REQ_RESULTS; r++) {
            uint64_t c = n->req_counts ? n->req_counts[t * QDB_REQ_RESULTS + r] : 0;
            if (c)
                fn(arg, t, results[r].name, c);
        }
}

typedef struct json_requests {
    GString *o;
    int open_row; /* 1 + the row whose object is open, or 0 */
} json_requests;

static void json_request_cell(void *arg, int row, const char *result, uint64_t count)
{
    json_requests *j = arg;
    if (j->open_row != row + 1) {
        g_string_append_printf(j->o, "%s\"%s\":{", j->open_row ? "}," : "",
                               request_name(row));
        j->open_row = row + 1;
    } else {
        g_string_append_c(j->o, ',');
    }
    g_string_append_printf(j->o, "\"%s\":%" G_GUINT64_FORMAT, result, count);
}

/* The node's counters, each under its JSON key and, unless it is covered by
 * another metric, its Prometheus name: one list for both outputs. */
typedef struct counter_def {
    const char *key, *metric, *help;
    size_t offset; /* in qdb_node_stats */
} counter_def;

#define STAT(field) offsetof(qdb_node_stats, field)
static const counter_def counters[] = {
    {"frames_in", "qdb_frames_in_total", "Frames received by the node.", STAT(frames_in)},
    {"frames_out", "qdb_frames_out_total", "Frames sent by the node.", STAT(frames_out)},
    {"bad_frames", "qdb_bad_frames_total", "Frames that did not decode.", STAT(bad_frames)},
    {"requests", NULL, NULL, STAT(requests)}, /* qdb_requests_total, by type and result */
    {"wrong_node", "qdb_wrong_node_total",
     "Requests answered 'wrong node' (the client's topology was outdated).", STAT(wrong_node)},
    {"unstable", "qdb_unstable_total", "Requests answered 'unstable' (the ring was settling here).",
     STAT(unstable)},
    {"duplicates", "qdb_duplicate_requests_total",
     "Retransmitted requests answered from the reply memory.", STAT(duplicates)},
    {"lookups", "qdb_lookups_total", "FIND lookups answered by this node.", STAT(finds)},
    {"rpc_timeouts", "qdb_rpc_timeouts_total", "Calls to other nodes that timed out.",
     STAT(rpc_timeouts)},
    {"handover_sent", "qdb_handover_sent_entries_total", "Entries handed over to another node.",
     STAT(handover_sent)},
    {"handover_received", "qdb_handover_received_entries_total", "Entries received in hand-overs.",
     STAT(handover_received)},
    {"storage_errors", "qdb_storage_errors_total", "Storage operations that failed.",
     STAT(storage_errors)},
    {"status_requests", "qdb_status_requests_total", "STATUS requests answered.",
     STAT(status_requests)},
    {"stops", "qdb_stop_requests_total", "STOP requests, obeyed or refused.", STAT(stops)},
    {"repair_sent", "qdb_repair_sent_entries_total",
     "Records sent to repair replicas (and back to their owners).", STAT(repair_sent)},
    {"repair_bytes", "qdb_repair_sent_bytes_total",
     "Bytes of repair frames sent: digests, their answers, records.", STAT(repair_bytes)},
    {"admission_refused", "qdb_admission_refused_total",
     "Frames whose claim was not believed (admission rules).", STAT(admission_refused)},
    {"class_refused", "qdb_class_refused_total",
     "Node messages on client sessions, or client requests from nodes.", STAT(class_refused)},
    {"stray_deleted", "qdb_stray_deleted_entries_total",
     "Copies outside the replica set dropped once their owner held them.", STAT(stray_deleted)},
    {"handover_bytes", "qdb_handover_sent_bytes_total", "Bytes of hand-over frames sent.",
     STAT(handover_bytes)},
};
#undef STAT

static uint64_t counter_value(const qdb_node *n, const counter_def *c)
{
    uint64_t v;
    memcpy(&v, (const char *)&n->stats + c->offset, sizeof v);
    return v;
}

static void j_counters(GString *o, const qdb_node *n)
{
    g_string_append(o, ",\"counters\":{");
    for (size_t i = 0; i < G_N_ELEMENTS(counters); i++)
        g_string_append_printf(o, "%s\"%s\":%" G_GUINT64_FORMAT, i ? "," : "", counters[i].key,
                               counter_value(n, &counters[i]));
    g_string_append(o, ",\"by_request\":{");
    json_requests j = {o, 0};
    each_request_count(n, json_request_cell, &j);
    g_string_append(o, j.open_row ? "}}}" : "}}");
}

static void j_config(GString *o, const qdb_node *n)
{
    const qdb_node_config *c = &n->cfg;
    g_string_append_printf(o, ",\"config\":{\"successor_list_length\":%u", c->succlist_len);
    j_u64(o, "stabilize_fast_ms", c->stabilize_fast / QDB_US_PER_MS);
    j_u64(o, "stabilize_slow_ms", c->stabilize_slow / QDB_US_PER_MS);
    j_u64(o, "rpc_timeout_ms", c->rpc_timeout / QDB_US_PER_MS);
    j_u64(o, "handover_batch", c->handover_batch);
    j_u64(o, "dedup_capacity", c->dedup_capacity);
    j_u64(o, "log_level", (uint64_t)MAX(c->log_level, 0));
    j_u64(o, "dead_node_grace_s", c->dead_node_grace / QDB_US_PER_S);
    j_u64(o, "repair_rate", c->repair_rate);
    /* Hive-wide settings as this node uses them: the protocol version, K as
     * fixed or adopted at join (hive.c; 0 while a node without an opinion of
     * its own is joining), and how long tombstones are kept. */
    g_string_append_printf(o, "},\"hive\":{\"protocol_version\":%d,\"replication_factor\":%u",
                           QDB_PROTO_VERSION, qdb_node_replication(n));
    j_u64(o, "tombstone_grace_s", c->tombstone_grace / QDB_US_PER_S);
    j_bool(o, "purge_all_enabled", n->purge_all_enabled);
    j_bool(o, "stop_enabled", n->stop_enabled);
    g_string_append_c(o, '}');
}

typedef struct scan_ctx {
    uint64_t records, bytes;
} scan_ctx;

static int scan_record(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    scan_ctx *c = arg;
    c->records++;
    c->bytes += vl;
    return c->records >= QDB_STATUS_SCAN_MAX;
}

/* Bytes held: exact up to QDB_STATUS_SCAN_MAX records, extrapolated beyond. */
static uint64_t bytes_held(const qdb_node *n, uint64_t entries, bool *exact)
{
    scan_ctx c = {0, 0};
    n->storage->iterate(n->storage, NULL, 0, NULL, 0, scan_record, &c);
    *exact = c.records >= entries;
    if (*exact || c.records == 0)
        return c.bytes;
    return (uint64_t)((double)c.bytes * ((double)entries / (double)c.records));
}

static const char *state_name(const qdb_node *n)
{
    switch (n->phase) {
    case PHASE_IDLE:
        return "idle";
    case PHASE_JOINING:
        return "joining";
    case PHASE_ACTIVE:
        return "active";
    case PHASE_LEAVING:
        return "leaving";
    case PHASE_LEFT:
        return "left";
    }
    return "unknown";
}

/* The store's room and health, for a store that reports them (usage(),
 * node/env.h): "depot":{bytes, max (0: none), warning_at, warning,
 * disk_full, failed}. */
static void j_depot(GString *o, const qdb_node *n)
{
    if (!n->storage->usage)
        return;
    qdb_storage_usage u;
    n->storage->usage(n->storage, &u);
    g_string_append(o, ",\"depot\":{");
    g_string_append_printf(o, "\"bytes\":%" G_GUINT64_FORMAT, u.depot_bytes);
    j_u64(o, "max", u.max_bytes);
    j_u64(o, "warning_at", u.warn_bytes);
    j_bool(o, "warning", u.warning);
    j_bool(o, "disk_full", u.disk_full);
    j_bool(o, "failed", u.failed);
    g_string_append_c(o, '}');
}

/* ---- node_status / node_config / node_topology ----------------------------------- */

void qdb_node_status_json(const qdb_node *n, unsigned what, GString *o)
{
    j_self(o, n);
    if (what == QDB_STATUS_CONFIG) {
        j_config(o, n);
        g_string_append_c(o, '}');
        return;
    }
    if (what == QDB_STATUS_NODE) {
        g_string_append_printf(o, ",\"incarnation\":\"%016" G_GINT64_MODIFIER "x\"",
                               n->incarnation);
        g_string_append_printf(o, ",\"state\":\"%s\"", state_name(n));
    }
    j_bool(o, "stable", qdb_node_is_stable(n));
    if (what == QDB_STATUS_NODE) {
        j_bool(o, "joining", qdb_node_is_joining(n));
        j_u64(o, "uptime_ms", qdb_node_uptime(n) / QDB_US_PER_MS);
        uint64_t entries = n->storage->count(n->storage);
        bool exact;
        uint64_t bytes = bytes_held(n, entries, &exact);
        j_u64(o, "entries", entries);
        j_u64(o, "bytes", bytes);
        j_bool(o, "bytes_exact", exact);
        j_u64(o, "memory", qdb_node_memory(n));
        j_depot(o, n);
    }
    j_neighbours(o, n);
    if (what == QDB_STATUS_NODE) {
        j_counters(o, n);
        j_config(o, n);
    }
    g_string_append_c(o, '}');
}

/* ---- metrics ------------------------------------------------------------------------ */

void qdb_metric(GString *out, const char *name, const char *type, const char *help,
                uint64_t value)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" G_GUINT64_FORMAT "\n", name,
                           help, name, type, name, value);
}

static void metric_request_cell(void *arg, int row, const char *result, uint64_t count)
{
    g_string_append_printf(arg, "qdb_requests_total{type=\"%s\",result=\"%s\"} %" G_GUINT64_FORMAT
                           "\n", request_name(row), result, count);
}

void qdb_node_metrics(const qdb_node *n, GString *o)
{
    char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
    qdb_id_to_hex(&n->cfg.self.id, hex);
    g_string_append_printf(o, "# HELP qdb_node_info The node's ID and address.\n"
                              "# TYPE qdb_node_info gauge\n"
                              "qdb_node_info{id=\"%s\",address=\"%s\"} 1\n",
                           hex, qdb_addr_format(n->cfg.self.addr, a));
    qdb_metric(o, "qdb_node_uptime_seconds", "gauge", "Seconds since the node started.",
               qdb_node_uptime(n) / QDB_US_PER_S);
    qdb_metric(o, "qdb_node_stable", "gauge",
               "1 when the node believes the ring around it is settled.", qdb_node_is_stable(n));
    qdb_metric(o, "qdb_node_successors", "gauge", "Length of the successor list.", n->n_succ);
    uint64_t entries = n->storage->count(n->storage);
    bool exact;
    qdb_metric(o, "qdb_entries", "gauge", "Entries held by this node.", entries);
    qdb_metric(o, "qdb_bytes", "gauge",
               "Bytes of the records held (header and content, before compression).",
               bytes_held(n, entries, &exact));
    qdb_metric(o, "qdb_node_memory_bytes", "gauge", "Memory of the node's own structures.",
               qdb_node_memory(n));
    if (n->storage->usage) {
        qdb_storage_usage u;
        n->storage->usage(n->storage, &u);
        qdb_metric(o, "qdb_depot_bytes", "gauge",
                   "Bytes of the stored keys and values (after compression).", u.depot_bytes);
        qdb_metric(o, "qdb_depot_max_bytes", "gauge", "The depot's size limit (0: none).",
                   u.max_bytes);
        qdb_metric(o, "qdb_depot_warning", "gauge",
                   "1 when the depot is at or above its warning level.", u.warning);
        qdb_metric(o, "qdb_disk_full", "gauge",
                   "1 while the disk is full: writes that grow the store are refused.",
                   u.disk_full);
        qdb_metric(o, "qdb_storage_failed", "gauge",
                   "1 when the store failed for good (the node leaves its ring).", u.failed);
    }
    g_string_append(o, "# HELP qdb_requests_total Entry requests answered, by type and result.\n"
                       "# TYPE qdb_requests_total counter\n");
    each_request_count(n, metric_request_cell, o);
    for (size_t i = 0; i < G_N_ELEMENTS(counters); i++)
        if (counters[i].metric)
            qdb_metric(o, counters[i].metric, "counter", counters[i].help,
                       counter_value(n, &counters[i]));
}

/* ---- STATUS and STOP ---------------------------------------------------------------- */

void status_on_status(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    n->stats.status_requests++;
    GString *json = g_string_sized_new(4096);
    qdb_node_status_json(n, m->what, json);
    g_assert(json->len <= QDB_STATUS_JSON_MAX); /* bounded by construction: status.h */
    qdb_msg r = {.type = QDB_MSG_STATUS_REPLY, .rpc = m->rpc, .what = m->what,
                 .peer = n->cfg.self, .count = n->storage->count(n->storage),
                 .content = (const uint8_t *)json->str, .content_len = json->len};
    if (qdb_node_is_stable(n))
        r.flags |= QDB_STATUS_F_STABLE;
    if (n->has_pred) {
        r.flags |= QDB_STATUS_F_PRED;
        r.pred = n->pred;
    }
    const qdb_peer *s = ring_successor(n);
    if (s) {
        r.flags |= QDB_STATUS_F_SUCC;
        r.peers[0] = *s;
        r.n_peers = 1;
    }
    node_send(n, src, &r);
    g_string_free(json, TRUE);
}

void status_on_stop(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    n->stats.stops++;
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(src, a);
    bool obey = n->stop_enabled;
    qdb_msg r = {.type = QDB_MSG_STOP_REPLY, .rpc = m->rpc,
                 .status = obey ? QDB_OK : QDB_E_DISABLED};
    node_send(n, src, &r);
    if (!obey) {
        node_log(n, 2, "refused a stop request from %s (stop is not enabled in this hive)", a);
        return;
    }
    node_log(n, 3, "stop requested by %s: leaving the ring", a);
    if (n->phase == PHASE_ACTIVE || n->phase == PHASE_JOINING)
        qdb_node_leave(n);
}

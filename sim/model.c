/* SPDX-License-Identifier: BSD-2-Clause */
/* The data model: what clients were told.
 *
 * Sections
 *   keys and values
 *   operations and their results
 */
#define G_LOG_DOMAIN "qdbsim"

#include <string.h>

#include "codec.h" /* the request types */
#include "model.h"
#include "record.h"

struct sim_model {
    qdb_simnet *net;
    sim_model_hooks hooks;
    GHashTable *keys;            /* alias (char*) -> sim_key*: looked up only */
    GPtrArray *order;            /* sim_key*, in creation order: deterministic walks */
    GPtrArray *watched;          /* sim_key*, with crashed holders (sim_model_watched) */
    GHashTable *pending;         /* sim_op* in flight: looked up, walked only to free them */
    sim_client_stats stats;
    bool split;                  /* the hive is split (sim_model_set_split) */
    char first_bad[192];         /* the first stale or missing read; "" while none */
};

static void key_free(gpointer p)
{
    sim_key *k = p;
    g_free(k->alias);
    g_free(k);
}

static void op_free_cb(gpointer p)
{
    sim_op_free(p);
}

sim_model *sim_model_new(qdb_simnet *net, const sim_model_hooks *hooks)
{
    sim_model *m = g_new0(sim_model, 1);
    m->net = net;
    if (hooks)
        m->hooks = *hooks;
    m->keys = g_hash_table_new(g_str_hash, g_str_equal);
    m->order = g_ptr_array_new_with_free_func(key_free);
    m->watched = g_ptr_array_new();
    m->pending = g_hash_table_new_full(g_direct_hash, g_direct_equal, op_free_cb, NULL);
    m->stats.hops = g_array_new(FALSE, FALSE, sizeof(guint));
    return m;
}

void sim_model_free(sim_model *m)
{
    if (!m)
        return;
    g_hash_table_destroy(m->pending);
    g_hash_table_destroy(m->keys);
    g_ptr_array_free(m->watched, TRUE);
    g_ptr_array_free(m->order, TRUE);
    g_array_free(m->stats.hops, TRUE);
    g_free(m);
}

/* ---- keys and values ------------------------------------------------------------- */

sim_key *sim_model_key(sim_model *m, const char *alias)
{
    sim_key *k = g_hash_table_lookup(m->keys, alias);
    if (!k) {
        k = g_new0(sim_key, 1);
        k->alias = g_strdup(alias);
        g_hash_table_insert(m->keys, k->alias, k);
        g_ptr_array_add(m->order, k);
    }
    return k;
}

sim_key *sim_model_find(sim_model *m, const char *alias)
{
    return g_hash_table_lookup(m->keys, alias);
}

const GPtrArray *sim_model_keys(const sim_model *m)
{
    return m->order;
}

GPtrArray *sim_model_watched(sim_model *m)
{
    return m->watched;
}

/* Storage keys are ID (32 bytes) + alias. */
static int excuse_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    sim_model *m = arg;
    char *alias = g_strndup((const char *)k + QDB_ID_BYTES, kl - QDB_ID_BYTES);
    sim_key *key = sim_model_find(m, alias);
    if (key && !key->excused && key->acked_version) /* with K = 1 a copy is the last one */
        m->stats.lost_last_copy++;
    if (key)
        key->excused = true;
    g_free(alias);
    return 0;
}

void sim_model_excuse_store(sim_model *m, qdb_storage *st)
{
    st->iterate(st, NULL, 0, NULL, 0, excuse_key, m);
}

typedef struct last_copy_ctx {
    sim_model *m;
    qdb_storage *const *others;
    unsigned n_others;
} last_copy_ctx;

bool sim_model_store_holds(qdb_storage *st, const uint8_t *k, size_t kl, const char *alias,
                           uint64_t ver, bool removed)
{
    uint8_t *v;
    size_t vl;
    if (st->get(st, k, kl, &v, &vl) != QDB_OK)
        return false;
    qdb_record_meta meta;
    const uint8_t *content;
    uint64_t got = 0;
    bool ok = qdb_record_decode(v, vl, &meta, &content) == QDB_OK &&
              (meta.tombstone ? removed
                              : sim_model_parse_value(content, meta.size, alias, &got) &&
                                    got >= ver);
    g_free(v);
    return ok;
}

static int excuse_if_last(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    last_copy_ctx *c = arg;
    char *alias = g_strndup((const char *)k + QDB_ID_BYTES, kl - QDB_ID_BYTES);
    sim_key *key = sim_model_find(c->m, alias);
    g_free(alias);
    if (!key || key->excused || key->acked_version == 0)
        return 0;
    for (unsigned i = 0; i < c->n_others; i++)
        if (sim_model_store_holds(c->others[i], k, kl, key->alias, key->acked_version,
                                  key->removed))
            return 0;
    key->excused = true;
    c->m->stats.lost_last_copy++;
    return 0;
}

void sim_model_excuse_last_copies(sim_model *m, qdb_storage *lost, qdb_storage *const *others,
                                  unsigned n_others)
{
    last_copy_ctx c = {m, others, n_others};
    lost->iterate(lost, NULL, 0, NULL, 0, excuse_if_last, &c);
}

char *sim_model_value(const char *alias, uint64_t version, size_t size, size_t *len)
{
    char *head = g_strdup_printf("%s#%" G_GUINT64_FORMAT, alias, version);
    size_t hl = strlen(head);
    size_t n = MAX(size, hl);
    char *v = g_malloc(n + 1);
    memcpy(v, head, hl);
    memset(v + hl, '.', n - hl);
    v[n] = 0;
    g_free(head);
    *len = n;
    return v;
}

bool sim_model_parse_value(const uint8_t *v, size_t len, const char *alias, uint64_t *version)
{
    size_t al = strlen(alias);
    if (len < al + 2 || memcmp(v, alias, al) != 0 || v[al] != '#')
        return false;
    uint64_t ver = 0;
    size_t i = al + 1;
    if (i >= len || v[i] < '0' || v[i] > '9')
        return false;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++)
        ver = ver * 10 + (uint64_t)(v[i] - '0');
    for (; i < len; i++)
        if (v[i] != '.')
            return false;
    *version = ver;
    return true;
}

/* ---- operations and their results ------------------------------------------------- */

sim_op *sim_op_new(sim_op_kind kind)
{
    sim_op *op = g_new0(sim_op, 1);
    op->kind = kind;
    return op;
}

void sim_op_free(sim_op *op)
{
    g_free(op->expect);
    g_free(op);
}

unsigned sim_model_pending(const sim_model *m)
{
    return g_hash_table_size(m->pending);
}

void sim_model_set_split(sim_model *m, bool split)
{
    m->split = split;
}

sim_client_stats *sim_model_stats(sim_model *m)
{
    return &m->stats;
}

/* Every result reaches the trace: (op id, status, content length), content. */
static void trace_result(sim_model *m, const qdb_client_result *r)
{
    uint8_t head[16];
    uint64_t id = GUINT64_TO_BE(r->op_id);
    memcpy(head, &id, 8);
    uint32_t st = GUINT32_TO_BE((uint32_t)r->status);
    memcpy(head + 8, &st, 4);
    uint32_t len = GUINT32_TO_BE((uint32_t)r->content_len);
    memcpy(head + 12, &len, 4);
    qdb_simnet_trace_add(m->net, head, sizeof head);
    if (r->content_len)
        qdb_simnet_trace_add(m->net, r->content, r->content_len);
}

static bool status_is_answer(int s)
{
    return s == QDB_OK || s == QDB_E_ALIAS_NOT_FOUND || s == QDB_E_ALIAS_ALREADY_EXISTS ||
           s == QDB_E_UNMATCHED_CONTENT;
}

static void lookup_done(sim_model *m, const sim_op *op, const qdb_client_result *r)
{
    sim_client_stats *s = &m->stats;
    s->lookups++;
    s->lookup_dead_contacts += r->dead_contacts;
    if (r->status == QDB_OK) {
        guint h = r->hops;
        g_array_append_val(s->hops, h);
        if (m->hooks.lookup_right && !m->hooks.lookup_right(m->hooks.arg, &op->target, &r->owner))
            s->lookup_wrong++;
    } else if (r->status == QDB_E_TIMEOUT) {
        s->lookup_timeouts++;
    } else {
        s->lookup_failures++;
    }
}

/* Keep the first stale (ver > 0) or missing (ver = 0) read for the report. */
static void note_bad_read(sim_model *m, const sim_op *op, const qdb_client_result *r, uint64_t ver)
{
    if (m->first_bad[0])
        return;
    char a[QDB_ADDR_STRLEN], got[32] = "not found";
    if (ver)
        g_snprintf(got, sizeof got, "version %" G_GUINT64_FORMAT, ver);
    g_snprintf(m->first_bad, sizeof m->first_bad,
               "first bad read: %s at %.3f s, version %" G_GUINT64_FORMAT " acknowledged, %s from %s",
               op->key->alias, (double)qdb_simnet_now(m->net) / 1e6, op->min_version, got,
               qdb_addr_format(r->owner.addr, a));
}

const char *sim_model_first_bad_read(const sim_model *m)
{
    return m->first_bad[0] ? m->first_bad : NULL;
}

static void read_done(sim_model *m, const sim_op *op, const qdb_client_result *r)
{
    sim_client_stats *s = &m->stats;
    if (r->status == QDB_OK) {
        uint64_t ver;
        if (!sim_model_parse_value(r->content, r->content_len, op->key->alias, &ver) || ver == 0 ||
            ver > op->key->writes_issued) {
            s->bad_reads++;
            if (m->hooks.bad_read)
                m->hooks.bad_read(m->hooks.arg, op->key->alias);
        } else if (ver < op->min_version && !op->key->excused) {
            if (op->split || m->split || ver >= op->min_whole)
                s->split_stale_reads++;
            else if (op->down || op->key->down)
                s->down_stale_reads++;
            else {
                s->stale_reads++;
                note_bad_read(m, op, r, ver);
            }
        }
    } else if (r->status == QDB_E_UNAVAILABLE && op->min_version) {
        s->unavailable_reads++;
    } else if (r->status == QDB_E_ALIAS_NOT_FOUND && op->min_version && !op->key->excused) {
        if (op->split || m->split || !op->min_whole)
            s->split_missing_reads++;
        else if (op->down || op->key->down)
            s->down_missing_reads++;
        else {
            s->missing_reads++;
            note_bad_read(m, op, r, 0);
        }
    }
}

static void op_done(void *arg, const qdb_client_result *r)
{
    sim_op *op = arg;
    sim_model *m = op->model;
    g_hash_table_steal(m->pending, op); /* freed below, not by the table */
    trace_result(m, r);
    if (op->kind == SIM_OP_LOOKUP) {
        lookup_done(m, op, r);
        sim_op_free(op);
        return;
    }
    sim_client_stats *s = &m->stats;
    s->requests++;
    s->wrong_node_retries += r->wrong_node;
    s->unstable_answers += r->unstable;
    if (!status_is_answer(r->status))
        s->failed_requests++;
    if (r->status == QDB_E_UNSTABLE)
        s->unstable_requests++;
    if (r->status == QDB_E_TIMEOUT)
        s->timeout_requests++;
    switch (op->kind) {
    case SIM_OP_WRITE:
        op->key->writes_inflight = false;
        if (r->status == QDB_OK) {
            s->acked_writes++;
            if (op->version > op->key->acked_version) {
                op->key->acked_version = op->version;
                op->key->down = false; /* the owner took it */
            }
            if (!op->split && !m->split && op->version > op->key->acked_whole)
                op->key->acked_whole = op->version;
            op->key->removed = false;
        }
        break;
    case SIM_OP_READ:
        read_done(m, op, r);
        break;
    case SIM_OP_SCRIPTED:
        if (op->mutates && r->status == QDB_OK)
            s->acked_writes++;
        if (m->hooks.scripted)
            m->hooks.scripted(m->hooks.arg, op, r);
        break;
    default:
        break;
    }
    sim_op_free(op);
}

static int submitted(sim_model *m, sim_op *op, int rc)
{
    if (rc != QDB_OK) {
        sim_op_free(op);
        return rc;
    }
    g_hash_table_add(m->pending, op);
    return QDB_OK;
}

/* Does a request of this type change the store?  Listed one by one, so a
 * new read-only request is not counted as a write by default. */
static bool type_mutates(int type)
{
    switch (type) {
    case QDB_MSG_PUT:
    case QDB_MSG_UPDATE:
    case QDB_MSG_REMOVE:
    case QDB_MSG_CAS:
    case QDB_MSG_GET_UPDATE:
    case QDB_MSG_REMOVE_ALL:
        return true;
    default:
        return false;
    }
}

int sim_model_submit(sim_model *m, qdb_client_core *c, int type, const char *alias,
                     const uint8_t *content, size_t len, sim_op *op)
{
    op->model = m;
    op->mutates = type_mutates(type);
    op->split = m->split;
    op->down = op->key && op->key->down;
    qdb_client_request req = {.op = type, .alias = (const uint8_t *)alias,
                              .alias_len = strlen(alias), .content = content,
                              .content_len = len, .expiry = op->expiry};
    int rc = qdb_client_core_submit_request(c, &req, op_done, op, NULL);
    return submitted(m, op, rc);
}

int sim_model_lookup(sim_model *m, qdb_client_core *c, qdb_addr start, sim_op *op)
{
    op->model = m;
    int rc = qdb_client_core_lookup_at(c, &op->target, start, op_done, op, NULL);
    return submitted(m, op, rc);
}

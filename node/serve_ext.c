/* SPDX-License-Identifier: BSD-2-Clause */
/* The entry requests beyond the tutorial's -- GET_REMOVE, REMOVE_IF,
 * GET_META, EXPIRE, PREFIX -- the checks every request's arguments get on
 * the node, and the background collection of expired entries.
 *
 * Sections
 *   argument checks
 *   single-entry requests
 *   PREFIX: the aliases this node owns that start with a prefix
 *   expiry collection
 *
 * Expiry is decided by the owner's clock seam (wall()): execute() in
 * serve.c reads an expired record as absent, so an entry expires for every
 * client at the same instant of the owner's clock; the collector below only
 * turns expired records into tombstones (version.c deletes those after the
 * grace period), a little per stabilization round.
 *
 * Every write here goes through serve_store_record, so it is versioned like
 * serve.c's, removals leave tombstones, and the client's writes reach the
 * replicas through serve_request (the collector's through replica_copy).
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"
#include "record.h"

/* ---- argument checks ---------------------------------------------------------- */

int serve_ext_check(const qdb_node *n, const qdb_msg *m)
{
    /* the codec bounds a frame, a node the content it takes: CAS carries a
     * comparand as large */
    if (m->content_len > n->cfg.max_content || m->comparand_len > n->cfg.max_content)
        return QDB_E_CONTENT_TOO_LARGE;
    if (m->type == QDB_MSG_REMOVE_ALL)
        return QDB_OK;
    if (m->type == QDB_MSG_PREFIX) /* a prefix may be empty: every alias */
        return !(m->flags & QDB_PREFIX_COUNT) && m->max > QDB_PREFIX_MAX
                   ? QDB_E_INVALID_ARGUMENT
                   : QDB_OK;
    if (m->alias_len == 0) /* the codec bounds the length above */
        return QDB_E_ALIAS_EMPTY;
    if (m->expiry < 0 || m->expiry > QDB_EXPIRY_MAX)
        return QDB_E_INVALID_ARGUMENT;
    return QDB_OK;
}

/* ---- single-entry requests ------------------------------------------------------ */

int serve_ext_execute(qdb_node *n, const qdb_msg *m, const uint8_t *key, size_t kl,
                      const qdb_record_meta *old, const uint8_t *cur, uint8_t **hold,
                      const uint8_t **payload, size_t *plen)
{
    if (old == NULL)
        return QDB_E_ALIAS_NOT_FOUND;
    switch (m->type) {
    case QDB_MSG_GET_REMOVE: {
        int rc = serve_store_record(n, key, kl, old, NULL, 0, true, 0);
        if (rc == QDB_OK) {
            *payload = cur;
            *plen = old->size;
        }
        return rc;
    }
    case QDB_MSG_REMOVE_IF:
        if (old->size != m->comparand_len || memcmp(cur, m->comparand, old->size) != 0) {
            *payload = cur;
            *plen = old->size;
            return QDB_E_UNMATCHED_CONTENT;
        }
        return serve_store_record(n, key, kl, old, NULL, 0, true, 0);
    case QDB_MSG_GET_META: {
        /* the replication version: the hybrid clock of the last write */
        qdb_meta w = {.version = old->version, .created_us = old->created_us,
                      .modified_us = old->modified_us, .size = old->size,
                      .expiry_s = old->expiry_s};
        /* *hold has the record; the reply needs only these bytes */
        g_free(*hold);
        *hold = g_malloc(QDB_META_WIRE);
        qdb_meta_encode(&w, *hold);
        *payload = *hold;
        *plen = QDB_META_WIRE;
        return QDB_OK;
    }
    case QDB_MSG_EXPIRE: {
        /* A new header over the same content: the content was not read
         * (nor checked) here, so it is read again with its checksum. */
        qdb_record_meta meta;
        const uint8_t *content;
        uint8_t *val;
        size_t vlen;
        int rc = n->storage->get(n->storage, key, kl, &val, &vlen);
        if (rc != QDB_OK)
            return rc;
        rc = qdb_record_decode(val, vlen, &meta, &content);
        if (rc == QDB_OK)
            rc = serve_store_record(n, key, kl, &meta, content, meta.size, false, m->expiry);
        g_free(val);
        return rc;
    }
    default:
        return QDB_E_INVALID_ARGUMENT;
    }
}

/* ---- PREFIX ------------------------------------------------------------------------
 * Keys are ID || alias, so aliases sharing a prefix are scattered over the
 * ring: every owned record is visited (O(records here)) and its alias
 * compared.  The client walks every node and merges. */

typedef struct prefix_ctx {
    qdb_node *n;
    const qdb_msg *m;
    int64_t wall;
    GPtrArray *found; /* GBytes aliases */
    uint64_t count;
    int rc;
} prefix_ctx;

static int prefix_visit(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    prefix_ctx *c = arg;
    const uint8_t *alias = k + QDB_ID_BYTES;
    size_t alen = kl - QDB_ID_BYTES;
    if (kl < QDB_ID_BYTES || alen < c->m->alias_len ||
        (c->m->alias_len > 0 && memcmp(alias, c->m->alias, c->m->alias_len) != 0))
        return 0;
    qdb_record_meta meta;
    if (qdb_record_decode_meta(v, vl, &meta) != QDB_OK) {
        c->rc = QDB_E_STORAGE;
        return 1;
    }
    if (meta.tombstone || qdb_record_expired(&meta, c->wall))
        return 0;
    c->count++;
    if (c->m->flags & QDB_PREFIX_COUNT)
        return 0;
    if (c->count > c->m->max) {
        c->rc = QDB_E_TOO_MANY;
        return 1;
    }
    g_ptr_array_add(c->found, g_bytes_new(alias, alen));
    return 0;
}

static gint bytes_cmp(gconstpointer a, gconstpointer b)
{
    return g_bytes_compare(*(GBytes *const *)a, *(GBytes *const *)b);
}

int serve_prefix(qdb_node *n, const qdb_msg *m, uint8_t **hold, const uint8_t **payload,
                 size_t *plen)
{
    prefix_ctx c = {.n = n, .m = m, .wall = n->clock->wall(n->clock),
                    .found = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref)};
    int rc = serve_iterate_arc(n, &n->pred.id, &n->cfg.self.id, prefix_visit, &c);
    if (c.rc != QDB_OK)
        rc = c.rc;
    GByteArray *out = g_byte_array_new();
    if (rc == QDB_OK) {
        /* g_bytes_compare: bytewise, then shorter first -- the client's order */
        g_ptr_array_sort(c.found, bytes_cmp);
        uint8_t tmp[10];
        g_byte_array_append(out, tmp, (guint)qdb_varint_put(tmp, c.count));
        for (guint i = 0; i < c.found->len; i++) {
            gsize len;
            const uint8_t *a = g_bytes_get_data(c.found->pdata[i], &len);
            g_byte_array_append(out, tmp, (guint)qdb_varint_put(tmp, len));
            g_byte_array_append(out, a, (guint)len);
        }
        if (out->len > QDB_FRAME_MAX - 16) /* room for the reply's own fields */
            rc = QDB_E_OVERSIZED;
    }
    g_ptr_array_free(c.found, TRUE);
    if (rc != QDB_OK) {
        g_byte_array_free(out, TRUE);
        return rc;
    }
    *plen = out->len;
    *hold = g_byte_array_free(out, FALSE);
    *payload = *hold;
    return QDB_OK;
}

/* ---- expiry collection ----------------------------------------------------------------
 * A cursor walks the whole store, QDB_GC_BATCH records a call, and wraps
 * around: every record is looked at once per (records / QDB_GC_BATCH)
 * rounds.  Only the owner collects: an expired entry it owns becomes a
 * tombstone of its own version, copied to the replicas like a client's
 * removal.  A replica's copies read as expired meanwhile, and never get a
 * version of the replica's own (which could outrank a later write at the
 * owner after a fail-over). */

typedef struct gc_ctx {
    qdb_node *n;
    int64_t wall;
    unsigned seen;
    bool full;          /* stopped with records left: resume after last */
    bool moved;         /* n->gc_cursor was moved */
    GPtrArray *expired; /* GBytes keys; NULL until one expired */
    GArray *metas;      /* their qdb_record_meta */
} gc_ctx;

static int gc_visit(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    gc_ctx *c = arg;
    const GByteArray *last = c->n->gc_cursor;
    if (c->seen == 0 && c->n->gc_resume && last->len == kl && memcmp(last->data, k, kl) == 0)
        return 0; /* the cursor itself, visited last call */
    if (c->seen++ >= QDB_GC_BATCH) {
        c->full = true;
        return 1;
    }
    qdb_record_meta meta;
    qdb_id id;
    if (kl >= QDB_ID_BYTES && qdb_record_decode_meta(v, vl, &meta) == QDB_OK &&
        !meta.tombstone && qdb_record_expired(&meta, c->wall)) {
        memcpy(id.b, k, QDB_ID_BYTES);
        if (qdb_node_owns(c->n, &id)) {
            if (!c->expired) {
                c->expired = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
                c->metas = g_array_new(FALSE, FALSE, sizeof(qdb_record_meta));
            }
            g_ptr_array_add(c->expired, g_bytes_new(k, kl));
            g_array_append_val(c->metas, meta);
        }
    }
    if (!c->n->gc_cursor)
        c->n->gc_cursor = g_byte_array_new();
    g_byte_array_set_size(c->n->gc_cursor, 0);
    g_byte_array_append(c->n->gc_cursor, k, (guint)kl);
    c->moved = true;
    return 0;
}

void serve_collect_expired(qdb_node *n)
{
    /* Every round of every node comes here and nearly always finds nothing
     * (perf at 10,000 simulated nodes: three allocations a round, and two
     * cache misses on the cursor).  So the lists are made only once
     * something expired, and the cursor is read only when it holds a key
     * (n->gc_resume, in the node's first lines). */
    gc_ctx c = {.n = n, .wall = n->clock->wall(n->clock)};
    const uint8_t *from = n->gc_resume ? n->gc_cursor->data : NULL;
    size_t from_len = n->gc_resume ? n->gc_cursor->len : 0;
    int rc = n->storage->iterate(n->storage, from, from_len, NULL, 0, gc_visit, &c);
    if (rc == QDB_OK && !c.full) { /* the end of the store (stores differ on what
                                     * a stopped walk returns: ask c.full) */
        if (n->gc_resume || c.moved)
            g_byte_array_set_size(n->gc_cursor, 0); /* the end: start over next time */
        n->gc_resume = false;
    } else if (c.moved) {
        n->gc_resume = n->gc_cursor->len > 0;
    }
    if (!c.expired)
        return; /* nothing written: nothing to copy to the replicas either */
    GPtrArray *written = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < c.expired->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(c.expired->pdata[i], &kl);
        if (serve_store_record(n, k, kl, &g_array_index(c.metas, qdb_record_meta, i), NULL, 0,
                               true, 0) == QDB_OK) {
            n->stats.expired++;
            g_ptr_array_add(written, g_bytes_ref(c.expired->pdata[i]));
        }
    }
    replica_copy(n, written);
    g_ptr_array_unref(written);
    g_ptr_array_free(c.expired, TRUE);
    g_array_free(c.metas, TRUE);
}

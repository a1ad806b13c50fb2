/* SPDX-License-Identifier: BSD-2-Clause */
/* Versions of entries and the collection of tombstones.
 *
 * Every write of an entry is stamped with a version from a hybrid logical
 * clock (Kulkarni et al., "Logical physical clocks", OPODIS 2014), kept in
 * one 64-bit number of microseconds: the next version is the largest of the
 * wall clock (the clock seam's wall()), the last version this node issued
 * or saw, plus one, and the entry's current version plus one.  So versions
 * follow real time when clocks agree, never go back on a node whose clock
 * does, and a write always outranks the one it replaces.  Equal versions
 * from two nodes are ordered by the writer's origin (the first 8 bytes of
 * its ID): every node picks the same winner (qdb_record_cmp).
 *
 * A removal writes a tombstone (a record with no content and its own
 * version) instead of deleting: a node that comes back with old storage
 * then meets a newer tombstone, not a hole, and cannot bring the entry back.
 * Tombstones are collected once they are older than the grace period
 * (cfg.tombstone_grace): a node away for longer than that may bring back
 * what was removed meanwhile, the classic trade of Cassandra's gc_grace. */
#define G_LOG_DOMAIN "qdb-node"

#include "node_internal.h"
#include "record.h"

/* Tombstones deleted per sweep, so one sweep never stalls the node long. */
#define COLLECT_MAX 4096

uint64_t version_next(qdb_node *n, int64_t wall, const qdb_record_meta *old)
{
    uint64_t v = MAX(wall > 0 ? (uint64_t)wall : 0, n->hlc + 1);
    if (old && old->version >= v)
        v = old->version + 1;
    n->hlc = v;
    return v;
}

void version_witness(qdb_node *n, uint64_t version)
{
    if (version > n->hlc)
        n->hlc = version;
}

uint64_t version_origin(const qdb_node *n)
{
    return qdb_be64_get(n->cfg.self.id.b);
}

typedef struct collect_ctx {
    GPtrArray *keys; /* NULL until a tombstone is due: a sweep nearly always finds none */
    int64_t before; /* tombstones modified before this are collected */
} collect_ctx;

static int collect_old(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    collect_ctx *c = arg;
    qdb_record_meta meta;
    if (qdb_record_decode_meta(v, vl, &meta) == QDB_OK && meta.tombstone &&
        meta.modified_us < c->before) {
        if (!c->keys)
            c->keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        g_ptr_array_add(c->keys, g_bytes_new(k, kl));
    }
    return c->keys && c->keys->len >= COLLECT_MAX;
}

void version_collect(qdb_node *n)
{
    qdb_time_us now = node_now(n);
    if (now < n->collect_at)
        return;
    /* four sweeps a grace period: a tombstone lives at most 1.25 of it */
    n->collect_at = now + MAX(n->cfg.tombstone_grace / 4, QDB_US_PER_S);
    collect_ctx c = {NULL, n->clock->wall(n->clock) - (int64_t)n->cfg.tombstone_grace};
    qdb_storage *st = n->storage;
    if (st->iterate(st, NULL, 0, NULL, 0, collect_old, &c) != 0 &&
        (!c.keys || c.keys->len < COLLECT_MAX))
        node_log(n, 2, "tombstone sweep: storage failed: %s", st->errmsg);
    if (!c.keys)
        return;
    for (guint i = 0; i < c.keys->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(c.keys->pdata[i], &kl);
        st->del(st, k, kl); /* a failure leaves it for the next sweep */
    }
    node_log(n, 4, "collected %u tombstones", c.keys->len);
    g_ptr_array_free(c.keys, TRUE);
}

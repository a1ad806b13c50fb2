/* SPDX-License-Identifier: BSD-2-Clause */
/* Replication: K copies of every entry (the hive-wide setting, hive.c).
 *
 * Placement.  An entry lives on its owner and on the owner's next K - 1
 * distinct successors, as this node's successor list names them (a node
 * found dead is out of that list, so the next one takes its place; fewer
 * when the hive has fewer nodes).
 *
 * Writes.  The owner applies a mutation (serve.c), then sends the records it
 * wrote to each replica in a HANDOVER frame flagged QDB_HANDOVER_REPLICA and
 * answers the client only once every replica acknowledged it (the reply is
 * remembered for retries then, not before).  A replica that does not answer
 * QDB_NODE_STRIKES times in a row is treated as failed: it is dropped from
 * the successor list (stabilization brings it back if it lives) and the
 * next successor gets the records instead.  A replica applies records by
 * version (version.c), so repeats, reordering and stale senders are
 * harmless.
 *
 * Repair.  When the replicas of its range change (a join, a failure, a
 * departure) or its range does, an owner copies the range to each replica
 * it has not copied it to yet, one batch of cfg.handover_batch records in
 * flight at a time (the next one leaves on the acknowledgement), so the
 * copy's rate is bounded by one round trip per batch.  A replica keeps
 * what is newer of each record.
 *
 * Fail-over needs nothing more: an owner's successor already holds its
 * entries, and serves them once it has taken over the arc.
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"
#include "record.h"

typedef struct repl_target {
    qdb_peer peer;
    uint64_t rpc;     /* the frame in flight; 0: acknowledged or given up */
    unsigned strikes; /* timeouts in a row */
} repl_target;

/* A client's mutation (or a background write, answered to nobody) waiting
 * for its replicas. */
typedef struct repl_write {
    bool answer;       /* a client waits: src, client, seq, type, status, payload */
    qdb_addr src;
    uint64_t client, seq;
    int type;          /* the request's */
    int status;
    GBytes *payload;   /* the reply's, or NULL */
    GPtrArray *keys;   /* GBytes: the storage keys the mutation wrote */
    GArray *targets;   /* repl_target */
    unsigned waiting;
} repl_write;

static void repl_write_free(gpointer p)
{
    repl_write *w = p;
    if (w->payload)
        g_bytes_unref(w->payload);
    g_ptr_array_free(w->keys, TRUE);
    g_array_free(w->targets, TRUE);
    g_free(w);
}

void replica_free(qdb_node *n)
{
    if (n->repl_writes)
        g_ptr_array_free(n->repl_writes, TRUE);
    if (n->repair_keys)
        g_ptr_array_free(n->repair_keys, TRUE);
}

unsigned replica_targets(const qdb_node *n, qdb_peer *out, unsigned max)
{
    unsigned k = 0;
    unsigned want = n->replication > 1 ? n->replication - 1 : 0;
    for (unsigned i = 0; i < n->n_succ && k < want && k < max; i++) {
        const qdb_peer *s = &n->succ[i];
        bool dup = qdb_addr_eq(s->addr, n->cfg.self.addr);
        for (unsigned j = 0; j < k && !dup; j++)
            dup = qdb_addr_eq(out[j].addr, s->addr);
        if (!dup)
            out[k++] = *s;
    }
    return k;
}

/* Frame the current records of keys as replica copies and send them to dst
 * under rpc.  Keys no longer stored are left out. */
static void send_copies(qdb_node *n, const qdb_peer *dst, uint64_t rpc, GPtrArray *keys,
                        rpc_kind kind)
{
    qdb_handover_builder b;
    qdb_handover_builder_init(&b);
    for (guint i = 0; i < keys->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(keys->pdata[i], &kl);
        uint8_t *v;
        size_t vl;
        if (n->storage->get(n->storage, k, kl, &v, &vl) == QDB_OK) {
            qdb_handover_builder_add(&b, k, kl, v, vl);
            g_free(v);
        }
    }
    qdb_msg framed = {.type = QDB_MSG_HANDOVER, .rpc = rpc, .flags = QDB_HANDOVER_REPLICA,
                      .peer = n->cfg.self};
    GByteArray *out = g_byte_array_new();
    if (qdb_msg_encode_handover(&framed, &b, out) == QDB_OK) {
        n->stats.frames_out++;
        n->stats.handover_batches++;
        n->transport->send(n->transport, dst->addr, out->data, out->len);
    }
    g_byte_array_free(out, TRUE);
    qdb_handover_builder_clear(&b);
    node_expect(n, dst->addr, rpc, kind, dst);
}

/* ---- writes ----------------------------------------------------------------- */

static bool targeted(const repl_write *w, qdb_addr a)
{
    for (guint i = 0; i < w->targets->len; i++)
        if (qdb_addr_eq(g_array_index(w->targets, repl_target, i).peer.addr, a))
            return true;
    return false;
}

static void add_target(qdb_node *n, repl_write *w, const qdb_peer *p)
{
    repl_target t = {.peer = *p, .rpc = n->next_rpc++};
    g_array_append_val(w->targets, t);
    w->waiting++;
    send_copies(n, p, t.rpc, w->keys, RPC_REPLICATE);
}

static void finish(qdb_node *n, guint at)
{
    repl_write *w = g_ptr_array_steal_index(n->repl_writes, at);
    gsize len = 0;
    const uint8_t *p = w->payload ? g_bytes_get_data(w->payload, &len) : NULL;
    if (w->answer)
        serve_answer(n, w->src, w->client, w->type, w->seq, w->status, p, len);
    repl_write_free(w);
}

/* Copy keys to every replica; w's client fields are the caller's. */
static bool start_write(qdb_node *n, repl_write *w, GPtrArray *keys)
{
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    if (k == 0 || keys->len == 0) {
        g_free(w);
        return false;
    }
    if (!n->repl_writes)
        n->repl_writes = g_ptr_array_new_with_free_func(repl_write_free);
    w->keys = g_ptr_array_ref(keys);
    w->targets = g_array_new(FALSE, FALSE, sizeof(repl_target));
    g_ptr_array_add(n->repl_writes, w);
    for (unsigned i = 0; i < k; i++)
        add_target(n, w, &to[i]);
    return true;
}

bool replica_write(qdb_node *n, qdb_addr src, uint64_t client, const qdb_msg *m, int status,
                   const uint8_t *payload, size_t plen, GPtrArray *keys)
{
    repl_write *w = g_new0(repl_write, 1);
    w->answer = true;
    w->src = src;
    w->client = client;
    w->seq = m->seq;
    w->type = m->type;
    w->status = status;
    bool started = start_write(n, w, keys);
    if (started)
        w->payload = plen ? g_bytes_new(payload, plen) : NULL;
    return started;
}

void replica_copy(qdb_node *n, GPtrArray *keys)
{
    if (n->replication > 1)
        start_write(n, g_new0(repl_write, 1), keys);
}

bool replica_pending(const qdb_node *n, uint64_t client, uint64_t seq)
{
    for (guint i = 0; n->repl_writes && i < n->repl_writes->len; i++) {
        const repl_write *w = n->repl_writes->pdata[i];
        if (w->answer && w->client == client && w->seq == seq)
            return true;
    }
    return false;
}

/* The write and target a frame belongs to. */
static bool find_rpc(qdb_node *n, uint64_t rpc, guint *wi, repl_target **t)
{
    for (guint i = 0; n->repl_writes && i < n->repl_writes->len; i++) {
        repl_write *w = n->repl_writes->pdata[i];
        for (guint j = 0; j < w->targets->len; j++) {
            repl_target *x = &g_array_index(w->targets, repl_target, j);
            if (x->rpc == rpc) {
                *wi = i;
                *t = x;
                return true;
            }
        }
    }
    return false;
}

static void target_done(qdb_node *n, guint wi, repl_target *t)
{
    repl_write *w = n->repl_writes->pdata[wi];
    t->rpc = 0;
    if (--w->waiting == 0)
        finish(n, wi);
}

/* ---- repair ------------------------------------------------------------------ */

static bool repaired(const qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_repaired; i++)
        if (qdb_addr_eq(n->repaired[i], a))
            return true;
    return false;
}

typedef struct batch_ctx {
    GPtrArray *keys;
    guint limit;
    /* bytes of the records taken, and the most before the batch is full:
     * with the record that fills it, the frame stays within what a node
     * with the same max_content takes (QDB_FRAME_FOR_CONTENT) */
    size_t bytes, budget;
    bool full;
} batch_ctx;

static int take_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    batch_ctx *c = arg;
    g_ptr_array_add(c->keys, g_bytes_new(k, kl));
    c->bytes += kl + vl;
    c->full = c->keys->len >= c->limit || c->bytes >= c->budget;
    return c->full;
}

/* Send the next batch of our range, after the cursor, to the replica being
 * repaired; or, when the range is done, move on to the next replica. */
static void repair_next(qdb_node *n)
{
    if (n->repair_rpc || n->replication <= 1 || n->phase != PHASE_ACTIVE || !n->has_pred ||
        n->awaiting_handover)
        return;
    if (!n->repair_lo_set || !qdb_id_eq(&n->repair_lo, &n->pred.id)) {
        /* our range changed: every replica needs it again */
        n->repair_lo = n->pred.id;
        n->repair_lo_set = true;
        n->n_repaired = 0;
        n->repair_active = false;
    }
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    /* forget replicas that are no longer ours, so one coming back is repaired */
    unsigned kept = 0;
    for (unsigned i = 0; i < n->n_repaired; i++) {
        bool still = false;
        for (unsigned j = 0; j < k && !still; j++)
            still = qdb_addr_eq(to[j].addr, n->repaired[i]);
        if (still)
            n->repaired[kept++] = n->repaired[i];
    }
    n->n_repaired = kept;
    if (n->repair_active && !repaired(n, n->repair_dst.addr)) {
        bool still = false;
        for (unsigned j = 0; j < k && !still; j++)
            still = qdb_peer_eq(&to[j], &n->repair_dst);
        n->repair_active = still;
    }
    if (!n->repair_active) {
        unsigned j = 0;
        while (j < k && repaired(n, to[j].addr))
            j++;
        if (j == k)
            return; /* every replica has our range */
        n->repair_dst = to[j];
        n->repair_cursor = n->pred.id;
        n->repair_active = true;
    }
    if (qdb_id_eq(&n->repair_cursor, &n->cfg.self.id)) {
        /* the whole range went: this replica is done */
        n->repaired[n->n_repaired++] = n->repair_dst.addr;
        n->repair_active = false;
        repair_next(n);
        return;
    }
    if (!n->repair_keys)
        n->repair_keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_ptr_array_set_size(n->repair_keys, 0);
    batch_ctx c = {n->repair_keys, n->cfg.handover_batch, 0, n->cfg.max_content, false};
    int rc = serve_iterate_arc(n, &n->repair_cursor, &n->cfg.self.id, take_key, &c);
    if (rc != 0 && !c.full) {
        node_log(n, 2, "repair: storage failed: %s", n->storage->errmsg);
        return; /* the next round tries again */
    }
    bool last = !c.full;
    if (n->repair_keys->len == 0) { /* nothing (more) to copy */
        n->repair_cursor = n->cfg.self.id;
        repair_next(n);
        return;
    }
    qdb_id next = n->cfg.self.id;
    if (!last) {
        gsize kl;
        const uint8_t *key = g_bytes_get_data(n->repair_keys->pdata[n->repair_keys->len - 1], &kl);
        memcpy(next.b, key, QDB_ID_BYTES);
    }
    n->repair_next_cursor = next;
    n->repair_rpc = n->next_rpc++;
    send_copies(n, &n->repair_dst, n->repair_rpc, n->repair_keys, RPC_REPAIR);
}

void replica_round(qdb_node *n)
{
    repair_next(n);
}

/* ---- answers ---------------------------------------------------------------- */

void replica_on_ack(qdb_node *n, const node_rpc *rpc)
{
    if (rpc->kind == RPC_REPAIR) {
        if (rpc->id != n->repair_rpc)
            return;
        n->repair_rpc = 0;
        n->repair_cursor = n->repair_next_cursor;
        repair_next(n);
        return;
    }
    guint wi;
    repl_target *t;
    if (find_rpc(n, rpc->id, &wi, &t))
        target_done(n, wi, t);
}

void replica_on_failed(qdb_node *n, const node_rpc *rpc)
{
    if (rpc->kind == RPC_REPAIR) {
        if (rpc->id == n->repair_rpc) {
            n->repair_rpc = 0;
            n->repair_active = false; /* from the start, at a later round */
        }
        return;
    }
    guint wi;
    repl_target *t;
    if (!find_rpc(n, rpc->id, &wi, &t))
        return;
    repl_write *w = n->repl_writes->pdata[wi];
    if (++t->strikes < QDB_NODE_STRIKES) {
        /* a lost frame is not a failure: the same copies again, same rpc */
        send_copies(n, &t->peer, t->rpc, w->keys, RPC_REPLICATE);
        return;
    }
    /* Failed for placement: out of our tables, and the next successor
     * takes its place. */
    qdb_peer dead = t->peer;
    ring_forget(n, dead.addr);
    t->rpc = 0;
    w->waiting--;
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    for (unsigned i = 0; i < k; i++)
        if (!targeted(w, to[i].addr))
            add_target(n, w, &to[i]);
    if (w->waiting == 0)
        finish(n, wi);
}

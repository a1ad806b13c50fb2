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
 * departure) or its range does -- at once, not at the next round
 * (replica_kick) -- and every QDB_ANTI_ENTROPY_US anyway, an owner
 * compares the range with each replica by digest (DIGEST: a sum per
 * bucket of the range, the buckets about four records each, at most
 * QDB_DIGEST_BUCKETS_MAX), as Dynamo and Cassandra compare Merkle trees
 * but one level deep: the replica answers which buckets differ and sends
 * back what it holds in them; the owner sends what it holds in them, one
 * batch of cfg.handover_batch records in flight at a time and at most
 * cfg.repair_rate records a second.  Each end keeps what is newer of each
 * record.  Cost: a digest frame of up to 8 KB and a scan of the range at
 * both ends, then the records of the differing buckets both ways.
 *
 * Fail-over: an owner's successor already holds its entries, and serves
 * them once it has taken over the arc -- after one digest of the arc to
 * each of its replicas (replica_sync_start): a replica may hold a newer
 * copy than ours (the failed owner struck us out for lost frames and wrote
 * past us), and its answer brings it back first.
 *
 * Graceful leave.  A leaving node hands everything it holds to its
 * successor S (serve.c).  Its own range then needs a new K-th holder, S's
 * (K - 1)-th successor, and each range it replicated one further on: S
 * copies every record of each batch to its replicas (replica_handover)
 * and acknowledges the batch only once they have it, so the leaver goes
 * with K copies of everything it held left on live nodes.  Without that
 * its range had K - 1 copies until S's repair, and a crash of S
 * meanwhile (one failure) lost every write since the last repair.  The
 * copies of ranges a replica does not replicate are stray, and go back to
 * their owner (stray.h).
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"
#include "record.h"
#include "stray.h"

/* send_copies' kind for frames sent, not called: no answer awaited. */
#define NOT_AWAITED ((rpc_kind)-1)
/* Records a replica sends back to the owner per DIGEST, at most. */
#define QDB_REPAIR_BACK_MAX 4096

typedef struct repl_target {
    qdb_peer peer;
    uint64_t rpc;     /* the frame in flight; 0: acknowledged or given up */
    unsigned strikes; /* timeouts in a row */
    qdb_time_us struck_at; /* the last one's time */
} repl_target;

/* A client's mutation (or a background write, answered to nobody) waiting
 * for its replicas. */
typedef struct repl_write {
    bool answer;       /* a client waits: src, client, seq, type, status, payload */
    uint64_t ack_rpc;  /* else non-zero: a leaver's hand-over batch, acknowledged to src then */
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

uint64_t replica_shape(const qdb_node *n)
{
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    uint64_t h = qdb_id_top64(&n->pred.id);
    for (unsigned i = 0; i < k; i++)
        h = h * UINT64_C(0x100000001b3) ^ qdb_id_top64(&to[i].id);
    return h;
}

/* Frame the current records of keys as replica copies and send them to dst
 * under rpc, awaited as kind (or NOT_AWAITED).  Keys no longer
 * stored are left out.  Returns the frame's length (0: not sent). */
static size_t send_copies(qdb_node *n, const qdb_peer *dst, uint64_t rpc, GPtrArray *keys,
                          rpc_kind kind)
{
    size_t len = 0;
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
        len = out->len;
    }
    g_byte_array_free(out, TRUE);
    qdb_handover_builder_clear(&b);
    if (kind != NOT_AWAITED)
        node_expect(n, dst->addr, rpc, kind, dst);
    return len;
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

/* Is every key w wrote still in our range?  We ran the write as the owner,
 * but our predecessor may have moved past its key since: we had taken a
 * predecessor behind a live node (one that struck that node out under loss
 * notified us after our own predecessor failed), or a loop of the ring
 * sorted itself out.  The key's owner is then that node, which serves it
 * without this write, and our replicas are not its replicas.  (Without a
 * predecessor our range only grew: a failed one is being taken over.) */
static bool still_ours(const qdb_node *n, const repl_write *w)
{
    if (n->phase != PHASE_ACTIVE || !n->has_pred)
        return true;
    for (guint i = 0; i < w->keys->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(w->keys->pdata[i], &kl);
        qdb_id id;
        memcpy(id.b, k, QDB_ID_BYTES);
        if (!qdb_id_in_half(&id, &n->pred.id, &n->cfg.self.id))
            return false;
    }
    return true;
}

static void finish(qdb_node *n, guint at)
{
    repl_write *w = g_ptr_array_steal_index(n->repl_writes, at);
    gsize len = 0;
    const uint8_t *p = w->payload ? g_bytes_get_data(w->payload, &len) : NULL;
    if (w->answer && (!still_ours(n, w) || !watch_leased(n))) {
        /* It ran here, and its copies stay (stray, offered to the owner,
         * stray.h), but it is not on the owner's K nodes: not acknowledged
         * -- the client cannot know whether it will be seen.  Nor once our
         * lease ended (watch.c, "Lease"): our successor may serve the key
         * without it. */
        node_log(n, 3, "a write's key left our range, or our lease ended, before its "
                       "replicas answered: outcome unknown");
        w->status = QDB_E_OUTCOME_UNKNOWN;
        p = NULL;
        len = 0;
    }
    if (w->answer)
        serve_answer(n, w->src, w->client, w->type, w->seq, w->status, p, len);
    if (w->ack_rpc) {
        qdb_msg ack = {.type = QDB_MSG_HANDOVER_ACK, .rpc = w->ack_rpc};
        node_send(n, w->src, &ack);
    }
    repl_write_free(w);
}

/* Copy keys to every replica but `except` (NULL: none); w's client fields
 * are the caller's. */
static bool start_write(qdb_node *n, repl_write *w, GPtrArray *keys, const qdb_addr *except)
{
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    for (unsigned i = 0; except && i < k;)
        if (qdb_addr_eq(to[i].addr, *except))
            to[i] = to[--k];
        else
            i++;
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
    bool started = start_write(n, w, keys, NULL);
    if (started)
        w->payload = plen ? g_bytes_new(payload, plen) : NULL;
    return started;
}

void replica_copy(qdb_node *n, GPtrArray *keys)
{
    if (n->replication > 1)
        start_write(n, g_new0(repl_write, 1), keys, NULL);
}

bool replica_handover(qdb_node *n, qdb_addr src, uint64_t rpc, const qdb_peer *leaver,
                      GPtrArray *keys)
{
    if (n->replication <= 1)
        return false;
    repl_write *w = g_new0(repl_write, 1);
    w->src = src;
    w->ack_rpc = rpc;
    /* never the leaver itself (a ring of two): it takes nothing now */
    return start_write(n, w, keys, &leaver->addr);
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

bool replica_handover_pending(const qdb_node *n, qdb_addr src, uint64_t rpc)
{
    for (guint i = 0; n->repl_writes && i < n->repl_writes->len; i++) {
        const repl_write *w = n->repl_writes->pdata[i];
        if (w->ack_rpc == rpc && qdb_addr_eq(w->src, src))
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

/* Buckets.  The arc (lo, hi] is cut into `buckets` (a power of two) equal
 * sub-arcs: the bucket of an ID is the top bits of its offset from lo, as
 * many as the buckets need, counted from the arc width's top bit.  Both
 * ends compute it from the DIGEST's lo and hi, so they agree. */
typedef struct arc_cut {
    qdb_id lo;
    int shift;        /* offset >> shift is the bucket; < 0: offsets are buckets */
    unsigned buckets;
} arc_cut;

/* 256-bit big-endian a - b, modulo 2^256. */
static void id_sub(qdb_id *out, const qdb_id *a, const qdb_id *b)
{
    int borrow = 0;
    for (int i = QDB_ID_BYTES - 1; i >= 0; i--) {
        int d = (int)a->b[i] - (int)b->b[i] - borrow;
        borrow = d < 0;
        out->b[i] = (uint8_t)(d + (borrow ? 256 : 0));
    }
}

static unsigned id_bit(const qdb_id *x, int j)
{
    return (x->b[QDB_ID_BYTES - 1 - j / 8] >> (j % 8)) & 1u;
}

static void cut_init(arc_cut *c, const qdb_id *lo, const qdb_id *hi, unsigned buckets)
{
    qdb_id w;
    id_sub(&w, hi, lo); /* 0: the whole circle, 2^256 */
    int top = QDB_ID_BITS; /* the width's bit count */
    while (top > 0 && !id_bit(&w, top - 1))
        top--;
    if (qdb_id_eq(lo, hi))
        top = QDB_ID_BITS;
    int need = 0;
    while ((1u << need) < buckets)
        need++;
    c->lo = *lo;
    c->shift = top - need;
    c->buckets = buckets;
}

static unsigned cut_bucket(const arc_cut *c, const uint8_t *key)
{
    qdb_id id, off;
    memcpy(id.b, key, QDB_ID_BYTES);
    id_sub(&off, &id, &c->lo);
    unsigned b = 0;
    int from = MAX(c->shift, 0);
    for (int j = QDB_ID_BITS - 1; j >= from; j--) /* the bits left once shifted */
        b = (b << 1) | id_bit(&off, j);
    return MIN(b, c->buckets - 1); /* an offset of exactly the width: the last bucket */
}

/* One record's share of its bucket's sum: its key and the version that
 * decides between copies (qdb_record_cmp), mixed (splitmix64's finalizer),
 * so a sum differs when any record does. */
static uint64_t record_digest(const uint8_t *k, size_t kl, const qdb_record_meta *meta)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < kl; i++)
        h = (h ^ k[i]) * UINT64_C(0x100000001b3);
    h ^= meta->version * UINT64_C(0x9e3779b97f4a7c15);
    h ^= meta->origin + (meta->tombstone ? UINT64_C(0x632be59bd9b4e019) : 0);
    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    return h ^ (h >> 31);
}

typedef struct digest_ctx {
    arc_cut cut;
    uint64_t *sums; /* QDB_DIGEST_BUCKETS_MAX */
    uint64_t records;
} digest_ctx;

static int digest_one(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    digest_ctx *c = arg;
    qdb_record_meta meta;
    if (kl < QDB_ID_BYTES || qdb_record_decode_meta(v, vl, &meta) != QDB_OK)
        return 0; /* a corrupt record sums as nothing: it differs, and is replaced */
    c->sums[cut_bucket(&c->cut, k)] += record_digest(k, kl, &meta);
    c->records++;
    return 0;
}

/* Sum our records of (lo, hi] into `buckets` buckets (0: pick them from
 * the count, about four records a bucket).  Returns the buckets, or 0 when
 * the store failed. */
static unsigned digest_arc(qdb_node *n, const qdb_id *lo, const qdb_id *hi, unsigned buckets,
                           uint64_t sums[QDB_DIGEST_BUCKETS_MAX])
{
    digest_ctx c = {.sums = sums};
    memset(sums, 0, QDB_DIGEST_BUCKETS_MAX * sizeof sums[0]);
    cut_init(&c.cut, lo, hi, QDB_DIGEST_BUCKETS_MAX);
    if (serve_iterate_arc(n, lo, hi, digest_one, &c) != 0) {
        node_log(n, 2, "repair: storage failed: %s", n->storage->errmsg);
        return 0;
    }
    if (buckets == 0)
        for (buckets = 1; buckets < QDB_DIGEST_BUCKETS_MAX && buckets * 4 < c.records;)
            buckets *= 2;
    /* fold the fine buckets into the coarse ones: sums add up */
    unsigned fold = QDB_DIGEST_BUCKETS_MAX / buckets;
    for (unsigned b = 0; b < buckets; b++) {
        uint64_t s = 0;
        for (unsigned j = 0; j < fold; j++)
            s += sums[b * fold + j];
        sums[b] = s;
    }
    return buckets;
}

static bool diff_has(const uint8_t *diff, unsigned b)
{
    return (diff[b / 8] >> (b % 8)) & 1u;
}

/* The ID x such that (x, hi] is buckets b + 1 and beyond of the cut: the
 * offset (b + 1) << shift less one, from lo. */
static qdb_id cut_after(const arc_cut *c, unsigned b)
{
    qdb_id off = {{0}}, one = {{0}}, x;
    unsigned v = b + 1;
    int s = MAX(c->shift, 0);
    for (int j = 0; v >> j; j++)
        if ((v >> j) & 1u && s + j < QDB_ID_BITS)
            off.b[QDB_ID_BYTES - 1 - (s + j) / 8] |= (uint8_t)(1u << ((s + j) % 8));
    one.b[QDB_ID_BYTES - 1] = 1;
    id_sub(&x, &off, &one);
    qdb_id neg;
    id_sub(&neg, &(qdb_id){{0}}, &c->lo);
    id_sub(&off, &x, &neg); /* x + lo */
    return off;
}

typedef struct batch_ctx {
    GPtrArray *keys;
    guint limit;
    /* bytes of the records taken, and the most before the batch is full:
     * with the record that fills it, the frame stays within what a node
     * with the same max_content takes (QDB_FRAME_FOR_CONTENT) */
    size_t bytes, budget;
    bool full;
    const arc_cut *cut;  /* with diff: only keys in the differing buckets */
    const uint8_t *diff;
} batch_ctx;

static int take_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    batch_ctx *c = arg;
    if (c->diff && (kl < QDB_ID_BYTES || !diff_has(c->diff, cut_bucket(c->cut, k))))
        return 0;
    g_ptr_array_add(c->keys, g_bytes_new(k, kl));
    c->bytes += kl + vl;
    c->full = c->keys->len >= c->limit || c->bytes >= c->budget;
    return c->full;
}

/* Count a repair frame of len bytes carrying records records. */
static void count_repair(qdb_node *n, size_t len, size_t records)
{
    n->stats.repair_bytes += len;
    n->stats.repair_sent += records;
}

/* Ask the replica being repaired which buckets of our range differ. */
static void send_digest(qdb_node *n)
{
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX];
    unsigned buckets = digest_arc(n, &n->repair_lo, &n->cfg.self.id, 0, sums);
    if (buckets == 0)
        return; /* the next round tries again */
    uint8_t wire[QDB_DIGEST_BUCKETS_MAX * 8];
    for (unsigned b = 0; b < buckets; b++)
        qdb_be64_put(wire + 8 * b, sums[b]);
    n->repair_buckets = buckets;
    n->repair_digested = false;
    qdb_msg m = {.type = QDB_MSG_DIGEST, .target = n->repair_lo, .upto = n->cfg.self.id,
                 .content = wire, .content_len = 8u * buckets};
    n->repair_rpc = node_call(n, n->repair_dst.addr, &m, RPC_DIGEST, 0, 0, &n->repair_dst);
    count_repair(n, 8u * buckets + 2 * QDB_ID_BYTES + 4, 0);
}

/* Send the next batch to the replica being repaired (its digest first);
 * or, when its range is done, move on to the next replica. */
static void repair_next(qdb_node *n)
{
    if (n->repair_rpc || n->replication <= 1 || n->phase != PHASE_ACTIVE || !n->has_pred ||
        n->awaiting_handover)
        return;
    qdb_time_us now = node_now(n);
    if (n->repair_at > now)
        return; /* the rate: node_rearm wakes us then */
    n->repair_at = 0;
    if (!n->repair_lo_set || !qdb_id_eq(&n->repair_lo, &n->pred.id)) {
        /* our range changed: every replica needs it again */
        n->repair_lo = n->pred.id;
        n->repair_lo_set = true;
        n->n_repaired = 0;
        n->repair_active = false;
        n->repair_again_at = now + QDB_ANTI_ENTROPY_US;
    } else if (now >= n->repair_again_at) {
        /* Anti-entropy: compare again now and then, membership change or
         * not -- a copy a replica holds and we lack (we came back on old
         * storage, a partition healed) comes back with its answer. */
        n->n_repaired = 0;
        n->repair_again_at = now + QDB_ANTI_ENTROPY_US;
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
        send_digest(n);
        return;
    }
    if (!n->repair_digested) {
        send_digest(n); /* its answer was lost, or the store failed */
        return;
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
    arc_cut cut;
    cut_init(&cut, &n->repair_lo, &n->cfg.self.id, n->repair_buckets);
    batch_ctx c = {n->repair_keys, n->cfg.handover_batch, 0, n->cfg.max_content, false, &cut,
                   n->repair_diff};
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
    count_repair(n, send_copies(n, &n->repair_dst, n->repair_rpc, n->repair_keys, RPC_REPAIR),
                 n->repair_keys->len);
    n->repair_at = now + (qdb_time_us)n->repair_keys->len * QDB_US_PER_S / n->cfg.repair_rate;
}

void replica_round(qdb_node *n)
{
    repair_next(n);
}

void replica_kick(qdb_node *n)
{
    if (n->replication <= 1 || n->phase != PHASE_ACTIVE || !n->has_pred || n->awaiting_handover)
        return; /* looked at again once the hand-over is in */
    uint64_t h = replica_shape(n);
    if (h == n->repair_shape)
        return;
    n->repair_shape = h;
    repair_next(n);
}

static void send_back(qdb_node *n, qdb_addr src, const qdb_msg *m, unsigned buckets,
                      const uint8_t *diff);

/* An owner whose ID is hi compared (lo, hi] with us: we replicate it.
 * Kept per owner; when the table is full, the owner farthest behind us
 * goes (the chain back from our predecessor needs the nearest ones). */
static void cover(qdb_node *n, const qdb_id *lo, const qdb_id *hi)
{
    unsigned at = n->n_covered;
    for (unsigned i = 0; i < n->n_covered; i++)
        if (qdb_id_eq(&n->covered_hi[i], hi))
            at = i; /* the same owner: its range now */
    if (at == G_N_ELEMENTS(n->covered_hi)) {
        at = 0;
        for (unsigned i = 1; i < n->n_covered; i++)
            if (qdb_id_in_open(&n->covered_hi[at], &n->covered_hi[i], &n->cfg.self.id))
                at = i;
        if (qdb_id_in_open(hi, &n->covered_hi[at], &n->cfg.self.id) == false)
            return; /* farther behind than all we keep */
    }
    n->n_covered = MAX(n->n_covered, at + 1);
    n->covered_lo[at] = *lo;
    n->covered_hi[at] = *hi;
}

qdb_id replica_covered_from(const qdb_node *n, const qdb_id *hi)
{
    qdb_id x = *hi;
    for (unsigned step = 0; step + 1 < n->replication; step++) {
        bool found = false;
        for (unsigned i = 0; i < n->n_covered && !found; i++)
            if (qdb_id_eq(&n->covered_hi[i], &x) && !qdb_id_eq(&n->covered_lo[i], &x)) {
                x = n->covered_lo[i];
                found = true;
            }
        if (!found)
            break;
    }
    return x;
}

void replica_on_digest(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    if (stray_on_digest(n, src, m))
        return; /* an offer of stray copies (stray.h) */
    unsigned buckets = (unsigned)(m->content_len / 8);
    if (n->phase != PHASE_ACTIVE || (buckets & (buckets - 1)) != 0)
        return; /* no answer: the owner asks again later */
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX];
    if (digest_arc(n, &m->target, &m->upto, buckets, sums) == 0)
        return;
    uint8_t diff[QDB_DIGEST_BUCKETS_MAX / 8] = {0};
    unsigned differ = 0, last = 0;
    for (unsigned b = 0; b < buckets; b++)
        if (sums[b] != qdb_be64_get(m->content + 8 * b)) {
            diff[b / 8] |= (uint8_t)(1u << (b % 8));
            differ++;
            last = b;
        }
    /* What we hold of the owner's range is what compared equal: the
     * buckets after the last that differs.  Not the others, whose copies
     * only come now (the owner's repair) and may never come, the owner
     * failing first: taking its arc over, we would answer "not found"
     * for entries only it held (K = 2 sweep seed 242).  The owner's next
     * comparison that finds them equal covers them: its anti-entropy one
     * (QDB_ANTI_ENTROPY_US), or the next after a change of its range.
     * Until then a take-over answers "unavailable" for what it lacks there
     * (ring.c, inherit), present entries being served. */
    if (differ == 0) {
        cover(n, &m->target, &m->upto);
    } else {
        arc_cut cut;
        cut_init(&cut, &m->target, &m->upto, buckets);
        qdb_id from = last + 1 < buckets ? cut_after(&cut, last) : m->upto;
        if (!qdb_id_in_open(&from, &m->target, &m->upto))
            from = m->upto; /* the buckets after it lie past the arc: none */
        cover(n, &from, &m->upto);
    }
    /* Nothing back while our hand-over is under way (a restart's, stray.c):
     * what we hold is older than what comes. */
    if (differ > 0 && !n->awaiting_handover)
        send_back(n, src, m, buckets, diff);
    /* The answer after the records, so on an ordered link they arrive
     * first: an owner that took over waits for this answer before it
     * serves reads there (replica_sync_start). */
    size_t dl = (buckets + 7) / 8;
    qdb_msg r = {.type = QDB_MSG_DIGEST_REPLY, .rpc = m->rpc, .content = diff, .content_len = dl};
    node_send(n, src, &r);
    count_repair(n, dl + 4, 0);
}

/* Back to the owner: what we hold in the differing buckets of its digest
 * m, so it keeps the newer of each (a write it missed, an owner back on
 * old or no storage).  Sent once, unacknowledged, bounded: what does not
 * fit or is lost waits for the next repair. */
static void send_back(qdb_node *n, qdb_addr src, const qdb_msg *m, unsigned buckets,
                      const uint8_t *diff)
{
    arc_cut cut;
    cut_init(&cut, &m->target, &m->upto, buckets);
    GPtrArray *keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    qdb_id cursor = m->target;
    qdb_peer owner = {.addr = src};
    for (unsigned sent = 0; sent < QDB_REPAIR_BACK_MAX;) {
        g_ptr_array_set_size(keys, 0);
        batch_ctx c = {keys, n->cfg.handover_batch, 0, n->cfg.max_content, false, &cut, diff};
        serve_iterate_arc(n, &cursor, &m->upto, take_key, &c);
        if (keys->len == 0)
            break;
        count_repair(n, send_copies(n, &owner, n->next_rpc++, keys, NOT_AWAITED), keys->len);
        sent += keys->len;
        if (!c.full)
            break;
        gsize kl;
        memcpy(cursor.b, g_bytes_get_data(keys->pdata[keys->len - 1], &kl), QDB_ID_BYTES);
    }
    g_ptr_array_free(keys, TRUE);
}

/* ---- the sync after a take-over ------------------------------------------------ */

void replica_sync_start(qdb_node *n, const qdb_id *lo, const qdb_id *hi)
{
    n->syncing = false;
    memset(n->sync_rpc, 0, sizeof n->sync_rpc);
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = n->replication > 1 ? replica_targets(n, to, G_N_ELEMENTS(to)) : 0;
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX];
    unsigned buckets = k ? digest_arc(n, lo, hi, 0, sums) : 0;
    if (buckets == 0)
        return;
    uint8_t wire[QDB_DIGEST_BUCKETS_MAX * 8];
    for (unsigned b = 0; b < buckets; b++)
        qdb_be64_put(wire + 8 * b, sums[b]);
    n->sync_lo = *lo;
    n->sync_hi = *hi;
    n->syncing = true;
    if (n->has_pred && qdb_id_eq(lo, &n->pred.id) && qdb_id_eq(hi, &n->cfg.self.id))
        n->lease_resync = false; /* the whole range: what a lapsed lease asks (watch.c) */
    for (unsigned i = 0; i < k; i++) {
        /* the replica answers as to a repair digest: the buckets that
         * differ, then what it holds in them, which we keep if newer */
        qdb_msg m = {.type = QDB_MSG_DIGEST, .target = *lo, .upto = *hi, .content = wire,
                     .content_len = 8u * buckets};
        n->sync_rpc[i] = node_call(n, to[i].addr, &m, RPC_DIGEST, 0, 0, &to[i]);
        count_repair(n, 8u * buckets + 2 * QDB_ID_BYTES + 4, 0);
    }
}

void replica_sync_first(qdb_node *n)
{
    if (n->replication > 1 && n->has_pred && !n->syncing)
        replica_sync_start(n, &n->pred.id, &n->cfg.self.id);
}

bool replica_syncing(const qdb_node *n, const qdb_id *id)
{
    return n->syncing && qdb_id_in_half(id, &n->sync_lo, &n->sync_hi);
}

/* Is rpc one of the sync's digests?  Then it is answered (or failed). */
static bool sync_answered(qdb_node *n, uint64_t rpc)
{
    bool found = false, waiting = false;
    for (unsigned i = 0; i < G_N_ELEMENTS(n->sync_rpc); i++) {
        if (n->sync_rpc[i] && n->sync_rpc[i] == rpc) {
            n->sync_rpc[i] = 0;
            found = true;
        }
        waiting = waiting || n->sync_rpc[i];
    }
    if (found && !waiting)
        n->syncing = false;
    return found;
}

void replica_on_digest_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    if (sync_answered(n, rpc->id))
        return;
    if (rpc->id != n->repair_rpc)
        return;
    n->repair_rpc = 0;
    if (!n->repair_active || m->content_len != (n->repair_buckets + 7) / 8) {
        n->repair_active = false; /* from the start, at a later round */
        return;
    }
    memset(n->repair_diff, 0, sizeof n->repair_diff);
    memcpy(n->repair_diff, m->content, m->content_len);
    n->repair_digested = true;
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
    if (rpc->kind == RPC_REPAIR || rpc->kind == RPC_DIGEST) {
        if (sync_answered(n, rpc->id))
            return; /* a replica that does not answer cannot serve a newer copy either */
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
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    bool placed = false;
    for (unsigned i = 0; i < k; i++)
        placed |= qdb_addr_eq(to[i].addr, t->peer.addr);
    /* In a row: an answer from it to another of our calls since the last
     * timeout starts the count again.  The copies' RTO backs off to many
     * seconds, and three frames lost over 20 s -- the replica answering a
     * digest in between -- struck a live node out of our successor list
     * at the end of a run, the ring wrong at the final check (K = 3 sweep
     * seeds 147 and 390 before this change). */
    if (qdb_rto_heard_at(&n->rto, t->peer.addr) > t->struck_at)
        t->strikes = 0;
    t->struck_at = node_now(n);
    qdb_time_us again = 0;
    if (++t->strikes < QDB_NODE_STRIKES) {
        if (placed)
            watch_doubt(n, t->peer.addr, 0, QDB_MSG_STABILIZE);
    } else if (placed) {
        again = watch_strike_at(n, t->peer.addr, 0, QDB_MSG_STABILIZE);
    }
    if (t->strikes < QDB_NODE_STRIKES || again) {
        /* a lost frame is not a failure: the same copies again, same rpc
         * (nor are more, while the replica answers our other calls or its
         * confirmation is under way -- then decided again when its window
         * ends or the confirmation times out, not a backed-off RTO later:
         * watch.c, "Suspicion" and "Confirmation"; a refused connection
         * has taken it out of our tables already, so it is no longer
         * placed) */
        send_copies(n, &t->peer, t->rpc, w->keys, RPC_REPLICATE);
        if (again)
            node_deadline(n, t->rpc, again);
        return;
    }
    /* Failed for placement: out of our tables, and the next successor
     * takes its place.  Not a target that is no longer one of our
     * replicas (a node joined between us since the write began): it
     * refuses the copies as not its to take (admission: we no longer name
     * it among our first K - 1 successors), and that silence is no death
     * -- struck out, a live node was missing from our successor list and,
     * through stabilization, from those of the nodes before us until our
     * next round put it back; the ring was not right for a round or more. */
    if (placed) {
        ring_forget(n, t->peer.addr);
        k = replica_targets(n, to, G_N_ELEMENTS(to));
    }
    t->rpc = 0;
    w->waiting--;
    for (unsigned i = 0; i < k; i++)
        if (!targeted(w, to[i].addr))
            add_target(n, w, &to[i]);
    if (w->waiting == 0)
        finish(n, wi);
}

/* ---- for stray.c: the digest and batches of an arc ------------------------- */

unsigned replica_digest(qdb_node *n, const qdb_id *lo, const qdb_id *hi, unsigned buckets,
                        uint64_t sums[QDB_DIGEST_BUCKETS_MAX])
{
    return digest_arc(n, lo, hi, buckets, sums);
}

bool replica_diff_has(const qdb_id *lo, const qdb_id *hi, unsigned buckets, const uint8_t *diff,
                      const uint8_t *key)
{
    arc_cut cut;
    cut_init(&cut, lo, hi, buckets);
    return diff_has(diff, cut_bucket(&cut, key));
}

bool replica_diff_batch(qdb_node *n, const qdb_id *lo, const qdb_id *hi, unsigned buckets,
                        const uint8_t *diff, qdb_id *cursor, GPtrArray *keys)
{
    arc_cut cut;
    cut_init(&cut, lo, hi, buckets);
    batch_ctx c = {keys, n->cfg.handover_batch, 0, n->cfg.max_content, false, &cut, diff};
    serve_iterate_arc(n, cursor, hi, take_key, &c);
    if (keys->len > 0) {
        gsize kl;
        memcpy(cursor->b, g_bytes_get_data(keys->pdata[keys->len - 1], &kl), QDB_ID_BYTES);
    }
    return c.full;
}

size_t replica_send(qdb_node *n, const qdb_peer *dst, uint64_t rpc, GPtrArray *keys,
                    rpc_kind kind)
{
    return send_copies(n, dst, rpc, keys, kind);
}

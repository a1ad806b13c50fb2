/* SPDX-License-Identifier: BSD-2-Clause */
/* Stray copies sent back to their owner and dropped, and the rejoin by
 * digest: the contract is in stray.h.
 *
 *   the walk      stray_round .. walk_next: which arc, whose, by FIND
 *   the offer     offer_digest, offer_next: digest, differing records, drop
 *   the owner     stray_on_digest
 *   the rejoin    stray_rejoin, stray_rejoin_wants
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"
#include "record.h"
#include "stray.h"

typedef enum stray_step {
    STRAY_IDLE,   /* no walk under way */
    STRAY_FIND,   /* looking up the owner of the next stray key */
    STRAY_DIGEST, /* the offer's DIGEST is out */
    STRAY_SEND    /* sending the differing records, one batch at a time */
} stray_step;

typedef struct stray_state {
    stray_step step;
    uint64_t shape;       /* our predecessor and replicas when last looked at */
    qdb_time_us again_at; /* the next walk */
    qdb_time_us at;       /* the next batch may leave then (cfg.repair_rate); 0: now */
    qdb_id cursor;        /* walked up to here, clockwise from our ID */
    qdb_id key;           /* the stray key being looked up */
    qdb_id lo, hi;        /* the offer's arc (lo, hi] */
    qdb_peer owner;
    uint64_t rpc;         /* the call in flight, or 0 */
    unsigned buckets;
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX]; /* ours, as offered (the first `buckets`) */
    uint8_t diff[QDB_DIGEST_BUCKETS_MAX / 8];
    qdb_id sent, next_sent; /* records sent up to (acknowledged), and with the batch out */
    bool more;              /* records of the arc are left after the batch out */
    bool resent;            /* the batch out went a second time */
    GPtrArray *keys;        /* GBytes: the batch out */
    /* rejoin: our hand-over to the predecessor, filtered by its digest */
    uint64_t rejoin_rpc;
    bool rejoin_known;
    qdb_time_us rejoin_until; /* the diff is trusted until then */
    qdb_peer rejoin_dst;
    qdb_id rejoin_lo;
    unsigned rejoin_buckets;
    uint8_t rejoin_diff[QDB_DIGEST_BUCKETS_MAX / 8];
} stray_state;

static stray_state *state(qdb_node *n)
{
    if (!n->stray) {
        n->stray = g_new0(stray_state, 1);
        n->stray->keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    }
    return n->stray;
}

void stray_free(qdb_node *n)
{
    if (!n->stray)
        return;
    g_ptr_array_free(n->stray->keys, TRUE);
    g_free(n->stray);
    n->stray = NULL;
}

/* The first key of a scan: its ID.  (A wrapping arc is two scans; the
 * second does not start once this one stopped the first: serve.c.) */
typedef struct first_ctx {
    qdb_id id;
    bool found;
} first_ctx;

static int first_id(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)v;
    (void)vl;
    first_ctx *c = arg;
    if (kl < QDB_ID_BYTES)
        return 0;
    memcpy(c->id.b, k, QDB_ID_BYTES);
    c->found = true;
    return 1;
}

/* The ID of the first key we hold in (a, b], or false. */
static bool first_key(qdb_node *n, const qdb_id *a, const qdb_id *b, qdb_id *out)
{
    first_ctx c = {.found = false};
    serve_iterate_arc(n, a, b, first_id, &c);
    *out = c.id;
    return c.found;
}

bool stray_has_records(qdb_node *n)
{
    qdb_id any;
    return first_key(n, &n->cfg.self.id, &n->cfg.self.id, &any);
}

/* ---- the walk ---------------------------------------------------------------- */

static void walk_end(qdb_node *n, qdb_time_us again)
{
    stray_state *s = n->stray;
    node_log(n, 4, "stray: walk ends (step %d)", (int)s->step);
    s->step = STRAY_IDLE;
    s->rpc = 0;
    s->again_at = node_now(n) + again;
    g_ptr_array_set_size(s->keys, 0);
}

static void offer_digest(qdb_node *n);
static void offer_next(qdb_node *n);
static void send_batch(qdb_node *n);

/* The owner of s->key is `owner`: offer it [key, owner]. */
static void owner_found(qdb_node *n, const qdb_peer *owner)
{
    stray_state *s = n->stray;
    if (qdb_addr_eq(owner->addr, n->cfg.self.addr) ||
        (n->has_pred && qdb_peer_eq(owner, &n->pred))) {
        /* ours, or our predecessor's: we replicate it (K > 1), and every
         * range after it */
        walk_end(n, QDB_ANTI_ENTROPY_US);
        return;
    }
    qdb_id_before(&s->lo, &s->key);
    if (!qdb_id_in_half(&owner->id, &s->lo, &n->pred.id)) {
        /* An owner past our predecessor: [key, owner] would run through
         * our own range, and the copies we dropped once it took them would
         * be our own entries.  Such an answer comes from a node whose
         * predecessor is wrong (two rings merging after a partition): ask
         * again once the ring has settled. */
        walk_end(n, QDB_STRAY_SETTLE_US);
        return;
    }
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "stray: offering copies to their owner %s", qdb_addr_format(owner->addr, a));
    s->owner = *owner;
    s->hi = owner->id;
    offer_digest(n);
}

/* Look up the owner of the next key we hold outside our range. */
static void walk_next(qdb_node *n)
{
    stray_state *s = n->stray;
    if (!first_key(n, &s->cursor, &n->pred.id, &s->key)) {
        walk_end(n, QDB_ANTI_ENTROPY_US); /* nothing more outside our range */
        return;
    }
    qdb_peer hop;
    int done = ring_route(n, &s->key, NULL, 0, &hop);
    if (done < 0 || qdb_addr_eq(hop.addr, n->cfg.self.addr)) {
        walk_end(n, QDB_STRAY_SETTLE_US);
        return;
    }
    if (done) {
        owner_found(n, &hop);
        return;
    }
    s->step = STRAY_FIND;
    qdb_msg m = {.type = QDB_MSG_FIND, .target = s->key};
    s->rpc = node_call(n, hop.addr, &m, RPC_STRAY_FIND, 0, 1, &hop);
}

void stray_round(qdb_node *n)
{
    stray_state *s = n->stray;
    qdb_time_us now = node_now(n);
    if (s && s->step == STRAY_SEND && s->rpc == 0 && s->at <= now) {
        s->at = 0; /* spent: the next batch leaves now */
        if (n->phase == PHASE_ACTIVE)
            offer_next(n);
        else
            walk_end(n, QDB_STRAY_SETTLE_US);
        return;
    }
    if (n->replication <= 1 || n->phase != PHASE_ACTIVE || !n->has_pred || n->awaiting_handover ||
        qdb_addr_eq(n->pred.addr, n->cfg.self.addr)) {
        if (s && s->step == STRAY_IDLE && s->again_at <= now)
            s->again_at = now + QDB_STRAY_SETTLE_US; /* not now: no wake-up until then */
        return;
    }
    s = state(n);
    uint64_t h = replica_shape(n);
    if (h != s->shape) {
        s->shape = h;
        s->again_at = now + QDB_STRAY_SETTLE_US; /* after the last change */
    }
    if (s->step != STRAY_IDLE || now < s->again_at)
        return;
    s->cursor = n->cfg.self.id;
    walk_next(n);
}

qdb_time_us stray_wake(const qdb_node *n)
{
    /* the walk's start too: rounds back off to minutes when quiet */
    const stray_state *s = n->stray;
    if (!s)
        return 0;
    if (s->step == STRAY_IDLE)
        return s->again_at;
    return s->step == STRAY_SEND && s->rpc == 0 ? s->at : 0;
}

/* ---- the offer --------------------------------------------------------------- */

static void offer_digest(qdb_node *n)
{
    stray_state *s = n->stray;
    unsigned buckets = replica_digest(n, &s->lo, &s->hi, 0, s->sums);
    if (buckets > QDB_STRAY_BUCKETS)
        buckets = replica_digest(n, &s->lo, &s->hi, QDB_STRAY_BUCKETS, s->sums);
    if (buckets == 0) {
        walk_end(n, QDB_STRAY_SETTLE_US); /* the store failed */
        return;
    }
    s->buckets = buckets;
    uint8_t wire[QDB_STRAY_BUCKETS * 8];
    for (unsigned b = 0; b < buckets; b++)
        qdb_be64_put(wire + 8 * b, s->sums[b]);
    qdb_msg m = {.type = QDB_MSG_DIGEST, .target = s->lo, .upto = s->hi, .content = wire,
                 .content_len = 8u * buckets};
    s->step = STRAY_DIGEST;
    s->rpc = node_call(n, s->owner.addr, &m, RPC_STRAY_DIGEST, 0, 0, &s->owner);
    n->stats.repair_bytes += 8u * buckets + 2 * QDB_ID_BYTES + 4;
}

static int collect_key(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    (void)v;
    (void)vl;
    g_ptr_array_add(arg, g_bytes_new(k, kl));
    return 0;
}

/* Every batch is acknowledged: drop our copies of the arc, if they are
 * still what we offered. */
static void offer_done(qdb_node *n)
{
    stray_state *s = n->stray;
    uint64_t now_sums[QDB_DIGEST_BUCKETS_MAX];
    if (replica_digest(n, &s->lo, &s->hi, s->buckets, now_sums) != s->buckets ||
        memcmp(now_sums, s->sums, s->buckets * sizeof now_sums[0]) != 0) {
        /* written meanwhile (we became a replica again?): the next walk */
        walk_end(n, QDB_STRAY_SETTLE_US);
        return;
    }
    GPtrArray *keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    serve_iterate_arc(n, &s->lo, &s->hi, collect_key, keys);
    for (guint i = 0; i < keys->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(keys->pdata[i], &kl);
        qdb_id id;
        if (kl >= QDB_ID_BYTES) {
            memcpy(id.b, k, QDB_ID_BYTES);
            if (qdb_node_owns(n, &id))
                continue; /* ours now (our predecessor moved back): never a stray */
        }
        if (n->storage->del(n->storage, k, kl) == QDB_OK)
            n->stats.stray_deleted++;
    }
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "stray: %u copies held for %s dropped", keys->len,
             qdb_addr_format(s->owner.addr, a));
    g_ptr_array_free(keys, TRUE);
    s->step = STRAY_IDLE;
    s->cursor = s->hi;
    walk_next(n);
}

/* The next batch of differing records to the owner, or the end. */
static void offer_next(qdb_node *n)
{
    stray_state *s = n->stray;
    g_ptr_array_set_size(s->keys, 0);
    s->next_sent = s->sent;
    s->more = replica_diff_batch(n, &s->lo, &s->hi, s->buckets, s->diff, &s->next_sent, s->keys);
    if (s->keys->len == 0) {
        offer_done(n);
        return;
    }
    s->resent = false;
    send_batch(n);
}

/* The batch out, to the owner. */
static void send_batch(qdb_node *n)
{
    stray_state *s = n->stray;
    s->rpc = n->next_rpc++;
    size_t len = replica_send(n, &s->owner, s->rpc, s->keys, RPC_STRAY);
    n->stats.repair_bytes += len;
    n->stats.repair_sent += s->keys->len;
    s->at = node_now(n) + (qdb_time_us)s->keys->len * QDB_US_PER_S / n->cfg.repair_rate;
}

void stray_on_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    if (rpc->kind == RPC_REJOIN_DIGEST) {
        stray_state *s = state(n);
        if (rpc->id != s->rejoin_rpc)
            return;
        s->rejoin_rpc = 0;
        if (!m || m->content_len != (s->rejoin_buckets + 7) / 8) {
            s->rejoin_known = false; /* no digest: the whole hand-over */
        } else {
            memset(s->rejoin_diff, 0, sizeof s->rejoin_diff);
            memcpy(s->rejoin_diff, m->content, m->content_len);
            s->rejoin_known = true;
        }
        if (n->has_pred && qdb_peer_eq(&n->pred, &s->rejoin_dst))
            serve_push(n, &s->rejoin_dst, true);
        return;
    }
    stray_state *s = n->stray;
    if (!s || rpc->id != s->rpc)
        return;
    s->rpc = 0;
    if (!m && rpc->kind == RPC_STRAY && !s->resent && n->phase == PHASE_ACTIVE) {
        /* The owner takes a batch from a stranger only once it checked it
         * (admission): the first batch goes unanswered while it does.
         * Sent once more now, not at the next walk, QDB_STRAY_SETTLE_US
         * later for each arc. */
        s->resent = true;
        send_batch(n);
        return;
    }
    if (!m) {
        walk_end(n, QDB_STRAY_SETTLE_US);
        return;
    }
    switch (rpc->kind) {
    case RPC_STRAY_FIND:
        if (m->type != QDB_MSG_FIND_REPLY) {
            walk_end(n, QDB_STRAY_SETTLE_US);
        } else if (m->flags & QDB_FIND_DONE) {
            owner_found(n, &m->peer);
        } else if (rpc->hops >= QDB_NODE_MAX_HOPS || qdb_addr_eq(m->peer.addr, rpc->dst) ||
                   qdb_addr_eq(m->peer.addr, n->cfg.self.addr)) {
            walk_end(n, QDB_STRAY_SETTLE_US); /* no progress */
        } else {
            qdb_msg q = {.type = QDB_MSG_FIND, .target = s->key};
            s->rpc = node_call(n, m->peer.addr, &q, RPC_STRAY_FIND, 0, rpc->hops + 1u, &m->peer);
        }
        break;
    case RPC_STRAY_DIGEST:
        if (m->type != QDB_MSG_DIGEST_REPLY || m->content_len != (s->buckets + 7) / 8) {
            /* refused: we replicate this owner's range, and every one after */
            walk_end(n, QDB_ANTI_ENTROPY_US);
            return;
        }
        memset(s->diff, 0, sizeof s->diff);
        memcpy(s->diff, m->content, m->content_len);
        s->step = STRAY_SEND;
        s->sent = s->lo;
        offer_next(n);
        break;
    case RPC_STRAY:
        s->sent = s->next_sent;
        if (!s->more) {
            offer_done(n);
        } else if (s->at <= node_now(n)) {
            s->at = 0;
            offer_next(n);
        } /* else the rate: stray_round goes on at s->at */
        break;
    default:
        break;
    }
}

/* ---- the owner --------------------------------------------------------------- */

bool stray_on_digest(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    /* An owner's repair digest is of its own range, up to its ID; an
     * offer (and a rejoin digest, from our successor) ends at ours. */
    if (!qdb_id_eq(&m->upto, &n->cfg.self.id))
        return false;
    unsigned buckets = (unsigned)(m->content_len / 8);
    qdb_peer to[QDB_REPLICATION_MAX];
    unsigned k = replica_targets(n, to, G_N_ELEMENTS(to));
    /* src is where the frame came from: over TCP, the sender's host on
     * another port (ring_same_host).  Two nodes on one host then look
     * alike: the offer is refused, and the copies stay -- the safe side. */
    bool replica = false;
    for (unsigned i = 0; i < k; i++)
        replica = replica || ring_same_host(src, to[i].addr);
    const qdb_peer *succ = ring_successor(n);
    if (n->awaiting_handover && succ && ring_same_host(src, succ->addr))
        return false; /* our successor's rejoin digest: replica.c answers it */
    /* An offer: taken when the arc is ours, from a node we do not copy
     * to (else its copies are no strays), and we are settled. */
    bool ours = n->has_pred && !qdb_addr_eq(n->pred.addr, n->cfg.self.addr) &&
                (qdb_id_eq(&m->target, &n->pred.id) ||
                 qdb_id_in_open(&m->target, &n->pred.id, &m->upto));
    uint8_t diff[QDB_DIGEST_BUCKETS_MAX / 8] = {0};
    size_t dl = QDB_DIGEST_BUCKETS_MAX / 8; /* a refusal */
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX];
    if (ours && !replica && n->phase == PHASE_ACTIVE && !n->awaiting_handover &&
        buckets <= QDB_STRAY_BUCKETS && (buckets & (buckets - 1)) == 0 &&
        replica_digest(n, &m->target, &m->upto, buckets, sums) == buckets) {
        dl = (buckets + 7) / 8;
        for (unsigned b = 0; b < buckets; b++)
            if (sums[b] != qdb_be64_get(m->content + 8 * b))
                diff[b / 8] |= (uint8_t)(1u << (b % 8));
    }
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "stray: an offer from %s %s", qdb_addr_format(src, a),
             dl == QDB_DIGEST_BUCKETS_MAX / 8 ? "refused" : "answered");
    qdb_msg r = {.type = QDB_MSG_DIGEST_REPLY, .rpc = m->rpc, .content = diff, .content_len = dl};
    node_send(n, src, &r);
    n->stats.repair_bytes += dl + 4;
    return true;
}

/* ---- the rejoin -------------------------------------------------------------- */

void stray_rejoin(qdb_node *n, const qdb_peer *c, bool stored)
{
    if (n->replication <= 1 || !stored) {
        stray_rejoin_done(n); /* an empty store wants everything */
        serve_push(n, c, true);
        return;
    }
    stray_state *s = state(n);
    if (s->rejoin_rpc)
        return; /* its answer pushes */
    qdb_time_us now = node_now(n);
    if (s->rejoin_known && qdb_peer_eq(&s->rejoin_dst, c) && now < s->rejoin_until) {
        serve_push(n, c, true); /* go on, filtered */
        return;
    }
    /* a new hand-over (or one that stalled): compare again */
    s->rejoin_known = false;
    s->rejoin_until = now + QDB_STRAY_SETTLE_US;
    s->rejoin_dst = *c;
    qdb_id first;
    if (!first_key(n, &n->cfg.self.id, &c->id, &first)) {
        serve_push(n, c, true); /* nothing to give: the empty last batch */
        return;
    }
    qdb_id_before(&s->rejoin_lo, &first);
    uint64_t sums[QDB_DIGEST_BUCKETS_MAX];
    unsigned buckets = replica_digest(n, &s->rejoin_lo, &c->id, 0, sums);
    if (buckets == 0) {
        serve_push(n, c, true);
        return;
    }
    s->rejoin_buckets = buckets;
    uint8_t wire[QDB_DIGEST_BUCKETS_MAX * 8];
    for (unsigned b = 0; b < buckets; b++)
        qdb_be64_put(wire + 8 * b, sums[b]);
    qdb_msg m = {.type = QDB_MSG_DIGEST, .target = s->rejoin_lo, .upto = c->id, .content = wire,
                 .content_len = 8u * buckets};
    s->rejoin_rpc = node_call(n, c->addr, &m, RPC_REJOIN_DIGEST, 0, 0, c);
    n->stats.repair_bytes += 8u * buckets + 2 * QDB_ID_BYTES + 4;
}

bool stray_rejoin_wants(const qdb_node *n, const uint8_t *key, size_t kl)
{
    const stray_state *s = n->stray;
    if (!s || !s->rejoin_known || n->phase != PHASE_ACTIVE || !n->has_pred ||
        !qdb_peer_eq(&n->pred, &s->rejoin_dst))
        return true;
    if (kl < QDB_ID_BYTES)
        return false;
    qdb_id id;
    memcpy(id.b, key, QDB_ID_BYTES);
    /* written after the digest, before its arc: the predecessor's
     * replicas' repair brings it */
    if (!qdb_id_in_half(&id, &s->rejoin_lo, &s->rejoin_dst.id))
        return false;
    return replica_diff_has(&s->rejoin_lo, &s->rejoin_dst.id, s->rejoin_buckets, s->rejoin_diff,
                            key);
}

void stray_rejoin_done(qdb_node *n)
{
    if (n->stray)
        n->stray->rejoin_known = false;
}

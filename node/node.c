/* SPDX-License-Identifier: BSD-2-Clause */
/* A qdb node: life cycle, frame dispatch, the RPC table and the one timer.
 *
 * Sections
 *   configuration and creation
 *   logging, time, sending
 *   the RPC table (calls in flight, their deadlines)
 *   entry points: recv, unreachable, tick
 *   introspection
 *
 * The node keeps a single wake-up armed in the clock seam: the earliest of
 * its next stabilization round and its RPC deadlines.  RPCs in flight are few
 * (one stabilize, one ping, one finger lookup, one hand-over batch, a notify),
 * so they live in a small array searched linearly: O(k) with k ~ 5.
 */
#define G_LOG_DOMAIN "qdb-node"

#include <stdarg.h>
#include <string.h>

#include "common/hindex.h"
#include "node_internal.h"
#include "stray.h"

/* ---- configuration and creation ----------------------------------------- */

void qdb_node_config_defaults(qdb_node_config *cfg)
{
    if (cfg->succlist_len == 0)
        cfg->succlist_len = QDB_DEFAULT_SUCCLIST;
    if (cfg->stabilize_fast == 0)
        cfg->stabilize_fast = QDB_DEFAULT_STABILIZE_FAST_US;
    if (cfg->stabilize_slow == 0)
        cfg->stabilize_slow = QDB_DEFAULT_STABILIZE_SLOW_US;
    if (cfg->rpc_timeout == 0)
        cfg->rpc_timeout = QDB_DEFAULT_RPC_TIMEOUT_US;
    if (cfg->watch_period == 0)
        cfg->watch_period = QDB_DEFAULT_WATCH_US;
    if (cfg->finger_cycle == 0)
        cfg->finger_cycle = QDB_DEFAULT_FINGER_CYCLE_US;
    if (cfg->handover_batch == 0)
        cfg->handover_batch = QDB_DEFAULT_HANDOVER_BATCH;
    if (cfg->dedup_capacity == 0)
        cfg->dedup_capacity = QDB_DEFAULT_DEDUP_CAPACITY;
    if (cfg->tombstone_grace == 0)
        cfg->tombstone_grace = QDB_DEFAULT_TOMBSTONE_GRACE_US;
    if (cfg->max_content == 0)
        cfg->max_content = QDB_DEFAULT_MAX_CONTENT;
    if (cfg->dedup_bytes == 0)
        cfg->dedup_bytes = QDB_DEFAULT_DEDUP_BYTES;
    if (cfg->repair_rate == 0)
        cfg->repair_rate = QDB_DEFAULT_REPAIR_RATE;
}

static bool seam_ok(int version, const char *what, char *err)
{
    if (version == QDB_SEAM_VERSION)
        return true;
    qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "%s seam version %d is not supported (want %d)",
                  what, version, QDB_SEAM_VERSION);
    return false;
}

qdb_node *qdb_node_new(const qdb_node_config *cfg, qdb_clock *clock, qdb_transport *transport,
                       qdb_random *random, qdb_storage *storage, char *err)
{
    qdb_node_config c = *cfg;
    qdb_node_config_defaults(&c);
    if (!seam_ok(clock->version, "clock", err) || !seam_ok(transport->version, "transport", err) ||
        !seam_ok(random->version, "random", err) || !seam_ok(storage->version, "storage", err))
        return NULL;
    if (c.succlist_len > QDB_SUCCLIST_MAX) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "successor list length %u exceeds %d",
                      c.succlist_len, QDB_SUCCLIST_MAX);
        return NULL;
    }
    if (c.replication > QDB_REPLICATION_MAX || c.replication > c.succlist_len + 1) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT,
                      "replication %u: want 1 to %d, and at most the successor list length + 1",
                      c.replication, QDB_REPLICATION_MAX);
        return NULL;
    }
    if (c.stabilize_fast > c.stabilize_slow) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "stabilize_fast must not exceed stabilize_slow");
        return NULL;
    }

    qdb_node *n = g_new0(qdb_node, 1);
    n->cfg = c;
    n->clock = clock;
    n->transport = transport;
    n->random = random;
    n->storage = storage;
    n->incarnation = random->next(random) | 1; /* never 0: 0 means "unknown" to clients */
    n->phase = PHASE_IDLE;
    n->succ = g_new0(qdb_peer, c.succlist_len);
    n->period = c.stabilize_fast;
    n->rpcs = g_array_new(FALSE, FALSE, sizeof(node_rpc));
    n->next_rpc = 1;
    n->ho_keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    n->next_finger = QDB_FINGER_LO;
    qdb_rto_init(&n->rto, QDB_NODE_RTO_PEERS, c.rpc_timeout, QDB_DEFAULT_RTO_FLOOR_US, QDB_DEFAULT_RTO_CEILING_US);
    return n;
}

void qdb_node_free(qdb_node *n)
{
    if (!n)
        return;
    serve_free(n);
    replica_free(n);
    stray_free(n);
    g_array_free(n->rpcs, TRUE);
    g_ptr_array_free(n->ho_keys, TRUE);
    if (n->gc_cursor)
        g_byte_array_free(n->gc_cursor, TRUE);
    g_free(n->join_peers);
    g_free(n->refusal);
    g_free(n->succ);
    qdb_rto_free(&n->rto);
    g_free(n);
}

void qdb_node_start(qdb_node *n, const qdb_addr *peers, size_t n_peers)
{
    g_return_if_fail(n->phase == PHASE_IDLE);
    n->n_join_peers = MIN(n_peers, (size_t)QDB_JOIN_PEERS);
    n->join_peers = g_new0(qdb_addr, QDB_JOIN_PEERS);
    if (n_peers)
        memcpy(n->join_peers, peers, n->n_join_peers * sizeof(*peers));
    n->started_at = node_now(n);
    ring_start(n);
    watch_start(n);
    node_rearm(n);
}

void qdb_node_start_warm(qdb_node *n, const qdb_peer *pred, const qdb_peer *succ,
                         unsigned n_succ, qdb_node_owner_fn owner_of, void *arg)
{
    g_return_if_fail(n->phase == PHASE_IDLE && n_succ >= 1);
    n->join_peers = g_new0(qdb_addr, QDB_JOIN_PEERS);
    n->started_at = node_now(n);
    ring_start_warm(n, pred, succ, n_succ, owner_of, arg);
    watch_start(n);
    node_rearm(n);
}

void qdb_node_leave(qdb_node *n)
{
    if (n->phase != PHASE_ACTIVE) {
        n->phase = PHASE_LEFT;
        return;
    }
    const qdb_peer *s = ring_successor(n);
    if (!s || qdb_peer_eq(s, &n->cfg.self)) { /* alone: nobody to give entries to */
        n->phase = PHASE_LEFT;
        return;
    }
    node_log(n, 3, "leaving: handing entries to successor");
    n->phase = PHASE_LEAVING;
    serve_push(n, s, true);
    node_rearm(n);
}

/* Checked at the end of every entry point, not where a call failed: the
 * handlers finish on a consistent state first.  One indirect call when the
 * store is healthy (none for a store without usage()). */
void node_storage_check(qdb_node *n)
{
    if (n->storage_failed || !n->storage->usage || n->phase == PHASE_IDLE ||
        n->phase == PHASE_LEFT)
        return;
    qdb_storage_usage u;
    n->storage->usage(n->storage, &u);
    if (!u.failed)
        return;
    n->storage_failed = true;
    node_log(n, 1, "storage failed beyond repair: leaving the ring without hand-over, so that "
                   "the neighbours take over the arc");
    serve_leave_failed(n);
}

bool qdb_node_storage_failed(const qdb_node *n)
{
    return n->storage_failed;
}

bool qdb_node_left(const qdb_node *n)
{
    return n->phase == PHASE_LEFT;
}

bool qdb_node_leaving(const qdb_node *n)
{
    return n->phase == PHASE_LEAVING || n->phase == PHASE_LEFT;
}

qdb_time_us qdb_node_uptime(const qdb_node *n)
{
    if (n->phase == PHASE_IDLE)
        return 0;
    return n->clock->now(n->clock) - n->started_at;
}

/* ---- logging, time, sending ---------------------------------------------- */

void node_log_at(const qdb_node *n, int level, const char *fmt, ...)
{
    if (level > n->cfg.log_level)
        return;
    char addr[QDB_ADDR_STRLEN];
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    GLogLevelFlags lv = level <= 1 ? G_LOG_LEVEL_CRITICAL
                      : level == 2 ? G_LOG_LEVEL_WARNING
                      : level == 3 ? G_LOG_LEVEL_INFO
                                   : G_LOG_LEVEL_DEBUG;
    g_log(G_LOG_DOMAIN, lv, "%s %s", qdb_addr_format(n->cfg.self.addr, addr), msg);
    g_free(msg);
}

qdb_time_us node_now(const qdb_node *n)
{
    return n->clock->now(n->clock);
}

/* Frames up to this size are encoded on the stack (nearly all of them: a
 * STABILIZE_REPLY with 32 successors is 1.3 KB); hand-over batches and other
 * big ones in a GByteArray freed after the send.  perf at 10,000 simulated
 * nodes: a per-node encode buffer cost two cache misses a frame. */
#define NODE_SEND_STACK 2048

int node_send(qdb_node *n, qdb_addr dst, const qdb_msg *m)
{
    uint8_t buf[NODE_SEND_STACK];
    const uint8_t *frame = buf;
    size_t len = 0;
    GByteArray *big = NULL;
    int rc = qdb_msg_encode_buf(m, buf, sizeof buf, &len);
    if (rc == QDB_E_OVERSIZED) {
        big = g_byte_array_new();
        rc = qdb_msg_encode(m, big);
        frame = big->data;
        len = big->len;
    }
    if (rc != QDB_OK) {
        node_log(n, 1, "cannot encode %s: %s", qdb_msg_type_name(m->type), qdb_strerror(rc));
    } else {
        n->stats.frames_out++;
        rc = n->transport->send(n->transport, dst, frame, len);
    }
    if (big)
        g_byte_array_free(big, TRUE);
    return rc;
}

int node_send_reply(qdb_node *n, qdb_addr dst, uint64_t seq, int status, const uint8_t *payload,
                    size_t len)
{
    uint8_t buf[NODE_SEND_STACK];
    size_t flen;
    if (qdb_reply_encode_buf(seq, status, payload, len, buf, sizeof buf, &flen) != QDB_OK) {
        /* too big for the stack (or refused): the general path says why */
        qdb_msg r = {.type = QDB_MSG_REPLY, .seq = seq, .status = status, .content = payload,
                     .content_len = len};
        return node_send(n, dst, &r);
    }
    n->stats.frames_out++;
    return n->transport->send(n->transport, dst, buf, flen);
}

/* ---- the RPC table --------------------------------------------------------- */

uint64_t node_call(qdb_node *n, qdb_addr dst, qdb_msg *m, rpc_kind kind, unsigned arg,
                   unsigned hops, const qdb_peer *peer)
{
    node_rpc r = {
        .id = m->rpc ? m->rpc : n->next_rpc++,
        .sent = node_now(n),
        .deadline = node_now(n) + qdb_rto_timeout(&n->rto, dst),
        .dst = dst,
        .kind = (uint16_t)kind,
        .arg = (uint16_t)arg,
        .hops = (uint16_t)hops,
    };
    if (peer)
        r.peer = *peer;
    m->rpc = r.id;
    if (node_send(n, dst, m) != QDB_OK)
        r.deadline = node_now(n); /* fails at the next tick, like a timeout */
    g_array_append_val(n->rpcs, r);
    node_rearm(n);
    return r.id;
}

void node_expect(qdb_node *n, qdb_addr dst, uint64_t id, rpc_kind kind, const qdb_peer *peer)
{
    node_rpc r = {
        .id = id,
        .sent = node_now(n),
        .deadline = node_now(n) + qdb_rto_timeout(&n->rto, dst),
        .dst = dst,
        .kind = (uint16_t)kind,
        .peer = *peer,
    };
    g_array_append_val(n->rpcs, r);
    node_rearm(n);
}

bool node_rpc_pending_to(const qdb_node *n, rpc_kind kind, qdb_addr dst)
{
    for (guint i = 0; i < n->rpcs->len; i++) {
        const node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind == kind && qdb_addr_eq(r->dst, dst))
            return true;
    }
    return false;
}

void node_cancel(qdb_node *n, qdb_addr dst, rpc_kind kind)
{
    for (guint i = 0; i < n->rpcs->len;) {
        const node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind == kind && qdb_addr_eq(r->dst, dst))
            g_array_remove_index(n->rpcs, i); /* keeps order */
        else
            i++;
    }
}

void node_deadline(qdb_node *n, uint64_t id, qdb_time_us at)
{
    for (guint i = 0; i < n->rpcs->len; i++) {
        node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->id == id)
            r->deadline = at;
    }
    node_rearm(n);
}

bool node_rpc_pending(const qdb_node *n, rpc_kind kind)
{
    for (guint i = 0; i < n->rpcs->len; i++)
        if (g_array_index(n->rpcs, node_rpc, i).kind == kind)
            return true;
    return false;
}

static bool rpc_take(qdb_node *n, uint64_t id, qdb_addr src, node_rpc *out)
{
    for (guint i = 0; i < n->rpcs->len; i++) {
        node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->id == id && qdb_addr_eq(r->dst, src)) {
            *out = *r;
            g_array_remove_index(n->rpcs, i); /* keeps order: the table stays deterministic */
            return true;
        }
    }
    return false;
}

/* The round trip of an answered RPC.  Not hand-over batches: their
 * answer waits for the batch to be stored, which is not the network. */
static void rtt_sample(qdb_node *n, const node_rpc *r)
{
    if (r->kind != RPC_HANDOVER && r->kind != RPC_REPLICATE && r->kind != RPC_REPAIR)
        qdb_rto_sample(&n->rto, r->dst, node_now(n) - r->sent);
}

/* An answer to an RPC that already timed out still measures the peer:
 * without it a peer slower than its RTO would never be learned. */
static void late_answer(qdb_node *n, uint64_t id, qdb_addr src)
{
    for (unsigned i = 0; i < QDB_NODE_LATE; i++) {
        node_rpc *r = &n->late[i];
        if (r->id == id && qdb_addr_eq(r->dst, src)) {
            rtt_sample(n, r);
            qdb_rto_heard(&n->rto, src, node_now(n)); /* slow, not dead */
            r->id = 0;
            return;
        }
    }
}

static void rpc_timed_out(qdb_node *n, const node_rpc *r)
{
    /* Back off once per window of calls, as TCP does per retransmission:
     * only a call that waited the peer's whole current RTO doubles it.
     * Each timeout doubled it before, so a burst of calls in flight to one
     * peer (a replica's copies under a client's writes) that a short loss
     * or a busy moment left unanswered took its RTO to the 60 s ceiling at
     * once -- and the next STABILIZE to it, its answer lost, held the
     * successor list for a minute (replicas-k3 sweep, seed 8). */
    if (r->deadline - r->sent >= qdb_rto_timeout(&n->rto, r->dst))
        qdb_rto_backoff(&n->rto, r->dst);
    n->late[n->late_next++ % QDB_NODE_LATE] = *r;
}

static void rpc_failed(qdb_node *n, const node_rpc *r)
{
    n->stats.rpc_timeouts++;
    if (r->kind == RPC_HANDOVER)
        serve_on_handover_failed(n, r);
    else if (r->kind == RPC_REPLICATE || r->kind == RPC_REPAIR || r->kind == RPC_DIGEST)
        replica_on_failed(n, r);
    else if (r->kind >= RPC_STRAY_FIND && r->kind <= RPC_REJOIN_DIGEST)
        stray_on_reply(n, r, NULL);
    ring_on_failure(n, r);
}

void node_rearm(qdb_node *n)
{
    if (n->phase == PHASE_IDLE || n->phase == PHASE_LEFT)
        return;
    qdb_time_us next = MIN(n->round_at, n->watch_at);
    if (n->repair_at && n->repair_at < next)
        next = n->repair_at; /* the next repair batch (replica.c's rate) */
    qdb_time_us stray_at = stray_wake(n);
    if (stray_at && stray_at < next)
        next = stray_at; /* the next stray batch (the same rate) */
    for (guint i = 0; i < n->rpcs->len; i++) {
        qdb_time_us d = g_array_index(n->rpcs, node_rpc, i).deadline;
        if (d < next)
            next = d;
    }
    if (next != n->armed) {
        n->armed = next;
        n->clock->arm(n->clock, next);
    }
}

/* ---- entry points ---------------------------------------------------------- */

static void on_reply(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    node_rpc r;
    if (!rpc_take(n, m->rpc, src, &r)) {
        late_answer(n, m->rpc, src); /* late, duplicated or unknown: harmless */
        return;
    }
    rtt_sample(n, &r);
    qdb_rto_heard(&n->rto, src, node_now(n));
    if (r.kind >= RPC_STRAY_FIND && r.kind <= RPC_REJOIN_DIGEST) {
        stray_on_reply(n, &r, m);
        return;
    }
    if (m->type == QDB_MSG_HANDOVER_ACK) {
        if (r.kind == RPC_HANDOVER)
            serve_on_handover_ack(n, &r);
        else
            replica_on_ack(n, &r);
        return;
    }
    if (m->type == QDB_MSG_DIGEST_REPLY) {
        if (r.kind == RPC_DIGEST)
            replica_on_digest_reply(n, &r, m);
        return;
    }
    ring_on_reply(n, &r, m);
}

void qdb_node_recv(qdb_node *n, qdb_addr src, const uint8_t *frame, size_t len)
{
    if (n->phase == PHASE_IDLE || n->phase == PHASE_LEFT)
        return;
    qdb_msg m;
    int rc = qdb_msg_decode(frame, len, &m);
    n->stats.frames_in++;
    if (rc != QDB_OK) {
        n->stats.bad_frames++;
        node_log(n, 2, "dropped a bad frame (%zu bytes): %s", len, qdb_strerror(rc));
        /* A request is answered, so the client learns why at once. */
        int type;
        uint64_t seq, alias_len;
        if (qdb_request_peek(frame, len, &type, &seq, &alias_len) == QDB_OK && seq != 0) {
            qdb_msg r = {.type = QDB_MSG_REPLY, .seq = seq,
                         .status = alias_len > QDB_MAX_ALIAS ? QDB_E_ALIAS_TOO_LONG
                                                            : QDB_E_MALFORMED};
            node_send(n, src, &r);
        }
        return;
    }
    if (!serve_class_ok(n, src, &m))
        return;
    watch_heard(n, src, m.type);
    if (qdb_msg_is_request(m.type)) {
        serve_request(n, src, &m);
        node_storage_check(n);
        node_rearm(n);
        return;
    }
    switch (m.type) {
    case QDB_MSG_HELLO:
        serve_hello(n, src, &m);
        break;
    case QDB_MSG_FIND:
        n->stats.finds++;
        ring_on_find(n, src, &m);
        break;
    case QDB_MSG_STATUS:
        status_on_status(n, src, &m);
        break;
    case QDB_MSG_STOP:
        status_on_stop(n, src, &m);
        break;
    case QDB_MSG_FORGET:
        forget_on_forget(n, src, &m);
        break;
    case QDB_MSG_DIGEST:
        replica_on_digest(n, src, &m);
        break;
    case QDB_MSG_STABILIZE:
        ring_on_stabilize(n, src, &m);
        break;
    case QDB_MSG_NOTIFY:
        ring_on_notify(n, src, &m);
        break;
    case QDB_MSG_PING: {
        /* Only a ring member answers, as a STABILIZE is answered: a node
         * back at a member's address after a crash, still joining, vouched
         * for the member it replaces -- whose predecessor then never struck
         * it out and kept answering the joiner's lookups with its own
         * address, and the join never ended (K = 3 sweep seed 1 with
         * watch.c's confirmations: 86 s). */
        if (n->phase != PHASE_ACTIVE && n->phase != PHASE_LEAVING)
            break;
        qdb_msg pong = {.type = QDB_MSG_PONG, .rpc = m.rpc};
        node_send(n, src, &pong);
        break;
    }
    case QDB_MSG_HANDOVER:
        serve_on_handover(n, src, &m);
        break;
    case QDB_MSG_LEAVE:
        ring_on_leave(n, src, &m);
        break;
    case QDB_MSG_FIND_REPLY:
    case QDB_MSG_STABILIZE_REPLY:
    case QDB_MSG_PONG:
    case QDB_MSG_HANDOVER_ACK:
    case QDB_MSG_DIGEST_REPLY:
        on_reply(n, src, &m);
        break;
    default: /* REPLY: only clients get those */
        n->stats.bad_frames++;
        break;
    }
    replica_kick(n);
    node_storage_check(n);
    node_rearm(n);
}

/* Fail every call to dst now rather than at its deadline; forget dst
 * first if it is dead. */
static void fail_calls(qdb_node *n, qdb_addr dst, bool dead)
{
    if (n->phase == PHASE_IDLE || n->phase == PHASE_LEFT)
        return;
    /* Collect first: the handlers may start new calls. */
    GArray *failed = g_array_new(FALSE, FALSE, sizeof(node_rpc));
    for (guint i = 0; i < n->rpcs->len;) {
        node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (qdb_addr_eq(r->dst, dst)) {
            g_array_append_val(failed, *r);
            g_array_remove_index(n->rpcs, i);
        } else {
            i++;
        }
    }
    if (dead)
        ring_forget(n, dst);
    for (guint i = 0; i < failed->len; i++)
        rpc_failed(n, &g_array_index(failed, node_rpc, i));
    g_array_free(failed, TRUE);
    replica_kick(n);
    node_storage_check(n);
    node_rearm(n);
}

void qdb_node_unreachable(qdb_node *n, qdb_addr dst)
{
    fail_calls(n, dst, true);
}

void qdb_node_reset(qdb_node *n, qdb_addr dst)
{
    fail_calls(n, dst, false);
}

void qdb_node_tick(qdb_node *n)
{
    if (n->phase == PHASE_IDLE || n->phase == PHASE_LEFT)
        return;
    qdb_time_us now = node_now(n);
    n->armed = 0; /* the backend's wake-up is spent */
    GArray *failed = NULL;
    for (guint i = 0; i < n->rpcs->len;) {
        node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->deadline <= now) {
            if (!failed)
                failed = g_array_new(FALSE, FALSE, sizeof(node_rpc));
            g_array_append_val(failed, *r);
            g_array_remove_index(n->rpcs, i);
        } else {
            i++;
        }
    }
    if (failed) {
        for (guint i = 0; i < failed->len; i++) {
            node_rpc *r = &g_array_index(failed, node_rpc, i);
            node_log(n, 4, "rpc %" G_GUINT64_FORMAT " kind %u timed out", r->id, r->kind);
            rpc_timed_out(n, r);
            rpc_failed(n, r);
        }
        g_array_free(failed, TRUE);
    }
    if (now >= n->round_at && (n->phase == PHASE_ACTIVE || n->phase == PHASE_JOINING)) {
        serve_collect_expired(n); /* before the round, as ever: it draws no randomness */
        ring_round(n);
        version_collect(n); /* due a few times a grace period: no timer of its own */
        replica_round(n);
        stray_round(n);
        forget_round(n);
        /* Rounds never slower than the watch (stabilize_slow <=
         * watch_period, as in 1-s-round scale runs): a look of the watch
         * due before the next round is taken now, early rather than late,
         * and the watch needs no timer event of its own (watch.c, "Cost").
         * Not with rounds that back off: earlier looks there moved the
         * frames of small scenarios that are sensitive to them. */
        if (n->cfg.stabilize_slow <= n->cfg.watch_period && n->watch_at <= n->round_at)
            n->watch_at = now;
    } else if (n->repair_at && now >= n->repair_at) {
        n->repair_at = 0; /* spent, whether or not a batch can leave now */
        if (n->phase == PHASE_ACTIVE)
            replica_round(n); /* the rate lets the next repair batch go */
    }
    else if (now >= n->round_at)
        n->round_at = now + ring_jitter(n, n->period);
    if (stray_wake(n) && now >= stray_wake(n))
        stray_round(n); /* the rate lets the next stray batch go */
    watch_tick(n);
    replica_kick(n);
    node_storage_check(n); /* also a failure met outside the node: a checkpoint */
    node_rearm(n);
}

static void inbound_recv(void *n, qdb_addr src, const uint8_t *frame, size_t len)
{
    qdb_node_recv(n, src, frame, len);
}

static void inbound_unreachable(void *n, qdb_addr dst)
{
    qdb_node_unreachable(n, dst);
}

static void inbound_reset(void *n, qdb_addr dst)
{
    qdb_node_reset(n, dst);
}

static void inbound_tick(void *n)
{
    qdb_node_tick(n);
}

void qdb_node_gone(qdb_node *n, qdb_addr src)
{
    serve_gone(n, src);
}

static void inbound_gone(void *n, qdb_addr src)
{
    qdb_node_gone(n, src);
}

/* What nearly every event reads beyond the node's first lines (which the
 * simulator prefetches a step ahead): the successor list (the watch looks
 * at every frame's sender), the RPC table, the round-trip table's keys and
 * the storage seam.  Asked for together, the misses overlap instead of
 * following one another; the RPC table's entries only at pass 1, once its
 * header (a block of its own) has arrived. */
#define FINGER_HINTS 4

static void inbound_prefetch(const void *core, int pass)
{
    const qdb_node *n = core;
    if (pass == 0) {
        __builtin_prefetch(n->succ);
        /* the round-trip table's keys and stamps, 12 bytes a peer */
        for (size_t at = 0; at < QDB_NODE_RTO_PEERS * 12 + 63; at += 64)
            __builtin_prefetch((const char *)n->rto.key + at);
        __builtin_prefetch(&n->storage->usage); /* node_storage_check, every event */
        __builtin_prefetch(n->rpcs);
        /* ring_route (a FIND) reads the distinct fingers -- about log2 N,
         * the rest repeat the one above (finger_same) -- from the top down
         * to the closest preceding the target, and the suspects.  Only the
         * top FINGER_HINTS: a FIND, once a third of the events at 10,000
         * nodes, is now one in ten or fewer (fix-fingers by time), and the
         * lines of all of them, asked for at every event, cost warm10k more
         * than they saved (perf: 3% of its time). */
        uint64_t m = n->finger_valid & ~n->finger_same;
        for (int k = 0; m && k < FINGER_HINTS; k++) {
            int j = 63 - __builtin_clzll(m);
            m &= ~(UINT64_C(1) << j);
            const qdb_peer *f = &n->finger[j];
            __builtin_prefetch(f);
            __builtin_prefetch((const char *)(f + 1) - 1); /* 40 bytes: maybe two lines */
        }
        if (n->n_suspects)
            __builtin_prefetch(n->suspects);
    } else if (n->rpcs->len) {
        __builtin_prefetch(n->rpcs->data);
    }
}

/* What a round reads beyond the lines above, a field in a line of its own
 * each (perf at 10,000 nodes, 1-s rounds: a round met them one cache miss
 * after another; asked for together, the misses overlap).  In the order the
 * round reads them (qdb_node_tick). */
static void inbound_prefetch_tick(const void *core)
{
    const qdb_node *n = core;
    __builtin_prefetch(&n->storage->iterate); /* expiry collection, tombstone sweep */
    __builtin_prefetch(&n->paused);           /* ring_round */
    __builtin_prefetch(&n->pred);
    __builtin_prefetch(&n->has_cand_next);    /* next_candidate */
    __builtin_prefetch(&n->hint_owed);        /* resend_hint */
    __builtin_prefetch(&n->n_remembered);     /* probe_remembered */
    __builtin_prefetch(&n->finger_budget);    /* fix_fingers */
    __builtin_prefetch(&n->collect_at);       /* version_collect */
    __builtin_prefetch(&n->repair_rpc);       /* replica_round */
    __builtin_prefetch(&n->awaiting_handover);
    __builtin_prefetch(&n->has_orphan);       /* forget_round */
}

static void inbound_ahead(void *n, qdb_addr src, const uint8_t *frame, size_t len)
{
    serve_ahead(n, src, frame, len);
}

const qdb_inbound qdb_node_inbound = {
    .recv = inbound_recv,
    .unreachable = inbound_unreachable,
    .tick = inbound_tick,
    .gone = inbound_gone,
    .prefetch = inbound_prefetch,
    .ahead = inbound_ahead,
    .reset = inbound_reset,
    .prefetch_tick = inbound_prefetch_tick,
};

/* ---- introspection --------------------------------------------------------- */

const qdb_peer *qdb_node_self(const qdb_node *n)
{
    return &n->cfg.self;
}

const qdb_peer *qdb_node_successor(const qdb_node *n)
{
    return ring_successor(n);
}

const qdb_peer *qdb_node_predecessor(const qdb_node *n)
{
    return n->has_pred ? &n->pred : NULL;
}

unsigned qdb_node_succlist(const qdb_node *n, qdb_peer *out, unsigned max)
{
    unsigned k = MIN(max, n->n_succ);
    memcpy(out, n->succ, k * sizeof(*out));
    return k;
}

const qdb_peer *qdb_node_finger(const qdb_node *n, unsigned i)
{
    if (i >= QDB_ID_BITS)
        return NULL;
    if (i < QDB_FINGER_LO)
        return ring_successor(n);
    unsigned j = i - QDB_FINGER_LO;
    return (n->finger_valid >> j) & 1 ? &n->finger[j] : NULL;
}

void qdb_node_pause_maintenance(qdb_node *n, bool paused)
{
    n->paused = paused;
    if (!paused) {
        /* Back to the fast period: the ring may have changed a lot. */
        ring_set_changed(n);
        node_rearm(n);
    }
}

bool qdb_node_is_joining(const qdb_node *n)
{
    return n->phase == PHASE_JOINING || n->awaiting_handover;
}

void qdb_node_prefetch_ring(const qdb_node *n, int pass)
{
    if (pass == 0) {
        __builtin_prefetch(n);           /* phase */
        __builtin_prefetch(&n->n_succ);  /* succ, n_succ, has_pred */
        __builtin_prefetch(&n->pred);
        __builtin_prefetch((const char *)(&n->pred + 1) - 1);
        __builtin_prefetch(&n->awaiting_handover);
    } else {
        const char *s = (const char *)n->succ;
        size_t len = n->n_succ * sizeof(qdb_peer);
        for (size_t at = 0; at < len; at += 64)
            __builtin_prefetch(s + at);
        if (len)
            __builtin_prefetch(s + len - 1);
    }
}

bool qdb_node_is_stable(const qdb_node *n)
{
    return n->phase == PHASE_ACTIVE && n->has_pred && !n->awaiting_handover &&
           n->quiet_rounds >= 2;
}

int qdb_node_route(const qdb_node *n, const qdb_id *target, qdb_peer *out)
{
    return ring_route(n, target, NULL, 0, out) == 1;
}

bool qdb_node_owns(const qdb_node *n, const qdb_id *id)
{
    return n->phase == PHASE_ACTIVE && n->has_pred && !n->awaiting_handover &&
           qdb_id_in_half(id, &n->pred.id, &n->cfg.self.id);
}

bool node_serves(const qdb_node *n)
{
    return n->phase == PHASE_ACTIVE && n->has_pred && !n->awaiting_handover && watch_leased(n);
}

bool qdb_node_serving(const qdb_node *n, qdb_id *lo)
{
    if (!node_serves(n))
        return false;
    *lo = n->pred.id;
    return true;
}

uint64_t qdb_node_incarnation(const qdb_node *n)
{
    return n->incarnation;
}

size_t qdb_node_memory(const qdb_node *n)
{
    size_t b = sizeof(*n) + n->cfg.succlist_len * sizeof(qdb_peer);
    b += sizeof(GArray) + n->rpcs->len * sizeof(node_rpc);
    b += sizeof(GPtrArray) + qdb_rto_memory(&n->rto);
    if (n->sessions)
        b += 64 + g_hash_table_size(n->sessions) * 32;
    if (n->classes)
        b += 64 + g_hash_table_size(n->classes) * 32;
    if (n->dedup)
        b += 64 + qdb_hindex_count(n->dedup) * 80;
    if (n->req_counts)
        b += QDB_REQ_TYPES * QDB_REQ_RESULTS * sizeof(uint64_t);
    return b;
}

const qdb_node_stats *qdb_node_get_stats(const qdb_node *n)
{
    return &n->stats;
}


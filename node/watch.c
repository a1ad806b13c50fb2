/* SPDX-License-Identifier: BSD-2-Clause */
/* Watching the two neighbours between stabilization rounds.
 *
 * A quiet ring backs its rounds off to stabilize_slow (30 s, drawn in
 * [15 s, 45 s)): a crash met by no lookup was seen only at its
 * predecessor's next round.  Chord's check_predecessor (ToN 2003, Fig. 7)
 * ran once a round too.  Here every node looks at its successor and its
 * predecessor every watch_period (1 s, drawn in [0.5 s, 1.5 s) from the
 * node's generator), and PINGs a neighbour it has not heard from within the
 * period:
 *  - a crashed process is refused one round trip later (a TCP reset, and the
 *    simulator's crash = process): the successor list takes over at once
 *    (ring.c: ring_forget, then stabilize with the next successor, which
 *    is notified), the predecessor is cleared and learned again;
 *  - a silent host costs three timeouts in a row (QDB_NODE_STRIKES), each
 *    the peer's adaptive RTO (rto.h), doubled by each back-off.
 *
 * Cost.  Any frame from a neighbour counts as hearing from it, except a
 * PONG: the answer to our own PING must not excuse the next one, or a node
 * would probe only every other period.  In a quiet ring a node's PING to its
 * successor is also what that successor hears from its predecessor, so each
 * link carries about one PING and one PONG a period: ~2 frames sent per node
 * per second at the default period (plus the predecessor PINGs a jittered
 * period leaves uncovered, ~1 in 8 looks).  Rounds that talk to a neighbour
 * anyway (stabilize) replace its PING.
 *
 * The predecessor's replacement.  When the predecessor P dies, its own
 * predecessor Q finds out (its watch), takes our node as successor and
 * notifies us -- while we may still hold P, which outranks Q, so Chord
 * refuses Q until a later round.  Instead we keep Q's refused NOTIFY (the
 * contender), check P at once, and replay the NOTIFY the moment P is found
 * dead: the ring is whole one check after Q's, not a round later.
 *
 * Suspicion needs time as well as strikes (watch_suspect_at).  Three timeouts
 * in a row are not enough on their own: at 5 % frame loss a round trip
 * fails one time in ten, three in a row one time in a thousand, and a node
 * starts such a series many times a minute (its watch, rounds, probes of
 * peers clients report dead, copies to its replicas) -- in a 24-node hive
 * under loss that struck a live neighbour out a few times a run.  So a
 * peer is struck out only after QDB_NODE_STRIKES timeouts in a row *and*
 * QDB_SUSPECT_WINDOW (defaults.h: 5/4 of rpc_timeout, 2.5 s; qdbd 1.25 s)
 * without evidence that it lives: an answer from it to any of our calls,
 * on time or late (rto.h, qdb_rto_heard) -- or, for our predecessor, any
 * frame it sends us (its STABILIZE, NOTIFY, PING).  Until then the series
 * goes on, one more strike at a time.  Only
 * answers vouch for other peers: that a peer reaches us does not mean it
 * hears us (a one-way partition).  A crashed host is silent anyway: the
 * strikes on it take longer than the window, so the window costs no time
 * there (crash-one-64.scn's silent host: right again in 4.3 s, 5.0 s
 * before, thanks to the refill of ring_forget; crash-one-1024.scn 6.0 s as
 * before).  With the window at 3 s the 64-node one took 5.8 s.
 *
 * Confirmation.  Strikes and the window still struck live neighbours out:
 * the window counts silence, not questions, and a series backs its RTO off,
 * so its last call can be the only one asked in the window -- after a
 * late answer, two lost round trips struck a successor out (K = 3 sweep
 * seeds 265, 297, 972: re-admitted 0.3 s later, but the list without it
 * had gone back 8 predecessors by the final check), and after a write's
 * copy lost three times over 11 s with nothing else asked meanwhile, a
 * replica (seed 565).  So each strike also asks the peer once more, the
 * confirmation (RPC_CONFIRM; the series' question: a STABILIZE, which
 * only a ring member answers, or the series' PING), one in flight at a
 * time, and a peer is struck out only once QDB_CONFIRMS_FAILED
 * confirmations sent since it last vouched for itself timed out too
 * (watch_strike_at).  Until then the series goes on and is decided again
 * when the pending confirmation times out.  A live peer must now lose
 * five round trips or more in a row; a dead one costs no more time, since
 * the confirmations run beside the strikes (the second one ends with the
 * last strike).  Cost: a frame and its answer per timeout of a series.
 * A node that restarted at a member's address and is still joining
 * answers neither question (node.c answers a PING only in the ring), so
 * it vouches for nobody.
 *
 * Lease (K > 1).  Suspicion can still be wrong: a predecessor P that is
 * slow or loses frames for longer than the window is struck out by its
 * successor S, which then takes P's predecessor's NOTIFY and serves P's
 * range -- while P, alive, serves it too, knowing nothing of it.  Each
 * acknowledged writes the other does not hold, and once S gives the range
 * back (P notifies it again) P served its old copies: stale reads of
 * acknowledged writes (scenarios/replicas-k3-two-owners.scn).  So P serves
 * its range only under a lease: QDB_OWNER_LEASE after sending a call that
 * S answered naming P its predecessor.  S heard that call after P sent it,
 * as its predecessor's frame, so S strikes P out QDB_SUSPECT_WINDOW after
 * it at the earliest -- later than the lease ends.  Every path that drops
 * a predecessor without its LEAVE waits out the window (watch_suspect_at, for
 * the watch's PINGs, probes and copies; a refused connection is a dead
 * process, but a connection that worked and broke is not: qdbd's loop
 * reports it as a reset, qdb_node_reset, which fails the calls on it as
 * timeouts would -- strikes -- and drops nobody;
 * scenarios/replicas-k3-reset-predecessor.scn, tests/reset-predecessor.sh).
 * Out of lease P answers "unstable" (the client retries), and
 * a write its replicas acknowledge after the lease ended is answered
 * "outcome unknown" (replica.c, finish).  When a lapsed lease is renewed,
 * S may have served the range meanwhile: P compares it with its replicas
 * first (replica_sync_start; S is one, or its replicas are P's), as after
 * a take-over.  The renewal: with replicas the watch asks the successor
 * every look, with a STABILIZE rather than a PING (its answer names the
 * successor's predecessor), and looks at least twice a lease.  Cost: a
 * STABILIZE_REPLY (a few hundred bytes) a second instead of a PONG, and a
 * node whose successor answers slower than the lease cannot serve.
 *
 * Leases of depth d (K >= 3).  That alone does not cover two false
 * suspicions in a row: P and S both slow, or cut off from all but each
 * other; S's successor S2 strikes S out and takes P's predecessor Q,
 * which struck P and S out, as its own: S2 serves (Q, S2] -- while S,
 * which never struck P out, still renews P's lease
 * (scenarios/replicas-k3-two-suspicions.scn).  So P's lease of depth 2
 * ends no later than S's lease of depth 1, which S's answer carries as the
 * time it has left (watch_describe; it left S after P sent its call, so
 * the bound holds on P's clock), and S's lease ends before S2 may strike S
 * out.  In general a lease of depth d ends with the successor's of depth
 * d - 1, and P serves under its lease of depth K - 1: when a node strikes
 * its predecessor out and takes the arc of up to K - 1 nodes before it
 * over, every lease that let one of them serve has ended -- up to K - 1
 * false suspicions in a row, as many as the crashes K copies survive.  K
 * in a row (a partition cutting K neighbours off) can still make two
 * owners, as a partition can anyway.  Depth stops at K - 1: a lease
 * carried around the whole ring would end with the oldest renewal on it.
 * A deeper lease has less time left after a renewal (its successor's
 * renewal may be a look old), so the watch looks a quarter lease before
 * it ends at the latest (next_look).  Cost: P's range is also unavailable
 * while S is out of lease.
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"

static qdb_time_us lease_length(const qdb_node *n)
{
    return QDB_OWNER_LEASE(n->cfg.rpc_timeout);
}

/* The lease we serve under: the deepest, K - 1 (see "Lease" above). */
static qdb_time_us served_until(const qdb_node *n)
{
    return n->lease_until[n->replication - 2];
}

/* The next look: a period drawn as ever, but with replicas at most half a
 * lease away, so that one lost answer still leaves time to renew it -- and
 * with K >= 3 a quarter lease before the lease we serve under ends, which
 * a deeper lease does sooner (it ends with our successor's). */
static qdb_time_us next_look(qdb_node *n)
{
    qdb_time_us d = ring_jitter(n, n->cfg.watch_period);
    if (n->replication > 1)
        d = MIN(d, lease_length(n) / 2);
    qdb_time_us now = node_now(n);
    if (n->replication > 2 && served_until(n) > now)
        d = MIN(d, MAX(served_until(n) - now, lease_length(n) * 3 / 8) - lease_length(n) / 4);
    return now + d;
}

void watch_start(qdb_node *n)
{
    n->watch_at = next_look(n);
}

int watch_succ_frame(const qdb_node *n)
{
    return n->replication > 1 ? QDB_MSG_STABILIZE : QDB_MSG_PING;
}

/* Our predecessor is our successor, yet our list names a third node: a
 * view of a ring of two inside a larger one (a node that relocates
 * notifies the node that passes over it, ring.c, on_find_reply; we took it
 * for want of a predecessor).  Our "range" then spans nearly the circle:
 * not to be served, lease or not, until a true predecessor notifies us
 * (sweep seed 730 of replicas-k3.scn: a node back from a crash answered
 * "not found" for an entry far from its range). */
static bool two_of_many(const qdb_node *n, const qdb_peer *s)
{
    if (!n->has_pred || !qdb_addr_eq(n->pred.addr, s->addr))
        return false;
    for (unsigned i = 1; i < n->n_succ; i++)
        if (!qdb_addr_eq(n->succ[i].addr, s->addr) &&
            !qdb_addr_eq(n->succ[i].addr, n->cfg.self.addr))
            return true;
    return false;
}

bool watch_leased(const qdb_node *n)
{
    const qdb_peer *s = ring_successor(n);
    if (n->replication <= 1 || !s || qdb_addr_eq(s->addr, n->cfg.self.addr))
        return true;
    return node_now(n) < served_until(n) && !two_of_many(n, s);
}

void watch_renew_soon(qdb_node *n)
{
    const qdb_peer *s = ring_successor(n);
    if (!watch_leased(n) && s)
        n->watch_at = MIN(n->watch_at, node_now(n) + qdb_rto_timeout(&n->rto, s->addr));
}

void watch_confirmed(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    const qdb_peer *s = ring_successor(n);
    if (n->replication <= 1 || m->type != QDB_MSG_STABILIZE_REPLY || !s ||
        !qdb_addr_eq(s->addr, rpc->dst) || !(m->flags & QDB_STABILIZE_HAS_PRED) ||
        !qdb_addr_eq(m->pred.addr, n->cfg.self.addr))
        return;
    if (node_now(n) >= served_until(n))
        n->lease_resync = true;
    /* Depth 1 from the answer itself; depth d + 1 no longer than the
     * successor still holds its depth d (its answer left it after we sent
     * our call, so that bound holds on our clock too). */
    qdb_time_us end = rpc->sent + lease_length(n);
    bool deep = m->flags & QDB_STABILIZE_LEASES && m->replication == n->replication;
    for (unsigned d = 0; d + 1 < n->replication; d++) {
        if (d > 0)
            end = deep ? MIN(end, rpc->sent + m->leases[d - 1]) : 0;
        n->lease_until[d] = MAX(n->lease_until[d], end);
    }
    watch_resync(n);
}

void watch_describe(qdb_node *n, qdb_msg *reply)
{
    if (n->replication < 3)
        return;
    qdb_time_us now = node_now(n);
    reply->flags |= QDB_STABILIZE_LEASES;
    for (unsigned d = 0; d + 2 < n->replication; d++)
        reply->leases[d] = n->lease_until[d] > now ? n->lease_until[d] - now : 0;
}

void watch_resync(qdb_node *n)
{
    /* Our successor may have served our range while we were out of lease:
     * what it acknowledged is on it and its replicas, so on ours. */
    if (n->lease_resync && n->phase == PHASE_ACTIVE && n->has_pred && !n->awaiting_handover &&
        !qdb_addr_eq(n->pred.addr, n->cfg.self.addr)) {
        n->lease_resync = false;
        replica_sync_start(n, &n->pred.id, &n->cfg.self.id);
    }
}

void watch_heard(qdb_node *n, qdb_addr src, unsigned type)
{
    if (type == QDB_MSG_PONG)
        return; /* see "Cost" above */
    qdb_time_us now = node_now(n);
    const qdb_peer *s = ring_successor(n);
    if (s && qdb_addr_eq(s->addr, src))
        n->heard_succ = (node_heard){src, now};
    if (n->has_pred && qdb_addr_eq(n->pred.addr, src))
        n->heard_pred = (node_heard){src, now};
}

static void ping_pred(qdb_node *n)
{
    if (node_rpc_pending(n, RPC_PING))
        return;
    qdb_msg m = {.type = QDB_MSG_PING};
    node_call(n, n->pred.addr, &m, RPC_PING, 0, 0, &n->pred);
}

/* Should neighbour a get a PING now?  When we have not heard from it within
 * the period -- or when its round trip is not measured: a neighbour that
 * keeps PINGing us is heard, but a check that has to strike on it would then
 * wait the initial rpc_timeout three times over (2 + 4 + 8 s).  (Asking also
 * keeps the neighbours fresh in the RTO table, which evicts the least
 * recently used.) */
static bool due(qdb_node *n, const node_heard *h, qdb_addr a, qdb_time_us since)
{
    return !qdb_addr_eq(a, n->cfg.self.addr) &&
           (!qdb_rto_measured(&n->rto, a) || !(qdb_addr_eq(h->addr, a) && h->at > since));
}

void watch_tick(qdb_node *n)
{
    qdb_time_us now = node_now(n);
    if (now < n->watch_at)
        return;
    n->watch_at = next_look(n);
    if (n->phase != PHASE_ACTIVE || n->paused)
        return;
    qdb_time_us since = now > n->cfg.watch_period ? now - n->cfg.watch_period : 0;
    const qdb_peer *s = ring_successor(n);
    /* A STABILIZE in flight watches the successor already: its failure
     * drops it the same way.  With replicas the successor is asked every
     * look: its answer renews our lease ("Lease" above). */
    bool renew = n->replication > 1 && s && !qdb_addr_eq(s->addr, n->cfg.self.addr);
    if (s && (renew || due(n, &n->heard_succ, s->addr, since)) &&
        !node_rpc_pending(n, RPC_WATCH) && !node_rpc_pending(n, RPC_STABILIZE)) {
        qdb_msg m = {.type = watch_succ_frame(n), .peer = n->cfg.self};
        node_call(n, s->addr, &m, RPC_WATCH, 0, 0, s);
    }
    if (n->has_pred && due(n, &n->heard_pred, n->pred.addr, since))
        ping_pred(n);
}

void watch_contender(qdb_node *n, const qdb_peer *c, unsigned flags)
{
    if (!n->has_pred || qdb_addr_eq(n->pred.addr, n->cfg.self.addr))
        return;
    n->contender = *c;
    n->contender_flags = flags;
    n->contender_vs = n->pred.addr;
    n->has_contender = true;
    ping_pred(n); /* (or its strikes are under way already) */
}

void watch_pred_failed(qdb_node *n, qdb_addr pred)
{
    if (!n->has_contender || !qdb_addr_eq(n->contender_vs, pred))
        return;
    n->has_contender = false;
    if (n->has_pred || qdb_addr_eq(n->contender.addr, pred) || n->phase != PHASE_ACTIVE)
        return;
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "predecessor failed: taking %s, which notified us",
             qdb_addr_format(n->contender.addr, a));
    qdb_peer c = n->contender;
    ring_notify_admitted(n, &c, n->contender_flags);
}

/* The last time a vouched for itself (an answer; from our predecessor, any
 * frame), `since` at the earliest; 0: never. */
static qdb_time_us vouched_at(qdb_node *n, qdb_addr a, qdb_time_us since)
{
    qdb_time_us last = MAX(qdb_rto_heard_at(&n->rto, a), since);
    if (n->has_pred && qdb_addr_eq(n->pred.addr, a) && qdb_addr_eq(n->heard_pred.addr, a))
        last = MAX(last, n->heard_pred.at);
    return last;
}

qdb_time_us watch_suspect_at(qdb_node *n, qdb_addr a, qdb_time_us since)
{
    qdb_time_us last = vouched_at(n, a, since);
    if (last == 0)
        return 0; /* nothing ever vouched for it */
    qdb_time_us at = last + QDB_SUSPECT_WINDOW(n->cfg.rpc_timeout);
    return at > node_now(n) ? at : 0;
}

/* The confirmation to a in flight, if any. */
static const node_rpc *confirmation(const qdb_node *n, qdb_addr a)
{
    for (guint i = 0; i < n->rpcs->len; i++) {
        const node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind == RPC_CONFIRM && qdb_addr_eq(r->dst, a))
            return r;
    }
    return NULL;
}

/* Did QDB_CONFIRMS_FAILED confirmations sent to a since it last vouched
 * for itself time out? */
static bool confirmed_silent(qdb_node *n, qdb_addr a, qdb_time_us since)
{
    for (unsigned i = 0; i < n->n_unconfirmed; i++) {
        const node_unconfirmed *u = &n->unconfirmed[i];
        if (qdb_addr_eq(u->addr, a))
            return u->n == QDB_CONFIRMS_FAILED && u->sent[0] >= vouched_at(n, a, since);
    }
    return false;
}

void watch_doubt(qdb_node *n, qdb_addr a, qdb_time_us since, int type)
{
    if (qdb_addr_eq(a, n->cfg.self.addr) || confirmation(n, a) || confirmed_silent(n, a, since))
        return;
    qdb_msg q = {.type = type};
    const qdb_peer *s = ring_successor(n);
    if (type == QDB_MSG_STABILIZE)
        q.peer = n->cfg.self;
    node_call(n, a, &q, RPC_CONFIRM, 0, 0, s && qdb_addr_eq(s->addr, a) ? s : NULL);
}

qdb_time_us watch_strike_at(qdb_node *n, qdb_addr a, qdb_time_us since, int type)
{
    qdb_time_us at = watch_suspect_at(n, a, since);
    if (confirmed_silent(n, a, since))
        return at;
    watch_doubt(n, a, since, type);
    const node_rpc *c = confirmation(n, a);
    /* just after its deadline: its timeout is handled first */
    return MAX(at, (c ? c->deadline : node_now(n)) + 1);
}

void watch_confirm_failed(qdb_node *n, const node_rpc *rpc)
{
    unsigned i = 0;
    while (i < n->n_unconfirmed && !qdb_addr_eq(n->unconfirmed[i].addr, rpc->dst))
        i++;
    if (i == n->n_unconfirmed) {
        i = n->n_unconfirmed < QDB_NODE_CONFIRMS ? n->n_unconfirmed++
                                                 : n->unconfirmed_next++ % QDB_NODE_CONFIRMS;
        n->unconfirmed[i] = (node_unconfirmed){.addr = rpc->dst};
    }
    node_unconfirmed *u = &n->unconfirmed[i];
    if (u->n == QDB_CONFIRMS_FAILED) {
        memmove(u->sent, u->sent + 1, (QDB_CONFIRMS_FAILED - 1) * sizeof(u->sent[0]));
        u->n--;
    }
    u->sent[u->n++] = rpc->sent;
}

void watch_pred_alive(qdb_node *n)
{
    n->has_contender = false; /* the predecessor outranks it rightly */
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Chord ring maintenance and routing.
 *
 * Sections
 *   successor list
 *   routing (closest preceding node)
 *   join
 *   stabilize / notify, with Zave's fixes
 *   fix-fingers
 *   failures, departures (the neighbour watch, check-predecessor
 *   included, is watch.c)
 *
 * The algorithm is Chord's (Stoica et al., ToN 2003, Fig. 6 and 7) made
 * iterative and asynchronous, with the corrections of P. Zave ("Reasoning
 * about identifier spaces: how to make Chord correct", IEEE TSE 2017):
 *  - "join and stabilize must adopt only a live successor": a would-be
 *    successor (the one join found, or the predecessor our successor reports)
 *    is asked first, and adopted only when it answers (RPC_JOIN_CONFIRM,
 *    RPC_CANDIDATE);
 *  - the successor list is rebuilt from a live successor's own list on every
 *    stabilization, so it never keeps entries that precede the successor.
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"
#include "stray.h"

/* ---- successor list ------------------------------------------------------- */

const qdb_peer *ring_successor(const qdb_node *n)
{
    return n->n_succ ? &n->succ[0] : NULL;
}

static bool is_self(const qdb_node *n, const qdb_peer *p)
{
    return qdb_addr_eq(p->addr, n->cfg.self.addr);
}

void ring_set_changed(qdb_node *n)
{
    n->round_changed = true;
    n->quiet_rounds = 0;
    if (n->period != n->cfg.stabilize_fast) {
        /* Something moved: come back to the fast period at once. */
        n->period = n->cfg.stabilize_fast;
        qdb_time_us soon = node_now(n) + n->period;
        if (soon < n->round_at)
            n->round_at = soon;
    }
}

/* A hint to `to`: "your successor's neighbourhood changed, stabilize now".
 * Chord waits for the next periodic round; with rounds backing off to
 * minutes once stable, a join would take minutes to reach the successor
 * lists of the r nodes before it.  The hint costs one frame per change and
 * travels at most r nodes back (a list that does not change sends none).
 * It carries no claim: the receiver still adopts only what it verifies. */
static void hint_frame(qdb_node *n, const qdb_peer *to)
{
    qdb_msg m = {.type = QDB_MSG_NOTIFY, .flags = QDB_NOTIFY_HINT, .peer = n->cfg.self};
    node_send(n, to->addr, &m);
}

/* The hint is one frame, and a lost one used to stall the news at that node
 * until its next round, up to stabilize_slow (30 s) away, at each of the r
 * nodes it travels back: a rejoined node missing from the last entry of a
 * successor list for a minute under 3% loss (K = 3 sweep seed 588), a
 * predecessor struck out on lost PINGs unknown at the check (283, 452,
 * 565).  So the last hint is owed until its receiver stabilizes with us
 * (ring_on_stabilize), and resent each of our rounds meanwhile -- fast ones,
 * since whatever prompted it changed our ring -- at most QDB_HINT_RESENDS
 * times. */
static void send_hint(qdb_node *n, const qdb_peer *to)
{
    if (is_self(n, to))
        return;
    hint_frame(n, to);
    n->hint_to = *to;
    n->hint_owed = QDB_HINT_RESENDS + 1;
}

static void resend_hint(qdb_node *n)
{
    if (n->hint_owed == 0)
        return;
    if (--n->hint_owed > 0)
        hint_frame(n, &n->hint_to);
}

/* succ list := first, then rest (a successor's own list), cut at ourselves
 * (in a small ring the list comes back round) and at r entries. */
static void set_succlist(qdb_node *n, const qdb_peer *first, const qdb_peer *rest, unsigned n_rest)
{
    qdb_peer list[QDB_SUCCLIST_MAX];
    unsigned k = 0;
    list[k++] = *first;
    for (unsigned i = 0; i < n_rest && k < n->cfg.succlist_len; i++) {
        if (is_self(n, &rest[i]) || qdb_peer_eq(&rest[i], first))
            break;
        list[k++] = rest[i];
    }
    if (is_self(n, first))
        k = 1; /* a ring of one */
    /* Peer by peer, never memcmp: a qdb_peer has padding bytes, and padding
     * is whatever the stack held -- it differed between -O0 and -O2 builds
     * and changed the trace. */
    bool changed = k != n->n_succ;
    for (unsigned i = 0; i < k && !changed; i++)
        changed = !qdb_peer_eq(&list[i], &n->succ[i]);
    if (n->n_succ == 0 || !qdb_peer_eq(&list[0], &n->succ[0])) {
        char a[QDB_ADDR_STRLEN];
        node_log(n, 4, "successor is now %s", qdb_addr_format(list[0].addr, a));
        changed = true;
    }
    memcpy(n->succ, list, k * sizeof(qdb_peer));
    n->n_succ = k;
    if (changed) {
        ring_set_changed(n);
        if (n->has_pred && n->phase == PHASE_ACTIVE)
            send_hint(n, &n->pred);
    }
}

bool ring_orphaned(const qdb_node *n, const qdb_id *id)
{
    return n->has_orphan && qdb_id_in_half(id, &n->orphan_lo, &n->orphan_hi);
}

/* finger[j] := p, and the two finger_same bits that compare it with its
 * neighbours. */
static void finger_set(qdb_node *n, unsigned j, const qdb_peer *p)
{
    n->finger[j] = *p;
    uint64_t mask = UINT64_C(1) << j;
    if (j + 1 < QDB_FINGER_WINDOW && qdb_peer_eq(p, &n->finger[j + 1]))
        n->finger_same |= mask;
    else
        n->finger_same &= ~mask;
    if (j > 0) {
        if (qdb_peer_eq(p, &n->finger[j - 1]))
            n->finger_same |= mask >> 1;
        else
            n->finger_same &= ~(mask >> 1);
    }
}

/* ---- routing ---------------------------------------------------------------- */

static bool addr_in(qdb_addr a, const qdb_addr *list, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (qdb_addr_eq(a, list[i]))
            return true;
    return false;
}

static bool offerable(const qdb_node *n, const qdb_peer *p, const qdb_addr *excl, unsigned n_excl)
{
    return !addr_in(p->addr, excl, n_excl) && !addr_in(p->addr, n->suspects, n->n_suspects);
}

int ring_route(const qdb_node *n, const qdb_id *target, const qdb_addr *excl, unsigned n_excl,
               qdb_peer *out)
{
    const qdb_peer *self = &n->cfg.self;
    if (!ring_successor(n)) { /* joining: we know nobody yet */
        *out = *self;
        return 0;
    }
    /* The first successor not known dead: the list is there for failures
     * (ToN 2003, Sec. IV-E) -- when the successor fails, the next entry is
     * the successor of everything up to it. */
    const qdb_peer *s = NULL;
    for (unsigned i = 0; i < n->n_succ && !s; i++)
        if (!addr_in(n->succ[i].addr, excl, n_excl))
            s = &n->succ[i];
    /* Only the asker's own exclusions move the owner we name: a suspect
     * (someone else's report, not yet checked) may well be alive, and
     * naming the node after it would be a wrong answer.  An owner named
     * dead is found so by the asker, who comes back with it excluded.
     *
     * Our successor owns it: (self, succ].  Routing answers only from
     * successor pointers, never from "(pred, self] is mine": a predecessor is
     * hearsay (any node that notifies us while we have none is adopted)
     * while a successor is adopted only once it answered and only ever moves
     * closer.  Answering from a stale predecessor sent joining nodes to
     * successors hundreds of nodes away, which they then walked back one
     * round at a time. */
    if (s && qdb_id_in_half(target, &self->id, &s->id)) {
        *out = *s;
        return 1;
    }
    /* Closest preceding finger (ToN 2003, Fig. 5's closest_preceding_node;
     * the successor is finger 0).  The rest of the successor list is kept
     * for failures, not used here: routing on it too would shorten paths by
     * about a hop and make the simulator's path lengths incomparable with
     * the paper's (Fig. 10: 1/2 log2 N). */
    const qdb_peer *best = s;
    /* Most fingers repeat the one above them (at N nodes all but about
     * log2 N of the 64 are the successor).  A valid finger that holds the
     * same peer as the last one examined gets the same answer -- or, if that
     * one became best, it is not strictly closer than itself -- so it is
     * skipped unread: `same` says finger[j] equals the last one examined,
     * through the run of finger_same bits between them. */
    bool chain = false;
    for (int j = QDB_FINGER_WINDOW - 1; j >= 0; j--) {
        bool same = chain && ((n->finger_same >> j) & 1);
        if (!((n->finger_valid >> j) & 1) || same) {
            chain = same;
            continue;
        }
        chain = true;
        const qdb_peer *f = &n->finger[j];
        if (is_self(n, f) || !offerable(n, f, excl, n_excl))
            continue;
        if (best ? qdb_id_in_open(&f->id, &best->id, target)
                 : qdb_id_in_open(&f->id, &self->id, target))
            best = f;
    }
    if (!best) { /* every node we know is excluded */
        *out = *self;
        return -1;
    }
    *out = *best;
    return 0;
}

qdb_time_us ring_jitter(qdb_node *n, qdb_time_us period)
{
    if (period < 2 || n->cfg.no_jitter)
        return period;
    return period / 2 + n->random->next(n->random) % period;
}

/* ---- failure reports ------------------------------------------------------ */

static bool known_peer(const qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_succ; i++)
        if (qdb_addr_eq(n->succ[i].addr, a))
            return true;
    for (unsigned j = 0; j < QDB_FINGER_WINDOW; j++)
        if (((n->finger_valid >> j) & 1) && qdb_addr_eq(n->finger[j].addr, a))
            return true;
    return n->has_pred && qdb_addr_eq(n->pred.addr, a);
}

static void unsuspect(qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_suspects; i++)
        if (qdb_addr_eq(n->suspects[i], a)) {
            n->n_suspects--;
            n->suspects[i] = n->suspects[n->n_suspects];
            n->suspected_at[i] = n->suspected_at[n->n_suspects];
            return;
        }
}

/* When a peer we probe was reported dead (0: it is not a suspect).  A
 * suspect is often a peer we never called (an entry deep in our successor
 * list): nothing vouched for it, and three lost probes alone struck a live
 * node out.  Its silence is counted from the report instead. */
static qdb_time_us suspected_since(const qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_suspects; i++)
        if (qdb_addr_eq(n->suspects[i], a))
            return n->suspected_at[i];
    return 0;
}

/* A lookup found a dead: stop offering it at once, and check it ourselves
 * (a lost frame is not a death): a node in our tables is dropped from them
 * when the probe fails (ring_on_failure), kept when it answers. */
static void suspect(qdb_node *n, qdb_addr a)
{
    if (qdb_addr_eq(a, n->cfg.self.addr) || addr_in(a, n->suspects, n->n_suspects) ||
        !known_peer(n, a))
        return;
    unsigned slot = n->n_suspects < QDB_NODE_SUSPECTS ? n->n_suspects++
                                                      : n->suspects_next++ % QDB_NODE_SUSPECTS;
    n->suspects[slot] = a;
    n->suspected_at[slot] = node_now(n);
    qdb_msg q = {.type = QDB_MSG_PING};
    node_call(n, a, &q, RPC_PROBE, 0, 0, NULL);
}

void ring_on_find(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    if (n->phase != PHASE_ACTIVE && n->phase != PHASE_LEAVING)
        return; /* we cannot route yet: the asker times out and tries elsewhere */
    for (unsigned i = 0; i < m->n_exclude; i++)
        suspect(n, m->exclude[i]);
    qdb_msg r = {.type = QDB_MSG_FIND_REPLY, .rpc = m->rpc};
    /* -1 (everything we know is excluded) answers "ask me again": the
     * asker goes back a hop. */
    int done = ring_route(n, &m->target, m->exclude, m->n_exclude, &r.peer);
    r.flags = done == 1 ? QDB_FIND_DONE : 0u;
    if (n->cfg.log_level >= 5) {
        char t[QDB_ID_HEX + 1], p[QDB_ID_HEX + 1], s[QDB_ID_HEX + 1];
        qdb_id_to_hex(&m->target, t);
        qdb_id_to_hex(&r.peer.id, p);
        qdb_id_to_hex(&ring_successor(n)->id, s);
        node_log(n, 5, "find %.8s -> done=%u %.8s (succ %.8s)", t, r.flags, p, s);
    }
    node_send(n, src, &r);
}

/* ---- join -------------------------------------------------------------------- */

/* A join lookup named this peer: try it too if the first ones fail. */
static void join_learn(qdb_node *n, qdb_addr a)
{
    if (qdb_addr_eq(a, n->cfg.self.addr) || n->n_join_peers >= QDB_JOIN_PEERS)
        return;
    for (size_t i = 0; i < n->n_join_peers; i++)
        if (qdb_addr_eq(n->join_peers[i], a))
            return;
    n->join_peers[n->n_join_peers++] = a;
}

/* ---- remembered peers: merging rings after a partition ---------------------- */

static void remember(qdb_node *n, const qdb_peer *p)
{
    for (unsigned i = 0; i < n->n_remembered; i++)
        if (qdb_addr_eq(n->remembered[i].addr, p->addr)) {
            n->remembered_tries[i] = 0;
            return;
        }
    unsigned slot = n->n_remembered < QDB_REMEMBERED ? n->n_remembered++
                                                     : n->remembered_next % QDB_REMEMBERED;
    n->remembered[slot] = *p;
    n->remembered_tries[slot] = 0;
}

static void unremember(qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_remembered; i++)
        if (qdb_addr_eq(n->remembered[i].addr, a)) {
            n->n_remembered--;
            n->remembered[i] = n->remembered[n->n_remembered];
            n->remembered_tries[i] = n->remembered_tries[n->n_remembered];
            return;
        }
}

/* One probe a round: look our own ID up through a peer we dropped for
 * silence.  Chord alone never merges two rings (each is consistent on its
 * own); the answer from the other ring names a closer successor there, which
 * we adopt once it answers (Zave), and stabilization zips the rings. */
static void probe_remembered(qdb_node *n)
{
    if (n->n_remembered == 0 || node_rpc_pending(n, RPC_RELOCATE_FIND))
        return;
    unsigned i = n->remembered_next++ % n->n_remembered;
    if (++n->remembered_tries[i] > QDB_REMEMBERED_TRIES) {
        unremember(n, n->remembered[i].addr);
        return;
    }
    qdb_msg q = {.type = QDB_MSG_FIND, .target = n->cfg.self.id};
    node_call(n, n->remembered[i].addr, &q, RPC_RELOCATE_FIND, 1 /* a probe */, 0,
              &n->remembered[i]);
}

static void join_try(qdb_node *n)
{
    if (n->n_join_peers == 0)
        return;
    qdb_addr peer = n->join_peers[n->join_next % n->n_join_peers];
    qdb_msg m = {.type = QDB_MSG_FIND, .target = n->cfg.self.id};
    node_call(n, peer, &m, RPC_JOIN_FIND, 0, 0, NULL);
}

void ring_start(qdb_node *n)
{
    n->round_at = node_now(n) + ring_jitter(n, n->period);
    if (n->n_join_peers == 0) {
        /* Chord's create(): a ring of one owns the whole circle. */
        n->pred = n->cfg.self;
        n->has_pred = true;
        n->succ[0] = n->cfg.self;
        n->n_succ = 1;
        n->phase = PHASE_ACTIVE;
        node_log(n, 3, "created a new ring");
        hive_create(n);
        return;
    }
    n->phase = PHASE_JOINING;
    n->awaiting_handover = true;
    n->stored_at_join = stray_has_records(n);
    join_try(n);
}

/* See qdb_node_start_warm: the state a settled join would have reached,
 * with the hive's settings this node was configured with -- rounds backed
 * off to the slow period, as after quiet rounds. */
void ring_start_warm(qdb_node *n, const qdb_peer *pred, const qdb_peer *succ, unsigned n_succ,
                     qdb_node_owner_fn owner_of, void *arg)
{
    n->period = n->cfg.stabilize_slow;
    n->quiet_rounds = 2;
    n->round_at = node_now(n) + ring_jitter(n, n->period);
    n->pred = *pred;
    n->has_pred = true;
    n->n_succ = MIN(n_succ, n->cfg.succlist_len);
    memcpy(n->succ, succ, n->n_succ * sizeof(qdb_peer));
    for (unsigned j = 0; j < QDB_FINGER_WINDOW; j++) {
        qdb_id start;
        qdb_id_add_pow2(&start, &n->cfg.self.id, QDB_FINGER_LO + j);
        qdb_peer f, before;
        owner_of(arg, &start, &f, &before);
        finger_set(n, j, &f);
        /* As if a lookup had set it: the first refresh costs one FIND to
         * the node before it, not a whole lookup (fix_fingers). */
        n->finger_hop[j] = is_self(n, &before) ? (qdb_addr){0} : before.addr;
    }
    n->finger_valid = ~UINT64_C(0);
    n->phase = PHASE_ACTIVE;
    hive_create(n);
}

static void adopt_joined(qdb_node *n, const qdb_peer *s, const qdb_msg *m)
{
    set_succlist(n, s, m->peers, m->n_peers);
    n->phase = PHASE_ACTIVE;
    char a[QDB_ADDR_STRLEN];
    node_log(n, 3, "joined: successor %s", qdb_addr_format(s->addr, a));
    ring_set_changed(n);
}

/* ---- stabilize / notify ------------------------------------------------------ */

/* Is c a better successor than the one we have?  With a ring of one (our
 * successor is ourselves) any other node is. */
static bool better_successor(const qdb_node *n, const qdb_peer *c)
{
    const qdb_peer *s = ring_successor(n);
    if (is_self(n, c))
        return false;
    return !s || is_self(n, s) || qdb_id_in_open(&c->id, &n->cfg.self.id, &s->id);
}

/* A question presumed lost: out longer than its peer's measured round
 * trip allows (its RTO before back-off; rpc_timeout if not measured).  Its
 * own deadline is the backed-off RTO, up to a minute after a few timeouts
 * -- a peer just struck out for silence has such an RTO. */
static bool presumed_lost(qdb_node *n, const node_rpc *r)
{
    return node_now(n) - r->sent > qdb_rto_expected(&n->rto, r->dst);
}

/* Whether a candidate question is in flight that the next must wait for:
 * one not presumed lost, or QDB_CANDIDATE_CHECKS of them. */
static bool candidate_busy(qdb_node *n)
{
    unsigned checks = 0;
    for (guint i = 0; i < n->rpcs->len; i++) {
        const node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind == RPC_CANDIDATE && (++checks >= QDB_CANDIDATE_CHECKS || !presumed_lost(n, r)))
            return true;
    }
    return false;
}

/* The question to c in flight, if any. */
static const node_rpc *candidate_check(const qdb_node *n, const qdb_peer *c)
{
    for (guint i = 0; i < n->rpcs->len; i++) {
        const node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind == RPC_CANDIDATE && qdb_addr_eq(r->dst, c->addr))
            return r;
    }
    return NULL;
}

/* Zave: adopt only a live successor.  Ask c first (RPC_CANDIDATE); one
 * question at a time, the best other candidate waiting in cand_next (asked
 * when a question ends, or at the next round).  Returns true when a
 * question went out now.
 *
 * Not behind a question presumed lost: the next candidate is asked too,
 * and a candidate named again while its question is presumed lost is sent
 * the question again -- under the same id and deadline, so that a
 * candidate that never answers (across a partition) still times out and
 * lets the others go.  Behind one, a successor struck out on lost frames
 * and named again by the next one's answer at once waited 1.6 s for its
 * lost check to time out (K = 3 sweep seed 24, this branch); a check
 * backed off to its minute held a wrong successor for 52 s
 * (partition-long.scn seed 157, an earlier build). */
static bool consider_candidate(qdb_node *n, const qdb_peer *c)
{
    if (!better_successor(n, c))
        return false;
    qdb_msg q = {.type = QDB_MSG_STABILIZE, .peer = n->cfg.self};
    const node_rpc *asked = candidate_check(n, c);
    if (asked) {
        if (presumed_lost(n, asked)) {
            q.rpc = asked->id;
            node_send(n, c->addr, &q);
        }
        return false;
    }
    if (candidate_busy(n)) {
        if (!n->has_cand_next || qdb_id_in_open(&c->id, &n->cfg.self.id, &n->cand_next.id)) {
            n->cand_next = *c;
            n->has_cand_next = true;
        }
        return false;
    }
    node_call(n, c->addr, &q, RPC_CANDIDATE, 0, 0, c);
    return true;
}

static void next_candidate(qdb_node *n)
{
    if (!n->has_cand_next)
        return;
    n->has_cand_next = false;
    qdb_peer c = n->cand_next;
    consider_candidate(n, &c);
}

static void send_notify(qdb_node *n, const qdb_peer *to)
{
    if (is_self(n, to))
        return;
    qdb_msg m = {.type = QDB_MSG_NOTIFY, .peer = n->cfg.self};
    m.flags = n->awaiting_handover ? QDB_NOTIFY_JOINING : 0u;
    if (n->awaiting_handover && n->stored_at_join && n->replication > 1)
        m.flags |= QDB_NOTIFY_STORED; /* a digest will do (stray.h) */
    node_send(n, to->addr, &m);
}

static void stabilize(qdb_node *n)
{
    const qdb_peer *s = ring_successor(n);
    if (!s)
        return;
    if (is_self(n, s)) {
        /* A ring of one: our predecessor, if another node, is a successor
         * too -- once it proves alive.  (Nodes that notify us are
         * candidates as well: see ring_on_notify.) */
        if (n->has_pred && !is_self(n, &n->pred))
            consider_candidate(n, &n->pred);
        return;
    }
    if (node_rpc_pending(n, RPC_STABILIZE) || node_rpc_pending_to(n, RPC_WATCH, s->addr)) {
        /* The answer in flight may predate what prompted this call: ask
         * again once it is in.  (A watch PING in flight: ask once it is
         * answered; two checks striking on one silent peer would double its
         * RTO twice a strike.) */
        n->restabilize = true;
        return;
    }
    n->restabilize = false;
    qdb_msg m = {.type = QDB_MSG_STABILIZE, .peer = n->cfg.self};
    node_call(n, s->addr, &m, RPC_STABILIZE, 0, 0, s);
}

static void admit_check(qdb_node *n, const qdb_peer *p, unsigned arg);

/* Would c's NOTIFY (not joining: a joiner always sends it) change nothing
 * here?  Then our STABILIZE_REPLY says so (QDB_STABILIZE_NOTIFIED) and c
 * sends none: a frame a node a round, a sixth of a settled ring's events
 * at 1-s rounds.  Chord's notify is moot once the successor names c; ours
 * also makes its receiver ask c as a closer successor (consider_candidate:
 * a ring of one, a ring that is wrong) and push c a hand-over to give back
 * (ho_give) or entries outside our range (ring_notify_admitted) -- only
 * this node knows those, so it decides, not c.  It decides on its state at
 * the reply: what changes before c's NOTIFY would have come waits for c's
 * next round, whose reply then asks for the NOTIFY, as after a lost one. */
static bool notify_moot(qdb_node *n, qdb_addr src, const qdb_peer *c)
{
    return n->phase == PHASE_ACTIVE && n->has_pred && qdb_peer_eq(c, &n->pred) &&
           !is_self(n, c) && ring_same_host(src, c->addr) && !better_successor(n, c) &&
           !n->ho_give && !serve_has_foreign(n);
}

void ring_on_stabilize(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    /* A leaving node still answers: the node it hands its entries to checks
     * it with a STABILIZE (admission) when it is not yet that node's
     * predecessor -- its successor crashed a moment before and it skipped to
     * the next.  Unanswered, the hand-over was refused at every successor
     * in turn and the leave ended with the entries on no live node. */
    if (n->phase == PHASE_JOINING && node_rpc_pending_to(n, RPC_JOIN_CONFIRM, src)) {
        /* The node we confirm checks us (admission, below) as it answers
         * our JOIN_CONFIRM, and its check can outrun its answer.  Dropped,
         * the check timed out and our NOTIFY asked again a round trip
         * later -- a round trip the node spent with a dead successor in
         * zave-two-cycles.scn, on half the seeds.  Answered once we joined
         * (ring_on_reply, RPC_JOIN_CONFIRM). */
        n->early_src = src;
        n->early_rpc = m->rpc;
        n->early_peer = m->peer;
        n->has_early = true;
        return;
    }
    if (n->phase != PHASE_ACTIVE && n->phase != PHASE_LEAVING)
        return;
    if (n->hint_owed && qdb_addr_eq(src, n->hint_to.addr))
        n->hint_owed = 0; /* it heard: see send_hint */
    qdb_msg r = {.type = QDB_MSG_STABILIZE_REPLY, .rpc = m->rpc};
    if (n->has_pred) {
        r.flags = QDB_STABILIZE_HAS_PRED;
        r.pred = n->pred;
    }
    r.n_peers = n->n_succ;
    memcpy(r.peers, n->succ, n->n_succ * sizeof(qdb_peer));
    hive_describe(n, &r);
    if (notify_moot(n, src, &m->peer))
        r.flags |= QDB_STABILIZE_NOTIFIED;
    watch_describe(n, &r);
    node_send(n, src, &r);
    /* A STABILIZE from a node we do not know is a joiner (or a candidate)
     * about to take us as its successor and notify us: check it now, so
     * that its NOTIFY finds it checked and a join costs no more round trips
     * than before admission.  Not one whose last answer did not name us:
     * a check is a STABILIZE too, so two such nodes checked each other
     * back and forth for good, at network speed, and four such pairs kept
     * every check slot busy -- a joiner's NOTIFY then never got its check
     * and the ring stayed wrong (scenarios/join-burst-admission.scn).  Its
     * NOTIFY is still checked. */
    const qdb_peer *c = &m->peer;
    if (n->phase == PHASE_ACTIVE && !is_self(n, c) && ring_same_host(src, c->addr) &&
        !ring_vouched(n, c) && !qdb_id_eq(&c->id, &n->cfg.self.id) &&
        !addr_in(c->addr, n->refused, n->n_refused))
        admit_check(n, c, 0);
}

/* Whether a STABILIZE_REPLY names us as its sender's predecessor. */
static bool reply_names_us(const qdb_node *n, const qdb_msg *m)
{
    return (m->flags & QDB_STABILIZE_HAS_PRED) && is_self(n, &m->pred);
}

static void on_stabilize_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    const qdb_peer *s = ring_successor(n);
    char a[QDB_ADDR_STRLEN];
    node_log(n, 4, "stabilize reply from %s: pred %s", qdb_addr_format(rpc->dst, a),
             (m->flags & QDB_STABILIZE_HAS_PRED) ? "known" : "none");
    if (!s || !qdb_peer_eq(s, &rpc->peer)) {
        /* our successor changed meanwhile: ask the new one if we were told to */
        if (n->restabilize)
            stabilize(n);
        return;
    }
    qdb_peer succ = *s;
    set_succlist(n, &succ, m->peers, m->n_peers);
    /* Our successor does not know us as its predecessor yet (a lost NOTIFY,
     * or a closer node): not settled -- keep the fast period until it does. */
    bool named = reply_names_us(n, m);
    if (!named)
        ring_set_changed(n);
    /* Chord would adopt x = successor.predecessor now.  Zave: only if x is
     * alive -- ask it first; we notify once it answered. */
    if ((m->flags & QDB_STABILIZE_HAS_PRED) && better_successor(n, &m->pred)) {
        /* Walking back one predecessor at a time is O(distance): after a
         * few steps, look our own ID up through the ring instead, which
         * the fingers answer in O(log N) hops. */
        if (++n->walk_steps >= 3 && !node_rpc_pending(n, RPC_RELOCATE_FIND)) {
            n->walk_steps = 0;
            qdb_msg q = {.type = QDB_MSG_FIND, .target = n->cfg.self.id};
            node_call(n, m->pred.addr, &q, RPC_RELOCATE_FIND, 0, 0, NULL);
        }
        if (consider_candidate(n, &m->pred))
            return;
    } else {
        n->walk_steps = 0;
    }
    /* (notify_moot: the successor says when our NOTIFY would be moot) */
    if (n->awaiting_handover || !named || !(m->flags & QDB_STABILIZE_NOTIFIED))
        send_notify(n, &succ);
    watch_renew_soon(n);
    if (n->restabilize)
        stabilize(n);
}

/* ---- admission --------------------------------------------------------------
 * A frame names peers; believing a stranger's claim is how one forged NOTIFY
 * took a node's predecessor (and, with the joining flag, its entries) and how
 * a node was made to connect to any address.  So (doc/qdbd.8, "Admission
 * rules"):
 *  - a claim about the sender itself (NOTIFY, LEAVE, HANDOVER) must come from
 *    the host it names (ring_same_host);
 *  - a NOTIFY from a peer not vouched for (predecessor, successor list, or
 *    admitted before) is believed only once that peer answers a STABILIZE at
 *    the address it named with a successor list that starts with us: a live
 *    node that takes us for its successor.  Until then nothing changes here:
 *    no predecessor, no hand-over, no "unstable";
 *  - such checks are the only frames a stranger can make us send to an
 *    address it chose: one per address, QDB_NODE_ADMIT_CHECKS at a time, the
 *    rest dropped (a real joiner notifies again next round).
 * Without a hive key a program that speaks the protocol as a node does passes;
 * the key (TLS) is what keeps strangers out altogether. */

bool ring_same_host(qdb_addr src, qdb_addr claimed)
{
    return src.ip == claimed.ip;
}

static bool in_succlist(const qdb_node *n, const qdb_peer *p)
{
    for (unsigned i = 0; i < n->n_succ; i++)
        if (qdb_peer_eq(&n->succ[i], p))
            return true;
    return false;
}

bool ring_vouched(const qdb_node *n, const qdb_peer *p)
{
    if ((n->has_pred && qdb_peer_eq(&n->pred, p)) || in_succlist(n, p))
        return true;
    for (unsigned i = 0; i < n->n_admitted; i++)
        if (qdb_peer_eq(&n->admitted[i], p))
            return true;
    return false;
}

/* The slot of a new entry in a table of cap entries: a free one, else the
 * oldest's. */
static unsigned newest_slot(unsigned *used, unsigned *next, unsigned cap)
{
    return *used < cap ? (*used)++ : (*next)++ % cap;
}

static void admitted_add(qdb_node *n, const qdb_peer *p)
{
    if (ring_vouched(n, p))
        return;
    n->admitted[newest_slot(&n->n_admitted, &n->admitted_next, QDB_NODE_ADMITTED)] = *p;
}

/* Whether a's last answer to a check named us (ring_on_stabilize). */
static void refused_set(qdb_node *n, qdb_addr a, bool refused)
{
    for (unsigned i = 0; i < n->n_refused; i++)
        if (qdb_addr_eq(n->refused[i], a)) {
            if (!refused)
                n->refused[i] = n->refused[--n->n_refused];
            return;
        }
    if (refused)
        n->refused[newest_slot(&n->n_refused, &n->refused_next, QDB_NODE_REFUSED)] = a;
}

static void admitted_forget(qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_admitted;)
        if (qdb_addr_eq(n->admitted[i].addr, a))
            n->admitted[i] = n->admitted[--n->n_admitted];
        else
            i++;
}

/* RPC_ADMIT's arg: the low bits are a waiting NOTIFY's flags */
#define ADMIT_SENDER 0x100u   /* a HANDOVER's sender, not a would-be predecessor */
#define ADMIT_NOTIFIED 0x200u /* its NOTIFY waits for the answer */
#define ADMIT_STRAY 0x400u    /* a HANDOVER of stray copies of our range (stray.h) */

/* Ask p, at the address it named, who its successors are.  A check started
 * before p's NOTIFY (by its STABILIZE, ring_on_stabilize) is marked when the
 * NOTIFY comes, and asked again: p may not have been able to answer the
 * first (a joiner answers once it has adopted its successor). */
static void admit_check(qdb_node *n, const qdb_peer *p, unsigned arg)
{
    unsigned busy = 0;
    bool again = false;
    for (guint i = 0; i < n->rpcs->len; i++) {
        node_rpc *r = &g_array_index(n->rpcs, node_rpc, i);
        if (r->kind != RPC_ADMIT)
            continue;
        if (qdb_addr_eq(r->dst, p->addr)) {
            if (!(arg & ADMIT_NOTIFIED) || (r->arg & ADMIT_NOTIFIED))
                return; /* being checked */
            r->arg = (uint16_t)(r->arg | arg);
            again = true;
        }
        busy++;
    }
    if (again && busy >= QDB_NODE_ADMIT_CHECKS)
        return; /* the check in flight carries the NOTIFY */
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(p->addr, a);
    if (!again && busy >= QDB_NODE_ADMIT_CHECKS) {
        n->stats.admission_refused++;
        node_log(n, 4, "admission: %s not checked now (%u checks in flight)", a, busy);
        return; /* dropped: it tries again if it is real */
    }
    node_log(n, 4, "admission: checking %s", a);
    qdb_msg q = {.type = QDB_MSG_STABILIZE, .peer = n->cfg.self};
    node_call(n, p->addr, &q, RPC_ADMIT, arg, 0, p);
}

void ring_admit_sender(qdb_node *n, const qdb_peer *p)
{
    admit_check(n, p, ADMIT_SENDER);
}

void ring_admit_stray(qdb_node *n, const qdb_peer *p)
{
    admit_check(n, p, ADMIT_SENDER | ADMIT_STRAY);
}

static bool names_us_within(const qdb_node *n, const qdb_msg *m, unsigned k)
{
    for (unsigned i = 0; i < m->n_peers && i < k; i++)
        if (qdb_peer_eq(&m->peers[i], &n->cfg.self))
            return true;
    return false;
}

void ring_on_admit_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    if (m->type != QDB_MSG_STABILIZE_REPLY || n->phase != PHASE_ACTIVE)
        return;
    bool replica = rpc->arg & ADMIT_SENDER;
    /* A HANDOVER comes from an owner with us among its K - 1 first
     * successors (its successor, K = 1); a NOTIFY from a node whose
     * successor we are. */
    unsigned within = replica ? MAX(n->replication, 2u) - 1 : 1;
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(rpc->dst, a);
    /* Stray copies come from anywhere on the ring (a healed partition
     * leaves them far from their owner): a node answering at the address
     * it named, with successors of its own, is enough. */
    bool stray = (rpc->arg & ADMIT_STRAY) && m->n_peers > 0;
    if (!stray && !names_us_within(n, m, within)) {
        n->stats.admission_refused++;
        node_log(n, 2, "admission: %s does not name us as its successor: its %s refused", a,
                 replica ? "HANDOVER" : "NOTIFY");
        refused_set(n, rpc->dst, true);
        /* Not our predecessor, but alive at the address it named: a closer
         * successor, if it lies between us and ours (asked once more
         * before it is adopted, as any candidate).  This is how a node we
         * pass over tells us (on_find_reply, RPC_RELOCATE_FIND). */
        if (!replica)
            consider_candidate(n, &rpc->peer);
        return;
    }
    node_log(n, 4, "admission: %s checked", a);
    admitted_add(n, &rpc->peer);
    refused_set(n, rpc->dst, false);
    node_cancel(n, rpc->dst, RPC_ADMIT); /* a second check of it is moot */
    if (rpc->arg & ADMIT_NOTIFIED)
        ring_notify_admitted(n, &rpc->peer, rpc->arg & 0xffu);
}

void ring_on_notify(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    if (n->phase != PHASE_ACTIVE)
        return;
    const qdb_peer *c = &m->peer;
    if (is_self(n, c))
        return;
    char a[QDB_ADDR_STRLEN];
    if (!ring_same_host(src, c->addr)) {
        n->stats.admission_refused++;
        node_log(n, 2, "admission: a NOTIFY from %s names another host: refused",
                 qdb_addr_format(src, a));
        return;
    }
    if (qdb_id_eq(&c->id, &n->cfg.self.id)) {
        /* our ID at another address: never a neighbour (it is refused at
         * its join, ring.c on_find_reply) */
        n->stats.admission_refused++;
        node_log(n, 2, "admission: %s claims our ID: refused", qdb_addr_format(c->addr, a));
        return;
    }
    if (m->flags & QDB_NOTIFY_HINT) {
        /* From our successor: our ring moved, fast rounds and a new
         * fix-fingers cycle.  From anyone else (a node that no longer is,
         * or a resend after we moved on, send_hint): stabilize once; what
         * the reply changes sets the round changed, and a resent hint
         * does not hold a settled node "settling" for rounds. */
        const qdb_peer *s = ring_successor(n);
        if (s && qdb_addr_eq(s->addr, src))
            ring_set_changed(n);
        stabilize(n);
        return;
    }
    if (!ring_vouched(n, c)) {
        admit_check(n, c, ADMIT_NOTIFIED | m->flags);
        return;
    }
    ring_notify_admitted(n, c, m->flags);
}

/* (lo, failed] was a failed node's and is ours now, without its entries
 * (K = 1), or with the copies we hold (K > 1): what we replicated, back as
 * far as our owners' digests confirmed it (replica.c, replica_covered_from).
 * More than K - 1 nodes that failed together leave (lo, x] whose copies are
 * all on failed nodes; so does an arc no digest confirmed we hold (x the
 * failed node itself), whose copies may never have come (an owner and its
 * replica failing seconds apart, K = 2 sweep seed 242).  That part is
 * orphaned, as with K = 1: "unavailable" for what we do not hold there. */
static void inherit(qdb_node *n, const qdb_id *lo, const qdb_id *failed)
{
    n->orphan_lo = *lo;
    n->orphan_hi = *failed;
    n->has_orphan = true;
    if (n->replication > 1) {
        qdb_id x = replica_covered_from(n, failed);
        n->orphan_hi = x;
        n->has_orphan = qdb_id_in_half(&x, lo, failed);
        if (n->has_orphan)
            node_log(n, 3, "part of the arc taken over is not known replicated here (more "
                     "than %u holders failed, or its copies never came): entries we hold "
                     "no copy of there are unavailable", n->replication - 1);
    }
    forget_orphaned(n);
}

void ring_notify_admitted(qdb_node *n, const qdb_peer *c, unsigned flags)
{
    if (!n->has_pred || qdb_id_in_open(&c->id, &n->pred.id, &n->cfg.self.id)) {
        bool took_over = false;
        char a[QDB_ADDR_STRLEN];
        node_log(n, 4, "predecessor is now %s", qdb_addr_format(c->addr, a));
        /* The old predecessor now has a closer successor: tell it. */
        if (n->has_pred && !is_self(n, &n->pred))
            send_hint(n, &n->pred);
        /* Our first predecessor since we joined, our hand-over in: see
         * replica_sync_first. */
        bool first = !n->has_pred && !n->pred_failed && !n->awaiting_handover;
        /* A closer predecessor that is not joining: the ring was wrong.
         * Under loss, a join burst can leave a node W and, a few places
         * before it, a node R each taking the other's neighbours for its
         * own (an appendage), both owning the arc between them: the
         * clients' writes there went to W, R's range held none of them.
         * When the ring corrects itself, R served reads from its store
         * (missing reads at 12-15 s, K = 2 sweep seeds 490, 1139, 1974 of
         * main).  So W pushes what it holds of the arc it lost to the new
         * predecessor at once, as a join's hand-over (serve_push from
         * ho_from), which passes on back what lies before its own range
         * (serve_on_handover) until R or R's replica has it; and R, whose
         * range moved too, does not serve it before a digest with its
         * replicas (replica_sync_start) brought back what they hold and it
         * lacks.  The stray walk (stray.h) would bring W's copies only
         * after QDB_STRAY_SETTLE_US and a lookup. */
        bool moved = n->replication > 1 && n->has_pred && !is_self(n, &n->pred) &&
                     !(flags & QDB_NOTIFY_JOINING);
        n->ho_give = moved;
        if (moved)
            n->ho_from = n->pred.id;
        if (!n->has_pred && n->pred_failed && !qdb_id_eq(&c->id, &n->failed_pred) &&
            qdb_id_in_open(&n->failed_pred, &c->id, &n->cfg.self.id)) {
            /* (c, failed] was the failed node's: ours now */
            took_over = n->replication > 1;
            inherit(n, &c->id, &n->failed_pred);
        } else {
            n->has_orphan = false; /* a node took (part of) the arc back */
        }
        n->pred_failed = false;
        n->pred = *c;
        n->has_pred = true;
        if (took_over)
            replica_sync_start(n, &c->id, &n->failed_pred);
        else if (moved)
            replica_sync_start(n, &c->id, &n->cfg.self.id);
        else if (first)
            replica_sync_first(n);
        watch_resync(n); /* (the whole range: a take-over's arc with it) */
        ring_set_changed(n);
    } else if (!qdb_peer_eq(c, &n->pred)) {
        watch_contender(n, c, flags); /* unless our predecessor is dead */
    }
    /* Whoever notifies us is alive and may be a closer successor than ours:
     * in a bulk join every newcomer first points at the same node, and
     * Chord's rule alone then needs O(N) rounds to sort them out. */
    consider_candidate(n, c);
    if (qdb_peer_eq(c, &n->pred)) {
        /* Hand-over: the new node N takes ]P;N] from its successor -- we push
         * whatever we hold outside our range to the predecessor. */
        if (flags & QDB_NOTIFY_JOINING)
            stray_rejoin(n, c, flags & QDB_NOTIFY_STORED); /* all, or what differs */
        else if (n->ho_give)
            serve_push(n, c, true); /* true: its ack ends ho_give */
        else if (serve_has_foreign(n))
            serve_push(n, c, false);
    }
}

/* ---- fix-fingers -----------------------------------------------------------
 * Chord (ToN 2003, Fig. 6) refreshes one finger a round.  Fingers only
 * shorten paths -- correctness needs the successors alone -- so what they
 * are worth is path length against the frames spent on them:
 *  - cycles by time: a cycle looks at every distinct finger once (at 10^4
 *    nodes about 14 of the 64 slots), at most QDB_FINGERS_PER_ROUND remote
 *    lookups a round, and a new one starts cfg.finger_cycle after the
 *    last began.  Rounds of 1 s that never back off no longer multiply the
 *    cost (four lookups every round were 76% of the events of 10^4 warm
 *    nodes); rounds backed off to 30 s (qdbd's default) still start a
 *    cycle every round, as before;
 *  - reset on change: a round after one that moved the node's neighbours
 *    (ring_set_changed: joins, failures, the bootstrap) and the loss of a
 *    finger (forget_finger) let the next cycle start at once -- around
 *    the moves fingers are looked at as often as before; elsewhere, once
 *    a cycle.  (Restarting also after a cycle that moved a finger, as
 *    Bamboo resets its back-off, brought a bootstrap's fingers right
 *    sooner but was left out: it shifted zave-two-cycles.scn's frames so
 *    that node A learnt of C's crash after the oracle's check);
 *  - the successor list answers the fingers it covers (start within
 *    (self, last successor]) without a frame: it is refreshed every round;
 *  - a cheap check first: the node that answered a finger's last lookup is
 *    the predecessor of its start, and is asked again directly -- one round
 *    trip, not a lookup from the closest preceding finger.  If the finger
 *    still stands it answers "done" with it; if a node joined between, it
 *    answers with that node or sends the lookup on from there; if it is
 *    dead the lookup fails and the next cycle does a whole one. */

/* The entry of our successor list that is successor(id), if the list
 * reaches that far (ring_route answers the first entry's arc itself). */
static const qdb_peer *succlist_owner(const qdb_node *n, const qdb_id *id)
{
    const qdb_id *lo = &n->cfg.self.id;
    for (unsigned k = 0; k < n->n_succ && !is_self(n, &n->succ[k]); k++) {
        if (qdb_id_in_half(id, lo, &n->succ[k].id))
            return &n->succ[k];
        lo = &n->succ[k].id;
    }
    return NULL;
}

/* o is successor(self + 2^i): it is also successor(self + 2^j) for every
 * later j whose start still falls in (self, o]. */
static unsigned set_fingers_from(qdb_node *n, unsigned i, const qdb_peer *o)
{
    unsigned j = i;
    for (; j < QDB_ID_BITS; j++) {
        qdb_id start;
        qdb_id_add_pow2(&start, &n->cfg.self.id, j);
        if (j != i && !qdb_id_in_half(&start, &n->cfg.self.id, &o->id))
            break;
        finger_set(n, j - QDB_FINGER_LO, o);
        n->finger_valid |= UINT64_C(1) << (j - QDB_FINGER_LO);
    }
    return j >= QDB_ID_BITS ? QDB_FINGER_LO : j;
}

static void fix_fingers(qdb_node *n)
{
    if (n->finger_busy || !ring_successor(n))
        return;
    if (n->next_finger == QDB_FINGER_LO) { /* a new cycle */
        /* Due within half a period: the round nearest the due time starts
         * it.  Rounds come every [P/2, 3P/2) (ring_jitter); waiting for the
         * first one after it started a cycle at one 30-s round in two. */
        if (node_now(n) + n->period / 2 < n->finger_cycle_at)
            return;
        n->finger_cycle_at = node_now(n) + n->cfg.finger_cycle;
    }
    /* Resolve locally what we can; one remote lookup per call at most.
     * Each pass moves to the next distinct finger, so a full cycle costs
     * O(log N) lookups, not 64. */
    for (unsigned guard = 0; guard < QDB_FINGER_WINDOW; guard++) {
        unsigned i = n->next_finger;
        qdb_id start;
        qdb_id_add_pow2(&start, &n->cfg.self.id, i);
        qdb_peer hop;
        const qdb_peer *o = succlist_owner(n, &start);
        int done = o ? (hop = *o, 1) : ring_route(n, &start, NULL, 0, &hop);
        if (done < 0)
            return; /* nobody to ask: the next round tries again */
        if (done) {
            n->next_finger = set_fingers_from(n, i, &hop);
            if (n->next_finger == QDB_FINGER_LO)
                return; /* a whole cycle done */
            continue;
        }
        qdb_msg m = {.type = QDB_MSG_FIND, .target = start};
        qdb_addr last = n->finger_hop[i - QDB_FINGER_LO];
        n->finger_busy = true;
        if (!qdb_addr_is_null(last) && !addr_in(last, n->suspects, n->n_suspects))
            node_call(n, last, &m, RPC_FINGER_FIND, i, 1, NULL);
        else
            node_call(n, hop.addr, &m, RPC_FINGER_FIND, i, 1, &hop);
        return;
    }
}

static void on_find_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    bool done = m->flags & QDB_FIND_DONE;
    qdb_id target;
    if (rpc->kind == RPC_RELOCATE_FIND && rpc->arg == 1) {
        unremember(n, rpc->dst); /* it answers: no longer a stranger */
        /* The lookup through it may come back into our own ring (tables
         * over there still name our nodes, alive again) and teach us
         * nothing.  The peer itself is news: a closer successor of ours,
         * adopted once it answers (Zave), or a node passing over us, which
         * our NOTIFY tells (ring_on_admit_reply).  The peers that the ends
         * of a partition's two arcs remember are just such nodes. */
        if (!qdb_peer_is_null(&rpc->peer)) {
            consider_candidate(n, &rpc->peer);
            send_notify(n, &rpc->peer);
        }
    }
    if (rpc->kind == RPC_JOIN_FIND)
        join_learn(n, m->peer.addr);
    if (rpc->kind == RPC_JOIN_FIND || rpc->kind == RPC_RELOCATE_FIND)
        target = n->cfg.self.id;
    else
        qdb_id_add_pow2(&target, &n->cfg.self.id, rpc->arg);

    if (!done && (rpc->hops >= QDB_NODE_MAX_HOPS || is_self(n, &m->peer) ||
                  qdb_addr_eq(m->peer.addr, rpc->dst))) {
        /* No progress: give up this lookup; the next round tries again. */
        if (rpc->kind == RPC_FINGER_FIND) {
            n->finger_busy = false;
            n->finger_hop[rpc->arg - QDB_FINGER_LO] = (qdb_addr){0};
        } else if (rpc->kind == RPC_JOIN_FIND)
            n->join_next++;
        return;
    }
    if (!done) {
        qdb_msg q = {.type = QDB_MSG_FIND, .target = target};
        unsigned arg = rpc->kind == RPC_RELOCATE_FIND ? 0 : rpc->arg; /* later hops are no probes */
        node_call(n, m->peer.addr, &q, (rpc_kind)rpc->kind, arg, rpc->hops + 1u, &m->peer);
        return;
    }
    if (rpc->kind == RPC_FINGER_FIND) {
        n->finger_busy = false;
        n->finger_hop[rpc->arg - QDB_FINGER_LO] = rpc->dst;
        n->next_finger = set_fingers_from(n, rpc->arg, &m->peer);
        /* Go on with the cycle: up to QDB_FINGERS_PER_ROUND lookups a round
         * (Chord's one a round leaves fingers stale for minutes once rounds
         * back off; a whole cycle a round costs O(log^2 N) frames), and with
         * no limit while the next finger has never been known, so a new
         * node fills its table at once. */
        unsigned j = n->next_finger - QDB_FINGER_LO;
        if (n->next_finger != QDB_FINGER_LO &&
            (n->finger_budget > 0 || !((n->finger_valid >> j) & 1))) {
            if (n->finger_budget > 0)
                n->finger_budget--;
            fix_fingers(n);
        }
        return;
    }
    if (rpc->kind == RPC_RELOCATE_FIND) {
        /* rpc->dst answered "done": it takes m->peer for the successor of
         * our ID.  Not us, and not a closer successor of ours: it passes
         * over us (a ring that a partition split off and that does not know
         * us, or a node that struck us out) and should take us instead.
         * Tell it: a NOTIFY, which it checks, and since we do not name it,
         * refuses as a predecessor but takes as a would-be successor
         * (ring_on_admit_reply).  Without it the two rings a partition
         * left never merged when neither end node probed the other ring:
         * the nodes that remembered a peer there learnt only a successor
         * of their ID that was no better than theirs. */
        if (!is_self(n, &m->peer) && !better_successor(n, &m->peer) &&
            !qdb_addr_eq(rpc->dst, n->cfg.self.addr)) {
            qdb_peer y = {.addr = rpc->dst};
            send_notify(n, &y);
        }
        consider_candidate(n, &m->peer);
        return;
    }
    /* join: the successor of our ID.  Adopt it only once it answers.  One
     * with our very ID is asked too: if it answers, it is alive and we are
     * refused (RPC_JOIN_CONFIRM below); a dead one is dropped in time. */
    if (is_self(n, &m->peer)) { /* a stale view that still holds us: retry later */
        n->join_next++;
        return;
    }
    qdb_msg q = {.type = QDB_MSG_STABILIZE, .peer = n->cfg.self};
    node_call(n, m->peer.addr, &q, RPC_JOIN_CONFIRM, 0, 0, &m->peer);
}

/* ---- rounds, replies, failures ------------------------------------------- */

void ring_round(qdb_node *n)
{
    qdb_time_us now = node_now(n);
    if (n->phase == PHASE_JOINING) {
        if (!node_rpc_pending(n, RPC_JOIN_FIND) && !node_rpc_pending(n, RPC_JOIN_CONFIRM))
            join_try(n);
        n->round_at = now + ring_jitter(n, n->cfg.stabilize_fast);
        return;
    }
    if (n->paused) {
        /* Maintenance off (the simulator's `stabilize off`): no stabilize,
         * no fix-fingers, no predecessor check.  Failures met by RPCs and
         * lookups are still repaired locally. */
        n->round_at = now + ring_jitter(n, n->period);
        return;
    }
    /* Adapt the period: double it after a round that changed nothing. */
    if (n->round_changed) {
        n->quiet_rounds = 0;
        n->period = n->cfg.stabilize_fast;
    } else {
        n->quiet_rounds++;
        n->period = MIN(n->period * 2, n->cfg.stabilize_slow);
    }
    n->round_changed = false;
    n->round_at = now + ring_jitter(n, n->period);
    node_log(n, 5, "round at %" G_GUINT64_FORMAT " period %" G_GUINT64_FORMAT, now, n->period);

    stabilize(n);
    next_candidate(n); /* if it waits behind a question presumed lost */
    resend_hint(n);
    probe_remembered(n);
    n->finger_budget = QDB_FINGERS_PER_ROUND - 1;
    if (n->quiet_rounds == 0)
        n->finger_cycle_at = 0; /* our neighbours moved: fingers may have too */
    fix_fingers(n);
}

void ring_on_reply(qdb_node *n, const node_rpc *rpc, const qdb_msg *m)
{
    if (n->n_succ && qdb_addr_eq(rpc->dst, n->succ[0].addr))
        n->lone_strikeouts = 0; /* it answers: not silent (forget_silent) */
    if (rpc->kind == RPC_STABILIZE || rpc->kind == RPC_WATCH || rpc->kind == RPC_CONFIRM)
        watch_confirmed(n, rpc, m);
    switch (rpc->kind) {
    case RPC_JOIN_FIND:
    case RPC_RELOCATE_FIND:
    case RPC_FINGER_FIND:
        if (m->type == QDB_MSG_FIND_REPLY)
            on_find_reply(n, rpc, m);
        break;
    case RPC_JOIN_CONFIRM:
        if (m->type == QDB_MSG_STABILIZE_REPLY && n->phase == PHASE_JOINING) {
            if (qdb_id_eq(&rpc->peer.id, &n->cfg.self.id)) {
                char a[QDB_ADDR_STRLEN], hex[QDB_ID_HEX + 1];
                qdb_id_to_hex(&n->cfg.self.id, hex);
                hive_refuse(n, "the live node %s already has ID %s: choose another --id",
                            qdb_addr_format(rpc->dst, a), hex);
                break;
            }
            if (!hive_join(n, rpc->dst, m))
                break;
            adopt_joined(n, &rpc->peer, m);
            if (n->has_early && qdb_addr_eq(n->early_src, rpc->dst)) {
                n->has_early = false;
                qdb_msg q = {.type = QDB_MSG_STABILIZE, .rpc = n->early_rpc,
                             .peer = n->early_peer};
                ring_on_stabilize(n, n->early_src, &q);
            }
            /* The answer also names our successor's predecessor: if that
             * node lies between us, the lookup that found our successor was
             * stale (joins race each other) -- move now, as stabilize would,
             * rather than a round later. */
            if ((m->flags & QDB_STABILIZE_HAS_PRED) && consider_candidate(n, &m->pred))
                break;
            send_notify(n, &rpc->peer);
        }
        break;
    case RPC_CANDIDATE:
        if (m->type == QDB_MSG_STABILIZE_REPLY) {
            bool moved = better_successor(n, &rpc->peer); /* still better than ours? */
            if (moved)
                set_succlist(n, &rpc->peer, m->peers, m->n_peers);
            send_notify(n, ring_successor(n));
            next_candidate(n);
            if (moved || n->restabilize)
                stabilize(n); /* keep going at network speed, not one step a round */
        }
        break;
    case RPC_STABILIZE:
        if (m->type == QDB_MSG_STABILIZE_REPLY)
            on_stabilize_reply(n, rpc, m);
        break;
    case RPC_PROBE:
        unsuspect(n, rpc->dst); /* alive after all: offer it again */
        break;
    case RPC_PING:
        watch_pred_alive(n);
        break;
    case RPC_CONFIRM:
        /* A confirmation to our successor asked what the watch asks: its
         * answer is read the same way (a hint's news with it: our STABILIZE
         * told the successor that we heard, ring_on_stabilize). */
        if (!ring_successor(n) || !qdb_peer_eq(ring_successor(n), &rpc->peer))
            break;
        /* fall through */
    case RPC_WATCH:
        /* With replicas the watch asks with a STABILIZE, and its answer is
         * our successor's list as a round's is: taken as it comes.  Left
         * unread, a hint lost on the way found its resends cancelled by
         * the watch's STABILIZE (ring_on_stabilize: "it heard") while the
         * news stayed at the hinting node until our next round, up to
         * stabilize_slow away, at each of the r nodes it travels back (K = 3
         * sweep seed 748: a rejoined node missing from the end of a list
         * for 52 s).  An answer that does not name us is a round's worth of
         * news besides (we notify). */
        if (m->type == QDB_MSG_STABILIZE_REPLY && ring_successor(n) &&
            qdb_peer_eq(ring_successor(n), &rpc->peer)) {
            qdb_peer succ = rpc->peer;
            set_succlist(n, &succ, m->peers, m->n_peers);
        }
        if (n->restabilize || (m->type == QDB_MSG_STABILIZE_REPLY && !reply_names_us(n, m)))
            stabilize(n);
        break;
    case RPC_ADMIT:
        ring_on_admit_reply(n, rpc, m);
        break;
    default:
        break;
    }
}

/* Drop addr from the fingers only: a lookup hop that did not answer once
 * (lost messages happen) is not a dead successor. */
static void forget_finger(qdb_node *n, qdb_addr addr)
{
    for (unsigned j = 0; j < QDB_FINGER_WINDOW; j++)
        if (((n->finger_valid >> j) & 1) && qdb_addr_eq(n->finger[j].addr, addr)) {
            n->finger_valid &= ~(UINT64_C(1) << j);
            n->finger_cycle_at = 0; /* look it up again at the next round */
        }
}

void ring_forget(qdb_node *n, qdb_addr addr)
{
    if (qdb_addr_eq(addr, n->cfg.self.addr))
        return;
    unsuspect(n, addr); /* out of every table: nothing left to avoid */
    admitted_forget(n, addr);
    unsigned k = 0;
    bool first = n->n_succ && qdb_addr_eq(n->succ[0].addr, addr);
    for (unsigned i = 0; i < n->n_succ; i++)
        if (!qdb_addr_eq(n->succ[i].addr, addr))
            n->succ[k++] = n->succ[i];
    bool refill = k != n->n_succ;
    if (refill) {
        n->n_succ = k;
        ring_set_changed(n);
    }
    forget_finger(n, addr);
    if (n->has_pred && qdb_addr_eq(n->pred.addr, addr)) {
        n->failed_pred = n->pred.id;
        n->pred_failed = true;
        n->has_pred = false;
        ring_set_changed(n);
    }
    if (n->phase == PHASE_ACTIVE && n->n_succ == 0) {
        /* Every successor we knew is gone.  Fall back to the nearest finger,
         * then to ourselves; stabilization repairs the rest. */
        const qdb_peer *best = NULL;
        for (unsigned j = 0; j < QDB_FINGER_WINDOW; j++) {
            if (!((n->finger_valid >> j) & 1) || is_self(n, &n->finger[j]))
                continue;
            if (!best || qdb_id_in_open(&n->finger[j].id, &n->cfg.self.id, &best->id))
                best = &n->finger[j];
        }
        n->succ[0] = best ? *best : n->cfg.self;
        n->n_succ = 1;
        node_log(n, 2, "lost every successor; falling back");
    }
    if (first && n->phase == PHASE_ACTIVE) {
        char a[QDB_ADDR_STRLEN];
        node_log(n, 3, "successor %s failed", qdb_addr_format(addr, a));
    }
    /* Refill the list from the successor now, not at the next round (up to
     * stabilize_slow away): a list one entry short, or missing a live node
     * struck out by mistake, was wrong until then -- and so were those of
     * the nodes before us, which copy theirs from ours.  A struck node
     * that lives is back in the answer if its predecessor still has it. */
    if (refill && n->phase == PHASE_ACTIVE)
        stabilize(n);
}

/* A call of a series to one peer (RPC_STABILIZE, RPC_WATCH, RPC_PING,
 * RPC_PROBE) timed out: is the peer struck out now?  After
 * QDB_NODE_STRIKES timeouts in a row, only if nothing vouched for it
 * within QDB_SUSPECT_WINDOW (watch.c, "Suspicion"), and only once
 * QDB_CONFIRMS_FAILED confirmations sent since it last did timed out too
 * (watch.c, "Confirmation"; the earlier strikes send them). */
static qdb_time_us silent_since(const qdb_node *n, const node_rpc *rpc)
{
    return rpc->kind == RPC_PROBE ? suspected_since(n, rpc->dst) : 0;
}

/* The frame of a series (and of its confirmations). */
static int series_frame(const qdb_node *n, const node_rpc *rpc)
{
    return rpc->kind == RPC_STABILIZE ? QDB_MSG_STABILIZE
           : rpc->kind == RPC_WATCH   ? watch_succ_frame(n)
                                      : QDB_MSG_PING;
}

static qdb_time_us strike_at(qdb_node *n, const node_rpc *rpc)
{
    return watch_strike_at(n, rpc->dst, silent_since(n, rpc), series_frame(n, rpc));
}

static bool struck(qdb_node *n, const node_rpc *rpc)
{
    if (rpc->arg < QDB_NODE_STRIKES - 1) {
        watch_doubt(n, rpc->dst, silent_since(n, rpc), series_frame(n, rpc));
        return false;
    }
    return strike_at(n, rpc) == 0;
}

/* The next call of the series: the same question again, counted as one
 * more strike.  Past the last strike (the peer answered something else
 * lately, or its confirmation is under way) it waits just until the
 * window would end or the confirmation times out, not a doubled RTO: a
 * host that died right after its last answer is struck out then, not up
 * to a whole back-off later. */
static void strike_again(qdb_node *n, const node_rpc *rpc)
{
    qdb_msg q = {.type = series_frame(n, rpc)};
    if (rpc->kind == RPC_STABILIZE || rpc->kind == RPC_WATCH)
        q.peer = n->cfg.self;
    bool past = rpc->arg >= QDB_NODE_STRIKES - 1;
    unsigned arg = past ? rpc->arg : rpc->arg + 1u;
    uint64_t id = node_call(n, rpc->dst, &q, (rpc_kind)rpc->kind, arg, 0,
                            rpc->kind == RPC_PROBE ? NULL : &rpc->peer);
    if (past)
        node_deadline(n, id, strike_at(n, rpc));
}

/* Whether a is the only other node we know: our successor list, fingers,
 * predecessor and contender for it (watch.c) name it or ourselves alone. */
static bool only_peer(const qdb_node *n, qdb_addr a)
{
    for (unsigned i = 0; i < n->n_succ; i++)
        if (!qdb_addr_eq(n->succ[i].addr, a) && !is_self(n, &n->succ[i]))
            return false;
    for (unsigned j = 0; j < QDB_FINGER_WINDOW; j++)
        if (((n->finger_valid >> j) & 1) && !qdb_addr_eq(n->finger[j].addr, a) &&
            !is_self(n, &n->finger[j]))
            return false;
    if (n->has_contender && !qdb_addr_eq(n->contender.addr, a))
        return false;
    return !n->has_pred || qdb_addr_eq(n->pred.addr, a) || is_self(n, &n->pred);
}

/* p fell silent (QDB_NODE_STRIKES silences in a row): forget it -- unless it
 * is the only node we know, which it takes QDB_LONE_STRIKEOUTS strike-outs
 * in a row to forget.  Forgetting it leaves us a ring of one (ring_forget's
 * fall-back), and a ring of one beside the live ring is two rings (Zave's
 * AtMostOneRing), which only the remembered-peer probe would merge, rounds
 * later.  Silence is not death: a node that joined a ring of two or three
 * took a successor list of one entry, and three lost round trips under 4%
 * loss struck out its only successor (sweep seed 861 of replicas-k3.scn,
 * with the merge of rings: two cycles at 3.9 s).  A dead process refuses
 * the connection and is forgotten at once (qdb_node_unreachable); a dead
 * host's last partner becomes a ring of one a few rounds later.  Returns
 * whether p was forgotten. */
static bool forget_silent(qdb_node *n, const qdb_peer *p)
{
    remember(n, p);
    if (known_peer(n, p->addr) && only_peer(n, p->addr) &&
        ++n->lone_strikeouts < QDB_LONE_STRIKEOUTS) {
        char a[QDB_ADDR_STRLEN];
        node_log(n, 2, "%s, the only node we know, is silent: kept (strike-out %u of %u)",
                 qdb_addr_format(p->addr, a), n->lone_strikeouts, QDB_LONE_STRIKEOUTS);
        ring_set_changed(n); /* ask again at the fast period */
        return false;
    }
    n->lone_strikeouts = 0;
    ring_forget(n, p->addr);
    return true;
}

void ring_on_failure(qdb_node *n, const node_rpc *rpc)
{
    switch (rpc->kind) {
    case RPC_JOIN_FIND:
    case RPC_JOIN_CONFIRM:
        n->join_next++; /* the next round tries the next peer */
        break;
    case RPC_FINGER_FIND:
        n->finger_busy = false;
        n->finger_hop[rpc->arg - QDB_FINGER_LO] = (qdb_addr){0}; /* a whole lookup next */
        forget_finger(n, rpc->dst);
        break;
    case RPC_STABILIZE:
    case RPC_WATCH: {
        /* Three strikes: a lost message (the network may drop some) is not
         * a failure; three silences in a row, over QDB_SUSPECT_WINDOW at
         * least, are (watch.c, "Suspicion").  A refused connection has already
         * removed the peer (qdb_node_unreachable), so it counts at once.
         * The watch's PING (watch.c) strikes alike. */
        const qdb_peer *s = ring_successor(n);
        if (!s || !qdb_addr_eq(s->addr, rpc->dst)) {
            /* No longer our successor (a closer one was adopted, or it was
             * struck already): its silence is another node's to judge.
             * Struck on this single timeout, a live node dropped out of
             * our successor list until the next round.  Remembered still:
             * if a partition is what silenced it, the probes of
             * remembered peers merge the two rings once it heals. */
            remember(n, &rpc->peer);
            if (n->restabilize)
                stabilize(n);
            break;
        }
        if (!struck(n, rpc)) {
            strike_again(n, rpc);
            break;
        }
        /* The successor does not answer: drop it, move to the next one in
         * the list and stabilize with it at once (ring_forget) -- not after
         * the strikes of the other check (round or watch) still waiting on
         * it. */
        node_cancel(n, rpc->dst, RPC_STABILIZE);
        node_cancel(n, rpc->dst, RPC_WATCH);
        /* ring_forget stabilizes with the next.  Silence is not death (four
         * frames lost in a row happen under 5% loss): a live node struck
         * out is back as soon as it answers -- asked now, not once the
         * next successor names it our way, a round trip later. */
        if (forget_silent(n, &rpc->peer))
            consider_candidate(n, &rpc->peer);
        break;
    }
    case RPC_ADMIT: {
        n->stats.admission_refused++; /* no answer: nothing believed */
        char a[QDB_ADDR_STRLEN];
        node_log(n, 2, "admission: %s did not answer as a node: its %s refused",
                 qdb_addr_format(rpc->dst, a), rpc->arg & ADMIT_SENDER ? "HANDOVER" : "NOTIFY");
        break;
    }
    case RPC_CANDIDATE:
        /* not adopted (Zave); it is in none of our tables */
        forget_finger(n, rpc->dst);
        if (ring_successor(n))
            send_notify(n, ring_successor(n));
        next_candidate(n);
        break;
    case RPC_CONFIRM:
        watch_confirm_failed(n, rpc);
        break;
    case RPC_PROBE:
        /* No longer suspected: it answered a probe since (a strike's RTO
         * doubles after each timeout and can run for most of a minute),
         * it is out of our tables already, or a newer suspect took its
         * slot.  Counted as a death, such a stale strike struck a live
         * node out of our successor list, and the ring was wrong until
         * our next round. */
        if (!addr_in(rpc->dst, n->suspects, n->n_suspects))
            break;
        if (!struck(n, rpc)) {
            strike_again(n, rpc);
            break;
        }
        unsuspect(n, rpc->dst);
        if (only_peer(n, rpc->dst))
            break; /* our successor checks strike it out (forget_silent) */
        if (n->has_pred && qdb_addr_eq(n->pred.addr, rpc->dst)) {
            /* As after the watch's PINGs (RPC_PING below): three lost
             * probes are not always a death.  A live predecessor, told,
             * notifies us again now -- not at its next round, up to
             * stabilize_slow away, with no predecessor here meanwhile. */
            qdb_peer p = n->pred;
            ring_forget(n, rpc->dst);
            send_hint(n, &p);
            break;
        }
        ring_forget(n, rpc->dst); /* dead: repair the tables now, not next round */
        break;
    case RPC_PING:
        if (!n->has_pred || !qdb_addr_eq(n->pred.addr, rpc->dst)) {
            /* No longer our predecessor: nobody to strike (as RPC_STABILIZE
             * above, remembered alike); a contender waiting on it is free
             * to go. */
            remember(n, &rpc->peer);
            watch_pred_failed(n, rpc->dst);
            break;
        }
        /* A predecessor that still sends us frames is not struck out on
         * lost PINGs alone (watch_suspect_at). */
        if (!struck(n, rpc)) {
            strike_again(n, rpc);
            break;
        }
        if (only_peer(n, rpc->dst) && ring_successor(n) &&
            qdb_addr_eq(ring_successor(n)->addr, rpc->dst))
            break; /* our successor too: its checks strike it out (forget_silent) */
        if (!forget_silent(n, &rpc->peer))
            break;
        watch_pred_failed(n, rpc->dst);
        /* Three lost PINGs are not always a death (a lossy link): if it
         * lives, it stabilizes with us now and notifies us again, rather
         * than at its next round, minutes away once its rounds backed off. */
        send_hint(n, &rpc->peer);
        break;
    default:
        break;
    }
}

void ring_on_leave(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    const qdb_peer *l = &m->peer;
    if (n->phase != PHASE_ACTIVE || is_self(n, l))
        return;
    /* Only a neighbour, from its own host, may say it leaves (admission). */
    if (!ring_same_host(src, l->addr) || !ring_vouched(n, l)) {
        n->stats.admission_refused++;
        char a[QDB_ADDR_STRLEN];
        node_log(n, 2, "admission: a LEAVE from %s for a node not our neighbour: refused",
                 qdb_addr_format(src, a));
        return;
    }
    bool was_pred = n->has_pred && qdb_peer_eq(&n->pred, l);
    bool was_succ = n->n_succ && qdb_peer_eq(&n->succ[0], l);
    bool failed = m->flags & QDB_LEAVE_FAILED;
    if (was_succ && m->n_peers > 0 && !is_self(n, &m->peers[0]))
        set_succlist(n, &m->peers[0], m->peers + 1, m->n_peers - 1);
    ring_forget(n, l->addr);
    /* It left: it handed its entries over first.  Failed, it did not: as
     * after a crash, the next predecessor to notify us bounds the orphan arc
     * (ring_on_notify) -- unless the leaver named its own, below. */
    n->pred_failed = failed && was_pred;
    if (was_pred && !qdb_peer_is_null(&m->pred)) {
        /* Our range grows back to the leaver's predecessor (ourselves: we
         * are alone again).  A leaver gave us its entries first -- unless
         * its storage failed: then its arc is ours without them, as after
         * a crash (ring_on_notify): "unavailable" there with K = 1, the
         * replicas we hold otherwise. */
        n->pred = is_self(n, &m->pred) ? n->cfg.self : m->pred;
        n->has_pred = true;
        if (failed) {
            inherit(n, &m->pred.id, &l->id);
            n->pred_failed = false;
        }
    }
    if (failed) {
        char a[QDB_ADDR_STRLEN];
        node_log(n, 2, "%s left: its storage failed; its entries were not handed over",
                 qdb_addr_format(l->addr, a));
    }
    ring_set_changed(n);
}

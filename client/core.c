/* SPDX-License-Identifier: BSD-2-Clause */
/* The sans-I/O client core: see core.h for the contract.
 *
 * Sections
 *   - helpers: clock, ID arithmetic, peer wire form
 *   - location cache: known nodes, sorted by ID, with the range each is
 *     known to own
 *   - sessions: node address -> HELLO state and incarnation
 *   - operations: the per-operation state machine
 *       LOCATE -> FIND* -> HELLO? -> REQUEST -> (BACKOFF -> REQUEST)* -> done
 *   - entry points: recv, unreachable, tick; timer re-arming
 *   - public API
 *
 * Determinism: operations live in a GTree ordered by op id, and every walk
 * over them (tick, unreachable, HELLO replies) goes in that order.  The hash
 * tables (seq -> op, rpc -> op) are only ever probed, never iterated.  The
 * cache and the session table are small arrays searched linearly: O(n) per
 * probe, but n is bounded by the configuration and the order is fixed.
 */
#include "client/core.h"

#include <glib.h>
#include <string.h>

#include "codec.h"
#include "rto.h"

/* Peers whose round trip the core measures (rto.h). */
#define CL_RTO_PEERS 64
/* Live hops of one lookup remembered for going back (older ones are
 * dropped: going back further than this is rarer than a restart). */
#define CL_PATH_MAX 16
/* FINDs and PINGs that timed out, kept to measure their late answers. */
#define CL_LATE 8

typedef enum op_state {
    ST_FIND,    /* FIND(rpc) sent to find_addr */
    ST_HELLO,   /* waiting for the session with node */
    ST_REQUEST, /* request sent to node */
    ST_BACKOFF, /* UNSTABLE met: waiting before asking node again */
    ST_VERIFY,  /* a pure lookup's owner: PING(rpc) sent, is it alive? */
    ST_FINISH,  /* completion deferred to the next tick (decided inside the API) */
} op_state;

typedef struct cl_op {
    uint64_t op_id;
    int op; /* 0: pure lookup */
    qdb_id id;     /* the ID being located (REMOVE_ALL: the current step's) */
    int use_cache;
    qdb_client_done_fn done;
    void *arg;
    GByteArray *frame; /* the encoded request, kept for retransmission */
    uint32_t seq;      /* 0: none (lookups) */

    op_state state;
    qdb_time_us start, expire, deadline;

    /* lookup */
    uint32_t rpc; /* 0: no FIND outstanding */
    qdb_addr find_addr;
    qdb_peer find_peer;
    bool find_peer_known;
    unsigned lookup_hops;
    unsigned failures;      /* hops routed around (dead or no help) */
    unsigned restarts;      /* lookups started over with no hop to go back to */
    bool bootstrap_down;
    qdb_time_us sent;       /* of the FIND or request in flight: the RTT sample */
    /* Routing around failures (Chord ToN 2003, Sec. IV-E): the hops of this
     * lookup that answered, newest last; when a hop fails, the lookup goes
     * back to the newest live one and asks it again, telling it which nodes
     * were found dead (FIND's exclusion list), so it names its next best. */
    qdb_peer path[CL_PATH_MAX];
    uint32_t path_known;    /* bit i: path[i].id is known */
    unsigned n_path;
    qdb_addr dead[QDB_FIND_EXCLUDE_MAX]; /* the newest when more were met */
    unsigned n_dead, dead_next;
    unsigned dead_contacts; /* hops that timed out or refused */

    /* the located owner */
    qdb_peer node;
    bool located;
    unsigned tx_count;      /* transmissions of seq to node */
    unsigned step_attempts; /* attempts at this step (REMOVE_ALL: this node) */
    bool attempt_open;      /* the next transmission starts an attempt */
    unsigned no_session;
    qdb_time_us backoff;
    /* A read's owner that fell silent: its late answer is still the answer
     * (on_reply), wherever the operation went looking since. */
    qdb_peer silent_owner;
    bool has_silent_owner;

    /* REMOVE_ALL and PREFIX walk */
    qdb_peer first, prev;
    bool have_prev;
    /* PREFIX: what the nodes answered so far */
    GPtrArray *found;   /* GBytes aliases */
    uint64_t count, max;
    bool count_only;

    int final_status; /* ST_FINISH */

    /* for the result */
    unsigned hops, lookups, wrong_node, unstable, attempts;
} cl_op;

static bool op_is_dead(const cl_op *op, qdb_addr a)
{
    for (unsigned i = 0; i < op->n_dead; i++)
        if (qdb_addr_eq(op->dead[i], a))
            return true;
    return false;
}

static void op_mark_dead(cl_op *op, qdb_addr a)
{
    if (op_is_dead(op, a))
        return;
    if (op->n_dead < QDB_FIND_EXCLUDE_MAX)
        op->dead[op->n_dead++] = a;
    else
        op->dead[op->dead_next++ % QDB_FIND_EXCLUDE_MAX] = a;
}

/* a answered: it is alive after all (a slow node, not a dead one), and is
 * no longer excluded from this operation's FINDs. */
static void op_unmark_dead(cl_op *op, qdb_addr a)
{
    for (unsigned i = 0; i < op->n_dead; i++)
        if (qdb_addr_eq(op->dead[i], a)) {
            memmove(op->dead + i, op->dead + i + 1, (op->n_dead - i - 1) * sizeof(qdb_addr));
            op->n_dead--;
            op->dead_next = 0;
            return;
        }
}

/* src answered: it is the newest live hop (once, even when asked again). */
static void path_push(cl_op *op, qdb_addr src, const qdb_peer *peer)
{
    if (op->n_path > 0 && qdb_addr_eq(op->path[op->n_path - 1].addr, src))
        return;
    if (op->n_path == CL_PATH_MAX) {
        memmove(op->path, op->path + 1, (CL_PATH_MAX - 1) * sizeof(qdb_peer));
        op->path_known >>= 1;
        op->n_path--;
    }
    op->path[op->n_path] = peer ? *peer : (qdb_peer){ .addr = src };
    if (peer)
        op->path_known |= UINT32_C(1) << op->n_path;
    else
        op->path_known &= ~(UINT32_C(1) << op->n_path);
    op->n_path++;
}

/* addr failed: drop it from the path wherever it is (with what came after
 * it, which it named). */
static void path_drop(cl_op *op, qdb_addr addr)
{
    for (unsigned i = 0; i < op->n_path; i++)
        if (qdb_addr_eq(op->path[i].addr, addr)) {
            op->n_path = i;
            return;
        }
}

typedef struct cache_entry {
    qdb_peer peer;
    qdb_id lo; /* when has_lo: peer owns (lo, peer.id] */
    bool has_lo;
    uint64_t used;
} cache_entry;

enum { SESSION_PENDING = 1, SESSION_OPEN = 2 };

typedef struct session {
    qdb_addr addr;
    int state;
    uint64_t incarnation;
    uint64_t used;
} session;

struct qdb_client_core {
    qdb_client_config cfg;
    qdb_clock *clock;
    qdb_transport *transport;
    qdb_random *random;
    uint64_t client_id;

    uint64_t next_op_id;
    uint32_t next_seq;
    uint32_t next_rpc;
    uint64_t use_counter;

    GTree *ops;          /* &op_id -> cl_op*, ordered */
    GHashTable *by_seq;  /* seq -> cl_op*, probed only */
    GHashTable *by_rpc;  /* rpc -> cl_op*, probed only */
    GArray *cache;       /* cache_entry, sorted by peer.id */
    GArray *sessions;    /* session */
    GArray *unreach_q;   /* qdb_addr: synchronous send failures, handled at tick */
    GByteArray *scratch;
    qdb_rto rto;         /* per-peer timeouts */
    /* FINDs and PINGs that timed out: their answers may still come (slow,
     * not dead), and are then still an answer to the same question. */
    struct {
        uint32_t rpc;
        qdb_addr addr;
        qdb_time_us sent;
        uint64_t op_id;
        qdb_id target;
        qdb_peer peer; /* addr's ID, when peer_known */
        bool peer_known;
        bool ping;     /* a pure lookup's owner check, not a FIND */
    } late[CL_LATE];
    unsigned late_next;

    bool is_armed;
    qdb_time_us armed;
    int in_api; /* > 0 inside submit/lookup: completions are deferred */

    qdb_client_stats stats;
};

/* ---- helpers ------------------------------------------------------------- */

static qdb_time_us cl_now(qdb_client_core *c)
{
    return c->clock->now(c->clock);
}

static bool is_mutation(int op)
{
    return op != 0 && !qdb_msg_is_read(op);
}

/* Operations that visit every node around the ring. */
static bool is_walk(int op)
{
    return op == QDB_MSG_REMOVE_ALL || op == QDB_MSG_PREFIX;
}

/* out = a - 1 (mod 2^256) */
static void id_dec(qdb_id *out, const qdb_id *a)
{
    *out = *a;
    for (int i = QDB_ID_BYTES - 1; i >= 0; i--) {
        if (out->b[i]-- != 0)
            break;
    }
}

static uint32_t next_seq(qdb_client_core *c)
{
    uint32_t s = c->next_seq++;
    if (c->next_seq == 0)
        c->next_seq = 1;
    return s;
}

static uint32_t next_rpc(qdb_client_core *c)
{
    uint32_t r = c->next_rpc++;
    if (c->next_rpc == 0)
        c->next_rpc = 1;
    return r;
}

/* Send a frame.  A synchronous failure is handled like an unreachable report,
 * at the next tick (never re-entering the caller). */
static bool cl_send(qdb_client_core *c, qdb_addr dst, const GByteArray *frame)
{
    int rc = c->transport->send(c->transport, dst, frame->data, frame->len);
    if (rc != QDB_OK) {
        for (guint i = 0; i < c->unreach_q->len; i++)
            if (qdb_addr_eq(g_array_index(c->unreach_q, qdb_addr, i), dst))
                return false;
        g_array_append_val(c->unreach_q, dst);
        return false;
    }
    c->stats.frames_out++;
    return true;
}

/* ---- location cache ---------------------------------------------------------
 * Nodes learned from FIND answers, WRONG_NODE hints and served requests.
 * An entry may know a range the node owns: (asker, owner] from a done=1 FIND
 * answer, or at least (id - 1, owner] once the owner served id.  Eviction is
 * least recently used by a core-wide counter, so it is deterministic. */

static void cache_remove_addr(qdb_client_core *c, qdb_addr addr)
{
    for (guint i = c->cache->len; i-- > 0;)
        if (qdb_addr_eq(g_array_index(c->cache, cache_entry, i).peer.addr, addr))
            g_array_remove_index(c->cache, i);
}

static cache_entry *cache_find_addr(qdb_client_core *c, qdb_addr addr)
{
    for (guint i = 0; i < c->cache->len; i++) {
        cache_entry *e = &g_array_index(c->cache, cache_entry, i);
        if (qdb_addr_eq(e->peer.addr, addr))
            return e;
    }
    return NULL;
}

static void cache_learn(qdb_client_core *c, const qdb_peer *p, const qdb_id *lo)
{
    if (qdb_peer_is_null(p))
        return;
    /* One address, one ID: a node that came back with a new ID replaces its old entry. */
    for (guint i = c->cache->len; i-- > 0;) {
        cache_entry *e = &g_array_index(c->cache, cache_entry, i);
        if (qdb_addr_eq(e->peer.addr, p->addr) && !qdb_id_eq(&e->peer.id, &p->id))
            g_array_remove_index(c->cache, i);
    }
    guint i = 0;
    while (i < c->cache->len &&
           qdb_id_cmp(&g_array_index(c->cache, cache_entry, i).peer.id, &p->id) < 0)
        i++;
    cache_entry *e;
    if (i < c->cache->len && qdb_id_eq(&g_array_index(c->cache, cache_entry, i).peer.id, &p->id)) {
        e = &g_array_index(c->cache, cache_entry, i);
        e->peer.addr = p->addr;
    } else {
        cache_entry fresh = { .peer = *p };
        g_array_insert_val(c->cache, i, fresh);
        e = &g_array_index(c->cache, cache_entry, i);
    }
    e->used = ++c->use_counter;
    /* Keep the wider range: (lo, id] contains (e->lo, id] when e->lo lies in it. */
    if (lo != NULL && (!e->has_lo || qdb_id_in_open(&e->lo, lo, &p->id))) {
        e->lo = *lo;
        e->has_lo = true;
    }
    if (c->cache->len > c->cfg.cache_capacity) {
        guint victim = 0;
        uint64_t oldest = UINT64_MAX;
        for (guint j = 0; j < c->cache->len; j++) {
            cache_entry *x = &g_array_index(c->cache, cache_entry, j);
            if (x->used < oldest) {
                oldest = x->used;
                victim = j;
            }
        }
        g_array_remove_index(c->cache, victim);
    }
}

/* The cached node whose known range covers id, the first clockwise from id
 * when several do; NULL when none. */
static const qdb_peer *cache_covering(qdb_client_core *c, const qdb_id *id)
{
    cache_entry *best = NULL;
    qdb_id best_d, d;
    for (guint i = 0; i < c->cache->len; i++) {
        cache_entry *e = &g_array_index(c->cache, cache_entry, i);
        if (!e->has_lo || !qdb_id_in_half(id, &e->lo, &e->peer.id))
            continue;
        qdb_id_distance(&d, id, &e->peer.id);
        if (best == NULL || qdb_id_cmp(&d, &best_d) < 0) {
            best = e;
            best_d = d;
        }
    }
    if (best == NULL)
        return NULL;
    best->used = ++c->use_counter;
    return &best->peer;
}

/* The cached node closest before id (strictly), NULL when the cache is empty. */
static const cache_entry *cache_preceding(qdb_client_core *c, const qdb_id *id)
{
    cache_entry *best = NULL;
    qdb_id best_d, d;
    for (guint i = 0; i < c->cache->len; i++) {
        cache_entry *e = &g_array_index(c->cache, cache_entry, i);
        if (qdb_id_eq(&e->peer.id, id))
            continue;
        qdb_id_distance(&d, &e->peer.id, id);
        if (best == NULL || qdb_id_cmp(&d, &best_d) < 0) {
            best = e;
            best_d = d;
        }
    }
    if (best != NULL)
        best->used = ++c->use_counter;
    return best;
}

/* ---- sessions -------------------------------------------------------------- */

static session *session_find(qdb_client_core *c, qdb_addr addr)
{
    for (guint i = 0; i < c->sessions->len; i++) {
        session *s = &g_array_index(c->sessions, session, i);
        if (qdb_addr_eq(s->addr, addr))
            return s;
    }
    return NULL;
}

static void session_forget(qdb_client_core *c, qdb_addr addr)
{
    for (guint i = 0; i < c->sessions->len; i++) {
        if (qdb_addr_eq(g_array_index(c->sessions, session, i).addr, addr)) {
            g_array_remove_index(c->sessions, i);
            return;
        }
    }
}

/* A new PENDING session; evicts the least recently used open one when full
 * (pending ones are kept: operations wait on them). */
static session *session_add_pending(qdb_client_core *c, qdb_addr addr)
{
    if (c->sessions->len >= c->cfg.session_capacity) {
        gint victim = -1;
        uint64_t oldest = UINT64_MAX;
        for (guint j = 0; j < c->sessions->len; j++) {
            session *x = &g_array_index(c->sessions, session, j);
            if (x->state == SESSION_OPEN && x->used < oldest) {
                oldest = x->used;
                victim = (gint)j;
            }
        }
        if (victim >= 0)
            g_array_remove_index(c->sessions, (guint)victim);
    }
    session s = { .addr = addr, .state = SESSION_PENDING, .used = ++c->use_counter };
    g_array_append_val(c->sessions, s);
    return &g_array_index(c->sessions, session, c->sessions->len - 1);
}

/* Forget everything known about a node that failed: cache entries, and its
 * session when the connection is known to be gone. */
static void cl_forget(qdb_client_core *c, qdb_addr addr, bool sessions)
{
    cache_remove_addr(c, addr);
    if (sessions)
        session_forget(c, addr);
}

/* ---- operations ------------------------------------------------------------- */

typedef struct collect_ctx {
    GArray *ids;
    bool (*want)(const cl_op *op, const void *arg);
    const void *arg;
} collect_ctx;

static gboolean collect_fn(gpointer key, gpointer value, gpointer data)
{
    collect_ctx *x = data;
    if (x->want == NULL || x->want(value, x->arg))
        g_array_append_val(x->ids, *(const uint64_t *)key);
    return FALSE;
}

/* The ids of the operations that want() accepts, in op id order.  Walks
 * collect first and act after: acting may complete operations and start new
 * ones (from done callbacks).  g_tree_foreach keeps us on GLib 2.66. */
static GArray *collect_ops(qdb_client_core *c, bool (*want)(const cl_op *, const void *),
                           const void *arg)
{
    collect_ctx x = { g_array_new(FALSE, FALSE, sizeof(uint64_t)), want, arg };
    g_tree_foreach(c->ops, collect_fn, &x);
    return x.ids;
}

static void op_free(cl_op *op)
{
    if (op->frame != NULL)
        g_byte_array_unref(op->frame);
    if (op->found != NULL)
        g_ptr_array_free(op->found, TRUE);
    g_free(op);
}

static void op_set_seq(qdb_client_core *c, cl_op *op, uint32_t seq)
{
    if (op->seq != 0 && g_hash_table_lookup(c->by_seq, GUINT_TO_POINTER(op->seq)) == op)
        g_hash_table_remove(c->by_seq, GUINT_TO_POINTER(op->seq));
    op->seq = seq;
    if (seq != 0)
        g_hash_table_insert(c->by_seq, GUINT_TO_POINTER(seq), op);
}

static void op_clear_rpc(qdb_client_core *c, cl_op *op)
{
    if (op->rpc != 0 && g_hash_table_lookup(c->by_rpc, GUINT_TO_POINTER(op->rpc)) == op)
        g_hash_table_remove(c->by_rpc, GUINT_TO_POINTER(op->rpc));
    op->rpc = 0;
}

/* Complete an operation: unlink it, report, free.  Inside the API the
 * completion is deferred to the next tick (done never fires from submit). */
static void op_finish(qdb_client_core *c, cl_op *op, int status, const uint8_t *content,
                      size_t content_len)
{
    if (c->in_api > 0) {
        g_assert(content == NULL);
        op_clear_rpc(c, op);
        op->state = ST_FINISH;
        op->final_status = status;
        op->deadline = cl_now(c);
        return;
    }
    op_clear_rpc(c, op);
    op_set_seq(c, op, 0);
    g_tree_remove(c->ops, &op->op_id);

    qdb_client_result r = {
        .op_id = op->op_id,
        .op = op->op,
        .status = status,
        .content = content,
        .content_len = content_len,
        .hops = op->hops,
        .lookups = op->lookups,
        .wrong_node = op->wrong_node,
        .unstable = op->unstable,
        .attempts = op->attempts,
        .dead_contacts = op->dead_contacts,
        .latency = cl_now(c) - op->start,
    };
    if (!is_walk(op->op))
        r.id = op->id;
    if (op->located)
        r.owner = op->node;
    if (status == QDB_OK)
        c->stats.ok++;
    else
        c->stats.failed++;
    if (status == QDB_E_TIMEOUT)
        c->stats.timeouts++;
    if (op->done != NULL)
        op->done(op->arg, &r);
    op_free(op);
}

/* A new rpc for op's next FIND or PING to addr, with its deadline. */
static void op_new_rpc(qdb_client_core *c, cl_op *op, qdb_addr addr, op_state state)
{
    op_clear_rpc(c, op);
    op->rpc = next_rpc(c);
    g_hash_table_insert(c->by_rpc, GUINT_TO_POINTER(op->rpc), op);
    op->state = state;
    op->sent = cl_now(c);
    op->deadline = op->sent + qdb_rto_timeout(&c->rto, addr);
}

static void op_send_find(qdb_client_core *c, cl_op *op, qdb_addr addr, const qdb_peer *peer)
{
    op->find_addr = addr;
    op->find_peer_known = peer != NULL;
    if (peer != NULL)
        op->find_peer = *peer;
    op_new_rpc(c, op, addr, ST_FIND);

    /* Never the asked node itself: a silent node asked again (it may be
     * slow) could only answer "ask me again" to its own exclusion. */
    qdb_msg m = { .type = QDB_MSG_FIND, .rpc = op->rpc, .target = op->id };
    for (unsigned i = 0; i < op->n_dead; i++)
        if (!qdb_addr_eq(op->dead[i], addr))
            m.exclude[m.n_exclude++] = op->dead[i];
    g_byte_array_set_size(c->scratch, 0);
    int rc = qdb_msg_encode(&m, c->scratch);
    g_assert(rc == QDB_OK);
    cl_send(c, addr, c->scratch);
}

/* Start an iterative lookup at addr (peer: its ID when known). */
static void op_lookup_from(qdb_client_core *c, cl_op *op, qdb_addr addr, const qdb_peer *peer)
{
    op->lookups++;
    c->stats.lookups++;
    op->lookup_hops = 0;
    op->n_path = 0;
    if (peer == NULL) {
        const cache_entry *e = cache_find_addr(c, addr);
        if (e != NULL)
            peer = &e->peer;
    }
    op_send_find(c, op, addr, peer);
}

/* Restart a lookup after a failure: from the bootstrap; when it refused or
 * fell silent, from the closest cached node; none: a silent bootstrap once
 * more (it may be slow or stopped: its timeout has backed off), a refusing
 * one is the end. */
static void op_restart(qdb_client_core *c, cl_op *op)
{
    if (!op->bootstrap_down && !op_is_dead(op, c->cfg.bootstrap)) {
        op_lookup_from(c, op, c->cfg.bootstrap, NULL);
        return;
    }
    const cache_entry *e = cache_preceding(c, &op->id);
    if (e != NULL) {
        qdb_peer p = e->peer;
        op_lookup_from(c, op, p.addr, &p);
        return;
    }
    if (!op->bootstrap_down) {
        /* the same question to the same silent node: back off (RFC 6298) */
        qdb_rto_backoff(&c->rto, c->cfg.bootstrap);
        op_lookup_from(c, op, c->cfg.bootstrap, NULL);
        return;
    }
    op_finish(c, op, QDB_E_CONNECTION_REFUSED, NULL, 0);
}

/* Why a node failed an operation. */
typedef enum fail_why {
    FAIL_REFUSED, /* unreachable: refused, reset -- dead */
    FAIL_SILENT,  /* no answer within its RTO: dead, or only slow */
    FAIL_NO_HELP, /* answered, but cannot help (cannot route yet, names an excluded node) */
} fail_why;

/* A FIND or HELLO target, a GET's owner or a pure lookup's owner failed
 * (why), or could not help.  Forget it, and go back to the newest live hop
 * of the lookup, which is asked again with addr excluded: it names its next
 * best candidate (a closer finger, then its successor list; for an owner,
 * the next live successor).  With no hop to go back to, start over from the
 * bootstrap or the closest cached node.  Refusals and useless answers are
 * bounded by max_hops such detours and lookup_retries restarts (then
 * QDB_E_UNSTABLE: the ring cannot be explored).  Silence is not: a node
 * that answers late is slow, not dead (its late answer still counts:
 * late_claim), so a silent node only ever costs its RTO and the operation
 * goes on until its timeout (QDB_E_TIMEOUT).  Counting silences ended every
 * operation on one overloaded node with QDB_E_UNSTABLE after four short
 * waits, long before its deadline. */
static void op_node_failed(qdb_client_core *c, cl_op *op, qdb_addr addr, fail_why why)
{
    bool counted = why != FAIL_SILENT;
    cl_forget(c, addr, why == FAIL_REFUSED);
    if (why == FAIL_REFUSED && qdb_addr_eq(addr, c->cfg.bootstrap))
        op->bootstrap_down = true;
    op_mark_dead(op, addr);
    if (why != FAIL_NO_HELP) {
        op->dead_contacts++;
        c->stats.dead_contacts++;
    }
    path_drop(op, addr);
    if (counted && ++op->failures > c->cfg.max_hops) {
        op_finish(c, op, QDB_E_UNSTABLE, NULL, 0);
        return;
    }
    if (op->n_path > 0) {
        unsigned top = op->n_path - 1;
        qdb_peer hop = op->path[top];
        op_send_find(c, op, hop.addr, (op->path_known >> top) & 1 ? &hop : NULL);
        return;
    }
    if (counted && ++op->restarts > c->cfg.lookup_retries) {
        op_finish(c, op, QDB_E_UNSTABLE, NULL, 0);
        return;
    }
    op_restart(c, op);
}

/* Send (or resend) the request frame to the located node. */
static void op_transmit(qdb_client_core *c, cl_op *op)
{
    op->state = ST_REQUEST;
    op->sent = cl_now(c);
    op->deadline = op->sent + qdb_rto_timeout(&c->rto, op->node.addr);
    if (cl_send(c, op->node.addr, op->frame)) {
        if (op->attempt_open) {
            op->attempt_open = false;
            op->step_attempts++;
            op->attempts++;
        }
        op->tx_count++;
        if (op->tx_count > 1)
            c->stats.retransmits++;
    }
}

/* Make sure a session with the node is open, then transmit. */
static void op_send_request(qdb_client_core *c, cl_op *op)
{
    session *s = session_find(c, op->node.addr);
    if (s != NULL && s->state == SESSION_OPEN) {
        s->used = ++c->use_counter;
        op_transmit(c, op);
        return;
    }
    if (s == NULL) {
        session_add_pending(c, op->node.addr);
        qdb_msg m = { .type = QDB_MSG_HELLO, .seq = c->client_id };
        g_byte_array_set_size(c->scratch, 0);
        int rc = qdb_msg_encode(&m, c->scratch);
        g_assert(rc == QDB_OK);
        c->stats.hellos++;
        cl_send(c, op->node.addr, c->scratch);
    }
    op->state = ST_HELLO;
    op->deadline = cl_now(c) + qdb_rto_timeout(&c->rto, op->node.addr);
}

/* A walk's next step: the same request under op->seq. */
static void op_reencode(cl_op *op)
{
    qdb_msg m;
    GByteArray *old = op->frame;
    int rc = qdb_msg_decode(old->data, old->len, &m);
    g_assert(rc == QDB_OK);
    m.seq = op->seq;
    op->frame = g_byte_array_new();
    rc = qdb_msg_encode(&m, op->frame);
    g_assert(rc == QDB_OK);
    g_byte_array_unref(old); /* m pointed into it */
}

static gint bytes_cmp(gconstpointer a, gconstpointer b)
{
    return g_bytes_compare(*(GBytes *const *)a, *(GBytes *const *)b);
}

/* A PREFIX walk is complete: the aliases of every node, sorted and without
 * the duplicates a moving range may give, as a PREFIX reply payload. */
static void op_finish_prefix(qdb_client_core *c, cl_op *op)
{
    g_ptr_array_sort(op->found, bytes_cmp);
    uint64_t kept = 0;
    for (guint i = 0; i < op->found->len; i++)
        if (i == 0 || !g_bytes_equal(op->found->pdata[i], op->found->pdata[i - 1]))
            kept++;
    if (!op->count_only && kept > op->max) {
        op_finish(c, op, QDB_E_TOO_MANY, NULL, 0);
        return;
    }
    GByteArray *out = g_byte_array_new();
    uint8_t tmp[10];
    g_byte_array_append(out, tmp, (guint)qdb_varint_put(tmp, op->count_only ? op->count : kept));
    for (guint i = 0; i < op->found->len; i++) {
        if (i > 0 && g_bytes_equal(op->found->pdata[i], op->found->pdata[i - 1]))
            continue;
        gsize len;
        const uint8_t *a = g_bytes_get_data(op->found->pdata[i], &len);
        g_byte_array_append(out, tmp, (guint)qdb_varint_put(tmp, len));
        g_byte_array_append(out, a, (guint)len);
    }
    op_finish(c, op, QDB_OK, out->data, out->len);
    g_byte_array_free(out, TRUE);
}

/* Fold one node's PREFIX answer into op: QDB_OK, QDB_E_PROTOCOL for a
 * payload that is not a count and whole aliases, QDB_E_TOO_MANY past max. */
static int op_add_prefix(cl_op *op, const uint8_t *p, size_t len)
{
    uint64_t n;
    int k = qdb_varint_get(p, len, &n);
    if (k <= 0)
        return QDB_E_PROTOCOL;
    size_t at = (size_t)k;
    if (op->count_only) {
        op->count += n;
        return at == len ? QDB_OK : QDB_E_PROTOCOL;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t alen;
        k = qdb_varint_get(p + at, len - at, &alen);
        if (k <= 0 || alen > QDB_MAX_ALIAS || alen > len - at - (size_t)k)
            return QDB_E_PROTOCOL;
        at += (size_t)k;
        g_ptr_array_add(op->found, g_bytes_new(p + at, (size_t)alen));
        at += (size_t)alen;
    }
    if (at != len)
        return QDB_E_PROTOCOL;
    /* duplicates are only removed at the end: a close call may still pass */
    return op->found->len > op->max + 1 ? QDB_E_TOO_MANY : QDB_OK;
}

/* The owner of op->id is known. */
static void op_located(qdb_client_core *c, cl_op *op, const qdb_peer *owner)
{
    op_clear_rpc(c, op);
    if (is_walk(op->op) && op->have_prev) {
        /* Back at (or past) the start: the walk is complete. */
        if (qdb_id_eq(&owner->id, &op->first.id) ||
            !qdb_id_in_open(&owner->id, &op->prev.id, &op->first.id)) {
            if (op->op == QDB_MSG_PREFIX)
                op_finish_prefix(c, op);
            else
                op_finish(c, op, QDB_OK, NULL, 0);
            return;
        }
    }
    if (!op->located || !qdb_peer_eq(&op->node, owner))
        op->tx_count = 0;
    op->node = *owner;
    op->located = true;
    if (op->op == 0) {
        /* A node names its successor as the owner without knowing it is
         * alive: check, so a lookup never returns a dead node (the node that
         * answered, or one that served this ID from the cache, is). */
        if (op->n_path > 0 && !qdb_addr_eq(op->path[op->n_path - 1].addr, owner->addr)) {
            op_new_rpc(c, op, owner->addr, ST_VERIFY);
            qdb_msg m = { .type = QDB_MSG_PING, .rpc = op->rpc };
            g_byte_array_set_size(c->scratch, 0);
            int rc = qdb_msg_encode(&m, c->scratch);
            g_assert(rc == QDB_OK);
            cl_send(c, owner->addr, c->scratch);
            return;
        }
        op_finish(c, op, QDB_OK, NULL, 0);
        return;
    }
    if (is_walk(op->op) && !op->have_prev)
        op->first = *owner;
    op->attempt_open = true;
    op_send_request(c, op);
}

/* Find the owner: from the cache when it covers the ID, else a lookup. */
static void op_locate(qdb_client_core *c, cl_op *op)
{
    if (op->use_cache) {
        /* Not for REMOVE_ALL: a node answers it without a range check, so a
         * stale cached range would skip a node that joined in between.  Each
         * step asks the ring, starting from the closest cached node. */
        const qdb_peer *p = is_walk(op->op) ? NULL : cache_covering(c, &op->id);
        if (p != NULL) {
            qdb_peer owner = *p;
            c->stats.cache_hits++;
            op_located(c, op, &owner);
            return;
        }
        const cache_entry *e = cache_preceding(c, &op->id);
        if (e != NULL) {
            qdb_peer start = e->peer;
            op_lookup_from(c, op, start.addr, &start);
            return;
        }
    }
    if (op->bootstrap_down) {
        op_restart(c, op);
        return;
    }
    op_lookup_from(c, op, c->cfg.bootstrap, NULL);
}

/* ---- replies ------------------------------------------------------------------ */

static bool waits_on_hello(const cl_op *op, const void *arg)
{
    return op->state == ST_HELLO && qdb_addr_eq(op->node.addr, *(const qdb_addr *)arg);
}

static void on_hello_reply(qdb_client_core *c, qdb_addr src, const qdb_msg *m)
{
    session *s = session_find(c, src);
    bool ok = m->status == QDB_OK && m->content_len == 8;
    if (s == NULL && ok) {
        /* The answer to a HELLO that timed out (op_expired forgot it): the
         * node was slow, not dead, and knows us now -- the session is open,
         * and the next request to it needs no HELLO of its own. */
        s = session_add_pending(c, src);
    } else if (s == NULL || s->state != SESSION_PENDING) {
        c->stats.stray_frames++;
        return;
    }
    if (ok) {
        s->state = SESSION_OPEN;
        s->incarnation = qdb_be64_get(m->content);
        s->used = ++c->use_counter;
    } else {
        session_forget(c, src);
    }

    /* Wake the operations waiting on this session, in op id order. */
    GArray *ids = collect_ops(c, waits_on_hello, &src);
    for (guint i = 0; i < ids->len; i++) {
        cl_op *op = g_tree_lookup(c->ops, &g_array_index(ids, uint64_t, i));
        if (op == NULL || op->state != ST_HELLO || !qdb_addr_eq(op->node.addr, src))
            continue;
        if (ok)
            op_transmit(c, op);
        else
            op_node_failed(c, op, src, FAIL_NO_HELP);
    }
    g_array_free(ids, TRUE);
}

static void on_request_ok(qdb_client_core *c, cl_op *op, const qdb_msg *m)
{
    if (op->tx_count == 1) /* a retransmission's answer is ambiguous (Karn) */
        qdb_rto_sample(&c->rto, op->node.addr, cl_now(c) - op->sent);
    qdb_id lo;
    id_dec(&lo, &op->id);
    cache_learn(c, &op->node, &lo);

    if (is_walk(op->op) && m->status == QDB_OK) {
        if (op->op == QDB_MSG_PREFIX) {
            int rc = op_add_prefix(op, m->content, m->content_len);
            if (rc != QDB_OK) {
                op_finish(c, op, rc, NULL, 0);
                return;
            }
        }
        /* Next step: the owner of (this node's ID + 1), under a new seq. */
        op->prev = op->node;
        op->have_prev = true;
        qdb_id_add_pow2(&op->id, &op->node.id, 0);
        op_set_seq(c, op, next_seq(c));
        op_reencode(op);
        op->step_attempts = 0;
        op->no_session = 0;
        op->has_silent_owner = false;
        op->backoff = c->cfg.backoff;
        op->tx_count = 0;
        op_locate(c, op);
        return;
    }
    const uint8_t *content = NULL;
    size_t len = 0;
    if (op->op == QDB_MSG_GET || op->op == QDB_MSG_GET_UPDATE || op->op == QDB_MSG_CAS ||
        op->op == QDB_MSG_GET_REMOVE || op->op == QDB_MSG_REMOVE_IF ||
        op->op == QDB_MSG_GET_META) {
        content = m->content;
        len = m->content_len;
    }
    op_finish(c, op, m->status, content, len);
}

static void on_reply(qdb_client_core *c, qdb_addr src, const qdb_msg *m)
{
    if (m->seq == 0) {
        on_hello_reply(c, src, m);
        return;
    }
    cl_op *op = m->seq <= UINT32_MAX ? g_hash_table_lookup(c->by_seq, GUINT_TO_POINTER((guint)m->seq))
                                     : NULL;
    if (op != NULL && op->state != ST_FINISH && op->has_silent_owner &&
        qdb_addr_eq(src, op->silent_owner.addr) && !qdb_addr_eq(src, op->node.addr) &&
        m->status != QDB_E_WRONG_NODE && m->status != QDB_E_UNSTABLE &&
        m->status != QDB_E_NO_SESSION) {
        /* The read's owner answered late: slow, not dead.  Its answer is
         * the answer (reads only: a mutation is never sent to two nodes). */
        g_assert(!is_mutation(op->op));
        op_clear_rpc(c, op);
        op->node = op->silent_owner;
        op->located = true;
        op->tx_count = 2; /* no RTT sample from it (Karn) */
        on_request_ok(c, op, m);
        return;
    }
    if (op == NULL || op->state == ST_FINISH || !op->located || op->tx_count == 0 ||
        !qdb_addr_eq(src, op->node.addr)) {
        c->stats.stray_frames++;
        return;
    }
    switch (m->status) {
    case QDB_E_WRONG_NODE:
    case QDB_E_UNSTABLE:
    case QDB_E_NO_SESSION:
        /* "Did not run" answers only move an operation waiting for them. */
        if (op->state != ST_REQUEST) {
            c->stats.stray_frames++;
            return;
        }
        break;
    default:
        on_request_ok(c, op, m);
        return;
    }

    if (m->status == QDB_E_WRONG_NODE) {
        op->wrong_node++;
        c->stats.wrong_node++;
        qdb_peer hint;
        bool have_hint = qdb_peer_decode(m->content, m->content_len, &hint) == QDB_OK &&
                         !qdb_peer_is_null(&hint);
        cache_remove_addr(c, op->node.addr);
        if (have_hint)
            cache_learn(c, &hint, NULL);
        if (op->step_attempts >= c->cfg.max_attempts) {
            op_finish(c, op, QDB_E_WRONG_NODE, NULL, 0);
        } else if (op->has_silent_owner && !qdb_addr_eq(op->silent_owner.addr, src)) {
            /* The detour around a read's silent owner says it is not the
             * owner: the silent one still is, slow rather than dead.  Back
             * to it (its timeout has backed off), excluded no longer. */
            qdb_peer owner = op->silent_owner;
            op_unmark_dead(op, owner.addr);
            op_located(c, op, &owner);
        } else if (have_hint && !qdb_addr_eq(hint.addr, op->node.addr)) {
            op_lookup_from(c, op, hint.addr, &hint);
        } else {
            op_restart(c, op);
        }
    } else if (m->status == QDB_E_UNSTABLE) {
        op->unstable++;
        c->stats.unstable++;
        if (op->step_attempts >= c->cfg.max_attempts) {
            op_finish(c, op, QDB_E_UNSTABLE, NULL, 0);
            return;
        }
        op->state = ST_BACKOFF;
        op->deadline = cl_now(c) + op->backoff;
        op->backoff *= 2;
    } else { /* NO_SESSION: the node does not know us (it restarted) */
        session_forget(c, src);
        if (is_mutation(op->op) && op->tx_count > 1) {
            /* An earlier transmission may have run before the node lost it. */
            op_finish(c, op, QDB_E_OUTCOME_UNKNOWN, NULL, 0);
            return;
        }
        op->no_session++;
        if (op->no_session > c->cfg.max_attempts) {
            op_finish(c, op, QDB_E_NO_SESSION, NULL, 0);
            return;
        }
        op_send_request(c, op);
    }
}

/* The answer to a FIND or PING that timed out (late_note): it measures the
 * peer, and proves it alive -- slow, not dead.  Returns the index of its
 * late entry when the operation that asked is still locating the same ID
 * (its answer is still an answer), else -1 (counted stray). */
static int late_claim(qdb_client_core *c, qdb_addr src, uint64_t rpc, bool ping)
{
    for (int i = 0; i < CL_LATE; i++) {
        if (c->late[i].rpc == 0 || c->late[i].rpc != rpc || !qdb_addr_eq(c->late[i].addr, src))
            continue;
        qdb_rto_sample(&c->rto, src, cl_now(c) - c->late[i].sent);
        c->late[i].rpc = 0;
        cl_op *op = g_tree_lookup(c->ops, &c->late[i].op_id);
        if (op == NULL || c->late[i].ping != ping ||
            (op->state != ST_FIND && op->state != ST_VERIFY) ||
            !qdb_id_eq(&op->id, &c->late[i].target))
            break;
        op_unmark_dead(op, src);
        return i;
    }
    c->stats.stray_frames++;
    return -1;
}

static void late_note(qdb_client_core *c, const cl_op *op, qdb_addr addr);

static void find_answered(qdb_client_core *c, cl_op *op, qdb_addr src, const qdb_msg *m);

static void on_find_reply(qdb_client_core *c, qdb_addr src, const qdb_msg *m)
{
    cl_op *op = m->rpc != 0 && m->rpc <= UINT32_MAX
                    ? g_hash_table_lookup(c->by_rpc, GUINT_TO_POINTER((guint)m->rpc))
                    : NULL;
    if (op == NULL || op->state != ST_FIND || !qdb_addr_eq(src, op->find_addr)) {
        int i = late_claim(c, src, m->rpc, false);
        if (i < 0)
            return;
        /* An earlier hop of this lookup answered after all: follow its
         * answer, as if it had come in time (the FIND in flight is dropped;
         * its answer will be stray). */
        op = g_tree_lookup(c->ops, &c->late[i].op_id);
        op->find_addr = src;
        op->find_peer_known = c->late[i].peer_known;
        op->find_peer = c->late[i].peer;
        op_clear_rpc(c, op);
        op->state = ST_FIND;
    } else {
        qdb_rto_sample(&c->rto, src, cl_now(c) - op->sent);
    }
    find_answered(c, op, src, m);
}

/* op's FIND to src was answered with m. */
static void find_answered(qdb_client_core *c, cl_op *op, qdb_addr src, const qdb_msg *m)
{
    op_unmark_dead(op, src); /* asked again after a silence: it was slow */
    qdb_peer p = m->peer;
    if (qdb_peer_is_null(&p) || op_is_dead(op, p.addr)) {
        op_node_failed(c, op, src, FAIL_NO_HELP);
        return;
    }
    path_push(op, src, op->find_peer_known ? &op->find_peer : NULL);
    if (m->flags & QDB_FIND_DONE) {
        /* The asker X answered "id in (X, succ]": the owner holds (X, owner].
         * A node naming itself owns (its pred, self], which we do not know:
         * the served request will teach (id - 1, owner]. */
        bool ranged = op->find_peer_known && !qdb_id_eq(&op->find_peer.id, &p.id);
        cache_learn(c, &p, ranged ? &op->find_peer.id : NULL);
        op_located(c, op, &p);
        return;
    }
    if (qdb_addr_eq(p.addr, src)) {
        /* "Ask me again": a node that cannot route yet, or knows nobody
         * alive towards the ID.  No progress here. */
        op_node_failed(c, op, src, FAIL_NO_HELP);
        return;
    }
    op->hops++;
    op->lookup_hops++;
    c->stats.hops++;
    if (op->lookup_hops > c->cfg.max_hops) {
        op_finish(c, op, QDB_E_UNSTABLE, NULL, 0);
        return;
    }
    cache_learn(c, &p, NULL);
    op_send_find(c, op, p.addr, &p);
}

/* A pure lookup's owner answered its PING: alive, the lookup is done. */
static void on_pong(qdb_client_core *c, qdb_addr src, const qdb_msg *m)
{
    cl_op *op = m->rpc != 0 && m->rpc <= UINT32_MAX
                    ? g_hash_table_lookup(c->by_rpc, GUINT_TO_POINTER((guint)m->rpc))
                    : NULL;
    if (op == NULL || op->state != ST_VERIFY || !qdb_addr_eq(src, op->node.addr)) {
        int i = late_claim(c, src, m->rpc, true);
        if (i < 0)
            return;
        /* The owner checked earlier was alive after all, only slow: it is
         * the answer (not whichever successor the detour reached since). */
        op = g_tree_lookup(c->ops, &c->late[i].op_id);
        op->node = c->late[i].peer;
        op->located = true;
    } else {
        qdb_rto_sample(&c->rto, src, cl_now(c) - op->sent);
    }
    op_finish(c, op, QDB_OK, NULL, 0);
}

/* ---- entry points --------------------------------------------------------------- */

static qdb_time_us op_deadline(const cl_op *op)
{
    if (op->state == ST_FINISH)
        return op->deadline;
    return MIN(op->deadline, op->expire);
}

typedef struct earliest_ctx {
    bool have;
    qdb_time_us t;
} earliest_ctx;

static gboolean earliest_fn(gpointer key, gpointer value, gpointer data)
{
    earliest_ctx *e = data;
    qdb_time_us d = op_deadline(value);
    if (!e->have || d < e->t) {
        e->have = true;
        e->t = d;
    }
    return FALSE;
}

/* One deadline armed per core: the earliest of all operations.  O(ops). */
static void cl_rearm(qdb_client_core *c)
{
    earliest_ctx e = { 0 };
    if (c->unreach_q->len > 0) {
        e.have = true;
        e.t = cl_now(c);
    }
    g_tree_foreach(c->ops, earliest_fn, &e);
    if (e.have && (!c->is_armed || e.t != c->armed)) {
        c->is_armed = true;
        c->armed = e.t;
        c->clock->arm(c->clock, e.t);
    }
}

static void handle_unreachable(qdb_client_core *c, qdb_addr dst)
{
    cl_forget(c, dst, true);
    GArray *ids = collect_ops(c, NULL, NULL);
    for (guint i = 0; i < ids->len; i++) {
        cl_op *op = g_tree_lookup(c->ops, &g_array_index(ids, uint64_t, i));
        if (op == NULL)
            continue;
        switch (op->state) {
        case ST_FIND:
            if (qdb_addr_eq(op->find_addr, dst))
                op_node_failed(c, op, dst, FAIL_REFUSED);
            break;
        case ST_HELLO:
        case ST_VERIFY:
            if (qdb_addr_eq(op->node.addr, dst))
                op_node_failed(c, op, dst, FAIL_REFUSED);
            break;
        case ST_REQUEST:
        case ST_BACKOFF:
            if (!qdb_addr_eq(op->node.addr, dst))
                break;
            if (is_mutation(op->op) && op->tx_count > 0)
                op_finish(c, op, QDB_E_OUTCOME_UNKNOWN, NULL, 0);
            else
                op_node_failed(c, op, dst, FAIL_REFUSED);
            break;
        case ST_FINISH:
            break;
        }
    }
    g_array_free(ids, TRUE);
}

/* A FIND or PING that timed out: its answer may still come, measures the
 * peer (rpc numbers are never reused soon, so it is unambiguous) and is
 * still an answer to op (late_claim).  Kept for the newest CL_LATE. */
static void late_note(qdb_client_core *c, const cl_op *op, qdb_addr addr)
{
    unsigned i = c->late_next++ % CL_LATE;
    c->late[i].rpc = op->rpc;
    c->late[i].addr = addr;
    c->late[i].sent = op->sent;
    c->late[i].op_id = op->op_id;
    c->late[i].target = op->id;
    c->late[i].ping = op->state == ST_VERIFY;
    if (op->state == ST_VERIFY) {
        c->late[i].peer = op->node;
        c->late[i].peer_known = true;
    } else {
        c->late[i].peer = op->find_peer;
        c->late[i].peer_known = op->find_peer_known;
    }
}

static void op_expired(qdb_client_core *c, cl_op *op, qdb_time_us now)
{
    if (op->state == ST_FINISH) {
        op_finish(c, op, op->final_status, NULL, 0);
        return;
    }
    if (now >= op->expire) {
        op_finish(c, op, QDB_E_TIMEOUT, NULL, 0);
        return;
    }
    /* Lookup hops are not backed off: a dead node is excluded, not asked
     * again, and doubling its timeout would only slow the next lookup that
     * meets it (before it learns it is dead) down to the ceiling.  A slow
     * node is learned from its late answer instead (late_answer). */
    switch (op->state) {
    case ST_FIND:
        late_note(c, op, op->find_addr);
        op_node_failed(c, op, op->find_addr, FAIL_SILENT);
        break;
    case ST_HELLO: {
        session *s = session_find(c, op->node.addr);
        if (s != NULL && s->state == SESSION_PENDING)
            session_forget(c, op->node.addr);
        op_node_failed(c, op, op->node.addr, FAIL_SILENT);
        break;
    }
    case ST_VERIFY:
        late_note(c, op, op->node.addr);
        op_node_failed(c, op, op->node.addr, FAIL_SILENT);
        break;
    case ST_REQUEST:
        /* the same request again: back off, as TCP does (RFC 6298, 5.5) */
        qdb_rto_backoff(&c->rto, op->node.addr);
        if (is_mutation(op->op)) {
            op_transmit(c, op); /* same frame, same seq, same node */
            break;
        }
        /* A read routes around its silent owner, but still takes its late
         * answer (on_reply); the silence is no wrong-node attempt. */
        op->silent_owner = op->node;
        op->has_silent_owner = true;
        if (op->step_attempts > 0)
            op->step_attempts--;
        op_node_failed(c, op, op->node.addr, FAIL_SILENT);
        break;
    case ST_BACKOFF:
        op->attempt_open = true;
        op_send_request(c, op);
        break;
    case ST_FINISH:
        break;
    }
}

/* ---- public API ------------------------------------------------------------------- */

/* Every zero numeric field takes its default (node/defaults.h). */
static void fill_defaults(qdb_client_config *cfg)
{
    if (cfg->timeout == 0)
        cfg->timeout = QDB_DEFAULT_CLIENT_TIMEOUT_US;
    if (cfg->rpc_timeout == 0)
        cfg->rpc_timeout = QDB_DEFAULT_CLIENT_RPC_TIMEOUT_US;
    if (cfg->max_attempts == 0)
        cfg->max_attempts = QDB_DEFAULT_CLIENT_MAX_ATTEMPTS;
    if (cfg->max_hops == 0)
        cfg->max_hops = QDB_DEFAULT_CLIENT_MAX_HOPS;
    if (cfg->lookup_retries == 0)
        cfg->lookup_retries = QDB_DEFAULT_CLIENT_LOOKUP_RETRIES;
    if (cfg->backoff == 0)
        cfg->backoff = QDB_DEFAULT_CLIENT_BACKOFF_US;
    if (cfg->cache_capacity == 0)
        cfg->cache_capacity = QDB_DEFAULT_CLIENT_CACHE_CAPACITY;
    if (cfg->session_capacity == 0)
        cfg->session_capacity = QDB_DEFAULT_CLIENT_SESSION_CAPACITY;
}

void qdb_client_config_defaults(qdb_client_config *cfg)
{
    *cfg = (qdb_client_config){.use_cache = 1};
    fill_defaults(cfg);
}

static gint op_id_cmp(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

qdb_client_core *qdb_client_core_new(const qdb_client_config *cfg, qdb_clock *clock,
                                     qdb_transport *transport, qdb_random *random, char *err)
{
    const char *why = NULL;
    if (cfg == NULL)
        why = "no configuration";
    else if (clock == NULL || clock->version != QDB_SEAM_VERSION || clock->now == NULL ||
             clock->arm == NULL)
        why = "clock seam missing, of an unknown version or incomplete";
    else if (transport == NULL || transport->version != QDB_SEAM_VERSION ||
             transport->send == NULL)
        why = "transport seam missing, of an unknown version or incomplete";
    else if (cfg->client_id == 0 &&
             (random == NULL || random->version != QDB_SEAM_VERSION || random->next == NULL))
        why = "random seam needed for the client id: missing, unknown version or incomplete";
    else if (random != NULL && random->version != QDB_SEAM_VERSION)
        why = "random seam of an unknown version";
    if (why != NULL) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "%s", why);
        return NULL;
    }

    qdb_client_core *c = g_new0(qdb_client_core, 1);
    c->cfg = *cfg;
    fill_defaults(&c->cfg);
    c->clock = clock;
    c->transport = transport;
    c->random = random;
    c->client_id = cfg->client_id;
    while (c->client_id == 0)
        c->client_id = random->next(random);
    c->next_op_id = 1;
    c->next_seq = 1;
    c->next_rpc = 1;
    c->ops = g_tree_new(op_id_cmp);
    c->by_seq = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->by_rpc = g_hash_table_new(g_direct_hash, g_direct_equal);
    c->cache = g_array_new(FALSE, FALSE, sizeof(cache_entry));
    c->sessions = g_array_new(FALSE, FALSE, sizeof(session));
    c->unreach_q = g_array_new(FALSE, FALSE, sizeof(qdb_addr));
    c->scratch = g_byte_array_new();
    qdb_rto_init(&c->rto, CL_RTO_PEERS, c->cfg.rpc_timeout, QDB_DEFAULT_RTO_FLOOR_US, QDB_DEFAULT_RTO_CEILING_US);
    return c;
}

static gboolean free_op_fn(gpointer key, gpointer value, gpointer data)
{
    op_free(value);
    return FALSE;
}

void qdb_client_core_free(qdb_client_core *c)
{
    if (c == NULL)
        return;
    g_tree_foreach(c->ops, free_op_fn, NULL);
    g_tree_destroy(c->ops);
    g_hash_table_destroy(c->by_seq);
    g_hash_table_destroy(c->by_rpc);
    g_array_free(c->cache, TRUE);
    g_array_free(c->sessions, TRUE);
    g_array_free(c->unreach_q, TRUE);
    g_byte_array_unref(c->scratch);
    qdb_rto_free(&c->rto);
    g_free(c);
}

static cl_op *op_new(qdb_client_core *c, int type, qdb_client_done_fn done, void *arg)
{
    cl_op *op = g_new0(cl_op, 1);
    op->op_id = c->next_op_id++;
    op->op = type;
    op->done = done;
    op->arg = arg;
    op->start = cl_now(c);
    op->expire = op->start + c->cfg.timeout;
    op->backoff = c->cfg.backoff;
    g_tree_insert(c->ops, &op->op_id, op);
    c->stats.ops++;
    return op;
}

int qdb_client_core_submit(qdb_client_core *c, int op_type, const uint8_t *alias, size_t alias_len,
                           const uint8_t *content, size_t content_len,
                           const uint8_t *comparand, size_t comparand_len,
                           qdb_client_done_fn done, void *arg, uint64_t *op_id)
{
    qdb_client_request req = {.op = op_type, .alias = alias, .alias_len = alias_len,
                              .content = content, .content_len = content_len,
                              .comparand = comparand, .comparand_len = comparand_len};
    return qdb_client_core_submit_request(c, &req, done, arg, op_id);
}

int qdb_client_core_check_request(const qdb_client_request *r)
{
    int op = r->op;
    if (!qdb_msg_is_request(op) || op == QDB_MSG_PUT_EX || op == QDB_MSG_UPDATE_EX)
        return QDB_E_INVALID_ARGUMENT;
    bool has_content = op == QDB_MSG_PUT || op == QDB_MSG_UPDATE ||
                       op == QDB_MSG_GET_UPDATE || op == QDB_MSG_CAS;
    bool has_comparand = op == QDB_MSG_CAS || op == QDB_MSG_REMOVE_IF;
    if (op == QDB_MSG_PREFIX) {
        if (r->alias_len > QDB_MAX_ALIAS)
            return QDB_E_ALIAS_TOO_LONG;
        if ((r->alias == NULL && r->alias_len > 0) || r->flags > QDB_PREFIX_COUNT ||
            (!(r->flags & QDB_PREFIX_COUNT) && r->max > QDB_PREFIX_MAX))
            return QDB_E_INVALID_ARGUMENT;
    } else if (op != QDB_MSG_REMOVE_ALL) {
        if (r->alias_len == 0)
            return QDB_E_ALIAS_EMPTY;
        if (r->alias_len > QDB_MAX_ALIAS)
            return QDB_E_ALIAS_TOO_LONG;
        if (r->alias == NULL)
            return QDB_E_INVALID_ARGUMENT;
    }
    if (has_content && r->content == NULL && r->content_len > 0)
        return QDB_E_INVALID_ARGUMENT;
    if (has_comparand && r->comparand == NULL && r->comparand_len > 0)
        return QDB_E_INVALID_ARGUMENT;
    bool has_expiry = op == QDB_MSG_PUT || op == QDB_MSG_UPDATE || op == QDB_MSG_EXPIRE;
    if (r->expiry != 0 && !has_expiry)
        return QDB_E_INVALID_ARGUMENT;
    if (r->expiry < 0 || r->expiry > QDB_EXPIRY_MAX)
        return QDB_E_INVALID_ARGUMENT;
    return QDB_OK;
}

/* The request's frame under seq.  PUT and UPDATE with an expiry travel as
 * PUT_EX and UPDATE_EX, so that without one their bytes never changed. */
static int encode_request(const qdb_client_request *r, uint32_t seq, GByteArray *frame)
{
    int op = r->op;
    qdb_msg m = { .type = op, .seq = seq };
    if (op != QDB_MSG_REMOVE_ALL) {
        m.alias = r->alias;
        m.alias_len = r->alias_len;
    }
    if (op == QDB_MSG_PUT || op == QDB_MSG_UPDATE || op == QDB_MSG_GET_UPDATE ||
        op == QDB_MSG_CAS) {
        m.content = r->content;
        m.content_len = r->content_len;
    }
    if (op == QDB_MSG_CAS || op == QDB_MSG_REMOVE_IF) {
        m.comparand = r->comparand;
        m.comparand_len = r->comparand_len;
    }
    m.expiry = r->expiry;
    if (r->expiry != 0 && op == QDB_MSG_PUT)
        m.type = QDB_MSG_PUT_EX;
    if (r->expiry != 0 && op == QDB_MSG_UPDATE)
        m.type = QDB_MSG_UPDATE_EX;
    if (op == QDB_MSG_PREFIX) {
        m.flags = r->flags;
        m.max = r->flags & QDB_PREFIX_COUNT ? 0 : r->max;
    }
    return qdb_msg_encode(&m, frame);
}

int qdb_client_core_submit_request(qdb_client_core *c, const qdb_client_request *r,
                                   qdb_client_done_fn done, void *arg, uint64_t *op_id)
{
    if (c == NULL || r == NULL)
        return QDB_E_INVALID_ARGUMENT;
    int rc = qdb_client_core_check_request(r);
    if (rc != QDB_OK)
        return rc;
    /* Encode under the next seq first: a refused frame consumes nothing. */
    GByteArray *frame = g_byte_array_new();
    rc = encode_request(r, c->next_seq, frame);
    if (rc != QDB_OK) {
        g_byte_array_unref(frame);
        return rc;
    }

    c->in_api++;
    cl_op *op = op_new(c, r->op, done, arg);
    op->use_cache = c->cfg.use_cache;
    op->frame = frame;
    op_set_seq(c, op, next_seq(c));
    if (r->op == QDB_MSG_PREFIX) {
        op->found = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        op->max = r->max;
        op->count_only = (r->flags & QDB_PREFIX_COUNT) != 0;
    } else if (r->op != QDB_MSG_REMOVE_ALL) {
        qdb_id_hash(&op->id, r->alias, r->alias_len);
    }
    if (op_id != NULL)
        *op_id = op->op_id;
    op_locate(c, op);
    c->in_api--;
    cl_rearm(c);
    return QDB_OK;
}

/* start NULL: locate as an operation does (cache, then bootstrap). */
static int lookup(qdb_client_core *c, const qdb_id *target, int use_cache, const qdb_addr *start,
                  qdb_client_done_fn done, void *arg, uint64_t *op_id)
{
    if (c == NULL || target == NULL || (start != NULL && qdb_addr_is_null(*start)))
        return QDB_E_INVALID_ARGUMENT;
    c->in_api++;
    cl_op *op = op_new(c, 0, done, arg);
    op->use_cache = use_cache;
    op->id = *target;
    if (op_id != NULL)
        *op_id = op->op_id;
    if (start != NULL)
        op_lookup_from(c, op, *start, NULL);
    else
        op_locate(c, op);
    c->in_api--;
    cl_rearm(c);
    return QDB_OK;
}

int qdb_client_core_lookup(qdb_client_core *c, const qdb_id *target, int use_cache,
                           qdb_client_done_fn done, void *arg, uint64_t *op_id)
{
    return lookup(c, target, use_cache, NULL, done, arg, op_id);
}

int qdb_client_core_lookup_at(qdb_client_core *c, const qdb_id *target, qdb_addr start,
                              qdb_client_done_fn done, void *arg, uint64_t *op_id)
{
    return lookup(c, target, 0, &start, done, arg, op_id);
}

void qdb_client_core_recv(qdb_client_core *c, qdb_addr src, const uint8_t *frame, size_t len)
{
    c->stats.frames_in++;
    qdb_msg m;
    if (frame == NULL || qdb_msg_decode(frame, len, &m) != QDB_OK) {
        c->stats.bad_frames++;
        return;
    }
    switch (m.type) {
    case QDB_MSG_REPLY:
        on_reply(c, src, &m);
        break;
    case QDB_MSG_FIND_REPLY:
        on_find_reply(c, src, &m);
        break;
    case QDB_MSG_PONG:
        on_pong(c, src, &m);
        break;
    default:
        c->stats.stray_frames++;
        break;
    }
    cl_rearm(c);
}

void qdb_client_core_unreachable(qdb_client_core *c, qdb_addr dst)
{
    handle_unreachable(c, dst);
    cl_rearm(c);
}

static bool is_due(const cl_op *op, const void *arg)
{
    return op_deadline(op) <= *(const qdb_time_us *)arg;
}

void qdb_client_core_tick(qdb_client_core *c)
{
    c->is_armed = false;
    if (c->unreach_q->len > 0) {
        GArray *q = c->unreach_q;
        c->unreach_q = g_array_new(FALSE, FALSE, sizeof(qdb_addr));
        for (guint i = 0; i < q->len; i++)
            handle_unreachable(c, g_array_index(q, qdb_addr, i));
        g_array_free(q, TRUE);
    }
    qdb_time_us now = cl_now(c);
    GArray *ids = collect_ops(c, is_due, &now);
    for (guint i = 0; i < ids->len; i++) {
        cl_op *op = g_tree_lookup(c->ops, &g_array_index(ids, uint64_t, i));
        if (op != NULL && op_deadline(op) <= now)
            op_expired(c, op, now);
    }
    g_array_free(ids, TRUE);
    cl_rearm(c);
}

static void inbound_recv(void *c, qdb_addr src, const uint8_t *frame, size_t len)
{
    qdb_client_core_recv(c, src, frame, len);
}

static void inbound_unreachable(void *c, qdb_addr dst)
{
    qdb_client_core_unreachable(c, dst);
}

static void inbound_tick(void *c)
{
    qdb_client_core_tick(c);
}

const qdb_inbound qdb_client_core_inbound = {
    .recv = inbound_recv,
    .unreachable = inbound_unreachable,
    .tick = inbound_tick,
};

unsigned qdb_client_core_pending(const qdb_client_core *c)
{
    return (unsigned)g_tree_nnodes(c->ops);
}

uint64_t qdb_client_core_client_id(const qdb_client_core *c)
{
    return c->client_id;
}

const qdb_client_stats *qdb_client_core_stats(const qdb_client_core *c)
{
    return &c->stats;
}

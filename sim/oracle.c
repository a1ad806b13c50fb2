/* The oracle: it sees every node and checks what no node can check alone.
 *
 * Sections
 *   the live ring (sorted IDs of the nodes that are up)
 *   ring and finger invariants
 *   the periodic check and stabilization times
 *   data invariants
 *   metrics and expectations
 *
 * Ring invariant (Zave, IEEE TSE 2017, "one ordered ring"): every live node's
 * successor is the next live ID clockwise, its predecessor the previous one,
 * and its successor list the next r live IDs (fewer in a smaller ring).
 * Checking it costs O(N) per check; the fingers cost O(N * 64 * log N) and
 * are checked only while the ring is right, at most once a virtual second.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "record.h"
#include "world.h"

/* ---- the live ring ------------------------------------------------------------ */

static gint by_id(gconstpointer a, gconstpointer b, gpointer data)
{
    const sim_world *w = data;
    const sim_node *x = &w->nodes[*(const unsigned *)a];
    const sim_node *y = &w->nodes[*(const unsigned *)b];
    return qdb_id_cmp(&x->peer.id, &y->peer.id);
}

void oracle_rebuild_ring(sim_world *w)
{
    if (!w->ring_dirty)
        return;
    g_array_set_size(w->ring, 0);
    for (unsigned i = 0; i < w->p.nodes; i++)
        if (sim_node_up(&w->nodes[i]))
            g_array_append_val(w->ring, i);
    g_array_sort_with_data(w->ring, by_id, w); /* IDs are distinct: the order is total */
    w->ring_dirty = false;
}

void oracle_membership_changed(sim_world *w)
{
    w->ring_dirty = true;
    w->m.last_change = qdb_simnet_now(w->net);
    w->m.ring_ok_at = 0;
    w->m.full_ok_at = 0;
    w->m.ring_ok = w->m.full_ok = false;
}

/* Position in w->ring of the first live node with ID >= id (wrapping). */
static guint successor_pos(sim_world *w, const qdb_id *id)
{
    guint lo = 0, hi = w->ring->len;
    while (lo < hi) {
        guint mid = (lo + hi) / 2;
        const sim_node *sn = &w->nodes[g_array_index(w->ring, unsigned, mid)];
        if (qdb_id_cmp(&sn->peer.id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == w->ring->len ? 0 : lo;
}

int oracle_owner(sim_world *w, const qdb_id *id)
{
    oracle_rebuild_ring(w);
    if (w->ring->len == 0)
        return -1;
    return (int)g_array_index(w->ring, unsigned, successor_pos(w, id));
}

/* ---- invariants ----------------------------------------------------------- */

static const sim_node *ring_at(sim_world *w, guint pos)
{
    return &w->nodes[g_array_index(w->ring, unsigned, pos % w->ring->len)];
}

bool oracle_ring_ok(sim_world *w, GString *why)
{
    oracle_rebuild_ring(w);
    guint n = w->ring->len;
    char a[QDB_ADDR_STRLEN], b[QDB_ADDR_STRLEN], c[QDB_ADDR_STRLEN];
    for (guint i = 0; i < n; i++) {
        const sim_node *sn = ring_at(w, i);
        const sim_node *next = ring_at(w, i + 1), *prev = ring_at(w, i + n - 1);
        const qdb_peer *s = qdb_node_successor(sn->node), *p = qdb_node_predecessor(sn->node);
        if (qdb_node_is_joining(sn->node)) {
            if (why)
                g_string_printf(why, "node %u (%s) is still joining", sn->index,
                                qdb_addr_format(sn->peer.addr, a));
            return false;
        }
        if (!s || !qdb_peer_eq(s, &next->peer)) {
            if (why)
                g_string_printf(why, "node %u (%s): successor is %s, should be node %u (%s)",
                                sn->index, qdb_addr_format(sn->peer.addr, a),
                                s ? qdb_addr_format(s->addr, b) : "unknown", next->index,
                                qdb_addr_format(next->peer.addr, c));
            return false;
        }
        if (!p || !qdb_peer_eq(p, &prev->peer)) {
            if (why)
                g_string_printf(why, "node %u (%s): predecessor is %s, should be node %u",
                                sn->index, qdb_addr_format(sn->peer.addr, a),
                                p ? qdb_addr_format(p->addr, b) : "unknown", prev->index);
            return false;
        }
        qdb_peer list[QDB_SUCCLIST_MAX];
        unsigned k = qdb_node_succlist(sn->node, list, QDB_SUCCLIST_MAX);
        unsigned want = MIN(w->p.succlist, n > 1 ? n - 1 : 1);
        if (k != want) {
            if (why)
                g_string_printf(why, "node %u: successor list has %u entries, should have %u",
                                sn->index, k, want);
            return false;
        }
        for (unsigned j = 0; j < k; j++) {
            if (!qdb_peer_eq(&list[j], &ring_at(w, i + 1 + j)->peer)) {
                if (why)
                    g_string_printf(why, "node %u: successor list entry %u is wrong", sn->index, j);
                return false;
            }
        }
    }
    return true;
}

bool oracle_fingers_ok(sim_world *w, GString *why)
{
    oracle_rebuild_ring(w);
    for (guint i = 0; i < w->ring->len; i++) {
        const sim_node *sn = ring_at(w, i);
        for (unsigned f = QDB_ID_BITS - 64; f < QDB_ID_BITS; f++) {
            qdb_id start;
            qdb_id_add_pow2(&start, &sn->peer.id, f);
            const sim_node *want = ring_at(w, successor_pos(w, &start));
            const qdb_peer *have = qdb_node_finger(sn->node, f);
            if (!have || !qdb_peer_eq(have, &want->peer)) {
                if (why)
                    g_string_printf(why, "node %u: finger %u is %s, should be node %u", sn->index,
                                    f, have ? "wrong" : "unknown", want->index);
                return false;
            }
        }
    }
    return true;
}

/* ---- safety: Zave's invariants, at every check ------------------------------------
 * Follow each live node's best successor (the first live entry of its
 * successor list).  Correct Chord keeps, at all times (Zave, TSE 2017, Sec. 4):
 *  - AtLeastOneRing / AtMostOneRing: the best-successor graph has exactly one
 *    cycle;
 *  - OrderedRing: going round that cycle, IDs increase with exactly one wrap;
 *  - ConnectedAppendages: every node reaches the cycle (here: every node has a
 *    live best successor, so every walk ends in some cycle, which must be the
 *    one).
 * Nodes that have no successor yet (their join lookup is under way) are not
 * members yet and are skipped.  After a
 * partition the check is off for the rest of the run: Chord cannot merge two
 * rings a partition made, and Zave's model has no partitions. */

static int best_successor(sim_world *w, const sim_node *sn)
{
    qdb_peer list[QDB_SUCCLIST_MAX];
    unsigned k = qdb_node_succlist(sn->node, list, QDB_SUCCLIST_MAX);
    for (unsigned j = 0; j < k; j++) {
        uint32_t idx = list[j].addr.ip - w->p.address_base.ip;
        if (idx < w->p.nodes && sim_node_up(&w->nodes[idx]) &&
            qdb_peer_eq(&w->nodes[idx].peer, &list[j]) &&
            qdb_node_successor(w->nodes[idx].node) != NULL)
            return (int)idx;
    }
    return -1;
}

bool oracle_safety(sim_world *w, GString *why)
{
    oracle_rebuild_ring(w);
    guint n = w->ring->len;
    if (n == 0)
        return true;
    int *next = g_new(int, w->p.nodes);
    uint8_t *mark = g_new0(uint8_t, w->p.nodes); /* 0 new, 1 on the walk, 2 done */
    int cycles = 0, first_cycle = -1;
    bool ok = true;
    for (guint i = 0; i < n && ok; i++) {
        unsigned x = g_array_index(w->ring, unsigned, i);
        /* a node with no successor yet is still looking for its place */
        next[x] = qdb_node_successor(w->nodes[x].node) == NULL ? -2
                                                               : best_successor(w, &w->nodes[x]);
        if (next[x] == -1) {
            g_string_printf(why, "ConnectedAppendages: node %u has no live successor", x);
            ok = false;
        }
    }
    for (guint i = 0; i < n && ok; i++) {
        int x = (int)g_array_index(w->ring, unsigned, i);
        if (next[x] == -2 || mark[x])
            continue;
        int y = x;
        while (y >= 0 && mark[y] == 0) {
            mark[y] = 1;
            y = next[y];
        }
        if (y >= 0 && mark[y] == 1) { /* a new cycle through y */
            cycles++;
            if (first_cycle < 0)
                first_cycle = y;
            else {
                g_string_printf(why, "AtMostOneRing: two cycles, through nodes %d and %d",
                                first_cycle, y);
                ok = false;
            }
            /* ordered: exactly one wrap going round */
            int wraps = 0, z = y;
            do {
                if (qdb_id_cmp(&w->nodes[next[z]].peer.id, &w->nodes[z].peer.id) <= 0)
                    wraps++;
                z = next[z];
            } while (z != y);
            if (ok && wraps != 1) {
                g_string_printf(why, "OrderedRing: the cycle through node %d wraps %d times", y,
                                wraps);
                ok = false;
            }
        }
        for (y = x; y >= 0 && mark[y] == 1; y = next[y])
            mark[y] = 2;
    }
    if (ok && cycles == 0) {
        g_string_printf(why, "AtLeastOneRing: no cycle among %u live nodes", n);
        ok = false;
    }
    g_free(next);
    g_free(mark);
    return ok;
}

/* ---- the periodic check -------------------------------------------------------- */

/* One line of the time series: how much of the ring is right now. */
static void write_series(sim_world *w, qdb_time_us now)
{
    oracle_rebuild_ring(w);
    guint n = w->ring->len, succ_ok = 0, pred_ok = 0;
    for (guint i = 0; i < n; i++) {
        const sim_node *sn = ring_at(w, i);
        const qdb_peer *s = qdb_node_successor(sn->node), *p = qdb_node_predecessor(sn->node);
        succ_ok += s && qdb_peer_eq(s, &ring_at(w, i + 1)->peer);
        pred_ok += p && qdb_peer_eq(p, &ring_at(w, i + n - 1)->peer);
    }
    fprintf(w->series, "%.3f %u %u %u %d %d\n", (double)now / 1e6, n, succ_ok, pred_ok,
            w->m.ring_ok ? 1 : 0, w->m.full_ok ? 1 : 0);
}

void oracle_check(sim_world *w)
{
    qdb_time_us now = qdb_simnet_now(w->net);
    if (w->series)
        write_series(w, now);
    if (w->partitioned)
        w->ever_partitioned = true;
    if (!w->violated && !w->ever_partitioned) {
        GString *why = g_string_new(NULL);
        if (!oracle_safety(w, why)) {
            w->violated = true;
            w->m.expectations_failed++;
            sim_world_fail(w, NULL, "safety violated: %s; replay: %s", why->str,
                           w->replay ? w->replay : "(qdbsim with the same scenario and seed)");
        }
        g_string_free(why, TRUE);
    }
    bool ok = oracle_ring_ok(w, NULL);
    if (!ok) {
        w->m.ring_ok = w->m.full_ok = false;
        w->m.ring_ok_at = w->m.full_ok_at = 0;
        return;
    }
    if (!w->m.ring_ok) {
        w->m.ring_ok = true;
        w->m.ring_ok_at = now;
    }
    if (w->m.full_ok)
        return;
    if (now - w->last_full_check < QDB_US_PER_S && w->last_full_check != 0)
        return;
    w->last_full_check = now;
    if (oracle_fingers_ok(w, NULL)) {
        w->m.full_ok = true;
        w->m.full_ok_at = now;
    }
}

/* ---- data ------------------------------------------------------------------------ */

/* Which live node holds the entry at version >= ver (or -1)? */
static int held_by_live_node(sim_world *w, const uint8_t *key, size_t kl, const char *alias,
                             uint64_t ver)
{
    for (unsigned i = 0; i < w->p.nodes; i++) {
        sim_node *sn = &w->nodes[i];
        uint8_t *v;
        size_t vl;
        if (!sim_node_up(sn) || sn->storage->get(sn->storage, key, kl, &v, &vl) != QDB_OK)
            continue;
        qdb_record_meta meta;
        const uint8_t *content;
        uint64_t got;
        bool ok = qdb_record_decode(v, vl, &meta, &content) == QDB_OK &&
                  model_parse_value(content, meta.size, alias, &got) && got >= ver;
        g_free(v);
        if (ok)
            return (int)i;
    }
    return -1;
}

static bool held_by_down_node(sim_world *w, const uint8_t *key, size_t kl)
{
    for (unsigned i = 0; i < w->p.nodes; i++) {
        sim_node *sn = &w->nodes[i];
        if (sim_node_up(sn) || !sn->storage)
            continue;
        uint8_t *v;
        size_t vl;
        if (sn->storage->get(sn->storage, key, kl, &v, &vl) == QDB_OK) {
            g_free(v);
            return true;
        }
    }
    return false;
}

uint64_t oracle_lost_entries(sim_world *w, GString *why)
{
    uint64_t lost = 0;
    for (guint i = 0; i < w->model_keys->len; i++) {
        sim_key *k = w->model_keys->pdata[i];
        if (k->acked_version == 0 || k->removed || k->excused)
            continue;
        qdb_id id;
        qdb_id_hash(&id, k->alias, strlen(k->alias));
        uint8_t key[QDB_KEY_MAX];
        size_t kl = qdb_record_key(key, &id, (const uint8_t *)k->alias, strlen(k->alias));
        int owner = oracle_owner(w, &id);
        bool found = false;
        if (owner >= 0) {
            qdb_storage *st = w->nodes[owner].storage;
            uint8_t *v;
            size_t vl;
            if (st->get(st, key, kl, &v, &vl) == QDB_OK) {
                qdb_record_meta meta;
                const uint8_t *content;
                uint64_t ver;
                found = qdb_record_decode(v, vl, &meta, &content) == QDB_OK &&
                        model_parse_value(content, meta.size, k->alias, &ver) &&
                        ver >= k->acked_version;
                g_free(v);
            }
        }
        if (!found && !held_by_down_node(w, key, kl)) {
            if (why && lost == 0) {
                int at = held_by_live_node(w, key, kl, k->alias, k->acked_version);
                g_string_printf(why, "%s (version %" G_GUINT64_FORMAT ") is not at its owner, node %d%s",
                                k->alias, k->acked_version, owner,
                                at >= 0 ? "" : ", nor on any live node");
                if (at >= 0)
                    g_string_append_printf(why, " (node %d holds it)", at);
            }
            lost++;
        }
    }
    w->m.lost_entries = lost;
    return lost;
}

/* ---- metrics ------------------------------------------------------------------------ */

static int cmp_uint(const void *a, const void *b)
{
    guint x = *(const guint *)a, y = *(const guint *)b;
    return x < y ? -1 : x > y;
}

double oracle_hops_percentile(sim_world *w, double p)
{
    GArray *h = w->m.hops;
    if (h->len == 0)
        return 0;
    qsort(h->data, h->len, sizeof(guint), cmp_uint);
    /* nearest rank */
    guint rank = (guint)ceil(p / 100.0 * h->len);
    return g_array_index(h, guint, rank ? rank - 1 : 0);
}

double oracle_hops_mean(sim_world *w)
{
    GArray *h = w->m.hops;
    if (h->len == 0)
        return 0;
    double s = 0;
    for (guint i = 0; i < h->len; i++)
        s += g_array_index(h, guint, i);
    return s / h->len;
}

static double stable_s(sim_world *w, bool ok, qdb_time_us at)
{
    if (!ok)
        return -1;
    return at > w->m.last_change ? (double)(at - w->m.last_change) / 1e6 : 0;
}

bool oracle_metric(sim_world *w, const char *name, double *out)
{
    sim_metrics *m = &w->m;
    if (strcmp(name, "failed_requests") == 0)
        *out = (double)m->failed_requests;
    else if (strcmp(name, "lookup_timeouts") == 0)
        *out = (double)m->lookup_timeouts;
    else if (strcmp(name, "lookup_failures") == 0)
        *out = (double)m->lookup_failures;
    else if (strcmp(name, "lookup_wrong") == 0)
        *out = (double)m->lookup_wrong;
    else if (strcmp(name, "lookup_dead_contacts_mean") == 0)
        *out = m->lookups ? (double)m->lookup_dead_contacts / (double)m->lookups : 0;
    else if (strcmp(name, "wrong_node_retries") == 0)
        *out = (double)m->wrong_node_retries;
    else if (strcmp(name, "unstable_answers") == 0)
        *out = (double)m->unstable_answers;
    else if (strcmp(name, "hops_mean") == 0)
        *out = oracle_hops_mean(w);
    else if (strcmp(name, "ring_stable_s") == 0)
        *out = stable_s(w, m->ring_ok, m->ring_ok_at);
    else if (strcmp(name, "full_stable_s") == 0)
        *out = stable_s(w, m->full_ok, m->full_ok_at);
    else if (strcmp(name, "lost_entries") == 0)
        *out = (double)oracle_lost_entries(w, NULL);
    else if (strcmp(name, "bad_reads") == 0)
        *out = (double)m->bad_reads;
    else if (strcmp(name, "stale_reads") == 0)
        *out = (double)m->stale_reads;
    else if (strcmp(name, "acked_writes") == 0)
        *out = (double)m->acked_writes;
    else if (strcmp(name, "lookups") == 0)
        *out = (double)m->lookups;
    else if (strcmp(name, "requests") == 0)
        *out = (double)m->requests;
    else
        return false;
    return true;
}

/* ---- expectations --------------------------------------------------------------- */

typedef struct stable_by {
    sim_world *w;
    const qdb_scn_event *ev;
} stable_by;

static void check_stable_by(void *arg)
{
    stable_by *s = arg;
    GString *why = g_string_new(NULL);
    s->w->m.expectations++;
    if (!oracle_ring_ok(s->w, why)) {
        s->w->m.expectations_failed++;
        sim_world_fail(s->w, &s->ev->pos, "expect stable: the ring is not right: %s", why->str);
    }
    g_string_free(why, TRUE);
}

bool sim_expect(sim_world *w, const qdb_scn_event *ev, GError **err)
{
    qdb_scn_token *what = qdb_scn_event_arg(ev, 0);
    if (!what)
        return qdb_scn_error(err, &ev->end_pos, "expect: what? (stable, ring_ok, readable, "
                                                "acked_readable, or METRIC OP NUMBER)");
    GString *why = g_string_new(NULL);
    bool ok = true;
    if (strcmp(what->text, "stable") == 0) {
        static const char *const keys[] = {"by", NULL};
        const qdb_scn_token *by = qdb_scn_event_kv(ev, "by");
        qdb_time_us t;
        if (!qdb_scn_event_check(ev, 1, 1, keys, err))
            ok = false;
        else if (!by)
            ok = qdb_scn_error(err, &ev->end_pos, "expect stable: missing by=TIME");
        else if (qdb_scn_tok_duration(by, &t, err)) {
            stable_by *s = sim_world_alloc(w, sizeof(stable_by));
            s->w = w;
            s->ev = ev;
            qdb_time_us now = qdb_simnet_now(w->net);
            qdb_simnet_at(w->net, MAX(t, now), check_stable_by, s);
        } else {
            ok = false;
        }
    } else if (strcmp(what->text, "ring_ok") == 0) {
        if (qdb_scn_event_check(ev, 1, 1, NULL, err)) {
            w->m.expectations++;
            if (!oracle_ring_ok(w, why)) {
                w->m.expectations_failed++;
                sim_world_fail(w, &ev->pos, "expect ring_ok: %s", why->str);
            }
        } else {
            ok = false;
        }
    } else if (strcmp(what->text, "readable") == 0) {
        static const char *const keys[] = {"via", NULL};
        if (qdb_scn_event_check(ev, 2, 2, keys, err)) {
            w->m.expectations++;
            ok = sim_expect_readable(w, ev, qdb_scn_event_arg(ev, 1)->text, err);
        } else {
            ok = false;
        }
    } else if (strcmp(what->text, "acked_readable") == 0) {
        if (qdb_scn_event_check(ev, 1, 1, NULL, err)) {
            w->m.expectations++;
            uint64_t lost = oracle_lost_entries(w, why);
            if (lost) {
                w->m.expectations_failed++;
                sim_world_fail(w, &ev->pos, "expect acked_readable: %" G_GUINT64_FORMAT
                               " acknowledged entries lost, e.g. %s", lost, why->str);
            }
        } else {
            ok = false;
        }
    } else {
        double value, bound;
        qdb_scn_cmp op;
        qdb_scn_token *optok = qdb_scn_event_arg(ev, 1), *num = qdb_scn_event_arg(ev, 2);
        if (!qdb_scn_event_check(ev, 3, 3, NULL, err))
            ok = false;
        else if (!oracle_metric(w, what->text, &value))
            ok = qdb_scn_error(err, &what->pos, "expect: unknown metric '%s'", what->text);
        else if (!qdb_scn_tok_cmp(optok, &op, err) || !qdb_scn_tok_double(num, &bound, err))
            ok = false;
        else {
            w->m.expectations++;
            if (!qdb_scn_cmp_eval(op, value, bound)) {
                w->m.expectations_failed++;
                sim_world_fail(w, &ev->pos, "expect %s %s %s: it is %g", what->text,
                               qdb_scn_cmp_str(op), num->text, value);
            }
        }
    }
    g_string_free(why, TRUE);
    return ok;
}

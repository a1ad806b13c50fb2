/* SPDX-License-Identifier: BSD-2-Clause */
/* The oracle: it sees every node and checks what no node can check alone.
 *
 * Sections
 *   ring and finger invariants
 *   safety: Zave's invariants
 *   the periodic check and stabilization times
 *   data invariants
 *   metrics
 *
 * Checking the ring costs O(N) per check; the fingers cost O(N * 64 * log N)
 * and are checked only while the ring is right, at most once a virtual
 * second.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "oracle.h"
#include "record.h"

void sim_oracle_init(sim_oracle *o, qdb_fixture *fx, sim_model *model, unsigned succlist)
{
    *o = (sim_oracle){.fx = fx, .model = model, .succlist = succlist};
}

void sim_oracle_set_copies(sim_oracle *o, unsigned k)
{
    o->copies = k;
}

void sim_oracle_crashed(sim_oracle *o)
{
    o->crash_at = qdb_fixture_now(o->fx);
    o->copies_ok = false;
    o->copies_ok_at = 0;
}

static bool copies_ok(sim_oracle *o);
static void refresh_watched(sim_oracle *o);

void sim_oracle_membership_changed(sim_oracle *o)
{
    o->last_change = qdb_fixture_now(o->fx);
    o->ring_ok_at = 0;
    o->full_ok_at = 0;
    o->ring_ok = o->full_ok = false;
}

/* ---- invariants ----------------------------------------------------------- */

/* The index of the live node at ring position pos (wrapping) of a ring
 * that is not empty.  The walks below ask for positions at most a list's
 * length past the end: a division only then (one at every step was a
 * tenth of the check's time at 10,000 nodes). */
static inline unsigned ring_pos(const GArray *ring, guint pos)
{
    if (G_UNLIKELY(pos >= ring->len))
        pos %= ring->len;
    return g_array_index(ring, unsigned, pos);
}

static unsigned ring_at(sim_oracle *o, guint pos)
{
    return ring_pos(qdb_fixture_ring(o->fx), pos);
}

static const qdb_peer *peer_of(sim_oracle *o, unsigned i)
{
    return qdb_fixture_peer(o->fx, i);
}

/* A walk over the ring reads each node's record, then the node, then its
 * successor list: three cache misses in a row for every node of a big ring
 * (perf at 10,000 nodes: a tenth of qdbsim's time).  Asked for that many
 * steps ahead, they overlap. */
#define AHEAD 8

static void prefetch_ahead(sim_oracle *o, const GArray *ring, guint pos)
{
    for (int pass = 0; pass < 3; pass++)
        qdb_fixture_prefetch(o->fx, ring_pos(ring, pos + (guint)(3 - pass) * AHEAD), pass);
}

bool sim_oracle_ring_ok(sim_oracle *o, GString *why)
{
    const GArray *ring = qdb_fixture_ring(o->fx);
    guint n = ring->len;
    char a[QDB_ADDR_STRLEN], b[QDB_ADDR_STRLEN], c[QDB_ADDR_STRLEN];
    for (guint i = 0; i < n; i++) {
        prefetch_ahead(o, ring, i);
        unsigned x = ring_pos(ring, i), next = ring_pos(ring, i + 1),
                 prev = ring_pos(ring, i + n - 1);
        const qdb_node *node = qdb_fixture_node(o->fx, x);
        qdb_addr addr = peer_of(o, x)->addr;
        const qdb_peer *s = qdb_node_successor(node), *p = qdb_node_predecessor(node);
        if (qdb_node_is_joining(node)) {
            if (why)
                g_string_printf(why, "node %u (%s) is still joining", x, qdb_addr_format(addr, a));
            return false;
        }
        if (!s || !qdb_peer_eq(s, peer_of(o, next))) {
            if (why)
                g_string_printf(why, "node %u (%s): successor is %s, should be node %u (%s)", x,
                                qdb_addr_format(addr, a), s ? qdb_addr_format(s->addr, b) : "unknown",
                                next, qdb_addr_format(peer_of(o, next)->addr, c));
            return false;
        }
        if (!p || !qdb_peer_eq(p, peer_of(o, prev))) {
            if (why)
                g_string_printf(why, "node %u (%s): predecessor is %s, should be node %u", x,
                                qdb_addr_format(addr, a), p ? qdb_addr_format(p->addr, b) : "unknown",
                                prev);
            return false;
        }
        qdb_peer list[QDB_SUCCLIST_MAX];
        unsigned k = qdb_node_succlist(node, list, QDB_SUCCLIST_MAX);
        unsigned want = MIN(o->succlist, n > 1 ? n - 1 : 1);
        if (k != want) {
            if (why)
                g_string_printf(why, "node %u: successor list has %u entries, should have %u", x,
                                k, want);
            return false;
        }
        for (unsigned j = 0; j < k; j++) {
            if (!qdb_peer_eq(&list[j], peer_of(o, ring_pos(ring, i + 1 + j)))) {
                if (why)
                    g_string_printf(why, "node %u: successor list entry %u is wrong", x, j);
                return false;
            }
        }
    }
    return true;
}

bool sim_oracle_fingers_ok(sim_oracle *o, GString *why)
{
    const GArray *ring = qdb_fixture_ring(o->fx);
    guint n = ring->len;
    for (guint i = 0; i < n; i++) {
        unsigned x = ring_pos(ring, i), succ = ring_pos(ring, i + 1);
        for (unsigned f = QDB_ID_BITS - 64; f < QDB_ID_BITS; f++) {
            qdb_id start;
            qdb_id_add_pow2(&start, &peer_of(o, x)->id, f);
            /* most fingers of a big ring fall before the successor: no search */
            unsigned want = qdb_id_in_half(&start, &peer_of(o, x)->id, &peer_of(o, succ)->id)
                                ? succ
                                : (unsigned)qdb_fixture_owner(o->fx, &start);
            const qdb_peer *have = qdb_node_finger(qdb_fixture_node(o->fx, x), f);
            if (!have || !qdb_peer_eq(have, peer_of(o, want))) {
                if (why)
                    g_string_printf(why, "node %u: finger %u is %s, should be node %u", x, f,
                                    have ? "wrong" : "unknown", want);
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

/* x is at ring position pos: its list should name the nodes after it. */
static int best_successor(sim_oracle *o, const GArray *ring, unsigned x, guint pos)
{
    qdb_peer list[QDB_SUCCLIST_MAX];
    unsigned k = qdb_node_succlist(qdb_fixture_node(o->fx, x), list, QDB_SUCCLIST_MAX);
    for (unsigned j = 0; j < k; j++) {
        int idx = qdb_fixture_index_near(o->fx, list[j].addr, ring_pos(ring, pos + 1 + j));
        if (idx >= 0 && qdb_fixture_up(o->fx, (unsigned)idx) &&
            qdb_peer_eq(peer_of(o, (unsigned)idx), &list[j]) &&
            qdb_node_successor(qdb_fixture_node(o->fx, (unsigned)idx)) != NULL)
            return idx;
    }
    return -1;
}

bool sim_oracle_safety(sim_oracle *o, GString *why)
{
    const GArray *ring = qdb_fixture_ring(o->fx);
    guint n = ring->len;
    if (n == 0)
        return true;
    unsigned nodes = qdb_fixture_n_nodes(o->fx);
    int *next = g_new(int, nodes);
    uint8_t *mark = g_new0(uint8_t, nodes); /* 0 new, 1 on the walk, 2 done */
    int cycles = 0, first_cycle = -1;
    bool ok = true;
    for (guint i = 0; i < n && ok; i++) {
        prefetch_ahead(o, ring, i);
        unsigned x = g_array_index(ring, unsigned, i);
        /* a node with no successor yet is still looking for its place */
        next[x] = qdb_node_successor(qdb_fixture_node(o->fx, x)) == NULL
                      ? -2
                      : best_successor(o, ring, x, i);
        if (next[x] == -1) {
            g_string_printf(why, "ConnectedAppendages: node %u has no live successor", x);
            ok = false;
        }
    }
    for (guint i = 0; i < n && ok; i++) {
        int x = (int)g_array_index(ring, unsigned, i);
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
                if (qdb_id_cmp(&peer_of(o, (unsigned)next[z])->id, &peer_of(o, (unsigned)z)->id) <= 0)
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
static void write_series(sim_oracle *o, qdb_time_us now)
{
    guint n = qdb_fixture_ring(o->fx)->len, succ_ok = 0, pred_ok = 0;
    for (guint i = 0; i < n; i++) {
        const qdb_node *node = qdb_fixture_node(o->fx, ring_at(o, i));
        const qdb_peer *s = qdb_node_successor(node), *p = qdb_node_predecessor(node);
        succ_ok += s && qdb_peer_eq(s, peer_of(o, ring_at(o, i + 1)));
        pred_ok += p && qdb_peer_eq(p, peer_of(o, ring_at(o, i + n - 1)));
    }
    fprintf(o->series, "%.3f %u %u %u %d %d\n", (double)now / 1e6, n, succ_ok, pred_ok,
            o->ring_ok ? 1 : 0, o->full_ok ? 1 : 0);
}

/* Two live nodes that would both serve one key now (qdbd(8), "Leases")?
 * Ranges are arcs (lo, node]: one that overlaps another holds that one's
 * node, and so the serving node just before its own in ring order -- one
 * comparison per serving node, O(N). */
static bool two_owners(sim_oracle *o)
{
    const GArray *ring = qdb_fixture_ring(o->fx);
    int first = -1, prev = -1;
    qdb_id first_lo, lo;
    for (guint i = 0; i <= ring->len; i++) {
        unsigned x;
        if (i == ring->len) { /* around: the first against the last */
            if (first < 0)
                break;
            x = (unsigned)first;
            lo = first_lo;
        } else {
            x = ring_at(o, i);
            if (!qdb_node_serving(qdb_fixture_node(o->fx, x), &lo))
                continue;
            if (first < 0) {
                first = (int)x;
                first_lo = lo;
            }
        }
        if (prev >= 0 && prev != (int)x &&
            qdb_id_in_open(&peer_of(o, (unsigned)prev)->id, &lo, &peer_of(o, x)->id))
            return true;
        prev = (int)x;
    }
    return false;
}

bool sim_oracle_check(sim_oracle *o, GString *why)
{
    qdb_time_us now = qdb_fixture_now(o->fx);
    bool safe = true;
    if (o->series)
        write_series(o, now);
    bool partitioned = qdb_fixture_partitioned(o->fx);
    if (partitioned)
        o->ever_partitioned = o->split = true;
    refresh_watched(o);
    if (o->copies > 1 && !partitioned && two_owners(o))
        o->two_owners++; /* (a partition in force may split the hive in two: no quorum) */
    if (o->crash_at && !o->copies_ok && copies_ok(o)) {
        o->copies_ok = true;
        o->copies_ok_at = now;
    }
    /* A correct ring is a safe one (every best successor is then the next
     * live node, which has a successor: one cycle, one wrap), so safety's
     * own walk is needed only when the ring is not right. */
    bool one_ring = sim_oracle_ring_ok(o, NULL);
    if (!one_ring && !o->violated && !o->ever_partitioned && !sim_oracle_safety(o, why))
        safe = !(o->violated = true);
    /* split from the partition until its sides are one ring again */
    o->split = partitioned || (o->split && !one_ring);
    sim_model_set_split(o->model, o->split);
    if (!one_ring) {
        o->ring_ok = o->full_ok = false;
        o->ring_ok_at = o->full_ok_at = 0;
        return safe;
    }
    if (!o->ring_ok) {
        o->ring_ok = true;
        o->ring_ok_at = now;
    }
    if (o->full_ok)
        return safe;
    if (now - o->last_full_check < QDB_US_PER_S && o->last_full_check != 0)
        return safe;
    o->last_full_check = now;
    if (sim_oracle_fingers_ok(o, NULL)) {
        o->full_ok = true;
        o->full_ok_at = now;
    }
    return safe;
}

/* ---- data ------------------------------------------------------------------------ */

/* Does node i hold the entry at version >= ver? */
static bool holds(sim_oracle *o, unsigned i, const uint8_t *key, size_t kl, const char *alias,
                  uint64_t ver)
{
    return sim_model_store_holds(qdb_fixture_storage_of(o->fx, i), key, kl, alias, ver, false);
}

/* Which live node holds the entry at version >= ver (or -1)? */
static int held_by_live_node(sim_oracle *o, const uint8_t *key, size_t kl, const char *alias,
                             uint64_t ver)
{
    for (unsigned i = 0; i < qdb_fixture_n_nodes(o->fx); i++)
        if (qdb_fixture_up(o->fx, i) && holds(o, i, key, kl, alias, ver))
            return (int)i;
    return -1;
}

static bool held_by_down_node(sim_oracle *o, const uint8_t *key, size_t kl)
{
    for (unsigned i = 0; i < qdb_fixture_n_nodes(o->fx); i++) {
        qdb_storage *st = qdb_fixture_storage_of(o->fx, i);
        if (qdb_fixture_up(o->fx, i) || !st)
            continue;
        uint8_t *v;
        size_t vl;
        qdb_record_meta meta;
        if (st->get(st, key, kl, &v, &vl) == QDB_OK) {
            bool live = qdb_record_decode_meta(v, vl, &meta) == QDB_OK && !meta.tombstone;
            g_free(v);
            if (live)
                return true;
        }
    }
    return false;
}

/* An acknowledged entry that should still be there, with its storage key. */
typedef struct acked {
    const sim_key *k;
    qdb_id id;
    uint8_t key[QDB_KEY_MAX];
    size_t kl;
} acked;

/* Is k one (not removed, not excused)?  Then fill e. */
static bool acked_entry(const sim_key *k, acked *e)
{
    if (k->acked_version == 0 || k->removed || k->excused)
        return false;
    e->k = k;
    qdb_id_hash(&e->id, k->alias, strlen(k->alias));
    e->kl = qdb_record_key(e->key, &e->id, (const uint8_t *)k->alias, strlen(k->alias));
    return true;
}

uint64_t sim_oracle_lost_entries(sim_oracle *o, GString *why)
{
    uint64_t lost = 0;
    const GPtrArray *keys = sim_model_keys(o->model);
    for (guint i = 0; i < keys->len; i++) {
        acked e;
        if (!acked_entry(keys->pdata[i], &e))
            continue;
        const sim_key *k = e.k;
        int owner = qdb_fixture_owner(o->fx, &e.id);
        bool found = owner >= 0 && holds(o, (unsigned)owner, e.key, e.kl, k->alias, k->acked_version);
        if (!found && !held_by_down_node(o, e.key, e.kl)) {
            if (why && lost == 0) {
                int at = held_by_live_node(o, e.key, e.kl, k->alias, k->acked_version);
                g_string_printf(why, "%s (version %" G_GUINT64_FORMAT ") is not at its owner, node %d%s",
                                k->alias, k->acked_version, owner,
                                at >= 0 ? "" : ", nor on any live node");
                if (at >= 0)
                    g_string_append_printf(why, " (node %d holds it)", at);
            }
            lost++;
        }
    }
    o->lost_entries = lost;
    return lost;
}

/* The live nodes holding k at its acknowledged version or newer, skipping
 * node `except`, counted up to `want`. */
static unsigned live_copies(sim_oracle *o, const acked *e, int except, unsigned want)
{
    unsigned have = 0;
    for (unsigned j = 0; j < qdb_fixture_n_nodes(o->fx) && have < want; j++)
        have += (int)j != except && qdb_fixture_up(o->fx, j) &&
                holds(o, j, e->key, e->kl, e->k->alias, e->k->acked_version);
    return have;
}

/* Has every acknowledged entry (not removed, not excused) min(K, live
 * nodes) live copies at its acknowledged version or newer? */
static bool copies_ok(sim_oracle *o)
{
    unsigned want = MIN(MAX(o->copies, 1u), qdb_fixture_ring(o->fx)->len);
    const GPtrArray *keys = sim_model_keys(o->model);
    for (guint i = 0; i < keys->len; i++) {
        acked e;
        if (!acked_entry(keys->pdata[i], &e))
            continue;
        if (live_copies(o, &e, -1, want) < want)
            return false;
    }
    return true;
}

/* ---- copies lost to crashes ---------------------------------------------------- */

/* Clear what a repair (K live copies again) or the owner's copy undid. */
static void refresh_watched(sim_oracle *o)
{
    GPtrArray *watched = sim_model_watched(o->model);
    unsigned want = MIN(MAX(o->copies, 1u), qdb_fixture_ring(o->fx)->len);
    guint kept = 0;
    for (guint i = 0; i < watched->len; i++) {
        sim_key *k = watched->pdata[i];
        acked e;
        if (!acked_entry(k, &e)) {
            k->crashed = 0;
            k->down = false;
        } else {
            if (k->crashed && live_copies(o, &e, -1, want) >= want)
                k->crashed = 0;
            /* an owner still joining does not serve it yet */
            int owner = qdb_fixture_owner(o->fx, &e.id);
            if (k->down && owner >= 0 &&
                !qdb_node_is_joining(qdb_fixture_node(o->fx, (unsigned)owner)) &&
                holds(o, (unsigned)owner, e.key, e.kl, k->alias, k->acked_version))
                k->down = false;
        }
        if (k->crashed || k->down)
            watched->pdata[kept++] = k;
    }
    g_ptr_array_set_size(watched, kept);
}

typedef struct crashing_ctx {
    sim_oracle *o;
    unsigned node, want;
} crashing_ctx;

static int crashing_one(void *arg, const uint8_t *key, size_t kl, const uint8_t *v, size_t vl)
{
    (void)v;
    (void)vl;
    crashing_ctx *c = arg;
    if (kl <= QDB_ID_BYTES)
        return 0;
    char *alias = g_strndup((const char *)key + QDB_ID_BYTES, kl - QDB_ID_BYTES);
    sim_key *k = sim_model_find(c->o->model, alias);
    g_free(alias);
    acked e;
    if (!k || !acked_entry(k, &e) || !holds(c->o, c->node, e.key, e.kl, k->alias, k->acked_version))
        return 0;
    unsigned have = live_copies(c->o, &e, (int)c->node, c->want);
    if (have >= c->want)
        return 0; /* K live copies stay: nothing to watch */
    if (!k->crashed && !k->down)
        g_ptr_array_add(sim_model_watched(c->o->model), k);
    k->crashed++;
    if (have == 0 && k->crashed >= c->o->copies && !k->down) {
        k->down = true;
        sim_model_stats(c->o->model)->lost_live_copy++;
    }
    return 0;
}

void sim_oracle_crashing(sim_oracle *o, unsigned i)
{
    qdb_storage *st = qdb_fixture_storage_of(o->fx, i);
    guint live = qdb_fixture_ring(o->fx)->len;
    if (o->copies <= 1 || !st || !qdb_fixture_up(o->fx, i) || live < 2)
        return;
    refresh_watched(o); /* a repair since the last check counts */
    crashing_ctx c = {o, i, MIN(o->copies, live - 1)};
    st->iterate(st, NULL, 0, NULL, 0, crashing_one, &c);
}

/* ---- placement -------------------------------------------------------------------- */

/* Placement (stray.h): every record on a live node -- entry or tombstone --
 * belongs on its owner and the owner's next K - 1 live nodes (all of them
 * when fewer).  stray: copies on any other live node; missing: right nodes
 * that lack the record or hold an older version than the newest live copy.
 * O(records x K) store lookups: for expectations at the end, not the
 * periodic check. */
typedef struct place_ctx {
    sim_oracle *o;
    const GArray *ring;
    const guint *pos;  /* node index -> its place in ring */
    unsigned me, want; /* the node scanned; min(K, live nodes) */
    GHashTable *seen;  /* keys already checked at their right nodes (a set: counts only) */
    uint64_t stray, missing;
} place_ctx;

static bool newest(qdb_storage *st, const uint8_t *k, size_t kl, qdb_record_meta *out)
{
    uint8_t *v;
    size_t vl;
    if (!st || st->get(st, k, kl, &v, &vl) != QDB_OK)
        return false;
    bool ok = qdb_record_decode_meta(v, vl, out) == QDB_OK;
    g_free(v);
    return ok;
}

static int place_one(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    place_ctx *c = arg;
    if (kl < QDB_ID_BYTES)
        return 0;
    qdb_id id;
    memcpy(id.b, k, QDB_ID_BYTES);
    guint len = c->ring->len;
    guint owner = c->pos[qdb_fixture_owner(c->o->fx, &id)];
    if ((c->pos[c->me] + len - owner) % len >= c->want)
        c->stray++;
    GBytes *key = g_bytes_new(k, kl);
    if (g_hash_table_contains(c->seen, key)) {
        g_bytes_unref(key);
        return 0;
    }
    g_hash_table_add(c->seen, key);
    /* the newest copy on any live node, then each right node against it */
    qdb_record_meta best, m;
    if (qdb_record_decode_meta(v, vl, &best) != QDB_OK)
        return 0;
    for (guint j = 0; j < len; j++) {
        unsigned node = g_array_index(c->ring, unsigned, j);
        if (newest(qdb_fixture_storage_of(c->o->fx, node), k, kl, &m) &&
            qdb_record_cmp(&m, &best) > 0)
            best = m;
    }
    for (unsigned r = 0; r < c->want; r++) {
        unsigned node = g_array_index(c->ring, unsigned, (owner + r) % len);
        if (!newest(qdb_fixture_storage_of(c->o->fx, node), k, kl, &m) ||
            qdb_record_cmp(&m, &best) < 0)
            c->missing++;
    }
    return 0;
}

static void placement(sim_oracle *o, uint64_t *stray, uint64_t *missing)
{
    const GArray *ring = qdb_fixture_ring(o->fx);
    unsigned n = qdb_fixture_n_nodes(o->fx);
    guint *pos = g_new0(guint, MAX(n, 1u));
    for (guint j = 0; j < ring->len; j++)
        pos[g_array_index(ring, unsigned, j)] = j;
    place_ctx c = {o, ring, pos, 0, MIN(MAX(o->copies, 1u), ring->len),
                   g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                         (GDestroyNotify)g_bytes_unref, NULL), 0, 0};
    for (guint j = 0; j < ring->len; j++) {
        c.me = g_array_index(ring, unsigned, j);
        qdb_storage *st = qdb_fixture_storage_of(o->fx, c.me);
        if (st)
            st->iterate(st, NULL, 0, NULL, 0, place_one, &c);
    }
    g_hash_table_destroy(c.seen);
    g_free(pos);
    *stray = c.stray;
    *missing = c.missing;
}

/* ---- metrics ------------------------------------------------------------------------ */

static int cmp_uint(const void *a, const void *b)
{
    guint x = *(const guint *)a, y = *(const guint *)b;
    return x < y ? -1 : x > y;
}

double sim_oracle_hops_percentile(sim_oracle *o, double p)
{
    GArray *h = sim_model_stats(o->model)->hops;
    if (h->len == 0)
        return 0;
    qsort(h->data, h->len, sizeof(guint), cmp_uint);
    /* nearest rank */
    guint rank = (guint)ceil(p / 100.0 * h->len);
    return g_array_index(h, guint, rank ? rank - 1 : 0);
}

double sim_oracle_hops_mean(sim_oracle *o)
{
    GArray *h = sim_model_stats(o->model)->hops;
    if (h->len == 0)
        return 0;
    double s = 0;
    for (guint i = 0; i < h->len; i++)
        s += g_array_index(h, guint, i);
    return s / h->len;
}

static double stable_s(sim_oracle *o, bool ok, qdb_time_us at)
{
    if (!ok)
        return -1;
    return at > o->last_change ? (double)(at - o->last_change) / 1e6 : 0;
}

bool sim_oracle_metric(sim_oracle *o, const char *name, double *out)
{
    const sim_client_stats *m = sim_model_stats(o->model);
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
    else if (strcmp(name, "unstable_requests") == 0)
        *out = (double)m->unstable_requests;
    else if (strcmp(name, "timeout_requests") == 0)
        *out = (double)m->timeout_requests;
    else if (strcmp(name, "unavailable_reads") == 0)
        *out = (double)m->unavailable_reads;
    else if (strcmp(name, "hops_mean") == 0)
        *out = sim_oracle_hops_mean(o);
    else if (strcmp(name, "ring_stable_s") == 0)
        *out = stable_s(o, o->ring_ok, o->ring_ok_at);
    else if (strcmp(name, "full_stable_s") == 0)
        *out = stable_s(o, o->full_ok, o->full_ok_at);
    else if (strcmp(name, "rereplicated_s") == 0)
        *out = o->copies_ok ? (double)(o->copies_ok_at - o->crash_at) / 1e6 : -1;
    else if (strcmp(name, "stray_copies") == 0 || strcmp(name, "missing_copies") == 0) {
        uint64_t stray, missing;
        placement(o, &stray, &missing);
        *out = (double)(name[0] == 's' ? stray : missing);
    } else if (strcmp(name, "lost_entries") == 0)
        *out = (double)sim_oracle_lost_entries(o, NULL);
    else if (strcmp(name, "bad_reads") == 0)
        *out = (double)m->bad_reads;
    else if (strcmp(name, "stale_reads") == 0)
        *out = (double)m->stale_reads;
    else if (strcmp(name, "missing_reads") == 0)
        *out = (double)m->missing_reads;
    else if (strcmp(name, "lost_last_copy") == 0)
        *out = (double)m->lost_last_copy;
    else if (strcmp(name, "split_stale_reads") == 0)
        *out = (double)m->split_stale_reads;
    else if (strcmp(name, "split_missing_reads") == 0)
        *out = (double)m->split_missing_reads;
    else if (strcmp(name, "down_stale_reads") == 0)
        *out = (double)m->down_stale_reads;
    else if (strcmp(name, "down_missing_reads") == 0)
        *out = (double)m->down_missing_reads;
    else if (strcmp(name, "lost_live_copy") == 0)
        *out = (double)m->lost_live_copy;
    else if (strcmp(name, "acked_writes") == 0)
        *out = (double)m->acked_writes;
    else if (strcmp(name, "lookups") == 0)
        *out = (double)m->lookups;
    else if (strcmp(name, "requests") == 0)
        *out = (double)m->requests;
    else if (strcmp(name, "two_owners") == 0)
        *out = (double)o->two_owners;
    else
        return false;
    return true;
}

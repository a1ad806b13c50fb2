/* SPDX-License-Identifier: BSD-2-Clause */
/* The verbs of a scenario: a table of name, argument shape and action.
 *
 * Sections
 *   arguments: node ranges, via=
 *   nodes: start, join/restart, crash, leave
 *   network: partition, heal, set, slow, drift, reset
 *   clients: put, update, get, remove, workload, lookups, churn
 *   expectations
 *   the table
 *
 * An action runs at its event's time, from the event queue; it returns false
 * and sets *err on a semantic error, which stops the run.
 */
#define G_LOG_DOMAIN "qdbsim"

#include <math.h>
#include <string.h>

#include "codec.h"
#include "load.h"
#include "world.h"

static const char *const k_none[] = {NULL};

/* ---- arguments -------------------------------------------------------------- */

/* A range of node indices: "A..B", "A", or "A..last" (up to the last node,
 * so one scenario serves every world size). */
static bool node_range(sim_world *w, const qdb_scn_token *t, uint64_t *lo, uint64_t *hi, qdb_scn_err *err)
{
    if (g_str_has_suffix(t->text, "..last") && !t->quoted) {
        qdb_scn_token head = *t;
        head.text = g_strndup(t->text, strlen(t->text) - strlen("..last"));
        bool ok = qdb_scn_tok_uint(&head, lo, err);
        g_free(head.text);
        if (!ok)
            return false;
        *hi = w->p.nodes - 1;
        if (*lo > *hi)
            return qdb_scn_error(err, &t->pos, "range starts after the last node (%u)", w->p.nodes - 1);
        return true;
    }
    if (!qdb_scn_tok_range(t, lo, hi, err))
        return false;
    if (*hi >= w->p.nodes)
        return qdb_scn_error(err, &t->pos, "node %" G_GUINT64_FORMAT " does not exist (nodes = %u)",
                             *hi, w->p.nodes);
    return true;
}

/* The first argument as a node range. */
static bool arg_range(sim_world *w, const qdb_scn_event *ev, uint64_t *lo, uint64_t *hi, qdb_scn_err *err)
{
    return node_range(w, qdb_scn_event_arg(ev, 0), lo, hi, err);
}

static bool via_node(sim_world *w, const qdb_scn_event *ev, int *via, qdb_scn_err *err)
{
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "via");
    if (!t || strcmp(t->text, "random") == 0) {
        *via = sim_random_live_node(w, -1);
        if (*via < 0)
            return qdb_scn_error(err, &ev->pos, "%s: no live node to go through", ev->verb);
        return true;
    }
    uint64_t lo, hi;
    if (!node_range(w, t, &lo, &hi, err))
        return false;
    *via = (int)lo;
    return true;
}

/* ---- nodes ------------------------------------------------------------------- */

static bool verb_start(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t lo, hi;
    if (!arg_range(w, ev, &lo, &hi, err))
        return false;
    for (uint64_t i = lo; i <= hi; i++)
        if (!qdb_fixture_up(w->fx, (unsigned)i))
            sim_boot(w, (unsigned)i, NULL, 0);
    return true;
}

/* warm RANGE: a settled ring at once, for scale experiments */
static bool verb_warm(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t lo, hi;
    if (!arg_range(w, ev, &lo, &hi, err))
        return false;
    sim_warm(w, (unsigned)lo, (unsigned)hi);
    return true;
}

/* Joins spread over time: one every 1/rate s. */
typedef struct join_ctx {
    sim_world *w;
    uint64_t next, hi;
    int via;
    qdb_time_us gap;
} join_ctx;

static void join_next(void *arg)
{
    join_ctx *c = arg;
    sim_join(c->w, (unsigned)c->next, c->via);
    c->next++;
    if (c->next <= c->hi)
        qdb_simnet_at(c->w->net, qdb_simnet_now(c->w->net) + c->gap, join_next, c);
}

/* join and restart: the same action (a restarted node keeps its storage). */
static bool verb_join(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t lo, hi;
    if (!arg_range(w, ev, &lo, &hi, err))
        return false;
    int via = -1;
    const qdb_scn_token *vt = qdb_scn_event_kv(ev, "via");
    if (vt && strcmp(vt->text, "random") != 0 && !via_node(w, ev, &via, err))
        return false;
    const qdb_scn_token *rt = qdb_scn_event_kv(ev, "rate");
    double rate = 0;
    if (rt && (!qdb_scn_tok_rate(rt, &rate, err)))
        return false;
    if (rt && rate <= 0)
        return qdb_scn_error(err, &rt->pos, "rate must be positive");
    if (!rt) {
        for (uint64_t i = lo; i <= hi; i++)
            sim_join(w, (unsigned)i, via);
        return true;
    }
    join_ctx *c = sim_world_alloc(w, sizeof(join_ctx));
    qdb_time_us gap = (qdb_time_us)llround(1e6 / rate);
    *c = (join_ctx){.w = w, .next = lo, .hi = hi, .via = via, .gap = MAX(gap, 1)};
    join_next(c);
    return true;
}

/* crash F of the live nodes, chosen at random: a seeded partial Fisher-Yates
 * (the first k of a random order). */
static void crash_fraction(sim_world *w, double f, bool keep, bool host)
{
    GArray *live = g_array_copy((GArray *)qdb_fixture_ring(w->fx));
    unsigned k = (unsigned)llround(f * live->len);
    for (unsigned i = 0; i < k; i++) {
        unsigned j = i + (unsigned)g_rand_int_range(w->rng, 0, (gint32)(live->len - i));
        unsigned t = g_array_index(live, unsigned, i);
        g_array_index(live, unsigned, i) = g_array_index(live, unsigned, j);
        g_array_index(live, unsigned, j) = t;
        sim_crash(w, g_array_index(live, unsigned, i), keep, host);
    }
    g_array_free(live, TRUE);
}

static bool verb_crash(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    qdb_scn_token *a0 = qdb_scn_event_arg(ev, 0);
    bool lose = false, host = w->p.crash_host;
    const qdb_scn_token *mt = qdb_scn_event_kv(ev, "mode"), *st = qdb_scn_event_kv(ev, "storage");
    if ((mt && !sim_tok_either(mt, "process", "host", &host, err)) ||
        (st && !sim_tok_either(st, "keep", "lose", &lose, err)))
        return false;
    bool keep = !lose;
    const qdb_scn_token *ft = qdb_scn_event_kv(ev, "fraction");
    if (a0 && ft)
        return qdb_scn_error(err, &ft->pos, "crash: give nodes or fraction=, not both");
    if (ft) {
        double f;
        if (!qdb_scn_tok_fraction(ft, &f, err))
            return false;
        crash_fraction(w, f, keep, host);
        return true;
    }
    uint64_t lo, hi;
    if (!a0)
        return qdb_scn_error(err, &ev->end_pos, "crash: which nodes? (a range or fraction=F)");
    if (!node_range(w, a0, &lo, &hi, err))
        return false;
    for (uint64_t i = lo; i <= hi; i++)
        sim_crash(w, (unsigned)i, keep, host);
    return true;
}

/* stabilize off|on: pause or resume ring maintenance on every node */
static bool verb_stabilize(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    bool on;
    if (!sim_tok_either(qdb_scn_event_arg(ev, 0), "off", "on", &on, err))
        return false;
    w->maintenance_off = !on;
    for (unsigned i = 0; i < w->p.nodes; i++)
        if (qdb_fixture_up(w->fx, i))
            qdb_node_pause_maintenance(qdb_fixture_node(w->fx, i), w->maintenance_off);
    return true;
}

static bool verb_leave(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t lo, hi;
    if (!arg_range(w, ev, &lo, &hi, err))
        return false;
    for (uint64_t i = lo; i <= hi; i++)
        if (qdb_fixture_up(w->fx, (unsigned)i))
            sim_depart(w, (unsigned)i, true);
    return true;
}

/* ---- network ---------------------------------------------------------------- */

static bool verb_partition(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t lo, hi;
    if (strcmp(qdb_scn_event_arg(ev, 0)->text, "oneway") == 0) {
        qdb_scn_token *from = qdb_scn_event_arg(ev, 1), *arrow = qdb_scn_event_arg(ev, 2),
                      *to = qdb_scn_event_arg(ev, 3);
        if (!from || !arrow || !to || strcmp(arrow->text, "->") != 0 ||
            qdb_scn_event_n_args(ev) != 4)
            return qdb_scn_error(err, &ev->pos, "usage: partition oneway A..B -> C..D");
        uint64_t tlo, thi;
        if (!node_range(w, from, &lo, &hi, err) || !node_range(w, to, &tlo, &thi, err))
            return false;
        for (uint64_t i = lo; i <= hi; i++)
            for (uint64_t j = tlo; j <= thi; j++)
                qdb_fixture_block(w->fx, (unsigned)i, (unsigned)j);
        return true;
    }
    for (unsigned g = 0; g < qdb_scn_event_n_args(ev); g++) {
        if (!node_range(w, qdb_scn_event_arg(ev, g), &lo, &hi, err))
            return false;
        for (uint64_t i = lo; i <= hi; i++)
            qdb_fixture_set_group(w->fx, (unsigned)i, (int)g + 1);
    }
    return true;
}

static bool verb_heal(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    qdb_fixture_heal(w->fx);
    sim_oracle_membership_changed(&w->oracle);
    return true;
}

static bool verb_set(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    double p;
    const qdb_scn_token *t;
    if ((t = qdb_scn_event_kv(ev, "loss"))) {
        if (!qdb_scn_tok_fraction(t, &p, err))
            return false;
        qdb_simnet_set_loss(w->net, p);
    }
    if ((t = qdb_scn_event_kv(ev, "dup"))) {
        if (!qdb_scn_tok_fraction(t, &p, err))
            return false;
        qdb_simnet_set_dup(w->net, p);
    }
    if ((t = qdb_scn_event_kv(ev, "reorder"))) {
        if (!qdb_scn_tok_fraction(t, &p, err))
            return false;
        qdb_simnet_set_reorder(w->net, p, w->p.reorder_window);
    }
    return true;
}

/* slow NODES factor=F and drift NODES ppm=P: per machine. */
static bool verb_slow_drift(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    bool slow = ev->verb[0] == 's';
    const char *key = slow ? "factor" : "ppm";
    uint64_t lo, hi;
    if (!arg_range(w, ev, &lo, &hi, err))
        return false;
    const qdb_scn_token *t = qdb_scn_event_kv(ev, key);
    double x;
    if (!t)
        return qdb_scn_error(err, &ev->end_pos, "%s: missing %s=", ev->verb, key);
    if (!qdb_scn_tok_double(t, &x, err))
        return false;
    if (slow && x < 1)
        return qdb_scn_error(err, &t->pos, "factor must be at least 1");
    for (uint64_t i = lo; i <= hi; i++) {
        qdb_addr a = qdb_fixture_peer(w->fx, (unsigned)i)->addr;
        if (slow)
            qdb_simnet_set_slow(w->net, a, x);
        else
            qdb_simnet_set_drift(w->net, a, (int32_t)x);
    }
    return true;
}

/* reset NODES NODES: the connections of the first nodes to the second ones
 * break, both live; the first are told. */
static bool verb_reset(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t alo, ahi, blo, bhi;
    if (!arg_range(w, ev, &alo, &ahi, err) ||
        !node_range(w, qdb_scn_event_arg(ev, 1), &blo, &bhi, err))
        return false;
    for (uint64_t a = alo; a <= ahi; a++)
        for (uint64_t b = blo; b <= bhi; b++)
            if (a != b)
                qdb_simnet_reset(w->net, qdb_fixture_peer(w->fx, (unsigned)a)->addr,
                                 qdb_fixture_peer(w->fx, (unsigned)b)->addr);
    return true;
}

/* ---- clients ------------------------------------------------------------------ */

static bool parse_op_expect(const qdb_scn_event *ev, sim_op *op, bool is_get, qdb_scn_err *err)
{
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "expect");
    op->expect_status = QDB_OK;
    if (!t)
        return true;
    if (!t->quoted && strcmp(t->text, "not_found") == 0)
        op->expect_status = QDB_E_ALIAS_NOT_FOUND;
    else if (!t->quoted && strcmp(t->text, "already_exists") == 0)
        op->expect_status = QDB_E_ALIAS_ALREADY_EXISTS;
    else if (!t->quoted && strcmp(t->text, "ok") == 0)
        op->expect_status = QDB_OK;
    else if (!t->quoted && strcmp(t->text, "outcome_unknown") == 0)
        op->expect_status = QDB_E_OUTCOME_UNKNOWN;
    else if (!t->quoted && strcmp(t->text, "unstable") == 0)
        op->expect_status = QDB_E_UNSTABLE;
    else if (is_get)
        op->expect = g_strdup(t->text);
    else
        return qdb_scn_error(err, &t->pos,
                             "expect: ok, not_found, already_exists, outcome_unknown or unstable");
    return true;
}

/* put ALIAS CONTENT, update ALIAS CONTENT, get ALIAS, remove ALIAS
 * [via=N|random] [expect=...]; put and update take [expires=DURATION]: the
 * entry expires that long (rounded up to a second) after the via node's
 * wall clock reads now. */
static bool verb_request(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    const char *v = ev->verb;
    bool has_content = v[0] == 'p' || v[0] == 'u';
    int via;
    if (!via_node(w, ev, &via, err))
        return false;
    sim_op *op = sim_op_new(SIM_OP_SCRIPTED);
    op->tag = ev;
    if (!parse_op_expect(ev, op, v[0] == 'g', err)) {
        sim_op_free(op);
        return false;
    }
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "expires");
    qdb_time_us in;
    if (t && (!has_content || !qdb_scn_tok_duration(t, &in, err))) {
        sim_op_free(op);
        return has_content ? false : qdb_scn_error(err, &t->pos, "expires: put and update only");
    }
    qdb_host_endpoint *ep = t ? qdb_fixture_endpoint(w->fx, (unsigned)via) : NULL;
    if (t && !ep) {
        sim_op_free(op);
        return qdb_scn_error(err, &t->pos, "expires: node %d is down", via);
    }
    if (t) {
        qdb_clock *clk = qdb_fixture_host(w->fx)->seams(ep).clock;
        op->expiry = (clk->wall(clk) + (int64_t)in + QDB_US_PER_S - 1) / QDB_US_PER_S;
    }
    int type = v[0] == 'p' ? QDB_MSG_PUT : v[0] == 'u' ? QDB_MSG_UPDATE
             : v[0] == 'g' ? QDB_MSG_GET : QDB_MSG_REMOVE;
    const qdb_scn_token *content = has_content ? qdb_scn_event_arg(ev, 1) : NULL;
    sim_submit(w, sim_client_via(w, (unsigned)via), type, qdb_scn_event_arg(ev, 0)->text,
               content ? (const uint8_t *)content->text : NULL, content ? strlen(content->text) : 0,
               op);
    return true;
}

static bool verb_workload(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    sim_workload s = {.keys = 100, .value_size = 16, .until = w->p.end};
    uint64_t clients = 4;
    const qdb_scn_token *t;
    bool ok = true;
    if (ok && (t = qdb_scn_event_kv(ev, "clients")))
        ok = qdb_scn_tok_uint(t, &clients, err);
    if (ok && (t = qdb_scn_event_kv(ev, "puts")))
        ok = qdb_scn_tok_rate(t, &s.puts, err);
    if (ok && (t = qdb_scn_event_kv(ev, "gets")))
        ok = qdb_scn_tok_rate(t, &s.gets, err);
    if (ok && (t = qdb_scn_event_kv(ev, "keys")))
        ok = qdb_scn_tok_uint(t, &s.keys, err);
    if (ok && (t = qdb_scn_event_kv(ev, "value_size")))
        ok = qdb_scn_tok_uint(t, &s.value_size, err);
    if (ok && (t = qdb_scn_event_kv(ev, "until")))
        ok = qdb_scn_tok_duration(t, &s.until, err);
    if (ok && (s.puts + s.gets <= 0 || s.keys == 0 || clients == 0 || s.value_size > (1u << 20)))
        ok = qdb_scn_error(err, &ev->pos,
                           "workload: needs puts or gets > 0, keys > 0, clients > 0, "
                           "value_size <= 1 MiB");
    if (ok)
        sim_workload_start(w, &s, clients);
    return ok;
}

static bool verb_lookups(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    uint64_t count;
    double rate = 1000;
    const qdb_scn_token *t = qdb_scn_event_kv(ev, "rate");
    if (!qdb_scn_tok_uint(qdb_scn_event_arg(ev, 0), &count, err) ||
        (t && !qdb_scn_tok_rate(t, &rate, err)) ||
        (rate <= 0 && !qdb_scn_error(err, &t->pos, "rate must be positive")))
        return false;
    sim_lookups_start(w, count, rate);
    return true;
}

static bool verb_churn(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    double rate = 0, leave = 0.5;
    qdb_time_us until = w->p.end;
    /* r + 1 live nodes: the fewest for which Chord's guarantees hold */
    uint64_t min = w->p.succlist + 1;
    const qdb_scn_token *rt = qdb_scn_event_kv(ev, "rate"), *ut = qdb_scn_event_kv(ev, "until"),
                        *lt = qdb_scn_event_kv(ev, "leave"), *mt = qdb_scn_event_kv(ev, "min");
    bool ok = rt ? qdb_scn_tok_rate(rt, &rate, err)
                 : qdb_scn_error(err, &ev->end_pos, "churn: missing rate=R/s");
    if (ok && ut)
        ok = qdb_scn_tok_duration(ut, &until, err);
    if (ok && lt)
        ok = qdb_scn_tok_fraction(lt, &leave, err);
    if (ok && mt)
        ok = qdb_scn_tok_uint(mt, &min, err);
    if (ok && rate <= 0)
        ok = qdb_scn_error(err, &rt->pos, "rate must be positive");
    if (ok)
        sim_churn_start(w, rate, leave, until, (unsigned)MIN(min, G_MAXUINT));
    return ok;
}

void sim_verb_result(void *arg, const sim_op *op, const qdb_client_result *r)
{
    sim_world *w = arg;
    const qdb_scn_event *ev = op->tag;
    if (op->expect && r->status == QDB_OK &&
        (r->content_len != strlen(op->expect) || memcmp(r->content, op->expect, r->content_len) != 0)) {
        sim_world_fail(w, &ev->pos, "%s: got '%.*s', expected '%s'", ev->verb,
                       (int)MIN(r->content_len, 200), (const char *)r->content, op->expect);
    } else if (r->status != op->expect_status) {
        sim_world_fail(w, &ev->pos, "%s: %s (expected %s)", ev->verb, qdb_strerror(r->status),
                       qdb_strerror(op->expect_status));
    } else if (!w->quiet && r->status == QDB_OK && r->content) {
        fprintf(w->out, "%s: %s -> %.*s\n", qdb_scenario_source(w->sc), ev->verb,
                (int)MIN(r->content_len, 200), (const char *)r->content);
    }
}

/* ---- expectations --------------------------------------------------------------- */

/* expect readable: a scripted GET that must answer OK. */
static bool expect_readable(sim_world *w, const qdb_scn_event *ev, const char *alias, qdb_scn_err *err)
{
    int via;
    if (!via_node(w, ev, &via, err))
        return false;
    sim_op *op = sim_op_new(SIM_OP_SCRIPTED);
    op->tag = ev;
    op->expect_status = QDB_OK;
    return sim_submit(w, sim_client_via(w, (unsigned)via), QDB_MSG_GET, alias, NULL, 0, op);
}

typedef struct stable_by {
    sim_world *w;
    const qdb_scn_event *ev;
} stable_by;

static void check_stable_by(void *arg)
{
    stable_by *s = arg;
    GString *why = g_string_new(NULL);
    s->w->expectations++;
    if (!sim_oracle_ring_ok(&s->w->oracle, why)) {
        s->w->expectations_failed++;
        sim_world_fail(s->w, &s->ev->pos, "expect stable: the ring is not right: %s", why->str);
    }
    g_string_free(why, TRUE);
}

static bool verb_expect(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
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
            w->expectations++;
            if (!sim_oracle_ring_ok(&w->oracle, why)) {
                w->expectations_failed++;
                sim_world_fail(w, &ev->pos, "expect ring_ok: %s", why->str);
            }
        } else {
            ok = false;
        }
    } else if (strcmp(what->text, "readable") == 0) {
        static const char *const keys[] = {"via", NULL};
        if (qdb_scn_event_check(ev, 2, 2, keys, err)) {
            w->expectations++;
            ok = expect_readable(w, ev, qdb_scn_event_arg(ev, 1)->text, err);
        } else {
            ok = false;
        }
    } else if (strcmp(what->text, "acked_readable") == 0) {
        if (qdb_scn_event_check(ev, 1, 1, NULL, err)) {
            w->expectations++;
            uint64_t lost = sim_oracle_lost_entries(&w->oracle, why);
            if (lost) {
                w->expectations_failed++;
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
        else if (!sim_oracle_metric(&w->oracle, what->text, &value))
            ok = qdb_scn_error(err, &what->pos, "expect: unknown metric '%s'", what->text);
        else if (!qdb_scn_tok_cmp(optok, &op, err) || !qdb_scn_tok_double(num, &bound, err))
            ok = false;
        else {
            w->expectations++;
            if (!qdb_scn_cmp_eval(op, value, bound)) {
                w->expectations_failed++;
                const char *first = NULL;
                if (strcmp(what->text, "stale_reads") == 0 ||
                    strcmp(what->text, "missing_reads") == 0)
                    first = sim_model_first_bad_read(w->model);
                sim_world_fail(w, &ev->pos, "expect %s %s %s: it is %g%s%s", what->text,
                               qdb_scn_cmp_str(op), num->text, value, first ? " -- " : "",
                               first ? first : "");
            }
        }
    }
    g_string_free(why, TRUE);
    return ok;
}

/* ---- the table ------------------------------------------------------------------- */

typedef struct verb {
    const char *name;
    /* The shape checked before the action (qdb_scn_event_check): positional
     * arguments min..max (max < 0: any) and the keys allowed.  min < 0: the
     * action checks its own arguments. */
    int min, max;
    const char *const *keys;
    bool (*run)(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err);
} verb;

static const char *const k_join[] = {"via", "rate", NULL};
static const char *const k_crash[] = {"fraction", "storage", "mode", NULL};
static const char *const k_set[] = {"loss", "dup", "reorder", NULL};
static const char *const k_slow[] = {"factor", NULL};
static const char *const k_drift[] = {"ppm", NULL};
static const char *const k_request[] = {"via", "expect", "expires", NULL};
static const char *const k_workload[] = {"clients", "puts", "gets", "keys", "value_size", "until",
                                         NULL};
static const char *const k_lookups[] = {"rate", NULL};
static const char *const k_churn[] = {"rate", "until", "leave", "min", NULL};

static const verb verbs[] = {
    {"start", 1, 1, k_none, verb_start},
    {"warm", 1, 1, k_none, verb_warm},
    {"join", 1, 1, k_join, verb_join},
    {"restart", 1, 1, k_join, verb_join},
    {"crash", 0, 1, k_crash, verb_crash},
    {"leave", 1, 1, k_none, verb_leave},
    {"stabilize", 1, 1, k_none, verb_stabilize},
    {"partition", 2, -1, k_none, verb_partition},
    {"heal", 0, 0, k_none, verb_heal},
    {"set", 0, 0, k_set, verb_set},
    {"slow", 1, 1, k_slow, verb_slow_drift},
    {"drift", 1, 1, k_drift, verb_slow_drift},
    {"reset", 2, 2, k_none, verb_reset},
    {"put", 2, 2, k_request, verb_request},
    {"update", 2, 2, k_request, verb_request},
    {"get", 1, 1, k_request, verb_request},
    {"remove", 1, 1, k_request, verb_request},
    {"workload", 0, 0, k_workload, verb_workload},
    {"lookups", 1, 1, k_lookups, verb_lookups},
    {"churn", 0, 0, k_churn, verb_churn},
    {"expect", -1, -1, NULL, verb_expect},
};

bool sim_verb_run(sim_world *w, const qdb_scn_event *ev, qdb_scn_err *err)
{
    for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
        const verb *v = &verbs[i];
        if (strcmp(ev->verb, v->name) != 0)
            continue;
        if (v->min >= 0 && !qdb_scn_event_check(ev, v->min, v->max, v->keys, err))
            return false;
        return v->run(w, ev, err);
    }
    return qdb_scn_error(err, &ev->pos, "unknown verb '%s'", ev->verb);
}

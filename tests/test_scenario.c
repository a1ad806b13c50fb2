/* SPDX-License-Identifier: BSD-2-Clause */
/* CUnit suite for sim/scenario: statements, token kinds and conversions,
 * error messages with their exact FILE:LINE:COL, --set, event order. */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "sim/scenario.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static qdb_scenario *parse_ok(const char *text)
{
    qdb_scn_err err = {0};
    qdb_scenario *sc = qdb_scenario_parse_string("t.scn", text, &err);
    if (sc == NULL) {
        fprintf(stderr, "unexpected error: %s\n", err.msg);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    return sc;
}

/* Parsing text fails with exactly this message (and code). */
static void parse_fails(const char *text, int code, const char *message)
{
    qdb_scn_err err = {0};
    qdb_scenario *sc = qdb_scenario_parse_string("t.scn", text, &err);
    CU_ASSERT_PTR_NULL(sc);
    qdb_scenario_free(sc);
    CU_ASSERT_EQUAL(err.code, code);
    if (strcmp(err.msg, message) != 0)
        fprintf(stderr, "\n  text:     %s\n  expected: %s\n  got:      %s\n",
                text, message, err.msg);
    CU_ASSERT_STRING_EQUAL(err.msg, message);
}

static void syntax_error(const char *text, const char *message)
{
    parse_fails(text, QDB_SCN_ERROR_SYNTAX, message);
}

/* A scenario "at 0 t WORD": the token is its first argument, at column 8
 * of line 1 of t.scn. */
typedef struct one_tok {
    qdb_scenario *sc;
    const qdb_scn_token *tok;
} one_tok;

static one_tok arg_of(const char *word)
{
    g_autofree char *text = g_strdup_printf("at 0 t %s", word);
    one_tok o = {.sc = parse_ok(text)};
    const qdb_scn_event *ev = qdb_scenario_event(o.sc, 0);
    CU_ASSERT_EQUAL_FATAL(ev->args->len, 1);
    o.tok = ev->args->pdata[0];
    return o;
}

/* err is set, with this code and message; then cleared. */
static void expect_error(qdb_scn_err *err, int code, const char *message)
{
    CU_ASSERT_EQUAL(err->code, code);
    if (strcmp(err->msg, message) != 0)
        fprintf(stderr, "\n  expected: %s\n  got:      %s\n", message, err->msg);
    CU_ASSERT_STRING_EQUAL(err->msg, message);
    *err = (qdb_scn_err){0};
}

/* Each conversion helper: parse WORD as an argument, convert, check. */
static void int_ok(const char *word, int64_t want)
{
    one_tok o = arg_of(word);
    int64_t v = 12345;
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(qdb_scn_tok_int(o.tok, &v, &err));
    CU_ASSERT_EQUAL(err.code, QDB_SCN_OK);
    CU_ASSERT_EQUAL(v, want);
    qdb_scenario_free(o.sc);
}

typedef bool (*conv_fn)(const qdb_scn_token *, void *, qdb_scn_err *);

static bool conv_int(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_int(t, o, e); }
static bool conv_uint(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_uint(t, o, e); }
static bool conv_double(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_double(t, o, e); }
static bool conv_duration(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_duration(t, o, e); }
static bool conv_rate(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_rate(t, o, e); }
static bool conv_fraction(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_fraction(t, o, e); }
static bool conv_bool(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_bool(t, o, e); }
static bool conv_cmp(const qdb_scn_token *t, void *o, qdb_scn_err *e) { return qdb_scn_tok_cmp(t, o, e); }
static bool conv_range(const qdb_scn_token *t, void *o, qdb_scn_err *e)
{
    uint64_t *lohi = o;
    return qdb_scn_tok_range(t, &lohi[0], &lohi[1], e);
}

/* Conversion of WORD fails with "t.scn:1:8: " + message; the output is
 * left untouched. */
static void conv_fails(conv_fn fn, const char *word, const char *message)
{
    one_tok o = arg_of(word);
    unsigned char out[16], before[16];
    memset(out, 0xa5, sizeof out);
    memcpy(before, out, sizeof out);
    qdb_scn_err err = {0};
    CU_ASSERT_FALSE(fn(o.tok, out, &err));
    CU_ASSERT_EQUAL(memcmp(out, before, sizeof out), 0);
    g_autofree char *full = g_strdup_printf("t.scn:1:8: %s", message);
    expect_error(&err, QDB_SCN_ERROR_VALUE, full);
    /* a NULL err is allowed too */
    CU_ASSERT_FALSE(fn(o.tok, out, NULL));
    qdb_scenario_free(o.sc);
}

static uint64_t uint_of(const char *word)
{
    one_tok o = arg_of(word);
    uint64_t v = 0;
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(qdb_scn_tok_uint(o.tok, &v, &err));
    CU_ASSERT_EQUAL(err.code, QDB_SCN_OK);
    qdb_scenario_free(o.sc);
    return v;
}

static double double_of(conv_fn fn, const char *word)
{
    one_tok o = arg_of(word);
    double v = -999;
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(fn(o.tok, &v, &err));
    if (err.code != QDB_SCN_OK)
        fprintf(stderr, "\n  %s: %s\n", word, err.msg);
    qdb_scenario_free(o.sc);
    return v;
}

static qdb_time_us duration_of(const char *word)
{
    one_tok o = arg_of(word);
    qdb_time_us v = 999;
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(qdb_scn_tok_duration(o.tok, &v, &err));
    if (err.code != QDB_SCN_OK)
        fprintf(stderr, "\n  %s: %s\n", word, err.msg);
    qdb_scenario_free(o.sc);
    return v;
}

/* ---- statements -------------------------------------------------------- */

static const char example[] =
    "# seed tutorial\n"
    "name = \"seed tutorial\"\n"
    "nodes = 1000\n"
    "\n"
    "seed=42\n"
    "latency_mean = 50ms   # one way\n"
    "at 0s start 0\n"
    "at 1s join 1..999 via=0 rate=20/s\n"
    "\tat 5s put entry thisismyentry via=1\n"
    "at 6s get entry via=2 expect=thisismyentry\n"
    "at end expect failed_requests <= 0\n";

static void test_params_and_events(void)
{
    qdb_scenario *sc = parse_ok(example);
    CU_ASSERT_STRING_EQUAL(qdb_scenario_source(sc), "t.scn");

    CU_ASSERT_EQUAL_FATAL(qdb_scenario_n_params(sc), 4);
    const char *keys[] = {"name", "nodes", "seed", "latency_mean"};
    const char *vals[] = {"seed tutorial", "1000", "42", "50ms"};
    for (unsigned i = 0; i < 4; i++) {
        const qdb_scn_token *p = qdb_scenario_param_at(sc, i);
        CU_ASSERT_STRING_EQUAL(p->key, keys[i]);
        CU_ASSERT_STRING_EQUAL(p->text, vals[i]);
    }
    const qdb_scn_token *name = qdb_scenario_param_at(sc, 0);
    CU_ASSERT_TRUE(name->quoted);
    CU_ASSERT_EQUAL(name->key_pos.line, 2);
    CU_ASSERT_EQUAL(name->key_pos.col, 1);
    CU_ASSERT_EQUAL(name->pos.line, 2);
    CU_ASSERT_EQUAL(name->pos.col, 8);
    CU_ASSERT_STRING_EQUAL(name->pos.file, "t.scn");
    const qdb_scn_token *seed = qdb_scenario_param(sc, "seed");
    CU_ASSERT_PTR_NOT_NULL_FATAL(seed);
    CU_ASSERT_FALSE(seed->quoted);
    CU_ASSERT_EQUAL(seed->key_pos.col, 1);
    CU_ASSERT_EQUAL(seed->pos.line, 5);
    CU_ASSERT_EQUAL(seed->pos.col, 6);
    uint64_t s;
    CU_ASSERT_TRUE(qdb_scn_tok_uint(seed, &s, NULL));
    CU_ASSERT_EQUAL(s, 42);
    CU_ASSERT_PTR_NULL(qdb_scenario_param(sc, "missing"));

    CU_ASSERT_EQUAL_FATAL(qdb_scenario_n_events(sc), 5);
    const qdb_scn_event *ev = qdb_scenario_event(sc, 1);
    CU_ASSERT_EQUAL(ev->index, 1);
    CU_ASSERT_EQUAL(ev->at, QDB_US_PER_S);
    CU_ASSERT_FALSE(ev->at_end);
    CU_ASSERT_STRING_EQUAL(ev->verb, "join");
    CU_ASSERT_EQUAL(ev->pos.line, 8);
    CU_ASSERT_EQUAL(ev->pos.col, 7);
    CU_ASSERT_EQUAL(ev->at_pos.col, 4);
    CU_ASSERT_EQUAL(ev->end_pos.col, 34);
    CU_ASSERT_EQUAL(ev->args->len, 3);
    CU_ASSERT_EQUAL(qdb_scn_event_n_args(ev), 1);
    qdb_scn_token *range = qdb_scn_event_arg(ev, 0);
    CU_ASSERT_STRING_EQUAL(range->text, "1..999");
    CU_ASSERT_PTR_NULL(range->key);
    CU_ASSERT_EQUAL(range->pos.col, 12);
    CU_ASSERT_EQUAL(range->key_pos.col, 12);
    CU_ASSERT_PTR_NULL(qdb_scn_event_arg(ev, 1));
    qdb_scn_token *via = qdb_scn_event_kv(ev, "via");
    CU_ASSERT_STRING_EQUAL(via->key, "via");
    CU_ASSERT_STRING_EQUAL(via->text, "0");
    CU_ASSERT_EQUAL(via->key_pos.col, 19);
    CU_ASSERT_EQUAL(via->pos.col, 23);
    qdb_scn_token *rate = qdb_scn_event_kv(ev, "rate");
    double r;
    CU_ASSERT_TRUE(qdb_scn_tok_rate(rate, &r, NULL));
    CU_ASSERT_DOUBLE_EQUAL(r, 20.0, 1e-12);
    CU_ASSERT_PTR_NULL(qdb_scn_event_kv(ev, "expect"));

    /* a tab is one column */
    ev = qdb_scenario_event(sc, 2);
    CU_ASSERT_EQUAL(ev->at, 5 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(ev->pos.col, 8);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_arg(ev, 1)->text, "thisismyentry");

    ev = qdb_scenario_event(sc, 4);
    CU_ASSERT_TRUE(ev->at_end);
    CU_ASSERT_EQUAL(ev->at, QDB_SCN_END);
    CU_ASSERT_STRING_EQUAL(ev->verb, "expect");
    CU_ASSERT_EQUAL(qdb_scn_event_n_args(ev), 3);
    qdb_scn_cmp op;
    CU_ASSERT_TRUE(qdb_scn_tok_cmp(qdb_scn_event_arg(ev, 1), &op, NULL));
    CU_ASSERT_EQUAL(op, QDB_SCN_LE);
    qdb_scenario_free(sc);
}

static void test_empty_and_crlf(void)
{
    qdb_scenario *sc = parse_ok("");
    CU_ASSERT_EQUAL(qdb_scenario_n_params(sc), 0);
    CU_ASSERT_EQUAL(qdb_scenario_n_events(sc), 0);
    qdb_scenario_free(sc);

    sc = parse_ok("   \n\t\n# only comments\n  # indented\n");
    CU_ASSERT_EQUAL(qdb_scenario_n_params(sc), 0);
    CU_ASSERT_EQUAL(qdb_scenario_n_events(sc), 0);
    qdb_scenario_free(sc);

    /* CRLF line ends; no final newline */
    sc = parse_ok("nodes = 3\r\nat 2m heal\r\nat 1h heal");
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param_at(sc, 0)->text, "3");
    CU_ASSERT_EQUAL(qdb_scenario_event(sc, 0)->at, 120 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(qdb_scenario_event(sc, 0)->args->len, 0);
    CU_ASSERT_EQUAL(qdb_scenario_event(sc, 1)->at, 3600 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(qdb_scenario_event(sc, 1)->pos.line, 3);
    qdb_scenario_free(sc);
}

static void test_comments_and_strings(void)
{
    qdb_scenario *sc = parse_ok(
        "name = \"a # not a comment\"   # a comment\n"
        "at 1s put \"k#1\" \"v \\\"q\\\" \\\\ \\n\\t\\x41\\xc3\\xa9\" via=2#c\n"
        "at 2s get k expect=\"two words\"\n"
        "at 3s get k expect=\"\"\n"
        "at 4s crash fraction=0.2 storage=keep#tail\n"
        "at 5s x -> <= == a==b ..  \"\"\n"
        "title = \"é ü\"\n");
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param_at(sc, 0)->text, "a # not a comment");
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param_at(sc, 1)->text, "é ü");

    const qdb_scn_event *ev = qdb_scenario_event(sc, 0);
    CU_ASSERT_EQUAL(ev->args->len, 3);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_arg(ev, 0)->text, "k#1");
    CU_ASSERT_TRUE(qdb_scn_event_arg(ev, 0)->quoted);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_arg(ev, 1)->text, "v \"q\" \\ \n\tAé");
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_kv(ev, "via")->text, "2");

    ev = qdb_scenario_event(sc, 1);
    qdb_scn_token *expect = qdb_scn_event_kv(ev, "expect");
    CU_ASSERT_STRING_EQUAL(expect->text, "two words");
    CU_ASSERT_TRUE(expect->quoted);
    CU_ASSERT_EQUAL(expect->key_pos.col, 13);
    CU_ASSERT_EQUAL(expect->pos.col, 20); /* the opening quote */

    ev = qdb_scenario_event(sc, 2);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_kv(ev, "expect")->text, "");

    ev = qdb_scenario_event(sc, 3);
    CU_ASSERT_EQUAL(ev->args->len, 2);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_kv(ev, "storage")->text, "keep");
    CU_ASSERT_EQUAL(ev->end_pos.col, 38);

    /* comparisons, arrows and "a==b" are positional words */
    ev = qdb_scenario_event(sc, 4);
    CU_ASSERT_EQUAL(qdb_scn_event_n_args(ev), 6);
    const char *words[] = {"->", "<=", "==", "a==b", "..", ""};
    for (unsigned i = 0; i < 6; i++) {
        CU_ASSERT_STRING_EQUAL(qdb_scn_event_arg(ev, i)->text, words[i]);
        CU_ASSERT_PTR_NULL(qdb_scn_event_arg(ev, i)->key);
    }
    qdb_scenario_free(sc);
}

static void test_at_end(void)
{
    qdb_scenario *sc = parse_ok("at end expect ring_ok\nat 0 start 0\n");
    const qdb_scn_event *ev = qdb_scenario_event(sc, 0);
    CU_ASSERT_TRUE(ev->at_end);
    CU_ASSERT_EQUAL(ev->at, QDB_SCN_END);
    CU_ASSERT_EQUAL(ev->at_pos.col, 4);
    CU_ASSERT_STRING_EQUAL(qdb_scn_event_arg(ev, 0)->text, "ring_ok");
    ev = qdb_scenario_event(sc, 1);
    CU_ASSERT_FALSE(ev->at_end);
    CU_ASSERT_EQUAL(ev->at, 0);
    qdb_scenario_free(sc);

    /* "end" as a parameter is a different statement */
    sc = parse_ok("end = 90s\n");
    qdb_time_us d;
    CU_ASSERT_TRUE(qdb_scn_tok_duration(qdb_scenario_param(sc, "end"), &d, NULL));
    CU_ASSERT_EQUAL(d, 90 * QDB_US_PER_S);
    CU_ASSERT_EQUAL(qdb_scenario_n_events(sc), 0);
    qdb_scenario_free(sc);
}

/* ---- token kinds ------------------------------------------------------- */

static void test_int(void)
{
    int_ok("0", 0);
    int_ok("-0", 0);
    int_ok("+17", 17);
    int_ok("-42", -42);
    int_ok("9223372036854775807", INT64_MAX);
    int_ok("-9223372036854775808", INT64_MIN);
    int_ok("007", 7);
    const char *range =
        "out of range (-9223372036854775808..9223372036854775807)";
    g_autofree char *m1 = g_strdup_printf("bad integer '9223372036854775808': %s", range);
    conv_fails(conv_int, "9223372036854775808", m1);
    g_autofree char *m2 = g_strdup_printf("bad integer '-9223372036854775809': %s", range);
    conv_fails(conv_int, "-9223372036854775809", m2);
    g_autofree char *m3 = g_strdup_printf("bad integer '99999999999999999999999': %s", range);
    conv_fails(conv_int, "99999999999999999999999", m3);
    conv_fails(conv_int, "12a", "bad integer '12a': not a decimal integer");
    conv_fails(conv_int, "0x10", "bad integer '0x10': not a decimal integer");
    conv_fails(conv_int, "1.0", "bad integer '1.0': not a decimal integer");
    conv_fails(conv_int, "-", "bad integer '-': not a decimal integer");
    conv_fails(conv_int, "--1", "bad integer '--1': not a decimal integer");
    conv_fails(conv_int, "\"5\"", "bad integer '5': must not be quoted");
    /* key=value: the key names the value, the column is the value's */
    one_tok o = arg_of("n=x");
    int64_t v = 5;
    qdb_scn_err err = {0};
    CU_ASSERT_FALSE(qdb_scn_tok_int(o.tok, &v, &err));
    CU_ASSERT_EQUAL(v, 5);
    expect_error(&err, QDB_SCN_ERROR_VALUE, "t.scn:1:10: n: bad integer 'x': not a decimal integer");
    qdb_scenario_free(o.sc);
}

static void test_uint(void)
{
    CU_ASSERT_EQUAL(uint_of("0"), 0);
    CU_ASSERT_EQUAL(uint_of("+5"), 5);
    CU_ASSERT_EQUAL(uint_of("18446744073709551615"), UINT64_MAX);
    conv_fails(conv_uint, "18446744073709551616",
               "bad unsigned integer '18446744073709551616': out of range (0..18446744073709551615)");
    conv_fails(conv_uint, "-1", "bad unsigned integer '-1': must not be negative");
    conv_fails(conv_uint, "-0", "bad unsigned integer '-0': must not be negative");
    conv_fails(conv_uint, "1e3", "bad unsigned integer '1e3': not a decimal integer");
    conv_fails(conv_uint, "+-1", "bad unsigned integer '+-1': not a decimal integer");
}

static void test_double(void)
{
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "0.5"), 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "-2"), -2.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, ".25"), 0.25, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "5."), 5.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "1e3"), 1000.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "+1.5E-2"), 0.015, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "1e308"), 1e308, 1e292);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_double, "1e-400"), 0.0, 1e-300);
    conv_fails(conv_double, "1e309", "bad number '1e309': out of range");
    conv_fails(conv_double, "inf", "bad number 'inf': not a decimal number");
    conv_fails(conv_double, "nan", "bad number 'nan': not a decimal number");
    conv_fails(conv_double, "0x1p3", "bad number '0x1p3': not a decimal number");
    conv_fails(conv_double, ".", "bad number '.': not a decimal number");
    conv_fails(conv_double, "1e", "bad number '1e': not a decimal number");
    conv_fails(conv_double, "1,5", "bad number '1,5': not a decimal number");
}

static void test_duration(void)
{
    CU_ASSERT_EQUAL(duration_of("0"), 0);
    CU_ASSERT_EQUAL(duration_of("0.0"), 0);
    CU_ASSERT_EQUAL(duration_of("0s"), 0);
    CU_ASSERT_EQUAL(duration_of("10us"), 10);
    CU_ASSERT_EQUAL(duration_of("250ms"), 250000);
    CU_ASSERT_EQUAL(duration_of("1.5s"), 1500000);
    CU_ASSERT_EQUAL(duration_of("0.25ms"), 250);
    CU_ASSERT_EQUAL(duration_of("1.000000s"), 1000000);
    CU_ASSERT_EQUAL(duration_of("0.000001s"), 1);
    CU_ASSERT_EQUAL(duration_of("2m"), 120000000);
    CU_ASSERT_EQUAL(duration_of("1h"), UINT64_C(3600000000));
    CU_ASSERT_EQUAL(duration_of("0.0009765625h"), UINT64_C(3515625)); /* 2^-10 h */
    CU_ASSERT_EQUAL(duration_of("0.1s"), 100000); /* exact, not 99999 */
    CU_ASSERT_EQUAL(duration_of("18446744073709551615us"), UINT64_MAX);
    CU_ASSERT_EQUAL(duration_of("18446744073709.551615s"), UINT64_MAX);
    CU_ASSERT_EQUAL(duration_of("5124095576h"), UINT64_C(5124095576) * 3600000000u);
    conv_fails(conv_duration, "18446744073709551616us",
               "bad duration '18446744073709551616us': out of range");
    conv_fails(conv_duration, "18446744073709.551616s",
               "bad duration '18446744073709.551616s': out of range");
    conv_fails(conv_duration, "5124095577h", "bad duration '5124095577h': out of range");
    conv_fails(conv_duration, "99999999999999999999999s",
               "bad duration '99999999999999999999999s': out of range");
    conv_fails(conv_duration, "1.5us",
               "bad duration '1.5us': not a whole number of microseconds");
    conv_fails(conv_duration, "0.0000001s",
               "bad duration '0.0000001s': not a whole number of microseconds");
    conv_fails(conv_duration, "0.0000000000000000000001h",
               "bad duration '0.0000000000000000000001h': not a whole number of microseconds");
    conv_fails(conv_duration, "5", "bad duration '5': missing unit (us, ms, s, m, h)");
    conv_fails(conv_duration, "5x", "bad duration '5x': unknown unit 'x' (us, ms, s, m, h)");
    conv_fails(conv_duration, "5S", "bad duration '5S': unknown unit 'S' (us, ms, s, m, h)");
    conv_fails(conv_duration, "-1s", "bad duration '-1s': must not be negative");
    conv_fails(conv_duration, "+1s",
               "bad duration '+1s': expected a number and a unit (us, ms, s, m, h)");
    conv_fails(conv_duration, "s",
               "bad duration 's': expected a number and a unit (us, ms, s, m, h)");
    conv_fails(conv_duration, "1.s", "bad duration '1.s': expected digits after '.'");
    conv_fails(conv_duration, "1e3s", "bad duration '1e3s': unknown unit 'e3s' (us, ms, s, m, h)");
}

static void test_rate(void)
{
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_rate, "20/s"), 20.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_rate, "5/m"), 5.0 / 60, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_rate, "0.5/s"), 0.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_rate, "36/h"), 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_rate, "0/s"), 0.0, 0);
    conv_fails(conv_rate, "20", "bad rate '20': expected NUMBER/UNIT, as in 20/s (units s, m, h)");
    conv_fails(conv_rate, "20/d", "bad rate '20/d': unknown unit 'd' (s, m, h)");
    conv_fails(conv_rate, "/s", "bad rate '/s': not a decimal number before '/'");
    conv_fails(conv_rate, "x/s", "bad rate 'x/s': not a decimal number before '/'");
    conv_fails(conv_rate, "-1/s", "bad rate '-1/s': must not be negative");
    conv_fails(conv_rate, "1e999/s", "bad rate '1e999/s': out of range");
}

static void test_range(void)
{
    struct { const char *word; uint64_t lo, hi; } ok[] = {
        {"1..999", 1, 999},
        {"7", 7, 7},
        {"5..5", 5, 5},
        {"0..18446744073709551615", 0, UINT64_MAX},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        one_tok o = arg_of(ok[i].word);
        uint64_t lo = 1, hi = 0;
        CU_ASSERT_TRUE(qdb_scn_tok_range(o.tok, &lo, &hi, NULL));
        CU_ASSERT_EQUAL(lo, ok[i].lo);
        CU_ASSERT_EQUAL(hi, ok[i].hi);
        qdb_scenario_free(o.sc);
    }
    conv_fails(conv_range, "9..3", "bad range '9..3': start is above end");
    conv_fails(conv_range, "1..", "bad range '1..': expected A..B or A (unsigned integers)");
    conv_fails(conv_range, "..4", "bad range '..4': expected A..B or A (unsigned integers)");
    conv_fails(conv_range, "-1..4", "bad range '-1..4': expected A..B or A (unsigned integers)");
    conv_fails(conv_range, "1...4", "bad range '1...4': expected A..B or A (unsigned integers)");
    conv_fails(conv_range, "1..2..3", "bad range '1..2..3': expected A..B or A (unsigned integers)");
    conv_fails(conv_range, "0..18446744073709551616", "bad range '0..18446744073709551616': out of range");
}

static void test_fraction_bool_cmp_choice(void)
{
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_fraction, "0"), 0.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_fraction, "1"), 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_fraction, "0.2"), 0.2, 0);
    CU_ASSERT_DOUBLE_EQUAL(double_of(conv_fraction, "1.0"), 1.0, 0);
    conv_fails(conv_fraction, "1.01", "bad fraction '1.01': expected a number in [0, 1]");
    conv_fails(conv_fraction, "-0.1", "bad fraction '-0.1': expected a number in [0, 1]");
    conv_fails(conv_fraction, "half", "bad fraction 'half': expected a number in [0, 1]");

    const char *yes[] = {"true", "yes", "on", "1"}, *no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        bool b = false;
        one_tok o = arg_of(yes[i]);
        CU_ASSERT_TRUE(qdb_scn_tok_bool(o.tok, &b, NULL));
        CU_ASSERT_TRUE(b);
        qdb_scenario_free(o.sc);
        o = arg_of(no[i]);
        CU_ASSERT_TRUE(qdb_scn_tok_bool(o.tok, &b, NULL));
        CU_ASSERT_FALSE(b);
        qdb_scenario_free(o.sc);
    }
    conv_fails(conv_bool, "True",
               "bad boolean 'True': expected true, false, yes, no, on, off, 1 or 0");

    const char *ops[] = {"<", "<=", "==", "!=", ">=", ">"};
    for (size_t i = 0; i < G_N_ELEMENTS(ops); i++) {
        qdb_scn_cmp op = QDB_SCN_GT + 1;
        one_tok o = arg_of(ops[i]);
        CU_ASSERT_TRUE(qdb_scn_tok_cmp(o.tok, &op, NULL));
        CU_ASSERT_EQUAL(op, (qdb_scn_cmp)i);
        CU_ASSERT_STRING_EQUAL(qdb_scn_cmp_str(op), ops[i]);
        qdb_scenario_free(o.sc);
    }
    conv_fails(conv_cmp, "=", "bad comparison '=': expected < <= == != >= or >");
    conv_fails(conv_cmp, "=<", "bad comparison '=<': expected < <= == != >= or >");
    conv_fails(conv_cmp, "\"<\"", "bad comparison '<': must not be quoted");
    CU_ASSERT_TRUE(qdb_scn_cmp_eval(QDB_SCN_LT, 1, 2));
    CU_ASSERT_FALSE(qdb_scn_cmp_eval(QDB_SCN_LT, 2, 2));
    CU_ASSERT_TRUE(qdb_scn_cmp_eval(QDB_SCN_LE, 2, 2));
    CU_ASSERT_TRUE(qdb_scn_cmp_eval(QDB_SCN_EQ, 0.5, 0.5));
    CU_ASSERT_TRUE(qdb_scn_cmp_eval(QDB_SCN_NE, 0.5, 0.25));
    CU_ASSERT_FALSE(qdb_scn_cmp_eval(QDB_SCN_GE, 1, 2));
    CU_ASSERT_TRUE(qdb_scn_cmp_eval(QDB_SCN_GT, 3, 2));

    static const char *const storage[] = {"keep", "lose", NULL};
    one_tok o = arg_of("storage=lose");
    int which = -1;
    CU_ASSERT_TRUE(qdb_scn_tok_choice(o.tok, storage, &which, NULL));
    CU_ASSERT_EQUAL(which, 1);
    qdb_scenario_free(o.sc);
    o = arg_of("\"keep\"");
    CU_ASSERT_TRUE(qdb_scn_tok_choice(o.tok, storage, &which, NULL));
    CU_ASSERT_EQUAL(which, 0);
    qdb_scenario_free(o.sc);
    static const char *const three[] = {"memory", "bdb", "disk", NULL};
    o = arg_of("storage=lost");
    qdb_scn_err err = {0};
    CU_ASSERT_FALSE(qdb_scn_tok_choice(o.tok, storage, &which, &err));
    expect_error(&err, QDB_SCN_ERROR_VALUE,
                 "t.scn:1:16: storage: bad value 'lost': expected keep or lose");
    CU_ASSERT_FALSE(qdb_scn_tok_choice(o.tok, three, &which, &err));
    expect_error(&err, QDB_SCN_ERROR_VALUE,
                 "t.scn:1:16: storage: bad value 'lost': expected memory, bdb or disk");
    qdb_scenario_free(o.sc);
}

/* ---- errors ------------------------------------------------------------ */

static void test_syntax_errors(void)
{
    syntax_error("name = \"abc", "t.scn:1:8: unterminated string");
    syntax_error("name = \"abc\\", "t.scn:1:8: unterminated string");
    syntax_error("ok = 1\n\nname = \"a\\q\"",
                 "t.scn:3:10: bad escape '\\q' (\\\" \\\\ \\n \\t \\xHH)");
    syntax_error("name = \"\\x4g\"", "t.scn:1:9: bad escape: \\x needs two hex digits");
    syntax_error("name = \"\\x4\"", "t.scn:1:9: bad escape: \\x needs two hex digits");
    syntax_error("name = \"\\x00\"", "t.scn:1:9: bad escape: \\x00 is not allowed");
    syntax_error("name = \"a\tb\x01\"",
                 "t.scn:1:12: control character \\x01 in a string (write it as an escape)");
    syntax_error("name = \"ab\"cd", "t.scn:1:12: expected a blank after the closing quote");
    syntax_error("name = ab\"cd\"",
                 "t.scn:1:10: unexpected '\"' inside a word (quote the whole word)");
    syntax_error("nodes = 1\x0b", "t.scn:1:10: unexpected control character \\x0B");
    syntax_error("nodes", "t.scn:1:6: missing '=' after 'nodes'");
    syntax_error("nodes   # no value", "t.scn:1:6: missing '=' after 'nodes'");
    syntax_error("nodes =", "t.scn:1:8: missing value after '='");
    syntax_error("nodes = # x", "t.scn:1:8: missing value after '='");
    syntax_error("nodes=", "t.scn:1:7: missing value after 'nodes='");
    syntax_error("at 1s join x via=", "t.scn:1:18: missing value after 'via='");
    syntax_error("nodes : 5", "t.scn:1:7: expected '=' after 'nodes', got ':'");
    syntax_error("nodes =5", "t.scn:1:7: expected '=' after 'nodes', got '=5'");
    syntax_error("nodes = 5 6", "t.scn:1:11: unexpected '6' after the value");
    syntax_error("nodes=5 6", "t.scn:1:9: unexpected '6' after the value");
    syntax_error("nodes = a=b", "t.scn:1:9: bad value 'a=b' (quote a value that contains '=')");
    syntax_error("Nodes = 5",
                 "t.scn:1:1: expected 'KEY = VALUE' or 'at TIME VERB ...', got 'Nodes'");
    syntax_error("\n  \"k\" = 5",
                 "t.scn:2:3: expected 'KEY = VALUE' or 'at TIME VERB ...', got '\"k\"'");
    syntax_error("1x = 5",
                 "t.scn:1:1: expected 'KEY = VALUE' or 'at TIME VERB ...', got '1x'");
    syntax_error("@@@", "t.scn:1:1: expected 'KEY = VALUE' or 'at TIME VERB ...', got '@@@'");
    syntax_error("nodes = 1\nseed = 2\nnodes = 3",
                 "t.scn:3:1: duplicate parameter 'nodes' (first set at line 1)");
    syntax_error("at", "t.scn:1:3: missing time after 'at'");
    syntax_error("  at   # when?", "t.scn:1:5: missing time after 'at'");
    syntax_error("at 5s", "t.scn:1:6: missing verb after the time");
    syntax_error("at end", "t.scn:1:7: missing verb after the time");
    syntax_error("at 5x heal", "t.scn:1:4: bad duration '5x': unknown unit 'x' (us, ms, s, m, h)");
    syntax_error("at -1s heal", "t.scn:1:4: bad duration '-1s': must not be negative");
    syntax_error("at 10 heal", "t.scn:1:4: bad duration '10': missing unit (us, ms, s, m, h)");
    syntax_error("at t=1s heal", "t.scn:1:4: bad time 't=1s' (a duration such as 1.5s, or end)");
    syntax_error("at END heal",
                 "t.scn:1:4: bad duration 'END': expected a number and a unit (us, ms, s, m, h)");
    syntax_error("at 1s Heal", "t.scn:1:7: bad verb 'Heal' (expected a word such as join)");
    syntax_error("at 1s \"heal\"", "t.scn:1:7: bad verb '\"heal\"' (expected a word such as join)");
    syntax_error("at 1s a.b", "t.scn:1:7: bad verb 'a.b' (expected a word such as join)");
    syntax_error("at 1s v=1 heal", "t.scn:1:7: bad verb 'v=1' (expected a word such as join)");
    syntax_error("at 1s join 1 via=0 rate=1/s via=2",
                 "t.scn:1:29: duplicate argument 'via' (first at column 14)");
    syntax_error("ok = 1\nname = \"\xff\"", "t.scn:2:9: invalid UTF-8");
    syntax_error("ok = 1\nname = \"\xc3\"", "t.scn:2:9: invalid UTF-8");
}

static void test_error_helper(void)
{
    qdb_scn_err err = {0};
    qdb_scn_pos pos = {.file = "x.scn", .line = 7, .col = 12};
    CU_ASSERT_FALSE(qdb_scn_error(&err, &pos, "unknown verb '%s'", "jion"));
    expect_error(&err, QDB_SCN_ERROR_INVALID, "x.scn:7:12: unknown verb 'jion'");
    pos.line = 0;
    CU_ASSERT_FALSE(qdb_scn_error(&err, &pos, "nodes is required"));
    expect_error(&err, QDB_SCN_ERROR_INVALID, "x.scn: nodes is required");
    CU_ASSERT_FALSE(qdb_scn_error(&err, NULL, "plain %d", 3));
    expect_error(&err, QDB_SCN_ERROR_INVALID, "plain 3");
    CU_ASSERT_FALSE(qdb_scn_error(NULL, &pos, "ignored"));

    /* a message longer than QDB_ERRMSG_SIZE is kept whole; one longer than
     * the parser's buffer is cut to fit, NUL-terminated */
    char word[400];
    memset(word, 'v', 300);
    word[300] = '\0';
    pos.line = 7;
    CU_ASSERT_FALSE(qdb_scn_error(&err, &pos, "unknown verb '%s'", word));
    CU_ASSERT_EQUAL(strlen(err.msg), strlen("x.scn:7:12: unknown verb ''") + 300);
    g_autofree char *whole = g_strdup_printf("x.scn:7:12: unknown verb '%s'", word);
    expect_error(&err, QDB_SCN_ERROR_INVALID, whole);
    memset(word, 'v', sizeof word - 1);
    word[sizeof word - 1] = '\0';
    qdb_scn_error(&err, &pos, "%s %s", word, word);
    CU_ASSERT_EQUAL(strlen(err.msg), QDB_SCN_ERRMSG_SIZE - 1);
    CU_ASSERT_TRUE(g_str_has_prefix(err.msg, "x.scn:7:12: vvv"));
    err = (qdb_scn_err){0};
    pos.line = 0;

    /* a token's position is directly usable */
    qdb_scenario *sc = parse_ok("\n\nat 3s join 5..9 via=77\n");
    const qdb_scn_event *ev = qdb_scenario_event(sc, 0);
    qdb_scn_error(&err, &qdb_scn_event_kv(ev, "via")->pos, "no node %s", "77");
    expect_error(&err, QDB_SCN_ERROR_INVALID, "t.scn:3:21: no node 77");
    qdb_scn_error(&err, &ev->pos, "unknown verb");
    expect_error(&err, QDB_SCN_ERROR_INVALID, "t.scn:3:7: unknown verb");
    qdb_scenario_free(sc);
}

static void test_event_check(void)
{
    static const char *const join_keys[] = {"via", "rate", NULL};
    qdb_scenario *sc = parse_ok("at 1s join 1..9 via=0 rate=2/s\n"
                                "at 1s join 1..9 vai=0\n"
                                "at 1s start 0 3\n"
                                "at 1s start   # nothing\n"
                                "at 1s heal x=1\n");
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(qdb_scn_event_check(qdb_scenario_event(sc, 0), 1, 1, join_keys, &err));
    CU_ASSERT_EQUAL(err.code, QDB_SCN_OK);
    CU_ASSERT_TRUE(qdb_scn_event_check(qdb_scenario_event(sc, 0), 0, -1, join_keys, &err));
    CU_ASSERT_FALSE(qdb_scn_event_check(qdb_scenario_event(sc, 0), 1, 1, NULL, &err));
    expect_error(&err, QDB_SCN_ERROR_INVALID,
                 "t.scn:1:17: join: unknown argument 'via' (no key=value arguments)");
    CU_ASSERT_FALSE(qdb_scn_event_check(qdb_scenario_event(sc, 1), 1, 1, join_keys, &err));
    expect_error(&err, QDB_SCN_ERROR_INVALID,
                 "t.scn:2:17: join: unknown argument 'vai' (expected via or rate)");
    CU_ASSERT_FALSE(qdb_scn_event_check(qdb_scenario_event(sc, 2), 1, 1, NULL, &err));
    expect_error(&err, QDB_SCN_ERROR_INVALID, "t.scn:3:15: start: unexpected argument '3'");
    CU_ASSERT_FALSE(qdb_scn_event_check(qdb_scenario_event(sc, 3), 1, 1, NULL, &err));
    expect_error(&err, QDB_SCN_ERROR_INVALID,
                 "t.scn:4:12: start: missing argument (expected at least 1)");
    CU_ASSERT_FALSE(qdb_scn_event_check(qdb_scenario_event(sc, 4), 0, 0, NULL, &err));
    expect_error(&err, QDB_SCN_ERROR_INVALID,
                 "t.scn:5:12: heal: unknown argument 'x' (no key=value arguments)");
    qdb_scenario_free(sc);
}

/* ---- --set, order, unused parameters, files ---------------------------- */

static void test_set_override(void)
{
    qdb_scenario *sc = parse_ok("nodes = 10\nseed = 1\nat 0 start 0\n");
    qdb_scn_err err = {0};
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "seed=99", &err));
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "loss = 0.1", &err));
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "name=\"a b\"", &err));
    CU_ASSERT_EQUAL(err.code, QDB_SCN_OK);
    CU_ASSERT_EQUAL_FATAL(qdb_scenario_n_params(sc), 4);
    /* replaced in place; new ones appended */
    const char *keys[] = {"nodes", "seed", "loss", "name"};
    for (unsigned i = 0; i < 4; i++)
        CU_ASSERT_STRING_EQUAL(qdb_scenario_param_at(sc, i)->key, keys[i]);
    const qdb_scn_token *seed = qdb_scenario_param(sc, "seed");
    CU_ASSERT_STRING_EQUAL(seed->text, "99");
    CU_ASSERT_STRING_EQUAL(seed->pos.file, "--set");
    CU_ASSERT_EQUAL(seed->pos.line, 1);
    CU_ASSERT_EQUAL(seed->pos.col, 6);
    CU_ASSERT_EQUAL(seed->key_pos.col, 1);
    const qdb_scn_token *loss = qdb_scenario_param(sc, "loss");
    CU_ASSERT_EQUAL(loss->pos.col, 8);
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param(sc, "name")->text, "a b");

    /* the value's errors name --set */
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "nodes=ten", &err));
    uint64_t n;
    CU_ASSERT_FALSE(qdb_scn_tok_uint(qdb_scenario_param(sc, "nodes"), &n, &err));
    expect_error(&err, QDB_SCN_ERROR_VALUE,
                 "--set:1:7: nodes: bad unsigned integer 'ten': not a decimal integer");
    /* a later --set wins */
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "nodes=12", &err));
    CU_ASSERT_TRUE(qdb_scn_tok_uint(qdb_scenario_param(sc, "nodes"), &n, &err));
    CU_ASSERT_EQUAL(n, 12);

    CU_ASSERT_FALSE(qdb_scenario_set(sc, "seed", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:5: missing '=' after 'seed'");
    CU_ASSERT_FALSE(qdb_scenario_set(sc, "seed=", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:6: missing value after 'seed='");
    CU_ASSERT_FALSE(qdb_scenario_set(sc, "", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:1: expected KEY=VALUE");
    CU_ASSERT_FALSE(qdb_scenario_set(sc, "at 1s heal", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:4: expected '=' after 'at', got '1s'");
    CU_ASSERT_FALSE(qdb_scenario_set(sc, "name=\"x", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:6: unterminated string");
    CU_ASSERT_FALSE(qdb_scenario_set(sc, "a=1\nb=2", &err));
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, "--set:1:4: unexpected control character \\x0A");
    /* failures leave the scenario as it was */
    CU_ASSERT_EQUAL(qdb_scenario_n_params(sc), 4);
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param(sc, "seed")->text, "99");
    CU_ASSERT_EQUAL(qdb_scenario_n_events(sc), 1);
    qdb_scenario_free(sc);
}

static void test_sort_events(void)
{
    qdb_scenario *sc = parse_ok("at end expect ring_ok\n"   /* 0 */
                                "at 2s b\n"                  /* 1 */
                                "at 1s a\n"                  /* 2 */
                                "at 2s c\n"                  /* 3 */
                                "at end expect stable\n"     /* 4 */
                                "at 0 z\n"                   /* 5 */
                                "at 2000ms d\n"              /* 6 */
                                "at 1h e\n");                /* 7 */
    /* file order is kept */
    const char *file_order[] = {"expect", "b", "a", "c", "expect", "z", "d", "e"};
    for (unsigned i = 0; i < 8; i++) {
        CU_ASSERT_STRING_EQUAL(qdb_scenario_event(sc, i)->verb, file_order[i]);
        CU_ASSERT_EQUAL(qdb_scenario_event(sc, i)->index, i);
    }
    GPtrArray *sorted = qdb_scenario_events_sorted(sc);
    unsigned want[] = {5, 2, 1, 3, 6, 7, 0, 4};
    CU_ASSERT_EQUAL_FATAL(sorted->len, 8);
    for (unsigned i = 0; i < 8; i++) {
        const qdb_scn_event *ev = sorted->pdata[i];
        CU_ASSERT_EQUAL(ev->index, want[i]);
        CU_ASSERT_PTR_EQUAL(ev, qdb_scenario_event(sc, want[i]));
        if (i > 0)
            CU_ASSERT_TRUE(qdb_scn_event_cmp(sorted->pdata[i - 1], ev) < 0);
    }
    CU_ASSERT_EQUAL(qdb_scn_event_cmp(sorted->pdata[0], sorted->pdata[0]), 0);
    g_ptr_array_unref(sorted);
    /* the scenario's own order did not change */
    CU_ASSERT_STRING_EQUAL(qdb_scenario_event(sc, 0)->verb, "expect");
    qdb_scenario_free(sc);

    /* many ties: file order, whatever the sort does internally */
    GString *text = g_string_new(NULL);
    for (unsigned i = 0; i < 300; i++)
        g_string_append_printf(text, "at %us v\n", (i * 7) % 3);
    sc = parse_ok(text->str);
    g_string_free(text, TRUE);
    sorted = qdb_scenario_events_sorted(sc);
    for (unsigned i = 1; i < sorted->len; i++) {
        const qdb_scn_event *a = sorted->pdata[i - 1], *b = sorted->pdata[i];
        CU_ASSERT_TRUE(a->at < b->at || (a->at == b->at && a->index < b->index));
    }
    g_ptr_array_unref(sorted);
    qdb_scenario_free(sc);
}

static void test_unused_params(void)
{
    qdb_scenario *sc = parse_ok("nodes = 5\nnodez = 6\nseed = 1\n  jitter = 1ms\n");
    GPtrArray *unused = qdb_scenario_unused_params(sc);
    CU_ASSERT_EQUAL(unused->len, 4);
    g_ptr_array_unref(unused);

    qdb_scenario_param(sc, "nodes");
    qdb_scenario_param(sc, "seed");
    qdb_scenario_param(sc, "absent");
    unused = qdb_scenario_unused_params(sc);
    CU_ASSERT_EQUAL_FATAL(unused->len, 2);
    const qdb_scn_token *a = unused->pdata[0], *b = unused->pdata[1];
    CU_ASSERT_STRING_EQUAL(a->key, "nodez");
    CU_ASSERT_EQUAL(a->key_pos.line, 2);
    CU_ASSERT_EQUAL(a->key_pos.col, 1);
    CU_ASSERT_STRING_EQUAL(b->key, "jitter");
    CU_ASSERT_EQUAL(b->key_pos.line, 4);
    CU_ASSERT_EQUAL(b->key_pos.col, 3);
    qdb_scn_err err = {0};
    qdb_scn_error(&err, &a->key_pos, "unknown parameter '%s'", a->key);
    expect_error(&err, QDB_SCN_ERROR_INVALID, "t.scn:2:1: unknown parameter 'nodez'");
    g_ptr_array_unref(unused);

    /* param_at does not mark; a --set replacement is unused again */
    CU_ASSERT_STRING_EQUAL(qdb_scenario_param_at(sc, 1)->key, "nodez");
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "seed=3", NULL));
    CU_ASSERT_TRUE(qdb_scenario_set(sc, "typo=3", NULL));
    unused = qdb_scenario_unused_params(sc);
    CU_ASSERT_EQUAL_FATAL(unused->len, 4);
    CU_ASSERT_STRING_EQUAL(((qdb_scn_token *)unused->pdata[0])->key, "nodez");
    CU_ASSERT_STRING_EQUAL(((qdb_scn_token *)unused->pdata[1])->key, "seed");
    CU_ASSERT_STRING_EQUAL(((qdb_scn_token *)unused->pdata[2])->key, "jitter");
    CU_ASSERT_STRING_EQUAL(((qdb_scn_token *)unused->pdata[3])->key, "typo");
    CU_ASSERT_STRING_EQUAL(((qdb_scn_token *)unused->pdata[3])->key_pos.file, "--set");
    g_ptr_array_unref(unused);
    qdb_scenario_free(sc);
}

static void test_files(void)
{
    qdb_scn_err err = {0};
    char *path = NULL;
    int fd = g_file_open_tmp("qdb-scn-XXXXXX.scn", &path, NULL);
    CU_ASSERT_FATAL(fd >= 0);
    g_close(fd, NULL);

    CU_ASSERT_TRUE(g_file_set_contents(path, example, -1, NULL));
    qdb_scenario *sc = qdb_scenario_parse_file(path, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    CU_ASSERT_STRING_EQUAL(qdb_scenario_source(sc), path);
    CU_ASSERT_EQUAL(qdb_scenario_n_events(sc), 5);
    CU_ASSERT_STRING_EQUAL(qdb_scenario_event(sc, 0)->pos.file, path);
    qdb_scenario_free(sc);

    /* a NUL byte inside the file */
    CU_ASSERT_TRUE(g_file_set_contents(path, "nodes = 1\nseed\0 = 2\n", 20, NULL));
    CU_ASSERT_PTR_NULL(qdb_scenario_parse_file(path, &err));
    g_autofree char *nul = g_strdup_printf("%s:2:5: NUL byte in the file", path);
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, nul);

    /* errors carry the path */
    CU_ASSERT_TRUE(g_file_set_contents(path, "at 1s join via=", -1, NULL));
    CU_ASSERT_PTR_NULL(qdb_scenario_parse_file(path, &err));
    g_autofree char *msg = g_strdup_printf("%s:1:16: missing value after 'via='", path);
    expect_error(&err, QDB_SCN_ERROR_SYNTAX, msg);

    g_unlink(path);
    CU_ASSERT_PTR_NULL(qdb_scenario_parse_file(path, &err));
    CU_ASSERT_EQUAL(err.code, QDB_SCN_ERROR_IO);
    g_autofree char *prefix = g_strdup_printf("%s: ", path);
    CU_ASSERT_TRUE(g_str_has_prefix(err.msg, prefix));
    g_free(path);
    qdb_scenario_free(NULL);
}

static CU_TestInfo statement_tests[] = {
    {.pName = "params and events", .pTestFunc = test_params_and_events},
    {.pName = "empty lines, CRLF", .pTestFunc = test_empty_and_crlf},
    {.pName = "comments and strings", .pTestFunc = test_comments_and_strings},
    {.pName = "at end", .pTestFunc = test_at_end},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo token_tests[] = {
    {.pName = "int", .pTestFunc = test_int},
    {.pName = "uint", .pTestFunc = test_uint},
    {.pName = "double", .pTestFunc = test_double},
    {.pName = "duration", .pTestFunc = test_duration},
    {.pName = "rate", .pTestFunc = test_rate},
    {.pName = "range", .pTestFunc = test_range},
    {.pName = "fraction, bool, cmp, choice", .pTestFunc = test_fraction_bool_cmp_choice},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo error_tests[] = {
    {.pName = "syntax errors", .pTestFunc = test_syntax_errors},
    {.pName = "qdb_scn_error", .pTestFunc = test_error_helper},
    {.pName = "event check", .pTestFunc = test_event_check},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo scenario_tests[] = {
    {.pName = "--set override", .pTestFunc = test_set_override},
    {.pName = "sort events", .pTestFunc = test_sort_events},
    {.pName = "unused params", .pTestFunc = test_unused_params},
    {.pName = "files", .pTestFunc = test_files},
    CU_TEST_INFO_NULL,
};

int main(void)
{
    CU_SuiteInfo suites[] = {
        {.pName = "scenario statements", .pTests = statement_tests},
        {.pName = "scenario tokens", .pTests = token_tests},
        {.pName = "scenario errors", .pTests = error_tests},
        {.pName = "scenario files and order", .pTests = scenario_tests},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

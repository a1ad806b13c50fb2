/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "scenario": the scenario parser (sim/scenario.c) and the
 * typed accessors every verb reads its arguments with.
 *
 * Input: the text of a scenario file (up to its first NUL byte, as a file
 * read by qdb_scenario_parse_file() is a C string to the parser).
 * Property: nothing read outside it; a failure always says why (a
 * "FILE:LINE:COL: " message); every token of a parsed scenario, converted
 * with every accessor, succeeds or fails cleanly; the sorted events are the
 * same events. */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "sim/scenario.h"

static void convert(const qdb_scn_token *tok)
{
    static const char *const choices[] = {"keep", "lose", NULL};
    qdb_scn_err err = {0};
    int64_t i;
    uint64_t u, lo, hi;
    double d;
    qdb_time_us t;
    bool b;
    qdb_scn_cmp c;
    int ch;
    fuzz_assert(tok->text != NULL);
    qdb_scn_tok_int(tok, &i, &err);
    qdb_scn_tok_uint(tok, &u, &err);
    qdb_scn_tok_double(tok, &d, &err);
    qdb_scn_tok_duration(tok, &t, &err);
    qdb_scn_tok_rate(tok, &d, &err);
    if (qdb_scn_tok_range(tok, &lo, &hi, &err))
        fuzz_assert(lo <= hi);
    if (qdb_scn_tok_fraction(tok, &d, &err))
        fuzz_assert(d >= 0 && d <= 1);
    qdb_scn_tok_bool(tok, &b, &err);
    if (qdb_scn_tok_cmp(tok, &c, &err))
        fuzz_assert(qdb_scn_cmp_str(c) != NULL);
    qdb_scn_tok_choice(tok, choices, &ch, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_strndup((const char *)data, size);
    qdb_scn_err err = {0};
    qdb_scenario *sc = qdb_scenario_parse_string("fuzz.scn", text, &err);
    g_free(text);
    if (sc == NULL) {
        fuzz_assert(err.code != QDB_SCN_OK && strncmp(err.msg, "fuzz.scn:", 9) == 0);
        return 0;
    }
    for (unsigned i = 0; i < qdb_scenario_n_params(sc); i++) {
        const qdb_scn_token *p = qdb_scenario_param_at(sc, i);
        fuzz_assert(p->key != NULL);
        convert(p);
        fuzz_assert(qdb_scenario_param(sc, p->key) != NULL);
    }
    GPtrArray *unused = qdb_scenario_unused_params(sc);
    fuzz_assert(unused->len == 0);
    g_ptr_array_unref(unused);
    unsigned n = qdb_scenario_n_events(sc);
    for (unsigned i = 0; i < n; i++) {
        const qdb_scn_event *ev = qdb_scenario_event(sc, i);
        fuzz_assert(ev->verb != NULL && ev->index == i);
        for (guint a = 0; a < ev->args->len; a++)
            convert(g_ptr_array_index(ev->args, a));
        qdb_scn_event_check(ev, 0, 2, NULL, &err);
        unsigned positional = qdb_scn_event_n_args(ev);
        for (unsigned a = 0; a < positional; a++)
            fuzz_assert(qdb_scn_event_arg(ev, a) != NULL);
        fuzz_assert(qdb_scn_event_arg(ev, positional) == NULL);
    }
    GPtrArray *sorted = qdb_scenario_events_sorted(sc);
    fuzz_assert(sorted->len == n);
    for (guint i = 1; i < sorted->len; i++)
        fuzz_assert(qdb_scn_event_cmp(g_ptr_array_index(sorted, i - 1),
                                      g_ptr_array_index(sorted, i)) < 0);
    g_ptr_array_unref(sorted);
    qdb_scenario_free(sc);
    return 0;
}

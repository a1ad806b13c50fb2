/* SPDX-License-Identifier: BSD-2-Clause */
/* Scenario files: a parser that is generic over verbs.
 *
 * A scenario is UTF-8 text, one statement per line (doc/scenarios.md is the
 * user's reference):
 *
 *     # a comment ('#' outside a string starts one; blank lines are ignored)
 *     nodes = 1000                    parameter: KEY = VALUE  (or KEY=VALUE)
 *     name = "seed tutorial"
 *     at 1s join 1..999 via=0 rate=20/s    event: at TIME VERB ARG...
 *     at end expect failed_requests <= 0
 *
 * This module only splits and decodes: it produces parameters and events made
 * of tokens, with the file:line:column of each.  The simulator gives verbs
 * and parameters their meaning, converting tokens with the typed accessors
 * below, and reports its own semantic errors with qdb_scn_error(), so every
 * message has the same "FILE:LINE:COL: what is wrong" shape.
 *
 * Ownership: everything reachable from a qdb_scenario (tokens, events, their
 * strings, the file names inside positions) is owned by it and lives until
 * qdb_scenario_free().  Getters return borrowed pointers.  Nothing here keeps
 * process-wide state; nothing observable depends on hash-table order.
 */
#ifndef QDB_SCENARIO_H
#define QDB_SCENARIO_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "types.h" /* qdb_time_us */

/* ---- errors -------------------------------------------------------------
 * The project's convention (node/error.h): a code plus a message buffer.  A
 * scenario message carries "FILE:LINE:COL: " and often quotes a token, so it
 * does not fit QDB_ERRMSG_SIZE; the parser has its own type of the same
 * shape with a larger buffer, qdb_scn_err.  Its message starts with
 * "FILE:LINE:COL: " (columns 1-based, counting bytes; a tab is one column).
 * FILE is the name given to the parser, or "--set" for qdb_scenario_set().
 * I/O errors on the file are "FILE: ...".  A message longer than the buffer
 * is truncated (no message of the simulator comes near it).
 *
 * Every function of this module that can fail takes a `qdb_scn_err *err`
 * (may be NULL) and returns false (or NULL) after filling it; a later
 * failure overwrites an earlier one, so callers stop at the first. */
typedef enum qdb_scn_error_code {
    QDB_SCN_OK = 0,        /* nothing failed (a zeroed qdb_scn_err) */
    QDB_SCN_ERROR_IO,      /* the file could not be read */
    QDB_SCN_ERROR_SYNTAX,  /* the parser rejected the text */
    QDB_SCN_ERROR_VALUE,   /* a typed accessor rejected a token */
    QDB_SCN_ERROR_INVALID, /* reported by the caller through qdb_scn_error() */
} qdb_scn_error_code;

#define QDB_SCN_ERRMSG_SIZE 512

typedef struct qdb_scn_err {
    qdb_scn_error_code code;
    char msg[QDB_SCN_ERRMSG_SIZE]; /* "" while code is QDB_SCN_OK */
} qdb_scn_err;

/* Where something is.  file points into the scenario (or a static string)
 * and lives as long as the scenario.  line and col are 1-based; line 0 means
 * "the file as a whole" (message prefix "FILE: "). */
typedef struct qdb_scn_pos {
    const char *file;
    int line;
    int col;
} qdb_scn_pos;

/* Fill *err (if err is non-NULL) with a QDB_SCN_ERROR_INVALID error whose
 * message is "FILE:LINE:COL: " + the formatted text.  pos may be NULL (no
 * prefix).  Always returns false, so callers can `return qdb_scn_error(...)`. */
bool qdb_scn_error(qdb_scn_err *err, const qdb_scn_pos *pos, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* ---- tokens -------------------------------------------------------------
 * One word of a statement.  A word is either a double-quoted string (escapes
 * \" \\ \n \t \xHH, \x00 refused) or a run of characters other than blanks,
 * '"' and '#'.  In event arguments, a word of the form IDENT=VALUE where IDENT
 * matches [a-z_][a-z0-9_.]* is a key=value token (VALUE may be quoted:
 * expect="a b"); anything else is positional ("<=", "0..9", "->").
 *
 * text:    the decoded value (quotes removed, escapes applied).  Never NULL,
 *          may be "" for a quoted "".  With \xHH it may not be valid UTF-8.
 * key:     for key=value tokens and parameters, the key; NULL otherwise.
 * pos:     where the value starts (the opening quote if quoted).  Accessor
 *          errors point here.
 * key_pos: where the key starts; equal to pos for positional tokens.
 * quoted:  the value was written in double quotes.  Only the string-like
 *          accessors (qdb_scn_tok_choice, and reading text) accept quoted
 *          values; numeric accessors refuse them. */
typedef struct qdb_scn_token {
    char *text;
    char *key;
    qdb_scn_pos pos;
    qdb_scn_pos key_pos;
    bool quoted;
} qdb_scn_token;

/* Typed accessors.  Each returns true and writes *out on success; on failure
 * it returns false, leaves *out untouched and fills a QDB_SCN_ERROR_VALUE error
 * at tok->pos naming the token, e.g.
 *     "x.scn:4:22: bad duration '5x': unknown unit 'x' (us, ms, s, m, h)". */

/* Decimal integer with optional sign; out-of-range values are refused. */
bool qdb_scn_tok_int(const qdb_scn_token *tok, int64_t *out, qdb_scn_err *err);
/* Decimal integer >= 0 (optional '+'), up to UINT64_MAX; "-1" is refused. */
bool qdb_scn_tok_uint(const qdb_scn_token *tok, uint64_t *out, qdb_scn_err *err);
/* Decimal number: [+-]digits[.digits][e[+-]digits] (also ".5", "5.");
 * no hex, inf or nan; refused when it overflows a double. */
bool qdb_scn_tok_double(const qdb_scn_token *tok, double *out, qdb_scn_err *err);
/* Duration: NUMBER UNIT with UNIT one of us ms s m h, or a bare "0".  NUMBER
 * is decimal, may have a fraction ("1.5s", "0.25ms"), no sign, no exponent.
 * Converted exactly (no floating point) to microseconds; refused when not a
 * whole number of microseconds ("1.5us") or above UINT64_MAX. */
bool qdb_scn_tok_duration(const qdb_scn_token *tok, qdb_time_us *out,
                          qdb_scn_err *err);
/* Rate: NUMBER/UNIT with UNIT one of s m h ("20/s", "5/m", "0.5/s"),
 * NUMBER >= 0 as for qdb_scn_tok_double.  *out is in events per second. */
bool qdb_scn_tok_rate(const qdb_scn_token *tok, double *out, qdb_scn_err *err);
/* Range "A..B" of unsigned integers, inclusive, A <= B; or one unsigned
 * integer "A", meaning A..A. */
bool qdb_scn_tok_range(const qdb_scn_token *tok, uint64_t *lo, uint64_t *hi,
                       qdb_scn_err *err);
/* Probability or fraction: a number in [0, 1]. */
bool qdb_scn_tok_fraction(const qdb_scn_token *tok, double *out, qdb_scn_err *err);
/* true/yes/on/1 or false/no/off/0 (lower case). */
bool qdb_scn_tok_bool(const qdb_scn_token *tok, bool *out, qdb_scn_err *err);

typedef enum qdb_scn_cmp {
    QDB_SCN_LT, /* <  */
    QDB_SCN_LE, /* <= */
    QDB_SCN_EQ, /* == */
    QDB_SCN_NE, /* != */
    QDB_SCN_GE, /* >= */
    QDB_SCN_GT, /* >  */
} qdb_scn_cmp;
/* One of < <= == != >= > (unquoted). */
bool qdb_scn_tok_cmp(const qdb_scn_token *tok, qdb_scn_cmp *out, qdb_scn_err *err);
/* "a OP b" */
bool qdb_scn_cmp_eval(qdb_scn_cmp op, double a, double b);
/* "<=" for QDB_SCN_LE, etc. */
const char *qdb_scn_cmp_str(qdb_scn_cmp op);

/* tok->text must be one of choices (a NULL-terminated array, compared
 * exactly); *out is its index.  Quoted or not.  The error lists the choices:
 * "bad value 'lost' (expected keep or lose)". */
bool qdb_scn_tok_choice(const qdb_scn_token *tok, const char *const *choices,
                        int *out, qdb_scn_err *err);

/* ---- events -------------------------------------------------------------
 * "at TIME VERB ARG...".  TIME is a duration (see qdb_scn_tok_duration) or
 * the word `end`: the end of the run, after every timed event. */
#define QDB_SCN_END UINT64_MAX /* ev->at of `at end` events */

typedef struct qdb_scn_event {
    qdb_time_us at;    /* QDB_SCN_END when at_end */
    bool at_end;
    char *verb;        /* matches [a-z_][a-z0-9_]* */
    qdb_scn_pos pos;   /* of the verb */
    qdb_scn_pos at_pos; /* of TIME */
    qdb_scn_pos end_pos; /* just past the last token: where a missing
                          * argument would go, for "missing ..." errors */
    unsigned index;    /* 0-based position in file order */
    GPtrArray *args;   /* of qdb_scn_token *, in line order, both kinds;
                        * key=value keys are distinct within one event */
} qdb_scn_event;

/* The i-th positional (non key=value) argument, or NULL. */
qdb_scn_token *qdb_scn_event_arg(const qdb_scn_event *ev, unsigned i);
/* Number of positional arguments. */
unsigned qdb_scn_event_n_args(const qdb_scn_event *ev);
/* The key=value argument with this key, or NULL. */
qdb_scn_token *qdb_scn_event_kv(const qdb_scn_event *ev, const char *key);
/* Check the shape of an event: between min_args and max_args positional
 * arguments (max_args < 0: no limit), and only keys from the NULL-terminated
 * list keys (NULL: no key=value argument allowed).  Errors, prefixed with the
 * verb: "join: unknown argument 'vai' (expected via, rate)" at the key,
 * "start: unexpected argument '3'" at the first extra one, "start: missing
 * argument (expected at least 1)" at ev->end_pos.  Fails with
 * QDB_SCN_ERROR_INVALID. */
bool qdb_scn_event_check(const qdb_scn_event *ev, int min_args, int max_args,
                         const char *const *keys, qdb_scn_err *err);
/* Order by time, `end` last, ties by index (file order).  For qsort-like
 * comparators: returns <0, 0 (only for the same event), >0. */
int qdb_scn_event_cmp(const qdb_scn_event *a, const qdb_scn_event *b);

/* ---- scenarios ---------------------------------------------------------- */
typedef struct qdb_scenario qdb_scenario;

/* Parse a file; errors use path as FILE.  NULL and *err set on failure (the
 * first error of the file only). */
qdb_scenario *qdb_scenario_parse_file(const char *path, qdb_scn_err *err);
/* Parse text (NUL-terminated); name is used as FILE in positions. */
qdb_scenario *qdb_scenario_parse_string(const char *name, const char *text,
                                        qdb_scn_err *err);
void qdb_scenario_free(qdb_scenario *sc); /* NULL is fine */
/* The FILE name the scenario was parsed under. */
const char *qdb_scenario_source(const qdb_scenario *sc);

/* Parameters, kept in file order (a --set of a new key appends).  Each is a
 * token whose key is the KEY and text the VALUE (possibly quoted). */
unsigned qdb_scenario_n_params(const qdb_scenario *sc);
/* i-th parameter in file order; does not mark it used. */
const qdb_scn_token *qdb_scenario_param_at(const qdb_scenario *sc, unsigned i);
/* Lookup by key, NULL if absent.  Marks the parameter used. */
const qdb_scn_token *qdb_scenario_param(qdb_scenario *sc, const char *key);
/* Parameters never looked up with qdb_scenario_param(), in file order, so
 * the simulator can say "x.scn:3:1: unknown parameter 'nodez'" (use key_pos).
 * The array is the caller's (g_ptr_array_unref); the tokens are borrowed. */
GPtrArray *qdb_scenario_unused_params(const qdb_scenario *sc);
/* Set or replace a parameter from "key=value" (or "key = value"; the value
 * may be quoted), as `qdbsim --set key=value` does.  Positions in it are
 * "--set:1:COL", COL counted in setting.  A replaced parameter keeps its
 * place in the order and becomes unused again.  False and *err on bad text. */
bool qdb_scenario_set(qdb_scenario *sc, const char *setting, qdb_scn_err *err);

/* Events in file order. */
unsigned qdb_scenario_n_events(const qdb_scenario *sc);
const qdb_scn_event *qdb_scenario_event(const qdb_scenario *sc, unsigned i);
/* The events sorted by qdb_scn_event_cmp (stable: by time, `end` last, ties
 * in file order).  The array is the caller's; the events are borrowed. */
GPtrArray *qdb_scenario_events_sorted(const qdb_scenario *sc);

#endif

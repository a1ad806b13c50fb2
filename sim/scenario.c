/* SPDX-License-Identifier: BSD-2-Clause */
/* Scenario parser: text -> parameters and events made of tokens.
 *
 * Sections:
 *   errors      the "FILE:LINE:COL: " prefix into a qdb_scn_err
 *   accessors   typed conversions of one token (int, duration, rate, ...)
 *   lexer       one line -> tokens (strings, escapes, key=value, comments)
 *   statements  tokens -> a parameter or an event
 *   scenario    parse a file or a string, parameters, --set, events
 *
 * Parsing stops at the first error: a scenario is short, and the first
 * message with its position is the one worth fixing.
 */
#include "config.h"

#include "scenario.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static const char SET_FILE[] = "--set";

/* ======================================================================
 * errors
 * ====================================================================== */

static void set_error_va(qdb_scn_err *err, int code, const qdb_scn_pos *pos,
                         const char *fmt, va_list ap) G_GNUC_PRINTF(4, 0);
static void set_error_va(qdb_scn_err *err, int code, const qdb_scn_pos *pos,
                         const char *fmt, va_list ap)
{
    if (err == NULL)
        return;
    char what[QDB_SCN_ERRMSG_SIZE];
    g_vsnprintf(what, sizeof what, fmt, ap);
    err->code = code;
    if (pos == NULL)
        g_strlcpy(err->msg, what, sizeof err->msg);
    else if (pos->line <= 0)
        g_snprintf(err->msg, sizeof err->msg, "%s: %s", pos->file, what);
    else
        g_snprintf(err->msg, sizeof err->msg, "%s:%d:%d: %s", pos->file,
                   pos->line, pos->col, what);
}

static bool set_error(qdb_scn_err *err, int code, const qdb_scn_pos *pos,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static bool set_error(qdb_scn_err *err, int code, const qdb_scn_pos *pos,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_va(err, code, pos, fmt, ap);
    va_end(ap);
    return false;
}

bool qdb_scn_error(qdb_scn_err *err, const qdb_scn_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_va(err, QDB_SCN_ERROR_INVALID, pos, fmt, ap);
    va_end(ap);
    return false;
}

/* Text as shown inside a message: control bytes (and every byte >= 0x80
 * when the text is not valid UTF-8) as \xHH, so a message stays one line. */
static char *show(const char *text)
{
    bool utf8 = g_utf8_validate(text, -1, NULL);
    GString *s = g_string_new(NULL);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
            g_string_append_printf(s, "\\x%02X", *p);
        else
            g_string_append_c(s, (char)*p);
    }
    return g_string_free(s, FALSE);
}

/* "KEY: bad KIND 'TEXT': REASON" at the token's value. */
static bool bad_token(const qdb_scn_token *tok, qdb_scn_err *err, const char *kind,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static bool bad_token(const qdb_scn_token *tok, qdb_scn_err *err, const char *kind,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_autofree char *text = show(tok->text);
    return set_error(err, QDB_SCN_ERROR_VALUE, &tok->pos,
                     "%s%sbad %s '%s': %s", tok->key ? tok->key : "",
                     tok->key ? ": " : "", kind, text, reason);
}

/* ======================================================================
 * accessors
 * ====================================================================== */

static bool not_quoted(const qdb_scn_token *tok, qdb_scn_err *err, const char *kind)
{
    if (!tok->quoted)
        return true;
    return bad_token(tok, err, kind, "must not be quoted");
}

static bool is_digit_run(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isdigit(p[i]))
            return false;
    return true;
}

/* Unsigned decimal digits only (no sign), into *out.  Returns 0 on success,
 * -1 when not digits, 1 when out of range. */
static int parse_u64(const char *p, size_t n, uint64_t *out)
{
    if (!is_digit_run(p, n))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

bool qdb_scn_tok_int(const qdb_scn_token *tok, int64_t *out, qdb_scn_err *err)
{
    const char *t = tok->text;
    if (!not_quoted(tok, err, "integer"))
        return false;
    bool neg = t[0] == '-';
    const char *digits = (t[0] == '-' || t[0] == '+') ? t + 1 : t;
    uint64_t mag;
    int r = parse_u64(digits, strlen(digits), &mag);
    if (r < 0)
        return bad_token(tok, err, "integer", "not a decimal integer");
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (r > 0 || mag > limit)
        return bad_token(tok, err, "integer",
                         "out of range (%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
                         (gint64)INT64_MIN, (gint64)INT64_MAX);
    /* -(INT64_MAX + 1) computed without overflowing a signed type */
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

bool qdb_scn_tok_uint(const qdb_scn_token *tok, uint64_t *out, qdb_scn_err *err)
{
    const char *t = tok->text;
    if (!not_quoted(tok, err, "unsigned integer"))
        return false;
    if (t[0] == '-' && is_digit_run(t + 1, strlen(t + 1)))
        return bad_token(tok, err, "unsigned integer", "must not be negative");
    const char *digits = t[0] == '+' ? t + 1 : t;
    uint64_t v;
    int r = parse_u64(digits, strlen(digits), &v);
    if (r < 0)
        return bad_token(tok, err, "unsigned integer", "not a decimal integer");
    if (r > 0)
        return bad_token(tok, err, "unsigned integer",
                         "out of range (0..%" G_GUINT64_FORMAT ")",
                         (guint64)UINT64_MAX);
    *out = v;
    return true;
}

/* [+-]?(D+(.D*)?|.D+)([eE][+-]?D+)? over the whole of [p, p+n). */
static bool is_decimal_number(const char *p, size_t n)
{
    size_t i = 0, digits = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    while (i < n && g_ascii_isdigit(p[i]))
        i++, digits++;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && g_ascii_isdigit(p[i]))
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t exp = 0;
        while (i < n && g_ascii_isdigit(p[i]))
            i++, exp++;
        if (exp == 0)
            return false;
    }
    return i == n;
}

/* The syntax is checked first, so g_ascii_strtod never sees hex, inf or
 * nan; it is locale-independent, so "0.5" means the same everywhere. */
static int parse_double(const char *p, size_t n, double *out)
{
    if (!is_decimal_number(p, n))
        return -1;
    g_autofree char *copy = g_strndup(p, n);
    errno = 0;
    double v = g_ascii_strtod(copy, NULL);
    if (!isfinite(v))
        return 1;
    *out = v;
    return 0;
}

bool qdb_scn_tok_double(const qdb_scn_token *tok, double *out, qdb_scn_err *err)
{
    if (!not_quoted(tok, err, "number"))
        return false;
    int r = parse_double(tok->text, strlen(tok->text), out);
    if (r < 0)
        return bad_token(tok, err, "number", "not a decimal number");
    if (r > 0)
        return bad_token(tok, err, "number", "out of range");
    return true;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static const struct {
    const char *name;
    uint64_t us;
} duration_units[] = {
    {"us", 1},
    {"ms", 1000},
    {"s", 1000000},
    {"m", 60 * UINT64_C(1000000)},
    {"h", 3600 * UINT64_C(1000000)},
};

/* Exact decimal arithmetic: "1.5s" is 1500000 us, never 1499999. */
bool qdb_scn_tok_duration(const qdb_scn_token *tok, qdb_time_us *out,
                          qdb_scn_err *err)
{
    const char *t = tok->text;
    if (!not_quoted(tok, err, "duration"))
        return false;
    if (t[0] == '-')
        return bad_token(tok, err, "duration", "must not be negative");
    size_t ni = 0;
    while (g_ascii_isdigit(t[ni]))
        ni++;
    if (ni == 0)
        return bad_token(tok, err, "duration",
                         "expected a number and a unit (us, ms, s, m, h)");
    const char *frac = t + ni;
    size_t nf = 0;
    if (*frac == '.') {
        frac++;
        while (g_ascii_isdigit(frac[nf]))
            nf++;
        if (nf == 0)
            return bad_token(tok, err, "duration", "expected digits after '.'");
    }
    const char *unit = frac + nf;
    if (unit == t + ni)
        frac = unit; /* no '.' */

    /* strip trailing zeros of the fraction: they do not change the value */
    while (nf > 0 && frac[nf - 1] == '0')
        nf--;
    uint64_t ip;
    if (parse_u64(t, ni, &ip) > 0)
        return bad_token(tok, err, "duration", "out of range");

    uint64_t unit_us = 0;
    if (*unit == '\0') {
        if (ip != 0 || nf != 0)
            return bad_token(tok, err, "duration",
                             "missing unit (us, ms, s, m, h)");
        *out = 0;
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(duration_units); i++)
        if (strcmp(unit, duration_units[i].name) == 0)
            unit_us = duration_units[i].us;
    if (unit_us == 0) {
        g_autofree char *u = show(unit);
        return bad_token(tok, err, "duration",
                         "unknown unit '%s' (us, ms, s, m, h)", u);
    }

    /* fraction F / 10^nf of a unit: whole microseconds only.  With trailing
     * zeros gone, no unit (at most 2^10 * 5^8 * 9 us) can absorb more than
     * 10 decimal places, so nf > 18 is never a whole number either. */
    uint64_t frac_us = 0;
    if (nf > 0) {
        uint64_t f, d = 1;
        if (nf > 18 || parse_u64(frac, nf, &f) != 0)
            return bad_token(tok, err, "duration",
                             "not a whole number of microseconds");
        for (size_t i = 0; i < nf; i++)
            d *= 10;
        uint64_t g = gcd_u64(unit_us, d);
        uint64_t dd = d / g; /* f * unit_us / d == (f / dd) * (unit_us / g) */
        if (f % dd != 0)
            return bad_token(tok, err, "duration",
                             "not a whole number of microseconds");
        frac_us = (f / dd) * (unit_us / g); /* < unit_us: no overflow */
    }
    if (ip > (UINT64_MAX - frac_us) / unit_us)
        return bad_token(tok, err, "duration", "out of range");
    *out = ip * unit_us + frac_us;
    return true;
}

bool qdb_scn_tok_rate(const qdb_scn_token *tok, double *out, qdb_scn_err *err)
{
    const char *t = tok->text;
    if (!not_quoted(tok, err, "rate"))
        return false;
    const char *slash = strrchr(t, '/');
    if (slash == NULL)
        return bad_token(tok, err, "rate",
                         "expected NUMBER/UNIT, as in 20/s (units s, m, h)");
    double per;
    if (strcmp(slash + 1, "s") == 0)
        per = 1.0;
    else if (strcmp(slash + 1, "m") == 0)
        per = 60.0;
    else if (strcmp(slash + 1, "h") == 0)
        per = 3600.0;
    else {
        g_autofree char *u = show(slash + 1);
        return bad_token(tok, err, "rate", "unknown unit '%s' (s, m, h)", u);
    }
    double v;
    int r = parse_double(t, (size_t)(slash - t), &v);
    if (r < 0)
        return bad_token(tok, err, "rate", "not a decimal number before '/'");
    if (r > 0)
        return bad_token(tok, err, "rate", "out of range");
    if (v < 0)
        return bad_token(tok, err, "rate", "must not be negative");
    *out = v / per;
    return true;
}

bool qdb_scn_tok_range(const qdb_scn_token *tok, uint64_t *lo, uint64_t *hi,
                       qdb_scn_err *err)
{
    const char *t = tok->text;
    if (!not_quoted(tok, err, "range"))
        return false;
    const char *dots = strstr(t, "..");
    size_t na = dots ? (size_t)(dots - t) : strlen(t);
    uint64_t a, b;
    int ra = parse_u64(t, na, &a);
    int rb = dots ? parse_u64(dots + 2, strlen(dots + 2), &b) : ra;
    if (ra < 0 || rb < 0)
        return bad_token(tok, err, "range",
                         "expected A..B or A (unsigned integers)");
    if (ra > 0 || rb > 0)
        return bad_token(tok, err, "range", "out of range");
    if (!dots)
        b = a;
    if (a > b)
        return bad_token(tok, err, "range", "start is above end");
    *lo = a;
    *hi = b;
    return true;
}

bool qdb_scn_tok_fraction(const qdb_scn_token *tok, double *out, qdb_scn_err *err)
{
    double v;
    if (!not_quoted(tok, err, "fraction"))
        return false;
    if (parse_double(tok->text, strlen(tok->text), &v) != 0 || v < 0 || v > 1)
        return bad_token(tok, err, "fraction", "expected a number in [0, 1]");
    *out = v;
    return true;
}

bool qdb_scn_tok_bool(const qdb_scn_token *tok, bool *out, qdb_scn_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (!not_quoted(tok, err, "boolean"))
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (strcmp(tok->text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(tok->text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return bad_token(tok, err, "boolean",
                     "expected true, false, yes, no, on, off, 1 or 0");
}

static const char *const cmp_names[] = {
    [QDB_SCN_LT] = "<",  [QDB_SCN_LE] = "<=", [QDB_SCN_EQ] = "==",
    [QDB_SCN_NE] = "!=", [QDB_SCN_GE] = ">=", [QDB_SCN_GT] = ">",
};

bool qdb_scn_tok_cmp(const qdb_scn_token *tok, qdb_scn_cmp *out, qdb_scn_err *err)
{
    if (!not_quoted(tok, err, "comparison"))
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(cmp_names); i++) {
        if (strcmp(tok->text, cmp_names[i]) == 0) {
            *out = (qdb_scn_cmp)i;
            return true;
        }
    }
    return bad_token(tok, err, "comparison", "expected < <= == != >= or >");
}

bool qdb_scn_cmp_eval(qdb_scn_cmp op, double a, double b)
{
    switch (op) {
    case QDB_SCN_LT: return a < b;
    case QDB_SCN_LE: return a <= b;
    case QDB_SCN_EQ: return a == b;
    case QDB_SCN_NE: return a != b;
    case QDB_SCN_GE: return a >= b;
    case QDB_SCN_GT: return a > b;
    }
    g_return_val_if_reached(false);
}

const char *qdb_scn_cmp_str(qdb_scn_cmp op)
{
    if ((unsigned)op >= G_N_ELEMENTS(cmp_names))
        return "?";
    return cmp_names[op];
}

/* "a, b or c" */
static char *join_choices(const char *const *choices)
{
    GString *s = g_string_new(NULL);
    for (size_t i = 0; choices != NULL && choices[i] != NULL; i++) {
        if (i > 0)
            g_string_append(s, choices[i + 1] ? ", " : " or ");
        g_string_append(s, choices[i]);
    }
    return g_string_free(s, FALSE);
}

bool qdb_scn_tok_choice(const qdb_scn_token *tok, const char *const *choices,
                        int *out, qdb_scn_err *err)
{
    for (int i = 0; choices[i] != NULL; i++) {
        if (strcmp(tok->text, choices[i]) == 0) {
            *out = i;
            return true;
        }
    }
    g_autofree char *list = join_choices(choices);
    return bad_token(tok, err, "value", "expected %s", list);
}

/* ======================================================================
 * lexer
 * ====================================================================== */

static void token_free(gpointer p)
{
    qdb_scn_token *tok = p;
    if (tok == NULL)
        return;
    g_free(tok->text);
    g_free(tok->key);
    g_free(tok);
}

/* One line being lexed: [start, end) without its '\n'. */
typedef struct lexer {
    const char *file;
    int line;
    const char *start, *end;
    const char *p;
} lexer;

static qdb_scn_pos lex_pos(const lexer *lx, const char *at)
{
    return (qdb_scn_pos){.file = lx->file, .line = lx->line,
                         .col = (int)(at - lx->start) + 1};
}

static bool lex_fail(const lexer *lx, qdb_scn_err *err, const char *at,
                     const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static bool lex_fail(const lexer *lx, qdb_scn_err *err, const char *at,
                     const char *fmt, ...)
{
    qdb_scn_pos pos = lex_pos(lx, at);
    va_list ap;
    va_start(ap, fmt);
    set_error_va(err, QDB_SCN_ERROR_SYNTAX, &pos, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_control(char c)
{
    unsigned char u = (unsigned char)c;
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

/* Where a word ends: a blank, a comment, or the end of the line. */
static bool is_word_end(const lexer *lx, const char *p)
{
    return p == lx->end || is_blank(*p) || *p == '#';
}

static int hex_digit(char c)
{
    return g_ascii_isxdigit(c) ? g_ascii_xdigit_value(c) : -1;
}

/* A double-quoted string at lx->p; on success lx->p is past the closing
 * quote and *out holds the decoded text. */
static bool lex_string(lexer *lx, char **out, qdb_scn_err *err)
{
    const char *open = lx->p;
    GString *s = g_string_new(NULL);
    const char *p = open + 1;
    for (;;) {
        if (p == lx->end) {
            g_string_free(s, TRUE);
            return lex_fail(lx, err, open, "unterminated string");
        }
        char c = *p;
        if (c == '"')
            break;
        if (is_control(c)) {
            g_string_free(s, TRUE);
            return lex_fail(lx, err, p,
                            "control character \\x%02X in a string (write it as an escape)",
                            (unsigned char)c);
        }
        if (c != '\\') {
            g_string_append_c(s, c);
            p++;
            continue;
        }
        if (p + 1 == lx->end) {
            g_string_free(s, TRUE);
            return lex_fail(lx, err, open, "unterminated string");
        }
        switch (p[1]) {
        case '"': g_string_append_c(s, '"'); p += 2; continue;
        case '\\': g_string_append_c(s, '\\'); p += 2; continue;
        case 'n': g_string_append_c(s, '\n'); p += 2; continue;
        case 't': g_string_append_c(s, '\t'); p += 2; continue;
        case 'x': {
            int hi = p + 2 < lx->end ? hex_digit(p[2]) : -1;
            int lo = hi >= 0 && p + 3 < lx->end ? hex_digit(p[3]) : -1;
            if (lo < 0) {
                g_string_free(s, TRUE);
                return lex_fail(lx, err, p, "bad escape: \\x needs two hex digits");
            }
            if (hi == 0 && lo == 0) {
                g_string_free(s, TRUE);
                return lex_fail(lx, err, p, "bad escape: \\x00 is not allowed");
            }
            g_string_append_c(s, (char)(hi * 16 + lo));
            p += 4;
            continue;
        }
        default:
            g_string_free(s, TRUE);
            if (is_control(p[1]) || (unsigned char)p[1] >= 0x80)
                return lex_fail(lx, err, p, "bad escape (\\\" \\\\ \\n \\t \\xHH)");
            return lex_fail(lx, err, p, "bad escape '\\%c' (\\\" \\\\ \\n \\t \\xHH)",
                            p[1]);
        }
    }
    p++; /* closing quote */
    if (!is_word_end(lx, p)) {
        g_string_free(s, TRUE);
        return lex_fail(lx, err, p, "expected a blank after the closing quote");
    }
    lx->p = p;
    *out = g_string_free(s, FALSE);
    return true;
}

/* An unquoted word at lx->p, up to a blank, '#' or the end of the line. */
static bool lex_bare(lexer *lx, char **out, qdb_scn_err *err)
{
    const char *p = lx->p;
    while (!is_word_end(lx, p)) {
        if (*p == '"')
            return lex_fail(lx, err, p,
                            "unexpected '\"' inside a word (quote the whole word)");
        if (is_control(*p))
            return lex_fail(lx, err, p, "unexpected control character \\x%02X",
                            (unsigned char)*p);
        p++;
    }
    *out = g_strndup(lx->p, (size_t)(p - lx->p));
    lx->p = p;
    return true;
}

static bool is_key_char(char c, bool first)
{
    return c == '_' || (c >= 'a' && c <= 'z') ||
           (!first && ((c >= '0' && c <= '9') || c == '.'));
}

/* Length of an identifier [a-z_][a-z0-9_.]* at p (bounded by end). */
static size_t key_span(const char *p, const char *end)
{
    size_t n = 0;
    while (p + n < end && is_key_char(p[n], n == 0))
        n++;
    return n;
}

static bool is_key(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && key_span(s, s + n) == n;
}

/* Split a line into tokens (appended to toks); *end_col gets the column just
 * past the last token. */
static bool lex_line(lexer *lx, GPtrArray *toks, int *end_col, qdb_scn_err *err)
{
    *end_col = 1;
    lx->p = lx->start;
    for (;;) {
        while (lx->p < lx->end && is_blank(*lx->p))
            lx->p++;
        if (lx->p == lx->end || *lx->p == '#')
            return true;
        if (is_control(*lx->p))
            return lex_fail(lx, err, lx->p, "unexpected control character \\x%02X",
                            (unsigned char)*lx->p);

        qdb_scn_token *tok = g_new0(qdb_scn_token, 1);
        g_ptr_array_add(toks, tok);
        tok->pos = tok->key_pos = lex_pos(lx, lx->p);

        /* IDENT=VALUE, unless VALUE is empty-looking or starts with '='
         * ("a==b" stays one positional word) */
        size_t k = key_span(lx->p, lx->end);
        const char *eq = lx->p + k;
        if (k > 0 && eq < lx->end && *eq == '=' &&
            !(eq + 1 < lx->end && eq[1] == '=')) {
            if (is_word_end(lx, eq + 1)) {
                g_autofree char *key = g_strndup(lx->p, k);
                return lex_fail(lx, err, eq + 1, "missing value after '%s='", key);
            }
            tok->key = g_strndup(lx->p, k);
            lx->p = eq + 1;
            tok->pos = lex_pos(lx, lx->p);
        }
        if (*lx->p == '"') {
            tok->quoted = true;
            if (!lex_string(lx, &tok->text, err))
                return false;
        } else if (!lex_bare(lx, &tok->text, err)) {
            return false;
        }
        *end_col = lex_pos(lx, lx->p).col;
    }
}

/* ======================================================================
 * statements
 * ====================================================================== */

typedef struct scn_param {
    qdb_scn_token *tok;
    bool used;
} scn_param;

struct qdb_scenario {
    char *source;
    GPtrArray *params;      /* of scn_param *, file order */
    GHashTable *param_by_key; /* tok->key -> scn_param * (lookup only) */
    GPtrArray *events;      /* of qdb_scn_event *, file order */
};

static void param_free(gpointer p)
{
    scn_param *param = p;
    token_free(param->tok);
    g_free(param);
}

static void event_free(gpointer p)
{
    qdb_scn_event *ev = p;
    g_free(ev->verb);
    g_ptr_array_unref(ev->args);
    g_free(ev);
}

/* A token as written, for messages: key=value shows both. */
static char *show_token(const qdb_scn_token *tok)
{
    g_autofree char *v = show(tok->text);
    if (tok->key)
        return g_strdup_printf("%s=%s%s%s", tok->key, tok->quoted ? "\"" : "",
                               v, tok->quoted ? "\"" : "");
    return g_strdup_printf("%s%s%s", tok->quoted ? "\"" : "", v,
                           tok->quoted ? "\"" : "");
}

static bool tok_is_word(const qdb_scn_token *tok, const char *word)
{
    return !tok->quoted && tok->key == NULL && strcmp(tok->text, word) == 0;
}

static bool syntax_at(qdb_scn_err *err, const qdb_scn_pos *pos, const char *fmt,
                      ...) G_GNUC_PRINTF(3, 4);
static bool syntax_at(qdb_scn_err *err, const qdb_scn_pos *pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error_va(err, QDB_SCN_ERROR_SYNTAX, pos, fmt, ap);
    va_end(ap);
    return false;
}

/* "KEY = VALUE" (3 tokens) or "KEY=VALUE" (1 token) -> *out, taken from
 * toks (which keeps the rest). */
static bool parse_param(GPtrArray *toks, qdb_scn_pos end_pos,
                        qdb_scn_token **out, qdb_scn_err *err)
{
    qdb_scn_token *t0 = toks->pdata[0];
    if (t0->key != NULL) {
        if (toks->len > 1) {
            qdb_scn_token *t1 = toks->pdata[1];
            g_autofree char *s = show_token(t1);
            return syntax_at(err, &t1->key_pos, "unexpected '%s' after the value", s);
        }
        *out = g_ptr_array_steal_index(toks, 0);
        return true;
    }
    if (t0->quoted || !is_key(t0->text)) {
        g_autofree char *s = show_token(t0);
        return syntax_at(err, &t0->pos,
                         "expected 'KEY = VALUE' or 'at TIME VERB ...', got '%s'", s);
    }
    if (toks->len < 2)
        return syntax_at(err, &end_pos, "missing '=' after '%s'", t0->text);
    qdb_scn_token *t1 = toks->pdata[1];
    if (!tok_is_word(t1, "=")) {
        g_autofree char *s = show_token(t1);
        return syntax_at(err, &t1->key_pos, "expected '=' after '%s', got '%s'",
                         t0->text, s);
    }
    if (toks->len < 3)
        return syntax_at(err, &end_pos, "missing value after '='");
    qdb_scn_token *t2 = toks->pdata[2];
    if (t2->key != NULL) {
        g_autofree char *s = show_token(t2);
        return syntax_at(err, &t2->key_pos,
                         "bad value '%s' (quote a value that contains '=')", s);
    }
    if (toks->len > 3) {
        qdb_scn_token *t3 = toks->pdata[3];
        g_autofree char *s = show_token(t3);
        return syntax_at(err, &t3->key_pos, "unexpected '%s' after the value", s);
    }
    qdb_scn_token *v = g_ptr_array_steal_index(toks, 2);
    v->key = g_strdup(t0->text);
    v->key_pos = t0->pos;
    *out = v;
    return true;
}

static bool is_verb(const char *s)
{
    if (!is_key(s))
        return false;
    return strchr(s, '.') == NULL;
}

/* "at TIME VERB ARG..." -> *out; toks[0] is "at". */
static bool parse_event(GPtrArray *toks, qdb_scn_pos end_pos,
                        qdb_scn_event **out, qdb_scn_err *err)
{
    if (toks->len < 2)
        return syntax_at(err, &end_pos, "missing time after 'at'");
    qdb_scn_token *tt = toks->pdata[1];
    qdb_time_us at = QDB_SCN_END;
    bool at_end = tok_is_word(tt, "end");
    if (!at_end) {
        if (tt->key != NULL) {
            g_autofree char *s = show_token(tt);
            return syntax_at(err, &tt->key_pos,
                             "bad time '%s' (a duration such as 1.5s, or end)", s);
        }
        if (!qdb_scn_tok_duration(tt, &at, err)) {
            if (err)
                err->code = QDB_SCN_ERROR_SYNTAX;
            return false;
        }
    }
    if (toks->len < 3)
        return syntax_at(err, &end_pos, "missing verb after the time");
    qdb_scn_token *vt = toks->pdata[2];
    if (vt->quoted || vt->key != NULL || !is_verb(vt->text)) {
        g_autofree char *s = show_token(vt);
        return syntax_at(err, &vt->key_pos, "bad verb '%s' (expected a word such as join)", s);
    }
    for (guint i = 3; i < toks->len; i++) {
        qdb_scn_token *a = toks->pdata[i];
        if (a->key == NULL)
            continue;
        for (guint j = 3; j < i; j++) {
            qdb_scn_token *b = toks->pdata[j];
            if (b->key != NULL && strcmp(a->key, b->key) == 0)
                return syntax_at(err, &a->key_pos,
                                 "duplicate argument '%s' (first at column %d)",
                                 a->key, b->key_pos.col);
        }
    }

    qdb_scn_event *ev = g_new0(qdb_scn_event, 1);
    ev->at = at;
    ev->at_end = at_end;
    ev->verb = g_strdup(vt->text);
    ev->pos = vt->pos;
    ev->at_pos = tt->pos;
    ev->end_pos = end_pos;
    ev->args = g_ptr_array_new_with_free_func(token_free);
    for (guint i = 3; i < toks->len; i++)
        g_ptr_array_add(ev->args, toks->pdata[i]);
    /* the args now belong to ev: drop them from toks without freeing */
    for (guint i = toks->len; i > 3; i--)
        g_ptr_array_steal_index(toks, i - 1);
    *out = ev;
    return true;
}

/* ======================================================================
 * scenario
 * ====================================================================== */

static qdb_scenario *scenario_new(const char *source)
{
    qdb_scenario *sc = g_new0(qdb_scenario, 1);
    sc->source = g_strdup(source);
    sc->params = g_ptr_array_new_with_free_func(param_free);
    sc->param_by_key = g_hash_table_new(g_str_hash, g_str_equal);
    sc->events = g_ptr_array_new_with_free_func(event_free);
    return sc;
}

void qdb_scenario_free(qdb_scenario *sc)
{
    if (sc == NULL)
        return;
    g_hash_table_unref(sc->param_by_key);
    g_ptr_array_unref(sc->params);
    g_ptr_array_unref(sc->events);
    g_free(sc->source);
    g_free(sc);
}

const char *qdb_scenario_source(const qdb_scenario *sc)
{
    return sc->source;
}

/* Insert or (if replace) overwrite the parameter tok->key; takes tok. */
static bool param_put(qdb_scenario *sc, qdb_scn_token *tok, bool replace,
                      qdb_scn_err *err)
{
    scn_param *old = g_hash_table_lookup(sc->param_by_key, tok->key);
    if (old != NULL && !replace) {
        bool r = syntax_at(err, &tok->key_pos,
                           "duplicate parameter '%s' (first set at line %d)",
                           tok->key, old->tok->key_pos.line);
        token_free(tok);
        return r;
    }
    if (old != NULL) {
        /* the hash key points into the old token: re-key before freeing */
        g_hash_table_remove(sc->param_by_key, old->tok->key);
        token_free(old->tok);
        old->tok = tok;
        old->used = false;
        g_hash_table_insert(sc->param_by_key, tok->key, old);
        return true;
    }
    scn_param *p = g_new0(scn_param, 1);
    p->tok = tok;
    g_ptr_array_add(sc->params, p);
    g_hash_table_insert(sc->param_by_key, tok->key, p);
    return true;
}

/* One line: nothing, a parameter or an event.  force_param: --set. */
static bool parse_line(qdb_scenario *sc, lexer *lx, bool force_param,
                       qdb_scn_err *err)
{
    g_autoptr(GPtrArray) toks = g_ptr_array_new_with_free_func(token_free);
    int end_col;
    if (!lex_line(lx, toks, &end_col, err))
        return false;
    if (toks->len == 0) {
        if (force_param) {
            qdb_scn_pos pos = lex_pos(lx, lx->start);
            return syntax_at(err, &pos, "expected KEY=VALUE");
        }
        return true;
    }
    qdb_scn_pos end_pos = {.file = lx->file, .line = lx->line, .col = end_col};
    if (!force_param && tok_is_word(toks->pdata[0], "at")) {
        qdb_scn_event *ev = NULL;
        if (!parse_event(toks, end_pos, &ev, err))
            return false;
        ev->index = sc->events->len;
        g_ptr_array_add(sc->events, ev);
        return true;
    }
    qdb_scn_token *tok = NULL;
    if (!parse_param(toks, end_pos, &tok, err))
        return false;
    return param_put(sc, tok, force_param, err);
}

/* line and column of byte offset off in text */
static qdb_scn_pos pos_of(const char *file, const char *text, size_t off)
{
    qdb_scn_pos pos = {.file = file, .line = 1, .col = 1};
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            pos.line++;
            pos.col = 1;
        } else {
            pos.col++;
        }
    }
    return pos;
}

static qdb_scenario *parse_text(const char *name, const char *text, size_t len,
                                qdb_scn_err *err)
{
    qdb_scenario *sc = scenario_new(name);
    const char *nul = memchr(text, '\0', len);
    const char *bad;
    if (nul != NULL) {
        qdb_scn_pos pos = pos_of(sc->source, text, (size_t)(nul - text));
        syntax_at(err, &pos, "NUL byte in the file");
        goto fail_created;
    }
    if (!g_utf8_validate_len(text, len, &bad)) {
        qdb_scn_pos pos = pos_of(sc->source, text, (size_t)(bad - text));
        syntax_at(err, &pos, "invalid UTF-8");
        goto fail_created;
    }
    lexer lx = {.file = sc->source, .line = 1, .start = text};
    const char *end = text + len;
    while (lx.start <= end) {
        const char *nl = memchr(lx.start, '\n', (size_t)(end - lx.start));
        lx.end = nl ? nl : end;
        if (!parse_line(sc, &lx, false, err))
            goto fail_created;
        if (nl == NULL)
            break;
        lx.start = nl + 1;
        lx.line++;
    }
    return sc;

fail_created:
    qdb_scenario_free(sc);
    return NULL;
}

qdb_scenario *qdb_scenario_parse_string(const char *name, const char *text,
                                        qdb_scn_err *err)
{
    return parse_text(name, text, strlen(text), err);
}

qdb_scenario *qdb_scenario_parse_file(const char *path, qdb_scn_err *err)
{
    g_autofree char *text = NULL;
    gsize len;
    GError *io = NULL; /* GLib's boundary: turned into our message here */
    if (!g_file_get_contents(path, &text, &len, &io)) {
        qdb_scn_pos pos = {.file = path, .line = 0, .col = 0};
        set_error(err, QDB_SCN_ERROR_IO, &pos, "%s", io->message);
        g_error_free(io);
        return NULL;
    }
    return parse_text(path, text, len, err);
}

bool qdb_scenario_set(qdb_scenario *sc, const char *setting, qdb_scn_err *err)
{
    size_t len = strlen(setting);
    const char *bad;
    lexer lx = {.file = SET_FILE, .line = 1, .start = setting,
                .end = setting + len};
    if (!g_utf8_validate_len(setting, len, &bad))
        return lex_fail(&lx, err, bad, "invalid UTF-8");
    return parse_line(sc, &lx, true, err);
}

unsigned qdb_scenario_n_params(const qdb_scenario *sc)
{
    return sc->params->len;
}

const qdb_scn_token *qdb_scenario_param_at(const qdb_scenario *sc, unsigned i)
{
    g_return_val_if_fail(i < sc->params->len, NULL);
    return ((scn_param *)sc->params->pdata[i])->tok;
}

const qdb_scn_token *qdb_scenario_param(qdb_scenario *sc, const char *key)
{
    scn_param *p = g_hash_table_lookup(sc->param_by_key, key);
    if (p == NULL)
        return NULL;
    p->used = true;
    return p->tok;
}

GPtrArray *qdb_scenario_unused_params(const qdb_scenario *sc)
{
    GPtrArray *out = g_ptr_array_new();
    for (guint i = 0; i < sc->params->len; i++) {
        scn_param *p = sc->params->pdata[i];
        if (!p->used)
            g_ptr_array_add(out, p->tok);
    }
    return out;
}

unsigned qdb_scenario_n_events(const qdb_scenario *sc)
{
    return sc->events->len;
}

const qdb_scn_event *qdb_scenario_event(const qdb_scenario *sc, unsigned i)
{
    g_return_val_if_fail(i < sc->events->len, NULL);
    return sc->events->pdata[i];
}

int qdb_scn_event_cmp(const qdb_scn_event *a, const qdb_scn_event *b)
{
    if (a->at_end != b->at_end)
        return a->at_end ? 1 : -1;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return 0;
}

static gint event_ptr_cmp(gconstpointer a, gconstpointer b)
{
    return qdb_scn_event_cmp(*(const qdb_scn_event *const *)a,
                             *(const qdb_scn_event *const *)b);
}

/* The comparator is a total order (index breaks ties), so the result does
 * not depend on whether the sort itself is stable. */
GPtrArray *qdb_scenario_events_sorted(const qdb_scenario *sc)
{
    GPtrArray *out = g_ptr_array_sized_new(sc->events->len);
    for (guint i = 0; i < sc->events->len; i++)
        g_ptr_array_add(out, sc->events->pdata[i]);
    g_ptr_array_sort(out, event_ptr_cmp);
    return out;
}

/* ---- event arguments ---------------------------------------------------- */

qdb_scn_token *qdb_scn_event_arg(const qdb_scn_event *ev, unsigned i)
{
    for (guint j = 0; j < ev->args->len; j++) {
        qdb_scn_token *t = ev->args->pdata[j];
        if (t->key == NULL && i-- == 0)
            return t;
    }
    return NULL;
}

unsigned qdb_scn_event_n_args(const qdb_scn_event *ev)
{
    unsigned n = 0;
    for (guint j = 0; j < ev->args->len; j++)
        if (((qdb_scn_token *)ev->args->pdata[j])->key == NULL)
            n++;
    return n;
}

qdb_scn_token *qdb_scn_event_kv(const qdb_scn_event *ev, const char *key)
{
    for (guint j = 0; j < ev->args->len; j++) {
        qdb_scn_token *t = ev->args->pdata[j];
        if (t->key != NULL && strcmp(t->key, key) == 0)
            return t;
    }
    return NULL;
}

bool qdb_scn_event_check(const qdb_scn_event *ev, int min_args, int max_args,
                         const char *const *keys, qdb_scn_err *err)
{
    int n = 0;
    for (guint j = 0; j < ev->args->len; j++) {
        qdb_scn_token *t = ev->args->pdata[j];
        if (t->key == NULL) {
            if (max_args >= 0 && n >= max_args) {
                g_autofree char *s = show_token(t);
                return qdb_scn_error(err, &t->key_pos, "%s: unexpected argument '%s'",
                                     ev->verb, s);
            }
            n++;
            continue;
        }
        bool known = false;
        for (size_t k = 0; keys != NULL && keys[k] != NULL; k++)
            known = known || strcmp(keys[k], t->key) == 0;
        if (!known) {
            if (keys == NULL || keys[0] == NULL)
                return qdb_scn_error(err, &t->key_pos,
                                     "%s: unknown argument '%s' (no key=value arguments)",
                                     ev->verb, t->key);
            g_autofree char *list = join_choices(keys);
            return qdb_scn_error(err, &t->key_pos,
                                 "%s: unknown argument '%s' (expected %s)", ev->verb,
                                 t->key, list);
        }
    }
    if (n < min_args)
        return qdb_scn_error(err, &ev->end_pos,
                             "%s: missing argument (expected at least %d)", ev->verb,
                             min_args);
    return true;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's log writer (qdbd_log.h). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "transport-real/qdbd_log.h"

static int level_rank(GLogLevelFlags lv)
{
    if (lv & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return 1;
    if (lv & G_LOG_LEVEL_WARNING)
        return 2;
    if (lv & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
        return 3;
    return 4;
}

static const char *level_name(int rank)
{
    static const char *const names[] = {"ERROR", "ERROR", "WARNING", "INFO", "DEBUG"};
    return names[rank];
}

bool qdbd_log_level_parse(const char *s, int *out)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (g_ascii_strcasecmp(s, names[i]) == 0) {
            *out = i + 1;
            return true;
        }
    return false;
}

/* ---- the rate (qdbd_log.h) ------------------------------------------------- */

typedef struct log_kind {
    int rank;
    char *domain;
    gint64 second;      /* the monotonic second its count is of */
    unsigned count;     /* lines of it in that second */
    uint64_t suppressed; /* not written since the last one that was */
    char *last;         /* the last one suppressed */
} log_kind;

static void log_kind_free(gpointer p)
{
    log_kind *k = p;
    g_free(k->domain);
    g_free(k->last);
    g_free(k);
}

void qdbd_log_clear(qdbd_log *l)
{
    if (l->kinds)
        g_hash_table_destroy(l->kinds);
    l->kinds = NULL;
}

static void log_line(qdbd_log *l, int rank, const char *domain, const char *msg);

/* "suppressed K similar messages" for a kind, when it has some. */
static void log_kind_flush(qdbd_log *l, log_kind *k)
{
    if (k->suppressed == 0)
        return;
    char *line = g_strdup_printf("suppressed %" G_GUINT64_FORMAT " similar message%s (like: %s)",
                                 k->suppressed, k->suppressed == 1 ? "" : "s", k->last);
    k->suppressed = 0;
    log_line(l, k->rank, k->domain, line);
    g_free(line);
}

/* Should this line be written?  Counts it in its kind's second.  Once a
 * second, the kinds whose second is over report what they suppressed. */
static bool log_rate_allows(qdbd_log *l, int rank, const char *domain, const char *msg)
{
    if (l->rate == 0)
        return true;
    gint64 now = g_get_monotonic_time() / G_USEC_PER_SEC;
    bool full = l->kinds && g_hash_table_size(l->kinds) >= QDBD_LOG_KINDS;
    if (l->kinds && (full || l->swept != now)) { /* what the seconds before suppressed */
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, l->kinds);
        while (g_hash_table_iter_next(&it, NULL, &v))
            if (full || ((log_kind *)v)->second != now)
                log_kind_flush(l, v);
    }
    if (full)
        qdbd_log_clear(l);
    if (!l->kinds)
        l->kinds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, log_kind_free);
    l->swept = now;
    GString *key = g_string_new(NULL);
    g_string_append_printf(key, "%d %s ", rank, domain);
    for (const char *p = msg; *p; p++)
        if (!g_ascii_isdigit(*p))
            g_string_append_c(key, *p);
    log_kind *k = g_hash_table_lookup(l->kinds, key->str);
    if (!k) {
        k = g_new0(log_kind, 1);
        k->rank = rank;
        k->domain = g_strdup(domain);
        k->second = now;
        g_hash_table_insert(l->kinds, g_string_free(key, FALSE), k);
    } else {
        g_string_free(key, TRUE);
    }
    if (k->second != now) {
        log_kind_flush(l, k);
        k->second = now;
        k->count = 0;
    }
    if (k->count < l->rate) {
        k->count++;
        return true;
    }
    k->suppressed++;
    g_free(k->last);
    k->last = g_strdup(msg);
    return false;
}

/* Every line goes to each destination chosen at start: the log file
 * (--log-file), syslog (--log-syslog, or --daemonize without a log file,
 * where standard error is /dev/null), and standard error (--log-console, or
 * when there is neither a file nor syslog -- under systemd, the journal). */
GLogWriterOutput qdbd_log_writer(GLogLevelFlags lv, const GLogField *fields, gsize n,
                                 gpointer user_data)
{
    qdbd_log *l = user_data;
    int rank = level_rank(lv);
    if (rank > l->threshold)
        return G_LOG_WRITER_HANDLED;
    const char *domain = "qdbd", *msg = "";
    for (gsize i = 0; i < n; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].value)
            domain = fields[i].value;
        else if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].value)
            msg = fields[i].value;
    }
    if (log_rate_allows(l, rank, domain, msg))
        log_line(l, rank, domain, msg);
    return G_LOG_WRITER_HANDLED;
}

static void log_line(qdbd_log *l, int rank, const char *domain, const char *msg)
{
    if (l->syslog) {
        static const int prio[] = {LOG_ERR, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[rank], "%s: %s", domain, msg); /* syslog stamps the time itself */
    }
    if (!l->file && !l->console && l->syslog)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    g_snprintf(when + k, sizeof(when) - k, ".%03ldZ", ts.tv_nsec / 1000000);
    if (l->file)
        fprintf(l->file, "%s %s %s: %s\n", when, level_name(rank), domain, msg);
    if (l->console || (!l->file && !l->syslog))
        fprintf(stderr, "%s %s %s: %s\n", when, level_name(rank), domain, msg);
}

bool qdbd_log_open(qdbd_log *l, char *err, size_t errlen)
{
    FILE *f = fopen(l->path, "a");
    if (!f) {
        g_snprintf(err, errlen, "cannot open log file %s: %s", l->path, g_strerror(errno));
        return false;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    if (l->file)
        fclose(l->file);
    l->file = f;
    return true;
}

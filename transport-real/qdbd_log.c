/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's log writer (qdbd_log.h). */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <stdbool.h>
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
    if (l->syslog) {
        static const int prio[] = {LOG_ERR, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
        syslog(prio[rank], "%s: %s", domain, msg); /* syslog stamps the time itself */
    }
    if (!l->file && !l->console && l->syslog)
        return G_LOG_WRITER_HANDLED;
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
    return G_LOG_WRITER_HANDLED;
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

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's log: one g_log writer, "<UTC time> LEVEL domain: message" lines, to
 * a file, syslog and/or standard error.
 *
 * Contract
 *   - The caller owns the qdbd_log (qdbd keeps one per process) and its
 *     path; it sets threshold (qdbd_log_level_parse()), path and console,
 *     calls openlog() and sets syslog itself, opens the file with
 *     qdbd_log_open(), then installs
 *     g_log_set_writer_func(qdbd_log_writer, &log, NULL).  It closes file
 *     and syslog at exit, and qdbd_log_clear()s the rest.
 *   - Rate: with rate > 0, at most rate lines of one kind are written in a
 *     second; the rest of that second are counted, and the next line of the
 *     kind (or of any kind, once the second is over) is preceded by
 *     "suppressed K similar messages (like: <the last one>)".  A kind is the
 *     domain, the level and the message with its digits left out, so one
 *     line that names changing addresses and sizes is one kind.  At most
 *     QDBD_LOG_KINDS kinds are followed; past that the table starts again.
 */
#ifndef QDB_TRANSPORT_REAL_QDBD_LOG_H
#define QDB_TRANSPORT_REAL_QDBD_LOG_H

#include <glib.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct qdbd_log {
    FILE *file;
    char *path;     /* absolute, for SIGHUP's reopen */
    bool console;
    bool syslog;    /* openlog() done */
    int threshold;  /* 1 error .. 4 debug, as node_config.log_level */
    unsigned rate;  /* lines a second of one kind; 0: no limit */
    GHashTable *kinds; /* the rate's state, created on first use */
    gint64 swept;      /* the second whose counts were last reported */
} qdbd_log;

#define QDBD_LOG_KINDS 1024

/* Free what the writer keeps (the rate's state). */
void qdbd_log_clear(qdbd_log *l);

/* "error", "warning", "info" or "debug" (any case) into *out, 1 .. 4;
 * false for anything else. */
bool qdbd_log_level_parse(const char *s, int *out);

/* The GLogWriterFunc; user_data is the qdbd_log. */
GLogWriterOutput qdbd_log_writer(GLogLevelFlags lv, const GLogField *fields, gsize n,
                                 gpointer user_data);

/* (Re)open l->path for appending, line-buffered, closing the file before
 * (SIGHUP's reopen); false with a message in err when it cannot. */
bool qdbd_log_open(qdbd_log *l, char *err, size_t errlen);

#endif

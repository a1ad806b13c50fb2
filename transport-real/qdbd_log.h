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
 *     and syslog at exit.
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
} qdbd_log;

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

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's options: one table for the command line, the key file (for what
 * the command line left; /etc/qdb/qdbd.conf by default) and --gen-config.
 *
 * Contract
 *   - qdbd_opts_parse() fills a zeroed qdbd_opts; its strings and lists are
 *     g_malloc'd and owned by the qdbd_opts until qdbd_opts_clear().
 *     config_path points at o->config or a static string, never owned.
 *   - Errors are printed on standard error ("qdbd: ...") by qdbd_fail() and
 *     its callers, which return the sysexits.h code to exit with: 64 bad
 *     usage (EX_USAGE), 66 file unreadable (EX_NOINPUT), 78 bad file, named
 *     "FILE:LINE: ..." (EX_CONFIG).  0 means go on.
 *   - After --version, --gen-config or --gen-key qdbd_opts_parse() returns 0 at once,
 *     without reading the file; origin[] is then unset.
 */
#ifndef QDB_TRANSPORT_REAL_QDBD_OPTIONS_H
#define QDB_TRANSPORT_REAL_QDBD_OPTIONS_H

#include <glib.h>
#include <stdio.h>

/* qdbd reads its configuration file, when there is one, at this path unless
 * --config names another (configure's sysconfdir: /etc with the packages). */
#ifndef QDBD_CONFIG_PATH
#define QDBD_CONFIG_PATH "/etc/qdb/qdbd.conf"
#endif

typedef struct qdbd_opts {
    char *address, **peers, *root, *log_file, *log_level, *id, *pid_file, *replication, *config,
        *tombstone_grace, *dead_node_grace, *repair_rate;
    gboolean log_console, log_syslog, sync, transient, daemonize, version, gen_config,
        check_config;
    /* where each option of qdbd_options[] came from: 0 not set, -1 the
     * command line, N > 0 line N of config_path */
    int origin[32];
    const char *config_path; /* the file read, if any */
    char *http;                 /* --http: the status page's address */
    gboolean allow_remote_stop; /* --allow-remote-stop: an alias of --enable-stop */
    char *hive_key_file;        /* --hive-key-file: authenticate every connection */
    gboolean gen_key;           /* --gen-key: print a fresh hive key and exit */
    gboolean enable_purge_all, enable_stop; /* hive-wide: obey remove_all, stop_node */
    /* resource limits (qdbd(8), LIMITS) */
    char *sessions, *idle_timeout, *max_content_size, *input_memory, *amo_bytes, *log_rate;
    char *handshake_timeout; /* --hive-key-file's connections: TLS handshake within */
    char *max_depot_size, *depot_warning, *disk_reserve; /* the disk's limits (storage/bdb.h) */
} qdbd_opts;

/* The options of the table, in its order (qdbd_opt_fail()'s i). */
enum { QO_ADDRESS, QO_PEER, QO_ROOT, QO_LOG_FILE, QO_LOG_CONSOLE, QO_LOG_SYSLOG, QO_LOG_LEVEL, QO_ID,
       QO_SYNC, QO_TRANSIENT, QO_DAEMONIZE, QO_PID_FILE, QO_HTTP, QO_ALLOW_REMOTE_STOP,
       QO_REPLICATION, QO_TOMBSTONE_GRACE,
       QO_HIVE_KEY_FILE,
       QO_ENABLE_PURGE_ALL, QO_ENABLE_STOP,
       QO_SESSIONS, QO_IDLE_TIMEOUT, QO_MAX_CONTENT_SIZE, QO_INPUT_MEMORY, QO_AMO_BYTES,
       QO_HANDSHAKE_TIMEOUT,
       QO_LOG_RATE, QO_DEAD_NODE_GRACE, QO_REPAIR_RATE,
       QO_MAX_DEPOT_SIZE, QO_DEPOT_WARNING, QO_DISK_RESERVE, QO_COUNT };

/* Print "qdbd: <message>" on standard error; return code. */
G_GNUC_PRINTF(2, 3) int qdbd_fail(int code, const char *fmt, ...);

/* A bad value for option i: from the file, "FILE:LINE: key: ..." and
 * EX_CONFIG; from the command line, "bad --key ..." and EX_USAGE. */
G_GNUC_PRINTF(3, 4) int qdbd_opt_fail(const qdbd_opts *o, int i, const char *fmt, ...);

/* The command line (GOption; argc/argv lose what was parsed), then the key
 * file: --config's, else QDBD_CONFIG_PATH when it exists. */
int qdbd_opts_parse(qdbd_opts *o, int *argc, char ***argv);

/* The key file's part of qdbd_opts_parse(), on text already read (len
 * bytes, NUL-terminated as g_file_get_contents() leaves it); path names it
 * in messages.  0 or EX_CONFIG.  For the fuzz target fuzz/config.c. */
int qdbd_opts_load_text(qdbd_opts *o, const char *path, const char *text, size_t len);

/* Free what qdbd_opts_parse() stored in o. */
void qdbd_opts_clear(qdbd_opts *o);

/* --gen-config: the whole file, every key commented out with its default;
 * qdbd reads it back unchanged (tests/config.sh). */
void qdbd_print_config(FILE *out);

#endif

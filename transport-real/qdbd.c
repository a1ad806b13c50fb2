/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd: one node of a qdb hive, driven by the epoll loop (loop.h) over TCP,
 * storing its entries in Berkeley DB (storage/bdb.h) or in memory
 * (storage/memory.h).
 *
 * Sections
 *   options: one table for the command line, the key file (for what the
 *            command line left; /etc/qdb/qdbd.conf by default) and --gen-config
 *   logging: one g_log writer, "<UTC time> LEVEL domain: message" lines, to a
 *            file, syslog and/or standard error
 *   the service manager: systemd's notify protocol (READY, STOPPING, WATCHDOG)
 *   signals: a signalfd in the loop; TERM/INT leave the ring, a second one quits
 *   start-up: daemonize, store, endpoint, node
 *   the main loop and shutdown
 *
 * Exit codes follow sysexits.h: 64 bad usage, 66 config file unreadable,
 * 69 address unusable, 70 internal error, 71 OS failure, 73 root unusable,
 * 78 bad config file (named with its line); 0 after a clean departure, 1 when the hand-over did not
 * finish (timeout or a second signal).
 */
#define G_LOG_DOMAIN "qdbd"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "node/error.h"
#include "node/node.h"
#include "storage/bdb.h"
#include "storage/memory.h"
#include "transport-real/http.h"
#include "transport-real/loop.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* ---- options ----------------------------------------------------------------- */

/* qdbd reads its configuration file, when there is one, at this path unless
 * --config names another (configure's sysconfdir: /etc with the packages). */
#ifndef QDBD_CONFIG_PATH
#define QDBD_CONFIG_PATH "/etc/qdb/qdbd.conf"
#endif

typedef struct qdbd_opts {
    char *address, **peers, *root, *log_file, *log_level, *id, *pid_file, *replication, *config;
    gboolean log_console, log_syslog, sync, transient, daemonize, version, gen_config,
        check_config;
    /* where each option of qdbd_options[] came from: 0 not set, -1 the
     * command line, N > 0 line N of config_path */
    int origin[16];
    const char *config_path; /* the file read, if any */
    char *http;                 /* --http: the status page's address */
    gboolean allow_remote_stop; /* --allow-remote-stop: obey qdbsh stop_node */
} qdbd_opts;

/* One row per option that both the command line and the key file know:
 * --help, the key-file loader, the origin of a bad value and --gen-config
 * all come from this table.  The defaults are the values qdbd uses when the
 * option is given nowhere. */
typedef enum opt_kind { OPT_STRING, OPT_LIST, OPT_BOOL } opt_kind;
typedef struct qdbd_option {
    const char *key; /* long option and key-file key */
    char short_name;
    opt_kind kind;
    size_t offset; /* of the field in qdbd_opts */
    const char *arg;
    const char *help;
    const char *dflt; /* as --gen-config writes it; "" for none */
} qdbd_option;

enum { QO_ADDRESS, QO_PEER, QO_ROOT, QO_LOG_FILE, QO_LOG_CONSOLE, QO_LOG_SYSLOG, QO_LOG_LEVEL, QO_ID,
       QO_SYNC, QO_TRANSIENT, QO_DAEMONIZE, QO_PID_FILE, QO_HTTP, QO_ALLOW_REMOTE_STOP,
       QO_REPLICATION, QO_COUNT };

#define OFF(field) offsetof(qdbd_opts, field)
static const qdbd_option qdbd_options[QO_COUNT] = {
    [QO_ADDRESS] = {"address", 'a', OPT_STRING, OFF(address), "ADDR[:PORT]",
                   "Listen on ADDR and announce it to the hive", QDB_DEFAULT_ADDRESS},
    [QO_PEER] = {"peer", 0, OPT_LIST, OFF(peers), "ADDR[:PORT]",
                "Join the hive through this node (repeatable; in the file a list separated "
                "by ';' or ','; none: start a new hive)", ""},
    [QO_ROOT] = {"root", 'r', OPT_STRING, OFF(root), "DIR", "Berkeley DB environment directory",
                QDBD_DEFAULT_ROOT},
    [QO_LOG_FILE] = {"log-file", 'l', OPT_STRING, OFF(log_file), "FILE",
                    "Append the log to FILE", ""},
    [QO_LOG_CONSOLE] = {"log-console", 'o', OPT_BOOL, OFF(log_console), NULL,
                       "Log to standard error (the default without a log file or syslog)",
                       "false"},
    [QO_LOG_SYSLOG] = {"log-syslog", 0, OPT_BOOL, OFF(log_syslog), NULL,
                      "Log to syslog, facility daemon (the default with --daemonize and no "
                      "log file)", "false"},
    [QO_LOG_LEVEL] = {"log-level", 0, OPT_STRING, OFF(log_level), "LEVEL",
                     "debug, info, warning or error", QDBD_DEFAULT_LOG_LEVEL},
    [QO_ID] = {"id", 0, OPT_STRING, OFF(id), "ID",
              "Node ID: 1-64 hex digits, or #decimal (default: the one kept in the root, "
              "else random)", ""},
    [QO_SYNC] = {"sync", 0, OPT_BOOL, OFF(sync), NULL,
                "Flush every write to disk before acknowledging it", "false"},
    [QO_TRANSIENT] = {"transient", 0, OPT_BOOL, OFF(transient), NULL,
                     "Keep entries in memory only; nothing is written to disk", "false"},
    /* No short form: -d is qdbsh's --daemon (the node to talk to), as in
     * quasardb's shell; a daemon's detaching is rare enough to spell out. */
    [QO_DAEMONIZE] = {"daemonize", 0, OPT_BOOL, OFF(daemonize), NULL,
                     "Detach from the terminal once started", "false"},
    [QO_PID_FILE] = {"pid-file", 0, OPT_STRING, OFF(pid_file), "FILE",
                    "Write the process ID to FILE", ""},
    [QO_HTTP] = {"http", 0, OPT_STRING, OFF(http), "ADDR:PORT",
                "Serve the status page, /status.json and /metrics on ADDR:PORT (default: off)",
                ""},
    [QO_ALLOW_REMOTE_STOP] = {"allow-remote-stop", 0, OPT_BOOL, OFF(allow_remote_stop), NULL,
                             "Leave the hive when a client asks (qdbsh stop_node); otherwise "
                             "refuse", "false"},
    [QO_REPLICATION] = {"replication", 0, OPT_STRING, OFF(replication), "K",
                       "Copies of each entry, 1 to 4, for the whole hive: fixed by its first "
                       "node, adopted by joining nodes (a different value is refused)", "1"},
};
#undef OFF
G_STATIC_ASSERT(QO_COUNT <= G_N_ELEMENTS(((qdbd_opts *)0)->origin));

static void *opt_field(qdbd_opts *o, int i)
{
    return (char *)o + qdbd_options[i].offset;
}

static bool opt_is_set(qdbd_opts *o, int i)
{
    void *f = opt_field(o, i);
    switch (qdbd_options[i].kind) {
    case OPT_STRING:
        return *(char **)f != NULL;
    case OPT_LIST:
        return *(char ***)f != NULL;
    default:
        return *(gboolean *)f;
    }
}

static void opts_clear(qdbd_opts *o)
{
    for (int i = 0; i < QO_COUNT; i++) {
        void *f = opt_field(o, i);
        if (qdbd_options[i].kind == OPT_STRING)
            g_free(*(char **)f);
        else if (qdbd_options[i].kind == OPT_LIST)
            g_strfreev(*(char ***)f);
    }
    g_free(o->config);
}

static G_GNUC_PRINTF(2, 3) int fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "qdbd: %s\n", msg);
    g_free(msg);
    return code;
}

/* A bad value for option i: from the file, "FILE:LINE: key: ..." and
 * EX_CONFIG; from the command line, "bad --key ..." and EX_USAGE. */
static G_GNUC_PRINTF(3, 4) int opt_fail(const qdbd_opts *o, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int rc = o->origin[i] > 0
                 ? fail(EX_CONFIG, "%s:%d: %s: %s", o->config_path, o->origin[i],
                        qdbd_options[i].key, msg)
                 : fail(EX_USAGE, "bad --%s: %s", qdbd_options[i].key, msg);
    g_free(msg);
    return rc;
}

static int opt_index(const char *key)
{
    for (int i = 0; i < QO_COUNT; i++)
        if (strcmp(qdbd_options[i].key, key) == 0)
            return i;
    return -1;
}

/* First pass over the file's text, for what GKeyFile does not tell: the line
 * of every key of [qdbd] (into o->origin, for options the command line left
 * unset; the last line wins, as in GKeyFile), and the line of the first thing
 * that is not a key, a group or a comment, or not ours. */
static int opts_scan_lines(qdbd_opts *o, const char *path, const char *text, int *file_line)
{
    char **lines = g_strsplit(text, "\n", -1);
    const char *group = NULL;
    int rc = 0;
    for (int n = 0; lines[n] && rc == 0; n++) {
        char *l = g_strstrip(lines[n]);
        if (*l == '\0' || *l == '#')
            continue;
        if (*l == '[') {
            group = l;
            if (strcmp(l, "[qdbd]") != 0)
                rc = fail(EX_CONFIG, "%s:%d: unknown group %s (only [qdbd])", path, n + 1, l);
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = fail(EX_CONFIG, "%s:%d: not a 'key = value' line, a [group] or a # comment",
                      path, n + 1);
            continue;
        }
        *eq = '\0';
        g_strchomp(l);
        int i = opt_index(l);
        if (!group)
            rc = fail(EX_CONFIG, "%s:%d: key '%s' before the [qdbd] group", path, n + 1, l);
        else if (i < 0)
            rc = fail(EX_CONFIG, "%s:%d: unknown key '%s' in [qdbd]", path, n + 1, l);
        else
            file_line[i] = n + 1;
    }
    g_strfreev(lines);
    return rc;
}

/* Fill the options the command line did not set from the key file's [qdbd]
 * group.  Every group and key must be known: a typo is an error, not a silent
 * default.  An empty value is the same as no key. */
static int opts_load_file(qdbd_opts *o, const char *path)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    char *text = NULL;
    gsize len;
    int file_line[QO_COUNT] = {0};
    int rc = 0;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        rc = fail(EX_NOINPUT, "cannot read %s: %s", path, e->message);
        goto out;
    }
    o->config_path = path;
    if ((rc = opts_scan_lines(o, path, text, file_line)) != 0)
        goto out;
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        rc = fail(EX_CONFIG, "%s: %s", path, e->message);
        goto out;
    }
    for (int i = 0; i < QO_COUNT && rc == 0; i++) {
        const char *key = qdbd_options[i].key;
        if (opt_is_set(o, i) || !g_key_file_has_key(kf, "qdbd", key, NULL))
            continue;
        char *v = g_key_file_get_string(kf, "qdbd", key, &e);
        if (!v) {
            rc = fail(EX_CONFIG, "%s:%d: %s: %s", path, file_line[i], key, e->message);
            break;
        }
        void *f = opt_field(o, i);
        bool given = *v != '\0';
        if (!given) {
            /* no value: the default */
        } else if (qdbd_options[i].kind == OPT_STRING) {
            *(char **)f = g_steal_pointer(&v);
        } else if (qdbd_options[i].kind == OPT_LIST) {
            /* "peer = 127.0.0.1:2836;127.0.0.3:2836" (commas work too) */
            char **parts = g_strsplit_set(v, ";, \t", -1);
            GPtrArray *a = g_ptr_array_new();
            for (char **p = parts; *p; p++)
                if (**p)
                    g_ptr_array_add(a, g_strdup(*p));
            g_ptr_array_add(a, NULL);
            *(char ***)f = (char **)g_ptr_array_free(a, FALSE);
            g_strfreev(parts);
        } else if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "false") == 0) {
            *(gboolean *)f = g_ascii_strcasecmp(v, "true") == 0;
        } else {
            rc = fail(EX_CONFIG, "%s:%d: %s: '%s' is not a boolean (true or false)", path,
                      file_line[i], key, v);
        }
        if (given)
            o->origin[i] = file_line[i];
        g_free(v);
    }
out:
    if (e)
        g_error_free(e);
    g_free(text);
    g_key_file_free(kf);
    return rc;
}

/* --gen-config: the whole file, every key commented out with its default;
 * qdbd reads it back unchanged (tests/config.sh). */
static void print_config(FILE *out)
{
    fprintf(out,
            "# qdbd.conf: the configuration of one qdb node (qdbd %s), a GLib key file.\n"
            "# Written by 'qdbd --gen-config': every key is shown commented out, with\n"
            "# its default.  qdbd reads %s when it exists, or the\n"
            "# file given with --config; an option on the command line wins over the\n"
            "# same key here.  An empty value is the default.  Booleans are true or\n"
            "# false.  An error names this file and its line, and qdbd exits 78.\n"
            "# See qdbd(8).\n\n[qdbd]\n",
            PACKAGE_VERSION, QDBD_CONFIG_PATH);
    for (int i = 0; i < QO_COUNT; i++) {
        const qdbd_option *q = &qdbd_options[i];
        /* the help, wrapped at 76 columns */
        char **words = g_strsplit(q->help, " ", -1);
        int col = 0;
        for (char **w = words; *w; w++) {
            int len = (int)strlen(*w);
            if (col == 0 || col + 1 + len > 76) {
                fprintf(out, "\n# %s", *w);
                col = 2 + len;
            } else {
                fprintf(out, " %s", *w);
                col += 1 + len;
            }
        }
        g_strfreev(words);
        fprintf(out, "\n#%s =%s%s\n", q->key, *q->dflt ? " " : "", q->dflt);
    }
}

static int opts_parse(qdbd_opts *o, int *argc, char ***argv)
{
    GOptionEntry entries[QO_COUNT + 5];
    char *helps[QO_COUNT];
    for (int i = 0; i < QO_COUNT; i++) {
        const qdbd_option *q = &qdbd_options[i];
        static const GOptionArg args[] = {[OPT_STRING] = G_OPTION_ARG_STRING,
                                          [OPT_LIST] = G_OPTION_ARG_STRING_ARRAY,
                                          [OPT_BOOL] = G_OPTION_ARG_NONE};
        helps[i] = q->kind == OPT_STRING && *q->dflt
                       ? g_strdup_printf("%s (default %s)", q->help, q->dflt)
                       : g_strdup(q->help);
        entries[i] = (GOptionEntry){q->key, q->short_name, 0, args[q->kind], opt_field(o, i),
                                    helps[i], q->arg};
    }
    char *config_help = g_strdup_printf("Read options from this key file instead of %s "
                                        "(group [qdbd]); the command line wins",
                                        QDBD_CONFIG_PATH);
    entries[QO_COUNT] = (GOptionEntry){"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config,
                                      config_help, "FILE"};
    entries[QO_COUNT + 1] = (GOptionEntry){"gen-config", 0, 0, G_OPTION_ARG_NONE, &o->gen_config,
                                          "Print a commented default configuration and exit",
                                          NULL};
    entries[QO_COUNT + 2] = (GOptionEntry){"check-config", 0, 0, G_OPTION_ARG_NONE,
                                          &o->check_config,
                                          "Check the options and the file, then exit", NULL};
    entries[QO_COUNT + 3] = (GOptionEntry){"version", 'V', 0, G_OPTION_ARG_NONE, &o->version,
                                          "Print the version and exit", NULL};
    entries[QO_COUNT + 4] = (GOptionEntry){NULL, 0, 0, 0, NULL, NULL, NULL};
    GOptionContext *ctx = g_option_context_new("- a node of a qdb hive");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Runs one node of a qdb hive (a Chord ring of key-value "
                                      "stores).  See qdbd(8).");
    GError *e = NULL;
    int rc = 0;
    if (!g_option_context_parse(ctx, argc, argv, &e)) {
        rc = fail(EX_USAGE, "%s (try --help)", e->message);
        g_error_free(e);
    } else if (*argc > 1) {
        rc = fail(EX_USAGE, "unexpected argument '%s' (try --help)", (*argv)[1]);
    }
    g_option_context_free(ctx);
    for (int i = 0; i < QO_COUNT; i++)
        g_free(helps[i]);
    g_free(config_help);
    if (rc || o->version || o->gen_config)
        return rc;
    for (int i = 0; i < QO_COUNT; i++)
        o->origin[i] = opt_is_set(o, i) ? -1 : 0;
    /* The file: --config's, else the default one when it exists. */
    if (o->config)
        rc = opts_load_file(o, o->config);
    else if (g_file_test(QDBD_CONFIG_PATH, G_FILE_TEST_EXISTS))
        rc = opts_load_file(o, QDBD_CONFIG_PATH);
    return rc;
}

/* ---- logging ------------------------------------------------------------------ */

typedef struct qdbd_log {
    FILE *file;
    char *path;     /* absolute, for SIGHUP's reopen */
    bool console;
    bool syslog;    /* openlog() done */
    int threshold;  /* 1 error .. 4 debug, as node_config.log_level */
} qdbd_log;

/* The writer has no user data pointer of its own lifetime: one logger per
 * process.  threshold is set from --log-level before the writer is installed. */
static qdbd_log g_qlog;

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

static bool log_level_parse(const char *s, int *out)
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
static GLogWriterOutput log_writer(GLogLevelFlags lv, const GLogField *fields, gsize n,
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

static bool log_open(qdbd_log *l, char *err, size_t errlen)
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

/* ---- the service manager ----------------------------------------------------------
 * systemd's notify protocol (Type=notify in qdbd.service), over
 * $NOTIFY_SOCKET; without that variable, or built without libsystemd,
 * nothing is sent.  The messages:
 *   READY=1     once the node serves: its store is open and recovered, its
 *               address is listened on, and it has created a new ring or sent
 *               its join to a peer.  The join completes in the background;
 *               meanwhile clients are told "unstable" and retry.
 *   STATUS=...  the "ring:" log line, whenever it changes.
 *   STOPPING=1  when the first SIGTERM/SIGINT starts the departure.
 *   WATCHDOG=1  every half of $WATCHDOG_USEC (WatchdogSec=), from a loop
 *               timer: a loop that stops turning stops the pings too.
 */
static G_GNUC_PRINTF(1, 2) void notify(const char *fmt, ...)
{
#ifdef HAVE_LIBSYSTEMD
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    sd_notify(0, msg);
    g_free(msg);
#else
    (void)fmt;
#endif
}

/* The watchdog period the service manager asked for, or 0. */
static qdb_time_us notify_watchdog_period(void)
{
#ifdef HAVE_LIBSYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0)
        return usec;
#endif
    return 0;
}

static const char *entries_word(uint64_t n)
{
    return n == 1 ? "entry" : "entries";
}

/* ---- the daemon ------------------------------------------------------------------ */

typedef struct qdbd {
    qdb_loop *loop;
    qdb_loop_endpoint *ep;
    qdb_node *node;
    qdb_storage *store;
    qdb_http *http;
    bool bdb;
    int sigfd;
    int signals;          /* TERM/INT received */
    qdb_time_us leave_deadline;
    /* last status logged */
    qdb_peer last_pred, last_succ;
    bool last_stable;
} qdbd;

static qdb_time_us qdbd_now(qdbd *d)
{
    qdb_clock *c = qdb_loop_endpoint_clock(d->ep);
    return c->now(c);
}

/* SIGUSR1: one line of counters, for operators and tests/hive.sh. */
static void log_stats(qdbd *d)
{
    qdb_loop_stats ls;
    qdb_loop_get_stats(d->loop, &ls);
    const qdb_node_stats *ns = qdb_node_get_stats(d->node);
    uint64_t entries = d->store->count(d->store);
    g_info("stats: %" G_GUINT64_FORMAT " %s, %s; connections %" G_GUINT64_FORMAT
           " open (%" G_GUINT64_FORMAT " total, %" G_GUINT64_FORMAT " refused, %" G_GUINT64_FORMAT
           " reset); frames %" G_GUINT64_FORMAT " in, %" G_GUINT64_FORMAT " out, %" G_GUINT64_FORMAT
           " bad; requests %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " wrong node, %" G_GUINT64_FORMAT
           " unstable, %" G_GUINT64_FORMAT " duplicates); rpc timeouts %" G_GUINT64_FORMAT,
           entries, entries_word(entries), qdb_node_is_stable(d->node) ? "stable" : "settling",
           ls.connections_open, ls.connections_total, ls.refused, ls.resets, ls.frames_in,
           ls.frames_out, ls.bad_frames, ns->requests, ns->wrong_node, ns->unstable,
           ns->duplicates, ns->rpc_timeouts);
}

static void on_signal(void *arg, int fd)
{
    qdbd *d = arg;
    struct signalfd_siginfo si;
    /* Bounded: the signalfd holds at most one pending instance per signal. */
    for (int i = 0; i < 8 && read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si); i++) {
        if (si.ssi_signo == SIGUSR1) {
            log_stats(d);
            continue;
        }
        if (si.ssi_signo == SIGHUP) {
            char err[256];
            if (g_qlog.path && !log_open(&g_qlog, err, sizeof(err)))
                g_warning("%s", err);
            else
                g_info("log file reopened");
            continue;
        }
        d->signals++;
        if (d->signals == 1) {
            g_info("signal %u: leaving the hive (hand-over to the successor, at most %u s)",
                   si.ssi_signo, (unsigned)(QDBD_DEFAULT_LEAVE_TIMEOUT_US / QDB_US_PER_S));
            d->leave_deadline = qdbd_now(d) + QDBD_DEFAULT_LEAVE_TIMEOUT_US;
            notify("STOPPING=1");
            qdb_node_leave(d->node);
        } else {
            g_warning("signal %u again: quitting now", si.ssi_signo);
        }
    }
}

static void on_checkpoint(void *arg)
{
    qdbd *d = arg;
    if (d->bdb && qdb_storage_bdb_checkpoint(d->store) != QDB_OK)
        g_warning("checkpoint failed: %s", d->store->errmsg);
}

static void on_watchdog(void *arg)
{
    (void)arg;
    notify("WATCHDOG=1");
}

/* Log the node's neighbourhood when it changes: what an operator (and
 * tests/hive.sh) reads to see the hive form and repair itself. */
static void on_status(void *arg)
{
    qdbd *d = arg;
    const qdb_peer *p = qdb_node_predecessor(d->node);
    const qdb_peer *s = qdb_node_successor(d->node);
    qdb_peer none = {0};
    bool stable = qdb_node_is_stable(d->node);
    if (qdb_peer_eq(p ? p : &none, &d->last_pred) && qdb_peer_eq(s ? s : &none, &d->last_succ) &&
        stable == d->last_stable)
        return;
    d->last_pred = p ? *p : none;
    d->last_succ = s ? *s : none;
    d->last_stable = stable;
    char pa[QDB_ADDR_STRLEN] = "none", sa[QDB_ADDR_STRLEN] = "none";
    if (p)
        qdb_addr_format(p->addr, pa);
    if (s)
        qdb_addr_format(s->addr, sa);
    uint64_t entries = d->store->count(d->store);
    char *line = g_strdup_printf("ring: predecessor %s, successor %s, %s, %" G_GUINT64_FORMAT
                                 " %s", pa, sa, stable ? "stable" : "settling", entries,
                                 entries_word(entries));
    g_info("%s", line);
    notify("STATUS=%s", line);
    g_free(line);
}

/* Fork; the parent waits for the child's start-up verdict on a pipe and
 * exits with it, so "qdbd --daemonize" still fails with the right code and message. */
static int daemonize(int *report_fd)
{
    int p[2];
    if (pipe(p) < 0)
        return fail(EX_OSERR, "pipe: %s", g_strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return fail(EX_OSERR, "fork: %s", g_strerror(errno));
    if (pid > 0) {
        close(p[1]);
        unsigned char code = EX_SOFTWARE;
        ssize_t r;
        do
            r = read(p[0], &code, 1);
        while (r < 0 && errno == EINTR);
        _exit(r == 1 ? code : EX_SOFTWARE);
    }
    close(p[0]);
    if (setsid() < 0)
        return fail(EX_OSERR, "setsid: %s", g_strerror(errno));
    /* Paths were made absolute before the fork; do not pin the directory
     * we were started from. */
    if (chdir("/") < 0)
        return fail(EX_OSERR, "chdir /: %s", g_strerror(errno));
    *report_fd = p[1];
    return 0;
}

static void report_start(int *report_fd, int code)
{
    if (*report_fd < 0)
        return;
    if (code == 0) { /* started: let go of the terminal */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2)
                close(null);
        }
    }
    unsigned char c = (unsigned char)code;
    ssize_t r = write(*report_fd, &c, 1);
    (void)r;
    close(*report_fd);
    *report_fd = -1;
}

static char *absolute(const char *path)
{
    return path ? g_canonicalize_filename(path, NULL) : NULL;
}

int main(int argc, char **argv)
{
    /* The user's locale, so that messages and GOption's help use the
     * terminal's charset ("[OPTION…]", not "[OPTION?]"); numbers stay in the C
     * locale, since logs, JSON and files are read by programs. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
    qdbd_opts o = {0};
    qdbd d = {.sigfd = -1};
    int rc = opts_parse(&o, &argc, &argv);
    int report_fd = -1;
    char err[QDB_ERRMSG_SIZE + 64];
    char *pid_path = NULL, *id_path = NULL;
    qdb_addr *peers = NULL;
    size_t n_peers = 0;
    if (rc)
        goto out_opts;
    if (o.version) {
        printf("qdbd %s\n", PACKAGE_VERSION);
        goto out_opts;
    }
    if (o.gen_config) {
        print_config(stdout);
        goto out_opts;
    }

    /* -- validate everything before touching the system */
    qdb_addr self_addr;
    if (!qdb_addr_parse(&self_addr, o.address ? o.address : QDB_DEFAULT_ADDRESS) ||
        self_addr.ip == 0 || self_addr.port == 0) {
        rc = opt_fail(&o, QO_ADDRESS, "'%s': want a.b.c.d[:port], not 0.0.0.0 nor port 0",
                      o.address);
        goto out_opts;
    }
    qdb_addr http_addr;
    if (o.http && (!qdb_addr_parse(&http_addr, o.http) || http_addr.port == 0)) {
        rc = opt_fail(&o, QO_HTTP, "'%s': want a.b.c.d:port", o.http);
        goto out_opts;
    }
    n_peers = o.peers ? g_strv_length(o.peers) : 0;
    peers = g_new0(qdb_addr, n_peers + 1);
    size_t np = 0;
    for (size_t i = 0; i < n_peers; i++) {
        qdb_addr a;
        if (!qdb_addr_parse(&a, o.peers[i]) || a.ip == 0 || a.port == 0) {
            rc = opt_fail(&o, QO_PEER, "'%s': want a.b.c.d[:port]", o.peers[i]);
            goto out_opts;
        }
        if (!qdb_addr_eq(a, self_addr)) /* one config file can serve the whole hive */
            peers[np++] = a;
    }
    n_peers = np;
    qdb_id id;
    if (o.id && !qdb_id_parse(&id, o.id)) {
        rc = opt_fail(&o, QO_ID, "'%s': want 1 to 64 hex digits or #decimal", o.id);
        goto out_opts;
    }
    if (!log_level_parse(o.log_level ? o.log_level : QDBD_DEFAULT_LOG_LEVEL, &g_qlog.threshold)) {
        rc = opt_fail(&o, QO_LOG_LEVEL, "'%s': want debug, info, warning or error",
                      o.log_level);
        goto out_opts;
    }
    unsigned replication = 0; /* not given: the hive's */
    if (o.replication) {
        guint64 k;
        if (!g_ascii_string_to_unsigned(o.replication, 10, 1, QDB_REPLICATION_MAX, &k, NULL)) {
            rc = opt_fail(&o, QO_REPLICATION, "'%s': want 1 to %d", o.replication,
                          QDB_REPLICATION_MAX);
            goto out_opts;
        }
        replication = (unsigned)k;
    }
    if (o.transient && o.sync) {
        /* blame the one that came from the file, if either did */
        rc = opt_fail(&o, o.origin[QO_SYNC] > 0 ? QO_SYNC : QO_TRANSIENT,
                      "--sync and --transient exclude each other");
        goto out_opts;
    }
    if (o.check_config) {
        printf("qdbd: options and %s are valid\n",
               o.config_path ? o.config_path : "the defaults (no configuration file)");
        goto out_opts;
    }
    char *root = absolute(o.root ? o.root : QDBD_DEFAULT_ROOT);
    g_qlog.path = absolute(o.log_file);
    g_qlog.console = o.log_console;
    pid_path = absolute(o.pid_file);

    /* -- the system */
    if (o.daemonize && (rc = daemonize(&report_fd)) != 0)
        goto out_root;
    if (o.log_syslog || (o.daemonize && !o.log_file)) {
        openlog("qdbd", LOG_PID, LOG_DAEMON);
        g_qlog.syslog = true;
    }
    if (g_qlog.path && !log_open(&g_qlog, err, sizeof(err))) {
        rc = fail(EX_CANTCREAT, "%s", err);
        goto out_root;
    }
    g_log_set_writer_func(log_writer, &g_qlog, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d.sigfd < 0) {
        rc = fail(EX_OSERR, "signalfd: %s", g_strerror(errno));
        goto out_root;
    }

    d.loop = qdb_loop_new(err);
    if (!d.loop) {
        rc = fail(EX_OSERR, "%s", err);
        goto out_sigfd;
    }
    d.ep = qdb_loop_attach(d.loop, &self_addr, NULL, NULL, err);
    if (!d.ep) {
        rc = fail(EX_UNAVAILABLE, "%s", err);
        goto out_loop;
    }

    if (o.transient) {
        d.store = qdb_storage_memory_new();
    } else {
        qdb_bdb_options bo = qdb_bdb_options_defaults();
        bo.sync = o.sync ? 1 : 0;
        char serr[QDB_ERRMSG_SIZE];
        d.store = qdb_storage_bdb_open(root, &bo, serr);
        if (!d.store) {
            rc = strstr(serr, root) ? fail(EX_CANTCREAT, "%s", serr)
                                    : fail(EX_CANTCREAT, "store under %s: %s", root, serr);
            goto out_ep;
        }
        d.bdb = true;
    }

    /* The ID: --id, else the one kept under the root (a restarted node takes
     * back its arc of the ring, and so serves its entries again), else a
     * random one from the endpoint's generator (seeded by the OS). */
    id_path = o.transient ? NULL : g_build_filename(root, "node.id", NULL);
    bool have_id = o.id != NULL;
    if (!have_id && id_path) {
        char *text = NULL;
        if (g_file_get_contents(id_path, &text, NULL, NULL)) {
            g_strstrip(text);
            if (!qdb_id_parse(&id, text)) {
                g_free(text);
                rc = fail(EX_CONFIG, "%s: not a node ID; remove it or pass --id", id_path);
                goto out_store;
            }
            have_id = true;
        }
        g_free(text);
    }
    if (!have_id) {
        qdb_random *r = qdb_loop_endpoint_random(d.ep);
        for (int i = 0; i < QDB_ID_BYTES; i += 8)
            qdb_be64_put(id.b + i, r->next(r));
    }
    if (id_path) {
        char hex0[QDB_ID_HEX + 2];
        qdb_id_to_hex(&id, hex0);
        strcat(hex0, "\n");
        GError *ge = NULL;
        if (!g_file_set_contents(id_path, hex0, -1, &ge)) {
            rc = fail(EX_CANTCREAT, "cannot write %s: %s", id_path, ge->message);
            g_error_free(ge);
            goto out_store;
        }
    }
    qdb_node_config cfg = {
        .self = {.id = id, .addr = self_addr},
        .stabilize_fast = QDBD_DEFAULT_STABILIZE_FAST_US,
        .stabilize_slow = QDBD_DEFAULT_STABILIZE_SLOW_US,
        .rpc_timeout = QDBD_DEFAULT_RPC_TIMEOUT_US,
        .log_level = g_qlog.threshold,
        .allow_remote_stop = o.allow_remote_stop,
        .replication = replication,
    };
    qdb_node_config_defaults(&cfg);
    char nerr[QDB_ERRMSG_SIZE];
    d.node = qdb_node_new(&cfg, qdb_loop_endpoint_clock(d.ep), qdb_loop_endpoint_transport(d.ep),
                          qdb_loop_endpoint_random(d.ep), d.store, nerr);
    if (!d.node) {
        rc = fail(EX_SOFTWARE, "cannot create the node: %s", nerr);
        goto out_store;
    }
    qdb_loop_endpoint_bind(d.ep, &qdb_node_inbound, d.node);
    if (o.http && !(d.http = qdb_http_start(d.loop, d.node, &http_addr, nerr))) {
        rc = fail(EX_UNAVAILABLE, "%s", nerr);
        goto out_node;
    }
    if (!qdb_loop_watch_fd(d.loop, d.sigfd, on_signal, &d)) {
        rc = fail(EX_OSERR, "cannot watch the signalfd: %s", g_strerror(errno));
        goto out_node;
    }
    if (pid_path) {
        FILE *pf = fopen(pid_path, "w");
        if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
            rc = fail(EX_CANTCREAT, "cannot write pid file %s: %s", pid_path, g_strerror(errno));
            goto out_node;
        }
    }

    char hex[QDB_ID_HEX + 1], a[QDB_ADDR_STRLEN];
    qdb_id_to_hex(&id, hex);
    uint64_t held = d.store->count(d.store);
    g_info("qdbd %s: node %s at %s, %s%s, %" G_GUINT64_FORMAT " %s, %zu %s%s%s",
           PACKAGE_VERSION, hex, qdb_addr_format(self_addr, a),
           o.transient ? "transient (memory)" : root,
           o.transient ? "" : (o.sync ? " (sync)" : " (no-sync)"), held, entries_word(held),
           n_peers, n_peers == 1 ? "peer" : "peers", o.config_path ? ", config " : "",
           o.config_path ? o.config_path : "");
    if (d.bdb)
        qdb_loop_every(d.loop, QDBD_DEFAULT_CHECKPOINT_PERIOD_US, on_checkpoint, &d);
    qdb_loop_every(d.loop, QDBD_DEFAULT_STATUS_PERIOD_US, on_status, &d);
    qdb_time_us watchdog = notify_watchdog_period();
    if (watchdog)
        qdb_loop_every(d.loop, watchdog / 2, on_watchdog, &d);
    qdb_node_start(d.node, peers, n_peers);
    report_start(&report_fd, 0);
    notify("READY=1\nMAINPID=%ld", (long)getpid());

    /* -- run until a signal's departure completes.  Every wait is bounded:
     * the hand-over by QDBD_DEFAULT_LEAVE_TIMEOUT_US, the last writes by
     * QDBD_DEFAULT_DRAIN_TIMEOUT_US. */
    qdb_time_us left_at = 0;
    for (;;) {
        if (!qdb_loop_run_once(d.loop, d.signals ? 50 : -1))
            break;
        if (qdb_node_refusal(d.node)) {
            rc = fail(EX_CONFIG, "%s", qdb_node_refusal(d.node));
            break;
        }
        if (d.signals >= 2) {
            rc = 1;
            break;
        }
        if (!d.signals && qdb_node_leaving(d.node)) { /* a stop_node it was allowed to obey */
            g_info("leaving the hive on request (at most %u s)",
                   (unsigned)(QDBD_DEFAULT_LEAVE_TIMEOUT_US / QDB_US_PER_S));
            notify("STOPPING=1");
            d.signals = 1;
            d.leave_deadline = qdbd_now(&d) + QDBD_DEFAULT_LEAVE_TIMEOUT_US;
        }
        if (!d.signals)
            continue;
        qdb_time_us now = qdbd_now(&d);
        if (qdb_node_left(d.node)) {
            if (!left_at) {
                left_at = now;
                uint64_t left = d.store->count(d.store);
                g_info("left the hive; %" G_GUINT64_FORMAT " %s remain%s here", left,
                       entries_word(left), left == 1 ? "s" : "");
            }
            if (qdb_loop_endpoint_pending(d.ep) == 0 || now >= left_at + QDBD_DEFAULT_DRAIN_TIMEOUT_US)
                break;
        } else if (now >= d.leave_deadline) {
            g_warning("hand-over did not finish within %u s; quitting",
                      (unsigned)(QDBD_DEFAULT_LEAVE_TIMEOUT_US / QDB_US_PER_S));
            rc = 1;
            break;
        }
    }
    g_info("stopped");

    if (pid_path)
        unlink(pid_path);
out_node:
    qdb_http_stop(d.http); /* the loop no longer runs */
    qdb_loop_endpoint_bind(d.ep, NULL, NULL);
    qdb_node_free(d.node);
out_store:
    if (d.store)
        d.store->destroy(d.store);
out_ep:
    qdb_loop_detach(d.loop, d.ep);
out_loop:
    qdb_loop_free(d.loop);
out_sigfd:
    if (d.sigfd >= 0)
        close(d.sigfd);
out_root:
    report_start(&report_fd, rc);
    if (g_qlog.syslog)
        closelog();
    g_free(root);
    g_free(g_qlog.path);
    if (g_qlog.file)
        fclose(g_qlog.file);
out_opts:
    g_free(pid_path);
    g_free(id_path);
    g_free(peers);
    opts_clear(&o);
    return rc;
}

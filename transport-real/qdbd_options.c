/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's options (qdbd_options.h): the table, the command line, the key
 * file with FILE:LINE errors, and --gen-config. */
#include "config.h"

#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "node/defaults.h"
#include "transport-real/qdbd_options.h"

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
                             "An alias of --enable-stop", "false"},
    [QO_REPLICATION] = {"replication", 0, OPT_STRING, OFF(replication), "K",
                       "Copies of each entry, 1 to 4, for the whole hive: fixed by its first "
                       "node, adopted by joining nodes (a different value is refused)", "1"},
    [QO_TOMBSTONE_GRACE] = {"tombstone-grace", 0, OPT_STRING, OFF(tombstone_grace), "SECONDS",
                           "Keep a removed entry's tombstone this long, so a node back after a "
                           "shorter absence cannot bring the entry back",
                           G_STRINGIFY(QDB_DEFAULT_TOMBSTONE_GRACE_S)},
    [QO_HIVE_KEY_FILE] = {"hive-key-file", 0, OPT_STRING, OFF(hive_key_file), "FILE",
                         "The hive's secret key (qdbd --gen-key; not readable by others): every "
                         "connection, node or client, must prove it over TLS 1.3, and plaintext "
                         "is refused (default: none, plaintext for a trusted network)", ""},
    [QO_DEAD_NODE_GRACE] = {"dead-node-grace", 0, OPT_STRING, OFF(dead_node_grace), "SECONDS",
                           "A failed node's entries answer \"unavailable\" this long, then "
                           "\"not found\" (as after qdbsh forget_node); 0: until forget_node",
                           "0"},
    [QO_REPAIR_RATE] = {"repair-rate", 0, OPT_STRING, OFF(repair_rate), "ENTRIES",
                       "Send at most ENTRIES records a second to bring replicas up to date, so "
                       "client requests keep priority", G_STRINGIFY(QDB_DEFAULT_REPAIR_RATE)},
    [QO_ENABLE_PURGE_ALL] = {"enable-purge-all", 0, OPT_BOOL, OFF(enable_purge_all), NULL,
                            "Let clients remove every entry (qdbsh remove_all), for the whole "
                            "hive: fixed by its first node (off: \"operation disabled\")",
                            "false"},
    [QO_ENABLE_STOP] = {"enable-stop", 0, OPT_BOOL, OFF(enable_stop), NULL,
                       "Let clients make a node leave (qdbsh stop_node), for the whole hive: "
                       "fixed by its first node (off: \"operation disabled\")", "false"},
    /* resource limits; sizes take a K, M or G suffix (binary) */
    [QO_SESSIONS] = {"sessions", 0, OPT_STRING, OFF(sessions), "N",
                    "Connections from clients and peers open at once; more are accepted and "
                    "closed at once.  At most the descriptor limit less "
                    G_STRINGIFY(QDBD_FD_RESERVE) " kept for storage and peers",
                    G_STRINGIFY(QDBD_DEFAULT_SESSIONS)},
    [QO_IDLE_TIMEOUT] = {"idle-timeout", 0, OPT_STRING, OFF(idle_timeout), "SECONDS",
                        "Close a connection that brought no request for this long (0: never)",
                        G_STRINGIFY(QDBD_DEFAULT_IDLE_TIMEOUT_S)},
    [QO_MAX_CONTENT_SIZE] = {"max-content-size", 0, OPT_STRING, OFF(max_content_size), "BYTES",
                            "Largest content a request may carry (more: 'content too large'); "
                            "frames over twice this are not read.  The same on every node",
                            "64M"},
    [QO_INPUT_MEMORY] = {"input-memory", 0, OPT_STRING, OFF(input_memory), "BYTES",
                        "Memory for unfinished frames over all connections; beyond it "
                        "connections wait, and one that stalls is closed", "256M"},
    [QO_AMO_BYTES] = {"amo-bytes", 0, OPT_STRING, OFF(amo_bytes), "BYTES",
                     "Reply contents kept for retried requests (at-most-once table); "
                     "beyond, only their outcome is kept", "32M"},
    [QO_HANDSHAKE_TIMEOUT] = {"handshake-timeout", 0, OPT_STRING, OFF(handshake_timeout),
                             "SECONDS",
                             "With --hive-key-file: close a connection that has not completed "
                             "its TLS handshake this long after it opened (0: never)",
                             G_STRINGIFY(QDBD_DEFAULT_HANDSHAKE_TIMEOUT_S)},
    [QO_LOG_RATE] = {"log-rate", 0, OPT_STRING, OFF(log_rate), "N",
                    "Log lines a second of one kind; the rest are counted in one line "
                    "(0: no limit)", G_STRINGIFY(QDBD_DEFAULT_LOG_RATE)},
    [QO_MAX_DEPOT_SIZE] = {"max-depot-size", 0, OPT_STRING, OFF(max_depot_size), "BYTES",
                          "Refuse writes that would grow the stored keys and values past BYTES "
                          "(suffix K, M, G or T: powers of 1024) with 'depot full'; removes "
                          "still run (default: no limit)", ""},
    [QO_DEPOT_WARNING] = {"depot-warning", 0, OPT_STRING, OFF(depot_warning), "PERCENT",
                         "Log a warning when the depot crosses PERCENT of --max-depot-size "
                         "(0: never)", G_STRINGIFY(QDB_DEFAULT_BDB_DEPOT_WARN_PERCENT)},
    [QO_DISK_RESERVE] = {"disk-reserve", 0, OPT_STRING, OFF(disk_reserve), "BYTES",
                        "Room kept on the disk for removes and checkpoints: a file of BYTES "
                        "under the root, given back when the disk fills, and as much again "
                        "kept free (suffix K, M, G or T; 0: none)",
                        "64M"}, /* QDBD_DEFAULT_DISK_RESERVE */
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

void qdbd_opts_clear(qdbd_opts *o)
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

int qdbd_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "qdbd: %s\n", msg);
    g_free(msg);
    return code;
}

int qdbd_opt_fail(const qdbd_opts *o, int i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    int rc = o->origin[i] > 0
                 ? qdbd_fail(EX_CONFIG, "%s:%d: %s: %s", o->config_path, o->origin[i],
                        qdbd_options[i].key, msg)
                 : qdbd_fail(EX_USAGE, "bad --%s: %s", qdbd_options[i].key, msg);
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
                rc = qdbd_fail(EX_CONFIG, "%s:%d: unknown group %s (only [qdbd])", path, n + 1, l);
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            rc = qdbd_fail(EX_CONFIG, "%s:%d: not a 'key = value' line, a [group] or a # comment",
                      path, n + 1);
            continue;
        }
        *eq = '\0';
        g_strchomp(l);
        int i = opt_index(l);
        if (!group)
            rc = qdbd_fail(EX_CONFIG, "%s:%d: key '%s' before the [qdbd] group", path, n + 1, l);
        else if (i < 0)
            rc = qdbd_fail(EX_CONFIG, "%s:%d: unknown key '%s' in [qdbd]", path, n + 1, l);
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
    GError *e = NULL;
    char *text = NULL;
    gsize len;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        int rc = qdbd_fail(EX_NOINPUT, "cannot read %s: %s", path, e->message);
        g_error_free(e);
        return rc;
    }
    o->config_path = path;
    int rc = qdbd_opts_load_text(o, path, text, len);
    g_free(text);
    return rc;
}

int qdbd_opts_load_text(qdbd_opts *o, const char *path, const char *text, size_t len)
{
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    int file_line[QO_COUNT] = {0};
    int rc = 0;
    if ((rc = opts_scan_lines(o, path, text, file_line)) != 0)
        goto out;
    if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &e)) {
        rc = qdbd_fail(EX_CONFIG, "%s: %s", path, e->message);
        goto out;
    }
    for (int i = 0; i < QO_COUNT && rc == 0; i++) {
        const char *key = qdbd_options[i].key;
        if (opt_is_set(o, i) || !g_key_file_has_key(kf, "qdbd", key, NULL))
            continue;
        char *v = g_key_file_get_string(kf, "qdbd", key, &e);
        if (!v) {
            rc = qdbd_fail(EX_CONFIG, "%s:%d: %s: %s", path, file_line[i], key, e->message);
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
            rc = qdbd_fail(EX_CONFIG, "%s:%d: %s: '%s' is not a boolean (true or false)", path,
                      file_line[i], key, v);
        }
        if (given)
            o->origin[i] = file_line[i];
        g_free(v);
    }
out:
    if (e)
        g_error_free(e);
    g_key_file_free(kf);
    return rc;
}

void qdbd_print_config(FILE *out)
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

int qdbd_opts_parse(qdbd_opts *o, int *argc, char ***argv)
{
    GOptionEntry entries[QO_COUNT + 6];
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
    entries[QO_COUNT + 4] = (GOptionEntry){"gen-key", 0, 0, G_OPTION_ARG_NONE, &o->gen_key,
                                          "Print a fresh random hive key and exit "
                                          "(qdbd --gen-key > hive.key)", NULL};
    entries[QO_COUNT + 5] = (GOptionEntry){NULL, 0, 0, 0, NULL, NULL, NULL};
    GOptionContext *ctx = g_option_context_new("- a node of a qdb hive");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_summary(ctx, "Runs one node of a qdb hive (a Chord ring of key-value "
                                      "stores).  See qdbd(8).");
    GError *e = NULL;
    int rc = 0;
    if (!g_option_context_parse(ctx, argc, argv, &e)) {
        rc = qdbd_fail(EX_USAGE, "%s (try --help)", e->message);
        g_error_free(e);
    } else if (*argc > 1) {
        rc = qdbd_fail(EX_USAGE, "unexpected argument '%s' (try --help)", (*argv)[1]);
    }
    g_option_context_free(ctx);
    for (int i = 0; i < QO_COUNT; i++)
        g_free(helps[i]);
    g_free(config_help);
    if (rc || o->version || o->gen_config || o->gen_key)
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

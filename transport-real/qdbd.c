/* qdbd: one node of a qdb hive, driven by the epoll loop (loop.h) over TCP,
 * storing its entries in Berkeley DB (storage/bdb.h) or in memory
 * (storage/memory.h).
 *
 * Sections
 *   options: command line, then the key file for what the command line left
 *   logging: one g_log writer, "<UTC time> LEVEL domain: message" lines
 *   signals: a signalfd in the loop; TERM/INT leave the ring, a second one quits
 *   start-up: daemonize, store, endpoint, node
 *   the main loop and shutdown
 *
 * Exit codes follow sysexits.h: 64 bad usage, 66 config file unreadable,
 * 69 address unusable, 70 internal error, 71 OS failure, 73 root unusable,
 * 78 bad config file; 0 after a clean departure, 1 when the hand-over did not
 * finish (timeout or a second signal).
 */
#define G_LOG_DOMAIN "qdbd"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "node/error.h"
#include "node/node.h"
#include "storage/bdb.h"
#include "storage/memory.h"
#include "transport-real/http.h"
#include "transport-real/loop.h"

/* ---- options ----------------------------------------------------------------- */

typedef struct qdbd_opts {
    char *address, **peers, *root, *log_file, *log_level, *id, *pid_file, *config;
    gboolean log_console, sync, transient, daemonize, version;
    char *http;                   /* --http: the status page's address */
    gboolean allow_remote_stop;   /* --allow-remote-stop: obey qdbsh stop_node */
} qdbd_opts;

static void opts_clear(qdbd_opts *o)
{
    g_free(o->address);
    g_strfreev(o->peers);
    g_free(o->root);
    g_free(o->log_file);
    g_free(o->log_level);
    g_free(o->id);
    g_free(o->pid_file);
    g_free(o->config);
    g_free(o->http);
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

/* Fill the options the command line did not set from the key file's [qdbd]
 * group.  Every key must be known: a typo is an error, not a silent default. */
static int opts_load_file(qdbd_opts *o, const char *path)
{
    static const char *const known[] = {"address", "peer", "root", "log-file", "log-console",
                                        "log-level", "id", "sync", "transient", "daemonize",
                                        "pid-file", NULL};
    GKeyFile *kf = g_key_file_new();
    GError *e = NULL;
    int rc = 0;
    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &e)) {
        rc = e->domain == G_FILE_ERROR ? fail(EX_NOINPUT, "cannot read %s: %s", path, e->message)
                                       : fail(EX_CONFIG, "%s: %s", path, e->message);
        goto out;
    }
    gsize ngroups;
    char **groups = g_key_file_get_groups(kf, &ngroups);
    for (gsize i = 0; i < ngroups && rc == 0; i++)
        if (strcmp(groups[i], "qdbd") != 0)
            rc = fail(EX_CONFIG, "%s: unknown group [%s] (only [qdbd])", path, groups[i]);
    g_strfreev(groups);
    if (rc || !g_key_file_has_group(kf, "qdbd"))
        goto out;
    char **keys = g_key_file_get_keys(kf, "qdbd", NULL, NULL);
    for (char **k = keys; *k && rc == 0; k++)
        if (!g_strv_contains(known, *k))
            rc = fail(EX_CONFIG, "%s: unknown key '%s' in [qdbd]", path, *k);
    g_strfreev(keys);
    if (rc)
        goto out;

#define FILE_STR(key, field)                                                                     \
    if (!o->field && g_key_file_has_key(kf, "qdbd", key, NULL))                                  \
        o->field = g_key_file_get_string(kf, "qdbd", key, NULL);
#define FILE_BOOL(key, field)                                                                    \
    if (!o->field && g_key_file_has_key(kf, "qdbd", key, NULL)) {                                \
        o->field = g_key_file_get_boolean(kf, "qdbd", key, &e);                                  \
        if (e) {                                                                                 \
            rc = fail(EX_CONFIG, "%s: key '%s': %s", path, key, e->message);                     \
            goto out;                                                                            \
        }                                                                                        \
    }
    FILE_STR("address", address)
    FILE_STR("root", root)
    FILE_STR("log-file", log_file)
    FILE_STR("log-level", log_level)
    FILE_STR("id", id)
    FILE_STR("pid-file", pid_file)
    FILE_BOOL("log-console", log_console)
    FILE_BOOL("sync", sync)
    FILE_BOOL("transient", transient)
    FILE_BOOL("daemonize", daemonize)
#undef FILE_STR
#undef FILE_BOOL
    if (!o->peers && g_key_file_has_key(kf, "qdbd", "peer", NULL)) {
        /* A list: "peer=127.0.0.1:2836;127.0.0.3:2836" (commas work too). */
        char *v = g_key_file_get_value(kf, "qdbd", "peer", NULL);
        char **parts = g_strsplit_set(v, ";, \t", -1);
        GPtrArray *a = g_ptr_array_new();
        for (char **p = parts; *p; p++)
            if (**p)
                g_ptr_array_add(a, g_strdup(*p));
        g_ptr_array_add(a, NULL);
        o->peers = (char **)g_ptr_array_free(a, FALSE);
        g_strfreev(parts);
        g_free(v);
    }
out:
    if (e)
        g_error_free(e);
    g_key_file_free(kf);
    return rc;
}

static int opts_parse(qdbd_opts *o, int *argc, char ***argv)
{
    GOptionEntry entries[] = {
        {"address", 'a', 0, G_OPTION_ARG_STRING, &o->address,
         "Listen on ADDR and announce it to the hive (default " QDB_DEFAULT_ADDRESS ")", "ADDR[:PORT]"},
        {"peer", 0, 0, G_OPTION_ARG_STRING_ARRAY, &o->peers,
         "Join the hive through this node (repeatable; none: start a new hive)", "ADDR[:PORT]"},
        {"root", 'r', 0, G_OPTION_ARG_FILENAME, &o->root,
         "Berkeley DB environment directory (default " QDBD_DEFAULT_ROOT ")", "DIR"},
        {"log-file", 'l', 0, G_OPTION_ARG_FILENAME, &o->log_file, "Append the log to FILE",
         "FILE"},
        {"log-console", 'o', 0, G_OPTION_ARG_NONE, &o->log_console,
         "Log to standard error (the default without --log-file)", NULL},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &o->log_level,
         "debug, info, warning or error (default info)", "LEVEL"},
        {"id", 0, 0, G_OPTION_ARG_STRING, &o->id,
         "Node ID: 1-64 hex digits, or #decimal (default: random)", "ID"},
        {"sync", 0, 0, G_OPTION_ARG_NONE, &o->sync,
         "Flush every write to disk before acknowledging it", NULL},
        {"transient", 0, 0, G_OPTION_ARG_NONE, &o->transient,
         "Keep entries in memory only; nothing is written to disk", NULL},
        {"daemonize", 'd', 0, G_OPTION_ARG_NONE, &o->daemonize,
         "Detach from the terminal once started", NULL},
        {"pid-file", 0, 0, G_OPTION_ARG_FILENAME, &o->pid_file,
         "Write the process ID to FILE", "FILE"},
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &o->config,
         "Read options from a key file (group [qdbd]); the command line wins", "FILE"},
        {"version", 0, 0, G_OPTION_ARG_NONE, &o->version, "Print the version and exit", NULL},
        {"http", 0, 0, G_OPTION_ARG_STRING, &o->http,
         "Serve the status page, /status.json and /metrics on ADDR:PORT (default: off)",
         "ADDR:PORT"},
        {"allow-remote-stop", 0, 0, G_OPTION_ARG_NONE, &o->allow_remote_stop,
         "Leave the hive when a client asks (qdbsh stop_node); default: refuse", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
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
    if (rc == 0 && o->config && !o->version)
        rc = opts_load_file(o, o->config);
    return rc;
}

/* ---- logging ------------------------------------------------------------------ */

typedef struct qdbd_log {
    FILE *file;
    char *path;     /* absolute, for SIGHUP's reopen */
    bool console;
    int threshold;  /* 1 error .. 4 debug, as node_config.log_level */
} qdbd_log;

static qdbd_log g_qlog = {.threshold = 3}; /* the writer has no user data pointer of its own
                                             * lifetime: one logger per process */

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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t k = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    g_snprintf(when + k, sizeof(when) - k, ".%03ldZ", ts.tv_nsec / 1000000);
    if (l->file)
        fprintf(l->file, "%s %s %s: %s\n", when, level_name(rank), domain, msg);
    if (l->console || !l->file)
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
    g_info("stats: %" G_GUINT64_FORMAT " entries, %s; connections %" G_GUINT64_FORMAT
           " open (%" G_GUINT64_FORMAT " total, %" G_GUINT64_FORMAT " refused, %" G_GUINT64_FORMAT
           " reset); frames %" G_GUINT64_FORMAT " in, %" G_GUINT64_FORMAT " out, %" G_GUINT64_FORMAT
           " bad; requests %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " wrong node, %" G_GUINT64_FORMAT
           " unstable, %" G_GUINT64_FORMAT " duplicates); rpc timeouts %" G_GUINT64_FORMAT,
           d->store->count(d->store), qdb_node_is_stable(d->node) ? "stable" : "settling",
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
    g_info("ring: predecessor %s, successor %s, %s, %" G_GUINT64_FORMAT " entries", pa, sa,
           stable ? "stable" : "settling", d->store->count(d->store));
}

/* Fork; the parent waits for the child's start-up verdict on a pipe and
 * exits with it, so "qdbd -d" still fails with the right code and message. */
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

    /* -- validate everything before touching the system */
    qdb_addr self_addr;
    if (!qdb_addr_parse(&self_addr, o.address ? o.address : QDB_DEFAULT_ADDRESS) ||
        self_addr.ip == 0 || self_addr.port == 0) {
        rc = fail(EX_USAGE, "bad --address '%s': want a.b.c.d[:port], not 0.0.0.0 nor port 0",
                  o.address);
        goto out_opts;
    }
    qdb_addr http_addr;
    if (o.http && (!qdb_addr_parse(&http_addr, o.http) || http_addr.port == 0)) {
        rc = fail(EX_USAGE, "bad --http '%s': want a.b.c.d:port", o.http);
        goto out_opts;
    }
    n_peers = o.peers ? g_strv_length(o.peers) : 0;
    peers = g_new0(qdb_addr, n_peers + 1);
    size_t np = 0;
    for (size_t i = 0; i < n_peers; i++) {
        qdb_addr a;
        if (!qdb_addr_parse(&a, o.peers[i]) || a.ip == 0 || a.port == 0) {
            rc = fail(EX_USAGE, "bad --peer '%s': want a.b.c.d[:port]", o.peers[i]);
            goto out_opts;
        }
        if (!qdb_addr_eq(a, self_addr)) /* one config file can serve the whole hive */
            peers[np++] = a;
    }
    n_peers = np;
    qdb_id id;
    if (o.id && !qdb_id_parse(&id, o.id)) {
        rc = fail(EX_USAGE, "bad --id '%s': want 1 to 64 hex digits or #decimal", o.id);
        goto out_opts;
    }
    if (o.log_level && !log_level_parse(o.log_level, &g_qlog.threshold)) {
        rc = fail(EX_USAGE, "bad --log-level '%s': want debug, info, warning or error",
                  o.log_level);
        goto out_opts;
    }
    if (o.transient && o.sync) {
        rc = fail(EX_USAGE, "--sync and --transient exclude each other");
        goto out_opts;
    }
    if (o.daemonize && !o.log_file && o.log_console) {
        rc = fail(EX_USAGE, "--daemonize with --log-console only: the log would be lost");
        goto out_opts;
    }
    char *root = absolute(o.root ? o.root : QDBD_DEFAULT_ROOT);
    g_qlog.path = absolute(o.log_file);
    g_qlog.console = o.log_console;
    pid_path = absolute(o.pid_file);

    /* -- the system */
    if (o.daemonize && (rc = daemonize(&report_fd)) != 0)
        goto out_root;
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
    g_info("qdbd %s: node %s at %s, %s%s, %" G_GUINT64_FORMAT " entries, %zu peer(s)",
           PACKAGE_VERSION, hex, qdb_addr_format(self_addr, a),
           o.transient ? "transient (memory)" : root,
           o.transient ? "" : (o.sync ? " (sync)" : " (no-sync)"), d.store->count(d.store),
           n_peers);
    if (d.bdb)
        qdb_loop_every(d.loop, QDBD_DEFAULT_CHECKPOINT_PERIOD_US, on_checkpoint, &d);
    qdb_loop_every(d.loop, QDBD_DEFAULT_STATUS_PERIOD_US, on_status, &d);
    qdb_node_start(d.node, peers, n_peers);
    report_start(&report_fd, 0);

    /* -- run until a signal's departure completes.  Every wait is bounded:
     * the hand-over by QDBD_DEFAULT_LEAVE_TIMEOUT_US, the last writes by
     * QDBD_DEFAULT_DRAIN_TIMEOUT_US. */
    qdb_time_us left_at = 0;
    for (;;) {
        if (!qdb_loop_run_once(d.loop, d.signals ? 50 : -1))
            break;
        if (d.signals >= 2) {
            rc = 1;
            break;
        }
        if (!d.signals && qdb_node_leaving(d.node)) { /* a stop_node it was allowed to obey */
            g_info("leaving the hive on request (at most %u s)",
                   (unsigned)(QDBD_DEFAULT_LEAVE_TIMEOUT_US / QDB_US_PER_S));
            d.signals = 1;
            d.leave_deadline = qdbd_now(&d) + QDBD_DEFAULT_LEAVE_TIMEOUT_US;
        }
        if (!d.signals)
            continue;
        qdb_time_us now = qdbd_now(&d);
        if (qdb_node_left(d.node)) {
            if (!left_at) {
                left_at = now;
                g_info("left the hive; %" G_GUINT64_FORMAT " entries remain here",
                       d.store->count(d.store));
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

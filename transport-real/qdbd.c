/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd: one node of a qdb hive, driven by the epoll loop (loop.h) over TCP,
 * storing its entries in Berkeley DB (storage/bdb.h) or in memory
 * (storage/memory.h).
 *
 * Sections (the options are in qdbd_options.c, the log writer in qdbd_log.c)
 *   logging: the process's one logger, set up from the options
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
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "node/codec.h"
#include "node/error.h"
#include "node/node.h"
#include "storage/bdb.h"
#include "storage/memory.h"
#include "transport-real/http.h"
#include "transport-real/loop.h"
#include "transport-real/qdbd_log.h"
#include "transport-real/qdbd_options.h"
#include "transport-real/tls.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

/* ---- logging ------------------------------------------------------------------ */

/* The writer has no user data pointer of its own lifetime: one logger per
 * process.  threshold is set from --log-level before the writer is installed. */
static qdbd_log g_qlog;

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
    qdb_tls *tls;         /* --hive-key-file's, or NULL: plaintext */
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
           " bad; %" G_GUINT64_FORMAT " refused for the hive key; requests %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT " wrong node, %" G_GUINT64_FORMAT
           " unstable, %" G_GUINT64_FORMAT " duplicates); rpc timeouts %" G_GUINT64_FORMAT
           "; limits: %" G_GUINT64_FORMAT " sessions refused, %" G_GUINT64_FORMAT " idle closed, %"
           G_GUINT64_FORMAT " oversized, %" G_GUINT64_FORMAT " input waits, %" G_GUINT64_FORMAT
           " stalled closed, %" G_GUINT64_FORMAT " handshakes timed out",
           entries, entries_word(entries), qdb_node_is_stable(d->node) ? "stable" : "settling",
           ls.connections_open, ls.connections_total, ls.refused, ls.resets, ls.frames_in,
           ls.frames_out, ls.bad_frames, ls.auth_failures, ns->requests, ns->wrong_node, ns->unstable,
           ns->duplicates, ns->rpc_timeouts, ls.sessions_refused, ls.idle_closed, ls.oversized,
           ls.input_waits, ls.stalled_closed, ls.handshake_closed);
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
            if (g_qlog.path && !qdbd_log_open(&g_qlog, err, sizeof(err)))
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
        return qdbd_fail(EX_OSERR, "pipe: %s", g_strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return qdbd_fail(EX_OSERR, "fork: %s", g_strerror(errno));
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
        return qdbd_fail(EX_OSERR, "setsid: %s", g_strerror(errno));
    /* Paths were made absolute before the fork; do not pin the directory
     * we were started from. */
    if (chdir("/") < 0)
        return qdbd_fail(EX_OSERR, "chdir /: %s", g_strerror(errno));
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

/* BYTES with an optional K, M, G or T (powers of 1024): false when it is not
 * that, or does not fit 64 bits. */
static bool parse_bytes(const char *text, uint64_t *out)
{
    static const char units[] = "KMGT";
    char *end;
    errno = 0;
    if (!g_ascii_isdigit(*text))
        return false;
    guint64 v = g_ascii_strtoull(text, &end, 10);
    if (errno)
        return false;
    unsigned shift = 0;
    const char *u = *end ? strchr(units, g_ascii_toupper(*end)) : NULL;
    if (u) {
        shift = 10 * (unsigned)(u - units + 1);
        end++;
    }
    if (*end || (shift && v > (G_MAXUINT64 >> shift)))
        return false;
    *out = v << shift;
    return true;
}

/* --gen-key: one fresh key on standard output.  When that is a file (the
 * usual "> hive.key"), take away what others could read: qdbd refuses a key
 * file they can. */
static int gen_key(void)
{
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    if (qdb_hive_key_generate(line, err) != QDB_OK)
        return qdbd_fail(EX_SOFTWARE, "%s", err);
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & S_IRWXO) &&
        fchmod(STDOUT_FILENO, st.st_mode & 0770) < 0)
        return qdbd_fail(EX_CANTCREAT, "cannot make the key file private: %s", g_strerror(errno));
    fputs(line, stdout);
    memset(line, 0, sizeof(line));
    return fflush(stdout) == 0 ? 0 : qdbd_fail(EX_IOERR, "cannot write the key: %s",
                                               g_strerror(errno));
}

/* Without a key a node takes anyone who reaches it: fine on loopback. */
static bool open_to_strangers(qdb_addr self, const qdb_tls *tls)
{
    return tls == NULL && (self.ip >> 24) != 127;
}
#define STRANGERS_WARNING \
    "listening on %s without a hive key: anyone who reaches it can join the hive, read and " \
    "write (see --gen-key and --hive-key-file in qdbd(8))"

/* ---- limits -------------------------------------------------------------------- */

/* A size in bytes (parse_bytes) in [min, max]. */
static bool parse_size(const char *s, guint64 min, guint64 max, guint64 *out)
{
    guint64 v;
    if (!s || !parse_bytes(s, &v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* The limits of the options (already checked) and the descriptors: sessions
 * never take the last QDBD_FD_RESERVE descriptors, which Berkeley DB, the
 * node's own connections and the HTTP server need.  The soft descriptor
 * limit is raised toward the hard one when the sessions need it. */
static unsigned sessions_cap(unsigned want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want;
    rlim_t need = (rlim_t)want + QDBD_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return want;
    unsigned cap = rl.rlim_cur > 2 * QDBD_FD_RESERVE ? (unsigned)(rl.rlim_cur - QDBD_FD_RESERVE)
                                                     : (unsigned)(rl.rlim_cur / 2);
    g_warning("--sessions=%u lowered to %u: the descriptor limit is %llu, and %d are kept for "
              "storage and peers", want, cap, (unsigned long long)rl.rlim_cur, QDBD_FD_RESERVE);
    return cap;
}

/* Is this address one of the node's neighbours (its predecessor or a
 * successor)?  Same host is enough: a node speaks from an ephemeral port.
 * Their connections are taken over --sessions, up to QDBD_PEER_RESERVE. */
static bool is_neighbour(void *arg, qdb_addr from)
{
    qdbd *d = arg;
    if (!d->node)
        return false;
    const qdb_peer *p = qdb_node_predecessor(d->node);
    if (p && p->addr.ip == from.ip)
        return true;
    qdb_peer succ[QDB_SUCCLIST_MAX];
    unsigned n = qdb_node_succlist(d->node, succ, QDB_SUCCLIST_MAX);
    for (unsigned i = 0; i < n; i++)
        if (succ[i].addr.ip == from.ip)
            return true;
    return false;
}

static char *absolute(const char *path)
{
    return path ? g_canonicalize_filename(path, NULL) : NULL;
}

/* Option `which`'s value, text (NULL: not given, *out keeps the default),
 * as a whole number in [min, max]; false after saying what is wrong, with
 * the exit code in *rc. */
static bool opt_unsigned(const qdbd_opts *o, int which, const char *text, guint64 min,
                         guint64 max, const char *want, guint64 *out, int *rc)
{
    if (!text || g_ascii_string_to_unsigned(text, 10, min, max, out, NULL))
        return true;
    *rc = qdbd_opt_fail(o, which, "'%s': want %s, %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT,
                        text, want, min, max);
    return false;
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
    int rc = qdbd_opts_parse(&o, &argc, &argv);
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
        qdbd_print_config(stdout);
        goto out_opts;
    }
    if (o.gen_key) {
        rc = gen_key();
        goto out_opts;
    }

    /* -- validate everything before touching the system */
    qdb_addr self_addr;
    if (!qdb_addr_parse(&self_addr, o.address ? o.address : QDB_DEFAULT_ADDRESS) ||
        self_addr.ip == 0 || self_addr.port == 0) {
        rc = qdbd_opt_fail(&o, QO_ADDRESS, "'%s': want a.b.c.d[:port], not 0.0.0.0 nor port 0",
                      o.address);
        goto out_opts;
    }
    qdb_addr http_addr;
    if (o.http && (!qdb_addr_parse(&http_addr, o.http) || http_addr.port == 0)) {
        rc = qdbd_opt_fail(&o, QO_HTTP, "'%s': want a.b.c.d:port", o.http);
        goto out_opts;
    }
    n_peers = o.peers ? g_strv_length(o.peers) : 0;
    peers = g_new0(qdb_addr, n_peers + 1);
    size_t np = 0;
    for (size_t i = 0; i < n_peers; i++) {
        qdb_addr a;
        if (!qdb_addr_parse(&a, o.peers[i]) || a.ip == 0 || a.port == 0) {
            rc = qdbd_opt_fail(&o, QO_PEER, "'%s': want a.b.c.d[:port]", o.peers[i]);
            goto out_opts;
        }
        if (!qdb_addr_eq(a, self_addr)) /* one config file can serve the whole hive */
            peers[np++] = a;
    }
    n_peers = np;
    qdb_id id;
    if (o.id && !qdb_id_parse(&id, o.id)) {
        rc = qdbd_opt_fail(&o, QO_ID, "'%s': want 1 to 64 hex digits or #decimal", o.id);
        goto out_opts;
    }
    if (!qdbd_log_level_parse(o.log_level ? o.log_level : QDBD_DEFAULT_LOG_LEVEL, &g_qlog.threshold)) {
        rc = qdbd_opt_fail(&o, QO_LOG_LEVEL, "'%s': want debug, info, warning or error",
                      o.log_level);
        goto out_opts;
    }
    unsigned replication = 0; /* not given: the hive's */
    if (o.replication) {
        guint64 k;
        if (!g_ascii_string_to_unsigned(o.replication, 10, 1, QDB_REPLICATION_MAX, &k, NULL)) {
            rc = qdbd_opt_fail(&o, QO_REPLICATION, "'%s': want 1 to %d", o.replication,
                          QDB_REPLICATION_MAX);
            goto out_opts;
        }
        replication = (unsigned)k;
    }
    guint64 grace_s = QDB_DEFAULT_TOMBSTONE_GRACE_S, dead_s = 0,
            repair_rate = QDB_DEFAULT_REPAIR_RATE;
    if (!opt_unsigned(&o, QO_TOMBSTONE_GRACE, o.tombstone_grace, 1, QDB_TOMBSTONE_GRACE_MAX_S,
                      "whole seconds", &grace_s, &rc) ||
        !opt_unsigned(&o, QO_DEAD_NODE_GRACE, o.dead_node_grace, 0, QDB_TOMBSTONE_GRACE_MAX_S,
                      "whole seconds", &dead_s, &rc) ||
        !opt_unsigned(&o, QO_REPAIR_RATE, o.repair_rate, 1, G_MAXUINT32, "records a second",
                      &repair_rate, &rc))
        goto out_opts;
    /* -- limits */
    guint64 sessions = QDBD_DEFAULT_SESSIONS, idle_s = QDBD_DEFAULT_IDLE_TIMEOUT_S,
            max_content = QDB_DEFAULT_MAX_CONTENT, input_memory = QDBD_DEFAULT_INPUT_MEMORY,
            amo_bytes = QDB_DEFAULT_DEDUP_BYTES, log_rate = QDBD_DEFAULT_LOG_RATE;
    guint64 handshake_s = QDBD_DEFAULT_HANDSHAKE_TIMEOUT_S;
    if (!opt_unsigned(&o, QO_HANDSHAKE_TIMEOUT, o.handshake_timeout, 0, 3600,
                      "whole seconds (0: never)", &handshake_s, &rc))
        goto out_opts;
    if (o.sessions && !g_ascii_string_to_unsigned(o.sessions, 10, 1, 1000000, &sessions, NULL)) {
        rc = qdbd_opt_fail(&o, QO_SESSIONS, "'%s': want 1 to 1000000", o.sessions);
        goto out_opts;
    }
    if (o.idle_timeout &&
        !g_ascii_string_to_unsigned(o.idle_timeout, 10, 0, 31536000, &idle_s, NULL)) {
        rc = qdbd_opt_fail(&o, QO_IDLE_TIMEOUT, "'%s': want whole seconds, 0 (never) to 31536000",
                           o.idle_timeout);
        goto out_opts;
    }
    /* twice the content and the other fields must fit a frame */
    const guint64 content_max = (QDB_FRAME_MAX - QDB_FRAME_FOR_CONTENT(0)) / 2;
    if (o.max_content_size && !parse_size(o.max_content_size, 1024, content_max, &max_content)) {
        rc = qdbd_opt_fail(&o, QO_MAX_CONTENT_SIZE, "'%s': want bytes (K, M, G), 1K to %" G_GUINT64_FORMAT,
                           o.max_content_size, content_max);
        goto out_opts;
    }
    size_t max_frame = QDB_FRAME_FOR_CONTENT(max_content);
    if (o.input_memory && !parse_size(o.input_memory, max_frame, G_MAXSIZE, &input_memory)) {
        rc = qdbd_opt_fail(&o, QO_INPUT_MEMORY, "'%s': want bytes (K, M, G), at least the largest "
                           "frame (%zu, twice --max-content-size and 64K)", o.input_memory,
                           max_frame);
        goto out_opts;
    }
    if (!o.input_memory && input_memory < max_frame)
        input_memory = max_frame;
    if (o.amo_bytes && !parse_size(o.amo_bytes, 1024, G_MAXSIZE, &amo_bytes)) {
        rc = qdbd_opt_fail(&o, QO_AMO_BYTES, "'%s': want bytes (K, M, G), at least 1K",
                           o.amo_bytes);
        goto out_opts;
    }
    if (o.log_rate && !g_ascii_string_to_unsigned(o.log_rate, 10, 0, 1000000, &log_rate, NULL)) {
        rc = qdbd_opt_fail(&o, QO_LOG_RATE, "'%s': want lines a second, 0 (no limit) to 1000000",
                           o.log_rate);
        goto out_opts;
    }
    g_qlog.rate = (unsigned)log_rate;
    qdb_bdb_options bo = qdb_bdb_options_defaults();
    bo.sync = o.sync ? 1 : 0;
    bo.disk_reserve = QDBD_DEFAULT_DISK_RESERVE;
    if (o.max_depot_size && !parse_bytes(o.max_depot_size, &bo.max_depot_bytes)) {
        rc = qdbd_opt_fail(&o, QO_MAX_DEPOT_SIZE, "'%s': want bytes, with K, M, G or T",
                           o.max_depot_size);
        goto out_opts;
    }
    guint64 warn = bo.warn_percent;
    if (o.depot_warning &&
        !g_ascii_string_to_unsigned(o.depot_warning, 10, 0, 100, &warn, NULL)) {
        rc = qdbd_opt_fail(&o, QO_DEPOT_WARNING, "'%s': want a percentage, 0 to 100",
                           o.depot_warning);
        goto out_opts;
    }
    bo.warn_percent = (unsigned)warn;
    if (o.disk_reserve && !parse_bytes(o.disk_reserve, &bo.disk_reserve)) {
        rc = qdbd_opt_fail(&o, QO_DISK_RESERVE, "'%s': want bytes, with K, M, G or T",
                           o.disk_reserve);
        goto out_opts;
    }
    if (o.transient && o.max_depot_size) {
        rc = qdbd_opt_fail(&o, o.origin[QO_TRANSIENT] > 0 ? QO_TRANSIENT : QO_MAX_DEPOT_SIZE,
                           "--max-depot-size limits a store on disk, not --transient");
        goto out_opts;
    }
    if (o.transient && o.sync) {
        /* blame the one that came from the file, if either did */
        rc = qdbd_opt_fail(&o, o.origin[QO_SYNC] > 0 ? QO_SYNC : QO_TRANSIENT,
                      "--sync and --transient exclude each other");
        goto out_opts;
    }
    if (o.hive_key_file) {
        char kerr[QDB_ERRMSG_SIZE];
        int krc;
        if (!(d.tls = qdb_tls_from_file(o.hive_key_file, QDB_PEER_NODE, &krc, kerr))) {
            /* unreadable: as an unreadable config file; bad: a config error */
            rc = qdbd_fail(krc == QDB_E_INVALID_ARGUMENT ? EX_NOINPUT
                           : krc == QDB_E_INTERNAL     ? EX_SOFTWARE
                                                       : EX_CONFIG,
                           "hive key file %s", kerr);
            goto out_opts;
        }
    }
    if (o.check_config) {
        if (open_to_strangers(self_addr, d.tls)) {
            char a[QDB_ADDR_STRLEN];
            fprintf(stderr, "qdbd: warning: " STRANGERS_WARNING "\n",
                    qdb_addr_format(self_addr, a));
        }
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
    if (g_qlog.path && !qdbd_log_open(&g_qlog, err, sizeof(err))) {
        rc = qdbd_fail(EX_CANTCREAT, "%s", err);
        goto out_root;
    }
    g_log_set_writer_func(qdbd_log_writer, &g_qlog, NULL);
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
        rc = qdbd_fail(EX_OSERR, "signalfd: %s", g_strerror(errno));
        goto out_root;
    }

    d.loop = qdb_loop_new(err);
    if (!d.loop) {
        rc = qdbd_fail(EX_OSERR, "%s", err);
        goto out_sigfd;
    }
    d.ep = qdb_loop_attach(d.loop, &self_addr, NULL, NULL, err);
    if (!d.ep) {
        rc = qdbd_fail(EX_UNAVAILABLE, "%s", err);
        goto out_loop;
    }
    if (d.tls)
        qdb_loop_endpoint_secure(d.ep, d.tls);
    qdb_loop_limits lim = {.sessions = sessions_cap((unsigned)sessions),
                           .peer_reserve = QDBD_PEER_RESERVE,
                           .is_peer = is_neighbour, .is_peer_arg = &d,
                           .idle_timeout = idle_s * QDB_US_PER_S,
                           .max_frame = max_frame, .input_memory = input_memory,
                           .handshake_timeout = handshake_s * QDB_US_PER_S};
    qdb_loop_set_limits(d.loop, &lim);

    if (o.transient) {
        d.store = qdb_storage_memory_new();
    } else {
        char serr[QDB_ERRMSG_SIZE];
        d.store = qdb_storage_bdb_open(root, &bo, serr);
        if (!d.store) {
            rc = strstr(serr, root) ? qdbd_fail(EX_CANTCREAT, "%s", serr)
                                    : qdbd_fail(EX_CANTCREAT, "store under %s: %s", root, serr);
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
                rc = qdbd_fail(EX_CONFIG, "%s: not a node ID; remove it or pass --id", id_path);
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
            rc = qdbd_fail(EX_CANTCREAT, "cannot write %s: %s", id_path, ge->message);
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
        .enable_purge_all = o.enable_purge_all,
        .enable_stop = o.enable_stop || o.allow_remote_stop,
        .replication = replication,
        .tombstone_grace = grace_s * QDB_US_PER_S,
        .max_content = max_content,
        .dedup_bytes = amo_bytes,
        .dead_node_grace = dead_s * QDB_US_PER_S,
        .repair_rate = (unsigned)repair_rate,
    };
    qdb_node_config_defaults(&cfg);
    char nerr[QDB_ERRMSG_SIZE];
    d.node = qdb_node_new(&cfg, qdb_loop_endpoint_clock(d.ep), qdb_loop_endpoint_transport(d.ep),
                          qdb_loop_endpoint_random(d.ep), d.store, nerr);
    if (!d.node) {
        rc = qdbd_fail(EX_SOFTWARE, "cannot create the node: %s", nerr);
        goto out_store;
    }
    qdb_loop_endpoint_bind(d.ep, &qdb_node_inbound, d.node);
    if (o.http && !(d.http = qdb_http_start(d.loop, d.node, &http_addr, nerr))) {
        rc = qdbd_fail(EX_UNAVAILABLE, "%s", nerr);
        goto out_node;
    }
    if (!qdb_loop_watch_fd(d.loop, d.sigfd, on_signal, &d)) {
        rc = qdbd_fail(EX_OSERR, "cannot watch the signalfd: %s", g_strerror(errno));
        goto out_node;
    }
    if (pid_path) {
        FILE *pf = fopen(pid_path, "w");
        if (!pf || fprintf(pf, "%ld\n", (long)getpid()) < 0 || fclose(pf) != 0) {
            rc = qdbd_fail(EX_CANTCREAT, "cannot write pid file %s: %s", pid_path, g_strerror(errno));
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
    if (d.tls)
        g_info("hive key %s: every connection is TLS 1.3-PSK, plaintext is refused",
               o.hive_key_file);
    else if (open_to_strangers(self_addr, d.tls))
        g_warning(STRANGERS_WARNING, a);
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
            rc = qdbd_fail(EX_CONFIG, "%s", qdb_node_refusal(d.node));
            break;
        }
        if (d.signals >= 2) {
            rc = 1;
            break;
        }
        if (qdb_node_storage_failed(d.node) && rc == 0) {
            /* No hand-over is possible: the node told its neighbours it
             * left without its entries; send that, then exit. */
            g_critical("the store under %s failed beyond repair: left the hive without "
                       "hand-over (the neighbours take over the arc); exiting -- a restart "
                       "recovers the store", root);
            notify("STOPPING=1");
            rc = EX_IOERR;
            d.signals = 1;
            d.leave_deadline = qdbd_now(&d) + QDBD_DEFAULT_LEAVE_TIMEOUT_US;
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
    d.node = NULL; /* is_neighbour() */
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
    qdbd_log_clear(&g_qlog);
out_opts:
    qdb_tls_free(d.tls);
    g_free(pid_path);
    g_free(id_path);
    g_free(peers);
    qdbd_opts_clear(&o);
    return rc;
}

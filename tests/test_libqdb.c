/* SPDX-License-Identifier: BSD-2-Clause */
/* CUnit suite for libqdb (client/qdb.h), through the public API only.
 *
 * Sections:
 *   - the daemon: start ${QDBD:-transport-real/qdbd} --transient on a free
 *     loopback port, and make sure it dies in every path (atexit, fatal
 *     signals, and PR_SET_PDEATHSIG should this process be SIGKILLed)
 *   - arguments: errors that need no server (NULL handle, bad URIs, alias
 *     length, a closed port refuses quickly)
 *   - operations against the daemon, then the daemon killed under the handle
 * Every wait is bounded.  Without the qdbd binary the server suite is
 * skipped: exit 77 when the argument suite passed.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/qdb.h"
#include "tests/testutil.h"

#define MS_WAIT_READY 10000 /* the daemon must answer within this */

/* ---- the daemon --------------------------------------------------------------- */

/* Daemon 0 serves the qdbd suite; 0, 1 and 2 form the hive of three. */
#define DAEMONS 3
static volatile sig_atomic_t daemon_pids[DAEMONS]; /* read by the signal handler */
static char daemon_uris[DAEMONS][64];
static const char *qdbd_path;

/* A port nobody listens on right now: bind port 0, read it, close. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void daemon_kill_one(int i)
{
    pid_t pid = (pid_t)daemon_pids[i];
    if (pid <= 0)
        return;
    daemon_pids[i] = 0;
    kill(pid, SIGKILL);
    /* SIGKILL cannot be ignored: this returns at once. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

static void daemon_kill(void)
{
    for (int i = 0; i < DAEMONS; i++)
        daemon_kill_one(i);
}

/* Async-signal-safe: kill and let the default action take its course. */
static void on_fatal_signal(int sig)
{
    for (int i = 0; i < DAEMONS; i++) {
        pid_t pid = (pid_t)daemon_pids[i];
        if (pid > 0)
            kill(pid, SIGKILL);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_cleanup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    atexit(daemon_kill);
    int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS };
    for (size_t i = 0; i < G_N_ELEMENTS(sigs); i++)
        signal(sigs[i], on_fatal_signal);
}

/* Start daemon i, alone or joining peer ("HOST:PORT"), and wait until it
 * answers. */
static int daemon_start_at(int i, const char *peer)
{
    install_cleanup();
    int port = free_port();
    if (port <= 0)
        return -1;
    char addr[32], join[64], logname[64];
    g_snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    g_snprintf(daemon_uris[i], sizeof daemon_uris[i], "qdb://%s", addr);
    g_snprintf(join, sizeof join, "--peer=%s", peer != NULL ? peer : "");
    g_snprintf(logname, sizeof logname, i ? "test_libqdb.qdbd%d.log" : "test_libqdb.qdbd.log", i);

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* Die with the test even if it is SIGKILLed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int log = open(logname, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (log >= 0) {
            dup2(log, STDOUT_FILENO);
            dup2(log, STDERR_FILENO);
            close(log);
        }
        /* remove_all enabled (test_remove_all) by the hive's first node; stop
         * is not (test_admin expects QDB_E_DISABLED) */
        execl(qdbd_path, qdbd_path, "-a", addr, "--transient",
              peer != NULL ? join : "--enable-purge-all", (char *)NULL);
        _exit(127);
    }
    daemon_pids[i] = pid;

    /* Ready when a handle connects (refusals come back at once). */
    qdb_handle_t h;
    if (qdb_open(&h, qdb_p_tcp) != QDB_OK)
        return -1;
    qdb_set_option(h, qdb_o_operation_timeout, 2000);
    gint64 until = g_get_monotonic_time() + (gint64)MS_WAIT_READY * 1000;
    int rc = -1;
    while (g_get_monotonic_time() < until) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            daemon_pids[i] = 0;
            fprintf(stderr, "qdbd exited at start (see test_libqdb.qdbd.log)\n");
            break;
        }
        if (qdb_connect(h, daemon_uris[i]) == QDB_OK) {
            rc = 0;
            break;
        }
        g_usleep(50 * 1000);
    }
    qdb_close(h);
    if (rc != 0)
        daemon_kill_one(i);
    return rc;
}


/* ---- arguments: no server needed ----------------------------------------------- */

static void test_open_close(void)
{
    CU_ASSERT_EQUAL(qdb_open(NULL, qdb_p_tcp), QDB_E_INVALID_ARGUMENT);
    qdb_handle_t h = (qdb_handle_t)1;
    CU_ASSERT_EQUAL(qdb_open(&h, (qdb_protocol_t)42), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT_EQUAL(qdb_open(&h, qdb_p_tcp), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(h);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);
    CU_ASSERT_EQUAL(qdb_close(NULL), QDB_E_INVALID_ARGUMENT);
}

static void test_null_handle(void)
{
    char buf[4];
    size_t len = sizeof buf;
    const void *p = NULL;
    CU_ASSERT_EQUAL(qdb_connect(NULL, "127.0.0.1"), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(NULL, qdb_o_operation_timeout, 1000), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_put(NULL, "a", "x", 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_update(NULL, "a", "x", 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get(NULL, "a", buf, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_buffer(NULL, "a", &p, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_update(NULL, "a", "x", 1, &p, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_compare_and_swap(NULL, "a", "x", 1, "y", 1, &p, &len),
                    QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_remove(NULL, "a"), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_remove_all(NULL), QDB_E_INVALID_ARGUMENT);
    qdb_metadata_t meta;
    qdb_time_t t;
    uint64_t n;
    const char **aliases;
    CU_ASSERT_EQUAL(qdb_put_with_expiry(NULL, "a", "x", 1, 0), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_update_with_expiry(NULL, "a", "x", 1, 0), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_expires_at(NULL, "a", 0), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_expires_from_now(NULL, "a", 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_expiry(NULL, "a", &t), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_remove(NULL, "a", &p, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_remove_if(NULL, "a", "x", 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_metadata(NULL, "a", &meta), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_get(NULL, "a", 10, &aliases, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_count(NULL, "a", &n), QDB_E_INVALID_ARGUMENT);
    qdb_free_buffer(NULL, buf); /* harmless */
}

static void test_bad_arguments(void)
{
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    char buf[4];
    size_t len = sizeof buf;
    const void *p = NULL;

    /* NULL pointers */
    CU_ASSERT_EQUAL(qdb_connect(h, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_put(h, NULL, "x", 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_put(h, "a", NULL, 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get(h, "a", buf, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get(h, "a", NULL, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_buffer(h, "a", NULL, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_update(h, "a", "x", 1, NULL, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_compare_and_swap(h, "a", "x", 1, NULL, 1, &p, &len),
                    QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_remove(h, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_operation_timeout, 0), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(h, (qdb_option_t)99, 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_operation_timeout, 1000), QDB_OK);

    /* aliases: 1..1024 bytes */
    char *long_alias = g_malloc(QDB_MAX_ALIAS + 2);
    memset(long_alias, 'a', QDB_MAX_ALIAS + 1);
    long_alias[QDB_MAX_ALIAS + 1] = '\0';
    CU_ASSERT_EQUAL(qdb_put(h, long_alias, "x", 1), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_get_buffer(h, long_alias, &p, &len), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_remove(h, long_alias), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_put(h, "", "x", 1), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_get_remove(h, long_alias, &p, &len), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_remove_if(h, "", "x", 1), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_expires_at(h, long_alias, 0), QDB_E_ALIAS_TOO_LONG);
    qdb_metadata_t meta;
    CU_ASSERT_EQUAL(qdb_get_metadata(h, "", &meta), QDB_E_ALIAS_TOO_LONG);
    const char **aliases;
    uint64_t n;
    CU_ASSERT_EQUAL(qdb_prefix_get(h, long_alias, 10, &aliases, &len), QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(qdb_prefix_count(h, long_alias, &n), QDB_E_ALIAS_TOO_LONG);
    g_free(long_alias);

    /* NULL pointers and bad expiries or bounds, new calls */
    CU_ASSERT_EQUAL(qdb_get_remove(h, "a", NULL, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_remove_if(h, "a", NULL, 1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_metadata(h, "a", NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_get_expiry(h, "a", NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_get(h, NULL, 10, &aliases, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_get(h, "a", 10, NULL, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_get(h, "a", 1000001, &aliases, &len), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_prefix_count(h, "a", NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_put_with_expiry(h, "a", "x", 1, -1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_update_with_expiry(h, "a", "x", 1, QDB_MAX_EXPIRY_TIME + 1),
                    QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_expires_at(h, "a", -5), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_expires_from_now(h, "a", -1), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_expires_from_now(h, "a", QDB_MAX_EXPIRY_TIME), QDB_E_INVALID_ARGUMENT);
    /* valid, but not connected */
    CU_ASSERT_EQUAL(qdb_expires_at(h, "a", QDB_MAX_EXPIRY_TIME), QDB_E_NOT_CONNECTED);
    CU_ASSERT_EQUAL(qdb_prefix_count(h, "", &n), QDB_E_NOT_CONNECTED);
    qdb_operation_t op = {.type = qdb_op_get, .alias = "a"};
    CU_ASSERT_EQUAL(qdb_run_batch(h, &op, 1), 0);
    CU_ASSERT_EQUAL(op.error, QDB_E_NOT_CONNECTED);

    /* not connected yet */
    CU_ASSERT_EQUAL(qdb_put(h, "a", "x", 1), QDB_E_NOT_CONNECTED);
    CU_ASSERT_EQUAL(qdb_remove_all(h), QDB_E_NOT_CONNECTED);

    /* URIs */
    const char *bad[] = { "", "qdb://", "localhost:", "qdb://localhost:0", "127.0.0.1:",
                          "127.0.0.1:99999", "127.0.0.1:0", "qdb://127.0.0.1:2836/x",
                          "http://127.0.0.1:2836", "::1", "[::1]:2836", "127.0.0.1:28a" };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        qdb_error_t rc = qdb_connect(h, bad[i]);
        if (rc != QDB_E_INVALID_ARGUMENT)
            fprintf(stderr, "\n  URI \"%s\": %s\n", bad[i], qdb_error(rc));
        CU_ASSERT_EQUAL(rc, QDB_E_INVALID_ARGUMENT);
    }
    /* administration needs a node: the connected one, or a valid address */
    const char *json = NULL;
    CU_ASSERT_EQUAL(qdb_node_status(h, NULL, &json), QDB_E_NOT_CONNECTED);
    CU_ASSERT_PTR_NULL(json);
    CU_ASSERT_EQUAL(qdb_ping(h, NULL, NULL), QDB_E_NOT_CONNECTED);
    CU_ASSERT_EQUAL(qdb_ping(h, "[::1]:2836", NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_node_stop(h, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_hive_status(h, "127.0.0.1:0", &json), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_node_config(NULL, NULL, &json), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_node_topology(h, NULL, NULL), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);
}

static void test_refused(void)
{
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    int port = free_port();
    CU_ASSERT_FATAL(port > 0);
    char uri[64];
    gint64 t0 = g_get_monotonic_time();
    g_snprintf(uri, sizeof uri, "127.0.0.1:%d", port);
    CU_ASSERT_EQUAL(qdb_connect(h, uri), QDB_E_CONNECTION_REFUSED);
    g_snprintf(uri, sizeof uri, "qdb://127.0.0.1:%d", port);
    CU_ASSERT_EQUAL(qdb_connect(h, uri), QDB_E_CONNECTION_REFUSED);
    gint64 took = g_get_monotonic_time() - t0;
    CU_ASSERT(took < 2 * G_USEC_PER_SEC);
    /* a failed connect leaves the handle unconnected */
    CU_ASSERT_EQUAL(qdb_put(h, "a", "x", 1), QDB_E_NOT_CONNECTED);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);
}

static void test_strings(void)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(qdb_version());
    CU_ASSERT(g_str_has_prefix(qdb_version(), "qdb "));
    CU_ASSERT_PTR_NOT_NULL(qdb_error(QDB_OK));
    CU_ASSERT_PTR_NOT_NULL(qdb_error(QDB_E_ALIAS_NOT_FOUND));
    CU_ASSERT_PTR_NOT_NULL(qdb_error((qdb_error_t)12345));
    CU_ASSERT_STRING_NOT_EQUAL(qdb_error(QDB_E_TIMEOUT), qdb_error(QDB_E_ALIAS_NOT_FOUND));
    /* <qdb/error.h> declares qdb_strerror: the library must export it (this
     * program links libqdb's shared object, so a hidden symbol fails the link) */
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_TIMEOUT), qdb_error(QDB_E_TIMEOUT));
}

/* ---- against a real qdbd -------------------------------------------------------- */

static qdb_handle_t H;

/* H, connected to daemon i; bounded: no call may hang the suite for a minute */
static int open_H(int i, int timeout_ms)
{
    if (qdb_open(&H, qdb_p_tcp) != QDB_OK)
        return 1;
    qdb_set_option(H, qdb_o_operation_timeout, timeout_ms);
    return qdb_connect(H, daemon_uris[i]) == QDB_OK ? 0 : 1;
}

static int server_init(void)
{
    return daemon_start_at(0, NULL) != 0 ? 1 : open_H(0, 10000);
}

static int server_clean(void)
{
    if (H != NULL)
        qdb_close(H);
    H = NULL;
    daemon_kill();
    return 0;
}

/* Assert that alias holds exactly (want, want_len). */
static void expect_content(const char *alias, const void *want, size_t want_len)
{
    const void *p = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(qdb_get_buffer(H, alias, &p, &len), QDB_OK);
    CU_ASSERT_EQUAL(len, want_len);
    CU_ASSERT_PTR_NOT_NULL(p);
    if (len == want_len && want_len > 0)
        CU_ASSERT(memcmp(p, want, len) == 0);
    qdb_free_buffer(H, p);
}

static void test_put_get(void)
{
    CU_ASSERT_EQUAL(qdb_put(H, "entry", "thisismyentry", 13), QDB_OK);
    CU_ASSERT_EQUAL(qdb_put(H, "entry", "other", 5), QDB_E_ALIAS_ALREADY_EXISTS);
    char buf[64];
    size_t len = sizeof buf;
    CU_ASSERT_EQUAL(qdb_get(H, "entry", buf, &len), QDB_OK);
    CU_ASSERT_EQUAL(len, 13);
    CU_ASSERT(memcmp(buf, "thisismyentry", 13) == 0);
    expect_content("entry", "thisismyentry", 13);
    len = sizeof buf;
    CU_ASSERT_EQUAL(qdb_get(H, "no such entry", buf, &len), QDB_E_ALIAS_NOT_FOUND);
}

static void test_buffer_too_small(void)
{
    CU_ASSERT_EQUAL(qdb_update(H, "small", "0123456789", 10), QDB_OK);
    char buf[16];
    memset(buf, 'z', sizeof buf);
    size_t len = 4;
    CU_ASSERT_EQUAL(qdb_get(H, "small", buf, &len), QDB_E_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(len, 10);
    CU_ASSERT_EQUAL(buf[0], 'z'); /* nothing copied */
    len = 0;
    CU_ASSERT_EQUAL(qdb_get(H, "small", NULL, &len), QDB_E_BUFFER_TOO_SMALL);
    CU_ASSERT_EQUAL(len, 10);
    len = 10;
    CU_ASSERT_EQUAL(qdb_get(H, "small", buf, &len), QDB_OK);
    CU_ASSERT(memcmp(buf, "0123456789", 10) == 0);
}

static void test_update(void)
{
    CU_ASSERT_EQUAL(qdb_update(H, "upd", "one", 3), QDB_OK); /* creates */
    expect_content("upd", "one", 3);
    CU_ASSERT_EQUAL(qdb_update(H, "upd", "second", 6), QDB_OK); /* replaces */
    expect_content("upd", "second", 6);
    CU_ASSERT_EQUAL(qdb_update(H, "upd", NULL, 0), QDB_OK); /* empty content */
    expect_content("upd", NULL, 0);
}

static void test_get_update(void)
{
    const void *old = NULL;
    size_t old_len = 99;
    CU_ASSERT_EQUAL(qdb_get_update(H, "gu", "x", 1, &old, &old_len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_PTR_NULL(old);
    CU_ASSERT_EQUAL(qdb_put(H, "gu", "before", 6), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_update(H, "gu", "after", 5, &old, &old_len), QDB_OK);
    CU_ASSERT_EQUAL(old_len, 6);
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT(memcmp(old, "before", 6) == 0);
    qdb_free_buffer(H, old);
    expect_content("gu", "after", 5);
}

static void test_cas(void)
{
    CU_ASSERT_EQUAL(qdb_put(H, "cas", "v1", 2), QDB_OK);
    const void *orig = (const void *)1;
    size_t orig_len = 99;
    /* match: swapped, nothing returned */
    CU_ASSERT_EQUAL(qdb_compare_and_swap(H, "cas", "v2", 2, "v1", 2, &orig, &orig_len), QDB_OK);
    CU_ASSERT_PTR_NULL(orig);
    expect_content("cas", "v2", 2);
    /* mismatch: unchanged, the current content returned */
    CU_ASSERT_EQUAL(qdb_compare_and_swap(H, "cas", "v3", 2, "v1", 2, &orig, &orig_len),
                    QDB_E_UNMATCHED_CONTENT);
    CU_ASSERT_EQUAL(orig_len, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    CU_ASSERT(memcmp(orig, "v2", 2) == 0);
    qdb_free_buffer(H, orig);
    expect_content("cas", "v2", 2);
    /* mismatch without wanting the content */
    CU_ASSERT_EQUAL(qdb_compare_and_swap(H, "cas", "v3", 2, "zz", 2, NULL, NULL),
                    QDB_E_UNMATCHED_CONTENT);
    CU_ASSERT_EQUAL(qdb_compare_and_swap(H, "cas-missing", "a", 1, "b", 1, &orig, &orig_len),
                    QDB_E_ALIAS_NOT_FOUND);
}

static void test_remove(void)
{
    CU_ASSERT_EQUAL(qdb_put(H, "rm", "x", 1), QDB_OK);
    CU_ASSERT_EQUAL(qdb_remove(H, "rm"), QDB_OK);
    const void *p;
    size_t len;
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "rm", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_remove(H, "rm"), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_put(H, "rm", "y", 1), QDB_OK); /* free again */
    expect_content("rm", "y", 1);
}

static void test_binary(void)
{
    uint8_t bin[600];
    for (size_t i = 0; i < sizeof bin; i++)
        bin[i] = (uint8_t)(i % 3 == 0 ? 0 : i * 7);
    CU_ASSERT_EQUAL(qdb_put(H, "binary", bin, sizeof bin), QDB_OK);
    expect_content("binary", bin, sizeof bin);
    uint8_t out[sizeof bin];
    size_t len = sizeof out;
    CU_ASSERT_EQUAL(qdb_get(H, "binary", out, &len), QDB_OK);
    CU_ASSERT_EQUAL(len, sizeof bin);
    CU_ASSERT(memcmp(out, bin, sizeof bin) == 0);
    /* aliases of 1 and of exactly QDB_MAX_ALIAS bytes */
    char *alias = g_malloc(QDB_MAX_ALIAS + 1);
    memset(alias, 'k', QDB_MAX_ALIAS);
    alias[QDB_MAX_ALIAS] = '\0';
    CU_ASSERT_EQUAL(qdb_put(H, alias, "long", 4), QDB_OK);
    expect_content(alias, "long", 4);
    g_free(alias);
    CU_ASSERT_EQUAL(qdb_put(H, "k", "", 0), QDB_OK);
    expect_content("k", NULL, 0);
}

static void test_large(void)
{
    size_t n = (size_t)1 << 20;
    uint8_t *big = g_malloc(n);
    GRand *r = g_rand_new_with_seed(2836);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)g_rand_int(r);
    g_rand_free(r);
    CU_ASSERT_EQUAL(qdb_put(H, "big", big, n), QDB_OK);
    expect_content("big", big, n);
    big[n / 2] ^= 0xff;
    CU_ASSERT_EQUAL(qdb_update(H, "big", big, n), QDB_OK);
    expect_content("big", big, n);
    g_free(big);
}

static void test_buffers_freed_by_close(void)
{
    /* Buffers never released go with qdb_close (the sanitizer build checks). */
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    CU_ASSERT_FATAL(qdb_connect(h, daemon_uris[0]) == QDB_OK);
    const void *p1, *p2;
    size_t l1, l2;
    CU_ASSERT_EQUAL(qdb_get_buffer(h, "entry", &p1, &l1), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_buffer(h, "entry", &p2, &l2), QDB_OK);
    CU_ASSERT(p1 != p2);
    qdb_free_buffer(h, p1);
    qdb_free_buffer(h, p1); /* twice: ignored */
    int local;
    qdb_free_buffer(h, &local); /* not ours: ignored */
    /* set_option on a connected handle keeps it usable */
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_operation_timeout, 5000), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_buffer(h, "entry", &p1, &l1), QDB_OK);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);
}

static void test_remove_all(void)
{
    char alias[32];
    for (int i = 0; i < 20; i++) {
        g_snprintf(alias, sizeof alias, "ra-%d", i);
        CU_ASSERT_EQUAL(qdb_update(H, alias, alias, strlen(alias)), QDB_OK);
    }
    CU_ASSERT_EQUAL(qdb_remove_all(H), QDB_OK);
    const void *p;
    size_t len;
    for (int i = 0; i < 20; i++) {
        g_snprintf(alias, sizeof alias, "ra-%d", i);
        CU_ASSERT_EQUAL(qdb_get_buffer(H, alias, &p, &len), QDB_E_ALIAS_NOT_FOUND);
    }
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "entry", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_remove_all(H), QDB_OK); /* on an empty hive too */
}

static void test_get_remove_remove_if(void)
{
    CU_ASSERT_EQUAL(qdb_put(H, "gr", "take me", 7), QDB_OK);
    const void *p = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(qdb_get_remove(H, "gr", &p, &len), QDB_OK);
    CU_ASSERT(len == 7 && memcmp(p, "take me", 7) == 0);
    qdb_free_buffer(H, p);
    CU_ASSERT_EQUAL(qdb_get_remove(H, "gr", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_PTR_NULL(p);

    CU_ASSERT_EQUAL(qdb_put(H, "ri", "v1", 2), QDB_OK);
    CU_ASSERT_EQUAL(qdb_remove_if(H, "ri", "v2", 2), QDB_E_UNMATCHED_CONTENT);
    expect_content("ri", "v1", 2);
    CU_ASSERT_EQUAL(qdb_remove_if(H, "ri", "v1", 2), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "ri", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_remove_if(H, "ri", "v1", 2), QDB_E_ALIAS_NOT_FOUND);
}

static void test_metadata(void)
{
    gint64 before = g_get_real_time();
    CU_ASSERT_EQUAL(qdb_put(H, "md", "12345", 5), QDB_OK);
    qdb_metadata_t m;
    CU_ASSERT_EQUAL(qdb_get_metadata(H, "md", &m), QDB_OK);
    CU_ASSERT_EQUAL(m.size, 5);
    CU_ASSERT(m.version >= (uint64_t)m.modification_time_us); /* the write's hybrid clock */
    CU_ASSERT_EQUAL(m.expiry_time, 0);
    CU_ASSERT(m.creation_time_us >= before - G_USEC_PER_SEC &&
              m.creation_time_us <= g_get_real_time() + G_USEC_PER_SEC);
    CU_ASSERT_EQUAL(m.modification_time_us, m.creation_time_us);
    CU_ASSERT_EQUAL(qdb_update(H, "md", "1234567", 7), QDB_OK);
    qdb_metadata_t m2;
    CU_ASSERT_EQUAL(qdb_get_metadata(H, "md", &m2), QDB_OK);
    CU_ASSERT_EQUAL(m2.size, 7);
    CU_ASSERT(m2.version > m.version);
    CU_ASSERT_EQUAL(m2.creation_time_us, m.creation_time_us);
    CU_ASSERT(m2.modification_time_us >= m.modification_time_us);
    CU_ASSERT_EQUAL(qdb_get_metadata(H, "no such entry", &m2), QDB_E_ALIAS_NOT_FOUND);
}

static void test_expiry(void)
{
    qdb_time_t now = (qdb_time_t)(g_get_real_time() / G_USEC_PER_SEC);
    CU_ASSERT_EQUAL(qdb_put_with_expiry(H, "ex", "x", 1, now + 3600), QDB_OK);
    qdb_time_t t = -1;
    CU_ASSERT_EQUAL(qdb_get_expiry(H, "ex", &t), QDB_OK);
    CU_ASSERT_EQUAL(t, now + 3600);
    CU_ASSERT_EQUAL(qdb_expires_at(H, "ex", 0), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_expiry(H, "ex", &t), QDB_OK);
    CU_ASSERT_EQUAL(t, 0);
    CU_ASSERT_EQUAL(qdb_expires_from_now(H, "ex", 100), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_expiry(H, "ex", &t), QDB_OK);
    CU_ASSERT(t >= now + 100 && t <= now + 102);
    /* an update without expiry: never expires */
    CU_ASSERT_EQUAL(qdb_update(H, "ex", "y", 1), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_expiry(H, "ex", &t), QDB_OK);
    CU_ASSERT_EQUAL(t, 0);
    /* a time already past: gone for every call at once */
    CU_ASSERT_EQUAL(qdb_update_with_expiry(H, "ex", "z", 1, now - 1), QDB_OK);
    const void *p;
    size_t len;
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "ex", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_get_expiry(H, "ex", &t), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_remove(H, "ex"), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_expires_at(H, "ex", 0), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_put(H, "ex", "again", 5), QDB_OK);
    expect_content("ex", "again", 5);
    /* expiring in a second: there, then not */
    now = (qdb_time_t)(g_get_real_time() / G_USEC_PER_SEC);
    CU_ASSERT_EQUAL(qdb_put_with_expiry(H, "ex1", "x", 1, now + 1), QDB_OK);
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "ex1", &p, &len), QDB_OK);
    g_usleep((gulong)((now + 2) * G_USEC_PER_SEC - g_get_real_time()));
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "ex1", &p, &len), QDB_E_ALIAS_NOT_FOUND);
}

static void test_prefix_one_node(void)
{
    char alias[32];
    for (int i = 0; i < 50; i++) {
        g_snprintf(alias, sizeof alias, "pf/%02d", 49 - i);
        CU_ASSERT_EQUAL(qdb_update(H, alias, "x", 1), QDB_OK);
    }
    const char **aliases = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL(qdb_prefix_get(H, "pf/", 50, &aliases, &n), QDB_OK);
    CU_ASSERT_EQUAL_FATAL(n, 50);
    for (size_t i = 0; i < n; i++) {
        g_snprintf(alias, sizeof alias, "pf/%02zu", i);
        CU_ASSERT_STRING_EQUAL(aliases[i], alias);
    }
    CU_ASSERT_PTR_NULL(aliases[n]);
    qdb_free_buffer(H, aliases);
    CU_ASSERT_EQUAL(qdb_prefix_get(H, "pf/", 49, &aliases, &n), QDB_E_TOO_MANY);
    CU_ASSERT_PTR_NULL(aliases);
    CU_ASSERT_STRING_EQUAL(qdb_error(QDB_E_TOO_MANY),
                           "too many results: more entries match than the maximum asked for");
    uint64_t count;
    CU_ASSERT_EQUAL(qdb_prefix_count(H, "pf/4", &count), QDB_OK);
    CU_ASSERT_EQUAL(count, 10);
    CU_ASSERT_EQUAL(qdb_prefix_get(H, "nothing/", 5, &aliases, &n), QDB_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(aliases);
    CU_ASSERT_PTR_NULL(aliases[0]);
}

static void test_batch(void)
{
    enum { N = 1000 };
    qdb_operation_t *ops = g_new(qdb_operation_t, 2 * N);
    char (*aliases)[16] = g_malloc(N * sizeof *aliases);
    CU_ASSERT_EQUAL(qdb_init_operations(ops, 2 * N), QDB_OK);
    CU_ASSERT_EQUAL(ops[0].type, qdb_op_uninitialized);
    for (int i = 0; i < N; i++) {
        g_snprintf(aliases[i], sizeof aliases[i], "b/%d", i);
        ops[i].type = qdb_op_update;
        ops[i].alias = aliases[i];
        ops[i].content = aliases[i];
        ops[i].content_size = strlen(aliases[i]);
        ops[N + i].type = qdb_op_get;
        ops[N + i].alias = aliases[i];
    }
    /* the updates first (the gets in the same batch could overtake them) */
    CU_ASSERT_EQUAL(qdb_run_batch(H, ops, N), N);
    CU_ASSERT_EQUAL(qdb_run_batch(H, ops + N, N), N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(ops[i].error, QDB_OK);
        CU_ASSERT_PTR_NULL(ops[i].result);
        CU_ASSERT_EQUAL(ops[N + i].error, QDB_OK);
        CU_ASSERT(ops[N + i].result_size == strlen(aliases[i]) &&
                  memcmp(ops[N + i].result, aliases[i], strlen(aliases[i])) == 0);
        qdb_free_buffer(H, ops[N + i].result);
    }

    /* each operation its own result, bad ones refused alone */
    qdb_operation_t m[10];
    qdb_init_operations(m, G_N_ELEMENTS(m));
    m[0] = (qdb_operation_t){.type = qdb_op_put, .alias = "b/0", .content = "x", .content_size = 1};
    m[1] = (qdb_operation_t){.type = qdb_op_get_remove, .alias = "b/1"};
    m[2] = (qdb_operation_t){.type = qdb_op_cas, .alias = "b/2", .content = "n",
                             .content_size = 1, .comparand = "no", .comparand_size = 2};
    m[3] = (qdb_operation_t){.type = qdb_op_remove_if, .alias = "b/3", .comparand = "b/3",
                             .comparand_size = 3};
    m[4] = (qdb_operation_t){.type = qdb_op_get, .alias = ""};
    m[5] = (qdb_operation_t){.type = qdb_op_put, .alias = "b/new", .content = "x",
                             .content_size = 1, .expiry_time = -1};
    m[6].alias = "b/4"; /* uninitialized type */
    m[7] = (qdb_operation_t){.type = qdb_op_get_update, .alias = "b/5", .content = "five",
                             .content_size = 4};
    m[8] = (qdb_operation_t){.type = qdb_op_remove, .alias = "no such alias"};
    m[9] = (qdb_operation_t){.type = qdb_op_get, .alias = "b/6", .expiry_time = 5};
    CU_ASSERT_EQUAL(qdb_run_batch(H, m, G_N_ELEMENTS(m)), 3);
    CU_ASSERT_EQUAL(m[0].error, QDB_E_ALIAS_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(m[1].error, QDB_OK);
    CU_ASSERT(m[1].result_size == 3 && memcmp(m[1].result, "b/1", 3) == 0);
    CU_ASSERT_EQUAL(m[2].error, QDB_E_UNMATCHED_CONTENT);
    CU_ASSERT(m[2].result_size == 3 && memcmp(m[2].result, "b/2", 3) == 0);
    CU_ASSERT_EQUAL(m[3].error, QDB_OK);
    CU_ASSERT_EQUAL(m[4].error, QDB_E_ALIAS_TOO_LONG);
    CU_ASSERT_EQUAL(m[5].error, QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(m[6].error, QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(m[7].error, QDB_OK);
    CU_ASSERT(m[7].result_size == 3 && memcmp(m[7].result, "b/5", 3) == 0);
    CU_ASSERT_EQUAL(m[8].error, QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(m[9].error, QDB_E_INVALID_ARGUMENT);
    const void *p;
    size_t len;
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "b/1", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "b/3", &p, &len), QDB_E_ALIAS_NOT_FOUND);
    expect_content("b/5", "five", 4);
    /* no handle, nothing run; an empty batch is fine */
    CU_ASSERT_EQUAL(qdb_run_batch(NULL, m, 1), 0);
    CU_ASSERT_EQUAL(qdb_run_batch(H, m, 0), 0);
    CU_ASSERT_EQUAL(qdb_init_operations(NULL, 1), QDB_E_INVALID_ARGUMENT);
    g_free(aliases);
    g_free(ops);
}

/* Does "localhost" resolve to 127.0.0.1 here, as libqdb would resolve it? */
static bool localhost_is_loopback(void)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo("localhost", NULL, &hints, &res) != 0 || res == NULL)
        return false;
    bool ok = ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    freeaddrinfo(res);
    return ok;
}

/* The administration calls against the one-node hive. */
/* qdb_o_hive_key_file against this keyless daemon: bad files refused at
 * once; a key makes every call fail as QDB_E_AUTHENTICATION (the node
 * refuses TLS), connected or not; NULL goes back to plaintext.
 * tests/auth.sh runs a keyed hive. */
static void test_hive_key_option(void)
{
    char *dir = g_dir_make_tmp("qdb-libqdb-key-XXXXXX", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char *key = g_build_filename(dir, "hive.key", NULL);
    char *world = g_build_filename(dir, "world.key", NULL);
    char *bad = g_build_filename(dir, "bad.key", NULL);
    char line[80];
    memset(line, 'a', 64);
    strcpy(line + 64, "\n");
    CU_ASSERT_FATAL(g_file_set_contents(key, line, -1, NULL) && chmod(key, 0600) == 0);
    CU_ASSERT_FATAL(g_file_set_contents(world, line, -1, NULL) && chmod(world, 0644) == 0);
    CU_ASSERT_FATAL(g_file_set_contents(bad, "aaaa\n", -1, NULL) && chmod(bad, 0600) == 0);
    const char *addr = daemon_uris[0] + strlen("qdb://");

    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    qdb_set_option(h, qdb_o_operation_timeout, 5000);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_hive_key_file, bad), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_hive_key_file, world), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_hive_key_file, key), QDB_OK);
    CU_ASSERT_EQUAL(qdb_connect(h, daemon_uris[0]), QDB_E_AUTHENTICATION);
    CU_ASSERT_EQUAL(qdb_ping(h, addr, NULL), QDB_E_AUTHENTICATION);
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_hive_key_file, NULL), QDB_OK);
    CU_ASSERT_EQUAL(qdb_connect(h, daemon_uris[0]), QDB_OK);
    CU_ASSERT_EQUAL(qdb_update(h, "keyless", "x", 1), QDB_OK);
    /* connected: the key applies from the next call */
    CU_ASSERT_EQUAL(qdb_set_option(h, qdb_o_hive_key_file, key), QDB_OK);
    CU_ASSERT_EQUAL(qdb_update(h, "keyed", "x", 1), QDB_E_AUTHENTICATION);
    qdb_operation_t op[1];
    qdb_init_operations(op, 1);
    op[0] = (qdb_operation_t){.type = qdb_op_get, .alias = "keyless"};
    CU_ASSERT_EQUAL(qdb_run_batch(h, op, 1), 0);
    CU_ASSERT_EQUAL(op[0].error, QDB_E_AUTHENTICATION);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);

    char *files[] = {key, world, bad};
    for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
        unlink(files[i]);
        g_free(files[i]);
    }
    rmdir(dir);
    g_free(dir);
}

static void test_admin(void)
{
    const char *addr = daemon_uris[0] + strlen("qdb://");
    unsigned rtt = 0;
    CU_ASSERT_EQUAL(qdb_ping(H, NULL, &rtt), QDB_OK);
    CU_ASSERT(rtt > 0 && rtt < 2000000);
    CU_ASSERT_EQUAL(qdb_ping(H, daemon_uris[0], NULL), QDB_OK);

    const char *json = NULL;
    char *self = g_strdup_printf("\"address\":\"%s\"", addr);
    CU_ASSERT_EQUAL_FATAL(qdb_node_status(H, NULL, &json), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, self));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"state\":\"active\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"counters\":{"));
    CU_ASSERT(json[0] == '{' && json[strlen(json) - 1] == '}');
    qdb_free_buffer(H, json);
    CU_ASSERT_EQUAL_FATAL(qdb_node_config(H, addr, &json), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"purge_all_enabled\":true,\"stop_enabled\":false}"));
    CU_ASSERT_PTR_NULL(strstr(json, "\"successors\""));
    qdb_free_buffer(H, json);
    CU_ASSERT_EQUAL_FATAL(qdb_node_topology(H, NULL, &json), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"successors\":["));
    CU_ASSERT_PTR_NULL(strstr(json, "\"counters\""));
    qdb_free_buffer(H, json);

    /* a ring of one: the node owns the whole circle */
    CU_ASSERT_EQUAL_FATAL(qdb_hive_status(H, NULL, &json), QDB_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"complete\":true,\"broken\":false,\"nodes\":1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"arc\":1}"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, self));
    qdb_free_buffer(H, json);
    g_free(self);

    /* remote stop is off by default */
    CU_ASSERT_EQUAL(qdb_node_stop(H, addr), QDB_E_DISABLED);
    CU_ASSERT_STRING_EQUAL(qdb_error(QDB_E_DISABLED), "operation disabled in this hive");
    CU_ASSERT_EQUAL(qdb_ping(H, NULL, NULL), QDB_OK);

    /* a host name instead of the address -- where the machine names its
     * loopback (a bare debootstrap root has no /etc/hosts, and so no
     * "localhost": getaddrinfo fails there for every program) */
    if (!localhost_is_loopback()) {
        fprintf(stderr, "(host-name check skipped: 'localhost' does not resolve to 127.0.0.1 "
                        "on this machine) ");
        return;
    }
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    char *by_name = g_strdup_printf("localhost%s", strrchr(addr, ':'));
    CU_ASSERT_EQUAL(qdb_connect(h, by_name), QDB_OK);
    CU_ASSERT_EQUAL(qdb_ping(h, by_name, NULL), QDB_OK);
    g_free(by_name);
    CU_ASSERT_EQUAL(qdb_close(h), QDB_OK);
}

static void test_daemon_stopped(void)
{
    /* A node that accepts but never answers: the timeout ends the call. */
    CU_ASSERT_EQUAL(qdb_set_option(H, qdb_o_operation_timeout, 2000), QDB_OK);
    CU_ASSERT_EQUAL(qdb_update(H, "stopped", "x", 1), QDB_OK);
    kill((pid_t)daemon_pids[0], SIGSTOP);
    const void *p;
    size_t len;
    gint64 t0 = g_get_monotonic_time();
    qdb_error_t rc = qdb_get_buffer(H, "stopped", &p, &len);
    gint64 took = g_get_monotonic_time() - t0;
    kill((pid_t)daemon_pids[0], SIGCONT);
    CU_ASSERT(rc == QDB_E_TIMEOUT || rc == QDB_E_UNSTABLE);
    CU_ASSERT(took >= 1500 * 1000 && took < 4 * G_USEC_PER_SEC);
    /* once it runs again, so does the handle */
    CU_ASSERT_EQUAL(qdb_get_buffer(H, "stopped", &p, &len), QDB_OK);
    CU_ASSERT_EQUAL(len, 1);
}

static void test_daemon_killed(void)
{
    CU_ASSERT_EQUAL(qdb_set_option(H, qdb_o_operation_timeout, 2000), QDB_OK);
    CU_ASSERT_EQUAL(qdb_put(H, "last", "x", 1), QDB_OK);
    daemon_kill();
    const void *p;
    size_t len;
    gint64 t0 = g_get_monotonic_time();
    qdb_error_t rc = qdb_get_buffer(H, "last", &p, &len);
    CU_ASSERT_NOT_EQUAL(rc, QDB_OK);
    rc = qdb_put(H, "after", "y", 1);
    CU_ASSERT_NOT_EQUAL(rc, QDB_OK);
    gint64 took = g_get_monotonic_time() - t0;
    CU_ASSERT(took < 5 * G_USEC_PER_SEC); /* two calls of at most 2 s each */
    /* and a fresh connect is refused */
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    CU_ASSERT_EQUAL(qdb_connect(h, daemon_uris[0]), QDB_E_CONNECTION_REFUSED);
    qdb_close(h);
}

/* ---- a hive of three ---------------------------------------------------------------
 * Daemons 1 and 2 join daemon 0: aliases scatter over three stores, and the
 * prefix calls must find each of them. */

static int hive_init(void)
{
    if (daemon_start_at(0, NULL) != 0)
        return 1;
    const char *first = daemon_uris[0] + strlen("qdb://");
    if (daemon_start_at(1, first) != 0 || daemon_start_at(2, first) != 0)
        return 1;
    return open_H(2, 20000);
}

static void test_hive_prefix(void)
{
    enum { N = 1000 };
    char alias[32];
    /* until the ring has settled, a write may be told UNSTABLE: retried */
    for (int i = 0; i < N; i++) {
        g_snprintf(alias, sizeof alias, "%s/%04d", i % 4 ? "hp" : "other", (i * 7919) % N);
        qdb_error_t rc;
        for (int tries = 0; (rc = qdb_update(H, alias, "v", 1)) == QDB_E_UNSTABLE && tries < 50;
             tries++)
            g_usleep(100 * 1000);
        CU_ASSERT_EQUAL_FATAL(rc, QDB_OK);
    }
    const char **aliases = NULL;
    size_t n = 0;
    CU_ASSERT_EQUAL_FATAL(qdb_prefix_get(H, "hp/", N, &aliases, &n), QDB_OK);
    CU_ASSERT_EQUAL(n, N - N / 4);
    int prev = -1;
    for (size_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(strncmp(aliases[i], "hp/", 3), 0);
        int v = atoi(aliases[i] + 3);
        CU_ASSERT(v > prev && strlen(aliases[i]) == 7);
        prev = v;
    }
    qdb_free_buffer(H, aliases);
    uint64_t count;
    CU_ASSERT_EQUAL(qdb_prefix_count(H, "", &count), QDB_OK);
    CU_ASSERT_EQUAL(count, N);
    CU_ASSERT_EQUAL(qdb_prefix_get(H, "hp/", N - N / 4 - 1, &aliases, &n), QDB_E_TOO_MANY);
    /* the same through another node */
    qdb_handle_t h;
    CU_ASSERT_FATAL(qdb_open(&h, qdb_p_tcp) == QDB_OK);
    CU_ASSERT_FATAL(qdb_connect(h, daemon_uris[1]) == QDB_OK);
    CU_ASSERT_EQUAL(qdb_prefix_count(h, "other/", &count), QDB_OK);
    CU_ASSERT_EQUAL(count, N / 4);
    qdb_close(h);
}

static CU_TestInfo hive_tests[] = {
    { .pName = "prefix_get over three nodes", .pTestFunc = test_hive_prefix },
    CU_TEST_INFO_NULL,
};

/* ---- suites and main ------------------------------------------------------------ */

static CU_TestInfo args_tests[] = {
    { .pName = "open and close", .pTestFunc = test_open_close },
    { .pName = "NULL handle", .pTestFunc = test_null_handle },
    { .pName = "bad arguments and URIs", .pTestFunc = test_bad_arguments },
    { .pName = "closed port refuses quickly", .pTestFunc = test_refused },
    { .pName = "version and error strings", .pTestFunc = test_strings },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo server_tests[] = {
    { .pName = "put and get", .pTestFunc = test_put_get },
    { .pName = "buffer too small", .pTestFunc = test_buffer_too_small },
    { .pName = "update", .pTestFunc = test_update },
    { .pName = "get_update", .pTestFunc = test_get_update },
    { .pName = "compare and swap", .pTestFunc = test_cas },
    { .pName = "remove", .pTestFunc = test_remove },
    { .pName = "binary content and alias bounds", .pTestFunc = test_binary },
    { .pName = "1 MiB content", .pTestFunc = test_large },
    { .pName = "buffers freed by close", .pTestFunc = test_buffers_freed_by_close },
    { .pName = "get_remove and remove_if", .pTestFunc = test_get_remove_remove_if },
    { .pName = "metadata", .pTestFunc = test_metadata },
    { .pName = "expiry", .pTestFunc = test_expiry },
    { .pName = "prefix on one node", .pTestFunc = test_prefix_one_node },
    { .pName = "batches", .pTestFunc = test_batch },
    { .pName = "remove_all", .pTestFunc = test_remove_all },
    { .pName = "administration", .pTestFunc = test_admin },
    { .pName = "hive key option", .pTestFunc = test_hive_key_option },
    { .pName = "daemon stopped: timeout", .pTestFunc = test_daemon_stopped },
    { .pName = "daemon killed", .pTestFunc = test_daemon_killed },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo args_suites[] = {
    { .pName = "arguments", .pTests = args_tests },
    CU_SUITE_INFO_NULL,
};

static CU_SuiteInfo server_suites[] = {
    { .pName = "qdbd", .pInitFunc = server_init, .pCleanupFunc = server_clean,
      .pTests = server_tests },
    { .pName = "hive of three", .pInitFunc = hive_init, .pCleanupFunc = server_clean,
      .pTests = hive_tests },
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    qdbd_path = g_getenv("QDBD");
    if (qdbd_path == NULL || qdbd_path[0] == '\0')
        qdbd_path = "transport-real/qdbd";

    int rc = qdb_test_run(args_suites);
    if (rc != 0)
        return rc;
    if (access(qdbd_path, X_OK) != 0) {
        fprintf(stderr, "SKIP: %s not found (set QDBD): server tests skipped\n", qdbd_path);
        return 77;
    }
    rc = qdb_test_run(server_suites);
    daemon_kill();
    return rc;
}

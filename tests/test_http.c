/* SPDX-License-Identifier: BSD-2-Clause */
/* Watched descriptors of the real loop, and the status page server's
 * eventfd (transport-real/loop.h, http.h):
 *   - qdb_loop_unwatch_fd takes a descriptor out of the epoll set: its
 *     callback never runs again, even while another descriptor (a dup)
 *     holds its file, which a close() alone would leave watched;
 *   - unwatched by a callback, a descriptor whose event the same turn has
 *     already taken is not called either;
 *   - qdb_http_stop unwatches its eventfd before closing it: with a dup of
 *     it kept and put back at the old number, a write to it wakes nothing
 *     (the callback would have drained it, for a server already freed).
 */
#include "config.h"

#include <glib.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "testutil.h"
#include "transport-real/http.h"
#include "transport-real/loop.h"

typedef struct counter {
    qdb_loop *loop;
    int calls;
    int other; /* a descriptor to unwatch from the callback, or -1 */
} counter;

static void on_readable(void *arg, int fd)
{
    counter *c = arg;
    uint64_t v;
    c->calls++;
    CU_ASSERT(read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v));
    if (c->other >= 0)
        qdb_loop_unwatch_fd(c->loop, c->other);
}

static void poke(int fd)
{
    uint64_t one = 1;
    CU_ASSERT_EQUAL(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* The eventfd's counter: 0 when it was drained (or never written). */
static uint64_t unread(int fd)
{
    uint64_t v = 0;
    return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? v : 0;
}

static void test_unwatch(void)
{
    char err[QDB_ERRMSG_SIZE];
    qdb_loop *loop = qdb_loop_new(err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CU_ASSERT_FATAL(efd >= 0);
    int held = dup(efd);
    CU_ASSERT_FATAL(held >= 0);
    counter c = {.loop = loop, .other = -1};
    CU_ASSERT_FATAL(qdb_loop_watch_fd(loop, efd, on_readable, &c));
    poke(efd);
    qdb_loop_run_once(loop, 0);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT(qdb_loop_unwatch_fd(loop, efd));
    CU_ASSERT(!qdb_loop_unwatch_fd(loop, efd)); /* not watched any more */
    CU_ASSERT(!qdb_loop_unwatch_fd(loop, 12345));
    /* the file lives on through held, at the same number again */
    close(efd);
    CU_ASSERT_EQUAL_FATAL(dup2(held, efd), efd);
    poke(efd);
    qdb_loop_run_once(loop, 0);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(unread(efd), 1);
    close(efd);
    close(held);
    qdb_loop_free(loop);
}

/* Two watched eventfds ready in the same turn, each callback unwatching
 * the other: whichever runs first, the second is not called. */
static void test_unwatch_in_same_turn(void)
{
    char err[QDB_ERRMSG_SIZE];
    qdb_loop *loop = qdb_loop_new(err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    int a = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), b = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CU_ASSERT_FATAL(a >= 0 && b >= 0);
    counter ca = {.loop = loop, .other = b}, cb = {.loop = loop, .other = a};
    CU_ASSERT_FATAL(qdb_loop_watch_fd(loop, a, on_readable, &ca));
    CU_ASSERT_FATAL(qdb_loop_watch_fd(loop, b, on_readable, &cb));
    poke(a);
    poke(b);
    qdb_loop_run_once(loop, 0);
    CU_ASSERT_EQUAL(ca.calls + cb.calls, 1);
    /* the one still watched still works */
    int live = ca.calls ? a : b;
    counter *lc = ca.calls ? &ca : &cb;
    lc->other = -1;
    unread(live);
    poke(live);
    qdb_loop_run_once(loop, 0);
    CU_ASSERT_EQUAL(lc->calls, 2);
    close(a);
    close(b);
    qdb_loop_free(loop);
}

/* The eventfds this process holds, as a set of descriptor numbers. */
static GHashTable *eventfds(void)
{
    GHashTable *set = g_hash_table_new(g_direct_hash, g_direct_equal);
    GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
    if (!d)
        return set;
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        char *path = g_build_filename("/proc/self/fd", name, NULL);
        char *target = g_file_read_link(path, NULL);
        if (target && strcmp(target, "anon_inode:[eventfd]") == 0)
            g_hash_table_add(set, GINT_TO_POINTER(atoi(name) + 1)); /* + 1: never NULL */
        g_free(target);
        g_free(path);
    }
    g_dir_close(d);
    return set;
}

static void test_http_stop_unwatches(void)
{
    char err[QDB_ERRMSG_SIZE];
    qdb_loop *loop = qdb_loop_new(err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    GHashTable *before = eventfds();
    qdb_addr at = {.ip = (127u << 24) | 1, .port = 0}; /* any free port */
    /* no node: nothing may ask for a snapshot here */
    qdb_http *h = qdb_http_start(loop, NULL, &at, err);
    if (!h) {
        printf("\n    skipped: %s\n", err);
        g_hash_table_unref(before);
        qdb_loop_free(loop);
        return;
    }
    GHashTable *after = eventfds();
    int efd = -1, found = 0;
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, after);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (!g_hash_table_contains(before, k)) {
            efd = GPOINTER_TO_INT(k) - 1;
            found++;
        }
    CU_ASSERT_EQUAL_FATAL(found, 1); /* the server's own eventfd */
    int held = dup(efd);
    CU_ASSERT_FATAL(held >= 0);
    qdb_http_stop(h);
    CU_ASSERT_EQUAL_FATAL(dup2(held, efd), efd);
    poke(efd);
    /* (before the fix: the freed server's callback ran here, and crashed) */
    qdb_loop_run_once(loop, 0);
    CU_ASSERT_EQUAL(unread(efd), 1); /* nobody read it: the callback did not run */
    CU_ASSERT(!qdb_loop_unwatch_fd(loop, efd)); /* the server's watch is gone */
    close(efd);
    close(held);
    g_hash_table_unref(before);
    g_hash_table_unref(after);
    qdb_loop_free(loop);
}

int main(void)
{
    CU_TestInfo watch[] = {
        {.pName = "an unwatched descriptor is not called, a dup alive or not",
         .pTestFunc = test_unwatch},
        {.pName = "unwatched by a callback of the same turn: not called",
         .pTestFunc = test_unwatch_in_same_turn},
        {.pName = "qdb_http_stop unwatches its eventfd before closing it",
         .pTestFunc = test_http_stop_unwatches},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "watched descriptors", .pTests = watch},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

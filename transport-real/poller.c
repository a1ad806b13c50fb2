/* SPDX-License-Identifier: BSD-2-Clause */
/* The real loop's poller (poller.h): epoll, the stop eventfd, watches. */
#define G_LOG_DOMAIN "qdb-loop"
#include "config.h"

#include "poller.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "env.h"

#define EVENTS_MAX 256 /* epoll events taken per wait */

typedef struct loop_watch {
    loop_src src;          /* first: the source is the watch */
    int fd;
    void (*fn)(void *arg, int fd);
    void *arg;
} loop_watch;

static void wake_drain(loop_poller *p)
{
    uint64_t v;
    while (read(p->wakefd, &v, sizeof(v)) > 0)
        ;
}

static void wake_ready(loop_src *s, uint32_t events)
{
    (void)events;
    wake_drain((loop_poller *)((char *)s - offsetof(loop_poller, wake_src)));
}

static void watch_ready(loop_src *s, uint32_t events)
{
    (void)events;
    loop_watch *w = (loop_watch *)s;
    if (w->fn) /* NULL: unwatched by an earlier callback of the same wait */
        w->fn(w->arg, w->fd);
}

bool poller_init(loop_poller *p, char *err)
{
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        qdb_error_set(err, QDB_E_INTERNAL, "epoll_create1: %s", g_strerror(errno));
        return false;
    }
    p->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->wakefd < 0) {
        qdb_error_set(err, QDB_E_INTERNAL, "eventfd: %s", g_strerror(errno));
        goto fail_epoll;
    }
    p->wake_src.ready = wake_ready;
    if (poller_add(p, p->wakefd, &p->wake_src, false) < 0) {
        qdb_error_set(err, QDB_E_INTERNAL, "epoll_ctl: %s", g_strerror(errno));
        goto fail_eventfd;
    }
    p->stop_requested = 0;
    p->watches = g_ptr_array_new_with_free_func(g_free);
    p->retired = g_ptr_array_new_with_free_func(g_free);
    return true;

fail_eventfd:
    close(p->wakefd);
fail_epoll:
    close(p->epfd);
    return false;
}

void poller_clear(loop_poller *p)
{
    g_ptr_array_free(p->watches, TRUE);
    g_ptr_array_free(p->retired, TRUE);
    close(p->wakefd);
    close(p->epfd);
}

static int poller_ctl(loop_poller *p, int op, int fd, loop_src *src, bool want_in,
                      bool want_out)
{
    struct epoll_event ev = {.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0),
                             .data.ptr = src};
    return epoll_ctl(p->epfd, op, fd, &ev);
}

int poller_add(loop_poller *p, int fd, loop_src *src, bool want_out)
{
    return poller_ctl(p, EPOLL_CTL_ADD, fd, src, true, want_out);
}

int poller_mod(loop_poller *p, int fd, loop_src *src, bool want_out)
{
    return poller_ctl(p, EPOLL_CTL_MOD, fd, src, true, want_out);
}

int poller_set(loop_poller *p, int fd, loop_src *src, bool want_in, bool want_out)
{
    return poller_ctl(p, EPOLL_CTL_MOD, fd, src, want_in, want_out);
}

int poller_del(loop_poller *p, int fd)
{
    return epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

void poller_wait(loop_poller *p, int timeout_ms)
{
    struct epoll_event evs[EVENTS_MAX];
    int n = epoll_wait(p->epfd, evs, EVENTS_MAX, timeout_ms);
    if (n < 0 && errno != EINTR)
        g_warning("epoll_wait: %s", g_strerror(errno));
    for (int i = 0; i < n; i++) {
        loop_src *s = evs[i].data.ptr;
        loop_clock_renew(&p->clock);
        s->ready(s, evs[i].events);
    }
    loop_clock_renew(&p->clock);
    if (p->retired->len) /* no event of this wait points to them any more */
        g_ptr_array_set_size(p->retired, 0);
}

void poller_stop(loop_poller *p)
{
    p->stop_requested = 1;
    uint64_t one = 1;
    ssize_t r = write(p->wakefd, &one, sizeof(one));
    (void)r;
}

bool poller_take_stop(loop_poller *p)
{
    if (!p->stop_requested)
        return false;
    p->stop_requested = 0;
    wake_drain(p);
    return true;
}

bool poller_watch(loop_poller *p, int fd, void (*fn)(void *arg, int fd), void *arg)
{
    loop_watch *w = g_new0(loop_watch, 1);
    w->src.ready = watch_ready;
    w->fd = fd;
    w->fn = fn;
    w->arg = arg;
    if (poller_add(p, fd, &w->src, false) < 0) {
        g_free(w);
        return false;
    }
    g_ptr_array_add(p->watches, w);
    return true;
}

bool poller_unwatch(loop_poller *p, int fd)
{
    for (guint i = 0; i < p->watches->len; i++) {
        loop_watch *w = g_ptr_array_index(p->watches, i);
        if (w->fd != fd || !w->fn)
            continue;
        /* epoll keeps a registration as long as the open file lives: a
         * close() alone leaves it while any other descriptor (a dup, a
         * child's copy) holds the file */
        if (poller_del(p, fd) < 0 && errno != ENOENT && errno != EBADF)
            g_warning("epoll_ctl(DEL): %s", g_strerror(errno));
        w->fn = NULL;
        /* freed after the wait in progress, if any: its events may name it */
        g_ptr_array_add(p->retired, g_ptr_array_steal_index(p->watches, i));
        return true;
    }
    return false;
}

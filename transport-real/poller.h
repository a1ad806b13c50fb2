/* SPDX-License-Identifier: BSD-2-Clause */
/* The real loop's poller: one epoll set, an eventfd to stop the loop from a
 * callback or a signal handler, and plain descriptors watched for the host
 * (qdb_loop_watch_fd: a signalfd in qdbd).
 *
 * Whatever is registered is a loop_src embedded in its owner (a
 * connection, a listener, a watch); epoll hands its pointer back and the
 * poller calls its ready() with the events.  The poller does not know what
 * the sources are, so it never needs to change when a kind is added.
 *
 * Epoll is level-triggered: a source that leaves data unread is reported
 * again on the next wait, which keeps one busy peer from starving the
 * others.  A source is taken out of the set with poller_del() before its
 * descriptor is closed: close(2) alone ends the registration only once the
 * last reference to the open file goes, and another process may hold one
 * (whatever lists /proc/PID/fd takes one on each descriptor for a moment),
 * so epoll could report the closed socket after its owner freed the source.
 * A source whose owner closes it while events for it are still being
 * dispatched must stay in memory until poller_wait() returns (the loop's
 * graveyard sees to it).
 * Single-threaded, except poller_stop(), which is async-signal-safe.
 */
#ifndef QDB_LOOP_POLLER_H
#define QDB_LOOP_POLLER_H

#include <glib.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "timers.h"

typedef struct loop_src loop_src;
struct loop_src {
    /* events: the EPOLL* bits reported for the descriptor. */
    void (*ready)(loop_src *s, uint32_t events);
};

typedef struct loop_poller {
    int epfd;
    int wakefd;                          /* eventfd written by poller_stop() */
    loop_src wake_src;
    volatile sig_atomic_t stop_requested;
    GPtrArray *watches;                  /* loop_watch*, owned */
    GPtrArray *retired;                  /* unwatched during a wait: freed after it */
    loop_clock clock;                    /* renewed before each event (timers.h) */
} loop_poller;

/* false and a message in err (QDB_ERRMSG_SIZE) if epoll or the eventfd
 * cannot be set up. */
bool poller_init(loop_poller *p, char *err);
/* Closes the epoll set and the eventfd; watched descriptors are the host's. */
void poller_clear(loop_poller *p);

/* Register fd: always for input, and for output when want_out.  0, or -1
 * with errno set. */
int poller_add(loop_poller *p, int fd, loop_src *src, bool want_out);
int poller_mod(loop_poller *p, int fd, loop_src *src, bool want_out);
/* The same with input optional: a connection waiting for memory stops
 * reading (EPOLLERR and EPOLLHUP are still reported). */
int poller_set(loop_poller *p, int fd, loop_src *src, bool want_in, bool want_out);
/* Unregister fd, before closing it (see above).  0, or -1 with errno set
 * (ENOENT: it was not registered). */
int poller_del(loop_poller *p, int fd);

/* Wait up to timeout_ms (-1: no limit) and dispatch what is ready, in the
 * order epoll reports it.  p->clock is renewed before each event and once
 * more after the last. */
void poller_wait(loop_poller *p, int timeout_ms);

/* Ask the loop to stop: a flag and a write to the eventfd, so it is safe in
 * a signal handler and wakes a wait in progress. */
void poller_stop(loop_poller *p);
static inline bool poller_stopping(const loop_poller *p)
{
    return p->stop_requested != 0;
}
/* Consume a stop request: true when there was one. */
bool poller_take_stop(loop_poller *p);

/* Call fn(arg, fd) from the loop whenever fd is readable. */
bool poller_watch(loop_poller *p, int fd, void (*fn)(void *arg, int fd), void *arg);
/* Stop watching fd (before closing it): out of the epoll set, and fn is
 * never called again, even for an event the wait in progress (when called
 * from a callback) has already taken.  false when fd was not watched. */
bool poller_unwatch(loop_poller *p, int fd);

#endif

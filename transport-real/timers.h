/* SPDX-License-Identifier: BSD-2-Clause */
/* The real loop's timers: endpoint deadlines and periodic callbacks, on the
 * min-heap shared with the simulator (common/heap.h).
 *
 * A loop_timer is embedded in its owner (an endpoint, a periodic callback)
 * and holds at most one deadline.  The heap entry points at it and the heap
 * keeps the timer's index current (its moved() hook), so re-arming and
 * cancelling are O(log n) without a search.
 *
 * Order: due timers fire in (deadline, arm sequence) order; the sequence is
 * one counter per loop_timers, taken at every arm, so two timers due at the
 * same microsecond fire in the order they were armed.
 *
 * timers_run(now) collects every timer due at `now` first, then fires them:
 * a timer re-armed (or cancelled) by an earlier callback of the same run does
 * not fire in it, and one re-armed to a time already past fires on the next
 * run, so a run always ends.  Callbacks may arm and cancel any timer,
 * including their own, and may free a timer's owner only after cancelling
 * it.  Single-threaded.
 */
#ifndef QDB_LOOP_TIMERS_H
#define QDB_LOOP_TIMERS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "common/heap.h"
#include "types.h"

#define LOOP_NO_DEADLINE UINT64_MAX /* timer_set(.., LOOP_NO_DEADLINE) cancels */

typedef struct loop_timer loop_timer;
typedef struct loop_timers loop_timers;
/* Fired from timers_run(ts, now), with its arguments; t is no longer armed. */
typedef void (*loop_timer_fn)(loop_timers *ts, loop_timer *t, qdb_time_us now);

struct loop_timer {
    qdb_time_us when;      /* the deadline while armed; the last one once fired */
    size_t idx;            /* index in the heap; QDB_HEAP_NONE when not armed */
    uint64_t due_run;      /* the run that collected it as due; 0: none */
    loop_timer_fn fire;
};

struct loop_timers {
    qdb_heap heap;         /* entries point at loop_timer */
    uint64_t seq;          /* arm counter: the tie-break */
    uint64_t run;          /* timers_run() counter */
    GPtrArray *everies;    /* the periodic callbacks, owned */
};

/* CLOCK_MONOTONIC in microseconds: the clock of every deadline here. */
qdb_time_us loop_mono_now(void);
/* CLOCK_REALTIME in microseconds since the epoch (the clock seam's wall()). */
int64_t loop_wall_now(void);

/* The clocks as of the event being handled.  While held (inside a loop
 * turn), each clock is read at most once per event: the 16 requests of a
 * pipelined batch, which arrive as one readable event, share one reading
 * instead of three or four clock_gettime() calls each (4% of qdbd's CPU
 * under make bench).  A reading is never older than the event being
 * dispatched (the poller renews it before each), and every value is a real
 * reading, so time still never goes back.  Not held (outside a turn: a
 * libqdb call from the application, a test), every call reads the clock. */
typedef struct loop_clock {
    bool held;
    qdb_time_us mono; /* 0: not read since the last renew */
    int64_t wall;     /* 0: likewise */
} loop_clock;

qdb_time_us loop_clock_mono(loop_clock *c);
int64_t loop_clock_wall(loop_clock *c);
/* Forget the readings: the next call reads the clock again. */
static inline void loop_clock_renew(loop_clock *c)
{
    c->mono = 0;
    c->wall = 0;
}
/* Keep readings from now on (true), or read every time again (false). */
static inline void loop_clock_hold(loop_clock *c, bool held)
{
    c->held = held;
    loop_clock_renew(c);
}

void timers_init(loop_timers *ts);
/* Frees the periodic callbacks; other timers are their owners'. */
void timers_clear(loop_timers *ts);

void timer_init(loop_timer *t, loop_timer_fn fire);
/* Arm t for `when` (replacing its deadline), or cancel it (LOOP_NO_DEADLINE). */
void timer_set(loop_timers *ts, loop_timer *t, qdb_time_us when);
static inline void timer_cancel(loop_timers *ts, loop_timer *t)
{
    timer_set(ts, t, LOOP_NO_DEADLINE);
}

/* Milliseconds from `now` until the earliest deadline, rounded up (a timer
 * may fire late, never early), capped by timeout_ms (-1: no cap; returned
 * as is when nothing is armed). */
int timers_wait_ms(const loop_timers *ts, qdb_time_us now, int timeout_ms);
/* Fire every timer due at `now`; see above. */
void timers_run(loop_timers *ts, qdb_time_us now);

/* Call fn(arg) every period_us (0 counts as 1), first one period from now.
 * A callback that falls behind is skipped, not repeated in a burst. */
void timers_every(loop_timers *ts, qdb_time_us now, qdb_time_us period_us,
                  void (*fn)(void *arg), void *arg);

#endif

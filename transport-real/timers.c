/* SPDX-License-Identifier: BSD-2-Clause */
/* Timers of the real loop (timers.h) over common/heap.h.
 *
 * Sections: the heap's index hook, arming, running, periodic callbacks.
 */
#include "config.h"

#include "timers.h"

#include <time.h>

qdb_time_us loop_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (qdb_time_us)ts.tv_sec * QDB_US_PER_S + (qdb_time_us)ts.tv_nsec / 1000;
}

int64_t loop_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

qdb_time_us loop_clock_mono(loop_clock *c)
{
    if (!c->held)
        return loop_mono_now();
    if (c->mono == 0)
        c->mono = loop_mono_now();
    return c->mono;
}

int64_t loop_clock_wall(loop_clock *c)
{
    if (!c->held)
        return loop_wall_now();
    if (c->wall == 0)
        c->wall = loop_wall_now();
    return c->wall;
}

typedef struct loop_every {
    loop_timer timer;      /* first: the timer is the callback */
    qdb_time_us period;
    void (*fn)(void *arg);
    void *arg;
} loop_every;

/* ---- the heap's index hook ------------------------------------------------ */

static void timer_moved(const qdb_heap_entry *e, size_t idx, void *arg)
{
    (void)arg;
    ((loop_timer *)e->ptr)->idx = idx;
}

void timers_init(loop_timers *ts)
{
    qdb_heap_init(&ts->heap, timer_moved, NULL);
    ts->seq = 0;
    ts->run = 0;
    ts->everies = g_ptr_array_new_with_free_func(g_free);
}

void timers_clear(loop_timers *ts)
{
    g_ptr_array_free(ts->everies, TRUE);
    ts->everies = NULL;
    qdb_heap_clear(&ts->heap);
}

/* ---- arming ------------------------------------------------------------------- */

void timer_init(loop_timer *t, loop_timer_fn fire)
{
    t->when = LOOP_NO_DEADLINE;
    t->idx = QDB_HEAP_NONE;
    t->due_run = 0;
    t->fire = fire;
}

void timer_set(loop_timers *ts, loop_timer *t, qdb_time_us when)
{
    t->due_run = 0; /* re-armed or cancelled: a pending "due" of this run is void */
    if (when == LOOP_NO_DEADLINE) {
        if (t->idx != QDB_HEAP_NONE)
            qdb_heap_remove(&ts->heap, t->idx, NULL);
        t->when = LOOP_NO_DEADLINE;
        return;
    }
    t->when = when;
    uint64_t seq = ++ts->seq;
    if (t->idx != QDB_HEAP_NONE) {
        qdb_heap_rekey(&ts->heap, t->idx, when, seq);
    } else {
        qdb_heap_entry e = {.time = when, .seq = seq, .ptr = t};
        qdb_heap_push(&ts->heap, &e);
    }
}

/* ---- running ------------------------------------------------------------------- */

int timers_wait_ms(const loop_timers *ts, qdb_time_us now, int timeout_ms)
{
    const qdb_heap_entry *top = qdb_heap_top(&ts->heap);
    if (!top)
        return timeout_ms;
    if (top->time <= now)
        return 0;
    qdb_time_us d = (top->time - now + 999) / 1000;
    int ms = d > INT32_MAX ? INT32_MAX : (int)d;
    return timeout_ms < 0 || ms < timeout_ms ? ms : timeout_ms;
}

void timers_run(loop_timers *ts, qdb_time_us now)
{
    uint64_t run = ++ts->run;
    /* Collect first: a callback that re-arms to a time already passed fires
     * on the next run, so this one always ends. */
    GPtrArray *due = NULL;
    const qdb_heap_entry *top;
    while ((top = qdb_heap_top(&ts->heap)) != NULL && top->time <= now) {
        loop_timer *t = top->ptr;
        qdb_heap_pop(&ts->heap, NULL);
        t->due_run = run;
        if (!due)
            due = g_ptr_array_new();
        g_ptr_array_add(due, t);
    }
    if (!due)
        return;
    for (guint i = 0; i < due->len; i++) {
        loop_timer *t = due->pdata[i];
        if (t->due_run != run)
            continue; /* re-armed or cancelled by an earlier callback */
        t->due_run = 0;
        t->fire(ts, t, now);
    }
    g_ptr_array_free(due, TRUE);
}

/* ---- periodic callbacks ---------------------------------------------------------- */

static void every_fire(loop_timers *ts, loop_timer *t, qdb_time_us now)
{
    loop_every *e = (loop_every *)t;
    qdb_time_us next = t->when + e->period;
    if (next <= now)
        next = now + e->period; /* we fell behind: skip, do not burst */
    timer_set(ts, t, next);
    e->fn(e->arg);
}

void timers_every(loop_timers *ts, qdb_time_us now, qdb_time_us period_us,
                  void (*fn)(void *arg), void *arg)
{
    loop_every *e = g_new0(loop_every, 1);
    timer_init(&e->timer, every_fire);
    e->period = period_us ? period_us : 1;
    e->fn = fn;
    e->arg = arg;
    g_ptr_array_add(ts->everies, e);
    timer_set(ts, &e->timer, now + e->period);
}

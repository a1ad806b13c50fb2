/* SPDX-License-Identifier: BSD-2-Clause */
/* eventq-bench: the rate of the simulator's bare event queue
 * (transport-sim/eventq.h over common/heap.h), the ceiling qdbsim's
 * events/s is compared with in `make bench`.
 *
 *     eventq-bench PENDING [EVENTS]
 *
 * The classic "hold" model: PENDING events are queued at random times in
 * the first virtual second; then EVENTS times (default 10,000,000) the
 * earliest is popped and a new one pushed a random 1 us .. 2 s after it, so
 * the queue keeps PENDING entries, as a running simulation keeps its
 * pending frames and wake-ups.  Each pop touches its payload pointer, as
 * qdbsim's lazy-cancellation check does.  Prints one line:
 *
 *     eventq: PENDING pending, EVENTS events in S s: R events/s
 *
 * This is a benchmark, not the simulator: it reads the wall clock.
 */
#include "config.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "transport-sim/eventq.h"

static bool never_stale(const qdb_event *ev, void *arg)
{
    (void)arg;
    return ev->ptr == NULL; /* reads the entry, as simnet's check does */
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: eventq-bench PENDING [EVENTS]\n");
        return 2;
    }
    guint64 pending = g_ascii_strtoull(argv[1], NULL, 10);
    guint64 events = argc > 2 ? g_ascii_strtoull(argv[2], NULL, 10) : 10000000;
    if (pending == 0 || events == 0) {
        fprintf(stderr, "eventq-bench: PENDING and EVENTS must be positive\n");
        return 2;
    }
    static const qdb_eventq_ops ops = {.stale = never_stale};
    qdb_eventq *q = qdb_eventq_new(&ops, NULL);
    GRand *r = g_rand_new_with_seed(1);
    int payload = 0;
    for (guint64 i = 0; i < pending; i++)
        qdb_eventq_push(q, (qdb_time_us)g_rand_int_range(r, 0, 1000000), 1, 0, &payload);
    gint64 t0 = g_get_monotonic_time();
    qdb_event ev;
    guint64 sum = 0;
    for (guint64 i = 0; i < events; i++) {
        qdb_eventq_pop(q, &ev);
        sum += ev.kind;
        qdb_eventq_push(q, ev.time + 1 + (qdb_time_us)g_rand_int_range(r, 0, 2000000), 1, 0,
                        ev.ptr);
    }
    double s = (double)(g_get_monotonic_time() - t0) / 1e6;
    printf("eventq: %" G_GUINT64_FORMAT " pending, %" G_GUINT64_FORMAT " events in %.3f s: "
           "%.0f events/s\n",
           pending, sum, s, s > 0 ? (double)events / s : 0);
    g_rand_free(r);
    qdb_eventq_free(q);
    return 0;
}

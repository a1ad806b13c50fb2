/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulator's event queue (eventq.h): common/heap.h's min-heap on
 * (time, seq), plus the sequence counter and lazy cancellation.
 *
 * The heap is made without index tracking: nothing here is removed except
 * from the top, so its sifts run without the hook.
 */
#include "config.h"

#include "eventq.h"

#include <glib.h>

struct qdb_eventq {
    qdb_heap heap;
    uint64_t next_seq;
    qdb_eventq_ops ops;
    void *arg;
};

/* Drop stale entries at the top; true when a live one is left there. */
static bool settle(qdb_eventq *q)
{
    const qdb_event *top;
    while ((top = qdb_heap_top(&q->heap)) != NULL) {
        if (!q->ops.stale || !q->ops.stale(top, q->arg))
            return true;
        qdb_event ev;
        qdb_heap_pop(&q->heap, &ev);
        if (q->ops.discard)
            q->ops.discard(&ev, q->arg);
    }
    return false;
}

qdb_eventq *qdb_eventq_new(const qdb_eventq_ops *ops, void *arg)
{
    qdb_eventq *q = g_new0(qdb_eventq, 1);
    if (ops)
        q->ops = *ops;
    q->arg = arg;
    qdb_heap_init(&q->heap, NULL, NULL);
    return q;
}

void qdb_eventq_free(qdb_eventq *q)
{
    if (!q)
        return;
    if (q->ops.discard)
        for (size_t i = 0; i < qdb_heap_len(&q->heap); i++) {
            qdb_event ev = *qdb_heap_at(&q->heap, i);
            q->ops.discard(&ev, q->arg);
        }
    qdb_heap_clear(&q->heap);
    g_free(q);
}

uint64_t qdb_eventq_reserve_seq(qdb_eventq *q)
{
    return q->next_seq++;
}

void qdb_eventq_push_seq(qdb_eventq *q, const qdb_event *ev)
{
    qdb_heap_push(&q->heap, ev);
}

uint64_t qdb_eventq_push(qdb_eventq *q, qdb_time_us time, uint32_t kind, uint32_t gen,
                         void *ptr)
{
    qdb_event ev = {.time = time, .seq = q->next_seq++, .ptr = ptr, .kind = kind, .gen = gen};
    qdb_heap_push(&q->heap, &ev);
    return ev.seq;
}

const qdb_event *qdb_eventq_peek(qdb_eventq *q)
{
    return settle(q) ? qdb_heap_top(&q->heap) : NULL;
}

bool qdb_eventq_pop(qdb_eventq *q, qdb_event *out)
{
    if (!settle(q))
        return false;
    qdb_heap_pop(&q->heap, out);
    return true;
}

size_t qdb_eventq_upcoming(const qdb_eventq *q, const qdb_event **out, size_t n)
{
    size_t k = MIN(MIN(n, (size_t)3), qdb_heap_len(&q->heap));
    for (size_t i = 0; i < k; i++)
        out[i] = qdb_heap_at(&q->heap, i);
    return k;
}

size_t qdb_eventq_size(const qdb_eventq *q)
{
    return qdb_heap_len(&q->heap);
}

size_t qdb_eventq_memory(const qdb_eventq *q)
{
    return sizeof *q + qdb_heap_memory(&q->heap);
}

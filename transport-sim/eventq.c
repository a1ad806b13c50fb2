/* Binary min-heap of events ordered by (time, seq); see eventq.h.
 *
 * Sections: comparison, sift up/down, public API.
 * Sifting moves a "hole" instead of swapping, as libevent's minheap does:
 * one copy per level instead of three.
 */
#include "config.h"

#include "eventq.h"

#include <glib.h>

struct qdb_eventq {
    qdb_event *heap;
    size_t len, cap;
    uint64_t next_seq;
    qdb_eventq_ops ops;
    void *arg;
};

/* ---- comparison ------------------------------------------------------------ */

static inline bool ev_before(const qdb_event *a, const qdb_event *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

/* ---- sift up / down -------------------------------------------------------- */

static void sift_up(qdb_event *h, size_t i, qdb_event ev)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_before(&ev, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = ev;
}

static void sift_down(qdb_event *h, size_t len, size_t i, qdb_event ev)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= len)
            break;
        if (child + 1 < len && ev_before(&h[child + 1], &h[child]))
            child++;
        if (!ev_before(&h[child], &ev))
            break;
        h[i] = h[child];
        i = child;
    }
    h[i] = ev;
}

static void remove_top(qdb_eventq *q)
{
    q->len--;
    if (q->len > 0)
        sift_down(q->heap, q->len, 0, q->heap[q->len]);
    /* Give memory back after a burst (a partition healing floods the queue),
     * with hysteresis so a queue oscillating around a size does not thrash. */
    if (q->cap > 1024 && q->len < q->cap / 4) {
        q->cap /= 2;
        q->heap = g_renew(qdb_event, q->heap, q->cap);
    }
}

/* Drop stale entries at the top; true when a live one is left there. */
static bool settle(qdb_eventq *q)
{
    while (q->len > 0) {
        if (!q->ops.stale || !q->ops.stale(&q->heap[0], q->arg))
            return true;
        qdb_event ev = q->heap[0];
        remove_top(q);
        if (q->ops.discard)
            q->ops.discard(&ev, q->arg);
    }
    return false;
}

/* ---- public API ------------------------------------------------------------ */

qdb_eventq *qdb_eventq_new(const qdb_eventq_ops *ops, void *arg)
{
    qdb_eventq *q = g_new0(qdb_eventq, 1);
    if (ops)
        q->ops = *ops;
    q->arg = arg;
    q->cap = 64;
    q->heap = g_new(qdb_event, q->cap);
    return q;
}

void qdb_eventq_free(qdb_eventq *q)
{
    if (!q)
        return;
    if (q->ops.discard)
        for (size_t i = 0; i < q->len; i++)
            q->ops.discard(&q->heap[i], q->arg);
    g_free(q->heap);
    g_free(q);
}

uint64_t qdb_eventq_reserve_seq(qdb_eventq *q)
{
    return q->next_seq++;
}

void qdb_eventq_push_seq(qdb_eventq *q, const qdb_event *ev)
{
    if (q->len == q->cap) {
        q->cap *= 2;
        q->heap = g_renew(qdb_event, q->heap, q->cap);
    }
    sift_up(q->heap, q->len, *ev);
    q->len++;
}

uint64_t qdb_eventq_push(qdb_eventq *q, qdb_time_us time, uint32_t kind, uint32_t gen,
                         void *ptr)
{
    qdb_event ev = {.time = time, .seq = q->next_seq++, .ptr = ptr, .kind = kind, .gen = gen};
    qdb_eventq_push_seq(q, &ev);
    return ev.seq;
}

const qdb_event *qdb_eventq_peek(qdb_eventq *q)
{
    return settle(q) ? &q->heap[0] : NULL;
}

bool qdb_eventq_pop(qdb_eventq *q, qdb_event *out)
{
    if (!settle(q))
        return false;
    *out = q->heap[0];
    remove_top(q);
    return true;
}

size_t qdb_eventq_size(const qdb_eventq *q)
{
    return q->len;
}

size_t qdb_eventq_memory(const qdb_eventq *q)
{
    return sizeof *q + q->cap * sizeof(qdb_event);
}

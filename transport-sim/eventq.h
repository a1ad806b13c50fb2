/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulator's event queue: a binary min-heap of small fixed-size events
 * (common/heap.h) with a sequence counter and lazy cancellation on top.
 *
 * Order: by time, then by sequence number.  The sequence is one counter per
 * queue, incremented at every push (or reservation), so two events at the
 * same virtual time come out in the order they were scheduled: the documented
 * tie-break that makes a run reproducible.  Push and pop are O(log n).
 *
 * Cancellation is lazy (libevent's min-heap searches; we do not): the owner
 * keeps its own notion of which events are dead -- typically a generation
 * counter in the object an event refers to -- and the queue asks the owner's
 * stale() predicate whenever an entry reaches the top.  Stale entries are
 * dropped there, handed to discard() so the owner can release their payload,
 * and are never returned.  Nothing is ever searched for.
 *
 * Events are stored by value (32 bytes) so a million pending timers cost
 * 32 MB and no allocation per push.  The queue is not thread-safe; the
 * simulator is single-threaded by design.
 */
#ifndef QDB_EVENTQ_H
#define QDB_EVENTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/heap.h"
#include "types.h"

/* The entry of common/heap.h, under the simulator's names: the heap
 * orders by (time, seq) and carries ptr, kind and gen untouched.
 *   time  when it fires, virtual microseconds (qdb_time_us)
 *   seq   tie-break; assigned by the queue
 *   ptr   owner's payload: never dereferenced by the queue
 *   kind  owner's tag
 *   gen   owner's generation, for lazy cancellation */
typedef qdb_heap_entry qdb_event;

typedef struct qdb_eventq_ops {
    /* Optional.  True when the entry was cancelled and must be skipped.  It
     * is called on the top entry by peek() and pop(), must not touch the
     * queue, and must answer the same for an entry until it is popped. */
    bool (*stale)(const qdb_event *ev, void *arg);
    /* Optional.  Releases the payload of an entry the queue drops: a stale
     * one found at the top, or any entry still queued at qdb_eventq_free(). */
    void (*discard)(qdb_event *ev, void *arg);
} qdb_eventq_ops;

typedef struct qdb_eventq qdb_eventq;

/* ops may be NULL (no cancellation).  ops is copied; arg is the owner's. */
qdb_eventq *qdb_eventq_new(const qdb_eventq_ops *ops, void *arg);
/* Calls discard() on every entry still held, in no particular order (it must
 * not reach behaviour: this is teardown), then frees the queue. */
void qdb_eventq_free(qdb_eventq *q);

/* Take the next sequence number without pushing anything, for an event whose
 * place among equal times must be fixed now but which will be pushed later
 * (possibly more than once: see qdb_eventq_push_seq). */
uint64_t qdb_eventq_reserve_seq(qdb_eventq *q);

/* Push an event at `time`; returns the sequence number it was given. */
uint64_t qdb_eventq_push(qdb_eventq *q, qdb_time_us time, uint32_t kind, uint32_t gen,
                         void *ptr);
/* Push an event with a caller-chosen sequence (ev->seq), normally one from
 * qdb_eventq_reserve_seq().  Re-pushing a popped event with its own seq keeps
 * its place among events at the same time, whenever the re-push happens. */
void qdb_eventq_push_seq(qdb_eventq *q, const qdb_event *ev);

/* The earliest live event, or NULL when none is left.  Stale entries found on
 * the way are dropped (discard()).  The pointer is valid until the next push
 * or pop. */
const qdb_event *qdb_eventq_peek(qdb_eventq *q);
/* Remove the earliest live event into *out; false when none is left. */
bool qdb_eventq_pop(qdb_eventq *q, qdb_event *out);

/* Up to n of the entries that come out next, stale ones included: the top
 * and the two it is compared with next (the top's children).  For
 * prefetching their payloads only -- not an order, and no promise that they
 * are live.  Returns how many were written to out. */
size_t qdb_eventq_upcoming(const qdb_eventq *q, const qdb_event **out, size_t n);

/* Entries held, stale ones included (they are only found at the top). */
size_t qdb_eventq_size(const qdb_eventq *q);
/* Bytes held by the queue itself (not by payloads), approximately. */
size_t qdb_eventq_memory(const qdb_eventq *q);

#endif

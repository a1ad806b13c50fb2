/* SPDX-License-Identifier: BSD-2-Clause */
/* Per-peer retransmission timeouts: see rto.h. */
#include "rto.h"

#include <glib.h>

void qdb_rto_init(qdb_rto *t, unsigned capacity, qdb_time_us initial, qdb_time_us floor,
                  qdb_time_us ceiling)
{
    *t = (qdb_rto){.capacity = capacity ? capacity : 1, .initial = initial};
    t->floor = MIN(floor, initial);
    t->ceiling = MAX(ceiling, initial);
}

void qdb_rto_free(qdb_rto *t)
{
    g_free(t->e);
    t->e = NULL;
    t->n = 0;
}

static qdb_rto_entry *find(qdb_rto *t, qdb_addr a)
{
    for (unsigned i = 0; i < t->n; i++)
        if (qdb_addr_eq(t->e[i].addr, a)) {
            t->e[i].used = ++t->clock;
            return &t->e[i];
        }
    return NULL;
}

/* The entry for a, created (evicting the least recently used) if needed. */
static qdb_rto_entry *get(qdb_rto *t, qdb_addr a)
{
    qdb_rto_entry *e = find(t, a);
    if (e)
        return e;
    if (!t->e)
        t->e = g_new0(qdb_rto_entry, t->capacity);
    unsigned slot = t->n;
    if (t->n == t->capacity) {
        slot = 0;
        for (unsigned i = 1; i < t->n; i++)
            if (t->e[i].used < t->e[slot].used)
                slot = i;
    } else {
        t->n++;
    }
    t->e[slot] = (qdb_rto_entry){.addr = a, .used = ++t->clock, .rto = t->initial};
    return &t->e[slot];
}

qdb_time_us qdb_rto_timeout(qdb_rto *t, qdb_addr a)
{
    qdb_rto_entry *e = find(t, a);
    return e ? e->rto : t->initial;
}

bool qdb_rto_measured(qdb_rto *t, qdb_addr a)
{
    qdb_rto_entry *e = find(t, a);
    return e && e->srtt != 0;
}

void qdb_rto_sample(qdb_rto *t, qdb_addr a, qdb_time_us rtt)
{
    qdb_rto_entry *e = get(t, a);
    if (rtt == 0)
        rtt = 1; /* srtt 0 means "never measured" */
    if (e->srtt == 0) {
        e->srtt = rtt;
        e->rttvar = rtt / 2;
    } else {
        qdb_time_us d = e->srtt > rtt ? e->srtt - rtt : rtt - e->srtt;
        e->rttvar = (3 * e->rttvar + d) / 4;
        e->srtt = (7 * e->srtt + rtt) / 8;
    }
    /* RFC 6298 adds max(G, 4 RTTVAR), G the clock granularity.  Ours is
     * exact, and a link of constant delay drives RTTVAR to 0: RTO would
     * equal the round trip and an answer right on time would race its own
     * deadline.  So the variance term is at least SRTT / 2. */
    qdb_time_us rto = e->srtt + MAX(4 * e->rttvar, e->srtt / 2);
    e->rto = CLAMP(rto, t->floor, t->ceiling);
}

void qdb_rto_backoff(qdb_rto *t, qdb_addr a)
{
    qdb_rto_entry *e = get(t, a);
    e->rto = MIN(e->rto * 2, t->ceiling);
}

void qdb_rto_heard(qdb_rto *t, qdb_addr a, qdb_time_us now)
{
    get(t, a)->heard = now;
}

qdb_time_us qdb_rto_heard_at(const qdb_rto *t, qdb_addr a)
{
    for (unsigned i = 0; i < t->n; i++)
        if (qdb_addr_eq(t->e[i].addr, a))
            return t->e[i].heard;
    return 0;
}

size_t qdb_rto_memory(const qdb_rto *t)
{
    return t->e ? t->capacity * sizeof(qdb_rto_entry) : 0;
}

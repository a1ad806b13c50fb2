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
    g_free(t->key); /* the block used and e live in too */
    t->key = NULL;
    t->used = NULL;
    t->e = NULL;
    t->n = 0;
}

/* The block: capacity keys, the stamps padded to whole 8-byte words (so
 * the entries after them stay aligned), capacity entries. */
static size_t stamp_words(unsigned capacity)
{
    return (capacity + 1) / 2;
}

static size_t block_size(unsigned capacity)
{
    return (capacity + stamp_words(capacity)) * sizeof(uint64_t) +
           capacity * sizeof(qdb_rto_entry);
}

static inline uint64_t pack(qdb_addr a)
{
    return ((uint64_t)a.ip << 16) | a.port;
}

/* The slot of a, or -1. */
static int slot_of(const qdb_rto *t, qdb_addr a)
{
    uint64_t k = pack(a);
    for (unsigned i = 0; i < t->n; i++)
        if (t->key[i] == k)
            return (int)i;
    return -1;
}

static qdb_rto_entry *find(qdb_rto *t, qdb_addr a)
{
    int i = slot_of(t, a);
    if (i < 0)
        return NULL;
    t->used[i] = ++t->clock;
    return &t->e[i];
}

/* The entry for a, created (evicting the least recently used) if needed. */
static qdb_rto_entry *get(qdb_rto *t, qdb_addr a)
{
    qdb_rto_entry *e = find(t, a);
    if (e)
        return e;
    if (!t->e) {
        t->key = g_malloc0(block_size(t->capacity));
        t->used = (uint32_t *)(t->key + t->capacity);
        t->e = (qdb_rto_entry *)(t->key + t->capacity + stamp_words(t->capacity));
    }
    unsigned slot = t->n;
    if (t->n == t->capacity) {
        slot = 0;
        for (unsigned i = 1; i < t->n; i++)
            if (t->used[i] < t->used[slot])
                slot = i;
    } else {
        t->n++;
    }
    t->key[slot] = pack(a);
    t->used[slot] = ++t->clock;
    t->e[slot] = (qdb_rto_entry){.rto = t->initial};
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

/* RFC 6298 adds max(G, 4 RTTVAR), G the clock granularity.  Ours is exact,
 * and a link of constant delay drives RTTVAR to 0: RTO would equal the
 * round trip and an answer right on time would race its own deadline.  So
 * the variance term is at least SRTT / 2. */
static qdb_time_us measured_rto(const qdb_rto *t, const qdb_rto_entry *e)
{
    qdb_time_us rto = e->srtt + MAX(4 * e->rttvar, e->srtt / 2);
    return CLAMP(rto, t->floor, t->ceiling);
}

qdb_time_us qdb_rto_expected(const qdb_rto *t, qdb_addr a)
{
    int i = slot_of(t, a);
    return i < 0 || t->e[i].srtt == 0 ? t->initial : measured_rto(t, &t->e[i]);
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
    e->rto = measured_rto(t, e);
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
    int i = slot_of(t, a);
    return i < 0 ? 0 : t->e[i].heard;
}

size_t qdb_rto_memory(const qdb_rto *t)
{
    return t->e ? block_size(t->capacity) : 0;
}

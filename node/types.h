/* SPDX-License-Identifier: BSD-2-Clause */
/* Small value types shared by every part: clocks, addresses, peers. */
#ifndef QDB_TYPES_H
#define QDB_TYPES_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "defaults.h"
#include "id.h"

/* Microseconds on the node's monotonic clock (virtual in the simulator).
 * Never a wall-clock time: it only orders events and measures delays. */
typedef uint64_t qdb_time_us;
#define QDB_US_PER_S UINT64_C(1000000)
#define QDB_US_PER_MS UINT64_C(1000)

/* An IPv4 endpoint, host byte order.  The simulator gives its virtual nodes
 * addresses of the same form, so frames are the same bytes in both worlds
 * (6 bytes on the wire: 4 of address, 2 of port). */
typedef struct qdb_addr {
    uint32_t ip;
    uint16_t port;
} qdb_addr;

#define QDB_ADDR_STRLEN 22 /* "255.255.255.255:65535" + NUL */

/* Inline: ring routing calls it for every finger it scans (perf at 10,000
 * simulated nodes: the call was an eighth of ring_route). */
static inline bool qdb_addr_eq(qdb_addr a, qdb_addr b)
{
    return a.ip == b.ip && a.port == b.port;
}
int qdb_addr_cmp(qdb_addr a, qdb_addr b);
bool qdb_addr_is_null(qdb_addr a);
/* "a.b.c.d:port" or "a.b.c.d" (default port).  False on bad input. */
bool qdb_addr_parse(qdb_addr *out, const char *text);
char *qdb_addr_format(qdb_addr a, char buf[QDB_ADDR_STRLEN]);
/* Pack into / out of one integer, for hash-table keys (never for order). */
uint64_t qdb_addr_key(qdb_addr a);

/* A node as others know it: where it is on the ring and where to reach it. */
typedef struct qdb_peer {
    qdb_id id;
    qdb_addr addr;
} qdb_peer;

bool qdb_peer_is_null(const qdb_peer *p);
static inline bool qdb_peer_eq(const qdb_peer *a, const qdb_peer *b)
{
    return qdb_addr_eq(a->addr, b->addr) && qdb_id_eq(&a->id, &b->id);
}

/* ---- fixed-width big-endian fields (the wire, storage records, the trace) ----
 * GLib's byte-order macros may evaluate their argument more than once (at -O0
 * GUINT32_TO_BE(x) expands x several times): they only ever see a plain
 * parameter here, so a caller may pass any expression, a random draw
 * included. */
static inline void qdb_be16_put(uint8_t *p, uint16_t v)
{
    v = GUINT16_TO_BE(v);
    memcpy(p, &v, sizeof v);
}

static inline void qdb_be32_put(uint8_t *p, uint32_t v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, sizeof v);
}

static inline void qdb_be64_put(uint8_t *p, uint64_t v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, sizeof v);
}

static inline uint16_t qdb_be16_get(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return GUINT16_FROM_BE(v);
}

static inline uint32_t qdb_be32_get(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return GUINT32_FROM_BE(v);
}

static inline uint64_t qdb_be64_get(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return GUINT64_FROM_BE(v);
}

/* 64 random bits from two g_rand_int() draws, the high word first.  Every
 * u64 drawn from a GRand goes through here: the order is part of every trace
 * hash, and inside one expression the order of the two calls would be
 * unspecified. */
uint64_t qdb_rand_u64(GRand *r);

#endif

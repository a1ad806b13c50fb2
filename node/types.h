/* SPDX-License-Identifier: BSD-2-Clause */
/* Small value types shared by every part: clocks, addresses, peers. */
#ifndef QDB_TYPES_H
#define QDB_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
#define QDB_DEFAULT_PORT 2836

bool qdb_addr_eq(qdb_addr a, qdb_addr b);
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
bool qdb_peer_eq(const qdb_peer *a, const qdb_peer *b);

#endif

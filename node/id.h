/* SPDX-License-Identifier: BSD-2-Clause */
/* Identifiers on the Chord ring: 256-bit unsigned integers modulo 2^256.
 *
 * An entry's ID is SHA-3-256 of its alias; a node's ID comes from --id or from
 * the node's seeded random.  IDs are stored big-endian (b[0] is the most
 * significant byte), so memcmp() order is numeric order and the bytes on the
 * wire, in Berkeley DB keys and in traces are the same.
 *
 * Interval notation follows the Chord papers: (a, b) open, (a, b] half-open,
 * all taken clockwise from a to b.  When a == b the interval is the whole
 * circle ((a, a] contains every ID; (a, a) every ID but a): a one-node ring owns
 * everything, which is what Chord's successor rule needs.
 */
#ifndef QDB_ID_H
#define QDB_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QDB_ID_BYTES 32
#define QDB_ID_BITS 256
#define QDB_ID_HEX (2 * QDB_ID_BYTES)

typedef struct qdb_id {
    uint8_t b[QDB_ID_BYTES];
} qdb_id;

/* Inline, as four 64-bit word compares: ring routing and the simulator's
 * oracle compare IDs in their inner loops, and a call to libc's memcmp per
 * comparison was a fifth of qdbsim's time at 10,000 nodes (perf).  Same
 * order as memcmp on the big-endian bytes. */
static inline uint64_t qdb_id_word_(const qdb_id *a, unsigned k)
{
    uint64_t v;
    memcpy(&v, a->b + 8 * k, sizeof v);
    return __builtin_bswap64(v); /* big-endian on the wire and in memory */
}

static inline int qdb_id_cmp(const qdb_id *a, const qdb_id *b)
{
    for (unsigned k = 0; k < QDB_ID_BYTES / 8; k++) {
        uint64_t x = qdb_id_word_(a, k), y = qdb_id_word_(b, k);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

static inline bool qdb_id_eq(const qdb_id *a, const qdb_id *b)
{
    return memcmp(a->b, b->b, QDB_ID_BYTES) == 0; /* a constant size: inlined */
}

/* x in (a, b), clockwise.  a == b: every x except a.  When a < b the arc
 * does not wrap; when a > b it passes through 0 and is the union of
 * (a, max] and [0, b).  a == b is the whole circle, as said above. */
static inline bool qdb_id_in_open(const qdb_id *x, const qdb_id *a, const qdb_id *b)
{
    int ab = qdb_id_cmp(a, b);
    int xa = qdb_id_cmp(x, a);
    if (ab == 0)
        return xa != 0;
    int xb = qdb_id_cmp(x, b);
    if (ab < 0)
        return xa > 0 && xb < 0;
    return xa > 0 || xb < 0;
}

/* x in (a, b], clockwise.  a == b: every x. */
static inline bool qdb_id_in_half(const qdb_id *x, const qdb_id *a, const qdb_id *b)
{
    int ab = qdb_id_cmp(a, b);
    if (ab == 0)
        return true;
    int xa = qdb_id_cmp(x, a);
    int xb = qdb_id_cmp(x, b);
    if (ab < 0)
        return xa > 0 && xb <= 0;
    return xa > 0 || xb <= 0;
}

/* out = a + 2^i (mod 2^256), 0 <= i < 256: the start of finger i. */
void qdb_id_add_pow2(qdb_id *out, const qdb_id *a, unsigned i);
/* out = a - 1 (mod 2^256): an arc (out, ...] then starts at a itself. */
void qdb_id_before(qdb_id *out, const qdb_id *a);
/* out = b - a (mod 2^256): the clockwise distance from a to b. */
void qdb_id_distance(qdb_id *out, const qdb_id *a, const qdb_id *b);
/* Top 64 bits as an integer: enough to compare and histogram distances. */
uint64_t qdb_id_top64(const qdb_id *a);
/* Build an ID whose top 64 bits are v and whose other bits are zero. */
void qdb_id_from_top64(qdb_id *out, uint64_t v);

/* SHA-3-256 of the bytes: the ID of an alias. */
void qdb_id_hash(qdb_id *out, const void *data, size_t len);

/* Lower-case hex, 64 characters plus NUL. */
void qdb_id_to_hex(const qdb_id *a, char out[QDB_ID_HEX + 1]);
/* Parse 1 to 64 hex digits (right-aligned: "ff" is 255) or a decimal number
 * that fits in 64 bits prefixed with "#" ("#3" is 3).  Returns false on bad
 * input and leaves out untouched. */
bool qdb_id_parse(qdb_id *out, const char *text);

#endif

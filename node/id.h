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

#define QDB_ID_BYTES 32
#define QDB_ID_BITS 256
#define QDB_ID_HEX (2 * QDB_ID_BYTES)

typedef struct qdb_id {
    uint8_t b[QDB_ID_BYTES];
} qdb_id;

int qdb_id_cmp(const qdb_id *a, const qdb_id *b);
bool qdb_id_eq(const qdb_id *a, const qdb_id *b);

/* x in (a, b), clockwise.  a == b: every x except a. */
bool qdb_id_in_open(const qdb_id *x, const qdb_id *a, const qdb_id *b);
/* x in (a, b], clockwise.  a == b: every x. */
bool qdb_id_in_half(const qdb_id *x, const qdb_id *a, const qdb_id *b);

/* out = a + 2^i (mod 2^256), 0 <= i < 256: the start of finger i. */
void qdb_id_add_pow2(qdb_id *out, const qdb_id *a, unsigned i);
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

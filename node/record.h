/* SPDX-License-Identifier: BSD-2-Clause */
/* The storage record of one entry: metadata header and content in one value,
 * so a single put() writes both and they can never disagree.
 *
 * Format 2 (written since versions ordered writes across nodes):
 *   u8  format      2
 *   u8  flags       bit 0: tombstone (the entry was removed; no content)
 *                   bit 1: an expiry follows the header; others reserved, 0
 *   u16 reserved    0
 *   u32 checksum    CRC-32 (zlib) of the content
 *   u64 version     hybrid logical clock of the write, microseconds (version.c)
 *   u64 origin      the first 8 bytes of the writing node's ID: breaks ties
 *   i64 created     wall-clock microseconds (clock seam's wall())
 *   i64 modified
 *   u64 size        content length in bytes
 *   [i64 expiry]    when flags bit 1: absolute UTC seconds after which the
 *                   entry reads as not found (never 0: no expiry, no field)
 *   ... content
 * All integers big-endian: 48 bytes of header (56 with an expiry; a
 * tombstone has none).
 *
 * Format 1 (40 bytes: no origin, no flags, a modification counter where the
 * version is) is still read, so a root written before stays usable: its
 * version is taken to be its modification time, origin 0, which orders it
 * against newer writes the way the clock did.
 */
#ifndef QDB_RECORD_H
#define QDB_RECORD_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "error.h"
#include "id.h"

#define QDB_RECORD_FORMAT 2
#define QDB_RECORD_HEADER 48    /* format 2 */
#define QDB_RECORD_HEADER_V1 40 /* format 1, read only */
#define QDB_RECORD_HEADER_MAX (QDB_RECORD_HEADER + 8) /* with an expiry */
#define QDB_RECORD_TOMBSTONE 1u   /* flags */
#define QDB_RECORD_HAS_EXPIRY 2u  /* flags: the i64 expiry follows the header */

typedef struct qdb_record_meta {
    uint64_t version;  /* the hybrid logical clock of the write */
    uint64_t origin;   /* ties between equal versions: the higher origin wins */
    int64_t created_us;
    int64_t modified_us;
    uint64_t size;
    uint32_t checksum;
    bool tombstone;    /* removed: size is 0, no expiry */
    int64_t expiry_s;  /* absolute UTC seconds; 0: never */
} qdb_record_meta;

/* Has the entry expired at wall-clock time wall_us (clock seam's wall())? */
bool qdb_record_expired(const qdb_record_meta *meta, int64_t wall_us);

/* Which of two writes of one entry wins: > 0 when a is newer than b, < 0
 * when older, 0 for the same write.  Version, then origin. */
int qdb_record_cmp(const qdb_record_meta *a, const qdb_record_meta *b);

/* Appends header + content to out, in the current format. */
void qdb_record_encode(const qdb_record_meta *meta, const uint8_t *content, GByteArray *out);
/* The header alone (its checksum computed over content, meta->size bytes)
 * into h; returns its length.  The record is h's bytes then the content. */
size_t qdb_record_encode_header(const qdb_record_meta *meta, const uint8_t *content,
                                uint8_t h[QDB_RECORD_HEADER_MAX]);
/* QDB_OK and *content pointing into value, or QDB_E_STORAGE on a corrupt
 * record (bad format byte, size or checksum). */
int qdb_record_decode(const uint8_t *value, size_t value_len, qdb_record_meta *meta,
                      const uint8_t **content);

/* The header only, without checking the content against its checksum: for
 * writes that replace the content and need only the old metadata (reading
 * the content is where a checksum is checked). */
int qdb_record_decode_meta(const uint8_t *value, size_t value_len, qdb_record_meta *meta);

/* The live entries of a store (tombstones not counted: *tombstones gets
 * those when not NULL); a corrupt record counts as live.  A full scan. */
uint64_t qdb_record_count(qdb_storage *st, uint64_t *tombstones);

/* Storage key of an alias: ID (32 bytes) then the alias bytes; returns length. */
size_t qdb_record_key(uint8_t *out, const qdb_id *id, const uint8_t *alias, size_t alias_len);

#endif

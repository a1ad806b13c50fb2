/* SPDX-License-Identifier: BSD-2-Clause */
/* The storage record of one entry: metadata header and content in one value,
 * so a single put() writes both and they can never disagree.
 *
 *   u8  format      QDB_RECORD_FORMAT
 *   u8  flags       reserved, 0
 *   u16 reserved    0
 *   u32 checksum    CRC-32 (zlib) of the content
 *   u64 version     1 on creation, +1 on every modification
 *   i64 created     wall-clock microseconds (clock seam's wall())
 *   i64 modified
 *   u64 size        content length in bytes
 *   ... content
 * All integers big-endian: 40 bytes of header.
 */
#ifndef QDB_RECORD_H
#define QDB_RECORD_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "id.h"

#define QDB_RECORD_FORMAT 1
#define QDB_RECORD_HEADER 40

typedef struct qdb_record_meta {
    uint64_t version;
    int64_t created_us;
    int64_t modified_us;
    uint64_t size;
    uint32_t checksum;
} qdb_record_meta;

/* Appends header + content to out. */
void qdb_record_encode(const qdb_record_meta *meta, const uint8_t *content, GByteArray *out);
/* QDB_OK and *content pointing into value, or QDB_E_STORAGE on a corrupt
 * record (bad format byte, size or checksum). */
int qdb_record_decode(const uint8_t *value, size_t value_len, qdb_record_meta *meta,
                      const uint8_t **content);

/* The header only, without checking the content against its checksum: for
 * writes that replace the content and need only the old metadata (reading
 * the content is where a checksum is checked). */
int qdb_record_decode_meta(const uint8_t *value, size_t value_len, qdb_record_meta *meta);

/* Storage key of an alias: ID (32 bytes) then the alias bytes; returns length. */
size_t qdb_record_key(uint8_t *out, const qdb_id *id, const uint8_t *alias, size_t alias_len);

#endif

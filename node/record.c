/* SPDX-License-Identifier: BSD-2-Clause */
/* Storage records: a 40-byte big-endian metadata header followed by the
 * content, stored as one value so data and metadata are written together.
 *
 * The checksum (zlib CRC-32) covers the content only; it is computed here on
 * encode, never taken from the caller, so a record can only carry the CRC of
 * the bytes it actually holds.  Decode rejects anything it does not fully
 * understand (format, reserved bits, size, checksum) as QDB_E_STORAGE: a
 * store that garbled a value must not hand garbage to a client.
 */
#include "record.h"

#include <string.h>
#include <zlib.h>

#include "codec.h"
#include "types.h"

static uint32_t content_crc(const uint8_t *content, size_t len)
{
    /* crc32_z takes a size_t length: no 4 GiB chunking needed. */
    uLong crc = crc32_z(0L, Z_NULL, 0);
    if (len > 0)
        crc = crc32_z(crc, content, len);
    return (uint32_t)crc;
}

/* meta->size is the content length; meta->checksum is ignored (recomputed). */
void qdb_record_encode(const qdb_record_meta *meta, const uint8_t *content, GByteArray *out)
{
    uint8_t h[QDB_RECORD_HEADER + 8];
    bool expires = meta->expiry_s != 0;
    h[0] = QDB_RECORD_FORMAT;
    h[1] = expires ? QDB_RECORD_HAS_EXPIRY : 0; /* flags */
    h[2] = h[3] = 0;
    qdb_be32_put(h + 4, content_crc(content, (size_t)meta->size));
    qdb_be64_put(h + 8, meta->version);
    qdb_be64_put(h + 16, (uint64_t)meta->created_us);
    qdb_be64_put(h + 24, (uint64_t)meta->modified_us);
    qdb_be64_put(h + 32, meta->size);
    qdb_be64_put(h + QDB_RECORD_HEADER, (uint64_t)meta->expiry_s);
    g_byte_array_append(out, h, QDB_RECORD_HEADER + (expires ? 8 : 0));
    if (meta->size > 0)
        g_byte_array_append(out, content, (guint)meta->size);
}

/* The header's length, expiry included; value holds at least the 40 bytes. */
static size_t record_header_len(const uint8_t *value)
{
    return QDB_RECORD_HEADER + (value[1] & QDB_RECORD_HAS_EXPIRY ? 8 : 0);
}

bool qdb_record_expired(const qdb_record_meta *meta, int64_t wall_us)
{
    return meta->expiry_s != 0 && wall_us / 1000000 >= meta->expiry_s;
}

int qdb_record_decode_meta(const uint8_t *value, size_t value_len, qdb_record_meta *meta)
{
    if (value == NULL || value_len < QDB_RECORD_HEADER)
        return QDB_E_STORAGE;
    if (value[0] != QDB_RECORD_FORMAT || (value[1] & ~QDB_RECORD_HAS_EXPIRY) != 0 ||
        value[2] != 0 || value[3] != 0)
        return QDB_E_STORAGE;
    size_t header = record_header_len(value);
    if (value_len < header)
        return QDB_E_STORAGE;
    uint64_t size = qdb_be64_get(value + 32);
    if (size != value_len - header)
        return QDB_E_STORAGE;
    meta->expiry_s = 0;
    if (header > QDB_RECORD_HEADER) {
        meta->expiry_s = (int64_t)qdb_be64_get(value + QDB_RECORD_HEADER);
        if (meta->expiry_s <= 0 || meta->expiry_s > QDB_EXPIRY_MAX)
            return QDB_E_STORAGE; /* the encoder never writes these */
    }
    meta->version = qdb_be64_get(value + 8);
    meta->created_us = (int64_t)qdb_be64_get(value + 16);
    meta->modified_us = (int64_t)qdb_be64_get(value + 24);
    meta->size = size;
    meta->checksum = qdb_be32_get(value + 4);
    return QDB_OK;
}

int qdb_record_decode(const uint8_t *value, size_t value_len, qdb_record_meta *meta,
                      const uint8_t **content)
{
    int rc = qdb_record_decode_meta(value, value_len, meta);
    if (rc != QDB_OK)
        return rc;
    const uint8_t *body = value + record_header_len(value);
    if (content_crc(body, (size_t)meta->size) != meta->checksum)
        return QDB_E_STORAGE;
    *content = body;
    return QDB_OK;
}

size_t qdb_record_key(uint8_t *out, const qdb_id *id, const uint8_t *alias, size_t alias_len)
{
    memcpy(out, id->b, QDB_ID_BYTES);
    if (alias_len > 0)
        memcpy(out + QDB_ID_BYTES, alias, alias_len);
    return QDB_ID_BYTES + alias_len;
}

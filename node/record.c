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
    uint8_t h[QDB_RECORD_HEADER];
    h[0] = QDB_RECORD_FORMAT;
    h[1] = 0; /* flags */
    h[2] = h[3] = 0;
    qdb_be32_put(h + 4, content_crc(content, (size_t)meta->size));
    qdb_be64_put(h + 8, meta->version);
    qdb_be64_put(h + 16, (uint64_t)meta->created_us);
    qdb_be64_put(h + 24, (uint64_t)meta->modified_us);
    qdb_be64_put(h + 32, meta->size);
    g_byte_array_append(out, h, sizeof h);
    if (meta->size > 0)
        g_byte_array_append(out, content, (guint)meta->size);
}

int qdb_record_decode_meta(const uint8_t *value, size_t value_len, qdb_record_meta *meta)
{
    if (value == NULL || value_len < QDB_RECORD_HEADER)
        return QDB_E_STORAGE;
    if (value[0] != QDB_RECORD_FORMAT || value[1] != 0 || value[2] != 0 || value[3] != 0)
        return QDB_E_STORAGE;
    uint64_t size = qdb_be64_get(value + 32);
    if (size != value_len - QDB_RECORD_HEADER)
        return QDB_E_STORAGE;
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
    const uint8_t *body = value + QDB_RECORD_HEADER;
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

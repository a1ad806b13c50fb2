/* SPDX-License-Identifier: BSD-2-Clause */
/* Storage records: a big-endian metadata header (48 bytes, 56 with an
 * expiry; 40 in the format-1 records still read) followed by the content, stored as one value
 * so data and metadata are written together.
 *
 * The checksum (zlib's CRC-32, computed by libdeflate) covers the content only; it is computed here on
 * encode, never taken from the caller, so a record can only carry the CRC of
 * the bytes it actually holds.  Decode rejects anything it does not fully
 * understand (format, reserved bits, size, checksum) as QDB_E_STORAGE: a
 * store that garbled a value must not hand garbage to a client.
 */
#include "record.h"

#include <libdeflate.h>
#include <string.h>

#include "codec.h"
#include "types.h"

/* zlib's CRC-32 (the same polynomial and bits), from libdeflate: it folds
 * with carry-less multiplication where the CPU has it, 3x zlib's speed on a
 * 1 KiB value; the checksum was 9% of qdbd's CPU under make bench's load. */
static uint32_t content_crc(const uint8_t *content, size_t len)
{
    return len > 0 ? libdeflate_crc32(0, content, len) : 0;
}

/* meta->size is the content length; meta->checksum is ignored (recomputed). */
size_t qdb_record_encode_header(const qdb_record_meta *meta, const uint8_t *content,
                                uint8_t h[QDB_RECORD_HEADER_MAX])
{
    bool expires = meta->expiry_s != 0 && !meta->tombstone;
    h[0] = QDB_RECORD_FORMAT;
    h[1] = (meta->tombstone ? QDB_RECORD_TOMBSTONE : 0) | (expires ? QDB_RECORD_HAS_EXPIRY : 0);
    h[2] = h[3] = 0;
    qdb_be32_put(h + 4, content_crc(content, (size_t)meta->size));
    qdb_be64_put(h + 8, meta->version);
    qdb_be64_put(h + 16, meta->origin);
    qdb_be64_put(h + 24, (uint64_t)meta->created_us);
    qdb_be64_put(h + 32, (uint64_t)meta->modified_us);
    qdb_be64_put(h + 40, meta->size);
    qdb_be64_put(h + QDB_RECORD_HEADER, (uint64_t)meta->expiry_s);
    return QDB_RECORD_HEADER + (expires ? 8 : 0);
}

void qdb_record_encode(const qdb_record_meta *meta, const uint8_t *content, GByteArray *out)
{
    uint8_t h[QDB_RECORD_HEADER_MAX];
    g_byte_array_append(out, h, (guint)qdb_record_encode_header(meta, content, h));
    if (meta->size > 0)
        g_byte_array_append(out, content, (guint)meta->size);
}

bool qdb_record_expired(const qdb_record_meta *meta, int64_t wall_us)
{
    return meta->expiry_s != 0 && wall_us / 1000000 >= meta->expiry_s;
}

/* The header, of either format, with its expiry; returns its length, or 0
 * when the value is not a record we understand. */
static size_t decode_header(const uint8_t *value, size_t value_len, qdb_record_meta *meta)
{
    if (value == NULL || value_len < 4 || value[2] != 0 || value[3] != 0)
        return 0;
    size_t hl = value[0] == QDB_RECORD_FORMAT ? QDB_RECORD_HEADER
              : value[0] == 1                  ? QDB_RECORD_HEADER_V1
                                               : 0;
    if (hl == 0 || value_len < hl)
        return 0;
    unsigned flags = value[1];
    uint64_t size = qdb_be64_get(value + hl - 8);
    meta->size = size;
    meta->checksum = qdb_be32_get(value + 4);
    meta->expiry_s = 0;
    if (hl == QDB_RECORD_HEADER_V1) {
        if (flags != 0 || size != value_len - hl)
            return 0;
        meta->created_us = (int64_t)qdb_be64_get(value + 16);
        meta->modified_us = (int64_t)qdb_be64_get(value + 24);
        meta->version = (uint64_t)meta->modified_us; /* its counter orders nothing across nodes */
        meta->origin = 0;
        meta->tombstone = false;
        return hl;
    }
    if ((flags & ~(QDB_RECORD_TOMBSTONE | QDB_RECORD_HAS_EXPIRY)) ||
        ((flags & QDB_RECORD_TOMBSTONE) && (size != 0 || (flags & QDB_RECORD_HAS_EXPIRY))))
        return 0;
    if (flags & QDB_RECORD_HAS_EXPIRY) {
        if (value_len < hl + 8)
            return 0;
        meta->expiry_s = (int64_t)qdb_be64_get(value + hl);
        if (meta->expiry_s <= 0 || meta->expiry_s > QDB_EXPIRY_MAX)
            return 0; /* the encoder never writes these */
        hl += 8;
    }
    if (size != value_len - hl)
        return 0;
    meta->version = qdb_be64_get(value + 8);
    meta->origin = qdb_be64_get(value + 16);
    meta->created_us = (int64_t)qdb_be64_get(value + 24);
    meta->modified_us = (int64_t)qdb_be64_get(value + 32);
    meta->tombstone = flags & QDB_RECORD_TOMBSTONE;
    return hl;
}

int qdb_record_decode_meta(const uint8_t *value, size_t value_len, qdb_record_meta *meta)
{
    return decode_header(value, value_len, meta) ? QDB_OK : QDB_E_STORAGE;
}

int qdb_record_decode(const uint8_t *value, size_t value_len, qdb_record_meta *meta,
                      const uint8_t **content)
{
    size_t hl = decode_header(value, value_len, meta);
    if (hl == 0)
        return QDB_E_STORAGE;
    const uint8_t *body = value + hl;
    if (content_crc(body, (size_t)meta->size) != meta->checksum)
        return QDB_E_STORAGE;
    *content = body;
    return QDB_OK;
}

int qdb_record_cmp(const qdb_record_meta *a, const qdb_record_meta *b)
{
    if (a->version != b->version)
        return a->version > b->version ? 1 : -1;
    if (a->origin != b->origin)
        return a->origin > b->origin ? 1 : -1;
    return 0;
}

typedef struct count_ctx {
    uint64_t live, dead;
} count_ctx;

static int count_one(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    count_ctx *c = arg;
    qdb_record_meta meta;
    if (decode_header(v, vl, &meta) && meta.tombstone)
        c->dead++;
    else
        c->live++;
    return 0;
}

uint64_t qdb_record_count(qdb_storage *st, uint64_t *tombstones)
{
    count_ctx c = {0, 0};
    st->iterate(st, NULL, 0, NULL, 0, count_one, &c);
    if (tombstones)
        *tombstones = c.dead;
    return c.live;
}

size_t qdb_record_key(uint8_t *out, const qdb_id *id, const uint8_t *alias, size_t alias_len)
{
    memcpy(out, id->b, QDB_ID_BYTES);
    if (alias_len > 0)
        memcpy(out + QDB_ID_BYTES, alias, alias_len);
    return QDB_ID_BYTES + alias_len;
}

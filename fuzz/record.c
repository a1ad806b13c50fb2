/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "record": the storage record decoder (node/record.c), which
 * reads whatever the store holds -- a root written by an older qdbd, or bytes
 * garbled on disk.
 *
 * Input: the stored value.
 * Property: nothing read outside it; the header alone and the whole record
 * agree; an accepted format-2 record (reserved bytes 0, as the encoder
 * writes them) encodes back to the same bytes. */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    qdb_record_meta head, meta;
    const uint8_t *content = NULL;
    int hrc = qdb_record_decode_meta(data, size, &head);
    int rc = qdb_record_decode(data, size, &meta, &content);
    if (rc != QDB_OK)
        return 0;
    fuzz_assert(hrc == QDB_OK);
    fuzz_assert(head.version == meta.version && head.origin == meta.origin &&
                head.created_us == meta.created_us && head.modified_us == meta.modified_us &&
                head.size == meta.size && head.checksum == meta.checksum &&
                head.tombstone == meta.tombstone && head.expiry_s == meta.expiry_s);
    fuzz_assert(content >= data && meta.size <= size &&
                (size_t)(content - data) == size - meta.size);
    fuzz_assert(!meta.tombstone || (meta.size == 0 && meta.expiry_s == 0));
    if (data[0] != QDB_RECORD_FORMAT || data[2] != 0 || data[3] != 0)
        return 0;
    GByteArray *again = g_byte_array_new();
    qdb_record_encode(&meta, content, again);
    fuzz_assert(again->len == size && memcmp(again->data, data, size) == 0);
    g_byte_array_unref(again);
    return 0;
}

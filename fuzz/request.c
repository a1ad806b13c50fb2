/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "request": qdb_request_peek(), which reads the start of a
 * client request conn.c will not take (a frame over --max-frame) to answer
 * it CONTENT_TOO_LARGE from whatever part of it has arrived.
 *
 * Input: the start of one frame (bytes past its length are ignored by the
 * peek, as in conn.c, which hands it what it has).
 *
 * Properties:
 *  - an answer never depends on bytes not yet arrived: over the prefixes of
 *    the input, the code is TRUNCATED until it is final, and once QDB_OK the
 *    type and the sequence number never change; a known alias length (not 0)
 *    never changes either;
 *  - QDB_OK names a request, with a sequence number a REPLY can carry;
 *  - a request the decoder takes whole is peeked as what it decodes to:
 *    same type, same sequence number, same alias length. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "fuzz.h"

/* The alias length the peek reports for a decoded request m. */
static uint64_t alias_of(const qdb_msg *m)
{
    return m->type == QDB_MSG_REMOVE_ALL || m->type == QDB_MSG_PREFIX ? 0 : m->alias_len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int type, ftype = 0;
    uint64_t seq, alias_len, fseq = 0, falias = 0;
    int final = qdb_request_peek(data, size, &ftype, &fseq, &falias);
    if (final == QDB_OK) {
        fuzz_assert(qdb_msg_is_request(ftype));
        fuzz_assert(fseq <= UINT32_MAX);
    }
    /* the peek reads a prefix, a tag and two varints: 32 bytes cover it */
    bool ok = false;
    uint64_t known_alias = 0;
    for (size_t len = 0; len <= MIN(size, (size_t)32); len++) {
        int rc = qdb_request_peek(data, len, &type, &seq, &alias_len);
        if (rc == QDB_E_TRUNCATED) {
            fuzz_assert(!ok);
            continue;
        }
        fuzz_assert(rc == final);
        if (rc != QDB_OK)
            continue;
        ok = true;
        fuzz_assert(type == ftype && seq == fseq);
        if (known_alias)
            fuzz_assert(alias_len == known_alias);
        if (alias_len) {
            fuzz_assert(alias_len == falias);
            known_alias = alias_len;
        }
    }
    size_t flen;
    qdb_msg m;
    if (qdb_frame_peek(data, size, &flen) == QDB_OK && flen <= size &&
        qdb_msg_decode(data, flen, &m) == QDB_OK && m.type < 32 && qdb_msg_is_request(m.type)) {
        fuzz_assert(final == QDB_OK);
        fuzz_assert(ftype == m.type && fseq == m.seq && falias == alias_of(&m));
    }
    return 0;
}

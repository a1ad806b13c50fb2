/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "msg": every message body decoder, and the payloads decoded
 * out of a REPLY (a peer, an entry's metadata).
 *
 * Input: byte 0 chooses.
 *   0..31     the type: the rest is a body of type byte0, framed here (the
 *             right length prefix and tag), so every body decoder is reached
 *             without the fuzzer having to guess a length
 *   32..63    the rest is a whole frame, prefix and tag included
 *   64        a peer (qdb_peer_decode), 65 metadata (qdb_meta_decode)
 *   others    as 32..63
 * Property: nothing read outside the input; what the decoder accepts the
 * encoder gives back byte for byte (fuzz_check_frame), and the same for a
 * peer and metadata. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "fuzz.h"

static void check_peer(const uint8_t *p, size_t len)
{
    qdb_peer peer;
    if (qdb_peer_decode(p, len, &peer) != QDB_OK)
        return;
    uint8_t again[QDB_PEER_WIRE];
    qdb_peer_encode(&peer, again);
    fuzz_assert(len == QDB_PEER_WIRE && memcmp(again, p, len) == 0);
}

static void check_meta(const uint8_t *p, size_t len)
{
    qdb_meta meta;
    if (qdb_meta_decode(p, len, &meta) != QDB_OK)
        return;
    uint8_t again[QDB_META_WIRE];
    qdb_meta_encode(&meta, again);
    fuzz_assert(len == QDB_META_WIRE && memcmp(again, p, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *rest = data + 1;
    size_t len = size - 1;
    if (data[0] < 32) {
        /* length prefix (1 + len bytes follow), tag, body */
        uint8_t *frame = g_malloc(10 + 1 + len);
        size_t n = qdb_varint_put(frame, 1 + (uint64_t)len);
        frame[n++] = (uint8_t)(QDB_PROTO_VERSION << 5 | data[0]);
        if (len > 0)
            memcpy(frame + n, rest, len);
        fuzz_check_frame(frame, n + len);
        g_free(frame);
    } else if (data[0] == 64) {
        check_peer(rest, len);
    } else if (data[0] == 65) {
        check_meta(rest, len);
    } else {
        fuzz_check_frame(rest, len);
    }
    return 0;
}

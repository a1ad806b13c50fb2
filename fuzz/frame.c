/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "frame": the streaming frame decoder -- how a TCP byte stream
 * is cut into frames (transport-real/conn.c's conn_deliver(), for qdbd and
 * libqdb alike: qdb_frame_peek() over a growing buffer) and each whole frame
 * decoded.
 *
 * Input: byte 0 seeds the sizes of the reads (1..64 bytes, or 1..4 when
 * bit 7 is set: prefixes split byte by byte), the rest is the stream.
 *
 * Property: the frames cut and the way the stream ends (a bad prefix, or an
 * unfinished frame) do not depend on how the stream was split into reads --
 * a prefix peeked before its last byte arrived is TRUNCATED, never a wrong
 * length or a false error -- and equal a cut of the whole stream at once. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "fuzz.h"

typedef struct cut {
    GArray *ends; /* size_t: the end offset of each frame, in stream order */
    int last;     /* how the stream ended: QDB_E_TRUNCATED or the prefix's error */
} cut;

/* The stream all at once. */
static void cut_whole(const uint8_t *s, size_t len, cut *out)
{
    size_t at = 0;
    out->last = QDB_E_TRUNCATED;
    while (at < len) {
        size_t flen;
        int rc = qdb_frame_peek(s + at, len - at, &flen);
        if (rc != QDB_OK) {
            out->last = rc;
            return;
        }
        fuzz_assert(flen > 0 && flen <= QDB_FRAME_MAX + 4);
        if (len - at < flen)
            return;
        at += flen;
        g_array_append_val(out->ends, at);
    }
}

/* The stream read by read, as conn_deliver() keeps it: bytes appended to
 * `in`, consumed from in_off, the consumed head dropped when a frame is
 * incomplete. */
static void cut_reads(const uint8_t *s, size_t len, uint8_t seed, cut *out)
{
    GByteArray *in = g_byte_array_new();
    size_t in_off = 0, consumed = 0, pos = 0;
    unsigned span = seed & 0x80 ? 4 : 64;
    uint32_t x = seed * 2654435761u + 1;
    out->last = QDB_E_TRUNCATED;
    while (pos < len) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        size_t r = 1 + x % span;
        if (r > len - pos)
            r = len - pos;
        g_byte_array_append(in, s + pos, (guint)r);
        pos += r;
        for (;;) {
            size_t avail = in->len - in_off, flen;
            if (avail == 0)
                break;
            int rc = qdb_frame_peek(in->data + in_off, avail, &flen);
            if (rc == QDB_E_TRUNCATED)
                break;
            if (rc != QDB_OK) {
                out->last = rc;
                g_byte_array_unref(in);
                return; /* the connection is closed */
            }
            if (avail < flen) {
                g_byte_array_remove_range(in, 0, (guint)in_off);
                consumed += in_off;
                in_off = 0;
                break;
            }
            fuzz_check_frame(in->data + in_off, flen);
            in_off += flen;
            size_t end = consumed + in_off;
            g_array_append_val(out->ends, end);
        }
    }
    g_byte_array_unref(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *s = data + 1;
    size_t len = size - 1;
    cut whole = {g_array_new(FALSE, FALSE, sizeof(size_t)), 0};
    cut reads = {g_array_new(FALSE, FALSE, sizeof(size_t)), 0};
    cut_whole(s, len, &whole);
    cut_reads(s, len, data[0], &reads);
    fuzz_assert(whole.last == reads.last);
    fuzz_assert(whole.ends->len == reads.ends->len);
    for (guint i = 0; i < whole.ends->len; i++)
        fuzz_assert(g_array_index(whole.ends, size_t, i) == g_array_index(reads.ends, size_t, i));
    g_array_unref(whole.ends);
    g_array_unref(reads.ends);
    return 0;
}

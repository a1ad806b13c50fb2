/* SPDX-License-Identifier: BSD-2-Clause */
/* Ring identifiers: 256-bit arithmetic modulo 2^256 on big-endian byte arrays.
 *
 * Sections: arithmetic (fingers, distances), SHA-3-256 through OpenSSL
 * EVP, hex text.  Comparison and the Chord intervals are inline in id.h:
 * they are the inner loop of routing.
 *
 * IDs are big-endian so memcmp() is numeric order; every operation here is a
 * plain byte loop over 32 bytes -- cheap enough that the simulator can call
 * them millions of times without a bignum library.
 */
#include "id.h"

#include <glib.h>
#include <openssl/evp.h>
#include <string.h>

#include "types.h" /* big-endian fields */

/* ---- arithmetic ------------------------------------------------------------ */

void qdb_id_before(qdb_id *out, const qdb_id *a)
{
    *out = *a;
    for (int i = QDB_ID_BYTES - 1; i >= 0 && out->b[i]-- == 0; i--)
        ;
}

void qdb_id_add_pow2(qdb_id *out, const qdb_id *a, unsigned i)
{
    g_return_if_fail(i < QDB_ID_BITS);
    if (out != a)
        *out = *a;
    /* Bit i lives in byte 31 - i/8; the carry runs towards b[0] and whatever
     * leaves b[0] is dropped: that is the "mod 2^256". */
    int pos = QDB_ID_BYTES - 1 - (int)(i / 8);
    unsigned carry = 1u << (i % 8);
    for (; pos >= 0 && carry; pos--) {
        unsigned sum = out->b[pos] + carry;
        out->b[pos] = (uint8_t)sum;
        carry = sum >> 8;
    }
}

void qdb_id_distance(qdb_id *out, const qdb_id *a, const qdb_id *b)
{
    /* Copy first: out may alias a or b. */
    qdb_id x = *a, y = *b;
    unsigned borrow = 0;
    for (int pos = QDB_ID_BYTES - 1; pos >= 0; pos--) {
        unsigned d = (unsigned)y.b[pos] - x.b[pos] - borrow;
        out->b[pos] = (uint8_t)d;
        borrow = (d >> 8) & 1; /* wrapped below zero */
    }
}

uint64_t qdb_id_top64(const qdb_id *a)
{
    return qdb_be64_get(a->b);
}

void qdb_id_from_top64(qdb_id *out, uint64_t v)
{
    memset(out, 0, sizeof *out);
    qdb_be64_put(out->b, v);
}

/* ---- SHA-3-256 --------------------------------------------------------------
 * The digest is fetched from the default provider once and kept: OpenSSL 3
 * would otherwise repeat an implicit fetch (a locked method-store lookup) on
 * every hash.  The fetched object is immutable and the same in every run, so
 * keeping it does not break the no-process-state rule in spirit: it holds no
 * state that can differ between nodes or runs. */

static gpointer sha3_fetch(gpointer unused)
{
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA3-256", NULL);
    if (md == NULL)
        g_error("OpenSSL: SHA3-256 is not available");
    return md;
}

/* Digest contexts per thread, reused: EVP_Digest() allocates, resets and
 * cleanses a context on every call, which cost a node ~10% of its CPU under
 * load (measured with perf in make bench).  sha3_init is initialised once
 * and copied into sha3_ctx for each hash: the copy is a memcpy of the
 * sponge, where EVP_DigestInit_ex2() checks and re-resolves the method each
 * time (10% of a short alias's hash, 307 against 277 ns on the reference
 * VM).  Neither carries anything from one hash to the next, so reuse
 * changes no result. */
static _Thread_local EVP_MD_CTX *sha3_init;
static _Thread_local EVP_MD_CTX *sha3_ctx;

void qdb_id_hash(qdb_id *out, const void *data, size_t len)
{
    static GOnce once = G_ONCE_INIT;
    unsigned int n = 0;
    static const uint8_t empty[1];
    if (data == NULL)
        data = empty; /* len is 0: give OpenSSL a valid pointer anyway */
    if (!sha3_init) {
        const EVP_MD *md = g_once(&once, sha3_fetch, NULL);
        sha3_init = EVP_MD_CTX_new();
        sha3_ctx = EVP_MD_CTX_new();
        if (!sha3_init || !sha3_ctx || EVP_DigestInit_ex2(sha3_init, md, NULL) != 1)
            g_error("OpenSSL: SHA3-256 digest failed");
    }
    if (EVP_MD_CTX_copy_ex(sha3_ctx, sha3_init) != 1 ||
        EVP_DigestUpdate(sha3_ctx, data, len) != 1 ||
        EVP_DigestFinal_ex(sha3_ctx, out->b, &n) != 1 || n != QDB_ID_BYTES)
        g_error("OpenSSL: SHA3-256 digest failed");
}

/* ---- hex text ----------------------------------------------------------------- */

void qdb_id_to_hex(const qdb_id *a, char out[QDB_ID_HEX + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int k = 0; k < QDB_ID_BYTES; k++) {
        out[2 * k] = digits[a->b[k] >> 4];
        out[2 * k + 1] = digits[a->b[k] & 15];
    }
    out[QDB_ID_HEX] = '\0';
}

bool qdb_id_parse(qdb_id *out, const char *text)
{
    if (text == NULL)
        return false;
    if (text[0] == '#') {
        /* GLib rejects signs, blanks, empty text and overflow for us. */
        guint64 v;
        if (!g_ascii_string_to_unsigned(text + 1, 10, 0, G_MAXUINT64, &v, NULL))
            return false;
        qdb_id id = {{0}};
        for (int k = QDB_ID_BYTES - 1; k >= QDB_ID_BYTES - 8; k--) {
            id.b[k] = (uint8_t)v;
            v >>= 8;
        }
        *out = id;
        return true;
    }
    size_t n = strlen(text);
    if (n == 0 || n > QDB_ID_HEX)
        return false;
    /* Right-aligned: the last digit is the least significant nibble. */
    qdb_id id = {{0}};
    for (size_t k = 0; k < n; k++) {
        char c = text[n - 1 - k];
        if (!g_ascii_isxdigit(c))
            return false;
        unsigned v = (unsigned)g_ascii_xdigit_value(c);
        id.b[QDB_ID_BYTES - 1 - k / 2] |= (uint8_t)(k % 2 ? v << 4 : v);
    }
    *out = id;
    return true;
}

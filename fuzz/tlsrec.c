/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "tlsrec": the TLS 1.3 record layer of transport-real/tls.c
 * (rec_recv and what it calls: rec_complete, rec_open, rec_control), which
 * opens whatever a peer sends once the handshake is done.
 *
 * The reader is a server connection keyed without a handshake (tls_rec.h)
 * on one end of a socketpair.  The other end is written by a model of the
 * client written here from RFC 8446 alone (HKDF-Expand-Label built by hand
 * on OpenSSL's HKDF, AES-128-GCM through EVP: no code of tls.c's), which
 * seals the records the input asks for, spoils some, and opens what the
 * reader sends back (its KeyUpdate answers, its data).
 *
 * Input: one byte per operation (low 4 bits), with its arguments:
 *   0-1  data record: 1 byte length L, L bytes of data, 1 byte padding
 *        (bit 7 set: bits 0-6 zero bytes of padding)
 *   2    big data record: 2 bytes length (LE, mod 2^14 + 300: past 2^14 is
 *        record_overflow), generated data, 1 byte padding
 *   3    KeyUpdate: 1 byte, bit 0 update_requested
 *   4    alert: 2 bytes, level and description (0: close_notify)
 *   5    any record: 1 byte inner content type, 1 byte length L, L bytes,
 *        1 byte padding (a KeyUpdate or alert made so counts as one)
 *   6    a data record with one bit flipped: 1 byte length, the data,
 *        2 bytes position (LE, mod the record's length), 1 byte bit
 *   7    the last record sent whole and unchanged, sent again (a replay)
 *   8    garbage: 1 byte length L, L bytes as they are
 *   9    a data record cut short: 1 byte length, the data, 1 byte: how much
 *        of it is sent (the rest never is)
 *   10   write: 1 byte, how much of what was sealed the socket is offered
 *   11   read: 1 byte, the size of the reader's buffer (1..128, then up to
 *        64 KiB: 2^14 and around it), one tls_conn_recv
 *   12   EOF (shutdown(SHUT_WR) once all sealed bytes are written)
 *   13   the reader sends data: 1 byte length
 *   14   the reader sends a KeyUpdate: 1 byte, bit 0 update_requested
 *   15   write everything sealed
 * At the end everything is written, EOF sent and the reader read until it
 * ends.  Sealed bytes the reader would take past 256 KiB are not made, nor
 * KeyUpdates past KU_MAX each way.
 *
 * Properties:
 *  - every byte the reader delivers is the next byte of the data sealed in
 *    good records, in order; nothing after the first bad record (changed,
 *    replayed, garbage, cut short, refused by content) or after
 *    close_notify is delivered; the stream ends (0) only at EOF or
 *    close_notify, and never right where a bad record must be refused;
 *  - when the reader refuses (EPROTO), it has delivered all the data
 *    before the bad record (none lost in the call that met it), and it
 *    refuses every call after; a record that must be refused is refused;
 *    good records are never refused; records that authenticate are the
 *    good ones, in order (tls_rec_stats.opened);
 *  - a read that followed one KeyUpdate request or more makes exactly one
 *    KeyUpdate answer (update_not_requested) when the reader has nothing
 *    else waiting to leave, none otherwise; what the reader sends opens
 *    with its keys, in order, KeyUpdates included. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "fuzz.h"
#include "tls.h"
#include "tls_rec.h"

#define HDR 5
#define TAG 16
#define MAX_PLAIN 16384
#define MAX_CIPHER (MAX_PLAIN + 256)
#define BUDGET (256 * 1024)
/* KeyUpdates each way an input may make: following one costs three key
 * derivations, far more than a record (an input of KeyUpdates alone ran at
 * a tenth of the speed); KU_MAX covers every path (several requests in one
 * read, in many, both ways) */
#define KU_MAX 32

/* ---- the model: RFC 8446 sections 5.2, 5.3, 7.1, 7.3 ------------------------------ */

/* One direction: key and IV from the traffic secret, sequence number. */
typedef struct mkeys {
    uint8_t secret[32], key[16], iv[12];
} mkeys;
typedef struct mdir {
    EVP_CIPHER_CTX *ctx;   /* keyed with k.key (once a generation) */
    bool enc;
    unsigned dir, gen;     /* 0 the model's writes, 1 the reader's; KeyUpdates so far */
    mkeys k;
    uint64_t seq;
} mdir;

static EVP_KDF *hkdf;

/* HKDF-Expand-Label(secret, label, "", len): HKDF-Expand with the info
 * struct { uint16 length; opaque label<7..255> = "tls13 " + label;
 * opaque context<0..255> = "" } */
static void expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 255 + 1];
    size_t ll = strlen(label), n = 0;
    info[n++] = (uint8_t)(len >> 8);
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + ll);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, ll);
    n += ll;
    info[n++] = 0;
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(hkdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    fuzz_assert(kc && EVP_KDF_derive(kc, out, len, params) == 1);
    EVP_KDF_CTX_free(kc);
}

static void keys_of(mkeys *k)
{
    expand_label(k->secret, "key", k->key, sizeof(k->key));
    expand_label(k->secret, "iv", k->iv, sizeof(k->iv));
}

static void mdir_key(mdir *d)
{
    d->seq = 0;
    /* the context has its cipher (LLVMFuzzerTestOneInput): only the key changes */
    int r = d->enc ? EVP_EncryptInit_ex(d->ctx, NULL, NULL, d->k.key, NULL)
                   : EVP_DecryptInit_ex(d->ctx, NULL, NULL, d->k.key, NULL);
    fuzz_assert(r == 1);
}

/* The keys of the first generations of each direction, derived once: the
 * secrets are fixed, and derivations cost more than the rest of an input. */
#define GENS 1024
static mkeys gens[2][GENS];
static unsigned ngens[2];

/* after a KeyUpdate: application_traffic_secret_N+1 */
static void mdir_update(mdir *d)
{
    d->gen++;
    if (d->gen < GENS && d->gen < ngens[d->dir]) {
        d->k = gens[d->dir][d->gen];
    } else {
        mkeys next;
        expand_label(d->k.secret, "traffic upd", next.secret, sizeof(next.secret));
        keys_of(&next);
        d->k = next;
        if (d->gen < GENS && d->gen == ngens[d->dir]) {
            gens[d->dir][d->gen] = next;
            ngens[d->dir]++;
        }
    }
    mdir_key(d);
}

static void nonce_of(const mdir *d, uint8_t nonce[12])
{
    memcpy(nonce, d->k.iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Append the record of inner plaintext content || type || pad zeros. */
static void seal(mdir *d, GByteArray *out, uint8_t type, const uint8_t *content, size_t n,
                 size_t pad)
{
    size_t inner = n + 1 + pad, clen = inner + TAG;
    guint at = out->len;
    g_byte_array_set_size(out, at + (guint)(HDR + clen));
    uint8_t *h = out->data + at, *body = h + HDR, nonce[12];
    h[0] = 23;
    h[1] = 3;
    h[2] = 3;
    h[3] = (uint8_t)(clen >> 8);
    h[4] = (uint8_t)clen;
    if (n)
        memcpy(body, content, n);
    body[n] = type;
    memset(body + n + 1, 0, pad);
    nonce_of(d, nonce);
    int l1, l2;
    fuzz_assert(EVP_EncryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) == 1);
    fuzz_assert(EVP_EncryptUpdate(d->ctx, NULL, &l1, h, HDR) == 1);
    fuzz_assert(EVP_EncryptUpdate(d->ctx, body, &l1, body, (int)inner) == 1 &&
                (size_t)l1 == inner);
    fuzz_assert(EVP_EncryptFinal_ex(d->ctx, body + inner, &l2) == 1 && l2 == 0);
    fuzz_assert(EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_GCM_GET_TAG, TAG, body + inner) == 1);
    d->seq++;
}

/* Open the whole record rec (len bytes, in place): the content's length,
 * *type; the record must authenticate (it is the reader's). */
static size_t open_rec(mdir *d, uint8_t *rec, size_t len, uint8_t *type)
{
    fuzz_assert(len >= HDR + 1 + TAG && rec[0] == 23 && rec[1] == 3 && rec[2] == 3);
    size_t inner = len - HDR - TAG;
    uint8_t nonce[12], *body = rec + HDR;
    nonce_of(d, nonce);
    int l1, l2;
    fuzz_assert(EVP_DecryptInit_ex(d->ctx, NULL, NULL, NULL, nonce) == 1);
    fuzz_assert(EVP_DecryptUpdate(d->ctx, NULL, &l1, rec, HDR) == 1);
    fuzz_assert(EVP_DecryptUpdate(d->ctx, body, &l1, body, (int)inner) == 1);
    fuzz_assert(EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_GCM_SET_TAG, TAG, body + inner) == 1);
    fuzz_assert(EVP_DecryptFinal_ex(d->ctx, body + l1, &l2) == 1); /* the reader's record opens */
    d->seq++;
    while (inner > 0 && body[inner - 1] == 0)
        inner--;
    fuzz_assert(inner > 0);
    *type = body[inner - 1];
    return inner - 1;
}

/* ---- the world ------------------------------------------------------------------ */

/* What a record that authenticates is to the reader (RFC 8446, and tls.c's
 * choices: one handshake message a record, only KeyUpdate after the
 * handshake; an alert of description 0 closes, any other ends). */
enum { K_DATA, K_KU, K_KU_REQ, K_CLOSE, K_BAD };
/* How the good records end: not yet; close_notify; a record that must be
 * refused; bytes that may be refused or may leave the reader waiting (a
 * length changed, a record cut short, garbage). */
enum { END_NONE, END_CLOSE, END_FAIL, END_MAYBE };

typedef struct world {
    int wfd, rfd;         /* the model's end, the reader's end */
    tls_conn *reader;
    mdir wr, rd;          /* the model sealing, the model opening the reader's records */
    GByteArray *wire;     /* sealed, not yet taken by the socket: wire[woff ..] */
    size_t woff;
    size_t made;          /* bytes sealed, against BUDGET */
    bool eof_wanted, eof_sent;
    GByteArray *last;     /* the last record sent whole and unchanged */
    GByteArray *expect;   /* the data of the good records */
    size_t got;           /* how much of it the reader delivered */
    GArray *kinds;        /* every record that authenticates, until the end */
    int end;
    bool refused;         /* the reader said EPROTO */
    bool ended;           /* the reader said 0 */
    GByteArray *back;     /* what the reader sent, not yet opened */
    GByteArray *rexpect;  /* the data the reader was given to send */
    size_t rgot;
    uint64_t ku_back;     /* KeyUpdates opened from the reader */
} world;

static const uint8_t secret_c[32] = {0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x20, 0x73, 0x65, 0x63, 0x72,
                                     0x65, 0x74, 0x20, 0x30, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                     0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11};
static const uint8_t secret_s[32] = {0x73, 0x65, 0x72, 0x76, 0x65, 0x72, 0x20, 0x73, 0x65, 0x63, 0x72,
                                     0x65, 0x74, 0x20, 0x30, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
                                     0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff, 0x00, 0x5a};

static qdb_tls *tls;

static void setup(void)
{
    if (tls)
        return;
    qdb_hive_key k;
    char err[QDB_ERRMSG_SIZE];
    memset(&k, 0x42, sizeof(k));
    tls = qdb_tls_new(&k, QDB_PEER_NODE, err);
    hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    fuzz_assert(tls && hkdf);
    memcpy(gens[0][0].secret, secret_c, 32);
    memcpy(gens[1][0].secret, secret_s, 32);
    keys_of(&gens[0][0]);
    keys_of(&gens[1][0]);
    ngens[0] = ngens[1] = 1;
}

typedef struct input {
    const uint8_t *p;
    size_t left;
} input;

static unsigned byte(input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

/* Up to n bytes of the input (fewer when it runs out). */
static const uint8_t *bytes(input *in, size_t *n)
{
    const uint8_t *p = in->p;
    *n = MIN(*n, in->left);
    in->p += *n;
    in->left -= *n;
    return p;
}

/* Offer the socket up to n bytes of the wire; EOF once it is all gone. */
static void flush(world *w, size_t n)
{
    while (n > 0 && w->woff < w->wire->len) {
        ssize_t r = send(w->wfd, w->wire->data + w->woff, MIN(n, w->wire->len - w->woff),
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r <= 0) {
            fuzz_assert(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
            break;
        }
        w->woff += (size_t)r;
        n -= (size_t)r;
    }
    if (w->woff == w->wire->len) {
        g_byte_array_set_size(w->wire, 0);
        w->woff = 0;
        if (w->eof_wanted && !w->eof_sent) {
            fuzz_assert(shutdown(w->wfd, SHUT_WR) == 0);
            w->eof_sent = true;
        }
    }
}

static void end_with(world *w, int how)
{
    if (w->end == END_NONE)
        w->end = how;
}

/* Seal a record of inner plaintext content || type || pad and say what
 * it is to the reader.  cut < total: only its first cut bytes are sent;
 * flip >= 0: that bit of it is flipped. */
static void record(world *w, uint8_t type, const uint8_t *content, size_t n, size_t pad,
                   size_t cut, long flip)
{
    if (w->eof_wanted || w->made + HDR + n + 1 + pad + TAG > BUDGET)
        return;
    size_t clen = n + 1 + pad + TAG;
    /* the model's reading of the inner plaintext: the last non-zero byte
     * is the type (content may end with zeros, pad or not) */
    size_t m = n;
    uint8_t t = type;
    if (t == 0) {
        while (m > 0 && content[m - 1] == 0)
            m--;
        t = m > 0 ? content[--m] : 0;
    }
    int kind;
    if (t == 0 || m > MAX_PLAIN)
        kind = K_BAD; /* no type; record_overflow */
    else if (t == 23)
        kind = K_DATA;
    else if (t == 21)
        kind = m == 2 && content[1] == 0 ? K_CLOSE : K_BAD;
    else if (t == 22 && m == 5 && content[0] == 24 && content[1] == 0 && content[2] == 0 &&
             content[3] == 1 && content[4] <= 1)
        kind = content[4] ? K_KU_REQ : K_KU;
    else
        kind = K_BAD;
    bool ku = kind == K_KU || kind == K_KU_REQ;
    if (ku && w->wr.gen >= KU_MAX)
        return;
    guint at = w->wire->len;
    seal(&w->wr, w->wire, type, content, n, pad);
    w->made += HDR + clen;
    if (flip < 0 && cut >= HDR + clen) { /* sent whole: it may be replayed */
        g_byte_array_set_size(w->last, 0);
        g_byte_array_append(w->last, w->wire->data + at, (guint)(HDR + clen));
    }
    if (ku)
        mdir_update(&w->wr); /* ours changes whatever the reader makes of it */
    if (clen > MAX_CIPHER) /* refused by its header, before it is opened */
        kind = -1;
    if (flip >= 0) {
        w->wire->data[at + (size_t)flip / 8 % (HDR + clen)] ^= (uint8_t)(1 << (flip % 8));
        /* a changed length may leave the reader waiting for more */
        end_with(w, (size_t)flip / 8 % (HDR + clen) == 3 || (size_t)flip / 8 % (HDR + clen) == 4
                        ? END_MAYBE
                        : END_FAIL);
        return;
    }
    if (cut < HDR + clen) { /* what follows is out of step, if anything does */
        g_byte_array_set_size(w->wire, at + (guint)cut);
        /* The bytes that follow fill the cut record up to its length: when
         * they are, by chance, the bytes cut off (one missing tag byte that
         * the next header's 0x17 repeats: 1 in 256), the record arrives
         * whole and rightly opens.  A changed byte in the part sent keeps
         * it refused whatever follows. */
        if (cut > HDR)
            w->wire->data[at + HDR] ^= 1;
        end_with(w, END_MAYBE);
        return;
    }
    if (w->end != END_NONE)
        return;
    if (kind < 0) {
        end_with(w, END_FAIL);
        return;
    }
    g_array_append_val(w->kinds, kind);
    if (kind == K_DATA)
        g_byte_array_append(w->expect, content, (guint)m);
    else if (kind == K_CLOSE)
        end_with(w, END_CLOSE);
    else if (kind == K_BAD)
        end_with(w, END_FAIL);
}

static uint8_t patterned[MAX_PLAIN + 300];

/* Open what the reader sent: its data must be what it was given, in
 * order; its KeyUpdates are counted and followed. */
static void read_back(world *w)
{
    uint8_t buf[4096];
    ssize_t r;
    while ((r = recv(w->wfd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        g_byte_array_append(w->back, buf, (guint)r);
    size_t at = 0;
    while (w->back->len - at >= HDR) {
        uint8_t *h = w->back->data + at;
        size_t len = HDR + ((size_t)h[3] << 8 | h[4]);
        if (w->back->len - at < len)
            break;
        uint8_t type;
        size_t n = open_rec(&w->rd, h, len, &type);
        if (type == 23) {
            fuzz_assert(w->rgot + n <= w->rexpect->len);
            fuzz_assert(memcmp(h + HDR, w->rexpect->data + w->rgot, n) == 0);
            w->rgot += n;
        } else {
            uint8_t *p = h + HDR;
            fuzz_assert(type == 22 && n == 5 && p[0] == 24 && p[1] == 0 && p[2] == 0 &&
                        p[3] == 1 && p[4] <= 1);
            w->ku_back++;
            mdir_update(&w->rd);
        }
        at += len;
    }
    g_byte_array_remove_range(w->back, 0, (guint)at);
}

static uint8_t rbuf[65536];

/* The reader opened every good record there is, and nothing else: the
 * last of them, refused for what it holds, counts or not (a record past
 * 2^14 or without a type is refused as it is opened; a bad alert or
 * message after). */
static bool opened_all(const world *w, uint64_t opened)
{
    guint n = w->kinds->len;
    return opened == n || (n > 0 && opened == n - 1 && g_array_index(w->kinds, int, n - 1) == K_BAD);
}

/* One tls_conn_recv of `size` bytes, and the properties. */
static void read_once(world *w, size_t size)
{
    tls_rec_stats s0, s1;
    tls_conn_rec_stats(w->reader, &s0);
    fuzz_assert(tls_conn_unsent(w->reader) == 0);
    uint64_t ku0 = w->ku_back;
    bool want;
    errno = 0;
    ssize_t r = tls_conn_recv(w->reader, rbuf, size, &want);
    int e = errno;
    tls_conn_rec_stats(w->reader, &s1);
    read_back(w);
    if (w->refused || w->ended) { /* what ended stays ended */
        fuzz_assert(w->refused ? r == -1 && e == EPROTO : r == 0);
        return;
    }
    /* what authenticated: the good records, in order */
    fuzz_assert(s1.opened >= s0.opened && s1.opened <= w->kinds->len);
    uint64_t req = 0;
    for (uint64_t i = s0.opened; i < s1.opened; i++)
        req += g_array_index(w->kinds, int, i) == K_KU_REQ;
    if (s1.failed) {
        fuzz_assert(w->end == END_FAIL || w->end == END_MAYBE);
        fuzz_assert(opened_all(w, s1.opened));
        fuzz_assert(w->ku_back == ku0); /* nobody to answer */
    } else {
        /* one answer for the requests of one read */
        fuzz_assert(w->ku_back == ku0 + (req > 0));
    }
    if (r > 0) {
        fuzz_assert((size_t)r <= size);
        fuzz_assert(w->got + (size_t)r <= w->expect->len);
        fuzz_assert(memcmp(rbuf, w->expect->data + w->got, (size_t)r) == 0);
        w->got += (size_t)r;
        return;
    }
    if (r == 0) {
        fuzz_assert(w->got == w->expect->len);
        fuzz_assert(w->end == END_CLOSE || (w->eof_sent && w->end != END_FAIL));
        w->ended = true;
        return;
    }
    fuzz_assert(e == EAGAIN || e == EPROTO);
    if (e == EPROTO) {
        fuzz_assert(s1.failed);
        fuzz_assert(w->got == w->expect->len); /* nothing lost on the way */
        fuzz_assert(tls_conn_error(w->reader)[0] != '\0');
        w->refused = true;
    }
}

static size_t read_size(unsigned b)
{
    static const size_t big[] = {200, 1000, 4096, 16383, 16384, 16385, 16401, 16402, 33000, 65536};
    return b < 128 ? b + 1 : big[(b - 128) % G_N_ELEMENTS(big)];
}

static void reader_sends(world *w, const uint8_t *p, size_t n)
{
    if (w->refused || w->ended || n == 0)
        return;
    bool want;
    ssize_t r = tls_conn_send(w->reader, p, n, &want);
    fuzz_assert(r == (ssize_t)n);
    g_byte_array_append(w->rexpect, p, (guint)n);
    read_back(w);
}

static void run(world *w, input *in)
{
    while (in->left > 0) {
        unsigned op = byte(in) & 15;
        size_t n, pad;
        const uint8_t *p;
        switch (op) {
        case 0:
        case 1:
            n = byte(in);
            p = bytes(in, &n);
            pad = byte(in);
            record(w, 23, p, n, pad & 0x80 ? pad & 0x7f : 0, SIZE_MAX, -1);
            break;
        case 2:
            n = byte(in);
            n = (n | byte(in) << 8) % (MAX_PLAIN + 300);
            pad = byte(in);
            record(w, 23, patterned, n, pad & 0x80 ? pad & 0x7f : 0, SIZE_MAX, -1);
            break;
        case 3: {
            uint8_t ku[5] = {24, 0, 0, 1, (uint8_t)(byte(in) & 1)};
            record(w, 22, ku, sizeof(ku), 0, SIZE_MAX, -1);
            break;
        }
        case 4: {
            uint8_t a[2];
            a[0] = (uint8_t)byte(in);
            a[1] = (uint8_t)byte(in);
            record(w, 21, a, sizeof(a), 0, SIZE_MAX, -1);
            break;
        }
        case 5: {
            uint8_t type = (uint8_t)byte(in);
            n = byte(in);
            p = bytes(in, &n);
            pad = byte(in);
            record(w, type, p, n, pad & 0x80 ? pad & 0x7f : 0, SIZE_MAX, -1);
            break;
        }
        case 6: {
            n = byte(in);
            p = bytes(in, &n);
            long flip = (long)byte(in);
            flip |= (long)byte(in) << 8;
            flip = flip * 8 + (long)(byte(in) & 7);
            record(w, 23, p, n, 0, SIZE_MAX, flip);
            break;
        }
        case 7:
            if (w->last->len && !w->eof_wanted && w->made + w->last->len <= BUDGET) {
                g_byte_array_append(w->wire, w->last->data, w->last->len);
                w->made += w->last->len;
                end_with(w, END_FAIL); /* a whole record under the wrong nonce */
            }
            break;
        case 8:
            n = byte(in);
            p = bytes(in, &n);
            if (n && !w->eof_wanted) {
                g_byte_array_append(w->wire, p, (guint)n);
                w->made += n;
                end_with(w, END_MAYBE);
            }
            break;
        case 9: {
            n = byte(in);
            p = bytes(in, &n);
            size_t cut = byte(in) % (HDR + n + 1 + TAG);
            record(w, 23, p, n, 0, cut, -1);
            break;
        }
        case 10:
            flush(w, read_size(byte(in)));
            break;
        case 11:
            read_once(w, read_size(byte(in)));
            break;
        case 12:
            w->eof_wanted = true;
            flush(w, SIZE_MAX);
            break;
        case 13:
            n = byte(in) + 1;
            reader_sends(w, patterned + n, n);
            break;
        case 14:
            if (!w->refused && !w->ended && w->rd.gen < KU_MAX) {
                fuzz_assert(tls_conn_key_update(w->reader, byte(in) & 1));
                bool want;
                fuzz_assert(tls_conn_send(w->reader, rbuf, 0, &want) == 0);
                uint64_t ku0 = w->ku_back;
                read_back(w);
                fuzz_assert(w->ku_back == ku0 + 1);
            }
            break;
        default:
            flush(w, SIZE_MAX);
            break;
        }
    }
    /* the end: everything written, EOF, read until the reader ends */
    w->eof_wanted = true;
    for (int i = 0; i < 100000 && !w->refused && !w->ended; i++) {
        flush(w, SIZE_MAX);
        read_once(w, sizeof(rbuf));
    }
    fuzz_assert(w->refused || w->ended);
    fuzz_assert(w->got == w->expect->len);
    fuzz_assert(!(w->refused && (w->end == END_NONE || w->end == END_CLOSE)));
    fuzz_assert(!(w->ended && w->end == END_FAIL));
    tls_rec_stats s;
    tls_conn_rec_stats(w->reader, &s);
    fuzz_assert(opened_all(w, s.opened));
    uint64_t kus = 0;
    for (guint i = 0; i < w->kinds->len; i++) {
        int k = g_array_index(w->kinds, int, i);
        kus += k == K_KU || k == K_KU_REQ;
    }
    fuzz_assert(s.key_updates_in == kus);
    fuzz_assert(w->rgot == w->rexpect->len);
    fuzz_assert(w->back->len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (patterned[1] == 0)
        for (size_t i = 0; i < sizeof(patterned); i++)
            patterned[i] = (uint8_t)(i * 7 + i / 251 + 1);
    /* allocations cost most of an input under ASan: the model's contexts
     * and buffers are kept, and emptied or keyed again for each input */
    static EVP_CIPHER_CTX *ctx_wr, *ctx_rd;
    static GByteArray *bufs[5];
    if (!ctx_wr) {
        ctx_wr = EVP_CIPHER_CTX_new();
        ctx_rd = EVP_CIPHER_CTX_new();
        fuzz_assert(EVP_EncryptInit_ex(ctx_wr, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
                    EVP_DecryptInit_ex(ctx_rd, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1);
        for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
            bufs[i] = g_byte_array_new();
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
        g_byte_array_set_size(bufs[i], 0);
    world w = {0};
    int fd[2];
    fuzz_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) == 0);
    w.wfd = fd[0];
    w.rfd = fd[1];
    w.reader = tls_conn_new_keyed(tls, w.rfd, true, secret_c, secret_s);
    w.wr = (mdir){.ctx = ctx_wr, .enc = true, .dir = 0, .k = gens[0][0]};
    w.rd = (mdir){.ctx = ctx_rd, .enc = false, .dir = 1, .k = gens[1][0]};
    mdir_key(&w.wr);
    mdir_key(&w.rd);
    w.wire = bufs[0];
    w.last = bufs[1];
    w.expect = bufs[2];
    w.kinds = g_array_new(FALSE, FALSE, sizeof(int));
    w.back = bufs[3];
    w.rexpect = bufs[4];
    input in = {data, size};
    run(&w, &in);
    tls_conn_free(w.reader);
    close(fd[0]);
    close(fd[1]);
    g_array_unref(w.kinds);
    return 0;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Authentication for the real loop (tls.h): the hive key, the TLS 1.3
 * external-PSK context, one connection's session, rate-limited log lines.
 *
 * Sections
 *   the hive key: generate, parse, load
 *   the context: derived PSKs, OpenSSL's PSK callbacks
 *   the record layer, once the handshake is done
 *   one connection: recv, send and the handshake inside them
 *   log lines
 */
#define G_LOG_DOMAIN "qdb-loop"

#include "config.h"

#include "tls.h"
#include "tls_rec.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "error.h"

/* ---- the hive key ---------------------------------------------------------------- */

int qdb_hive_key_generate(char out[QDB_HIVE_KEY_HEX + 2], char *err)
{
    qdb_hive_key k;
    if (RAND_bytes(k.b, sizeof(k.b)) != 1)
        return qdb_error_set(err, QDB_E_INTERNAL, "RAND_bytes: %s",
                             ERR_reason_error_string(ERR_get_error()));
    for (size_t i = 0; i < sizeof(k.b); i++)
        g_snprintf(out + 2 * i, 3, "%02x", k.b[i]);
    out[QDB_HIVE_KEY_HEX] = '\n';
    out[QDB_HIVE_KEY_HEX + 1] = '\0';
    OPENSSL_cleanse(&k, sizeof(k));
    return QDB_OK;
}

int qdb_hive_key_parse(qdb_hive_key *key, const char *text, char *err)
{
    while (g_ascii_isspace(*text))
        text++;
    size_t n = 0;
    while (g_ascii_isxdigit(text[n]))
        n++;
    const char *rest = text + n;
    while (g_ascii_isspace(*rest))
        rest++;
    if (n != QDB_HIVE_KEY_HEX || *rest != '\0')
        return qdb_error_set(err, QDB_E_MALFORMED,
                             "not a hive key: want one line of %d hex digits (qdbd --gen-key)",
                             QDB_HIVE_KEY_HEX);
    for (size_t i = 0; i < QDB_HIVE_KEY_BYTES; i++)
        key->b[i] = (uint8_t)(g_ascii_xdigit_value(text[2 * i]) << 4 |
                              g_ascii_xdigit_value(text[2 * i + 1]));
    return QDB_OK;
}

int qdb_hive_key_load(qdb_hive_key *key, const char *path, char *err)
{
    /* Read through one descriptor, so the mode checked is the file's read. */
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "%s: %s", path, g_strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "%s: not a regular file", path);
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        close(fd);
        return qdb_error_set(err, QDB_E_REFUSED,
                             "%s: others may read or write it (mode %03o): chmod o-rw it", path,
                             (unsigned)(st.st_mode & 0777));
    }
    ssize_t r;
    do
        r = read(fd, buf, sizeof(buf) - 1);
    while (r < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (r < 0)
        return qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "%s: %s", path, g_strerror(e));
    buf[r] = '\0';
    char why[QDB_ERRMSG_SIZE];
    int rc = (size_t)r == sizeof(buf) - 1 || strlen(buf) != (size_t)r
                 ? qdb_error_set(why, QDB_E_MALFORMED, "not a hive key: too long or binary")
                 : qdb_hive_key_parse(key, buf, why);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc != QDB_OK)
        return qdb_error_set(err, rc, "%s: %s", path, why);
    return QDB_OK;
}

/* ---- the context --------------------------------------------------------------- */

#define PSK_SALT "qdb hive key v1"
#define ID_NODE "qdb-node"
#define ID_CLIENT "qdb-client"

/* AES-128-GCM as its provider implements it (see "the record layer"). */
typedef struct gcm_impl {
    void *provctx;
    OSSL_FUNC_cipher_newctx_fn *newctx;
    OSSL_FUNC_cipher_freectx_fn *freectx;
    OSSL_FUNC_cipher_encrypt_init_fn *einit;
    OSSL_FUNC_cipher_decrypt_init_fn *dinit;
    OSSL_FUNC_cipher_update_fn *update;
    OSSL_FUNC_cipher_final_fn *final;
    OSSL_FUNC_cipher_get_ctx_params_fn *get_params;
    OSSL_FUNC_cipher_set_ctx_params_fn *set_params;
} gcm_impl;

struct qdb_tls {
    SSL_CTX *ctx;
    BIO_METHOD *out_method;                /* the connections' write side (out_*) */
    EVP_CIPHER *aes128gcm;                 /* the records' AEAD, fetched once: holds its provider */
    EVP_KDF *kdf;                          /* TLS13-KDF, fetched once (a fetch costs a name lookup) */
    gcm_impl gcm;                          /* and its functions */
    int role;                              /* the identity this side presents */
    uint8_t psk_node[32], psk_client[32];  /* derived from the hive key */
};

/* One direction of the record layer once the handshake is done: the
 * traffic key in ctx, the per-record nonce's base and the record count. */
typedef struct rec_dir {
    void *ctx; /* the provider's AES-128-GCM context */
    uint8_t iv[12];
    uint64_t seq;
    uint8_t secret[32]; /* the traffic secret, kept for a KeyUpdate */
} rec_dir;

struct tls_conn {
    SSL *ssl;
    qdb_tls *tls;
    int fd;
    bool server;
    bool checked;      /* server: the first bytes were looked at */
    bool established;
    bool eof;          /* the peer's close_notify came */
    int role;          /* proven by the peer */
    GByteArray *out;   /* records made and not yet sent, from out_off */
    size_t out_off;
    /* from OpenSSL's keylog callback: the application traffic secrets */
    uint8_t secret_c[32], secret_s[32];
    bool have_c, have_s;
    rec_dir rd, wr;    /* open what comes in, seal what goes out */
    uint8_t *in;       /* records read and not yet opened: in[in_off .. in_len) */
    size_t in_off, in_len;
    size_t pt_off, pt_len; /* opened in place and not yet taken: in[pt_off ..] */
    bool failed;       /* a record was refused: every later recv fails (why: failed_why) */
    bool ku_due;       /* the peer requested a KeyUpdate we have not sealed yet */
    tls_rec_stats stats;
    char error[QDB_ERRMSG_SIZE];
    char failed_why[QDB_ERRMSG_SIZE];
};

/* Bytes of records made and not yet sent past which no more are sealed:
 * four full records. */
#define TLS_OUT_HIGH (64 * 1024)

/* TLS_AES_128_GCM_SHA256, as IANA numbers it. */
static const unsigned char aes128gcm_id[2] = {0x13, 0x01};

static bool derive(const qdb_hive_key *key, const char *identity, uint8_t out[32])
{
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t len = 32;
    bool ok = pc && EVP_PKEY_derive_init(pc) > 0 && EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_salt(pc, (const unsigned char *)PSK_SALT,
                                          (int)strlen(PSK_SALT)) > 0 &&
              EVP_PKEY_CTX_set1_hkdf_key(pc, key->b, (int)sizeof(key->b)) > 0 &&
              EVP_PKEY_CTX_add1_hkdf_info(pc, (const unsigned char *)identity,
                                          (int)strlen(identity)) > 0 &&
              EVP_PKEY_derive(pc, out, &len) > 0 && len == 32;
    EVP_PKEY_CTX_free(pc);
    return ok;
}

/* A TLS 1.3 session carrying psk as its resumption secret: how OpenSSL
 * takes an external PSK. */
static SSL_SESSION *psk_session(SSL *ssl, const uint8_t psk[32])
{
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm_id);
    SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;
    if (s && SSL_SESSION_set1_master_key(s, psk, 32) && SSL_SESSION_set_cipher(s, cipher) &&
        SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION))
        return s;
    SSL_SESSION_free(s);
    return NULL;
}

/* Client: offer our identity and its PSK. */
static int psk_use(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                   SSL_SESSION **sess)
{
    tls_conn *t = SSL_get_app_data(ssl);
    *sess = NULL;
    if (md != NULL && md != EVP_sha256())
        return 1; /* cannot happen with our one suite: offer nothing */
    bool node = t->tls->role == QDB_PEER_NODE;
    *sess = psk_session(ssl, node ? t->tls->psk_node : t->tls->psk_client);
    if (*sess == NULL)
        return 0;
    *id = (const unsigned char *)(node ? ID_NODE : ID_CLIENT);
    *idlen = strlen((const char *)*id);
    return 1;
}

/* Server: the PSK of the identity the client names.  An unknown identity
 * gets no session; the handshake then wants a certificate, which we have
 * not, and fails.  A known identity with the wrong key fails OpenSSL's
 * binder check. */
static int psk_find(SSL *ssl, const unsigned char *identity, size_t len, SSL_SESSION **sess)
{
    tls_conn *t = SSL_get_app_data(ssl);
    *sess = NULL;
    const uint8_t *psk = NULL;
    int role = QDB_PEER_UNVERIFIED;
    if (len == strlen(ID_NODE) && memcmp(identity, ID_NODE, len) == 0) {
        psk = t->tls->psk_node;
        role = QDB_PEER_NODE;
    } else if (len == strlen(ID_CLIENT) && memcmp(identity, ID_CLIENT, len) == 0) {
        psk = t->tls->psk_client;
        role = QDB_PEER_CLIENT;
    } else {
        return 1;
    }
    *sess = psk_session(ssl, psk);
    if (*sess == NULL)
        return 0;
    t->role = role; /* proven only once the handshake completes */
    return 1;
}

/* The write side of a connection is not the socket but t->out: OpenSSL
 * writes each record with its own write(), so a flush of 17 KB (two
 * records) cost two syscalls -- on loopback each one also runs the peer's
 * receive path -- and two TCP segments for the peer to read.  Here every
 * record of an SSL call lands in t->out and out_flush() sends them with one
 * send().  The read side is a socket BIO without read-ahead, for the
 * handshake only. */
static int out_write(BIO *b, const char *data, size_t len, size_t *written)
{
    tls_conn *t = BIO_get_data(b);
    g_byte_array_append(t->out, (const guint8 *)data, (guint)len);
    *written = len;
    return 1;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_conn *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* out_flush() sends after the SSL call, not from inside it */
    case BIO_CTRL_WPENDING:
        return (long)(t->out->len - t->out_off);
    default:
        return 0;
    }
}

static int out_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

/* Send what t->out holds, as much as the socket takes.  0, or -1 and errno
 * when the socket failed (a full socket is not a failure: the bytes wait). */
static int out_flush(tls_conn *t)
{
    while (t->out_off < t->out->len) {
        ssize_t w = send(t->fd, t->out->data + t->out_off, t->out->len - t->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        t->out_off += (size_t)w;
    }
    if (t->out->len > TLS_OUT_HIGH * 4) { /* let a burst's buffer go */
        g_byte_array_free(t->out, TRUE);
        t->out = g_byte_array_new();
    } else {
        g_byte_array_set_size(t->out, 0);
    }
    t->out_off = 0;
    return 0;
}

/* ---- the record layer, once the handshake is done ----------------------------------
 * OpenSSL 3.0 spends about 6,000 instructions a record around the AEAD
 * itself (its record layer, BIO calls and state checks: callgrind, sealing
 * and opening a 40-byte record through SSL_write and SSL_read against the
 * same EVP calls alone), as much as the AES-GCM call costs; one request in
 * flight seals and opens four records.  So OpenSSL makes the handshake and
 * hands over the application traffic secrets (its keylog callback, the only
 * way 3.0 gives them), and the records are sealed and opened here with
 * OpenSSL's AES-128-GCM (EVP) as RFC 8446 section 5 says: the same bytes on
 * the wire, nothing of the crypto our own.  The AEAD is called through its
 * provider's function table (OSSL_PROVIDER_query_operation, the provider
 * that EVP_CIPHER_fetch chose): EVP_CipherInit_ex, _Update and the tag's
 * EVP_CIPHER_CTX_ctrl add about 1,000 instructions a record around those
 * same calls (asking the provider for the IV length each time, and building
 * parameter arrays).  Keys and IVs come from the
 * secrets by OpenSSL's TLS13-KDF (HKDF-Expand-Label); the nonce is the IV
 * XOR the record's sequence number, per direction; the header is the
 * additional data; the last non-zero byte of the opened record is its type.
 * A KeyUpdate from the peer is followed (section 4.6.3); the requests of
 * one read get one answer, sealed when nothing else waits to leave or else
 * before our next data record, so a peer that requests without reading
 * piles up nothing; we send one after REC_UPDATE_AFTER records (AES-GCM's
 * margin is 2^24.5, section 5.5).
 * Other post-handshake messages (tickets: we never ask for them) and
 * alerts other than close_notify end the connection. */

#define REC_HEADER 5
#define REC_TAG 16
#define REC_MAX_PLAIN 16384                       /* 2^14, section 5.1 */
#define REC_MAX_CIPHER (REC_MAX_PLAIN + 256)      /* 2^14 + 256, section 5.2 */
/* Room for two full records: a 16-deep batch of 1 KiB values (about 17 KB,
 * two records) comes in with one read(). */
#define REC_IN_CAP (2 * (REC_HEADER + REC_MAX_CIPHER))
#define REC_UPDATE_AFTER (UINT64_C(1) << 24)

/* OpenSSL's keylog callback: keep the two application traffic secrets. */
static void keylog(const SSL *ssl, const char *line)
{
    tls_conn *t = SSL_get_app_data(ssl);
    static const char c0[] = "CLIENT_TRAFFIC_SECRET_0 ", s0[] = "SERVER_TRAFFIC_SECRET_0 ";
    uint8_t *dst;
    bool *have;
    if (strncmp(line, c0, sizeof(c0) - 1) == 0) {
        dst = t->secret_c;
        have = &t->have_c;
    } else if (strncmp(line, s0, sizeof(s0) - 1) == 0) {
        dst = t->secret_s;
        have = &t->have_s;
    } else {
        return;
    }
    const char *hex = strchr(line + sizeof(c0) - 1, ' '); /* after the client random */
    if (!hex || strlen(++hex) != 64)
        return; /* not SHA-256's: cannot happen with our one suite */
    for (size_t i = 0; i < 32; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]), lo = g_ascii_xdigit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return;
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    *have = true;
}

/* HKDF-Expand-Label(secret, label, "", len) with SHA-256 (section 7.1). */
static bool expand_label(const qdb_tls *tls, const uint8_t secret[32], const char *label,
                         uint8_t *out, size_t len)
{
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(tls->kdf);
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)"tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        OSSL_PARAM_construct_end(),
    };
    bool ok = kc && EVP_KDF_derive(kc, out, len, params) > 0;
    EVP_KDF_CTX_free(kc);
    return ok;
}

/* The provider's AES-128-GCM functions, behind the cipher EVP fetched. */
static bool gcm_lookup(qdb_tls *t)
{
    const OSSL_PROVIDER *prov = EVP_CIPHER_get0_provider(t->aes128gcm);
    int no_store;
    const OSSL_ALGORITHM *algs = OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_store);
    const OSSL_DISPATCH *f = NULL;
    for (const OSSL_ALGORITHM *a = algs; a && a->algorithm_names && !f; a++) {
        gchar **names = g_strsplit(a->algorithm_names, ":", -1);
        for (gchar **n = names; *n && !f; n++)
            if (g_ascii_strcasecmp(*n, "AES-128-GCM") == 0)
                f = a->implementation;
        g_strfreev(names);
    }
    gcm_impl *g = &t->gcm;
    for (; f && f->function_id; f++) {
        switch (f->function_id) {
        case OSSL_FUNC_CIPHER_NEWCTX: g->newctx = OSSL_FUNC_cipher_newctx(f); break;
        case OSSL_FUNC_CIPHER_FREECTX: g->freectx = OSSL_FUNC_cipher_freectx(f); break;
        case OSSL_FUNC_CIPHER_ENCRYPT_INIT: g->einit = OSSL_FUNC_cipher_encrypt_init(f); break;
        case OSSL_FUNC_CIPHER_DECRYPT_INIT: g->dinit = OSSL_FUNC_cipher_decrypt_init(f); break;
        case OSSL_FUNC_CIPHER_UPDATE: g->update = OSSL_FUNC_cipher_update(f); break;
        case OSSL_FUNC_CIPHER_FINAL: g->final = OSSL_FUNC_cipher_final(f); break;
        case OSSL_FUNC_CIPHER_GET_CTX_PARAMS:
            g->get_params = OSSL_FUNC_cipher_get_ctx_params(f);
            break;
        case OSSL_FUNC_CIPHER_SET_CTX_PARAMS:
            g->set_params = OSSL_FUNC_cipher_set_ctx_params(f);
            break;
        default: break;
        }
    }
    if (algs)
        OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
    g->provctx = OSSL_PROVIDER_get0_provider_ctx(prov);
    return g->newctx && g->freectx && g->einit && g->dinit && g->update && g->final &&
           g->get_params && g->set_params;
}

/* Key d from its traffic secret (as it is, or the next one for a
 * KeyUpdate), sequence back to 0. */
static bool rec_key(qdb_tls *tls, rec_dir *d, const uint8_t secret[32], bool enc)
{
    const gcm_impl *g = &tls->gcm;
    uint8_t key[16];
    if (secret != d->secret)
        memcpy(d->secret, secret, 32);
    bool ok = expand_label(tls, d->secret, "key", key, sizeof(key)) &&
              expand_label(tls, d->secret, "iv", d->iv, sizeof(d->iv));
    if (ok && !d->ctx)
        ok = (d->ctx = g->newctx(g->provctx)) != NULL;
    if (ok)
        ok = (enc ? g->einit : g->dinit)(d->ctx, key, sizeof(key), NULL, 0, NULL) == 1;
    OPENSSL_cleanse(key, sizeof(key));
    d->seq = 0;
    return ok;
}

static bool rec_next_secret(const qdb_tls *tls, rec_dir *d)
{
    uint8_t next[32];
    bool ok = expand_label(tls, d->secret, "traffic upd", next, sizeof(next));
    memcpy(d->secret, next, sizeof(next));
    OPENSSL_cleanse(next, sizeof(next));
    return ok;
}

static void rec_dir_free(const qdb_tls *tls, rec_dir *d)
{
    if (d->ctx)
        tls->gcm.freectx(d->ctx);
    OPENSSL_cleanse(d, sizeof(*d));
}

/* The handshake is done: take over the records. */
static bool rec_start(tls_conn *t)
{
    bool ok = t->have_c && t->have_s &&
              rec_key(t->tls, &t->wr, t->server ? t->secret_s : t->secret_c, true) &&
              rec_key(t->tls, &t->rd, t->server ? t->secret_c : t->secret_s, false);
    OPENSSL_cleanse(t->secret_c, sizeof(t->secret_c));
    OPENSSL_cleanse(t->secret_s, sizeof(t->secret_s));
    if (ok)
        t->in = g_malloc(REC_IN_CAP);
    return ok;
}

static void rec_nonce(const rec_dir *d, uint8_t nonce[12])
{
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Seal n bytes of content type `type` as one record at the end of t->out. */
static bool rec_seal(tls_conn *t, uint8_t type, const uint8_t *p, size_t n)
{
    rec_dir *d = &t->wr;
    size_t clen = n + 1 + REC_TAG;
    guint old = t->out->len;
    g_byte_array_set_size(t->out, old + (guint)(REC_HEADER + clen));
    uint8_t *h = t->out->data + old, *body = h + REC_HEADER, nonce[12];
    h[0] = 23; /* application_data, as every record after the handshake */
    h[1] = 3;
    h[2] = 3;
    h[3] = (uint8_t)(clen >> 8);
    h[4] = (uint8_t)clen;
    memcpy(body, p, n);
    body[n] = type;
    rec_nonce(d, nonce);
    const gcm_impl *g = &t->tls->gcm;
    size_t l1, l2;
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, body + n + 1, REC_TAG),
        OSSL_PARAM_construct_end(),
    };
    bool ok = g->einit(d->ctx, NULL, 0, nonce, sizeof(nonce), NULL) == 1 &&
              g->update(d->ctx, NULL, &l1, REC_HEADER, h, REC_HEADER) == 1 &&
              g->update(d->ctx, body, &l1, n + 1, body, n + 1) == 1 && l1 == n + 1 &&
              g->final(d->ctx, body + l1, &l2, 0) == 1 && l2 == 0 &&
              g->get_params(d->ctx, tag) == 1;
    d->seq++;
    if (!ok)
        g_strlcpy(t->error, "sealing a record failed", sizeof(t->error));
    return ok;
}

/* Seal a KeyUpdate (update_not_requested: 0, or requested: 1), then the
 * next write key. */
static bool rec_send_key_update(tls_conn *t, uint8_t requested)
{
    const uint8_t msg[5] = {24, 0, 0, 1, requested}; /* key_update, length 1 */
    if (!rec_seal(t, 22, msg, sizeof(msg)) || !rec_next_secret(t->tls, &t->wr) ||
        !rec_key(t->tls, &t->wr, t->wr.secret, true)) {
        g_strlcpy(t->error, "TLS KeyUpdate failed", sizeof(t->error));
        return false;
    }
    t->stats.key_updates_out++;
    return true;
}

static ssize_t rec_fail(tls_conn *t, const char *why)
{
    if (why)
        g_strlcpy(t->error, why, sizeof(t->error));
    errno = EPROTO;
    return -1;
}

/* The length of the complete record at in[in_off], or 0 when it is not all
 * there yet; -1 when its header is not one (t->error says why). */
static ssize_t rec_complete(tls_conn *t)
{
    size_t avail = t->in_len - t->in_off;
    if (avail < REC_HEADER)
        return 0;
    const uint8_t *h = t->in + t->in_off;
    size_t clen = (size_t)h[3] << 8 | h[4];
    if (h[0] != 23 || h[1] != 3)
        return rec_fail(t, "unexpected TLS record type after the handshake");
    if (clen < 1 + REC_TAG || clen > REC_MAX_CIPHER)
        return rec_fail(t, "TLS record length out of range");
    return avail < REC_HEADER + clen ? 0 : (ssize_t)(REC_HEADER + clen);
}

/* Open the record of rlen bytes at in[in_off] into out (the record's own
 * bytes when out is NULL: in place).  Its data's length, or -1; *type and
 * *plain (where the data is) say what it held. */
static ssize_t rec_open(tls_conn *t, size_t rlen, uint8_t *out, uint8_t *type, uint8_t **plain)
{
    rec_dir *d = &t->rd;
    uint8_t *h = t->in + t->in_off, *ct = h + REC_HEADER, nonce[12];
    size_t n = rlen - REC_HEADER - REC_TAG; /* the inner plaintext: data, type, padding */
    if (!out)
        out = ct;
    rec_nonce(d, nonce);
    const gcm_impl *g = &t->tls->gcm;
    size_t l1, l2;
    OSSL_PARAM tag[] = {
        OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + n, REC_TAG),
        OSSL_PARAM_construct_end(),
    };
    /* in place, the update overwrites the n bytes before the tag, not it */
    bool ok = g->dinit(d->ctx, NULL, 0, nonce, sizeof(nonce), NULL) == 1 &&
              g->update(d->ctx, NULL, &l1, REC_HEADER, h, REC_HEADER) == 1 &&
              g->update(d->ctx, out, &l1, n, ct, n) == 1 && l1 == n &&
              g->set_params(d->ctx, tag) == 1 && g->final(d->ctx, out + l1, &l2, 0) == 1 &&
              l2 == 0;
    d->seq++;
    if (!ok) {
        ERR_clear_error();
        return rec_fail(t, "a TLS record did not authenticate (bad record MAC)");
    }
    while (n > 0 && out[n - 1] == 0) /* padding */
        n--;
    if (n == 0)
        return rec_fail(t, "a TLS record without a content type");
    *type = out[--n];
    *plain = out;
    if (n > REC_MAX_PLAIN)
        return rec_fail(t, "TLS record overflow");
    return (ssize_t)n;
}

/* A record that is not data: close_notify (true, t->eof), a KeyUpdate
 * (true), or the end (false, t->error).  A KeyUpdate that requests ours is
 * not answered here but noted (ku_due): the answer is sealed once nothing
 * waits to leave, or before our next data record (rec_ku_answer), so the
 * KeyUpdates of a peer that does not read pile up no answers -- section
 * 4.6.3 lets several requests met while silent have one answer. */
static bool rec_control(tls_conn *t, uint8_t type, const uint8_t *p, size_t n)
{
    if (type == 21) { /* alert */
        if (n == 2 && p[1] == 0) {
            t->eof = true;
            return true;
        }
        g_snprintf(t->error, sizeof(t->error), "TLS alert %d from the peer", n == 2 ? p[1] : -1);
        return false;
    }
    if (type == 22 && n == 5 && p[0] == 24 && p[1] == 0 && p[2] == 0 && p[3] == 1 &&
        p[4] <= 1) { /* KeyUpdate */
        if (!rec_next_secret(t->tls, &t->rd) || !rec_key(t->tls, &t->rd, t->rd.secret, false)) {
            g_strlcpy(t->error, "TLS KeyUpdate failed", sizeof(t->error));
            return false;
        }
        t->stats.key_updates_in++;
        if (p[4] == 1)
            t->ku_due = true;
        return true;
    }
    g_snprintf(t->error, sizeof(t->error), "unexpected TLS message after the handshake (type %u)",
               type);
    return false;
}

/* Take bytes the socket holds into in[] (moving what is left of a record
 * to the front first).  > 0, 0 at EOF, -1 and errno. */
static ssize_t rec_fill(tls_conn *t)
{
    if (t->in_off > 0) {
        memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
        t->in_len -= t->in_off;
        t->in_off = 0;
    }
    ssize_t r;
    do
        r = recv(t->fd, t->in + t->in_len, REC_IN_CAP - t->in_len, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r > 0)
        t->in_len += (size_t)r;
    return r;
}

/* The answer to the peer's KeyUpdate requests, if one is due. */
static bool rec_ku_answer(tls_conn *t)
{
    if (!t->ku_due)
        return true;
    t->ku_due = false;
    return rec_send_key_update(t, 0);
}

/* tls_conn_recv once established.  A record refused after data was taken
 * in the same call does not lose that data: the call returns it, and the
 * refusal comes with the next call (t->failed; tls_conn_pending says to
 * make it).  Once refused, every call fails alike. */
static ssize_t rec_recv(tls_conn *t, uint8_t *buf, size_t len, bool *want_out)
{
    if (t->failed)
        return rec_fail(t, t->failed_why);
    size_t done = 0;
    bool filled = false, bad = false;
    while (done < len) {
        if (t->pt_len > 0) { /* opened before and not all taken */
            size_t k = MIN(t->pt_len, len - done);
            memcpy(buf + done, t->in + t->pt_off, k);
            t->pt_off += k;
            t->pt_len -= k;
            done += k;
            continue;
        }
        if (t->eof)
            break;
        ssize_t rlen = rec_complete(t);
        if (rlen < 0) {
            bad = true;
            break;
        }
        if (rlen == 0) {
            if (filled || done > 0)
                break; /* one read() a call, as recv(2) */
            if (t->in_len == t->in_off)
                t->in_off = t->in_len = 0;
            ssize_t r = rec_fill(t);
            filled = true;
            if (r == 0) {
                t->eof = true; /* without close_notify: as a clean close (see qdb_tls_new) */
                break;
            }
            if (r < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    return -1; /* nothing was taken: done is 0 */
                break;
            }
            continue;
        }
        /* straight into buf when the whole inner plaintext fits there */
        bool direct = (size_t)rlen - REC_HEADER - REC_TAG <= len - done;
        uint8_t type, *plain;
        ssize_t n = rec_open(t, (size_t)rlen, direct ? buf + done : NULL, &type, &plain);
        if (n < 0) {
            bad = true;
            break;
        }
        t->stats.opened++;
        t->in_off += (size_t)rlen;
        if (type != 23) {
            if (!rec_control(t, type, plain, (size_t)n)) {
                bad = true;
                break;
            }
            continue;
        }
        if (direct) {
            done += (size_t)n;
        } else {
            t->pt_off = (size_t)(plain - t->in);
            t->pt_len = (size_t)n;
        }
    }
    if (bad) {
        t->failed = true;
        t->stats.failed = true;
        g_strlcpy(t->failed_why, t->error, sizeof(t->failed_why));
        if (done == 0)
            return rec_fail(t, NULL);
        t->error[0] = '\0'; /* this call succeeds; the next one fails */
    } else if (t->ku_due && t->out_off == t->out->len && !rec_ku_answer(t)) {
        /* cannot happen (the KDF or the AEAD failed): the data waits for
         * nobody, the connection ends with the next call */
        t->failed = t->stats.failed = true;
        g_strlcpy(t->failed_why, t->error, sizeof(t->failed_why));
        if (done == 0)
            return rec_fail(t, NULL);
        t->error[0] = '\0';
    }
    if (t->in_len == t->in_off && t->pt_len == 0)
        t->in_off = t->in_len = 0;
    if (done > 0)
        return (ssize_t)done;
    if (t->eof)
        return 0;
    *want_out = t->out_off < t->out->len;
    errno = EAGAIN;
    return -1;
}

/* tls_conn_send once established: records of at most 16 KiB while fewer
 * than TLS_OUT_HIGH bytes wait.  Bytes taken, or -1 (EPROTO). */
static ssize_t rec_send(tls_conn *t, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len && t->out->len - t->out_off < TLS_OUT_HIGH) {
        if (!rec_ku_answer(t) ||
            (t->wr.seq >= REC_UPDATE_AFTER && !rec_send_key_update(t, 0)))
            return rec_fail(t, NULL);
        size_t n = MIN(len - done, (size_t)REC_MAX_PLAIN);
        if (!rec_seal(t, 23, buf + done, n))
            return rec_fail(t, NULL);
        done += n;
    }
    return (ssize_t)done;
}

qdb_tls *qdb_tls_new(const qdb_hive_key *key, int role, char *err)
{
    qdb_tls *t = g_new0(qdb_tls, 1);
    t->role = role;
    if (!derive(key, ID_NODE, t->psk_node) || !derive(key, ID_CLIENT, t->psk_client)) {
        qdb_error_set(err, QDB_E_INTERNAL, "HKDF: %s", ERR_reason_error_string(ERR_get_error()));
        goto fail;
    }
    t->ctx = SSL_CTX_new(TLS_method());
    if (!t->ctx || !SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(t->ctx, TLS1_3_VERSION) ||
        /* with AES-NI the cheapest record here: ChaCha20-Poly1305 cost 1.19
         * us a record against 0.87 (sealing and opening, 1 KB and 40 B) */
        !SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256")) {
        qdb_error_set(err, QDB_E_INTERNAL, "TLS context: %s",
                      ERR_reason_error_string(ERR_get_error()));
        goto fail;
    }
    SSL_CTX_set_num_tickets(t->ctx, 0);
    /* A peer that closes without close_notify ends the stream like a clean
     * close: every qdb frame carries its own length, so a cut shows as a
     * frame missing (as on a dropped connection), never as a shorter one. */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    /* conn.c retries a write from its queue, which may have moved or grown */
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* No read-ahead: OpenSSL reads exactly its handshake records, and the
     * records after them are left in the socket for the record layer here.
     * Its buffers are not used after the handshake: let them go. */
    SSL_CTX_set_read_ahead(t->ctx, 0);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_keylog_callback(t->ctx, keylog);
    SSL_CTX_set_psk_use_session_callback(t->ctx, psk_use);
    SSL_CTX_set_psk_find_session_callback(t->ctx, psk_find);
    t->out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "qdb-tls-out");
    if (!t->out_method || !BIO_meth_set_write_ex(t->out_method, out_write) ||
        !BIO_meth_set_ctrl(t->out_method, out_ctrl) ||
        !BIO_meth_set_create(t->out_method, out_create) ||
        !(t->aes128gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL)) || !gcm_lookup(t) ||
        !(t->kdf = EVP_KDF_fetch(NULL, "TLS13-KDF", NULL))) {
        qdb_error_set(err, QDB_E_INTERNAL, "TLS output: %s",
                      ERR_reason_error_string(ERR_get_error()));
        goto fail;
    }
    return t;
fail:
    qdb_tls_free(t);
    return NULL;
}

qdb_tls *qdb_tls_from_file(const char *path, int role, int *code, char *err)
{
    qdb_hive_key key;
    qdb_tls *t = NULL;
    int rc = qdb_hive_key_load(&key, path, err);
    if (rc == QDB_OK && (t = qdb_tls_new(&key, role, err)) == NULL)
        rc = QDB_E_INTERNAL;
    OPENSSL_cleanse(&key, sizeof(key));
    *code = rc;
    return t;
}

void qdb_tls_free(qdb_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    BIO_meth_free(t->out_method);
    EVP_CIPHER_free(t->aes128gcm);
    EVP_KDF_free(t->kdf);
    OPENSSL_cleanse(t, sizeof(*t));
    g_free(t);
}

/* ---- one connection -------------------------------------------------------------- */

tls_conn *tls_conn_new(qdb_tls *tls, int fd, bool server)
{
    tls_conn *t = g_new0(tls_conn, 1);
    t->tls = tls;
    t->fd = fd;
    t->server = server;
    t->out = g_byte_array_new();
    t->ssl = SSL_new(tls->ctx);
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE), *wbio = BIO_new(tls->out_method);
    if (!t->ssl || !rbio || !wbio)
        g_error("SSL_new: %s", ERR_reason_error_string(ERR_get_error())); /* out of memory */
    BIO_set_data(wbio, t);
    SSL_set_bio(t->ssl, rbio, wbio); /* the socket is conn.c's: BIO_NOCLOSE */
    SSL_set_app_data(t->ssl, t);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return t;
}

tls_conn *tls_conn_new_keyed(qdb_tls *tls, int fd, bool server, const uint8_t secret_c[32],
                             const uint8_t secret_s[32])
{
    tls_conn *t = g_new0(tls_conn, 1);
    t->tls = tls;
    t->fd = fd;
    t->server = server;
    t->checked = true;
    t->out = g_byte_array_new();
    memcpy(t->secret_c, secret_c, 32);
    memcpy(t->secret_s, secret_s, 32);
    t->have_c = t->have_s = true;
    if (!rec_start(t))
        g_error("tls_conn_new_keyed: the record keys could not be made");
    t->established = true;
    t->role = server ? QDB_PEER_CLIENT : QDB_PEER_NODE;
    return t;
}

bool tls_conn_key_update(tls_conn *t, bool requested)
{
    return t->established && rec_send_key_update(t, requested ? 1 : 0);
}

bool tls_conn_seal(tls_conn *t, uint8_t type, const uint8_t *p, size_t n)
{
    return t->established && n <= REC_MAX_PLAIN && rec_seal(t, type, p, n);
}

void tls_conn_rec_stats(const tls_conn *t, tls_rec_stats *s)
{
    *s = t->stats;
}

void tls_conn_free(tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    g_byte_array_free(t->out, TRUE);
    rec_dir_free(t->tls, &t->rd);
    rec_dir_free(t->tls, &t->wr);
    g_free(t->in);
    OPENSSL_cleanse(t, sizeof(*t));
    g_free(t);
}

/* After an SSL call that returned r <= 0: -1 and errno, or 0 for a clean
 * close.  The reason of a failure goes to t->error. */
static ssize_t conn_fail(tls_conn *t, int r, bool *want_out)
{
    int e = errno;
    int code = SSL_get_error(t->ssl, r);
    switch (code) {
    case SSL_ERROR_WANT_READ: /* and writable too while records wait to leave */
        *want_out = t->out_off < t->out->len;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want_out = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        if (t->established)
            return 0;
        g_strlcpy(t->error, "closed during the TLS handshake", sizeof(t->error));
        errno = EPROTO;
        return -1;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (r == 0 || e == 0) { /* EOF without close_notify */
                if (t->established)
                    return 0;
                g_strlcpy(t->error, "closed during the TLS handshake", sizeof(t->error));
                errno = EPROTO;
                return -1;
            }
            errno = e;
            return -1;
        }
        G_GNUC_FALLTHROUGH; /* OpenSSL says why */
    default: {
        unsigned long ec = ERR_get_error();
        const char *why = ec ? ERR_reason_error_string(ec) : NULL;
        g_snprintf(t->error, sizeof(t->error), "%s", why ? why : "TLS error");
        ERR_clear_error();
        errno = EPROTO;
        return -1;
    }
    }
}

/* SSL_get_error() reads the thread's error queue, which must be empty
 * before each call.  Every failure path here empties it; this catches what
 * another libcrypto user of the thread may have left, without the cost of
 * ERR_clear_error() on every record. */
static void err_clear(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/* After SSL_do_handshake returned r: 1 once the handshake is done and the
 * record layer has the keys; otherwise r (0 or -1), or -1 with t->error
 * when the keys could not be made. */
static int note_established(tls_conn *t, int r)
{
    if (t->established || r != 1)
        return r;
    if (!rec_start(t)) {
        g_strlcpy(t->error, "TLS traffic keys not available", sizeof(t->error));
        return -1;
    }
    t->established = true;
    if (!t->server)
        t->role = QDB_PEER_NODE; /* we only ever connect to nodes */
    return 1;
}

/* Drive the handshake: 1 once it is done (the records then go through
 * rec_recv and rec_send), or -1 and errno as conn_fail says (EAGAIN, with
 * *want_out; EPROTO with t->error).  What it wrote is sent. */
static int handshake_step(tls_conn *t, bool *want_out)
{
    err_clear();
    int r = SSL_do_handshake(t->ssl);
    int e = errno;
    if (r == 1 && note_established(t, r) != 1) {
        errno = EPROTO;
        return -1;
    }
    if (out_flush(t) < 0)
        return -1;
    if (r == 1)
        return 1;
    errno = e;
    return (int)conn_fail(t, r, want_out); /* -1: not established, no clean close */
}

ssize_t tls_conn_recv(tls_conn *t, void *buf, size_t len, bool *want_out)
{
    *want_out = false;
    t->error[0] = '\0';
    if (t->server && !t->checked) {
        /* A plaintext peer is named as such, not as a garbled handshake. */
        uint8_t b[2];
        ssize_t r = recv(t->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
        if (r <= 0)
            return r;
        t->checked = true;
        /* One byte is enough to decide (a ClientHello record starts with 22):
         * waiting for a second one here would spin on a peer that sends one. */
        if (r < 2)
            b[1] = 3;
        if (b[0] != 22 || !tls_looks_like_tls(b, sizeof(b))) {
            /* OpenSSL would close without a word.  Answer with a fatal
             * handshake_failure alert record (in the clear, as every alert
             * before a handshake is), so that a keyless qdb peer can tell
             * it needs the key (tls_looks_like_tls) rather than see a node
             * that went away.  Best effort: the socket is fresh. */
            static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
            ssize_t w = send(t->fd, alert, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            /* Read what the peer sent, so that the close is a FIN and not a
             * reset, which could destroy the alert before it is read. */
            uint8_t sink[4096];
            while (recv(t->fd, sink, sizeof(sink), MSG_DONTWAIT) == (ssize_t)sizeof(sink))
                ;
            g_strlcpy(t->error, "plaintext, not TLS", sizeof(t->error));
            errno = EPROTO;
            return -1;
        }
    }
    if (!t->established && handshake_step(t, want_out) < 0)
        return -1;
    ssize_t n = rec_recv(t, buf, len, want_out);
    int e = errno;
    if (out_flush(t) < 0) /* a KeyUpdate's answer */
        return -1;
    if (n < 0 && e == EAGAIN)
        *want_out = t->out_off < t->out->len; /* what the flush left */
    errno = e;
    return n;
}

ssize_t tls_conn_send(tls_conn *t, const void *buf, size_t len, bool *want_out)
{
    *want_out = false;
    t->error[0] = '\0';
    /* Records not sent yet go first; past TLS_OUT_HIGH of them, nothing
     * more is encrypted until the socket takes some (the queue waits in
     * conn.c, where the limits see it). */
    if (out_flush(t) < 0)
        return -1;
    size_t unsent = t->out->len - t->out_off;
    if (unsent >= TLS_OUT_HIGH || (len == 0 && unsent > 0)) {
        *want_out = true;
        errno = EAGAIN;
        return -1;
    }
    if (len == 0)
        return 0;
    if (!t->established && handshake_step(t, want_out) < 0)
        return -1;
    ssize_t n = rec_send(t, buf, len);
    if (n < 0)
        return -1;
    if (out_flush(t) < 0)
        return -1;
    return n;
}

size_t tls_conn_unsent(const tls_conn *t)
{
    return t->out->len - t->out_off;
}

bool tls_conn_pending(const tls_conn *t)
{
    if (!t->established)
        return false;
    if (t->pt_len > 0 || t->failed) /* data, or the refusal that follows data taken */
        return true;
    size_t avail = t->in_len - t->in_off;
    const uint8_t *h = t->in + t->in_off;
    /* a whole record, or a header that rec_complete refuses */
    return avail >= REC_HEADER && avail >= REC_HEADER + ((size_t)h[3] << 8 | h[4]);
}

bool tls_conn_established(const tls_conn *t)
{
    return t->established;
}

const char *tls_conn_cipher(const tls_conn *t)
{
    if (!t->established)
        return "";
    return t->ssl ? SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl))
                  : "TLS_AES_128_GCM_SHA256"; /* tls_conn_new_keyed: our one suite */
}

int tls_conn_role(const tls_conn *t)
{
    return t->established ? t->role : QDB_PEER_UNVERIFIED;
}

const char *tls_conn_error(const tls_conn *t)
{
    return t->error;
}

bool tls_looks_like_tls(const uint8_t *buf, size_t len)
{
    return len >= 2 && (buf[0] == 22 || buf[0] == 21) && buf[1] == 3;
}

/* ---- log lines ------------------------------------------------------------------- */

void tls_log_refusal(tls_ratelimit *rl, bool warning, const char *fmt, ...)
{
    int64_t now = g_get_monotonic_time();
    if (now < rl->next_us) {
        rl->suppressed++;
        return;
    }
    rl->next_us = now + TLS_LOG_PERIOD_US;
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char more[64] = "";
    if (rl->suppressed)
        g_snprintf(more, sizeof(more), " (and %u more in the last %d s)", rl->suppressed,
                   TLS_LOG_PERIOD_US / 1000000);
    rl->suppressed = 0;
    if (warning)
        g_warning("%s%s", msg, more);
    else
        g_debug("%s%s", msg, more);
    g_free(msg);
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Authentication for the real loop (tls.h): the hive key, the TLS 1.3
 * external-PSK context, one connection's session, rate-limited log lines.
 *
 * Sections
 *   the hive key: generate, parse, load
 *   the context: derived PSKs, OpenSSL's PSK callbacks
 *   one connection: recv, send and the handshake inside them
 *   log lines
 */
#define G_LOG_DOMAIN "qdb-loop"

#include "config.h"

#include "tls.h"

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
#include <openssl/kdf.h>
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

struct qdb_tls {
    SSL_CTX *ctx;
    BIO_METHOD *out_method;                /* the connections' write side (out_*) */
    int role;                              /* the identity this side presents */
    uint8_t psk_node[32], psk_client[32];  /* derived from the hive key */
};

struct tls_conn {
    SSL *ssl;
    qdb_tls *tls;
    int fd;
    bool server;
    bool checked;      /* server: the first bytes were looked at */
    bool established;
    int role;          /* proven by the peer */
    GByteArray *out;   /* records made and not yet sent, from out_off */
    size_t out_off;
    char error[QDB_ERRMSG_SIZE];
};

/* Bytes of records made and not yet sent past which SSL_write is not
 * called: four full records. */
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
 * send().  The read side stays a socket BIO with read-ahead. */
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
    /* one read() takes several records; tls_conn_pending tells what waits */
    SSL_CTX_set_read_ahead(t->ctx, 1);
    SSL_CTX_set_psk_use_session_callback(t->ctx, psk_use);
    SSL_CTX_set_psk_find_session_callback(t->ctx, psk_find);
    t->out_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "qdb-tls-out");
    if (!t->out_method || !BIO_meth_set_write_ex(t->out_method, out_write) ||
        !BIO_meth_set_ctrl(t->out_method, out_ctrl) ||
        !BIO_meth_set_create(t->out_method, out_create)) {
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

void tls_conn_free(tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    g_byte_array_free(t->out, TRUE);
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

static void note_established(tls_conn *t)
{
    if (!t->established && SSL_is_init_finished(t->ssl)) {
        t->established = true;
        if (!t->server)
            t->role = QDB_PEER_NODE; /* we only ever connect to nodes */
    }
}

/* After an SSL call that returned n: send the records it made (handshake
 * messages, alerts and data alike), then n, or conn_fail's answer. */
static ssize_t ssl_done(tls_conn *t, int n, bool *want_out)
{
    int e = errno;
    note_established(t);
    if (out_flush(t) < 0)
        return -1;
    if (n > 0)
        return n;
    errno = e;
    return conn_fail(t, n, want_out);
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
    err_clear();
    int n = SSL_read(t->ssl, buf, (int)MIN(len, (size_t)G_MAXINT));
    return ssl_done(t, n, want_out);
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
    /* With partial writes on, SSL_write returns after each record: call it
     * until all is taken, so the records leave together. */
    size_t done = 0;
    int n = 0;
    while (done < len && t->out->len - t->out_off < TLS_OUT_HIGH) {
        err_clear();
        n = SSL_write(t->ssl, (const uint8_t *)buf + done,
                      (int)MIN(len - done, (size_t)TLS_OUT_HIGH));
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    ssize_t r = ssl_done(t, done > 0 ? (int)done : n, want_out);
    if (r > 0)
        return r;
    if (r == 0) { /* the peer closed: as send(2) on a closed socket */
        errno = EPIPE;
        return -1;
    }
    return r;
}

size_t tls_conn_unsent(const tls_conn *t)
{
    return t->out->len - t->out_off;
}

bool tls_conn_pending(const tls_conn *t)
{
    return SSL_has_pending(t->ssl) == 1;
}

bool tls_conn_established(const tls_conn *t)
{
    return t->established;
}

const char *tls_conn_cipher(const tls_conn *t)
{
    return t->established ? SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)) : "";
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

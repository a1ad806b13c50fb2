/* SPDX-License-Identifier: BSD-2-Clause */
/* Authentication for the real loop: the hive key, and TLS 1.3 with an
 * external pre-shared key derived from it (OpenSSL; no certificates, no
 * crypto of our own).  qdbd(8), SECURITY, says why this design.
 *
 * The hive key.  32 random bytes, written as one line of 64 hexadecimal
 * digits ("qdbd --gen-key > hive.key").  White space around the digits is
 * ignored; anything else is refused.  A key file that others can read or
 * write (mode o+r or o+w) is refused too: the key is the hive's only secret.
 *
 * The pre-shared keys.  Nobody uses the hive key on the wire: each side
 * derives PSK = HKDF-SHA256(salt "qdb hive key v1", key, info = identity)
 * for the identity it presents, "qdb-node" (qdbd) or "qdb-client" (libqdb,
 * qdb-bench).  A server accepts both identities and tells which one the
 * peer proved (tls_conn_role): the node can later treat node and client
 * sessions apart.  Cipher suite TLS_AES_128_GCM_SHA256 only; key exchange
 * psk_dhe_ke (X25519 on top of the PSK), so a key stolen later does not
 * decrypt what was recorded before; no session tickets, no 0-RTT.
 *
 * A connection (tls_conn) runs over the connection's non-blocking socket:
 * tls_conn_recv and tls_conn_send behave like recv(2) and send(2), with the
 * handshake done inside them as needed (OpenSSL's); once it is done, the
 * records are sealed and opened in tls.c with OpenSSL's AES-128-GCM, the
 * same bytes on the wire (tls.c, "the record layer", says why).
 * tls_conn_recv opens every whole record one read(2) brought, as far as
 * len allows.  Single-threaded per connection;
 * the qdb_tls context is shared by every endpoint given it (qdb-bench gives
 * one to all its clients) and is read-only once made.
 */
#ifndef QDB_LOOP_TLS_H
#define QDB_LOOP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "env.h"

#define QDB_HIVE_KEY_BYTES 32
#define QDB_HIVE_KEY_HEX (2 * QDB_HIVE_KEY_BYTES)

typedef struct qdb_hive_key {
    uint8_t b[QDB_HIVE_KEY_BYTES];
} qdb_hive_key;

/* A fresh key from OpenSSL's RAND_bytes, as the file's line (64 hex digits
 * and a newline) in out.  QDB_OK, or QDB_E_INTERNAL and err. */
int qdb_hive_key_generate(char out[QDB_HIVE_KEY_HEX + 2], char *err);
/* Parse the text of a key file.  QDB_OK, or QDB_E_MALFORMED and err. */
int qdb_hive_key_parse(qdb_hive_key *key, const char *text, char *err);
/* Read and parse the key file at path.  QDB_OK;
 * QDB_E_INVALID_ARGUMENT when it cannot be read (err names the file and the
 * reason); QDB_E_REFUSED when others may read or write it; QDB_E_MALFORMED
 * when it is not a key.  err always begins with the path. */
int qdb_hive_key_load(qdb_hive_key *key, const char *path, char *err);

/* The context: the PSK of the identity this side presents, and the PSKs it
 * accepts.  role: QDB_PEER_NODE (qdbd) or QDB_PEER_CLIENT.  NULL and err
 * when OpenSSL refuses the setup. */
typedef struct qdb_tls qdb_tls;
qdb_tls *qdb_tls_new(const qdb_hive_key *key, int role, char *err);
void qdb_tls_free(qdb_tls *tls);
/* qdb_hive_key_load then qdb_tls_new: what qdbd, libqdb and qdb-bench do
 * with a key file.  NULL, *code (qdb_hive_key_load's, or QDB_E_INTERNAL)
 * and err (beginning with the path, or naming OpenSSL) on failure. */
qdb_tls *qdb_tls_from_file(const char *path, int role, int *code, char *err);

/* ---- one connection (conn.c) -------------------------------------------------- */

typedef struct tls_conn tls_conn;

/* server: we accepted the socket (we answer the handshake). */
tls_conn *tls_conn_new(qdb_tls *tls, int fd, bool server);
void tls_conn_free(tls_conn *t);

/* As recv(2)/send(2): > 0 bytes, 0 the peer closed cleanly (recv only), -1
 * with errno EAGAIN (try again when *want_out says: the socket writable, or
 * else readable) or EPROTO (the handshake failed or a record did not
 * authenticate: tls_conn_error says why), or another errno from the
 * socket.  recv: the data of the records opened before a refused one is
 * returned first, and the refusal comes with the next call
 * (tls_conn_pending is true until then); once refused, every call is. */
ssize_t tls_conn_recv(tls_conn *t, void *buf, size_t len, bool *want_out);
/* The records one call makes leave together, in one send(2); those the
 * socket does not take wait inside the connection (tls_conn_unsent) and
 * leave first on the next call, which may pass len 0 just to push them: it
 * returns 0 once none waits, or -1/EAGAIN wanting the socket writable. */
ssize_t tls_conn_send(tls_conn *t, const void *buf, size_t len, bool *want_out);
/* Bytes of records made and not yet taken by the socket. */
size_t tls_conn_unsent(const tls_conn *t);
/* Decrypted bytes are waiting inside the connection (read them now: epoll
 * will not report them). */
bool tls_conn_pending(const tls_conn *t);
/* The handshake is done: the peer holds the hive key. */
bool tls_conn_established(const tls_conn *t);
/* The negotiated cipher suite, as OpenSSL names it ("TLS_AES_128_GCM_SHA256"),
 * once established; "" before. */
const char *tls_conn_cipher(const tls_conn *t);
/* What the peer proved to be (QDB_PEER_NODE or QDB_PEER_CLIENT) once
 * established; QDB_PEER_UNVERIFIED before. */
int tls_conn_role(const tls_conn *t);
/* Why the last call failed, for a log line ("" when it did not). */
const char *tls_conn_error(const tls_conn *t);

/* Does a stream that begins with these bytes speak TLS?  A TLS record
 * starts with its content type (22 handshake, 21 alert) and version 3.x,
 * which as a qdb frame would be a tag of version 0: no qdb frame begins so.
 * len may be short: false until two bytes are there. */
bool tls_looks_like_tls(const uint8_t *buf, size_t len);

/* ---- rate-limited log lines ---------------------------------------------------
 * At most one line per period; the lines dropped meanwhile are counted and
 * the next line says how many. */
typedef struct tls_ratelimit {
    int64_t next_us;     /* monotonic time before which lines are dropped */
    unsigned suppressed; /* dropped since the last line */
} tls_ratelimit;
#define TLS_LOG_PERIOD_US (10 * 1000000)
/* warning: g_warning (a node's log); otherwise g_debug (a library's). */
void tls_log_refusal(tls_ratelimit *rl, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

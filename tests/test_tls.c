/* SPDX-License-Identifier: BSD-2-Clause */
/* The hive key and TLS-PSK of the real loop (transport-real/tls.h):
 *   - key text: generated keys parse back and differ; bad text is refused
 *   - key files: mode o+r or o+w refused, missing named, good ones read
 *   - over loopback TCP (127.0.0.61-64, a port derived from the pid): a
 *     keyed client reaches a keyed node and the node learns its role; a
 *     wrong key, a keyless client and a keyed client of a keyless node are
 *     each refused on both sides (auth_failures) and nothing is delivered;
 *     a peer that sends one byte of a ClientHello does not make it spin;
 *   - over a socketpair, tls_conn alone (and keyed without a handshake,
 *     tls_rec.h): good data before a refused record is still delivered;
 *     KeyUpdate requests get one answer and never pile up answers; a send of several records is taken
 *     whole by one call (they leave together), and a full socket holds the
 *     records back (EAGAIN, writable wanted) without losing or reordering a
 *     byte; a send of nothing then pushes out what is held; a record comes
 *     in with one read() and leaves nothing pending; the suite is AES-128-GCM.
 */
#include "config.h"

#include <glib.h>
#include <arpa/inet.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <errno.h>
#include <sys/socket.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "transport-real/loop.h"
#include "transport-real/tls.h"
#include "transport-real/tls_rec.h"

/* ---- key text and key files ------------------------------------------------------- */

static void test_generate_parse(void)
{
    char a[QDB_HIVE_KEY_HEX + 2], b[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    CU_ASSERT_EQUAL(qdb_hive_key_generate(a, err), QDB_OK);
    CU_ASSERT_EQUAL(qdb_hive_key_generate(b, err), QDB_OK);
    CU_ASSERT_EQUAL(strlen(a), QDB_HIVE_KEY_HEX + 1);
    CU_ASSERT_EQUAL(a[QDB_HIVE_KEY_HEX], '\n');
    CU_ASSERT_NOT_EQUAL(strcmp(a, b), 0);
    qdb_hive_key k;
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, a, err), QDB_OK);
    char hex[3];
    g_snprintf(hex, sizeof(hex), "%02x", k.b[0]);
    CU_ASSERT_EQUAL(memcmp(hex, a, 2), 0);
    g_snprintf(hex, sizeof(hex), "%02x", k.b[31]);
    CU_ASSERT_EQUAL(memcmp(hex, a + 62, 2), 0);
}

static void test_parse_refuses(void)
{
    static const char good[] = "00112233445566778899aabbccddeeff"
                               "00112233445566778899AABBCCDDEEFF";
    qdb_hive_key k;
    char err[QDB_ERRMSG_SIZE];
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, good, err), QDB_OK);
    CU_ASSERT_EQUAL(k.b[0], 0x00);
    CU_ASSERT_EQUAL(k.b[31], 0xff);
    char *spaced = g_strdup_printf("  %s \n\n", good);
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, spaced, err), QDB_OK);
    g_free(spaced);
    char *longer = g_strdup_printf("%s0", good);
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, longer, err), QDB_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "64 hex digits"));
    g_free(longer);
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, good + 1, err), QDB_E_MALFORMED);
    char *two = g_strdup_printf("%s\n%s\n", good, good);
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, two, err), QDB_E_MALFORMED);
    g_free(two);
    char bad[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg";
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, bad, err), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k, "", err), QDB_E_MALFORMED);
}

static char *write_key(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = g_build_filename(dir, name, NULL);
    CU_ASSERT_TRUE(g_file_set_contents(path, text, -1, NULL));
    CU_ASSERT_EQUAL(chmod(path, mode), 0);
    return path;
}

static void test_load(void)
{
    char *dir = g_dir_make_tmp("qdb-tls-XXXXXX", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key k, k2;
    CU_ASSERT_EQUAL(qdb_hive_key_parse(&k2, line, err), QDB_OK);

    char *ok = write_key(dir, "ok.key", line, 0600);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, ok, err), QDB_OK);
    CU_ASSERT_EQUAL(memcmp(k.b, k2.b, sizeof(k.b)), 0);
    char *group = write_key(dir, "group.key", line, 0640);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, group, err), QDB_OK);
    char *world = write_key(dir, "world.key", line, 0644);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, world, err), QDB_E_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "others may read"));
    CU_ASSERT_EQUAL(strncmp(err, world, strlen(world)), 0);
    char *wwrite = write_key(dir, "wwrite.key", line, 0602);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, wwrite, err), QDB_E_REFUSED);
    char *bad = write_key(dir, "bad.key", "secret\n", 0600);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, bad, err), QDB_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a hive key"));
    char *missing = g_build_filename(dir, "missing.key", NULL);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, missing, err), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_hive_key_load(&k, dir, err), QDB_E_INVALID_ARGUMENT);

    char *paths[] = {ok, group, world, wwrite, bad};
    for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
        g_unlink(paths[i]);
        g_free(paths[i]);
    }
    g_free(missing);
    g_rmdir(dir);
    g_free(dir);
}

static void test_looks_like_tls(void)
{
    static const uint8_t hello[] = {22, 3, 1}, alert[] = {21, 3, 3}, frame[] = {5, 0x21};
    CU_ASSERT_TRUE(tls_looks_like_tls(hello, sizeof(hello)));
    CU_ASSERT_TRUE(tls_looks_like_tls(alert, sizeof(alert)));
    CU_ASSERT_FALSE(tls_looks_like_tls(hello, 1));
    CU_ASSERT_FALSE(tls_looks_like_tls(frame, sizeof(frame)));
}

/* ---- over loopback (127.0.0.61-64) -------------------------------------------------- */

typedef struct sink {
    qdb_transport *t; /* the server's, to ask peer_role from inside recv */
    int frames;
    int role;
} sink;

static void sink_recv(void *core, qdb_addr src, const uint8_t *frame, size_t len)
{
    sink *s = core;
    s->frames++;
    s->role = s->t->peer_role(s->t, src);
    (void)frame;
    (void)len;
}

static const qdb_inbound sink_ops = {.recv = sink_recv};

typedef struct pair_result {
    int frames, role;
    uint64_t server_failures, client_failures;
} pair_result;

/* A server on 127.0.0.(60 + n) keyed with server_key (NULL: none), one
 * frame sent by a client keyed with client_key (QDB_PEER_CLIENT); the loop
 * runs until the frame arrives or both sides gave up (at most 3 s). */
static pair_result pair(int n, const qdb_hive_key *server_key, const qdb_hive_key *client_key)
{
    pair_result r = {0};
    char err[QDB_ERRMSG_SIZE];
    qdb_loop *loop = qdb_loop_new(err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    qdb_addr at = {.ip = (127u << 24) | (unsigned)(60 + n),
                   .port = (uint16_t)(20000 + (getpid() * 7 + n) % 30000)};
    sink s = {0};
    qdb_loop_endpoint *srv = qdb_loop_attach(loop, &at, &sink_ops, &s, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    s.t = qdb_loop_endpoint_transport(srv);
    qdb_loop_endpoint *cli = qdb_loop_attach(loop, NULL, NULL, NULL, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cli);
    qdb_tls *st = server_key ? qdb_tls_new(server_key, QDB_PEER_NODE, err) : NULL;
    qdb_tls *ct = client_key ? qdb_tls_new(client_key, QDB_PEER_CLIENT, err) : NULL;
    if (st)
        qdb_loop_endpoint_secure(srv, st);
    if (ct)
        qdb_loop_endpoint_secure(cli, ct);
    static const uint8_t frame[] = {2, 0x21, 0}; /* any bytes with a valid prefix */
    qdb_transport *t = qdb_loop_endpoint_transport(cli);
    CU_ASSERT_EQUAL(t->send(t, at, frame, sizeof(frame)), QDB_OK);
    gint64 end = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end && s.frames == 0 &&
           (qdb_loop_endpoint_auth_failures(srv) == 0 || qdb_loop_endpoint_auth_failures(cli) == 0))
        qdb_loop_run_once(loop, 50);
    r.frames = s.frames;
    r.role = s.role;
    r.server_failures = qdb_loop_endpoint_auth_failures(srv);
    r.client_failures = qdb_loop_endpoint_auth_failures(cli);
    qdb_loop_detach(loop, cli);
    qdb_loop_detach(loop, srv);
    qdb_loop_free(loop);
    qdb_tls_free(st);
    qdb_tls_free(ct);
    return r;
}

static void test_handshakes(void)
{
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    qdb_hive_key a, b;
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key_parse(&a, line, err);
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key_parse(&b, line, err);

    pair_result r = pair(1, &a, &a);
    CU_ASSERT_EQUAL(r.frames, 1);
    CU_ASSERT_EQUAL(r.role, QDB_PEER_CLIENT);
    CU_ASSERT_EQUAL(r.server_failures + r.client_failures, 0);

    r = pair(2, NULL, NULL); /* no key: plaintext as before, nothing proven */
    CU_ASSERT_EQUAL(r.frames, 1);
    CU_ASSERT_EQUAL(r.role, QDB_PEER_UNVERIFIED);

    const struct {
        const qdb_hive_key *server, *client;
    } refused[] = {{&a, &b}, {&a, NULL}, {NULL, &a}};
    for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
        r = pair(3, refused[i].server, refused[i].client);
        CU_ASSERT_EQUAL(r.frames, 0);
        CU_ASSERT_EQUAL(r.server_failures, 1);
        CU_ASSERT_EQUAL(r.client_failures, 1);
    }
}

/* A peer that sends the first byte of a ClientHello and stops must not make
 * the keyed endpoint spin: the loop then waits out its timeouts. */
static void test_one_byte_peer(void)
{
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    qdb_hive_key a;
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key_parse(&a, line, err);
    qdb_loop *loop = qdb_loop_new(err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
    qdb_addr at = {.ip = (127u << 24) | 64, .port = (uint16_t)(20000 + (getpid() * 7) % 30000)};
    sink s = {0};
    qdb_loop_endpoint *srv = qdb_loop_attach(loop, &at, &sink_ops, &s, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    qdb_tls *st = qdb_tls_new(&a, QDB_PEER_NODE, err);
    qdb_loop_endpoint_secure(srv, st);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(at.port),
                              .sin_addr.s_addr = htonl(at.ip)};
    CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    CU_ASSERT_EQUAL(send(fd, "\x16", 1, 0), 1);
    int turns = 0;
    gint64 end = g_get_monotonic_time() + 300 * 1000;
    while (g_get_monotonic_time() < end) {
        qdb_loop_run_once(loop, 50);
        turns++;
    }
    CU_ASSERT(turns < 30); /* about 6 waits of 50 ms, plus the accept and the byte */
    CU_ASSERT_EQUAL(s.frames, 0);
    close(fd);
    qdb_loop_detach(loop, srv);
    qdb_loop_free(loop);
    qdb_tls_free(st);
}

/* ---- tls_conn over a socketpair ---------------------------------------------------- */

/* Both ends read until both handshakes are done (at most 50 rounds). */
static bool handshake(tls_conn *c, tls_conn *s)
{
    uint8_t b[64];
    bool w;
    for (int i = 0; i < 50 && !(tls_conn_established(c) && tls_conn_established(s)); i++) {
        ssize_t r = tls_conn_recv(c, b, sizeof(b), &w);
        if (r >= 0 || errno != EAGAIN)
            return false;
        r = tls_conn_recv(s, b, sizeof(b), &w);
        if (r >= 0 || errno != EAGAIN)
            return false;
    }
    return tls_conn_established(c) && tls_conn_established(s);
}

/* Read what s has into got[*have ..], until want or EAGAIN. */
static void drain(tls_conn *s, uint8_t *got, size_t *have, size_t want)
{
    bool w;
    while (*have < want) {
        ssize_t r = tls_conn_recv(s, got + *have, want - *have, &w);
        if (r <= 0)
            break;
        *have += (size_t)r;
    }
}

/* A client and a node connection over a socketpair, handshake done. */
typedef struct tls_pair {
    qdb_tls *ct, *st;
    int fd[2];
    tls_conn *c, *s;
} tls_pair;

static void tls_pair_open(tls_pair *p)
{
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    qdb_hive_key k;
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key_parse(&k, line, err);
    p->ct = qdb_tls_new(&k, QDB_PEER_CLIENT, err);
    p->st = qdb_tls_new(&k, QDB_PEER_NODE, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->ct);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p->st);
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
    p->c = tls_conn_new(p->ct, p->fd[0], false);
    p->s = tls_conn_new(p->st, p->fd[1], true);
    CU_ASSERT_FATAL(handshake(p->c, p->s));
}

static void tls_pair_close(tls_pair *p)
{
    tls_conn_free(p->c);
    tls_conn_free(p->s);
    close(p->fd[0]);
    close(p->fd[1]);
    qdb_tls_free(p->ct);
    qdb_tls_free(p->st);
}

static void test_records_together(void)
{
    tls_pair p;
    tls_pair_open(&p);
    tls_conn *c = p.c, *s = p.s;
    int *fd = p.fd;

    enum { TOTAL = 1 << 20, FIRST = 40000 }; /* FIRST: three records */
    uint8_t *data = g_malloc(TOTAL), *got = g_malloc(TOTAL);
    for (size_t i = 0; i < TOTAL; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    bool w;
    /* one call takes all three records: OpenSSL alone returns after the first */
    CU_ASSERT_EQUAL(tls_conn_send(c, data, FIRST, &w), FIRST);
    size_t sent = FIRST, have = 0;
    drain(s, got, &have, FIRST);
    CU_ASSERT_EQUAL_FATAL(have, FIRST);

    /* a socket that takes little: records wait, EAGAIN asks for writability */
    int small = 4096;
    CU_ASSERT_EQUAL(setsockopt(fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    int eagain = 0;
    for (int round = 0; round < 100000 && have < TOTAL; round++) {
        if (sent < TOTAL) {
            ssize_t r = tls_conn_send(c, data + sent, TOTAL - sent, &w);
            if (r > 0) {
                sent += (size_t)r;
            } else {
                CU_ASSERT_FATAL(r < 0 && errno == EAGAIN && w);
                eagain++;
            }
        } else {
            /* nothing new: a send of nothing pushes what is held, 0 once all left */
            ssize_t r = tls_conn_send(c, data, 0, &w);
            CU_ASSERT_FATAL(r == 0 || (r < 0 && errno == EAGAIN && w));
        }
        drain(s, got, &have, TOTAL);
    }
    CU_ASSERT(eagain > 0);
    CU_ASSERT_EQUAL(have, TOTAL);
    CU_ASSERT(memcmp(got, data, TOTAL) == 0);
    CU_ASSERT_EQUAL(tls_conn_send(c, data, 0, &w), 0); /* nothing held any more */
    tls_pair_close(&p);
    g_free(data);
    g_free(got);
}

/* One request in flight: the node takes the client's record with one
 * read() and one call, and nothing is left pending, so the loop asks for no
 * second read (which would only say EAGAIN: a syscall more per request).
 * Both ends agreed on AES-128-GCM, the suite the PSK sessions name. */
static void test_one_record_one_read(void)
{
    tls_pair p;
    tls_pair_open(&p);
    CU_ASSERT_STRING_EQUAL(tls_conn_cipher(p.c), "TLS_AES_128_GCM_SHA256");
    CU_ASSERT_STRING_EQUAL(tls_conn_cipher(p.s), "TLS_AES_128_GCM_SHA256");
    enum { REQUEST = 1100 };
    uint8_t data[REQUEST], got[4 * REQUEST];
    for (size_t i = 0; i < REQUEST; i++)
        data[i] = (uint8_t)(i * 13 + i / 97);
    bool w;
    for (int round = 0; round < 3; round++) {
        CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, REQUEST, &w), REQUEST);
        CU_ASSERT_EQUAL_FATAL(tls_conn_recv(p.s, got, sizeof(got), &w), REQUEST);
        CU_ASSERT(memcmp(got, data, REQUEST) == 0);
        uint8_t b;
        CU_ASSERT(recv(p.fd[1], &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN);
        CU_ASSERT(!tls_conn_pending(p.s));
    }
    tls_pair_close(&p);
}

/* Records after the handshake are tls.c's own (sealed and opened with
 * OpenSSL's AES-128-GCM): a record changed anywhere -- header, ciphertext,
 * tag -- or sent again is refused, and nothing of it is delivered. */
static void test_tampered_records(void)
{
    enum { LEN = 300 };
    uint8_t data[LEN], rec[LEN + 64], got[LEN + 64];
    for (size_t i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 31 + 5);
    const size_t rlen = 5 + LEN + 1 + 16; /* header, data, type, tag */
    /* -1: sent twice (a replay); otherwise the byte flipped */
    const int where[] = {0, 2, 4, 5, 5 + LEN / 2, 5 + LEN, (int)rlen - 1, -1};
    for (size_t k = 0; k < G_N_ELEMENTS(where); k++) {
        tls_pair p;
        tls_pair_open(&p);
        bool w;
        /* the record as the client seals it, taken off the wire */
        CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, LEN, &w), LEN);
        CU_ASSERT_EQUAL_FATAL(recv(p.fd[1], rec, sizeof(rec), MSG_DONTWAIT), (ssize_t)rlen);
        if (where[k] >= 0) {
            rec[where[k]] ^= 0x40;
        } else { /* the genuine record is delivered once */
            CU_ASSERT_EQUAL_FATAL(send(p.fd[0], rec, rlen, 0), (ssize_t)rlen);
            CU_ASSERT_EQUAL(tls_conn_recv(p.s, got, sizeof(got), &w), LEN);
            CU_ASSERT(memcmp(got, data, LEN) == 0);
        }
        CU_ASSERT_EQUAL_FATAL(send(p.fd[0], rec, rlen, 0), (ssize_t)rlen);
        errno = 0;
        ssize_t r = tls_conn_recv(p.s, got, sizeof(got), &w);
        if (where[k] == 4) { /* a longer length: the record waits for bytes that never come */
            CU_ASSERT(r < 0 && errno == EAGAIN);
            CU_ASSERT(!tls_conn_pending(p.s));
        } else {
            CU_ASSERT(r < 0 && errno == EPROTO);
            CU_ASSERT(tls_conn_error(p.s)[0] != '\0');
        }
        tls_pair_close(&p);
    }
}

/* Reads smaller than a record take it in pieces; several records come
 * out of one call; a clean close after them reads as the end. */
static void test_small_reads(void)
{
    enum { LEN = 40000 }; /* three records */
    uint8_t *data = g_malloc(LEN), *got = g_malloc(LEN);
    for (size_t i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 7 + i / 253);
    tls_pair p;
    tls_pair_open(&p);
    bool w;
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, 1000, &w), 1000);
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data + 1000, 1000, &w), 1000);
    /* two records, one call */
    CU_ASSERT_EQUAL(tls_conn_recv(p.s, got, LEN, &w), 2000);
    CU_ASSERT(memcmp(got, data, 2000) == 0);
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, LEN, &w), LEN);
    size_t have = 0;
    int calls = 0;
    while (have < LEN && calls < 10000) {
        ssize_t r = tls_conn_recv(p.s, got + have, MIN((size_t)100, LEN - have), &w);
        calls++;
        if (r > 0)
            have += (size_t)r;
        else
            CU_ASSERT_FATAL(r < 0 && errno == EAGAIN);
    }
    CU_ASSERT_EQUAL(have, LEN);
    CU_ASSERT(memcmp(got, data, LEN) == 0);
    CU_ASSERT(!tls_conn_pending(p.s));
    shutdown(p.fd[0], SHUT_WR);
    CU_ASSERT_EQUAL(tls_conn_recv(p.s, got, LEN, &w), 0);
    tls_pair_close(&p);
    g_free(data);
    g_free(got);
}

/* A record refused after good data in the same read (a changed byte, an
 * alert, a header that is not one): the call that opens the good record
 * returns its data, and the refusal comes with the next call, which
 * tls_conn_pending asks for; every call after it fails alike. */
static void test_data_before_refusal(void)
{
    enum { LEN = 100 };
    uint8_t data[LEN], wire[4 * LEN], got[4 * LEN];
    for (size_t i = 0; i < LEN; i++)
        data[i] = (uint8_t)(i * 29 + 3);
    for (int k = 0; k < 3; k++) {
        tls_pair p;
        tls_pair_open(&p);
        bool w;
        CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, LEN, &w), LEN);
        ssize_t r = recv(p.fd[1], wire, sizeof(wire), MSG_DONTWAIT);
        CU_ASSERT_EQUAL_FATAL(r, 5 + LEN + 1 + 16);
        size_t total = (size_t)r;
        if (k == 0) { /* a second record, one bit of its data flipped */
            CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, LEN, &w), LEN);
            r = recv(p.fd[1], wire + total, sizeof(wire) - total, MSG_DONTWAIT);
            CU_ASSERT_EQUAL_FATAL(r, 5 + LEN + 1 + 16);
            wire[total + 5 + LEN / 2] ^= 0x01;
            total += (size_t)r;
        } else if (k == 1) { /* a fatal alert: handshake_failure */
            static const uint8_t alert[2] = {2, 40};
            CU_ASSERT_FATAL(tls_conn_seal(p.c, 21, alert, sizeof(alert)));
            CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, 0, &w), 0);
            r = recv(p.fd[1], wire + total, sizeof(wire) - total, MSG_DONTWAIT);
            CU_ASSERT_EQUAL_FATAL(r, 5 + 2 + 1 + 16);
            total += (size_t)r;
        } else { /* not a record header */
            static const uint8_t junk[5] = {99, 3, 3, 0, 20};
            memcpy(wire + total, junk, sizeof(junk));
            total += sizeof(junk);
        }
        CU_ASSERT_EQUAL_FATAL(send(p.fd[0], wire, total, 0), (ssize_t)total);
        CU_ASSERT_EQUAL(tls_conn_recv(p.s, got, sizeof(got), &w), LEN);
        CU_ASSERT(memcmp(got, data, LEN) == 0);
        CU_ASSERT_STRING_EQUAL(tls_conn_error(p.s), "");
        CU_ASSERT(tls_conn_pending(p.s));
        for (int again = 0; again < 2; again++) {
            errno = 0;
            CU_ASSERT(tls_conn_recv(p.s, got, sizeof(got), &w) == -1 && errno == EPROTO);
            CU_ASSERT(tls_conn_error(p.s)[0] != '\0');
        }
        tls_pair_close(&p);
    }
}

/* Read everything c has for us until want bytes came (the other end
 * pushing what it holds with sends of nothing). */
static size_t read_all(tls_conn *c, tls_conn *from, uint8_t *got, size_t want)
{
    size_t have = 0;
    bool w;
    for (int i = 0; i < 100000 && have < want; i++) {
        tls_conn_send(from, got, 0, &w);
        ssize_t r = tls_conn_recv(c, got + have, want - have, &w);
        if (r > 0)
            have += (size_t)r;
        else if (r == 0 || errno != EAGAIN)
            break;
    }
    return have;
}

/* KeyUpdates that request ours (RFC 8446 4.6.3): many that come together
 * get one answer, sealed before our next data; while the peer does not
 * read, they queue no answers at all (the bytes waiting to leave stay as
 * they were), and the one answer goes before the next data record; the
 * keys stay in step both ways. */
static void test_key_update_requests(void)
{
    enum { LEN = 10 };
    uint8_t data[LEN] = "0123456789", got[LEN];
    uint8_t *big = g_malloc(1 << 20);
    tls_pair p;
    tls_pair_open(&p);
    bool w;
    tls_rec_stats st;
    /* 1: 500 requests, then data, in one read */
    for (int i = 0; i < 500; i++)
        CU_ASSERT_FATAL(tls_conn_key_update(p.c, true));
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, LEN, &w), LEN);
    CU_ASSERT_EQUAL(tls_conn_recv(p.s, got, sizeof(got), &w), LEN);
    CU_ASSERT(memcmp(got, data, LEN) == 0);
    tls_conn_rec_stats(p.s, &st);
    CU_ASSERT_EQUAL(st.key_updates_in, 500);
    CU_ASSERT_EQUAL(st.key_updates_out, 1);
    CU_ASSERT_EQUAL(tls_conn_unsent(p.s), 0);
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.s, data, LEN, &w), LEN);
    CU_ASSERT_EQUAL(tls_conn_recv(p.c, got, sizeof(got), &w), LEN);
    CU_ASSERT(memcmp(got, data, LEN) == 0);
    tls_conn_rec_stats(p.c, &st);
    CU_ASSERT_EQUAL(st.key_updates_in, 1);

    /* 2: the client stops reading; the node's socket fills */
    for (size_t i = 0; i < (1 << 20); i++)
        big[i] = (uint8_t)(i * 11 + i / 509);
    size_t sent = 0;
    for (int i = 0; i < 1000; i++) {
        ssize_t r = tls_conn_send(p.s, big + sent, (1 << 20) - sent, &w);
        if (r < 0)
            break;
        sent += (size_t)r;
    }
    CU_ASSERT_FATAL(sent > 0 && sent < (1 << 20));
    size_t unsent = tls_conn_unsent(p.s);
    CU_ASSERT_FATAL(unsent > 0);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 1000; i++)
            CU_ASSERT_FATAL(tls_conn_key_update(p.c, true));
        CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.c, data, 0, &w), 0);
        while (tls_conn_recv(p.s, got, sizeof(got), &w) > 0)
            ;
        CU_ASSERT_EQUAL(errno, EAGAIN);
        CU_ASSERT_EQUAL(tls_conn_unsent(p.s), unsent); /* no answer piled up */
    }
    tls_conn_rec_stats(p.s, &st);
    CU_ASSERT_EQUAL(st.key_updates_in, 4500);
    CU_ASSERT_EQUAL(st.key_updates_out, 1);

    /* 3: the client reads it all; the node's next data carries one answer */
    uint8_t *back = g_malloc(sent);
    CU_ASSERT_EQUAL(read_all(p.c, p.s, back, sent), sent);
    CU_ASSERT(memcmp(back, big, sent) == 0);
    CU_ASSERT_EQUAL_FATAL(tls_conn_send(p.s, data, LEN, &w), LEN);
    CU_ASSERT_EQUAL(tls_conn_recv(p.c, got, sizeof(got), &w), LEN);
    CU_ASSERT(memcmp(got, data, LEN) == 0);
    tls_conn_rec_stats(p.c, &st);
    CU_ASSERT_EQUAL(st.key_updates_in, 2);
    tls_conn_rec_stats(p.s, &st);
    CU_ASSERT_EQUAL(st.key_updates_out, 2);
    CU_ASSERT(!st.failed);
    tls_pair_close(&p);
    g_free(back);
    g_free(big);
}

/* Two connections keyed without a handshake (tls_rec.h) talk as a pair. */
static void test_keyed_pair(void)
{
    char line[QDB_HIVE_KEY_HEX + 2], err[QDB_ERRMSG_SIZE];
    qdb_hive_key k;
    CU_ASSERT_EQUAL(qdb_hive_key_generate(line, err), QDB_OK);
    qdb_hive_key_parse(&k, line, err);
    qdb_tls *tls = qdb_tls_new(&k, QDB_PEER_NODE, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tls);
    int fd[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
    uint8_t sc[32], ss[32], got[64];
    memset(sc, 0xc1, sizeof(sc));
    memset(ss, 0x5e, sizeof(ss));
    tls_conn *c = tls_conn_new_keyed(tls, fd[0], false, sc, ss);
    tls_conn *s = tls_conn_new_keyed(tls, fd[1], true, sc, ss);
    bool w;
    CU_ASSERT(tls_conn_established(c) && tls_conn_established(s));
    CU_ASSERT_STRING_EQUAL(tls_conn_cipher(s), "TLS_AES_128_GCM_SHA256");
    CU_ASSERT_EQUAL(tls_conn_send(c, "hello", 5, &w), 5);
    CU_ASSERT_EQUAL(tls_conn_recv(s, got, sizeof(got), &w), 5);
    CU_ASSERT(memcmp(got, "hello", 5) == 0);
    CU_ASSERT_EQUAL(tls_conn_send(s, "world", 5, &w), 5);
    CU_ASSERT_EQUAL(tls_conn_recv(c, got, sizeof(got), &w), 5);
    CU_ASSERT(memcmp(got, "world", 5) == 0);
    tls_conn_free(c);
    tls_conn_free(s);
    close(fd[0]);
    close(fd[1]);
    qdb_tls_free(tls);
}

int main(void)
{
    g_log_set_always_fatal(G_LOG_FATAL_MASK); /* the refusals log warnings */
    CU_TestInfo keys[] = {
        {.pName = "generated keys parse back and differ", .pTestFunc = test_generate_parse},
        {.pName = "bad key text is refused", .pTestFunc = test_parse_refuses},
        {.pName = "key files: mode and content", .pTestFunc = test_load},
        {.pName = "TLS records are told from frames", .pTestFunc = test_looks_like_tls},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo wire[] = {
        {.pName = "right key, wrong key, no key, over loopback", .pTestFunc = test_handshakes},
        {.pName = "a peer sending one byte does not make the node spin",
         .pTestFunc = test_one_byte_peer},
        {.pName = "records leave together; a full socket holds them back",
         .pTestFunc = test_records_together},
        {.pName = "a record comes in with one read, nothing pending; AES-128-GCM",
         .pTestFunc = test_one_record_one_read},
        {.pName = "a record changed or sent again is refused", .pTestFunc = test_tampered_records},
        {.pName = "small reads, several records a read, the end",
         .pTestFunc = test_small_reads},
        {.pName = "data before a refused record is delivered, then the refusal",
         .pTestFunc = test_data_before_refusal},
        {.pName = "KeyUpdate requests: one answer, none piled up while the peer does not read",
         .pTestFunc = test_key_update_requests},
        {.pName = "connections keyed without a handshake talk", .pTestFunc = test_keyed_pair},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {.pName = "hive key", .pTests = keys},
        {.pName = "TLS-PSK connections", .pTests = wire},
        CU_SUITE_INFO_NULL,
    };
    return qdb_test_run(suites);
}

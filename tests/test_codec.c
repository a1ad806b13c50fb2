/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for node/codec.c: round trips of every message type, every
 * decode and encode error with its precise code, the 12-byte framing budget
 * of a client request, stream reassembly through qdb_frame_peek, and the
 * decoder's bounds safety: every prefix and 20,000 seeded random mutations of
 * valid frames (each decoded from an exact-size heap copy, so AddressSanitizer
 * catches any read past the end).  A mutated frame that still decodes must
 * re-encode to the same bytes: the encoding is canonical. */
#include <glib.h>
#include <string.h>

#include "codec.h"
#include "testutil.h"

#define FUZZ_SEED 0x9d2c5680u
#define FUZZ_ROUNDS 20000

/* ---- helpers ------------------------------------------------------------------ */

static qdb_peer mk_peer(uint8_t seed)
{
    qdb_peer p;
    for (int k = 0; k < QDB_ID_BYTES; k++)
        p.id.b[k] = (uint8_t)(seed * 7 + k);
    p.addr.ip = 0x0a000000u | seed;
    p.addr.port = (uint16_t)(1000 + seed);
    return p;
}

static int bytes_eq(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static void assert_msg_eq(const qdb_msg *a, const qdb_msg *b)
{
    CU_ASSERT_EQUAL(a->type, b->type);
    CU_ASSERT_EQUAL(a->seq, b->seq);
    CU_ASSERT_EQUAL(a->rpc, b->rpc);
    CU_ASSERT_EQUAL(a->status, b->status);
    CU_ASSERT_TRUE(bytes_eq(a->alias, a->alias_len, b->alias, b->alias_len));
    CU_ASSERT_TRUE(bytes_eq(a->content, a->content_len, b->content, b->content_len));
    CU_ASSERT_TRUE(bytes_eq(a->comparand, a->comparand_len, b->comparand, b->comparand_len));
    CU_ASSERT_TRUE(qdb_id_eq(&a->target, &b->target));
    CU_ASSERT_EQUAL(a->flags, b->flags);
    CU_ASSERT_TRUE(qdb_peer_eq(&a->peer, &b->peer));
    CU_ASSERT_TRUE(qdb_peer_eq(&a->pred, &b->pred));
    CU_ASSERT_EQUAL(a->n_peers, b->n_peers);
    for (unsigned k = 0; k < a->n_peers && k < b->n_peers; k++)
        CU_ASSERT_TRUE(qdb_peer_eq(&a->peers[k], &b->peers[k]));
    CU_ASSERT_EQUAL(a->n_entries, b->n_entries);
    CU_ASSERT_TRUE(bytes_eq(a->entries, a->entries_len, b->entries, b->entries_len));
    CU_ASSERT_EQUAL(a->expiry, b->expiry);
    CU_ASSERT_EQUAL(a->max, b->max);
    CU_ASSERT_EQUAL(a->replication, b->replication);
    for (unsigned d = 0; d < QDB_REPLICATION_MAX - 2; d++)
        CU_ASSERT_EQUAL(a->leases[d], b->leases[d]);
    CU_ASSERT_EQUAL(a->what, b->what);
    CU_ASSERT_EQUAL(a->count, b->count);
    CU_ASSERT_EQUAL(a->hops, b->hops);
    CU_ASSERT_TRUE(qdb_id_eq(&a->upto, &b->upto));
    CU_ASSERT_EQUAL(a->n_exclude, b->n_exclude);
    for (unsigned k = 0; k < a->n_exclude && k < b->n_exclude; k++)
        CU_ASSERT_TRUE(qdb_addr_eq(a->exclude[k], b->exclude[k]));
}

/* Decode from an exact-size heap copy so ASan sees any over-read. */
static int decode_copy(const uint8_t *buf, size_t len)
{
    uint8_t *copy = g_malloc(len ? len : 1);
    if (len)
        memcpy(copy, buf, len);
    qdb_msg m;
    int rc = qdb_msg_decode(copy, len, &m);
    if (rc == QDB_OK && m.type == QDB_MSG_HANDOVER) {
        size_t pos = 0, n = 0, kl, vl;
        const uint8_t *k, *v;
        while (qdb_msg_entry_next(&m, &pos, &k, &kl, &v, &vl))
            n++;
        CU_ASSERT_EQUAL(n, m.n_entries);
    }
    g_free(copy);
    return rc;
}

/* Frame a hand-made body (tag first) with a correct length prefix. */
static int decode_body(const uint8_t *body, size_t n)
{
    GByteArray *f = g_byte_array_new();
    uint8_t pre[10];
    g_byte_array_append(f, pre, (guint)qdb_varint_put(pre, n));
    g_byte_array_append(f, body, (guint)n);
    int rc = decode_copy(f->data, f->len);
    g_byte_array_unref(f);
    return rc;
}

/* ---- sample messages of every type --------------------------------------------- */

static const uint8_t alias_a[] = "entry/alpha";
static const uint8_t content_a[] = "hello, ring";
static const uint8_t comparand_a[] = "old value";
static const uint8_t status_json[] = "{\"id\":\"ab\",\"stable\":true}";

typedef struct samples {
    qdb_msg m[64];
    size_t n;
    qdb_handover_builder hb; /* backs the HANDOVER samples */
    qdb_handover_builder empty;
} samples;

static qdb_msg *add(samples *s, int type)
{
    g_assert(s->n < G_N_ELEMENTS(s->m));
    qdb_msg *m = &s->m[s->n++];
    memset(m, 0, sizeof *m);
    m->type = type;
    return m;
}

static void samples_init(samples *s)
{
    memset(s, 0, sizeof *s);
    qdb_msg *m;
    m = add(s, QDB_MSG_HELLO);
    m->seq = UINT64_C(0x0123456789abcdef);
    m = add(s, QDB_MSG_HELLO);
    m->seq = UINT64_MAX;

    static const int with_content[] = {QDB_MSG_PUT, QDB_MSG_UPDATE, QDB_MSG_GET_UPDATE};
    for (size_t k = 0; k < G_N_ELEMENTS(with_content); k++) {
        m = add(s, with_content[k]);
        m->seq = 1000 + k;
        m->alias = alias_a;
        m->alias_len = sizeof alias_a - 1;
        m->content = content_a;
        m->content_len = sizeof content_a - 1;
    }
    m = add(s, QDB_MSG_PUT); /* empty content, max seq */
    m->seq = UINT32_MAX;
    m->alias = alias_a;
    m->alias_len = 1;
    m = add(s, QDB_MSG_GET);
    m->seq = 7;
    m->alias = alias_a;
    m->alias_len = sizeof alias_a - 1;
    m = add(s, QDB_MSG_REMOVE);
    m->seq = 0;
    m->alias = alias_a;
    m->alias_len = 3;
    m = add(s, QDB_MSG_CAS);
    m->seq = 300;
    m->alias = alias_a;
    m->alias_len = sizeof alias_a - 1;
    m->content = content_a;
    m->content_len = sizeof content_a - 1;
    m->comparand = comparand_a;
    m->comparand_len = sizeof comparand_a - 1;
    m = add(s, QDB_MSG_CAS); /* empty new content and comparand */
    m->seq = 301;
    m->alias = alias_a;
    m->alias_len = 2;
    m = add(s, QDB_MSG_REMOVE_ALL);
    m->seq = 99999;
    /* the requests beyond the tutorial's, on alias_a */
    static const int alias_only[] = {QDB_MSG_GET_REMOVE, QDB_MSG_GET_META, QDB_MSG_REMOVE_IF};
    for (size_t k = 0; k < G_N_ELEMENTS(alias_only); k++) {
        m = add(s, alias_only[k]);
        m->seq = 2000 + k;
        m->alias = alias_a;
        m->alias_len = sizeof alias_a - 1;
        if (alias_only[k] == QDB_MSG_REMOVE_IF) {
            m->comparand = comparand_a;
            m->comparand_len = sizeof comparand_a - 1;
        }
    }
    static const int with_expiry[] = {QDB_MSG_EXPIRE, QDB_MSG_PUT_EX, QDB_MSG_UPDATE_EX};
    for (size_t k = 0; k < G_N_ELEMENTS(with_expiry); k++) {
        m = add(s, with_expiry[k]);
        m->seq = 2200 + k;
        m->alias = alias_a;
        m->alias_len = sizeof alias_a - 1;
        m->expiry = k == 0 ? -1 : INT64_C(1767225600) + (int64_t)k; /* any 64 bits travel */
        if (with_expiry[k] != QDB_MSG_EXPIRE) {
            m->content = content_a;
            m->content_len = sizeof content_a - 1;
        }
    }
    m = add(s, QDB_MSG_PREFIX);
    m->seq = 2300;
    m->max = QDB_PREFIX_MAX;
    m->alias = alias_a;
    m->alias_len = 5;
    m = add(s, QDB_MSG_PREFIX); /* empty prefix, count only */
    m->seq = 2301;
    m->flags = QDB_PREFIX_COUNT;
    m = add(s, QDB_MSG_REPLY);
    m->seq = 1000;
    m->status = QDB_OK;
    m->content = content_a;
    m->content_len = sizeof content_a - 1;
    m = add(s, QDB_MSG_REPLY);
    m->seq = 1001;
    m->status = QDB_E_ALIAS_NOT_FOUND;
    m = add(s, QDB_MSG_REPLY);
    m->seq = 1002;
    m->status = 255;
    m = add(s, QDB_MSG_FIND);
    m->rpc = UINT64_MAX;
    m->target = mk_peer(3).id;
    m = add(s, QDB_MSG_FIND); /* with the longest exclusion list */
    m->rpc = 4;
    m->target = mk_peer(9).id;
    m->n_exclude = QDB_FIND_EXCLUDE_MAX;
    for (unsigned k = 0; k < QDB_FIND_EXCLUDE_MAX; k++)
        m->exclude[k] = mk_peer((uint8_t)(60 + k)).addr;
    m = add(s, QDB_MSG_FIND_REPLY);
    m->rpc = 5;
    m->flags = 1;
    m->peer = mk_peer(4);
    m = add(s, QDB_MSG_FIND_REPLY);
    m->rpc = 6;
    m->flags = 0;
    m->peer = mk_peer(5);
    m = add(s, QDB_MSG_STABILIZE);
    m->rpc = 128;
    m->peer = mk_peer(6);
    m = add(s, QDB_MSG_STABILIZE_REPLY);
    m->rpc = 129;
    m->flags = 1;
    m->pred = mk_peer(7);
    m->n_peers = 3;
    for (unsigned k = 0; k < 3; k++)
        m->peers[k] = mk_peer((uint8_t)(10 + k));
    m = add(s, QDB_MSG_STABILIZE_REPLY); /* a hive with 3 copies of each entry */
    m->rpc = 132;
    m->n_peers = 1;
    m->peers[0] = mk_peer(13);
    m->replication = 3;
    m = add(s, QDB_MSG_STABILIZE_REPLY); /* "you need not NOTIFY" (ring.c, notify_moot) */
    m->rpc = 133;
    m->flags = QDB_STABILIZE_HAS_PRED | QDB_STABILIZE_NOTIFIED;
    m->pred = mk_peer(8);
    m->n_peers = 1;
    m->peers[0] = mk_peer(14);
    m = add(s, QDB_MSG_STABILIZE_REPLY); /* K = 4: the sender's leases of depth 1 and 2 */
    m->rpc = 134;
    m->flags = QDB_STABILIZE_HAS_PRED | QDB_STABILIZE_LEASES;
    m->pred = mk_peer(14);
    m->replication = 4;
    m->leases[0] = 1093750;
    m->leases[1] = 0;
    m = add(s, QDB_MSG_STABILIZE_REPLY); /* no predecessor, empty list */
    m->rpc = 130;
    m = add(s, QDB_MSG_STABILIZE_REPLY); /* full list */
    m->rpc = 131;
    m->n_peers = QDB_SUCCLIST_MAX;
    for (unsigned k = 0; k < QDB_SUCCLIST_MAX; k++)
        m->peers[k] = mk_peer((uint8_t)(40 + k));
    m = add(s, QDB_MSG_NOTIFY);
    m->rpc = 1;
    m->flags = 1;
    m->peer = mk_peer(8);
    m = add(s, QDB_MSG_PING);
    m->rpc = 0;
    m = add(s, QDB_MSG_PONG);
    m->rpc = 16384;
    m = add(s, QDB_MSG_HANDOVER_ACK);
    m->rpc = 77;
    m = add(s, QDB_MSG_LEAVE);
    m->rpc = 78;
    m->peer = mk_peer(9);
    m->pred = mk_peer(10);
    m->n_peers = 2;
    m->peers[0] = mk_peer(11);
    m->peers[1] = mk_peer(12);
    m = add(s, QDB_MSG_LEAVE); /* null predecessor, no successors */
    m->rpc = 79;
    m->peer = mk_peer(9);
    m = add(s, QDB_MSG_LEAVE); /* its storage failed: the flags byte */
    m->rpc = 80;
    m->flags = QDB_LEAVE_FAILED;
    m->peer = mk_peer(9);
    m->pred = mk_peer(10);
    m = add(s, QDB_MSG_STATUS);
    m->rpc = 90;
    m = add(s, QDB_MSG_STATUS);
    m->rpc = 91;
    m->what = QDB_STATUS_TOPOLOGY;
    m = add(s, QDB_MSG_STATUS_REPLY); /* everything present */
    m->rpc = 92;
    m->what = QDB_STATUS_CONFIG;
    m->flags = QDB_STATUS_F_STABLE | QDB_STATUS_F_PRED | QDB_STATUS_F_SUCC;
    m->peer = mk_peer(15);
    m->pred = mk_peer(16);
    m->n_peers = 1;
    m->peers[0] = mk_peer(17);
    m->count = UINT64_C(1) << 40;
    m->content = status_json;
    m->content_len = sizeof status_json - 1;
    m = add(s, QDB_MSG_STATUS_REPLY); /* a lone node still joining: no neighbours, no JSON */
    m->rpc = 93;
    m->peer = mk_peer(18);
    m = add(s, QDB_MSG_STOP);
    m->rpc = 94;
    m = add(s, QDB_MSG_STOP_REPLY);
    m->rpc = 95;
    m->status = QDB_E_REFUSED;
    m = add(s, QDB_MSG_FORGET);
    m->rpc = 96;
    m->target = mk_peer(19).id;
    m->hops = 255;
    static const uint8_t digests[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    m = add(s, QDB_MSG_DIGEST);
    m->rpc = 97;
    m->target = mk_peer(20).id;
    m->upto = mk_peer(21).id;
    m->content = digests;
    m->content_len = sizeof digests;
    m = add(s, QDB_MSG_DIGEST_REPLY);
    m->rpc = 98;
    m->content = digests;
    m->content_len = 2;

    /* HANDOVER samples carry their records in entries, exactly as decode
     * would present them, so they go through qdb_msg_encode too. */
    qdb_handover_builder_init(&s->hb);
    qdb_handover_builder_add(&s->hb, (const uint8_t *)"k1", 2, (const uint8_t *)"v1", 2);
    qdb_handover_builder_add(&s->hb, (const uint8_t *)"", 0, (const uint8_t *)"", 0);
    uint8_t big[300];
    memset(big, 0xab, sizeof big);
    qdb_handover_builder_add(&s->hb, big, 200, big, sizeof big);
    m = add(s, QDB_MSG_HANDOVER);
    m->rpc = 80;
    m->flags = 1;
    m->peer = mk_peer(13);
    m->n_entries = s->hb.n;
    m->entries = s->hb.records->data;
    m->entries_len = s->hb.records->len;
    qdb_handover_builder_init(&s->empty);
    m = add(s, QDB_MSG_HANDOVER);
    m->rpc = 81;
    m->peer = mk_peer(14);
    m->entries = s->empty.records->data;
}

static void samples_clear(samples *s)
{
    qdb_handover_builder_clear(&s->hb);
    qdb_handover_builder_clear(&s->empty);
}

/* Encode every sample into one array; offsets[k] is where frame k starts. */
static GByteArray *encode_all(const samples *s, size_t *offsets)
{
    GByteArray *out = g_byte_array_new();
    for (size_t k = 0; k < s->n; k++) {
        offsets[k] = out->len;
        CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&s->m[k], out), QDB_OK);
    }
    offsets[s->n] = out->len;
    return out;
}

/* ---- varints and names ------------------------------------------------------------ */

static void test_varint(void)
{
    static const uint64_t values[] = {0, 1, 127, 128, 255, 300, 16383, 16384, UINT32_MAX,
                                      (UINT64_C(1) << 56) - 1, UINT64_MAX - 1, UINT64_MAX};
    static const size_t sizes[] = {1, 1, 1, 2, 2, 2, 2, 3, 5, 8, 10, 10};
    for (size_t k = 0; k < G_N_ELEMENTS(values); k++) {
        uint8_t buf[10];
        size_t n = qdb_varint_put(buf, values[k]);
        CU_ASSERT_EQUAL(n, sizes[k]);
        uint64_t v = 0;
        CU_ASSERT_EQUAL(qdb_varint_get(buf, n, &v), (int)n);
        CU_ASSERT_EQUAL(v, values[k]);
        /* Every shorter prefix is "need more bytes". */
        for (size_t cut = 0; cut < n; cut++)
            CU_ASSERT_EQUAL(qdb_varint_get(buf, cut, &v), 0);
    }
    uint64_t v;
    static const uint8_t nonmin1[] = {0x80, 0x00};
    static const uint8_t nonmin2[] = {0xff, 0x80, 0x00};
    static const uint8_t over10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t cont10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00};
    static const uint8_t zero10[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t max10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(qdb_varint_get(nonmin1, sizeof nonmin1, &v), -1);
    CU_ASSERT_EQUAL(qdb_varint_get(nonmin2, sizeof nonmin2, &v), -1);
    CU_ASSERT_EQUAL(qdb_varint_get(over10, sizeof over10, &v), -1);
    CU_ASSERT_EQUAL(qdb_varint_get(cont10, sizeof cont10, &v), -1);
    CU_ASSERT_EQUAL(qdb_varint_get(zero10, sizeof zero10, &v), -1);
    CU_ASSERT_EQUAL(qdb_varint_get(max10, sizeof max10, &v), 10);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    /* Decoding stops at the first final byte, whatever follows. */
    static const uint8_t two[] = {0x05, 0xff};
    CU_ASSERT_EQUAL(qdb_varint_get(two, sizeof two, &v), 1);
    CU_ASSERT_EQUAL(v, 5);
}

static void test_type_names(void)
{
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_PUT), "PUT");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_FIND_REPLY), "FIND_REPLY");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_HELLO), "HELLO");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_LEAVE), "LEAVE");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(0), "UNKNOWN");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_TYPE_MAX_ + 1), "UNKNOWN");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(-3), "UNKNOWN");
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_EXT_), "UNKNOWN");
    for (int t = 1; t <= QDB_MSG_TYPE_MAX_; t++) {
        if (t == QDB_MSG_EXT_)
            continue;
        CU_ASSERT_STRING_NOT_EQUAL(qdb_msg_type_name(t), "UNKNOWN");
        int expect = (t >= QDB_MSG_PUT && t <= QDB_MSG_REMOVE_ALL) ||
                     (t >= QDB_MSG_GET_REMOVE && t <= QDB_MSG_PREFIX);
        CU_ASSERT_EQUAL(!!qdb_msg_is_request(t), expect);
    }
    CU_ASSERT_STRING_EQUAL(qdb_msg_type_name(QDB_MSG_PREFIX), "PREFIX");
    CU_ASSERT_TRUE(qdb_msg_is_read(QDB_MSG_GET) && qdb_msg_is_read(QDB_MSG_GET_META) &&
                   qdb_msg_is_read(QDB_MSG_PREFIX));
    CU_ASSERT_FALSE(qdb_msg_is_read(QDB_MSG_GET_REMOVE) || qdb_msg_is_read(QDB_MSG_EXPIRE) ||
                    qdb_msg_is_read(QDB_MSG_REMOVE_ALL));
    CU_ASSERT_FALSE(qdb_msg_is_request(0));
    CU_ASSERT_FALSE(qdb_msg_is_request(99));
}

/* ---- round trips ---------------------------------------------------------------- */

static void test_round_trip(void)
{
    samples s;
    samples_init(&s);
    int seen[QDB_MSG_TYPE_MAX_ + 1] = {0};
    for (size_t k = 0; k < s.n; k++) {
        GByteArray *out = g_byte_array_new();
        g_byte_array_append(out, (const uint8_t *)"xyz", 3); /* encode appends */
        CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&s.m[k], out), QDB_OK);
        CU_ASSERT_EQUAL(memcmp(out->data, "xyz", 3), 0);
        size_t flen = 0;
        CU_ASSERT_EQUAL(qdb_frame_peek(out->data + 3, out->len - 3, &flen), QDB_OK);
        CU_ASSERT_EQUAL(flen, out->len - 3);
        qdb_msg d;
        CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(out->data + 3, out->len - 3, &d), QDB_OK);
        assert_msg_eq(&s.m[k], &d);
        /* Zero-copy: byte fields point into the frame. */
        if (d.alias_len)
            CU_ASSERT_TRUE(d.alias > out->data && d.alias < out->data + out->len);
        if (d.content_len)
            CU_ASSERT_TRUE(d.content > out->data && d.content < out->data + out->len);
        /* Re-encoding gives the same bytes. */
        GByteArray *again = g_byte_array_new();
        CU_ASSERT_EQUAL(qdb_msg_encode(&d, again), QDB_OK);
        CU_ASSERT_TRUE(bytes_eq(again->data, again->len, out->data + 3, out->len - 3));
        seen[d.type]++;
        g_byte_array_unref(again);
        g_byte_array_unref(out);
    }
    for (int t = 1; t <= QDB_MSG_TYPE_MAX_; t++)
        CU_ASSERT_TRUE(seen[t] > 0 || t == QDB_MSG_EXT_);
    samples_clear(&s);
}

/* qdb_msg_encode_buf: the same bytes as qdb_msg_encode, for every sample;
 * a buffer one byte short is QDB_E_OVERSIZED and left as it was. */
static void test_encode_buf(void)
{
    samples s;
    samples_init(&s);
    for (size_t k = 0; k < s.n; k++) {
        GByteArray *out = g_byte_array_new();
        CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&s.m[k], out), QDB_OK);
        uint8_t *buf = g_malloc(out->len + 1);
        size_t len = 0;
        CU_ASSERT_EQUAL(qdb_msg_encode_buf(&s.m[k], buf, out->len, &len), QDB_OK);
        CU_ASSERT_TRUE(bytes_eq(buf, len, out->data, out->len));
        memset(buf, 0xa5, out->len + 1);
        len = 7;
        CU_ASSERT_EQUAL(qdb_msg_encode_buf(&s.m[k], buf, out->len - 1, &len), QDB_E_OVERSIZED);
        CU_ASSERT_EQUAL(len, 7);
        CU_ASSERT_EQUAL(buf[0], 0xa5);
        g_free(buf);
        g_byte_array_unref(out);
    }
    /* An invalid message is refused before the size is looked at. */
    qdb_msg bad = {.type = QDB_MSG_EXT_};
    uint8_t small[4];
    size_t len = 0;
    CU_ASSERT_EQUAL(qdb_msg_encode_buf(&bad, small, sizeof small, &len), QDB_E_INVALID_ARGUMENT);
    samples_clear(&s);
}

static void test_fixed_layouts(void)
{
    /* Spot-check the documented byte layout, not just self-consistency. */
    GByteArray *out = g_byte_array_new();
    qdb_msg m = {.type = QDB_MSG_HELLO, .seq = UINT64_C(0x0102030405060708)};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    static const uint8_t hello[] = {9, 0x21, 1, 2, 3, 4, 5, 6, 7, 8};
    CU_ASSERT_TRUE(bytes_eq(out->data, out->len, hello, sizeof hello));

    g_byte_array_set_size(out, 0);
    m = (qdb_msg){.type = QDB_MSG_PUT, .seq = 300, .alias = (const uint8_t *)"ab", .alias_len = 2,
                  .content = (const uint8_t *)"xyz", .content_len = 3};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    static const uint8_t put[] = {9, 0x22, 0xac, 0x02, 2, 'a', 'b', 'x', 'y', 'z'};
    CU_ASSERT_TRUE(bytes_eq(out->data, out->len, put, sizeof put));

    g_byte_array_set_size(out, 0);
    m = (qdb_msg){.type = QDB_MSG_NOTIFY, .rpc = 1, .flags = 1};
    m.peer.id.b[0] = 0xaa;
    m.peer.id.b[31] = 0xbb;
    m.peer.addr = (qdb_addr){0x0a000102, 0x0b16};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    CU_ASSERT_EQUAL(out->len, 1 + 1 + 1 + 1 + QDB_PEER_WIRE);
    CU_ASSERT_EQUAL(out->data[0], 3 + QDB_PEER_WIRE);
    CU_ASSERT_EQUAL(out->data[1], 0x2e);
    CU_ASSERT_EQUAL(out->data[4], 0xaa);
    CU_ASSERT_EQUAL(out->data[4 + 31], 0xbb);
    static const uint8_t addr[] = {0x0a, 0x00, 0x01, 0x02, 0x0b, 0x16};
    CU_ASSERT_EQUAL(memcmp(out->data + 4 + 32, addr, 6), 0);
    g_byte_array_unref(out);
}

/* The requests beyond the tutorial's: their bytes, and what decoding refuses. */
static void test_new_requests(void)
{
    GByteArray *out = g_byte_array_new();
    qdb_msg m = {.type = QDB_MSG_PUT_EX, .seq = 5, .alias = (const uint8_t *)"ab",
                 .alias_len = 2, .expiry = 0x0102, .content = (const uint8_t *)"z",
                 .content_len = 1};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    static const uint8_t put_ex[] = {14, 0x20 | QDB_MSG_PUT_EX, 5, 2, 'a', 'b',
                                     0, 0, 0, 0, 0, 0, 1, 2, 'z'};
    CU_ASSERT_TRUE(bytes_eq(out->data, out->len, put_ex, sizeof put_ex));
    g_byte_array_set_size(out, 0);
    m = (qdb_msg){.type = QDB_MSG_PREFIX, .seq = 1, .flags = QDB_PREFIX_COUNT, .max = 300,
                  .alias = (const uint8_t *)"p", .alias_len = 1};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    static const uint8_t prefix[] = {7, 0x20 | QDB_MSG_PREFIX, 1, 1, 0xac, 0x02, 1, 'p'};
    CU_ASSERT_TRUE(bytes_eq(out->data, out->len, prefix, sizeof prefix));
    m.flags = 2; /* undefined bit */
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    g_byte_array_unref(out);

    /* EXPIRE: exactly 8 bytes of expiry after the alias. */
    static const uint8_t expire[] = {0x20 | QDB_MSG_EXPIRE, 1, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 9, 0};
    CU_ASSERT_EQUAL(decode_body(expire, sizeof expire - 1), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(expire, sizeof expire - 2), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(expire, sizeof expire), QDB_E_MALFORMED);
    /* PUT_EX without its expiry is cut short. */
    static const uint8_t put_cut[] = {0x20 | QDB_MSG_PUT_EX, 1, 1, 'a', 0, 0, 0};
    CU_ASSERT_EQUAL(decode_body(put_cut, sizeof put_cut), QDB_E_TRUNCATED);
    /* PREFIX: defined flags only, minimal max, nothing after the prefix. */
    static const uint8_t pre_ok[] = {0x20 | QDB_MSG_PREFIX, 1, 0, 5, 0, 0};
    CU_ASSERT_EQUAL(decode_body(pre_ok, sizeof pre_ok - 1), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(pre_ok, sizeof pre_ok), QDB_E_MALFORMED);
    static const uint8_t pre_flags[] = {0x20 | QDB_MSG_PREFIX, 1, 2, 5, 0};
    CU_ASSERT_EQUAL(decode_body(pre_flags, sizeof pre_flags), QDB_E_MALFORMED);
    static const uint8_t pre_nonmin[] = {0x20 | QDB_MSG_PREFIX, 1, 0, 0x85, 0, 0};
    CU_ASSERT_EQUAL(decode_body(pre_nonmin, sizeof pre_nonmin), QDB_E_MALFORMED);
    /* GET_META and GET_REMOVE: nothing after the alias. */
    static const uint8_t meta[] = {0x20 | QDB_MSG_GET_META, 1, 1, 'a', 'x'};
    CU_ASSERT_EQUAL(decode_body(meta, sizeof meta - 1), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(meta, sizeof meta), QDB_E_MALFORMED);

    /* The metadata payload: 40 bytes exactly, round trip. */
    qdb_meta a = {.version = 3, .created_us = -1, .modified_us = 7, .size = 1u << 20,
                  .expiry_s = 1767225600}, b;
    uint8_t w[QDB_META_WIRE];
    qdb_meta_encode(&a, w);
    CU_ASSERT_EQUAL(qdb_meta_decode(w, sizeof w, &b), QDB_OK);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    CU_ASSERT_EQUAL(qdb_meta_decode(w, sizeof w - 1, &b), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(w[7], 3);
}

static void test_handover_builder(void)
{
    qdb_handover_builder b;
    qdb_handover_builder_init(&b);
    char key[16], val[16];
    for (int k = 0; k < 10; k++) {
        int kl = g_snprintf(key, sizeof key, "key%d", k);
        int vl = g_snprintf(val, sizeof val, "value-%d", k * k);
        qdb_handover_builder_add(&b, (const uint8_t *)key, (size_t)kl, (const uint8_t *)val, (size_t)vl);
    }
    CU_ASSERT_EQUAL(b.n, 10);
    /* The type may be left 0: the function says what it frames. */
    qdb_msg m = {.rpc = 42, .flags = 0, .peer = mk_peer(1)};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(qdb_msg_encode_handover(&m, &b, out), QDB_OK);
    m.type = QDB_MSG_PING;
    CU_ASSERT_EQUAL(qdb_msg_encode_handover(&m, &b, out), QDB_E_INVALID_ARGUMENT);

    qdb_msg d;
    CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(out->data, out->len, &d), QDB_OK);
    CU_ASSERT_EQUAL(d.type, QDB_MSG_HANDOVER);
    CU_ASSERT_EQUAL(d.rpc, 42);
    CU_ASSERT_EQUAL(d.n_entries, 10);
    CU_ASSERT_TRUE(qdb_peer_eq(&d.peer, &m.peer));
    size_t pos = 0, kl, vl;
    const uint8_t *kp, *vp;
    int k = 0;
    while (qdb_msg_entry_next(&d, &pos, &kp, &kl, &vp, &vl)) {
        int ekl = g_snprintf(key, sizeof key, "key%d", k);
        int evl = g_snprintf(val, sizeof val, "value-%d", k * k);
        CU_ASSERT_TRUE(bytes_eq(kp, kl, (const uint8_t *)key, (size_t)ekl));
        CU_ASSERT_TRUE(bytes_eq(vp, vl, (const uint8_t *)val, (size_t)evl));
        k++;
    }
    CU_ASSERT_EQUAL(k, 10);
    CU_ASSERT_EQUAL(pos, d.entries_len);
    /* entry_next on a non-HANDOVER message yields nothing. */
    qdb_msg ping = {.type = QDB_MSG_PING};
    pos = 0;
    CU_ASSERT_EQUAL(qdb_msg_entry_next(&ping, &pos, &kp, &kl, &vp, &vl), 0);

    /* Cleared builder: empty, reusable, frames zero records. */
    qdb_handover_builder_clear(&b);
    CU_ASSERT_EQUAL(b.n, 0);
    g_byte_array_set_size(out, 0);
    m.type = QDB_MSG_HANDOVER;
    CU_ASSERT_EQUAL(qdb_msg_encode_handover(&m, &b, out), QDB_OK);
    CU_ASSERT_EQUAL(qdb_msg_decode(out->data, out->len, &d), QDB_OK);
    CU_ASSERT_EQUAL(d.n_entries, 0);
    CU_ASSERT_EQUAL(d.entries_len, 0);
    qdb_handover_builder_add(&b, (const uint8_t *)"a", 1, (const uint8_t *)"b", 1);
    CU_ASSERT_EQUAL(b.n, 1);
    qdb_handover_builder_clear(&b);
    g_byte_array_unref(out);
}

/* ---- errors ----------------------------------------------------------------------- */

static void test_encode_errors(void)
{
    static uint8_t big_alias[QDB_MAX_ALIAS + 1];
    GByteArray *out = g_byte_array_new();
    g_byte_array_append(out, (const uint8_t *)"q", 1);
    qdb_msg m;

#define EXPECT_ENC(code)                                                                           \
    do {                                                                                           \
        CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), (code));                                          \
        CU_ASSERT_EQUAL(out->len, 1); /* nothing appended */                                       \
    } while (0)

    m = (qdb_msg){.type = QDB_MSG_PUT, .seq = UINT64_C(1) << 32, .alias = big_alias, .alias_len = 1};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.type = QDB_MSG_REMOVE_ALL;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.type = QDB_MSG_REPLY;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_GET, .seq = 1, .alias = big_alias, .alias_len = QDB_MAX_ALIAS + 1};
    EXPECT_ENC(QDB_E_ALIAS_TOO_LONG);
    m.type = QDB_MSG_CAS;
    EXPECT_ENC(QDB_E_ALIAS_TOO_LONG);
    m = (qdb_msg){.type = QDB_MSG_PUT, .seq = 1, .alias = NULL, .alias_len = 3};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_PUT, .seq = 1, .content = NULL, .content_len = 3};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = 0};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.type = QDB_MSG_TYPE_MAX_ + 1;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_REPLY, .status = 256};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.status = -1;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_FIND_REPLY, .flags = 2};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_FORGET, .hops = 256};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_EXT_};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_DIGEST, .content = (const uint8_t *)"1234567", .content_len = 7};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STABILIZE_REPLY, .n_peers = QDB_SUCCLIST_MAX + 1};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.type = QDB_MSG_LEAVE;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_LEAVE, .flags = QDB_LEAVE_FAILED << 1};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STABILIZE_REPLY, .replication = QDB_REPLICATION_MAX + 1};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STABILIZE_REPLY, .flags = QDB_STABILIZE_LEASES, .replication = 2};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT); /* no lease to carry below K = 3 */
    /* HANDOVER through qdb_msg_encode: the record area must match n_entries. */
    static const uint8_t one_record[] = {1, 'k', 1, 'v'};
    m = (qdb_msg){.type = QDB_MSG_HANDOVER, .entries = one_record, .entries_len = 4, .n_entries = 2};
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.entries_len = 3; /* cut inside the record */
    m.n_entries = 1;
    EXPECT_ENC(QDB_E_INVALID_ARGUMENT);
    m.entries_len = 4;
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);

    /* Content one byte too large for a frame. */
    g_byte_array_set_size(out, 1);
    static const uint8_t dummy = 0;
    m = (qdb_msg){.type = QDB_MSG_PUT, .seq = 1, .alias = big_alias, .alias_len = 1,
                  .content = &dummy, .content_len = QDB_FRAME_MAX - 4 + 1};
    EXPECT_ENC(QDB_E_OVERSIZED);
    m.content_len = SIZE_MAX; /* must not wrap the size count */
    EXPECT_ENC(QDB_E_OVERSIZED);
#undef EXPECT_ENC
    g_byte_array_unref(out);
}

static void test_frame_peek(void)
{
    size_t fl = 0;
    static const uint8_t one[] = {0x05};
    static const uint8_t cont[] = {0x80};
    static const uint8_t zero[] = {0x00};
    static const uint8_t nonmin[] = {0x85, 0x00};
    static const uint8_t max4[] = {0xff, 0xff, 0xff, 0x7f};
    static const uint8_t five[] = {0x80, 0x80, 0x80, 0x80, 0x01};
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(qdb_frame_peek(one, 0, &fl), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(qdb_frame_peek(one, 1, &fl), QDB_OK);
    CU_ASSERT_EQUAL(fl, 6);
    CU_ASSERT_EQUAL(qdb_frame_peek(cont, 1, &fl), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(qdb_frame_peek(zero, 1, &fl), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(qdb_frame_peek(nonmin, 2, &fl), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(qdb_frame_peek(max4, 4, &fl), QDB_OK);
    CU_ASSERT_EQUAL(fl, 4 + QDB_FRAME_MAX);
    for (size_t n = 1; n < 4; n++)
        CU_ASSERT_EQUAL(qdb_frame_peek(max4, n, &fl), QDB_E_TRUNCATED);
    /* A fifth prefix byte is refused as soon as the fourth shows it comes,
     * before the fifth arrives. */
    CU_ASSERT_EQUAL(qdb_frame_peek(five, 4, &fl), QDB_E_OVERSIZED);
    CU_ASSERT_EQUAL(qdb_frame_peek(five, 5, &fl), QDB_E_OVERSIZED);
    CU_ASSERT_EQUAL(qdb_frame_peek(huge, sizeof huge, &fl), QDB_E_OVERSIZED);
    CU_ASSERT_EQUAL(decode_copy(five, sizeof five), QDB_E_OVERSIZED);
    CU_ASSERT_EQUAL(decode_copy(zero, sizeof zero), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(decode_copy(zero, 0), QDB_E_TRUNCATED);
}

static void test_decode_errors(void)
{
    uint8_t b[2000];
    memset(b, 0, sizeof b);

    /* Frame length disagreeing with the buffer. */
    static const uint8_t ping[] = {2, 0x2f, 0x00};
    CU_ASSERT_EQUAL(decode_copy(ping, 3), QDB_OK);
    CU_ASSERT_EQUAL(decode_copy(ping, 2), QDB_E_TRUNCATED);
    static const uint8_t ping_extra[] = {2, 0x2f, 0x00, 0x00};
    CU_ASSERT_EQUAL(decode_copy(ping_extra, 4), QDB_E_MALFORMED);

    /* Version and type. */
    b[0] = 0x0f; /* version 0 */
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_BAD_VERSION);
    b[0] = 0x4f; /* version 2 */
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_BAD_VERSION);
    b[0] = 0xef;
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_BAD_VERSION);
    b[0] = 0x20; /* type 0 */
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_BAD_TYPE);
    /* type 31 is the escape: the next byte is the type - 32 */
    b[0] = 0x3f;
    CU_ASSERT_EQUAL(decode_body(b, 1), QDB_E_TRUNCATED);
    b[1] = QDB_MSG_TYPE_MAX_ - 32 + 1;
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_BAD_TYPE);
    b[1] = QDB_MSG_FORGET - 32;
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_TRUNCATED);
    memset(b + 2, 0, 1 + 32 + 1);
    CU_ASSERT_EQUAL(decode_body(b, 2 + 1 + 32 + 1), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 2 + 1 + 32 + 2), QDB_E_MALFORMED);
    b[1] = QDB_MSG_DIGEST - 32; /* digests: a whole number of u64, 1 to 1024 */
    static uint8_t d[2 + 1 + 64 + 8 * 1025];
    memcpy(d, b, 2);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 64), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 64 + 8), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 64 + 9), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 64 + 8 * 1024), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 64 + 8 * 1025), QDB_E_MALFORMED);
    d[1] = QDB_MSG_DIGEST_REPLY - 32; /* a bitmap of 1 to 128 bytes */
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 128), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(d, 2 + 1 + 129), QDB_E_MALFORMED);
    memset(b, 0, sizeof b);

    /* HELLO: exactly 8 bytes. */
    memset(b, 0, 20);
    b[0] = 0x21;
    CU_ASSERT_EQUAL(decode_body(b, 9), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 8), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, 10), QDB_E_MALFORMED);

    /* Sequence: 32 bits, minimal varint. */
    static const uint8_t seq_max[] = {0x23, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    CU_ASSERT_EQUAL(decode_body(seq_max, sizeof seq_max), QDB_OK);
    static const uint8_t seq_big[] = {0x23, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00};
    CU_ASSERT_EQUAL(decode_body(seq_big, sizeof seq_big), QDB_E_MALFORMED);
    static const uint8_t seq_nonmin[] = {0x23, 0x81, 0x00, 0x00};
    CU_ASSERT_EQUAL(decode_body(seq_nonmin, sizeof seq_nonmin), QDB_E_MALFORMED);
    static const uint8_t seq_cut[] = {0x23, 0x81};
    CU_ASSERT_EQUAL(decode_body(seq_cut, sizeof seq_cut), QDB_E_TRUNCATED);
    static const uint8_t reply_seq_big[] = {0x29, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00};
    CU_ASSERT_EQUAL(decode_body(reply_seq_big, sizeof reply_seq_big), QDB_E_MALFORMED);
    static const uint8_t rall_big[] = {0x28, 0x80, 0x80, 0x80, 0x80, 0x10};
    CU_ASSERT_EQUAL(decode_body(rall_big, sizeof rall_big), QDB_E_MALFORMED);

    /* Alias: at most 1024 bytes, all present. */
    memset(b, 'a', sizeof b);
    b[0] = 0x23; /* GET */
    b[1] = 0x01;
    b[2] = 0x80; /* 1024 = 0x80 0x08 */
    b[3] = 0x08;
    CU_ASSERT_EQUAL(decode_body(b, 4 + 1024), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 4 + 1023), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, 4 + 1025), QDB_E_MALFORMED); /* trailing byte */
    b[2] = 0x81; /* 1025 */
    CU_ASSERT_EQUAL(decode_body(b, 4 + 1025), QDB_E_MALFORMED);
    b[0] = 0x22; /* PUT: an alias that is too long is malformed before anything else */
    CU_ASSERT_EQUAL(decode_body(b, 4 + 1025), QDB_E_MALFORMED);
    CU_ASSERT_EQUAL(decode_body(b, 4 + 10), QDB_E_MALFORMED);
    b[2] = 0x05;
    CU_ASSERT_EQUAL(decode_body(b, 3 + 3), QDB_E_TRUNCATED);

    /* CAS: the new content length must fit in the frame. */
    static const uint8_t cas_cut[] = {0x26, 0x01, 0x01, 'a', 0x05, 'x', 'y'};
    CU_ASSERT_EQUAL(decode_body(cas_cut, sizeof cas_cut), QDB_E_TRUNCATED);
    static const uint8_t cas_ok[] = {0x26, 0x01, 0x01, 'a', 0x02, 'x', 'y', 'c'};
    CU_ASSERT_EQUAL(decode_body(cas_ok, sizeof cas_ok), QDB_OK);

    /* Fixed bodies: one byte short is truncated, one byte more malformed. */
    struct {
        uint8_t tag;
        size_t body; /* bytes after the tag, rpc 0 (one byte) included */
    } fixed[] = {
        {0x20 | QDB_MSG_FIND, 1 + 32},
        {0x20 | QDB_MSG_FIND_REPLY, 1 + 1 + QDB_PEER_WIRE},
        {0x20 | QDB_MSG_STABILIZE, 1 + QDB_PEER_WIRE},
        {0x20 | QDB_MSG_NOTIFY, 1 + 1 + QDB_PEER_WIRE},
        {0x20 | QDB_MSG_PING, 1},
        {0x20 | QDB_MSG_PONG, 1},
        {0x20 | QDB_MSG_HANDOVER_ACK, 1},
        {0x20 | QDB_MSG_STABILIZE_REPLY, 1 + 1 + 1},
        {0x20 | QDB_MSG_LEAVE, 1 + 2 * QDB_PEER_WIRE + 1},
        {0x20 | QDB_MSG_HANDOVER, 1 + 1 + QDB_PEER_WIRE + 1},
        {0x20 | QDB_MSG_REMOVE_ALL, 1},
        {0x20 | QDB_MSG_GET, 2},
        {0x20 | QDB_MSG_REMOVE, 2},
    };
    for (size_t k = 0; k < G_N_ELEMENTS(fixed); k++) {
        memset(b, 0, sizeof b);
        b[0] = fixed[k].tag;
        CU_ASSERT_EQUAL(decode_body(b, 1 + fixed[k].body), QDB_OK);
        CU_ASSERT_EQUAL(decode_body(b, 1 + fixed[k].body - 1), QDB_E_TRUNCATED);
        CU_ASSERT_EQUAL(decode_body(b, 1 + fixed[k].body + 1), QDB_E_MALFORMED);
    }
    /* ... and the content-carrying ones accept any rest. */
    static const int rest_types[] = {QDB_MSG_PUT, QDB_MSG_UPDATE, QDB_MSG_GET_UPDATE, QDB_MSG_REPLY,
                                     QDB_MSG_CAS};
    for (size_t k = 0; k < G_N_ELEMENTS(rest_types); k++) {
        memset(b, 0, sizeof b);
        b[0] = (uint8_t)(0x20 | rest_types[k]);
        size_t min = rest_types[k] == QDB_MSG_CAS ? 4 : 3; /* CAS: new length too */
        CU_ASSERT_EQUAL(decode_body(b, min), QDB_OK);
        CU_ASSERT_EQUAL(decode_body(b, 50), QDB_OK);
        CU_ASSERT_EQUAL(decode_body(b, min - 1), QDB_E_TRUNCATED);
    }

    /* Flags: only bit 0. */
    memset(b, 0, sizeof b);
    static const int flag_types[] = {QDB_MSG_FIND_REPLY, QDB_MSG_NOTIFY, QDB_MSG_STABILIZE_REPLY,
                                     QDB_MSG_HANDOVER};
    for (size_t k = 0; k < G_N_ELEMENTS(flag_types); k++) {
        size_t len = flag_types[k] == QDB_MSG_STABILIZE_REPLY ? 4 + QDB_PEER_WIRE
                     : flag_types[k] == QDB_MSG_HANDOVER      ? 4 + QDB_PEER_WIRE
                                                              : 3 + QDB_PEER_WIRE;
        memset(b, 0, sizeof b);
        b[0] = (uint8_t)(0x20 | flag_types[k]);
        b[2] = 1;
        CU_ASSERT_EQUAL(decode_body(b, len), QDB_OK);
        /* NOTIFY defines bit 1 too (the stabilize-now hint) and bit 2 (a
         * rejoin with its store), HANDOVER bit 1 (replica copies); the first
         * undefined value is 8 for NOTIFY, 4 for HANDOVER, 2 elsewhere. */
        bool notify = flag_types[k] == QDB_MSG_NOTIFY || flag_types[k] == QDB_MSG_HANDOVER;
        if (notify) {
            b[2] = 3;
            CU_ASSERT_EQUAL(decode_body(b, len), QDB_OK);
        }
        if (flag_types[k] == QDB_MSG_NOTIFY) {
            b[2] = 7;
            CU_ASSERT_EQUAL(decode_body(b, len), QDB_OK);
        }
        b[2] = flag_types[k] == QDB_MSG_NOTIFY ? 8 : notify ? 4 : 2;
        CU_ASSERT_EQUAL(decode_body(b, len), QDB_E_MALFORMED);
        b[2] = 0x81;
        CU_ASSERT_EQUAL(decode_body(b, len), QDB_E_MALFORMED);
    }

    /* Peer counts: at most QDB_SUCCLIST_MAX, all present. */
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_STABILIZE_REPLY;
    b[3] = QDB_SUCCLIST_MAX;
    CU_ASSERT_EQUAL(decode_body(b, 4 + QDB_SUCCLIST_MAX * QDB_PEER_WIRE), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 4 + QDB_SUCCLIST_MAX * QDB_PEER_WIRE - 1), QDB_E_TRUNCATED);
    b[3] = QDB_SUCCLIST_MAX + 1;
    CU_ASSERT_EQUAL(decode_body(b, 4 + (QDB_SUCCLIST_MAX + 1) * QDB_PEER_WIRE), QDB_E_MALFORMED);
    b[3] = 255;
    CU_ASSERT_EQUAL(decode_body(b, 4), QDB_E_MALFORMED);
    /* The replication byte: 2..QDB_REPLICATION_MAX; 1 is the default,
     * which is sent as no byte at all (one encoding per message). */
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_STABILIZE_REPLY;
    for (unsigned k = 0; k <= QDB_REPLICATION_MAX + 1; k++) {
        b[4] = (uint8_t)k;
        CU_ASSERT_EQUAL(decode_body(b, 5), k >= 2 && k <= QDB_REPLICATION_MAX ? QDB_OK
                                                                             : QDB_E_MALFORMED);
    }
    /* Leases (bit 3): K - 2 varints after the replication byte, K >= 3. */
    b[2] = QDB_STABILIZE_LEASES;
    b[4] = 3;
    CU_ASSERT_EQUAL(decode_body(b, 6), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 5), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, 4), QDB_E_TRUNCATED);
    b[4] = 2;
    CU_ASSERT_EQUAL(decode_body(b, 6), QDB_E_MALFORMED);
    b[2] = 0;
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_LEAVE;
    size_t n_at = 2 + 2 * QDB_PEER_WIRE;
    b[n_at] = QDB_SUCCLIST_MAX + 1;
    CU_ASSERT_EQUAL(decode_body(b, n_at + 1 + (QDB_SUCCLIST_MAX + 1) * QDB_PEER_WIRE), QDB_E_MALFORMED);
    b[n_at] = 2;
    CU_ASSERT_EQUAL(decode_body(b, n_at + 1 + 2 * QDB_PEER_WIRE), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, n_at + 1 + 1 * QDB_PEER_WIRE), QDB_E_TRUNCATED);
    /* LEAVE's flags byte: present only when not 0, one defined bit. */
    for (unsigned k = 0; k < 4; k++) {
        b[n_at + 1 + 2 * QDB_PEER_WIRE] = (uint8_t)k;
        CU_ASSERT_EQUAL(decode_body(b, n_at + 2 + 2 * QDB_PEER_WIRE),
                        k == QDB_LEAVE_FAILED ? QDB_OK : QDB_E_MALFORMED);
    }

    /* rpc varint overflow. */
    static const uint8_t rpc_over[] = {0x2f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    CU_ASSERT_EQUAL(decode_body(rpc_over, sizeof rpc_over), QDB_E_MALFORMED);
    static const uint8_t rpc_max[] = {0x2f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(decode_body(rpc_max, sizeof rpc_max), QDB_OK);
}

static void test_handover_counts(void)
{
    /* rpc 0, last 0, peer, count, then records. */
    uint8_t b[200];
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_HANDOVER;
    size_t n_at = 3 + QDB_PEER_WIRE;
    static const uint8_t rec[] = {1, 'k', 2, 'v', 'w'};
    memcpy(b + n_at + 1, rec, sizeof rec);
    memcpy(b + n_at + 1 + sizeof rec, rec, sizeof rec);
    size_t one = n_at + 1 + sizeof rec, two = one + sizeof rec;

    b[n_at] = 1;
    CU_ASSERT_EQUAL(decode_body(b, one), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, two), QDB_E_MALFORMED); /* a record beyond the count */
    CU_ASSERT_EQUAL(decode_body(b, one - 1), QDB_E_TRUNCATED); /* value cut */
    CU_ASSERT_EQUAL(decode_body(b, one - 3), QDB_E_TRUNCATED); /* value length missing */
    CU_ASSERT_EQUAL(decode_body(b, n_at + 2), QDB_E_TRUNCATED); /* key cut */
    b[n_at] = 2;
    CU_ASSERT_EQUAL(decode_body(b, two), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, one), QDB_E_TRUNCATED); /* count says more */
    b[n_at] = 0;
    CU_ASSERT_EQUAL(decode_body(b, n_at + 1), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, one), QDB_E_MALFORMED);
    /* A huge count with no records: truncated, quickly. */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    memcpy(b + n_at, huge, sizeof huge);
    memcpy(b + n_at + sizeof huge, rec, sizeof rec);
    CU_ASSERT_EQUAL(decode_body(b, n_at + sizeof huge + sizeof rec), QDB_E_TRUNCATED);
    /* A record length varint that is not minimal. */
    b[n_at] = 1;
    static const uint8_t bad_rec[] = {0x81, 0x00, 'k', 0, 0};
    memcpy(b + n_at + 1, bad_rec, sizeof bad_rec);
    CU_ASSERT_EQUAL(decode_body(b, n_at + 1 + sizeof bad_rec), QDB_E_MALFORMED);

    /* The decoded message exposes exactly the records. */
    b[n_at] = 2;
    memcpy(b + n_at + 1, rec, sizeof rec);
    memcpy(b + n_at + 1 + sizeof rec, rec, sizeof rec);
    GByteArray *f = g_byte_array_new();
    uint8_t pre[10];
    g_byte_array_append(f, pre, (guint)qdb_varint_put(pre, two));
    g_byte_array_append(f, b, (guint)two);
    qdb_msg m;
    CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(f->data, f->len, &m), QDB_OK);
    CU_ASSERT_EQUAL(m.n_entries, 2);
    CU_ASSERT_EQUAL(m.entries_len, 2 * sizeof rec);
    CU_ASSERT_EQUAL(m.entries, f->data + 1 + n_at + 1);
    g_byte_array_unref(f);
}

/* ---- the 12-byte budget ------------------------------------------------------------- */

static void check_budget(uint64_t seq, size_t alias_len, size_t content_len, size_t expect)
{
    static uint8_t alias[QDB_MAX_ALIAS];
    memset(alias, 'a', sizeof alias);
    uint8_t *content = g_malloc0(content_len ? content_len : 1);
    qdb_msg m = {.type = QDB_MSG_PUT, .seq = seq, .alias = alias, .alias_len = alias_len,
                 .content = content, .content_len = content_len};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&m, out), QDB_OK);
    size_t overhead = out->len - alias_len - content_len;
    CU_ASSERT_TRUE(overhead <= 12);
    CU_ASSERT_EQUAL(overhead, expect);
    qdb_msg d;
    CU_ASSERT_EQUAL(qdb_msg_decode(out->data, out->len, &d), QDB_OK);
    CU_ASSERT_EQUAL(d.seq, seq);
    CU_ASSERT_EQUAL(d.content_len, content_len);
    CU_ASSERT_EQUAL(d.alias_len, alias_len);
    CU_ASSERT_EQUAL(d.content + content_len, out->data + out->len);
    g_byte_array_unref(out);
    g_free(content);
}

static void test_budget(void)
{
    /* Worst case: the largest frame there is, max seq, longest alias:
     * prefix 4 + tag 1 + seq 5 + alias length 2 = 12. */
    size_t worst = QDB_FRAME_MAX - 1 - 5 - 2 - QDB_MAX_ALIAS;
    check_budget(UINT32_MAX, QDB_MAX_ALIAS, worst, 12);
    /* One byte more does not fit a frame. */
    static uint8_t alias[QDB_MAX_ALIAS];
    static const uint8_t dummy;
    qdb_msg m = {.type = QDB_MSG_PUT, .seq = UINT32_MAX, .alias = alias, .alias_len = QDB_MAX_ALIAS,
                 .content = &dummy, .content_len = worst + 1};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_OVERSIZED);
    CU_ASSERT_EQUAL(out->len, 0);
    g_byte_array_unref(out);
    /* Typical: small seq, short alias, small content: 1 + 1 + 1 + 1. */
    check_budget(17, 12, 100, 4);
    /* Middle: 1 MiB content, 1024-byte alias, 2^31 seq: 3 + 1 + 5 + 2. */
    check_budget(UINT32_C(1) << 31, QDB_MAX_ALIAS, 1 << 20, 11);
}

/* ---- streams and bounds safety -------------------------------------------------------- */

static void test_stream_chunks(void)
{
    samples s;
    samples_init(&s);
    size_t offsets[G_N_ELEMENTS(s.m) + 1];
    GByteArray *one = encode_all(&s, offsets);
    const int reps = 3;
    GByteArray *stream = g_byte_array_new();
    for (int r = 0; r < reps; r++)
        g_byte_array_append(stream, one->data, one->len);

    GRand *rand = g_rand_new_with_seed(FUZZ_SEED);
    for (int run = 0; run < 20; run++) {
        GByteArray *acc = g_byte_array_new();
        size_t fed = 0, got = 0;
        while (fed < stream->len) {
            size_t chunk = (size_t)g_rand_int_range(rand, 1, 8);
            if (chunk > stream->len - fed)
                chunk = stream->len - fed;
            g_byte_array_append(acc, stream->data + fed, (guint)chunk);
            fed += chunk;
            for (;;) {
                size_t fl;
                int rc = qdb_frame_peek(acc->data, acc->len, &fl);
                if (rc == QDB_E_TRUNCATED)
                    break;
                CU_ASSERT_EQUAL_FATAL(rc, QDB_OK);
                if (fl > acc->len)
                    break;
                qdb_msg d;
                CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(acc->data, fl, &d), QDB_OK);
                size_t k = got % s.n;
                CU_ASSERT_EQUAL(fl, offsets[k + 1] - offsets[k]);
                assert_msg_eq(&s.m[k], &d);
                got++;
                g_byte_array_remove_range(acc, 0, (guint)fl);
            }
        }
        CU_ASSERT_EQUAL(got, reps * s.n);
        CU_ASSERT_EQUAL(acc->len, 0);
        g_byte_array_unref(acc);
    }
    g_rand_free(rand);
    g_byte_array_unref(stream);
    g_byte_array_unref(one);
    samples_clear(&s);
}

static void test_prefixes(void)
{
    samples s;
    samples_init(&s);
    size_t offsets[G_N_ELEMENTS(s.m) + 1];
    GByteArray *all = encode_all(&s, offsets);
    GByteArray *f = g_byte_array_new();
    for (size_t k = 0; k < s.n; k++) {
        const uint8_t *frame = all->data + offsets[k];
        size_t len = offsets[k + 1] - offsets[k];
        /* Every proper prefix of the frame: it ends early. */
        for (size_t cut = 0; cut < len; cut++)
            CU_ASSERT_EQUAL(decode_copy(frame, cut), QDB_E_TRUNCATED);
        CU_ASSERT_EQUAL(decode_copy(frame, len), QDB_OK);
        /* Every shortened body under a consistent length prefix: the body
         * ends early (or, for types whose tail is "rest", still decodes). */
        uint64_t body_len;
        size_t pre = (size_t)qdb_varint_get(frame, len, &body_len);
        CU_ASSERT_EQUAL_FATAL(pre + body_len, len);
        for (size_t body = 1; body < len - pre; body++) {
            g_byte_array_set_size(f, 0);
            uint8_t p[10];
            g_byte_array_append(f, p, (guint)qdb_varint_put(p, body));
            g_byte_array_append(f, frame + pre, (guint)body);
            int rc = decode_copy(f->data, f->len);
            CU_ASSERT_TRUE(rc == QDB_OK || rc == QDB_E_TRUNCATED || rc == QDB_E_MALFORMED);
            if (rc == QDB_OK) {
                int t = s.m[k].type;
                /* a FIND cut exactly before its optional list is a FIND without one */
                bool find_head = t == QDB_MSG_FIND && s.m[k].n_exclude > 0 &&
                                 body == len - pre - 1 - s.m[k].n_exclude * QDB_ADDR_WIRE;
                bool rest = t == QDB_MSG_PUT || t == QDB_MSG_UPDATE || t == QDB_MSG_GET_UPDATE ||
                            t == QDB_MSG_REPLY || t == QDB_MSG_CAS || t == QDB_MSG_REMOVE_IF ||
                            t == QDB_MSG_PUT_EX || t == QDB_MSG_UPDATE_EX ||
                            t == QDB_MSG_DIGEST_REPLY ||
                            (t == QDB_MSG_DIGEST && (len - pre - body) % 8 == 0);
                /* likewise a STABILIZE_REPLY cut before its replication byte */
                bool stab_head = t == QDB_MSG_STABILIZE_REPLY && s.m[k].replication > 1 &&
                                 body == len - pre - 1;
                /* and a LEAVE cut before its flags byte */
                bool leave_head = t == QDB_MSG_LEAVE && s.m[k].flags && body == len - pre - 1;
                CU_ASSERT_TRUE(rest || find_head || stab_head || leave_head);
            }
        }
    }
    g_byte_array_unref(f);
    g_byte_array_unref(all);
    samples_clear(&s);
}

static void test_mutations(void)
{
    samples s;
    samples_init(&s);
    size_t offsets[G_N_ELEMENTS(s.m) + 1];
    GByteArray *all = encode_all(&s, offsets);
    GRand *rand = g_rand_new_with_seed(FUZZ_SEED);
    int counts[QDB_E_LAST_] = {0};
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        size_t k = (size_t)g_rand_int_range(rand, 0, (gint32)s.n);
        size_t len = offsets[k + 1] - offsets[k];
        /* Sometimes cut or extend, then flip 1..4 bytes. */
        size_t mlen = len;
        switch (g_rand_int_range(rand, 0, 8)) {
        case 0:
            mlen = (size_t)g_rand_int_range(rand, 0, (gint32)len + 1);
            break;
        case 1:
            mlen = len + (size_t)g_rand_int_range(rand, 1, 5);
            break;
        default:
            break;
        }
        uint8_t *buf = g_malloc(mlen ? mlen : 1);
        for (size_t i = 0; i < mlen; i++)
            buf[i] = i < len ? all->data[offsets[k] + i] : (uint8_t)g_rand_int(rand);
        int flips = g_rand_int_range(rand, 1, 5);
        for (int f = 0; f < flips && mlen > 0; f++) {
            size_t at = (size_t)g_rand_int_range(rand, 0, (gint32)mlen);
            if (g_rand_boolean(rand))
                buf[at] ^= (uint8_t)(1u << g_rand_int_range(rand, 0, 8));
            else
                buf[at] = (uint8_t)g_rand_int(rand);
        }
        qdb_msg d;
        int rc = qdb_msg_decode(buf, mlen, &d);
        CU_ASSERT_TRUE(rc >= 0 && rc < QDB_E_LAST_);
        if (rc >= 0 && rc < QDB_E_LAST_)
            counts[rc]++;
        if (rc == QDB_OK) {
            /* Canonical: what decodes re-encodes to the very same bytes. */
            GByteArray *again = g_byte_array_new();
            CU_ASSERT_EQUAL(qdb_msg_encode(&d, again), QDB_OK);
            CU_ASSERT_TRUE(bytes_eq(again->data, again->len, buf, mlen));
            g_byte_array_unref(again);
            if (d.type == QDB_MSG_HANDOVER) {
                size_t pos = 0, n = 0, kl, vl;
                const uint8_t *kp, *vp;
                while (qdb_msg_entry_next(&d, &pos, &kp, &kl, &vp, &vl)) {
                    CU_ASSERT_TRUE(kp >= buf && kp + kl <= buf + mlen);
                    CU_ASSERT_TRUE(vp >= buf && vp + vl <= buf + mlen);
                    n++;
                }
                CU_ASSERT_EQUAL(n, d.n_entries);
            }
        } else {
            CU_ASSERT_EQUAL(d.type, 0); /* nothing half-decoded escapes */
        }
        g_free(buf);
    }
    /* The mutations reached the interesting outcomes, not just one. */
    CU_ASSERT_TRUE(counts[QDB_OK] > 0);
    CU_ASSERT_TRUE(counts[QDB_E_TRUNCATED] > 0);
    CU_ASSERT_TRUE(counts[QDB_E_MALFORMED] > 0);
    CU_ASSERT_TRUE(counts[QDB_E_BAD_VERSION] > 0);
    CU_ASSERT_TRUE(counts[QDB_E_BAD_TYPE] > 0);
    g_rand_free(rand);
    g_byte_array_unref(all);
    samples_clear(&s);
}

/* STATUS and STATUS_REPLY: every field is checked, and the JSON is bounded. */
static void test_status_layout(void)
{
    uint8_t b[128];
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_STATUS; /* rpc 0, what */
    for (unsigned what = 0; what <= QDB_STATUS_WHAT_MAX; what++) {
        b[2] = (uint8_t)what;
        CU_ASSERT_EQUAL(decode_body(b, 3), QDB_OK);
    }
    b[2] = QDB_STATUS_WHAT_MAX + 1;
    CU_ASSERT_EQUAL(decode_body(b, 3), QDB_E_MALFORMED);
    b[2] = 0;
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, 4), QDB_E_MALFORMED);

    /* STATUS_REPLY: rpc, what, flags, self, count, json length, json. */
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_STATUS_REPLY;
    size_t min = 1 + 1 + 1 + 1 + QDB_PEER_WIRE + 1 + 1;
    CU_ASSERT_EQUAL(decode_body(b, min), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, min - 1), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, min + 1), QDB_E_MALFORMED);
    b[2] = QDB_STATUS_WHAT_MAX + 1;
    CU_ASSERT_EQUAL(decode_body(b, min), QDB_E_MALFORMED);
    b[2] = 0;
    b[3] = 8; /* an undefined flag */
    CU_ASSERT_EQUAL(decode_body(b, min), QDB_E_MALFORMED);
    b[3] = QDB_STATUS_F_PRED; /* a predecessor announced but missing */
    CU_ASSERT_EQUAL(decode_body(b, min), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, min + QDB_PEER_WIRE), QDB_OK);
    b[3] = 0;
    b[min - 1] = 3; /* 3 bytes of JSON announced, 2 present */
    CU_ASSERT_EQUAL(decode_body(b, min + 2), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, min + 3), QDB_OK);

    /* The JSON bound, on both sides. */
    size_t big = QDB_STATUS_JSON_MAX + 1;
    uint8_t *json = g_malloc0(big);
    qdb_msg m = {.type = QDB_MSG_STATUS_REPLY, .content = json, .content_len = big};
    GByteArray *out = g_byte_array_new();
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(out->len, 0);
    m.content_len = big - 1;
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    qdb_msg d;
    CU_ASSERT_EQUAL(qdb_msg_decode(out->data, out->len, &d), QDB_OK);
    CU_ASSERT_EQUAL(d.content_len, QDB_STATUS_JSON_MAX);
    /* Hand-framed with one byte more: the decoder refuses it as malformed. */
    GByteArray *body = g_byte_array_new();
    uint8_t head[] = {0x20 | QDB_MSG_STATUS_REPLY, 0, 0, 0};
    g_byte_array_append(body, head, sizeof head);
    g_byte_array_append(body, json, QDB_PEER_WIRE);
    uint8_t v[10];
    g_byte_array_append(body, v, (guint)qdb_varint_put(v, 0));
    g_byte_array_append(body, v, (guint)qdb_varint_put(v, big));
    g_byte_array_append(body, json, (guint)big);
    CU_ASSERT_EQUAL(decode_body(body->data, body->len), QDB_E_MALFORMED);
    g_byte_array_unref(body);
    g_byte_array_unref(out);
    g_free(json);

    /* Encoding refuses what could not be decoded back the same. */
    out = g_byte_array_new();
    m = (qdb_msg){.type = QDB_MSG_STATUS_REPLY, .n_peers = 1}; /* a successor without its flag */
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STATUS_REPLY, .flags = QDB_STATUS_F_SUCC};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STATUS, .what = QDB_STATUS_WHAT_MAX + 1};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    m = (qdb_msg){.type = QDB_MSG_STOP_REPLY, .status = 256};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(out->len, 0);
    g_byte_array_unref(out);

    /* STOP: rpc only; STOP_REPLY: rpc and a status byte. */
    memset(b, 0, sizeof b);
    b[0] = 0x20 | QDB_MSG_STOP;
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 3), QDB_E_MALFORMED);
    b[0] = 0x20 | QDB_MSG_STOP_REPLY;
    b[2] = QDB_E_REFUSED;
    CU_ASSERT_EQUAL(decode_body(b, 3), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, 2), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, 4), QDB_E_MALFORMED);
}

/* FIND's exclusion list: absent (the old bytes) or 1..16 addresses, nothing
 * else; every other length is refused with a precise code. */
static void test_find_exclude(void)
{
    GByteArray *out = g_byte_array_new();
    qdb_msg m = {.type = QDB_MSG_FIND, .rpc = 3};
    m.target.b[0] = 0x11;
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    CU_ASSERT_EQUAL(out->len, 1 + 1 + 1 + QDB_ID_BYTES); /* no list: no byte for it */
    g_byte_array_set_size(out, 0);
    m.n_exclude = 2;
    m.exclude[0] = (qdb_addr){0x0a000102, 0x0b16};
    m.exclude[1] = (qdb_addr){0x0a000103, 0x0b17};
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_OK);
    CU_ASSERT_EQUAL(out->len, 1 + 1 + 1 + QDB_ID_BYTES + 1 + 2 * QDB_ADDR_WIRE);
    static const uint8_t tail[] = {2, 0x0a, 0x00, 0x01, 0x02, 0x0b, 0x16,
                                   0x0a, 0x00, 0x01, 0x03, 0x0b, 0x17};
    CU_ASSERT_EQUAL(memcmp(out->data + out->len - sizeof tail, tail, sizeof tail), 0);
    qdb_msg d;
    CU_ASSERT_EQUAL_FATAL(qdb_msg_decode(out->data, out->len, &d), QDB_OK);
    assert_msg_eq(&m, &d);
    m.n_exclude = QDB_FIND_EXCLUDE_MAX + 1;
    g_byte_array_set_size(out, 0);
    CU_ASSERT_EQUAL(qdb_msg_encode(&m, out), QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(out->len, 0);

    uint8_t b[1 + 1 + QDB_ID_BYTES + 1 + (QDB_FIND_EXCLUDE_MAX + 1) * QDB_ADDR_WIRE] = {0};
    b[0] = 0x20 | QDB_MSG_FIND;
    size_t head = 1 + 1 + QDB_ID_BYTES;
    b[head] = 0; /* an empty list is written as no list: refused */
    CU_ASSERT_EQUAL(decode_body(b, head + 1), QDB_E_MALFORMED);
    b[head] = QDB_FIND_EXCLUDE_MAX + 1;
    CU_ASSERT_EQUAL(decode_body(b, head + 1 + (QDB_FIND_EXCLUDE_MAX + 1) * QDB_ADDR_WIRE),
                    QDB_E_MALFORMED);
    b[head] = 2;
    CU_ASSERT_EQUAL(decode_body(b, head + 1 + 2 * QDB_ADDR_WIRE), QDB_OK);
    CU_ASSERT_EQUAL(decode_body(b, head + 1 + 2 * QDB_ADDR_WIRE - 1), QDB_E_TRUNCATED);
    CU_ASSERT_EQUAL(decode_body(b, head + 1 + 2 * QDB_ADDR_WIRE + 1), QDB_E_MALFORMED);
    g_byte_array_unref(out);
}

/* qdb_request_alias(): the alias of an entry request, read without a full
 * decode, for the frames of a pipelined batch announced ahead. */
static void test_request_alias(void)
{
    GByteArray *b = g_byte_array_new();
    const uint8_t *alias;
    size_t alias_len;
    qdb_msg m = {.type = QDB_MSG_UPDATE, .seq = 300, .alias = (const uint8_t *)"key:42",
                 .alias_len = 6, .content = (const uint8_t *)"v", .content_len = 1};
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&m, b), QDB_OK);
    CU_ASSERT_EQUAL(qdb_request_alias(b->data, b->len, &alias, &alias_len), QDB_OK);
    CU_ASSERT_TRUE(alias_len == 6 && memcmp(alias, "key:42", 6) == 0);
    CU_ASSERT_NOT_EQUAL(qdb_request_alias(b->data, 8, &alias, &alias_len), QDB_OK); /* cut */
    g_byte_array_set_size(b, 0);
    qdb_msg all = {.type = QDB_MSG_REMOVE_ALL, .seq = 1}; /* no alias */
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&all, b), QDB_OK);
    CU_ASSERT_NOT_EQUAL(qdb_request_alias(b->data, b->len, &alias, &alias_len), QDB_OK);
    g_byte_array_set_size(b, 0);
    qdb_msg hello = {.type = QDB_MSG_HELLO, .seq = 7}; /* not an entry request */
    CU_ASSERT_EQUAL_FATAL(qdb_msg_encode(&hello, b), QDB_OK);
    CU_ASSERT_NOT_EQUAL(qdb_request_alias(b->data, b->len, &alias, &alias_len), QDB_OK);
    g_byte_array_free(b, TRUE);
}

/* qdb_reply_encode_buf() gives exactly qdb_msg_encode_buf()'s bytes. */
static void test_reply_encode(void)
{
    static uint8_t payload[1500];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    const size_t lens[] = {0, 1, 100, 1024, sizeof payload};
    const uint64_t seqs[] = {0, 1, 127, 128, UINT32_MAX};
    for (size_t i = 0; i < G_N_ELEMENTS(lens); i++) {
        qdb_msg m = {.type = QDB_MSG_REPLY, .seq = seqs[i], .status = (int)(i * 3),
                     .content = lens[i] ? payload : NULL, .content_len = lens[i]};
        uint8_t a[2048], b[2048];
        size_t al = 0, bl = 0;
        CU_ASSERT_EQUAL_FATAL(qdb_msg_encode_buf(&m, a, sizeof a, &al), QDB_OK);
        CU_ASSERT_EQUAL_FATAL(qdb_reply_encode_buf(m.seq, m.status, m.content, m.content_len, b,
                                                   sizeof b, &bl), QDB_OK);
        CU_ASSERT_TRUE(al == bl && memcmp(a, b, al) == 0);
        CU_ASSERT_EQUAL(qdb_reply_encode_buf(m.seq, m.status, m.content, m.content_len, b,
                                             al - 1, &bl), QDB_E_OVERSIZED);
    }
    uint8_t c[64];
    size_t cl;
    CU_ASSERT_EQUAL(qdb_reply_encode_buf(1, 256, NULL, 0, c, sizeof c, &cl),
                    QDB_E_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(qdb_reply_encode_buf((uint64_t)UINT32_MAX + 1, 0, NULL, 0, c, sizeof c, &cl),
                    QDB_E_INVALID_ARGUMENT);
}

static CU_TestInfo basic_tests[] = {
    {.pName = "varint", .pTestFunc = test_varint},
    {.pName = "type names", .pTestFunc = test_type_names},
    {.pName = "round trip every type", .pTestFunc = test_round_trip},
    {.pName = "encode into a buffer", .pTestFunc = test_encode_buf},
    {.pName = "REPLY from its fields", .pTestFunc = test_reply_encode},
    {.pName = "new requests", .pTestFunc = test_new_requests},
    {.pName = "fixed layouts", .pTestFunc = test_fixed_layouts},
    {.pName = "handover builder", .pTestFunc = test_handover_builder},
    {.pName = "status layout", .pTestFunc = test_status_layout},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo error_tests[] = {
    {.pName = "encode errors", .pTestFunc = test_encode_errors},
    {.pName = "frame peek", .pTestFunc = test_frame_peek},
    {.pName = "request alias", .pTestFunc = test_request_alias},
    {.pName = "decode errors", .pTestFunc = test_decode_errors},
    {.pName = "handover counts", .pTestFunc = test_handover_counts},
    {.pName = "12-byte budget", .pTestFunc = test_budget},
    {.pName = "FIND exclusion list", .pTestFunc = test_find_exclude},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo robust_tests[] = {
    {.pName = "stream in 1..7-byte chunks", .pTestFunc = test_stream_chunks},
    {.pName = "every prefix", .pTestFunc = test_prefixes},
    {.pName = "seeded mutations", .pTestFunc = test_mutations},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {.pName = "codec basics", .pTests = basic_tests},
    {.pName = "codec errors", .pTests = error_tests},
    {.pName = "codec robustness", .pTests = robust_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return qdb_test_run(suites);
}

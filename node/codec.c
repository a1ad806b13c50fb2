/* SPDX-License-Identifier: BSD-2-Clause */
/* Wire codec: frames <-> qdb_msg.  The layout is documented in codec.h.
 *
 * Sections: varints, peers, message type table, frame prefix, encoder,
 * HANDOVER records, decoder.
 *
 * Encoding makes two passes over one description of each body (emit_body):
 * the first only counts and validates, the second writes into space reserved
 * once in the output array.  So an error appends nothing, the length prefix
 * is known before the body is written, and a 256 MiB frame is copied once.
 *
 * Decoding is zero-copy: byte fields point into the caller's frame.  Every
 * read goes through a bounds-checked reader, so no input -- truncated,
 * mutated or hostile -- makes it read outside [buf, buf + len).  Everything
 * the decoder accepts the encoder reproduces byte for byte (flags hold only
 * the bits their type defines, varints are minimal, no trailing bytes), which
 * the mutation test checks.
 */
#include "codec.h"

#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        if (rc_ != QDB_OK)                                                                         \
            return rc_;                                                                            \
    } while (0)

/* A 4-byte LEB128 varint holds 28 bits: frame_peek relies on this to call a
 * 5th prefix byte oversized without reading it. */
G_STATIC_ASSERT(QDB_FRAME_MAX == (((size_t)1 << 28) - 1));
G_STATIC_ASSERT(QDB_MSG_TYPE_MAX_ < 32 + 256);

/* ---- varints ------------------------------------------------------------- */

size_t qdb_varint_put(uint8_t out[10], uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

int qdb_varint_get(const uint8_t *buf, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i >= len)
            return 0;
        uint8_t b = buf[i];
        /* The 10th byte carries only bit 63: anything else overflows (and a
         * continuation bit there would make an 11-byte varint). */
        if (i == 9 && b > 1)
            return -1;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0)
                return -1; /* redundant zero group: not minimal */
            *v = x;
            return (int)i + 1;
        }
    }
    return -1; /* not reached: the 10th byte either ends or fails above */
}

/* ---- peers -------------------------------------------------------------------
 * The one place a peer's 38 bytes are written and read: frames (FIND_REPLY,
 * STABILIZE, ...) and the WRONG_NODE hint in a REPLY payload use both. */

void qdb_peer_encode(const qdb_peer *p, uint8_t out[QDB_PEER_WIRE])
{
    memcpy(out, p->id.b, QDB_ID_BYTES);
    qdb_be32_put(out + QDB_ID_BYTES, p->addr.ip);
    qdb_be16_put(out + QDB_ID_BYTES + 4, p->addr.port);
}

int qdb_peer_decode(const uint8_t *buf, size_t len, qdb_peer *p)
{
    if (len != QDB_PEER_WIRE)
        return QDB_E_MALFORMED;
    memcpy(p->id.b, buf, QDB_ID_BYTES);
    p->addr.ip = qdb_be32_get(buf + QDB_ID_BYTES);
    p->addr.port = qdb_be16_get(buf + QDB_ID_BYTES + 4);
    return QDB_OK;
}

/* ---- message types ---------------------------------------------------------- */

static const char *const type_names[QDB_MSG_TYPE_MAX_ + 1] = {
    [QDB_MSG_HELLO] = "HELLO",
    [QDB_MSG_PUT] = "PUT",
    [QDB_MSG_GET] = "GET",
    [QDB_MSG_UPDATE] = "UPDATE",
    [QDB_MSG_REMOVE] = "REMOVE",
    [QDB_MSG_CAS] = "CAS",
    [QDB_MSG_GET_UPDATE] = "GET_UPDATE",
    [QDB_MSG_REMOVE_ALL] = "REMOVE_ALL",
    [QDB_MSG_REPLY] = "REPLY",
    [QDB_MSG_FIND] = "FIND",
    [QDB_MSG_FIND_REPLY] = "FIND_REPLY",
    [QDB_MSG_STABILIZE] = "STABILIZE",
    [QDB_MSG_STABILIZE_REPLY] = "STABILIZE_REPLY",
    [QDB_MSG_NOTIFY] = "NOTIFY",
    [QDB_MSG_PING] = "PING",
    [QDB_MSG_PONG] = "PONG",
    [QDB_MSG_HANDOVER] = "HANDOVER",
    [QDB_MSG_HANDOVER_ACK] = "HANDOVER_ACK",
    [QDB_MSG_LEAVE] = "LEAVE",
    [QDB_MSG_STATUS] = "STATUS",
    [QDB_MSG_STATUS_REPLY] = "STATUS_REPLY",
    [QDB_MSG_STOP] = "STOP",
    [QDB_MSG_STOP_REPLY] = "STOP_REPLY",
    [QDB_MSG_FORGET] = "FORGET",
    [QDB_MSG_DIGEST] = "DIGEST",
    [QDB_MSG_DIGEST_REPLY] = "DIGEST_REPLY",
    [QDB_MSG_GET_REMOVE] = "GET_REMOVE",
    [QDB_MSG_REMOVE_IF] = "REMOVE_IF",
    [QDB_MSG_GET_META] = "GET_META",
    [QDB_MSG_EXPIRE] = "EXPIRE",
    [QDB_MSG_PUT_EX] = "PUT_EX",
    [QDB_MSG_UPDATE_EX] = "UPDATE_EX",
    [QDB_MSG_PREFIX] = "PREFIX",
};

const char *qdb_msg_type_name(int type)
{
    if (type < 1 || type > QDB_MSG_TYPE_MAX_ || type == QDB_MSG_EXT_)
        return "UNKNOWN";
    return type_names[type];
}

int qdb_msg_is_request(int type)
{
    switch (type) {
    case QDB_MSG_PUT:
    case QDB_MSG_GET:
    case QDB_MSG_UPDATE:
    case QDB_MSG_REMOVE:
    case QDB_MSG_CAS:
    case QDB_MSG_GET_UPDATE:
    case QDB_MSG_REMOVE_ALL:
    case QDB_MSG_GET_REMOVE:
    case QDB_MSG_REMOVE_IF:
    case QDB_MSG_GET_META:
    case QDB_MSG_EXPIRE:
    case QDB_MSG_PUT_EX:
    case QDB_MSG_UPDATE_EX:
    case QDB_MSG_PREFIX:
        return 1;
    default:
        return 0;
    }
}

int qdb_msg_is_read(int type)
{
    return type == QDB_MSG_GET || type == QDB_MSG_GET_META || type == QDB_MSG_PREFIX;
}

/* ---- entry metadata ---------------------------------------------------------- */

void qdb_meta_encode(const qdb_meta *meta, uint8_t out[QDB_META_WIRE])
{
    qdb_be64_put(out, meta->version);
    qdb_be64_put(out + 8, (uint64_t)meta->created_us);
    qdb_be64_put(out + 16, (uint64_t)meta->modified_us);
    qdb_be64_put(out + 24, meta->size);
    qdb_be64_put(out + 32, (uint64_t)meta->expiry_s);
}

int qdb_meta_decode(const uint8_t *buf, size_t len, qdb_meta *meta)
{
    if (len != QDB_META_WIRE)
        return QDB_E_MALFORMED;
    meta->version = qdb_be64_get(buf);
    meta->created_us = (int64_t)qdb_be64_get(buf + 8);
    meta->modified_us = (int64_t)qdb_be64_get(buf + 16);
    meta->size = qdb_be64_get(buf + 24);
    meta->expiry_s = (int64_t)qdb_be64_get(buf + 32);
    return QDB_OK;
}

/* ---- frame prefix ------------------------------------------------------------ */

/* The length prefix: *prefix_len bytes of varint announcing *body_len bytes. */
static int peek_prefix(const uint8_t *buf, size_t len, size_t *prefix_len, size_t *body_len)
{
    /* Read at most 4 bytes: a prefix that has not ended there announces at
     * least 2^28 bytes (or, if that varint turned out non-minimal, is
     * malformed).  Either way no frame; say so now rather than wait for
     * bytes a stream reader should not buffer. */
    uint64_t x;
    int k = qdb_varint_get(buf, MIN(len, 4), &x);
    if (k == 0)
        return len < 4 ? QDB_E_TRUNCATED : QDB_E_OVERSIZED;
    if (k < 0 || x == 0)
        return QDB_E_MALFORMED; /* non-minimal, or an empty frame */
    *prefix_len = (size_t)k;
    *body_len = (size_t)x;
    return QDB_OK;
}

int qdb_frame_peek(const uint8_t *buf, size_t len, size_t *frame_len)
{
    size_t prefix, body;
    TRY(peek_prefix(buf, len, &prefix, &body));
    *frame_len = prefix + body;
    return QDB_OK;
}

/* ---- encoder ------------------------------------------------------------------
 * A writer with p == NULL only counts; otherwise it writes at p.  The count
 * saturates so an absurd content_len cannot wrap it below QDB_FRAME_MAX. */

typedef struct writer {
    uint8_t *p;
    size_t n;
} writer;

static void w_bytes(writer *w, const void *src, size_t len)
{
    if (w->p != NULL && len > 0)
        memcpy(w->p + w->n, src, len);
    w->n = len > SIZE_MAX - w->n ? SIZE_MAX : w->n + len;
}

static void w_u8(writer *w, unsigned v)
{
    uint8_t b = (uint8_t)v;
    w_bytes(w, &b, 1);
}

static void w_varint(writer *w, uint64_t v)
{
    uint8_t tmp[10];
    w_bytes(w, tmp, qdb_varint_put(tmp, v));
}

static void w_addr(writer *w, qdb_addr a)
{
    uint8_t tmp[QDB_ADDR_WIRE];
    qdb_be32_put(tmp, a.ip);
    qdb_be16_put(tmp + 4, a.port);
    w_bytes(w, tmp, sizeof tmp);
}

static void w_peer(writer *w, const qdb_peer *p)
{
    uint8_t tmp[QDB_PEER_WIRE];
    qdb_peer_encode(p, tmp);
    w_bytes(w, tmp, sizeof tmp);
}

/* FIND's exclusion list: absent when empty, so a FIND without one keeps its
 * old bytes and every message still has exactly one encoding. */
static int w_exclude(writer *w, const qdb_msg *m)
{
    if (m->n_exclude > QDB_FIND_EXCLUDE_MAX)
        return QDB_E_INVALID_ARGUMENT;
    if (m->n_exclude == 0)
        return QDB_OK;
    w_u8(w, m->n_exclude);
    for (unsigned k = 0; k < m->n_exclude; k++)
        w_addr(w, m->exclude[k]);
    return QDB_OK;
}

static int check_bytes(const uint8_t *p, size_t len)
{
    return p == NULL && len > 0 ? QDB_E_INVALID_ARGUMENT : QDB_OK;
}

static int w_seq(writer *w, uint64_t seq)
{
    if (seq > UINT32_MAX)
        return QDB_E_INVALID_ARGUMENT;
    w_varint(w, seq);
    return QDB_OK;
}

static int w_alias(writer *w, const qdb_msg *m)
{
    if (m->alias_len > QDB_MAX_ALIAS)
        return QDB_E_ALIAS_TOO_LONG;
    TRY(check_bytes(m->alias, m->alias_len));
    w_varint(w, m->alias_len);
    w_bytes(w, m->alias, m->alias_len);
    return QDB_OK;
}

/* Every flag bit the type defines: more is malformed. */
static unsigned flags_max(int type)
{
    if (type == QDB_MSG_STATUS_REPLY)
        return QDB_STATUS_F_STABLE | QDB_STATUS_F_PRED | QDB_STATUS_F_SUCC;
    if (type == QDB_MSG_STABILIZE_REPLY)
        return QDB_STABILIZE_HAS_PRED | QDB_STABILIZE_PURGE_ALL | QDB_STABILIZE_STOP |
               QDB_STABILIZE_NOTIFIED | QDB_STABILIZE_LEASES;
    return type == QDB_MSG_NOTIFY     ? QDB_NOTIFY_JOINING | QDB_NOTIFY_HINT | QDB_NOTIFY_STORED
         : type == QDB_MSG_HANDOVER ? QDB_HANDOVER_LAST | QDB_HANDOVER_REPLICA
                                    : 1u;
}

/* STATUS, STATUS_REPLY: what the JSON describes, one byte. */
static int w_what(writer *w, const qdb_msg *m)
{
    if (m->what > QDB_STATUS_WHAT_MAX)
        return QDB_E_INVALID_ARGUMENT;
    w_u8(w, m->what);
    return QDB_OK;
}

static int w_flag(writer *w, const qdb_msg *m)
{
    if (m->flags > flags_max(m->type))
        return QDB_E_INVALID_ARGUMENT; /* undefined bits */
    w_u8(w, m->flags);
    return QDB_OK;
}

static int w_peers(writer *w, const qdb_msg *m)
{
    if (m->n_peers > QDB_SUCCLIST_MAX)
        return QDB_E_INVALID_ARGUMENT;
    w_u8(w, m->n_peers);
    for (unsigned k = 0; k < m->n_peers; k++)
        w_peer(w, &m->peers[k]);
    return QDB_OK;
}

/* Count the records in a HANDOVER record area; false if it is not exactly
 * whole records. */
static bool count_records(const uint8_t *p, size_t len, uint64_t *n)
{
    size_t pos = 0;
    uint64_t count = 0;
    while (pos < len) {
        for (int field = 0; field < 2; field++) {
            uint64_t flen;
            int k = qdb_varint_get(p + pos, len - pos, &flen);
            if (k <= 0)
                return false;
            pos += (size_t)k;
            if (flen > len - pos)
                return false;
            pos += (size_t)flen;
        }
        count++;
    }
    *n = count;
    return true;
}

typedef struct records {
    const uint8_t *p;
    size_t len;
    size_t n;
} records;

/* STATUS_REPLY: the successor travels as peers[0] (n_peers 1) so that a
 * decoded reply re-encodes byte for byte. */
static int emit_status_reply(writer *w, const qdb_msg *m)
{
    bool succ = (m->flags & QDB_STATUS_F_SUCC) != 0;
    if (m->n_peers != (succ ? 1u : 0u) || m->content_len > QDB_STATUS_JSON_MAX)
        return QDB_E_INVALID_ARGUMENT;
    TRY(check_bytes(m->content, m->content_len));
    w_varint(w, m->rpc);
    TRY(w_what(w, m));
    TRY(w_flag(w, m));
    w_peer(w, &m->peer);
    if (m->flags & QDB_STATUS_F_PRED)
        w_peer(w, &m->pred);
    if (succ)
        w_peer(w, &m->peers[0]);
    w_varint(w, m->count);
    w_varint(w, m->content_len);
    w_bytes(w, m->content, m->content_len);
    return QDB_OK;
}

/* Tag and body of m, counted or written.  recs is used for HANDOVER only. */
/* A REPLY's fields after its tag byte. */
static int emit_reply(writer *w, uint64_t seq, int status, const uint8_t *content, size_t len)
{
    TRY(w_seq(w, seq));
    if (status < 0 || status > 255)
        return QDB_E_INVALID_ARGUMENT;
    w_u8(w, (unsigned)status);
    TRY(check_bytes(content, len));
    w_bytes(w, content, len);
    return QDB_OK;
}

static int emit_body(writer *w, const qdb_msg *m, const records *recs)
{
    if (m->type == QDB_MSG_EXT_ || m->type < 1 || m->type > QDB_MSG_TYPE_MAX_)
        return QDB_E_INVALID_ARGUMENT;
    if (m->type > QDB_MSG_EXT_) {
        w_u8(w, (QDB_PROTO_VERSION << 5) | QDB_MSG_EXT_);
        w_u8(w, (unsigned)m->type - 32);
    } else {
        w_u8(w, (QDB_PROTO_VERSION << 5) | (unsigned)m->type);
    }
    switch (m->type) {
    case QDB_MSG_HELLO: {
        uint8_t id[8];
        qdb_be64_put(id, m->seq);
        w_bytes(w, id, sizeof id);
        return QDB_OK;
    }
    case QDB_MSG_PUT:
    case QDB_MSG_UPDATE:
    case QDB_MSG_GET_UPDATE:
        TRY(w_seq(w, m->seq));
        TRY(w_alias(w, m));
        TRY(check_bytes(m->content, m->content_len));
        w_bytes(w, m->content, m->content_len);
        return QDB_OK;
    case QDB_MSG_GET:
    case QDB_MSG_REMOVE:
    case QDB_MSG_GET_REMOVE:
    case QDB_MSG_GET_META:
        TRY(w_seq(w, m->seq));
        return w_alias(w, m);
    case QDB_MSG_REMOVE_IF:
        TRY(w_seq(w, m->seq));
        TRY(w_alias(w, m));
        TRY(check_bytes(m->comparand, m->comparand_len));
        w_bytes(w, m->comparand, m->comparand_len);
        return QDB_OK;
    case QDB_MSG_EXPIRE:
    case QDB_MSG_PUT_EX:
    case QDB_MSG_UPDATE_EX: {
        TRY(w_seq(w, m->seq));
        TRY(w_alias(w, m));
        uint8_t e[8];
        qdb_be64_put(e, (uint64_t)m->expiry);
        w_bytes(w, e, sizeof e);
        if (m->type == QDB_MSG_EXPIRE)
            return QDB_OK;
        TRY(check_bytes(m->content, m->content_len));
        w_bytes(w, m->content, m->content_len);
        return QDB_OK;
    }
    case QDB_MSG_PREFIX:
        TRY(w_seq(w, m->seq));
        TRY(w_flag(w, m));
        w_varint(w, m->max);
        return w_alias(w, m);
    case QDB_MSG_CAS:
        TRY(w_seq(w, m->seq));
        TRY(w_alias(w, m));
        TRY(check_bytes(m->content, m->content_len));
        TRY(check_bytes(m->comparand, m->comparand_len));
        w_varint(w, m->content_len);
        w_bytes(w, m->content, m->content_len);
        w_bytes(w, m->comparand, m->comparand_len);
        return QDB_OK;
    case QDB_MSG_REMOVE_ALL:
        return w_seq(w, m->seq);
    case QDB_MSG_REPLY:
        return emit_reply(w, m->seq, m->status, m->content, m->content_len);
    case QDB_MSG_FIND:
        w_varint(w, m->rpc);
        w_bytes(w, m->target.b, QDB_ID_BYTES);
        return w_exclude(w, m);
    case QDB_MSG_FIND_REPLY:
    case QDB_MSG_NOTIFY:
        w_varint(w, m->rpc);
        TRY(w_flag(w, m));
        w_peer(w, &m->peer);
        return QDB_OK;
    case QDB_MSG_STABILIZE:
        w_varint(w, m->rpc);
        w_peer(w, &m->peer);
        return QDB_OK;
    case QDB_MSG_STABILIZE_REPLY:
        w_varint(w, m->rpc);
        TRY(w_flag(w, m));
        if (m->flags & QDB_STABILIZE_HAS_PRED)
            w_peer(w, &m->pred);
        TRY(w_peers(w, m));
        if (m->replication > QDB_REPLICATION_MAX ||
            ((m->flags & QDB_STABILIZE_LEASES) && m->replication < 3))
            return QDB_E_INVALID_ARGUMENT;
        if (m->replication > 1)
            w_u8(w, m->replication);
        if (m->flags & QDB_STABILIZE_LEASES)
            for (unsigned d = 0; d + 2 < m->replication; d++)
                w_varint(w, m->leases[d]);
        return QDB_OK;
    case QDB_MSG_PING:
    case QDB_MSG_PONG:
    case QDB_MSG_HANDOVER_ACK:
        w_varint(w, m->rpc);
        return QDB_OK;
    case QDB_MSG_HANDOVER:
        w_varint(w, m->rpc);
        TRY(w_flag(w, m));
        w_peer(w, &m->peer);
        w_varint(w, recs->n);
        w_bytes(w, recs->p, recs->len);
        return QDB_OK;
    case QDB_MSG_LEAVE:
        w_varint(w, m->rpc);
        w_peer(w, &m->peer);
        w_peer(w, &m->pred);
        TRY(w_peers(w, m));
        return m->flags ? w_flag(w, m) : QDB_OK; /* absent when 0: one encoding */
    case QDB_MSG_STATUS:
        w_varint(w, m->rpc);
        return w_what(w, m);
    case QDB_MSG_STATUS_REPLY:
        return emit_status_reply(w, m);
    case QDB_MSG_STOP:
        w_varint(w, m->rpc);
        return QDB_OK;
    case QDB_MSG_STOP_REPLY:
        w_varint(w, m->rpc);
        if (m->status < 0 || m->status > 255)
            return QDB_E_INVALID_ARGUMENT;
        w_u8(w, (unsigned)m->status);
        return QDB_OK;
    case QDB_MSG_FORGET:
        if (m->hops > 255)
            return QDB_E_INVALID_ARGUMENT;
        w_varint(w, m->rpc);
        w_bytes(w, m->target.b, QDB_ID_BYTES);
        w_u8(w, m->hops);
        return QDB_OK;
    case QDB_MSG_DIGEST:
        if (m->content_len == 0 || m->content_len > QDB_DIGEST_BUCKETS_MAX * 8 ||
            m->content_len % 8)
            return QDB_E_INVALID_ARGUMENT;
        TRY(check_bytes(m->content, m->content_len));
        w_varint(w, m->rpc);
        w_bytes(w, m->target.b, QDB_ID_BYTES);
        w_bytes(w, m->upto.b, QDB_ID_BYTES);
        w_bytes(w, m->content, m->content_len);
        return QDB_OK;
    case QDB_MSG_DIGEST_REPLY:
        if (m->content_len == 0 || m->content_len > QDB_DIGEST_BUCKETS_MAX / 8)
            return QDB_E_INVALID_ARGUMENT;
        TRY(check_bytes(m->content, m->content_len));
        w_varint(w, m->rpc);
        w_bytes(w, m->content, m->content_len);
        return QDB_OK;
    default:
        return QDB_E_INVALID_ARGUMENT;
    }
}

/* The frame's body size (the first pass over emit_body), or an error. */
static int encode_size(const qdb_msg *m, const records *recs, size_t *body)
{
    writer count = {NULL, 0};
    TRY(emit_body(&count, m, recs));
    if (count.n > QDB_FRAME_MAX)
        return QDB_E_OVERSIZED;
    *body = count.n;
    return QDB_OK;
}

/* The frame, length prefix and body, at dst: exactly
 * qdb_varint_len(body) + body bytes. */
static void encode_write(const qdb_msg *m, const records *recs, size_t body, uint8_t *dst)
{
    size_t k = qdb_varint_put(dst, body);
    writer w = {dst + k, 0};
    int rc = emit_body(&w, m, recs);
    g_assert(rc == QDB_OK && w.n == body);
}

static int encode(const qdb_msg *m, const records *recs, GByteArray *out)
{
    size_t body;
    TRY(encode_size(m, recs, &body));
    uint8_t prefix[10];
    size_t k = qdb_varint_put(prefix, body);
    size_t start = out->len;
    g_byte_array_set_size(out, (guint)(start + k + body));
    encode_write(m, recs, body, out->data + start);
    return QDB_OK;
}

/* A decoded HANDOVER's records, checked, as encode() takes them; none for
 * other types. */
static int msg_records(const qdb_msg *m, records *recs)
{
    *recs = (records){NULL, 0, 0};
    if (m->type == QDB_MSG_HANDOVER) {
        /* Re-framing a decoded HANDOVER: its record area must hold exactly
         * n_entries whole records. */
        uint64_t n;
        if (check_bytes(m->entries, m->entries_len) != QDB_OK ||
            !count_records(m->entries, m->entries_len, &n) || n != m->n_entries)
            return QDB_E_INVALID_ARGUMENT;
        *recs = (records){m->entries, m->entries_len, m->n_entries};
    }
    return QDB_OK;
}

int qdb_msg_encode(const qdb_msg *m, GByteArray *out)
{
    records recs;
    TRY(msg_records(m, &recs));
    return encode(m, &recs, out);
}

int qdb_msg_encode_buf(const qdb_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
    records recs;
    size_t body;
    uint8_t prefix[10];
    TRY(msg_records(m, &recs));
    TRY(encode_size(m, &recs, &body));
    size_t total = qdb_varint_put(prefix, body) + body;
    if (total > cap)
        return QDB_E_OVERSIZED;
    encode_write(m, &recs, body, buf);
    *len = total;
    return QDB_OK;
}

int qdb_reply_encode_buf(uint64_t seq, int status, const uint8_t *content, size_t content_len,
                         uint8_t *buf, size_t cap, size_t *len)
{
    writer count = {NULL, 1}; /* the tag byte */
    TRY(emit_reply(&count, seq, status, content, content_len));
    if (count.n > QDB_FRAME_MAX)
        return QDB_E_OVERSIZED;
    uint8_t prefix[10];
    size_t k = qdb_varint_put(prefix, count.n);
    if (k + count.n > cap)
        return QDB_E_OVERSIZED;
    memcpy(buf, prefix, k);
    writer w = {buf + k, 0};
    w_u8(&w, (QDB_PROTO_VERSION << 5) | QDB_MSG_REPLY);
    int rc = emit_reply(&w, seq, status, content, content_len);
    g_assert(rc == QDB_OK && w.n == count.n);
    *len = k + count.n;
    return QDB_OK;
}

/* ---- HANDOVER records ------------------------------------------------------------
 * The builder's array holds the records exactly as they go on the wire, so
 * framing is one copy.  clear() frees the array; add() recreates it, so a
 * builder can be cleared and reused, and a cleared builder holds no memory. */

void qdb_handover_builder_init(qdb_handover_builder *b)
{
    b->records = g_byte_array_new();
    b->n = 0;
}

void qdb_handover_builder_add(qdb_handover_builder *b, const uint8_t *key, size_t key_len,
                              const uint8_t *value, size_t value_len)
{
    if (b->records == NULL)
        b->records = g_byte_array_new();
    uint8_t tmp[10];
    g_byte_array_append(b->records, tmp, (guint)qdb_varint_put(tmp, key_len));
    if (key_len > 0)
        g_byte_array_append(b->records, key, (guint)key_len);
    g_byte_array_append(b->records, tmp, (guint)qdb_varint_put(tmp, value_len));
    if (value_len > 0)
        g_byte_array_append(b->records, value, (guint)value_len);
    b->n++;
}

void qdb_handover_builder_clear(qdb_handover_builder *b)
{
    if (b->records != NULL)
        g_byte_array_unref(b->records);
    b->records = NULL;
    b->n = 0;
}

int qdb_msg_encode_handover(const qdb_msg *m, const qdb_handover_builder *b, GByteArray *out)
{
    if (m->type != QDB_MSG_HANDOVER && m->type != 0)
        return QDB_E_INVALID_ARGUMENT;
    qdb_msg copy = *m;
    copy.type = QDB_MSG_HANDOVER;
    records recs = {NULL, 0, b->n};
    if (b->records != NULL) {
        recs.p = b->records->data;
        recs.len = b->records->len;
    }
    return encode(&copy, &recs, out);
}

int qdb_msg_entry_next(const qdb_msg *m, size_t *pos, const uint8_t **key, size_t *key_len,
                       const uint8_t **value, size_t *value_len)
{
    if (m->type != QDB_MSG_HANDOVER || *pos >= m->entries_len)
        return 0;
    /* decode() validated the records; the checks below only keep a caller
     * that passes a hand-made message from walking off the end. */
    const uint8_t *p = m->entries;
    size_t len = m->entries_len, at = *pos;
    const uint8_t *field[2];
    size_t flen[2];
    for (int f = 0; f < 2; f++) {
        uint64_t n;
        int k = qdb_varint_get(p + at, len - at, &n);
        if (k <= 0 || n > len - at - (size_t)k)
            return 0;
        at += (size_t)k;
        field[f] = p + at;
        flen[f] = (size_t)n;
        at += (size_t)n;
    }
    *key = field[0];
    *key_len = flen[0];
    *value = field[1];
    *value_len = flen[1];
    *pos = at;
    return 1;
}

/* ---- decoder ---------------------------------------------------------------------
 * A reader over the body.  Running out of bytes is TRUNCATED; a value out of
 * range is MALFORMED. */

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static int r_bytes(reader *r, size_t len, const uint8_t **out)
{
    if (len > r->left)
        return QDB_E_TRUNCATED;
    *out = r->p;
    r->p += len;
    r->left -= len;
    return QDB_OK;
}

static int r_u8(reader *r, unsigned *v)
{
    const uint8_t *p;
    TRY(r_bytes(r, 1, &p));
    *v = p[0];
    return QDB_OK;
}

static int r_varint(reader *r, uint64_t *v)
{
    int k = qdb_varint_get(r->p, r->left, v);
    if (k == 0)
        return QDB_E_TRUNCATED;
    if (k < 0)
        return QDB_E_MALFORMED;
    r->p += k;
    r->left -= (size_t)k;
    return QDB_OK;
}

static int r_seq(reader *r, uint64_t *seq)
{
    TRY(r_varint(r, seq));
    return *seq > UINT32_MAX ? QDB_E_MALFORMED : QDB_OK;
}

static int r_len_bytes(reader *r, uint64_t max, const uint8_t **p, size_t *len)
{
    uint64_t n;
    TRY(r_varint(r, &n));
    if (n > max)
        return QDB_E_MALFORMED;
    if (n > r->left)
        return QDB_E_TRUNCATED;
    *len = (size_t)n;
    return r_bytes(r, *len, p);
}

static int r_flag(reader *r, qdb_msg *m)
{
    TRY(r_u8(r, &m->flags));
    return m->flags > flags_max(m->type) ? QDB_E_MALFORMED : QDB_OK;
}

static int r_what(reader *r, qdb_msg *m)
{
    TRY(r_u8(r, &m->what));
    return m->what > QDB_STATUS_WHAT_MAX ? QDB_E_MALFORMED : QDB_OK;
}

static int r_addr(reader *r, qdb_addr *a)
{
    const uint8_t *p;
    TRY(r_bytes(r, QDB_ADDR_WIRE, &p));
    a->ip = qdb_be32_get(p);
    a->port = qdb_be16_get(p + 4);
    return QDB_OK;
}

static int r_peer(reader *r, qdb_peer *peer)
{
    const uint8_t *p;
    TRY(r_bytes(r, QDB_PEER_WIRE, &p));
    return qdb_peer_decode(p, QDB_PEER_WIRE, peer);
}

/* Optional: nothing left means no list; a list is 1..max addresses. */
static int r_exclude(reader *r, qdb_msg *m)
{
    if (r->left == 0)
        return QDB_OK;
    unsigned n;
    TRY(r_u8(r, &n));
    if (n == 0 || n > QDB_FIND_EXCLUDE_MAX)
        return QDB_E_MALFORMED;
    m->n_exclude = n;
    for (unsigned k = 0; k < n; k++)
        TRY(r_addr(r, &m->exclude[k]));
    return QDB_OK;
}

static int r_peers(reader *r, qdb_msg *m)
{
    unsigned n;
    TRY(r_u8(r, &n));
    if (n > QDB_SUCCLIST_MAX)
        return QDB_E_MALFORMED;
    m->n_peers = n;
    for (unsigned k = 0; k < n; k++)
        TRY(r_peer(r, &m->peers[k]));
    return QDB_OK;
}

static void r_rest(reader *r, const uint8_t **p, size_t *len)
{
    *p = r->p;
    *len = r->left;
    r->p += r->left;
    r->left = 0;
}

static int r_end(const reader *r)
{
    return r->left ? QDB_E_MALFORMED : QDB_OK;
}

static int decode_handover(reader *r, qdb_msg *m)
{
    TRY(r_varint(r, &m->rpc));
    TRY(r_flag(r, m));
    TRY(r_peer(r, &m->peer));
    uint64_t n;
    TRY(r_varint(r, &n));
    /* Walk every record now so entry_next can trust them.  Each record takes
     * at least two bytes, so a huge count ends in TRUNCATED after at most
     * len/2 steps. */
    m->entries = r->p;
    for (uint64_t k = 0; k < n; k++) {
        const uint8_t *p;
        size_t len;
        TRY(r_len_bytes(r, UINT64_MAX, &p, &len));
        TRY(r_len_bytes(r, UINT64_MAX, &p, &len));
    }
    TRY(r_end(r)); /* bytes beyond the declared records */
    m->n_entries = (size_t)n;
    m->entries_len = (size_t)(r->p - m->entries);
    return QDB_OK;
}

static int decode_body(reader *r, qdb_msg *m)
{
    switch (m->type) {
    case QDB_MSG_HELLO: {
        const uint8_t *p;
        TRY(r_bytes(r, 8, &p));
        m->seq = qdb_be64_get(p);
        return r_end(r);
    }
    case QDB_MSG_PUT:
    case QDB_MSG_UPDATE:
    case QDB_MSG_GET_UPDATE:
        TRY(r_seq(r, &m->seq));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        r_rest(r, &m->content, &m->content_len);
        return QDB_OK;
    case QDB_MSG_GET:
    case QDB_MSG_REMOVE:
    case QDB_MSG_GET_REMOVE:
    case QDB_MSG_GET_META:
        TRY(r_seq(r, &m->seq));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        return r_end(r);
    case QDB_MSG_REMOVE_IF:
        TRY(r_seq(r, &m->seq));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        r_rest(r, &m->comparand, &m->comparand_len);
        return QDB_OK;
    case QDB_MSG_EXPIRE:
    case QDB_MSG_PUT_EX:
    case QDB_MSG_UPDATE_EX: {
        const uint8_t *p;
        TRY(r_seq(r, &m->seq));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        TRY(r_bytes(r, 8, &p));
        m->expiry = (int64_t)qdb_be64_get(p);
        if (m->type == QDB_MSG_EXPIRE)
            return r_end(r);
        r_rest(r, &m->content, &m->content_len);
        return QDB_OK;
    }
    case QDB_MSG_PREFIX:
        TRY(r_seq(r, &m->seq));
        TRY(r_flag(r, m));
        TRY(r_varint(r, &m->max));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        return r_end(r);
    case QDB_MSG_CAS:
        TRY(r_seq(r, &m->seq));
        TRY(r_len_bytes(r, QDB_MAX_ALIAS, &m->alias, &m->alias_len));
        TRY(r_len_bytes(r, UINT64_MAX, &m->content, &m->content_len));
        r_rest(r, &m->comparand, &m->comparand_len);
        return QDB_OK;
    case QDB_MSG_REMOVE_ALL:
        TRY(r_seq(r, &m->seq));
        return r_end(r);
    case QDB_MSG_REPLY: {
        unsigned status;
        TRY(r_seq(r, &m->seq));
        /* Any byte is accepted: codes are only ever appended, and the
         * reader prints an unknown one as "unknown error". */
        TRY(r_u8(r, &status));
        m->status = (int)status;
        r_rest(r, &m->content, &m->content_len);
        return QDB_OK;
    }
    case QDB_MSG_FIND: {
        const uint8_t *p;
        TRY(r_varint(r, &m->rpc));
        TRY(r_bytes(r, QDB_ID_BYTES, &p));
        memcpy(m->target.b, p, QDB_ID_BYTES);
        TRY(r_exclude(r, m));
        return r_end(r);
    }
    case QDB_MSG_FIND_REPLY:
    case QDB_MSG_NOTIFY:
        TRY(r_varint(r, &m->rpc));
        TRY(r_flag(r, m));
        TRY(r_peer(r, &m->peer));
        return r_end(r);
    case QDB_MSG_STABILIZE:
        TRY(r_varint(r, &m->rpc));
        TRY(r_peer(r, &m->peer));
        return r_end(r);
    case QDB_MSG_STABILIZE_REPLY:
        TRY(r_varint(r, &m->rpc));
        TRY(r_flag(r, m));
        if (m->flags & QDB_STABILIZE_HAS_PRED)
            TRY(r_peer(r, &m->pred));
        TRY(r_peers(r, m));
        if (r->left || (m->flags & QDB_STABILIZE_LEASES)) {
            /* present only when not the default: 1 is malformed */
            TRY(r_u8(r, &m->replication));
            if (m->replication < 2 || m->replication > QDB_REPLICATION_MAX)
                return QDB_E_MALFORMED;
        }
        if (m->flags & QDB_STABILIZE_LEASES) {
            if (m->replication < 3)
                return QDB_E_MALFORMED;
            for (unsigned d = 0; d + 2 < m->replication; d++)
                TRY(r_varint(r, &m->leases[d]));
        }
        return r_end(r);
    case QDB_MSG_PING:
    case QDB_MSG_PONG:
    case QDB_MSG_HANDOVER_ACK:
        TRY(r_varint(r, &m->rpc));
        return r_end(r);
    case QDB_MSG_HANDOVER:
        return decode_handover(r, m);
    case QDB_MSG_LEAVE:
        TRY(r_varint(r, &m->rpc));
        TRY(r_peer(r, &m->peer));
        TRY(r_peer(r, &m->pred));
        TRY(r_peers(r, m));
        if (r->left) { /* present only when not 0: 0 is malformed */
            TRY(r_flag(r, m));
            if (!m->flags)
                return QDB_E_MALFORMED;
        }
        return r_end(r);
    case QDB_MSG_STATUS:
        TRY(r_varint(r, &m->rpc));
        TRY(r_what(r, m));
        return r_end(r);
    case QDB_MSG_STATUS_REPLY:
        TRY(r_varint(r, &m->rpc));
        TRY(r_what(r, m));
        TRY(r_flag(r, m));
        TRY(r_peer(r, &m->peer));
        if (m->flags & QDB_STATUS_F_PRED)
            TRY(r_peer(r, &m->pred));
        if (m->flags & QDB_STATUS_F_SUCC) {
            TRY(r_peer(r, &m->peers[0]));
            m->n_peers = 1;
        }
        TRY(r_varint(r, &m->count));
        TRY(r_len_bytes(r, QDB_STATUS_JSON_MAX, &m->content, &m->content_len));
        return r_end(r);
    case QDB_MSG_STOP:
        TRY(r_varint(r, &m->rpc));
        return r_end(r);
    case QDB_MSG_STOP_REPLY: {
        unsigned status;
        TRY(r_varint(r, &m->rpc));
        TRY(r_u8(r, &status)); /* any code: as REPLY */
        m->status = (int)status;
        return r_end(r);
    }
    case QDB_MSG_FORGET: {
        const uint8_t *p;
        TRY(r_varint(r, &m->rpc));
        TRY(r_bytes(r, QDB_ID_BYTES, &p));
        memcpy(m->target.b, p, QDB_ID_BYTES);
        TRY(r_u8(r, &m->hops));
        return r_end(r);
    }
    case QDB_MSG_DIGEST: {
        const uint8_t *p;
        TRY(r_varint(r, &m->rpc));
        TRY(r_bytes(r, QDB_ID_BYTES, &p));
        memcpy(m->target.b, p, QDB_ID_BYTES);
        TRY(r_bytes(r, QDB_ID_BYTES, &p));
        memcpy(m->upto.b, p, QDB_ID_BYTES);
        r_rest(r, &m->content, &m->content_len);
        if (m->content_len == 0)
            return QDB_E_TRUNCATED;
        if (m->content_len > QDB_DIGEST_BUCKETS_MAX * 8 || m->content_len % 8)
            return QDB_E_MALFORMED;
        return QDB_OK;
    }
    case QDB_MSG_DIGEST_REPLY:
        TRY(r_varint(r, &m->rpc));
        r_rest(r, &m->content, &m->content_len);
        if (m->content_len == 0)
            return QDB_E_TRUNCATED;
        return m->content_len > QDB_DIGEST_BUCKETS_MAX / 8 ? QDB_E_MALFORMED : QDB_OK;
    default:
        return QDB_E_BAD_TYPE;
    }
}

int qdb_request_peek(const uint8_t *buf, size_t len, int *type, uint64_t *seq,
                     uint64_t *alias_len)
{
    size_t prefix, body;
    TRY(peek_prefix(buf, len, &prefix, &body));
    reader r = {buf + prefix, MIN(len - prefix, body)};
    unsigned tag;
    TRY(r_u8(&r, &tag));
    if (tag >> 5 != QDB_PROTO_VERSION || !qdb_msg_is_request((int)(tag & 31)))
        return QDB_E_BAD_TYPE;
    *type = (int)(tag & 31);
    TRY(r_seq(&r, seq));
    *alias_len = 0;
    if (*type != QDB_MSG_REMOVE_ALL && *type != QDB_MSG_PREFIX &&
        qdb_varint_get(r.p, r.left, alias_len) <= 0)
        *alias_len = 0; /* unknown: not the reason it failed */
    return QDB_OK;
}

int qdb_request_alias(const uint8_t *buf, size_t len, const uint8_t **alias, size_t *alias_len)
{
    size_t prefix, body;
    TRY(peek_prefix(buf, len, &prefix, &body));
    reader r = {buf + prefix, MIN(len - prefix, body)};
    unsigned tag;
    uint64_t seq;
    TRY(r_u8(&r, &tag));
    int type = (int)(tag & 31);
    if (tag >> 5 != QDB_PROTO_VERSION || !qdb_msg_is_request(type) ||
        type == QDB_MSG_REMOVE_ALL || type == QDB_MSG_PREFIX)
        return QDB_E_BAD_TYPE;
    TRY(r_seq(&r, &seq));
    return r_len_bytes(&r, QDB_MAX_ALIAS, alias, alias_len);
}

int qdb_msg_decode(const uint8_t *buf, size_t len, qdb_msg *m)
{
    memset(m, 0, sizeof *m);
    size_t prefix, body;
    TRY(peek_prefix(buf, len, &prefix, &body));
    if (len - prefix < body)
        return QDB_E_TRUNCATED;
    if (len - prefix > body)
        return QDB_E_MALFORMED; /* bytes after the frame: not one frame */

    reader r = {buf + prefix, body};
    unsigned tag;
    TRY(r_u8(&r, &tag)); /* body >= 1: peek_prefix refuses empty frames */
    if (tag >> 5 != QDB_PROTO_VERSION)
        return QDB_E_BAD_VERSION;
    unsigned type = tag & 31;
    if (type == QDB_MSG_EXT_) {
        unsigned ext;
        TRY(r_u8(&r, &ext));
        type = 32 + ext;
    }
    if (type < 1 || type > QDB_MSG_TYPE_MAX_)
        return QDB_E_BAD_TYPE;
    m->type = (int)type;

    int rc = decode_body(&r, m);
    if (rc != QDB_OK)
        memset(m, 0, sizeof *m); /* no half-decoded message escapes */
    return rc;
}

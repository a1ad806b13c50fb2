/* SPDX-License-Identifier: BSD-2-Clause */
/* Wire codec: versioned binary frames, the same bytes over TCP and in the
 * simulator.
 *
 * Frame layout
 *   varint  length      bytes that follow (the tag and the body), 1..QDB_FRAME_MAX
 *   u8      tag         (version << 5) | type; version is QDB_PROTO_VERSION
 *   [u8     ext]        only when the tag's type is 31 (QDB_MSG_EXT_): the
 *                       type is 32 + ext (types 1..30 fit the tag itself)
 *   ...     body        depends on the type, below
 *
 * Varints are LEB128 (7 bits a byte, least significant group first, high bit
 * set on every byte but the last), at most 10 bytes, and must be minimal:
 * a varint with a redundant trailing zero group is malformed, so every
 * message has exactly one encoding.  Fixed-width integers are big-endian.
 * A peer is 38 bytes: ID (32), IPv4 address (4), port (2); an address alone
 * is the last 6.
 *
 * Framing budget of a client request (everything but alias and content):
 * length <= 4 bytes (frames are at most 256 MiB - 1), tag 1, sequence <= 5
 * (sequences are 32-bit), alias length 2 (aliases are at most 1024 bytes):
 * 12 bytes.  The client identifies itself once per node with HELLO.
 *
 * Bodies (seq, rpc: varint; alias: varint length + bytes; "rest": every byte
 * up to the end of the frame)
 *   HELLO        u64 client id
 *   PUT UPDATE GET_UPDATE            seq, alias, content = rest
 *   GET REMOVE                       seq, alias
 *   CAS          seq, alias, varint new length, new content, comparand = rest
 *   REMOVE_ALL   seq
 *   GET_REMOVE GET_META              seq, alias
 *   REMOVE_IF    seq, alias, comparand = rest
 *   EXPIRE       seq, alias, i64 expiry (absolute UTC seconds; 0: never)
 *   PUT_EX UPDATE_EX                 seq, alias, i64 expiry, content = rest
 *                (PUT and UPDATE with an expiry; without one the client
 *                sends PUT and UPDATE, whose bytes never change)
 *   PREFIX       seq, u8 flags (bit 0: count only), varint max, prefix
 *                (an alias field, 0..1024 bytes): the aliases this node owns
 *                that start with prefix
 *   REPLY        seq, u8 status, payload = rest
 *                  HELLO reply: u64 node incarnation
 *                  GET, GET_UPDATE, GET_REMOVE, CAS and REMOVE_IF
 *                  (unmatched): content
 *                  GET_META: the entry's metadata (QDB_META_WIRE bytes,
 *                  qdb_meta_encode)
 *                  PREFIX: varint n, then (not count only) n aliases as
 *                  (varint length, bytes), sorted bytewise; TOO_MANY when
 *                  more than max match
 *                  WRONG_NODE: a peer (the best hint of the owner)
 *   FIND         rpc, ID, [u8 n, n addresses] who owns (or precedes) this ID?
 *                the optional list (1..QDB_FIND_EXCLUDE_MAX addresses of 6
 *                bytes; absent, not empty, when there is none) names nodes
 *                the asker found dead: the answer must not name them, and
 *                the node checks them (a lookup routing around failures,
 *                Chord ToN 2003 Sec. IV-E).  At most 1 + 16 x 6 = 97 bytes
 *                more than a plain FIND.
 *   FIND_REPLY   rpc, u8 done, peer           done: peer is the ID's successor;
 *                                             else peer is the next hop
 *   STABILIZE    rpc, peer (the asker)
 *   STABILIZE_REPLY rpc, u8 flags (bit 0: has predecessor; bit 1: the hive
 *                enables REMOVE_ALL; bit 2: the hive enables STOP; bit 3: the
 *                asker need not NOTIFY), [peer pred],
 *                u8 n, n peers (successor list), [u8 replication],
 *                [K - 2 varints: with bit 4, the sender's leases (node/watch.c,
 *                "Lease"), microseconds left at depths 1 .. K - 2; K >= 3]
 *                the hive-wide settings a joining node adopts: the
 *                replication factor K, 2..QDB_REPLICATION_MAX, absent for
 *                the default 1 (so a K = 1 hive sends the bytes it always
 *                did, and every message still has one encoding)
 *   NOTIFY       rpc, u8 flags (bit 0: joining; bit 1: hint only -- "your
 *                successor's neighbourhood changed, stabilize now"), peer
 *   PING PONG    rpc
 *   HANDOVER     rpc, u8 flags (bit 0: last; bit 1: replica copies), peer (the sender), varint n,
 *                n x (varint key length, key, varint value length, value)
 *   HANDOVER_ACK rpc
 *   LEAVE        rpc, peer (the leaver), peer (its predecessor or null),
 *                u8 n, n peers (its successor list), [u8 flags] (bit 0:
 *                its storage failed, its entries were not handed over;
 *                absent when 0, so 0 is malformed)
 *   STATUS       rpc, u8 what (QDB_STATUS_NODE, _CONFIG or _TOPOLOGY): an
 *                operator asks a node about itself (node/status.h)
 *   STATUS_REPLY rpc, u8 what, u8 flags (QDB_STATUS_F_*), peer self,
 *                [peer predecessor] [peer successor] (when their flag is set),
 *                varint entries held, varint json length (at most
 *                QDB_STATUS_JSON_MAX), that many bytes of compact JSON.  The
 *                peers and the count let a client walk the ring without
 *                parsing JSON.
 *   STOP         rpc                          leave the ring gracefully
 *   STOP_REPLY   rpc, u8 status               QDB_OK (leaving) or QDB_E_REFUSED;
 *                also the answer to an operator's FORGET
 *   FORGET       rpc, ID, u8 hops             the node with this ID is gone for good
 *                (node/forget.c): an operator sends it with hops 0 and gets a
 *                STOP_REPLY; nodes pass it on towards the ID's successor with
 *                hops + 1 and expect no answer
 *   DIGEST       rpc, ID lo, ID hi, digests = rest (n x u64, 1 <= n <= 1024)
 *                an owner's records in the arc (lo, hi], summed per bucket
 *                (node/replica.c): which buckets differ at the replica?
 *   DIGEST_REPLY rpc, bitmap = rest (1..128 bytes): bit b (byte b / 8, bit
 *                b % 8) set: bucket b differs
 *                A DIGEST whose hi is the receiver's own ID, from a node that
 *                is not its successor, offers stray copies (node/stray.h, at
 *                most 512 buckets): a 128-byte bitmap then refuses the offer.
 *
 * Decoding never reads outside the given bytes and rejects malformed,
 * truncated, oversized and wrong-version frames with a precise code.
 */
#ifndef QDB_CODEC_H
#define QDB_CODEC_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "types.h"

#define QDB_PROTO_VERSION 1
#define QDB_FRAME_MAX ((size_t)(1u << 28) - 1) /* 256 MiB - 1: length fits 4 varint bytes */
#define QDB_SUCCLIST_MAX 32
#define QDB_PEER_WIRE 38
#define QDB_ADDR_WIRE 6
#define QDB_FIND_EXCLUDE_MAX 16
/* The u8 flags of the types that carry one (see the bodies above). */
#define QDB_FIND_DONE 1u          /* FIND_REPLY: peer is the ID's successor */
#define QDB_STABILIZE_HAS_PRED 1u /* STABILIZE_REPLY: pred follows */
#define QDB_STABILIZE_PURGE_ALL 2u /* STABILIZE_REPLY: the hive enables REMOVE_ALL (hive.c) */
#define QDB_STABILIZE_STOP 4u     /* STABILIZE_REPLY: the hive enables STOP (hive.c) */
#define QDB_STABILIZE_NOTIFIED 8u /* STABILIZE_REPLY: the asker is our predecessor, and its
                                   * NOTIFY would change nothing here (ring.c, notify_moot) */
#define QDB_STABILIZE_LEASES 16u  /* STABILIZE_REPLY: the sender's leases follow (watch.c) */
#define QDB_NOTIFY_JOINING 1u     /* NOTIFY: the sender waits for its hand-over */
#define QDB_NOTIFY_HINT 2u        /* NOTIFY: only "stabilize now" */
#define QDB_NOTIFY_STORED 4u      /* NOTIFY: joining with its old store (stray.h) */
#define QDB_HANDOVER_LAST 1u      /* HANDOVER: the sender's last batch */
#define QDB_HANDOVER_REPLICA 2u   /* HANDOVER: copies for a replica (replica.c), no range moves */
#define QDB_PREFIX_COUNT 1u       /* PREFIX: the number only, no aliases */
#define QDB_LEAVE_FAILED 1u       /* LEAVE: storage failed, nothing handed over */
/* The latest expiry accepted anywhere (API, wire, record): 9999-12-31
 * 23:59:59 UTC, in seconds.  Beyond it (or negative) is a bad expiry. */
#define QDB_EXPIRY_MAX INT64_C(253402300799)
/* The largest max a PREFIX may ask for (more: QDB_E_INVALID_ARGUMENT). */
#define QDB_PREFIX_MAX 1000000u
/* The most buckets a DIGEST sums (DIGEST_REPLY: a bitmap of as many bits). */
#define QDB_DIGEST_BUCKETS_MAX 1024u

/* STATUS: what the JSON of the reply describes. */
#define QDB_STATUS_NODE 0u     /* everything: node_status */
#define QDB_STATUS_CONFIG 1u   /* node_config */
#define QDB_STATUS_TOPOLOGY 2u /* node_topology */
#define QDB_STATUS_WHAT_MAX 2u
/* STATUS_REPLY flags */
#define QDB_STATUS_F_STABLE 1u
#define QDB_STATUS_F_PRED 2u
#define QDB_STATUS_F_SUCC 4u
/* The JSON of a STATUS_REPLY: a node's status is a few kilobytes (at most
 * 32 successors and 64 fingers of ~110 bytes each, and the counters). */
#define QDB_STATUS_JSON_MAX ((size_t)64 << 10)

typedef enum qdb_msg_type {
    QDB_MSG_HELLO = 1,
    QDB_MSG_PUT = 2,
    QDB_MSG_GET = 3,
    QDB_MSG_UPDATE = 4,
    QDB_MSG_REMOVE = 5,
    QDB_MSG_CAS = 6,
    QDB_MSG_GET_UPDATE = 7,
    QDB_MSG_REMOVE_ALL = 8,
    QDB_MSG_REPLY = 9,
    QDB_MSG_FIND = 10,
    QDB_MSG_FIND_REPLY = 11,
    QDB_MSG_STABILIZE = 12,
    QDB_MSG_STABILIZE_REPLY = 13,
    QDB_MSG_NOTIFY = 14,
    QDB_MSG_PING = 15,
    QDB_MSG_PONG = 16,
    QDB_MSG_HANDOVER = 17,
    QDB_MSG_HANDOVER_ACK = 18,
    QDB_MSG_LEAVE = 19,
    QDB_MSG_STATUS = 20,
    QDB_MSG_STATUS_REPLY = 21,
    QDB_MSG_STOP = 22,
    QDB_MSG_STOP_REPLY = 23,
    QDB_MSG_GET_REMOVE = 24,
    QDB_MSG_REMOVE_IF = 25,
    QDB_MSG_GET_META = 26,
    QDB_MSG_EXPIRE = 27,
    QDB_MSG_PUT_EX = 28,
    QDB_MSG_UPDATE_EX = 29,
    QDB_MSG_PREFIX = 30,
    QDB_MSG_EXT_ = 31, /* not a type: the escape to types 32.. (an ext byte follows) */
    QDB_MSG_FORGET = 32,
    QDB_MSG_DIGEST = 33,
    QDB_MSG_DIGEST_REPLY = 34,
    QDB_MSG_TYPE_MAX_ = 34
} qdb_msg_type;

const char *qdb_msg_type_name(int type);
/* True for the types a client sends to ask for an entry operation. */
int qdb_msg_is_request(int type);
/* True for the requests that only read (never in the dedup table). */
int qdb_msg_is_read(int type);

/* A decoded message.  Byte fields point into the decoded frame (no copies):
 * they live as long as the frame's buffer.  Fields not used by a type are
 * zero.  For encoding, fill the fields the type uses. */
typedef struct qdb_msg {
    int type;
    uint64_t seq;        /* client requests and REPLY; also HELLO's client id */
    uint64_t rpc;        /* node-to-node and FIND messages */
    int status;          /* REPLY, STOP_REPLY: a qdb_error_t */
    const uint8_t *alias;
    size_t alias_len;
    const uint8_t *content;   /* PUT/UPDATE/GET_UPDATE content, CAS new, REPLY payload,
                               * STATUS_REPLY JSON, DIGEST digests, DIGEST_REPLY bitmap */
    size_t content_len;
    const uint8_t *comparand; /* CAS, REMOVE_IF */
    size_t comparand_len;
    int64_t expiry;      /* EXPIRE, PUT_EX, UPDATE_EX: any 64 bits; nodes check the range */
    uint64_t max;        /* PREFIX */
    qdb_id target;       /* FIND; FORGET: the node gone; DIGEST: lo */
    qdb_id upto;         /* DIGEST: hi -- the arc is (target, upto] */
    unsigned flags;      /* FIND_REPLY done, STABILIZE_REPLY has-pred, NOTIFY joining, HANDOVER
                          * last, STATUS_REPLY QDB_STATUS_F_*, PREFIX count only */
    unsigned what;       /* STATUS, STATUS_REPLY: QDB_STATUS_NODE ... */
    uint64_t count;      /* STATUS_REPLY: entries held */
    qdb_peer peer;       /* FIND_REPLY, STABILIZE (asker), NOTIFY, HANDOVER, LEAVE: the subject;
                          * STATUS_REPLY: the node itself */
    qdb_peer pred;       /* STABILIZE_REPLY, LEAVE, STATUS_REPLY */
    unsigned n_peers;    /* STABILIZE_REPLY, LEAVE; STATUS_REPLY: 1 with the successor */
    qdb_peer peers[QDB_SUCCLIST_MAX];
    unsigned replication; /* STABILIZE_REPLY: the hive's K; 0 and 1 both mean 1 (absent) */
    /* STABILIZE_REPLY with QDB_STABILIZE_LEASES: leases[d - 1] is how long
     * the sender still holds its lease of depth d, d = 1 .. replication - 2 */
    uint64_t leases[QDB_REPLICATION_MAX - 2];
    unsigned hops;       /* FORGET: nodes it passed through */
    unsigned n_exclude;  /* FIND: nodes the asker found dead */
    qdb_addr exclude[QDB_FIND_EXCLUDE_MAX];
    /* HANDOVER: n_entries records, validated, walked with qdb_msg_entry_next() */
    size_t n_entries;
    const uint8_t *entries;
    size_t entries_len;
} qdb_msg;

/* Frame a message: appends the whole frame to out.  Returns QDB_OK, or
 * QDB_E_INVALID_ARGUMENT / QDB_E_ALIAS_TOO_LONG / QDB_E_OVERSIZED without
 * appending anything. */
int qdb_msg_encode(const qdb_msg *m, GByteArray *out);
/* The same into buf: on QDB_OK the frame is buf[0 .. *len).  A frame longer
 * than cap is QDB_E_OVERSIZED, as one above QDB_FRAME_MAX is (the caller may
 * then frame it into a GByteArray).  For the hot path: no allocation, no
 * heap buffer to miss in the cache. */
int qdb_msg_encode_buf(const qdb_msg *m, uint8_t *buf, size_t cap, size_t *len);
/* The same for a REPLY, from its fields alone: the bytes qdb_msg_encode_buf()
 * gives for {.type = QDB_MSG_REPLY, .seq, .status, .content}, without a
 * qdb_msg to fill (zeroing its 2 KB, peers and all, was 5% of a node's CPU
 * under make bench's writes). */
int qdb_reply_encode_buf(uint64_t seq, int status, const uint8_t *content, size_t content_len,
                         uint8_t *buf, size_t cap, size_t *len);

/* HANDOVER records are appended to a builder, then framed. */
typedef struct qdb_handover_builder {
    GByteArray *records;
    size_t n;
} qdb_handover_builder;
void qdb_handover_builder_init(qdb_handover_builder *b);
void qdb_handover_builder_add(qdb_handover_builder *b, const uint8_t *key, size_t key_len,
                              const uint8_t *value, size_t value_len);
void qdb_handover_builder_clear(qdb_handover_builder *b);
/* Frame a HANDOVER with the builder's records (m->entries is ignored). */
int qdb_msg_encode_handover(const qdb_msg *m, const qdb_handover_builder *b, GByteArray *out);

/* Walk a decoded HANDOVER's records: *pos starts at 0.  Returns 1 and sets
 * the record, or 0 at the end.  Only valid on a message qdb_msg_decode()
 * accepted (it validated every record). */
int qdb_msg_entry_next(const qdb_msg *m, size_t *pos, const uint8_t **key, size_t *key_len,
                       const uint8_t **value, size_t *value_len);

/* How long is the frame at the start of buf?  QDB_OK and *frame_len (all its
 * bytes, length prefix included) when the length prefix is complete;
 * QDB_E_TRUNCATED when more bytes are needed to know; QDB_E_OVERSIZED or
 * QDB_E_MALFORMED when the prefix is unacceptable.  Used by stream readers to
 * cut frames out of a TCP byte stream. */
int qdb_frame_peek(const uint8_t *buf, size_t len, size_t *frame_len);

/* The start of a client request that will not be decoded (malformed, or a
 * frame too large to take): its type, sequence and declared alias length (0
 * when absent or unreadable), so that the node can answer it with a clear
 * error rather than leave the client to its timeout.  buf holds the frame's
 * first len bytes (the rest may be missing).  QDB_OK, or an error when the
 * bytes do not start a request of this protocol version. */
int qdb_request_peek(const uint8_t *buf, size_t len, int *type, uint64_t *seq,
                     uint64_t *alias_len);

/* The alias of an entry request frame (buf, len: the whole frame), read
 * without decoding the rest: *alias points into buf.  QDB_OK, or an error
 * when the frame is not an entry request with an alias (REMOVE_ALL and
 * PREFIX carry none).  For hints only (qdb_inbound.ahead): the frame may
 * still fail qdb_msg_decode(). */
int qdb_request_alias(const uint8_t *buf, size_t len, const uint8_t **alias, size_t *alias_len);

/* Decode exactly one whole frame (len must be its full length).  QDB_OK, or
 * QDB_E_TRUNCATED, QDB_E_OVERSIZED, QDB_E_BAD_VERSION, QDB_E_BAD_TYPE,
 * QDB_E_MALFORMED (including trailing bytes after a fixed-size body). */
int qdb_msg_decode(const uint8_t *buf, size_t len, qdb_msg *m);

/* A peer as 38 bytes (ID, IPv4, port): the payload of a WRONG_NODE reply. */
void qdb_peer_encode(const qdb_peer *p, uint8_t out[QDB_PEER_WIRE]);
/* QDB_OK, or QDB_E_MALFORMED when len != QDB_PEER_WIRE. */
int qdb_peer_decode(const uint8_t *buf, size_t len, qdb_peer *p);

/* An entry's metadata in a GET_META reply: u64 version, i64 created (wall
 * microseconds), i64 modified, u64 size, i64 expiry (UTC seconds, 0: never). */
#define QDB_META_WIRE 40
typedef struct qdb_meta {
    uint64_t version;
    int64_t created_us, modified_us;
    uint64_t size;
    int64_t expiry_s;
} qdb_meta;
void qdb_meta_encode(const qdb_meta *meta, uint8_t out[QDB_META_WIRE]);
/* QDB_OK, or QDB_E_MALFORMED when len != QDB_META_WIRE. */
int qdb_meta_decode(const uint8_t *buf, size_t len, qdb_meta *meta);

/* Low-level pieces, exposed for tests and for the storage record format. */
size_t qdb_varint_put(uint8_t out[10], uint64_t v);
/* Returns bytes consumed, 0 when truncated, -1 when malformed/non-minimal. */
int qdb_varint_get(const uint8_t *buf, size_t len, uint64_t *v);

#endif

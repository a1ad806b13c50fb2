/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "client": the client core (client/core.c, under libqdb and
 * the simulator's clients) fed hostile answers -- what it decodes out of
 * REPLY payloads (content, a WRONG_NODE hint, PREFIX lists and counts,
 * metadata), FIND_REPLY hops and PONGs.
 *
 * Input: byte 0 picks the operation (below), then frames, cut from the rest
 * with qdb_frame_peek() until one does not fit.  Each frame is delivered
 * from the address of the last frame the core sent.  A frame that decodes
 * has its seq or rpc set to the one of that last frame first (unless bit 7
 * of byte 0 is set), so the answer matches what the core waits for and the
 * fuzzer explores its body, not the numbering.  After each frame, time
 * moves on by 0.5 s and the core's deadline runs (timeouts and retries).
 * Property: the operation completes at most once; nothing read outside the
 * frames; the core is freed with anything still pending. */
#include "config.h"

#include <string.h>

#include "client/core.h"
#include "codec.h"
#include "fuzz.h"

typedef struct harness {
    qdb_clock clock;
    qdb_transport transport;
    qdb_random random;
    qdb_time_us now;
    uint64_t draws;
    qdb_addr last_dst; /* where the last frame went, and its numbers */
    uint64_t last_seq, last_rpc;
    unsigned done;
} harness;

static qdb_time_us h_now(qdb_clock *c)
{
    return ((harness *)c->data)->now;
}

static void h_arm(qdb_clock *c, qdb_time_us deadline)
{
}

static int64_t h_wall(qdb_clock *c)
{
    return INT64_C(1700000000000000) + (int64_t)((harness *)c->data)->now;
}

static int h_send(qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len)
{
    harness *h = t->data;
    qdb_msg m;
    fuzz_assert(qdb_msg_decode(frame, len, &m) == QDB_OK); /* the core sends only good frames */
    h->last_dst = dst;
    h->last_seq = m.seq;
    h->last_rpc = m.rpc;
    return QDB_OK;
}

static uint64_t h_next(qdb_random *r)
{
    harness *h = r->data;
    return UINT64_C(0x9e3779b97f4a7c15) * ++h->draws;
}

static void on_done(void *arg, const qdb_client_result *r)
{
    harness *h = arg;
    h->done++;
    fuzz_assert(r->content_len == 0 || r->content != NULL);
}

/* The operation of byte 0 (bits 0-3). */
static void submit(qdb_client_core *c, harness *h, unsigned pick)
{
    static const uint8_t alias[] = "entry";
    qdb_client_request r = {.alias = alias, .alias_len = 5};
    switch (pick % 10) {
    case 0: r.op = QDB_MSG_GET; break;
    case 1: r.op = QDB_MSG_PUT; r.content = alias; r.content_len = 5; break;
    case 2: r.op = QDB_MSG_CAS; r.content = alias; r.content_len = 5;
            r.comparand = alias; r.comparand_len = 2; break;
    case 3: r.op = QDB_MSG_REMOVE_ALL; r.alias = NULL; r.alias_len = 0; break;
    case 4: r.op = QDB_MSG_PREFIX; r.alias_len = 2; r.max = 10; break;
    case 5: r.op = QDB_MSG_PREFIX; r.alias_len = 0; r.flags = QDB_PREFIX_COUNT; break;
    case 6: r.op = QDB_MSG_GET_META; break;
    case 7: r.op = QDB_MSG_UPDATE; r.content = alias; r.content_len = 5; r.expiry = 1800000000; break;
    case 8: r.op = QDB_MSG_GET_UPDATE; r.content = alias; r.content_len = 1; break;
    default: {
        qdb_id target;
        memset(&target, 0x5a, sizeof target);
        fuzz_assert(qdb_client_core_lookup(c, &target, 1, on_done, h, NULL) == QDB_OK);
        return;
    }
    }
    fuzz_assert(qdb_client_core_submit_request(c, &r, on_done, h, NULL) == QDB_OK);
}

/* The frame with the numbers of the last one sent, in out; false when it
 * does not decode (then it is delivered as it came). */
static bool renumber(const harness *h, const uint8_t *f, size_t len, GByteArray *out)
{
    qdb_msg m;
    if (qdb_msg_decode(f, len, &m) != QDB_OK)
        return false;
    m.seq = h->last_seq;
    m.rpc = h->last_rpc;
    if (m.type == QDB_MSG_HANDOVER)
        return false; /* never an answer to a client */
    return qdb_msg_encode(&m, out) == QDB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    harness h = {.now = 1000000};
    h.clock = (qdb_clock){.version = QDB_SEAM_VERSION, .data = &h, .now = h_now, .arm = h_arm,
                          .wall = h_wall};
    h.transport = (qdb_transport){.version = QDB_SEAM_VERSION, .data = &h, .send = h_send};
    h.random = (qdb_random){.version = QDB_SEAM_VERSION, .data = &h, .next = h_next};
    qdb_client_config cfg;
    qdb_client_config_defaults(&cfg);
    cfg.bootstrap = (qdb_addr){.ip = 0x7f000001, .port = 2836};
    char err[QDB_ERRMSG_SIZE];
    qdb_client_core *c = qdb_client_core_new(&cfg, &h.clock, &h.transport, &h.random, err);
    fuzz_assert(c != NULL);
    submit(c, &h, data[0] & 15);
    bool raw = data[0] & 0x80;
    GByteArray *again = g_byte_array_new();
    size_t at = 1, flen;
    while (at < size && qdb_frame_peek(data + at, size - at, &flen) == QDB_OK &&
           flen <= size - at) {
        g_byte_array_set_size(again, 0);
        if (!raw && renumber(&h, data + at, flen, again))
            qdb_client_core_recv(c, h.last_dst, again->data, again->len);
        else
            qdb_client_core_recv(c, h.last_dst, data + at, flen);
        at += flen;
        h.now += 500000;
        qdb_client_core_tick(c);
        fuzz_assert(h.done <= 1);
    }
    g_byte_array_unref(again);
    qdb_client_core_free(c);
    return 0;
}

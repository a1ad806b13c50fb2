/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "conn": transport-real/conn.c itself -- the real read path
 * (conn_readable, conn_deliver) and its limits (max_frame, input_memory's
 * grants and waiters, the stall sweep, replies a peer does not take, close)
 * over up to three connections adopted from socketpairs (peers_adopt), each
 * fed a byte stream the input writes in pieces it chooses.
 *
 * Input:
 *   byte 0   bits 0-1: connections (1..3); bit 2: the owner echoes every
 *            frame back (replies pile up: out_full); bits 4-6: max_frame
 *   byte 1   bits 0-2: input_memory; bit 3: conn.c's ends are held (a second
 *            descriptor of each, as a process listing /proc/PID/fd holds
 *            one for a moment): closing one then ends neither the socket
 *            nor, by itself, its epoll registration
 *   then     operations, one byte each (the low 2 bits pick the connection,
 *            the high 4 the operation), with their arguments:
 *              0-7    write the next 1..256 bytes of the input (1 byte: count-1)
 *              8-9    write a run: 2 bytes count-1 (LE), 1 byte value -- so a
 *                     short input makes frames past LOOP_SMALL_FRAME; the
 *                     value's bit 7 is set, so a run is the body of a frame,
 *                     never thousands of 2-byte frames (a bad prefix at most)
 *              10     a sweep, one second later (stalled holders are closed)
 *              11     read back what conn.c wrote (its replies)
 *              12     shutdown(SHUT_WR): EOF
 *              13     close our end
 *              14-15  write the next 1..4 bytes (prefixes cut byte by byte)
 *            Each operation is followed by one turn of the loop.
 *
 * Properties:
 *  - every frame delivered is the next frame of its connection's stream, in
 *    order, byte for byte; frames over max_frame are never delivered, and
 *    without echo every reply read back is CONTENT_TOO_LARGE for one of them,
 *    in order, with the request's sequence number;
 *  - after each turn: granted <= input_memory, and is the sum of the open
 *    connections' grants; a connection that is read holds less than
 *    max_frame (only the start of one frame: nothing over the limit is
 *    buffered), less than its grant when it has one, and less than
 *    LOOP_SMALL_FRAME when it has none under input_memory; a waiter holds
 *    no grant; the waiters and the holders are queued once each; sessions
 *    counts the open connections;
 *  - once the input is spent and the loop settled, a connection still read
 *    has delivered every whole frame it was sent;
 *  - when our ends close, conn.c closes every connection by itself once
 *    the close reaches it (settle_closed), and sessions, granted, the
 *    holders and the waiters all return to zero. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "conn.h"
#include "fuzz.h"
#include "timers.h"

#define NCONN 3

typedef struct fconn {
    int fd;             /* our end of the socketpair, -1 once closed */
    int held;           /* a second descriptor of conn.c's end, or -1 */
    bool shut;          /* EOF sent */
    bool gone;          /* conn.c closed its end (ops.gone) */
    qdb_addr key;       /* the address conn.c knows it by */
    GByteArray *stream; /* every byte the socket took from us, in order */
    size_t cursor;      /* start of the next frame the model expects */
    size_t ocursor;     /* start of the next frame to match a reply against */
    GByteArray *back;   /* bytes conn.c wrote to us, not yet checked */
} fconn;

typedef struct world {
    loop_poller poller;
    loop_net net;
    loop_peers peers;
    fconn c[NCONN];
    unsigned n;
    bool echo;
    size_t max_frame;
    qdb_time_us now; /* for net_sweep */
} world;

static const size_t max_frames[8] = {0, 64, 300, 4096, 20000, 40000, 70000, 1 << 20};
static const size_t input_memories[8] = {0, 1, 20000, 40000, 70000, 100000, 150000, 1 << 20};

static fconn *by_key(world *w, qdb_addr key)
{
    for (unsigned i = 0; i < w->n; i++)
        if (qdb_addr_eq(w->c[i].key, key))
            return &w->c[i];
    fuzz_assert(!"a frame from an address never adopted");
    return NULL;
}

static bool oversized(const world *w, size_t flen)
{
    return w->max_frame && flen > w->max_frame;
}

/* ops.recv: the frame must be the next one of the stream not over max_frame. */
static void on_recv(void *core, qdb_addr src, const uint8_t *frame, size_t len)
{
    world *w = core;
    fconn *f = by_key(w, src);
    fuzz_assert(!f->gone);
    size_t flen;
    for (;;) {
        fuzz_assert(f->cursor < f->stream->len);
        int rc = qdb_frame_peek(f->stream->data + f->cursor, f->stream->len - f->cursor, &flen);
        fuzz_assert(rc == QDB_OK);
        fuzz_assert(flen <= f->stream->len - f->cursor); /* only whole frames */
        if (!oversized(w, flen))
            break;
        f->cursor += flen; /* dropped: the frame delivered comes after it */
    }
    fuzz_assert(len == flen);
    fuzz_assert(memcmp(frame, f->stream->data + f->cursor, len) == 0);
    f->cursor += flen;
    if (w->echo)
        fuzz_assert(peers_send(&w->peers, src, frame, len) == 0);
}

static void on_gone(void *core, qdb_addr src)
{
    world *w = core;
    fconn *f = by_key(w, src);
    fuzz_assert(!f->gone);
    f->gone = true;
}

static const qdb_inbound ops = {.recv = on_recv, .gone = on_gone};

/* Read back what conn.c wrote to f; without echo, each whole frame must be
 * the CONTENT_TOO_LARGE answer to the next oversized request that has one. */
static void read_back(world *w, fconn *f)
{
    if (f->fd < 0)
        return;
    uint8_t buf[65536];
    ssize_t r;
    while ((r = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        if (!w->echo)
            g_byte_array_append(f->back, buf, (guint)r);
    size_t at = 0, flen;
    while (at < f->back->len &&
           qdb_frame_peek(f->back->data + at, f->back->len - at, &flen) == QDB_OK &&
           flen <= f->back->len - at) {
        qdb_msg m;
        fuzz_assert(qdb_msg_decode(f->back->data + at, flen, &m) == QDB_OK);
        fuzz_assert(m.type == QDB_MSG_REPLY && m.status == QDB_E_CONTENT_TOO_LARGE);
        for (;;) { /* the oversized request it answers, from the stream */
            fuzz_assert(f->ocursor < f->stream->len);
            size_t olen, left = f->stream->len - f->ocursor;
            const uint8_t *o = f->stream->data + f->ocursor;
            fuzz_assert(qdb_frame_peek(o, left, &olen) == QDB_OK);
            f->ocursor += olen; /* maybe past what has come: the rest will */
            int type;
            uint64_t seq, alias_len;
            if (oversized(w, olen) && qdb_request_peek(o, left, &type, &seq, &alias_len) == QDB_OK &&
                seq == m.seq)
                break;
        }
        at += flen;
    }
    g_byte_array_remove_range(f->back, 0, (guint)at);
}

static void write_bytes(fconn *f, const uint8_t *b, size_t len)
{
    if (f->fd < 0 || f->shut || len == 0)
        return;
    ssize_t r = send(f->fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r > 0)
        g_byte_array_append(f->stream, b, (guint)r);
}

/* The loop's turn (loop.c's order), then the properties of every turn.
 * wait_ms: how long epoll may wait for an event (0: not at all). */
static void turn_wait(world *w, int wait_ms)
{
    poller_wait(&w->poller, wait_ms);
    net_flush(&w->net);
    net_notify(&w->net);
    net_free_closed(&w->net);
    const qdb_loop_limits *lim = &w->net.lim;
    size_t granted = 0;
    unsigned open = 0, waiters = 0, holders = 0;
    for (unsigned i = 0; i < w->n; i++) {
        peers_input_state st;
        if (!peers_input(&w->peers, w->c[i].key, &st)) {
            fuzz_assert(w->c[i].gone);
            continue;
        }
        fuzz_assert(!w->c[i].gone);
        open++;
        granted += st.grant;
        waiters += st.waiting;
        holders += st.grant > 0;
        fuzz_assert(!(st.waiting && st.grant));
        if (st.out_full)
            continue; /* its frames wait for its peer to read */
        if (lim->max_frame)
            fuzz_assert(st.held < lim->max_frame);
        if (st.grant)
            fuzz_assert(st.held < st.grant);
        else if (lim->input_memory && !st.waiting)
            fuzz_assert(st.held < LOOP_SMALL_FRAME);
    }
    fuzz_assert(granted == w->net.granted);
    fuzz_assert(!lim->input_memory ? granted == 0 : granted <= lim->input_memory);
    fuzz_assert(w->net.sessions == open);
    /* each waiter and each holder is queued once */
    fuzz_assert(w->net.waiting.length == waiters && w->net.holders.length == holders);
}

static void turn(world *w)
{
    turn_wait(w, 0);
}

/* Turns until nothing more is read or delivered. */
static void settle(world *w)
{
    for (int i = 0; i < 64; i++) {
        uint64_t in = w->net.stats.bytes_in, frames = w->net.stats.frames_in;
        unsigned open = w->net.sessions;
        turn(w);
        if (in == w->net.stats.bytes_in && frames == w->net.stats.frames_in &&
            open == w->net.sessions)
            return;
    }
}

/* How long conn.c is given to see our ends' close (settle_closed). */
#define CLOSE_WAIT_MS 5000

static bool all_gone(const world *w)
{
    for (unsigned i = 0; i < w->n; i++)
        if (!w->c[i].gone)
            return false;
    return true;
}

/* Our ends are closed: turns until conn.c has closed every connection.
 * close(2) ends a socket only when the last reference to its open file
 * goes, and another process may hold one for a moment: whatever lists
 * /proc/PID/fd (ls, lsof, ss -p) takes one on each descriptor it lists.
 * conn.c's end then sees neither EOF nor EPOLLHUP until that process lets
 * go, so a turn that finds nothing to do proves nothing here (settle()'s
 * test, which stopped once such a turn came and left the connection open,
 * was the one failure in 2.9 million executions).  Data, unlike the close,
 * is in the peer's socket when send() returns, so settle() holds before
 * the close.  Waits in epoll, for CLOSE_WAIT_MS at most: a connection conn.c
 * never closes is then caught by the checks that follow. */
static void settle_closed(world *w)
{
    settle(w);
    qdb_time_us deadline = loop_mono_now() + (qdb_time_us)CLOSE_WAIT_MS * 1000;
    while (!all_gone(w)) {
        qdb_time_us now = loop_mono_now();
        if (now >= deadline)
            break;
        turn_wait(w, net_busy(&w->net) ? 0 : (int)((deadline - now + 999) / 1000));
    }
}

/* A connection that is read has delivered every whole frame it was sent. */
static void check_drained(world *w, fconn *f)
{
    peers_input_state st;
    if (!peers_input(&w->peers, f->key, &st) || st.waiting || st.out_full)
        return;
    size_t at = f->cursor, flen;
    while (at < f->stream->len &&
           qdb_frame_peek(f->stream->data + at, f->stream->len - at, &flen) == QDB_OK &&
           flen <= f->stream->len - at) {
        fuzz_assert(oversized(w, flen)); /* a whole frame under the limit: delivered */
        at += flen;
    }
}

/* Every oversized frame is logged (g_message): keep the output readable;
 * errors still come through. */
static GLogWriterOutput quiet(GLogLevelFlags level, const GLogField *fields, gsize n,
                              gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        return g_log_writer_default(level, fields, n, data);
    return G_LOG_WRITER_HANDLED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t run[65536]; /* a run's bytes, written before each use */
    static bool logs_off; /* the writer can be set once per process */
    if (!logs_off) {
        g_log_set_writer_func(quiet, NULL, NULL);
        logs_off = true;
    }
    if (size < 2)
        return 0;
    world *w = g_new0(world, 1);
    char err[QDB_ERRMSG_SIZE];
    fuzz_assert(poller_init(&w->poller, err));
    net_init(&w->net, &w->poller);
    fuzz_assert(peers_init(&w->peers, &w->net, NULL, &ops, w, err));
    w->n = 1 + (data[0] & 3) % NCONN;
    w->echo = data[0] & 4;
    w->max_frame = max_frames[(data[0] >> 4) & 7];
    qdb_loop_limits lim = {.max_frame = w->max_frame, .input_memory = input_memories[data[1] & 7]};
    net_set_limits(&w->net, &lim);
    w->now = loop_mono_now();
    for (unsigned i = 0; i < w->n; i++) {
        fconn *f = &w->c[i];
        int sv[2];
        fuzz_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        if (w->echo) { /* small buffers: replies not read pile up in conn.c */
            int small = 4096;
            setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        }
        f->fd = sv[1];
        f->held = data[1] & 8 ? fcntl(sv[0], F_DUPFD_CLOEXEC, 0) : -1;
        f->key = (qdb_addr){.ip = 0x0a000001 + i, .port = 1000};
        f->stream = g_byte_array_new();
        f->back = g_byte_array_new();
        fuzz_assert(peers_adopt(&w->peers, sv[0], f->key));
    }

    size_t at = 2;
    while (at < size) {
        uint8_t op = data[at++];
        fconn *f = &w->c[(op & 3) % w->n];
        unsigned kind = op >> 4;
        size_t n;
        switch (kind) {
        case 8:
        case 9:
            if (size - at < 3) {
                at = size;
                break;
            }
            n = 1 + (data[at] | (size_t)data[at + 1] << 8);
            memset(run, data[at + 2] | 0x80, n);
            at += 3;
            write_bytes(f, run, n);
            break;
        case 10:
            w->now += QDB_US_PER_S;
            net_sweep(&w->net, w->now);
            break;
        case 11:
            read_back(w, f);
            break;
        case 12:
            if (f->fd >= 0 && !f->shut)
                shutdown(f->fd, SHUT_WR);
            f->shut = true;
            break;
        case 13:
            if (f->fd >= 0)
                close(f->fd);
            f->fd = -1;
            break;
        case 14:
        case 15:
            n = MIN(1 + (size_t)(op >> 2 & 3), size - at);
            write_bytes(f, data + at, n);
            at += n;
            break;
        default:
            if (at >= size)
                break;
            n = MIN(1 + (size_t)data[at], size - at - 1);
            write_bytes(f, data + at + 1, n);
            at += 1 + n;
            break;
        }
        turn(w);
    }

    settle(w);
    for (unsigned i = 0; i < w->n; i++) {
        read_back(w, &w->c[i]);
        check_drained(w, &w->c[i]);
    }
    /* Our ends close: conn.c must close every connection itself (EOF, or
     * EPOLLHUP for one not read), and give back every byte it counted. */
    for (unsigned i = 0; i < w->n; i++)
        if (w->c[i].fd >= 0) {
            close(w->c[i].fd);
            w->c[i].fd = -1;
        }
    settle_closed(w);
    for (unsigned i = 0; i < w->n; i++)
        fuzz_assert(w->c[i].gone);
    fuzz_assert(w->net.sessions == 0 && w->net.granted == 0);
    fuzz_assert(w->net.holders.length == 0 && w->net.waiting.length == 0 &&
                w->net.accepted.length == 0);

    peers_close(&w->peers);
    net_flush(&w->net);
    net_free_closed(&w->net);
    for (unsigned i = 0; i < w->n; i++)
        if (w->c[i].held >= 0)
            close(w->c[i].held);
    peers_free(&w->peers);
    net_clear(&w->net);
    poller_clear(&w->poller);
    for (unsigned i = 0; i < w->n; i++) {
        g_byte_array_unref(w->c[i].stream);
        g_byte_array_unref(w->c[i].back);
    }
    g_free(w);
    return 0;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* The real loop's connections (conn.h): TCP connect and accept, buffers,
 * framing with qdb_frame_peek(), unreachable notices.
 *
 * Sections
 *   structures and address helpers
 *   notices: raise, deliver, purge
 *   connections: open, close, write, read and cut frames
 *   listeners: open, accept, shed on EMFILE
 *   limits: sessions, idle connections, frame sizes, input memory
 *   the shared part (loop_net) and an endpoint's part (loop_peers)
 */
#define G_LOG_DOMAIN "qdb-loop"

#include "config.h"

#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec.h"
#include "error.h"
#include "timers.h"

#define READ_CHUNK 65536           /* bytes asked of one read() */
#define READ_BUDGET (256 * 1024)   /* bytes read from one socket per turn */
#define ACCEPT_BUDGET 64           /* connections accepted per listener per turn */
#define LISTEN_BACKLOG 512
#define STALL_SWEEPS 2    /* sweeps without a byte before a holder is closed */

/* ---- structures and address helpers ------------------------------------------- */

typedef struct loop_conn {
    loop_src src;          /* first: the source is the connection */
    loop_peers *p;
    int fd;
    qdb_addr key;          /* dst for one we opened, the remote address otherwise */
    uint64_t key64;        /* qdb_addr_key(key): the table's key points here */
    bool outgoing;
    bool connecting;
    bool closed;
    bool indexed;          /* p->conns maps key64 to this connection */
    bool in_flush;         /* on net->flush */
    bool want_out;         /* EPOLLOUT registered */
    bool checked;          /* plaintext: the first bytes were checked for TLS */
    tls_conn *tls;         /* NULL: plaintext */
    GByteArray *in;        /* bytes received, not yet cut into frames */
    size_t in_off;         /* start of the first unconsumed byte in `in` */
    GByteArray *out;       /* bytes queued for the socket */
    size_t out_off;
    GList peers_link;      /* in p->all */
    GList flush_link;      /* in net->flush while in_flush */
    /* limits (the section below) */
    bool accepted;         /* counted in net->sessions, on net->accepted */
    bool input_off;        /* EPOLLIN is not registered */
    bool out_full;         /* not read until its peer takes its replies */
    bool kick;             /* granted while TLS held bytes back: lim_resume at the flush */
    qdb_time_us last_frame; /* accepted: when it opened or brought its last whole frame */
    size_t grant;          /* bytes of net->lim.input_memory held for its unfinished frame */
    size_t want;           /* > 0: waiting on net->waiting for a grant this large */
    size_t skip;           /* bytes of an oversized frame still to drop */
    uint64_t bytes_in, seen; /* bytes received; the count at the last sweep */
    unsigned stalled;      /* sweeps without a byte while holding a grant */
    GList accepted_link, lim_link; /* in net->accepted; in net->holders or net->waiting */
} loop_conn;

typedef struct loop_notice {
    loop_peers *p;
    qdb_addr dst;
    bool reset;            /* a working connection broke: ops->reset, if the owner has it */
} loop_notice;

/* What closing a connection tells its owner (conn_close). */
typedef enum { NOTE_NONE, NOTE_UNREACHABLE, NOTE_RESET } note_kind;

static void addr_to_sin(qdb_addr a, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(a.ip);
    sin->sin_port = htons(a.port);
}

static qdb_addr sin_to_addr(const struct sockaddr_in *sin)
{
    qdb_addr a = {.ip = ntohl(sin->sin_addr.s_addr), .port = ntohs(sin->sin_port)};
    return a;
}

static bool is_loopback(uint32_t ip)
{
    return (ip >> 24) == 127;
}

/* ---- notices -------------------------------------------------------------------- */

/* Raise unreachable(dst) -- or reset(dst): a connection that worked broke,
 * which says nothing of dst's process -- for p, delivered after the current
 * callback phase.  One notice per (endpoint, address) at a time; a refusal
 * outranks a reset still queued. */
static void notice_raise(loop_peers *p, qdb_addr dst, bool reset)
{
    if (p->closed || !p->ops || !p->ops->unreachable)
        return;
    uint64_t k = qdb_addr_key(dst);
    if (g_hash_table_contains(p->pending, &k)) {
        for (GList *l = p->net->notices.head; l && !reset; l = l->next) {
            loop_notice *nt = l->data;
            if (nt->p == p && qdb_addr_eq(nt->dst, dst))
                nt->reset = false;
        }
        return;
    }
    uint64_t *kk = g_new(uint64_t, 1);
    *kk = k;
    g_hash_table_add(p->pending, kk);
    loop_notice *nt = g_new(loop_notice, 1);
    nt->p = p;
    nt->dst = dst;
    nt->reset = reset;
    g_queue_push_tail(&p->net->notices, nt);
}

void net_notify(loop_net *net)
{
    guint n = g_queue_get_length(&net->notices);
    for (guint i = 0; i < n; i++) {
        loop_notice *nt = g_queue_pop_head(&net->notices);
        if (!nt)
            break;
        loop_peers *p = nt->p;
        uint64_t k = qdb_addr_key(nt->dst);
        g_hash_table_remove(p->pending, &k);
        if (!p->closed && p->ops && nt->reset && p->ops->reset)
            p->ops->reset(p->owner, nt->dst);
        else if (!p->closed && p->ops && p->ops->unreachable)
            p->ops->unreachable(p->owner, nt->dst);
        g_free(nt);
    }
}

static void notices_purge(loop_net *net, loop_peers *p)
{
    for (GList *l = net->notices.head; l;) {
        GList *next = l->next;
        loop_notice *nt = l->data;
        if (nt->p == p) {
            g_free(nt);
            g_queue_delete_link(&net->notices, l);
        }
        l = next;
    }
}


/* ---- connections ----------------------------------------------------------------- */

static void conn_ready(loop_src *s, uint32_t events);
static void lim_opened(loop_conn *c);
static void lim_closed(loop_conn *c);
static bool lim_oversized(loop_conn *c, size_t flen);
static bool lim_reserve(loop_conn *c, size_t flen);
static void lim_shrink(loop_conn *c);
static void lim_frame_done(loop_conn *c);
static bool lim_out_check(loop_conn *c);
static bool conn_deliver(loop_conn *c);
static void conn_readable(loop_conn *c);
static bool lim_resume(loop_conn *c);
static bool lim_refuse(loop_net *net, loop_peers *p, qdb_addr from);

static void conn_set_events(loop_conn *c, bool want_out)
{
    bool input_off = c->want > 0 || c->out_full;
    if (c->closed || (c->want_out == want_out && c->input_off == input_off))
        return;
    if (poller_set(c->p->net->poller, c->fd, &c->src, !input_off, want_out) == 0) {
        c->want_out = want_out;
        c->input_off = input_off;
    }
}

static void conn_index(loop_conn *c)
{
    loop_peers *p = c->p;
    loop_conn *old = g_hash_table_lookup(p->conns, &c->key64);
    if (old)
        old->indexed = false; /* still read from, no longer sent to */
    g_hash_table_replace(p->conns, &c->key64, c);
    c->indexed = true;
}

static loop_conn *conn_new(loop_peers *p, int fd, qdb_addr key, bool outgoing)
{
    loop_conn *c = g_new0(loop_conn, 1);
    c->src.ready = conn_ready;
    c->p = p;
    c->fd = fd;
    c->key = key;
    c->key64 = qdb_addr_key(key);
    c->outgoing = outgoing;
    c->in = g_byte_array_new();
    c->out = g_byte_array_new();
    c->peers_link.data = c;
    c->flush_link.data = c;
    if (p->tls)
        c->tls = tls_conn_new(p->tls, fd, !outgoing);
    g_queue_push_tail_link(&p->all, &c->peers_link);
    conn_index(c);
    p->net->stats.connections_open++;
    p->net->stats.connections_total++;
    lim_opened(c);
    return c;
}

/* Close a connection; the struct is freed by net_free_closed().  note: what
 * to raise for its endpoint about key (notice_raise). */
static void conn_close(loop_conn *c, note_kind note)
{
    if (c->closed)
        return;
    loop_net *net = c->p->net;
    c->closed = true;
    /* Out of the epoll set first: close() alone leaves it there while
     * another process holds the socket (poller.h), and epoll would then
     * report it after net_free_closed() freed c. */
    poller_del(net->poller, c->fd);
    close(c->fd);
    c->fd = -1;
    if (c->indexed && g_hash_table_lookup(c->p->conns, &c->key64) == c)
        g_hash_table_remove(c->p->conns, &c->key64);
    c->indexed = false;
    g_queue_unlink(&c->p->all, &c->peers_link);
    if (c->in_flush) { /* it may be freed before the next flush */
        g_queue_unlink(&net->flush, &c->flush_link);
        c->in_flush = false;
    }
    net->stats.connections_open--;
    lim_closed(c);
    if (note != NOTE_NONE)
        notice_raise(c->p, c->key, note == NOTE_RESET);
    /* A peer's connection: its address may come back as someone else's, so
     * the owner forgets what it bound to it now, before any frame of a new
     * connection from that address (env.h, gone). */
    if (!c->outgoing && !c->p->closed && c->p->ops && c->p->ops->gone)
        c->p->ops->gone(c->p->owner, c->key);
    g_ptr_array_add(net->closed, c);
}

static void conn_free(loop_conn *c)
{
    tls_conn_free(c->tls);
    g_byte_array_free(c->in, TRUE);
    g_byte_array_free(c->out, TRUE);
    g_free(c);
}

/* Queued bytes, or TLS records made of them that the socket has not taken. */
static bool conn_has_output(const loop_conn *c)
{
    return c->out->len > c->out_off || (c->tls && tls_conn_unsent(c->tls) > 0);
}

/* The peer went away (EOF, reset) or broke the protocol.  A connection we
 * opened is how we reach dst, so its loss is news; one a peer opened is news
 * only if we still had something for it.  News of a broken connection, not
 * of a death: a live peer closes idle connections, and a reset can come
 * from the network (a refused connection, later, is a dead process). */
static bool conn_news(const loop_conn *c)
{
    return c->outgoing || conn_has_output(c) || c->connecting;
}

static void conn_lost(loop_conn *c)
{
    conn_close(c, !conn_news(c) ? NOTE_NONE : c->connecting ? NOTE_UNREACHABLE : NOTE_RESET);
}

/* ---- the socket's bytes, through TLS when the endpoint has a key ----------------- */

/* As recv(2)/send(2); *want_out: an EAGAIN waits for writability (TLS may
 * need to write to read, or read to write, during its handshake). */
static ssize_t conn_recv(loop_conn *c, void *buf, size_t len, bool *want_out)
{
    if (c->tls)
        return tls_conn_recv(c->tls, buf, len, want_out);
    *want_out = false;
    return recv(c->fd, buf, len, MSG_DONTWAIT);
}

static ssize_t conn_send(loop_conn *c, const void *buf, size_t len, bool *want_out)
{
    if (c->tls)
        return tls_conn_send(c->tls, buf, len, want_out);
    *want_out = true;
    return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The peer does not hold the hive key, or holds one we have not: close, count,
 * and say so (rate-limited: a warning in a node's log, a debug line in a
 * client's, which learns it from qdb_loop_endpoint_auth_failures). */
static void conn_refuse(loop_conn *c, const char *why)
{
    loop_peers *p = c->p;
    p->auth_failures++;
    p->net->stats.auth_failures++;
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(c->key, a);
    bool node = p->listen_fd >= 0;
    if (c->outgoing && c->tls)
        tls_log_refusal(&p->auth_log, node,
                        "TLS handshake with %s failed (%s): is the hive key the same on both sides?",
                        a, why);
    else if (c->outgoing)
        tls_log_refusal(&p->auth_log, node,
                        "%s answers in TLS: it requires the hive key, and none is set here", a);
    else if (c->tls)
        tls_log_refusal(&p->auth_log, node,
                        "refused a connection from %s (%s): it does not prove the hive key", a,
                        why);
    else
        tls_log_refusal(&p->auth_log, node,
                        "refused a connection from %s: it speaks TLS, and this node has no hive "
                        "key", a);
    /* not a broken connection: this peer cannot talk to us at all */
    conn_close(c, conn_news(c) ? NOTE_UNREACHABLE : NOTE_NONE);
}

/* Write as much of the queue as the socket takes. */
static void conn_flush(loop_conn *c)
{
    if (c->closed || c->connecting)
        return;
    if (c->kick) {
        c->kick = false;
        if (!lim_resume(c))
            return;
    }
    loop_net *net = c->p->net;
    bool wait_out = true;
    while (conn_has_output(c)) {
        ssize_t w = conn_send(c, c->out->data + c->out_off, c->out->len - c->out_off, &wait_out);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EPROTO && c->tls) {
                conn_refuse(c, tls_conn_error(c->tls));
                return;
            }
            if (errno == ECONNRESET)
                net->stats.resets++;
            conn_close(c, NOTE_RESET); /* it worked: see conn_lost */
            return;
        }
        c->out_off += (size_t)w;
        net->stats.bytes_out += (uint64_t)w;
    }
    bool sent = !conn_has_output(c);
    if (c->out->len == c->out_off) { /* the queue is empty (TLS records may still wait) */
        if (c->out->len > READ_BUDGET) { /* let a large hand-over buffer go */
            g_byte_array_free(c->out, TRUE);
            c->out = g_byte_array_new();
        } else {
            g_byte_array_set_size(c->out, 0);
        }
        c->out_off = 0;
    } else if (c->out_off > 65536 && c->out_off * 2 > c->out->len) {
        g_byte_array_remove_range(c->out, 0, (guint)c->out_off);
        c->out_off = 0;
    }
    if (lim_out_check(c) && !lim_resume(c))
        return;
    /* not sent: a TLS handshake waiting to read resumes on readable */
    conn_set_events(c, sent ? conn_has_output(c) : wait_out);
}

void net_flush(loop_net *net)
{
    /* Bounded: each connection is on the list at most once, and flushing
     * adds none. */
    GList *l;
    while ((l = g_queue_pop_head_link(&net->flush)) != NULL) {
        loop_conn *c = l->data;
        c->in_flush = false;
        conn_flush(c);
    }
}

static void flush_schedule(loop_conn *c)
{
    if (c->in_flush || c->closed)
        return;
    c->in_flush = true;
    g_queue_push_tail_link(&c->p->net->flush, &c->flush_link);
}

/* Cut and deliver the whole frames at the front of the input buffer.
 * Returns false when the connection was closed meanwhile (bad frame, or the
 * owner closed it from recv). */
/* Announce the complete frames waiting in c's buffer to the core before
 * the first is delivered (qdb_inbound.ahead), when there are two or more:
 * a pipelined batch.  A single frame gains nothing from it. */
#define CONN_AHEAD_MAX 64

static void conn_ahead(loop_conn *c)
{
    loop_peers *p = c->p;
    if (!p->ops || !p->ops->ahead || p->closed || c->skip > 0)
        return;
    size_t off[CONN_AHEAD_MAX + 1], n = 0;
    off[0] = c->in_off;
    while (n < CONN_AHEAD_MAX) {
        size_t flen;
        if (qdb_frame_peek(c->in->data + off[n], c->in->len - off[n], &flen) != QDB_OK ||
            flen > c->in->len - off[n])
            break;
        off[n + 1] = off[n] + flen;
        n++;
    }
    if (n < 2)
        return;
    for (size_t i = 0; i < n; i++)
        p->ops->ahead(p->owner, c->key, c->in->data + off[i], off[i + 1] - off[i]);
    p->ops->ahead(p->owner, c->key, NULL, 0);
}

static bool conn_deliver(loop_conn *c)
{
    loop_peers *p = c->p;
    loop_net *net = p->net;
    conn_ahead(c);
    for (;;) {
        size_t avail = c->in->len - c->in_off;
        if (c->skip > 0) { /* the rest of an oversized frame */
            size_t drop = MIN(c->skip, avail);
            c->in_off += drop;
            c->skip -= drop;
            avail -= drop;
        }
        if (avail == 0)
            break;
        if (!c->tls && !c->checked && avail >= 2) {
            c->checked = true;
            if (tls_looks_like_tls(c->in->data + c->in_off, avail)) {
                conn_refuse(c, "TLS");
                return false;
            }
        }
        size_t flen;
        int rc = qdb_frame_peek(c->in->data + c->in_off, avail, &flen);
        if (rc == QDB_E_TRUNCATED)
            break;
        if (rc != QDB_OK) {
            net->stats.bad_frames++;
            char a[QDB_ADDR_STRLEN];
            g_debug("closing connection from %s: bad frame prefix (%s)",
                    qdb_addr_format(c->key, a), qdb_strerror(rc));
            conn_lost(c);
            return false;
        }
        if (lim_oversized(c, flen))
            continue; /* answered; its bytes are dropped as they come */
        if (avail < flen) {
            if (c->in_off > 0) {
                g_byte_array_remove_range(c->in, 0, (guint)c->in_off);
                c->in_off = 0;
            }
            if (!lim_reserve(c, flen))
                return true; /* waits for memory, not read meanwhile */
            lim_shrink(c);
            break;
        }
        const uint8_t *frame = c->in->data + c->in_off;
        c->in_off += flen;
        net->stats.frames_in++;
        p->recv_src = c->key;
        p->recv_role = c->tls ? tls_conn_role(c->tls) : QDB_PEER_UNVERIFIED;
        lim_frame_done(c);
        if (!p->closed && p->ops)
            p->ops->recv(p->owner, c->key, frame, flen);
        p->recv_src = (qdb_addr){0};
        if (c->closed || p->closed)
            return false;
        if (!lim_out_check(c) && c->out_full) {
            conn_set_events(c, c->want_out); /* the rest waits until its peer reads */
            return true;
        }
    }
    if (c->in_off == c->in->len) {
        if (c->in->len > READ_CHUNK * 4) { /* give a big buffer back */
            g_byte_array_free(c->in, TRUE);
            c->in = g_byte_array_new();
        } else {
            g_byte_array_set_size(c->in, 0);
        }
        c->in_off = 0;
    }
    return true;
}

static void conn_readable(loop_conn *c)
{
    loop_net *net = c->p->net;
    size_t budget = READ_BUDGET;
    if (c->input_off) { /* EPOLLERR or EPOLLHUP while it waits: gone */
        conn_lost(c);
        return;
    }
    /* TLS: bytes OpenSSL decrypted ahead are not seen by epoll; take them too
     * (at most its buffer, so still bounded). */
    while ((budget > 0 || (c->tls && tls_conn_pending(c->tls))) && !c->closed) {
        guint old = c->in->len;
        g_byte_array_set_size(c->in, old + READ_CHUNK);
        bool want_out;
        ssize_t r = conn_recv(c, c->in->data + old, READ_CHUNK, &want_out);
        g_byte_array_set_size(c->in, old + (r > 0 ? (guint)r : 0));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (want_out)
                    conn_set_events(c, true);
                else if (c->tls && conn_has_output(c))
                    flush_schedule(c); /* the handshake may just have completed */
                return;
            }
            if (errno == EPROTO && c->tls) {
                conn_refuse(c, tls_conn_error(c->tls));
                return;
            }
            if (errno == ECONNRESET)
                net->stats.resets++;
            conn_lost(c);
            return;
        }
        if (r == 0) {
            conn_lost(c);
            return;
        }
        net->stats.bytes_in += (uint64_t)r;
        c->bytes_in += (uint64_t)r;
        budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
        if (!conn_deliver(c))
            return;
        if (c->input_off)
            return; /* waits for memory, or for its peer to read (lim_resume) */
        /* Drained for now: level-triggered epoll says if more came.  TLS
         * opens the whole records of one read() per call and may hold more
         * (a record that did not fit): tls_conn_pending says so. */
        if (c->tls ? !tls_conn_pending(c->tls) : (size_t)r < READ_CHUNK)
            return;
    }
}

static void conn_connected(loop_conn *c)
{
    loop_net *net = c->p->net;
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        /* A connect to an unused local port can meet itself (TCP
         * simultaneous open when the kernel picks the same port): that is
         * a refusal, not a peer. */
        struct sockaddr_in me, peer;
        socklen_t ml = sizeof(me), pl = sizeof(peer);
        if (getsockname(c->fd, (struct sockaddr *)&me, &ml) == 0 &&
            getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0 &&
            me.sin_addr.s_addr == peer.sin_addr.s_addr && me.sin_port == peer.sin_port)
            err = ECONNREFUSED;
    }
    if (err != 0) {
        if (err == ECONNREFUSED)
            net->stats.refused++;
        conn_close(c, NOTE_UNREACHABLE);
        return;
    }
    c->connecting = false;
    conn_flush(c);
}

static void conn_ready(loop_src *s, uint32_t events)
{
    loop_conn *c = (loop_conn *)s;
    if (c->closed)
        return;
    if (c->connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_connected(c);
        return;
    }
    /* A TLS handshake that waited to write resumes in the read path; one
     * that waits for memory or for its peer to read is not read. */
    if ((events & (EPOLLERR | EPOLLHUP)) || ((events & EPOLLIN) && !c->input_off) ||
        (c->tls && !tls_conn_established(c->tls) && (events & EPOLLOUT)))
        conn_readable(c); /* reads the error or EOF and closes */
    if (!c->closed && (events & EPOLLOUT))
        conn_flush(c);
}

/* Open a connection from p to dst.  NULL when the connect failed at once
 * (a notice is then raised, as a refused connect would later). */
static loop_conn *conn_open(loop_peers *p, qdb_addr dst, int *fatal)
{
    loop_net *net = p->net;
    *fatal = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *fatal = errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* An endpoint that listens on a loopback alias speaks from it, so peers
     * see 127.0.0.2:x rather than 127.0.0.1:x. */
    if (p->listen_fd >= 0 && p->listen_addr.ip != 0 &&
        is_loopback(p->listen_addr.ip) == is_loopback(dst.ip)) {
        struct sockaddr_in src;
        addr_to_sin((qdb_addr){.ip = p->listen_addr.ip, .port = 0}, &src);
        (void)bind(fd, (struct sockaddr *)&src, sizeof(src)); /* best effort */
    }
    struct sockaddr_in sin;
    addr_to_sin(dst, &sin);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
        if (errno == ECONNREFUSED)
            net->stats.refused++;
        close(fd);
        notice_raise(p, dst, false);
        return NULL;
    }
    loop_conn *c = conn_new(p, fd, dst, true);
    c->connecting = rc < 0;
    c->want_out = c->connecting;
    if (poller_add(net->poller, fd, &c->src, c->connecting) < 0) {
        *fatal = errno;
        conn_close(c, NOTE_NONE);
        return NULL;
    }
    return c;
}


/* ---- listeners -------------------------------------------------------------------- */

/* Out of descriptors: take one connection with the spare descriptor and
 * close it at once, so the listener does not stay readable forever. */
static void accept_shed(loop_net *net, int lfd)
{
    if (net->sparefd < 0)
        return;
    close(net->sparefd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    net->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void listen_ready(loop_src *s, uint32_t events)
{
    (void)events;
    loop_peers *p = (loop_peers *)((char *)s - offsetof(loop_peers, listen_src));
    loop_net *net = p->net;
    for (int i = 0; i < ACCEPT_BUDGET && !p->closed; i++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);
        int fd = accept4(p->listen_fd, (struct sockaddr *)&sin, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                char a[QDB_ADDR_STRLEN];
                g_warning("accept on %s: %s; shedding a connection",
                          qdb_addr_format(p->listen_addr, a), g_strerror(errno));
                accept_shed(net, p->listen_fd);
            }
            return;
        }
        if (sin.sin_family != AF_INET || lim_refuse(net, p, sin_to_addr(&sin))) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        peers_adopt(p, fd, sin_to_addr(&sin));
    }
}

bool peers_adopt(loop_peers *p, int fd, qdb_addr from)
{
    loop_conn *c = conn_new(p, fd, from, false);
    if (poller_add(p->net->poller, fd, &c->src, false) < 0) {
        conn_close(c, NOTE_NONE);
        return false;
    }
    return true;
}

/* listen(2), under another name: loop.h calls the attach parameter `listen`. */
static int sock_listen(int fd)
{
    return listen(fd, LISTEN_BACKLOG);
}

static int listener_open(const qdb_addr *addr, char *err)
{
    char a[QDB_ADDR_STRLEN];
    if (addr->port == 0) {
        qdb_error_set(err, QDB_E_INVALID_ARGUMENT, "cannot listen on %s: no port",
                      qdb_addr_format(*addr, a));
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin;
    addr_to_sin(*addr, &sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || sock_listen(fd) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    qdb_error_set(err, QDB_E_INTERNAL, "cannot listen on %s: %s", qdb_addr_format(*addr, a),
                  g_strerror(e));
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}


/* ---- limits ----------------------------------------------------------------------
 * What qdb_loop_limits (loop.h) promises, kept apart from the plain transport
 * above: each hook is a no-op while its limit is 0. */

static void lim_opened(loop_conn *c)
{
    loop_net *net = c->p->net;
    c->lim_link.data = c;
    if (c->outgoing)
        return;
    c->accepted = true;
    c->accepted_link.data = c;
    net->sessions++;
    g_queue_push_tail_link(&net->accepted, &c->accepted_link);
    c->last_frame = loop_clock_mono(&c->p->net->poller->clock);
}

/* A connection over the --sessions cap is accepted and closed at once (a
 * connection left in the backlog would keep the listener readable). */
static bool lim_refuse(loop_net *net, loop_peers *p, qdb_addr from)
{
    if (!net->lim.sessions || net->sessions < net->lim.sessions)
        return false;
    if (net->sessions < net->lim.sessions + net->lim.peer_reserve && net->lim.is_peer &&
        net->lim.is_peer(net->lim.is_peer_arg, from))
        return false;
    net->stats.sessions_refused++;
    char a[QDB_ADDR_STRLEN];
    g_warning("%s: %u connections open, the most --sessions allows: refusing one",
              qdb_addr_format(p->listen_addr, a), net->sessions);
    return true;
}

/* Give a grant to c, and room for the whole frame at once (no regrowth, and
 * pages are touched only as bytes come). */
static void lim_grant(loop_net *net, loop_conn *c, size_t flen)
{
    c->grant = flen;
    net->granted += flen;
    g_queue_push_tail_link(&net->holders, &c->lim_link);
    if (c->in->len - c->in_off < flen) {
        /* room for the last read() too, which asks for READ_CHUNK */
        GByteArray *in = g_byte_array_sized_new((guint)(flen + READ_CHUNK));
        g_byte_array_append(in, c->in->data + c->in_off, c->in->len - (guint)c->in_off);
        g_byte_array_free(c->in, TRUE);
        c->in = in;
        c->in_off = 0;
    }
}

/* Grants for the waiting connections, in their order, while they fit. */
static void lim_wake(loop_net *net)
{
    loop_conn *c;
    while ((c = g_queue_peek_head(&net->waiting)) != NULL &&
           net->granted + c->want <= net->lim.input_memory) {
        g_queue_unlink(&net->waiting, &c->lim_link);
        size_t flen = c->want;
        c->want = 0;
        lim_grant(net, c, flen);
        conn_set_events(c, c->want_out);
        if (c->tls) { /* what OpenSSL holds is not reported by epoll */
            c->kick = true;
            flush_schedule(c);
        }
    }
}

/* c may be read again: serve what it already holds -- the frames left in
 * its buffer, and the bytes TLS decrypted ahead, which epoll does not
 * report.  False when it was closed meanwhile. */
static bool lim_resume(loop_conn *c)
{
    if (!conn_deliver(c))
        return false;
    if (c->tls && !c->input_off && tls_conn_pending(c->tls))
        conn_readable(c);
    return !c->closed;
}

static void lim_release(loop_net *net, loop_conn *c)
{
    if (c->grant) {
        g_queue_unlink(&net->holders, &c->lim_link);
        net->granted -= c->grant;
        c->grant = 0;
        c->stalled = 0;
    } else if (c->want) {
        g_queue_unlink(&net->waiting, &c->lim_link);
        c->want = 0;
    }
}

static void lim_closed(loop_conn *c)
{
    loop_net *net = c->p->net;
    if (c->accepted) {
        net->sessions--;
        g_queue_unlink(&net->accepted, &c->accepted_link);
        c->accepted = false;
    }
    lim_release(net, c);
    lim_wake(net);
}

/* A frame over max_frame: answer it if it is a request, and drop its bytes
 * (the ones here now, and c->skip more as they come). */
static bool lim_oversized(loop_conn *c, size_t flen)
{
    loop_net *net = c->p->net;
    if (!net->lim.max_frame || flen <= net->lim.max_frame)
        return false;
    net->stats.oversized++;
    size_t avail = c->in->len - c->in_off;
    int type;
    uint64_t seq, alias_len;
    char a[QDB_ADDR_STRLEN];
    if (qdb_request_peek(c->in->data + c->in_off, avail, &type, &seq, &alias_len) == QDB_OK &&
        seq != 0) {
        qdb_msg r = {.type = QDB_MSG_REPLY, .seq = seq, .status = QDB_E_CONTENT_TOO_LARGE};
        size_t before = c->out->len;
        if (qdb_msg_encode(&r, c->out) == QDB_OK && c->out->len > before) {
            net->stats.frames_out++;
            flush_schedule(c);
        }
    }
    g_message("%s sent a frame of %zu bytes, over the %zu this node takes: dropped",
              qdb_addr_format(c->key, a), flen, net->lim.max_frame);
    size_t drop = MIN(avail, flen);
    c->in_off += drop;
    c->skip = flen - drop;
    return true;
}

/* c has the start of a frame of flen bytes: may it read the rest?  Frames
 * up to LOOP_SMALL_FRAME always; larger ones once granted from
 * input_memory; otherwise c waits, unread. */
static bool lim_reserve(loop_conn *c, size_t flen)
{
    loop_net *net = c->p->net;
    if (!net->lim.input_memory || flen <= LOOP_SMALL_FRAME || c->grant >= flen)
        return true;
    /* Already waiting for this frame, and served again because its peer took
     * its replies (lim_resume): it keeps its place.  Queued a second time,
     * its link would be in net->waiting twice. */
    if (c->want > 0)
        return false;
    if (net->waiting.length == 0 && net->granted + flen <= net->lim.input_memory) {
        lim_grant(net, c, flen);
        return true;
    }
    c->want = flen;
    g_queue_push_tail_link(&net->waiting, &c->lim_link);
    net->stats.input_waits++;
    conn_set_events(c, c->want_out);
    return false;
}

/* A small unfinished frame without a grant keeps only its own bytes, not
 * the buffer of the read() that brought them: an idle connection holds at
 * most LOOP_SMALL_FRAME (loop.h). */
static void lim_shrink(loop_conn *c)
{
    if (!c->p->net->lim.input_memory || c->grant || c->in_off != 0)
        return;
    GByteArray *in = g_byte_array_sized_new(c->in->len);
    g_byte_array_append(in, c->in->data, c->in->len);
    g_byte_array_free(c->in, TRUE);
    c->in = in;
}

static void lim_frame_done(loop_conn *c)
{
    loop_net *net = c->p->net;
    if (c->accepted)
        c->last_frame = loop_clock_mono(&c->p->net->poller->clock);
    if (c->grant) {
        lim_release(net, c);
        lim_wake(net);
    }
}

/* An accepted connection whose peer does not take what is queued to it is
 * neither read nor served meanwhile (loop.h): no more of its frames are
 * delivered.  True when it may go on again, and its buffered frames should
 * be delivered. */
static bool lim_out_check(loop_conn *c)
{
    size_t max = c->p->net->lim.max_frame, queued = c->out->len - c->out_off;
    if (!max || !c->accepted)
        return false;
    if (!c->out_full && queued > max)
        c->out_full = true;
    else if (c->out_full && queued <= max / 2) {
        c->out_full = false;
        return true;
    }
    return false;
}

void net_set_limits(loop_net *net, const qdb_loop_limits *lim)
{
    net->lim = *lim;
    if (net->lim.input_memory && net->lim.input_memory < net->lim.max_frame)
        net->lim.input_memory = net->lim.max_frame;
    lim_wake(net);
}

void net_sweep(loop_net *net, qdb_time_us now)
{
    char a[QDB_ADDR_STRLEN];
    qdb_time_us idle = net->lim.idle_timeout, hs = net->lim.handshake_timeout;
    for (GList *l = net->accepted.head; l && (idle || hs);) {
        loop_conn *c = l->data;
        l = l->next; /* closing unlinks c */
        /* No frame comes before the handshake is done: last_frame is still
         * when the connection opened. */
        if (hs && c->tls && !tls_conn_established(c->tls) && now - c->last_frame >= hs) {
            net->stats.handshake_closed++;
            tls_log_refusal(&c->p->auth_log, true,
                            "closing the connection from %s: no TLS handshake within %" G_GUINT64_FORMAT
                            " s", qdb_addr_format(c->key, a), hs / QDB_US_PER_S);
            conn_close(c, NOTE_NONE);
            continue;
        }
        if (idle && !conn_has_output(c) && now - c->last_frame >= idle) {
            net->stats.idle_closed++;
            g_message("closing the connection from %s: no request for %" G_GUINT64_FORMAT " s",
                      qdb_addr_format(c->key, a), (now - c->last_frame) / QDB_US_PER_S);
            conn_close(c, NOTE_NONE);
        }
    }
    /* Holders that send nothing while others wait: close the largest one
     * that has stalled long enough (each sweep closes at most one, and the
     * bytes it held go to the first waiters). */
    loop_conn *worst = NULL;
    for (GList *l = net->holders.head; l; l = l->next) {
        loop_conn *c = l->data;
        c->stalled = c->bytes_in == c->seen ? c->stalled + 1 : 0;
        c->seen = c->bytes_in;
        if (net->waiting.length && c->stalled >= STALL_SWEEPS && (!worst || c->grant > worst->grant))
            worst = c;
    }
    if (worst) {
        net->stats.stalled_closed++;
        g_message("closing the connection from %s: %zu bytes of an unfinished frame held, "
                  "nothing sent for %u s while others wait for memory",
                  qdb_addr_format(worst->key, a), worst->grant, STALL_SWEEPS);
        conn_lost(worst);
    }
}


/* ---- the shared part and an endpoint's part -------------------------------------- */

void net_init(loop_net *net, loop_poller *poller)
{
    net->poller = poller;
    net->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g_queue_init(&net->notices);
    g_queue_init(&net->flush);
    g_queue_init(&net->accepted);
    g_queue_init(&net->holders);
    g_queue_init(&net->waiting);
    net->closed = g_ptr_array_new();
    memset(&net->stats, 0, sizeof(net->stats));
}

void net_clear(loop_net *net)
{
    loop_notice *nt;
    while ((nt = g_queue_pop_head(&net->notices)) != NULL)
        g_free(nt);
    g_assert(net->flush.length == 0); /* closing every connection emptied it */
    net_free_closed(net);
    g_ptr_array_free(net->closed, TRUE);
    if (net->sparefd >= 0)
        close(net->sparefd);
}

bool net_busy(const loop_net *net)
{
    return net->notices.length > 0 || net->flush.length > 0;
}

void net_free_closed(loop_net *net)
{
    for (guint i = 0; i < net->closed->len; i++)
        conn_free(net->closed->pdata[i]);
    g_ptr_array_set_size(net->closed, 0);
}

bool peers_init(loop_peers *p, loop_net *net, const qdb_addr *listen, const qdb_inbound *ops,
                void *owner, char *err)
{
    memset(p, 0, sizeof(*p));
    p->net = net;
    p->ops = ops;
    p->owner = owner;
    p->listen_fd = -1;
    p->listen_src.ready = listen_ready;
    if (listen) {
        p->listen_addr = *listen;
        p->listen_fd = listener_open(listen, err);
        if (p->listen_fd < 0)
            return false;
        if (poller_add(net->poller, p->listen_fd, &p->listen_src, false) < 0) {
            int e = errno;
            char a[QDB_ADDR_STRLEN];
            qdb_error_set(err, QDB_E_INTERNAL, "cannot watch %s: %s", qdb_addr_format(*listen, a),
                          g_strerror(e));
            close(p->listen_fd);
            errno = e;
            return false;
        }
    }
    p->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
    p->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_queue_init(&p->all);
    return true;
}

void peers_disconnect_all(loop_peers *p)
{
    /* Bounded: every pass closes the head, which unlinks it. */
    while (p->all.head)
        conn_close(p->all.head->data, NOTE_NONE);
}

void peers_close(loop_peers *p)
{
    if (p->closed)
        return;
    p->closed = true;
    peers_disconnect_all(p);
    if (p->listen_fd >= 0) {
        poller_del(p->net->poller, p->listen_fd); /* as conn_close does */
        close(p->listen_fd);
        p->listen_fd = -1;
    }
    notices_purge(p->net, p);
}

void peers_free(loop_peers *p)
{
    g_hash_table_destroy(p->conns);
    g_hash_table_destroy(p->pending);
}

int peers_send(loop_peers *p, qdb_addr dst, const uint8_t *frame, size_t len)
{
    uint64_t k = qdb_addr_key(dst);
    loop_conn *c = g_hash_table_lookup(p->conns, &k);
    if (!c) {
        int fatal;
        c = conn_open(p, dst, &fatal);
        if (!c)
            return fatal; /* 0: refused at once, the notice is on its way */
    }
    g_byte_array_append(c->out, frame, (guint)len);
    p->net->stats.frames_out++;
    flush_schedule(c);
    return 0;
}

int peers_role(const loop_peers *p, qdb_addr src)
{
    if (qdb_addr_eq(src, p->recv_src))
        return p->recv_role;
    uint64_t k = qdb_addr_key(src);
    const loop_conn *c = g_hash_table_lookup(p->conns, &k);
    return c && c->tls ? tls_conn_role(c->tls) : QDB_PEER_UNVERIFIED;
}

bool peers_input(const loop_peers *p, qdb_addr key, peers_input_state *out)
{
    uint64_t k = qdb_addr_key(key);
    const loop_conn *c = g_hash_table_lookup(p->conns, &k);
    if (!c)
        return false;
    out->held = c->in->len - c->in_off;
    out->grant = c->grant;
    out->waiting = c->want > 0;
    out->out_full = c->out_full;
    return true;
}

size_t peers_pending(const loop_peers *p)
{
    size_t n = 0;
    for (GList *l = p->all.head; l; l = l->next) {
        const loop_conn *c = l->data;
        n += c->out->len - c->out_off + (c->tls ? tls_conn_unsent(c->tls) : 0);
        if (c->connecting && c->out->len == c->out_off)
            n++;
    }
    return n;
}

/* The real world's event loop (loop.h): epoll, non-blocking TCP, the
 * monotonic clock, and the env.h seams for every endpoint it hosts.
 *
 * Sections
 *   structures: sources (what an epoll event points at), connections,
 *     endpoints, timers, the loop
 *   the timer heap (one deadline per endpoint, plus every() callbacks)
 *   deferred work: unreachable notices, the flush list, the graveyard
 *   connections: open, close, read and cut frames, write
 *   the seams: clock, transport, random
 *   endpoints: attach, listen, accept, detach
 *   running: run_once, run, stop, watch_fd, every
 *
 * Epoll is level-triggered: a socket with more to read than one turn's budget
 * is simply reported again, which keeps one busy peer from starving the
 * others.  EPOLLOUT is asked for only while a connection has bytes queued or a
 * connect in progress.
 *
 * Frames sent from a callback are appended to the connection's queue and
 * written once the callback phase is over (the "flush list"), so a burst of
 * small frames goes out in one write() and send() never does I/O that could
 * call back.  Connections and endpoints closed while epoll events for them
 * may still be pending are parked in a graveyard and freed at the end of
 * run_once(): an event never points at freed memory.
 *
 * Order: nothing here reaches a frame from hash-table order.  Connections
 * are looked up by key only; notices are delivered in the order they were
 * raised; timers fire in (deadline, arm sequence) order.
 */
#define G_LOG_DOMAIN "qdb-loop"

#include "config.h"

#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "error.h"

#define READ_CHUNK 65536           /* bytes asked of one read() */
#define READ_BUDGET (256 * 1024)   /* bytes read from one socket per turn */
#define ACCEPT_BUDGET 64           /* connections accepted per listener per turn */
#define EVENTS_MAX 256             /* epoll events taken per turn */
#define LISTEN_BACKLOG 512
#define NO_DEADLINE UINT64_MAX     /* arm(UINT64_MAX) disarms */

/* ---- structures ------------------------------------------------------------ */

typedef enum src_kind { SRC_WAKE, SRC_LISTEN, SRC_CONN, SRC_WATCH } src_kind;

/* What epoll_event.data.ptr points at: the first member of each owner. */
typedef struct loop_src {
    src_kind kind;
} loop_src;

typedef struct loop_conn {
    loop_src src;
    qdb_loop_endpoint *ep;
    int fd;
    qdb_addr key;          /* dst for one we opened, the remote address otherwise */
    uint64_t key64;        /* qdb_addr_key(key): the table's key points here */
    bool outgoing;
    bool connecting;
    bool closed;
    bool indexed;          /* ep->conns maps key64 to this connection */
    bool in_flush;         /* on loop->flush */
    bool want_out;         /* EPOLLOUT registered */
    GByteArray *in;        /* bytes received, not yet cut into frames */
    size_t in_off;         /* start of the first unconsumed byte in `in` */
    GByteArray *out;       /* bytes queued for the socket */
    size_t out_off;
    GList ep_link;         /* in ep->all_conns */
    GList flush_link;      /* in loop->flush while in_flush */
} loop_conn;

/* One deadline in the heap: an endpoint's wake-up or a periodic callback. */
typedef struct loop_timer {
    qdb_time_us when;
    uint64_t seq;          /* arm order: the tie-break */
    int idx;               /* position in the heap; -1 when not in it */
    uint64_t due_pass;     /* run_once pass that collected it as due; 0: none */
    qdb_loop_endpoint *ep; /* NULL for a periodic callback */
    struct loop_every *every;
} loop_timer;

typedef struct loop_every {
    loop_timer timer;
    qdb_time_us period;
    void (*fn)(void *arg);
    void *arg;
} loop_every;

typedef struct loop_watch {
    loop_src src;
    int fd;
    void (*fn)(void *arg, int fd);
    void *arg;
} loop_watch;

struct qdb_loop_endpoint {
    qdb_loop *loop;
    const qdb_inbound *ops; /* NULL: nothing bound, events are dropped */
    void *owner;
    qdb_clock clock;
    qdb_transport transport;
    qdb_random random;
    GRand *rand;
    loop_src listen_src;   /* kind SRC_LISTEN; container_of gives the endpoint */
    int listen_fd;         /* -1 for a client */
    qdb_addr listen_addr;
    GHashTable *conns;     /* &key64 -> loop_conn*; lookups only, never walked for frames */
    GQueue all_conns;      /* every open connection, indexed or not */
    GHashTable *pending;   /* key64 set: addresses with a notice queued */
    loop_timer timer;
    bool detached;
    GList link;            /* in loop->endpoints */
};

typedef struct loop_notice {
    qdb_loop_endpoint *ep;
    qdb_addr dst;
} loop_notice;

struct qdb_loop {
    int epfd;
    int wakefd;            /* eventfd written by qdb_loop_stop() */
    int sparefd;           /* /dev/null, given up to accept() and close() on EMFILE */
    loop_src wake_src;
    volatile sig_atomic_t stop_requested;
    bool in_run;           /* inside run_once: frees are deferred */
    uint64_t pass;         /* run_once counter */
    uint64_t timer_seq;
    GPtrArray *heap;       /* loop_timer*, min-heap on (when, seq) */
    GQueue notices;        /* loop_notice*, in the order they were raised */
    GQueue flush;          /* loop_conn* with bytes to write (their flush_link) */
    GPtrArray *dead_conns; /* closed, freed at the end of run_once */
    GPtrArray *dead_eps;   /* detached, freed at the end of run_once */
    GQueue endpoints;
    GPtrArray *watches;
    GPtrArray *everies;
    qdb_loop_stats stats;
};

static qdb_time_us mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (qdb_time_us)ts.tv_sec * QDB_US_PER_S + (qdb_time_us)ts.tv_nsec / 1000;
}

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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

/* ---- the timer heap ----------------------------------------------------------
 * A binary min-heap of loop_timer pointers ordered by (when, seq); each timer
 * knows its index so re-arming and removal are O(log n) without a search
 * (libevent's minheap-internal.h does the same). */

static bool timer_before(const loop_timer *a, const loop_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(qdb_loop *loop, guint i, loop_timer *t)
{
    loop->heap->pdata[i] = t;
    t->idx = (int)i;
}

static void heap_up(qdb_loop *loop, guint i)
{
    loop_timer *t = loop->heap->pdata[i];
    while (i > 0) {
        guint parent = (i - 1) / 2;
        loop_timer *p = loop->heap->pdata[parent];
        if (!timer_before(t, p))
            break;
        heap_set(loop, i, p);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(qdb_loop *loop, guint i)
{
    guint n = loop->heap->len;
    loop_timer *t = loop->heap->pdata[i];
    for (;;) {
        guint c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && timer_before(loop->heap->pdata[c + 1], loop->heap->pdata[c]))
            c++;
        if (!timer_before(loop->heap->pdata[c], t))
            break;
        heap_set(loop, i, loop->heap->pdata[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

static void heap_remove(qdb_loop *loop, loop_timer *t)
{
    if (t->idx < 0)
        return;
    guint i = (guint)t->idx;
    guint last = loop->heap->len - 1;
    t->idx = -1;
    if (i != last) {
        loop_timer *m = loop->heap->pdata[last];
        g_ptr_array_set_size(loop->heap, last);
        heap_set(loop, i, m);
        heap_up(loop, i);
        heap_down(loop, (guint)m->idx);
    } else {
        g_ptr_array_set_size(loop->heap, last);
    }
}

static void timer_set(qdb_loop *loop, loop_timer *t, qdb_time_us when)
{
    heap_remove(loop, t);
    t->due_pass = 0; /* re-armed: a pending "due" from this pass is void */
    if (when == NO_DEADLINE)
        return;
    t->when = when;
    t->seq = ++loop->timer_seq;
    g_ptr_array_add(loop->heap, t);
    t->idx = (int)loop->heap->len - 1;
    heap_up(loop, (guint)t->idx);
}

/* ---- deferred work ------------------------------------------------------------ */

/* Raise unreachable(dst) for ep, delivered after the current callback phase.
 * One notice per (endpoint, address) at a time. */
static void notice_raise(qdb_loop_endpoint *ep, qdb_addr dst)
{
    if (ep->detached || !ep->ops || !ep->ops->unreachable)
        return;
    uint64_t k = qdb_addr_key(dst);
    if (g_hash_table_contains(ep->pending, &k))
        return;
    uint64_t *kk = g_new(uint64_t, 1);
    *kk = k;
    g_hash_table_add(ep->pending, kk);
    loop_notice *nt = g_new(loop_notice, 1);
    nt->ep = ep;
    nt->dst = dst;
    g_queue_push_tail(&ep->loop->notices, nt);
}

/* Deliver the notices raised before this call; those raised by the
 * callbacks wait for the next turn, so a node that keeps sending to a dead
 * address cannot spin here. */
static void notices_deliver(qdb_loop *loop)
{
    guint n = g_queue_get_length(&loop->notices);
    for (guint i = 0; i < n; i++) {
        loop_notice *nt = g_queue_pop_head(&loop->notices);
        if (!nt)
            break;
        qdb_loop_endpoint *ep = nt->ep;
        uint64_t k = qdb_addr_key(nt->dst);
        g_hash_table_remove(ep->pending, &k);
        if (!ep->detached && ep->ops && ep->ops->unreachable)
            ep->ops->unreachable(ep->owner, nt->dst);
        g_free(nt);
    }
}

static void notices_purge(qdb_loop *loop, qdb_loop_endpoint *ep)
{
    for (GList *l = loop->notices.head; l;) {
        GList *next = l->next;
        loop_notice *nt = l->data;
        if (nt->ep == ep) {
            g_free(nt);
            g_queue_delete_link(&loop->notices, l);
        }
        l = next;
    }
}

/* ---- connections ----------------------------------------------------------- */

static void conn_set_events(loop_conn *c, bool want_out)
{
    if (c->closed || c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = &c->src};
    if (epoll_ctl(c->ep->loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = want_out;
}

static void conn_index(loop_conn *c)
{
    qdb_loop_endpoint *ep = c->ep;
    loop_conn *old = g_hash_table_lookup(ep->conns, &c->key64);
    if (old)
        old->indexed = false; /* still read from, no longer sent to */
    g_hash_table_replace(ep->conns, &c->key64, c);
    c->indexed = true;
}

static loop_conn *conn_new(qdb_loop_endpoint *ep, int fd, qdb_addr key, bool outgoing)
{
    loop_conn *c = g_new0(loop_conn, 1);
    c->src.kind = SRC_CONN;
    c->ep = ep;
    c->fd = fd;
    c->key = key;
    c->key64 = qdb_addr_key(key);
    c->outgoing = outgoing;
    c->in = g_byte_array_new();
    c->out = g_byte_array_new();
    c->ep_link.data = c;
    c->flush_link.data = c;
    g_queue_push_tail_link(&ep->all_conns, &c->ep_link);
    conn_index(c);
    ep->loop->stats.connections_open++;
    ep->loop->stats.connections_total++;
    return c;
}

/* Close a connection; the struct is freed at the end of the turn (or now,
 * outside run_once).  notify: raise unreachable(key) for its endpoint. */
static void conn_close(loop_conn *c, bool notify)
{
    if (c->closed)
        return;
    qdb_loop *loop = c->ep->loop;
    c->closed = true;
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    if (c->indexed && g_hash_table_lookup(c->ep->conns, &c->key64) == c)
        g_hash_table_remove(c->ep->conns, &c->key64);
    c->indexed = false;
    g_queue_unlink(&c->ep->all_conns, &c->ep_link);
    if (c->in_flush) { /* it may be freed before the next flush */
        g_queue_unlink(&loop->flush, &c->flush_link);
        c->in_flush = false;
    }
    loop->stats.connections_open--;
    if (notify)
        notice_raise(c->ep, c->key);
    g_ptr_array_add(loop->dead_conns, c);
}

static void conn_free(loop_conn *c)
{
    g_byte_array_free(c->in, TRUE);
    g_byte_array_free(c->out, TRUE);
    g_free(c);
}

static bool conn_has_output(const loop_conn *c)
{
    return c->out->len > c->out_off;
}

/* The peer went away (EOF, reset) or broke the protocol.  A connection we
 * opened is how we reach dst, so its loss is news; one a peer opened is news
 * only if we still had something for it. */
static void conn_lost(loop_conn *c)
{
    conn_close(c, c->outgoing || conn_has_output(c) || c->connecting);
}

/* Write as much of the queue as the socket takes. */
static void conn_flush(loop_conn *c)
{
    if (c->closed || c->connecting)
        return;
    qdb_loop *loop = c->ep->loop;
    while (conn_has_output(c)) {
        ssize_t w = send(c->fd, c->out->data + c->out_off, c->out->len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == ECONNRESET)
                loop->stats.resets++;
            conn_close(c, true);
            return;
        }
        c->out_off += (size_t)w;
        loop->stats.bytes_out += (uint64_t)w;
    }
    if (!conn_has_output(c)) {
        if (c->out->len > READ_BUDGET) { /* let a large hand-over buffer go */
            g_byte_array_free(c->out, TRUE);
            c->out = g_byte_array_new();
        } else {
            g_byte_array_set_size(c->out, 0);
        }
        c->out_off = 0;
        conn_set_events(c, false);
    } else {
        if (c->out_off > 65536 && c->out_off * 2 > c->out->len) {
            g_byte_array_remove_range(c->out, 0, (guint)c->out_off);
            c->out_off = 0;
        }
        conn_set_events(c, true);
    }
}

static void flush_all(qdb_loop *loop)
{
    /* Bounded: each connection is on the list at most once, and flushing
     * adds none. */
    GList *l;
    while ((l = g_queue_pop_head_link(&loop->flush)) != NULL) {
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
    g_queue_push_tail_link(&c->ep->loop->flush, &c->flush_link);
}

/* Cut and deliver the whole frames at the front of the input buffer.
 * Returns false when the connection was closed meanwhile (bad frame, or the
 * owner closed it from recv). */
static bool conn_deliver(loop_conn *c)
{
    qdb_loop_endpoint *ep = c->ep;
    qdb_loop *loop = ep->loop;
    for (;;) {
        size_t avail = c->in->len - c->in_off;
        if (avail == 0)
            break;
        size_t flen;
        int rc = qdb_frame_peek(c->in->data + c->in_off, avail, &flen);
        if (rc == QDB_E_TRUNCATED)
            break;
        if (rc != QDB_OK) {
            loop->stats.bad_frames++;
            char a[QDB_ADDR_STRLEN];
            g_debug("closing connection from %s: bad frame prefix (%s)",
                    qdb_addr_format(c->key, a), qdb_strerror(rc));
            conn_lost(c);
            return false;
        }
        if (avail < flen) {
            /* Make room for the rest at once: no repeated regrowth for a
             * large hand-over frame. */
            if (c->in_off > 0) {
                g_byte_array_remove_range(c->in, 0, (guint)c->in_off);
                c->in_off = 0;
            }
            break;
        }
        const uint8_t *frame = c->in->data + c->in_off;
        c->in_off += flen;
        loop->stats.frames_in++;
        if (!ep->detached && ep->ops)
            ep->ops->recv(ep->owner, c->key, frame, flen);
        if (c->closed || ep->detached)
            return false;
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
    qdb_loop *loop = c->ep->loop;
    size_t budget = READ_BUDGET;
    while (budget > 0 && !c->closed) {
        guint old = c->in->len;
        g_byte_array_set_size(c->in, old + READ_CHUNK);
        ssize_t r = recv(c->fd, c->in->data + old, READ_CHUNK, MSG_DONTWAIT);
        g_byte_array_set_size(c->in, old + (r > 0 ? (guint)r : 0));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == ECONNRESET)
                loop->stats.resets++;
            conn_lost(c);
            return;
        }
        if (r == 0) {
            conn_lost(c);
            return;
        }
        loop->stats.bytes_in += (uint64_t)r;
        budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
        if (!conn_deliver(c))
            return;
        if ((size_t)r < READ_CHUNK)
            return; /* drained for now; level-triggered epoll says if more came */
    }
}

static void conn_connected(loop_conn *c)
{
    qdb_loop *loop = c->ep->loop;
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
            loop->stats.refused++;
        conn_close(c, true);
        return;
    }
    c->connecting = false;
    conn_flush(c);
}

static void conn_event(loop_conn *c, uint32_t events)
{
    if (c->closed)
        return;
    if (c->connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            conn_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        conn_readable(c); /* reads the error or EOF and closes */
    if (!c->closed && (events & EPOLLOUT))
        conn_flush(c);
}

/* Open a connection from ep to dst.  NULL when the connect failed at once
 * (a notice is then raised, as a refused connect would later). */
static loop_conn *conn_open(qdb_loop_endpoint *ep, qdb_addr dst, int *fatal)
{
    qdb_loop *loop = ep->loop;
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
    if (ep->listen_fd >= 0 && ep->listen_addr.ip != 0 &&
        is_loopback(ep->listen_addr.ip) == is_loopback(dst.ip)) {
        struct sockaddr_in src;
        addr_to_sin((qdb_addr){.ip = ep->listen_addr.ip, .port = 0}, &src);
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
            loop->stats.refused++;
        close(fd);
        notice_raise(ep, dst);
        return NULL;
    }
    loop_conn *c = conn_new(ep, fd, dst, true);
    c->connecting = rc < 0;
    c->want_out = c->connecting;
    struct epoll_event ev = {.events = EPOLLIN | (c->connecting ? EPOLLOUT : 0),
                             .data.ptr = &c->src};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        *fatal = errno;
        conn_close(c, false);
        return NULL;
    }
    return c;
}

/* ---- the seams ----------------------------------------------------------------- */

static qdb_time_us clock_now(qdb_clock *clk)
{
    (void)clk;
    return mono_now();
}

static void clock_arm(qdb_clock *clk, qdb_time_us deadline)
{
    qdb_loop_endpoint *ep = clk->impl;
    if (ep->detached)
        return;
    timer_set(ep->loop, &ep->timer, deadline);
}

static int64_t clock_wall(qdb_clock *clk)
{
    (void)clk;
    return wall_now();
}

static int transport_send(qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len)
{
    qdb_loop_endpoint *ep = t->impl;
    char a[QDB_ADDR_STRLEN];
    if (ep->detached) {
        g_snprintf(t->errmsg, sizeof(t->errmsg), "endpoint is detached");
        return QDB_E_NOT_CONNECTED;
    }
    if (dst.ip == 0 || dst.port == 0) {
        g_snprintf(t->errmsg, sizeof(t->errmsg), "cannot send to %s", qdb_addr_format(dst, a));
        return QDB_E_INVALID_ARGUMENT;
    }
    if (len == 0 || len > QDB_FRAME_MAX + 4) {
        g_snprintf(t->errmsg, sizeof(t->errmsg), "frame of %zu bytes", len);
        return QDB_E_OVERSIZED;
    }
    uint64_t k = qdb_addr_key(dst);
    loop_conn *c = g_hash_table_lookup(ep->conns, &k);
    if (!c) {
        int fatal;
        c = conn_open(ep, dst, &fatal);
        if (!c) {
            if (fatal) {
                g_snprintf(t->errmsg, sizeof(t->errmsg), "cannot connect to %s: %s",
                           qdb_addr_format(dst, a), g_strerror(fatal));
                return QDB_E_CONNECTION_REFUSED;
            }
            return QDB_OK; /* refused at once: the notice is on its way */
        }
    }
    g_byte_array_append(c->out, frame, (guint)len);
    ep->loop->stats.frames_out++;
    flush_schedule(c);
    return QDB_OK;
}

static uint64_t random_next(qdb_random *r)
{
    qdb_loop_endpoint *ep = r->impl;
    uint64_t hi = g_rand_int(ep->rand);
    uint64_t lo = g_rand_int(ep->rand);
    return hi << 32 | lo;
}

static GRand *rand_from_os(void)
{
    guint32 seed[8];
    size_t got = 0;
    for (int tries = 0; got < sizeof(seed) && tries < 16; tries++) {
        ssize_t r = getrandom((uint8_t *)seed + got, sizeof(seed) - got, 0);
        if (r > 0)
            got += (size_t)r;
        else if (r < 0 && errno != EINTR)
            break;
    }
    if (got < sizeof(seed)) { /* no getrandom: time and pid, better than a constant */
        seed[0] ^= (guint32)mono_now();
        seed[1] ^= (guint32)wall_now();
        seed[2] ^= (guint32)getpid();
    }
    return g_rand_new_with_seed_array(seed, G_N_ELEMENTS(seed));
}

/* ---- endpoints ------------------------------------------------------------------ */

static qdb_loop_endpoint *ep_of_listen(loop_src *s)
{
    return (qdb_loop_endpoint *)((char *)s - offsetof(qdb_loop_endpoint, listen_src));
}

/* Out of descriptors: take one connection with the spare descriptor and
 * close it at once, so the listener does not stay readable forever. */
static void accept_shed(qdb_loop *loop, int lfd)
{
    if (loop->sparefd < 0)
        return;
    close(loop->sparefd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        close(fd);
    loop->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void listen_event(qdb_loop_endpoint *ep)
{
    qdb_loop *loop = ep->loop;
    for (int i = 0; i < ACCEPT_BUDGET && !ep->detached; i++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);
        int fd = accept4(ep->listen_fd, (struct sockaddr *)&sin, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                char a[QDB_ADDR_STRLEN];
                g_warning("accept on %s: %s; shedding a connection",
                          qdb_addr_format(ep->listen_addr, a), g_strerror(errno));
                accept_shed(loop, ep->listen_fd);
            }
            return;
        }
        if (sin.sin_family != AF_INET) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        loop_conn *c = conn_new(ep, fd, sin_to_addr(&sin), false);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->src};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(c, false);
    }
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
        g_snprintf(err, QDB_ERRMSG_SIZE, "cannot listen on %s: no port", qdb_addr_format(*addr, a));
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
    g_snprintf(err, QDB_ERRMSG_SIZE, "cannot listen on %s: %s", qdb_addr_format(*addr, a),
               g_strerror(e));
    if (fd >= 0)
        close(fd);
    errno = e;
    return -1;
}

qdb_loop_endpoint *qdb_loop_attach(qdb_loop *loop, const qdb_addr *listen,
                                   const qdb_inbound *ops, void *owner, char *err)
{
    g_return_val_if_fail(ops == NULL || ops->recv, NULL);
    int lfd = -1;
    if (listen) {
        lfd = listener_open(listen, err);
        if (lfd < 0)
            return NULL;
    }
    qdb_loop_endpoint *ep = g_new0(qdb_loop_endpoint, 1);
    ep->loop = loop;
    ep->ops = ops;
    ep->owner = owner;
    ep->listen_fd = lfd;
    ep->listen_src.kind = SRC_LISTEN;
    if (listen)
        ep->listen_addr = *listen;
    ep->conns = g_hash_table_new(g_int64_hash, g_int64_equal);
    ep->pending = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_queue_init(&ep->all_conns);
    ep->timer.idx = -1;
    ep->timer.ep = ep;
    ep->rand = rand_from_os();

    ep->clock = (qdb_clock){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                            .now = clock_now, .arm = clock_arm, .wall = clock_wall};
    ep->transport = (qdb_transport){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                                    .send = transport_send};
    ep->random = (qdb_random){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                              .next = random_next};

    if (lfd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ep->listen_src};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
            int e = errno;
            char a[QDB_ADDR_STRLEN];
            g_snprintf(err, QDB_ERRMSG_SIZE, "cannot watch %s: %s", qdb_addr_format(*listen, a),
                       g_strerror(e));
            close(lfd);
            g_hash_table_destroy(ep->conns);
            g_hash_table_destroy(ep->pending);
            g_rand_free(ep->rand);
            g_free(ep);
            errno = e;
            return NULL;
        }
    }
    ep->link.data = ep;
    g_queue_push_tail_link(&loop->endpoints, &ep->link);
    return ep;
}

static void ep_close_conns(qdb_loop_endpoint *ep)
{
    /* Bounded: every pass closes the head, which unlinks it. */
    while (ep->all_conns.head)
        conn_close(ep->all_conns.head->data, false);
}

void qdb_loop_endpoint_disconnect_all(qdb_loop_endpoint *ep)
{
    ep_close_conns(ep);
}

static void ep_free(qdb_loop_endpoint *ep)
{
    g_hash_table_destroy(ep->conns);
    g_hash_table_destroy(ep->pending);
    g_rand_free(ep->rand);
    g_free(ep);
}

static void graveyard_empty(qdb_loop *loop)
{
    for (guint i = 0; i < loop->dead_conns->len; i++)
        conn_free(loop->dead_conns->pdata[i]);
    g_ptr_array_set_size(loop->dead_conns, 0);
    for (guint i = 0; i < loop->dead_eps->len; i++)
        ep_free(loop->dead_eps->pdata[i]);
    g_ptr_array_set_size(loop->dead_eps, 0);
}

void qdb_loop_detach(qdb_loop *loop, qdb_loop_endpoint *ep)
{
    if (!ep || ep->detached)
        return;
    ep->detached = true;
    ep_close_conns(ep);
    if (ep->listen_fd >= 0) {
        close(ep->listen_fd);
        ep->listen_fd = -1;
    }
    heap_remove(loop, &ep->timer);
    notices_purge(loop, ep);
    g_queue_unlink(&loop->endpoints, &ep->link);
    g_ptr_array_add(loop->dead_eps, ep);
    if (!loop->in_run)
        graveyard_empty(loop);
}

void qdb_loop_endpoint_bind(qdb_loop_endpoint *ep, const qdb_inbound *ops, void *owner)
{
    g_return_if_fail(ops == NULL || ops->recv);
    ep->ops = ops;
    ep->owner = owner;
    ep->clock.data = ep->transport.data = ep->random.data = owner;
}

qdb_clock *qdb_loop_endpoint_clock(qdb_loop_endpoint *ep)
{
    return &ep->clock;
}

qdb_transport *qdb_loop_endpoint_transport(qdb_loop_endpoint *ep)
{
    return &ep->transport;
}

qdb_random *qdb_loop_endpoint_random(qdb_loop_endpoint *ep)
{
    return &ep->random;
}

size_t qdb_loop_endpoint_pending(const qdb_loop_endpoint *ep)
{
    size_t n = 0;
    for (GList *l = ep->all_conns.head; l; l = l->next) {
        const loop_conn *c = l->data;
        n += c->out->len - c->out_off;
        if (c->connecting && c->out->len == c->out_off)
            n++;
    }
    return n;
}

/* ---- the loop ---------------------------------------------------------------- */

qdb_loop *qdb_loop_new(char *err)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        g_snprintf(err, QDB_ERRMSG_SIZE, "epoll_create1: %s", g_strerror(errno));
        return NULL;
    }
    int wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd < 0) {
        g_snprintf(err, QDB_ERRMSG_SIZE, "eventfd: %s", g_strerror(errno));
        goto fail_epoll;
    }
    qdb_loop *loop = g_new0(qdb_loop, 1);
    loop->epfd = epfd;
    loop->wakefd = wakefd;
    loop->wake_src.kind = SRC_WAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &loop->wake_src};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) < 0) {
        g_snprintf(err, QDB_ERRMSG_SIZE, "epoll_ctl: %s", g_strerror(errno));
        g_free(loop);
        goto fail_eventfd;
    }
    loop->sparefd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    loop->heap = g_ptr_array_new();
    g_queue_init(&loop->notices);
    g_queue_init(&loop->flush);
    loop->dead_conns = g_ptr_array_new();
    loop->dead_eps = g_ptr_array_new();
    g_queue_init(&loop->endpoints);
    loop->watches = g_ptr_array_new_with_free_func(g_free);
    loop->everies = g_ptr_array_new_with_free_func(g_free);
    return loop;

fail_eventfd:
    close(wakefd);
fail_epoll:
    close(epfd);
    return NULL;
}

void qdb_loop_free(qdb_loop *loop)
{
    if (!loop)
        return;
    while (loop->endpoints.head) /* bounded: detach unlinks the head */
        qdb_loop_detach(loop, loop->endpoints.head->data);
    loop_notice *nt;
    while ((nt = g_queue_pop_head(&loop->notices)) != NULL)
        g_free(nt);
    g_assert(loop->flush.length == 0); /* closing every connection emptied it */
    graveyard_empty(loop);
    g_ptr_array_free(loop->dead_conns, TRUE);
    g_ptr_array_free(loop->dead_eps, TRUE);
    g_ptr_array_free(loop->watches, TRUE); /* the watched fds are the caller's */
    g_ptr_array_free(loop->everies, TRUE);
    g_ptr_array_free(loop->heap, TRUE);
    if (loop->sparefd >= 0)
        close(loop->sparefd);
    close(loop->wakefd);
    close(loop->epfd);
    g_free(loop);
}

/* Milliseconds until the earliest deadline, rounded up (a tick may come late,
 * never early), capped by the caller's timeout. */
static int wait_ms(qdb_loop *loop, int timeout_ms)
{
    if (loop->stop_requested || loop->notices.length > 0 || loop->flush.length > 0)
        return 0;
    if (loop->heap->len == 0)
        return timeout_ms;
    const loop_timer *t = loop->heap->pdata[0];
    qdb_time_us now = mono_now();
    if (t->when <= now)
        return 0;
    qdb_time_us d = (t->when - now + 999) / 1000;
    int ms = d > INT32_MAX ? INT32_MAX : (int)d;
    return timeout_ms < 0 || ms < timeout_ms ? ms : timeout_ms;
}

static void timers_run(qdb_loop *loop)
{
    qdb_time_us now = mono_now();
    uint64_t pass = loop->pass;
    /* Collect first: a callback that re-arms to a time already passed fires
     * on the next turn, so this phase always ends. */
    GPtrArray *due = NULL;
    while (loop->heap->len > 0) {
        loop_timer *t = loop->heap->pdata[0];
        if (t->when > now)
            break;
        heap_remove(loop, t);
        t->due_pass = pass;
        if (!due)
            due = g_ptr_array_new();
        g_ptr_array_add(due, t);
    }
    if (!due)
        return;
    for (guint i = 0; i < due->len; i++) {
        loop_timer *t = due->pdata[i];
        if (t->due_pass != pass)
            continue; /* re-armed or cancelled by an earlier callback */
        t->due_pass = 0;
        if (t->ep) {
            if (!t->ep->detached && t->ep->ops && t->ep->ops->tick)
                t->ep->ops->tick(t->ep->owner);
        } else {
            loop_every *e = t->every;
            qdb_time_us next = t->when + e->period;
            if (next <= now)
                next = now + e->period; /* we fell behind: skip, do not burst */
            timer_set(loop, t, next);
            e->fn(e->arg);
        }
    }
    g_ptr_array_free(due, TRUE);
}

static void wake_drain(qdb_loop *loop)
{
    uint64_t v;
    while (read(loop->wakefd, &v, sizeof(v)) > 0)
        ;
}

bool qdb_loop_run_once(qdb_loop *loop, int timeout_ms)
{
    g_return_val_if_fail(!loop->in_run, false);
    loop->in_run = true;
    loop->pass++;
    flush_all(loop); /* frames sent from outside the loop since the last turn */

    struct epoll_event evs[EVENTS_MAX];
    int n = epoll_wait(loop->epfd, evs, EVENTS_MAX, wait_ms(loop, timeout_ms));
    if (n < 0 && errno != EINTR) {
        g_warning("epoll_wait: %s", g_strerror(errno));
        n = 0;
    }
    for (int i = 0; i < n; i++) {
        loop_src *s = evs[i].data.ptr;
        switch (s->kind) {
        case SRC_WAKE:
            wake_drain(loop);
            break;
        case SRC_LISTEN: {
            qdb_loop_endpoint *ep = ep_of_listen(s);
            if (!ep->detached)
                listen_event(ep);
            break;
        }
        case SRC_CONN:
            conn_event((loop_conn *)s, evs[i].events);
            break;
        case SRC_WATCH: {
            loop_watch *w = (loop_watch *)s;
            w->fn(w->arg, w->fd);
            break;
        }
        }
    }
    timers_run(loop);
    notices_deliver(loop);
    flush_all(loop);
    graveyard_empty(loop);
    loop->in_run = false;
    if (loop->stop_requested) {
        loop->stop_requested = 0;
        wake_drain(loop);
        return false;
    }
    return true;
}

int qdb_loop_run(qdb_loop *loop)
{
    while (qdb_loop_run_once(loop, -1))
        ;
    return 0;
}

void qdb_loop_stop(qdb_loop *loop)
{
    /* Async-signal-safe: a flag and a write(). */
    loop->stop_requested = 1;
    uint64_t one = 1;
    ssize_t r = write(loop->wakefd, &one, sizeof(one));
    (void)r;
}

bool qdb_loop_watch_fd(qdb_loop *loop, int fd, void (*fn)(void *arg, int fd), void *arg)
{
    loop_watch *w = g_new0(loop_watch, 1);
    w->src.kind = SRC_WATCH;
    w->fd = fd;
    w->fn = fn;
    w->arg = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->src};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        g_free(w);
        return false;
    }
    g_ptr_array_add(loop->watches, w);
    return true;
}

void qdb_loop_every(qdb_loop *loop, qdb_time_us period_us, void (*fn)(void *arg), void *arg)
{
    loop_every *e = g_new0(loop_every, 1);
    e->period = period_us ? period_us : 1;
    e->fn = fn;
    e->arg = arg;
    e->timer.idx = -1;
    e->timer.every = e;
    g_ptr_array_add(loop->everies, e);
    timer_set(loop, &e->timer, mono_now() + e->period);
}

void qdb_loop_get_stats(const qdb_loop *loop, qdb_loop_stats *out)
{
    *out = loop->stats;
}

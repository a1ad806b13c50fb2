/* SPDX-License-Identifier: BSD-2-Clause */
/* The real loop's connections: TCP connect and accept, buffers, framing,
 * and unreachable notices -- the transport model of loop.h, without the
 * seams (loop.c wraps these in qdb_transport).
 *
 * Two objects:
 *  - loop_net, one per loop: what every endpoint's connections share (the
 *    poller, the flush list, the notice queue, the closed connections not
 *    yet freed, the statistics).
 *  - loop_peers, one per endpoint: its connections, keyed by address, its
 *    listener, and where its inbound events go (ops, owner).
 *
 * Sending: peers_send() queues the frame on the connection keyed dst (one
 * this endpoint opened to dst, or one a peer opened whose remote address is
 * dst), starting a non-blocking connect when there is none.  Nothing is
 * written then: the connection goes on the flush list and net_flush() writes
 * every queued byte it can, so a burst of small frames goes out in one
 * write() and sending never does I/O that could call back.  EPOLLOUT is asked
 * for only while a connection has bytes left or a connect in progress.
 *
 * Receiving: bytes read are cut into frames with qdb_frame_peek() and each
 * whole frame is delivered as ops->recv(owner, src = the connection's key).
 * A connection whose bytes are not a frame prefix is closed (bad_frames).
 * One socket gives at most READ_BUDGET bytes per turn (epoll reports it
 * again), and a listener accepts at most ACCEPT_BUDGET connections.
 *
 * Gone: when a connection a peer opened closes, ops->gone(owner, its key) is
 * called at once (the owner ends the client session bound to it).
 *
 * Unreachable: a refused connect, a reset or a closed connection with
 * frames queued or expected raises ops->unreachable(owner, dst) -- queued,
 * one per (endpoint, address) at a time, and delivered by net_notify() after
 * the callbacks of the turn, never from inside peers_send().
 *
 * Authentication: with p->tls set (before any connection), each connection
 * runs TLS 1.3-PSK over its socket (tls.h) and bytes are cut into frames
 * after decryption; a failed handshake closes it as a refusal
 * (auth_failures, a rate-limited log line).  Without, a peer whose first
 * bytes are TLS is refused the same way: it holds a key this side has not.
 *
 * Lifetime: a closed connection stays in memory until net_free_closed(),
 * because epoll events for it may still be waiting to be dispatched; it
 * leaves the epoll set before its descriptor is closed, so no later wait
 * reports it (poller.h).
 * Order: connections are looked up by key, never walked for anything that
 * reaches a frame; notices are delivered in the order they were raised.
 */
#ifndef QDB_LOOP_CONN_H
#define QDB_LOOP_CONN_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "loop.h"
#include "poller.h"
#include "tls.h"
#include "types.h"

typedef struct loop_net {
    loop_poller *poller;
    int sparefd;            /* /dev/null, given up to accept() and close() on EMFILE */
    GQueue notices;         /* loop_notice*, in the order they were raised */
    GQueue flush;           /* connections with bytes to write (their flush_link) */
    GPtrArray *closed;      /* closed connections, freed by net_free_closed() */
    qdb_loop_stats stats;
    /* limits (loop.h's qdb_loop_limits; the "limits" section of conn.c) */
    qdb_loop_limits lim;
    unsigned sessions;      /* accepted connections open */
    size_t granted;         /* bytes of lim.input_memory granted to unfinished frames */
    GQueue accepted;        /* accepted connections, for the idle sweep */
    GQueue holders;         /* connections holding a grant */
    GQueue waiting;         /* connections waiting for one, first come first */
} loop_net;

typedef struct loop_peers {
    loop_net *net;
    const qdb_inbound *ops; /* NULL: nothing bound, events are dropped */
    void *owner;
    bool closed;            /* peers_close() was called: nothing is delivered */
    loop_src listen_src;
    int listen_fd;          /* -1 for a client */
    qdb_addr listen_addr;
    GHashTable *conns;      /* &key64 -> connection; lookups only */
    GQueue all;             /* every open connection, indexed or not */
    GHashTable *pending;    /* key64 set: addresses with a notice queued */
    /* authentication (tls.h): NULL speaks plaintext and refuses TLS peers;
     * otherwise every connection is TLS 1.3-PSK and plaintext is refused */
    struct qdb_tls *tls;
    uint64_t auth_failures; /* handshakes failed, peers refused for the key */
    tls_ratelimit auth_log;
    qdb_addr recv_src;      /* while ops->recv runs: the frame's connection, */
    int recv_role;          /* and what its peer proved (qdb_peer_role) */
} loop_peers;

void net_init(loop_net *net, loop_poller *poller);
/* Every endpoint's peers must be closed first. */
void net_clear(loop_net *net);
/* True when a notice or a write waits: the loop must not block. */
bool net_busy(const loop_net *net);
/* Write what every connection on the flush list has queued. */
void net_flush(loop_net *net);
/* Deliver the notices raised before this call; those raised by the
 * callbacks wait for the next call, so an owner that keeps sending to a dead
 * address cannot spin here. */
void net_notify(loop_net *net);
void net_free_closed(loop_net *net);
/* Apply limits from now on (loop.h); the loop calls net_sweep() every
 * LOOP_SWEEP_US once any is set. */
void net_set_limits(loop_net *net, const qdb_loop_limits *lim);
#define LOOP_SWEEP_US QDB_US_PER_S
/* Close the idle and the stalled connections (see qdb_loop_limits). */
void net_sweep(loop_net *net, qdb_time_us now);

/* listen: bind and listen on it, and accept from the loop (NULL: connect
 * out only).  false and a message in err (QDB_ERRMSG_SIZE) naming the
 * address on failure, errno left set. */
bool peers_init(loop_peers *p, loop_net *net, const qdb_addr *listen, const qdb_inbound *ops,
                void *owner, char *err);
/* Close every connection and the listener, drop queued notices; nothing is
 * delivered afterwards.  The struct must stay valid until the current turn
 * ends (epoll events may still point at its listener). */
void peers_close(loop_peers *p);
void peers_free(loop_peers *p);

/* Queue a frame for dst (see above).  0, or an errno when no socket could
 * be made; a connect refused at once is 0, with a notice on its way. */
int peers_send(loop_peers *p, qdb_addr dst, const uint8_t *frame, size_t len);
/* Close every connection; peers see them close. */
void peers_disconnect_all(loop_peers *p);
/* Take fd, a connected non-blocking stream socket whose peer is `from`, as a
 * connection that peer opened: what the listener does with each accepted
 * socket (sessions counted, idle sweep, frame sizes, input memory), the
 * sessions cap aside (the listener checks it first).  false, fd closed, when
 * the poller refuses it.  fuzz/conn.c drives the framing and the limits
 * through it over a socketpair, with no listener. */
bool peers_adopt(loop_peers *p, int fd, qdb_addr from);

/* What an open connection holds of its input: a snapshot for the tests and
 * the fuzz target, which check the promises of qdb_loop_limits (loop.h)
 * from outside.  false when no connection is keyed `key`. */
#define LOOP_SMALL_FRAME (16 * 1024) /* frames read without a grant (loop.h) */
typedef struct peers_input_state {
    size_t held;   /* bytes received, not yet delivered nor dropped */
    size_t grant;  /* bytes of input_memory held for its unfinished frame */
    bool waiting;  /* not read: waits for a grant */
    bool out_full; /* not read: its peer does not take its replies */
} peers_input_state;
bool peers_input(const loop_peers *p, qdb_addr key, peers_input_state *out);

/* Bytes queued and not written, TLS records made of them included (a
 * connect in progress counts 1). */
size_t peers_pending(const loop_peers *p);
/* What the peer sending on src proved (qdb_peer_role): the connection of the
 * frame being delivered, else the one keyed src. */
int peers_role(const loop_peers *p, qdb_addr src);

#endif

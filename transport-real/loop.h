/* SPDX-License-Identifier: BSD-2-Clause */
/* The real world's event loop: epoll, TCP, the monotonic clock.
 *
 * It hosts endpoints -- a node in qdbd, a client core in libqdb, many client
 * cores in qdb-bench -- and gives each the env.h seams (clock, transport,
 * random), exactly as transport-sim/simnet.h does in the simulator.  The node
 * and client code cannot tell the two apart.
 *
 * Transport model
 *  - send(dst, frame): if the endpoint has a connection keyed dst (one it
 *    opened to dst, or one a peer opened to it whose remote address is dst)
 *    the frame is queued on it; otherwise a non-blocking connect to dst
 *    starts and frames queue until it completes.  Connections belong to one
 *    endpoint: two endpoints in one loop never share a socket (a node keys
 *    client sessions by connection).
 *  - Frames received on a connection are delivered as recv(src = the key of
 *    the connection).  Byte streams are cut into frames with
 *    qdb_frame_peek(); a connection that sends a bad frame is closed.
 *  - A refused connect is reported as unreachable(dst); a connection that
 *    worked and broke (reset, or closed by its peer) with frames queued or
 *    expected as reset(dst), or unreachable(dst) to an owner without reset
 *    (env.h) -- from the loop, after the current callback returns, never
 *    from inside send().
 *  - A listening endpoint (qdbd) accepts connections on its address.
 *  - With qdb_loop_endpoint_secure(), connections are TLS 1.3 with a key
 *    derived from the hive key (tls.h); transport->peer_role tells what the
 *    sender of a frame proved (env.h).
 * Clock: now() is CLOCK_MONOTONIC in microseconds; wall() is CLOCK_REALTIME;
 * arm() sets the endpoint's one deadline (replacing the earlier one) and the
 * loop calls tick() once it has passed.  Random: a GRand per endpoint seeded
 * from getrandom().
 *
 * The loop's cost per event does not grow with the number of connections:
 * epoll reports only ready sockets, and deadlines are in a small min-heap.
 * Single-threaded: every call from the thread that runs the loop.
 */
#ifndef QDB_LOOP_H
#define QDB_LOOP_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"
#include "types.h"

typedef struct qdb_loop qdb_loop;
typedef struct qdb_loop_endpoint qdb_loop_endpoint;
typedef struct qdb_tls qdb_tls; /* tls.h */

/* Callbacks (env.h's qdb_inbound) run from run_once(), one at a time; inside
 * one, anything here may be called (send, arm, attach, detach -- even of the
 * endpoint being called -- disconnect_all, stop) except run/run_once. */

/* NULL and a message in err (QDB_ERRMSG_SIZE) if epoll cannot be set up. */
qdb_loop *qdb_loop_new(char *err);
/* Closes every connection and listening socket; endpoints must be detached
 * first or are freed with it (their owners are not called). */
void qdb_loop_free(qdb_loop *loop);

/* An endpoint.  listen: bind and listen on *listen (NULL for a client, which
 * only connects out).  NULL and err on failure (address in use, not local,
 * permission): the message names the address and the reason, and errno is
 * left set (EADDRINUSE, EADDRNOTAVAIL, EACCES...).  ops is borrowed (it must
 * outlive the endpoint) and may be NULL until a core is bound; events with
 * nothing bound are dropped.  The seams' `data` is owner.  Outgoing connections of an endpoint listening on a
 * loopback address are bound to that address (port 0), so peers see it as
 * their source.  clock->arm(UINT64_MAX) disarms the wake-up. */
qdb_loop_endpoint *qdb_loop_attach(qdb_loop *loop, const qdb_addr *listen,
                                   const qdb_inbound *ops, void *owner, char *err);
/* Bind (or re-bind; NULL unbinds) what the endpoint's events go to. */
void qdb_loop_endpoint_bind(qdb_loop_endpoint *ep, const qdb_inbound *ops, void *owner);
void qdb_loop_detach(qdb_loop *loop, qdb_loop_endpoint *ep);
/* Authenticate every connection of the endpoint with TLS 1.3-PSK from the
 * hive key (tls.h; tls is borrowed and must outlive the endpoint), and
 * refuse plaintext peers; call right after attach, before any connection.
 * Without it the endpoint speaks plaintext and refuses TLS peers.  Either
 * way a refusal closes the connection (a connection we opened raises
 * unreachable) and counts in auth_failures. */
void qdb_loop_endpoint_secure(qdb_loop_endpoint *ep, qdb_tls *tls);
/* Connections of the endpoint refused for the hive key so far (a failed
 * handshake, a plaintext peer of a keyed endpoint, a TLS peer of a keyless
 * one): libqdb turns a failure during which this grew into
 * QDB_E_AUTHENTICATION. */
uint64_t qdb_loop_endpoint_auth_failures(const qdb_loop_endpoint *ep);
qdb_clock *qdb_loop_endpoint_clock(qdb_loop_endpoint *ep);
qdb_transport *qdb_loop_endpoint_transport(qdb_loop_endpoint *ep);
qdb_random *qdb_loop_endpoint_random(qdb_loop_endpoint *ep);
/* Close every connection of the endpoint (e.g. a client resetting its
 * sessions); peers see the connection close. */
void qdb_loop_endpoint_disconnect_all(qdb_loop_endpoint *ep);
/* Bytes queued on the endpoint's connections and not yet written (a connect
 * in progress counts 1): qdbd waits for 0 after its LEAVE so the last frames
 * reach the neighbours before it exits. */
size_t qdb_loop_endpoint_pending(const qdb_loop_endpoint *ep);

/* Run ready I/O, due deadlines and deferred notices once, waiting at most
 * timeout_ms for something to happen (-1: until something does; 0: poll).
 * Frames sent since the last turn are written first.  Returns false when the
 * loop has been stopped (qdb_loop_stop() since the last return; the request
 * is consumed, so a later call runs again).  Not re-entrant. */
bool qdb_loop_run_once(qdb_loop *loop, int timeout_ms);
/* Run until qdb_loop_stop().  Returns 0, or -1 on a fatal epoll error. */
int qdb_loop_run(qdb_loop *loop);
/* Make run/run_once return; safe to call from a callback or a signal
 * handler (it writes to an eventfd). */
void qdb_loop_stop(qdb_loop *loop);
/* Register fd for readability (e.g. a signalfd); fn runs from the loop. */
bool qdb_loop_watch_fd(qdb_loop *loop, int fd, void (*fn)(void *arg, int fd), void *arg);
/* Unregister fd, before closing it: fn is never called again (not even for
 * an event the loop took in the same turn, when called from a callback).
 * Closing a watched fd is not enough: epoll keeps watching its open file
 * while another descriptor holds it.  false when fd was not watched. */
bool qdb_loop_unwatch_fd(qdb_loop *loop, int fd);
/* A periodic callback (e.g. Berkeley DB checkpoints), every period_us. */
void qdb_loop_every(qdb_loop *loop, qdb_time_us period_us, void (*fn)(void *arg), void *arg);

/* Resource limits on what peers send (qdbd --sessions, --idle-timeout,
 * --max-content-size, --input-memory).  A zero field is no limit, the
 * default: libqdb and qdb-bench set none.
 *  - sessions: connections accepted and open at once, over every listening
 *    endpoint; one more is accepted and closed at once (sessions_refused).
 *    Connections an endpoint opens itself (to its peers) do not count, and
 *    peer_reserve more are taken from an address is_peer(is_peer_arg, from)
 *    names a node of the hive (so a flood of clients does not shut its
 *    neighbours out).
 *  - idle_timeout: an accepted connection that has brought no whole frame for
 *    this long and has nothing queued to it is closed (idle_closed).  A node
 *    of the hive that still uses its connection sends at least one frame per
 *    stabilization round, and one it stopped using is opened again on need;
 *    the connections this node opened are never timed out.
 *  - max_frame: the largest frame taken, length prefix included.  A larger
 *    one is never buffered: its bytes are read and dropped, and when it is a
 *    client request it is answered QDB_E_CONTENT_TOO_LARGE (oversized).
 *  - input_memory: bytes of unfinished frames held at once over every
 *    connection.  A frame larger than LOOP_SMALL_FRAME (16 KiB) is read only
 *    once its whole length is granted from this budget, first come first
 *    served; meanwhile its connection is not read (back-pressure, input_waits).
 *    When someone waits and a holder has sent nothing for two sweeps (about
 *    2 s), the largest such holder is closed (stalled_closed).  Raised to
 *    max_frame if smaller.  Frames up to 16 KiB need no grant: an unfinished
 *    one keeps only its own bytes, so an idle connection holds at most
 *    16 KiB (the one being read, a read()'s 64 KiB more).
 *  - An accepted connection with more than max_frame bytes queued to it and
 *    not taken by its peer is not read until half of them are: a client that
 *    asks and never reads cannot pile up replies.
 *  - handshake_timeout: on a secured endpoint (qdb_loop_endpoint_secure), an
 *    accepted connection whose TLS handshake is not done this long after it
 *    opened is closed (handshake_closed), whatever idle_timeout says.  Until
 *    then it counts against sessions like any other: a stranger without the
 *    key holds at most `sessions` descriptors, each for this long. */
typedef struct qdb_loop_limits {
    unsigned sessions, peer_reserve;
    bool (*is_peer)(void *is_peer_arg, qdb_addr from);
    void *is_peer_arg;
    qdb_time_us idle_timeout;
    size_t max_frame;
    size_t input_memory;
    qdb_time_us handshake_timeout;
} qdb_loop_limits;
void qdb_loop_set_limits(qdb_loop *loop, const qdb_loop_limits *lim);

typedef struct qdb_loop_stats {
    uint64_t connections_open, connections_total, frames_in, frames_out, bytes_in, bytes_out;
    uint64_t bad_frames, refused, resets;
    uint64_t auth_failures; /* connections refused for the hive key, either way */
    /* the limits above */
    uint64_t sessions_refused, idle_closed, oversized, input_waits, stalled_closed;
    uint64_t handshake_closed; /* handshake_timeout */
} qdb_loop_stats;
void qdb_loop_get_stats(const qdb_loop *loop, qdb_loop_stats *out);

#endif

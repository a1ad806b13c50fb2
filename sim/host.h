/* SPDX-License-Identifier: BSD-2-Clause */
/* A host: what carries the fixture's endpoints and runs its clock.
 *
 * The fixture (fixture.h) starts nodes and client cores on endpoints and
 * steps time; everything it asks of the network goes through this one small
 * interface, so the same fixture -- and the same tests -- run over two hosts,
 * as libevent runs one suite once per backend (its `eventops`):
 *   - the simulated network (qdb_host_sim_new, below): virtual time, exact
 *     and deterministic; partitions and faults through the simnet itself;
 *   - the real epoll loop over loopback TCP (tests/host_loop.h): real time,
 *     real sockets, real connection resets.  It lives with the tests so
 *     that nothing in sim/ reads the real clock and qdbsim does not link
 *     transport-real/.
 * A host is chosen when the fixture is created (qdb_fixture_new_on).
 *
 * Why a layer under the fixture rather than a second fixture: node life
 * cycle, storage, the ring in ID order and the clients are the same on both
 * hosts; only attach/detach, the seams and "let time pass" differ.  The
 * simulated host adds nothing to the simnet calls the fixture made before,
 * so qdbsim's trace hashes are those of the fixture without it.
 *
 * Seam shape (STYLE.md): a version, the backend's impl, an error buffer, the
 * methods; methods are only appended, under the version that brought them.
 * Callers use the wrappers below, which check the optional methods.
 */
#ifndef QDB_SIM_HOST_H
#define QDB_SIM_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include "env.h"
#include "transport-sim/simnet.h"
#include "types.h"

/* A backend's endpoint (qdb_sim_endpoint, qdb_loop_endpoint): opaque. */
typedef struct qdb_host_endpoint qdb_host_endpoint;

/* An endpoint's env.h seams, embedded in it: valid while it is attached. */
typedef struct qdb_host_seams {
    qdb_clock *clock;
    qdb_transport *transport;
    qdb_random *random;
} qdb_host_seams;

typedef struct qdb_host {
    int version;
    void *impl;
    char errmsg[QDB_ERRMSG_SIZE];
    /* version 1 */
    /* Does time mean virtual time (exact, repeatable)?  Tests that assert
     * exact times or use partitions run only where it does. */
    bool simulated;
    /* An endpoint at addr.  listen: nodes, reachable at addr; clients
     * (listen false) only connect out, and a host may then ignore addr.
     * seed: the endpoint's generator, on hosts that take one.  ops may be
     * bound later (bind).  NULL and errmsg on failure. */
    qdb_host_endpoint *(*attach)(struct qdb_host *h, qdb_addr addr, bool listen, uint64_t seed);
    /* What the endpoint's events go to from now on (NULL unbinds). */
    void (*bind)(struct qdb_host *h, qdb_host_endpoint *ep, const qdb_inbound *ops, void *owner);
    /* Crash or departure: no callback runs for ep any more, peers find
     * nobody there (frames in flight lost, or connections closed), and ep
     * and its seams are freed.  Free the core bound to it first. */
    void (*detach)(struct qdb_host *h, qdb_host_endpoint *ep);
    qdb_host_seams (*seams)(qdb_host_endpoint *ep);
    /* Bytes ep has sent that have not left the host yet (optional; NULL: a
     * frame leaves at send(), as on the simulated network). */
    size_t (*pending)(qdb_host_endpoint *ep);
    /* The address for node i (i from 0): one the host can listen on. */
    qdb_addr (*node_addr)(struct qdb_host *h, unsigned i);
    /* The host's clock: virtual time, or real time since the host was made. */
    qdb_time_us (*now)(struct qdb_host *h);
    /* One event (simulated) or one turn of the loop; false when nothing is
     * left to do (simulated only). */
    bool (*step)(struct qdb_host *h);
    /* Everything up to time t. */
    void (*run_until)(struct qdb_host *h, qdb_time_us t);
    /* Step until done(arg) (checked first, then after each step): true;
     * false once the clock passes limit (a real host stops there, a bound on
     * real time).  done may start, crash or reap nodes. */
    bool (*step_until)(struct qdb_host *h, bool (*done)(void *arg), void *arg, qdb_time_us limit);
    /* Free the host and every endpoint still attached, without callbacks. */
    void (*destroy)(struct qdb_host *h);
} qdb_host;

/* The simulated network as a host.  net is borrowed: it must outlive the
 * host.  Node i's address is 10.0.0.(i+1):2836. */
qdb_host *qdb_host_sim_new(qdb_simnet *net);

/* ---- wrappers ---------------------------------------------------------------- */

static inline size_t qdb_host_pending(const qdb_host *h, qdb_host_endpoint *ep)
{
    return h->pending ? h->pending(ep) : 0;
}

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* The real epoll loop as a fixture host: see host_loop.h. */
#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host_loop.h"
#include "transport-real/loop.h"

#define LOOP_NODE_BASE 0x7f000002u /* 127.0.0.2 */
/* Ports 12000..19999: below the kernel's ephemeral range (32768 up), apart
 * from tests/hive.sh's 20000..39999. */
#define PORT_LO 12000
#define PORT_SPAN 8000
#define PORT_TRIES 64
#define STEP_WAIT_MS 100

typedef struct host_loop {
    qdb_host host;
    qdb_loop *loop;
    unsigned n_nodes;
    uint16_t port;
    gint64 t0;
} host_loop;

static host_loop *hl(qdb_host *h)
{
    return h->impl;
}

static qdb_loop_endpoint *lep(qdb_host_endpoint *ep)
{
    return (qdb_loop_endpoint *)ep;
}

static qdb_host_endpoint *loop_attach(qdb_host *h, qdb_addr addr, bool listen, uint64_t seed)
{
    (void)seed;
    return (qdb_host_endpoint *)qdb_loop_attach(hl(h)->loop, listen ? &addr : NULL, NULL, NULL,
                                                h->errmsg);
}

static void loop_bind(qdb_host *h, qdb_host_endpoint *ep, const qdb_inbound *ops, void *owner)
{
    (void)h;
    qdb_loop_endpoint_bind(lep(ep), ops, owner);
}

static void loop_detach(qdb_host *h, qdb_host_endpoint *ep)
{
    qdb_loop_detach(hl(h)->loop, lep(ep));
}

static qdb_host_seams loop_seams(qdb_host_endpoint *ep)
{
    return (qdb_host_seams){qdb_loop_endpoint_clock(lep(ep)), qdb_loop_endpoint_transport(lep(ep)),
                            qdb_loop_endpoint_random(lep(ep))};
}

static size_t loop_pending(qdb_host_endpoint *ep)
{
    return qdb_loop_endpoint_pending(lep(ep));
}

static qdb_addr loop_node_addr(qdb_host *h, unsigned i)
{
    g_assert(i < hl(h)->n_nodes);
    return (qdb_addr){.ip = LOOP_NODE_BASE + i, .port = hl(h)->port};
}

static qdb_time_us loop_now(qdb_host *h)
{
    return (qdb_time_us)(g_get_monotonic_time() - hl(h)->t0);
}

static bool loop_step(qdb_host *h)
{
    qdb_loop_run_once(hl(h)->loop, STEP_WAIT_MS);
    return true;
}

/* One turn, waiting at most until t (rounded up to a millisecond). */
static void turn_until(qdb_host *h, qdb_time_us t)
{
    qdb_time_us now = loop_now(h);
    qdb_time_us ms = t > now ? (t - now + 999) / 1000 : 0;
    qdb_loop_run_once(hl(h)->loop, (int)MIN(ms, (qdb_time_us)INT_MAX));
}

static void loop_run_until(qdb_host *h, qdb_time_us t)
{
    while (loop_now(h) < t)
        turn_until(h, t);
}

static bool loop_step_until(qdb_host *h, bool (*done)(void *arg), void *arg, qdb_time_us limit)
{
    while (!done(arg)) {
        if (loop_now(h) >= limit)
            return false;
        turn_until(h, limit);
    }
    return true;
}

static void loop_destroy(qdb_host *h)
{
    qdb_loop_free(hl(h)->loop);
    g_free(hl(h));
}

/* Can every node address listen on port?  Bound and listening sockets are
 * closed at once: the nodes bind again with SO_REUSEADDR. */
static bool port_free(unsigned n_nodes, uint16_t port, int *err)
{
    for (unsigned i = 0; i < n_nodes; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            *err = errno;
            return false;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(LOOP_NODE_BASE + i)};
        bool ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(fd, 1) == 0;
        *err = ok ? 0 : errno;
        close(fd);
        if (!ok)
            return false;
    }
    return true;
}

/* The first port from a start derived from the pid that every node address
 * can listen on; 0 and err when none (or loopback aliases do not work). */
static uint16_t pick_port(unsigned n_nodes, char *err)
{
    unsigned port = PORT_LO + (unsigned)getpid() % PORT_SPAN;
    int e = 0;
    for (int tries = 0; tries < PORT_TRIES; tries++) {
        if (port_free(n_nodes, (uint16_t)port, &e))
            return (uint16_t)port;
        if (e != EADDRINUSE)
            break;
        port = PORT_LO + (port - PORT_LO + 101) % PORT_SPAN; /* 101: prime, walks them all */
    }
    g_snprintf(err, QDB_ERRMSG_SIZE, "no port for 127.0.0.2-%u (last tried %u): %s", n_nodes + 1,
               port, g_strerror(e));
    return 0;
}

qdb_host *qdb_host_loop_new(unsigned n_nodes, char *err)
{
    host_loop *x = g_new0(host_loop, 1);
    x->n_nodes = n_nodes;
    x->port = pick_port(n_nodes, err);
    if (!x->port)
        goto err_alloc;
    x->loop = qdb_loop_new(err);
    if (!x->loop)
        goto err_alloc;
    x->t0 = g_get_monotonic_time();
    x->host = (qdb_host){.version = 1, .impl = x, .simulated = false,
                         .attach = loop_attach, .bind = loop_bind, .detach = loop_detach,
                         .seams = loop_seams, .pending = loop_pending, .node_addr = loop_node_addr,
                         .now = loop_now, .step = loop_step, .run_until = loop_run_until,
                         .step_until = loop_step_until, .destroy = loop_destroy};
    return &x->host;
err_alloc:
    g_free(x);
    return NULL;
}

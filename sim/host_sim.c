/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulated network as a fixture host (host.h): every method is the
 * simnet call of the same name, so the fixture behaves -- and hashes -- as
 * it did when it called the simnet itself. */
#include <glib.h>

#include "error.h"
#include "host.h"

#define SIM_NODE_BASE 0x0a000001u /* 10.0.0.1 */

static qdb_sim_endpoint *sep(qdb_host_endpoint *ep)
{
    return (qdb_sim_endpoint *)ep;
}

static qdb_host_endpoint *sim_attach(qdb_host *h, qdb_addr addr, bool listen, uint64_t seed)
{
    (void)listen; /* every simulated endpoint is reachable at its address */
    qdb_sim_endpoint *ep = qdb_simnet_attach(h->impl, addr, NULL, NULL, seed);
    if (!ep)
        qdb_error_set(h->errmsg, QDB_E_INVALID_ARGUMENT, "address in use");
    return (qdb_host_endpoint *)ep;
}

static void sim_bind(qdb_host *h, qdb_host_endpoint *ep, const qdb_inbound *ops, void *owner)
{
    (void)h;
    qdb_sim_endpoint_bind(sep(ep), ops, owner);
}

static void sim_detach(qdb_host *h, qdb_host_endpoint *ep)
{
    qdb_simnet_detach(h->impl, sep(ep));
}

static qdb_host_seams sim_seams(qdb_host_endpoint *ep)
{
    return (qdb_host_seams){qdb_sim_endpoint_clock(sep(ep)), qdb_sim_endpoint_transport(sep(ep)),
                            qdb_sim_endpoint_random(sep(ep))};
}

static qdb_addr sim_node_addr(qdb_host *h, unsigned i)
{
    (void)h;
    return (qdb_addr){.ip = SIM_NODE_BASE + i, .port = QDB_DEFAULT_PORT};
}

static qdb_time_us sim_now(qdb_host *h)
{
    return qdb_simnet_now(h->impl);
}

static bool sim_step(qdb_host *h)
{
    return qdb_simnet_step(h->impl);
}

static void sim_run_until(qdb_host *h, qdb_time_us t)
{
    qdb_simnet_run_until(h->impl, t);
}

static bool sim_step_until(qdb_host *h, bool (*done)(void *arg), void *arg, qdb_time_us limit)
{
    return qdb_simnet_step_until(h->impl, done, arg, limit);
}

static void sim_destroy(qdb_host *h)
{
    g_free(h); /* the network is the caller's */
}

qdb_host *qdb_host_sim_new(qdb_simnet *net)
{
    qdb_host *h = g_new0(qdb_host, 1);
    *h = (qdb_host){.version = 1, .impl = net, .simulated = true,
                    .attach = sim_attach, .bind = sim_bind, .detach = sim_detach,
                    .seams = sim_seams, .node_addr = sim_node_addr, .now = sim_now, .step = sim_step,
                    .run_until = sim_run_until, .step_until = sim_step_until,
                    .destroy = sim_destroy};
    return h;
}

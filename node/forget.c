/* SPDX-License-Identifier: BSD-2-Clause */
/* Nodes gone for good (what K = 1 needs, and K > 1 after more than K - 1
 * holders failed together: ring.c, replica_covered_from).
 *
 * With one copy of each entry, the node that inherits a failed node's arc
 * answers "entry unavailable" to reads there (ring.c, ring_orphaned): the
 * entries may well exist on the failed node, which can come back with its
 * storage.  An operator who knows it will not come back says so:
 * `qdbsh forget_node ID` sends a FORGET for its ID to any node, which
 * passes it on, one routing hop at a time (ring_route), to the ID's
 * successor -- the node holding the orphaned arc.  That node drops the
 * mark: the arc is wholly its own, and what it does not hold is "not
 * found".  qdbd --dead-node-grace does the same by itself, that long after
 * the arc was inherited.
 *
 * The answer to the operator comes from the first node, once it applied the
 * FORGET or passed it on: forwarded FORGETs expect no answer, so one lost
 * on the way is lost, and the operator repeats the command (it is
 * idempotent).  A node refuses to forget itself, and refuses an ID that its
 * own routing still sends requests to: the node is alive, or its failure
 * was not noticed yet -- forgetting it then would change nothing anyway.
 * The last few IDs forgotten are remembered, so a node that inherits the
 * arc only later (its predecessor's failure not yet noticed when the FORGET
 * came) drops the mark as soon as it sets it.
 *
 * Forgetting is about the answers to reads, nothing else: a forgotten node
 * that does come back brings its entries with it, and the versions decide
 * against what was written meanwhile, as after any failure.
 *
 * Orphaned arcs and several failed nodes.  When nodes D1 < D2 that were
 * neighbours fail together, the arc inherited is (P, D2], both of theirs.
 * Forgetting D1 leaves (D1, D2] orphaned; forgetting D2 releases the whole
 * arc (the arc's lower failed nodes are not known by then), a cost the
 * operator of a K = 1 hive has accepted by forgetting. */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "node_internal.h"

static void remember(qdb_node *n, const qdb_id *id)
{
    for (unsigned i = 0; i < n->n_forgotten; i++)
        if (qdb_id_eq(&n->forgotten[i], id))
            return;
    if (n->n_forgotten < G_N_ELEMENTS(n->forgotten))
        n->n_forgotten++;
    else
        memmove(n->forgotten, n->forgotten + 1, sizeof n->forgotten - sizeof n->forgotten[0]);
    n->forgotten[n->n_forgotten - 1] = *id;
}

/* Release the part of the orphaned arc up to id, if id lies in it. */
static bool release(qdb_node *n, const qdb_id *id, const char *why)
{
    if (!n->has_orphan || !qdb_id_in_half(id, &n->orphan_lo, &n->orphan_hi))
        return false;
    char hex[QDB_ID_HEX + 1];
    qdb_id_to_hex(id, hex);
    if (qdb_id_eq(id, &n->orphan_hi))
        n->has_orphan = false;
    else
        n->orphan_lo = *id;
    node_log(n, 3, "forgot node %.16s (%s): its entries are no longer unavailable here", hex,
             why);
    return true;
}

void forget_orphaned(qdb_node *n)
{
    if (!n->has_orphan)
        return;
    n->orphan_since = node_now(n);
    for (unsigned i = 0; i < n->n_forgotten; i++)
        release(n, &n->forgotten[i], "forgotten earlier");
}

void forget_round(qdb_node *n)
{
    if (n->has_orphan && n->cfg.dead_node_grace &&
        node_now(n) - n->orphan_since >= n->cfg.dead_node_grace) {
        n->has_orphan = false;
        node_log(n, 3, "the failed node's arc is ours for good (--dead-node-grace)");
    }
}

/* The status the first node answers. */
static int forget(qdb_node *n, const qdb_msg *m)
{
    const qdb_id *id = &m->target;
    if (n->phase != PHASE_ACTIVE)
        return QDB_E_UNSTABLE;
    if (qdb_id_eq(id, &n->cfg.self.id))
        return QDB_E_REFUSED;
    if (release(n, id, "forget_node") || qdb_node_owns(n, id) || !n->has_pred) {
        /* Ours, or (no predecessor yet) perhaps about to be: remembered. */
        remember(n, id);
        return QDB_OK;
    }
    qdb_peer p;
    ring_route(n, id, NULL, 0, &p);
    if (qdb_id_eq(&p.id, id))
        return QDB_E_REFUSED; /* we would send it requests: not known dead */
    if (qdb_addr_eq(p.addr, n->cfg.self.addr) || m->hops >= QDB_NODE_MAX_HOPS)
        return QDB_E_UNSTABLE;
    remember(n, id);
    qdb_msg fwd = {.type = QDB_MSG_FORGET, .target = *id, .hops = m->hops + 1};
    node_send(n, p.addr, &fwd);
    return QDB_OK;
}

void forget_on_forget(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    int status = forget(n, m);
    if (m->hops == 0) { /* an operator's: answered */
        qdb_msg r = {.type = QDB_MSG_STOP_REPLY, .rpc = m->rpc, .status = status};
        node_send(n, src, &r);
    }
}

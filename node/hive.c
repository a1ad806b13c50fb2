/* SPDX-License-Identifier: BSD-2-Clause */
/* Hive-wide settings: values every node of a hive must share (the
 * replication factor K, and whether REMOVE_ALL and STOP are enabled).  The node that creates the hive fixes them; every
 * STABILIZE_REPLY carries them, so the successor a joining node confirms
 * before adopting it (ring.c, RPC_JOIN_CONFIRM) is also the one that tells
 * it the hive's settings.  A node without an opinion adopts them; one whose
 * configuration asks for another value is refused before it takes any part
 * of the ring, and stops: two nodes placing copies differently would each
 * think the other's copies missing.
 *
 * A default value travels as no bytes at all (codec.h), so a hive with the
 * defaults sends exactly the frames it sent before settings existed. */
#define G_LOG_DOMAIN "qdb-node"

#include <stdarg.h>

#include "node_internal.h"

static void log_settings(const qdb_node *n)
{
    node_log(n, 3, "hive settings: replication %u, remove_all %s, stop %s", n->replication,
             n->purge_all_enabled ? "enabled" : "disabled",
             n->stop_enabled ? "enabled" : "disabled");
}

void hive_create(qdb_node *n)
{
    n->replication = n->cfg.replication ? n->cfg.replication : QDB_DEFAULT_REPLICATION;
    n->purge_all_enabled = n->cfg.enable_purge_all;
    n->stop_enabled = n->cfg.enable_stop;
    log_settings(n);
}

void hive_describe(const qdb_node *n, qdb_msg *reply)
{
    reply->replication = n->replication > 1 ? n->replication : 0;
    /* Off travels as no bits: a hive with the defaults sends the bytes it
     * always did. */
    if (n->purge_all_enabled)
        reply->flags |= QDB_STABILIZE_PURGE_ALL;
    if (n->stop_enabled)
        reply->flags |= QDB_STABILIZE_STOP;
}

bool hive_refuse(qdb_node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_free(n->refusal);
    n->refusal = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    node_log(n, 1, "join refused: %s", n->refusal);
    n->phase = PHASE_LEFT; /* answers nothing, sends nothing */
    return false;
}

bool hive_join(qdb_node *n, qdb_addr from, const qdb_msg *reply)
{
    unsigned k = reply->replication ? reply->replication : 1;
    char a[QDB_ADDR_STRLEN];
    qdb_addr_format(from, a);
    if (n->cfg.replication && n->cfg.replication != k)
        return hive_refuse(n, "the hive (%s) keeps %u cop%s of each entry, this node was started "
                      "with --replication=%u: restart it with --replication=%u or without it",
                      a, k, k == 1 ? "y" : "ies", n->cfg.replication, k);
    if (k > n->cfg.succlist_len + 1)
        return hive_refuse(n, "the hive (%s) keeps %u copies of each entry, more than this node's "
                      "successor list (%u) can place", a, k, n->cfg.succlist_len);
    bool purge = reply->flags & QDB_STABILIZE_PURGE_ALL, stop = reply->flags & QDB_STABILIZE_STOP;
    /* Enabling is an opinion; not enabling is none (the hive's is taken). */
    if (n->cfg.enable_purge_all && !purge)
        return hive_refuse(n, "the hive (%s) does not enable remove_all, this node was started with "
                      "--enable-purge-all: restart it without it (the hive's first node decides)",
                      a);
    if (n->cfg.enable_stop && !stop)
        return hive_refuse(n, "the hive (%s) does not enable stop_node, this node was started with "
                      "--enable-stop: restart it without it (the hive's first node decides)", a);
    n->replication = k;
    n->purge_all_enabled = purge;
    n->stop_enabled = stop;
    log_settings(n);
    return true;
}

unsigned qdb_node_replication(const qdb_node *n)
{
    return n->replication;
}

const char *qdb_node_refusal(const qdb_node *n)
{
    return n->refusal;
}

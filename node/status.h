/* SPDX-License-Identifier: BSD-2-Clause */
/* What a node tells an operator about itself: the node_status JSON (and its
 * node_config and node_topology parts) and the Prometheus metrics text.
 *
 * One builder serves every consumer: the STATUS wire reply (qdbsh
 * node_status, libqdb's qdb_node_status), qdbd's /status.json and the
 * status page, which all show the same object.
 *
 * The JSON is compact, built with GString from fixed keys, numbers, IDs as
 * 64 hex digits and addresses as "a.b.c.d:port": no value is free text, so
 * nothing ever needs escaping.  64-bit values that JavaScript could round
 * (the incarnation) are hex strings.  Its size is bounded by construction
 * (at most QDB_SUCCLIST_MAX successors and QDB_FINGER_WINDOW fingers): well
 * under QDB_STATUS_JSON_MAX, which the codec enforces.
 *
 * node_status (QDB_STATUS_NODE):
 *   {"id","address","incarnation","state":"joining|active|leaving|left",
 *    "stable","uptime_ms","entries","bytes","bytes_exact","memory",
 *    "predecessor":PEER|null,"successors":[PEER...],
 *    "fingers":[{"bit":i,"id","address"}...]  (distinct fingers from bit
 *      QDB_FINGER_LO up; lower fingers are the successor),
 *    "counters":{...qdb_node_stats...,"requests":{"put":{"ok":n,...},...}},
 *    "config":{...}, "hive":{...}}
 * node_config (QDB_STATUS_CONFIG): {"id","address","config":{...},"hive":{...}}
 * node_topology (QDB_STATUS_TOPOLOGY): {"id","address","stable",
 *    "predecessor","successors","fingers"}
 *
 * "bytes" is the size of the records held (header and content, before
 * compression), summed by a scan of the store: O(entries), so it stops after
 * QDB_STATUS_SCAN_MAX records and extrapolates ("bytes_exact": false).
 *
 * Determinism: reads only the node and its seams (the uptime comes from the
 * clock seam); nothing here changes the node's behaviour.
 */
#ifndef QDB_STATUS_H
#define QDB_STATUS_H

#include <glib.h>

#include "node.h"

#define QDB_STATUS_SCAN_MAX QDB_DEFAULT_STATUS_SCAN_MAX

/* Append the JSON for what (QDB_STATUS_NODE, _CONFIG or _TOPOLOGY; codec.h)
 * to out. */
void qdb_node_status_json(const qdb_node *n, unsigned what, GString *out);

/* Append the node's metrics in the Prometheus text exposition format
 * (version 0.0.4): # HELP and # TYPE lines, then samples, every name
 * prefixed qdb_. */
void qdb_node_metrics(const qdb_node *n, GString *out);

/* One metric of the exposition format: its HELP and TYPE lines and one
 * unlabelled sample (hosts append their own, e.g. qdbd's connections). */
void qdb_metric(GString *out, const char *name, const char *type, const char *help,
                uint64_t value);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbd's status page over HTTP, served with libmicrohttpd (qdbd --http).
 *
 *   GET /             an HTML page: an SVG picture of the ring as this node
 *                     sees it (nodes on a circle at their ID's angle, its own
 *                     arc, its successors and fingers), redrawn every 3 s
 *                     from /status.json by a small inline script; no
 *                     external assets
 *   GET /status.json  the node_status object (node/status.h)
 *   GET /metrics      the Prometheus text exposition format: the node's
 *                     counters (node/status.h) and the loop's connections
 *   anything else     404; methods other than GET and HEAD: 405
 *
 * Threads.  MHD runs in its own thread (one thread polls every HTTP
 * connection), and that thread never touches the node: the node belongs to
 * the loop thread.  When a request needs data older than
 * QDBD_DEFAULT_HTTP_FRESH_US, the HTTP thread asks the loop for a new
 * snapshot through an eventfd the loop watches, and waits for it at most
 * QDBD_DEFAULT_HTTP_WAIT_US (then serves the older one).  The loop builds the
 * snapshot (status JSON and metrics text) between two events, as it would
 * answer any request, and hands it over under a mutex.  So HTTP never
 * blocks the loop, and nobody pays for snapshots while nobody looks.
 * (The alternative, MHD's external select mode with its descriptors in our
 * epoll, needs write-readiness watches and per-turn re-registration that
 * loop.h does not offer.)
 *
 * Bounds (node/defaults.h): at most 64 connections, 8 from one address,
 * closed after 10 s idle, 32 KiB of memory each (which caps a request's
 * headers); request bodies are refused.
 */
#ifndef QDB_HTTP_H
#define QDB_HTTP_H

#include "node/node.h"
#include "transport-real/loop.h"

typedef struct qdb_http qdb_http;

/* Listen on addr and serve node's pages.  NULL and a message in err
 * (QDB_ERRMSG_SIZE bytes) when the address cannot be used.  Call from the
 * loop's thread; the node and the loop must outlive the server. */
qdb_http *qdb_http_start(qdb_loop *loop, qdb_node *node, const qdb_addr *addr, char *err);
/* Close every HTTP connection and stop the thread.  Call once the loop no
 * longer runs. */
void qdb_http_stop(qdb_http *h);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* The real epoll loop (transport-real/loop.h) as a fixture host
 * (sim/host.h), so the node suite runs over real loopback sockets as well
 * as over the simulated network.
 *
 * Addresses.  Node i listens on 127.0.0.(i+2), every node on one port: a
 * port derived from the process id, probed free on all n_nodes addresses
 * (bind and listen, then close) and moved on to another one when any is in
 * use, so test programs running side by side do not collide.  Only
 * loopback is touched.  Clients and raw endpoints only connect out (from
 * 127.0.0.1); the address given at attach is ignored for them.
 *
 * Time.  now() is CLOCK_MONOTONIC in microseconds since the host was made;
 * step is one turn of the loop (waiting at most STEP_WAIT for something to
 * happen); run_until and step_until run turns until the clock passes their
 * time, so every wait is bounded in real time.  Endpoint seeds are ignored
 * (the loop seeds each endpoint's generator from getrandom()).
 *
 * A crash is qdb_loop_detach: the node's connections and its listening
 * socket close, so peers see a reset or a refused connect.  A restart
 * listens again on the same address (SO_REUSEADDR).
 *
 * Not simulated: no partitions, no exact times. */
#ifndef QDB_TESTS_HOST_LOOP_H
#define QDB_TESTS_HOST_LOOP_H

#include "sim/host.h"

/* NULL and a message in err (QDB_ERRMSG_SIZE) when epoll cannot be set up
 * or no port is free on the loopback addresses (the caller skips). */
qdb_host *qdb_host_loop_new(unsigned n_nodes, char *err);

#endif

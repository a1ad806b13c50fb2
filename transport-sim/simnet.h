/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulated world's substrate: one virtual clock, one event queue and a
 * virtual network with faults, hosting "endpoints" (a node or a client) at
 * qdb_addr addresses and giving each the env.h seams (clock, transport,
 * random).  It knows nothing about Chord: sim/ builds nodes and clients on
 * top of it.
 *
 * Determinism.  Everything here is single-threaded and driven only by the
 * configuration seed, the endpoints' seeds and the calls made to it: no wall
 * clock, no real randomness, no environment, and no pointer value or hash
 * table order reaches an event, a time or the trace.  The event order is
 * (virtual time, sequence number), the sequence being taken when an event is
 * scheduled (eventq.h).
 *
 * Callbacks.  An endpoint's ops and world callbacks (qdb_simnet_at) run from
 * qdb_simnet_step() and friends, one at a time, never from inside another
 * call into this module (send() never calls back).  Inside a callback any
 * function here may be called -- send, arm, attach, detach (even of the
 * endpoint being called), at, partitions -- except the run functions
 * (step, run_until, step_until), which must not be re-entered.
 *
 * The model, in short:
 *  - Latency of a frame from A to B = (base(A,B) + jitter) * slow(A) * slow(B)
 *    [+ reorder delay].  base(A,B) = latency_min + Exp(latency_mean), drawn
 *    from a hash of (seed, {A,B}) -- one value per unordered pair, so a link
 *    has the same base both ways and no per-link state is stored.  jitter is
 *    uniform in [0, jitter) from the world generator.  With jitter 0 and no
 *    reordering a link is FIFO (equal delays, ties broken by sequence) as long
 *    as neither end's slowness changes.
 *  - Faults, drawn from the world generator at send time: loss (the frame
 *    vanishes), dup (a second copy arrives one more link latency after the
 *    first), reorder (extra delay uniform in [0, reorder_window)).
 *  - Partitions are checked when a frame is sent (a frame already in flight
 *    gets through): one-way blocks between two addresses, and groups --
 *    frames between addresses of two different non-zero groups are dropped;
 *    group 0 talks to everyone.  Groups give symmetric splits, blocks give
 *    one-way ones.  A partitioned sender learns nothing (no reset crosses a
 *    partition).
 *  - Sending to an address with no endpoint (never attached, or detached)
 *    makes the sender's ops->unreachable(dst) run after refused_delay, as a
 *    TCP reset would (a crashed PROCESS: its host's kernel still answers);
 *    unless the sender is detached by then.  A crashed or cut-off HOST is
 *    silence instead (qdb_simnet_set_host_down): frames to or from it
 *    vanish and nobody is told -- senders learn only by their timeouts.
 *  - Per-address settings (group, blocks, slowness, clock drift) belong to
 *    the address -- the machine -- and survive detach and re-attach; they may
 *    be set before anything is attached there.
 */
#ifndef QDB_SIMNET_H
#define QDB_SIMNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "env.h"
#include "types.h"

/* "No time": returned by qdb_simnet_next_time() on an empty queue; passed to
 * clock->arm() it disarms the endpoint's wake-up. */
#define QDB_SIMNET_NEVER UINT64_MAX
/* refused_delay value meaning "one round trip on the link" (the default). */
#define QDB_SIMNET_REFUSED_RTT UINT64_MAX

typedef struct qdb_simnet qdb_simnet;
typedef struct qdb_sim_endpoint qdb_sim_endpoint;

typedef struct qdb_simnet_config {
    uint64_t seed;               /* world generator and link latencies */
    qdb_time_us latency_mean;    /* mean of the exponential part; default 50 ms */
    qdb_time_us latency_min;     /* added to every link's base; default 0 */
    qdb_time_us jitter;          /* per-frame uniform [0, jitter); default 0 */
    double loss, dup, reorder;   /* probabilities per frame; default 0 */
    qdb_time_us reorder_window;  /* default 200 ms */
    /* How long until a sender learns that an address has no endpoint.
     * Default QDB_SIMNET_REFUSED_RTT: twice the frame's link latency, the
     * time a SYN takes to go and its RST to come back. */
    qdb_time_us refused_delay;
    /* What clock->wall() returns when the endpoint's clock reads 0.
     * Default 1767225600000000 (2026-01-01T00:00:00Z). */
    int64_t wall_epoch_us;
} qdb_simnet_config;

/* Fill every field with its default (seed 0). */
void qdb_simnet_config_defaults(qdb_simnet_config *cfg);

/* cfg NULL: the defaults.  The configuration is copied.  Virtual time starts
 * at 0. */
qdb_simnet *qdb_simnet_new(const qdb_simnet_config *cfg);
/* Frees the world: queued events, frames in flight and every endpoint, still
 * attached or not, without calling any callback.  Owners must not use their
 * seams afterwards. */
void qdb_simnet_free(qdb_simnet *net);

/* ---- endpoints -------------------------------------------------------------- */


/* Attach an endpoint at addr.  NULL when addr is null (0.0.0.0:0) or already
 * has an endpoint.  ops (env.h's inbound table: qdb_node_inbound,
 * qdb_client_core_inbound, or a test's own) is borrowed and must outlive the
 * endpoint; owner is passed to every callback and stored as the seams'
 * `data`.  ops may be NULL and bound later (a core is usually created from
 * the endpoint's seams, then bound): until then every event for the endpoint
 * is processed and hashed, and dropped.  rng_seed seeds
 * the endpoint's own generator (its random seam), independent of the world's.
 * The endpoint's clock reads the current virtual time (plus drift from now
 * on, if the address has some).  Frames sent to addr before this call were
 * bound to no endpoint and are never delivered here. */
qdb_sim_endpoint *qdb_simnet_attach(qdb_simnet *net, qdb_addr addr,
                                    const qdb_inbound *ops, void *owner,
                                    uint64_t rng_seed);
/* Bind (or re-bind; NULL unbinds) what the endpoint's events are delivered
 * to, from now on. */
void qdb_sim_endpoint_bind(qdb_sim_endpoint *ep, const qdb_inbound *ops, void *owner);
/* Crash or departure.  From now on no callback runs for this endpoint: its
 * wake-up and every frame in flight TO it are dropped (counted in
 * dropped_dead), even if another endpoint attaches at the same address later;
 * frames it already sent stay in flight.  Later sends to the address get the
 * refused treatment.
 * Lifetime: the endpoint and its seams are freed here, except when detach is
 * called from inside one of this endpoint's own callbacks, where they stay
 * valid -- inert: send() fails with QDB_E_NOT_CONNECTED, arm() does nothing --
 * until that callback returns.  So free the owner's node first, or detach
 * from within its callback and free it before returning. */
void qdb_simnet_detach(qdb_simnet *net, qdb_sim_endpoint *ep);
/* The endpoint attached at addr now, or NULL. */
qdb_sim_endpoint *qdb_simnet_lookup(qdb_simnet *net, qdb_addr addr);

/* The seams, embedded in the endpoint (valid as long as it is, see detach).
 *
 * clock: now() is the endpoint's local clock: virtual time, shifted by clock
 *   jumps and scaled by drift since they were set (monotonic, never goes back).
 *   arm(deadline) sets the one wake-up, replacing any earlier one; deadline is
 *   on the local clock; QDB_SIMNET_NEVER disarms.  tick runs once, at the
 *   first virtual time where the local clock reads >= deadline (a deadline
 *   already past fires at the current virtual time, after the events already
 *   queued for it, never from inside arm()).  A slow address stretches the
 *   wait: fire = arm time + (that time - arm time) * slow.  Among events at the
 *   same virtual time, a tick is ordered by the moment arm() was called.
 *   wall() = wall_epoch_us + now().
 * transport: send() copies the frame and returns 0, or QDB_E_INVALID_ARGUMENT
 *   for a null address, QDB_E_OVERSIZED beyond 4 GiB, QDB_E_NOT_CONNECTED on
 *   a detached endpoint (errmsg set).  Never calls back.
 * random: next() gives 64 bits from the endpoint's GRand, seeded with
 *   rng_seed, through qdb_rand_u64().  The GRand is created at the first
 *   next(): endpoints that never draw cost no MT state. */
qdb_clock *qdb_sim_endpoint_clock(qdb_sim_endpoint *ep);
qdb_transport *qdb_sim_endpoint_transport(qdb_sim_endpoint *ep);
qdb_random *qdb_sim_endpoint_random(qdb_sim_endpoint *ep);
qdb_addr qdb_sim_endpoint_addr(const qdb_sim_endpoint *ep);
void *qdb_sim_endpoint_owner(const qdb_sim_endpoint *ep);

/* ---- faults ------------------------------------------------------------------ */

/* Probabilities in [0, 1] (clamped), for frames sent from now on. */
void qdb_simnet_set_loss(qdb_simnet *net, double p);
void qdb_simnet_set_dup(qdb_simnet *net, double p);
void qdb_simnet_set_reorder(qdb_simnet *net, double p, qdb_time_us window);

/* One-way: frames from `from` to `to` are dropped until unblocked.
 * Idempotent.  Block both ways for a symmetric cut between two addresses. */
void qdb_simnet_block(qdb_simnet *net, qdb_addr from, qdb_addr to);
void qdb_simnet_unblock(qdb_simnet *net, qdb_addr from, qdb_addr to);
/* Put addr in a group (0: none, talks to everyone).  Frames between two
 * different non-zero groups are dropped both ways. */
void qdb_simnet_set_group(qdb_simnet *net, qdb_addr addr, int group);
/* A host that is down (powered off, or cut from the network): from now on
 * every frame sent to or from addr is dropped (counted in dropped_host)
 * without an unreachable notice, whether or not an endpoint is attached
 * there; frames already in flight still arrive, as with partitions.  Up
 * again with down = false.  Like the other per-address settings it survives
 * detach and re-attach, and heal_all leaves it alone (a host comes back by
 * itself, not when the network heals). */
void qdb_simnet_set_host_down(qdb_simnet *net, qdb_addr addr, bool down);
bool qdb_simnet_host_down(qdb_simnet *net, qdb_addr addr);
/* Remove every block and put every address back in group 0. */
void qdb_simnet_heal_all(qdb_simnet *net);
/* Would a frame sent now from `from` to `to` be dropped by a partition? */
bool qdb_simnet_is_blocked(qdb_simnet *net, qdb_addr from, qdb_addr to);

/* at's connection to peer breaks while both live, as when peer closes an
 * idle connection or the network resets it: the endpoint at (if attached)
 * is told now, through ops->reset (ops->unreachable if it has none), in
 * the event kind of an unreachable notice; peer is told nothing.  Frames
 * in flight still arrive. */
void qdb_simnet_reset(qdb_simnet *net, qdb_addr at, qdb_addr peer);

/* A slow machine: latency of every frame it sends or receives is multiplied
 * by factor, and so is every wait of its wake-up (see the clock seam).
 * factor > 0 (1 = normal), kept to 1/1000.  Applies to frames sent and
 * wake-ups armed from now on, and re-times the wake-up armed now. */
void qdb_simnet_set_slow(qdb_simnet *net, qdb_addr addr, double factor);
/* Clock drift in parts per million (> -1000000): the local clock advances
 * (1 + ppm/1e6) us per virtual us, from now on (the clock stays continuous).
 * The armed wake-up is re-timed so it still fires when the local clock reaches
 * its deadline. */
void qdb_simnet_set_drift(qdb_simnet *net, qdb_addr addr, int32_t ppm);
/* Step the clock of the endpoint attached at addr forward by delta (a VM
 * resumed, a clock corrected): now() jumps, a wake-up whose deadline is
 * passed fires at once.  False when no endpoint is attached there. */
bool qdb_simnet_clock_jump(qdb_simnet *net, qdb_addr addr, qdb_time_us delta);

/* ---- running ----------------------------------------------------------------- */

qdb_time_us qdb_simnet_now(const qdb_simnet *net);
/* Virtual time of the next event step() would process; QDB_SIMNET_NEVER when
 * none.  Has no effect on behaviour (it may tidy the queue). */
qdb_time_us qdb_simnet_next_time(qdb_simnet *net);
/* Advance the clock to the next event and process it (deliver a frame, fire a
 * wake-up, report unreachable, run a world callback).  False when the queue is
 * empty, or when the hash-log check found a divergence (the diverging event
 * is not processed). */
bool qdb_simnet_step(qdb_simnet *net);
/* Process every event with time <= t, then the clock reads t (if it read
 * less).  On a divergence it stops, and the clock stays at that event. */
void qdb_simnet_run_until(qdb_simnet *net, qdb_time_us t);
/* Step until done(arg) is true (checked before the first step and after each
 * one): true.  False when no event is left at or before `limit` (the clock
 * then reads limit), or when a divergence stopped the run. */
bool qdb_simnet_step_until(qdb_simnet *net, bool (*done)(void *arg), void *arg,
                           qdb_time_us limit);
/* Run fn(arg) at virtual time t (a time in the past means now), ordered with
 * every other event by (time, sequence): scenario actions, oracle checks. */
void qdb_simnet_at(qdb_simnet *net, qdb_time_us t, void (*fn)(void *arg), void *arg);

/* ---- trace hash and hash log ------------------------------------------------
 * SHA-256 over every processed event, fed in a fixed big-endian layout:
 *   frame:       kind 1, time(8), src ip(4) port(2), dst ip(4) port(2), len(4), bytes
 *   tick:        kind 2, time, endpoint address
 *   unreachable: kind 3, time, dead address, notified address (a reset too)
 *   callback:    kind 4, time
 *   trace_add:   kind 5, time, len(4), bytes
 * Frames dropped (loss, partition, dead endpoint) are not events. */
void qdb_simnet_trace_add(qdb_simnet *net, const void *data, size_t len);
/* First 8 bytes of the current digest, 16 lower-case hex digits and NUL. */
void qdb_simnet_trace_hex(qdb_simnet *net, char out[17]);
/* The whole current digest. */
void qdb_simnet_trace_digest(qdb_simnet *net, uint8_t out[32]);

/* From now on, write one line per hashed item (event or trace_add) to f:
 *   "<n> <time_us> <kind> <src> <dst> <hash16>\n"
 * n counts from 1, kind is frame|tick|unreach|call|add, src/dst are
 * "a.b.c.d:port" or "-", hash16 is the running digest after the item.  f is
 * borrowed; NULL stops.  Start it before the first event to compare runs. */
void qdb_simnet_hash_log_write(qdb_simnet *net, FILE *f);
/* From now on, compare each hashed item with the next line of f (written by
 * qdb_simnet_hash_log_write in a run started the same way).  On the first
 * difference, or when f ends, the run stops: step() returns false and
 * qdb_simnet_diverged() describes it.  NULL stops checking. */
void qdb_simnet_hash_log_check(qdb_simnet *net, FILE *f);
/* NULL when no divergence was found; otherwise a description with the
 * expected and the actual line, which the caller frees with g_free(). */
char *qdb_simnet_diverged(const qdb_simnet *net);

/* ---- statistics ---------------------------------------------------------------- */

typedef struct qdb_simnet_stats {
    uint64_t events;            /* processed: frames + ticks + unreachable + callbacks */
    uint64_t frames_sent;       /* send() calls that returned 0 */
    uint64_t frames_delivered;  /* recv() calls, duplicates included */
    uint64_t dropped_loss;
    uint64_t dropped_partition;
    uint64_t dropped_host;      /* to or from a host that is down: silence */
    uint64_t dropped_dead;      /* in flight to an endpoint when it was detached */
    uint64_t duplicates;        /* extra copies scheduled */
    uint64_t refused;           /* sends to an address with no endpoint */
    uint64_t unreachable;       /* unreachable notices delivered */
    uint64_t ticks;
    uint64_t callbacks;
    uint64_t endpoints;         /* attached now */
    uint64_t queued;            /* entries in the event queue, stale included */
} qdb_simnet_stats;

void qdb_simnet_get_stats(const qdb_simnet *net, qdb_simnet_stats *out);
/* Bytes held by the world, approximately: queue, frames in flight, endpoints
 * (with their generators), address records, tables. */
size_t qdb_simnet_memory(const qdb_simnet *net);

#endif

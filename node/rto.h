/* SPDX-License-Identifier: BSD-2-Clause */
/* Retransmission timeouts from measured round trips, per peer (RFC 6298,
 * Jacobson/Karels), for the node's RPCs and the client core's requests.
 *
 * For each peer: SRTT, RTTVAR and RTO = SRTT + max(4 RTTVAR, SRTT / 2) (the
 * second term stands for RFC 6298's clock granularity G), clamped to
 * [floor, ceiling].  The first sample R sets SRTT = R, RTTVAR = R / 2; later
 * ones RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, SRTT = 7/8 SRTT + 1/8 R, in
 * integer microseconds (no floating point: the same numbers in every build).
 * A timeout doubles the peer's RTO (up to the ceiling) until the next sample.
 * A peer never measured gets `initial` (the configured RPC timeout).
 *
 * Samples are unambiguous here, unlike TCP's retransmissions (Karn): every
 * RPC carries its own id, so a reply names the one send it answers.  Callers
 * may feed a late reply (one that came after its timeout) as a sample: that
 * is how a peer slower than the current RTO is learned at all.
 *
 * Memory: at most `capacity` peers, least recently used evicted, allocated at
 * the first sample.  Deterministic: linear scans over an array in insertion
 * order, use stamps from a counter, nothing hashed.
 */
#ifndef QDB_RTO_H
#define QDB_RTO_H

#include "types.h"


typedef struct qdb_rto_entry {
    qdb_time_us srtt, rttvar; /* srtt 0: no sample yet (only timeouts) */
    qdb_time_us rto;
    qdb_time_us heard;   /* its last answer (qdb_rto_heard); 0: none */
} qdb_rto_entry;

typedef struct qdb_rto {
    /* capacity slots, NULL until first needed: key[i] (the peer's address,
     * packed) and used[i] (its LRU stamp) belong to e[i].  What every lookup
     * scans (the keys) and every eviction (the stamps) sits together ahead
     * of the entries, in one block: three cache lines for 16 peers instead
     * of one line an entry (perf at 10,000 simulated nodes: the two scans
     * were 5% of qdbsim). */
    uint64_t *key;
    uint32_t *used;
    qdb_rto_entry *e;
    unsigned n, capacity;
    uint32_t clock;
    qdb_time_us initial, floor, ceiling;
} qdb_rto;

/* floor is lowered to initial and ceiling raised to it when needed. */
void qdb_rto_init(qdb_rto *t, unsigned capacity, qdb_time_us initial, qdb_time_us floor,
                  qdb_time_us ceiling);
void qdb_rto_free(qdb_rto *t);
/* How long to wait for an answer from a. */
qdb_time_us qdb_rto_timeout(qdb_rto *t, qdb_addr a);
/* Has a's round trip been sampled (and not evicted since)? */
bool qdb_rto_measured(qdb_rto *t, qdb_addr a);
/* a's RTO from its measured round trip alone, before any back-off;
 * `initial` if never measured (or forgotten since).  Does not count as a
 * use of a's entry. */
qdb_time_us qdb_rto_expected(const qdb_rto *t, qdb_addr a);
/* A reply from a came rtt after its request. */
void qdb_rto_sample(qdb_rto *t, qdb_addr a, qdb_time_us rtt);
/* A request to a timed out: back off (double, up to the ceiling). */
void qdb_rto_backoff(qdb_rto *t, qdb_addr a);
/* a answered one of our requests at `now`, on time or late: evidence that
 * it is alive and hears us (the node's failure detector, watch.c).  Kept
 * with its round trip; the client core does not use it. */
void qdb_rto_heard(qdb_rto *t, qdb_addr a, qdb_time_us now);
/* When a last answered; 0 if never (or forgotten since).  Does not count
 * as a use of a's entry. */
qdb_time_us qdb_rto_heard_at(const qdb_rto *t, qdb_addr a);
/* Bytes held (for memory accounting). */
size_t qdb_rto_memory(const qdb_rto *t);

#endif

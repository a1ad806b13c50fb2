/* SPDX-License-Identifier: BSD-2-Clause */
/* Copies outside the replica set, and the rejoin by digest (stray.c).
 *
 * Stray copies.  With K > 1 a node holds its own range and the ranges of
 * its K - 1 predecessors.  A join moves those sets (the node K places after
 * the newcomer's range no longer replicates it), and a healed partition
 * leaves copies wherever the split rings put them; such copies are
 * "stray": nobody repairs them, and a write the minority side took is
 * only there.  Every QDB_ANTI_ENTROPY_US, and QDB_STRAY_SETTLE_US after
 * our predecessor or replicas change, a node walks what it holds outside
 * its own range, in ring order from its own ID (so the farthest ranges
 * first).  For the first key k not yet walked it looks up k's owner O
 * (FIND, hop by hop) and, if O lies between k and our predecessor (an
 * owner beyond it claims our own range: its predecessor is wrong, as
 * while two rings merge after a partition, and the walk ends until the
 * ring settles), offers the arc [k, O] to O by digest: a DIGEST
 * of that arc, at most QDB_STRAY_BUCKETS buckets.  O answers, if the arc
 * lies in its own range and we are not one of its replicas, which buckets
 * differ (and sends nothing back: we are about to drop our copy); else it
 * refuses (a bitmap of QDB_DIGEST_BUCKETS_MAX / 8 bytes, which no offer of
 * at most QDB_STRAY_BUCKETS buckets can expect) and the walk stops there:
 * we replicate O's range, hence every range after it up to ours.  We send
 * the records of the differing buckets to O (HANDOVER flagged REPLICA,
 * each batch acknowledged, at most cfg.repair_rate records a second); O
 * keeps the newer version of each and copies what it took to its
 * replicas (serve.c).  Once every batch is acknowledged, and if our sums
 * of the arc are still those we offered (nothing changed here meanwhile),
 * we delete our copies of [k, O] -- records and tombstones -- and go on
 * after O.  A lost frame, a failed lookup or a refusal ends the walk; the
 * next one starts again.  Cost per stray arc: a lookup, a digest of up to
 * 4 KB, the differing records, a scan of the arc twice.
 *
 * O takes the records only from a sender its admission rules vouch for
 * (its successor list, QDB_DEFAULT_SUCCLIST long, or a checked replica):
 * copies farther than that from their owner stay until the ring brings
 * them closer.  A stranger's first batch goes unanswered while O checks it: an
 * unanswered batch is sent once more at once.
 *
 * Rejoin.  A node that joins with a non-empty store (a restart on its old
 * storage) says so in its NOTIFY (QDB_NOTIFY_STORED).  With K > 1 its
 * successor then does not push everything it holds outside its range:
 * it sends a DIGEST of the arc from the first key it holds there to the
 * newcomer's ID, and the hand-over (serve_push) carries only the records
 * of the buckets that differ (the last batch still flagged LAST).  A
 * failed or refused digest falls back to the whole hand-over.
 */
#ifndef QDB_NODE_STRAY_H
#define QDB_NODE_STRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct qdb_node;
struct node_rpc;

/* The most buckets of a stray offer: half a DIGEST's, so that a refusal
 * (the longest bitmap) is never a valid answer. */
#define QDB_STRAY_BUCKETS (QDB_DIGEST_BUCKETS_MAX / 2)
/* After a membership change, the walk waits this long for the ring to
 * settle (a join's hand-over, the replicas' repair) before it starts. */
#define QDB_STRAY_SETTLE_US (10 * QDB_US_PER_S)

/* Each round: start or go on with the walk when due. */
void stray_round(struct qdb_node *n);
/* When the walk is due, or the next batch of an offer may leave (the
 * rate); 0: nothing to wake up for. */
qdb_time_us stray_wake(const struct qdb_node *n);
/* Answers and failures of RPC_STRAY_FIND, RPC_STRAY_DIGEST, RPC_STRAY and
 * RPC_REJOIN_DIGEST (m NULL: failed). */
void stray_on_reply(struct qdb_node *n, const struct node_rpc *rpc, const qdb_msg *m);
/* A DIGEST: if its arc lies in our own range, it is an offer of stray
 * copies: answer it (or refuse it) and return true.  False: a replica's
 * DIGEST, for replica.c. */
bool stray_on_digest(struct qdb_node *n, qdb_addr src, const qdb_msg *m);
/* Our predecessor c joins and waits for its hand-over; stored: with its old
 * store.  Push it everything, or (K > 1, stored) only what differs. */
void stray_rejoin(struct qdb_node *n, const qdb_peer *c, bool stored);
/* The hand-over to our predecessor is filtered by the rejoin digest: take
 * this key?  True when no filter applies. */
bool stray_rejoin_wants(const struct qdb_node *n, const uint8_t *key, size_t kl);
/* The hand-over's last batch was acknowledged: the filter is spent. */
void stray_rejoin_done(struct qdb_node *n);
/* Does the store hold any record?  (A join with one is a rejoin.) */
bool stray_has_records(struct qdb_node *n);
void stray_free(struct qdb_node *n);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* The record layer of tls.c without its handshake: for tests and the
 * fuzz target "tlsrec" only (qdbd, libqdb and qdb-bench never call these).
 *
 * tls_conn_new_keyed makes a connection as if its handshake had just
 * finished with these application traffic secrets (client_application_
 * traffic_secret_0 and server_..., RFC 8446 section 7.1): records are
 * sealed and opened from the first byte, by the same code as after a real
 * handshake.  Two such connections, one client and one server, given the
 * same secrets, talk to each other.
 */
#ifndef QDB_LOOP_TLS_REC_H
#define QDB_LOOP_TLS_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls.h"

tls_conn *tls_conn_new_keyed(qdb_tls *tls, int fd, bool server, const uint8_t secret_c[32],
                             const uint8_t secret_s[32]);

/* Seal a KeyUpdate (requesting the peer's, or not) and take the next write
 * key; the record leaves with the next tls_conn_send (len 0 will do). */
bool tls_conn_key_update(tls_conn *t, bool requested);
/* Seal one record of inner content type `type` (23 data, 21 alert, 22
 * handshake) holding p[0..n) with the current write key, whatever it says:
 * the keys do not change.  n at most 2^14. */
bool tls_conn_seal(tls_conn *t, uint8_t type, const uint8_t *p, size_t n);

/* What the record layer did so far. */
typedef struct tls_rec_stats {
    uint64_t opened;          /* records that authenticated, every type */
    uint64_t key_updates_in;  /* KeyUpdates followed */
    uint64_t key_updates_out; /* KeyUpdates sealed (answers and our own) */
    bool failed;              /* a record was refused: the connection is over */
} tls_rec_stats;
void tls_conn_rec_stats(const tls_conn *t, tls_rec_stats *s);

#endif

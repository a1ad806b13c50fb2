/* SPDX-License-Identifier: BSD-2-Clause */
/* fuzz_check_frame() (fuzz.h): decode, re-encode, compare. */
#include "config.h"

#include <string.h>

#include "codec.h"
#include "fuzz.h"

int fuzz_check_frame(const uint8_t *frame, size_t len)
{
    qdb_msg m;
    int rc = qdb_msg_decode(frame, len, &m);
    if (rc != QDB_OK)
        return rc;
    GByteArray *again = g_byte_array_new();
    int erc;
    if (m.type == QDB_MSG_HANDOVER) {
        qdb_handover_builder b;
        qdb_handover_builder_init(&b);
        size_t pos = 0, n = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        while (qdb_msg_entry_next(&m, &pos, &k, &kl, &v, &vl)) {
            qdb_handover_builder_add(&b, k, kl, v, vl);
            n++;
        }
        fuzz_assert(n == m.n_entries);
        erc = qdb_msg_encode_handover(&m, &b, again);
        qdb_handover_builder_clear(&b);
    } else {
        erc = qdb_msg_encode(&m, again);
    }
    fuzz_assert(erc == QDB_OK);
    fuzz_assert(again->len == len && memcmp(again->data, frame, len) == 0);
    g_byte_array_unref(again);
    return rc;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* A peer's fixed 38-byte wire form, shared by the codec's users (WRONG_NODE
 * hints travel in a REPLY payload). */
#include <string.h>

#include "codec.h"

void qdb_peer_encode(const qdb_peer *p, uint8_t out[QDB_PEER_WIRE])
{
    memcpy(out, p->id.b, QDB_ID_BYTES);
    out[32] = (uint8_t)(p->addr.ip >> 24);
    out[33] = (uint8_t)(p->addr.ip >> 16);
    out[34] = (uint8_t)(p->addr.ip >> 8);
    out[35] = (uint8_t)p->addr.ip;
    out[36] = (uint8_t)(p->addr.port >> 8);
    out[37] = (uint8_t)p->addr.port;
}

int qdb_peer_decode(const uint8_t *buf, size_t len, qdb_peer *p)
{
    if (len != QDB_PEER_WIRE)
        return QDB_E_MALFORMED;
    memcpy(p->id.b, buf, QDB_ID_BYTES);
    p->addr.ip = (uint32_t)buf[32] << 24 | (uint32_t)buf[33] << 16 | (uint32_t)buf[34] << 8 | buf[35];
    p->addr.port = (uint16_t)(buf[36] << 8 | buf[37]);
    return QDB_OK;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Small value types: IPv4 endpoints, peers, 64-bit random draws.
 *
 * Addresses are parsed with inet_pton() (dotted quad only, no octal or short
 * forms) and GLib's strict unsigned parser for the port, so "1.2.3.4:80x",
 * "1.2.3.256" or "1.2.3.4:+80" are refused instead of half-read.
 */
#include "types.h"

#include <arpa/inet.h>
#include <glib.h>
#include <string.h>

int qdb_addr_cmp(qdb_addr a, qdb_addr b)
{
    if (a.ip != b.ip)
        return a.ip < b.ip ? -1 : 1;
    if (a.port != b.port)
        return a.port < b.port ? -1 : 1;
    return 0;
}

bool qdb_addr_is_null(qdb_addr a)
{
    return a.ip == 0 && a.port == 0;
}

/* Port 0 is accepted: "127.0.0.1:0" asks the system for an ephemeral port
 * when listening, which tests use. */
bool qdb_addr_parse(qdb_addr *out, const char *text)
{
    if (text == NULL)
        return false;
    const char *colon = strchr(text, ':');
    size_t host_len = colon ? (size_t)(colon - text) : strlen(text);
    char host[INET_ADDRSTRLEN];
    if (host_len == 0 || host_len >= sizeof host)
        return false;
    memcpy(host, text, host_len);
    host[host_len] = '\0';

    struct in_addr in;
    if (inet_pton(AF_INET, host, &in) != 1)
        return false;

    guint64 port = QDB_DEFAULT_PORT;
    if (colon && !g_ascii_string_to_unsigned(colon + 1, 10, 0, G_MAXUINT16, &port, NULL))
        return false;

    out->ip = ntohl(in.s_addr);
    out->port = (uint16_t)port;
    return true;
}

char *qdb_addr_format(qdb_addr a, char buf[QDB_ADDR_STRLEN])
{
    g_snprintf(buf, QDB_ADDR_STRLEN, "%u.%u.%u.%u:%u", (unsigned)(a.ip >> 24) & 255,
               (unsigned)(a.ip >> 16) & 255, (unsigned)(a.ip >> 8) & 255, (unsigned)a.ip & 255,
               (unsigned)a.port);
    return buf;
}

uint64_t qdb_addr_key(qdb_addr a)
{
    return ((uint64_t)a.ip << 16) | a.port;
}

/* A peer is null when it has no address: an ID alone cannot be reached, and
 * ID 0 is a valid ring position, so the ID does not decide. */
bool qdb_peer_is_null(const qdb_peer *p)
{
    return qdb_addr_is_null(p->addr);
}

uint64_t qdb_rand_u64(GRand *r)
{
    uint64_t hi = g_rand_int(r);
    uint64_t lo = g_rand_int(r);
    return hi << 32 | lo;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* The string table of qdb_error_t.  Indexed by code with designated
 * initializers, so a code added to error.h without a string here shows up as
 * "unknown error" (and the test that walks every code fails). */
#include "error.h"

#include <glib.h>
#include <stdarg.h>

static const char *const messages[QDB_E_LAST_] = {
    [QDB_OK] = "success",
    [QDB_E_ALIAS_NOT_FOUND] = "alias not found",
    [QDB_E_ALIAS_ALREADY_EXISTS] = "alias already exists",
    [QDB_E_TIMEOUT] = "timeout",
    [QDB_E_UNSTABLE] = "unstable hive",
    [QDB_E_WRONG_NODE] = "wrong node (outdated topology)",
    [QDB_E_CONNECTION_REFUSED] = "connection refused",
    [QDB_E_CONNECTION_RESET] = "connection reset",
    [QDB_E_PROTOCOL] = "protocol error",
    [QDB_E_INVALID_ARGUMENT] = "invalid argument",
    [QDB_E_BUFFER_TOO_SMALL] = "buffer too small",
    [QDB_E_ALIAS_TOO_LONG] = "alias too long",
    [QDB_E_UNMATCHED_CONTENT] = "unmatched content",
    [QDB_E_OUTCOME_UNKNOWN] = "outcome unknown",
    [QDB_E_NO_SESSION] = "no session",
    [QDB_E_STORAGE] = "storage error",
    [QDB_E_TRUNCATED] = "truncated frame",
    [QDB_E_OVERSIZED] = "oversized frame",
    [QDB_E_BAD_VERSION] = "bad protocol version",
    [QDB_E_BAD_TYPE] = "bad message type",
    [QDB_E_MALFORMED] = "malformed frame",
    [QDB_E_INTERNAL] = "internal error",
    [QDB_E_NOT_CONNECTED] = "not connected",
    [QDB_E_UNAVAILABLE] = "entry unavailable: the node holding it has failed",
    [QDB_E_REFUSED] = "refused by the node (not enabled there)",
    [QDB_E_TOO_MANY] = "too many results: more entries match than the maximum asked for",
    [QDB_E_AUTHENTICATION] = "authentication failed: the node refused the hive key (or its absence)",
    [QDB_E_DISABLED] = "operation disabled in this hive",
    [QDB_E_ALIAS_EMPTY] = "empty alias",
    [QDB_E_CONTENT_TOO_LARGE] = "content too large for the node",
    [QDB_E_DISK_FULL] = "disk full: the node's disk has no room left; remove entries to free space",
    [QDB_E_DEPOT_FULL] = "depot full: the node's store reached its size limit; remove entries to free space",
};

int qdb_error_set(char *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        g_vsnprintf(err, QDB_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *qdb_strerror(int code)
{
    if (code < 0 || code >= QDB_E_LAST_ || messages[code] == NULL)
        return "unknown error";
    return messages[code];
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* One enum of error codes for every layer, with a string table.
 *
 * The same codes travel on the wire (one byte in a reply), are returned by
 * libqdb, and are printed by qdbsh and qdbsim.  Values are part of the wire
 * format and the C API: append, never renumber.
 *
 * The convention, in node/, the seams, the client core, the transports and
 * the stores: an error is a qdb_error_t code plus a one-line message in a
 * buffer of QDB_ERRMSG_SIZE bytes.
 *  - A function that can fail returns the code (QDB_OK on success) and
 *    writes the message into the caller's `char *err` (QDB_ERRMSG_SIZE
 *    bytes, may be NULL).  A constructor returns NULL instead of a code.
 *  - A seam method (env.h) writes its message into the seam's own errmsg
 *    buffer, which the caller reads after a failed call.
 *  - qdb_error_set() does both at once: `return qdb_error_set(err, code,
 *    "fmt", ...)`.  A layer that passes an error up prefixes its context
 *    ("root /x: bdb open: ...").
 *  - The message is for people (logs, stderr); programs decide on the code.
 * GError appears only at GLib's own boundary -- GOptionContext, GKeyFile,
 * g_file_get_contents(), g_dir_make_tmp() -- and is turned into a message
 * there.
 * One exception in size, not in shape: the scenario parser in sim/ and the
 * simulator's world report "FILE:LINE:COL: ..." messages that quote the
 * scenario's tokens and outgrow QDB_ERRMSG_SIZE, so they use a qdb_scn_err
 * (a qdb_scn_error_code plus a QDB_SCN_ERRMSG_SIZE = 512-byte buffer; see
 * sim/scenario.h) rather than truncate.
 */
#ifndef QDB_ERROR_H
#define QDB_ERROR_H

typedef enum qdb_error_t {
    QDB_OK = 0,
    QDB_E_ALIAS_NOT_FOUND = 1,
    QDB_E_ALIAS_ALREADY_EXISTS = 2,
    QDB_E_TIMEOUT = 3,
    QDB_E_UNSTABLE = 4,          /* the hive is repairing the ring here */
    QDB_E_WRONG_NODE = 5,        /* not the owner; outdated topology */
    QDB_E_CONNECTION_REFUSED = 6,
    QDB_E_CONNECTION_RESET = 7,
    QDB_E_PROTOCOL = 8,          /* a frame that could not be understood */
    QDB_E_INVALID_ARGUMENT = 9,
    QDB_E_BUFFER_TOO_SMALL = 10,
    QDB_E_ALIAS_TOO_LONG = 11,
    QDB_E_UNMATCHED_CONTENT = 12, /* compare-and-swap comparand differs */
    QDB_E_OUTCOME_UNKNOWN = 13,  /* the request may or may not have run */
    QDB_E_NO_SESSION = 14,       /* the node does not know this client */
    QDB_E_STORAGE = 15,          /* the node's storage failed */
    QDB_E_TRUNCATED = 16,        /* codec: frame ends early */
    QDB_E_OVERSIZED = 17,        /* codec: frame larger than allowed */
    QDB_E_BAD_VERSION = 18,      /* codec: unknown protocol version */
    QDB_E_BAD_TYPE = 19,         /* codec: unknown message type */
    QDB_E_MALFORMED = 20,        /* codec: a field is out of range */
    QDB_E_INTERNAL = 21,
    QDB_E_NOT_CONNECTED = 22,
    QDB_E_UNAVAILABLE = 23,      /* the entry's node failed; it may come back */
    QDB_E_REFUSED = 24,          /* the node does not allow this (e.g. remote stop) */
    QDB_E_TOO_MANY = 25,         /* more results than the maximum asked for */
    QDB_E_AUTHENTICATION = 26,   /* the node refused our hive key, or its absence */
    QDB_E_DISABLED = 27,         /* the hive does not enable this operation (remove_all, stop) */
    QDB_E_ALIAS_EMPTY = 28,      /* an entry request with an empty alias */
    QDB_E_CONTENT_TOO_LARGE = 29, /* content over the node's maximum (qdbd --max-content-size) */
    QDB_E_DISK_FULL = 30,        /* the node's file system is full: writes that grow
                                  * the store are refused, removes still run */
    QDB_E_DEPOT_FULL = 31,       /* the node's store reached its size limit
                                  * (qdbd --max-depot-size); removes still run */
    QDB_E_LAST_ /* keep last */
} qdb_error_t;

/* Text for a code, never NULL ("unknown error" for codes out of range). */
const char *qdb_strerror(int code);

/* The size of every error-message buffer: seams' errmsg, `char *err`. */
#define QDB_ERRMSG_SIZE 128

/* Formats a message into err (QDB_ERRMSG_SIZE bytes; nothing when err is
 * NULL, truncated when too long) and returns code, so that a failing
 * function ends with `return qdb_error_set(err, QDB_E_..., "...", ...)`. */
int qdb_error_set(char *err, int code, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The longest alias a client may use, in bytes. */
#define QDB_MAX_ALIAS 1024

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbsh's commands: the table and the parser of one line, apart from the
 * shell (qdbsh.c), which runs them over libqdb, so the parser can be tested
 * and fuzzed without a network (fuzz/qdbsh.c). */
#ifndef QDB_QDBSH_CMD_H
#define QDB_QDBSH_CMD_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cmd_id {
    CMD_HELP,
    CMD_VERSION,
    CMD_PUT,
    CMD_GET,
    CMD_UPDATE,
    CMD_GET_UPDATE,
    CMD_CAS,
    CMD_REMOVE,
    CMD_REMOVE_ALL,
    CMD_PING,
    CMD_NODE_STATUS,
    CMD_NODE_CONFIG,
    CMD_NODE_TOPOLOGY,
    CMD_HIVE_STATUS,
    CMD_STOP_NODE,
    CMD_EXIT,
    CMD_PUT_EXPIRING,
    CMD_UPDATE_EXPIRING,
    CMD_GET_REMOVE,
    CMD_REMOVE_IF,
    CMD_METADATA,
    CMD_EXPIRES_AT,
    CMD_EXPIRES_FROM_NOW,
    CMD_GET_EXPIRY,
    CMD_PREFIX_GET,
    CMD_PREFIX_COUNT,
    CMD_FORGET_NODE,
} cmd_id;

typedef struct cmd_def {
    const char *name;
    cmd_id id;
    int words;         /* words after the command name (content not counted) */
    bool content;      /* takes CONTENT (the rest of the line) */
    int optional;      /* words that may follow the required ones (an ADDR) */
    const char *usage; /* arguments */
    const char *help;
} cmd_def;

/* Every command, in the order help lists them. */
extern const cmd_def qdbsh_commands[];
extern const size_t qdbsh_n_commands;

/* The command named name, or NULL. */
const cmd_def *qdbsh_cmd_find(const char *name);

/* The arguments of one command, whichever way they were read. */
typedef struct cmd_args {
    const char *word[3]; /* NUL-terminated words; optional ones NULL when absent */
    const uint8_t *content;
    size_t content_len;
} cmd_args;

typedef enum qdbsh_parse_result {
    QDBSH_PARSE_EMPTY, /* a blank line or a comment: nothing to run */
    QDBSH_PARSE_OK,    /* *cmd and *a are set */
    QDBSH_PARSE_ERROR, /* *error is the message (g_free it) */
} qdbsh_parse_result;

/* One line: "COMMAND [ALIAS [CONTENT | NEW COMPARAND]]".  line is modified
 * in place, and the words and content of *a point into it.  len counts the
 * bytes of the line (it may hold NUL bytes only inside the content, which is
 * taken by length: line[len] need not exist).  The words stop at the first
 * NUL, which must lie within line[0..len]. */
qdbsh_parse_result qdbsh_parse_line(char *line, size_t len, const cmd_def **cmd, cmd_args *a,
                                    char **error);

#endif

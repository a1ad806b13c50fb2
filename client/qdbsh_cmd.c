/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbsh's command table and line parser (qdbsh_cmd.h). */
#include "config.h"

#include "qdbsh_cmd.h"

#include <string.h>

const cmd_def qdbsh_commands[] = {
    { "help", CMD_HELP, 0, false, 0, "", "list the commands" },
    { "version", CMD_VERSION, 0, false, 0, "", "print the version of the library" },
    { "put", CMD_PUT, 1, true, 0, "ALIAS CONTENT", "create an entry (fails if it exists)" },
    { "get", CMD_GET, 1, false, 0, "ALIAS", "print an entry's content" },
    { "update", CMD_UPDATE, 1, true, 0, "ALIAS CONTENT", "create or replace an entry" },
    { "get_update", CMD_GET_UPDATE, 1, true, 0, "ALIAS CONTENT",
      "replace an existing entry, print its previous content" },
    { "cas", CMD_CAS, 3, false, 0, "ALIAS NEW COMPARAND",
      "replace with NEW if the content equals COMPARAND (single words);\n"
      "                                      on mismatch print the current content and fail" },
    { "remove", CMD_REMOVE, 1, false, 0, "ALIAS", "delete an entry" },
    { "remove_all", CMD_REMOVE_ALL, 0, false, 0, "", "delete every entry of the hive" },
    { "ping", CMD_PING, 0, false, 1, "[ADDR]", "is the node there? print the round trip" },
    { "node_status", CMD_NODE_STATUS, 0, false, 1, "[ADDR]",
      "a node's state, neighbours, entries, counters (JSON)" },
    { "node_config", CMD_NODE_CONFIG, 0, false, 1, "[ADDR]",
      "a node's configuration and the hive's settings (JSON)" },
    { "node_topology", CMD_NODE_TOPOLOGY, 0, false, 1, "[ADDR]",
      "a node's predecessor, successors and fingers (JSON)" },
    { "hive_status", CMD_HIVE_STATUS, 0, false, 1, "[ADDR]",
      "walk the ring: every node, its arc, its entries (JSON)" },
    { "stop_node", CMD_STOP_NODE, 1, false, 0, "ADDR",
      "make a node leave the hive (if it allows remote stop)" },
    { "put_expiring", CMD_PUT_EXPIRING, 2, true, 0, "ALIAS TIME CONTENT",
      "put with an expiry: TIME in UTC seconds since the epoch (0: never)" },
    { "update_expiring", CMD_UPDATE_EXPIRING, 2, true, 0, "ALIAS TIME CONTENT",
      "update with an expiry (0: never)" },
    { "get_remove", CMD_GET_REMOVE, 1, false, 0, "ALIAS", "print an entry's content and delete it" },
    { "remove_if", CMD_REMOVE_IF, 1, true, 0, "ALIAS CONTENT",
      "delete the entry if its content equals CONTENT" },
    { "metadata", CMD_METADATA, 1, false, 0, "ALIAS",
      "print size, version, creation, modification and expiry" },
    { "expires_at", CMD_EXPIRES_AT, 2, false, 0, "ALIAS TIME",
      "expire at TIME, UTC seconds since the epoch (0: never)" },
    { "expires_from_now", CMD_EXPIRES_FROM_NOW, 2, false, 0, "ALIAS SECONDS",
      "expire SECONDS from now (this machine's clock)" },
    { "get_expiry", CMD_GET_EXPIRY, 1, false, 0, "ALIAS", "print the expiry (0: never)" },
    { "prefix_get", CMD_PREFIX_GET, 2, false, 0, "PREFIX MAX",
      "print the aliases starting with PREFIX, sorted; fails over MAX" },
    { "prefix_count", CMD_PREFIX_COUNT, 1, false, 0, "PREFIX",
      "print how many aliases start with PREFIX" },
    { "forget_node", CMD_FORGET_NODE, 1, false, 1, "ID [ADDR]",
      "declare the node with ID (64 hex digits) gone for good: its entries\n"
      "                                      answer \"not found\" instead of \"unavailable\"" },
    { "exit", CMD_EXIT, 0, false, 0, "", "leave the shell (end of input does too)" },
};

const size_t qdbsh_n_commands = G_N_ELEMENTS(qdbsh_commands);

const cmd_def *qdbsh_cmd_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(qdbsh_commands); i++)
        if (strcmp(qdbsh_commands[i].name, name) == 0)
            return &qdbsh_commands[i];
    return NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Cut the next word out of *p (in place), skipping blanks before it.  NULL
 * when the line has no more words. */
static char *next_word(char **p)
{
    char *s = *p;
    while (*s != '\0' && is_blank(*s))
        s++;
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    char *w = s;
    while (*s != '\0' && !is_blank(*s))
        s++;
    if (*s != '\0')
        *s++ = '\0'; /* s now points just after the one separator */
    *p = s;
    return w;
}

qdbsh_parse_result qdbsh_parse_line(char *line, size_t len, const cmd_def **cmd, cmd_args *a,
                                    char **error)
{
    char *end = line + len;
    size_t text_len = strlen(line); /* the words stop at the first NUL */
    char *p = line;
    char *name = next_word(&p);
    if (name == NULL || name[0] == '#')
        return QDBSH_PARSE_EMPTY;
    const cmd_def *c = qdbsh_cmd_find(name);
    if (c == NULL) {
        *error = g_strdup_printf("unknown command '%s' (type 'help' for the list)", name);
        return QDBSH_PARSE_ERROR;
    }
    *a = (cmd_args){ .word = { NULL, NULL, NULL } };
    for (int i = 0; i < c->words; i++) {
        a->word[i] = next_word(&p);
        if (a->word[i] == NULL) {
            *error = g_strdup_printf("usage: %s %s", c->name, c->usage);
            return QDBSH_PARSE_ERROR;
        }
    }
    for (int i = c->words; i < c->words + c->optional; i++)
        a->word[i] = next_word(&p);
    if (c->content) {
        /* next_word() consumed exactly one separator after the alias; the rest,
         * blanks and NUL bytes included, is the content.  A line that ends
         * right after the alias has no content at all: that is an error, while
         * "put ALIAS " (one trailing space) stores an empty content. */
        const char *last = a->word[c->words - 1];
        const char *alias_end = last + strlen(last);
        if (alias_end == line + text_len) {
            *error = g_strdup_printf("usage: %s %s", c->name, c->usage);
            return QDBSH_PARSE_ERROR;
        }
        a->content = (const uint8_t *)p;
        a->content_len = (size_t)(end - p);
    } else if (next_word(&p) != NULL || line + text_len != end) {
        *error = g_strdup_printf("too many arguments; usage: %s %s", c->name, c->usage);
        return QDBSH_PARSE_ERROR;
    }
    *cmd = c;
    return QDBSH_PARSE_OK;
}

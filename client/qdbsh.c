/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbsh: the qdb shell, a thin front end over libqdb (qdb.h).
 *
 *   qdbsh [--daemon=HOST:PORT[,HOST:PORT...]]                 read commands (terminal or pipe)
 *   qdbsh [--daemon=HOST:PORT[,HOST:PORT...]] COMMAND ARG...  run one command and exit
 *
 * Interactive on a terminal: prompt "qdbsh:ok > " / "qdbsh:ko > " (after a
 * failed command), line editing, tab completion of command names and
 * history kept in ~/.qdbsh_history through libedit; Ctrl-C clears the line.
 * The administration commands (ping, node_status, node_config,
 * node_topology, hive_status, stop_node) print JSON: indented on a
 * terminal, compact with --raw or into a pipe.  From a pipe:
 * one command per line, no prompt, exit status 1 if any command failed.
 * In a line, content is the rest of the line after the single space that
 * follows the alias, so "put entry a b  c" stores "a b  c"; cas takes two
 * single words.  On the command line, content is the remaining arguments
 * joined by single spaces, or standard input (binary-safe) when omitted; get
 * prints the raw bytes with no newline added.  doc/qdbsh.1 is the manual.
 *
 * Sections: command table -- running a command -- line mode -- main.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <glib.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "client/qdb.h"
#include "node/types.h" /* node/defaults.h and its units */

#define STDIN_CONTENT_MAX ((size_t)64 << 20) /* 64 MiB */

/* Exit statuses (documented in qdbsh.1). */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct shell {
    const char *daemon; /* one address, or several separated by commas */
    qdb_handle_t h;
    bool connected;
    bool line_mode; /* reading lines: get adds a newline after the content */
    bool pretty;    /* indent JSON (a terminal, without --raw) */
    /* interactive mode */
    bool ok;        /* the last command succeeded: the prompt says so */
    bool quit;      /* exit or end of input */
    bool line_done; /* the line handler ran */
} shell;

/* ---- command table ------------------------------------------------------------ */

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

static const cmd_def commands[] = {
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
    { "exit", CMD_EXIT, 0, false, 0, "", "leave the shell (end of input does too)" },
};

static const cmd_def *cmd_find(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_help(FILE *out)
{
    fprintf(out, "Commands (content is the rest of the line after one space):\n");
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        char *left = g_strdup_printf("%s %s", commands[i].name, commands[i].usage);
        fprintf(out, "  %-36s%s\n", left, commands[i].help);
        g_free(left);
    }
}

/* ---- running a command ------------------------------------------------------- */

/* The arguments of one command, whichever way they were read. */
typedef struct cmd_args {
    const char *word[3]; /* NUL-terminated words; optional ones NULL when absent */
    const uint8_t *content;
    size_t content_len;
} cmd_args;

static void print_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static void print_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

/* The transport speaks IPv4 only: say so rather than "invalid argument". */
static bool is_ipv6(const char *addr)
{
    return addr[0] == '[' || strchr(addr, ':') != strrchr(addr, ':');
}

static void print_addr_error(const char *what, const char *addr, qdb_error_t rc)
{
    if (rc == QDB_E_INVALID_ARGUMENT && is_ipv6(addr))
        print_error("%s %s: IPv6 addresses are not supported (qdb speaks IPv4 only)", what, addr);
    else if (rc == QDB_E_INVALID_ARGUMENT)
        print_error("%s %s: not an address (want HOST[:PORT])", what, addr);
    else
        print_error("%s %s: %s", what, addr, qdb_error(rc));
}

/* Connect to the first node of --daemon's list that answers. */
static bool sh_connect(shell *sh)
{
    if (sh->connected)
        return true;
    char **addrs = g_strsplit(sh->daemon, ",", -1);
    for (char **a = addrs; *a != NULL && !sh->connected; a++) {
        g_strstrip(*a);
        qdb_error_t rc = qdb_connect(sh->h, *a);
        if (rc == QDB_OK)
            sh->connected = true;
        else
            print_addr_error("cannot connect to", *a, rc);
    }
    g_strfreev(addrs);
    return sh->connected;
}

/* Print compact JSON, indented by two spaces a level when pretty.  The
 * input is the libraries' own JSON; only strings need care (their quotes,
 * escapes, and the punctuation inside them). */
static void print_json(const char *json, bool pretty)
{
    int depth = 0;
    bool in_str = false, esc = false;
    for (const char *p = json; pretty && *p != '\0'; p++) {
        char c = *p;
        if (in_str) {
            fputc(c, stdout);
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
            continue;
        }
        switch (c) {
        case '"':
            in_str = true;
            fputc(c, stdout);
            break;
        case '{':
        case '[':
            if (p[1] == (c == '{' ? '}' : ']')) { /* empty: keep it on one line */
                fputc(c, stdout);
                fputc(*++p, stdout);
                break;
            }
            fprintf(stdout, "%c\n%*s", c, 2 * ++depth, "");
            break;
        case '}':
        case ']':
            fprintf(stdout, "\n%*s%c", 2 * --depth, "", c);
            break;
        case ',':
            fprintf(stdout, ",\n%*s", 2 * depth, "");
            break;
        case ':':
            fputs(": ", stdout);
            break;
        default:
            fputc(c, stdout);
        }
    }
    if (!pretty)
        fputs(json, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* The administration commands: they ask one node, by address or (without
 * ADDR) the one connected to. */
static bool run_admin(shell *sh, const cmd_def *cmd, const char *addr)
{
    if (addr == NULL && !sh_connect(sh))
        return false;
    const char *json = NULL;
    qdb_error_t rc;
    switch (cmd->id) {
    case CMD_PING: {
        unsigned rtt = 0;
        rc = qdb_ping(sh->h, addr, &rtt);
        if (rc == QDB_OK) {
            printf("pong from %s in %.3f ms\n", addr ? addr : "the node", rtt / 1000.0);
            fflush(stdout);
        }
        break;
    }
    case CMD_NODE_STATUS:
        rc = qdb_node_status(sh->h, addr, &json);
        break;
    case CMD_NODE_CONFIG:
        rc = qdb_node_config(sh->h, addr, &json);
        break;
    case CMD_NODE_TOPOLOGY:
        rc = qdb_node_topology(sh->h, addr, &json);
        break;
    case CMD_HIVE_STATUS:
        rc = qdb_hive_status(sh->h, addr, &json);
        break;
    case CMD_STOP_NODE:
        rc = qdb_node_stop(sh->h, addr);
        if (rc == QDB_OK) {
            printf("%s is leaving the hive\n", addr);
            fflush(stdout);
        } else if (rc == QDB_E_DISABLED) {
            print_error("stop_node %s: operation disabled in this hive (its first node "
                        "enables it with --enable-stop)", addr);
            return false;
        }
        break;
    default:
        g_assert_not_reached();
    }
    if (json != NULL) {
        print_json(json, sh->pretty);
        qdb_free_buffer(sh->h, json);
    }
    if (rc == QDB_E_UNSTABLE && cmd->id == CMD_HIVE_STATUS) {
        print_error("hive_status: the ring is broken (see \"problems\")");
        return false;
    }
    if (rc != QDB_OK) {
        char *what = g_strdup_printf("%s%s", cmd->name, addr ? "" : " (the connected node)");
        print_addr_error(what, addr ? addr : "", rc);
        g_free(what);
        return false;
    }
    return true;
}

/* Content on stdout: raw in one-shot mode, followed by a newline in line
 * mode -- and on a terminal, where the shell's prompt would otherwise follow
 * on the same line. */
static void print_content(shell *sh, const void *buf, size_t len)
{
    if (len > 0)
        fwrite(buf, 1, len, stdout);
    if (sh->line_mode || (isatty(STDOUT_FILENO) && (len == 0 || ((const char *)buf)[len - 1] != '\n')))
        fputc('\n', stdout);
    fflush(stdout);
}

/* A number argument: the whole word, within [min, max]. */
static bool parse_number(const char *word, gint64 min, gint64 max, gint64 *out)
{
    GError *error = NULL;
    if (!g_ascii_string_to_signed(word, 10, min, max, out, &error)) {
        print_error("'%s': %s", word, error->message);
        g_error_free(error);
        return false;
    }
    return true;
}

/* A wall-clock time for people: ISO 8601 UTC, or "never" for 0. */
static void print_time(const char *what, gint64 us)
{
    GDateTime *t = us != 0 ? g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC) : NULL;
    char *text = t != NULL ? g_date_time_format_iso8601(t) : g_strdup("never");
    printf("%-13s%s (%" G_GINT64_FORMAT ")\n", what, text, us / G_USEC_PER_SEC);
    g_free(text);
    if (t != NULL)
        g_date_time_unref(t);
}

static qdb_error_t run_metadata(shell *sh, const char *alias)
{
    qdb_metadata_t m;
    qdb_error_t rc = qdb_get_metadata(sh->h, alias, &m);
    if (rc != QDB_OK)
        return rc;
    printf("%-13s%" G_GUINT64_FORMAT "\n", "size", (guint64)m.size);
    printf("%-13s%" G_GUINT64_FORMAT "\n", "version", (guint64)m.version);
    print_time("created", m.creation_time_us);
    print_time("modified", m.modification_time_us);
    print_time("expires", m.expiry_time * G_USEC_PER_SEC);
    fflush(stdout);
    return QDB_OK;
}

static qdb_error_t run_prefix_get(shell *sh, const char *prefix, gint64 max)
{
    const char **aliases;
    size_t n;
    qdb_error_t rc = qdb_prefix_get(sh->h, prefix, (size_t)max, &aliases, &n);
    if (rc != QDB_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        printf("%s\n", aliases[i]);
    fflush(stdout);
    qdb_free_buffer(sh->h, aliases);
    return QDB_OK;
}

/* Run one command.  Returns true on success; false after printing the error. */
static bool run_command(shell *sh, const cmd_def *cmd, const cmd_args *a)
{
    qdb_error_t rc = QDB_OK;
    const void *buf = NULL;
    size_t len = 0;

    switch (cmd->id) {
    case CMD_HELP:
        print_help(stdout);
        return true;
    case CMD_VERSION:
        printf("%s\n", qdb_version());
        fflush(stdout);
        return true;
    case CMD_EXIT:
        return true;
    case CMD_PING:
    case CMD_NODE_STATUS:
    case CMD_NODE_CONFIG:
    case CMD_NODE_TOPOLOGY:
    case CMD_HIVE_STATUS:
    case CMD_STOP_NODE:
        return run_admin(sh, cmd, a->word[0]);
    default:
        break;
    }

    /* number arguments are checked before connecting */
    gint64 num = 0;
    if ((cmd->id == CMD_PUT_EXPIRING || cmd->id == CMD_UPDATE_EXPIRING ||
         cmd->id == CMD_EXPIRES_AT || cmd->id == CMD_EXPIRES_FROM_NOW) &&
        !parse_number(a->word[1], 0, QDB_MAX_EXPIRY_TIME, &num))
        return false;
    if (cmd->id == CMD_PREFIX_GET && !parse_number(a->word[1], 0, 1000000, &num))
        return false;
    if (!sh_connect(sh))
        return false;
    const char *alias = a->word[0];
    uint64_t count;
    switch (cmd->id) {
    case CMD_PUT_EXPIRING:
        rc = qdb_put_with_expiry(sh->h, alias, a->content, a->content_len, num);
        break;
    case CMD_UPDATE_EXPIRING:
        rc = qdb_update_with_expiry(sh->h, alias, a->content, a->content_len, num);
        break;
    case CMD_GET_REMOVE:
        rc = qdb_get_remove(sh->h, alias, &buf, &len);
        if (rc == QDB_OK)
            print_content(sh, buf, len);
        break;
    case CMD_REMOVE_IF:
        rc = qdb_remove_if(sh->h, alias, a->content, a->content_len);
        break;
    case CMD_METADATA:
        rc = run_metadata(sh, alias);
        break;
    case CMD_EXPIRES_AT:
        rc = qdb_expires_at(sh->h, alias, num);
        break;
    case CMD_EXPIRES_FROM_NOW:
        rc = qdb_expires_from_now(sh->h, alias, num);
        break;
    case CMD_GET_EXPIRY:
        rc = qdb_get_expiry(sh->h, alias, &num);
        if (rc == QDB_OK)
            printf("%" G_GINT64_FORMAT "\n", num);
        break;
    case CMD_PREFIX_GET:
        rc = run_prefix_get(sh, alias, num);
        break;
    case CMD_PREFIX_COUNT:
        rc = qdb_prefix_count(sh->h, alias, &count);
        if (rc == QDB_OK)
            printf("%" G_GUINT64_FORMAT "\n", (guint64)count);
        break;
    case CMD_PUT:
        rc = qdb_put(sh->h, alias, a->content, a->content_len);
        break;
    case CMD_UPDATE:
        rc = qdb_update(sh->h, alias, a->content, a->content_len);
        break;
    case CMD_GET:
        rc = qdb_get_buffer(sh->h, alias, &buf, &len);
        if (rc == QDB_OK)
            print_content(sh, buf, len);
        break;
    case CMD_GET_UPDATE:
        rc = qdb_get_update(sh->h, alias, a->content, a->content_len, &buf, &len);
        if (rc == QDB_OK)
            print_content(sh, buf, len);
        break;
    case CMD_CAS:
        rc = qdb_compare_and_swap(sh->h, alias, a->word[1], strlen(a->word[1]), a->word[2],
                                  strlen(a->word[2]), &buf, &len);
        if (rc == QDB_E_UNMATCHED_CONTENT && buf != NULL)
            print_content(sh, buf, len);
        break;
    case CMD_REMOVE:
        rc = qdb_remove(sh->h, alias);
        break;
    case CMD_REMOVE_ALL:
        rc = qdb_remove_all(sh->h);
        break;
    default:
        g_assert_not_reached();
    }
    if (buf != NULL)
        qdb_free_buffer(sh->h, buf);
    if (rc != QDB_OK) {
        if (cmd->id == CMD_REMOVE_ALL)
            print_error("%s: %s", cmd->name, qdb_error(rc));
        else
            print_error("%s %s: %s", cmd->name, alias, qdb_error(rc));
        return false;
    }
    return true;
}

/* ---- line mode -------------------------------------------------------------- */

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

typedef enum line_result { LINE_OK, LINE_FAILED, LINE_EXIT } line_result;

/* One line: "COMMAND [ALIAS [CONTENT | NEW COMPARAND]]".  line is modified.
 * len counts the bytes of the line (it may hold NUL bytes only inside the
 * content, which is taken by length). */
static line_result run_line(shell *sh, char *line, size_t len)
{
    char *end = line + len;
    size_t text_len = strlen(line); /* the words stop at the first NUL */
    char *p = line;
    char *name = next_word(&p);
    if (name == NULL || name[0] == '#')
        return LINE_OK; /* blank line or comment */
    const cmd_def *cmd = cmd_find(name);
    if (cmd == NULL) {
        print_error("unknown command '%s' (type 'help' for the list)", name);
        return LINE_FAILED;
    }
    cmd_args a = { .word = { NULL, NULL, NULL } };
    for (int i = 0; i < cmd->words; i++) {
        a.word[i] = next_word(&p);
        if (a.word[i] == NULL) {
            print_error("usage: %s %s", cmd->name, cmd->usage);
            return LINE_FAILED;
        }
    }
    for (int i = cmd->words; i < cmd->words + cmd->optional; i++)
        a.word[i] = next_word(&p);
    if (cmd->content) {
        /* next_word() consumed exactly one separator after the alias; the rest,
         * blanks and NUL bytes included, is the content.  A line that ends
         * right after the alias has no content at all: that is an error, while
         * "put ALIAS " (one trailing space) stores an empty content. */
        const char *last = a.word[cmd->words - 1];
        char *alias_end = (char *)last + strlen(last);
        if (alias_end == line + text_len) {
            print_error("usage: %s %s", cmd->name, cmd->usage);
            return LINE_FAILED;
        }
        a.content = (const uint8_t *)p;
        a.content_len = (size_t)(end - p);
    } else if (next_word(&p) != NULL || line + text_len != end) {
        print_error("too many arguments; usage: %s %s", cmd->name, cmd->usage);
        return LINE_FAILED;
    }
    if (cmd->id == CMD_EXIT)
        return LINE_EXIT;
    return run_command(sh, cmd, &a) ? LINE_OK : LINE_FAILED;
}

/* ---- a terminal ------------------------------------------------------------------
 * libedit's callback interface, so that the shell, not the library, owns the
 * wait for input: a SIGINT (Ctrl-C) interrupts poll() and clears the line
 * being edited instead of ending the shell.  Tab completes command names;
 * the history is read from and written to ~/.qdbsh_history. */

#define HISTORY_FILE ".qdbsh_history"
#define HISTORY_MAX 1000

static shell *the_shell; /* the line handler's context: libedit passes none */
static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
    got_sigint = 1;
}

static char *complete_command(const char *text, int state)
{
    static size_t next;
    if (state == 0)
        next = 0;
    while (next < G_N_ELEMENTS(commands)) {
        const char *name = commands[next++].name;
        if (strncmp(name, text, strlen(text)) == 0)
            return strdup(name); /* libedit frees it with free() */
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    rl_attempted_completion_over = 1; /* never fall back to file names */
    if (start != 0)
        return NULL; /* only the first word is a command */
    return rl_completion_matches(text, complete_command);
}

static const char *prompt(const shell *sh)
{
    return sh->ok ? "qdbsh:ok > " : "qdbsh:ko > ";
}

static void on_line(char *line)
{
    shell *sh = the_shell;
    sh->line_done = true;
    if (line == NULL) { /* end of input (Ctrl-D) */
        sh->quit = true;
        return;
    }
    if (line[0] != '\0')
        add_history(line);
    line_result r = run_line(sh, line, strlen(line));
    free(line);
    if (r == LINE_EXIT)
        sh->quit = true;
    else
        sh->ok = r == LINE_OK;
}

/* Interactive: exit status 0. */
static int run_interactive(shell *sh)
{
    char *history = g_build_filename(g_get_home_dir(), HISTORY_FILE, NULL);
    using_history();
    stifle_history(HISTORY_MAX);
    read_history(history); /* none yet is fine */
    rl_readline_name = "qdbsh";
    rl_attempted_completion_function = complete;
    rl_catch_signals = 0;
    struct sigaction sa = { .sa_handler = on_sigint }, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old); /* no SA_RESTART: poll() returns EINTR */

    the_shell = sh;
    sh->ok = true;
    rl_callback_handler_install(prompt(sh), on_line);
    while (!sh->quit) {
        struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
        int n = poll(&pfd, 1, -1);
        if (got_sigint) { /* Ctrl-C: drop the line, a fresh prompt */
            got_sigint = 0;
            rl_replace_line("", 0);
            fputc('\n', stdout);
            rl_callback_handler_remove();
            rl_callback_handler_install(prompt(sh), on_line);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (pfd.revents & (POLLERR | POLLNVAL))) {
            sh->quit = true;
            break;
        }
        sh->line_done = false;
        rl_callback_read_char();
        /* After a line, libedit leaves the terminal as it was before; a
         * fresh install puts it back in editing mode and shows the prompt
         * (ok or ko). */
        if (sh->line_done && !sh->quit) {
            rl_callback_handler_remove();
            rl_callback_handler_install(prompt(sh), on_line);
        }
    }
    rl_callback_handler_remove();
    fputc('\n', stdout); /* leave the terminal on a fresh line */
    sigaction(SIGINT, &old, NULL);
    if (write_history(history) != 0)
        print_error("cannot save the history in %s", history);
    g_free(history);
    return EXIT_OK;
}

/* A pipe or file: one command a line, no prompt; status 1 if any failed. */
static int run_stream(shell *sh, FILE *in)
{
    bool any_failed = false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        line_result r = run_line(sh, line, len);
        if (r == LINE_EXIT)
            break;
        if (r == LINE_FAILED)
            any_failed = true;
    }
    free(line);
    return any_failed ? EXIT_FAILED : EXIT_OK;
}

/* ---- one command from the command line ------------------------------------------ */

/* Read all of stdin, bit for bit, up to STDIN_CONTENT_MAX. */
static GByteArray *read_stdin(void)
{
    GByteArray *buf = g_byte_array_new();
    uint8_t chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n == 0)
            return buf;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            print_error("cannot read the content from standard input: %s", g_strerror(errno));
            break;
        }
        if (buf->len + (size_t)n > STDIN_CONTENT_MAX) {
            print_error("content on standard input is larger than %zu MiB",
                        STDIN_CONTENT_MAX >> 20);
            break;
        }
        g_byte_array_append(buf, chunk, (guint)n);
    }
    g_byte_array_unref(buf);
    return NULL;
}

static int run_argv(shell *sh, int argc, char **argv)
{
    const cmd_def *cmd = cmd_find(argv[0]);
    if (cmd == NULL) {
        print_error("unknown command '%s' (see qdbsh --help)", argv[0]);
        return EXIT_USAGE;
    }
    int given = argc - 1;
    if (given < cmd->words || (!cmd->content && given > cmd->words + cmd->optional)) {
        print_error("usage: qdbsh %s %s", cmd->name, cmd->usage);
        return EXIT_USAGE;
    }
    cmd_args a = { .word = { NULL, NULL, NULL } };
    for (int i = 0; i < cmd->words + (cmd->content ? 0 : cmd->optional) && i < given; i++)
        a.word[i] = argv[1 + i];

    GByteArray *in = NULL;
    char *joined = NULL;
    if (cmd->content) {
        if (given == cmd->words) {
            in = read_stdin();
            if (in == NULL)
                return EXIT_FAILED;
            a.content = in->data;
            a.content_len = in->len;
        } else {
            joined = g_strjoinv(" ", argv + 1 + cmd->words);
            a.content = (const uint8_t *)joined;
            a.content_len = strlen(joined);
        }
    }
    bool ok = run_command(sh, cmd, &a);
    if (in != NULL)
        g_byte_array_unref(in);
    g_free(joined);
    return ok ? EXIT_OK : EXIT_FAILED;
}

/* ---- main ----------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    setlocale(LC_ALL, ""); /* as in qdbd's main: the charset, not the numbers */
    setlocale(LC_NUMERIC, "C");
    gchar *daemon = NULL;
    gboolean version = FALSE;
    gint timeout_ms = 0;
    char *timeout_help =
        g_strdup_printf("give up on an operation after MS milliseconds (default %" G_GUINT64_FORMAT ")",
                        (guint64)(QDB_DEFAULT_CLIENT_TIMEOUT_US / QDB_US_PER_MS));
    gboolean raw = FALSE;
    gchar *key_file = NULL;
    GOptionEntry entries[] = {
        { "daemon", 'd', 0, G_OPTION_ARG_STRING, &daemon,
          "the node to talk to: a host name or IPv4 address, or a comma-separated list "
          "tried in turn (default " QDB_DEFAULT_ADDRESS ")", "HOST:PORT[,...]" },
        { "raw", 0, 0, G_OPTION_ARG_NONE, &raw, "print JSON compact, even on a terminal", NULL },
        { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
          timeout_help, "MS" },
        { "key-file", 'k', 0, G_OPTION_ARG_FILENAME, &key_file,
          "the hive key file (qdbd --gen-key), for a hive whose nodes run with --hive-key-file",
          "FILE" },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("[COMMAND [ARGUMENT...]] - the qdb shell");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(
        ctx, "Commands: help, version, put ALIAS [CONTENT], get ALIAS, update ALIAS [CONTENT],\n"
             "get_update ALIAS [CONTENT], cas ALIAS NEW COMPARAND, remove ALIAS, remove_all,\n"
             "ping [ADDR], node_status [ADDR], node_config [ADDR], node_topology [ADDR],\n"
             "hive_status [ADDR], stop_node ADDR,\n"
             "put_expiring ALIAS TIME [CONTENT], update_expiring ALIAS TIME [CONTENT],\n"
             "get_remove ALIAS, remove_if ALIAS [CONTENT], metadata ALIAS, expires_at ALIAS TIME,\n"
             "expires_from_now ALIAS SECONDS, get_expiry ALIAS, prefix_get PREFIX MAX,\n"
             "prefix_count PREFIX.  'qdbsh help' explains each.\n"
             "Without a command, commands are read from standard input, one a line.\n"
             "Without CONTENT, the commands that take one read it from standard input.\n"
             "See qdbsh(1).\n");
    /* Stop at the first non-option so "qdbsh put x -v" stores "-v". */
    g_option_context_set_strict_posix(ctx, TRUE);
    GError *error = NULL;
    gboolean parsed = g_option_context_parse(ctx, &argc, &argv, &error);
    g_option_context_free(ctx);
    g_free(timeout_help);
    if (!parsed) {
        fprintf(stderr, "qdbsh: %s (see qdbsh --help)\n", error->message);
        g_error_free(error);
        return EXIT_USAGE;
    }
    if (version) {
        printf("qdbsh (%s)\n", qdb_version());
        g_free(daemon);
        return EXIT_OK;
    }

    if (timeout_ms < 0) {
        fprintf(stderr, "qdbsh: --timeout must be a positive number of milliseconds\n");
        g_free(daemon);
        return EXIT_USAGE;
    }
    shell sh = { .daemon = daemon != NULL ? daemon : QDB_DEFAULT_ADDRESS,
                 .pretty = !raw && isatty(STDOUT_FILENO) };
    qdb_error_t rc = qdb_open(&sh.h, qdb_p_tcp);
    if (rc == QDB_OK && timeout_ms > 0)
        rc = qdb_set_option(sh.h, qdb_o_operation_timeout, (int)timeout_ms);
    if (rc != QDB_OK) {
        fprintf(stderr, "qdbsh: cannot open a handle: %s\n", qdb_error(rc));
        g_free(daemon);
        return EXIT_FAILED;
    }
    if (key_file != NULL && (rc = qdb_set_option(sh.h, qdb_o_hive_key_file, key_file)) != QDB_OK) {
        /* libqdb logged why (unreadable, readable by others, not a key) */
        fprintf(stderr, "qdbsh: --key-file %s: %s\n", key_file, qdb_error(rc));
        qdb_close(sh.h);
        g_free(key_file);
        g_free(daemon);
        return EXIT_USAGE;
    }
    g_free(key_file);

    int status;
    if (argc > 1) {
        status = run_argv(&sh, argc - 1, argv + 1);
    } else if (isatty(STDIN_FILENO)) {
        sh.line_mode = true;
        status = run_interactive(&sh);
    } else {
        sh.line_mode = true;
        status = run_stream(&sh, stdin);
    }
    qdb_close(sh.h);
    g_free(daemon);
    return status;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdbsh: the qdb shell, a thin front end over libqdb (qdb.h).
 *
 *   qdbsh [--daemon=HOST:PORT]                 read commands (terminal or pipe)
 *   qdbsh [--daemon=HOST:PORT] COMMAND ARG...  run one command and exit
 *
 * Interactive on a terminal: prompt "qdbsh:ok > " / "qdbsh:ko > " (after a
 * failed command), line editing and history through libedit.  From a pipe:
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
    const char *daemon;
    qdb_handle_t h;
    bool connected;
    bool line_mode; /* reading lines: get adds a newline after the content */
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
    CMD_EXIT,
} cmd_id;

typedef struct cmd_def {
    const char *name;
    cmd_id id;
    int words;         /* words after the command name (content not counted) */
    bool content;      /* takes CONTENT (the rest of the line) */
    const char *usage; /* arguments */
    const char *help;
} cmd_def;

static const cmd_def commands[] = {
    { "help", CMD_HELP, 0, false, "", "list the commands" },
    { "version", CMD_VERSION, 0, false, "", "print the version of the library" },
    { "put", CMD_PUT, 1, true, "ALIAS CONTENT", "create an entry (fails if it exists)" },
    { "get", CMD_GET, 1, false, "ALIAS", "print an entry's content" },
    { "update", CMD_UPDATE, 1, true, "ALIAS CONTENT", "create or replace an entry" },
    { "get_update", CMD_GET_UPDATE, 1, true, "ALIAS CONTENT",
      "replace an existing entry, print its previous content" },
    { "cas", CMD_CAS, 3, false, "ALIAS NEW COMPARAND",
      "replace with NEW if the content equals COMPARAND (single words);\n"
      "                                  on mismatch print the current content and fail" },
    { "remove", CMD_REMOVE, 1, false, "ALIAS", "delete an entry" },
    { "remove_all", CMD_REMOVE_ALL, 0, false, "", "delete every entry of the hive" },
    { "exit", CMD_EXIT, 0, false, "", "leave the shell (end of input does too)" },
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
        fprintf(out, "  %-32s%s\n", left, commands[i].help);
        g_free(left);
    }
}

/* ---- running a command ------------------------------------------------------- */

/* The arguments of one command, whichever way they were read. */
typedef struct cmd_args {
    const char *word[3]; /* NUL-terminated words */
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

static bool sh_connect(shell *sh)
{
    if (sh->connected)
        return true;
    qdb_error_t rc = qdb_connect(sh->h, sh->daemon);
    if (rc != QDB_OK) {
        print_error("cannot connect to %s: %s", sh->daemon, qdb_error(rc));
        return false;
    }
    sh->connected = true;
    return true;
}

/* Content on stdout: raw in one-shot mode, followed by a newline in line mode. */
static void print_content(shell *sh, const void *buf, size_t len)
{
    if (len > 0)
        fwrite(buf, 1, len, stdout);
    if (sh->line_mode)
        fputc('\n', stdout);
    fflush(stdout);
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
    default:
        break;
    }

    if (!sh_connect(sh))
        return false;
    const char *alias = a->word[0];
    switch (cmd->id) {
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
    if (cmd->content) {
        /* next_word() consumed exactly one separator after the alias; the rest,
         * blanks and NUL bytes included, is the content.  A line that ends
         * right after the alias has no content at all: that is an error, while
         * "put ALIAS " (one trailing space) stores an empty content. */
        char *alias_end = (char *)a.word[0] + strlen(a.word[0]);
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

/* A terminal: libedit with history and the ok/ko prompt.  Exit status 0. */
static int run_interactive(shell *sh)
{
    bool ok = true;
    using_history();
    for (;;) {
        char *line = readline(ok ? "qdbsh:ok > " : "qdbsh:ko > ");
        if (line == NULL) {
            fputc('\n', stdout);
            break;
        }
        if (line[0] != '\0')
            add_history(line);
        line_result r = run_line(sh, line, strlen(line));
        free(line);
        if (r == LINE_EXIT)
            break;
        ok = r == LINE_OK;
    }
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
    if (given < cmd->words || (!cmd->content && given > cmd->words)) {
        print_error("usage: qdbsh %s %s", cmd->name, cmd->usage);
        return EXIT_USAGE;
    }
    cmd_args a = { .word = { NULL, NULL, NULL } };
    for (int i = 0; i < cmd->words; i++)
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
    GOptionEntry entries[] = {
        { "daemon", 'd', 0, G_OPTION_ARG_STRING, &daemon,
          "the node to talk to (default " QDB_DEFAULT_ADDRESS ")", "HOST:PORT" },
        { "timeout", 't', 0, G_OPTION_ARG_INT, &timeout_ms,
          timeout_help, "MS" },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &version, "print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *ctx = g_option_context_new("[COMMAND [ARGUMENT...]] - the qdb shell");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_set_description(
        ctx, "Commands: help, version, put ALIAS [CONTENT], get ALIAS, update ALIAS [CONTENT],\n"
             "get_update ALIAS [CONTENT], cas ALIAS NEW COMPARAND, remove ALIAS, remove_all.\n"
             "Without a command, commands are read from standard input, one a line.\n"
             "Without CONTENT, put/update/get_update read it from standard input.\n"
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
    shell sh = { .daemon = daemon != NULL ? daemon : QDB_DEFAULT_ADDRESS };
    qdb_error_t rc = qdb_open(&sh.h, qdb_p_tcp);
    if (rc == QDB_OK && timeout_ms > 0)
        rc = qdb_set_option(sh.h, qdb_o_operation_timeout, (int)timeout_ms);
    if (rc != QDB_OK) {
        fprintf(stderr, "qdbsh: cannot open a handle: %s\n", qdb_error(rc));
        g_free(daemon);
        return EXIT_FAILED;
    }

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

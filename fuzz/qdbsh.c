/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "qdbsh": qdbsh's line parser (client/qdbsh_cmd.c), what
 * turns a line typed or piped into a command and its arguments.
 *
 * Input: one line, NUL bytes included (qdbsh reads lines by length, and
 * keeps NUL bytes inside the content).
 * Property: nothing read outside the line; a parsed command has its
 * required words, non-empty and free of blanks, inside the line, and its
 * content (when it takes one) runs exactly to the end of the line. */
#include "config.h"

#include <string.h>

#include "client/qdbsh_cmd.h"
#include "fuzz.h"

static void check_word(const char *w, const char *line, size_t len)
{
    fuzz_assert(w >= line && w < line + len);
    size_t n = strlen(w);
    fuzz_assert(n > 0 && (size_t)(w - line) + n <= len);
    fuzz_assert(strchr(w, ' ') == NULL && strchr(w, '\t') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a NUL after the line, as the shell's reader leaves one */
    char *line = g_malloc(size + 1);
    memcpy(line, data, size);
    line[size] = '\0';
    const cmd_def *cmd = NULL;
    cmd_args a;
    char *error = NULL;
    qdbsh_parse_result r = qdbsh_parse_line(line, size, &cmd, &a, &error);
    if (r == QDBSH_PARSE_ERROR) {
        fuzz_assert(error != NULL && *error != '\0');
        g_free(error);
    } else if (r == QDBSH_PARSE_OK) {
        fuzz_assert(cmd != NULL && qdbsh_cmd_find(cmd->name) == cmd);
        for (int i = 0; i < cmd->words; i++)
            check_word(a.word[i], line, size);
        for (int i = cmd->words; i < cmd->words + cmd->optional; i++)
            if (a.word[i] != NULL)
                check_word(a.word[i], line, size);
        if (cmd->content)
            fuzz_assert((const char *)a.content >= line &&
                        (const char *)a.content + a.content_len == line + size);
        else
            fuzz_assert(a.content == NULL && a.content_len == 0);
    }
    g_free(line);
    return 0;
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Fuzz target "config": qdbd's configuration file (qdbd_opts_load_text():
 * the line scan, GKeyFile, the [qdbd] keys and their kinds), on the bytes
 * qdbd would have read from --config's file.
 *
 * Input: the file's bytes (NUL bytes included, with the NUL after them that
 * g_file_get_contents() adds).
 * Property: nothing read outside them, no leak; a refused file is refused
 * with EX_CONFIG (78) and a message, an accepted one names the line of
 * every key it took. */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "transport-real/qdbd_options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = g_malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    qdbd_opts o;
    memset(&o, 0, sizeof o);
    int rc = qdbd_opts_load_text(&o, "fuzz.conf", text, size);
    fuzz_assert(rc == 0 || rc == 78);
    for (int i = 0; i < QO_COUNT; i++)
        fuzz_assert(o.origin[i] >= 0);
    qdbd_opts_clear(&o);
    g_free(text);
    return 0;
}

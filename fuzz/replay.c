/* SPDX-License-Identifier: BSD-2-Clause */
/* The replay driver (fuzz.h): a make check program that feeds every file of
 * $srcdir/tests/fuzz/FUZZ_TARGET/ and of its crashes/ folder to the target's
 * LLVMFuzzerTestOneInput, one call per file.  A crash or a sanitizer report
 * fails the test; so does an empty corpus (nothing would be proved). */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "fuzz.h"

#ifndef FUZZ_TARGET
#error "FUZZ_TARGET names the corpus folder (fuzz/local.am sets it)"
#endif

/* g_ptr_array_sort() hands the comparison pointers to the elements. */
static gint by_name(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

/* Replay the regular files of dir (sorted, for a stable log); subfolders are
 * not entered.  Returns how many were replayed, or -1 when dir is missing
 * and must not be. */
static int replay_dir(const char *dir, gboolean required)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (d == NULL) {
        if (required)
            fprintf(stderr, "replay: cannot open %s\n", dir);
        return required ? -1 : 0;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    g_ptr_array_sort(names, by_name);
    int n = 0;
    for (guint i = 0; i < names->len; i++) {
        const char *path = g_ptr_array_index(names, i);
        char *bytes;
        gsize len;
        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
            continue;
        if (!g_file_get_contents(path, &bytes, &len, NULL)) {
            fprintf(stderr, "replay: cannot read %s\n", path);
            g_ptr_array_unref(names);
            return -1;
        }
        /* a copy of exactly len bytes, so ASan sees any read past the end */
        uint8_t *copy = g_malloc(len > 0 ? len : 1);
        memcpy(copy, bytes, len);
        g_free(bytes);
        LLVMFuzzerTestOneInput(copy, len);
        g_free(copy);
        n++;
    }
    g_ptr_array_unref(names);
    return n;
}

int main(int argc, char **argv)
{
    const char *srcdir = g_getenv("srcdir");
    char *corpus = g_build_filename(srcdir ? srcdir : ".", "tests", "fuzz", FUZZ_TARGET, NULL);
    char *crashes = g_build_filename(corpus, "crashes", NULL);
    int seeds = replay_dir(corpus, TRUE);
    int fixed = seeds < 0 ? -1 : replay_dir(crashes, FALSE);
    g_free(corpus);
    g_free(crashes);
    if (seeds <= 0 || fixed < 0) {
        fprintf(stderr, "replay %s: no seed corpus\n", FUZZ_TARGET);
        return 1;
    }
    printf("replay %s: %d seeds, %d crash reproducers, no failure\n", FUZZ_TARGET, seeds, fixed);
    return 0;
}

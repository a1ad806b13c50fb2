/* SPDX-License-Identifier: BSD-2-Clause */
/* qdb-batch-bench: the same N updates through libqdb, one call each, then
 * in qdb_run_batch batches of B; prints both rates and their ratio.
 *
 *     qdb-batch-bench HOST:PORT [N [B [BYTES]]]     (10000, 1000, 64)
 *
 * One line on stdout: "single OPS/S batch OPS/S ratio R".  Exit 1 when an
 * operation failed.  Benchmark only: never a timed test.
 */
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/qdb.h"

static double rate(size_t n, gint64 us)
{
    return us > 0 ? (double)n * G_USEC_PER_SEC / (double)us : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qdb-batch-bench HOST:PORT [N [BATCH [BYTES]]]\n");
        return 2;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    size_t b = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
    size_t d = argc > 4 ? strtoul(argv[4], NULL, 10) : 64;
    if (n == 0 || b == 0) {
        fprintf(stderr, "qdb-batch-bench: N and BATCH must be positive\n");
        return 2;
    }
    qdb_handle_t h;
    qdb_error_t rc = qdb_open(&h, qdb_p_tcp);
    if (rc == QDB_OK)
        rc = qdb_connect(h, argv[1]);
    if (rc != QDB_OK) {
        fprintf(stderr, "qdb-batch-bench: %s: %s\n", argv[1], qdb_error(rc));
        return 1;
    }
    char *value = g_malloc0(d ? d : 1);
    char (*aliases)[24] = g_malloc(n * sizeof *aliases);
    for (size_t i = 0; i < n; i++)
        g_snprintf(aliases[i], sizeof aliases[i], "batch-bench:%zu", i);
    int failed = 0;

    gint64 t0 = g_get_monotonic_time();
    for (size_t i = 0; i < n; i++)
        failed |= qdb_update(h, aliases[i], value, d) != QDB_OK;
    gint64 single = g_get_monotonic_time() - t0;

    qdb_operation_t *ops = g_new(qdb_operation_t, b);
    t0 = g_get_monotonic_time();
    for (size_t at = 0; at < n; at += b) {
        size_t k = MIN(b, n - at);
        qdb_init_operations(ops, k);
        for (size_t i = 0; i < k; i++) {
            ops[i].type = qdb_op_update;
            ops[i].alias = aliases[at + i];
            ops[i].content = value;
            ops[i].content_size = d;
        }
        failed |= qdb_run_batch(h, ops, k) != k;
    }
    gint64 batched = g_get_monotonic_time() - t0;

    printf("single %.0f batch %.0f ratio %.1f\n", rate(n, single), rate(n, batched),
           batched > 0 ? (double)single / (double)batched : 0);
    g_free(ops);
    g_free(aliases);
    g_free(value);
    qdb_close(h);
    if (failed)
        fprintf(stderr, "qdb-batch-bench: some operations failed\n");
    return failed ? 1 : 0;
}

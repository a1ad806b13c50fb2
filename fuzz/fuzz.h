/* SPDX-License-Identifier: BSD-2-Clause */
/* The fuzz targets (fuzz/local.am): one .c per target, each defining
 * libFuzzer's entry point.  Built two ways from the same source:
 *  - with --enable-fuzzing (CC=clang), linked with -fsanitize=fuzzer into
 *    fuzz/fuzz_NAME, run by ./dev.sh fuzz;
 *  - otherwise linked with replay.c into fuzz/replay_NAME, a make check
 *    program that feeds every file of tests/fuzz/NAME/ (the seed corpus) and
 *    tests/fuzz/NAME/crashes/ (every crash ever found, kept after its fix) to
 *    the same entry point, so a fixed crash stays fixed in every build.
 *
 * Contract of a target: never crash, leak or trip a sanitizer on any input;
 * a property the code promises is checked with fuzz_assert(), which aborts
 * (a crash to libFuzzer, a failed test to the replay).  No state survives
 * from one input to the next. */
#ifndef QDB_FUZZ_H
#define QDB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_assert(cond)                                                                     \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* codec_check.c, shared by the frame and msg targets: decode one whole
 * frame; when the decoder accepts it, the encoder must give back the same
 * bytes (codec.h: every message has exactly one encoding), and HANDOVER's
 * records must walk to their count.  Returns the decoder's code. */
int fuzz_check_frame(const uint8_t *frame, size_t len);

#endif

/* SPDX-License-Identifier: BSD-2-Clause */
/* qdb-bench: a load generator for a qdb hive, in the manner of redis-benchmark.
 *
 *   qdb-bench [-h HOST] [-p PORT] [-c CONNS] [-n REQUESTS] [-d BYTES] [-P DEPTH]
 *             [-r KEYSPACE] [-t put,get | --mix PUT:GET] [--seed N]
 *             [--time-limit S] [--sequential] [--quiet] [--csv] [--key-file FILE]
 *             [--open-first] [--direct]
 *
 * Sections: options -- connections and the closed loop -- phases -- reports --
 * main.
 *
 * One qdb_loop hosts -c endpoints, each with its own client core: each is one
 * client session (one TCP connection per node it talks to), as each
 * redis-benchmark client is one connection.  Every core keeps -P operations in
 * flight and submits the next one from the done callback of the last, until
 * -n operations have been submitted in the phase or --time-limit has passed.
 * This is the asynchronous core, not libqdb: a blocking handle per thread
 * would measure the threads, and the core is what libqdb wraps anyway.
 *
 * Writes are UPDATE (create or replace, like SET); reads are GET.  Keys are
 * "key:<n>" with n drawn uniformly from [0, -r) by a generator seeded with
 * --seed (or n = i mod -r with --sequential).  Values are -d deterministic
 * bytes: a seeded random block whose first 8 bytes are replaced by n, so a GET
 * can check it got a value written for its key (a light check: the prefix).
 * Latency is result.latency (submit to completion on the monotonic clock);
 * throughput is completed operations over the phase's wall time, from
 * the first submit to the last completion, also on the monotonic clock.
 *
 * --direct leaves the client core out, for a 1-node hive: each connection
 * says HELLO with a random client id and then sends its requests straight
 * to the node given, with sequence numbers of its own, and matches each
 * REPLY to its request by the sequence (a slot table, no allocation per
 * request; no SHA-3 of the alias, no routing, no timers).  Every reply is
 * still decoded and checked as in the core's mode: its status, and a GET's
 * value prefix.  A WRONG_NODE answer (a hive of more than one node) is an
 * error; a reply that matches no request is counted and fails the run.
 * The load generator shares the CPUs with the server, so what it spends per
 * request is taken from the server: the core costs about twice what
 * redis-benchmark spends per request.
 *
 * --open-first opens every connection before the first phase (one GET each,
 * not counted), so with thousands of clients the phases time requests on
 * open connections, not the connects and HELLOs (bench/many.sh).
 *
 * A GET of a key never written answers ALIAS_NOT_FOUND: counted as a miss
 * (redis answers nil), not an error.  Every other non-OK status is an error,
 * reported by code.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <glib.h>
#include <locale.h>

#include "client/core.h"
#include "codec.h"
#include "error.h"
#include "transport-real/loop.h"
#include "transport-real/tls.h"
#include "types.h"

#define BENCH_KEY_MAX 32 /* "key:" + 20 digits + NUL */
#define BENCH_GRACE_US (5 * QDB_US_PER_S) /* wait for in-flight ops after the time limit */

/* ---- options ------------------------------------------------------------ */

typedef struct bench_opts {
    char *host;
    int port;
    int conns;
    gint64 requests;
    int size;
    int pipeline;
    gint64 keyspace;
    char *tests;
    char *mix;
    gint64 seed;
    double time_limit;
    gboolean sequential, quiet, csv, help, open_first, direct;
    char *key_file;
} bench_opts;

/* ---- one phase's statistics -------------------------------------------- */

enum { BENCH_PUT, BENCH_GET, BENCH_KINDS };
static const char *const bench_kind_name[BENCH_KINDS] = {"PUT", "GET"};

typedef struct bench_stats {
    GArray *lat;                 /* guint32 microseconds, one per completed op */
    guint64 done, ok, misses, wrong_value;
    guint64 errors[QDB_E_LAST_ + 1]; /* by code; the last slot for codes out of range */
} bench_stats;

typedef struct bench bench;
typedef struct bench_conn bench_conn;

/* ---- connections -------------------------------------------------------- */

/* What a done callback needs to know about its operation.  Each connection
 * owns -P of them, on a free stack: no allocation per operation, and nothing
 * to leak when a core is freed with operations pending. */
typedef struct bench_op_tag {
    bench_conn *conn;
    int kind;
    guint64 key;
    uint32_t seq;            /* --direct: the request's sequence number */
    gint64 sent;             /* --direct: when it was submitted */
} bench_op_tag;

struct bench_conn {
    bench *b;
    qdb_loop_endpoint *ep;
    qdb_client_core *core;   /* NULL with --direct */
    int inflight;            /* also the number of tags in use */
    bench_op_tag *tags;      /* -P of them */
    bench_op_tag **free_tags; /* stack: free_tags[0 .. P - inflight) */
    /* --direct */
    qdb_transport *t;
    uint64_t client_id;
    bool hello;              /* HELLO sent on the current connection */
    uint32_t next_seq;
    bench_op_tag **slot;     /* slot[seq & mask]: the request in flight with seq */
    uint32_t mask;
    GByteArray *frame;       /* the request being encoded */
};

struct bench {
    bench_opts o;
    qdb_addr server;
    qdb_loop *loop;
    qdb_tls *tls;      /* --key-file's, shared by every connection; or NULL */
    bench_conn *conns;
    GRand *rng;        /* keys and the op mix: one generator, so one seed fixes the run */
    uint8_t *value;    /* the value block; bytes 0..7 become the key number */

    /* the current phase */
    const char *name;  /* "PUT", "GET" or "MIX" */
    unsigned mix_put, mix_get; /* ratio; a plain phase is 1:0 or 0:1 */
    gint64 submitted, completed, limit;
    bool stopping;
    bench_stats st[BENCH_KINDS];
    gint64 t_start, t_end;
    guint64 strays;    /* --direct: replies that matched no request */
};

static void bench_fill(bench_conn *c, gint64 now);

static void bench_record(bench *b, int kind, int status, qdb_time_us latency, gint64 now)
{
    bench_stats *s = &b->st[kind];
    guint32 us = latency > G_MAXUINT32 ? G_MAXUINT32 : (guint32)latency;
    g_array_append_val(s->lat, us);
    s->done++;
    if (status == QDB_OK)
        s->ok++;
    else if (status == QDB_E_ALIAS_NOT_FOUND && kind == BENCH_GET)
        s->misses++;
    else
        s->errors[status >= 0 && status < QDB_E_LAST_ ? status : QDB_E_LAST_]++;
    b->completed++;
    b->t_end = now;
}

/* An operation ended (either mode): check, count, and submit the next. */
static void bench_complete(bench_op_tag *tag, int status, const uint8_t *content,
                           size_t content_len, qdb_time_us latency, gint64 now)
{
    bench_conn *c = tag->conn;
    bench *b = c->b;
    if (tag->kind == BENCH_GET && status == QDB_OK) {
        uint8_t prefix[8];
        for (int i = 0; i < 8; i++)
            prefix[i] = (uint8_t)(tag->key >> (8 * i));
        /* Only the key prefix: an earlier run with another -d may have
         * written the entry, and that is not a wrong value. */
        size_t cmp = content_len < 8 ? content_len : 8;
        if (cmp && memcmp(content, prefix, cmp) != 0)
            b->st[BENCH_GET].wrong_value++;
    }
    bench_record(b, tag->kind, status, latency, now);
    c->inflight--;
    c->free_tags[b->o.pipeline - 1 - c->inflight] = tag;
    bench_fill(c, now);
}

static void bench_done(void *arg, const qdb_client_result *r)
{
    bench_complete(arg, r->status, r->content, r->content_len, r->latency,
                   g_get_monotonic_time());
}

/* ---- --direct: requests straight to the node ----------------------------------- */

/* Encode m and queue it for the node.  QDB_OK or the error. */
static int direct_send(bench_conn *c, const qdb_msg *m)
{
    g_byte_array_set_size(c->frame, 0);
    int rc = qdb_msg_encode(m, c->frame);
    return rc != QDB_OK ? rc : c->t->send(c->t, c->b->server, c->frame->data, c->frame->len);
}

static int direct_submit(bench_conn *c, bench_op_tag *tag, int type, const uint8_t *alias,
                         size_t alias_len, const uint8_t *content, size_t content_len,
                         gint64 now)
{
    if (!c->hello) { /* the node answers with sequence 0 */
        qdb_msg h = {.type = QDB_MSG_HELLO, .seq = c->client_id};
        int rc = direct_send(c, &h);
        if (rc != QDB_OK)
            return rc;
        c->hello = true;
    }
    /* A free slot: fewer requests are in flight than there are slots, and
     * sequence numbers need only be new for this client id, not dense. */
    uint32_t seq;
    do {
        seq = c->next_seq++;
    } while (seq == 0 || c->slot[seq & c->mask] != NULL);
    qdb_msg m = {.type = type, .seq = seq, .alias = alias, .alias_len = alias_len,
                 .content = content, .content_len = content_len};
    int rc = direct_send(c, &m);
    if (rc != QDB_OK)
        return rc;
    tag->seq = seq;
    tag->sent = now;
    c->slot[seq & c->mask] = tag;
    return QDB_OK;
}

/* Every request in flight on c ends with status; the next request says
 * HELLO again (the transport opens a new connection). */
static void direct_fail(bench_conn *c, int status)
{
    gint64 now = g_get_monotonic_time();
    c->hello = false;
    for (uint32_t i = 0; i <= c->mask; i++) {
        bench_op_tag *tag = c->slot[i];
        if (tag) {
            c->slot[i] = NULL;
            bench_complete(tag, status, NULL, 0, now - tag->sent, now);
        }
    }
}

static void direct_recv(void *owner, qdb_addr src, const uint8_t *frame, size_t len)
{
    (void)src;
    bench_conn *c = owner;
    qdb_msg m;
    if (qdb_msg_decode(frame, len, &m) != QDB_OK || m.type != QDB_MSG_REPLY) {
        c->b->strays++;
        return;
    }
    if (m.seq == 0) { /* HELLO's reply */
        if (m.status != QDB_OK)
            direct_fail(c, m.status);
        return;
    }
    bench_op_tag *tag = c->slot[m.seq & c->mask];
    if (tag == NULL || tag->seq != m.seq) {
        c->b->strays++;
        return;
    }
    c->slot[m.seq & c->mask] = NULL;
    gint64 now = g_get_monotonic_time();
    bench_complete(tag, m.status, m.content, m.content_len, now - tag->sent, now);
}

static void direct_unreachable(void *owner, qdb_addr dst)
{
    (void)dst;
    direct_fail(owner, QDB_E_CONNECTION_REFUSED);
}

static const qdb_inbound direct_ops = {.recv = direct_recv, .unreachable = direct_unreachable};

/* "key:<n>" into out; its length. */
static int alias_of(char out[BENCH_KEY_MAX], guint64 key)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + key % 10);
        key /= 10;
    } while (key);
    memcpy(out, "key:", 4);
    for (int i = 0; i < n; i++)
        out[4 + i] = digits[n - 1 - i];
    return 4 + n;
}

/* Submit until the connection has -P operations in flight or the phase has
 * submitted its -n.  A submit refused at once is counted as a completed
 * operation with that error, so a broken setup ends the phase instead of
 * spinning. */
static void bench_fill(bench_conn *c, gint64 now)
{
    bench *b = c->b;
    while (!b->stopping && c->inflight < b->o.pipeline && b->submitted < b->limit) {
        gint64 i = b->submitted++;
        int kind;
        if (b->mix_get == 0)
            kind = BENCH_PUT;
        else if (b->mix_put == 0)
            kind = BENCH_GET;
        else
            kind = (guint64)i % (b->mix_put + b->mix_get) < b->mix_put ? BENCH_PUT : BENCH_GET;
        guint64 key = b->o.sequential
                          ? (guint64)(i % b->o.keyspace)
                          : (guint64)g_rand_int_range(b->rng, 0, (gint32)b->o.keyspace);
        char alias[BENCH_KEY_MAX];
        int alias_len = alias_of(alias, key);
        bench_op_tag *tag = c->free_tags[b->o.pipeline - 1 - c->inflight];
        *tag = (bench_op_tag){.conn = c, .kind = kind, .key = key};
        int type = kind == BENCH_PUT ? QDB_MSG_UPDATE : QDB_MSG_GET;
        const uint8_t *content = NULL;
        size_t content_len = 0;
        if (kind == BENCH_PUT) {
            for (int k = 0; k < 8 && k < b->o.size; k++)
                b->value[k] = (uint8_t)(key >> (8 * k));
            content = b->value;
            content_len = (size_t)b->o.size;
        }
        int rc = c->core ? qdb_client_core_submit(c->core, type, (const uint8_t *)alias,
                                                  (size_t)alias_len, content, content_len, NULL,
                                                  0, bench_done, tag, NULL)
                         : direct_submit(c, tag, type, (const uint8_t *)alias, (size_t)alias_len,
                                         content, content_len, now);
        if (rc != QDB_OK) {
            bench_record(b, kind, rc, 0, now);
            continue;
        }
        c->inflight++;
    }
}

/* ---- phases ------------------------------------------------------------- */

static void stats_reset(bench_stats *s)
{
    if (s->lat)
        g_array_unref(s->lat);
    memset(s, 0, sizeof *s);
    s->lat = g_array_new(FALSE, FALSE, sizeof(guint32));
}

/* Run one phase to limit operations, or to the time limit and then at most
 * BENCH_GRACE_US more for the operations in flight, on connections [first,
 * first + count).  Returns the number still in flight when it gave up (0
 * normally). */
static gint64 bench_phase(bench *b, const char *name, unsigned put, unsigned get, gint64 limit,
                          int first, int count)
{
    b->name = name;
    b->mix_put = put;
    b->mix_get = get;
    b->submitted = b->completed = 0;
    b->limit = limit;
    b->stopping = false;
    for (int k = 0; k < BENCH_KINDS; k++)
        stats_reset(&b->st[k]);
    b->t_start = b->t_end = g_get_monotonic_time();
    gint64 deadline = b->t_start + (gint64)(b->o.time_limit * 1e6);
    for (int i = first; i < first + count; i++)
        bench_fill(&b->conns[i], b->t_start);
    while (b->completed < b->submitted || (!b->stopping && b->submitted < b->limit)) {
        gint64 now = g_get_monotonic_time();
        if (!b->stopping && now >= deadline) {
            b->stopping = true;
            deadline = now + BENCH_GRACE_US;
            g_printerr("%s: time limit (%.0f s) reached after %" G_GINT64_FORMAT " requests\n",
                       name, b->o.time_limit, b->completed);
        } else if (b->stopping && now >= deadline) {
            break;
        }
        gint64 wait_ms = (deadline - now) / 1000 + 1;
        if (!qdb_loop_run_once(b->loop, wait_ms > 100 ? 100 : (int)wait_ms))
            break;
    }
    return b->submitted - b->completed;
}

/* ---- reports ------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
    guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;
    return x < y ? -1 : x > y;
}

typedef struct bench_summary {
    guint64 n;
    double rps, avg, min, p50, p95, p99, max; /* milliseconds */
} bench_summary;

/* Percentile by nearest rank on the sorted latencies. */
static double pct_ms(const GArray *lat, double p)
{
    if (lat->len == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * lat->len + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > lat->len)
        rank = lat->len;
    return g_array_index(lat, guint32, rank - 1) / 1000.0;
}

static bench_summary summarize(GArray *lat, double seconds)
{
    bench_summary s = {.n = lat->len};
    if (lat->len == 0)
        return s;
    qsort(lat->data, lat->len, sizeof(guint32), cmp_u32);
    double sum = 0;
    for (guint i = 0; i < lat->len; i++)
        sum += g_array_index(lat, guint32, i);
    s.rps = seconds > 0 ? lat->len / seconds : 0;
    s.avg = sum / lat->len / 1000.0;
    s.min = g_array_index(lat, guint32, 0) / 1000.0;
    s.p50 = pct_ms(lat, 50);
    s.p95 = pct_ms(lat, 95);
    s.p99 = pct_ms(lat, 99);
    s.max = g_array_index(lat, guint32, lat->len - 1) / 1000.0;
    return s;
}

static guint64 error_total(const bench_stats *s)
{
    guint64 n = 0;
    for (int e = 0; e <= QDB_E_LAST_; e++)
        n += s->errors[e];
    return n;
}

static void print_errors(const char *label, const bench_stats *s)
{
    for (int e = 0; e <= QDB_E_LAST_; e++)
        if (s->errors[e])
            fprintf(stderr, "%s: %" G_GUINT64_FORMAT " x %s (%d)\n", label, s->errors[e],
                    e < QDB_E_LAST_ ? qdb_strerror(e) : "unknown code", e);
    if (s->wrong_value)
        fprintf(stderr, "%s: %" G_GUINT64_FORMAT " GETs returned a value not written for the key\n",
                label, s->wrong_value);
}

/* One line per report: the phase, or in a mixed phase each kind ("MIX/PUT"),
 * each with its share of the phase's throughput. */
static void report_one(bench *b, const char *label, bench_stats *s, double seconds)
{
    bench_summary m = summarize(s->lat, seconds);
    guint64 errs = error_total(s);
    if (b->o.csv) {
        printf("\"%s\",\"%.2f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%.3f\",\"%" G_GUINT64_FORMAT
               "\",\"%" G_GUINT64_FORMAT "\"\n",
               label, m.rps, m.avg, m.min, m.p50, m.p95, m.p99, m.max, errs, s->misses);
    } else if (b->o.quiet) {
        printf("%s: %.2f requests per second, p50=%.3f msec", label, m.rps, m.p50);
        if (errs)
            printf(", %" G_GUINT64_FORMAT " errors", errs);
        printf("\n");
    } else {
        printf("====== %s ======\n", label);
        printf("  %" G_GUINT64_FORMAT " requests completed in %.2f seconds\n", m.n, seconds);
        printf("  %d parallel clients\n  %d bytes payload\n  pipeline %d, keyspace %" G_GINT64_FORMAT
               "%s\n",
               b->o.conns, b->o.size, b->o.pipeline, b->o.keyspace,
               b->o.sequential ? " (sequential)" : "");
        printf("  ok %" G_GUINT64_FORMAT ", misses %" G_GUINT64_FORMAT ", errors %" G_GUINT64_FORMAT
               "\n",
               s->ok, s->misses, errs);
        printf("Summary:\n  throughput summary: %.2f requests per second\n", m.rps);
        printf("  latency summary (msec):\n          avg       min       p50       p95       p99"
               "       max\n    %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n\n",
               m.avg, m.min, m.p50, m.p95, m.p99, m.max);
    }
    print_errors(label, s);
}

static void bench_report(bench *b)
{
    double seconds = (double)(b->t_end - b->t_start) / 1e6;
    if (b->mix_put && b->mix_get) {
        bench_stats all = {0};
        stats_reset(&all);
        for (int k = 0; k < BENCH_KINDS; k++) {
            g_array_append_vals(all.lat, b->st[k].lat->data, b->st[k].lat->len);
            all.ok += b->st[k].ok;
            all.misses += b->st[k].misses;
            all.wrong_value += b->st[k].wrong_value;
            for (int e = 0; e <= QDB_E_LAST_; e++)
                all.errors[e] += b->st[k].errors[e];
        }
        report_one(b, b->name, &all, seconds);
        g_array_unref(all.lat);
        for (int k = 0; k < BENCH_KINDS; k++) {
            char label[16];
            g_snprintf(label, sizeof label, "%s/%s", b->name, bench_kind_name[k]);
            report_one(b, label, &b->st[k], seconds);
        }
    } else {
        report_one(b, b->name, &b->st[b->mix_put ? BENCH_PUT : BENCH_GET], seconds);
    }
    fflush(stdout);
}

/* --open-first: one GET per connection, one at a time on each (so each
 * connection gets exactly one), timed by nobody; in waves of
 * BENCH_OPEN_WAVE connections, because a burst of thousands of connects
 * overflows the server's listen backlog, and a dropped SYN is sent again
 * only after a second (a client core may give up before).  False when one
 * failed (a miss is fine) or did not finish. */
#define BENCH_OPEN_WAVE 256

static bool bench_open_all(bench *b)
{
    int depth = b->o.pipeline;
    b->o.pipeline = 1; /* the tag stack keeps all its tags: only [0] moves */
    guint64 opened = 0;
    bool ok = true;
    for (int first = 0; first < b->o.conns && ok; first += BENCH_OPEN_WAVE) {
        int count = MIN(BENCH_OPEN_WAVE, b->o.conns - first);
        gint64 left = bench_phase(b, "OPEN", 0, 1, count, first, count);
        const bench_stats *s = &b->st[BENCH_GET];
        opened += s->ok + s->misses;
        ok = left == 0 && s->ok + s->misses == (guint64)count;
        if (!ok) {
            fprintf(stderr, "qdb-bench: opening %d connections: %" G_GUINT64_FORMAT
                            " opened, %" G_GINT64_FORMAT " still waiting\n",
                    b->o.conns, opened, left);
            print_errors("OPEN", s);
        }
    }
    b->o.pipeline = depth;
    return ok;
}

/* ---- main --------------------------------------------------------------- */

static bool resolve(qdb_addr *out, const char *host, int port)
{
    char text[300];
    g_snprintf(text, sizeof text, "%s:%d", host, port);
    if (qdb_addr_parse(out, text))
        return true;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return false;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
    out->ip = ntohl(sin->sin_addr.s_addr);
    out->port = (uint16_t)port;
    freeaddrinfo(res);
    return true;
}

static bool parse_mix(const char *text, unsigned *put, unsigned *get)
{
    char *end;
    errno = 0;
    unsigned long p = strtoul(text, &end, 10);
    if (errno || end == text || *end != ':')
        return false;
    const char *g = end + 1;
    unsigned long q = strtoul(g, &end, 10);
    if (errno || end == g || *end || p + q == 0 || p > 1000000 || q > 1000000)
        return false;
    *put = (unsigned)p;
    *get = (unsigned)q;
    return true;
}

static void usage(GOptionContext *ctx)
{
    char *help = g_option_context_get_help(ctx, TRUE, NULL);
    fputs(help, stdout);
    g_free(help);
}

int main(int argc, char **argv)
{
    setlocale(LC_ALL, ""); /* as in qdbd's main: the charset, not the numbers */
    setlocale(LC_NUMERIC, "C");
    bench b = {
        .o = {.port = QDB_DEFAULT_PORT, .conns = 50, .requests = 100000, .size = 1024,
              .pipeline = 1, .keyspace = 100000, .seed = 1, .time_limit = 60},
    };
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        {"host", 'h', 0, G_OPTION_ARG_STRING, &b.o.host, "Node to connect to (127.0.0.1)", "HOST"},
        {"port", 'p', 0, G_OPTION_ARG_INT, &b.o.port, "Its port (2836)", "PORT"},
        {"clients", 'c', 0, G_OPTION_ARG_INT, &b.o.conns, "Parallel connections (50)", "N"},
        {"requests", 'n', 0, G_OPTION_ARG_INT64, &b.o.requests, "Requests per test (100000)", "N"},
        {"size", 'd', 0, G_OPTION_ARG_INT, &b.o.size, "Value size in bytes (1024)", "BYTES"},
        {"pipeline", 'P', 0, G_OPTION_ARG_INT, &b.o.pipeline,
         "Operations in flight per connection (1)", "N"},
        {"keyspace", 'r', 0, G_OPTION_ARG_INT64, &b.o.keyspace,
         "Keys are key:<n>, n in [0, N) (100000)", "N"},
        {"tests", 't', 0, G_OPTION_ARG_STRING, &b.o.tests,
         "Phases to run in order, from put,get (put,get)", "LIST"},
        {"mix", 0, 0, G_OPTION_ARG_STRING, &b.o.mix,
         "One phase mixing puts and gets in this ratio, e.g. 1:1", "PUT:GET"},
        {"seed", 0, 0, G_OPTION_ARG_INT64, &b.o.seed, "Seed for keys and values (1)", "N"},
        {"time-limit", 0, 0, G_OPTION_ARG_DOUBLE, &b.o.time_limit,
         "Stop each phase after this many seconds (60)", "S"},
        {"sequential", 0, 0, G_OPTION_ARG_NONE, &b.o.sequential,
         "Keys in order (i mod keyspace) instead of at random", NULL},
        {"quiet", 'q', 0, G_OPTION_ARG_NONE, &b.o.quiet, "One line per test", NULL},
        {"csv", 0, 0, G_OPTION_ARG_NONE, &b.o.csv, "CSV output, as redis-benchmark --csv", NULL},
        {"open-first", 0, 0, G_OPTION_ARG_NONE, &b.o.open_first,
         "Open every connection (one GET each, not counted) before the tests", NULL},
        {"direct", 0, 0, G_OPTION_ARG_NONE, &b.o.direct,
         "Requests straight to the node, without the client core (a 1-node hive)", NULL},
        {"key-file", 'k', 0, G_OPTION_ARG_FILENAME, &b.o.key_file,
         "The hive key file, for a hive run with --hive-key-file", "FILE"},
        {"help", 0, 0, G_OPTION_ARG_NONE, &b.o.help, "Show this help", NULL},
        {"version", 'V', 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    GOptionContext *ctx = g_option_context_new("- load a qdb hive, like redis-benchmark");
    g_option_context_set_help_enabled(ctx, FALSE); /* -h is the host, as in redis-benchmark */
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *gerr = NULL;
    int rc = 1;
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        fprintf(stderr, "qdb-bench: %s\n", gerr->message);
        g_error_free(gerr);
        g_option_context_free(ctx);
        return 2;
    }
    if (version) {
        printf("qdb-bench %s\n", PACKAGE_VERSION);
        g_option_context_free(ctx);
        return 0;
    }
    if (b.o.help) {
        usage(ctx);
        g_option_context_free(ctx);
        return 0;
    }
    if (argc > 1 || b.o.conns < 1 || b.o.requests < 1 || b.o.size < 0 ||
        (gsize)b.o.size > QDB_FRAME_MAX / 2 || b.o.pipeline < 1 || b.o.keyspace < 1 ||
        b.o.keyspace > G_MAXINT32 || b.o.port < 1 || b.o.port > 65535 || !(b.o.time_limit > 0) ||
        (b.o.tests && b.o.mix)) {
        fprintf(stderr, "qdb-bench: bad arguments (see --help)\n");
        g_option_context_free(ctx);
        return 2;
    }

    /* The phases: -t in order, or one MIX phase. */
    unsigned mix_put = 0, mix_get = 0;
    char **tests = NULL;
    if (b.o.mix) {
        if (!parse_mix(b.o.mix, &mix_put, &mix_get)) {
            fprintf(stderr, "qdb-bench: --mix wants PUT:GET, e.g. 1:1\n");
            goto out_options;
        }
    } else {
        tests = g_strsplit(b.o.tests ? b.o.tests : "put,get", ",", -1);
        for (char **t = tests; *t; t++)
            if (g_ascii_strcasecmp(*t, "put") && g_ascii_strcasecmp(*t, "get") &&
                g_ascii_strcasecmp(*t, "set") && g_ascii_strcasecmp(*t, "update")) {
                fprintf(stderr, "qdb-bench: unknown test '%s' (put, get)\n", *t);
                goto out_options;
            }
    }
    if (!resolve(&b.server, b.o.host ? b.o.host : "127.0.0.1", b.o.port)) {
        fprintf(stderr, "qdb-bench: cannot resolve '%s' to an IPv4 address\n", b.o.host);
        goto out_options;
    }
    signal(SIGPIPE, SIG_IGN);

    char err[QDB_ERRMSG_SIZE];
    b.loop = qdb_loop_new(err);
    if (!b.loop) {
        fprintf(stderr, "qdb-bench: %s\n", err);
        goto out_options;
    }
    int krc;
    if (b.o.key_file && !(b.tls = qdb_tls_from_file(b.o.key_file, QDB_PEER_CLIENT, &krc, err))) {
        fprintf(stderr, "qdb-bench: hive key file %s\n", err);
        qdb_loop_free(b.loop);
        goto out_options;
    }
    b.rng = g_rand_new_with_seed_array((const guint32[]){(guint32)b.o.seed,
                                                         (guint32)((guint64)b.o.seed >> 32)},
                                       2);
    b.value = g_malloc(b.o.size ? (gsize)b.o.size : 1);
    for (int i = 0; i < b.o.size; i++)
        b.value[i] = (uint8_t)g_rand_int(b.rng);
    b.conns = g_new0(bench_conn, b.o.conns);
    int attached = 0;
    for (; attached < b.o.conns; attached++) {
        bench_conn *c = &b.conns[attached];
        c->b = &b;
        c->tags = g_new0(bench_op_tag, b.o.pipeline);
        c->free_tags = g_new(bench_op_tag *, b.o.pipeline);
        for (int t = 0; t < b.o.pipeline; t++)
            c->free_tags[t] = &c->tags[t];
        c->ep = qdb_loop_attach(b.loop, NULL, b.o.direct ? &direct_ops : NULL, c, err);
        if (!c->ep) {
            fprintf(stderr, "qdb-bench: connection %d: %s\n", attached, err);
            goto out_conns;
        }
        if (b.tls)
            qdb_loop_endpoint_secure(c->ep, b.tls);
        if (b.o.direct) {
            c->t = qdb_loop_endpoint_transport(c->ep);
            qdb_random *rnd = qdb_loop_endpoint_random(c->ep); /* seeded by the OS */
            do
                c->client_id = rnd->next(rnd);
            while (c->client_id == 0);
            c->next_seq = 1;
            c->mask = 1;
            while (c->mask < (uint32_t)b.o.pipeline * 2 - 1)
                c->mask = c->mask * 2 + 1;
            c->slot = g_new0(bench_op_tag *, c->mask + 1);
            c->frame = g_byte_array_new();
            continue;
        }
        qdb_client_config cfg;
        qdb_client_config_defaults(&cfg);
        cfg.bootstrap = b.server;
        /* No operation outlives the phase's limit (plus the grace period). */
        cfg.timeout = (qdb_time_us)(b.o.time_limit * 1e6);
        c->core = qdb_client_core_new(&cfg, qdb_loop_endpoint_clock(c->ep),
                                      qdb_loop_endpoint_transport(c->ep),
                                      qdb_loop_endpoint_random(c->ep), err);
        if (!c->core) {
            fprintf(stderr, "qdb-bench: client core: %s\n", err);
            qdb_loop_detach(b.loop, c->ep);
            goto out_conns;
        }
        qdb_loop_endpoint_bind(c->ep, &qdb_client_core_inbound, c->core);
    }

    if (b.o.open_first && !bench_open_all(&b)) {
        rc = 1;
        goto out_conns;
    }
    if (b.o.csv)
        printf("\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\","
               "\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\",\"errors\",\"misses\"\n");
    rc = 0;
    bool failed = false;
    if (b.o.mix) {
        gint64 left = bench_phase(&b, "MIX", mix_put, mix_get, b.o.requests, 0, b.o.conns);
        bench_report(&b);
        failed = left > 0;
    } else {
        for (char **t = tests; *t && !failed; t++) {
            bool put = g_ascii_strcasecmp(*t, "get") != 0;
            gint64 left = bench_phase(&b, put ? "PUT" : "GET", put, !put, b.o.requests, 0,
                                     b.o.conns);
            bench_report(&b);
            if (left > 0) {
                /* The cores still hold them: the next phase would count their
                 * completions.  Stop here. */
                fprintf(stderr, "qdb-bench: %" G_GINT64_FORMAT " requests still in flight; "
                                "stopping\n", left);
                failed = true;
            }
        }
    }
    for (int k = 0; k < BENCH_KINDS; k++)
        if (error_total(&b.st[k]) || b.st[k].wrong_value)
            rc = 1;
    if (b.strays) {
        fprintf(stderr, "qdb-bench: %" G_GUINT64_FORMAT " replies matched no request\n",
                b.strays);
        rc = 1;
    }
    if (failed)
        rc = 1;

out_conns:
    for (int i = 0; i < attached; i++) {
        /* Freeing the core drops its pending operations without callbacks. */
        if (b.conns[i].core)
            qdb_client_core_free(b.conns[i].core);
        qdb_loop_detach(b.loop, b.conns[i].ep);
    }
    for (int i = 0; i < b.o.conns; i++) {
        g_free(b.conns[i].tags);
        g_free(b.conns[i].free_tags);
        g_free(b.conns[i].slot);
        if (b.conns[i].frame)
            g_byte_array_unref(b.conns[i].frame);
    }
    if (attached < b.o.conns)
        rc = 1;
    g_free(b.conns);
    for (int k = 0; k < BENCH_KINDS; k++)
        if (b.st[k].lat)
            g_array_unref(b.st[k].lat);
    g_free(b.value);
    g_rand_free(b.rng);
    qdb_loop_free(b.loop);
    qdb_tls_free(b.tls);
out_options:
    g_strfreev(tests);
    g_free(b.o.host);
    g_free(b.o.tests);
    g_free(b.o.mix);
    g_free(b.o.key_file);
    g_option_context_free(ctx);
    return rc;
}

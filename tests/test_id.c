/* SPDX-License-Identifier: BSD-2-Clause */
/* Unit tests for node/id.c, node/types.c and node/error.c: ring arithmetic
 * on every edge (equal ends, wrap-around, 0 and 2^256-1), SHA-3-256 known
 * answers, ID text, IPv4 endpoints and the error-string table. */
#include <glib.h>
#include <string.h>

#include "error.h"
#include "id.h"
#include "testutil.h"
#include "types.h"

static qdb_id id_of(const char *text)
{
    qdb_id id;
    memset(&id, 0xee, sizeof id);
    CU_ASSERT_FATAL(qdb_id_parse(&id, text));
    return id;
}

static qdb_id id_max(void)
{
    qdb_id id;
    memset(id.b, 0xff, sizeof id.b);
    return id;
}

static void check_hex(const qdb_id *id, const char *expect)
{
    char hex[QDB_ID_HEX + 1];
    qdb_id_to_hex(id, hex);
    CU_ASSERT_STRING_EQUAL(hex, expect);
}

/* ---- comparison and intervals ---------------------------------------------- */

static void test_cmp(void)
{
    qdb_id a = id_of("1"), b = id_of("2"), big = id_of("1000000000000000000000000000000000000000000000000000000000000000");
    CU_ASSERT_EQUAL(qdb_id_cmp(&a, &b), -1);
    CU_ASSERT_EQUAL(qdb_id_cmp(&b, &a), 1);
    CU_ASSERT_EQUAL(qdb_id_cmp(&a, &a), 0);
    CU_ASSERT_EQUAL(qdb_id_cmp(&b, &big), -1); /* byte 0 dominates */
    CU_ASSERT_TRUE(qdb_id_eq(&a, &a));
    CU_ASSERT_FALSE(qdb_id_eq(&a, &b));
}

static void test_interval_plain(void)
{
    qdb_id a = id_of("10"), b = id_of("20");
    qdb_id x9 = id_of("f"), x10 = id_of("10"), x11 = id_of("11"), x1f = id_of("1f"),
           x20 = id_of("20"), x21 = id_of("21");
    CU_ASSERT_FALSE(qdb_id_in_open(&x9, &a, &b));
    CU_ASSERT_FALSE(qdb_id_in_open(&x10, &a, &b));
    CU_ASSERT_TRUE(qdb_id_in_open(&x11, &a, &b));
    CU_ASSERT_TRUE(qdb_id_in_open(&x1f, &a, &b));
    CU_ASSERT_FALSE(qdb_id_in_open(&x20, &a, &b));
    CU_ASSERT_FALSE(qdb_id_in_open(&x21, &a, &b));

    CU_ASSERT_FALSE(qdb_id_in_half(&x9, &a, &b));
    CU_ASSERT_FALSE(qdb_id_in_half(&x10, &a, &b));
    CU_ASSERT_TRUE(qdb_id_in_half(&x11, &a, &b));
    CU_ASSERT_TRUE(qdb_id_in_half(&x20, &a, &b));
    CU_ASSERT_FALSE(qdb_id_in_half(&x21, &a, &b));

    /* Adjacent ends: (a, a+1) is empty, (a, a+1] is {a+1}. */
    CU_ASSERT_FALSE(qdb_id_in_open(&x11, &x10, &x11));
    CU_ASSERT_FALSE(qdb_id_in_open(&x10, &x10, &x11));
    CU_ASSERT_TRUE(qdb_id_in_half(&x11, &x10, &x11));
    CU_ASSERT_FALSE(qdb_id_in_half(&x10, &x10, &x11));
}

static void test_interval_wrap(void)
{
    /* (max-1, 1): wraps through max and 0. */
    qdb_id max = id_max(), zero = id_of("0"), one = id_of("1"), two = id_of("2");
    qdb_id maxm1 = max;
    maxm1.b[31] = 0xfe;
    CU_ASSERT_TRUE(qdb_id_in_open(&max, &maxm1, &one));
    CU_ASSERT_TRUE(qdb_id_in_open(&zero, &maxm1, &one));
    CU_ASSERT_FALSE(qdb_id_in_open(&one, &maxm1, &one));
    CU_ASSERT_FALSE(qdb_id_in_open(&maxm1, &maxm1, &one));
    CU_ASSERT_FALSE(qdb_id_in_open(&two, &maxm1, &one));
    CU_ASSERT_TRUE(qdb_id_in_half(&one, &maxm1, &one));
    CU_ASSERT_TRUE(qdb_id_in_half(&zero, &maxm1, &one));
    CU_ASSERT_FALSE(qdb_id_in_half(&two, &maxm1, &one));
    CU_ASSERT_FALSE(qdb_id_in_half(&maxm1, &maxm1, &one));

    /* (max, 0]: exactly {0}; (max, 0): empty. */
    CU_ASSERT_TRUE(qdb_id_in_half(&zero, &max, &zero));
    CU_ASSERT_FALSE(qdb_id_in_half(&max, &max, &zero));
    CU_ASSERT_FALSE(qdb_id_in_half(&one, &max, &zero));
    CU_ASSERT_FALSE(qdb_id_in_open(&zero, &max, &zero));
    CU_ASSERT_FALSE(qdb_id_in_open(&max, &max, &zero));

    /* (0, max): everything but the two ends. */
    CU_ASSERT_TRUE(qdb_id_in_open(&one, &zero, &max));
    CU_ASSERT_TRUE(qdb_id_in_open(&maxm1, &zero, &max));
    CU_ASSERT_FALSE(qdb_id_in_open(&zero, &zero, &max));
    CU_ASSERT_FALSE(qdb_id_in_open(&max, &zero, &max));
    CU_ASSERT_TRUE(qdb_id_in_half(&max, &zero, &max));
}

static void test_interval_full_circle(void)
{
    qdb_id ids[] = {id_of("0"), id_of("1"), id_of("8000"), id_max()};
    for (size_t a = 0; a < G_N_ELEMENTS(ids); a++) {
        for (size_t x = 0; x < G_N_ELEMENTS(ids); x++) {
            /* (a, a] is the whole circle; (a, a) all but a. */
            CU_ASSERT_TRUE(qdb_id_in_half(&ids[x], &ids[a], &ids[a]));
            CU_ASSERT_EQUAL(qdb_id_in_open(&ids[x], &ids[a], &ids[a]), x != a);
        }
    }
}

/* ---- arithmetic ---------------------------------------------------------------- */

static void test_add_pow2(void)
{
    qdb_id zero = id_of("0"), out;
    qdb_id_add_pow2(&out, &zero, 0);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000001");
    qdb_id_add_pow2(&out, &zero, 9);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000200");
    qdb_id_add_pow2(&out, &zero, 255);
    check_hex(&out, "8000000000000000000000000000000000000000000000000000000000000000");

    /* Carry across bytes: 0xff..ff (low 16 bytes) + 1. */
    qdb_id a = id_of("ffffffffffffffffffffffffffffffff");
    qdb_id_add_pow2(&out, &a, 0);
    check_hex(&out, "0000000000000000000000000000000100000000000000000000000000000000");

    /* Wrap: max + 1 = 0; max + 2^255 = 2^255 - 1. */
    qdb_id max = id_max();
    qdb_id_add_pow2(&out, &max, 0);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000000");
    qdb_id_add_pow2(&out, &max, 255);
    check_hex(&out, "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
    qdb_id half = id_of("8000000000000000000000000000000000000000000000000000000000000000");
    qdb_id_add_pow2(&out, &half, 255);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000000");

    /* In place. */
    qdb_id x = id_of("7f");
    qdb_id_add_pow2(&x, &x, 0);
    check_hex(&x, "0000000000000000000000000000000000000000000000000000000000000080");
    qdb_id_add_pow2(&x, &x, 7);
    check_hex(&x, "0000000000000000000000000000000000000000000000000000000000000100");
}

static void test_distance(void)
{
    qdb_id a = id_of("10"), b = id_of("25"), zero = id_of("0"), max = id_max(), out;
    qdb_id_distance(&out, &a, &b);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000015");
    /* b before a: the long way round, 2^256 - 0x15. */
    qdb_id_distance(&out, &b, &a);
    check_hex(&out, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeb");
    qdb_id_distance(&out, &a, &a);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000000");
    qdb_id_distance(&out, &max, &zero);
    check_hex(&out, "0000000000000000000000000000000000000000000000000000000000000001");
    qdb_id_distance(&out, &zero, &max);
    CU_ASSERT_TRUE(qdb_id_eq(&out, &max));
    /* Aliasing the output with an input. */
    qdb_id x = id_of("100");
    qdb_id_distance(&x, &a, &x);
    check_hex(&x, "00000000000000000000000000000000000000000000000000000000000000f0");
}

static void test_top64(void)
{
    qdb_id a = id_of("0123456789abcdeffedcba9876543210" "00000000000000000000000000000000");
    CU_ASSERT_EQUAL(qdb_id_top64(&a), UINT64_C(0x0123456789abcdef));
    qdb_id max = id_max();
    CU_ASSERT_EQUAL(qdb_id_top64(&max), UINT64_MAX);
    qdb_id out;
    memset(&out, 0x55, sizeof out);
    qdb_id_from_top64(&out, UINT64_C(0x8000000000000001));
    check_hex(&out, "8000000000000001000000000000000000000000000000000000000000000000");
    CU_ASSERT_EQUAL(qdb_id_top64(&out), UINT64_C(0x8000000000000001));
}

/* ---- SHA-3 and text ---------------------------------------------------------------- */

static void test_hash_vectors(void)
{
    qdb_id out;
    qdb_id_hash(&out, "", 0);
    check_hex(&out, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
    qdb_id_hash(&out, NULL, 0);
    check_hex(&out, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
    qdb_id_hash(&out, "abc", 3);
    check_hex(&out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
    /* NIST: 448-bit message "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq". */
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    qdb_id_hash(&out, m448, strlen(m448));
    check_hex(&out, "41c0dba2a9d6240849100376a8235e2c82e1b9998a999e21db32dd97496d3376");
}

static void test_hex_round_trip(void)
{
    qdb_id a, b;
    for (int k = 0; k < QDB_ID_BYTES; k++)
        a.b[k] = (uint8_t)(k * 37 + 11);
    char hex[QDB_ID_HEX + 1];
    qdb_id_to_hex(&a, hex);
    CU_ASSERT_EQUAL(strlen(hex), QDB_ID_HEX);
    CU_ASSERT_TRUE(qdb_id_parse(&b, hex));
    CU_ASSERT_TRUE(qdb_id_eq(&a, &b));

    /* Upper case is accepted and right-aligned. */
    b = id_of("ABCDEF");
    check_hex(&b, "0000000000000000000000000000000000000000000000000000000000abcdef");
    b = id_of("abc");
    check_hex(&b, "0000000000000000000000000000000000000000000000000000000000000abc");
    b = id_of("#3");
    check_hex(&b, "0000000000000000000000000000000000000000000000000000000000000003");
    b = id_of("#18446744073709551615");
    check_hex(&b, "000000000000000000000000000000000000000000000000ffffffffffffffff");
    b = id_of("#0");
    check_hex(&b, "0000000000000000000000000000000000000000000000000000000000000000");
}

static void test_parse_errors(void)
{
    const char *bad[] = {
        "", "#", "#-1", "#+1", "# 1", "#1 ", "#18446744073709551616", "#0x10", "#abc",
        "xyz", "12g4", " 12", "12 ", "0x12", "-1",
        /* 65 digits */
        "10000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t k = 0; k < G_N_ELEMENTS(bad); k++) {
        qdb_id out;
        memset(&out, 0x5a, sizeof out);
        CU_ASSERT_FALSE(qdb_id_parse(&out, bad[k]));
        /* out untouched */
        for (int i = 0; i < QDB_ID_BYTES; i++)
            CU_ASSERT_EQUAL(out.b[i], 0x5a);
    }
    qdb_id out;
    CU_ASSERT_FALSE(qdb_id_parse(&out, NULL));
    /* exactly 64 digits is fine */
    CU_ASSERT_TRUE(qdb_id_parse(&out, "f000000000000000000000000000000000000000000000000000000000000000"));
    CU_ASSERT_EQUAL(out.b[0], 0xf0);
}

/* ---- addresses and peers --------------------------------------------------------- */

static void test_addr_parse(void)
{
    qdb_addr a;
    char buf[QDB_ADDR_STRLEN];
    CU_ASSERT_TRUE(qdb_addr_parse(&a, "10.0.0.1:4000"));
    CU_ASSERT_EQUAL(a.ip, 0x0a000001u);
    CU_ASSERT_EQUAL(a.port, 4000);
    CU_ASSERT_STRING_EQUAL(qdb_addr_format(a, buf), "10.0.0.1:4000");

    CU_ASSERT_TRUE(qdb_addr_parse(&a, "192.168.1.2"));
    CU_ASSERT_EQUAL(a.ip, 0xc0a80102u);
    CU_ASSERT_EQUAL(a.port, QDB_DEFAULT_PORT);

    CU_ASSERT_TRUE(qdb_addr_parse(&a, "255.255.255.255:65535"));
    CU_ASSERT_STRING_EQUAL(qdb_addr_format(a, buf), "255.255.255.255:65535");
    CU_ASSERT_EQUAL(strlen(buf) + 1, QDB_ADDR_STRLEN);

    CU_ASSERT_TRUE(qdb_addr_parse(&a, "0.0.0.0:0"));
    CU_ASSERT_TRUE(qdb_addr_is_null(a));

    const char *bad[] = {
        "", ":80", "1.2.3", "1.2.3.4.5", "1.2.3.256", "256.1.1.1", "1.2.3.4:", "1.2.3.4:65536",
        "1.2.3.4:-1", "1.2.3.4:+1", "1.2.3.4:80x", "1.2.3.4 :80", " 1.2.3.4", "1.2.3.4:80:81",
        "a.b.c.d", "1.2.3.4x", "localhost:80", "1.2.3.04", "1.2.3.4: 80",
        "1111111111111111111111.2.3.4",
    };
    for (size_t k = 0; k < G_N_ELEMENTS(bad); k++) {
        qdb_addr out = {7, 7};
        CU_ASSERT_FALSE(qdb_addr_parse(&out, bad[k]));
        CU_ASSERT_EQUAL(out.ip, 7u);
        CU_ASSERT_EQUAL(out.port, 7);
    }
    CU_ASSERT_FALSE(qdb_addr_parse(&a, NULL));
}

static void test_addr_misc(void)
{
    qdb_addr a = {0x0a000001, 80}, b = {0x0a000001, 81}, c = {0x0a000002, 1}, z = {0, 0};
    CU_ASSERT_TRUE(qdb_addr_eq(a, a));
    CU_ASSERT_FALSE(qdb_addr_eq(a, b));
    CU_ASSERT_EQUAL(qdb_addr_cmp(a, b), -1);
    CU_ASSERT_EQUAL(qdb_addr_cmp(b, c), -1);
    CU_ASSERT_EQUAL(qdb_addr_cmp(c, a), 1);
    CU_ASSERT_EQUAL(qdb_addr_cmp(a, a), 0);
    CU_ASSERT_TRUE(qdb_addr_is_null(z));
    CU_ASSERT_FALSE(qdb_addr_is_null(a));
    qdb_addr port_only = {0, 1};
    CU_ASSERT_FALSE(qdb_addr_is_null(port_only));
    CU_ASSERT_NOT_EQUAL(qdb_addr_key(a), qdb_addr_key(b));
    CU_ASSERT_NOT_EQUAL(qdb_addr_key(a), qdb_addr_key(c));
    CU_ASSERT_EQUAL(qdb_addr_key(a), (UINT64_C(0x0a000001) << 16) | 80);

    char buf[QDB_ADDR_STRLEN];
    CU_ASSERT_STRING_EQUAL(qdb_addr_format(z, buf), "0.0.0.0:0");

    qdb_peer p = {.id = id_of("5"), .addr = a}, q = p, n = {{{0}}, {0, 0}};
    CU_ASSERT_TRUE(qdb_peer_eq(&p, &q));
    q.id.b[0] = 1;
    CU_ASSERT_FALSE(qdb_peer_eq(&p, &q));
    q = p;
    q.addr.port++;
    CU_ASSERT_FALSE(qdb_peer_eq(&p, &q));
    CU_ASSERT_TRUE(qdb_peer_is_null(&n));
    CU_ASSERT_FALSE(qdb_peer_is_null(&p));
}

/* ---- error strings ------------------------------------------------------------------ */

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_ALIAS_NOT_FOUND), "alias not found");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_ALIAS_ALREADY_EXISTS), "alias already exists");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_TIMEOUT), "timeout");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_UNSTABLE), "unstable hive");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_WRONG_NODE), "wrong node (outdated topology)");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(-1), "unknown error");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(QDB_E_LAST_), "unknown error");
    CU_ASSERT_STRING_EQUAL(qdb_strerror(1000), "unknown error");
    /* Every code has its own text. */
    for (int c = 0; c < QDB_E_LAST_; c++) {
        CU_ASSERT_STRING_NOT_EQUAL(qdb_strerror(c), "unknown error");
        for (int d = 0; d < c; d++)
            CU_ASSERT_STRING_NOT_EQUAL(qdb_strerror(c), qdb_strerror(d));
    }
}

/* The byte-order helpers write most significant byte first, and evaluate
 * their argument once even when it is a call with side effects. */
static int calls;
static uint64_t counted(uint64_t v)
{
    calls++;
    return v;
}

static void test_big_endian(void)
{
    uint8_t b[8];
    static const uint8_t want[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    calls = 0;
    qdb_be64_put(b, counted(UINT64_C(0x0123456789abcdef)));
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(memcmp(b, want, 8), 0);
    CU_ASSERT_EQUAL(qdb_be64_get(b), UINT64_C(0x0123456789abcdef));
    memset(b, 0, sizeof b);
    qdb_be32_put(b + 1, (uint32_t)counted(0x89abcdefu));
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_EQUAL(memcmp(b + 1, want + 4, 4), 0);
    CU_ASSERT_EQUAL(b[0], 0);
    CU_ASSERT_EQUAL(b[5], 0);
    CU_ASSERT_EQUAL(qdb_be32_get(want + 1), 0x23456789u);
    qdb_be16_put(b, 0xabcd);
    CU_ASSERT_EQUAL(b[0], 0xab);
    CU_ASSERT_EQUAL(b[1], 0xcd);
    CU_ASSERT_EQUAL(qdb_be16_get(want + 6), 0xcdef);
}

/* High word first: the order every trace hash depends on. */
static void test_rand_u64(void)
{
    GRand *a = g_rand_new_with_seed(42), *b = g_rand_new_with_seed(42);
    for (int i = 0; i < 4; i++) {
        uint64_t hi = g_rand_int(b);
        uint64_t lo = g_rand_int(b);
        CU_ASSERT_EQUAL(qdb_rand_u64(a), hi << 32 | lo);
    }
    g_rand_free(a);
    g_rand_free(b);
}

static void test_error_set(void)
{
    char err[QDB_ERRMSG_SIZE] = "";
    CU_ASSERT_EQUAL(qdb_error_set(err, QDB_E_STORAGE, "disk %d", 7), QDB_E_STORAGE);
    CU_ASSERT_STRING_EQUAL(err, "disk 7");
    CU_ASSERT_EQUAL(qdb_error_set(NULL, QDB_E_TIMEOUT, "dropped"), QDB_E_TIMEOUT);
    char big[2 * QDB_ERRMSG_SIZE];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    qdb_error_set(err, QDB_E_INTERNAL, "%s", big);
    CU_ASSERT_EQUAL(strlen(err), QDB_ERRMSG_SIZE - 1); /* truncated, terminated */
}

static CU_TestInfo id_tests[] = {
    {.pName = "cmp", .pTestFunc = test_cmp},
    {.pName = "interval plain", .pTestFunc = test_interval_plain},
    {.pName = "interval wrap", .pTestFunc = test_interval_wrap},
    {.pName = "interval full circle", .pTestFunc = test_interval_full_circle},
    {.pName = "add_pow2", .pTestFunc = test_add_pow2},
    {.pName = "distance", .pTestFunc = test_distance},
    {.pName = "top64", .pTestFunc = test_top64},
    {.pName = "sha3 vectors", .pTestFunc = test_hash_vectors},
    {.pName = "hex round trip", .pTestFunc = test_hex_round_trip},
    {.pName = "parse errors", .pTestFunc = test_parse_errors},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo types_tests[] = {
    {.pName = "addr parse", .pTestFunc = test_addr_parse},
    {.pName = "addr misc and peers", .pTestFunc = test_addr_misc},
    {.pName = "strerror", .pTestFunc = test_strerror},
    {.pName = "error_set", .pTestFunc = test_error_set},
    {.pName = "big-endian fields", .pTestFunc = test_big_endian},
    {.pName = "rand_u64", .pTestFunc = test_rand_u64},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {.pName = "id", .pTests = id_tests},
    {.pName = "types", .pTests = types_tests},
    CU_SUITE_INFO_NULL,
};

int main(void)
{
    return qdb_test_run(suites);
}

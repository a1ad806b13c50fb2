/* SPDX-License-Identifier: BSD-2-Clause */
/* The simulated world: virtual clock, event queue, network with faults, and
 * the env.h seams for every endpoint.  Contract in simnet.h.
 *
 * Sections:
 *   - types: address records, endpoints, event payloads, the world
 *   - small arithmetic: hashing, saturating and drift math
 *   - endpoint lifetime (reference counts)
 *   - event queue glue (stale/discard)
 *   - clock seam and the one-wake-up timer
 *   - transport seam: latency, faults, partitions
 *   - random seam
 *   - trace hash and hash log
 *   - running: step, run_until, step_until, at
 *   - world, endpoints, fault setters, stats
 *
 * Lifetime: an endpoint is reference-counted -- one reference while attached,
 * one per queued event that points at it (its wake-up, frames in flight to
 * it, unreachable notices for it).  Events never hold addresses to look up
 * again at delivery, so a frame bound for an endpoint that was detached is
 * recognised by its dead target and skipped, and can never reach a newer
 * endpoint at the same address.
 */
#include "config.h"

#include "simnet.h"

#include <glib.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <string.h>

#include "error.h"
#include "eventq.h"

/* ---- types -------------------------------------------------------------------- */

/* Event kinds; the values are fed to the trace hash: never renumber. */
enum { EV_FRAME = 1, EV_TICK = 2, EV_UNREACH = 3, EV_CALL = 4, EV_ADD = 5 };

/* GRand is opaque; its Mersenne Twister state is 624 words plus an index. */
#define GRAND_WORDS 624
#define GRAND_BYTES ((GRAND_WORDS + 1) * sizeof(guint32))

/* Everything the network knows about one address, attached or not.  Records
 * live until the world is freed: a scenario uses a bounded set of addresses,
 * and settings must survive a crash and restart. */
typedef struct addr_rec {
    uint64_t key; /* packed address; the table's key points here */
    qdb_addr addr;
    qdb_sim_endpoint *ep; /* attached now, or NULL */
    int group;
    uint32_t slow_milli; /* 1000 = normal speed */
    int32_t ppm;         /* clock drift */
    bool host_down;      /* the machine is off or cut off: silence, no reset */
} addr_rec;

/* The fields every event reads come first, in the first two cache lines
 * (the block is 64-byte aligned), and the seams after them: each seam's
 * methods sit behind a 128-byte error buffer, so they cost a line of their
 * own.  perf at 10,000 nodes: with the seams first, reading the clock was
 * three cache misses (the method, the anchors, the record's drift) and 11%
 * of qdbsim.  ppm, slow_milli and host_down are copies of the record's,
 * kept equal by the setters, so the clock, the timer and a frame sent to
 * the endpoint never read the record. */
struct qdb_sim_endpoint {
    qdb_simnet *net;
    addr_rec *rec;
    const qdb_inbound *ops; /* NULL: nothing bound, events are dropped */
    void *owner;
    uint32_t refs;
    uint32_t timer_gen; /* the live queued wake-up carries this generation */
    uint32_t frames_in; /* frames in flight to this endpoint */
    int32_t ppm;         /* rec->ppm */
    uint32_t slow_milli; /* rec->slow_milli */
    bool host_down;      /* rec->host_down */
    bool dead;
    bool armed;
    /* Local clock: anchor_local + drift(virtual now - anchor_virt). */
    qdb_time_us anchor_virt, anchor_local;
    /* The wake-up: deadline on the local clock, armed at virtual arm_virt
     * with sequence armed_seq, due at virtual fire_at.  queued_at is the
     * time of the live queue entry (QDB_SIMNET_NEVER: none), which may be
     * earlier than fire_at: it then re-queues itself (see next_event). */
    qdb_time_us deadline, arm_virt, fire_at, queued_at;
    uint64_t armed_seq;
    GRand *rng; /* created at the first draw */
    uint64_t rng_seed;
    /* the seams: their impl is this endpoint (ep_of() finds it without
     * reading impl, a line away from the method) */
    qdb_clock clock;
    qdb_transport transport;
    qdb_random random;
};

#define EP_ALIGN 64
#define ep_of(seam, field) \
    ((qdb_sim_endpoint *)((char *)(seam) - G_STRUCT_OFFSET(qdb_sim_endpoint, field)))

typedef struct link_slot {
    uint64_t a, b; /* the pair, a <= b; a == 0 (a null address): empty */
    qdb_time_us base;
} link_slot;

/* An attached endpoint by its packed address (ep_cache): send() finds the
 * destination without reading its address record, a cache miss of its own
 * before the endpoint's (perf at 10,000 nodes: 7% of qdbsim).  ep NULL:
 * empty. */
typedef struct ep_slot {
    uint64_t key;
    qdb_sim_endpoint *ep;
} ep_slot;

typedef struct sim_frame {
    qdb_sim_endpoint *dst; /* holds a reference; the next free block when free */
    const void *dst_owner; /* dst->owner when sent: a prefetch hint, never read */
    const addr_rec *dst_rec; /* dst->rec: the same */
    /* The sender's endpoint and record when sent: where an answer goes.
     * Hints too: the sender may be gone when the frame is delivered. */
    const qdb_sim_endpoint *src_ep;
    const addr_rec *src_rec;
    const link_slot *link; /* the link's latency cache slot, for the answer */
    qdb_addr src;
    uint32_t len;
    uint8_t bytes[];
} sim_frame;

typedef struct sim_notice {
    qdb_sim_endpoint *sender; /* holds a reference */
    qdb_addr dead;
    bool reset;               /* qdb_simnet_reset: a broken connection, dead alive */
} sim_notice;

typedef struct sim_call {
    void (*fn)(void *arg);
    void *arg;
} sim_call;

typedef struct block_key {
    uint64_t from, to;
} block_key;

/* Direct-mapped caches in front of the hot paths of send().  All are exact
 * -- a hit returns what the slow path would compute -- so their contents
 * never reach behaviour.  (perf at 10,000 nodes: the address table's lookup
 * and the link latency's integer log were 10% of qdbsim.) */
#define REC_CACHE_BITS 17  /* address records: 1 MiB of pointers; the
                            * attached endpoints by the same slots: 2 MiB */
#define LINK_CACHE_BITS 15 /* link base latencies: 768 KiB */
/* Frames of up to FRAME_SMALL bytes (nearly all of them) live in blocks of
 * one size that are reused last-freed-first: no malloc/free per frame, and
 * the block a new frame is copied into was usually just delivered, so it is
 * still in the cache.  At most FRAME_FREE_MAX blocks are kept free. */
#define FRAME_SMALL 256
/* The trace hash takes its input in blocks of this many bytes: the same
 * bytes in the same order, so the same digest, but two EVP_DigestUpdate()
 * calls an event (each copying its few bytes into the context) became one
 * per hundred events or so.  A full block is hashed by a thread of its own
 * (SHA-256 was 6% of qdbsim at 10,000 nodes), at most TRACE_AHEAD blocks
 * behind; the digest is read only once that thread has caught up and is
 * idle.  It touches nothing but the blocks and the hash context, so what
 * the run does and the digests it gives cannot depend on it.  Each
 * hand-off costs a futex wake (GLib's g_cond_broadcast always makes the
 * call): at 64 KiB blocks warm10k made 18,000 futex calls and 9,300
 * context switches, at 1 MiB 1,500 and 2,000. */
#define TRACE_BLOCK (1u << 20)
#define TRACE_AHEAD 8

typedef struct trace_block {
    struct trace_block *next;
    size_t len;
    uint8_t data[TRACE_BLOCK];
} trace_block;
#define FRAME_FREE_MAX 65536

struct qdb_simnet {
    qdb_simnet_config cfg;
    qdb_time_us now;
    qdb_eventq *q;
    GRand *rng;          /* the world's: jitter and faults */
    GHashTable *addrs;   /* &rec->key -> addr_rec; lookups only */
    GHashTable *blocks;  /* block_key -> itself; lookups only */
    EVP_MD_CTX *trace;   /* running SHA-256 */
    EVP_MD_CTX *scratch; /* a copy finalized to read the digest */
    trace_block *trace_cur; /* being filled here; NULL until the first item */
    /* the hashing thread (started at the first full block) and what it
     * shares with this one, under trace_mu */
    GThread *hasher;
    GMutex trace_mu;
    GCond trace_cond;
    trace_block *todo, *todo_last, *spare; /* full blocks, oldest first; empty ones */
    unsigned n_todo;
    bool hashing, hasher_stop;
    FILE *log_write, *log_check;
    uint64_t log_n;
    char *line_buf; /* getline() buffer for the check */
    size_t line_cap;
    char *diverged;
    bool running;
    qdb_simnet_stats st;
    addr_rec **rec_cache;  /* by rec_slot(key); records live until the net is freed */
    ep_slot *ep_cache;     /* by rec_slot(key); a slot is cleared when its endpoint
                            * is detached, so it never names a freed one */
    link_slot *link_cache; /* by the link's hash */
    sim_frame *free_frames; /* blocks of FRAME_SMALL bytes, linked by dst */
    size_t n_free_frames;
    /* for qdb_simnet_memory() */
    size_t frames_in_flight, bytes_in_flight, endpoints_alloc, rngs;
};

/* ---- small arithmetic ----------------------------------------------------------- */

/* splitmix64's finalizer: a good 64-bit mix, used only to hash (seed, link). */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Our own packing, not qdb_addr_key(): link latencies, hence traces, must not
 * change if that helper's layout does. */
static inline uint64_t addr_pack(qdb_addr a)
{
    return ((uint64_t)a.ip << 16) | a.port;
}

static guint key_hash(gconstpointer k)
{
    return (guint)mix64(*(const uint64_t *)k);
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    return *(const uint64_t *)a == *(const uint64_t *)b;
}

static guint block_hash(gconstpointer k)
{
    const block_key *b = k;
    return (guint)mix64(mix64(b->from) ^ b->to);
}

static gboolean block_equal(gconstpointer a, gconstpointer b)
{
    const block_key *x = a, *y = b;
    return x->from == y->from && x->to == y->to;
}

static inline qdb_time_us sat_add(qdb_time_us a, qdb_time_us b)
{
    return a > QDB_SIMNET_NEVER - b ? QDB_SIMNET_NEVER : a + b;
}

/* t * milli / 1000, saturating. */
static qdb_time_us scale_milli(qdb_time_us t, uint32_t milli)
{
    if (milli == 1000)
        return t;
    unsigned __int128 v = (unsigned __int128)t * milli / 1000;
    return v >= QDB_SIMNET_NEVER ? QDB_SIMNET_NEVER : (qdb_time_us)v;
}

/* Local microseconds elapsed in d virtual ones: d * (1e6 + ppm) / 1e6,
 * rounded down.  Integer arithmetic so every build agrees; monotonic in d. */
static qdb_time_us drift_fwd(qdb_time_us d, int32_t ppm)
{
    if (ppm == 0)
        return d;
    unsigned __int128 v = (unsigned __int128)d * (uint64_t)(1000000 + (int64_t)ppm) / 1000000;
    return v >= QDB_SIMNET_NEVER ? QDB_SIMNET_NEVER : (qdb_time_us)v;
}

/* The least d with drift_fwd(d) >= l. */
static qdb_time_us drift_inv(qdb_time_us l, int32_t ppm)
{
    if (ppm == 0)
        return l;
    uint64_t rate = (uint64_t)(1000000 + (int64_t)ppm);
    unsigned __int128 v = ((unsigned __int128)l * 1000000 + rate - 1) / rate;
    qdb_time_us d = v >= QDB_SIMNET_NEVER ? QDB_SIMNET_NEVER : (qdb_time_us)v;
    /* The division is exact up to rounding; settle the last unit. */
    while (d < QDB_SIMNET_NEVER && drift_fwd(d, ppm) < l)
        d++;
    while (d > 0 && drift_fwd(d - 1, ppm) >= l)
        d--;
    return d;
}

/* ---- endpoint lifetime ------------------------------------------------------------ */

static inline void ep_ref(qdb_sim_endpoint *ep)
{
    ep->refs++;
}

static void ep_unref(qdb_sim_endpoint *ep)
{
    g_assert(ep->refs > 0);
    if (--ep->refs > 0)
        return;
    qdb_simnet *net = ep->net;
    if (ep->rng) {
        g_rand_free(ep->rng);
        net->rngs--;
    }
    net->endpoints_alloc--;
    g_aligned_free(ep);
}

/* The record cache's slot of a packed address: the IPv4 address's low bits
 * (plus the port's, spread), not a hash.  A world's nodes are numbered from
 * one base address, so N of them fill N adjacent slots: 8 bytes a node, which
 * stay in the processor's cache where hashed slots (one cache line a node)
 * did not -- perf at 10,000 nodes: 11% of qdbsim in this lookup. */
static inline size_t rec_slot(uint64_t key)
{
    return (size_t)((key >> 16) + (key & 0xffff) * 40503u) & ((1u << REC_CACHE_BITS) - 1);
}

static addr_rec *rec_find_key(qdb_simnet *net, uint64_t key)
{
    addr_rec **slot = &net->rec_cache[rec_slot(key)];
    if (*slot && (*slot)->key == key)
        return *slot;
    addr_rec *rec = g_hash_table_lookup(net->addrs, &key);
    if (rec)
        *slot = rec; /* misses are not cached: the record may be made later */
    return rec;
}

static addr_rec *rec_find(qdb_simnet *net, qdb_addr a)
{
    return rec_find_key(net, addr_pack(a));
}

static addr_rec *rec_get(qdb_simnet *net, qdb_addr a)
{
    addr_rec *rec = rec_find(net, a);
    if (rec)
        return rec;
    rec = g_new0(addr_rec, 1);
    rec->key = addr_pack(a);
    rec->addr = a;
    rec->slow_milli = 1000;
    g_hash_table_insert(net->addrs, &rec->key, rec);
    return rec;
}

/* The endpoint attached at a packed address, or NULL: rec_find_key(key)->ep,
 * from the endpoint cache when it holds the key. */
static qdb_sim_endpoint *ep_find_key(qdb_simnet *net, uint64_t key)
{
    ep_slot *slot = &net->ep_cache[rec_slot(key)];
    if (slot->key == key && slot->ep)
        return slot->ep;
    addr_rec *rec = rec_find_key(net, key);
    if (!rec || !rec->ep)
        return NULL;
    *slot = (ep_slot){.key = key, .ep = rec->ep};
    return rec->ep;
}

/* ---- event queue glue ------------------------------------------------------------- */

/* Pure: the answer for an entry only changes by detach (which is final) or by
 * a newer wake-up generation (never undone). */
static bool ev_stale(const qdb_event *ev, void *arg)
{
    switch (ev->kind) {
    case EV_TICK: {
        const qdb_sim_endpoint *ep = ev->ptr;
        return ep->dead || ev->gen != ep->timer_gen;
    }
    case EV_FRAME:
        return ((const sim_frame *)ev->ptr)->dst->dead;
    case EV_UNREACH:
        return ((const sim_notice *)ev->ptr)->sender->dead;
    default:
        return false;
    }
}

static void frame_release(qdb_simnet *net, sim_frame *f)
{
    net->frames_in_flight--;
    net->bytes_in_flight -= f->len;
    ep_unref(f->dst);
    if (f->len <= FRAME_SMALL && net->n_free_frames < FRAME_FREE_MAX) {
        f->dst = (qdb_sim_endpoint *)net->free_frames;
        net->free_frames = f;
        net->n_free_frames++;
        return;
    }
    g_free(f);
}

static void ev_discard(qdb_event *ev, void *arg)
{
    qdb_simnet *net = arg;
    switch (ev->kind) {
    case EV_TICK:
        ep_unref(ev->ptr);
        break;
    case EV_FRAME: {
        sim_frame *f = ev->ptr;
        if (!f->dst->dead)
            f->dst->frames_in--;
        frame_release(net, f);
        break;
    }
    case EV_UNREACH: {
        sim_notice *n = ev->ptr;
        ep_unref(n->sender);
        g_free(n);
        break;
    }
    default:
        g_free(ev->ptr);
        break;
    }
}

static const qdb_eventq_ops eventq_ops = {.stale = ev_stale, .discard = ev_discard};

/* The next event step() will process, or NULL.  A wake-up that reaches the
 * top before it is due (its deadline moved later after it was queued: arm()
 * does not push for a later deadline, to keep the queue at one entry per
 * endpoint) is re-queued at its due time with the sequence of the arm() that
 * set it.  So a tick's place is always (fire_at, armed_seq), whenever the
 * re-queueing happens -- which is why qdb_simnet_next_time() may do it. */
static const qdb_event *next_event(qdb_simnet *net)
{
    for (;;) {
        const qdb_event *top = qdb_eventq_peek(net->q);
        if (!top || top->kind != EV_TICK)
            return top;
        qdb_sim_endpoint *ep = top->ptr;
        if (ep->fire_at == top->time && ep->armed_seq == top->seq)
            return top;
        qdb_event ev;
        qdb_eventq_pop(net->q, &ev);
        if (ep->fire_at == QDB_SIMNET_NEVER) {
            ep->queued_at = QDB_SIMNET_NEVER;
            ep_unref(ep);
            continue;
        }
        ev.time = ep->fire_at;
        ev.seq = ep->armed_seq;
        ep->queued_at = ev.time;
        qdb_eventq_push_seq(net->q, &ev); /* the reference moves with it */
    }
}

/* ---- clock seam and timer ------------------------------------------------------------ */

static qdb_time_us local_now(const qdb_sim_endpoint *ep)
{
    return sat_add(ep->anchor_local, drift_fwd(ep->net->now - ep->anchor_virt, ep->ppm));
}

/* Restart the drift computation at the current time, before the drift or the
 * offset changes: the clock stays continuous. */
static void reanchor(qdb_sim_endpoint *ep)
{
    ep->anchor_local = local_now(ep);
    ep->anchor_virt = ep->net->now;
}

/* The first virtual time at which the local clock reads >= deadline. */
static qdb_time_us virt_for_local(const qdb_sim_endpoint *ep, qdb_time_us deadline)
{
    if (deadline <= ep->anchor_local)
        return ep->anchor_virt;
    return sat_add(ep->anchor_virt, drift_inv(deadline - ep->anchor_local, ep->ppm));
}

/* Compute when the armed wake-up is due and make sure the queue holds an
 * entry at or before that time.  Pushes only when the due time is earlier than
 * the entry already queued; the earlier one then turns stale. */
static void timer_schedule(qdb_sim_endpoint *ep)
{
    qdb_simnet *net = ep->net;
    if (!ep->armed)
        return;
    qdb_time_us v = virt_for_local(ep, ep->deadline);
    qdb_time_us fire = ep->arm_virt;
    if (v > ep->arm_virt)
        fire = sat_add(ep->arm_virt, scale_milli(v - ep->arm_virt, ep->slow_milli));
    if (fire < net->now)
        fire = net->now;
    ep->fire_at = fire;
    if (fire == QDB_SIMNET_NEVER || ep->queued_at <= fire)
        return;
    ep->timer_gen++;
    ep->queued_at = fire;
    ep_ref(ep);
    qdb_event ev = {.time = fire, .seq = ep->armed_seq, .ptr = ep, .kind = EV_TICK,
                    .gen = ep->timer_gen};
    qdb_eventq_push_seq(net->q, &ev);
}

static void timer_disarm(qdb_sim_endpoint *ep)
{
    ep->armed = false;
    ep->fire_at = QDB_SIMNET_NEVER;
    if (ep->queued_at != QDB_SIMNET_NEVER) {
        ep->timer_gen++; /* the queued entry is stale now */
        ep->queued_at = QDB_SIMNET_NEVER;
    }
}

static qdb_time_us sim_now(qdb_clock *c)
{
    return local_now(ep_of(c, clock));
}

static void sim_arm(qdb_clock *c, qdb_time_us deadline)
{
    qdb_sim_endpoint *ep = ep_of(c, clock);
    if (ep->dead)
        return;
    if (deadline == QDB_SIMNET_NEVER) {
        timer_disarm(ep);
        return;
    }
    ep->armed = true;
    ep->deadline = deadline;
    ep->arm_virt = ep->net->now;
    ep->armed_seq = qdb_eventq_reserve_seq(ep->net->q);
    timer_schedule(ep);
}

static int64_t sim_wall(qdb_clock *c)
{
    qdb_sim_endpoint *ep = ep_of(c, clock);
    return ep->net->cfg.wall_epoch_us + (int64_t)local_now(ep);
}

/* ---- transport seam ------------------------------------------------------------------- */

static bool chance(qdb_simnet *net, double p)
{
    /* No draw when the fault is off: turning one fault on leaves the others'
     * streams of decisions as they were until its first draw. */
    return p > 0 && g_rand_double(net->rng) < p;
}

/* Uniform in [0, n).  The modulo bias is below n / 2^64: invisible here. */
static qdb_time_us uniform(qdb_simnet *net, qdb_time_us n)
{
    if (n == 0)
        return 0;
    return qdb_rand_u64(net->rng) % n;
}

/* -log2(m / 2^53) for 1 <= m <= 2^53, in 32.24 fixed point.  Integer only,
 * by the bit-by-bit squaring method, rather than libm's log(): the result is
 * then the same on every machine and libm version, and the trace hash with
 * it.  24 fractional bits put the error far below a microsecond. */
static uint64_t neg_log2_frac53(uint64_t m)
{
    int e = 63 - __builtin_clzll(m);         /* integer part of log2(m) */
    uint64_t z = m << (62 - e);              /* m / 2^e in [1, 2), Q62 */
    uint64_t frac = 0;
    for (int i = 0; i < 24; i++) {
        z = (uint64_t)(((unsigned __int128)z * z) >> 62); /* [1, 4) */
        /* z >= 2: the bit is 1 and z is halved.  Without a branch: taken
         * half the time at random, it was mispredicted as often (perf). */
        uint64_t bit = z >> 63;
        z >>= bit;
        frac = (frac << 1) | bit;
    }
    return ((uint64_t)53 << 24) - (((uint64_t)e << 24) | frac);
}

/* The base latency of the link {a, b}: latency_min + Exp(latency_mean), from
 * a hash so that no per-link state exists.  Symmetric in a and b.  Inverse
 * transform: Exp = -mean * ln(1 - u) = mean * ln2 * -log2(1 - u). */
static inline uint64_t link_hash(const qdb_simnet *net, uint64_t a, uint64_t b)
{
    if (a > b) {
        uint64_t t = a;
        a = b;
        b = t;
    }
    return mix64(mix64(mix64(net->cfg.seed ^ UINT64_C(0x9e3779b97f4a7c15)) ^ a) ^ b);
}

static inline link_slot *link_slot_of(const qdb_simnet *net, uint64_t h)
{
    return &net->link_cache[h & ((1u << LINK_CACHE_BITS) - 1)];
}

static qdb_time_us link_base(qdb_simnet *net, uint64_t a, uint64_t b)
{
    if (a > b) {
        uint64_t t = a;
        a = b;
        b = t;
    }
    if (net->cfg.latency_mean == 0)
        return net->cfg.latency_min;
    uint64_t h = link_hash(net, a, b);
    link_slot *slot = link_slot_of(net, h);
    if (slot->a == a && slot->b == b)
        return slot->base;
    uint64_t m = (UINT64_C(1) << 53) - (h >> 11); /* 2^53 * (1 - u), u in [0, 1) */
    const uint64_t ln2_q64 = UINT64_C(0xb17217f7d1cf79ab);
    unsigned __int128 x = (unsigned __int128)net->cfg.latency_mean * neg_log2_frac53(m) >> 24;
    x = (x >> 64) ? QDB_SIMNET_NEVER : (x * ln2_q64) >> 64; /* at most ~37 means */
    *slot = (link_slot){.a = a, .b = b, .base = sat_add(net->cfg.latency_min, (qdb_time_us)x)};
    return slot->base;
}

/* dst_slow: the destination's slow_milli (1000 for an address never seen) */
static qdb_time_us link_latency(qdb_simnet *net, const qdb_sim_endpoint *src, uint64_t dkey,
                                uint32_t dst_slow)
{
    qdb_time_us lat = sat_add(link_base(net, src->rec->key, dkey), uniform(net, net->cfg.jitter));
    lat = scale_milli(lat, src->slow_milli);
    return scale_milli(lat, dst_slow);
}

static bool partitioned(const qdb_simnet *net, const addr_rec *src, uint64_t dkey,
                        const addr_rec *dst)
{
    if (src->group && dst && dst->group && src->group != dst->group)
        return true;
    if (g_hash_table_size(net->blocks) == 0)
        return false;
    block_key k = {src->key, dkey};
    return g_hash_table_contains(net->blocks, &k);
}

static void push_frame(qdb_simnet *net, const qdb_sim_endpoint *src, qdb_sim_endpoint *dst,
                       const uint8_t *bytes, size_t len, qdb_time_us at)
{
    sim_frame *f;
    if (len <= FRAME_SMALL && net->free_frames) {
        f = net->free_frames;
        net->free_frames = (sim_frame *)f->dst;
        net->n_free_frames--;
    } else {
        f = g_malloc(sizeof *f + (len <= FRAME_SMALL ? FRAME_SMALL : len));
    }
    f->dst = dst;
    f->dst_owner = dst->owner;
    f->dst_rec = dst->rec;
    f->src_ep = src;
    f->src_rec = src->rec;
    f->src = src->rec->addr;
    f->link = link_slot_of(net, link_hash(net, src->rec->key, dst->rec->key));
    f->len = (uint32_t)len;
    if (len)
        memcpy(f->bytes, bytes, len);
    ep_ref(dst);
    dst->frames_in++;
    net->frames_in_flight++;
    net->bytes_in_flight += len;
    qdb_eventq_push(net->q, at, EV_FRAME, 0, f);
}

static int sim_send(qdb_transport *t, qdb_addr dst, const uint8_t *frame, size_t len)
{
    qdb_sim_endpoint *ep = ep_of(t, transport);
    qdb_simnet *net = ep->net;
    if (ep->dead)
        return qdb_error_set(t->errmsg, QDB_E_NOT_CONNECTED, "endpoint detached");
    if (qdb_addr_is_null(dst))
        return qdb_error_set(t->errmsg, QDB_E_INVALID_ARGUMENT, "null destination address");
    if (len > UINT32_MAX)
        return qdb_error_set(t->errmsg, QDB_E_OVERSIZED, "frame larger than 4 GiB");
    net->st.frames_sent++;
    uint64_t dkey = addr_pack(dst);
    /* Attached (nearly always), the destination's record is read only
     * through its endpoint's copies, and for a partition. */
    qdb_sim_endpoint *dep = ep_find_key(net, dkey);
    addr_rec *drec = dep ? dep->rec : rec_find_key(net, dkey);
    if (partitioned(net, ep->rec, dkey, drec)) {
        net->st.dropped_partition++;
        return 0;
    }
    if (ep->host_down || (dep ? dep->host_down : drec && drec->host_down)) {
        /* A machine that is off answers nothing, not even a reset: the
         * sender learns only by its own timeout. */
        net->st.dropped_host++;
        return 0;
    }
    if (!dep) {
        net->st.refused++;
        qdb_time_us delay = net->cfg.refused_delay;
        if (delay == QDB_SIMNET_REFUSED_RTT) {
            qdb_time_us one_way = link_latency(net, ep, dkey, drec ? drec->slow_milli : 1000);
            delay = sat_add(one_way, one_way);
        }
        sim_notice *n = g_new(sim_notice, 1);
        n->sender = ep;
        n->dead = dst;
        n->reset = false;
        ep_ref(ep);
        qdb_eventq_push(net->q, sat_add(net->now, delay), EV_UNREACH, 0, n);
        return 0;
    }
    if (chance(net, net->cfg.loss)) {
        net->st.dropped_loss++;
        return 0;
    }
    qdb_time_us at = sat_add(net->now, link_latency(net, ep, dkey, dep->slow_milli));
    if (chance(net, net->cfg.reorder))
        at = sat_add(at, uniform(net, net->cfg.reorder_window));
    push_frame(net, ep, dep, frame, len, at);
    if (chance(net, net->cfg.dup)) {
        net->st.duplicates++;
        push_frame(net, ep, dep, frame, len,
                   sat_add(at, link_latency(net, ep, dkey, dep->slow_milli)));
    }
    return 0;
}

/* ---- random seam ------------------------------------------------------------------------ */

static uint64_t sim_next(qdb_random *r)
{
    qdb_sim_endpoint *ep = ep_of(r, random);
    if (!ep->rng) {
        guint32 seed[2] = {(guint32)ep->rng_seed, (guint32)(ep->rng_seed >> 32)};
        ep->rng = g_rand_new_with_seed_array(seed, 2);
        ep->net->rngs++;
    }
    return qdb_rand_u64(ep->rng);
}

/* ---- trace hash and hash log --------------------------------------------------------------- */

static gpointer hasher_main(gpointer arg)
{
    qdb_simnet *net = arg;
    g_mutex_lock(&net->trace_mu);
    for (;;) {
        while (!net->todo && !net->hasher_stop)
            g_cond_wait(&net->trace_cond, &net->trace_mu);
        trace_block *b = net->todo;
        if (!b)
            break; /* stopped, and nothing is left */
        net->todo = b->next;
        net->n_todo--;
        net->hashing = true;
        g_mutex_unlock(&net->trace_mu);
        EVP_DigestUpdate(net->trace, b->data, b->len);
        g_mutex_lock(&net->trace_mu);
        net->hashing = false;
        b->len = 0;
        b->next = net->spare;
        net->spare = b;
        g_cond_broadcast(&net->trace_cond);
    }
    g_mutex_unlock(&net->trace_mu);
    return NULL;
}

/* The full current block to the hashing thread, an empty one in its place. */
static void trace_hand_off(qdb_simnet *net)
{
    trace_block *b = net->trace_cur;
    if (!net->hasher)
        net->hasher = g_thread_try_new("qdbsim-hash", hasher_main, net, NULL);
    if (!net->hasher) { /* no thread: hashed here */
        EVP_DigestUpdate(net->trace, b->data, b->len);
        b->len = 0;
        return;
    }
    g_mutex_lock(&net->trace_mu);
    while (net->n_todo >= TRACE_AHEAD)
        g_cond_wait(&net->trace_cond, &net->trace_mu);
    b->next = NULL;
    if (net->todo)
        net->todo_last->next = b;
    else
        net->todo = b;
    net->todo_last = b;
    net->n_todo++;
    net->trace_cur = net->spare;
    if (net->spare)
        net->spare = net->spare->next;
    g_cond_broadcast(&net->trace_cond);
    g_mutex_unlock(&net->trace_mu);
    if (!net->trace_cur) {
        net->trace_cur = g_new(trace_block, 1);
        net->trace_cur->len = 0;
    }
}

/* Everything put so far into the hash context: the thread has caught up
 * and is idle, the current block is hashed here. */
static void trace_flush(qdb_simnet *net)
{
    if (net->hasher) {
        g_mutex_lock(&net->trace_mu);
        while (net->todo || net->hashing)
            g_cond_wait(&net->trace_cond, &net->trace_mu);
        g_mutex_unlock(&net->trace_mu);
    }
    if (net->trace_cur && net->trace_cur->len) {
        EVP_DigestUpdate(net->trace, net->trace_cur->data, net->trace_cur->len);
        net->trace_cur->len = 0;
    }
}

static void trace_put(qdb_simnet *net, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!net->trace_cur) {
        net->trace_cur = g_new(trace_block, 1);
        net->trace_cur->len = 0;
    }
    while (len) {
        trace_block *b = net->trace_cur;
        size_t n = MIN(len, TRACE_BLOCK - b->len);
        memcpy(b->data + b->len, p, n);
        b->len += n;
        p += n;
        len -= n;
        if (b->len == TRACE_BLOCK)
            trace_hand_off(net);
    }
}

static void trace_blocks_free(trace_block *b)
{
    while (b) {
        trace_block *next = b->next;
        g_free(b);
        b = next;
    }
}

static void digest_now(qdb_simnet *net, uint8_t out[32])
{
    unsigned int n = 0;
    trace_flush(net);
    EVP_MD_CTX_copy_ex(net->scratch, net->trace);
    EVP_DigestFinal_ex(net->scratch, out, &n);
}

static const char *kind_name(int kind)
{
    switch (kind) {
    case EV_FRAME: return "frame";
    case EV_TICK: return "tick";
    case EV_UNREACH: return "unreach";
    case EV_CALL: return "call";
    default: return "add";
    }
}

/* Hash one item; write or check its hash-log line.  False when the check
 * found a divergence (recorded in net->diverged). */
static bool trace_item(qdb_simnet *net, int kind, const qdb_addr *src, const qdb_addr *dst,
                       bool has_data, const void *data, size_t len)
{
    uint8_t hdr[1 + 8 + 6 + 6 + 4];
    size_t n = 0;
    hdr[n++] = (uint8_t)kind;
    qdb_be64_put(hdr + n, net->now), n += 8;
    if (src) {
        qdb_be32_put(hdr + n, src->ip), n += 4;
        qdb_be16_put(hdr + n, src->port), n += 2;
    }
    if (dst) {
        qdb_be32_put(hdr + n, dst->ip), n += 4;
        qdb_be16_put(hdr + n, dst->port), n += 2;
    }
    if (has_data) {
        qdb_be32_put(hdr + n, (uint32_t)len), n += 4;
    }
    trace_put(net, hdr, n);
    if (has_data && len)
        trace_put(net, data, len);

    if (!net->log_write && !net->log_check)
        return true;
    uint8_t d[32];
    digest_now(net, d);
    char hex[17], s[QDB_ADDR_STRLEN] = "-", t[QDB_ADDR_STRLEN] = "-", line[128];
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    if (src)
        qdb_addr_format(*src, s);
    if (dst)
        qdb_addr_format(*dst, t);
    snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %s %s %s %s", ++net->log_n, net->now,
             kind_name(kind), s, t, hex);
    if (net->log_write)
        fprintf(net->log_write, "%s\n", line);
    if (net->log_check && !net->diverged) {
        ssize_t got = getline(&net->line_buf, &net->line_cap, net->log_check);
        if (got > 0 && net->line_buf[got - 1] == '\n')
            net->line_buf[got - 1] = '\0';
        if (got < 0 || strcmp(net->line_buf, line) != 0) {
            net->diverged = g_strdup_printf("hash log diverged at item %" PRIu64 "\n"
                                            "  expected: %s\n  actual:   %s",
                                            net->log_n, got < 0 ? "(end of log)" : net->line_buf,
                                            line);
            return false;
        }
    }
    return true;
}

void qdb_simnet_trace_add(qdb_simnet *net, const void *data, size_t len)
{
    trace_item(net, EV_ADD, NULL, NULL, true, data, len);
}

void qdb_simnet_trace_digest(qdb_simnet *net, uint8_t out[32])
{
    digest_now(net, out);
}

void qdb_simnet_trace_hex(qdb_simnet *net, char out[17])
{
    uint8_t d[32];
    digest_now(net, d);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void qdb_simnet_hash_log_write(qdb_simnet *net, FILE *f)
{
    net->log_write = f;
}

void qdb_simnet_hash_log_check(qdb_simnet *net, FILE *f)
{
    net->log_check = f;
}

char *qdb_simnet_diverged(const qdb_simnet *net)
{
    return g_strdup(net->diverged);
}

/* ---- running ----------------------------------------------------------------------------------- */

/* Hash the popped event, then deliver it unless the hash log diverged. */
static void process(qdb_simnet *net, qdb_event *ev)
{
    switch (ev->kind) {
    case EV_FRAME: {
        sim_frame *f = ev->ptr;
        qdb_sim_endpoint *dst = f->dst;
        dst->frames_in--;
        if (trace_item(net, EV_FRAME, &f->src, &dst->rec->addr, true, f->bytes, f->len)) {
            net->st.events++;
            net->st.frames_delivered++;
            if (dst->ops)
                dst->ops->recv(dst->owner, f->src, f->bytes, f->len);
        }
        frame_release(net, f); /* after recv: the reference keeps dst alive through it */
        break;
    }
    case EV_TICK: {
        qdb_sim_endpoint *ep = ev->ptr;
        if (trace_item(net, EV_TICK, NULL, &ep->rec->addr, false, NULL, 0)) {
            net->st.events++;
            net->st.ticks++;
            ep->armed = false;
            ep->fire_at = QDB_SIMNET_NEVER;
            ep->queued_at = QDB_SIMNET_NEVER;
            if (ep->ops && ep->ops->tick)
                ep->ops->tick(ep->owner);
        }
        ep_unref(ep);
        break;
    }
    case EV_UNREACH: {
        sim_notice *n = ev->ptr;
        qdb_sim_endpoint *ep = n->sender;
        if (trace_item(net, EV_UNREACH, &n->dead, &ep->rec->addr, false, NULL, 0)) {
            net->st.events++;
            net->st.unreachable++;
            if (ep->ops && n->reset && ep->ops->reset)
                ep->ops->reset(ep->owner, n->dead);
            else if (ep->ops && ep->ops->unreachable)
                ep->ops->unreachable(ep->owner, n->dead);
        }
        ep_unref(ep);
        g_free(n);
        break;
    }
    case EV_CALL: {
        sim_call *c = ev->ptr;
        if (trace_item(net, EV_CALL, NULL, NULL, false, NULL, 0)) {
            net->st.events++;
            net->st.callbacks++;
            c->fn(c->arg);
        }
        g_free(c);
        break;
    }
    default:
        g_assert_not_reached();
    }
}

qdb_time_us qdb_simnet_now(const qdb_simnet *net)
{
    return net->now;
}

qdb_time_us qdb_simnet_next_time(qdb_simnet *net)
{
    const qdb_event *top = next_event(net);
    return top ? top->time : QDB_SIMNET_NEVER;
}

/* Every event is a chain of cache misses: the payload, then the endpoint,
 * its address record and its node.  While one event runs, ask the processor
 * for the next one's endpoint, record and node (its payload was asked for a
 * step earlier), and for the payloads of the two after it.  Prefetches are
 * hints: they read nothing, so they cannot change what happens, and a stale
 * entry or a hint that went out of date costs only a wasted load. */
static inline void prefetch_ep(const qdb_sim_endpoint *ep)
{
    __builtin_prefetch(ep);
    __builtin_prefetch((const char *)ep + 64);
    __builtin_prefetch(&ep->clock.now);
    __builtin_prefetch(&ep->transport.send);
}

/* A node keeps what most events read in its first lines (node_internal.h,
 * struct qdb_node); a smaller owner just wastes a hint.  Eleven, not nine:
 * the node's round-trip table and predecessor, read by most frames, end
 * there (perf at 10,000 nodes: 3% of qdbsim in their misses). */
#define OWNER_HOT_LINES 11

static inline void prefetch_owner(const void *owner)
{
    for (int i = 0; i < OWNER_HOT_LINES; i++)
        __builtin_prefetch((const char *)owner + 64 * i);
}

static void prefetch_upcoming(qdb_simnet *net)
{
    const qdb_event *up[3];
    size_t k = qdb_eventq_upcoming(net->q, up, 3);
    if (k == 0)
        return;
    if (up[0]->kind == EV_FRAME) {
        const sim_frame *f = up[0]->ptr;
        prefetch_ep(f->dst);
        __builtin_prefetch(f->dst_rec);
        prefetch_owner(f->dst_owner);
        /* Most frames are asked something (FIND, STABILIZE, PING): what
         * send() reads for the answer back to the sender. */
        __builtin_prefetch(f->src_ep);
        __builtin_prefetch(f->src_rec);
        __builtin_prefetch(f->link);
    } else if (up[0]->kind == EV_TICK) {
        const qdb_sim_endpoint *ep = up[0]->ptr;
        prefetch_ep(ep);
        __builtin_prefetch(&ep->random.next); /* a round draws its jitter */
        __builtin_prefetch(ep->rec);
        prefetch_owner(ep->owner);
    }
    for (size_t i = 1; i < k; i++)
        __builtin_prefetch(up[i]->ptr);
}

/* The event's owner's own hint (qdb_inbound.prefetch), in two passes: pass
 * 0 for the next event once the current one has run (its owner's lines,
 * asked for before, have arrived by then: the owner reads its pointers from
 * the cache and the misses behind them overlap with the queue's pop), pass 1
 * for the event just popped (what pass 0 fetched is there: one more level).
 * A wake-up ahead also gets the owner's prefetch_tick.  The next event may
 * be stale, and its owner gone: a dead endpoint's owner is not asked. */
/* A round draws its jitter from the endpoint's GRand: two cache misses in a
 * row, the Mersenne Twister's index (after its GRAND_WORDS words) and
 * the word it points at (perf at 10,000 nodes, 1-s rounds: 2-3% of
 * qdbsim).  Pass 0 asks for the index, pass 1 reads it and asks for the
 * word.  GRand is opaque: if its layout ever changes, these are hints at
 * the wrong bytes, which cost a load and change nothing. */
static void prefetch_rng(const qdb_sim_endpoint *ep, int pass)
{
    if (!ep->rng)
        return;
    const guint32 *words = (const guint32 *)(const void *)ep->rng;
    if (pass == 0)
        __builtin_prefetch(&words[GRAND_WORDS]);
    else if (words[GRAND_WORDS] < GRAND_WORDS)
        __builtin_prefetch(&words[words[GRAND_WORDS]]);
}

static void prefetch_deep(const qdb_event *ev, int pass)
{
    const qdb_sim_endpoint *ep = NULL;
    if (ev->kind == EV_FRAME)
        ep = ((const sim_frame *)ev->ptr)->dst;
    else if (ev->kind == EV_TICK)
        ep = ev->ptr;
    if (!ep || ep->dead || !ep->ops)
        return;
    if (ep->ops->prefetch)
        ep->ops->prefetch(ep->owner, pass);
    if (ev->kind == EV_TICK)
        prefetch_rng(ep, pass);
    if (pass == 0 && ev->kind == EV_TICK && ep->ops->prefetch_tick)
        ep->ops->prefetch_tick(ep->owner);
}

bool qdb_simnet_step(qdb_simnet *net)
{
    g_return_val_if_fail(!net->running, false);
    if (net->diverged || !next_event(net))
        return false;
    qdb_event ev;
    qdb_eventq_pop(net->q, &ev); /* the top next_event() settled */
    prefetch_deep(&ev, 1);
    prefetch_upcoming(net);
    net->now = ev.time;
    net->running = true;
    process(net, &ev);
    net->running = false;
    const qdb_event *up;
    if (qdb_eventq_upcoming(net->q, &up, 1))
        prefetch_deep(up, 0);
    return net->diverged == NULL;
}

void qdb_simnet_run_until(qdb_simnet *net, qdb_time_us t)
{
    while (qdb_simnet_next_time(net) <= t && qdb_simnet_step(net))
        ;
    if (!net->diverged && net->now < t && t != QDB_SIMNET_NEVER)
        net->now = t;
}

bool qdb_simnet_step_until(qdb_simnet *net, bool (*done)(void *arg), void *arg,
                           qdb_time_us limit)
{
    for (;;) {
        if (done(arg))
            return true;
        if (qdb_simnet_next_time(net) > limit || !qdb_simnet_step(net))
            break;
    }
    if (!net->diverged && net->now < limit && limit != QDB_SIMNET_NEVER)
        net->now = limit;
    return false;
}

void qdb_simnet_at(qdb_simnet *net, qdb_time_us t, void (*fn)(void *arg), void *arg)
{
    sim_call *c = g_new(sim_call, 1);
    c->fn = fn;
    c->arg = arg;
    qdb_eventq_push(net->q, t < net->now ? net->now : t, EV_CALL, 0, c);
}

/* ---- world -------------------------------------------------------------------------------------- */

void qdb_simnet_config_defaults(qdb_simnet_config *cfg)
{
    *cfg = (qdb_simnet_config){
        .seed = 0,
        .latency_mean = 50 * QDB_US_PER_MS,
        .latency_min = 0,
        .jitter = 0,
        .loss = 0,
        .dup = 0,
        .reorder = 0,
        .reorder_window = 200 * QDB_US_PER_MS,
        .refused_delay = QDB_SIMNET_REFUSED_RTT,
        .wall_epoch_us = INT64_C(1767225600000000),
    };
}

static double clamp01(double p)
{
    return p > 0 ? (p < 1 ? p : 1) : 0; /* NaN -> 0 */
}

qdb_simnet *qdb_simnet_new(const qdb_simnet_config *cfg)
{
    qdb_simnet *net = g_new0(qdb_simnet, 1);
    if (cfg)
        net->cfg = *cfg;
    else
        qdb_simnet_config_defaults(&net->cfg);
    net->cfg.loss = clamp01(net->cfg.loss);
    net->cfg.dup = clamp01(net->cfg.dup);
    net->cfg.reorder = clamp01(net->cfg.reorder);
    net->q = qdb_eventq_new(&eventq_ops, net);
    guint32 seed[2] = {(guint32)net->cfg.seed, (guint32)(net->cfg.seed >> 32)};
    net->rng = g_rand_new_with_seed_array(seed, 2);
    net->addrs = g_hash_table_new_full(key_hash, key_equal, NULL, g_free);
    net->rec_cache = g_new0(addr_rec *, 1u << REC_CACHE_BITS);
    net->ep_cache = g_new0(ep_slot, 1u << REC_CACHE_BITS);
    net->link_cache = g_new0(link_slot, 1u << LINK_CACHE_BITS);
    net->blocks = g_hash_table_new_full(block_hash, block_equal, g_free, NULL);
    net->trace = EVP_MD_CTX_new();
    net->scratch = EVP_MD_CTX_new();
    g_assert(net->trace && net->scratch);
    EVP_DigestInit_ex(net->trace, EVP_sha256(), NULL);
    g_mutex_init(&net->trace_mu);
    g_cond_init(&net->trace_cond);
    return net;
}

void qdb_simnet_free(qdb_simnet *net)
{
    if (!net)
        return;
    g_return_if_fail(!net->running);
    /* Queue first: it drops the events' references, then only the attachment
     * references are left.  Table order is harmless here: nothing runs. */
    qdb_eventq_free(net->q);
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, net->addrs);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        addr_rec *rec = value;
        if (rec->ep) {
            rec->ep->dead = true;
            ep_unref(rec->ep);
        }
    }
    g_hash_table_destroy(net->addrs);
    g_hash_table_destroy(net->blocks);
    g_free(net->rec_cache);
    g_free(net->ep_cache);
    g_free(net->link_cache);
    while (net->free_frames) {
        sim_frame *f = net->free_frames;
        net->free_frames = (sim_frame *)f->dst;
        g_free(f);
    }
    g_rand_free(net->rng);
    if (net->hasher) {
        g_mutex_lock(&net->trace_mu);
        net->hasher_stop = true;
        g_cond_broadcast(&net->trace_cond);
        g_mutex_unlock(&net->trace_mu);
        g_thread_join(net->hasher);
    }
    g_free(net->trace_cur); /* alone: its next is stale */
    trace_blocks_free(net->spare);
    g_mutex_clear(&net->trace_mu);
    g_cond_clear(&net->trace_cond);
    EVP_MD_CTX_free(net->trace);
    EVP_MD_CTX_free(net->scratch);
    free(net->line_buf); /* getline() allocates with malloc */
    g_free(net->diverged);
    g_free(net);
}

/* ---- endpoints ---------------------------------------------------------------------------------- */

qdb_sim_endpoint *qdb_simnet_attach(qdb_simnet *net, qdb_addr addr,
                                    const qdb_inbound *ops, void *owner,
                                    uint64_t rng_seed)
{
    g_return_val_if_fail(ops == NULL || ops->recv, NULL);
    if (qdb_addr_is_null(addr))
        return NULL;
    addr_rec *rec = rec_get(net, addr);
    if (rec->ep)
        return NULL;
    qdb_sim_endpoint *ep = g_aligned_alloc0(1, sizeof *ep, EP_ALIGN);
    ep->clock = (qdb_clock){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                            .now = sim_now, .arm = sim_arm, .wall = sim_wall};
    ep->transport = (qdb_transport){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                                    .send = sim_send};
    ep->random = (qdb_random){.version = QDB_SEAM_VERSION, .data = owner, .impl = ep,
                              .next = sim_next};
    ep->net = net;
    ep->rec = rec;
    ep->ops = ops;
    ep->owner = owner;
    ep->rng_seed = rng_seed;
    ep->ppm = rec->ppm;
    ep->slow_milli = rec->slow_milli;
    ep->host_down = rec->host_down;
    ep->refs = 1;
    ep->anchor_virt = ep->anchor_local = net->now;
    ep->fire_at = ep->queued_at = QDB_SIMNET_NEVER;
    rec->ep = ep;
    net->ep_cache[rec_slot(rec->key)] = (ep_slot){.key = rec->key, .ep = ep};
    net->st.endpoints++;
    net->endpoints_alloc++;
    return ep;
}

void qdb_simnet_detach(qdb_simnet *net, qdb_sim_endpoint *ep)
{
    g_return_if_fail(ep && ep->net == net && !ep->dead);
    ep->dead = true; /* its queued events are stale from now on */
    ep->rec->ep = NULL;
    ep_slot *slot = &net->ep_cache[rec_slot(ep->rec->key)];
    if (slot->ep == ep)
        *slot = (ep_slot){0};
    net->st.dropped_dead += ep->frames_in;
    ep->armed = false;
    ep->fire_at = ep->queued_at = QDB_SIMNET_NEVER;
    net->st.endpoints--;
    ep_unref(ep);
}

qdb_sim_endpoint *qdb_simnet_lookup(qdb_simnet *net, qdb_addr addr)
{
    addr_rec *rec = rec_find(net, addr);
    return rec ? rec->ep : NULL;
}

qdb_clock *qdb_sim_endpoint_clock(qdb_sim_endpoint *ep)
{
    return &ep->clock;
}

qdb_transport *qdb_sim_endpoint_transport(qdb_sim_endpoint *ep)
{
    return &ep->transport;
}

qdb_random *qdb_sim_endpoint_random(qdb_sim_endpoint *ep)
{
    return &ep->random;
}

qdb_addr qdb_sim_endpoint_addr(const qdb_sim_endpoint *ep)
{
    return ep->rec->addr;
}

void qdb_sim_endpoint_bind(qdb_sim_endpoint *ep, const qdb_inbound *ops, void *owner)
{
    g_return_if_fail(ops == NULL || ops->recv);
    ep->ops = ops;
    ep->owner = owner;
    ep->clock.data = ep->transport.data = ep->random.data = owner;
}

void *qdb_sim_endpoint_owner(const qdb_sim_endpoint *ep)
{
    return ep->owner;
}

/* ---- fault setters ---------------------------------------------------------------------------------- */

void qdb_simnet_set_loss(qdb_simnet *net, double p)
{
    net->cfg.loss = clamp01(p);
}

void qdb_simnet_set_dup(qdb_simnet *net, double p)
{
    net->cfg.dup = clamp01(p);
}

void qdb_simnet_set_reorder(qdb_simnet *net, double p, qdb_time_us window)
{
    net->cfg.reorder = clamp01(p);
    net->cfg.reorder_window = window;
}

void qdb_simnet_block(qdb_simnet *net, qdb_addr from, qdb_addr to)
{
    block_key k = {addr_pack(from), addr_pack(to)};
    if (g_hash_table_contains(net->blocks, &k))
        return;
    block_key *nk = g_new(block_key, 1);
    *nk = k;
    g_hash_table_add(net->blocks, nk);
}

void qdb_simnet_unblock(qdb_simnet *net, qdb_addr from, qdb_addr to)
{
    block_key k = {addr_pack(from), addr_pack(to)};
    g_hash_table_remove(net->blocks, &k);
}

void qdb_simnet_set_host_down(qdb_simnet *net, qdb_addr addr, bool down)
{
    addr_rec *rec = rec_get(net, addr);
    rec->host_down = down;
    if (rec->ep)
        rec->ep->host_down = down;
}

bool qdb_simnet_host_down(qdb_simnet *net, qdb_addr addr)
{
    addr_rec *rec = rec_find(net, addr);
    return rec && rec->host_down;
}

void qdb_simnet_set_group(qdb_simnet *net, qdb_addr addr, int group)
{
    if (group == 0) {
        addr_rec *rec = rec_find(net, addr);
        if (rec)
            rec->group = 0;
        return;
    }
    rec_get(net, addr)->group = group;
}

void qdb_simnet_heal_all(qdb_simnet *net)
{
    g_hash_table_remove_all(net->blocks);
    /* Iteration order is harmless: every record gets the same value. */
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, net->addrs);
    while (g_hash_table_iter_next(&it, NULL, &value))
        ((addr_rec *)value)->group = 0;
}

bool qdb_simnet_is_blocked(qdb_simnet *net, qdb_addr from, qdb_addr to)
{
    addr_rec *src = rec_find(net, from);
    addr_rec *dst = rec_find(net, to);
    addr_rec tmp = {.key = addr_pack(from)};
    return partitioned(net, src ? src : &tmp, addr_pack(to), dst);
}

void qdb_simnet_reset(qdb_simnet *net, qdb_addr at, qdb_addr peer)
{
    addr_rec *rec = rec_find(net, at);
    if (!rec || !rec->ep)
        return;
    sim_notice *n = g_new(sim_notice, 1);
    n->sender = rec->ep;
    n->dead = peer;
    n->reset = true;
    ep_ref(rec->ep);
    qdb_eventq_push(net->q, net->now, EV_UNREACH, 0, n);
}

void qdb_simnet_set_slow(qdb_simnet *net, qdb_addr addr, double factor)
{
    g_return_if_fail(factor > 0);
    double m = factor * 1000 + 0.5; /* rounded by the conversion below */
    addr_rec *rec = rec_get(net, addr);
    rec->slow_milli = m < 1 ? 1 : m > UINT32_MAX ? UINT32_MAX : (uint32_t)m;
    if (rec->ep) {
        rec->ep->slow_milli = rec->slow_milli;
        timer_schedule(rec->ep);
    }
}

void qdb_simnet_set_drift(qdb_simnet *net, qdb_addr addr, int32_t ppm)
{
    g_return_if_fail(ppm > -1000000);
    addr_rec *rec = rec_get(net, addr);
    if (rec->ep)
        reanchor(rec->ep); /* with the old drift */
    rec->ppm = ppm;
    if (rec->ep) {
        rec->ep->ppm = ppm;
        timer_schedule(rec->ep);
    }
}

bool qdb_simnet_clock_jump(qdb_simnet *net, qdb_addr addr, qdb_time_us delta)
{
    qdb_sim_endpoint *ep = qdb_simnet_lookup(net, addr);
    if (!ep)
        return false;
    reanchor(ep);
    ep->anchor_local = sat_add(ep->anchor_local, delta);
    timer_schedule(ep);
    return true;
}

/* ---- statistics ---------------------------------------------------------------------------------- */

void qdb_simnet_get_stats(const qdb_simnet *net, qdb_simnet_stats *out)
{
    *out = net->st;
    out->queued = qdb_eventq_size(net->q);
}

size_t qdb_simnet_memory(const qdb_simnet *net)
{
    /* GHashTable keeps a key, a value and a hash per bucket, buckets at most
     * about twice the entries. */
    const size_t bucket = 2 * (2 * sizeof(void *) + sizeof(guint));
    size_t recs = g_hash_table_size(net->addrs);
    size_t blocks = g_hash_table_size(net->blocks);
    return sizeof *net + qdb_eventq_memory(net->q) +
           ((sizeof(addr_rec *) + sizeof(ep_slot)) << REC_CACHE_BITS) +
           (sizeof(link_slot) << LINK_CACHE_BITS) +
           net->n_free_frames * (sizeof(sim_frame) + FRAME_SMALL) +
           net->frames_in_flight * sizeof(sim_frame) + net->bytes_in_flight +
           net->endpoints_alloc * sizeof(qdb_sim_endpoint) + (net->rngs + 1) * GRAND_BYTES +
           recs * (sizeof(addr_rec) + bucket) + blocks * (sizeof(block_key) + bucket);
}

/* SPDX-License-Identifier: BSD-2-Clause */
/* Entry requests, client sessions, at-most-once replies, and hand-over.
 *
 * Sections
 *   arcs of the ring as key ranges
 *   sessions and the reply memory (dedup)
 *   entry requests
 *   hand-over: pushing what we do not own, receiving what we do
 *
 * Storage keys are ID || alias, so "the entries whose ID lies in (a, b]" is
 * one or two key ranges, and hand-over is a range scan.
 */
#define G_LOG_DOMAIN "qdb-node"

#include <string.h>

#include "common/hindex.h"
#include "node_internal.h"
#include "record.h"
#include "stray.h"

/* ---- arcs ------------------------------------------------------------------- */

/* A storage iterate() stops where fn asks, but answers only the store's
 * own status: an arc that wraps past zero is two of them, and the second
 * must not start once fn stopped the first.  Without this a batch filled
 * in (a, max] took one more record past zero, the caller's cursor moved to
 * it, and the rest of (a, max] was never sent (issue 8). */
typedef struct arc_walk {
    qdb_storage_iter_fn fn;
    void *arg;
    int stop; /* fn's last answer */
} arc_walk;

static int arc_step(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    arc_walk *w = arg;
    return w->stop = w->fn(w->arg, k, kl, v, vl);
}

/* One key range [from, to) (to NULL: to the end): the store's error, else
 * fn's stop value. */
static int arc_range(qdb_storage *st, const qdb_id *from, bool from_start, const qdb_id *to,
                     arc_walk *w)
{
    int rc = st->iterate(st, from->b, from_start ? 0 : QDB_ID_BYTES, to ? to->b : NULL,
                         to ? QDB_ID_BYTES : 0, arc_step, w);
    return rc ? rc : w->stop;
}

/* Calls fn for every stored entry whose ID lies in (a, b], clockwise, in ring
 * order starting after a.  a == b: the whole circle.  Returns fn's stop value
 * (or the store's error). */
int serve_iterate_arc(qdb_node *n, const qdb_id *a, const qdb_id *b, qdb_storage_iter_fn fn,
                      void *arg)
{
    qdb_storage *st = n->storage;
    arc_walk w = {fn, arg, 0};
    qdb_id from, to, zero = {{0}};
    qdb_id_add_pow2(&from, a, 0); /* a + 1 */
    qdb_id_add_pow2(&to, b, 0);   /* b + 1: keys "b || alias" sort before it */
    bool to_wraps = qdb_id_eq(&to, &zero); /* b is the maximum ID */
    if (qdb_id_eq(a, b)) {
        /* the whole circle, starting after a */
        int rc = arc_range(st, &from, false, NULL, &w);
        if (rc || qdb_id_eq(&from, &zero))
            return rc;
        return arc_range(st, &zero, true, &from, &w);
    }
    if (qdb_id_cmp(a, b) < 0) /* no wrap */
        return arc_range(st, &from, false, to_wraps ? NULL : &to, &w);
    /* wraps past zero: (a, max] then [0, b] */
    int rc = 0;
    if (!qdb_id_eq(&from, &zero))
        rc = arc_range(st, &from, false, NULL, &w);
    if (rc)
        return rc;
    return arc_range(st, &zero, true, &to, &w);
}

static int stop_at_first(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    *(bool *)arg = true;
    return 1;
}

/* Do we hold entries outside (pred, self]?  Those belong to the predecessor
 * (or to nodes before it). */
bool serve_has_foreign(qdb_node *n)
{
    /* with replicas we hold our predecessors' entries on purpose */
    if (n->replication > 1 || !n->has_pred || qdb_addr_eq(n->pred.addr, n->cfg.self.addr))
        return false;
    bool found = false;
    serve_iterate_arc(n, &n->cfg.self.id, &n->pred.id, stop_at_first, &found);
    return found;
}

/* ---- sessions and the reply memory --------------------------------------- */

typedef struct dedup_key {
    uint64_t client;
    uint64_t seq;
} dedup_key;

/* A reply remembered for a retried request.  Its payload (the content of a
 * GET_UPDATE, say) is kept while the table's payloads fit cfg.dedup_bytes;
 * beyond, only the outcome stays: `dropped` says a payload was there, and a
 * copy of the request is then answered QDB_E_OUTCOME_UNKNOWN (it ran, but
 * what it returned is gone) -- never run a second time. */
typedef struct dedup_entry {
    dedup_key key; /* first: the table is a set of entries, looked up by key */
    int status;
    GBytes *payload; /* NULL when empty or dropped */
    bool dropped;
} dedup_entry;

/* The index (common/hindex.h) places by the top bits of a product, so
 * consecutive sequence numbers of one client spread. */
static uint64_t dedup_hash(const dedup_key *k)
{
    return k->client * UINT64_C(0x9E3779B97F4A7C15) ^ k->seq;
}

static dedup_entry *dedup_find(qdb_node *n, const dedup_key *k)
{
    size_t pos = 0;
    dedup_entry *e;
    while ((e = qdb_hindex_next(n->dedup, dedup_hash(k), &pos)) != NULL)
        if (e->key.client == k->client && e->key.seq == k->seq)
            return e;
    return NULL;
}

/* The entries live in a ring of cfg.dedup_capacity slots, allocated by
 * blocks as it first fills: no allocation per request, and the slot evicted
 * (the oldest) is next to the one evicted before, not a cold block. */
#define DEDUP_BLOCK 256

static dedup_entry *dedup_slot(qdb_node *n, uint64_t i)
{
    uint64_t slot = i % n->cfg.dedup_capacity;
    if (slot / DEDUP_BLOCK == n->dedup_ring->len)
        g_ptr_array_add(n->dedup_ring, g_new0(dedup_entry, DEDUP_BLOCK));
    return (dedup_entry *)n->dedup_ring->pdata[slot / DEDUP_BLOCK] + slot % DEDUP_BLOCK;
}

void serve_free(qdb_node *n)
{
    g_free(n->req_counts);
    g_free(n->ahead);
    if (n->sessions)
        g_hash_table_destroy(n->sessions);
    if (n->classes)
        g_hash_table_destroy(n->classes);
    if (n->dedup) {
        qdb_hindex_clear(n->dedup);
        g_free(n->dedup);
        for (dedup_entry *e; (e = g_queue_pop_head(n->dedup_kept)) != NULL;)
            g_bytes_unref(e->payload);
        g_queue_free(n->dedup_kept);
        g_ptr_array_free(n->dedup_ring, TRUE);
    }
}

/* Sessions are keyed by the address a client speaks from (a TCP connection in
 * qdbd, a virtual address in the simulator), and end with it: the host calls
 * qdb_node_gone() when a connection closes, so a new connection from the same
 * address and port starts without one (QDB_E_NO_SESSION until its HELLO),
 * never with another client's at-most-once records.  The table is bounded
 * crudely: when it grows past 65,536 sessions it is emptied, and clients say
 * HELLO again when told QDB_E_NO_SESSION -- which they must handle anyway
 * after a node restart. */
#define SESSIONS_MAX 65536

/* Connection classes.  The first frame that only one side sends decides what
 * a connection is: HELLO, an entry request, STATUS or STOP make it a client's;
 * STABILIZE, NOTIFY, HANDOVER or LEAVE a node's.  FIND and PING are both
 * sides' (clients route and ping).  Afterwards the other side's frames are
 * refused there: a client's session cannot act as a ring member, and a
 * node's connection cannot become a client session.  (Replies to our own
 * calls are matched to the call, on the connection we opened: not here.)
 * With a hive key the transport knows what the connection proved to be
 * (qdb_transport.peer_role): that is its class from the first frame on. */
enum { SRC_CLIENT = 1, SRC_NODE = 2 };

static int frame_class(int type)
{
    if (qdb_msg_is_request(type) || type == QDB_MSG_HELLO || type == QDB_MSG_STATUS ||
        type == QDB_MSG_STOP)
        return SRC_CLIENT;
    if (type == QDB_MSG_STABILIZE || type == QDB_MSG_NOTIFY || type == QDB_MSG_HANDOVER ||
        type == QDB_MSG_LEAVE || type == QDB_MSG_DIGEST) /* a DIGEST is answered with records */
        return SRC_NODE;
    return 0;
}

bool serve_class_ok(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    int want = frame_class(m->type);
    if (!want)
        return true;
    if (!n->classes)
        n->classes = g_hash_table_new(g_direct_hash, g_direct_equal);
    uint64_t key = qdb_addr_key(src);
    gpointer k = GSIZE_TO_POINTER(key);
    int had;
    if (n->class_memo && n->class_memo >> 2 == key) {
        had = (int)(n->class_memo & 3);
    } else {
        had = GPOINTER_TO_INT(g_hash_table_lookup(n->classes, k));
        if (had)
            n->class_memo = key << 2 | (uint64_t)had;
    }
    int role = n->transport->peer_role ? n->transport->peer_role(n->transport, src)
                                       : QDB_PEER_UNVERIFIED;
    if (role == QDB_PEER_NODE)
        had = SRC_NODE;
    else if (role == QDB_PEER_CLIENT)
        had = SRC_CLIENT;
    if (had == want)
        return true;
    if (!had) {
        if (g_hash_table_size(n->classes) >= SESSIONS_MAX)
            g_hash_table_remove_all(n->classes);
        g_hash_table_insert(n->classes, k, GINT_TO_POINTER(want));
        n->class_memo = key << 2 | (uint64_t)want;
        return true;
    }
    n->stats.class_refused++;
    char a[QDB_ADDR_STRLEN];
    node_log(n, 2, "refused %s from %s: a %s message on a %s's connection",
             qdb_msg_type_name(m->type), qdb_addr_format(src, a),
             want == SRC_NODE ? "node" : "client", had == SRC_NODE ? "node" : "client");
    if (want == SRC_CLIENT && m->type != QDB_MSG_STATUS && m->type != QDB_MSG_STOP) {
        /* told, so a confused client does not wait for its timeout */
        qdb_msg r = {.type = QDB_MSG_REPLY, .seq = m->type == QDB_MSG_HELLO ? 0 : m->seq,
                     .status = QDB_E_REFUSED};
        node_send(n, src, &r);
    }
    return false;
}

void serve_gone(qdb_node *n, qdb_addr src)
{
    gpointer k = GSIZE_TO_POINTER(qdb_addr_key(src));
    if (n->sessions)
        g_hash_table_remove(n->sessions, k);
    if (n->classes)
        g_hash_table_remove(n->classes, k);
    if (n->class_memo >> 2 == qdb_addr_key(src))
        n->class_memo = 0;
}

void serve_hello(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    if (!n->sessions)
        n->sessions = g_hash_table_new(g_direct_hash, g_direct_equal);
    if (g_hash_table_size(n->sessions) >= SESSIONS_MAX)
        g_hash_table_remove_all(n->sessions);
    g_hash_table_insert(n->sessions, GSIZE_TO_POINTER(qdb_addr_key(src)),
                        GSIZE_TO_POINTER((gsize)m->seq));
    uint8_t inc[8];
    qdb_be64_put(inc, n->incarnation);
    qdb_msg r = {.type = QDB_MSG_REPLY, .seq = 0, .status = QDB_OK,
                 .content = inc, .content_len = sizeof inc};
    node_send(n, src, &r);
}

static bool session_of(qdb_node *n, qdb_addr src, uint64_t *client)
{
    gpointer v;
    if (!n->sessions ||
        !g_hash_table_lookup_extended(n->sessions, GSIZE_TO_POINTER(qdb_addr_key(src)), NULL, &v))
        return false;
    *client = (uint64_t)GPOINTER_TO_SIZE(v);
    return true;
}

/* Let the payload of the oldest entry that keeps one go (its outcome stays). */
static void dedup_drop_oldest_payload(qdb_node *n)
{
    dedup_entry *e = g_queue_pop_head(n->dedup_kept);
    n->dedup_bytes -= g_bytes_get_size(e->payload);
    g_bytes_unref(e->payload);
    e->payload = NULL;
    e->dropped = true;
}

/* unseen: the caller has just looked (client, seq) up and not found it,
 * which spares a second lookup per write. */
static void dedup_remember(qdb_node *n, uint64_t client, uint64_t seq, int status,
                           const uint8_t *payload, size_t len, bool unseen)
{
    if (!n->dedup) {
        n->dedup = g_new0(qdb_hindex, 1);
        n->dedup_ring = g_ptr_array_new_with_free_func(g_free);
        n->dedup_kept = g_queue_new();
    }
    dedup_key k = {client, seq};
    if (!unseen && dedup_find(n, &k)) /* cannot happen: pending */
        return;
    /* A payload over a quarter of the budget is never kept: one large
     * GET_UPDATE must not push out the payloads of many small ones. */
    bool keep = len > 0 && len <= n->cfg.dedup_bytes / 4;
    /* In the order of a FIFO that takes the new entry and then lets the
     * oldest go: the budget first, counting the new payload (never dropped
     * itself: it is under a quarter of it), then the capacity. */
    if (keep) {
        n->dedup_bytes += len;
        while (n->dedup_bytes > n->cfg.dedup_bytes)
            dedup_drop_oldest_payload(n);
    }
    dedup_entry *e = dedup_slot(n, n->dedup_added);
    if (n->dedup_added >= n->cfg.dedup_capacity) { /* e is the oldest: it goes */
        if (g_queue_peek_head(n->dedup_kept) == e)
            dedup_drop_oldest_payload(n);
        qdb_hindex_remove(n->dedup, dedup_hash(&e->key), e);
    }
    n->dedup_added++;
    *e = (dedup_entry){.key = k, .status = status, .dropped = len > 0 && !keep};
    if (keep) {
        e->payload = g_bytes_new(payload, len);
        g_queue_push_tail(n->dedup_kept, e);
    }
    qdb_hindex_add(n->dedup, dedup_hash(&k), e);
}

/* Answer a request of this type and seq, and count the answer by type and
 * status (the metrics). */
static void answer(qdb_node *n, qdb_addr src, int type, uint64_t seq, int status,
                   const uint8_t *payload, size_t len)
{
    status_count_request(n, type, status);
    if (status == QDB_E_STORAGE)
        n->stats.storage_errors++;
    node_send_reply(n, src, seq, status, payload, len);
}

static void reply(qdb_node *n, qdb_addr src, const qdb_msg *m, int status,
                  const uint8_t *payload, size_t len)
{
    answer(n, src, m->type, m->seq, status, payload, len);
}

void serve_answer(qdb_node *n, qdb_addr src, uint64_t client, int type, uint64_t seq, int status,
                  const uint8_t *payload, size_t len)
{
    dedup_remember(n, client, seq, status, payload, len, false);
    answer(n, src, type, seq, status, payload, len);
}

/* ---- pipelined batches announced ahead ------------------------------------- */

/* The IDs of aliases announced ahead (qdb_inbound.ahead), kept for their
 * requests: the aliases of a 16-deep batch are hashed (SHA-3) one after the
 * other while the store fetches their index slots, then their entries, so
 * the batch's cache misses overlap; serve_request() takes each ID here
 * instead of hashing again.  An ID is a function of its alias, and a slot
 * is used only for an alias equal byte for byte, so what is found here is
 * what qdb_id_hash() would give: no outcome depends on the memo, only when
 * the hashing happens.  Allocated at the first announcement (the simulator
 * makes none). */
#define AHEAD_SLOTS 32     /* a batch beyond it: the rest is hashed when served */
#define AHEAD_ALIAS_MAX 64 /* longer aliases: likewise */

typedef struct ahead_slot {
    bool used;
    uint8_t alias_len;
    uint8_t alias[AHEAD_ALIAS_MAX];
    qdb_id id;
} ahead_slot;

struct serve_ahead {
    ahead_slot slot[AHEAD_SLOTS];
    unsigned next;  /* the slot the next announced alias takes */
    unsigned batch; /* announced since the batch began */
    unsigned first; /* where serve_alias_id() looks first: the batch's start */
};

static void ahead_prefetch(qdb_node *n, const ahead_slot *s, int pass)
{
    uint8_t key[QDB_KEY_MAX];
    size_t kl = qdb_record_key(key, &s->id, s->alias, s->alias_len);
    n->storage->prefetch(n->storage, key, kl, pass);
}

void serve_ahead(qdb_node *n, qdb_addr src, const uint8_t *frame, size_t len)
{
    (void)src;
    if (!n->ahead)
        n->ahead = g_new0(struct serve_ahead, 1);
    struct serve_ahead *a = n->ahead;
    if (frame == NULL) { /* the batch is in: its index slots have arrived by now */
        for (int pass = 1; pass <= 2 && n->storage->prefetch; pass++)
            for (unsigned i = 0; i < a->batch; i++)
                ahead_prefetch(n, &a->slot[(a->first + i) % AHEAD_SLOTS], pass);
        a->batch = 0;
        return;
    }
    const uint8_t *alias;
    size_t alias_len;
    if (a->batch >= AHEAD_SLOTS ||
        qdb_request_alias(frame, len, &alias, &alias_len) != QDB_OK ||
        alias_len > AHEAD_ALIAS_MAX)
        return;
    if (a->batch++ == 0)
        a->first = a->next;
    ahead_slot *s = &a->slot[a->next];
    a->next = (a->next + 1) % AHEAD_SLOTS;
    s->used = true;
    s->alias_len = (uint8_t)alias_len;
    if (alias_len > 0)
        memcpy(s->alias, alias, alias_len);
    qdb_id_hash(&s->id, alias, alias_len);
    if (n->storage->prefetch)
        ahead_prefetch(n, s, 0);
}

/* qdb_id_hash(), or the ID announced ahead for this alias. */
static void serve_alias_id(qdb_node *n, qdb_id *id, const uint8_t *alias, size_t alias_len)
{
    struct serve_ahead *a = n->ahead;
    for (unsigned k = 0; a && alias_len <= AHEAD_ALIAS_MAX && k < AHEAD_SLOTS; k++) {
        const ahead_slot *s = &a->slot[(a->first + k) % AHEAD_SLOTS];
        if (s->used && s->alias_len == alias_len &&
            (alias_len == 0 || memcmp(s->alias, alias, alias_len) == 0)) {
            *id = s->id;
            n->stats.ids_ahead++;
            a->first = (a->first + k + 1) % AHEAD_SLOTS; /* the batch's next request */
            return;
        }
    }
    qdb_id_hash(id, alias, alias_len);
}

/* ---- entry requests --------------------------------------------------------- */

static bool is_mutation(int type)
{
    return !qdb_msg_is_read(type);
}

/* Write a new version of the entry at key over old (its current record, or
 * NULL): content expiring at expiry_s (0: never), or a tombstone. */
int serve_store_record(qdb_node *n, const uint8_t *key, size_t kl, const qdb_record_meta *old,
                       const uint8_t *content, size_t len, bool tombstone, int64_t expiry_s)
{
    int64_t wall = n->clock->wall(n->clock);
    qdb_record_meta meta = {
        .version = version_next(n, wall, old), /* the same reading as modified_us */
        .origin = version_origin(n),
        .created_us = old && !old->tombstone ? old->created_us : wall,
        .modified_us = wall,
        .size = tombstone ? 0 : len,
        .tombstone = tombstone,
        .expiry_s = tombstone ? 0 : expiry_s,
    };
    qdb_storage *st = n->storage;
    if (st->put_parts) { /* no joined copy of header and content */
        uint8_t h[QDB_RECORD_HEADER_MAX];
        size_t hl = qdb_record_encode_header(&meta, content, h);
        return st->put_parts(st, key, kl, h, hl, content, (size_t)meta.size);
    }
    GByteArray *rec = g_byte_array_sized_new(QDB_RECORD_HEADER + (guint)meta.size);
    qdb_record_encode(&meta, content, rec);
    int rc = st->put(st, key, kl, rec->data, rec->len);
    g_byte_array_free(rec, TRUE);
    return rc;
}

typedef struct remove_all_ctx {
    GPtrArray *keys;  /* GBytes: live entries */
    GArray *metas;    /* their qdb_record_meta */
    int rc;
} remove_all_ctx;

static int collect_live(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    remove_all_ctx *c = arg;
    qdb_record_meta meta;
    if (qdb_record_decode_meta(v, vl, &meta) != QDB_OK) {
        c->rc = QDB_E_STORAGE;
        return 1;
    }
    if (!meta.tombstone) {
        g_ptr_array_add(c->keys, g_bytes_new(k, kl));
        g_array_append_val(c->metas, meta);
    }
    return 0;
}

/* Every entry we own becomes a tombstone (a deletion would let a node back
 * with old storage bring them back); their keys go to written (NULL: not
 * kept). */
static int remove_owned(qdb_node *n, GPtrArray *written)
{
    remove_all_ctx c = {g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref),
                        g_array_new(FALSE, FALSE, sizeof(qdb_record_meta)), QDB_OK};
    /* non-zero without a corrupt record is the store's error, and the
     * client is told (nothing was removed) */
    int rc = serve_iterate_arc(n, &n->pred.id, &n->cfg.self.id, collect_live, &c);
    if (c.rc != QDB_OK) {
        node_log(n, 1, "corrupt record in storage");
        rc = c.rc;
    }
    for (guint i = 0; i < c.keys->len && rc == QDB_OK; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(c.keys->pdata[i], &kl);
        rc = serve_store_record(n, k, kl, &g_array_index(c.metas, qdb_record_meta, i), NULL, 0,
                                true, 0);
        if (rc == QDB_OK && written)
            g_ptr_array_add(written, g_bytes_ref(c.keys->pdata[i]));
    }
    g_ptr_array_free(c.keys, TRUE);
    g_array_free(c.metas, TRUE);
    return rc;
}

/* Runs one request we own.  Sets *payload (pointing into *hold, which the
 * caller frees) for replies that carry content. */
static int execute(qdb_node *n, const qdb_msg *m, const qdb_id *id, uint8_t **hold,
                   const uint8_t **payload, size_t *plen)
{
    uint8_t key[QDB_KEY_MAX];
    size_t kl = qdb_record_key(key, id, m->alias, m->alias_len);
    /* The blind writes need only the old header, GET answers from the
     * stored bytes: they may borrow the record (peek()), because nothing
     * else calls the store before the reply is encoded.  The others keep the
     * old content across a write, or hand it to serve_ext: a copy. */
    bool blind = m->type == QDB_MSG_PUT || m->type == QDB_MSG_PUT_EX ||
                 m->type == QDB_MSG_UPDATE || m->type == QDB_MSG_UPDATE_EX ||
                 m->type == QDB_MSG_REMOVE;
    bool borrow = n->storage->peek && (blind || m->type == QDB_MSG_GET);
    uint8_t *copy = NULL;
    const uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = borrow ? n->storage->peek(n->storage, key, kl, &val, &vlen)
                    : n->storage->get(n->storage, key, kl, &copy, &vlen);
    if (rc != QDB_OK && rc != QDB_E_ALIAS_NOT_FOUND)
        return rc;
    if (copy)
        val = copy;
    bool present = rc == QDB_OK; /* a live entry or a tombstone: its state is known here */
    qdb_record_meta meta;
    const uint8_t *cur = NULL;
    /* The reads of content check it against its checksum.  The others only
     * need the old header. */
    bool reads = m->type == QDB_MSG_GET || m->type == QDB_MSG_GET_UPDATE ||
                 m->type == QDB_MSG_CAS || m->type == QDB_MSG_GET_REMOVE ||
                 m->type == QDB_MSG_REMOVE_IF;
    if (present && (reads ? qdb_record_decode(val, vlen, &meta, &cur)
                          : qdb_record_decode_meta(val, vlen, &meta)) != QDB_OK) {
        g_free(copy);
        node_log(n, 1, "corrupt record in storage");
        return QDB_E_STORAGE;
    }
    *hold = copy;
    /* Expired: not found, whatever asks, as if removed -- and a write over
     * it starts a new entry (created now), versioned above the old record
     * (the collector turns it into a tombstone later). */
    if (present && qdb_record_expired(&meta, n->clock->wall(n->clock)))
        meta.tombstone = true;
    /* Inherited from a failed node without its entries (K = 1): it may
     * well exist there.  What needs its value cannot run; a write can, and
     * its version wins over the old copy if that node comes back. */
    bool orphan = !present && ring_orphaned(n, id);
    if (orphan && !blind)
        return QDB_E_UNAVAILABLE;
    /* Taken over from a failed owner, not yet compared with the replicas
     * (K > 1): one may hold a newer copy.  A blind write is versioned
     * above it anyway. */
    if (!blind && replica_syncing(n, id))
        return QDB_E_UNSTABLE;
    bool exists = present && !meta.tombstone;
    const qdb_record_meta *old = present ? &meta : NULL;
    switch (m->type) {
    case QDB_MSG_GET:
        if (!exists)
            return QDB_E_ALIAS_NOT_FOUND;
        *payload = cur;
        *plen = meta.size;
        return QDB_OK;
    case QDB_MSG_PUT:
    case QDB_MSG_PUT_EX:
        if (exists)
            return QDB_E_ALIAS_ALREADY_EXISTS;
        return serve_store_record(n, key, kl, old, m->content, m->content_len, false, m->expiry);
    case QDB_MSG_UPDATE:
    case QDB_MSG_UPDATE_EX: /* the expiry given replaces the old one (none: never) */
        return serve_store_record(n, key, kl, old, m->content, m->content_len, false, m->expiry);
    case QDB_MSG_GET_UPDATE:
        if (!exists)
            return QDB_E_ALIAS_NOT_FOUND;
        rc = serve_store_record(n, key, kl, old, m->content, m->content_len, false, meta.expiry_s);
        if (rc == QDB_OK) {
            *payload = cur;
            *plen = meta.size;
        }
        return rc;
    case QDB_MSG_CAS:
        if (!exists)
            return QDB_E_ALIAS_NOT_FOUND;
        if (meta.size != m->comparand_len || memcmp(cur, m->comparand, meta.size) != 0) {
            *payload = cur;
            *plen = meta.size;
            return QDB_E_UNMATCHED_CONTENT;
        }
        return serve_store_record(n, key, kl, old, m->content, m->content_len, false,
                                  meta.expiry_s);
    case QDB_MSG_REMOVE:
        if (!exists && !orphan)
            return QDB_E_ALIAS_NOT_FOUND;
        return serve_store_record(n, key, kl, old, NULL, 0, true, 0);
    default:
        return serve_ext_execute(n, m, key, kl, exists ? &meta : NULL, cur, hold, payload, plen);
    }
}

void serve_request(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    n->stats.requests++;
    uint64_t client;
    if (!session_of(n, src, &client)) {
        reply(n, src, m, QDB_E_NO_SESSION, NULL, 0);
        return;
    }
    if (is_mutation(m->type) && n->dedup) {
        dedup_key k = {client, m->seq};
        dedup_entry *e = dedup_find(n, &k);
        if (e) { /* a copy of a request we ran: the same answer, not a second run */
            n->stats.duplicates++;
            gsize len = 0;
            const uint8_t *p = e->payload ? g_bytes_get_data(e->payload, &len) : NULL;
            reply(n, src, m, e->dropped ? QDB_E_OUTCOME_UNKNOWN : e->status, p, len);
            return;
        }
    }
    if (is_mutation(m->type) && n->repl_writes && replica_pending(n, client, m->seq)) {
        n->stats.duplicates++;
        return; /* ran, waiting for its replicas: the answer comes then */
    }
    /* ...and, with replicas, under our lease (watch.c, "Lease"): out of it
     * our successor may be serving our range as well. */
    bool settled = node_serves(n);
    int status;
    const uint8_t *payload = NULL;
    size_t plen = 0;
    uint8_t *hold = NULL;
    uint8_t hint[QDB_PEER_WIRE];
    /* the keys written, for the replicas: none to copy at K = 1 */
    GPtrArray *written = n->replication > 1
                             ? g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref)
                             : NULL;

    if ((status = serve_ext_check(n, m)) != QDB_OK) {
        /* refused: nothing ran */
    } else if (m->type == QDB_MSG_REMOVE_ALL && !n->purge_all_enabled) {
        status = QDB_E_DISABLED; /* hive.c: off unless the hive enables it */
    } else if (m->type == QDB_MSG_REMOVE_ALL || m->type == QDB_MSG_PREFIX) {
        if (!settled) {
            n->stats.unstable++;
            reply(n, src, m, QDB_E_UNSTABLE, NULL, 0);
            g_clear_pointer(&written, g_ptr_array_unref);
            return;
        }
        status = m->type == QDB_MSG_PREFIX ? serve_prefix(n, m, &hold, &payload, &plen)
                                           : remove_owned(n, written);
    } else {
        qdb_id id;
        serve_alias_id(n, &id, m->alias, m->alias_len);
        if (!settled) {
            n->stats.unstable++;
            reply(n, src, m, QDB_E_UNSTABLE, NULL, 0);
            g_clear_pointer(&written, g_ptr_array_unref);
            return;
        }
        if (!qdb_node_owns(n, &id)) {
            qdb_peer p;
            ring_route(n, &id, NULL, 0, &p);
            qdb_peer_encode(&p, hint);
            n->stats.wrong_node++;
            reply(n, src, m, QDB_E_WRONG_NODE, hint, sizeof hint);
            g_clear_pointer(&written, g_ptr_array_unref);
            return;
        }
        status = execute(n, m, &id, &hold, &payload, &plen);
        if (status == QDB_OK && is_mutation(m->type) && written) {
            uint8_t key[QDB_KEY_MAX];
            g_ptr_array_add(written,
                            g_bytes_new(key, qdb_record_key(key, &id, m->alias, m->alias_len)));
        }
    }
    /* With replicas, a write is answered once they all have it. */
    if (!is_mutation(m->type) || n->replication <= 1 ||
        !replica_write(n, src, client, m, status, payload, plen, written)) {
        if (is_mutation(m->type))
            dedup_remember(n, client, m->seq, status, payload, plen, true);
        reply(n, src, m, status, payload, plen);
    }
    g_clear_pointer(&written, g_ptr_array_unref);
    g_free(hold);
}

/* ---- hand-over ----------------------------------------------------------------- */

bool serve_holds_newer(qdb_node *n, const uint8_t *key, size_t kl, const qdb_record_meta *theirs)
{
    uint8_t *mine;
    size_t ml;
    if (n->storage->get(n->storage, key, kl, &mine, &ml) != QDB_OK)
        return false;
    qdb_record_meta ours;
    /* a corrupt copy of ours is replaced */
    bool keep = qdb_record_decode_meta(mine, ml, &ours) == QDB_OK &&
                qdb_record_cmp(&ours, theirs) >= 0;
    g_free(mine);
    return keep;
}

typedef struct push_ctx {
    qdb_node *n;
    qdb_handover_builder b;
    GPtrArray *keys;
    size_t limit;
    bool more;
    bool filtered; /* to a rejoining predecessor: what its digest lacks */
} push_ctx;

static int add_to_batch(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    push_ctx *c = arg;
    if (c->filtered && !stray_rejoin_wants(c->n, k, kl))
        return 0; /* the rejoining node has it (stray.h) */
    /* Bounded in bytes too, so that the frame stays within what the
     * receiver takes (QDB_FRAME_FOR_CONTENT of the same max_content): a
     * record alone always fits. */
    if (c->keys->len >= c->limit ||
        (c->keys->len > 0 && c->b.records->len + kl + vl > c->n->cfg.max_content + 65536)) {
        c->more = true;
        return 1;
    }
    qdb_handover_builder_add(&c->b, k, kl, v, vl);
    g_ptr_array_add(c->keys, g_bytes_new(k, kl));
    return 0;
}

/* What we push to our predecessor: everything outside our range.  With
 * replicas we keep a copy of what we push (we are the new node's first
 * replica, and what we held of the ranges before it is what it now holds
 * as a replica too), so successive batches move a cursor along the arc
 * instead of deleting what went. */
static int push_scan(qdb_node *n, push_ctx *c)
{
    if (n->replication <= 1)
        return serve_iterate_arc(n, &n->cfg.self.id, &n->pred.id, add_to_batch, c);
    if (!n->ho_continue)
        n->ho_cursor = n->ho_give ? n->ho_from : n->cfg.self.id;
    if (qdb_id_eq(&n->ho_cursor, &n->pred.id))
        return 0; /* the arc is done: an empty last batch */
    c->filtered = true;
    return serve_iterate_arc(n, &n->ho_cursor, &n->pred.id, add_to_batch, c);
}

void serve_push(qdb_node *n, const qdb_peer *dst, bool force_last)
{
    /* Still waiting for our own range: what we would send (marked last) is
     * not all there is yet.  The joining node notifies again next round.
     * (With K = 1 the entries would reach it later anyway, and a lost
     * store is forgiven; with replicas it would serve from a hole.) */
    if (n->replication > 1 && n->awaiting_handover && n->phase != PHASE_LEAVING)
        return;
    if (n->ho_rpc) {
        if (!n->ho_retry)
            return; /* one batch in flight at a time */
        /* The batch failed: build a new one from what we hold now (its
         * entries are still here), never repeat it.  Its receiver may have
         * applied it and lost only the acknowledgement, then crashed and
         * joined again at the same address: the old batch, built for that
         * earlier join, would end the new wait ("last") without what was
         * written in its range meanwhile, and without what the batches
         * before it carried -- the node would serve its range from old or
         * no storage. */
        n->ho_rpc = 0;
        g_ptr_array_set_size(n->ho_keys, 0);
    }
    push_ctx c = {.n = n, .limit = n->cfg.handover_batch};
    qdb_handover_builder_init(&c.b);
    c.keys = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    int rc = 0;
    if (n->phase == PHASE_LEAVING)
        rc = serve_iterate_arc(n, &n->cfg.self.id, &n->cfg.self.id, add_to_batch, &c);
    else if (n->has_pred && !qdb_addr_eq(n->pred.addr, n->cfg.self.addr))
        rc = push_scan(n, &c);
    bool failed = rc != 0 && !c.more; /* add_to_batch stops only for a full batch */
    if (failed) {
        node_log(n, 1, "hand-over: storage failed: %s", n->storage->errmsg);
        n->stats.storage_errors++;
    }
    /* A failed scan sends nothing: a batch marked last would end the
     * receiver's wait while its entries are still here.  It notifies us
     * again, and we push again.  (A leaving node has no such trigger: it
     * sends what it has read, and what is left stays here, outside its
     * range.) */
    if ((failed && n->phase != PHASE_LEAVING) || (c.keys->len == 0 && !force_last)) {
        g_ptr_array_free(c.keys, TRUE);
        qdb_handover_builder_clear(&c.b);
        return;
    }
    g_ptr_array_free(n->ho_keys, TRUE);
    n->ho_keys = c.keys;
    /* Framed here (node_send does not know builders), then remembered as an
     * RPC. */
    qdb_msg framed = {.type = QDB_MSG_HANDOVER, .rpc = n->next_rpc++,
                      .flags = c.more ? 0u : QDB_HANDOVER_LAST, .peer = n->cfg.self};
    n->ho_retry = false;
    n->ho_last = !c.more;
    n->ho_rpc = framed.rpc;
    GByteArray *out = g_byte_array_new();
    if (qdb_msg_encode_handover(&framed, &c.b, out) == QDB_OK) {
        n->stats.frames_out++;
        n->stats.handover_batches++;
        n->stats.handover_bytes += out->len;
        n->transport->send(n->transport, dst->addr, out->data, out->len);
    }
    g_byte_array_free(out, TRUE);
    qdb_handover_builder_clear(&c.b);
    node_expect(n, dst->addr, framed.rpc, RPC_HANDOVER, dst);
}

/* Admission (ring.c): is m, a HANDOVER from src, one to take?  Our range
 * comes from our successor (a join, or entries it holds outside its range)
 * or from a leaving predecessor; replica copies from an owner that has us
 * among its first K - 1 successors.  The sender must speak from its own host
 * and be a neighbour we vouch for.  A sender we do not know yet (an owner
 * K - 1 nodes back, or a leaving node whose successor failed) is checked
 * -- it must name us among its first K - 1 successors (the first, K = 1) --
 * and its batch taken when it sends it again; until then nothing is. */
/* Replica copies, every one of our own range: stray copies offered back
 * (stray.h). */
static bool stray_batch(qdb_node *n, const qdb_msg *m)
{
    if (!(m->flags & QDB_HANDOVER_REPLICA))
        return false;
    size_t pos = 0, kl, vl, count = 0;
    const uint8_t *k, *v;
    while (qdb_msg_entry_next(m, &pos, &k, &kl, &v, &vl)) {
        qdb_id id;
        if (kl < QDB_ID_BYTES)
            return false;
        memcpy(id.b, k, QDB_ID_BYTES);
        if (!qdb_node_owns(n, &id))
            return false;
        count++;
    }
    return count > 0;
}

static bool handover_admitted(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    const qdb_peer *s = &m->peer;
    bool ok = ring_same_host(src, s->addr) && !qdb_addr_eq(s->addr, n->cfg.self.addr);
    if (ok && !ring_vouched(n, s)) {
        if (stray_batch(n, m))
            ring_admit_stray(n, s);
        else
            ring_admit_sender(n, s);
        return false;
    }
    if (!ok) {
        n->stats.admission_refused++;
        char a[QDB_ADDR_STRLEN];
        node_log(n, 2, "admission: a HANDOVER from %s, not a neighbour of ours: refused",
                 qdb_addr_format(src, a));
    }
    return ok;
}

void serve_on_handover(qdb_node *n, qdb_addr src, const qdb_msg *m)
{
    if (n->phase != PHASE_ACTIVE)
        return; /* not ours to take now: the sender keeps them and retries */
    if (!handover_admitted(n, src, m))
        return; /* no ack: a real sender tries again */
    uint64_t tag = qdb_addr_key(src) * UINT64_C(0x9E3779B97F4A7C15) ^ m->rpc;
    bool seen = false;
    for (unsigned i = 0; i < G_N_ELEMENTS(n->ho_seen); i++)
        if (n->ho_seen[i] == tag)
            seen = true;
    bool deferred = false;
    if (!seen) {
        size_t pos = 0;
        const uint8_t *k, *v;
        size_t kl, vl;
        /* Copies a replica or a stray holder sends back (stray.h) that are
         * newer than ours, in our range: on to our replicas as well. */
        bool onward = (m->flags & QDB_HANDOVER_REPLICA) && n->replication > 1 &&
                      n->has_pred && !n->awaiting_handover;
        /* A leaving node's batch (a hand-over that is not our successor's
         * to us, a join's): all of it on to our replicas, and acknowledged
         * once they have it (replica.c, "Graceful leave"). */
        const qdb_peer *succ = ring_successor(n);
        bool leaver = !(m->flags & QDB_HANDOVER_REPLICA) && n->replication > 1 &&
                      !(succ && qdb_peer_eq(&m->peer, succ));
        /* Our successor giving back an arc it lost (ring.c, ho_give): what
         * it holds before our range goes on back the same way, so that it
         * reaches its owner -- or the owner's replica, which its sync asks
         * -- in a round trip a hop rather than by the stray walk. */
        bool give = !(m->flags & QDB_HANDOVER_REPLICA) && n->replication > 1 && !leaver &&
                    n->has_pred && !qdb_addr_eq(n->pred.addr, n->cfg.self.addr) &&
                    !n->awaiting_handover;
        bool before = false;
        qdb_id first = {{0}};
        GPtrArray *took = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        while (qdb_msg_entry_next(m, &pos, &k, &kl, &v, &vl)) {
            if (kl < QDB_ID_BYTES)
                continue;
            if (give && !before) {
                memcpy(first.b, k, QDB_ID_BYTES);
                before = !qdb_node_owns(n, &first); /* in ring order: the farthest */
            }
            /* The newer version wins (version.c); a copy we hold at the
             * same version is the same write. */
            qdb_record_meta theirs;
            const uint8_t *content;
            if (qdb_record_decode(v, vl, &theirs, &content) != QDB_OK) {
                node_log(n, 1, "hand-over: a corrupt record, skipped");
                continue;
            }
            version_witness(n, theirs.version);
            if (leaver)
                g_ptr_array_add(took, g_bytes_new(k, kl));
            if (serve_holds_newer(n, k, kl, &theirs))
                continue;
            if (n->storage->put(n->storage, k, kl, v, vl) != QDB_OK) {
                node_log(n, 1, "hand-over: storage failed: %s", n->storage->errmsg);
                n->stats.storage_errors++;
                g_ptr_array_unref(took);
                return; /* no ack: the sender keeps the entries and retries */
            }
            n->stats.handover_received++;
            qdb_id id;
            memcpy(id.b, k, QDB_ID_BYTES);
            if (onward && qdb_node_owns(n, &id))
                g_ptr_array_add(took, g_bytes_new(k, kl));
        }
        if (leaver)
            deferred = took->len && replica_handover(n, src, m->rpc, &m->peer, took);
        else if (took->len)
            replica_copy(n, took);
        g_ptr_array_unref(took); /* the write keeps its own reference */
        /* Seen only once every record is stored: a batch that failed half-way
         * is applied again when the sender repeats it (records are replaced
         * by equal or newer ones only, so applying twice is harmless). */
        n->ho_seen[n->ho_seen_next++ % G_N_ELEMENTS(n->ho_seen)] = tag;
        if (before && !n->ho_give) {
            n->ho_give = true;
            qdb_id_before(&n->ho_from, &first);
            serve_push(n, &n->pred, true);
        }
    }
    if (m->flags & QDB_HANDOVER_LAST) {
        bool was = n->awaiting_handover;
        if (was)
            node_log(n, 3, "hand-over complete");
        n->awaiting_handover = false;
        if (was && n->has_pred)
            replica_sync_first(n);
    }
    if (deferred || (seen && replica_handover_pending(n, src, m->rpc)))
        return; /* acknowledged once our replicas have it */
    qdb_msg ack = {.type = QDB_MSG_HANDOVER_ACK, .rpc = m->rpc};
    node_send(n, src, &ack);
}

static void send_leave(qdb_node *n, unsigned flags)
{
    qdb_msg m = {.type = QDB_MSG_LEAVE, .peer = n->cfg.self, .flags = flags};
    if (n->has_pred)
        m.pred = n->pred;
    m.n_peers = n->n_succ;
    memcpy(m.peers, n->succ, n->n_succ * sizeof(qdb_peer));
    if (n->n_succ)
        node_send(n, n->succ[0].addr, &m);
    if (n->has_pred && !qdb_addr_eq(n->pred.addr, n->cfg.self.addr) &&
        !(n->n_succ && qdb_addr_eq(n->pred.addr, n->succ[0].addr)))
        node_send(n, n->pred.addr, &m);
    n->phase = PHASE_LEFT;
    node_log(n, 3, "left the ring");
}

void serve_leave_failed(qdb_node *n)
{
    g_ptr_array_set_size(n->ho_keys, 0); /* a hand-over under way stops here */
    n->ho_rpc = 0;
    if (n->phase == PHASE_ACTIVE || n->phase == PHASE_LEAVING)
        send_leave(n, QDB_LEAVE_FAILED);
    n->phase = PHASE_LEFT;
}

void serve_on_handover_ack(qdb_node *n, const node_rpc *rpc)
{
    if (rpc->id != n->ho_rpc)
        return;
    for (guint i = 0; i < n->ho_keys->len; i++) {
        gsize kl;
        const uint8_t *k = g_bytes_get_data(n->ho_keys->pdata[i], &kl);
        qdb_id id;
        memcpy(id.b, k, QDB_ID_BYTES);
        /* Delete only what is still not ours: if our predecessor changed
         * back meanwhile, the entry is ours again and stays.  With replicas
         * we keep it (push_scan). */
        if (n->phase == PHASE_LEAVING || (n->replication <= 1 && !qdb_node_owns(n, &id)))
            n->storage->del(n->storage, k, kl);
        else if (n->replication > 1)
            n->ho_cursor = id; /* ring order: the last one is the furthest */
        n->stats.handover_sent++;
    }
    g_ptr_array_set_size(n->ho_keys, 0);
    n->ho_rpc = 0;
    n->ho_tried = false;
    bool last = n->ho_last;
    qdb_peer dst = rpc->peer;
    if (last) {
        stray_rejoin_done(n);
        n->ho_give = false;
    }
    if (n->phase == PHASE_LEAVING) {
        if (last)
            send_leave(n, 0);
        else
            serve_push(n, &dst, true);
        return;
    }
    if (!last && n->has_pred && qdb_addr_eq(n->pred.addr, dst.addr)) {
        n->ho_continue = true; /* from the cursor on */
        serve_push(n, &dst, true); /* true: the receiver may be waiting for "last" */
    }
    n->ho_continue = false;
}

void serve_on_handover_failed(qdb_node *n, const node_rpc *rpc)
{
    if (rpc->id != n->ho_rpc)
        return;
    n->ho_retry = true;
    if (n->phase == PHASE_LEAVING) {
        /* No answer is not yet a death: when our successor crashed just
         * before we left, the next one does not know us and checks us
         * (admission) before it takes a batch -- the batch sent again.
         * Given up at once, the leave ran through every successor and
         * ended with our entries on no live node.  A refused connection
         * has already removed the peer. */
        const qdb_peer *again = ring_successor(n);
        if (!n->ho_tried && again && qdb_addr_eq(again->addr, rpc->dst)) {
            n->ho_tried = true;
            serve_push(n, again, true);
            return;
        }
        n->ho_tried = false;
        /* Our successor is gone: give everything to the next one. */
        ring_forget(n, rpc->dst);
        n->ho_rpc = 0;
        g_ptr_array_set_size(n->ho_keys, 0);
        const qdb_peer *s = ring_successor(n);
        if (!s || qdb_addr_eq(s->addr, n->cfg.self.addr))
            send_leave(n, 0);
        else
            serve_push(n, s, true);
    }
}

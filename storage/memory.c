/* SPDX-License-Identifier: BSD-2-Clause */
/* The in-memory storage backend (contract in memory.h): a GTree (balanced binary tree) of byte-string
 * keys in memcmp order, shorter first on a common prefix.
 *
 * One allocation per entry holds the key, another the value, and the tree
 * uses the entry as both its key and its value (so only the key destructor is
 * set: the entry must be freed exactly once).  An update swaps the value
 * block in place: only new keys touch the tree.  An empty store is the seam
 * struct plus an empty GTree -- no preallocation -- because the simulator
 * creates one per virtual node, up to a million.
 *
 * iterate() starts with g_tree_lower_bound() (O(log n)) and walks with
 * g_tree_node_next(), so a hand-over of a short arc does not scan the store.
 *
 * Point lookups go through a hash index once the store holds more than
 * MEM_INDEX_AT entries: under load (make bench, 100k keys) the tree's key
 * comparisons were a third of qdbd's CPU.  Small stores -- a simulated node
 * holds a few -- never pay for the index.  The index is only looked up, never
 * iterated, so its order cannot reach anything.  It is a common/hindex.h
 * (hash and pointer in one slot): GHashTable's separate hash and key arrays
 * cost a second cold line per lookup, and the index's lookups were 18% of
 * qdbd's CPU under make bench.
 *
 * New keys of an indexed store wait in `fresh` and join the tree only when
 * the order is needed (iterate, del), sorted first: a random insert into a
 * GTree of 100,000 entries missed the cache at almost every level (node and
 * entry), 15% of qdbd's CPU under make bench's writes; a sorted batch walks
 * nearly the same path for consecutive keys.  Lookups go through the index,
 * which holds fresh entries too, so only iterate() and del() settle them.
 *
 * A request reads its entry and then writes it (get, then put of the new
 * record), so the entry found last is kept and checked first: the put then
 * costs one key comparison instead of a second lookup that misses the cache.
 * peek() and put_parts() (env.h) spare the node the copies of get() and of
 * joining a record's header and content.
 */
#include "storage/memory.h"

#include "common/hindex.h"
#include "node/error.h"

#include <glib.h>
#include <string.h>

#if !GLIB_CHECK_VERSION(2, 68, 0)
#error "storage/memory.c needs GLib >= 2.68 (g_tree_lower_bound, g_tree_node_next)"
#endif

/* The first value of a key is stored right after it, in the entry's block:
 * a lookup that reads the key then finds the record's header on the next
 * cache line, not in another block (a miss less per request).  A value of
 * another length later gets a block of its own, so the entry never moves. */
typedef struct mem_entry {
    const uint8_t *key; /* data[] for stored entries; the caller's bytes for probes */
    size_t key_len;
    size_t value_len;
    uint8_t *value;     /* data + key_len, or its own block */
    uint8_t data[];     /* key bytes, then the first value */
} mem_entry;

static bool mem_value_inline(const mem_entry *e)
{
    return e->value == e->data + e->key_len;
}

static void mem_entry_free(gpointer p)
{
    mem_entry *e = p;
    if (!mem_value_inline(e))
        g_free(e->value);
    g_free(e);
}

static int mem_key_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return (a_len > b_len) - (a_len < b_len);
}

static gint mem_entry_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    const mem_entry *x = a, *y = b;
    return mem_key_cmp(x->key, x->key_len, y->key, y->key_len);
}

#define MEM_INDEX_AT 64

/* A new entry not yet in the tree, with its first 8 key bytes (big-endian,
 * zero-padded) to sort by without touching the entry. */
typedef struct mem_fresh {
    uint64_t prefix;
    mem_entry *e;
} mem_fresh;

typedef struct mem_store {
    GTree *tree;        /* the order, and the owner of the entries in it */
    qdb_hindex index;   /* every entry by mem_key_hash(), once indexed */
    bool indexed;       /* the store grew past MEM_INDEX_AT */
    GArray *fresh;      /* mem_fresh: indexed, owned here, not in the tree yet */
    mem_entry *last;    /* the entry found or added last; NULL after a del() */
} mem_store;

static GTree *mem_tree(qdb_storage *s)
{
    return ((mem_store *)s->impl)->tree;
}

/* Keys are mostly ID || alias, so their first bytes are already uniformly
 * spread; mix in the length and the last bytes for the rest. */
static uint64_t mem_key_hash(const uint8_t *key, size_t key_len)
{
    uint64_t h = key_len * UINT64_C(0x9E3779B97F4A7C15);
    size_t n = key_len < 8 ? key_len : 8;
    for (size_t i = 0; i < n; i++)
        h = (h ^ key[i]) * UINT64_C(0x100000001B3);
    for (size_t i = key_len > 16 ? key_len - 8 : n; i < key_len; i++)
        h = (h ^ key[i]) * UINT64_C(0x100000001B3);
    return h;
}

static bool mem_entry_equal(const mem_entry *x, const mem_entry *y)
{
    return x->key_len == y->key_len && (x->key_len == 0 || memcmp(x->key, y->key, x->key_len) == 0);
}

static void mem_index_add(mem_store *m, mem_entry *e)
{
    qdb_hindex_add(&m->index, mem_key_hash(e->key, e->key_len), e);
}

static gboolean index_add(gpointer key, gpointer value, gpointer data)
{
    mem_index_add(data, key);
    return FALSE;
}

/* Padding with zeros keeps the order: a smaller prefix is a smaller key
 * (memcmp order, shorter first); equal prefixes compare the whole keys. */
static uint64_t mem_prefix(const uint8_t *key, size_t key_len)
{
    uint64_t p = 0;
    for (size_t i = 0; i < 8; i++)
        p = p << 8 | (i < key_len ? key[i] : 0);
    return p;
}

static gint mem_fresh_cmp(gconstpointer a, gconstpointer b)
{
    const mem_fresh *x = a, *y = b;
    if (x->prefix != y->prefix)
        return x->prefix < y->prefix ? -1 : 1;
    return mem_entry_cmp(x->e, y->e, NULL);
}

/* The fresh entries join the tree, in key order. */
static void mem_settle(mem_store *m)
{
    if (m->fresh == NULL || m->fresh->len == 0)
        return;
    g_array_sort(m->fresh, mem_fresh_cmp);
    for (guint i = 0; i < m->fresh->len; i++) {
        mem_entry *e = g_array_index(m->fresh, mem_fresh, i).e;
        g_tree_insert(m->tree, e, e);
    }
    g_array_set_size(m->fresh, 0);
}

static mem_entry *mem_find(qdb_storage *s, const mem_entry *probe)
{
    mem_store *m = s->impl;
    if (m->last && mem_entry_equal(m->last, probe))
        return m->last;
    mem_entry *e = NULL;
    if (!m->indexed) {
        e = g_tree_lookup(m->tree, probe);
    } else {
        uint64_t h = mem_key_hash(probe->key, probe->key_len);
        size_t pos = 0;
        while ((e = qdb_hindex_next(&m->index, h, &pos)) != NULL && !mem_entry_equal(e, probe))
            ;
    }
    if (e)
        m->last = e;
    return e;
}

/* Pass 0 fetches the index slot; pass 1, once it has arrived, the entry's
 * first line; pass 2, once that has, the value (the record a GET checks
 * and sends, or a PUT of the same length overwrites), into the second-level
 * cache: up to MEM_PREFETCH_MAX bytes, so a batch of large values does not
 * flush what the others fetched. */
#define MEM_PREFETCH_MAX 4096

static void mem_prefetch(qdb_storage *s, const uint8_t *key, size_t key_len, int pass)
{
    mem_store *m = s->impl;
    if (!m->indexed)
        return;
    uint64_t h = mem_key_hash(key, key_len);
    if (pass == 0) {
        qdb_hindex_prefetch(&m->index, h);
        return;
    }
    size_t pos = 0;
    const mem_entry *e = qdb_hindex_next(&m->index, h, &pos);
    if (e == NULL)
        return;
    if (pass == 1) {
        __builtin_prefetch(e);
        return;
    }
    size_t len = MIN(e->value_len, MEM_PREFETCH_MAX);
    for (size_t off = 0; off < len; off += 64)
        __builtin_prefetch(e->value + off, 0, 2);
}

static const uint8_t *mem_value(const mem_entry *e)
{
    return e->value;
}

static int mem_peek(qdb_storage *s, const uint8_t *key, size_t key_len, const uint8_t **value,
                    size_t *value_len)
{
    mem_entry probe = {.key = key, .key_len = key_len};
    const mem_entry *e = mem_find(s, &probe);
    if (e == NULL)
        return QDB_E_ALIAS_NOT_FOUND;
    *value = mem_value(e); /* never NULL: mem_put_parts allocates a byte at least */
    *value_len = e->value_len;
    return QDB_OK;
}

static int mem_get(qdb_storage *s, const uint8_t *key, size_t key_len, uint8_t **value,
                   size_t *value_len)
{
    const uint8_t *v;
    int rc = mem_peek(s, key, key_len, &v, value_len);
    if (rc != QDB_OK)
        return rc;
    /* Never NULL, even for an empty value: callers may test the pointer. */
    *value = g_memdup2(v, *value_len > 0 ? *value_len : 1);
    return QDB_OK;
}

static int mem_iterate(qdb_storage *s, const uint8_t *from, size_t from_len, const uint8_t *to,
                       size_t to_len, qdb_storage_iter_fn fn, void *arg);

/* iterate() of a store never written: it visits nothing, and reads nothing
 * but its own method pointer -- each simulated node walks its store a few
 * times a round, and at scale most stores stay empty (perf at 10,000 nodes:
 * the store's own struct was a cache miss, 3% of qdbsim).  The first entry
 * added puts mem_iterate in its place. */
static int mem_iterate_none(qdb_storage *s, const uint8_t *from, size_t from_len,
                            const uint8_t *to, size_t to_len, qdb_storage_iter_fn fn, void *arg)
{
    return QDB_OK;
}

/* An update of the same length (1 KiB over 1 KiB under make bench) is
 * copied over the old value in place: no allocation.  Only a new key touches
 * the tree and the index. */
static int mem_put_parts(qdb_storage *s, const uint8_t *key, size_t key_len, const uint8_t *head,
                         size_t head_len, const uint8_t *body, size_t body_len)
{
    mem_store *m = s->impl;
    size_t len = head_len + body_len;
    mem_entry probe = {.key = key, .key_len = key_len};
    mem_entry *e = mem_find(s, &probe);
    if (e && e->value_len != len) { /* a new length: a block of its own */
        if (!mem_value_inline(e))
            g_free(e->value);
        e->value = g_malloc(len > 0 ? len : 1); /* never NULL: see mem_peek */
        e->value_len = len;
    } else if (e == NULL) {
        e = g_malloc(sizeof *e + key_len + (len > 0 ? len : 1));
        e->key = e->data;
        e->key_len = key_len;
        e->value = e->data + key_len;
        e->value_len = len;
        if (key_len > 0)
            memcpy(e->data, key, key_len);
        m->last = e;
        s->iterate = mem_iterate; /* in place of mem_iterate_none */
        if (m->indexed) { /* the tree waits: mem_settle() */
            mem_index_add(m, e);
            mem_fresh f = {mem_prefix(key, key_len), e};
            g_array_append_val(m->fresh, f);
        } else {
            g_tree_insert(m->tree, e, e);
            if (g_tree_nnodes(m->tree) > MEM_INDEX_AT) {
                m->indexed = true;
                g_tree_foreach(m->tree, index_add, m);
                m->fresh = g_array_new(FALSE, FALSE, sizeof(mem_fresh));
            }
        }
    }
    if (head_len > 0)
        memcpy(e->value, head, head_len);
    if (body_len > 0)
        memcpy(e->value + head_len, body, body_len);
    return QDB_OK;
}

static int mem_put(qdb_storage *s, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    return mem_put_parts(s, key, key_len, value, value_len, NULL, 0);
}

static int mem_del(qdb_storage *s, const uint8_t *key, size_t key_len)
{
    mem_entry probe = {.key = key, .key_len = key_len};
    mem_store *m = s->impl;
    m->last = NULL; /* it may be the one removed */
    mem_settle(m);  /* it may be fresh */
    mem_entry *e = g_tree_lookup(m->tree, &probe);
    if (e == NULL)
        return QDB_E_ALIAS_NOT_FOUND;
    if (m->indexed)
        qdb_hindex_remove(&m->index, mem_key_hash(key, key_len), e);
    g_tree_remove(m->tree, e); /* frees e */
    return QDB_OK;
}

static int mem_iterate(qdb_storage *s, const uint8_t *from, size_t from_len, const uint8_t *to,
                       size_t to_len, qdb_storage_iter_fn fn, void *arg)
{
    mem_entry probe = {.key = from, .key_len = from_len};
    mem_settle(s->impl);
    for (GTreeNode *node = g_tree_lower_bound(mem_tree(s), &probe); node != NULL;
         node = g_tree_node_next(node)) {
        const mem_entry *e = g_tree_node_key(node);
        if (to != NULL && mem_key_cmp(e->key, e->key_len, to, to_len) >= 0)
            break;
        if (fn(arg, e->key, e->key_len, mem_value(e), e->value_len) != 0)
            break;
    }
    return QDB_OK;
}

static uint64_t mem_count(qdb_storage *s)
{
    mem_store *m = s->impl;
    return (uint64_t)g_tree_nnodes(m->tree) + (m->fresh ? m->fresh->len : 0);
}

static void mem_destroy(qdb_storage *s)
{
    if (s == NULL)
        return;
    mem_store *m = s->impl;
    qdb_hindex_clear(&m->index);
    if (m->fresh) {
        for (guint i = 0; i < m->fresh->len; i++)
            mem_entry_free(g_array_index(m->fresh, mem_fresh, i).e);
        g_array_free(m->fresh, TRUE);
    }
    g_tree_destroy(m->tree);
    g_free(m);
    g_free(s);
}

qdb_storage *qdb_storage_memory_new(void)
{
    qdb_storage *s = g_new0(qdb_storage, 1);
    s->version = QDB_SEAM_VERSION;
    mem_store *m = g_new0(mem_store, 1);
    m->tree = g_tree_new_full(mem_entry_cmp, NULL, mem_entry_free, NULL);
    s->impl = m;
    s->get = mem_get;
    s->put = mem_put;
    s->del = mem_del;
    s->iterate = mem_iterate_none;
    s->count = mem_count;
    s->destroy = mem_destroy;
    s->peek = mem_peek;
    s->put_parts = mem_put_parts;
    s->prefetch = mem_prefetch;
    return s;
}

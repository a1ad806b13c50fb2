/* SPDX-License-Identifier: BSD-2-Clause */
/* The Berkeley DB 5.3 storage backend (contract in bdb.h).
 *
 * Sections:
 *   - state, errors and scratch buffers
 *   - value codec: the stored layout and zstd
 *   - room: the depot limit, the disk reserve, the disk-full state
 *   - the seam's methods: get, put, del, iterate, count, usage, destroy
 *   - opening: root checks, the lock file, environment, database, counting
 *   - checkpoint, stats and the test panic
 *
 * Stored value layout (the BDB data item of each key):
 *   u8 codec          0 raw, 1 zstd
 *   raw:  the value's bytes
 *   zstd: u64 big-endian original length, then one zstd frame
 */
#define G_LOG_DOMAIN "qdb-bdb"

#include "storage/bdb.h"

#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>

#include "node/error.h"

/* ---- state, errors and scratch buffers ----------------------------------- */

enum { CODEC_RAW = 0, CODEC_ZSTD = 1 };
#define ZSTD_HEADER 9 /* codec byte + u64 original length */

/* iterate() copies at most this much out of a cursor before it closes the
 * cursor and calls back (at least one record per batch, whatever its size). */
#define BATCH_RECORDS 256
#define BATCH_BYTES ((size_t)1 << 20)

/* A buffer reused across calls, grown on demand, for DB_DBT_USERMEM. */
typedef struct scratch {
    uint8_t *buf;
    size_t cap;
} scratch;

typedef struct bdb_store {
    qdb_storage seam;
    DB_ENV *env;
    DB *db;
    int lock_fd;
    char *root;
    qdb_bdb_options opt;
    uint32_t commit_flags;
    uint64_t count;
    uint64_t depot_bytes; /* keys + stored values, see bdb.h */
    uint64_t warn_bytes;  /* 0: no warning level */
    bool warning;         /* depot_bytes >= warn_bytes, as last logged */
    bool disk_full;       /* see "Disk full" in bdb.h */
    bool failed;          /* BDB panicked: every call fails (bdb.h) */
    char *reserve_path;
    bool reserve_held;    /* the reserve file is allocated */
    uint32_t pagesize;    /* entries.db's */
    bool freed_while_full; /* a remove ran while disk_full: give_back_pages() */
    /* disk_room(): growing puts and their bytes since the last statvfs, and
     * the free space above the floor it found */
    unsigned puts_unchecked;
    uint64_t grown_unchecked, headroom;
    qdb_bdb_stats stats;
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    scratch data;   /* get(): the stored value */
    scratch packed; /* put(): the compressed value */
    char bdb_msg[256]; /* BDB's last extended error message (errcall) */
} bdb_store;

static bdb_store *store_of(qdb_storage *s)
{
    return s->impl;
}

static void scratch_reserve(scratch *sc, size_t n)
{
    if (n <= sc->cap)
        return;
    size_t cap = sc->cap ? sc->cap : 4096;
    while (cap < n)
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    sc->buf = g_realloc(sc->buf, cap);
    sc->cap = cap;
}

static void scratch_free(scratch *sc)
{
    g_free(sc->buf);
    sc->buf = NULL;
    sc->cap = 0;
}

static void store_failed(bdb_store *st)
{
    if (st->failed)
        return;
    st->failed = true;
    g_critical("%s: Berkeley DB failed beyond repair (run recovery): the store refuses every "
               "call until qdbd restarts, which recovers it", st->root);
}

/* "bdb <op>: <db_strerror>", plus BDB's extended message when it gave one
 * during this call (they say which file or which limit).  DB_RUNRECOVERY
 * marks the store failed. */
static int bdb_fail(bdb_store *st, const char *op, int ret)
{
    if (ret == DB_RUNRECOVERY)
        store_failed(st);
    if (st->bdb_msg[0])
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE, "bdb %s: %s (%s)", op,
                             db_strerror(ret), st->bdb_msg);
    return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE, "bdb %s: %s", op, db_strerror(ret));
}

/* A full disk makes BDB report every failed write: logged only until the
 * store knows the disk is full (it then stops writing what would grow it). */
static void bdb_errcall(const DB_ENV *env, const char *prefix, const char *msg)
{
    bdb_store *st = env->app_private;
    if (!st || !st->disk_full)
        g_warning("%s%s%s", prefix ? prefix : "", prefix ? ": " : "", msg);
    if (st)
        g_strlcpy(st->bdb_msg, msg, sizeof st->bdb_msg);
}

/* BDB's panic event: the environment is gone, whichever call meets it. */
static void bdb_event(DB_ENV *env, u_int32_t event, void *info)
{
    (void)info;
    if (event == DB_EVENT_PANIC && env->app_private)
        store_failed(env->app_private);
}

static int refuse_failed(bdb_store *st)
{
    return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE,
                         "bdb: the store failed (Berkeley DB needs recovery: restart qdbd)");
}

static void dbt_in(DBT *d, const uint8_t *p, size_t n)
{
    memset(d, 0, sizeof *d);
    d->data = (void *)p;
    d->size = (u_int32_t)n;
}

static void dbt_user(DBT *d, scratch *sc)
{
    memset(d, 0, sizeof *d);
    d->data = sc->buf;
    d->ulen = (u_int32_t)MIN(sc->cap, (size_t)UINT32_MAX);
    d->flags = DB_DBT_USERMEM;
}

/* dbc->get into scratch buffers, growing them on DB_BUFFER_SMALL (BDB leaves
 * the cursor where it was then).  For DB_SET_RANGE the search key is copied
 * into kbuf again on each try, as BDB overwrites it with the key found. */
static int cursor_get(DBC *c, u_int32_t flags, const uint8_t *search, size_t search_len,
                      scratch *kbuf, scratch *vbuf, DBT *key, DBT *val)
{
    for (;;) {
        if (flags == DB_SET_RANGE) {
            scratch_reserve(kbuf, search_len ? search_len : 1);
            if (search_len)
                memcpy(kbuf->buf, search, search_len);
        }
        dbt_user(key, kbuf);
        dbt_user(val, vbuf);
        if (flags == DB_SET_RANGE)
            key->size = (u_int32_t)search_len;
        int ret = c->get(c, key, val, flags);
        if (ret != DB_BUFFER_SMALL)
            return ret;
        if (key->size > key->ulen)
            scratch_reserve(kbuf, key->size);
        if (val->size > val->ulen)
            scratch_reserve(vbuf, val->size);
    }
}

/* memcmp order, shorter first on a common prefix: BDB's default btree order. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = MIN(alen, blen);
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- value codec ----------------------------------------------------------- */

/* Encodes value into st->packed when compression pays (at least 1/8 saved,
 * header included); returns the stored length, or 0 to store it raw. */
static size_t encode_zstd(bdb_store *st, const uint8_t *value, size_t len)
{
    if (len < st->opt.compress_threshold || len < 16)
        return 0;
    size_t bound = ZSTD_compressBound(len);
    scratch_reserve(&st->packed, ZSTD_HEADER + bound);
    size_t z = ZSTD_compressCCtx(st->cctx, st->packed.buf + ZSTD_HEADER, bound, value, len,
                                 st->opt.compress_level);
    if (ZSTD_isError(z))
        return 0; /* not an error: the value is simply stored raw */
    size_t stored = ZSTD_HEADER + z;
    if (stored > len - len / 8)
        return 0;
    st->packed.buf[0] = CODEC_ZSTD;
    qdb_be64_put(st->packed.buf + 1, len);
    return stored;
}

/* Checks the framing of a stored value.  Raw: *payload is the value itself.
 * Zstd: *payload is the frame and *orig_len the declared length, which the
 * frame's own content size must confirm (ZSTD_compress always records it). */
static int decode_check(bdb_store *st, const uint8_t *stored, size_t len, int *codec,
                        const uint8_t **payload, size_t *payload_len, size_t *orig_len)
{
    if (len < 1)
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE,
                             "bdb: corrupt stored value (empty, no codec byte)");
    *codec = stored[0];
    if (*codec == CODEC_RAW) {
        *payload = stored + 1;
        *payload_len = *orig_len = len - 1;
        return QDB_OK;
    }
    if (*codec != CODEC_ZSTD)
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE,
                             "bdb: corrupt stored value (unknown codec %d)", *codec);
    if (len < ZSTD_HEADER)
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE,
                             "bdb: corrupt stored value (zstd header truncated, %zu bytes)", len);
    uint64_t declared = qdb_be64_get(stored + 1);
    *payload = stored + ZSTD_HEADER;
    *payload_len = len - ZSTD_HEADER;
    unsigned long long fcs = ZSTD_getFrameContentSize(*payload, *payload_len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR || fcs == ZSTD_CONTENTSIZE_UNKNOWN || fcs != declared ||
        declared > SIZE_MAX)
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE,
                             "bdb: corrupt stored value (zstd frame does not match length %" G_GUINT64_FORMAT ")",
                             declared);
    *orig_len = (size_t)declared;
    return QDB_OK;
}

static int decompress_into(bdb_store *st, uint8_t *dst, size_t orig_len, const uint8_t *frame,
                           size_t frame_len)
{
    size_t n = ZSTD_decompressDCtx(st->dctx, dst, orig_len, frame, frame_len);
    if (ZSTD_isError(n) || n != orig_len)
        return qdb_error_set(st->seam.errmsg, QDB_E_STORAGE, "bdb: corrupt stored value (zstd: %s)",
                             ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame");
    return QDB_OK;
}

/* Decodes into a view: into the stored bytes when raw, into out when zstd. */
static int decode_view(bdb_store *st, const uint8_t *stored, size_t len, scratch *out,
                       const uint8_t **value, size_t *value_len)
{
    int codec;
    const uint8_t *payload;
    size_t payload_len, orig_len;
    int rc = decode_check(st, stored, len, &codec, &payload, &payload_len, &orig_len);
    if (rc)
        return rc;
    if (codec == CODEC_RAW) {
        *value = payload;
        *value_len = payload_len;
        return QDB_OK;
    }
    scratch_reserve(out, orig_len ? orig_len : 1);
    rc = decompress_into(st, out->buf, orig_len, payload, payload_len);
    if (rc)
        return rc;
    *value = out->buf;
    *value_len = orig_len;
    return QDB_OK;
}

/* ---- room: the depot limit, the disk reserve, the disk-full state ------------- */

#define MIB ((uint64_t)1 << 20)
/* Between two looks at the free space: at most this many growing puts, and
 * at most a quarter of the room above the floor in depot growth (the log and
 * the pages take the bytes again, and more). */
#define STATVFS_EVERY 256

static uint64_t free_bytes(bdb_store *st)
{
    struct statvfs v;
    if (statvfs(st->root, &v) != 0)
        return 0;
    return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Allocates the reserve file: true when it holds disk_reserve bytes of real
 * blocks (posix_fallocate, not a sparse file). */
static bool reserve_take(bdb_store *st)
{
    int fd = open(st->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    int e = posix_fallocate(fd, 0, (off_t)st->opt.disk_reserve);
    close(fd);
    if (e != 0) {
        unlink(st->reserve_path); /* a part of it would only take room */
        return false;
    }
    st->reserve_held = true;
    return true;
}

/* Bytes of dirty pages in the cache: a checkpoint writes them out, and
 * those beyond the end of entries.db need new blocks. */
static uint64_t dirty_bytes(bdb_store *st)
{
    DB_MPOOL_STAT *ms = NULL;
    if (st->env->memp_stat(st->env, &ms, NULL, 0) != 0 || !ms)
        return 0;
    uint64_t b = (uint64_t)ms->st_page_dirty * st->pagesize;
    free(ms); /* BDB allocates it with malloc(3) */
    return b;
}

/* The free space a growing put needs: the reserve (room kept for removes and
 * checkpoints), the reserve file's own size again while it is given back (so
 * that it can be taken again), and the cache's dirty pages; at least 1 MiB. */
static uint64_t floor_bytes(bdb_store *st)
{
    uint64_t r = st->opt.disk_reserve;
    return MAX(r + (st->reserve_held ? 0 : r) + dirty_bytes(st), MIB);
}

/* `no_space`: a write met ENOSPC (someone took the floor): the reserve file
 * goes back to the file system.  Either way a checkpoint follows, which
 * writes the cache's dirty pages out and removes the log files recovery no
 * longer needs.  True when the reserve was given back now. */
static bool disk_full_enter(bdb_store *st, bool no_space)
{
    bool gave = no_space && st->reserve_held && unlink(st->reserve_path) == 0;
    if (gave)
        st->reserve_held = false;
    if (st->disk_full && !gave)
        return false;
    g_warning("%s: disk full (%" G_GUINT64_FORMAT " bytes free): writes that grow the store are "
              "refused, removes still run%s", st->root, free_bytes(st),
              gave ? "; the disk reserve is given back for them" : "");
    st->disk_full = true;
    int ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE);
    if (ret == DB_RUNRECOVERY)
        store_failed(st);
    return gave;
}

/* Removes while the disk is full free pages inside entries.db, which BDB
 * reuses but the file system does not see: compaction moves the free pages
 * to the end of the file and truncates it (DB_FREE_SPACE), and the
 * checkpoint after it removes the log files no longer needed.  O(size of the
 * database), so only when removes ran since the last time. */
static void give_back_pages(bdb_store *st)
{
    st->freed_while_full = false;
    DB_COMPACT c;
    memset(&c, 0, sizeof c);
    /* Compaction logs the pages it moves: the log files the last removes
     * made obsolete go first, and the reserve when that is not enough. */
    int ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE);
    if (ret == 0 || ret == ENOSPC)
        ret = st->db->compact(st->db, NULL, NULL, NULL, &c, DB_FREE_SPACE, NULL);
    if (ret == ENOSPC && disk_full_enter(st, true))
        ret = st->db->compact(st->db, NULL, NULL, NULL, &c, DB_FREE_SPACE, NULL);
    if (ret == 0)
        ret = st->env->txn_checkpoint(st->env, 0, 0, DB_FORCE);
    if (ret == DB_RUNRECOVERY)
        store_failed(st);
    else if (ret)
        g_message("%s: giving free pages back: %s", st->root, db_strerror(ret));
    else
        g_debug("%s: gave %u free pages back to the file system", st->root,
                c.compact_pages_truncated);
}

/* Is there room for a put that grows the depot by `grow` bytes?  Looks at
 * the free space only now and then while far above the floor. */
static bool disk_room(bdb_store *st, uint64_t grow)
{
    st->grown_unchecked += grow;
    if (!st->disk_full && ++st->puts_unchecked < STATVFS_EVERY &&
        st->grown_unchecked < st->headroom / 4)
        return true;
    uint64_t fr = free_bytes(st), fl = floor_bytes(st);
    st->puts_unchecked = 0;
    st->grown_unchecked = 0;
    st->headroom = fr > fl ? fr - fl : 0;
    if (fr < fl || fr - fl < grow) {
        disk_full_enter(st, false);
        return false;
    }
    if (!st->reserve_held && st->opt.disk_reserve && !reserve_take(st))
        return false;
    if (st->disk_full) {
        st->disk_full = false;
        g_message("%s: the disk has room again (%" G_GUINT64_FORMAT " bytes free): puts "
                  "accepted", st->root, fr);
    }
    return true;
}

/* QDB_OK when a put that grows the depot by `grow` bytes (> 0) may run. */
static int room_for(bdb_store *st, uint64_t grow)
{
    uint64_t max = st->opt.max_depot_bytes;
    if (max && (st->depot_bytes > max || grow > max - st->depot_bytes))
        return qdb_error_set(st->seam.errmsg, QDB_E_DEPOT_FULL,
                             "bdb put: depot full (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                             " bytes)", st->depot_bytes, max);
    if (!disk_room(st, grow))
        return qdb_error_set(st->seam.errmsg, QDB_E_DISK_FULL, "bdb put: disk full under %s",
                             st->root);
    return QDB_OK;
}

/* Logs each crossing of the warning level, once. */
static void depot_changed(bdb_store *st)
{
    bool above = st->warn_bytes && st->depot_bytes >= st->warn_bytes;
    if (above == st->warning)
        return;
    st->warning = above;
    if (above)
        g_warning("%s: the depot holds %" G_GUINT64_FORMAT " bytes, %u%% or more of its limit "
                  "(%" G_GUINT64_FORMAT "): puts will be refused at the limit", st->root,
                  st->depot_bytes, st->opt.warn_percent, st->opt.max_depot_bytes);
    else
        g_message("%s: the depot is below %u%% of its limit again (%" G_GUINT64_FORMAT " bytes)",
                  st->root, st->opt.warn_percent, st->depot_bytes);
}

/* The stored length of key's value, without reading it: a get into a
 * zero-byte buffer answers DB_BUFFER_SMALL with the size.  Inside txn, the
 * record is locked for the write that follows (DB_RMW).  0 and *len,
 * DB_NOTFOUND, or BDB's error. */
static int stored_len_of(bdb_store *st, DB_TXN *txn, DBT *k, size_t *len)
{
    DBT d;
    memset(&d, 0, sizeof d);
    d.flags = DB_DBT_USERMEM;
    int ret = st->db->get(st->db, txn, k, &d, txn ? DB_RMW : 0);
    if (ret == DB_BUFFER_SMALL || ret == 0) {
        *len = d.size;
        return 0;
    }
    return ret;
}

/* ---- the seam's methods ------------------------------------------------------ */

static int bdb_get(qdb_storage *s, const uint8_t *key, size_t key_len, uint8_t **value,
                   size_t *value_len)
{
    bdb_store *st = store_of(s);
    DBT k, d;
    int ret;
    st->bdb_msg[0] = '\0';
    if (st->failed)
        return refuse_failed(st);
    scratch_reserve(&st->data, 1);
    for (;;) {
        dbt_in(&k, key, key_len);
        dbt_user(&d, &st->data);
        ret = st->db->get(st->db, NULL, &k, &d, 0);
        if (ret != DB_BUFFER_SMALL)
            break;
        scratch_reserve(&st->data, d.size);
    }
    if (ret == DB_NOTFOUND)
        return QDB_E_ALIAS_NOT_FOUND;
    if (ret)
        return bdb_fail(st, "get", ret);

    int codec;
    const uint8_t *payload;
    size_t payload_len, orig_len;
    int rc = decode_check(st, st->data.buf, d.size, &codec, &payload, &payload_len, &orig_len);
    if (rc)
        return rc;
    uint8_t *out = g_malloc(orig_len ? orig_len : 1);
    if (codec == CODEC_RAW) {
        memcpy(out, payload, payload_len);
    } else if ((rc = decompress_into(st, out, orig_len, payload, payload_len)) != QDB_OK) {
        g_free(out);
        return rc;
    }
    *value = out;
    *value_len = orig_len;
    return QDB_OK;
}

/* One put (d) or delete (d == NULL) in its own transaction: the size of the
 * value in place, read without reading the value, says whether the key is
 * new (for the exact count) and whether the put grows the depot (the
 * limits); the write follows in the same transaction, so the commit costs
 * one log write.  0 or BDB's error (DB_NOTFOUND: a delete of an absent key),
 * the transaction aborted on error.  *old_len is the stored length of the value in place (0: none).  A
 * put that grows the depot without room for it is not tried: *refused is
 * set (QDB_E_DEPOT_FULL or QDB_E_DISK_FULL) and 0 returned. */
static int write_txn(bdb_store *st, DBT *k, DBT *d, size_t *old_len, int *refused)
{
    DB_TXN *txn;
    *old_len = 0;
    *refused = QDB_OK;
    int ret = st->env->txn_begin(st->env, NULL, &txn, 0);
    if (ret)
        return ret;
    ret = stored_len_of(st, txn, k, old_len);
    if (d && (ret == 0 || ret == DB_NOTFOUND)) {
        uint64_t before = ret == 0 ? k->size + *old_len : 0, after = (uint64_t)k->size + d->size;
        if (after > before && (*refused = room_for(st, after - before)) != QDB_OK) {
            txn->abort(txn);
            return 0;
        }
        ret = st->db->put(st->db, txn, k, d, 0);
    } else if (ret == 0) {
        ret = st->db->del(st->db, txn, k, 0);
    }
    if (ret) {
        txn->abort(txn);
        return ret;
    }
    return txn->commit(txn, st->commit_flags);
}

/* write_txn(), once more when it met ENOSPC with the reserve file held: the
 * reserve goes back to the file system, and the write gets its room (a
 * growing put is refused by then: room_for sees the disk full).  Returns a
 * qdb code; on QDB_OK *old_len as write_txn(). */
static int write_room(bdb_store *st, const char *op, DBT *k, DBT *d, size_t *old_len)
{
    int refused;
    int ret = write_txn(st, k, d, old_len, &refused);
    if (ret == ENOSPC && disk_full_enter(st, true))
        ret = write_txn(st, k, d, old_len, &refused);
    if (refused)
        return refused;
    if (ret == DB_NOTFOUND && !d)
        return QDB_E_ALIAS_NOT_FOUND;
    if (ret == ENOSPC) {
        disk_full_enter(st, true);
        return qdb_error_set(st->seam.errmsg, QDB_E_DISK_FULL, "bdb %s: disk full under %s", op,
                             st->root);
    }
    return ret ? bdb_fail(st, op, ret) : QDB_OK;
}

static int bdb_put(qdb_storage *s, const uint8_t *key, size_t key_len, const uint8_t *value,
                   size_t value_len)
{
    bdb_store *st = store_of(s);
    st->bdb_msg[0] = '\0';
    if (st->failed)
        return refuse_failed(st);
    if (value_len > UINT32_MAX - ZSTD_HEADER || key_len > UINT32_MAX)
        return qdb_error_set(s->errmsg, QDB_E_STORAGE,
                             "bdb put: key or value too large (%zu, %zu bytes)", key_len, value_len);

    /* A DBT is one buffer: a raw value is copied behind its codec byte. */
    size_t stored_len = encode_zstd(st, value, value_len);
    bool compressed = stored_len != 0;
    if (!compressed) {
        stored_len = 1 + value_len;
        scratch_reserve(&st->packed, stored_len);
        st->packed.buf[0] = CODEC_RAW;
        if (value_len)
            memcpy(st->packed.buf + 1, value, value_len);
    }

    DBT k, d;
    dbt_in(&k, key, key_len);
    dbt_in(&d, st->packed.buf, stored_len);
    size_t in_place;
    if (st->disk_full && st->freed_while_full &&
        (stored_len_of(st, NULL, &k, &in_place) != 0 || in_place < stored_len))
        give_back_pages(st); /* a growing put: first, outside any transaction */
    size_t old_len;
    int rc = write_room(st, "put", &k, &d, &old_len);
    if (rc)
        return rc;
    if (old_len == 0) /* stored values are never empty: the codec byte */
        st->count++;
    st->freed_while_full |= st->disk_full && old_len > stored_len;
    st->depot_bytes += key_len + stored_len;
    st->depot_bytes -= old_len ? key_len + old_len : 0;
    depot_changed(st);
    st->stats.puts++;
    st->stats.compressed_puts += compressed;
    st->stats.bytes_in += value_len;
    st->stats.bytes_stored += stored_len;
    return QDB_OK;
}

static int bdb_del(qdb_storage *s, const uint8_t *key, size_t key_len)
{
    bdb_store *st = store_of(s);
    st->bdb_msg[0] = '\0';
    if (st->failed)
        return refuse_failed(st);
    DBT k;
    dbt_in(&k, key, key_len);
    size_t old_len;
    int rc = write_room(st, "del", &k, NULL, &old_len);
    if (rc)
        return rc;
    st->count--;
    st->freed_while_full |= st->disk_full;
    st->depot_bytes -= key_len + old_len;
    depot_changed(st);
    return QDB_OK;
}

typedef struct batch_item {
    size_t koff, klen, voff, vlen;
} batch_item;

/* Fills the batch with records from the first key >= start (and < to),
 * stored bytes as they are.  *end is set when the range is exhausted. */
static int read_batch(bdb_store *st, const uint8_t *start, size_t start_len, const uint8_t *to,
                      size_t to_len, GByteArray *bytes, GArray *items, bool *end)
{
    scratch kbuf = { 0 }, vbuf = { 0 };
    scratch_reserve(&kbuf, 256);
    scratch_reserve(&vbuf, 4096);
    DBC *c;
    int ret = st->db->cursor(st->db, NULL, &c, 0);
    if (ret) {
        scratch_free(&kbuf);
        scratch_free(&vbuf);
        return bdb_fail(st, "iterate (cursor)", ret);
    }
    int rc = QDB_OK;
    *end = false;
    for (bool first = true; items->len < BATCH_RECORDS && bytes->len < BATCH_BYTES; first = false) {
        DBT k, d;
        u_int32_t op = !first ? DB_NEXT : start_len ? DB_SET_RANGE : DB_FIRST;
        ret = cursor_get(c, op, start, start_len, &kbuf, &vbuf, &k, &d);
        if (ret == DB_NOTFOUND) {
            *end = true;
            break;
        }
        if (ret) {
            rc = bdb_fail(st, "iterate", ret);
            break;
        }
        if (to && key_cmp(k.data, k.size, to, to_len) >= 0) {
            *end = true;
            break;
        }
        batch_item it = { .koff = bytes->len, .klen = k.size };
        g_byte_array_append(bytes, k.data, k.size);
        it.voff = bytes->len;
        it.vlen = d.size;
        g_byte_array_append(bytes, d.data, d.size);
        g_array_append_val(items, it);
    }
    ret = c->close(c);
    if (ret && rc == QDB_OK)
        rc = bdb_fail(st, "iterate (cursor close)", ret);
    scratch_free(&kbuf);
    scratch_free(&vbuf);
    return rc;
}

/* Batches of records are copied out with the cursor open, then the cursor is
 * closed and fn runs over the copies; the next batch starts at the smallest
 * key after the last one seen, which in this order is that key + one 0x00
 * byte.  One extra btree descent per batch buys a walk that holds no locks
 * while fn runs. */
static int bdb_iterate(qdb_storage *s, const uint8_t *from, size_t from_len, const uint8_t *to,
                       size_t to_len, qdb_storage_iter_fn fn, void *arg)
{
    bdb_store *st = store_of(s);
    st->bdb_msg[0] = '\0';
    if (st->failed)
        return refuse_failed(st);
    GByteArray *start = g_byte_array_new();
    GByteArray *bytes = g_byte_array_new();
    GArray *items = g_array_new(FALSE, FALSE, sizeof(batch_item));
    scratch plain = { 0 };
    if (from_len)
        g_byte_array_append(start, from, (guint)from_len);
    int rc = QDB_OK;
    bool stop = false;
    while (!stop) {
        bool end = false;
        g_byte_array_set_size(bytes, 0);
        g_array_set_size(items, 0);
        rc = read_batch(st, start->data, start->len, to, to_len, bytes, items, &end);
        if (rc)
            break;
        for (guint i = 0; i < items->len && !stop; i++) {
            const batch_item *it = &g_array_index(items, batch_item, i);
            const uint8_t *v;
            size_t vlen;
            rc = decode_view(st, bytes->data + it->voff, it->vlen, &plain, &v, &vlen);
            if (rc) {
                stop = true;
                break;
            }
            if (fn(arg, bytes->data + it->koff, it->klen, v, vlen))
                stop = true;
        }
        if (end || items->len == 0)
            break;
        const batch_item *last = &g_array_index(items, batch_item, items->len - 1);
        g_byte_array_set_size(start, 0);
        g_byte_array_append(start, bytes->data + last->koff, (guint)last->klen);
        g_byte_array_append(start, (const guint8 *)"", 1);
    }
    scratch_free(&plain);
    g_array_free(items, TRUE);
    g_byte_array_free(bytes, TRUE);
    g_byte_array_free(start, TRUE);
    return rc;
}

static uint64_t bdb_count(qdb_storage *s)
{
    return store_of(s)->count;
}

static void bdb_usage(qdb_storage *s, qdb_storage_usage *out)
{
    bdb_store *st = store_of(s);
    *out = (qdb_storage_usage){
        .depot_bytes = st->depot_bytes,
        .max_bytes = st->opt.max_depot_bytes,
        .warn_bytes = st->warn_bytes,
        .warning = st->warning,
        .disk_full = st->disk_full,
        .failed = st->failed,
    };
}

static void bdb_destroy(qdb_storage *s)
{
    if (!s)
        return;
    bdb_store *st = store_of(s);
    int ret;
    /* A checkpoint makes the next open's recovery short.  A failed
     * environment writes nothing more (no checkpoint, no page flushed at the
     * database's close): recovery at the next open does the rest.  Its panic
     * flag is cleared first, or BDB would refuse to close it and keep its
     * (heap) regions. */
    if (st->failed)
        st->env->set_flags(st->env, DB_PANIC_ENVIRONMENT, 0);
    else if ((ret = st->env->txn_checkpoint(st->env, 0, 0, 0)) != 0)
        g_warning("%s: checkpoint at close: %s", st->root, db_strerror(ret));
    if ((ret = st->db->close(st->db, st->failed ? DB_NOSYNC : 0)) != 0 && !st->failed)
        g_warning("%s: closing entries.db: %s", st->root, db_strerror(ret));
    if ((ret = st->env->close(st->env, 0)) != 0 && !st->failed)
        g_warning("%s: closing the environment: %s", st->root, db_strerror(ret));
    close(st->lock_fd); /* releases the flock */
    ZSTD_freeCCtx(st->cctx);
    ZSTD_freeDCtx(st->dctx);
    scratch_free(&st->data);
    scratch_free(&st->packed);
    g_free(st->reserve_path);
    g_free(st->root);
    g_free(st);
}

/* ---- opening ----------------------------------------------------------------- */

qdb_bdb_options qdb_bdb_options_defaults(void)
{
    return (qdb_bdb_options){
        .sync = 0,
        .compress_threshold = QDB_DEFAULT_BDB_COMPRESS_THRESHOLD,
        .compress_level = QDB_DEFAULT_BDB_COMPRESS_LEVEL,
        .cache_bytes = QDB_DEFAULT_BDB_CACHE_BYTES,
        .warn_percent = QDB_DEFAULT_BDB_DEPOT_WARN_PERCENT,
    };
}

/* Creates the root if missing and checks it is a writable directory, so the
 * common mistakes get a plain message rather than BDB's. */
static bool check_root(const char *root, char *err)
{
    struct stat sb;
    if (g_stat(root, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode)) {
            qdb_error_set(err, QDB_E_STORAGE, "root %s is not a directory", root);
            return false;
        }
    } else if (g_mkdir_with_parents(root, 0700) != 0) {
        qdb_error_set(err, QDB_E_STORAGE, "cannot create root %s: %s", root, g_strerror(errno));
        return false;
    }
    if (access(root, R_OK | W_OK | X_OK) != 0) {
        qdb_error_set(err, QDB_E_STORAGE, "root %s is not writable: %s", root, g_strerror(errno));
        return false;
    }
    return true;
}

/* Number of records and their bytes (keys and stored values), by one walk
 * over the keys: each value's size comes from a get into a zero-byte buffer
 * (DB_BUFFER_SMALL tells it; no data is copied, no overflow page read).
 * O(n), once per open. */
static int count_records(bdb_store *st, uint64_t *out, uint64_t *bytes)
{
    DBC *c;
    int ret = st->db->cursor(st->db, NULL, &c, 0);
    if (ret)
        return ret;
    scratch kbuf = { 0 };
    scratch_reserve(&kbuf, 256);
    uint8_t nothing;
    uint64_t n = 0, b = 0;
    for (;;) {
        DBT k, d;
        memset(&d, 0, sizeof d);
        d.data = &nothing;
        d.flags = DB_DBT_USERMEM | DB_DBT_PARTIAL;
        d.ulen = 1;
        d.dlen = 0;
        d.doff = 0;
        dbt_user(&k, &kbuf);
        ret = c->get(c, &k, &d, DB_NEXT);
        if (ret == DB_BUFFER_SMALL) {
            scratch_reserve(&kbuf, k.size);
            continue;
        }
        if (ret)
            break;
        DBT k2, size;
        dbt_user(&k2, &kbuf);
        memset(&size, 0, sizeof size);
        size.flags = DB_DBT_USERMEM;
        ret = c->get(c, &k2, &size, DB_CURRENT);
        if (ret != DB_BUFFER_SMALL && ret != 0)
            break;
        n++;
        b += k.size + size.size;
    }
    scratch_free(&kbuf);
    int cret = c->close(c);
    if (ret == DB_NOTFOUND)
        ret = cret;
    if (ret == 0) {
        *out = n;
        *bytes = b;
    }
    return ret;
}

qdb_storage *qdb_storage_bdb_open(const char *root, const qdb_bdb_options *opt, char *err)
{
    qdb_bdb_options o = opt ? *opt : qdb_bdb_options_defaults();
    err[0] = '\0';
    if (o.compress_level < ZSTD_minCLevel() || o.compress_level > ZSTD_maxCLevel()) {
        qdb_error_set(err, QDB_E_STORAGE, "zstd level %d out of range %d..%d", o.compress_level,
                      ZSTD_minCLevel(), ZSTD_maxCLevel());
        return NULL;
    }
    if (o.warn_percent > 100) {
        qdb_error_set(err, QDB_E_STORAGE, "depot warning level %u%% out of range 0..100",
                      o.warn_percent);
        return NULL;
    }
    if (!check_root(root, err))
        return NULL;

    bdb_store *st = g_new0(bdb_store, 1);
    st->root = g_strdup(root);
    st->opt = o;
    st->commit_flags = o.sync ? DB_TXN_SYNC : DB_TXN_WRITE_NOSYNC;
    st->reserve_path = g_build_filename(root, "disk.reserve", NULL);
    if (o.max_depot_bytes && o.warn_percent)
        st->warn_bytes = MAX(o.max_depot_bytes / 100 * o.warn_percent +
                                 o.max_depot_bytes % 100 * o.warn_percent / 100,
                             1);

    /* Recovery under a live store would wreck it: one open store per root. */
    char *lock_path = g_build_filename(root, "qdb.lock", NULL);
    st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_free(lock_path);
    if (st->lock_fd < 0) {
        qdb_error_set(err, QDB_E_STORAGE, "root %s: cannot create qdb.lock: %s", root,
                      g_strerror(errno));
        goto fail_alloc;
    }
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            qdb_error_set(err, QDB_E_STORAGE, "root %s is in use by another open store", root);
        else
            qdb_error_set(err, QDB_E_STORAGE, "root %s: cannot lock qdb.lock: %s", root,
                          g_strerror(errno));
        goto fail_lock_file;
    }

    int ret = db_env_create(&st->env, 0);
    if (ret) {
        qdb_error_set(err, QDB_E_STORAGE, "bdb env create: %s", db_strerror(ret));
        goto fail_lock_file;
    }
    st->env->app_private = st;
    st->env->set_errcall(st->env, bdb_errcall);
    const char *step = "set_event_notify";
    ret = st->env->set_event_notify(st->env, bdb_event);
    if (!ret && o.cache_bytes) {
        step = "set_cachesize";
        uint64_t gb = 1ULL << 30;
        ret = st->env->set_cachesize(st->env, (u_int32_t)(o.cache_bytes / gb),
                                     (u_int32_t)(o.cache_bytes % gb), 1);
    }
    if (!ret && !o.sync) {
        step = "set_flags(DB_TXN_WRITE_NOSYNC)";
        ret = st->env->set_flags(st->env, DB_TXN_WRITE_NOSYNC, 1);
    }
    if (!ret) {
        step = "log_set_config(DB_LOG_AUTO_REMOVE)";
        ret = st->env->log_set_config(st->env, DB_LOG_AUTO_REMOVE, 1);
    }
    if (!ret) {
        /* DB_PRIVATE: regions in the heap, never in mapped files that a
         * full disk turns into SIGBUS (bdb.h, "Environment memory"). */
        step = "env open";
        ret = st->env->open(st->env, root,
                            DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                                DB_INIT_MPOOL | DB_RECOVER | DB_PRIVATE,
                            0600);
    }
    if (ret) {
        qdb_error_set(err, QDB_E_STORAGE, "bdb %s in %s: %s%s%s", step, root, db_strerror(ret),
                      st->bdb_msg[0] ? " -- " : "", st->bdb_msg);
        goto fail_env_create;
    }

    ret = db_create(&st->db, st->env, 0);
    if (ret) {
        qdb_error_set(err, QDB_E_STORAGE, "bdb db create: %s", db_strerror(ret));
        goto fail_env_open;
    }
    ret = st->db->open(st->db, NULL, "entries.db", NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT,
                       0600);
    if (ret) {
        qdb_error_set(err, QDB_E_STORAGE, "bdb open %s/entries.db: %s%s%s", root, db_strerror(ret),
                      st->bdb_msg[0] ? " -- " : "", st->bdb_msg);
        goto fail_db_create;
    }
    ret = st->db->get_pagesize(st->db, &st->pagesize);
    if (!ret)
        ret = count_records(st, &st->count, &st->depot_bytes);
    if (ret) {
        qdb_error_set(err, QDB_E_STORAGE, "bdb counting records in %s: %s", root,
                      db_strerror(ret));
        goto fail_db_create;
    }

    depot_changed(st);
    if (o.disk_reserve && !reserve_take(st))
        g_warning("%s: no room for the %" G_GUINT64_FORMAT "-byte disk reserve: removes may fail "
                  "when the disk fills", root, o.disk_reserve);

    st->cctx = ZSTD_createCCtx();
    st->dctx = ZSTD_createDCtx();
    st->seam = (qdb_storage){
        .version = QDB_SEAM_VERSION,
        .impl = st,
        .get = bdb_get,
        .put = bdb_put,
        .del = bdb_del,
        .iterate = bdb_iterate,
        .count = bdb_count,
        .destroy = bdb_destroy,
        .usage = bdb_usage,
    };
    return &st->seam;

fail_db_create:
    st->db->close(st->db, 0);
fail_env_open:
fail_env_create:
    st->env->close(st->env, 0);
fail_lock_file:
    close(st->lock_fd);
fail_alloc:
    g_free(st->reserve_path);
    g_free(st->root);
    g_free(st);
    return NULL;
}

/* ---- checkpoint and stats ----------------------------------------------------- */

int qdb_storage_bdb_checkpoint(qdb_storage *s)
{
    bdb_store *st = store_of(s);
    st->bdb_msg[0] = '\0';
    if (st->failed)
        return refuse_failed(st);
    int ret = st->env->txn_checkpoint(st->env, 0, 0, 0);
    if (ret == ENOSPC)
        disk_full_enter(st, true); /* dirty pages cannot be written out */
    return ret ? bdb_fail(st, "checkpoint", ret) : QDB_OK;
}

void qdb_storage_bdb_panic(qdb_storage *s)
{
    bdb_store *st = store_of(s);
    st->env->set_flags(st->env, DB_PANIC_ENVIRONMENT, 1);
    store_failed(st);
}

void qdb_storage_bdb_stats(qdb_storage *s, qdb_bdb_stats *out)
{
    *out = store_of(s)->stats;
}

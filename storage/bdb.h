/* SPDX-License-Identifier: BSD-2-Clause */
/* The Berkeley DB 5.3 backend of the storage seam (qdb_storage, node/env.h).
 *
 * One transactional environment per node under a root directory, holding one
 * btree database, "entries.db".  Keys are ordered by memcmp, shorter first on
 * a common prefix: that is BDB's default btree comparison (__bam_defcmp), so
 * no comparison function is installed and db_dump/db_load stay usable.
 * Values are compressed with zstd transparently above a size threshold.
 *
 * Files under the root: the environment's region and log files (log.*), the
 * database entries.db, and qdb.lock, which one open store holds locked
 * (flock) so that a second process cannot run recovery under a live one.
 *
 * Durability.  Every put() and del() is one transaction, committed before
 * the call returns.  What "committed" promises depends on the sync mode:
 *
 *   sync = 0 (the default): the transaction's log records have been written
 *     to the operating system (DB_TXN_WRITE_NOSYNC), not forced to the disk.
 *     The write survives the death of the process, kill -9 included: the next
 *     open recovers it from the log.  It may be lost if the machine crashes
 *     or loses power before the operating system writes its cache out (within
 *     seconds, usually); the store stays consistent then, each transaction
 *     being present entirely or not at all, but the last acknowledged writes
 *     may be missing.
 *   sync = 1: the log records have been forced to stable storage (fsync,
 *     DB_TXN_SYNC) before the call returns.  The write survives a machine
 *     crash or a power loss, as far as the disk honours its flushes.  Each
 *     write costs at least one disk flush.
 *
 * In both modes data pages reach the disk lazily (checkpoints, cache
 * eviction, close); the log is what makes writes recoverable.  Recovery runs
 * on every open (DB_RECOVER) and replays the log since the last checkpoint,
 * so its time grows with the writes made since then: the owner should call
 * qdb_storage_bdb_checkpoint() periodically.  Log files that recovery no
 * longer needs are removed automatically (DB_LOG_AUTO_REMOVE) at checkpoints,
 * which keeps disk use bounded; the price is that catastrophic recovery from
 * an archived log is not possible.  The database file does not shrink when
 * records are deleted: BDB reuses its free pages.
 *
 * Threads: a store is used from one thread only (the node's event loop); it
 * is opened without DB_THREAD.
 *
 * Environment memory.  The environment is DB_PRIVATE: its regions (locks,
 * log buffer, transactions, the cache) live in the process's heap, not in
 * __db.00N files mapped into memory.  A mapped region file that must grow on
 * a full disk cannot be backed, and the first touch of the new page kills
 * the process with SIGBUS (seen in __env_alloc under put()); heap memory has
 * no such failure.  The cost: no other process can join the environment, so
 * db_stat and db_archive cannot look at a live store (qdb.lock forbids a
 * second opener anyway; db_dump of a stopped store still works).  Regions
 * pre-allocated at open (DB_REGION_INIT) would not do: BDB 5.3 grows regions
 * after open (set_memory_max).
 *
 * Disk full.  Every write goes through write(2), so a full file system is an
 * error code (ENOSPC), never a signal.  Removes need room too: BDB logs the
 * value a removal drops, and a checkpoint writes the cache's dirty pages out.
 * So the store keeps room for them, disk_reserve bytes twice over:
 *   - the floor: a put that grows the depot (a new key, or a larger value) is
 *     refused with QDB_E_DISK_FULL, without touching BDB, when the file
 *     system has less free space than disk_reserve plus the cache's dirty
 *     pages (at least 1 MiB).  The free space is read (statvfs, no I/O)
 *     every 256 growing puts, or sooner when they grew the depot by a
 *     quarter of the room above the floor;
 *   - the reserve file: "disk.reserve", disk_reserve bytes of real blocks
 *     (posix_fallocate) taken at open, room nobody else can take.  When a
 *     write meets ENOSPC all the same (another process filled the disk), the
 *     file is given back to the file system and the write tried once more --
 *     a remove gets its room, a growing put is refused by the floor.
 * Refusing a put for room enters the "disk full" state (logged once; a
 * checkpoint removes the log files recovery no longer needs); puts that do
 * not grow the depot (a tombstone over a live record: a remove) and del()
 * run.  Each refused growing put looks at the free space again, after giving
 * the database's free pages back to the file system when removes ran since
 * (DB->compact with DB_FREE_SPACE truncates the file; O(database), so only
 * then).  Once there is room above the floor (the floor counts the reserve
 * file twice while it is given back, so that it can be taken again), puts
 * are accepted: recovery is as quick as the next put after space was
 * freed.
 *
 * Depot size.  depot_bytes counts the keys and stored values (compressed
 * when they are) of the records: it is what the owner asked to keep, not the
 * files' size (BDB adds page overhead, and the log holds recent values
 * again; the database file does not shrink).  With max_depot_bytes set, a
 * put that would take it past the limit is refused with QDB_E_DEPOT_FULL
 * (shrinking puts and del() run); crossing warn_percent of the limit upwards
 * logs one warning, and going back below it one message.  Open walks every
 * record once to count it (sizes only, no data read).
 *
 * Failure.  When BDB reports a panic (DB_RUNRECOVERY, or its panic event),
 * the environment is unusable until recovery, which needs a new open: the
 * store logs it once, every call fails from then on, and usage() says
 * "failed" (node/env.h), so that the node leaves its ring.
 */
#ifndef QDB_STORAGE_BDB_H
#define QDB_STORAGE_BDB_H

#include <stddef.h>
#include <stdint.h>

#include "node/env.h"

typedef struct qdb_bdb_options {
    /* 1: every put/del is flushed to disk before it returns (DB_TXN_SYNC);
     * 0: written to the OS before it returns (DB_TXN_WRITE_NOSYNC): survives
     * kill -9 of the process, not a machine crash.  See above. */
    int sync;
    /* Values of at least this many bytes are offered to zstd; the
     * compressed form is kept only if it is at most 7/8 of the original
     * (codec header included).  SIZE_MAX turns compression off. */
    size_t compress_threshold;
    /* zstd level, ZSTD_minCLevel() .. ZSTD_maxCLevel(); 0 is zstd's default. */
    int compress_level;
    /* BDB cache (memory pool) size in bytes; BDB adds some overhead of its
     * own for small caches.  0 lets BDB choose (256 KiB). */
    size_t cache_bytes;
    /* Puts that would take the depot past this many bytes get
     * QDB_E_DEPOT_FULL; 0: no limit. */
    uint64_t max_depot_bytes;
    /* A warning is logged when the depot crosses this share of
     * max_depot_bytes (1..100); 0: no warning. */
    unsigned warn_percent;
    /* Bytes kept allocated in the root's disk.reserve and given back when the
     * disk fills, see above; 0: no reserve. */
    uint64_t disk_reserve;
} qdb_bdb_options;

/* sync 0, and node/defaults.h's QDB_DEFAULT_BDB_*: compress_threshold 512,
 * compress_level 3, cache_bytes 16 MiB, no depot limit, warn_percent 90,
 * no disk reserve (qdbd keeps QDBD_DEFAULT_DISK_RESERVE, 64 MiB). */
qdb_bdb_options qdb_bdb_options_defaults(void);

/* Opens (creating if needed) the store under `root`.  The root directory is
 * created with mode 0700 if missing (parents too); files in it are created
 * with mode 0600.  Recovery runs first, then the number of records is
 * established by one walk over the keys (O(n) at open; count() is then exact
 * and O(1)).  opt == NULL means the defaults.
 *
 * Returns the store, or NULL with a message in err (QDB_ERRMSG_SIZE bytes)
 * when the root is not a directory, cannot be created, is not writable, is in
 * use by another open store, when an option is out of range, or when BDB
 * fails (its message quoted).
 *
 * The returned seam has version QDB_SEAM_VERSION; `data` is the caller's,
 * NULL on return.  Release it with s->destroy(s), which checkpoints and
 * closes the database and the environment.
 *
 * Methods, beyond the contract in env.h:
 *   get()     the original bytes, decompressed, in a buffer from g_malloc
 *             (never NULL, even for an empty value).  A stored value whose
 *             framing is corrupt gives QDB_E_STORAGE and a message.
 *   put/del() one transaction each, durable as the sync mode says when they
 *             return QDB_OK.  On QDB_E_STORAGE nothing was written.
 *   iterate() reads the range in batches, without a transaction and with no
 *             cursor open while fn runs, so fn sees committed data and a
 *             misbehaving fn that writes cannot deadlock the store (records
 *             it adds ahead of the walk may or may not be visited).  Values
 *             handed to fn are decompressed and valid only during the call.
 *             Returns QDB_OK also when fn stopped the walk.
 *   count()   exact, O(1): a counter kept by put/del.
 *   usage()   depot_bytes, the limits, and the disk-full and failed states.
 * Errors set s->errmsg ("bdb <operation>: <BDB's message>") and return
 * QDB_E_STORAGE; absent keys give QDB_E_ALIAS_NOT_FOUND in get() and del();
 * put() gives QDB_E_DISK_FULL and QDB_E_DEPOT_FULL as said above. */
qdb_storage *qdb_storage_bdb_open(const char *root, const qdb_bdb_options *opt, char *err);

/* Writes a checkpoint (flushes dirty pages and the log, then removes log
 * files that recovery no longer needs).  The daemon calls it periodically;
 * it bounds both recovery time and disk use.  QDB_OK or QDB_E_STORAGE.
 * `s` must come from qdb_storage_bdb_open(). */
int qdb_storage_bdb_checkpoint(qdb_storage *s);

/* Counters since open, over successful put() calls. */
typedef struct qdb_bdb_stats {
    uint64_t puts;            /* successful put() calls */
    uint64_t compressed_puts; /* of which stored zstd-compressed */
    uint64_t bytes_in;        /* sum of the values' original lengths */
    uint64_t bytes_stored;    /* sum of the stored lengths, codec header included */
} qdb_bdb_stats;

void qdb_storage_bdb_stats(qdb_storage *s, qdb_bdb_stats *out);

/* For tests: makes the environment panic, as a failed write of its own would
 * (DB_ENV->set_flags(DB_PANIC_ENVIRONMENT)).  The store is failed from then
 * on, see above. */
void qdb_storage_bdb_panic(qdb_storage *s);

#endif

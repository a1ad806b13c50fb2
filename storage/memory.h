/* SPDX-License-Identifier: BSD-2-Clause */
/* The in-memory backend of the storage seam (qdb_storage, node/env.h): the
 * simulator's default and qdbd's --transient store.
 *
 * A balanced tree of byte-string keys in the seam's order, plus a hash index
 * for point lookups once the store is large (see memory.c).  It cannot fail:
 * get() and del() return QDB_OK or QDB_E_ALIAS_NOT_FOUND, put() and iterate()
 * QDB_OK, and errmsg stays empty.  "Durable" means nothing here: put() is
 * complete when it returns and nothing survives destroy().
 *
 * Beyond env.h: get() hands back a g_malloc'd copy (never NULL, even for an
 * empty value); iterate() passes fn pointers into the store, valid only during
 * the call; count() is O(1).  An empty store costs a few small allocations and
 * no preallocation, because the simulator makes one per virtual node. */
#ifndef QDB_STORAGE_MEMORY_H
#define QDB_STORAGE_MEMORY_H

#include "node/env.h"

/* A new empty store, version QDB_SEAM_VERSION, `data` NULL (the caller's).
 * Release it with s->destroy(s). */
qdb_storage *qdb_storage_memory_new(void);

#endif

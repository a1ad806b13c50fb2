/* SPDX-License-Identifier: BSD-2-Clause */
/* qdb_run_batch: many operations through one handle's client core at once.
 *
 * The core runs any number of operations side by side (core.h); libqdb's
 * single calls submit one and wait.  A batch submits up to BATCH_WINDOW
 * before turning the loop, so the frames for one node are queued together on
 * its connection and leave in the same writes, and the node answers them in
 * turn: one round trip per node for the lot instead of one per operation.
 * Results are copied into the operation's slot as each completes.
 */
#include "config.h"

#include <string.h>

#include "client/session.h"
#include "codec.h"

/* Operations in flight at once: bounds the frames queued per batch call. */
#define BATCH_WINDOW 4096

typedef struct batch {
    struct qdb_session *h;
    qdb_operation_t *ops;
    size_t pending, ok;
} batch;

typedef struct batch_slot {
    batch *b;
    size_t i;
} batch_slot;

/* The wire operation for an API type, or 0. */
static int op_of(qdb_operation_type_t t)
{
    switch (t) {
    case qdb_op_get: return QDB_MSG_GET;
    case qdb_op_put: return QDB_MSG_PUT;
    case qdb_op_update: return QDB_MSG_UPDATE;
    case qdb_op_remove: return QDB_MSG_REMOVE;
    case qdb_op_cas: return QDB_MSG_CAS;
    case qdb_op_get_update: return QDB_MSG_GET_UPDATE;
    case qdb_op_get_remove: return QDB_MSG_GET_REMOVE;
    case qdb_op_remove_if: return QDB_MSG_REMOVE_IF;
    default: return 0;
    }
}

static void batch_done(void *arg, const qdb_client_result *r)
{
    batch_slot *s = arg;
    qdb_operation_t *o = &s->b->ops[s->i];
    o->error = (qdb_error_t)r->status;
    if (r->content != NULL) {
        o->result = session_keep(s->b->h, r->content, r->content_len);
        o->result_size = r->content_len;
    }
    if (r->status == QDB_OK)
        s->b->ok++;
    s->b->pending--;
}

/* Check one operation as the single calls do; QDB_OK and *req, or its error. */
static qdb_error_t batch_request(const qdb_operation_t *o, qdb_client_request *req)
{
    int op = op_of(o->type);
    if (op == 0 || (o->content == NULL && o->content_size > 0) ||
        (o->comparand == NULL && o->comparand_size > 0))
        return QDB_E_INVALID_ARGUMENT;
    qdb_error_t rc = session_check_alias(o->alias);
    if (rc != QDB_OK)
        return rc;
    bool expires = o->type == qdb_op_put || o->type == qdb_op_update;
    if (o->expiry_time != 0 && (!expires || !session_expiry_ok(o->expiry_time)))
        return QDB_E_INVALID_ARGUMENT;
    bool content = expires || o->type == qdb_op_cas || o->type == qdb_op_get_update;
    bool comparand = o->type == qdb_op_cas || o->type == qdb_op_remove_if;
    *req = (qdb_client_request){
        .op = op, .alias = (const uint8_t *)o->alias, .alias_len = strlen(o->alias),
        .content = content ? o->content : NULL, .content_len = content ? o->content_size : 0,
        .comparand = comparand ? o->comparand : NULL,
        .comparand_len = comparand ? o->comparand_size : 0, .expiry = o->expiry_time};
    return QDB_OK;
}

qdb_error_t qdb_init_operations(qdb_operation_t *operations, size_t count)
{
    if (operations == NULL && count > 0)
        return QDB_E_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++) {
        memset(&operations[i], 0, sizeof operations[i]);
        operations[i].type = qdb_op_uninitialized;
    }
    return QDB_OK;
}

size_t qdb_run_batch(qdb_handle_t h, qdb_operation_t *ops, size_t count)
{
    if (h == NULL || ops == NULL)
        return 0;
    for (size_t i = 0; i < count; i++) {
        ops[i].error = h->core == NULL ? QDB_E_NOT_CONNECTED : QDB_E_INTERNAL;
        ops[i].result = NULL;
        ops[i].result_size = 0;
    }
    if (h->core == NULL)
        return 0;
    batch b = {.h = h, .ops = ops};
    uint64_t mark = session_auth_mark(h);
    batch_slot *slots = g_new(batch_slot, count ? count : 1);
    size_t next = 0;
    while (next < count || b.pending > 0) {
        while (next < count && b.pending < BATCH_WINDOW) {
            size_t i = next++;
            qdb_client_request req;
            qdb_error_t rc = batch_request(&ops[i], &req);
            slots[i] = (batch_slot){&b, i};
            if (rc == QDB_OK)
                rc = (qdb_error_t)qdb_client_core_submit_request(h->core, &req, batch_done,
                                                                 &slots[i], NULL);
            if (rc == QDB_OK)
                b.pending++;
            else
                ops[i].error = rc;
        }
        if (b.pending > 0 && !qdb_loop_run_once(h->loop, 1000)) {
            /* the loop was stopped under us: drop what is in flight with
             * the core (its callbacks never fire) */
            session_drop_core(h);
            break;
        }
    }
    g_free(slots);
    for (size_t i = 0; i < count; i++)
        ops[i].error = session_auth_status(h, mark, ops[i].error);
    return b.ok;
}

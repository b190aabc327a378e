/*
 * uac — requests that start at the server (offline delivery, broadcasts,
 * notifications): one client transaction per target, in parallel, and one
 * answer to the caller: the best final status.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/random.h"

struct uac_ctx;

struct uac_branch {
    enum cu_kind kind; /* CU_UAC; first, as in every client transaction's user data */
    struct uac_ctx *ctx;
    struct txn *ct;
    bool done;
};

struct uac_ctx {
    struct sip_worker *sw;
    core_uac_done_fn done;
    void *arg;
    struct uac_branch br[CORE_MAX_TARGETS];
    size_t n, pending, alive;
    uint16_t best;
    bool reported;
};

struct worker *core_worker(const struct sip_worker *sw)
{
    return sw->w;
}

static void report(struct uac_ctx *c)
{
    if (c->reported)
        return;
    c->reported = true;
    c->done(c->sw, c->best ? c->best : 408, c->arg);
}

static void branch_done(struct uac_branch *b, uint16_t status)
{
    struct uac_ctx *c = b->ctx;
    if (b->done)
        return;
    b->done = true;
    c->pending--;
    if (status >= 200 && status < 300) {
        c->best = status;
        report(c);
        return;
    }
    if (!c->best || (c->best >= 300 && status < c->best))
        c->best = status;
    if (c->pending == 0)
        report(c);
}

bool uac__response(struct sip_worker *sw, struct txn *ct, const struct sip_msg *m)
{
    (void)sw;
    struct uac_branch *b = txn_user_data(ct);
    if (!b || b->kind != CU_UAC)
        return false;
    if (m->status >= 200)
        branch_done(b, m->status);
    return true;
}

bool uac__timeout(struct sip_worker *sw, struct txn *ct, bool transport_error)
{
    (void)sw;
    struct uac_branch *b = txn_user_data(ct);
    if (!b || b->kind != CU_UAC)
        return false;
    branch_done(b, transport_error ? 503 : 408);
    return true;
}

bool uac__terminated(struct sip_worker *sw, struct txn *ct)
{
    (void)sw;
    struct uac_branch *b = txn_user_data(ct);
    if (!b || b->kind != CU_UAC)
        return false;
    struct uac_ctx *c = b->ctx;
    branch_done(b, 408);
    b->ct = NULL;
    txn_unref(ct);
    if (--c->alive == 0)
        free(c);
    return true;
}

/* A Call-ID that hashes to this worker, so that its responses come back here. */
static void local_call_id(struct sip_worker *sw, char *out, size_t cap)
{
    struct sip_server *s = sw->srv;
    for (int i = 0; i < 1000; i++) {
        char tok[17];
        random_token(tok, 16);
        snprintf(out, cap, "%s@rtcd", tok);
        if (s->nworkers <= 1 ||
            map_siphash(s->hash_key, out, strlen(out), false) % s->nworkers ==
                worker_index(sw->w))
            return;
    }
}

int core_uac_send(struct sip_worker *sw, const struct core_target *targets, size_t n,
                  const struct core_uac_msg *msg, core_uac_done_fn done, void *arg)
{
    if (n == 0)
        return -ENOENT;
    if (n > CORE_MAX_TARGETS)
        n = CORE_MAX_TARGETS;
    struct uac_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->sw = sw;
    c->done = done;
    c->arg = arg;
    char call_id[256], tag[64], from[600];
    if (msg->call_id.len) {
        if (str_copy(call_id, sizeof call_id, msg->call_id) < 0) {
            free(c);
            return -EINVAL;
        }
    } else {
        local_call_id(sw, call_id, sizeof call_id);
    }
    if (msg->from_tag.len) {
        if (str_copy(tag, sizeof tag, msg->from_tag) < 0) {
            free(c);
            return -EINVAL;
        }
    } else {
        random_token(tag, 16);
    }
    snprintf(from, sizeof from, "%.*s;tag=%s", STR_FMT(msg->from), tag);
    struct buf out;
    buf_init(&out, (size_t)sw->srv->lim.max_message_size);
    uint64_t now = core__now(sw);
    for (size_t i = 0; i < n; i++) {
        struct net_dest d;
        if (proxy__target_dest(sw, &targets[i], &d) < 0)
            continue;
        char branch[64], via[160];
        snprintf(branch, sizeof branch, "z9hG4bKu%s%llx%s", sw->branch_salt,
                 (unsigned long long)++sw->branch_seq, sw->steer_tag);
        if (proxy__via_value(sw, &d, branch, via, sizeof via) < 0)
            continue;
        struct sip_hdr_add extra[8];
        size_t ne = 0;
        if (targets[i].path[0])
            extra[ne++] = (struct sip_hdr_add){ STR("Route"), str_cstr(targets[i].path) };
        for (size_t k = 0; k < msg->nextra && ne < 8; k++)
            extra[ne++] = msg->extra[k];
        struct sip_req_parts p = {
            .method = msg->method,
            .ruri = str_cstr(targets[i].uri),
            .via = str_cstr(via),
            .from = str_cstr(from),
            .to = msg->to,
            .call_id = str_cstr(call_id),
            .cseq = msg->cseq ? msg->cseq : 1,
            .max_forwards = 70,
            .extra = extra,
            .nextra = ne,
            .content_type = msg->content_type,
            .body = msg->body,
        };
        buf_reset(&out);
        if (sip_msg_build_request(&p, &out) < 0)
            continue;
        struct uac_branch *b = &c->br[c->n];
        b->kind = CU_UAC;
        b->ctx = c;
        struct txn *ct;
        if (txn_client_new(sw->tt, &ct, &d, msg->method, str_cstr(branch),
                           (const char *)out.data, out.len, b, now) < 0)
            continue;
        txn_ref(ct);
        b->ct = ct;
        c->n++;
        c->pending++;
        c->alive++;
    }
    buf_free(&out);
    if (c->n == 0) {
        free(c);
        return -EHOSTUNREACH;
    }
    core__rearm(sw);
    return 0;
}

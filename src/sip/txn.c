/*
 * sip/txn — client and server transactions, RFC 3261 §17 and RFC 6026.
 *
 * One table per worker: a map from the matching key to the transaction, and
 * timer queues (base/tq.h) holding each transaction's two timers, its
 * retransmission timer and its end timer — FIFO lists per duration, so that
 * starting, stopping and firing are O(1) however many transactions are live.
 * Timer names in comments are those of RFC 3261.
 *
 * End timers that only let a finished transaction linger (absorbing
 * retransmissions: Timers D, H, I, J, K, L, M) go to a second queue whose
 * expiries the table reports rounded up to a LINGER_MS grid: their precise
 * moment has no effect on the wire, and at 500 transactions a second firing
 * each one alone would wake the worker a thousand times a second for nothing
 * but freeing. Timeouts (B, F, C) and retransmissions keep their exact times.
 */
#include "sip/txn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "base/tq.h"

#define KEY_MAX 1024
#define MAX_ACK 4096
#define LINGER_MS 100 /* grid of the lingering end timers' wake-ups */

/*
 * A server transaction's request as received: parsed, with where it came from,
 * in one block (the header table, then the bytes, follow). It goes as soon as
 * only the table holds a finished non-INVITE transaction (see txn_unref): a
 * lingering transaction keeps its key and last response, not the request.
 */
struct txn_rq {
    struct sip_msg msg;
    struct net_rx src;
    struct sip_hdr hdrs[]; /* msg's, then the request's bytes */
};

struct txn {
    int refs;
    struct txn_table *tt; /* NULL once terminated */
    bool server, reliable, in_map;
    enum sip_method method;
    enum txn_state state;
    uint16_t status;
    struct buf key;
    struct net_dest dest; /* client: the target; server: where responses go */
    struct txn_rq *rq;    /* server: the request received (NULL once given back) */
    struct buf req;       /* client: the request sent */
    struct buf last;      /* server: the last response sent; client: the ACK sent */
    bool shrink;          /* give rq back when only the table holds t */
    uint64_t t_retx, t_end; /* absolute ms, 0 = not set */
    uint32_t interval;
    struct tq_node n_retx, n_end; /* t_retx and t_end in the table's queues */
    void *user;
};

struct txn_table {
    struct txn_timers tm;
    struct txn_user tu;
    struct sip_limits lim;
    size_t max_txns;
    struct map *map;
    struct tq timers; /* retransmissions and timeouts, at their exact times */
    struct tq linger; /* end timers of finished transactions, woken on the LINGER_MS grid */
    struct txn_stats st;
};

/* ---- timers ---- */

enum { TIMER_RETX, TIMER_END, TIMER_LINGER }; /* tq_node tags (n_end: which queue) */
#define OWNER(node, field) ((struct txn *)((char *)(node) - offsetof(struct txn, field)))

static void timer_sync(struct tq *q, struct tq_node *n, uint64_t at, uint64_t now)
{
    if (!at)
        tq_del(q, n);
    else if (!tq_queued(n) || n->at != at)
        tq_add(q, n, now, at);
}

static struct tq *end_queue(struct txn_table *tt, const struct txn *t)
{
    return t->n_end.tag == TIMER_LINGER ? &tt->linger : &tt->timers;
}

/* Whether t's end timer only ends a transaction that has had its final answer. */
static bool end_lingers(const struct txn *t, uint64_t now)
{
    if (t->t_end <= now)
        return false; /* due now (reliable transports): no reason to wait */
    return t->server || (t->state != TXN_CALLING && t->state != TXN_TRYING &&
                         t->state != TXN_PROCEEDING);
}

/* Puts t's timers where t_retx and t_end say, after they changed. */
static void timers_update(struct txn_table *tt, struct txn *t, uint64_t now)
{
    timer_sync(&tt->timers, &t->n_retx, t->t_retx, now);
    uint8_t tag = t->t_end && end_lingers(t, now) ? TIMER_LINGER : TIMER_END;
    if (tag != t->n_end.tag) {
        tq_del(end_queue(tt, t), &t->n_end);
        t->n_end.tag = tag;
    }
    timer_sync(end_queue(tt, t), &t->n_end, t->t_end, now);
}

static void timers_stop(struct txn_table *tt, struct txn *t)
{
    tq_del(&tt->timers, &t->n_retx);
    tq_del(end_queue(tt, t), &t->n_end);
}

/* ---- keys ---- */

static bool has_cookie(str branch)
{
    return str_has_prefix(branch, STR("z9hG4bK")) && branch.len > 7;
}

/* The method a request matches under: ACK matches its INVITE. */
static str match_method(const struct sip_msg *m)
{
    if (m->method == SIP_M_ACK)
        return STR("INVITE");
    return m->method == SIP_M_OTHER ? m->method_name : sip_method_name(m->method);
}

static int key_lower(struct buf *k, str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (buf_append_byte(k, str_lower((unsigned char)s.s[i])) < 0)
            return -ENOBUFS;
    return 0;
}

/* RFC 3261 §17.2.3: branch + sent-by + method; RFC 2543 peers: the older rule. */
static int server_key(const struct sip_msg *m, str method, struct buf *k)
{
    buf_reset(k);
    const struct sip_via *v = &m->via;
    int rc;
    if (has_cookie(v->branch)) {
        /* appends rather than buf_printf: this runs for every message */
        rc = buf_append(k, "S|", 2);
        rc = rc ? rc : buf_append_str(k, v->branch);
        rc = rc ? rc : buf_append_byte(k, '|');
        rc = rc ? rc : key_lower(k, v->host);
        rc = rc ? rc : buf_append_byte(k, ':');
        rc = rc ? rc : buf_append_u64(k, v->has_port ? v->port : 0);
        rc = rc ? rc : buf_append_byte(k, '|');
        rc = rc ? rc : buf_append_str(k, method);
    } else {
        str tag = m->from.tag;
        rc = buf_printf(k, "O|%.*s|%u|%.*s|%.*s|%.*s", STR_FMT(m->call_id), m->cseq.num,
                        STR_FMT(tag), STR_FMT(v->raw), STR_FMT(method));
    }
    return rc;
}

static int client_key(str branch, str method, struct buf *k)
{
    buf_reset(k);
    int rc = buf_append(k, "C|", 2);
    rc = rc ? rc : buf_append_str(k, branch);
    rc = rc ? rc : buf_append_byte(k, '|');
    return rc ? rc : buf_append_str(k, method);
}

/* ---- lifetime ---- */

void txn_ref(struct txn *t)
{
    t->refs++;
}

void txn_unref(struct txn *t)
{
    if (--t->refs > 0) {
        if (t->refs == 1 && t->shrink && t->tt) {
            /* the user's last pointer is gone (the transaction layer holds one across
             * its own callbacks): the request copy is no longer needed */
            t->shrink = false;
            free(t->rq);
            t->rq = NULL;
        }
        return;
    }
    buf_free(&t->key);
    buf_free(&t->req);
    buf_free(&t->last);
    free(t->rq);
    free(t);
}

static void terminate(struct txn *t)
{
    struct txn_table *tt = t->tt;
    if (!tt)
        return;
    t->state = TXN_TERMINATED;
    timers_stop(tt, t);
    if (t->in_map) {
        map_del_str(tt->map, buf_str(&t->key));
        t->in_map = false;
    }
    tt->st.live--;
    t->tt = NULL;
    if (tt->tu.terminated)
        tt->tu.terminated(tt->tu.ctx, t);
    txn_unref(t);
}

static struct txn *txn_alloc(struct txn_table *tt, bool server)
{
    struct txn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->refs = 1; /* the table's */
    t->tt = tt;
    t->server = server;
    tq_node_init(&t->n_retx, TIMER_RETX);
    tq_node_init(&t->n_end, TIMER_END);
    buf_init(&t->key, KEY_MAX);
    buf_init(&t->req, 0);
    buf_init(&t->last, 0);
    return t;
}

static int send_bytes(struct txn_table *tt, const struct net_dest *d, str data)
{
    return tt->tu.send(tt->tu.ctx, d, data.s, data.len);
}

/* ---- server side ---- */

/* RFC 3261 §18.2.2 and RFC 3581: where responses to a request go. */
static void response_dest(const struct sip_msg *m, const struct net_rx *rx, struct net_dest *d)
{
    memset(d, 0, sizeof *d);
    d->transport = rx->transport;
    d->addr = rx->src;
    d->addrlen = rx->srclen;
    d->flow_id = rx->flow_id;
    if (rx->transport == TRANSPORT_UDP && !m->via.rport) {
        uint16_t port = m->via.has_port ? m->via.port : 5060;
        if (d->addr.ss_family == AF_INET)
            ((struct sockaddr_in *)&d->addr)->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&d->addr)->sin6_port = htons(port);
    }
}

static int server_new(struct txn_table *tt, const struct sip_msg *m, const struct net_rx *rx,
                      struct buf *key)
{
    if (map_count(tt->map) >= tt->max_txns)
        return -ENOSPC;
    struct txn *t = txn_alloc(tt, true);
    if (!t)
        return -ENOMEM;
    int rc = -ENOMEM;
    size_t nh = m->nhdrs ? m->nhdrs : 1;
    t->rq = malloc(sizeof *t->rq + nh * sizeof(struct sip_hdr) + m->len);
    if (!t->rq || buf_append_str(&t->key, buf_str(key)) < 0)
        goto fail;
    struct txn_rq *rq = t->rq;
    char *bytes = (char *)(rq->hdrs + nh);
    memcpy(bytes, rx->data, m->len);
    sip_msg_init(&rq->msg, rq->hdrs, nh);
    struct sip_limits lim = tt->lim;
    if (lim.max_headers > nh)
        lim.max_headers = nh;
    if (sip_msg_parse(&rq->msg, bytes, m->len, &lim,
                      rx->transport == TRANSPORT_UDP ? SIP_PARSE_DATAGRAM : SIP_PARSE_STREAM) <= 0) {
        rc = -EPROTO; /* cannot happen: the same bytes parsed once already */
        goto fail;
    }
    t->method = m->method;
    rq->src = *rx;
    rq->src.data = bytes;
    rq->src.len = m->len;
    t->reliable = rx->transport != TRANSPORT_UDP;
    response_dest(m, rx, &t->dest);
    t->state = m->method == SIP_M_INVITE ? TXN_PROCEEDING : TXN_TRYING;
    if (map_set_str(tt->map, buf_str(&t->key), t, NULL) < 0)
        goto fail;
    t->in_map = true;
    tt->st.server_created++;
    tt->st.live++;
    txn_ref(t);
    tt->tu.request(tt->tu.ctx, t, &rq->msg, &rq->src);
    txn_unref(t);
    return 0;
fail:
    t->tt = NULL;
    txn_unref(t);
    return rc;
}

static void server_retransmission(struct txn_table *tt, struct txn *t, const struct sip_msg *m,
                                  const struct net_rx *rx, uint64_t now)
{
    if (m->method == SIP_M_ACK) {
        if (t->method != SIP_M_INVITE)
            return;
        if (t->state == TXN_COMPLETED) {
            /* Timer G stops; Timer I absorbs further ACKs (0 on reliable transports). */
            t->state = TXN_CONFIRMED;
            t->t_retx = 0;
            if (t->reliable) {
                terminate(t);
                return;
            }
            t->t_end = now + tt->tm.t4;
            timers_update(tt, t, now);
        } else if (t->state == TXN_ACCEPTED && tt->tu.ack) {
            /* an ACK for the 2xx that reused the INVITE's branch: end to end */
            tt->tu.ack(tt->tu.ctx, m, rx);
        } else {
            tt->st.retransmissions_absorbed++;
        }
        return;
    }
    tt->st.retransmissions_absorbed++;
    /* RFC 6026: in Accepted, retransmitted INVITEs are absorbed without an answer. */
    if (t->last.len && t->state != TXN_ACCEPTED) {
        send_bytes(tt, &t->dest, buf_str(&t->last));
        tt->st.retransmissions_sent++;
    }
}

int txn_respond(struct txn *t, uint16_t status, const char *data, size_t len, uint64_t now)
{
    struct txn_table *tt = t->tt;
    if (!tt || !t->server)
        return -EALREADY;
    bool invite = t->method == SIP_M_INVITE;
    switch (t->state) {
    case TXN_TRYING:
    case TXN_PROCEEDING:
        break;
    case TXN_ACCEPTED:
        if (status >= 200 && status < 300)
            break; /* the user retransmits its 2xx (RFC 6026) */
        return -EALREADY;
    default:
        return -EALREADY;
    }
    buf_reset(&t->last);
    if (buf_append(&t->last, data, len) < 0)
        return -ENOMEM;
    t->status = status;
    int rc = send_bytes(tt, &t->dest, str_make(data, len));
    if (status < 200) {
        t->state = TXN_PROCEEDING;
        return rc;
    }
    if (invite && status < 300) {
        if (t->state != TXN_ACCEPTED) {
            t->state = TXN_ACCEPTED; /* Timer L */
            t->t_end = now + 64 * (uint64_t)tt->tm.t1;
            timers_update(tt, t, now);
        }
        return rc;
    }
    t->state = TXN_COMPLETED;
    if (invite) {
        if (!t->reliable) { /* Timer G */
            t->interval = tt->tm.t1;
            t->t_retx = now + t->interval;
        }
        t->t_end = now + 64 * (uint64_t)tt->tm.t1; /* Timer H */
    } else if (t->reliable) {
        terminate(t); /* Timer J = 0 */
        return rc;
    } else {
        t->t_end = now + 64 * (uint64_t)tt->tm.t1; /* Timer J */
        /* only the key and the last response matter now: the request goes back once
         * nobody is looking at it any more (see txn_unref) */
        t->shrink = true;
    }
    timers_update(tt, t, now);
    return rc;
}

int txn_respond_once(struct txn *t, uint16_t status, const char *data, size_t len)
{
    struct txn_table *tt = t->tt;
    if (!tt || !t->server || t->state == TXN_COMPLETED || t->state == TXN_CONFIRMED ||
        t->state == TXN_ACCEPTED)
        return -EALREADY;
    t->status = status;
    int rc = send_bytes(tt, &t->dest, str_make(data, len));
    terminate(t);
    return rc;
}

/* ---- client side ---- */

int txn_client_new(struct txn_table *tt, struct txn **out, const struct net_dest *d,
                   enum sip_method method, str branch, const char *data, size_t len, void *user,
                   uint64_t now)
{
    if (method == SIP_M_ACK)
        return -EINVAL;
    struct txn *t = txn_alloc(tt, false);
    if (!t)
        return -ENOMEM;
    int rc = client_key(branch, sip_method_name(method), &t->key);
    if (rc == 0 && map_get_str(tt->map, buf_str(&t->key)))
        rc = -EEXIST;
    if (rc == 0)
        rc = buf_append(&t->req, data, len);
    if (rc < 0)
        goto fail;
    t->method = method;
    t->dest = *d;
    t->reliable = d->transport != TRANSPORT_UDP;
    t->user = user;
    t->state = method == SIP_M_INVITE ? TXN_CALLING : TXN_TRYING;
    rc = send_bytes(tt, d, str_make(data, len));
    if (rc < 0)
        goto fail;
    if (map_set_str(tt->map, buf_str(&t->key), t, NULL) < 0) {
        rc = -ENOMEM;
        goto fail;
    }
    t->in_map = true;
    if (!t->reliable) { /* Timer A / E */
        t->interval = tt->tm.t1;
        t->t_retx = now + t->interval;
    }
    t->t_end = now + 64 * (uint64_t)tt->tm.t1; /* Timer B / F */
    timers_update(tt, t, now);
    tt->st.client_created++;
    tt->st.live++;
    *out = t;
    return 0;
fail:
    t->tt = NULL;
    txn_unref(t);
    return rc;
}

/* RFC 3261 §17.1.1.3: the ACK for a non-2xx final response, built from the request. */
static void send_ack(struct txn_table *tt, struct txn *t, const struct sip_msg *resp)
{
    struct sip_hdr hdrs[128];
    struct sip_msg req;
    sip_msg_init(&req, hdrs, 128);
    struct sip_limits lim = tt->lim;
    if (lim.max_headers > 128)
        lim.max_headers = 128;
    if (sip_msg_parse(&req, (const char *)t->req.data, t->req.len, &lim, SIP_PARSE_STREAM) <= 0)
        return;
    const struct sip_hdr *from = sip_msg_hdr(&req, SIP_H_FROM);
    const struct sip_hdr *to = sip_msg_hdr(resp, SIP_H_TO);
    if (!from || !to)
        return;
    struct sip_hdr_add routes[16];
    size_t nr = 0;
    for (const struct sip_hdr *h = sip_msg_hdr(&req, SIP_H_ROUTE); h && nr < 16;
         h = sip_msg_hdr_next(&req, h))
        routes[nr++] = (struct sip_hdr_add){ STR("Route"), h->value };
    struct sip_req_parts p = {
        .method = SIP_M_ACK,
        .ruri = req.ruri_raw,
        .via = req.via.raw,
        .from = from->value,
        .to = to->value,
        .call_id = req.call_id,
        .cseq = req.cseq.num,
        .max_forwards = 70,
        .extra = routes,
        .nextra = nr,
    };
    buf_reset(&t->last);
    t->last.max = MAX_ACK;
    if (sip_msg_build_request(&p, &t->last) == 0)
        send_bytes(tt, &t->dest, buf_str(&t->last));
}

static void client_response(struct txn_table *tt, struct txn *t, const struct sip_msg *m,
                            const struct net_rx *rx, uint64_t now)
{
    uint16_t st = m->status;
    bool invite = t->method == SIP_M_INVITE;
    bool pass = false;
    switch (t->state) {
    case TXN_CALLING:
    case TXN_TRYING:
    case TXN_PROCEEDING:
        pass = true;
        t->status = st;
        if (st < 200) {
            t->state = TXN_PROCEEDING;
            if (invite) {
                t->t_retx = 0;
                t->t_end = tt->tm.timer_c ? now + tt->tm.timer_c : 0; /* Timer C */
            } else if (t->t_retx) {
                t->interval = tt->tm.t2; /* Timer E continues at T2 */
            }
        } else if (invite && st < 300) {
            t->state = TXN_ACCEPTED; /* Timer M */
            t->t_retx = 0;
            t->t_end = now + 64 * (uint64_t)tt->tm.t1;
        } else {
            t->state = TXN_COMPLETED;
            t->t_retx = 0;
            if (invite) {
                send_ack(tt, t, m);
                t->t_end = t->reliable ? now : now + 32000; /* Timer D */
            } else {
                t->t_end = t->reliable ? now : now + tt->tm.t4; /* Timer K */
            }
        }
        timers_update(tt, t, now);
        break;
    case TXN_ACCEPTED:
        pass = st >= 200 && st < 300; /* 2xx retransmissions go to the user */
        break;
    case TXN_COMPLETED:
        if (invite && st >= 300 && t->last.len)
            send_bytes(tt, &t->dest, buf_str(&t->last)); /* ACK again */
        tt->st.retransmissions_absorbed++;
        break;
    default:
        break;
    }
    if (pass && tt->tu.response) {
        txn_ref(t);
        tt->tu.response(tt->tu.ctx, t, m, rx);
        bool done = t->tt && t->t_end && t->t_end <= now && t->state != TXN_PROCEEDING;
        if (done)
            terminate(t);
        txn_unref(t);
    }
}

/* ---- the table ---- */

int txn_table_new(struct txn_table **out, const struct txn_timers *timers,
                  const struct txn_user *tu, const struct sip_limits *lim, size_t max_txns)
{
    struct txn_table *tt = calloc(1, sizeof *tt);
    if (!tt)
        return -ENOMEM;
    tq_init(&tt->timers);
    tq_init(&tt->linger);
    if (map_new(&tt->map, MAP_KEY_STR, 1024) < 0) {
        free(tt);
        return -ENOMEM;
    }
    tt->tm = *timers;
    tt->tu = *tu;
    tt->lim = *lim;
    tt->max_txns = max_txns ? max_txns : SIZE_MAX;
    *out = tt;
    return 0;
}

void txn_table_free(struct txn_table *tt)
{
    if (!tt)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(tt->map, &it, &e)) {
        struct txn *t = e.val;
        map_del_current(tt->map, &it);
        t->in_map = false;
        terminate(t);
    }
    map_free(tt->map);
    free(tt);
}

int txn_table_recv(struct txn_table *tt, const struct sip_msg *m, const struct net_rx *rx,
                   uint64_t now)
{
    char kb[KEY_MAX];
    struct buf key = { (uint8_t *)kb, 0, sizeof kb, sizeof kb };
    if (m->is_request) {
        if (server_key(m, match_method(m), &key) < 0)
            return -ENOBUFS;
        struct txn *t = map_get_str(tt->map, buf_str(&key));
        if (t && t->server) {
            server_retransmission(tt, t, m, rx, now);
            return 0;
        }
        if (m->method == SIP_M_ACK) {
            if (tt->tu.ack)
                tt->tu.ack(tt->tu.ctx, m, rx);
            return 0;
        }
        return server_new(tt, m, rx, &key);
    }
    str method = m->cseq.method == SIP_M_OTHER ? m->cseq.method_name
                                                : sip_method_name(m->cseq.method);
    if (client_key(m->via.branch, method, &key) < 0)
        return -ENOBUFS;
    struct txn *t = map_get_str(tt->map, buf_str(&key));
    if (t && !t->server)
        client_response(tt, t, m, rx, now);
    else if (tt->tu.stray_response)
        tt->tu.stray_response(tt->tu.ctx, m, rx);
    return 0;
}

static void fire(struct txn_table *tt, struct txn *t, uint64_t now)
{
    if (t->t_end && t->t_end <= now) {
        bool waiting = !t->server && (t->state == TXN_CALLING || t->state == TXN_TRYING ||
                                      t->state == TXN_PROCEEDING);
        if (waiting && tt->tu.timeout) {
            /* Timer B, F or C: the user answers 408 upstream (and CANCELs for C). */
            tt->st.timeouts++;
            txn_ref(t);
            tt->tu.timeout(tt->tu.ctx, t, false);
            terminate(t);
            txn_unref(t);
        } else {
            terminate(t);
        }
        return;
    }
    /* a retransmission timer: A, E (client request) or G (server final response) */
    str bytes = t->server ? buf_str(&t->last) : buf_str(&t->req);
    int rc = send_bytes(tt, &t->dest, bytes);
    tt->st.retransmissions_sent++;
    if (rc < 0 && t->reliable && !t->server && tt->tu.timeout) {
        txn_ref(t);
        tt->tu.timeout(tt->tu.ctx, t, true);
        terminate(t);
        txn_unref(t);
        return;
    }
    uint32_t next = t->interval * 2;
    if (t->method != SIP_M_INVITE || t->server) {
        if (next > tt->tm.t2)
            next = tt->tm.t2;
        if (!t->server && t->state == TXN_PROCEEDING)
            next = tt->tm.t2;
    }
    t->interval = next;
    t->t_retx = now + next;
    timers_update(tt, t, now);
}

void txn_table_tick(struct txn_table *tt, uint64_t now)
{
    struct tq_node *n;
    while ((n = tq_pop(&tt->timers, now)))
        fire(tt, n->tag == TIMER_RETX ? OWNER(n, n_retx) : OWNER(n, n_end), now);
    while ((n = tq_pop(&tt->linger, now)))
        fire(tt, OWNER(n, n_end), now);
}

uint64_t txn_table_next(const struct txn_table *tt)
{
    uint64_t next = tq_next(&tt->timers);
    uint64_t linger = tq_next(&tt->linger);
    if (linger != UINT64_MAX && linger % LINGER_MS)
        linger += LINGER_MS - linger % LINGER_MS;
    return linger < next ? linger : next;
}

void txn_table_stats(const struct txn_table *tt, struct txn_stats *out)
{
    *out = tt->st;
}

int txn_table_send(struct txn_table *tt, const struct net_dest *d, const char *data, size_t len)
{
    return tt->tu.send(tt->tu.ctx, d, data, len);
}

struct txn *txn_find_cancelled(struct txn_table *tt, const struct sip_msg *cancel)
{
    char kb[KEY_MAX];
    struct buf key = { (uint8_t *)kb, 0, sizeof kb, sizeof kb };
    if (server_key(cancel, STR("INVITE"), &key) < 0)
        return NULL;
    struct txn *t = map_get_str(tt->map, buf_str(&key));
    return t && t->server && t->method == SIP_M_INVITE ? t : NULL;
}

/* ---- accessors ---- */

enum txn_state txn_state(const struct txn *t)
{
    return t->state;
}

bool txn_is_server(const struct txn *t)
{
    return t->server;
}

enum sip_method txn_method(const struct txn *t)
{
    return t->method;
}

const struct sip_msg *txn_request(const struct txn *t)
{
    return t->rq ? &t->rq->msg : NULL;
}

const struct net_rx *txn_source(const struct txn *t)
{
    return t->rq ? &t->rq->src : NULL;
}

uint16_t txn_status(const struct txn *t)
{
    return t->status;
}

void txn_set_user_data(struct txn *t, void *user)
{
    t->user = user;
}

void *txn_user_data(const struct txn *t)
{
    return t->user;
}

const struct net_dest *txn_dest(const struct txn *t)
{
    return &t->dest;
}

str txn_sent(const struct txn *t)
{
    return buf_str(&t->req);
}

bool txn_is_final(const struct txn *t)
{
    return t->state == TXN_COMPLETED || t->state == TXN_CONFIRMED ||
           t->state == TXN_TERMINATED || (t->server && t->state == TXN_ACCEPTED);
}

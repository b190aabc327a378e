/*
 * svc/channels — the publish/subscribe hub (see channels.h for the model).
 *
 * Locks: the hub's lock guards the name → channel map; each channel's lock
 * guards its subscriber array and sequence; each subscriber's lock guards its
 * queue. Order: channel, then subscriber; the hub lock is never held with
 * another. The owner callbacks run under a channel lock, which is what keeps a
 * subscriber alive while they run (chan_sub_free takes every channel lock).
 */
#include "svc/channels.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"

struct channel {
    pthread_mutex_t lock;
    uint64_t seq;
    struct chan_sub **subs;
    size_t n, cap;
};

struct chan_hub {
    struct chan_limits lim;
    pthread_mutex_t lock;
    struct map *chans; /* name → struct channel * */
};

struct chan_sub {
    struct chan_hub *h;
    const struct chan_sub_ops *ops;
    void *ctx;
    pthread_mutex_t lock;
    struct chan_msg **q; /* ring of max_queue */
    size_t head, len;
    _Atomic bool dropped;
    struct channel **in; /* the channels subscribed to */
    char (*names)[65];
    size_t nin;
};

struct msg_impl {
    struct chan_msg m;
    _Atomic uint32_t refs;
    char buf[];
};

int chan_hub_new(struct chan_hub **out, const struct chan_limits *lim)
{
    struct chan_hub *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    if (lim)
        h->lim = *lim;
    if (!h->lim.max_queue)
        h->lim.max_queue = 256;
    if (!h->lim.max_subs)
        h->lim.max_subs = 64;
    if (!h->lim.max_channel_subs)
        h->lim.max_channel_subs = 100000;
    if (!h->lim.max_payload)
        h->lim.max_payload = 65536;
    if (map_new(&h->chans, MAP_KEY_STR, 16) < 0) {
        free(h);
        return -ENOMEM;
    }
    pthread_mutex_init(&h->lock, NULL);
    *out = h;
    return 0;
}

void chan_hub_free(struct chan_hub *h)
{
    if (!h)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(h->chans, &it, &e)) {
        struct channel *c = e.val;
        pthread_mutex_destroy(&c->lock);
        free(c->subs);
        free(c);
    }
    map_free(h->chans);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* The channel named name, created when absent (create) — NULL when absent or no memory. */
static struct channel *channel_get(struct chan_hub *h, str name, bool create)
{
    pthread_mutex_lock(&h->lock);
    struct channel *c = map_get_str(h->chans, name);
    if (!c && create) {
        c = calloc(1, sizeof *c);
        if (c) {
            pthread_mutex_init(&c->lock, NULL);
            if (map_set_str(h->chans, name, c, NULL) < 0) {
                pthread_mutex_destroy(&c->lock);
                free(c);
                c = NULL;
            }
        }
    }
    pthread_mutex_unlock(&h->lock);
    return c;
}

int chan_sub_new(struct chan_sub **out, struct chan_hub *h, const struct chan_sub_ops *ops,
                 void *ctx)
{
    struct chan_sub *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->q = calloc(h->lim.max_queue, sizeof *s->q);
    s->in = calloc(h->lim.max_subs, sizeof *s->in);
    s->names = calloc(h->lim.max_subs, sizeof *s->names);
    if (!s->q || !s->in || !s->names) {
        free(s->q);
        free(s->in);
        free(s->names);
        free(s);
        return -ENOMEM;
    }
    s->h = h;
    s->ops = ops;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

static void channel_remove(struct channel *c, struct chan_sub *s)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        if (c->subs[i] == s) {
            /* keep the others' order irrelevant: publish order is per message, not per slot */
            c->subs[i] = c->subs[--c->n];
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void chan_sub_free(struct chan_sub *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nin; i++)
        channel_remove(s->in[i], s);
    for (size_t i = 0; i < s->len; i++)
        chan_msg_unref(s->q[(s->head + i) % s->h->lim.max_queue]);
    pthread_mutex_destroy(&s->lock);
    free(s->q);
    free(s->in);
    free(s->names);
    free(s);
}

int chan_subscribe(struct chan_sub *s, str channel)
{
    if (atomic_load(&s->dropped))
        return -EPIPE;
    if (channel.len == 0 || channel.len > 64)
        return -EINVAL;
    for (size_t i = 0; i < s->nin; i++)
        if (str_eq(str_cstr(s->names[i]), channel))
            return -EALREADY;
    if (s->nin >= s->h->lim.max_subs)
        return -EMLINK;
    struct channel *c = channel_get(s->h, channel, true);
    if (!c)
        return -ENOMEM;
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->n >= s->h->lim.max_channel_subs) {
        rc = -EUSERS;
    } else if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct chan_sub **v = realloc(c->subs, cap * sizeof *v);
        if (!v)
            rc = -ENOMEM;
        else {
            c->subs = v;
            c->cap = cap;
        }
    }
    if (rc == 0)
        c->subs[c->n++] = s;
    pthread_mutex_unlock(&c->lock);
    if (rc == 0) {
        s->in[s->nin] = c;
        memcpy(s->names[s->nin], channel.s, channel.len);
        s->names[s->nin][channel.len] = 0;
        s->nin++;
    }
    return rc;
}

int chan_unsubscribe(struct chan_sub *s, str channel)
{
    for (size_t i = 0; i < s->nin; i++) {
        if (!str_eq(str_cstr(s->names[i]), channel))
            continue;
        channel_remove(s->in[i], s);
        s->nin--;
        s->in[i] = s->in[s->nin];
        memcpy(s->names[i], s->names[s->nin], sizeof s->names[i]);
        return 0;
    }
    return -ENOENT;
}

struct chan_msg *chan_sub_pop(struct chan_sub *s)
{
    struct chan_msg *m = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->len) {
        m = s->q[s->head];
        s->head = (s->head + 1) % s->h->lim.max_queue;
        s->len--;
    }
    pthread_mutex_unlock(&s->lock);
    return m;
}

size_t chan_sub_queued(struct chan_sub *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->len;
    pthread_mutex_unlock(&s->lock);
    return n;
}

bool chan_sub_dropped(struct chan_sub *s)
{
    return atomic_load(&s->dropped);
}

void chan_msg_unref(struct chan_msg *m)
{
    if (!m)
        return;
    struct msg_impl *mi = (struct msg_impl *)m;
    if (atomic_fetch_sub(&mi->refs, 1) == 1)
        free(mi);
}

static bool from_ok(str from)
{
    if (from.len == 0 || from.len > 200)
        return false;
    for (size_t i = 0; i < from.len; i++) {
        unsigned char c = (unsigned char)from.s[i];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f)
            return false;
    }
    return true;
}

/* Queues m for s (under c's lock). 1 queued, 0 dropped now, -1 already dropped. */
static int enqueue(struct chan_sub *s, struct msg_impl *mi, uint32_t max)
{
    if (atomic_load(&s->dropped))
        return -1;
    bool wake = false, drop = false;
    pthread_mutex_lock(&s->lock);
    if (s->len >= max) {
        drop = true;
    } else {
        atomic_fetch_add(&mi->refs, 1);
        s->q[(s->head + s->len) % max] = &mi->m;
        wake = s->len++ == 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (drop) {
        atomic_store(&s->dropped, true);
        char why[96];
        snprintf(why, sizeof why, "slow consumer: %u messages were waiting", max);
        if (s->ops && s->ops->closed)
            s->ops->closed(s->ctx, why);
        return 0;
    }
    if (wake && s->ops && s->ops->wake)
        s->ops->wake(s->ctx);
    return 1;
}

int chan_publish(struct chan_hub *h, str channel, str from, str payload,
                 struct chan_publish_result *out)
{
    if (payload.len > h->lim.max_payload)
        return -EMSGSIZE;
    if (!from_ok(from) || channel.len == 0 || channel.len > 64 || payload.len == 0)
        return -EINVAL;
    struct channel *c = channel_get(h, channel, true);
    if (!c)
        return -ENOMEM;
    size_t cap = payload.len + channel.len + from.len + 96;
    struct msg_impl *mi = malloc(sizeof *mi + cap);
    if (!mi)
        return -ENOMEM;
    atomic_init(&mi->refs, 1);
    struct chan_publish_result r = {0, 0, 0};
    pthread_mutex_lock(&c->lock);
    r.seq = ++c->seq;
    static const char pre[] = "{\"op\":\"message\",\"channel\":\"";
    int n = snprintf(mi->buf, cap, "%s%.*s\",\"seq\":%llu,\"from\":\"%.*s\",\"data\":", pre,
                     STR_FMT(channel), (unsigned long long)r.seq, STR_FMT(from));
    size_t off = (size_t)n;
    memcpy(mi->buf + off, payload.s, payload.len);
    mi->buf[off + payload.len] = '}';
    mi->buf[off + payload.len + 1] = 0;
    mi->m = (struct chan_msg){r.seq, off + payload.len + 1, mi->buf,
                              str_make(mi->buf + sizeof pre - 1, channel.len),
                              str_make(mi->buf + off, payload.len)};
    for (size_t i = 0; i < c->n; i++) {
        int q = enqueue(c->subs[i], mi, h->lim.max_queue);
        if (q == 1)
            r.delivered++;
        else if (q == 0)
            r.dropped++;
    }
    pthread_mutex_unlock(&c->lock);
    chan_msg_unref(&mi->m);
    if (out)
        *out = r;
    return 0;
}

size_t chan_count(struct chan_hub *h, str channel)
{
    struct channel *c = channel_get(h, channel, false);
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

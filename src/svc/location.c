/*
 * location — the registrar's location table. See location.h and
 * docs/registrar.md.
 *
 * Layout, chosen for memory (the target is 100,000 registered users in
 * half of Kamailio's memory): a fixed number of shards, each a chained hash
 * table of AOR records (key inline); each AOR holds a singly linked list of
 * binding records in registration order, every string of a binding packed
 * into the record's tail with 16-bit lengths, the source address stored in
 * 20 bytes instead of a sockaddr_storage. One allocation per AOR and one per
 * binding, both from the table's own pool (base/pool.h), so that they do not
 * pin the pages of the message path's short-lived memory.
 */
#include "svc/location.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/pool.h"
#include "base/random.h"

#define SHARDS          64 /* a power of two */
#define INITIAL_BUCKETS 64

enum { F_CONTACT, F_KEY, F_CALLID, F_INSTANCE, F_PATH, F_UA, NF };

struct bnd {
    struct bnd *next;
    uint64_t expires_ms;
    uint64_t flow_id;
    uint32_t cseq;
    uint32_t reg_id;
    uint16_t q;
    uint8_t transport;
    uint8_t af; /* 0 = unknown, 4, 6 */
    uint16_t port;
    uint16_t len[NF]; /* len[F_KEY] == 0: the key is the contact text */
    uint8_t addr[16];
    char data[];
};

struct aor {
    struct aor *hnext;
    struct bnd *head;
    uint64_t h;
    uint16_t n;
    uint16_t klen;
    char key[];
};

struct shard {
    pthread_mutex_t lock;
    struct aor **tab;
    size_t mask;
    size_t naor, nbnd;
    uint64_t next_expiry; /* no binding expires before this */
} __attribute__((aligned(64)));

struct loc_table {
    uint8_t seed[16];
    uint32_t max_per_aor;
    size_t max_total;
    atomic_size_t total;
    loc_hook_fn hook;
    void *hook_ctx;
    struct pool *pool; /* AOR and binding records */
    struct shard s[SHARDS];
};

/* ---- binding records ---- */

static str field(const struct bnd *b, int f)
{
    size_t off = 0;
    for (int i = 0; i < f; i++)
        off += b->len[i];
    return str_make(b->data + off, b->len[f]);
}

static str bnd_key(const struct bnd *b)
{
    return b->len[F_KEY] ? field(b, F_KEY) : field(b, F_CONTACT);
}

static str in_key(const struct loc_binding *v)
{
    return v->contact_key.len ? v->contact_key : v->contact;
}

static bool in_outbound(const struct loc_binding *v)
{
    return v->instance.len > 0 && v->reg_id != 0;
}

static bool bnd_outbound(const struct bnd *b)
{
    return b->len[F_INSTANCE] > 0 && b->reg_id != 0;
}

/*
 * A binding's identity within its AOR: (instance, reg-id) for an outbound one
 * (RFC 5626 §6), the contact key for any other (RFC 3261 §10.3). The two are
 * separate name spaces: a plain contact never addresses an outbound binding,
 * even one whose URI is the same text, nor the other way round. So no two
 * bindings of an AOR share an identity and each input addresses at most one
 * binding, which is what loc_update's cap arithmetic counts on.
 */

/* Whether record b is the binding that input v addresses. */
static bool bnd_match(const struct bnd *b, const struct loc_binding *v)
{
    if (in_outbound(v) != bnd_outbound(b))
        return false;
    if (in_outbound(v))
        return b->reg_id == v->reg_id && str_eq(field(b, F_INSTANCE), v->instance);
    return str_eq(bnd_key(b), in_key(v));
}

/* Whether inputs v and w address the same binding. */
static bool in_match(const struct loc_binding *v, const struct loc_binding *w)
{
    if (in_outbound(v) != in_outbound(w))
        return false;
    if (in_outbound(v))
        return v->reg_id == w->reg_id && str_eq(v->instance, w->instance);
    return str_eq(in_key(v), in_key(w));
}

static size_t bnd_size(const struct bnd *b)
{
    size_t n = offsetof(struct bnd, data);
    for (int i = 0; i < NF; i++)
        n += b->len[i];
    return n;
}

static int bnd_new(struct loc_table *t, const struct loc_binding *v, struct bnd **out)
{
    str f[NF] = {v->contact, v->contact_key, v->call_id, v->instance, v->path, v->user_agent};
    if (v->contact.len == 0)
        return -EINVAL;
    if (str_eq(f[F_KEY], f[F_CONTACT]))
        f[F_KEY] = STR_NULL;
    size_t total = 0;
    for (int i = 0; i < NF; i++) {
        if (f[i].len > LOC_FIELD_MAX)
            return -E2BIG;
        total += f[i].len;
    }
    struct bnd *b = pool_alloc(t->pool, offsetof(struct bnd, data) + total);
    if (!b)
        return -ENOMEM;
    memset(b, 0, offsetof(struct bnd, data));
    b->expires_ms = v->expires_ms;
    b->flow_id = v->flow_id;
    b->cseq = v->cseq;
    b->reg_id = v->reg_id;
    b->q = v->q > 1000 ? 1000 : v->q;
    b->transport = v->transport;
    if (v->received.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&v->received;
        b->af = 4;
        b->port = ntohs(in->sin_port);
        memcpy(b->addr, &in->sin_addr, 4);
    } else if (v->received.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&v->received;
        b->af = 6;
        b->port = ntohs(in6->sin6_port);
        memcpy(b->addr, &in6->sin6_addr, 16);
    }
    size_t off = 0;
    for (int i = 0; i < NF; i++) {
        b->len[i] = (uint16_t)f[i].len;
        if (f[i].len)
            memcpy(b->data + off, f[i].s, f[i].len);
        off += f[i].len;
    }
    *out = b;
    return 0;
}

static struct bnd *bnd_clone(const struct bnd *b)
{
    size_t n = bnd_size(b);
    struct bnd *c = malloc(n);
    if (c)
        memcpy(c, b, n);
    return c;
}

/* A table record back to the pool (NULL is fine). */
static void bnd_put(struct loc_table *t, struct bnd *b)
{
    if (b)
        pool_put(t->pool, b, bnd_size(b));
}

static void bnd_free_list(struct loc_table *t, struct bnd *b)
{
    while (b) {
        struct bnd *nx = b->next;
        bnd_put(t, b);
        b = nx;
    }
}

static size_t aor_size(const struct aor *a)
{
    return offsetof(struct aor, key) + a->klen;
}

static void aor_put(struct loc_table *t, struct aor *a)
{
    if (a)
        pool_put(t->pool, a, aor_size(a));
}

/* Bytes of strings a copy of b needs. */
static size_t copy_bytes(const struct bnd *b)
{
    size_t n = 0;
    for (int i = 0; i < NF; i++)
        n += b->len[i];
    return n;
}

/* Fills o from b, its strings written at *sp (advanced), or (sp NULL) slices of b itself. */
static void copy_out(const struct bnd *b, struct loc_binding *o, char **sp)
{
    str f[NF];
    memset(o, 0, sizeof *o);
    for (int i = 0; i < NF; i++) {
        str src = field(b, i);
        if (!sp) {
            f[i] = src;
            continue;
        }
        f[i] = str_make(*sp, src.len);
        if (src.len)
            memcpy(*sp, src.s, src.len);
        *sp += src.len;
    }
    o->contact = f[F_CONTACT];
    o->contact_key = b->len[F_KEY] ? f[F_KEY] : f[F_CONTACT];
    o->call_id = f[F_CALLID];
    o->instance = f[F_INSTANCE];
    o->path = f[F_PATH];
    o->user_agent = f[F_UA];
    o->expires_ms = b->expires_ms;
    o->flow_id = b->flow_id;
    o->cseq = b->cseq;
    o->reg_id = b->reg_id;
    o->q = b->q;
    o->transport = b->transport;
    if (b->af == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)&o->received;
        in->sin_family = AF_INET;
        in->sin_port = htons(b->port);
        memcpy(&in->sin_addr, b->addr, 4);
    } else if (b->af == 6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&o->received;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(b->port);
        memcpy(&in6->sin6_addr, b->addr, 16);
    }
}

/* Copies the live bindings of list into a, sorted by q (stable). */
static int copy_list(const struct bnd *list, uint64_t now_ms, struct arena *a,
                     struct loc_binding **out, size_t *n)
{
    size_t cnt = 0, bytes = 0;
    for (const struct bnd *b = list; b; b = b->next)
        if (b->expires_ms > now_ms) {
            cnt++;
            bytes += copy_bytes(b);
        }
    *out = NULL;
    *n = 0;
    if (cnt == 0)
        return 0;
    struct loc_binding *v = arena_alloc(a, cnt * sizeof *v + bytes);
    if (!v)
        return -ENOMEM;
    char *sp = (char *)(v + cnt);
    size_t i = 0;
    for (const struct bnd *b = list; b; b = b->next)
        if (b->expires_ms > now_ms)
            copy_out(b, &v[i++], &sp);
    /* insertion sort: a handful of bindings, and it is stable */
    for (size_t k = 1; k < cnt; k++) {
        struct loc_binding x = v[k];
        size_t j = k;
        while (j > 0 && v[j - 1].q < x.q) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
    *out = v;
    *n = cnt;
    return 0;
}

/* ---- AORs and shards ---- */

static uint64_t aor_hash(const struct loc_table *t, str key)
{
    return map_siphash(t->seed, key.s, key.len, false);
}

static struct shard *shard_of(struct loc_table *t, uint64_t h)
{
    return &t->s[h & (SHARDS - 1)];
}

static struct aor **aor_slot(struct shard *s, uint64_t h, str key)
{
    struct aor **pp = &s->tab[(h / SHARDS) & s->mask];
    while (*pp && !((*pp)->h == h && str_eq(str_make((*pp)->key, (*pp)->klen), key)))
        pp = &(*pp)->hnext;
    return pp;
}

/* Doubles the bucket array when the AORs outnumber it (best effort: no memory, no growth). */
static void shard_grow(struct shard *s)
{
    if (s->naor <= s->mask + 1)
        return;
    size_t nb = (s->mask + 1) * 2;
    struct aor **tab = calloc(nb, sizeof *tab);
    if (!tab)
        return;
    for (size_t i = 0; i <= s->mask; i++) {
        for (struct aor *a = s->tab[i], *nx; a; a = nx) {
            nx = a->hnext;
            struct aor **pp = &tab[(a->h / SHARDS) & (nb - 1)];
            a->hnext = *pp;
            *pp = a;
        }
    }
    free(s->tab);
    s->tab = tab;
    s->mask = nb - 1;
}

static struct aor *aor_alloc(struct loc_table *t, str key, uint64_t h)
{
    struct aor *a = pool_alloc(t->pool, offsetof(struct aor, key) + key.len);
    if (!a)
        return NULL;
    a->hnext = NULL;
    a->head = NULL;
    a->h = h;
    a->n = 0;
    a->klen = (uint16_t)key.len;
    memcpy(a->key, key.s, key.len);
    return a;
}

static void aor_insert(struct shard *s, struct aor *a)
{
    struct aor **pp = &s->tab[(a->h / SHARDS) & s->mask];
    a->hnext = *pp;
    *pp = a;
    s->naor++;
    shard_grow(s);
}

/* Unlinks the expired bindings of a into *expired (prepended). Returns how many. */
static size_t aor_drop_expired(struct aor *a, uint64_t now_ms, struct bnd **expired)
{
    size_t n = 0;
    for (struct bnd **pp = &a->head; *pp;) {
        struct bnd *b = *pp;
        if (b->expires_ms <= now_ms) {
            *pp = b->next;
            b->next = *expired;
            *expired = b;
            a->n--;
            n++;
        } else {
            pp = &b->next;
        }
    }
    return n;
}

static void note_expiry(struct shard *s, uint64_t exp)
{
    if (exp < s->next_expiry)
        s->next_expiry = exp;
}

struct norm {
    char buf[LOC_AOR_MAX + 1];
    str key;
    uint64_t h;
};

static int normalise(struct loc_table *t, str aor, struct norm *n)
{
    ssize_t len = loc_aor_normalise(aor, n->buf, sizeof n->buf);
    if (len < 0)
        return (int)len;
    n->key = str_make(n->buf, (size_t)len);
    n->h = aor_hash(t, n->key);
    return 0;
}

static void hook_list(struct loc_table *t, str aor, enum loc_event ev, const struct bnd *list,
                      size_t remaining)
{
    if (!t->hook)
        return;
    for (const struct bnd *b = list; b; b = b->next) {
        struct loc_binding o;
        size_t nb = copy_bytes(b);
        char small[512], *buf = nb <= sizeof small ? small : malloc(nb);
        if (!buf)
            continue; /* out of memory: this notification is lost, the change stands */
        char *sp = buf;
        copy_out(b, &o, &sp);
        t->hook(t->hook_ctx, aor, ev, &o, remaining);
        if (buf != small)
            free(buf);
    }
}

/* ---- public ---- */

const char *loc_event_name(enum loc_event ev)
{
    switch (ev) {
    case LOC_ADDED:
        return "added";
    case LOC_UPDATED:
        return "updated";
    case LOC_REMOVED:
        return "removed";
    case LOC_EXPIRED:
        return "expired";
    }
    return "?";
}

ssize_t loc_aor_normalise(str aor, char *out, size_t cap)
{
    if (aor.len == 0)
        return -EINVAL;
    if (aor.len > LOC_AOR_MAX || aor.len + 1 > cap)
        return -E2BIG;
    ssize_t at = -1;
    for (size_t i = aor.len; i-- > 0;)
        if (aor.s[i] == '@') {
            at = (ssize_t)i;
            break;
        }
    if (at == 0 || at == (ssize_t)aor.len - 1)
        return -EINVAL;
    for (size_t i = 0; i < aor.len; i++) {
        unsigned char c = (unsigned char)aor.s[i];
        out[i] = (char)((ssize_t)i > at ? str_lower(c) : c);
    }
    out[aor.len] = '\0';
    return (ssize_t)aor.len;
}

int loc_new(struct loc_table **out, const struct loc_params *p)
{
    struct loc_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = random_bytes(t->seed, sizeof t->seed);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->max_per_aor = p && p->max_per_aor ? p->max_per_aor : 16;
    if (t->max_per_aor > UINT16_MAX)
        t->max_per_aor = UINT16_MAX;
    t->max_total = p && p->max_total ? p->max_total : 4000000;
    if (pool_new(&t->pool, 1024) < 0) {
        free(t);
        return -ENOMEM;
    }
    t->hook = p ? p->hook : NULL;
    t->hook_ctx = p ? p->hook_ctx : NULL;
    atomic_init(&t->total, 0);
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &t->s[i];
        s->tab = calloc(INITIAL_BUCKETS, sizeof *s->tab);
        if (!s->tab) {
            for (int j = 0; j < i; j++) {
                free(t->s[j].tab);
                pthread_mutex_destroy(&t->s[j].lock);
            }
            pool_free(t->pool);
            free(t);
            return -ENOMEM;
        }
        s->mask = INITIAL_BUCKETS - 1;
        s->next_expiry = UINT64_MAX;
        pthread_mutex_init(&s->lock, NULL);
    }
    *out = t;
    return 0;
}

void loc_free(struct loc_table *t)
{
    if (!t)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &t->s[i];
        for (size_t k = 0; k <= s->mask; k++) {
            for (struct aor *a = s->tab[k], *nx; a; a = nx) {
                nx = a->hnext;
                bnd_free_list(t, a->head);
                aor_put(t, a);
            }
        }
        free(s->tab);
        pthread_mutex_destroy(&s->lock);
    }
    pool_free(t->pool);
    free(t);
}

/* aor's shard, locked (the caller unlocks), and its record (NULL: none) in *A. */
static struct shard *lock_aor(struct loc_table *t, str aor, struct aor **A, int *rc)
{
    struct norm k;
    *rc = normalise(t, aor, &k);
    if (*rc < 0)
        return NULL;
    struct shard *s = shard_of(t, k.h);
    pthread_mutex_lock(&s->lock);
    *A = *aor_slot(s, k.h, k.key);
    return s;
}

int loc_lookup(struct loc_table *t, str aor, uint64_t now_ms, struct arena *a,
               struct loc_binding **out, size_t *n)
{
    struct aor *A;
    int rc;
    *out = NULL;
    *n = 0;
    struct shard *s = lock_aor(t, aor, &A, &rc);
    if (!s)
        return rc;
    if (A)
        rc = copy_list(A->head, now_ms, a, out, n);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int loc_lookup_each(struct loc_table *t, str aor, uint64_t now_ms, loc_each_fn fn, void *ctx)
{
    struct aor *A;
    int rc;
    struct shard *s = lock_aor(t, aor, &A, &rc);
    if (!s)
        return rc;
    for (const struct bnd *b = A ? A->head : NULL; b; b = b->next)
        if (b->expires_ms > now_ms) {
            struct loc_binding o;
            copy_out(b, &o, NULL);
            fn(ctx, &o);
        }
    pthread_mutex_unlock(&s->lock);
    return 0;
}

struct pending {
    struct bnd *nb[LOC_BATCH_MAX];  /* new records (NULL for a removal) */
    struct bnd *dup[LOC_BATCH_MAX]; /* their copies for the hook */
    bool superseded[LOC_BATCH_MAX]; /* a later entry has the same key */
};

static void pending_free(struct loc_table *t, struct pending *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bnd_put(t, p->nb[i]);
        free(p->dup[i]); /* a malloc'd copy (bnd_clone) */
    }
}

int loc_update(struct loc_table *t, str aor, const struct loc_binding *v, size_t n, uint64_t now_ms,
               struct arena *a, struct loc_binding **cur, size_t *ncur)
{
    struct norm k;
    struct pending p;
    if (cur) {
        *cur = NULL;
        *ncur = 0;
    }
    if (n > LOC_BATCH_MAX)
        return -E2BIG;
    int rc = normalise(t, aor, &k);
    if (rc < 0)
        return rc;
    memset(&p, 0, sizeof p);
    /* Everything that may fail to allocate is done before the lock. */
    size_t alive = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n && !p.superseded[i]; j++)
            p.superseded[i] = in_match(&v[i], &v[j]);
        if (v[i].expires_ms <= now_ms) {
            if (v[i].contact.len == 0 && !in_outbound(&v[i]))
                rc = -EINVAL;
            if (v[i].contact.len > LOC_FIELD_MAX || v[i].instance.len > LOC_FIELD_MAX)
                rc = -E2BIG;
        } else {
            rc = bnd_new(t, &v[i], &p.nb[i]);
            if (rc == 0 && t->hook && !p.superseded[i] && !(p.dup[i] = bnd_clone(p.nb[i])))
                rc = -ENOMEM;
            alive += !p.superseded[i];
        }
        if (rc < 0) {
            pending_free(t, &p, i + 1);
            return rc;
        }
    }
    /* A new AOR record is allocated only when the AOR turns out to be new (a refresh,
     * the common case, allocates none): then the lock is dropped and the pass redone. */
    struct aor *fresh = NULL;

    struct shard *s = shard_of(t, k.h);
    struct bnd *expired = NULL, *dropped = NULL, *removed = NULL;
    struct aor *A, *empty = NULL;
    size_t before = 0, after = 0;
again:
    pthread_mutex_lock(&s->lock);
    struct aor **slot = aor_slot(s, k.h, k.key);
    A = *slot;
    if (!A && alive && !fresh) {
        pthread_mutex_unlock(&s->lock);
        fresh = aor_alloc(t, k.key, k.h);
        if (!fresh) {
            pending_free(t, &p, n);
            return -ENOMEM;
        }
        goto again;
    }
    if (A) {
        size_t gone = aor_drop_expired(A, now_ms, &expired);
        s->nbnd -= gone;
        atomic_fetch_sub(&t->total, gone);
        before = A->n;
    }
    /* Phase 1: the ordering rule and the caps, before anything changes. */
    size_t kept = before;
    for (const struct bnd *b = A ? A->head : NULL; b; b = b->next) {
        bool matched = false;
        for (size_t i = 0; i < n; i++) {
            if (!bnd_match(b, &v[i]))
                continue;
            /* an equal CSeq is a retransmission (stateless REGISTER): done again */
            if (str_eq(field(b, F_CALLID), v[i].call_id) && b->cseq > v[i].cseq) {
                rc = LOC_ERR_ORDER;
                goto unlock;
            }
            matched = true;
        }
        kept -= matched; /* replaced or removed by the request */
    }
    after = kept + alive;
    if (after > t->max_per_aor && after > before) {
        rc = LOC_ERR_AOR_FULL;
        goto unlock;
    }
    size_t reserved = after > before ? after - before : 0;
    if (reserved && atomic_fetch_add(&t->total, reserved) + reserved > t->max_total) {
        atomic_fetch_sub(&t->total, reserved);
        rc = LOC_ERR_FULL;
        goto unlock;
    }
    /* Phase 2: apply, in request order. */
    if (!A && alive) {
        A = fresh;
        fresh = NULL;
        aor_insert(s, A);
    }
    for (size_t i = 0; i < n; i++) {
        if (p.superseded[i])
            continue;
        struct bnd **pp = A ? &A->head : NULL;
        while (pp && *pp && !bnd_match(*pp, &v[i]))
            pp = &(*pp)->next;
        struct bnd *o = pp ? *pp : NULL;
        if (p.nb[i]) {
            struct bnd *nb = p.nb[i];
            p.nb[i] = NULL;
            note_expiry(s, nb->expires_ms);
            if (o) {
                nb->next = o->next;
                *pp = nb;
                o->next = dropped;
                dropped = o;
                if (p.dup[i])
                    p.dup[i]->q |= 0x8000; /* marks "updated" for the hook below */
            } else {
                nb->next = NULL;
                *pp = nb; /* pp is the list's tail */
                A->n++;
                s->nbnd++;
            }
        } else if (o) {
            *pp = o->next;
            o->next = removed;
            removed = o;
            A->n--;
            s->nbnd--;
        }
    }
    after = A ? A->n : 0;
    /* Phase 1's prediction is exact (each input addresses at most one binding, see
     * bnd_match), so this only gives back what a shrinking request freed. */
    if (after > before + reserved)
        atomic_fetch_add(&t->total, after - before - reserved);
    else if (after < before + reserved)
        atomic_fetch_sub(&t->total, before + reserved - after);
    if (cur && A && A->n && copy_list(A->head, now_ms, a, cur, ncur) < 0)
        rc = -ENOBUFS;
unlock:
    /* an AOR left without bindings (by this request, or because all of them had
     * expired and the request failed) goes */
    if (A && A->n == 0) {
        *aor_slot(s, k.h, k.key) = A->hnext;
        s->naor--;
        empty = A;
    }
    pthread_mutex_unlock(&s->lock);

    if (rc == 0 || rc == -ENOBUFS) {
        hook_list(t, k.key, LOC_EXPIRED, expired, after);
        hook_list(t, k.key, LOC_REMOVED, removed, after);
        for (size_t i = 0; i < n; i++) {
            struct bnd *d = p.dup[i];
            if (!d)
                continue;
            enum loc_event ev = d->q & 0x8000 ? LOC_UPDATED : LOC_ADDED;
            d->q &= 0x7fff;
            d->next = NULL;
            hook_list(t, k.key, ev, d, after);
        }
    } else {
        hook_list(t, k.key, LOC_EXPIRED, expired, before);
    }
    bnd_free_list(t, expired);
    bnd_free_list(t, removed);
    bnd_free_list(t, dropped);
    pending_free(t, &p, n);
    aor_put(t, fresh);
    aor_put(t, empty);
    return rc;
}

int loc_remove_all(struct loc_table *t, str aor, str call_id, uint32_t cseq, uint64_t now_ms)
{
    struct norm k;
    int rc = normalise(t, aor, &k);
    if (rc < 0)
        return rc;
    struct shard *s = shard_of(t, k.h);
    struct bnd *expired = NULL, *removed = NULL;
    struct aor *A;
    size_t count = 0;
    pthread_mutex_lock(&s->lock);
    struct aor **slot = aor_slot(s, k.h, k.key);
    A = *slot;
    if (!A)
        goto unlock;
    if (call_id.s) {
        for (const struct bnd *b = A->head; b; b = b->next)
            if (b->expires_ms > now_ms && str_eq(field(b, F_CALLID), call_id) && b->cseq > cseq) {
                rc = LOC_ERR_ORDER;
                A = NULL;
                goto unlock;
            }
    }
    size_t total = A->n;
    count = total - aor_drop_expired(A, now_ms, &expired);
    removed = A->head;
    *slot = A->hnext;
    s->naor--;
    s->nbnd -= total;
    atomic_fetch_sub(&t->total, total);
unlock:
    pthread_mutex_unlock(&s->lock);
    hook_list(t, k.key, LOC_EXPIRED, expired, 0);
    hook_list(t, k.key, LOC_REMOVED, removed, 0);
    bnd_free_list(t, expired);
    bnd_free_list(t, removed);
    aor_put(t, A);
    return rc < 0 ? rc : (int)count;
}

/* Copies (aor, b) into the arena list being built. */
static int expired_push(struct arena *a, str aor, const struct bnd *b, struct loc_expired **arr,
                        size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct loc_expired *na = arena_alloc(a, nc * sizeof *na);
        if (!na)
            return -ENOMEM;
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = nc;
    }
    char *sp = arena_alloc(a, aor.len + copy_bytes(b));
    if (!sp)
        return -ENOMEM;
    memcpy(sp, aor.s, aor.len);
    (*arr)[*n].aor = str_make(sp, aor.len);
    sp += aor.len;
    copy_out(b, &(*arr)[*n].b, &sp);
    (*arr)[*n].remaining = 0;
    (*n)++;
    return 0;
}

ssize_t loc_expire(struct loc_table *t, uint64_t now_ms, size_t max, struct arena *a,
                   struct loc_expired **out, size_t *n)
{
    struct arena *own = NULL;
    struct loc_expired *arr = NULL;
    size_t cnt = 0, cap = 0, removed = 0;
    int err = 0;
    if (out) {
        *out = NULL;
        *n = 0;
    }
    if (!a && t->hook && arena_new(&own, 0, 0) < 0)
        return -ENOMEM;
    struct arena *ar = a ? a : own;
    for (int si = 0; si < SHARDS && (max == 0 || removed < max); si++) {
        struct shard *s = &t->s[si];
        struct bnd *gone = NULL;
        size_t first = cnt;
        pthread_mutex_lock(&s->lock);
        if (now_ms < s->next_expiry) {
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        uint64_t next = UINT64_MAX;
        bool cut = false;
        for (size_t k = 0; k <= s->mask; k++) {
            for (struct aor **pp = &s->tab[k]; *pp;) {
                struct aor *A = *pp;
                size_t aor_first = cnt;
                for (struct bnd **bp = &A->head; *bp;) {
                    struct bnd *b = *bp;
                    if (b->expires_ms > now_ms || (max && removed >= max)) {
                        cut |= b->expires_ms <= now_ms;
                        if (b->expires_ms < next)
                            next = b->expires_ms;
                        bp = &b->next;
                        continue;
                    }
                    *bp = b->next;
                    A->n--;
                    s->nbnd--;
                    removed++;
                    if (ar && !err)
                        err = expired_push(ar, str_make(A->key, A->klen), b, &arr, &cnt, &cap);
                    b->next = gone;
                    gone = b;
                }
                for (size_t j = aor_first; j < cnt; j++)
                    arr[j].remaining = A->n;
                if (A->n == 0) {
                    *pp = A->hnext;
                    s->naor--;
                    aor_put(t, A);
                } else {
                    pp = &A->hnext;
                }
            }
        }
        s->next_expiry = cut ? 0 : next;
        pthread_mutex_unlock(&s->lock);
        bnd_free_list(t, gone);
        if (t->hook) {
            for (size_t i = first; i < cnt; i++)
                t->hook(t->hook_ctx, arr[i].aor, LOC_EXPIRED, &arr[i].b, arr[i].remaining);
        }
    }
    atomic_fetch_sub(&t->total, removed);
    if (out && a) {
        *out = arr; /* cut short after an arena failure */
        *n = cnt;
    }
    arena_free(own);
    return err && a ? err : (ssize_t)removed;
}

size_t loc_pool_bytes(struct loc_table *t)
{
    struct pool_stats st;
    pool_get_stats(t->pool, &st);
    return st.mapped;
}

size_t loc_count(struct loc_table *t, size_t *aors)
{
    size_t b = 0, na = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&t->s[i].lock);
        b += t->s[i].nbnd;
        na += t->s[i].naor;
        pthread_mutex_unlock(&t->s[i].lock);
    }
    if (aors)
        *aors = na;
    return b;
}

struct loc_iter {
    struct loc_table *t;
    uint64_t now_ms;
    int shard;
    struct arena *a;
    struct loc_expired *items;
    size_t n, pos, cap;
};

int loc_iter_new(struct loc_iter **out, struct loc_table *t, uint64_t now_ms)
{
    struct loc_iter *it = calloc(1, sizeof *it);
    if (!it)
        return -ENOMEM;
    if (arena_new(&it->a, 0, 0) < 0) {
        free(it);
        return -ENOMEM;
    }
    it->t = t;
    it->now_ms = now_ms;
    *out = it;
    return 0;
}

int loc_iter_next(struct loc_iter *it, str *aor, struct loc_binding *b)
{
    while (it->pos >= it->n) {
        if (it->shard >= SHARDS)
            return 0;
        struct shard *s = &it->t->s[it->shard];
        arena_reset(it->a);
        it->items = NULL;
        it->n = it->pos = it->cap = 0;
        int rc = 0;
        pthread_mutex_lock(&s->lock);
        for (size_t k = 0; k <= s->mask && rc == 0; k++)
            for (struct aor *A = s->tab[k]; A && rc == 0; A = A->hnext)
                for (struct bnd *x = A->head; x && rc == 0; x = x->next)
                    if (x->expires_ms > it->now_ms)
                        rc = expired_push(it->a, str_make(A->key, A->klen), x, &it->items, &it->n,
                                          &it->cap);
        pthread_mutex_unlock(&s->lock);
        if (rc < 0) {
            it->n = 0;
            return rc;
        }
        it->shard++;
    }
    *aor = it->items[it->pos].aor;
    *b = it->items[it->pos].b;
    it->pos++;
    return 1;
}

void loc_iter_free(struct loc_iter *it)
{
    if (!it)
        return;
    arena_free(it->a);
    free(it);
}

int loc_restore(struct loc_table *t, str aor, const struct loc_binding *b, uint64_t now_ms)
{
    struct norm k;
    int rc = normalise(t, aor, &k);
    if (rc < 0)
        return rc;
    if (b->expires_ms <= now_ms)
        return 0;
    struct bnd *nb;
    rc = bnd_new(t, b, &nb);
    if (rc < 0)
        return rc;
    struct aor *fresh = aor_alloc(t, k.key, k.h), *A;
    if (!fresh) {
        bnd_put(t, nb);
        return -ENOMEM;
    }
    struct bnd *old = NULL;
    struct shard *s = shard_of(t, k.h);
    pthread_mutex_lock(&s->lock);
    A = *aor_slot(s, k.h, k.key);
    struct bnd **pp = A ? &A->head : NULL;
    while (pp && *pp && !bnd_match(*pp, b))
        pp = &(*pp)->next;
    if (pp && *pp) {
        old = *pp;
        nb->next = old->next;
        *pp = nb;
    } else if (A && A->n >= t->max_per_aor) {
        rc = LOC_ERR_AOR_FULL;
    } else if (atomic_fetch_add(&t->total, 1) + 1 > t->max_total) {
        atomic_fetch_sub(&t->total, 1);
        rc = LOC_ERR_FULL;
    } else {
        if (!A) {
            A = fresh;
            fresh = NULL;
            aor_insert(s, A);
            pp = &A->head;
        }
        nb->next = NULL;
        *pp = nb;
        A->n++;
        s->nbnd++;
    }
    if (rc == 0)
        note_expiry(s, nb->expires_ms);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        bnd_put(t, nb);
    bnd_put(t, old);
    aor_put(t, fresh);
    return rc;
}

/* ---- contact keys ---- */

static int key_param_rank(str name)
{
    static const char *const keep[] = {"maddr", "method", "transport", "ttl", "user"};
    for (int i = 0; i < 5; i++)
        if (str_caseeq(name, str_cstr(keep[i])))
            return i;
    return -1;
}

ssize_t loc_contact_key(str uri, char *out, size_t cap)
{
    ssize_t colon = str_find_char(uri, ':');
    if (colon <= 0)
        return -EINVAL;
    /* scheme ":" [userinfo "@"] hostport *( ";" param ) [ "?" headers ] */
    size_t end = uri.len;
    ssize_t q = str_find_char(str_skip(uri, (size_t)colon + 1), '?');
    if (q >= 0)
        end = (size_t)colon + 1 + (size_t)q;
    str rest = str_make(uri.s + colon + 1, end - (size_t)colon - 1);
    ssize_t at = -1;
    for (size_t i = 0; i < rest.len; i++)
        if (rest.s[i] == '@')
            at = (ssize_t)i; /* the last '@' before the parameters */
        else if (rest.s[i] == ';' && at >= 0)
            break;
    size_t hstart = at >= 0 ? (size_t)at + 1 : 0;
    ssize_t semi = str_find_char(str_skip(rest, hstart), ';');
    size_t hend = semi >= 0 ? hstart + (size_t)semi : rest.len;
    str params[5] = {STR_NULL, STR_NULL, STR_NULL, STR_NULL, STR_NULL};
    for (size_t i = hend; i < rest.len;) {
        size_t ps = i + 1, pe = ps;
        while (pe < rest.len && rest.s[pe] != ';')
            pe++;
        str p = str_make(rest.s + ps, pe - ps);
        ssize_t eq = str_find_char(p, '=');
        int r = key_param_rank(eq >= 0 ? str_sub(p, 0, (size_t)eq) : p);
        if (r >= 0)
            params[r] = p;
        i = pe;
    }
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 >= cap)                                                                          \
            return -E2BIG;                                                                         \
        out[o++] = (char)(c);                                                                      \
    } while (0)
    for (ssize_t i = 0; i <= colon; i++)
        PUT(str_lower((unsigned char)uri.s[i]));
    for (size_t i = 0; i < hstart; i++)
        PUT(rest.s[i]);
    for (size_t i = hstart; i < hend; i++)
        PUT(str_lower((unsigned char)rest.s[i]));
    for (int r = 0; r < 5; r++) {
        if (!params[r].s)
            continue;
        PUT(';');
        for (size_t i = 0; i < params[r].len; i++)
            PUT(str_lower((unsigned char)params[r].s[i]));
    }
#undef PUT
    out[o] = '\0';
    return (ssize_t)o;
}

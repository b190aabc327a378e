/*
 * turn — the TURN server core (RFC 8656) and the STUN Binding service
 * (RFC 8489), without sockets. One struct turn_server per worker loop owns
 * the allocations whose client 5-tuple reaches that worker; what all workers
 * share (quotas, the nonce key, static users) is in struct turn_shared.
 *
 * Credentials (RFC 8489 §9.2, long-term): REALM + stateless NONCE
 * (expiry + HMAC, so any worker can check any nonce; a bad or expired one is
 * 438), the key MD5(user:realm:password) from, in order: TURN REST
 * credentials (username "expiry:user", password
 * base64(HMAC-SHA1(turn.rest_secret, username))), the static turn.users, the
 * lookup callback (rtcd's user store: its digest HA1 is this very key).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/log.h"
#include "base/map.h"
#include "base/random.h"
#include "stun/stun.h"

#define MOD "turn"
#define OUT_MAX (65536 + 64)

union turn_sa {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
};

struct static_user {
    char *name;
    uint8_t key[16];
};

struct turn_shared {
    char *realm;
    char *rest_secret;
    uint8_t nonce_key[32];
    turn_lookup_fn lookup;
    void *lookup_ctx;
    uint32_t max_allocations, max_per_user, max_lifetime, default_lifetime, bandwidth,
        nonce_lifetime;
    struct range_list allow, deny;
    union turn_sa own[CONFIG_MAX_LISTEN + 2];
    size_t nown;
    struct static_user *users;
    size_t nusers;
    atomic_uint allocations;
    pthread_mutex_t lock; /* guards per_user and resv */
    struct map *per_user; /* user → count (as a pointer-sized integer) */
    /* Reserved ports (EVEN-PORT with R): any worker may take one by token. */
    struct reservation {
        uint64_t token, expires; /* expires in mono ms; 0 = free slot */
        int fd, family;
        const struct turn_io *io;
        void *io_ctx;
    } resv[TURN_MAX_RESERVATIONS];
};

struct turn_perm {
    uint8_t ip[16];
    uint8_t family;
    uint64_t expires;
};

struct turn_chan {
    uint16_t num;
    union turn_sa peer;
    uint64_t expires; /* past it: unused, and kept TURN_CHANNEL_COOLDOWN more */
};

struct turn_alloc {
    struct turn_server *srv;
    enum transport transport;
    union turn_sa client, local;
    void *conn;
    void *relay;
    union turn_sa relay_addr;
    uint64_t expires;
    uint8_t tid[12];           /* of the Allocate, to answer its retransmissions */
    uint64_t resv_token;       /* the RESERVATION-TOKEN handed out with it, or 0 */
    char *user;                /* the USERNAME, bound to the allocation */
    char *quota_user;          /* user part (REST prefix removed) */
    uint8_t nperms, nchans;
    struct turn_perm *perms;   /* TURN_MAX_PERMISSIONS at most */
    struct turn_chan *chans;   /* TURN_MAX_CHANNELS at most */
    uint64_t bw_stamp;         /* token bucket for turn.bandwidth_per_allocation */
    uint64_t bw_tokens;
    uint8_t keybuf[48];
    uint8_t keysz;
};

struct turn_server {
    struct turn_shared *sh;
    const struct turn_io *io;
    void *io_ctx;
    struct clock_src mono, wall;
    struct map *by_tuple; /* 5-tuple key → alloc */
    struct map *by_conn;  /* TCP conn → alloc */
    struct turn_stats stats;
    uint8_t out[OUT_MAX];
};

/* The outcome of authenticating a request. */
struct auth {
    uint8_t key[16];
    bool ok, sha256;
    str user;
};

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */

static void sa_copy(union turn_sa *dst, const struct sockaddr *src)
{
    memset(dst, 0, sizeof *dst);
    if (src->sa_family == AF_INET)
        memcpy(&dst->v4, src, sizeof dst->v4);
    else if (src->sa_family == AF_INET6)
        memcpy(&dst->v6, src, sizeof dst->v6);
}

/* The IP of sa as 16 bytes (v4 in the first four) and its family (v4-mapped → v4). */
static int sa_ip(const struct sockaddr *sa, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(ip, a + 12, 4);
            return AF_INET;
        }
        memcpy(ip, a, 16);
        return AF_INET6;
    }
    return 0;
}

static uint16_t sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

static bool sa_equal(const struct sockaddr *a, const struct sockaddr *b)
{
    uint8_t ia[16], ib[16];
    int fa = sa_ip(a, ia), fb = sa_ip(b, ib);
    return fa == fb && sa_port(a) == sa_port(b) && memcmp(ia, ib, 16) == 0;
}

/* Writes the lookup key of a 5-tuple (and TCP connection) into k; returns its length. */
static size_t tuple_key(const struct turn_tuple *t, uint8_t k[48])
{
    const struct sockaddr *sas[2] = { (const struct sockaddr *)&t->client,
                                      (const struct sockaddr *)&t->local };
    size_t n = 0;
    k[n++] = (uint8_t)t->transport;
    for (int i = 0; i < 2; i++) {
        k[n] = (uint8_t)sa_ip(sas[i], k + n + 1);
        n += 17;
        uint16_t p = sa_port(sas[i]);
        k[n++] = (uint8_t)(p >> 8);
        k[n++] = (uint8_t)p;
    }
    if (t->transport == TRANSPORT_TCP) {
        uintptr_t c = (uintptr_t)t->conn;
        memcpy(k + n, &c, sizeof c);
        n += sizeof c;
    }
    return n;
}

/* Whether peer may be relayed to: allow_peers wins, then deny_peers and our own addresses. */
static bool peer_denied(const struct turn_shared *sh, const struct sockaddr *peer)
{
    for (size_t i = 0; i < sh->allow.n; i++)
        if (net_range_contains(&sh->allow.v[i], peer))
            return false;
    for (size_t i = 0; i < sh->deny.n; i++)
        if (net_range_contains(&sh->deny.v[i], peer))
            return true;
    uint8_t ip[16], own[16];
    int fam = sa_ip(peer, ip);
    for (size_t i = 0; i < sh->nown; i++)
        if (sa_ip(&sh->own[i].sa, own) == fam && memcmp(ip, own, 16) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Shared state                                                             */

static int parse_users(struct turn_shared *sh, const char *list)
{
    str rest = str_cstr(list);
    while (rest.len) {
        ssize_t comma = str_find_char(rest, ',');
        str item = str_trim(comma < 0 ? rest : str_sub(rest, 0, (size_t)comma));
        rest = comma < 0 ? STR_NULL : str_skip(rest, (size_t)comma + 1);
        if (!item.len)
            continue;
        ssize_t colon = str_find_char(item, ':');
        if (colon <= 0 || (size_t)colon + 1 >= item.len)
            return -EINVAL;
        str name = str_sub(item, 0, (size_t)colon), pass = str_skip(item, (size_t)colon + 1);
        struct static_user *u = realloc(sh->users, (sh->nusers + 1) * sizeof *u);
        if (!u)
            return -ENOMEM;
        sh->users = u;
        u = &sh->users[sh->nusers];
        u->name = str_dup(name);
        if (!u->name)
            return -ENOMEM;
        stun_long_term_key(name, str_cstr(sh->realm), pass, u->key);
        sh->nusers++;
    }
    return 0;
}

/* See stun.h. */
int turn_shared_new(struct turn_shared **out, const struct config *cfg, turn_lookup_fn lookup,
                    void *lookup_ctx)
{
    struct turn_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return -ENOMEM;
    int rc = -ENOMEM;
    pthread_mutex_init(&sh->lock, NULL);
    const char *realm = cfg->turn.realm;
    char first[256] = "";
    if (!realm || !*realm) {
        str d = str_cstr(cfg->server.domain);
        ssize_t comma = str_find_char(d, ',');
        if (comma >= 0)
            d = str_sub(d, 0, (size_t)comma);
        if (str_copy(first, sizeof first, str_trim(d)) < 0)
            first[0] = 0;
        realm = first;
    }
    sh->realm = strdup(realm);
    sh->rest_secret = strdup(cfg->turn.rest_secret ? cfg->turn.rest_secret : "");
    if (!sh->realm || !sh->rest_secret || map_new(&sh->per_user, MAP_KEY_STR, 64) < 0)
        goto fail;
    if (random_bytes(sh->nonce_key, sizeof sh->nonce_key) < 0)
        goto fail;
    sh->lookup = lookup;
    sh->lookup_ctx = lookup_ctx;
    sh->max_allocations = cfg->turn.max_allocations;
    sh->max_per_user = cfg->turn.max_allocations_per_user;
    sh->max_lifetime = cfg->turn.max_lifetime;
    sh->default_lifetime = cfg->turn.default_lifetime;
    sh->bandwidth = cfg->turn.bandwidth_per_allocation;
    sh->nonce_lifetime = cfg->turn.nonce_lifetime;
    sh->allow = cfg->turn.allow_peers;
    sh->deny = cfg->turn.deny_peers;
    if (cfg->turn.users && *cfg->turn.users) {
        rc = parse_users(sh, cfg->turn.users);
        if (rc < 0)
            goto fail;
    }
    *out = sh;
    return 0;
fail:
    turn_shared_free(sh);
    return rc;
}

/* See stun.h. */
void turn_shared_free(struct turn_shared *sh)
{
    if (!sh)
        return;
    for (size_t i = 0; i < sh->nusers; i++)
        free(sh->users[i].name);
    free(sh->users);
    free(sh->realm);
    free(sh->rest_secret);
    map_free(sh->per_user);
    for (size_t i = 0; i < TURN_MAX_RESERVATIONS; i++)
        if (sh->resv[i].expires)
            sh->resv[i].io->reserve_close(sh->resv[i].io_ctx, sh->resv[i].fd);
    pthread_mutex_destroy(&sh->lock);
    OPENSSL_cleanse(sh->nonce_key, sizeof sh->nonce_key);
    free(sh);
}

/* See stun.h. Call before any core runs. */
void turn_shared_deny_addr(struct turn_shared *sh, const struct sockaddr *sa)
{
    if (sh->nown < sizeof sh->own / sizeof sh->own[0])
        sa_copy(&sh->own[sh->nown++], sa);
}

/* See stun.h. */
unsigned turn_shared_allocations(const struct turn_shared *sh)
{
    return atomic_load(&((struct turn_shared *)sh)->allocations);
}

/* Takes one allocation from the global and per-user quotas: 0 or 486. */
static int quota_take(struct turn_shared *sh, const char *user)
{
    unsigned n = atomic_fetch_add(&sh->allocations, 1);
    if (n >= sh->max_allocations) {
        atomic_fetch_sub(&sh->allocations, 1);
        return 486;
    }
    int code = 0;
    pthread_mutex_lock(&sh->lock);
    uintptr_t have = (uintptr_t)map_get_str(sh->per_user, str_cstr(user));
    if (have >= sh->max_per_user)
        code = 486;
    else if (map_set_str(sh->per_user, str_cstr(user), (void *)(have + 1), NULL) < 0)
        code = 508;
    pthread_mutex_unlock(&sh->lock);
    if (code)
        atomic_fetch_sub(&sh->allocations, 1);
    return code;
}

static void quota_give(struct turn_shared *sh, const char *user)
{
    atomic_fetch_sub(&sh->allocations, 1);
    pthread_mutex_lock(&sh->lock);
    uintptr_t have = (uintptr_t)map_get_str(sh->per_user, str_cstr(user));
    if (have <= 1)
        map_del_str(sh->per_user, str_cstr(user));
    else
        map_set_str(sh->per_user, str_cstr(user), (void *)(have - 1), NULL);
    pthread_mutex_unlock(&sh->lock);
}

/* Keeps fd reserved under a new token (0 when the table is full: fd is closed). */
static uint64_t resv_put(struct turn_server *s, int fd, int family, uint64_t now);
/* Takes the fd reserved under token (and family), or -1. */
static int resv_take(struct turn_shared *sh, uint64_t token, int family)
{
    int fd = -1;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < TURN_MAX_RESERVATIONS; i++) {
        struct reservation *r = &sh->resv[i];
        if (r->expires && r->token == token && r->family == family) {
            fd = r->fd;
            r->expires = 0;
            break;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    return fd;
}

/* Closes the reservations that are over. */
static void resv_expire(struct turn_shared *sh, uint64_t now)
{
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < TURN_MAX_RESERVATIONS; i++) {
        struct reservation *r = &sh->resv[i];
        if (r->expires && r->expires <= now) {
            r->expires = 0;
            r->io->reserve_close(r->io_ctx, r->fd);
        }
    }
    pthread_mutex_unlock(&sh->lock);
}

/* ------------------------------------------------------------------------ */
/* Nonces: 16 hex digits of the expiry (wall ms) + 16 of an HMAC over them. */

#define NONCE_LEN 32

static void nonce_mac(const struct turn_shared *sh, const char hexexp[16], char out[16])
{
    uint8_t mac[32];
    unsigned len = 0;
    HMAC(EVP_sha256(), sh->nonce_key, sizeof sh->nonce_key, (const uint8_t *)hexexp, 16, mac,
         &len);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hx[mac[i] >> 4];
        out[2 * i + 1] = hx[mac[i] & 15];
    }
}

static void nonce_make(const struct turn_server *s, char out[NONCE_LEN])
{
    uint64_t exp = clock_now(&s->wall) + (uint64_t)s->sh->nonce_lifetime * 1000;
    char hexexp[17];
    snprintf(hexexp, sizeof hexexp, "%016llx", (unsigned long long)exp);
    memcpy(out, hexexp, 16);
    nonce_mac(s->sh, hexexp, out + 16);
}

static bool nonce_valid(const struct turn_server *s, str nonce)
{
    if (nonce.len != NONCE_LEN)
        return false;
    char mac[16];
    nonce_mac(s->sh, nonce.s, mac);
    if (CRYPTO_memcmp(mac, nonce.s + 16, 16) != 0)
        return false;
    uint64_t exp = 0;
    for (int i = 0; i < 16; i++) {
        char c = nonce.s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return false;
        exp = exp << 4 | (uint64_t)v;
    }
    return clock_now(&s->wall) < exp;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

static void send_out(struct turn_server *s, const struct turn_tuple *t, struct stun_enc *e)
{
    int n = stun_enc_finish(e);
    if (n > 0)
        s->io->send_client(s->io_ctx, t, e->p, (size_t)n);
}

static void finish_reply(struct turn_server *s, const struct turn_tuple *t,
                         const struct stun_msg *req, struct stun_enc *e, const struct auth *a)
{
    if (a && a->ok) {
        if (a->sha256)
            stun_enc_integrity_sha256(e, a->key, 16);
        else
            stun_enc_integrity(e, a->key, 16);
    }
    if (req->fp >= 0)
        stun_enc_fingerprint(e);
    send_out(s, t, e);
}

static void reply_error(struct turn_server *s, const struct turn_tuple *t,
                        const struct stun_msg *req, int code, const char *reason,
                        const struct auth *a)
{
    if (log_enabled(LOG_DEBUG)) {
        const struct stun_attr *u = stun_attr_find(req, STUN_A_USERNAME);
        log_debug(MOD, "method 0x%03x from user '%.*s': %d %s", req->method,
                  u ? (int)u->len : 0, u ? (const char *)u->val : "", code, reason);
    }
    struct stun_enc e;
    stun_enc_init(&e, s->out, sizeof s->out, (uint16_t)(req->type & ~0x0110) | STUN_ERROR,
                  req->tid);
    stun_enc_error(&e, code, reason);
    if (code == 401 || code == 438) {
        char nonce[NONCE_LEN];
        nonce_make(s, nonce);
        stun_enc_attr(&e, STUN_A_REALM, s->sh->realm, strlen(s->sh->realm));
        stun_enc_attr(&e, STUN_A_NONCE, nonce, NONCE_LEN);
        a = NULL;
    }
    finish_reply(s, t, req, &e, a);
}

/* ------------------------------------------------------------------------ */
/* Authentication                                                           */

/* The key for user (0), or -ENOENT / -EKEYEXPIRED. */
static int find_key(struct turn_server *s, str user, uint8_t key[16])
{
    struct turn_shared *sh = s->sh;
    char name[TURN_MAX_USERNAME + 1];
    if (str_copy(name, sizeof name, user) < 0)
        return -ENOENT;
    ssize_t colon = str_find_char(user, ':');
    uint64_t exp;
    if (*sh->rest_secret && colon > 0 && str_to_u64(str_sub(user, 0, (size_t)colon), &exp) == 0) {
        if (exp * 1000 <= clock_now(&s->wall) || exp > UINT64_MAX / 1000)
            return -EKEYEXPIRED;
        char pass[32];
        turn_rest_password(str_cstr(sh->rest_secret), user, pass);
        stun_long_term_key(user, str_cstr(sh->realm), str_cstr(pass), key);
        return 0;
    }
    for (size_t i = 0; i < sh->nusers; i++)
        if (strcmp(sh->users[i].name, name) == 0) {
            memcpy(key, sh->users[i].key, 16);
            return 0;
        }
    if (sh->lookup && sh->lookup(sh->lookup_ctx, name, sh->realm, key) == 0)
        return 0;
    return -ENOENT;
}

/*
 * Checks the long-term credentials of req; on failure answers it (400, 401,
 * 438) and returns false.
 */
static bool authenticate(struct turn_server *s, const struct turn_tuple *t,
                         const struct stun_msg *req, struct auth *a)
{
    memset(a, 0, sizeof *a);
    if (req->mi < 0 && req->mi256 < 0) {
        reply_error(s, t, req, 401, "Unauthorized", NULL);
        return false;
    }
    const struct stun_attr *u = stun_attr_find(req, STUN_A_USERNAME);
    const struct stun_attr *r = stun_attr_find(req, STUN_A_REALM);
    const struct stun_attr *n = stun_attr_find(req, STUN_A_NONCE);
    if (!u || !r || !n || u->len > TURN_MAX_USERNAME) {
        reply_error(s, t, req, 400, "Missing USERNAME, REALM or NONCE", NULL);
        return false;
    }
    if (!nonce_valid(s, str_make((const char *)n->val, n->len))) {
        reply_error(s, t, req, 438, "Stale Nonce", NULL);
        return false;
    }
    a->user = str_make((const char *)u->val, u->len);
    if (!str_eq(str_make((const char *)r->val, r->len), str_cstr(s->sh->realm)) ||
        find_key(s, a->user, a->key) < 0) {
        reply_error(s, t, req, 401, "Unauthorized", NULL);
        return false;
    }
    a->sha256 = req->mi256 >= 0;
    if (!stun_check_integrity(req, a->key, 16, a->sha256)) {
        reply_error(s, t, req, 401, "Unauthorized", NULL);
        return false;
    }
    a->ok = true;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Allocations                                                              */

static uint64_t resv_put(struct turn_server *s, int fd, int family, uint64_t now)
{
    struct turn_shared *sh = s->sh;
    uint64_t token = 0;
    pthread_mutex_lock(&sh->lock);
    for (size_t i = 0; i < TURN_MAX_RESERVATIONS; i++) {
        struct reservation *r = &sh->resv[i];
        if (!r->expires) {
            do
                token = random_u64();
            while (!token);
            *r = (struct reservation){ token, now + TURN_RESERVATION_LIFETIME * 1000ull, fd,
                                       family, s->io, s->io_ctx };
            break;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (!token)
        s->io->reserve_close(s->io_ctx, fd);
    return token;
}

static void alloc_free(struct turn_server *s, struct turn_alloc *al)
{
    map_del_str(s->by_tuple, str_make((const char *)al->keybuf, al->keysz));
    if (al->conn && al->transport == TRANSPORT_TCP)
        map_del_int(s->by_conn, (uintptr_t)al->conn);
    if (al->relay)
        s->io->relay_close(s->io_ctx, al->relay);
    quota_give(s->sh, al->quota_user);
    free(al->user);
    free(al->quota_user);
    free(al->perms);
    free(al->chans);
    free(al);
}

static struct turn_alloc *alloc_find(struct turn_server *s, const struct turn_tuple *t)
{
    uint8_t k[48];
    size_t n = tuple_key(t, k);
    return map_get_str(s->by_tuple, str_make((const char *)k, n));
}

static struct turn_perm *perm_find(struct turn_alloc *al, const struct sockaddr *peer,
                                   uint64_t now)
{
    uint8_t ip[16];
    int fam = sa_ip(peer, ip);
    for (unsigned i = 0; i < al->nperms; i++) {
        struct turn_perm *p = &al->perms[i];
        if (p->family == fam && memcmp(p->ip, ip, 16) == 0)
            return p->expires > now ? p : NULL;
    }
    return NULL;
}

/* Installs or refreshes a permission for the IP of peer; -ENOSPC when full. */
static int perm_install(struct turn_alloc *al, const struct sockaddr *peer, uint64_t now)
{
    uint8_t ip[16];
    int fam = sa_ip(peer, ip);
    uint64_t exp = now + TURN_PERMISSION_LIFETIME * 1000ull;
    for (unsigned i = 0; i < al->nperms; i++) {
        struct turn_perm *p = &al->perms[i];
        if (p->family == fam && memcmp(p->ip, ip, 16) == 0) {
            p->expires = exp;
            return 0;
        }
    }
    /* Reuse an expired slot before growing. */
    for (unsigned i = 0; i < al->nperms; i++) {
        struct turn_perm *p = &al->perms[i];
        if (p->expires <= now) {
            memcpy(p->ip, ip, 16);
            p->family = (uint8_t)fam;
            p->expires = exp;
            return 0;
        }
    }
    if (al->nperms >= TURN_MAX_PERMISSIONS)
        return -ENOSPC;
    struct turn_perm *v = realloc(al->perms, (al->nperms + 1u) * sizeof *v);
    if (!v)
        return -ENOMEM;
    al->perms = v;
    struct turn_perm *p = &v[al->nperms++];
    memcpy(p->ip, ip, 16);
    p->family = (uint8_t)fam;
    p->expires = exp;
    return 0;
}

static struct turn_chan *chan_by_num(struct turn_alloc *al, uint16_t num)
{
    for (unsigned i = 0; i < al->nchans; i++)
        if (al->chans[i].num == num)
            return &al->chans[i];
    return NULL;
}

static struct turn_chan *chan_by_peer(struct turn_alloc *al, const struct sockaddr *peer)
{
    for (unsigned i = 0; i < al->nchans; i++)
        if (sa_equal(&al->chans[i].peer.sa, peer))
            return &al->chans[i];
    return NULL;
}

/* Token bucket: whether n more bytes may pass now. */
static bool bw_allow(struct turn_server *s, struct turn_alloc *al, size_t n, uint64_t now)
{
    uint32_t rate = s->sh->bandwidth;
    if (!rate)
        return true;
    if (now > al->bw_stamp) {
        al->bw_tokens += (now - al->bw_stamp) * rate / 1000;
        if (al->bw_tokens > rate)
            al->bw_tokens = rate;
        al->bw_stamp = now;
    }
    if (al->bw_tokens < n) {
        s->stats.dropped++;
        return false;
    }
    al->bw_tokens -= n;
    return true;
}

static uint32_t grant_lifetime(const struct turn_shared *sh, const struct stun_msg *req)
{
    const struct stun_attr *l = stun_attr_find(req, TURN_A_LIFETIME);
    uint32_t want;
    if (!l || stun_attr_u32(l, &want) < 0)
        return sh->default_lifetime;
    if (want == 0)
        return 0;
    if (want > sh->max_lifetime)
        return sh->max_lifetime;
    return want < sh->default_lifetime ? sh->default_lifetime : want;
}

static void reply_allocate_ok(struct turn_server *s, const struct turn_tuple *t,
                              const struct stun_msg *req, struct turn_alloc *al,
                              const struct auth *a, uint64_t now)
{
    struct stun_enc e;
    stun_enc_init(&e, s->out, sizeof s->out, TURN_ALLOCATE | STUN_SUCCESS, req->tid);
    stun_enc_xor_addr(&e, TURN_A_XOR_RELAYED_ADDRESS, &al->relay_addr.sa);
    stun_enc_u32(&e, TURN_A_LIFETIME, (uint32_t)((al->expires - now + 999) / 1000));
    stun_enc_xor_addr(&e, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)&t->client);
    if (al->resv_token) {
        uint8_t tok[8];
        for (int i = 0; i < 8; i++)
            tok[i] = (uint8_t)(al->resv_token >> (56 - 8 * i));
        stun_enc_attr(&e, TURN_A_RESERVATION_TOKEN, tok, 8);
    }
    finish_reply(s, t, req, &e, a);
}

static void handle_allocate(struct turn_server *s, const struct turn_tuple *t,
                            const struct stun_msg *req, const struct auth *a, uint64_t now)
{
    struct turn_alloc *al = alloc_find(s, t);
    if (al) {
        if (memcmp(al->tid, req->tid, 12) == 0)
            reply_allocate_ok(s, t, req, al, a, now); /* a retransmission */
        else
            reply_error(s, t, req, 437, "Allocation Mismatch", a);
        return;
    }
    const struct stun_attr *rt = stun_attr_find(req, TURN_A_REQUESTED_TRANSPORT);
    if (!rt || rt->len != 4) {
        reply_error(s, t, req, 400, "Missing REQUESTED-TRANSPORT", a);
        return;
    }
    if (rt->val[0] != 17) {
        reply_error(s, t, req, 442, "Unsupported Transport Protocol", a);
        return;
    }
    const struct stun_attr *tok = stun_attr_find(req, TURN_A_RESERVATION_TOKEN);
    if (tok && (tok->len != 8 || stun_attr_find(req, TURN_A_EVEN_PORT) ||
                stun_attr_find(req, TURN_A_REQUESTED_ADDRESS_FAMILY))) {
        reply_error(s, t, req, 400, "Bad RESERVATION-TOKEN", a);
        return;
    }
    const struct stun_attr *fa = stun_attr_find(req, TURN_A_REQUESTED_ADDRESS_FAMILY);
    int family = AF_INET;
    if (fa) {
        if (stun_attr_find(req, TURN_A_ADDITIONAL_ADDRESS_FAMILY)) {
            reply_error(s, t, req, 400, "Both address family attributes", a);
            return;
        }
        if (fa->len != 4 || (fa->val[0] != 1 && fa->val[0] != 2)) {
            reply_error(s, t, req, 440, "Address Family not Supported", a);
            return;
        }
        family = fa->val[0] == 1 ? AF_INET : AF_INET6;
    }
    const struct stun_attr *ev = stun_attr_find(req, TURN_A_EVEN_PORT);
    if (ev && ev->len != 1) {
        reply_error(s, t, req, 400, "Bad EVEN-PORT", a);
        return;
    }
    char *quser = NULL, *user = str_dup(a->user);
    ssize_t colon = str_find_char(a->user, ':');
    uint64_t dummy;
    if (colon > 0 && str_to_u64(str_sub(a->user, 0, (size_t)colon), &dummy) == 0)
        quser = str_dup(str_skip(a->user, (size_t)colon + 1));
    else
        quser = str_dup(a->user);
    al = calloc(1, sizeof *al);
    if (!al || !user || !quser) {
        free(al);
        free(user);
        free(quser);
        reply_error(s, t, req, 508, "Insufficient Capacity", a);
        return;
    }
    int code = quota_take(s->sh, quser);
    if (code) {
        free(al);
        free(user);
        free(quser);
        reply_error(s, t, req, code,
                    code == 486 ? "Allocation Quota Reached" : "Insufficient Capacity", a);
        return;
    }
    al->srv = s;
    al->user = user;
    al->quota_user = quser;
    al->transport = t->transport;
    sa_copy(&al->client, (const struct sockaddr *)&t->client);
    sa_copy(&al->local, (const struct sockaddr *)&t->local);
    al->conn = t->conn;
    memcpy(al->tid, req->tid, 12);
    al->keysz = (uint8_t)tuple_key(t, al->keybuf);
    al->bw_stamp = now;
    al->bw_tokens = s->sh->bandwidth;
    uint32_t life = grant_lifetime(s->sh, req);
    if (life == 0)
        life = s->sh->default_lifetime;
    al->expires = now + life * 1000ull;

    struct sockaddr_storage raddr;
    int adopt = -1, reserved = -1;
    if (tok) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | tok->val[i];
        adopt = resv_take(s->sh, v, AF_INET);
        if (adopt < 0)
            adopt = resv_take(s->sh, v, AF_INET6);
    }
    bool reserve = ev && (ev->val[0] & 0x80);
    int rc = tok && adopt < 0 ? -ENOENT
                              : s->io->relay_open(s->io_ctx, al, family, ev != NULL,
                                                  reserve ? &reserved : NULL, adopt, &al->relay,
                                                  &raddr);
    if (rc < 0) {
        al->relay = NULL;
        quota_give(s->sh, quser);
        free(user);
        free(quser);
        free(al);
        if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL)
            reply_error(s, t, req, 440, "Address Family not Supported", a);
        else
            reply_error(s, t, req, 508, "Insufficient Capacity", a);
        return;
    }
    sa_copy(&al->relay_addr, (const struct sockaddr *)&raddr);
    if (reserved >= 0)
        al->resv_token = resv_put(s, reserved, family, now);
    if (map_set_str(s->by_tuple, str_make((const char *)al->keybuf, al->keysz), al, NULL) < 0 ||
        (t->transport == TRANSPORT_TCP &&
         map_set_int(s->by_conn, (uintptr_t)t->conn, al, NULL) < 0)) {
        alloc_free(s, al);
        reply_error(s, t, req, 508, "Insufficient Capacity", a);
        return;
    }
    s->stats.allocations++;
    log_debug(MOD, "allocation for %s: relay port %u, lifetime %u s", al->user,
              sa_port(&al->relay_addr.sa), life);
    reply_allocate_ok(s, t, req, al, a, now);
}

/* Common checks of requests on an allocation: exists (437) and same user (441). */
static struct turn_alloc *alloc_for(struct turn_server *s, const struct turn_tuple *t,
                                    const struct stun_msg *req, const struct auth *a)
{
    struct turn_alloc *al = alloc_find(s, t);
    if (!al) {
        reply_error(s, t, req, 437, "Allocation Mismatch", a);
        return NULL;
    }
    if (!str_eq(a->user, str_cstr(al->user))) {
        reply_error(s, t, req, 441, "Wrong Credentials", a);
        return NULL;
    }
    return al;
}

static void handle_refresh(struct turn_server *s, const struct turn_tuple *t,
                           const struct stun_msg *req, const struct auth *a, uint64_t now)
{
    struct turn_alloc *al = alloc_for(s, t, req, a);
    if (!al)
        return;
    const struct stun_attr *fa = stun_attr_find(req, TURN_A_REQUESTED_ADDRESS_FAMILY);
    if (fa && (fa->len != 4 || (fa->val[0] == 1 ? AF_INET : AF_INET6) != al->relay_addr.sa.sa_family)) {
        reply_error(s, t, req, 443, "Peer Address Family Mismatch", a);
        return;
    }
    uint32_t life = grant_lifetime(s->sh, req);
    struct stun_enc e;
    stun_enc_init(&e, s->out, sizeof s->out, TURN_REFRESH | STUN_SUCCESS, req->tid);
    stun_enc_u32(&e, TURN_A_LIFETIME, life);
    if (life == 0)
        alloc_free(s, al);
    else
        al->expires = now + life * 1000ull;
    finish_reply(s, t, req, &e, a);
}

/* Reads a XOR-PEER-ADDRESS and checks it against the allocation: 0 or an error code. */
static int check_peer(struct turn_server *s, const struct stun_msg *req,
                      const struct stun_attr *pa, const struct turn_alloc *al,
                      struct sockaddr_storage *peer)
{
    if (stun_attr_xor_addr(req, pa, peer) < 0)
        return 400;
    if (peer->ss_family != al->relay_addr.sa.sa_family)
        return 443;
    if (peer_denied(s->sh, (const struct sockaddr *)peer))
        return 403;
    return 0;
}

static const char *reason_of(int code)
{
    switch (code) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 443:
        return "Peer Address Family Mismatch";
    case 508:
        return "Insufficient Capacity";
    default:
        return "Error";
    }
}

static void handle_create_permission(struct turn_server *s, const struct turn_tuple *t,
                                     const struct stun_msg *req, const struct auth *a,
                                     uint64_t now)
{
    struct turn_alloc *al = alloc_for(s, t, req, a);
    if (!al)
        return;
    struct sockaddr_storage peers[STUN_MAX_ATTRS];
    size_t np = 0;
    for (size_t i = 0; i < req->nattrs; i++) {
        if (req->attrs[i].type != TURN_A_XOR_PEER_ADDRESS)
            continue;
        int code = check_peer(s, req, &req->attrs[i], al, &peers[np]);
        if (code) {
            reply_error(s, t, req, code, reason_of(code), a);
            return;
        }
        np++;
    }
    if (np == 0) {
        reply_error(s, t, req, 400, "Missing XOR-PEER-ADDRESS", a);
        return;
    }
    /* All or nothing: check room first (distinct new IPs against the free slots). */
    unsigned need = 0;
    for (size_t i = 0; i < np; i++)
        if (!perm_find(al, (const struct sockaddr *)&peers[i], 0))
            need++;
    unsigned freeslots = TURN_MAX_PERMISSIONS - al->nperms;
    for (unsigned i = 0; i < al->nperms; i++)
        if (al->perms[i].expires <= now)
            freeslots++;
    if (need > freeslots) {
        reply_error(s, t, req, 508, "Too Many Permissions", a);
        return;
    }
    for (size_t i = 0; i < np; i++)
        if (perm_install(al, (const struct sockaddr *)&peers[i], now) < 0) {
            reply_error(s, t, req, 508, "Insufficient Capacity", a);
            return;
        }
    struct stun_enc e;
    stun_enc_init(&e, s->out, sizeof s->out, TURN_CREATE_PERMISSION | STUN_SUCCESS, req->tid);
    finish_reply(s, t, req, &e, a);
}

static void handle_channel_bind(struct turn_server *s, const struct turn_tuple *t,
                                const struct stun_msg *req, const struct auth *a, uint64_t now)
{
    struct turn_alloc *al = alloc_for(s, t, req, a);
    if (!al)
        return;
    const struct stun_attr *cn = stun_attr_find(req, TURN_A_CHANNEL_NUMBER);
    const struct stun_attr *pa = stun_attr_find(req, TURN_A_XOR_PEER_ADDRESS);
    uint32_t v;
    if (!cn || stun_attr_u32(cn, &v) < 0 || (v >> 16) < 0x4000 || (v >> 16) > 0x7FFF) {
        reply_error(s, t, req, 400, "Bad CHANNEL-NUMBER", a);
        return;
    }
    if (!pa) {
        reply_error(s, t, req, 400, "Missing XOR-PEER-ADDRESS", a);
        return;
    }
    uint16_t num = (uint16_t)(v >> 16);
    struct sockaddr_storage peer;
    int code = check_peer(s, req, pa, al, &peer);
    if (code) {
        reply_error(s, t, req, code, reason_of(code), a);
        return;
    }
    const struct sockaddr *psa = (const struct sockaddr *)&peer;
    struct turn_chan *byn = chan_by_num(al, num), *byp = chan_by_peer(al, psa);
    if (byn != byp) {
        /* The number is bound to another peer, or the peer to another number
         * (also during the cool-down after expiry: RFC 8656 §12). */
        reply_error(s, t, req, 400, "Channel already bound differently", a);
        return;
    }
    if (!byn) {
        /* Reuse a slot whose cool-down is over, else grow. */
        for (unsigned i = 0; i < al->nchans && !byn; i++)
            if (al->chans[i].expires + TURN_CHANNEL_COOLDOWN * 1000ull <= now)
                byn = &al->chans[i];
        if (!byn) {
            if (al->nchans >= TURN_MAX_CHANNELS) {
                reply_error(s, t, req, 508, "Too Many Channels", a);
                return;
            }
            struct turn_chan *c = realloc(al->chans, (al->nchans + 1u) * sizeof *c);
            if (!c) {
                reply_error(s, t, req, 508, "Insufficient Capacity", a);
                return;
            }
            al->chans = c;
            byn = &c[al->nchans++];
        }
    }
    if (perm_install(al, psa, now) < 0) {
        reply_error(s, t, req, 508, "Too Many Permissions", a);
        return;
    }
    byn->num = num;
    sa_copy(&byn->peer, psa);
    byn->expires = now + TURN_CHANNEL_LIFETIME * 1000ull;
    struct stun_enc e;
    stun_enc_init(&e, s->out, sizeof s->out, TURN_CHANNEL_BIND | STUN_SUCCESS, req->tid);
    finish_reply(s, t, req, &e, a);
}

static void handle_send(struct turn_server *s, const struct turn_tuple *t,
                        const struct stun_msg *ind, uint64_t now)
{
    struct turn_alloc *al = alloc_find(s, t);
    const struct stun_attr *pa = stun_attr_find(ind, TURN_A_XOR_PEER_ADDRESS);
    const struct stun_attr *d = stun_attr_find(ind, TURN_A_DATA);
    struct sockaddr_storage peer;
    if (!al || !pa || !d || stun_attr_xor_addr(ind, pa, &peer) < 0 ||
        !perm_find(al, (const struct sockaddr *)&peer, now) ||
        !bw_allow(s, al, d->len, now)) {
        s->stats.dropped++;
        return;
    }
    s->io->relay_send(s->io_ctx, al->relay, (const struct sockaddr *)&peer, d->val, d->len);
    s->stats.relayed_to_peer++;
}

static void handle_channel_data(struct turn_server *s, const struct turn_tuple *t,
                                const uint8_t *p, size_t n)
{
    if (n < 4) {
        s->stats.dropped++;
        return;
    }
    uint16_t num = (uint16_t)(p[0] << 8 | p[1]), len = (uint16_t)(p[2] << 8 | p[3]);
    struct turn_alloc *al = alloc_find(s, t);
    uint64_t now = clock_now(&s->mono);
    struct turn_chan *c = al ? chan_by_num(al, num) : NULL;
    if (!c || len > n - 4 || c->expires <= now || !perm_find(al, &c->peer.sa, now) ||
        !bw_allow(s, al, len, now)) {
        s->stats.dropped++;
        return;
    }
    s->io->relay_send(s->io_ctx, al->relay, &c->peer.sa, p + 4, len);
    s->stats.relayed_to_peer++;
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */

/* Comprehension-required attributes we understand (in a request of method). */
static bool known_attr(uint16_t type, uint16_t method)
{
    switch (type) {
    case STUN_A_MAPPED_ADDRESS:
    case STUN_A_USERNAME:
    case STUN_A_MESSAGE_INTEGRITY:
    case STUN_A_ERROR_CODE:
    case STUN_A_UNKNOWN_ATTRIBUTES:
    case TURN_A_CHANNEL_NUMBER:
    case TURN_A_LIFETIME:
    case TURN_A_XOR_PEER_ADDRESS:
    case TURN_A_DATA:
    case STUN_A_REALM:
    case STUN_A_NONCE:
    case TURN_A_XOR_RELAYED_ADDRESS:
    case TURN_A_REQUESTED_ADDRESS_FAMILY:
    case TURN_A_EVEN_PORT:
    case TURN_A_REQUESTED_TRANSPORT:
    case STUN_A_MESSAGE_INTEGRITY_SHA256:
    case STUN_A_XOR_MAPPED_ADDRESS:
    case TURN_A_RESERVATION_TOKEN:
    case STUN_A_PRIORITY:
    case STUN_A_USE_CANDIDATE:
        return true;
    case TURN_A_DONT_FRAGMENT:
        /* We cannot set DF on relayed datagrams: unknown in Allocate (RFC 8656 §7.2). */
        return method != TURN_ALLOCATE;
    default:
        return type >= 0x8000;
    }
}

static void handle_request(struct turn_server *s, const struct turn_tuple *t,
                           const struct stun_msg *req)
{
    uint16_t unknown[16];
    size_t nu = 0;
    for (size_t i = 0; i < req->nattrs && nu < 16; i++)
        if (!known_attr(req->attrs[i].type, req->method))
            unknown[nu++] = req->attrs[i].type;
    if (nu) {
        struct stun_enc e;
        stun_enc_init(&e, s->out, sizeof s->out, (uint16_t)(req->type | STUN_ERROR), req->tid);
        stun_enc_error(&e, 420, "Unknown Attribute");
        stun_enc_unknown(&e, unknown, nu);
        finish_reply(s, t, req, &e, NULL);
        return;
    }
    if (req->method == STUN_BINDING) {
        struct stun_enc e;
        stun_enc_init(&e, s->out, sizeof s->out, STUN_BINDING | STUN_SUCCESS, req->tid);
        stun_enc_xor_addr(&e, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)&t->client);
        finish_reply(s, t, req, &e, NULL);
        return;
    }
    if (req->method != TURN_ALLOCATE && req->method != TURN_REFRESH &&
        req->method != TURN_CREATE_PERMISSION && req->method != TURN_CHANNEL_BIND) {
        reply_error(s, t, req, 400, "Unknown method", NULL);
        return;
    }
    if (req->fp >= 0 && !stun_check_fingerprint(req))
        return; /* not for us (RFC 8489 §7.3): silently dropped */
    struct auth a;
    if (!authenticate(s, t, req, &a))
        return;
    uint64_t now = clock_now(&s->mono);
    switch (req->method) {
    case TURN_ALLOCATE:
        handle_allocate(s, t, req, &a, now);
        break;
    case TURN_REFRESH:
        handle_refresh(s, t, req, &a, now);
        break;
    case TURN_CREATE_PERMISSION:
        handle_create_permission(s, t, req, &a, now);
        break;
    default:
        handle_channel_bind(s, t, req, &a, now);
        break;
    }
}

/* See stun.h. */
int turn_client_input(struct turn_server *s, const struct turn_tuple *t, const uint8_t *p,
                      size_t n)
{
    if (n >= 4 && (p[0] & 0xC0) == 0x40) {
        handle_channel_data(s, t, p, n);
        return 0;
    }
    struct stun_msg m;
    int rc = stun_decode(p, n, &m);
    if (rc < 0) {
        s->stats.dropped++;
        return -EPROTO;
    }
    if (m.cls == STUN_REQUEST)
        handle_request(s, t, &m);
    else if (m.cls == STUN_INDICATION && m.method == TURN_SEND)
        handle_send(s, t, &m, clock_now(&s->mono));
    /* Other indications and all responses: nothing to do. */
    return 0;
}

/* See stun.h. */
void turn_peer_input(struct turn_server *s, void *alloc, const struct sockaddr *peer,
                     const uint8_t *p, size_t n)
{
    struct turn_alloc *al = alloc;
    uint64_t now = clock_now(&s->mono);
    if (n > 65535 || !perm_find(al, peer, now) || !bw_allow(s, al, n, now)) {
        s->stats.dropped++;
        return;
    }
    struct turn_tuple t;
    t.transport = al->transport;
    memcpy(&t.client, &al->client, sizeof al->client);
    memcpy(&t.local, &al->local, sizeof al->local);
    t.conn = al->conn;
    struct turn_chan *c = chan_by_peer(al, peer);
    if (c && c->expires > now) {
        uint8_t *o = s->out;
        o[0] = (uint8_t)(c->num >> 8);
        o[1] = (uint8_t)c->num;
        o[2] = (uint8_t)(n >> 8);
        o[3] = (uint8_t)n;
        memcpy(o + 4, p, n);
        size_t len = 4 + n;
        if (al->transport == TRANSPORT_TCP)
            while (len % 4)
                o[len++] = 0;
        s->io->send_client(s->io_ctx, &t, o, len);
    } else {
        uint8_t tid[12];
        random_bytes(tid, sizeof tid);
        struct stun_enc e;
        stun_enc_init(&e, s->out, sizeof s->out, TURN_DATA | STUN_INDICATION, tid);
        stun_enc_xor_addr(&e, TURN_A_XOR_PEER_ADDRESS, peer);
        stun_enc_attr(&e, TURN_A_DATA, p, n);
        send_out(s, &t, &e);
    }
    s->stats.relayed_to_client++;
}

/* See stun.h. */
void turn_conn_closed(struct turn_server *s, void *conn)
{
    struct turn_alloc *al = map_get_int(s->by_conn, (uintptr_t)conn);
    if (al)
        alloc_free(s, al);
}

/* See stun.h. */
void turn_server_tick(struct turn_server *s)
{
    uint64_t now = clock_now(&s->mono);
    resv_expire(s->sh, now);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(s->by_tuple, &it, &e)) {
        struct turn_alloc *al = e.val;
        if (al->expires <= now) {
            log_debug(MOD, "allocation of %s expired", al->user);
            map_del_current(s->by_tuple, &it);
            al->keysz = 0; /* already out of by_tuple */
            if (al->transport == TRANSPORT_TCP)
                map_del_int(s->by_conn, (uintptr_t)al->conn);
            al->transport = TRANSPORT_UDP;
            alloc_free(s, al);
            continue;
        }
        /* Drop permissions and channels that are over (channels after the cool-down). */
        for (unsigned i = 0; i < al->nperms;)
            if (al->perms[i].expires <= now)
                al->perms[i] = al->perms[--al->nperms];
            else
                i++;
        for (unsigned i = 0; i < al->nchans;)
            if (al->chans[i].expires + TURN_CHANNEL_COOLDOWN * 1000ull <= now)
                al->chans[i] = al->chans[--al->nchans];
            else
                i++;
    }
}

/* See stun.h. */
int turn_server_new(struct turn_server **out, struct turn_shared *sh, const struct turn_io *io,
                    void *io_ctx, const struct clock_src *mono, const struct clock_src *wall)
{
    struct turn_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->sh = sh;
    s->io = io;
    s->io_ctx = io_ctx;
    s->mono = *mono;
    s->wall = *wall;
    if (map_new(&s->by_tuple, MAP_KEY_STR, 64) < 0 || map_new(&s->by_conn, MAP_KEY_INT, 16) < 0) {
        map_free(s->by_tuple);
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

/* See stun.h. */
void turn_server_free(struct turn_server *s)
{
    if (!s)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(s->by_tuple, &it, &e)) {
        struct turn_alloc *al = e.val;
        map_del_current(s->by_tuple, &it);
        al->keysz = 0;
        if (al->transport == TRANSPORT_TCP)
            map_del_int(s->by_conn, (uintptr_t)al->conn);
        al->transport = TRANSPORT_UDP;
        alloc_free(s, al);
    }
    map_free(s->by_tuple);
    map_free(s->by_conn);
    free(s);
}

/* See stun.h. */
size_t turn_server_count(const struct turn_server *s)
{
    return map_count(s->by_tuple);
}

/* See stun.h. */
const struct turn_stats *turn_server_stats(const struct turn_server *s)
{
    return &s->stats;
}

/* See stun.h. */
bool turn_server_has_conn(const struct turn_server *s, void *conn)
{
    return map_get_int(s->by_conn, (uintptr_t)conn) != NULL;
}

/*
 * TURN core state machine, driven with injected clocks and a fake io:
 * allocation, retransmission, 437/438/441/442/486/508/403/443/420, refresh
 * and expiry, permission timeout, channel binding and rebinding rules,
 * Send/Data and ChannelData relaying, REST credentials, bandwidth.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "stun/stun.h"

#define WALL0 1800000000000ull /* ms */

struct fake {
    uint64_t mono, wall;
    uint8_t last[70000];
    size_t last_len;
    int nsent;
    int relays_open, relay_port;
    int fail_relay; /* errno to return from relay_open */
    struct sockaddr_storage sent_peer;
    uint8_t sent_data[70000];
    size_t sent_len;
    int nrelayed;
    void *alloc; /* the last relay's allocation */
    struct turn_shared *sh;
    struct turn_server *s;
    struct config cfg;
    int lookups;
    int reserved_open, adopted;
};

static uint64_t mono_now(void *c)
{
    return ((struct fake *)c)->mono;
}

static uint64_t wall_now(void *c)
{
    return ((struct fake *)c)->wall;
}

static void f_send(void *ctx, const struct turn_tuple *t, const uint8_t *p, size_t n)
{
    struct fake *f = ctx;
    memcpy(f->last, p, n);
    f->last_len = n;
    f->nsent++;
}

static int f_relay_open(void *ctx, void *alloc, int family, bool even, int *reserve_fd,
                        int adopt_fd, void **handle, struct sockaddr_storage *addr)
{
    struct fake *f = ctx;
    if (f->fail_relay)
        return -f->fail_relay;
    if (adopt_fd >= 0) {
        f->adopted = adopt_fd;
        f->reserved_open--;
    }
    if (reserve_fd) {
        f->relay_port += f->relay_port % 2; /* even */
        *reserve_fd = 1000 + f->relay_port + 1;
        f->reserved_open++;
    }
    memset(addr, 0, sizeof *addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)addr;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, "192.0.2.10", &a->sin_addr);
        a->sin_port = htons((uint16_t)(20000 + f->relay_port++));
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)addr;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, "2001:db8::10", &a->sin6_addr);
        a->sin6_port = htons((uint16_t)(20000 + f->relay_port++));
    }
    f->relays_open++;
    f->alloc = alloc;
    *handle = f;
    return 0;
}

static void f_reserve_close(void *ctx, int fd)
{
    ((struct fake *)ctx)->reserved_open--;
}

static void f_relay_close(void *ctx, void *handle)
{
    ((struct fake *)ctx)->relays_open--;
}

static void f_relay_send(void *ctx, void *handle, const struct sockaddr *peer, const uint8_t *p,
                         size_t n)
{
    struct fake *f = ctx;
    memcpy(&f->sent_peer, peer,
           peer->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    memcpy(f->sent_data, p, n);
    f->sent_len = n;
    f->nrelayed++;
}

static int f_lookup(void *ctx, const char *user, const char *realm, uint8_t key[16])
{
    struct fake *f = ctx;
    f->lookups++;
    if (strcmp(user, "storeuser") != 0)
        return -ENOENT;
    stun_long_term_key(str_cstr(user), str_cstr(realm), STR("storepw"), key);
    return 0;
}

static const struct turn_io fio = { .send_client = f_send,
                                    .relay_open = f_relay_open,
                                    .reserve_close = f_reserve_close,
                                    .relay_close = f_relay_close,
                                    .relay_send = f_relay_send };

static struct fake *setup(const char *const *sets)
{
    static struct fake f;
    memset(&f, 0, sizeof f);
    f.mono = 1000000;
    f.wall = WALL0;
    char err[256];
    assert_int_equal(config_init(&f.cfg), 0);
    assert_int_equal(config_set_key(&f.cfg, "turn", "realm", "example.org", err, sizeof err), 0);
    assert_int_equal(
        config_set_key(&f.cfg, "turn", "users", "alice:pw, bob:pw2", err, sizeof err), 0);
    for (; sets && *sets; sets += 3)
        assert_int_equal(config_set_key(&f.cfg, sets[0], sets[1], sets[2], err, sizeof err), 0);
    assert_int_equal(turn_shared_new(&f.sh, &f.cfg, f_lookup, &f), 0);
    struct clock_src mono = { mono_now, &f }, wall = { wall_now, &f };
    assert_int_equal(turn_server_new(&f.s, f.sh, &fio, &f, &mono, &wall), 0);
    return &f;
}

static void teardown(struct fake *f)
{
    turn_server_free(f->s);
    assert_int_equal(f->relays_open, 0);
    assert_int_equal(turn_shared_allocations(f->sh), 0);
    turn_shared_free(f->sh);
    assert_int_equal(f->reserved_open, 0);
    config_free(&f->cfg);
}

static struct turn_tuple tuple(int port, enum transport tr)
{
    struct turn_tuple t;
    memset(&t, 0, sizeof t);
    t.transport = tr;
    struct sockaddr_in *c = (struct sockaddr_in *)&t.client, *l = (struct sockaddr_in *)&t.local;
    c->sin_family = l->sin_family = AF_INET;
    inet_pton(AF_INET, "198.51.100.1", &c->sin_addr);
    c->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "192.0.2.10", &l->sin_addr);
    l->sin_port = htons(3478);
    t.conn = (void *)(uintptr_t)(tr == TRANSPORT_TCP ? port : 1);
    return t;
}

static struct sockaddr_storage addr(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        a->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        a->sin_port = htons((uint16_t)port);
    }
    return ss;
}

/* Request options. */
struct req {
    uint16_t method;
    const char *user, *pass;
    const char *nonce; /* NULL: the one from the last 401/438 */
    bool no_auth;
    int transport;     /* REQUESTED-TRANSPORT protocol (0 = 17 for Allocate) */
    int family;        /* REQUESTED-ADDRESS-FAMILY (0 none) */
    int64_t lifetime;  /* 0 none */
    bool zero_life;    /* LIFETIME 0 */
    int channel;       /* CHANNEL-NUMBER (0 none) */
    const char *peer;  /* XOR-PEER-ADDRESS ip */
    int peer_port;
    uint16_t extra;    /* an extra empty attribute of this type */
    bool even_r;       /* EVEN-PORT with the R bit */
    uint64_t token;    /* RESERVATION-TOKEN */
    uint8_t tid0;
};

static char nonce[64];
static uint8_t tidctr;

/* Sends r on t; returns the response code (0 = success, -1 = no answer). */
static int send_req(struct fake *f, const struct turn_tuple *t, struct req r)
{
    uint8_t buf[512], tid[12];
    memset(tid, r.tid0 ? r.tid0 : ++tidctr, sizeof tid);
    struct stun_enc e;
    stun_enc_init(&e, buf, sizeof buf, r.method, tid);
    if (r.method == TURN_ALLOCATE) {
        uint8_t rt[4] = { (uint8_t)(r.transport ? r.transport : 17), 0, 0, 0 };
        stun_enc_attr(&e, TURN_A_REQUESTED_TRANSPORT, rt, 4);
    }
    if (r.family) {
        uint8_t fa[4] = { (uint8_t)r.family, 0, 0, 0 };
        stun_enc_attr(&e, TURN_A_REQUESTED_ADDRESS_FAMILY, fa, 4);
    }
    if (r.lifetime > 0 || r.zero_life)
        stun_enc_u32(&e, TURN_A_LIFETIME, (uint32_t)r.lifetime);
    if (r.channel)
        stun_enc_u32(&e, TURN_A_CHANNEL_NUMBER, (uint32_t)r.channel << 16);
    if (r.peer) {
        struct sockaddr_storage p = addr(r.peer, r.peer_port ? r.peer_port : 5000);
        stun_enc_xor_addr(&e, TURN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&p);
    }
    if (r.extra)
        stun_enc_attr(&e, r.extra, NULL, 0);
    if (r.even_r)
        stun_enc_attr(&e, TURN_A_EVEN_PORT, "\x80", 1);
    if (r.token) {
        uint8_t tok[8];
        for (int i = 0; i < 8; i++)
            tok[i] = (uint8_t)(r.token >> (56 - 8 * i));
        stun_enc_attr(&e, TURN_A_RESERVATION_TOKEN, tok, 8);
    }
    uint8_t key[16];
    if (!r.no_auth) {
        const char *user = r.user ? r.user : "alice", *pass = r.pass ? r.pass : "pw";
        stun_enc_attr(&e, STUN_A_USERNAME, user, strlen(user));
        stun_enc_attr(&e, STUN_A_REALM, "example.org", 11);
        const char *n = r.nonce ? r.nonce : nonce;
        stun_enc_attr(&e, STUN_A_NONCE, n, strlen(n));
        stun_long_term_key(str_cstr(user), STR("example.org"), str_cstr(pass), key);
        stun_enc_integrity(&e, key, 16);
    }
    stun_enc_fingerprint(&e);
    int n = stun_enc_finish(&e);
    assert_true(n > 0);
    int before = f->nsent;
    turn_client_input(f->s, t, buf, (size_t)n);
    if (f->nsent == before)
        return -1;
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    assert_memory_equal(m.tid, tid, 12);
    assert_true(stun_check_fingerprint(&m));
    const struct stun_attr *na = stun_attr_find(&m, STUN_A_NONCE);
    if (na && na->len < sizeof nonce) {
        memcpy(nonce, na->val, na->len);
        nonce[na->len] = 0;
    }
    if (m.cls == STUN_SUCCESS) {
        if (!r.no_auth)
            assert_true(stun_check_integrity(&m, key, 16, false));
        return 0;
    }
    int code;
    str reason;
    assert_int_equal(m.cls, STUN_ERROR);
    assert_int_equal(stun_attr_error(stun_attr_find(&m, STUN_A_ERROR_CODE), &code, &reason), 0);
    return code;
}

#define REQ(...) ((struct req){ __VA_ARGS__ })

/* An allocation for alice on t (gets a nonce first). */
static void allocate(struct fake *f, const struct turn_tuple *t)
{
    assert_int_equal(send_req(f, t, REQ(.method = TURN_ALLOCATE, .no_auth = true)), 401);
    assert_int_equal(send_req(f, t, REQ(.method = TURN_ALLOCATE)), 0);
}

static uint32_t last_lifetime(struct fake *f)
{
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    uint32_t v = 0;
    assert_int_equal(stun_attr_u32(stun_attr_find(&m, TURN_A_LIFETIME), &v), 0);
    return v;
}

static void test_allocate(void **state)
{
    (void)state;
    struct fake *f = setup(NULL);
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    /* No credentials: 401 with REALM and NONCE, no MESSAGE-INTEGRITY. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .no_auth = true)), 401);
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    assert_non_null(stun_attr_find(&m, STUN_A_REALM));
    assert_true(m.mi < 0);
    /* Wrong password, unknown user: 401. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .pass = "bad")), 401);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .user = "zed")), 401);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .transport = 6)), 442);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .extra = TURN_A_DONT_FRAGMENT)),
                     420);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .family = 3)), 440);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .tid0 = 0xAA)), 0);
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    struct sockaddr_storage relay;
    assert_int_equal(
        stun_attr_xor_addr(&m, stun_attr_find(&m, TURN_A_XOR_RELAYED_ADDRESS), &relay), 0);
    assert_int_equal(relay.ss_family, AF_INET);
    assert_int_equal(last_lifetime(f), 600);
    assert_int_equal(turn_server_count(f->s), 1);
    /* A retransmission gets the same answer; a new Allocate on the tuple 437. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .tid0 = 0xAA)), 0);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE)), 437);
    assert_int_equal(turn_server_count(f->s), 1);
    /* Another user on the same allocation: 441. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH, .user = "bob", .pass = "pw2")),
                     441);
    /* Refresh without an allocation: 437. */
    struct turn_tuple t2 = tuple(40001, TRANSPORT_UDP);
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_REFRESH)), 437);
    /* IPv6 relay. */
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_ALLOCATE, .family = 2)), 0);
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    assert_int_equal(
        stun_attr_xor_addr(&m, stun_attr_find(&m, TURN_A_XOR_RELAYED_ADDRESS), &relay), 0);
    assert_int_equal(relay.ss_family, AF_INET6);
    /* A refresh that names the other family: 443. */
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_REFRESH, .family = 1)), 443);
    teardown(f);
}

static void test_lifetimes(void **state)
{
    (void)state;
    struct fake *f = setup(NULL);
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .no_auth = true)), 401);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .lifetime = 99999)), 0);
    assert_int_equal(last_lifetime(f), 3600); /* clamped to max_lifetime */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH, .lifetime = 10)), 0);
    assert_int_equal(last_lifetime(f), 600); /* raised to the default */
    f->mono += 599000;
    turn_server_tick(f->s);
    assert_int_equal(turn_server_count(f->s), 1);
    f->mono += 2000;
    turn_server_tick(f->s);
    assert_int_equal(turn_server_count(f->s), 0);
    assert_int_equal(f->relays_open, 0);
    /* Refresh to 0 deletes at once. */
    allocate(f, &t);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH, .zero_life = true)), 0);
    assert_int_equal(last_lifetime(f), 0);
    assert_int_equal(turn_server_count(f->s), 0);
    teardown(f);
}

static void test_stale_nonce(void **state)
{
    (void)state;
    struct fake *f = setup((const char *const[]){ "turn", "nonce_lifetime", "60", NULL });
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    allocate(f, &t);
    f->wall += 61000;
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH)), 438);
    /* The 438 carried a fresh nonce: the retry works. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH)), 0);
    /* A forged nonce is stale too. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH,
                                         .nonce = "ffffffffffffffff0000000000000000")),
                     438);
    teardown(f);
}

static void test_quota(void **state)
{
    (void)state;
    struct fake *f = setup((const char *const[]){ "turn", "max_allocations_per_user", "2",
                                                  "turn", "max_allocations", "3", NULL });
    struct turn_tuple t1 = tuple(1, TRANSPORT_UDP), t2 = tuple(2, TRANSPORT_UDP),
                      t3 = tuple(3, TRANSPORT_UDP), t4 = tuple(4, TRANSPORT_UDP);
    allocate(f, &t1);
    allocate(f, &t2);
    assert_int_equal(send_req(f, &t3, REQ(.method = TURN_ALLOCATE)), 486);
    assert_int_equal(send_req(f, &t3, REQ(.method = TURN_ALLOCATE, .user = "bob", .pass = "pw2")),
                     0);
    assert_int_equal(send_req(f, &t4, REQ(.method = TURN_ALLOCATE, .user = "bob", .pass = "pw2")),
                     486); /* the global quota */
    assert_int_equal(turn_shared_allocations(f->sh), 3);
    /* Freed allocations give their quota back. */
    assert_int_equal(send_req(f, &t1, REQ(.method = TURN_REFRESH, .zero_life = true)), 0);
    assert_int_equal(send_req(f, &t4, REQ(.method = TURN_ALLOCATE)), 0);
    /* No relay port: 508. */
    struct turn_tuple t5 = tuple(5, TRANSPORT_UDP);
    assert_int_equal(send_req(f, &t5, REQ(.method = TURN_REFRESH, .zero_life = true)), 437);
    assert_int_equal(send_req(f, &t4, REQ(.method = TURN_REFRESH, .zero_life = true)), 0);
    f->fail_relay = EADDRINUSE;
    assert_int_equal(send_req(f, &t5, REQ(.method = TURN_ALLOCATE)), 508);
    assert_int_equal(turn_shared_allocations(f->sh), 2);
    f->fail_relay = 0;
    teardown(f);
}

static int peer_input(struct fake *f, const char *ip, int port, const char *data)
{
    struct sockaddr_storage p = addr(ip, port);
    int before = f->nsent;
    turn_peer_input(f->s, f->alloc, (struct sockaddr *)&p, (const uint8_t *)data, strlen(data));
    return f->nsent - before;
}

static void test_permissions(void **state)
{
    (void)state;
    struct fake *f = setup(NULL);
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    allocate(f, &t);
    /* Denied by default: private, loopback; family mismatch 443; none given 400. */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "10.0.0.1")),
                     403);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "127.0.0.1")),
                     403);
    assert_int_equal(
        send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "2001:db8::1")), 443);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION)), 400);
    /* The server's own addresses are denied too. */
    struct sockaddr_storage own = addr("203.0.113.77", 3478);
    turn_shared_deny_addr(f->sh, (struct sockaddr *)&own);
    assert_int_equal(
        send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "203.0.113.77")), 403);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CHANNEL_BIND, .channel = 0x4000,
                                         .peer = "203.0.113.77")),
                     403);
    /* No permission yet: peer data dropped. */
    assert_int_equal(peer_input(f, "203.0.113.5", 7000, "hello"), 0);
    assert_int_equal(
        send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "203.0.113.5")), 0);
    /* Any port of the permitted IP: a Data indication. */
    assert_int_equal(peer_input(f, "203.0.113.5", 7000, "hello"), 1);
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    assert_int_equal(m.method, TURN_DATA);
    assert_int_equal(m.cls, STUN_INDICATION);
    const struct stun_attr *d = stun_attr_find(&m, TURN_A_DATA);
    assert_int_equal(d->len, 5);
    assert_memory_equal(d->val, "hello", 5);
    /* Send indication out. */
    uint8_t buf[128], tid[12] = { 9 };
    struct stun_enc e;
    stun_enc_init(&e, buf, sizeof buf, TURN_SEND | STUN_INDICATION, tid);
    struct sockaddr_storage p = addr("203.0.113.5", 7001);
    stun_enc_xor_addr(&e, TURN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&p);
    stun_enc_attr(&e, TURN_A_DATA, "out", 3);
    int n = stun_enc_finish(&e);
    turn_client_input(f->s, &t, buf, (size_t)n);
    assert_int_equal(f->nrelayed, 1);
    assert_int_equal(f->sent_len, 3);
    /* Permissions time out after 300 s unless refreshed. */
    f->mono += 299000;
    assert_int_equal(peer_input(f, "203.0.113.5", 7000, "x"), 1);
    f->mono += 2000;
    assert_int_equal(peer_input(f, "203.0.113.5", 7000, "x"), 0);
    turn_client_input(f->s, &t, buf, (size_t)n);
    assert_int_equal(f->nrelayed, 1);
    /* Too many permissions: 508, all or nothing. */
    char ip[32];
    for (int i = 0; i < TURN_MAX_PERMISSIONS; i++) {
        snprintf(ip, sizeof ip, "198.51.100.%d", i + 1);
        assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = ip)), 0);
    }
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "203.0.113.9")),
                     508);
    teardown(f);
}

static void test_allow_peers(void **state)
{
    (void)state;
    struct fake *f = setup((const char *const[]){ "turn", "allow_peers", "127.0.0.0/8", NULL });
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    allocate(f, &t);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "127.0.0.1")),
                     0);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "10.0.0.1")),
                     403);
    teardown(f);
}

static void channel_data(struct fake *f, const struct turn_tuple *t, uint16_t ch, const char *s)
{
    uint8_t b[64];
    size_t n = strlen(s);
    b[0] = (uint8_t)(ch >> 8);
    b[1] = (uint8_t)ch;
    b[2] = 0;
    b[3] = (uint8_t)n;
    memcpy(b + 4, s, n);
    turn_client_input(f->s, t, b, 4 + n);
}

static void test_channels(void **state)
{
    (void)state;
    struct fake *f = setup(NULL);
    struct turn_tuple t = tuple(40000, TRANSPORT_TCP);
    allocate(f, &t);
    struct req bind = REQ(.method = TURN_CHANNEL_BIND, .channel = 0x4001, .peer = "203.0.113.5",
                          .peer_port = 7000);
    assert_int_equal(send_req(f, &t, bind), 0);
    /* Peer data on the channel: ChannelData, padded to 4 on TCP. */
    assert_int_equal(peer_input(f, "203.0.113.5", 7000, "hello"), 1);
    assert_int_equal(f->last_len, 12);
    assert_int_equal(f->last[0] << 8 | f->last[1], 0x4001);
    assert_int_equal(f->last[3], 5);
    assert_memory_equal(f->last + 4, "hello", 5);
    /* The same IP from another port: not the channel's peer → Data indication. */
    assert_int_equal(peer_input(f, "203.0.113.5", 7001, "hi"), 1);
    assert_int_equal(f->last[0] & 0xC0, 0);
    /* ChannelData from the client goes to the bound peer. */
    channel_data(f, &t, 0x4001, "data");
    assert_int_equal(f->nrelayed, 1);
    struct sockaddr_storage want = addr("203.0.113.5", 7000);
    assert_memory_equal(&f->sent_peer, &want, sizeof(struct sockaddr_in));
    channel_data(f, &t, 0x4002, "data"); /* unbound: dropped */
    assert_int_equal(f->nrelayed, 1);
    /* Rebinding rules: same pair refreshes; number or peer bound elsewhere → 400. */
    assert_int_equal(send_req(f, &t, bind), 0);
    bind.peer_port = 7001;
    assert_int_equal(send_req(f, &t, bind), 400);
    bind.peer_port = 7000;
    bind.channel = 0x4002;
    assert_int_equal(send_req(f, &t, bind), 400);
    bind.channel = 0x3FFF;
    assert_int_equal(send_req(f, &t, bind), 400);
    bind.channel = 0x4001;
    /* (the allocation itself is refreshed to outlive the channel) */
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_REFRESH, .lifetime = 3600)), 0);
    /* After 600 s the channel is over, but the number stays reserved 300 s more. */
    f->mono += 601000;
    turn_server_tick(f->s);
    channel_data(f, &t, 0x4001, "late");
    assert_int_equal(f->nrelayed, 1);
    bind.peer_port = 7002;
    assert_int_equal(send_req(f, &t, bind), 400);
    f->mono += 300000;
    turn_server_tick(f->s);
    assert_int_equal(send_req(f, &t, bind), 0);
    /* Closing the TCP connection frees the allocation. */
    turn_conn_closed(f->s, t.conn);
    assert_int_equal(turn_server_count(f->s), 0);
    teardown(f);
}

static void test_rest_and_store(void **state)
{
    (void)state;
    struct fake *f = setup((const char *const[]){ "turn", "rest_secret", "north", NULL });
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    char user[64], pw[32];
    snprintf(user, sizeof user, "%llu:carol", (unsigned long long)(WALL0 / 1000 + 3600));
    turn_rest_password(STR("north"), str_cstr(user), pw);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .no_auth = true)), 401);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .user = user, .pass = "nope")),
                     401);
    assert_int_equal(send_req(f, &t, REQ(.method = TURN_ALLOCATE, .user = user, .pass = pw)), 0);
    /* Expired: refused even with the right password. */
    struct turn_tuple t2 = tuple(40001, TRANSPORT_UDP);
    snprintf(user, sizeof user, "%llu:carol", (unsigned long long)(WALL0 / 1000 - 1));
    turn_rest_password(STR("north"), str_cstr(user), pw);
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_ALLOCATE, .user = user, .pass = pw)),
                     401);
    /* The store's users come through the lookup callback. */
    assert_int_equal(
        send_req(f, &t2, REQ(.method = TURN_ALLOCATE, .user = "storeuser", .pass = "storepw")), 0);
    assert_true(f->lookups > 0);
    teardown(f);
}

static void test_binding_and_bandwidth(void **state)
{
    (void)state;
    struct fake *f = setup(
        (const char *const[]){ "turn", "bandwidth_per_allocation", "1000", NULL });
    struct turn_tuple t = tuple(40000, TRANSPORT_UDP);
    assert_int_equal(send_req(f, &t, REQ(.method = STUN_BINDING, .no_auth = true)), 0);
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    struct sockaddr_storage got;
    assert_int_equal(
        stun_attr_xor_addr(&m, stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS), &got), 0);
    assert_memory_equal(&got, &t.client, sizeof(struct sockaddr_in));
    assert_int_equal(
        send_req(f, &t, REQ(.method = STUN_BINDING, .no_auth = true, .extra = 0x7F00)), 420);
    /* Unknown method: 400. */
    assert_int_equal(send_req(f, &t, REQ(.method = 0x000A, .no_auth = true)), 400);
    /* 1000 bytes/s: a burst of 1000, then drops, then refill. */
    allocate(f, &t);
    assert_int_equal(
        send_req(f, &t, REQ(.method = TURN_CREATE_PERMISSION, .peer = "203.0.113.5")), 0);
    char big[601];
    memset(big, 'x', 600);
    big[600] = 0;
    assert_int_equal(peer_input(f, "203.0.113.5", 1, big), 1);
    assert_int_equal(peer_input(f, "203.0.113.5", 1, big), 0);
    f->mono += 1000;
    assert_int_equal(peer_input(f, "203.0.113.5", 1, big), 1);
    assert_true(turn_server_stats(f->s)->dropped >= 1);
    /* Junk is dropped without an answer. */
    uint8_t junk[3] = { 1, 2, 3 };
    assert_int_equal(turn_client_input(f->s, &t, junk, 3), -EPROTO);
    teardown(f);
}

static void test_reservation(void **state)
{
    (void)state;
    struct fake *f = setup(NULL);
    struct turn_tuple t1 = tuple(1, TRANSPORT_UDP), t2 = tuple(2, TRANSPORT_UDP),
                      t3 = tuple(3, TRANSPORT_UDP), t4 = tuple(4, TRANSPORT_UDP);
    assert_int_equal(send_req(f, &t1, REQ(.method = TURN_ALLOCATE, .no_auth = true)), 401);
    assert_int_equal(send_req(f, &t1, REQ(.method = TURN_ALLOCATE, .even_r = true)), 0);
    struct stun_msg m;
    assert_true(stun_decode(f->last, f->last_len, &m) > 0);
    const struct stun_attr *tok = stun_attr_find(&m, TURN_A_RESERVATION_TOKEN);
    assert_non_null(tok);
    assert_int_equal(tok->len, 8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | tok->val[i];
    assert_int_equal(f->reserved_open, 1);
    /* A wrong token: 508; the right one: the reserved socket becomes the relay. */
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_ALLOCATE, .token = v ^ 1)), 508);
    assert_int_equal(send_req(f, &t2, REQ(.method = TURN_ALLOCATE, .token = v)), 0);
    assert_true(f->adopted > 1000);
    assert_int_equal(f->reserved_open, 0);
    /* Once taken it is gone. */
    assert_int_equal(send_req(f, &t3, REQ(.method = TURN_ALLOCATE, .token = v)), 508);
    /* A token with EVEN-PORT: 400. */
    assert_int_equal(send_req(f, &t3, REQ(.method = TURN_ALLOCATE, .token = v, .even_r = true)),
                     400);
    /* An unused reservation is closed after 30 s. */
    assert_int_equal(send_req(f, &t4, REQ(.method = TURN_ALLOCATE, .even_r = true)), 0);
    assert_int_equal(f->reserved_open, 1);
    f->mono += 31000;
    turn_server_tick(f->s);
    assert_int_equal(f->reserved_open, 0);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocate),    cmocka_unit_test(test_lifetimes),
        cmocka_unit_test(test_stale_nonce), cmocka_unit_test(test_quota),
        cmocka_unit_test(test_permissions), cmocka_unit_test(test_allow_peers),
        cmocka_unit_test(test_channels),    cmocka_unit_test(test_rest_and_store),
        cmocka_unit_test(test_binding_and_bandwidth), cmocka_unit_test(test_reservation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

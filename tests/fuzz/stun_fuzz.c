/*
 * libFuzzer target: the STUN decoder and the TURN core's message handling.
 *
 * Input: chunks separated by the bytes "\xff\xfe\xfd". The first byte of a
 * chunk picks what happens to the rest:
 *   0-5  a request/indication (Allocate, Refresh, CreatePermission,
 *        ChannelBind, Send, Binding) whose attributes are the chunk bytes,
 *        followed by valid USERNAME/REALM/NONCE and MESSAGE-INTEGRITY, so the
 *        fuzzer reaches past authentication;
 *   6    the bytes as peer data to the last allocation;
 *   7    the clock jumps chunk[1] * 10 s and the core ticks;
 *   else the bytes as they are from the client (decoder, ChannelData).
 * The client is on TCP when the input's last byte is odd, else on UDP.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "stun/stun.h"

struct fz {
    uint64_t now;
    uint8_t last[70000];
    size_t last_len;
    void *alloc;
    int port;
};

static uint64_t fz_now(void *c)
{
    return ((struct fz *)c)->now;
}

static void fz_send(void *ctx, const struct turn_tuple *t, const uint8_t *p, size_t n)
{
    struct fz *f = ctx;
    memcpy(f->last, p, n);
    f->last_len = n;
}

static int fz_open(void *ctx, void *alloc, int family, bool even, int *reserve_fd, int adopt_fd,
                   void **handle, struct sockaddr_storage *addr)
{
    struct fz *f = ctx;
    if (reserve_fd)
        *reserve_fd = 7; /* not a real fd: fz_reserve_close ignores it */
    memset(addr, 0, sizeof *addr);
    addr->ss_family = (sa_family_t)family;
    ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)(20000 + f->port++));
    *handle = f;
    f->alloc = alloc;
    return 0;
}

static void fz_reserve_close(void *ctx, int fd)
{
}

static void fz_close(void *ctx, void *handle)
{
    struct fz *f = ctx;
    f->alloc = NULL;
}

static void fz_relay_send(void *ctx, void *handle, const struct sockaddr *peer, const uint8_t *p,
                          size_t n)
{
}

static const struct turn_io fz_io = { .send_client = fz_send,
                                      .relay_open = fz_open,
                                      .reserve_close = fz_reserve_close,
                                      .relay_close = fz_close,
                                      .relay_send = fz_relay_send };
static struct config cfg;
static int ready;

static void get_nonce(struct fz *f, const uint8_t *p, size_t n, char *nonce, size_t cap)
{
    struct stun_msg m;
    if (stun_decode(p, n, &m) < 0)
        return;
    const struct stun_attr *a = stun_attr_find(&m, STUN_A_NONCE);
    if (a && a->len < cap) {
        memcpy(nonce, a->val, a->len);
        nonce[a->len] = 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        char err[128];
        config_init(&cfg);
        config_set_key(&cfg, "turn", "realm", "r", err, sizeof err);
        config_set_key(&cfg, "turn", "users", "u:p", err, sizeof err);
        config_set_key(&cfg, "turn", "allow_peers", "0.0.0.0/0, ::/0", err, sizeof err);
        config_set_key(&cfg, "turn", "max_allocations_per_user", "3", err, sizeof err);
        ready = 1;
    }
    /* The plain decoder over the whole input. */
    struct stun_msg m;
    if (stun_decode(data, size, &m) > 0) {
        for (size_t i = 0; i < m.nattrs; i++) {
            struct sockaddr_storage ss;
            uint32_t u;
            int code;
            str r;
            stun_attr_xor_addr(&m, &m.attrs[i], &ss);
            stun_attr_u32(&m.attrs[i], &u);
            stun_attr_error(&m.attrs[i], &code, &r);
        }
        stun_check_fingerprint(&m);
        stun_check_integrity(&m, (const uint8_t *)"k", 1, false);
        stun_check_integrity(&m, (const uint8_t *)"k", 1, true);
    }
    stun_frame_len(data, size, true);

    static struct fz f;
    memset(&f, 0, sizeof f);
    f.now = 1000000;
    struct turn_shared *sh;
    struct turn_server *s;
    struct clock_src clk = { fz_now, &f };
    if (turn_shared_new(&sh, &cfg, NULL, NULL) < 0)
        return 0;
    if (turn_server_new(&s, sh, &fz_io, &f, &clk, &clock_system) < 0) {
        turn_shared_free(sh);
        return 0;
    }
    struct turn_tuple t;
    memset(&t, 0, sizeof t);
    t.transport = size && (data[size - 1] & 1) ? TRANSPORT_TCP : TRANSPORT_UDP;
    struct sockaddr_in *c = (struct sockaddr_in *)&t.client;
    c->sin_family = AF_INET;
    c->sin_port = htons(4000);
    t.local.ss_family = AF_INET;
    t.conn = &f;

    /* A nonce to sign with. */
    char nonce[64] = "";
    uint8_t tid[12] = { 1 };
    uint8_t buf[70000];
    struct stun_enc e;
    stun_enc_init(&e, buf, sizeof buf, TURN_ALLOCATE, tid);
    turn_client_input(s, &t, buf, (size_t)stun_enc_finish(&e));
    get_nonce(&f, f.last, f.last_len, nonce, sizeof nonce);
    uint8_t key[16];
    stun_long_term_key(STR("u"), STR("r"), STR("p"), key);

    static const uint16_t types[] = { TURN_ALLOCATE, TURN_REFRESH, TURN_CREATE_PERMISSION,
                                      TURN_CHANNEL_BIND, TURN_SEND | STUN_INDICATION,
                                      STUN_BINDING };
    size_t off = 0;
    while (off < size) {
        size_t end = off;
        while (end + 3 <= size && memcmp(data + end, "\xff\xfe\xfd", 3) != 0)
            end++;
        if (end + 3 > size)
            end = size;
        const uint8_t *ch = data + off;
        size_t n = end - off;
        off = end + 3;
        if (n == 0)
            continue;
        uint8_t op = ch[0];
        if (op < 6) {
            size_t alen = (n - 1) & ~(size_t)3;
            if (alen > 60000)
                alen = 60000;
            tid[0]++;
            stun_enc_init(&e, buf, sizeof buf, types[op], tid);
            memcpy(buf + 20, ch + 1, alen);
            e.len += alen;
            buf[2] = (uint8_t)(alen >> 8);
            buf[3] = (uint8_t)alen;
            stun_enc_attr(&e, STUN_A_USERNAME, "u", 1);
            stun_enc_attr(&e, STUN_A_REALM, "r", 1);
            stun_enc_attr(&e, STUN_A_NONCE, nonce, strlen(nonce));
            stun_enc_integrity(&e, key, 16);
            int len = stun_enc_finish(&e);
            if (len > 0)
                turn_client_input(s, &t, buf, (size_t)len);
        } else if (op == 6 && f.alloc) {
            struct sockaddr_in p = { .sin_family = AF_INET, .sin_port = htons(5000) };
            p.sin_addr.s_addr = htonl(n > 1 ? ch[1] : 0);
            turn_peer_input(s, f.alloc, (struct sockaddr *)&p, ch + 1, n - 1);
        } else if (op == 7) {
            f.now += (n > 1 ? ch[1] : 1) * 10000ull;
            turn_server_tick(s);
        } else {
            turn_client_input(s, &t, ch + 1, n - 1);
        }
    }
    if (t.transport == TRANSPORT_TCP)
        turn_conn_closed(s, t.conn);
    turn_server_free(s);
    turn_shared_free(sh);
    return 0;
}

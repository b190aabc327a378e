/*
 * http/api — the JSON API under /api/v1 (docs/http-api.md):
 *
 *   POST /api/v1/login            {user, password} → a token and what a web client needs
 *   GET/PUT /api/v1/contacts      the roaming contact list
 *   GET /api/v1/history           archived messages with one party, newest page first
 *   GET/PUT /api/v1/presence-rules who may see the user's presence
 *
 * Tokens are stateless: base64url("1:<user>:<expiry>") "." base64url(HMAC-SHA256(key,
 * payload "\n" HA1)), the key derived from server.secret. The HA1 inside the MAC
 * revokes every token of a user whose password changes; a token of a deleted or
 * disabled user is refused (the credential table is read on every check).
 *
 * This file is the HTTP layer's one user of the store: it is a service on top of
 * the server, and reaches the database only through the store thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/clock.h"
#include "base/log.h"
#include "core/throttle.h"
#include "http/http_int.h"
#include "store/store.h"

#define CNT(hs, f) atomic_fetch_add_explicit(&(hs)->c.f, 1, memory_order_relaxed)
#define API_MAX_ITEMS 2000   /* entries in one PUT of contacts or rules */
#define HISTORY_MAX 200

int http__hmac_sha256(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    return HMAC(EVP_sha256(), key, (int)klen, d, n, out, &len) ? 0 : -EIO;
}

/* ---- base64url ---- */

static size_t b64url_enc(const uint8_t *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = a[v >> 18 & 63];
        out[o++] = a[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = 0;
    return o;
}

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes into out (cap bytes). Length or -EINVAL. */
static ssize_t b64url_dec(str in, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (in.len % 4 == 1)
        return -EINVAL;
    for (size_t i = 0; i < in.len; i++) {
        int v = b64v(in.s[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -EINVAL;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)o;
}

/* ---- tokens ---- */

static void token_mac(struct http_server *hs, str payload, const char *ha1, uint8_t mac[32])
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%.*s\n%s", STR_FMT(payload), ha1);
    http__hmac_sha256(hs->token_key, sizeof hs->token_key, buf, (size_t)n, mac);
}

/* A token for user, valid until exp (s). out: 256 bytes. */
static void token_make(struct http_server *hs, const char *user, const char *ha1, int64_t exp,
                       char *out)
{
    char payload[128];
    int n = snprintf(payload, sizeof payload, "1:%s:%lld", user, (long long)exp);
    uint8_t mac[32];
    token_mac(hs, str_make(payload, (size_t)n), ha1, mac);
    size_t o = b64url_enc((const uint8_t *)payload, (size_t)n, out);
    out[o++] = '.';
    b64url_enc(mac, 32, out + o);
}

int http_token_check(struct http_server *hs, str token, char *user_out)
{
    ssize_t dot = str_find_char(token, '.');
    if (dot <= 0 || token.len > 400)
        return -EACCES;
    uint8_t payload[160], mac[40];
    ssize_t pl = b64url_dec(str_sub(token, 0, (size_t)dot), payload, sizeof payload - 1);
    ssize_t ml = b64url_dec(str_skip(token, (size_t)dot + 1), mac, sizeof mac);
    if (pl < 5 || ml != 32 || memcmp(payload, "1:", 2) != 0)
        return -EACCES;
    str p = str_make((const char *)payload, (size_t)pl);
    str rest = str_skip(p, 2);
    ssize_t c = str_find_char(rest, ':');
    if (c <= 0)
        return -EACCES;
    str user = str_sub(rest, 0, (size_t)c);
    int64_t exp;
    if (!store_name_valid(user) || str_to_i64(str_skip(rest, (size_t)c + 1), &exp) < 0)
        return -EACCES;
    struct cred cr;
    if (!hs->deps.creds || store_creds_get(hs->deps.creds, user, &cr) < 0 || !cr.enabled)
        return -ENOENT;
    uint8_t want[32];
    token_mac(hs, p, cr.ha1_md5, want);
    if (CRYPTO_memcmp(want, mac, 32) != 0)
        return -EACCES;
    if (exp <= (int64_t)(clock_wall_ms() / 1000))
        return -ETIMEDOUT;
    str_copy(user_out, STORE_NAME_MAX + 1, user);
    return 0;
}

/* The token's user into user (65 bytes), or answers 401 and returns false. */
static bool authorized(struct http_ctx *x, char *user)
{
    struct http_server *hs = http_ctx_server(x);
    str t = http_ctx_bearer(x);
    if (!t.s) {
        http_ctx_add_header(x, "WWW-Authenticate", "Bearer realm=\"rtcd\"");
        http_reply_error(x, 401, "A token is required: Authorization: Bearer <token from "
                                 "POST /api/v1/login>");
        return false;
    }
    int rc = http_token_check(hs, t, user);
    if (rc < 0) {
        http_ctx_add_header(x, "WWW-Authenticate", "Bearer realm=\"rtcd\", error=\"invalid_token\"");
        http_reply_error(x, 401, "%s", rc == -ETIMEDOUT ? "The token has expired"
                                       : rc == -ENOENT ? "The token's user is disabled or deleted"
                                                       : "The token is not valid");
        return false;
    }
    return true;
}

/* The request body as a JSON document, or answers 400/415 and returns NULL. */
static json_t *body_json(struct http_ctx *x)
{
    str ct = http_ctx_header(x, "Content-Type");
    if (ct.s && !str_has_caseprefix(ct, STR("application/json"))) {
        http_reply_error(x, 415, "The body must be application/json");
        return NULL;
    }
    str b = http_ctx_body(x);
    json_error_t e;
    json_t *j = json_loadb(b.s, b.len, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        http_reply_error(x, 400, "The body is not JSON: %s (line %d, column %d)", e.text, e.line,
                         e.column);
    return j;
}

/* ---- login ---- */

/* The host part of the request's Host header (no port) into out. */
static void request_host(struct http_ctx *x, char *out, size_t cap)
{
    str h = http_ctx_header(x, "Host");
    if (!h.s || !h.len) {
        snprintf(out, cap, "127.0.0.1");
        return;
    }
    if (h.s[0] == '[') {
        ssize_t e = str_find_char(h, ']');
        h = e > 0 ? str_sub(h, 0, (size_t)e + 1) : h;
    } else {
        ssize_t c = str_find_char(h, ':');
        if (c > 0)
            h = str_sub(h, 0, (size_t)c);
    }
    for (size_t i = 0; i < h.len; i++)
        if (!(h.s[i] == '.' || h.s[i] == '-' || h.s[i] == ':' || h.s[i] == '[' || h.s[i] == ']' ||
              (h.s[i] >= '0' && h.s[i] <= '9') || ((h.s[i] | 32) >= 'a' && (h.s[i] | 32) <= 'z'))) {
            snprintf(out, cap, "127.0.0.1");
            return;
        }
    if (str_copy(out, cap, h) < 0)
        snprintf(out, cap, "127.0.0.1");
}

/* STUN and TURN servers from turn.listen, with TURN REST credentials when configured. */
static json_t *ice_servers(struct http_ctx *x, const char *user)
{
    struct http_server *hs = http_ctx_server(x);
    const struct config *cfg = hs->cfg;
    json_t *arr = json_array(), *stun = json_array(), *turn = json_array();
    char host[300];
    request_host(x, host, sizeof host);
    for (size_t i = 0; i < cfg->turn.listen.n; i++) {
        const struct listen_addr *la = &cfg->turn.listen.v[i];
        char a[64], uri[400];
        net_addr_str(&la->addr, a, sizeof a);
        static const uint8_t any6[16];
        bool wild = la->addr.ss_family == AF_INET
                        ? ((const struct sockaddr_in *)&la->addr)->sin_addr.s_addr == 0
                        : memcmp(&((const struct sockaddr_in6 *)&la->addr)->sin6_addr, any6,
                                 16) == 0;
        char hp[360];
        if (wild)
            snprintf(hp, sizeof hp, "%s:%u", host, net_addr_port(&la->addr));
        else
            snprintf(hp, sizeof hp, "%s", a);
        const char *tp = la->transport == TRANSPORT_UDP ? "udp" : "tcp";
        if (la->transport == TRANSPORT_TLS) {
            snprintf(uri, sizeof uri, "turns:%s?transport=tcp", hp);
        } else {
            snprintf(uri, sizeof uri, "turn:%s?transport=%s", hp, tp);
            if (la->transport == TRANSPORT_UDP) {
                char s[380];
                snprintf(s, sizeof s, "stun:%s", hp);
                json_array_append_new(stun, json_string(s));
            }
        }
        json_array_append_new(turn, json_string(uri));
    }
    if (json_array_size(stun))
        json_array_append_new(arr, json_pack("{s:o}", "urls", stun));
    else
        json_decref(stun);
    if (json_array_size(turn) && cfg->turn.rest_secret[0]) {
        /* TURN REST API: username "<expiry>:<user>", password base64(HMAC-SHA1) */
        char name[128], cred[64];
        long long exp = (long long)(clock_wall_ms() / 1000) + cfg->http.token_lifetime;
        snprintf(name, sizeof name, "%lld:%s", exp, user);
        uint8_t mac[20];
        unsigned ml = 20;
        HMAC(EVP_sha1(), cfg->turn.rest_secret, (int)strlen(cfg->turn.rest_secret),
             (const uint8_t *)name, strlen(name), mac, &ml);
        EVP_EncodeBlock((unsigned char *)cred, mac, 20);
        json_array_append_new(arr, json_pack("{s:o, s:s, s:s}", "urls", turn, "username", name,
                                             "credential", cred));
    } else {
        json_decref(turn);
    }
    return arr;
}

static void login(struct http_ctx *x, void *arg)
{
    struct http_server *hs = arg;
    if (!hs->deps.creds) {
        http_reply_error(x, 503, "No user store");
        return;
    }
    json_t *j = body_json(x);
    if (!j)
        return;
    const char *user = NULL, *pw = NULL;
    json_error_t e;
    if (json_unpack_ex(j, &e, JSON_STRICT, "{s:s, s:s}", "user", &user, "password", &pw) < 0) {
        json_decref(j);
        http_reply_error(x, 400, "Expected {\"user\": \"...\", \"password\": \"...\"}: %s",
                         e.text);
        return;
    }
    str u = str_cstr(user);
    if (!store_name_valid(u) || strlen(pw) > STORE_PASSWORD_MAX) {
        json_decref(j);
        http_reply_error(x, 400, "Not a valid user name or password");
        return;
    }
    uint64_t now = clock_mono_ms();
    uint8_t kb[16];
    str ipk = throttle_addr_key((const struct sockaddr *)http_ctx_peer(x), kb);
    uint32_t retry = 0;
    if (throttle_check(hs->login_ip, ipk, now, &retry) ||
        throttle_check(hs->login_user, u, now, &retry)) {
        json_decref(j);
        char ra[16];
        snprintf(ra, sizeof ra, "%u", retry ? retry : 1);
        http_ctx_add_header(x, "Retry-After", ra);
        http_reply_error(x, 429, "Too many failed logins: try again in %s s", ra);
        return;
    }
    char realm[STORE_NAME_MAX + 1], md5[33], sha[65];
    struct cred cr;
    bool known = store_creds_get(hs->deps.creds, u, &cr) == 0 && cr.enabled;
    if (!known)
        snprintf(cr.ha1_md5, sizeof cr.ha1_md5, "%032d", 0); /* same work for unknown users */
    bool good = store_realm_from_domain(hs->cfg->server.domain, realm, sizeof realm) == 0 &&
                store_ha1(u, str_cstr(realm), str_cstr(pw), md5, sha) == 0 &&
                CRYPTO_memcmp(md5, cr.ha1_md5, 32) == 0 && known;
    if (!good) {
        CNT(hs, login_fail);
        bool by_ip = throttle_fail(hs->login_ip, ipk, now);
        bool by_user = throttle_fail(hs->login_user, u, now);
        if (by_ip || by_user) {
            char a[64];
            log_warn("http", "login for %s from %s: too many failures, throttled", user,
                     net_addr_str(http_ctx_peer(x), a, sizeof a));
        }
        json_decref(j);
        http_reply_error(x, 401, "Wrong user name or password");
        return;
    }
    throttle_reset(hs->login_user, u);
    CNT(hs, login_ok);
    int64_t exp = (int64_t)(clock_wall_ms() / 1000) + hs->cfg->http.token_lifetime;
    char token[256], sip_uri[200], ws_uri[400], host[300];
    token_make(hs, user, cr.ha1_md5, exp, token);
    snprintf(sip_uri, sizeof sip_uri, "sip:%s@%s", user, realm);
    if (hs->cfg->http.ws_uri[0]) {
        snprintf(ws_uri, sizeof ws_uri, "%s", hs->cfg->http.ws_uri);
    } else {
        str h = http_ctx_header(x, "Host");
        request_host(x, host, sizeof host);
        if (h.s && h.len < 300 && strncmp(h.s, host, strlen(host)) == 0)
            snprintf(ws_uri, sizeof ws_uri, "%s://%.*s/sip", http_ctx_secure(x) ? "wss" : "ws",
                     STR_FMT(h));
        else
            snprintf(ws_uri, sizeof ws_uri, "%s://%s/sip", http_ctx_secure(x) ? "wss" : "ws",
                     host);
    }
    json_t *r = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o}", "token", token, "expires",
                          (json_int_t)exp, "user", user, "display", cr.display, "sip_uri",
                          sip_uri, "ws_uri", ws_uri, "ice_servers", ice_servers(x, user));
    json_decref(j);
    http_ctx_add_header(x, "Cache-Control", "no-store");
    http_reply_json(x, 200, r);
}

/* ---- store jobs ---- */

struct job {
    struct http_ctx *x;
    struct http_server *hs;
    char user[STORE_NAME_MAX + 1];
    json_t *in;  /* the request's document (PUT) */
    json_t *out; /* the answer */
    uint16_t status;
    char err[256];
    struct store_archive_query q;
    char with[STORE_URI_MAX + 1];
    int (*run)(struct store *s, struct job *j);
};

static void job_free(struct job *j)
{
    json_decref(j->in);
    json_decref(j->out);
    free(j);
}

static int job_run(struct store *s, void *arg)
{
    struct job *j = arg;
    return j->run(s, j);
}

static void job_done(struct worker *w, int rc, void *arg)
{
    struct job *j = arg;
    if (!w) {
        http__ctx_abandon(j->x); /* the worker has gone: nobody to answer */
        job_free(j);
        return;
    }
    if (rc < 0 && !j->status)
        http_reply_error(j->x, rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : 500,
                         "Store: %s", j->err[0] ? j->err : strerror(-rc));
    else if (j->status >= 400)
        http_reply_error(j->x, j->status, "%s", j->err);
    else {
        http_reply_json(j->x, j->status ? j->status : 200, j->out);
        j->out = NULL;
    }
    job_free(j);
}

/* Queues j (its x answered on completion). On failure answers 503 and frees j. */
static void job_submit(struct job *j)
{
    struct http_server *hs = j->hs;
    if (!hs->deps.store ||
        store_thread_submit(hs->deps.store, http_ctx_worker(j->x), job_run, job_done, j) < 0) {
        http_reply_error(j->x, 503, "The store is not available");
        job_free(j);
    }
}

static struct job *job_new(struct http_ctx *x, int (*run)(struct store *, struct job *))
{
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        http_reply_error(x, 503, "Out of memory");
        return NULL;
    }
    j->x = x;
    j->hs = http_ctx_server(x);
    j->run = run;
    if (!authorized(x, j->user)) {
        free(j);
        return NULL;
    }
    return j;
}

/* ---- contacts ---- */

static int contact_add(void *ctx, const struct store_contact *c)
{
    json_t *arr = ctx;
    return json_array_append_new(arr, json_pack("{s:s%, s:s%, s:s%}", "uri", c->uri.s, c->uri.len,
                                                "display", c->display.s, c->display.len, "label",
                                                c->label.s, c->label.len)) < 0
               ? -ENOMEM
               : 0;
}

static int contacts_get_run(struct store *s, struct job *j)
{
    json_t *arr = json_array();
    int rc = store_contact_list(s, str_cstr(j->user), contact_add, arr);
    j->out = json_pack("{s:o}", "contacts", arr);
    return rc;
}

static int old_uri(void *ctx, const struct store_contact *c)
{
    return json_array_append_new(ctx, json_stringn(c->uri.s, c->uri.len)) < 0 ? -ENOMEM : 0;
}

static int contacts_put_run(struct store *s, struct job *j)
{
    str owner = str_cstr(j->user);
    json_t *old = json_array();
    int rc = store_contact_list(s, owner, old_uri, old);
    size_t i;
    json_t *v;
    json_array_foreach(old, i, v)
    {
        bool keep = false;
        size_t k;
        json_t *n;
        json_array_foreach(j->in, k, n)
            keep |= strcmp(json_string_value(json_object_get(n, "uri")), json_string_value(v)) == 0;
        if (!keep && rc == 0)
            rc = store_contact_del(s, owner, str_cstr(json_string_value(v)));
    }
    json_decref(old);
    json_array_foreach(j->in, i, v)
    {
        if (rc < 0)
            break;
        json_t *d = json_object_get(v, "display"), *l = json_object_get(v, "label");
        struct store_contact c = { owner, str_cstr(json_string_value(json_object_get(v, "uri"))),
                                   str_cstr(d ? json_string_value(d) : ""),
                                   str_cstr(l ? json_string_value(l) : "") };
        rc = store_contact_put(s, &c);
        if (rc == -EINVAL)
            snprintf(j->err, sizeof j->err, "contact %zu (%s) is not valid", i,
                     json_string_value(json_object_get(v, "uri")));
    }
    return rc < 0 ? rc : contacts_get_run(s, j);
}

/* Whether t is text without control characters, 1 (or 0 when may_empty) .. max bytes. */
static bool text_ok(const char *t, size_t max, bool may_empty)
{
    size_t n = strlen(t);
    if (n > max || (!n && !may_empty))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
            return false;
    return true;
}

/* The array of a PUT body ({"<key>": [...]} or a bare array), or answers 400. */
static json_t *put_items(struct http_ctx *x, json_t *doc, const char *key)
{
    json_t *arr = json_is_array(doc) ? doc : json_object_get(doc, key);
    if (!json_is_array(arr)) {
        http_reply_error(x, 400, "Expected {\"%s\": [...]}", key);
        return NULL;
    }
    if (json_array_size(arr) > API_MAX_ITEMS) {
        http_reply_error(x, 413, "At most %d entries", API_MAX_ITEMS);
        return NULL;
    }
    return arr;
}

static void contacts(struct http_ctx *x, void *arg)
{
    (void)arg;
    bool put = http_ctx_req(x)->method == HTTP_PUT;
    struct job *j = job_new(x, put ? contacts_put_run : contacts_get_run);
    if (!j)
        return;
    if (put) {
        json_t *doc = body_json(x);
        json_t *arr = doc ? put_items(x, doc, "contacts") : NULL;
        if (!arr) {
            json_decref(doc);
            free(j);
            return;
        }
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            json_t *u = json_object_get(v, "uri"), *d = json_object_get(v, "display"),
                   *l = json_object_get(v, "label");
            const char *bad = !json_is_object(v)                            ? "not an object"
                              : !json_is_string(u) ||
                                        !text_ok(json_string_value(u), STORE_URI_MAX, false)
                                  ? "uri must be a string of 1 to 512 bytes"
                              : d && (!json_is_string(d) ||
                                      !store_display_valid(str_cstr(json_string_value(d))))
                                  ? "display must be text of at most 128 bytes"
                              : l && (!json_is_string(l) ||
                                      !text_ok(json_string_value(l), STORE_DISPLAY_MAX, true))
                                  ? "label must be text of at most 128 bytes"
                                  : NULL;
            if (bad) {
                http_reply_error(x, 400, "contacts[%zu]: %s", i, bad);
                json_decref(doc);
                free(j);
                return;
            }
        }
        j->in = json_incref(arr);
        json_decref(doc);
    }
    job_submit(j);
}

/* ---- history ---- */

static int history_add(void *ctx, const struct store_archive_entry *e)
{
    json_t *to = json_array();
    str r = e->recipients;
    while (r.len) {
        ssize_t c = str_find_char(r, ',');
        str one = c < 0 ? r : str_sub(r, 0, (size_t)c);
        if (one.len)
            json_array_append_new(to, json_stringn(one.s, one.len));
        r = c < 0 ? STR_NULL : str_skip(r, (size_t)c + 1);
    }
    /* newest first from the store: insert at the front to give a page in time order */
    return json_array_insert_new(ctx, 0,
                                 json_pack("{s:I, s:I, s:s%, s:o, s:s%, s:s%}", "id",
                                           (json_int_t)e->id, "at", (json_int_t)e->at_ms, "from",
                                           e->sender.s, e->sender.len, "to", to, "content_type",
                                           e->content_type.s, e->content_type.len, "body",
                                           e->body.s, e->body.len)) < 0
               ? -ENOMEM
               : 0;
}

static int history_run(struct store *s, struct job *j)
{
    json_t *arr = json_array();
    j->q.user = str_cstr(j->user);
    j->q.with = str_cstr(j->with);
    j->q.newest_first = true;
    int rc = store_archive_search(s, &j->q, history_add, arr);
    size_t n = json_array_size(arr);
    j->out = json_pack("{s:o, s:b}", "messages", arr, "more", n == j->q.limit);
    if (rc == 0 && n == j->q.limit)
        json_object_set_new(j->out, "before",
                            json_integer(json_integer_value(
                                json_object_get(json_array_get(arr, 0), "at"))));
    return rc;
}

static void history(struct http_ctx *x, void *arg)
{
    (void)arg;
    struct job *j = job_new(x, history_run);
    if (!j)
        return;
    char num[32];
    ssize_t n = http_ctx_query(x, "with", j->with, sizeof j->with);
    if (n <= 0 || !text_ok(j->with, STORE_URI_MAX, false)) {
        free(j);
        http_reply_error(x, 400, "with=USER is required (a user name or SIP URI)");
        return;
    }
    j->q.limit = 50;
    if (http_ctx_query(x, "limit", num, sizeof num) >= 0 &&
        (str_to_u32(str_cstr(num), &j->q.limit) < 0 || j->q.limit == 0 ||
         j->q.limit > HISTORY_MAX)) {
        free(j);
        http_reply_error(x, 400, "limit must be a number from 1 to %d", HISTORY_MAX);
        return;
    }
    if (http_ctx_query(x, "before", num, sizeof num) >= 0 &&
        (str_to_i64(str_cstr(num), &j->q.until_ms) < 0 || j->q.until_ms <= 0)) {
        free(j);
        http_reply_error(x, 400, "before must be a time in milliseconds since 1970");
        return;
    }
    job_submit(j);
}

/* ---- presence rules ---- */

static int rule_add(void *ctx, str watcher, enum store_pres_action a)
{
    return json_array_append_new(ctx, json_pack("{s:s%, s:s}", "watcher", watcher.s, watcher.len,
                                                "action", store_pres_action_name(a))) < 0
               ? -ENOMEM
               : 0;
}

static int rules_get_run(struct store *s, struct job *j)
{
    json_t *arr = json_array();
    int rc = store_pres_rule_list(s, str_cstr(j->user), rule_add, arr);
    j->out = json_pack("{s:o}", "rules", arr);
    return rc;
}

static int old_watcher(void *ctx, str watcher, enum store_pres_action a)
{
    (void)a;
    return json_array_append_new(ctx, json_stringn(watcher.s, watcher.len)) < 0 ? -ENOMEM : 0;
}

static int rules_put_run(struct store *s, struct job *j)
{
    str owner = str_cstr(j->user);
    json_t *old = json_array();
    int rc = store_pres_rule_list(s, owner, old_watcher, old);
    size_t i;
    json_t *v;
    json_array_foreach(old, i, v)
    {
        bool keep = false;
        size_t k;
        json_t *n;
        json_array_foreach(j->in, k, n)
            keep |= strcmp(json_string_value(json_object_get(n, "watcher")),
                           json_string_value(v)) == 0;
        if (!keep && rc == 0)
            rc = store_pres_rule_del(s, owner, str_cstr(json_string_value(v)));
    }
    json_decref(old);
    json_array_foreach(j->in, i, v)
    {
        if (rc < 0)
            break;
        enum store_pres_action a;
        store_pres_action_parse(str_cstr(json_string_value(json_object_get(v, "action"))), &a);
        rc = store_pres_rule_set(s, owner, str_cstr(json_string_value(json_object_get(v, "watcher"))),
                                 a);
    }
    return rc < 0 ? rc : rules_get_run(s, j);
}

static void rules_put_done(struct worker *w, int rc, void *arg)
{
    struct job *j = arg;
    /*
     * PRESENCE HOOK: once the presence agent (branch `presence`) is merged, tell it here
     * so that watchers are re-authorised at once:
     *     if (w && rc == 0) pres_rules_changed(presence, str_cstr(j->user));
     * (the agent reaches http through rtcd.c; until then a change applies to new
     * subscriptions only).
     */
    job_done(w, rc, arg);
    (void)j;
}

static void presence_rules(struct http_ctx *x, void *arg)
{
    (void)arg;
    bool put = http_ctx_req(x)->method == HTTP_PUT;
    struct job *j = job_new(x, put ? rules_put_run : rules_get_run);
    if (!j)
        return;
    if (!put) {
        job_submit(j);
        return;
    }
    json_t *doc = body_json(x);
    json_t *arr = doc ? put_items(x, doc, "rules") : NULL;
    if (!arr) {
        json_decref(doc);
        free(j);
        return;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        json_t *w = json_object_get(v, "watcher"), *a = json_object_get(v, "action");
        enum store_pres_action act;
        const char *bad =
            !json_is_object(v) ? "not an object"
            : !json_is_string(w) || !text_ok(json_string_value(w), STORE_URI_MAX, false)
                ? "watcher must be a user name or URI of 1 to 512 bytes"
            : !json_is_string(a) || store_pres_action_parse(str_cstr(json_string_value(a)), &act) < 0
                ? "action must be allow, block, polite-block or pending"
                : NULL;
        if (bad) {
            http_reply_error(x, 400, "rules[%zu]: %s", i, bad);
            json_decref(doc);
            free(j);
            return;
        }
    }
    j->in = json_incref(arr);
    json_decref(doc);
    struct http_server *hs = j->hs;
    if (!hs->deps.store || store_thread_submit(hs->deps.store, http_ctx_worker(x), job_run,
                                               rules_put_done, j) < 0) {
        http_reply_error(x, 503, "The store is not available");
        job_free(j);
    }
}

/* ---- installation ---- */

int http__api_install(struct http_server *hs)
{
    int rc = http_route_add(hs, "POST", "/api/v1/login", HTTP_ROUTE_EXACT, login, hs);
    if (rc == 0)
        rc = http_route_add(hs, "GET,PUT", "/api/v1/contacts", HTTP_ROUTE_EXACT, contacts, hs);
    if (rc == 0)
        rc = http_route_add(hs, "GET", "/api/v1/history", HTTP_ROUTE_EXACT, history, hs);
    if (rc == 0)
        rc = http_route_add(hs, "GET,PUT", "/api/v1/presence-rules", HTTP_ROUTE_EXACT,
                            presence_rules, hs);
    return rc;
}

void http__api_free(struct http_server *hs)
{
    (void)hs;
}

/*
 * config — INI file (inih) into struct config through a table of directives.
 */
#include "base/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum cfg_type {
    CFG_STR,
    CFG_UINT,   /* decimal, bounded by min..max */
    CFG_SIZE,   /* decimal with an optional K, M or G suffix (powers of 1024) */
    CFG_ENUM,   /* CFG_STR restricted to the '|'-separated choices */
    CFG_LEVEL,  /* log level */
    CFG_LISTEN, /* list of transport:address:port */
    CFG_RANGES, /* list of address/prefix */
};

struct directive {
    const char *section, *key;
    enum cfg_type type;
    size_t offset;
    const char *def;
    uint64_t min, max;   /* CFG_UINT / CFG_SIZE bounds */
    const char *choices; /* CFG_ENUM: "a|b|c"; CFG_LISTEN: allowed transports "udp|tcp" */
    const char *help;
};

#define OFF(field) offsetof(struct config, field)
#define T_ALL "udp|tcp|tls|ws|wss"

static const struct directive directives[] = {
    { "server", "domain", CFG_STR, OFF(server.domain), "localhost", 0, 0, NULL,
      "SIP domain(s) served, comma-separated" },
    { "server", "data_dir", CFG_STR, OFF(server.data_dir), "./run", 0, 0, NULL,
      "folder for the SQLite file, certificates and persisted state" },
    { "server", "workers", CFG_UINT, OFF(server.workers), "0", 0, 256, NULL,
      "worker threads, each with its own event loop; 0 = one per core" },
    { "server", "secret", CFG_STR, OFF(server.secret), "", 0, 0, NULL,
      "secret for nonces and tokens; empty = random, kept in data_dir" },
    { "server", "system_address", CFG_STR, OFF(server.system_address), "", 0, 0, NULL,
      "From address of broadcasts and server notices; empty = sip:system@<first domain>" },

    { "messaging", "group_senders", CFG_ENUM, OFF(messaging.group_senders), "members", 0, 0,
      "members|users", "who may send to a group address: its members, or any local user" },

    { "sip", "listen", CFG_LISTEN, OFF(sip.listen),
      "udp:0.0.0.0:5060, tcp:0.0.0.0:5060, tls:0.0.0.0:5061", 0, 0, T_ALL,
      "SIP listening addresses (transport:address:port, IPv6 as [addr])" },
    { "sip", "max_message_size", CFG_SIZE, OFF(sip.max_message_size), "64K", 512, 16u << 20, NULL,
      "largest SIP message accepted, headers and body" },
    { "sip", "max_headers", CFG_UINT, OFF(sip.max_headers), "128", 8, 4096, NULL,
      "most header fields in one message" },
    { "sip", "max_header_length", CFG_SIZE, OFF(sip.max_header_length), "16K", 256, 16u << 20,
      NULL, "longest single header field (folded lines included)" },
    { "sip", "t1_ms", CFG_UINT, OFF(sip.t1_ms), "500", 10, 60000, NULL,
      "RFC 3261 T1: round-trip estimate (ms)" },
    { "sip", "t2_ms", CFG_UINT, OFF(sip.t2_ms), "4000", 10, 600000, NULL,
      "RFC 3261 T2: longest retransmit interval for non-INVITE (ms)" },
    { "sip", "t4_ms", CFG_UINT, OFF(sip.t4_ms), "5000", 10, 600000, NULL,
      "RFC 3261 T4: longest time a message stays in the network (ms)" },
    { "sip", "tcp_idle_timeout", CFG_UINT, OFF(sip.tcp_idle_timeout), "600", 5, 86400, NULL,
      "seconds before an idle connection with no registration is closed" },
    { "sip", "max_connections", CFG_UINT, OFF(sip.max_connections), "20000", 1, 10000000, NULL,
      "most stream connections (TCP, TLS, WebSocket) at once" },
    { "sip", "max_connections_per_ip", CFG_UINT, OFF(sip.max_connections_per_ip), "1000", 1,
      10000000, NULL, "most stream connections from one source address" },
    { "sip", "min_expires", CFG_UINT, OFF(sip.min_expires), "60", 1, 86400, NULL,
      "shortest registration accepted (shorter: 423 with Min-Expires)" },
    { "sip", "max_expires", CFG_UINT, OFF(sip.max_expires), "86400", 1, 31536000, NULL,
      "longest registration granted (longer requests are shortened)" },
    { "sip", "default_expires", CFG_UINT, OFF(sip.default_expires), "3600", 1, 31536000, NULL,
      "registration length when the request names none" },
    { "sip", "max_bindings_per_aor", CFG_UINT, OFF(sip.max_bindings_per_aor), "16", 1, 1000, NULL,
      "most registered contacts (devices) of one address-of-record" },
    { "sip", "max_bindings", CFG_UINT, OFF(sip.max_bindings), "1000000", 1, 100000000, NULL,
      "most registered contacts in the location table altogether" },
    { "sip", "stateless_register", CFG_ENUM, OFF(sip.stateless_register), "on", 0, 0, "on|off",
      "answer REGISTER for our domains without a transaction (docs/registrar.md): a "
      "retransmission is processed again, as the idempotent refresh it is" },

    { "http", "listen", CFG_LISTEN, OFF(http.listen), "tcp:0.0.0.0:8080", 0, 0, "tcp|tls",
      "HTTP listening addresses: web client, JSON API, SIP over WebSocket at /sip" },
    { "http", "web_root", CFG_STR, OFF(http.web_root), "", 0, 0, NULL,
      "folder of the web client's files; empty = the one installed with rtcd" },
    { "http", "max_header_size", CFG_SIZE, OFF(http.max_header_size), "16K", 1024, 1u << 20, NULL,
      "largest HTTP request head" },
    { "http", "max_body_size", CFG_SIZE, OFF(http.max_body_size), "1M", 1024, 256u << 20, NULL,
      "largest HTTP request body" },
    { "http", "max_headers", CFG_UINT, OFF(http.max_headers), "100", 8, 1000, NULL,
      "most header fields in one HTTP request (more: 431)" },
    { "http", "header_timeout", CFG_UINT, OFF(http.header_timeout), "10", 1, 3600, NULL,
      "seconds a client has to send a whole request head (then 408 and close)" },
    { "http", "body_timeout", CFG_UINT, OFF(http.body_timeout), "30", 1, 3600, NULL,
      "seconds a client has to send a request body after its head (then 408 and close)" },
    { "http", "keepalive_timeout", CFG_UINT, OFF(http.keepalive_timeout), "75", 1, 86400, NULL,
      "seconds an idle keep-alive HTTP connection stays open" },
    { "http", "ws_max_message", CFG_SIZE, OFF(http.ws_max_message), "1M", 1024, 64u << 20, NULL,
      "largest WebSocket message on endpoints other than /sip (that one: sip.max_message_size)" },
    { "http", "ws_ping_interval", CFG_UINT, OFF(http.ws_ping_interval), "30", 0, 3600, NULL,
      "seconds of WebSocket silence before a ping; no answer within as long closes; 0 = off" },
    { "http", "token_lifetime", CFG_UINT, OFF(http.token_lifetime), "86400", 60, 31536000, NULL,
      "seconds a login token (POST /api/v1/login) stays valid" },
    { "http", "ws_uri", CFG_STR, OFF(http.ws_uri), "", 0, 0, NULL,
      "SIP WebSocket URI given to web clients at login; empty = ws(s)://<Host>/sip" },
    { "http", "ws_origins", CFG_STR, OFF(http.ws_origins), "", 0, 0, NULL,
      "origins allowed to open a WebSocket (https://rtc.example.com, ...); empty = any; "
      "clients that send no Origin (not browsers) are always allowed" },
    { "http", "access_log", CFG_ENUM, OFF(http.access_log), "off", 0, 0, "off|on",
      "on: one info line per HTTP request (peer, method, target, status, bytes, time)" },

    { "tls", "certificate", CFG_STR, OFF(tls.certificate), "", 0, 0, NULL,
      "PEM certificate chain for TLS listeners (and as client certificate); empty = a "
      "self-signed one created in data_dir/tls on first start" },
    { "tls", "private_key", CFG_STR, OFF(tls.private_key), "", 0, 0, NULL,
      "PEM private key of the certificate; empty = read from the certificate file" },
    { "tls", "ca_file", CFG_STR, OFF(tls.ca_file), "", 0, 0, NULL,
      "PEM file of trusted CAs: verifies client certificates, and outgoing connections "
      "beside the system CA store" },
    { "tls", "verify_client", CFG_ENUM, OFF(tls.verify_client), "none", 0, 0,
      "none|optional|required",
      "client certificates: not asked (none), checked when sent (optional), or demanded" },
    { "tls", "verify_server", CFG_ENUM, OFF(tls.verify_server), "yes", 0, 0, "yes|no",
      "outgoing TLS connections verify the peer's certificate and address (no = accept any)" },
    { "tls", "min_version", CFG_ENUM, OFF(tls.min_version), "1.2", 0, 0, "1.2|1.3",
      "lowest TLS version accepted (1.0 and 1.1 are never accepted)" },
    { "tls", "ciphers", CFG_STR, OFF(tls.ciphers),
      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305", 0, 0, NULL,
      "TLS 1.2 cipher suites (OpenSSL list); TLS 1.3 uses its own AEAD suites" },
    { "tls", "handshake_timeout", CFG_UINT, OFF(tls.handshake_timeout), "10", 1, 600, NULL,
      "seconds a TLS handshake may take before the connection is closed" },
    { "tls", "max_handshakes", CFG_UINT, OFF(tls.max_handshakes), "1000", 1, 1000000, NULL,
      "TLS handshakes in progress at once; connections beyond are refused" },

    { "turn", "listen", CFG_LISTEN, OFF(turn.listen), "udp:0.0.0.0:3478, tcp:0.0.0.0:3478", 0, 0,
      "udp|tcp|tls", "STUN/TURN listening addresses" },
    { "turn", "realm", CFG_STR, OFF(turn.realm), "", 0, 0, NULL,
      "TURN realm; empty = the first server.domain" },
    { "turn", "rest_secret", CFG_STR, OFF(turn.rest_secret), "", 0, 0, NULL,
      "shared secret for TURN REST API time-limited credentials; empty = off" },
    { "turn", "relay_port_min", CFG_UINT, OFF(turn.relay_port_min), "49152", 1024, 65535, NULL,
      "lowest relay port" },
    { "turn", "relay_port_max", CFG_UINT, OFF(turn.relay_port_max), "65535", 1024, 65535, NULL,
      "highest relay port" },
    { "turn", "max_allocations", CFG_UINT, OFF(turn.max_allocations), "10000", 1, 1000000, NULL,
      "most TURN allocations at once" },
    { "turn", "max_allocations_per_user", CFG_UINT, OFF(turn.max_allocations_per_user), "10", 1,
      1000000, NULL, "most TURN allocations one user may hold" },
    { "turn", "max_lifetime", CFG_UINT, OFF(turn.max_lifetime), "3600", 60, 86400, NULL,
      "longest allocation lifetime granted (seconds)" },
    { "turn", "default_lifetime", CFG_UINT, OFF(turn.default_lifetime), "600", 60, 86400, NULL,
      "allocation lifetime when the client asks for none (seconds)" },
    { "turn", "bandwidth_per_allocation", CFG_SIZE, OFF(turn.bandwidth_per_allocation), "0", 0,
      1u << 30, NULL, "bytes per second one allocation may relay; 0 = unlimited" },
    { "turn", "nonce_lifetime", CFG_UINT, OFF(turn.nonce_lifetime), "600", 10, 86400, NULL,
      "seconds a TURN nonce stays valid (then 438 Stale Nonce)" },
    { "turn", "poll_us", CFG_UINT, OFF(turn.poll_us), "1000", 0, 10000, NULL,
      "a UDP listener that finds several datagrams waiting is read every poll_us "
      "microseconds until it is quiet (fewer wake-ups under load, at most this much added "
      "delay); 0 = read on readiness only" },
    { "turn", "allow_peers", CFG_RANGES, OFF(turn.allow_peers), "", 0, 0, NULL,
      "peer address ranges allowed even when denied below (e.g. 127.0.0.0/8 for tests)" },
    { "turn", "deny_peers", CFG_RANGES, OFF(turn.deny_peers),
      "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, "
      "192.168.0.0/16, 224.0.0.0/4, 240.0.0.0/4, ::/128, ::1/128, fc00::/7, fe80::/10, ff00::/8",
      0, 0, NULL, "peer address ranges the relay refuses (403); the server's own are refused too" },
    { "turn", "relay_address", CFG_STR, OFF(turn.relay_address), "", 0, 0, NULL,
      "address relayed transport addresses are opened on; empty = the listening address" },
    { "turn", "users", CFG_STR, OFF(turn.users), "", 0, 0, NULL,
      "static long-term TURN users 'name:password, ...' (a relay host without the user store)" },

    { "store", "backend", CFG_ENUM, OFF(store.backend), "sqlite", 0, 0, "sqlite|postgres",
      "where durable data lives" },
    { "store", "url", CFG_STR, OFF(store.url), "", 0, 0, NULL,
      "PostgreSQL connection URL (postgresql://user@host:port/db) for backend = postgres" },
    { "store", "sqlite_file", CFG_STR, OFF(store.sqlite_file), "", 0, 0, NULL,
      "SQLite database file; empty = data_dir/rtcd.db" },
    { "store", "max_offline_per_user", CFG_UINT, OFF(store.max_offline_per_user), "1000", 1,
      1000000, NULL, "most stored offline messages for one user (then 480)" },
    { "store", "archive_retention_days", CFG_UINT, OFF(store.archive_retention_days), "0", 0,
      36500, NULL, "days the message archive keeps an entry; 0 = for ever" },
    { "store", "archive_commit_ms", CFG_UINT, OFF(store.archive_commit_ms), "200", 1, 5000, NULL,
      "archive entries are written in one transaction per this many ms (group commit: far less "
      "CPU per message than one each); a crash loses at most this window of archive entries, "
      "never an offline message (those are committed before their 202)" },

    { "apps", "webhook_timeout_ms", CFG_UINT, OFF(apps.webhook_timeout_ms), "5000", 100, 120000,
      NULL, "time one webhook POST to a bot may take (ms)" },
    { "apps", "webhook_retries", CFG_UINT, OFF(apps.webhook_retries), "3", 0, 20, NULL,
      "further attempts after a webhook POST failed (timeout, refused, 429, 5xx)" },
    { "apps", "webhook_backoff_ms", CFG_UINT, OFF(apps.webhook_backoff_ms), "500", 10, 60000, NULL,
      "wait before the first webhook retry, doubled each time (with jitter, at most 30 s)" },
    { "apps", "max_request_body", CFG_SIZE, OFF(apps.max_request_body), "64K", 256, 1u << 20, NULL,
      "largest notify or publish request body (then 413)" },
    { "apps", "max_recipients", CFG_UINT, OFF(apps.max_recipients), "100000", 1, 10000000, NULL,
      "most users one notification reaches after expanding groups, online and everyone" },
    { "apps", "max_ttl", CFG_UINT, OFF(apps.max_ttl), "604800", 0, 31536000, NULL,
      "longest time (s) a notification waits offline for its recipient" },
    { "apps", "notify_keep", CFG_UINT, OFF(apps.notify_keep), "10000", 1, 10000000, NULL,
      "notification reports kept in memory for GET /api/v1/notify/{id} (oldest go first)" },
    { "apps", "channel_queue", CFG_UINT, OFF(apps.channel_queue), "256", 1, 1000000, NULL,
      "messages queued for one channel subscriber; one more closes it (slow consumer)" },
    { "apps", "question_ttl", CFG_UINT, OFF(apps.question_ttl), "600", 10, 86400, NULL,
      "seconds a bot's question with choices waits for the user's answer" },

    { "auth", "challenge", CFG_ENUM, OFF(auth.challenge), "all", 0, 0, "all|register|none",
      "which requests are challenged for digest credentials" },
    { "auth", "algorithms", CFG_STR, OFF(auth.algorithms), "MD5", 0, 0, NULL,
      "digest algorithms challenged, in order: MD5, SHA-256 or both (RFC 8760); several "
      "challenges break clients that know only MD5 (baresip 1.0, JsSIP 3)" },
    { "auth", "nonce_lifetime", CFG_UINT, OFF(auth.nonce_lifetime), "300", 10, 86400, NULL,
      "seconds a digest nonce stays valid (then stale=true)" },
    { "auth", "max_failures", CFG_UINT, OFF(auth.max_failures), "10", 1, 1000000, NULL,
      "failed authentications per source address or user in failure_window before throttling" },
    { "auth", "failure_window", CFG_UINT, OFF(auth.failure_window), "60", 1, 86400, NULL,
      "seconds over which authentication failures are counted" },

    { "presence", "min_expires", CFG_UINT, OFF(presence.min_expires), "60", 1, 86400, NULL,
      "shortest subscription accepted (shorter: 423 with Min-Expires)" },
    { "presence", "max_expires", CFG_UINT, OFF(presence.max_expires), "3600", 1, 86400, NULL,
      "longest subscription granted (longer requests are shortened)" },
    { "presence", "default_expires", CFG_UINT, OFF(presence.default_expires), "3600", 1, 86400,
      NULL, "subscription length when the SUBSCRIBE names none (RFC 3856)" },
    { "presence", "publish_min_expires", CFG_UINT, OFF(presence.publish_min_expires), "60", 1,
      86400, NULL, "shortest publication accepted (shorter: 423 with Min-Expires)" },
    { "presence", "publish_max_expires", CFG_UINT, OFF(presence.publish_max_expires), "7200", 1,
      604800, NULL, "longest publication granted (longer requests are shortened)" },
    { "presence", "publish_default_expires", CFG_UINT, OFF(presence.publish_default_expires),
      "3600", 1, 604800, NULL, "publication length when the PUBLISH names none (RFC 3903)" },
    { "presence", "max_subscriptions", CFG_UINT, OFF(presence.max_subscriptions), "1000000", 1,
      100000000, NULL, "most subscriptions (presence and watcher info) altogether (then 503)" },
    { "presence", "max_subscriptions_per_watcher", CFG_UINT,
      OFF(presence.max_subscriptions_per_watcher), "1000", 1, 10000000, NULL,
      "most subscriptions one watcher (user or URI) may hold (then 403)" },
    { "presence", "max_subscriptions_per_presentity", CFG_UINT,
      OFF(presence.max_subscriptions_per_presentity), "1000", 1, 10000000, NULL,
      "most subscriptions to one user's presence (then 403)" },
    { "presence", "max_publications_per_presentity", CFG_UINT,
      OFF(presence.max_publications_per_presentity), "16", 1, 1000, NULL,
      "most live publications (devices) of one user (then 403)" },
    { "presence", "default_rule", CFG_ENUM, OFF(presence.default_rule), "pending", 0, 0,
      "pending|allow", "what a watcher with no presence rule gets: pending until the user "
      "decides, or allow" },
    { "presence", "registered_means_open", CFG_ENUM, OFF(presence.registered_means_open), "true",
      0, 0, "true|false", "a registered device that publishes nothing shows as open (available)" },
    { "presence", "contacts_allowed", CFG_ENUM, OFF(presence.contacts_allowed), "true", 0, 0,
      "true|false", "a watcher in the user's contact list is allowed without a rule" },

    { "log", "level", CFG_LEVEL, OFF(log.level), "info", 0, 0, NULL,
      "debug, info, warn, error or off" },
    { "log", "file", CFG_STR, OFF(log.file), "", 0, 0, NULL, "log file; empty = standard error" },
};

#define N_DIRECTIVES (sizeof directives / sizeof directives[0])

const char *transport_name(enum transport t)
{
    static const char *const names[] = { "udp", "tcp", "tls", "ws", "wss" };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const struct directive *find_directive(const char *section, const char *key)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (strcmp(directives[i].section, section) == 0 && strcmp(directives[i].key, key) == 0)
            return &directives[i];
    return NULL;
}

static bool section_known(const char *section)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++)
        if (strcmp(directives[i].section, section) == 0)
            return true;
    return false;
}

static bool choice_ok(const char *choices, str v)
{
    str c = str_cstr(choices);
    while (c.len) {
        ssize_t bar = str_find_char(c, '|');
        str one = bar < 0 ? c : str_sub(c, 0, (size_t)bar);
        if (str_eq(one, v))
            return true;
        c = bar < 0 ? STR_NULL : str_skip(c, (size_t)bar + 1);
    }
    return false;
}

/* Splits a comma-separated list; calls fn for each trimmed non-empty item. */
static int for_each_item(str list, int (*fn)(str item, void *ctx), void *ctx)
{
    while (list.len) {
        ssize_t comma = str_find_char(list, ',');
        str item = str_trim(comma < 0 ? list : str_sub(list, 0, (size_t)comma));
        list = comma < 0 ? STR_NULL : str_skip(list, (size_t)comma + 1);
        if (item.len == 0)
            continue;
        int rc = fn(item, ctx);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct item_ctx {
    const struct directive *d;
    void *target;
    str bad; /* the item that failed */
    const char *why;
};

static int parse_ip(str host, int *family, uint8_t addr[16])
{
    char tmp[64];
    if (str_copy(tmp, sizeof tmp, host) < 0)
        return -EINVAL;
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -EINVAL;
}

static int listen_item(str item, void *ctx_)
{
    struct item_ctx *ctx = ctx_;
    struct listen_list *l = ctx->target;
    ctx->bad = item;
    ssize_t colon = str_find_char(item, ':');
    if (colon < 0) {
        ctx->why = "expected transport:address:port";
        return -EINVAL;
    }
    str tp = str_sub(item, 0, (size_t)colon);
    str rest = str_skip(item, (size_t)colon + 1);
    static const char *const names[] = { "udp", "tcp", "tls", "ws", "wss" };
    int t = -1;
    for (int i = 0; i < 5; i++)
        if (str_caseeq(tp, str_cstr(names[i])))
            t = i;
    if (t < 0 || !choice_ok(ctx->d->choices, str_cstr(names[t]))) {
        ctx->why = "unknown transport";
        return -EINVAL;
    }
    str host, port;
    if (rest.len && rest.s[0] == '[') {
        ssize_t close = str_find_char(rest, ']');
        if (close < 0 || (size_t)close + 1 >= rest.len || rest.s[close + 1] != ':') {
            ctx->why = "expected [IPv6 address]:port";
            return -EINVAL;
        }
        host = str_sub(rest, 1, (size_t)close - 1);
        port = str_skip(rest, (size_t)close + 2);
    } else {
        ssize_t c2 = str_find_char(rest, ':');
        if (c2 < 0) {
            ctx->why = "expected transport:address:port";
            return -EINVAL;
        }
        host = str_sub(rest, 0, (size_t)c2);
        port = str_skip(rest, (size_t)c2 + 1);
    }
    uint32_t p;
    int rc = str_to_u32(port, &p);
    if (rc == -ERANGE || (rc == 0 && p > 65535)) {
        ctx->why = "port out of range";
        return -EINVAL;
    }
    if (rc < 0) {
        ctx->why = "port is not a number";
        return -EINVAL;
    }
    int family;
    uint8_t addr[16];
    if (parse_ip(host, &family, addr) < 0) {
        ctx->why = "address must be an IPv4 address or an IPv6 address in brackets";
        return -EINVAL;
    }
    if (l->n >= CONFIG_MAX_LISTEN) {
        ctx->why = "too many listening addresses";
        return -EINVAL;
    }
    struct listen_addr *la = &l->v[l->n++];
    memset(la, 0, sizeof *la);
    la->transport = (enum transport)t;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&la->addr;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)p);
        memcpy(&sin->sin_addr, addr, 4);
        la->addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&la->addr;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)p);
        memcpy(&sin6->sin6_addr, addr, 16);
        la->addrlen = sizeof *sin6;
    }
    return 0;
}

static int range_item(str item, void *ctx_)
{
    struct item_ctx *ctx = ctx_;
    struct range_list *l = ctx->target;
    ctx->bad = item;
    ssize_t slash = str_find_char(item, '/');
    str host = slash < 0 ? item : str_sub(item, 0, (size_t)slash);
    struct net_range r = { 0 };
    if (parse_ip(host, &r.family, r.addr) < 0) {
        ctx->why = "not an IPv4 or IPv6 address";
        return -EINVAL;
    }
    uint32_t maxp = r.family == AF_INET ? 32 : 128, pfx = maxp;
    if (slash >= 0 && (str_to_u32(str_skip(item, (size_t)slash + 1), &pfx) < 0 || pfx > maxp)) {
        ctx->why = "prefix length out of range";
        return -EINVAL;
    }
    r.prefix = (uint8_t)pfx;
    if (l->n >= CONFIG_MAX_RANGES) {
        ctx->why = "too many ranges";
        return -EINVAL;
    }
    l->v[l->n++] = r;
    return 0;
}

static int parse_size(str v, uint64_t *out)
{
    uint64_t mult = 1;
    if (v.len) {
        switch (v.s[v.len - 1]) {
        case 'k': case 'K': mult = 1024; break;
        case 'm': case 'M': mult = 1024 * 1024; break;
        case 'g': case 'G': mult = 1024 * 1024 * 1024; break;
        default: break;
        }
        if (mult > 1)
            v.len--;
    }
    uint64_t n;
    int rc = str_to_u64(v, &n);
    if (rc < 0)
        return rc;
    if (n > UINT64_MAX / mult)
        return -ERANGE;
    *out = n * mult;
    return 0;
}

static int apply(struct config *c, const struct directive *d, const char *value, char *err,
                 size_t errlen)
{
    void *field = (char *)c + d->offset;
    str v = str_trim(str_cstr(value));
    switch (d->type) {
    case CFG_ENUM:
        if (!choice_ok(d->choices, v)) {
            errf(err, errlen, "%s.%s: '%s': expected one of %s", d->section, d->key, value,
                 d->choices);
            return -EINVAL;
        }
        /* fall through */
    case CFG_STR: {
        char *copy = str_dup(v);
        if (!copy)
            return -ENOMEM;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case CFG_UINT:
    case CFG_SIZE: {
        uint64_t n;
        int rc;
        if (d->type == CFG_SIZE) {
            rc = parse_size(v, &n);
        } else {
            rc = str_to_u64(v, &n);
        }
        if (rc == -EINVAL) {
            errf(err, errlen, "%s.%s: '%s': not a number%s", d->section, d->key, value,
                 d->type == CFG_SIZE ? " (a K, M or G suffix is allowed)" : "");
            return -EINVAL;
        }
        if (rc == -ERANGE || n < d->min || n > d->max) {
            errf(err, errlen, "%s.%s: '%s': out of range %llu..%llu", d->section, d->key, value,
                 (unsigned long long)d->min, (unsigned long long)d->max);
            return -EINVAL;
        }
        *(uint32_t *)field = (uint32_t)n;
        return 0;
    }
    case CFG_LEVEL: {
        enum log_level lvl;
        if (log_level_parse(v, &lvl) < 0) {
            errf(err, errlen, "%s.%s: '%s': expected debug, info, warn, error or off", d->section,
                 d->key, value);
            return -EINVAL;
        }
        *(enum log_level *)field = lvl;
        return 0;
    }
    case CFG_LISTEN:
    case CFG_RANGES: {
        /* Parse into a scratch list so a bad item leaves the old value whole. */
        union {
            struct listen_list l;
            struct range_list r;
        } tmp;
        memset(&tmp, 0, sizeof tmp);
        struct item_ctx ctx = { d, &tmp, STR_NULL, NULL };
        int rc = for_each_item(v, d->type == CFG_LISTEN ? listen_item : range_item, &ctx);
        if (rc < 0) {
            errf(err, errlen, "%s.%s: '%.*s': %s", d->section, d->key, STR_FMT(ctx.bad),
                 ctx.why);
            return -EINVAL;
        }
        if (d->type == CFG_LISTEN)
            *(struct listen_list *)field = tmp.l;
        else
            *(struct range_list *)field = tmp.r;
        return 0;
    }
    }
    return -EINVAL;
}

int config_set_key(struct config *c, const char *section, const char *key, const char *value,
                   char *err, size_t errlen)
{
    const struct directive *d = find_directive(section, key);
    if (!d) {
        if (section_known(section))
            errf(err, errlen, "%s.%s: unknown key", section, key);
        else
            errf(err, errlen, "%s.%s: unknown section '%s'", section, key, section);
        return -EINVAL;
    }
    return apply(c, d, value, err, errlen);
}

int config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        char err[256];
        int rc = apply(c, &directives[i], directives[i].def, err, sizeof err);
        if (rc < 0) {
            /* A default that does not parse is a bug in the table above. */
            fprintf(stderr, "rtcd: built-in default: %s\n", err);
            config_free(c);
            return rc;
        }
    }
    return 0;
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < N_DIRECTIVES; i++) {
        const struct directive *d = &directives[i];
        if (d->type == CFG_STR || d->type == CFG_ENUM) {
            char **p = (char **)((char *)c + d->offset);
            free(*p);
            *p = NULL;
        }
    }
}

struct load_ctx {
    struct config *c;
    char msg[512];
    bool failed;
};

static int on_ini_line(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    if (ctx->failed)
        return 1; /* report only the first error */
    if (!name || !*name)
        return 1; /* a bare [section] line */
    int rc = config_set_key(ctx->c, section, name, value ? value : "", ctx->msg, sizeof ctx->msg);
    if (rc < 0) {
        ctx->failed = true;
        return 0;
    }
    return 1;
}

int config_load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        errf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    struct load_ctx ctx = { .c = c };
    int line = ini_parse_file(f, on_ini_line, &ctx);
    fclose(f);
    if (line == 0)
        return 0;
    if (line < 0) {
        errf(err, errlen, "%s: cannot read", path);
        return -EIO;
    }
    if (ctx.failed)
        errf(err, errlen, "%s:%d: %s", path, line, ctx.msg);
    else
        errf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, line);
    return -EINVAL;
}

int config_set(struct config *c, const char *assignment, char *err, size_t errlen)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1) {
        errf(err, errlen, "--set: '%s': expected SECTION.KEY=VALUE", assignment);
        return -EINVAL;
    }
    char section[64], key[64], msg[512];
    if ((size_t)(dot - assignment) >= sizeof section || (size_t)(eq - dot - 1) >= sizeof key) {
        errf(err, errlen, "--set: '%s': name too long", assignment);
        return -EINVAL;
    }
    memcpy(section, assignment, (size_t)(dot - assignment));
    section[dot - assignment] = '\0';
    memcpy(key, dot + 1, (size_t)(eq - dot - 1));
    key[eq - dot - 1] = '\0';
    int rc = config_set_key(c, section, key, eq + 1, msg, sizeof msg);
    if (rc < 0)
        errf(err, errlen, "--set: %s", msg);
    return rc;
}

int config_validate(const struct config *c, char *err, size_t errlen)
{
    if (str_trim(str_cstr(c->server.domain)).len == 0) {
        errf(err, errlen, "server.domain: must name at least one domain");
        return -EINVAL;
    }
    if (c->turn.relay_port_min > c->turn.relay_port_max) {
        errf(err, errlen, "turn.relay_port_min: %u is above turn.relay_port_max %u",
             c->turn.relay_port_min, c->turn.relay_port_max);
        return -EINVAL;
    }
    if (c->sip.min_expires > c->sip.max_expires) {
        errf(err, errlen, "sip.min_expires: %u is above sip.max_expires %u", c->sip.min_expires,
             c->sip.max_expires);
        return -EINVAL;
    }
    if (c->sip.t1_ms > c->sip.t2_ms) {
        errf(err, errlen, "sip.t1_ms: %u is above sip.t2_ms %u", c->sip.t1_ms, c->sip.t2_ms);
        return -EINVAL;
    }
    {
        str list = str_cstr(c->auth.algorithms);
        size_t count = 0;
        while (list.len) {
            ssize_t comma = str_find_char(list, ',');
            str a = str_trim(comma < 0 ? list : str_sub(list, 0, (size_t)comma));
            list = comma < 0 ? STR_NULL : str_skip(list, (size_t)comma + 1);
            if (!a.len)
                continue;
            if (!str_caseeq(a, STR("MD5")) && !str_caseeq(a, STR("SHA-256"))) {
                errf(err, errlen, "auth.algorithms: '%s': expected MD5 and/or SHA-256",
                     c->auth.algorithms);
                return -EINVAL;
            }
            count++;
        }
        if (count == 0) {
            errf(err, errlen, "auth.algorithms: must name MD5 or SHA-256");
            return -EINVAL;
        }
    }
    if (strcmp(c->tls.verify_client, "none") != 0 && !*c->tls.ca_file) {
        errf(err, errlen, "tls.verify_client: '%s' needs tls.ca_file (the CAs that sign "
             "client certificates)", c->tls.verify_client);
        return -EINVAL;
    }
    if (*c->tls.private_key && !*c->tls.certificate) {
        errf(err, errlen, "tls.private_key: set without tls.certificate");
        return -EINVAL;
    }
    if (strcmp(c->store.backend, "postgres") == 0 && !*c->store.url) {
        errf(err, errlen, "store.url: must be set when store.backend = postgres");
        return -EINVAL;
    }
    return 0;
}

int config_load(struct config *c, const char *path, const char *const *sets, size_t nsets,
                char *err, size_t errlen)
{
    int rc = config_init(c);
    if (rc < 0) {
        errf(err, errlen, "out of memory");
        return rc;
    }
    if (path)
        rc = config_load_file(c, path, err, errlen);
    for (size_t i = 0; rc == 0 && i < nsets; i++)
        rc = config_set(c, sets[i], err, errlen);
    if (rc == 0)
        rc = config_validate(c, err, errlen);
    if (rc < 0)
        config_free(c);
    return rc;
}

static int dump_listen(struct buf *out, const struct listen_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct listen_addr *a = &l->v[i];
        char host[INET6_ADDRSTRLEN];
        unsigned port;
        if (a->addr.ss_family == AF_INET) {
            const struct sockaddr_in *s = (const struct sockaddr_in *)&a->addr;
            inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
            port = ntohs(s->sin_port);
        } else {
            const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&a->addr;
            inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
            port = ntohs(s->sin6_port);
        }
        int rc = buf_printf(out, "%s%s:%s%s%s:%u", i ? ", " : "", transport_name(a->transport),
                            a->addr.ss_family == AF_INET6 ? "[" : "", host,
                            a->addr.ss_family == AF_INET6 ? "]" : "", port);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int dump_ranges(struct buf *out, const struct range_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        char host[INET6_ADDRSTRLEN];
        inet_ntop(l->v[i].family, l->v[i].addr, host, sizeof host);
        int rc = buf_printf(out, "%s%s/%u", i ? ", " : "", host, l->v[i].prefix);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int config_dump(const struct config *c, struct buf *out)
{
    const char *section = "";
    int rc = 0;
    for (size_t i = 0; i < N_DIRECTIVES && rc == 0; i++) {
        const struct directive *d = &directives[i];
        const void *field = (const char *)c + d->offset;
        if (strcmp(section, d->section) != 0) {
            rc = buf_printf(out, "%s[%s]\n", i ? "\n" : "", d->section);
            section = d->section;
        }
        if (rc == 0)
            rc = buf_printf(out, "; %s\n%s = ", d->help, d->key);
        if (rc < 0)
            break;
        switch (d->type) {
        case CFG_STR:
        case CFG_ENUM:
            rc = buf_printf(out, "%s", *(char *const *)field);
            break;
        case CFG_UINT:
        case CFG_SIZE:
            rc = buf_printf(out, "%u", *(const uint32_t *)field);
            break;
        case CFG_LEVEL:
            rc = buf_printf(out, "%s", log_level_name(*(const enum log_level *)field));
            break;
        case CFG_LISTEN:
            rc = dump_listen(out, field);
            break;
        case CFG_RANGES:
            rc = dump_ranges(out, field);
            break;
        }
        if (rc == 0)
            rc = buf_append_byte(out, '\n');
    }
    return rc;
}

bool net_range_contains(const struct net_range *r, const struct sockaddr *sa)
{
    const uint8_t *a;
    uint8_t mapped[4];
    int family = sa->sa_family;
    if (family == AF_INET) {
        a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        a = s6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && r->family == AF_INET) {
            memcpy(mapped, a + 12, 4);
            a = mapped;
            family = AF_INET;
        }
    } else {
        return false;
    }
    if (family != r->family)
        return false;
    unsigned full = r->prefix / 8, rest = r->prefix % 8;
    if (memcmp(a, r->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (r->addr[full] & mask);
}

/*
 * config — the one INI file, read into a typed struct. Every key has a
 * default (no file is needed for a first run); `--set SECTION.KEY=VALUE`
 * overrides any key; errors name file:line and the key:
 *   rtcd.ini:7: sip.listen: 'udp:1.2.3.4:99999': port out of range
 * The table of directives (name, type, default, bounds, help) is in config.c;
 * docs/configuration.md is its reference and a test keeps the two in step.
 */
#ifndef RTCD_BASE_CONFIG_H
#define RTCD_BASE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/log.h"

enum transport {
    TRANSPORT_UDP,
    TRANSPORT_TCP,
    TRANSPORT_TLS,
    TRANSPORT_WS,
    TRANSPORT_WSS,
};
/* "udp", "tcp", "tls", "ws", "wss" */
const char *transport_name(enum transport t);

/* One listening address: "udp:0.0.0.0:5060", "tcp:[::1]:5060". */
struct listen_addr {
    enum transport transport;
    struct sockaddr_storage addr; /* IPv4 or IPv6, port set */
    socklen_t addrlen;
};

#define CONFIG_MAX_LISTEN 16
struct listen_list {
    size_t n;
    struct listen_addr v[CONFIG_MAX_LISTEN];
};

/* An address range "10.0.0.0/8", "::1/128", or a bare address. */
struct net_range {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    uint8_t prefix;
};
#define CONFIG_MAX_RANGES 32
struct range_list {
    size_t n;
    struct net_range v[CONFIG_MAX_RANGES];
};
/* Whether sa (AF_INET/AF_INET6; v4-mapped v6 counts as v4) is inside r. */
bool net_range_contains(const struct net_range *r, const struct sockaddr *sa);

struct config {
    struct {
        char *domain; /* comma-separated list */
        char *data_dir;
        uint32_t workers; /* 0 = one per core */
        char *secret;     /* for nonces and tokens; empty = random, kept in data_dir */
        char *system_address; /* From of broadcasts; empty = sip:system@<first domain> */
    } server;
    struct {
        char *group_senders; /* who may send to a group: "members" or "users" */
    } messaging;
    struct {
        struct listen_list listen;
        uint32_t max_message_size; /* bytes */
        uint32_t max_headers;
        uint32_t max_header_length;
        uint32_t t1_ms, t2_ms, t4_ms;
        uint32_t tcp_idle_timeout; /* seconds */
        uint32_t max_connections;
        uint32_t max_connections_per_ip;
        uint32_t min_expires, max_expires, default_expires;
        uint32_t max_bindings_per_aor; /* location table caps (svc/location.h) */
        uint32_t max_bindings;
        char *stateless_register; /* "on": REGISTER for our domains keeps no transaction */
    } sip;
    struct {
        struct listen_list listen;
        char *web_root;
        uint32_t max_header_size;
        uint32_t max_body_size;
        uint32_t max_headers;
        uint32_t header_timeout;    /* seconds for a request head, from its first byte */
        uint32_t body_timeout;      /* seconds for a request body, from the end of its head */
        uint32_t keepalive_timeout; /* seconds an idle keep-alive connection stays open */
        uint32_t ws_max_message;    /* bytes, WebSocket endpoints other than /sip */
        uint32_t ws_ping_interval;  /* seconds of WebSocket silence before a ping */
        uint32_t token_lifetime;    /* seconds a login token is valid */
        char *ws_uri;               /* SIP WebSocket URI told to clients; empty = from Host */
        char *access_log;           /* "off" or "on": one info line per request */
        char *ws_origins;           /* browser origins allowed to open WebSockets; empty = any */
    } http;
    struct {
        char *certificate;   /* PEM chain; empty = self-signed one in data_dir/tls */
        char *private_key;   /* PEM key; empty = the certificate file */
        char *ca_file;       /* trusted CAs: client certificates, outgoing connections */
        char *verify_client; /* "none", "optional", "required" */
        char *verify_server; /* "yes", "no": outgoing connections check the peer */
        char *min_version;   /* "1.2", "1.3" */
        char *ciphers;       /* TLS 1.2 cipher list (OpenSSL syntax) */
        uint32_t handshake_timeout; /* seconds */
        uint32_t max_handshakes;    /* handshakes in progress at once, every worker */
    } tls;
    struct {
        struct listen_list listen;
        char *realm; /* empty = the first server.domain */
        char *rest_secret;
        uint32_t relay_port_min, relay_port_max;
        uint32_t max_allocations, max_allocations_per_user;
        uint32_t max_lifetime, default_lifetime; /* seconds */
        uint32_t bandwidth_per_allocation;       /* bytes/s, 0 = unlimited */
        uint32_t nonce_lifetime;                 /* seconds */
        uint32_t poll_us; /* a busy UDP listener is read every poll_us; 0 = on readiness only */
        struct range_list allow_peers;
        struct range_list deny_peers;
        char *relay_address; /* empty = the listening address */
        char *users;         /* static long-term users "name:password, ..." */
    } turn;
    struct {
        char *backend; /* "sqlite" or "postgres" */
        char *url;     /* postgresql://... */
        char *sqlite_file; /* empty = data_dir/rtcd.db */
        uint32_t max_offline_per_user;
        uint32_t archive_retention_days; /* 0 = keep for ever */
        uint32_t archive_commit_ms;      /* group commit window of archive appends */
    } store;
    struct {
        char *challenge; /* "all", "register", "none" */
        char *algorithms; /* digest challenges offered, in order: "MD5", "SHA-256, MD5" */
        uint32_t nonce_lifetime;
        uint32_t max_failures;     /* per source address / user in failure_window */
        uint32_t failure_window;   /* seconds */
    } auth;
    struct {
        uint32_t min_expires, max_expires, default_expires; /* SUBSCRIBE, seconds */
        uint32_t publish_min_expires, publish_max_expires, publish_default_expires;
        uint32_t max_subscriptions;               /* all of them */
        uint32_t max_subscriptions_per_watcher;   /* one watcher (user or URI) */
        uint32_t max_subscriptions_per_presentity;
        uint32_t max_publications_per_presentity;
        char *default_rule;          /* "pending" or "allow": a watcher with no rule */
        char *registered_means_open; /* "true" / "false" */
        char *contacts_allowed;      /* "true": a watcher in the owner's contact list is allowed */
    } presence;
    struct {
        uint32_t webhook_timeout_ms; /* per attempt */
        uint32_t webhook_retries;
        uint32_t webhook_backoff_ms;
        uint32_t max_request_body;   /* bytes of a notify / publish body (then 413) */
        uint32_t max_recipients;     /* after expanding groups, online, everyone */
        uint32_t max_ttl;            /* seconds a notification may wait offline */
        uint32_t notify_keep;        /* notification reports kept for GET /api/v1/notify/{id} */
        uint32_t channel_queue;      /* messages queued per channel subscriber, then closed */
        uint32_t question_ttl;       /* seconds a bot's question waits for the user's choice */
    } apps;
    struct {
        enum log_level level;
        char *file; /* empty = stderr */
    } log;
};

/* Sets every key to its default. 0 or -ENOMEM. */
int config_init(struct config *c);
/* Frees the strings; the struct must be config_init'ed again to be reused. */
void config_free(struct config *c);

/*
 * Reads an INI file over the current values. On failure returns -EINVAL (or
 * -errno when the file cannot be read) and writes "file:line: key: what" into
 * err (errlen bytes).
 */
int config_load_file(struct config *c, const char *path, char *err, size_t errlen);
/* Applies one "SECTION.KEY=VALUE" (the --set syntax). Same errors, prefixed "--set". */
int config_set(struct config *c, const char *assignment, char *err, size_t errlen);
/* Sets one key from its text. 0 or -EINVAL with "section.key: 'value': what" in err. */
int config_set_key(struct config *c, const char *section, const char *key, const char *value,
                   char *err, size_t errlen);
/* Checks rules across keys (ranges in order, ...). 0 or -EINVAL with the reason. */
int config_validate(const struct config *c, char *err, size_t errlen);

/*
 * The whole start-up sequence shared by rtcd and rtcctl: defaults, then the
 * file (if path is not NULL), then each "SECTION.KEY=VALUE" of sets in order,
 * then config_validate. On failure c is freed and err says why.
 */
int config_load(struct config *c, const char *path, const char *const *sets, size_t nsets,
                char *err, size_t errlen);

/* Writes the effective configuration as INI text (every key, with its help as a comment). */
int config_dump(const struct config *c, struct buf *out);

#endif

/*
 * stun — the STUN message codec (RFC 8489) and the TURN server core
 * (RFC 8656), both without sockets.
 *
 * The codec decodes a message in place: struct stun_msg holds pointers into
 * the caller's bytes and an index of the attributes (bounded, allocation-free,
 * safe on any input). The encoder writes into a caller-given buffer and keeps
 * the header length right after each attribute, so MESSAGE-INTEGRITY,
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT can be appended last.
 *
 * The TURN core (struct turn_server, below) takes (bytes, client 5-tuple, now)
 * and emits through struct turn_io; src/stun/service.c binds it to libuv in
 * rtcd's worker loops.
 */
#ifndef RTCD_STUN_STUN_H
#define RTCD_STUN_STUN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/clock.h"
#include "base/config.h"
#include "base/str.h"

#define STUN_HEADER_LEN 20
#define STUN_MAGIC 0x2112A442u
#define STUN_MAX_ATTRS 40 /* more attributes than this → -E2BIG */

/* Classes (the C1/C0 bits, already placed). */
enum stun_class {
    STUN_REQUEST = 0x0000,
    STUN_INDICATION = 0x0010,
    STUN_SUCCESS = 0x0100,
    STUN_ERROR = 0x0110,
};

enum stun_method {
    STUN_BINDING = 0x001,
    TURN_ALLOCATE = 0x003,
    TURN_REFRESH = 0x004,
    TURN_SEND = 0x006,
    TURN_DATA = 0x007,
    TURN_CREATE_PERMISSION = 0x008,
    TURN_CHANNEL_BIND = 0x009,
};

enum stun_attr_type {
    STUN_A_MAPPED_ADDRESS = 0x0001,
    STUN_A_USERNAME = 0x0006,
    STUN_A_MESSAGE_INTEGRITY = 0x0008,
    STUN_A_ERROR_CODE = 0x0009,
    STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
    TURN_A_CHANNEL_NUMBER = 0x000C,
    TURN_A_LIFETIME = 0x000D,
    TURN_A_XOR_PEER_ADDRESS = 0x0012,
    TURN_A_DATA = 0x0013,
    STUN_A_REALM = 0x0014,
    STUN_A_NONCE = 0x0015,
    TURN_A_XOR_RELAYED_ADDRESS = 0x0016,
    TURN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
    TURN_A_EVEN_PORT = 0x0018,
    TURN_A_REQUESTED_TRANSPORT = 0x0019,
    TURN_A_DONT_FRAGMENT = 0x001A,
    STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    STUN_A_PASSWORD_ALGORITHM = 0x001D,
    STUN_A_USERHASH = 0x001E,
    STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
    TURN_A_RESERVATION_TOKEN = 0x0022,
    STUN_A_PRIORITY = 0x0024,
    STUN_A_USE_CANDIDATE = 0x0025,
    TURN_A_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
    TURN_A_ADDRESS_ERROR_CODE = 0x8001,
    STUN_A_PASSWORD_ALGORITHMS = 0x8002,
    STUN_A_ALTERNATE_DOMAIN = 0x8003,
    TURN_A_ICMP = 0x8004,
    STUN_A_SOFTWARE = 0x8022,
    STUN_A_ALTERNATE_SERVER = 0x8023,
    STUN_A_FINGERPRINT = 0x8028,
    STUN_A_ICE_CONTROLLED = 0x8029,
    STUN_A_ICE_CONTROLLING = 0x802A,
};

struct stun_attr {
    uint16_t type;
    uint16_t len;       /* value length, without padding */
    uint16_t off;       /* offset of the attribute header in the message */
    const uint8_t *val; /* into the message */
};

struct stun_msg {
    uint16_t type;   /* method | class */
    uint16_t method; /* 12-bit method */
    uint16_t cls;    /* enum stun_class */
    uint8_t tid[12];
    const uint8_t *raw; /* the whole message (borrowed from the caller) */
    size_t len;         /* STUN_HEADER_LEN + attribute bytes */
    size_t nattrs;      /* attributes before MESSAGE-INTEGRITY, and the integrity ones */
    struct stun_attr attrs[STUN_MAX_ATTRS];
    int mi, mi256, fp; /* index in attrs of each, or -1 */
};

/* Whether the first bytes look like a STUN message (top bits 00 and magic cookie). */
bool stun_is_stun(const uint8_t *p, size_t n);

/*
 * Decodes one message from p (n bytes; extra bytes after the length are not
 * part of it). Attributes after MESSAGE-INTEGRITY other than
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are ignored (RFC 8489 §14.5);
 * nothing may follow FINGERPRINT. m points into p (borrowed). Returns the
 * message length, or -EAGAIN (fewer than a header or the announced length),
 * -EPROTO (not STUN: bits, cookie, length not a multiple of 4, attribute past
 * the end, bad FINGERPRINT position/size), -E2BIG (too many attributes).
 */
int stun_decode(const uint8_t *p, size_t n, struct stun_msg *m);

/* The first attribute of type t, or NULL. Borrowed from m. */
const struct stun_attr *stun_attr_find(const struct stun_msg *m, uint16_t t);

/*
 * Reads an (XOR-)address attribute into out (AF_INET/AF_INET6, port set).
 * 0 or -EPROTO (bad family or length).
 */
int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a,
                       struct sockaddr_storage *out);
int stun_attr_addr(const struct stun_attr *a, struct sockaddr_storage *out);
/* A 32-bit attribute (LIFETIME, REQUESTED-TRANSPORT...). 0 or -EPROTO. */
int stun_attr_u32(const struct stun_attr *a, uint32_t *out);
/* ERROR-CODE: code 300-699 and the reason as a slice into the message. 0 or -EPROTO. */
int stun_attr_error(const struct stun_attr *a, int *code, str *reason);

/* Whether FINGERPRINT is present and right. */
bool stun_check_fingerprint(const struct stun_msg *m);
/*
 * Whether MESSAGE-INTEGRITY (sha256=false) or MESSAGE-INTEGRITY-SHA256 is
 * present and right under key. Constant-time compare.
 */
bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen,
                          bool sha256);

/* The encoder: writes into a caller buffer; errors are sticky until finish. */
struct stun_enc {
    uint8_t *p;
    size_t cap, len;
    int err;
    uint8_t pad; /* padding byte (0; RFC 5769's vectors pad with ' ') */
};
void stun_enc_init(struct stun_enc *e, uint8_t *p, size_t cap, uint16_t type,
                   const uint8_t tid[12]);
void stun_enc_attr(struct stun_enc *e, uint16_t type, const void *val, size_t len);
void stun_enc_u32(struct stun_enc *e, uint16_t type, uint32_t v);
void stun_enc_xor_addr(struct stun_enc *e, uint16_t type, const struct sockaddr *sa);
void stun_enc_error(struct stun_enc *e, int code, const char *reason);
void stun_enc_unknown(struct stun_enc *e, const uint16_t *types, size_t n);
void stun_enc_integrity(struct stun_enc *e, const uint8_t *key, size_t keylen);
void stun_enc_integrity_sha256(struct stun_enc *e, const uint8_t *key, size_t keylen);
void stun_enc_fingerprint(struct stun_enc *e);
/* The encoded length, or -ENOSPC when something did not fit (the bytes are then garbage). */
int stun_enc_finish(const struct stun_enc *e);

/* The CRC-32 (ISO HDLC) of FINGERPRINT, before the XOR with 0x5354554e. */
uint32_t stun_crc32(const uint8_t *p, size_t n);

/*
 * For stream transports: the length of the next complete frame at p (STUN
 * message or ChannelData with its padding to 4), -EAGAIN when more bytes are
 * needed, -EPROTO when the first byte is neither STUN nor ChannelData.
 */
int stun_frame_len(const uint8_t *p, size_t n, bool stream);

/* The long-term key MD5(user ":" realm ":" password) (RFC 8489 §9.2.2). */
void stun_long_term_key(str user, str realm, str password, uint8_t key[16]);
/* TURN REST password: base64(HMAC-SHA1(secret, username)), NUL-terminated in out (>= 29). */
void turn_rest_password(str secret, str username, char out[32]);

/* ------------------------------------------------------------------------ */
/* TURN server core                                                         */

/* Limits on what one client controls. */
#define TURN_MAX_PERMISSIONS 32 /* per allocation */
#define TURN_MAX_CHANNELS 32    /* per allocation */
#define TURN_PERMISSION_LIFETIME 300
#define TURN_CHANNEL_LIFETIME 600
#define TURN_CHANNEL_COOLDOWN 300 /* an expired channel is kept unused this long */
#define TURN_MAX_USERNAME 128
#define TURN_RESERVATION_LIFETIME 30 /* seconds a reserved port is kept (RFC 8656 §7.2) */
#define TURN_MAX_RESERVATIONS 1024  /* in the whole server */

/* The 5-tuple a message came on: the transport and both addresses; conn for TCP. */
struct turn_tuple {
    enum transport transport; /* TRANSPORT_UDP or TRANSPORT_TCP */
    struct sockaddr_storage client, local;
    void *conn; /* TCP: the connection (glue-owned); UDP: the listening socket */
};

/* Looks up a long-term key for (user, realm): 0 and key set, or -ENOENT. Any thread. */
typedef int (*turn_lookup_fn)(void *ctx, const char *user, const char *realm, uint8_t key[16]);

/* Shared among all workers' cores: quotas (atomics), the nonce secret, users. */
struct turn_shared;

struct turn_io {
    /* Send bytes to the client of t (UDP: to t->client from t->conn; TCP: on t->conn). */
    void (*send_client)(void *ctx, const struct turn_tuple *t, const uint8_t *p, size_t n);
    /*
     * Opens a UDP relay socket of family (AF_INET/AF_INET6) for alloc (passed
     * back to turn_peer_input). even: an even port; *reserve_fd not NULL: also
     * bind the next port (odd) as a bare socket and return its fd there (an
     * RFC 8656 reservation). When adopt_fd >= 0, that bound socket (from an
     * earlier reservation) becomes the relay instead. 0 with *handle and
     * *addr set, -EADDRINUSE when no port is free, -EAFNOSUPPORT, other -errno.
     */
    int (*relay_open)(void *ctx, void *alloc, int family, bool even, int *reserve_fd,
                      int adopt_fd, void **handle, struct sockaddr_storage *addr);
    /* Closes a reserved socket that was never adopted. Any thread. */
    void (*reserve_close)(void *ctx, int fd);
    void (*relay_close)(void *ctx, void *handle);
    void (*relay_send)(void *ctx, void *handle, const struct sockaddr *peer, const uint8_t *p,
                       size_t n);
};

struct turn_stats {
    uint64_t allocations, relayed_to_peer, relayed_to_client, dropped;
};

struct turn_server;

/*
 * Shared state for n worker cores: copies what it needs from cfg (realm,
 * secrets, limits, peer ranges, static turn.users); lookup may be NULL.
 * 0, -ENOMEM or -EINVAL (bad turn.users). *out set only on success.
 */
int turn_shared_new(struct turn_shared **out, const struct config *cfg, turn_lookup_fn lookup,
                    void *lookup_ctx);
void turn_shared_free(struct turn_shared *sh);
/* Adds an address (the server's own) that peers may never be. */
void turn_shared_deny_addr(struct turn_shared *sh, const struct sockaddr *sa);
/* Current number of allocations over all workers. */
unsigned turn_shared_allocations(const struct turn_shared *sh);

/*
 * One core per worker loop (not thread-safe; shared state through sh).
 * mono: the clock for lifetimes; wall: Unix time in ms for REST expiries.
 * 0 or -ENOMEM; *out set only on success.
 */
int turn_server_new(struct turn_server **out, struct turn_shared *sh, const struct turn_io *io,
                    void *io_ctx, const struct clock_src *mono, const struct clock_src *wall);
/* Frees every allocation (closing their relays through io) and the core. */
void turn_server_free(struct turn_server *s);

/*
 * Handles one message from a client: a STUN message or ChannelData (one
 * datagram on UDP; one frame cut by stun_frame_len on TCP). Answers through io.
 * Returns 0, or -EPROTO when the bytes were neither (dropped).
 */
int turn_client_input(struct turn_server *s, const struct turn_tuple *t, const uint8_t *p,
                      size_t n);
/* Data arriving on the relay socket of alloc from peer. */
void turn_peer_input(struct turn_server *s, void *alloc, const struct sockaddr *peer,
                     const uint8_t *p, size_t n);
/* A TCP client connection closed: frees its allocation. */
void turn_conn_closed(struct turn_server *s, void *conn);
/* Expires allocations, permissions and channels; call about once a second. */
void turn_server_tick(struct turn_server *s);
size_t turn_server_count(const struct turn_server *s);
/* Whether the TCP connection conn carries an allocation. */
bool turn_server_has_conn(const struct turn_server *s, void *conn);
const struct turn_stats *turn_server_stats(const struct turn_server *s);

/* ------------------------------------------------------------------------ */
/* The service: the core bound to libuv in rtcd's worker loops (service.c)  */

struct worker;
struct turn_service;

/*
 * Prepares the STUN/TURN service for cfg->turn (nothing is opened yet):
 * lookup (may be NULL) gives long-term keys of store users. 0, -ENOMEM,
 * -EINVAL (bad turn.users or relay_address). *out set only on success.
 */
int turn_service_new(struct turn_service **out, const struct config *cfg, turn_lookup_fn lookup,
                     void *lookup_ctx);
/* Frees it; call after the worker pool stopped (on_stop ran everywhere). */
void turn_service_free(struct turn_service *svc);
/*
 * Worker hooks (ctx = the service): on_start opens this worker's UDP sockets
 * (SO_REUSEPORT) and TCP listeners on turn.listen and its timer; on_stop
 * closes them with every allocation of the worker.
 */
void turn_service_on_start(struct worker *w, void *svc);
void turn_service_on_stop(struct worker *w, void *svc);
/* 0, or the first error a worker met opening its sockets (negative errno). */
int turn_service_error(const struct turn_service *svc);

#endif

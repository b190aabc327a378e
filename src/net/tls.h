/*
 * tls — TLS 1.2/1.3 (OpenSSL 3) as a layer under any stream flow of net.
 *
 * Framing-agnostic: ciphertext in from the socket, plaintext out into the
 * flow's buffer; plaintext in from the layer above, ciphertext out through a
 * send callback. OpenSSL never touches a socket: a small BIO reads from the
 * bytes just received and writes through the callback, so a handshake never
 * blocks a worker loop.
 *
 * struct tls_server holds the contexts (server and client side), built from
 * the [tls] keys on one thread (start-up, SIGHUP) and swapped under a lock:
 * new connections take the current context, live ones keep theirs (each SSL
 * holds a reference to its SSL_CTX).
 */
#ifndef RTCD_NET_TLS_H
#define RTCD_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "base/config.h"

struct tls_server;
struct tls_conn;

/*
 * The TLS contexts for cfg. With serve set (some listener is TLS) a
 * certificate is needed: tls.certificate/private_key, else the self-signed
 * pair in data_dir/tls (cert.pem, key.pem mode 0600), created on the first
 * start and reused after. The certificate's SHA-256 fingerprint is logged.
 * Blocking (files, key generation): call from the main thread before the
 * workers start. 0, or a negative errno with err saying what is wrong.
 */
int tls_server_new(struct tls_server **out, const struct config *cfg, bool serve, char *err,
                   size_t errlen);
/*
 * Builds new contexts from cfg (the files are read again) and makes them the
 * ones new connections use; connections already open keep theirs. Any thread
 * (blocking file I/O: not a worker). On failure nothing changes: a negative
 * errno and err.
 */
int tls_server_reload(struct tls_server *t, const struct config *cfg, char *err, size_t errlen);
/* Frees t; every tls_conn made from it must be gone. NULL is fine. */
void tls_server_free(struct tls_server *t);
/* Handshakes completed and failed since start (relaxed reads). */
void tls_server_counts(const struct tls_server *t, uint64_t *done, uint64_t *failed);
/* Seconds a handshake may take (tls.handshake_timeout, follows reloads). */
uint32_t tls_server_handshake_timeout(const struct tls_server *t);
/* "AB:CD:..." SHA-256 fingerprint of the serving certificate ("" when none); borrowed. */
const char *tls_server_fingerprint(const struct tls_server *t, char *buf, size_t len);

/* Where a connection's ciphertext goes: 0, or a negative errno (the connection fails). */
typedef int (*tls_send_fn)(void *ctx, const void *data, size_t len);

/*
 * A TLS connection: server side (accepted) or client side (connected, peer
 * is the address whose certificate is verified unless tls.verify_server is
 * no). Server side counts against tls.max_handshakes until its handshake
 * ends: -EBUSY when that many are in progress. New allocation owned by the
 * caller (tls_conn_free); -ENOMEM, -EINVAL (no certificate to serve).
 */
int tls_conn_new(struct tls_conn **out, struct tls_server *t, bool client,
                 const struct sockaddr_storage *peer, tls_send_fn send, void *send_ctx);
/* Client side: sends the ClientHello. 0 or a negative errno. */
int tls_conn_start(struct tls_conn *c);
/*
 * Feeds ciphertext (data may be NULL to go on after plain was full) and
 * appends what it decrypts to plain, up to plain's cap. Drives the
 * handshake. 0; -ECONNRESET when the peer closed TLS; -EPROTO on a TLS error
 * (tls_conn_why says which); -ENOBUFS when too much input waits.
 */
int tls_conn_input(struct tls_conn *c, const void *data, size_t len, struct buf *plain);
/* Whether input is left over (plain was full): call tls_conn_input again after reading plain. */
bool tls_conn_pending(const struct tls_conn *c);
/* Whether the handshake has completed. */
bool tls_conn_ready(const struct tls_conn *c);
/*
 * Encrypts data and sends it; before the handshake ends it is kept (at most
 * max bytes) and sent when it does. 0, -ENOBUFS, -EPROTO, or the send error.
 */
int tls_conn_write(struct tls_conn *c, const void *data, size_t len, size_t max);
/* Sends close_notify (best effort, through the send callback). */
void tls_conn_shutdown(struct tls_conn *c);
/* Why the last call failed, for logs ("certificate verify failed", ...); borrowed. */
const char *tls_conn_why(const struct tls_conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake; borrowed. */
const char *tls_conn_info(const struct tls_conn *c, char *buf, size_t len);
void tls_conn_free(struct tls_conn *c);

#endif

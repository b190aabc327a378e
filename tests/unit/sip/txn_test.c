/*
 * Unit tests for src/sip/txn.c: every state and timer of RFC 3261 §17 and
 * RFC 6026, driven with a fake clock and a captured transport.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sip/txn.h"

#define T1 500
#define T2 4000
#define T4 5000

struct sent {
    char data[2048];
    size_t len;
    uint64_t at;
};

static struct {
    struct sent sent[64];
    int nsent;
    int requests, acks, responses, strays, timeouts, terminated, transport_errors;
    uint16_t last_status;
    struct txn *last_server;
    uint64_t now;
    int send_fail;
} E;

static int tu_send(void *ctx, const struct net_dest *d, const char *data, size_t len)
{
    (void)ctx;
    (void)d;
    if (E.send_fail)
        return -EPIPE;
    assert_true(E.nsent < 64);
    struct sent *s = &E.sent[E.nsent++];
    assert_true(len < sizeof s->data);
    memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->len = len;
    s->at = E.now;
    return 0;
}

static void tu_request(void *ctx, struct txn *st, const struct sip_msg *req,
                       const struct net_rx *rx)
{
    (void)ctx;
    (void)req;
    (void)rx;
    E.requests++;
    E.last_server = st;
}

static void tu_ack(void *ctx, const struct sip_msg *ack, const struct net_rx *rx)
{
    (void)ctx;
    (void)ack;
    (void)rx;
    E.acks++;
}

static void tu_response(void *ctx, struct txn *ct, const struct sip_msg *resp,
                        const struct net_rx *rx)
{
    (void)ctx;
    (void)ct;
    (void)rx;
    E.responses++;
    E.last_status = resp->status;
}

static void tu_stray(void *ctx, const struct sip_msg *resp, const struct net_rx *rx)
{
    (void)ctx;
    (void)resp;
    (void)rx;
    E.strays++;
}

static void tu_timeout(void *ctx, struct txn *ct, bool transport_error)
{
    (void)ctx;
    (void)ct;
    E.timeouts++;
    E.transport_errors += transport_error;
}

static void tu_terminated(void *ctx, struct txn *t)
{
    (void)ctx;
    if (t == E.last_server)
        E.last_server = NULL;
    E.terminated++;
}

static const struct txn_user TU = { NULL,     tu_send,    tu_request, tu_ack, tu_response,
                                    tu_stray, tu_timeout, tu_terminated };
static const struct txn_timers TM = { T1, T2, T4, 180000 };

static struct txn_table *table(size_t max)
{
    memset(&E, 0, sizeof E);
    E.now = 1000;
    struct txn_table *tt;
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    assert_int_equal(txn_table_new(&tt, &TM, &TU, &lim, max), 0);
    return tt;
}

static char msgbuf[4096];

/* A request text; status 0 = request. */
static const char *request(const char *method, const char *branch, const char *cseq_method,
                           unsigned cseq, const char *to_tag)
{
    snprintf(msgbuf, sizeof msgbuf,
             "%s sip:bob@example.com SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=%s\r\n"
             "Max-Forwards: 70\r\n"
             "Route: <sip:proxy.example.com;lr>\r\n"
             "From: <sip:alice@example.com>;tag=a1\r\n"
             "To: <sip:bob@example.com>%s%s\r\n"
             "Call-ID: call-1@192.0.2.1\r\n"
             "CSeq: %u %s\r\n"
             "Content-Length: 0\r\n\r\n",
             method, branch, to_tag ? ";tag=" : "", to_tag ? to_tag : "", cseq, cseq_method);
    return msgbuf;
}

static const char *response(unsigned status, const char *branch, const char *cseq_method)
{
    snprintf(msgbuf, sizeof msgbuf,
             "SIP/2.0 %u Whatever\r\n"
             "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=%s\r\n"
             "From: <sip:alice@example.com>;tag=a1\r\n"
             "To: <sip:bob@example.com>;tag=b2\r\n"
             "Call-ID: call-1@192.0.2.1\r\n"
             "CSeq: 1 %s\r\n"
             "Content-Length: 0\r\n\r\n",
             status, branch, cseq_method);
    return msgbuf;
}

static struct net_rx rx_of(const char *text, enum transport tp)
{
    struct net_rx rx = { .data = text, .len = strlen(text), .transport = tp };
    struct sockaddr_in *a = (struct sockaddr_in *)&rx.src;
    a->sin_family = AF_INET;
    a->sin_port = htons(5062);
    inet_pton(AF_INET, "192.0.2.1", &a->sin_addr);
    rx.srclen = sizeof *a;
    rx.flow_id = tp == TRANSPORT_UDP ? 0 : 77;
    return rx;
}

static int feed(struct txn_table *tt, const char *text, enum transport tp)
{
    static struct sip_hdr hdrs[64];
    struct sip_msg m;
    sip_msg_init(&m, hdrs, 64);
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    struct net_rx rx = rx_of(text, tp);
    assert_true(sip_msg_parse(&m, text, strlen(text), &lim, SIP_PARSE_DATAGRAM) > 0);
    return txn_table_recv(tt, &m, &rx, E.now);
}

/* Advances the clock to t, running the timers at each step of 100 ms. */
static void run_until(struct txn_table *tt, uint64_t t)
{
    while (E.now < t) {
        uint64_t next = txn_table_next(tt);
        E.now = next <= t ? next : t;
        txn_table_tick(tt, E.now);
    }
}

static void respond(struct txn *st, unsigned status)
{
    char out[512];
    int n = snprintf(out, sizeof out, "SIP/2.0 %u X\r\nContent-Length: 0\r\n\r\n", status);
    assert_int_equal(txn_respond(st, (uint16_t)status, out, (size_t)n, E.now), 0);
}

static void test_server_non_invite_udp(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    assert_int_equal(feed(tt, request("MESSAGE", "z9hG4bKm1", "MESSAGE", 1, NULL), TRANSPORT_UDP), 0);
    assert_int_equal(E.requests, 1);
    struct txn *st = E.last_server;
    assert_non_null(st);
    assert_int_equal(txn_state(st), TXN_TRYING);
    /* a retransmission before any response: absorbed, nothing sent */
    assert_int_equal(feed(tt, request("MESSAGE", "z9hG4bKm1", "MESSAGE", 1, NULL), TRANSPORT_UDP), 0);
    assert_int_equal(E.requests, 1);
    assert_int_equal(E.nsent, 0);
    respond(st, 200);
    assert_int_equal(E.nsent, 1);
    assert_int_equal(txn_state(st), TXN_COMPLETED);
    /* a retransmission now gets the 200 again */
    feed(tt, request("MESSAGE", "z9hG4bKm1", "MESSAGE", 1, NULL), TRANSPORT_UDP);
    assert_int_equal(E.nsent, 2);
    assert_int_equal(E.requests, 1);
    /* a second response is refused */
    char r[] = "SIP/2.0 500 X\r\n\r\n";
    assert_int_equal(txn_respond(st, 500, r, sizeof r - 1, E.now), -EALREADY);
    /* Timer J: 64*T1 */
    run_until(tt, 1000 + 64 * T1 - 1);
    assert_int_equal(E.terminated, 0);
    run_until(tt, 1000 + 64 * T1);
    assert_int_equal(E.terminated, 1);
    assert_int_equal(txn_table_next(tt), UINT64_MAX);
    /* the same request again is a new transaction */
    feed(tt, request("MESSAGE", "z9hG4bKm1", "MESSAGE", 1, NULL), TRANSPORT_UDP);
    assert_int_equal(E.requests, 2);
    txn_table_free(tt);
    assert_int_equal(E.terminated, 2);
}

static void test_server_invite_non2xx(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("INVITE", "z9hG4bKi1", "INVITE", 1, NULL), TRANSPORT_UDP);
    struct txn *st = E.last_server;
    assert_int_equal(txn_state(st), TXN_PROCEEDING);
    respond(st, 100);
    feed(tt, request("INVITE", "z9hG4bKi1", "INVITE", 1, NULL), TRANSPORT_UDP);
    assert_int_equal(E.nsent, 2); /* the 100 again */
    respond(st, 486);
    assert_int_equal(txn_state(st), TXN_COMPLETED);
    /* Timer G: T1, 2T1, 4T1, then T2 */
    run_until(tt, 1000 + 8000);
    assert_int_equal(E.nsent, 3 + 4);
    assert_int_equal(E.sent[3].at, 1500);
    assert_int_equal(E.sent[4].at, 2500);
    assert_int_equal(E.sent[5].at, 4500);
    assert_int_equal(E.sent[6].at, 8500);
    /* the ACK (same branch, non-2xx) confirms; G stops; I = T4 */
    feed(tt, request("ACK", "z9hG4bKi1", "ACK", 1, "b2"), TRANSPORT_UDP);
    assert_int_equal(txn_state(st), TXN_CONFIRMED);
    assert_int_equal(E.acks, 0);
    int sent = E.nsent;
    run_until(tt, 9000 + T4 - 1);
    assert_int_equal(E.nsent, sent);
    assert_int_equal(E.terminated, 0);
    run_until(tt, 9000 + T4);
    assert_int_equal(E.terminated, 1);
    txn_table_free(tt);
}

static void test_server_invite_timer_h(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("INVITE", "z9hG4bKi2", "INVITE", 1, NULL), TRANSPORT_UDP);
    respond(E.last_server, 603);
    run_until(tt, 1000 + 64 * T1);
    /* G at 500, 1500, 3500, 7500, 11500, ..., 31500: 10 retransmissions, then H */
    assert_int_equal(E.nsent, 1 + 10);
    assert_int_equal(E.terminated, 1);
    txn_table_free(tt);
}

static void test_server_invite_2xx_accepted(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("INVITE", "z9hG4bKi3", "INVITE", 1, NULL), TRANSPORT_UDP);
    struct txn *st = E.last_server;
    respond(st, 200);
    assert_int_equal(txn_state(st), TXN_ACCEPTED);
    /* RFC 6026: a retransmitted INVITE is absorbed without an answer */
    feed(tt, request("INVITE", "z9hG4bKi3", "INVITE", 1, NULL), TRANSPORT_UDP);
    assert_int_equal(E.nsent, 1);
    assert_int_equal(E.requests, 1);
    /* the user may retransmit its 2xx; a non-2xx is refused */
    respond(st, 200);
    assert_int_equal(E.nsent, 2);
    char r[] = "SIP/2.0 500 X\r\n\r\n";
    assert_int_equal(txn_respond(st, 500, r, sizeof r - 1, E.now), -EALREADY);
    /* an ACK reusing the INVITE's branch goes to the user (end to end) */
    feed(tt, request("ACK", "z9hG4bKi3", "ACK", 1, "b2"), TRANSPORT_UDP);
    assert_int_equal(E.acks, 1);
    /* an ACK with a new branch too */
    feed(tt, request("ACK", "z9hG4bKother", "ACK", 1, "b2"), TRANSPORT_UDP);
    assert_int_equal(E.acks, 2);
    run_until(tt, 1000 + 64 * T1);
    assert_int_equal(E.terminated, 1);
    txn_table_free(tt);
}

static void test_server_tcp(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("OPTIONS", "z9hG4bKo1", "OPTIONS", 1, NULL), TRANSPORT_TCP);
    respond(E.last_server, 200);
    /* reliable: Timer J = 0 */
    assert_int_equal(E.terminated, 1);
    feed(tt, request("INVITE", "z9hG4bKi4", "INVITE", 1, NULL), TRANSPORT_TCP);
    respond(E.last_server, 486);
    run_until(tt, 1000 + 10000);
    assert_int_equal(E.nsent, 2); /* no Timer G on TCP */
    feed(tt, request("ACK", "z9hG4bKi4", "ACK", 1, "b2"), TRANSPORT_TCP);
    assert_int_equal(E.terminated, 2); /* Timer I = 0 */
    txn_table_free(tt);
}

static void test_server_rfc2543_matching(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("INVITE", "oldstyle1", "INVITE", 5, NULL), TRANSPORT_UDP);
    assert_int_equal(E.requests, 1);
    respond(E.last_server, 404);
    feed(tt, request("INVITE", "oldstyle1", "INVITE", 5, NULL), TRANSPORT_UDP);
    assert_int_equal(E.requests, 1);
    assert_int_equal(E.nsent, 2);
    /* its ACK (same Call-ID, CSeq number, From tag, Via) matches too */
    feed(tt, request("ACK", "oldstyle1", "ACK", 5, "b2"), TRANSPORT_UDP);
    assert_int_equal(txn_state(E.last_server), TXN_CONFIRMED);
    txn_table_free(tt);
}

static void test_cancel_lookup(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    feed(tt, request("INVITE", "z9hG4bKc1", "INVITE", 1, NULL), TRANSPORT_UDP);
    struct txn *inv = E.last_server;
    feed(tt, request("CANCEL", "z9hG4bKc1", "CANCEL", 1, NULL), TRANSPORT_UDP);
    assert_int_equal(E.requests, 2); /* CANCEL has its own transaction */
    struct txn *cancel = E.last_server;
    assert_true(cancel != inv);
    static struct sip_hdr hdrs[64];
    struct sip_msg m;
    sip_msg_init(&m, hdrs, 64);
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    const char *c = request("CANCEL", "z9hG4bKc1", "CANCEL", 1, NULL);
    assert_true(sip_msg_parse(&m, c, strlen(c), &lim, SIP_PARSE_DATAGRAM) > 0);
    assert_ptr_equal(txn_find_cancelled(tt, &m), inv);
    c = request("CANCEL", "z9hG4bKnone", "CANCEL", 1, NULL);
    assert_true(sip_msg_parse(&m, c, strlen(c), &lim, SIP_PARSE_DATAGRAM) > 0);
    assert_null(txn_find_cancelled(tt, &m));
    txn_table_free(tt);
}

static struct txn *client(struct txn_table *tt, const char *method, const char *branch,
                          enum transport tp)
{
    struct net_dest d = { .transport = tp, .flow_id = tp == TRANSPORT_UDP ? 0 : 5 };
    const char *req = request(method, branch, method, 1, NULL);
    struct txn *ct = NULL;
    assert_int_equal(txn_client_new(tt, &ct, &d, sip_method_from_str(str_cstr(method)),
                                    str_cstr(branch), req, strlen(req), NULL, E.now),
                     0);
    return ct;
}

static void test_client_non_invite(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    struct txn *ct = client(tt, "MESSAGE", "z9hG4bKc2", TRANSPORT_UDP);
    assert_int_equal(E.nsent, 1);
    assert_int_equal(txn_state(ct), TXN_TRYING);
    /* Timer E: 500, 1000, 2000, 4000, 4000 ... */
    run_until(tt, 1000 + 7500);
    assert_int_equal(E.nsent, 1 + 4);
    assert_int_equal(E.sent[4].at, 8500);
    /* a provisional: E goes on at T2 */
    feed(tt, response(100, "z9hG4bKc2", "MESSAGE"), TRANSPORT_UDP);
    assert_int_equal(txn_state(ct), TXN_PROCEEDING);
    assert_int_equal(E.responses, 1);
    run_until(tt, 8500 + T2);
    assert_int_equal(E.nsent, 6);
    feed(tt, response(202, "z9hG4bKc2", "MESSAGE"), TRANSPORT_UDP);
    assert_int_equal(E.last_status, 202);
    assert_int_equal(txn_state(ct), TXN_COMPLETED);
    /* a retransmitted final is absorbed */
    feed(tt, response(202, "z9hG4bKc2", "MESSAGE"), TRANSPORT_UDP);
    assert_int_equal(E.responses, 2);
    /* Timer K = T4 */
    uint64_t t0 = E.now;
    run_until(tt, t0 + T4);
    assert_int_equal(E.terminated, 1);
    assert_int_equal(E.nsent, 6);
    /* a response for nothing: stray */
    feed(tt, response(200, "z9hG4bKc2", "MESSAGE"), TRANSPORT_UDP);
    assert_int_equal(E.strays, 1);
    txn_table_free(tt);
}

/* Ends of finished transactions wake the table on a 100 ms grid; timeouts and
 * retransmissions keep their exact times. */
static void test_linger_grid(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    E.now = 1037;
    feed(tt, request("MESSAGE", "z9hG4bKg1", "MESSAGE", 1, NULL), TRANSPORT_UDP);
    struct txn *st = E.last_server;
    struct txn *ct = client(tt, "MESSAGE", "z9hG4bKg2", TRANSPORT_UDP);
    assert_int_equal(txn_table_next(tt), 1037 + T1); /* Timer E, exact */
    E.now = 1040;
    feed(tt, response(200, "z9hG4bKg2", "MESSAGE"), TRANSPORT_UDP);
    assert_int_equal(txn_state(ct), TXN_COMPLETED);
    /* Timer F is gone; Timer K (1040 + T4) lingers: woken at the next 100 ms */
    assert_int_equal(txn_table_next(tt), 6100);
    respond(st, 200); /* Timer J (1040 + 64*T1) lingers too */
    assert_int_equal(txn_table_next(tt), 6100);
    txn_table_tick(tt, 6039); /* not due yet */
    assert_int_equal(E.terminated, 0);
    txn_table_tick(tt, 6100);
    assert_int_equal(E.terminated, 1);
    assert_int_equal(txn_table_next(tt), 33100);
    run_until(tt, 33100);
    assert_int_equal(E.terminated, 2);
    assert_int_equal(txn_table_next(tt), UINT64_MAX);
    /* a client timeout stays exact: Timer F */
    E.now = 40001;
    client(tt, "OPTIONS", "z9hG4bKg3", TRANSPORT_UDP);
    run_until(tt, 40001 + 64 * T1 - 1);
    assert_int_equal(E.timeouts, 0);
    run_until(tt, 40001 + 64 * T1);
    assert_int_equal(E.timeouts, 1);
    txn_table_free(tt);
}

static void test_client_timer_f(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    client(tt, "OPTIONS", "z9hG4bKc3", TRANSPORT_UDP);
    run_until(tt, 1000 + 64 * T1);
    /* 500, 1500, 3500, 7500, 11500, ..., 31500 */
    assert_int_equal(E.nsent, 1 + 10);
    assert_int_equal(E.timeouts, 1);
    assert_int_equal(E.terminated, 1);
    struct txn_stats st;
    txn_table_stats(tt, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.live, 0);
    txn_table_free(tt);
}

static void test_client_invite_timer_b(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    client(tt, "INVITE", "z9hG4bKc4", TRANSPORT_UDP);
    run_until(tt, 1000 + 64 * T1);
    /* Timer A doubles without a cap: 500, 1500, 3500, 7500, 15500, 31500 */
    assert_int_equal(E.nsent, 1 + 6);
    assert_int_equal(E.sent[6].at, 1000 + 31500);
    assert_int_equal(E.timeouts, 1);
    txn_table_free(tt);
}

static void test_client_invite_non2xx(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    struct txn *ct = client(tt, "INVITE", "z9hG4bKc5", TRANSPORT_UDP);
    feed(tt, response(180, "z9hG4bKc5", "INVITE"), TRANSPORT_UDP);
    assert_int_equal(txn_state(ct), TXN_PROCEEDING);
    run_until(tt, 1000 + 40000); /* no retransmissions in Proceeding, no Timer B */
    assert_int_equal(E.nsent, 1);
    assert_int_equal(E.timeouts, 0);
    feed(tt, response(486, "z9hG4bKc5", "INVITE"), TRANSPORT_UDP);
    assert_int_equal(txn_state(ct), TXN_COMPLETED);
    assert_int_equal(E.last_status, 486);
    /* the transaction sent the ACK itself */
    assert_int_equal(E.nsent, 2);
    const char *ack = E.sent[1].data;
    assert_non_null(strstr(ack, "ACK sip:bob@example.com SIP/2.0\r\n"));
    assert_non_null(strstr(ack, "branch=z9hG4bKc5"));
    assert_non_null(strstr(ack, "CSeq: 1 ACK\r\n"));
    assert_non_null(strstr(ack, "To: <sip:bob@example.com>;tag=b2\r\n"));
    assert_non_null(strstr(ack, "Route: <sip:proxy.example.com;lr>\r\n"));
    /* the 486 again: the ACK again, nothing to the user */
    feed(tt, response(486, "z9hG4bKc5", "INVITE"), TRANSPORT_UDP);
    assert_int_equal(E.nsent, 3);
    assert_int_equal(E.responses, 2);
    /* Timer D: 32 s */
    uint64_t t0 = E.now;
    run_until(tt, t0 + 31999);
    assert_int_equal(E.terminated, 0);
    run_until(tt, t0 + 32000);
    assert_int_equal(E.terminated, 1);
    txn_table_free(tt);
}

static void test_client_invite_2xx(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    struct txn *ct = client(tt, "INVITE", "z9hG4bKc6", TRANSPORT_UDP);
    feed(tt, response(200, "z9hG4bKc6", "INVITE"), TRANSPORT_UDP);
    assert_int_equal(txn_state(ct), TXN_ACCEPTED);
    /* RFC 6026: 2xx retransmissions go to the user; no ACK from the transaction */
    feed(tt, response(200, "z9hG4bKc6", "INVITE"), TRANSPORT_UDP);
    assert_int_equal(E.responses, 2);
    assert_int_equal(E.nsent, 1);
    run_until(tt, E.now + 64 * T1);
    assert_int_equal(E.terminated, 1);
    txn_table_free(tt);
}

static void test_client_timer_c(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    client(tt, "INVITE", "z9hG4bKc7", TRANSPORT_UDP);
    feed(tt, response(180, "z9hG4bKc7", "INVITE"), TRANSPORT_UDP);
    run_until(tt, 1000 + 180000 - 1);
    assert_int_equal(E.timeouts, 0);
    run_until(tt, 1000 + 180000);
    assert_int_equal(E.timeouts, 1);
    txn_table_free(tt);
}

static void test_client_tcp(void **state)
{
    (void)state;
    struct txn_table *tt = table(0);
    client(tt, "MESSAGE", "z9hG4bKc8", TRANSPORT_TCP);
    run_until(tt, 1000 + 20000);
    assert_int_equal(E.nsent, 1); /* no Timer E on TCP */
    feed(tt, response(200, "z9hG4bKc8", "MESSAGE"), TRANSPORT_TCP);
    assert_int_equal(E.terminated, 1); /* Timer K = 0 */
    /* a transport failure on send: no transaction */
    E.send_fail = 1;
    struct net_dest d = { .transport = TRANSPORT_TCP, .flow_id = 5 };
    struct txn *ct;
    const char *req = request("MESSAGE", "z9hG4bKc9", "MESSAGE", 1, NULL);
    assert_int_equal(txn_client_new(tt, &ct, &d, SIP_M_MESSAGE, STR("z9hG4bKc9"), req,
                                    strlen(req), NULL, E.now),
                     -EPIPE);
    txn_table_free(tt);
}

static void test_limits_and_dup(void **state)
{
    (void)state;
    struct txn_table *tt = table(2);
    assert_int_equal(feed(tt, request("MESSAGE", "z9hG4bKl1", "MESSAGE", 1, NULL), TRANSPORT_UDP), 0);
    assert_int_equal(feed(tt, request("MESSAGE", "z9hG4bKl2", "MESSAGE", 1, NULL), TRANSPORT_UDP), 0);
    assert_int_equal(feed(tt, request("MESSAGE", "z9hG4bKl3", "MESSAGE", 1, NULL), TRANSPORT_UDP),
                     -ENOSPC);
    txn_table_free(tt);
    tt = table(0);
    client(tt, "MESSAGE", "z9hG4bKd1", TRANSPORT_UDP);
    struct net_dest d = { .transport = TRANSPORT_UDP };
    struct txn *ct;
    const char *req = request("MESSAGE", "z9hG4bKd1", "MESSAGE", 1, NULL);
    assert_int_equal(txn_client_new(tt, &ct, &d, SIP_M_MESSAGE, STR("z9hG4bKd1"), req, strlen(req),
                                    NULL, E.now),
                     -EEXIST);
    assert_int_equal(txn_client_new(tt, &ct, &d, SIP_M_ACK, STR("z9hG4bKd2"), req, strlen(req),
                                    NULL, E.now),
                     -EINVAL);
    txn_table_free(tt);
}

static void test_many_timers(void **state)
{
    (void)state;
    /* 2000 client transactions with staggered starts: all end by Timer F, in order */
    struct txn_table *tt = table(0);
    char branch[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(branch, sizeof branch, "z9hG4bKmany%d", i);
        E.nsent = 0;
        client(tt, "OPTIONS", branch, TRANSPORT_TCP);
        E.now += 3;
    }
    run_until(tt, E.now + 64 * T1);
    assert_int_equal(E.timeouts, 2000);
    assert_int_equal(txn_table_next(tt), UINT64_MAX);
    txn_table_free(tt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_non_invite_udp),
        cmocka_unit_test(test_server_invite_non2xx),
        cmocka_unit_test(test_server_invite_timer_h),
        cmocka_unit_test(test_server_invite_2xx_accepted),
        cmocka_unit_test(test_server_tcp),
        cmocka_unit_test(test_server_rfc2543_matching),
        cmocka_unit_test(test_cancel_lookup),
        cmocka_unit_test(test_client_non_invite),
        cmocka_unit_test(test_client_timer_f),
        cmocka_unit_test(test_linger_grid),
        cmocka_unit_test(test_client_invite_timer_b),
        cmocka_unit_test(test_client_invite_non2xx),
        cmocka_unit_test(test_client_invite_2xx),
        cmocka_unit_test(test_client_timer_c),
        cmocka_unit_test(test_client_tcp),
        cmocka_unit_test(test_limits_and_dup),
        cmocka_unit_test(test_many_timers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

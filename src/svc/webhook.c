/*
 * svc/webhook — libcurl multi on a libuv loop (see webhook.h). curl tells us
 * which sockets to watch (socket callback → uv_poll) and when to call it back
 * (timer callback → one uv_timer); we tell curl about readiness with
 * curl_multi_socket_action and collect finished transfers with
 * curl_multi_info_read. Retries wait on a per-call uv_timer.
 */
#include "svc/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/random.h"

struct call;

struct webhook {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct webhook_opts o;
    struct call *calls; /* every live call (in flight or waiting) */
    size_t ncalls;
    unsigned handles; /* open uv handles (timer + polls + retry timers) */
    bool freeing;
};

struct call {
    struct webhook *wh;
    struct call *next, *prev;
    CURL *easy;
    struct curl_slist *hdrs;
    char *url;
    struct buf body;
    struct buf resp;
    char ctype[128];
    bool too_big;
    unsigned attempts;
    uv_timer_t retry;
    bool retry_open;
    webhook_done_fn done;
    void *arg;
};

struct sock {
    uv_poll_t poll;
    struct webhook *wh;
    curl_socket_t fd;
};

static int g_init_rc = -1;

int webhook_global_init(void)
{
    if (g_init_rc == 0)
        return 0;
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
    return g_init_rc;
}

void webhook_global_cleanup(void)
{
    if (g_init_rc == 0)
        curl_global_cleanup();
    g_init_rc = -1;
}

int webhook_sign(str secret, str body, char out[72])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), secret.s ? secret.s : "", (int)secret.len,
              (const unsigned char *)(body.s ? body.s : ""), body.len, mac, &n))
        return -ENOMEM;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < n; i++) {
        out[7 + 2 * i] = hex[mac[i] >> 4];
        out[7 + 2 * i + 1] = hex[mac[i] & 15];
    }
    out[7 + 2 * n] = 0;
    return 0;
}

static void handle_closed(uv_handle_t *h)
{
    struct webhook *wh = h->data;
    if (h->type == UV_POLL)
        free(h); /* struct sock starts with its poll handle */
    if (--wh->handles == 0 && wh->freeing)
        free(wh);
}

/* ---- finishing a call ---- */

static void call_free(struct call *c)
{
    struct webhook *wh = c->wh;
    if (c->prev)
        c->prev->next = c->next;
    else
        wh->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    wh->ncalls--;
    if (c->easy) {
        curl_multi_remove_handle(wh->multi, c->easy);
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->hdrs);
    free(c->url);
    buf_free(&c->body);
    buf_free(&c->resp);
}

static void retry_closed(uv_handle_t *h)
{
    struct call *c = h->data;
    struct webhook *wh = c->wh;
    free(c);
    if (--wh->handles == 0 && wh->freeing)
        free(wh);
}

static void call_end(struct call *c, int rc, long status)
{
    str ct = str_cstr(c->ctype);
    c->done(c->arg, rc, status, ct, buf_str(&c->resp), c->attempts);
    bool timer = c->retry_open;
    c->retry_open = false;
    call_free(c);
    if (timer) /* the call's memory goes with its timer's close callback */
        uv_close((uv_handle_t *)&c->retry, retry_closed);
    else
        free(c);
}

/* ---- curl callbacks ---- */

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct call *c = arg;
    size_t len = size * n;
    if (buf_append(&c->resp, p, len) < 0) {
        c->too_big = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

static int start_attempt(struct call *c);

static void retry_fire(uv_timer_t *t)
{
    struct call *c = t->data;
    if (start_attempt(c) < 0)
        call_end(c, -ENOMEM, 0);
}

static uint64_t backoff(const struct webhook *wh, unsigned attempt)
{
    uint64_t ms = wh->o.backoff_ms;
    for (unsigned i = 1; i < attempt && ms < 30000; i++)
        ms *= 2;
    if (ms > 30000)
        ms = 30000;
    return ms / 2 + random_below(ms / 2 + 1); /* "equal jitter" */
}

static void finished(struct call *c, CURLcode res)
{
    struct webhook *wh = c->wh;
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    char *ct = NULL;
    curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(c->ctype, sizeof c->ctype, "%s", ct ? ct : "");
    curl_multi_remove_handle(wh->multi, c->easy);
    int rc = 0;
    if (c->too_big)
        rc = -EMSGSIZE;
    else if (res == CURLE_OPERATION_TIMEDOUT)
        rc = -ETIMEDOUT;
    else if (res == CURLE_COULDNT_CONNECT)
        rc = -ECONNREFUSED;
    else if (res != CURLE_OK)
        rc = -EIO;
    bool transient = (rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EIO) ||
                     (rc == 0 && (status == 429 || status >= 500));
    if (transient && c->attempts <= wh->o.retries && !wh->freeing) {
        uint64_t wait = backoff(wh, c->attempts);
        log_debug("webhook", "%s: attempt %u failed (%s, %ld); again in %llu ms", c->url,
                  c->attempts, rc ? strerror(-rc) : "status", status, (unsigned long long)wait);
        if (!c->retry_open) {
            uv_timer_init(wh->loop, &c->retry);
            c->retry.data = c;
            c->retry_open = true;
            wh->handles++;
        }
        uv_timer_start(&c->retry, retry_fire, wait, 0);
        return;
    }
    if (rc < 0)
        log_info("webhook", "%s: failed after %u attempt(s): %s", c->url, c->attempts,
                 strerror(-rc));
    call_end(c, rc, status);
}

static void check_done(struct webhook *wh)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(wh->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct call *c = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c)
            finished(c, m->data.result);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock *s = (struct sock *)p;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    curl_multi_socket_action(s->wh->multi, s->fd, flags, &running);
    check_done(s->wh);
}

static void on_timeout(uv_timer_t *t)
{
    struct webhook *wh = t->data;
    int running;
    curl_multi_socket_action(wh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(wh);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
    (void)e;
    struct webhook *wh = userp;
    struct sock *s = sockp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            curl_multi_assign(wh->multi, fd, NULL);
            uv_close((uv_handle_t *)&s->poll, handle_closed);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->wh = wh;
        s->fd = fd;
        if (uv_poll_init_socket(wh->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = wh;
        wh->handles++;
        curl_multi_assign(wh->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
    (void)m;
    struct webhook *wh = userp;
    if (ms < 0)
        uv_timer_stop(&wh->timer);
    else
        uv_timer_start(&wh->timer, on_timeout, (uint64_t)ms, 0);
    return 0;
}

/* ---- public ---- */

int webhook_new(struct webhook **out, uv_loop_t *loop, const struct webhook_opts *o)
{
    if (webhook_global_init() < 0)
        return -EIO;
    struct webhook *wh = calloc(1, sizeof *wh);
    if (!wh)
        return -ENOMEM;
    if (o)
        wh->o = *o;
    if (!wh->o.timeout_ms)
        wh->o.timeout_ms = 5000;
    if (!wh->o.backoff_ms)
        wh->o.backoff_ms = 500;
    if (!wh->o.max_response)
        wh->o.max_response = 65536;
    if (!wh->o.max_pending)
        wh->o.max_pending = 1024;
    wh->loop = loop;
    wh->multi = curl_multi_init();
    if (!wh->multi) {
        free(wh);
        return -EIO;
    }
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_SOCKETDATA, wh);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(wh->multi, CURLMOPT_TIMERDATA, wh);
    uv_timer_init(loop, &wh->timer);
    wh->timer.data = wh;
    wh->handles = 1;
    *out = wh;
    return 0;
}

void webhook_free(struct webhook *wh)
{
    if (!wh)
        return;
    wh->freeing = true;
    while (wh->calls)
        call_end(wh->calls, -ECANCELED, 0);
    curl_multi_cleanup(wh->multi); /* closes its sockets: socket_cb REMOVE for each */
    wh->multi = NULL;
    uv_timer_stop(&wh->timer);
    uv_close((uv_handle_t *)&wh->timer, handle_closed);
}

static int start_attempt(struct call *c)
{
    struct webhook *wh = c->wh;
    c->attempts++;
    buf_reset(&c->resp);
    c->too_big = false;
    c->ctype[0] = 0;
    if (!c->easy) {
        c->easy = curl_easy_init();
        if (!c->easy)
            return -ENOMEM;
        curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
        curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (const char *)c->body.data);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body.len);
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->hdrs);
        curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_PRIVATE, (char *)c);
        curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, (long)wh->o.timeout_ms);
        curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)wh->o.timeout_ms);
        curl_easy_setopt(c->easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c->easy, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "rtcd-webhook/1");
    }
    return curl_multi_add_handle(wh->multi, c->easy) == CURLM_OK ? 0 : -ENOMEM;
}

int webhook_post(struct webhook *wh, const char *url, str body, str secret, webhook_done_fn done,
                 void *arg)
{
    if (!url || !(strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0))
        return -EINVAL;
    if (wh->ncalls >= wh->o.max_pending)
        return -EBUSY;
    struct call *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->wh = wh;
    c->done = done;
    c->arg = arg;
    buf_init(&c->body, 0);
    buf_init(&c->resp, wh->o.max_response);
    char sig[72], sighdr[100];
    c->url = strdup(url);
    int rc = c->url ? 0 : -ENOMEM;
    if (rc == 0)
        rc = buf_append_str(&c->body, body);
    if (rc == 0)
        rc = buf_append_byte(&c->body, 0);
    if (rc == 0) {
        c->body.len--; /* NUL-terminated for curl, not counted */
        rc = webhook_sign(secret, body, sig);
    }
    if (rc == 0) {
        snprintf(sighdr, sizeof sighdr, "X-Rtcd-Signature: %s", sig);
        struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
        if (l)
            l = curl_slist_append(c->hdrs = l, sighdr);
        if (l)
            l = curl_slist_append(c->hdrs = l, "Expect:");
        if (l)
            c->hdrs = l;
        else
            rc = -ENOMEM;
    }
    if (rc < 0) {
        curl_slist_free_all(c->hdrs);
        free(c->url);
        buf_free(&c->body);
        free(c);
        return rc;
    }
    c->next = wh->calls;
    if (wh->calls)
        wh->calls->prev = c;
    wh->calls = c;
    wh->ncalls++;
    rc = start_attempt(c);
    if (rc < 0) {
        call_free(c);
        free(c);
    }
    return rc;
}

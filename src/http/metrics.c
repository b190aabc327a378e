/*
 * http/metrics — GET /metrics in the Prometheus text format (version 0.0.4)
 * from a registry of collectors: every module that has numbers to show adds
 * a callback (http_metrics_add) that writes its samples when the page is
 * read. Every name starts with "rtcd_". Also GET /healthz.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "http/http_int.h"

#define METRICS_MAX (4u << 20)

struct http_metrics_out {
    struct buf b;
    char last[128];
    int err;
};

int http_metrics_add(struct http_server *hs, http_metrics_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    if (hs->ncoll >= HTTP_MAX_COLLECTORS)
        return -ENOSPC;
    hs->coll[hs->ncoll++] = (struct collector){ fn, arg };
    return 0;
}

static bool name_ok(const char *n)
{
    if (strncmp(n, "rtcd_", 5) != 0 || strlen(n) >= 128)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

int http_metric(struct http_metrics_out *o, const char *name, enum http_metric_type type,
                const char *help, const char *labels, double value)
{
    if (!name_ok(name) || (labels && strpbrk(labels, "\n{}"))) {
        o->err = -EINVAL;
        return -EINVAL;
    }
    int rc = 0;
    if (strcmp(o->last, name) != 0) {
        snprintf(o->last, sizeof o->last, "%s", name);
        rc = buf_printf(&o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help ? help : name, name,
                        type == HTTP_METRIC_COUNTER ? "counter" : "gauge");
    }
    if (rc == 0) {
        if (isfinite(value) && value == (double)(int64_t)value)
            rc = buf_printf(&o->b, "%s%s%s%s %lld\n", name, labels ? "{" : "",
                            labels ? labels : "", labels ? "}" : "", (long long)value);
        else
            rc = buf_printf(&o->b, "%s%s%s%s %.17g\n", name, labels ? "{" : "",
                            labels ? labels : "", labels ? "}" : "", value);
    }
    if (rc < 0)
        o->err = rc;
    return rc;
}

#define RD(f) (double)atomic_load_explicit(&hs->c.f, memory_order_relaxed)

/* The HTTP server's own numbers. */
static void own_metrics(void *arg, struct http_metrics_out *o)
{
    struct http_server *hs = arg;
    http_metric(o, "rtcd_http_requests_total", HTTP_METRIC_COUNTER, "HTTP requests received",
                NULL, RD(requests));
    static const char *help = "HTTP responses sent, by status class";
    http_metric(o, "rtcd_http_responses_total", HTTP_METRIC_COUNTER, help, "class=\"2xx\"",
                RD(resp_2xx));
    http_metric(o, "rtcd_http_responses_total", HTTP_METRIC_COUNTER, help, "class=\"3xx\"",
                RD(resp_3xx));
    http_metric(o, "rtcd_http_responses_total", HTTP_METRIC_COUNTER, help, "class=\"4xx\"",
                RD(resp_4xx));
    http_metric(o, "rtcd_http_responses_total", HTTP_METRIC_COUNTER, help, "class=\"5xx\"",
                RD(resp_5xx));
    http_metric(o, "rtcd_http_timeouts_total", HTTP_METRIC_COUNTER,
                "HTTP and WebSocket connections closed for slowness or silence", NULL,
                RD(timeouts));
    http_metric(o, "rtcd_websocket_messages_total", HTTP_METRIC_COUNTER,
                "WebSocket messages, by direction", "direction=\"in\"", RD(ws_messages_in));
    http_metric(o, "rtcd_websocket_messages_total", HTTP_METRIC_COUNTER,
                "WebSocket messages, by direction", "direction=\"out\"", RD(ws_messages_out));
    http_metric(o, "rtcd_http_logins_total", HTTP_METRIC_COUNTER, "API logins, by result",
                "result=\"ok\"", RD(login_ok));
    http_metric(o, "rtcd_http_logins_total", HTTP_METRIC_COUNTER, "API logins, by result",
                "result=\"failed\"", RD(login_fail));
    double ws = RD(ws_open), sipws = RD(sip_ws_open), all = RD(conns_open);
    static const char *ch = "open connections, by transport";
    http_metric(o, "rtcd_http_connections", HTTP_METRIC_GAUGE, ch, "transport=\"http\"",
                all - ws);
    http_metric(o, "rtcd_http_connections", HTTP_METRIC_GAUGE, ch, "transport=\"ws_sip\"", sipws);
    http_metric(o, "rtcd_http_connections", HTTP_METRIC_GAUGE, ch, "transport=\"ws_other\"",
                ws - sipws);
}

static void metrics_page(struct http_ctx *x, void *arg)
{
    struct http_server *hs = arg;
    struct http_metrics_out o;
    memset(&o, 0, sizeof o);
    buf_init(&o.b, METRICS_MAX);
    for (size_t i = 0; i < hs->ncoll; i++) {
        o.last[0] = 0;
        hs->coll[i].fn(hs->coll[i].arg, &o);
    }
    if (o.err == -ENOBUFS || o.err == -ENOMEM)
        http_reply_error(x, 500, "metrics: out of space");
    else
        http_reply(x, 200, "text/plain; version=0.0.4; charset=utf-8", o.b.data, o.b.len);
    buf_free(&o.b);
}

static void healthz(struct http_ctx *x, void *arg)
{
    struct http_server *hs = arg;
    http_ctx_add_header(x, "Cache-Control", "no-store");
    http_reply_json(x, 200, json_pack("{s:s, s:s, s:I}", "status", "ok", "version", RTCD_VERSION,
                                      "uptime_s",
                                      (json_int_t)((clock_mono_ms() - hs->started_ms) / 1000)));
}

int http__metrics_install(struct http_server *hs)
{
    hs->started_ms = clock_mono_ms();
    int rc = http_metrics_add(hs, own_metrics, hs);
    if (rc == 0)
        rc = http_route_add(hs, "GET", "/metrics", HTTP_ROUTE_EXACT, metrics_page, hs);
    if (rc == 0)
        rc = http_route_add(hs, "GET", "/healthz", HTTP_ROUTE_EXACT, healthz, hs);
    return rc;
}

/*
 * bench_parse — messages per second for rtcd's SIP parser and for libosip2 on the same
 * typical messages (the .sip files in bench/parse/msgs), one thread.
 *
 * rtcd: sip_msg_parse (full header index, start line, Request-URI, every Via, From/To
 * with their URIs, Call-ID, CSeq, Max-Forwards, Expires, Content-Length/Type, Event)
 * plus the on-demand lists libosip2 builds anyway: all Vias, Contacts (and their URIs),
 * Route, Record-Route and the Authorization parameters.
 * libosip2: osip_message_parse (which parses those same headers eagerly) plus reading
 * the same fields back, then osip_message_free.
 *
 * Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so a busy shared machine
 * does not count other processes' time against either parser.
 *
 * Usage: bench_parse MSG_DIR [SECONDS_PER_CASE]
 * Prints one line per message and implementation, then
 *   parse: rtcd N msg/s, libosip2 M msg/s, ratio R
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <osipparser2/osip_parser.h>

#include "base/arena.h"
#include "sip/msg.h"

struct sample {
    char name[64];
    char *data;
    size_t len;
};

/* CPU time of this thread: the machine is shared, so wall time would count the time
 * other processes hold the core; one core's rate is messages per CPU-second. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile size_t sink;

static int rtcd_one(const struct sample *s, struct arena *a)
{
    struct sip_hdr hdrs[64];
    struct sip_msg m;
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    sip_msg_init(&m, hdrs, 64);
    if (sip_msg_parse(&m, s->data, s->len, &lim, SIP_PARSE_DATAGRAM) <= 0)
        return -1;
    const struct sip_via *v;
    const struct sip_addr *c;
    const struct sip_auth *au;
    size_t n;
    sip_msg_vias(&m, a, &v, &n);
    sink += n + v[0].branch.len;
    if (sip_msg_contacts(&m, a, &c, &n) == 0)
        for (size_t i = 0; i < n; i++) {
            struct sip_uri u;
            if (!c[i].star && sip_uri_parse(c[i].uri, &u) == 0)
                sink += u.host.len;
        }
    sip_msg_routes(&m, a, &c, &n);
    sink += n;
    sip_msg_record_routes(&m, a, &c, &n);
    sink += n;
    if (sip_msg_auth(&m, a, SIP_H_AUTHORIZATION, &au) == 0 && au)
        sink += au->response.len;
    sink += m.cseq.num + m.call_id.len + m.from.tag.len + m.to.tag.len + m.via.branch.len +
            (size_t)m.max_forwards + m.body.len + m.content_type.len;
    arena_reset(a);
    return 0;
}

static int osip_one(const struct sample *s)
{
    osip_message_t *m;
    if (osip_message_init(&m) != 0)
        return -1;
    if (osip_message_parse(m, s->data, s->len) != 0) {
        osip_message_free(m);
        return -1;
    }
    osip_via_t *via = NULL;
    osip_generic_param_t *br = NULL;
    for (int i = 0; osip_message_get_via(m, i, &via) >= 0; i++)
        if (i == 0 && osip_via_param_get_byname(via, "branch", &br) == 0 && br && br->gvalue)
            sink += strlen(br->gvalue);
    osip_contact_t *ct;
    for (int i = 0; osip_message_get_contact(m, i, &ct) >= 0; i++)
        if (ct->url && ct->url->host)
            sink += strlen(ct->url->host);
    osip_route_t *r;
    for (int i = 0; osip_message_get_route(m, i, &r) >= 0; i++)
        sink++;
    osip_record_route_t *rr;
    for (int i = 0; osip_message_get_record_route(m, i, &rr) >= 0; i++)
        sink++;
    osip_authorization_t *au;
    if (osip_message_get_authorization(m, 0, &au) >= 0 && au->response)
        sink += strlen(au->response);
    osip_generic_param_t *tag;
    if (m->from && osip_from_get_tag(m->from, &tag) == 0 && tag->gvalue)
        sink += strlen(tag->gvalue);
    if (m->to && osip_to_get_tag(m->to, &tag) == 0 && tag && tag->gvalue)
        sink += strlen(tag->gvalue);
    if (m->call_id && m->call_id->number)
        sink += strlen(m->call_id->number);
    if (m->cseq && m->cseq->number)
        sink += (size_t)atoi(m->cseq->number);
    osip_header_t *mf;
    if (osip_message_get_max_forwards(m, 0, &mf) >= 0 && mf->hvalue)
        sink += (size_t)atoi(mf->hvalue);
    if (m->content_length && m->content_length->value)
        sink += strlen(m->content_length->value);
    osip_message_free(m);
    return 0;
}

/* runs f for about secs seconds; returns messages per second */
static double run(const struct sample *s, struct arena *a, bool osip, double secs)
{
    size_t n = 0, batch = 1000;
    double t0 = now(), t;
    do {
        for (size_t i = 0; i < batch; i++)
            if ((osip ? osip_one(s) : rtcd_one(s, a)) < 0) {
                fprintf(stderr, "%s failed to parse %s\n", osip ? "libosip2" : "rtcd", s->name);
                exit(1);
            }
        n += batch;
        t = now() - t0;
    } while (t < secs && n < 100000000);
    return (double)n / t;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(((const struct sample *)a)->name, ((const struct sample *)b)->name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_parse MSG_DIR [SECONDS_PER_CASE]\n");
        return 2;
    }
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    struct sample s[32];
    size_t ns = 0;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 1;
    }
    struct dirent *e;
    while ((e = readdir(d)) && ns < 32) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".sip") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        s[ns].data = malloc(65536);
        s[ns].len = fread(s[ns].data, 1, 65536, f);
        fclose(f);
        snprintf(s[ns].name, sizeof(s[ns].name), "%.*s", (int)(l - 4), e->d_name);
        ns++;
    }
    closedir(d);
    if (ns == 0) {
        fprintf(stderr, "no .sip messages in %s\n", argv[1]);
        return 1;
    }
    qsort(s, ns, sizeof(s[0]), cmp);
    parser_init();
    struct arena *a;
    if (arena_new(&a, 16384, 0) < 0)
        return 1;
    double inv_r = 0, inv_o = 0;
    printf("%-12s %6s %14s %10s %14s %10s %7s\n", "message", "bytes", "rtcd msg/s", "ns/msg",
           "libosip2 msg/s", "ns/msg", "ratio");
    for (size_t i = 0; i < ns; i++) {
        run(&s[i], a, false, secs / 10); /* warm-up */
        double r = run(&s[i], a, false, secs);
        /* BENCH_RTCD_ONLY=1: skip libosip2 (for profiling) */
        double o = getenv("BENCH_RTCD_ONLY") ? 1 : run(&s[i], a, true, secs);
        inv_r += 1 / r;
        inv_o += 1 / o;
        printf("%-12s %6zu %14.0f %10.1f %14.0f %10.1f %7.2f\n", s[i].name, s[i].len, r, 1e9 / r,
               o, 1e9 / o, r / o);
    }
    /* the mix: one of each message, so the rate is the harmonic mean */
    double rm = (double)ns / inv_r, om = (double)ns / inv_o;
    printf("%-12s %6s %14.0f %10.1f %14.0f %10.1f %7.2f\n", "mix", "", rm, 1e9 / rm, om, 1e9 / om,
           rm / om);
    printf("parse: rtcd %.0f msg/s, libosip2 %.0f msg/s, ratio %.1f\n", rm, om, rm / om);
    arena_free(a);
    for (size_t i = 0; i < ns; i++)
        free(s[i].data);
    return (int)(sink & 0);
}

/*
 * rtcd — the server. Reads the configuration (embedded defaults, -c FILE,
 * --set overrides), opens the store (migrations), loads the credential table,
 * starts the store thread and the worker threads, and runs until
 * SIGTERM/SIGINT; then stops the workers, drains the store thread and closes
 * the store.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/config.h"
#include "base/log.h"
#include "net/tls.h"
#include "net/worker.h"
#include "core/core.h"
#include "http/http.h"
#include "store/store.h"
#include "stun/stun.h"
#include "svc/apps.h"
#include "svc/apps_http.h"
#include "svc/home.h"
#include "svc/presence.h"
#include "svc/webhook.h"

#define MAX_SETS 256

static const char usage[] =
    "Usage: rtcd [-c FILE] [--set SECTION.KEY=VALUE]... [--check] [--print-config]\n"
    "            [--only SERVICE] [--version] [--help]\n"
    "\n"
    "The real-time communications server: SIP registrar, presence agent and proxy,\n"
    "messaging, STUN/TURN, web client and HTTP API.\n"
    "\n"
    "  -c, --config FILE      read the configuration from FILE (INI); without it the\n"
    "                         embedded development defaults are used\n"
    "  -s, --set S.K=V        override one key, after the file (repeatable)\n"
    "      --check            validate the configuration and exit (0 valid, 2 not)\n"
    "      --print-config     print the effective configuration and exit\n"
    "      --only SERVICE     run one service alone: 'turn' (a dedicated STUN/TURN relay\n"
    "                         host; no SIP, no store: REST or turn.users credentials)\n"
    "  -V, --version          print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Signals: SIGTERM or SIGINT stop the server cleanly; SIGHUP reloads the TLS\n"
    "         certificates and [tls] settings (open connections are kept).\n"
    "Documentation: docs/configuration.md, docs/operations.md\n";

struct options {
    const char *config_path;
    const char *sets[MAX_SETS];
    size_t nsets;
    int check, print_config;
    const char *only; /* NULL = everything; "turn" */
};

/* Exit status 2 for usage and configuration errors, as documented. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "set", required_argument, NULL, 's' },
        { "check", no_argument, NULL, 'k' },
        { "print-config", no_argument, NULL, 'p' },
        { "only", required_argument, NULL, 'o' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:s:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 's':
            if (o->nsets >= MAX_SETS) {
                fprintf(stderr, "rtcd: too many --set options (at most %d)\n", MAX_SETS);
                return 2;
            }
            o->sets[o->nsets++] = optarg;
            break;
        case 'k':
            o->check = 1;
            break;
        case 'p':
            o->print_config = 1;
            break;
        case 'o':
            if (strcmp(optarg, "turn") != 0) {
                fprintf(stderr, "rtcd: --only: unknown service '%s' (known: turn)\n", optarg);
                return 2;
            }
            o->only = optarg;
            break;
        case 'V':
            printf("rtcd %s\n", RTCD_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs("Try 'rtcd --help'.\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rtcd: unexpected argument '%s'\nTry 'rtcd --help'.\n", argv[optind]);
        return 2;
    }
    return -1;
}

/* The services started in the worker loops; their hooks run in this order. */
#define MAX_SERVICES 8
struct server {
    struct config cfg;
    const struct options *opts; /* to read the configuration again on SIGHUP */
    const char *only;
    struct worker_hooks hooks[MAX_SERVICES];
    size_t nhooks;
    struct turn_service *turn;
    uv_loop_t *loop;
    uv_signal_t sig_term, sig_int, sig_hup;
    struct tls_server *tls; /* shared by every stream listener (SIP, HTTP) */
    struct worker_pool *workers;
    struct store_creds *creds;   /* read by workers: SIP digest, TURN */
    struct store_thread *store;  /* owns the database connection */
    struct sip_server *sip;
    struct http_server *http;
    struct home *home;
    struct apps *apps;           /* notify API, bots, channels */
    struct apps_http *apps_http; /* their routes on the HTTP server */
    int stop_signal;
};

static unsigned worker_count(const struct config *cfg)
{
    if (cfg->server.workers)
        return cfg->server.workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (unsigned)cores : 1;
}

/* The SIP server and the home services behind it. -1 with the reason logged. */
static int sip_start(struct server *s)
{
    char err[512];
    unsigned n = worker_count(&s->cfg);
    int rc = sip_server_new(&s->sip, &s->cfg, n,
                            &(struct sip_server_deps){ .creds = s->creds, .tls = s->tls }, err,
                            sizeof err);
    if (rc < 0) {
        log_error("rtcd", "%s", err);
        return -1;
    }
    rc = home_new(&s->home, &s->cfg, s->sip, s->store, s->creds);
    if (rc < 0) {
        log_error("rtcd", "sip: %s", strerror(-rc));
        return -1;
    }
    struct core_services svc;
    home_services(s->home, &svc);
    if (s->apps) {
        svc.app_request = apps_sip_request;
        svc.app_ctx = s->apps;
        apps_attach(s->apps, &(struct apps_deps){ s->sip, home_deliver(s->home), s->store,
                                                  s->creds, home_presence(s->home) });
    }
    sip_server_set_services(s->sip, &svc);
    rc = home_load(s->home);
    if (rc < 0)
        log_warn("rtcd", "registrations not restored: %s", strerror(-rc));
    return 0;
}

/* Prometheus collectors for what rtcd.c can see: SIP core, transports, store. */
static void core_metrics(void *arg, struct http_metrics_out *o)
{
    struct server *s = arg;
    struct sip_server_stats st;
    sip_server_stats(s->sip, &st);
    struct net_stats ns;
    net_get_stats(sip_server_net(s->sip), &ns);
    http_metric(o, "rtcd_sip_requests_total", HTTP_METRIC_COUNTER, "SIP requests received",
                NULL, (double)st.requests);
    http_metric(o, "rtcd_sip_responses_total", HTTP_METRIC_COUNTER, "SIP responses received",
                NULL, (double)st.responses);
    http_metric(o, "rtcd_sip_parse_errors_total", HTTP_METRIC_COUNTER,
                "SIP messages that did not parse", NULL, (double)st.parse_errors);
    http_metric(o, "rtcd_sip_transactions_total", HTTP_METRIC_COUNTER,
                "SIP requests handled by transactions (requests received)", NULL,
                (double)st.requests);
    http_metric(o, "rtcd_sip_handovers_total", HTTP_METRIC_COUNTER,
                "SIP messages received on one worker and handled on another", NULL,
                (double)st.handovers);
    http_metric(o, "rtcd_registrations_total", HTTP_METRIC_COUNTER,
                "REGISTER requests answered 2xx", NULL, (double)st.registrations);
    http_metric(o, "rtcd_auth_failures_total", HTTP_METRIC_COUNTER,
                "failed SIP digest authentications", NULL, (double)st.auth_failures);
    static const char *mh = "SIP messages carried, by transport and direction";
    http_metric(o, "rtcd_messages_total", HTTP_METRIC_COUNTER, mh,
                "transport=\"udp\",direction=\"in\"", (double)ns.udp_rx);
    http_metric(o, "rtcd_messages_total", HTTP_METRIC_COUNTER, mh,
                "transport=\"udp\",direction=\"out\"", (double)ns.udp_tx);
    http_metric(o, "rtcd_messages_total", HTTP_METRIC_COUNTER, mh,
                "transport=\"stream\",direction=\"in\"", (double)ns.tcp_rx);
    http_metric(o, "rtcd_messages_total", HTTP_METRIC_COUNTER, mh,
                "transport=\"stream\",direction=\"out\"", (double)ns.tcp_tx);
    http_metric(o, "rtcd_connections", HTTP_METRIC_GAUGE,
                "open stream connections (SIP TCP, HTTP and WebSocket together)",
                "transport=\"all_streams\"", (double)ns.tcp_open);
    http_metric(o, "rtcd_connections_refused_total", HTTP_METRIC_COUNTER,
                "stream connections refused by limits", NULL, (double)ns.tcp_refused);
    http_metric(o, "rtcd_errors_total", HTTP_METRIC_COUNTER, "transport errors, by kind",
                "kind=\"framing\"", (double)ns.frame_errors);
    http_metric(o, "rtcd_errors_total", HTTP_METRIC_COUNTER, "transport errors, by kind",
                "kind=\"send\"", (double)ns.send_errors);
    http_metric(o, "rtcd_errors_total", HTTP_METRIC_COUNTER, "transport errors, by kind",
                "kind=\"sip_parse\"", (double)st.parse_errors);
    http_metric(o, "rtcd_users", HTTP_METRIC_GAUGE, "users in the credential table", NULL,
                s->creds ? (double)store_creds_count(s->creds) : 0);
}

static void rules_changed(void *ctx, str owner)
{
    if (ctx)
        pres_rules_changed(ctx, owner);
}

/* The HTTP server on http.listen, sharing the SIP server's transports. -1 when it fails. */
static int http_start(struct server *s)
{
    char err[512];
    /* the API tells the presence agent about changed rules and contact lists */
    struct http_deps deps = { .store = s->store, .creds = s->creds,
                              .rules_changed = rules_changed,
                              .rules_ctx = s->home ? home_presence(s->home) : NULL };
    int rc = http_server_new(&s->http, &s->cfg, worker_count(&s->cfg), &deps, err, sizeof err);
    if (rc < 0) {
        log_error("rtcd", "%s", err);
        return -1;
    }
    rc = http_server_attach(s->http, sip_server_net(s->sip));
    if (rc == 0)
        rc = http_metrics_add(s->http, core_metrics, s);
    if (rc == 0)
        rc = home_metrics_register(s->home, s->http);
    if (rc == 0 && s->apps)
        rc = apps_http_register(&s->apps_http, s->apps, s->http);
    if (rc < 0) {
        log_error("rtcd", "http: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

static void sip_stop(struct server *s)
{
    if (s->home)
        home_save(s->home);
    home_free(s->home);
    s->home = NULL;
    sip_server_free(s->sip);
    s->sip = NULL;
}

/*
 * Opens the store named by the configuration (applying migrations), loads the
 * credential table and starts the store thread. On failure prints why and
 * returns -1 (rtcd then exits 2: the configuration or the database is wrong).
 */
static int store_start(struct server *s)
{
    char err[768];
    struct store *st = NULL;
    int rc = store_open_config(&st, &s->cfg, err, sizeof err);
    if (rc < 0) {
        log_error("rtcd", "store: %s", err);
        fprintf(stderr, "rtcd: cannot open the store (%s): %s\n", s->cfg.store.backend, err);
        return -1;
    }
    rc = store_creds_new(&s->creds);
    if (rc == 0)
        rc = apps_new(&s->apps, &s->cfg);
    struct store_thread_opts o = { .retention_days = s->cfg.store.archive_retention_days,
                                   .archive_commit_ms = s->cfg.store.archive_commit_ms,
                                   .on_poll = apps_store_poll, .poll_ctx = s->apps };
    if (rc == 0)
        rc = store_thread_start(&s->store, st, s->creds, &o);
    if (rc < 0) {
        log_error("rtcd", "store: cannot start the store thread: %s",
                  rc == -EIO ? store_errmsg(st) : strerror(-rc));
        fprintf(stderr, "rtcd: cannot start the store thread: %s\n",
                rc == -EIO ? store_errmsg(st) : strerror(-rc));
        store_close(st);
        store_creds_free(s->creds);
        s->creds = NULL;
        apps_free(s->apps);
        s->apps = NULL;
        return -1;
    }
    log_info("rtcd", "store: %s, schema version %d, realm %s, %zu user(s)",
             store_backend_name(st), store_schema_version(st), store_realm(st),
             store_creds_count(s->creds));
    if (store_creds_count(s->creds) == 0)
        log_info("rtcd", "no users yet: add one with 'rtcctl user add NAME --password PW' "
                         "(same -c/--set options); rtcd sees it within a second");
    return 0;
}

static void store_stop(struct server *s)
{
    store_thread_stop(s->store); /* runs queued jobs, then closes the store */
    s->store = NULL;
    apps_free(s->apps); /* after the store thread: its poll reloads the apps */
    s->apps = NULL;
    store_creds_free(s->creds);
    s->creds = NULL;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    s->stop_signal = signum;
    uv_stop(s->loop);
}

/*
 * SIGHUP: the configuration is read again (same -c and --set) and the [tls]
 * keys take effect for new connections: certificates, CAs, versions,
 * ciphers, verification. Other keys need a restart. Runs on the main loop
 * (file reads and key parsing never block a worker).
 */
static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct server *s = h->data;
    if (!s->tls)
        return;
    struct config c;
    char err[768];
    if (config_load(&c, s->opts->config_path, s->opts->sets, s->opts->nsets, err, sizeof err) < 0) {
        log_error("rtcd", "SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    int rc = tls_server_reload(s->tls, &c, err, sizeof err);
    if (rc < 0)
        log_error("rtcd", "SIGHUP: TLS not reloaded, the previous certificates stay: %s", err);
    else
        log_info("rtcd", "SIGHUP: TLS reloaded; new connections use it, open ones keep theirs");
    config_free(&c);
}

/* Whether a listener needs a TLS certificate. */
static bool listens_tls(const struct listen_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].transport == TRANSPORT_TLS || l->v[i].transport == TRANSPORT_WSS)
            return true;
    return false;
}

static void hooks_start(struct worker *w, void *ctx)
{
    struct server *s = ctx;
    for (size_t i = 0; i < s->nhooks; i++)
        if (s->hooks[i].on_start)
            s->hooks[i].on_start(w, s->hooks[i].ctx);
}

static void hooks_stop(struct worker *w, void *ctx)
{
    struct server *s = ctx;
    for (size_t i = s->nhooks; i-- > 0;)
        if (s->hooks[i].on_stop)
            s->hooks[i].on_stop(w, s->hooks[i].ctx);
}

/* Prepares the services to run (before the workers start). 0 or a negative errno. */
/* TURN long-term keys from the store's users: the digest HA1 (MD5) for the realm. */
static int turn_lookup(void *ctx, const char *user_c, const char *realm_c, uint8_t key[16])
{
    str user = str_cstr(user_c), realm = str_cstr(realm_c);
    struct server *s = ctx;
    struct cred c;
    if (!s->creds || store_creds_get(s->creds, user, &c) < 0 || !c.enabled)
        return -ENOENT;
    char want[STORE_NAME_MAX + 1];
    if (store_realm_from_domain(s->cfg.server.domain, want, sizeof want) < 0 ||
        !str_eq(realm, str_cstr(want)))
        return -ENOENT; /* the stored HA1 is only the key for the store's own realm */
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(c.ha1_md5 + 2 * i, "%2x", &v) != 1)
            return -ENOENT;
        key[i] = (uint8_t)v;
    }
    return 0;
}

static int services_new(struct server *s)
{
    bool all = s->only == NULL;
    if (all || strcmp(s->only, "sip") == 0) {
        /* outgoing TLS needs the client context even without a TLS listener */
        char err[768];
        bool serve = listens_tls(&s->cfg.sip.listen) || listens_tls(&s->cfg.http.listen);
        if (tls_server_new(&s->tls, &s->cfg, serve, err, sizeof err) < 0) {
            log_error("rtcd", "%s", err);
            fprintf(stderr, "rtcd: %s\n", err);
            return -EINVAL;
        }
        if (sip_start(s) < 0)
            return -EINVAL;
        s->hooks[s->nhooks++] = (struct worker_hooks){ sip_server_worker_start,
                                                       sip_server_worker_stop, s->sip };
        if (s->apps)
            s->hooks[s->nhooks++] = (struct worker_hooks){ apps_worker_start, apps_worker_stop,
                                                           s->apps };
    }
    if (all && s->cfg.http.listen.n) {
        /* the HTTP listeners are flows of the SIP server's transports, so that SIP reaches
         * browsers on their WebSocket; its hook runs after the SIP one (net is up) */
        if (http_start(s) < 0)
            return -EINVAL;
        s->hooks[s->nhooks++] = (struct worker_hooks){ http_server_worker_start,
                                                       http_server_worker_stop, s->http };
    }
    if (all || strcmp(s->only, "turn") == 0) {
        /* REST and turn.users credentials need nothing; store users come through
         * the lookup (not with --only turn, which runs without the store). */
        int rc = turn_service_new(&s->turn, &s->cfg, s->creds ? turn_lookup : NULL, s);
        if (rc < 0) {
            log_error("rtcd", "cannot prepare TURN: %s", strerror(-rc));
            return rc;
        }
        s->hooks[s->nhooks++] = (struct worker_hooks){ turn_service_on_start,
                                                       turn_service_on_stop, s->turn };
    }
    return 0;
}

static int services_error(struct server *s)
{
    if (s->sip && sip_server_start_error(s->sip) < 0)
        return sip_server_start_error(s->sip);
    if (s->turn && turn_service_error(s->turn) < 0)
        return turn_service_error(s->turn);
    return 0;
}

static void services_free(struct server *s)
{
    http_server_free(s->http);
    s->http = NULL;
    apps_http_free(s->apps_http);
    s->apps_http = NULL;
    turn_service_free(s->turn);
    s->turn = NULL;
    tls_server_free(s->tls);
    s->tls = NULL;
}

static int run(struct server *s)
{
    s->loop = uv_default_loop();
    uv_signal_init(s->loop, &s->sig_term);
    uv_signal_init(s->loop, &s->sig_int);
    uv_signal_init(s->loop, &s->sig_hup);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_hup, SIGHUP);
    signal(SIGPIPE, SIG_IGN);

    struct worker_hooks hooks = { hooks_start, hooks_stop, s };
    int rc = services_new(s);
    if (rc == 0)
        rc = worker_pool_start(&s->workers, worker_count(&s->cfg), &hooks);
    if (rc == 0 && services_error(s) < 0) {
        rc = services_error(s);
        log_error("rtcd", "cannot start: %s", strerror(-rc));
        worker_pool_stop(s->workers);
        s->workers = NULL;
    } else if (rc < 0 && rc != -EINVAL) {
        log_error("rtcd", "cannot start workers: %s", strerror(-rc));
    }
    if (rc == 0) {
        /* Test scripts wait for this exact line ("ready:"). */
        log_info("rtcd", "ready: rtcd %s, domain %s, %u worker(s), data in %s%s%s", RTCD_VERSION,
                 s->cfg.server.domain, worker_pool_size(s->workers), s->cfg.server.data_dir,
                 s->only ? ", only " : "", s->only ? s->only : "");
        uv_run(s->loop, UV_RUN_DEFAULT);
        log_info("rtcd", "stopping on %s", strsignal(s->stop_signal));
        worker_pool_stop(s->workers);
    }
    sip_stop(s);
    store_stop(s);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    uv_loop_close(s->loop);
    services_free(s);
    if (rc == 0)
        log_info("rtcd", "stopped");
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;

    struct server s = { 0 };
    s.only = o.only;
    s.opts = &o;
    char err[768];
    if (config_load(&s.cfg, o.config_path, o.sets, o.nsets, err, sizeof err) < 0) {
        fprintf(stderr, "rtcd: %s\n", err);
        return 2;
    }
    if (o.check) {
        /* configured TLS files must load (the self-signed pair is made at start, not here) */
        if (*s.cfg.tls.certificate || *s.cfg.tls.ca_file) {
            struct tls_server *t = NULL;
            log_set_level(LOG_WARN);
            if (tls_server_new(&t, &s.cfg, false, err, sizeof err) < 0) {
                fprintf(stderr, "rtcd: %s\n", err);
                config_free(&s.cfg);
                return 2;
            }
            tls_server_free(t);
        }
        printf("rtcd: configuration %s is valid\n", o.config_path ? o.config_path : "(defaults)");
        config_free(&s.cfg);
        return 0;
    }
    if (o.print_config) {
        struct buf b;
        buf_init(&b, 0);
        rc = config_dump(&s.cfg, &b);
        if (rc == 0)
            fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
        config_free(&s.cfg);
        return rc == 0 ? 0 : 1;
    }
    rc = log_open(s.cfg.log.file, s.cfg.log.level);
    if (rc < 0) {
        fprintf(stderr, "rtcd: log.file: '%s': %s\n", s.cfg.log.file, strerror(-rc));
        config_free(&s.cfg);
        return 2;
    }
    /* a dedicated relay host (--only turn) needs no store: REST and turn.users credentials */
    bool need_store = !s.only || strcmp(s.only, "turn") != 0;
    if (need_store && store_start(&s) < 0) {
        log_close();
        config_free(&s.cfg);
        return 2;
    }
    rc = run(&s);
    webhook_global_cleanup();
    log_close();
    config_free(&s.cfg);
    return rc;
}

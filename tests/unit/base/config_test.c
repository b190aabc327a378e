/* Unit tests for src/base/config.c */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/config.h"

static char err[768];

static const char *write_ini(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/rtcd-cfgtest.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_load(&c, NULL, NULL, 0, err, sizeof err), 0);
    assert_string_equal(c.server.domain, "localhost");
    assert_string_equal(c.server.data_dir, "./run");
    assert_int_equal(c.server.workers, 0);
    assert_int_equal(c.sip.listen.n, 3);
    assert_int_equal(c.sip.listen.v[0].transport, TRANSPORT_UDP);
    assert_int_equal(c.sip.listen.v[2].transport, TRANSPORT_TLS);
    assert_int_equal(ntohs(((struct sockaddr_in *)&c.sip.listen.v[2].addr)->sin_port), 5061);
    assert_int_equal(c.http.listen.n, 1);
    assert_int_equal(c.turn.listen.n, 2);
    assert_int_equal(c.sip.max_message_size, 65536);
    assert_string_equal(c.store.backend, "sqlite");
    assert_int_equal(c.log.level, LOG_INFO);
    assert_string_equal(c.auth.challenge, "all");
    assert_true(c.turn.deny_peers.n > 5);
    config_free(&c);
}

static void test_file_and_set(void **state)
{
    (void)state;
    const char *path = write_ini("; a comment\n"
                                 "[server]\n"
                                 "domain = example.com, example.org ; served\n"
                                 "workers = 3\n"
                                 "\n"
                                 "[sip]\n"
                                 "listen = udp:[::1]:5070, tcp:127.0.0.1:5070\n"
                                 "max_message_size = 128K\n"
                                 "[log]\n"
                                 "level = debug\n");
    const char *sets[] = { "server.workers=5", "sip.t1_ms=250" };
    struct config c;
    assert_int_equal(config_load(&c, path, sets, 2, err, sizeof err), 0);
    unlink(path);
    assert_string_equal(c.server.domain, "example.com, example.org");
    assert_int_equal(c.server.workers, 5); /* --set wins over the file */
    assert_int_equal(c.sip.t1_ms, 250);
    assert_int_equal(c.sip.max_message_size, 128 * 1024);
    assert_int_equal(c.sip.listen.n, 2);
    assert_int_equal(c.sip.listen.v[0].addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&c.sip.listen.v[0].addr)->sin6_port), 5070);
    assert_int_equal(c.sip.listen.v[1].transport, TRANSPORT_TCP);
    assert_int_equal(c.log.level, LOG_DEBUG);

    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(config_dump(&c, &b), 0);
    assert_true(str_find(buf_str(&b), STR("listen = udp:[::1]:5070, tcp:127.0.0.1:5070\n")) >= 0);
    assert_true(str_find(buf_str(&b), STR("[turn]\n")) >= 0);
    buf_free(&b);
    config_free(&c);
}

/* Loads text and expects failure with exactly the message want (path replaced by FILE). */
static void expect_file_error(const char *text, const char *want)
{
    const char *path = write_ini(text);
    struct config c;
    assert_int_equal(config_load(&c, path, NULL, 0, err, sizeof err), -EINVAL);
    char expect[800];
    snprintf(expect, sizeof expect, "%s%s", path, want);
    unlink(path);
    assert_string_equal(err, expect);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_file_error("[server]\ndomain = a\n\n\n\n[sip]\nlisten = udp:1.2.3.4:99999\n",
                      ":7: sip.listen: 'udp:1.2.3.4:99999': port out of range");
    expect_file_error("[sip]\nlisten = udp:0.0.0.0:5060, sctp:0.0.0.0:5060\n",
                      ":2: sip.listen: 'sctp:0.0.0.0:5060': unknown transport");
    expect_file_error("[sip]\nlisten = udp:example.com:5060\n",
                      ":2: sip.listen: 'udp:example.com:5060': address must be an IPv4 address "
                      "or an IPv6 address in brackets");
    expect_file_error("[sip]\nbogus = 1\n", ":2: sip.bogus: unknown key");
    expect_file_error("[nope]\nx = 1\n", ":2: nope.x: unknown section 'nope'");
    expect_file_error("[server]\nworkers = 1000\n", ":2: server.workers: '1000': out of range 0..256");
    expect_file_error("[server]\nworkers = -1\n", ":2: server.workers: '-1': not a number");
    expect_file_error("[server]\nworkers = 99999999999999999999999\n",
                      ":2: server.workers: '99999999999999999999999': out of range 0..256");
    expect_file_error("[store]\nbackend = mysql\n",
                      ":2: store.backend: 'mysql': expected one of sqlite|postgres");
    expect_file_error("[log]\nlevel = loud\n",
                      ":2: log.level: 'loud': expected debug, info, warn, error or off");
    expect_file_error("[server]\nthis line has no equals sign\n",
                      ":2: syntax error (expected [section] or key = value)");
    expect_file_error("[turn]\nallow_peers = 10.0.0.0/33\n",
                      ":2: turn.allow_peers: '10.0.0.0/33': prefix length out of range");
    /* the first error is reported, not a later one */
    expect_file_error("[sip]\nt1_ms = x\nt2_ms = y\n", ":2: sip.t1_ms: 'x': not a number");
}

static void test_set_errors(void **state)
{
    (void)state;
    struct config c;
    const char *bad[] = { "sip.listen=bogus" };
    assert_int_equal(config_load(&c, NULL, bad, 1, err, sizeof err), -EINVAL);
    assert_string_equal(err, "--set: sip.listen: 'bogus': expected transport:address:port");
    const char *bad2[] = { "nodot" };
    assert_int_equal(config_load(&c, NULL, bad2, 1, err, sizeof err), -EINVAL);
    assert_string_equal(err, "--set: 'nodot': expected SECTION.KEY=VALUE");
    const char *bad3[] = { "sip.listen" };
    assert_int_equal(config_load(&c, NULL, bad3, 1, err, sizeof err), -EINVAL);
    assert_int_equal(config_load(&c, "/nonexistent.ini", NULL, 0, err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent.ini: cannot open: No such file or directory");
    /* cross-key validation */
    const char *bad4[] = { "turn.relay_port_min=60000", "turn.relay_port_max=50000" };
    assert_int_equal(config_load(&c, NULL, bad4, 2, err, sizeof err), -EINVAL);
    assert_string_equal(err, "turn.relay_port_min: 60000 is above turn.relay_port_max 50000");
    const char *bad5[] = { "store.backend=postgres" };
    assert_int_equal(config_load(&c, NULL, bad5, 1, err, sizeof err), -EINVAL);
    assert_string_equal(err, "store.url: must be set when store.backend = postgres");
    /* a failed list keeps the earlier value whole */
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "sip.listen=udp:127.0.0.1:1, tcp:x:2", err, sizeof err),
                     -EINVAL);
    assert_int_equal(c.sip.listen.n, 3);
    config_free(&c);
}

static void test_limits(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_init(&c), 0);
    /* too many listen addresses */
    char big[4096] = "sip.listen=";
    for (int i = 0; i < CONFIG_MAX_LISTEN + 1; i++)
        strcat(big, "udp:127.0.0.1:5060,");
    assert_int_equal(config_set(&c, big, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "too many listening addresses"));
    assert_int_equal(config_set(&c, "sip.max_message_size=1G", err, sizeof err), -EINVAL);
    assert_int_equal(config_set(&c, "sip.max_message_size=16M", err, sizeof err), 0);
    assert_int_equal(c.sip.max_message_size, 16u << 20);
    assert_int_equal(config_set(&c, "sip.max_message_size=99999999999999999999G", err, sizeof err),
                     -EINVAL);
    config_free(&c);
}

static void test_ranges(void **state)
{
    (void)state;
    struct config c;
    assert_int_equal(config_init(&c), 0);
    assert_int_equal(config_set(&c, "turn.allow_peers=127.0.0.0/8, ::1, 10.1.2.0/23", err,
                                sizeof err), 0);
    assert_int_equal(c.turn.allow_peers.n, 3);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.9.9.9", &a.sin_addr);
    assert_true(net_range_contains(&c.turn.allow_peers.v[0], (struct sockaddr *)&a));
    inet_pton(AF_INET, "128.0.0.1", &a.sin_addr);
    assert_false(net_range_contains(&c.turn.allow_peers.v[0], (struct sockaddr *)&a));
    inet_pton(AF_INET, "10.1.3.255", &a.sin_addr);
    assert_true(net_range_contains(&c.turn.allow_peers.v[2], (struct sockaddr *)&a));
    inet_pton(AF_INET, "10.1.4.0", &a.sin_addr);
    assert_false(net_range_contains(&c.turn.allow_peers.v[2], (struct sockaddr *)&a));
    struct sockaddr_in6 b = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::1", &b.sin6_addr);
    assert_true(net_range_contains(&c.turn.allow_peers.v[1], (struct sockaddr *)&b));
    assert_false(net_range_contains(&c.turn.allow_peers.v[0], (struct sockaddr *)&b));
    /* v4-mapped v6 is judged as v4 */
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
    assert_true(net_range_contains(&c.turn.allow_peers.v[0], (struct sockaddr *)&b));
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_file_and_set),
        cmocka_unit_test(test_file_errors), cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_limits),     cmocka_unit_test(test_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * echo_bot — a small rtcd bot behind a webhook (docs/apps.md). It listens for
 * rtcd's POSTs on 127.0.0.1:PORT, checks X-Rtcd-Signature (HMAC-SHA256 of the
 * body with the app's secret = SHA-256 hex of its key), and answers:
 *   "menu"                 → a question with two choices (and a context)
 *   a reply to a question  → "you chose X (context)" or the question again
 *   anything else          → "echo: TEXT"
 * Build: cc -O2 -o echo_bot echo_bot.c -ljansson -lcrypto
 * Run:   echo_bot PORT KEY
 * One request at a time (a sketch, not a production server).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static void hex(const unsigned char *d, unsigned n, char *out)
{
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void reply(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status,
                     status == 200   ? "OK"
                     : status == 204 ? "No Content"
                                     : "Error",
                     strlen(body));
    if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
        perror("write");
}

/* The answer to one event, as JSON text (malloc'd), or NULL for none. */
static char *answer(json_t *ev)
{
    const char *text = json_string_value(json_object_get(ev, "text"));
    json_t *rt = json_object_get(ev, "reply_to");
    json_t *out;
    if (!text)
        return NULL;
    if (rt) {
        const char *choice = json_string_value(json_object_get(ev, "choice"));
        const char *ctx = json_string_value(json_object_get(rt, "context"));
        char buf[512];
        if (choice) {
            snprintf(buf, sizeof buf, "you chose %s (%s)", choice, ctx ? ctx : "");
            out = json_pack("{s:s}", "text", buf);
        } else {
            out = json_pack("{s:s, s:O, s:s}", "text", "please answer 1 or 2", "choices",
                            json_object_get(rt, "choices"), "context", ctx ? ctx : "");
        }
    } else if (strcasecmp(text, "menu") == 0) {
        out = json_pack("{s:s, s:[s,s], s:s}", "text", "coffee or tea?", "choices", "coffee", "tea",
                        "context", "order-42");
    } else {
        char buf[1024];
        snprintf(buf, sizeof buf, "echo: %s", text);
        out = json_pack("{s:s}", "text", buf);
    }
    char *s = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return s;
}

static void serve(int fd, const char *secret)
{
    static char req[70000];
    size_t len = 0;
    char *body = NULL;
    long clen = -1;
    while (len < sizeof req - 1) {
        ssize_t n = read(fd, req + len, sizeof req - 1 - len);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = 0;
        char *end = strstr(req, "\r\n\r\n");
        if (end && clen < 0) {
            char *cl = strcasestr(req, "\r\nContent-Length:");
            clen = cl ? strtol(cl + 17, NULL, 10) : 0;
            body = end + 4;
        }
        if (body && (long)(len - (size_t)(body - req)) >= clen)
            break;
    }
    if (!body || clen < 0) {
        reply(fd, 400, "{}");
        return;
    }
    unsigned char mac[32];
    unsigned mlen = 0;
    char want[7 + 65] = "sha256=";
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)body, (size_t)clen, mac,
         &mlen);
    hex(mac, mlen, want + 7);
    char *sig = strcasestr(req, "\r\nX-Rtcd-Signature:");
    if (!sig || strncmp(sig + 19 + (sig[19] == ' '), want, strlen(want)) != 0) {
        reply(fd, 401, "{\"error\":\"bad signature\"}");
        return;
    }
    json_t *ev = json_loadb(body, (size_t)clen, 0, NULL);
    char *ans = ev ? answer(ev) : NULL;
    json_decref(ev);
    if (ans)
        reply(fd, 200, ans);
    else
        reply(fd, 204, "");
    free(ans);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: echo_bot PORT KEY\n");
        return 2;
    }
    /* the signing secret is the SHA-256 (hex) of the app's key */
    unsigned char d[32];
    unsigned dn = 0;
    char secret[65];
    EVP_Digest(argv[2], strlen(argv[2]), d, &dn, EVP_sha256(), NULL);
    hex(d, dn, secret);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
        perror("bind");
        return 1;
    }
    printf("echo_bot listening on 127.0.0.1:%s\n", argv[1]);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        serve(c, secret);
        close(c);
    }
}

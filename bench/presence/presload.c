/*
 * presload — the presence fan-out load generator of bench/presence.sh.
 *
 *   presload SERVER_IP:PORT USERS WATCHERS SOCKETS SUB_RATE PUBLISHES PUB_RATE PIDS
 *
 * Phase 1: every user u000001..uUSERS is watched by WATCHERS other users (u(i+1)..
 * u(i+WATCHERS), wrapping): one SUBSCRIBE each, paced at SUB_RATE/s, from SOCKETS UDP
 * sockets on 127.0.0.1 (each the Contact of the subscriptions sent from it). Every
 * NOTIFY is answered 200 at once (headers copied, stateless), like a UAS endpoint.
 * After phase 1 it waits SETTLE_SECONDS (default 64: Timer J, 32 s, then rtcd's 30 s
 * malloc_trim period) before reading the server's memory.
 * Phase 2: PUBLISHES publications (users in turn, open/closed alternating) paced at
 * PUB_RATE/s; every NOTIFY they cause is counted (once per Call-ID and CSeq).
 *
 * The server's CPU time (utime + stime from /proc/PID/stat of every pid in the comma
 * list PIDS, all threads) and memory (Pss from /proc/PID/smaps_rollup) are read at the
 * phase boundaries. Bounded: each phase ends when everything expected arrived or after
 * its deadline. Prints one "key value" line per figure.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSOCK 64
#define BATCH   64

static struct sockaddr_in srv;
static int socks[MAXSOCK], ports[MAXSOCK], nsock;
static unsigned users, watchers;
static size_t nsubs;
static uint8_t *sub_ok;     /* 200 to the SUBSCRIBE */
static uint32_t *sub_cseq;  /* highest NOTIFY CSeq seen per subscription */
static uint64_t notifies, notify_dups, sub_200, sub_fail, pub_200, pub_fail;
static int sub_fail_status, pub_fail_status; /* the last failure's status */
static int pids[64], npids;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long cpu_ticks(void)
{
    long long sum = 0;
    for (int i = 0; i < npids; i++) {
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *p = strrchr(buf, ')');
        if (!p)
            continue;
        /* after ") ": state(3) ... utime is field 14, stime 15 */
        unsigned long long ut = 0, st = 0;
        int field = 2;
        for (char *t = strtok(p + 2, " "); t; t = strtok(NULL, " ")) {
            field++;
            if (field == 14)
                ut = strtoull(t, NULL, 10);
            if (field == 15) {
                st = strtoull(t, NULL, 10);
                break;
            }
        }
        sum += (long long)(ut + st);
    }
    return sum;
}

static long long mem_kb(void)
{
    long long sum = 0;
    for (int i = 0; i < npids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "Pss:", 4) == 0)
                sum += atoll(line + 4);
        fclose(f);
    }
    return sum;
}

static void sendto_srv(int s, const char *buf, size_t len)
{
    sendto(socks[s], buf, len, 0, (struct sockaddr *)&srv, sizeof srv);
}

static const char *hdr_line(const char *msg, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *p = msg; p && *p;) {
        if (p[0] == '\r' && p[1] == '\n')
            return NULL; /* end of headers */
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *e = strstr(p, "\r\n");
            *len = e ? (size_t)(e - p) : strlen(p);
            return p;
        }
        p = strstr(p, "\r\n");
        if (p)
            p += 2;
    }
    return NULL;
}

static void subscribe(size_t id)
{
    unsigned u = (unsigned)(id / watchers), w = (unsigned)(id % watchers);
    unsigned watcher = (u + w + 1) % users;
    int s = (int)(id % (size_t)nsock);
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "SUBSCRIBE sip:u%06u@localhost SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-s%zu\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:u%06u@localhost>;tag=w%zu\r\n"
                     "To: <sip:u%06u@localhost>\r\n"
                     "Call-ID: s%zu@presload\r\n"
                     "CSeq: 1 SUBSCRIBE\r\n"
                     "Contact: <sip:u%06u@127.0.0.1:%d>\r\n"
                     "Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 3600\r\n"
                     "Content-Length: 0\r\n\r\n",
                     u + 1, ports[s], id, watcher + 1, id, u + 1, id, watcher + 1,
                     ports[s]);
    sendto_srv(s, buf, (size_t)n);
}

static void publish(size_t k)
{
    unsigned u = (unsigned)(k % users);
    const char *basic = (k / users) % 2 ? "open" : "closed";
    char body[512], buf[1500];
    int bl = snprintf(body, sizeof body,
                      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:u%06u@localhost\">"
                      "<tuple id=\"d1\"><status><basic>%s</basic></status>"
                      "<note>bench %zu</note></tuple></presence>",
                      u + 1, basic, k);
    int s = (int)(k % (size_t)nsock);
    int n = snprintf(buf, sizeof buf,
                     "PUBLISH sip:u%06u@localhost SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-p%zu\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:u%06u@localhost>;tag=p%zu\r\n"
                     "To: <sip:u%06u@localhost>\r\n"
                     "Call-ID: p%zu@presload\r\n"
                     "CSeq: 1 PUBLISH\r\n"
                     "Event: presence\r\nExpires: 3600\r\n"
                     "Content-Type: application/pidf+xml\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     u + 1, ports[s], k, u + 1, k, u + 1, k, bl, body);
    sendto_srv(s, buf, (size_t)n);
}

/* Answers a NOTIFY 200 (stateless: Via, From, To, Call-ID, CSeq copied). */
static void answer(int s, const char *msg, const struct sockaddr_in *from)
{
    char out[2048];
    size_t o = (size_t)snprintf(out, sizeof out, "SIP/2.0 200 OK\r\n");
    static const char *const names[] = { "Via", "From", "To", "Call-ID", "CSeq" };
    for (size_t i = 0; i < 5; i++) {
        const char *p = msg;
        size_t len;
        /* every Via line, one each for the others */
        while ((p = hdr_line(p, names[i], &len)) != NULL) {
            if (o + len + 2 >= sizeof out)
                return;
            memcpy(out + o, p, len);
            o += len;
            memcpy(out + o, "\r\n", 2);
            o += 2;
            if (i != 0)
                break;
            p += len + 2;
        }
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "Content-Length: 0\r\n\r\n");
    sendto(socks[s], out, o, 0, (const struct sockaddr *)from, sizeof *from);
}

static void handle(int s, char *msg, size_t len, const struct sockaddr_in *from)
{
    msg[len] = 0;
    size_t hl;
    const char *cid = hdr_line(msg, "Call-ID", &hl);
    if (!cid)
        return;
    const char *v = cid + 8;
    while (*v == ' ')
        v++;
    if (strncmp(msg, "NOTIFY ", 7) == 0) {
        answer(s, msg, from);
        if (*v != 's')
            return;
        size_t id = strtoull(v + 1, NULL, 10);
        const char *cs = hdr_line(msg, "CSeq", &hl);
        uint32_t cseq = cs ? (uint32_t)strtoul(cs + 5, NULL, 10) : 0;
        if (id < nsubs && cseq > sub_cseq[id]) {
            sub_cseq[id] = cseq;
            notifies++;
        } else {
            notify_dups++;
        }
        return;
    }
    if (strncmp(msg, "SIP/2.0 ", 8) != 0)
        return;
    int status = atoi(msg + 8);
    if (status < 200)
        return;
    if (*v == 's') {
        size_t id = strtoull(v + 1, NULL, 10);
        if (id < nsubs && !(sub_ok[id] & 1)) {
            sub_ok[id] |= 1;
            if (status < 300) {
                sub_200++;
            } else {
                sub_fail++;
                sub_fail_status = status;
            }
        }
    } else if (*v == 'p') {
        if (status >= 200 && status < 300) {
            pub_200++;
        } else {
            pub_fail++;
            pub_fail_status = status;
        }
    }
}

static void pump(int timeout_ms)
{
    struct pollfd pf[MAXSOCK];
    for (int i = 0; i < nsock; i++)
        pf[i] = (struct pollfd){ .fd = socks[i], .events = POLLIN };
    if (poll(pf, (nfds_t)nsock, timeout_ms) <= 0)
        return;
    static char bufs[BATCH][4096];
    struct mmsghdr mm[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
    for (int i = 0; i < nsock; i++) {
        if (!(pf[i].revents & POLLIN))
            continue;
        for (int rounds = 0; rounds < 8; rounds++) {
            for (int k = 0; k < BATCH; k++) {
                iov[k] = (struct iovec){ bufs[k], sizeof bufs[k] - 1 };
                mm[k].msg_hdr = (struct msghdr){ .msg_name = &from[k],
                                                 .msg_namelen = sizeof from[k],
                                                 .msg_iov = &iov[k],
                                                 .msg_iovlen = 1 };
            }
            int n = recvmmsg(socks[i], mm, BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0)
                break;
            for (int k = 0; k < n; k++)
                handle(i, bufs[k], mm[k].msg_len, &from[k]);
            if (n < BATCH)
                break;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 9 && argc != 10) {
        fprintf(stderr, "usage: presload IP:PORT USERS WATCHERS SOCKETS SUB_RATE PUBLISHES "
                        "PUB_RATE PIDS [SETTLE_SECONDS]\n");
        return 2;
    }
    char ip[64];
    snprintf(ip, sizeof ip, "%s", argv[1]);
    char *colon = strrchr(ip, ':');
    if (!colon)
        return 2;
    *colon = 0;
    srv.sin_family = AF_INET;
    srv.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, ip, &srv.sin_addr);
    users = (unsigned)atoi(argv[2]);
    watchers = (unsigned)atoi(argv[3]);
    nsock = atoi(argv[4]);
    double sub_rate = atof(argv[5]);
    size_t npub = (size_t)atoll(argv[6]);
    double pub_rate = atof(argv[7]);
    for (char *t = strtok(argv[8], ","); t && npids < 64; t = strtok(NULL, ","))
        pids[npids++] = atoi(t);
    if (nsock < 1 || nsock > MAXSOCK || !users || !watchers || watchers >= users)
        return 2;
    nsubs = (size_t)users * watchers;
    sub_ok = calloc(nsubs, 1);
    sub_cseq = calloc(nsubs, sizeof *sub_cseq);
    for (int i = 0; i < nsock; i++) {
        socks[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        int sz = 8 << 20;
        setsockopt(socks[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(socks[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        struct sockaddr_in a = { .sin_family = AF_INET };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (bind(socks[i], (struct sockaddr *)&a, sizeof a) < 0)
            return 1;
        socklen_t al = sizeof a;
        getsockname(socks[i], (struct sockaddr *)&a, &al);
        ports[i] = ntohs(a.sin_port);
    }
    long hz = sysconf(_SC_CLK_TCK);
    long long mem0 = mem_kb(), cpu0 = cpu_ticks();
    /* phase 1: subscriptions */
    double t0 = now_s();
    size_t sent = 0;
    double deadline = t0 + (double)nsubs / sub_rate + 60;
    while (now_s() < deadline) {
        double el = now_s() - t0;
        size_t due = (size_t)(el * sub_rate);
        if (due > nsubs)
            due = nsubs;
        while (sent < due)
            subscribe(sent++);
        if (sent == nsubs && sub_200 + sub_fail >= nsubs && notifies >= sub_200)
            break;
        pump(1);
    }
    /* retransmit the unanswered once, then settle */
    for (size_t i = 0; i < nsubs; i++)
        if (!(sub_ok[i] & 1))
            subscribe(i);
    double t1 = now_s();
    while (now_s() < t1 + 3 && !(sub_200 + sub_fail >= nsubs && notifies >= sub_200))
        pump(10);
    double t_sub = now_s() - t0;
    uint64_t initial = notifies;
    long long cpu1 = cpu_ticks();
    /* let the SUBSCRIBE and NOTIFY transactions end (Timer J/K) and the server give freed
     * memory back before reading memory */
    double settle = now_s(), settle_s = argc == 10 ? atof(argv[9]) : 64;
    while (now_s() < settle + settle_s)
        pump(50);
    long long mem1 = mem_kb();
    printf("subscriptions %zu\nsubscribe_200 %llu\nsubscribe_failed %llu\n", nsubs,
           (unsigned long long)sub_200, (unsigned long long)sub_fail);
    if (sub_fail)
        printf("subscribe_failure_status %d\n", sub_fail_status);
    printf("initial_notifies %llu\nsubscribe_seconds %.1f\nsubscribe_per_s %.0f\n",
           (unsigned long long)initial, t_sub, (double)sub_200 / t_sub);
    printf("cpu_us_per_subscription %.1f\n",
           sub_200 ? (double)(cpu1 - cpu0) * 1e6 / (double)hz / (double)sub_200 : 0.0);
    printf("memory_kb_before %lld\nmemory_kb_after %lld\nbytes_per_subscription %.0f\n", mem0,
           mem1, sub_200 ? (double)(mem1 - mem0) * 1024.0 / (double)sub_200 : 0.0);
    fflush(stdout);
    /* phase 2: a burst of PUBLISHes */
    uint64_t n0 = notifies;
    long long c0 = cpu_ticks();
    double p0 = now_s();
    size_t psent = 0;
    uint64_t want = (uint64_t)npub * watchers;
    deadline = p0 + (double)npub / pub_rate + 30;
    double last_rx = p0;
    while (now_s() < deadline) {
        double el = now_s() - p0;
        size_t due = (size_t)(el * pub_rate);
        if (due > npub)
            due = npub;
        while (psent < due)
            publish(psent++);
        uint64_t before = notifies;
        pump(5);
        if (notifies != before)
            last_rx = now_s();
        if (psent == npub && notifies - n0 >= want)
            break;
        if (psent == npub && now_s() - last_rx > 3)
            break; /* nothing more is coming */
    }
    double p_secs = last_rx - p0;
    long long c1 = cpu_ticks();
    uint64_t got = notifies - n0;
    printf("publishes %zu\npublish_200 %llu\npublish_failed %llu\n", npub,
           (unsigned long long)pub_200, (unsigned long long)pub_fail);
    if (pub_fail)
        printf("publish_failure_status %d\n", pub_fail_status);
    printf("notifies_expected %llu\nnotifies_received %llu\nnotify_retransmissions %llu\n",
           (unsigned long long)want, (unsigned long long)got, (unsigned long long)notify_dups);
    printf("burst_seconds %.2f\nnotifies_per_s %.0f\n", p_secs, p_secs > 0 ? (double)got / p_secs : 0.0);
    printf("cpu_us_per_notify %.2f\n",
           got ? (double)(c1 - c0) * 1e6 / (double)hz / (double)got : 0.0);
    return 0;
}

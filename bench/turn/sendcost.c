/*
 * sendcost — what one loopback UDP datagram costs its sender in this kernel,
 * alone: the floor under any relay's CPU per relayed packet in bench/turn.sh
 * (on loopback the sender is also charged the delivery into the receiving
 * socket).
 *
 *   sendcost MODE SOCKETS PAYLOAD BURST SLEEP_US COUNT
 *
 * MODE: sendto (unconnected, as a relay socket), connected (send on a
 * connected socket), gso (BURST datagrams as one UDP_SEGMENT send from one
 * socket). SOCKETS sender sockets take turns (round robin, like relay
 * sockets of different allocations); BURST datagrams are sent back to back,
 * then the receiver is drained and the program sleeps SLEEP_US (0 = not),
 * like a server woken for each burst. Prints the sender's CPU (getrusage
 * around the send loops only, so two getrusage calls per burst are in it) per
 * datagram. Bounded by COUNT (at most 10^7).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "../cpu.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define MAX_SOCKETS 1000

static int usage(void)
{
    fputs("usage: sendcost sendto|connected|gso SOCKETS PAYLOAD BURST SLEEP_US COUNT\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 7)
        return usage();
    const char *mode = argv[1];
    int nsock = atoi(argv[2]), payload = atoi(argv[3]), burst = atoi(argv[4]);
    long sleep_us = atol(argv[5]), count = atol(argv[6]);
    bool gso = strcmp(mode, "gso") == 0, conn = strcmp(mode, "connected") == 0;
    if ((!gso && !conn && strcmp(mode, "sendto") != 0) || nsock < 1 || nsock > MAX_SOCKETS ||
        payload < 1 || payload > 1400 || burst < 1 || burst > 64 || sleep_us < 0 || sleep_us > 999999 ||
        count < 1 || count > 10000000)
        return usage();
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 8 << 20;
    setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    socklen_t alen = sizeof a;
    if (rx < 0 || bind(rx, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(rx, (struct sockaddr *)&a, &alen) < 0) {
        perror("receiver");
        return 1;
    }
    static int tx[MAX_SOCKETS];
    for (int i = 0; i < nsock; i++) {
        struct sockaddr_in any = { .sin_family = AF_INET };
        any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        tx[i] = socket(AF_INET, SOCK_DGRAM, 0);
        if (tx[i] < 0 || bind(tx[i], (struct sockaddr *)&any, sizeof any) < 0 ||
            ((conn || gso) && connect(tx[i], (struct sockaddr *)&a, sizeof a) < 0)) {
            perror("sender");
            return 1;
        }
        if (gso)
            setsockopt(tx[i], SOL_UDP, UDP_SEGMENT, &payload, sizeof payload);
    }
    static char buf[64 * 1400];
    memset(buf, 'x', sizeof buf);
    static char rbuf[64][2048];
    struct mmsghdr rm[64];
    struct iovec ri[64];
    for (int i = 0; i < 64; i++) {
        ri[i].iov_base = rbuf[i];
        ri[i].iov_len = sizeof rbuf[i];
        memset(&rm[i], 0, sizeof rm[i]);
        rm[i].msg_hdr.msg_iov = &ri[i];
        rm[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0, got = 0, turn = 0;
    double spent = 0;
    while (sent < count) {
        double c0 = cpu_s();
        if (gso) {
            send(tx[turn++ % nsock], buf, (size_t)payload * (size_t)burst, 0);
            sent += burst; /* a failed send counts too: the loop stays bounded */
        } else {
            for (int k = 0; k < burst && sent < count; k++, sent++) {
                int fd = tx[turn++ % nsock];
                if (conn)
                    send(fd, buf, (size_t)payload, 0);
                else
                    sendto(fd, buf, (size_t)payload, 0, (struct sockaddr *)&a, sizeof a);
            }
        }
        spent += cpu_s() - c0;
        int r;
        while ((r = recvmmsg(rx, rm, 64, MSG_DONTWAIT, NULL)) > 0)
            got += r;
        if (sleep_us) {
            struct timespec ts = { 0, sleep_us * 1000 };
            nanosleep(&ts, NULL);
        }
    }
    printf("%s sockets %d payload %d burst %d sleep %ld us: %.2f us per datagram "
           "(sent %ld, received %ld)\n",
           mode, nsock, payload, burst, sleep_us, spent * 1e6 / (double)sent, sent, got);
    return 0;
}

/*
 * steer_bench — what the steering program (src/net/steer.c) costs per datagram.
 * One process sends datagrams to a loopback SO_REUSEPORT group of two sockets
 * and reads them back; its CPU time per datagram is compared with the program
 * attached and without it, for datagrams with no tag (the program scans them
 * whole) and with a tag at byte 60 (where a response's top Via puts it). The
 * kernel runs the program while delivering, which on loopback is inside the
 * sender's sendto. Bounded: COUNT datagrams per case, best of 3 rounds.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../cpu.h"
#include "net/steer.h"

#define COUNT 200000
#define ROUNDS 3

/* µs of CPU per datagram sent and received, best of ROUNDS. */
static double run(bool steered, size_t len, bool tagged)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd[2], one = 1, rcvbuf = 1 << 22;
    for (int i = 0; i < 2; i++) {
        fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        socklen_t l = sizeof a;
        if (fd[i] < 0 || setsockopt(fd[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            setsockopt(fd[i], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0 ||
            bind(fd[i], (struct sockaddr *)&a, sizeof a) < 0 ||
            getsockname(fd[i], (struct sockaddr *)&a, &l) < 0) {
            perror("steer_bench: socket");
            exit(1);
        }
    }
    if (steered && steer_attach(fd[0]) < 0) {
        fprintf(stderr, "steer_bench: the kernel refused the program\n");
        exit(1);
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    char out[2048], in[2048];
    memset(out, 'x', len);
    if (tagged) {
        char tag[STEER_TAG_LEN + 1];
        steer_tag(1, tag);
        memcpy(out + 60, tag, STEER_TAG_LEN);
    }
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = cpu_s();
        for (int i = 0; i < COUNT; i++) {
            if (sendto(s, out, len, 0, (struct sockaddr *)&a, sizeof a) != (ssize_t)len) {
                perror("steer_bench: sendto");
                exit(1);
            }
            for (int k = 0; k < 2; k++)
                recv(fd[k], in, sizeof in, MSG_DONTWAIT);
        }
        double us = (cpu_s() - t0) * 1e6 / COUNT;
        if (us < best)
            best = us;
    }
    close(s);
    close(fd[0]);
    close(fd[1]);
    return best;
}

int main(void)
{
    static const size_t sizes[] = { 300, 500, 1400 };
    printf("%-44s %10s %10s %10s\n", "datagram", "no prog", "with prog", "added");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (int tagged = 0; tagged < 2; tagged++) {
            double base = run(false, sizes[i], tagged);
            double with = run(true, sizes[i], tagged);
            char what[64];
            snprintf(what, sizeof what, "%zu bytes, %s", sizes[i],
                     tagged ? "tag at byte 60" : "no tag (scanned whole)");
            printf("%-44s %8.2f µs %8.2f µs %8.2f µs\n", what, base, with, with - base);
        }
    }
    printf("(CPU per datagram sent and received on loopback, best of %d rounds of %d)\n", ROUNDS,
           COUNT);
    return 0;
}

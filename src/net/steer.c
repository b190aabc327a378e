/*
 * steer — the classic BPF program behind net/steer.h.
 *
 * Classic BPF has no loops, so the scan is unrolled, and it is kept short by
 * reading aligned 32-bit words only: a 7-byte tag mark always covers one
 * aligned word, in one of four shifts, so each word is compared with four
 * constants. On a match X holds the word's offset and a tail per shift reads
 * the two index letters after the mark. A load past the datagram's end would
 * end the program with 0 (socket 0), so before each word the length is checked
 * and a datagram too short for a tag there stops the scan: only a tag that
 * ends in the datagram's last 3 bytes is missed, and a SIP message always has
 * more after it. Conditional jumps reach only 255 instructions, so each
 * 96-byte group of the scan ends with jumps on to the tails.
 */
#include "net/steer.h"

#include <errno.h>
#include <linux/filter.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

#define NO_SOCKET 0xffffffffu /* past the group: the kernel hashes instead */
#define GROUP_BYTES 96
#define GROUPS (STEER_SCAN_BYTES / GROUP_BYTES)
/* per group: 24 words of (length check 2, load 2, compare 4), a jump over 5 exits, 5 exits */
#define GROUP_INSNS ((GROUP_BYTES / 4) * 8 + 1 + 5)
#define TAIL_INSNS 11
#define PROG_INSNS (GROUPS * GROUP_INSNS + 1 + 4 * TAIL_INSNS + 1)

_Static_assert(PROG_INSNS <= BPF_MAXINSNS, "the scan does not fit one classic BPF program");
_Static_assert(STEER_SCAN_BYTES % GROUP_BYTES == 0, "the scan is whole groups");
_Static_assert(GROUP_INSNS - 2 <= 255, "a group's first jump reaches its exits");

void steer_tag(unsigned i, char out[STEER_TAG_LEN + 1])
{
    static const char mark[] = STEER_MARK;
    for (size_t k = 0; k < STEER_MARK_LEN; k++)
        out[k] = mark[k];
    out[STEER_MARK_LEN] = (char)('a' + ((i >> 4) & 15));
    out[STEER_MARK_LEN + 1] = (char)('a' + (i & 15));
    out[STEER_TAG_LEN] = '\0';
}

/* The mark's bytes j..j+3 as the big-endian word a BPF load yields. */
static uint32_t mark_word(unsigned j)
{
    const unsigned char *m = (const unsigned char *)STEER_MARK + j;
    return (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 | (uint32_t)m[2] << 8 | m[3];
}

static struct sock_filter insn(uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    return (struct sock_filter){ code, jt, jf, k };
}

/* Fills p (PROG_INSNS long). */
static void build(struct sock_filter *p)
{
    size_t n = 0, tails = (size_t)GROUPS * GROUP_INSNS + 1;
    for (unsigned g = 0; g < GROUPS; g++) {
        size_t exits = n + GROUP_INSNS - 5; /* the group's 5 exits: tails 0..3, no socket */
        for (uint32_t off = g * GROUP_BYTES; off < (g + 1) * GROUP_BYTES; off += 4) {
            /* a mark covering this word in shift 0 has its letters up to off + 8 */
            p[n++] = insn(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0);
            p[n] = insn(BPF_JMP | BPF_JGE | BPF_K, 0, (uint8_t)(exits + 4 - n - 1), off + 9);
            n++;
            p[n++] = insn(BPF_LDX | BPF_W | BPF_IMM, 0, 0, off);
            p[n++] = insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, off);
            for (unsigned j = 0; j < 4; j++, n++)
                p[n] = insn(BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(exits + j - n - 1), 0,
                            mark_word(j));
        }
        p[n] = insn(BPF_JMP | BPF_JA, 0, 0, 5);
        n++;
        for (unsigned j = 0; j < 4; j++, n++) /* tail j starts at tails + j * TAIL_INSNS */
            p[n] = insn(BPF_JMP | BPF_JA, 0, 0, (uint32_t)(tails + j * TAIL_INSNS - n - 1));
        p[n++] = insn(BPF_RET | BPF_K, 0, 0, NO_SOCKET);
    }
    p[n++] = insn(BPF_RET | BPF_K, 0, 0, NO_SOCKET); /* nothing in the scanned bytes */
    size_t fail = n + 4 * TAIL_INSNS;
    for (unsigned j = 0; j < 4; j++) {
        /* the mark starts at X - j: its letters are at X + 7 - j and X + 8 - j */
        p[n++] = insn(BPF_LD | BPF_B | BPF_IND, 0, 0, STEER_MARK_LEN - j);
        p[n++] = insn(BPF_ALU | BPF_SUB | BPF_K, 0, 0, 'a');
        p[n] = insn(BPF_JMP | BPF_JGT | BPF_K, (uint8_t)(fail - n - 1), 0, 15);
        n++;
        p[n++] = insn(BPF_ALU | BPF_LSH | BPF_K, 0, 0, 4);
        p[n++] = insn(BPF_ST, 0, 0, 0);
        p[n++] = insn(BPF_LD | BPF_B | BPF_IND, 0, 0, STEER_MARK_LEN + 1 - j);
        p[n++] = insn(BPF_ALU | BPF_SUB | BPF_K, 0, 0, 'a');
        p[n] = insn(BPF_JMP | BPF_JGT | BPF_K, (uint8_t)(fail - n - 1), 0, 15);
        n++;
        p[n++] = insn(BPF_LDX | BPF_W | BPF_MEM, 0, 0, 0);
        p[n++] = insn(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0);
        p[n++] = insn(BPF_RET | BPF_A, 0, 0, 0);
    }
    p[n++] = insn(BPF_RET | BPF_K, 0, 0, NO_SOCKET);
}

int steer_attach(int fd)
{
    struct sock_filter *p = calloc(PROG_INSNS, sizeof *p);
    if (!p)
        return -ENOMEM;
    build(p);
    struct sock_fprog prog = { .len = PROG_INSNS, .filter = p };
    int rc = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
    int e = errno;
    free(p);
    return rc < 0 ? -e : 0;
}

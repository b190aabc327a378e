/*
 * steer — which worker's UDP socket the kernel gives a datagram to.
 *
 * The workers' UDP sockets on one address form a SO_REUSEPORT group; by
 * default the kernel picks one by a hash of the peer's address. A classic BPF
 * program attached to the group (SO_ATTACH_REUSEPORT_CBPF, no privilege
 * needed) picks instead the socket a tag in the payload names: "~rtcd~w"
 * followed by two letters 'a'..'p' (the index's high and low nibble). The
 * layer above writes the tag of the worker that owns the state into what
 * comes back to it: its branch (responses copy the Via) and its Record-Route
 * (in-dialog requests carry it as Route). A datagram without a tag, or with
 * one past the scanned bytes or naming no socket, goes by the hash as before.
 * The tag is a hint: the receiver still checks ownership and hands over.
 */
#ifndef RTCD_NET_STEER_H
#define RTCD_NET_STEER_H

#include <stddef.h>

#define STEER_MARK "~rtcd~w"
#define STEER_MARK_LEN 7
#define STEER_TAG_LEN (STEER_MARK_LEN + 2)
#define STEER_MAX_INDEX 255
/* How far into a datagram the program looks for the tag. */
#define STEER_SCAN_BYTES 1920

/* The tag of socket (worker) index i <= STEER_MAX_INDEX, NUL-terminated. */
void steer_tag(unsigned i, char out[STEER_TAG_LEN + 1]);

/*
 * Attaches the program to the group fd belongs to. Sockets are numbered in the
 * order they joined the group. Returns 0 or a negative errno.
 */
int steer_attach(int fd);

#endif

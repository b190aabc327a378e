/*
 * svc/pidf — PIDF presence documents (RFC 3863): a checking parser (expat)
 * that keeps the core of each tuple, and the writer that aggregates several
 * publications and registered devices into one document for watchers
 * (docs/presence.md, "Aggregation").
 *
 * Ownership: a struct pidf_doc is one allocation owned by its caller
 * (pidf_free). Nothing here keeps global state; every function is
 * thread-safe on distinct arguments.
 */
#ifndef RTCD_SVC_PIDF_H
#define RTCD_SVC_PIDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"

/* Bounds a publisher cannot raise. */
#define PIDF_MAX_TUPLES 32
#define PIDF_MAX_DEPTH  32
#define PIDF_TEXT_MAX   1024 /* one note, contact, id or timestamp */
#define PIDF_MAX_BYTES  (64 * 1024)

enum pidf_basic {
    PIDF_BASIC_NONE = 0, /* the tuple's status has no <basic> */
    PIDF_BASIC_OPEN,
    PIDF_BASIC_CLOSED,
};

struct pidf_tuple {
    str id;
    enum pidf_basic basic;
    str contact;  /* empty = none */
    str priority; /* the contact's priority attribute as written, empty = none */
    str note;     /* the first note of the tuple, empty = none */
    str timestamp;
};

struct pidf_doc {
    str entity;
    str note; /* the first note outside tuples (presence or person), empty = none */
    size_t ntuples;
    struct pidf_tuple *tuples; /* inside the same allocation */
};

/*
 * Parses and checks a PIDF document. Returns 0 and *out (a new allocation: free
 * with pidf_free), or -EPROTO with a one-line reason in why (printable ASCII, no
 * CR/LF, e.g. "PIDF: tuple without id"), -E2BIG (a bound passed; why says which),
 * -ENOMEM. DOCTYPEs and entity declarations are refused. Never blocks.
 */
int pidf_parse(str xml, struct pidf_doc **out, char *why, size_t whylen);
void pidf_free(struct pidf_doc *d);

/* The overall basic status of a document: open when any tuple is open. */
bool pidf_is_open(const struct pidf_doc *d);

/* A tuple made for a registered device that publishes nothing (always open). */
struct pidf_reg {
    str id;      /* unique in the document, e.g. "reg-3fa1" */
    str contact; /* the binding's contact URI */
};

/*
 * Writes the aggregated document of entity into out (appended):
 *   - tuples of docs[0..ndocs), the newest first: a tuple id already written by a
 *     newer document is skipped (the newest publication of a tuple wins);
 *   - then one open tuple per reg[i] whose contact no written tuple names;
 *   - with no tuple at all, one tuple "offline" with basic closed.
 * The presence-level note is the newest document's. 0, or -ENOBUFS/-ENOMEM.
 */
int pidf_aggregate(struct buf *out, str entity, const struct pidf_doc *const *docs, size_t ndocs,
                   const struct pidf_reg *reg, size_t nreg);

/* A document with one closed tuple (offline; what a politely blocked watcher sees). */
int pidf_write_offline(struct buf *out, str entity);

/* Appends s with XML's five special characters escaped (text and attribute values). */
int pidf_escape(struct buf *out, str s);

#endif

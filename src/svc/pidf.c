/*
 * svc/pidf — PIDF (RFC 3863) parsing with expat and the aggregated writer.
 */
#include "svc/pidf.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PIDF "urn:ietf:params:xml:ns:pidf"

enum field { F_NONE, F_BASIC, F_CONTACT, F_NOTE, F_TIMESTAMP, F_TOPNOTE };

struct tmp_tuple {
    char *id, *contact, *priority, *note, *timestamp;
    enum pidf_basic basic;
    bool has_status;
};

struct pstate {
    XML_Parser xp;
    int depth;
    int err;
    char *why;
    size_t whylen;
    bool root_seen;
    char *entity;
    char *note;
    int tuple_depth; /* depth of the open <tuple>, 0 = none */
    int status_depth;
    enum field field;
    int field_depth;
    struct buf text;
    size_t ntuples;
    struct tmp_tuple t[PIDF_MAX_TUPLES];
};

static void fail(struct pstate *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct pstate *p, int err, const char *fmt, ...)
{
    if (p->err)
        return;
    p->err = err;
    if (p->why && p->whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->why, p->whylen, fmt, ap);
        va_end(ap);
        for (char *c = p->why; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                *c = '?';
    }
    XML_StopParser(p->xp, XML_FALSE);
}

/* Splits an expat "namespace|local" name. */
static void split_name(const char *name, str *ns, str *local)
{
    const char *bar = strchr(name, '|');
    if (bar) {
        *ns = str_make(name, (size_t)(bar - name));
        *local = str_cstr(bar + 1);
    } else {
        *ns = STR_NULL;
        *local = str_cstr(name);
    }
}

static const char *attr(const char **atts, const char *name)
{
    for (size_t i = 0; atts[i]; i += 2)
        if (strcmp(atts[i], name) == 0)
            return atts[i + 1];
    return NULL;
}

static char *dup_checked(struct pstate *p, const char *s, const char *what)
{
    size_t n = strlen(s);
    if (n > PIDF_TEXT_MAX) {
        fail(p, -E2BIG, "PIDF: %s longer than %d bytes", what, PIDF_TEXT_MAX);
        return NULL;
    }
    char *c = malloc(n + 1);
    if (!c) {
        fail(p, -ENOMEM, "PIDF: out of memory");
        return NULL;
    }
    memcpy(c, s, n + 1);
    return c;
}

static void start_field(struct pstate *p, enum field f)
{
    p->field = f;
    p->field_depth = p->depth;
    buf_reset(&p->text);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct pstate *p = ud;
    if (p->err)
        return;
    p->depth++;
    if (p->depth > PIDF_MAX_DEPTH) {
        fail(p, -E2BIG, "PIDF: elements nested deeper than %d", PIDF_MAX_DEPTH);
        return;
    }
    str ns, local;
    split_name(name, &ns, &local);
    bool pidf = str_eq(ns, STR(NS_PIDF));
    if (p->depth == 1) {
        if (!pidf || !str_eq(local, STR("presence"))) {
            fail(p, -EPROTO, "PIDF: the root element is not <presence> in the " NS_PIDF
                             " namespace");
            return;
        }
        const char *e = attr(atts, "entity");
        if (!e || !*e) {
            fail(p, -EPROTO, "PIDF: <presence> has no entity attribute");
            return;
        }
        p->root_seen = true;
        p->entity = dup_checked(p, e, "entity");
        return;
    }
    if (p->field != F_NONE) {
        if (p->field == F_BASIC)
            fail(p, -EPROTO, "PIDF: <basic> holds an element");
        return; /* markup inside a note or contact: its text is kept */
    }
    if (p->depth == 2 && pidf && str_eq(local, STR("tuple"))) {
        if (p->ntuples >= PIDF_MAX_TUPLES) {
            fail(p, -E2BIG, "PIDF: more than %d tuples", PIDF_MAX_TUPLES);
            return;
        }
        const char *id = attr(atts, "id");
        if (!id || !*id) {
            fail(p, -EPROTO, "PIDF: a <tuple> has no id");
            return;
        }
        for (size_t i = 0; i < p->ntuples; i++)
            if (strcmp(p->t[i].id, id) == 0) {
                fail(p, -EPROTO, "PIDF: two tuples have the id '%.40s'", id);
                return;
            }
        struct tmp_tuple *t = &p->t[p->ntuples++];
        t->id = dup_checked(p, id, "tuple id");
        p->tuple_depth = p->depth;
        return;
    }
    if (p->tuple_depth && p->depth == p->tuple_depth + 1 && pidf) {
        struct tmp_tuple *t = &p->t[p->ntuples - 1];
        if (str_eq(local, STR("status"))) {
            if (t->has_status) {
                fail(p, -EPROTO, "PIDF: tuple '%.40s' has two <status>", t->id);
                return;
            }
            t->has_status = true;
            p->status_depth = p->depth;
        } else if (str_eq(local, STR("contact")) && !t->contact) {
            const char *prio = attr(atts, "priority");
            if (prio && !t->priority)
                t->priority = dup_checked(p, prio, "contact priority");
            start_field(p, F_CONTACT);
        } else if (str_eq(local, STR("note")) && !t->note) {
            start_field(p, F_NOTE);
        } else if (str_eq(local, STR("timestamp")) && !t->timestamp) {
            start_field(p, F_TIMESTAMP);
        }
        return;
    }
    if (p->status_depth && p->depth == p->status_depth + 1 && pidf &&
        str_eq(local, STR("basic"))) {
        start_field(p, F_BASIC);
        return;
    }
    /* a note outside any tuple: presence/note, or a person's note (RFC 4479 data model) */
    if (!p->tuple_depth && !p->note && str_eq(local, STR("note")))
        start_field(p, F_TOPNOTE);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct pstate *p = ud;
    (void)name;
    if (p->err)
        return;
    if (p->field != F_NONE && p->depth == p->field_depth) {
        buf_append_byte(&p->text, 0);
        str v = str_trim(str_cstr((const char *)p->text.data));
        char tmp[PIDF_TEXT_MAX + 1];
        if (str_copy(tmp, sizeof tmp, v) < 0) {
            fail(p, -E2BIG, "PIDF: text longer than %d bytes", PIDF_TEXT_MAX);
            return;
        }
        struct tmp_tuple *t = p->ntuples ? &p->t[p->ntuples - 1] : NULL;
        switch (p->field) {
        case F_BASIC:
            if (strcmp(tmp, "open") == 0)
                t->basic = PIDF_BASIC_OPEN;
            else if (strcmp(tmp, "closed") == 0)
                t->basic = PIDF_BASIC_CLOSED;
            else
                fail(p, -EPROTO, "PIDF: <basic> is '%.20s', not open or closed", tmp);
            break;
        case F_CONTACT:
            t->contact = dup_checked(p, tmp, "contact");
            break;
        case F_NOTE:
            t->note = dup_checked(p, tmp, "note");
            break;
        case F_TIMESTAMP:
            t->timestamp = dup_checked(p, tmp, "timestamp");
            break;
        case F_TOPNOTE:
            p->note = dup_checked(p, tmp, "note");
            break;
        default:
            break;
        }
        p->field = F_NONE;
    }
    if (p->status_depth == p->depth)
        p->status_depth = 0;
    if (p->tuple_depth == p->depth) {
        struct tmp_tuple *t = &p->t[p->ntuples - 1];
        if (!t->has_status)
            fail(p, -EPROTO, "PIDF: tuple '%.40s' has no <status>", t->id);
        p->tuple_depth = 0;
    }
    p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct pstate *p = ud;
    if (p->err || p->field == F_NONE || len <= 0)
        return;
    if (p->text.len + (size_t)len > PIDF_TEXT_MAX + 64) {
        fail(p, -E2BIG, "PIDF: text longer than %d bytes", PIDF_TEXT_MAX);
        return;
    }
    if (buf_append(&p->text, s, (size_t)len) < 0)
        fail(p, -ENOMEM, "PIDF: out of memory");
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal;
    fail(ud, -EPROTO, "PIDF: a DOCTYPE is not allowed");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int value_len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    fail(ud, -EPROTO, "PIDF: entity declarations are not allowed");
}

static void tmp_free(struct pstate *p)
{
    for (size_t i = 0; i < p->ntuples; i++) {
        free(p->t[i].id);
        free(p->t[i].contact);
        free(p->t[i].priority);
        free(p->t[i].note);
        free(p->t[i].timestamp);
    }
    free(p->entity);
    free(p->note);
    buf_free(&p->text);
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Copies s behind *at and returns the slice. */
static str pack(char **at, const char *s)
{
    size_t n = slen(s);
    if (!n)
        return STR_NULL;
    memcpy(*at, s, n);
    str r = str_make(*at, n);
    *at += n;
    return r;
}

int pidf_parse(str xml, struct pidf_doc **out, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    if (xml.len > PIDF_MAX_BYTES) {
        if (why)
            snprintf(why, whylen, "PIDF: document larger than %d bytes", PIDF_MAX_BYTES);
        return -E2BIG;
    }
    struct pstate *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->why = why;
    p->whylen = whylen;
    buf_init(&p->text, PIDF_TEXT_MAX + 128);
    p->xp = XML_ParserCreateNS(NULL, '|');
    if (!p->xp) {
        free(p);
        return -ENOMEM;
    }
    XML_SetUserData(p->xp, p);
    XML_SetElementHandler(p->xp, on_start, on_end);
    XML_SetCharacterDataHandler(p->xp, on_text);
    XML_SetStartDoctypeDeclHandler(p->xp, on_doctype);
    XML_SetEntityDeclHandler(p->xp, on_entity);
    enum XML_Status st = XML_Parse(p->xp, xml.s ? xml.s : "", (int)xml.len, XML_TRUE);
    if (st != XML_STATUS_OK && !p->err) {
        enum XML_Error e = XML_GetErrorCode(p->xp);
        unsigned long line = (unsigned long)XML_GetCurrentLineNumber(p->xp);
        fail(p, -EPROTO, "PIDF: not well-formed XML (line %lu: %s)", line, XML_ErrorString(e));
    }
    if (!p->err && !p->root_seen)
        fail(p, -EPROTO, "PIDF: no <presence> element");
    XML_ParserFree(p->xp);
    int rc = p->err;
    if (rc == 0) {
        size_t total = sizeof(struct pidf_doc) + p->ntuples * sizeof(struct pidf_tuple) +
                       slen(p->entity) + slen(p->note);
        for (size_t i = 0; i < p->ntuples; i++)
            total += slen(p->t[i].id) + slen(p->t[i].contact) + slen(p->t[i].priority) +
                     slen(p->t[i].note) + slen(p->t[i].timestamp);
        struct pidf_doc *d = calloc(1, total + 1);
        if (!d) {
            rc = -ENOMEM;
        } else {
            d->tuples = (struct pidf_tuple *)(d + 1);
            d->ntuples = p->ntuples;
            char *at = (char *)(d->tuples + p->ntuples);
            d->entity = pack(&at, p->entity);
            d->note = pack(&at, p->note);
            for (size_t i = 0; i < p->ntuples; i++) {
                struct pidf_tuple *t = &d->tuples[i];
                t->id = pack(&at, p->t[i].id);
                t->basic = p->t[i].basic;
                t->contact = pack(&at, p->t[i].contact);
                t->priority = pack(&at, p->t[i].priority);
                t->note = pack(&at, p->t[i].note);
                t->timestamp = pack(&at, p->t[i].timestamp);
            }
            *out = d;
        }
    }
    tmp_free(p);
    free(p);
    return rc;
}

void pidf_free(struct pidf_doc *d)
{
    free(d);
}

bool pidf_is_open(const struct pidf_doc *d)
{
    for (size_t i = 0; d && i < d->ntuples; i++)
        if (d->tuples[i].basic == PIDF_BASIC_OPEN)
            return true;
    return false;
}

int pidf_escape(struct buf *out, str s)
{
    int rc = 0;
    size_t from = 0;
    for (size_t i = 0; i < s.len && rc == 0; i++) {
        const char *rep = NULL;
        switch (s.s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default: break;
        }
        if (!rep)
            continue;
        rc = buf_append(out, s.s + from, i - from);
        if (rc == 0)
            rc = buf_append(out, rep, strlen(rep));
        from = i + 1;
    }
    if (rc == 0)
        rc = buf_append(out, s.s + from, s.len - from);
    return rc;
}

static int write_head(struct buf *out, str entity)
{
    int rc = buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<presence xmlns=\"" NS_PIDF "\" entity=\"");
    if (rc == 0)
        rc = pidf_escape(out, entity);
    if (rc == 0)
        rc = buf_printf(out, "\">\n");
    return rc;
}

static int write_tuple(struct buf *out, str id, enum pidf_basic basic, str contact, str prio,
                       str note, str timestamp)
{
    int rc = buf_printf(out, "<tuple id=\"");
    rc = rc ? rc : pidf_escape(out, id);
    rc = rc ? rc : buf_printf(out, "\"><status>");
    if (!rc && basic != PIDF_BASIC_NONE)
        rc = buf_printf(out, "<basic>%s</basic>", basic == PIDF_BASIC_OPEN ? "open" : "closed");
    rc = rc ? rc : buf_printf(out, "</status>");
    if (!rc && contact.len) {
        rc = buf_printf(out, "<contact");
        if (!rc && prio.len) {
            rc = buf_printf(out, " priority=\"");
            rc = rc ? rc : pidf_escape(out, prio);
            rc = rc ? rc : buf_printf(out, "\"");
        }
        rc = rc ? rc : buf_printf(out, ">");
        rc = rc ? rc : pidf_escape(out, contact);
        rc = rc ? rc : buf_printf(out, "</contact>");
    }
    if (!rc && note.len) {
        rc = buf_printf(out, "<note>");
        rc = rc ? rc : pidf_escape(out, note);
        rc = rc ? rc : buf_printf(out, "</note>");
    }
    if (!rc && timestamp.len) {
        rc = buf_printf(out, "<timestamp>");
        rc = rc ? rc : pidf_escape(out, timestamp);
        rc = rc ? rc : buf_printf(out, "</timestamp>");
    }
    return rc ? rc : buf_printf(out, "</tuple>\n");
}

static bool contact_eq(str a, str b)
{
    if (a.len && a.s[0] == '<')
        a = str_sub(a, 1, a.len >= 2 ? a.len - 2 : 0);
    if (b.len && b.s[0] == '<')
        b = str_sub(b, 1, b.len >= 2 ? b.len - 2 : 0);
    return a.len && str_caseeq(a, b);
}

int pidf_aggregate(struct buf *out, str entity, const struct pidf_doc *const *docs, size_t ndocs,
                   const struct pidf_reg *reg, size_t nreg)
{
    int rc = write_head(out, entity);
    size_t written = 0;
    str note = STR_NULL;
    for (size_t d = 0; d < ndocs && rc == 0; d++) {
        const struct pidf_doc *doc = docs[d];
        if (!note.len)
            note = doc->note;
        for (size_t i = 0; i < doc->ntuples && rc == 0; i++) {
            const struct pidf_tuple *t = &doc->tuples[i];
            bool dup = false;
            for (size_t e = 0; e < d && !dup; e++)
                for (size_t k = 0; k < docs[e]->ntuples && !dup; k++)
                    dup = str_eq(docs[e]->tuples[k].id, t->id);
            if (dup)
                continue;
            rc = write_tuple(out, t->id, t->basic, t->contact, t->priority, t->note,
                             t->timestamp);
            written++;
        }
    }
    for (size_t r = 0; r < nreg && rc == 0; r++) {
        bool named = false;
        for (size_t d = 0; d < ndocs && !named; d++)
            for (size_t k = 0; k < docs[d]->ntuples && !named; k++)
                named = contact_eq(docs[d]->tuples[k].contact, reg[r].contact);
        if (named)
            continue;
        rc = write_tuple(out, reg[r].id, PIDF_BASIC_OPEN, reg[r].contact, STR_NULL, STR_NULL,
                         STR_NULL);
        written++;
    }
    if (rc == 0 && written == 0)
        rc = write_tuple(out, STR("offline"), PIDF_BASIC_CLOSED, STR_NULL, STR_NULL, STR_NULL,
                         STR_NULL);
    if (rc == 0 && note.len) {
        rc = buf_printf(out, "<note>");
        rc = rc ? rc : pidf_escape(out, note);
        rc = rc ? rc : buf_printf(out, "</note>\n");
    }
    return rc ? rc : buf_printf(out, "</presence>\n");
}

int pidf_write_offline(struct buf *out, str entity)
{
    return pidf_aggregate(out, entity, NULL, 0, NULL, 0);
}

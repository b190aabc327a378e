/*
 * sip/msg — the SIP message layer: a zero-copy parser (start line, header index,
 * core headers), URIs, deep parsers for Via / name-addr / digest parameters, the
 * structured rejection table, stream framing, and the writer (responses, forwarding
 * with edits, new requests). docs/sip-parser.md is the short guide.
 *
 * Ownership: every str in these structs points into the caller's message bytes; the
 * bytes must outlive the struct sip_msg. Nothing here allocates except the accessors
 * that take a struct arena (the result is arena-owned) and the writer (into a struct
 * buf the caller owns). No global state; every function is thread-safe on distinct
 * messages.
 */
#ifndef RTCD_SIP_MSG_H
#define RTCD_SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"

struct config;

/* ---- limits ---------------------------------------------------------------- */

struct sip_limits {
    uint32_t max_message_size;  /* bytes, start line to end of body (sip.max_message_size) */
    uint32_t max_headers;       /* header lines (sip.max_headers) */
    uint32_t max_header_length; /* bytes of one header line incl. folding (sip.max_header_length) */
};

#define SIP_LIMITS_DEFAULT ((struct sip_limits){ 65536, 128, 16384 })

/* The limits from the [sip] section of a loaded config. */
void sip_limits_from_config(struct sip_limits *l, const struct config *cfg);

/* ---- errors: every rejection is one of these, with a phrase usable in a 400 ---- */

enum sip_err {
    SIP_E_NONE = 0,
    SIP_E_TOO_LARGE,        /* 513: message above max_message_size */
    SIP_E_BODY_TOO_LARGE,   /* 413: Content-Length above what max_message_size allows */
    SIP_E_TOO_MANY_HEADERS, /* 513 */
    SIP_E_HEADER_TOO_LONG,  /* 513 */
    SIP_E_INCOMPLETE,       /* 400: no empty line ends the headers */
    SIP_E_START_LINE,       /* 400: start line malformed */
    SIP_E_METHOD,           /* 400: method not a token */
    SIP_E_REQUEST_URI,      /* 400: Request-URI malformed */
    SIP_E_URI_SCHEME,       /* 416: Request-URI scheme not sip/sips/tel */
    SIP_E_VERSION,          /* 505: not SIP/2.0 */
    SIP_E_STATUS,           /* 400: status code not 100..699 */
    SIP_E_HEADER_SYNTAX,    /* 400: header line without a colon or a bad name */
    SIP_E_HEADER_MISSING,   /* 400: a mandatory header is absent */
    SIP_E_HEADER_DUP,       /* 400: a single-instance header appears twice */
    SIP_E_VIA,              /* 400 */
    SIP_E_FROM,             /* 400 */
    SIP_E_TO,               /* 400 */
    SIP_E_CALL_ID,          /* 400 */
    SIP_E_CSEQ,             /* 400 */
    SIP_E_CSEQ_METHOD,      /* 400: CSeq method differs from the request method */
    SIP_E_MAX_FORWARDS,     /* 400 */
    SIP_E_CONTENT_LENGTH,   /* 400: not a number, negative or too large */
    SIP_E_BODY_SHORT,       /* 400: Content-Length above the bytes that follow */
    SIP_E_EXPIRES,          /* 400 */
    SIP_E_CONTACT,          /* 400 (on-demand accessor) */
    SIP_E_ROUTE,            /* 400 (on-demand accessor) */
    SIP_E_AUTH,             /* 400 (on-demand accessor) */
    SIP_E__COUNT
};

struct sip_err_desc {
    uint16_t status;    /* the answer to a request rejected for this reason */
    const char *name;   /* stable identifier, e.g. "cseq-method" */
    const char *phrase; /* generic phrase when no detail is known */
};

/* The table entry for e (never NULL; out-of-range codes give SIP_E_NONE's). */
const struct sip_err_desc *sip_err_desc(enum sip_err e);

/* What went wrong, filled by the parser where the fault was found. */
struct sip_error {
    enum sip_err code;
    uint16_t status; /* sip_err_desc(code)->status */
    char reason[120]; /* printable ASCII, no CR/LF: a ready Reason-Phrase */
};

/* ---- methods and header ids ---------------------------------------------------- */

enum sip_method {
    SIP_M_OTHER = 0, /* an extension method: see sip_msg.method_name */
    SIP_M_INVITE, SIP_M_ACK, SIP_M_BYE, SIP_M_CANCEL, SIP_M_REGISTER, SIP_M_OPTIONS,
    SIP_M_INFO, SIP_M_UPDATE, SIP_M_PRACK, SIP_M_SUBSCRIBE, SIP_M_NOTIFY, SIP_M_PUBLISH,
    SIP_M_MESSAGE, SIP_M_REFER,
    SIP_M__COUNT
};

/* The method for a token (case-sensitive, as RFC 3261 says); SIP_M_OTHER otherwise. */
enum sip_method sip_method_from_str(str s);
/* The canonical name ("INVITE"); empty for SIP_M_OTHER. */
str sip_method_name(enum sip_method m);

enum sip_hdr_id {
    SIP_H_OTHER = 0, /* not in the table: compare sip_hdr.name yourself */
#include "sip/hdr_ids.inc"
};

/* Canonical name of a header id ("Call-ID"); empty for SIP_H_OTHER. */
str sip_hdr_name(enum sip_hdr_id id);
/* Header id for a name (long or compact, case-insensitive). */
enum sip_hdr_id sip_hdr_lookup(str name);
/* True when the header's value is a comma-separated list (Via, Contact, Allow, ...). */
bool sip_hdr_is_list(enum sip_hdr_id id);

/* ---- URIs ---------------------------------------------------------------------- */

enum sip_uri_scheme { SIP_URI_OTHER = 0, SIP_URI_SIP, SIP_URI_SIPS, SIP_URI_TEL };
enum sip_host_type { SIP_HOST_NONE = 0, SIP_HOST_NAME, SIP_HOST_IPV4, SIP_HOST_IPV6 };

struct sip_uri {
    enum sip_uri_scheme scheme;
    enum sip_host_type host_type;
    str raw;      /* the whole URI */
    str scheme_s; /* as written */
    str user;     /* sip/sips: userinfo user (escapes kept); tel: the number */
    str password;
    str host;     /* IPv6 with its brackets */
    uint16_t port; /* 0 when absent (has_port false) */
    bool has_port;
    bool lr, ob, gr; /* parameters present */
    str params;  /* all parameters, without the first ';' */
    str headers; /* after '?', escapes kept */
    /* common parameters (value slices; empty when absent) */
    str transport, user_param, method, ttl, maddr, gr_value;
    str opaque; /* other schemes: everything after "scheme:" */
};

/*
 * Parses a URI from s (no surrounding whitespace or angle brackets). sip/sips/tel are
 * parsed fully; other schemes keep an opaque part. Returns 0, or -EINVAL when s is not
 * a URI. *out refers into s.
 */
int sip_uri_parse(str s, struct sip_uri *out);
/* RFC 3261 §19.1.4 equality (tel: by number and parameters; others byte-wise). */
bool sip_uri_eq(const struct sip_uri *a, const struct sip_uri *b);
/* A parameter of a URI (name case-insensitive): 0 and *val (empty for a flag), or -ENOENT. */
int sip_uri_param(const struct sip_uri *u, str name, str *val);

/* ---- deep parsers: Via, name-addr, digest ---------------------------------------- */

struct sip_via {
    str raw;       /* the via-parm */
    str protocol;  /* "SIP/2.0" as written (may hold LWS around the '/') */
    str proto_name, proto_version, transport; /* "SIP", "2.0", "UDP" */
    str host;      /* sent-by host, IPv6 with brackets */
    enum sip_host_type host_type;
    uint16_t port;
    bool has_port;
    bool rport;      /* rport present */
    bool has_rport_value;
    uint16_t rport_value;
    str branch, received, maddr, ttl;
    str params; /* every parameter, raw, without the first ';' */
};

/*
 * Parses the first via-parm of s. On success returns 0, fills *out and sets *rest to
 * what follows the separating comma (empty at the end). -EINVAL on a syntax error.
 */
int sip_via_parse(str s, struct sip_via *out, str *rest);

struct sip_addr {
    str raw;      /* this value */
    str display;  /* display name: inside the quotes when quoted (escapes kept), else token(s) */
    bool display_quoted;
    bool star;    /* Contact: * */
    str uri;      /* URI text (inside <> when bracketed) */
    str params;   /* header parameters after the URI, without the first ';' */
    str tag, expires, q, instance, reg_id; /* common parameters; empty when absent */
};

/*
 * Parses one name-addr / addr-spec value (From, To, Contact, Route, ...) from s. With
 * list true, stops at a top-level comma and sets *rest after it; otherwise the whole of
 * s must be one value. 0, or -EINVAL on a syntax error. Parameters must be tokens or
 * quoted strings.
 */
int sip_addr_parse(str s, struct sip_addr *out, str *rest, bool list);

/*
 * For "token *( ; param )" values (Event, Subscription-State, Content-Type, ...): *first
 * is the part before the first ';' (outside quotes), *params the rest without the ';'.
 * 0, or -EINVAL (empty first part, unterminated quote).
 */
int sip_value_split(str v, str *first, str *params);
/* Finds parameter name (case-insensitive) in "a=1;b;c=\"q\"": 0 and *val (unquoted, empty
 * for a flag), -ENOENT, or -EINVAL on a syntax error before it. */
int sip_param_find(str params, str name, str *val);

#define SIP_AUTH_MAX_PARAMS 24
struct sip_auth {
    str scheme; /* "Digest", or another scheme (then only params_raw is meaningful) */
    str params_raw;
    /* Digest parameters: value slices without quotes (escapes kept); empty when absent */
    str username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc;
    str stale, domain, userhash, auth_param_charset;
    bool quoted_escape; /* some quoted value holds a backslash: unquote before use */
    unsigned nparams;   /* all name=value pairs, in order (at most SIP_AUTH_MAX_PARAMS);
                           entries past nparams are undefined */
    str names[SIP_AUTH_MAX_PARAMS], values[SIP_AUTH_MAX_PARAMS];
};

/* Parses a credentials / challenge value. 0, -EINVAL on a syntax error, -E2BIG past the
 * parameter bound. */
int sip_auth_parse(str s, struct sip_auth *out);

/* Copies a quoted-string body without its backslash escapes into dst (cap bytes, NUL
 * added). Returns the length or -ENOSPC. */
ssize_t sip_unquote(str s, char *dst, size_t cap);

/* ---- the message ------------------------------------------------------------------ */

struct sip_hdr {
    str name;       /* as written (may be compact) */
    str value;      /* trimmed; folded lines keep their CRLF + whitespace inside */
    uint32_t off;   /* raw line: offset from the message start ... */
    uint32_t len;   /* ... and length including its CRLF (and folding) */
    uint16_t id;    /* enum sip_hdr_id */
    uint16_t next;  /* index of the next header with the same id, or SIP_HDR_END */
};
#define SIP_HDR_END 0xffff

struct sip_cseq {
    uint32_t num; /* 0..2^31-1 */
    enum sip_method method;
    str method_name;
};

struct sip_msg_cache; /* on-demand parse results, arena-owned */

struct sip_msg {
    const char *buf; /* the message: start line .. end of body */
    size_t len;
    bool is_request;
    /* request line */
    enum sip_method method;
    str method_name;
    str ruri_raw;
    struct sip_uri ruri;
    /* status line */
    uint16_t status;
    str reason;
    /* header index: caller's array (sip_msg_init) */
    struct sip_hdr *hdrs;
    uint16_t nhdrs, hdr_cap;
    uint16_t first[SIP_H__COUNT]; /* index of the first header of each id, or SIP_HDR_END */
    uint32_t headers_end; /* offset of the empty line that ends the headers */
    /* core headers, parsed and validated by sip_msg_parse */
    struct sip_via via;    /* the top Via value */
    uint16_t nvia;         /* Via values in the message */
    struct sip_addr from, to;
    str call_id;
    struct sip_cseq cseq;
    int32_t max_forwards;    /* -1 when absent */
    int64_t content_length;  /* -1 when absent */
    int64_t expires;         /* Expires header, -1 when absent */
    str content_type;        /* raw value, empty when absent */
    str event;               /* raw value of Event, empty when absent */
    str body;
    struct sip_error err;    /* set when sip_msg_parse fails */
    struct sip_msg_cache *cache;
    str via1_rest;           /* internal: the top Via header after its first value */
};

/* Prepares m to be parsed into, with hdrs[cap] as its header index (cap up to 65534).
 * Cheap (no memset): call once per struct, then sip_msg_parse as often as needed. */
void sip_msg_init(struct sip_msg *m, struct sip_hdr *hdrs, size_t cap);

enum {
    SIP_PARSE_DATAGRAM = 1, /* buf is one datagram: bytes past Content-Length are ignored;
                               a Content-Length above them is an error; no CL = rest */
    SIP_PARSE_STREAM = 2,   /* buf is exactly one framed message (sip_frame) */
};

/*
 * Parses buf[len] into m (see sip_msg_init). No allocation; m refers into buf, which
 * must outlive m. Returns the bytes the message occupies (> 0) on success; on failure
 * -EPROTO (malformed) or -EMSGSIZE (a limit passed) with m->err set. The header index
 * holds up to min(lim->max_headers, cap) headers. Requests must carry Via, From, To,
 * Call-ID and CSeq; responses too.
 */
ssize_t sip_msg_parse(struct sip_msg *m, const char *buf, size_t len,
                      const struct sip_limits *lim, unsigned flags);

/* The first header with id, or NULL (O(1)). Then sip_msg_hdr_next for the others. */
const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id);
const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m, const struct sip_hdr *h);
/* The first header whose name equals name (any header, case-insensitive; compact forms
 * resolve to their id), or NULL. */
const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m, str name);

/*
 * Iterates the comma-separated values of every header with id (meant for list headers), in
 * order across header lines; quotes and <> are respected. Start with *it = 0 cleared
 * struct; returns true with *val trimmed, false at the end.
 */
struct sip_value_iter {
    const struct sip_hdr *h;
    str rest;
    bool started;
};
bool sip_msg_values_next(const struct sip_msg *m, enum sip_hdr_id id, struct sip_value_iter *it,
                         str *val);

/*
 * On-demand lists, parsed once and cached in m (arena-owned; the arena must live as
 * long as m is used and is the same on every call). 0 and the results, -EPROTO with m->err
 * set on a syntax error, -ENOMEM. A message without the header gives *n = 0.
 */
int sip_msg_vias(struct sip_msg *m, struct arena *a, const struct sip_via **out, size_t *n);
int sip_msg_contacts(struct sip_msg *m, struct arena *a, const struct sip_addr **out, size_t *n);
int sip_msg_routes(struct sip_msg *m, struct arena *a, const struct sip_addr **out, size_t *n);
int sip_msg_record_routes(struct sip_msg *m, struct arena *a, const struct sip_addr **out,
                          size_t *n);
/* The first Authorization / Proxy-Authorization / WWW-/Proxy-Authenticate (id) parsed. */
int sip_msg_auth(struct sip_msg *m, struct arena *a, enum sip_hdr_id id,
                 const struct sip_auth **out);

/* ---- stream framing --------------------------------------------------------------- */

enum {
    SIP_FRAME_MSG = 1,  /* *n bytes form one message */
    SIP_FRAME_PING = 2, /* *n = 4: CRLFCRLF keep-alive: answer CRLF, skip */
    SIP_FRAME_PONG = 3, /* *n = 2: CRLF keep-alive answer: skip */
};
/*
 * Looks at the bytes of a stream connection's buffer. Returns SIP_FRAME_* with *n set,
 * -EAGAIN when more bytes are needed, -EMSGSIZE when the message would pass
 * lim->max_message_size, -EPROTO when the Content-Length is unusable (the framing is
 * lost: close the connection); err (may be NULL) says why. A missing Content-Length
 * counts as 0. Reads only buf[0..len).
 */
int sip_frame(const char *buf, size_t len, const struct sip_limits *lim, size_t *n,
              struct sip_error *err);

/* ---- writer ------------------------------------------------------------------------ */

struct sip_hdr_add {
    str name;  /* e.g. "Supported" */
    str value;
};

/*
 * Appends to out a response to request req: status line, every Via, From, To (with
 * ";tag=to_tag" added when the To has no tag, status > 100 and to_tag is not empty),
 * Call-ID, CSeq (the raw lines), then extra headers, Content-Type when body is not
 * empty, Content-Length, the empty line, body. reason empty = the standard phrase.
 * 0, -ENOBUFS / -ENOMEM from buf (out may hold a partial message then).
 */
int sip_msg_respond(const struct sip_msg *req, uint16_t status, str reason, str to_tag,
                    const struct sip_hdr_add *extra, size_t nextra, str content_type, str body,
                    struct buf *out);

/* The standard reason phrase for a status code ("Not Found"), or a class phrase. */
str sip_status_phrase(uint16_t status);

enum sip_edit_op { SIP_EDIT_ADD_TOP, SIP_EDIT_ADD, SIP_EDIT_REMOVE, SIP_EDIT_REPLACE };
struct sip_hdr_edit {
    enum sip_edit_op op; /* ADD_TOP: before the first header; ADD: after the last;
                            REMOVE: every header with id (or name when id is OTHER);
                            REPLACE: remove them all, add one with value at the first's place */
    enum sip_hdr_id id;
    str name;
    str value;
};

#define SIP_FWD_MAX_EDITS 64
struct sip_fwd {
    str ruri;           /* new Request-URI; empty keeps it */
    str via;            /* value of a Via to prepend; empty adds none */
    str record_route;   /* value of a Record-Route to add on top; empty adds none */
    bool pop_route;     /* remove the first Route value */
    bool dec_max_forwards; /* decrement Max-Forwards (add "70"-1 when absent) */
    const struct sip_hdr_edit *edits;
    size_t nedits; /* at most SIP_FWD_MAX_EDITS */
};

/*
 * Appends to out the request req with the edits of f applied. Untouched header lines
 * are copied byte for byte; Content-Length and the body are kept. The edits are applied
 * to req's original headers (never to each other). 0, -EINVAL (not a request, or
 * Max-Forwards already 0 with dec_max_forwards), -ENOBUFS/-ENOMEM from buf.
 */
int sip_msg_forward(const struct sip_msg *req, const struct sip_fwd *f, struct buf *out);

struct sip_req_parts {
    enum sip_method method;
    str method_name; /* used when method is SIP_M_OTHER */
    str ruri;
    str via;         /* value */
    str from, to;    /* values (with tags) */
    str call_id;
    uint32_t cseq;
    int32_t max_forwards; /* < 0: 70 */
    str contact;     /* empty: none */
    const struct sip_hdr_add *extra;
    size_t nextra;
    str content_type;
    str body;
};
/* Appends a new request built from parts. 0, -EINVAL (missing part), -ENOBUFS/-ENOMEM. */
int sip_msg_build_request(const struct sip_req_parts *p, struct buf *out);

#endif

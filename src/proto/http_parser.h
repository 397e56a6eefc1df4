/* http_parser.h - strict, incremental, zero-copy HTTP/1.1 message parser (RFC 9112).
 *
 * The parser never copies or allocates: a parsed message is a list of slices into
 * the caller's bytes. It is stateless between calls (picohttpparser style): when
 * more bytes arrive the caller calls again with the whole buffer. */
#ifndef HOPCACHE_HTTP_PARSER_H
#define HOPCACHE_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "slice.h"

struct http_field {
	struct slice name;
	struct slice value; /* OWS trimmed on both sides */
};

struct http_limits {
	size_t max_request_line; /* bytes, without CRLF; exceeded -> 414 */
	size_t max_header_bytes; /* whole head incl. start line; exceeded -> 431 (responses: error) */
	size_t max_headers;      /* field count; exceeded -> 431 */
};

struct http_request {
	struct slice method;
	struct slice target;
	int minor; /* HTTP/1.<minor>: 0 or 1 (other 1.x accepted as 1) */
	struct http_field *fields; /* caller-provided array ... */
	size_t fields_cap;         /* ... of this capacity (>= limits->max_headers) */
	size_t nfields;            /* out */
};

struct http_response {
	int minor;
	int status;  /* 100..599 */
	struct slice reason;
	struct http_field *fields;
	size_t fields_cap;
	size_t nfields;
};

/* Return values of the head parsers. */
#define HTTP_NEED_MORE 0
#define HTTP_ERROR (-1)

/* Parse a request head (request-line + fields + CRLF).
 * Returns the number of bytes the head occupies (> 0) when complete,
 * HTTP_NEED_MORE when the bytes so far are a valid prefix, or HTTP_ERROR with
 * *status set to the status to answer: 400 (syntax, bare CR, NUL/CTL, obs-fold,
 * space before colon, bad token, HTTP/0.9 request), 414 (request line too long),
 * 431 (head too large / too many fields), 505 (major version not 1).
 * Leading empty lines (CRLF) before the request-line are skipped (RFC 9112 §2.2). */
ssize_t http_parse_request(const char *buf, size_t len, struct http_request *req,
			   const struct http_limits *lim, int *status);

/* Parse a response head. Same return convention; any error means 502 to the
 * client. 1xx heads are returned like any other; the caller loops. */
ssize_t http_parse_response(const char *buf, size_t len, struct http_response *res,
			    const struct http_limits *lim);

/* How a message body is delimited (RFC 9112 §6.3). */
enum http_body_kind {
	HTTP_BODY_NONE,    /* no body */
	HTTP_BODY_LENGTH,  /* exactly `length` bytes */
	HTTP_BODY_CHUNKED, /* chunked transfer coding */
	HTTP_BODY_CLOSE,   /* until the connection closes (responses only) */
};

struct http_framing {
	enum http_body_kind kind;
	uint64_t length;
};

/* Framing of a request from its fields. Returns 0, or 400 when the framing is
 * ambiguous or invalid: Content-Length with Transfer-Encoding, differing or
 * malformed Content-Length values (a list of identical values is accepted,
 * RFC 9112 §6.3), any Transfer-Encoding other than exactly "chunked"
 * (RFC 9112 §6.3: a request with an unknown/non-final-chunked coding -> 400),
 * or 501 for a Transfer-Encoding this proxy does not understand. */
int http_request_framing(const struct http_request *req, struct http_framing *out);

/* Framing of a response to a request with method `head_request` (HEAD) or a
 * CONNECT (`connect_request`). Returns 0 or -1 (invalid: the client gets 502).
 * HEAD responses, 1xx, 204 and 304 have no body; 2xx to CONNECT has none.
 * Transfer-Encoding whose final coding is chunked -> CHUNKED (only "chunked"
 * alone is accepted as we do not decode other codings; other codings with
 * chunked last are refused as -1); TE without final chunked -> CLOSE;
 * CL+TE -> -1 (we refuse rather than guess); invalid CL -> -1. */
int http_response_framing(const struct http_response *res, int head_request,
			  int connect_request, struct http_framing *out);

/* Incremental chunked-body decoder (RFC 9112 §7.1). Chunk extensions are
 * parsed and ignored; trailer fields are parsed, validated and discarded. */

/* The longest chunk-size line (size and extensions, CRLF not counted) and
 * trailer line the proxy accepts; a longer one refuses the body. */
#define HTTP_CHUNK_LINE_MAX 4096

/* Why http_chunked_step refused a body (struct http_chunked.error). */
enum {
	HTTP_CHUNKED_OK = 0,
	HTTP_CHUNKED_E_SYNTAX,       /* malformed: bad hex, missing CRLF, bare CR/LF, ... */
	HTTP_CHUNKED_E_SIZE,         /* a chunk size past 2^63 - 1 */
	HTTP_CHUNKED_E_LINE,         /* a chunk-size line longer than max_line */
	HTTP_CHUNKED_E_TRAILER_LINE, /* a trailer line longer than max_line */
	HTTP_CHUNKED_E_TRAILERS,     /* the trailer section larger than max_trailer */
};

struct http_chunked {
	int state;            /* private */
	uint64_t remaining;   /* private: bytes left in the current chunk */
	size_t line_bytes;    /* private: bytes of the current size/trailer line */
	size_t trailer_bytes; /* private: total trailer bytes so far */
	size_t max_line;      /* limit for a size line or a trailer line (set by init) */
	size_t max_trailer;   /* limit for all trailer bytes together (set by init) */
	int error;            /* HTTP_CHUNKED_OK, or why the body was refused */
};

void http_chunked_init(struct http_chunked *c, size_t max_line, size_t max_trailer);

/* Feed bytes buf[0..len). Consumes control bytes (sizes, CRLFs, extensions,
 * trailers) up to and including the first run of data bytes, which is returned
 * in *data (data->len == 0 when this step produced no data).
 * Returns the bytes consumed (>= 0; 0 only when len == 0 or more input is
 * needed before anything can be consumed), or -1 on a malformed body
 * (bad hex, size overflow past 2^63, missing CRLF, bare CR/LF, line too long,
 * invalid trailer field); c->error then says which (and every later call
 * returns -1 too).
 * Call repeatedly on the remaining bytes; http_chunked_done() tells when the
 * last chunk and trailers (and the final CRLF) have been consumed — after that
 * the decoder consumes nothing more. */
ssize_t http_chunked_step(struct http_chunked *c, const char *buf, size_t len,
			  struct slice *data);
int http_chunked_done(const struct http_chunked *c);

/* After a refusal: why, as a short text that names the limit when one was
 * exceeded ("chunk-size line (size and extensions) longer than 4096 bytes"). */
void http_chunked_why(const struct http_chunked *c, char *out, size_t len);

/* The trailer fields of a chunked body, from the control bytes that came
 * after its last data (CRLF, the last-chunk line "0" with its extensions,
 * the trailer field lines, the final CRLF), as http_chunked_step consumed
 * and validated them. Fills f[0..max) with names and values (without OWS)
 * pointing into t, and returns how many there are (more than max: call
 * again with room for them all). */
size_t http_chunked_trailers(const char *t, size_t len, struct http_field *f, size_t max);

/* Find the first field with this name (case-insensitive); NULL if none. */
const struct http_field *http_field_find(const struct http_field *f, size_t n,
					  const char *name);

/* A valid token (RFC 9110 §5.6.2: 1*tchar). */
int http_is_token(struct slice s);

/* A tchar (RFC 9110 §5.6.2)? The one definition every module uses. */
bool http_is_tchar(unsigned char c);

/* Request target (RFC 9112 §3.2) of a request to a proxy. */
enum http_target_form {
	HTTP_TARGET_ORIGIN,    /* "/path?q"              */
	HTTP_TARGET_ABSOLUTE,  /* "http://host[:port]/path?q" (scheme http or https) */
	HTTP_TARGET_AUTHORITY, /* "host:port" (CONNECT only) */
	HTTP_TARGET_ASTERISK,  /* "*" (OPTIONS only) */
};

/* Longest host name in a request target, one trailing dot not counted: a
 * DNS name has at most 253 characters (RFC 1035 §2.3.4). A longer one is
 * refused (400), so it fits every buffer a host is copied into. */
#define HTTP_MAX_HOST 253

struct http_target {
	enum http_target_form form;
	struct slice scheme;   /* lower-cased comparison: "http" or "https" */
	struct slice host;     /* without [] for IPv6 literals */
	uint16_t port;         /* explicit or the scheme's default (80/443) */
	int port_explicit;
	struct slice path;     /* origin-form to send upstream: "/" when the URI has none;
				  includes the query. Starts with '?' for "http://h?q":
				  the sender then writes "/" before it.
				  For ORIGIN form: the whole target. */
	int ipv6_literal;
	const char *error;     /* on 400, when there is more to say than "invalid":
				  a short reason naming the limit (static), else NULL */
};

/* Parse a request target for a request with this method. Returns 0 or 400.
 * Absolute-form: scheme http/https (case-insensitive) only, no userinfo
 * (RFC 9110 §4.2.4: reject), no fragment, host must be a valid reg-name /
 * IPv4 / [IPv6] (a reg-name at most HTTP_MAX_HOST characters, one trailing
 * dot more; longer: 400 with out->error saying so), port 1..65535 (empty
 * port -> default). Authority-form only for
 * CONNECT and mandatory there (host:port, port required). "*" only for OPTIONS.
 * An absolute-form "path" that is empty becomes "/" (for OPTIONS with an empty
 * path it becomes "*", RFC 9112 §3.2.4). */
int http_parse_target(struct slice method, struct slice target, struct http_target *out);

#endif

/* h2_translate.h - HTTP/2 messages on the proxy's TLS port translated to and
 * from the HTTP/1.1 heads of the proxy's own pipeline (RFC 9113 §8).
 *
 * Pure: no I/O, no nghttp2; the only allocations are the heap outputs
 * documented below (one malloc each). net/h2.c owns the HTTP/2 session and
 * calls these for every stream: a request's header list becomes an HTTP/1.1
 * request head fed to the pipeline's internal connection, the pipeline's
 * response head becomes the HTTP/2 header list sent back. */
#ifndef HOPCACHE_H2_TRANSLATE_H
#define HOPCACHE_H2_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

/* One field of an HTTP/2 header list as HPACK decoded it. */
struct h2_header {
	const uint8_t *name;
	size_t namelen;
	const uint8_t *value;
	size_t valuelen;
};

struct h2_request {
	char *head;             /* the HTTP/1.1 request head (heap, ends with CRLF CRLF) */
	size_t head_len;
	bool connect;           /* :method CONNECT without :protocol (RFC 9113 §8.5) */
	bool chunked;           /* the body follows as chunked (caller writes chunks, then "0\r\n" + trailers + "\r\n") */
	int64_t content_length; /* -1 when the request had no content-length */
};

/* Translate a request stream's header list (h[0..n), in the order received)
 * into an HTTP/1.1 request head for the proxy's own pipeline. end_stream: the
 * HEADERS frame ended the stream (no body follows). max_head: the largest head
 * to produce (the [limits] header size); larger -> error "header list too large".
 * Returns 0 with out filled (free out->head with free()), or -1 with a static
 * reason in *why; the stream is then malformed: RST_STREAM PROTOCOL_ERROR, nothing forwarded.
 *
 * The head is: "METHOD scheme://authority path HTTP/1.1" (CONNECT:
 * "CONNECT authority HTTP/1.1"; OPTIONS with :path "*": "OPTIONS
 * scheme://authority HTTP/1.1", RFC 9112 §3.2.4), "Host: authority", the
 * regular fields in order (lower-case names; host and te dropped; cookie
 * crumbs joined into one Cookie field at the first crumb's place, RFC 9113
 * §8.2.3), then "Content-Length: N" when given, else "Transfer-Encoding:
 * chunked" when !end_stream and not CONNECT, then "Connection: close".
 * Not checked here (the session's job): that the DATA frames add up to
 * content_length (RFC 9113 §8.1.1). */
int h2_request_translate(const struct h2_header *h, size_t n, bool end_stream, size_t max_head,
			 struct h2_request *out, const char **why);

/* Translate trailer fields of a request (a HEADERS frame after DATA) into
 * chunked trailer lines "name: value\r\n"... (heap, *len). Pseudo-headers and
 * connection-specific fields make it malformed (-1, *why).
 * "te: trailers", content-length and host are dropped (framing and routing
 * fields are not trailers, RFC 9110 §6.5.1). *out is never NULL on success
 * (an empty list gives *len == 0); free it with free(). Larger than max:
 * -1, "trailers too large". */
int h2_request_trailers(const struct h2_header *h, size_t n, size_t max, char **out, size_t *len,
			const char **why);

/* The HTTP/2 header list of an HTTP/1.1 response (res, parsed by http_parser
 * from the proxy's own pipeline): ":status" first, then every field that
 * hop_classify(HOP_RESPONSE) keeps, names lower-cased, plus the proxy's own
 * Proxy-Authenticate fields (hop_classify drops Proxy-Authenticate because it
 * must not be forwarded from an origin, but here the pipeline that produced it
 * is this proxy, which already removed any origin's: so keep them), plus
 * content-length when the response had a valid one (and the status allows a
 * body). Never any connection-specific field (RFC 9113 §8.2.2): connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, te, nor any field a Connection
 * field listed. Heap: *out is an array of n fields whose bytes live in one
 * allocation with it (free(*out) frees all). -1 on a response hop_classify refuses
 * (HOP_ERR_*: the caller answers 502) or out of memory.
 *
 * The fields keep their order; content-length (its value as digits, without
 * leading zeros) comes last. It is written when http_response_framing(res,
 * 0, 0) says HTTP_BODY_LENGTH: no Transfer-Encoding, valid Content-Length,
 * status not 1xx, 204 or 304. Names and values are not NUL-terminated. */
int h2_response_fields(const struct http_response *res, struct h2_header **out, size_t *n);

/* Same for trailer fields of a chunked HTTP/1.1 response (the fields after the
 * last chunk): connection-specific and framing fields dropped. */
int h2_trailer_fields(const struct http_field *f, size_t nf, struct h2_header **out, size_t *n);

#endif

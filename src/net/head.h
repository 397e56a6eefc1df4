/* head.h - writing HTTP/1.1 message heads: the one writer behind every head
 * the proxy sends or stores (forwarded responses, interim and 101 responses,
 * upstream requests, cache hits and stored heads, the proxy's own answers,
 * errors). Each call appends to an evbuffer; no connection state. */
#ifndef HOPCACHE_HEAD_H
#define HOPCACHE_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"
#include "slice.h"

struct evbuffer;

/* "HTTP/1.1 STATUS REASON\r\n" (a proxy sends its own version, RFC 9110
 * §6.2; the reason may be empty). */
void head_status(struct evbuffer *out, int status, struct slice reason);

/* head_status with a NUL-terminated reason. */
void head_status_str(struct evbuffer *out, int status, const char *reason);

/* "NAME: VALUE\r\n". */
void head_field(struct evbuffer *out, struct slice name, struct slice value);

/* "NAME: VALUE\r\n" from NUL-terminated strings. */
void head_field_str(struct evbuffer *out, const char *name, const char *value);

/* Every field i of f[0..n) with keep[i] set (keep NULL: every field), except
 * the one at index skip (-1: none). */
void head_fields(struct evbuffer *out, const struct http_field *f, size_t n, const bool *keep,
		 int skip);

/* RFC 9110 §6.6.1: a recipient with a clock MUST add Date to a response it
 * forwards or caches without one. Adds "Date: <now>" when f has none. */
void head_date_if_missing(struct evbuffer *out, const struct http_field *f, size_t n);

/* The proxy's Via entry: "Via: 1.MINOR PSEUDONYM\r\n", or "Via: 2 PSEUDONYM\r\n"
 * for a message received in HTTP/2 (minor HEAD_VIA_H2); RFC 9110 §7.6.3. */
#define HEAD_VIA_H2 (-1)
void head_via(struct evbuffer *out, int minor, const char *via);

/* Content-Length, or Transfer-Encoding: chunked, as a body's framing for the
 * next hop says (nothing for HTTP_BODY_NONE / HTTP_BODY_CLOSE). */
void head_framing(struct evbuffer *out, enum http_body_kind kind, uint64_t length);

/* "Connection: close\r\n" when close, then the empty line ending the head. */
void head_end(struct evbuffer *out, bool close);

#endif

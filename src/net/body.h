/* body.h - relaying one message body from one hop to the next, re-framed.
 *
 * The received body is delimited as the framing said (RFC 9112 §6.3: none,
 * a length, chunked, or until the connection closes); the next hop gets the
 * same bytes, as is or in chunked coding. A copy may be kept for the cache
 * (the tee). Pure buffer work: no sockets, no connection state. */
#ifndef HOPCACHE_BODY_H
#define HOPCACHE_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

struct evbuffer;

/* One direction of a message body being relayed. */
struct body {
	enum http_body_kind in; /* how the received body is delimited */
	uint64_t left;          /* LENGTH: bytes still to come */
	uint64_t total;         /* body bytes relayed so far */
	struct http_chunked chunked;
	bool out_chunked;       /* wrap the data in chunked coding for the next hop */
	bool done;
	struct evbuffer *tee;   /* a copy of the data for the cache, or NULL */
	size_t tee_max;
	bool keep_trailers;     /* chunked to chunked: pass the trailer section on
				   (set after body_init; else it is this hop's and dropped) */
	struct evbuffer *ctl;   /* keep_trailers: the control bytes since the last data */
};

/* Results of body_relay. */
enum {
	BODY_MORE = 0,       /* more bytes are needed */
	BODY_DONE = 1,       /* the body is complete (its last chunk written) */
	BODY_MALFORMED = -1, /* the chunked coding is invalid (b->chunked says why) */
	BODY_TOO_LARGE = -2, /* more than the limit was received */
};

/* Start a body delimited as f says; chunked for the next hop when
 * out_chunked (and there is a body). max_trailer bounds the trailer section.
 * Frees a tee left from an earlier body. */
void body_init(struct body *b, const struct http_framing *f, bool out_chunked,
	       size_t max_trailer);

/* Move what src holds of the body to dst, framed for the next hop. `limit`
 * caps the body size (0 = none). Returns a BODY_* value; a close-delimited
 * body is never DONE here (its end is the connection's: body_close). */
int body_relay(struct body *b, struct evbuffer *src, struct evbuffer *dst, uint64_t limit);

/* The connection closed: a close-delimited body is complete. Writes the last
 * chunk when the next hop gets chunked coding; returns the bytes written. */
size_t body_close(struct body *b, struct evbuffer *dst);

/* Free the tee, if any. */
void body_free(struct body *b);

#endif

/* cache_key.h - the one function that names a stored response.
 *
 * A stored response belongs to exactly one identity (RFC 9111 §2, §4.1):
 *   primary: the method class and the whole normalised absolute URI;
 *   variant: the same, then the Vary marker's generation, then for each
 *            field the response's Vary lists, its lower-cased name and the
 *            request's complete combined value (or "absent").
 * The identity is encoded as a sequence of parts, each preceded by its
 * length as 8 bytes big-endian, so no two different identities encode alike
 * ("X-A: ab, X-B: c" is not "X-A: a, X-B: bc"). The store key is SHA-256 of
 * that encoding, and the record keeps the encoding itself: a hit compares it
 * byte for byte, so a hash collision can cost a fetch, never hand one
 * request's response to another. Nothing on the way has a fixed size.
 *
 * Pure: no I/O, no globals (OpenSSL's EVP for the hash). */
#ifndef HOPCACHE_CACHE_KEY_H
#define HOPCACHE_CACHE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"
#include "slice.h"

/* A key: SHA-256 of an identity. */
#define CACHE_KEY_LEN 32

/* An encoded identity (heap memory; zero-initialise, then reuse freely). */
struct cache_ident {
	uint8_t *p;
	size_t len, cap;
};

/* What a key is computed from. A primary key leaves generation and the
 * Vary names empty; a variant key gives the marker's generation and the
 * names (as the response's Vary lists them, in order) and the request's
 * fields they are looked up in. */
struct cache_key_input {
	struct slice method_class;      /* "GET" (HEAD is answered from GET's entries) */
	struct slice uri;               /* the whole normalised absolute URI */
	struct slice generation;        /* variant: the marker's generation */
	const struct slice *vary_names; /* variant: the Vary'd field names */
	size_t nvary;
	const struct http_field *req;   /* variant: the request's fields */
	size_t nreq;
};

/* The one key function: encode the identity into id (replacing what it
 * held) and hash it into key. A variant is any input with nvary > 0.
 * Values are combined as RFC 9111 §4.1 allows: every field line of a name
 * joined by ",", whitespace around the commas removed; case and everything
 * else are kept as sent. Returns 0, or -1 when out of memory or when
 * OpenSSL failed (logged by the caller; key is then all zero). */
int cache_key_make(const struct cache_key_input *in, struct cache_ident *id,
		   uint8_t key[CACHE_KEY_LEN]);

/* SHA-256 of an encoding: 0, or -1 (key all zero). */
int cache_key_hash(const uint8_t *p, size_t len, uint8_t key[CACHE_KEY_LEN]);

/* The normalised absolute URI of a target (lower-case scheme and host,
 * the port only when it is not the scheme's default, then the path and
 * query exactly as sent; "/" before a bare "?query"), in a new NUL-terminated
 * string of *len bytes. NULL when out of memory. */
char *cache_uri_normal(const struct http_target *t, size_t *len);

/* The primary key of a target: what a GET of its URI is stored under (the
 * key PURGE and invalidation delete). 0, or -1 when out of memory. */
int cache_key_primary(const struct http_target *t, uint8_t key[CACHE_KEY_LEN]);

/* cache_key_primary of an absolute http(s) URL given as text (--purge):
 * 0, or -1 when it is not one (or out of memory). */
int cache_key_of_url(const char *url, uint8_t key[CACHE_KEY_LEN]);

/* dst = a copy of src: 0, or -1 when out of memory. */
int cache_ident_copy(struct cache_ident *dst, const struct cache_ident *src);

/* Does a stored identity equal the expected one, byte for byte? */
bool cache_ident_equal(const struct cache_ident *id, const uint8_t *stored, size_t len);

void cache_ident_free(struct cache_ident *id);

#endif

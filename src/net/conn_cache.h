/* conn_cache.h - the cache stage of a client connection (conn_cache.c). */
#ifndef HOPCACHE_CONN_CACHE_H
#define HOPCACHE_CONN_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "http_parser.h"

struct conn;
struct cache;

/* A GET/HEAD request head: look it up. Returns true when the request was
 * answered here (a usable hit, or 504 for only-if-cached); false to go
 * upstream (with validators when c->cache_validating). */
bool conn_cache_request(struct conn *c);

/* A final response head from upstream (c->res, keep[] from the header
 * stage, fr its framing). Returns 1 when the client was answered here (a
 * merged 304, or stale-if-error); -1 when the client must get an error
 * (our validators got a 304 but the stored response is gone: the 304 is
 * not the client's to have); 0 to relay the response, with a
 * Cache-Status value in cache_status ("" for none) and, when it will be
 * stored, the body tee set up. Also invalidates after unsafe methods. */
int conn_cache_response(struct conn *c, const bool *keep, const struct http_framing *fr,
			char *cache_status, size_t cslen);

/* The response is over: store it when it is complete and was chosen. */
void conn_cache_finish(struct conn *c, bool complete);

/* Upstream failed before a response, with the error status the client
 * would get (502, 504): serve the stale entry when stale-if-error allows
 * (Cache-Status fwd-status says that status). Returns true when the client
 * was answered. */
bool conn_cache_upstream_failed(struct conn *c, int status);

/* PURGE absolute-URI from an allowed client. */
void conn_cache_purge(struct conn *c);

/* A request that waited for another's fetch (CONN_WAIT_FETCH) stops
 * waiting: it leaves that fetch's queue, so the fetch's end no longer
 * wakes it (its timer may serve another state by then). */
void conn_cache_wait_end(struct conn *c);

/* A new request on the connection: nothing of the last one's cache state
 * carries over (a CONNECT after a GET must not find its stale entry). */
void conn_cache_reset(struct conn *c);

/* Free the cache stage's memory of a connection (conn_free). */
void conn_cache_free(struct conn *c);

#endif

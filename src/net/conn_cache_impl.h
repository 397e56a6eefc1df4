/* conn_cache_impl.h - what the parts of the cache stage share: conn_cache.c
 * (lookup, validation, store), conn_cache_fetch.c (collapsed forwarding,
 * background revalidation) and conn_cache_serve.c (writing a stored
 * response). Private to them. */
#ifndef HOPCACHE_CONN_CACHE_IMPL_H
#define HOPCACHE_CONN_CACHE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

struct conn;
struct cache_object;
struct cache_read;

/* conn_cache_fetch.c */
/* Wait for the fetch in flight for the request's key, if there is one (and
 * the request may: not waited before, no body): true when it now waits
 * (CONN_WAIT_FETCH). */
bool fetch_wait(struct conn *c);
/* Lead the fetch for the request's key (others missing it will wait). */
void fetch_lead(struct conn *c);
/* Leave the fetch: a leader wakes every waiter and ends it; a waiter just
 * leaves the queue. */
void fetch_leave(struct conn *c);
/* Revalidate the request's stored response in the background, unless a
 * fetch for its key is in flight. */
void fetch_in_background(struct conn *c);

/* conn_cache_serve.c */
/* Write the stored response (or a 304/206/416 made from it) to the client,
 * with extra (complete field lines, or NULL) after the stored fields. The
 * body goes from the map to the socket without a copy in between when it
 * can: then the read handle rd is kept until it is written, and this
 * returns true (the caller must not release rd). */
bool conn_cache_serve(struct conn *c, const struct cache_object *obj, int64_t age,
		      const char *cache_status, const char *extra, struct cache_read *rd);

#endif

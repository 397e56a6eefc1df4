/* cache.h - the response store over LMDB. cache.c is the only file that
 * includes <lmdb.h>.
 *
 * One environment under [cache] dir, shared by every worker (each opens it
 * after fork, MDB_NOTLS). Values are versioned records; an unknown version is
 * treated as absent (and deleted by the next writer), never misread. Writes
 * are single short transactions that never wait on the network. */
#ifndef HOPCACHE_CACHE_H
#define HOPCACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache_key.h" /* CACHE_KEY_LEN */

struct cache;
struct cache_read;

/* A stored record as read: pointers into the LMDB map, valid until
 * cache_release() of the read handle. */
struct cache_object {
	uint32_t flags;        /* CACHE_VARY: a Vary marker (head = the Vary field
				  names, comma separated), no body */
	int64_t request_time;  /* seconds since the epoch (RFC 9111 §4.2.3) */
	int64_t response_time;
	int64_t stamp;         /* last use (eviction), seconds; set by the store */
	const char *head;      /* the stored head: status line + fields + CRLF CRLF,
				  after the header stage (no hop-by-hop or framing
				  field), parseable with http_parse_response() */
	size_t head_len;
	const char *body;
	size_t body_len;
	const uint8_t *ident;  /* the identity it was stored for (cache_key.h):
				  a hit compares it byte for byte */
	size_t ident_len;
};

#define CACHE_VARY 0x1u

struct cache_stats {
	uint64_t entries;      /* records (objects + Vary markers) */
	uint64_t bytes;        /* bytes of stored values */
	uint64_t map_size;     /* configured map size */
	uint64_t hits, misses; /* counted by workers (cache_count) */
};

/* Master, before forking: create dir (mode 0750) if missing, create or open
 * the environment with this map size, check it, close it. Returns 0, or -1
 * with a clear message in err (naming the directory and LMDB's reason). */
int cache_prepare(const char *dir, size_t map_size, char *err, size_t errlen);

/* Open the environment in this process (a worker, or the CLI). max_object is
 * the largest body stored. Returns NULL with a message in err. */
struct cache *cache_open(const char *dir, size_t map_size, size_t max_object, char *err,
			 size_t errlen);
void cache_close(struct cache *c);

/* Look a key up. Returns 1 found (obj filled, *rd holds the read
 * transaction: call cache_release), 0 absent, -1 on error (logged). */
int cache_get(struct cache *c, const uint8_t key[CACHE_KEY_LEN], struct cache_object *obj,
	      struct cache_read **rd);
void cache_release(struct cache_read *rd);

/* Store (insert or replace) a record, in one write transaction. Evicts the
 * least recently used records first when the store is above its high-water
 * mark (85% of the map) until it is at its low-water mark (70%, counting the
 * new record); usage is measured in LMDB pages (map minus reusable free
 * pages and unused tail), not value bytes. If LMDB still reports a full map, a separate transaction evicts down
 * to 50% and the put is retried once. A full map, a body over max_object or a
 * record larger than half the map returns 0 without storing (never an error
 * for the request). obj->stamp is ignored. Returns 1 stored, 0 not stored,
 * -1 on error (logged). */
int cache_put(struct cache *c, const uint8_t key[CACHE_KEY_LEN], const struct cache_object *obj);

/* Delete a record. Returns 1 deleted, 0 absent, -1 error. */
int cache_delete(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);

/* Mark a record as just used (for LRU); cheap when it was marked recently
 * (at most one write per record per minute). */
void cache_touch(struct cache *c, const uint8_t key[CACHE_KEY_LEN]);

/* Add to the shared hit/miss counters (batched: written at most once a
 * second per process, and by cache_close). */
void cache_count(struct cache *c, uint64_t hits, uint64_t misses);

/* Read the statistics: entries from LMDB, bytes/hits/misses from the shared
 * "meta" DB plus this process's counts not yet written. Returns 0 or -1. */
int cache_stats(struct cache *c, struct cache_stats *st);

/* Tests only: shift this handle's clock by seconds (stamps, touch ageing). */
void cache_set_clock_skew(struct cache *c, int64_t seconds);

#endif

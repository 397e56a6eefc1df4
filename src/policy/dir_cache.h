/* dir_cache.h - a worker's cache of directory group memberships: for each
 * user name, which of the directory groups the rules name it is a member of
 * (a bit per group), or that the directory does not know the user.
 *
 * Bounded: a fixed table of entries (4-way set-associative; a full set
 * evicts its expired, else its soonest-expiring entry), allocated once.
 * Pure: times are seconds on a clock the caller reads; the hash key is the
 * caller's (random per cache). Used by the event loop thread only. */
#ifndef HOPCACHE_DIR_CACHE_H
#define HOPCACHE_DIR_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most this many distinct directory groups in the rules (config refuses
 * more), one bit each. */
#define DIR_GROUPS_MAX 256
#define DIR_GROUP_WORDS (DIR_GROUPS_MAX / 64)

/* Longest user name an entry holds (the longest authenticated name,
 * AUTH_USER_MAX - 1); a longer one is never cached. */
#define DIR_CACHE_USER_MAX 255

/* The groups a user is in: bit i for the i-th directory group. */
struct dir_member {
	uint64_t bits[DIR_GROUP_WORDS];
};

static inline bool dir_member_has(const struct dir_member *m, size_t i)
{
	return i < DIR_GROUPS_MAX && (m->bits[i / 64] >> (i % 64) & 1) != 0;
}

static inline void dir_member_set(struct dir_member *m, size_t i)
{
	if (i < DIR_GROUPS_MAX)
		m->bits[i / 64] |= UINT64_C(1) << (i % 64);
}

struct dir_cache;

/* A cache of at most max_entries entries (rounded up to a multiple of 4);
 * key seeds the hash. NULL when out of memory or max_entries is 0. */
struct dir_cache *dir_cache_new(size_t max_entries, uint64_t key);

void dir_cache_free(struct dir_cache *c);

enum dir_cache_result {
	DIR_CACHE_MISS,      /* nothing, or expired */
	DIR_CACHE_FOUND,     /* *m is the user's groups */
	DIR_CACHE_NOT_FOUND, /* the directory does not know the user (negative entry) */
};

/* Look user up at time now. With DIR_CACHE_FOUND, *canon (when canon is
 * not NULL) is the name as the directory spells it, or NULL when that is
 * user itself; valid until the next dir_cache_put or dir_cache_free. */
enum dir_cache_result dir_cache_get(struct dir_cache *c, const char *user, int64_t now,
				    struct dir_member *m, const char **canon);

/* Remember what the directory said about user until now + ttl (ttl <= 0:
 * not cached; m and canon are ignored when !found; canon NULL or equal to
 * user: the same name). Out of memory for canon: nothing is cached. */
void dir_cache_put(struct dir_cache *c, const char *user, bool found, const struct dir_member *m,
		   const char *canon, int64_t now, int64_t ttl);

/* Entries in use and not expired at now (for tests and status). */
size_t dir_cache_count(const struct dir_cache *c, int64_t now);

#endif

/* dir_cache.c - a bounded TTL cache of directory group memberships
 * (dir_cache.h). */
#include "dir_cache.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 4

struct dir_entry {
	int64_t expires;  /* 0: free */
	bool found;
	uint8_t len;      /* of user */
	char user[DIR_CACHE_USER_MAX];
	char *canon;      /* the directory's spelling, when not user's (heap) */
	struct dir_member m;
};

/* Empty an entry. */
static void entry_clear(struct dir_entry *e)
{
	free(e->canon);
	memset(e, 0, sizeof(*e));
}

struct dir_cache {
	uint64_t key;
	size_t nsets;
	struct dir_entry *e; /* nsets * WAYS */
};

struct dir_cache *dir_cache_new(size_t max_entries, uint64_t key)
{
	if (max_entries == 0)
		return NULL;
	struct dir_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->key = key;
	c->nsets = max_entries / WAYS + (max_entries % WAYS != 0);
	c->e = calloc(c->nsets * WAYS, sizeof(*c->e));
	if (c->e == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void dir_cache_free(struct dir_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nsets * WAYS; i++)
		free(c->e[i].canon);
	free(c->e);
	free(c);
}

/* FNV-1a over the name, seeded with the key, then mixed (splitmix64). */
static struct dir_entry *set_of(const struct dir_cache *c, const char *user, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ c->key;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)user[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return &c->e[(h % c->nsets) * WAYS];
}

static struct dir_entry *find(const struct dir_cache *c, const char *user, size_t len,
			      struct dir_entry **set)
{
	*set = set_of(c, user, len);
	for (int w = 0; w < WAYS; w++) {
		struct dir_entry *e = &(*set)[w];
		if (e->expires != 0 && e->len == len && memcmp(e->user, user, len) == 0)
			return e;
	}
	return NULL;
}

enum dir_cache_result dir_cache_get(struct dir_cache *c, const char *user, int64_t now,
				    struct dir_member *m, const char **canon)
{
	size_t len = strlen(user);
	struct dir_entry *set;
	if (c == NULL || len > DIR_CACHE_USER_MAX)
		return DIR_CACHE_MISS;
	struct dir_entry *e = find(c, user, len, &set);
	if (e == NULL)
		return DIR_CACHE_MISS;
	if (e->expires <= now) {
		entry_clear(e);
		return DIR_CACHE_MISS;
	}
	if (!e->found)
		return DIR_CACHE_NOT_FOUND;
	*m = e->m;
	if (canon != NULL)
		*canon = e->canon;
	return DIR_CACHE_FOUND;
}

void dir_cache_put(struct dir_cache *c, const char *user, bool found, const struct dir_member *m,
		   const char *canon, int64_t now, int64_t ttl)
{
	size_t len = strlen(user);
	struct dir_entry *set;
	char *copy = NULL;
	if (c == NULL || ttl <= 0 || len > DIR_CACHE_USER_MAX)
		return;
	if (found && canon != NULL && strcmp(canon, user) != 0 && (copy = strdup(canon)) == NULL)
		return;
	struct dir_entry *e = find(c, user, len, &set);
	for (int w = 0; e == NULL && w < WAYS; w++)
		if (set[w].expires <= now)
			e = &set[w]; /* free or expired */
	if (e == NULL) {
		/* full: the entry that would expire first goes */
		e = &set[0];
		for (int w = 1; w < WAYS; w++)
			if (set[w].expires < e->expires)
				e = &set[w];
	}
	entry_clear(e);
	e->expires = ttl > INT64_MAX - now ? INT64_MAX : now + ttl;
	e->canon = copy;
	e->found = found;
	e->len = (uint8_t)len;
	memcpy(e->user, user, len);
	if (found && m != NULL)
		e->m = *m;
}

size_t dir_cache_count(const struct dir_cache *c, int64_t now)
{
	size_t n = 0;
	for (size_t i = 0; c != NULL && i < c->nsets * WAYS; i++)
		n += c->e[i].expires > now;
	return n;
}

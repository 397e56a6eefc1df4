/* domainset.c - hash set of domain names, suffix matching in O(labels). */
#include "domainset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DS_EXACT 0x1u   /* the name itself */
#define DS_SUBTREE 0x2u /* the name and everything below it */

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* Largest file we accept: offsets into the arena are 32-bit. */
#define DS_FILE_MAX ((size_t)1 << 31)

/* One slot of the table; len == 0 marks an empty slot. */
struct ds_slot {
	uint32_t hash; /* finalised hash, compared before the bytes */
	uint32_t off;  /* offset of the name in the arena */
	uint8_t len;   /* 1..253 */
	uint8_t flags; /* DS_EXACT | DS_SUBTREE */
};

struct domainset {
	char *arena;        /* all names, not NUL-terminated */
	size_t arena_len;
	size_t arena_cap;
	struct ds_slot *slots;
	size_t mask;        /* slot count - 1; slot count is a power of two */
	size_t count;       /* used slots */
};

/* One FNV-1a step; names are hashed from the last byte to the first. */
static inline uint32_t ds_step(uint32_t h, unsigned char c)
{
	return (h ^ c) * FNV_PRIME;
}

/* Spread the bits (murmur3 fmix32) so the low bits index well. */
static inline uint32_t ds_final(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

/* Hash of a whole name, the same value the suffix walk computes. */
static uint32_t ds_hash(const char *name, size_t len)
{
	uint32_t h = FNV_OFFSET;
	while (len > 0)
		h = ds_step(h, (unsigned char)name[--len]);
	return ds_final(h);
}

/* Lowercase and validate a host name (see domainset.h). */
int domainset_normalize(const char *in, size_t len, char *out, const char **why)
{
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0) {
		*why = "empty name";
		return -1;
	}
	if (len > DOMAINSET_NAME_MAX) {
		*why = "name longer than 253 characters";
		return -1;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
		} else if (c == '.') {
			if (label == 0) {
				*why = "empty label";
				return -1;
			}
			label = 0;
			out[i] = '.';
			continue;
		} else if (c >= 0x80) {
			*why = "non-ASCII name (write IDNA names as punycode, xn--...)";
			return -1;
		} else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			     c == '_')) {
			*why = "invalid character in name";
			return -1;
		}
		if (++label > 63) {
			*why = "label longer than 63 characters";
			return -1;
		}
		out[i] = (char)c;
	}
	if (label == 0) {
		*why = "empty label";
		return -1;
	}
	return (int)len;
}

/* Find the slot holding name, or the empty slot where it would go. */
static struct ds_slot *ds_find(const struct domainset *s, const char *name, size_t len,
			       uint32_t h)
{
	size_t i = h & s->mask;
	for (;;) {
		struct ds_slot *slot = &s->slots[i];
		if (slot->len == 0)
			return slot;
		if (slot->hash == h && slot->len == len &&
		    memcmp(s->arena + slot->off, name, len) == 0)
			return slot;
		i = (i + 1) & s->mask;
	}
}

/* Allocate an empty table of nslots (a power of two). */
static int ds_alloc_slots(struct domainset *s, size_t nslots)
{
	struct ds_slot *slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -1;
	free(s->slots);
	s->slots = slots;
	s->mask = nslots - 1;
	s->count = 0;
	return 0;
}

/* Double the table and re-insert every entry. */
static int ds_grow(struct domainset *s)
{
	struct ds_slot *old = s->slots;
	size_t n = s->mask + 1;
	struct ds_slot *slots = calloc(n * 2, sizeof(*slots));
	if (slots == NULL)
		return -1;
	s->slots = slots;
	s->mask = n * 2 - 1;
	for (size_t i = 0; i < n; i++) {
		if (old[i].len == 0)
			continue;
		*ds_find(s, s->arena + old[i].off, old[i].len, old[i].hash) = old[i];
	}
	free(old);
	return 0;
}

/* Insert the name already stored at arena offset off (or merge its flags). */
static int ds_insert(struct domainset *s, uint32_t off, size_t len, unsigned flags)
{
	if ((s->count + 1) * 2 > s->mask + 1 && ds_grow(s) < 0)
		return -1;
	const char *name = s->arena + off;
	uint32_t h = ds_hash(name, len);
	struct ds_slot *slot = ds_find(s, name, len, h);
	if (slot->len == 0) {
		slot->hash = h;
		slot->off = off;
		slot->len = (uint8_t)len;
		s->count++;
	}
	slot->flags |= (uint8_t)flags;
	return 0;
}

/* An empty set with a small table. */
struct domainset *domainset_new(void)
{
	struct domainset *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (ds_alloc_slots(s, 16) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Free the arena, the table and the set (NULL is fine). */
void domainset_free(struct domainset *s)
{
	if (s == NULL)
		return;
	free(s->arena);
	free(s->slots);
	free(s);
}

/* Number of distinct names. */
size_t domainset_count(const struct domainset *s)
{
	return s->count;
}

/* Add "name" (exact) or ".name" (subtree), growing the arena and table. */
int domainset_add(struct domainset *s, const char *entry, char *err, size_t errlen)
{
	const char *why;
	unsigned flags = DS_EXACT;
	size_t len = strlen(entry);
	if (len > 0 && entry[0] == '.') {
		flags = DS_SUBTREE;
		entry++;
		len--;
	}
	if (len > DOMAINSET_NAME_MAX + 1) {
		snprintf(err, errlen, "expected a domain name, got a name longer than 253 characters");
		return -1;
	}
	if (s->arena_len + len > s->arena_cap) {
		size_t cap = s->arena_cap ? s->arena_cap * 2 : 256;
		while (cap < s->arena_len + len)
			cap *= 2;
		if (cap >= DS_FILE_MAX) {
			snprintf(err, errlen, "domain set too large");
			return -1;
		}
		char *a = realloc(s->arena, cap);
		if (a == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		s->arena = a;
		s->arena_cap = cap;
	}
	int n = domainset_normalize(entry, len, s->arena + s->arena_len, &why);
	if (n < 0) {
		snprintf(err, errlen, "expected a domain name or .suffix, got \"%s%.*s\": %s",
			 flags == DS_SUBTREE ? "." : "", (int)(len > 80 ? 80 : len), entry, why);
		return -1;
	}
	if (ds_insert(s, (uint32_t)s->arena_len, (size_t)n, flags) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->arena_len += (size_t)n;
	return 0;
}

/* Read a whole regular file into one allocation (plus a spare byte). */
static char *ds_read_file(const char *path, size_t *lenp, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size >= DS_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of less than 2 GiB", path);
		close(fd);
		return NULL;
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = malloc(size + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return NULL;
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "%s: read: %s", path,
				 r < 0 ? strerror(errno) : "file shrank while reading");
			free(buf);
			close(fd);
			return NULL;
		}
		got += (size_t)r;
	}
	close(fd);
	*lenp = size;
	return buf;
}

/* Is c blank for the purpose of trimming a line? */
static inline bool ds_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Load a one-name-a-line file: the file buffer becomes the arena. */
struct domainset *domainset_load(const char *path, char *err, size_t errlen)
{
	size_t size;
	char *buf = ds_read_file(path, &size, err, errlen);
	if (buf == NULL)
		return NULL;
	struct domainset *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		free(buf);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	/* the table is sized once from the line count: no rehash while loading */
	size_t lines = 1;
	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + size - p))) != NULL; p++)
		lines++;
	size_t nslots = 16;
	while (nslots < lines * 2)
		nslots *= 2;
	if (ds_alloc_slots(s, nslots) < 0) {
		free(buf);
		free(s);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	s->arena = buf;
	s->arena_cap = size + 1;

	/* names are normalised in place: the write offset never passes the read one */
	size_t w = 0, pos = 0;
	unsigned lineno = 0;
	if (size >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		pos = 3; /* UTF-8 byte order mark */
	while (pos < size) {
		lineno++;
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', size - pos);
		size_t linelen = nl ? (size_t)(nl - line) : size - pos;
		pos += linelen + 1;
		const char *hash = memchr(line, '#', linelen);
		if (hash != NULL)
			linelen = (size_t)(hash - line);
		while (linelen > 0 && ds_space(line[0])) {
			line++;
			linelen--;
		}
		while (linelen > 0 && ds_space(line[linelen - 1]))
			linelen--;
		if (linelen == 0)
			continue;
		if (line[0] == '.') {
			line++;
			linelen--;
		}
		const char *why;
		int n;
		if (memchr(line, ' ', linelen) != NULL || memchr(line, '\t', linelen) != NULL) {
			why = "one name a line expected, got whitespace inside the line";
			n = -1;
		} else {
			n = domainset_normalize(line, linelen, buf + w, &why);
		}
		if (n < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
			domainset_free(s);
			return NULL;
		}
		if (ds_insert(s, (uint32_t)w, (size_t)n, DS_SUBTREE) < 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			domainset_free(s);
			return NULL;
		}
		w += (size_t)n;
	}
	s->arena_len = w;
	return s;
}

/* Look up one suffix; want is the flag that makes it a match. */
static inline bool ds_has(const struct domainset *s, const char *name, size_t len, uint32_t h,
			  unsigned want)
{
	const struct ds_slot *slot = ds_find(s, name, len, h);
	return slot->len != 0 && (slot->flags & want) != 0;
}

/* Walk the suffixes from the shortest, hashing incrementally. */
bool domainset_match_norm(const struct domainset *s, const char *name, size_t len)
{
	if (s == NULL || s->count == 0 || len == 0)
		return false;
	uint32_t h = FNV_OFFSET;
	for (size_t i = len; i-- > 0;) {
		if (name[i] == '.' &&
		    ds_has(s, name + i + 1, len - i - 1, ds_final(h), DS_SUBTREE))
			return true;
		h = ds_step(h, (unsigned char)name[i]);
	}
	return ds_has(s, name, len, ds_final(h), DS_EXACT | DS_SUBTREE);
}

/* Normalise the host, then match it. */
bool domainset_match(const struct domainset *s, const char *host)
{
	char buf[DOMAINSET_NAME_MAX + 1];
	const char *why;
	size_t len = strlen(host);
	if (len > DOMAINSET_NAME_MAX + 1)
		return false;
	int n = domainset_normalize(host, len, buf, &why);
	return n > 0 && domainset_match_norm(s, buf, (size_t)n);
}

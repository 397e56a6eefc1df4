/* slice.h - a view into bytes owned by someone else. */
#ifndef HOPCACHE_SLICE_H
#define HOPCACHE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

struct slice {
	const char *p;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){ (s), sizeof(s) - 1 })

static inline struct slice slice_make(const char *p, size_t len)
{
	return (struct slice){ p, len };
}

/* Case-insensitive comparison with a NUL-terminated ASCII string. */
static inline bool slice_eq_ci(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* Case-insensitive equality of two slices. */
static inline bool slices_eq_ci(struct slice a, struct slice b)
{
	return a.len == b.len && (a.len == 0 || strncasecmp(a.p, b.p, a.len) == 0);
}

static inline bool slice_eq(struct slice s, const char *lit)
{
	size_t n = strlen(lit);
	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/* Copy a slice into a NUL-terminated buffer of len > 0 bytes, truncating. */
static inline void slice_copy(char *out, size_t len, struct slice s)
{
	size_t n = s.len < len - 1 ? s.len : len - 1;
	if (n > 0)
		memcpy(out, s.p, n);
	out[n] = '\0';
}

#endif

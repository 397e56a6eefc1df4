/* decimal.h - 1*DIGIT (no sign, no spaces), the one decimal parser of the
 * configuration and of the header fields that carry numbers. Pure. */
#ifndef HOPCACHE_DECIMAL_H
#define HOPCACHE_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A DIGIT (RFC 5234 B.1). */
static inline bool decimal_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Would v * 10 + d exceed max? (No overflow whatever max is.) */
static inline bool decimal_exceeds(uint64_t v, unsigned d, uint64_t max)
{
	return v > max / 10 || (v == max / 10 && d > max % 10);
}

/* The digits p[0..len) as a number, into *out. False, *out untouched, when
 * len is 0, a byte is not a digit, or the value is above max. */
static inline bool decimal_parse(const char *p, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (p[i] < '0' || p[i] > '9' || decimal_exceeds(v, d, max))
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* The same, saturating: a value above max is max. False, *out untouched,
 * when len is 0 or a byte is not a digit. */
static inline bool decimal_parse_clamped(const char *p, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(p[i] - '0');

		if (p[i] < '0' || p[i] > '9')
			return false;
		v = decimal_exceeds(v, d, max) ? max : v * 10 + d;
	}
	*out = v;
	return true;
}

#endif

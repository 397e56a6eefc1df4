/* rate.h - a request rate with a burst ("100/s, burst 200"), as the
 * [limits] requests_per_client and requests_per_user keys write it, and the
 * token bucket that enforces it, kept as one number so that processes can
 * share it with a compare-and-swap: the generic cell rate algorithm (GCRA),
 * whose "theoretical arrival time" is a token bucket seen from the clock's
 * side. Pure. */
#ifndef HOPCACHE_RATE_H
#define HOPCACHE_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATE_MAX_PER_SEC 1000000.0 /* the highest rate a key accepts */
#define RATE_MAX_BURST 1000000u

struct rate {
	double count;   /* requests per unit; 0 = no limit */
	char unit;      /* 's', 'm' or 'h' */
	uint32_t burst; /* requests allowed at once (>= 1 when count > 0) */
};

/* "N/UNIT[, burst B]" with N a decimal (fraction allowed), UNIT s, m or h
 * (second, minute, hour; also sec, min, hour), B an integer (default: N
 * rounded up, at least 1); "off" or "0" for no limit. 0, or -1 with the
 * problem in why. */
int rate_parse(const char *s, struct rate *out, char *why, size_t wlen);

/* As rate_parse reads it: "100/s, burst 200", or "off". */
void rate_format(const struct rate *r, char *buf, size_t len);

/* The time between two requests at the steady rate, in nanoseconds. */
int64_t rate_interval_ns(const struct rate *r);

/* One request at `now` (nanoseconds) against the bucket whose state is
 * *tat (0 for a bucket never used). True, with *tat advanced, when the
 * bucket has a token; false, *tat unchanged and *wait_ns the time until it
 * has one, when it is empty. */
bool rate_take(const struct rate *r, int64_t now, int64_t *tat, int64_t *wait_ns);

/* Has a bucket in state tat refilled completely by `now`? */
static inline bool rate_bucket_full(int64_t tat, int64_t now)
{
	return tat <= now;
}

#endif

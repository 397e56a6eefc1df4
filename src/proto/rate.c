/* rate.c - request rates: their syntax and the GCRA token bucket. */
#include "rate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "decimal.h"

static double unit_seconds(char unit)
{
	return unit == 'h' ? 3600.0 : unit == 'm' ? 60.0 : 1.0;
}

/* DIGITS ["." DIGITS] at *p into *v. */
static bool parse_number(const char **p, double *v)
{
	const char *s = *p;
	double n = 0, scale = 1;
	bool digits = false, frac = false;
	for (; decimal_is_digit(*s) || (*s == '.' && !frac); s++) {
		if (*s == '.') {
			frac = true;
			continue;
		}
		digits = true;
		if (frac)
			n += (scale /= 10) * (*s - '0');
		else if (n < 1e12)
			n = n * 10 + (*s - '0');
	}
	if (!digits || s[-1] == '.')
		return false;
	*p = s;
	*v = n;
	return true;
}

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static bool unit_parse(const char **p, char *unit)
{
	static const struct {
		const char *name;
		char unit;
	} units[] = { { "second", 's' }, { "sec", 's' }, { "s", 's' }, { "minute", 'm' },
		      { "min", 'm' },    { "m", 'm' },   { "hour", 'h' }, { "h", 'h' } };
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t l = strlen(units[i].name);
		if (strncasecmp(*p, units[i].name, l) == 0) {
			*p += l;
			*unit = units[i].unit;
			return true;
		}
	}
	return false;
}

int rate_parse(const char *s, struct rate *out, char *why, size_t wlen)
{
	const char *p = skip_blanks(s);
	struct rate r = { 0, 's', 0 };
	if (strcasecmp(p, "off") == 0 || strcmp(p, "0") == 0 || *p == '\0') {
		*out = r;
		return 0;
	}
	if (!parse_number(&p, &r.count) || r.count <= 0) {
		snprintf(why, wlen, "expected a rate such as \"100/s, burst 200\" (or off), got \"%s\"",
			 s);
		return -1;
	}
	p = skip_blanks(p);
	if (*p++ != '/' || (p = skip_blanks(p), !unit_parse(&p, &r.unit))) {
		snprintf(why, wlen, "\"%s\": the rate needs a unit: N/s, N/m or N/h", s);
		return -1;
	}
	double per_sec = r.count / unit_seconds(r.unit);
	if (per_sec > RATE_MAX_PER_SEC || per_sec < 1.0 / 3600) {
		snprintf(why, wlen, "\"%s\": the rate must be between 1/h and %.0f/s", s,
			 RATE_MAX_PER_SEC);
		return -1;
	}
	double def = (double)(uint64_t)r.count; /* count rounded up */
	if (def < r.count)
		def += 1;
	r.burst = def > RATE_MAX_BURST ? RATE_MAX_BURST : (uint32_t)def;
	p = skip_blanks(p);
	if (*p == ',') {
		p = skip_blanks(p + 1);
		uint64_t b;
		size_t l = 0;
		if (strncasecmp(p, "burst", 5) != 0) {
			snprintf(why, wlen, "\"%s\": after the rate, expected \", burst N\"", s);
			return -1;
		}
		p = skip_blanks(p + 5);
		while (decimal_is_digit(p[l]))
			l++;
		if (!decimal_parse(p, l, RATE_MAX_BURST, &b) || b == 0) {
			snprintf(why, wlen, "\"%s\": the burst must be an integer between 1 and %u", s,
				 RATE_MAX_BURST);
			return -1;
		}
		r.burst = (uint32_t)b;
		p = skip_blanks(p + l);
	}
	if (*p != '\0') {
		snprintf(why, wlen, "\"%s\": unexpected text after the rate: \"%s\"", s, p);
		return -1;
	}
	if (r.burst == 0)
		r.burst = 1;
	*out = r;
	return 0;
}

void rate_format(const struct rate *r, char *buf, size_t len)
{
	if (r->count <= 0)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "%.15g/%c, burst %u", r->count, r->unit, (unsigned)r->burst);
}

int64_t rate_interval_ns(const struct rate *r)
{
	double ns = 1e9 * unit_seconds(r->unit) / r->count;
	return ns < 1 ? 1 : (int64_t)(ns + 0.5);
}

bool rate_take(const struct rate *r, int64_t now, int64_t *tat, int64_t *wait_ns)
{
	int64_t t = rate_interval_ns(r);
	/* the burst's tolerance: up to burst requests at once, then one per t;
	 * t <= 3.6e12 and burst <= 1e6, so this stays far below INT64_MAX */
	int64_t tau = t * (int64_t)(r->burst - 1);
	int64_t start = *tat > now ? *tat : now;
	if (start - now > tau) {
		*wait_ns = start - now - tau;
		return false;
	}
	*tat = start + t;
	return true;
}

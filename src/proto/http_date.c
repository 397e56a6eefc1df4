/* http_date.c - HTTP-date (RFC 9110 §5.6.7): the three forms a recipient
 * must parse, and IMF-fixdate, the one a sender generates. Pure. */
#include "http_date.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "decimal.h"

static const char *const cp_months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};
static const char *const cp_wdays[7] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
};
static const char *const cp_wdays_long[7] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t cp_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Days in month m (1..12) of year y. */
static int cp_mdays(int64_t y, int m)
{
	static const int md[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : md[m - 1];
}

/* A cursor over the date being parsed. */
struct cp_cur {
	const char *p;
	size_t len, i;
};

/* Consume exactly the literal lit. */
static bool cp_lit(struct cp_cur *c, const char *lit)
{
	size_t n = strlen(lit);

	if (c->len - c->i < n || memcmp(c->p + c->i, lit, n) != 0)
		return false;
	c->i += n;
	return true;
}

/* Consume exactly n digits into *v. */
static bool cp_digits(struct cp_cur *c, size_t n, int64_t *v)
{
	size_t k;

	if (c->len - c->i < n)
		return false;
	*v = 0;
	for (k = 0; k < n; k++) {
		if (!decimal_is_digit(c->p[c->i + k]))
			return false;
		*v = *v * 10 + (c->p[c->i + k] - '0');
	}
	c->i += n;
	return true;
}

/* Consume one of the names in tab (case-insensitive); returns its index or -1. */
static int cp_name(struct cp_cur *c, const char *const *tab, int count)
{
	int k;

	for (k = 0; k < count; k++) {
		size_t n = strlen(tab[k]);

		if (c->len - c->i >= n && strncasecmp(c->p + c->i, tab[k], n) == 0) {
			c->i += n;
			return k;
		}
	}
	return -1;
}

/* Consume time-of-day "HH:MM:SS". */
static bool cp_time(struct cp_cur *c, int64_t *h, int64_t *mi, int64_t *s)
{
	return cp_digits(c, 2, h) && cp_lit(c, ":") && cp_digits(c, 2, mi) && cp_lit(c, ":") &&
	       cp_digits(c, 2, s) && *h < 24 && *mi < 60 && *s <= 60;
}

/* HTTP-date to seconds since the epoch; -1 when invalid or before 1970.
 * RFC 850 two-digit years: 00-69 -> 20xx, 70-99 -> 19xx (no clock here to
 * apply the "50 years" rule of RFC 9110 §5.6.7). Names are matched
 * case-insensitively; the weekday is not checked against the date. */
int64_t http_date_parse(struct slice s)
{
	struct cp_cur c = { s.p, s.len, 0 };
	int64_t y = 0, d = 0, h = 0, mi = 0, sec = 0, t;
	int m;

	if (s.len == 0)
		return -1;
	if (cp_name(&c, cp_wdays_long, 7) >= 0) {
		/* rfc850-date: Sunday, 06-Nov-94 08:49:37 GMT */
		if (!cp_lit(&c, ", ") || !cp_digits(&c, 2, &d) || !cp_lit(&c, "-"))
			return -1;
		if ((m = cp_name(&c, cp_months, 12)) < 0 || !cp_lit(&c, "-") ||
		    !cp_digits(&c, 2, &y))
			return -1;
		y += y < 70 ? 2000 : 1900;
		if (!cp_lit(&c, " ") || !cp_time(&c, &h, &mi, &sec) || !cp_lit(&c, " GMT"))
			return -1;
	} else if (cp_name(&c, cp_wdays, 7) >= 0) {
		if (cp_lit(&c, ", ")) {
			/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
			if (!cp_digits(&c, 2, &d) || !cp_lit(&c, " "))
				return -1;
			if ((m = cp_name(&c, cp_months, 12)) < 0 || !cp_lit(&c, " ") ||
			    !cp_digits(&c, 4, &y) || !cp_lit(&c, " ") ||
			    !cp_time(&c, &h, &mi, &sec) || !cp_lit(&c, " GMT"))
				return -1;
		} else {
			/* asctime-date: Sun Nov  6 08:49:37 1994 */
			if (!cp_lit(&c, " ") || (m = cp_name(&c, cp_months, 12)) < 0 ||
			    !cp_lit(&c, " "))
				return -1;
			if (cp_lit(&c, " ")) {
				if (!cp_digits(&c, 1, &d))
					return -1;
			} else if (!cp_digits(&c, 2, &d)) {
				return -1;
			}
			if (!cp_lit(&c, " ") || !cp_time(&c, &h, &mi, &sec) || !cp_lit(&c, " ") ||
			    !cp_digits(&c, 4, &y))
				return -1;
		}
	} else {
		return -1;
	}
	if (c.i != c.len || y < 1970 || d < 1 || d > cp_mdays(y, m + 1))
		return -1;
	t = cp_days_from_civil(y, m + 1, (int)d) * 86400 + h * 3600 + mi * 60 + sec;
	return t;
}

/* Format t as IMF-fixdate (29 bytes + NUL); writes "" when len < 30. */
void http_date_format(int64_t t, char *out, size_t len)
{
	int64_t days, sod, z, era, doe, yoe, y, doy, mp, d, m;

	if (len < 30) {
		if (len > 0)
			out[0] = '\0';
		return;
	}
	if (t < 0)
		t = 0;
	days = t / 86400;
	sod = t % 86400;
	/* civil_from_days (H. Hinnant) */
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (y > 9999) {
		out[0] = '\0';
		return;
	}
	snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", cp_wdays[(days + 4) % 7],
		 (int)d, cp_months[m - 1], (int)y, (int)(sod / 3600), (int)(sod / 60 % 60),
		 (int)(sod % 60));
}


/* config_value.c - the configuration's value parsers (pure: config_value.h). */
#include "config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "decimal.h"

/* The longest list item a collector takes (listen's). */
#define LIST_ITEM_MAX 300

void config_quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0, i;

	if (outlen < 8) {
		if (outlen > 0)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t tl;

		if (i >= CONFIG_QUOTE_MAX) {
			if (o + 4 < outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (c == '"' || c == '\\')
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			tl = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		else
			tl = (size_t)snprintf(tmp, sizeof(tmp), "%c", c);
		if (o + tl + 2 >= outlen)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
	}
	out[o++] = '"';
	out[o] = '\0';
}

size_t config_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX / 2;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

size_t config_typo_budget(const char *s)
{
	size_t n = strlen(s);

	return n <= 3 ? 1 : n <= 8 ? 2 : 3;
}

/* Case-insensitive match of val against a NULL-terminated list of words. */
static bool word_in(const char *val, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strcasecmp(val, *words) == 0)
			return true;
	return false;
}

int config_parse_bool(const char *val, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	if (word_in(val, yes))
		*out = true;
	else if (word_in(val, no))
		*out = false;
	else
		return -1;
	return 0;
}

void config_format_size(uint64_t v, char *buf, size_t len)
{
	static const char suffix[] = "GMK";
	int i;

	for (i = 0; i < 3; i++) {
		uint64_t unit = UINT64_C(1) << (10 * (3 - i));

		if (v != 0 && v % unit == 0) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v / unit), suffix[i]);
			return;
		}
	}
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

int config_parse_size(const char *val, uint64_t *out)
{
	size_t len = strlen(val);
	unsigned shift = 0;
	uint64_t v;

	if (len > 0) {
		switch (val[len - 1]) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: break;
		}
	}
	if (shift != 0)
		len--;
	if (!decimal_parse(val, len, UINT64_MAX, &v))
		return -1;
	if (shift != 0 && v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}

int config_parse_duration(const char *val, double *out)
{
	const char *dot = strchr(val, '.');
	size_t ilen = dot != NULL ? (size_t)(dot - val) : strlen(val);
	uint64_t ip = 0;
	double frac = 0, scale = 0.1;
	const char *p;

	if (ilen > 12 || !decimal_parse(val, ilen, UINT64_MAX, &ip))
		return -1;
	if (dot != NULL) {
		if (dot[1] == '\0')
			return -1;
		for (p = dot + 1; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	*out = (double)ip + frac;
	return 0;
}

void config_format_duration(double d, char *buf, size_t len)
{
	/* plain decimal, as config_parse_duration reads it back (never an
	 * exponent: "%g" printed 31536000 as 3.1536e+07) */
	int n = snprintf(buf, len, "%.9f", d);
	if (n < 0 || (size_t)n >= len) {
		snprintf(buf, len, "%.0f", d);
		return;
	}
	char *dot = strchr(buf, '.');
	if (dot == NULL)
		return;
	char *end = buf + n;
	while (end > dot + 1 && end[-1] == '0')
		end--;
	if (end == dot + 1)
		end = dot;
	*end = '\0';
}

/* ---- lists --------------------------------------------------------------- */

bool config_list_next(const char **pp, char *item, size_t itemlen, bool *toolong)
{
	const char *p = *pp;
	size_t n = 0;

	while (*p == ',' || isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return false;
	*toolong = false;
	while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p)) {
		if (n + 1 < itemlen)
			item[n++] = *p;
		else
			*toolong = true;
		p++;
	}
	item[n] = '\0';
	*pp = p;
	return true;
}

/* One item (cut, and toolong set, past the collector's length) into elem,
 * which is zeroed; the nprev items before it are at prev. -1 with why. */
typedef int (*list_item_fn)(char *item, bool toolong, void *elem, const void *prev, size_t nprev,
			    char *why, size_t wlen);

/* Every item of val through fn into a new array of elemsize elements, at
 * *arr with *n of them (NULL and 0 for an empty list). On failure the array
 * still holds what was parsed, the failed element included, for the caller
 * to free. itemlen is at most LIST_ITEM_MAX (more is cut to it). */
static int list_collect(const char *val, size_t itemlen, size_t elemsize, list_item_fn fn,
			void **arr, size_t *n, char *why, size_t wlen)
{
	char item[LIST_ITEM_MAX];
	const char *p = val;
	bool toolong;

	*arr = NULL;
	*n = 0;
	if (itemlen > sizeof(item))
		itemlen = sizeof(item);
	while (config_list_next(&p, item, itemlen, &toolong)) {
		char *grown = realloc(*arr, (*n + 1) * elemsize), *elem;

		if (grown == NULL) {
			snprintf(why, wlen, "out of memory");
			return -1;
		}
		*arr = grown;
		elem = grown + *n * elemsize;
		memset(elem, 0, elemsize);
		(*n)++;
		if (fn(item, toolong, elem, grown, *n - 1, why, wlen) < 0)
			return -1;
	}
	return 0;
}

/* ASCII letter or digit, whatever the locale. */
static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Is this a plausible host: an IPv4 address or a DNS name? */
static bool host_ok(const char *h)
{
	struct in_addr a4;
	bool digits_dots = true;
	const char *p;

	if (*h == '\0')
		return false;
	for (p = h; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
			return false;
		if (!(c >= '0' && c <= '9') && c != '.')
			digits_dots = false;
	}
	if (digits_dots)
		return inet_pton(AF_INET, h, &a4) == 1;
	return true;
}

void config_listen_free(struct config_listen *l, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(l[i].host);
		free(l[i].port);
	}
	free(l);
}

/* The host of "[v6]:port" (item is cut at the ']'); *port set. NULL with why. */
static char *listen_v6_host(char *item, const char *q, char **port, char *why, size_t wlen)
{
	struct in6_addr a6;
	char *close = strchr(item, ']');

	if (close == NULL) {
		snprintf(why, wlen, "%s: missing ] after the IPv6 address", q);
		return NULL;
	}
	*close = '\0';
	if (inet_pton(AF_INET6, item + 1, &a6) != 1) {
		snprintf(why, wlen, "%s: not an IPv6 address inside [ ]", q);
		return NULL;
	}
	if (close[1] != ':') {
		snprintf(why, wlen, "%s: expected [IPv6]:port, e.g. [::1]:3128", q);
		return NULL;
	}
	*port = close + 2;
	return item + 1;
}

/* The host of "host:port" (item is cut at the last ':'); *port set. NULL with why. */
static char *listen_host(char *item, const char *q, char **port, char *why, size_t wlen)
{
	char *colon = strrchr(item, ':');

	if (colon == NULL) {
		snprintf(why, wlen, "%s: expected host:port, e.g. 127.0.0.1:3128", q);
		return NULL;
	}
	*colon = '\0';
	*port = colon + 1;
	if (strchr(item, ':') != NULL)
		snprintf(why, wlen, "%s: an IPv6 address needs brackets, e.g. [::1]:3128", q);
	else if (*item == '\0')
		snprintf(why, wlen, "%s: missing host (use 0.0.0.0 or [::] for all addresses)", q);
	else if (!host_ok(item))
		snprintf(why, wlen, "%s: not an IPv4 address or host name", q);
	else if (strlen(item) > CONFIG_HOST_MAX)
		snprintf(why, wlen, "%s: host name longer than %d characters", q, CONFIG_HOST_MAX);
	else
		return item;
	return NULL;
}

/* One listen item into elem (a struct config_listen); the items before are
 * at prev (none may be the same address and port, port 0 excepted). */
static int listen_item(char *item, bool toolong, void *elem, const void *prev, size_t nprev,
		       char *why, size_t wlen)
{
	struct config_listen *l = elem;
	const struct config_listen *before = prev;
	char q[96], pbuf[8];
	char *host, *port;
	uint64_t pv;

	config_quote(item, q, sizeof(q));
	if (toolong) {
		snprintf(why, wlen, "%s: longer than %d characters", q, LIST_ITEM_MAX - 1);
		return -1;
	}
	host = item[0] == '[' ? listen_v6_host(item, q, &port, why, wlen)
			      : listen_host(item, q, &port, why, wlen);
	if (host == NULL)
		return -1;
	if (strlen(port) > 5 || !decimal_parse(port, strlen(port), 65535, &pv)) {
		snprintf(why, wlen, "%s: expected a port between 0 and 65535", q);
		return -1;
	}
	snprintf(pbuf, sizeof(pbuf), "%u", (unsigned)pv);
	l->host = strdup(host);
	l->port = strdup(pbuf);
	if (l->host == NULL || l->port == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nprev; i++) {
		if (strcasecmp(before[i].host, l->host) == 0 && strcmp(before[i].port, l->port) == 0 &&
		    strcmp(before[i].port, "0") != 0) {
			snprintf(why, wlen, "%s:%s is listed twice", before[i].host, before[i].port);
			return -1;
		}
	}
	return 0;
}

int config_parse_listen(const char *val, struct config_listen **out, size_t *n, char *why,
			size_t wlen)
{
	void *l;
	size_t count;

	if (list_collect(val, LIST_ITEM_MAX, sizeof(struct config_listen), listen_item, &l, &count,
			 why, wlen) < 0) {
		config_listen_free(l, count);
		return -1;
	}
	if (count == 0) {
		snprintf(why, wlen, "expected at least one host:port, e.g. 127.0.0.1:3128");
		return -1;
	}
	*out = l;
	*n = count;
	return 0;
}

/* One port or lo-hi range into elem (a struct config_port_range). */
static int port_item(char *item, bool toolong, void *elem, const void *prev, size_t nprev,
		     char *why, size_t wlen)
{
	struct config_port_range *pr = elem;
	char *dash = strchr(item, '-');
	uint64_t lo = 0, hi = 0;
	char q[96];
	bool ok;

	(void)prev;
	(void)nprev;
	config_quote(item, q, sizeof(q));
	if (toolong) {
		snprintf(why, wlen, "%s...: not a port or range", q);
		return -1;
	}
	if (dash != NULL)
		ok = decimal_parse(item, (size_t)(dash - item), UINT64_MAX, &lo) &&
		     decimal_parse(dash + 1, strlen(dash + 1), UINT64_MAX, &hi);
	else
		ok = decimal_parse(item, strlen(item), UINT64_MAX, &lo);
	if (ok && dash == NULL)
		hi = lo;
	if (!ok || lo < 1 || lo > 65535 || hi > 65535) {
		snprintf(why, wlen, "expected ports or ranges between 1 and 65535 "
			 "such as 443, 8443, 9000-9100, got %s", q);
		return -1;
	}
	if (lo > hi) {
		snprintf(why, wlen, "range %s runs backwards (want low-high)", q);
		return -1;
	}
	pr->lo = (uint16_t)lo;
	pr->hi = (uint16_t)hi;
	return 0;
}

int config_parse_ports(const char *val, struct config_port_range **out, size_t *n, char *why,
		       size_t wlen)
{
	void *pr;
	size_t count;

	if (list_collect(val, 32, sizeof(struct config_port_range), port_item, &pr, &count, why,
			 wlen) < 0) {
		free(pr);
		return -1;
	}
	if (count == 0) {
		snprintf(why, wlen, "expected ports or ranges such as 443, 8443, 9000-9100");
		return -1;
	}
	*out = pr;
	*n = count;
	return 0;
}

/* One address or CIDR range into elem (a struct cidr). */
static int cidr_item(char *item, bool toolong, void *elem, const void *prev, size_t nprev,
		     char *why, size_t wlen)
{
	char q[96];

	(void)prev;
	(void)nprev;
	if (toolong || cidr_parse(item, elem) < 0) {
		config_quote(item, q, sizeof(q));
		snprintf(why, wlen, "expected addresses or ranges such as 127.0.0.1, "
			 "10.0.0.0/8, ::1, got %s", q);
		return -1;
	}
	return 0;
}

int config_parse_cidrs(const char *val, struct cidr **out, size_t *n, char *why, size_t wlen)
{
	void *list;
	size_t count;

	if (list_collect(val, 64, sizeof(struct cidr), cidr_item, &list, &count, why, wlen) < 0) {
		free(list);
		return -1;
	}
	*out = list;
	*n = count;
	return 0;
}

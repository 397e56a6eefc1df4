/* acl.c - egress policy: rule matching, private addresses, config parsing. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "acl.h"

#include <arpa/inet.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Backtracking budget for one URL match: a pathological pattern fails
 * (and is treated as described in rule_match_url) instead of stalling a worker. */
#define ACL_REGEX_MATCH_LIMIT 100000

struct acl_regex {
	pcre2_code *code;
	pcre2_match_context *mctx;
};

/* The host of a request, classified once per acl_check. */
struct acl_host {
	bool is_addr;                   /* an address literal: addr is valid */
	struct sockaddr_storage addr;
	char name[DOMAINSET_NAME_MAX + 1]; /* normalised name when !is_addr */
	size_t len;
};

static const char *const acl_day_names[7] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat" };

/* ---------------------------------------------------------------- IPv4 --- */

/* Parse one part of a loose IPv4 address; returns 0 or -1, sets *loose for
 * anything but plain decimal without leading zeros. */
static int ipv4_part(const char *p, size_t len, uint64_t *out, bool *loose)
{
	unsigned base = 10;
	if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
		len -= 2;
		*loose = true;
	} else if (len >= 2 && p[0] == '0') {
		base = 8;
		p++;
		len--;
		*loose = true;
	}
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned c = (unsigned char)p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		if (d >= base)
			return -1;
		v = v * base + d;
		if (v > 0xffffffffu)
			return -1;
	}
	*out = v;
	return 0;
}

/* Is the last label numeric (decimal digits, or 0x and hex digits)? Then the
 * WHATWG host parser treats the whole host as an IPv4 address. */
static bool ipv4_ends_in_number(const char *p, size_t len)
{
	if (len == 0)
		return false;
	size_t i = 0;
	bool hex = false;
	if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		hex = true;
		i = 2;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= '0' && c <= '9')
			continue;
		if (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			continue;
		return false;
	}
	return true;
}

/* Parse the IPv4 spellings inet_aton and browsers accept (see acl.h). */
int acl_parse_ipv4_loose(const char *host, struct in_addr *out)
{
	size_t len = strlen(host);
	bool loose = false;
	if (len > 1 && host[len - 1] == '.') {
		len--;
		loose = true;
	}
	const char *last = host + len;
	while (last > host && last[-1] != '.')
		last--;
	if (!ipv4_ends_in_number(last, (size_t)(host + len - last)))
		return 0;

	uint64_t parts[4];
	size_t n = 0;
	const char *p = host, *end = host + len;
	for (;;) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t plen = dot ? (size_t)(dot - p) : (size_t)(end - p);
		if (n == 4 || plen == 0 || ipv4_part(p, plen, &parts[n], &loose) < 0)
			return -1;
		n++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	uint64_t v = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (parts[i] > 255)
			return -1;
		v |= parts[i] << (8 * (3 - i));
	}
	if (parts[n - 1] >= (uint64_t)1 << (8 * (5 - n)))
		return -1;
	v |= parts[n - 1];
	if (n != 4)
		loose = true;
	out->s_addr = htonl((uint32_t)v);
	return loose ? 2 : 1;
}

/* -------------------------------------------------- private addresses --- */

/* Is the IPv4 address (host byte order) local, private or not unicast? */
static bool private_v4(uint32_t a)
{
	static const struct {
		uint32_t net;
		unsigned prefix;
	} ranges[] = {
		{ 0x00000000u, 8 },  /* 0.0.0.0/8 "this network", unspecified */
		{ 0x0a000000u, 8 },  /* 10/8 RFC 1918 */
		{ 0x64400000u, 10 }, /* 100.64/10 CGNAT RFC 6598 */
		{ 0x7f000000u, 8 },  /* 127/8 loopback */
		{ 0xa9fe0000u, 16 }, /* 169.254/16 link-local, cloud metadata */
		{ 0xac100000u, 12 }, /* 172.16/12 RFC 1918 */
		{ 0xc0a80000u, 16 }, /* 192.168/16 RFC 1918 */
		{ 0xe0000000u, 4 },  /* 224/4 multicast */
		{ 0xf0000000u, 4 },  /* 240/4 reserved, 255.255.255.255 broadcast */
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		uint32_t mask = 0xffffffffu << (32 - ranges[i].prefix);
		if ((a & mask) == ranges[i].net)
			return true;
	}
	return false;
}

/* Read 4 bytes as a host-order IPv4 address. */
static uint32_t v4_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Is the IPv6 address private, or does it embed a private IPv4 address? */
static bool private_v6(const uint8_t *a)
{
	static const uint8_t zero[10] = { 0 };
	static const uint8_t nat64[12] = { 0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t nat64_local[6] = { 0, 0x64, 0xff, 0x9b, 0, 1 };

	if (memcmp(a, zero, 10) == 0) {
		/* ::/96 compatible (incl. :: and ::1), ::ffff:0:0/96 mapped */
		if ((a[10] == 0 && a[11] == 0) || (a[10] == 0xff && a[11] == 0xff))
			return private_v4(v4_at(a + 12));
	}
	/* ::ffff:0:a.b.c.d (SIIT, RFC 6145) */
	if (memcmp(a, zero, 8) == 0 && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0)
		return private_v4(v4_at(a + 12));
	if (memcmp(a, nat64, 12) == 0) /* 64:ff9b::/96 RFC 6052 */
		return private_v4(v4_at(a + 12));
	if (memcmp(a, nat64_local, 6) == 0) /* 64:ff9b:1::/48 local-use RFC 8215 */
		return true;
	if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16 6to4 embeds bits 16..47 */
		return private_v4(v4_at(a + 2));
	if ((a[0] & 0xfe) == 0xfc) /* fc00::/7 ULA */
		return true;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10 link-local */
		return true;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) /* fec0::/10 site-local (deprecated) */
		return true;
	if (a[0] == 0xff) /* ff00::/8 multicast */
		return true;
	return false;
}

/* Is the destination one we refuse while private_destinations = deny? */
bool acl_private_address(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		return private_v4(ntohl(s4->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return private_v6(s6->sin6_addr.s6_addr);
	}
	return true;
}

/* ------------------------------------------------------------- matching --- */

/* Classify the request host: address literal, valid name, or -1 (refuse). */
static int host_parse(const char *host, struct acl_host *h)
{
	memset(&h->addr, 0, sizeof(h->addr));
	h->is_addr = false;
	h->len = 0;
	if (host == NULL || host[0] == '\0')
		return -1;
	size_t len = strlen(host);
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&h->addr;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&h->addr;
	if (host[0] == '[' || strchr(host, ':') != NULL) {
		char buf[INET6_ADDRSTRLEN + 2];
		const char *p = host;
		if (host[0] == '[') {
			if (len < 3 || host[len - 1] != ']')
				return -1;
			p++;
			len -= 2;
		}
		if (len >= sizeof(buf))
			return -1;
		memcpy(buf, p, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		h->is_addr = true;
		return 0;
	}
	int v4 = acl_parse_ipv4_loose(host, &s4->sin_addr);
	if (v4 < 0)
		return -1;
	if (v4 > 0) {
		s4->sin_family = AF_INET;
		h->is_addr = true;
		return 0;
	}
	const char *why;
	if (len > DOMAINSET_NAME_MAX + 1)
		return -1;
	int n = domainset_normalize(host, len, h->name, &why);
	if (n < 0)
		return -1;
	h->len = (size_t)n;
	return 0;
}

/* Is (weekday, minute) inside the window? */
static bool time_match(const struct acl_time *t, int weekday, int minute)
{
	if (weekday < 0 || weekday > 6 || minute < 0 || minute > 1439)
		return false;
	bool today = t->days & (1u << weekday);
	if (t->start < t->end)
		return today && minute >= t->start && minute < t->end;
	bool yesterday = t->days & (1u << ((weekday + 6) % 7));
	return (today && minute >= t->start) || (yesterday && minute < t->end);
}

/* Does the rule's URL regex match? Never for CONNECT. A match error (such as
 * an exhausted backtracking budget) counts as a match for a deny rule and a
 * miss for an allow rule: failure stays on the safe side. */
static bool rule_match_url(const struct acl_rule *rule, const struct acl_request *r)
{
	if (r->url == NULL || (r->method != NULL && strcmp(r->method, "CONNECT") == 0))
		return false;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(rule->url_regex->code, NULL);
	if (md == NULL)
		return rule->action == ACL_ACTION_DENY;
	int rc = pcre2_match(rule->url_regex->code, (PCRE2_SPTR)r->url, PCRE2_ZERO_TERMINATED, 0,
			     0, md, rule->url_regex->mctx);
	pcre2_match_data_free(md);
	if (rc >= 0)
		return true;
	if (rc == PCRE2_ERROR_NOMATCH)
		return false;
	return rule->action == ACL_ACTION_DENY;
}

/* Is s one of the n strings in list? */
static bool name_in(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Do all the rule's matchers except dst match? Cheapest tests first. */
static bool rule_match_static(const struct acl_rule *rule, const struct acl_request *r,
			      const struct acl_host *h)
{
	if (rule->n_ports > 0) {
		bool hit = false;
		for (size_t i = 0; i < rule->n_ports && !hit; i++)
			hit = r->port >= rule->ports[i].lo && r->port <= rule->ports[i].hi;
		if (!hit)
			return false;
	}
	if (rule->n_methods > 0 &&
	    (r->method == NULL || !name_in(rule->methods, rule->n_methods, r->method)))
		return false;
	if (rule->has_time && !time_match(&rule->time, r->weekday, r->minute))
		return false;
	if (rule->n_src > 0 &&
	    (r->client == NULL || !cidr_list_match(rule->src, rule->n_src, r->client)))
		return false;
	if (rule->n_users > 0 &&
	    (r->user == NULL || !name_in(rule->users, rule->n_users, r->user)))
		return false;
	if (rule->n_groups > 0) {
		bool hit = false;
		if (r->user == NULL || r->in_group == NULL)
			return false;
		for (size_t i = 0; i < rule->n_groups && !hit; i++)
			hit = r->in_group(r->group_ctx, rule->groups[i], r->user);
		if (!hit)
			return false;
	}
	if (rule->domains != NULL &&
	    (h->is_addr || !domainset_match_norm(rule->domains, h->name, h->len)))
		return false;
	if (rule->domain_file != NULL &&
	    (h->is_addr || !domainset_match_norm(rule->domain_file, h->name, h->len)))
		return false;
	if (rule->url_regex != NULL && !rule_match_url(rule, r))
		return false;
	return true;
}

/* Set the outputs and return res. */
static enum acl_result decide(enum acl_result res, const struct acl_rule *rule,
			      enum acl_reason why, const struct acl_rule **decided,
			      enum acl_reason *reason)
{
	if (decided != NULL)
		*decided = rule;
	if (reason != NULL)
		*reason = why;
	return res;
}

/* Walk the rules in order; first match decides, else the default. */
enum acl_result acl_check_reason(const struct acl *a, const struct acl_request *r,
				 const struct acl_rule **decided, enum acl_reason *reason)
{
	struct acl_host h;
	if (host_parse(r->host, &h) < 0)
		return decide(ACL_DENY, NULL, ACL_REASON_BAD_HOST, decided, reason);
	const struct sockaddr *dst = r->dst;
	if (dst == NULL && h.is_addr)
		dst = (const struct sockaddr *)&h.addr;
	bool vet_private = a->private_destinations == ACL_ACTION_DENY;
	if (dst != NULL && vet_private && acl_private_address(dst))
		return decide(ACL_DENY, NULL, ACL_REASON_PRIVATE_DST, decided, reason);

	for (size_t i = 0; i < a->n_rules; i++) {
		const struct acl_rule *rule = &a->rules[i];
		if (!rule_match_static(rule, r, &h))
			continue;
		if (rule->n_dst > 0) {
			if (dst == NULL)
				return decide(ACL_NEED_DST, NULL, ACL_REASON_NEED_DST, decided,
					      reason);
			if (!cidr_list_match(rule->dst, rule->n_dst, dst))
				continue;
		}
		if (rule->action == ACL_ACTION_ALLOW && dst == NULL && vet_private)
			return decide(ACL_NEED_DST, NULL, ACL_REASON_NEED_DST, decided, reason);
		return decide(rule->action == ACL_ACTION_ALLOW ? ACL_ALLOW : ACL_DENY, rule,
			      ACL_REASON_RULE, decided, reason);
	}
	if (a->default_action == ACL_ACTION_ALLOW && dst == NULL && vet_private)
		return decide(ACL_NEED_DST, NULL, ACL_REASON_NEED_DST, decided, reason);
	return decide(a->default_action == ACL_ACTION_ALLOW ? ACL_ALLOW : ACL_DENY, NULL,
		      ACL_REASON_DEFAULT, decided, reason);
}

/* acl_check_reason without the reason. */
enum acl_result acl_check(const struct acl *a, const struct acl_request *r,
			  const struct acl_rule **decided)
{
	return acl_check_reason(a, r, decided, NULL);
}

/* Short text for a reason, for logs and the 403 page. */
const char *acl_reason_str(enum acl_reason reason)
{
	switch (reason) {
	case ACL_REASON_RULE:
		return "rule";
	case ACL_REASON_DEFAULT:
		return "default";
	case ACL_REASON_PRIVATE_DST:
		return "private destination";
	case ACL_REASON_BAD_HOST:
		return "invalid host";
	case ACL_REASON_NEED_DST:
		return "destination address needed";
	}
	return "unknown";
}

/* -------------------------------------------------------------- parsing --- */

/* Next list element of s (separated by commas and/or whitespace): returns
 * its start and sets *len, or NULL at the end. */
static const char *next_token(const char **s, size_t *len)
{
	const char *p = *s;
	while (*p == ',' || *p == ' ' || *p == '\t')
		p++;
	if (*p == '\0') {
		*s = p;
		return NULL;
	}
	const char *start = p;
	while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
		p++;
	*len = (size_t)(p - start);
	*s = p;
	return start;
}

/* Number of list elements in s. */
static size_t count_tokens(const char *s)
{
	size_t n = 0, len;
	while (next_token(&s, &len) != NULL)
		n++;
	return n;
}

/* Parse "allow" or "deny" (any case). */
int acl_parse_action(const char *s, enum acl_action *out, char *err, size_t errlen)
{
	if (strcasecmp(s, "allow") == 0) {
		*out = ACL_ACTION_ALLOW;
		return 0;
	}
	if (strcasecmp(s, "deny") == 0) {
		*out = ACL_ACTION_DENY;
		return 0;
	}
	snprintf(err, errlen, "expected allow or deny, got \"%.80s\"", s);
	return -1;
}

/* Parse a decimal port 1..65535 of exactly len bytes. */
static int parse_port(const char *p, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* Parse "80, 443, 8000-8100" into port ranges. */
int acl_parse_ports(const char *s, struct acl_port_range **out, size_t *n, char *err,
		    size_t errlen)
{
	size_t cnt = count_tokens(s), len, i = 0;
	if (cnt == 0) {
		snprintf(err, errlen, "expected ports like \"80, 443, 8000-8100\", got an empty list");
		return -1;
	}
	struct acl_port_range *r = calloc(cnt, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *tok;
	while ((tok = next_token(&s, &len)) != NULL) {
		const char *dash = memchr(tok, '-', len);
		int bad;
		if (dash == NULL) {
			bad = parse_port(tok, len, &r[i].lo);
			r[i].hi = r[i].lo;
		} else {
			bad = parse_port(tok, (size_t)(dash - tok), &r[i].lo) |
			      parse_port(dash + 1, len - (size_t)(dash - tok) - 1, &r[i].hi);
			if (bad == 0 && r[i].lo > r[i].hi)
				bad = -1;
		}
		if (bad) {
			snprintf(err, errlen,
				 "expected a port or range LOW-HIGH within 1-65535, got \"%.*s\"",
				 (int)(len > 80 ? 80 : len), tok);
			free(r);
			return -1;
		}
		i++;
	}
	*out = r;
	*n = cnt;
	return 0;
}

/* Free an array of strings made by acl_parse_names/acl_parse_methods. */
void acl_names_free(char **names, size_t n)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Split s into an array of strings; for methods, require RFC 9110 token
 * characters and uppercase them. */
static int parse_list(const char *s, char ***out, size_t *n, bool method, const char *what,
		      char *err, size_t errlen)
{
	size_t cnt = count_tokens(s), len, i = 0;
	if (cnt == 0) {
		snprintf(err, errlen, "expected %s, got an empty list", what);
		return -1;
	}
	char **v = calloc(cnt, sizeof(*v));
	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *tok;
	while ((tok = next_token(&s, &len)) != NULL) {
		if (method && strspn(tok, "!#$%&'*+-.^_`|~0123456789"
					  "abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ") < len) {
			snprintf(err, errlen, "expected %s, got \"%.*s\"", what,
				 (int)(len > 80 ? 80 : len), tok);
			acl_names_free(v, i);
			return -1;
		}
		v[i] = strndup(tok, len);
		if (v[i] == NULL) {
			snprintf(err, errlen, "out of memory");
			acl_names_free(v, i);
			return -1;
		}
		if (method)
			for (char *c = v[i]; *c; c++)
				if (*c >= 'a' && *c <= 'z')
					*c = (char)(*c - 'a' + 'A');
		i++;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* Parse "GET, HEAD, CONNECT": tokens, stored uppercase. */
int acl_parse_methods(const char *s, char ***out, size_t *n, char *err, size_t errlen)
{
	return parse_list(s, out, n, true, "HTTP methods like \"GET, HEAD, CONNECT\"", err, errlen);
}

/* Parse "alice, bob" (users or groups). */
int acl_parse_names(const char *s, char ***out, size_t *n, char *err, size_t errlen)
{
	return parse_list(s, out, n, false, "names like \"alice, bob\"", err, errlen);
}

/* Parse "10.0.0.0/8, 2001:db8::/32" into CIDR ranges. */
int acl_parse_cidrs(const char *s, struct cidr **out, size_t *n, char *err, size_t errlen)
{
	size_t cnt = count_tokens(s), len, i = 0;
	if (cnt == 0) {
		snprintf(err, errlen, "expected addresses like \"10.0.0.0/8, 2001:db8::/32\", got an empty list");
		return -1;
	}
	struct cidr *v = calloc(cnt, sizeof(*v));
	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *tok;
	while ((tok = next_token(&s, &len)) != NULL) {
		char buf[64];
		if (len >= sizeof(buf) || (memcpy(buf, tok, len), buf[len] = '\0',
					   cidr_parse(buf, &v[i]) < 0)) {
			snprintf(err, errlen,
				 "expected an address or CIDR like 10.0.0.0/8 (host bits clear), got \"%.*s\"",
				 (int)(len > 80 ? 80 : len), tok);
			free(v);
			return -1;
		}
		i++;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* Parse "example.com, .example.org" into a new domain set. */
int acl_parse_domains(const char *s, struct domainset **out, char *err, size_t errlen)
{
	size_t len;
	if (count_tokens(s) == 0) {
		snprintf(err, errlen, "expected domains like \"example.com, .example.org\", got an empty list");
		return -1;
	}
	struct domainset *set = domainset_new();
	if (set == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	const char *tok;
	while ((tok = next_token(&s, &len)) != NULL) {
		char buf[DOMAINSET_NAME_MAX + 3];
		if (len >= sizeof(buf)) {
			snprintf(err, errlen, "expected a domain name, got \"%.40s...\" (too long)", tok);
			domainset_free(set);
			return -1;
		}
		memcpy(buf, tok, len);
		buf[len] = '\0';
		if (domainset_add(set, buf, err, errlen) < 0) {
			domainset_free(set);
			return -1;
		}
	}
	*out = set;
	return 0;
}

/* Parse "HH:MM" (hours 0..24, 24 only with :00) into minutes. */
static int parse_hhmm(const char *p, size_t len, unsigned *out)
{
	const char *colon = memchr(p, ':', len);
	if (colon == NULL)
		return -1;
	size_t hl = (size_t)(colon - p), ml = len - hl - 1;
	if (hl < 1 || hl > 2 || ml != 2)
		return -1;
	unsigned h = 0, m = 0;
	for (size_t i = 0; i < hl; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		h = h * 10 + (unsigned)(p[i] - '0');
	}
	for (size_t i = 0; i < 2; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return -1;
		m = m * 10 + (unsigned)(colon[1 + i] - '0');
	}
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -1;
	*out = h * 60 + m;
	return 0;
}

/* Parse a three-letter day name (any case); returns 0..6 or -1. */
static int parse_day(const char *p, size_t len)
{
	if (len != 3)
		return -1;
	for (int d = 0; d < 7; d++)
		if (strncasecmp(p, acl_day_names[d], 3) == 0)
			return d;
	return -1;
}

/* Parse "Mon-Fri,Sun" (spaces allowed around commas) into a day mask. */
static int parse_days(const char *p, size_t len, uint8_t *days, const char **why)
{
	*days = 0;
	const char *end = p + len;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
			p++;
		if (p == end)
			break;
		const char *q = p;
		while (q < end && *q != ',' && *q != ' ' && *q != '\t')
			q++;
		const char *dash = memchr(p, '-', (size_t)(q - p));
		int a, b;
		if (dash == NULL) {
			a = b = parse_day(p, (size_t)(q - p));
		} else {
			a = parse_day(p, (size_t)(dash - p));
			b = parse_day(dash + 1, (size_t)(q - dash - 1));
		}
		if (a < 0 || b < 0) {
			*why = "days are Mon Tue Wed Thu Fri Sat Sun, ranges like Mon-Fri";
			return -1;
		}
		for (int d = a;; d = (d + 1) % 7) { /* Fri-Mon wraps over the weekend */
			*days |= (uint8_t)(1u << d);
			if (d == b)
				break;
		}
		p = q;
	}
	if (*days == 0) {
		*why = "no days given";
		return -1;
	}
	return 0;
}

/* Parse "[DAYS] [HH:MM-HH:MM]" into a weekly window. */
int acl_parse_time(const char *s, struct acl_time *out, char *err, size_t errlen)
{
	const char *why = "";
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	struct acl_time t = { .days = 0x7f, .start = 0, .end = 1440 };
	size_t dayslen = len;
	if (memchr(s, ':', len) != NULL) {
		/* the time span is the last word */
		const char *span = s + len;
		while (span > s && span[-1] != ' ' && span[-1] != '\t')
			span--;
		size_t spanlen = (size_t)(s + len - span);
		const char *dash = memchr(span, '-', spanlen);
		unsigned a, b;
		if (dash == NULL || parse_hhmm(span, (size_t)(dash - span), &a) < 0 ||
		    parse_hhmm(dash + 1, spanlen - (size_t)(dash - span) - 1, &b) < 0) {
			why = "times are HH:MM-HH:MM, 00:00 to 24:00";
			goto bad;
		}
		if (a == 1440 || a == b) {
			why = "the window is empty (start equals end, or starts at 24:00)";
			goto bad;
		}
		t.start = (uint16_t)a;
		t.end = (uint16_t)(b == 0 ? 1440 : b); /* "22:00-00:00" ends at midnight */
		dayslen = (size_t)(span - s);
	}
	if (dayslen > 0 || len == 0) {
		if (parse_days(s, dayslen, &t.days, &why) < 0)
			goto bad;
	}
	*out = t;
	return 0;
bad:
	snprintf(err, errlen,
		 "expected a time window like \"Mon-Fri 08:00-18:00\", \"Sat,Sun\" or \"22:00-06:00\", got \"%.80s\": %s",
		 s, why);
	return -1;
}

/* Compile a URL regular expression (PCRE2, JIT when available). */
int acl_parse_url_regex(const char *s, struct acl_regex **out, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	struct acl_regex *re = calloc(1, sizeof(*re));
	if (re == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	re->code = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (re->code == NULL) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errlen, "expected a PCRE2 regular expression, got \"%.80s\": %s at offset %zu",
			 s, (const char *)msg, (size_t)off);
		free(re);
		return -1;
	}
	(void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
	re->mctx = pcre2_match_context_create(NULL);
	if (re->mctx == NULL) {
		acl_regex_free(re);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pcre2_set_match_limit(re->mctx, ACL_REGEX_MATCH_LIMIT);
	*out = re;
	return 0;
}

/* Free a compiled URL regex (NULL is fine). */
void acl_regex_free(struct acl_regex *re)
{
	if (re == NULL)
		return;
	pcre2_match_context_free(re->mctx);
	pcre2_code_free(re->code);
	free(re);
}

/* Free everything a rule owns and zero it. */
void acl_rule_free(struct acl_rule *rule)
{
	free(rule->name);
	free(rule->src);
	acl_names_free(rule->users, rule->n_users);
	acl_names_free(rule->groups, rule->n_groups);
	acl_names_free(rule->methods, rule->n_methods);
	domainset_free(rule->domains);
	domainset_free(rule->domain_file);
	free(rule->domain_file_path);
	free(rule->dst);
	free(rule->ports);
	acl_regex_free(rule->url_regex);
	memset(rule, 0, sizeof(*rule));
}

/* Free every rule and zero the acl. */
void acl_free(struct acl *a)
{
	for (size_t i = 0; i < a->n_rules; i++)
		acl_rule_free(&a->rules[i]);
	free(a->rules);
	memset(a, 0, sizeof(*a));
}

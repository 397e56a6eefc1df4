/* test_acl.c - policy engine: rules, two-phase decisions, private addresses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

enum { SUN, MON, TUE, WED, THU, FRI, SAT };
#define HM(h, m) ((h) * 60 + (m))

/* A sockaddr for an address literal (v4 or v6). */
static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address %s", s);
	return ss;
}

/* ------------------------------------------------------------ addresses --- */

/* Every private range, its edges, and the IPv4-embedding IPv6 forms. */
static void test_private_address(void **state)
{
	(void)state;
	static const struct {
		const char *a;
		bool want;
	} rows[] = {
		{ "127.0.0.1", true },         { "127.255.255.254", true },
		{ "10.0.0.0", true },          { "10.255.255.255", true },
		{ "11.0.0.0", false },         { "9.255.255.255", false },
		{ "172.16.0.1", true },        { "172.31.255.255", true },
		{ "172.15.255.255", false },   { "172.32.0.0", false },
		{ "192.168.0.1", true },       { "192.169.0.1", false },
		{ "169.254.169.254", true },   { "169.254.0.1", true },
		{ "169.255.0.1", false },      { "100.64.0.1", true },
		{ "100.127.255.255", true },   { "100.128.0.0", false },
		{ "100.63.255.255", false },   { "0.0.0.0", true },
		{ "0.1.2.3", true },           { "224.0.0.1", true },
		{ "239.255.255.255", true },   { "240.0.0.1", true },
		{ "255.255.255.255", true },   { "8.8.8.8", false },
		{ "1.1.1.1", false },          { "223.255.255.255", false },
		{ "93.184.216.34", false },
		{ "::1", true },               { "::", true },
		{ "fe80::1", true },           { "febf:ffff::1", true },
		{ "fec0::1", true },           { "fc00::1", true },
		{ "fdff:ffff::1", true },      { "ff02::1", true },
		{ "ff0e::1", true },           { "2001:db8::1", false },
		{ "2606:4700::1111", false },  { "fbff::1", false },
		{ "::ffff:127.0.0.1", true },  { "::ffff:10.1.2.3", true },
		{ "::ffff:169.254.169.254", true }, { "::ffff:8.8.8.8", false },
		{ "::127.0.0.1", true },       { "::8.8.8.8", false },
		{ "::ffff:0:127.0.0.1", true }, { "::ffff:0:8.8.8.8", false },
		{ "64:ff9b::7f00:1", true },   { "64:ff9b::a9fe:a9fe", true },
		{ "64:ff9b::808:808", false }, { "64:ff9b:1::1", true },
		{ "2002:7f00:1::", true },     { "2002:c0a8:101::1", true },
		{ "2002:808:808::1", false },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct sockaddr_storage ss = addr(rows[i].a);
		bool got = acl_private_address((struct sockaddr *)&ss);
		if (got != rows[i].want)
			fail_msg("acl_private_address(%s): got %d, want %d", rows[i].a, got,
				 rows[i].want);
	}
	struct sockaddr unix_sa = { .sa_family = AF_UNIX };
	assert_true(acl_private_address(&unix_sa));
}

/* Decimal, octal, hex and shortened IPv4 spellings. */
static void test_ipv4_loose(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int want;
		const char *addr;
	} rows[] = {
		{ "127.0.0.1", 1, "127.0.0.1" },     { "8.8.8.8", 1, "8.8.8.8" },
		{ "0.0.0.0", 1, "0.0.0.0" },         { "2130706433", 2, "127.0.0.1" },
		{ "0177.0.0.1", 2, "127.0.0.1" },    { "0x7f.1", 2, "127.0.0.1" },
		{ "0x7F000001", 2, "127.0.0.1" },    { "127.1", 2, "127.0.0.1" },
		{ "127.0.1", 2, "127.0.0.1" },       { "127.0.0.1.", 2, "127.0.0.1" },
		{ "0", 2, "0.0.0.0" },               { "0x", 2, "0.0.0.0" },
		{ "017700000001", 2, "127.0.0.1" },  { "10.0.0.010", 2, "10.0.0.8" },
		{ "169.254.43518", 2, "169.254.169.254" }, { "0xa9.0xfe.0xa9.0xfe", 2, "169.254.169.254" },
		{ "3232235777", 2, "192.168.1.1" },  { "4294967295", 2, "255.255.255.255" },
		{ "example.com", 0, NULL },          { "1.2.3.com", 0, NULL },
		{ "localhost", 0, NULL },            { "0x7f.example", 0, NULL },
		{ "123abc", 0, NULL },               { "a.0xg", 0, NULL },
		{ "1.2.3.256", -1, NULL },           { "256.1.1.1", -1, NULL },
		{ "1.2.3.4.5", -1, NULL },           { "4294967296", -1, NULL },
		{ "1.2.65536", -1, NULL },           { "08.1.1.1", -1, NULL },
		{ "0x1g.1", -1, NULL },              { "1..1", -1, NULL },
		{ "example.123", -1, NULL },         { ".1", -1, NULL },
		{ "99999999999999999999", -1, NULL },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct in_addr a = { 0 };
		int got = acl_parse_ipv4_loose(rows[i].in, &a);
		if (got != rows[i].want)
			fail_msg("acl_parse_ipv4_loose(%s): got %d, want %d", rows[i].in, got,
				 rows[i].want);
		if (rows[i].addr != NULL) {
			char buf[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &a, buf, sizeof(buf));
			if (strcmp(buf, rows[i].addr) != 0)
				fail_msg("acl_parse_ipv4_loose(%s): got %s, want %s", rows[i].in, buf,
					 rows[i].addr);
		}
	}
}

/* -------------------------------------------------------------- parsing --- */

/* Port lists and ranges, good and bad. */
static void test_parse_ports(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int n; /* -1 = error */
		unsigned lo0, hi0, lo_last, hi_last;
	} rows[] = {
		{ "80", 1, 80, 80, 80, 80 },
		{ "80, 443, 8000-8100", 3, 80, 80, 8000, 8100 },
		{ "80,443", 2, 80, 80, 443, 443 },
		{ "  1-65535 ", 1, 1, 65535, 1, 65535 },
		{ "443 8443", 2, 443, 443, 8443, 8443 },
		{ "5-5", 1, 5, 5, 5, 5 },
		{ "", -1, 0, 0, 0, 0 },        { " , ", -1, 0, 0, 0, 0 },
		{ "0", -1, 0, 0, 0, 0 },       { "65536", -1, 0, 0, 0, 0 },
		{ "http", -1, 0, 0, 0, 0 },    { "100-90", -1, 0, 0, 0, 0 },
		{ "80-", -1, 0, 0, 0, 0 },     { "-80", -1, 0, 0, 0, 0 },
		{ "1-2-3", -1, 0, 0, 0, 0 },   { "+80", -1, 0, 0, 0, 0 },
		{ "080000", -1, 0, 0, 0, 0 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct acl_port_range *r = NULL;
		size_t n = 0;
		char err[256] = "";
		int rc = acl_parse_ports(rows[i].in, &r, &n, err, sizeof(err));
		if (rows[i].n < 0) {
			if (rc == 0)
				fail_msg("ports(%s): got %zu ranges, want error", rows[i].in, n);
			if (strstr(err, "expected") == NULL || strstr(err, "got") == NULL)
				fail_msg("ports(%s): got message \"%s\", want \"expected ... got ...\"",
					 rows[i].in, err);
			continue;
		}
		if (rc != 0 || n != (size_t)rows[i].n)
			fail_msg("ports(%s): got rc %d n %zu (%s), want %d ranges", rows[i].in, rc, n,
				 err, rows[i].n);
		if (r[0].lo != rows[i].lo0 || r[0].hi != rows[i].hi0 ||
		    r[n - 1].lo != rows[i].lo_last || r[n - 1].hi != rows[i].hi_last)
			fail_msg("ports(%s): got %u-%u..%u-%u", rows[i].in, r[0].lo, r[0].hi,
				 r[n - 1].lo, r[n - 1].hi);
		free(r);
	}
}

/* Actions, methods, names, CIDRs, domains and regex parsing. */
static void test_parse_misc(void **state)
{
	(void)state;
	char err[256];
	enum acl_action act;
	assert_int_equal(acl_parse_action("allow", &act, err, sizeof(err)), 0);
	assert_int_equal(act, ACL_ACTION_ALLOW);
	assert_int_equal(acl_parse_action("DENY", &act, err, sizeof(err)), 0);
	assert_int_equal(act, ACL_ACTION_DENY);
	assert_int_equal(acl_parse_action("permit", &act, err, sizeof(err)), -1);
	assert_string_equal(err, "expected allow or deny, got \"permit\"");

	char **m;
	size_t n;
	assert_int_equal(acl_parse_methods("GET, head,CONNECT  PROPFIND", &m, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_string_equal(m[0], "GET");
	assert_string_equal(m[1], "HEAD");
	assert_string_equal(m[3], "PROPFIND");
	acl_names_free(m, n);
	assert_int_equal(acl_parse_methods("GET, PO(ST", &m, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "got \"PO(ST\""));
	assert_int_equal(acl_parse_methods("", &m, &n, err, sizeof(err)), -1);

	assert_int_equal(acl_parse_names("alice, bob", &m, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_string_equal(m[1], "bob");
	acl_names_free(m, n);

	struct cidr *c;
	assert_int_equal(acl_parse_cidrs("10.0.0.0/8, 2001:db8::/32 192.0.2.1", &c, &n, err,
					 sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(c[1].family, AF_INET6);
	free(c);
	assert_int_equal(acl_parse_cidrs("10.1.2.3/8", &c, &n, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "got \"10.1.2.3/8\""));
	assert_int_equal(acl_parse_cidrs("example.com", &c, &n, err, sizeof(err)), -1);

	struct domainset *d;
	assert_int_equal(acl_parse_domains("example.com, .example.org", &d, err, sizeof(err)), 0);
	assert_int_equal(domainset_count(d), 2);
	domainset_free(d);
	assert_int_equal(acl_parse_domains("example.com, b\xc3\xbc" "cher.de", &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "non-ASCII"));

	struct acl_regex *re;
	assert_int_equal(acl_parse_url_regex("^http://[^/]*/ads/", &re, err, sizeof(err)), 0);
	acl_regex_free(re);
	assert_int_equal(acl_parse_url_regex("(unclosed", &re, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected a PCRE2 regular expression, got \"(unclosed\""));
}

/* Time window syntax. */
static void test_parse_time(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok;
		uint8_t days;
		unsigned start, end;
	} rows[] = {
		{ "Mon-Fri 08:00-18:00", 0, 0x3e, HM(8, 0), HM(18, 0) },
		{ "Sat,Sun", 0, 0x41, 0, 1440 },
		{ "sat, SUN", 0, 0x41, 0, 1440 },
		{ "22:00-06:00", 0, 0x7f, HM(22, 0), HM(6, 0) },
		{ "Fri-Mon 9:30-17:45", 0, 0x63, HM(9, 30), HM(17, 45) },
		{ "Mon,Wed,Fri 00:00-24:00", 0, 0x2a, 0, 1440 },
		{ "Tue 22:00-00:00", 0, 0x04, HM(22, 0), 1440 },
		{ "  Wed  ", 0, 0x08, 0, 1440 },
		{ "", -1, 0, 0, 0 },              { "Mon-Fry", -1, 0, 0, 0 },
		{ "Monday", -1, 0, 0, 0 },        { "Mon 8-18", -1, 0, 0, 0 },
		{ "Mon 08:00-25:00", -1, 0, 0, 0 }, { "Mon 08:60-09:00", -1, 0, 0, 0 },
		{ "08:00-08:00", -1, 0, 0, 0 },   { "24:00-06:00", -1, 0, 0, 0 },
		{ "Mon 08:00", -1, 0, 0, 0 },     { "Mon 8:0-9:00", -1, 0, 0, 0 },
		{ "Mon 08:00-18:00 x", -1, 0, 0, 0 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct acl_time t;
		char err[256] = "";
		int rc = acl_parse_time(rows[i].in, &t, err, sizeof(err));
		if (rc != rows[i].ok)
			fail_msg("time(%s): got rc %d (%s), want %d", rows[i].in, rc, err, rows[i].ok);
		if (rc < 0) {
			if (strstr(err, "expected") == NULL || strstr(err, "got") == NULL)
				fail_msg("time(%s): got message \"%s\"", rows[i].in, err);
			continue;
		}
		if (t.days != rows[i].days || t.start != rows[i].start || t.end != rows[i].end)
			fail_msg("time(%s): got days %#x %u-%u, want %#x %u-%u", rows[i].in, t.days,
				 t.start, t.end, rows[i].days, rows[i].start, rows[i].end);
	}
}

/* ---------------------------------------------------------- rule tables --- */

/* A rule written as config strings (NULL = matcher absent). */
struct spec {
	const char *name, *action, *src, *users, *groups, *methods, *domains, *domain_file,
		*dst, *ports, *url_regex, *time;
};

/* Build one rule from its config strings; any parse error fails the test. */
static void build_rule(const struct spec *s, struct acl_rule *r)
{
	char err[512];
	memset(r, 0, sizeof(*r));
	r->name = strdup(s->name);
	if (acl_parse_action(s->action, &r->action, err, sizeof(err)) < 0 ||
	    (s->src && acl_parse_cidrs(s->src, &r->src, &r->n_src, err, sizeof(err)) < 0) ||
	    (s->users && acl_parse_names(s->users, &r->users, &r->n_users, err, sizeof(err)) < 0) ||
	    (s->groups && acl_parse_names(s->groups, &r->groups, &r->n_groups, err, sizeof(err)) < 0) ||
	    (s->methods && acl_parse_methods(s->methods, &r->methods, &r->n_methods, err, sizeof(err)) < 0) ||
	    (s->domains && acl_parse_domains(s->domains, &r->domains, err, sizeof(err)) < 0) ||
	    (s->dst && acl_parse_cidrs(s->dst, &r->dst, &r->n_dst, err, sizeof(err)) < 0) ||
	    (s->ports && acl_parse_ports(s->ports, &r->ports, &r->n_ports, err, sizeof(err)) < 0) ||
	    (s->url_regex && acl_parse_url_regex(s->url_regex, &r->url_regex, err, sizeof(err)) < 0) ||
	    (s->time && acl_parse_time(s->time, &r->time, err, sizeof(err)) < 0))
		fail_msg("rule %s: %s", s->name, err);
	r->has_time = s->time != NULL;
	if (s->domain_file) {
		r->domain_file = domainset_load(s->domain_file, err, sizeof(err));
		if (r->domain_file == NULL)
			fail_msg("rule %s: %s", s->name, err);
	}
}

/* Build an acl from n specs. */
static void build_acl(struct acl *a, const struct spec *specs, size_t n, enum acl_action dflt,
		      enum acl_action private_dst)
{
	memset(a, 0, sizeof(*a));
	a->rules = calloc(n ? n : 1, sizeof(*a->rules));
	assert_non_null(a->rules);
	for (size_t i = 0; i < n; i++)
		build_rule(&specs[i], &a->rules[i]);
	a->n_rules = n;
	a->default_action = dflt;
	a->private_destinations = private_dst;
}

/* Groups for the tests: staff = alice, carol; admins = dave. */
static bool test_in_group(const void *ctx, const char *group, const char *user)
{
	(void)ctx;
	if (strcmp(group, "staff") == 0)
		return strcmp(user, "alice") == 0 || strcmp(user, "carol") == 0;
	if (strcmp(group, "admins") == 0)
		return strcmp(user, "dave") == 0;
	return false;
}

/* One request and the decision it must get. */
struct row {
	const char *client, *user, *method, *host;
	unsigned port;
	const char *url;
	int weekday, minute;
	const char *dst;     /* NULL = before DNS */
	enum acl_result want;
	const char *rule;    /* deciding rule, NULL = default/none */
};

static const char *const result_names[] = { "DENY", "ALLOW", "NEED_DST" };

/* Run every row against the acl. */
static void run_rows(const struct acl *a, const struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct row *w = &rows[i];
		struct sockaddr_storage client = addr(w->client ? w->client : "192.0.2.10");
		struct sockaddr_storage dst;
		if (w->dst)
			dst = addr(w->dst);
		struct acl_request r = {
			.client = (struct sockaddr *)&client,
			.user = w->user,
			.method = w->method ? w->method : "GET",
			.host = w->host,
			.port = (uint16_t)(w->port ? w->port : 80),
			.url = w->url,
			.weekday = w->weekday,
			.minute = w->minute,
			.dst = w->dst ? (struct sockaddr *)&dst : NULL,
			.in_group = test_in_group,
		};
		const struct acl_rule *rule = (const struct acl_rule *)1;
		enum acl_result got = acl_check(a, &r, &rule);
		const char *gotname = rule ? rule->name : "(none)";
		const char *wantname = w->rule ? w->rule : "(none)";
		if (got != w->want || strcmp(gotname, wantname) != 0)
			fail_msg("row %zu (%s %s:%u user=%s dst=%s): got %s by %s, want %s by %s", i,
				 r.method, w->host, r.port, w->user ? w->user : "-",
				 w->dst ? w->dst : "-", result_names[got], gotname,
				 result_names[w->want], wantname);
	}
}

/* Order, AND of matchers, OR within lists, default action, bad hosts. */
static void test_first_match_and_default(void **state)
{
	(void)state;
	static const struct spec specs[] = {
		{ .name = "blocked", .action = "deny", .domains = ".bad.test" },
		{ .name = "staff", .action = "allow", .groups = "staff", .ports = "80, 443, 8000-8100" },
		{ .name = "office", .action = "allow", .src = "10.0.0.0/8, 2001:db8::/32",
		  .methods = "GET, HEAD, CONNECT", .domains = "example.com, .example.org" },
		{ .name = "bob", .action = "allow", .users = "bob" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	static const struct row rows[] = {
		/* first match wins: blocked before staff */
		{ .user = "alice", .host = "www.bad.test", .want = ACL_DENY, .rule = "blocked" },
		{ .user = "alice", .host = "BAD.test.", .want = ACL_DENY, .rule = "blocked" },
		{ .user = "alice", .host = "notbad.test", .want = ACL_ALLOW, .rule = "staff" },
		{ .user = "carol", .host = "x.test", .port = 8100, .want = ACL_ALLOW, .rule = "staff" },
		{ .user = "carol", .host = "x.test", .port = 8101, .want = ACL_DENY },
		{ .user = "carol", .host = "x.test", .port = 7999, .want = ACL_DENY },
		{ .user = "carol", .host = "x.test", .port = 443, .method = "CONNECT", .want = ACL_ALLOW, .rule = "staff" },
		{ .user = "dave", .host = "x.test", .want = ACL_DENY },
		{ .user = NULL, .host = "x.test", .want = ACL_DENY },
		/* office: src AND methods AND domains */
		{ .client = "10.1.2.3", .host = "example.com", .want = ACL_ALLOW, .rule = "office" },
		{ .client = "10.1.2.3", .host = "www.example.com", .want = ACL_DENY },
		{ .client = "10.1.2.3", .host = "www.example.org", .want = ACL_ALLOW, .rule = "office" },
		{ .client = "10.1.2.3", .host = "example.org", .method = "HEAD", .want = ACL_ALLOW, .rule = "office" },
		{ .client = "10.1.2.3", .host = "example.org", .method = "POST", .want = ACL_DENY },
		{ .client = "10.1.2.3", .host = "example.org", .method = "get", .want = ACL_DENY },
		{ .client = "11.0.0.1", .host = "example.org", .want = ACL_DENY },
		{ .client = "::ffff:10.9.9.9", .host = "example.org", .want = ACL_ALLOW, .rule = "office" },
		{ .client = "2001:db8:1::5", .host = "example.org", .want = ACL_ALLOW, .rule = "office" },
		{ .client = "2001:db9::5", .host = "example.org", .want = ACL_DENY },
		/* an IP literal never matches a domain matcher */
		{ .client = "10.1.2.3", .host = "93.184.216.34", .want = ACL_DENY },
		/* users */
		{ .user = "bob", .host = "anything.test", .want = ACL_ALLOW, .rule = "bob" },
		{ .user = "Bob", .host = "anything.test", .want = ACL_DENY },
		{ .user = "bob", .host = "a.bad.test", .want = ACL_DENY, .rule = "blocked" },
		/* invalid hosts are refused before any rule */
		{ .user = "bob", .host = "", .want = ACL_DENY },
		{ .user = "bob", .host = "a..b", .want = ACL_DENY },
		{ .user = "bob", .host = "evil.test%00.good", .want = ACL_DENY },
		{ .user = "bob", .host = "b\xc3\xbc" "cher.de", .want = ACL_DENY },
		{ .user = "bob", .host = "1.2.3.256", .want = ACL_DENY },
		{ .user = "bob", .host = "[::1", .want = ACL_DENY },
		{ .user = "bob", .host = "xn--bcher-kva.de", .want = ACL_ALLOW, .rule = "bob" },
	};
	run_rows(&a, rows, N(rows));

	/* default allow */
	a.default_action = ACL_ACTION_ALLOW;
	static const struct row rows2[] = {
		{ .host = "x.test", .want = ACL_ALLOW },
		{ .host = "x.bad.test", .want = ACL_DENY, .rule = "blocked" },
	};
	run_rows(&a, rows2, N(rows2));

	/* reasons */
	enum acl_reason why;
	struct sockaddr_storage client = addr("192.0.2.1");
	struct acl_request r = { .client = (struct sockaddr *)&client, .method = "GET",
				 .host = "a..b", .port = 80 };
	assert_int_equal(acl_check_reason(&a, &r, NULL, &why), ACL_DENY);
	assert_int_equal(why, ACL_REASON_BAD_HOST);
	r.host = "x.test";
	assert_int_equal(acl_check_reason(&a, &r, NULL, &why), ACL_ALLOW);
	assert_int_equal(why, ACL_REASON_DEFAULT);
	assert_string_equal(acl_reason_str(ACL_REASON_PRIVATE_DST), "private destination");
	acl_free(&a);

	/* no rules at all */
	build_acl(&a, NULL, 0, ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	static const struct row rows3[] = { { .host = "x.test", .want = ACL_DENY } };
	run_rows(&a, rows3, N(rows3));
	acl_free(&a);
}

/* A rule with a domain list file. */
static void test_domain_file_rule(void **state)
{
	(void)state;
	char path[] = "/tmp/test_acl_domains.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char text[] = "# blocked\nAds.Example.com\ntracker.test.\nxn--80ak6aa92e.com\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	const struct spec specs[] = {
		{ .name = "blocklist", .action = "deny", .domain_file = path },
		{ .name = "all", .action = "allow" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	unlink(path);
	static const struct row rows[] = {
		{ .host = "ads.example.com", .want = ACL_DENY, .rule = "blocklist" },
		{ .host = "x.y.ADS.example.com.", .want = ACL_DENY, .rule = "blocklist" },
		{ .host = "example.com", .want = ACL_ALLOW, .rule = "all" },
		{ .host = "tracker.test", .want = ACL_DENY, .rule = "blocklist" },
		{ .host = "eviltracker.test", .want = ACL_ALLOW, .rule = "all" },
		{ .host = "www.xn--80ak6aa92e.com", .want = ACL_DENY, .rule = "blocklist" },
		{ .host = "tracker.test", .method = "CONNECT", .port = 443, .want = ACL_DENY, .rule = "blocklist" },
	};
	run_rows(&a, rows, N(rows));
	acl_free(&a);
}

/* Windows at their edges, weekends, wrap past midnight. */
static void test_time_rules(void **state)
{
	(void)state;
	static const struct spec specs[] = {
		{ .name = "work", .action = "allow", .users = "alice", .time = "Mon-Fri 08:00-18:00" },
		{ .name = "weekend", .action = "allow", .users = "bob", .time = "Sat,Sun" },
		{ .name = "night", .action = "allow", .users = "carol", .time = "22:00-06:00" },
		{ .name = "friday-night", .action = "allow", .users = "dave", .time = "Fri 22:00-06:00" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	static const struct row rows[] = {
		{ .user = "alice", .host = "x.test", .weekday = MON, .minute = HM(8, 0), .want = ACL_ALLOW, .rule = "work" },
		{ .user = "alice", .host = "x.test", .weekday = MON, .minute = HM(7, 59), .want = ACL_DENY },
		{ .user = "alice", .host = "x.test", .weekday = FRI, .minute = HM(17, 59), .want = ACL_ALLOW, .rule = "work" },
		{ .user = "alice", .host = "x.test", .weekday = FRI, .minute = HM(18, 0), .want = ACL_DENY },
		{ .user = "alice", .host = "x.test", .weekday = SAT, .minute = HM(12, 0), .want = ACL_DENY },
		{ .user = "alice", .host = "x.test", .weekday = SUN, .minute = HM(12, 0), .want = ACL_DENY },
		{ .user = "bob", .host = "x.test", .weekday = SAT, .minute = 0, .want = ACL_ALLOW, .rule = "weekend" },
		{ .user = "bob", .host = "x.test", .weekday = SUN, .minute = 1439, .want = ACL_ALLOW, .rule = "weekend" },
		{ .user = "bob", .host = "x.test", .weekday = MON, .minute = 0, .want = ACL_DENY },
		{ .user = "bob", .host = "x.test", .weekday = FRI, .minute = 1439, .want = ACL_DENY },
		{ .user = "carol", .host = "x.test", .weekday = WED, .minute = HM(22, 0), .want = ACL_ALLOW, .rule = "night" },
		{ .user = "carol", .host = "x.test", .weekday = WED, .minute = HM(5, 59), .want = ACL_ALLOW, .rule = "night" },
		{ .user = "carol", .host = "x.test", .weekday = WED, .minute = HM(6, 0), .want = ACL_DENY },
		{ .user = "carol", .host = "x.test", .weekday = WED, .minute = HM(21, 59), .want = ACL_DENY },
		{ .user = "carol", .host = "x.test", .weekday = SUN, .minute = HM(0, 0), .want = ACL_ALLOW, .rule = "night" },
		{ .user = "dave", .host = "x.test", .weekday = FRI, .minute = HM(23, 0), .want = ACL_ALLOW, .rule = "friday-night" },
		{ .user = "dave", .host = "x.test", .weekday = SAT, .minute = HM(3, 0), .want = ACL_ALLOW, .rule = "friday-night" },
		{ .user = "dave", .host = "x.test", .weekday = SAT, .minute = HM(6, 0), .want = ACL_DENY },
		{ .user = "dave", .host = "x.test", .weekday = FRI, .minute = HM(3, 0), .want = ACL_DENY },
		{ .user = "dave", .host = "x.test", .weekday = SAT, .minute = HM(23, 0), .want = ACL_DENY },
		{ .user = "dave", .host = "x.test", .weekday = FRI, .minute = -1, .want = ACL_DENY },
		{ .user = "dave", .host = "x.test", .weekday = 7, .minute = 0, .want = ACL_DENY },
	};
	run_rows(&a, rows, N(rows));
	acl_free(&a);
}

/* URL regex rules: plain HTTP only, fail closed for deny rules. */
static void test_url_regex(void **state)
{
	(void)state;
	static const struct spec specs[] = {
		{ .name = "no-exe", .action = "deny", .url_regex = "\\.exe(\\?|$)" },
		{ .name = "ads", .action = "deny", .url_regex = "(?i)^http://[^/]+/ads/" },
		{ .name = "pathological", .action = "deny", .url_regex = "^(a+)+$" },
		{ .name = "all", .action = "allow" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	static const struct row rows[] = {
		{ .host = "x.test", .url = "http://x.test/setup.exe", .want = ACL_DENY, .rule = "no-exe" },
		{ .host = "x.test", .url = "http://x.test/setup.exe?v=1", .want = ACL_DENY, .rule = "no-exe" },
		{ .host = "x.test", .url = "http://x.test/setup.exe.txt", .want = ACL_ALLOW, .rule = "all" },
		{ .host = "x.test", .url = "http://X.TEST/ADS/banner.png", .want = ACL_DENY, .rule = "ads" },
		{ .host = "x.test", .url = "http://x.test/news/ads/", .want = ACL_ALLOW, .rule = "all" },
		/* CONNECT never matches a url_regex rule */
		{ .host = "x.test", .method = "CONNECT", .port = 443, .url = NULL, .want = ACL_ALLOW, .rule = "all" },
		{ .host = "x.test", .method = "CONNECT", .port = 443, .url = "x.test:443/a.exe", .want = ACL_ALLOW, .rule = "all" },
		/* the backtracking budget runs out: a deny rule fails closed */
		{ .host = "x.test", .url = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
		  .want = ACL_DENY, .rule = "pathological" },
	};
	run_rows(&a, rows, N(rows));
	acl_free(&a);
}

/* The two-phase flow, dst rules, private destinations, IP literals. */
static void test_need_dst(void **state)
{
	(void)state;
	static const struct spec specs[] = {
		{ .name = "blocked", .action = "deny", .domains = ".bad.test" },
		{ .name = "no-bogon", .action = "deny", .dst = "203.0.113.0/24, 2001:db8:bad::/48" },
		{ .name = "intranet", .action = "allow", .src = "10.0.0.0/8", .dst = "10.20.0.0/16" },
		{ .name = "web", .action = "allow", .ports = "80, 443" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_DENY);
	static const struct row rows[] = {
		/* decided before DNS: no resolution needed */
		{ .host = "x.bad.test", .want = ACL_DENY, .rule = "blocked" },
		/* a dst rule is reached: resolve first */
		{ .host = "x.test", .want = ACL_NEED_DST },
		{ .host = "x.test", .dst = "203.0.113.7", .want = ACL_DENY, .rule = "no-bogon" },
		{ .host = "x.test", .dst = "2001:db8:bad::1", .want = ACL_DENY, .rule = "no-bogon" },
		{ .host = "x.test", .dst = "198.51.100.1", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "x.test", .dst = "198.51.100.1", .port = 22, .want = ACL_DENY },
		/* private destinations = deny: names resolving to private addresses */
		{ .host = "x.test", .dst = "127.0.0.1", .want = ACL_DENY },
		{ .host = "x.test", .dst = "169.254.169.254", .want = ACL_DENY },
		{ .host = "x.test", .dst = "::ffff:10.0.0.1", .want = ACL_DENY },
		{ .host = "x.test", .dst = "fd00::1", .want = ACL_DENY },
		{ .client = "10.1.1.1", .host = "intranet.test", .dst = "10.20.1.1", .want = ACL_DENY },
		/* IP literals are the destination: decided in phase one */
		{ .host = "203.0.113.9", .want = ACL_DENY, .rule = "no-bogon" },
		{ .host = "198.51.100.1", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "[2001:db8:bad::2]", .want = ACL_DENY, .rule = "no-bogon" },
		{ .host = "2001:db8:1::2", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "127.0.0.1", .want = ACL_DENY },
		{ .host = "localhost", .want = ACL_NEED_DST },
		{ .host = "2130706433", .want = ACL_DENY },
		{ .host = "0177.0.0.1", .want = ACL_DENY },
		{ .host = "0x7f.1", .want = ACL_DENY },
		{ .host = "127.1", .want = ACL_DENY },
		{ .host = "169.254.43518", .want = ACL_DENY },
		{ .host = "[::ffff:127.0.0.1]", .want = ACL_DENY },
		{ .host = "[::ffff:7f00:1]", .want = ACL_DENY },
		{ .host = "[::1]", .want = ACL_DENY },
		{ .host = "[64:ff9b::a9fe:a9fe]", .want = ACL_DENY },
		{ .host = "0xCB.0.113.1", .want = ACL_DENY, .rule = "no-bogon" },
		{ .host = "3325256705", .port = 443, .want = ACL_ALLOW, .rule = "web" }, /* 198.51.100.1 */
		{ .host = "[fe80::1%25eth0]", .want = ACL_DENY },
	};
	run_rows(&a, rows, N(rows));

	/* a would-be ALLOW before DNS still needs the address vetted */
	static const struct spec specs2[] = {
		{ .name = "web", .action = "allow", .ports = "80" },
	};
	struct acl b;
	build_acl(&b, specs2, N(specs2), ACL_ACTION_ALLOW, ACL_ACTION_DENY);
	static const struct row rows2[] = {
		{ .host = "x.test", .want = ACL_NEED_DST },
		{ .host = "x.test", .port = 22, .want = ACL_NEED_DST }, /* default allow */
		{ .host = "x.test", .dst = "8.8.8.8", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "x.test", .dst = "10.0.0.1", .want = ACL_DENY },
	};
	run_rows(&b, rows2, N(rows2));
	enum acl_reason why;
	const struct acl_rule *rule;
	struct sockaddr_storage client = addr("192.0.2.1"), dst = addr("192.168.1.1");
	struct acl_request r = { .client = (struct sockaddr *)&client, .method = "GET",
				 .host = "x.test", .port = 80, .dst = (struct sockaddr *)&dst };
	assert_int_equal(acl_check_reason(&b, &r, &rule, &why), ACL_DENY);
	assert_null(rule);
	assert_int_equal(why, ACL_REASON_PRIVATE_DST);
	r.dst = NULL;
	assert_int_equal(acl_check_reason(&b, &r, &rule, &why), ACL_NEED_DST);
	assert_int_equal(why, ACL_REASON_NEED_DST);

	/* private_destinations = allow: plain names are decided without DNS */
	b.private_destinations = ACL_ACTION_ALLOW;
	static const struct row rows3[] = {
		{ .host = "x.test", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "127.0.0.1", .want = ACL_ALLOW, .rule = "web" },
		{ .host = "x.test", .dst = "10.0.0.1", .want = ACL_ALLOW, .rule = "web" },
	};
	run_rows(&b, rows3, N(rows3));
	acl_free(&b);

	/* with private allowed, an intranet dst rule applies */
	a.private_destinations = ACL_ACTION_ALLOW;
	static const struct row rows4[] = {
		{ .client = "10.1.1.1", .host = "intranet.test", .port = 8080, .want = ACL_NEED_DST },
		{ .client = "10.1.1.1", .host = "intranet.test", .port = 8080, .dst = "10.20.1.1", .want = ACL_ALLOW, .rule = "intranet" },
		{ .client = "10.1.1.1", .host = "intranet.test", .port = 8080, .dst = "10.21.1.1", .want = ACL_DENY },
		{ .client = "192.0.2.1", .host = "intranet.test", .port = 8080, .dst = "10.20.1.1", .want = ACL_DENY },
		{ .client = "10.1.1.1", .host = "10.20.0.1", .port = 8080, .want = ACL_ALLOW, .rule = "intranet" },
	};
	run_rows(&a, rows4, N(rows4));
	acl_free(&a);
}

/* Group membership through the caller's callback. */
static void test_groups_callback(void **state)
{
	(void)state;
	static const struct spec specs[] = {
		{ .name = "admins", .action = "allow", .groups = "admins, nobody" },
		{ .name = "staff-web", .action = "allow", .groups = "staff", .methods = "GET" },
	};
	struct acl a;
	build_acl(&a, specs, N(specs), ACL_ACTION_DENY, ACL_ACTION_ALLOW);
	static const struct row rows[] = {
		{ .user = "dave", .host = "x.test", .method = "POST", .want = ACL_ALLOW, .rule = "admins" },
		{ .user = "alice", .host = "x.test", .want = ACL_ALLOW, .rule = "staff-web" },
		{ .user = "alice", .host = "x.test", .method = "POST", .want = ACL_DENY },
		{ .user = "eve", .host = "x.test", .want = ACL_DENY },
		{ .user = NULL, .host = "x.test", .want = ACL_DENY },
	};
	run_rows(&a, rows, N(rows));
	/* without a callback nobody is in any group */
	struct sockaddr_storage client = addr("192.0.2.1");
	struct acl_request r = { .client = (struct sockaddr *)&client, .user = "dave",
				 .method = "GET", .host = "x.test", .port = 80 };
	assert_int_equal(acl_check(&a, &r, NULL), ACL_DENY);
	acl_free(&a);
}

/* Run the acl tests. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_private_address),
		cmocka_unit_test(test_ipv4_loose),
		cmocka_unit_test(test_parse_ports),
		cmocka_unit_test(test_parse_misc),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_first_match_and_default),
		cmocka_unit_test(test_domain_file_rule),
		cmocka_unit_test(test_time_rules),
		cmocka_unit_test(test_url_regex),
		cmocka_unit_test(test_need_dst),
		cmocka_unit_test(test_groups_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

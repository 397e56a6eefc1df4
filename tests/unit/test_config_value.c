/* test_config_value.c - the config loader's pure parts, called directly:
 * the decimal parser (decimal.h), the value parsers and message helpers
 * (config_value.c), the key table (config_keys.c) and the [rule.NAME] key
 * table (config_rules.c). test_config.c tests them through whole files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "acl.h"
#include "cidr.h"
#include "config.h"
#include "config_keys.h"
#include "config_rules.h"
#include "config_value.h"
#include "decimal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- decimal.h --------------------------------------------------------------- */

static void test_decimal(void **state)
{
	static const struct {
		const char *s;
		uint64_t max;
		bool ok;
		uint64_t want;
	} cases[] = {
		{ "0", UINT64_MAX, true, 0 },
		{ "000123", UINT64_MAX, true, 123 },
		{ "18446744073709551615", UINT64_MAX, true, UINT64_MAX },
		{ "18446744073709551616", UINT64_MAX, false, 0 },
		{ "99999999999999999999", UINT64_MAX, false, 0 },
		{ "", UINT64_MAX, false, 0 },
		{ "1a", UINT64_MAX, false, 0 },
		{ "-1", UINT64_MAX, false, 0 },
		{ "+1", UINT64_MAX, false, 0 },
		{ " 1", UINT64_MAX, false, 0 },
		{ "65535", 65535, true, 65535 },
		{ "65536", 65535, false, 0 },
		{ "0000000000000000000065535", 65535, true, 65535 },
		{ "0", 0, true, 0 },
		{ "1", 0, false, 0 },
		{ "7", 7, true, 7 },
		{ "8", 7, false, 0 },
	};
	(void)state;

	for (size_t i = 0; i < N(cases); i++) {
		uint64_t v = 4242;
		bool ok = decimal_parse(cases[i].s, strlen(cases[i].s), cases[i].max, &v);

		if (ok != cases[i].ok || (ok && v != cases[i].want) || (!ok && v != 4242))
			fail_msg("decimal_parse(\"%s\", max %llu): got %d %llu", cases[i].s,
				 (unsigned long long)cases[i].max, ok, (unsigned long long)v);
	}
	/* only the first len bytes count */
	uint64_t v = 0;
	assert_true(decimal_parse("12x", 2, UINT64_MAX, &v));
	assert_int_equal(v, 12);
}

static void test_decimal_clamped(void **state)
{
	static const struct {
		const char *s;
		uint64_t max;
		bool ok;
		uint64_t want;
	} cases[] = {
		{ "0", 2147483648u, true, 0 },
		{ "2147483647", 2147483648u, true, 2147483647u },
		{ "2147483648", 2147483648u, true, 2147483648u },
		{ "2147483649", 2147483648u, true, 2147483648u },
		{ "99999999999999999999999999", 2147483648u, true, 2147483648u },
		{ "2147483647", INT32_MAX, true, INT32_MAX },
		{ "2147483648", INT32_MAX, true, INT32_MAX },
		{ "5", 0, true, 0 },
		{ "", INT32_MAX, false, 0 },
		{ "12 ", INT32_MAX, false, 0 },
		{ "99999999999999999999999999x", INT32_MAX, false, 0 },
	};
	(void)state;

	for (size_t i = 0; i < N(cases); i++) {
		uint64_t v = 4242;
		bool ok = decimal_parse_clamped(cases[i].s, strlen(cases[i].s), cases[i].max, &v);

		if (ok != cases[i].ok || (ok && v != cases[i].want) || (!ok && v != 4242))
			fail_msg("decimal_parse_clamped(\"%s\", max %llu): got %d %llu", cases[i].s,
				 (unsigned long long)cases[i].max, ok, (unsigned long long)v);
	}
}

/* ---- scalars ----------------------------------------------------------------- */

static void test_bool(void **state)
{
	static const char *const yes[] = { "yes", "YES", "true", "On", "1" };
	static const char *const no[] = { "no", "False", "OFF", "0" };
	static const char *const bad[] = { "", "y", "2", "yes ", "enable" };
	bool b;
	(void)state;

	for (size_t i = 0; i < N(yes); i++) {
		b = false;
		assert_int_equal(config_parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < N(no); i++) {
		b = true;
		assert_int_equal(config_parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < N(bad); i++)
		assert_int_equal(config_parse_bool(bad[i], &b), -1);
}

static void test_size(void **state)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t want;
		const char *printed; /* config_format_size of want */
	} cases[] = {
		{ "0", 0, 0, "0" },
		{ "1000", 0, 1000, "1000" },
		{ "1024", 0, 1024, "1K" },
		{ "64k", 0, 65536, "64K" },
		{ "16M", 0, 16u << 20, "16M" },
		{ "1g", 0, UINT64_C(1) << 30, "1G" },
		{ "1536K", 0, 1536 * 1024, "1536K" },
		{ "2048M", 0, UINT64_C(2) << 30, "2G" },
		{ "17179869183G", 0, UINT64_C(17179869183) << 30, "17179869183G" },
		{ "17179869184G", -1, 0, NULL }, /* 2^64: overflow */
		{ "18446744073709551616", -1, 0, NULL },
		{ "", -1, 0, NULL },
		{ "K", -1, 0, NULL },
		{ "1T", -1, 0, NULL },
		{ "1.5M", -1, 0, NULL },
		{ "-1", -1, 0, NULL },
		{ "1 K", -1, 0, NULL },
	};
	(void)state;

	for (size_t i = 0; i < N(cases); i++) {
		uint64_t v = 7;
		char buf[32];
		int rc = config_parse_size(cases[i].s, &v);

		if (rc != cases[i].rc || (rc == 0 && v != cases[i].want))
			fail_msg("config_parse_size(\"%s\"): got %d %llu", cases[i].s, rc,
				 (unsigned long long)v);
		if (rc != 0)
			continue;
		config_format_size(v, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].printed);
	}
}

static void test_duration(void **state)
{
	static const struct {
		const char *s;
		int rc;
		double want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "30", 0, 30 },
		{ "0.25", 0, 0.25 },
		{ "000012.500", 0, 12.5 },
		{ "999999999999", 0, 999999999999.0 },
		{ "1234567890123", -1, 0 }, /* more than 12 integer digits */
		{ "", -1, 0 },
		{ ".5", -1, 0 },
		{ "1.", -1, 0 },
		{ "1.5.2", -1, 0 },
		{ "1e3", -1, 0 },
		{ "-1", -1, 0 },
		{ "1,5", -1, 0 },
		{ " 1", -1, 0 },
	};
	(void)state;

	for (size_t i = 0; i < N(cases); i++) {
		double d = -1;
		int rc = config_parse_duration(cases[i].s, &d);

		if (rc != cases[i].rc || (rc == 0 && d != cases[i].want))
			fail_msg("config_parse_duration(\"%s\"): got %d %g", cases[i].s, rc, d);
	}
}

/* ---- messages ---------------------------------------------------------------- */

static void test_quote(void **state)
{
	char q[96], small[8], tiny[7], none[4] = "xyz";
	char long_in[100];
	(void)state;

	config_quote("plain", q, sizeof(q));
	assert_string_equal(q, "\"plain\"");
	config_quote("a\"b\\c\td\x7f", q, sizeof(q));
	assert_string_equal(q, "\"a\\\"b\\\\c\\x09d\\x7f\"");
	memset(long_in, 'x', sizeof(long_in) - 1);
	long_in[sizeof(long_in) - 1] = '\0';
	config_quote(long_in, q, sizeof(q));
	assert_int_equal(strlen(q), 1 + CONFIG_QUOTE_MAX + 3 + 1); /* cut at 60, "..." */
	assert_memory_equal(q + 1 + CONFIG_QUOTE_MAX, "...\"", 4);
	config_quote("abcdefgh", small, sizeof(small));
	assert_string_equal(small, "\"abcd\"");
	config_quote("abcdefgh", tiny, sizeof(tiny));
	assert_string_equal(tiny, "");
	config_quote("abc", none, 0);
	assert_string_equal(none, "xyz");
}

static void test_typo(void **state)
{
	(void)state;
	assert_int_equal(config_edit_distance("listen", "listen"), 0);
	assert_int_equal(config_edit_distance("lisen", "listen"), 1);
	assert_int_equal(config_edit_distance("", "abc"), 3);
	assert_int_equal(config_edit_distance("kitten", "sitting"), 3);
	assert_true(config_edit_distance("a", "b") < config_edit_distance("a", "bcd"));
	char big[70];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_true(config_edit_distance(big, "a") > 1000);
	assert_int_equal(config_typo_budget("dst"), 1);
	assert_int_equal(config_typo_budget("listen"), 2);
	assert_int_equal(config_typo_budget("resolv_c"), 2);
	assert_int_equal(config_typo_budget("idle_timeout"), 3);
}

/* ---- lists ------------------------------------------------------------------- */

static void test_list_next(void **state)
{
	const char *p = " a,b ,, c\td,\n";
	char item[8];
	bool toolong;
	const char *want[] = { "a", "b", "c", "d" };
	(void)state;

	for (size_t i = 0; i < N(want); i++) {
		assert_true(config_list_next(&p, item, sizeof(item), &toolong));
		assert_string_equal(item, want[i]);
		assert_false(toolong);
	}
	assert_false(config_list_next(&p, item, sizeof(item), &toolong));

	p = "1234567890, x";
	assert_true(config_list_next(&p, item, sizeof(item), &toolong));
	assert_true(toolong);
	assert_string_equal(item, "1234567"); /* cut to itemlen - 1 */
	assert_true(config_list_next(&p, item, sizeof(item), &toolong));
	assert_false(toolong);
	assert_string_equal(item, "x");

	p = " , ,";
	assert_false(config_list_next(&p, item, sizeof(item), &toolong));
}

static void test_listen(void **state)
{
	struct config_listen *l = NULL;
	size_t n = 0;
	char why[256];
	(void)state;

	assert_int_equal(config_parse_listen("127.0.0.1:3128, [::1]:0080 host-a.example:0 "
					     "[::]:0,[::]:0", &l, &n, why, sizeof(why)), 0);
	assert_int_equal(n, 5);
	assert_string_equal(l[0].host, "127.0.0.1");
	assert_string_equal(l[0].port, "3128");
	assert_string_equal(l[1].host, "::1");
	assert_string_equal(l[1].port, "80"); /* leading zeros dropped */
	assert_string_equal(l[2].host, "host-a.example");
	assert_string_equal(l[4].port, "0"); /* port 0 may repeat */
	config_listen_free(l, n);

	static const struct {
		const char *val, *why;
	} bad[] = {
		{ "", "expected at least one host:port, e.g. 127.0.0.1:3128" },
		{ " , ", "expected at least one host:port, e.g. 127.0.0.1:3128" },
		{ "127.0.0.1", "\"127.0.0.1\": expected host:port, e.g. 127.0.0.1:3128" },
		{ "[::1", "\"[::1\": missing ] after the IPv6 address" },
		{ "[zz]:80", "\"[zz]:80\": not an IPv6 address inside [ ]" },
		{ "[::1]80", "\"[::1]80\": expected [IPv6]:port, e.g. [::1]:3128" },
		{ "::1:80", "\"::1:80\": an IPv6 address needs brackets, e.g. [::1]:3128" },
		{ ":80", "\":80\": missing host (use 0.0.0.0 or [::] for all addresses)" },
		{ "bad!host:80", "\"bad!host:80\": not an IPv4 address or host name" },
		{ "999.1.1.1:80", "\"999.1.1.1:80\": not an IPv4 address or host name" },
		{ "h:65536", "\"h:65536\": expected a port between 0 and 65535" },
		{ "h:000001", "\"h:000001\": expected a port between 0 and 65535" },
		{ "h:", "\"h:\": expected a port between 0 and 65535" },
		{ "a:1, A:1", "a:1 is listed twice" },
	};
	for (size_t i = 0; i < N(bad); i++) {
		l = NULL;
		n = 99;
		why[0] = '\0';
		assert_int_equal(config_parse_listen(bad[i].val, &l, &n, why, sizeof(why)), -1);
		assert_string_equal(why, bad[i].why);
		assert_null(l);
		assert_int_equal(n, 99);
	}

	/* items are cut at 299 characters; a host name has at most 253 */
	char item[400];
	memset(item, 'h', 254);
	strcpy(item + 254, ":80");
	assert_int_equal(config_parse_listen(item, &l, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, ": host name longer than 253 characters"));
	memset(item, 'h', 300);
	strcpy(item + 300, ":80");
	assert_int_equal(config_parse_listen(item, &l, &n, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "...\": longer than 299 characters"));
}

static void test_ports(void **state)
{
	struct config_port_range *pr = NULL;
	size_t n = 0;
	char why[256];
	(void)state;

	assert_int_equal(config_parse_ports("443 8443,9000-9100 , 1, 65535-65535", &pr, &n, why,
					    sizeof(why)), 0);
	assert_int_equal(n, 5);
	assert_int_equal(pr[0].lo, 443);
	assert_int_equal(pr[0].hi, 443);
	assert_int_equal(pr[2].lo, 9000);
	assert_int_equal(pr[2].hi, 9100);
	assert_int_equal(pr[4].lo, 65535);
	free(pr);

	static const struct {
		const char *val, *why;
	} bad[] = {
		{ "", "expected ports or ranges such as 443, 8443, 9000-9100" },
		{ "0", "expected ports or ranges between 1 and 65535 such as 443, 8443, 9000-9100, "
		       "got \"0\"" },
		{ "443, 65536", "expected ports or ranges between 1 and 65535 such as 443, 8443, "
				"9000-9100, got \"65536\"" },
		{ "1-65536", "expected ports or ranges between 1 and 65535 such as 443, 8443, "
			     "9000-9100, got \"1-65536\"" },
		{ "a-b", "expected ports or ranges between 1 and 65535 such as 443, 8443, 9000-9100, "
			 "got \"a-b\"" },
		{ "5-", "expected ports or ranges between 1 and 65535 such as 443, 8443, 9000-9100, "
			"got \"5-\"" },
		{ "9100-9000", "range \"9100-9000\" runs backwards (want low-high)" },
		{ "123456789012345678901234567890123", "\"1234567890123456789012345678901\"...: "
						       "not a port or range" },
	};
	for (size_t i = 0; i < N(bad); i++) {
		pr = NULL;
		assert_int_equal(config_parse_ports(bad[i].val, &pr, &n, why, sizeof(why)), -1);
		assert_string_equal(why, bad[i].why);
		assert_null(pr);
	}
}

static void test_cidrs(void **state)
{
	struct cidr dummy, *c = &dummy;
	size_t n = 99;
	char why[256];
	(void)state;

	/* an empty list is allowed: nothing */
	assert_int_equal(config_parse_cidrs(" , ", &c, &n, why, sizeof(why)), 0);
	assert_null(c);
	assert_int_equal(n, 0);

	assert_int_equal(config_parse_cidrs("10.0.0.0/8 ::1, 192.168.1.1", &c, &n, why,
					    sizeof(why)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(c[0].family, AF_INET);
	assert_int_equal(c[0].prefix, 8);
	assert_int_equal(c[1].family, AF_INET6);
	assert_int_equal(c[1].prefix, 128);
	free(c);

	c = NULL;
	assert_int_equal(config_parse_cidrs("10.0.0.0/8, 10.0.0.0/33", &c, &n, why, sizeof(why)), -1);
	assert_string_equal(why, "expected addresses or ranges such as 127.0.0.1, 10.0.0.0/8, ::1, "
				 "got \"10.0.0.0/33\"");
	assert_null(c);
}

/* ---- the key table ----------------------------------------------------------- */

static void test_rows(void **state)
{
	const struct config_row *r;
	(void)state;

	r = config_row_find("limits", "idle_timeout");
	assert_non_null(r);
	assert_int_equal(r->type, CT_DURATION);
	assert_null(config_row_find("limits", "listen"));
	assert_true(config_section_known("pac"));
	assert_false(config_section_known("rule"));
	assert_string_equal(config_suggest_section("limts"), "limits");
	assert_null(config_suggest_section("zzzzzzzz"));
	r = config_suggest_key("proxy", "lisen");
	assert_string_equal(r->section, "proxy");
	assert_string_equal(r->key, "listen");
	r = config_suggest_key("proxy", "idle_timeout"); /* in another section */
	assert_string_equal(r->section, "limits");
	assert_string_equal(config_row_enum_name(config_row_find("log", "level"), 3), "debug");
	assert_null(config_row_enum_name(config_row_find("log", "level"), 9));

	/* every default passes its own row, and every key is reachable by name */
	for (size_t i = 0; i < config_nrows; i++) {
		struct config *cfg = calloc(1, sizeof(*cfg));
		char why[256];

		assert_non_null(cfg);
		r = &config_rows[i];
		assert_ptr_equal(config_row_find(r->section, r->key), r);
		if (r->def != NULL && config_row_apply(r, r->def, cfg, why, sizeof(why)) != 0)
			fail_msg("[%s] %s: default \"%s\": %s", r->section, r->key, r->def, why);
		config_row_clear(r, cfg);
		free(cfg);
	}
}

static void test_row_apply(void **state)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	const struct config_row *via = config_row_find("proxy", "via");
	const struct config_row *workers = config_row_find("proxy", "workers");
	char why[256];
	(void)state;

	assert_non_null(cfg);
	assert_int_equal(config_row_apply(via, "edge-1", cfg, why, sizeof(why)), 0);
	assert_string_equal(cfg->via, "edge-1");
	/* a failed value leaves the field as it was */
	assert_int_equal(config_row_apply(via, "a b", cfg, why, sizeof(why)), -1);
	assert_string_equal(why, "expected a token (letters, digits and !#$%&'*+-.^_`|~), got \"a b\"");
	assert_string_equal(cfg->via, "edge-1");
	assert_int_equal(config_row_apply(via, "a\tb", cfg, why, sizeof(why)), -1);
	assert_string_equal(why, "contains a control character: \"a\\x09b\"");
	assert_int_equal(config_row_apply(workers, "0", cfg, why, sizeof(why)), -1);
	assert_string_equal(why, "expected auto or an integer between 1 and 256, got \"0\"");
	assert_int_equal(config_row_apply(workers, "7", cfg, why, sizeof(why)), 0);
	assert_int_equal(cfg->workers, 7);
	config_row_clear(via, cfg);
	assert_null(cfg->via);
	free(cfg);
}

/* ---- the [rule.NAME] key table ----------------------------------------------- */

static void test_rule_keys(void **state)
{
	static const char *const order[] = {
		"src", "users", "groups", "methods", "domains", "domain_file", "dst", "ports",
		"url_regex", "time", "action",
	};
	(void)state;

	assert_int_equal(N(order), CONFIG_RULE_NKEYS);
	for (size_t k = 0; k < CONFIG_RULE_NKEYS; k++) {
		assert_string_equal(config_rule_keys[k].key, order[k]);
		assert_ptr_equal(config_rule_key(order[k]), &config_rule_keys[k]);
	}
	assert_null(config_rule_key("acton"));
	assert_null(config_rule_key(""));
}

/* Each key's parser fills its matcher, or says why not. */
static void test_rule_parsers(void **state)
{
	static const struct {
		const char *key, *good, *bad;
	} cases[] = {
		{ "src", "10.0.0.0/8, ::1", "10.0.0.0/99" },
		{ "users", "alice bob", "" },
		{ "groups", "staff", "" },
		{ "methods", "GET, CONNECT", "G@T" },
		{ "domains", "example.com .example.org", "bad..domain" },
		{ "domain_file", NULL, "/nonexistent/domains" },
		{ "dst", "192.168.0.0/16", "x" },
		{ "ports", "80, 8000-9000", "0" },
		{ "url_regex", "^http://a", "(" },
		{ "time", "mon-fri 09:00-17:00", "25:00-26:00" },
		{ "action", "deny", "maybe" },
	};
	struct acl_rule r;
	char err[512];
	(void)state;

	for (size_t i = 0; i < N(cases); i++) {
		const struct config_rule_key *rk = config_rule_key(cases[i].key);

		assert_non_null(rk);
		if (cases[i].good != NULL) {
			memset(&r, 0, sizeof(r));
			if (rk->parse(cases[i].good, &r, err, sizeof(err)) != 0)
				fail_msg("%s = %s: %s", cases[i].key, cases[i].good, err);
			acl_rule_free(&r);
		}
		memset(&r, 0, sizeof(r));
		err[0] = '\0';
		assert_int_not_equal(rk->parse(cases[i].bad, &r, err, sizeof(err)), 0);
		assert_true(err[0] != '\0');
		acl_rule_free(&r);
	}

	memset(&r, 0, sizeof(r));
	assert_int_equal(config_rule_key("src")->parse("10.0.0.0/8 10.1.0.0/16", &r, err, sizeof(err)), 0);
	assert_int_equal(r.n_src, 2);
	assert_int_equal(config_rule_key("time")->parse("Sat,Sun", &r, err, sizeof(err)), 0);
	assert_true(r.has_time);
	assert_int_equal(config_rule_key("action")->parse("allow", &r, err, sizeof(err)), 0);
	assert_int_equal(r.action, ACL_ACTION_ALLOW);
	/* an unreadable domain file still leaves its path, for the messages */
	assert_int_not_equal(config_rule_key("domain_file")->parse("/nonexistent/d", &r, err,
								  sizeof(err)), 0);
	assert_string_equal(r.domain_file_path, "/nonexistent/d");
	acl_rule_free(&r);
}

/* --print-config writes durations with config_format_duration: what it
 * writes must parse back to the same value, without an exponent, for values
 * of every magnitude the parser takes (random, seed printed). */
static void test_duration_round_trip(void **state)
{
	(void)state;
	static const double fixed[] = { 0, 0.25, 1, 7.5, 86400, 31536000, 1e12 - 1, 0.000000001 };
	char buf[64];
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		double back = -1;
		config_format_duration(fixed[i], buf, sizeof(buf));
		assert_null(strpbrk(buf, "eE"));
		assert_int_equal(config_parse_duration(buf, &back), 0);
		assert_true(back == fixed[i] || (back - fixed[i]) * (back - fixed[i]) < 1e-18);
	}
	config_format_duration(31536000, buf, sizeof(buf));
	assert_string_equal(buf, "31536000");
	config_format_duration(7.5, buf, sizeof(buf));
	assert_string_equal(buf, "7.5");
	unsigned seed = (unsigned)time(NULL);
	printf("test_duration_round_trip: seed %u\n", seed);
	srand(seed);
	for (int i = 0; i < 20000; i++) {
		char in[40];
		snprintf(in, sizeof(in), "%d.%03d", rand() % 1000000000, rand() % 1000);
		double d = 0, back = -1;
		assert_int_equal(config_parse_duration(in, &d), 0);
		config_format_duration(d, buf, sizeof(buf));
		if (strpbrk(buf, "eE") != NULL || config_parse_duration(buf, &back) != 0 ||
		    (back - d) * (back - d) > 1e-12)
			fail_msg("seed %u: %s parsed as %.9f, printed %s, read back %.9f", seed, in, d, buf,
				 back);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_decimal_clamped),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_duration_round_trip),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_typo),
		cmocka_unit_test(test_list_next),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_row_apply),
		cmocka_unit_test(test_rule_keys),
		cmocka_unit_test(test_rule_parsers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

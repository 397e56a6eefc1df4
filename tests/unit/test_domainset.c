/* test_domainset.c - domain sets: exact/suffix entries, files, 1M-entry load. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "domainset.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Write text to a new temporary file; the caller unlinks the returned path. */
static char *write_temp(const char *text, size_t len)
{
	char *path = strdup("/tmp/test_domainset.XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Seconds on the monotonic clock. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Name normalisation and validation. */
static void test_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want; /* want NULL = error */
	} rows[] = {
		{ "Example.COM", "example.com" },
		{ "example.com.", "example.com" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "_dmarc.example.com", "_dmarc.example.com" },
		{ "a-b.c", "a-b.c" },
		{ "", NULL },
		{ ".", NULL },
		{ "a..b", NULL },
		{ ".a", NULL },
		{ "a.b..", NULL },
		{ "b\xc3\xbc" "cher.example", NULL },
		{ "exa mple.com", NULL },
		{ "exa/mple.com", NULL },
		{ "exa%00mple.com", NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char buf[300];
		const char *why = NULL;
		int n = domainset_normalize(rows[i].in, strlen(rows[i].in), buf, &why);
		if (rows[i].want == NULL) {
			if (n >= 0)
				fail_msg("normalize(%s): got \"%.*s\", want error", rows[i].in, n, buf);
			assert_non_null(why);
			continue;
		}
		if (n < 0)
			fail_msg("normalize(%s): got error %s, want %s", rows[i].in, why, rows[i].want);
		if ((size_t)n != strlen(rows[i].want) || memcmp(buf, rows[i].want, (size_t)n) != 0)
			fail_msg("normalize(%s): got \"%.*s\", want \"%s\"", rows[i].in, n, buf,
				 rows[i].want);
	}
	/* 253 characters is the longest name */
	char name[260];
	memset(name, 'a', sizeof(name));
	for (size_t i = 63; i < sizeof(name); i += 64)
		name[i] = '.';
	const char *why;
	assert_int_equal(domainset_normalize(name, 253, name, &why), 253);
	assert_int_equal(domainset_normalize(name, 254, name, &why), -1);
}

/* Inline entries: exact names vs .suffix entries. */
static void test_inline(void **state)
{
	(void)state;
	char err[256];
	struct domainset *s = domainset_new();
	assert_non_null(s);
	static const char *const entries[] = { "example.com", ".example.org", "EXACT.Net.",
					       ".xn--bcher-kva.example" };
	for (size_t i = 0; i < N(entries); i++)
		if (domainset_add(s, entries[i], err, sizeof(err)) < 0)
			fail_msg("add(%s): %s", entries[i], err);
	/* a duplicate merges */
	assert_int_equal(domainset_add(s, "example.com", err, sizeof(err)), 0);
	assert_int_equal(domainset_count(s), 4);

	static const struct {
		const char *host;
		bool want;
	} rows[] = {
		{ "example.com", true },        { "EXAMPLE.com", true },
		{ "example.com.", true },       { "www.example.com", false }, /* exact only */
		{ "example.org", true },        { "www.example.org", true },
		{ "a.b.c.example.org", true },  { "WWW.Example.Org.", true },
		{ "notexample.org", false },    { "example.org.evil.com", false },
		{ "xample.org", false },        { "org", false },
		{ "exact.net", true },          { "sub.exact.net", false },
		{ "xn--bcher-kva.example", true }, { "www.xn--bcher-kva.example", true },
		{ "", false },                  { ".", false },
		{ "example..org", false },      { "b\xc3\xbc" "cher.example", false },
	};
	for (size_t i = 0; i < N(rows); i++) {
		bool got = domainset_match(s, rows[i].host);
		if (got != rows[i].want)
			fail_msg("match(%s): got %d, want %d", rows[i].host, got, rows[i].want);
	}
	/* both forms of one name: the subtree wins for subdomains */
	assert_int_equal(domainset_add(s, ".example.com", err, sizeof(err)), 0);
	assert_true(domainset_match(s, "www.example.com"));

	static const char *const bad[] = { "", ".", "..example.com", "b\xc3\xbc" "cher.de",
					   "*.example.com", "exa mple.com", "a..b" };
	for (size_t i = 0; i < N(bad); i++) {
		err[0] = '\0';
		if (domainset_add(s, bad[i], err, sizeof(err)) == 0)
			fail_msg("add(%s): got success, want error", bad[i]);
		if (strstr(err, "expected") == NULL)
			fail_msg("add(%s): got message \"%s\", want \"expected ...\"", bad[i], err);
	}
	domainset_free(s);
}

/* A list file: comments, whitespace, case, trailing dots, punycode. */
static void test_file(void **state)
{
	(void)state;
	static const char text[] = "\xef\xbb\xbf# blocklist\n"
				   "\n"
				   "  Ads.Example.COM  \r\n"
				   "tracker.test.\t# trailing comment\n"
				   ".leading.test\n"
				   "xn--mnchen-3ya.de\n"
				   "   # indented comment\n"
				   "last.test"; /* no final newline */
	char err[256];
	char *path = write_temp(text, sizeof(text) - 1);
	struct domainset *s = domainset_load(path, err, sizeof(err));
	if (s == NULL)
		fail_msg("load: %s", err);
	assert_int_equal(domainset_count(s), 5);
	static const struct {
		const char *host;
		bool want;
	} rows[] = {
		{ "ads.example.com", true },      { "x.ads.example.com", true },
		{ "example.com", false },         { "tracker.test", true },
		{ "a.b.tracker.test", true },     { "leading.test", true },
		{ "www.leading.test", true },     { "xn--mnchen-3ya.de", true },
		{ "www.XN--MNCHEN-3YA.de.", true }, { "last.test", true },
		{ "blocklist", false },           { "test", false },
		{ "notlast.test", false },
	};
	for (size_t i = 0; i < N(rows); i++) {
		bool got = domainset_match(s, rows[i].host);
		if (got != rows[i].want)
			fail_msg("file match(%s): got %d, want %d", rows[i].host, got, rows[i].want);
	}
	/* inline additions to a loaded set keep the file entries */
	assert_int_equal(domainset_add(s, "extra.test", err, sizeof(err)), 0);
	assert_true(domainset_match(s, "extra.test"));
	assert_true(domainset_match(s, "ads.example.com"));
	domainset_free(s);
	unlink(path);
	free(path);

	/* an empty or comment-only file is an empty set */
	path = write_temp("# nothing\n\n", 11);
	s = domainset_load(path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(domainset_count(s), 0);
	assert_false(domainset_match(s, "example.com"));
	domainset_free(s);
	unlink(path);
	free(path);
}

/* Bad lines are errors naming file:line. */
static void test_file_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *want; /* substring of the message after "PATH" */
	} rows[] = {
		{ "ok.test\nm\xc3\xbcnchen.de\n", ":2: non-ASCII" },
		{ "# c\n\nok.test\nbad..test\n", ":4: empty label" },
		{ "0.0.0.0 ads.test\n", ":1: one name a line" },
		{ "ok.test\r\nbad/x.test\r\n", ":2: invalid character" },
		{ "*.wild.test\n", ":1: invalid character" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char err[512];
		char *path = write_temp(rows[i].text, strlen(rows[i].text));
		struct domainset *s = domainset_load(path, err, sizeof(err));
		if (s != NULL)
			fail_msg("load row %zu: got success, want error %s", i, rows[i].want);
		if (strncmp(err, path, strlen(path)) != 0 || strstr(err, rows[i].want) == NULL)
			fail_msg("load row %zu: got \"%s\", want \"%s%s...\"", i, err, path,
				 rows[i].want);
		unlink(path);
		free(path);
	}
	char err[256];
	assert_null(domainset_load("/nonexistent/blocklist.txt", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/blocklist.txt"));
	assert_null(domainset_load("/tmp", err, sizeof(err)));
}

/* Nanoseconds per lookup of a mix of hits and misses. */
static double lookup_cost(const struct domainset *s, int rounds, size_t *hits)
{
	static const char *const hosts[] = {
		"www.d123456.zone6.test", "a.b.c.d.e.f.nothere.example", "d999999.zone3.test",
		"deep.sub.domain.of.d42.zone2.test", "miss.test", "x.y.z.w.v.u.t.s.r.q.p.com",
	};
	double t0 = now();
	size_t h = 0;
	for (int i = 0; i < rounds; i++)
		h += domainset_match(s, hosts[(size_t)i % N(hosts)]);
	*hits = h;
	return (now() - t0) * 1e9 / rounds;
}

/* Load 1M entries (time printed) and compare lookup cost with a tiny set. */
static void test_million(void **state)
{
	(void)state;
	const unsigned n = 1000000;
	char path[] = "/tmp/test_domainset_1m.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "# generated: %u entries\n", n);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "d%u.zone%u.test\n", i, i % 10);
	assert_int_equal(fclose(f), 0);

	char err[256];
	double t0 = now();
	struct domainset *big = domainset_load(path, err, sizeof(err));
	double secs = now() - t0;
	unlink(path);
	if (big == NULL)
		fail_msg("load 1M: %s", err);
	assert_int_equal(domainset_count(big), n);
	print_message("domainset_load: %u entries in %.3f s\n", n, secs);
	if (secs > 5.0) /* well under 1 s in an optimised build; loose for sanitizers */
		fail_msg("load 1M: got %.3f s, want < 5 s", secs);

	assert_true(domainset_match(big, "d0.zone0.test"));
	assert_true(domainset_match(big, "www.d999999.zone9.test"));
	assert_false(domainset_match(big, "d1000000.zone0.test"));
	assert_false(domainset_match(big, "zone0.test"));

	struct domainset *small = domainset_new();
	assert_non_null(small);
	assert_int_equal(domainset_add(small, ".d42.zone2.test", err, sizeof(err)), 0);
	size_t hb, hs;
	const int rounds = 600000;
	double cs = lookup_cost(small, rounds, &hs);
	double cb = lookup_cost(big, rounds, &hb);
	print_message("domainset_match: %.0f ns/lookup with 1 entry, %.0f ns with %u\n", cs, cb, n);
	assert_int_equal(hb, (size_t)rounds / 6 * 2); /* d999999.zone3 is not in the set */
	assert_int_equal(hs, (size_t)rounds / 6);
	/* hashing, not scanning: a 10^6-fold larger set costs at most cache misses */
	if (cb > cs * 20 + 2000)
		fail_msg("lookup cost: got %.0f ns with 1M entries vs %.0f ns with 1, want comparable",
			 cb, cs);
	domainset_free(small);
	domainset_free(big);
}

/* Run the domainset tests. */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_inline),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_million),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

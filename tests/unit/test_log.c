/* test_log.c - log.c: the four access line formats (exact lines), escaping of
 * hostile fields, truncation into small buffers, JSON validity, and writing
 * and reopening the access log file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-11-30T05:24:08.123Z */
static const struct timespec now = { .tv_sec = 1796016248, .tv_nsec = 123456789 };

static const int formats[] = { CONFIG_LOGFMT_NATIVE, CONFIG_LOGFMT_SQUID, CONFIG_LOGFMT_COMBINED,
			       CONFIG_LOGFMT_JSON };

/* A cache hit by an authenticated user. */
static const struct access_entry hit = {
	.client = "192.0.2.10", .user = "alice", .method = "GET",
	.target = "http://example.com/logo.png", .status = 200, .bytes_in = 310,
	.bytes_out = 5120, .duration_ms = 3, .outcome = OUTCOME_HIT, .cache = "HIT", .rule = "staff",
	.version = "HTTP/1.1", .referer = "http://example.com/",
	.user_agent = "Mozilla/5.0 (X11; Linux x86_64)", .content_type = "image/png",
};

/* A CONNECT tunnel to an IPv6 origin, from an IPv6 client. */
static const struct access_entry tunnel = {
	.client = "2001:db8::5", .method = "CONNECT", .target = "example.com:443", .status = 200,
	.bytes_in = 2048, .bytes_out = 65536, .duration_ms = 15000,
	.upstream = "[2001:db8::80]:443", .outcome = OUTCOME_TUNNEL, .rule = "default",
	.upstream_host = "example.com", .tunnel = true,
};

/* Authentication required. */
static const struct access_entry auth407 = {
	.client = "10.1.2.3", .method = "GET", .target = "http://example.org/", .status = 407,
	.bytes_in = 120, .bytes_out = 412, .outcome = OUTCOME_AUTH_REQUIRED, .version = "HTTP/1.0",
	.content_type = "text/html; charset=utf-8",
};

/* The origin refused the connection: no upstream, nothing but the error page. */
static const struct access_entry refused = {
	.client = "127.0.0.1", .method = "GET", .target = "http://down.example/", .status = 502,
	.bytes_in = 80, .duration_ms = 12, .outcome = OUTCOME_CONNECTION_REFUSED, .rule = "default",
	.upstream_host = "down.example",
};

/* Fields with spaces, quotes, backslashes, newlines, '%', UTF-8 (é) and a
 * byte that is not UTF-8 (0xff). */
static const struct access_entry evil = {
	.client = "192.0.2.66", .user = "bob smith", .method = "GET",
	.target = "http://example.com/a b\"c\\d\ne%41\xc3\xa9\xff", .status = 200, .bytes_in = 1,
	.bytes_out = 2, .duration_ms = 4, .upstream = "198.51.100.7:80", .outcome = OUTCOME_OK,
	.referer = "x\"y", .user_agent = "Evil \"UA\"\r\n\t\x01\x7f",
	.content_type = "text/html\nX-Injected: 1",
};

static const char *fmt_name(int format)
{
	static const char *const names[] = { "native", "squid", "combined", "json" };
	return names[format];
}

/* Format e with a roomy buffer and compare with want exactly. */
static void expect_line(int format, const struct access_entry *e, const char *want)
{
	char buf[4096];
	size_t n = log_format_access(format, e, &now, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fail_msg("%s:\n got  %s want %s", fmt_name(format), buf, want);
	assert_int_equal(n, strlen(want));
}

static void test_hit(void **state)
{
	(void)state;
	expect_line(CONFIG_LOGFMT_NATIVE, &hit,
		    "2026-11-30T05:24:08.123Z 192.0.2.10 alice GET http://example.com/logo.png "
		    "200 310 5120 3 - HIT staff\n");
	expect_line(CONFIG_LOGFMT_SQUID, &hit,
		    "1796016248.123      3 192.0.2.10 TCP_HIT/200 5120 GET "
		    "http://example.com/logo.png alice HIER_NONE/- image/png\n");
	expect_line(CONFIG_LOGFMT_COMBINED, &hit,
		    "192.0.2.10 - alice [30/Nov/2026:05:24:08 +0000] \"GET "
		    "http://example.com/logo.png HTTP/1.1\" 200 5120 \"http://example.com/\" "
		    "\"Mozilla/5.0 (X11; Linux x86_64)\"\n");
	expect_line(CONFIG_LOGFMT_JSON, &hit,
		    "{\"time\":\"2026-11-30T05:24:08.123Z\",\"client\":\"192.0.2.10\","
		    "\"user\":\"alice\",\"method\":\"GET\",\"target\":\"http://example.com/logo.png\","
		    "\"version\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":310,\"bytes_out\":5120,"
		    "\"duration_ms\":3,\"upstream\":null,\"outcome\":\"HIT\",\"cache\":\"HIT\","
		    "\"rule\":\"staff\",\"referer\":\"http://example.com/\","
		    "\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\",\"content_type\":\"image/png\","
		    "\"upstream_host\":null,\"tunnel\":false,\"parent\":false}\n");
}

static void test_tunnel(void **state)
{
	(void)state;
	expect_line(CONFIG_LOGFMT_NATIVE, &tunnel,
		    "2026-11-30T05:24:08.123Z 2001:db8::5 - CONNECT example.com:443 200 2048 65536 "
		    "15000 [2001:db8::80]:443 TUNNEL default\n");
	expect_line(CONFIG_LOGFMT_SQUID, &tunnel,
		    "1796016248.123  15000 2001:db8::5 TCP_TUNNEL/200 65536 CONNECT example.com:443 "
		    "- HIER_DIRECT/2001:db8::80 -\n");
	expect_line(CONFIG_LOGFMT_COMBINED, &tunnel,
		    "2001:db8::5 - - [30/Nov/2026:05:24:08 +0000] \"CONNECT example.com:443 "
		    "HTTP/1.1\" 200 65536 \"-\" \"-\"\n");
	expect_line(CONFIG_LOGFMT_JSON, &tunnel,
		    "{\"time\":\"2026-11-30T05:24:08.123Z\",\"client\":\"2001:db8::5\","
		    "\"user\":null,\"method\":\"CONNECT\",\"target\":\"example.com:443\","
		    "\"version\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":2048,\"bytes_out\":65536,"
		    "\"duration_ms\":15000,\"upstream\":\"[2001:db8::80]:443\",\"outcome\":\"TUNNEL\","
		    "\"cache\":null,\"rule\":\"default\",\"referer\":null,\"user_agent\":null,"
		    "\"content_type\":null,\"upstream_host\":\"example.com\",\"tunnel\":true,"
		    "\"parent\":false}\n");
}

static void test_auth_required(void **state)
{
	(void)state;
	expect_line(CONFIG_LOGFMT_NATIVE, &auth407,
		    "2026-11-30T05:24:08.123Z 10.1.2.3 - GET http://example.org/ 407 120 412 0 - "
		    "AUTH_REQUIRED -\n");
	expect_line(CONFIG_LOGFMT_SQUID, &auth407,
		    "1796016248.123      0 10.1.2.3 TCP_DENIED/407 412 GET http://example.org/ - "
		    "HIER_NONE/- text/html;%20charset=utf-8\n");
	expect_line(CONFIG_LOGFMT_COMBINED, &auth407,
		    "10.1.2.3 - - [30/Nov/2026:05:24:08 +0000] \"GET http://example.org/ HTTP/1.0\" "
		    "407 412 \"-\" \"-\"\n");
	expect_line(CONFIG_LOGFMT_JSON, &auth407,
		    "{\"time\":\"2026-11-30T05:24:08.123Z\",\"client\":\"10.1.2.3\",\"user\":null,"
		    "\"method\":\"GET\",\"target\":\"http://example.org/\",\"version\":\"HTTP/1.0\","
		    "\"status\":407,\"bytes_in\":120,\"bytes_out\":412,\"duration_ms\":0,"
		    "\"upstream\":null,\"outcome\":\"AUTH_REQUIRED\",\"cache\":null,\"rule\":null,"
		    "\"referer\":null,\"user_agent\":null,"
		    "\"content_type\":\"text/html; charset=utf-8\",\"upstream_host\":null,"
		    "\"tunnel\":false,\"parent\":false}\n");
}

static void test_upstream_error(void **state)
{
	(void)state;
	expect_line(CONFIG_LOGFMT_NATIVE, &refused,
		    "2026-11-30T05:24:08.123Z 127.0.0.1 - GET http://down.example/ 502 80 0 12 - "
		    "connection_refused default\n");
	expect_line(CONFIG_LOGFMT_SQUID, &refused,
		    "1796016248.123     12 127.0.0.1 TCP_MISS/502 0 GET http://down.example/ - "
		    "HIER_NONE/- -\n");
	expect_line(CONFIG_LOGFMT_COMBINED, &refused,
		    "127.0.0.1 - - [30/Nov/2026:05:24:08 +0000] \"GET http://down.example/ "
		    "HTTP/1.1\" 502 - \"-\" \"-\"\n");
	expect_line(CONFIG_LOGFMT_JSON, &refused,
		    "{\"time\":\"2026-11-30T05:24:08.123Z\",\"client\":\"127.0.0.1\",\"user\":null,"
		    "\"method\":\"GET\",\"target\":\"http://down.example/\",\"version\":\"HTTP/1.1\","
		    "\"status\":502,\"bytes_in\":80,\"bytes_out\":0,\"duration_ms\":12,"
		    "\"upstream\":null,\"outcome\":\"connection_refused\",\"cache\":null,"
		    "\"rule\":\"default\",\"referer\":null,\"user_agent\":null,\"content_type\":null,"
		    "\"upstream_host\":\"down.example\",\"tunnel\":false,\"parent\":false}\n");
}

static void test_evil_fields(void **state)
{
	(void)state;
	expect_line(CONFIG_LOGFMT_NATIVE, &evil,
		    "2026-11-30T05:24:08.123Z 192.0.2.66 bob%20smith GET "
		    "http://example.com/a%20b%22c\\d%0Ae%2541%C3%A9%FF 200 1 2 4 198.51.100.7:80 OK -\n");
	expect_line(CONFIG_LOGFMT_SQUID, &evil,
		    "1796016248.123      4 192.0.2.66 TCP_MISS/200 2 GET "
		    "http://example.com/a%20b\"c\\d%0Ae%41%C3%A9%FF bob%20smith "
		    "HIER_DIRECT/198.51.100.7 text/html%0AX-Injected:%201\n");
	expect_line(CONFIG_LOGFMT_COMBINED, &evil,
		    "192.0.2.66 - bob\\x20smith [30/Nov/2026:05:24:08 +0000] \"GET "
		    "http://example.com/a b\\\"c\\\\d\\ne%41\\xc3\\xa9\\xff HTTP/1.1\" 200 2 "
		    "\"x\\\"y\" \"Evil \\\"UA\\\"\\r\\n\\t\\x01\\x7f\"\n");
	expect_line(CONFIG_LOGFMT_JSON, &evil,
		    "{\"time\":\"2026-11-30T05:24:08.123Z\",\"client\":\"192.0.2.66\","
		    "\"user\":\"bob smith\",\"method\":\"GET\","
		    "\"target\":\"http://example.com/a b\\\"c\\\\d\\u000ae%41\xc3\xa9\\u00ff\","
		    "\"version\":\"HTTP/1.1\",\"status\":200,\"bytes_in\":1,\"bytes_out\":2,"
		    "\"duration_ms\":4,\"upstream\":\"198.51.100.7:80\",\"outcome\":\"OK\","
		    "\"cache\":null,\"rule\":null,\"referer\":\"x\\\"y\","
		    "\"user_agent\":\"Evil \\\"UA\\\"\\u000d\\u000a\\u0009\\u0001\\u007f\","
		    "\"content_type\":\"text/html\\u000aX-Injected: 1\",\"upstream_host\":null,"
		    "\"tunnel\":false,\"parent\":false}\n");
}

/* Squid result codes and hierarchy for each kind of request. */
static void test_squid_codes(void **state)
{
	(void)state;
	static const struct {
		struct access_entry e;
		const char *want;
	} rows[] = {
		{ { .cache = "REFRESH", .outcome = OUTCOME_REFRESH, .status = 200,
		    .upstream = "192.0.2.1:80" },
		  "TCP_REFRESH_UNMODIFIED/200 0 - - - HIER_DIRECT/192.0.2.1 -" },
		{ { .outcome = OUTCOME_STALE, .status = 200 }, "TCP_REFRESH_FAIL_OLD/200 0 - - - HIER_NONE/- -" },
		{ { .cache = "MISS", .outcome = OUTCOME_OK, .status = 200, .upstream = "192.0.2.9:3128",
		    .parent = true, .content_type = "text/html" },
		  "TCP_MISS/200 0 - - - FIRST_UP_PARENT/192.0.2.9 text/html" },
		{ { .outcome = OUTCOME_HTTP_REQUEST_DENIED, .status = 403, .rule = "block" },
		  "TCP_DENIED/403 0 - - - HIER_NONE/- -" },
		{ { .outcome = OUTCOME_AUTH_BLOCKED, .status = 429 }, "TCP_DENIED/429 0 - - - HIER_NONE/- -" },
		{ { .outcome = OUTCOME_PURGED, .status = 200, .method = "PURGE" },
		  "TCP_MISS/200 0 PURGE - - HIER_NONE/- -" },
		{ { .outcome = OUTCOME_CLIENT_CLOSED, .status = 0 }, "TCP_MISS/000 0 - - - HIER_NONE/- -" },
		{ { .outcome = OUTCOME_DNS_ERROR, .status = 502, .tunnel = true, .method = "CONNECT" },
		  "TCP_MISS/502 0 CONNECT - - HIER_NONE/- -" },
		{ { .outcome = OUTCOME_HTTP_RESPONSE_TIMEOUT, .status = 504, .upstream = "10.9.8.7:8080" },
		  "TCP_MISS/504 0 - - - HIER_DIRECT/10.9.8.7 -" },
		{ { .outcome = OUTCOME_OK, .status = 200, .upstream = "example.com" },
		  "TCP_MISS/200 0 - - - HIER_DIRECT/example.com -" },
	};
	const char *prefix = "1796016248.123      0 - ";
	for (size_t i = 0; i < N(rows); i++) {
		char buf[512], want[512];
		log_format_access(CONFIG_LOGFMT_SQUID, &rows[i].e, &now, buf, sizeof(buf));
		snprintf(want, sizeof(want), "%s%s\n", prefix, rows[i].want);
		if (strcmp(buf, want) != 0)
			fail_msg("row %zu:\n got  %s want %s", i, buf, want);
	}
}

/* Is s[0..n) valid UTF-8? */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
			c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (k == 0 || i + k > n)
			return false;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
		i += k;
	}
	return true;
}

/* A JSON string starting at *p (the opening quote); advances past it. */
static bool json_string(const char **p)
{
	const char *s = *p + 1;
	for (; *s != '"'; s++) {
		if ((unsigned char)*s < 0x20)
			return false;
		if (*s != '\\')
			continue;
		s++;
		if (*s == 'u') {
			for (int i = 1; i <= 4; i++)
				if (strchr("0123456789abcdefABCDEF", s[i]) == NULL || s[i] == '\0')
					return false;
			s += 4;
		} else if (*s == '\0' || strchr("\"\\/bfnrt", *s) == NULL) {
			return false;
		}
	}
	*p = s + 1;
	return true;
}

/* A value of a flat object: string, unsigned number, null, true, false. */
static bool json_value(const char **p)
{
	static const char *const words[] = { "null", "true", "false" };
	if (**p == '"')
		return json_string(p);
	if (**p >= '0' && **p <= '9') {
		while (**p >= '0' && **p <= '9')
			(*p)++;
		return true;
	}
	for (size_t i = 0; i < N(words); i++)
		if (strncmp(*p, words[i], strlen(words[i])) == 0) {
			*p += strlen(words[i]);
			return true;
		}
	return false;
}

/* Is line one flat JSON object followed by "\n" and nothing else? */
static bool json_line_ok(const char *line)
{
	const char *p = line;
	if (!utf8_ok((const unsigned char *)line, strlen(line)) || *p++ != '{')
		return false;
	for (;;) {
		if (*p != '"' || !json_string(&p) || *p++ != ':' || !json_value(&p))
			return false;
		if (*p == '}')
			break;
		if (*p++ != ',')
			return false;
	}
	return strcmp(p, "}\n") == 0;
}

static void test_json_validator(void **state)
{
	(void)state;
	/* The checker itself must be able to say no. */
	assert_true(json_line_ok("{\"a\":\"x\\u00ff\",\"b\":1,\"c\":null}\n"));
	assert_false(json_line_ok("{\"a\":\"x\\q\"}\n"));
	assert_false(json_line_ok("{\"a\":\"x\ny\"}\n"));
	assert_false(json_line_ok("{\"a\":\"\\u00f\"}\n"));
	assert_false(json_line_ok("{\"a\":\"\xc3\"}\n"));
	assert_false(json_line_ok("{\"a\":\"x\"\n"));
	assert_false(json_line_ok("{\"a\":\"x\"}"));
}

/* Malformed UTF-8 is escaped byte by byte, valid UTF-8 passes whole. */
static void test_json_utf8(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} rows[] = {
		{ "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },           /* U+1F600 */
		{ "\xe2\x82\xac", "\xe2\x82\xac" },                   /* U+20AC */
		{ "\xc0\x80", "\\u00c0\\u0080" },                     /* overlong NUL */
		{ "\xe0\x80\xaf", "\\u00e0\\u0080\\u00af" },          /* overlong '/' */
		{ "\xed\xa0\x80", "\\u00ed\\u00a0\\u0080" },          /* surrogate */
		{ "\xf4\x90\x80\x80", "\\u00f4\\u0090\\u0080\\u0080" }, /* > U+10FFFF */
		{ "\xf5", "\\u00f5" },
		{ "a\xe2\x82", "a\\u00e2\\u0082" },                   /* cut short */
		{ "\xe2\x82z", "\\u00e2\\u0082z" },
		{ "\x1f/\x7f", "\\u001f/\\u007f" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct access_entry e = { .user_agent = rows[i].in };
		char buf[1024], want[128];
		log_format_access(CONFIG_LOGFMT_JSON, &e, &now, buf, sizeof(buf));
		snprintf(want, sizeof(want), "\"user_agent\":\"%s\",", rows[i].want);
		if (strstr(buf, want) == NULL)
			fail_msg("row %zu: %s has no %s", i, buf, want);
		assert_true(json_line_ok(buf));
	}
}

/* Escapes in out[0..n) are whole for the format. */
static bool escapes_whole(int format, const char *s)
{
	for (; *s != '\0'; s++) {
		if ((format == CONFIG_LOGFMT_NATIVE || format == CONFIG_LOGFMT_SQUID) && *s == '%') {
			if (format == CONFIG_LOGFMT_NATIVE &&
			    (strchr("0123456789ABCDEF", s[1]) == NULL || s[1] == '\0' ||
			     strchr("0123456789ABCDEF", s[2]) == NULL || s[2] == '\0'))
				return false;
		} else if (format == CONFIG_LOGFMT_COMBINED && *s == '\\') {
			s++;
			if (*s == 'x') {
				if (s[1] == '\0' || s[2] == '\0' || strchr("0123456789abcdef", s[1]) == NULL ||
				    strchr("0123456789abcdef", s[2]) == NULL)
					return false;
				s += 2;
			} else if (*s == '\0' || strchr("\"\\bnrtv", *s) == NULL) {
				return false;
			}
		}
	}
	return true;
}

/* A long, hostile entry: every field is big and full of escapes. */
static struct access_entry long_entry(char *big, size_t n)
{
	static const char chunk[] = "a b\"\\\n%\xc3\xa9\xff\x01";
	for (size_t i = 0; i + 1 < n; i++)
		big[i] = chunk[i % (sizeof(chunk) - 1)];
	big[n - 1] = '\0';
	struct access_entry e = {
		.client = big, .user = big, .method = big, .target = big, .status = 200,
		.bytes_in = UINT64_MAX, .bytes_out = UINT64_MAX, .duration_ms = UINT64_MAX,
		.upstream = big, .outcome = OUTCOME_HTTP_RESPONSE_TRAILER_SECTION_SIZE, .rule = big, .version = big, .referer = big,
		.user_agent = big, .content_type = big, .cache = big, .upstream_host = big,
		.tunnel = true, .parent = true,
	};
	return e;
}

/* Count the spaces of s. */
static size_t spaces(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == ' ';
	return n;
}

/* The shape of a line that has all its columns: space-separated counts for
 * native and squid, the closing quote for combined, validity for JSON. */
static bool shape_ok(int format, const char *line)
{
	size_t n = spaces(line);
	switch (format) {
	case CONFIG_LOGFMT_NATIVE:
		return n == 11;
	case CONFIG_LOGFMT_SQUID:
		return n == 9;
	case CONFIG_LOGFMT_COMBINED:
		return strstr(line, "\" 200 18446744073709551615 \"") != NULL &&
		       strcmp(line + strlen(line) - 2, "\"\n") == 0;
	default:
		return json_line_ok(line);
	}
}

/* Every buffer size from 0 up: never a byte past len (ASan watches the
 * exactly sized heap block), always "\n\0"-terminated, escapes and UTF-8
 * whole, and once the buffer holds the fixed parts the line keeps its shape. */
static void test_truncation(void **state)
{
	(void)state;
	char big[3000];
	struct access_entry e = long_entry(big, sizeof(big));
	/* The shortest line with the same fixed parts (a 1-byte upstream for
	 * squid's FIRST_UP_PARENT/). */
	struct access_entry empty = { .status = 200, .bytes_in = UINT64_MAX, .bytes_out = UINT64_MAX,
				      .duration_ms = UINT64_MAX, .tunnel = true, .parent = true,
				      .upstream = "x" };
	for (size_t f = 0; f < N(formats); f++) {
		char minline[1024], copy[1600];
		size_t fixed = log_format_access(formats[f], &empty, &now, minline, sizeof(minline));
		assert_true(shape_ok(formats[f], minline));
		for (size_t len = 0; len <= 1500; len++) {
			char *buf = malloc(len ? len : 1);
			assert_non_null(buf);
			size_t n = log_format_access(formats[f], &e, &now, buf, len);
			snprintf(copy, sizeof(copy), "%s", len ? buf : "");
			free(buf);
			if (len < 2) {
				assert_int_equal(n, 0);
				assert_int_equal(copy[0], '\0');
				continue;
			}
			assert_true(n < len);
			assert_int_equal(strlen(copy), n);
			assert_int_equal(copy[n - 1], '\n');
			assert_ptr_equal(strchr(copy, '\n'), copy + n - 1);
			if (!escapes_whole(formats[f], copy))
				fail_msg("%s len %zu: cut escape in %s", fmt_name(formats[f]), len, copy);
			if (formats[f] == CONFIG_LOGFMT_JSON)
				assert_true(utf8_ok((unsigned char *)copy, n));
			if (len > fixed + 8 && !shape_ok(formats[f], copy))
				fail_msg("%s len %zu: broken line %s", fmt_name(formats[f]), len, copy);
			if (len == 1500)
				assert_true(n + 1 + 6 > len); /* the long fields fill the buffer */
		}
	}
}

/* A huge target is cut, the columns after it stay. */
static void test_long_target_keeps_columns(void **state)
{
	(void)state;
	static char target[10000];
	memset(target, 'x', sizeof(target) - 1);
	struct access_entry e = hit;
	e.target = target;
	char buf[256];

	size_t n = log_format_access(CONFIG_LOGFMT_NATIVE, &e, &now, buf, sizeof(buf));
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(spaces(buf), 11);
	const char *tail = "x 200 310 5120 3 - HIT staff\n";
	assert_string_equal(buf + n - strlen(tail), tail);

	log_format_access(CONFIG_LOGFMT_SQUID, &e, &now, buf, sizeof(buf));
	assert_int_equal(spaces(buf), 8 + 6); /* separators, and "     3" (width 6) */
	assert_string_equal(strstr(buf, " alice "), " alice HIER_NONE/- image/png\n");

	log_format_access(CONFIG_LOGFMT_COMBINED, &e, &now, buf, sizeof(buf));
	assert_non_null(strstr(buf, "x HTTP/1.1\" 200 5120 \"http://example.com/\" \"Mozilla/5.0 (X11; Linux x86_64)\"\n"));

	/* JSON needs about 450 bytes for its keys; a buffer that small cuts it. */
	char big[700];
	log_format_access(CONFIG_LOGFMT_JSON, &e, &now, buf, sizeof(buf));
	assert_false(json_line_ok(buf));
	log_format_access(CONFIG_LOGFMT_JSON, &e, &now, big, sizeof(big));
	assert_true(json_line_ok(big));
	assert_non_null(strstr(big, "xxx\",\"version\":\"HTTP/1.1\""));
	assert_non_null(strstr(big, ",\"user_agent\":\"Mozilla/5.0 (X11; Linux x86_64)\","));
}

/* Read a whole small file into buf. */
static void slurp(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (d == NULL)
		return -1;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* log_access writes the configured format; log_open again (SIGUSR1) moves
 * to a new file after a rotation without leaking descriptors. */
static void test_access_file_and_reopen(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_log.XXXXXX", path[64], rotated[80], buf[4096];
	const char *what = NULL;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(rotated, sizeof(rotated), "%s.1", path);

	assert_int_equal(log_open(NULL, path, HC_LOG_ERROR, &what), 0);
	assert_true(log_access_enabled());
	log_set_access_format(CONFIG_LOGFMT_JSON);
	log_access(&evil);
	slurp(path, buf, sizeof(buf));
	assert_true(json_line_ok(buf));
	assert_non_null(strstr(buf, "\"user\":\"bob smith\""));

	assert_int_equal(rename(path, rotated), 0);
	int fds = count_fds();
	assert_int_equal(log_open(NULL, path, HC_LOG_ERROR, &what), 0);
	assert_int_equal(count_fds(), fds);
	log_set_access_format(CONFIG_LOGFMT_SQUID);
	log_access(&hit);
	slurp(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, " TCP_HIT/200 5120 GET http://example.com/logo.png alice "));
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)strlen(buf));
	slurp(rotated, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"user\":\"bob smith\""));
	assert_null(strstr(buf, "TCP_HIT"));

	assert_int_equal(log_open(NULL, "/nonexistent/dir/access.log", HC_LOG_ERROR, &what),
			 -ENOENT);
	assert_string_equal(what, "/nonexistent/dir/access.log");

	/* syslog and no access log at all */
	assert_int_equal(log_open("syslog", "syslog", HC_LOG_ERROR, &what), 0);
	assert_true(log_access_enabled());
	assert_int_equal(log_open(NULL, NULL, HC_LOG_ERROR, &what), 0);
	assert_false(log_access_enabled());
	log_set_access_format(CONFIG_LOGFMT_NATIVE);
	unlink(path);
	unlink(rotated);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit),
		cmocka_unit_test(test_tunnel),
		cmocka_unit_test(test_auth_required),
		cmocka_unit_test(test_upstream_error),
		cmocka_unit_test(test_evil_fields),
		cmocka_unit_test(test_squid_codes),
		cmocka_unit_test(test_json_validator),
		cmocka_unit_test(test_json_utf8),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_long_target_keeps_columns),
		cmocka_unit_test(test_access_file_and_reopen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_h2_translate.c - unit tests of the HTTP/2 translation
 * (src/proto/h2_translate.c): exact request heads and refusals per rule of
 * RFC 9113 §8, request trailers, response and trailer field lists, and two
 * seeded property tests (requests through http_parser; responses against an
 * oracle written here from RFC 9110 §7.6.1 / RFC 9113 §8.2.2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "h2_translate.h"
#include "http_parser.h"
#include "prng.h"

#define MAXF 16
#define BIG 65536

/* One request case: fields in, exact head or exact refusal out. */
struct row {
	const char *what;
	const char *f[MAXF][2]; /* name, value; ends at the first NULL name */
	bool end_stream;
	const char *want_head;  /* NULL: refused */
	const char *want_why;   /* NULL: accepted */
	bool want_chunked;
	int64_t want_cl;
};

#define GET_PS { ":method", "GET" }, { ":scheme", "https" }, { ":authority", "example.com" }, \
	{ ":path", "/x?y" }
#define POST_PS { ":method", "POST" }, { ":scheme", "http" }, { ":authority", "example.com:8080" }, \
	{ ":path", "/p" }
#define GET_LINE "GET https://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n"
#define POST_LINE "POST http://example.com:8080/p HTTP/1.1\r\nHost: example.com:8080\r\n"
#define CLOSE "Connection: close\r\n\r\n"

static const struct row rows[] = {
	/* accepted */
	{ "plain GET", { GET_PS }, true, GET_LINE CLOSE, NULL, false, -1 },
	{ "GET with fields kept in order, duplicates too", { GET_PS, { "accept", "*/*" },
	  { "x-a", "1" }, { "accept", "text/html" }, { "user-agent", "t/1" } }, true,
	  GET_LINE "accept: */*\r\nx-a: 1\r\naccept: text/html\r\nuser-agent: t/1\r\n" CLOSE,
	  NULL, false, -1 },
	{ "pseudo-headers in any order", { { ":path", "/x?y" }, { ":authority", "example.com" },
	  { ":method", "GET" }, { ":scheme", "https" } }, true, GET_LINE CLOSE, NULL, false, -1 },
	{ "POST without content-length is chunked", { POST_PS, { "content-type", "text/plain" } },
	  false, POST_LINE "content-type: text/plain\r\nTransfer-Encoding: chunked\r\n" CLOSE,
	  NULL, true, -1 },
	{ "POST with content-length", { POST_PS, { "content-length", "12" } }, false,
	  POST_LINE "Content-Length: 12\r\n" CLOSE, NULL, false, 12 },
	{ "equal content-length values, written once", { POST_PS, { "content-length", "7" },
	  { "x", "y" }, { "content-length", "007" } }, false,
	  POST_LINE "x: y\r\nContent-Length: 7\r\n" CLOSE, NULL, false, 7 },
	{ "content-length 0 with END_STREAM", { POST_PS, { "content-length", "0" } }, true,
	  POST_LINE "Content-Length: 0\r\n" CLOSE, NULL, false, 0 },
	{ "GET not ending the stream gets chunked framing", { GET_PS }, false,
	  GET_LINE "Transfer-Encoding: chunked\r\n" CLOSE, NULL, true, -1 },
	{ "host equal to :authority (any case) is dropped", { GET_PS, { "host", "EXAMPLE.com" },
	  { "a", "b" } }, true, GET_LINE "a: b\r\n" CLOSE, NULL, false, -1 },
	{ "host without :authority becomes the authority", { { ":method", "GET" },
	  { ":scheme", "http" }, { ":path", "/" }, { "a", "1" }, { "host", "h.example:81" } }, true,
	  "GET http://h.example:81/ HTTP/1.1\r\nHost: h.example:81\r\na: 1\r\n" CLOSE,
	  NULL, false, -1 },
	{ "te: trailers is dropped", { GET_PS, { "te", "trailers" }, { "a", "b" } }, true,
	  GET_LINE "a: b\r\n" CLOSE, NULL, false, -1 },
	{ "te: TRAILERS in capitals is accepted", { GET_PS, { "te", "TRAILERS" } }, true,
	  GET_LINE CLOSE, NULL, false, -1 },
	{ "cookie crumbs joined at the first one's place", { GET_PS, { "a", "1" },
	  { "cookie", "x=1" }, { "b", "2" }, { "cookie", "y=2" }, { "cookie", "z=3" } }, true,
	  GET_LINE "a: 1\r\nCookie: x=1; y=2; z=3\r\nb: 2\r\n" CLOSE, NULL, false, -1 },
	{ "one cookie", { GET_PS, { "cookie", "s=1" } }, true, GET_LINE "Cookie: s=1\r\n" CLOSE,
	  NULL, false, -1 },
	{ "proxy-authorization passed through", { GET_PS, { "proxy-authorization", "Basic eDp5" } },
	  true, GET_LINE "proxy-authorization: Basic eDp5\r\n" CLOSE, NULL, false, -1 },
	{ "CONNECT", { { ":method", "CONNECT" }, { ":authority", "example.com:443" } }, false,
	  "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" CLOSE, NULL, false, -1 },
	{ "CONNECT with fields and content-length 0", { { ":authority", "[::1]:8443" },
	  { ":method", "CONNECT" }, { "proxy-authorization", "Basic eDp5" },
	  { "content-length", "0" } }, false,
	  "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\nproxy-authorization: Basic eDp5\r\n"
	  CLOSE, NULL, false, 0 },
	{ "OPTIONS *", { { ":method", "OPTIONS" }, { ":scheme", "http" },
	  { ":authority", "example.com" }, { ":path", "*" } }, true,
	  "OPTIONS http://example.com HTTP/1.1\r\nHost: example.com\r\n" CLOSE, NULL, false, -1 },
	{ "empty value and obs-text value", { GET_PS, { "x-e", "" }, { "x-o", "caf\xc3\xa9" } },
	  true, GET_LINE "x-e: \r\nx-o: caf\xc3\xa9\r\n" CLOSE, NULL, false, -1 },
	{ "inner whitespace in a value", { GET_PS, { "x", "a \t b" } }, true,
	  GET_LINE "x: a \t b\r\n" CLOSE, NULL, false, -1 },
	{ "scheme HTTPS written lower case", { { ":method", "GET" }, { ":scheme", "HTTPS" },
	  { ":authority", "example.com" }, { ":path", "/x?y" } }, true, GET_LINE CLOSE, NULL,
	  false, -1 },

	/* RFC 9113 §8.2.1: field names */
	{ "uppercase name", { GET_PS, { "Accept", "*/*" } }, true, NULL, "uppercase field name", false, -1 },
	{ "empty name", { GET_PS, { "", "v" } }, true, NULL, "empty field name", false, -1 },
	{ "space in a name", { GET_PS, { "a b", "v" } }, true, NULL,
	  "invalid character in a field name", false, -1 },
	{ "colon inside a name", { GET_PS, { "a:b", "v" } }, true, NULL,
	  "invalid character in a field name", false, -1 },
	/* RFC 9113 §8.2.1: field values */
	{ "CR in a value", { GET_PS, { "a", "x\ry" } }, true, NULL, "NUL, CR or LF in a field value", false, -1 },
	{ "LF in a value", { GET_PS, { "a", "x\ny" } }, true, NULL, "NUL, CR or LF in a field value", false, -1 },
	{ "LF in a pseudo value", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "/\n" } }, true, NULL,
	  "NUL, CR or LF in a field value", false, -1 },
	{ "leading SP", { GET_PS, { "a", " x" } }, true, NULL,
	  "field value with leading or trailing whitespace", false, -1 },
	{ "trailing HTAB", { GET_PS, { "a", "x\t" } }, true, NULL,
	  "field value with leading or trailing whitespace", false, -1 },
	{ "other CTL", { GET_PS, { "a", "x\x01y" } }, true, NULL,
	  "control character in a field value", false, -1 },
	{ "DEL", { GET_PS, { "a", "x\x7f" } }, true, NULL, "control character in a field value", false, -1 },

	/* RFC 9113 §8.3: pseudo-headers */
	{ "pseudo after regular", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { "a", "b" }, { ":path", "/" } }, true, NULL,
	  "pseudo-header after a regular field", false, -1 },
	{ "duplicate :path", { GET_PS, { ":path", "/" } }, true, NULL, "duplicate pseudo-header", false, -1 },
	{ "duplicate :method", { { ":method", "GET" }, GET_PS }, true, NULL,
	  "duplicate pseudo-header", false, -1 },
	{ "unknown pseudo", { { ":status", "200" }, GET_PS }, true, NULL, "unknown pseudo-header", false, -1 },
	{ "uppercase pseudo", { { ":Method", "GET" } }, true, NULL, "unknown pseudo-header", false, -1 },
	{ "bare colon", { { ":", "x" } }, true, NULL, "unknown pseudo-header", false, -1 },
	{ ":protocol", { { ":method", "CONNECT" }, { ":protocol", "websocket" },
	  { ":scheme", "https" }, { ":authority", "example.com" }, { ":path", "/chat" } }, true,
	  NULL, "extended CONNECT not supported (:protocol)", false, -1 },
	{ "no :method", { { ":scheme", "https" }, { ":authority", "example.com" },
	  { ":path", "/" } }, true, NULL, "missing :method", false, -1 },
	{ "empty list", { { NULL } }, true, NULL, "missing :method", false, -1 },
	{ "bad :method", { { ":method", "G T" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "/" } }, true, NULL, "invalid :method", false, -1 },
	{ "no :scheme", { { ":method", "GET" }, { ":authority", "example.com" },
	  { ":path", "/" } }, true, NULL, "missing :scheme", false, -1 },
	{ "ftp :scheme", { { ":method", "GET" }, { ":scheme", "ftp" },
	  { ":authority", "example.com" }, { ":path", "/" } }, true, NULL,
	  "unsupported :scheme (http or https only)", false, -1 },
	{ "no :path", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" } }, true, NULL, "missing :path", false, -1 },
	{ "empty :path", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "" } }, true, NULL, "empty :path", false, -1 },
	{ "* for GET", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "*" } }, true, NULL,
	  ":path \"*\" other than for OPTIONS", false, -1 },
	{ "relative :path", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "x/y" } }, true, NULL, "invalid :path", false, -1 },
	{ "fragment in :path", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "/a#b" } }, true, NULL, "invalid :path", false, -1 },
	{ "space in :path", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com" }, { ":path", "/a b" } }, true, NULL, "invalid :path", false, -1 },
	{ "no :authority, no host", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":path", "/" } }, true, NULL, "missing :authority and host", false, -1 },
	{ "empty :authority", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "" }, { ":path", "/" } }, true, NULL, "empty :authority", false, -1 },
	{ "userinfo", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "u:p@example.com" }, { ":path", "/" } }, true, NULL,
	  "userinfo in :authority", false, -1 },
	{ "bad port", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com:99999" }, { ":path", "/" } }, true, NULL,
	  "invalid :authority", false, -1 },
	{ "slash in authority", { { ":method", "GET" }, { ":scheme", "https" },
	  { ":authority", "example.com/evil" }, { ":path", "/" } }, true, NULL,
	  "invalid :authority", false, -1 },
	{ "host differs", { GET_PS, { "host", "other.example" } }, true, NULL,
	  "host differs from :authority", false, -1 },
	{ "second host differs (no :authority)", { { ":method", "GET" }, { ":scheme", "http" },
	  { ":path", "/" }, { "host", "a.example" }, { "host", "b.example" } }, true, NULL,
	  "host differs from :authority", false, -1 },

	/* RFC 9113 §8.5: CONNECT */
	{ "CONNECT with :path", { { ":method", "CONNECT" }, { ":authority", "example.com:443" },
	  { ":path", "/" } }, false, NULL, "CONNECT with :scheme or :path", false, -1 },
	{ "CONNECT with :scheme", { { ":method", "CONNECT" }, { ":scheme", "https" },
	  { ":authority", "example.com:443" } }, false, NULL, "CONNECT with :scheme or :path", false, -1 },
	{ "CONNECT without :authority", { { ":method", "CONNECT" }, { "host", "example.com:443" } },
	  false, NULL, "CONNECT without :authority", false, -1 },
	{ "CONNECT without port", { { ":method", "CONNECT" }, { ":authority", "example.com" } },
	  false, NULL, "invalid :authority (CONNECT needs host:port)", false, -1 },
	{ "CONNECT with a body length", { { ":method", "CONNECT" },
	  { ":authority", "example.com:443" }, { "content-length", "5" } }, false, NULL,
	  "content-length on CONNECT", false, -1 },

	/* RFC 9113 §8.2.2: connection-specific fields */
	{ "connection", { GET_PS, { "connection", "close" } }, true, NULL,
	  "connection-specific field: connection", false, -1 },
	{ "keep-alive", { GET_PS, { "keep-alive", "timeout=5" } }, true, NULL,
	  "connection-specific field: keep-alive", false, -1 },
	{ "proxy-connection", { GET_PS, { "proxy-connection", "keep-alive" } }, true, NULL,
	  "connection-specific field: proxy-connection", false, -1 },
	{ "transfer-encoding", { POST_PS, { "transfer-encoding", "chunked" } }, false, NULL,
	  "connection-specific field: transfer-encoding", false, -1 },
	{ "upgrade", { GET_PS, { "upgrade", "websocket" } }, true, NULL,
	  "connection-specific field: upgrade", false, -1 },
	{ "te: gzip", { GET_PS, { "te", "gzip" } }, true, NULL,
	  "te with a value other than trailers", false, -1 },
	{ "te: trailers, gzip", { GET_PS, { "te", "trailers, gzip" } }, true, NULL,
	  "te with a value other than trailers", false, -1 },

	/* content-length (RFC 9110 §8.6, RFC 9113 §8.1.1) */
	{ "content-length not digits", { POST_PS, { "content-length", "1x" } }, false, NULL,
	  "invalid content-length", false, -1 },
	{ "content-length list", { POST_PS, { "content-length", "1, 1" } }, false, NULL,
	  "invalid content-length", false, -1 },
	{ "content-length negative", { POST_PS, { "content-length", "-1" } }, false, NULL,
	  "invalid content-length", false, -1 },
	{ "content-length past 2^63-1", { POST_PS, { "content-length", "9223372036854775808" } },
	  false, NULL, "invalid content-length", false, -1 },
	{ "content-length values differ", { POST_PS, { "content-length", "1" },
	  { "content-length", "2" } }, false, NULL, "conflicting content-length values", false, -1 },
	{ "content-length 5 with END_STREAM", { POST_PS, { "content-length", "5" } }, true, NULL,
	  "content-length with END_STREAM", false, -1 },
};

/* Fill h from a row's name/value pairs; returns the count. */
static size_t fill(struct h2_header *h, const char *const (*f)[2])
{
	size_t n = 0;

	while (n < MAXF && f[n][0] != NULL) {
		h[n].name = (const uint8_t *)f[n][0];
		h[n].namelen = strlen(f[n][0]);
		h[n].value = (const uint8_t *)f[n][1];
		h[n].valuelen = strlen(f[n][1]);
		n++;
	}
	return n;
}

/* Every row: exact head and flags, or the exact refusal. */
static void test_request_rows(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct h2_header h[MAXF];
		size_t n = fill(h, r->f);
		struct h2_request out;
		const char *why = "unset";
		int rc = h2_request_translate(h, n, r->end_stream, BIG, &out, &why);

		if (r->want_head == NULL) {
			if (rc != -1 || why == NULL || strcmp(why, r->want_why) != 0)
				fail_msg("%s: got rc %d why \"%s\", want why \"%s\"", r->what, rc,
					 why ? why : "(null)", r->want_why);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got refusal \"%s\", want a head", r->what, why);
		if (out.head_len != strlen(r->want_head) ||
		    memcmp(out.head, r->want_head, out.head_len) != 0)
			fail_msg("%s: got head\n%.*s\nwant\n%s", r->what, (int)out.head_len,
				 out.head, r->want_head);
		if (out.chunked != r->want_chunked || out.content_length != r->want_cl)
			fail_msg("%s: got chunked %d cl %lld, want %d %lld", r->what, out.chunked,
				 (long long)out.content_length, r->want_chunked,
				 (long long)r->want_cl);
		if (out.connect != (strncmp(r->want_head, "CONNECT ", 8) == 0))
			fail_msg("%s: got connect %d", r->what, out.connect);
		free(out.head);
	}
}

/* A NUL anywhere in a value is malformed (RFC 9113 §8.2.1). */
static void test_request_nul(void **state)
{
	struct h2_header h[5];
	const char *const f[][2] = { GET_PS, { NULL, NULL } };
	struct h2_request out;
	const char *why;
	size_t n = fill(h, f);

	(void)state;
	h[n].name = (const uint8_t *)"a";
	h[n].namelen = 1;
	h[n].value = (const uint8_t *)"x\0y";
	h[n].valuelen = 3;
	assert_int_equal(h2_request_translate(h, n + 1, true, BIG, &out, &why), -1);
	assert_string_equal(why, "NUL, CR or LF in a field value");
	h[1].value = (const uint8_t *)"https\0";
	h[1].valuelen = 6;
	assert_int_equal(h2_request_translate(h, n, true, BIG, &out, &why), -1);
	assert_string_equal(why, "NUL, CR or LF in a field value");
}

/* max_head: a head of exactly max_head bytes passes, one byte less refuses. */
static void test_request_max_head(void **state)
{
	const char *const f[][2] = { GET_PS, { "a", "b" }, { NULL, NULL } };
	struct h2_header h[MAXF];
	struct h2_request out;
	const char *why;
	size_t n = fill(h, f), len;

	(void)state;
	assert_int_equal(h2_request_translate(h, n, true, BIG, &out, &why), 0);
	len = out.head_len;
	free(out.head);
	assert_int_equal(h2_request_translate(h, n, true, len, &out, &why), 0);
	assert_int_equal(out.head_len, len);
	free(out.head);
	assert_int_equal(h2_request_translate(h, n, true, len - 1, &out, &why), -1);
	assert_string_equal(why, "header list too large");
	assert_null(out.head);
}

/* ---- request trailers ---- */

struct trow {
	const char *what;
	const char *f[MAXF][2];
	size_t max;
	const char *want;     /* NULL: refused */
	const char *want_why;
};

static const struct trow trows[] = {
	{ "none", { { NULL } }, BIG, "", NULL },
	{ "two fields in order", { { "x-sum", "abc" }, { "x-b", "" } }, BIG,
	  "x-sum: abc\r\nx-b: \r\n", NULL },
	{ "te trailers, content-length and host dropped", { { "te", "trailers" },
	  { "content-length", "3" }, { "a", "1" }, { "host", "h" } }, BIG, "a: 1\r\n", NULL },
	{ "exactly max", { { "a", "1" } }, 6, "a: 1\r\n", NULL },
	{ "over max", { { "a", "1" } }, 5, NULL, "trailers too large" },
	{ "pseudo", { { ":path", "/" } }, BIG, NULL, "pseudo-header in trailers" },
	{ "uppercase", { { "A", "1" } }, BIG, NULL, "uppercase field name" },
	{ "connection", { { "connection", "x" } }, BIG, NULL,
	  "connection-specific field: connection" },
	{ "transfer-encoding", { { "transfer-encoding", "chunked" } }, BIG, NULL,
	  "connection-specific field: transfer-encoding" },
	{ "te gzip", { { "te", "gzip" } }, BIG, NULL, "te with a value other than trailers" },
	{ "CR", { { "a", "\r" } }, BIG, NULL, "NUL, CR or LF in a field value" },
	{ "trailing space", { { "a", "1 " } }, BIG, NULL,
	  "field value with leading or trailing whitespace" },
};

/* Every trailer row: exact lines or the exact refusal. */
static void test_request_trailers(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(trows) / sizeof(trows[0]); i++) {
		const struct trow *r = &trows[i];
		struct h2_header h[MAXF];
		size_t n = fill(h, r->f), len = 99;
		char *out = NULL;
		const char *why = "unset";
		int rc = h2_request_trailers(h, n, r->max, &out, &len, &why);

		if (r->want == NULL) {
			if (rc != -1 || why == NULL || strcmp(why, r->want_why) != 0 || out != NULL)
				fail_msg("%s: got rc %d why \"%s\", want \"%s\"", r->what, rc,
					 why ? why : "(null)", r->want_why);
			continue;
		}
		if (rc != 0 || out == NULL)
			fail_msg("%s: got refusal \"%s\"", r->what, why ? why : "(null)");
		if (len != strlen(r->want) || memcmp(out, r->want, len) != 0)
			fail_msg("%s: got \"%.*s\", want \"%s\"", r->what, (int)len, out, r->want);
		free(out);
	}
}

/* ---- responses ---- */

/* Render an h2 list as "name=value|..." for comparisons. */
static void render(const struct h2_header *h, size_t n, char *buf, size_t cap)
{
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < n; i++) {
		int w = snprintf(buf + len, cap - len, "%s%.*s=%.*s", i ? "|" : "",
				 (int)h[i].namelen, (const char *)h[i].name,
				 (int)h[i].valuelen, (const char *)h[i].value);

		assert_true(w >= 0 && (size_t)w < cap - len);
		len += (size_t)w;
	}
}

struct rrow {
	const char *what;
	const char *head; /* HTTP/1.1 response head */
	const char *want; /* rendered list; NULL: -1 */
};

static const struct rrow rrows[] = {
	{ "status and fields lower-cased, content-length last",
	  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
	  "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
	  ":status=200|content-type=text/plain|set-cookie=a=1|set-cookie=b=2|content-length=5" },
	{ "connection-specific fields dropped",
	  "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Trace\r\nKeep-Alive: timeout=5\r\n"
	  "Proxy-Connection: close\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\nTE: trailers\r\n"
	  "Trailer: X-Sum\r\nX-Trace: 1\r\nVary: Accept\r\n\r\n",
	  ":status=200|vary=Accept" },
	{ "proxy's own Proxy-Authenticate kept",
	  "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"
	  "Proxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n",
	  ":status=407|proxy-authenticate=Basic realm=\"p\"|proxy-authenticate=Negotiate|"
	  "content-length=0" },
	{ "Proxy-Authenticate listed in Connection dropped",
	  "HTTP/1.1 407 x\r\nConnection: Proxy-Authenticate\r\nProxy-Authenticate: Basic\r\n\r\n",
	  ":status=407" },
	{ "Proxy-Authorization and Host dropped",
	  "HTTP/1.1 200 OK\r\nProxy-Authorization: x\r\nHost: h\r\nA: 1\r\n\r\n",
	  ":status=200|a=1" },
	{ "no content-length for 204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
	  ":status=204" },
	{ "no content-length for 304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nETag: \"e\"\r\n\r\n",
	  ":status=304|etag=\"e\"" },
	{ "no content-length with transfer-encoding",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
	  ":status=200" },
	{ "invalid content-length dropped",
	  "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", ":status=200" },
	{ "content-length list normalised",
	  "HTTP/1.1 200 OK\r\nContent-Length: 04, 4\r\n\r\n", ":status=200|content-length=4" },
	{ "1xx", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
	  ":status=103|link=</s.css>; rel=preload" },
	{ "Connection lists Content-Length: refused",
	  "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 1\r\n\r\n", NULL },
	{ "Connection with a non-token: refused",
	  "HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n", NULL },
};

/* Parse an HTTP/1.1 response head into res (fields in f). */
static void parse_res(const char *head, size_t len, struct http_response *res,
		      struct http_field *f, size_t cap)
{
	static const struct http_limits lim = { 8192, BIG, 256 };

	memset(res, 0, sizeof(*res));
	res->fields = f;
	res->fields_cap = cap;
	if (http_parse_response(head, len, res, &lim) != (ssize_t)len)
		fail_msg("test head does not parse: %.*s", (int)len, head);
}

/* Every response row: the exact h2 list or -1. */
static void test_response_rows(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rrows) / sizeof(rrows[0]); i++) {
		const struct rrow *r = &rrows[i];
		struct http_field f[MAXF];
		struct http_response res;
		struct h2_header *h = NULL;
		size_t n = 99;
		char got[2048];
		int rc;

		parse_res(r->head, strlen(r->head), &res, f, MAXF);
		rc = h2_response_fields(&res, &h, &n);
		if (r->want == NULL) {
			if (rc != -1 || h != NULL || n != 0)
				fail_msg("%s: got rc %d, want -1", r->what, rc);
			continue;
		}
		if (rc != 0)
			fail_msg("%s: got -1", r->what);
		render(h, n, got, sizeof(got));
		if (strcmp(got, r->want) != 0)
			fail_msg("%s: got\n%s\nwant\n%s", r->what, got, r->want);
		free(h);
	}
}

/* Trailer fields of a response: framing and connection fields dropped. */
static void test_trailer_fields(void **state)
{
	const char *head = "HTTP/1.1 200 OK\r\nX-Sum: abc\r\nContent-Length: 3\r\n"
			   "Connection: X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n"
			   "Proxy-Authenticate: Basic\r\nHost: h\r\nServer-Timing: t;dur=1\r\n\r\n";
	struct http_field f[MAXF];
	struct http_response res;
	struct h2_header *h;
	size_t n;
	char got[1024];

	(void)state;
	parse_res(head, strlen(head), &res, f, MAXF);
	assert_int_equal(h2_trailer_fields(res.fields, res.nfields, &h, &n), 0);
	render(h, n, got, sizeof(got));
	assert_string_equal(got, "x-sum=abc|server-timing=t;dur=1");
	free(h);
	assert_int_equal(h2_trailer_fields(NULL, 0, &h, &n), 0);
	assert_int_equal(n, 0);
	free(h);
}

/* ---- property test: requests ---- */

static const char *const pnames[] = { ":method", ":scheme", ":authority", ":path",
				      ":protocol", ":status" };
static const char *const methods[] = { "GET", "POST", "CONNECT", "OPTIONS", "HEAD", "G T", "" };
static const char *const schemes[] = { "http", "https", "HTTPS", "ftp", "" };
static const char *const auths[] = { "example.com", "example.com:8080", "EXAMPLE.COM",
				     "[::1]:443", "a@b", "x.example:0", "h:1", "", "e x",
				     "example.com:443", "a/b", "a?b", "a#b", "a:" };
static const char *const paths[] = { "/", "/a?b=c", "*", "", "x", "/#f", "/%20", "?q" };
static const char *const rnames[] = { "host", "content-length", "cookie", "te", "connection",
				      "keep-alive", "proxy-connection", "transfer-encoding",
				      "upgrade", "accept", "x-a", "proxy-authorization", "trailer",
				      "" };
static const char *const rvalues[] = { "1", "0", "5", "trailers", "a=1", " x", "x\r\ny",
				       "gzip", "chunked", "", "example.com", "EXAMPLE.com",
				       "close", "x\001" };

/* A name in random case (for the forbidden names and the rest alike). */
static void random_case(char *s)
{
	for (; *s; s++)
		if (rnd_below(8) == 0 && *s >= 'a' && *s <= 'z')
			*s = (char)(*s - 'a' + 'A');
}

#define PICK(a) ((a)[rnd_below(sizeof(a) / sizeof((a)[0]))])

/* Is name (case-insensitive) one HTTP/1.1 connection-specific field? */
static bool conn_specific(struct slice name)
{
	return slice_eq_ci(name, "connection") || slice_eq_ci(name, "keep-alive") ||
	       slice_eq_ci(name, "proxy-connection") || slice_eq_ci(name, "transfer-encoding") ||
	       slice_eq_ci(name, "upgrade") || slice_eq_ci(name, "te");
}

/* Check one accepted request against http_parser (see the brief's invariants). */
static void check_request_head(const struct h2_header *h, size_t n, const struct h2_request *out,
			       uint64_t seed, unsigned round)
{
	static const struct http_limits lim = { BIG, BIG, 256 };
	struct http_field f[256];
	struct http_request req = { .fields = f, .fields_cap = 256 };
	struct http_target t;
	struct http_framing fr;
	const uint8_t *auth = NULL;
	size_t authlen = 0, i, nhost = 0, ncookie = 0;
	int status = 0;
	ssize_t got = http_parse_request(out->head, out->head_len, &req, &lim, &status);

	if (got != (ssize_t)out->head_len)
		fail_msg("seed %llu round %u: head does not parse (%zd, %d):\n%.*s",
			 (unsigned long long)seed, round, got, status, (int)out->head_len, out->head);
	for (i = 0; i < n && auth == NULL; i++)
		if (h[i].namelen == 10 && memcmp(h[i].name, ":authority", 10) == 0) {
			auth = h[i].value;
			authlen = h[i].valuelen;
		}
	for (i = 0; i < n && auth == NULL; i++)
		if (h[i].namelen == 4 && memcmp(h[i].name, "host", 4) == 0) {
			auth = h[i].value;
			authlen = h[i].valuelen;
		}
	assert_non_null(auth);
	assert_int_equal(req.minor, 1);
	assert_int_equal(http_parse_target(req.method, req.target, &t), 0);
	assert_int_equal(t.form, out->connect ? HTTP_TARGET_AUTHORITY : HTTP_TARGET_ABSOLUTE);
	/* the target names exactly the authority: scheme "://" authority, then
	 * the path or nothing */
	if (!out->connect) {
		const char *a = (const char *)memchr(req.target.p, ':', req.target.len) + 3;
		size_t alen = req.target.len - (size_t)(a - req.target.p);

		if (alen > authlen)
			alen = authlen;
		if (alen != authlen || memcmp(a, auth, authlen) != 0 ||
		    (req.target.p + req.target.len > a + authlen && a[authlen] != '/'))
			fail_msg("seed %llu round %u: target %.*s does not carry :authority",
				 (unsigned long long)seed, round, (int)req.target.len,
				 req.target.p);
	} else if (req.target.len != authlen || memcmp(req.target.p, auth, authlen) != 0) {
		fail_msg("seed %llu round %u: CONNECT target differs", (unsigned long long)seed,
			 round);
	}
	assert_true(req.nfields >= 2);
	/* the last field is Connection: close; before it, only our framing */
	assert_true(slice_eq(f[req.nfields - 1].name, "Connection") &&
		    slice_eq(f[req.nfields - 1].value, "close"));
	for (i = 0; i + 1 < req.nfields; i++) {
		if (conn_specific(f[i].name) &&
		    !(out->chunked && i + 2 == req.nfields &&
		      slice_eq(f[i].name, "Transfer-Encoding") && slice_eq(f[i].value, "chunked")))
			fail_msg("seed %llu round %u: connection-specific field %.*s in\n%.*s",
				 (unsigned long long)seed, round, (int)f[i].name.len, f[i].name.p,
				 (int)out->head_len, out->head);
		if (slice_eq_ci(f[i].name, "host")) {
			nhost++;
			if (f[i].value.len != authlen ||
			    strncasecmp(f[i].value.p, (const char *)auth, authlen) != 0)
				fail_msg("seed %llu round %u: Host differs from :authority",
					 (unsigned long long)seed, round);
		}
		if (slice_eq_ci(f[i].name, "cookie"))
			ncookie++;
	}
	assert_int_equal(nhost, 1);
	assert_true(ncookie <= 1);
	assert_int_equal(http_request_framing(&req, &fr), 0);
	if (out->connect)
		assert_int_equal(fr.kind, HTTP_BODY_NONE);
	else if (out->content_length >= 0)
		assert_true(fr.kind == HTTP_BODY_LENGTH &&
			    fr.length == (uint64_t)out->content_length);
	else
		assert_int_equal(fr.kind, out->chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_NONE);
}

/* Random header lists: malformed, or a head the HTTP/1.1 parser accepts as an
 * absolute-form (authority-form for CONNECT) request with Host = :authority
 * and no connection-specific field but our own framing and Connection: close. */
static void test_request_property(void **state)
{
	uint64_t seed;
	unsigned rounds = prng_start("h2 request property", 20000, &seed), round;
	unsigned ok = 0;

	(void)state;
	for (round = 0; round < rounds; round++) {
		char names[MAXF][32];
		struct h2_header h[MAXF];
		const char *vals[MAXF];
		size_t n = 0, i, nreg;
		struct h2_request out;
		const char *why;
		int rc;

		/* pseudo-headers: mostly the four a request needs, in order */
		for (i = 0; i < 4; i++) {
			if (rnd_below(10) == 0)
				continue;
			strcpy(names[n], rnd_below(20) == 0 ? PICK(pnames) : pnames[i]);
			vals[n] = i == 0 ? (rnd_below(2) ? "GET" : PICK(methods))
				: i == 1 ? (rnd_below(2) ? "https" : PICK(schemes))
				: i == 2 ? (rnd_below(2) ? "example.com" : PICK(auths))
				: (rnd_below(2) ? "/" : PICK(paths));
			n++;
		}
		nreg = rnd_below(6);
		for (i = 0; i < nreg; i++) {
			strcpy(names[n], PICK(rnames));
			if (rnd_below(3) == 0)
				random_case(names[n]);
			vals[n] = rnd_below(3) == 0 ? "1" : PICK(rvalues);
			n++;
		}
		for (i = 0; i < n; i++) {
			h[i].name = (const uint8_t *)names[i];
			h[i].namelen = strlen(names[i]);
			h[i].value = (const uint8_t *)vals[i];
			h[i].valuelen = strlen(vals[i]);
		}
		if (rnd_below(4) == 0 && n > 1) { /* random pseudo order */
			size_t a = rnd_below(n), b = (a + 1 + rnd_below(n - 1)) % n;
			struct h2_header tmp = h[a];

			h[a] = h[b];
			h[b] = tmp;
		}
		rc = h2_request_translate(h, n, rnd_below(2) == 0, BIG, &out, &why);
		if (rc != 0) {
			if (rc != -1 || why == NULL || out.head != NULL)
				fail_msg("seed %llu round %u: rc %d", (unsigned long long)seed,
					 round, rc);
			continue;
		}
		ok++;
		check_request_head(h, n, &out, seed, round);
		free(out.head);
	}
	/* the generator must reach the accepting branch */
	if (rounds >= 1000 && ok < rounds / 50)
		fail_msg("seed %llu: only %u of %u accepted", (unsigned long long)seed, ok, rounds);
}

/* ---- property test: responses against an oracle ---- */

static const char *const hnames[] = { "Connection", "Keep-Alive", "Transfer-Encoding", "TE",
				      "Upgrade", "Proxy-Connection", "Trailer", "Content-Length",
				      "Host", "Proxy-Authenticate", "Proxy-Authorization", "X-A",
				      "X-B", "Set-Cookie", "Cache-Control", "Vary", "X-C" };
static const char *const listable[] = { "x-a", "X-B", "close", "keep-alive", "Set-Cookie",
					"vary", "proxy-authenticate", "x-c", "te", "upgrade",
					"content-length", "host" };
static const int statuses[] = { 100, 103, 200, 204, 206, 304, 404, 407, 500 };

/* The fields no h2 list may carry, whatever Connection says: RFC 9113
 * §8.2.2, RFC 9110 §7.6.1 (the hop-by-hop set) and the ones the proxy
 * rewrites itself (host; content-length is written apart). */
static bool oracle_dropped(const char *name)
{
	static const char *const d[] = { "connection", "keep-alive", "proxy-connection", "te",
					 "trailer", "transfer-encoding", "upgrade",
					 "proxy-authorization", "host", "content-length" };
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		if (strcasecmp(name, d[i]) == 0)
			return true;
	return false;
}

struct ofield {
	char name[32];
	char value[128];
};

/* Random HTTP/1.1 responses: the h2 list is exactly what the oracle says. */
static void test_response_property(void **state)
{
	uint64_t seed;
	unsigned rounds = prng_start("h2 response property", 20000, &seed), round;

	(void)state;
	for (round = 0; round < rounds; round++) {
		struct ofield in[MAXF];
		char head[4096], want[4096], got[4096];
		char listed[64][32];
		size_t n = 1 + rnd_below(MAXF - 1), i, j, k, nlisted = 0, len;
		int status = statuses[rnd_below(sizeof(statuses) / sizeof(statuses[0]))];
		bool refuse = false, has_te = false, cl_ok = true, cl_any = false;
		unsigned long cl = 0;
		struct http_field f[MAXF];
		struct http_response res;
		struct h2_header *h;
		size_t hn;
		int rc;

		for (i = 0; i < n; i++) {
			strcpy(in[i].name, PICK(hnames));
			random_case(in[i].name);
			if (strcasecmp(in[i].name, "connection") == 0) {
				size_t m = rnd_below(4);

				in[i].value[0] = '\0';
				for (j = 0; j < m; j++) {
					const char *e = PICK(listable);

					/* the framing names are rare: they refuse the message */
					if ((strcasecmp(e, "content-length") == 0 ||
					     strcasecmp(e, "host") == 0) && rnd_below(8) != 0)
						e = "x-a";
					strcat(in[i].value, j ? ", " : "");
					strcat(in[i].value, e);
				}
			} else if (strcasecmp(in[i].name, "content-length") == 0) {
				strcpy(in[i].value, rnd_below(8) == 0 ? "x" :
				       rnd_below(6) == 0 ? "7" : "5");
			} else if (strcasecmp(in[i].name, "transfer-encoding") == 0) {
				strcpy(in[i].value, "chunked");
			} else {
				snprintf(in[i].value, sizeof(in[i].value), "v%zu %u", i,
					 (unsigned)rnd_below(100));
			}
		}
		len = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 %d R\r\n", status);
		for (i = 0; i < n; i++)
			len += (size_t)snprintf(head + len, sizeof(head) - len, "%s: %s\r\n",
						in[i].name, in[i].value);
		len += (size_t)snprintf(head + len, sizeof(head) - len, "\r\n");
		parse_res(head, len, &res, f, MAXF);

		/* the oracle */
		for (i = 0; i < n; i++) {
			char *v, *save = NULL, *e;

			if (strcasecmp(in[i].name, "transfer-encoding") == 0)
				has_te = true;
			if (strcasecmp(in[i].name, "content-length") == 0) {
				unsigned long x = strtoul(in[i].value, NULL, 10);

				if (strcmp(in[i].value, "x") == 0 || (cl_any && x != cl))
					cl_ok = false;
				cl = x;
				cl_any = true;
			}
			if (strcasecmp(in[i].name, "connection") != 0)
				continue;
			v = in[i].value;
			while ((e = strtok_r(v, ", ", &save)) != NULL) {
				v = NULL;
				/* RFC 9110 §7.6.1: framing fields must not be listed */
				if (strcasecmp(e, "content-length") == 0 ||
				    strcasecmp(e, "host") == 0 ||
				    strcasecmp(e, "transfer-encoding") == 0)
					refuse = true;
				strcpy(listed[nlisted++], e);
			}
		}
		rc = h2_response_fields(&res, &h, &hn);
		if (refuse) {
			if (rc != -1)
				fail_msg("seed %llu round %u: got %d, want -1 for\n%s",
					 (unsigned long long)seed, round, rc, head);
			continue;
		}
		k = (size_t)snprintf(want, sizeof(want), ":status=%d", status);
		for (i = 0; i < n; i++) {
			bool drop = oracle_dropped(in[i].name);
			char lower[32];

			for (j = 0; j < nlisted; j++)
				if (strcasecmp(listed[j], in[i].name) == 0)
					drop = true;
			if (drop)
				continue;
			for (j = 0; in[i].name[j]; j++)
				lower[j] = (char)((in[i].name[j] >= 'A' && in[i].name[j] <= 'Z')
					? in[i].name[j] - 'A' + 'a' : in[i].name[j]);
			lower[j] = '\0';
			k += (size_t)snprintf(want + k, sizeof(want) - k, "|%s=%s", lower,
					      in[i].value);
		}
		if (cl_any && cl_ok && !has_te && status >= 200 && status != 204 && status != 304)
			k += (size_t)snprintf(want + k, sizeof(want) - k, "|content-length=%lu", cl);
		if (rc != 0)
			fail_msg("seed %llu round %u: got -1 for\n%s", (unsigned long long)seed,
				 round, head);
		render(h, hn, got, sizeof(got));
		for (i = 1; i < hn; i++)
			if (conn_specific(slice_make((const char *)h[i].name, h[i].namelen)))
				fail_msg("seed %llu round %u: connection-specific field in %s",
					 (unsigned long long)seed, round, got);
		if (strcmp(got, want) != 0)
			fail_msg("seed %llu round %u: for\n%sgot  %s\nwant %s",
				 (unsigned long long)seed, round, head, got, want);
		free(h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_rows),
		cmocka_unit_test(test_request_nul),
		cmocka_unit_test(test_request_max_head),
		cmocka_unit_test(test_request_trailers),
		cmocka_unit_test(test_response_rows),
		cmocka_unit_test(test_trailer_fields),
		cmocka_unit_test(test_request_property),
		cmocka_unit_test(test_response_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

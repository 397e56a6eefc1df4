/* test_http_parser.c - unit tests of the strict HTTP/1.1 parser (RFC 9112). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "http_parser.h"

#define FULL ((ssize_t)-2) /* want: the whole input is the head */
#define MAXF 128

#define ROW(name, lit, want, status) { name, lit, sizeof(lit) - 1, want, status }

static const struct http_limits deflim = { 8192, 65536, 100 };

/* Parse a request with a fresh field array. */
static ssize_t parse_req(const char *buf, size_t len, const struct http_limits *lim,
			 struct http_request *req, struct http_field *fields, int *status)
{
	memset(req, 0, sizeof(*req));
	req->fields = fields;
	req->fields_cap = MAXF;
	*status = 0;
	return http_parse_request(buf, len, req, lim, status);
}

/* Parse a response with a fresh field array. */
static ssize_t parse_res(const char *buf, size_t len, const struct http_limits *lim,
			 struct http_response *res, struct http_field *fields)
{
	memset(res, 0, sizeof(*res));
	res->fields = fields;
	res->fields_cap = MAXF;
	return http_parse_response(buf, len, res, lim);
}

/* Does a slice hold exactly this string? */
static int slice_is(struct slice s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* ---------------------------------------------------------------- requests */

struct req_row {
	const char *name;
	const char *in;
	size_t len;
	ssize_t want;   /* FULL, a length, HTTP_NEED_MORE or HTTP_ERROR */
	int status;     /* when HTTP_ERROR */
};

static const struct req_row req_rows[] = {
	ROW("simple absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", FULL, 0),
	ROW("no fields", "GET http://a/ HTTP/1.1\r\n\r\n", FULL, 0),
	ROW("HTTP/1.0", "GET http://a/ HTTP/1.0\r\n\r\n", FULL, 0),
	ROW("leading empty lines", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", FULL, 0),
	ROW("pipelined: head ends before the next request",
	    "GET / HTTP/1.1\r\nA: b\r\n\r\nGET / HTTP/1.1\r\n\r\n", 24, 0),
	ROW("body bytes follow the head", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 38, 0),
	ROW("HTAB and obs-text in value", "GET / HTTP/1.1\r\nA: x\ty \x80\xff\r\n\r\n", FULL, 0),
	ROW("empty field value", "GET / HTTP/1.1\r\nA:\r\n\r\n", FULL, 0),
	ROW("value of only OWS", "GET / HTTP/1.1\r\nA: \t \r\n\r\n", FULL, 0),
	ROW("lower-case method is a token", "get / HTTP/1.1\r\n\r\n", FULL, 0),
	ROW("incomplete head", "GET / HTTP/1.1\r\nHost: a\r\n", HTTP_NEED_MORE, 0),
	ROW("empty input", "", HTTP_NEED_MORE, 0),
	/* bare CR / bare LF (RFC 9112 §2.2) */
	ROW("bare CR in value", "GET / HTTP/1.1\r\nA: x\ry\r\n\r\n", HTTP_ERROR, 400),
	ROW("bare CR after request-line", "GET / HTTP/1.1\rX\n\r\n", HTTP_ERROR, 400),
	ROW("bare CR at end of head", "GET / HTTP/1.1\r\nA: b\r\n\rX", HTTP_ERROR, 400),
	ROW("bare CR before request-line", "\rGET / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("bare CR in target", "GET /a\rb HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("bare LF ends request-line", "GET / HTTP/1.1\nA: b\r\n\r\n", HTTP_ERROR, 400),
	ROW("bare LF ends field line", "GET / HTTP/1.1\r\nA: b\n\r\n", HTTP_ERROR, 400),
	ROW("bare LF ends head", "GET / HTTP/1.1\r\nA: b\r\n\n", HTTP_ERROR, 400),
	ROW("bare LF inside value", "GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", HTTP_ERROR, 400),
	ROW("bare LF before request-line", "\nGET / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	/* NUL and CTLs */
	ROW("NUL in value", "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", HTTP_ERROR, 400),
	ROW("NUL in name", "GET / HTTP/1.1\r\nA\0: b\r\n\r\n", HTTP_ERROR, 400),
	ROW("NUL in method", "G\0T / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("NUL in target", "GET /\0 HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("CTL 0x01 in value", "GET / HTTP/1.1\r\nA: \x01\r\n\r\n", HTTP_ERROR, 400),
	ROW("CTL 0x1f in value", "GET / HTTP/1.1\r\nA: b\x1f\r\n\r\n", HTTP_ERROR, 400),
	ROW("DEL in value", "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", HTTP_ERROR, 400),
	ROW("VT in value", "GET / HTTP/1.1\r\nA: b\x0b\r\n\r\n", HTTP_ERROR, 400),
	/* field lines (RFC 9112 §5) */
	ROW("obs-fold", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HTTP_ERROR, 400),
	ROW("obs-fold with HTAB", "GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HTTP_ERROR, 400),
	ROW("whitespace before first field", "GET / HTTP/1.1\r\n A: b\r\n\r\n", HTTP_ERROR, 400),
	ROW("space before colon", "GET / HTTP/1.1\r\nA : b\r\n\r\n", HTTP_ERROR, 400),
	ROW("HTAB before colon", "GET / HTTP/1.1\r\nA\t: b\r\n\r\n", HTTP_ERROR, 400),
	ROW("empty field name", "GET / HTTP/1.1\r\n: b\r\n\r\n", HTTP_ERROR, 400),
	ROW("non-token field name", "GET / HTTP/1.1\r\nA(b): c\r\n\r\n", HTTP_ERROR, 400),
	ROW("field name with slash", "GET / HTTP/1.1\r\nA/b: c\r\n\r\n", HTTP_ERROR, 400),
	ROW("field name with obs-text", "GET / HTTP/1.1\r\nA\xe9: c\r\n\r\n", HTTP_ERROR, 400),
	ROW("field line without colon", "GET / HTTP/1.1\r\nAbc\r\n\r\n", HTTP_ERROR, 400),
	/* request-line (RFC 9112 §3) */
	ROW("non-token method", "G(T / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("method with obs-text", "G\xc9T / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("leading SP (empty method)", " GET / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("two SP after method", "GET  / HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("two SP before version", "GET /  HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("HTAB as separator", "GET\t/ HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("trailing SP after version", "GET / HTTP/1.1 \r\n\r\n", HTTP_ERROR, 400),
	ROW("HTTP/0.9 request", "GET /\r\n\r\n", HTTP_ERROR, 400),
	ROW("HTTP/0.9 with SP", "GET / \r\n\r\n", HTTP_ERROR, 400),
	ROW("only a method", "GET\r\n\r\n", HTTP_ERROR, 400),
	ROW("lower-case HTTP-name", "GET / http/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("two-digit minor", "GET / HTTP/1.10\r\n\r\n", HTTP_ERROR, 400),
	ROW("no dot in version", "GET / HTTP/11\r\n\r\n", HTTP_ERROR, 400),
	ROW("version HTTP/1", "GET / HTTP/1\r\n\r\n", HTTP_ERROR, 400),
	ROW("letters in version", "GET / HTTP/x.y\r\n\r\n", HTTP_ERROR, 400),
	ROW("major 2", "GET / HTTP/2.0\r\n\r\n", HTTP_ERROR, 505),
	ROW("major 0", "GET / HTTP/0.9\r\n\r\n", HTTP_ERROR, 505),
	ROW("major 3", "GET / HTTP/3.1\r\nA: b\r\n\r\n", HTTP_ERROR, 505),
	ROW("DEL in target", "GET /\x7f HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("obs-text in target", "GET /\x80 HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
	ROW("HTAB in target", "GET /a\tb HTTP/1.1\r\n\r\n", HTTP_ERROR, 400),
};

/* Each request row gives the status and length it should. */
static void test_request_rows(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
		const struct req_row *r = &req_rows[i];
		struct http_request req;
		struct http_field f[MAXF];
		ssize_t want = r->want == FULL ? (ssize_t)r->len : r->want;
		int st;
		ssize_t got = parse_req(r->in, r->len, &deflim, &req, f, &st);

		if (got != want)
			fail_msg("%s: got %zd, want %zd (status %d)", r->name, got, want, st);
		if (want == HTTP_ERROR && st != r->status)
			fail_msg("%s: got status %d, want %d", r->name, st, r->status);
	}
}

/* Every prefix of every row: need-more until the result is decided, and then
 * the same result (an incremental caller sees one consistent answer). */
static void test_request_prefixes(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
		const struct req_row *r = &req_rows[i];
		struct http_request req;
		struct http_field f[MAXF];
		int st, final_st;
		ssize_t final = parse_req(r->in, r->len, &deflim, &req, f, &final_st);
		int decided = 0;

		for (k = 0; k <= r->len; k++) {
			ssize_t got = parse_req(r->in, k, &deflim, &req, f, &st);

			if (got == HTTP_NEED_MORE) {
				if (decided)
					fail_msg("%s: prefix %zu: got need-more after a result",
						 r->name, k);
				continue;
			}
			decided = 1;
			if (got != final || (got == HTTP_ERROR && st != final_st))
				fail_msg("%s: prefix %zu: got %zd/%d, want %zd/%d", r->name, k,
					 got, st, final, final_st);
		}
		if (r->want == FULL) {
			/* A complete head: every strict prefix needs more. */
			for (k = 0; k < r->len; k++)
				if (parse_req(r->in, k, &deflim, &req, f, &st) != 0)
					fail_msg("%s: prefix %zu of a valid head: want need-more",
						 r->name, k);
		}
	}
}

/* The slices point at the right bytes; values are OWS-trimmed; order and
 * duplicates are kept. */
static void test_request_contents(void **state)
{
	static const char in[] = "\r\nPOST http://h:8/p?q HTTP/1.1\r\n"
				 "Host:h\r\n"
				 "X-A:  \t v a l \t \r\n"
				 "x-a: second\r\n"
				 "Empty:   \r\n"
				 "\r\n";
	struct http_request req;
	struct http_field f[MAXF];
	int st;
	ssize_t n = parse_req(in, sizeof(in) - 1, &deflim, &req, f, &st);
	const struct http_field *xa;

	(void)state;
	if (n != (ssize_t)sizeof(in) - 1)
		fail_msg("got %zd, want %zu", n, sizeof(in) - 1);
	assert_true(slice_is(req.method, "POST"));
	assert_true(slice_is(req.target, "http://h:8/p?q"));
	assert_int_equal(req.minor, 1);
	assert_int_equal(req.nfields, 4);
	assert_true(slice_is(f[0].name, "Host"));
	assert_true(slice_is(f[0].value, "h"));
	assert_true(slice_is(f[1].name, "X-A"));
	if (!slice_is(f[1].value, "v a l"))
		fail_msg("got value '%.*s', want 'v a l'", (int)f[1].value.len, f[1].value.p);
	assert_true(slice_is(f[2].value, "second"));
	assert_true(slice_is(f[3].name, "Empty"));
	assert_int_equal(f[3].value.len, 0);
	/* slices are into the input, never copies */
	assert_true(req.method.p >= in && req.method.p < in + sizeof(in));
	xa = http_field_find(f, req.nfields, "x-A");
	assert_ptr_equal(xa, &f[1]);
	assert_null(http_field_find(f, req.nfields, "X-B"));
	assert_null(http_field_find(f, 0, "Host"));

	n = parse_req("GET / HTTP/1.0\r\n\r\n", 18, &deflim, &req, f, &st);
	assert_int_equal(n, 18);
	assert_int_equal(req.minor, 0);
	n = parse_req("GET / HTTP/1.7\r\n\r\n", 18, &deflim, &req, f, &st);
	assert_int_equal(n, 18);
	if (req.minor != 1)
		fail_msg("HTTP/1.7: got minor %d, want 1", req.minor);
}

/* Limits: 414 and 431 are answered as soon as the limit is passed. */
static void test_request_limits(void **state)
{
	struct http_limits lim = { 20, 64, 3 };
	struct http_request req;
	struct http_field f[MAXF];
	char big[256];
	int st;
	ssize_t n;
	size_t k;

	(void)state;
	/* exactly 20 bytes of request-line */
	assert_int_equal(strlen("GET /123456 HTTP/1.1"), 20);
	n = parse_req("GET /123456 HTTP/1.1\r\n\r\n", 24, &lim, &req, f, &st);
	if (n != 24)
		fail_msg("20-byte request-line: got %zd (%d), want 24", n, st);
	n = parse_req("GET /1234567 HTTP/1.1\r\n\r\n", 25, &lim, &req, f, &st);
	if (n != HTTP_ERROR || st != 414)
		fail_msg("21-byte request-line: got %zd/%d, want -1/414", n, st);
	/* a long target with no CRLF yet */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	n = parse_req(big, 25, &lim, &req, f, &st);
	if (n != HTTP_ERROR || st != 414)
		fail_msg("unfinished long target: got %zd/%d, want -1/414", n, st);
	n = parse_req(big, 20, &lim, &req, f, &st);
	if (n != HTTP_NEED_MORE)
		fail_msg("20 bytes of target so far: got %zd/%d, want need-more", n, st);
	/* a long method */
	n = parse_req("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26, &lim, &req, f, &st);
	if (n != HTTP_ERROR || st != 414)
		fail_msg("long method: got %zd/%d, want -1/414", n, st);
	/* leading CRLF do not count against the request-line */
	n = parse_req("\r\n\r\nGET /123456 HTTP/1.1\r\n\r\n", 28, &lim, &req, f, &st);
	if (n != 28)
		fail_msg("CRLF + 20-byte line: got %zd/%d, want 28", n, st);

	/* header bytes: 64 max. The head below is exactly 64 bytes. */
	{
		static const char h64[] = "GET / HTTP/1.1\r\nA: 01234567890123456789012345678901234567890\r\n\r\n";

		assert_int_equal(sizeof(h64) - 1, 64);
		n = parse_req(h64, 64, &lim, &req, f, &st);
		if (n != 64)
			fail_msg("64-byte head: got %zd/%d, want 64", n, st);
	}
	{
		static const char h65[] = "GET / HTTP/1.1\r\nA: 012345678901234567890123456789012345678901\r\n\r\n";

		n = parse_req(h65, sizeof(h65) - 1, &lim, &req, f, &st);
		if (n != HTTP_ERROR || st != 431)
			fail_msg("65-byte head: got %zd/%d, want -1/431", n, st);
		/* not yet complete, already too large */
		n = parse_req(h65, 65, &lim, &req, f, &st);
		if (n != HTTP_ERROR || st != 431)
			fail_msg("65 bytes, incomplete: got %zd/%d, want -1/431", n, st);
		n = parse_req(h65, 64, &lim, &req, f, &st);
		if (n != HTTP_NEED_MORE)
			fail_msg("64 bytes, incomplete: got %zd/%d, want need-more", n, st);
	}
	/* endless leading CRLFs are bounded too */
	for (k = 0; k < 100; k += 2)
		memcpy(big + k, "\r\n", 2);
	n = parse_req(big, 100, &lim, &req, f, &st);
	if (n != HTTP_ERROR || st != 431)
		fail_msg("100 bytes of CRLF: got %zd/%d, want -1/431", n, st);

	/* field count: 3 max */
	n = parse_req("GET / HTTP/1.1\r\nA:1\r\nB:2\r\nC:3\r\n\r\n", 33, &lim, &req, f, &st);
	if (n != 33 || req.nfields != 3)
		fail_msg("3 fields: got %zd/%d (%zu fields), want 33", n, st, req.nfields);
	n = parse_req("GET / HTTP/1.1\r\nA:1\r\nB:2\r\nC:3\r\nD", 32, &lim, &req, f, &st);
	if (n != HTTP_ERROR || st != 431)
		fail_msg("4th field begun: got %zd/%d, want -1/431", n, st);
	/* a caller array smaller than max_headers is never overrun */
	lim.max_headers = 100;
	memset(&req, 0, sizeof(req));
	req.fields = f;
	req.fields_cap = 2;
	n = http_parse_request("GET / HTTP/1.1\r\nA:1\r\nB:2\r\nC:3\r\n\r\n", 33, &req, &lim, &st);
	if (n != HTTP_ERROR || st != 431)
		fail_msg("fields_cap 2, 3 fields: got %zd/%d, want -1/431", n, st);
}

/* --------------------------------------------------------------- responses */

static const struct req_row res_rows[] = {
	ROW("200 OK", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", FULL, 0),
	ROW("HTTP/1.0", "HTTP/1.0 404 Not Found\r\n\r\n", FULL, 0),
	ROW("empty reason", "HTTP/1.1 200 \r\n\r\n", FULL, 0),
	ROW("no SP after status (tolerated)", "HTTP/1.1 200\r\n\r\n", FULL, 0),
	ROW("reason with obs-text and HTAB", "HTTP/1.1 200 \xc3\xa9\tok\r\n\r\n", FULL, 0),
	ROW("100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 25, 0),
	ROW("599", "HTTP/1.1 599 x\r\n\r\n", FULL, 0),
	ROW("incomplete", "HTTP/1.1 20", HTTP_NEED_MORE, 0),
	ROW("status 099", "HTTP/1.1 099 x\r\n\r\n", HTTP_ERROR, 0),
	ROW("status 600", "HTTP/1.1 600 x\r\n\r\n", HTTP_ERROR, 0),
	ROW("4-digit status", "HTTP/1.1 2000 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("2-digit status", "HTTP/1.1 20 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("HTTP/2", "HTTP/2 200 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("lower-case http", "http/1.1 200 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("HTTP/0.9-style body", "<html>", HTTP_ERROR, 0),
	ROW("two SP", "HTTP/1.1  200 OK\r\n\r\n", HTTP_ERROR, 0),
	ROW("NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n", HTTP_ERROR, 0),
	ROW("bare LF", "HTTP/1.1 200 OK\nA: b\r\n\r\n", HTTP_ERROR, 0),
	ROW("space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", HTTP_ERROR, 0),
	ROW("obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", HTTP_ERROR, 0),
	ROW("bare CR in field", "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", HTTP_ERROR, 0),
};

/* Each response row, and its prefixes. */
static void test_response_rows(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(res_rows) / sizeof(res_rows[0]); i++) {
		const struct req_row *r = &res_rows[i];
		struct http_response res;
		struct http_field f[MAXF];
		ssize_t want = r->want == FULL ? (ssize_t)r->len : r->want;
		ssize_t got = parse_res(r->in, r->len, &deflim, &res, f);
		int decided = 0;

		if (got != want)
			fail_msg("%s: got %zd, want %zd", r->name, got, want);
		for (k = 0; k <= r->len; k++) {
			ssize_t g = parse_res(r->in, k, &deflim, &res, f);

			if (g == HTTP_NEED_MORE) {
				if (decided)
					fail_msg("%s: prefix %zu: need-more after a result", r->name, k);
				continue;
			}
			decided = 1;
			if (g != got)
				fail_msg("%s: prefix %zu: got %zd, want %zd", r->name, k, g, got);
		}
	}
}

/* Status line contents. */
static void test_response_contents(void **state)
{
	struct http_response res;
	struct http_field f[MAXF];
	struct http_limits lim = { 8192, 40, 2 };
	ssize_t n;

	(void)state;
	n = parse_res("HTTP/1.0 404 Not  Found\r\nA: b\r\n\r\n", 33, &deflim, &res, f);
	assert_int_equal(n, 33);
	assert_int_equal(res.status, 404);
	assert_int_equal(res.minor, 0);
	assert_true(slice_is(res.reason, "Not  Found"));
	assert_int_equal(res.nfields, 1);
	n = parse_res("HTTP/1.1 204\r\n\r\n", 16, &deflim, &res, f);
	assert_int_equal(n, 16);
	assert_int_equal(res.status, 204);
	assert_int_equal(res.reason.len, 0);
	/* limits: too large, too many fields */
	n = parse_res("HTTP/1.1 200 OK\r\nA: 01234567890123456789012", 41, &lim, &res, f);
	if (n != HTTP_ERROR)
		fail_msg("41-byte incomplete head, limit 40: got %zd, want -1", n);
	n = parse_res("HTTP/1.1 200 OK\r\nA:1\r\nB:2\r\nC", 29, &lim, &res, f);
	if (n != HTTP_ERROR)
		fail_msg("3 fields, limit 2: got %zd, want -1", n);
}

/* ----------------------------------------------------------------- framing */

struct framing_row {
	const char *name;
	const char *head; /* a whole request or response head */
	int head_req, connect_req; /* responses */
	int ret;
	enum http_body_kind kind;
	uint64_t length;
};

static const struct framing_row reqf_rows[] = {
	{ "no body", "GET / HTTP/1.1\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "CL 10", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 10 },
	{ "CL 0", "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 0 },
	{ "CL any case", "POST / HTTP/1.1\r\ncontent-LENGTH: 7\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 7 },
	{ "CL leading zeros", "POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 7 },
	{ "CL list of identical values", "POST / HTTP/1.1\r\nContent-Length: 5, 5,5\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 5 },
	{ "two CL fields, same value", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 5 },
	{ "CL max", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 9223372036854775807ULL },
	{ "CL 2^63 overflows", "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL 2^64 overflows", "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL huge", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL list differing", "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "two CL fields differing", "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL +5", "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL -5", "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL 5a", "POST / HTTP/1.1\r\nContent-Length: 5a\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL 0x5", "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL 5 5", "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL empty", "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL trailing comma", "POST / HTTP/1.1\r\nContent-Length: 5,\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL leading comma", "POST / HTTP/1.1\r\nContent-Length: ,5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL 5.0", "POST / HTTP/1.1\r\nContent-Length: 5.0\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE Chunked any case", "POST / HTTP/1.1\r\ntransfer-encoding: ChUnKeD\r\n\r\n", 0, 0, 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE with empty list elements", "POST / HTTP/1.1\r\nTransfer-Encoding: , chunked ,\r\n\r\n", 0, 0, 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE + CL", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL + TE", "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE + bad CL", "POST / HTTP/1.1\r\nContent-Length: x\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE gzip (not final chunked)", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE chunked, gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE chunked then gzip field", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE gzip, chunked -> 501", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 0, 501, 0, 0 },
	{ "TE gzip + chunked fields -> 501", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 501, 0, 0 },
	{ "TE with params, chunked -> 501", "POST / HTTP/1.1\r\nTransfer-Encoding: x;a=\"b,c\" ; d=e, chunked\r\n\r\n", 0, 0, 501, 0, 0 },
	{ "TE chunked, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE chunked twice in fields", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE empty", "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE chunked;a=b", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE 'ch unked'", "POST / HTTP/1.1\r\nTransfer-Encoding: ch unked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE 'chunked\"'", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\"\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE xchunked", "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 400, 0, 0 },
	{ "CL in HTTP/1.0", "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 3 },
};

/* Request framing rows. */
static void test_request_framing(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reqf_rows) / sizeof(reqf_rows[0]); i++) {
		const struct framing_row *r = &reqf_rows[i];
		struct http_request req;
		struct http_field f[MAXF];
		struct http_framing fr;
		int st, ret;
		ssize_t n = parse_req(r->head, strlen(r->head), &deflim, &req, f, &st);

		if (n != (ssize_t)strlen(r->head))
			fail_msg("%s: head parse got %zd/%d", r->name, n, st);
		ret = http_request_framing(&req, &fr);
		if (ret != r->ret)
			fail_msg("%s: got %d, want %d", r->name, ret, r->ret);
		if (ret == 0 && (fr.kind != r->kind || fr.length != r->length))
			fail_msg("%s: got kind %d length %llu, want %d %llu", r->name, fr.kind,
				 (unsigned long long)fr.length, r->kind,
				 (unsigned long long)r->length);
	}
}

static const struct framing_row resf_rows[] = {
	{ "200 CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 5 },
	{ "200 no framing: close-delimited", "HTTP/1.1 200 OK\r\n\r\n", 0, 0, 0, HTTP_BODY_CLOSE, 0 },
	{ "HTTP/1.0 200 close-delimited", "HTTP/1.0 200 OK\r\n\r\n", 0, 0, 0, HTTP_BODY_CLOSE, 0 },
	{ "HEAD response with CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 1, 0, 0, HTTP_BODY_NONE, 0 },
	{ "HEAD response with TE", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, 0, 0, HTTP_BODY_NONE, 0 },
	{ "100", "HTTP/1.1 100 Continue\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "101", "HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "103 with CL", "HTTP/1.1 103 Early\r\nContent-Length: 5\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "204", "HTTP/1.1 204 No Content\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "304 with CL", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 0, 0, 0, HTTP_BODY_NONE, 0 },
	{ "CONNECT 200", "HTTP/1.1 200 Connection established\r\n\r\n", 0, 1, 0, HTTP_BODY_NONE, 0 },
	{ "CONNECT 200 with CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, 1, 0, HTTP_BODY_NONE, 0 },
	{ "CONNECT 407 with CL", "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", 0, 1, 0, HTTP_BODY_LENGTH, 3 },
	{ "CONNECT 502 close", "HTTP/1.1 502 Bad\r\n\r\n", 0, 1, 0, HTTP_BODY_CLOSE, 0 },
	{ "TE chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, 0, HTTP_BODY_CHUNKED, 0 },
	{ "TE gzip: close-delimited", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0, 0, HTTP_BODY_CLOSE, 0 },
	{ "TE chunked, gzip: close-delimited", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0, 0, 0, HTTP_BODY_CLOSE, 0 },
	{ "TE gzip, chunked refused", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "TE chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "TE + CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "TE garbage", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "CL invalid", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "CL differing", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, 0, -1, 0, 0 },
	{ "CL identical list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 2 },
	{ "404 CL 0", "HTTP/1.1 404 x\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, HTTP_BODY_LENGTH, 0 },
};

/* Response framing rows. */
static void test_response_framing(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(resf_rows) / sizeof(resf_rows[0]); i++) {
		const struct framing_row *r = &resf_rows[i];
		struct http_response res;
		struct http_field f[MAXF];
		struct http_framing fr;
		int ret;
		ssize_t n = parse_res(r->head, strlen(r->head), &deflim, &res, f);

		if (n != (ssize_t)strlen(r->head))
			fail_msg("%s: head parse got %zd", r->name, n);
		ret = http_response_framing(&res, r->head_req, r->connect_req, &fr);
		if (ret != r->ret)
			fail_msg("%s: got %d, want %d", r->name, ret, r->ret);
		if (ret == 0 && (fr.kind != r->kind || fr.length != r->length))
			fail_msg("%s: got kind %d length %llu, want %d %llu", r->name, fr.kind,
				 (unsigned long long)fr.length, r->kind,
				 (unsigned long long)r->length);
	}
}

/* ----------------------------------------------------------------- chunked */

struct chunk_row {
	const char *name;
	const char *in;
	size_t len;
	int ok;             /* 1: decodes fully, 0: error, 2: valid but incomplete */
	const char *data;   /* decoded body when ok */
	size_t rest;        /* bytes left unconsumed after done */
};

#define CROW(name, lit, ok, data, rest) { name, lit, sizeof(lit) - 1, ok, data, rest }

static const struct chunk_row chunk_rows[] = {
	CROW("one chunk", "5\r\nhello\r\n0\r\n\r\n", 1, "hello", 0),
	CROW("two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 1, "hello world", 0),
	CROW("empty body", "0\r\n\r\n", 1, "", 0),
	CROW("upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789", 0),
	CROW("lower-case hex", "a\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789", 0),
	CROW("leading zeros", "00005\r\nhello\r\n000\r\n\r\n", 1, "hello", 0),
	CROW("data with CRLF inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 1, "\r\n\r\n", 0),
	CROW("extension name", "5;foo\r\nhello\r\n0\r\n\r\n", 1, "hello", 0),
	CROW("extension token value", "5;foo=bar\r\nhello\r\n0;x=y\r\n\r\n", 1, "hello", 0),
	CROW("extension quoted value", "5;foo=\"b a;r\\\"=\"\r\nhello\r\n0\r\n\r\n", 1, "hello", 0),
	CROW("extensions with BWS", "5 ; foo = bar\t;\tbaz ;q=\"x\" \t;z\r\nhello\r\n0\r\n\r\n", 1, "hello", 0),
	CROW("trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY:\t2 \x80\r\n\r\n", 1, "hello", 0),
	CROW("empty trailer value", "0\r\nX:\r\n\r\n", 1, "", 0),
	CROW("bytes after the end are not consumed", "1\r\na\r\n0\r\n\r\nGET /", 1, "a", 5),
	CROW("incomplete data", "5\r\nhel", 2, "hel", 0),
	CROW("incomplete trailers", "0\r\nX: y\r\n", 2, "", 0),
	CROW("big size, incomplete", "7fffffffffffffff\r\nabc", 2, "abc", 0),
	CROW("bad hex", "x\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("empty size", "\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("negative size", "-5\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("leading space", " 5\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("trailing space", "5 \r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("size overflow 2^63", "8000000000000000\r\n", 0, NULL, 0),
	CROW("size overflow 2^64", "10000000000000000\r\n", 0, NULL, 0),
	CROW("size overflow long", "ffffffffffffffffffffffff\r\n", 0, NULL, 0),
	CROW("bare LF after size", "5\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("bare CR after size", "5\rhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("data longer than size", "5\r\nhello!\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("bare LF after data", "5\r\nhello\n0\r\n\r\n", 0, NULL, 0),
	CROW("no CRLF after data", "5\r\nhello0\r\n\r\n", 0, NULL, 0),
	CROW("empty extension", "5;\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("extension without name", "5;=x\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("extension without value", "5;a=\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("extension name trailing space", "5;a \r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("extension value with space", "5;a=b c\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("extension with CTL", "5;a=\x01\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("unterminated quoted value", "5;a=\"bc\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("NUL in quoted value", "5;a=\"b\0\"\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("junk after quoted value", "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n", 0, NULL, 0),
	CROW("trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", 0, NULL, 0),
	CROW("trailer space before colon", "0\r\nA : b\r\n\r\n", 0, NULL, 0),
	CROW("trailer empty name", "0\r\n: b\r\n\r\n", 0, NULL, 0),
	CROW("trailer without colon", "0\r\nAbc\r\n\r\n", 0, NULL, 0),
	CROW("trailer bare LF", "0\r\nA: b\n\r\n", 0, NULL, 0),
	CROW("trailer NUL", "0\r\nA: b\0\r\n\r\n", 0, NULL, 0),
	CROW("trailer bare CR", "0\r\nA: b\rc\r\n\r\n", 0, NULL, 0),
	CROW("final bare LF", "0\r\n\n", 0, NULL, 0),
	CROW("final bare CR", "0\r\n\rX", 0, NULL, 0),
};

/* Decode with pieces of the given sizes (cycled); returns 1 done, 2 valid
 * incomplete, 0 error; fills out/outlen and *left (unconsumed after done). */
static int decode(const char *in, size_t len, const size_t *pieces, size_t npieces,
		  size_t max_line, size_t max_trailer, char *out, size_t *outlen, size_t *left)
{
	struct http_chunked c;
	size_t off = 0, pi = 0;

	http_chunked_init(&c, max_line, max_trailer);
	*outlen = 0;
	*left = 0;
	while (off < len) {
		size_t n = pieces[pi++ % npieces], end;

		if (n > len - off)
			n = len - off;
		end = off + n;
		/* feed buf[off..end) until consumed, like a caller would */
		while (off < end) {
			struct slice d;
			ssize_t r = http_chunked_step(&c, in + off, end - off, &d);

			if (r < 0)
				return 0;
			assert_true((size_t)r <= end - off);
			if (d.len) {
				assert_true(d.p >= in + off && d.p + d.len <= in + off + r);
				memcpy(out + *outlen, d.p, d.len);
				*outlen += d.len;
			}
			off += (size_t)r;
			if (http_chunked_done(&c)) {
				struct slice d2;

				/* done: consumes nothing more */
				assert_int_equal(http_chunked_step(&c, in + off, len - off, &d2), 0);
				assert_int_equal(d2.len, 0);
				*left = len - off;
				return 1;
			}
			if (r == 0)
				break;
		}
		if (off < end)
			fail_msg("decoder stopped consuming at %zu", off);
	}
	return 2;
}

/* Chunked rows, whole and split at every offset, and byte by byte. */
static void test_chunked_rows(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(chunk_rows) / sizeof(chunk_rows[0]); i++) {
		const struct chunk_row *r = &chunk_rows[i];
		char out[256];
		size_t outlen, left, one = 1, whole = r->len ? r->len : 1;
		int got = decode(r->in, r->len, &whole, 1, 64, 256, out, &outlen, &left);

		if (got != r->ok)
			fail_msg("%s: got %d, want %d", r->name, got, r->ok);
		if (got && (outlen != strlen(r->data) || memcmp(out, r->data, outlen) != 0))
			fail_msg("%s: got data '%.*s', want '%s'", r->name, (int)outlen, out, r->data);
		if (got == 1 && left != r->rest)
			fail_msg("%s: got %zu bytes left, want %zu", r->name, left, r->rest);
		/* byte by byte */
		got = decode(r->in, r->len, &one, 1, 64, 256, out, &outlen, &left);
		if (got != r->ok)
			fail_msg("%s (byte by byte): got %d, want %d", r->name, got, r->ok);
		if (got && (outlen != strlen(r->data) || memcmp(out, r->data, outlen) != 0))
			fail_msg("%s (byte by byte): got data '%.*s'", r->name, (int)outlen, out);
		/* split in two at every offset */
		for (k = 1; k < r->len; k++) {
			size_t pieces[2] = { k, r->len - k };

			got = decode(r->in, r->len, pieces, 2, 64, 256, out, &outlen, &left);
			if (got != r->ok)
				fail_msg("%s (split at %zu): got %d, want %d", r->name, k, got, r->ok);
			if (got && (outlen != strlen(r->data) ||
				    memcmp(out, r->data, outlen) != 0))
				fail_msg("%s (split at %zu): got data '%.*s'", r->name, k,
					 (int)outlen, out);
			if (got == 1 && left != r->rest)
				fail_msg("%s (split at %zu): got %zu left, want %zu", r->name, k,
					 left, r->rest);
		}
	}
}

/* Step contract: data comes out in runs; control bytes up to the data run are
 * consumed in the same call; len 0 consumes nothing. */
static void test_chunked_step_contract(void **state)
{
	static const char in[] = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
	struct http_chunked c;
	struct slice d;
	ssize_t r;

	(void)state;
	http_chunked_init(&c, 64, 64);
	r = http_chunked_step(&c, in, 0, &d);
	assert_int_equal(r, 0);
	assert_int_equal(d.len, 0);
	r = http_chunked_step(&c, in, sizeof(in) - 1, &d);
	assert_int_equal(r, 8); /* "5\r\nhello" */
	assert_true(slice_is(d, "hello"));
	r = http_chunked_step(&c, in + 8, sizeof(in) - 1 - 8, &d);
	assert_int_equal(r, 16 - 8); /* "\r\n3\r\nabc" */
	assert_true(slice_is(d, "abc"));
	assert_false(http_chunked_done(&c));
	r = http_chunked_step(&c, in + 16, sizeof(in) - 1 - 16, &d);
	assert_int_equal(r, 7);
	assert_int_equal(d.len, 0);
	assert_true(http_chunked_done(&c));
}

/* max_line and max_trailer are enforced. */
static void test_chunked_limits(void **state)
{
	char out[64];
	size_t outlen, left, whole = 1000;
	static const char line9[] = "5;abcdefg\r\nhello\r\n0\r\n\r\n"; /* 9-byte size line */
	static const char tr[] = "0\r\nA: 123456\r\nB: 1\r\n\r\n"; /* trailer lines 11 + 6 bytes */

	(void)state;
	if (decode(line9, sizeof(line9) - 1, &whole, 1, 9, 64, out, &outlen, &left) != 1)
		fail_msg("9-byte size line, max 9: got error, want ok");
	if (decode(line9, sizeof(line9) - 1, &whole, 1, 8, 64, out, &outlen, &left) != 0)
		fail_msg("9-byte size line, max 8: got ok, want error");
	/* a long line is refused before its end arrives */
	if (decode("000000000000000000000", 21, &whole, 1, 20, 64, out, &outlen, &left) != 0)
		fail_msg("unfinished 21-byte size line, max 20: want error");
	if (decode(tr, sizeof(tr) - 1, &whole, 1, 64, 17, out, &outlen, &left) != 1)
		fail_msg("17 trailer bytes, max 17: want ok");
	if (decode(tr, sizeof(tr) - 1, &whole, 1, 64, 16, out, &outlen, &left) != 0)
		fail_msg("17 trailer bytes, max 16: want error");
	if (decode(tr, sizeof(tr) - 1, &whole, 1, 8, 64, out, &outlen, &left) != 0)
		fail_msg("9-byte trailer line, max_line 8: want error");
	if (decode("0\r\n\r\n", 5, &whole, 1, 64, 0, out, &outlen, &left) != 1)
		fail_msg("no trailers, max_trailer 0: want ok");
}

/* Every refusal says why (c.error, http_chunked_why naming the limit), at
 * the proxy's own line limit too, and the decoder stays refused. */
static void test_chunked_errors(void **state)
{
	static const struct {
		const char *in;   /* "@" is replaced by the filler */
		size_t fill;      /* bytes of filler */
		size_t max_trailer;
		int error;
		const char *why;  /* substring of http_chunked_why, NULL: ok */
	} rows[] = {
		{ "5;x=@\r\nhello\r\n0\r\n\r\n", HTTP_CHUNK_LINE_MAX - 4, 64, HTTP_CHUNKED_OK, NULL },
		{ "5;x=@\r\nhello\r\n0\r\n\r\n", HTTP_CHUNK_LINE_MAX - 3, 64, HTTP_CHUNKED_E_LINE,
		  "chunk-size line (size and extensions) longer than 4096 bytes" },
		{ "5;x=@", 70000, 64, HTTP_CHUNKED_E_LINE, "longer than 4096 bytes" },
		{ "0;@\r\n\r\n", 5000, 64, HTTP_CHUNKED_E_LINE, "chunk-size line" },
		{ "0\r\nX: @\r\n\r\n", HTTP_CHUNK_LINE_MAX - 3, 1 << 20, HTTP_CHUNKED_OK, NULL },
		{ "0\r\nX: @\r\n\r\n", HTTP_CHUNK_LINE_MAX - 2, 1 << 20, HTTP_CHUNKED_E_TRAILER_LINE,
		  "chunked trailer line longer than 4096 bytes" },
		{ "0\r\nX: @\r\n\r\n", 100, 50, HTTP_CHUNKED_E_TRAILERS,
		  "chunked trailer section larger than 50 bytes" },
		{ "10000000000000000\r\n@", 0, 64, HTTP_CHUNKED_E_SIZE, "2^63" },
		{ "zz\r\n@", 0, 64, HTTP_CHUNKED_E_SYNTAX, "malformed chunked body" },
		{ "5\r\nhelloXX@", 0, 64, HTTP_CHUNKED_E_SYNTAX, "malformed chunked body" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *at = strchr(rows[i].in, '@');
		size_t pre = (size_t)(at - rows[i].in), post = strlen(at + 1);
		size_t len = pre + rows[i].fill + post, off = 0;
		char *buf = malloc(len), why[160];
		struct http_chunked c;
		struct slice d;
		ssize_t r = 0;

		assert_non_null(buf);
		memcpy(buf, rows[i].in, pre);
		memset(buf + pre, 'a', rows[i].fill);
		memcpy(buf + pre + rows[i].fill, at + 1, post);
		http_chunked_init(&c, HTTP_CHUNK_LINE_MAX, rows[i].max_trailer);
		while (off < len && !http_chunked_done(&c)) {
			r = http_chunked_step(&c, buf + off, len - off, &d);
			if (r <= 0)
				break;
			off += (size_t)r;
		}
		if (rows[i].why == NULL) {
			if (r < 0 || !http_chunked_done(&c) || c.error != HTTP_CHUNKED_OK)
				fail_msg("row %zu: got %zd error %d, want the body whole", i, r, c.error);
		} else {
			if (r >= 0 || c.error != rows[i].error)
				fail_msg("row %zu: got %zd error %d, want -1 error %d", i, r, c.error,
					 rows[i].error);
			http_chunked_why(&c, why, sizeof(why));
			if (strstr(why, rows[i].why) == NULL)
				fail_msg("row %zu: why \"%s\", want \"%s\"", i, why, rows[i].why);
			/* refused for good */
			assert_int_equal(http_chunked_step(&c, "0\r\n\r\n", 5, &d), -1);
			assert_int_equal(d.len, 0);
		}
		free(buf);
	}
}

/* ------------------------------------------------------------------ target */

struct target_row {
	const char *method;
	const char *target;
	int ret;
	enum http_target_form form;
	const char *host;
	uint16_t port;
	int port_explicit;
	const char *path;
	int v6;
};

static const struct target_row target_rows[] = {
	{ "GET", "http://example.com/", 0, HTTP_TARGET_ABSOLUTE, "example.com", 80, 0, "/", 0 },
	{ "GET", "HTTP://Example.COM:8080/a?b=c", 0, HTTP_TARGET_ABSOLUTE, "Example.COM", 8080, 1, "/a?b=c", 0 },
	{ "GET", "https://h", 0, HTTP_TARGET_ABSOLUTE, "h", 443, 0, "/", 0 },
	{ "GET", "hTTpS://h:8443", 0, HTTP_TARGET_ABSOLUTE, "h", 8443, 1, "/", 0 },
	{ "GET", "http://h:/x", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 0, "/x", 0 },
	{ "GET", "http://h:00080/", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 1, "/", 0 },
	{ "GET", "http://h:65535/", 0, HTTP_TARGET_ABSOLUTE, "h", 65535, 1, "/", 0 },
	{ "GET", "http://10.0.0.1/", 0, HTTP_TARGET_ABSOLUTE, "10.0.0.1", 80, 0, "/", 0 },
	{ "GET", "http://[::1]:8080/x", 0, HTTP_TARGET_ABSOLUTE, "::1", 8080, 1, "/x", 1 },
	{ "GET", "http://[2001:db8::a:1]/", 0, HTTP_TARGET_ABSOLUTE, "2001:db8::a:1", 80, 0, "/", 1 },
	{ "GET", "http://[::ffff:1.2.3.4]/", 0, HTTP_TARGET_ABSOLUTE, "::ffff:1.2.3.4", 80, 0, "/", 1 },
	{ "GET", "http://a-b_c~d.e%41!$&'()*+,;=/", 0, HTTP_TARGET_ABSOLUTE, "a-b_c~d.e%41!$&'()*+,;=", 80, 0, "/", 0 },
	{ "GET", "http://h//a/../b?x=/?", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 0, "//a/../b?x=/?", 0 },
	{ "OPTIONS", "http://h", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 0, "*", 0 },
	{ "OPTIONS", "http://h/", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 0, "/", 0 },
	{ "OPTIONS", "*", 0, HTTP_TARGET_ASTERISK, "", 0, 0, "*", 0 },
	{ "GET", "/path?q", 0, HTTP_TARGET_ORIGIN, "", 0, 0, "/path?q", 0 },
	{ "CONNECT", "example.com:443", 0, HTTP_TARGET_AUTHORITY, "example.com", 443, 1, "", 0 },
	{ "CONNECT", "[::1]:8443", 0, HTTP_TARGET_AUTHORITY, "::1", 8443, 1, "", 1 },
	{ "CONNECT", "1.2.3.4:22", 0, HTTP_TARGET_AUTHORITY, "1.2.3.4", 22, 1, "", 0 },
	/* refused */
	{ "GET", "", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "*", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "example.com:443", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "ftp://h/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "httpx://h/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http:/h/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http:h", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http:///x", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://:80/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://user@h/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://u:p@h/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h/#frag", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h#frag", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "/a#b", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:0/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:65536/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:99999999999999999999/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:8a/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:-1/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h:80:80/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h%4/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h%zz/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h^x/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h\"x/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h[x]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[::1/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[zz::1]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[1.2.3.4]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[fe80::1%25eth0]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[v1.x]/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://[::1]x/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "GET", "http://h?q", 0, HTTP_TARGET_ABSOLUTE, "h", 80, 0, "?q", 0 },
	{ "GET", "http://h /", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "example.com", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "example.com:", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", ":443", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "http://h:443/", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "/x", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "*", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "h:443/x", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "u@h:443", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "[::1]", 400, 0, NULL, 0, 0, NULL, 0 },
	{ "CONNECT", "h:0", 400, 0, NULL, 0, 0, NULL, 0 },
};

/* Target rows. */
static void test_targets(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(target_rows) / sizeof(target_rows[0]); i++) {
		const struct target_row *r = &target_rows[i];
		struct http_target t;
		int ret = http_parse_target(slice_make(r->method, strlen(r->method)),
					    slice_make(r->target, strlen(r->target)), &t);

		if (ret != r->ret)
			fail_msg("%s %s: got %d, want %d", r->method, r->target, ret, r->ret);
		if (ret != 0)
			continue;
		if (t.form != r->form)
			fail_msg("%s %s: got form %d, want %d", r->method, r->target, t.form, r->form);
		if (!slice_is(t.host, r->host))
			fail_msg("%s %s: got host '%.*s', want '%s'", r->method, r->target,
				 (int)t.host.len, t.host.p, r->host);
		if (t.port != r->port || t.port_explicit != r->port_explicit)
			fail_msg("%s %s: got port %u/%d, want %u/%d", r->method, r->target,
				 t.port, t.port_explicit, r->port, r->port_explicit);
		if (!slice_is(t.path, r->path))
			fail_msg("%s %s: got path '%.*s', want '%s'", r->method, r->target,
				 (int)t.path.len, t.path.p, r->path);
		if (t.ipv6_literal != r->v6)
			fail_msg("%s %s: got ipv6 %d, want %d", r->method, r->target,
				 t.ipv6_literal, r->v6);
		if (r->form == HTTP_TARGET_ABSOLUTE && !slice_eq_ci(t.scheme, "http") &&
		    !slice_eq_ci(t.scheme, "https"))
			fail_msg("%s %s: got scheme '%.*s'", r->method, r->target,
				 (int)t.scheme.len, t.scheme.p);
	}
}

/* A method is case-sensitive: "connect" is not CONNECT. */
static void test_target_method_case(void **state)
{
	struct http_target t;

	(void)state;
	assert_int_equal(http_parse_target(SLICE_LIT("connect"), SLICE_LIT("h:443"), &t), 400);
	assert_int_equal(http_parse_target(SLICE_LIT("options"), SLICE_LIT("*"), &t), 400);
}

/* Host names: up to HTTP_MAX_HOST characters (one trailing dot more), in
 * every form; longer: 400 with a reason naming the limit. */
static void test_target_host_length(void **state)
{
	static const struct {
		size_t len;   /* host characters */
		bool dot;     /* the last one is a trailing dot */
		bool ok;
	} rows[] = {
		{ 1, false, true }, { 253, false, true }, { 254, true, true },
		{ 254, false, false }, { 255, true, false }, { 255, false, false },
		{ 256, false, false }, { 300, false, false }, { 4000, false, false },
	};
	static const char *const fmts[][2] = {
		{ "http://", "/x" }, { "https://", ":8443" }, { "http://", ":80?q" }, { "", ":443" },
	};
	char host[4100], target[4200];
	size_t i, k, f;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (k = 0; k < rows[i].len; k++)
			host[k] = k % 64 == 63 ? '.' : (char)('a' + k % 26);
		if (host[rows[i].len - 1] == '.')
			host[rows[i].len - 1] = 'z';
		if (rows[i].dot)
			host[rows[i].len - 1] = '.';
		host[rows[i].len] = '\0';
		for (f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
			struct http_target t;
			const char *m = f == 3 ? "CONNECT" : "GET";
			snprintf(target, sizeof(target), "%s%s%s", fmts[f][0], host, fmts[f][1]);
			int ret = http_parse_target(slice_make(m, strlen(m)), slice_make(target, strlen(target)), &t);
			if (rows[i].ok) {
				if (ret != 0 || t.error != NULL || !slice_is(t.host, host))
					fail_msg("%zu-character host (%s): got %d, want it whole", rows[i].len,
						 fmts[f][0], ret);
			} else {
				if (ret != 400 || t.error == NULL || strstr(t.error, "253") == NULL)
					fail_msg("%zu-character host (%s): got %d \"%s\", want 400 naming 253",
						 rows[i].len, fmts[f][0], ret, t.error ? t.error : "");
			}
		}
	}
	/* other refusals say nothing more */
	struct http_target t;
	assert_int_equal(http_parse_target(SLICE_LIT("GET"), SLICE_LIT("http://h^x/"), &t), 400);
	assert_null(t.error);
}

/* http_is_token. */
static void test_is_token(void **state)
{
	(void)state;
	assert_true(http_is_token(SLICE_LIT("GET")));
	assert_true(http_is_token(SLICE_LIT("!#$%&'*+-.^_`|~09azAZ")));
	assert_false(http_is_token(SLICE_LIT("")));
	assert_false(http_is_token(SLICE_LIT("a b")));
	assert_false(http_is_token(SLICE_LIT("a:b")));
	assert_false(http_is_token(SLICE_LIT("a\"")));
	assert_false(http_is_token(SLICE_LIT("a\x80")));
	assert_false(http_is_token(slice_make("a\0b", 3)));
	assert_false(http_is_token(SLICE_LIT("(a)")));
}

/* ------------------------------------------------------------- guard page */

/* Place n bytes so that they end right before a PROT_NONE page. */
static char *guarded(char *page, size_t pagesz, const char *in, size_t n)
{
	char *p = page + pagesz - n;

	memcpy(p, in, n);
	return p;
}

/* No function reads past the end of its input (picohttpparser's trick). */
static void test_no_overread(void **state)
{
	size_t pagesz = (size_t)sysconf(_SC_PAGESIZE), i, k;
	char *mem = mmap(NULL, 2 * pagesz, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mprotect(mem + pagesz, pagesz, PROT_NONE), 0);
	for (i = 0; i < sizeof(req_rows) / sizeof(req_rows[0]); i++) {
		const struct req_row *r = &req_rows[i];

		for (k = 0; k <= r->len; k++) {
			struct http_request req;
			struct http_field f[MAXF];
			struct http_framing fr;
			struct http_target t;
			int st;
			char *p = guarded(mem, pagesz, r->in, k);

			if (parse_req(p, k, &deflim, &req, f, &st) > 0) {
				(void)http_request_framing(&req, &fr);
				(void)http_parse_target(req.method, req.target, &t);
			}
		}
	}
	for (i = 0; i < sizeof(res_rows) / sizeof(res_rows[0]); i++) {
		const struct req_row *r = &res_rows[i];

		for (k = 0; k <= r->len; k++) {
			struct http_response res;
			struct http_field f[MAXF];
			struct http_framing fr;
			char *p = guarded(mem, pagesz, r->in, k);

			if (parse_res(p, k, &deflim, &res, f) > 0)
				(void)http_response_framing(&res, 0, 0, &fr);
		}
	}
	for (i = 0; i < sizeof(reqf_rows) / sizeof(reqf_rows[0]); i++) {
		const struct framing_row *r = &reqf_rows[i];
		size_t n = strlen(r->head);
		struct http_request req;
		struct http_field f[MAXF];
		struct http_framing fr;
		int st;
		char *p = guarded(mem, pagesz, r->head, n);

		/* the last field's value ends right at the guard page */
		if (parse_req(p, n, &deflim, &req, f, &st) > 0)
			(void)http_request_framing(&req, &fr);
	}
	for (i = 0; i < sizeof(target_rows) / sizeof(target_rows[0]); i++) {
		const struct target_row *r = &target_rows[i];
		size_t n = strlen(r->target);
		struct http_target t;
		char *p = guarded(mem, pagesz, r->target, n);

		(void)http_parse_target(slice_make(r->method, strlen(r->method)),
					slice_make(p, n), &t);
	}
	for (i = 0; i < sizeof(chunk_rows) / sizeof(chunk_rows[0]); i++) {
		const struct chunk_row *r = &chunk_rows[i];

		for (k = 0; k <= r->len; k++) {
			struct http_chunked c;
			struct slice d;
			char *p = guarded(mem, pagesz, r->in, k);
			size_t off = 0;

			http_chunked_init(&c, 64, 256);
			while (off < k) {
				ssize_t n = http_chunked_step(&c, p + off, k - off, &d);

				if (n <= 0)
					break;
				off += (size_t)n;
			}
		}
	}
	/* Content-Length values ending right at the guard page */
	{
		static const char *vals[] = { "5", "5,", "5, 5", "18446744073709551616", "" };
		struct http_request req;
		struct http_field f[2];
		struct http_framing fr;

		for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
			size_t n = strlen(vals[i]);

			memset(&req, 0, sizeof(req));
			req.minor = 1;
			req.fields = f;
			req.nfields = 2;
			f[0].name = SLICE_LIT("Content-Length");
			f[0].value = slice_make(guarded(mem, pagesz, vals[i], n), n);
			f[1].name = SLICE_LIT("Transfer-Encoding");
			f[1].value = f[0].value;
			(void)http_request_framing(&req, &fr);
			req.fields = f + 1;
			req.nfields = 1;
			(void)http_request_framing(&req, &fr);
		}
	}
	munmap(mem, 2 * pagesz);
}

/* Run every parser test. */
/* The trailer fields after a chunked body's last data: counted whole even
 * when f has less room, names and values without OWS. */
static void test_chunked_trailers(void **state)
{
	(void)state;
	static const char t[] = "\r\n0;ext=1\r\nX-Sum:  42 \r\nX-B:\tb\r\nX-E:\r\n\r\n";
	struct http_field f[3];
	assert_int_equal(http_chunked_trailers(t, sizeof(t) - 1, NULL, 0), 3);
	assert_int_equal(http_chunked_trailers(t, sizeof(t) - 1, f, 1), 3);
	assert_true(slice_eq(f[0].name, "X-Sum") && slice_eq(f[0].value, "42"));
	assert_int_equal(http_chunked_trailers(t, sizeof(t) - 1, f, 3), 3);
	assert_true(slice_eq(f[1].name, "X-B") && slice_eq(f[1].value, "b"));
	assert_true(slice_eq(f[2].name, "X-E") && f[2].value.len == 0);
	static const char none[] = "\r\n0\r\n\r\n";
	assert_int_equal(http_chunked_trailers(none, sizeof(none) - 1, f, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_rows),
		cmocka_unit_test(test_request_prefixes),
		cmocka_unit_test(test_request_contents),
		cmocka_unit_test(test_request_limits),
		cmocka_unit_test(test_response_rows),
		cmocka_unit_test(test_response_contents),
		cmocka_unit_test(test_request_framing),
		cmocka_unit_test(test_response_framing),
		cmocka_unit_test(test_chunked_rows),
		cmocka_unit_test(test_chunked_step_contract),
		cmocka_unit_test(test_chunked_limits),
		cmocka_unit_test(test_chunked_errors),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_target_method_case),
		cmocka_unit_test(test_target_host_length),
		cmocka_unit_test(test_is_token),
		cmocka_unit_test(test_no_overread),
		cmocka_unit_test(test_chunked_trailers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_hop.c - unit tests of the header stage (src/proto/hop.c): which fields are
 * forwarded (exact keep[] vectors) and what the stage learns (hop_info). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hop.h"

#define MAXF 16

/* One classification case: fields in, keep[] vector and info out. */
struct row {
	const char *what;
	enum hop_dir dir;
	bool keep_upgrade;
	const char *f[MAXF][2]; /* name, value; ends at the first NULL name */
	enum hop_result want_rc;
	const char *want_keep;  /* '1' kept, '0' dropped, one per field */
	const char *want_info;  /* as rendered by info_str() */
};

#define REQ HOP_REQUEST
#define RES HOP_RESPONSE

static const struct row rows[] = {
	/* baseline */
	{ "no fields", REQ, false, { { NULL } }, HOP_OK, "", "" },
	{ "end-to-end fields kept in order with duplicates", REQ, false,
	  { { "Accept", "*/*" }, { "Cookie", "a=1" }, { "Cookie", "b=2" },
	    { "X-Dup", "1" }, { "X-Dup", "1" }, { "Accept", "text/html" } },
	  HOP_OK, "111111", "" },
	{ "response end-to-end fields kept with duplicates", RES, false,
	  { { "Set-Cookie", "a=1" }, { "Set-Cookie", "b=2" }, { "Cache-Control", "max-age=5" },
	    { "Vary", "Accept" }, { "Vary", "Cookie" } },
	  HOP_OK, "11111", "" },
	{ "all standard fields at once", REQ, false,
	  { { "Accept", "*/*" }, { "Connection", "" }, { "Keep-Alive", "timeout=5" },
	    { "Proxy-Connection", "keep-alive" }, { "TE", "trailers" }, { "Trailer", "X-T" },
	    { "Transfer-Encoding", "chunked" }, { "Upgrade", "websocket" },
	    { "Proxy-Authorization", "Basic eDp5" }, { "Proxy-Authenticate", "Basic" },
	    { "Content-Length", "5" }, { "Host", "example.com" }, { "User-Agent", "t" } },
	  HOP_OK, "1000000000001", "up@7 pa@8" },

	/* Connection lists custom fields */
	{ "listed field after Connection", REQ, false,
	  { { "Connection", "X-Foo" }, { "X-Foo", "1" }, { "X-Bar", "2" } },
	  HOP_OK, "001", "" },
	{ "listed field before Connection", REQ, false,
	  { { "X-Foo", "1" }, { "X-Bar", "2" }, { "Connection", "x-foo" } },
	  HOP_OK, "010", "" },
	{ "listed field before and after Connection", REQ, false,
	  { { "X-Foo", "1" }, { "Connection", "X-Foo" }, { "A", "a" }, { "X-Foo", "2" } },
	  HOP_OK, "0010", "" },
	{ "response: Connection lists custom fields", RES, false,
	  { { "Content-Type", "text/plain" }, { "X-Trace", "1" }, { "Connection", "X-Trace, X-Debug" },
	    { "Cache-Control", "no-store" }, { "X-Debug", "on" } },
	  HOP_OK, "10010", "" },
	{ "multiple Connection fields: second list honoured", REQ, false,
	  { { "Connection", "close" }, { "X-A", "1" }, { "Connection", "X-B" }, { "X-B", "2" },
	    { "X-C", "3" } },
	  HOP_OK, "01001", "close" },
	{ "multiple Connection fields: both lists honoured, listed field first", RES, false,
	  { { "X-B", "0" }, { "Connection", "X-A" }, { "X-A", "1" }, { "Connection", "x-b" },
	    { "X-C", "3" } },
	  HOP_OK, "00001", "" },
	{ "every duplicate of a listed field dropped", REQ, false,
	  { { "Connection", "X-A" }, { "X-A", "1" }, { "X-A", "2" }, { "Y", "y" }, { "x-a", "3" } },
	  HOP_OK, "00010", "" },
	{ "case variants of Connection and listed names", REQ, false,
	  { { "CoNnEcTiOn", "X-FOO" }, { "x-foo", "1" }, { "X-Foo", "2" }, { "X-FOOBAR", "3" } },
	  HOP_OK, "0001", "" },
	{ "listed name is a prefix of a field name", REQ, false,
	  { { "Connection", "X-Fo" }, { "X-Foo", "1" }, { "X-Fo", "2" } },
	  HOP_OK, "010", "" },
	{ "field name is a prefix of a listed name", REQ, false,
	  { { "Connection", "X-Foo" }, { "X-Fo", "1" } },
	  HOP_OK, "01", "" },
	{ "odd whitespace and empty elements", REQ, false,
	  { { "Connection", "close,,  foo ," }, { "foo", "1" }, { "bar", "2" } },
	  HOP_OK, "001", "close" },
	{ "tabs around elements", REQ, false,
	  { { "Connection", "\tX-A\t,\t X-B \t" }, { "X-A", "1" }, { "X-B", "2" }, { "X-C", "3" } },
	  HOP_OK, "0001", "" },
	{ "a list of only commas", REQ, false,
	  { { "Connection", " , ,," }, { "A", "a" } },
	  HOP_OK, "01", "" },
	{ "empty Connection value", REQ, false,
	  { { "Connection", "" }, { "A", "a" } },
	  HOP_OK, "01", "" },
	{ "Connection lists connection itself", REQ, false,
	  { { "Connection", "connection, X-A" }, { "X-A", "1" }, { "B", "b" } },
	  HOP_OK, "001", "" },
	{ "Connection lists an end-to-end field the client wants hop-only", REQ, false,
	  { { "Cache-Control", "no-cache" }, { "Connection", "Cache-Control" }, { "B", "b" } },
	  HOP_OK, "001", "" },
	{ "listed Max-Forwards dropped but still reported", REQ, false,
	  { { "Connection", "Max-Forwards" }, { "Max-Forwards", "0" }, { "B", "b" } },
	  HOP_OK, "001", "mf=0@1" },
	{ "Connection value is not a field name list of the value", REQ, false,
	  { { "Connection", "X-A" }, { "X-B", "X-A" } },
	  HOP_OK, "01", "" },
	{ "Proxy-Connection is dropped but never parsed as a list", REQ, false,
	  { { "Proxy-Connection", "close, X-A" }, { "X-A", "1" } },
	  HOP_OK, "01", "" },

	/* persistence options */
	{ "keep-alive option", REQ, false,
	  { { "Connection", "Keep-Alive" }, { "Keep-Alive", "timeout=5" }, { "A", "a" } },
	  HOP_OK, "001", "ka" },
	{ "close option in capitals", RES, false,
	  { { "Connection", "CLOSE" }, { "A", "a" } },
	  HOP_OK, "01", "close" },
	{ "close and keep-alive in two fields", REQ, false,
	  { { "Connection", "keep-alive" }, { "Connection", "close" } },
	  HOP_OK, "00", "close ka" },
	{ "words that merely contain close", REQ, false,
	  { { "Connection", "closed, xclose, keep-alive-x" }, { "closed", "1" }, { "A", "a" } },
	  HOP_OK, "001", "" },

	/* framing fields listed: RFC 9110 §7.6.1 */
	{ "Connection lists Host", REQ, false,
	  { { "Host", "a" }, { "Connection", "Host" }, { "A", "a" } },
	  HOP_ERR_CONNECTION_FRAMING, "000", "" },
	{ "Connection lists content-length among others", REQ, false,
	  { { "Connection", "foo, content-length" }, { "Content-Length", "3" } },
	  HOP_ERR_CONNECTION_FRAMING, "00", "" },
	{ "Connection lists Transfer-Encoding", REQ, false,
	  { { "Connection", "Transfer-Encoding" }, { "Transfer-Encoding", "chunked" } },
	  HOP_ERR_CONNECTION_FRAMING, "00", "" },
	{ "response Connection lists Content-Length", RES, false,
	  { { "Content-Length", "3" }, { "Connection", "Content-Length" } },
	  HOP_ERR_CONNECTION_FRAMING, "00", "" },
	{ "second Connection field lists HOST", REQ, false,
	  { { "Connection", "X-A" }, { "X-A", "1" }, { "Connection", " , HOST" } },
	  HOP_ERR_CONNECTION_FRAMING, "000", "" },
	{ "framing listed even when the field is absent", RES, false,
	  { { "Connection", "transfer-encoding" } },
	  HOP_ERR_CONNECTION_FRAMING, "0", "" },

	/* syntax: connection-option = token (RFC 9110 §7.6.1, §5.6.2) */
	{ "element with inner space", REQ, false,
	  { { "Connection", "foo bar" }, { "A", "a" } },
	  HOP_ERR_SYNTAX, "00", "" },
	{ "element with semicolon", REQ, false,
	  { { "Connection", "close;q=1" } },
	  HOP_ERR_SYNTAX, "0", "" },
	{ "quoted element", REQ, false,
	  { { "Connection", "\"close\"" } },
	  HOP_ERR_SYNTAX, "0", "" },
	{ "element with slash", RES, false,
	  { { "Connection", "ok, foo/1" } },
	  HOP_ERR_SYNTAX, "0", "" },
	{ "element with non-ASCII byte", RES, false,
	  { { "Connection", "caf\xc3\xa9" } },
	  HOP_ERR_SYNTAX, "0", "" },
	{ "second Connection field has a bad element", REQ, false,
	  { { "Connection", "close" }, { "A", "a" }, { "Connection", "a=b" } },
	  HOP_ERR_SYNTAX, "000", "close" },

	/* Upgrade */
	{ "Upgrade dropped without keep_upgrade", REQ, false,
	  { { "Connection", "upgrade" }, { "Upgrade", "websocket" }, { "A", "a" } },
	  HOP_OK, "001", "upgrade up@1" },
	{ "Upgrade kept with keep_upgrade although listed", REQ, true,
	  { { "Connection", "Upgrade" }, { "Upgrade", "websocket" }, { "A", "a" } },
	  HOP_OK, "011", "upgrade up@1" },
	{ "Upgrade unlisted dropped", REQ, false,
	  { { "A", "a" }, { "Upgrade", "h2c" } },
	  HOP_OK, "10", "up@1" },
	{ "101 response keeps Upgrade with keep_upgrade", RES, true,
	  { { "Upgrade", "websocket" }, { "Connection", "upgrade" }, { "Sec-WebSocket-Accept", "x" } },
	  HOP_OK, "101", "upgrade up@0" },
	{ "first of two Upgrade fields reported", REQ, true,
	  { { "A", "a" }, { "upgrade", "a" }, { "Upgrade", "b" } },
	  HOP_OK, "111", "up@1" },
	{ "keep_upgrade keeps nothing else hop-by-hop", REQ, true,
	  { { "Connection", "upgrade, X-A" }, { "X-A", "1" }, { "TE", "trailers" },
	    { "Upgrade", "websocket" } },
	  HOP_OK, "0001", "upgrade up@3" },

	/* proxy authentication */
	{ "Proxy-Authorization never kept in requests", REQ, true,
	  { { "A", "a" }, { "Proxy-Authorization", "Basic eDp5" }, { "proxy-authorization", "Basic 2" } },
	  HOP_OK, "100", "pa@1" },
	{ "Proxy-Authorization dropped in responses too, not reported", RES, false,
	  { { "Proxy-Authorization", "Basic eDp5" }, { "A", "a" } },
	  HOP_OK, "01", "" },
	{ "Proxy-Authenticate never kept in responses", RES, false,
	  { { "Proxy-Authenticate", "Basic realm=\"x\"" }, { "WWW-Authenticate", "Basic" } },
	  HOP_OK, "01", "" },
	{ "Proxy-Authenticate dropped in requests too", REQ, false,
	  { { "PROXY-AUTHENTICATE", "Basic" }, { "Authorization", "Basic eDp5" } },
	  HOP_OK, "01", "" },

	/* Max-Forwards: RFC 9110 §7.6.2, kept, first valid value reported */
	{ "Max-Forwards 0", REQ, false,
	  { { "A", "a" }, { "Max-Forwards", "0" } },
	  HOP_OK, "11", "mf=0@1" },
	{ "Max-Forwards 5", REQ, false,
	  { { "Max-Forwards", "5" } },
	  HOP_OK, "1", "mf=5@0" },
	{ "Max-Forwards with leading zeros", REQ, false,
	  { { "max-forwards", "007" } },
	  HOP_OK, "1", "mf=7@0" },
	{ "Max-Forwards INT32_MAX", REQ, false,
	  { { "Max-Forwards", "2147483647" } },
	  HOP_OK, "1", "mf=2147483647@0" },
	{ "Max-Forwards INT32_MAX + 1 clamped", REQ, false,
	  { { "Max-Forwards", "2147483648" } },
	  HOP_OK, "1", "mf=2147483647@0" },
	{ "Max-Forwards huge clamped", REQ, false,
	  { { "Max-Forwards", "99999999999999999999999999999" } },
	  HOP_OK, "1", "mf=2147483647@0" },
	{ "Max-Forwards not digits", REQ, false,
	  { { "Max-Forwards", "abc" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards negative", REQ, false,
	  { { "Max-Forwards", "-1" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards plus sign", REQ, false,
	  { { "Max-Forwards", "+5" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards empty", REQ, false,
	  { { "Max-Forwards", "" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards list", REQ, false,
	  { { "Max-Forwards", "1, 2" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards digits then junk", REQ, false,
	  { { "Max-Forwards", "5x" } },
	  HOP_OK, "1", "" },
	{ "Max-Forwards duplicates: first wins", REQ, false,
	  { { "Max-Forwards", "3" }, { "A", "a" }, { "Max-Forwards", "7" } },
	  HOP_OK, "111", "mf=3@0" },
	{ "Max-Forwards invalid then valid: first valid wins", REQ, false,
	  { { "Max-Forwards", "x" }, { "Max-Forwards", "4" } },
	  HOP_OK, "11", "mf=4@1" },

	/* Expect: RFC 9110 §10.1.1 */
	{ "Expect 100-continue", REQ, false,
	  { { "Expect", "100-continue" }, { "Content-Length", "10" } },
	  HOP_OK, "10", "expect" },
	{ "Expect case-insensitive", REQ, false,
	  { { "EXPECT", "100-Continue" } },
	  HOP_OK, "1", "expect" },
	{ "Expect something else", REQ, false,
	  { { "Expect", "100-continue-x" }, { "Expect", "200-ok" } },
	  HOP_OK, "11", "" },
	{ "Expect in a second field", REQ, false,
	  { { "Expect", "foo" }, { "Expect", "100-continue" } },
	  HOP_OK, "11", "expect" },
	{ "Expect ignored in responses", RES, false,
	  { { "Expect", "100-continue" } },
	  HOP_OK, "1", "" },
};

/* Render info canonically: "close ka upgrade up@I mf=V@I expect pa@I". */
static void info_str(const struct hop_info *in, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
#define ADD(...) (o += (size_t)snprintf(buf + o, o < len ? len - o : 0, __VA_ARGS__))
	if (in->conn_close)
		ADD("close ");
	if (in->conn_keep_alive)
		ADD("ka ");
	if (in->conn_upgrade)
		ADD("upgrade ");
	if (in->upgrade_index != -1)
		ADD("up@%d ", in->upgrade_index);
	if (in->max_forwards != -1 || in->max_forwards_index != -1)
		ADD("mf=%d@%d ", in->max_forwards, in->max_forwards_index);
	if (in->expect_continue)
		ADD("expect ");
	if (in->proxy_auth_index != -1)
		ADD("pa@%d ", in->proxy_auth_index);
#undef ADD
	if (o > 0 && o <= len)
		buf[o - 1] = '\0';
}

/* Copy s into an exact-size heap buffer (no NUL) so ASan sees over-reads. */
static struct slice exact(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n ? n : 1);

	assert_non_null(p);
	memcpy(p, s, n);
	return slice_make(p, n);
}

/* Free the buffers made by exact(). */
static void free_fields(struct http_field *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free((void *)(uintptr_t)f[i].name.p);
		free((void *)(uintptr_t)f[i].value.p);
	}
}

/* Classify one row's fields with keep[] and info pre-filled with `pre`, so an
 * entry the stage forgets to set shows; returns the number of mismatches. */
static size_t check_row(const struct row *w, const struct http_field *f, size_t n, bool pre)
{
	bool keep[MAXF];
	char got_keep[MAXF + 1], got_info[256];
	struct hop_info info;
	enum hop_result rc;
	size_t i, failures = 0;

	for (i = 0; i < MAXF; i++)
		keep[i] = pre;
	memset(&info, pre ? 0x55 : 0, sizeof(info));
	info.conn_close = info.conn_keep_alive = info.conn_upgrade = pre;
	info.expect_continue = pre;
	rc = hop_classify(n ? f : NULL, n, w->dir, w->keep_upgrade, n ? keep : NULL, &info);
	for (i = 0; i < n; i++)
		got_keep[i] = keep[i] ? '1' : '0';
	got_keep[n] = '\0';
	info_str(&info, got_info, sizeof(got_info));
	if ((int)rc != (int)w->want_rc) {
		print_error("%s: result got %d, want %d\n", w->what, rc, w->want_rc);
		failures++;
	}
	if (strcmp(got_keep, w->want_keep) != 0) {
		print_error("%s (keep[] pre-filled %d): keep got %s, want %s\n", w->what, pre,
			    got_keep, w->want_keep);
		failures++;
	}
	if (strcmp(got_info, w->want_info) != 0) {
		print_error("%s: info got \"%s\", want \"%s\"\n", w->what, got_info,
			    w->want_info);
		failures++;
	}
	return failures;
}

/* Every row of rows[]: exact result, keep[] vector and info. */
static void test_classify_rows(void **state)
{
	size_t r, failures = 0;

	(void)state;
	for (r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		const struct row *w = &rows[r];
		struct http_field f[MAXF];
		size_t n = 0;

		while (n < MAXF && w->f[n][0] != NULL) {
			f[n].name = exact(w->f[n][0]);
			f[n].value = exact(w->f[n][1]);
			n++;
		}
		failures += check_row(w, f, n, false);
		failures += check_row(w, f, n, true);
		free_fields(f, n);
	}
	assert_int_equal(failures, 0);
}

/* Each standard field, in three spellings, in both directions, is dropped
 * from between two end-to-end fields. */
static void test_each_standard_field_dropped(void **state)
{
	static const char *const names[][3] = {
		{ "Connection", "connection", "CONNECTION" },
		{ "Keep-Alive", "keep-alive", "KEEP-ALIVE" },
		{ "Proxy-Connection", "proxy-connection", "PROXY-CONNECTION" },
		{ "TE", "te", "Te" },
		{ "Trailer", "trailer", "TRAILER" },
		{ "Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING" },
		{ "Upgrade", "upgrade", "UPGRADE" },
		{ "Proxy-Authorization", "proxy-authorization", "PROXY-AUTHORIZATION" },
		{ "Proxy-Authenticate", "proxy-authenticate", "PROXY-AUTHENTICATE" },
		{ "Content-Length", "content-length", "CONTENT-LENGTH" },
		{ "Host", "host", "HOST" },
	};
	static const enum hop_dir dirs[] = { HOP_REQUEST, HOP_RESPONSE };
	size_t i, v, d, failures = 0;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (v = 0; v < 3; v++)
			for (d = 0; d < 2; d++) {
				struct http_field f[3];
				bool keep[3];
				struct hop_info info;
				enum hop_result rc;
				char got[4];

				f[0].name = exact("Accept");
				f[0].value = exact("*/*");
				f[1].name = exact(names[i][v]);
				f[1].value = exact("x");
				f[2].name = exact("Date");
				f[2].value = exact("today");
				rc = hop_classify(f, 3, dirs[d], false, keep, &info);
				got[0] = keep[0] ? '1' : '0';
				got[1] = keep[1] ? '1' : '0';
				got[2] = keep[2] ? '1' : '0';
				got[3] = '\0';
				if (rc != HOP_OK || strcmp(got, "101") != 0) {
					print_error("%s (%s): got rc %d keep %s, want rc 0 keep 101\n",
						    names[i][v], d ? "response" : "request", rc, got);
					failures++;
				}
				free_fields(f, 3);
			}
	assert_int_equal(failures, 0);
}

/* Many fields: a Connection field at the very end still removes fields
 * listed long before it, and nothing else. */
static void test_many_fields(void **state)
{
	enum { N = 3000 };
	static struct http_field f[N];
	static bool keep[N];
	static char names[N][16];
	struct hop_info info;
	size_t i, kept = 0;

	(void)state;
	for (i = 0; i < N - 1; i++) {
		int len = snprintf(names[i], sizeof(names[i]), "X-%zu", i);

		f[i].name = slice_make(names[i], (size_t)len);
		f[i].value = SLICE_LIT("v");
	}
	f[N - 1].name = SLICE_LIT("Connection");
	f[N - 1].value = SLICE_LIT("x-7, X-2998,,x-0");
	assert_int_equal(hop_classify(f, N, HOP_REQUEST, false, keep, &info), HOP_OK);
	for (i = 0; i < N; i++)
		kept += keep[i];
	if (keep[0] || keep[7] || keep[2998] || keep[N - 1] || !keep[1] || !keep[70] ||
	    !keep[2997] || kept != N - 4)
		fail_msg("keep[0,7,2998,last]=%d%d%d%d keep[1,70,2997]=%d%d%d kept %zu, want 0000 111 kept %d",
			 keep[0], keep[7], keep[2998], keep[N - 1], keep[1], keep[70], keep[2997],
			 kept, N - 4);
}

/* hop_is_hop_by_hop: exactly the standard set, any case. */
static void test_is_hop_by_hop(void **state)
{
	static const struct {
		const char *name;
		bool want;
	} t[] = {
		{ "Connection", true }, { "keep-alive", true }, { "PROXY-CONNECTION", true },
		{ "TE", true }, { "trailer", true }, { "Transfer-Encoding", true },
		{ "upgrade", true }, { "Proxy-Authorization", true },
		{ "proxy-authenticate", true },
		{ "Content-Length", false }, { "Host", false }, { "Max-Forwards", false },
		{ "Expect", false }, { "Connections", false }, { "Connectio", false },
		{ "", false }, { "X-Foo", false }, { "TEE", false }, { "T", false },
		{ "Proxy-Authentication-Info", false },
	};
	size_t i, failures = 0;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct slice s = exact(t[i].name);
		bool got = hop_is_hop_by_hop(s);

		if (got != t[i].want) {
			print_error("hop_is_hop_by_hop(\"%s\"): got %d, want %d\n", t[i].name, got,
				    t[i].want);
			failures++;
		}
		free((void *)(uintptr_t)s.p);
	}
	assert_int_equal(failures, 0);
}

/* hop_list_has: element match, case-insensitive, OWS and empty elements. */
static void test_list_has(void **state)
{
	static const struct {
		const char *value, *token;
		bool want;
	} t[] = {
		{ "close", "close", true },
		{ "Keep-Alive, Close", "close", true },
		{ " , close ,", "close", true },
		{ "a,b,\tc\t", "C", true },
		{ "upgrade", "Upgrade", true },
		{ "closed", "close", false },
		{ "clos", "close", false },
		{ "x-close", "close", false },
		{ "", "close", false },
		{ ",,,", "close", false },
		{ "keep-alive", "keep", false },
		{ "a, b", "", false },
		{ "a,,b", "", false },
	};
	size_t i, failures = 0;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct slice v = exact(t[i].value);
		bool got = hop_list_has(v, t[i].token);

		if (got != t[i].want) {
			print_error("hop_list_has(\"%s\", \"%s\"): got %d, want %d\n", t[i].value,
				    t[i].token, got, t[i].want);
			failures++;
		}
		free((void *)(uintptr_t)v.p);
	}
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify_rows),
		cmocka_unit_test(test_each_standard_field_dropped),
		cmocka_unit_test(test_many_fields),
		cmocka_unit_test(test_is_hop_by_hop),
		cmocka_unit_test(test_list_has),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

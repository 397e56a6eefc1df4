/* test_cache_policy.c - unit tests of the RFC 9111 rules (src/proto/cache_policy.c):
 * one table per function, each row says what it checks and what it wants. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cache_policy.h"

#define MAXF 12
#define A CC_ABSENT

/* Sun, 06 Nov 1994 08:49:37 GMT */
#define T0 INT64_C(784111777)
#define D0 "Sun, 06 Nov 1994 08:49:37 GMT"
#define D0_M1H "Sun, 06 Nov 1994 07:49:37 GMT"     /* T0 - 3600 */
#define D0_P1H "Sun, 06 Nov 1994 09:49:37 GMT"     /* T0 + 3600 */
#define D0_M10D "Thu, 27 Oct 1994 08:49:37 GMT"    /* T0 - 864000 */
#define D0_M1000D "Tue, 10 Feb 1992 08:49:37 GMT"  /* T0 - 86400000 */

typedef const char *kv[MAXF][2]; /* name, value; ends at the first NULL name */

/* Build fields from a kv table; returns their count. */
static size_t mk(const kv in, struct http_field *f)
{
	size_t n = 0;

	while (n < MAXF && in[n][0]) {
		f[n].name = slice_make(in[n][0], strlen(in[n][0]));
		f[n].value = slice_make(in[n][1], strlen(in[n][1]));
		n++;
	}
	return n;
}

/* Render a struct cc as a compact string for comparisons. */
static void cc_str(const struct cc *c, char *out, size_t len)
{
	int w = 0;

#define FLAG(x, s) do { if (c->x) w += snprintf(out + w, len - (size_t)w, "%s ", s); } while (0)
#define NUM(x, s) do { if (c->x != CC_ABSENT) w += snprintf(out + w, len - (size_t)w, "%s=%lld ", s, (long long)c->x); } while (0)
	out[0] = '\0';
	FLAG(present, "P");
	FLAG(no_store, "no-store");
	FLAG(no_cache, "no-cache");
	FLAG(no_cache_qualified, "nc-q");
	FLAG(private_, "private");
	FLAG(public_, "public");
	FLAG(must_revalidate, "must-revalidate");
	FLAG(proxy_revalidate, "proxy-revalidate");
	FLAG(only_if_cached, "only-if-cached");
	FLAG(no_transform, "no-transform");
	FLAG(immutable, "immutable");
	FLAG(must_understand, "must-understand");
	FLAG(max_stale_any, "max-stale");
	FLAG(max_age_invalid, "max-age-invalid");
	NUM(max_age, "max-age");
	NUM(s_maxage, "s-maxage");
	NUM(max_stale, "max-stale");
	NUM(min_fresh, "min-fresh");
	NUM(stale_while_revalidate, "swr");
	NUM(stale_if_error, "sie");
#undef FLAG
#undef NUM
	if (w > 0)
		out[w - 1] = '\0';
}

/* ---- cc_parse ---- */

struct cc_row {
	const char *what;
	kv f;
	const char *want;
};

static const struct cc_row cc_rows[] = {
	{ "no Cache-Control", { { "X", "max-age=5" } }, "" },
	{ "simple flags", { { "Cache-Control", "no-store, no-cache, public" } },
	  "P no-store no-cache public" },
	{ "names are case-insensitive", { { "cache-control", "Max-Age=10, MUST-REVALIDATE" } },
	  "P must-revalidate max-age=10" },
	{ "lists over several fields combine", { { "Cache-Control", "max-age=10" },
	  { "X", "y" }, { "Cache-Control", "private, s-maxage=20" } },
	  "P private max-age=10 s-maxage=20" },
	{ "quoted delta accepted", { { "Cache-Control", "max-age=\"30\"" } }, "P max-age=30" },
	{ "duplicate: first wins", { { "Cache-Control", "max-age=10, max-age=1" } },
	  "P max-age=10" },
	{ "duplicate across fields: first wins", { { "Cache-Control", "max-age=1" },
	  { "Cache-Control", "max-age=99" } }, "P max-age=1" },
	{ "malformed max-age", { { "Cache-Control", "max-age=abc" } }, "P max-age-invalid" },
	{ "max-age without value", { { "Cache-Control", "max-age" } }, "P max-age-invalid" },
	{ "max-age negative", { { "Cache-Control", "max-age=-1" } }, "P max-age-invalid" },
	{ "max-age unterminated quote", { { "Cache-Control", "max-age=\"5" } },
	  "P max-age-invalid" },
	{ "huge delta clamped to 2^31", { { "Cache-Control", "max-age=99999999999999999999" } },
	  "P max-age=2147483648" },
	{ "malformed s-maxage is 0", { { "Cache-Control", "s-maxage=x" } }, "P s-maxage=0" },
	{ "max-stale without value", { { "Cache-Control", "max-stale" } }, "P max-stale" },
	{ "max-stale with value", { { "Cache-Control", "max-stale=60, min-fresh=5" } },
	  "P max-stale=60 min-fresh=5" },
	{ "malformed max-stale ignored", { { "Cache-Control", "max-stale=abc" } }, "P" },
	{ "qualified no-cache and private", { { "Cache-Control",
	  "no-cache=\"Set-Cookie, X-A\", private=\"X-B\"" } }, "P no-cache nc-q private" },
	{ "comma inside quotes does not split", { { "Cache-Control",
	  "private=\"a,max-age=9\", max-age=3" } }, "P private max-age=3" },
	{ "RFC 5861 and others", { { "Cache-Control",
	  "stale-while-revalidate=30, stale-if-error=60, immutable, no-transform, "
	  "only-if-cached, must-understand, proxy-revalidate" } },
	  "P proxy-revalidate only-if-cached no-transform immutable must-understand swr=30 sie=60" },
	{ "unknown and empty elements ignored", { { "Cache-Control", " , foo=bar,,max-age=7 ," } },
	  "P max-age=7" },
	{ "spaces around =", { { "Cache-Control", "max-age = 8" } }, "P max-age=8" },
};

/* cc_parse over the table. */
static void test_cc_parse(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cc_rows) / sizeof(cc_rows[0]); i++) {
		struct http_field f[MAXF];
		struct cc c;
		char got[256];
		size_t n = mk(cc_rows[i].f, f);

		cc_parse(f, n, &c);
		cc_str(&c, got, sizeof(got));
		if (strcmp(got, cc_rows[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", cc_rows[i].what, got, cc_rows[i].want);
	}
}

/* ---- dates ---- */

struct date_row {
	const char *in;
	int64_t want;
};

static const struct date_row date_rows[] = {
	{ D0, T0 },
	{ "Sunday, 06-Nov-94 08:49:37 GMT", T0 },
	{ "Sun Nov  6 08:49:37 1994", T0 },
	{ "Sun Nov 16 08:49:37 1994", T0 + 10 * 86400 },
	{ "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
	{ "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
	{ "Wednesday, 01-Jan-20 00:00:00 GMT", 1577836800 },
	{ "Thu, 01 Jan 1970 00:00:00 UTC", -1 },
	{ "Mon, 29 Feb 1999 00:00:00 GMT", -1 },
	{ "Sun, 06 Nov 1994 24:00:00 GMT", -1 },
	{ "Sun, 06 Foo 1994 08:49:37 GMT", -1 },
	{ "Sun, 06 Nov 1994 08:49:37 GMT ", -1 },
	{ "Sun, 6 Nov 1994 08:49:37 GMT", -1 },
	{ "Wed, 31 Dec 1969 23:59:59 GMT", -1 },
	{ "0", -1 },
	{ "-1", -1 },
	{ "", -1 },
};

/* http_date_parse over the table, and the format round trip. */
static void test_dates(void **state)
{
	size_t i;
	char buf[40];

	(void)state;
	for (i = 0; i < sizeof(date_rows) / sizeof(date_rows[0]); i++) {
		int64_t got = http_date_parse(slice_make(date_rows[i].in, strlen(date_rows[i].in)));

		if (got != date_rows[i].want)
			fail_msg("date \"%s\": got %lld, want %lld", date_rows[i].in, (long long)got,
				 (long long)date_rows[i].want);
	}
	http_date_format(T0, buf, sizeof(buf));
	if (strcmp(buf, D0) != 0)
		fail_msg("format: got \"%s\", want \"%s\"", buf, D0);
	http_date_format(951782400, buf, sizeof(buf));
	if (strcmp(buf, "Tue, 29 Feb 2000 00:00:00 GMT") != 0)
		fail_msg("format leap: got \"%s\"", buf);
	http_date_format(T0, buf, 29);
	if (buf[0] != '\0')
		fail_msg("format short buffer: got \"%s\", want \"\"", buf);
}

/* ---- cache_req_parse and cache_method_cacheable ---- */

/* Request summary: pragma, authorization, conditional, range. */
static void test_req_parse(void **state)
{
	static const struct {
		const char *what;
		kv f;
		const char *want; /* "pragma auth cond range" as 0/1 */
	} rows[] = {
		{ "nothing", { { "Host", "h" } }, "0000" },
		{ "pragma no-cache without Cache-Control", { { "Pragma", "No-Cache" } }, "1000" },
		{ "pragma in a list", { { "Pragma", "foo, no-cache" } }, "1000" },
		{ "pragma ignored with Cache-Control", { { "Pragma", "no-cache" },
		  { "Cache-Control", "max-age=5" } }, "0000" },
		{ "authorization", { { "authorization", "Basic eDp5" } }, "0100" },
		{ "If-None-Match", { { "If-None-Match", "\"a\"" } }, "0010" },
		{ "If-Modified-Since", { { "If-Modified-Since", D0 } }, "0010" },
		{ "Range", { { "Range", "bytes=0-1" } }, "0001" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_field f[MAXF];
		struct cache_req r;
		char got[5];
		size_t n = mk(rows[i].f, f);

		cache_req_parse(f, n, &r);
		snprintf(got, sizeof(got), "%d%d%d%d", r.pragma_no_cache, r.has_authorization,
			 r.conditional, r.has_range);
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s: got %s, want %s", rows[i].what, got, rows[i].want);
	}
	if (!cache_method_cacheable(SLICE_LIT("GET")) || !cache_method_cacheable(SLICE_LIT("HEAD")))
		fail_msg("GET/HEAD: got not cacheable, want cacheable");
	if (cache_method_cacheable(SLICE_LIT("POST")) || cache_method_cacheable(SLICE_LIT("get")))
		fail_msg("POST/get: got cacheable, want not cacheable");
}

/* ---- cache_storable ---- */

struct st_row {
	const char *what;
	const char *method;
	int status;
	kv req;
	kv res;
	const char *want; /* NULL: storable */
};

static const struct st_row st_rows[] = {
	{ "200 max-age", "GET", 200, { { NULL } }, { { "Cache-Control", "max-age=60" } }, NULL },
	{ "HEAD not stored", "HEAD", 200, { { NULL } }, { { "Cache-Control", "max-age=60" } },
	  "method" },
	{ "POST not stored", "POST", 200, { { NULL } }, { { "Cache-Control", "max-age=60" } },
	  "method" },
	{ "206 never", "GET", 206, { { NULL } }, { { "Cache-Control", "max-age=60" } }, "status" },
	{ "304 never", "GET", 304, { { NULL } }, { { "Cache-Control", "max-age=60" } }, "status" },
	{ "1xx never", "GET", 103, { { NULL } }, { { "Cache-Control", "max-age=60" } }, "status" },
	{ "302 without freshness", "GET", 302, { { NULL } }, { { "Last-Modified", D0 } },
	  "status" },
	{ "302 with max-age", "GET", 302, { { NULL } }, { { "Cache-Control", "max-age=5" } },
	  NULL },
	{ "307 with Expires", "GET", 307, { { NULL } }, { { "Date", D0 }, { "Expires", D0_P1H } },
	  NULL },
	{ "302 public", "GET", 302, { { NULL } }, { { "Cache-Control", "public" } }, NULL },
	{ "500 with s-maxage", "GET", 500, { { NULL } }, { { "Cache-Control", "s-maxage=5" } },
	  NULL },
	{ "404 heuristic with Last-Modified", "GET", 404, { { NULL } },
	  { { "Date", D0 }, { "Last-Modified", D0_M10D } }, NULL },
	{ "200 with only ETag (revalidatable)", "GET", 200, { { NULL } }, { { "ETag", "\"x\"" } },
	  NULL },
	{ "200 with nothing", "GET", 200, { { NULL } }, { { "Content-Type", "text/plain" } },
	  "no freshness" },
	{ "200 Expires in the past, no validator", "GET", 200, { { NULL } },
	  { { "Date", D0 }, { "Expires", D0_M1H } }, "no freshness" },
	{ "200 max-age=0, no validator", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=0" } }, "no freshness" },
	{ "200 public alone", "GET", 200, { { NULL } }, { { "Cache-Control", "public" } }, NULL },
	{ "200 no-cache with ETag", "GET", 200, { { NULL } },
	  { { "Cache-Control", "no-cache" }, { "ETag", "\"e\"" } }, NULL },
	{ "response no-store", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=60, no-store" } }, "no-store" },
	{ "request no-store", "GET", 200, { { "Cache-Control", "no-store" } },
	  { { "Cache-Control", "max-age=60" } }, "no-store" },
	{ "private", "GET", 200, { { NULL } }, { { "Cache-Control", "private, max-age=60" } },
	  "private" },
	{ "qualified private", "GET", 200, { { NULL } },
	  { { "Cache-Control", "private=\"X\", max-age=60" } }, "private" },
	{ "private beats public", "GET", 200, { { NULL } },
	  { { "Cache-Control", "public, private, s-maxage=60" } }, "private" },
	{ "authorization alone", "GET", 200, { { "Authorization", "Basic eDp5" } },
	  { { "Cache-Control", "max-age=60" } }, "authorization" },
	{ "authorization + public", "GET", 200, { { "Authorization", "Basic eDp5" } },
	  { { "Cache-Control", "max-age=60, public" } }, NULL },
	{ "authorization + s-maxage", "GET", 200, { { "Authorization", "Basic eDp5" } },
	  { { "Cache-Control", "s-maxage=60" } }, NULL },
	{ "authorization + must-revalidate", "GET", 200, { { "Authorization", "Basic eDp5" } },
	  { { "Cache-Control", "max-age=60, must-revalidate" } }, NULL },
	{ "vary *", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=60" }, { "Vary", "Accept, *" } }, "vary *" },
	{ "vary accept fine", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=60" }, { "Vary", "Accept" } }, NULL },
	{ "set-cookie with max-age only: stored (RFC 9111 has no cookie rule)", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=60" }, { "Set-Cookie", "a=1" } }, NULL },
	{ "set-cookie with public", "GET", 200, { { NULL } },
	  { { "Cache-Control", "max-age=60, public" }, { "Set-Cookie", "a=1" } }, NULL },
	{ "set-cookie with s-maxage", "GET", 200, { { NULL } },
	  { { "Cache-Control", "s-maxage=60" }, { "set-cookie", "a=1" } }, NULL },
	{ "must-understand ignores no-store", "GET", 200, { { NULL } },
	  { { "Cache-Control", "must-understand, no-store, max-age=60" } }, NULL },
	{ "must-understand 302 still needs freshness", "GET", 302, { { NULL } },
	  { { "Cache-Control", "must-understand" }, { "ETag", "\"e\"" } }, "status" },
	{ "must-understand with 302", "GET", 302, { { NULL } },
	  { { "Cache-Control", "must-understand, no-store, max-age=60" } }, NULL },
	{ "must-understand with unknown status", "GET", 299, { { NULL } },
	  { { "Cache-Control", "must-understand, no-store, max-age=60" } }, "must-understand" },
	{ "must-understand still private", "GET", 200, { { NULL } },
	  { { "Cache-Control", "must-understand, private, max-age=60" } }, "private" },
};

/* cache_storable over the table. */
static void test_storable(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(st_rows) / sizeof(st_rows[0]); i++) {
		const struct st_row *r = &st_rows[i];
		struct http_field rq[MAXF], rs[MAXF];
		struct cache_req req;
		size_t qn = mk(r->req, rq), sn = mk(r->res, rs);
		const char *got;

		cache_req_parse(rq, qn, &req);
		got = cache_storable(slice_make(r->method, strlen(r->method)), r->status, &req, rs,
				     sn, 86400);
		if ((got == NULL) != (r->want == NULL) || (got && strcmp(got, r->want) != 0))
			fail_msg("%s: got %s, want %s", r->what, got ? got : "stored",
				 r->want ? r->want : "stored");
	}
}

/* ---- freshness ---- */

struct fr_row {
	const char *what;
	int status;
	kv f;
	int64_t response_time, heuristic_max, want;
};

static const struct fr_row fr_rows[] = {
	{ "s-maxage over max-age", 200, { { "Cache-Control", "max-age=10, s-maxage=20" } },
	  T0, 86400, 20 },
	{ "max-age over Expires", 200, { { "Cache-Control", "max-age=10" }, { "Date", D0 },
	  { "Expires", D0_P1H } }, T0, 86400, 10 },
	{ "Expires - Date", 200, { { "Date", D0 }, { "Expires", D0_P1H } }, T0, 86400, 3600 },
	{ "Expires - response_time without Date", 200, { { "Expires", D0_P1H } }, T0 - 600,
	  86400, 4200 },
	{ "Expires in the past", 200, { { "Date", D0 }, { "Expires", D0_M1H } }, T0, 86400, 0 },
	{ "Expires: 0 is stale", 200, { { "Date", D0 }, { "Expires", "0" },
	  { "Last-Modified", D0_M10D } }, T0, 86400, 0 },
	{ "unparseable Expires is stale, no heuristic", 200, { { "Date", D0 },
	  { "Expires", "soon" }, { "Last-Modified", D0_M10D } }, T0, 86400, 0 },
	{ "invalid max-age is stale even with Expires", 200, { { "Cache-Control", "max-age=x" },
	  { "Date", D0 }, { "Expires", D0_P1H } }, T0, 86400, 0 },
	{ "heuristic 10%", 200, { { "Date", D0 }, { "Last-Modified", D0_M10D } }, T0, 86400,
	  86400 },
	{ "heuristic capped", 200, { { "Date", D0 }, { "Last-Modified", D0_M1000D } }, T0, 3600,
	  3600 },
	{ "heuristic uses response_time without Date", 404, { { "Last-Modified", D0_M10D } },
	  T0 + 86400 * 10, 10000000, 172800 },
	{ "heuristic disabled by heuristic_max 0", 200, { { "Date", D0 },
	  { "Last-Modified", D0_M10D } }, T0, 0, 0 },
	{ "no heuristic for 302", 302, { { "Date", D0 }, { "Last-Modified", D0_M10D } }, T0,
	  86400, 0 },
	{ "heuristic for public 302", 302, { { "Cache-Control", "public" }, { "Date", D0 },
	  { "Last-Modified", D0_M10D } }, T0, 86400, 86400 },
	{ "Last-Modified after Date", 200, { { "Date", D0_M1H }, { "Last-Modified", D0 } }, T0,
	  86400, 0 },
	{ "nothing", 200, { { "Date", D0 } }, T0, 86400, 0 },
	{ "no-cache keeps lifetime", 200, { { "Cache-Control", "no-cache, max-age=50" } }, T0,
	  86400, 50 },
};

/* cache_freshness_lifetime over the table. */
static void test_freshness(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(fr_rows) / sizeof(fr_rows[0]); i++) {
		const struct fr_row *r = &fr_rows[i];
		struct http_field f[MAXF];
		size_t n = mk(r->f, f);
		int64_t got = cache_freshness_lifetime(r->status, f, n, r->response_time,
						       r->heuristic_max);

		if (got != r->want)
			fail_msg("%s: got %lld, want %lld", r->what, (long long)got, (long long)r->want);
	}
}

/* ---- age (RFC 9111 §4.2.3) ---- */

struct age_row {
	const char *what;
	kv f;
	int64_t req_t, res_t, now, want;
};

static const struct age_row age_rows[] = {
	{ "fresh from origin, no delay", { { "Date", D0 } }, T0, T0, T0, 0 },
	{ "resident time", { { "Date", D0 } }, T0, T0, T0 + 100, 100 },
	{ "response delay added to Age", { { "Date", D0 }, { "Age", "30" } }, T0, T0 + 5, T0 + 5,
	  35 },
	{ "apparent age beats corrected age", { { "Date", D0_M1H }, { "Age", "10" } }, T0, T0 + 2,
	  T0 + 12, 3602 + 10 },
	{ "corrected age beats apparent age", { { "Date", D0_M1H }, { "Age", "7200" } }, T0,
	  T0 + 2, T0 + 2, 7202 },
	{ "Date in the future: apparent age 0", { { "Date", D0_P1H } }, T0, T0, T0 + 1, 1 },
	{ "no Date: response_time", { { "Age", "5" } }, T0, T0 + 1, T0 + 1, 6 },
	{ "request after response (clock step): delay 0", { { "Date", D0 }, { "Age", "5" } },
	  T0 + 10, T0, T0, 5 },
	/* RFC 9111 §5.1: invalid -> ignored (0); a list -> its first member */
	{ "invalid Age ignored", { { "Date", D0 }, { "Age", "x5" } }, T0, T0, T0 + 3, 3 },
	{ "Age 0, 0: first member", { { "Date", D0 }, { "Age", "0, 0" } }, T0, T0, T0, 0 },
	{ "Age 0, 7200: first member", { { "Date", D0 }, { "Age", "0, 7200" } }, T0, T0, T0, 0 },
	{ "Age 7200,0: first member", { { "Date", D0 }, { "Age", "7200,0" } }, T0, T0, T0, 7200 },
	{ "two Age lines: the first", { { "Date", D0 }, { "Age", "0" }, { "Age", "7200" } }, T0,
	  T0, T0, 0 },
	{ "two Age lines, old first", { { "Date", D0 }, { "Age", "7200" }, { "Age", "0" } }, T0,
	  T0, T0, 7200 },
	{ "negative Age ignored", { { "Date", D0 }, { "Age", "-5" } }, T0, T0, T0, 0 },
	{ "float Age ignored", { { "Date", D0 }, { "Age", "1.5" } }, T0, T0, T0, 0 },
	{ "Age with a parameter ignored", { { "Date", D0 }, { "Age", "7200;foo=1" } }, T0, T0, T0,
	  0 },
	{ "empty Age ignored", { { "Date", D0 }, { "Age", "" } }, T0, T0, T0, 0 },
	{ "Age 2^31 is stale", { { "Date", D0 }, { "Age", "2147483648" } }, T0, T0, T0,
	  2147483648 },
	{ "huge Age clamped", { { "Date", D0 }, { "Age", "99999999999" } }, T0, T0, T0,
	  2147483648 },
};

/* cache_current_age over the table. */
static void test_age(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(age_rows) / sizeof(age_rows[0]); i++) {
		const struct age_row *r = &age_rows[i];
		struct http_field f[MAXF];
		size_t n = mk(r->f, f);
		int64_t got = cache_current_age(f, n, r->req_t, r->res_t, r->now);

		if (got != r->want)
			fail_msg("%s: got %lld, want %lld", r->what, (long long)got, (long long)r->want);
	}
}

/* ---- cache_decide ---- */

static const char *const use_names[] = { "FRESH", "STALE", "STALE_REVALIDATE", "VALIDATE", "MISS" };

struct dec_row {
	const char *what;
	kv req;
	kv stored;
	int64_t elapsed; /* now - T0; request and response at T0 */
	enum cache_use want;
	int64_t want_ttl;
	bool want_sie;
};

#define FRESH CACHE_USE_FRESH
#define STALE CACHE_USE_STALE
#define SWR CACHE_USE_STALE_REVALIDATE
#define VAL CACHE_USE_VALIDATE
#define MISS CACHE_USE_MISS

static const struct dec_row dec_rows[] = {
	{ "fresh", { { NULL } }, { { "Date", D0 }, { "Cache-Control", "max-age=100" } }, 10, FRESH,
	  90, false },
	{ "exactly expired is stale", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 100, VAL, 0, false },
	{ "stale", { { NULL } }, { { "Date", D0 }, { "Cache-Control", "max-age=100" } }, 150, VAL,
	  -50, false },
	{ "request no-store", { { "Cache-Control", "no-store" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, MISS, 90, false },
	{ "request no-cache", { { "Cache-Control", "no-cache" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, VAL, 90, false },
	{ "pragma no-cache", { { "Pragma", "no-cache" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, VAL, 90, false },
	{ "pragma with Cache-Control ignored", { { "Pragma", "no-cache" },
	  { "Cache-Control", "max-stale=0" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, FRESH, 90, false },
	{ "response no-cache", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "no-cache, max-age=100" } }, 10, VAL, 90, false },
	{ "response qualified no-cache", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "no-cache=\"Set-Cookie\", max-age=100" } }, 10, VAL, 90, false },
	{ "request max-age exceeded", { { "Cache-Control", "max-age=5" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, VAL, 90, false },
	{ "request max-age equal is fine", { { "Cache-Control", "max-age=10" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100" } }, 10, FRESH, 90, false },
	{ "request max-age=0", { { "Cache-Control", "max-age=0" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 1, VAL, 99, false },
	{ "request malformed max-age is 0", { { "Cache-Control", "max-age=z" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100" } }, 1, VAL, 99, false },
	{ "min-fresh not met", { { "Cache-Control", "min-fresh=95" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, VAL, 90, false },
	{ "min-fresh met", { { "Cache-Control", "min-fresh=90" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 10, FRESH, 90, false },
	{ "max-stale covers", { { "Cache-Control", "max-stale=60" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 150, STALE, -50, false },
	{ "max-stale too small", { { "Cache-Control", "max-stale=10" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 150, VAL, -50, false },
	{ "max-stale boundary", { { "Cache-Control", "max-stale=50" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 150, STALE, -50, false },
	{ "max-stale any", { { "Cache-Control", "max-stale" } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100" } }, 100000, STALE, -99900, false },
	{ "must-revalidate beats max-stale", { { "Cache-Control", "max-stale" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100, must-revalidate" } }, 150, VAL, -50,
	  false },
	{ "proxy-revalidate beats max-stale", { { "Cache-Control", "max-stale" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100, proxy-revalidate" } }, 150, VAL, -50,
	  false },
	{ "s-maxage implies proxy-revalidate", { { "Cache-Control", "max-stale" } },
	  { { "Date", D0 }, { "Cache-Control", "s-maxage=100" } }, 150, VAL, -50, false },
	{ "must-revalidate while fresh", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, must-revalidate" } }, 50, FRESH, 50, false },
	{ "stale-while-revalidate covers", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-while-revalidate=60" } }, 150, SWR, -50, false },
	{ "stale-while-revalidate boundary", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-while-revalidate=60" } }, 160, SWR, -60, false },
	{ "stale-while-revalidate expired", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-while-revalidate=60" } }, 161, VAL, -61, false },
	{ "swr but must-revalidate", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-while-revalidate=60, must-revalidate" } }, 150,
	  VAL, -50, false },
	{ "max-stale preferred over swr", { { "Cache-Control", "max-stale=100" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100, stale-while-revalidate=60" } }, 150,
	  STALE, -50, false },
	{ "stale-if-error response", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-if-error=60" } }, 150, VAL, -50, true },
	{ "stale-if-error too old", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-if-error=60" } }, 161, VAL, -61, false },
	{ "stale-if-error request", { { "Cache-Control", "stale-if-error=100" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100" } }, 150, VAL, -50, true },
	/* RFC 5861 §4: the request's value is that request's upper limit */
	{ "request stale-if-error=0 tightens", { { "Cache-Control", "stale-if-error=0" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100, stale-if-error=600" } }, 150, VAL, -50,
	  false },
	{ "request stale-if-error widens", { { "Cache-Control", "stale-if-error=100" } },
	  { { "Date", D0 }, { "Cache-Control", "max-age=100, stale-if-error=10" } }, 150, VAL, -50,
	  true },
	{ "stale-if-error vs must-revalidate", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "max-age=100, stale-if-error=60, must-revalidate" } }, 150, VAL, -50,
	  false },
	{ "stale-if-error vs s-maxage", { { NULL } }, { { "Date", D0 },
	  { "Cache-Control", "s-maxage=100, stale-if-error=60" } }, 150, VAL, -50, false },
	{ "heuristic fresh", { { NULL } }, { { "Date", D0 }, { "Last-Modified", D0_M10D } }, 1000,
	  FRESH, 85400, false },
	{ "age from Age header", { { NULL } }, { { "Date", D0 }, { "Age", "95" },
	  { "Cache-Control", "max-age=100" } }, 10, VAL, -5, false },
};

/* cache_decide over the table. */
static void test_decide(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(dec_rows) / sizeof(dec_rows[0]); i++) {
		const struct dec_row *r = &dec_rows[i];
		struct http_field rq[MAXF], st[MAXF];
		struct cache_req req;
		struct cache_decision d;
		size_t qn = mk(r->req, rq), sn = mk(r->stored, st);

		cache_req_parse(rq, qn, &req);
		cache_decide(&req, 200, st, sn, T0, T0, T0 + r->elapsed, 86400, &d);
		if (d.use != r->want || d.ttl != r->want_ttl || d.stale_if_error_ok != r->want_sie)
			fail_msg("%s: got %s ttl=%lld sie=%d, want %s ttl=%lld sie=%d", r->what,
				 use_names[d.use], (long long)d.ttl, d.stale_if_error_ok,
				 use_names[r->want], (long long)r->want_ttl, r->want_sie);
	}
}

/* ---- Vary ---- */

/* cache_vary_star, cache_vary_names, cache_vary_value. */
static void test_vary(void **state)
{
	static const struct {
		const char *what;
		kv f;
		bool star;
		const char *names; /* joined with '|' */
	} vrows[] = {
		{ "none", { { "X", "y" } }, false, "" },
		{ "one", { { "Vary", "Accept-Encoding" } }, false, "Accept-Encoding" },
		{ "list over fields", { { "Vary", "Accept, Cookie" }, { "vary", " ,User-Agent" } },
		  false, "Accept|Cookie|User-Agent" },
		{ "star", { { "Vary", "Accept" }, { "Vary", "*" } }, true, "Accept|*" },
		{ "star in list", { { "Vary", "Accept ,* " } }, true, "Accept|*" },
	};
	static const struct {
		const char *what;
		kv f;
		const char *name;
		const char *want;
		bool absent;
	} vals[] = {
		{ "absent", { { "Accept", "a" } }, "Cookie", "", true },
		{ "present empty", { { "Cookie", "" } }, "Cookie", "", false },
		{ "single", { { "accept-encoding", "gzip" } }, "Accept-Encoding", "gzip", false },
		{ "OWS around commas", { { "Accept-Encoding", "gzip ,  br,deflate" } },
		  "Accept-Encoding", "gzip,br,deflate", false },
		{ "lines joined", { { "Accept", "text/html" }, { "X", "1" },
		  { "Accept", "text/plain;q=0.5" } }, "Accept", "text/html,text/plain;q=0.5", false },
		{ "inner space kept", { { "User-Agent", "curl 8" } }, "User-Agent", "curl 8", false },
	};
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(vrows) / sizeof(vrows[0]); i++) {
		struct http_field f[MAXF];
		struct slice names[8];
		char got[128] = "";
		size_t n = mk(vrows[i].f, f), c = cache_vary_names(f, n, names, 8), w = 0;

		for (k = 0; k < c; k++)
			w += (size_t)snprintf(got + w, sizeof(got) - w, "%s%.*s", k ? "|" : "",
					      (int)names[k].len, names[k].p);
		if (strcmp(got, vrows[i].names) != 0)
			fail_msg("%s: names got \"%s\", want \"%s\"", vrows[i].what, got, vrows[i].names);
		if (cache_vary_star(f, n) != vrows[i].star)
			fail_msg("%s: star got %d, want %d", vrows[i].what, !vrows[i].star,
				 vrows[i].star);
	}
	{
		struct http_field f[MAXF];
		struct slice names[1];
		static const kv three = { { "Vary", "a, b, c" } };
		size_t c = cache_vary_names(f, mk(three, f), names, 1);

		if (c != 3 || !slice_eq(names[0], "a"))
			fail_msg("vary names max=1: got %zu, want 3 with first \"a\"", c);
	}
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct http_field f[MAXF];
		char out[64];
		bool absent = !vals[i].absent;
		size_t n = mk(vals[i].f, f);
		size_t got = cache_vary_value(f, n, slice_make(vals[i].name, strlen(vals[i].name)),
					      out, sizeof(out), &absent);

		if (got != strlen(vals[i].want) || memcmp(out, vals[i].want, got) != 0 ||
		    absent != vals[i].absent)
			fail_msg("%s: got \"%.*s\" absent=%d, want \"%s\" absent=%d", vals[i].what,
				 (int)got, out, absent, vals[i].want, vals[i].absent);
	}
	{
		struct http_field f[MAXF];
		static const kv t = { { "Accept", "abcdef" } };
		char out[4] = { 'x', 'x', 'x', 'x' };
		bool absent;
		size_t got = cache_vary_value(f, mk(t, f), SLICE_LIT("Accept"), out, 3, &absent);

		if (got != 6 || memcmp(out, "abcx", 4) != 0)
			fail_msg("truncated vary value: got %zu \"%.4s\", want 6 \"abcx\"", got, out);
	}
	{
		/* the length measured without a buffer is the length written */
		struct http_field f[MAXF];
		static const kv t = { { "Accept", " a , b ,c" }, { "accept", "d ,  e" } };
		char out[64];
		bool absent;
		size_t n = mk(t, f);
		size_t need = cache_vary_value(f, n, SLICE_LIT("Accept"), NULL, 0, &absent);
		size_t got = cache_vary_value(f, n, SLICE_LIT("Accept"), out, sizeof(out), &absent);

		if (need != got || got != 9 || memcmp(out, "a,b,c,d,e", 9) != 0)
			fail_msg("measured %zu, wrote %zu \"%.*s\"", need, got, (int)got, out);
	}
}

/* ---- validators ---- */

/* cache_validators builds If-None-Match / If-Modified-Since, never from Date. */
static void test_validators(void **state)
{
	static const struct {
		const char *what;
		kv f;
		size_t len;
		const char *want;
	} rows[] = {
		{ "etag", { { "ETag", "\"v1\"" } }, 256, "If-None-Match: \"v1\"\r\n" },
		{ "weak etag", { { "ETag", "W/\"v1\"" } }, 256, "If-None-Match: W/\"v1\"\r\n" },
		{ "last-modified", { { "Last-Modified", D0 } }, 256,
		  "If-Modified-Since: " D0 "\r\n" },
		{ "both", { { "Last-Modified", D0 }, { "ETag", "\"v1\"" } }, 256,
		  "If-None-Match: \"v1\"\r\nIf-Modified-Since: " D0 "\r\n" },
		{ "Date is not a validator", { { "Date", D0 } }, 256, "" },
		{ "invalid Last-Modified unused", { { "Last-Modified", "yesterday" } }, 256, "" },
		{ "too small: line left out whole", { { "ETag", "\"v1\"" } }, 10, "" },
		{ "room for the first line only", { { "ETag", "\"v1\"" }, { "Last-Modified", D0 } },
		  25, "If-None-Match: \"v1\"\r\n" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_field f[MAXF];
		char out[256];
		size_t n = mk(rows[i].f, f), got = cache_validators(f, n, out, rows[i].len);

		if (got != strlen(rows[i].want) || memcmp(out, rows[i].want, got) != 0)
			fail_msg("%s: got \"%.*s\", want \"%s\"", rows[i].what, (int)got, out,
				 rows[i].want);
	}
}

/* ---- conditionals ---- */

/* cache_conditional: 304 or 0. */
static void test_conditional(void **state)
{
	static const struct {
		const char *what;
		kv req;
		kv stored;
		int want;
	} rows[] = {
		{ "no conditional", { { "Accept", "*/*" } }, { { "ETag", "\"a\"" } }, 0 },
		{ "INM match", { { "If-None-Match", "\"a\"" } }, { { "ETag", "\"a\"" } }, 304 },
		{ "INM mismatch", { { "If-None-Match", "\"b\"" } }, { { "ETag", "\"a\"" } }, 0 },
		{ "INM weak vs strong", { { "If-None-Match", "W/\"a\"" } }, { { "ETag", "\"a\"" } },
		  304 },
		{ "INM strong vs weak", { { "If-None-Match", "\"a\"" } }, { { "ETag", "W/\"a\"" } },
		  304 },
		{ "INM list", { { "If-None-Match", "\"x\", \"y\" ,W/\"a\"" } },
		  { { "ETag", "\"a\"" } }, 304 },
		{ "INM over two lines", { { "If-None-Match", "\"x\"" }, { "If-None-Match", "\"a\"" } },
		  { { "ETag", "\"a\"" } }, 304 },
		{ "INM star", { { "If-None-Match", "*" } }, { { "Content-Type", "x" } }, 304 },
		{ "INM without stored ETag", { { "If-None-Match", "\"a\"" } },
		  { { "Last-Modified", D0 } }, 0 },
		{ "INM quotes matter", { { "If-None-Match", "a" } }, { { "ETag", "\"a\"" } }, 0 },
		{ "INM mismatch ignores IMS", { { "If-None-Match", "\"b\"" },
		  { "If-Modified-Since", D0_P1H } }, { { "ETag", "\"a\"" }, { "Last-Modified", D0 } },
		  0 },
		{ "IMS not modified", { { "If-Modified-Since", D0 } }, { { "Last-Modified", D0 } },
		  304 },
		{ "IMS later", { { "If-Modified-Since", D0_P1H } }, { { "Last-Modified", D0 } }, 304 },
		{ "IMS modified", { { "If-Modified-Since", D0_M1H } }, { { "Last-Modified", D0 } },
		  0 },
		{ "IMS falls back to Date", { { "If-Modified-Since", D0 } }, { { "Date", D0_M1H } },
		  304 },
		{ "IMS vs newer Date", { { "If-Modified-Since", D0_M1H } }, { { "Date", D0 } }, 0 },
		{ "IMS invalid ignored", { { "If-Modified-Since", "nope" } },
		  { { "Last-Modified", D0 } }, 0 },
		{ "IMS without any date", { { "If-Modified-Since", D0 } }, { { "ETag", "\"a\"" } }, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_field q[MAXF], s[MAXF];
		size_t qn = mk(rows[i].req, q), sn = mk(rows[i].stored, s);
		int got = cache_conditional(q, qn, s, sn);

		if (got != rows[i].want)
			fail_msg("%s: got %d, want %d", rows[i].what, got, rows[i].want);
	}
}

/* ---- 304 merge ---- */

/* cache_merge_304: keep/use vectors as '1'/'0' strings. */
static void test_merge_304(void **state)
{
	static const struct {
		const char *what;
		kv stored;
		kv fresh;
		const char *keep, *use;
	} rows[] = {
		{ "replace same name, keep others",
		  { { "Content-Type", "text/html" }, { "ETag", "\"a\"" }, { "Cache-Control", "max-age=5" },
		    { "X-Old", "1" } },
		  { { "cache-control", "max-age=60" }, { "ETag", "\"a\"" }, { "X-New", "2" } },
		  "1101", "101" }, /* ETag: the stored response depends on it (§3.2) */
		{ "Content-MD5 and ETag never updated",
		  { { "ETag", "W/\"a\"" }, { "Content-MD5", "x" } },
		  { { "ETag", "\"a\"" }, { "Content-MD5", "y" } },
		  "11", "00" },
		{ "all stored lines of the name replaced",
		  { { "Link", "a" }, { "Link", "b" }, { "Date", D0 } },
		  { { "Link", "c" } }, "001", "1" },
		{ "Content-Length, Content-Encoding, Content-Range not updated",
		  { { "Content-Length", "10" }, { "Content-Encoding", "gzip" }, { "Content-Range", "x" } },
		  { { "Content-Length", "0" }, { "Content-Encoding", "br" },
		    { "Content-Range", "bytes */10" } }, "111", "000" },
		{ "hop-by-hop never used",
		  { { "X", "1" } },
		  { { "Connection", "X-Hop" }, { "X-Hop", "1" }, { "Keep-Alive", "t=5" },
		    { "Transfer-Encoding", "chunked" }, { "Proxy-Authenticate", "Basic" },
		    { "Proxy-Authentication-Info", "a" }, { "Date", D0 } },
		  "1", "0000001" },
		{ "Connection-listed name does not replace stored", { { "X-Hop", "stored" } },
		  { { "x-hop", "new" }, { "Connection", "close, X-Hop" } }, "1", "00" },
	};
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_field s[MAXF], f[MAXF];
		bool keep[MAXF], use[MAXF];
		char gk[MAXF + 1], gu[MAXF + 1];
		size_t sn = mk(rows[i].stored, s), fn = mk(rows[i].fresh, f);

		memset(keep, 0, sizeof(keep));
		memset(use, 1, sizeof(use));
		cache_merge_304(s, sn, f, fn, keep, use);
		for (k = 0; k < sn; k++)
			gk[k] = keep[k] ? '1' : '0';
		gk[sn] = '\0';
		for (k = 0; k < fn; k++)
			gu[k] = use[k] ? '1' : '0';
		gu[fn] = '\0';
		if (strcmp(gk, rows[i].keep) != 0 || strcmp(gu, rows[i].use) != 0)
			fail_msg("%s: got keep=%s use=%s, want keep=%s use=%s", rows[i].what, gk, gu,
				 rows[i].keep, rows[i].use);
	}
}

/* ---- ranges ---- */

/* Render a cache_range: "none", "416", "single 0-9", "multi 0-1,5-6". */
static void range_str(const struct cache_range *r, char *out, size_t len)
{
	static const char *const k[] = { "none", "single", "multi", "416" };
	size_t i;
	int w = snprintf(out, len, "%s", k[r->kind]);

	if (r->kind == CACHE_RANGE_SINGLE || r->kind == CACHE_RANGE_MULTI)
		for (i = 0; i < r->n; i++)
			w += snprintf(out + w, len - (size_t)w, "%s%llu-%llu", i ? "," : " ",
				      (unsigned long long)r->first[i], (unsigned long long)r->last[i]);
}

/* cache_range_parse over a table; body length 1000 unless said. */
static void test_range(void **state)
{
	static const struct {
		const char *what;
		kv req;
		kv stored;
		uint64_t len;
		const char *want;
	} rows[] = {
		{ "no Range", { { "Accept", "*/*" } }, { { NULL } }, 1000, "none" },
		{ "first-last", { { "Range", "bytes=0-499" } }, { { NULL } }, 1000, "single 0-499" },
		{ "unit case-insensitive", { { "Range", "Bytes=10-19" } }, { { NULL } }, 1000,
		  "single 10-19" },
		{ "open end", { { "Range", "bytes=900-" } }, { { NULL } }, 1000, "single 900-999" },
		{ "last clamped", { { "Range", "bytes=900-5000" } }, { { NULL } }, 1000,
		  "single 900-999" },
		{ "suffix", { { "Range", "bytes=-100" } }, { { NULL } }, 1000, "single 900-999" },
		{ "suffix larger than body", { { "Range", "bytes=-5000" } }, { { NULL } }, 1000,
		  "single 0-999" },
		{ "suffix zero unsatisfiable", { { "Range", "bytes=-0" } }, { { NULL } }, 1000, "416" },
		{ "start beyond end", { { "Range", "bytes=1000-" } }, { { NULL } }, 1000, "416" },
		{ "unsatisfiable skipped among good", { { "Range", "bytes=2000-3000, 0-9" } },
		  { { NULL } }, 1000, "single 0-9" },
		{ "multi", { { "Range", "bytes=0-9, 20-29,-10" } }, { { NULL } }, 1000,
		  "multi 0-9,20-29,990-999" },
		{ "overlapping: whole", { { "Range", "bytes=0-99,50-150" } }, { { NULL } }, 1000,
		  "none" },
		{ "more than 8: whole", { { "Range", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16" } },
		  { { NULL } }, 1000, "none" },
		{ "exactly 8", { { "Range", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14" } },
		  { { NULL } }, 1000, "multi 0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14" },
		{ "last < first: ignored", { { "Range", "bytes=10-5" } }, { { NULL } }, 1000, "none" },
		{ "garbage: ignored", { { "Range", "bytes=a-b" } }, { { NULL } }, 1000, "none" },
		{ "no dash: ignored", { { "Range", "bytes=10" } }, { { NULL } }, 1000, "none" },
		{ "other unit", { { "Range", "items=0-1" } }, { { NULL } }, 1000, "none" },
		{ "empty set", { { "Range", "bytes=" } }, { { NULL } }, 1000, "none" },
		{ "only commas", { { "Range", "bytes= , ," } }, { { NULL } }, 1000, "none" },
		{ "two Range fields", { { "Range", "bytes=0-1" }, { "Range", "bytes=2-3" } },
		  { { NULL } }, 1000, "none" },
		{ "empty body", { { "Range", "bytes=0-1" } }, { { NULL } }, 0, "none" },
		{ "If-Range strong etag match", { { "Range", "bytes=0-9" }, { "If-Range", "\"a\"" } },
		  { { "ETag", "\"a\"" } }, 1000, "single 0-9" },
		{ "If-Range etag mismatch", { { "Range", "bytes=0-9" }, { "If-Range", "\"b\"" } },
		  { { "ETag", "\"a\"" } }, 1000, "none" },
		{ "If-Range weak never matches", { { "Range", "bytes=0-9" },
		  { "If-Range", "W/\"a\"" } }, { { "ETag", "W/\"a\"" } }, 1000, "none" },
		{ "If-Range vs weak stored", { { "Range", "bytes=0-9" }, { "If-Range", "\"a\"" } },
		  { { "ETag", "W/\"a\"" } }, 1000, "none" },
		{ "If-Range date exact", { { "Range", "bytes=0-9" }, { "If-Range", D0 } },
		  { { "Last-Modified", D0 } }, 1000, "single 0-9" },
		{ "If-Range date differs", { { "Range", "bytes=0-9" }, { "If-Range", D0_P1H } },
		  { { "Last-Modified", D0 } }, 1000, "none" },
		{ "If-Range date earlier", { { "Range", "bytes=0-9" }, { "If-Range", D0_M1H } },
		  { { "Last-Modified", D0 } }, 1000, "none" },
		{ "If-Range date, no Last-Modified", { { "Range", "bytes=0-9" }, { "If-Range", D0 } },
		  { { "Date", D0 } }, 1000, "none" },
		{ "If-Range mismatch hides 416", { { "Range", "bytes=5000-" },
		  { "If-Range", "\"b\"" } }, { { "ETag", "\"a\"" } }, 1000, "none" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct http_field q[MAXF], s[MAXF];
		struct cache_range r;
		char got[256];
		size_t qn = mk(rows[i].req, q), sn = mk(rows[i].stored, s);

		cache_range_parse(q, qn, s, sn, rows[i].len, &r);
		range_str(&r, got, sizeof(got));
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", rows[i].what, got, rows[i].want);
	}
}

/* ---- invalidation ---- */

/* cache_invalidates: unsafe methods with 2xx/3xx. */
static void test_invalidates(void **state)
{
	static const struct {
		const char *method;
		int status;
		bool want;
	} rows[] = {
		{ "POST", 200, true }, { "PUT", 201, true }, { "DELETE", 204, true },
		{ "PATCH", 303, true }, { "FOO", 200, true }, { "get", 200, true },
		{ "POST", 399, true }, { "POST", 404, false }, { "POST", 500, false },
		{ "POST", 100, false }, { "GET", 200, false }, { "HEAD", 200, false },
		{ "OPTIONS", 200, false }, { "TRACE", 200, false }, { "CONNECT", 200, false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		bool got = cache_invalidates(slice_make(rows[i].method, strlen(rows[i].method)),
					     rows[i].status);

		if (got != rows[i].want)
			fail_msg("%s %d: got %d, want %d", rows[i].method, rows[i].status, got,
				 rows[i].want);
	}
}

/* ---- same origin ---- */

/* cache_same_origin: NULL want means "not same origin". */
static void test_same_origin(void **state)
{
	static const struct {
		const char *base, *ref, *want;
	} rows[] = {
		{ "http://a.example/x/y", "http://a.example/z", "http://a.example/z" },
		{ "http://a.example/x", "HTTP://A.Example:80/z", "HTTP://A.Example:80/z" },
		{ "https://a.example/x", "https://a.example:443/z", "https://a.example:443/z" },
		{ "http://a.example:8080/x", "http://a.example:8080/z", "http://a.example:8080/z" },
		{ "http://a.example/x", "https://a.example/z", NULL },
		{ "http://a.example/x", "http://b.example/z", NULL },
		{ "http://a.example/x", "http://a.example:81/z", NULL },
		{ "http://a.example/x", "ftp://a.example/z", NULL },
		{ "http://a.example/x", "http://u@a.example/z", NULL },
		{ "http://a.example/x", "http://a.example/z#frag", "http://a.example/z" },
		{ "http://a.example/x/y?q=1", "/z?w", "http://a.example/z?w" },
		{ "http://a.example:8080/x", "/z", "http://a.example:8080/z" },
		{ "http://a.example/x/y?q=1", "z", "http://a.example/x/z" },
		{ "http://a.example/x/y", "../z", "http://a.example/z" },
		{ "http://a.example/x/y", "./z/../w", "http://a.example/x/w" },
		{ "http://a.example/x/y", "/a/./b/../c", "http://a.example/a/c" },
		{ "http://a.example/x/y?q", "?r", "http://a.example/x/y?r" },
		{ "http://a.example", "z", "http://a.example/z" },
		{ "http://a.example/x", "//a.example/z", "http://a.example/z" },
		{ "http://a.example/x", "//b.example/z", NULL },
		{ "http://a.example/x", "", NULL },
		{ "/x", "/z", NULL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char out[128] = "";
		bool got = cache_same_origin(slice_make(rows[i].base, strlen(rows[i].base)),
					     slice_make(rows[i].ref, strlen(rows[i].ref)), out,
					     sizeof(out));

		if (got != (rows[i].want != NULL) || (got && strcmp(out, rows[i].want) != 0))
			fail_msg("%s + %s: got %s \"%s\", want %s", rows[i].base, rows[i].ref,
				 got ? "same" : "other", out, rows[i].want ? rows[i].want : "other");
	}
	{
		char out[10];

		if (cache_same_origin(SLICE_LIT("http://a.example/x"), SLICE_LIT("/long/path"),
				      out, sizeof(out)))
			fail_msg("small out: got true, want false");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cc_parse),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_req_parse),
		cmocka_unit_test(test_storable),
		cmocka_unit_test(test_freshness),
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_vary),
		cmocka_unit_test(test_validators),
		cmocka_unit_test(test_conditional),
		cmocka_unit_test(test_merge_304),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_invalidates),
		cmocka_unit_test(test_same_origin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

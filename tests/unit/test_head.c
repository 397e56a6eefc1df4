/* test_head.c - the head writer (src/net/head.c).
 *
 * Examples pin the exact bytes of each piece; a property test writes random
 * heads (random status, reason, fields, keep flags and skip index) and reads
 * them back with the response parser: the fields that come back are exactly
 * the kept ones, in order, byte for byte, and Date is added only when
 * missing. The seed is printed; HOPCACHE_SEED=N replays a run. */
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

#include <event2/buffer.h>

#include "head.h"
#include "prng.h"

static void assert_bytes(struct evbuffer *b, const char *want)
{
	size_t n = evbuffer_get_length(b);
	char *got = strndup((const char *)evbuffer_pullup(b, -1), n);
	assert_string_equal(got, want);
	free(got);
	evbuffer_drain(b, n);
}

static struct slice S(const char *s)
{
	return (struct slice){ s, strlen(s) };
}

static void test_pieces(void **state)
{
	(void)state;
	struct evbuffer *b = evbuffer_new();
	head_status(b, 204, S("No Content"));
	assert_bytes(b, "HTTP/1.1 204 No Content\r\n");
	head_status(b, 200, S(""));
	assert_bytes(b, "HTTP/1.1 200 \r\n");
	head_status_str(b, 200, "Connection established");
	head_end(b, false);
	assert_bytes(b, "HTTP/1.1 200 Connection established\r\n\r\n");
	head_field_str(b, "Allow", "GET, HEAD");
	assert_bytes(b, "Allow: GET, HEAD\r\n");
	head_via(b, 0, "hopcache");
	assert_bytes(b, "Via: 1.0 hopcache\r\n");
	head_framing(b, HTTP_BODY_LENGTH, 0);
	head_framing(b, HTTP_BODY_LENGTH, 18446744073709551615ULL);
	head_framing(b, HTTP_BODY_CHUNKED, 7);
	head_framing(b, HTTP_BODY_NONE, 7);
	head_framing(b, HTTP_BODY_CLOSE, 7);
	assert_bytes(b, "Content-Length: 0\r\nContent-Length: 18446744073709551615\r\n"
			"Transfer-Encoding: chunked\r\n");
	head_end(b, true);
	assert_bytes(b, "Connection: close\r\n\r\n");
	struct http_field f[3] = { { S("A"), S("1") }, { S("Date"), S("x") }, { S("C"), S("") } };
	bool keep[3] = { true, false, true };
	head_fields(b, f, 3, keep, -1);
	assert_bytes(b, "A: 1\r\nC: \r\n");
	head_fields(b, f, 3, NULL, 1);
	assert_bytes(b, "A: 1\r\nC: \r\n");
	head_fields(b, f, 3, NULL, -1);
	assert_bytes(b, "A: 1\r\nDate: x\r\nC: \r\n");
	head_date_if_missing(b, f, 3);
	assert_int_equal(evbuffer_get_length(b), 0);
	head_date_if_missing(b, f, 1);
	size_t n = evbuffer_get_length(b);
	const char *d = (const char *)evbuffer_pullup(b, -1);
	/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" */
	assert_int_equal(n, 37);
	assert_memory_equal(d, "Date: ", 6);
	assert_memory_equal(d + 31, " GMT\r\n", 6);
	evbuffer_free(b);
}

static void rnd_token(char *out, size_t max)
{
	static const char tch[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~";
	size_t n = 1 + rnd() % max;
	for (size_t i = 0; i < n; i++)
		out[i] = tch[rnd() % (sizeof(tch) - 1)];
	out[n] = '\0';
}

static void rnd_value(char *out, size_t max)
{
	size_t n = rnd() % max;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(0x21 + rnd() % 94); /* visible; inner spaces below */
	for (size_t i = 1; i + 1 < n; i++)
		if (rnd() % 8 == 0)
			out[i] = ' ';
	out[n] = '\0';
}

static void test_roundtrip(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_head", 2000, &seed);
	enum { NF = 40 };
	static char names[NF][32], values[NF][200];
	for (unsigned round = 0; round < rounds; round++) {
		struct http_field f[NF];
		bool keep[NF];
		size_t n = rnd() % NF;
		for (size_t i = 0; i < n; i++) {
			rnd_token(names[i], 30);
			if (rnd() % 10 == 0)
				strcpy(names[i], rnd() % 2 ? "Date" : "dAtE");
			rnd_value(values[i], 199);
			f[i] = (struct http_field){ S(names[i]), S(values[i]) };
			keep[i] = rnd() % 3 != 0;
		}
		int skip = n > 0 && rnd() % 2 ? (int)(rnd() % n) : -1;
		int status = 100 + (int)(rnd() % 500);
		char reason[64];
		rnd_value(reason, 40);
		struct evbuffer *b = evbuffer_new();
		head_status_str(b, status, reason);
		head_fields(b, f, n, keep, skip);
		head_date_if_missing(b, f, n);
		head_end(b, false);
		size_t len = evbuffer_get_length(b);
		const char *buf = (const char *)evbuffer_pullup(b, -1);
		struct http_field got[NF + 2];
		struct http_response res = { .fields = got, .fields_cap = NF + 2 };
		struct http_limits lim = { 100000, 100000, NF + 2 };
		ssize_t r = http_parse_response(buf, len, &res, &lim);
		if (r != (ssize_t)len)
			fail_msg("seed %llu round %u: the parser took %zd of %zu bytes",
				 (unsigned long long)seed, round, r, len);
		assert_int_equal(res.status, status);
		size_t j = 0;
		bool had_date = false;
		for (size_t i = 0; i < n; i++) {
			had_date |= slice_eq_ci(f[i].name, "date");
			if (!keep[i] || (int)i == skip)
				continue;
			if (j >= res.nfields || !slice_eq(got[j].name, names[i]) ||
			    !slice_eq(got[j].value, values[i]))
				fail_msg("seed %llu round %u: field %zu not written as given",
					 (unsigned long long)seed, round, i);
			j++;
		}
		size_t extra = res.nfields - j;
		assert_int_equal(extra, had_date ? 0 : 1);
		if (!had_date)
			assert_true(slice_eq_ci(got[j].name, "date"));
		evbuffer_free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_body.c - the body relay (src/net/body.c), as a property test whose oracle
 * is independent of the code under test.
 *
 * Each round makes a random body (0 to 200 KiB), encodes it as the sender
 * would (Content-Length, chunked with random chunk sizes, extensions and
 * trailers, or close-delimited), appends the bytes of a "next request", and
 * feeds the whole stream to body_relay in random slices. The properties:
 *   - the bytes written for the next hop, decoded by the small chunked
 *     decoder in this file when the next hop gets chunked coding, are the
 *     body, byte for byte;
 *   - body_relay says DONE exactly when the last byte of the body arrived
 *     (never before), and the next request's bytes stay in the input,
 *     untouched;
 *   - the tee holds the body when it fits tee_max, and nothing otherwise;
 *   - `total` counts the body bytes.
 * Plus the refusals: a malformed chunk size, and a body over the limit.
 *
 * The seed is printed; HOPCACHE_SEED=N replays a run, HOPCACHE_ROUNDS=N
 * changes its length. */
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

#include "body.h"
#include "prng.h"

/* The reference decoder for what the next hop receives in chunked coding:
 * strict (hex size, CRLF, data, CRLF; "0" CRLF CRLF at the end, no trailer,
 * since body.c writes none). Returns the decoded length, or -1. */
static long ref_unchunk(const char *p, size_t n, char *out)
{
	size_t i = 0, o = 0;
	for (;;) {
		size_t size = 0, digits = 0;
		while (i < n && ((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) {
			size = size * 16 + (size_t)(p[i] <= '9' ? p[i] - '0' : p[i] - 'a' + 10);
			i++;
			digits++;
		}
		if (digits == 0 || i + 2 > n || p[i] != '\r' || p[i + 1] != '\n')
			return -1;
		i += 2;
		if (size == 0)
			return i + 2 == n && p[i] == '\r' && p[i + 1] == '\n' ? (long)o : -1;
		if (i + size + 2 > n || p[i + size] != '\r' || p[i + size + 1] != '\n')
			return -1;
		memcpy(out + o, p + i, size);
		o += size;
		i += size + 2;
	}
}

/* The sender's encoding of a body (random chunking, extensions, trailers). */
static void encode(struct evbuffer *e, enum http_body_kind kind, const char *body, size_t len)
{
	if (kind != HTTP_BODY_CHUNKED) {
		evbuffer_add(e, body, len);
		return;
	}
	size_t off = 0;
	while (off < len) {
		size_t n = 1 + rnd_below(rnd_below(4) == 0 ? 16 : 40000);
		if (n > len - off)
			n = len - off;
		evbuffer_add_printf(e, rnd_below(2) ? "%zx" : "%zX", n);
		if (rnd_below(4) == 0)
			evbuffer_add_printf(e, ";ext=%u", (unsigned)rnd_below(1000));
		evbuffer_add(e, "\r\n", 2);
		evbuffer_add(e, body + off, n);
		evbuffer_add(e, "\r\n", 2);
		off += n;
	}
	evbuffer_add(e, "0\r\n", 3);
	if (rnd_below(3) == 0)
		evbuffer_add_printf(e, "X-Trailer: %u\r\n", (unsigned)rnd_below(1000));
	evbuffer_add(e, "\r\n", 2);
}

static void one_round(uint64_t seed, unsigned round)
{
	static const char next_req[] = "GET http://example.test/next HTTP/1.1\r\nHost: e\r\n\r\n";
	size_t len = rnd_below(3) == 0 ? rnd_below(64) : rnd_below(200 * 1024);
	char *body = malloc(len + 1);
	assert_non_null(body);
	for (size_t i = 0; i < len; i++)
		body[i] = (char)rnd();
	enum http_body_kind kinds[] = { HTTP_BODY_LENGTH, HTTP_BODY_CHUNKED, HTTP_BODY_CLOSE };
	enum http_body_kind kind = kinds[rnd_below(3)];
	bool out_chunked = rnd_below(2);
	struct http_framing f = { .kind = kind, .length = len };
	struct body b = { 0 };
	body_init(&b, &f, out_chunked, 8192);
	size_t tee_max = rnd_below(2) ? len + rnd_below(10) : rnd_below(len + 1);
	if (len > 0 && tee_max >= len && rnd_below(2))
		tee_max = len; /* exactly at the edge */
	b.tee = evbuffer_new();
	b.tee_max = tee_max;

	struct evbuffer *stream = evbuffer_new(), *src = evbuffer_new(), *dst = evbuffer_new();
	encode(stream, kind, body, len);
	size_t body_end = evbuffer_get_length(stream); /* the body's last byte */
	if (kind != HTTP_BODY_CLOSE)
		evbuffer_add(stream, next_req, sizeof(next_req) - 1);
	size_t fed = 0;
	int r = BODY_MORE;
	bool done_seen = len == 0 && kind == HTTP_BODY_LENGTH;
	while (evbuffer_get_length(stream) > 0) {
		size_t n = 1 + rnd_below(rnd_below(3) == 0 ? 7 : 70000);
		size_t left = evbuffer_get_length(stream);
		n = n > left ? left : n;
		evbuffer_remove_buffer(stream, src, n);
		fed += n;
		r = body_relay(&b, src, dst, 0);
		if (r != BODY_MORE && r != BODY_DONE)
			fail_msg("seed %llu round %u: body_relay returned %d", (unsigned long long)seed,
				 round, r);
		if (r == BODY_DONE && !done_seen) {
			if (fed < body_end)
				fail_msg("seed %llu round %u: DONE after %zu of %zu bytes",
					 (unsigned long long)seed, round, fed, body_end);
			done_seen = true;
		}
		if (kind == HTTP_BODY_CLOSE && r == BODY_DONE)
			fail_msg("seed %llu round %u: close-delimited body DONE before EOF",
				 (unsigned long long)seed, round);
	}
	if (kind == HTTP_BODY_CLOSE) {
		size_t before = evbuffer_get_length(dst);
		size_t w = body_close(&b, dst);
		assert_int_equal(w, evbuffer_get_length(dst) - before);
		assert_true(b.done);
	} else if (!done_seen) {
		fail_msg("seed %llu round %u: never DONE (kind %d, %zu bytes)", (unsigned long long)seed,
			 round, (int)kind, len);
	}
	/* the next request is untouched */
	size_t rest = evbuffer_get_length(src);
	if (kind == HTTP_BODY_CLOSE) {
		assert_int_equal(rest, 0);
	} else {
		assert_int_equal(rest, sizeof(next_req) - 1);
		assert_memory_equal(evbuffer_pullup(src, -1), next_req, rest);
	}
	/* what the next hop got is the body */
	size_t olen = evbuffer_get_length(dst);
	const char *out = (const char *)evbuffer_pullup(dst, -1);
	char *dec = malloc(len + 1);
	assert_non_null(dec);
	long dlen;
	if (out_chunked)
		dlen = len == 0 && kind == HTTP_BODY_LENGTH && olen == 0 ? 0
									 : ref_unchunk(out, olen, dec);
	else if ((dlen = (long)olen) > 0)
		memcpy(dec, out, olen <= len ? olen : len);
	if (dlen != (long)len || memcmp(dec, body, len) != 0)
		fail_msg("seed %llu round %u: next hop got %ld bytes that differ from the %zu-byte "
			 "body (kind %d, out_chunked %d)",
			 (unsigned long long)seed, round, dlen, len, (int)kind, (int)out_chunked);
	assert_int_equal(b.total, len);
	/* the tee */
	if (len <= tee_max) {
		assert_non_null(b.tee);
		assert_int_equal(evbuffer_get_length(b.tee), len);
		assert_memory_equal(evbuffer_pullup(b.tee, -1), body, len);
	} else if (b.tee != NULL) {
		fail_msg("seed %llu round %u: a %zu-byte body kept in a tee of %zu",
			 (unsigned long long)seed, round, len, tee_max);
	}
	body_free(&b);
	assert_null(b.tee);
	evbuffer_free(stream);
	evbuffer_free(src);
	evbuffer_free(dst);
	free(dec);
	free(body);
}

static void test_property(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_body", 400, &seed);
	for (unsigned i = 0; i < rounds; i++)
		one_round(seed, i);
}

static int relay_text(struct body *b, const char *text, uint64_t limit, struct evbuffer *dst)
{
	struct evbuffer *src = evbuffer_new();
	evbuffer_add(src, text, strlen(text));
	int r = body_relay(b, src, dst, limit);
	evbuffer_free(src);
	return r;
}

static void test_malformed_chunk(void **state)
{
	(void)state;
	struct http_framing f = { .kind = HTTP_BODY_CHUNKED };
	struct body b = { 0 };
	body_init(&b, &f, true, 8192);
	struct evbuffer *dst = evbuffer_new();
	assert_int_equal(relay_text(&b, "3\r\nabc\r\nzz\r\n", 0, dst), BODY_MALFORMED);
	/* what was whole before the error went on, as one chunk */
	assert_int_equal(evbuffer_get_length(dst), 8);
	assert_memory_equal(evbuffer_pullup(dst, -1), "3\r\nabc\r\n", 8);
	evbuffer_free(dst);
}

static void test_limit(void **state)
{
	(void)state;
	struct http_framing f = { .kind = HTTP_BODY_CHUNKED };
	struct body b = { 0 };
	body_init(&b, &f, false, 8192);
	struct evbuffer *dst = evbuffer_new();
	assert_int_equal(relay_text(&b, "5\r\nabcde\r\n", 5, dst), BODY_MORE);
	assert_int_equal(relay_text(&b, "1\r\nf\r\n", 5, dst), BODY_TOO_LARGE);
	evbuffer_free(dst);
}

static void test_length_rechunked(void **state)
{
	(void)state;
	struct http_framing f = { .kind = HTTP_BODY_LENGTH, .length = 5 };
	struct body b = { 0 };
	body_init(&b, &f, true, 8192);
	struct evbuffer *dst = evbuffer_new();
	assert_int_equal(relay_text(&b, "abc", 0, dst), BODY_MORE);
	assert_int_equal(relay_text(&b, "deGET", 0, dst), BODY_DONE);
	const char want[] = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	assert_int_equal(evbuffer_get_length(dst), sizeof(want) - 1);
	assert_memory_equal(evbuffer_pullup(dst, -1), want, sizeof(want) - 1);
	/* done stays done; nothing more is taken */
	assert_int_equal(relay_text(&b, "x", 0, dst), BODY_DONE);
	assert_int_equal(evbuffer_get_length(dst), sizeof(want) - 1);
	evbuffer_free(dst);
}

/* keep_trailers: the trailer section goes on, split anywhere in the input;
 * without it the section is this hop's and dropped. */
static void test_trailers(void **state)
{
	(void)state;
	static const char in[] = "3;x=y\r\nabc\r\n2\r\nde\r\n0;z\r\nX-Sum: 42\r\nX-B:\tb\r\n\r\nNEXT";
	for (int keep = 0; keep <= 1; keep++) {
		for (size_t cut = 1; cut < sizeof(in) - 1; cut++) {
			struct http_framing f = { .kind = HTTP_BODY_CHUNKED };
			struct body b = { 0 };
			body_init(&b, &f, true, 8192);
			b.keep_trailers = keep;
			struct evbuffer *dst = evbuffer_new(), *src = evbuffer_new();
			evbuffer_add(src, in, cut);
			int r = body_relay(&b, src, dst, 0);
			evbuffer_add(src, in + cut, sizeof(in) - 1 - cut);
			if (r != BODY_DONE)
				r = body_relay(&b, src, dst, 0);
			assert_int_equal(r, BODY_DONE);
			assert_int_equal(evbuffer_get_length(src), 4); /* "NEXT" is not the body's */
			size_t n = evbuffer_get_length(dst);
			char *got = (char *)evbuffer_pullup(dst, -1);
			const char *tail = keep ? "0\r\nX-Sum: 42\r\nX-B:\tb\r\n\r\n" : "0\r\n\r\n";
			size_t tl = strlen(tail);
			if (n < tl || memcmp(got + n - tl, tail, tl) != 0)
				fail_msg("keep %d cut %zu: got \"%.*s\"", keep, cut, (int)n, got);
			body_free(&b);
			evbuffer_free(dst);
			evbuffer_free(src);
		}
	}
}

static void test_none(void **state)
{
	(void)state;
	struct http_framing f = { .kind = HTTP_BODY_NONE };
	struct body b = { 0 };
	body_init(&b, &f, true, 8192);
	assert_true(b.done);
	assert_false(b.out_chunked);
	struct evbuffer *dst = evbuffer_new();
	assert_int_equal(relay_text(&b, "GET", 0, dst), BODY_DONE);
	assert_int_equal(evbuffer_get_length(dst), 0);
	assert_int_equal(body_close(&b, dst), 0);
	evbuffer_free(dst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_property),
		cmocka_unit_test(test_malformed_chunk),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_length_rechunked),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_trailers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_http_request.c - libFuzzer target: request head, framing and target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 64

/* Abort unless a slice lies inside buf[0..len). */
static void check_inside(struct slice s, const char *buf, size_t len)
{
	if (s.len > 0 && (s.p < buf || s.p + s.len > buf + len))
		abort();
}

/* Parse with the given limits and check the parser's invariants. */
static void one(const char *buf, size_t size, const struct http_limits *lim)
{
	struct http_field f[MAXF];
	struct http_request req = { .fields = f, .fields_cap = MAXF };
	struct http_framing fr;
	struct http_target t;
	int st = 0, st2 = 0;
	ssize_t n = http_parse_request(buf, size, &req, lim, &st);
	size_t i;

	if (n == HTTP_ERROR) {
		if (st != 400 && st != 414 && st != 431 && st != 505)
			abort();
		/* a prefix is need-more or the same error */
		if (size > 0) {
			ssize_t m = http_parse_request(buf, size - 1, &req, lim, &st2);

			if (m != HTTP_NEED_MORE && (m != HTTP_ERROR || st2 != st))
				abort();
		}
		return;
	}
	if (n == HTTP_NEED_MORE)
		return;
	if ((size_t)n > size || (size_t)n > lim->max_header_bytes)
		abort();
	if (req.nfields > lim->max_headers || req.nfields > MAXF)
		abort();
	if (!http_is_token(req.method) || req.target.len == 0)
		abort();
	check_inside(req.method, buf, (size_t)n);
	check_inside(req.target, buf, (size_t)n);
	for (i = 0; i < req.nfields; i++) {
		struct slice v = f[i].value;

		check_inside(f[i].name, buf, (size_t)n);
		check_inside(v, buf, (size_t)n);
		if (!http_is_token(f[i].name))
			abort();
		if (v.len > 0 && (v.p[0] == ' ' || v.p[0] == '\t' ||
				  v.p[v.len - 1] == ' ' || v.p[v.len - 1] == '\t'))
			abort();
		if (memchr(v.p, '\r', v.len) || memchr(v.p, '\n', v.len) ||
		    memchr(v.p, '\0', v.len))
			abort();
	}
	/* the head alone parses to the same length; one byte less needs more */
	{
		struct http_field f2[MAXF];
		struct http_request r2 = { .fields = f2, .fields_cap = MAXF };

		if (http_parse_request(buf, (size_t)n, &r2, lim, &st2) != n)
			abort();
		if (http_parse_request(buf, (size_t)n - 1, &r2, lim, &st2) != HTTP_NEED_MORE)
			abort();
	}
	switch (http_request_framing(&req, &fr)) {
	case 0:
		if (fr.kind == HTTP_BODY_CLOSE)
			abort(); /* never for requests */
		if (fr.kind == HTTP_BODY_LENGTH && fr.length > (uint64_t)INT64_MAX)
			abort();
		break;
	case 400:
	case 501:
		break;
	default:
		abort();
	}
	switch (http_parse_target(req.method, req.target, &t)) {
	case 0:
		check_inside(t.host, buf, (size_t)n);
		if (t.form == HTTP_TARGET_ABSOLUTE || t.form == HTTP_TARGET_AUTHORITY) {
			if (t.host.len == 0 || t.port == 0)
				abort();
			if (memchr(t.host.p, '@', t.host.len))
				abort();
		}
		if (t.form == HTTP_TARGET_ABSOLUTE && t.path.len == 0)
			abort();
		break;
	case 400:
		break;
	default:
		abort();
	}
}

/* Entry point: default limits, then small ones to exercise 414/431. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits big = { 8192, 65536, 64 };
	static const struct http_limits small = { 24, 96, 3 };

	one((const char *)data, size, &big);
	one((const char *)data, size, &small);
	return 0;
}

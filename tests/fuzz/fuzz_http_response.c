/* fuzz_http_response.c - libFuzzer target: response head and framing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 64

/* Parse a response head, then its framing for every kind of request. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct http_limits lim = { 8192, 65536, 64 };
	const char *buf = (const char *)data;
	struct http_field f[MAXF];
	struct http_response res = { .fields = f, .fields_cap = MAXF };
	struct http_framing fr;
	ssize_t n = http_parse_response(buf, size, &res, &lim);
	int head, conn;
	size_t i;

	if (n <= 0) {
		if (n != HTTP_NEED_MORE && n != HTTP_ERROR)
			abort();
		return 0;
	}
	if ((size_t)n > size || res.status < 100 || res.status > 599 ||
	    res.nfields > MAXF || (res.minor != 0 && res.minor != 1))
		abort();
	if (res.reason.len && (res.reason.p < buf || res.reason.p + res.reason.len > buf + n))
		abort();
	for (i = 0; i < res.nfields; i++) {
		if (!http_is_token(f[i].name))
			abort();
		if (f[i].value.len && (f[i].value.p < buf ||
				       f[i].value.p + f[i].value.len > buf + n))
			abort();
	}
	if (http_parse_response(buf, (size_t)n - 1, &res, &lim) != HTTP_NEED_MORE)
		abort();
	res.nfields = 0;
	if (http_parse_response(buf, (size_t)n, &res, &lim) != n)
		abort();
	for (head = 0; head < 2; head++) {
		for (conn = 0; conn < 2; conn++) {
			int r = http_response_framing(&res, head, conn, &fr);

			if (r != 0 && r != -1)
				abort();
			if (r == 0 && (head || res.status < 200 || res.status == 204 ||
				       res.status == 304) && fr.kind != HTTP_BODY_NONE)
				abort();
		}
	}
	return 0;
}

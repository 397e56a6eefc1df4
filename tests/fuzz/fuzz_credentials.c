/* fuzz_credentials.c - libFuzzer target: the Proxy-Authorization parsers
 * (auth_credentials_split, auth_parse_basic, auth_b64_decode).
 *
 * Beyond "no crash, no over-read": the split's scheme and rest lie within
 * the input, the scheme is a token and the rest has no leading space and no
 * trailing blank;
 * Basic credentials parse only under a "Basic" scheme and then hold no
 * control character; base64 decodes to at most 3/4 of its length and never
 * more than the buffer, and decoding is deterministic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_within(struct slice s, const char *base, size_t size)
{
	if (s.len > 0 && (s.p < base || s.p + s.len > base + size))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	if (in == NULL)
		abort();
	memcpy(in, data, size);
	struct slice v = slice_make(in, size), scheme, rest;
	bool ok = auth_credentials_split(v, &scheme, &rest);
	check_within(scheme, in, size);
	check_within(rest, in, size);
	for (size_t i = 0; i < scheme.len; i++)
		if (!http_is_tchar((unsigned char)scheme.p[i]))
			abort();
	/* the spaces after the scheme are skipped; trailing blanks trimmed */
	if (ok && (scheme.len == 0 || (rest.len > 0 && (rest.p[0] == ' ' ||
							 rest.p[rest.len - 1] == ' ' ||
							 rest.p[rest.len - 1] == '\t'))))
		abort();

	char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
	int r = auth_parse_basic(v, user, sizeof(user), pass, sizeof(pass));
	if (r == AUTH_PARSE_OK) {
		if (!slice_eq_ci(scheme, "Basic") || user[0] == '\0')
			abort();
		for (const char *p = user; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		for (const char *p = pass; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
	} else if (r != AUTH_PARSE_NOT_BASIC && !slice_eq_ci(scheme, "Basic")) {
		abort();
	}

	size_t cap = size / 4 * 3 + 3;
	uint8_t *a = malloc(cap), *b = malloc(cap);
	if (a == NULL || b == NULL)
		abort();
	long n1 = auth_b64_decode(in, size, a, cap);
	long n2 = auth_b64_decode(in, size, b, cap);
	if (n1 != n2 || n1 > (long)(size / 4 * 3) || (n1 >= 0 && memcmp(a, b, (size_t)n1) != 0))
		abort();
	if (n1 > 0 && auth_b64_decode(in, size, a, (size_t)n1 - 1) != -1)
		abort(); /* a buffer one byte short is refused, never overrun */
	free(a);
	free(b);
	free(in);
	return 0;
}

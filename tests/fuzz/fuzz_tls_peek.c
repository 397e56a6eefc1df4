/* fuzz_tls_peek.c - libFuzzer target: the ClientHello SNI extractor.
 *
 * Beyond "no crash, no over-read": a host name must be a lower-case DNS name
 * that fits the buffer, and an answer once decided must not change when more
 * bytes arrive (every decided prefix agrees with the whole input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_peek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Peek at an exactly sized copy of data[0..len). */
static enum tls_peek_result peek(const uint8_t *data, size_t len, char *sni, size_t snilen)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum tls_peek_result r;

	if (!copy)
		abort();
	if (len)
		memcpy(copy, data, len);
	r = tls_peek_sni(copy, len, sni, snilen);
	free(copy);
	return r;
}

/* Abort unless sni is a NUL-terminated lower-case DNS name shorter than snilen. */
static void check_name(const char *sni, size_t snilen)
{
	size_t n = strnlen(sni, snilen);

	if (n == 0 || n >= snilen || n > 253 || sni[0] == '.' || sni[n - 1] == '.')
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = sni[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			abort();
		if (c == '.' && sni[i + 1] == '.')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sni[256], sni2[256];
	enum tls_peek_result full, part;
	size_t cut;

	memset(sni, 0x5a, sizeof(sni));
	full = tls_peek_sni(data, size, sni, sizeof(sni));
	if (full == TLS_PEEK_SNI)
		check_name(sni, sizeof(sni));

	/* A prefix that is decided must agree with the whole input. */
	for (unsigned i = 0; i < 3 && size > 0; i++) {
		cut = i == 0 ? size - 1 : (size_t)data[i % size] * size / 256;
		memset(sni2, 0x5a, sizeof(sni2));
		part = peek(data, cut, sni2, sizeof(sni2));
		if (part != TLS_PEEK_NEED_MORE && part != full)
			abort();
		if (part == TLS_PEEK_SNI && strcmp(sni, sni2) != 0)
			abort();
	}

	/* A small output buffer: the same answer, or MALFORMED when too small. */
	memset(sni2, 0x5a, sizeof(sni2));
	part = tls_peek_sni(data, size, sni2, 8);
	if (full == TLS_PEEK_SNI) {
		if (strlen(sni) < 8 ? part != TLS_PEEK_SNI || strcmp(sni, sni2) != 0
				    : part != TLS_PEEK_MALFORMED)
			abort();
	} else if (part != full) {
		abort();
	}
	if ((unsigned char)sni2[8] != 0x5a)
		abort();
	return 0;
}

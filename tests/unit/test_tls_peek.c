/* test_tls_peek.c - SNI extraction: captured ClientHellos, every truncation,
 * records split anywhere, corrupted lengths, host-name rules. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_peek.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BIG 20000

/* ClientHellos captured from OpenSSL 3.0 s_client against a loopback listener
 * that recorded the first bytes (the same bytes are the fuzz seeds in
 * tests/fuzz/corpus/tls_peek/):
 *   hello_tls12      -servername example.test -tls1_2
 *   hello_tls13      -servername example.test -tls1_3
 *   hello_no_sni     -noservername
 *   hello_upper_dot  -servername Example.TEST. (one trailing dot) */
static const uint8_t hello_tls12[] = {
	0x16, 0x03, 0x01, 0x00, 0xcc, 0x01, 0x00, 0x00, 0xc8, 0x03, 0x03, 0xc7,
	0xc3, 0x6d, 0xae, 0xc0, 0xfa, 0xd9, 0x2b, 0x07, 0xdb, 0xe8, 0xf8, 0xd1,
	0x96, 0xf9, 0x7c, 0xa5, 0xcf, 0x80, 0xdb, 0xfb, 0x41, 0x2e, 0xf1, 0x02,
	0x93, 0x40, 0x89, 0xdf, 0xa8, 0xf0, 0x08, 0x00, 0x00, 0x38, 0xc0, 0x2c,
	0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa, 0xc0, 0x2b,
	0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b, 0xc0, 0x23,
	0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39, 0xc0, 0x09,
	0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d, 0x00, 0x3c,
	0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x67, 0x00, 0x00,
	0x00, 0x11, 0x00, 0x0f, 0x00, 0x00, 0x0c, 0x65, 0x78, 0x61, 0x6d, 0x70,
	0x6c, 0x65, 0x2e, 0x74, 0x65, 0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03,
	0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00,
	0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23, 0x00, 0x00, 0x00,
	0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00,
	0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08,
	0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04,
	0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04,
	0x02, 0x05, 0x02, 0x06, 0x02,
};

static const uint8_t hello_tls13[] = {
	0x16, 0x03, 0x01, 0x00, 0xf1, 0x01, 0x00, 0x00, 0xed, 0x03, 0x03, 0xd8,
	0xf2, 0x6f, 0xf5, 0x34, 0xd5, 0x9c, 0x27, 0xd5, 0xeb, 0x27, 0x82, 0x20,
	0x2b, 0x85, 0x0c, 0xa2, 0xce, 0x7e, 0x87, 0x1f, 0xc9, 0xff, 0xe3, 0x25,
	0xe9, 0x3a, 0xe3, 0x7b, 0x9c, 0x55, 0x37, 0x20, 0xf4, 0xab, 0xd2, 0x80,
	0x4e, 0x2c, 0xe4, 0xf8, 0x21, 0x83, 0x5e, 0x24, 0x38, 0x26, 0x57, 0xd4,
	0xe3, 0x9e, 0x87, 0xa9, 0x2a, 0xed, 0x03, 0x2a, 0x88, 0x97, 0x23, 0xd7,
	0x75, 0xdb, 0xa5, 0x03, 0x00, 0x08, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0x00, 0xff, 0x01, 0x00, 0x00, 0x9c, 0x00, 0x00, 0x00, 0x11, 0x00, 0x0f,
	0x00, 0x00, 0x0c, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x74,
	0x65, 0x73, 0x74, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00,
	0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00,
	0x19, 0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01,
	0x04, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00,
	0x00, 0x00, 0x0d, 0x00, 0x1e, 0x00, 0x1c, 0x04, 0x03, 0x05, 0x03, 0x06,
	0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08,
	0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x00,
	0x2b, 0x00, 0x03, 0x02, 0x03, 0x04, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01,
	0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x40, 0xfc,
	0x88, 0x67, 0x00, 0x49, 0x86, 0x1b, 0x28, 0x09, 0x87, 0xae, 0xb3, 0xa5,
	0xec, 0xf1, 0x8b, 0x2d, 0x35, 0x14, 0x72, 0xc3, 0x5c, 0x67, 0x98, 0x62,
	0xa3, 0xa5, 0x02, 0x68, 0xaf, 0x16,
};

static const uint8_t hello_no_sni[] = {
	0x16, 0x03, 0x01, 0x01, 0x24, 0x01, 0x00, 0x01, 0x20, 0x03, 0x03, 0x6a,
	0x42, 0x19, 0x3e, 0x35, 0xd3, 0x01, 0x18, 0x46, 0xed, 0x3d, 0x05, 0xc2,
	0xd7, 0x57, 0xbe, 0x65, 0x92, 0x7f, 0xba, 0x7a, 0x34, 0x9d, 0x4d, 0x8a,
	0x40, 0xab, 0x04, 0x12, 0x3a, 0x43, 0xef, 0x20, 0xe3, 0x1a, 0x5f, 0x58,
	0xff, 0x69, 0x1a, 0xb2, 0x71, 0xad, 0x34, 0x68, 0xa5, 0x01, 0x61, 0x23,
	0xb0, 0x74, 0x79, 0x66, 0x8d, 0xd7, 0x55, 0xdd, 0xd2, 0xca, 0x88, 0xc3,
	0x55, 0xee, 0x05, 0x7e, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0x99,
	0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x16,
	0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18,
	0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23,
	0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
	0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
	0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
	0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
	0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
	0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
	0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
	0x20, 0x3c, 0x0c, 0xa9, 0x8c, 0xcd, 0x23, 0xb7, 0x00, 0x1f, 0x41, 0x4f,
	0xe6, 0xd4, 0xfb, 0x14, 0xa9, 0xe3, 0x2d, 0xde, 0x72, 0xd9, 0x03, 0x7b,
	0x31, 0xc7, 0xac, 0xd1, 0xd7, 0x0c, 0xc0, 0x71, 0x7d,
};

static const uint8_t hello_upper_dot[] = {
	0x16, 0x03, 0x01, 0x01, 0x30, 0x01, 0x00, 0x01, 0x2c, 0x03, 0x03, 0x85,
	0x10, 0xa5, 0xa5, 0xf6, 0xf5, 0x0b, 0x75, 0xa2, 0xf8, 0xa3, 0x25, 0xb0,
	0x0e, 0x78, 0xc3, 0xf5, 0xc1, 0x22, 0x88, 0xb7, 0x66, 0x86, 0x84, 0xbe,
	0x59, 0x57, 0x77, 0xdb, 0xe1, 0x7e, 0x69, 0x20, 0xc7, 0xca, 0xd3, 0x6f,
	0x02, 0xad, 0xcb, 0x8b, 0xff, 0x23, 0x59, 0x84, 0xbe, 0x04, 0x7c, 0x88,
	0x81, 0x38, 0x59, 0x70, 0xbf, 0x5c, 0xa2, 0xcd, 0x86, 0x23, 0x7e, 0x19,
	0x12, 0xa6, 0x94, 0x2d, 0x00, 0x3e, 0x13, 0x02, 0x13, 0x03, 0x13, 0x01,
	0xc0, 0x2c, 0xc0, 0x30, 0x00, 0x9f, 0xcc, 0xa9, 0xcc, 0xa8, 0xcc, 0xaa,
	0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9e, 0xc0, 0x24, 0xc0, 0x28, 0x00, 0x6b,
	0xc0, 0x23, 0xc0, 0x27, 0x00, 0x67, 0xc0, 0x0a, 0xc0, 0x14, 0x00, 0x39,
	0xc0, 0x09, 0xc0, 0x13, 0x00, 0x33, 0x00, 0x9d, 0x00, 0x9c, 0x00, 0x3d,
	0x00, 0x3c, 0x00, 0x35, 0x00, 0x2f, 0x00, 0xff, 0x01, 0x00, 0x00, 0xa5,
	0x00, 0x00, 0x00, 0x12, 0x00, 0x10, 0x00, 0x00, 0x0d, 0x45, 0x78, 0x61,
	0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x54, 0x45, 0x53, 0x54, 0x2e, 0x00, 0x0b,
	0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a, 0x00, 0x0c, 0x00, 0x0a,
	0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00, 0x00, 0x23,
	0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d,
	0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
	0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05,
	0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
	0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x00, 0x2b, 0x00, 0x09,
	0x08, 0x03, 0x04, 0x03, 0x03, 0x03, 0x02, 0x03, 0x01, 0x00, 0x2d, 0x00,
	0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
	0x20, 0x52, 0xef, 0xec, 0x7e, 0x00, 0x0d, 0xca, 0xd8, 0x48, 0x21, 0xdf,
	0x31, 0x00, 0x27, 0x2e, 0x6d, 0xf3, 0xee, 0x7f, 0xcb, 0x8d, 0xbd, 0x75,
	0xca, 0x08, 0xe7, 0x2f, 0xee, 0x25, 0xbb, 0x5d, 0x40,
};

static const char *result_name(enum tls_peek_result r)
{
	switch (r) {
	case TLS_PEEK_NEED_MORE: return "NEED_MORE";
	case TLS_PEEK_SNI: return "SNI";
	case TLS_PEEK_NO_SNI: return "NO_SNI";
	case TLS_PEEK_NOT_TLS: return "NOT_TLS";
	case TLS_PEEK_MALFORMED: return "MALFORMED";
	}
	return "?";
}

/* Run the extractor on a private, exactly sized copy (so ASan sees any
 * read past len) and with a canary after sni's declared size. */
static enum tls_peek_result peek(const uint8_t *in, size_t len, char *sni, size_t snilen)
{
	uint8_t *copy = malloc(len ? len : 1);
	char *out = malloc(snilen + 1);
	enum tls_peek_result r;

	assert_non_null(copy);
	assert_non_null(out);
	if (len)
		memcpy(copy, in, len);
	memset(out, '#', snilen + 1);
	r = tls_peek_sni(copy, len, out, snilen);
	if (out[snilen] != '#')
		fail_msg("wrote past snilen %zu", snilen);
	if (r == TLS_PEEK_SNI)
		memcpy(sni, out, snilen);
	free(out);
	free(copy);
	return r;
}

/* Check one whole input, then every proper prefix: NEED_MORE, always. */
static void expect(const char *name, const uint8_t *in, size_t len, size_t snilen,
		   enum tls_peek_result want, const char *want_sni)
{
	char sni[512];
	enum tls_peek_result got;

	memset(sni, 0, sizeof(sni));
	got = peek(in, len, sni, snilen);
	if (got != want)
		fail_msg("%s: got %s, want %s", name, result_name(got), result_name(want));
	if (want == TLS_PEEK_SNI && strcmp(sni, want_sni) != 0)
		fail_msg("%s: got sni '%s', want '%s'", name, sni, want_sni);
}

/* Every proper prefix of a valid hello is NEED_MORE. */
static void expect_prefixes(const char *name, const uint8_t *in, size_t len)
{
	char sni[256];

	for (size_t k = 0; k < len; k++) {
		enum tls_peek_result got = peek(in, k, sni, sizeof(sni));
		if (got != TLS_PEEK_NEED_MORE)
			fail_msg("%s: prefix %zu/%zu: got %s, want NEED_MORE", name, k, len,
				 result_name(got));
	}
}

/* ------------------------------------------------------------ builders --- */

static void put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put24(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 16);
	put16(p + 1, v);
}

/* Offsets of the length fields in a built hello (one record). */
enum {
	OFF_REC_VER = 1,
	OFF_REC_LEN = 3,
	OFF_HS_TYPE = 5,
	OFF_HS_LEN = 6,
	OFF_VERSION = 9,
	OFF_SID = 43,
	OFF_CS = 76,
	OFF_COMP = 82,
	OFF_EXTS = 84,
	OFF_EXT0 = 86, /* first extension: server_name when built with a host */
	OFF_SNI_LEN = OFF_EXT0 + 2,
	OFF_LIST = OFF_EXT0 + 4,
	OFF_NAME_TYPE = OFF_EXT0 + 6,
	OFF_NAME_LEN = OFF_EXT0 + 7,
	OFF_NAME = OFF_EXT0 + 9,
};

/* A server_name extension with one host_name entry; returns its size. */
static size_t ext_sni(uint8_t *p, const char *host, size_t hlen)
{
	put16(p, 0);
	put16(p + 2, hlen + 5);
	put16(p + 4, hlen + 3);
	p[6] = 0;
	put16(p + 7, hlen);
	memcpy(p + 9, host, hlen);
	return 9 + hlen;
}

/* supported_versions (TLS 1.3 only), then padding of pad bytes if pad > 0. */
static size_t ext_tail(uint8_t *p, size_t pad)
{
	static const uint8_t sv[] = { 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04 };
	memcpy(p, sv, sizeof(sv));
	if (pad == 0)
		return sizeof(sv);
	put16(p + sizeof(sv), 0x0015);
	put16(p + sizeof(sv) + 2, pad);
	memset(p + sizeof(sv) + 4, 0, pad);
	return sizeof(sv) + 4 + pad;
}

/* A one-record ClientHello around extension bytes exts[0..extlen); with
 * has_exts false the hello ends after the compression methods. */
static size_t build(uint8_t *out, const uint8_t *exts, size_t extlen, bool has_exts)
{
	uint8_t *p = out + 9;
	size_t body;

	out[0] = 22;
	out[1] = 3;
	out[2] = 1;
	out[5] = 1;
	*p++ = 3;
	*p++ = 3;
	memset(p, 0x11, 32); /* random */
	p += 32;
	*p++ = 32;
	memset(p, 0x22, 32); /* session id */
	p += 32;
	put16(p, 4);
	memcpy(p + 2, "\x13\x01\x13\x02", 4);
	p += 6;
	*p++ = 1;
	*p++ = 0;
	if (has_exts) {
		put16(p, extlen);
		if (extlen > 0)
			memcpy(p + 2, exts, extlen);
		p += 2 + extlen;
	}
	body = (size_t)(p - out) - 9;
	put24(out + 6, body);
	put16(out + 3, body + 4);
	return (size_t)(p - out);
}

/* A hello for host[0..hlen) followed by supported_versions. */
static size_t build_host(uint8_t *out, const char *host, size_t hlen)
{
	uint8_t exts[600];
	size_t n = ext_sni(exts, host, hlen);
	n += ext_tail(exts + n, 0);
	return build(out, exts, n, true);
}

/* Re-frame the handshake message of a one-record hello: the first record
 * carries `first` bytes, every later one `step` bytes. */
static size_t reframe(const uint8_t *in, size_t inlen, size_t first, size_t step, uint8_t *out)
{
	const uint8_t *msg = in + 5;
	size_t msglen = inlen - 5, o = 0, chunk = first;

	for (size_t i = 0; i < msglen; i += chunk, chunk = step) {
		size_t n = msglen - i < chunk ? msglen - i : chunk;
		memcpy(out + o, in, 3);
		put16(out + o + 3, n);
		memcpy(out + o + 5, msg + i, n);
		o += 5 + n;
	}
	return o;
}

/* --------------------------------------------------------------- tests --- */

/* Captured hellos, their every prefix, and trailing bytes after them. */
static void test_captured(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const uint8_t *in;
		size_t len;
		enum tls_peek_result want;
		const char *sni;
	} rows[] = {
		{ "tls12", hello_tls12, sizeof(hello_tls12), TLS_PEEK_SNI, "example.test" },
		{ "tls13", hello_tls13, sizeof(hello_tls13), TLS_PEEK_SNI, "example.test" },
		{ "no_sni", hello_no_sni, sizeof(hello_no_sni), TLS_PEEK_NO_SNI, NULL },
		{ "upper_dot", hello_upper_dot, sizeof(hello_upper_dot), TLS_PEEK_SNI,
		  "example.test" },
	};
	static const uint8_t after[] = { 0x17, 0x03, 0x03, 0x00, 0x01, 0xff };
	uint8_t buf[BIG];

	for (size_t i = 0; i < N(rows); i++) {
		expect(rows[i].name, rows[i].in, rows[i].len, 256, rows[i].want, rows[i].sni);
		expect_prefixes(rows[i].name, rows[i].in, rows[i].len);
		memcpy(buf, rows[i].in, rows[i].len);
		memcpy(buf + rows[i].len, after, sizeof(after));
		expect(rows[i].name, buf, rows[i].len + sizeof(after), 256, rows[i].want,
		       rows[i].sni);
	}
}

/* The hello split into two records at every point, and into 1-byte records. */
static void test_split_records(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const uint8_t *in;
		size_t len;
		enum tls_peek_result want;
	} rows[] = {
		{ "tls13", hello_tls13, sizeof(hello_tls13), TLS_PEEK_SNI },
		{ "no_sni", hello_no_sni, sizeof(hello_no_sni), TLS_PEEK_NO_SNI },
	};
	uint8_t buf[BIG];
	char name[64];

	for (size_t i = 0; i < N(rows); i++) {
		size_t msglen = rows[i].len - 5, n;
		for (size_t cut = 1; cut < msglen; cut++) {
			n = reframe(rows[i].in, rows[i].len, cut, msglen, buf);
			snprintf(name, sizeof(name), "%s split at %zu", rows[i].name, cut);
			expect(name, buf, n, 256, rows[i].want, "example.test");
		}
		n = reframe(rows[i].in, rows[i].len, 1, 1, buf);
		snprintf(name, sizeof(name), "%s in 1-byte records", rows[i].name);
		expect(name, buf, n, 256, rows[i].want, "example.test");
		expect_prefixes(name, buf, n);
		n = reframe(rows[i].in, rows[i].len, 3, msglen, buf);
		snprintf(name, sizeof(name), "%s split in the header", rows[i].name);
		expect_prefixes(name, buf, n);
	}
}

/* Not TLS at all. */
static void test_not_tls(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *in;
		size_t len;
		enum tls_peek_result want;
	} rows[] = {
		{ "GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, TLS_PEEK_NOT_TLS },
		{ "one byte G", "G", 1, TLS_PEEK_NOT_TLS },
		{ "SSLv2 hello", "\x80\x2e\x01\x00\x02", 5, TLS_PEEK_NOT_TLS },
		{ "alert record", "\x15\x03\x01\x00\x02\x02\x28", 7, TLS_PEEK_NOT_TLS },
		{ "empty", "", 0, TLS_PEEK_NEED_MORE },
		{ "handshake byte only", "\x16", 1, TLS_PEEK_NEED_MORE },
		{ "0x16 then HTTP", "\x16GET /", 6, TLS_PEEK_MALFORMED },
	};

	for (size_t i = 0; i < N(rows); i++)
		expect(rows[i].name, (const uint8_t *)rows[i].in, rows[i].len, 256, rows[i].want,
		       NULL);
}

/* One field of a valid built hello changed: a length or a fixed value. */
static void test_corrupted(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		size_t off;
		int width; /* 1 or 2 bytes */
		int delta; /* added to the field */
		enum tls_peek_result want;
	} rows[] = {
		{ "record length +1", OFF_REC_LEN, 2, 1, TLS_PEEK_MALFORMED },
		/* the hello's last byte is then read as the next record's type */
		{ "record length -1", OFF_REC_LEN, 2, -1, TLS_PEEK_MALFORMED },
		{ "record length 0", OFF_REC_LEN, 2, -(int)OFF_NAME, TLS_PEEK_MALFORMED },
		{ "record version 3.5", OFF_REC_VER + 1, 1, 4, TLS_PEEK_MALFORMED },
		{ "record version 3.0", OFF_REC_VER + 1, 1, -1, TLS_PEEK_MALFORMED },
		{ "record version 2.1", OFF_REC_VER, 1, -1, TLS_PEEK_MALFORMED },
		{ "handshake type 2", OFF_HS_TYPE, 1, 1, TLS_PEEK_MALFORMED },
		{ "handshake length +1", OFF_HS_LEN + 1, 2, 1, TLS_PEEK_MALFORMED },
		{ "handshake length -1", OFF_HS_LEN + 1, 2, -1, TLS_PEEK_MALFORMED },
		{ "legacy_version 2.3", OFF_VERSION, 1, -1, TLS_PEEK_MALFORMED },
		{ "session id 33", OFF_SID, 1, 1, TLS_PEEK_MALFORMED },
		{ "session id 31", OFF_SID, 1, -1, TLS_PEEK_MALFORMED },
		{ "cipher suites odd", OFF_CS, 2, 1, TLS_PEEK_MALFORMED },
		{ "cipher suites +2", OFF_CS, 2, 2, TLS_PEEK_MALFORMED },
		{ "cipher suites 0", OFF_CS, 2, -4, TLS_PEEK_MALFORMED },
		{ "compression 0", OFF_COMP, 1, -1, TLS_PEEK_MALFORMED },
		{ "compression +1", OFF_COMP, 1, 1, TLS_PEEK_MALFORMED },
		{ "extensions +1", OFF_EXTS, 2, 1, TLS_PEEK_MALFORMED },
		{ "extensions -1", OFF_EXTS, 2, -1, TLS_PEEK_MALFORMED },
		{ "server_name ext +1", OFF_SNI_LEN, 2, 1, TLS_PEEK_MALFORMED },
		{ "server_name ext -1", OFF_SNI_LEN, 2, -1, TLS_PEEK_MALFORMED },
		{ "name list +1", OFF_LIST, 2, 1, TLS_PEEK_MALFORMED },
		{ "name list -1", OFF_LIST, 2, -1, TLS_PEEK_MALFORMED },
		{ "host name +1", OFF_NAME_LEN, 2, 1, TLS_PEEK_MALFORMED },
		{ "host name -1", OFF_NAME_LEN, 2, -1, TLS_PEEK_MALFORMED },
		{ "host name 0", OFF_NAME_LEN, 2, -12, TLS_PEEK_MALFORMED },
		{ "host name 0xffff", OFF_NAME_LEN, 2, 0xffff - 12, TLS_PEEK_MALFORMED },
		/* an unknown name type is skipped by its length: no host_name */
		{ "name type 1", OFF_NAME_TYPE, 1, 1, TLS_PEEK_NO_SNI },
	};
	uint8_t buf[BIG];

	for (size_t i = 0; i < N(rows); i++) {
		size_t n = build_host(buf, "example.test", 12), off = rows[i].off;
		if (rows[i].width == 1) {
			buf[off] = (uint8_t)(buf[off] + rows[i].delta);
		} else {
			size_t v = (size_t)buf[off] << 8 | buf[off + 1];
			put16(buf + off, (size_t)((long)v + rows[i].delta));
		}
		expect(rows[i].name, buf, n, 256, rows[i].want, NULL);
	}
}

/* Record-layer limits and records that may not follow. */
static void test_records(void **state)
{
	(void)state;
	uint8_t hello[BIG], buf[BIG], exts[BIG];
	size_t n = build_host(hello, "example.test", 12), m, e;
	size_t msglen = n - 5;

	/* a second record of another content type */
	m = reframe(hello, n, 20, msglen, buf);
	buf[5 + 20] = 23;
	expect("application data inside the hello", buf, m, 256, TLS_PEEK_MALFORMED, NULL);
	buf[5 + 20] = 20;
	expect("change_cipher_spec inside the hello", buf, m, 256, TLS_PEEK_MALFORMED, NULL);
	/* an empty record between fragments */
	m = reframe(hello, n, 20, msglen, buf);
	memmove(buf + 30, buf + 25, m - 25);
	memcpy(buf + 25, "\x16\x03\x01\x00\x00", 5);
	expect("zero-length record", buf, m + 5, 256, TLS_PEEK_MALFORMED, NULL);
	/* second record header cut short: still need more */
	m = reframe(hello, n, 20, msglen, buf);
	for (size_t k = 26; k < 30; k++)
		expect("second header prefix", buf, k, 256, TLS_PEEK_NEED_MORE, NULL);
	/* record length over 16384 + 2048 */
	put16(hello + OFF_REC_LEN, TLS_PEEK_MAX_RECORD + 1);
	expect("record over the limit", hello, 5, 256, TLS_PEEK_MALFORMED, NULL);
	put16(hello + OFF_REC_LEN, TLS_PEEK_MAX_RECORD);
	expect("record at the limit", hello, 5, 256, TLS_PEEK_NEED_MORE, NULL);

	/* handshake message at exactly 16 KiB passes, one byte more fails
	 * (75 bytes of fixed fields, 2 of extension length, 11 of
	 * supported_versions and padding headers) */
	e = ext_sni(exts, "example.test", 12);
	e += ext_tail(exts + e, TLS_PEEK_MAX_HELLO - 4 - 75 - 2 - e - 11);
	n = build(hello, exts, e, true);
	if (n != 5 + TLS_PEEK_MAX_HELLO)
		fail_msg("built %zu bytes, want %d", n, 5 + TLS_PEEK_MAX_HELLO);
	expect("16 KiB hello", hello, n, 256, TLS_PEEK_SNI, "example.test");
	m = reframe(hello, n, 16000, 16000, buf);
	expect("16 KiB hello in two records", buf, m, 256, TLS_PEEK_SNI, "example.test");
	e = ext_sni(exts, "example.test", 12);
	e += ext_tail(exts + e, TLS_PEEK_MAX_HELLO - 4 - 75 - 2 - e - 11 + 1);
	n = build(hello, exts, e, true);
	expect("16 KiB + 1 hello", hello, n, 256, TLS_PEEK_MALFORMED, NULL);
	expect("16 KiB + 1 hello, header only", hello, 9, 256, TLS_PEEK_MALFORMED, NULL);
}

/* Which extensions and name entries make an SNI. */
static void test_extensions(void **state)
{
	(void)state;
	/* server_name with a type-1 entry before the host_name */
	static const uint8_t two_types[] = { 0, 0, 0, 12, 0, 10, 1, 0, 2, 'z', 'z',
					     0, 0, 2, 'a', 'b' };
	static const uint8_t only_type1[] = { 0, 0, 0, 7, 0, 5, 1, 0, 2, 'a', 'b' };
	static const uint8_t two_hosts[] = { 0, 0, 0, 12, 0, 10, 0, 0, 2, 'a', 'b',
					     0, 0, 2, 'c', 'd' };
	static const uint8_t empty_sni[] = { 0, 0, 0, 0 };
	static const uint8_t empty_list[] = { 0, 0, 0, 2, 0, 0 };
	static const uint8_t two_exts[] = { 0, 0, 0, 7, 0, 5, 0, 0, 2, 'a', 'b',
					    0, 0, 0, 7, 0, 5, 0, 0, 2, 'a', 'b' };
	static const uint8_t other_only[] = { 0, 0x2b, 0, 3, 2, 3, 4, 0xff, 0x01, 0, 1, 0 };
	static const uint8_t ext_cut[] = { 0, 0x2b, 0 };
	static const struct {
		const char *name;
		const uint8_t *exts;
		size_t len;
		bool has_exts;
		enum tls_peek_result want;
		const char *sni;
	} rows[] = {
		{ "type 1 then host_name", two_types, sizeof(two_types), true, TLS_PEEK_SNI, "ab" },
		{ "type 1 only", only_type1, sizeof(only_type1), true, TLS_PEEK_NO_SNI, NULL },
		{ "two host_names", two_hosts, sizeof(two_hosts), true, TLS_PEEK_MALFORMED, NULL },
		{ "empty server_name", empty_sni, sizeof(empty_sni), true, TLS_PEEK_MALFORMED,
		  NULL },
		{ "empty name list", empty_list, sizeof(empty_list), true, TLS_PEEK_MALFORMED,
		  NULL },
		{ "two server_names", two_exts, sizeof(two_exts), true, TLS_PEEK_MALFORMED, NULL },
		{ "other extensions only", other_only, sizeof(other_only), true, TLS_PEEK_NO_SNI,
		  NULL },
		{ "empty extension block", NULL, 0, true, TLS_PEEK_NO_SNI, NULL },
		{ "no extension block", NULL, 0, false, TLS_PEEK_NO_SNI, NULL },
		{ "extension header cut", ext_cut, sizeof(ext_cut), true, TLS_PEEK_MALFORMED,
		  NULL },
	};
	uint8_t buf[BIG];

	for (size_t i = 0; i < N(rows); i++) {
		size_t n = build(buf, rows[i].exts, rows[i].len, rows[i].has_exts);
		expect(rows[i].name, buf, n, 256, rows[i].want, rows[i].sni);
		if (rows[i].want >= TLS_PEEK_SNI)
			expect_prefixes(rows[i].name, buf, n);
	}
}

/* Host-name rules and the caller's buffer size. */
static void test_host_names(void **state)
{
	(void)state;
	char l63[64], l64[65], n253[254], n253dot[255], n254[255];
	uint8_t buf[BIG];

	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'b', 64);
	l64[64] = '\0';
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	memset(n253, 'c', 253);
	n253[63] = n253[127] = n253[191] = '.';
	n253[253] = '\0';
	memcpy(n253dot, n253, 253);
	memcpy(n253dot + 253, ".", 2);
	memcpy(n254, n253, 253);
	memcpy(n254 + 253, "c", 2);

	const struct {
		const char *host;
		size_t len;
		size_t snilen;
		enum tls_peek_result want;
		const char *sni;
	} rows[] = {
		{ "example.test", 12, 256, TLS_PEEK_SNI, "example.test" },
		{ "EXAMPLE.Test.", 13, 256, TLS_PEEK_SNI, "example.test" },
		{ "a", 1, 256, TLS_PEEK_SNI, "a" },
		{ "a.", 2, 256, TLS_PEEK_SNI, "a" },
		{ "xn--bcher-kva.example", 21, 256, TLS_PEEK_SNI, "xn--bcher-kva.example" },
		{ "10.0.0.1", 8, 256, TLS_PEEK_SNI, "10.0.0.1" },
		{ ".", 1, 256, TLS_PEEK_MALFORMED, NULL },
		{ "a..", 3, 256, TLS_PEEK_MALFORMED, NULL },
		{ ".a", 2, 256, TLS_PEEK_MALFORMED, NULL },
		{ "a..b", 4, 256, TLS_PEEK_MALFORMED, NULL },
		{ "exa_mple.test", 13, 256, TLS_PEEK_MALFORMED, NULL },
		{ "exa mple", 8, 256, TLS_PEEK_MALFORMED, NULL },
		{ "a\0b", 3, 256, TLS_PEEK_MALFORMED, NULL },
		{ "\xc3\xa9.test", 7, 256, TLS_PEEK_MALFORMED, NULL },
		{ "[::1]", 5, 256, TLS_PEEK_MALFORMED, NULL },
		{ l63, 63, 256, TLS_PEEK_SNI, l63 },
		{ l64, 64, 256, TLS_PEEK_MALFORMED, NULL },
		{ n253, 253, 256, TLS_PEEK_SNI, n253 },
		{ n253dot, 254, 256, TLS_PEEK_SNI, n253 },
		{ n254, 254, 256, TLS_PEEK_MALFORMED, NULL },
		/* oversize for the caller: the NUL must fit */
		{ "example.test", 12, 13, TLS_PEEK_SNI, "example.test" },
		{ "example.test", 12, 12, TLS_PEEK_MALFORMED, NULL },
		{ "example.test.", 13, 13, TLS_PEEK_SNI, "example.test" },
		{ "example.test", 12, 1, TLS_PEEK_MALFORMED, NULL },
		{ "example.test", 12, 0, TLS_PEEK_MALFORMED, NULL },
		{ n253, 253, 253, TLS_PEEK_MALFORMED, NULL },
	};

	for (size_t i = 0; i < N(rows); i++) {
		size_t n = build_host(buf, rows[i].host, rows[i].len);
		char name[300];
		snprintf(name, sizeof(name), "host '%.*s' snilen %zu", (int)rows[i].len,
			 rows[i].host, rows[i].snilen);
		expect(name, buf, n, rows[i].snilen, rows[i].want, rows[i].sni);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captured),    cmocka_unit_test(test_split_records),
		cmocka_unit_test(test_not_tls),     cmocka_unit_test(test_corrupted),
		cmocka_unit_test(test_records),     cmocka_unit_test(test_extensions),
		cmocka_unit_test(test_host_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fuzz_h2_translate.c - libFuzzer target: the HTTP/2 translation.
 *
 * Input: one flag byte, then the rest.
 *   flags & 1: response side: the rest is an HTTP/1.1 response head; what
 *              http_parser accepts goes through h2_response_fields and
 *              h2_trailer_fields, whose lists must hold no connection-specific
 *              field, lower-case token names, :status first.
 *   otherwise: request side: the rest split at 0xff into fields, each split
 *              at its first 0xfe into name and value (flags & 2: end_stream);
 *              h2_request_translate must refuse the list or write a head that
 *              http_parser accepts as an absolute-form (CONNECT:
 *              authority-form) request with Host equal to the authority and
 *              no connection-specific field but its own framing and the final
 *              Connection: close; h2_request_trailers must refuse or write
 *              lines "name: value\r\n" that the chunked decoder accepts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_translate.h"
#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 64
#define MAX_HEAD 16384

/* Is name (case-insensitive) an HTTP/1.1 connection-specific field? */
static bool conn_specific(struct slice name)
{
	return slice_eq_ci(name, "connection") || slice_eq_ci(name, "keep-alive") ||
	       slice_eq_ci(name, "proxy-connection") || slice_eq_ci(name, "transfer-encoding") ||
	       slice_eq_ci(name, "upgrade") || slice_eq_ci(name, "te");
}

/* An h2 list as h2_response_fields promises it. */
static void check_list(const struct h2_header *h, size_t n, bool status)
{
	size_t i, j;

	if (status && (n == 0 || h[0].namelen != 7 || memcmp(h[0].name, ":status", 7) != 0 ||
		       h[0].valuelen != 3))
		abort();
	for (i = status ? 1 : 0; i < n; i++) {
		struct slice name = slice_make((const char *)h[i].name, h[i].namelen);

		if (!http_is_token(name) || conn_specific(name) ||
		    slice_eq_ci(name, "host") || slice_eq_ci(name, "trailer") ||
		    slice_eq_ci(name, "proxy-authorization"))
			abort();
		for (j = 0; j < h[i].namelen; j++)
			if (h[i].name[j] >= 'A' && h[i].name[j] <= 'Z')
				abort();
		for (j = 0; j < h[i].valuelen; j++)
			if (h[i].value[j] == 0 || h[i].value[j] == '\r' || h[i].value[j] == '\n')
				abort();
	}
}

/* Response side: parse, translate, check. */
static void response_side(const uint8_t *data, size_t size)
{
	static const struct http_limits lim = { 8192, 65536, MAXF };
	struct http_field f[MAXF];
	struct http_response res = { .fields = f, .fields_cap = MAXF };
	struct h2_header *h;
	size_t n;

	if (http_parse_response((const char *)data, size, &res, &lim) <= 0)
		return;
	if (h2_response_fields(&res, &h, &n) == 0) {
		check_list(h, n, true);
		free(h);
	}
	if (h2_trailer_fields(res.fields, res.nfields, &h, &n) == 0) {
		check_list(h, n, false);
		free(h);
	}
}

/* The authority the request named: :authority, else the first host. */
static struct slice authority_of(const struct h2_header *h, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (h[i].namelen == 10 && memcmp(h[i].name, ":authority", 10) == 0)
			return slice_make((const char *)h[i].value, h[i].valuelen);
	for (i = 0; i < n; i++)
		if (h[i].namelen == 4 && memcmp(h[i].name, "host", 4) == 0)
			return slice_make((const char *)h[i].value, h[i].valuelen);
	abort();
}

/* The head of an accepted request, through http_parser. */
static void check_head(const struct h2_header *h, size_t n, const struct h2_request *out)
{
	static const struct http_limits lim = { MAX_HEAD, MAX_HEAD, MAXF + 8 };
	struct http_field f[MAXF + 8];
	struct http_request req = { .fields = f, .fields_cap = MAXF + 8 };
	struct http_target t;
	struct http_framing fr;
	struct slice auth = authority_of(h, n);
	size_t i, nhost = 0;
	int status;

	if (out->head == NULL || out->head_len > MAX_HEAD ||
	    http_parse_request(out->head, out->head_len, &req, &lim, &status) !=
		    (ssize_t)out->head_len)
		abort();
	if (http_parse_target(req.method, req.target, &t) != 0 ||
	    t.form != (out->connect ? HTTP_TARGET_AUTHORITY : HTTP_TARGET_ABSOLUTE))
		abort();
	/* the target carries exactly the authority: "scheme://" authority,
	 * then the path ('/') or nothing; CONNECT: the authority alone */
	if (out->connect) {
		if (req.target.len != auth.len || memcmp(req.target.p, auth.p, auth.len) != 0)
			abort();
	} else {
		const char *a = (const char *)memchr(req.target.p, ':', req.target.len);
		size_t rest;

		if (a == NULL)
			abort();
		a += 3;
		rest = req.target.len - (size_t)(a - req.target.p);
		if (rest < auth.len || memcmp(a, auth.p, auth.len) != 0 ||
		    (rest > auth.len && a[auth.len] != '/'))
			abort();
	}
	if (req.nfields < 2 || !slice_eq(f[req.nfields - 1].name, "Connection") ||
	    !slice_eq(f[req.nfields - 1].value, "close"))
		abort();
	for (i = 0; i + 1 < req.nfields; i++) {
		if (conn_specific(f[i].name) &&
		    !(out->chunked && i + 2 == req.nfields &&
		      slice_eq(f[i].name, "Transfer-Encoding") && slice_eq(f[i].value, "chunked")))
			abort();
		if (slice_eq_ci(f[i].name, "host")) {
			nhost++;
			if (!slices_eq_ci(f[i].value, auth))
				abort();
		}
	}
	if (nhost != 1 || http_request_framing(&req, &fr) != 0)
		abort();
	if (out->content_length >= 0 && !out->connect &&
	    (fr.kind != HTTP_BODY_LENGTH || fr.length != (uint64_t)out->content_length))
		abort();
	if (out->content_length < 0 &&
	    fr.kind != (out->chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_NONE))
		abort();
}

/* Trailer lines, through the chunked decoder. */
static void check_trailers(const char *t, size_t len)
{
	char buf[MAX_HEAD + 8];
	struct http_chunked c;
	struct slice d;
	ssize_t r;

	if (len > MAX_HEAD)
		abort();
	memcpy(buf, "0\r\n", 3);
	memcpy(buf + 3, t, len);
	memcpy(buf + 3 + len, "\r\n", 2);
	http_chunked_init(&c, HTTP_CHUNK_LINE_MAX * 4 + MAX_HEAD, MAX_HEAD + 8);
	r = http_chunked_step(&c, buf, len + 5, &d);
	if (r != (ssize_t)(len + 5) || !http_chunked_done(&c))
		abort();
}

/* Request side: split into a header list, translate, check. */
static void request_side(const uint8_t *data, size_t size, bool end_stream)
{
	struct h2_header h[MAXF];
	struct h2_request out;
	const char *why = NULL;
	size_t n = 0, i = 0, tlen;
	char *tr;

	while (i <= size && n < MAXF) {
		const uint8_t *p = data + i;
		size_t end = i, sep;

		while (end < size && data[end] != 0xff)
			end++;
		sep = i;
		while (sep < end && data[sep] != 0xfe)
			sep++;
		h[n].name = p;
		h[n].namelen = sep - i;
		h[n].value = sep < end ? data + sep + 1 : data + end;
		h[n].valuelen = sep < end ? end - sep - 1 : 0;
		n++;
		i = end + 1;
	}
	if (h2_request_translate(h, n, end_stream, MAX_HEAD, &out, &why) == 0) {
		check_head(h, n, &out);
		free(out.head);
	} else if (why == NULL || out.head != NULL) {
		abort();
	}
	why = NULL;
	if (h2_request_trailers(h, n, MAX_HEAD, &tr, &tlen, &why) == 0) {
		check_trailers(tr, tlen);
		free(tr);
	} else if (why == NULL || tr != NULL) {
		abort();
	}
}

/* One input: the flag byte picks the side. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		response_side(data + 1, size - 1);
	else
		request_side(data + 1, size - 1, (data[0] & 2) != 0);
	return 0;
}

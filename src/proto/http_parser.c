/* http_parser.c - strict, incremental, zero-copy HTTP/1.1 message parser (RFC 9112).
 *
 * The head parsers are stateless: each call scans the whole buffer again and
 * answers "complete (length)", "need more" or "error". Limits are checked on the
 * byte that would break them, so an oversized head is refused before its end
 * arrives. Nothing here allocates, copies or keeps state between calls (the
 * chunked decoder keeps its state in the caller's struct). */
#include "http_parser.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Character classes (one read-only table, indexed by byte). */
#define CC_TCHAR 0x01   /* RFC 9110 §5.6.2 tchar */
#define CC_VCHAR 0x02   /* %x21-7E */
#define CC_FIELD 0x04   /* field-value byte: VCHAR / obs-text / SP / HTAB */
#define CC_HEX 0x08     /* HEXDIG */
#define CC_REGNAME 0x10 /* RFC 3986 unreserved / sub-delims ('%' handled apart) */

static const unsigned char cc[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 4, 23,  6,  7, 23,  7, 23, 23, 22, 22, 23, 23, 22, 23, 23,  6,
	31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  6, 22,  6, 22,  6,  6,
	 6, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,
	23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  6,  6,  6,  7, 23,
	 7, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,
	23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  6,  7,  6, 23,  0,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
	 4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
};

/* Largest Content-Length or chunk size we accept: 2^63 - 1 (fits off_t). */
#define HTTP_MAX_LENGTH ((uint64_t)INT64_MAX)

/* A number macro as a string literal, for messages that name a limit. */
#define HTTP_STR_(x) #x
#define HTTP_STR(x) HTTP_STR_(x)

#define IS_TCHAR(c) (cc[(unsigned char)(c)] & CC_TCHAR)
#define IS_VCHAR(c) (cc[(unsigned char)(c)] & CC_VCHAR)
#define IS_FIELD(c) (cc[(unsigned char)(c)] & CC_FIELD)
#define IS_HEX(c) (cc[(unsigned char)(c)] & CC_HEX)
#define IS_REGNAME(c) (cc[(unsigned char)(c)] & CC_REGNAME)
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* Value of a hex digit already known to be one. */
static unsigned hexval(unsigned char c)
{
	if (c <= '9')
		return c - '0';
	return (c | 0x20) - 'a' + 10;
}

/* A scan window over the caller's bytes: `end` is min(len, header limit). */
struct scan {
	const unsigned char *p;
	size_t end;
	bool truncated; /* len went past the head limit */
	int *status;
};

/* Set *status and return HTTP_ERROR. */
static ssize_t fail(struct scan *s, int status)
{
	*s->status = status;
	return HTTP_ERROR;
}

/* Out of bytes: need more, or 431 when the limit cut the window short. */
static ssize_t more(struct scan *s)
{
	if (s->truncated)
		return fail(s, 431); /* head larger than max_header_bytes */
	return HTTP_NEED_MORE;
}

#define NEED(s, i) do { if ((i) >= (s)->end) return more(s); } while (0)

/* Parse "HTTP/D.D" at p[i..i+8); returns 0, need-more or error (major in *major). */
static ssize_t parse_version(struct scan *s, size_t i, size_t ls, size_t max_line,
			     int *major, int *minor)
{
	static const char name[] = "HTTP/";
	size_t k;

	for (k = 0; k < 8; k++) {
		unsigned char c;

		NEED(s, i + k);
		if (i + k - ls >= max_line)
			return fail(s, 414);
		c = s->p[i + k];
		/* RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT,
		 * HTTP-name is case-sensitive. */
		if (k < 5) {
			if (c != (unsigned char)name[k])
				return fail(s, 400);
		} else if (k == 6) {
			if (c != '.')
				return fail(s, 400);
		} else if (!IS_DIGIT(c)) {
			return fail(s, 400);
		}
	}
	*major = s->p[i + 5] - '0';
	*minor = s->p[i + 7] - '0';
	return 1;
}

/* Parse field lines from p[i] up to and including the empty line; returns the
 * head length, need-more or error (RFC 9112 §5). */
static ssize_t parse_fields(struct scan *s, size_t i, struct http_field *fields,
			    size_t maxf, size_t *nfields)
{
	const unsigned char *p = s->p;
	size_t n = 0;

	*nfields = 0;
	for (;;) {
		size_t ns, vs, ve;

		NEED(s, i);
		if (p[i] == '\r') {
			NEED(s, i + 1);
			/* RFC 9112 §2.2: a bare CR MUST be rejected or replaced. */
			if (p[i + 1] != '\n')
				return fail(s, 400);
			*nfields = n;
			return (ssize_t)(i + 2);
		}
		/* RFC 9112 §5.2: obs-fold is rejected with 400; RFC 9112 §2.2:
		 * whitespace before the first field line likewise. */
		if (IS_OWS(p[i]))
			return fail(s, 400);
		if (n >= maxf)
			return fail(s, 431);
		ns = i;
		for (;;) {
			NEED(s, i);
			if (p[i] == ':')
				break;
			/* RFC 9112 §5.1: no whitespace between name and colon
			 * (MUST reject with 400); field-name = token. */
			if (!IS_TCHAR(p[i]))
				return fail(s, 400);
			i++;
		}
		if (i == ns)
			return fail(s, 400); /* empty field name */
		fields[n].name = slice_make((const char *)p + ns, i - ns);
		i++;
		for (;;) {
			NEED(s, i);
			if (!IS_OWS(p[i]))
				break;
			i++;
		}
		vs = ve = i;
		for (;;) {
			unsigned char c;

			NEED(s, i);
			c = p[i];
			if (c == '\r')
				break;
			/* RFC 9110 §5.5: field-value is VCHAR / obs-text / SP / HTAB;
			 * NUL, CR, LF and other CTLs MUST be rejected. */
			if (!IS_FIELD(c))
				return fail(s, 400);
			i++;
			if (!IS_OWS(c))
				ve = i;
		}
		NEED(s, i + 1);
		if (p[i + 1] != '\n')
			return fail(s, 400); /* RFC 9112 §2.2: bare CR */
		fields[n].value = slice_make((const char *)p + vs, ve - vs);
		n++;
		*nfields = n;
		i += 2;
	}
}

/* Smaller of two sizes. */
static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Parse a request head (see http_parser.h for the contract). */
ssize_t http_parse_request(const char *buf, size_t len, struct http_request *req,
			   const struct http_limits *lim, int *status)
{
	struct scan s = { (const unsigned char *)buf, len, false, status };
	const unsigned char *p = s.p;
	size_t i = 0, ls, ms, ts, max_line = lim->max_request_line;
	int major, minor;
	ssize_t r;

	req->nfields = 0;
	if (len > lim->max_header_bytes) {
		s.end = lim->max_header_bytes;
		s.truncated = true;
	}
	/* RFC 9112 §2.2: ignore empty lines (CRLF) before the request-line. */
	for (;;) {
		NEED(&s, i);
		if (p[i] != '\r')
			break;
		NEED(&s, i + 1);
		if (p[i + 1] != '\n')
			return fail(&s, 400);
		i += 2;
	}
	ls = ms = i;
	/* RFC 9112 §3: request-line = method SP request-target SP HTTP-version */
	for (;;) {
		NEED(&s, i);
		if (i - ls >= max_line)
			return fail(&s, 414);
		if (p[i] == ' ')
			break;
		if (!IS_TCHAR(p[i]))
			return fail(&s, 400); /* method = token (RFC 9110 §9.1) */
		i++;
	}
	if (i == ms)
		return fail(&s, 400);
	req->method = slice_make(buf + ms, i - ms);
	ts = ++i;
	for (;;) {
		NEED(&s, i);
		if (i - ls >= max_line)
			return fail(&s, 414);
		if (p[i] == ' ')
			break;
		/* A target is visible ASCII; CR here means no HTTP-version
		 * (HTTP/0.9, RFC 9112 §2.3), which we do not speak. */
		if (!IS_VCHAR(p[i]))
			return fail(&s, 400);
		i++;
	}
	if (i == ts)
		return fail(&s, 400);
	req->target = slice_make(buf + ts, i - ts);
	i++;
	r = parse_version(&s, i, ls, max_line, &major, &minor);
	if (r <= 0)
		return r;
	i += 8;
	NEED(&s, i);
	if (p[i] != '\r')
		return fail(&s, 400);
	NEED(&s, i + 1);
	if (p[i + 1] != '\n')
		return fail(&s, 400);
	/* RFC 9110 §6.2: a server MAY answer 505 to a major version it does
	 * not support; we speak only HTTP/1.x. */
	if (major != 1)
		return fail(&s, 505);
	req->minor = minor >= 1 ? 1 : 0;
	return parse_fields(&s, i + 2, req->fields,
			    min_size(lim->max_headers, req->fields_cap), &req->nfields);
}

/* Parse a response head (see http_parser.h for the contract). */
ssize_t http_parse_response(const char *buf, size_t len, struct http_response *res,
			    const struct http_limits *lim)
{
	int status = 0;
	struct scan s = { (const unsigned char *)buf, len, false, &status };
	const unsigned char *p = s.p;
	size_t i = 0, rs;
	int major, minor, code;
	ssize_t r;
	unsigned k;

	res->nfields = 0;
	if (len > lim->max_header_bytes) {
		s.end = lim->max_header_bytes;
		s.truncated = true;
	}
	/* RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] */
	r = parse_version(&s, 0, 0, SIZE_MAX, &major, &minor);
	if (r <= 0)
		return r;
	if (major != 1)
		return HTTP_ERROR;
	i = 8;
	NEED(&s, i);
	if (p[i] != ' ')
		return HTTP_ERROR;
	i++;
	code = 0;
	for (k = 0; k < 3; k++, i++) {
		NEED(&s, i);
		if (!IS_DIGIT(p[i]))
			return HTTP_ERROR;
		code = code * 10 + (p[i] - '0');
	}
	if (code < 100 || code > 599)
		return HTTP_ERROR;
	NEED(&s, i);
	rs = i;
	if (p[i] == ' ') {
		rs = ++i;
		for (;;) {
			NEED(&s, i);
			if (p[i] == '\r')
				break;
			/* reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ) */
			if (!IS_FIELD(p[i]))
				return HTTP_ERROR;
			i++;
		}
	} else if (p[i] != '\r') {
		return HTTP_ERROR;
	}
	NEED(&s, i + 1);
	if (p[i + 1] != '\n')
		return HTTP_ERROR;
	res->minor = minor >= 1 ? 1 : 0;
	res->status = code;
	res->reason = slice_make(buf + rs, i - rs);
	return parse_fields(&s, i + 2, res->fields,
			    min_size(lim->max_headers, res->fields_cap), &res->nfields);
}

/* Find the first field with this name (case-insensitive); NULL if none. */
size_t http_chunked_trailers(const char *t, size_t len, struct http_field *f, size_t max)
{
	size_t n = 0;
	bool size_line = false;
	for (size_t i = 0; i < len;) {
		const char *e = memchr(t + i, '\n', len - i);
		size_t l = e != NULL ? (size_t)(e - (t + i)) : len - i;
		size_t ll = l > 0 && t[i + l - 1] == '\r' ? l - 1 : l;
		const char *colon = ll > 0 ? memchr(t + i, ':', ll) : NULL;
		if (ll > 0 && !size_line) {
			size_line = true; /* "0" and its extensions */
		} else if (colon != NULL) {
			size_t vs = (size_t)(colon - t) + 1, ve = i + ll;
			while (vs < ve && (t[vs] == ' ' || t[vs] == '\t'))
				vs++;
			while (ve > vs && (t[ve - 1] == ' ' || t[ve - 1] == '\t'))
				ve--;
			if (n < max) {
				f[n].name = slice_make(t + i, (size_t)(colon - (t + i)));
				f[n].value = slice_make(t + vs, ve - vs);
			}
			n++;
		}
		i += l + 1;
	}
	return n;
}

const struct http_field *http_field_find(const struct http_field *f, size_t n,
					  const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (slice_eq_ci(f[i].name, name))
			return &f[i];
	return NULL;
}

/* A valid token (RFC 9110 §5.6.2: 1*tchar). */
bool http_is_tchar(unsigned char c)
{
	return IS_TCHAR(c);
}

int http_is_token(struct slice s)
{
	size_t i;

	if (s.len == 0)
		return 0;
	for (i = 0; i < s.len; i++)
		if (!IS_TCHAR(s.p[i]))
			return 0;
	return 1;
}

/* ---- framing (RFC 9112 §6) ---- */

/* What all Content-Length fields of a message say. */
struct cl_info {
	bool present;
	bool valid;
	uint64_t value;
};

/* Collect Content-Length: 1*DIGIT, or a list of identical values spread over
 * one or more fields (RFC 9112 §6.3 item 5); anything else is invalid. */
static void content_length(const struct http_field *f, size_t n, struct cl_info *cl)
{
	size_t i, j;

	cl->present = false;
	cl->valid = true;
	cl->value = 0;
	for (i = 0; i < n; i++) {
		const char *v;
		size_t len;

		if (!slice_eq_ci(f[i].name, "content-length"))
			continue;
		v = f[i].value.p;
		len = f[i].value.len;
		j = 0;
		do {
			uint64_t x = 0;
			size_t ds;

			while (j < len && IS_OWS(v[j]))
				j++;
			ds = j;
			while (j < len && IS_DIGIT(v[j])) {
				unsigned d = (unsigned)(v[j] - '0');

				if (x > (HTTP_MAX_LENGTH - d) / 10) {
					cl->valid = false; /* overflow */
					return;
				}
				x = x * 10 + d;
				j++;
			}
			if (j == ds) {
				cl->valid = false; /* empty, sign or non-digit */
				return;
			}
			while (j < len && IS_OWS(v[j]))
				j++;
			if (j < len && v[j] != ',') {
				cl->valid = false;
				return;
			}
			if (cl->present && x != cl->value) {
				cl->valid = false; /* differing values */
				return;
			}
			cl->present = true;
			cl->value = x;
		} while (j++ < len);
	}
}

/* What all Transfer-Encoding fields of a message say, in order. */
struct te_info {
	bool present;
	bool valid;        /* syntactically a list of transfer-codings */
	size_t ncodings;
	size_t nchunked;
	bool last_chunked; /* final coding is "chunked" */
	bool chunked_params; /* a "chunked" coding carried parameters */
};

/* Skip a quoted-string starting at v[j] == '"'; returns the index after it or
 * 0 when malformed (RFC 9110 §5.6.4). */
static size_t skip_quoted(const char *v, size_t len, size_t j)
{
	for (j++; j < len; j++) {
		unsigned char c = (unsigned char)v[j];

		if (c == '"')
			return j + 1;
		if (c == '\\') {
			if (++j == len || !IS_FIELD(v[j]))
				return 0;
		} else if (!IS_FIELD(c)) {
			return 0;
		}
	}
	return 0;
}

/* Parse every Transfer-Encoding field: #transfer-coding, where
 * transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token / quoted-string ) )
 * (RFC 9112 §6.1, RFC 9110 §10.1.4); empty list elements are skipped
 * (RFC 9110 §5.6.1). */
static void transfer_encoding(const struct http_field *f, size_t n, struct te_info *te)
{
	size_t i;

	memset(te, 0, sizeof(*te));
	te->valid = true;
	for (i = 0; i < n; i++) {
		const char *v;
		size_t len, j = 0;

		if (!slice_eq_ci(f[i].name, "transfer-encoding"))
			continue;
		te->present = true;
		v = f[i].value.p;
		len = f[i].value.len;
		while (j < len) {
			size_t ns;
			bool chunked, params = false;

			while (j < len && (IS_OWS(v[j]) || v[j] == ','))
				j++;
			if (j == len)
				break;
			ns = j;
			while (j < len && IS_TCHAR(v[j]))
				j++;
			if (j == ns)
				goto bad;
			chunked = slice_eq_ci(slice_make(v + ns, j - ns), "chunked");
			for (;;) {
				size_t k = j;

				while (k < len && IS_OWS(v[k]))
					k++;
				if (k == len || v[k] == ',') {
					j = k;
					break;
				}
				if (v[k] != ';')
					goto bad;
				params = true;
				for (k++; k < len && IS_OWS(v[k]); k++)
					;
				ns = k;
				while (k < len && IS_TCHAR(v[k]))
					k++;
				if (k == ns)
					goto bad;
				while (k < len && IS_OWS(v[k]))
					k++;
				if (k == len || v[k] != '=')
					goto bad;
				for (k++; k < len && IS_OWS(v[k]); k++)
					;
				if (k < len && v[k] == '"') {
					k = skip_quoted(v, len, k);
					if (k == 0)
						goto bad;
				} else {
					ns = k;
					while (k < len && IS_TCHAR(v[k]))
						k++;
					if (k == ns)
						goto bad;
				}
				j = k;
			}
			te->ncodings++;
			te->last_chunked = chunked;
			if (chunked) {
				te->nchunked++;
				if (params)
					te->chunked_params = true;
			}
		}
	}
	return;
bad:
	te->valid = false;
}

/* Framing of a request from its fields (RFC 9112 §6.1, §6.3). */
int http_request_framing(const struct http_request *req, struct http_framing *out)
{
	struct cl_info cl;
	struct te_info te;

	out->kind = HTTP_BODY_NONE;
	out->length = 0;
	content_length(req->fields, req->nfields, &cl);
	transfer_encoding(req->fields, req->nfields, &te);
	if (te.present) {
		/* RFC 9112 §6.1: TE in an HTTP/1.0 message MUST be treated as
		 * faulty framing. */
		if (req->minor == 0)
			return 400;
		/* RFC 9112 §6.1 / §6.3 item 3: TE with CL is a smuggling
		 * attempt; we reject it. */
		if (cl.present || !cl.valid)
			return 400;
		if (!te.valid || te.ncodings == 0)
			return 400;
		/* RFC 9112 §6.3 item 3: chunked not final in a request MUST
		 * be answered with 400. */
		if (!te.last_chunked)
			return 400;
		/* RFC 9112 §7.1: chunked MUST NOT be applied more than once. */
		if (te.nchunked > 1 || te.chunked_params)
			return 400;
		/* RFC 9112 §6.1: a coding we do not understand -> 501. */
		if (te.ncodings > 1)
			return 501;
		out->kind = HTTP_BODY_CHUNKED;
		return 0;
	}
	if (!cl.valid)
		return 400; /* RFC 9112 §6.3 item 5: invalid CL MUST be 400 */
	if (cl.present) {
		out->kind = HTTP_BODY_LENGTH;
		out->length = cl.value;
	}
	return 0;
}

/* Framing of a response (RFC 9112 §6.3). */
int http_response_framing(const struct http_response *res, int head_request,
			  int connect_request, struct http_framing *out)
{
	struct cl_info cl;
	struct te_info te;

	out->kind = HTTP_BODY_NONE;
	out->length = 0;
	/* RFC 9112 §6.3 item 1: HEAD, 1xx, 204 and 304 end at the head. */
	if (head_request || res->status < 200 || res->status == 204 || res->status == 304)
		return 0;
	/* RFC 9112 §6.3 item 2: 2xx to CONNECT switches to a tunnel. */
	if (connect_request && res->status < 300)
		return 0;
	content_length(res->fields, res->nfields, &cl);
	transfer_encoding(res->fields, res->nfields, &te);
	if (te.present) {
		/* RFC 9112 §6.1: TE in HTTP/1.0 is faulty framing; TE with
		 * CL: we refuse rather than guess (§6.3 item 3). */
		if (res->minor == 0 || cl.present || !cl.valid)
			return -1;
		if (!te.valid || te.ncodings == 0)
			return -1;
		if (te.last_chunked) {
			/* We only decode chunked alone (RFC 9112 §7.1: never
			 * twice). */
			if (te.ncodings > 1 || te.chunked_params)
				return -1;
			out->kind = HTTP_BODY_CHUNKED;
			return 0;
		}
		/* RFC 9112 §6.3 item 4: chunked not final -> read until close. */
		out->kind = HTTP_BODY_CLOSE;
		return 0;
	}
	if (!cl.valid)
		return -1; /* RFC 9112 §6.3 item 5 */
	if (cl.present) {
		out->kind = HTTP_BODY_LENGTH;
		out->length = cl.value;
		return 0;
	}
	out->kind = HTTP_BODY_CLOSE; /* RFC 9112 §6.3 item 8 */
	return 0;
}

/* ---- chunked transfer coding (RFC 9112 §7.1) ---- */

enum chunked_state {
	CH_SIZE_FIRST,    /* first hex digit of chunk-size */
	CH_SIZE,          /* more hex digits */
	CH_EXT_WS,        /* BWS that must be followed by ';' */
	CH_EXT_NAME_WS,   /* BWS before an extension name */
	CH_EXT_NAME,      /* extension name */
	CH_EXT_AFTER_NAME,/* BWS after a name: '=' or ';' follows */
	CH_EXT_VAL_WS,    /* BWS before a value */
	CH_EXT_TOKEN,     /* token value */
	CH_EXT_QUOTED,    /* inside a quoted-string value */
	CH_EXT_QPAIR,     /* after a backslash in a quoted-string */
	CH_EXT_AFTER_VAL, /* after a closing quote */
	CH_SIZE_LF,       /* CR of the size line seen */
	CH_DATA,          /* chunk-data */
	CH_DATA_CR,       /* CRLF after chunk-data */
	CH_DATA_LF,
	CH_TRAILER_START, /* start of a trailer line or the final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,
	CH_FINAL_LF,
	CH_DONE,
};

/* Prepare a decoder with line and trailer limits. */
void http_chunked_init(struct http_chunked *c, size_t max_line, size_t max_trailer)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE_FIRST;
	c->max_line = max_line;
	c->max_trailer = max_trailer;
}

/* Has the whole chunked body, trailers included, been consumed? */
int http_chunked_done(const struct http_chunked *c)
{
	return c->state == CH_DONE;
}

/* State after a byte that ends a size-line item: CR, BWS or ';'. */
static int ext_end_or(unsigned char ch, int on_ws, int on_semi)
{
	if (ch == '\r')
		return CH_SIZE_LF;
	if (IS_OWS(ch))
		return on_ws;
	if (ch == ';')
		return on_semi;
	return -1;
}

/* Record why the body is refused; -1 for the caller to return. */
static ssize_t chunked_fail(struct http_chunked *c, int error)
{
	c->error = error;
	return -1;
}

static ssize_t chunked_step(struct http_chunked *c, const char *buf, size_t len,
			    struct slice *data);

/* Feed bytes to the decoder (see http_parser.h for the contract). */
ssize_t http_chunked_step(struct http_chunked *c, const char *buf, size_t len,
			  struct slice *data)
{
	if (c->error != HTTP_CHUNKED_OK) {
		data->p = buf;
		data->len = 0;
		return -1; /* refused once, refused for good */
	}
	ssize_t r = chunked_step(c, buf, len, data);
	if (r < 0 && c->error == HTTP_CHUNKED_OK)
		c->error = HTTP_CHUNKED_E_SYNTAX;
	return r;
}

/* Why the decoder refused the body, naming the limit when one was exceeded. */
void http_chunked_why(const struct http_chunked *c, char *out, size_t len)
{
	switch (c->error) {
	case HTTP_CHUNKED_E_LINE:
		snprintf(out, len, "chunk-size line (size and extensions) longer than %zu bytes",
			 c->max_line);
		break;
	case HTTP_CHUNKED_E_TRAILER_LINE:
		snprintf(out, len, "chunked trailer line longer than %zu bytes", c->max_line);
		break;
	case HTTP_CHUNKED_E_TRAILERS:
		snprintf(out, len, "chunked trailer section larger than %zu bytes", c->max_trailer);
		break;
	case HTTP_CHUNKED_E_SIZE:
		snprintf(out, len, "chunk size larger than 2^63-1 bytes");
		break;
	default:
		snprintf(out, len, "malformed chunked body");
		break;
	}
}

static ssize_t chunked_step(struct http_chunked *c, const char *buf, size_t len,
			    struct slice *data)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = 0;

	data->p = buf;
	data->len = 0;
	while (i < len) {
		unsigned char ch = p[i];
		int st = c->state;

		switch (st) {
		case CH_DONE:
			return (ssize_t)i;
		case CH_DATA: {
			size_t n = len - i;

			if ((uint64_t)n > c->remaining)
				n = (size_t)c->remaining;
			data->p = buf + i;
			data->len = n;
			c->remaining -= n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			return (ssize_t)(i + n);
		}
		case CH_DATA_CR:
			if (ch != '\r')
				return -1; /* RFC 9112 §7.1: chunk-data CRLF */
			c->state = CH_DATA_LF;
			i++;
			continue;
		case CH_DATA_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_SIZE_FIRST;
			c->line_bytes = 0;
			i++;
			continue;
		case CH_SIZE_LF:
			if (ch != '\n')
				return -1; /* RFC 9112 §2.2: bare CR */
			i++;
			c->line_bytes = 0;
			if (c->remaining == 0) {
				c->state = CH_TRAILER_START;
			} else {
				c->state = CH_DATA;
			}
			continue;
		case CH_FINAL_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_DONE;
			i++;
			return (ssize_t)i;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return -1;
			c->state = CH_TRAILER_START;
			c->line_bytes = 0;
			if (++c->trailer_bytes > c->max_trailer)
				return chunked_fail(c, HTTP_CHUNKED_E_TRAILERS);
			i++;
			continue;
		default:
			break;
		}

		/* The rest are line states: CR ends the line, anything else
		 * counts against max_line. */
		if (ch != '\r' && ++c->line_bytes > c->max_line)
			return chunked_fail(c, st >= CH_TRAILER_START ? HTTP_CHUNKED_E_TRAILER_LINE
								    : HTTP_CHUNKED_E_LINE);
		switch (st) {
		case CH_SIZE_FIRST:
			if (!IS_HEX(ch))
				return -1; /* chunk-size = 1*HEXDIG */
			c->remaining = hexval(ch);
			st = CH_SIZE;
			break;
		case CH_SIZE:
			if (IS_HEX(ch)) {
				/* Refuse sizes past 2^63 - 1 instead of wrapping. */
				if (c->remaining > (HTTP_MAX_LENGTH >> 4))
					return chunked_fail(c, HTTP_CHUNKED_E_SIZE);
				c->remaining = (c->remaining << 4) | hexval(ch);
				break;
			}
			st = ext_end_or(ch, CH_EXT_WS, CH_EXT_NAME_WS);
			break;
		case CH_EXT_WS:
			/* chunk-ext = *( BWS ";" BWS chunk-ext-name
			 *               [ BWS "=" BWS chunk-ext-val ] ) (§7.1.1) */
			if (IS_OWS(ch))
				break;
			st = ch == ';' ? CH_EXT_NAME_WS : -1;
			break;
		case CH_EXT_NAME_WS:
			if (IS_OWS(ch))
				break;
			st = IS_TCHAR(ch) ? CH_EXT_NAME : -1;
			break;
		case CH_EXT_NAME:
			if (IS_TCHAR(ch))
				break;
			if (ch == '=')
				st = CH_EXT_VAL_WS;
			else
				st = ext_end_or(ch, CH_EXT_AFTER_NAME, CH_EXT_NAME_WS);
			break;
		case CH_EXT_AFTER_NAME:
			if (IS_OWS(ch))
				break;
			if (ch == '=')
				st = CH_EXT_VAL_WS;
			else if (ch == ';')
				st = CH_EXT_NAME_WS;
			else
				st = -1;
			break;
		case CH_EXT_VAL_WS:
			if (IS_OWS(ch))
				break;
			if (ch == '"')
				st = CH_EXT_QUOTED;
			else
				st = IS_TCHAR(ch) ? CH_EXT_TOKEN : -1;
			break;
		case CH_EXT_TOKEN:
			if (IS_TCHAR(ch))
				break;
			st = ext_end_or(ch, CH_EXT_WS, CH_EXT_NAME_WS);
			break;
		case CH_EXT_QUOTED:
			/* qdtext / quoted-pair (RFC 9110 §5.6.4) */
			if (ch == '"')
				st = CH_EXT_AFTER_VAL;
			else if (ch == '\\')
				st = CH_EXT_QPAIR;
			else if (!IS_FIELD(ch))
				st = -1;
			break;
		case CH_EXT_QPAIR:
			st = IS_FIELD(ch) ? CH_EXT_QUOTED : -1;
			break;
		case CH_EXT_AFTER_VAL:
			st = ext_end_or(ch, CH_EXT_WS, CH_EXT_NAME_WS);
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				st = CH_FINAL_LF;
				break;
			}
			/* trailer-section = *( field-line CRLF ): token name,
			 * no obs-fold, no leading whitespace (RFC 9112 §7.1.2). */
			if (!IS_TCHAR(ch))
				return -1;
			st = CH_TRAILER_NAME;
			break;
		case CH_TRAILER_NAME:
			if (ch == ':')
				st = CH_TRAILER_VALUE;
			else if (!IS_TCHAR(ch))
				return -1; /* RFC 9112 §5.1: no space before colon */
			break;
		case CH_TRAILER_VALUE:
			if (ch == '\r')
				st = CH_TRAILER_LF;
			else if (!IS_FIELD(ch))
				return -1; /* NUL, bare LF, CTL */
			break;
		default:
			return -1;
		}
		if (st < 0)
			return -1;
		if (st >= CH_TRAILER_NAME && st <= CH_TRAILER_LF &&
		    ++c->trailer_bytes > c->max_trailer)
			return chunked_fail(c, HTTP_CHUNKED_E_TRAILERS);
		c->state = st;
		i++;
	}
	return (ssize_t)i;
}

/* ---- request target (RFC 9112 §3.2) ---- */

/* Parse host [ ":" port ] covering all of a[0..len): reg-name / IPv4 / "[" IPv6 "]"
 * (RFC 3986 §3.2.2). Returns 0 or 400. */
static int parse_authority(const char *a, size_t len, bool port_required,
			   struct http_target *out)
{
	size_t i = 0, hs, he;

	if (len > 0 && a[0] == '[') {
		char tmp[INET6_ADDRSTRLEN];
		struct in6_addr addr;

		hs = 1;
		while (i < len && a[i] != ']')
			i++;
		if (i == len)
			return 400;
		he = i++;
		/* Only IPv6address; IPvFuture and zone ids are refused. */
		if (he - hs == 0 || he - hs >= sizeof(tmp))
			return 400;
		memcpy(tmp, a + hs, he - hs);
		tmp[he - hs] = '\0';
		if (inet_pton(AF_INET6, tmp, &addr) != 1)
			return 400;
		out->ipv6_literal = 1;
	} else {
		hs = 0;
		while (i < len && a[i] != ':') {
			unsigned char c = (unsigned char)a[i];

			if (c == '%') {
				if (i + 2 >= len || !IS_HEX(a[i + 1]) || !IS_HEX(a[i + 2]))
					return 400;
				i += 3;
				continue;
			}
			if (!IS_REGNAME(c))
				return 400;
			i++;
		}
		he = i;
	}
	if (he == hs)
		return 400; /* RFC 9110 §4.2.1: empty host MUST be rejected */
	if (!out->ipv6_literal && he - hs > HTTP_MAX_HOST + (a[he - 1] == '.' ? 1 : 0)) {
		out->error = "host name longer than " HTTP_STR(HTTP_MAX_HOST) " characters (RFC 1035)";
		return 400;
	}
	out->host = slice_make(a + hs, he - hs);
	if (i < len) {
		if (a[i] != ':')
			return 400;
		i++;
		if (i < len) {
			uint32_t port = 0;

			for (; i < len; i++) {
				if (!IS_DIGIT(a[i]))
					return 400;
				port = port * 10 + (uint32_t)(a[i] - '0');
				if (port > 65535)
					return 400;
			}
			if (port == 0)
				return 400;
			out->port = (uint16_t)port;
			out->port_explicit = 1;
		}
	}
	if (port_required && !out->port_explicit)
		return 400; /* RFC 9110 §9.3.6: CONNECT needs a port */
	return 0;
}

/* Parse a request target for a request with this method (see http_parser.h). */
int http_parse_target(struct slice method, struct slice target, struct http_target *out)
{
	const char *t = target.p;
	size_t len = target.len, i, as;
	bool is_connect = slice_eq(method, "CONNECT");
	bool is_options = slice_eq(method, "OPTIONS");

	memset(out, 0, sizeof(*out));
	out->scheme = slice_make(t, 0);
	out->host = slice_make(t, 0);
	out->path = slice_make(t, 0);
	if (len == 0)
		return 400;
	for (i = 0; i < len; i++)
		if (!IS_VCHAR(t[i]) || t[i] == '#')
			return 400; /* RFC 9110 §4.2.5: no fragment in a target */
	/* RFC 9112 §3.2.3: authority-form only (and always) for CONNECT. */
	if (is_connect) {
		out->form = HTTP_TARGET_AUTHORITY;
		return parse_authority(t, len, true, out);
	}
	/* RFC 9112 §3.2.4: asterisk-form only for OPTIONS. */
	if (len == 1 && t[0] == '*') {
		if (!is_options)
			return 400;
		out->form = HTTP_TARGET_ASTERISK;
		out->path = target;
		return 0;
	}
	if (t[0] == '/') {
		out->form = HTTP_TARGET_ORIGIN;
		out->path = target;
		return 0;
	}
	/* absolute-form: "http" / "https" "://" authority path-abempty [ "?" query ] */
	for (i = 0; i < len && t[i] != ':'; i++)
		;
	out->scheme = slice_make(t, i);
	if (slice_eq_ci(out->scheme, "http"))
		out->port = 80;
	else if (slice_eq_ci(out->scheme, "https"))
		out->port = 443;
	else
		return 400;
	if (len - i < 3 || t[i + 1] != '/' || t[i + 2] != '/')
		return 400;
	as = i + 3;
	for (i = as; i < len && t[i] != '/' && t[i] != '?'; i++)
		if (t[i] == '@')
			return 400; /* RFC 9110 §4.2.4: userinfo is refused */
	out->form = HTTP_TARGET_ABSOLUTE;
	if (parse_authority(t + as, i - as, false, out) != 0)
		return 400;
	if (i == len) {
		/* RFC 9112 §3.2.4: OPTIONS on a bare authority targets "*". */
		out->path = is_options ? SLICE_LIT("*") : SLICE_LIT("/");
		return 0;
	}
	/* "http://h?q": the path is empty, so the slice starts with '?' and
	 * the caller writes the "/" in front (RFC 9112 §3.2.1). */
	out->path = slice_make(t + i, len - i);
	return 0;
}

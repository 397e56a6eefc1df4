/* h2_translate.c - HTTP/2 header lists to HTTP/1.1 heads and back
 * (RFC 9113 §8). Pure: no I/O; each heap output is one malloc.
 *
 * Decisions this file takes (see h2_translate.h for the contract):
 *   - A request is checked completely before anything is written; every
 *     refusal has its own static reason, and the stream is then malformed
 *     (RFC 9113 §8.1.1: RST_STREAM PROTOCOL_ERROR, nothing forwarded).
 *   - Field values are refused not only for NUL, CR, LF and edge whitespace
 *     (RFC 9113 §8.2.1) but for any other control character as well: the
 *     HTTP/1.1 head we write must parse in the pipeline (RFC 9110 §5.5).
 *   - :protocol (extended CONNECT, RFC 8441) is refused: the pipeline has no
 *     use for it. CONNECT carries no content (RFC 9110 §9.3.6): a nonzero
 *     content-length on it is refused and no framing is written for it.
 *   - Without :authority, a host field serves as the authority (an
 *     intermediary translating from HTTP/1.1 may send that, RFC 9113 §8.3.1);
 *     with neither, the request is refused: this is a forward proxy and the
 *     pipeline wants absolute-form targets.
 *   - The pipeline's Connection: close ends each stream's internal
 *     connection after one exchange; the stream is the unit of reuse. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2_translate.h"
#include "decimal.h"
#include "hop.h"

/* Longest decimal form of a uint64_t. */
#define H2_U64_DIGITS 20

/* ASCII lower case, independent of the locale. */
static unsigned char h2_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Exact equality of a byte range and a NUL-terminated literal. */
static bool h2_eq(const uint8_t *p, size_t len, const char *lit)
{
	size_t n = strlen(lit);

	return len == n && memcmp(p, lit, n) == 0;
}

/* Case-insensitive equality of two byte ranges. */
static bool h2_eq_ci(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++)
		if (h2_lower(a[i]) != h2_lower(b[i]))
			return false;
	return true;
}

/* Case-insensitive equality of a byte range and a literal. */
static bool h2_eq_lit_ci(const uint8_t *p, size_t len, const char *lit)
{
	return h2_eq_ci(p, len, (const uint8_t *)lit, strlen(lit));
}

/* a + b, saturating at SIZE_MAX (a saturated size is always too large). */
static size_t h2_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* v in decimal into buf (at least H2_U64_DIGITS bytes); returns the length. */
static size_t h2_u64(uint64_t v, char *buf)
{
	char tmp[H2_U64_DIGITS];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/* ---- field syntax (RFC 9113 §8.2.1) ---- */

/* Why a regular field name is invalid, or NULL: RFC 9113 §8.2.1, a name
 * MUST be a non-empty token with no upper-case letters (§8.2: names are
 * converted to lower case before encoding). */
static const char *h2_name_why(const uint8_t *p, size_t len)
{
	size_t i;

	if (len == 0)
		return "empty field name";
	for (i = 0; i < len; i++) {
		if (p[i] >= 'A' && p[i] <= 'Z')
			return "uppercase field name";
		if (!http_is_tchar(p[i]))
			return "invalid character in a field name";
	}
	return NULL;
}

/* Why a field value is invalid, or NULL. RFC 9113 §8.2.1: no NUL, CR or LF
 * anywhere, no SP or HTAB at either end; RFC 9110 §5.5: no other CTL. */
static const char *h2_value_why(const uint8_t *p, size_t len)
{
	bool ctl = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == 0 || p[i] == '\r' || p[i] == '\n')
			return "NUL, CR or LF in a field value";
		if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f)
			ctl = true;
	}
	if (len > 0 && (p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' || p[len - 1] == '\t'))
		return "field value with leading or trailing whitespace";
	if (ctl)
		return "control character in a field value";
	return NULL;
}

/* RFC 9113 §8.2.2: an endpoint MUST treat a request containing any of these
 * as malformed (te is handled apart: "trailers" is allowed). */
static const struct {
	const char *name;
	const char *why;
} h2_conn_fields[] = {
	{ "connection", "connection-specific field: connection" },
	{ "keep-alive", "connection-specific field: keep-alive" },
	{ "proxy-connection", "connection-specific field: proxy-connection" },
	{ "transfer-encoding", "connection-specific field: transfer-encoding" },
	{ "upgrade", "connection-specific field: upgrade" },
};

/* Why a (valid, lower-case) regular field name is connection-specific, or NULL. */
static const char *h2_conn_field_why(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(h2_conn_fields) / sizeof(h2_conn_fields[0]); i++)
		if (h2_eq(p, len, h2_conn_fields[i].name))
			return h2_conn_fields[i].why;
	return NULL;
}

/* RFC 9113 §8.2.2: te MAY be present but MUST NOT contain any value other
 * than "trailers". */
static bool h2_te_ok(const struct h2_header *f)
{
	return h2_eq_lit_ci(f->value, f->valuelen, "trailers");
}

/* ---- the request head ---- */

/* The pseudo-header fields a request may carry (RFC 9113 §8.3.1). */
enum h2_pseudo { H2P_METHOD, H2P_SCHEME, H2P_AUTHORITY, H2P_PATH, H2P_N };

static const char *const h2_pseudo_names[H2P_N] = {
	":method", ":scheme", ":authority", ":path",
};

/* What the check of a request found; the writer needs nothing else. */
struct h2_req {
	const struct h2_header *ps[H2P_N]; /* each pseudo-header, NULL if absent */
	const uint8_t *authority;          /* :authority, else the first host */
	size_t authority_len;
	bool connect;
	bool options_star;                 /* OPTIONS with :path "*" */
	bool has_cl;
	uint64_t cl;
	size_t first_cookie;               /* index of the first cookie, n if none */
};

/* The output of the head writer: counts when p is NULL, writes otherwise. */
struct h2_out {
	char *p;
	size_t len;
};

/* Append n bytes (or only count them). */
static void h2_put(struct h2_out *o, const void *s, size_t n)
{
	if (o->p != NULL && n > 0)
		memcpy(o->p + o->len, s, n);
	o->len = h2_add(o->len, n);
}

/* Append a literal. */
static void h2_puts(struct h2_out *o, const char *s)
{
	h2_put(o, s, strlen(s));
}

/* Check one pseudo-header field; records it in r. RFC 9113 §8.3: only the
 * defined ones, each at most once, all before the regular fields. */
static const char *h2_take_pseudo(const struct h2_header *f, bool seen_regular, struct h2_req *r)
{
	int i;

	if (seen_regular)
		return "pseudo-header after a regular field";
	if (h2_eq(f->name, f->namelen, ":protocol"))
		return "extended CONNECT not supported (:protocol)";
	for (i = 0; i < H2P_N; i++) {
		if (!h2_eq(f->name, f->namelen, h2_pseudo_names[i]))
			continue;
		if (r->ps[i] != NULL)
			return "duplicate pseudo-header";
		r->ps[i] = f;
		return NULL;
	}
	return "unknown pseudo-header";
}

/* Check the regular field f (index i); records content-length and cookies. */
static const char *h2_take_regular(const struct h2_header *f, size_t i, struct h2_req *r)
{
	const char *why = h2_name_why(f->name, f->namelen);
	uint64_t v;

	if (why != NULL)
		return why;
	why = h2_conn_field_why(f->name, f->namelen);
	if (why != NULL)
		return why;
	if (h2_eq(f->name, f->namelen, "te") && !h2_te_ok(f))
		return "te with a value other than trailers";
	if (h2_eq(f->name, f->namelen, "content-length")) {
		/* RFC 9110 §8.6: Content-Length = 1*DIGIT; several must agree. */
		if (!decimal_parse((const char *)f->value, f->valuelen, (uint64_t)INT64_MAX, &v))
			return "invalid content-length";
		if (r->has_cl && v != r->cl)
			return "conflicting content-length values";
		r->has_cl = true;
		r->cl = v;
	}
	if (h2_eq(f->name, f->namelen, "cookie") && r->first_cookie > i)
		r->first_cookie = i;
	return NULL;
}

/* Is the method a token (RFC 9110 §9.1)? */
static bool h2_is_token(const uint8_t *p, size_t len)
{
	return http_is_token(slice_make((const char *)p, len)) != 0;
}

/* A :path usable in an absolute-form target: "/" then VCHAR but '#'
 * (RFC 9113 §8.3.1: path-absolute [ "?" query ]; RFC 9112 §3.2). */
static bool h2_path_ok(const uint8_t *p, size_t len)
{
	size_t i;

	if (len == 0 || p[0] != '/')
		return false;
	for (i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '#')
			return false;
	return true;
}

/* Check the pseudo-headers together, after all fields were seen. */
static const char *h2_check_pseudo(const struct h2_header *h, size_t n, struct h2_req *r)
{
	const struct h2_header *m = r->ps[H2P_METHOD], *s = r->ps[H2P_SCHEME];
	const struct h2_header *a = r->ps[H2P_AUTHORITY], *p = r->ps[H2P_PATH];
	struct http_target t;
	size_t i;

	/* RFC 9113 §8.3.1: all requests MUST include exactly one :method. */
	if (m == NULL)
		return "missing :method";
	if (!h2_is_token(m->value, m->valuelen))
		return "invalid :method";
	r->connect = h2_eq(m->value, m->valuelen, "CONNECT");
	if (a != NULL) {
		r->authority = a->value;
		r->authority_len = a->valuelen;
	}
	if (r->connect) {
		/* RFC 9113 §8.5: :scheme and :path MUST be omitted, :authority
		 * MUST be host:port. */
		if (s != NULL || p != NULL)
			return "CONNECT with :scheme or :path";
		if (a == NULL)
			return "CONNECT without :authority";
		if (http_parse_target(SLICE_LIT("CONNECT"),
				      slice_make((const char *)a->value, a->valuelen), &t) != 0)
			return "invalid :authority (CONNECT needs host:port)";
	} else {
		/* RFC 9113 §8.3.1: :method, :scheme and :path are required. */
		if (s == NULL)
			return "missing :scheme";
		if (!h2_eq_lit_ci(s->value, s->valuelen, "http") &&
		    !h2_eq_lit_ci(s->value, s->valuelen, "https"))
			return "unsupported :scheme (http or https only)";
		if (p == NULL)
			return "missing :path";
		/* RFC 9113 §8.3.1: :path MUST NOT be empty for http(s) URIs. */
		if (p->valuelen == 0)
			return "empty :path";
		if (h2_eq(p->value, p->valuelen, "*")) {
			if (!h2_eq(m->value, m->valuelen, "OPTIONS"))
				return ":path \"*\" other than for OPTIONS";
			r->options_star = true;
		} else if (!h2_path_ok(p->value, p->valuelen)) {
			return "invalid :path";
		}
		if (a == NULL) {
			for (i = 0; i < n && r->authority == NULL; i++)
				if (h2_eq(h[i].name, h[i].namelen, "host")) {
					r->authority = h[i].value;
					r->authority_len = h[i].valuelen;
				}
			if (r->authority == NULL)
				return "missing :authority and host";
		}
		/* The rest of the authority's syntax is checked on the written
		 * target (h2_request_translate). RFC 9113 §8.3.1: no userinfo. */
		if (r->authority_len == 0)
			return "empty :authority";
		if (memchr(r->authority, '@', r->authority_len) != NULL)
			return "userinfo in :authority";
		/* Nothing that would end the authority in the written target:
		 * "a/b" must not become host "a" with path "/b...". */
		for (i = 0; i < r->authority_len; i++)
			if (r->authority[i] <= 0x20 || r->authority[i] >= 0x7f ||
			    strchr("/?#", r->authority[i]) != NULL)
				return "invalid :authority";
	}
	/* RFC 9113 §8.3.1: a host that differs from :authority is malformed. */
	for (i = 0; i < n; i++)
		if (h2_eq(h[i].name, h[i].namelen, "host") &&
		    !h2_eq_ci(h[i].value, h[i].valuelen, r->authority, r->authority_len))
			return "host differs from :authority";
	return NULL;
}

/* Write (or count) the request head; returns the offsets of the target. */
static void h2_write_head(const struct h2_header *h, size_t n, bool end_stream,
			  const struct h2_req *r, struct h2_out *o, size_t *tstart, size_t *tend)
{
	const struct h2_header *m = r->ps[H2P_METHOD];
	char digits[H2_U64_DIGITS];
	size_t i, j;

	h2_put(o, m->value, m->valuelen);
	h2_puts(o, " ");
	*tstart = o->len;
	if (!r->connect) {
		const struct h2_header *s = r->ps[H2P_SCHEME], *p = r->ps[H2P_PATH];

		h2_puts(o, h2_eq_lit_ci(s->value, s->valuelen, "https") ? "https://" : "http://");
		h2_put(o, r->authority, r->authority_len);
		/* RFC 9112 §3.2.4: OPTIONS * to a proxy is the bare authority. */
		if (!r->options_star)
			h2_put(o, p->value, p->valuelen);
	} else {
		h2_put(o, r->authority, r->authority_len);
	}
	*tend = o->len;
	h2_puts(o, " HTTP/1.1\r\nHost: ");
	h2_put(o, r->authority, r->authority_len);
	h2_puts(o, "\r\n");
	for (i = 0; i < n; i++) {
		const struct h2_header *f = &h[i];

		if (f->namelen > 0 && f->name[0] == ':')
			continue;
		if (h2_eq(f->name, f->namelen, "host") || h2_eq(f->name, f->namelen, "te") ||
		    h2_eq(f->name, f->namelen, "content-length"))
			continue;
		if (h2_eq(f->name, f->namelen, "cookie")) {
			/* RFC 9113 §8.2.3: crumbs MUST be concatenated with
			 * "; " into one field before an HTTP/1.1 hop. */
			bool first = true;

			if (i != r->first_cookie)
				continue;
			h2_puts(o, "Cookie: ");
			for (j = i; j < n; j++) {
				if (!h2_eq(h[j].name, h[j].namelen, "cookie"))
					continue;
				if (!first)
					h2_puts(o, "; ");
				h2_put(o, h[j].value, h[j].valuelen);
				first = false;
			}
			h2_puts(o, "\r\n");
			continue;
		}
		h2_put(o, f->name, f->namelen);
		h2_puts(o, ": ");
		h2_put(o, f->value, f->valuelen);
		h2_puts(o, "\r\n");
	}
	if (r->has_cl && !r->connect) {
		h2_puts(o, "Content-Length: ");
		h2_put(o, digits, h2_u64(r->cl, digits));
		h2_puts(o, "\r\n");
	} else if (!end_stream && !r->connect) {
		h2_puts(o, "Transfer-Encoding: chunked\r\n");
	}
	h2_puts(o, "Connection: close\r\n\r\n");
}

/* Translate a request's header list into an HTTP/1.1 head (see h2_translate.h). */
int h2_request_translate(const struct h2_header *h, size_t n, bool end_stream, size_t max_head,
			 struct h2_request *out, const char **why)
{
	struct h2_req r;
	struct h2_out o = { NULL, 0 };
	struct http_target t;
	bool seen_regular = false;
	size_t i, tstart, tend;
	const char *w = NULL;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	memset(&r, 0, sizeof(r));
	r.first_cookie = n;
	*why = NULL;

	for (i = 0; i < n && w == NULL; i++) {
		const struct h2_header *f = &h[i];

		w = h2_value_why(f->value, f->valuelen);
		if (w != NULL)
			break;
		if (f->namelen > 0 && f->name[0] == ':') {
			w = h2_take_pseudo(f, seen_regular, &r);
		} else {
			seen_regular = true;
			w = h2_take_regular(f, i, &r);
		}
	}
	if (w == NULL)
		w = h2_check_pseudo(h, n, &r);
	/* RFC 9113 §8.1.1: a nonzero content-length on a HEADERS frame with
	 * END_STREAM is malformed. */
	if (w == NULL && r.has_cl && r.cl > 0 && end_stream)
		w = "content-length with END_STREAM";
	/* RFC 9110 §9.3.6: a CONNECT request has no content. */
	if (w == NULL && r.has_cl && r.cl > 0 && r.connect)
		w = "content-length on CONNECT";
	if (w != NULL) {
		*why = w;
		return -1;
	}

	h2_write_head(h, n, end_stream, &r, &o, &tstart, &tend);
	if (o.len > max_head) {
		*why = "header list too large";
		return -1;
	}
	o.p = malloc(o.len);
	if (o.p == NULL) {
		*why = "out of memory";
		return -1;
	}
	o.len = 0;
	h2_write_head(h, n, end_stream, &r, &o, &tstart, &tend);
	/* The target must be one the pipeline parses: this checks the
	 * authority's syntax (host, port) where it is used. */
	if (http_parse_target(slice_make((const char *)r.ps[H2P_METHOD]->value,
					 r.ps[H2P_METHOD]->valuelen),
			      slice_make(o.p + tstart, tend - tstart), &t) != 0) {
		free(o.p);
		*why = "invalid :authority";
		return -1;
	}
	out->head = o.p;
	out->head_len = o.len;
	out->connect = r.connect;
	out->chunked = !r.has_cl && !end_stream && !r.connect;
	out->content_length = r.has_cl ? (int64_t)r.cl : -1;
	return 0;
}

/* ---- request trailers ---- */

/* Check one trailer field; *drop when it is valid but not forwarded. */
static const char *h2_trailer_why(const struct h2_header *f, bool *drop)
{
	const char *why;

	*drop = false;
	why = h2_value_why(f->value, f->valuelen);
	if (why != NULL)
		return why;
	/* RFC 9113 §8.1: trailers MUST NOT include pseudo-header fields. */
	if (f->namelen > 0 && f->name[0] == ':')
		return "pseudo-header in trailers";
	why = h2_name_why(f->name, f->namelen);
	if (why == NULL)
		why = h2_conn_field_why(f->name, f->namelen);
	if (why != NULL)
		return why;
	if (h2_eq(f->name, f->namelen, "te")) {
		if (!h2_te_ok(f))
			return "te with a value other than trailers";
		*drop = true;
	}
	if (h2_eq(f->name, f->namelen, "content-length") || h2_eq(f->name, f->namelen, "host"))
		*drop = true;
	return NULL;
}

/* Translate request trailers into chunked trailer lines (see h2_translate.h). */
int h2_request_trailers(const struct h2_header *h, size_t n, size_t max, char **out, size_t *len,
			const char **why)
{
	struct h2_out o = { NULL, 0 };
	size_t i;
	int pass;

	*out = NULL;
	*len = 0;
	*why = NULL;
	for (i = 0; i < n; i++) {
		bool drop;
		const char *w = h2_trailer_why(&h[i], &drop);

		if (w != NULL) {
			*why = w;
			return -1;
		}
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			bool drop;

			(void)h2_trailer_why(&h[i], &drop);
			if (drop)
				continue;
			h2_put(&o, h[i].name, h[i].namelen);
			h2_puts(&o, ": ");
			h2_put(&o, h[i].value, h[i].valuelen);
			h2_puts(&o, "\r\n");
		}
		if (pass == 1)
			break;
		if (o.len > max) {
			*why = "trailers too large";
			return -1;
		}
		o.p = malloc(o.len > 0 ? o.len : 1);
		if (o.p == NULL) {
			*why = "out of memory";
			return -1;
		}
		o.len = 0;
	}
	*out = o.p;
	*len = o.len;
	return 0;
}

/* ---- responses ---- */

/* Does any Connection field among f[0..nf) list `name`? */
static bool h2_listed(const struct http_field *f, size_t nf, const char *name)
{
	size_t i;

	for (i = 0; i < nf; i++)
		if (slice_eq_ci(f[i].name, "connection") && hop_list_has(f[i].value, name))
			return true;
	return false;
}

/* Build the HTTP/2 field list of f[0..nf): ":status" first when status > 0,
 * the fields hop_classify keeps (and Proxy-Authenticate when keep_pa and no
 * Connection lists it), names lower-cased, then content-length when has_cl.
 * One allocation: the array, then keep[], then the bytes. */
static int h2_fields_build(const struct http_field *f, size_t nf, int status, bool keep_pa,
			   bool has_cl, uint64_t cl, struct h2_header **out, size_t *n)
{
	struct h2_header *arr;
	struct hop_info info;
	bool *keep, pa_ok;
	char digits[H2_U64_DIGITS];
	size_t bytes = 0, cap, i, k = 0, cl_len = has_cl ? h2_u64(cl, digits) : 0;
	uint8_t *b;

	*out = NULL;
	*n = 0;
	if (nf > SIZE_MAX / (2 * sizeof(*arr)))
		return -1;
	cap = nf + 2;
	for (i = 0; i < nf; i++)
		bytes = h2_add(bytes, h2_add(f[i].name.len, f[i].value.len));
	bytes = h2_add(bytes, sizeof(":status") - 1 + 3 + sizeof("content-length") - 1 + cl_len);
	bytes = h2_add(bytes, cap * sizeof(*arr) + nf);
	if (bytes == SIZE_MAX)
		return -1;
	arr = malloc(bytes);
	if (arr == NULL)
		return -1;
	keep = (bool *)(arr + cap);
	b = (uint8_t *)(keep + nf);
	if (hop_classify(f, nf, HOP_RESPONSE, false, keep, &info) != HOP_OK) {
		free(arr);
		return -1;
	}
	if (status > 0) {
		memcpy(b, ":status", 7);
		arr[k++] = (struct h2_header){ b, 7, b + 7, 3 };
		b[7] = (uint8_t)('0' + status / 100);
		b[8] = (uint8_t)('0' + status / 10 % 10);
		b[9] = (uint8_t)('0' + status % 10);
		b += 10;
	}
	/* The proxy's own challenges; RFC 9110 §7.6.1 still applies to them. */
	pa_ok = keep_pa && !h2_listed(f, nf, "proxy-authenticate");
	for (i = 0; i < nf; i++) {
		size_t j;

		if (!keep[i] && !(pa_ok && slice_eq_ci(f[i].name, "proxy-authenticate")))
			continue;
		/* RFC 9113 §8.2: field names MUST be converted to lower case. */
		for (j = 0; j < f[i].name.len; j++)
			b[j] = h2_lower((unsigned char)f[i].name.p[j]);
		if (f[i].value.len > 0)
			memcpy(b + f[i].name.len, f[i].value.p, f[i].value.len);
		arr[k++] = (struct h2_header){ b, f[i].name.len, b + f[i].name.len,
					       f[i].value.len };
		b += f[i].name.len + f[i].value.len;
	}
	if (has_cl) {
		memcpy(b, "content-length", 14);
		memcpy(b + 14, digits, cl_len);
		arr[k++] = (struct h2_header){ b, 14, b + 14, cl_len };
	}
	*out = arr;
	*n = k;
	return 0;
}

/* The HTTP/2 header list of an HTTP/1.1 response (see h2_translate.h). */
int h2_response_fields(const struct http_response *res, struct h2_header **out, size_t *n)
{
	struct http_framing fr;
	bool has_cl;

	*out = NULL;
	*n = 0;
	if (res->status < 100 || res->status > 999)
		return -1;
	/* RFC 9110 §8.6: no Content-Length where the status has no content;
	 * Transfer-Encoding overrides it (RFC 9112 §6.3). */
	has_cl = http_response_framing(res, 0, 0, &fr) == 0 && fr.kind == HTTP_BODY_LENGTH;
	return h2_fields_build(res->fields, res->nfields, res->status, true, has_cl,
			       has_cl ? fr.length : 0, out, n);
}

/* The HTTP/2 trailer fields of a chunked HTTP/1.1 response (see h2_translate.h). */
int h2_trailer_fields(const struct http_field *f, size_t nf, struct h2_header **out, size_t *n)
{
	return h2_fields_build(f, nf, 0, false, false, 0, out, n);
}

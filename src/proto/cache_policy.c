/* cache_policy.c - RFC 9111 rules for a shared cache, as pure functions over
 * parsed fields: what may be stored, how long it stays fresh, how old it is,
 * whether a stored response may answer a request, Vary, validators,
 * conditionals, 304 merging, ranges and invalidation.
 * Pure: no I/O, no clock ("now" is a parameter), no globals, no allocation.
 * The decisions this file takes are listed in cache_policy.h. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cache_policy.h"
#include "decimal.h"
#include "hop.h"

/* RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31. */
#define DELTA_MAX INT64_C(2147483648)

/* Optional whitespace (RFC 9110 §5.6.3). */
static bool cp_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* ASCII lower-case of one byte. */
static char cp_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Trim OWS on both sides of a slice. */
static struct slice cp_trim(struct slice s)
{
	while (s.len > 0 && cp_is_ows(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && cp_is_ows(s.p[s.len - 1]))
		s.len--;
	return s;
}

/* Next element of a comma-separated list (RFC 9110 §5.6.1) in v starting at
 * *pos, honouring quoted-strings (a comma inside quotes does not split).
 * Empty elements are skipped. Returns false at the end. */
static bool cp_list_next(struct slice v, size_t *pos, struct slice *elem)
{
	size_t i = *pos;
	bool quoted = false;

	for (;;) {
		size_t start;

		while (i < v.len && (cp_is_ows(v.p[i]) || v.p[i] == ','))
			i++;
		if (i >= v.len) {
			*pos = i;
			return false;
		}
		start = i;
		for (; i < v.len; i++) {
			if (quoted) {
				if (v.p[i] == '\\' && i + 1 < v.len)
					i++;
				else if (v.p[i] == '"')
					quoted = false;
			} else if (v.p[i] == '"') {
				quoted = true;
			} else if (v.p[i] == ',') {
				break;
			}
		}
		*elem = cp_trim(slice_make(v.p + start, i - start));
		*pos = i;
		if (elem->len > 0)
			return true;
	}
}

/* Parse delta-seconds (RFC 9111 §1.2.2): 1*DIGIT, clamped to 2^31.
 * Returns -1 when malformed. */
static int64_t cp_delta(struct slice s)
{
	uint64_t v;

	return decimal_parse_clamped(s.p, s.len, (uint64_t)DELTA_MAX, &v) ? (int64_t)v : -1;
}

/* Value of a directive argument: token as is, quoted-string without its
 * quotes (RFC 9111 §5.2: recipients accept both forms). Backslash escapes
 * are left in place (no argument we interpret may contain them). Returns
 * false for an unterminated quoted-string. */
static bool cp_arg(struct slice raw, struct slice *out)
{
	if (raw.len > 0 && raw.p[0] == '"') {
		if (raw.len < 2 || raw.p[raw.len - 1] != '"')
			return false;
		*out = slice_make(raw.p + 1, raw.len - 2);
		return true;
	}
	*out = raw;
	return true;
}

/* Record a delta-seconds directive: the first occurrence wins
 * (RFC 9111 §4.2.1 allows "first occurrence" for duplicates). Returns false
 * when this occurrence is malformed. */
static bool cp_set_delta(int64_t *dst, bool has_arg, struct slice arg, bool *seen)
{
	int64_t v = has_arg ? cp_delta(arg) : -1;

	if (*seen)
		return true;
	*seen = true;
	if (v < 0)
		return false;
	*dst = v;
	return true;
}

/* Parse every Cache-Control field of a message (RFC 9111 §5.2). */
void cc_parse(const struct http_field *f, size_t n, struct cc *out)
{
	bool seen_ma = false, seen_sma = false, seen_ms = false, seen_mf = false;
	bool seen_swr = false, seen_sie = false;
	size_t i, pos;
	struct slice e;

	memset(out, 0, sizeof(*out));
	out->max_age = out->s_maxage = out->max_stale = out->min_fresh = CC_ABSENT;
	out->stale_while_revalidate = out->stale_if_error = CC_ABSENT;
	for (i = 0; i < n; i++) {
		if (!slice_eq_ci(f[i].name, "Cache-Control"))
			continue;
		out->present = true;
		pos = 0;
		while (cp_list_next(f[i].value, &pos, &e)) {
			struct slice name = e, arg = { NULL, 0 };
			const char *eq = memchr(e.p, '=', e.len);
			bool has_arg = eq != NULL, ok_arg = true;

			if (eq) {
				struct slice raw;

				name = cp_trim(slice_make(e.p, (size_t)(eq - e.p)));
				raw = cp_trim(slice_make(eq + 1, e.len - (size_t)(eq - e.p) - 1));
				ok_arg = cp_arg(raw, &arg);
			}
			if (!ok_arg)
				has_arg = false;
			if (slice_eq_ci(name, "no-store")) {
				out->no_store = true;
			} else if (slice_eq_ci(name, "no-cache")) {
				out->no_cache = true;
				if (has_arg)
					out->no_cache_qualified = true;
			} else if (slice_eq_ci(name, "private")) {
				out->private_ = true;
			} else if (slice_eq_ci(name, "public")) {
				out->public_ = true;
			} else if (slice_eq_ci(name, "must-revalidate")) {
				out->must_revalidate = true;
			} else if (slice_eq_ci(name, "proxy-revalidate")) {
				out->proxy_revalidate = true;
			} else if (slice_eq_ci(name, "only-if-cached")) {
				out->only_if_cached = true;
			} else if (slice_eq_ci(name, "no-transform")) {
				out->no_transform = true;
			} else if (slice_eq_ci(name, "immutable")) {
				out->immutable = true;
			} else if (slice_eq_ci(name, "must-understand")) {
				out->must_understand = true;
			} else if (slice_eq_ci(name, "max-age")) {
				/* RFC 9111 §4.2.1: invalid max-age -> stale. */
				if (!cp_set_delta(&out->max_age, has_arg, arg, &seen_ma))
					out->max_age_invalid = true;
			} else if (slice_eq_ci(name, "s-maxage")) {
				/* Malformed s-maxage: treated as s-maxage=0 (stale,
				 * and it still implies proxy-revalidate). */
				if (!cp_set_delta(&out->s_maxage, has_arg, arg, &seen_sma))
					out->s_maxage = 0;
			} else if (slice_eq_ci(name, "max-stale")) {
				if (!has_arg && !eq) {
					out->max_stale_any = true;
				} else {
					/* malformed: ignored */
					cp_set_delta(&out->max_stale, has_arg, arg, &seen_ms);
				}
			} else if (slice_eq_ci(name, "min-fresh")) {
				cp_set_delta(&out->min_fresh, has_arg, arg, &seen_mf);
			} else if (slice_eq_ci(name, "stale-while-revalidate")) {
				cp_set_delta(&out->stale_while_revalidate, has_arg, arg, &seen_swr);
			} else if (slice_eq_ci(name, "stale-if-error")) {
				cp_set_delta(&out->stale_if_error, has_arg, arg, &seen_sie);
			}
			/* unknown extensions are ignored (RFC 9111 §5.2.3) */
		}
	}
}

/* First valid date of the first field with this name, or -1. */
static int64_t cp_field_date(const struct http_field *f, size_t n, const char *name)
{
	const struct http_field *h = http_field_find(f, n, name);

	return h ? http_date_parse(h->value) : -1;
}

/* ---- requests ---- */

/* Does any field with this name list `token` (case-insensitive)? */
static bool cp_fields_list_has(const struct http_field *f, size_t n, const char *name,
			       const char *token)
{
	size_t i, pos;
	struct slice e;

	for (i = 0; i < n; i++) {
		if (!slice_eq_ci(f[i].name, name))
			continue;
		pos = 0;
		while (cp_list_next(f[i].value, &pos, &e))
			if (slice_eq_ci(e, token))
				return true;
	}
	return false;
}

/* What a request asks of the cache. */
void cache_req_parse(const struct http_field *f, size_t n, struct cache_req *out)
{
	memset(out, 0, sizeof(*out));
	cc_parse(f, n, &out->cc);
	/* RFC 9111 §5.4: Pragma counts only without Cache-Control. */
	out->pragma_no_cache = !out->cc.present && cp_fields_list_has(f, n, "Pragma", "no-cache");
	out->has_authorization = http_field_find(f, n, "Authorization") != NULL;
	out->conditional = http_field_find(f, n, "If-None-Match") != NULL ||
			   http_field_find(f, n, "If-Modified-Since") != NULL;
	out->has_range = http_field_find(f, n, "Range") != NULL;
}

/* GET and HEAD can be looked up (methods are case-sensitive, RFC 9110 §9.1). */
bool cache_method_cacheable(struct slice method)
{
	return slice_eq(method, "GET") || slice_eq(method, "HEAD");
}

/* ---- storage (RFC 9111 §3) ---- */

/* Heuristically cacheable statuses (RFC 9110 §15.1), minus 206: only
 * complete responses are stored. */
static bool cp_heuristic_status(int status)
{
	switch (status) {
	case 200: case 203: case 204: case 300: case 301: case 308:
	case 404: case 405: case 410: case 414: case 501:
		return true;
	default:
		return false;
	}
}

/* Statuses whose semantics this cache implements (for must-understand,
 * RFC 9111 §5.2.2.3). */
static bool cp_understood_status(int status)
{
	return cp_heuristic_status(status) || status == 302 || status == 303 || status == 307;
}

/* Does the response carry explicit expiration (RFC 9111 §4.2.1)? */
static bool cp_explicit(const struct cc *c, const struct http_field *f, size_t n)
{
	return c->s_maxage != CC_ABSENT || c->max_age != CC_ABSENT || c->max_age_invalid ||
	       http_field_find(f, n, "Expires") != NULL;
}

/* May a shared cache store this response? NULL when yes, else why not. */
const char *cache_storable(struct slice method, int status, const struct cache_req *req,
			   const struct http_field *res_fields, size_t res_n,
			   int64_t heuristic_max)
{
	struct cc c;
	bool explicit_, positive, validator;

	(void)heuristic_max; /* a heuristic needs Last-Modified: a validator already */
	/* RFC 9111 §3: the method is understood and cacheable; we store GET. */
	if (!slice_eq(method, "GET"))
		return "method";
	/* RFC 9111 §3: final status; 206 (partial) and 304 are never stored. */
	if (status < 200 || status > 599 || status == 206 || status == 304)
		return "status";
	/* RFC 9111 §3, §5.2.1.5: no-store in the request. */
	if (req->cc.no_store)
		return "no-store";
	cc_parse(res_fields, res_n, &c);
	if (c.must_understand) {
		/* RFC 9111 §5.2.2.3: store only understood statuses; no-store is
		 * then ignored. */
		if (!cp_understood_status(status))
			return "must-understand";
	} else if (c.no_store) {
		return "no-store";
	}
	/* RFC 9111 §3, §5.2.2.7: a shared cache MUST NOT store private. */
	if (c.private_)
		return "private";
	/* RFC 9111 §3.5: Authorization only with public, s-maxage, must-revalidate. */
	if (req->has_authorization && !c.public_ && c.s_maxage == CC_ABSENT &&
	    !c.must_revalidate)
		return "authorization";
	if (cache_vary_star(res_fields, res_n))
		return "vary *";
	/* RFC 9111 §3: explicit expiration, public, or a heuristically
	 * cacheable status. */
	explicit_ = cp_explicit(&c, res_fields, res_n);
	if (!explicit_ && !c.public_ && !cp_heuristic_status(status))
		return "status";
	/* Worth storing: some freshness, a validator, or public. */
	validator = http_field_find(res_fields, res_n, "ETag") != NULL ||
		    cp_field_date(res_fields, res_n, "Last-Modified") >= 0;
	positive = c.s_maxage > 0 || (c.s_maxage == CC_ABSENT && c.max_age > 0 &&
				      !c.max_age_invalid);
	if (!positive && c.s_maxage == CC_ABSENT && c.max_age == CC_ABSENT && !c.max_age_invalid) {
		int64_t exp = cp_field_date(res_fields, res_n, "Expires");
		int64_t date = cp_field_date(res_fields, res_n, "Date");

		positive = exp >= 0 && (date < 0 || exp > date);
	}
	if (!positive && !validator && !c.public_)
		return "no freshness";
	return NULL;
}

/* ---- freshness and age (RFC 9111 §4.2) ---- */

/* Freshness lifetime in seconds (RFC 9111 §4.2.1, §4.2.2). */
int64_t cache_freshness_lifetime(int status, const struct http_field *f, size_t n,
				 int64_t response_time, int64_t heuristic_max)
{
	struct cc c;
	const struct http_field *exp;
	int64_t date, lm, h;

	cc_parse(f, n, &c);
	/* RFC 9111 §4.2.1: shared caches use s-maxage first. */
	if (c.s_maxage != CC_ABSENT)
		return c.s_maxage;
	if (c.max_age_invalid)
		return 0;
	if (c.max_age != CC_ABSENT)
		return c.max_age;
	date = cp_field_date(f, n, "Date");
	if (date < 0)
		date = response_time;
	exp = http_field_find(f, n, "Expires");
	if (exp) {
		/* RFC 9111 §5.3: an invalid Expires ("0") means already expired. */
		int64_t e = http_date_parse(exp->value);

		if (e < 0 || e <= date)
			return 0;
		return e - date;
	}
	/* RFC 9111 §4.2.2: heuristics only without explicit expiration, for
	 * heuristically cacheable statuses or public responses. */
	if (!cp_heuristic_status(status) && !c.public_)
		return 0;
	lm = cp_field_date(f, n, "Last-Modified");
	if (lm < 0 || lm >= date || heuristic_max <= 0)
		return 0;
	h = (date - lm) / 10;
	return h > heuristic_max ? heuristic_max : h;
}

/* Current age (RFC 9111 §4.2.3). */
int64_t cache_current_age(const struct http_field *f, size_t n, int64_t request_time,
			  int64_t response_time, int64_t now)
{
	const struct http_field *a = http_field_find(f, n, "Age");
	int64_t age_value = 0, date_value, apparent_age, response_delay;
	int64_t corrected_age_value, corrected_initial_age, resident_time;

	/* RFC 9111 §5.1: a list-based Age (one line "0, 7200", or several
	 * lines, which combine into one list) -> use the first member; a value
	 * that is not a non-negative integer ("abc", "-1", "1.5") -> ignore
	 * the field. Overflow past 2^31 reads as 2^31 (§1.2.2). */
	if (a != NULL) {
		struct slice v = a->value;
		const char *comma = memchr(v.p, ',', v.len);
		if (comma != NULL)
			v.len = (size_t)(comma - v.p);
		age_value = cp_delta(cp_trim(v));
		if (age_value < 0)
			age_value = 0;
	}
	date_value = cp_field_date(f, n, "Date");
	if (date_value < 0)
		date_value = response_time; /* RFC 9110 §6.6.1: we would add Date */
	apparent_age = response_time - date_value;
	if (apparent_age < 0)
		apparent_age = 0;
	response_delay = response_time - request_time;
	if (response_delay < 0)
		response_delay = 0;
	corrected_age_value = age_value + response_delay;
	corrected_initial_age = apparent_age > corrected_age_value ? apparent_age
								   : corrected_age_value;
	resident_time = now - response_time;
	if (resident_time < 0)
		resident_time = 0;
	return corrected_initial_age + resident_time;
}

/* What to do with a stored response for this request. */
void cache_decide(const struct cache_req *req, int status, const struct http_field *stored,
		  size_t stored_n, int64_t request_time, int64_t response_time, int64_t now,
		  int64_t heuristic_max, struct cache_decision *out)
{
	struct cc rc;
	const struct cc *q = &req->cc;
	int64_t lifetime, staleness, sie;
	bool no_stale;

	cc_parse(stored, stored_n, &rc);
	lifetime = cache_freshness_lifetime(status, stored, stored_n, response_time, heuristic_max);
	out->age = cache_current_age(stored, stored_n, request_time, response_time, now);
	out->ttl = lifetime - out->age;
	staleness = -out->ttl;
	/* RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10: never served stale
	 * (s-maxage implies proxy-revalidate for a shared cache). */
	no_stale = rc.must_revalidate || rc.proxy_revalidate || rc.s_maxage != CC_ABSENT;

	/* RFC 5861 §4: the request's stale-if-error is an upper limit for
	 * that request, so it wins over the response's (it may tighten it) */
	sie = q->stale_if_error != CC_ABSENT ? q->stale_if_error : rc.stale_if_error;
	out->stale_if_error_ok = !q->no_store && !no_stale && !rc.no_cache &&
				 sie != CC_ABSENT && staleness <= sie;

	if (q->no_store)
		out->use = CACHE_USE_MISS;
	else if (q->no_cache || req->pragma_no_cache)
		out->use = CACHE_USE_VALIDATE;  /* RFC 9111 §5.2.1.4, §5.4 */
	else if (rc.no_cache)
		out->use = CACHE_USE_VALIDATE;  /* RFC 9111 §5.2.2.4 (qualified too) */
	else if ((q->max_age_invalid && out->age > 0) ||
		 (q->max_age != CC_ABSENT && out->age > q->max_age))
		out->use = CACHE_USE_VALIDATE;  /* RFC 9111 §5.2.1.1 */
	else if (q->min_fresh != CC_ABSENT && out->ttl < q->min_fresh)
		out->use = CACHE_USE_VALIDATE;  /* RFC 9111 §5.2.1.3 */
	else if (out->ttl > 0)
		out->use = CACHE_USE_FRESH;     /* RFC 9111 §4.2 */
	else if (no_stale)
		out->use = CACHE_USE_VALIDATE;
	else if (q->max_stale_any || (q->max_stale != CC_ABSENT && staleness <= q->max_stale))
		out->use = CACHE_USE_STALE;     /* RFC 9111 §5.2.1.2 */
	else if (rc.stale_while_revalidate != CC_ABSENT && staleness <= rc.stale_while_revalidate)
		out->use = CACHE_USE_STALE_REVALIDATE; /* RFC 5861 §3 */
	else
		out->use = CACHE_USE_VALIDATE;  /* RFC 9111 §4.2.4 */
}

/* ---- Vary (RFC 9111 §4.1) ---- */

/* Does any Vary field list "*"? */
bool cache_vary_star(const struct http_field *f, size_t n)
{
	return cp_fields_list_has(f, n, "Vary", "*");
}

/* Field names listed by every Vary field, in order; returns how many there
 * are (may exceed max: only max are written). */
size_t cache_vary_names(const struct http_field *f, size_t n, struct slice *names, size_t max)
{
	size_t i, pos, count = 0;
	struct slice e;

	for (i = 0; i < n; i++) {
		if (!slice_eq_ci(f[i].name, "Vary"))
			continue;
		pos = 0;
		while (cp_list_next(f[i].value, &pos, &e)) {
			if (count < max)
				names[count] = e;
			count++;
		}
	}
	return count;
}

/* Append one byte to a bounded output, counting the full length. */
/* Append n bytes at *w when they fit in out[len]; *w counts them anyway. */
static void cp_put_n(char *out, size_t len, size_t *w, const char *p, size_t n)
{
	if (*w < len)
		memcpy(out + *w, p, n < len - *w ? n : len - *w);
	*w += n;
}

/* Request fields whose syntax is a comma-separated list (RFC 9110, RFC
 * 9111 §5.2): whitespace around their commas may be dropped. */
static bool cp_list_field(struct slice name)
{
	static const char *const lists[] = {
		"accept", "accept-charset", "accept-encoding", "accept-language", "cache-control",
		"connection", "content-encoding", "content-language", "expect", "if-match",
		"if-none-match", "pragma", "te", "trailer", "transfer-encoding", "upgrade", "via",
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (slices_eq_ci(name, slice_make(lists[i], strlen(lists[i]))))
			return true;
	return false;
}

/* Normalised value of a request field for a Vary match. For a list field:
 * each field line trimmed, split at its commas, each member trimmed,
 * members and lines joined by ",". For any other field only the field lines
 * are combined (RFC 9110 §5.3: joined by ", "); its bytes are kept, since
 * whitespace after a comma may be part of the value ("(KHTML, like
 * Gecko)"). The length counted never depends on what fit in out. */
size_t cache_vary_value(const struct http_field *f, size_t n, struct slice name, char *out,
			size_t len, bool *absent)
{
	size_t w = 0;
	bool first = true;
	bool list = cp_list_field(name);

	*absent = true;
	for (size_t i = 0; i < n; i++) {
		if (!slices_eq_ci(f[i].name, name))
			continue;
		*absent = false;
		struct slice v = cp_trim(f[i].value);
		if (!list) {
			if (!first)
				cp_put_n(out, len, &w, ", ", 2);
			first = false;
			cp_put_n(out, len, &w, v.p, v.len);
			continue;
		}
		if (!first)
			cp_put_n(out, len, &w, ",", 1);
		first = false;
		size_t k = 0;
		for (;;) {
			const char *comma = v.len > k ? memchr(v.p + k, ',', v.len - k) : NULL;
			size_t end = comma != NULL ? (size_t)(comma - v.p) : v.len;
			struct slice m = cp_trim(slice_make(v.p + k, end - k));
			cp_put_n(out, len, &w, m.p, m.len);
			if (comma == NULL)
				break;
			cp_put_n(out, len, &w, ",", 1);
			k = end + 1;
		}
	}
	return w;
}

/* ---- validation (RFC 9111 §4.3) ---- */

/* Append "Name: value\r\n" when it fits entirely; returns bytes written. */
static size_t cp_line(char *out, size_t len, const char *name, struct slice v)
{
	size_t nl = strlen(name), need = nl + 2 + v.len + 2;

	if (need > len)
		return 0;
	memcpy(out, name, nl);
	memcpy(out + nl, ": ", 2);
	memcpy(out + nl + 2, v.p, v.len);
	memcpy(out + nl + 2 + v.len, "\r\n", 2);
	return need;
}

/* Validator fields for a conditional request upstream. */
size_t cache_validators(const struct http_field *stored, size_t n, char *out, size_t len)
{
	const struct http_field *etag = http_field_find(stored, n, "ETag");
	const struct http_field *lm = http_field_find(stored, n, "Last-Modified");
	size_t w = 0;

	/* RFC 9111 §4.3.1: MUST send the entity tag when there is one. */
	if (etag && etag->value.len > 0)
		w += cp_line(out, len, "If-None-Match", etag->value);
	/* RFC 9111 §4.3.1: SHOULD send Last-Modified; Date is not a validator. */
	if (lm && http_date_parse(lm->value) >= 0)
		w += cp_line(out + w, len - w, "If-Modified-Since", lm->value);
	return w;
}

/* Parse one entity-tag (RFC 9110 §8.8.3) at the start of s: sets *weak and
 * *opaque (with quotes). Returns bytes consumed or 0 when malformed. */
static size_t cp_etag(struct slice s, bool *weak, struct slice *opaque)
{
	size_t i = 0, start;

	*weak = false;
	if (s.len >= 2 && s.p[0] == 'W' && s.p[1] == '/') {
		*weak = true;
		i = 2;
	}
	if (i >= s.len || s.p[i] != '"')
		return 0;
	start = i++;
	while (i < s.len && s.p[i] != '"')
		i++;
	if (i >= s.len)
		return 0;
	i++;
	*opaque = slice_make(s.p + start, i - start);
	return i;
}

/* Is the stored ETag equal to any member of an If-None-Match / If-Match
 * style list value? strong: RFC 9110 §8.8.3.2 strong comparison, else weak. */
static bool cp_etag_list_match(struct slice list, struct slice stored, bool strong)
{
	bool sw, lw;
	struct slice so, lo;
	size_t i = 0;

	if (cp_etag(stored, &sw, &so) != stored.len)
		return false;
	if (strong && sw)
		return false;
	for (;;) {
		size_t k;

		while (i < list.len && (cp_is_ows(list.p[i]) || list.p[i] == ','))
			i++;
		if (i >= list.len)
			return false;
		k = cp_etag(slice_make(list.p + i, list.len - i), &lw, &lo);
		if (k == 0)
			return false; /* malformed list: no match */
		if ((!strong || !lw) && lo.len == so.len && memcmp(lo.p, so.p, so.len) == 0)
			return true;
		i += k;
	}
}

/* Does the stored response satisfy the client's conditional request? */
int cache_conditional(const struct http_field *req, size_t req_n,
		      const struct http_field *stored, size_t stored_n)
{
	const struct http_field *etag = http_field_find(stored, stored_n, "ETag");
	const struct http_field *ims;
	int64_t since, lm;
	size_t i;
	bool inm = false;

	/* RFC 9110 §13.1.2: If-None-Match, weak comparison, any field line. */
	for (i = 0; i < req_n; i++) {
		if (!slice_eq_ci(req[i].name, "If-None-Match"))
			continue;
		inm = true;
		if (slice_eq(cp_trim(req[i].value), "*"))
			return 304;
		if (etag && cp_etag_list_match(req[i].value, cp_trim(etag->value), false))
			return 304;
	}
	if (inm)
		return 0;
	/* RFC 9110 §13.1.3 (only without If-None-Match), RFC 9111 §4.3.2:
	 * Last-Modified, else Date, of the stored response. */
	ims = http_field_find(req, req_n, "If-Modified-Since");
	if (!ims || (since = http_date_parse(ims->value)) < 0)
		return 0;
	lm = cp_field_date(stored, stored_n, "Last-Modified");
	if (lm < 0)
		lm = cp_field_date(stored, stored_n, "Date");
	if (lm < 0)
		return 0;
	return lm <= since ? 304 : 0;
}

/* 304 fields that must not update the stored head (RFC 9111 §3.2). */
static bool cp_no_update(struct slice name)
{
	/* §3.1 exceptions: hop-by-hop and proxy-specific fields. */
	if (hop_is_hop_by_hop(name) || slice_eq_ci(name, "Proxy-Authentication-Info"))
		return true;
	/* §3.2: Content-Length; Content-Range is processed by the recipient;
	 * the stored response depends on Content-Encoding, Content-MD5 and
	 * ETag (they describe the stored body bytes, and the ETag is the one
	 * the 304 validated). */
	return slice_eq_ci(name, "Content-Length") || slice_eq_ci(name, "Content-Range") ||
	       slice_eq_ci(name, "Content-Encoding") || slice_eq_ci(name, "Content-MD5") ||
	       slice_eq_ci(name, "ETag");
}

/* Which stored fields a 304 replaces and which of its fields are used. */
void cache_merge_304(const struct http_field *stored, size_t stored_n,
		     const struct http_field *fresh, size_t fresh_n, bool *keep_stored,
		     bool *use_new)
{
	size_t i, j;

	for (j = 0; j < fresh_n; j++) {
		use_new[j] = !cp_no_update(fresh[j].name);
		/* fields the 304's own Connection lists are hop-by-hop too */
		for (i = 0; use_new[j] && i < fresh_n; i++) {
			size_t pos = 0;
			struct slice e;

			if (!slice_eq_ci(fresh[i].name, "Connection"))
				continue;
			while (cp_list_next(fresh[i].value, &pos, &e))
				if (slices_eq_ci(e, fresh[j].name))
					use_new[j] = false;
		}
	}
	for (i = 0; i < stored_n; i++) {
		keep_stored[i] = true;
		for (j = 0; j < fresh_n; j++)
			if (use_new[j] && slices_eq_ci(stored[i].name, fresh[j].name))
				keep_stored[i] = false;
	}
}

/* ---- ranges (RFC 9110 §14) ---- */

/* The largest byte position a Range may name: 18446744073709551609, the
 * bound this parser has always had (a larger one is refused, the Range
 * ignored). */
#define RANGE_POS_MAX ((UINT64_MAX - 9) / 10 * 10 + 9)

/* Parse an unsigned decimal (1*DIGIT) up to RANGE_POS_MAX. */
static bool cp_u64(struct slice s, uint64_t *v)
{
	return decimal_parse(s.p, s.len, RANGE_POS_MAX, v);
}

/* Does If-Range (RFC 9110 §13.1.5) hold for the stored response? */
static bool cp_if_range(struct slice v, const struct http_field *stored, size_t stored_n)
{
	int64_t d, lm;

	v = cp_trim(v);
	if (v.len > 0 && (v.p[0] == '"' || (v.len >= 2 && v.p[0] == 'W' && v.p[1] == '/'))) {
		const struct http_field *etag = http_field_find(stored, stored_n, "ETag");
		bool w;
		struct slice o;

		/* strong comparison: a weak tag never matches */
		if (cp_etag(v, &w, &o) != v.len || w || !etag)
			return false;
		return cp_etag_list_match(v, cp_trim(etag->value), true);
	}
	d = http_date_parse(v);
	lm = cp_field_date(stored, stored_n, "Last-Modified");
	return d >= 0 && lm >= 0 && d == lm;
}

/* Range request on a complete stored body. */
void cache_range_parse(const struct http_field *req, size_t req_n,
		       const struct http_field *stored, size_t stored_n, uint64_t body_len,
		       struct cache_range *out)
{
	const struct http_field *r = NULL, *ir;
	struct slice v, e;
	size_t i, j, pos = 0;
	unsigned count = 0, specs = 0;

	memset(out, 0, sizeof(*out));
	out->kind = CACHE_RANGE_NONE;
	for (i = 0; i < req_n; i++) {
		if (!slice_eq_ci(req[i].name, "Range"))
			continue;
		if (r)
			return; /* several Range fields: ignored */
		r = &req[i];
	}
	if (!r || body_len == 0)
		return; /* an empty body is sent whole (200) */
	ir = http_field_find(req, req_n, "If-Range");
	if (ir && !cp_if_range(ir->value, stored, stored_n))
		return;
	v = cp_trim(r->value);
	/* RFC 9110 §14.1.1: bytes=... (unit case-insensitive); other units ignored */
	if (v.len < 6 || strncasecmp(v.p, "bytes=", 6) != 0)
		return;
	v = slice_make(v.p + 6, v.len - 6);
	while (cp_list_next(v, &pos, &e)) {
		const char *dash = memchr(e.p, '-', e.len);
		struct slice a, b;
		uint64_t first, last;

		specs++;
		if (!dash)
			return; /* invalid ranges-specifier: ignored */
		a = slice_make(e.p, (size_t)(dash - e.p));
		b = slice_make(dash + 1, e.len - a.len - 1);
		if (a.len == 0) {
			/* suffix-range */
			if (!cp_u64(b, &last))
				return;
			if (last == 0)
				continue; /* unsatisfiable */
			first = last >= body_len ? 0 : body_len - last;
			last = body_len - 1;
		} else {
			if (!cp_u64(a, &first))
				return;
			if (b.len == 0) {
				last = body_len - 1;
			} else {
				if (!cp_u64(b, &last) || last < first)
					return; /* invalid */
				if (last >= body_len)
					last = body_len - 1;
			}
			if (first >= body_len)
				continue; /* unsatisfiable */
		}
		if (count >= 8) {
			out->n = 0;
			return; /* too many: whole body */
		}
		out->first[count] = first;
		out->last[count] = last;
		count++;
	}
	if (specs == 0)
		return; /* empty range-set: invalid, ignored */
	if (count == 0) {
		out->kind = CACHE_RANGE_UNSATISFIABLE;
		return;
	}
	/* RFC 9110 §14.2: overlapping ranges may be ignored: whole body */
	for (i = 0; i < count; i++)
		for (j = i + 1; j < count; j++)
			if (out->first[i] <= out->last[j] && out->first[j] <= out->last[i]) {
				memset(out, 0, sizeof(*out));
				out->kind = CACHE_RANGE_NONE;
				return;
			}
	out->n = count;
	out->kind = count == 1 ? CACHE_RANGE_SINGLE : CACHE_RANGE_MULTI;
}

/* ---- invalidation (RFC 9111 §4.4) ---- */

/* Does an unsafe method's non-error response invalidate the target? */
bool cache_invalidates(struct slice method, int status)
{
	/* RFC 9110 §9.2.1 safe methods; CONNECT has no target resource URI. */
	if (slice_eq(method, "GET") || slice_eq(method, "HEAD") || slice_eq(method, "OPTIONS") ||
	    slice_eq(method, "TRACE") || slice_eq(method, "CONNECT") || method.len == 0)
		return false;
	/* RFC 9111 §4.4: MUST invalidate on a non-error status (2xx, 3xx). */
	return status >= 200 && status < 400;
}

/* Length of the scheme of an absolute URI (RFC 3986 §3.1), 0 if none. */
static size_t cp_scheme_len(struct slice s)
{
	size_t i;

	if (s.len == 0 || !((s.p[0] >= 'a' && s.p[0] <= 'z') || (s.p[0] >= 'A' && s.p[0] <= 'Z')))
		return 0;
	for (i = 1; i < s.len; i++) {
		char c = cp_lower(s.p[i]);

		if (c == ':')
			return i;
		if (!((c >= 'a' && c <= 'z') || decimal_is_digit(c) || c == '+' || c == '-' || c == '.'))
			return 0;
	}
	return 0;
}

/* RFC 3986 §5.2.4 remove_dot_segments, in place on p[0..*len). */
static void cp_remove_dots(char *p, size_t *len)
{
	size_t in = 0, w = 0, n = *len;

	while (in < n) {
		if (n - in >= 3 && memcmp(p + in, "../", 3) == 0) {
			in += 3;
		} else if (n - in >= 2 && memcmp(p + in, "./", 2) == 0) {
			in += 2;
		} else if (n - in >= 3 && memcmp(p + in, "/./", 3) == 0) {
			in += 2;
		} else if (n - in == 2 && memcmp(p + in, "/.", 2) == 0) {
			in += 1;
			p[in] = '/';
		} else if ((n - in >= 4 && memcmp(p + in, "/../", 4) == 0) ||
			   (n - in == 3 && memcmp(p + in, "/..", 3) == 0)) {
			in += 3;
			if (in == n) {
				in--;
				p[in] = '/';
			}
			while (w > 0 && p[w - 1] != '/')
				w--;
			if (w > 0)
				w--;
		} else if ((n - in == 1 && p[in] == '.') || (n - in == 2 && memcmp(p + in, "..", 2) == 0)) {
			in = n;
		} else {
			do
				p[w++] = p[in++];
			while (in < n && p[in] != '/');
		}
	}
	*len = w;
}

/* Same origin as base_uri? Resolves ref into out when it is. */
bool cache_same_origin(struct slice base_uri, struct slice ref, char *out, size_t len)
{
	struct http_target bt, rt;
	const char *hash, *auth_end, *q;
	size_t slen, alen, w, plen, dir;
	struct slice bpath;

	if (http_parse_target(SLICE_LIT("GET"), base_uri, &bt) != 0 ||
	    bt.form != HTTP_TARGET_ABSOLUTE || ref.len == 0)
		return false;
	/* the fragment is not part of the resource (RFC 3986 §3.5) */
	hash = memchr(ref.p, '#', ref.len);
	if (hash)
		ref.len = (size_t)(hash - ref.p);
	if (ref.len == 0)
		return false;
	slen = cp_scheme_len(ref);
	if (slen > 0) {
		/* absolute URI: http(s) only, compared by scheme, host, port */
		if (http_parse_target(SLICE_LIT("GET"), ref, &rt) != 0 ||
		    rt.form != HTTP_TARGET_ABSOLUTE || !slices_eq_ci(rt.scheme, bt.scheme) ||
		    !slices_eq_ci(rt.host, bt.host) || rt.port != bt.port || ref.len >= len)
			return false;
		memmove(out, ref.p, ref.len); /* ref may already be in out */
		out[ref.len] = '\0';
		return true;
	}
	/* base = scheme "://" authority path */
	alen = bt.scheme.len + 3;
	auth_end = base_uri.p + alen;
	while (auth_end < base_uri.p + base_uri.len && *auth_end != '/' && *auth_end != '?' &&
	       *auth_end != '#')
		auth_end++;
	if (ref.len >= 2 && ref.p[0] == '/' && ref.p[1] == '/') {
		/* network-path reference: base scheme + ref authority */
		if (bt.scheme.len + 1 + ref.len >= len)
			return false;
		memcpy(out, bt.scheme.p, bt.scheme.len);
		out[bt.scheme.len] = ':';
		memcpy(out + bt.scheme.len + 1, ref.p, ref.len);
		out[bt.scheme.len + 1 + ref.len] = '\0';
		return cache_same_origin(base_uri, slice_make(out, bt.scheme.len + 1 + ref.len),
					 out, len);
	}
	alen = (size_t)(auth_end - base_uri.p);
	bpath = slice_make(auth_end, base_uri.len - alen);
	q = memchr(bpath.p, '?', bpath.len);
	if (q)
		bpath.len = (size_t)(q - bpath.p);
	hash = memchr(bpath.p, '#', bpath.len);
	if (hash)
		bpath.len = (size_t)(hash - bpath.p);
	/* RFC 3986 §5.2.2, §5.2.3: path-absolute, query-only or relative-path */
	if (ref.p[0] == '/')
		dir = 0;
	else if (ref.p[0] == '?')
		dir = bpath.len > 0 ? bpath.len : 0;
	else {
		dir = bpath.len;
		while (dir > 0 && bpath.p[dir - 1] != '/')
			dir--;
	}
	w = alen + (dir > 0 ? dir : (ref.p[0] == '/' ? 0 : 1)) + ref.len;
	if (w >= len)
		return false;
	memcpy(out, base_uri.p, alen);
	w = alen;
	if (dir > 0) {
		memcpy(out + w, bpath.p, dir);
		w += dir;
	} else if (ref.p[0] != '/') {
		out[w++] = '/';
	}
	memcpy(out + w, ref.p, ref.len);
	w += ref.len;
	/* dot segments of the path part (before any '?') */
	q = memchr(out + alen, '?', w - alen);
	plen = q ? (size_t)(q - (out + alen)) : w - alen;
	{
		size_t np = plen;

		cp_remove_dots(out + alen, &np);
		memmove(out + alen + np, out + alen + plen, w - alen - plen);
		w -= plen - np;
	}
	out[w] = '\0';
	return true;
}

bool cache_cookie_field(struct slice name)
{
	return slice_eq_ci(name, "set-cookie") || slice_eq_ci(name, "set-cookie2");
}

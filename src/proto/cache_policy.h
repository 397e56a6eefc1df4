/* cache_policy.h - RFC 9111 rules for a shared cache, as pure functions over
 * parsed fields. No I/O, no clock: "now" is always a parameter. */
#ifndef HOPCACHE_CACHE_POLICY_H
#define HOPCACHE_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_date.h"
#include "http_parser.h"

#define CC_ABSENT (-1)

/* Cache-Control directives (RFC 9111 §5.2), from every Cache-Control field
 * of a message (lists combined, names case-insensitive, values token or
 * quoted-string; a malformed delta-seconds makes the directive invalid:
 * for max-age in a response that means "stale", RFC 9111 §4.2.1).
 * Decisions: a directive given twice keeps its first occurrence (§4.2.1);
 * delta-seconds above 2^31 are clamped to 2^31 (§1.2.2); a malformed
 * s-maxage counts as s-maxage=0; a malformed max-stale, min-fresh,
 * stale-while-revalidate or stale-if-error is ignored; a malformed max-age
 * in a request is treated as max-age=0 by cache_decide; unknown directives
 * are ignored (§5.2.3). */
struct cc {
	bool present;
	bool no_store, no_cache, private_, public_, must_revalidate, proxy_revalidate;
	bool only_if_cached, no_transform, immutable, must_understand;
	bool max_stale_any;     /* max-stale without a value */
	bool max_age_invalid;   /* max-age present but malformed */
	bool no_cache_qualified; /* no-cache="field,..." (treated like plain no-cache) */
	int64_t max_age, s_maxage, max_stale, min_fresh; /* seconds or CC_ABSENT */
	int64_t stale_while_revalidate, stale_if_error;   /* RFC 5861, or CC_ABSENT */
};

void cc_parse(const struct http_field *f, size_t n, struct cc *out);

/* What a request asks of the cache. */
struct cache_req {
	struct cc cc;
	bool pragma_no_cache;    /* Pragma: no-cache and no Cache-Control (§5.4) */
	bool has_authorization;  /* Authorization present (§3.5) */
	bool conditional;        /* If-None-Match / If-Modified-Since present */
	bool has_range;          /* Range present */
};

void cache_req_parse(const struct http_field *f, size_t n, struct cache_req *out);

/* Is a cache lookup possible for this method at all? (GET and HEAD; HEAD is
 * answered from a stored GET.) */
bool cache_method_cacheable(struct slice method);

/* May a shared cache store this response to this request? (RFC 9111 §3,
 * §3.5, shared-cache rules.) status: the final status; res_fields: the
 * response's fields as received. Returns NULL when storable, else a short
 * reason for logs and tests, checked in this order:
 *   "method"          not GET (HEAD is answered from a stored GET);
 *   "status"          not final, 206 (we store only complete responses) or
 *                     304; or a status that is not heuristically cacheable
 *                     (RFC 9110 §15.1: 200 203 204 300 301 308 404 405 410
 *                     414 501) without explicit freshness (s-maxage, max-age,
 *                     Expires) or public, e.g. a bare 302/307;
 *   "no-store"        in the request, or in the response (unless
 *                     must-understand with an understood status: §5.2.2.3);
 *   "must-understand" must-understand with a status we do not implement
 *                     (we understand the heuristic set + 302 303 307);
 *   "private"         always, even qualified private="..." (shared cache);
 *   "authorization"   request has Authorization and the response has none
 *                     of public, s-maxage, must-revalidate (§3.5);
 *   "vary *"          it could never be reused (§4.1);
 *   "no freshness"    no positive explicit lifetime, no validator (ETag or
 *                     a valid Last-Modified) and not public: nothing a
 *                     stored copy could ever be used or revalidated for.
 * Set-Cookie does not prevent storing (RFC 9111 has no such rule: origins
 * mark per-user responses private); [cache] store_set_cookie = no makes the
 * caller skip them.
 * heuristic_max is not needed: a heuristic needs Last-Modified, which is
 * itself a validator. */
const char *cache_storable(struct slice method, int status, const struct cache_req *req,
			   const struct http_field *res_fields, size_t res_n,
			   int64_t heuristic_max);

/* Freshness lifetime in seconds of a stored response (RFC 9111 §4.2.1,
 * shared cache): s-maxage, then max-age (malformed: 0), then Expires - Date
 * (first Expires field; invalid Expires such as "0": 0), then the heuristic
 * (10% of Date - Last-Modified, capped at heuristic_max; heuristic_max <= 0
 * disables it) for heuristically cacheable statuses (RFC 9110 §15.1) or
 * public responses (§4.2.2) without explicit freshness; else 0.
 * response_time is used when Date is missing. no-cache does not change the
 * lifetime: cache_decide forces validation instead. */
int64_t cache_freshness_lifetime(int status, const struct http_field *f, size_t n,
				 int64_t response_time, int64_t heuristic_max);

/* Current age in seconds (RFC 9111 §4.2.3): apparent_age = max(0,
 * response_time - Date); response_delay = response_time - request_time;
 * corrected_age_value = Age + response_delay; corrected_initial_age =
 * max(apparent_age, corrected_age_value); + resident_time (now -
 * response_time). Missing Date -> response_time; missing Age -> 0. Age
 * follows RFC 9111 §5.1: a list (one line "0, 7200" or several lines) ->
 * its first member; an invalid value ("abc", "-1", "1.5", "7200;x=y") ->
 * the field is ignored (0); past 2^31 -> 2^31. Negative delays (clock
 * steps) count as 0. */
int64_t cache_current_age(const struct http_field *f, size_t n, int64_t request_time,
			  int64_t response_time, int64_t now);

/* What to do with a stored response for a request (RFC 9111 §4, §4.2.4,
 * request directives §5.2.1, response directives §5.2.2, RFC 5861). */
enum cache_use {
	CACHE_USE_FRESH,          /* serve it */
	CACHE_USE_STALE,          /* serve it stale (max-stale allows it); add no warning */
	CACHE_USE_STALE_REVALIDATE, /* serve stale now and revalidate in the background
				      (stale-while-revalidate) */
	CACHE_USE_VALIDATE,       /* send a conditional request upstream first */
	CACHE_USE_MISS,           /* cannot use it (e.g. request no-store); fetch */
};

/* cache_decide, first rule that applies:
 *   request no-store                     -> MISS (we do not serve stored
 *                                           responses to it either)
 *   request no-cache, or Pragma: no-cache without Cache-Control -> VALIDATE
 *   response no-cache (qualified too)    -> VALIDATE
 *   request max-age < age (malformed request max-age: 0) -> VALIDATE
 *   request min-fresh > ttl              -> VALIDATE
 *   ttl > 0                              -> FRESH
 *   stale and must-revalidate, proxy-revalidate or s-maxage -> VALIDATE
 *                                           (never stale, not even max-stale)
 *   request max-stale (no value, or >= staleness) -> STALE
 *   response stale-while-revalidate >= staleness  -> STALE_REVALIDATE
 *   otherwise                            -> VALIDATE
 * stale_if_error_ok: the request's stale-if-error, or without one the
 * response's, covers the staleness (a fresh response is covered), and
 * neither must-revalidate, proxy-revalidate, s-maxage nor response no-cache
 * forbids stale use, and the request is not no-store.
 * only-if-cached is the caller's: when the decision is not FRESH or STALE
 * (or STALE_REVALIDATE, served without waiting) it answers 504 instead of
 * going upstream (RFC 9111 §5.2.1.7). Vary matching is also the caller's. */
struct cache_decision {
	enum cache_use use;
	int64_t age;      /* current age */
	int64_t ttl;      /* freshness lifetime - age (negative when stale) */
	bool stale_if_error_ok; /* on a 5xx/failure upstream, this stale response may be served */
};

void cache_decide(const struct cache_req *req, int status, const struct http_field *stored,
		  size_t stored_n, int64_t request_time, int64_t response_time, int64_t now,
		  int64_t heuristic_max, struct cache_decision *out);

/* Vary (RFC 9111 §4.1). cache_vary_star: Vary contains "*" (never matches).
 * cache_vary_names: the field names listed by every Vary field, in order,
 * as slices into the fields (not lower-cased: compare case-insensitively);
 * returns how many there are, which may exceed max (then only max written). */
bool cache_vary_star(const struct http_field *f, size_t n);
size_t cache_vary_names(const struct http_field *f, size_t n, struct slice *names, size_t max);

/* Normalised value of a request field for a Vary match (RFC 9111 §4.1):
 * for a field whose syntax is a list (Accept*, Cache-Control, TE, ...)
 * every field line joined by ",", OWS around commas removed; for any other
 * field the lines joined by ", ", bytes kept. Written to out
 * (truncated to len, not NUL-terminated; returns the full length). Absent
 * field -> "" with return 0 and *absent = true (a present empty field gives
 * 0 with *absent = false). Case and quoted-strings are kept as sent. */
size_t cache_vary_value(const struct http_field *f, size_t n, struct slice name, char *out,
			size_t len, bool *absent);

/* Validators for a conditional request upstream (RFC 9111 §4.3.1): write
 * "If-None-Match: <etag>\r\n" and/or "If-Modified-Since: <date>\r\n" built
 * from the stored response's ETag and (valid) Last-Modified, both when both
 * exist. Date is NOT used: it is not a validator. A line that does not fit
 * in len is left out whole (never truncated; nothing is NUL-terminated).
 * Returns bytes written (0: nothing to validate with). */
size_t cache_validators(const struct http_field *stored, size_t n, char *out, size_t len);

/* Does a stored response satisfy the client's own conditional request
 * (RFC 9110 §13.1.2 If-None-Match weak comparison over every list member of
 * every field line, "*" matches any stored response; §13.1.3
 * If-Modified-Since only when no If-None-Match, compared with the stored
 * Last-Modified, else its Date, RFC 9111 §4.3.2; an invalid date is
 * ignored)? Returns 304 to answer "not modified", or 0 to send the full
 * stored response. (412 cases do not apply to GET/HEAD.) */
int cache_conditional(const struct http_field *req, size_t req_n,
		      const struct http_field *stored, size_t stored_n);

/* Fields of a 304 that update the stored response (RFC 9111 §3.2, §4.3.4):
 * every field of the 304 replaces all stored fields of the same name, except
 * the ones that must not be updated: the §3.1 storage exceptions (hop-by-hop
 * fields per hop_is_hop_by_hop(), fields the 304's Connection lists,
 * Proxy-Authentication-Info), Content-Length (§3.2), Content-Range
 * (processed by the recipient, §3.2), and the fields the stored response
 * depends on (§3.2): Content-Encoding, Content-MD5 (they describe the
 * stored body bytes) and ETag (the one the 304 validated). keep_stored[i] is set false for stored fields
 * that are replaced; use_new[j] true for 304 fields that go into the
 * updated head. */
void cache_merge_304(const struct http_field *stored, size_t stored_n,
		     const struct http_field *fresh, size_t fresh_n, bool *keep_stored,
		     bool *use_new);

/* Range requests on a complete stored body (RFC 9110 §14.2, §14.4). */
enum cache_range_kind {
	CACHE_RANGE_NONE,          /* no (usable) Range: send 200 with the whole body */
	CACHE_RANGE_SINGLE,        /* send 206 with first..last */
	CACHE_RANGE_MULTI,         /* several ranges: send 206 multipart/byteranges */
	CACHE_RANGE_UNSATISFIABLE, /* send 416 with Content-Range: bytes *<len> */
};

struct cache_range {
	enum cache_range_kind kind;
	size_t n;                  /* ranges (SINGLE: 1) */
	uint64_t first[8], last[8];/* inclusive, at most 8 (more, or overlapping
				      ones: serve the whole body, RFC 9110 §14.2) */
};

/* If-Range (RFC 9110 §13.1.5) is evaluated against the stored ETag (strong
 * comparison: a weak tag never matches) / Last-Modified (exact equality of
 * the dates): when it does not match, the result is NONE.
 * Range (RFC 9110 §14.1.1, §14.2): unit "bytes" (case-insensitive), else
 * NONE; several Range fields, a syntax error or last < first -> NONE;
 * last-pos beyond the body is clamped; a suffix longer than the body selects
 * all of it; ranges starting at or beyond the end and "-0" are unsatisfiable
 * and skipped; none left -> UNSATISFIABLE. More than 8 satisfiable ranges or
 * any two overlapping -> NONE. An empty body (body_len 0) -> NONE. */
void cache_range_parse(const struct http_field *req, size_t req_n,
		       const struct http_field *stored, size_t stored_n, uint64_t body_len,
		       struct cache_range *out);

/* Invalidation (RFC 9111 §4.4): does a response with this status to a request
 * with this unsafe method invalidate the target URI (and same-origin
 * Location / Content-Location)? True for every method but the safe ones
 * (GET, HEAD, OPTIONS, TRACE; methods are case-sensitive, so "get" is an
 * unknown, unsafe method) and CONNECT (no resource URI), with a 2xx or 3xx
 * status. */
bool cache_invalidates(struct slice method, int status);

/* Same origin (scheme, host, port) as the request URI? base_uri must be an
 * absolute http(s) URI. Absolute refs: http/https only, scheme and host
 * compared case-insensitively, port with the scheme's default; userinfo ->
 * false. "//host/x" takes the base scheme. Path-absolute ("/x"), query-only
 * ("?q") and relative-path ("x", "../x") references are resolved against the
 * base (RFC 3986 §5.2, dot segments removed) and are same origin. A fragment
 * is dropped. Writes the absolute URI, NUL-terminated, into out when same
 * origin (false when it does not fit). Absolute refs are copied as sent:
 * the caller normalises them like any request URI for the cache key. */
bool cache_same_origin(struct slice base_uri, struct slice ref, char *out, size_t len);

/* Fields a response from the store never carries: the cookies it set were
 * for the client whose request fetched it (RFC 6265 §8). */
bool cache_cookie_field(struct slice name);

#endif

/* conn_cache.c - the cache stage of a client connection.
 *
 * conn.c calls in at three points: a GET/HEAD request head (look up; answer
 * a usable hit here), a final response head from upstream (validate, merge a
 * 304, decide whether to store), and the end of the response body (store
 * the complete object). The rules are cache_policy.c's; the store is
 * cache.c's; this file turns them into responses and Cache-Status
 * (RFC 9211) values.
 *
 * Keys (cache_key.h): the primary key names ("GET", the whole normalised
 * URI). A response with Vary is stored under a variant key (the same, the
 * marker's generation, each Vary'd name with the request's full value) and
 * the primary key holds a Vary marker naming the fields. Every record keeps
 * the identity it was stored for, and every read here compares it with the
 * identity asked for (get_checked): a record stored for another request is
 * a miss, never served.
 *
 * What a hit never carries: Set-Cookie and Set-Cookie2. A shared cache may
 * store a response that sets a cookie (`[cache] store_set_cookie`), but the
 * cookie was the first client's (RFC 6265 §8); other clients get the
 * response without it. */
#include "conn_cache.h"
#include "conn_cache_impl.h"
#include "head.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cache_key.h"
#include "cache_policy.h"
#include "cidr.h"
#include "config.h"
#include "conn.h"
#include "errors.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "timeval.h"

#define VARY_MAX 16
_Static_assert(VARY_MAX == 16, "conn_cache_response says \"more than 16 fields\"");
#define MARKER_GEN_LEN 16

/* The primary identity and key of a target: id and key filled, the
 * normalised URI kept in *uri (the caller frees it). false when out of
 * memory. */
static bool primary_of(const struct http_target *t, char **uri, size_t *ulen,
		       struct cache_ident *id, uint8_t key[CACHE_KEY_LEN])
{
	*uri = cache_uri_normal(t, ulen);
	if (*uri == NULL)
		return false;
	struct cache_key_input in = { .method_class = SLICE_LIT("GET"),
				      .uri = slice_make(*uri, *ulen) };
	return cache_key_make(&in, id, key) == 0;
}

/* The request's primary identity and key (c->rq->cache_uri, cache_id, cache_key). */
static bool make_primary(struct conn *c)
{
	free(c->rq->cache_uri);
	c->rq->cache_uri = NULL;
	return primary_of(&c->rq->target, &c->rq->cache_uri, &c->rq->cache_uri_len, &c->rq->cache_id,
			  c->rq->cache_key);
}

/* The identity of the request's variant for these Vary names and marker
 * generation (c->rq->cache_vid, cache_vkey); with no names, the primary. */
static bool make_variant(struct conn *c, const char *gen, const struct slice *names, size_t nn)
{
	struct cache_key_input in = {
		.method_class = SLICE_LIT("GET"),
		.uri = slice_make(c->rq->cache_uri, c->rq->cache_uri_len),
		.generation = slice_make(gen, strlen(gen)),
		.vary_names = names,
		.nvary = nn,
		.req = c->rq->req.fields,
		.nreq = c->rq->req.nfields,
	};
	return cache_key_make(&in, &c->rq->cache_vid, c->rq->cache_vkey) == 0;
}

/* The primary key of a target, for deletion (PURGE, invalidation). */
static bool primary_key_of(const struct http_target *t, uint8_t key[CACHE_KEY_LEN])
{
	return cache_key_primary(t, key) == 0;
}

/* Read the record at key and check that it was stored for identity id. A
 * record stored for another identity (a SHA-256 collision, or a damaged
 * store) is a miss: counted, logged, never served. Returns as cache_get. */
static int get_checked(struct conn *c, const uint8_t key[CACHE_KEY_LEN],
		       const struct cache_ident *id, struct cache_object *obj,
		       struct cache_read **rd)
{
	int r = cache_get(c->w->cache, key, obj, rd);
	if (r == 1 && !cache_ident_equal(id, obj->ident, obj->ident_len)) {
		cache_release(*rd);
		*rd = NULL;
		metrics_cache_key_mismatch(c->w->metrics);
		log_warn("cache: the record under the key of %s was stored for another request;"
			 " treated as a miss", c->rq->cache_uri);
		return 0;
	}
	return r;
}

/* A Vary marker is stored at the primary key: its head names the fields the
 * variants differ by, and a generation that is part of every variant key.
 * Deleting the marker (PURGE, invalidation) thus makes every variant
 * unreachable at once; they age out of the store by LRU. Reads the names
 * (slices into the marker) and the generation; false when malformed. */
static bool marker_read(const struct cache_object *obj, struct slice *names, size_t *nn,
			char gen[MARKER_GEN_LEN + 1])
{
	struct http_field f[4];
	struct http_response res = { .fields = f, .fields_cap = 4 };
	struct http_limits lim = { obj->head_len + 1, obj->head_len + 1, 4 };
	if (http_parse_response(obj->head, obj->head_len, &res, &lim) != (ssize_t)obj->head_len)
		return false;
	const struct http_field *g = http_field_find(f, res.nfields, "generation");
	*nn = cache_vary_names(f, res.nfields, names, VARY_MAX);
	if (g == NULL || g->value.len != MARKER_GEN_LEN || *nn == 0 || *nn > VARY_MAX)
		return false;
	memcpy(gen, g->value.p, MARKER_GEN_LEN);
	gen[MARKER_GEN_LEN] = '\0';
	return true;
}

/* A new marker generation: 16 random hex digits. */
static void marker_new_gen(char gen[MARKER_GEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[MARKER_GEN_LEN / 2];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
		memcpy(rnd, &v, sizeof(rnd));
	}
	for (size_t i = 0; i < sizeof(rnd); i++) {
		gen[2 * i] = hex[rnd[i] >> 4];
		gen[2 * i + 1] = hex[rnd[i] & 15];
	}
	gen[MARKER_GEN_LEN] = '\0';
}

/* Parse a stored head into c->rq->res (fields point into the map). A stored
 * head holds at most max_headers + 1 fields (a response's kept fields and
 * the Date we add; a 304 merge that would make more is not stored). It is
 * parsed into a spare array first: on failure c->rq->res is left exactly as it
 * was (the upstream response it holds may still be relayed). */
static bool parse_stored(struct conn *c, const struct cache_object *obj)
{
	static struct http_field *spare; /* one per worker process */
	static size_t spare_cap;
	size_t cap = c->rq->res.fields_cap;
	if (spare_cap != cap) {
		free(spare);
		spare = calloc(cap, sizeof(*spare));
		spare_cap = spare != NULL ? cap : 0;
		if (spare == NULL)
			return false;
	}
	struct http_response res = { .fields = spare, .fields_cap = cap };
	struct http_limits lim = { obj->head_len + 1, obj->head_len + 1, cap };
	ssize_t r = http_parse_response(obj->head, obj->head_len, &res, &lim);
	if (r <= 0 || (size_t)r != obj->head_len)
		return false;
	/* the request's own array (it is freed with the request) takes the
	 * parsed fields */
	memcpy(c->rq->res.fields, res.fields, res.nfields * sizeof(*res.fields));
	res.fields = c->rq->res.fields;
	c->rq->res = res;
	return true;
}

/* End the read of a stored entry whose head was parsed into c->rq->res: the
 * fields point into the map, so they go with it. */
static void release_stored(struct conn *c, struct cache_read *rd)
{
	cache_release(rd);
	c->rq->res.status = 0;
	c->rq->res.nfields = 0;
}

/* Look up the request's entry; follows a Vary marker. Returns 1 found (obj,
 * rd, c->rq->cache_vkey set), 0 absent (c->rq->cache_fwd says why), -1 error. */
static int lookup(struct conn *c, struct cache_object *obj, struct cache_read **rd)
{
	int r = get_checked(c, c->rq->cache_key, &c->rq->cache_id, obj, rd);
	if (r <= 0) {
		c->rq->cache_fwd = "uri-miss";
		return r;
	}
	if (!(obj->flags & CACHE_VARY)) {
		memcpy(c->rq->cache_vkey, c->rq->cache_key, CACHE_KEY_LEN);
		if (cache_ident_copy(&c->rq->cache_vid, &c->rq->cache_id) == 0)
			return 1;
		cache_release(*rd);
		*rd = NULL;
		return -1;
	}
	/* A Vary marker: its head lists the fields the variants differ by. */
	struct slice names[VARY_MAX];
	size_t nn = 0;
	char gen[MARKER_GEN_LEN + 1];
	if (!marker_read(obj, names, &nn, gen)) {
		cache_release(*rd);
		*rd = NULL;
		c->rq->cache_fwd = "vary-miss";
		return 0;
	}
	bool made = make_variant(c, gen, names, nn); /* names point into the marker */
	cache_release(*rd);
	*rd = NULL;
	if (!made)
		return -1;
	r = get_checked(c, c->rq->cache_vkey, &c->rq->cache_vid, obj, rd);
	if (r == 0)
		c->rq->cache_fwd = "vary-miss";
	return r;
}

/* Does the stored response allow a request with Authorization to use it
 * (RFC 9111 §3.5)? */
static bool auth_allows(const struct conn *c)
{
	struct cc cc;
	cc_parse(c->rq->res.fields, c->rq->res.nfields, &cc);
	return cc.public_ || cc.s_maxage != CC_ABSENT || cc.must_revalidate;
}

void conn_cache_reset(struct conn *c)
{
	c->rq->cache_on = false;
	c->rq->cache_validating = false;
	c->rq->cache_stale_if_error = false;
	c->rq->cache_stored = false;
	c->rq->cache_validators_len = 0;
	c->rq->cache_fwd = NULL;
}

/* The stored entry for the request, when there is one it may use: 1 with
 * obj and rd set (its head parsed into c->rq->res), else 0 (cache_fwd says
 * why). */
static int find_stored(struct conn *c, struct cache_object *obj, struct cache_read **rd)
{
	int r = c->rq->cache_fwd == NULL ? lookup(c, obj, rd) : 0;
	if (r < 0)
		c->rq->cache_fwd = "miss";
	if (r == 1 && !parse_stored(c, obj)) {
		cache_release(*rd); /* c->rq->res is untouched */
		cache_delete(c->w->cache, c->rq->cache_vkey);
		c->rq->cache_fwd = "miss";
		r = 0;
	}
	if (r == 1 && c->rq->creq.has_authorization && !auth_allows(c)) {
		release_stored(c, *rd);
		c->rq->cache_fwd = "request";
		r = 0;
	}
	return r == 1;
}

/* Answer the request from the store (fresh, stale as allowed, or stale
 * while it is revalidated in the background). */
static void serve_hit(struct conn *c, const struct cache_object *obj, struct cache_read *rd,
		      const struct cache_decision *d)
{
	struct worker *w = c->w;
	bool swr = d->use == CACHE_USE_STALE_REVALIDATE;
	char cs[128];
	snprintf(cs, sizeof(cs), "%s; hit; ttl=%lld%s", w->cfg->via, (long long)d->ttl,
		 swr ? "; detail=stale-while-revalidate" : "");
	if (!conn_cache_serve(c, obj, d->age, cs, NULL, rd))
		cache_release(rd);
	c->rq->res.nfields = 0; /* they pointed into the map */
	if (!swr)
		cache_touch(w->cache, c->rq->cache_vkey);
	cache_count(w->cache, 1, 0);
	c->rq->outcome = OUTCOME_HIT;
	if (swr)
		fetch_in_background(c);
	conn_done(c);
}

/* Our validators for the stored response (c->rq->res), sized to it: none
 * is ever left out. */
static void make_validators(struct conn *c)
{
	struct request *rq = c->rq;
	const struct http_field *etag = http_field_find(rq->res.fields, rq->res.nfields, "etag");
	const struct http_field *lm =
		http_field_find(rq->res.fields, rq->res.nfields, "last-modified");
	size_t need = 64 + (etag != NULL ? etag->value.len : 0) + (lm != NULL ? lm->value.len : 0);
	free(rq->cache_validators);
	rq->cache_validators = malloc(need);
	if (rq->cache_validators != NULL)
		rq->cache_validators_len =
			cache_validators(rq->res.fields, rq->res.nfields, rq->cache_validators, need);
	rq->cache_validating = rq->cache_validators_len > 0;
}

/* The request goes upstream: behind the fetch in flight for its key, or
 * leading it. Returns true when it waits. */
static bool go_upstream(struct conn *c)
{
	if (fetch_wait(c))
		return true;
	fetch_lead(c);
	cache_count(c->w->cache, 0, 1);
	return false;
}

bool conn_cache_request(struct conn *c)
{
	struct worker *w = c->w;
	struct request *rq = c->rq;
	conn_cache_reset(c);
	/* An upgrade asks for a connection, never for a cacheable response:
	 * no lookup, no collapsed forwarding, never stored. */
	if (w->cache == NULL || !cache_method_cacheable(rq->req.method) ||
	    rq->target.form != HTTP_TARGET_ABSOLUTE || rq->upgrading)
		return false;
	if (!make_primary(c)) {
		log_error("cache: out of memory computing the key of a request; not cached");
		return false;
	}
	rq->cache_on = true;
	rq->cache_req_time = time(NULL);
	cache_req_parse(rq->req.fields, rq->req.nfields, &rq->creq);
	if (rq->creq.cc.no_store || rq->creq.cc.no_cache || rq->creq.pragma_no_cache) {
		/* The client asked for a fresh response (RFC 9111 §5.2.1). */
		rq->cache_fwd = "request";
		if (!rq->creq.cc.only_if_cached)
			return false;
	}
	struct cache_object obj;
	struct cache_read *rd = NULL;
	if (!find_stored(c, &obj, &rd)) {
		if (rq->creq.cc.only_if_cached) {
			/* RFC 9111 §5.2.1.7: 504 when nothing stored fits. */
			c->client_keepalive = c->client_keepalive && rq->rbody.done;
			conn_fail(c, 504, OUTCOME_NONE, "only-if-cached: nothing stored fits");
			return true;
		}
		if (rq->cache_fwd == NULL || strcmp(rq->cache_fwd, "request") != 0)
			return go_upstream(c);
		cache_count(w->cache, 0, 1);
		return false;
	}
	struct cache_decision d;
	cache_decide(&rq->creq, rq->res.status, rq->res.fields, rq->res.nfields, obj.request_time,
		     obj.response_time, time(NULL), (int64_t)w->cfg->cache_heuristic_max, &d);
	if (d.use == CACHE_USE_FRESH || d.use == CACHE_USE_STALE ||
	    (d.use == CACHE_USE_STALE_REVALIDATE && !rq->creq.cc.only_if_cached)) {
		serve_hit(c, &obj, rd, &d);
		return true;
	}
	/* Stale (or must be validated): ask upstream with our validators,
	 * unless the client sent its own conditionals (then its 304 is its). */
	if (d.use != CACHE_USE_MISS && !rq->creq.conditional && !rq->head_request)
		make_validators(c);
	rq->cache_stale_if_error = d.stale_if_error_ok;
	rq->cache_fwd = "stale";
	release_stored(c, rd);
	if (rq->creq.cc.only_if_cached) {
		conn_fail(c, 504, OUTCOME_NONE, "only-if-cached: the stored response is stale");
		return true;
	}
	return go_upstream(c);
}

/* Serve the stored entry again (after a 304 merge or when upstream failed
 * and stale-if-error allows it). Returns false when it is gone. */
static bool serve_again(struct conn *c, bool validated, int fwd_status, const char *extra)
{
	struct cache_object obj;
	struct cache_read *rd = NULL;
	if (get_checked(c, c->rq->cache_vkey, &c->rq->cache_vid, &obj, &rd) != 1)
		return false;
	if (!parse_stored(c, &obj)) {
		cache_release(rd);
		return false;
	}
	int64_t now = time(NULL);
	int64_t age = cache_current_age(c->rq->res.fields, c->rq->res.nfields, obj.request_time,
					obj.response_time, now);
	int64_t life = cache_freshness_lifetime(c->rq->res.status, c->rq->res.fields, c->rq->res.nfields,
						obj.response_time,
						(int64_t)c->w->cfg->cache_heuristic_max);
	char cs[128];
	if (validated)
		snprintf(cs, sizeof(cs), "%s; fwd=stale; fwd-status=%d; stored; ttl=%lld",
			 c->w->cfg->via, fwd_status, (long long)(life - age));
	else
		snprintf(cs, sizeof(cs), "%s; hit; fwd=stale; fwd-status=%d; ttl=%lld",
			 c->w->cfg->via, fwd_status, (long long)(life - age));
	if (!conn_cache_serve(c, &obj, age, cs, extra, rd))
		cache_release(rd);
	c->rq->res.nfields = 0; /* they pointed into the map */
	return true;
}

/* Invalidate the target URI and same-origin Location / Content-Location
 * after a successful unsafe request (RFC 9111 §4.4). */
static void invalidate(struct conn *c)
{
	struct cache *store = c->w->cache;
	char *uri = NULL;
	size_t ulen = 0;
	struct cache_ident id = { 0 };
	uint8_t key[CACHE_KEY_LEN];
	if (primary_of(&c->rq->target, &uri, &ulen, &id, key))
		cache_delete(store, key);
	cache_ident_free(&id);
	static const char *const names[] = { "location", "content-location" };
	for (size_t i = 0; uri != NULL && i < 2; i++) {
		const struct http_field *f = http_field_find(c->rq->res.fields, c->rq->res.nfields, names[i]);
		if (f == NULL)
			continue;
		/* the resolved reference is never longer than both together */
		size_t cap = ulen + f->value.len + 8;
		char *abs = malloc(cap);
		struct http_target t;
		if (abs != NULL && cache_same_origin(slice_make(uri, ulen), f->value, abs, cap) &&
		    http_parse_target(SLICE_LIT("GET"), slice_make(abs, strlen(abs)), &t) == 0 &&
		    primary_key_of(&t, key))
			cache_delete(store, key);
		free(abs);
	}
	free(uri);
}

static bool merge_304(struct conn *c);

/* A response that varies on a field this proxy writes per client
 * (X-Forwarded-For, Forwarded: the client's address) was selected by a
 * value the request as received does not hold, so no key can name it.
 * Returns why it is not stored, or NULL. */
static const char *varies_on_our_fields(const struct config *cfg, const struct http_field *f,
					size_t n)
{
	struct slice names[VARY_MAX];
	size_t nn = cache_vary_names(f, n, names, VARY_MAX);
	for (size_t i = 0; i < nn && i < VARY_MAX; i++) {
		if (cfg->x_forwarded_for && slice_eq_ci(names[i], "x-forwarded-for"))
			return "Vary: X-Forwarded-For, which this proxy sets per client";
		if (cfg->forwarded && slice_eq_ci(names[i], "forwarded"))
			return "Vary: Forwarded, which this proxy sets per client";
	}
	return NULL;
}

/* Two lists of field names, the same (case-insensitive, in order)? */
static bool names_equal(const struct slice *a, size_t na, const struct slice *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!slices_eq_ci(a[i], b[i]))
			return false;
	return true;
}

/* Does the Vary marker stored now name these fields? Then its generation
 * is written to gen. */
static bool current_generation(struct conn *c, const struct slice *names, size_t nn,
			       char gen[MARKER_GEN_LEN + 1])
{
	struct cache_object mo;
	struct cache_read *mrd = NULL;
	struct slice now[VARY_MAX];
	size_t now_nn = 0;
	char g[MARKER_GEN_LEN + 1];
	bool same = false;
	if (get_checked(c, c->rq->cache_key, &c->rq->cache_id, &mo, &mrd) == 1) {
		same = (mo.flags & CACHE_VARY) && marker_read(&mo, now, &now_nn, g) &&
		       names_equal(now, now_nn, names, nn);
		cache_release(mrd);
	}
	if (same)
		memcpy(gen, g, sizeof(g));
	return same;
}

/* The head of a Vary marker naming these fields with this generation (a
 * new string), or NULL when out of memory. */
static char *marker_text(const struct slice *names, size_t nn, const char *gen)
{
	struct evbuffer *m = evbuffer_new();
	if (m == NULL)
		return NULL;
	evbuffer_add_printf(m, "HTTP/1.1 200 OK\r\nVary: ");
	for (size_t i = 0; i < nn; i++)
		evbuffer_add_printf(m, "%s%.*s", i ? ", " : "", (int)names[i].len, names[i].p);
	evbuffer_add_printf(m, "\r\nGeneration: %s\r\n\r\n", gen);
	size_t mlen = evbuffer_get_length(m);
	char *out = malloc(mlen + 1);
	if (out != NULL) {
		evbuffer_remove(m, out, mlen);
		out[mlen] = '\0';
	}
	evbuffer_free(m);
	return out;
}

/* At store time, the variant joins the marker that is there now. A PURGE
 * or an invalidation may have deleted the marker this response's head saw
 * while the body came: its generation must not be written back (every
 * variant stored under it would be reachable again). Without a marker of
 * the same fields, a new generation starts; the variant's identity follows
 * the generation. false when it cannot be stored (out of memory). */
static bool settle_generation(struct conn *c)
{
	struct cache_object mine = { .head = c->rq->cache_marker, .head_len = strlen(c->rq->cache_marker) };
	struct slice names[VARY_MAX];
	size_t nn = 0;
	char gen[MARKER_GEN_LEN + 1], now_gen[MARKER_GEN_LEN + 1] = "";
	if (!marker_read(&mine, names, &nn, gen))
		return false;
	bool same = current_generation(c, names, nn, now_gen);
	if (same && strcmp(now_gen, gen) == 0)
		return true;
	if (!same)
		marker_new_gen(now_gen);
	char *m = marker_text(names, nn, now_gen);
	bool ok = m != NULL && make_variant(c, now_gen, names, nn); /* names: the old text */
	free(c->rq->cache_marker);
	c->rq->cache_marker = m;
	return ok;
}

/* Get ready to store the response in c->rq->res: keep its head as it leaves
 * the header stage, decide its identity (the variant's, decided now while
 * the response fields are at hand, and the Vary marker to write with it),
 * and tee its body. false when it cannot be stored (out of memory, or Vary
 * lists more than VARY_MAX fields). */
static bool prepare_store(struct conn *c, const bool *keep)
{
	struct worker *w = c->w;
	struct slice names[VARY_MAX];
	size_t nn = cache_vary_names(c->rq->res.fields, c->rq->res.nfields, names, VARY_MAX);
	if (nn > VARY_MAX)
		return false;
	if (c->rq->cache_head == NULL && (c->rq->cache_head = evbuffer_new()) == NULL)
		return false;
	evbuffer_drain(c->rq->cache_head, evbuffer_get_length(c->rq->cache_head));
	head_status(c->rq->cache_head, c->rq->res.status, c->rq->res.reason);
	head_fields(c->rq->cache_head, c->rq->res.fields, c->rq->res.nfields, keep, -1);
	head_date_if_missing(c->rq->cache_head, c->rq->res.fields, c->rq->res.nfields); /* as sent */
	head_end(c->rq->cache_head, false);
	c->rq->cache_response_time = time(NULL);

	free(c->rq->cache_marker);
	c->rq->cache_marker = NULL;
	char gen[MARKER_GEN_LEN + 1] = "";
	if (nn > 0) {
		/* Join the current marker's generation when it names the same
		 * fields; else this response starts a new one. */
		if (!current_generation(c, names, nn, gen))
			marker_new_gen(gen);
		c->rq->cache_marker = marker_text(names, nn, gen);
		if (c->rq->cache_marker == NULL || !make_variant(c, gen, names, nn))
			return false;
	} else {
		memcpy(c->rq->cache_vkey, c->rq->cache_key, CACHE_KEY_LEN);
		if (cache_ident_copy(&c->rq->cache_vid, &c->rq->cache_id) != 0)
			return false;
	}
	if ((c->rq->sbody.tee = evbuffer_new()) == NULL)
		return false;
	c->rq->sbody.tee_max = w->cfg->cache_max_object;
	c->rq->cache_stored = true;
	return true;
}

int conn_cache_response(struct conn *c, const bool *keep, const struct http_framing *fr,
			char *cache_status, size_t cslen)
{
	struct worker *w = c->w;
	const struct config *cfg = w->cfg;
	cache_status[0] = '\0';
	if (w->cache == NULL)
		return 0;
	if (!c->rq->cache_on) {
		if (cache_invalidates(c->rq->req.method, c->rq->res.status))
			invalidate(c);
		return 0;
	}
	int status = c->rq->res.status;
	if (c->rq->cache_validating && status == 304) {
		/* RFC 9111 §4.3.4: update the stored headers, serve the stored
		 * response. A cookie the 304 sets is this client's: it goes
		 * to this client, not into the store. */
		struct evbuffer *cookies = evbuffer_new(); /* NULL: out of memory, none */
		for (size_t i = 0; cookies != NULL && i < c->rq->res.nfields; i++)
			if (keep[i] && cache_cookie_field(c->rq->res.fields[i].name))
				evbuffer_add_printf(cookies, "%.*s: %.*s\r\n",
						    (int)c->rq->res.fields[i].name.len, c->rq->res.fields[i].name.p,
						    (int)c->rq->res.fields[i].value.len,
						    c->rq->res.fields[i].value.p);
		if (cookies != NULL)
			evbuffer_add(cookies, "", 1);
		bool keep_record = merge_304(c);
		fetch_leave(c);
		c->rq->outcome = OUTCOME_REFRESH;
		bool served = serve_again(c, true, 304,
					  cookies != NULL ? (const char *)evbuffer_pullup(cookies, -1)
							  : NULL);
		if (cookies != NULL)
			evbuffer_free(cookies);
		if (!keep_record) {
			/* this client's request was validated; nobody else's was */
			log_debug("304 for %s changes Vary: the stored response is dropped",
				  c->rq->cache_uri);
			cache_delete(w->cache, c->rq->cache_vkey);
		}
		/* The 304 answers our validators, not the client's request:
		 * without the stored response it cannot be relayed. */
		return served ? 1 : -1;
	}
	if (c->rq->cache_stale_if_error &&
	    (status == 500 || status == 502 || status == 503 || status == 504)) {
		/* RFC 5861 §4: stale-if-error. */
		if (serve_again(c, false, status, NULL)) {
			c->rq->outcome = OUTCOME_STALE;
			return 1;
		}
	}
	const char *why = cache_storable(c->rq->req.method, status, &c->rq->creq, c->rq->res.fields,
					 c->rq->res.nfields, (int64_t)cfg->cache_heuristic_max);
	if (why == NULL && !cfg->cache_store_set_cookie &&
	    http_field_find(c->rq->res.fields, c->rq->res.nfields, "set-cookie") != NULL)
		why = "set-cookie ([cache] store_set_cookie = no)";
	if (why == NULL)
		why = varies_on_our_fields(cfg, c->rq->res.fields, c->rq->res.nfields);
	struct slice vnames[VARY_MAX];
	if (why == NULL && cache_vary_names(c->rq->res.fields, c->rq->res.nfields, vnames, VARY_MAX) >
				   VARY_MAX)
		why = "Vary lists more than 16 fields";
	bool store = why == NULL && !c->rq->head_request && fr->kind != HTTP_BODY_NONE &&
		     !(fr->kind == HTTP_BODY_LENGTH && fr->length > cfg->cache_max_object);
	if (why == NULL && fr->kind == HTTP_BODY_NONE && status == 204 && !c->rq->head_request)
		store = true; /* 204: stored with an empty body */
	if (why != NULL)
		log_debug("not storing %s: %s", c->rq->cache_uri, why);
	if (store && !prepare_store(c, keep)) {
		log_error("cache: out of memory preparing to store %s; not stored",
			  c->rq->cache_uri);
		store = false;
	}
	int n = snprintf(cache_status, cslen, "%s; fwd=%s", cfg->via,
			 c->rq->cache_fwd != NULL ? c->rq->cache_fwd : "miss");
	if (c->rq->cache_fwd != NULL && strcmp(c->rq->cache_fwd, "stale") == 0 && n > 0 &&
	    (size_t)n < cslen)
		n += snprintf(cache_status + n, cslen - (size_t)n, "; fwd-status=%d", status);
	if (store && n > 0 && (size_t)n < cslen)
		snprintf(cache_status + n, cslen - (size_t)n, "; stored");
	if (!store)
		fetch_leave(c); /* waiters fetch on their own */
	return 0;
}

/* Do two field sets' Vary lists name the same fields (case-insensitive,
 * in order)? */
static bool same_vary(const struct http_field *a, size_t na, const struct http_field *b,
		      size_t nb)
{
	struct slice an[VARY_MAX + 1], bn[VARY_MAX + 1];
	size_t x = cache_vary_names(a, na, an, VARY_MAX + 1);
	size_t y = cache_vary_names(b, nb, bn, VARY_MAX + 1);
	if (x != y || x > VARY_MAX)
		return false;
	return names_equal(an, x, bn, y);
}

/* Update the stored entry from a 304 (c->rq->res holds the 304's fields).
 * Returns false when the 304 changes what the response varies on: the
 * record's key was made for the old Vary, so it must not be kept (the
 * caller serves this client, then deletes the record). */
static bool merge_304(struct conn *c)
{
	struct cache *store = c->w->cache;
	struct cache_object obj;
	struct cache_read *rd = NULL;
	bool keep_record = true;
	if (get_checked(c, c->rq->cache_vkey, &c->rq->cache_vid, &obj, &rd) != 1)
		return true;
	/* The 304's fields are c->rq->res; the stored ones are parsed into a
	 * separate array. */
	size_t cap = c->rq->res.fields_cap;
	struct http_field *sf = calloc(cap, sizeof(*sf));
	bool *keep_stored = calloc(cap, sizeof(bool));
	bool *use_new = calloc(cap, sizeof(bool));
	struct evbuffer *head = evbuffer_new();
	struct http_response stored = { .fields = sf, .fields_cap = cap };
	struct http_limits lim = { obj.head_len + 1, obj.head_len + 1, cap };
	if (sf == NULL || keep_stored == NULL || use_new == NULL || head == NULL ||
	    http_parse_response(obj.head, obj.head_len, &stored, &lim) != (ssize_t)obj.head_len)
		goto out;
	if (http_field_find(c->rq->res.fields, c->rq->res.nfields, "vary") != NULL &&
	    !same_vary(stored.fields, stored.nfields, c->rq->res.fields, c->rq->res.nfields)) {
		/* RFC 9111 §4.1: the record answers the requests its key was
		 * made for, which knew only the old Vary */
		keep_record = false;
		goto out;
	}
	cache_merge_304(stored.fields, stored.nfields, c->rq->res.fields, c->rq->res.nfields, keep_stored,
			use_new);
	size_t merged = 0;
	/* the 304's cookies are its client's (conn_cache_response), not the store's */
	for (size_t j = 0; j < c->rq->res.nfields; j++)
		if (cache_cookie_field(c->rq->res.fields[j].name))
			use_new[j] = false;
	for (size_t i = 0; i < stored.nfields; i++)
		merged += keep_stored[i];
	for (size_t j = 0; j < c->rq->res.nfields; j++)
		merged += use_new[j];
	if (merged > cap) {
		/* more fields than a stored head may hold (parse_stored): keep
		 * the stored response as it is; it was validated all the same */
		log_debug("304 for %s: merged head of %zu fields not stored", c->rq->cache_uri, merged);
		goto out;
	}
	head_status(head, stored.status, stored.reason);
	head_fields(head, sf, stored.nfields, keep_stored, -1);
	head_fields(head, c->rq->res.fields, c->rq->res.nfields, use_new, -1);
	head_end(head, false);
	struct cache_object upd = {
		.flags = 0,
		.request_time = c->rq->cache_req_time,
		.response_time = time(NULL),
		.head = (const char *)evbuffer_pullup(head, -1),
		.head_len = evbuffer_get_length(head),
		.body = obj.body,
		.body_len = obj.body_len,
		.ident = c->rq->cache_vid.p,
		.ident_len = c->rq->cache_vid.len,
	};
	/* The body is still in the map: copy it before the read ends. */
	char *body = upd.body_len > 0 ? malloc(upd.body_len) : NULL;
	if (upd.body_len > 0 && body == NULL)
		goto out;
	if (body != NULL)
		memcpy(body, obj.body, upd.body_len);
	upd.body = body;
	cache_release(rd);
	rd = NULL;
	cache_put(store, c->rq->cache_vkey, &upd);
	free(body);
out:
	if (rd != NULL)
		cache_release(rd);
	if (head != NULL)
		evbuffer_free(head);
	free(sf);
	free(keep_stored);
	free(use_new);
	return keep_record;
}

static void store_response(struct conn *c, bool complete);

void conn_cache_finish(struct conn *c, bool complete)
{
	store_response(c, complete);
	fetch_leave(c);
}

/* Store the response when it is complete and was chosen for storing. */
static void store_response(struct conn *c, bool complete)
{
	if (!c->rq->cache_stored)
		return;
	c->rq->cache_stored = false;
	struct evbuffer *tee = c->rq->sbody.tee;
	c->rq->sbody.tee = NULL;
	struct cache *store = c->w->cache;
	if (store == NULL || !complete || c->rq->cache_head == NULL ||
	    (tee == NULL && c->rq->res.status != 204)) {
		/* truncated, failed or too large: never stored */
		if (tee != NULL)
			evbuffer_free(tee);
		return;
	}
	if (c->rq->cache_marker != NULL && !settle_generation(c)) {
		if (tee != NULL)
			evbuffer_free(tee);
		return;
	}
	size_t blen = tee != NULL ? evbuffer_get_length(tee) : 0;
	struct cache_object obj = {
		.flags = 0,
		.request_time = c->rq->cache_req_time,
		.response_time = c->rq->cache_response_time,
		.head = (const char *)evbuffer_pullup(c->rq->cache_head, -1),
		.head_len = evbuffer_get_length(c->rq->cache_head),
		.body = blen > 0 ? (const char *)evbuffer_pullup(tee, -1) : "",
		.body_len = blen,
		.ident = c->rq->cache_vid.p,
		.ident_len = c->rq->cache_vid.len,
	};
	if (cache_put(store, c->rq->cache_vkey, &obj) == 1 && c->rq->cache_marker != NULL) {
		struct cache_object m = {
			.flags = CACHE_VARY,
			.request_time = obj.request_time,
			.response_time = obj.response_time,
			.head = c->rq->cache_marker,
			.head_len = strlen(c->rq->cache_marker),
			.body = "",
			.body_len = 0,
			.ident = c->rq->cache_id.p,
			.ident_len = c->rq->cache_id.len,
		};
		cache_put(store, c->rq->cache_key, &m);
	}
	evbuffer_drain(c->rq->cache_head, evbuffer_get_length(c->rq->cache_head));
	if (tee != NULL)
		evbuffer_free(tee);
}

bool conn_cache_upstream_failed(struct conn *c, int status)
{
	if (c->w->cache == NULL || !c->rq->cache_on || !c->rq->cache_stale_if_error)
		return false;
	if (!serve_again(c, false, status, NULL))
		return false;
	c->rq->outcome = OUTCOME_STALE;
	conn_done(c);
	return true;
}

void conn_cache_purge(struct conn *c)
{
	struct worker *w = c->w;
	if (!cidr_list_match(w->cfg->purge_allow, w->cfg->npurge_allow,
			     (const struct sockaddr *)&c->peer)) {
		conn_fail(c, 403, OUTCOME_HTTP_REQUEST_DENIED, "PURGE is not allowed from this address");
		return;
	}
	if (w->cache == NULL) {
		conn_fail(c, 404, OUTCOME_NONE, "the cache is disabled");
		return;
	}
	uint8_t key[CACHE_KEY_LEN];
	if (!primary_key_of(&c->rq->target, key)) {
		conn_fail(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
		return;
	}
	int r = cache_delete(w->cache, key);
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	c->rq->status = r == 1 ? 200 : 404;
	head_status_str(out, c->rq->status, r == 1 ? "OK" : "Not Found");
	head_framing(out, HTTP_BODY_LENGTH, 0);
	head_via(out, c->rq->req.minor, w->cfg->via);
	conn_auth_reply(c, out);
	head_end(out, !(c->client_keepalive && c->rq->rbody.done));
	if (!c->rq->rbody.done)
		c->client_keepalive = false;
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->outcome = r == 1 ? OUTCOME_PURGED : OUTCOME_OK;
	conn_done(c);
}

void conn_cache_free(struct conn *c)
{
	free(c->rq->cache_uri);
	free(c->rq->cache_marker);
	free(c->rq->cache_ctype);
	free(c->rq->cache_validators);
	c->rq->cache_uri = c->rq->cache_marker = c->rq->cache_ctype = c->rq->cache_validators = NULL;
	cache_ident_free(&c->rq->cache_id);
	cache_ident_free(&c->rq->cache_vid);
	if (c->rq->cache_head != NULL)
		evbuffer_free(c->rq->cache_head);
	c->rq->cache_head = NULL;
}

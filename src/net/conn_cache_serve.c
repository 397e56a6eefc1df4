/* conn_cache_serve.c - a response from the store, written for the client:
 * the stored response, or the 304, 206 (single or multipart/byteranges) or
 * 416 made from it (RFC 9110 §13, §14), with the current Age (RFC 9111
 * §5.1), Cache-Status (RFC 9211), and never the first client's cookies. */
#include "conn_cache.h"
#include "conn_cache_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cache.h"
#include "cache_policy.h"
#include "conn.h"
#include "errors.h"
#include "config.h"
#include "head.h"
#include "worker.h"

/* Bodies sent straight from the LMDB map: each holds its read transaction
 * until the socket has taken the bytes. Past this many in one worker, bodies
 * are copied instead, so slow clients cannot pin reader slots or old pages
 * without bound. */
#define MAP_REFS_MAX 128
static unsigned map_refs;

/* The stored fields a 304 carries (RFC 9110 §15.4.5). */
static bool in_304(struct slice name)
{
	static const char *const keep[] = { "cache-control", "content-location", "date",
					    "etag", "expires", "vary" };
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (slice_eq_ci(name, keep[i]))
			return true;
	return false;
}

/* The socket took a body that pointed into the map: end its read. */
static void map_ref_done(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	cache_release(arg);
	map_refs--;
}

/* Write the stored response (or a 304/206/416 made from it) to the client,
 * with extra (complete field lines, or NULL) after the stored fields. The
 * body goes from the map to the socket without a copy in between when it
 * can: then the read handle rd is kept until it is written, and this
 * returns true (the caller must not release rd). */
/* The status of what is served from a stored response of this status. */
static int served_status(bool not_modified, const struct cache_range *r, int stored)
{
	if (not_modified)
		return 304;
	if (r->kind == CACHE_RANGE_SINGLE || r->kind == CACHE_RANGE_MULTI)
		return 206;
	return r->kind == CACHE_RANGE_UNSATISFIABLE ? 416 : stored;
}

/* RFC 9110 §14.6: the ranges as multipart/byteranges into parts, its
 * Content-Type into out. */
static void write_parts(struct evbuffer *out, struct evbuffer *parts, const struct cache_range *r,
			const struct cache_object *obj, const struct http_field *ct)
{
	static const char boundary[] = "hopcache-byteranges-7d2f9a";
	for (size_t i = 0; i < r->n; i++) {
		evbuffer_add_printf(parts, "\r\n--%s\r\n", boundary);
		if (ct != NULL)
			evbuffer_add_printf(parts, "Content-Type: %.*s\r\n", (int)ct->value.len,
					    ct->value.p);
		evbuffer_add_printf(parts, "Content-Range: bytes %llu-%llu/%zu\r\n\r\n",
				    (unsigned long long)r->first[i], (unsigned long long)r->last[i],
				    obj->body_len);
		evbuffer_add(parts, obj->body + r->first[i], (size_t)(r->last[i] - r->first[i] + 1));
	}
	evbuffer_add_printf(parts, "\r\n--%s--\r\n", boundary);
	evbuffer_add_printf(out, "Content-Type: multipart/byteranges; boundary=%s\r\n", boundary);
}

/* The body, from the map to the socket without a copy when the worker has
 * room for one more reference: true when it took rd (kept until the socket
 * has the bytes). */
static bool write_body(struct evbuffer *out, const char *body, size_t len, struct cache_read *rd)
{
	if (len == 0)
		return false;
	if (map_refs < MAP_REFS_MAX &&
	    evbuffer_add_reference(out, body, len, map_ref_done, rd) == 0) {
		/* zero copy until the kernel's own copy into the socket */
		map_refs++;
		return true;
	}
	evbuffer_add(out, body, len);
	return false;
}

bool conn_cache_serve(struct conn *c, const struct cache_object *obj, int64_t age,
		      const char *cache_status, const char *extra, struct cache_read *rd)
{
	bool rd_taken = false;
	if (!c->rq->rbody.done)
		c->client_keepalive = false; /* its body is not read: close after (RFC 9112 §9.3) */
	const char *via = c->w->cfg->via;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	int status = c->rq->res.status;
	bool not_modified = cache_conditional(c->rq->req.fields, c->rq->req.nfields, c->rq->res.fields,
					       c->rq->res.nfields) == 304;
	struct cache_range range = { .kind = CACHE_RANGE_NONE };
	/* RFC 9110 §14.2: range handling is defined for GET only; a HEAD
	 * ignores Range and answers 200. */
	if (!not_modified && status == 200 && c->rq->creq.has_range && !c->rq->head_request)
		cache_range_parse(c->rq->req.fields, c->rq->req.nfields, c->rq->res.fields, c->rq->res.nfields,
				  obj->body_len, &range);
	struct evbuffer *parts = NULL;
	if (range.kind == CACHE_RANGE_MULTI && (parts = evbuffer_new()) == NULL)
		range.kind = CACHE_RANGE_NONE; /* out of memory: the whole response */

	int served = served_status(not_modified, &range, status);
	if (served != status)
		head_status_str(out, served, errors_reason(served));
	else
		head_status(out, status, c->rq->res.reason);
	for (size_t i = 0; i < c->rq->res.nfields; i++) {
		const struct http_field *f = &c->rq->res.fields[i];
		if (slice_eq_ci(f->name, "age"))
			continue; /* replaced by the current age (RFC 9111 §5.1) */
		if (cache_cookie_field(f->name))
			continue;
		if (not_modified && !in_304(f->name))
			continue;
		if (range.kind == CACHE_RANGE_MULTI && slice_eq_ci(f->name, "content-type"))
			continue; /* the parts carry it */
		head_field(out, f->name, f->value);
	}
	if (extra != NULL)
		evbuffer_add(out, extra, strlen(extra));
	evbuffer_add_printf(out, "Age: %lld\r\n", (long long)(age < 0 ? 0 : age));
	head_via(out, 1, via);
	head_field_str(out, "Cache-Status", cache_status);

	const struct http_field *ct = http_field_find(c->rq->res.fields, c->rq->res.nfields, "content-type");
	free(c->rq->cache_ctype); /* for the access log: the fields end with the read */
	c->rq->cache_ctype = ct != NULL ? strndup(ct->value.p, ct->value.len) : NULL;
	const char *body = obj->body;
	size_t body_len = obj->body_len;
	if (not_modified) {
		body_len = 0;
	} else if (range.kind == CACHE_RANGE_SINGLE) {
		evbuffer_add_printf(out, "Content-Range: bytes %llu-%llu/%zu\r\n",
				    (unsigned long long)range.first[0],
				    (unsigned long long)range.last[0], obj->body_len);
		body = obj->body + range.first[0];
		body_len = (size_t)(range.last[0] - range.first[0] + 1);
	} else if (range.kind == CACHE_RANGE_UNSATISFIABLE) {
		evbuffer_add_printf(out, "Content-Range: bytes */%zu\r\n", obj->body_len);
		body_len = 0;
	} else if (range.kind == CACHE_RANGE_MULTI) {
		write_parts(out, parts, &range, obj, ct);
		body = NULL;
		body_len = evbuffer_get_length(parts);
	}
	if (!not_modified)
		head_framing(out, HTTP_BODY_LENGTH, body_len);
	conn_auth_reply(c, out);
	head_end(out, !c->client_keepalive);
	if (!c->rq->head_request) {
		if (parts != NULL)
			evbuffer_add_buffer(out, parts);
		else
			rd_taken = write_body(out, body, body_len, rd);
	}
	if (parts != NULL)
		evbuffer_free(parts);
	c->rq->sbody.total = c->rq->head_request ? 0 : body_len; /* body bytes served from the store */
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = served;
	return rd_taken;
}

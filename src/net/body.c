/* body.c - relaying one message body, re-framed for the next hop. */
#include "body.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

void body_init(struct body *b, const struct http_framing *f, bool out_chunked,
	       size_t max_trailer)
{
	body_free(b);
	memset(b, 0, sizeof(*b));
	b->in = f->kind;
	b->left = f->length;
	b->out_chunked = out_chunked && f->kind != HTTP_BODY_NONE;
	http_chunked_init(&b->chunked, HTTP_CHUNK_LINE_MAX, max_trailer);
	b->done = f->kind == HTTP_BODY_NONE || (f->kind == HTTP_BODY_LENGTH && f->length == 0);
}

void body_free(struct body *b)
{
	if (b->tee != NULL)
		evbuffer_free(b->tee);
	b->tee = NULL;
	if (b->ctl != NULL)
		evbuffer_free(b->ctl);
	b->ctl = NULL;
}

/* Keep a copy of body data for the cache, up to tee_max bytes; past that the
 * copy is dropped (the object is too large to store). */
static void tee(struct body *b, const char *p, size_t n)
{
	if (b->tee == NULL)
		return;
	if (evbuffer_get_length(b->tee) + n > b->tee_max) {
		body_free(b);
		return;
	}
	evbuffer_add(b->tee, p, n);
}

/* tee() for the first n bytes of an evbuffer (before they move on). */
static void tee_buffer(struct body *b, struct evbuffer *src, size_t n)
{
	struct evbuffer_iovec v[16];
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(src, &pos, 0, EVBUFFER_PTR_SET);
	while (n > 0 && b->tee != NULL) {
		int k = evbuffer_peek(src, (ev_ssize_t)n, &pos, v, 16);
		if (k <= 0)
			break;
		for (int i = 0; i < k && i < 16 && n > 0; i++) {
			size_t len = v[i].iov_len < n ? v[i].iov_len : n;
			tee(b, v[i].iov_base, len);
			n -= len;
			evbuffer_ptr_set(src, &pos, len, EVBUFFER_PTR_ADD);
		}
	}
}

/* Write n body bytes to dst, as one chunk when the next hop gets chunked
 * coding: from src when p is NULL (the bytes move), else from p. */
static void emit(struct body *b, struct evbuffer *dst, struct evbuffer *src, const char *p,
		 size_t n)
{
	if (n == 0)
		return;
	if (p != NULL)
		tee(b, p, n);
	else
		tee_buffer(b, src, n);
	if (b->out_chunked)
		evbuffer_add_printf(dst, "%zx\r\n", n);
	if (p != NULL)
		evbuffer_add(dst, p, n);
	else
		evbuffer_remove_buffer(src, dst, n);
	if (b->out_chunked)
		evbuffer_add(dst, "\r\n", 2);
	b->total += n;
}

/* The trailer field lines in the control bytes after the last data, to dst. */
static void write_trailers(struct evbuffer *ctl, struct evbuffer *dst)
{
	size_t len = evbuffer_get_length(ctl);
	const char *t = (const char *)evbuffer_pullup(ctl, (ev_ssize_t)len);
	size_t n = http_chunked_trailers(t, len, NULL, 0);
	struct http_field *f = n > 0 ? calloc(n, sizeof(*f)) : NULL;
	if (f == NULL)
		return; /* none, or out of memory: the body ends without them */
	http_chunked_trailers(t, len, f, n);
	for (size_t i = 0; i < n; i++) { /* each line as received, up to its value's end */
		evbuffer_add(dst, f[i].name.p, (size_t)(f[i].value.p + f[i].value.len - f[i].name.p));
		evbuffer_add(dst, "\r\n", 2);
	}
	free(f);
}

/* The body is complete: the last chunk for a chunked next hop (and the
 * trailer section with keep_trailers). */
static int finish(struct body *b, struct evbuffer *dst)
{
	b->done = true;
	if (!b->out_chunked)
		return BODY_DONE;
	evbuffer_add(dst, "0\r\n", 3);
	if (b->keep_trailers && b->ctl != NULL)
		write_trailers(b->ctl, dst);
	evbuffer_add(dst, "\r\n", 2);
	return BODY_DONE;
}

static int relay_chunked(struct body *b, struct evbuffer *src, struct evbuffer *dst,
			 uint64_t limit)
{
	while (evbuffer_get_length(src) > 0 && !http_chunked_done(&b->chunked)) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(src, -1, NULL, &v, 1) < 1)
			break;
		const char *p = v.iov_base;
		size_t len = v.iov_len;
		size_t used = 0;
		while (used < len && !http_chunked_done(&b->chunked)) {
			struct slice data = { NULL, 0 };
			ssize_t r = http_chunked_step(&b->chunked, p + used, len - used, &data);
			if (r < 0)
				return BODY_MALFORMED;
			if (r == 0)
				break;
			if (b->keep_trailers) {
				/* a step's data comes last: control bytes after the
				 * last data are the end of the body, trailers and all
				 * (bounded by the decoder's limits) */
				if (b->ctl == NULL && (b->ctl = evbuffer_new()) == NULL)
					b->keep_trailers = false;
				else if (data.len > 0)
					evbuffer_drain(b->ctl, evbuffer_get_length(b->ctl));
				else
					evbuffer_add(b->ctl, p + used, (size_t)r);
			}
			emit(b, dst, NULL, data.p, data.len);
			used += (size_t)r;
		}
		evbuffer_drain(src, used);
		if (used == 0)
			break;
		if (limit > 0 && b->total > limit)
			return BODY_TOO_LARGE;
	}
	return http_chunked_done(&b->chunked) ? finish(b, dst) : BODY_MORE;
}

int body_relay(struct body *b, struct evbuffer *src, struct evbuffer *dst, uint64_t limit)
{
	if (b->done)
		return BODY_DONE;
	size_t avail = evbuffer_get_length(src);
	switch (b->in) {
	case HTTP_BODY_NONE:
		b->done = true;
		return BODY_DONE;
	case HTTP_BODY_LENGTH: {
		size_t n = avail < b->left ? avail : (size_t)b->left;
		emit(b, dst, src, NULL, n);
		b->left -= n;
		return b->left == 0 ? finish(b, dst) : BODY_MORE;
	}
	case HTTP_BODY_CLOSE:
		emit(b, dst, src, NULL, avail);
		return BODY_MORE; /* complete only at EOF */
	case HTTP_BODY_CHUNKED:
		return relay_chunked(b, src, dst, limit);
	}
	return BODY_MALFORMED;
}

size_t body_close(struct body *b, struct evbuffer *dst)
{
	if (b->done || b->in != HTTP_BODY_CLOSE)
		return 0;
	finish(b, dst);
	return b->out_chunked ? 5 : 0;
}

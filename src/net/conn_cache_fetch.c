/* conn_cache_fetch.c - one upstream fetch per cache key and worker:
 * collapsed forwarding (a miss waits for the fetch in flight for its key,
 * then looks the cache up again) and stale-while-revalidate's background
 * revalidation (RFC 5861 §3), which leads the fetch for its key. */
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

#include "config.h"
#include "conn.h"
#include "log.h"
#include "timeval.h"
#include "worker.h"

/* A fetch in flight for a cache key, and the requests waiting for it
 * (collapsed forwarding: one upstream fetch per key and worker). */
struct inflight {
	struct inflight *next;
	uint8_t key[CACHE_KEY_LEN];
	struct conn *leader;
	struct conn *waiters;
};

static struct inflight *inflight_find(struct worker *w, const uint8_t *key)
{
	for (struct inflight *f = w->inflight; f != NULL; f = f->next)
		if (memcmp(f->key, key, CACHE_KEY_LEN) == 0)
			return f;
	return NULL;
}

/* Wait for the fetch in flight for this key, if there is one. */
bool fetch_wait(struct conn *c)
{
	struct inflight *f = inflight_find(c->w, c->rq->cache_key);
	if (f == NULL || f->leader == c || c->rq->collapse_tried || !c->rq->rbody.done)
		return false;
	c->rq->wait_next = f->waiters;
	f->waiters = c;
	c->rq->inflight = f;
	c->state = CONN_WAIT_FETCH;
	bufferevent_disable(c->cbev, EV_READ);
	struct timeval tv = timeval_of(c->w->cfg->connect_timeout + c->w->cfg->upstream_timeout);
	evtimer_add(c->timer, &tv);
	return true;
}

/* Lead the fetch for this key (others missing it will wait). */
void fetch_lead(struct conn *c)
{
	if (c->rq->inflight != NULL || inflight_find(c->w, c->rq->cache_key) != NULL)
		return;
	struct inflight *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return;
	memcpy(f->key, c->rq->cache_key, CACHE_KEY_LEN);
	f->leader = c;
	f->next = c->w->inflight;
	c->w->inflight = f;
	c->rq->inflight = f;
}

/* Leave the fetch: a leader wakes every waiter (they look the cache up
 * again) and ends it; a waiter just leaves the queue. */
void fetch_leave(struct conn *c)
{
	struct inflight *f = c->rq->inflight;
	if (f == NULL)
		return;
	c->rq->inflight = NULL;
	if (f->leader != c) {
		for (struct conn **pp = &f->waiters; *pp != NULL; pp = &(*pp)->rq->wait_next) {
			if (*pp == c) {
				*pp = c->rq->wait_next;
				break;
			}
		}
		c->rq->wait_next = NULL;
		return;
	}
	for (struct inflight **pp = &c->w->inflight; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	for (struct conn *wc = f->waiters, *next; wc != NULL; wc = next) {
		next = wc->rq->wait_next;
		wc->rq->wait_next = NULL;
		wc->rq->inflight = NULL;
		event_active(wc->timer, EV_TIMEOUT, 0);
	}
	free(f);
}

/* The far end of a background revalidation: read and drop the response. */
static void background_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	char buf[16384];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		event_free(arg);
		close(fd);
	}
}

/* stale-while-revalidate (RFC 5861 §3): revalidate in the background. The
 * revalidation is an ordinary request from a socketpair "client", so it
 * takes the same path as any other: conditional request, 304 merge or a
 * new store. It leads the fetch for the key, so others do not start one. */
void fetch_in_background(struct conn *c)
{
	struct worker *w = c->w;
	if (inflight_find(w, c->rq->cache_key) != NULL)
		return;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return;
	struct evbuffer *req = evbuffer_new();
	struct event *drain = event_new(w->base, sv[1], EV_READ | EV_PERSIST, background_drain_cb,
					NULL);
	if (req == NULL || drain == NULL)
		goto fail;
	event_assign(drain, w->base, sv[1], EV_READ | EV_PERSIST, background_drain_cb, drain);
	evbuffer_add_printf(req, "GET %s HTTP/1.1\r\nHost: ", c->rq->cache_uri);
	const char *host = strstr(c->rq->cache_uri, "://") + 3;
	const char *slash = strpbrk(host, "/?");
	evbuffer_add(req, host, slash != NULL ? (size_t)(slash - host) : strlen(host));
	evbuffer_add_printf(req, "\r\nCache-Control: max-age=0\r\nConnection: close\r\n");
	/* The fields the variants may differ by go along; conditionals and
	 * Range are the client's, not ours. */
	for (size_t i = 0; i < c->rq->req.nfields; i++) {
		const struct http_field *f = &c->rq->req.fields[i];
		if (!c->rq->keep[i] || slice_eq_ci(f->name, "cache-control") ||
		    slice_eq_ci(f->name, "pragma") || slice_eq_ci(f->name, "range") ||
		    (f->name.len > 3 && strncasecmp(f->name.p, "if-", 3) == 0))
			continue;
		evbuffer_add_printf(req, "%.*s: %.*s\r\n", (int)f->name.len, f->name.p,
				    (int)f->value.len, f->value.p);
	}
	evbuffer_add(req, "\r\n", 2);
	size_t len = evbuffer_get_length(req);
	if (len > 60000 || write(sv[1], evbuffer_pullup(req, -1), len) != (ssize_t)len)
		goto fail;
	struct sockaddr sa = { .sa_family = AF_UNIX };
	struct conn *bg = conn_new(w, sv[0], &sa, sizeof(sa), NULL);
	sv[0] = -1;
	if (bg == NULL)
		goto fail;
	shutdown(sv[1], SHUT_WR);
	event_add(drain, NULL);
	evbuffer_free(req);
	/* It leads the fetch from now on, before it has even been parsed. */
	memcpy(bg->rq->cache_key, c->rq->cache_key, CACHE_KEY_LEN);
	fetch_lead(bg);
	log_debug("revalidating %s in the background", c->rq->cache_uri);
	return;
fail:
	if (req != NULL)
		evbuffer_free(req);
	if (drain != NULL)
		event_free(drain);
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
}

void conn_cache_wait_end(struct conn *c)
{
	if (c->rq->inflight != NULL && c->rq->inflight->leader != c)
		fetch_leave(c);
}

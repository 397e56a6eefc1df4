/* pool.c - idle upstream connections kept for reuse.
 *
 * An idle connection has no request in flight, so any byte or EOF that
 * arrives on it means the server is closing it (or misbehaving): either way it
 * is dropped at once. Each entry also expires after the idle timeout. */
#include "pool.h"
#include "upstream.h"
#include "timeval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

struct pool_entry {
	TAILQ_ENTRY(pool_entry) link;
	struct pool *pool;
	struct bufferevent *bev;
	struct event *timer;
	char addr[64];
	struct sockaddr_storage sa;
	char key[];
};

TAILQ_HEAD(pool_list, pool_entry);

struct pool {
	struct event_base *base;
	struct pool_list idle; /* oldest first */
	size_t n, max_idle;
	struct timeval timeout;
};

struct pool *pool_new(struct event_base *base, size_t max_idle, double idle_timeout)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->base = base;
	p->max_idle = max_idle;
	TAILQ_INIT(&p->idle);
	p->timeout = timeval_of(idle_timeout);
	return p;
}

/* Unlink and free an entry; close its connection unless handed out. */
static void entry_free(struct pool_entry *e, int close_bev)
{
	TAILQ_REMOVE(&e->pool->idle, e, link);
	e->pool->n--;
	event_free(e->timer);
	if (close_bev)
		upstream_free(e->bev);
	free(e);
}

/* Something happened on an idle connection: data, EOF or error. Drop it. */
static void idle_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	entry_free(arg, 1);
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	entry_free(arg, 1);
}

static void idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	entry_free(arg, 1);
}

void pool_put(struct pool *p, const char *key, struct bufferevent *bev, const char *addr,
	      const struct sockaddr_storage *sa)
{
	if (p->max_idle == 0) {
		upstream_free(bev);
		return;
	}
	if (p->n >= p->max_idle)
		entry_free(TAILQ_FIRST(&p->idle), 1);
	size_t klen = strlen(key);
	struct pool_entry *e = malloc(sizeof(*e) + klen + 1);
	if (e == NULL) {
		upstream_free(bev);
		return;
	}
	memcpy(e->key, key, klen + 1);
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	e->sa = *sa;
	e->pool = p;
	e->bev = bev;
	e->timer = evtimer_new(p->base, idle_timeout_cb, e);
	if (e->timer == NULL) {
		free(e);
		upstream_free(bev);
		return;
	}
	TAILQ_INSERT_TAIL(&p->idle, e, link);
	p->n++;
	bufferevent_setcb(bev, idle_read_cb, NULL, idle_event_cb, e);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_enable(bev, EV_READ);
	evtimer_add(e->timer, &p->timeout);
}

struct bufferevent *pool_get(struct pool *p, const char *key, char *addr, size_t addrlen,
			     struct sockaddr_storage *sa)
{
	struct pool_entry *e;
	/* Newest first: the most recently used connection is the likeliest alive. */
	TAILQ_FOREACH_REVERSE(e, &p->idle, pool_list, link) {
		if (strcmp(e->key, key) == 0) {
			struct bufferevent *bev = e->bev;
			snprintf(addr, addrlen, "%s", e->addr);
			*sa = e->sa;
			// cppcheck-suppress uninitvar ; e is set by TAILQ_FOREACH_REVERSE
			entry_free(e, 0);
			bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
			return bev;
		}
	}
	return NULL;
}

void pool_clear(struct pool *p)
{
	while (!TAILQ_EMPTY(&p->idle))
		entry_free(TAILQ_FIRST(&p->idle), 1);
}

void pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_clear(p);
	free(p);
}

/* pool.h - per-worker pool of idle keep-alive upstream connections, keyed by
 * "host:port". */
#ifndef HOPCACHE_POOL_H
#define HOPCACHE_POOL_H

#include <stddef.h>
#include <sys/socket.h>

struct bufferevent;
struct event_base;

struct pool *pool_new(struct event_base *base, size_t max_idle, double idle_timeout);
void pool_free(struct pool *p);

/* Hand an idle, reusable connection to the pool (it takes ownership; when
 * full, the oldest entry is closed). addr is its peer, "ip:port". */
void pool_put(struct pool *p, const char *key, struct bufferevent *bev, const char *addr,
	      const struct sockaddr_storage *sa);

/* Take an idle connection for key, or NULL. The caller owns it and must set
 * its callbacks. addr (>= 64 bytes) and sa receive the peer given to
 * pool_put. */
struct bufferevent *pool_get(struct pool *p, const char *key, char *addr, size_t addrlen,
			     struct sockaddr_storage *sa);

/* Close every idle connection (worker shutdown). */
void pool_clear(struct pool *p);

#endif

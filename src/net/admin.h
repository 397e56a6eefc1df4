/* admin.h - requests to the proxy itself (origin-form targets): the metrics
 * and status of all workers for the addresses [admin] allow lets in, and the
 * PAC file for anyone. With [admin] listen, the metrics, the status and PURGE
 * move to the admin listener (admin_route) and the proxy port keeps the PAC
 * file. */
#ifndef HOPCACHE_ADMIN_H
#define HOPCACHE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "slice.h"

struct config;
struct http_target;
struct evbuffer;
struct metrics;

enum admin_resource {
	ADMIN_NONE,    /* not ours: the request is refused as before (400) */
	ADMIN_METRICS, /* /hopcache/metrics: Prometheus text format 0.0.4 */
	ADMIN_STATUS,  /* /hopcache/status: JSON */
	ADMIN_PAC,     /* /proxy.pac and /wpad.dat */
};

/* Which resource an origin-form target names (a query is ignored). */
enum admin_resource admin_lookup(const char *target, size_t len);

/* May this client read the resource? (The PAC file is public.) */
bool admin_allowed(const struct config *cfg, enum admin_resource r, const struct sockaddr *client);

/* Build the resource's body into body and name its Content-Type. host is
 * the request's Host (the PAC file names the proxy by it when [pac] proxy
 * is unset; NULL when absent). 0, or -1 when it cannot be built. */
int admin_build(enum admin_resource r, const struct config *cfg, const struct metrics *m,
		const char *host, struct evbuffer *body, const char **content_type);

/* Is the resource answered on this listener? With [admin] listen set, the
 * metrics and the status are on the admin listener only, and the PAC file
 * on the proxy port only (it names the proxy by the Host it was fetched
 * by); without it, everything is on the proxy port. */
bool admin_served_here(const struct config *cfg, enum admin_resource r, bool admin_listener);

/* What the admin listener does with a request: answer a resource, purge, or
 * refuse. It forwards nothing. */
enum admin_route_kind {
	ADMIN_ROUTE_RESOURCE, /* an origin-form target admin_lookup knows */
	ADMIN_ROUTE_PURGE,    /* PURGE of an absolute URI ([cache] purge_allow decides) */
	ADMIN_ROUTE_REFUSE,   /* anything else: status, details, fields */
};

struct admin_route {
	enum admin_route_kind kind;
	enum admin_resource r;  /* ADMIN_ROUTE_RESOURCE */
	int status;             /* ADMIN_ROUTE_REFUSE: 400, 404 or 405 */
	const char *details;    /* ... its Proxy-Status details */
	const char *fields;     /* ... an Allow line (405), or NULL */
};

/* Route a parsed request (its method, the raw target and the parsed one) on
 * the admin listener: PURGE of an absolute URI (in another form: 400); an
 * origin-form resource (an unknown path: 404); any other absolute-form
 * request, one to forward, 404; CONNECT and OPTIONS * 405. */
struct admin_route admin_route(struct slice method, struct slice target, const struct http_target *t);

#endif

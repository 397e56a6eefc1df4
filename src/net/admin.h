/* admin.h - requests to the proxy itself (origin-form targets): the metrics
 * and status of all workers for the addresses [admin] allow lets in, and the
 * PAC file for anyone. */
#ifndef HOPCACHE_ADMIN_H
#define HOPCACHE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct config;
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

#endif

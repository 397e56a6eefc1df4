/* admin.c - the proxy's own resources: /hopcache/metrics, /hopcache/status,
 * /proxy.pac and /wpad.dat. conn.c answers them; this file decides which
 * resource a target names, on which listener, who may read it, and builds
 * its body; and what the admin listener ([admin] listen) does with any
 * request. */
#include "admin.h"

#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "autoconfig.h"
#include "cidr.h"
#include "config.h"
#include "config_check.h"
#include "http_parser.h"
#include "metrics.h"
#include "pac.h"

static const struct {
	const char *path;
	enum admin_resource r;
} routes[] = {
	{ "/hopcache/metrics", ADMIN_METRICS },
	{ "/hopcache/status", ADMIN_STATUS },
	{ "/proxy.pac", ADMIN_PAC },
	{ "/wpad.dat", ADMIN_PAC },
};

enum admin_resource admin_lookup(const char *target, size_t len)
{
	const char *q = memchr(target, '?', len);
	if (q != NULL)
		len = (size_t)(q - target);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strlen(routes[i].path) == len && memcmp(routes[i].path, target, len) == 0)
			return routes[i].r;
	return ADMIN_NONE;
}

bool admin_served_here(const struct config *cfg, enum admin_resource r, bool admin_listener)
{
	if (cfg->nadmin_listen == 0)
		return !admin_listener;
	return admin_listener == (r != ADMIN_PAC);
}

#define ADMIN_FORWARDS_NOTHING \
	"the admin listener forwards nothing: send proxy requests to the proxy port"

struct admin_route admin_route(struct slice method, struct slice target, const struct http_target *t)
{
	if (slice_eq(method, "PURGE")) {
		if (t->form == HTTP_TARGET_ABSOLUTE)
			return (struct admin_route){ .kind = ADMIN_ROUTE_PURGE };
		return (struct admin_route){ ADMIN_ROUTE_REFUSE, ADMIN_NONE, 400,
					     "PURGE names the absolute URI to remove "
					     "(PURGE http://host/path)", NULL };
	}
	if (t->form == HTTP_TARGET_ORIGIN) {
		enum admin_resource r = admin_lookup(target.p, target.len);
		if (r == ADMIN_NONE)
			return (struct admin_route){ ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404,
						     "not a resource of the admin listener", NULL };
		return (struct admin_route){ .kind = ADMIN_ROUTE_RESOURCE, .r = r };
	}
	/* a request to forward names no resource here; CONNECT and OPTIONS *
	 * are methods the admin listener does not take */
	if (t->form == HTTP_TARGET_ABSOLUTE)
		return (struct admin_route){ ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, ADMIN_FORWARDS_NOTHING,
					     NULL };
	return (struct admin_route){ ADMIN_ROUTE_REFUSE, ADMIN_NONE, 405, ADMIN_FORWARDS_NOTHING,
				     "Allow: GET, HEAD, PURGE\r\n" };
}

bool admin_allowed(const struct config *cfg, enum admin_resource r, const struct sockaddr *client)
{
	if (r == ADMIN_PAC)
		return true;
	return cidr_list_match(cfg->admin_allow, cfg->nadmin_allow, client);
}

int admin_build(enum admin_resource r, const struct config *cfg, const struct metrics *m,
		const char *host, struct evbuffer *body, const char **content_type)
{
	switch (r) {
	case ADMIN_METRICS:
		*content_type = "text/plain; version=0.0.4; charset=utf-8";
		return metrics_render_prometheus(m, body);
	case ADMIN_STATUS:
		*content_type = "application/json";
		return metrics_render_json(m, body, PACKAGE_VERSION);
	case ADMIN_PAC:
		*content_type = "application/x-ns-proxy-autoconfig";
		return pac_generate(cfg, host, body);
	case ADMIN_NONE:
		break;
	}
	return -1;
}

/* [admin] listen: no address also a proxy port ([proxy] or [tls] listen). */
void admin_config_check(struct config *cfg, struct config_check *chk)
{
	static const char *const names[] = { "[proxy] listen", "[tls] listen" };
	const struct config_listen *lists[] = { cfg->listen, cfg->tls_listen };
	const size_t counts[] = { cfg->nlisten, cfg->ntls_listen };

	for (size_t i = 0; i < cfg->nadmin_listen; i++) {
		const struct config_listen *a = &cfg->admin_listen[i];
		if (strcmp(a->port, "0") == 0)
			continue; /* the kernel picks a port of its own for each */
		for (size_t k = 0; k < 2; k++)
			for (size_t j = 0; j < counts[k]; j++)
				if (strcasecmp(a->host, lists[k][j].host) == 0 &&
				    strcmp(a->port, lists[k][j].port) == 0)
					config_problem(chk, "admin", "listen", "%s:%s is also in %s",
						       a->host, a->port, names[k]);
	}
}

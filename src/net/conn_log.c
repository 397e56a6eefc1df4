/* conn_log.c - the end of a request in the logs and metrics: the access log
 * record (log.c writes it) built from the connection's request. */
#include "conn.h"
#include "conn_impl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"

/* The cache's part in this request, for the logs and metrics: NULL when
 * the cache was not involved. */
static const char *cache_outcome(const struct conn *c)
{
	if (outcome_is_cache_served(c->rq->outcome))
		return outcome_name(c->rq->outcome);
	return c->rq->cache_on && c->rq->upstream_addr[0] != '\0' ? "MISS" : NULL;
}

/* The first value of a request (or response) field, copied; NULL if absent. */
static const char *field_value(const struct http_field *f, size_t n, const char *name, char *buf,
			       size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (slice_eq_ci(f[i].name, name)) {
			slice_copy(buf, len, f[i].value);
			return buf;
		}
	}
	return NULL;
}

/* The request is over: count it (metrics.c) and log it. */
void conn_log_access(struct conn *c)
{
	struct metrics_slot *ms = c->w->metrics;
	const char *cache = cache_outcome(c);
	if (!c->internal) {
		metrics_request(ms, c->rq->method_str, c->rq->status, c->rq->bytes_in, c->rq->bytes_out);
		if (cache != NULL)
			metrics_cache(ms, cache, c->rq->sbody.total);
		if (outcome_is_upstream_error(c->rq->outcome))
			metrics_upstream_error(ms, outcome_name(c->rq->outcome));
		if (c->rq->status == 403 && outcome_is_denial(c->rq->outcome))
			metrics_denied(ms);
	}
	if (!log_access_enabled())
		return;
	bool have_req = c->rq->req.nfields > 0 && c->rq->method_str[0] != '\0' && strcmp(c->rq->method_str, "-") != 0;
	bool have_res = c->rq->res.status != 0 && c->rq->res.nfields > 0;
	char version[16], referer[512], agent[512], ctype[256], uhost[256];
	if (c->h2)
		snprintf(version, sizeof(version), "HTTP/2");
	else
		snprintf(version, sizeof(version), "HTTP/1.%d", have_req ? c->rq->req.minor : 1);
	if (c->rq->target.host.len > 0 && c->rq->target.host.p != NULL)
		slice_copy(uhost, sizeof(uhost), c->rq->target.host);
	else
		uhost[0] = '\0';
	struct access_entry e = {
		.client = c->client_ip,
		.user = c->rq->user[0] ? c->rq->user : NULL,
		.method = c->rq->method_str,
		.target = c->rq->target_str,
		.status = c->rq->status,
		.bytes_in = c->rq->bytes_in,
		.bytes_out = c->rq->bytes_out,
		.duration_ms = conn_elapsed_ms(&c->rq->t_start),
		.upstream = c->rq->upstream_addr[0] ? c->rq->upstream_addr : NULL,
		.outcome = c->rq->outcome,
		.rule = c->rq->rule[0] ? c->rq->rule : NULL,
		.version = version,
		.referer = have_req ? field_value(c->rq->req.fields, c->rq->req.nfields, "referer", referer,
						  sizeof(referer)) : NULL,
		.user_agent = have_req ? field_value(c->rq->req.fields, c->rq->req.nfields, "user-agent",
						     agent, sizeof(agent)) : NULL,
		.content_type = have_res ? field_value(c->rq->res.fields, c->rq->res.nfields, "content-type",
						       ctype, sizeof(ctype))
					 : c->rq->cache_ctype,
		.cache = cache,
		.upstream_host = c->rq->upstream_addr[0] && uhost[0] ? uhost : NULL,
		.tunnel = c->tunnel != NULL || (c->rq->connect_replied && c->rq->status == 200),
		.parent = c->rq->via_parent,
	};
	log_access(&e);
}

/* conn_upstream.c - the upstream side of a request: where it goes (the origin
 * or the [upstream] parent), a pooled connection or a new one vetted by the
 * policy's phase two, and the request head sent there. */
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

#include "config.h"
#include "conn_cache.h"
#include "head.h"
#include "log.h"
#include "pool.h"
#include "stage_policy.h"
#include "timeval.h"
#include "worker.h"

/* Write "Host: ..." from the target URI (RFC 9112 §3.2.2: a proxy MUST replace a
 * received Host with the host of an absolute-form target). */
static void add_host(struct evbuffer *out, const struct http_target *t)
{
	const char *l = t->ipv6_literal ? "[" : "";
	const char *r = t->ipv6_literal ? "]" : "";
	unsigned defport = slice_eq_ci(t->scheme, "https") ? 443 : 80;
	if (t->port_explicit && t->port != defport)
		evbuffer_add_printf(out, "Host: %s%.*s%s:%u\r\n", l, (int)t->host.len, t->host.p, r,
				    t->port);
	else
		evbuffer_add_printf(out, "Host: %s%.*s%s\r\n", l, (int)t->host.len, t->host.p, r);
}

/* Where the upstream connection goes: the origin, or [upstream] parent
 * (through a CONNECT there for tunnels and https://). */
static void upstream_dest_of(struct conn *c, struct upstream_dest *d, char *host, size_t hostlen)
{
	const struct config *cfg = c->w->cfg;
	slice_copy(host, hostlen, c->rq->target.host);
	memset(d, 0, sizeof(*d));
	d->host = host;
	d->port = c->rq->target.port;
	d->tls = c->rq->upstream_tls;
	if (c->rq->via_parent) {
		d->parent = cfg->parent[0].host;
		d->parent_port = (uint16_t)atoi(cfg->parent[0].port);
		d->tunnel = c->rq->upstream_tls || conn_method_is(c, "CONNECT");
		d->parent_auth = c->w->parent_auth;
	}
}

/* A new connection for the request (the policy vets each address). */
static void connect_new(struct conn *c)
{
	char host[256];
	struct upstream_dest d;
	upstream_dest_of(c, &d, host, sizeof(host));
	c->ureq = upstream_connect(c->w, &d, conn_policy_filter, conn_connected_cb, c);
	if (c->ureq == NULL)
		conn_fail(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
}

/* The policy's look at the origin's addresses, for a request a parent will
 * connect: refused, or on to the parent. */
static void vetted_cb(enum upstream_err err, struct bufferevent *bev, const char *addr,
		      const char *detail, void *arg)
{
	(void)bev;
	(void)addr;
	struct conn *c = arg;
	c->ureq = NULL;
	if (err != UPSTREAM_OK) {
		conn_connected_cb(err, NULL, "", detail, c);
		return;
	}
	c->rq->dst_vetted = true;
	conn_start_upstream(c);
}

/* Start the upstream side: a pooled connection, or a new one. */
void conn_start_upstream(struct conn *c)
{
	c->state = CONN_CONNECTING;
	if (c->rq->via_parent && c->rq->policy_need_dst && !c->rq->dst_vetted) {
		/* The parent resolves and connects, but the decision needs the
		 * destination's address: resolve it here to vet it. */
		char host[256];
		slice_copy(host, sizeof(host), c->rq->target.host);
		c->ureq = upstream_vet(c->w, host, c->rq->target.port, conn_policy_filter, vetted_cb, c);
		if (c->ureq == NULL)
			conn_fail(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
		return;
	}
	if (!conn_method_is(c, "CONNECT") && !c->rq->upgrading) {
		char addr[64];
		struct bufferevent *u = pool_get(c->w->pool, c->rq->pool_key, addr, sizeof(addr),
						 &c->rq->upstream_sa);
		/* (a connection to the parent goes wherever the parent sends it:
		 * the destination was vetted above) */
		if (u != NULL && !c->rq->via_parent &&
		    !conn_policy_filter(c, (const struct sockaddr *)&c->rq->upstream_sa)) {
			/* this request may not go where the pooled connection goes;
			 * a fresh connect vets every address and answers */
			pool_put(c->w->pool, c->rq->pool_key, u, addr, &c->rq->upstream_sa);
			u = NULL;
		}
		if (u != NULL) {
			c->rq->upstream_reusable = false;
			c->rq->pooled = true;
			conn_connected_cb(UPSTREAM_OK, u, addr, NULL, c);
			return;
		}
	}
	connect_new(c);
}

/* The upstream request head: built from the kept fields each time it is sent,
 * so a retry on a fresh connection sends the same bytes. */
static void build_request_head(struct conn *c, struct evbuffer *out)
{
	const struct config *cfg = c->w->cfg;
	bool absolute = c->rq->via_parent && !c->rq->upstream_tls; /* a proxy wants absolute-form */
	evbuffer_add(out, c->rq->req.method.p, c->rq->req.method.len);
	evbuffer_add(out, " ", 1);
	if (absolute) {
		const struct http_target *t = &c->rq->target;
		const char *l = t->ipv6_literal ? "[" : "";
		const char *r = t->ipv6_literal ? "]" : "";
		evbuffer_add_printf(out, "http://%s%.*s%s", l, (int)t->host.len, t->host.p, r);
		if (t->port != 80)
			evbuffer_add_printf(out, ":%u", t->port);
	}
	if (c->rq->target.path.p[0] == '?')
		evbuffer_add(out, "/", 1);
	evbuffer_add(out, c->rq->target.path.p, c->rq->target.path.len);
	evbuffer_add(out, " HTTP/1.1\r\n", 11);
	add_host(out, &c->rq->target);
	if (absolute)
		evbuffer_add(out, c->w->parent_auth, strlen(c->w->parent_auth));
	int skip = -1;
	bool mf = (conn_method_is(c, "OPTIONS") || conn_method_is(c, "TRACE")) && c->rq->rinfo.max_forwards > 0;
	if (mf)
		skip = c->rq->rinfo.max_forwards_index;
	head_fields(out, c->rq->req.fields, c->rq->req.nfields, c->rq->keep, skip);
	if (mf)
		evbuffer_add_printf(out, "Max-Forwards: %d\r\n", c->rq->rinfo.max_forwards - 1);
	/* Fields the proxy adds come after removal, so a client cannot strip
	 * them by listing them in Connection (RFC 9110 §7.6.3 Via). */
	head_via(out, c->h2 ? HEAD_VIA_H2 : c->rq->req.minor, cfg->via);
	if (cfg->x_forwarded_for)
		evbuffer_add_printf(out, "X-Forwarded-For: %s\r\n", c->client_ip);
	if (cfg->forwarded) {
		if (strchr(c->client_ip, ':') != NULL)
			evbuffer_add_printf(out, "Forwarded: for=\"[%s]\"\r\n", c->client_ip);
		else
			evbuffer_add_printf(out, "Forwarded: for=%s\r\n", c->client_ip);
	}
	if (c->rq->cache_validating)
		evbuffer_add(out, c->rq->cache_validators, c->rq->cache_validators_len);
	if (c->rq->upgrading)
		evbuffer_add(out, "Connection: upgrade\r\n", 21);
	head_framing(out, c->rq->rbody.in, c->rq->rbody.left);
	head_end(out, false);
}

void conn_send_request(struct conn *c)
{
	build_request_head(c, bufferevent_get_output(c->ubev));
	c->state = CONN_FORWARD;
	/* The upstream read timeout runs once the whole request is sent: a slow
	 * upload is the client's timeout, not the server's. */
	struct timeval ut = timeval_of(c->w->cfg->upstream_timeout);
	bufferevent_set_timeouts(c->ubev, c->rq->rbody.done ? &ut : NULL, &ut);
	bufferevent_setcb(c->ubev, conn_upstream_read_cb, conn_upstream_write_cb, conn_upstream_event_cb, c);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	if (!c->rq->rbody.done) {
		struct timeval ct = timeval_of(c->w->cfg->client_timeout);
		struct timeval wt = ct;
		bufferevent_set_timeouts(c->cbev, &ct, &wt);
		bufferevent_enable(c->cbev, EV_READ);
		conn_client_read_cb(c->cbev, c);
	}
}

void conn_connected_cb(enum upstream_err err, struct bufferevent *bev, const char *addr,
			 const char *detail, void *arg)
{
	struct conn *c = arg;
	c->ureq = NULL;
	if (err != UPSTREAM_OK && c->rq->connect_replied) {
		/* the 200 is out (SNI peek): an error can only close the tunnel */
		c->rq->outcome = err == UPSTREAM_DENIED ? OUTCOME_HTTP_REQUEST_DENIED : upstream_err_type(err);
		conn_log_access(c);
		conn_close(c, "tunnel upstream failed");
		return;
	}
	if (err == UPSTREAM_DENIED) {
		/* the policy refused every address the name resolved to */
		c->client_keepalive = false;
		struct policy_refusal no;
		stage_policy_dst_refusal(c->rq, &no);
		conn_fail(c, no.status, no.error, no.details);
		return;
	}
	if (err != UPSTREAM_OK) {
		if (conn_cache_upstream_failed(c, upstream_err_status(err)))
			return;
		char details[800];
		if (detail != NULL)
			snprintf(details, sizeof(details), "%s: %s", c->rq->host_port, detail);
		else
			snprintf(details, sizeof(details), "cannot reach %s", c->rq->host_port);
		if (conn_method_is(c, "CONNECT"))
			c->client_keepalive = false;
		conn_fail(c, upstream_err_status(err), upstream_err_type(err), details);
		return;
	}
	c->ubev = bev;
	snprintf(c->rq->upstream_addr, sizeof(c->rq->upstream_addr), "%s", addr);
	if (!c->rq->pooled) {
		socklen_t sl = sizeof(c->rq->upstream_sa);
		if (getpeername(bufferevent_getfd(bev), (struct sockaddr *)&c->rq->upstream_sa, &sl) != 0)
			memset(&c->rq->upstream_sa, 0, sizeof(c->rq->upstream_sa));
		c->rq->retried = true;
		bufferevent_set_max_single_read(bev, RELAY_HIGH / 2);
		bufferevent_set_max_single_write(bev, RELAY_HIGH);
		int one = 1;
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		/* A pooled connection may have been closed by the server while
		 * idle: one retry, only when the request can be sent again. */
		c->rq->retried = !c->rq->idempotent || c->rq->rbody.in != HTTP_BODY_NONE;
	}
	if (conn_method_is(c, "CONNECT")) {
		if (!c->rq->connect_replied)
			conn_connect_reply(c);
		tunnel_start(c);
		return;
	}
	conn_send_request(c);
}

/* A pooled connection died before any response byte: retry once on a new one. */
bool conn_maybe_retry(struct conn *c)
{
	if (c->rq->retried || c->rq->res.status != 0)
		return false;
	if (evbuffer_get_length(bufferevent_get_input(c->ubev)) > 0)
		return false;
	c->rq->retried = true;
	c->rq->pooled = false;
	upstream_free(c->ubev);
	c->ubev = NULL;
	c->state = CONN_CONNECTING;
	c->rq->upstream_addr[0] = '\0';
	connect_new(c);
	log_debug("retrying %s on a new connection", c->rq->host_port);
	return true;
}

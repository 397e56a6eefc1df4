/* conn.c - the per-client state machine.
 *
 * A client connection reads one request head at a time, runs it through the
 * stages (parser, header stage, policy checks), connects upstream (or takes a
 * pooled connection), relays the request body up and the response back,
 * re-framed for each hop, then either waits for the next request on the same
 * connection or closes. Pipelined requests stay in the client's input buffer
 * until the response before them is complete, so answers go out in order. */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "acl.h"
#include "admin.h"
#include "answer.h"
#include "auth.h"
#include "body.h"
#include "config.h"
#include "conn_cache.h"
#include "domainset.h"
#include "errors.h"
#include "head.h"
#include "stage_auth.h"
#include "stage_policy.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "tls.h"
#include "upstream.h"
#include "worker.h"
#include "timeval.h"

/* Back-pressure: stop reading one side when the other side's output holds
 * this much, resume when it drains to half. */
#define RELAY_HIGH (256 * 1024)


static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void upstream_read_cb(struct bufferevent *bev, void *arg);
static void upstream_write_cb(struct bufferevent *bev, void *arg);
static void upstream_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_advance(struct conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static bool policy_filter(void *arg, const struct sockaddr *sa);
static void peek_sni(struct conn *c);
static void connect_reply(struct conn *c);

/* Draining for a reload: how long an idle keep-alive connection may still
 * bring one more request. */
#define DRAIN_IDLE_GRACE 1.0

static uint64_t elapsed_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint64_t)ms;
}

static void set_timer(struct conn *c, double seconds)
{
	struct timeval tv = timeval_of(seconds);
	evtimer_add(c->timer, &tv);
}

bool conn_request_start(struct conn *c)
{
	if (c->rq != NULL)
		return true;
	size_t n = c->w->cfg->max_headers + 1;
	_Static_assert(_Alignof(struct request) >= _Alignof(struct http_field),
		       "the field arrays follow the struct");
	struct request *rq =
		malloc(sizeof(*rq) + 2 * n * sizeof(struct http_field) + n * sizeof(bool));
	if (rq == NULL)
		return false;
	memset(rq, 0, sizeof(*rq));
	struct http_field *f = (struct http_field *)(rq + 1);
	rq->req.fields = f;
	rq->req.fields_cap = n;
	rq->res.fields = f + n;
	rq->res.fields_cap = n;
	rq->keep = (bool *)(f + 2 * n);
	c->rq = rq;
	return true;
}

/* The request is over (answered and logged): free what it held. */
static void request_free(struct conn *c)
{
	struct request *rq = c->rq;
	if (rq == NULL)
		return;
	conn_cache_free(c);
	body_free(&rq->sbody);
	body_free(&rq->rbody);
	free(rq->head);
	free(rq->rhead);
	free(rq);
	c->rq = NULL;
}

struct conn *conn_new(struct worker *w, int fd, const struct sockaddr *sa, int salen, SSL_CTX *tls)
{
	const struct config *cfg = w->cfg;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->w = w;
	if ((size_t)salen <= sizeof(c->peer))
		memcpy(&c->peer, sa, (size_t)salen);
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->client_ip, sizeof(c->client_ip));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, c->client_ip, sizeof(c->client_ip));
	} else {
		strcpy(c->client_ip, "background"); /* a revalidation of our own */
		c->internal = true;
		/* the cache stage fills its request in before it is parsed */
		if (!conn_request_start(c))
			goto fail;
	}
	if (tls != NULL) {
		/* The HTTPS proxy port: the same protocol once the handshake is
		 * done; handshake_timeout bounds it. */
		SSL *ssl = tls_server_ssl(tls);
		c->cbev = ssl == NULL ? NULL
			  : bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
							   BEV_OPT_CLOSE_ON_FREE);
		if (c->cbev == NULL && ssl != NULL)
			SSL_free(ssl);
		if (c->cbev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(c->cbev, 1);
		c->tls = true;
		c->tls_handshaking = true;
	} else {
		c->cbev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	c->timer = evtimer_new(w->base, conn_timer_cb, c);
	if (c->cbev == NULL || c->timer == NULL) {
		if (c->cbev != NULL)
			bufferevent_free(c->cbev);
		else
			close(fd);
		if (c->timer != NULL)
			event_free(c->timer);
		request_free(c);
		free(c);
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval wt = timeval_of(cfg->client_timeout);
	bufferevent_set_timeouts(c->cbev, NULL, &wt);
	bufferevent_set_max_single_write(c->cbev, RELAY_HIGH);
	/* The client is always read (an EOF is seen at once); pipelined bytes
	 * beyond this wait in the kernel until the buffer drains. */
	bufferevent_setwatermark(c->cbev, EV_READ, 0, cfg->max_header_bytes + RELAY_HIGH);
	bufferevent_setcb(c->cbev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	c->state = CONN_READ_HEAD;
	set_timer(c, c->tls ? cfg->tls_handshake_timeout : cfg->idle_timeout);

	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	if (!c->internal)
		metrics_conn(w->metrics, 1);
	return c;
fail:
	close(fd);
	if (c != NULL)
		request_free(c);
	free(c);
	log_error("out of memory accepting a connection");
	return NULL;
}

/* Release the upstream side; return it to the pool when it is reusable. */
static void upstream_release(struct conn *c, bool reuse)
{
	if (c->ureq != NULL) {
		upstream_cancel(c->ureq);
		c->ureq = NULL;
	}
	if (c->ubev == NULL)
		return;
	struct bufferevent *u = c->ubev;
	c->ubev = NULL;
	if (reuse && !c->w->draining && evbuffer_get_length(bufferevent_get_input(u)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(u)) == 0) {
		bufferevent_setwatermark(u, EV_WRITE, 0, 0);
		pool_put(c->w->pool, c->rq->pool_key, u, c->rq->upstream_addr, &c->rq->upstream_sa);
	} else {
		upstream_free(u);
	}
}

/* Free the memory of a closed connection (deferred, see conn_close). */
static void conn_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	event_free(c->timer);
	request_free(c);
	free(c);
}

/* Close both sockets now; free the struct from the event loop, so a caller
 * deep in a callback can still test c->dead after a stage closed it. */
void conn_close(struct conn *c, const char *reason)
{
	if (c->dead)
		return;
	struct worker *w = c->w;
	c->dead = true;
	log_debug("close %s: %s", c->client_ip, reason);
	tunnel_free(c);
	if (c->rq != NULL)
		conn_cache_finish(c, false);
	if (c->rq != NULL && c->rq->outcome == NULL && c->state != CONN_READ_HEAD &&
	    c->state != CONN_FLUSH_CLOSE) {
		c->rq->outcome = "client_closed";
		conn_log_access(c);
	}
	upstream_release(c, false);
	if (c->tls && !c->tls_handshaking && c->cbev != NULL) {
		/* close_notify, so the client can tell our close from a cut */
		SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
		if (ssl != NULL && SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
	bufferevent_free(c->cbev);
	c->cbev = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	evtimer_del(c->timer);
	event_assign(c->timer, w->base, -1, 0, conn_free_cb, c);
	event_active(c->timer, EV_TIMEOUT, 0);
	w->nconns--;
	if (!c->internal)
		metrics_conn(w->metrics, -1);
	worker_conn_closed(w);
}

/* The cache's part in this request, for the logs and metrics: NULL when
 * the cache was not involved. */
static const char *cache_outcome(const struct conn *c)
{
	static const char *const served[] = { "HIT", "REFRESH", "STALE" };
	for (size_t i = 0; c->rq->outcome != NULL && i < 3; i++)
		if (strcmp(c->rq->outcome, served[i]) == 0)
			return served[i];
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

/* Is this outcome an error the upstream side caused (RFC 9209 types)? */
static bool upstream_error(const char *outcome)
{
	static const char *const types[] = {
		"dns_error", "dns_timeout", "connection_refused", "connection_timeout",
		"destination_unavailable", "http_response_timeout", "http_protocol_error",
		"http_response_incomplete", "tls_certificate_error", "tls_protocol_error",
		"connection_terminated",
	};
	for (size_t i = 0; outcome != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(outcome, types[i]) == 0)
			return true;
	return false;
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
		if (upstream_error(c->rq->outcome))
			metrics_upstream_error(ms, c->rq->outcome);
		if (c->rq->status == 403 && c->rq->outcome != NULL &&
		    (strcmp(c->rq->outcome, "http_request_denied") == 0 ||
		     strcmp(c->rq->outcome, "destination_ip_prohibited") == 0))
			metrics_denied(ms);
	}
	if (!log_access_enabled())
		return;
	bool have_req = c->rq->req.nfields > 0 && c->rq->method_str[0] != '\0' && strcmp(c->rq->method_str, "-") != 0;
	bool have_res = c->rq->res.status != 0 && c->rq->res.nfields > 0;
	char version[16], referer[512], agent[512], ctype[256], uhost[256];
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
		.duration_ms = elapsed_ms(&c->rq->t_start),
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

/* Write everything buffered for the client, then close. */
static void flush_close(struct conn *c)
{
	upstream_release(c, false);
	c->state = CONN_FLUSH_CLOSE;
	bufferevent_disable(c->cbev, EV_READ);
	evtimer_del(c->timer);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0) {
		conn_close(c, "done");
		return;
	}
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	set_timer(c, c->w->cfg->client_timeout);
}

/* Answer the current request with a proxy-generated error (plus fields, when
 * not NULL) and close. */
static void fail_with(struct conn *c, int status, const char *error, const char *details,
		      const char *fields)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	errors_respond_fields(out, status, error, details, c->w->cfg->via, true, c->rq->head_request,
			      fields);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = status;
	c->rq->outcome = error != NULL ? error : "OK";
	conn_log_access(c);
	flush_close(c);
}

static void fail_request(struct conn *c, int status, const char *error, const char *details)
{
	fail_with(c, status, error, details, NULL);
}

void conn_fail(struct conn *c, int status, const char *error, const char *details)
{
	fail_request(c, status, error, details);
}

/* A request is over: log it, then serve the next one or close. */
static void request_done(struct conn *c)
{
	conn_cache_finish(c, c->rq->sbody.done);
	c->rq->outcome = c->rq->outcome != NULL ? c->rq->outcome : "OK";
	conn_log_access(c);
	upstream_release(c, c->rq->upstream_reusable);
	/* client_keepalive is what the response's head told the client. A
	 * retiring worker (reload) that told it "keep-alive" before the drain
	 * began must still take the request the client may be sending: it is
	 * answered with Connection: close. A stopping worker closes. */
	if (!c->client_keepalive || (c->w->draining && !c->w->retiring)) {
		flush_close(c);
		return;
	}
	request_free(c); /* idle: only the connection stays */
	c->state = CONN_READ_HEAD;
	c->head_seen = false;
	bufferevent_set_timeouts(c->cbev, NULL, NULL);
	struct timeval wt = timeval_of(c->w->cfg->client_timeout);
	bufferevent_set_timeouts(c->cbev, NULL, &wt);
	bufferevent_enable(c->cbev, EV_READ);
	double idle = c->w->cfg->idle_timeout;
	set_timer(c, c->w->draining && idle > DRAIN_IDLE_GRACE ? DRAIN_IDLE_GRACE : idle);
	/* A pipelined request may already be buffered: serve it from the event
	 * loop rather than recursing (a long pipeline must not grow the stack). */
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		bufferevent_trigger(c->cbev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

void conn_done(struct conn *c)
{
	request_done(c);
}

/* ---- the request --------------------------------------------------------- */

/* Relocate the parsed request's slices from the parse buffer to c->rq->head. */
static int keep_head(char **buf, size_t *cap, const char *src, size_t len,
		     struct http_field *f, size_t n, struct slice *extra, size_t nextra)
{
	if (*cap < len) {
		char *nb = realloc(*buf, len);
		if (nb == NULL)
			return -1;
		*buf = nb;
		*cap = len;
	}
	memcpy(*buf, src, len);
	ptrdiff_t d = *buf - src;
	for (size_t i = 0; i < n; i++) {
		f[i].name.p += d;
		f[i].value.p += d;
	}
	for (size_t i = 0; i < nextra; i++)
		if (extra[i].p != NULL)
			extra[i].p += d;
	return 0;
}

static bool method_is(const struct conn *c, const char *m)
{
	return slice_eq(c->rq->req.method, m);
}

/* Idempotent methods (RFC 9110 §9.2.2) may be retried on a fresh connection. */
static bool method_idempotent(struct slice m)
{
	static const char *const ids[] = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		if (slice_eq(m, ids[i]))
			return true;
	return false;
}

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

/* Send a local answer's result: done, or its error and close. */
static void local_answered(struct conn *c, struct evbuffer *out, size_t before, struct answer a)
{
	if (a.error != NULL) {
		c->client_keepalive = false;
		fail_with(c, a.status, a.error, a.details, a.fields);
		return;
	}
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = a.status;
	c->rq->outcome = "OK";
	request_done(c);
}

/* Max-Forwards reached 0 on OPTIONS or TRACE: answer as the final recipient
 * (RFC 9110 §7.6.2). */
static void answer_final(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	if (!c->rq->rbody.done)
		c->client_keepalive = false; /* its body is not read: close after */
	struct answer a = answer_max_forwards(out, &c->rq->req, c->w->cfg->via, !c->client_keepalive);
	local_answered(c, out, before, a);
}

static void connected_cb(enum upstream_err err, struct bufferevent *bev, const char *addr,
			 const char *detail, void *arg);

/* GET or HEAD of one of the proxy's own resources (admin.c). */
static void answer_own(struct conn *c, enum admin_resource ar)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	if (!c->rq->rbody.done)
		c->client_keepalive = false; /* its body is not read: close after */
	struct answer a = answer_admin(out, ar, c->w->cfg, c->w->metrics_all, &c->rq->req,
				       (const struct sockaddr *)&c->peer, !c->client_keepalive);
	local_answered(c, out, before, a);
}

/* "200 Connection established" for a CONNECT. */
static void connect_reply(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	answer_connect(out);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = 200;
	c->rq->connect_replied = true;
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
		d->tunnel = c->rq->upstream_tls || method_is(c, "CONNECT");
		d->parent_auth = c->w->parent_auth;
	}
}

static void start_upstream(struct conn *c);

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
		connected_cb(err, NULL, "", detail, c);
		return;
	}
	c->rq->dst_vetted = true;
	start_upstream(c);
}

/* Start the upstream side: a pooled connection, or a new one. */
static void start_upstream(struct conn *c)
{
	c->state = CONN_CONNECTING;
	if (c->rq->via_parent && c->rq->policy_need_dst && !c->rq->dst_vetted) {
		/* The parent resolves and connects, but the decision needs the
		 * destination's address: resolve it here to vet it. */
		char host[256];
		slice_copy(host, sizeof(host), c->rq->target.host);
		c->ureq = upstream_vet(c->w, host, c->rq->target.port, policy_filter, vetted_cb, c);
		if (c->ureq == NULL)
			fail_request(c, 500, "proxy_internal_error", "out of memory");
		return;
	}
	if (!method_is(c, "CONNECT") && !c->rq->upgrading) {
		char addr[64];
		struct bufferevent *u = pool_get(c->w->pool, c->rq->pool_key, addr, sizeof(addr),
						 &c->rq->upstream_sa);
		/* (a connection to the parent goes wherever the parent sends it:
		 * the destination was vetted above) */
		if (u != NULL && !c->rq->via_parent &&
		    !policy_filter(c, (const struct sockaddr *)&c->rq->upstream_sa)) {
			/* this request may not go where the pooled connection goes;
			 * a fresh connect vets every address and answers */
			pool_put(c->w->pool, c->rq->pool_key, u, addr, &c->rq->upstream_sa);
			u = NULL;
		}
		if (u != NULL) {
			c->rq->upstream_reusable = false;
			c->rq->pooled = true;
			connected_cb(UPSTREAM_OK, u, addr, NULL, c);
			return;
		}
	}
	char host[256];
	struct upstream_dest d;
	upstream_dest_of(c, &d, host, sizeof(host));
	c->ureq = upstream_connect(c->w, &d, policy_filter, connected_cb, c);
	if (c->ureq == NULL)
		fail_request(c, 500, "proxy_internal_error", "out of memory");
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
	bool mf = (method_is(c, "OPTIONS") || method_is(c, "TRACE")) && c->rq->rinfo.max_forwards > 0;
	if (mf)
		skip = c->rq->rinfo.max_forwards_index;
	head_fields(out, c->rq->req.fields, c->rq->req.nfields, c->rq->keep, skip);
	if (mf)
		evbuffer_add_printf(out, "Max-Forwards: %d\r\n", c->rq->rinfo.max_forwards - 1);
	/* Fields the proxy adds come after removal, so a client cannot strip
	 * them by listing them in Connection (RFC 9110 §7.6.3 Via). */
	head_via(out, c->rq->req.minor, cfg->via);
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

/* The authentication stage (stage_auth.c). Returns true when the request
 * may go on; else it has been answered: 407 (or 429 / 400), the connection
 * staying open for a retry when the request had no body. */
static bool authenticate(struct conn *c)
{
	struct request *rq = c->rq;
	const struct http_field *cred =
		rq->rinfo.proxy_auth_index >= 0 ? &rq->req.fields[rq->rinfo.proxy_auth_index] : NULL;
	struct auth_verdict v = stage_auth(c->w, cred, (const struct sockaddr *)&c->peer,
					   c->client_ip, rq->user, sizeof(rq->user));
	if (v.status == 0)
		return true;
	char *fields = stage_auth_refusal_fields(c->w, v.status);
	if (fields == NULL) {
		c->client_keepalive = false;
		fail_request(c, 500, "proxy_internal_error", "out of memory");
		return false;
	}
	if (v.status == 400 || !rq->rbody.done)
		c->client_keepalive = false;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	const char *error = v.status == 407 ? NULL
			    : v.status == 429 ? "http_request_denied" : "http_request_error";
	errors_respond_fields(out, v.status, error, v.details, c->w->cfg->via, !c->client_keepalive,
			      rq->head_request, fields);
	free(fields);
	rq->bytes_out += evbuffer_get_length(out) - before;
	rq->status = v.status;
	rq->outcome = v.status == 407 ? "AUTH_REQUIRED" : v.status == 429 ? "AUTH_BLOCKED" : error;
	request_done(c);
	return false;
}

/* The policy stage, phase one (stage_policy.c). Returns true when the
 * request may go on; else it has been refused. */
static bool policy_check(struct conn *c)
{
	if (c->internal) {
		/* a background revalidation repeats a request a client was
		 * allowed to make */
		c->rq->policy_need_dst = false;
		snprintf(c->rq->rule, sizeof(c->rq->rule), "-");
		return true;
	}
	struct policy_refusal no;
	if (stage_policy_check(c->w, (const struct sockaddr *)&c->peer, c->rq, &no))
		return true;
	c->client_keepalive = false;
	fail_request(c, no.status, no.error, no.details);
	return false;
}

/* Phase two, for upstream.c: may the proxy connect to this address? */
static bool policy_filter(void *arg, const struct sockaddr *sa)
{
	struct conn *c = arg;
	return stage_policy_filter(c->w, (const struct sockaddr *)&c->peer, c->rq, sa);
}

/* A CONNECT tunnel refused after its 200 (SNI peek): all that can be done is
 * to close it, and say why in the logs. */
static void sni_refuse(struct conn *c, const char *why)
{
	log_info("CONNECT %s from %s refused: %s", c->rq->host_port, c->client_ip, why);
	c->rq->outcome = "http_request_denied";
	conn_log_access(c);
	conn_close(c, why);
}

/* CONN_PEEK_SNI: read the ClientHello without consuming it and check its
 * server name ([acl] connect_sni, stage_policy.c). The tunnel then carries
 * the peeked bytes unchanged. */
static void peek_sni(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return;
	size_t want = avail < SNI_PEEK_MAX ? avail : SNI_PEEK_MAX;
	const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)want);
	char why[600];
	switch (stage_policy_sni(c->w, (const struct sockaddr *)&c->peer, c->rq, buf, want, why,
				 sizeof(why))) {
	case SNI_NEED_MORE:
		return;
	case SNI_REFUSE:
		sni_refuse(c, why);
		return;
	case SNI_PASS:
		break;
	}
	evtimer_del(c->timer);
	start_upstream(c);
}

/* Parse and dispatch one request head from the client's input buffer.
 * Returns false when it needs more bytes. */
static bool read_request(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return false;
	if (!conn_request_start(c)) {
		log_error("out of memory starting a request from %s", c->client_ip);
		conn_close(c, "out of memory");
		return false;
	}
	if (!c->head_seen) {
		/* The header deadline runs from the first byte of a request:
		 * a client that trickles bytes cannot pin the worker. */
		c->head_seen = true;
		clock_gettime(CLOCK_MONOTONIC, &c->rq->t_start);
		set_timer(c, cfg->header_timeout);
	}
	size_t want = avail < cfg->max_header_bytes + 4 ? avail : cfg->max_header_bytes + 4;
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
	struct http_limits lim = { cfg->max_request_line, cfg->max_header_bytes, cfg->max_headers };
	int status = 0;
	c->rq->req.nfields = 0;
	ssize_t r = http_parse_request(buf, want, &c->rq->req, &lim, &status);
	c->rq->bytes_in = 0;
	c->rq->bytes_out = 0;
	c->rq->status = 0;
	c->rq->outcome = NULL;
	c->rq->upstream_addr[0] = '\0';
	c->rq->target_str[0] = '\0';
	c->rq->method_str[0] = '\0';
	c->rq->res_started = false;
	c->rq->user[0] = '\0';
	c->rq->rule[0] = '\0';
	free(c->rq->cache_ctype);
	c->rq->cache_ctype = NULL;
	conn_cache_reset(c);
	c->rq->res.status = 0;
	c->rq->res.nfields = 0;
	/* the last request's target points into its head, which the parse
	 * below may reallocate */
	memset(&c->rq->target, 0, sizeof(c->rq->target));
	c->rq->via_parent = false;
	c->rq->dst_vetted = false;
	c->rq->upstream_reusable = false;
	c->rq->retried = false;
	c->rq->pooled = false;
	c->rq->connect_replied = false;
	c->rq->collapse_tried = false;
	c->rq->res.status = 0;
	c->rq->upgrading = false;
	c->rq->head_request = false;
	if (r == HTTP_NEED_MORE) {
		if (want > cfg->max_header_bytes) {
			status = 431;
			r = HTTP_ERROR;
		} else {
			return false;
		}
	}
	if (r == HTTP_ERROR) {
		c->client_keepalive = false;
		strcpy(c->rq->method_str, "-");
		c->rq->bytes_in = avail;
		const char *why = status == 414 ? "request line too long"
				  : status == 431 ? "request header section too large"
				  : status == 505 ? "HTTP version not supported"
						  : "malformed request";
		fail_request(c, status, "http_request_error", why);
		return false;
	}
	size_t head_len = (size_t)r;
	struct slice extra[2] = { c->rq->req.method, c->rq->req.target };
	if (keep_head(&c->rq->head, &c->rq->head_cap, buf, head_len, c->rq->req.fields, c->rq->req.nfields, extra,
		      2) < 0) {
		fail_request(c, 500, "proxy_internal_error", "out of memory");
		return false;
	}
	c->rq->req.method = extra[0];
	c->rq->req.target = extra[1];
	evbuffer_drain(in, head_len);
	c->rq->bytes_in = head_len;
	evtimer_del(c->timer);
	slice_copy(c->rq->method_str, sizeof(c->rq->method_str), c->rq->req.method);
	slice_copy(c->rq->target_str, sizeof(c->rq->target_str), c->rq->req.target);
	c->rq->head_request = method_is(c, "HEAD");
	c->rq->idempotent = method_idempotent(c->rq->req.method);

	/* The header stage. */
	enum hop_result hr =
		hop_classify(c->rq->req.fields, c->rq->req.nfields, HOP_REQUEST, false, c->rq->keep, &c->rq->rinfo);
	/* Persistence (RFC 9112 §9.3): 1.1 persists unless "close"; "A proxy
	 * server MUST NOT maintain a persistent connection with an HTTP/1.0
	 * client", whatever its Connection: keep-alive says. */
	c->client_keepalive = c->rq->req.minor >= 1 && !c->rq->rinfo.conn_close;
	if (c->w->draining)
		c->client_keepalive = false; /* the last request on this connection */
	if (hr == HOP_ERR_CONNECTION_FRAMING) {
		c->client_keepalive = false;
		fail_request(c, 400, "http_request_error",
			     "Connection lists a field needed by every recipient");
		return false;
	}
	if (hr != HOP_OK) {
		c->client_keepalive = false;
		fail_request(c, 400, "http_request_error", "malformed Connection header");
		return false;
	}

	struct http_framing fr;
	int fs = http_request_framing(&c->rq->req, &fr);
	if (fs != 0) {
		/* Ambiguous framing: answer and close, the rest of the stream cannot
		 * be trusted (RFC 9112 §6.3). */
		c->client_keepalive = false;
		fail_request(c, fs, "http_request_error", "invalid message framing");
		return false;
	}
	body_init(&c->rq->rbody, &fr, fr.kind == HTTP_BODY_CHUNKED, cfg->max_header_bytes);
	if (cfg->max_body > 0 && fr.kind == HTTP_BODY_LENGTH && fr.length > cfg->max_body) {
		c->client_keepalive = false;
		fail_request(c, 413, "http_request_error", "request body too large");
		return false;
	}

	/* RFC 9112 §3.2: 400 for a request with more than one Host, or an
	 * HTTP/1.1 request with none. */
	size_t nhost = 0;
	for (size_t i = 0; i < c->rq->req.nfields; i++)
		if (slice_eq_ci(c->rq->req.fields[i].name, "host"))
			nhost++;
	if (nhost > 1 || (nhost == 0 && c->rq->req.minor >= 1)) {
		c->client_keepalive = false;
		fail_request(c, 400, "http_request_error",
			     nhost ? "more than one Host field" : "missing Host field");
		return false;
	}

	if (http_parse_target(c->rq->req.method, c->rq->req.target, &c->rq->target) != 0) {
		c->client_keepalive = false;
		fail_request(c, 400, "http_request_error",
			     c->rq->target.error != NULL ? c->rq->target.error : "invalid request target");
		return false;
	}
	/* The proxy's own resources: before authentication, since a browser
	 * fetches its PAC file without proxy credentials ([admin] allow
	 * guards the rest). */
	if (c->rq->target.form == HTTP_TARGET_ORIGIN && !c->internal) {
		enum admin_resource ar = admin_lookup(c->rq->req.target.p, c->rq->req.target.len);
		if (ar != ADMIN_NONE) {
			answer_own(c, ar);
			return true;
		}
	}
	/* A background revalidation of our own repeats a request that a client
	 * was allowed to make: it is neither authenticated nor filtered. */
	if (cfg->auth_scheme == CONFIG_AUTH_BASIC && !c->internal && !authenticate(c))
		return false;
	switch (c->rq->target.form) {
	case HTTP_TARGET_ORIGIN:
		c->client_keepalive = false;
		fail_request(c, 400, "http_request_error",
			     "this is a proxy: requests must use an absolute URI");
		return false;
	case HTTP_TARGET_ASTERISK:
		/* OPTIONS * asks the proxy itself. */
		c->rq->rinfo.max_forwards = 0;
		answer_final(c);
		return true;
	case HTTP_TARGET_AUTHORITY:
	case HTTP_TARGET_ABSOLUTE:
		break;
	}
	/* An https:// URI is fetched over TLS (verified, tls.c); its pooled
	 * connections are kept apart from plain ones to the same host:port. */
	c->rq->upstream_tls = c->rq->target.form == HTTP_TARGET_ABSOLUTE &&
			  slice_eq_ci(c->rq->target.scheme, "https");
	{
		/* http_parse_target refused a longer host: these never cut it */
		_Static_assert(HTTP_MAX_HOST + 2 <= 256, "the host[256] buffers hold any host");
		_Static_assert(sizeof(c->rq->host_port) >= HTTP_MAX_HOST + 1 + sizeof("[]:65535"),
			       "host_port holds any host:port");
		_Static_assert(sizeof(c->rq->pool_key) >= sizeof("tls:") + sizeof(c->rq->host_port) +
							 sizeof("@parent") - 2,
			       "pool_key holds any key");
		char host[256];
		slice_copy(host, sizeof(host), c->rq->target.host);
		snprintf(c->rq->host_port, sizeof(c->rq->host_port),
			 c->rq->target.ipv6_literal ? "[%s]:%u" : "%s:%u", host, c->rq->target.port);
		c->rq->via_parent = cfg->nparent > 0 && (cfg->parent_direct_set == NULL ||
						   !domainset_match(cfg->parent_direct_set, host));
		/* plain requests through the parent share its connections */
		if (c->rq->via_parent && !c->rq->upstream_tls)
			snprintf(c->rq->pool_key, sizeof(c->rq->pool_key), "parent:%s:%s", cfg->parent[0].host,
				 cfg->parent[0].port);
		else
			snprintf(c->rq->pool_key, sizeof(c->rq->pool_key), "%s%s%s", c->rq->upstream_tls ? "tls:" : "",
				 c->rq->host_port, c->rq->via_parent ? "@parent" : "");
	}

	if (!policy_check(c))
		return false;

	if ((method_is(c, "OPTIONS") || method_is(c, "TRACE")) && c->rq->rinfo.max_forwards == 0) {
		answer_final(c);
		return true;
	}

	if (method_is(c, "CONNECT")) {
		if (!config_connect_port_allowed(cfg, c->rq->target.port)) {
			c->client_keepalive = false;
			fail_request(c, 403, "http_request_denied", "CONNECT to this port is not allowed");
			return false;
		}
		snprintf(c->rq->target_str, sizeof(c->rq->target_str), "%s", c->rq->host_port);
		if (cfg->acl_connect_sni != CONFIG_SNI_OFF && config_sni_port(cfg, c->rq->target.port) &&
		    !c->internal) {
			/* Answer now so the client sends its ClientHello; the
			 * upstream is opened once its SNI passes the policy. */
			connect_reply(c);
			c->state = CONN_PEEK_SNI;
			set_timer(c, cfg->header_timeout);
			peek_sni(c);
			return true;
		}
		start_upstream(c);
		return true;
	}

	/* Upgrade (RFC 9110 §7.8): carried out only for HTTP/1.1 clients that
	 * list it in Connection; the proxy then tunnels after a 101. */
	if (c->rq->rinfo.conn_upgrade && c->rq->rinfo.upgrade_index >= 0 && c->rq->req.minor >= 1) {
		c->rq->upgrading = true;
		c->rq->keep[c->rq->rinfo.upgrade_index] = true;
	}
	/* RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request
	 * is ignored; we do not pass it on either. */
	if (c->rq->req.minor == 0) {
		for (size_t i = 0; i < c->rq->req.nfields; i++)
			if (slice_eq_ci(c->rq->req.fields[i].name, "expect"))
				c->rq->keep[i] = false;
	}
	if (method_is(c, "PURGE")) {
		conn_cache_purge(c);
		return true;
	}
	if (conn_cache_request(c))
		return true;
	c->rq->res.status = 0; /* the lookup parsed a stored head into c->rq->res */
	start_upstream(c);
	return true;
}

void conn_resume_after_wait(struct conn *c)
{
	conn_cache_wait_end(c); /* timed out: leave the queue (woken: already out) */
	c->rq->collapse_tried = true;
	c->state = CONN_READ_HEAD; /* between stages: the request is parsed */
	if (conn_cache_request(c))
		return;
	c->rq->res.status = 0;
	start_upstream(c);
}

/* ---- connecting ---------------------------------------------------------- */

static void send_request(struct conn *c)
{
	build_request_head(c, bufferevent_get_output(c->ubev));
	c->state = CONN_FORWARD;
	/* The upstream read timeout runs once the whole request is sent: a slow
	 * upload is the client's timeout, not the server's. */
	struct timeval ut = timeval_of(c->w->cfg->upstream_timeout);
	bufferevent_set_timeouts(c->ubev, c->rq->rbody.done ? &ut : NULL, &ut);
	bufferevent_setcb(c->ubev, upstream_read_cb, upstream_write_cb, upstream_event_cb, c);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	if (!c->rq->rbody.done) {
		struct timeval ct = timeval_of(c->w->cfg->client_timeout);
		struct timeval wt = ct;
		bufferevent_set_timeouts(c->cbev, &ct, &wt);
		bufferevent_enable(c->cbev, EV_READ);
		client_read_cb(c->cbev, c);
	}
}

static void connected_cb(enum upstream_err err, struct bufferevent *bev, const char *addr,
			 const char *detail, void *arg)
{
	struct conn *c = arg;
	c->ureq = NULL;
	if (err != UPSTREAM_OK && c->rq->connect_replied) {
		/* the 200 is out (SNI peek): an error can only close the tunnel */
		c->rq->outcome = err == UPSTREAM_DENIED ? "http_request_denied" : upstream_err_type(err);
		conn_log_access(c);
		conn_close(c, "tunnel upstream failed");
		return;
	}
	if (err == UPSTREAM_DENIED) {
		/* the policy refused every address the name resolved to */
		c->client_keepalive = false;
		struct policy_refusal no;
		stage_policy_dst_refusal(c->rq, &no);
		fail_request(c, no.status, no.error, no.details);
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
		if (method_is(c, "CONNECT"))
			c->client_keepalive = false;
		fail_request(c, upstream_err_status(err), upstream_err_type(err), details);
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
	if (method_is(c, "CONNECT")) {
		if (!c->rq->connect_replied)
			connect_reply(c);
		tunnel_start(c);
		return;
	}
	send_request(c);
}

/* A pooled connection died before any response byte: retry once on a new one. */
static bool maybe_retry(struct conn *c)
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
	char host[256];
	struct upstream_dest d;
	upstream_dest_of(c, &d, host, sizeof(host));
	c->ureq = upstream_connect(c->w, &d, policy_filter, connected_cb, c);
	if (c->ureq == NULL)
		fail_request(c, 500, "proxy_internal_error", "out of memory");
	log_debug("retrying %s on a new connection", c->rq->host_port);
	return true;
}

/* ---- the response -------------------------------------------------------- */

/* RFC 9209 error type of a chunked response body the decoder refused. */
static const char *chunked_error_type(const struct http_chunked *ch)
{
	switch (ch->error) {
	case HTTP_CHUNKED_E_TRAILER_LINE:
		return "http_response_trailer_size";
	case HTTP_CHUNKED_E_TRAILERS:
		return "http_response_trailer_section_size";
	default:
		return "http_response_transfer_coding";
	}
}

/* Relay the response body; finish the request when it is complete. */
static void relay_response_body(struct conn *c)
{
	struct evbuffer *uin = bufferevent_get_input(c->ubev);
	struct evbuffer *cout = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(cout);
	int r = body_relay(&c->rq->sbody, uin, cout, 0);
	c->rq->bytes_out += evbuffer_get_length(cout) - before;
	if (r == BODY_MALFORMED) {
		/* The head is out: all we can do is cut the connection so the
		 * client sees an incomplete message. */
		c->rq->outcome = c->rq->sbody.in == HTTP_BODY_CHUNKED ? chunked_error_type(&c->rq->sbody.chunked)
							       : "http_response_incomplete";
		conn_log_access(c);
		c->client_keepalive = false;
		upstream_release(c, false);
		conn_close(c, "malformed response body");
		return;
	}
	if (r == BODY_DONE) {
		if (!c->rq->rbody.done) {
			/* Early response: the rest of the request body cannot be
			 * told apart from a next request, so close after this. */
			c->client_keepalive = false;
			c->rq->upstream_reusable = false;
		}
		request_done(c);
		return;
	}
	if (evbuffer_get_length(cout) > RELAY_HIGH) {
		bufferevent_disable(c->ubev, EV_READ);
		bufferevent_setwatermark(c->cbev, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

/* Write the response head for the client. */
static void send_response_head(struct conn *c, const bool *keep, const struct http_framing *fr,
			       const char *cache_status)
{
	const struct config *cfg = c->w->cfg;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	head_status(out, c->rq->res.status, c->rq->res.reason);
	head_fields(out, c->rq->res.fields, c->rq->res.nfields, keep, -1);
	head_date_if_missing(out, c->rq->res.fields, c->rq->res.nfields);
	head_via(out, c->rq->res.minor, cfg->via);
	if (cache_status[0] != '\0')
		head_field_str(out, "Cache-Status", cache_status);
	if (fr->kind == HTTP_BODY_LENGTH) {
		head_framing(out, fr->kind, fr->length);
	} else if (fr->kind == HTTP_BODY_NONE) {
		/* HEAD and 304 keep the Content-Length that describes the
		 * selected representation (RFC 9110 §8.6). */
		if (c->rq->res.status != 204 && c->rq->res.status >= 200) {
			const struct http_field *cl =
				http_field_find(c->rq->res.fields, c->rq->res.nfields, "content-length");
			if (cl != NULL)
				evbuffer_add_printf(out, "Content-Length: %.*s\r\n", (int)cl->value.len,
						    cl->value.p);
		}
	} else if (c->rq->sbody.out_chunked) {
		head_framing(out, HTTP_BODY_CHUNKED, 0);
	}
	head_end(out, !c->client_keepalive);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = c->rq->res.status;
	c->rq->res_started = true;
}

/* Forward a 1xx interim response to an HTTP/1.1 client (RFC 9110 §15.2: not
 * to 1.0 clients). */
static void send_interim(struct conn *c, const bool *keep)
{
	if (c->rq->req.minor == 0)
		return;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	head_status(out, c->rq->res.status, c->rq->res.reason);
	head_fields(out, c->rq->res.fields, c->rq->res.nfields, keep, -1);
	head_via(out, c->rq->res.minor, c->w->cfg->via);
	head_end(out, false);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
}

/* Upstream answered something we cannot pass on: 502 if nothing was sent yet. */
static void bad_response(struct conn *c, int status, const char *error, const char *details)
{
	if (c->rq->res_started) {
		c->rq->outcome = error;
		conn_log_access(c);
		conn_close(c, details);
		return;
	}
	upstream_release(c, false);
	if (conn_cache_upstream_failed(c, status))
		return;
	c->client_keepalive = false;
	fail_request(c, status, error, details);
}

/* A chunked final response whose head came with the start of its first
 * chunk-size line: the head waits for the rest of that line (it is in
 * flight), so a line the decoder refuses (too long, malformed) is a 502
 * naming why, not a response cut short. A head with no body bytes behind it
 * goes out at once (a stream may send its first chunk much later).
 * Returns 1 to go on, 0 to wait for more bytes, -1 when answered (502). */
static int first_chunk_line(struct conn *c, struct evbuffer *in, size_t head_len)
{
	struct http_framing fr;
	size_t avail = evbuffer_get_length(in);
	if (avail <= head_len || c->rq->res.status < 200 || c->rq->res.status == 101 ||
	    http_response_framing(&c->rq->res, c->rq->head_request, 0, &fr) != 0 ||
	    fr.kind != HTTP_BODY_CHUNKED)
		return 1;
	char line[HTTP_CHUNK_LINE_MAX + 2];
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(in, &pos, head_len, EVBUFFER_PTR_SET);
	ev_ssize_t n = evbuffer_copyout_from(in, &pos, line, sizeof(line));
	if (n <= 0)
		return 1;
	const char *lf = memchr(line, '\n', (size_t)n);
	size_t len = lf != NULL ? (size_t)(lf - line) + 1 : (size_t)n;
	struct http_chunked ch;
	struct slice data;
	http_chunked_init(&ch, HTTP_CHUNK_LINE_MAX, c->w->cfg->max_header_bytes);
	int ret = http_chunked_step(&ch, line, len, &data) < 0 ? -1 : lf != NULL ? 1 : 0;
	if (ret <= 0) {
		/* c->rq->res points into the input buffer, which is not kept */
		c->rq->res.status = 0;
		c->rq->res.nfields = 0;
	}
	if (ret < 0) {
		char why[128];
		http_chunked_why(&ch, why, sizeof(why));
		bad_response(c, 502, chunked_error_type(&ch), why);
	}
	return ret;
}

/* Parse response heads until the final one; then start relaying its body. */
static void read_response(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct evbuffer *uin = bufferevent_get_input(c->ubev);
	bool keep[cfg->max_headers + 1];
	while (!c->rq->res_started) {
		size_t avail = evbuffer_get_length(uin);
		if (avail == 0)
			return;
		size_t want = avail < cfg->max_header_bytes + 4 ? avail : cfg->max_header_bytes + 4;
		const char *buf = (const char *)evbuffer_pullup(uin, (ev_ssize_t)want);
		struct http_limits lim = { cfg->max_header_bytes, cfg->max_header_bytes,
					   cfg->max_headers };
		c->rq->res.nfields = 0;
		ssize_t r = http_parse_response(buf, want, &c->rq->res, &lim);
		if (r == HTTP_NEED_MORE) {
			if (want > cfg->max_header_bytes)
				bad_response(c, 502, "http_response_header_section_size",
					     "response header section too large");
			return;
		}
		if (r == HTTP_ERROR) {
			bad_response(c, 502, "http_protocol_error", "malformed response from upstream");
			return;
		}
		if (first_chunk_line(c, uin, (size_t)r) <= 0)
			return; /* the head is parsed again with the rest of the line */
		struct slice extra[1] = { c->rq->res.reason };
		if (keep_head(&c->rq->rhead, &c->rq->rhead_cap, buf, (size_t)r, c->rq->res.fields, c->rq->res.nfields,
			      extra, 1) < 0) {
			bad_response(c, 500, "proxy_internal_error", "out of memory");
			return;
		}
		c->rq->res.reason = extra[0];
		evbuffer_drain(uin, (size_t)r);
		struct hop_info info;
		enum hop_result hr =
			hop_classify(c->rq->res.fields, c->rq->res.nfields, HOP_RESPONSE, false, keep, &info);
		if (hr == HOP_ERR_CONNECTION_FRAMING) {
			bad_response(c, 502, "http_protocol_error",
				     "response Connection lists a field needed by every recipient");
			return;
		}
		if (hr != HOP_OK) {
			bad_response(c, 502, "http_protocol_error", "malformed Connection header in response");
			return;
		}
		if (c->rq->res.status == 407 && c->rq->via_parent && !c->rq->upstream_tls) {
			/* The parent wants other credentials than [upstream]
			 * parent_user: the client can do nothing about it (and
			 * Proxy-Authenticate is not passed on), so say what
			 * happened, as for a refused CONNECT. */
			char details[300];
			snprintf(details, sizeof(details), "parent %s:%s answered 407 %.*s",
				 cfg->parent[0].host, cfg->parent[0].port, (int)c->rq->res.reason.len,
				 c->rq->res.reason.p);
			for (char *p = details; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
					*p = ' ';
			bad_response(c, 502, "destination_unavailable", details);
			return;
		}
		if (c->rq->res.status == 101) {
			if (!c->rq->upgrading || info.upgrade_index < 0) {
				bad_response(c, 502, "http_upgrade_failed", "unexpected 101 response");
				return;
			}
			keep[info.upgrade_index] = true;
			struct evbuffer *out = bufferevent_get_output(c->cbev);
			size_t before = evbuffer_get_length(out);
			head_status(out, 101, c->rq->res.reason);
			head_fields(out, c->rq->res.fields, c->rq->res.nfields, keep, -1);
			head_via(out, c->rq->res.minor, cfg->via);
			head_field_str(out, "Connection", "upgrade");
			head_end(out, false);
			c->rq->bytes_out += evbuffer_get_length(out) - before;
			c->rq->status = 101;
			c->rq->res_started = true;
			tunnel_start(c);
			return;
		}
		if (c->rq->res.status < 200) {
			send_interim(c, keep);
			continue;
		}
		struct http_framing fr;
		if (http_response_framing(&c->rq->res, c->rq->head_request, 0, &fr) != 0) {
			bad_response(c, 502, "http_protocol_error", "invalid response framing");
			return;
		}
		/* Re-frame for this client: a length passes as is; chunked or
		 * close-delimited bodies go chunked to 1.1 clients and
		 * close-delimited to 1.0 clients. */
		bool out_chunked = false;
		if (fr.kind == HTTP_BODY_CHUNKED || fr.kind == HTTP_BODY_CLOSE) {
			if (c->rq->req.minor >= 1)
				out_chunked = true;
			else
				c->client_keepalive = false;
		}
		if (c->w->draining)
			c->client_keepalive = false;
		body_init(&c->rq->sbody, &fr, out_chunked, cfg->max_header_bytes);
		c->rq->upstream_reusable = c->rq->res.minor >= 1 && !info.conn_close &&
				       fr.kind != HTTP_BODY_CLOSE && !c->rq->upgrading;
		char cache_status[160];
		int cr = conn_cache_response(c, keep, &fr, cache_status, sizeof(cache_status));
		if (cr < 0) {
			bad_response(c, 500, "proxy_internal_error",
				     "the stored response was lost while it was revalidated");
			return;
		}
		if (cr == 1) {
			/* answered from the store: the upstream connection is
			 * reusable only if no body follows */
			c->rq->upstream_reusable = c->rq->upstream_reusable && fr.kind == HTTP_BODY_NONE;
			c->rq->sbody.done = false;
			request_done(c);
			return;
		}
		send_response_head(c, keep, &fr, cache_status);
	}
	relay_response_body(c);
}

/* ---- callbacks ----------------------------------------------------------- */

/* Relay request body bytes from the client to upstream. */
static void relay_request_body(struct conn *c)
{
	struct evbuffer *cin = bufferevent_get_input(c->cbev);
	struct evbuffer *uout = bufferevent_get_output(c->ubev);
	size_t before = evbuffer_get_length(cin);
	int r = body_relay(&c->rq->rbody, cin, uout, c->w->cfg->max_body);
	c->rq->bytes_in += before - evbuffer_get_length(cin);
	if (r == BODY_TOO_LARGE || (r >= 0 && c->w->cfg->max_body > 0 && c->rq->rbody.total > c->w->cfg->max_body)) {
		c->client_keepalive = false;
		if (c->rq->res_started) {
			conn_close(c, "request body too large");
			return;
		}
		upstream_release(c, false);
		fail_request(c, 413, "http_request_error", "request body too large");
		return;
	}
	if (r == BODY_MALFORMED) {
		c->client_keepalive = false;
		if (c->rq->res_started) {
			conn_close(c, "malformed request body");
			return;
		}
		upstream_release(c, false);
		char why[128];
		http_chunked_why(&c->rq->rbody.chunked, why, sizeof(why));
		fail_request(c, 400, "http_request_error", why);
		return;
	}
	if (r == BODY_DONE) {
		/* Body complete: pipelined bytes wait in the buffer. */
		struct timeval wt = timeval_of(c->w->cfg->client_timeout);
		bufferevent_set_timeouts(c->cbev, NULL, &wt);
		struct timeval ut = timeval_of(c->w->cfg->upstream_timeout);
		bufferevent_set_timeouts(c->ubev, &ut, &ut);
		return;
	}
	if (evbuffer_get_length(uout) > RELAY_HIGH) {
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_setwatermark(c->ubev, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

/* Make whatever progress the buffered bytes allow. */
static void conn_advance(struct conn *c)
{
	switch (c->state) {
	case CONN_READ_HEAD:
		read_request(c);
		break;
	case CONN_FORWARD:
		if (!c->rq->rbody.done)
			relay_request_body(c);
		break;
	case CONN_PEEK_SNI:
		peek_sni(c);
		break;
	default:
		break;
	}
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_advance(arg);
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->state == CONN_FLUSH_CLOSE) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_close(c, "done");
		return;
	}
	if (c->state == CONN_FORWARD && c->ubev != NULL) {
		/* drained below the low mark: resume reading the response */
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->ubev, EV_READ);
		if (c->rq->res_started)
			relay_response_body(c);
	}
}

/* The HTTPS proxy port's handshake ended. */
static void client_handshake(struct conn *c, short what)
{
	const struct config *cfg = c->w->cfg;
	if (what & BEV_EVENT_CONNECTED) {
		c->tls_handshaking = false;
		metrics_tls_handshake(c->w->metrics, true);
		set_timer(c, cfg->idle_timeout);
		return;
	}
	char why[512] = "";
	unsigned long e;
	while ((e = bufferevent_get_openssl_error(c->cbev)) != 0)
		tls_err_append(why, sizeof(why), e);
	if (why[0] == '\0')
		snprintf(why, sizeof(why), "%s", (what & BEV_EVENT_EOF) ? "client closed the connection"
							 : "connection error");
	metrics_tls_handshake(c->w->metrics, false);
	log_info("TLS handshake with %s failed: %s", c->client_ip, why);
	/* Read what the client sent (a plain HTTP request, say), so the close
	 * is a FIN and not a reset. */
	char sink[4096];
	int fd = bufferevent_getfd(c->cbev);
	for (int i = 0; i < 16 && fd >= 0 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	conn_close(c, "TLS handshake failed");
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (c->tls_handshaking) {
		client_handshake(c, what);
		return;
	}
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->rq != NULL &&
	    c->rq->rbody.done &&
	    (c->state == CONN_CONNECTING || c->state == CONN_FORWARD)) {
		/* Half-close after a complete request: answer it, then close. */
		c->client_keepalive = false;
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		conn_close(c, "client timeout");
		return;
	}
	conn_close(c, (what & BEV_EVENT_EOF) ? "client closed" : "client error");
}

static void upstream_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (!c->rq->res_started)
		read_response(c);
	else
		relay_response_body(c);
}

static void upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (!c->rq->rbody.done) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->cbev, EV_READ);
		relay_request_body(c);
	}
}

static void upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		if (!c->rq->res_started)
			bad_response(c, 504, "http_response_timeout", "upstream did not answer in time");
		else
			bad_response(c, 504, "connection_read_timeout", "upstream stalled");
		return;
	}
	if (!c->rq->res_started && c->rq->res.status == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0 && maybe_retry(c))
		return;
	if (what & BEV_EVENT_EOF) {
		/* Bytes may still sit in the input buffer: parse and relay them
		 * first. Either step may end the request or the connection. */
		if (!c->rq->res_started) {
			read_response(c);
			if (c->dead || c->state != CONN_FORWARD)
				return;
			if (!c->rq->res_started) {
				bad_response(c, 502, "http_response_incomplete",
					     "upstream closed without a complete response");
				return;
			}
		}
		relay_response_body(c);
		if (c->dead || c->state != CONN_FORWARD)
			return;
		if (c->rq->sbody.in == HTTP_BODY_CLOSE) {
			c->rq->bytes_out += body_close(&c->rq->sbody, bufferevent_get_output(c->cbev));
			c->rq->upstream_reusable = false;
			if (!c->rq->rbody.done)
				c->client_keepalive = false;
			request_done(c);
			return;
		}
		bad_response(c, 502, "http_response_incomplete", "upstream closed mid-response");
		return;
	}
	bad_response(c, 502, "connection_terminated", "upstream connection error");
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct conn *c = arg;
	switch (c->state) {
	case CONN_READ_HEAD:
		if (c->tls_handshaking) {
			metrics_tls_handshake(c->w->metrics, false);
			log_info("TLS handshake with %s failed: timeout", c->client_ip);
			conn_close(c, "TLS handshake timeout");
		} else if (c->head_seen) {
			/* RFC 9110 §15.5.9: 408 for a request not completed in time. */
			c->client_keepalive = false;
			strcpy(c->rq->method_str, "-");
			fail_request(c, 408, "http_request_error", "request header timeout");
		} else {
			conn_close(c, "idle timeout");
		}
		break;
	case CONN_FLUSH_CLOSE:
		conn_close(c, "client not reading");
		break;
	case CONN_PEEK_SNI:
		snprintf(c->rq->rule, sizeof(c->rq->rule), "connect_sni");
		sni_refuse(c, "no ClientHello in time");
		break;
	case CONN_WAIT_FETCH:
		/* woken by the fetch it waited for, or tired of waiting */
		conn_resume_after_wait(c);
		break;
	default:
		break;
	}
}

void conn_drain(struct conn *c, bool grace)
{
	if (c->state == CONN_READ_HEAD && !c->head_seen &&
	    evbuffer_get_length(bufferevent_get_input(c->cbev)) == 0) {
		if (!grace) {
			conn_close(c, "shutdown");
			return;
		}
		/* A keep-alive client may be sending its next request right
		 * now: closing would lose it. Wait a moment for it (it is then
		 * answered with Connection: close), else close as idle. */
		double idle = c->w->cfg->idle_timeout;
		set_timer(c, idle < DRAIN_IDLE_GRACE ? idle : DRAIN_IDLE_GRACE);
		return;
	}
	/* Busy: a response head not yet sent says Connection: close (the
	 * draining check where heads are built); one already sent stands. */
	if (!grace)
		c->client_keepalive = false;
}

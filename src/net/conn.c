/* conn.c - the per-client state machine.
 *
 * A client connection reads one request head at a time, runs it through the
 * stages (parser, header stage, policy checks), connects upstream (or takes a
 * pooled connection), relays the request body up and the response back,
 * re-framed for each hop, then either waits for the next request on the same
 * connection or closes. Pipelined requests stay in the client's input buffer
 * until the response before them is complete, so answers go out in order. */
#include "conn.h"
#include "conn_impl.h"

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

#include "admin.h"
#include "answer.h"
#include "body.h"
#include "config.h"
#include "conn_cache.h"
#include "domainset.h"
#include "errors.h"
#include "stage_limits.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proxy_proto.h"
#include "h2.h"
#include "stage_auth.h"
#include "stage_directory.h"
#include "stage_policy.h"
#include "timeval.h"
#include "tls.h"
#include "upstream.h"
#include "worker.h"

static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_advance(struct conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void peek_sni(struct conn *c);

uint64_t conn_elapsed_ms(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint64_t)ms;
}

void conn_set_timer(struct conn *c, double seconds)
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
	free(rq->auth_reply);
	free(rq);
	c->rq = NULL;
}

/* The worker's count a connection is in: the admin listener's budget is
 * its own ([admin] max_connections). */
static size_t *conn_counter(const struct conn *c)
{
	return c->admin ? &c->w->nadmin_conns : &c->w->nconns;
}

/* conn_new, conn_new_admin, and conn_new_h2 (h2: a stream's end of a
 * socketpair). */
static struct conn *conn_create(struct worker *w, int fd, const struct sockaddr *sa, int salen,
				SSL_CTX *tls, bool h2, bool admin)
{
	const struct config *cfg = w->cfg;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	c->w = w;
	c->admin = admin;
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
	bufferevent_setcb(c->cbev, conn_client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	c->state = CONN_READ_HEAD;
	conn_set_timer(c, c->tls ? cfg->tls_handshake_timeout : cfg->idle_timeout);

	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	(*conn_counter(c))++;
	c->h2 = h2;
	if (!c->internal && !c->h2)
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

struct conn *conn_new(struct worker *w, int fd, const struct sockaddr *sa, int salen, SSL_CTX *tls)
{
	return conn_create(w, fd, sa, salen, tls, false, false);
}

struct conn *conn_new_admin(struct worker *w, int fd, const struct sockaddr *sa, int salen)
{
	return conn_create(w, fd, sa, salen, NULL, false, true);
}

struct conn *conn_new_h2(struct worker *w, int fd, const struct sockaddr *sa, int salen)
{
	return conn_create(w, fd, sa, salen, NULL, true, false);
}

/* Release the upstream side; return it to the pool when it is reusable. */
void conn_upstream_release(struct conn *c, bool reuse)
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
	free(c->auth_user);
	free(c);
}

/* ---- the idle list: keep-alive connections waiting for a request, oldest
 * first, so a full worker can make room by closing the one idle longest */

static void idle_enter(struct conn *c)
{
	struct worker *w = c->w;
	if (c->idle || c->h2 || c->internal || c->admin)
		return; /* an admin connection's place is not the proxy port's */
	c->idle = true;
	c->idle_next = NULL;
	c->idle_prev = w->idle_newest;
	if (w->idle_newest != NULL)
		w->idle_newest->idle_next = c;
	else
		w->idle_oldest = c;
	w->idle_newest = c;
}

static void idle_leave(struct conn *c)
{
	struct worker *w = c->w;
	if (!c->idle)
		return;
	c->idle = false;
	if (c->idle_prev != NULL)
		c->idle_prev->idle_next = c->idle_next;
	else
		w->idle_oldest = c->idle_next;
	if (c->idle_next != NULL)
		c->idle_next->idle_prev = c->idle_prev;
	else
		w->idle_newest = c->idle_prev;
	c->idle_next = c->idle_prev = NULL;
}

struct conn *conn_oldest_idle(struct worker *w)
{
	return w->idle_oldest;
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
	idle_leave(c);
	if (c->counted)
		limits_conn_closed(w, (const struct sockaddr *)&c->peer);
	stage_directory_cancel(c);
	tunnel_free(c);
	if (c->rq != NULL)
		conn_cache_finish(c, false);
	if (c->rq != NULL && c->rq->outcome == OUTCOME_NONE && c->state != CONN_READ_HEAD &&
	    c->state != CONN_FLUSH_CLOSE) {
		c->rq->outcome = OUTCOME_CLIENT_CLOSED;
		conn_log_access(c);
	}
	conn_upstream_release(c, false);
	if (c->tls && !c->tls_handshaking && c->cbev != NULL) {
		/* close_notify, so the client can tell our close from a cut */
		SSL *ssl = bufferevent_openssl_get_ssl(c->cbev);
		if (ssl != NULL && SSL_shutdown(ssl) < 0)
			ERR_clear_error();
	}
	if (c->cbev != NULL)
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
	(*conn_counter(c))--;
	if (!c->internal && !c->h2)
		metrics_conn(w->metrics, -1);
	worker_conn_closed(w);
}

/* Write everything buffered for the client, then close. */
void conn_flush_close(struct conn *c)
{
	conn_upstream_release(c, false);
	c->state = CONN_FLUSH_CLOSE;
	bufferevent_disable(c->cbev, EV_READ);
	evtimer_del(c->timer);
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0) {
		conn_close(c, "done");
		return;
	}
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	conn_set_timer(c, c->w->cfg->client_timeout);
}

/* Answer the current request with a proxy-generated error (plus fields, when
 * not NULL) and close. */
void conn_fail_with(struct conn *c, int status, enum outcome error, const char *details,
		      const char *fields)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	errors_respond_fields(out, status, error, details, c->w->cfg->via, true, c->rq->head_request,
			      fields);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = status;
	c->rq->outcome = error != OUTCOME_NONE ? error : OUTCOME_OK;
	conn_log_access(c);
	conn_flush_close(c);
}

void conn_fail(struct conn *c, int status, enum outcome error, const char *details)
{
	conn_fail_with(c, status, error, details, NULL);
}

/* A request is over: log it, then serve the next one or close. */
void conn_done(struct conn *c)
{
	conn_cache_finish(c, c->rq->sbody.done);
	c->rq->outcome = c->rq->outcome != OUTCOME_NONE ? c->rq->outcome : OUTCOME_OK;
	conn_log_access(c);
	conn_upstream_release(c, c->rq->upstream_reusable);
	/* client_keepalive is what the response's head told the client. A
	 * retiring worker (reload) that told it "keep-alive" before the drain
	 * began must still take the request the client may be sending: it is
	 * answered with Connection: close. A stopping worker closes. */
	if (!c->client_keepalive || (c->w->draining && !c->w->retiring)) {
		conn_flush_close(c);
		return;
	}
	request_free(c); /* idle: only the connection stays */
	c->state = CONN_READ_HEAD;
	c->head_seen = false;
	idle_enter(c);
	bufferevent_set_timeouts(c->cbev, NULL, NULL);
	struct timeval wt = timeval_of(c->w->cfg->client_timeout);
	bufferevent_set_timeouts(c->cbev, NULL, &wt);
	bufferevent_enable(c->cbev, EV_READ);
	double idle = c->w->cfg->idle_timeout;
	conn_set_timer(c, c->w->draining && idle > DRAIN_IDLE_GRACE ? DRAIN_IDLE_GRACE : idle);
	/* A pipelined request may already be buffered: serve it from the event
	 * loop rather than recursing (a long pipeline must not grow the stack). */
	if (evbuffer_get_length(bufferevent_get_input(c->cbev)) > 0)
		bufferevent_trigger(c->cbev, EV_READ,
				    BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- the request --------------------------------------------------------- */

/* Relocate the parsed request's slices from the parse buffer to c->rq->head. */
int conn_keep_head(char **buf, size_t *cap, const char *src, size_t len,
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

bool conn_method_is(const struct conn *c, const char *m)
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

/* Send a local answer's result: done, or its error and close. */
static void local_answered(struct conn *c, struct evbuffer *out, size_t before, struct answer a)
{
	if (a.error != OUTCOME_NONE) {
		c->client_keepalive = false;
		conn_fail_with(c, a.status, a.error, a.details, a.fields);
		return;
	}
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = a.status;
	c->rq->outcome = OUTCOME_OK;
	conn_done(c);
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

/* GET or HEAD of one of the proxy's own resources (admin.c), on the listener
 * the connection came in on. */
static void answer_own(struct conn *c, enum admin_resource ar)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	if (!c->rq->rbody.done)
		c->client_keepalive = false; /* its body is not read: close after */
	struct answer a = answer_admin(out, ar, c->w->cfg, c->w->metrics_all, &c->rq->req,
				       (const struct sockaddr *)&c->peer, c->admin, !c->client_keepalive);
	local_answered(c, out, before, a);
}

void conn_auth_reply(const struct conn *c, struct evbuffer *out)
{
	if (c->rq->auth_reply != NULL)
		evbuffer_add(out, c->rq->auth_reply, strlen(c->rq->auth_reply));
}

/* "200 Connection established" for a CONNECT. */
void conn_connect_reply(struct conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	answer_connect(out, c->rq->auth_reply);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = 200;
	c->rq->connect_replied = true;
}

/* Forget the identity a Negotiate exchange gave the connection. */
static void conn_identity_clear(struct conn *c)
{
	free(c->auth_user);
	c->auth_user = NULL;
}

/* A request without Proxy-Authorization on a connection that authenticated
 * with Negotiate ([auth] connection_auth): the connection's identity, until
 * its ticket expires. RFC 4559 §6 describes Negotiate as authenticating the
 * connection; each client connection here is one client's (behind HAProxy,
 * a connection that began with a PROXY protocol header is never shared
 * between clients). */
static bool connection_identity(struct conn *c)
{
	if (c->auth_user == NULL && c->h2)
		h2_identity_get(c->w, c->h2_session, &c->auth_user, &c->auth_until);
	if (c->auth_user == NULL)
		return false;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec >= c->auth_until) {
		conn_identity_clear(c);
		return false;
	}
	snprintf(c->rq->user, sizeof(c->rq->user), "%s", c->auth_user);
	return true;
}

/* After a fresh authentication: a Negotiate identity is kept for the
 * connection (for an HTTP/2 stream: for the h2 connection, its other
 * streams included); any other outcome ends what it kept. */
static void connection_identity_set(struct conn *c, const struct auth_grant *g)
{
	conn_identity_clear(c);
	if (c->h2)
		h2_identity_set(c->w, c->h2_session, NULL, 0);
	if (!g->negotiate || !c->w->cfg->auth_connection || g->lifetime == 0)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((c->auth_user = strdup(c->rq->user)) != NULL)
		c->auth_until = (int64_t)now.tv_sec + g->lifetime;
	if (c->h2 && c->auth_user != NULL) /* the h2 connection's, for its other streams */
		h2_identity_set(c->w, c->h2_session, c->auth_user, c->auth_until);
}

/* Answer a refused authentication: 407 (or 429 / 400), the connection
 * staying open for a retry when the request had no body; 503 when the
 * directory cannot answer, 500 (out of memory). */
static void auth_refused(struct conn *c, int status, const char *details)
{
	struct request *rq = c->rq;
	if (status == 503 || status == 500) {
		c->client_keepalive = false;
		conn_fail(c, status, OUTCOME_PROXY_INTERNAL_ERROR, details);
		return;
	}
	char *fields = stage_auth_refusal_fields(c->w, status);
	if (fields == NULL) {
		c->client_keepalive = false;
		conn_fail(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
		return;
	}
	if (status == 400 || !rq->rbody.done)
		c->client_keepalive = false;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	enum outcome error = status == 407 ? OUTCOME_NONE
			    : status == 429 ? OUTCOME_HTTP_REQUEST_DENIED : OUTCOME_HTTP_REQUEST_ERROR;
	errors_respond_fields(out, status, error, details, c->w->cfg->via, !c->client_keepalive,
			      rq->head_request, fields);
	free(fields);
	rq->bytes_out += evbuffer_get_length(out) - before;
	rq->status = status;
	rq->outcome = status == 407 ? OUTCOME_AUTH_REQUIRED : status == 429 ? OUTCOME_AUTH_BLOCKED : error;
	conn_done(c);
}

/* The authentication stage (stage_auth.c). Returns true when the request
 * may go on; else it has been answered, or it waits for the directory to
 * check the password (stage_directory.c; then conn_directory_resume goes
 * on). */
static bool authenticate(struct conn *c)
{
	struct request *rq = c->rq;
	const struct http_field *cred =
		rq->rinfo.proxy_auth_index >= 0 ? &rq->req.fields[rq->rinfo.proxy_auth_index] : NULL;
	if (cred == NULL && connection_identity(c)) {
		rq->user_kerberos = true; /* kept only from Negotiate */
		return true;
	}
	struct auth_grant g;
	struct auth_verdict v = stage_auth(c->w, cred, (const struct sockaddr *)&c->peer,
					   c->client_ip, rq->user, sizeof(rq->user), &g);
	if (cred != NULL)
		connection_identity_set(c, v.status == 0 ? &g : &(struct auth_grant){ 0 });
	if (v.status == 0) {
		rq->auth_reply = g.reply;
		rq->user_kerberos = g.negotiate;
		return true;
	}
	if (v.status != AUTH_DIRECTORY) {
		auth_refused(c, v.status, v.details);
		return false;
	}
	switch (stage_directory_bind(c, cred)) {
	case DIRV_READY:
		return true; /* known from the caches */
	case DIRV_PENDING:
		break;
	case DIRV_REFUSED:
		auth_refused(c, 407, "wrong user name or password");
		break;
	case DIRV_UNAVAILABLE:
		auth_refused(c, 503, STAGE_DIRECTORY_DOWN);
		break;
	}
	return false;
}

/* The policy stage, phase one (stage_policy.c). Returns true when the
 * request may go on; else it has been refused, or it waits for the user's
 * directory groups (then conn_directory_resume runs the policy again). */
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
	switch (stage_policy_check(c->w, (const struct sockaddr *)&c->peer, c->rq, &no)) {
	case POLICY_GO:
		return true;
	case POLICY_NEED_GROUPS:
		switch (stage_directory_groups(c)) {
		case DIRV_READY:
			return policy_check(c); /* once: the groups are known now */
		case DIRV_PENDING:
			return false;
		case DIRV_UNAVAILABLE:
		case DIRV_REFUSED:
			break;
		}
		c->client_keepalive = false;
		conn_fail(c, 503, OUTCOME_PROXY_INTERNAL_ERROR, STAGE_DIRECTORY_DOWN);
		return false;
	case POLICY_REFUSED:
		break;
	}
	c->client_keepalive = false;
	conn_fail(c, no.status, no.error, no.details);
	return false;
}

/* Phase two, for upstream.c: may the proxy connect to this address? */
bool conn_policy_filter(void *arg, const struct sockaddr *sa)
{
	struct conn *c = arg;
	return stage_policy_filter(c->w, (const struct sockaddr *)&c->peer, c->rq, sa);
}

/* A CONNECT tunnel refused after its 200 (SNI peek): all that can be done is
 * to close it, and say why in the logs. */
static void sni_refuse(struct conn *c, const char *why)
{
	log_info("CONNECT %s from %s refused: %s", c->rq->host_port, c->client_ip, why);
	c->rq->outcome = OUTCOME_HTTP_REQUEST_DENIED;
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
	/* the longest: "server name " + a name tls_peek accepts (<= 253) +
	 * " denied by " + a rule name (<= 63, config_rules.c) */
	char why[12 + 253 + 11 + 63 + 1];
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
	conn_start_upstream(c);
}

/* Start a request from the client's input buffer: its state, the header
 * deadline, the parsed head kept in rq->head. Returns 1 when a head is
 * parsed, 0 when more bytes are needed, -1 when it was answered (or the
 * connection closed). */
static int take_head(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct evbuffer *in = bufferevent_get_input(c->cbev);
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return 0;
	if (!conn_request_start(c)) {
		log_error("out of memory starting a request from %s", c->client_ip);
		conn_close(c, "out of memory");
		return -1;
	}
	struct request *rq = c->rq;
	if (!c->head_seen) {
		/* The header deadline runs from the first byte of a request:
		 * a client that trickles bytes cannot pin the worker. */
		c->head_seen = true;
		idle_leave(c);
		clock_gettime(CLOCK_MONOTONIC, &rq->t_start);
		conn_set_timer(c, cfg->header_timeout);
	}
	size_t want = avail < cfg->max_header_bytes + 4 ? avail : cfg->max_header_bytes + 4;
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
	struct http_limits lim = { cfg->max_request_line, cfg->max_header_bytes, cfg->max_headers };
	int status = 0;
	rq->req.nfields = 0;
	ssize_t r = http_parse_request(buf, want, &rq->req, &lim, &status);
	if (r == HTTP_NEED_MORE) {
		if (want <= cfg->max_header_bytes)
			return 0;
		status = 431;
		r = HTTP_ERROR;
	}
	if (r == HTTP_ERROR) {
		c->client_keepalive = false;
		strcpy(rq->method_str, "-");
		rq->bytes_in = avail;
		const char *why = status == 414 ? "request line too long"
				  : status == 431 ? "request header section too large"
				  : status == 505 ? "HTTP version not supported"
						  : "malformed request";
		if (proxy_proto_signature((const uint8_t *)buf, want)) {
			/* a balancer this proxy was not told to trust */
			why = "a PROXY protocol header from an address not in [proxy] proxy_protocol";
			status = 400;
			log_info("%s: %s", c->client_ip, why);
		}
		conn_fail(c, status, OUTCOME_HTTP_REQUEST_ERROR, why);
		return -1;
	}
	size_t head_len = (size_t)r;
	struct slice extra[2] = { rq->req.method, rq->req.target };
	if (conn_keep_head(&rq->head, &rq->head_cap, buf, head_len, rq->req.fields, rq->req.nfields,
			   extra, 2) < 0) {
		conn_fail(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
		return -1;
	}
	rq->req.method = extra[0];
	rq->req.target = extra[1];
	evbuffer_drain(in, head_len);
	rq->bytes_in = head_len;
	evtimer_del(c->timer);
	slice_copy(rq->method_str, sizeof(rq->method_str), rq->req.method);
	slice_copy(rq->target_str, sizeof(rq->target_str), rq->req.target);
	rq->head_request = conn_method_is(c, "HEAD");
	rq->idempotent = method_idempotent(rq->req.method);
	return 1;
}

/* Refuse a request as malformed (400 unless said) and close. */
static bool refuse(struct conn *c, int status, const char *why)
{
	c->client_keepalive = false;
	conn_fail(c, status, OUTCOME_HTTP_REQUEST_ERROR, why);
	return false;
}

/* The header stage, persistence, framing and target of a parsed head.
 * Returns false when the request was refused. */
static bool check_head(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct request *rq = c->rq;
	enum hop_result hr = hop_classify(rq->req.fields, rq->req.nfields, HOP_REQUEST, false,
					  rq->keep, &rq->rinfo);
	/* Persistence (RFC 9112 §9.3): 1.1 persists unless "close"; "A proxy
	 * server MUST NOT maintain a persistent connection with an HTTP/1.0
	 * client", whatever its Connection: keep-alive says. */
	c->client_keepalive = rq->req.minor >= 1 && !rq->rinfo.conn_close;
	if (c->w->draining)
		c->client_keepalive = false; /* the last request on this connection */
	if (hr == HOP_ERR_CONNECTION_FRAMING)
		return refuse(c, 400, "Connection lists a field needed by every recipient");
	if (hr != HOP_OK)
		return refuse(c, 400, "malformed Connection header");
	struct http_framing fr;
	int fs = http_request_framing(&rq->req, &fr);
	if (fs != 0) /* ambiguous: the rest of the stream cannot be trusted (RFC 9112 §6.3) */
		return refuse(c, fs, "invalid message framing");
	body_init(&rq->rbody, &fr, fr.kind == HTTP_BODY_CHUNKED, cfg->max_header_bytes);
	if (cfg->max_body > 0 && fr.kind == HTTP_BODY_LENGTH && fr.length > cfg->max_body)
		return refuse(c, 413, "request body too large");
	/* RFC 9112 §3.2: 400 for a request with more than one Host, or an
	 * HTTP/1.1 request with none. */
	size_t nhost = 0;
	for (size_t i = 0; i < rq->req.nfields; i++)
		if (slice_eq_ci(rq->req.fields[i].name, "host"))
			nhost++;
	if (nhost > 1 || (nhost == 0 && rq->req.minor >= 1))
		return refuse(c, 400, nhost ? "more than one Host field" : "missing Host field");
	if (http_parse_target(rq->req.method, rq->req.target, &rq->target) != 0)
		return refuse(c, 400, rq->target.error != NULL ? rq->target.error
							: "invalid request target");
	return true;
}

/* Where the request goes: TLS for an https:// URI (its pooled connections
 * kept apart from plain ones to the same host:port), directly or through
 * [upstream] parent, and the pool key that follows. */
static void route(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct request *rq = c->rq;
	rq->upstream_tls = rq->target.form == HTTP_TARGET_ABSOLUTE &&
			   slice_eq_ci(rq->target.scheme, "https");
	/* http_parse_target refused a longer host: these never cut it */
	_Static_assert(HTTP_MAX_HOST + 2 <= 256, "the host[256] buffers hold any host");
	_Static_assert(sizeof(rq->host_port) >= HTTP_MAX_HOST + 1 + sizeof("[]:65535"),
		       "host_port holds any host:port");
	_Static_assert(sizeof(rq->pool_key) >=
			       sizeof("tls:") + sizeof(rq->host_port) + sizeof("@parent") - 2,
		       "pool_key holds any key");
	char host[256];
	slice_copy(host, sizeof(host), rq->target.host);
	snprintf(rq->host_port, sizeof(rq->host_port), rq->target.ipv6_literal ? "[%s]:%u" : "%s:%u",
		 host, rq->target.port);
	rq->via_parent = cfg->nparent > 0 && (cfg->parent_direct_set == NULL ||
					     !domainset_match(cfg->parent_direct_set, host));
	/* plain requests through the parent share its connections */
	if (rq->via_parent && !rq->upstream_tls)
		snprintf(rq->pool_key, sizeof(rq->pool_key), "parent:%s:%s", cfg->parent[0].host,
			 cfg->parent[0].port);
	else
		snprintf(rq->pool_key, sizeof(rq->pool_key), "%s%s%s", rq->upstream_tls ? "tls:" : "",
			 rq->host_port, rq->via_parent ? "@parent" : "");
}

/* A CONNECT the policy allowed: the port allow-list, then the tunnel, or
 * first the server-name check of the client's ClientHello. */
static void start_connect(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	struct request *rq = c->rq;
	if (!config_connect_port_allowed(cfg, rq->target.port)) {
		c->client_keepalive = false;
		conn_fail(c, 403, OUTCOME_HTTP_REQUEST_DENIED, "CONNECT to this port is not allowed");
		return;
	}
	snprintf(rq->target_str, sizeof(rq->target_str), "%s", rq->host_port);
	if (cfg->acl_connect_sni != CONFIG_SNI_OFF && config_sni_port(cfg, rq->target.port) &&
	    !c->internal) {
		/* Answer now so the client sends its ClientHello; the upstream
		 * is opened once its SNI passes the policy. */
		conn_connect_reply(c);
		c->state = CONN_PEEK_SNI;
		conn_set_timer(c, cfg->header_timeout);
		peek_sni(c);
		return;
	}
	conn_start_upstream(c);
}

/* A request to forward: the fields only this hop decides on. */
static void prepare_forward(struct request *rq)
{
	/* Upgrade (RFC 9110 §7.8): carried out only for HTTP/1.1 clients that
	 * list it in Connection; the proxy then tunnels after a 101. */
	if (rq->rinfo.conn_upgrade && rq->rinfo.upgrade_index >= 0 && rq->req.minor >= 1) {
		rq->upgrading = true;
		rq->keep[rq->rinfo.upgrade_index] = true;
	}
	/* RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request
	 * is ignored; we do not pass it on either. */
	if (rq->req.minor == 0)
		for (size_t i = 0; i < rq->req.nfields; i++)
			if (slice_eq_ci(rq->req.fields[i].name, "expect"))
				rq->keep[i] = false;
}

/* From the policy stage on: the policy (which may wait for the user's
 * directory groups and come back here), then local answers, CONNECT, PURGE,
 * the cache and the upstream. */
static void dispatch(struct conn *c)
{
	struct request *rq = c->rq;
	if (!policy_check(c))
		return;
	if ((conn_method_is(c, "OPTIONS") || conn_method_is(c, "TRACE")) &&
	    rq->rinfo.max_forwards == 0) {
		answer_final(c);
		return;
	}
	if (conn_method_is(c, "CONNECT")) {
		start_connect(c);
		return;
	}
	prepare_forward(rq);
	if (conn_method_is(c, "PURGE")) {
		if (c->w->cfg->nadmin_listen > 0) {
			c->client_keepalive = false;
			conn_fail(c, 403, OUTCOME_HTTP_REQUEST_DENIED,
				  "PURGE is served on the admin listener ([admin] listen)");
			return;
		}
		conn_cache_purge(c);
		return;
	}
	if (conn_cache_request(c))
		return;
	rq->res.status = 0; /* the lookup parsed a stored head into rq->res */
	conn_start_upstream(c);
}

/* After the authentication stage (which may have waited for the directory
 * and come back here): the target's form, where the request goes, then
 * the rest. */
static void after_auth(struct conn *c)
{
	struct request *rq = c->rq;
	if (!limits_request_user(c))
		return;
	if (rq->target.form == HTTP_TARGET_ORIGIN) {
		refuse(c, 400, "this is a proxy: requests must use an absolute URI");
		return;
	}
	if (rq->target.form == HTTP_TARGET_ASTERISK) {
		rq->rinfo.max_forwards = 0; /* OPTIONS * asks the proxy itself */
		answer_final(c);
		return;
	}
	route(c);
	dispatch(c);
}

/* A request on the admin listener (admin.c routes it): a resource, a PURGE
 * ([cache] purge_allow decides), or a refusal. No authentication and no
 * policy: [admin] allow and purge_allow guard it, and nothing is forwarded. */
static void admin_request(struct conn *c)
{
	struct request *rq = c->rq;
	struct admin_route ro = admin_route(rq->req.method, rq->req.target, &rq->target);
	switch (ro.kind) {
	case ADMIN_ROUTE_RESOURCE:
		answer_own(c, ro.r);
		return;
	case ADMIN_ROUTE_PURGE:
		conn_cache_purge(c);
		return;
	case ADMIN_ROUTE_REFUSE:
		break;
	}
	c->client_keepalive = false;
	conn_fail_with(c, ro.status, OUTCOME_HTTP_REQUEST_ERROR, ro.details, ro.fields);
}

/* Parse and dispatch one request head from the client's input buffer,
 * through the stages in order. */
static void read_request(struct conn *c)
{
	if (take_head(c) <= 0 || !check_head(c))
		return;
	if (c->admin) {
		admin_request(c); /* operators: no per-client limit */
		return;
	}
	if (!limits_request_client(c))
		return;
	struct request *rq = c->rq;
	/* The proxy's own resources: before authentication, since a browser
	 * fetches its PAC file without proxy credentials ([admin] allow
	 * guards the rest). */
	if (rq->target.form == HTTP_TARGET_ORIGIN && !c->internal) {
		enum admin_resource ar = admin_lookup(rq->req.target.p, rq->req.target.len);
		if (ar != ADMIN_NONE) {
			answer_own(c, ar);
			return;
		}
	}
	/* A background revalidation of our own repeats a request that a client
	 * was allowed to make: it is neither authenticated nor filtered. */
	if (c->w->cfg->nauth_schemes > 0 && !c->internal && !authenticate(c))
		return;
	after_auth(c);
}

void conn_directory_resume(struct conn *c, int status, const char *details)
{
	evtimer_del(c->timer);
	c->state = CONN_READ_HEAD; /* between stages: the request is parsed */
	bufferevent_enable(c->cbev, EV_READ);
	if (status != 0)
		auth_refused(c, status, details);
	else if (c->dir_step == DIR_STEP_AUTH)
		after_auth(c);
	else
		dispatch(c);
}

void conn_resume_after_wait(struct conn *c)
{
	conn_cache_wait_end(c); /* timed out: leave the queue (woken: already out) */
	c->rq->collapse_tried = true;
	c->state = CONN_READ_HEAD; /* between stages: the request is parsed */
	if (conn_cache_request(c))
		return;
	c->rq->res.status = 0;
	conn_start_upstream(c);
}

/* ---- connecting ---------------------------------------------------------- */

/* ---- the response -------------------------------------------------------- */

/* ---- callbacks ----------------------------------------------------------- */

/* Make whatever progress the buffered bytes allow. */
static void conn_advance(struct conn *c)
{
	switch (c->state) {
	case CONN_READ_HEAD:
		read_request(c);
		break;
	case CONN_FORWARD:
		if (!c->rq->rbody.done)
			conn_relay_request_body(c);
		break;
	case CONN_PEEK_SNI:
		peek_sni(c);
		break;
	default:
		break;
	}
}

void conn_client_read_cb(struct bufferevent *bev, void *arg)
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
			conn_relay_response_body(c);
	}
}

/* The HTTPS proxy port's handshake ended. */
static void client_handshake(struct conn *c, short what)
{
	const struct config *cfg = c->w->cfg;
	if (what & BEV_EVENT_CONNECTED) {
		c->tls_handshaking = false;
		metrics_tls_handshake(c->w->metrics, true);
		if (tls_alpn_h2(bufferevent_openssl_get_ssl(c->cbev))) {
			/* ALPN chose h2: an h2 session takes the connection over */
			struct bufferevent *bev = c->cbev;
			c->cbev = NULL;
			c->tls = false; /* no close_notify: the session owns the TLS now */
			c->h2 = true;   /* ... and counts as the client connection */
			bool counted = c->counted; /* ... in the client table too */
			c->counted = false;
			bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
			h2_session_start(c->w, bev, (const struct sockaddr *)&c->peer,
					 c->peer.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
									: sizeof(struct sockaddr_in),
					 c->client_ip, counted);
			conn_close(c, "handed to an h2 session");
			return;
		}
		conn_set_timer(c, cfg->idle_timeout);
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
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == CONN_READ_HEAD &&
	    evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0) {
		/* The client half-closed after its request and the answer is
		 * complete but not yet written: write it, then close. */
		conn_flush_close(c);
		return;
	}
	conn_close(c, (what & BEV_EVENT_EOF) ? "client closed" : "client error");
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
			conn_fail(c, 408, OUTCOME_HTTP_REQUEST_ERROR, "request header timeout");
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
	case CONN_WAIT_DIRECTORY:
		stage_directory_timeout(c);
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
		conn_set_timer(c, idle < DRAIN_IDLE_GRACE ? idle : DRAIN_IDLE_GRACE);
		return;
	}
	/* Busy: a response head not yet sent says Connection: close (the
	 * draining check where heads are built); one already sent stands. */
	if (!grace)
		c->client_keepalive = false;
}

/* upstream.c - resolve and connect, trying each address in turn.
 *
 * The result is always delivered from the event loop (an activated event),
 * never from inside upstream_connect(): evdns answers numeric hosts at once,
 * and a caller must not be re-entered while it is still setting up. */
#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "config.h"
#include "http_parser.h"
#include "log.h"
#include "tls.h"
#include "worker.h"
#include "timeval.h"

struct upstream_req {
	struct worker *w;
	upstream_cb cb;
	upstream_filter filter;
	void *arg;
	struct evdns_getaddrinfo_request *dns;
	struct evutil_addrinfo *ai_list, *ai;
	struct bufferevent *bev;
	struct event *done;      /* delivers the result */
	enum upstream_err err;
	enum upstream_err last_err;
	char addr[64];
	char port[8];
	bool tls;                /* https://: handshake after the connect */
	uint16_t portnum;
	char detail[512];        /* why TLS or the parent failed */
	char host[256];          /* the origin (SNI, certificate name, CONNECT target) */
	bool tunnel;             /* CONNECT through the parent first */
	bool vet_only;           /* upstream_vet: resolve and filter, no connection */
	bool cancelled;          /* upstream_cancel() ran while the lookup was pending */
	const char *parent_auth; /* the parent's Proxy-Authorization line (the worker's) */
};

/* The origin's name is copied into host: http_parse_target refuses longer ones. */
_Static_assert(sizeof(((struct upstream_req *)0)->host) >= HTTP_MAX_HOST + 2,
	       "upstream_req.host holds any host");

enum outcome upstream_err_type(enum upstream_err err)
{
	switch (err) {
	case UPSTREAM_OK: return OUTCOME_NONE;
	case UPSTREAM_DNS_ERROR: return OUTCOME_DNS_ERROR;
	case UPSTREAM_DNS_TIMEOUT: return OUTCOME_DNS_TIMEOUT;
	case UPSTREAM_REFUSED: return OUTCOME_CONNECTION_REFUSED;
	case UPSTREAM_TIMEOUT: return OUTCOME_CONNECTION_TIMEOUT;
	case UPSTREAM_UNREACHABLE: return OUTCOME_DESTINATION_UNAVAILABLE;
	case UPSTREAM_INTERNAL: return OUTCOME_PROXY_INTERNAL_ERROR;
	case UPSTREAM_DENIED: return OUTCOME_DESTINATION_IP_PROHIBITED;
	case UPSTREAM_TLS_CERT: return OUTCOME_TLS_CERTIFICATE_ERROR;
	case UPSTREAM_TLS_ERROR: return OUTCOME_TLS_PROTOCOL_ERROR;
	case UPSTREAM_PARENT: return OUTCOME_DESTINATION_UNAVAILABLE;
	}
	return OUTCOME_PROXY_INTERNAL_ERROR;
}

/* RFC 9209 §2.3: recommended status codes for each error type. */
int upstream_err_status(enum upstream_err err)
{
	switch (err) {
	case UPSTREAM_DNS_TIMEOUT:
	case UPSTREAM_TIMEOUT:
		return 504;
	case UPSTREAM_DNS_ERROR:
	case UPSTREAM_REFUSED:
	case UPSTREAM_UNREACHABLE:
	case UPSTREAM_TLS_CERT:
	case UPSTREAM_TLS_ERROR:
	case UPSTREAM_PARENT:
		return 502;
	case UPSTREAM_DENIED:
		return 403;
	default:
		return 500;
	}
}

static void try_next(struct upstream_req *r);

/* Deliver the result and free the request. */
static void done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct upstream_req *r = arg;
	struct bufferevent *bev = r->bev;
	r->bev = NULL;
	if (bev != NULL) {
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_set_timeouts(bev, NULL, NULL);
	}
	upstream_cb cb = r->cb;
	void *cbarg = r->arg;
	enum upstream_err err = r->err;
	char addr[64], detail[sizeof(r->detail)];
	memcpy(addr, r->addr, sizeof(addr));
	memcpy(detail, r->detail, sizeof(detail));
	r->cb = NULL;
	upstream_cancel(r);
	cb(err, bev, addr, detail[0] ? detail : NULL, cbarg);
}

static void finish(struct upstream_req *r, enum upstream_err err)
{
	r->err = err;
	event_active(r->done, EV_TIMEOUT, 0);
}

/* Format an address as ip:port or [ip]:port. */
static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		evutil_inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(s4->sin_port));
	}
}

/* The TLS handshake ended. */
static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream_req *r = arg;
	if (what & BEV_EVENT_CONNECTED) {
		finish(r, UPSTREAM_OK);
		return;
	}
	enum upstream_err err = UPSTREAM_TLS_ERROR;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && tls_cert_failure(ssl, r->detail, sizeof(r->detail))) {
		err = UPSTREAM_TLS_CERT;
	} else {
		unsigned long e;
		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			tls_err_append(r->detail, sizeof(r->detail), e);
		if (r->detail[0] == '\0')
			snprintf(r->detail, sizeof(r->detail), "%s during the TLS handshake",
				 (what & BEV_EVENT_TIMEOUT) ? "timeout"
				 : (what & BEV_EVENT_EOF) ? "connection closed"
							  : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	log_debug("TLS to %s (%s) failed: %s", r->addr, r->host, r->detail);
	bufferevent_free(r->bev);
	r->bev = NULL;
	finish(r, err);
}

/* Connected: put TLS over the socket and start the handshake (the connect
 * timeout bounds it too). */
static void start_tls(struct upstream_req *r)
{
	struct worker *w = r->w;
	int fd = bufferevent_getfd(r->bev);
	bufferevent_disable(r->bev, EV_READ | EV_WRITE);
	bufferevent_setfd(r->bev, -1);
	bufferevent_free(r->bev);
	r->bev = NULL;
	SSL *ssl = w->tls_client == NULL ? NULL
		   : tls_client_ssl(w->tls_client, w->tls_sessions, r->host, r->portnum,
				    w->cfg->upstream_verify);
	if (ssl == NULL) {
		evutil_closesocket(fd);
		snprintf(r->detail, sizeof(r->detail), "cannot set up TLS");
		finish(r, UPSTREAM_INTERNAL);
		return;
	}
	r->bev = bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		finish(r, UPSTREAM_INTERNAL);
		return;
	}
	/* Many servers close without close_notify; the framing tells us
	 * whether a message is complete. */
	bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
	struct timeval tv = timeval_of(w->cfg->connect_timeout);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_setcb(r->bev, NULL, NULL, tls_event_cb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

/* The parent's answer to our CONNECT: a 2xx head opens the tunnel (bytes
 * after it stay in the input for the tunnel); anything else is reported. */
static void parent_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream_req *r = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > 16384) {
			snprintf(r->detail, sizeof(r->detail), "parent %s: response head too long", r->addr);
			goto fail;
		}
		return;
	}
	char line[128] = "";
	size_t n = (size_t)end.pos < sizeof(line) - 1 ? (size_t)end.pos : sizeof(line) - 1;
	evbuffer_copyout(in, line, n);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	int status = 0;
	if (strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 8, " %3d", &status) != 1) {
		snprintf(r->detail, sizeof(r->detail), "parent %s: not an HTTP response", r->addr);
		goto fail;
	}
	if (status < 200 || status > 299) {
		for (char *p = line; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
				*p = ' ';
		snprintf(r->detail, sizeof(r->detail), "parent %s refused CONNECT %s:%u: %s", r->addr,
			 r->host, r->portnum, line + 9);
		goto fail;
	}
	evbuffer_drain(in, (size_t)end.pos + 4);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_disable(bev, EV_READ);
	if (r->tls)
		start_tls(r);
	else
		finish(r, UPSTREAM_OK);
	return;
fail:
	log_info("%s", r->detail);
	bufferevent_free(r->bev);
	r->bev = NULL;
	finish(r, UPSTREAM_PARENT);
}

static void parent_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct upstream_req *r = arg;
	snprintf(r->detail, sizeof(r->detail), "parent %s: %s before answering CONNECT", r->addr,
		 (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection closed");
	log_info("%s", r->detail);
	bufferevent_free(r->bev);
	r->bev = NULL;
	finish(r, UPSTREAM_PARENT);
}

/* Connected to the parent: ask it for a tunnel to the origin. */
static void start_parent_tunnel(struct upstream_req *r)
{
	const char *l = strchr(r->host, ':') != NULL ? "[" : "";
	const char *rb = *l ? "]" : "";
	evbuffer_add_printf(bufferevent_get_output(r->bev),
			    "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n%s\r\n", l, r->host, rb,
			    r->portnum, l, r->host, rb, r->portnum,
			    r->parent_auth != NULL ? r->parent_auth : "");
	struct timeval tv = timeval_of(r->w->cfg->upstream_timeout);
	bufferevent_set_timeouts(r->bev, &tv, &tv);
	bufferevent_setcb(r->bev, parent_read_cb, NULL, parent_event_cb, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}

static void connect_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct upstream_req *r = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (r->tunnel)
			start_parent_tunnel(r);
		else if (r->tls)
			start_tls(r);
		else
			finish(r, UPSTREAM_OK);
		return;
	}
	int e = EVUTIL_SOCKET_ERROR();
	if (what & BEV_EVENT_TIMEOUT)
		r->last_err = UPSTREAM_TIMEOUT;
	else if (e == ECONNREFUSED)
		r->last_err = UPSTREAM_REFUSED;
	else
		r->last_err = UPSTREAM_UNREACHABLE;
	log_debug("connect to %s failed: %s", r->addr,
		  (what & BEV_EVENT_TIMEOUT) ? "timeout" : evutil_socket_error_to_string(e));
	bufferevent_free(r->bev);
	r->bev = NULL;
	r->ai = r->ai->ai_next;
	try_next(r);
}

/* Start connecting to the next address, or report the last failure. */
static void try_next(struct upstream_req *r)
{
	const struct config *cfg = r->w->cfg;
	if (r->vet_only) {
		for (; r->ai != NULL; r->ai = r->ai->ai_next) {
			if (r->filter == NULL || r->filter(r->arg, r->ai->ai_addr)) {
				finish(r, UPSTREAM_OK);
				return;
			}
		}
		finish(r, UPSTREAM_DENIED);
		return;
	}
	for (; r->ai != NULL; r->ai = r->ai->ai_next) {
		format_addr(r->ai->ai_addr, r->addr, sizeof(r->addr));
		if (r->filter != NULL && !r->filter(r->arg, r->ai->ai_addr)) {
			/* refused before any connection is opened */
			log_debug("policy refuses %s", r->addr);
			if (r->last_err == UPSTREAM_UNREACHABLE)
				r->last_err = UPSTREAM_DENIED;
			continue;
		}
		r->bev = bufferevent_socket_new(r->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if (r->bev == NULL) {
			finish(r, UPSTREAM_INTERNAL);
			return;
		}
		struct timeval tv = timeval_of(cfg->connect_timeout);
		bufferevent_set_timeouts(r->bev, NULL, &tv);
		bufferevent_setcb(r->bev, NULL, NULL, connect_event_cb, r);
		if (bufferevent_socket_connect(r->bev, r->ai->ai_addr, (int)r->ai->ai_addrlen) == 0)
			return;
		int e = EVUTIL_SOCKET_ERROR();
		r->last_err = e == ECONNREFUSED ? UPSTREAM_REFUSED : UPSTREAM_UNREACHABLE;
		bufferevent_free(r->bev);
		r->bev = NULL;
	}
	finish(r, r->last_err);
}

static void resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upstream_req *r = arg;
	r->dns = NULL;
	if (r->cancelled) {
		/* the last call for a cancelled request: evdns delivers it from
		 * the event loop, after upstream_cancel() has returned */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		free(r);
		return;
	}
	if (result != 0) {
		log_debug("resolve failed: %s", evutil_gai_strerror(result));
		finish(r, result == EVUTIL_EAI_AGAIN || result == EVUTIL_EAI_FAIL
				  ? UPSTREAM_DNS_TIMEOUT
				  : UPSTREAM_DNS_ERROR);
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	r->ai_list = r->ai = res;
	r->last_err = UPSTREAM_UNREACHABLE;
	try_next(r);
}

static struct upstream_req *request_start(struct worker *w, const struct upstream_dest *d,
					  upstream_filter filter, upstream_cb cb, void *arg,
					  bool vet_only)
{
	struct upstream_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->w = w;
	r->vet_only = vet_only;
	r->cb = cb;
	r->filter = filter;
	r->arg = arg;
	r->done = event_new(w->base, -1, 0, done_cb, r);
	if (r->done == NULL) {
		free(r);
		return NULL;
	}
	snprintf(r->host, sizeof(r->host), "%s", d->host);
	r->portnum = d->port;
	r->tls = d->tls;
	const char *host = d->host;
	uint16_t port = d->port;
	if (d->parent != NULL) {
		host = d->parent;
		port = d->parent_port;
		r->filter = NULL; /* the parent resolves and connects */
		r->tunnel = d->tunnel;
		r->parent_auth = d->parent_auth;
	}
	snprintf(r->port, sizeof(r->port), "%u", port);
	struct evutil_addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	struct evdns_getaddrinfo_request *q =
		evdns_getaddrinfo(w->dns, host, r->port, &hints, resolved_cb, r);
	/* q is NULL when the answer came at once (numeric host, hosts file,
	 * error): resolved_cb has run and queued the result or a connect. */
	r->dns = q;
	return r;
}

struct upstream_req *upstream_connect(struct worker *w, const struct upstream_dest *d,
				      upstream_filter filter, upstream_cb cb, void *arg)
{
	return request_start(w, d, filter, cb, arg, false);
}

struct upstream_req *upstream_vet(struct worker *w, const char *host, uint16_t port,
				   upstream_filter filter, upstream_cb cb, void *arg)
{
	struct upstream_dest d = { .host = host, .port = port };
	return request_start(w, &d, filter, cb, arg, true);
}

void upstream_free(struct bufferevent *bev)
{
	if (bev == NULL)
		return;
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	if (ssl != NULL && SSL_is_init_finished(ssl))
		SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_SENT_SHUTDOWN);
	bufferevent_free(bev);
}

void upstream_cancel(struct upstream_req *r)
{
	if (r == NULL)
		return;
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	r->bev = NULL;
	if (r->ai_list != NULL)
		evutil_freeaddrinfo(r->ai_list);
	r->ai_list = NULL;
	event_free(r->done);
	r->done = NULL;
	if (r->dns != NULL) {
		/* evdns still calls resolved_cb once (EVUTIL_EAI_CANCEL, or the
		 * answer of a lookup half done), later from the event loop: that
		 * call frees r. It may also come from inside the cancel, so r is
		 * not touched after it. */
		r->cancelled = true;
		evdns_getaddrinfo_cancel(r->dns);
		return;
	}
	free(r);
}

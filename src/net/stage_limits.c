/* stage_limits.c - the per-client limits and a full worker's fair accept. */
#include "stage_limits.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cidr.h"
#include "clients.h"
#include "config.h"
#include "conn.h"
#include "conn_impl.h"
#include "log.h"
#include "metrics.h"
#include "reject.h"
#include "worker.h"

/* A full worker answers at most FULL_BURST new connections 503 at once and
 * FULL_RATE a second; past that it stops accepting for FULL_PAUSE seconds,
 * leaving the rest in the kernel's backlog (or to other workers). */
#define FULL_BURST 64.0
#define FULL_RATE 640.0
#define FULL_PAUSE 0.1

static int64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

bool limits_exempt(const struct worker *w, const struct sockaddr *sa)
{
	return cidr_list_match(w->cfg->limits_exempt, w->cfg->nlimits_exempt, sa);
}

/* Say in the error log that a limit refused someone, at most once a second
 * per limit (the metrics count every refusal). */
static void log_refusal(enum metrics_limit which, const char *who, const char *what)
{
	static int64_t last[METRICS_LIMIT_SLOW_BODY + 1];
	static unsigned quiet[METRICS_LIMIT_SLOW_BODY + 1];
	int64_t now = mono_ns();
	if (last[which] != 0 && now - last[which] < 1000000000) {
		quiet[which]++;
		return;
	}
	if (quiet[which] > 0)
		log_warn("%s: %s (and %u more refused since the last such line)", who, what,
			 quiet[which]);
	else
		log_warn("%s: %s", who, what);
	last[which] = now;
	quiet[which] = 0;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	uint8_t k[16];
	if (!clients_addr_key(sa, k))
		snprintf(buf, len, "?");
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, k + 12, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET6, k, buf, (socklen_t)len);
}

struct conn *limits_admit(struct worker *w, int fd, const struct sockaddr *sa, int salen,
			  SSL_CTX *tls)
{
	const struct config *cfg = w->cfg;
	enum clients_admit a = CLIENTS_UNTRACKED;
	if (w->clients != NULL) {
		unsigned limit = limits_exempt(w, sa) ? 0 : (unsigned)cfg->max_connections_per_client;
		a = clients_conn_open(w->clients, w->client_slot, sa, limit);
		if (a == CLIENTS_UNTRACKED)
			metrics_limit_untracked(w->metrics);
	}
	if (a == CLIENTS_OVER) {
		char ip[INET6_ADDRSTRLEN], details[128];
		addr_text(sa, ip, sizeof(ip));
		snprintf(details, sizeof(details),
			 "the client has %d connections open ([limits] max_connections_per_client)",
			 cfg->max_connections_per_client);
		metrics_limit(w->metrics, METRICS_LIMIT_CLIENT_CONNECTIONS);
		log_refusal(METRICS_LIMIT_CLIENT_CONNECTIONS, ip,
			    "over [limits] max_connections_per_client: connection refused");
		if (tls != NULL)
			close(fd);
		else
			reject_answer(w, fd, 429, OUTCOME_CONNECTION_LIMIT_REACHED, details,
				      "Retry-After: 1\r\n");
		return NULL;
	}
	struct conn *c = conn_new(w, fd, sa, salen, tls);
	if (c == NULL) {
		if (a == CLIENTS_ADMITTED)
			clients_conn_close(w->clients, w->client_slot, sa);
		return NULL;
	}
	c->counted = a == CLIENTS_ADMITTED;
	return c;
}

void limits_conn_closed(struct worker *w, const struct sockaddr *sa)
{
	clients_conn_close(w->clients, w->client_slot, sa);
}

/* The burst of 503s a full worker may still send now. */
static bool full_budget_take(struct worker *w)
{
	int64_t now = mono_ns();
	double el = (double)(now - w->full_last) / 1e9;
	w->full_last = now;
	w->full_tokens += el * FULL_RATE;
	if (w->full_tokens > FULL_BURST)
		w->full_tokens = FULL_BURST;
	if (w->full_tokens < 1.0)
		return false;
	w->full_tokens -= 1.0;
	return true;
}

bool limits_worker_full(struct worker *w, int fd, SSL_CTX *tls)
{
	struct conn *idle = conn_oldest_idle(w);
	if (idle != NULL) {
		metrics_idle_evicted(w->metrics);
		conn_close(idle, "idle: its place went to a new client at max_connections");
		return true;
	}
	metrics_limit(w->metrics, METRICS_LIMIT_WORKER_FULL);
	char what[96];
	snprintf(what, sizeof(what), "[limits] max_connections (%d) reached: answering 503",
		 w->cfg->max_connections);
	log_refusal(METRICS_LIMIT_WORKER_FULL, "worker", what);
	if (!full_budget_take(w))
		worker_pause_accept(w, FULL_PAUSE);
	if (tls != NULL)
		close(fd);
	else
		reject_answer(w, fd, 503, OUTCOME_CONNECTION_LIMIT_REACHED,
			      "the proxy is at [limits] max_connections", "Retry-After: 1\r\n");
	return false;
}

/* Answer 429 for an empty bucket: Retry-After is when it has a token. */
static void refuse_rate(struct conn *c, enum metrics_limit which, const char *key,
			const struct rate *r, int64_t wait_ns)
{
	char spec[64], details[160], fields[48], ip[INET6_ADDRSTRLEN];
	rate_format(r, spec, sizeof(spec));
	snprintf(details, sizeof(details), "over [limits] %s (%s)", key, spec);
	long secs = (long)((wait_ns + 999999999) / 1000000000); /* rounded up */
	snprintf(fields, sizeof(fields), "Retry-After: %ld\r\n", secs < 1 ? 1 : secs);
	metrics_limit(c->w->metrics, which);
	addr_text((const struct sockaddr *)&c->peer, ip, sizeof(ip));
	log_refusal(which, which == METRICS_LIMIT_USER_RATE ? c->rq->user : ip, details);
	c->client_keepalive = false;
	conn_fail_with(c, 429, OUTCOME_HTTP_REQUEST_DENIED, details, fields);
}

/* One request against a bucket; false when it was answered 429. */
static bool charge(struct conn *c, enum clients_take t, enum metrics_limit which, const char *key,
		   const struct rate *r, int64_t wait_ns)
{
	if (t == CLIENTS_TOKEN)
		return true;
	if (t == CLIENTS_NO_ROOM) {
		metrics_limit_untracked(c->w->metrics);
		return true;
	}
	refuse_rate(c, which, key, r, wait_ns);
	return false;
}

bool limits_request_client(struct conn *c)
{
	struct worker *w = c->w;
	const struct rate *r = &w->cfg->requests_per_client;
	const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
	if (r->count <= 0 || c->internal || w->clients == NULL || limits_exempt(w, sa))
		return true;
	int64_t wait = 0;
	enum clients_take t = clients_take_addr(w->clients, sa, r, mono_ns(), &wait);
	return charge(c, t, METRICS_LIMIT_CLIENT_RATE, "requests_per_client", r, wait);
}

bool limits_request_user(struct conn *c)
{
	struct worker *w = c->w;
	const struct rate *r = &w->cfg->requests_per_user;
	const char *user = c->rq->user;
	if (r->count <= 0 || c->internal || w->clients == NULL || user[0] == '\0' ||
	    limits_exempt(w, (const struct sockaddr *)&c->peer))
		return true;
	int64_t wait = 0;
	enum clients_take t = clients_take_user(w->clients, user, strlen(user), r, mono_ns(), &wait);
	return charge(c, t, METRICS_LIMIT_USER_RATE, "requests_per_user", r, wait);
}

/* Is this request's body arriving slower than min_body_rate? Its clock runs
 * only while the proxy reads the client (not while the upstream holds the
 * relay back), from the first sweep that sees it. */
static bool body_too_slow(struct conn *c, double now)
{
	const struct config *cfg = c->w->cfg;
	struct request *rq = c->rq;
	if (rq == NULL || c->state != CONN_FORWARD || rq->rbody.done || c->h2 || c->internal)
		return false;
	if (rq->body_mark == 0 || !(bufferevent_get_enabled(c->cbev) & EV_READ)) {
		rq->body_mark = now;
		rq->body_mark_bytes = rq->bytes_in;
		return false;
	}
	double el = now - rq->body_mark;
	return el >= cfg->min_body_rate_after &&
	       (double)(rq->bytes_in - rq->body_mark_bytes) < (double)cfg->min_body_rate * el;
}

void limits_sweep(struct worker *w)
{
	if (w->cfg->min_body_rate == 0)
		return;
	double now = (double)mono_ns() / 1e9;
	struct conn *c = w->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		if (!c->dead && body_too_slow(c, now)) {
			char details[96];
			snprintf(details, sizeof(details),
				 "request body slower than [limits] min_body_rate (%zu bytes/s)",
				 w->cfg->min_body_rate);
			metrics_limit(w->metrics, METRICS_LIMIT_SLOW_BODY);
			log_refusal(METRICS_LIMIT_SLOW_BODY, c->client_ip, details);
			c->client_keepalive = false;
			if (c->rq->res_started) {
				conn_close(c, details);
			} else {
				conn_upstream_release(c, false);
				conn_fail(c, 408, OUTCOME_HTTP_REQUEST_ERROR, details);
			}
		}
		c = next;
	}
}

/* proxy_header.c - reading the PROXY protocol header of a connection from a
 * listed load balancer, before the connection exists. */
#include "proxy_header.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cidr.h"
#include "config.h"
#include "conn.h"
#include "stage_limits.h"
#include "log.h"
#include "metrics.h"
#include "proxy_proto.h"
#include "timeval.h"
#include "worker.h"

/* A socket whose header is being read. */
struct proxy_wait {
	struct proxy_wait *next, *prev; /* w->proxy_waits */
	struct worker *w;
	struct event *ev;
	int fd;
	SSL_CTX *tls;
	struct sockaddr_storage peer;
	int peerlen;
	char peer_ip[INET6_ADDRSTRLEN];
	double deadline;  /* accept + header_timeout (monotonic seconds) */
	double grace_end; /* draining for a reload with no byte yet: closed
			     then, as an idle connection (0: not draining) */
	size_t have; /* header bytes taken from the socket */
	uint8_t buf[PROXY_PROTO_MAX];
};

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wake up at the header deadline, or at the end of a drain's grace. */
static void arm(struct proxy_wait *p, double now)
{
	double end = p->deadline;
	if (p->grace_end > 0 && p->have == 0 && p->grace_end < end)
		end = p->grace_end;
	struct timeval tv = timeval_of(end > now ? end - now : 0);
	event_add(p->ev, &tv);
}

bool proxy_header_expected(const struct config *cfg, const struct sockaddr *peer)
{
	return cfg->nproxy_protocol > 0 &&
	       cidr_list_match(cfg->proxy_protocol, cfg->nproxy_protocol, peer);
}

/* Forget the wait (the socket has been handed on, or is to be closed). */
static void wait_free(struct proxy_wait *p, bool close_fd)
{
	struct worker *w = p->w;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		w->proxy_waits = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	event_free(p->ev);
	if (close_fd)
		close(p->fd);
	w->nconns--;
	free(p);
}

/* Close a connection whose header was refused, saying why (NULL: it closed
 * before sending a byte, as a TCP health check does: logged at debug). */
static void refuse(struct proxy_wait *p, const char *why)
{
	if (why == NULL)
		log_debug("%s connected and closed before a PROXY protocol header (a health check?)",
			  p->peer_ip);
	else
		log_info("PROXY protocol header from %s refused: %s; connection closed", p->peer_ip,
			 why);
	if (why != NULL)
		metrics_proxy_header(p->w->metrics, false);
	struct worker *w = p->w;
	wait_free(p, true);
	worker_conn_closed(w);
}

/* The header is complete: the connection starts with the client's address
 * (in a worker draining for a reload, as an idle connection does). */
static void hand_on(struct proxy_wait *p, const struct proxy_proto_info *info)
{
	struct worker *w = p->w;
	int fd = p->fd;
	SSL_CTX *tls = p->tls;
	struct sockaddr_storage sa = info->local ? p->peer : info->src;
	int salen = info->local ? p->peerlen
				: info->src.ss_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
								  : (int)sizeof(struct sockaddr_in);
	wait_free(p, false);
	metrics_proxy_header(w->metrics, true);
	struct conn *c = limits_admit(w, fd, (const struct sockaddr *)&sa, salen, tls);
	if (c == NULL)
		worker_conn_closed(w); /* refused, or out of memory: the socket is closed */
	else if (w->draining && w->retiring)
		conn_drain(c, true);
}

/* Take what the socket holds of the header, never a byte past it: peek,
 * parse what has come so far, then read only the bytes that belong to it.
 * False when p is gone (handed on or refused). */
static bool readable(struct proxy_wait *p)
{
	size_t room = sizeof(p->buf) - p->have;
	ssize_t n = recv(p->fd, p->buf + p->have, room, MSG_PEEK);
	if (n == 0) {
		refuse(p, p->have == 0 ? NULL : "closed within the header");
		return false;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			refuse(p, strerror(errno));
			return false;
		}
		return true;
	}
	struct proxy_proto_info info;
	size_t used = 0;
	const char *why = NULL;
	enum proxy_proto_result r =
		proxy_proto_parse(p->buf, p->have + (size_t)n, &info, &used, &why);
	if (r == PROXY_PROTO_ERROR) {
		refuse(p, why);
		return false;
	}
	/* NEED_MORE: every byte so far is the header's; OK: up to `used` */
	size_t take = r == PROXY_PROTO_OK ? used - p->have : (size_t)n;
	ssize_t got = recv(p->fd, p->buf + p->have, take, 0);
	if (got != (ssize_t)take) {
		refuse(p, got < 0 ? strerror(errno) : "short read");
		return false;
	}
	p->have += take;
	if (r == PROXY_PROTO_OK) {
		hand_on(p, &info);
		return false;
	}
	return true;
}

static void wait_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	struct proxy_wait *p = arg;
	/* the deadline is the whole header's, from the accept */
	double now = mono_now();
	if (now >= p->deadline) {
		refuse(p, "no complete header within [limits] header_timeout");
		return;
	}
	if ((what & EV_READ) && !readable(p))
		return;
	if (p->have == 0 && p->grace_end > 0 && now >= p->grace_end) {
		/* a reload's grace for an idle connection is over */
		log_debug("%s: no PROXY protocol header before the drain: closed", p->peer_ip);
		struct worker *w = p->w;
		wait_free(p, true);
		worker_conn_closed(w);
		return;
	}
	arm(p, now);
}

void proxy_header_start(struct worker *w, int fd, const struct sockaddr *sa, int salen,
			SSL_CTX *tls)
{
	struct proxy_wait *p = calloc(1, sizeof(*p));
	if (p == NULL || (size_t)salen > sizeof(p->peer)) {
		log_error("out of memory accepting a connection");
		free(p);
		close(fd);
		return;
	}
	p->w = w;
	p->fd = fd;
	p->tls = tls;
	memcpy(&p->peer, sa, (size_t)salen);
	p->peerlen = salen;
	double now = mono_now();
	p->deadline = now + w->cfg->header_timeout;
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  p->peer_ip, sizeof(p->peer_ip));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
			  p->peer_ip, sizeof(p->peer_ip));
	p->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, wait_cb, p);
	if (p->ev == NULL) {
		log_error("out of memory accepting a connection");
		free(p);
		close(fd);
		return;
	}
	arm(p, now);
	p->next = w->proxy_waits;
	if (p->next != NULL)
		p->next->prev = p;
	w->proxy_waits = p;
	w->nconns++;
}

void proxy_header_drain(struct worker *w, bool grace)
{
	double now = mono_now();
	double idle = w->cfg->idle_timeout;
	struct proxy_wait *p = w->proxy_waits;
	while (p != NULL) {
		struct proxy_wait *next = p->next;
		if (p->have > 0) {
			/* busy: the rest of the header, then its request */
		} else if (!grace) {
			wait_free(p, true);
		} else {
			p->grace_end = now + (idle < DRAIN_IDLE_GRACE ? idle : DRAIN_IDLE_GRACE);
			arm(p, now);
		}
		p = next;
	}
}

void proxy_header_stop(struct worker *w)
{
	while (w->proxy_waits != NULL)
		wait_free(w->proxy_waits, true);
}

/* upstream.h - resolve a host (evdns, without blocking) and connect to each of
 * its addresses in turn, with a timeout per attempt; for https://, then the
 * TLS handshake (SNI, verification, session resumption). */
#ifndef HOPCACHE_UPSTREAM_H
#define HOPCACHE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <stdint.h>

struct bufferevent;
struct worker;

enum upstream_err {
	UPSTREAM_OK = 0,
	UPSTREAM_DNS_ERROR,   /* name does not resolve */
	UPSTREAM_DNS_TIMEOUT, /* resolver did not answer */
	UPSTREAM_REFUSED,     /* every address refused */
	UPSTREAM_TIMEOUT,     /* every address timed out */
	UPSTREAM_UNREACHABLE, /* network/host unreachable and the like */
	UPSTREAM_INTERNAL,    /* out of memory, sockets */
	UPSTREAM_DENIED,      /* every address was refused by the filter (policy) */
	UPSTREAM_TLS_CERT,    /* the server's certificate was refused */
	UPSTREAM_TLS_ERROR,   /* the TLS handshake failed otherwise */
};

/* Vets each resolved address before a connection to it is opened; false
 * skips it. */
typedef bool (*upstream_filter)(void *arg, const struct sockaddr *sa);

/* Called exactly once, never from inside upstream_connect(). On success bev
 * is a connected bufferevent the callee owns (callbacks unset, no timeouts;
 * a TLS bufferevent with the handshake done when tls was asked), and addr is
 * "ip:port" of the peer ("[ip]:port" for IPv6). On a TLS failure detail
 * says why (OpenSSL's reason); otherwise it is NULL. */
typedef void (*upstream_cb)(enum upstream_err err, struct bufferevent *bev, const char *addr,
			    const char *detail, void *arg);

struct upstream_req;

struct upstream_req *upstream_connect(struct worker *w, const char *host, uint16_t port, bool tls,
				      upstream_filter filter, upstream_cb cb, void *arg);

/* Abandon a pending request: the callback will not be called. */
void upstream_cancel(struct upstream_req *r);

/* RFC 9209 error type and status for an upstream error. */
const char *upstream_err_type(enum upstream_err err);
int upstream_err_status(enum upstream_err err);

#endif

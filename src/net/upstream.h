/* upstream.h - resolve a host (evdns, without blocking) and connect to each of
 * its addresses in turn, with a timeout per attempt; for https://, then the
 * TLS handshake (SNI, verification, session resumption). */
#ifndef HOPCACHE_UPSTREAM_H
#define HOPCACHE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <stdint.h>

#include "outcome.h"

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
	UPSTREAM_PARENT,      /* the parent proxy refused the CONNECT (or garbled it) */
};

/* Where to connect. */
struct upstream_dest {
	const char *host;     /* the origin, or the CONNECT target */
	uint16_t port;
	bool tls;             /* https://: TLS with the origin (after the tunnel, if any) */
	const char *parent;   /* NULL, or [upstream] parent's host to go through */
	uint16_t parent_port;
	bool tunnel;          /* through the parent: "CONNECT host:port" there first */
	const char *parent_auth; /* "Proxy-Authorization: ...\r\n" for the parent, or "" */
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

/* Resolve and connect to d's host (or its parent, whose own address is not
 * filtered: the administrator named it), tunnel through the parent when
 * asked, then TLS when asked. filter vets each address of a direct
 * connection. */
struct upstream_req *upstream_connect(struct worker *w, const struct upstream_dest *d,
				      upstream_filter filter, upstream_cb cb, void *arg);

/* Resolve host and run filter on its addresses without connecting (the
 * policy's view of a destination a parent proxy will connect to): cb gets
 * UPSTREAM_OK (bev NULL) when one address passes, UPSTREAM_DENIED when none
 * does, or the DNS error. */
struct upstream_req *upstream_vet(struct worker *w, const char *host, uint16_t port,
				   upstream_filter filter, upstream_cb cb, void *arg);

/* Close an upstream connection, TLS or not. A TLS session whose connection
 * ends here stays resumable (without this, OpenSSL would treat it as cut
 * off and never offer it again). */
void upstream_free(struct bufferevent *bev);

/* Abandon a pending request: the callback will not be called. */
void upstream_cancel(struct upstream_req *r);

/* RFC 9209 error type and status for an upstream error. */
enum outcome upstream_err_type(enum upstream_err err);
int upstream_err_status(enum upstream_err err);

#endif

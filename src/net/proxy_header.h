/* proxy_header.h - the PROXY protocol header ([proxy] proxy_protocol): a
 * connection from a listed load balancer starts with it (proxy_proto.c
 * parses it), and its source address is the client's address from then on:
 * `src` rules, the authentication failure limiter, [cache] purge_allow,
 * [admin] allow, X-Forwarded-For and the access log. The header is read from
 * the socket before the connection exists (before the TLS handshake on the
 * HTTPS proxy port), taking exactly its bytes; a connection without a valid
 * header within [limits] header_timeout is closed and logged. */
#ifndef HOPCACHE_PROXY_HEADER_H
#define HOPCACHE_PROXY_HEADER_H

#include <stdbool.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct worker;
struct config;

/* Must a connection from this peer start with a PROXY protocol header? */
bool proxy_header_expected(const struct config *cfg, const struct sockaddr *peer);

/* Read the header of an accepted socket, then hand it to conn_new with the
 * client's address (tls as for conn_new). Counted in w->nconns meanwhile. */
void proxy_header_start(struct worker *w, int fd, const struct sockaddr *sa, int salen,
			SSL_CTX *tls);

/* Worker stop (grace: a reload), as conn_drain does for connections: a
 * socket that sent part of its header is busy (a request is on its way) and
 * keeps its header deadline; one that sent nothing yet is closed now, or
 * with grace after DRAIN_IDLE_GRACE (idle_timeout if shorter). */
void proxy_header_drain(struct worker *w, bool grace);

/* Worker teardown: close the sockets still waiting for their header. */
void proxy_header_stop(struct worker *w);

#endif

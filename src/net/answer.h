/* answer.h - the proxy's own answers to requests that go nowhere upstream:
 * OPTIONS and TRACE at Max-Forwards 0 (or OPTIONS *), its admin resources
 * (/hopcache/metrics, /hopcache/status, the PAC file) and the CONNECT reply.
 * Each writes into an evbuffer and says what it answered; the connection
 * (conn.c) does the bookkeeping. */
#ifndef HOPCACHE_ANSWER_H
#define HOPCACHE_ANSWER_H

#include <stdbool.h>

#include "admin.h"
#include "http_parser.h"
#include "outcome.h"

struct evbuffer;
struct metrics;
struct config;

/* What was answered, or the error to answer instead (error != NULL: nothing
 * was written; the caller sends status with Proxy-Status error and details,
 * plus the extra fields when not NULL, and closes). */
struct answer {
	int status;
	enum outcome error;
	const char *details;
	const char *fields;
};

/* OPTIONS or TRACE as the final recipient (RFC 9110 §7.6.2): TRACE echoes
 * the request as received, less the credentials this proxy consumed
 * (RFC 9110 §9.3.8); OPTIONS lists the methods. */
struct answer answer_max_forwards(struct evbuffer *out, const struct http_request *req,
				  const char *via, bool close);

/* GET or HEAD of one of the proxy's own resources, for client, on the admin
 * listener or the proxy port (404 when the resource is on the other). */
struct answer answer_admin(struct evbuffer *out, enum admin_resource ar, const struct config *cfg,
			   const struct metrics *all, const struct http_request *req,
			   const struct sockaddr *client, bool admin_listener, bool close);

/* "200 Connection established" for a CONNECT, with fields (whole lines, or
 * NULL) before the empty line. */
void answer_connect(struct evbuffer *out, const char *fields);

#endif

/* stage_auth.h - the authentication stage (RFC 9110 §11.7.1): Basic
 * credentials from Proxy-Authorization, checked against the htpasswd file
 * through the worker's credential cache, with failures counted per client
 * address. It decides; the connection (conn.c) answers. */
#ifndef HOPCACHE_STAGE_AUTH_H
#define HOPCACHE_STAGE_AUTH_H

#include <stddef.h>
#include <sys/socket.h>

#include "http_parser.h"

struct worker;

/* What the stage decided. */
struct auth_verdict {
	int status;          /* 0: authenticated; else 407, 429 or 400 to answer */
	const char *details; /* why, for Proxy-Status (static text) */
};

/* Authenticate the request whose Proxy-Authorization field is cred (NULL when
 * it has none), from peer (client_ip for the log). On success, and only
 * then, the user name is written to user (userlen >= AUTH_USER_MAX). */
struct auth_verdict stage_auth(struct worker *w, const struct http_field *cred,
			       const struct sockaddr *peer, const char *client_ip, char *user,
			       size_t userlen);

/* The fields a refusal carries: Proxy-Authenticate for 407 (the realm
 * whole), Retry-After for 429; "" otherwise. Heap; NULL when out of memory. */
char *stage_auth_refusal_fields(const struct worker *w, int status);

#endif

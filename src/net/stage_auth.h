/* stage_auth.h - the authentication stage (RFC 9110 §11.7.1): the
 * credentials of Proxy-Authorization in one of the schemes [auth] scheme
 * offers: Basic against the htpasswd file through the worker's credential
 * cache, or Negotiate (Kerberos, RFC 4559) through GSS-API; failures
 * counted per client address. It decides; the connection (conn.c) answers. */
#ifndef HOPCACHE_STAGE_AUTH_H
#define HOPCACHE_STAGE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http_parser.h"

struct worker;

/* The password is for the directory to check ([auth] basic_backend = ldap,
 * stage_directory_bind): the request waits. */
#define AUTH_DIRECTORY 1

/* What the stage decided. */
struct auth_verdict {
	int status;          /* 0: authenticated; AUTH_DIRECTORY; else 407, 429, 400 or 500 to
				answer */
	const char *details; /* why, for Proxy-Status (static text) */
};

/* What an authentication grants besides the user name. */
struct auth_grant {
	char *reply;       /* "Proxy-Authenticate: Negotiate TOKEN\r\n" for the response
			      (mutual authentication; heap), or NULL */
	bool negotiate;    /* by Negotiate: [auth] connection_auth may keep it */
	uint32_t lifetime; /* ... for the ticket's remaining seconds */
};

/* Authenticate the request whose Proxy-Authorization field is cred (NULL when
 * it has none), from peer (client_ip for the log). On success, and only
 * then, the user name is written to user (userlen >= AUTH_USER_MAX) and g
 * is filled in. */
struct auth_verdict stage_auth(struct worker *w, const struct http_field *cred,
			       const struct sockaddr *peer, const char *client_ip, char *user,
			       size_t userlen, struct auth_grant *g);

/* The fields a refusal carries: one Proxy-Authenticate per offered scheme,
 * in [auth] scheme's order, for 407; Retry-After for 429; "" otherwise. Heap;
 * NULL when out of memory. */
char *stage_auth_refusal_fields(const struct worker *w, int status);

#endif

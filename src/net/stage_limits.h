/* stage_limits.h - the per-client limits ([limits] max_connections_per_client,
 * requests_per_client, requests_per_user, exempt, min_body_rate) and a full
 * worker's fair accept. Counts and buckets live in the shared client table
 * (clients.h), so a limit holds over all workers; the client address is the
 * one a PROXY protocol header gave, when there was one. */
#ifndef HOPCACHE_STAGE_LIMITS_H
#define HOPCACHE_STAGE_LIMITS_H

#include <stdbool.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct conn;
struct worker;

/* An accepted socket from client sa (tls: the HTTPS port's context, else
 * NULL) becomes a client connection, unless the client has
 * max_connections_per_client open already: then it is answered 429 with
 * Retry-After and Proxy-Status error=connection_limit_reached and closed
 * (on the HTTPS port: closed at once, since an answer would cost a TLS
 * handshake). */
struct conn *limits_admit(struct worker *w, int fd, const struct sockaddr *sa, int salen,
			  SSL_CTX *tls);

/* The worker is at max_connections and fd was just accepted: close the
 * oldest idle keep-alive connection to make room (true: go on with fd), or
 * answer fd 503 with Proxy-Status and close it (false). Past a burst of such
 * answers, accept pauses for a moment (limits_resume). */
bool limits_worker_full(struct worker *w, int fd, SSL_CTX *tls);

/* A request's head is parsed: the client address's bucket (before
 * authentication), then the user's (after it). False when it was answered
 * 429 (the connection closes after it). */
bool limits_request_client(struct conn *c);
bool limits_request_user(struct conn *c);

/* A connection admitted by limits_admit closes (or an h2 session that took
 * its place ends): the client has one fewer. */
void limits_conn_closed(struct worker *w, const struct sockaddr *sa);

/* Once a second: cut request bodies that arrive slower than min_body_rate
 * (408, or the connection closed when the response already began). */
void limits_sweep(struct worker *w);

/* Is the address exempt from the per-client limits? */
bool limits_exempt(const struct worker *w, const struct sockaddr *sa);

#endif

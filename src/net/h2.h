/* h2.h - HTTP/2 on the HTTPS proxy port (RFC 9113), with nghttp2.
 *
 * A TLS client connection whose ALPN chose "h2" becomes an h2 session. Each
 * request stream is translated (proto/h2_translate.c) into an HTTP/1.1
 * request on a connection of the proxy's own, one end of a socketpair
 * served by conn.c like any client connection: so every stream goes
 * through the same stages as an HTTP/1.1 request (authentication, policy,
 * cache, upstream, tunnel, access log). The response that pipeline writes
 * is parsed back, its fields go through the header stage (hop.c, via
 * h2_response_fields) and leave as HEADERS, DATA and trailers.
 *
 * Flow control: DATA from the client is acknowledged (WINDOW_UPDATE) only
 * once the pipeline has taken it, and a stream's response is read from the
 * pipeline only while less than H2_STREAM_BUFFER of it waits for the
 * client's window; so one slow stream holds a bounded amount of memory. */
#ifndef HOPCACHE_H2_H
#define HOPCACHE_H2_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct worker;
struct bufferevent;
struct h2_session;

/* Response bytes of one stream buffered for the client at most. */
#define H2_STREAM_BUFFER (256 * 1024)

/* Take over a TLS client connection that negotiated h2: bev (its
 * handshake done), the client's address. The session counts as one of the
 * worker's connections, and as the client's in the client table when
 * counted (stage_limits.c). False when out of memory (bev is freed). */
bool h2_session_start(struct worker *w, struct bufferevent *bev, const struct sockaddr *peer,
		      socklen_t peerlen, const char *client_ip, bool counted);

/* The Negotiate identity of session id (its streams share it, as the
 * streams of one client connection): a copy into *user (heap) and its end
 * (monotonic seconds), or *user left NULL when it has none or is gone. */
void h2_identity_get(struct worker *w, uint64_t id, char **user, int64_t *until);

/* A stream of session id authenticated with Negotiate: its other streams
 * may go on as user until then (user NULL: a stream's authentication
 * failed or was not Negotiate, and the session keeps no identity). */
void h2_identity_set(struct worker *w, uint64_t id, const char *user, int64_t until);

/* Worker drain: GOAWAY to every session; each closes once its streams
 * are done (retire: a reload) or at once when it has none. */
void h2_drain_all(struct worker *w);

/* Close every session now (the worker is exiting). */
void h2_close_all(struct worker *w);

#endif

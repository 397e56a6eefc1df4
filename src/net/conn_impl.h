/* conn_impl.h - what the parts of the connection state machine share:
 * conn.c (the connection: accept, read a request, dispatch, finish, close),
 * conn_upstream.c (connect upstream and send the request head) and
 * conn_response.c (read the response, relay both bodies). Private to those
 * files (and conn_cache.c, tunnel.c, which finish requests through it). */
#ifndef HOPCACHE_CONN_IMPL_H
#define HOPCACHE_CONN_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "conn.h"
#include "upstream.h"

/* Back-pressure: stop reading one side when the other side's output holds
 * this much, resume when it drains to half. */
#define RELAY_HIGH (256 * 1024)

/* conn.c */
uint64_t conn_elapsed_ms(const struct timespec *t0);
void conn_set_timer(struct conn *c, double seconds);
bool conn_method_is(const struct conn *c, const char *m);
/* Release the upstream side; back to the pool when reuse and it is clean. */
void conn_upstream_release(struct conn *c, bool reuse);
/* Write everything buffered for the client, then close. */
void conn_flush_close(struct conn *c);
/* conn_fail with extra fields (NULL: none) in the error response. */
void conn_fail_with(struct conn *c, int status, enum outcome error, const char *details,
		    const char *fields);
/* Copy a parsed head to *buf (grown to len) and move the slices of its
 * fields and of extra[0..nextra) there. 0, or -1 when out of memory. */
int conn_keep_head(char **buf, size_t *cap, const char *src, size_t len, struct http_field *f,
		   size_t n, struct slice *extra, size_t nextra);
/* "200 Connection established" for a CONNECT. */
void conn_connect_reply(struct conn *c);
void conn_client_read_cb(struct bufferevent *bev, void *arg);
/* A directory job the connection waited for ended (stage_directory.c):
 * status 0 takes the request on from where it stopped (c->dir_step); 407
 * answers as a refused password, 503 as a directory that cannot answer. */
void conn_directory_resume(struct conn *c, int status, const char *details);

/* conn_upstream.c */
/* Start the upstream side: a pooled connection, or a new one. */
void conn_start_upstream(struct conn *c);
/* Phase two of the policy for upstream.c: may the proxy connect there? */
bool conn_policy_filter(void *arg, const struct sockaddr *sa);
void conn_connected_cb(enum upstream_err err, struct bufferevent *bev, const char *addr,
		       const char *detail, void *arg);
/* Send the request head upstream and start relaying. */
void conn_send_request(struct conn *c);
/* A pooled connection died before any response byte: retry once. */
bool conn_maybe_retry(struct conn *c);

/* conn_response.c */
void conn_read_response(struct conn *c);
void conn_relay_response_body(struct conn *c);
void conn_relay_request_body(struct conn *c);
/* Upstream answered something we cannot pass on: an error response if
 * nothing was sent yet, else the connection is cut. */
void conn_bad_response(struct conn *c, int status, enum outcome error, const char *details);
void conn_upstream_read_cb(struct bufferevent *bev, void *arg);
void conn_upstream_write_cb(struct bufferevent *bev, void *arg);
void conn_upstream_event_cb(struct bufferevent *bev, short what, void *arg);

#endif

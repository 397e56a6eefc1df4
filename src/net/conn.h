/* conn.h - a client connection: the per-client state machine and the sole
 * caller of the pipeline stages (parser, header stage, upstream, tunnel). */
#ifndef HOPCACHE_CONN_H
#define HOPCACHE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include "acl.h"
#include "body.h"
#include "cache.h"
#include "cache_key.h"
#include "cache_policy.h"
#include "dir_cache.h"
#include "hop.h"
#include "outcome.h"
#include "http_parser.h"

#include <openssl/ssl.h>

struct bufferevent;
struct evbuffer;
struct event;
struct worker;
struct upstream_req;
struct tunnel;
struct inflight;
struct dir_job;

enum conn_state {
	CONN_READ_HEAD,   /* waiting for (the rest of) a request head */
	CONN_CONNECTING,  /* resolving and connecting upstream */
	CONN_FORWARD,     /* request body up, response back */
	CONN_TUNNEL,      /* CONNECT or an upgrade: bytes both ways */
	CONN_FLUSH_CLOSE, /* writing the last bytes, then close */
	CONN_PEEK_SNI,    /* CONNECT answered; reading the ClientHello's server name */
	CONN_WAIT_FETCH,  /* a miss waiting for another request's fetch of the
			     same URI (collapsed forwarding) */
	CONN_WAIT_DIRECTORY, /* a Basic password or the user's groups asked of the
				directory (stage_directory.c) */
};

/* One request on a client connection, from its first byte to its access
 * log line: the parsed head (its field arrays sized by [limits] max_headers
 * follow the struct in the same allocation), the bodies, the upstream and
 * cache decisions. Allocated when a request starts and freed when it ends,
 * so an idle keep-alive connection holds only its struct conn. */
struct request {
	char *head;                /* copy of the request head; fields point here */
	size_t head_cap;
	struct http_request req;
	struct http_target target;
	struct hop_info rinfo;
	bool *keep;                /* per-field keep flags (max_headers entries) */
	struct body rbody;         /* request body */
	bool upgrading;            /* an Upgrade is being forwarded */
	bool head_request;
	bool idempotent;
	bool retried;
	bool pooled;               /* the upstream connection came from the pool */
	char host_port[300];       /* "host:port" of the upstream */
	char pool_key[320];        /* pool key: host_port, "tls:"-prefixed for https://,
				      "@parent"-suffixed through the parent; plain
				      requests through the parent: "parent:HOST:PORT" */
	bool upstream_tls;         /* an https:// URI: TLS to the upstream */
	bool via_parent;           /* the upstream connection goes through [upstream] parent */
	bool dst_vetted;           /* ... and the policy vetted the origin's addresses */
	char target_str[512];      /* for the access log (truncated) */
	char method_str[32];
	char user[256];            /* authenticated user, "" when none */
	char *auth_reply;          /* Proxy-Authenticate line for the response (Negotiate's
				      mutual authentication), or NULL */
	char rule[64];             /* the policy rule that decided ("default", "-") */
	enum acl_reason rule_reason; /* ... and why (stage_policy.c) */
	bool user_kerberos;        /* user is a Kerberos principal (Negotiate) */
	bool dir_resolved;         /* dir_member holds the user's directory groups */
	struct dir_member dir_member; /* bit i: member of cfg->dir_groups[i] */
	bool policy_need_dst;      /* vet each resolved address (acl.c phase two) */
	bool connect_replied;      /* the CONNECT's 200 is already out (SNI peek) */
	char upstream_addr[64];
	struct sockaddr_storage upstream_sa; /* the upstream's address (policy checks on reuse) */
	struct timespec t_start;
	uint64_t bytes_in, bytes_out; /* for this request */
	double body_mark;          /* min_body_rate: the body's clock started (0: not yet) */
	uint64_t body_mark_bytes;  /* ... with bytes_in then (stage_limits.c) */

	/* the response in flight */
	char *rhead;
	size_t rhead_cap;
	struct http_response res;
	struct body sbody;         /* response body */
	bool res_started;          /* the final response head was sent to the client */
	bool upstream_reusable;
	int status;                /* status sent to the client */
	enum outcome outcome;

	/* the cache stage (conn_cache.c) */
	bool cache_on;             /* GET/HEAD with the cache enabled */
	bool cache_validating;     /* our validators went upstream */
	bool cache_stale_if_error; /* the stale entry may stand in for an error */
	bool cache_stored;         /* the response is being kept for the store */
	const char *cache_fwd;     /* Cache-Status fwd= (RFC 9211) */
	struct cache_req creq;
	int64_t cache_req_time, cache_response_time;
	uint8_t cache_key[CACHE_KEY_LEN];  /* primary key */
	uint8_t cache_vkey[CACHE_KEY_LEN]; /* key of the response (variant or primary) */
	struct cache_ident cache_id;       /* the identity cache_key names (cache_key.h) */
	struct cache_ident cache_vid;      /* the identity cache_vkey names */
	char *cache_uri;                   /* the normalised URI (heap) */
	size_t cache_uri_len;
	char *cache_validators;           /* If-None-Match / If-Modified-Since lines (heap) */
	size_t cache_validators_len;
	char *cache_marker;               /* the Vary marker to store with the response, or NULL */
	char *cache_ctype;                /* Content-Type of a response served from the store,
					     for the access log (the stored fields end with the read) */
	struct evbuffer *cache_head;      /* the head to store */
	struct inflight *inflight;        /* the fetch this request leads or waits for */
	struct conn *wait_next;           /* next waiter of the same fetch */
	bool collapse_tried;              /* waited once: fetch on its own now */
};

/* A client connection: what it needs while idle, and the request in flight. */
struct conn {
	struct conn *next, *prev; /* worker's list */
	struct worker *w;
	struct bufferevent *cbev;  /* client */
	struct bufferevent *ubev;  /* upstream, when connected */
	struct upstream_req *ureq; /* pending connect */
	struct event *timer;       /* one timeout per state */
	struct tunnel *tunnel;     /* CONN_TUNNEL: the sockets (tunnel.c) */
	struct request *rq;        /* the request in flight; NULL while idle */
	struct dir_job *dir_job;   /* CONN_WAIT_DIRECTORY: the job waited for */
	struct conn *dir_next;     /* ... its next waiter */
	int dir_step;              /* ... and where the request goes on (enum dir_step) */
	enum conn_state state;
	bool dead;                 /* closed; memory freed from the event loop */
	bool tls;                  /* came in on the HTTPS proxy port ([tls]) */
	bool tls_handshaking;      /* ... and the handshake is not done yet */
	bool internal;             /* a background revalidation of the cache's own */
	bool admin;                /* came in on the admin listener ([admin] listen): its
				      resources and PURGE only, counted in w->nadmin_conns */
	bool client_keepalive;     /* the client connection may carry another request */
	bool head_seen;            /* bytes of a new request arrived (header deadline runs) */
	bool h2;                   /* an HTTP/2 stream's connection (h2.c): one request
				      written by the session, not a client socket */
	bool counted;              /* in the client table (stage_limits.c): uncounted at close */
	bool idle;                 /* on the worker's idle list (oldest first) */
	struct conn *idle_next, *idle_prev;
	char client_ip[INET6_ADDRSTRLEN];
	struct sockaddr_storage peer;
	char *auth_user;           /* the identity Negotiate gave the connection, or NULL */
	uint64_t h2_session;       /* h2: the session whose stream this is (h2_identity_*) */
	int64_t auth_until;        /* ... until then (monotonic seconds) */
};

/* Draining for a reload: how long an idle keep-alive connection (or one
 * accepted whose PROXY protocol header has not come yet) may still bring one
 * more request. */
#define DRAIN_IDLE_GRACE 1.0

/* Start serving an accepted client socket, over TLS with ctx when tls is not
 * NULL (NULL when out of memory; the socket is closed then). */
struct conn *conn_new(struct worker *w, int fd, const struct sockaddr *sa, int salen, SSL_CTX *tls);

/* Start serving a socket accepted on the admin listener ([admin] listen):
 * counted in w->nadmin_conns, not in w->nconns (NULL as for conn_new). */
struct conn *conn_new_admin(struct worker *w, int fd, const struct sockaddr *sa, int salen);

/* A connection for one HTTP/2 stream (h2.c): fd is the pipeline's end of a
 * socketpair, sa the h2 client's address. Not counted as a client
 * connection in the metrics (the session is). */
struct conn *conn_new_h2(struct worker *w, int fd, const struct sockaddr *sa, int salen);

/* A request starts on the connection: allocate its state (a no-op when one
 * is in flight). False when out of memory. */
bool conn_request_start(struct conn *c);

/* The idle keep-alive connection that has waited longest for its next
 * request, or NULL (stage_limits.c closes it to make room at max_connections). */
struct conn *conn_oldest_idle(struct worker *w);

/* Tear the connection down, saying why in the debug log. */
void conn_close(struct conn *c, const char *reason);

/* Answer the current request with a proxy-generated error and close. */
void conn_fail(struct conn *c, int status, enum outcome error, const char *details);

/* The current request is answered: log it, then serve the next or close. */
void conn_done(struct conn *c);

/* A waiting request (CONN_WAIT_FETCH) goes on: look the cache up again,
 * then fetch on its own if there is still nothing usable. */
void conn_resume_after_wait(struct conn *c);

/* Worker drain: a connection finishes its current request and closes after
 * it. An idle one closes now, or with grace after a moment in which it may
 * still bring one last request (reload). */
void conn_drain(struct conn *c, bool grace);

/* Add the request's Proxy-Authenticate line to its response head (Negotiate's
 * mutual authentication), if it has one. */
void conn_auth_reply(const struct conn *c, struct evbuffer *out);

/* The access log line for the current request or tunnel. */
void conn_log_access(struct conn *c);

/* Tunnel (tunnel.c): take the sockets out of cbev and ubev and relay bytes
 * both ways until both sides are done; then conn_close(). */
void tunnel_start(struct conn *c);

/* Close a tunnel's sockets and pipes, logging it if nothing did yet. */
void tunnel_free(struct conn *c);

#endif

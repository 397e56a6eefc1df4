/* worker.h - one worker process: a libevent loop accepting on the inherited
 * listening sockets and holding many client connections at once. */
#ifndef HOPCACHE_WORKER_H
#define HOPCACHE_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct event_base;
struct evdns_base;
struct evconnlistener;
struct event;
struct pool;
struct cache;
struct inflight;
struct proxy_wait;
struct acl;
struct htpasswd;
struct groups;
struct auth_cache;
struct auth_limiter;
struct directory;
struct dir_cache;
struct tls_sessions;
struct h2_session;
struct metrics;
struct metrics_slot;
struct ssl_ctx_st;
struct conn;
struct reject;
struct clients;

/* A listening socket the master bound: the plain proxy port or, with tls,
 * the HTTPS proxy port ([tls] listen), or with admin the admin listener
 * ([admin] listen). */
struct listen_sock {
	int fd;
	bool tls;
	bool admin;
};

struct worker {
	const struct config *cfg;
	struct event_base *base;
	struct evdns_base *dns;
	struct evconnlistener **listeners;
	size_t nlisteners;
	bool accepting;        /* listeners enabled */
	bool draining;         /* stop requested: finish in-flight work, then exit */
	bool retiring;         /* ... because a newer generation took over (reload) */
	size_t nconns;         /* client connections open (the admin listener's not counted) */
	/* the admin listener ([admin] listen): its own budget, so it answers
	 * while the proxy port is paused at max_connections, and vice versa */
	struct evconnlistener **admin_listeners;
	size_t nadmin_listeners;
	bool admin_accepting;
	size_t nadmin_conns;
	struct conn *conns;    /* list of open client connections */
	struct h2_session *h2_sessions; /* HTTP/2 client connections (h2.c; counted in
					   nconns; their streams' connections are in conns) */
	struct proxy_wait *proxy_waits; /* sockets still sending their PROXY protocol header
					 (proxy_header.c; counted in nconns) */
	struct conn *idle_oldest, *idle_newest; /* idle keep-alive connections (conn.c) */
	struct reject *rejects;  /* refused sockets lingering (reject.c; not in nconns) */
	size_t nrejects;
	struct clients *clients; /* the shared client table (stage_limits.c), or NULL */
	unsigned client_slot;    /* ... this worker's slot in it */
	double full_tokens;      /* 503s a full worker may still send (stage_limits.c) */
	int64_t full_last;       /* ... refilled then (CLOCK_MONOTONIC ns) */
	struct event *sweep_timer; /* once a second: limits_sweep */
	struct pool *pool;     /* idle upstream connections */
	struct cache *cache;   /* the shared store, or NULL when disabled */
	struct inflight *inflight; /* cache fetches in flight (conn_cache.c) */
	/* proxy authentication ([auth]; the files as the master read them) */
	const struct htpasswd *htpasswd;
	const struct groups *groups;
	struct auth_cache *auth_cache;
	struct auth_limiter *auth_limiter;
	const struct acl *acl;     /* the policy in force (cfg->acl) */
	/* the directory ([ldap]; net/stage_directory.c): its threads, the cache
	 * of group memberships, and its state (0 unknown, 1 up, 2 down) */
	struct directory *directory;
	struct dir_cache *dir_cache;
	int dir_state;
	struct event *sig_term, *sig_int, *sig_usr1, *sig_usr2, *drain_timer, *accept_timer;
	struct metrics *metrics_all;   /* every worker's counters (for /hopcache/metrics) */
	struct metrics_slot *metrics;  /* this worker's counters */
	/* TLS (tls.c): the HTTPS proxy port's context (the master's), and
	 * the context and session cache for https:// upstreams */
	struct ssl_ctx_st *tls_server;
	struct ssl_ctx_st *tls_client;
	struct tls_sessions *tls_sessions;
	/* [upstream] parent_user/parent_password as a header line
	 * (cfg->parent_auth), or "" */
	const char *parent_auth;
};

/* Run a worker on the given listening sockets until it is told to stop;
 * with use_cache, open the store the master prepared; tls_server (the
 * master's, shared so session tickets work across workers) serves the TLS
 * listeners; the worker counts into slot of metrics.
 * SIGTERM/SIGINT: stop within shutdown_timeout; SIGUSR2: a newer generation
 * took over (reload), finish within drain_timeout; SIGUSR1: reopen logs.
 * Never returns: exits the process with its status. */
void worker_main(const struct config *cfg, const struct listen_sock *ls, size_t nls, bool use_cache,
		 struct ssl_ctx_st *tls_server, struct ssl_ctx_st *tls_client, struct metrics *metrics,
		 struct metrics_slot *slot, struct clients *clients, unsigned client_slot)
	__attribute__((noreturn));

/* Stop accepting for `seconds` (a full worker past its burst of 503s). */
void worker_pause_accept(struct worker *w, double seconds);

/* A connection closed: maybe resume accepting, maybe finish draining. */
void worker_conn_closed(struct worker *w);

#endif

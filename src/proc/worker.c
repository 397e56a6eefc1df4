/* worker.c - a worker process: accept on the shared listening sockets and run
 * every client connection in one libevent loop.
 *
 * Stop (SIGTERM/SIGINT, or the master going away): stop accepting, close idle
 * connections, let requests and tunnels in flight finish for up to
 * shutdown_timeout, then exit. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "acl.h"
#include "auth.h"
#include "cache.h"
#include "config.h"
#include "conn.h"
#include "h2.h"
#include "stage_limits.h"
#include "log.h"
#include "metrics.h"
#include "negotiate.h"
#include "pool.h"
#include "proxy_header.h"
#include "reject.h"
#include "stage_directory.h"
#include "tls.h"
#include "timeval.h"

/* A full worker whose generation has room elsewhere looks again this often. */
#define FULL_RECHECK 0.1

static void set_accepting(struct worker *w, bool on)
{
	if (w->accepting == on)
		return;
	w->accepting = on;
	for (size_t i = 0; i < w->nlisteners; i++) {
		if (on)
			evconnlistener_enable(w->listeners[i]);
		else
			evconnlistener_disable(w->listeners[i]);
	}
}

void worker_pause_accept(struct worker *w, double seconds)
{
	set_accepting(w, false);
	struct timeval tv = timeval_of(seconds);
	evtimer_add(w->accept_timer, &tv);
}

/* At max_connections: while another worker of this generation has room,
 * leave new clients to it; once none has, keep accepting and answer them
 * (limits_worker_full), so they learn at once instead of waiting in the
 * kernel's backlog. */
static void full_check(struct worker *w)
{
	if (w->nconns >= (size_t)w->cfg->max_connections &&
	    metrics_room_elsewhere(w->metrics_all, w->metrics, w->cfg->max_connections))
		worker_pause_accept(w, FULL_RECHECK);
}

/* The admin listener's counterpart of set_accepting. */
static void admin_set_accepting(struct worker *w, bool on)
{
	if (w->admin_accepting == on)
		return;
	w->admin_accepting = on;
	for (size_t i = 0; i < w->nadmin_listeners; i++) {
		if (on)
			evconnlistener_enable(w->admin_listeners[i]);
		else
			evconnlistener_disable(w->admin_listeners[i]);
	}
}

/* Resume the admin listener, if there is one, below its budget (not while
 * accept(2) failures pause everything). */
static void admin_maybe_resume(struct worker *w)
{
	if (w->nadmin_listeners > 0 && !w->admin_accepting && !w->draining &&
	    w->nadmin_conns < (size_t)w->cfg->admin_max_connections &&
	    !evtimer_pending(w->accept_timer, NULL))
		admin_set_accepting(w, true);
}

/* Every connection the worker holds: the proxy ports' and the admin listener's. */
static size_t worker_open_conns(const struct worker *w)
{
	return w->nconns + w->nadmin_conns;
}

static void accept_one(struct worker *w, evutil_socket_t fd, struct sockaddr *sa, int salen,
		       SSL_CTX *tls)
{
	if (w->draining) {
		close(fd);
		return;
	}
	if (w->nconns >= (size_t)w->cfg->max_connections && !limits_worker_full(w, fd, tls))
		return;
	if (proxy_header_expected(w->cfg, sa))
		proxy_header_start(w, fd, sa, salen, tls);
	else
		limits_admit(w, fd, sa, salen, tls);
	full_check(w);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	(void)l;
	accept_one(arg, fd, sa, salen, NULL);
}

static void accept_tls_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			  int salen, void *arg)
{
	(void)l;
	struct worker *w = arg;
	accept_one(w, fd, sa, salen, w->tls_server);
}

/* The admin listener ([admin] listen): no PROXY protocol header, no TLS, and
 * a budget of its own ([admin] max_connections) that the proxy port's
 * connections never use up. */
static void accept_admin_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			    int salen, void *arg)
{
	(void)l;
	struct worker *w = arg;
	if (w->draining) {
		close(fd);
		return;
	}
	conn_new_admin(w, fd, sa, salen);
	if (w->nadmin_conns >= (size_t)w->cfg->admin_max_connections) {
		log_warn("admin connection limit %d reached: pausing admin accept",
			 w->cfg->admin_max_connections);
		admin_set_accepting(w, false);
	}
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	if (w->draining)
		return;
	if (w->nconns >= (size_t)w->cfg->max_connections &&
	    metrics_room_elsewhere(w->metrics_all, w->metrics, w->cfg->max_connections))
		worker_pause_accept(w, FULL_RECHECK);
	else
		set_accepting(w, true);
	admin_maybe_resume(w);
}

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	limits_sweep(arg);
}

/* accept(2) failed: on EMFILE/ENFILE pause for a second instead of spinning
 * (every listener: the descriptors are the process's). */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	struct worker *w = arg;
	int e = EVUTIL_SOCKET_ERROR();
	if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
		log_error("accept: %s: pausing accept for 1 s", strerror(e));
		set_accepting(w, false);
		admin_set_accepting(w, false);
		struct timeval one = { 1, 0 };
		evtimer_add(w->accept_timer, &one);
	} else if (e != EAGAIN && e != EINTR && e != ECONNABORTED) {
		log_warn("accept: %s", strerror(e));
	}
}

void worker_conn_closed(struct worker *w)
{
	if (w->draining) {
		if (worker_open_conns(w) == 0)
			event_base_loopexit(w->base, NULL);
		return;
	}
	if (!w->accepting && w->nconns < (size_t)w->cfg->max_connections &&
	    !evtimer_pending(w->accept_timer, NULL))
		set_accepting(w, true);
	admin_maybe_resume(w);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct worker *w = arg;
	log_warn("shutdown timeout: closing %zu connections", worker_open_conns(w));
	event_base_loopexit(w->base, NULL);
}

/* Begin a graceful stop: for a reload (retire), within drain_timeout, and an
 * idle keep-alive client gets a moment to send the request it may be sending
 * already (answered with Connection: close), so no request is cut off;
 * otherwise within shutdown_timeout, idle clients closed at once. */
static void worker_stop(struct worker *w, bool retire)
{
	if (w->draining)
		return;
	w->draining = true;
	w->retiring = retire;
	set_accepting(w, false);
	for (size_t i = 0; i < w->nlisteners; i++) {
		evconnlistener_free(w->listeners[i]);
		w->listeners[i] = NULL;
	}
	w->nlisteners = 0;
	admin_set_accepting(w, false);
	for (size_t i = 0; i < w->nadmin_listeners; i++)
		evconnlistener_free(w->admin_listeners[i]);
	w->nadmin_listeners = 0;
	pool_clear(w->pool);
	proxy_header_drain(w, retire); /* like conn_drain below */
	h2_drain_all(w);               /* GOAWAY; in-flight streams finish */
	struct conn *c = w->conns;
	while (c != NULL) {
		struct conn *next = c->next;
		conn_drain(c, retire); /* may free c */
		c = next;
	}
	if (worker_open_conns(w) == 0) {
		event_base_loopexit(w->base, NULL);
		return;
	}
	struct timeval tv = timeval_of(retire ? w->cfg->drain_timeout : w->cfg->shutdown_timeout);
	evtimer_add(w->drain_timer, &tv);
}

/* SIGUSR1: reopen the log files (logrotate moved them away). */
static void usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct worker *w = arg;
	const char *what_failed = NULL;
	int r = log_open(w->cfg->error_log, w->cfg->access_log, w->cfg->log_level, &what_failed);
	if (r < 0)
		log_error("SIGUSR1: cannot reopen %s: %s", what_failed, strerror(-r));
}

/* SIGUSR2: a new generation took over (reload): finish and exit. */
static void retire_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct worker *w = arg;
	log_debug("reload: draining (up to %.0f s)", w->cfg->drain_timeout);
	worker_stop(w, true);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct worker *w = arg;
	log_debug("signal %d: stopping", (int)sig);
	worker_stop(w, false);
}

/* The worker's event loop and resolver ([proxy] resolv_conf). */
static void loop_start(struct worker *w)
{
	const struct config *cfg = w->cfg;
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL) {
		log_error("cannot create the event loop");
		exit(1);
	}
	/* Two priorities: a signal (a reload's SIGUSR2) that arrives with a
	 * connection is handled first, so a retiring worker accepts nothing
	 * more once told to stop. */
	event_base_priority_init(w->base, 2);
	w->dns = evdns_base_new(w->base, 0);
	if (w->dns == NULL) {
		log_error("cannot create the resolver");
		exit(1);
	}
	int r = evdns_base_resolv_conf_parse(w->dns, DNS_OPTIONS_ALL, cfg->resolv_conf);
	if (r != 0)
		log_warn("resolver: cannot use %s (error %d): using 127.0.0.1", cfg->resolv_conf, r);
	if (evdns_base_count_nameservers(w->dns) == 0)
		evdns_base_nameserver_ip_add(w->dns, "127.0.0.1");
	evdns_base_load_hosts(w->dns, NULL);
}

/* The timers and signal events, then the signals held since the fork. */
static void events_start(struct worker *w)
{
	w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
	w->accept_timer = evtimer_new(w->base, accept_resume_cb, w);
	w->sweep_timer = event_new(w->base, -1, EV_PERSIST, sweep_cb, w);
	w->sig_term = evsignal_new(w->base, SIGTERM, signal_cb, w);
	w->sig_int = evsignal_new(w->base, SIGINT, signal_cb, w);
	w->sig_usr1 = evsignal_new(w->base, SIGUSR1, usr1_cb, w);
	w->sig_usr2 = evsignal_new(w->base, SIGUSR2, retire_cb, w);
	if (w->pool == NULL || w->drain_timer == NULL || w->accept_timer == NULL ||
	    w->sweep_timer == NULL ||
	    w->sig_term == NULL || w->sig_int == NULL || w->sig_usr1 == NULL || w->sig_usr2 == NULL) {
		log_error("out of memory starting the worker");
		exit(1);
	}
	struct timeval second = { 1, 0 };
	evtimer_add(w->sweep_timer, &second);
	struct event *sigs[] = { w->sig_term, w->sig_int, w->sig_usr1, w->sig_usr2 };
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		event_priority_set(sigs[i], 0);
		evsignal_add(sigs[i], NULL);
	}
	/* Signals the master sent while this worker started were held
	 * (blocked in spawn): the handlers are in place, let them in. */
	sigset_t held;
	sigemptyset(&held);
	sigaddset(&held, SIGUSR1);
	sigaddset(&held, SIGUSR2);
	sigaddset(&held, SIGTERM);
	sigaddset(&held, SIGINT);
	sigprocmask(SIG_UNBLOCK, &held, NULL);
}

/* Accept on the inherited listening sockets: the proxy ports in listeners,
 * the admin listener's in admin_listeners. */
static void listen_start(struct worker *w, const struct listen_sock *ls, size_t nls)
{
	w->listeners = calloc(nls, sizeof(*w->listeners));
	w->admin_listeners = calloc(nls, sizeof(*w->admin_listeners));
	if (nls > 0 && (w->listeners == NULL || w->admin_listeners == NULL)) {
		log_error("worker: out of memory for %zu listener(s)", nls);
		exit(1);
	}
	for (size_t i = 0; i < nls; i++) {
		/* CLOSE_ON_FREE: a stopping worker lets go of the socket, so once
		 * the master has closed its own copy too, new clients are refused
		 * at once instead of queueing until the drain ends. */
		evconnlistener_cb cb = ls[i].admin ? accept_admin_cb
				       : ls[i].tls ? accept_tls_cb : accept_cb;
		struct evconnlistener *l = evconnlistener_new(
			w->base, cb, w, LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_CLOSE_ON_FREE, -1, ls[i].fd);
		if (l == NULL) {
			log_error("cannot listen on inherited socket %d", ls[i].fd);
			exit(1);
		}
		evconnlistener_set_error_cb(l, accept_error_cb);
		if (ls[i].admin)
			w->admin_listeners[w->nadmin_listeners++] = l;
		else
			w->listeners[w->nlisteners++] = l;
	}
}

/* Drained or timed out: close what is left and free everything. */
static void teardown(struct worker *w)
{
	proxy_header_stop(w);
	reject_stop(w);
	h2_close_all(w);
	while (w->conns != NULL)
		conn_close(w->conns, "shutdown");
	event_base_loop(w->base, EVLOOP_NONBLOCK); /* run the deferred frees */
	stage_directory_stop(w); /* waits for each thread's job in progress */
	for (size_t i = 0; i < w->nlisteners; i++)
		evconnlistener_free(w->listeners[i]);
	free(w->listeners);
	for (size_t i = 0; i < w->nadmin_listeners; i++)
		evconnlistener_free(w->admin_listeners[i]);
	free(w->admin_listeners);
	pool_free(w->pool);
	if (w->cache != NULL)
		cache_close(w->cache);
	event_free(w->drain_timer);
	event_free(w->accept_timer);
	event_free(w->sweep_timer);
	event_free(w->sig_term);
	event_free(w->sig_int);
	event_free(w->sig_usr1);
	event_free(w->sig_usr2);
	auth_cache_free(w->auth_cache);
	auth_limiter_free(w->auth_limiter);
	evdns_base_free(w->dns, 0);
	event_base_free(w->base);
	SSL_CTX_free(w->tls_client);
	SSL_CTX_free(w->tls_server);
	tls_sessions_free(w->tls_sessions);
}

void worker_main(const struct config *cfg, const struct listen_sock *ls, size_t nls, bool use_cache,
		 SSL_CTX *tls_server, SSL_CTX *tls_client, struct metrics *metrics,
		 struct metrics_slot *slot, struct clients *clients, unsigned client_slot)
{
	struct worker wk;
	struct worker *w = &wk;
	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	w->acl = cfg->acl;
	w->htpasswd = cfg->htpasswd;
	w->groups = cfg->groups;
	w->metrics_all = metrics;
	w->metrics = slot;
	w->clients = clients;
	w->client_slot = client_slot;
	log_set_process("worker");
	/* The master going away (even by SIGKILL) stops the worker gracefully. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		exit(0);
	signal(SIGPIPE, SIG_IGN);

	loop_start(w);
	w->pool = pool_new(w->base, (size_t)cfg->pool_max_idle, cfg->pool_idle_timeout);
	w->tls_server = tls_server;
	w->parent_auth = cfg->parent_auth != NULL ? cfg->parent_auth : "";
	w->tls_client = tls_client;
	w->tls_sessions = tls_sessions_new(256);
	if (w->tls_client != NULL && w->tls_sessions != NULL)
		tls_client_sessions(w->tls_client, w->tls_sessions);
	if (use_cache) {
		char err[512];
		w->cache = cache_open(cfg->cache_dir, (size_t)cfg->cache_size,
				      (size_t)cfg->cache_max_object, err, sizeof(err));
		if (w->cache == NULL)
			log_error("cache disabled in this worker: %s", err);
	}
	w->auth_cache = auth_cache_new(4096);
	w->auth_limiter = auth_limiter_new((unsigned)cfg->auth_max_failures,
					   (int64_t)cfg->auth_failure_window);
	if (w->auth_cache == NULL || w->auth_limiter == NULL)
		exit(1);
	if (cfg->keytab != NULL) {
		char err[256];
		if (negotiate_worker_init(cfg->keytab, cfg->auth_replay_cache, err, sizeof(err)) < 0) {
			log_error("Negotiate authentication unavailable: %s", err);
			exit(1);
		}
	}
	stage_directory_start(w);
	events_start(w);

	listen_start(w, ls, nls);
	w->accepting = true;
	w->admin_accepting = true;
	log_debug("worker ready");

	event_base_dispatch(w->base);

	teardown(w);
	exit(0);
}

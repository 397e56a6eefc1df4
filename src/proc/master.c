/* master.c - the supervisor process.
 *
 * The master binds every listening socket, switches to [proxy] user keeping
 * only CAP_NET_BIND_SERVICE (so a reload can still bind a low port), forks
 * a generation of N workers that inherit the sockets, and never serves
 * traffic itself. A worker that dies is logged (exit status or signal) and
 * replaced; when workers die young, respawns are throttled with a growing
 * delay so a crash loop does not spin (Postfix's master_spawn does the same).
 *
 * SIGHUP reloads: the INI and every file it names are read and checked
 * again; an invalid configuration is logged, problem by problem, and the
 * running generation stays. A valid one starts a new generation on the same
 * sockets (listen addresses that are new are bound, removed ones are closed
 * once nobody uses them); the old generation is told (SIGUSR2) to stop
 * accepting, finish what is in flight within drain_timeout, and exit. The
 * sockets stay open throughout, so a connection waiting in the kernel's
 * queue is accepted by whichever worker takes it: none is dropped.
 *
 * SIGUSR1 reopens the logs (the master's, then every worker's).
 * SIGTERM/SIGINT: close the listening sockets, ask the workers to finish
 * in-flight work, wait up to shutdown_timeout, then exit 0. */
#include "autoconfig.h"
#include "master.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "acl.h"
#include "cache.h"
#include "clients.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "worker.h"
#include "timeval.h"

#define BACKOFF_MIN 0.1  /* seconds before respawning a worker that died young */
#define BACKOFF_MAX 10.0
#define YOUNG 2.0        /* a worker dying within this many seconds is "young" */
#define METRICS_SLOTS (2 * 256 + 8)

/* A listening socket, shared by the generations whose config names it. */
struct lsock {
	int fd;
	char host[256], port[16]; /* as configured ("0" = the kernel picked) */
	const char *kind;         /* listen_kind() of the key that bound it */
	unsigned refs;            /* generations using it */
	bool claimed;             /* taken by the generation being built */
};

struct worker_slot {
	pid_t pid;
	struct timespec started;
};

/* A generation: one configuration and the workers running it. */
struct gen {
	struct gen *next;
	unsigned id;
	struct config *cfg;
	SSL_CTX *tls;               /* the HTTPS port's context, inherited by workers */
	SSL_CTX *tls_client;        /* https:// upstreams (trust store parsed once) */
	bool cache_ok;              /* the store is prepared: workers open it */
	struct listen_sock *ls;     /* its sockets, each plain or TLS */
	struct lsock **socks;       /* ... and their shared records */
	size_t nls;
	struct worker_slot *w;
	size_t nw;
	bool retiring;              /* told to drain: not respawned */
	struct event *kill_timer;   /* retiring: SIGKILL after drain_timeout */
	struct master *m;
};

struct master {
	struct event_base *base;
	const char *path;            /* the INI file */
	struct gen *cur;             /* the generation serving new connections */
	struct gen *old;             /* retiring generations */
	struct lsock **socks;
	size_t nsocks;
	unsigned next_id;
	double backoff;
	bool stopping;
	struct metrics *metrics;
	struct clients *clients;     /* per-client counts, shared by all workers */
	struct event *respawn_timer, *stop_timer;
	struct event *sigs[5];
	char *pid_file;              /* as written at start */
};

/* In a new worker: drop the master's event loop, so its signal events do not
 * compete with the worker's (libevent allows one signal base per process). */
static void master_forget(struct master *m)
{
	/* The epoll set is shared with the master after fork: give the child
	 * its own before deleting anything from it. */
	event_reinit(m->base);
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(m->sigs[0]); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	event_free(m->respawn_timer);
	event_free(m->stop_timer);
	for (struct gen *g = m->old; g != NULL; g = g->next)
		if (g->kill_timer != NULL)
			event_free(g->kill_timer);
	event_base_free(m->base);
}

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* ---- listening sockets ---------------------------------------------------- */

/* How the log names a listener: "" for [proxy] listen, "for TLS " for
 * [tls] listen, "for admin " for [admin] listen. */
static const char *listen_kind(const struct listen_sock *ls)
{
	return ls->admin ? "for admin " : ls->tls ? "for TLS " : "";
}

/* Bind one "host:port"; log "listening on ADDR:PORT" (or "listening for TLS
 * on ADDR:PORT", "listening for admin on ADDR:PORT") with the real port.
 * Returns the socket or -1. */
static int bind_one(const struct config_listen *l, const char *kind)
{
	struct addrinfo hints, *res, *ai;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int r = getaddrinfo(l->host, l->port, &hints, &res);
	if (r != 0) {
		log_error("listen %s:%s: %s", l->host, l->port, gai_strerror(r));
		return -1;
	}
	int bound = -1;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
			log_error("listen %s:%s: %s", l->host, l->port, strerror(errno));
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char host[NI_MAXHOST], serv[NI_MAXSERV];
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
			    NI_NUMERICHOST | NI_NUMERICSERV);
		if (ss.ss_family == AF_INET6)
			log_info("listening %son [%s]:%s", kind, host, serv);
		else
			log_info("listening %son %s:%s", kind, host, serv);
		/* one socket per configured address: a name resolving to
		 * several addresses binds the first that works */
		bound = fd;
		break;
	}
	freeaddrinfo(res);
	return bound;
}

/* The socket for a configured address: one the running generation already
 * has (same host and port as written, so "host:0" keeps its port; for port
 * 0, under the same key too, so the kernel's port stays with its role), else
 * a new one. NULL when it cannot be bound. */
static struct lsock *sock_get(struct master *m, const struct config_listen *l, const char *kind)
{
	for (size_t i = 0; i < m->nsocks; i++) {
		struct lsock *s = m->socks[i];
		if (!s->claimed && strcasecmp(s->host, l->host) == 0 && strcmp(s->port, l->port) == 0 &&
		    (strcmp(s->port, "0") != 0 || strcmp(s->kind, kind) == 0)) {
			s->claimed = true;
			return s;
		}
	}
	struct lsock *s = calloc(1, sizeof(*s));
	struct lsock **grown = realloc(m->socks, (m->nsocks + 1) * sizeof(*grown));
	if (s == NULL || grown == NULL) {
		free(s);
		if (grown != NULL)
			m->socks = grown;
		return NULL;
	}
	m->socks = grown;
	s->fd = bind_one(l, kind);
	if (s->fd < 0) {
		free(s);
		return NULL;
	}
	snprintf(s->host, sizeof(s->host), "%s", l->host);
	snprintf(s->port, sizeof(s->port), "%s", l->port);
	s->kind = kind;
	s->claimed = true;
	m->socks[m->nsocks++] = s;
	return s;
}

/* Drop a generation's hold on its sockets; close those nobody uses. */
static void socks_release(struct master *m, struct gen *g)
{
	for (size_t i = 0; i < g->nls; i++)
		if (g->socks[i] != NULL)
			g->socks[i]->refs--;
	size_t k = 0;
	for (size_t i = 0; i < m->nsocks; i++) {
		struct lsock *s = m->socks[i];
		if (s->refs == 0) {
			if (s->fd >= 0) {
				log_info("closed listener %s:%s", s->host, s->port);
				close(s->fd);
			}
			free(s);
		} else {
			m->socks[k++] = s;
		}
	}
	m->nsocks = k;
}

/* Sockets for every listen address of cfg ([proxy], [tls], then [admin]
 * listen); -1 (and nothing kept) if one cannot be bound. */
static int gen_bind(struct master *m, struct gen *g)
{
	const struct config *cfg = g->cfg;
	size_t n = cfg->nlisten + cfg->ntls_listen + cfg->nadmin_listen;
	g->ls = calloc(n, sizeof(*g->ls));
	g->socks = calloc(n, sizeof(*g->socks));
	if (g->ls == NULL || g->socks == NULL)
		return -1;
	for (size_t i = 0; i < m->nsocks; i++)
		m->socks[i]->claimed = false;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct listen_sock ls = { .tls = i >= cfg->nlisten && i < cfg->nlisten + cfg->ntls_listen,
					  .admin = i >= cfg->nlisten + cfg->ntls_listen };
		const struct config_listen *l =
			ls.admin ? &cfg->admin_listen[i - cfg->nlisten - cfg->ntls_listen]
			: ls.tls ? &cfg->tls_listen[i - cfg->nlisten]
				 : &cfg->listen[i];
		struct lsock *s = sock_get(m, l, listen_kind(&ls));
		if (s == NULL) {
			rc = -1;
			break;
		}
		s->refs++;
		ls.fd = s->fd;
		g->socks[g->nls] = s;
		g->ls[g->nls++] = ls;
	}
	if (rc != 0)
		socks_release(m, g); /* closes what was bound for it alone */
	return rc;
}

/* ---- privileges ------------------------------------------------------------ */

/* Set the capability sets to CAP_NET_BIND_SERVICE (keep) or nothing. */
static int caps_set(bool keep_bind)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof(d));
	if (keep_bind) {
		d[0].effective = d[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	}
	return (int)syscall(SYS_capset, &h, d);
}

/* Switch to [proxy] user. The master keeps CAP_NET_BIND_SERVICE, so a
 * reload can bind a port below 1024; workers keep nothing. */
static int drop_privileges(const char *user, bool keep_bind)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("[proxy] user: no such user \"%s\"", user);
		return -1;
	}
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)
		return 0;
	if (keep_bind)
		prctl(PR_SET_KEEPCAPS, 1);
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0) {
		log_error("cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (keep_bind) {
		prctl(PR_SET_KEEPCAPS, 0);
		if (caps_set(true) != 0)
			log_warn("cannot keep CAP_NET_BIND_SERVICE: %s (a reload cannot bind "
				 "ports below 1024)", strerror(errno));
	}
	if (setuid(0) == 0) {
		log_error("privileges could be regained after switching to %s", user);
		return -1;
	}
	return 0;
}

/* ---- checks beyond config_load ---------------------------------------------- */

/* Can user read path (permission bits; the directories on the way are not
 * checked)? */
static bool readable_by(const char *path, const struct passwd *pw)
{
	struct stat st;
	if (pw->pw_uid == 0 || stat(path, &st) != 0)
		return true; /* root; or missing, which config_load reports */
	if (st.st_uid == pw->pw_uid)
		return (st.st_mode & S_IRUSR) != 0;
	gid_t groups[64];
	int ng = 64;
	if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) < 0)
		ng = 0;
	for (int i = 0; i < ng; i++)
		if (groups[i] == st.st_gid)
			return (st.st_mode & S_IRGRP) != 0;
	return (st.st_mode & S_IROTH) != 0;
}

int master_check(const struct config *cfg, SSL_CTX **tls, struct config_errors *errs,
		 struct config_errors *warns)
{
	int rc = 0;
	if (tls != NULL)
		*tls = NULL;
	if (cfg->ntls_listen > 0) {
		char err[768];
		SSL_CTX *ctx = tls_server_new(cfg, err, sizeof(err));
		if (ctx == NULL) {
			config_errors_add(errs, "%s: %s", cfg->path, err);
			rc = -1;
		} else if (tls != NULL) {
			*tls = ctx;
		} else {
			SSL_CTX_free(ctx);
		}
	}
	if (cfg->user == NULL)
		return rc;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		config_errors_add(errs, "%s: [proxy] user: no such user \"%s\"", cfg->path, cfg->user);
		return -1;
	}
	if (warns == NULL)
		return rc;
	/* After the switch to [proxy] user the master reads these again on
	 * every reload: say now which it could not. */
	struct { const char *sec, *key, *path; } files[] = {
		{ NULL, NULL, cfg->path },
		{ "tls", "certificate", cfg->ntls_listen ? cfg->tls_certificate : NULL },
		{ "tls", "private_key", cfg->ntls_listen ? cfg->tls_private_key : NULL },
		{ "auth", "htpasswd", cfg->auth_htpasswd },
		{ "auth", "groups", cfg->auth_groups },
		{ "auth", "keytab", cfg->auth_keytab },
		{ "upstream", "ca_file", cfg->upstream_ca_file },
		{ "upstream", "ca_path", cfg->upstream_ca_path },
		{ "ldap", "bind_password_file", cfg->ldap_bind_password_file },
		{ "ldap", "ca_file", cfg->ldap_ca_file },
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (files[i].path == NULL || readable_by(files[i].path, pw))
			continue;
		if (files[i].sec == NULL)
			config_errors_add(warns, "%s: not readable by user %s: a reload would fail", files[i].path,
				cfg->user);
		else
			config_errors_add(warns, "%s: [%s] %s: %s: not readable by user %s: a reload would fail",
				cfg->path, files[i].sec, files[i].key, files[i].path, cfg->user);
	}
	for (size_t i = 0; cfg->acl != NULL && i < cfg->acl->n_rules; i++) {
		const struct acl_rule *r = &cfg->acl->rules[i];
		if (r->domain_file_path != NULL && !readable_by(r->domain_file_path, pw))
			config_errors_add(warns, "%s: [rule.%s] domain_file: %s: not readable by user %s: a reload "
				"would fail", cfg->path, r->name, r->domain_file_path, cfg->user);
	}
	return rc;
}

/* ---- workers ------------------------------------------------------------------ */

/* The signals the master handles and the workers get from it. */
static void master_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGCHLD);
}

/* SIGUSR2 is for workers; the master's own is a no-op handler, not
 * SIG_IGN, since an ignored signal would be discarded even while a new
 * worker holds it blocked. */
static void usr2_noop(int sig)
{
	(void)sig;
}

static void spawn(struct master *m, struct gen *g, size_t i)
{
	struct metrics_slot *slot = metrics_slot_claim(m->metrics, 0, g->id);
	int cslot = metrics_slot_index(m->metrics, slot);
	if (cslot >= 0)
		clients_slot_open(m->clients, (unsigned)cslot);
	/* The child starts with every signal of ours blocked: one sent before
	 * the worker listens for it is held (pending), not lost. */
	sigset_t block, old;
	master_signals(&block);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		metrics_slot_free(m->metrics, slot);
		if (cslot >= 0)
			clients_slot_close(m->clients, (unsigned)cslot);
		return;
	}
	if (pid == 0) {
		/* The child must not run the master's event handlers, nor hold
		 * listening sockets its generation does not use (a removed
		 * listen address must stop answering). */
		for (size_t k = 0; k < m->nsocks; k++) {
			bool mine = false;
			for (size_t j = 0; j < g->nls; j++)
				mine |= g->socks[j] == m->socks[k];
			if (!mine && m->socks[k]->fd >= 0)
				close(m->socks[k]->fd);
		}
		master_forget(m);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		if (g->cfg->user != NULL && getuid() == 0 && drop_privileges(g->cfg->user, false) != 0)
			exit(1);
		if (getuid() != 0)
			caps_set(false); /* the master's CAP_NET_BIND_SERVICE stays there */
		worker_main(g->cfg, g->ls, g->nls, g->cache_ok, g->tls, g->tls_client, m->metrics, slot,
			    cslot >= 0 ? m->clients : NULL, cslot >= 0 ? (unsigned)cslot : 0);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	metrics_slot_set_pid(slot, pid);
	g->w[i].pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &g->w[i].started);
	log_debug("generation %u worker %zu started as pid %d", g->id, i, (int)pid);
}

static size_t gen_live(const struct gen *g)
{
	size_t n = 0;
	for (size_t i = 0; i < g->nw; i++)
		n += g->w[i].pid != 0;
	return n;
}

static size_t live_workers(const struct master *m)
{
	size_t n = m->cur != NULL ? gen_live(m->cur) : 0;
	for (const struct gen *g = m->old; g != NULL; g = g->next)
		n += gen_live(g);
	return n;
}

static void gen_free(struct master *m, struct gen *g)
{
	if (g == NULL)
		return;
	socks_release(m, g);
	if (g->kill_timer != NULL)
		event_free(g->kill_timer);
	SSL_CTX_free(g->tls);
	SSL_CTX_free(g->tls_client);
	config_free(g->cfg);
	free(g->ls);
	free(g->socks);
	free(g->w);
	free(g);
}

/* Fill every empty slot of the current generation (the respawn timer). */
static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	if (m->stopping || m->cur == NULL)
		return;
	for (size_t i = 0; i < m->cur->nw; i++)
		if (m->cur->w[i].pid == 0)
			spawn(m, m->cur, i);
}

/* A retiring generation whose last worker is gone is freed. */
static void reap_old(struct master *m)
{
	struct gen **pp = &m->old;
	while (*pp != NULL) {
		struct gen *g = *pp;
		if (gen_live(g) > 0) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		log_info("generation %u finished", g->id);
		gen_free(m, g);
	}
}

/* Reap children; log how each died; schedule replacements. */
static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct master *m = arg;
	int status;
	pid_t pid;
	bool young = false, died = false;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int cslot = metrics_slot_release(m->metrics, pid);
		if (cslot >= 0)
			clients_slot_close(m->clients, (unsigned)cslot); /* its connections are gone */
		for (struct gen *g = m->cur; g != NULL; g = g == m->cur ? m->old : g->next) {
			for (size_t i = 0; i < g->nw; i++) {
				if (g->w[i].pid != pid)
					continue;
				double age = since(&g->w[i].started);
				g->w[i].pid = 0;
				if (m->stopping || g->retiring) {
					/* a draining worker exits 0, or ends by a signal
					 * the master sends (SIGKILL at drain_timeout, SIGTERM
					 * to one stopped before it was ready) or an operator
					 * would; any other signal is a crash */
					int by = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
					if (by != 0 && by != SIGKILL && by != SIGTERM && by != SIGINT)
						log_error("draining worker pid %d (generation %u) killed by "
							  "signal %d (%s)", (int)pid, g->id,
							  WTERMSIG(status), strsignal(WTERMSIG(status)));
					else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
						log_error("draining worker pid %d (generation %u) exited "
							  "with status %d", (int)pid, g->id,
							  WEXITSTATUS(status));
					else
						log_debug("worker pid %d (generation %u) exited", (int)pid,
							  g->id);
					continue;
				}
				if (WIFSIGNALED(status))
					log_error("worker pid %d killed by signal %d (%s) after %.1f s: "
						  "replacing it", (int)pid, WTERMSIG(status),
						  strsignal(WTERMSIG(status)), age);
				else
					log_error("worker pid %d exited with status %d after %.1f s: "
						  "replacing it", (int)pid, WEXITSTATUS(status), age);
				metrics_worker_restart(m->metrics);
				died = true;
				young |= age < YOUNG;
			}
		}
	}
	reap_old(m);
	if (m->stopping) {
		if (live_workers(m) == 0)
			event_base_loopexit(m->base, NULL);
		return;
	}
	if (!died)
		return;
	double delay = 0;
	if (young) {
		delay = m->backoff;
		m->backoff = m->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : m->backoff * 2;
		log_warn("workers are dying young: next respawn in %.1f s", delay);
	} else {
		m->backoff = BACKOFF_MIN;
	}
	struct timeval tv = timeval_of(delay);
	evtimer_add(m->respawn_timer, &tv);
}

static void kill_all(struct gen *g)
{
	for (size_t i = 0; i < g->nw; i++) {
		if (g->w[i].pid != 0) {
			log_warn("worker pid %d did not stop in time: killing it", (int)g->w[i].pid);
			kill(g->w[i].pid, SIGKILL);
		}
	}
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	if (m->cur != NULL)
		kill_all(m->cur);
	for (struct gen *g = m->old; g != NULL; g = g->next)
		kill_all(g);
}

static void signal_gen(struct gen *g, int sig)
{
	for (size_t i = 0; i < g->nw; i++)
		if (g->w[i].pid != 0)
			kill(g->w[i].pid, sig);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct master *m = arg;
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("signal %d: stopping (waiting up to %.0f s for requests in flight)", (int)sig,
		 m->cur->cfg->shutdown_timeout);
	evtimer_del(m->respawn_timer);
	for (size_t i = 0; i < m->nsocks; i++) {
		close(m->socks[i]->fd);
		m->socks[i]->fd = -1;
	}
	signal_gen(m->cur, SIGTERM);
	for (struct gen *g = m->old; g != NULL; g = g->next)
		signal_gen(g, SIGTERM);
	if (live_workers(m) == 0) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	struct timeval tv = timeval_of(m->cur->cfg->shutdown_timeout + 1);
	evtimer_add(m->stop_timer, &tv);
}

/* A retiring generation overstayed its drain timeout. */
static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	kill_all(arg);
}

/* The store the workers of cfg open, created (and given to [proxy] user)
 * here. A store that cannot be used is reported; the proxy runs without. */
static bool cache_setup(const struct config *cfg, const struct gen *prev)
{
	if (!cfg->cache_enabled)
		return false;
	if (prev != NULL && prev->cfg->cache_enabled && prev->cache_ok &&
	    strcmp(prev->cfg->cache_dir, cfg->cache_dir) == 0 && prev->cfg->cache_size == cfg->cache_size)
		return true;
	char err[512];
	if (cache_prepare(cfg->cache_dir, (size_t)cfg->cache_size, err, sizeof(err)) != 0) {
		log_error("cache disabled: %s", err);
		return false;
	}
	if (cfg->user != NULL && getuid() == 0) {
		struct passwd *pw = getpwnam(cfg->user);
		/* the files first: once the directory is the user's, root
		 * without CAP_DAC_OVERRIDE (a sandboxed unit) cannot enter it */
		static const char *const files[] = { "/data.mdb", "/lock.mdb", "" };
		for (size_t i = 0; pw != NULL && i < 3; i++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s%s", cfg->cache_dir, files[i]);
			if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
				log_error("cache disabled: chown %s to %s: %s", path, cfg->user,
					  strerror(errno));
				return false;
			}
		}
	}
	log_info("cache in %s (map size %llu MiB)", cfg->cache_dir,
		 (unsigned long long)(cfg->cache_size >> 20));
	return true;
}

/* Give the log files to [proxy] user, so workers (and the master, after the
 * switch) can reopen them on SIGUSR1. */
static void logs_chown(const struct config *cfg)
{
	if (cfg->user == NULL || getuid() != 0)
		return;
	struct passwd *pw = getpwnam(cfg->user);
	const char *paths[] = { cfg->error_log, cfg->access_log };
	for (size_t i = 0; pw != NULL && i < 2; i++) {
		struct stat st;
		if (paths[i] != NULL && paths[i][0] == '/' && stat(paths[i], &st) == 0 &&
		    S_ISREG(st.st_mode) && chown(paths[i], pw->pw_uid, pw->pw_gid) != 0)
			log_warn("chown %s to %s: %s", paths[i], cfg->user, strerror(errno));
	}
}

/* A generation for cfg (taken over; freed on failure): sockets, TLS, cache. */
/* Open files a worker may need: a client and an upstream socket per
 * connection, plus refused sockets lingering and the rest. The soft limit
 * is raised towards the hard one (inherited by the workers); short of it, a
 * warning, as a worker would hit EMFILE (and pause accepting) first. */
static void nofile_raise(const struct config *cfg)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)cfg->max_connections * 2 + 512;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rlim_t soft = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (soft > rl.rlim_cur) {
		rl.rlim_cur = soft;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	if (soft < want)
		log_warn("open files limited to %llu: [limits] max_connections %d wants %llu "
			 "(raise the hard limit, e.g. LimitNOFILE= in the service unit)",
			 (unsigned long long)soft, cfg->max_connections, (unsigned long long)want);
}

static struct gen *gen_new(struct master *m, struct config *cfg, SSL_CTX *tls)
{
	nofile_raise(cfg);
	struct gen *g = calloc(1, sizeof(*g));
	if (g == NULL) {
		SSL_CTX_free(tls);
		config_free(cfg);
		return NULL;
	}
	g->m = m;
	g->id = ++m->next_id;
	g->cfg = cfg;
	g->tls = tls;
	g->nw = (size_t)cfg->workers;
	g->w = calloc(g->nw, sizeof(*g->w));
	if (g->w == NULL || gen_bind(m, g) != 0) {
		gen_free(m, g);
		return NULL;
	}
	g->cache_ok = cache_setup(cfg, m->cur);
	char err[768];
	g->tls_client = tls_client_new(cfg, err, sizeof(err));
	if (g->tls_client == NULL)
		log_error("https:// upstreams unavailable: %s", err);
	return g;
}

/* SIGHUP: a new generation, or the old one stays. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct master *m = arg;
	if (m->stopping)
		return;
	struct config_errors errs = { 0 };
	struct config *cfg = config_load(m->path, &errs);
	SSL_CTX *tls = NULL;
	if (cfg != NULL && master_check(cfg, &tls, &errs, NULL) != 0) {
		config_free(cfg);
		cfg = NULL;
	}
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("reload: %s", errs.msg[i]);
		log_error("reload refused: %zu problem%s in %s; generation %u keeps running", errs.n,
			  errs.n == 1 ? "" : "s", m->path, m->cur->id);
		config_errors_free(&errs);
		metrics_reload(m->metrics, false);
		return;
	}
	config_errors_free(&errs);
	const char *was = m->cur->cfg->user, *now = cfg->user;
	bool changed = (was == NULL) != (now == NULL) || (was != NULL && strcmp(was, now) != 0);
	if (changed && getuid() != 0)
		log_warn("reload: [proxy] user changed (%s -> %s): the master already runs as %s; "
			 "a restart applies it", was ? was : "none", now ? now : "none",
			 was ? was : "its user");
	struct gen *g = gen_new(m, cfg, tls);
	if (g == NULL) {
		log_error("reload refused: cannot listen on every address; generation %u keeps "
			  "running", m->cur->id);
		metrics_reload(m->metrics, false);
		return;
	}
	/* The master's own logs follow the new paths and level. */
	log_set_access_format(cfg->access_format);
	log_set_syslog_facility(cfg->syslog_facility);
	const char *bad = NULL;
	int r = log_open(cfg->error_log, cfg->access_log, cfg->log_level, &bad);
	if (r < 0)
		log_error("reload: cannot open log %s: %s", bad, strerror(-r));
	for (size_t i = 0; i < g->nw; i++)
		spawn(m, g, i);
	struct gen *prev = m->cur;
	m->cur = g;
	/* The old generation stops accepting now and drains; the sockets
	 * stay open, so connections queued meanwhile go to the new one. */
	prev->retiring = true;
	prev->next = m->old;
	m->old = prev;
	signal_gen(prev, SIGUSR2);
	prev->kill_timer = evtimer_new(m->base, drain_timeout_cb, prev);
	if (prev->kill_timer != NULL) {
		struct timeval tv = timeval_of(prev->cfg->drain_timeout + 1);
		evtimer_add(prev->kill_timer, &tv);
	}
	metrics_reload(m->metrics, true);
	log_info("reload: generation %u started with %zu workers; generation %u draining "
		 "(up to %.0f s)", g->id, g->nw, prev->id, prev->cfg->drain_timeout);
	reap_old(m);
}

/* SIGUSR1: reopen the logs, here and in every worker. */
static void usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct master *m = arg;
	const struct config *cfg = m->cur->cfg;
	const char *bad = NULL;
	int r = log_open(cfg->error_log, cfg->access_log, cfg->log_level, &bad);
	if (r < 0)
		log_error("SIGUSR1: cannot reopen %s: %s", bad, strerror(-r));
	logs_chown(cfg);
	signal_gen(m->cur, SIGUSR1);
	for (struct gen *g = m->old; g != NULL; g = g->next)
		signal_gen(g, SIGUSR1);
	log_info("SIGUSR1: logs reopened");
}

/* Detach from the terminal (not with -f). */
static int daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	int fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return 0;
}

/* [proxy] pid_file: 0, or -1 (logged). */
static int write_pid_file(struct master *m, const char *path)
{
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		log_error("pid_file %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
	m->pid_file = strdup(path);
	return 0;
}

/* The master's event loop, timers and signal events: 0, or -1 (logged). */
static int events_start(struct master *m)
{
	m->base = event_base_new();
	if (m->base == NULL) {
		log_error("cannot create the event loop");
		return -1;
	}
	m->respawn_timer = evtimer_new(m->base, respawn_cb, m);
	m->stop_timer = evtimer_new(m->base, stop_timeout_cb, m);
	m->sigs[0] = evsignal_new(m->base, SIGCHLD, sigchld_cb, m);
	m->sigs[1] = evsignal_new(m->base, SIGTERM, stop_cb, m);
	m->sigs[2] = evsignal_new(m->base, SIGINT, stop_cb, m);
	m->sigs[3] = evsignal_new(m->base, SIGHUP, hup_cb, m);
	m->sigs[4] = evsignal_new(m->base, SIGUSR1, usr1_cb, m);
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(m->sigs[0]); i++)
		evsignal_add(m->sigs[i], NULL);
	return 0;
}

/* Stopped: free the generations, the sockets and the rest. */
static void teardown(struct master *m)
{
	for (size_t i = 0; i < sizeof(m->sigs) / sizeof(m->sigs[0]); i++)
		if (m->sigs[i] != NULL)
			event_free(m->sigs[i]);
	event_free(m->respawn_timer);
	event_free(m->stop_timer);
	if (m->pid_file != NULL)
		unlink(m->pid_file);
	free(m->pid_file);
	while (m->old != NULL) {
		struct gen *g = m->old;
		m->old = g->next;
		gen_free(m, g);
	}
	gen_free(m, m->cur);
	event_base_free(m->base);
	for (size_t i = 0; i < m->nsocks; i++) {
		if (m->socks[i]->fd >= 0)
			close(m->socks[i]->fd);
		free(m->socks[i]);
	}
	free(m->socks);
	metrics_destroy(m->metrics);
	clients_destroy(m->clients);
}

int master_run(struct config *cfg, const char *path, bool foreground)
{
	struct master mm;
	struct master *m = &mm;
	memset(m, 0, sizeof(*m));
	m->path = path;
	m->backoff = BACKOFF_MIN;
	log_set_process("master");
	signal(SIGPIPE, SIG_IGN);
	/* A signal that comes before the handlers are in place (a reload
	 * right after start) waits for them instead of killing the master. */
	sigset_t sigs;
	master_signals(&sigs);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr2_noop;
	sigaction(SIGUSR2, &sa, NULL);

	struct config_errors errs = { 0 };
	SSL_CTX *tls = NULL;
	/* the certificate is read before privileges go: the key may be root's */
	if (master_check(cfg, &tls, &errs, NULL) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msg[i]);
		config_errors_free(&errs);
		config_free(cfg);
		return 1;
	}
	config_errors_free(&errs);
	m->cur = gen_new(m, cfg, tls);
	if (m->cur == NULL)
		return 1;
	logs_chown(cfg);
	if (cfg->user != NULL && drop_privileges(cfg->user, true) != 0)
		goto fail;
	if (cfg->user != NULL)
		log_info("running as user %s", cfg->user);
	if (!foreground && daemonize() != 0) {
		log_error("cannot detach: %s", strerror(errno));
		goto fail;
	}
	/* Workers of every generation count into one shared region (made after
	 * detaching, so it records the master's own pid): room for two full
	 * generations at the largest worker count, as during a reload. */
	m->metrics = metrics_create(METRICS_SLOTS);
	if (m->metrics == NULL)
		log_warn("metrics unavailable: %s", strerror(errno));
	m->clients = m->metrics != NULL ? clients_create(METRICS_SLOTS) : NULL;
	if (m->metrics != NULL && m->clients == NULL)
		log_warn("per-client limits unavailable: %s", strerror(errno));
	metrics_set_clients(m->metrics, m->clients);
	if (cfg->pid_file != NULL && write_pid_file(m, cfg->pid_file) != 0)
		goto fail;

	if (events_start(m) != 0)
		goto fail;
	sigprocmask(SIG_UNBLOCK, &sigs, NULL);

	for (size_t i = 0; i < m->cur->nw; i++)
		spawn(m, m->cur, i);
	log_info("hopcache %s started with %zu workers", PACKAGE_VERSION, m->cur->nw);

	event_base_dispatch(m->base);

	log_info("stopped");
	teardown(m);
	return 0;
fail:
	gen_free(m, m->cur);
	free(m->socks);
	metrics_destroy(m->metrics);
	clients_destroy(m->clients);
	return 1;
}

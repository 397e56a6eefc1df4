/* master.c - the supervisor process.
 *
 * The master binds every listening socket, drops privileges, forks N workers
 * that inherit the sockets, and never serves traffic itself. A worker that
 * dies is logged (exit status or signal) and replaced; when workers die
 * young, respawns are throttled with a growing delay so a crash loop does not
 * spin (Postfix's master_spawn does the same). SIGTERM/SIGINT: close the
 * listening sockets, ask the workers to finish in-flight work, wait up to
 * shutdown_timeout, then exit 0. */
#include "autoconfig.h"
#include "master.h"


#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cache.h"
#include "config.h"
#include "log.h"
#include "tls.h"
#include "worker.h"

#define BACKOFF_MIN 0.1  /* seconds before respawning a worker that died young */
#define BACKOFF_MAX 10.0
#define YOUNG 2.0        /* a worker dying within this many seconds is "young" */

struct slot {
	pid_t pid;
	struct timespec started;
};

struct master {
	struct config *cfg;
	struct event_base *base;
	struct listen_sock *fds;
	size_t nfds;
	SSL_CTX *tls_server;   /* the HTTPS port's context, inherited by workers */
	struct slot *slots;
	size_t nslots;
	double backoff;
	bool stopping;
	bool cache_ok;         /* the store is prepared: workers open it */
	struct event *respawn_timer, *stop_timer;
	struct event *sigs[4];
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
	event_base_free(m->base);
}

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Bind one "host:port"; log "listening on ADDR:PORT" (or "listening for TLS
 * on ADDR:PORT") with the real port. */
static int bind_one(const struct config_listen *l, bool tls, struct listen_sock **fds, size_t *nfds)
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
	int bound = 0;
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
		const char *kind = tls ? "for TLS " : "";
		if (ss.ss_family == AF_INET6)
			log_info("listening %son [%s]:%s", kind, host, serv);
		else
			log_info("listening %son %s:%s", kind, host, serv);
		struct listen_sock *nf = realloc(*fds, (*nfds + 1) * sizeof(**fds));
		if (nf == NULL) {
			close(fd);
			break;
		}
		*fds = nf;
		(*fds)[*nfds].fd = fd;
		(*fds)[*nfds].tls = tls;
		(*nfds)++;
		bound++;
		/* one socket per configured address: a name resolving to
		 * several addresses binds the first that works */
		break;
	}
	freeaddrinfo(res);
	return bound > 0 ? 0 : -1;
}

/* Give the store to [proxy] user, so workers can open it after the drop. */
static int cache_chown(const char *dir, const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL)
		return -1;
	static const char *const files[] = { "", "/data.mdb", "/lock.mdb" };
	for (size_t i = 0; i < 3; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s", dir, files[i]);
		if (chown(path, pw->pw_uid, pw->pw_gid) != 0 && errno != ENOENT) {
			log_error("cache: chown %s to %s: %s", path, user, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Switch to [proxy] user, right after binding. */
static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_error("[proxy] user: no such user \"%s\"", user);
		return -1;
	}
	if (getuid() == pw->pw_uid)
		return 0;
	if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		log_error("cannot switch to user %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("privileges could be regained after switching to %s", user);
		return -1;
	}
	log_info("running as user %s", user);
	return 0;
}

static void spawn(struct master *m, size_t i)
{
	pid_t pid = fork();
	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		/* The child must not run the master's event handlers. */
		master_forget(m);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		/* SIGHUP stays blocked (held, not lost) until the worker
		 * listens for it. */
		sigset_t mask;
		sigemptyset(&mask);
		sigaddset(&mask, SIGHUP);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		worker_main(m->cfg, m->fds, m->nfds, m->cache_ok, m->tls_server);
	}
	m->slots[i].pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &m->slots[i].started);
	log_debug("worker %zu started as pid %d", i, (int)pid);
}

/* Fill every empty slot (the respawn timer). */
static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	if (m->stopping)
		return;
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].pid == 0)
			spawn(m, i);
}

static size_t live_workers(const struct master *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->nslots; i++)
		n += m->slots[i].pid != 0;
	return n;
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
		for (size_t i = 0; i < m->nslots; i++) {
			if (m->slots[i].pid != pid)
				continue;
			double age = since(&m->slots[i].started);
			m->slots[i].pid = 0;
			if (m->stopping) {
				log_debug("worker pid %d exited", (int)pid);
			} else if (WIFSIGNALED(status)) {
				log_error("worker pid %d killed by signal %d (%s) after %.1f s: replacing it",
					  (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)), age);
			} else {
				log_error("worker pid %d exited with status %d after %.1f s: replacing it",
					  (int)pid, WEXITSTATUS(status), age);
			}
			died = true;
			young |= age < YOUNG;
		}
	}
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
	struct timeval tv = { (time_t)delay, (suseconds_t)((delay - (double)(time_t)delay) * 1e6) };
	evtimer_add(m->respawn_timer, &tv);
}

static void stop_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct master *m = arg;
	for (size_t i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid != 0) {
			log_warn("worker pid %d did not stop in time: killing it", (int)m->slots[i].pid);
			kill(m->slots[i].pid, SIGKILL);
		}
	}
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct master *m = arg;
	if (m->stopping)
		return;
	m->stopping = true;
	log_info("signal %d: stopping (waiting up to %.0f s for requests in flight)", (int)sig,
		 m->cfg->shutdown_timeout);
	evtimer_del(m->respawn_timer);
	for (size_t i = 0; i < m->nfds; i++)
		close(m->fds[i].fd);
	m->nfds = 0;
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0)
			kill(m->slots[i].pid, SIGTERM);
	if (live_workers(m) == 0) {
		event_base_loopexit(m->base, NULL);
		return;
	}
	double s = m->cfg->shutdown_timeout + 1;
	struct timeval tv = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) };
	evtimer_add(m->stop_timer, &tv);
}

/* SIGHUP: the workers re-read the files the configuration names (htpasswd,
 * groups, domain lists) and the policy sections; other changes to the INI
 * file still need a restart. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct master *m = arg;
	log_info("SIGHUP: workers re-read the htpasswd and groups files and the policy "
		 "([acl], [rule.NAME], domain lists); other INI changes take effect at the next restart");
	for (size_t i = 0; i < m->nslots; i++)
		if (m->slots[i].pid != 0)
			kill(m->slots[i].pid, SIGHUP);
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

int master_run(struct config *cfg, bool foreground)
{
	struct master mm;
	struct master *m = &mm;
	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->backoff = BACKOFF_MIN;
	log_set_process("master");
	signal(SIGPIPE, SIG_IGN);

	for (size_t i = 0; i < cfg->nlisten; i++)
		if (bind_one(&cfg->listen[i], false, &m->fds, &m->nfds) != 0)
			return 1;
	if (cfg->ntls_listen > 0) {
		/* Loaded before privileges are dropped: the key may be root's. */
		char err[768];
		m->tls_server = tls_server_new(cfg, err, sizeof(err));
		if (m->tls_server == NULL) {
			log_error("%s", err);
			return 1;
		}
	}
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		if (bind_one(&cfg->tls_listen[i], true, &m->fds, &m->nfds) != 0)
			return 1;
	if (cfg->cache_enabled) {
		/* Created by the master before forking; a store that cannot be
		 * used is reported and the proxy runs without it. */
		char err[512];
		if (cache_prepare(cfg->cache_dir, (size_t)cfg->cache_size, err, sizeof(err)) == 0 &&
		    (cfg->user == NULL || cache_chown(cfg->cache_dir, cfg->user) == 0)) {
			m->cache_ok = true;
			log_info("cache in %s (map size %llu MiB)", cfg->cache_dir,
				 (unsigned long long)(cfg->cache_size >> 20));
		} else {
			log_error("cache disabled: %s", err);
		}
	}
	if (cfg->user != NULL && drop_privileges(cfg->user) != 0)
		return 1;
	if (!foreground && daemonize() != 0) {
		log_error("cannot detach: %s", strerror(errno));
		return 1;
	}
	if (cfg->pid_file != NULL) {
		FILE *f = fopen(cfg->pid_file, "w");
		if (f == NULL) {
			log_error("pid_file %s: %s", cfg->pid_file, strerror(errno));
			return 1;
		}
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}

	m->base = event_base_new();
	if (m->base == NULL) {
		log_error("cannot create the event loop");
		return 1;
	}
	m->nslots = (size_t)cfg->workers;
	m->slots = calloc(m->nslots, sizeof(*m->slots));
	m->respawn_timer = evtimer_new(m->base, respawn_cb, m);
	m->stop_timer = evtimer_new(m->base, stop_timeout_cb, m);
	m->sigs[0] = evsignal_new(m->base, SIGCHLD, sigchld_cb, m);
	m->sigs[1] = evsignal_new(m->base, SIGTERM, stop_cb, m);
	m->sigs[2] = evsignal_new(m->base, SIGINT, stop_cb, m);
	m->sigs[3] = evsignal_new(m->base, SIGHUP, hup_cb, m);
	size_t nsigs = sizeof(m->sigs) / sizeof(m->sigs[0]);
	for (size_t i = 0; i < nsigs; i++)
		evsignal_add(m->sigs[i], NULL);

	for (size_t i = 0; i < m->nslots; i++)
		spawn(m, i);
	log_info("hopcache %s started with %zu workers", PACKAGE_VERSION, m->nslots);

	event_base_dispatch(m->base);

	log_info("stopped");
	for (size_t i = 0; i < nsigs; i++)
		event_free(m->sigs[i]);
	event_free(m->respawn_timer);
	event_free(m->stop_timer);
	event_base_free(m->base);
	for (size_t i = 0; i < m->nfds; i++)
		close(m->fds[i].fd);
	free(m->fds);
	SSL_CTX_free(m->tls_server);
	free(m->slots);
	if (cfg->pid_file != NULL)
		unlink(cfg->pid_file);
	return 0;
}

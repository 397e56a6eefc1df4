/* fuzz_conn.c - libFuzzer target for the whole request path: the client's
 * bytes and the origin's bytes through one worker's connection code
 * (conn.c, conn_cache.c, tunnel.c, upstream.c, pool.c, the cache over LMDB),
 * in-process, with no listener of the proxy's own.
 *
 * Input format (text markers, so seeds stay readable):
 *
 *   CLIENT0 [|C| CLIENT1 ...] [|O| ORIGIN0 [|O| ORIGIN1 ...]]
 *
 * Each CLIENT section is one client connection (up to 4, all open at once;
 * client k comes from 127.0.0.1, 192.0.2.1, ::1, 10.1.2.3). Each ORIGIN
 * section is what the origin sends on the k-th upstream connection the
 * proxy opens (up to 16; a connection beyond them gets nothing). Within a
 * section "|.|" is a pause: the bytes after it are sent in the next round
 * (see below); "|D|" makes the worker drain as for a reload at the end of
 * the round (conn_drain() on every connection, as worker_stop() does), and
 * "|T|" then expires every pending connection timer (idle, header, SNI
 * peek, collapsed-forwarding wait, tunnel idle, drain grace). In every section "@@" becomes 127.0.0.1:PORT of the origin,
 * "@P" that PORT alone, and "@S" 127.0.0.1:SPORT of a second origin
 * listener whose port is an [acl] sni_ports port (CONNECT there peeks at
 * the ClientHello). The test hosts file maps origin.test to 127.0.0.1,
 * origin6.test to ::1, refused.test to 127.0.0.2 (nothing listens there),
 * multi.test to 127.0.0.2 then 127.0.0.1, and denied.test to 127.0.0.3 (a
 * dst rule denies it); other names never resolve (no name server).
 *
 * One input runs in rounds: round r sends chunk r of every section (an
 * origin connection sends its chunk 0 when it is accepted), then runs the
 * event loop until nothing moves; then the origin connections are shut
 * (write side), the loop runs until quiet, then the clients' write sides
 * likewise; what is still open is closed, the pool emptied, and the
 * deferred frees run. The cache (a temporary LMDB directory) lives as long
 * as the process, so later inputs meet what earlier ones stored.
 *
 * Set HOPCACHE_FUZZ_LOG=1 for the error log (debug level) on stderr and a
 * summary per input. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "auth.h"
#include "cache.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "tls.h"
#include "worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CLIENTS 4
#define MAX_ORIGINS 16
#define MAX_CHUNKS 8
#define MAX_ACCEPTS 24     /* upstream connections served per input */
#define MAX_ROUNDS MAX_CHUNKS
#define QUIET_ITERS 3      /* loop iterations without a change = quiet */
#define RUN_ITERS 400      /* most loop iterations per quiet wait */

/* One section of the input, markers resolved: bytes and chunk ends. */
struct section {
	char *buf;
	size_t len, cap;
	size_t ends[MAX_CHUNKS]; /* end offset of each chunk */
	size_t nchunks;          /* >= 1 once started */
};

/* Our end of a connection to the proxy: a client, or an accepted origin. */
struct peer {
	const char *name;          /* for HOPCACHE_FUZZ_LOG */
	int fd;                    /* -1 when unused or closed */
	const struct section *sec; /* what to send, or NULL */
	size_t released;           /* chunks released for sending */
	size_t written;
	bool shut_wanted, shut;    /* shutdown(SHUT_WR) once all released is written */
	bool wdead, eof;           /* write side failed; read side saw EOF or an error */
};

static struct {
	bool ready;
	bool verbose;
	char dir[4096];          /* temporary directory: cache, hosts file (removed once open) */
	struct config *cfg;
	struct worker w;
	int lfd[2];              /* origin listeners: plain, SNI-peeked port */
	unsigned port[2];
	int baseline_events;     /* events registered in the base between inputs */
	/* per input */
	struct section client[MAX_CLIENTS], origin[MAX_ORIGINS];
	size_t nclients, norigins;
	struct peer cpeer[MAX_CLIENTS], opeer[MAX_ACCEPTS];
	size_t naccepted;
	bool origin_closing;     /* origins shut once written (the end phases) */
	unsigned drain_rounds;   /* bit r: drain after round r (|D|) */
	unsigned timer_rounds;   /* bit r: expire the timers after round r (|T|) */
	unsigned iters;
} F;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_conn: %s: %s\n", what, strerror(errno));
	abort();
}

static void sec_add(struct section *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < s->len + n)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (nb == NULL)
			die("realloc");
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

/* Close the current chunk; the next bytes go to a new one (pause marker;
 * past MAX_CHUNKS the last chunk takes the rest). */
static void sec_pause(struct section *s)
{
	if (s->nchunks < MAX_CHUNKS) {
		s->ends[s->nchunks - 1] = s->len;
		s->nchunks++;
	}
}

/* Split the input into sections and chunks, substituting the placeholders. */
static void split_input(const uint8_t *data, size_t size)
{
	char hostport[32], port[8], sni_hostport[32];
	snprintf(hostport, sizeof(hostport), "127.0.0.1:%u", F.port[0]);
	snprintf(port, sizeof(port), "%u", F.port[0]);
	snprintf(sni_hostport, sizeof(sni_hostport), "127.0.0.1:%u", F.port[1]);
	F.nclients = 1;
	F.norigins = 0;
	struct section *cur = &F.client[0];
	cur->nchunks = 1;
	for (size_t i = 0; i < size;) {
		size_t left = size - i;
		const char *p = (const char *)data + i;
		if (left >= 3 && p[0] == '|' && p[2] == '|' && p[1] != '\0' && strchr("CO.DT", p[1])) {
			i += 3;
			if (p[1] == '.') {
				if (cur != NULL)
					sec_pause(cur);
				continue;
			}
			if (p[1] == 'D' || p[1] == 'T') {
				unsigned bit = cur != NULL ? 1u << (cur->nchunks - 1) : 0;
				if (p[1] == 'D')
					F.drain_rounds |= bit;
				else
					F.timer_rounds |= bit;
				continue;
			}
			cur = NULL; /* beyond the limits: dropped */
			if (p[1] == 'C' && F.nclients < MAX_CLIENTS)
				cur = &F.client[F.nclients++];
			else if (p[1] == 'O' && F.norigins < MAX_ORIGINS)
				cur = &F.origin[F.norigins++];
			if (cur != NULL)
				cur->nchunks = 1;
			continue;
		}
		if (left >= 2 && p[0] == '@' && (p[1] == '@' || p[1] == 'P' || p[1] == 'S')) {
			const char *rep = p[1] == '@' ? hostport : p[1] == 'P' ? port : sni_hostport;
			if (cur != NULL)
				sec_add(cur, rep, strlen(rep));
			i += 2;
			continue;
		}
		if (cur != NULL)
			sec_add(cur, p, 1);
		i++;
	}
	/* the last chunk of each section ends with it */
	struct section *all[MAX_CLIENTS + MAX_ORIGINS];
	size_t n = 0;
	for (size_t k = 0; k < F.nclients; k++)
		all[n++] = &F.client[k];
	for (size_t k = 0; k < F.norigins; k++)
		all[n++] = &F.origin[k];
	for (size_t k = 0; k < n; k++)
		all[k]->ends[all[k]->nchunks - 1] = all[k]->len;
}

static size_t peer_allowed(const struct peer *p)
{
	if (p->sec == NULL || p->released == 0)
		return 0;
	return p->sec->ends[p->released - 1];
}

/* Release the next chunk (or all of them); false when there was none. */
static bool peer_release(struct peer *p, bool all)
{
	if (p->fd < 0 || p->sec == NULL || p->released >= p->sec->nchunks)
		return false;
	p->released = all ? p->sec->nchunks : p->released + 1;
	return true;
}

/* Move bytes on our end of a connection: read and drop what the proxy sent,
 * write what is released, shut the write side when asked. True when
 * anything happened. */
static bool peer_pump(struct peer *p)
{
	bool moved = false;
	if (p->fd < 0)
		return false;
	while (!p->eof) {
		char buf[65536];
		ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			moved = true;
			if (F.verbose)
				fprintf(stderr, "fuzz_conn: %s got %zd bytes:\n%.*s\n", p->name, n,
					(int)n, buf);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (F.verbose)
			fprintf(stderr, "fuzz_conn: %s: %s\n", p->name, n == 0 ? "EOF" : strerror(errno));
		p->eof = true; /* EOF, or reset */
		moved = true;
	}
	size_t allowed = peer_allowed(p);
	while (!p->wdead && p->written < allowed) {
		ssize_t n = send(p->fd, p->sec->buf + p->written, allowed - p->written,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			p->written += (size_t)n;
			moved = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		p->wdead = true; /* the proxy closed its end */
		moved = true;
	}
	if (p->shut_wanted && !p->shut && (p->wdead || p->written >= allowed)) {
		shutdown(p->fd, SHUT_WR);
		p->shut = true;
		moved = true;
	}
	return moved;
}

/* Accept the proxy's upstream connections: each gets the next ORIGIN
 * section. */
static bool accept_origins(void)
{
	bool moved = false;
	for (int l = 0; l < 2; l++) {
		for (;;) {
			int fd = accept4(F.lfd[l], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			moved = true;
			if (F.naccepted >= MAX_ACCEPTS) {
				close(fd);
				continue;
			}
			struct peer *p = &F.opeer[F.naccepted];
			memset(p, 0, sizeof(*p));
			p->name = "origin";
			p->fd = fd;
			p->sec = F.naccepted < F.norigins ? &F.origin[F.naccepted] : NULL;
			F.naccepted++;
			peer_release(p, F.origin_closing);
			p->shut_wanted = F.origin_closing;
		}
	}
	return moved;
}

static bool pump_all(void)
{
	bool moved = accept_origins();
	for (size_t i = 0; i < F.nclients; i++)
		moved |= peer_pump(&F.cpeer[i]);
	for (size_t i = 0; i < F.naccepted; i++)
		moved |= peer_pump(&F.opeer[i]);
	return moved;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	return h * 1099511628211ull;
}

/* A digest of the worker's connections, to tell when nothing moves. */
static uint64_t fingerprint(void)
{
	uint64_t h = mix(14695981039346656037ull, F.w.nconns);
	for (const struct conn *c = F.w.conns; c != NULL; c = c->next) {
		h = mix(h, (uintptr_t)c);
		h = mix(h, (uint64_t)c->state);
		h = mix(h, c->tunnel != NULL);
		h = mix(h, c->rq != NULL);
		if (c->rq != NULL) {
			h = mix(h, c->rq->rbody.total);
			h = mix(h, c->rq->sbody.total);
			h = mix(h, c->rq->bytes_in);
			h = mix(h, c->rq->bytes_out);
		}
		h = mix(h, (uintptr_t)c->ubev);
		h = mix(h, (uintptr_t)c->ureq);
		if (c->cbev != NULL) {
			h = mix(h, evbuffer_get_length(bufferevent_get_input(c->cbev)));
			h = mix(h, evbuffer_get_length(bufferevent_get_output(c->cbev)));
		}
		if (c->ubev != NULL) {
			h = mix(h, evbuffer_get_length(bufferevent_get_input(c->ubev)));
			h = mix(h, evbuffer_get_length(bufferevent_get_output(c->ubev)));
		}
	}
	return h;
}

/* Run the event loop until nothing moved for a few iterations. */
static void run_until_quiet(void)
{
	uint64_t last = 0;
	int quiet = 0;
	for (int i = 0; i < RUN_ITERS && quiet < QUIET_ITERS; i++) {
		event_base_loop(F.w.base, EVLOOP_NONBLOCK);
		F.iters++;
		bool moved = pump_all();
		uint64_t fp = fingerprint();
		if (moved || fp != last ||
		    event_base_get_num_events(F.w.base, EVENT_BASE_COUNT_ACTIVE) > 0)
			quiet = 0;
		else
			quiet++;
		last = fp;
	}
}

/* What worker_stop() does for a reload: stop pooling, and let each
 * connection finish its request (an idle one gets a grace period). */
static void drain_worker(void)
{
	struct worker *w = &F.w;
	if (w->draining)
		return;
	w->draining = true;
	w->retiring = true;
	pool_clear(w->pool);
	for (struct conn *c = w->conns, *next; c != NULL; c = next) {
		next = c->next;
		conn_drain(c, true); /* may free c */
	}
}

/* Expire every connection timer that is pending, as if its time had come
 * (the callbacks run from the loop). */
static void expire_timers(void)
{
	for (struct conn *c = F.w.conns; c != NULL; c = c->next) {
		if (evtimer_pending(c->timer, NULL)) {
			evtimer_del(c->timer);
			event_active(c->timer, EV_TIMEOUT, 0);
		}
	}
}

/* rm -r dir (a file or a directory of files and directories). */
static void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			char p[8192];
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			if (unlink(p) != 0 && (errno == EISDIR || errno == EPERM))
				rm_tree(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* At exit: free the worker. */
static void teardown_all(void)
{
	struct worker *w = &F.w;
	if (!F.ready)
		return;
	F.ready = false;
	pool_free(w->pool);
	cache_close(w->cache);
	auth_cache_free(w->auth_cache);
	auth_limiter_free(w->auth_limiter);
	evdns_base_free(w->dns, 0);
	event_base_free(w->base);
	SSL_CTX_free(w->tls_client);
	tls_sessions_free(w->tls_sessions);
	metrics_destroy(w->metrics_all);
	config_free(F.cfg);
	close(F.lfd[0]);
	close(F.lfd[1]);
	for (size_t i = 0; i < MAX_CLIENTS; i++)
		free(F.client[i].buf);
	for (size_t i = 0; i < MAX_ORIGINS; i++)
		free(F.origin[i].buf);
}

static int listen_loopback(unsigned *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
		die("origin listener");
	*port = ntohs(sa.sin_port);
	return fd;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		die(path);
}

/* Once per process: the origin listeners, the configuration, and a worker
 * set up as worker_main() does it, without listeners or signal events. */
static void setup(void)
{
	F.verbose = getenv("HOPCACHE_FUZZ_LOG") != NULL && *getenv("HOPCACHE_FUZZ_LOG") != '\0';
	signal(SIGPIPE, SIG_IGN);
	const char *tmp = getenv("TMPDIR");
	snprintf(F.dir, sizeof(F.dir), "%s/fuzz_conn-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
	if (mkdtemp(F.dir) == NULL)
		die("mkdtemp");
	F.lfd[0] = listen_loopback(&F.port[0]);
	F.lfd[1] = listen_loopback(&F.port[1]);

	char hosts[8192];
	snprintf(hosts, sizeof(hosts), "%s/hosts", F.dir);
	write_file(hosts, "127.0.0.1 origin.test\n"
			  "::1 origin6.test\n"
			  "127.0.0.2 refused.test multi.test\n"
			  "127.0.0.1 multi.test\n"
			  "127.0.0.3 denied.test\n");

	char ini[8192];
	snprintf(ini, sizeof(ini),
		 "[proxy]\n"
		 "listen = 127.0.0.1:0\n"
		 "workers = 1\n"
		 "connect_ports = 1-65535\n"
		 "x_forwarded_for = yes\n"
		 "forwarded = yes\n"
		 "[limits]\n"
		 "max_request_line = 2048\n"
		 "max_header_bytes = 4K\n"
		 "max_headers = 32\n"
		 "max_body = 8K\n"
		 "[upstream]\n"
		 "pool_max_idle = 2\n"
		 "resolv_conf = /dev/null\n"
		 "[log]\n"
		 "access = /dev/null\n"
		 "access_format = json\n"
		 "error = %s\n"
		 "level = debug\n"
		 "[cache]\n"
		 "enabled = yes\n"
		 "dir = %s/cache\n"
		 "size = 16M\n"
		 "max_object_size = 3K\n"
		 "[acl]\n"
		 "private_destinations = allow\n"
		 "connect_sni = check\n"
		 "sni_ports = 443, %u\n"
		 "rules = blocked, regex, nodst\n"
		 "[rule.blocked]\n"
		 "domains = .blocked.test\n"
		 "action = deny\n"
		 "[rule.regex]\n"
		 "url_regex = /forbidden\n"
		 "methods = GET, POST\n"
		 "action = deny\n"
		 "[rule.nodst]\n"
		 "dst = 127.0.0.3/32\n"
		 "action = deny\n",
		 F.verbose ? "-" : "/dev/null", F.dir, F.port[1]);
	struct config_errors errs = { 0 };
	F.cfg = config_load_string(ini, "fuzz_conn.ini", &errs);
	if (F.cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "fuzz_conn: %s\n", errs.msg[i]);
		abort();
	}
	config_errors_free(&errs);
	const struct config *cfg = F.cfg;
	const char *bad = NULL;
	log_set_process("worker");
	log_set_access_format(cfg->access_format);
	if (log_open(cfg->error_log, cfg->access_log, cfg->log_level, &bad) != 0)
		die("log_open");

	struct worker *w = &F.w;
	w->cfg = cfg;
	w->acl = cfg->acl;
	w->htpasswd = cfg->htpasswd;
	w->groups = cfg->groups;
	w->metrics_all = metrics_create(1);
	w->metrics = metrics_slot_claim(w->metrics_all, getpid(), 1);
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL)
		die("event base");
	event_base_priority_init(w->base, 2);
	/* No name server: a name outside the hosts file stays unresolved
	 * until the request is cancelled. */
	w->dns = evdns_base_new(w->base, 0);
	if (w->dns == NULL || evdns_base_load_hosts(w->dns, hosts) != 0)
		die("resolver");
	w->pool = pool_new(w->base, (size_t)cfg->pool_max_idle, cfg->pool_idle_timeout);
	char err[512];
	w->tls_client = tls_client_new(cfg, err, sizeof(err));
	if (w->tls_client == NULL) {
		fprintf(stderr, "fuzz_conn: %s\n", err);
		abort();
	}
	w->tls_sessions = tls_sessions_new(256);
	tls_client_sessions(w->tls_client, w->tls_sessions);
	if (cache_prepare(cfg->cache_dir, (size_t)cfg->cache_size, err, sizeof(err)) != 0 ||
	    (w->cache = cache_open(cfg->cache_dir, (size_t)cfg->cache_size,
				   (size_t)cfg->cache_max_object, err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_conn: %s\n", err);
		abort();
	}
	w->auth_cache = auth_cache_new(4096);
	w->auth_limiter = auth_limiter_new((unsigned)cfg->auth_max_failures,
					   (int64_t)cfg->auth_failure_window);
	if (w->pool == NULL || w->tls_sessions == NULL || w->auth_cache == NULL ||
	    w->auth_limiter == NULL)
		die("worker");
	w->accepting = true; /* no listeners to pause or resume */
	/* LMDB keeps its files open and the hosts file has been read: the
	 * directory can go now, so that no run (a crash included) leaves it
	 * behind. */
	rm_tree(F.dir);
	F.baseline_events = event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED);
	F.ready = true;
	atexit(teardown_all);
}

/* Where client k comes from. */
static socklen_t client_addr(size_t k, struct sockaddr_storage *ss)
{
	static const char *const v4[] = { "127.0.0.1", "192.0.2.1", NULL, "10.1.2.3" };
	memset(ss, 0, sizeof(*ss));
	if (v4[k] == NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons(40000);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)(40000 + k));
	inet_pton(AF_INET, v4[k], &s4->sin_addr);
	return sizeof(*s4);
}

/* Close everything the input opened; check nothing of it is left. */
static void end_input(void)
{
	struct worker *w = &F.w;
	while (w->conns != NULL)
		conn_close(w->conns, "fuzz: end of input");
	pool_clear(w->pool);
	for (size_t i = 0; i < F.nclients; i++)
		if (F.cpeer[i].fd >= 0)
			close(F.cpeer[i].fd);
	for (size_t i = 0; i < F.naccepted; i++)
		if (F.opeer[i].fd >= 0)
			close(F.opeer[i].fd);
	/* connections the proxy made that were not accepted yet */
	for (int l = 0; l < 2; l++) {
		int fd;
		while ((fd = accept4(F.lfd[l], NULL, NULL, SOCK_CLOEXEC)) >= 0)
			close(fd);
	}
	/* deferred frees, cancelled lookups, background drains seeing EOF */
	for (int i = 0; i < 64; i++) {
		event_base_loop(w->base, EVLOOP_NONBLOCK);
		if (i >= 2 && event_base_get_num_events(w->base, EVENT_BASE_COUNT_ACTIVE) == 0 &&
		    event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED) <= F.baseline_events)
			break;
	}
	w->draining = false;
	w->retiring = false;
	if (w->nconns != 0 || w->conns != NULL || w->inflight != NULL) {
		fprintf(stderr, "fuzz_conn: state left after the input: %zu connections, inflight %p\n",
			w->nconns, (void *)w->inflight);
		abort();
	}
	int left = event_base_get_num_events(w->base, EVENT_BASE_COUNT_ADDED);
	if (left > F.baseline_events) {
		fprintf(stderr, "fuzz_conn: %d events left registered after the input\n",
			left - F.baseline_events);
		event_base_dump_events(w->base, stderr);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!F.ready)
		setup();
	struct worker *w = &F.w;
	for (size_t i = 0; i < MAX_CLIENTS; i++) {
		F.client[i].len = 0;
		F.client[i].nchunks = 0;
	}
	for (size_t i = 0; i < MAX_ORIGINS; i++) {
		F.origin[i].len = 0;
		F.origin[i].nchunks = 0;
	}
	F.drain_rounds = 0;
	F.timer_rounds = 0;
	split_input(data, size);
	F.naccepted = 0;
	F.origin_closing = false;
	F.iters = 0;

	for (size_t k = 0; k < F.nclients; k++) {
		struct peer *p = &F.cpeer[k];
		memset(p, 0, sizeof(*p));
		p->fd = -1;
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
			die("socketpair");
		struct sockaddr_storage ss;
		socklen_t sl = client_addr(k, &ss);
		if (conn_new(w, sv[0], (struct sockaddr *)&ss, (int)sl, NULL) == NULL) {
			close(sv[1]);
			continue;
		}
		p->name = "client";
		p->fd = sv[1];
		p->sec = &F.client[k];
	}

	/* rounds: one chunk of every section each */
	for (int r = 0; r < MAX_ROUNDS; r++) {
		bool any = false;
		for (size_t k = 0; k < F.nclients; k++)
			any |= peer_release(&F.cpeer[k], false);
		/* an origin connection released chunk 0 when accepted */
		if (r > 0)
			for (size_t k = 0; k < F.naccepted; k++)
				any |= peer_release(&F.opeer[k], false);
		if (!any && r > 0)
			break;
		run_until_quiet();
		if (F.drain_rounds & (1u << r)) {
			drain_worker();
			run_until_quiet();
		}
		if (F.timer_rounds & (1u << r)) {
			expire_timers();
			run_until_quiet();
		}
	}
	/* the origins close, then the clients */
	F.origin_closing = true;
	for (size_t k = 0; k < F.naccepted; k++) {
		peer_release(&F.opeer[k], true);
		F.opeer[k].shut_wanted = true;
	}
	run_until_quiet();
	for (size_t k = 0; k < F.nclients; k++) {
		peer_release(&F.cpeer[k], true);
		F.cpeer[k].shut_wanted = true;
	}
	run_until_quiet();
	if (F.verbose)
		fprintf(stderr, "fuzz_conn: %zu clients, %zu origin sections, %zu upstream connections, "
			"%u loop iterations, %zu connections left open\n",
			F.nclients, F.norigins, F.naccepted, F.iters, w->nconns);
	end_input();
	return 0;
}

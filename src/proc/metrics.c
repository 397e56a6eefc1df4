/* metrics.c - counters in a shared anonymous mapping, one slot per worker.
 *
 * The region has a fixed layout and holds no pointers: it is mapped by the
 * master before the first fork and inherited by every generation of workers.
 * Workers add to their own slot with relaxed atomics. The master, the only
 * writer of everything else, folds a reaped worker's counters into the
 * retired totals inside a sequence lock, so a reader (any process) that sums
 * retired + in-use slots never counts a worker twice or not at all. */
#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "clients.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define READ_TRIES 100 /* copies of the totals a reader makes at most */
#define SEQ_WAITS 1000 /* yields waiting for the master, per copy */

static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT", "PURGE",
	"OTHER", /* must stay last */
};
#define NMETHODS 11
#define METHOD_OTHER (NMETHODS - 1)

/* Status codes: index 0 is "no response sent", 1..500 are 100..599. */
#define NCODES 501

static const char *const outcomes[] = { "hit", "miss", "refresh", "stale" };
#define NOUTCOMES 4
#define OUTCOME_MISS 1

static const char *const error_types[] = {
	"dns_error",           "dns_timeout",         "connection_refused",
	"connection_timeout",  "destination_unavailable", "http_response_timeout",
	"http_protocol_error", "tls_certificate_error", "tls_protocol_error",
	"proxy_internal_error", "other", /* must stay last */
};
#define NERRORS 11
#define ERROR_OTHER (NERRORS - 1)

/* Proxy authentication (metrics.h: enum metrics_auth_scheme, _result). */
static const char *const auth_schemes[] = { "basic", "negotiate" };
static const char *const auth_results[] = { "ok", "failed", "missing", "malformed", "blocked" };
#define NAUTH_SCHEMES 2
#define NAUTH_RESULTS 5

/* The directory (metrics.h: enum metrics_dir_result, metrics_bind_result). */
static const char *const dir_results[] = { "ok", "not_found", "error" };
static const char *const bind_results[] = { "ok", "failed", "error" };
#define NDIR_RESULTS 3
#define NBIND_RESULTS 3

/* Refusals by the per-client limits (metrics.h: enum metrics_limit). */
static const char *const limit_reasons[] = { "client_connections", "client_rate", "user_rate",
					     "worker_full", "slow_body" };
#define NLIMITS 5

/* All counters of a slot (and the retired totals) are one array. */
enum {
	C_BYTES_IN,
	C_BYTES_OUT,
	C_CACHE, /* + outcome */
	C_CACHE_BYTES = C_CACHE + NOUTCOMES,
	C_CONNECTIONS,
	C_TUNNELS,
	C_H2_SESSIONS,
	C_H2_STREAMS,
	C_TLS_OK,
	C_TLS_FAILED,
	C_UPSTREAM, /* + error type */
	C_AUTH_FAILURES = C_UPSTREAM + NERRORS,
	C_DENIED,
	C_CACHE_KEY_MISMATCH,
	C_AUTH, /* + scheme * NAUTH_RESULTS + result */
	C_PROXY_HEADER_OK = C_AUTH + NAUTH_SCHEMES * NAUTH_RESULTS,
	C_PROXY_HEADER_REFUSED,
	C_DIR_LOOKUPS, /* + result */
	C_DIR_CACHE_HIT = C_DIR_LOOKUPS + NDIR_RESULTS,
	C_DIR_CACHE_MISS,
	C_DIR_BINDS, /* + result */
	C_LIMITS = C_DIR_BINDS + NBIND_RESULTS, /* + reason */
	C_LIMIT_UNTRACKED = C_LIMITS + NLIMITS,
	C_IDLE_EVICTED,
	C_REQUESTS, /* + method * NCODES + code index */
	C_COUNT = C_REQUESTS + NMETHODS * NCODES
};

struct metrics_slot {
	uint32_t in_use;
	pid_t pid;
	uint32_t generation;
	int64_t conns_active;
	int64_t tunnels_active;
	int64_t h2_streams_active;
	uint32_t dir_state;   /* 0 unknown, 1 up, 2 down */
	int64_t dir_time;     /* when it was last set (CLOCK_REALTIME seconds) */
	uint64_t c[C_COUNT];
};

struct metrics {
	size_t size;      /* of the mapping */
	const struct clients *clients; /* the client table, for the status page */
	unsigned nslots;
	pid_t master_pid;
	int64_t start_time; /* unix seconds */
	int64_t start_mono; /* CLOCK_MONOTONIC seconds */
	uint64_t seq;       /* odd while the master changes slots or retired */
	uint64_t worker_restarts;
	uint64_t reloads_ok;
	uint64_t reloads_failed;
	uint64_t retired[C_COUNT];
	struct metrics_slot slots[];
};

/* A reader's private copy of the totals. */
struct worker_view {
	pid_t pid;
	unsigned generation;
	int64_t conns_active, tunnels_active;
	uint64_t requests;
};

struct snapshot {
	uint64_t c[C_COUNT];
	uint32_t dir_state;  /* of the worker that heard from the directory last */
	int64_t dir_time;
	int64_t conns_active, tunnels_active, h2_streams_active;
	uint64_t worker_restarts, reloads_ok, reloads_failed;
	unsigned nworkers;
	struct worker_view workers[];
};

static_assert(N(methods) == NMETHODS, "methods");
static_assert(N(outcomes) == NOUTCOMES, "outcomes");
static_assert(N(auth_schemes) == NAUTH_SCHEMES && N(auth_results) == NAUTH_RESULTS, "auth");
static_assert(N(error_types) == NERRORS, "error types");
static_assert(N(dir_results) == NDIR_RESULTS && N(bind_results) == NBIND_RESULTS, "directory");

static inline void add(uint64_t *p, uint64_t n)
{
	__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static inline uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static int64_t clock_seconds(clockid_t id)
{
	struct timespec ts;
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec;
}

struct metrics *metrics_create(unsigned nslots)
{
	if (nslots == 0 || nslots > METRICS_MAX_SLOTS) {
		errno = EINVAL;
		return NULL;
	}
	size_t size = sizeof(struct metrics) + (size_t)nslots * sizeof(struct metrics_slot);
	long page = sysconf(_SC_PAGESIZE);
	if (page > 0)
		size = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct metrics *m = p; /* zero-filled */
	m->size = size;
	m->nslots = nslots;
	m->master_pid = getpid();
	m->start_time = clock_seconds(CLOCK_REALTIME);
	m->start_mono = clock_seconds(CLOCK_MONOTONIC);
	return m;
}

void metrics_destroy(struct metrics *m)
{
	if (m != NULL)
		munmap(m, m->size);
}

/* Master side of the sequence lock (the master is the only writer). */
static void write_begin(struct metrics *m)
{
	uint64_t s = __atomic_load_n(&m->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&m->seq, s + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void write_end(struct metrics *m)
{
	uint64_t s = __atomic_load_n(&m->seq, __ATOMIC_RELAXED);
	__atomic_store_n(&m->seq, s + 1, __ATOMIC_RELEASE);
}

struct metrics_slot *metrics_slot_claim(struct metrics *m, pid_t pid, unsigned generation)
{
	if (m == NULL)
		return NULL;
	for (unsigned i = 0; i < m->nslots; i++) {
		struct metrics_slot *s = &m->slots[i];
		if (__atomic_load_n(&s->in_use, __ATOMIC_RELAXED))
			continue;
		/* a free slot's counters and gauges are zero (see slot_free) */
		write_begin(m);
		__atomic_store_n(&s->pid, pid, __ATOMIC_RELAXED);
		__atomic_store_n(&s->generation, generation, __ATOMIC_RELAXED);
		__atomic_store_n(&s->in_use, 1, __ATOMIC_RELAXED);
		write_end(m);
		return s;
	}
	return NULL;
}

void metrics_slot_set_pid(struct metrics_slot *s, pid_t pid)
{
	if (s != NULL)
		__atomic_store_n(&s->pid, pid, __ATOMIC_RELAXED);
}

void metrics_slot_free(struct metrics *m, struct metrics_slot *s)
{
	if (m == NULL || s == NULL || s < m->slots || s >= m->slots + m->nslots)
		return;
	if (!__atomic_load_n(&s->in_use, __ATOMIC_RELAXED))
		return;
	write_begin(m);
	for (size_t i = 0; i < C_COUNT; i++) {
		uint64_t v = load(&s->c[i]);
		if (v == 0)
			continue; /* do not touch pages that were never used */
		add(&m->retired[i], v);
		__atomic_store_n(&s->c[i], 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&s->conns_active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->tunnels_active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h2_streams_active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dir_state, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->dir_time, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->generation, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->in_use, 0, __ATOMIC_RELAXED);
	write_end(m);
}

int metrics_slot_release(struct metrics *m, pid_t pid)
{
	if (m == NULL)
		return -1;
	for (unsigned i = 0; i < m->nslots; i++) {
		struct metrics_slot *s = &m->slots[i];
		if (__atomic_load_n(&s->in_use, __ATOMIC_RELAXED) &&
		    __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == pid) {
			metrics_slot_free(m, s);
			return (int)i;
		}
	}
	return -1;
}

void metrics_worker_restart(struct metrics *m)
{
	if (m != NULL)
		add(&m->worker_restarts, 1);
}

void metrics_reload(struct metrics *m, bool ok)
{
	if (m != NULL)
		add(ok ? &m->reloads_ok : &m->reloads_failed, 1);
}

/* --- worker side ---------------------------------------------------------- */

static unsigned method_index(const char *method)
{
	if (method != NULL)
		for (unsigned i = 0; i < METHOD_OTHER; i++)
			if (strcmp(method, methods[i]) == 0)
				return i;
	return METHOD_OTHER;
}

static unsigned code_index(int status)
{
	return status >= 100 && status <= 599 ? (unsigned)(status - 99) : 0;
}

static int index_code(unsigned i)
{
	return i == 0 ? 0 : (int)i + 99;
}

void metrics_request(struct metrics_slot *s, const char *method, int status, uint64_t bytes_in,
		     uint64_t bytes_out)
{
	if (s == NULL)
		return;
	add(&s->c[C_REQUESTS + method_index(method) * NCODES + code_index(status)], 1);
	if (bytes_in != 0)
		add(&s->c[C_BYTES_IN], bytes_in);
	if (bytes_out != 0)
		add(&s->c[C_BYTES_OUT], bytes_out);
}

void metrics_cache(struct metrics_slot *s, const char *outcome, uint64_t bytes)
{
	if (s == NULL || outcome == NULL)
		return;
	for (unsigned i = 0; i < NOUTCOMES; i++) {
		if (strcasecmp(outcome, outcomes[i]) != 0)
			continue;
		add(&s->c[C_CACHE + i], 1);
		if (i != OUTCOME_MISS && bytes != 0)
			add(&s->c[C_CACHE_BYTES], bytes);
		return;
	}
}

static void gauge(int64_t *active, uint64_t *total, int delta)
{
	__atomic_fetch_add(active, (int64_t)delta, __ATOMIC_RELAXED);
	if (delta > 0)
		add(total, (uint64_t)delta);
}

void metrics_conn(struct metrics_slot *s, int delta)
{
	if (s != NULL)
		gauge(&s->conns_active, &s->c[C_CONNECTIONS], delta);
}

void metrics_tunnel(struct metrics_slot *s, int delta)
{
	if (s != NULL)
		gauge(&s->tunnels_active, &s->c[C_TUNNELS], delta);
}

void metrics_h2_session(struct metrics_slot *s)
{
	if (s != NULL)
		add(&s->c[C_H2_SESSIONS], 1);
}

void metrics_h2_stream(struct metrics_slot *s, int delta)
{
	if (s != NULL)
		gauge(&s->h2_streams_active, &s->c[C_H2_STREAMS], delta);
}

void metrics_tls_handshake(struct metrics_slot *s, bool ok)
{
	if (s != NULL)
		add(&s->c[ok ? C_TLS_OK : C_TLS_FAILED], 1);
}

void metrics_upstream_error(struct metrics_slot *s, const char *type)
{
	if (s == NULL)
		return;
	unsigned i = 0;
	while (i < ERROR_OTHER && (type == NULL || strcmp(type, error_types[i]) != 0))
		i++;
	add(&s->c[C_UPSTREAM + i], 1);
}

void metrics_auth(struct metrics_slot *s, enum metrics_auth_scheme scheme,
		  enum metrics_auth_result result)
{
	if (s == NULL || (unsigned)scheme >= NAUTH_SCHEMES || (unsigned)result >= NAUTH_RESULTS)
		return;
	add(&s->c[C_AUTH + (unsigned)scheme * NAUTH_RESULTS + (unsigned)result], 1);
	if (result == METRICS_AUTH_FAILED)
		add(&s->c[C_AUTH_FAILURES], 1);
}

void metrics_proxy_header(struct metrics_slot *s, bool ok)
{
	if (s != NULL)
		add(&s->c[ok ? C_PROXY_HEADER_OK : C_PROXY_HEADER_REFUSED], 1);
}

void metrics_limit(struct metrics_slot *s, enum metrics_limit reason)
{
	if (s != NULL && (unsigned)reason < NLIMITS)
		add(&s->c[C_LIMITS + (unsigned)reason], 1);
}

void metrics_limit_untracked(struct metrics_slot *s)
{
	if (s != NULL)
		add(&s->c[C_LIMIT_UNTRACKED], 1);
}

void metrics_idle_evicted(struct metrics_slot *s)
{
	if (s != NULL)
		add(&s->c[C_IDLE_EVICTED], 1);
}

bool metrics_room_elsewhere(const struct metrics *m, const struct metrics_slot *self,
			    int64_t max)
{
	if (m == NULL || self == NULL)
		return false;
	uint32_t gen = __atomic_load_n(&self->generation, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < m->nslots; i++) {
		const struct metrics_slot *s = &m->slots[i];
		if (s == self || !__atomic_load_n(&s->in_use, __ATOMIC_RELAXED) ||
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED) != gen ||
		    __atomic_load_n(&s->pid, __ATOMIC_RELAXED) == 0)
			continue;
		if (__atomic_load_n(&s->conns_active, __ATOMIC_RELAXED) < max)
			return true;
	}
	return false;
}

int metrics_slot_index(const struct metrics *m, const struct metrics_slot *s)
{
	if (m == NULL || s == NULL || s < m->slots || s >= m->slots + m->nslots)
		return -1;
	return (int)(s - m->slots);
}

void metrics_set_clients(struct metrics *m, const struct clients *cl)
{
	if (m != NULL)
		m->clients = cl;
}

void metrics_denied(struct metrics_slot *s)
{
	if (s != NULL)
		add(&s->c[C_DENIED], 1);
}

void metrics_directory_lookup(struct metrics_slot *s, enum metrics_dir_result result)
{
	if (s != NULL && (unsigned)result < NDIR_RESULTS)
		add(&s->c[C_DIR_LOOKUPS + (unsigned)result], 1);
}

void metrics_directory_cache(struct metrics_slot *s, bool hit)
{
	if (s != NULL)
		add(&s->c[hit ? C_DIR_CACHE_HIT : C_DIR_CACHE_MISS], 1);
}

void metrics_directory_bind(struct metrics_slot *s, enum metrics_bind_result result)
{
	if (s != NULL && (unsigned)result < NBIND_RESULTS)
		add(&s->c[C_DIR_BINDS + (unsigned)result], 1);
}

void metrics_directory_state(struct metrics_slot *s, bool up)
{
	if (s == NULL)
		return;
	__atomic_store_n(&s->dir_time, clock_seconds(CLOCK_REALTIME), __ATOMIC_RELAXED);
	__atomic_store_n(&s->dir_state, up ? 1u : 2u, __ATOMIC_RELAXED);
}

void metrics_cache_key_mismatch(struct metrics_slot *s)
{
	if (s != NULL)
		add(&s->c[C_CACHE_KEY_MISMATCH], 1);
}

/* --- reading -------------------------------------------------------------- */

/* Sum retired + in-use slots into snap, once, without checking the lock. */
static void collect(const struct metrics *m, struct snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	for (size_t i = 0; i < C_COUNT; i++)
		snap->c[i] = load(&m->retired[i]);
	for (unsigned n = 0; n < m->nslots; n++) {
		const struct metrics_slot *s = &m->slots[n];
		if (!__atomic_load_n(&s->in_use, __ATOMIC_RELAXED))
			continue;
		struct worker_view *w = &snap->workers[snap->nworkers++];
		memset(w, 0, sizeof(*w));
		w->pid = __atomic_load_n(&s->pid, __ATOMIC_RELAXED);
		w->generation = __atomic_load_n(&s->generation, __ATOMIC_RELAXED);
		w->conns_active = __atomic_load_n(&s->conns_active, __ATOMIC_RELAXED);
		w->tunnels_active = __atomic_load_n(&s->tunnels_active, __ATOMIC_RELAXED);
		snap->conns_active += w->conns_active;
		snap->tunnels_active += w->tunnels_active;
		snap->h2_streams_active += __atomic_load_n(&s->h2_streams_active, __ATOMIC_RELAXED);
		/* the directory's state: the latest word of any worker; "down"
		 * wins a tie */
		uint32_t ds = __atomic_load_n(&s->dir_state, __ATOMIC_RELAXED);
		int64_t dt = __atomic_load_n(&s->dir_time, __ATOMIC_RELAXED);
		if (ds != 0 && (snap->dir_state == 0 || dt > snap->dir_time ||
				(dt == snap->dir_time && ds == 2))) {
			snap->dir_state = ds;
			snap->dir_time = dt;
		}
		for (size_t i = 0; i < C_REQUESTS; i++)
			snap->c[i] += load(&s->c[i]);
		for (size_t i = C_REQUESTS; i < C_COUNT; i++) {
			uint64_t v = load(&s->c[i]);
			snap->c[i] += v;
			w->requests += v;
		}
	}
	snap->worker_restarts = load(&m->worker_restarts);
	snap->reloads_ok = load(&m->reloads_ok);
	snap->reloads_failed = load(&m->reloads_failed);
}

/* The sequence number once it is even (no change in progress), waiting a
 * bounded number of yields for the master; odd if it never got there. */
static uint64_t seq_even(const struct metrics *m)
{
	uint64_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
	for (int i = 0; i < SEQ_WAITS && (seq & 1); i++) {
		sched_yield();
		seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
	}
	return seq;
}

/* A consistent copy of the totals (reader side of the sequence lock); after
 * READ_TRIES copies spoilt by the master, the last one is used as it is. */
static struct snapshot *snapshot_take(const struct metrics *m)
{
	struct snapshot *snap =
		malloc(sizeof(*snap) + (size_t)m->nslots * sizeof(snap->workers[0]));
	if (snap == NULL)
		return NULL;
	for (int tries = 0; tries < READ_TRIES; tries++) {
		uint64_t seq = seq_even(m);
		collect(m, snap);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(seq & 1) && __atomic_load_n(&m->seq, __ATOMIC_RELAXED) == seq)
			break;
	}
	return snap;
}

static int64_t uptime(const struct metrics *m)
{
	int64_t up = clock_seconds(CLOCK_MONOTONIC) - m->start_mono;
	return up < 0 ? 0 : up;
}

/* Render into a private buffer, then move it to out: all or nothing. */
static int render(const struct metrics *m, struct evbuffer *out, const char *version,
		  int (*fn)(const struct metrics *, const struct snapshot *, struct evbuffer *,
			    const char *))
{
	if (m == NULL || out == NULL)
		return -1;
	struct snapshot *snap = snapshot_take(m);
	struct evbuffer *buf = evbuffer_new();
	int rc = -1;
	if (snap != NULL && buf != NULL && fn(m, snap, buf, version) == 0)
		rc = evbuffer_add_buffer(out, buf);
	if (buf != NULL)
		evbuffer_free(buf);
	free(snap);
	return rc == 0 ? 0 : -1;
}

/* --- Prometheus text format 0.0.4 ----------------------------------------- */

static int family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	return evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0
		       ? -1
		       : 0;
}

/* A family with one unlabelled sample. */
static int single(struct evbuffer *b, const char *name, const char *type, const char *help,
		  int64_t v)
{
	if (family(b, name, type, help) < 0)
		return -1;
	return evbuffer_add_printf(b, "%s %" PRId64 "\n", name, v) < 0 ? -1 : 0;
}

static int labelled(struct evbuffer *b, const char *name, const char *label, const char *value,
		    uint64_t v)
{
	return evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, v) < 0
		       ? -1
		       : 0;
}

static int prom_requests(const struct snapshot *snap, struct evbuffer *b)
{
	static const char name[] = "hopcache_requests_total";
	if (family(b, name, "counter",
		   "Requests by method and response status (code 0: no response sent).") < 0)
		return -1;
	for (unsigned mi = 0; mi < NMETHODS; mi++) {
		for (unsigned ci = 0; ci < NCODES; ci++) {
			uint64_t v = snap->c[C_REQUESTS + mi * NCODES + ci];
			if (v != 0 && evbuffer_add_printf(b, "%s{method=\"%s\",code=\"%d\"} %" PRIu64 "\n",
							  name, methods[mi], index_code(ci), v) < 0)
				return -1;
		}
	}
	return 0;
}

static int prom_traffic(const struct snapshot *snap, struct evbuffer *b)
{
	static const char bytes[] = "hopcache_request_bytes_total";
	static const char cache[] = "hopcache_cache_requests_total";
	int rc = 0;
	rc |= family(b, bytes, "counter", "Bytes received from (in) and sent to (out) clients.");
	rc |= labelled(b, bytes, "direction", "in", snap->c[C_BYTES_IN]);
	rc |= labelled(b, bytes, "direction", "out", snap->c[C_BYTES_OUT]);
	rc |= family(b, cache, "counter", "Cache lookups by outcome.");
	for (unsigned i = 0; i < NOUTCOMES; i++)
		rc |= labelled(b, cache, "outcome", outcomes[i], snap->c[C_CACHE + i]);
	rc |= single(b, "hopcache_cache_bytes_served_total", "counter",
		     "Body bytes served from the cache (hit, refresh, stale).",
		     (int64_t)snap->c[C_CACHE_BYTES]);
	rc |= single(b, "hopcache_cache_key_mismatches_total", "counter",
		     "Stored records found under a request's key but stored for another "
		     "request (treated as misses).",
		     (int64_t)snap->c[C_CACHE_KEY_MISMATCH]);
	return rc;
}

static int prom_conns(const struct snapshot *snap, struct evbuffer *b)
{
	static const char tls[] = "hopcache_tls_handshakes_total";
	int rc = 0;
	rc |= single(b, "hopcache_connections_total", "counter", "Client connections accepted.",
		     (int64_t)snap->c[C_CONNECTIONS]);
	rc |= single(b, "hopcache_connections_active", "gauge", "Client connections open.",
		     snap->conns_active);
	rc |= single(b, "hopcache_tunnels_total", "counter", "CONNECT tunnels established.",
		     (int64_t)snap->c[C_TUNNELS]);
	rc |= single(b, "hopcache_tunnels_active", "gauge", "CONNECT tunnels open.",
		     snap->tunnels_active);
	rc |= single(b, "hopcache_h2_connections_total", "counter",
		     "Client connections that chose HTTP/2 (ALPN h2) on the HTTPS proxy port.",
		     (int64_t)snap->c[C_H2_SESSIONS]);
	rc |= single(b, "hopcache_h2_streams_total", "counter", "HTTP/2 request streams opened.",
		     (int64_t)snap->c[C_H2_STREAMS]);
	rc |= single(b, "hopcache_h2_streams_active", "gauge", "HTTP/2 request streams open.",
		     snap->h2_streams_active);
	rc |= family(b, tls, "counter", "TLS handshakes with clients on the HTTPS proxy port.");
	rc |= labelled(b, tls, "result", "ok", snap->c[C_TLS_OK]);
	rc |= labelled(b, tls, "result", "failed", snap->c[C_TLS_FAILED]);
	return rc;
}

static int prom_auth(const struct snapshot *snap, struct evbuffer *b)
{
	static const char auth[] = "hopcache_auth_total";
	static const char pp[] = "hopcache_proxy_protocol_headers_total";
	int rc = family(b, auth, "counter",
			"Proxy authentications by scheme and result (missing: no credentials "
			"of the scheme; malformed: 400; blocked: 429).");
	for (unsigned si = 0; si < NAUTH_SCHEMES; si++)
		for (unsigned ri = 0; ri < NAUTH_RESULTS; ri++)
			rc |= evbuffer_add_printf(b, "%s{scheme=\"%s\",result=\"%s\"} %" PRIu64 "\n",
						  auth, auth_schemes[si], auth_results[ri],
						  snap->c[C_AUTH + si * NAUTH_RESULTS + ri]) < 0
				      ? -1
				      : 0;
	rc |= family(b, pp, "counter",
		     "PROXY protocol headers from [proxy] proxy_protocol balancers (refused: the "
		     "connection was closed).");
	rc |= labelled(b, pp, "result", "ok", snap->c[C_PROXY_HEADER_OK]);
	rc |= labelled(b, pp, "result", "refused", snap->c[C_PROXY_HEADER_REFUSED]);
	return rc;
}

static int prom_limits(const struct snapshot *snap, struct evbuffer *b)
{
	static const char lim[] = "hopcache_limit_refusals_total";
	int rc = family(b, lim, "counter",
			"Connections and requests refused by the [limits] per-client limits, by "
			"reason (worker_full: a 503 at max_connections; slow_body: a request body "
			"below min_body_rate).");
	for (unsigned i = 0; i < NLIMITS; i++)
		rc |= labelled(b, lim, "reason", limit_reasons[i], snap->c[C_LIMITS + i]);
	rc |= single(b, "hopcache_limit_untracked_total", "counter",
		     "Connections and requests let through uncounted: the client table had no "
		     "room for their client or user.",
		     (int64_t)snap->c[C_LIMIT_UNTRACKED]);
	rc |= single(b, "hopcache_idle_evictions_total", "counter",
		     "Idle keep-alive connections closed to make room for a new client at "
		     "max_connections.",
		     (int64_t)snap->c[C_IDLE_EVICTED]);
	return rc;
}

static int prom_errors(const struct snapshot *snap, struct evbuffer *b)
{
	static const char up[] = "hopcache_upstream_errors_total";
	int rc = 0;
	rc |= family(b, up, "counter", "Upstream errors by RFC 9209 error type.");
	for (unsigned i = 0; i < NERRORS; i++)
		rc |= labelled(b, up, "type", error_types[i], snap->c[C_UPSTREAM + i]);
	rc |= single(b, "hopcache_auth_failures_total", "counter",
		     "Requests whose proxy credentials were refused.",
		     (int64_t)snap->c[C_AUTH_FAILURES]);
	rc |= single(b, "hopcache_policy_denials_total", "counter",
		     "Requests denied by the access policy.", (int64_t)snap->c[C_DENIED]);
	rc |= prom_auth(snap, b);
	rc |= prom_limits(snap, b);
	return rc;
}

static int prom_directory(const struct snapshot *snap, struct evbuffer *b)
{
	static const char lookups[] = "hopcache_directory_lookups_total";
	static const char cache[] = "hopcache_directory_cache_total";
	static const char binds[] = "hopcache_directory_binds_total";
	int rc = family(b, lookups, "counter",
			"Directory searches for a user's groups by result (not_found: the "
			"directory does not know the user; error: it could not answer).");
	for (unsigned i = 0; i < NDIR_RESULTS; i++)
		rc |= labelled(b, lookups, "result", dir_results[i], snap->c[C_DIR_LOOKUPS + i]);
	rc |= family(b, cache, "counter", "The workers' caches of directory groups consulted.");
	rc |= labelled(b, cache, "result", "hit", snap->c[C_DIR_CACHE_HIT]);
	rc |= labelled(b, cache, "result", "miss", snap->c[C_DIR_CACHE_MISS]);
	rc |= family(b, binds, "counter",
		     "Basic passwords checked by binding to the directory (failed: unknown user "
		     "or wrong password; error: the directory could not answer).");
	for (unsigned i = 0; i < NBIND_RESULTS; i++)
		rc |= labelled(b, binds, "result", bind_results[i], snap->c[C_DIR_BINDS + i]);
	return rc;
}

static int prom_process(const struct metrics *m, const struct snapshot *snap, struct evbuffer *b)
{
	static const char reloads[] = "hopcache_reloads_total";
	int rc = 0;
	rc |= single(b, "hopcache_worker_restarts_total", "counter",
		     "Workers that died unexpectedly and were replaced.",
		     (int64_t)snap->worker_restarts);
	rc |= family(b, reloads, "counter", "Configuration reloads (failed: refused).");
	rc |= labelled(b, reloads, "result", "ok", snap->reloads_ok);
	rc |= labelled(b, reloads, "result", "failed", snap->reloads_failed);
	rc |= single(b, "hopcache_workers", "gauge", "Worker processes running.",
		     (int64_t)snap->nworkers);
	rc |= single(b, "hopcache_start_time_seconds", "gauge",
		     "Start time of the master process, in seconds since the epoch.",
		     m->start_time);
	rc |= single(b, "hopcache_uptime_seconds", "gauge", "Seconds since the master started.",
		     uptime(m));
	return rc;
}

static int prometheus(const struct metrics *m, const struct snapshot *snap, struct evbuffer *b,
		      const char *version)
{
	(void)version;
	if (prom_requests(snap, b) < 0 || prom_traffic(snap, b) < 0 || prom_conns(snap, b) < 0 ||
	    prom_errors(snap, b) < 0 || prom_directory(snap, b) < 0 || prom_process(m, snap, b) < 0)
		return -1;
	return 0;
}

int metrics_render_prometheus(const struct metrics *m, struct evbuffer *out)
{
	return render(m, out, NULL, prometheus);
}

/* --- JSON status ---------------------------------------------------------- */

static int json_string(struct evbuffer *b, const char *s)
{
	int rc = evbuffer_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			rc = evbuffer_add_printf(b, "\\%c", *p) < 0 ? -1 : 0;
		else if (*p < 0x20 || *p == 0x7f)
			rc = evbuffer_add_printf(b, "\\u%04x", *p) < 0 ? -1 : 0;
		else
			rc = evbuffer_add(b, p, 1);
	}
	return rc == 0 ? evbuffer_add(b, "\"", 1) : -1;
}

static int json_workers(const struct snapshot *snap, struct evbuffer *b)
{
	if (evbuffer_add_printf(b, "\"workers\":[") < 0)
		return -1;
	for (unsigned i = 0; i < snap->nworkers; i++) {
		const struct worker_view *w = &snap->workers[i];
		if (evbuffer_add_printf(b,
					"%s{\"pid\":%ld,\"generation\":%u,\"connections_active\":%" PRId64
					",\"tunnels_active\":%" PRId64 ",\"requests\":%" PRIu64 "}",
					i ? "," : "", (long)w->pid, w->generation, w->conns_active,
					w->tunnels_active, w->requests) < 0)
			return -1;
	}
	return evbuffer_add_printf(b, "],") < 0 ? -1 : 0;
}

static uint64_t sum(const uint64_t *c, size_t n)
{
	uint64_t t = 0;
	for (size_t i = 0; i < n; i++)
		t += c[i];
	return t;
}

static int json_totals(const struct snapshot *snap, struct evbuffer *b)
{
	const uint64_t *c = snap->c;
	int r = evbuffer_add_printf(
		b,
		"\"requests_total\":%" PRIu64 ",\"connections_active\":%" PRId64
		",\"tunnels_active\":%" PRId64 ",\"cache\":{\"hit\":%" PRIu64 ",\"miss\":%" PRIu64
		",\"refresh\":%" PRIu64 ",\"stale\":%" PRIu64 ",\"bytes_served\":%" PRIu64
		",\"key_mismatches\":%" PRIu64 "},"
		"\"upstream_errors\":%" PRIu64 ",\"auth_failures\":%" PRIu64
		",\"policy_denials\":%" PRIu64 ",\"worker_restarts\":%" PRIu64
		",\"reloads\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 "},"
		"\"h2\":{\"connections\":%" PRIu64 ",\"streams\":%" PRIu64 ",\"streams_active\":%" PRId64
		"},",
		sum(c + C_REQUESTS, NMETHODS * NCODES), snap->conns_active, snap->tunnels_active,
		c[C_CACHE + 0], c[C_CACHE + 1], c[C_CACHE + 2], c[C_CACHE + 3], c[C_CACHE_BYTES],
		c[C_CACHE_KEY_MISMATCH],
		sum(c + C_UPSTREAM, NERRORS), c[C_AUTH_FAILURES], c[C_DENIED], snap->worker_restarts,
		snap->reloads_ok, snap->reloads_failed, c[C_H2_SESSIONS], c[C_H2_STREAMS],
		snap->h2_streams_active);
	return r < 0 ? -1 : 0;
}

/* "limits": refusals by reason, and "top_clients": the clients with the
 * most open connections. */
static int json_limits(const struct metrics *m, const struct snapshot *snap, struct evbuffer *b)
{
	int r = evbuffer_add_printf(b, "\"limits\":{\"refusals\":{") < 0 ? -1 : 0;
	for (unsigned i = 0; i < NLIMITS; i++)
		r |= evbuffer_add_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "", limit_reasons[i],
					 snap->c[C_LIMITS + i]) < 0 ? -1 : 0;
	r |= evbuffer_add_printf(b, "},\"untracked\":%" PRIu64 ",\"idle_evictions\":%" PRIu64
				    "},\"top_clients\":[",
				 snap->c[C_LIMIT_UNTRACKED], snap->c[C_IDLE_EVICTED]) < 0 ? -1 : 0;
	struct clients_top top[METRICS_TOP_CLIENTS];
	size_t n = clients_top(m->clients, top, METRICS_TOP_CLIENTS);
	for (size_t i = 0; i < n; i++)
		r |= evbuffer_add_printf(b, "%s{\"address\":\"%s\",\"connections\":%u}",
					 i ? "," : "", top[i].ip, top[i].conns) < 0 ? -1 : 0;
	r |= evbuffer_add_printf(b, "],") < 0 ? -1 : 0;
	return r;
}

/* "directory": its state (unknown until a worker heard from it), since
 * when, and the counters. */
static int json_directory(const struct snapshot *snap, struct evbuffer *b)
{
	static const char *const states[] = { "unknown", "up", "down" };
	const uint64_t *c = snap->c;
	int r = evbuffer_add_printf(
		b,
		"\"directory\":{\"state\":\"%s\",\"state_time\":%" PRId64 ",\"lookups\":{\"ok\":%" PRIu64
		",\"not_found\":%" PRIu64 ",\"error\":%" PRIu64 "},\"cache\":{\"hit\":%" PRIu64
		",\"miss\":%" PRIu64 "},\"binds\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
		",\"error\":%" PRIu64 "}}}\n",
		states[snap->dir_state <= 2 ? snap->dir_state : 0], snap->dir_time,
		c[C_DIR_LOOKUPS + 0], c[C_DIR_LOOKUPS + 1], c[C_DIR_LOOKUPS + 2], c[C_DIR_CACHE_HIT],
		c[C_DIR_CACHE_MISS], c[C_DIR_BINDS + 0], c[C_DIR_BINDS + 1], c[C_DIR_BINDS + 2]);
	return r < 0 ? -1 : 0;
}

static int json(const struct metrics *m, const struct snapshot *snap, struct evbuffer *b,
		const char *version)
{
	if (evbuffer_add_printf(b, "{\"version\":") < 0 ||
	    json_string(b, version != NULL ? version : "") < 0)
		return -1;
	if (evbuffer_add_printf(b, ",\"pid\":%ld,\"start_time\":%" PRId64
				   ",\"uptime_seconds\":%" PRId64 ",",
				(long)m->master_pid, m->start_time, uptime(m)) < 0)
		return -1;
	if (json_workers(snap, b) < 0 || json_totals(snap, b) < 0 || json_limits(m, snap, b) < 0 ||
	    json_directory(snap, b) < 0)
		return -1;
	return 0;
}

int metrics_render_json(const struct metrics *m, struct evbuffer *out, const char *version)
{
	return render(m, out, version, json);
}

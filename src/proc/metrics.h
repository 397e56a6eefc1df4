/* metrics.h - request and process counters in a shared memory region that the
 * master creates before it forks. Each worker counts into its own slot with
 * relaxed atomic adds; any process renders the totals of all workers (past
 * and present) as Prometheus text (format 0.0.4) or as JSON status.
 *
 * Every function accepts a NULL metrics or slot pointer and then does nothing,
 * so the proxy runs unchanged when the region could not be created. The
 * master is the only process that claims and releases slots. */
#ifndef HOPCACHE_METRICS_H
#define HOPCACHE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct evbuffer;

#define METRICS_MAX_SLOTS 4096

struct metrics;      /* the shared region */
struct metrics_slot; /* one worker's counters, inside the region */

/* Master: map the region (nslots 1..METRICS_MAX_SLOTS) and record the start
 * time and the master's pid. NULL (errno set) on failure. */
struct metrics *metrics_create(unsigned nslots);
void metrics_destroy(struct metrics *m);

/* Master, just before fork: take a free slot for a worker of `generation`
 * (pid may be 0 and set after fork). NULL when all slots are in use. */
struct metrics_slot *metrics_slot_claim(struct metrics *m, pid_t pid, unsigned generation);
void metrics_slot_set_pid(struct metrics_slot *s, pid_t pid);

/* Master, after reaping worker `pid`: fold its counters into the retired
 * totals (counters never go down), drop its gauges and free the slot.
 * Returns the slot's number, or -1 when pid had none. */
int metrics_slot_release(struct metrics *m, pid_t pid);

/* The same for a slot whose fork failed (or whose pid is not known). */
void metrics_slot_free(struct metrics *m, struct metrics_slot *s);

/* Master: a worker died unexpectedly and was replaced. */
void metrics_worker_restart(struct metrics *m);

/* Master: a reload took effect (ok) or was refused (invalid configuration). */
void metrics_reload(struct metrics *m, bool ok);

/* Worker side: relaxed atomic adds on the worker's own slot, no locks.
 * An unknown method counts as OTHER; a status outside 100..599 counts as 0
 * ("no response sent"). */
void metrics_request(struct metrics_slot *s, const char *method, int status, uint64_t bytes_in,
		     uint64_t bytes_out);

/* outcome: "HIT", "MISS", "REFRESH" or "STALE" (others are ignored); bytes =
 * body bytes served, counted as served from cache for all but MISS. */
void metrics_cache(struct metrics_slot *s, const char *outcome, uint64_t bytes);

/* Active client connections +1/-1; +1 also counts an accepted connection. */
void metrics_conn(struct metrics_slot *s, int delta);

/* Active CONNECT tunnels +1/-1; +1 also counts a tunnel. */
void metrics_tunnel(struct metrics_slot *s, int delta);

/* An HTTP/2 session started; a stream opened (+1) or closed (-1). */
void metrics_h2_session(struct metrics_slot *s);
void metrics_h2_stream(struct metrics_slot *s, int delta);

/* A TLS client handshake on the HTTPS proxy port finished or failed. */
void metrics_tls_handshake(struct metrics_slot *s, bool ok);

/* An upstream error, by RFC 9209 error type: dns_error, dns_timeout,
 * connection_refused, connection_timeout, destination_unavailable,
 * http_response_timeout, http_protocol_error, tls_certificate_error,
 * tls_protocol_error, proxy_internal_error; anything else counts as "other". */
void metrics_upstream_error(struct metrics_slot *s, const char *type);

/* Proxy authentication by scheme and result; a failed one also counts in
 * hopcache_auth_failures_total. */
enum metrics_auth_scheme { METRICS_AUTH_BASIC, METRICS_AUTH_NEGOTIATE };
enum metrics_auth_result {
	METRICS_AUTH_OK,
	METRICS_AUTH_FAILED,    /* wrong credentials (407) */
	METRICS_AUTH_MISSING,   /* none, or another scheme (407) */
	METRICS_AUTH_MALFORMED, /* Basic: 400; Negotiate: not a token (407) */
	METRICS_AUTH_BLOCKED,   /* too many failures from the address (429) */
};
void metrics_auth(struct metrics_slot *s, enum metrics_auth_scheme scheme,
		  enum metrics_auth_result result);

/* The directory ([ldap]): a search for a user's groups (ok: found, not_found:
 * the directory does not know the user, error: it could not answer), the
 * worker's cache of groups consulted (hit or miss), a Basic password checked
 * by binding (ok, failed: unknown user or wrong password, error). The state
 * is this worker's last word from the directory (up: it answered; down: it
 * could not), shown by /hopcache/status. */
enum metrics_dir_result { METRICS_DIR_OK, METRICS_DIR_NOT_FOUND, METRICS_DIR_ERROR };
enum metrics_bind_result { METRICS_BIND_OK, METRICS_BIND_FAILED, METRICS_BIND_ERROR };
void metrics_directory_lookup(struct metrics_slot *s, enum metrics_dir_result result);
void metrics_directory_cache(struct metrics_slot *s, bool hit);
void metrics_directory_bind(struct metrics_slot *s, enum metrics_bind_result result);
void metrics_directory_state(struct metrics_slot *s, bool up);

/* A PROXY protocol header was read (ok) or refused (the connection closed). */
void metrics_proxy_header(struct metrics_slot *s, bool ok);
void metrics_denied(struct metrics_slot *s); /* policy denials (403) */

/* A refusal by a per-client limit ([limits]); a connection or request let
 * through uncounted because the client table had no room; an idle
 * keep-alive connection closed to make room at max_connections. */
enum metrics_limit {
	METRICS_LIMIT_CLIENT_CONNECTIONS, /* max_connections_per_client (429 or closed) */
	METRICS_LIMIT_CLIENT_RATE,        /* requests_per_client (429) */
	METRICS_LIMIT_USER_RATE,          /* requests_per_user (429) */
	METRICS_LIMIT_WORKER_FULL,        /* max_connections (503 or closed) */
	METRICS_LIMIT_SLOW_BODY,          /* min_body_rate (408) */
};
void metrics_limit(struct metrics_slot *s, enum metrics_limit reason);
void metrics_limit_untracked(struct metrics_slot *s);
void metrics_idle_evicted(struct metrics_slot *s);

/* Does a worker of self's generation other than self have fewer than max
 * client connections open? */
bool metrics_room_elsewhere(const struct metrics *m, const struct metrics_slot *self,
			    int64_t max);

/* The slot's number (0..nslots-1), or -1. */
int metrics_slot_index(const struct metrics *m, const struct metrics_slot *s);

/* Master: the client table (clients.h) whose top clients the status page
 * lists (NULL: none). */
struct clients;
#define METRICS_TOP_CLIENTS 10
void metrics_set_clients(struct metrics *m, const struct clients *cl);

/* A record found under a request's cache key was stored for another
 * request (its identity differs): it was treated as a miss. */
void metrics_cache_key_mismatch(struct metrics_slot *s);

/* Append the totals to out: Prometheus text exposition format 0.0.4 for
 * /hopcache/metrics, or a JSON object for /hopcache/status (`version` is
 * escaped; NULL gives ""). 0, or -1 (out of memory, or m or out NULL). */
int metrics_render_prometheus(const struct metrics *m, struct evbuffer *out);
int metrics_render_json(const struct metrics *m, struct evbuffer *out, const char *version);

#endif

/* test_metrics.c - the shared metrics region (src/proc/metrics.c): counting and the
 * exact Prometheus lines, method and status mapping, folding a released slot
 * into the retired totals, NULL safety, a worker process counting into its
 * slot, the JSON status (checked with a small validating parser), and a
 * reader racing a process that claims and releases slots, which must never
 * see the request total go down. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "metrics.h"

/* The whole rendering as a NUL-terminated string (free it). */
static char *render(const struct metrics *m, int json, const char *version)
{
	struct evbuffer *b = evbuffer_new();
	assert_non_null(b);
	int rc = json ? metrics_render_json(m, b, version) : metrics_render_prometheus(m, b);
	assert_int_equal(rc, 0);
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);
	assert_non_null(s);
	assert_int_equal(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* Is `line` one complete line of text? */
static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static void want_line(const char *text, const char *line)
{
	if (!has_line(text, line))
		fail_msg("missing line: %s\n--- got:\n%s", line, text);
}

static void want_no_line(const char *text, const char *line)
{
	if (has_line(text, line))
		fail_msg("unexpected line: %s", line);
}

/* Number of sample lines starting with prefix, and the sum of their values. */
static unsigned long long series(const char *text, const char *prefix, unsigned *count)
{
	unsigned long long total = 0;
	size_t n = strlen(prefix);
	unsigned c = 0;
	for (const char *p = text; *p != '\0';) {
		const char *eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if (strncmp(p, prefix, n) == 0) {
			const char *sp = p;
			for (const char *q = p; q < eol; q++)
				if (*q == ' ')
					sp = q;
			total += strtoull(sp + 1, NULL, 10);
			c++;
		}
		p = *eol ? eol + 1 : eol;
	}
	if (count != NULL)
		*count = c;
	return total;
}

static void test_count_and_render(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(4);
	assert_non_null(m);
	struct metrics_slot *s = metrics_slot_claim(m, 4242, 1);
	assert_non_null(s);

	metrics_request(s, "GET", 200, 10, 100);
	metrics_request(s, "GET", 200, 5, 50);
	metrics_request(s, "HEAD", 304, 1, 0);
	metrics_request(s, "CONNECT", 200, 0, 0);
	metrics_request(s, "PURGE", 404, 0, 0);
	metrics_cache(s, "HIT", 1000);
	metrics_cache(s, "hit", 24);
	metrics_cache(s, "MISS", 500);  /* not served from cache */
	metrics_cache(s, "REFRESH", 7);
	metrics_cache(s, "STALE", 3);
	metrics_cache(s, "NONE", 99);   /* ignored */
	metrics_conn(s, 1);
	metrics_conn(s, 1);
	metrics_conn(s, 1);
	metrics_conn(s, -1);
	metrics_tunnel(s, 1);
	metrics_tunnel(s, 1);
	metrics_tunnel(s, -1);
	metrics_h2_session(s);
	metrics_h2_stream(s, 1);
	metrics_h2_stream(s, 1);
	metrics_h2_stream(s, 1);
	metrics_h2_stream(s, -1);
	metrics_tls_handshake(s, true);
	metrics_tls_handshake(s, false);
	metrics_tls_handshake(s, false);
	metrics_upstream_error(s, "dns_error");
	metrics_upstream_error(s, "tls_certificate_error");
	metrics_upstream_error(s, "http_request_error");
	metrics_upstream_error(s, NULL);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_OK);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_MISSING);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_MISSING);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_MISSING);
	metrics_auth(s, METRICS_AUTH_BASIC, METRICS_AUTH_BLOCKED);
	metrics_auth(s, METRICS_AUTH_BASIC, (enum metrics_auth_result)99); /* ignored */
	metrics_proxy_header(s, true);
	metrics_proxy_header(s, true);
	metrics_proxy_header(s, false);
	metrics_limit(s, METRICS_LIMIT_CLIENT_CONNECTIONS);
	metrics_limit(s, METRICS_LIMIT_USER_RATE);
	metrics_limit(s, METRICS_LIMIT_USER_RATE);
	metrics_limit(s, (enum metrics_limit)99); /* ignored */
	metrics_limit_untracked(s);
	metrics_idle_evicted(s);
	metrics_idle_evicted(s);
	metrics_denied(s);
	metrics_cache_key_mismatch(s);
	metrics_cache_key_mismatch(s);
	metrics_cache_key_mismatch(s);
	metrics_worker_restart(m);
	metrics_reload(m, true);
	metrics_reload(m, false);
	metrics_reload(m, false);

	char *t = render(m, 0, NULL);
	static const char *const lines[] = {
		"# HELP hopcache_requests_total Requests by method and response status (code 0: no response sent).",
		"# TYPE hopcache_requests_total counter",
		"hopcache_requests_total{method=\"GET\",code=\"200\"} 2",
		"hopcache_requests_total{method=\"HEAD\",code=\"304\"} 1",
		"hopcache_requests_total{method=\"CONNECT\",code=\"200\"} 1",
		"hopcache_requests_total{method=\"PURGE\",code=\"404\"} 1",
		"# TYPE hopcache_request_bytes_total counter",
		"hopcache_request_bytes_total{direction=\"in\"} 16",
		"hopcache_request_bytes_total{direction=\"out\"} 150",
		"# TYPE hopcache_cache_requests_total counter",
		"hopcache_cache_requests_total{outcome=\"hit\"} 2",
		"hopcache_cache_requests_total{outcome=\"miss\"} 1",
		"hopcache_cache_requests_total{outcome=\"refresh\"} 1",
		"hopcache_cache_requests_total{outcome=\"stale\"} 1",
		"# TYPE hopcache_cache_bytes_served_total counter",
		"hopcache_cache_bytes_served_total 1034",
		"# TYPE hopcache_cache_key_mismatches_total counter",
		"hopcache_cache_key_mismatches_total 3",
		"# TYPE hopcache_connections_total counter",
		"hopcache_connections_total 3",
		"# TYPE hopcache_connections_active gauge",
		"hopcache_connections_active 2",
		"# TYPE hopcache_tunnels_total counter",
		"hopcache_tunnels_total 2",
		"# TYPE hopcache_tunnels_active gauge",
		"# TYPE hopcache_h2_connections_total counter",
		"hopcache_h2_connections_total 1",
		"# TYPE hopcache_h2_streams_total counter",
		"hopcache_h2_streams_total 3",
		"# TYPE hopcache_h2_streams_active gauge",
		"hopcache_h2_streams_active 2",
		"hopcache_tunnels_active 1",
		"# TYPE hopcache_tls_handshakes_total counter",
		"hopcache_tls_handshakes_total{result=\"ok\"} 1",
		"hopcache_tls_handshakes_total{result=\"failed\"} 2",
		"# TYPE hopcache_upstream_errors_total counter",
		"hopcache_upstream_errors_total{type=\"dns_error\"} 1",
		"hopcache_upstream_errors_total{type=\"dns_timeout\"} 0",
		"hopcache_upstream_errors_total{type=\"connection_refused\"} 0",
		"hopcache_upstream_errors_total{type=\"connection_timeout\"} 0",
		"hopcache_upstream_errors_total{type=\"destination_unavailable\"} 0",
		"hopcache_upstream_errors_total{type=\"http_response_timeout\"} 0",
		"hopcache_upstream_errors_total{type=\"http_protocol_error\"} 0",
		"hopcache_upstream_errors_total{type=\"tls_certificate_error\"} 1",
		"hopcache_upstream_errors_total{type=\"tls_protocol_error\"} 0",
		"hopcache_upstream_errors_total{type=\"proxy_internal_error\"} 0",
		"hopcache_upstream_errors_total{type=\"other\"} 2",
		"# TYPE hopcache_auth_failures_total counter",
		"hopcache_auth_failures_total 2",
		"# TYPE hopcache_policy_denials_total counter",
		"hopcache_policy_denials_total 1",
		"# TYPE hopcache_auth_total counter",
		"hopcache_auth_total{scheme=\"basic\",result=\"ok\"} 1",
		"hopcache_auth_total{scheme=\"basic\",result=\"failed\"} 2",
		"hopcache_auth_total{scheme=\"basic\",result=\"missing\"} 3",
		"hopcache_auth_total{scheme=\"basic\",result=\"malformed\"} 0",
		"hopcache_auth_total{scheme=\"basic\",result=\"blocked\"} 1",
		"# TYPE hopcache_proxy_protocol_headers_total counter",
		"hopcache_proxy_protocol_headers_total{result=\"ok\"} 2",
		"hopcache_proxy_protocol_headers_total{result=\"refused\"} 1",
		"# TYPE hopcache_limit_refusals_total counter",
		"hopcache_limit_refusals_total{reason=\"client_connections\"} 1",
		"hopcache_limit_refusals_total{reason=\"client_rate\"} 0",
		"hopcache_limit_refusals_total{reason=\"user_rate\"} 2",
		"hopcache_limit_refusals_total{reason=\"worker_full\"} 0",
		"hopcache_limit_refusals_total{reason=\"slow_body\"} 0",
		"# TYPE hopcache_limit_untracked_total counter",
		"hopcache_limit_untracked_total 1",
		"# TYPE hopcache_idle_evictions_total counter",
		"hopcache_idle_evictions_total 2",
		"# TYPE hopcache_directory_lookups_total counter",
		"hopcache_directory_lookups_total{result=\"ok\"} 0",
		"hopcache_directory_lookups_total{result=\"not_found\"} 0",
		"hopcache_directory_lookups_total{result=\"error\"} 0",
		"# TYPE hopcache_directory_cache_total counter",
		"hopcache_directory_cache_total{result=\"hit\"} 0",
		"hopcache_directory_cache_total{result=\"miss\"} 0",
		"# TYPE hopcache_directory_binds_total counter",
		"hopcache_directory_binds_total{result=\"ok\"} 0",
		"hopcache_directory_binds_total{result=\"failed\"} 0",
		"hopcache_directory_binds_total{result=\"error\"} 0",
		"# TYPE hopcache_worker_restarts_total counter",
		"hopcache_worker_restarts_total 1",
		"# TYPE hopcache_reloads_total counter",
		"hopcache_reloads_total{result=\"ok\"} 1",
		"hopcache_reloads_total{result=\"failed\"} 2",
		"# TYPE hopcache_workers gauge",
		"hopcache_workers 1",
		"# TYPE hopcache_start_time_seconds gauge",
		"# TYPE hopcache_uptime_seconds gauge",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		want_line(t, lines[i]);

	/* only non-zero request series */
	unsigned n;
	assert_int_equal(series(t, "hopcache_requests_total{", &n), 5);
	assert_int_equal(n, 4);
	want_no_line(t, "hopcache_requests_total{method=\"GET\",code=\"404\"} 0");

	/* every family has HELP and TYPE; every line ends with a newline */
	unsigned help, type;
	series(t, "# HELP ", &help);
	series(t, "# TYPE ", &type);
	assert_int_equal(help, 29);
	assert_int_equal(type, 29);
	assert_int_equal(t[strlen(t) - 1], '\n');

	long long now = (long long)time(NULL);
	long long start = (long long)series(t, "hopcache_start_time_seconds ", &n);
	assert_int_equal(n, 1);
	/* time() may lag CLOCK_REALTIME by a tick */
	assert_true(start <= now + 1 && start >= now - 60);
	assert_true(series(t, "hopcache_uptime_seconds ", &n) <= 60);
	free(t);
	metrics_destroy(m);
}

static void test_method_and_status(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(1);
	assert_non_null(m);
	struct metrics_slot *s = metrics_slot_claim(m, 1, 0);
	assert_non_null(s);
	metrics_request(s, "BREW", 418, 0, 0);
	metrics_request(s, "get", 200, 0, 0); /* methods are case-sensitive */
	metrics_request(s, NULL, 200, 0, 0);
	metrics_request(s, "GET", 0, 0, 0);
	metrics_request(s, "GET", 99, 0, 0);
	metrics_request(s, "GET", 600, 0, 0);
	metrics_request(s, "GET", -1, 0, 0);
	metrics_request(s, "GET", 100, 0, 0);
	metrics_request(s, "GET", 599, 0, 0);
	static const char *const m7[] = { "OPTIONS", "PATCH", "TRACE", "DELETE", "PUT", "POST" };
	for (size_t i = 0; i < sizeof(m7) / sizeof(m7[0]); i++)
		metrics_request(s, m7[i], 201, 0, 0);

	char *t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"OTHER\",code=\"418\"} 1");
	want_line(t, "hopcache_requests_total{method=\"OTHER\",code=\"200\"} 2");
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"0\"} 4");
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"100\"} 1");
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"599\"} 1");
	for (size_t i = 0; i < sizeof(m7) / sizeof(m7[0]); i++) {
		char line[128];
		snprintf(line, sizeof(line), "hopcache_requests_total{method=\"%s\",code=\"201\"} 1",
			 m7[i]);
		want_line(t, line);
	}
	unsigned n;
	assert_int_equal(series(t, "hopcache_requests_total{", &n), 15);
	assert_int_equal(n, 11);
	free(t);
	metrics_destroy(m);
}

static void test_release_folds(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(2);
	assert_non_null(m);
	struct metrics_slot *a = metrics_slot_claim(m, 0, 1);
	struct metrics_slot *b = metrics_slot_claim(m, 0, 1);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_null(metrics_slot_claim(m, 300, 1)); /* full */
	metrics_slot_set_pid(a, 100);
	metrics_slot_set_pid(b, 200);

	metrics_request(a, "GET", 200, 1, 2);
	metrics_request(b, "GET", 200, 3, 4);
	metrics_request(b, "POST", 500, 0, 0);
	metrics_conn(a, 1);
	metrics_conn(b, 1);
	metrics_conn(b, 1);
	metrics_tunnel(b, 1);
	metrics_cache(b, "HIT", 10);

	metrics_slot_release(m, 999); /* unknown pid: nothing */
	char *t = render(m, 0, NULL);
	want_line(t, "hopcache_workers 2");
	want_line(t, "hopcache_connections_active 3");
	free(t);

	metrics_slot_release(m, 200);
	t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"200\"} 2");
	want_line(t, "hopcache_requests_total{method=\"POST\",code=\"500\"} 1");
	want_line(t, "hopcache_request_bytes_total{direction=\"in\"} 4");
	want_line(t, "hopcache_request_bytes_total{direction=\"out\"} 6");
	want_line(t, "hopcache_cache_requests_total{outcome=\"hit\"} 1");
	want_line(t, "hopcache_cache_bytes_served_total 10");
	want_line(t, "hopcache_connections_total 3");
	want_line(t, "hopcache_connections_active 1"); /* b's gauges dropped */
	want_line(t, "hopcache_tunnels_total 1");
	want_line(t, "hopcache_tunnels_active 0");
	want_line(t, "hopcache_workers 1");
	free(t);

	/* the freed slot is reused and starts from zero */
	struct metrics_slot *c = metrics_slot_claim(m, 300, 2);
	assert_ptr_equal(c, b);
	metrics_request(c, "GET", 200, 0, 0);
	metrics_conn(c, 1);
	t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"200\"} 3");
	want_line(t, "hopcache_connections_active 2");
	want_line(t, "hopcache_workers 2");
	free(t);

	/* a slot freed by pointer (fork failed) */
	metrics_slot_free(m, c);
	metrics_slot_release(m, 100);
	metrics_slot_release(m, 100); /* twice: nothing more */
	t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"200\"} 3");
	want_line(t, "hopcache_connections_total 4");
	want_line(t, "hopcache_connections_active 0");
	want_line(t, "hopcache_workers 0");
	free(t);
	metrics_destroy(m);
}

static void test_null(void **state)
{
	(void)state;
	assert_null(metrics_create(0));
	assert_null(metrics_create(METRICS_MAX_SLOTS + 1));
	metrics_destroy(NULL);
	assert_null(metrics_slot_claim(NULL, 1, 1));
	metrics_slot_set_pid(NULL, 1);
	metrics_slot_release(NULL, 1);
	metrics_slot_free(NULL, NULL);
	metrics_worker_restart(NULL);
	metrics_reload(NULL, true);
	metrics_request(NULL, "GET", 200, 1, 1);
	metrics_cache(NULL, "HIT", 1);
	metrics_conn(NULL, 1);
	metrics_tunnel(NULL, 1);
	metrics_tls_handshake(NULL, true);
	metrics_upstream_error(NULL, "dns_error");
	metrics_auth(NULL, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
	metrics_proxy_header(NULL, true);
	metrics_denied(NULL);
	metrics_cache_key_mismatch(NULL);
	struct evbuffer *b = evbuffer_new();
	assert_non_null(b);
	assert_int_equal(metrics_render_prometheus(NULL, b), -1);
	assert_int_equal(metrics_render_json(NULL, b, "1"), -1);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);

	struct metrics *m = metrics_create(METRICS_MAX_SLOTS);
	assert_non_null(m);
	assert_int_equal(metrics_render_prometheus(m, NULL), -1);
	metrics_slot_free(m, NULL);
	metrics_cache(metrics_slot_claim(m, 1, 1), NULL, 5);
	char *t = render(m, 0, NULL);
	want_line(t, "hopcache_workers 1");
	want_line(t, "hopcache_cache_bytes_served_total 0");
	free(t);
	metrics_destroy(m);
}

/* Wait for a child, at most about 30 s; kill it after that. */
static int reap(pid_t pid)
{
	int st = 0;
	for (int i = 0; i < 3000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		assert_int_equal(r, 0);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("child %d did not exit", (int)pid);
	return -1;
}

static void test_cross_process(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(4);
	assert_non_null(m);
	struct metrics_slot *s = metrics_slot_claim(m, 0, 7);
	assert_non_null(s);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		metrics_slot_set_pid(s, getpid());
		for (int i = 0; i < 1000; i++)
			metrics_request(s, "GET", 200, 1, 2);
		metrics_request(s, "DELETE", 204, 0, 0);
		metrics_conn(s, 1);
		metrics_tunnel(s, 1);
		metrics_denied(s);
		_exit(0);
	}
	metrics_slot_set_pid(s, pid);
	assert_int_equal(reap(pid), 0);

	char *t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"200\"} 1000");
	want_line(t, "hopcache_requests_total{method=\"DELETE\",code=\"204\"} 1");
	want_line(t, "hopcache_request_bytes_total{direction=\"out\"} 2000");
	want_line(t, "hopcache_connections_active 1"); /* not yet released */
	want_line(t, "hopcache_policy_denials_total 1");
	free(t);

	char want[128];
	snprintf(want, sizeof(want),
		 "{\"pid\":%d,\"generation\":7,\"connections_active\":1,\"tunnels_active\":1,"
		 "\"requests\":1001}",
		 (int)pid);
	t = render(m, 1, "0.1.0");
	if (strstr(t, want) == NULL)
		fail_msg("missing %s in %s", want, t);
	free(t);

	metrics_slot_release(m, pid);
	t = render(m, 0, NULL);
	want_line(t, "hopcache_requests_total{method=\"GET\",code=\"200\"} 1000");
	want_line(t, "hopcache_connections_active 0");
	want_line(t, "hopcache_tunnels_active 0");
	want_line(t, "hopcache_tunnels_total 1");
	want_line(t, "hopcache_workers 0");
	free(t);
	metrics_destroy(m);
}

/* --- a small validating JSON parser --------------------------------------- */

static const char *json_value(const char *p, int depth);

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *json_str(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\')
			continue;
		p++;
		if (*p == 'u') {
			for (int i = 1; i <= 4; i++)
				if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
					return NULL;
			p += 4;
		} else if (*p == '\0' || strchr("\"\\/bfnrt", *p) == NULL) {
			return NULL;
		}
	}
	return p + 1;
}

static const char *json_num(const char *p)
{
	const char *start = p;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	if (*p == '0' && p[1] >= '0' && p[1] <= '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p > start ? p : NULL;
}

/* An object (close '}') or array (close ']'). */
static const char *json_list(const char *p, char close, int depth)
{
	p = ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (close == '}') {
			p = json_str(p);
			if (p == NULL || *(p = ws(p)) != ':')
				return NULL;
			p = ws(p + 1);
		}
		p = json_value(p, depth + 1);
		if (p == NULL)
			return NULL;
		p = ws(p);
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p = ws(p + 1);
	}
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 16)
		return NULL;
	p = ws(p);
	if (*p == '{' || *p == '[')
		return json_list(p, *p == '{' ? '}' : ']', depth);
	if (*p == '"')
		return json_str(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return json_num(p);
}

static int json_valid(const char *s)
{
	const char *end = json_value(s, 0);
	return end != NULL && *ws(end) == '\0';
}

static void test_json(void **state)
{
	(void)state;
	/* the validator itself */
	assert_true(json_valid("{\"a\":[1,-2,3.5,{}],\"b\":\"x\\\"\\u0001\"}\n"));
	assert_false(json_valid("{\"a\":1"));
	assert_false(json_valid("{\"a\":1,}"));
	assert_false(json_valid("{\"a\":\"\x01\"}"));
	assert_false(json_valid("{\"a\":[1}]"));

	struct metrics *m = metrics_create(3);
	assert_non_null(m);
	struct metrics_slot *a = metrics_slot_claim(m, 11, 1);
	struct metrics_slot *b = metrics_slot_claim(m, 12, 2);
	metrics_request(a, "GET", 200, 0, 0);
	metrics_request(b, "GET", 200, 0, 0);
	metrics_request(b, "GET", 0, 0, 0);
	metrics_conn(b, 1);
	metrics_cache(a, "HIT", 5);
	metrics_cache(a, "STALE", 6);
	metrics_cache(b, "MISS", 7);
	metrics_upstream_error(a, "dns_timeout");
	metrics_upstream_error(b, "whatever");
	metrics_auth(a, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
	metrics_reload(m, true);

	char *t = render(m, 1, "1.0 \"beta\"\\\n\x7f");
	if (!json_valid(t))
		fail_msg("invalid JSON: %s", t);
	static const char *const keys[] = {
		"{\"version\":\"1.0 \\\"beta\\\"\\\\\\u000a\\u007f\",",
		"\"workers\":[{\"pid\":11,\"generation\":1,\"connections_active\":0,"
		"\"tunnels_active\":0,\"requests\":1},{\"pid\":12,\"generation\":2,"
		"\"connections_active\":1,\"tunnels_active\":0,\"requests\":2}]",
		"\"requests_total\":3,",
		"\"connections_active\":1,\"tunnels_active\":0,",
		"\"cache\":{\"hit\":1,\"miss\":1,\"refresh\":0,\"stale\":1,\"bytes_served\":11,\"key_mismatches\":0}",
		"\"upstream_errors\":2,",
		"\"auth_failures\":1,",
		"\"policy_denials\":0,",
		"\"worker_restarts\":0,",
		"\"reloads\":{\"ok\":1,\"failed\":0}",
		"\"directory\":{\"state\":\"unknown\",\"state_time\":0,",
		"\"start_time\":",
		"\"uptime_seconds\":",
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strstr(t, keys[i]) == NULL)
			fail_msg("missing %s in %s", keys[i], t);
	char pid[32];
	snprintf(pid, sizeof(pid), "\"pid\":%d,\"start_time\"", (int)getpid());
	if (strstr(t, pid) == NULL)
		fail_msg("missing %s in %s", pid, t);
	free(t);

	/* no workers, NULL version */
	metrics_slot_release(m, 11);
	metrics_slot_release(m, 12);
	t = render(m, 1, NULL);
	if (!json_valid(t))
		fail_msg("invalid JSON: %s", t);
	assert_non_null(strstr(t, "{\"version\":\"\","));
	assert_non_null(strstr(t, "\"workers\":[],"));
	assert_non_null(strstr(t, "\"requests_total\":3,"));
	free(t);
	metrics_destroy(m);
}

/* The directory's counters and state: each result in its series (others
 * ignored), not counted as requests; the state of the worker that heard from
 * the directory last ("down" on a tie), "unknown" when none has, a released
 * worker's state forgotten (its counters kept). */
static void test_directory(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(3);
	assert_non_null(m);
	struct metrics_slot *a = metrics_slot_claim(m, 21, 1);
	struct metrics_slot *b = metrics_slot_claim(m, 22, 1);
	assert_non_null(a);
	assert_non_null(b);
	char *t = render(m, 1, "x");
	assert_non_null(strstr(t, "\"directory\":{\"state\":\"unknown\""));
	free(t);

	metrics_directory_lookup(a, METRICS_DIR_OK);
	metrics_directory_lookup(a, METRICS_DIR_OK);
	metrics_directory_lookup(b, METRICS_DIR_NOT_FOUND);
	metrics_directory_lookup(b, METRICS_DIR_ERROR);
	metrics_directory_lookup(b, (enum metrics_dir_result)7); /* ignored */
	metrics_directory_cache(a, true);
	metrics_directory_cache(a, false);
	metrics_directory_cache(b, false);
	metrics_directory_bind(a, METRICS_BIND_OK);
	metrics_directory_bind(b, METRICS_BIND_FAILED);
	metrics_directory_bind(b, METRICS_BIND_FAILED);
	metrics_directory_bind(b, METRICS_BIND_ERROR);
	metrics_directory_bind(b, (enum metrics_bind_result)-1); /* ignored */
	metrics_directory_state(a, true);
	metrics_directory_state(b, false); /* the same second: down wins */
	metrics_directory_lookup(NULL, METRICS_DIR_OK);
	metrics_directory_state(NULL, true);

	t = render(m, 0, NULL);
	static const char *const lines[] = {
		"hopcache_directory_lookups_total{result=\"ok\"} 2",
		"hopcache_directory_lookups_total{result=\"not_found\"} 1",
		"hopcache_directory_lookups_total{result=\"error\"} 1",
		"hopcache_directory_cache_total{result=\"hit\"} 1",
		"hopcache_directory_cache_total{result=\"miss\"} 2",
		"hopcache_directory_binds_total{result=\"ok\"} 1",
		"hopcache_directory_binds_total{result=\"failed\"} 2",
		"hopcache_directory_binds_total{result=\"error\"} 1",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		want_line(t, lines[i]);
	unsigned n;
	assert_int_equal(series(t, "hopcache_requests_total{", &n), 0);
	free(t);

	t = render(m, 1, "x");
	if (!json_valid(t))
		fail_msg("invalid JSON: %s", t);
	if (strstr(t, "\"directory\":{\"state\":\"down\"") == NULL ||
	    strstr(t, "\"lookups\":{\"ok\":2,\"not_found\":1,\"error\":1},\"cache\":{\"hit\":1,"
		      "\"miss\":2},\"binds\":{\"ok\":1,\"failed\":2,\"error\":1}}") == NULL)
		fail_msg("directory: %s", t);
	free(t);

	/* b goes: a's word stands; the counters stay */
	metrics_slot_release(m, 22);
	t = render(m, 1, "x");
	if (strstr(t, "\"directory\":{\"state\":\"up\"") == NULL ||
	    strstr(t, "\"binds\":{\"ok\":1,\"failed\":2,\"error\":1}") == NULL)
		fail_msg("after release: %s", t);
	free(t);
	metrics_slot_release(m, 21);
	t = render(m, 1, "x");
	assert_non_null(strstr(t, "\"directory\":{\"state\":\"unknown\""));
	free(t);
	metrics_destroy(m);
}

/* A child plays master: claims a slot, counts into it, releases it, over and
 * over until the parent has rendered RACE_READS times (at most RACE_ROUNDS
 * rounds); the request total the parent sees must never go down (it does
 * without the sequence lock). */
#define RACE_READS 5000
#define RACE_ROUNDS 1000000
#define RACE_PER_ROUND 3
#define RACE_IDLE 3
#define RACE_PACE_US 10

struct race {
	int stop;
	unsigned rounds;
};

/* Busy-wait: a worker runs between claim and release, which leaves readers
 * the time to complete a consistent read. */
static void spin_us(long us)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static void race_child(struct metrics *m, struct race *r)
{
	/* idle workers in the first slots widen the window the reader must
	 * get right: between its read of the retired totals and of the last slot */
	for (pid_t p = 1; p <= RACE_IDLE; p++)
		if (metrics_slot_claim(m, p, 0) == NULL)
			_exit(2);
	unsigned i;
	for (i = 0; i < RACE_ROUNDS && !__atomic_load_n(&r->stop, __ATOMIC_RELAXED); i++) {
		struct metrics_slot *s = metrics_slot_claim(m, 0, i);
		if (s == NULL)
			_exit(2);
		metrics_slot_set_pid(s, 100000 + (pid_t)(i % 1000));
		for (int k = 0; k < RACE_PER_ROUND; k++)
			metrics_request(s, "GET", 200, 0, 0);
		spin_us(RACE_PACE_US);
		metrics_slot_release(m, 100000 + (pid_t)(i % 1000));
	}
	for (pid_t p = 1; p <= RACE_IDLE; p++)
		metrics_slot_release(m, p);
	__atomic_store_n(&r->rounds, i, __ATOMIC_RELAXED);
	_exit(0);
}

static void test_race(void **state)
{
	(void)state;
	struct metrics *m = metrics_create(RACE_IDLE + 1);
	assert_non_null(m);
	struct race *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			      -1, 0);
	assert_true(r != MAP_FAILED);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		race_child(m, r);
	unsigned long long last = 0;
	for (unsigned reads = 0; reads < RACE_READS; reads++) {
		char *t = render(m, 0, NULL);
		unsigned long long now = series(t, "hopcache_requests_total{", NULL);
		free(t);
		if (now < last) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("request total went down: %llu -> %llu after %u reads", last, now,
				 reads);
		}
		last = now;
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_RELAXED);
	assert_int_equal(reap(pid), 0);
	char *t = render(m, 0, NULL);
	unsigned long long want = (unsigned long long)r->rounds * RACE_PER_ROUND;
	assert_true(want > 0);
	assert_true(series(t, "hopcache_requests_total{", NULL) == want);
	want_line(t, "hopcache_workers 0");
	free(t);
	munmap(r, sizeof(*r));
	metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_and_render),
		cmocka_unit_test(test_method_and_status),
		cmocka_unit_test(test_release_folds),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_cross_process),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

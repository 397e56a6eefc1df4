/* test_config.c - the config loader (config*.c) through whole files:
 * defaults, every value type, lists, and the messages that name file,
 * section and key. Table-driven. (test_config_value.c calls the parsers
 * and the key tables directly.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Load ini text as "test.ini"; on an unexpected failure show the messages. */
static struct config *load(const char *ini, struct config_errors *errs)
{
	return config_load_string(ini, "test.ini", errs);
}

/* Join the collected messages with " | " for failure output. */
static const char *joined(const struct config_errors *e)
{
	static char buf[4096];
	size_t o = 0, i;

	buf[0] = '\0';
	for (i = 0; i < e->n && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " | " : "", e->msg[i]);
	return buf;
}

/* Load text that must be valid. */
static struct config *load_ok(const char *ini)
{
	struct config_errors e = { 0 };
	struct config *cfg = load(ini, &e);

	if (cfg == NULL)
		fail_msg("load(%s): got errors %s, want success", ini, joined(&e));
	config_errors_free(&e);
	return cfg;
}

/* Does some message equal want exactly? */
static bool has_msg(const struct config_errors *e, const char *want)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->msg[i], want) == 0)
			return true;
	return false;
}

/* Load text that must fail with (at least) the message want. */
static void expect_error(const char *ini, const char *want)
{
	struct config_errors e = { 0 };
	struct config *cfg = load(ini, &e);

	if (cfg != NULL) {
		config_free(cfg);
		fail_msg("load(%s): got success, want error %s", ini, want);
	}
	if (!has_msg(&e, want))
		fail_msg("load(%s): got errors %s, want %s", ini, joined(&e), want);
	config_errors_free(&e);
}

/* An empty file yields every default. */
static void test_defaults(void **state)
{
	static const char *const inputs[] = {
		"",
		"; only a comment\n",
		"[proxy]\n[limits]\n[upstream]\n[log]\n",
	};
	size_t i;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	(void)state;
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > 256)
		ncpu = 256;
	for (i = 0; i < N(inputs); i++) {
		struct config *c = load_ok(inputs[i]);

		assert_string_equal(c->path, "test.ini");
		assert_int_equal(c->nlisten, 1);
		assert_string_equal(c->listen[0].host, "127.0.0.1");
		assert_string_equal(c->listen[0].port, "3128");
		if (c->workers != ncpu)
			fail_msg("workers: got %d, want %ld (online CPUs)", c->workers, ncpu);
		assert_null(c->user);
		assert_string_equal(c->via, "hopcache");
		assert_int_equal(c->nconnect_ports, 1);
		assert_int_equal(c->connect_ports[0].lo, 443);
		assert_int_equal(c->connect_ports[0].hi, 443);
		assert_false(c->x_forwarded_for);
		assert_false(c->forwarded);
		assert_null(c->pid_file);
		assert_int_equal(c->max_request_line, 8192);
		assert_int_equal(c->max_header_bytes, 65536);
		assert_int_equal(c->max_headers, 100);
		assert_int_equal(c->max_body, 0);
		assert_true(c->header_timeout == 30);
		assert_true(c->idle_timeout == 60);
		assert_true(c->connect_timeout == 10);
		assert_true(c->upstream_timeout == 60);
		assert_true(c->tunnel_idle_timeout == 300);
		assert_true(c->shutdown_timeout == 30);
		assert_true(c->client_timeout == 60);
		assert_int_equal(c->max_connections, 4096);
		assert_int_equal(c->nadmin_listen, 0);
		assert_int_equal(c->admin_max_connections, 16);
		assert_int_equal(c->pool_max_idle, 64);
		assert_true(c->pool_idle_timeout == 30);
		assert_string_equal(c->resolv_conf, "/etc/resolv.conf");
		assert_null(c->access_log);
		assert_string_equal(c->error_log, "-");
		assert_int_equal(c->log_level, 2);
		config_free(c);
	}
}

/* Booleans: every accepted spelling, any case; anything else is an error. */
static void test_bool(void **state)
{
	static const struct {
		const char *val;
		int want; /* 1, 0, or -1 = error */
	} rows[] = {
		{ "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 }, { "YES", 1 }, { "True", 1 },
		{ "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 }, { "Off", 0 },
		{ "y", -1 }, { "2", -1 }, { "", -1 }, { "yes please", -1 }, { "nope", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128], want[256];

		snprintf(ini, sizeof(ini), "[proxy]\nx_forwarded_for = %s\nforwarded = %s\n",
			 rows[i].val, rows[i].val);
		if (rows[i].want < 0) {
			snprintf(want, sizeof(want), "test.ini: [proxy] forwarded: expected yes or no "
				 "(true/false, on/off, 1/0), got \"%s\"", rows[i].val);
			expect_error(ini, want);
		} else {
			struct config *c = load_ok(ini);

			if (c->x_forwarded_for != rows[i].want || c->forwarded != rows[i].want)
				fail_msg("%s: got %d/%d, want %d", rows[i].val, c->x_forwarded_for,
					 c->forwarded, rows[i].want);
			config_free(c);
		}
	}
}

/* Integers with bounds, including the int and size_t fields. */
static void test_int(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		long long want; /* -1 = error */
	} rows[] = {
		{ "max_headers", "1", 1 }, { "max_headers", "10000", 10000 }, { "max_headers", "250", 250 },
		{ "max_headers", "0", -1 }, { "max_headers", "10001", -1 }, { "max_headers", "abc", -1 },
		{ "max_headers", "-5", -1 }, { "max_headers", "1.5", -1 }, { "max_headers", "12k", -1 },
		{ "max_headers", "99999999999999999999999", -1 }, { "max_headers", "", -1 },
		{ "max_connections", "1", 1 }, { "max_connections", "1000000", 1000000 },
		{ "max_connections", "1000001", -1 }, { "max_connections", " 7", 7 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128];
		struct config_errors e = { 0 };
		struct config *c;

		snprintf(ini, sizeof(ini), "[limits]\n%s = %s\n", rows[i].key, rows[i].val);
		c = load(ini, &e);
		if (rows[i].want < 0) {
			if (c != NULL || e.n != 1)
				fail_msg("%s = %s: got %zu errors, want 1", rows[i].key, rows[i].val, e.n);
		} else {
			long long got;

			if (c == NULL)
				fail_msg("%s = %s: got %s, want %lld", rows[i].key, rows[i].val, joined(&e),
					 rows[i].want);
			got = strcmp(rows[i].key, "max_headers") == 0 ? (long long)c->max_headers
								       : (long long)c->max_connections;
			if (got != rows[i].want)
				fail_msg("%s = %s: got %lld, want %lld", rows[i].key, rows[i].val, got,
					 rows[i].want);
		}
		config_free(c);
		config_errors_free(&e);
	}
	expect_error("[limits]\nmax_headers = abc\n",
		     "test.ini: [limits] max_headers: expected an integer between 1 and 10000, got \"abc\"");
}

/* workers: auto or 1..256. */
static void test_workers(void **state)
{
	static const struct {
		const char *val;
		int want; /* 0 = auto, -1 = error */
	} rows[] = {
		{ "auto", 0 }, { "AUTO", 0 }, { "1", 1 }, { "256", 256 }, { "8", 8 },
		{ "0", -1 }, { "257", -1 }, { "many", -1 }, { "", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128];

		snprintf(ini, sizeof(ini), "[proxy]\nworkers = %s\n", rows[i].val);
		if (rows[i].want < 0) {
			char want[256];

			snprintf(want, sizeof(want), "test.ini: [proxy] workers: expected auto or an integer "
				 "between 1 and 256, got \"%s\"", rows[i].val);
			expect_error(ini, want);
		} else {
			struct config *c = load_ok(ini);

			if (rows[i].want == 0 ? c->workers < 1 : c->workers != rows[i].want)
				fail_msg("workers = %s: got %d, want %d", rows[i].val, c->workers, rows[i].want);
			config_free(c);
		}
	}
}

/* Sizes: plain bytes and K/M/G suffixes (binary, any case), bounds, overflow. */
static void test_size(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		uint64_t want;
		bool ok;
	} rows[] = {
		{ "max_body", "0", 0, true },
		{ "max_body", "1", 1, true },
		{ "max_body", "10K", 10240, true },
		{ "max_body", "10k", 10240, true },
		{ "max_body", "3M", 3 * 1024 * 1024, true },
		{ "max_body", "2G", UINT64_C(2) * 1024 * 1024 * 1024, true },
		{ "max_body", "5g", UINT64_C(5) << 30, true },
		{ "max_body", "1T", 0, false },
		{ "max_body", "K", 0, false },
		{ "max_body", "1.5M", 0, false },
		{ "max_body", "-1", 0, false },
		{ "max_body", "1 K", 0, false },
		{ "max_body", "99999999999G", 0, false },
		{ "max_body", "18446744073709551616", 0, false },
		{ "max_header_bytes", "1K", 1024, true },
		{ "max_header_bytes", "16M", 16 * 1024 * 1024, true },
		{ "max_header_bytes", "1023", 0, false },
		{ "max_header_bytes", "17M", 0, false },
		{ "max_request_line", "256", 256, true },
		{ "max_request_line", "255", 0, false },
		{ "max_request_line", "1M", 1024 * 1024, true },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128];
		struct config_errors e = { 0 };
		struct config *c;

		snprintf(ini, sizeof(ini), "[limits]\n%s = %s\n", rows[i].key, rows[i].val);
		c = load(ini, &e);
		if (!rows[i].ok) {
			if (c != NULL || e.n != 1)
				fail_msg("%s = %s: got %zu errors, want 1", rows[i].key, rows[i].val, e.n);
		} else {
			uint64_t got;

			if (c == NULL)
				fail_msg("%s = %s: got %s, want %llu", rows[i].key, rows[i].val, joined(&e),
					 (unsigned long long)rows[i].want);
			if (strcmp(rows[i].key, "max_body") == 0)
				got = c->max_body;
			else if (strcmp(rows[i].key, "max_header_bytes") == 0)
				got = c->max_header_bytes;
			else
				got = c->max_request_line;
			if (got != rows[i].want)
				fail_msg("%s = %s: got %llu, want %llu", rows[i].key, rows[i].val,
					 (unsigned long long)got, (unsigned long long)rows[i].want);
		}
		config_free(c);
		config_errors_free(&e);
	}
	expect_error("[limits]\nmax_header_bytes = 100\n",
		     "test.ini: [limits] max_header_bytes: expected a size between 1K and 16M "
		     "(bytes, or with a K, M or G suffix), got \"100\"");
}

/* Durations: seconds with an optional fraction, within bounds. */
static void test_duration(void **state)
{
	static const struct {
		const char *key;
		const char *val;
		double want; /* < 0 = error */
	} rows[] = {
		{ "header_timeout", "30", 30 }, { "header_timeout", "0.5", 0.5 },
		{ "header_timeout", "1.25", 1.25 }, { "header_timeout", "86400", 86400 },
		{ "header_timeout", "0.001", 0.001 }, { "header_timeout", "0", -1 },
		{ "header_timeout", "86401", -1 }, { "header_timeout", "-1", -1 },
		{ "header_timeout", "1.", -1 }, { "header_timeout", ".5", -1 },
		{ "header_timeout", "10s", -1 }, { "header_timeout", "1e3", -1 },
		{ "header_timeout", "inf", -1 }, { "header_timeout", "nan", -1 },
		{ "header_timeout", "1,5", -1 }, { "header_timeout", "", -1 },
		{ "shutdown_timeout", "0", 0 }, { "tunnel_idle_timeout", "3600", 3600 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128];
		struct config_errors e = { 0 };
		struct config *c;

		snprintf(ini, sizeof(ini), "[limits]\n%s = %s\n", rows[i].key, rows[i].val);
		c = load(ini, &e);
		if (rows[i].want < 0) {
			if (c != NULL || e.n != 1)
				fail_msg("%s = %s: got %zu errors, want 1", rows[i].key, rows[i].val, e.n);
		} else {
			double got;

			if (c == NULL)
				fail_msg("%s = %s: got %s, want %g", rows[i].key, rows[i].val, joined(&e),
					 rows[i].want);
			got = strcmp(rows[i].key, "header_timeout") == 0   ? c->header_timeout
			      : strcmp(rows[i].key, "shutdown_timeout") == 0 ? c->shutdown_timeout
									     : c->tunnel_idle_timeout;
			if (got < rows[i].want - 1e-9 || got > rows[i].want + 1e-9)
				fail_msg("%s = %s: got %g, want %g", rows[i].key, rows[i].val, got, rows[i].want);
		}
		config_free(c);
		config_errors_free(&e);
	}
	expect_error("[limits]\nidle_timeout = soon\n",
		     "test.ini: [limits] idle_timeout: expected seconds between 0.001 and 86400 "
		     "(fractions allowed), got \"soon\"");
}

/* Enum: [log] level names -> 0..3. */
static void test_enum(void **state)
{
	static const struct {
		const char *val;
		int want;
	} rows[] = {
		{ "error", 0 }, { "warn", 1 }, { "info", 2 }, { "debug", 3 }, { "DEBUG", 3 },
		{ "warning", -1 }, { "verbose", -1 }, { "2", -1 }, { "", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[128];

		snprintf(ini, sizeof(ini), "[log]\nlevel = %s\n", rows[i].val);
		if (rows[i].want < 0) {
			char want[256];

			snprintf(want, sizeof(want), "test.ini: [log] level: expected one of error, warn, "
				 "info or debug, got \"%s\"", rows[i].val);
			expect_error(ini, want);
		} else {
			struct config *c = load_ok(ini);

			if (c->log_level != rows[i].want)
				fail_msg("level = %s: got %d, want %d", rows[i].val, c->log_level, rows[i].want);
			config_free(c);
		}
	}
}

/* [auth] scheme: a list of distinct schemes in the order offered; none alone. */
static void test_auth_schemes(void **state)
{
	static const struct {
		const char *val;
		size_t n;
		int first, second;
		const char *err; /* the message after "test.ini: [auth] scheme: " */
	} rows[] = {
		{ "none", 0, 0, 0, NULL },
		{ "NONE", 0, 0, 0, NULL },
		{ "negotiate", 1, CONFIG_AUTH_NEGOTIATE, 0, NULL },
		{ "negotiate, basic", 2, CONFIG_AUTH_NEGOTIATE, CONFIG_AUTH_BASIC, NULL },
		{ "basic,negotiate", 2, CONFIG_AUTH_BASIC, CONFIG_AUTH_NEGOTIATE, NULL },
		{ "basic  negotiate", 2, CONFIG_AUTH_BASIC, CONFIG_AUTH_NEGOTIATE, NULL },
		{ "basic, basic", 0, 0, 0, "\"basic, basic\": \"basic\" named twice" },
		{ "none, basic", 0, 0, 0, "\"none, basic\": \"none\" cannot be combined with others" },
		{ "basic, ntlm", 0, 0, 0,
		  "expected one of none, basic or negotiate, got \"basic, ntlm\"" },
		{ ",", 0, 0, 0, "expected one or more names, got \",\"" },
	};
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		char ini[256];
		snprintf(ini, sizeof(ini), "[auth]\nscheme = %s\n", rows[i].val);
		if (rows[i].err != NULL) {
			char want[256];
			snprintf(want, sizeof(want), "test.ini: [auth] scheme: %s", rows[i].err);
			expect_error(ini, want);
			continue;
		}
		struct config_errors e = { 0 };
		struct config *c = load(ini, &e);
		if (rows[i].n == 0) {
			if (c == NULL)
				fail_msg("scheme = %s: got errors %s", rows[i].val, joined(&e));
			assert_int_equal(c->nauth_schemes, 0);
			config_free(c);
			continue;
		}
		/* negotiate without a keytab, basic without htpasswd: refused,
		 * and the messages say the scheme was understood */
		assert_null(c);
		if (rows[i].first == CONFIG_AUTH_NEGOTIATE || rows[i].second == CONFIG_AUTH_NEGOTIATE)
			assert_true(has_msg(&e, "test.ini: [auth] keytab: required when scheme "
						"includes negotiate"));
		if (rows[i].first == CONFIG_AUTH_BASIC || rows[i].second == CONFIG_AUTH_BASIC)
			assert_true(has_msg(&e, "test.ini: [auth] htpasswd: required when scheme "
						"includes basic"));
		config_errors_free(&e);
	}
	expect_error("[auth]\nscheme = negotiate\nkeytab = /nonexistent/k.keytab\n",
		     "test.ini: [auth] keytab: /nonexistent/k.keytab: No such file or directory");
}

/* Strings: via must be a token; optional strings may be emptied; no control characters. */
static void test_strings(void **state)
{
	struct config *c;

	(void)state;
	c = load_ok("[proxy]\nvia = my-proxy.example\nuser = nobody\npid_file = /run/hopcache.pid\n"
		    "[upstream]\nresolv_conf = /tmp/resolv\n[log]\naccess = /var/log/a.log\nerror = /var/log/e.log\n");
	assert_string_equal(c->via, "my-proxy.example");
	assert_string_equal(c->user, "nobody");
	assert_string_equal(c->pid_file, "/run/hopcache.pid");
	assert_string_equal(c->resolv_conf, "/tmp/resolv");
	assert_string_equal(c->access_log, "/var/log/a.log");
	assert_string_equal(c->error_log, "/var/log/e.log");
	config_free(c);

	c = load_ok("[proxy]\nuser =\n[log]\naccess = \"\"\n");
	assert_null(c->user);
	assert_null(c->access_log);
	config_free(c);

	c = load_ok("[proxy]\nvia = \"quoted\"\n");
	assert_string_equal(c->via, "quoted");
	config_free(c);

	expect_error("[proxy]\nvia = hop cache\n",
		     "test.ini: [proxy] via: expected a token (letters, digits and !#$%&'*+-.^_`|~), got \"hop cache\"");
	expect_error("[proxy]\nvia = \"a/b\"\n",
		     "test.ini: [proxy] via: expected a token (letters, digits and !#$%&'*+-.^_`|~), got \"a/b\"");
	expect_error("[proxy]\nvia =\n", "test.ini: [proxy] via: must not be empty");
	expect_error("[log]\nerror =\n", "test.ini: [log] error: must not be empty");
	expect_error("[upstream]\nresolv_conf = \"a\tb\"\n",
		     "test.ini: [upstream] resolv_conf: contains a control character: \"a\\x09b\"");
}

/* listen: host:port lists, IPv6 in brackets, port 0, and the errors. */
static void test_listen(void **state)
{
	static const struct {
		const char *val;
		const char *want; /* "host port;host port;" or NULL = error */
	} rows[] = {
		{ "127.0.0.1:3128", "127.0.0.1 3128;" },
		{ "[::1]:3128", "::1 3128;" },
		{ "0.0.0.0:0", "0.0.0.0 0;" },
		{ "[::]:8080", ":: 8080;" },
		{ "localhost:3128", "localhost 3128;" },
		{ "127.0.0.1:3128, [::1]:3128", "127.0.0.1 3128;::1 3128;" },
		{ "127.0.0.1:1 127.0.0.1:2,127.0.0.1:3", "127.0.0.1 1;127.0.0.1 2;127.0.0.1 3;" },
		{ " ,127.0.0.1:3128,, ", "127.0.0.1 3128;" },
		{ "127.0.0.1:03128", "127.0.0.1 3128;" },
		{ "127.0.0.1:65535", "127.0.0.1 65535;" },
		{ "127.0.0.1:0 127.0.0.1:0", "127.0.0.1 0;127.0.0.1 0;" },
		{ "", NULL },
		{ " , ", NULL },
		{ "127.0.0.1", NULL },
		{ "3128", NULL },
		{ ":3128", NULL },
		{ "127.0.0.1:", NULL },
		{ "127.0.0.1:65536", NULL },
		{ "127.0.0.1:http", NULL },
		{ "127.0.0.1:-1", NULL },
		{ "::1:3128", NULL },
		{ "[::1:3128", NULL },
		{ "[::1]3128", NULL },
		{ "[127.0.0.1]:3128", NULL },
		{ "[nonsense]:3128", NULL },
		{ "127.0.0.256:3128", NULL },
		{ "bad/host:3128", NULL },
		{ "127.0.0.1:3128 127.0.0.1:3128", NULL },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[256], got[512];
		struct config_errors e = { 0 };
		struct config *c;
		size_t o = 0;

		snprintf(ini, sizeof(ini), "[proxy]\nlisten = %s\n", rows[i].val);
		c = load(ini, &e);
		if (rows[i].want == NULL) {
			if (c != NULL)
				fail_msg("listen = %s: got success, want an error", rows[i].val);
			if (e.n != 1 || strncmp(e.msg[0], "test.ini: [proxy] listen: ", 26) != 0)
				fail_msg("listen = %s: got %s, want one [proxy] listen error", rows[i].val, joined(&e));
		} else {
			if (c == NULL)
				fail_msg("listen = %s: got %s, want %s", rows[i].val, joined(&e), rows[i].want);
			got[0] = '\0';
			for (j = 0; j < c->nlisten; j++)
				o += (size_t)snprintf(got + o, sizeof(got) - o, "%s %s;", c->listen[j].host,
						      c->listen[j].port);
			if (strcmp(got, rows[i].want) != 0)
				fail_msg("listen = %s: got %s, want %s", rows[i].val, got, rows[i].want);
		}
		config_free(c);
		config_errors_free(&e);
	}
	expect_error("[proxy]\nlisten = ::1:3128\n",
		     "test.ini: [proxy] listen: \"::1:3128\": an IPv6 address needs brackets, e.g. [::1]:3128");
	expect_error("[proxy]\nlisten = 127.0.0.1\n",
		     "test.ini: [proxy] listen: \"127.0.0.1\": expected host:port, e.g. 127.0.0.1:3128");
	expect_error("[proxy]\nlisten =\n",
		     "test.ini: [proxy] listen: expected at least one host:port, e.g. 127.0.0.1:3128");
}

/* connect_ports: ports and ranges, and config_connect_port_allowed. */
static void test_connect_ports(void **state)
{
	static const struct {
		const char *val;
		bool ok;
		unsigned allowed[4];
		unsigned denied[4];
	} rows[] = {
		{ "443", true, { 443 }, { 80, 442, 444, 8443 } },
		{ "443, 8443, 9000-9100", true, { 443, 8443, 9000, 9100 }, { 80, 8999, 9101, 65535 } },
		{ "443 8443", true, { 443, 8443 }, { 1, 80 } },
		{ "1-65535", true, { 1, 80, 443, 65535 }, { 0 } },
		{ "563,443", true, { 563, 443 }, { 80 } },
		{ "7-7", true, { 7 }, { 6, 8 } },
		{ "", false, { 0 }, { 0 } },
		{ "0", false, { 0 }, { 0 } },
		{ "65536", false, { 0 }, { 0 } },
		{ "9100-9000", false, { 0 }, { 0 } },
		{ "443-", false, { 0 }, { 0 } },
		{ "-443", false, { 0 }, { 0 } },
		{ "1-2-3", false, { 0 }, { 0 } },
		{ "https", false, { 0 }, { 0 } },
		{ "443, x", false, { 0 }, { 0 } },
		{ "0-80", false, { 0 }, { 0 } },
		{ "80-70000", false, { 0 }, { 0 } },
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		char ini[256];
		struct config_errors e = { 0 };
		struct config *c;

		snprintf(ini, sizeof(ini), "[proxy]\nconnect_ports = %s\n", rows[i].val);
		c = load(ini, &e);
		if (!rows[i].ok) {
			if (c != NULL || e.n != 1 || strncmp(e.msg[0], "test.ini: [proxy] connect_ports: ", 33) != 0)
				fail_msg("connect_ports = %s: got %s, want one connect_ports error", rows[i].val,
					 c != NULL ? "success" : joined(&e));
		} else {
			if (c == NULL)
				fail_msg("connect_ports = %s: got %s, want success", rows[i].val, joined(&e));
			for (j = 0; j < 4; j++) {
				if (rows[i].allowed[j] != 0 && !config_connect_port_allowed(c, rows[i].allowed[j]))
					fail_msg("connect_ports = %s: port %u: got denied, want allowed", rows[i].val,
						 rows[i].allowed[j]);
				if (rows[i].denied[j] != 0 && config_connect_port_allowed(c, rows[i].denied[j]))
					fail_msg("connect_ports = %s: port %u: got allowed, want denied", rows[i].val,
						 rows[i].denied[j]);
			}
			if (config_connect_port_allowed(c, 0) || config_connect_port_allowed(c, 70000))
				fail_msg("connect_ports = %s: got 0 or 70000 allowed, want denied", rows[i].val);
		}
		config_free(c);
		config_errors_free(&e);
	}
	expect_error("[proxy]\nconnect_ports = 9100-9000\n",
		     "test.ini: [proxy] connect_ports: range \"9100-9000\" runs backwards (want low-high)");
}

/* Unknown keys and sections, with and without suggestions; keys outside a section. */
static void test_unknown(void **state)
{
	static const struct {
		const char *ini;
		const char *want;
	} rows[] = {
		{ "[proxy]\nlisen = 127.0.0.1:1\n", "test.ini: [proxy] lisen: unknown key; did you mean [proxy] listen?" },
		{ "[proxy]\nworker = 2\n", "test.ini: [proxy] worker: unknown key; did you mean [proxy] workers?" },
		{ "[limits]\nmax_header = 5\n",
		  "test.ini: [limits] max_header: unknown key; did you mean [limits] max_headers?" },
		{ "[proxy]\nlevel = info\n", "test.ini: [proxy] level: unknown key; did you mean [log] level?" },
		{ "[proxy]\nfrobnicate = 1\n", "test.ini: [proxy] frobnicate: unknown key" },
		{ "[proxi]\nlisten = 127.0.0.1:1\n", "test.ini: [proxi]: unknown section; did you mean [proxy]?" },
		{ "[LIMIT]\n", "test.ini: [limit]: unknown section; did you mean [limits]?" },
		{ "[quic]\nlisten = 127.0.0.1:1\n", "test.ini: [quic]: unknown section" },
		{ "[upstram]\nverify = no\n", "test.ini: [upstram]: unknown section; did you mean [upstream]?" },
		{ "[tls]\nlisten = 127.0.0.1:1\nprivate_key = /dev/null\n",
		  "test.ini: [tls] certificate: required when [tls] listen is set" },
		{ "[tls]\nprotocols = SSLv3\n",
		  "test.ini: [tls] protocols: \"SSLv3\": expected TLSv1.2 and/or TLSv1.3 (TLSv1, TLSv1.1 also accepted)" },
		{ "[upstream]\nparent_user = bob\nparent_password = x\n",
		  "test.ini: [upstream] parent_user: set only with [upstream] parent" },
		{ "[upstream]\nparent = 127.0.0.1:3128\nparent_user = bob\n",
		  "test.ini: [upstream] parent_user: parent_user and parent_password go together" },
		{ "[upstream]\nparent = 127.0.0.1:3128\nparent_direct = -bad-\u00e9.test\n",
		  "test.ini: [upstream] parent_direct: expected a domain name or .suffix, got \"-bad-\u00e9.test\": non-ASCII name (write IDNA names as punycode, xn--...)" },
		{ "[pac]\nproxy = evil\"x:80\n",
		  "test.ini: [pac] proxy: expected host[:port] such as proxy.example.com:3128, got \"evil\\\"x:80\"" },
		{ "[pac]\nproxy = proxy.example:http\n",
		  "test.ini: [pac] proxy: expected host[:port] such as proxy.example.com:3128, got \"proxy.example:http\"" },
		{ "[pac]\ndirect_networks = 2001:db8::/32\n",
		  "test.ini: [pac] direct_networks: PAC files test IPv4 networks only (isInNet)" },
		{ "[log]\naccess_format = apache\n",
		  "test.ini: [log] access_format: expected one of native, squid, combined or json, got \"apache\"" },
		{ "[admin]\nlisten = 127.0.0.1\n",
		  "test.ini: [admin] listen: \"127.0.0.1\": expected host:port, e.g. 127.0.0.1:3128" },
		{ "[proxy]\nlisten = 127.0.0.1:3128\n[admin]\nlisten = 127.0.0.1:3128\n",
		  "test.ini: [admin] listen: 127.0.0.1:3128 is also in [proxy] listen" },
		{ "[tls]\nlisten = 127.0.0.1:3129\ncertificate = /dev/null\nprivate_key = /dev/null\n"
		  "[admin]\nlisten = 127.0.0.1:3129\n",
		  "test.ini: [admin] listen: 127.0.0.1:3129 is also in [tls] listen" },
		{ "[admin]\nmax_connections = 0\n",
		  "test.ini: [admin] max_connections: expected an integer between 1 and 1000, got \"0\"" },
		{ "[admin]\nmax_connections = 1001\n",
		  "test.ini: [admin] max_connections: expected an integer between 1 and 1000, got \"1001\"" },
		{ "[cache]\nsize = 1\n",
		  "test.ini: [cache] size: expected a size between 1M and 16384G (bytes, or with a K, M or G suffix), got \"1\"" },
		{ "[cache]\npurge_allow = 10.0.0.1/8\n",
		  "test.ini: [cache] purge_allow: expected addresses or ranges such as 127.0.0.1, 10.0.0.0/8, ::1, got \"10.0.0.1/8\"" },
		{ "workers = 2\n[proxy]\n", "test.ini: workers: not inside any section; did you mean [proxy] workers?" },
		{ "zzz = 2\n", "test.ini: zzz: not inside any section" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++)
		expect_error(rows[i].ini, rows[i].want);

	/* Keys of an unknown section are not reported one by one. */
	{
		struct config_errors e = { 0 };

		assert_null(load("[quic]\nlisten = 127.0.0.1:1\nciphers = x\n", &e));
		if (e.n != 1)
			fail_msg("unknown section: got %zu messages (%s), want 1", e.n, joined(&e));
		config_errors_free(&e);
	}
	/* Sections and keys are case-insensitive (iniparser lowercases them). */
	{
		struct config *c = load_ok("[PROXY]\nWorkers = 3\n");

		assert_int_equal(c->workers, 3);
		config_free(c);
	}
}

/* Every problem in one run: values, unknown names, syntax, duplicates. */
static void test_many_errors(void **state)
{
	static const char ini[] =
		"[proxy]\n"
		"workers = lots\n"           /* 1 */
		"lisen = 1\n"                /* 2 */
		"connect_ports = 0\n"        /* 3 */
		"[limits]\n"
		"max_headers = abc\n"        /* 4 */
		"idle_timeout = -1\n"        /* 5 */
		"[bogus]\n"                  /* 6 */
		"[log]\n"
		"level = loud\n";            /* 7 */
	static const char *const want[] = {
		"test.ini: [proxy] workers: expected auto or an integer between 1 and 256, got \"lots\"",
		"test.ini: [proxy] lisen: unknown key; did you mean [proxy] listen?",
		"test.ini: [limits] max_headers: expected an integer between 1 and 10000, got \"abc\"",
		"test.ini: [bogus]: unknown section",
		"test.ini: [log] level: expected one of error, warn, info or debug, got \"loud\"",
	};
	struct config_errors e = { 0 };
	size_t i;

	(void)state;
	assert_null(load(ini, &e));
	if (e.n != 7)
		fail_msg("got %zu messages (%s), want 7", e.n, joined(&e));
	for (i = 0; i < N(want); i++)
		if (!has_msg(&e, want[i]))
			fail_msg("got %s, want among them %s", joined(&e), want[i]);
	config_errors_free(&e);

	/* A syntax error does not hide the other problems. */
	assert_null(load("[proxy]\nworkers = x\nthis is not ini\n[log]\nlevel = q\n", &e));
	if (e.n != 3 || !has_msg(&e, "test.ini: line 3: syntax error: expected [section] or key = value, "
				     "got \"this is not ini\"") ||
	    !has_msg(&e, "test.ini: [log] level: expected one of error, warn, info or debug, got \"q\""))
		fail_msg("syntax error: got %s, want the syntax error and 2 value errors", joined(&e));
	config_errors_free(&e);

	/* A key given twice is an error (iniparser would silently keep the last). */
	expect_error("[log]\nlevel = info\n[proxy]\n[log]\nlevel = debug\n",
		     "test.ini: [log] level: given twice (lines 2 and 5); give it once");

	/* errs may be NULL: the verdict still holds. */
	assert_null(load("[proxy]\nworkers = x\n", NULL));
}

/* Files: missing, a directory, too-long lines, NUL bytes; config_load names the path. */
static void test_files(void **state)
{
	struct config_errors e = { 0 };
	char path[] = "/tmp/test_config_XXXXXX", want[256], line[1100];
	struct config *c;
	FILE *f;
	int fd;

	(void)state;
	assert_null(config_load("/nonexistent/hopcache.ini", &e));
	if (e.n != 1 || strcmp(e.msg[0], "/nonexistent/hopcache.ini: cannot open: No such file or directory") != 0)
		fail_msg("missing file: got %s", joined(&e));
	config_errors_free(&e);

	assert_null(config_load("/", &e));
	if (e.n != 1 || strcmp(e.msg[0], "/: cannot read: Is a directory") != 0)
		fail_msg("directory: got %s", joined(&e));
	config_errors_free(&e);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("[proxy]\nworkers = 0\n", f);
	fclose(f);
	assert_null(config_load(path, &e));
	snprintf(want, sizeof(want), "%s: [proxy] workers: expected auto or an integer between 1 and 256, got \"0\"",
		 path);
	if (e.n != 1 || strcmp(e.msg[0], want) != 0)
		fail_msg("config_load: got %s, want %s", joined(&e), want);
	config_errors_free(&e);

	f = fopen(path, "w");
	fwrite("[proxy]\nvia = a\0b\n", 1, 18, f);
	fclose(f);
	assert_null(config_load(path, &e));
	snprintf(want, sizeof(want), "%s: line 2: contains a NUL byte", path);
	if (e.n != 1 || strcmp(e.msg[0], want) != 0)
		fail_msg("NUL: got %s, want %s", joined(&e), want);
	config_errors_free(&e);

	f = fopen(path, "w");
	fputs("[proxy]\nvia = workers\n", f);
	fclose(f);
	c = config_load(path, &e);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	config_free(c);
	unlink(path);

	memset(line, 'a', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "[proxy]\nvia = ", 14);
	expect_error(line, "test.ini: line 2: line too long (at most 1000 characters, continuations included)");
}

/* [ldap]: defaults, the URI list, the checks across keys, the bind
 * password file read at load; rule groups of the groups file, of the
 * directory, or mistakes. */
static void test_ldap(void **state)
{
	char pw[] = "/tmp/test_config_pw_XXXXXX", empty[] = "/tmp/test_config_pw_XXXXXX";
	char ini[1024], want[512];
	struct config *c;
	int fd;

	(void)state;
	c = load_ok("");
	assert_null(c->ldap_uri);
	assert_false(c->ldap_starttls);
	assert_string_equal(c->ldap_user_filter, "(|(uid=%u)(sAMAccountName=%u))");
	assert_string_equal(c->ldap_group_attribute, "memberOf");
	assert_true(c->ldap_timeout == 5 && c->ldap_cache_ttl == 300 && c->ldap_negative_ttl == 60);
	assert_int_equal(c->auth_basic_backend, CONFIG_BACKEND_HTPASSWD);
	config_free(c);

	fd = mkstemp(pw);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\r\n", 8), 8);
	close(fd);
	fd = mkstemp(empty);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\n", 1), 1);
	close(fd);

	snprintf(ini, sizeof(ini),
		 "[auth]\nscheme = basic\nbasic_backend = ldap\n"
		 "[ldap]\nuri = ldap://a.example:389, ldaps://[::1]:636/ ldap://b\n"
		 "base = dc=example,dc=org\nbind_dn = cn=proxy,dc=example,dc=org\n"
		 "bind_password_file = %s\ngroup_filter = (&(objectClass=groupOfNames)(member=%%D))\n"
		 "[acl]\nrules = a, b\n[rule.a]\ngroups = staff | cn=Web Team,ou=g,dc=example,dc=org\n"
		 "action = allow\n[rule.b]\ngroups = staff, admins\naction = deny\n", pw);
	c = load_ok(ini);
	assert_string_equal(c->ldap_uris, "ldap://a.example:389 ldaps://[::1]:636/ ldap://b");
	assert_string_equal(c->ldap_bind_password, "s3cret"); /* the line end dropped */
	assert_int_equal(c->auth_basic_backend, CONFIG_BACKEND_LDAP);
	assert_int_equal(c->ndir_groups, 3); /* each once */
	assert_string_equal(c->dir_groups[0], "staff");
	assert_string_equal(c->dir_groups[1], "cn=Web Team,ou=g,dc=example,dc=org");
	assert_string_equal(c->dir_groups[2], "admins");
	config_free(c);

	static const struct {
		const char *ldap, *extra, *want;
	} rows[] = {
		{ "uri = http://x/", "", "test.ini: [ldap] uri: expected ldap://HOST[:PORT] or "
		  "ldaps://HOST[:PORT], got \"http://x/\"" },
		{ "uri = ldap://x:0", "", "test.ini: [ldap] uri: expected ldap://HOST[:PORT] or "
		  "ldaps://HOST[:PORT] (no DN, attributes or filter), got \"ldap://x:0\"" },
		{ "uri = ldap:///dc=x", "", "test.ini: [ldap] uri: expected ldap://HOST[:PORT] or "
		  "ldaps://HOST[:PORT] (no DN, attributes or filter), got \"ldap:///dc=x\"" },
		{ "uri = ldap://x", "", "test.ini: [ldap] base: required with uri (the DN searches "
		  "start at)" },
		{ "uri = ldaps://x\nstarttls = yes\nbase = dc=x", "", "test.ini: [ldap] starttls: yes "
		  "with an ldaps:// URI: ldaps:// is TLS from the start; use ldap:// with starttls, or "
		  "starttls = no" },
		{ "uri = ldap://x\nbase = example.org", "", "test.ini: [ldap] base: not a DN: expected "
		  "attribute=value (like cn=staff) at \"example.org\"" },
		{ "uri = ldap://x\nbase = dc=x\nbind_dn = cn=p,dc=x", "", "test.ini: [ldap] "
		  "bind_password_file: required with bind_dn (the password is never written in the INI)" },
		{ "uri = ldap://x\nbase = dc=x\nbind_dn = cn=p,dc=x\nbind_password_file = "
		  "/nonexistent/pw", "", "test.ini: [ldap] bind_password_file: /nonexistent/pw: No such "
		  "file or directory" },
		{ "uri = ldap://x\nbase = dc=x\nuser_filter = (uid=alice)", "", "test.ini: [ldap] "
		  "user_filter: must contain %u (the user name)" },
		{ "uri = ldap://x\nbase = dc=x\nuser_filter = (member=%D)", "", "test.ini: [ldap] "
		  "user_filter: %D at offset 8 is not a placeholder here (use %u or %%)" },
		{ "uri = ldap://x\nbase = dc=x\ngroup_filter = (|(member=%D)", "", "test.ini: [ldap] "
		  "group_filter: unbalanced parentheses: 1 '(' not closed" },
		{ "uri = ldap://x\nbase = dc=x\ngroup_attribute = member of", "", "test.ini: [ldap] "
		  "group_attribute: expected an attribute name like memberOf, got \"member of\"" },
		{ "uri = ldap://x\nbase = dc=x\ntimeout = 0", "", "test.ini: [ldap] timeout: expected "
		  "seconds between 0.1 and 600 (fractions allowed), got \"0\"" },
		{ "base = dc=x", "", "test.ini: [ldap] base: set, but [ldap] uri is not (the directory "
		  "is off)" },
		{ "", "[auth]\nbasic_backend = ldap\n", "test.ini: [auth] basic_backend: ldap needs "
		  "[ldap] uri" },
		{ "uri = ldap://x\nbase = dc=x", "[auth]\nscheme = basic\nbasic_backend = ldap\n"
		  "htpasswd = /etc/passwd\n", "test.ini: [auth] htpasswd: not used with basic_backend = "
		  "ldap: remove it" },
		{ "", "[acl]\nrules = r\n[rule.r]\ngroups = staff\naction = allow\n", "test.ini: "
		  "[rule.r] groups: \"staff\" is not a group of the [auth] groups file (none is set), "
		  "and there is no [ldap] directory" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		snprintf(ini, sizeof(ini), "[ldap]\n%s\n%s", rows[i].ldap, rows[i].extra);
		expect_error(ini, rows[i].want);
	}
	snprintf(ini, sizeof(ini), "[ldap]\nuri = ldap://x\nbase = dc=x\nbind_dn = cn=p,dc=x\n"
		 "bind_password_file = %s\n", empty);
	snprintf(want, sizeof(want), "test.ini: [ldap] bind_password_file: %s: empty (an empty "
		 "password would be an unauthenticated bind)", empty);
	expect_error(ini, want);
	unlink(pw);
	unlink(empty);
}

/* The one-line summary. */
static void test_summary(void **state)
{
	static const struct {
		const char *ini;
		const char *want;
	} rows[] = {
		{ "[proxy]\nworkers = 2\n[log]\naccess = /var/log/hopcache/access.log\n",
		  "listen 127.0.0.1:3128, workers 2, connect ports 443, cache off, access log /var/log/hopcache/access.log, "
		  "error log stderr (info)" },
		{ "[proxy]\nlisten = 0.0.0.0:3128 [::]:3128\nworkers = 1\nconnect_ports = 443, 9000-9100\n"
		  "[log]\naccess = -\nerror = /tmp/e.log\nlevel = debug\n",
		  "listen 0.0.0.0:3128 [::]:3128, workers 1, connect ports 443 9000-9100, cache off, access log stdout, "
		  "error log /tmp/e.log (debug)" },
		{ "[proxy]\nworkers = 1\n[admin]\nlisten = 127.0.0.1:9128 [::1]:9128\n",
		  "listen 127.0.0.1:3128, admin 127.0.0.1:9128 [::1]:9128, workers 1, connect ports 443, cache off, "
		  "access log off, error log stderr (info)" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		struct config *c = load_ok(rows[i].ini);
		char buf[512], small[16];

		config_summary(c, buf, sizeof(buf));
		if (strcmp(buf, rows[i].want) != 0)
			fail_msg("summary: got \"%s\", want \"%s\"", buf, rows[i].want);
		config_summary(c, small, sizeof(small));
		if (strlen(small) != sizeof(small) - 1 || strncmp(small, rows[i].want, sizeof(small) - 1) != 0)
			fail_msg("truncated summary: got \"%s\"", small);
		config_free(c);
	}
	config_free(NULL);
}

/* [upstream] parent_user/parent_password: the header line is made at load,
 * as long as the credentials are (no fixed buffer cuts them). */
static void test_parent_auth(void **state)
{
	static const struct {
		size_t ulen, plen;
	} rows[] = { { 3, 4 }, { 100, 298 }, { 100, 299 }, { 200, 700 }, { 900, 900 } };
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++) {
		size_t ul = rows[i].ulen, pl = rows[i].plen, n = ul + 1 + pl, k, o;
		char *ini = malloc(ul + pl + 200), *plain = malloc(n + 1), *want = malloc(2 * n + 64);
		struct config *c;

		assert_non_null(ini);
		assert_non_null(plain);
		assert_non_null(want);
		for (k = 0; k < ul; k++)
			plain[k] = (char)('a' + k % 26);
		plain[ul] = ':';
		for (k = 0; k < pl; k++)
			plain[ul + 1 + k] = k % 7 == 3 ? ':' : (char)('A' + k % 26);
		plain[n] = '\0';
		o = (size_t)sprintf(want, "Proxy-Authorization: Basic ");
		for (k = 0; k < n; k += 3) {
			unsigned v = (unsigned)(unsigned char)plain[k] << 16;
			if (k + 1 < n)
				v |= (unsigned)(unsigned char)plain[k + 1] << 8;
			if (k + 2 < n)
				v |= (unsigned)(unsigned char)plain[k + 2];
			want[o++] = b64[v >> 18 & 63];
			want[o++] = b64[v >> 12 & 63];
			want[o++] = k + 1 < n ? b64[v >> 6 & 63] : '=';
			want[o++] = k + 2 < n ? b64[v & 63] : '=';
		}
		strcpy(want + o, "\r\n");
		sprintf(ini, "[upstream]\nparent = 127.0.0.1:3129\nparent_user = %.*s\nparent_password = %s\n",
			(int)ul, plain, plain + ul + 1);
		c = load_ok(ini);
		assert_non_null(c->parent_auth);
		if (strcmp(c->parent_auth, want) != 0)
			fail_msg("user %zu + password %zu bytes: got %zu bytes \"%.60s...\", want %zu bytes",
				 ul, pl, strlen(c->parent_auth), c->parent_auth, strlen(want));
		config_free(c);
		free(ini);
		free(plain);
		free(want);
	}
	struct config *c = load_ok("[upstream]\nparent = 127.0.0.1:3129\n");
	assert_null(c->parent_auth);
	config_free(c);
}

/* Values longer than a limit are refused with a message naming it; a value
 * at the limit is taken whole. */
static void test_length_limits(void **state)
{
	char host[300], ini[1200], want[600];
	struct config *c;
	size_t k;

	(void)state;
	for (k = 0; k < 254; k++)
		host[k] = k % 64 == 63 ? '.' : (char)('a' + k % 26);
	host[253] = '\0';
	snprintf(ini, sizeof(ini), "[proxy]\nlisten = %s:3128\n", host);
	c = load_ok(ini);
	assert_string_equal(c->listen[0].host, host);
	config_free(c);
	host[253] = 'x';
	host[254] = '\0';
	snprintf(ini, sizeof(ini), "[proxy]\nlisten = %s:3128\n", host);
	snprintf(want, sizeof(want), "test.ini: [proxy] listen: \"%.60s...\": host name longer than 253 characters",
		 host);
	expect_error(ini, want);
	snprintf(ini, sizeof(ini), "[upstream]\nparent = %s:3128\n", host);
	snprintf(want, sizeof(want), "test.ini: [upstream] parent: \"%.60s...\": host name longer than 253 characters",
		 host);
	expect_error(ini, want);

	c = load_ok("[proxy]\nvia = vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n");
	assert_int_equal(strlen(c->via), CONFIG_VIA_MAX);
	config_free(c);
	expect_error("[proxy]\nvia = vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\n",
		     "test.ini: [proxy] via: longer than 64 characters: "
		     "\"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv...\"");

	/* a listed rule name is compared whole: cut to 63, it named rule r...r */
	static const char r63[] = "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr";
	snprintf(ini, sizeof(ini), "[acl]\nrules = %s, %sx\n[rule.%s]\naction = deny\n", r63, r63, r63);
	snprintf(want, sizeof(want),
		 "test.ini: [acl] rules: \"%s...\": a rule name of 1 to 63 characters is expected", r63);
	expect_error(ini, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_int),
		cmocka_unit_test(test_workers),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_connect_ports),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_parent_auth),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_auth_schemes),
		cmocka_unit_test(test_ldap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

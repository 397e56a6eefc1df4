/* test_admin.c - where the proxy's own resources are served (admin.c): the
 * admin listener's routing of any request, and which listener answers which
 * resource with and without [admin] listen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "admin.h"
#include "config.h"
#include "http_parser.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_route(void **state)
{
	static const struct {
		const char *method, *target;
		enum admin_route_kind kind;
		enum admin_resource r; /* ADMIN_ROUTE_RESOURCE */
		int status;            /* ADMIN_ROUTE_REFUSE */
		bool allow;            /* ... with an Allow line */
	} rows[] = {
		{ "GET", "/hopcache/metrics", ADMIN_ROUTE_RESOURCE, ADMIN_METRICS, 0, false },
		{ "HEAD", "/hopcache/status?x=1", ADMIN_ROUTE_RESOURCE, ADMIN_STATUS, 0, false },
		/* answer_admin says 405 to other methods of a resource */
		{ "POST", "/hopcache/status", ADMIN_ROUTE_RESOURCE, ADMIN_STATUS, 0, false },
		{ "GET", "/proxy.pac", ADMIN_ROUTE_RESOURCE, ADMIN_PAC, 0, false },
		{ "PURGE", "http://example.test/a", ADMIN_ROUTE_PURGE, ADMIN_NONE, 0, false },
		{ "PURGE", "https://example.test/a?b", ADMIN_ROUTE_PURGE, ADMIN_NONE, 0, false },
		{ "PURGE", "/a", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 400, false },
		{ "GET", "/", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, false },
		{ "GET", "/hopcache/statusx", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, false },
		{ "GET", "http://example.test/", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, false },
		{ "GET", "http://127.0.0.1:9128/hopcache/status", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, false },
		{ "POST", "http://example.test/", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 404, false },
		{ "CONNECT", "example.test:443", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 405, true },
		{ "OPTIONS", "*", ADMIN_ROUTE_REFUSE, ADMIN_NONE, 405, true },
	};

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		struct slice m = slice_make(rows[i].method, strlen(rows[i].method));
		struct slice t = slice_make(rows[i].target, strlen(rows[i].target));
		struct http_target pt;
		if (http_parse_target(m, t, &pt) != 0)
			fail_msg("%s %s: the target does not parse", rows[i].method, rows[i].target);
		struct admin_route ro = admin_route(m, t, &pt);
		if (ro.kind != rows[i].kind)
			fail_msg("%s %s: got kind %d, want %d", rows[i].method, rows[i].target, ro.kind,
				 rows[i].kind);
		if (ro.kind == ADMIN_ROUTE_RESOURCE && ro.r != rows[i].r)
			fail_msg("%s %s: got resource %d, want %d", rows[i].method, rows[i].target, ro.r,
				 rows[i].r);
		if (ro.kind != ADMIN_ROUTE_REFUSE)
			continue;
		if (ro.status != rows[i].status)
			fail_msg("%s %s: got %d, want %d", rows[i].method, rows[i].target, ro.status,
				 rows[i].status);
		if (ro.details == NULL || ro.details[0] == '\0')
			fail_msg("%s %s: a refusal without details", rows[i].method, rows[i].target);
		if ((ro.fields != NULL) != rows[i].allow ||
		    (ro.fields != NULL && strcmp(ro.fields, "Allow: GET, HEAD, PURGE\r\n") != 0))
			fail_msg("%s %s: got fields %s, want %s", rows[i].method, rows[i].target,
				 ro.fields ? ro.fields : "none", rows[i].allow ? "an Allow line" : "none");
	}
}

static void test_served_here(void **state)
{
	static const struct {
		bool admin_listen;     /* [admin] listen set */
		enum admin_resource r;
		bool on_proxy, on_admin;
	} rows[] = {
		{ false, ADMIN_METRICS, true, false },
		{ false, ADMIN_STATUS, true, false },
		{ false, ADMIN_PAC, true, false },
		{ true, ADMIN_METRICS, false, true },
		{ true, ADMIN_STATUS, false, true },
		{ true, ADMIN_PAC, true, false },
	};

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		struct config cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.nadmin_listen = rows[i].admin_listen ? 1 : 0;
		bool p = admin_served_here(&cfg, rows[i].r, false);
		bool a = admin_served_here(&cfg, rows[i].r, true);
		if (p != rows[i].on_proxy || a != rows[i].on_admin)
			fail_msg("listen %s, resource %d: got proxy port %d admin %d, want %d %d",
				 rows[i].admin_listen ? "set" : "unset", rows[i].r, p, a, rows[i].on_proxy,
				 rows[i].on_admin);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_served_here),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

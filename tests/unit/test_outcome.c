/* test_outcome.c - the outcome name table (src/proto/outcome.c), against the
 * RFC 9209 §2.3 registry of proxy error types written out here: every
 * outcome flagged as an error is a registered type (the name Proxy-Status
 * carries), every other outcome is not, names are unique, and the
 * upstream/denial/served flags are the ones the metrics and the Squid log
 * format rely on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "outcome.h"

static const char *const rfc9209[] = {
	"dns_timeout", "dns_error", "destination_not_found", "destination_unavailable",
	"destination_ip_prohibited", "destination_ip_unroutable", "connection_refused",
	"connection_terminated", "connection_timeout", "connection_read_timeout",
	"connection_write_timeout", "connection_limit_reached", "tls_protocol_error",
	"tls_certificate_error", "tls_alert_received", "http_request_error", "http_request_denied",
	"http_response_incomplete", "http_response_header_section_size",
	"http_response_header_size", "http_response_body_size", "http_response_trailer_section_size",
	"http_response_trailer_size", "http_response_transfer_coding",
	"http_response_content_coding", "http_response_timeout", "http_upgrade_failed",
	"http_protocol_error", "proxy_internal_response", "proxy_internal_error",
	"proxy_configuration_error", "proxy_loop_detected",
};

static bool registered(const char *name)
{
	for (size_t i = 0; i < sizeof(rfc9209) / sizeof(rfc9209[0]); i++)
		if (strcmp(rfc9209[i], name) == 0)
			return true;
	return false;
}

static void test_table(void **state)
{
	(void)state;
	assert_null(outcome_name(OUTCOME_NONE));
	assert_false(outcome_is_error(OUTCOME_NONE));
	assert_null(outcome_name(OUTCOME_COUNT));
	for (int o = 1; o < OUTCOME_COUNT; o++) {
		const char *n = outcome_name((enum outcome)o);
		assert_non_null(n);
		if (outcome_is_error((enum outcome)o) != registered(n))
			fail_msg("%s: error flag %d, registered %d", n, outcome_is_error((enum outcome)o),
				 registered(n));
		if (outcome_is_upstream_error((enum outcome)o) || outcome_is_denial((enum outcome)o))
			assert_true(outcome_is_error((enum outcome)o));
		for (int p = 1; p < o; p++)
			assert_string_not_equal(n, outcome_name((enum outcome)p));
	}
}

static void test_flags(void **state)
{
	(void)state;
	assert_true(outcome_is_denial(OUTCOME_HTTP_REQUEST_DENIED));
	assert_true(outcome_is_denial(OUTCOME_DESTINATION_IP_PROHIBITED));
	assert_false(outcome_is_denial(OUTCOME_HTTP_REQUEST_ERROR));
	assert_false(outcome_is_denial(OUTCOME_AUTH_REQUIRED));
	assert_true(outcome_is_cache_served(OUTCOME_HIT));
	assert_true(outcome_is_cache_served(OUTCOME_REFRESH));
	assert_true(outcome_is_cache_served(OUTCOME_STALE));
	assert_false(outcome_is_cache_served(OUTCOME_OK));
	static const enum outcome upstream[] = {
		OUTCOME_DNS_ERROR, OUTCOME_DNS_TIMEOUT, OUTCOME_CONNECTION_REFUSED,
		OUTCOME_CONNECTION_TIMEOUT, OUTCOME_DESTINATION_UNAVAILABLE,
		OUTCOME_HTTP_RESPONSE_TIMEOUT, OUTCOME_HTTP_PROTOCOL_ERROR,
		OUTCOME_HTTP_RESPONSE_INCOMPLETE, OUTCOME_TLS_CERTIFICATE_ERROR,
		OUTCOME_TLS_PROTOCOL_ERROR, OUTCOME_CONNECTION_TERMINATED,
	};
	size_t n = 0;
	for (int o = 0; o < OUTCOME_COUNT; o++)
		n += outcome_is_upstream_error((enum outcome)o);
	assert_int_equal(n, sizeof(upstream) / sizeof(upstream[0]));
	for (size_t i = 0; i < n; i++)
		assert_true(outcome_is_upstream_error(upstream[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

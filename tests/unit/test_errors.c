/* test_errors.c - proxy-generated responses (errors.c): Proxy-Status and the
 * HTML body carry the details whole, escaped, whatever their length. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <event2/buffer.h>

#include "errors.h"

/* The response as a NUL-terminated string (heap). */
static char *respond(int status, enum outcome error, const char *details, bool head_only)
{
	struct evbuffer *out = evbuffer_new();
	errors_respond(out, status, error, details, "hopcache", true, head_only);
	size_t n = evbuffer_get_length(out);
	char *s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(out, s, n);
	s[n] = '\0';
	evbuffer_free(out);
	return s;
}

static void test_long_details_whole(void **state)
{
	(void)state;
	/* 3000 bytes of details with every character that needs escaping */
	size_t n = 3000;
	char *details = malloc(n + 1), *sf = malloc(2 * n + 1), *html = malloc(6 * n + 1);
	size_t so = 0, ho = 0;
	for (size_t i = 0; i < n; i++) {
		char c = "ab\"<&\\>z"[i % 8];
		details[i] = c;
		if (c == '"' || c == '\\')
			sf[so++] = '\\';
		sf[so++] = c;
		const char *rep = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
				  : c == '"' ? "&quot;" : NULL;
		if (rep != NULL) {
			memcpy(html + ho, rep, strlen(rep));
			ho += strlen(rep);
		} else {
			html[ho++] = c;
		}
	}
	details[n] = sf[so] = html[ho] = '\0';
	char *r = respond(502, OUTCOME_DESTINATION_UNAVAILABLE, details, false);
	char *want = NULL;
	assert_true(asprintf(&want, "Proxy-Status: hopcache; error=destination_unavailable; "
				    "details=\"%s\"\r\n", sf) > 0);
	assert_non_null(strstr(r, want));
	assert_non_null(strstr(r, html));
	/* Content-Length is the body's length */
	const char *cl = strstr(r, "Content-Length: ");
	const char *body = strstr(r, "\r\n\r\n");
	assert_non_null(cl);
	assert_non_null(body);
	assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(body + 4));
	free(want);
	free(r);
	/* HEAD: the same Content-Length, no body */
	r = respond(502, OUTCOME_DESTINATION_UNAVAILABLE, details, true);
	body = strstr(r, "\r\n\r\n");
	assert_string_equal(body, "\r\n\r\n");
	free(r);
	free(details);
	free(sf);
	free(html);
}

static void test_proxy_status_forms(void **state)
{
	(void)state;
	char *r = respond(407, OUTCOME_NONE, "this proxy requires authentication", false);
	assert_non_null(strstr(r, "\r\nProxy-Status: hopcache; details=\"this proxy requires "
				  "authentication\"\r\n"));
	free(r);
	r = respond(502, OUTCOME_DESTINATION_UNAVAILABLE, NULL, false);
	assert_non_null(strstr(r, "\r\nProxy-Status: hopcache; error=destination_unavailable\r\n"));
	free(r);
	r = respond(404, OUTCOME_NONE, NULL, false);
	assert_null(strstr(r, "Proxy-Status"));
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_long_details_whole),
		cmocka_unit_test(test_proxy_status_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

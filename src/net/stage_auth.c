/* stage_auth.c - the authentication stage. */
#include "stage_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

struct auth_verdict stage_auth(struct worker *w, const struct http_field *cred,
			       const struct sockaddr *peer, const char *client_ip, char *user,
			       size_t userlen)
{
	const struct config *cfg = w->cfg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (auth_limiter_blocked(w->auth_limiter, peer, now.tv_sec)) {
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_BLOCKED);
		return (struct auth_verdict){ 429, "too many failed authentication attempts: "
						   "try again later" };
	}
	if (cred == NULL) {
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_MISSING);
		return (struct auth_verdict){ 407, "this proxy requires a user name and password" };
	}
	_Static_assert(AUTH_USER_MAX == 256 && AUTH_MAX_PASSWORD == 1024, "the message below");
	/* the name goes to the caller only once it is authenticated */
	char name[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
	int r = auth_parse_basic(cred->value, name, sizeof(name), pass, sizeof(pass));
	if (r == -2) {
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_MISSING);
		return (struct auth_verdict){ 407, "only the Basic scheme is supported" };
	}
	if (r != 0) {
		auth_limiter_fail(w->auth_limiter, peer, now.tv_sec);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_MALFORMED);
		return (struct auth_verdict){
			400, r == AUTH_PARSE_TOO_LONG ? "Proxy-Authorization: user name longer than "
							"255 or password longer than 1024 bytes"
						      : "malformed Proxy-Authorization"
		};
	}
	bool ok = auth_cache_hit(w->auth_cache, name, pass, now.tv_sec);
	if (!ok && htpasswd_verify(w->htpasswd, name, pass) == 1) {
		auth_cache_add(w->auth_cache, name, pass, now.tv_sec, (int64_t)cfg->auth_credential_ttl);
		ok = true;
	}
	explicit_bzero(pass, sizeof(pass));
	if (!ok) {
		auth_limiter_fail(w->auth_limiter, peer, now.tv_sec);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
		log_info("authentication failed for user \"%s\" from %s", name, client_ip);
		return (struct auth_verdict){ 407, "wrong user name or password" };
	}
	snprintf(user, userlen, "%s", name);
	metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_OK);
	return (struct auth_verdict){ 0, NULL };
}

char *stage_auth_refusal_fields(const struct worker *w, int status)
{
	const struct config *cfg = w->cfg;
	char *s = NULL;
	int n;
	if (status == 407)
		n = asprintf(&s, "Proxy-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
			     cfg->auth_realm);
	else if (status == 429)
		n = asprintf(&s, "Retry-After: %.0f\r\n", cfg->auth_failure_window);
	else
		n = (s = strdup("")) != NULL ? 0 : -1;
	return n < 0 ? NULL : s;
}

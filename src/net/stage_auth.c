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
#include "negotiate.h"
#include "worker.h"

/* The metrics label of a configured scheme. */
static enum metrics_auth_scheme scheme_label(int scheme)
{
	return scheme == CONFIG_AUTH_NEGOTIATE ? METRICS_AUTH_NEGOTIATE : METRICS_AUTH_BASIC;
}

static struct auth_verdict basic(struct worker *w, struct slice value, const struct sockaddr *peer,
				 const char *client_ip, char *user, size_t userlen, int64_t now)
{
	const struct config *cfg = w->cfg;
	_Static_assert(AUTH_USER_MAX == 256 && AUTH_MAX_PASSWORD == 1024, "the message below");
	/* the name goes to the caller only once it is authenticated */
	char name[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
	int r = auth_parse_basic(value, name, sizeof(name), pass, sizeof(pass));
	if (r != 0) {
		auth_limiter_fail(w->auth_limiter, peer, now);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_MALFORMED);
		return (struct auth_verdict){
			400, r == AUTH_PARSE_TOO_LONG ? "Proxy-Authorization: user name longer than "
							"255 or password longer than 1024 bytes"
						      : "malformed Proxy-Authorization"
		};
	}
	if (cfg->auth_basic_backend == CONFIG_BACKEND_LDAP) {
		/* the directory's caches, then the directory (stage_directory.c) */
		explicit_bzero(pass, sizeof(pass));
		return (struct auth_verdict){ AUTH_DIRECTORY, NULL };
	}
	bool ok = auth_cache_hit(w->auth_cache, name, pass, now);
	if (!ok && htpasswd_verify(w->htpasswd, name, pass) == 1) {
		auth_cache_add(w->auth_cache, name, pass, now, (int64_t)cfg->auth_credential_ttl);
		ok = true;
	}
	explicit_bzero(pass, sizeof(pass));
	if (!ok) {
		auth_limiter_fail(w->auth_limiter, peer, now);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
		log_info("authentication failed for user \"%s\" from %s", name, client_ip);
		return (struct auth_verdict){ 407, "wrong user name or password" };
	}
	snprintf(user, userlen, "%s", name);
	metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_OK);
	return (struct auth_verdict){ 0, NULL };
}

/* A Negotiate token: one GSS-API exchange (negotiate.c). */
static struct auth_verdict negotiate(struct worker *w, struct slice token,
				     const struct sockaddr *peer, const char *client_ip,
				     char *user, size_t userlen, struct auth_grant *g, int64_t now)
{
	struct negotiate_grant ng;
	char why[512];
	enum negotiate_result r = negotiate_accept(token, &ng, why, sizeof(why));
	if (r == NEGOTIATE_ERROR)
		return (struct auth_verdict){ 500, "out of memory" };
	if (r != NEGOTIATE_OK) {
		auth_limiter_fail(w->auth_limiter, peer, now);
		metrics_auth(w->metrics, METRICS_AUTH_NEGOTIATE,
			     r == NEGOTIATE_MALFORMED ? METRICS_AUTH_MALFORMED : METRICS_AUTH_FAILED);
		log_info("Negotiate authentication failed from %s: %s", client_ip, why);
		return (struct auth_verdict){ 407, r == NEGOTIATE_MALFORMED
							   ? "malformed Negotiate token"
							   : "Kerberos ticket not accepted" };
	}
	/* the realm follows the last '@' (an enterprise name escapes its own) */
	char *at = strrchr(ng.name, '@');
	if (w->cfg->auth_strip_realm && at != NULL)
		*at = '\0';
	if (strlen(ng.name) >= userlen) {
		log_info("Negotiate authentication from %s: the name %.64s... is longer than %zu "
			 "bytes", client_ip, ng.name, userlen - 1);
		negotiate_grant_clear(&ng);
		metrics_auth(w->metrics, METRICS_AUTH_NEGOTIATE, METRICS_AUTH_FAILED);
		return (struct auth_verdict){ 407, "authenticated name longer than 255 bytes" };
	}
	if (ng.reply != NULL && asprintf(&g->reply, "Proxy-Authenticate: Negotiate %s\r\n",
					 ng.reply) < 0) {
		g->reply = NULL;
		negotiate_grant_clear(&ng);
		return (struct auth_verdict){ 500, "out of memory" };
	}
	snprintf(user, userlen, "%s", ng.name);
	g->negotiate = true;
	g->lifetime = ng.lifetime;
	negotiate_grant_clear(&ng);
	metrics_auth(w->metrics, METRICS_AUTH_NEGOTIATE, METRICS_AUTH_OK);
	return (struct auth_verdict){ 0, NULL };
}

struct auth_verdict stage_auth(struct worker *w, const struct http_field *cred,
			       const struct sockaddr *peer, const char *client_ip, char *user,
			       size_t userlen, struct auth_grant *g)
{
	const struct config *cfg = w->cfg;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	memset(g, 0, sizeof(*g));
	struct slice scheme = { 0 }, param = { 0 };
	bool split = cred != NULL && auth_credentials_split(cred->value, &scheme, &param);
	int which = slice_eq_ci(scheme, "Basic")       ? CONFIG_AUTH_BASIC
		    : slice_eq_ci(scheme, "Negotiate") ? CONFIG_AUTH_NEGOTIATE
						       : CONFIG_AUTH_NONE;
	if (!config_auth_offers(cfg, which))
		which = CONFIG_AUTH_NONE;
	enum metrics_auth_scheme label = scheme_label(which != CONFIG_AUTH_NONE ? which
										: cfg->auth_schemes[0]);
	if (auth_limiter_blocked(w->auth_limiter, peer, now.tv_sec)) {
		metrics_auth(w->metrics, label, METRICS_AUTH_BLOCKED);
		return (struct auth_verdict){ 429, "too many failed authentication attempts: "
						   "try again later" };
	}
	if (cred == NULL) {
		metrics_auth(w->metrics, label, METRICS_AUTH_MISSING);
		return (struct auth_verdict){ 407, "this proxy requires authentication" };
	}
	if (which == CONFIG_AUTH_NONE) {
		metrics_auth(w->metrics, label, METRICS_AUTH_MISSING);
		return (struct auth_verdict){
			407, config_auth_offers(cfg, CONFIG_AUTH_NEGOTIATE)
				     ? (config_auth_offers(cfg, CONFIG_AUTH_BASIC)
						? "only the Negotiate and Basic schemes are supported"
						: "only the Negotiate scheme is supported")
				     : "only the Basic scheme is supported"
		};
	}
	if (which == CONFIG_AUTH_BASIC)
		return basic(w, cred->value, peer, client_ip, user, userlen, now.tv_sec);
	if (!split)
		param.len = 0; /* "Negotiate" followed by something that is not a space */
	return negotiate(w, param, peer, client_ip, user, userlen, g, now.tv_sec);
}

char *stage_auth_refusal_fields(const struct worker *w, int status)
{
	const struct config *cfg = w->cfg;
	char *s = NULL;
	int n;
	if (status == 407) {
		char *basic = NULL;
		if (config_auth_offers(cfg, CONFIG_AUTH_BASIC) &&
		    asprintf(&basic, "Proxy-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
			     cfg->auth_realm) < 0)
			return NULL;
		const char *neg = config_auth_offers(cfg, CONFIG_AUTH_NEGOTIATE)
					  ? "Proxy-Authenticate: Negotiate\r\n" : "";
		bool neg_first = cfg->auth_schemes[0] == CONFIG_AUTH_NEGOTIATE;
		n = asprintf(&s, "%s%s%s", neg_first ? neg : "", basic != NULL ? basic : "",
			     neg_first ? "" : neg);
		free(basic);
	} else if (status == 429) {
		n = asprintf(&s, "Retry-After: %.0f\r\n", cfg->auth_failure_window);
	} else {
		n = (s = strdup("")) != NULL ? 0 : -1;
	}
	return n < 0 ? NULL : s;
}

/* stage_policy.c - the policy stage: acl.c's rules applied to a request. */
#include "stage_policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "tls_peek.h"
#include "worker.h"

/* What the group callback sees: the worker (the groups file, the
 * directory groups), the request (the user's directory groups, once
 * known), and whether a rule asked for a directory group not known yet. */
struct group_ctx {
	const struct worker *w;
	const struct request *rq;
	bool *dir_missing;
};

/* Group membership for rules with groups: the [auth] groups file's, else a
 * directory group's ([ldap]; config.c made the list), from the request's
 * groups once stage_directory.c has resolved them. */
static bool in_group(const void *ctx, const char *group, const char *user)
{
	const struct group_ctx *g = ctx;
	const struct worker *w = g->w;
	if (w->groups != NULL && groups_exists(w->groups, group))
		return groups_member(w->groups, group, user);
	for (size_t i = 0; i < w->cfg->ndir_groups; i++) {
		if (strcmp(w->cfg->dir_groups[i], group) != 0)
			continue;
		if (g->rq->dir_resolved)
			return dir_member_has(&g->rq->dir_member, i);
		*g->dir_missing = true;
		return false;
	}
	return false;
}

/* Record what decided, for the access log's RULE field. */
static void rule_label(struct request *rq, const struct acl_rule *rule, enum acl_reason reason)
{
	snprintf(rq->rule, sizeof(rq->rule), "%s",
		 rule != NULL ? rule->name
		 : reason == ACL_REASON_DEFAULT ? "default"
		 : reason == ACL_REASON_PRIVATE_DST ? "private_destinations" : "-");
	rq->rule_reason = reason;
}

/* Run acl_check on the request (dst NULL in phase one; sni for the CONNECT
 * server-name check). The URL for url_regex rules and the whole method are
 * copied into a stack buffer, or the heap when long. */
static enum acl_result policy_run(const struct worker *w, const struct sockaddr *peer,
				  struct request *rq, const char *sni, const struct sockaddr *dst,
				  const struct acl_rule **rule, enum acl_reason *reason,
				  bool *dir_missing)
{
	*dir_missing = false;
	struct group_ctx g = { w, rq, dir_missing };
	char host[256], small[2048];
	size_t ulen = rq->req.target.len + 1, mlen = rq->req.method.len + 1;
	char *url = ulen + mlen <= sizeof(small) ? small : malloc(ulen + mlen);
	if (url == NULL)
		return ACL_DENY;
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	slice_copy(host, sizeof(host), rq->target.host);
	bool connect = slice_eq(rq->req.method, "CONNECT");
	slice_copy(url, ulen, rq->req.target);
	/* the method whole (method_str, the log's, may be cut): a rule's
	 * methods must not match a longer method by its prefix */
	slice_copy(url + ulen, mlen, rq->req.method);
	struct acl_request r = {
		.client = peer,
		.user = rq->user[0] ? rq->user : NULL,
		.method = url + ulen,
		.host = sni != NULL ? sni : host,
		.port = rq->target.port,
		.url = connect || sni != NULL ? NULL : url,
		.weekday = tm.tm_wday,
		.minute = tm.tm_hour * 60 + tm.tm_min,
		.dst = dst,
		.in_group = in_group,
		.group_ctx = &g,
	};
	enum acl_result res = acl_check_reason(w->acl, &r, rule, reason);
	if (url != small)
		free(url);
	return res;
}

/* Must the user's directory groups be known before phase one's decision
 * stands? When the walk asked for one, and when later checks (phase two
 * per address, the CONNECT server name) may walk on to rules that do. */
static bool groups_needed(const struct worker *w, const struct request *rq, enum acl_result res,
			  bool dir_missing)
{
	if (rq->dir_resolved || rq->user[0] == '\0' || w->cfg->ndir_groups == 0)
		return false;
	return dir_missing || res == ACL_NEED_DST ||
	       (w->cfg->acl_connect_sni != CONFIG_SNI_OFF && slice_eq(rq->req.method, "CONNECT"));
}

enum policy_verdict stage_policy_check(const struct worker *w, const struct sockaddr *peer,
				       struct request *rq, struct policy_refusal *out)
{
	rq->policy_need_dst = false;
	snprintf(rq->rule, sizeof(rq->rule), "-");
	if (w->acl == NULL)
		return POLICY_GO;
	const struct acl_rule *rule = NULL;
	enum acl_reason reason = ACL_REASON_DEFAULT;
	bool dir_missing;
	enum acl_result res = policy_run(w, peer, rq, NULL, NULL, &rule, &reason, &dir_missing);
	if (groups_needed(w, rq, res, dir_missing))
		return POLICY_NEED_GROUPS;
	if (res == ACL_NEED_DST) {
		rq->policy_need_dst = true;
		return POLICY_GO;
	}
	rule_label(rq, rule, reason);
	if (res != ACL_DENY)
		return POLICY_GO;
	/* 403 naming the rule (RFC 9209 Proxy-Status), before any connection
	 * or tunnel is opened */
	out->status = 403;
	out->error = reason == ACL_REASON_PRIVATE_DST ? OUTCOME_DESTINATION_IP_PROHIBITED
						      : OUTCOME_HTTP_REQUEST_DENIED;
	if (rule != NULL)
		snprintf(out->details, sizeof(out->details), "denied by rule %s", rule->name);
	else
		snprintf(out->details, sizeof(out->details), "denied: %s", acl_reason_str(reason));
	return POLICY_REFUSED;
}

bool stage_policy_filter(const struct worker *w, const struct sockaddr *peer, struct request *rq,
			 const struct sockaddr *dst)
{
	if (!rq->policy_need_dst)
		return true;
	const struct acl_rule *rule = NULL;
	enum acl_reason reason = ACL_REASON_DEFAULT;
	bool dir_missing;
	enum acl_result res = policy_run(w, peer, rq, NULL, dst, &rule, &reason, &dir_missing);
	rule_label(rq, rule, reason);
	/* phase one resolved the groups whenever phase two could ask: a group
	 * still unknown is never an allow */
	return res == ACL_ALLOW && !dir_missing;
}

void stage_policy_dst_refusal(const struct request *rq, struct policy_refusal *out)
{
	out->status = 403;
	bool private_dst = rq->rule_reason == ACL_REASON_PRIVATE_DST;
	out->error = private_dst ? OUTCOME_DESTINATION_IP_PROHIBITED : OUTCOME_HTTP_REQUEST_DENIED;
	if (private_dst)
		snprintf(out->details, sizeof(out->details), "denied: private destination");
	else if (rq->rule_reason == ACL_REASON_DEFAULT)
		snprintf(out->details, sizeof(out->details), "denied: default");
	else
		snprintf(out->details, sizeof(out->details), "denied by rule %s", rq->rule);
}

enum sni_verdict stage_policy_sni(const struct worker *w, const struct sockaddr *peer,
				  struct request *rq, const uint8_t *buf, size_t len, char *why,
				  size_t whylen)
{
	char sni[256];
	enum tls_peek_result r = tls_peek_sni(buf, len, sni, sizeof(sni));
	bool match = w->cfg->acl_connect_sni == CONFIG_SNI_MATCH;
	/* refusals that are the check's own, not a rule's */
	const char *own = NULL;
	if (r == TLS_PEEK_NEED_MORE) {
		if (len < SNI_PEEK_MAX)
			return SNI_NEED_MORE;
		own = "ClientHello too large";
	}
	char host[256];
	slice_copy(host, sizeof(host), rq->target.host);
	size_t hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		host[hl - 1] = '\0';
	struct in_addr a4;
	/* a client that CONNECTs to an address sends no server name */
	bool literal = rq->target.ipv6_literal || acl_parse_ipv4_loose(host, &a4) != 0;
	if (own == NULL && r != TLS_PEEK_SNI) {
		if (match && (r != TLS_PEEK_NO_SNI || !literal))
			own = r == TLS_PEEK_NO_SNI ? "ClientHello without a server name"
						   : "not a TLS ClientHello";
	} else if (own == NULL) {
		if (match && !literal && strcasecmp(host, sni) != 0) {
			snprintf(why, whylen, "server name %s does not match the CONNECT host", sni);
			snprintf(rq->rule, sizeof(rq->rule), "connect_sni");
			return SNI_REFUSE;
		}
		const struct acl_rule *rule = NULL;
		enum acl_reason reason = ACL_REASON_DEFAULT;
		bool dir_missing = false;
		if (w->acl != NULL &&
		    (policy_run(w, peer, rq, sni, NULL, &rule, &reason, &dir_missing) == ACL_DENY ||
		     dir_missing)) {
			rule_label(rq, rule, reason);
			snprintf(why, whylen, "server name %s denied by %s", sni, rq->rule);
			return SNI_REFUSE;
		}
	}
	if (own != NULL) {
		snprintf(why, whylen, "%s", own);
		snprintf(rq->rule, sizeof(rq->rule), "connect_sni");
		return SNI_REFUSE;
	}
	return SNI_PASS;
}

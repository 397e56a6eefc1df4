/* acl.h - egress policy: ordered rules, first match wins (pure, no I/O).
 *
 * A rule has optional matchers; every matcher present must match (AND), and
 * within one matcher's list any element may match (OR). A rule with no
 * matcher matches everything. Rules are tried in order; the first that
 * matches decides; when none matches, the default action decides.
 *
 * Two phases, because the destination address is known only after DNS:
 *
 *   res = acl_check(acl, &req, &rule);            req.dst == NULL
 *   ACL_DENY      -> refuse now (no DNS needed)
 *   ACL_ALLOW     -> connect to any resolved address
 *                    (only possible with private_destinations = allow)
 *   ACL_NEED_DST  -> resolve, then for each address the proxy would connect
 *                    to, set req.dst and call acl_check again: it returns
 *                    ACL_ALLOW or ACL_DENY; connect only to allowed addresses.
 *
 * Phase one returns ACL_NEED_DST when the walk reaches a rule whose other
 * matchers match and that has a dst matcher, or when the decision would be
 * ALLOW while private_destinations = deny (the address must be vetted).
 * When host is an IP literal (including the loose IPv4 spellings that
 * inet_aton and browsers accept: "2130706433", "0177.0.0.1", "0x7f.1",
 * "127.1", and "[::ffff:127.0.0.1]"), it is the destination: phase one is
 * final.
 *
 * With private_destinations = deny a private destination (see
 * acl_private_address) is denied before any rule is consulted:
 * ACL_DENY, *decided = NULL, reason ACL_REASON_PRIVATE_DST.
 */
#ifndef HOPCACHE_ACL_H
#define HOPCACHE_ACL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"
#include "domainset.h"

enum acl_action {
	ACL_ACTION_DENY = 0,
	ACL_ACTION_ALLOW = 1,
};

enum acl_result {
	ACL_DENY = 0,
	ACL_ALLOW = 1,
	ACL_NEED_DST = 2,
};

/* Why acl_check decided as it did (for the access log and the 403 page). */
enum acl_reason {
	ACL_REASON_RULE = 0,     /* *decided names the rule */
	ACL_REASON_DEFAULT,      /* no rule matched: [acl] default */
	ACL_REASON_PRIVATE_DST,  /* private destination, private_destinations = deny */
	ACL_REASON_BAD_HOST,     /* host is not a valid name nor address literal */
	ACL_REASON_NEED_DST,     /* ACL_NEED_DST: resolve and ask again */
};

/* An inclusive port range; a single port has lo == hi. */
struct acl_port_range {
	uint16_t lo, hi;
};

/* A weekly window: the days it starts on and a time span in local minutes.
 * start < end: [start, end) on each listed day. start > end wraps midnight:
 * [start, 24:00) on a listed day and [00:00, end) on the day after it, so
 * "Fri 22:00-06:00" holds Friday 23:00 and Saturday 03:00, not Friday 03:00.
 * A window with days only covers the whole day (start 0, end 1440). */
struct acl_time {
	uint8_t days;      /* bit d set for weekday d, 0 = Sunday .. 6 = Saturday */
	uint16_t start;    /* 0..1439 */
	uint16_t end;      /* 1..1440, != start */
};

/* A compiled URL regular expression (PCRE2); opaque. */
struct acl_regex;

/* One rule. Absent matchers are NULL / 0 / false. The rule owns everything it
 * points to (acl_rule_free releases it); the parse helpers below allocate in
 * the form these members expect. */
struct acl_rule {
	char *name;                      /* "staff" for [rule.staff] */
	enum acl_action action;
	struct cidr *src;                /* client address in any of these */
	size_t n_src;
	char **users;                    /* authenticated user is one of these */
	size_t n_users;
	char **groups;                   /* user is in one of these (acl_request.in_group) */
	size_t n_groups;
	char **methods;                  /* request method (case-sensitive, stored uppercase) */
	size_t n_methods;
	struct domainset *domains;       /* inline list: exact names and .suffixes */
	struct domainset *domain_file;   /* file: names and their subdomains */
	char *domain_file_path;          /* ... and where it was read from */
	struct cidr *dst;                /* destination address actually connected to */
	size_t n_dst;
	struct acl_port_range *ports;    /* destination port in any range */
	size_t n_ports;
	struct acl_regex *url_regex;     /* plain HTTP absolute URL; never CONNECT */
	bool has_time;
	struct acl_time time;            /* local weekday/time window */
};

/* The policy: rules in evaluation order, the default action and the private
 * destination policy. Owns its rules (acl_free). */
struct acl {
	struct acl_rule *rules;
	size_t n_rules;
	enum acl_action default_action;        /* [acl] default, deny unless set */
	enum acl_action private_destinations;  /* deny (the default) or allow */
};

/* What acl_check looks at. All strings are NUL-terminated; none is kept. */
struct acl_request {
	const struct sockaddr *client;   /* client address (v4 or v6) */
	const char *user;                /* authenticated user, NULL when none */
	const char *method;              /* "GET", "CONNECT", ... */
	const char *host;                /* as in the request: name (any case, trailing dot
					  * allowed) or address literal ("[::1]" or "::1") */
	uint16_t port;                   /* destination port */
	const char *url;                 /* absolute URL of a plain request; NULL for CONNECT */
	int weekday;                     /* local time: 0 = Sunday .. 6 = Saturday */
	int minute;                      /* local time: 0..1439 minutes after midnight */
	const struct sockaddr *dst;      /* resolved address to connect to; NULL before DNS */
	/* group membership, asked only by rules with groups; NULL = member of none */
	bool (*in_group)(const void *ctx, const char *group, const char *user);
	const void *group_ctx;
};

/* Decide a request. See the top of this file for the two phases. *decided
 * (when decided is not NULL) is set to the deciding rule, or NULL for the
 * default action, a private destination, a bad host or ACL_NEED_DST. */
enum acl_result acl_check(const struct acl *a, const struct acl_request *r,
			  const struct acl_rule **decided);

/* acl_check that also says why (reason may be NULL). */
enum acl_result acl_check_reason(const struct acl *a, const struct acl_request *r,
				 const struct acl_rule **decided, enum acl_reason *reason);

/* Short text for a reason: "rule", "default", "private destination", ... */
const char *acl_reason_str(enum acl_reason reason);

/* Loopback (127/8, ::1), RFC 1918, CGNAT 100.64/10, link-local (169.254/16,
 * fe80::/10), ULA fc00::/7, site-local fec0::/10, unspecified (0/8, ::),
 * multicast (224/4, ff00::/8), reserved 240/4 incl. 255.255.255.255, and the
 * local-use NAT64 prefix 64:ff9b:1::/48. IPv6 forms that embed an IPv4
 * address are judged by it: mapped ::ffff:0:0/96, compatible ::/96,
 * SIIT ::ffff:0:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16. Any family other
 * than AF_INET/AF_INET6 counts as private. */
bool acl_private_address(const struct sockaddr *sa);

/* Recognise the IPv4 spellings of the WHATWG URL host parser and inet_aton:
 * 1 to 4 dot-separated parts (one trailing dot allowed), each decimal, octal
 * (leading 0) or hex (0x); the last part fills the remaining bytes
 * ("127.1", "2130706433").
 * Returns 1 for a canonical dotted quad, 2 for any other (loose) spelling
 * with *out set, 0 when host is not an IPv4 spelling (a name: its last label
 * is not a number), -1 when it looks numeric but is invalid ("1.2.3.256",
 * "0x1g.1", "1.2.3.4.5") and must be refused. */
int acl_parse_ipv4_loose(const char *host, struct in_addr *out);

/* Parse helpers for the configuration. Each returns 0, or -1 with
 * "expected ..., got ..." in err. Lists are separated by commas and/or
 * whitespace; an empty list is an error. */
int acl_parse_action(const char *s, enum acl_action *out, char *err, size_t errlen);
int acl_parse_ports(const char *s, struct acl_port_range **out, size_t *n, char *err,
		    size_t errlen);
int acl_parse_methods(const char *s, char ***out, size_t *n, char *err, size_t errlen);
int acl_parse_names(const char *s, char ***out, size_t *n, char *err, size_t errlen);
int acl_parse_cidrs(const char *s, struct cidr **out, size_t *n, char *err, size_t errlen);
int acl_parse_domains(const char *s, struct domainset **out, char *err, size_t errlen);
int acl_parse_time(const char *s, struct acl_time *out, char *err, size_t errlen);
int acl_parse_url_regex(const char *s, struct acl_regex **out, char *err, size_t errlen);

void acl_regex_free(struct acl_regex *re);
void acl_names_free(char **names, size_t n);

/* Release what a rule owns and zero it (the struct itself is the caller's). */
void acl_rule_free(struct acl_rule *rule);

/* Release the rules and zero the acl. */
void acl_free(struct acl *a);

#endif

/* stage_policy.h - the policy stage (acl.c's rules applied to a request).
 *
 * Phase one decides what can be decided without DNS; a decision that needs
 * the destination address is finished per resolved address (phase two)
 * before connecting. A CONNECT to a port [acl] connect_sni covers is checked
 * once more against the server name of the client's TLS ClientHello. Each
 * call records what decided in rq->rule (the access log's RULE field) and
 * returns a decision; the connection (conn.c) answers. */
#ifndef HOPCACHE_STAGE_POLICY_H
#define HOPCACHE_STAGE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "acl.h"
#include "outcome.h"

struct worker;
struct request;

/* A refusal: the status and Proxy-Status error type to answer, and why. */
struct policy_refusal {
	int status;
	enum outcome error;    /* RFC 9209 type: http_request_denied, destination_ip_prohibited */
	char details[160];
};

/* What phase one says. */
enum policy_verdict {
	POLICY_GO,          /* the request may go on (rq->policy_need_dst says whether
			       phase two must vet each address) */
	POLICY_REFUSED,     /* *out says how to refuse it */
	POLICY_NEED_GROUPS, /* the user's directory groups first (stage_directory.c),
			       then ask again: a rule reached names one, or phase two or
			       the CONNECT server-name check may reach one */
};

/* Phase one. */
enum policy_verdict stage_policy_check(const struct worker *w, const struct sockaddr *peer,
				       struct request *rq, struct policy_refusal *out);

/* Phase two: may the proxy connect to this resolved address? */
bool stage_policy_filter(const struct worker *w, const struct sockaddr *peer, struct request *rq,
			 const struct sockaddr *dst);

/* The refusal for a request every resolved address of which phase two
 * refused (the rule it recorded says which). */
void stage_policy_dst_refusal(const struct request *rq, struct policy_refusal *out);

/* The CONNECT server-name check's verdicts. */
enum sni_verdict {
	SNI_NEED_MORE, /* the ClientHello is not complete yet */
	SNI_PASS,      /* open the tunnel */
	SNI_REFUSE,    /* close it (why says why) */
};

/* The most of a ClientHello read before giving up on its server name
 * (tls_peek.c reassembles a hello of up to 16 KiB over several records). */
#define SNI_PEEK_MAX (16384 + 4 * 5 + 64)

/* Check the first len bytes the client sent in a CONNECT tunnel (at most
 * SNI_PEEK_MAX; len == SNI_PEEK_MAX and still incomplete is refused). */
enum sni_verdict stage_policy_sni(const struct worker *w, const struct sockaddr *peer,
				  struct request *rq, const uint8_t *buf, size_t len, char *why,
				  size_t whylen);

#endif

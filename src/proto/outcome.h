/* outcome.h - how a request ended: one enum and one name table.
 *
 * The name is what the access log's OUTCOME field and, for the RFC 9209 error
 * types, Proxy-Status's error= parameter say; the code compares enums and
 * asks the table's flags, never strings. */
#ifndef HOPCACHE_OUTCOME_H
#define HOPCACHE_OUTCOME_H

#include <stdbool.h>

enum outcome {
	OUTCOME_NONE = 0, /* not decided yet ("-" in the log; no Proxy-Status) */
	OUTCOME_OK,
	OUTCOME_HIT,           /* served from the cache, fresh */
	OUTCOME_REFRESH,       /* ... after a 304 from the origin */
	OUTCOME_STALE,         /* ... stale (stale-if-error, stale-while-revalidate) */
	OUTCOME_TUNNEL,        /* a CONNECT tunnel */
	OUTCOME_PURGED,        /* PURGE deleted a stored response */
	OUTCOME_AUTH_REQUIRED, /* 407 */
	OUTCOME_AUTH_BLOCKED,  /* 429: too many failed authentications */
	OUTCOME_CLIENT_CLOSED, /* the client went away mid-request */
	/* RFC 9209 §2.3 proxy error types */
	OUTCOME_DNS_ERROR,
	OUTCOME_DNS_TIMEOUT,
	OUTCOME_DESTINATION_UNAVAILABLE,
	OUTCOME_DESTINATION_IP_PROHIBITED,
	OUTCOME_CONNECTION_REFUSED,
	OUTCOME_CONNECTION_TERMINATED,
	OUTCOME_CONNECTION_TIMEOUT,
	OUTCOME_CONNECTION_READ_TIMEOUT,
	OUTCOME_CONNECTION_LIMIT_REACHED, /* a per-client or worker connection limit */
	OUTCOME_TLS_PROTOCOL_ERROR,
	OUTCOME_TLS_CERTIFICATE_ERROR,
	OUTCOME_HTTP_REQUEST_ERROR,
	OUTCOME_HTTP_REQUEST_DENIED,
	OUTCOME_HTTP_RESPONSE_INCOMPLETE,
	OUTCOME_HTTP_RESPONSE_HEADER_SECTION_SIZE,
	OUTCOME_HTTP_RESPONSE_TRAILER_SECTION_SIZE,
	OUTCOME_HTTP_RESPONSE_TRAILER_SIZE,
	OUTCOME_HTTP_RESPONSE_TRANSFER_CODING,
	OUTCOME_HTTP_RESPONSE_TIMEOUT,
	OUTCOME_HTTP_UPGRADE_FAILED,
	OUTCOME_HTTP_PROTOCOL_ERROR,
	OUTCOME_PROXY_INTERNAL_ERROR,
	OUTCOME_COUNT
};

/* The outcome's name ("OK", "HIT", "dns_error", ...); NULL for NONE. */
const char *outcome_name(enum outcome o);

/* An RFC 9209 error type (said in Proxy-Status)? */
bool outcome_is_error(enum outcome o);

/* An error the upstream side caused (counted by type in the metrics)? */
bool outcome_is_upstream_error(enum outcome o);

/* A refusal by the policy (counted as a denial; the log's TCP_DENIED)? */
bool outcome_is_denial(enum outcome o);

/* Served from the store (HIT, REFRESH, STALE)? */
bool outcome_is_cache_served(enum outcome o);

#endif

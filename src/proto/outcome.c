/* outcome.c - the outcome name table. */
#include "outcome.h"

#include <stddef.h>

enum { F_ERROR = 1, F_UPSTREAM = 2, F_DENIAL = 4, F_SERVED = 8 };

static const struct {
	const char *name;
	unsigned flags;
} table[OUTCOME_COUNT] = {
	[OUTCOME_NONE] = { NULL, 0 },
	[OUTCOME_OK] = { "OK", 0 },
	[OUTCOME_HIT] = { "HIT", F_SERVED },
	[OUTCOME_REFRESH] = { "REFRESH", F_SERVED },
	[OUTCOME_STALE] = { "STALE", F_SERVED },
	[OUTCOME_TUNNEL] = { "TUNNEL", 0 },
	[OUTCOME_PURGED] = { "PURGED", 0 },
	[OUTCOME_AUTH_REQUIRED] = { "AUTH_REQUIRED", 0 },
	[OUTCOME_AUTH_BLOCKED] = { "AUTH_BLOCKED", 0 },
	[OUTCOME_CLIENT_CLOSED] = { "client_closed", 0 },
	[OUTCOME_DNS_ERROR] = { "dns_error", F_ERROR | F_UPSTREAM },
	[OUTCOME_DNS_TIMEOUT] = { "dns_timeout", F_ERROR | F_UPSTREAM },
	[OUTCOME_DESTINATION_UNAVAILABLE] = { "destination_unavailable", F_ERROR | F_UPSTREAM },
	[OUTCOME_DESTINATION_IP_PROHIBITED] = { "destination_ip_prohibited", F_ERROR | F_DENIAL },
	[OUTCOME_CONNECTION_REFUSED] = { "connection_refused", F_ERROR | F_UPSTREAM },
	[OUTCOME_CONNECTION_TERMINATED] = { "connection_terminated", F_ERROR | F_UPSTREAM },
	[OUTCOME_CONNECTION_TIMEOUT] = { "connection_timeout", F_ERROR | F_UPSTREAM },
	[OUTCOME_CONNECTION_READ_TIMEOUT] = { "connection_read_timeout", F_ERROR },
	[OUTCOME_CONNECTION_LIMIT_REACHED] = { "connection_limit_reached", F_ERROR },
	[OUTCOME_TLS_PROTOCOL_ERROR] = { "tls_protocol_error", F_ERROR | F_UPSTREAM },
	[OUTCOME_TLS_CERTIFICATE_ERROR] = { "tls_certificate_error", F_ERROR | F_UPSTREAM },
	[OUTCOME_HTTP_REQUEST_ERROR] = { "http_request_error", F_ERROR },
	[OUTCOME_HTTP_REQUEST_DENIED] = { "http_request_denied", F_ERROR | F_DENIAL },
	[OUTCOME_HTTP_RESPONSE_INCOMPLETE] = { "http_response_incomplete", F_ERROR | F_UPSTREAM },
	[OUTCOME_HTTP_RESPONSE_HEADER_SECTION_SIZE] = { "http_response_header_section_size",
							F_ERROR },
	[OUTCOME_HTTP_RESPONSE_TRAILER_SECTION_SIZE] = { "http_response_trailer_section_size",
							 F_ERROR },
	[OUTCOME_HTTP_RESPONSE_TRAILER_SIZE] = { "http_response_trailer_size", F_ERROR },
	[OUTCOME_HTTP_RESPONSE_TRANSFER_CODING] = { "http_response_transfer_coding", F_ERROR },
	[OUTCOME_HTTP_RESPONSE_TIMEOUT] = { "http_response_timeout", F_ERROR | F_UPSTREAM },
	[OUTCOME_HTTP_UPGRADE_FAILED] = { "http_upgrade_failed", F_ERROR },
	[OUTCOME_HTTP_PROTOCOL_ERROR] = { "http_protocol_error", F_ERROR | F_UPSTREAM },
	[OUTCOME_PROXY_INTERNAL_ERROR] = { "proxy_internal_error", F_ERROR },
};

static unsigned flags(enum outcome o)
{
	return (unsigned)o < OUTCOME_COUNT ? table[o].flags : 0;
}

const char *outcome_name(enum outcome o)
{
	return (unsigned)o < OUTCOME_COUNT ? table[o].name : NULL;
}

bool outcome_is_error(enum outcome o)
{
	return flags(o) & F_ERROR;
}

bool outcome_is_upstream_error(enum outcome o)
{
	return flags(o) & F_UPSTREAM;
}

bool outcome_is_denial(enum outcome o)
{
	return flags(o) & F_DENIAL;
}

bool outcome_is_cache_served(enum outcome o)
{
	return flags(o) & F_SERVED;
}

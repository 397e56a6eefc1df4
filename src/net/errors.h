/* errors.h - responses the proxy generates itself: a status, a short HTML
 * body and a Proxy-Status field (RFC 9209) naming the error. */
#ifndef HOPCACHE_ERRORS_H
#define HOPCACHE_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#include "outcome.h"

struct evbuffer;

/* The reason phrase of a status code this proxy sends. */
const char *errors_reason(int status);

/* Append a complete proxy-generated response to out. `error` is the RFC 9209
 * error type (OUTCOME_NONE for none), `details` an optional human-readable
 * detail (NULL for none; quoted safely): Proxy-Status carries whichever of
 * them there are. `via` is our pseudonym; `close` adds "Connection: close".
 * `head_only` omits the body (HEAD requests). */
void errors_respond(struct evbuffer *out, int status, enum outcome error, const char *details,
		    const char *via, bool close, bool head_only);

/* The same with extra header lines ("Name: value\r\n"...; NULL for none). */
void errors_respond_fields(struct evbuffer *out, int status, enum outcome error,
			   const char *details, const char *via, bool close, bool head_only,
			   const char *fields);

#endif

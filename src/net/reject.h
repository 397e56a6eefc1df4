/* reject.h - answer a connection the worker will not serve (a per-client
 * connection limit, a full worker) without giving it a client connection:
 * one short proxy-generated response written at once, then a lingering close
 * (the socket half-closed, whatever the client sends read and dropped for up
 * to a second), so the client reads the answer instead of a reset. Each
 * worker lingers on at most REJECT_MAX sockets; beyond that, and on the
 * HTTPS port (where an answer costs a TLS handshake), the socket is closed
 * at once. */
#ifndef HOPCACHE_REJECT_H
#define HOPCACHE_REJECT_H

#include "outcome.h"

#define REJECT_MAX 256
#define REJECT_LINGER 1.0 /* seconds */

struct worker;

/* Answer status (with the RFC 9209 error type, details and extra fields,
 * as errors_respond_fields takes them) on fd and close it, lingering. */
void reject_answer(struct worker *w, int fd, int status, enum outcome error, const char *details,
		   const char *fields);

/* Close every lingering socket (the worker is stopping). */
void reject_stop(struct worker *w);

#endif

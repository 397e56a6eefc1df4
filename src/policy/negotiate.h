/* negotiate.h - Kerberos proxy authentication with the Negotiate scheme
 * (RFC 4559) through MIT krb5's GSS-API: the service keys and the
 * acceptance of a client's token.
 *
 * The master reads the keytab file when it loads the configuration
 * (negotiate_keytab_load, before and after it drops privileges, like the TLS
 * key) and copies the keys into an in-memory keytab that the workers inherit
 * when they are forked: a worker never opens the file. Each worker then
 * registers that keytab as its acceptor identity (negotiate_worker_init)
 * and accepts tokens with it (negotiate_accept). GSS-API checks each
 * authenticator against its replay cache, a file shared by every worker. */
#ifndef HOPCACHE_NEGOTIATE_H
#define HOPCACHE_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "slice.h"

/* The longest token accepted, in base64 characters. A Kerberos AP-REQ with
 * a large PAC (Active Directory users in many groups) runs to ~12 KiB of
 * base64; the request head limit bounds it anyway. */
#define NEGOTIATE_TOKEN_MAX 65536

struct negotiate_keytab;

/* Copy the keys of the keytab file path (only those of principal when it is
 * not NULL: "HTTP/host@REALM", or "HTTP/host" in any realm) into a new
 * in-memory keytab. NULL with the problem in err: unreadable, not a keytab,
 * empty, no key of that principal. */
struct negotiate_keytab *negotiate_keytab_load(const char *path, const char *principal, char *err,
					       size_t errlen);

/* The distinct principals it holds, comma-separated (for hopcache -t). */
const char *negotiate_keytab_principals(const struct negotiate_keytab *kt);

void negotiate_keytab_free(struct negotiate_keytab *kt);

/* In a worker, once: accept with kt's keys; replay_cache, when not NULL, is
 * the replay cache file (else MIT krb5's default, one file per user ID in
 * /var/tmp, which every worker shares). -1 with err. */
int negotiate_worker_init(const struct negotiate_keytab *kt, const char *replay_cache, char *err,
			  size_t errlen);

enum negotiate_result {
	NEGOTIATE_OK,        /* authenticated: grant filled in */
	NEGOTIATE_MALFORMED, /* not base64, empty, or longer than NEGOTIATE_TOKEN_MAX */
	NEGOTIATE_REJECTED,  /* GSS-API refused it (why says how) */
	NEGOTIATE_ERROR,     /* out of memory */
};

struct negotiate_grant {
	char *name;      /* "user@REALM" (heap) */
	char *reply;     /* base64 of the mutual-authentication token, or NULL (heap) */
	uint32_t lifetime; /* seconds the ticket is still valid */
};

/* Accept the base64 token of "Negotiate <token>". Each call is a whole
 * exchange: Kerberos takes one round trip, and a mechanism that asks for
 * another (SPNEGO offering only NTLM) is rejected. */
enum negotiate_result negotiate_accept(struct slice token, struct negotiate_grant *g, char *why,
				       size_t whylen);

void negotiate_grant_clear(struct negotiate_grant *g);

#endif

/* auth.h - proxy authentication: htpasswd and group files, the Basic
 * credentials of Proxy-Authorization, a per-worker cache of verified
 * credentials and a per-client limiter of failed attempts.
 *
 * Pure apart from reading the two files: no sockets, no globals, no log
 * calls (errors come back as text in err). Times are seconds on a clock
 * the caller picks (monotonic is best); nothing here reads the clock. */
#ifndef HOPCACHE_AUTH_H
#define HOPCACHE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "slice.h"

/* Longest password htpasswd_verify() hashes; a longer one never matches. */
#define AUTH_MAX_PASSWORD 1024

/* Buffer sizes that fit any credentials auth_parse_basic() accepts when
 * given them (each includes the terminating NUL). */
#define AUTH_USER_MAX 256
#define AUTH_PASS_MAX (AUTH_MAX_PASSWORD + 1)

/* --- htpasswd files -------------------------------------------------- */

struct htpasswd;

/* Read an Apache htpasswd file: "user:hash" lines, blank lines and '#'
 * comments ignored, CRLF tolerated, fields after a second ':' ignored (as
 * Apache does). Hashes: bcrypt $2y$/$2b$/$2a$, sha512-crypt $6$,
 * sha256-crypt $5$, yescrypt $y$, MD5-crypt $apr1$ and $1$, {SHA}.
 * Anything else (plain text, DES crypt) is refused, as are duplicate
 * users. Returns NULL with "FILE:LINE: problem" in err on error. */
struct htpasswd *htpasswd_load(const char *path, char *err, size_t errlen);

void htpasswd_free(struct htpasswd *h);

/* Number of users loaded (0 is legal: nobody can log in). */
size_t htpasswd_count(const struct htpasswd *h);

/* 1 if user exists and password matches its hash, else 0. Slow by design
 * for bcrypt/sha-crypt/yescrypt (callers cache the result: auth_cache_*).
 * An unknown user costs a decoy hash too, so timing does not reveal which
 * users exist. Allocates and frees a struct crypt_data (~32 KiB) per call. */
int htpasswd_verify(const struct htpasswd *h, const char *user, const char *password);

/* --- Proxy-Authorization: Basic (RFC 7617) --------------------------- */

enum auth_parse_result {
	AUTH_PARSE_OK = 0,
	AUTH_PARSE_MALFORMED = -1, /* bad base64, no ':', CTL, no credentials */
	AUTH_PARSE_NOT_BASIC = -2, /* another scheme (or none at all) */
	AUTH_PARSE_TOO_LONG = -3,  /* user or password does not fit */
};

/* Parse a Proxy-Authorization field value "Basic <base64(user:pass)>".
 * The scheme is case-insensitive (RFC 9110 §11.1); base64 must be strict
 * (alphabet, padding, zero trailing bits). user gets the bytes before the
 * first ':', pass the rest; neither may hold a CTL; the user may not be
 * empty, the password may. On error both buffers are wiped. */
int auth_parse_basic(struct slice value, char *user, size_t ulen, char *pass, size_t plen);

/* Split a credentials value (RFC 9110 §11.4: auth-scheme [ 1*SP ( token68
 * / #auth-param ) ]) into its scheme and the rest, both without surrounding
 * blanks. false when there is no scheme token or it is not followed by a
 * space or the end. */
bool auth_credentials_split(struct slice value, struct slice *scheme, struct slice *param);

/* Decode strict base64 (RFC 4648 §4: padding, canonical trailing bits) of
 * s[0..n) into out. Returns the number of bytes, or -1 when malformed or
 * longer than outlen. */
long auth_b64_decode(const char *s, size_t n, uint8_t *out, size_t outlen);

/* --- group files (Apache AuthGroupFile) ------------------------------ */

struct groups;

/* Read "group: user1 user2 ..." lines ('#' comments and blank lines
 * ignored; a group named on several lines gets all their members, as in
 * Apache). Returns NULL with "FILE:LINE: problem" in err on error. */
struct groups *groups_load(const char *path, char *err, size_t errlen);

void groups_free(struct groups *g);

/* Is user a member of group? */
bool groups_member(const struct groups *g, const char *group, const char *user);

/* Does the file define group (so config can reject rules naming a typo)? */
bool groups_exists(const struct groups *g, const char *group);

/* --- cache of verified credentials (one per worker) ------------------ */

struct auth_cache;

/* A bounded cache (4-way set-associative: a full set evicts its expired
 * or oldest entry). Stores a salted SHA-256 of user NUL pass, never the
 * password. Returns NULL on allocation failure or max_entries == 0. */
struct auth_cache *auth_cache_new(size_t max_entries);

void auth_cache_free(struct auth_cache *c);

/* Were these credentials verified less than their ttl ago? */
bool auth_cache_hit(struct auth_cache *c, const char *user, const char *pass, int64_t now);

/* Remember verified credentials until now + ttl (ttl <= 0: not cached). */
void auth_cache_add(struct auth_cache *c, const char *user, const char *pass, int64_t now,
		    int64_t ttl);

/* Forget everything (the htpasswd file was reloaded). */
void auth_cache_clear(struct auth_cache *c);

/* --- failed attempts per client address ------------------------------ */

struct auth_limiter;

/* Block a client after max_failures failures within window_seconds of its
 * first failure, until that window ends. IPv4 clients count per address,
 * IPv6 per /64 (IPv4-mapped addresses count as IPv4). Memory is a fixed
 * table; when full, the least useful entry is forgotten (expired first,
 * blocked clients last). max_failures == 0 disables the limiter. */
struct auth_limiter *auth_limiter_new(unsigned max_failures, int64_t window_seconds);

void auth_limiter_free(struct auth_limiter *l);

/* Is this client blocked now (answer 407/429 without checking a password)? */
bool auth_limiter_blocked(struct auth_limiter *l, const struct sockaddr *client, int64_t now);

/* Count one failed attempt. */
void auth_limiter_fail(struct auth_limiter *l, const struct sockaddr *client, int64_t now);

/* The client authenticated: forget its failures. */
void auth_limiter_ok(struct auth_limiter *l, const struct sockaddr *client, int64_t now);

#endif

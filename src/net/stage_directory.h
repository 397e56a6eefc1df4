/* stage_directory.h - the directory stage ([ldap]): a Basic password
 * checked by binding as the user, and the directory groups of an
 * authenticated user, from the worker's cache or from a job that the
 * directory threads run (net/directory.c) while the connection waits in
 * CONN_WAIT_DIRECTORY. When the job is done, conn_directory_resume (conn.c)
 * takes the request on from the stage it stopped at.
 *
 * A connection that closes while it waits leaves the job
 * (stage_directory_cancel): the job runs on (or is skipped when it has not
 * started) and its result still fills the caches, but nobody is resumed. */
#ifndef HOPCACHE_STAGE_DIRECTORY_H
#define HOPCACHE_STAGE_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "http_parser.h"

struct conn;
struct worker;
struct dir_job;

/* Where a waiting request goes on (conn.c). */
enum dir_step {
	DIR_STEP_AUTH,   /* after the authentication stage */
	DIR_STEP_GROUPS, /* at the policy stage, the groups known */
};

/* What the stage says. */
enum dir_verdict {
	DIRV_READY,       /* go on: rq->dir_member is the user's groups */
	DIRV_PENDING,     /* the connection waits (CONN_WAIT_DIRECTORY) */
	DIRV_UNAVAILABLE, /* answer 503 (STAGE_DIRECTORY_DOWN) */
	DIRV_REFUSED,     /* answer 407: wrong user name or password */
};

/* The details of the 503 for a directory that cannot answer. */
#define STAGE_DIRECTORY_DOWN "directory unavailable"

/* A Basic password the credential cache did not know, for the directory
 * (stage_auth said AUTH_DIRECTORY with [auth] basic_backend = ldap): the
 * credentials are read again from cred; an empty password is refused here
 * (DIRV_REFUSED: 407) and never reaches the directory; else the connection
 * waits for a bind job (DIRV_PENDING). */
enum dir_verdict stage_directory_bind(struct conn *c, const struct http_field *cred);

/* The request's user's directory groups: from the cache (DIRV_READY), or
 * the connection waits for a job (DIRV_PENDING). */
enum dir_verdict stage_directory_groups(struct conn *c);

/* The connection no longer waits (it closes). */
void stage_directory_cancel(struct conn *c);

/* CONN_WAIT_DIRECTORY's deadline passed: the connection leaves its job and
 * is answered 503. */
void stage_directory_timeout(struct conn *c);

/* The worker's directory side: the threads and the cache, started after the
 * fork when [ldap] is configured (a failure is logged, and requests that
 * need the directory get 503). */
void stage_directory_start(struct worker *w);
void stage_directory_stop(struct worker *w);

#endif

/* directory.h - the worker's LDAP client ([ldap]): a few threads that run
 * libldap's synchronous calls, fed by a job queue, whose finished jobs come
 * back to the event loop.
 *
 * libldap's connect, StartTLS and TLS handshake are synchronous, so they
 * cannot run on the event loop: each worker starts DIRECTORY_THREADS
 * threads after the fork, each with its own LDAP handles (one bound as
 * [ldap] bind_dn for searches, one for binding as users), reconnecting on
 * the next job after the directory went away. A finished job is queued back
 * and an eventfd, watched by a libevent event, wakes the loop, where the
 * job's done callback runs. Everything but the threads' LDAP work happens on
 * the loop thread; a thread touches only its job's request and result
 * fields and the two queues (under the mutex). */
#ifndef HOPCACHE_DIRECTORY_H
#define HOPCACHE_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dir_cache.h"

struct config;
struct event_base;

/* Threads per worker. */
#define DIRECTORY_THREADS 4

/* Jobs queued per worker at most; beyond, directory_submit refuses. */
#define DIRECTORY_QUEUE_MAX 1024

enum dir_job_kind {
	DIR_JOB_GROUPS, /* the groups of a user (authenticated otherwise) */
	DIR_JOB_BIND,   /* check a Basic password: find the user's DN, bind as it;
			   then the groups too when the rules name any */
};

enum dir_status {
	DIR_OK,        /* groups: found (member holds them); bind: password right */
	DIR_NOT_FOUND, /* groups: the directory does not know the user */
	DIR_FAILED,    /* bind: unknown user (or more than one entry) or wrong password */
	DIR_ERROR,     /* the directory could not answer (msg says why) */
	DIR_SKIPPED,   /* nobody waited for it any more: not run */
};

/* The search for the user's entry. */
enum dir_lookup {
	DIR_LOOKUP_ERROR,     /* no answer (or not made) */
	DIR_LOOKUP_FOUND,     /* one entry */
	DIR_LOOKUP_NONE,      /* no entry: the directory does not know the user */
	DIR_LOOKUP_AMBIGUOUS, /* user_filter matched more than one entry */
};

struct dir_job {
	/* set before directory_submit, then read-only until done */
	enum dir_job_kind kind;
	char *user;             /* the name as authenticated (the cache's key) */
	size_t name_len;        /* %u: the first name_len bytes of user */
	char *password;         /* DIR_JOB_BIND; wiped when the job is freed */
	struct sockaddr_storage peer; /* DIR_JOB_BIND: the client (failure limiter) */
	char client_ip[46];     /* DIR_JOB_BIND: ... as the log writes it */
	void (*done)(struct dir_job *job); /* on the loop thread, then the job is freed */
	void *ctx;              /* the done callback's: the worker */
	void *owner;            /* ... and who waits (loop thread only) */

	/* the result, written by the thread that ran it */
	enum dir_status status;
	enum dir_lookup lookup; /* how the search for the user's entry went */
	bool bound;             /* DIR_JOB_BIND: a bind as the user was made (status
				   says how it went: OK, FAILED or ERROR) */
	bool groups_known;      /* member is the user's groups (DIR_OK) */
	struct dir_member member;
	char *canon;            /* DIR_JOB_BIND: the user name as the directory spells it
				   (the value of a user_filter attribute that the name
				   matched; heap), or NULL: as given */
	char *msg;              /* why, for the log (heap), or NULL */

	/* the directory's */
	bool abandoned;         /* atomic: skip it if not started */
	struct dir_job *qnext;  /* the queue in, then the finished list (under the mutex) */
	struct dir_job *onext, *oprev; /* the jobs out (loop thread only) */
};

struct directory;

/* Start the threads (after the fork) and watch their results on base. NULL
 * with a message in err when they cannot be started. */
struct directory *directory_new(struct event_base *base, const struct config *cfg, char *err,
				size_t errlen);

/* Stop the threads (each finishes the job it runs) and free everything;
 * jobs not done are freed without their callback. NULL is fine. */
void directory_free(struct directory *d);

/* A new job for user (copied; name_len as dir_user_name says) and, for a
 * bind, password (copied). NULL when out of memory. */
struct dir_job *directory_job_new(enum dir_job_kind kind, const char *user, size_t name_len,
				  const char *password);

/* Queue a job (0), or -1 when the queue is full (the job is then the
 * caller's to free with directory_job_free). */
int directory_submit(struct directory *d, struct dir_job *job);

void directory_job_free(struct dir_job *job);

/* Nobody waits for this job any more: a thread that has not started it
 * skips it (its done callback still runs, with DIR_SKIPPED). */
void directory_abandon(struct dir_job *job);

/* A groups job for user still out (submitted, not done), or NULL: a second
 * request of the same user waits for it instead of asking again. */
struct dir_job *directory_find_groups(const struct directory *d, const char *user);

#endif

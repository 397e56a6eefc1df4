/* stage_directory.c - the directory stage: Basic passwords and group
 * memberships from [ldap], through the worker's caches and its directory
 * threads (stage_directory.h). Runs on the event loop thread only. */
#include "stage_directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "auth.h"
#include "config.h"
#include "conn.h"
#include "conn_impl.h"
#include "dir_cache.h"
#include "dir_filter.h"
#include "directory.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

/* Entries of a worker's cache of groups. */
#define DIR_CACHE_ENTRIES 4096

static void groups_done(struct dir_job *job);

static int64_t now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* What the directory's last answer says of it: logged when it changes
 * (an error each time at debug level), shown by /hopcache/status. */
static void directory_state(struct worker *w, bool up, const char *why)
{
	int state = up ? 1 : 2;
	if (!up && w->dir_state != state)
		log_error("directory unavailable: %s", why != NULL ? why : "no reason given");
	else if (!up)
		log_debug("directory still unavailable: %s", why != NULL ? why : "no reason given");
	else if (w->dir_state == 2)
		log_warn("directory available again");
	w->dir_state = state;
	metrics_directory_state(w->metrics, up);
}

/* Detach every connection waiting for job; return the first (linked by
 * dir_next, which the caller walks). */
static struct conn *take_waiters(struct dir_job *job)
{
	struct conn *list = job->owner;
	job->owner = NULL;
	for (struct conn *c = list; c != NULL; c = c->dir_next)
		c->dir_job = NULL;
	return list;
}

/* Resume each connection of a waiter list: status 0 goes on, else the
 * answer (conn_directory_resume). */
static void resume_all(struct conn *list, int status, const char *details,
		       const struct dir_member *m)
{
	while (list != NULL) {
		struct conn *c = list;
		list = c->dir_next;
		c->dir_next = NULL;
		if (c->dead)
			continue;
		if (m != NULL && c->rq != NULL) {
			c->rq->dir_member = *m;
			c->rq->dir_resolved = true;
		}
		conn_directory_resume(c, status, details);
	}
}

/* Count a finished job and note what it says of the directory: its search
 * for the user (lookups), its bind (binds), up or down. */
static void job_counted(struct worker *w, const struct dir_job *job)
{
	static const enum metrics_dir_result lookups[] = {
		[DIR_LOOKUP_ERROR] = METRICS_DIR_ERROR,
		[DIR_LOOKUP_FOUND] = METRICS_DIR_OK,
		[DIR_LOOKUP_NONE] = METRICS_DIR_NOT_FOUND,
		[DIR_LOOKUP_AMBIGUOUS] = METRICS_DIR_ERROR,
	};
	if (job->status == DIR_SKIPPED)
		return;
	metrics_directory_lookup(w->metrics, lookups[job->lookup]);
	if (job->bound)
		metrics_directory_bind(w->metrics, job->status == DIR_OK       ? METRICS_BIND_OK
						   : job->status == DIR_FAILED ? METRICS_BIND_FAILED
									       : METRICS_BIND_ERROR);
	if (job->lookup == DIR_LOOKUP_AMBIGUOUS)
		log_warn("directory: %s", job->msg != NULL ? job->msg : "ambiguous user_filter");
	/* an ambiguous name is the filter's fault: the directory answered */
	directory_state(w, job->status != DIR_ERROR || job->lookup == DIR_LOOKUP_AMBIGUOUS, job->msg);
}

/* ---- Basic passwords ---------------------------------------------------------- */

/* A bind job is done (loop thread). */
static void bind_done(struct dir_job *job)
{
	struct worker *w = job->ctx;
	const struct config *cfg = w->cfg;
	int64_t now = now_seconds();
	struct conn *list = take_waiters(job);
	int status = 503;

	/* the user is the directory's entry: its name as the directory spells it */
	const char *name = job->canon != NULL ? job->canon : job->user;
	job_counted(w, job);
	if (job->lookup == DIR_LOOKUP_NONE)
		dir_cache_put(w->dir_cache, job->user, false, NULL, NULL, now,
			      (int64_t)cfg->ldap_negative_ttl);
	if (job->status == DIR_OK && strlen(name) >= AUTH_USER_MAX) {
		log_info("authentication of \"%s\" from %s refused: the directory's name for it is "
			 "longer than %d bytes", job->user, job->client_ip, AUTH_USER_MAX - 1);
		job->status = DIR_FAILED;
	}
	switch (job->status) {
	case DIR_OK:
		auth_cache_add(w->auth_cache, job->user, job->password, now,
			       (int64_t)cfg->auth_credential_ttl);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_OK);
		if (job->groups_known)
			dir_cache_put(w->dir_cache, job->user, true, &job->member, job->canon, now,
				      (int64_t)cfg->ldap_cache_ttl);
		status = 0;
		break;
	case DIR_FAILED:
	case DIR_NOT_FOUND:
		auth_limiter_fail(w->auth_limiter, (const struct sockaddr *)&job->peer, now);
		metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
		log_info("authentication failed for user \"%s\" from %s%s", job->user,
			 job->client_ip, job->lookup == DIR_LOOKUP_FOUND ? "" : ": not in the directory");
		status = 407;
		break;
	case DIR_ERROR:
	case DIR_SKIPPED:
		break;
	}
	/* the name is the user's only now that the password is right; the
	 * groups came with it when the rules name any */
	for (struct conn *c = list; status == 0 && c != NULL; c = c->dir_next) {
		if (c->dead || c->rq == NULL)
			continue;
		snprintf(c->rq->user, sizeof(c->rq->user), "%s", name);
		if (job->groups_known) {
			c->rq->dir_member = job->member;
			c->rq->dir_resolved = true;
		}
	}
	resume_all(list, status, status == 407 ? "wrong user name or password" : STAGE_DIRECTORY_DOWN,
		   NULL);
}

/* Wait in CONN_WAIT_DIRECTORY for job (the connection is one of its owners). */
static void park(struct conn *c, struct dir_job *job, enum dir_step step)
{
	c->dir_job = job;
	c->dir_step = step;
	c->dir_next = job->owner;
	job->owner = c;
	c->state = CONN_WAIT_DIRECTORY;
	bufferevent_disable(c->cbev, EV_READ);
	/* the job bounds each of its operations by timeout; the request waits
	 * that long in all (queue included), and a little more, so that the
	 * directory's own error is the one logged */
	conn_set_timer(c, c->w->cfg->ldap_timeout + 0.5);
}

/* Submit job and wait for it; DIRV_UNAVAILABLE (the job freed) when the
 * queue is full. */
static enum dir_verdict submit(struct conn *c, struct dir_job *job, enum dir_step step)
{
	struct worker *w = c->w;
	job->ctx = w;
	job->done = job->kind == DIR_JOB_BIND ? bind_done : groups_done;
	job->owner = NULL;
	if (directory_submit(w->directory, job) < 0) {
		log_warn("directory: %d requests queued already: refusing more",
			 DIRECTORY_QUEUE_MAX);
		directory_job_free(job);
		return DIRV_UNAVAILABLE;
	}
	park(c, job, step);
	return DIRV_PENDING;
}

/* The user is authenticated (its password is right): say so. */
static enum dir_verdict authenticated(struct conn *c, const char *name)
{
	metrics_auth(c->w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_OK);
	snprintf(c->rq->user, sizeof(c->rq->user), "%s", name);
	return DIRV_READY;
}

/* Refused without asking the directory. */
static enum dir_verdict refused(struct conn *c, const char *name, const char *why)
{
	struct worker *w = c->w;
	auth_limiter_fail(w->auth_limiter, (const struct sockaddr *)&c->peer, now_seconds());
	metrics_auth(w->metrics, METRICS_AUTH_BASIC, METRICS_AUTH_FAILED);
	log_info("authentication failed for user \"%s\" from %s: %s", name, c->client_ip, why);
	return DIRV_REFUSED;
}

enum dir_verdict stage_directory_bind(struct conn *c, const struct http_field *cred)
{
	struct worker *w = c->w;
	struct request *rq = c->rq;
	char name[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
	enum dir_verdict v = DIRV_UNAVAILABLE;
	int64_t now = now_seconds();
	struct dir_member m;

	/* stage_auth parsed these very bytes: no error now */
	if (cred == NULL || auth_parse_basic(cred->value, name, sizeof(name), pass, sizeof(pass)) != 0)
		return DIRV_UNAVAILABLE;
	if (*pass == '\0') {
		/* never to the directory: an empty password is an
		 * unauthenticated bind, which succeeds (RFC 4513 §5.1.2) */
		explicit_bzero(pass, sizeof(pass));
		return refused(c, name, "empty password");
	}
	/* what the directory said of the user lately, then the password */
	memset(&m, 0, sizeof(m));
	const char *canon = NULL;
	enum dir_cache_result cr = dir_cache_get(w->dir_cache, name, now, &m, &canon);
	metrics_directory_cache(w->metrics, cr != DIR_CACHE_MISS);
	if (cr == DIR_CACHE_NOT_FOUND) {
		explicit_bzero(pass, sizeof(pass));
		return refused(c, name, "not in the directory");
	}
	if (cr == DIR_CACHE_FOUND && auth_cache_hit(w->auth_cache, name, pass, now)) {
		explicit_bzero(pass, sizeof(pass));
		rq->dir_member = m;
		rq->dir_resolved = true;
		return authenticated(c, canon != NULL ? canon : name);
	}
	struct dir_job *job = w->directory == NULL ? NULL
			      : directory_job_new(DIR_JOB_BIND, name, strlen(name), pass);
	explicit_bzero(pass, sizeof(pass));
	if (job != NULL) {
		memcpy(&job->peer, &c->peer, sizeof(job->peer));
		snprintf(job->client_ip, sizeof(job->client_ip), "%s", c->client_ip);
		v = submit(c, job, DIR_STEP_AUTH);
	} else if (w->directory != NULL) {
		log_error("out of memory asking the directory about user \"%s\"", name);
	}
	return v;
}

/* ---- groups ------------------------------------------------------------------- */

/* A groups job is done (loop thread). */
static void groups_done(struct dir_job *job)
{
	struct worker *w = job->ctx;
	const struct config *cfg = w->cfg;
	int64_t now = now_seconds();
	struct conn *list = take_waiters(job);

	job_counted(w, job);
	switch (job->status) {
	case DIR_OK:
		dir_cache_put(w->dir_cache, job->user, true, &job->member, NULL, now,
			      (int64_t)cfg->ldap_cache_ttl);
		resume_all(list, 0, NULL, &job->member);
		return;
	case DIR_NOT_FOUND:
		/* member of no directory group */
		dir_cache_put(w->dir_cache, job->user, false, NULL, NULL, now,
			      (int64_t)cfg->ldap_negative_ttl);
		resume_all(list, 0, NULL, &job->member);
		return;
	case DIR_FAILED:
	case DIR_ERROR:
	case DIR_SKIPPED:
		break;
	}
	resume_all(list, 503, STAGE_DIRECTORY_DOWN, NULL);
}

enum dir_verdict stage_directory_groups(struct conn *c)
{
	struct worker *w = c->w;
	struct request *rq = c->rq;
	struct dir_member m;

	memset(&m, 0, sizeof(m));
	switch (dir_cache_get(w->dir_cache, rq->user, now_seconds(), &m, NULL)) {
	case DIR_CACHE_FOUND:
	case DIR_CACHE_NOT_FOUND:
		metrics_directory_cache(w->metrics, true);
		rq->dir_member = m;
		rq->dir_resolved = true;
		return DIRV_READY;
	case DIR_CACHE_MISS:
		metrics_directory_cache(w->metrics, false);
		break;
	}
	if (w->directory == NULL)
		return DIRV_UNAVAILABLE;
	struct dir_job *job = directory_find_groups(w->directory, rq->user);
	if (job != NULL) {
		park(c, job, DIR_STEP_GROUPS); /* asked already: wait for the same answer */
		return DIRV_PENDING;
	}
	job = directory_job_new(DIR_JOB_GROUPS, rq->user, dir_user_name(rq->user, rq->user_kerberos),
				NULL);
	if (job == NULL) {
		log_error("out of memory asking the directory for the groups of \"%s\"", rq->user);
		return DIRV_UNAVAILABLE;
	}
	return submit(c, job, DIR_STEP_GROUPS);
}

void stage_directory_cancel(struct conn *c)
{
	struct dir_job *job = c->dir_job;
	if (job == NULL)
		return;
	struct conn *prev = NULL, *cur = job->owner;
	while (cur != NULL && cur != c) {
		prev = cur;
		cur = cur->dir_next;
	}
	if (cur == c && prev != NULL)
		prev->dir_next = c->dir_next;
	else if (cur == c)
		job->owner = c->dir_next;
	c->dir_job = NULL;
	c->dir_next = NULL;
	if (job->owner == NULL)
		directory_abandon(job);
}

void stage_directory_timeout(struct conn *c)
{
	log_warn("directory: no answer for %s within %.1f s", c->client_ip,
		 c->w->cfg->ldap_timeout + 0.5);
	stage_directory_cancel(c);
	conn_directory_resume(c, 503, STAGE_DIRECTORY_DOWN);
}

/* ---- the worker's side -------------------------------------------------------- */

void stage_directory_start(struct worker *w)
{
	const struct config *cfg = w->cfg;
	char err[256];
	uint64_t key = 0;

	if (cfg->ldap_uri == NULL)
		return;
	if (RAND_bytes((unsigned char *)&key, sizeof(key)) != 1)
		key = (uint64_t)now_seconds() ^ (uint64_t)(uintptr_t)w;
	w->dir_cache = dir_cache_new(DIR_CACHE_ENTRIES, key);
	if (w->dir_cache == NULL)
		log_error("directory: out of memory for the cache of groups: every lookup asks "
			  "the directory");
	w->directory = directory_new(w->base, cfg, err, sizeof(err));
	if (w->directory == NULL)
		log_error("directory: %s: requests that need it get 503", err);
}

void stage_directory_stop(struct worker *w)
{
	directory_free(w->directory);
	w->directory = NULL;
	dir_cache_free(w->dir_cache);
	w->dir_cache = NULL;
}

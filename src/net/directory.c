/* directory.c - the worker's LDAP client: threads running libldap's
 * synchronous API, a job queue in, a done queue out (directory.h).
 *
 * This is the only file that includes <ldap.h>. */
#include "directory.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldap.h>
#include <openssl/crypto.h>

#include "config.h"
#include "dir_filter.h"
#include "timeval.h"

struct dir_thread {
	struct directory *d;
	pthread_t tid;
	LDAP *svc;  /* bound as bind_dn (or anonymous): searches */
	LDAP *user; /* binds as users (Basic) */
};

struct directory {
	const struct config *cfg;
	bool tls;                 /* StartTLS or an ldaps:// URI: set the TLS options */
	struct timeval timeout;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dir_job *queue, *queue_tail; /* waiting for a thread (mu) */
	size_t queued;
	struct dir_job *finished;            /* done by a thread, for the loop (mu) */
	bool stop;                           /* mu */
	int efd;                             /* eventfd: a job finished */
	struct event *ev;
	struct dir_job *out;                 /* submitted, not done (loop thread only) */
	char **name_attrs;                   /* what user_filter compares %u with */
	size_t nname_attrs;
	char **search_attrs;                 /* asked for with the user's entry (NULL-terminated) */
	size_t nthreads;
	struct dir_thread th[DIRECTORY_THREADS];
};

/* What a step of a job asks for next. */
enum step {
	STEP_DONE,  /* the job has its result */
	STEP_RETRY, /* a connection kept from before had gone away: once more, afresh */
};

/* ---- jobs ------------------------------------------------------------------- */

struct dir_job *directory_job_new(enum dir_job_kind kind, const char *user, size_t name_len,
				  const char *password)
{
	struct dir_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->kind = kind;
	j->name_len = name_len;
	j->user = strdup(user);
	if (password != NULL)
		j->password = strdup(password);
	if (j->user == NULL || (password != NULL && j->password == NULL)) {
		directory_job_free(j);
		return NULL;
	}
	return j;
}

void directory_job_free(struct dir_job *j)
{
	if (j == NULL)
		return;
	if (j->password != NULL) {
		OPENSSL_cleanse(j->password, strlen(j->password));
		free(j->password);
	}
	free(j->user);
	free(j->canon);
	free(j->msg);
	free(j);
}

void directory_abandon(struct dir_job *j)
{
	__atomic_store_n(&j->abandoned, true, __ATOMIC_RELAXED);
}

/* Say why in j->msg (the first reason stays). */
static void job_msg(struct dir_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void job_msg(struct dir_job *j, const char *fmt, ...)
{
	va_list ap;
	if (j->msg != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&j->msg, fmt, ap) < 0)
		j->msg = NULL;
	va_end(ap);
}

/* ---- libldap ---------------------------------------------------------------- */

/* Result codes that mean the directory (or the way to it) is not there. */
static bool gone(int rc)
{
	return rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_TIMEOUT ||
	       rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY;
}

static void drop(LDAP **ld)
{
	if (*ld != NULL)
		ldap_unbind_ext_s(*ld, NULL, NULL);
	*ld = NULL;
}

/* rc's text, with the server's diagnostic message when it sent one. */
static void ldap_msg(struct dir_job *j, LDAP *ld, const char *what, int rc)
{
	char *diag = NULL;
	if (ld != NULL)
		ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	job_msg(j, "%s: %s%s%s", what, ldap_err2string(rc), diag != NULL && *diag ? ": " : "",
		diag != NULL ? diag : "");
	ldap_memfree(diag);
}

/* A handle on [ldap] uri (the URIs in order), with the protocol, timeouts
 * and TLS set, StartTLS done when asked; bound as bind_dn when service and
 * there is one. *fresh tells a new connection from one kept. */
static int handle(struct dir_thread *t, struct dir_job *j, LDAP **ldp, bool service, bool *fresh)
{
	struct directory *d = t->d;
	const struct config *cfg = d->cfg;
	int rc, v3 = LDAP_VERSION3;
	LDAP *ld = NULL;

	*fresh = *ldp == NULL;
	if (*ldp != NULL)
		return 0;
	rc = ldap_initialize(&ld, cfg->ldap_uris);
	if (rc != LDAP_SUCCESS) {
		ldap_msg(j, NULL, "ldap_initialize", rc);
		return -1;
	}
	ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
	ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &d->timeout);
	ldap_set_option(ld, LDAP_OPT_TIMEOUT, &d->timeout);
	ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
	if (d->tls) {
		int demand = LDAP_OPT_X_TLS_DEMAND, client = 0;
		if (cfg->ldap_ca_file != NULL)
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, cfg->ldap_ca_file);
		ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
		rc = ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &client);
		if (rc != LDAP_OPT_SUCCESS) {
			job_msg(j, "TLS setup failed (ca_file %s)",
				cfg->ldap_ca_file != NULL ? cfg->ldap_ca_file : "default");
			drop(&ld);
			return -1;
		}
	}
	if (cfg->ldap_starttls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
		ldap_msg(j, ld, "StartTLS", rc);
		drop(&ld);
		return -1;
	}
	if (service && cfg->ldap_bind_dn != NULL) {
		struct berval cred = { strlen(cfg->ldap_bind_password), cfg->ldap_bind_password };
		rc = ldap_sasl_bind_s(ld, cfg->ldap_bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			ldap_msg(j, ld, rc == LDAP_INVALID_CREDENTIALS ? "bind as bind_dn (check "
					"bind_dn and bind_password_file)" : "bind as bind_dn", rc);
			drop(&ld);
			return -1;
		}
	}
	*ldp = ld;
	return 0;
}

/* Search base for the user's entry (user_filter), asking for the group
 * attribute when the groups come from it; j->lookup says how it went. 1
 * with *res (one entry), 0 when there is none (or more than one), -1 on
 * error (msg set), -2 when a kept connection went away. */
static int find_user(struct dir_thread *t, struct dir_job *j, LDAPMessage **res)
{
	struct directory *d = t->d;
	const struct config *cfg = d->cfg;
	char err[128];
	bool fresh;

	*res = NULL;
	j->lookup = DIR_LOOKUP_ERROR;
	if (handle(t, j, &t->svc, true, &fresh) < 0)
		return -1;
	char *filter = dir_filter_expand(cfg->ldap_user_filter, j->user, j->name_len, NULL, 0, err,
					 sizeof(err));
	if (filter == NULL) {
		job_msg(j, "user_filter: %s", err);
		return -1;
	}
	struct timeval tv = d->timeout;
	int rc = ldap_search_ext_s(t->svc, cfg->ldap_base, LDAP_SCOPE_SUBTREE, filter,
				   d->search_attrs, 0, NULL, NULL, &tv, 2, res);
	free(filter);
	int n = rc == LDAP_SUCCESS ? ldap_count_entries(t->svc, *res) : -1;
	if (rc == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
		job_msg(j, "user_filter matches more than one entry for \"%.*s\"", (int)j->name_len,
			j->user);
		j->lookup = DIR_LOOKUP_AMBIGUOUS;
		rc = 0;
	} else if (rc == LDAP_NO_SUCH_OBJECT) {
		ldap_msg(j, t->svc, "search (check base)", rc);
		rc = -1;
	} else if (rc != LDAP_SUCCESS) {
		bool retry = gone(rc) && !fresh;
		ldap_msg(j, t->svc, "search for the user", rc);
		if (gone(rc))
			drop(&t->svc);
		rc = retry ? -2 : -1;
	} else {
		j->lookup = n == 1 ? DIR_LOOKUP_FOUND : DIR_LOOKUP_NONE;
		rc = n == 1 ? 1 : 0;
	}
	if (rc != 1) {
		ldap_msgfree(*res);
		*res = NULL;
	}
	return rc;
}

/* Set the bits of the rule groups value (a group's DN, or name) matches. */
static void match(const struct config *cfg, const char *value, size_t len, struct dir_member *m)
{
	for (size_t i = 0; i < cfg->ndir_groups; i++)
		if (dir_group_match(cfg->dir_groups[i], value, len))
			dir_member_set(m, i);
}

/* The user's groups: the group attribute's values of its entry, or the
 * entries group_filter finds. -1 (msg set), -2 (a kept connection went
 * away), or 0. */
static int resolve_groups(struct dir_thread *t, struct dir_job *j, LDAPMessage *entry,
			  const char *dn)
{
	struct directory *d = t->d;
	const struct config *cfg = d->cfg;
	memset(&j->member, 0, sizeof(j->member));
	if (cfg->ndir_groups == 0)
		return 0;
	if (cfg->ldap_group_filter == NULL) {
		struct berval **v = ldap_get_values_len(t->svc, entry, cfg->ldap_group_attribute);
		for (size_t i = 0; v != NULL && v[i] != NULL; i++)
			match(cfg, v[i]->bv_val, v[i]->bv_len, &j->member);
		ldap_value_free_len(v);
		return 0;
	}
	char err[128];
	char *filter = dir_filter_expand(cfg->ldap_group_filter, j->user, j->name_len, dn,
					 strlen(dn), err, sizeof(err));
	if (filter == NULL) {
		job_msg(j, "group_filter: %s", err);
		return -1;
	}
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	LDAPMessage *res = NULL;
	struct timeval tv = d->timeout;
	int rc = ldap_search_ext_s(t->svc, cfg->ldap_base, LDAP_SCOPE_SUBTREE, filter, attrs, 0,
				   NULL, NULL, &tv, 0, &res);
	free(filter);
	if (rc != LDAP_SUCCESS) {
		/* a partial list could miss a group a deny rule names */
		ldap_msg(j, t->svc, "search for the groups", rc);
		ldap_msgfree(res);
		if (gone(rc)) {
			drop(&t->svc);
			return -2;
		}
		return -1;
	}
	for (LDAPMessage *e = ldap_first_entry(t->svc, res); e != NULL;
	     e = ldap_next_entry(t->svc, e)) {
		char *gdn = ldap_get_dn(t->svc, e);
		if (gdn != NULL)
			match(cfg, gdn, strlen(gdn), &j->member);
		ldap_memfree(gdn);
	}
	ldap_msgfree(res);
	return 0;
}

/* The user's name as the directory spells it: the first value of a
 * user_filter attribute that matches the name given (as caseIgnoreMatch
 * would), else the first value of the first of them; NULL (the name as
 * given) when the filter compares %u with no attribute's whole value. */
static char *canonical_name(struct dir_thread *t, struct dir_job *j, LDAPMessage *entry)
{
	struct directory *d = t->d;
	char *first = NULL, *found = NULL;
	for (size_t a = 0; a < d->nname_attrs && found == NULL; a++) {
		struct berval **v = ldap_get_values_len(t->svc, entry, d->name_attrs[a]);
		for (size_t i = 0; v != NULL && v[i] != NULL && found == NULL; i++) {
			if (memchr(v[i]->bv_val, '\0', v[i]->bv_len) != NULL)
				continue;
			if (dir_name_match(j->user, j->name_len, v[i]->bv_val, v[i]->bv_len))
				found = strndup(v[i]->bv_val, v[i]->bv_len);
			else if (first == NULL)
				first = strndup(v[i]->bv_val, v[i]->bv_len);
		}
		ldap_value_free_len(v);
	}
	if (found != NULL) {
		free(first);
		return found;
	}
	return first;
}

/* Bind as dn with the job's password on the thread's user handle. */
static enum dir_status bind_user(struct dir_thread *t, struct dir_job *j, const char *dn,
				 enum step *step)
{
	bool fresh;
	if (handle(t, j, &t->user, false, &fresh) < 0)
		return DIR_ERROR;
	j->bound = true;
	struct berval cred = { strlen(j->password), j->password };
	int rc = ldap_sasl_bind_s(t->user, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
	if (rc == LDAP_SUCCESS)
		return DIR_OK;
	if (rc == LDAP_INVALID_CREDENTIALS || rc == LDAP_INAPPROPRIATE_AUTH)
		return DIR_FAILED;
	ldap_msg(j, t->user, "bind as the user", rc);
	if (gone(rc) || rc == LDAP_OTHER) {
		*step = gone(rc) && !fresh ? STEP_RETRY : STEP_DONE;
		drop(&t->user);
	}
	return DIR_ERROR;
}

/* One try at a job. */
static enum step run_once(struct dir_thread *t, struct dir_job *j)
{
	LDAPMessage *res = NULL;
	enum step step = STEP_DONE;
	int r = find_user(t, j, &res);
	if (r == -2)
		return STEP_RETRY;
	if (r < 0) {
		j->status = DIR_ERROR;
		return STEP_DONE;
	}
	if (r == 0) {
		/* nobody, or more than one entry: a bind would name nobody;
		 * for the groups, an ambiguous name is an error */
		bool none = j->lookup == DIR_LOOKUP_NONE;
		j->status = j->kind == DIR_JOB_BIND ? DIR_FAILED : none ? DIR_NOT_FOUND : DIR_ERROR;
		j->groups_known = none;
		memset(&j->member, 0, sizeof(j->member));
		return STEP_DONE;
	}
	LDAPMessage *entry = ldap_first_entry(t->svc, res);
	char *dn = entry != NULL ? ldap_get_dn(t->svc, entry) : NULL;
	if (dn == NULL || *dn == '\0') {
		/* never bind with an empty DN: that is an anonymous bind */
		job_msg(j, "the user's entry has no DN");
		j->status = DIR_ERROR;
	} else if (j->kind == DIR_JOB_BIND) {
		j->status = bind_user(t, j, dn, &step);
		if (j->status == DIR_OK) {
			free(j->canon);
			j->canon = canonical_name(t, j, entry);
		}
	} else {
		j->status = DIR_OK;
	}
	if (j->status == DIR_OK) {
		r = resolve_groups(t, j, entry, dn);
		if (r == -2 && j->kind == DIR_JOB_GROUPS)
			step = STEP_RETRY;
		/* a bind job that cannot tell the groups has still checked the
		 * password: the groups are asked for again later */
		if (r < 0 && j->kind == DIR_JOB_GROUPS)
			j->status = DIR_ERROR;
		j->groups_known = r == 0;
	}
	ldap_memfree(dn);
	ldap_msgfree(res);
	return step;
}

static void run_job(struct dir_thread *t, struct dir_job *j)
{
	if (j->kind == DIR_JOB_BIND && (j->password == NULL || *j->password == '\0')) {
		/* an empty password would be an unauthenticated bind: success */
		j->status = DIR_FAILED;
		return;
	}
	for (int tries = 0; tries < 2; tries++) {
		free(j->msg);
		j->msg = NULL;
		j->groups_known = false;
		j->bound = false;
		if (run_once(t, j) == STEP_DONE)
			return;
	}
}

static void *thread_main(void *arg)
{
	struct dir_thread *t = arg;
	struct directory *d = t->d;

	for (;;) {
		pthread_mutex_lock(&d->mu);
		while (!d->stop && d->queue == NULL)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->stop) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		struct dir_job *j = d->queue;
		d->queue = j->qnext;
		if (d->queue == NULL)
			d->queue_tail = NULL;
		d->queued--;
		pthread_mutex_unlock(&d->mu);

		if (__atomic_load_n(&j->abandoned, __ATOMIC_RELAXED))
			j->status = DIR_SKIPPED;
		else
			run_job(t, j);

		pthread_mutex_lock(&d->mu);
		j->qnext = d->finished;
		d->finished = j;
		pthread_mutex_unlock(&d->mu);
		uint64_t one = 1;
		while (write(d->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
	drop(&t->svc);
	drop(&t->user);
	return NULL;
}

/* ---- the loop side ---------------------------------------------------------- */

/* Unlink a job from the loop's list of jobs out. */
static void out_remove(struct directory *d, struct dir_job *j)
{
	if (j->oprev != NULL)
		j->oprev->onext = j->onext;
	else
		d->out = j->onext;
	if (j->onext != NULL)
		j->onext->oprev = j->oprev;
	j->onext = j->oprev = NULL;
}

/* The eventfd: run the done callbacks of the finished jobs, oldest first. */
static void finished_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct directory *d = arg;
	uint64_t n;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&d->mu);
	struct dir_job *list = d->finished, *rev = NULL;
	d->finished = NULL;
	pthread_mutex_unlock(&d->mu);
	while (list != NULL) {
		struct dir_job *next = list->qnext;
		list->qnext = rev;
		rev = list;
		list = next;
	}
	while (rev != NULL) {
		struct dir_job *j = rev;
		rev = rev->qnext;
		out_remove(d, j);
		j->done(j);
		directory_job_free(j);
	}
}

struct directory *directory_new(struct event_base *base, const struct config *cfg, char *err,
				size_t errlen)
{
	struct directory *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->cfg = cfg;
	d->timeout = timeval_of(cfg->ldap_timeout);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	/* the attributes asked for with the user's entry: the names, and the
	 * groups when they are an attribute of it ("1.1": none) */
	d->efd = -1;
	bool group_attr = cfg->ndir_groups > 0 && cfg->ldap_group_filter == NULL;
	if (dir_filter_name_attrs(cfg->ldap_user_filter, &d->name_attrs, &d->nname_attrs) < 0 ||
	    (d->search_attrs = calloc(d->nname_attrs + 2, sizeof(char *))) == NULL) {
		snprintf(err, errlen, "out of memory");
		directory_free(d);
		return NULL;
	}
	size_t na = 0;
	if (group_attr)
		d->search_attrs[na++] = cfg->ldap_group_attribute;
	for (size_t i = 0; i < d->nname_attrs; i++)
		d->search_attrs[na++] = d->name_attrs[i];
	if (na == 0)
		d->search_attrs[na++] = LDAP_NO_ATTRS;
	d->tls = cfg->ldap_starttls || strcasestr(cfg->ldap_uris, "ldaps://") != NULL;
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		directory_free(d);
		return NULL;
	}
	d->ev = event_new(base, d->efd, EV_READ | EV_PERSIST, finished_cb, d);
	if (d->ev == NULL || event_add(d->ev, NULL) < 0) {
		snprintf(err, errlen, "out of memory");
		directory_free(d);
		return NULL;
	}
	/* libldap sets its global options up on first use: here, once */
	int v;
	ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v);
	/* the threads take no signal: the loop's signal events get them */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (size_t i = 0; i < DIRECTORY_THREADS; i++) {
		d->th[i].d = d;
		int rc = pthread_create(&d->th[i].tid, NULL, thread_main, &d->th[i]);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start a directory thread: %s", strerror(rc));
			break;
		}
		d->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (d->nthreads < DIRECTORY_THREADS) {
		directory_free(d);
		return NULL;
	}
	return d;
}

void directory_free(struct directory *d)
{
	if (d == NULL)
		return;
	if (d->nthreads > 0) {
		pthread_mutex_lock(&d->mu);
		d->stop = true;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		for (size_t i = 0; i < d->nthreads; i++)
			pthread_join(d->th[i].tid, NULL);
	}
	/* the threads are gone: every job is on the queue or the finished list */
	struct dir_job *lists[] = { d->queue, d->finished };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		for (struct dir_job *j = lists[i], *next; j != NULL; j = next) {
			next = j->qnext;
			directory_job_free(j);
		}
	}
	for (size_t i = 0; i < d->nname_attrs; i++)
		free(d->name_attrs[i]);
	free(d->name_attrs);
	free(d->search_attrs);
	if (d->ev != NULL)
		event_free(d->ev);
	if (d->efd >= 0)
		close(d->efd);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

int directory_submit(struct directory *d, struct dir_job *j)
{
	pthread_mutex_lock(&d->mu);
	if (d->queued >= DIRECTORY_QUEUE_MAX) {
		pthread_mutex_unlock(&d->mu);
		return -1;
	}
	j->qnext = NULL;
	if (d->queue_tail != NULL)
		d->queue_tail->qnext = j;
	else
		d->queue = j;
	d->queue_tail = j;
	d->queued++;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	j->oprev = NULL;
	j->onext = d->out;
	if (d->out != NULL)
		d->out->oprev = j;
	d->out = j;
	return 0;
}

struct dir_job *directory_find_groups(const struct directory *d, const char *user)
{
	for (struct dir_job *j = d->out; j != NULL; j = j->onext)
		if (j->kind == DIR_JOB_GROUPS && !__atomic_load_n(&j->abandoned, __ATOMIC_RELAXED) &&
		    strcmp(j->user, user) == 0)
			return j;
	return NULL;
}

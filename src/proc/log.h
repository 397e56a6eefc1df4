/* log.h - error log (severity, process) and access log (one line per request),
 * to files, standard streams or syslog; access lines in four formats. */
#ifndef HOPCACHE_LOG_H
#define HOPCACHE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "outcome.h"

enum log_level { HC_LOG_ERROR = 0, HC_LOG_WARN, HC_LOG_INFO, HC_LOG_DEBUG };

/* Open (or reopen, as on SIGUSR1) the logs. A NULL or "-" error path means
 * stderr, a NULL access path means no access log and "-" means stdout;
 * "syslog" sends either log to syslog(3). A reopened file takes over the old
 * descriptor number (dup2), so no write ever hits a closed descriptor.
 * Returns 0 or -errno; on failure *what names the failing path and the
 * previous logs stay in use. */
int log_open(const char *error_path, const char *access_path, int level, const char **what);

/* Name this process in error log lines ("master", "worker"). */
void log_set_process(const char *name);

/* The access log format, CONFIG_LOGFMT_* (default native). */
void log_set_access_format(int format);

/* The syslog facility (LOG_DAEMON, LOG_LOCAL0 ...); call before log_open. */
void log_set_syslog_facility(int facility);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(HC_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(HC_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(HC_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(HC_LOG_DEBUG, __VA_ARGS__)

/* One access log entry; strings are NUL-terminated, NULL (or empty) means
 * absent: "-" in the text formats, null in JSON. */
struct access_entry {
	const char *client;
	const char *user;
	const char *method;
	const char *target;
	int status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t duration_ms;
	const char *upstream;       /* ip:port or [ip]:port connected to */
	enum outcome outcome;      /* outcome.h; its name is what the log says */
	const char *rule;           /* the [rule.NAME] that decided, "default", or NULL */
	const char *version;        /* request's "HTTP/1.1"; NULL means "HTTP/1.1" */
	const char *referer;        /* request's Referer */
	const char *user_agent;     /* request's User-Agent */
	const char *content_type;   /* response's Content-Type */
	const char *cache;          /* "HIT", "MISS", "REFRESH", "STALE"; NULL: the
				     * outcome when it is HIT/REFRESH/STALE, else none */
	const char *upstream_host;  /* name of the host connected to */
	bool tunnel;                /* a CONNECT tunnel */
	bool parent;                /* went through the parent proxy */
};

/* Format one access line for `format` (CONFIG_LOGFMT_*) at time `now` (NULL:
 * the current time) into buf. The line ends with '\n' and buf is always
 * NUL-terminated (when len > 0). Long fields are cut so the line fits, never
 * inside an escape sequence or a UTF-8 character, and the rest of the line
 * (columns, JSON structure) is kept whenever len allows its fixed parts.
 * Returns the line length without the NUL (0 when len < 2). */
size_t log_format_access(int format, const struct access_entry *e, const struct timespec *now,
			 char *buf, size_t len);

void log_access(const struct access_entry *e);
int log_access_enabled(void);

/* Format the current time as ISO 8601 UTC with milliseconds into buf (>= 32). */
void log_time(char *buf, unsigned long len);

#endif

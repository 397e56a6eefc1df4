/* log.h - error log (severity, process) and access log (one line per request). */
#ifndef HOPCACHE_LOG_H
#define HOPCACHE_LOG_H

#include <stdint.h>

enum log_level { HC_LOG_ERROR = 0, HC_LOG_WARN, HC_LOG_INFO, HC_LOG_DEBUG };

/* Open (or reopen) the logs. A NULL or "-" error path means stderr, a NULL
 * access path means no access log and "-" means stdout. Returns 0 or -errno;
 * on failure *what names the failing path. */
int log_open(const char *error_path, const char *access_path, int level, const char **what);

/* Name this process in error log lines ("master", "worker"). */
void log_set_process(const char *name);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(HC_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(HC_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(HC_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(HC_LOG_DEBUG, __VA_ARGS__)

/* One access log entry; strings are NUL-terminated, NULL prints "-". */
struct access_entry {
	const char *client;
	const char *user;
	const char *method;
	const char *target;
	int status;
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t duration_ms;
	const char *upstream;
	const char *outcome;
	const char *rule;      /* the [rule.NAME] that decided, "default", or NULL */
};

void log_access(const struct access_entry *e);
int log_access_enabled(void);

/* Format the current time as ISO 8601 UTC with milliseconds into buf (>= 32). */
void log_time(char *buf, unsigned long len);

#endif

/* log.c - error log and access log.
 *
 * Every line is written with a single write(2) on a descriptor opened with
 * O_APPEND, so the lines of several workers never interleave. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int error_fd = STDERR_FILENO;
static int access_fd = -1;
static int log_level = HC_LOG_INFO;
static const char *process_name = "hopcache";

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Open path for appending, or return the given standard descriptor for "-". */
static int open_log(const char *path, int std_fd)
{
	if (path == NULL || strcmp(path, "-") == 0)
		return std_fd;
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int log_open(const char *error_path, const char *access_path, int level, const char **what)
{
	int efd = open_log(error_path, STDERR_FILENO);
	if (efd < 0) {
		*what = error_path;
		return -errno;
	}
	int afd = -1;
	if (access_path != NULL) {
		afd = open_log(access_path, STDOUT_FILENO);
		if (afd < 0) {
			int e = errno;
			if (efd > STDERR_FILENO)
				close(efd);
			*what = access_path;
			return -e;
		}
	}
	if (error_fd > STDERR_FILENO)
		close(error_fd);
	if (access_fd > STDERR_FILENO)
		close(access_fd);
	error_fd = efd;
	access_fd = afd;
	log_level = level;
	return 0;
}

void log_set_process(const char *name)
{
	process_name = name;
}

void log_time(char *buf, unsigned long len)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char line[2048];
	char ts[40];
	log_time(ts, sizeof(ts));
	int n = snprintf(line, sizeof(line), "%s [%s] %s[%d]: ", ts, level_names[level],
			 process_name, (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(error_fd, line, len);
	(void)w;
}

int log_access_enabled(void)
{
	return access_fd >= 0;
}

/* Copy s into the log line, replacing bytes that would break a space-separated
 * line (spaces, controls, non-ASCII) with '%XX' so auditors' tools can split it. */
static size_t put_field(char *out, size_t room, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	if (s == NULL || *s == '\0')
		s = "-";
	size_t n = 0;
	for (; *s && n + 4 < room; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '"') {
			out[n++] = '%';
			out[n++] = hex[ch >> 4];
			out[n++] = hex[ch & 15];
		} else {
			out[n++] = (char)ch;
		}
	}
	return n;
}

/* Bytes left in a line of size `size` after `used`, keeping `reserve` spare. */
static size_t room_left(size_t size, size_t used, size_t reserve)
{
	return used + reserve < size ? size - used - reserve : 0;
}

void log_access(const struct access_entry *e)
{
	if (access_fd < 0)
		return;
	char line[4096];
	size_t n = 0;
	char ts[40];
	log_time(ts, sizeof(ts));
	const char *text[] = { ts, e->client, e->user, e->method, e->target };
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		n += put_field(line + n, room_left(sizeof(line), n, 200), text[i]);
		line[n++] = ' ';
	}
	n += (size_t)snprintf(line + n, sizeof(line) - n, "%d %llu %llu %llu ", e->status,
			      (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out,
			      (unsigned long long)e->duration_ms);
	n += put_field(line + n, room_left(sizeof(line), n, 80), e->upstream);
	line[n++] = ' ';
	n += put_field(line + n, room_left(sizeof(line), n, 70), e->outcome);
	line[n++] = ' ';
	n += put_field(line + n, room_left(sizeof(line), n, 2), e->rule);
	line[n++] = '\n';
	ssize_t w = write(access_fd, line, n);
	(void)w;
}

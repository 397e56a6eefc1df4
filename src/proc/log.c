/* log.c - error log and access log.
 *
 * Every line is written with a single write(2) on a descriptor opened with
 * O_APPEND, so the lines of several workers never interleave; the path
 * "syslog" sends lines to syslog(3) instead.
 *
 * Access lines come in four formats (log_format_access):
 *   native    TIME CLIENT USER METHOD TARGET STATUS BYTES_IN BYTES_OUT
 *             DURATION_MS UPSTREAM OUTCOME RULE, bytes that would break the
 *             columns (space, controls, non-ASCII, '%', '"') as %XX.
 *   squid     Squid's default "squid" logformat, for calamaris, SARG and
 *             lightsquid; space, controls and non-ASCII as %XX.
 *   combined  Apache/NCSA combined, escaped as Apache's ap_escape_logitem
 *             does (\" \\ \n \r \t \b \v, other controls and non-ASCII as
 *             \xhh); a space in the unquoted client and user fields as \x20.
 *   json      one object per line: time client user method target version
 *             status bytes_in bytes_out duration_ms upstream outcome cache
 *             rule referer user_agent content_type upstream_host tunnel
 *             parent, absent strings as null. Valid UTF-8 passes through; a
 *             byte that is not part of valid UTF-8 is written as \u00XX, i.e.
 *             read as ISO-8859-1 (what obsolete HTTP header text was), and
 *             controls, DEL, '"' and '\' are escaped.
 *
 * A line longer than the buffer loses bytes from its longest fields only:
 * every field first gets its minimum ("-", null, quotes), the rest is shared
 * fairly, and escapes and UTF-8 characters are never split. */
#include "log.h"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FD_NONE (-1)   /* no access log */
#define FD_SYSLOG (-2) /* syslog(3) */

static int error_fd = STDERR_FILENO;
static int access_fd = FD_NONE;
static int log_level = HC_LOG_INFO;
static int access_format = CONFIG_LOGFMT_NATIVE;
static int syslog_facility = LOG_DAEMON;
static bool syslog_opened;
static const char *process_name = "hopcache";

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Open path for appending, or return the given standard descriptor for "-". */
static int open_log(const char *path, int std_fd)
{
	if (path == NULL || strcmp(path, "-") == 0)
		return std_fd;
	if (strcmp(path, "syslog") == 0)
		return FD_SYSLOG;
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* Make fd the log descriptor *cur. A file replacing a file takes over the old
 * descriptor number (dup2 swaps it atomically), so a write never meets a
 * closed descriptor; standard descriptors are never closed. */
static void install_fd(int *cur, int fd)
{
	int old = *cur;

	if (old == fd)
		return;
	if (old > STDERR_FILENO && fd > STDERR_FILENO && dup2(fd, old) == old) {
		(void)fcntl(old, F_SETFD, FD_CLOEXEC);
		close(fd);
		return;
	}
	*cur = fd;
	if (old > STDERR_FILENO)
		close(old);
}

/* Connect to syslog when a log goes there, disconnect when none does. */
static void update_syslog(void)
{
	if (syslog_opened)
		closelog();
	syslog_opened = error_fd == FD_SYSLOG || access_fd == FD_SYSLOG;
	if (syslog_opened)
		openlog("hopcache", LOG_PID | LOG_NDELAY, syslog_facility);
}

int log_open(const char *error_path, const char *access_path, int level, const char **what)
{
	int efd = open_log(error_path, STDERR_FILENO);
	if (efd == -1) {
		*what = error_path;
		return -errno;
	}
	int afd = FD_NONE;
	if (access_path != NULL) {
		afd = open_log(access_path, STDOUT_FILENO);
		if (afd == -1) {
			int e = errno;
			if (efd > STDERR_FILENO)
				close(efd);
			*what = access_path;
			return -e;
		}
	}
	install_fd(&error_fd, efd);
	install_fd(&access_fd, afd);
	log_level = level;
	update_syslog();
	return 0;
}

void log_set_process(const char *name)
{
	process_name = name;
}

void log_set_access_format(int format)
{
	access_format = format;
}

void log_set_syslog_facility(int facility)
{
	syslog_facility = facility;
}

/* ISO 8601 UTC with milliseconds: 2026-11-30T05:24:08.123Z. */
static void iso_time(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(ts->tv_nsec / 1000000));
}

void log_time(char *buf, unsigned long len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	iso_time(&ts, buf, len);
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char line[2048];
	int n = 0;
	if (error_fd != FD_SYSLOG) {
		char ts[40];
		log_time(ts, sizeof(ts));
		n = snprintf(line, sizeof(line), "%s [%s] %s[%d]: ", ts, level_names[level],
			     process_name, (int)getpid());
	}
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	if (error_fd == FD_SYSLOG) {
		line[len] = '\0';
		syslog(level_priorities[level], "%s: %s", process_name, line);
		return;
	}
	line[len++] = '\n';
	ssize_t w = write(error_fd, line, len);
	(void)w;
}

int log_access_enabled(void)
{
	return access_fd != FD_NONE;
}

/* --- access line formatting ------------------------------------------------ */

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

/* An escaper writes the escape unit for the bytes at s (at most 8 bytes) into
 * out, sets *used to the bytes consumed, and returns the unit's length. */
typedef size_t (*escape_fn)(const unsigned char *s, char *out, size_t *used);

static size_t pct(unsigned char ch, char *out)
{
	out[0] = '%';
	out[1] = hex_upper[ch >> 4];
	out[2] = hex_upper[ch & 15];
	return 3;
}

/* native: anything that would break a space-separated line, plus '%' and '"'. */
static size_t esc_native(const unsigned char *s, char *out, size_t *used)
{
	*used = 1;
	if (*s <= 0x20 || *s >= 0x7f || *s == '%' || *s == '"')
		return pct(*s, out);
	out[0] = (char)*s;
	return 1;
}

/* squid: space, controls and non-ASCII; '%' stays (URLs are already encoded). */
static size_t esc_squid(const unsigned char *s, char *out, size_t *used)
{
	*used = 1;
	if (*s <= 0x20 || *s >= 0x7f)
		return pct(*s, out);
	out[0] = (char)*s;
	return 1;
}

/* combined: Apache's ap_escape_logitem. */
static size_t esc_apache(const unsigned char *s, char *out, size_t *used)
{
	static const char named_from[] = "\b\n\r\t\v\\\"";
	static const char named_to[] = "bnrtv\\\"";
	const char *p = *s != '\0' ? strchr(named_from, *s) : NULL;

	*used = 1;
	if (p != NULL) {
		out[0] = '\\';
		out[1] = named_to[p - named_from];
		return 2;
	}
	if (*s < 0x20 || *s >= 0x7f) {
		out[0] = '\\';
		out[1] = 'x';
		out[2] = hex_lower[*s >> 4];
		out[3] = hex_lower[*s & 15];
		return 4;
	}
	out[0] = (char)*s;
	return 1;
}

/* combined, unquoted fields (client, user): a space must not split them. */
static size_t esc_apache_bare(const unsigned char *s, char *out, size_t *used)
{
	if (*s == ' ') {
		*used = 1;
		memcpy(out, "\\x20", 4);
		return 4;
	}
	return esc_apache(s, out, used);
}

/* Length of the valid (shortest form, no surrogate, <= U+10FFFF) UTF-8
 * sequence starting at s, or 0. Stops at the first bad byte, so never reads
 * past a NUL. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		lo = s[0] == 0xe0 ? 0xa0 : 0x80;
		hi = s[0] == 0xed ? 0x9f : 0xbf;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		lo = s[0] == 0xf0 ? 0x90 : 0x80;
		hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	} else {
		return 0;
	}
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* json: '"' and '\' with a backslash, controls, DEL and bytes outside valid
 * UTF-8 as \u00XX, valid UTF-8 whole. */
static size_t esc_json(const unsigned char *s, char *out, size_t *used)
{
	size_t n;

	*used = 1;
	if (*s == '"' || *s == '\\') {
		out[0] = '\\';
		out[1] = (char)*s;
		return 2;
	}
	if (*s >= 0x80 && (n = utf8_len(s)) > 0) {
		memcpy(out, s, n);
		*used = n;
		return n;
	}
	if (*s < 0x20 || *s >= 0x7f) {
		memcpy(out, "\\u00", 4);
		out[4] = hex_lower[*s >> 4];
		out[5] = hex_lower[*s & 15];
		return 6;
	}
	out[0] = (char)*s;
	return 1;
}

/* One piece of a line: the literal `pre`, then s. With an escaper, s is a
 * value written escaped between two `quote`s, or `none` when NULL or empty;
 * without one, s (if any) is literal text (time, numbers). */
struct piece {
	const char *pre;
	const char *s;
	escape_fn esc;
	const char *none;
	const char *quote;
};

/* The line being built: bytes 0..cap-1 are usable, "\n\0" always fits after. */
struct line {
	char *buf;
	size_t cap;
	size_t n;
};

static bool present(const char *s)
{
	return s != NULL && *s != '\0';
}

/* The fewest bytes the piece can take: the whole line keeps its shape when
 * the buffer holds the sum of these. */
static size_t piece_min(const struct piece *p)
{
	size_t n = strlen(p->pre);
	if (p->esc == NULL)
		return n + (p->s != NULL ? strlen(p->s) : 0);
	size_t none = strlen(p->none), quotes = 2 * strlen(p->quote);
	return n + (none > quotes ? none : quotes);
}

/* The bytes the piece takes written whole (counting stops past limit). */
static size_t piece_want(const struct piece *p, size_t limit)
{
	size_t min = piece_min(p);
	if (p->esc == NULL || !present(p->s))
		return min;
	size_t n = strlen(p->pre) + 2 * strlen(p->quote);
	const unsigned char *s = (const unsigned char *)p->s;
	while (*s != '\0' && n <= limit) {
		char unit[8];
		size_t used;
		n += p->esc(s, unit, &used);
		s += used;
	}
	return n > min ? n : min;
}

/* Append literal text, cut at the end of the usable space. */
static void put_raw(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (n > l->cap - l->n)
		n = l->cap - l->n;
	memcpy(l->buf + l->n, s, n);
	l->n += n;
}

/* Append an escaped value, whole escape units only, leaving `reserve` bytes
 * for the rest of the line; a value cut to nothing is written as `none`.
 * Since every reserve holds at least the minimum of the pieces after it, the
 * line keeps all its pieces whenever the buffer holds their minimums. */
static void put_value(struct line *l, const struct piece *p, size_t reserve)
{
	const unsigned char *s = (const unsigned char *)p->s;
	size_t q = strlen(p->quote);

	if (!present(p->s)) {
		put_raw(l, p->none);
		return;
	}
	put_raw(l, p->quote);
	size_t start = l->n;
	while (*s != '\0') {
		char unit[8];
		size_t used, u = p->esc(s, unit, &used);
		if (l->n + u + q + reserve > l->cap)
			break;
		memcpy(l->buf + l->n, unit, u);
		l->n += u;
		s += used;
	}
	if (l->n == start && q == 0)
		put_raw(l, p->none);
	put_raw(l, p->quote);
}

#define PIECES_MAX 24

/* Share the usable bytes among the pieces: each gets its minimum, then the
 * rest is shared fairly (max-min: a short field is written whole, the long
 * ones split what remains), so a huge target never pushes out the short
 * fields after it. */
static void share(const struct piece *p, size_t np, size_t cap, size_t *alloc)
{
	size_t want[PIECES_MAX], total = 0, rest, i;

	for (i = 0; i < np; i++) {
		alloc[i] = piece_min(&p[i]);
		want[i] = piece_want(&p[i], cap);
		total += alloc[i];
	}
	rest = cap > total ? cap - total : 0;
	for (;;) {
		size_t hungry = 0;
		for (i = 0; i < np; i++)
			hungry += alloc[i] < want[i];
		if (hungry == 0 || rest == 0)
			return;
		size_t slice = rest / hungry > 0 ? rest / hungry : 1;
		for (i = 0; i < np && rest > 0; i++) {
			size_t more = want[i] - alloc[i];
			more = more < slice ? more : slice;
			alloc[i] += more;
			rest -= more;
		}
	}
}

static size_t put_pieces(const struct piece *p, size_t np, char *buf, size_t len)
{
	size_t alloc[PIECES_MAX], reserve = 0, i;

	if (len < 2 || np > PIECES_MAX) {
		if (len > 0)
			buf[0] = '\0';
		return 0;
	}
	struct line l = { .buf = buf, .cap = len - 2, .n = 0 };
	share(p, np, l.cap, alloc);
	for (i = 0; i < np; i++)
		reserve += alloc[i];
	for (i = 0; i < np; i++) {
		reserve -= alloc[i];
		put_raw(&l, p[i].pre);
		if (p[i].esc != NULL)
			put_value(&l, &p[i], reserve);
		else if (p[i].s != NULL)
			put_raw(&l, p[i].s);
	}
	buf[l.n++] = '\n';
	buf[l.n] = '\0';
	return l.n;
}

#define LIT(pre_, s_) { .pre = (pre_), .s = (s_) }
#define VAL(pre_, s_, esc_) { .pre = (pre_), .s = (s_), .esc = (esc_), .none = "-", .quote = "" }
#define JSTR(key_, s_) { .pre = ",\"" key_ "\":", .s = (s_), .esc = esc_json, .none = "null", .quote = "\"" }
#define NPIECES(a) (sizeof(a) / sizeof((a)[0]))

static size_t format_native(const struct access_entry *e, const struct timespec *now, char *buf,
			    size_t len)
{
	char ts[40], nums[100];
	iso_time(now, ts, sizeof(ts));
	snprintf(nums, sizeof(nums), "%d %llu %llu %llu", e->status, (unsigned long long)e->bytes_in,
		 (unsigned long long)e->bytes_out, (unsigned long long)e->duration_ms);
	const struct piece p[] = {
		VAL("", ts, esc_native),
		VAL(" ", e->client, esc_native),
		VAL(" ", e->user, esc_native),
		VAL(" ", e->method, esc_native),
		VAL(" ", e->target, esc_native),
		LIT(" ", nums),
		VAL(" ", e->upstream, esc_native),
		VAL(" ", outcome_name(e->outcome), esc_native),
		VAL(" ", e->rule, esc_native),
	};
	return put_pieces(p, NPIECES(p), buf, len);
}

static bool is(const char *s, const char *word)
{
	return s != NULL && strcmp(s, word) == 0;
}

/* The cache outcome: e->cache, or for callers that only set the outcome,
 * the cache words of the OUTCOME field. */
static const char *cache_of(const struct access_entry *e)
{
	if (present(e->cache))
		return e->cache;
	if (outcome_is_cache_served(e->outcome))
		return outcome_name(e->outcome);
	return NULL;
}

/* Squid's result code: TCP_DENIED for a policy or authentication refusal,
 * TCP_TUNNEL for an established tunnel, the cache codes, else TCP_MISS
 * (which Squid also writes, with the status, when the origin failed). */
static const char *squid_code(const struct access_entry *e)
{
	const char *cache = cache_of(e);

	if (e->outcome == OUTCOME_AUTH_REQUIRED || e->outcome == OUTCOME_AUTH_BLOCKED ||
	    outcome_is_denial(e->outcome))
		return "TCP_DENIED";
	if ((e->tunnel || e->outcome == OUTCOME_TUNNEL) && e->status >= 200 && e->status < 300)
		return "TCP_TUNNEL";
	if (is(cache, "HIT"))
		return "TCP_HIT";
	if (is(cache, "REFRESH"))
		return "TCP_REFRESH_UNMODIFIED";
	if (is(cache, "STALE"))
		return "TCP_REFRESH_FAIL_OLD";
	return "TCP_MISS";
}

/* The IP of an "ip:port" or "[ip]:port" upstream into ip (NULL when none). */
static const char *upstream_ip(const char *upstream, char *ip, size_t len)
{
	if (!present(upstream))
		return NULL;
	snprintf(ip, len, "%s", upstream[0] == '[' ? upstream + 1 : upstream);
	char *end = upstream[0] == '[' ? strchr(ip, ']') : strchr(ip, ':');
	if (end != NULL && (upstream[0] == '[' || strchr(end + 1, ':') == NULL))
		*end = '\0';
	return ip;
}

static size_t format_squid(const struct access_entry *e, const struct timespec *now, char *buf,
			   size_t len)
{
	char head[80], code[80], ip[80];
	const char *peer = upstream_ip(e->upstream, ip, sizeof(ip));
	const char *hier = peer == NULL ? " HIER_NONE/" : e->parent ? " FIRST_UP_PARENT/" : " HIER_DIRECT/";

	snprintf(head, sizeof(head), "%9lld.%03d %6llu", (long long)now->tv_sec,
		 (int)(now->tv_nsec / 1000000), (unsigned long long)e->duration_ms);
	snprintf(code, sizeof(code), "%s/%03d %llu", squid_code(e), e->status,
		 (unsigned long long)e->bytes_out);
	const struct piece p[] = {
		LIT("", head),
		VAL(" ", e->client, esc_squid),
		LIT(" ", code),
		VAL(" ", e->method, esc_squid),
		VAL(" ", e->target, esc_squid),
		VAL(" ", e->user, esc_squid),
		VAL(hier, peer, esc_squid),
		VAL(" ", e->content_type, esc_squid),
	};
	return put_pieces(p, NPIECES(p), buf, len);
}

static size_t format_combined(const struct access_entry *e, const struct timespec *now, char *buf,
			      size_t len)
{
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char ts[40], tail[80];
	struct tm tm;

	gmtime_r(&now->tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (e->bytes_out > 0)
		snprintf(tail, sizeof(tail), "%03d %llu", e->status, (unsigned long long)e->bytes_out);
	else
		snprintf(tail, sizeof(tail), "%03d -", e->status);
	const struct piece p[] = {
		VAL("", e->client, esc_apache_bare),
		VAL(" - ", e->user, esc_apache_bare),
		LIT(" [", ts),
		VAL("] \"", e->method, esc_apache),
		VAL(" ", e->target, esc_apache),
		VAL(" ", present(e->version) ? e->version : "HTTP/1.1", esc_apache),
		LIT("\" ", tail),
		VAL(" \"", e->referer, esc_apache),
		VAL("\" \"", e->user_agent, esc_apache),
		LIT("\"", NULL),
	};
	return put_pieces(p, NPIECES(p), buf, len);
}

static size_t format_json(const struct access_entry *e, const struct timespec *now, char *buf,
			  size_t len)
{
	char ts[40], st[16], bin[24], bout[24], dur[24];

	iso_time(now, ts, sizeof(ts));
	snprintf(st, sizeof(st), "%d", e->status);
	snprintf(bin, sizeof(bin), "%llu", (unsigned long long)e->bytes_in);
	snprintf(bout, sizeof(bout), "%llu", (unsigned long long)e->bytes_out);
	snprintf(dur, sizeof(dur), "%llu", (unsigned long long)e->duration_ms);
	const struct piece p[] = {
		LIT("{\"time\":\"", ts),
		LIT("\"", NULL),
		JSTR("client", e->client),
		JSTR("user", e->user),
		JSTR("method", e->method),
		JSTR("target", e->target),
		JSTR("version", present(e->version) ? e->version : "HTTP/1.1"),
		LIT(",\"status\":", st),
		LIT(",\"bytes_in\":", bin),
		LIT(",\"bytes_out\":", bout),
		LIT(",\"duration_ms\":", dur),
		JSTR("upstream", e->upstream),
		JSTR("outcome", outcome_name(e->outcome)),
		JSTR("cache", cache_of(e)),
		JSTR("rule", e->rule),
		JSTR("referer", e->referer),
		JSTR("user_agent", e->user_agent),
		JSTR("content_type", e->content_type),
		JSTR("upstream_host", e->upstream_host),
		LIT(",\"tunnel\":", e->tunnel ? "true" : "false"),
		LIT(",\"parent\":", e->parent ? "true" : "false"),
		LIT("}", NULL),
	};
	return put_pieces(p, NPIECES(p), buf, len);
}

size_t log_format_access(int format, const struct access_entry *e, const struct timespec *now,
			 char *buf, size_t len)
{
	struct timespec ts;

	if (now == NULL) {
		clock_gettime(CLOCK_REALTIME, &ts);
		now = &ts;
	}
	switch (format) {
	case CONFIG_LOGFMT_SQUID:
		return format_squid(e, now, buf, len);
	case CONFIG_LOGFMT_COMBINED:
		return format_combined(e, now, buf, len);
	case CONFIG_LOGFMT_JSON:
		return format_json(e, now, buf, len);
	default:
		return format_native(e, now, buf, len);
	}
}

void log_access(const struct access_entry *e)
{
	if (access_fd == FD_NONE)
		return;
	char line[4096];
	size_t n = log_format_access(access_format, e, NULL, line, sizeof(line));
	if (access_fd == FD_SYSLOG) {
		if (n > 0)
			line[n - 1] = '\0';
		syslog(LOG_INFO, "%s", line);
		return;
	}
	ssize_t w = write(access_fd, line, n);
	(void)w;
}

/* config_ini.c - the INI text through iniparser (config_ini.h).
 *
 * The file is read once. The same bytes go to the prescan (what iniparser
 * would lose or choke on) and to iniparser. iniparser 4.1 reads only a path
 * (iniparser_load_file, which takes a FILE *, came with 4.2), so the text is
 * handed to it as a private temporary file: the mechanism that was already
 * there for config_load_string and for reparsing without the bad lines.
 * Nothing re-opens the user's file, so prescan and iniparser cannot see two
 * different versions of it.
 *
 * This is the only file that includes the iniparser header.
 */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include "config_ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(HAVE_INIPARSER_INIPARSER_H) || !defined(HAVE_CONFIG_H)
#include <iniparser/iniparser.h>
#else
#include <iniparser.h>
#endif

#include "config_value.h"

/* iniparser 4.1 reads lines into a 1024-byte buffer and fails beyond it. */
#define CONFIG_MAX_LINE 1000

/* ---- reading ----------------------------------------------------------------- */

char *config_ini_read(struct config_check *chk, const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *buf;
	size_t n;

	if (f == NULL) {
		config_error(chk, "%s: cannot open: %s", chk->name, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0) {
		config_error(chk, "%s: cannot stat: %s", chk->name, strerror(errno));
		fclose(f);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		config_error(chk, "%s: cannot read: %s", chk->name, strerror(EISDIR));
		fclose(f);
		return NULL;
	}
	buf = malloc(CONFIG_MAX_FILE + 2);
	if (buf == NULL) {
		config_error(chk, "%s: out of memory", chk->name);
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	if (ferror(f)) {
		config_error(chk, "%s: cannot read: %s", chk->name, strerror(errno));
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*lenp = n;
	return buf;
}

/* ---- prescan ----------------------------------------------------------------- */

/* Lowercased, trimmed copy of [p, p+n) into out (truncated to outlen). */
static void trim_lower(const char *p, size_t n, char *out, size_t outlen)
{
	size_t i, o = 0;

	while (n > 0 && isspace((unsigned char)*p))
		p++, n--;
	while (n > 0 && isspace((unsigned char)p[n - 1]))
		n--;
	for (i = 0; i < n && o + 1 < outlen; i++)
		out[o++] = (char)tolower((unsigned char)p[i]);
	out[o] = '\0';
}

/* A key seen by prescan, for duplicate detection. */
struct seen_key {
	char *name; /* "section:key" */
	int line;
};

/* What the prescan carries from one logical line to the next. */
struct prescan {
	struct config_check *chk;
	char section[CONFIG_MAX_LINE + 2];
	struct seen_key *seen;
	size_t nseen;
};

/* Note "section:key" first given on line; report it when it was given before. */
static void prescan_key(struct prescan *ps, const char *key, int line)
{
	char full[2 * CONFIG_MAX_LINE + 4];
	struct seen_key *grown;
	size_t i;

	snprintf(full, sizeof(full), "%s:%s", ps->section, key);
	for (i = 0; i < ps->nseen; i++) {
		if (strcmp(ps->seen[i].name, full) != 0)
			continue;
		if (*ps->section != '\0')
			config_error(ps->chk, "%s: [%s] %s: given twice (lines %d and %d); give it once",
				     ps->chk->name, ps->section, key, ps->seen[i].line, line);
		else
			config_error(ps->chk, "%s: %s: given twice (lines %d and %d); give it once",
				     ps->chk->name, key, ps->seen[i].line, line);
		ps->seen[i].line = line;
		return;
	}
	grown = realloc(ps->seen, (ps->nseen + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	ps->seen = grown;
	if ((ps->seen[ps->nseen].name = strdup(full)) == NULL)
		return;
	ps->seen[ps->nseen++].line = line;
}

/* One logical line (continuations joined), read as iniparser reads it. */
static void prescan_line(struct prescan *ps, const char *logical, int line)
{
	const char *p = logical, *eq;
	char key[CONFIG_MAX_LINE + 2];
	size_t plen;

	while (isspace((unsigned char)*p))
		p++;
	plen = strlen(p);
	if (plen == 0 || *p == '#' || *p == ';')
		return;
	if (*p == '[' && p[plen - 1] == ']') {
		/* like iniparser: the name runs to the first ']'; "[]" changes nothing */
		size_t slen = strcspn(p + 1, "]");

		if (slen > 0)
			trim_lower(p + 1, slen, ps->section, sizeof(ps->section));
		return;
	}
	eq = strchr(p, '=');
	if (eq == NULL)
		return; /* iniparser reports the syntax error */
	trim_lower(p, (size_t)(eq - p), key, sizeof(key));
	if (*key != '\0')
		prescan_key(ps, key, line);
}

/* A NUL byte: reported with its line (iniparser would stop reading there). */
static int prescan_nul(struct config_check *chk, const char *text, size_t len)
{
	const char *nul = memchr(text, '\0', len);
	int line = 1;

	if (nul == NULL)
		return 0;
	for (const char *p = text; p < nul; p++)
		line += *p == '\n';
	config_error(chk, "%s: line %d: contains a NUL byte", chk->name, line);
	return -1;
}

/* Check the raw text for what iniparser would lose or choke on: NUL bytes,
 * overlong lines, keys given twice (iniparser silently keeps the last).
 * Returns -1 when iniparser must not be run on this text. */
static int prescan(struct config_check *chk, const char *text, size_t len)
{
	struct prescan ps = { .chk = chk };
	size_t start = 0, logical_len = 0;
	char logical[CONFIG_MAX_LINE + 2];
	int lineno = 0, logical_line = 0, rc = 0;

	if (prescan_nul(chk, text, len) < 0)
		return -1;
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t n = end - start;
		const char *line = text + start;

		lineno++;
		start = end + 1;
		while (n > 0 && isspace((unsigned char)line[n - 1]))
			n--;
		if (logical_len == 0)
			logical_line = lineno;
		if (logical_len + n > CONFIG_MAX_LINE) {
			config_error(chk, "%s: line %d: line too long (at most %d characters, "
				     "continuations included)", chk->name, logical_line, CONFIG_MAX_LINE);
			rc = -1;
			break;
		}
		memcpy(logical + logical_len, line, n);
		logical_len += n;
		if (n > 0 && line[n - 1] == '\\') {
			logical_len--; /* iniparser joins over the backslash */
			continue;
		}
		logical[logical_len] = '\0';
		logical_len = 0;
		prescan_line(&ps, logical, logical_line);
	}
	for (size_t i = 0; i < ps.nseen; i++)
		free(ps.seen[i].name);
	free(ps.seen);
	return rc;
}

/* ---- iniparser --------------------------------------------------------------- */

/* The parse whose iniparser messages are being collected (iniparser's
 * callback has no argument), and the lines it called syntax errors. */
struct ini_state {
	struct config_check *chk;
	int *bad;
	size_t nbad;
};
static struct ini_state *ini_state;

/* iniparser's error callback: turn its messages into ours. */
static int ini_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ini_error(const char *fmt, ...)
{
	struct ini_state *st = ini_state;
	va_list ap;
	char buf[512], q[96];
	int line;

	if (st == NULL)
		return 0;
	va_start(ap, fmt);
	if (strcmp(fmt, "iniparser: syntax error in %s (%d):\n-> %s\n") == 0) {
		int *grown = realloc(st->bad, (st->nbad + 1) * sizeof(*grown));

		(void)va_arg(ap, const char *);
		line = va_arg(ap, int);
		config_quote(va_arg(ap, const char *), q, sizeof(q));
		if (grown != NULL) {
			st->bad = grown;
			st->bad[st->nbad++] = line;
		}
		config_error(st->chk, "%s: line %d: syntax error: expected [section] or key = value, "
			     "got %s", st->chk->name, line, q);
	} else if (strcmp(fmt, "iniparser: input line too long in %s (%d)\n") == 0) {
		(void)va_arg(ap, const char *);
		line = va_arg(ap, int);
		config_error(st->chk, "%s: line %d: line too long (at most %d characters, "
			     "continuations included)", st->chk->name, line, CONFIG_MAX_LINE);
	} else {
		size_t n;

		vsnprintf(buf, sizeof(buf), fmt, ap);
		n = strlen(buf);
		while (n > 0 && isspace((unsigned char)buf[n - 1]))
			buf[--n] = '\0';
		config_error(st->chk, "%s: %s", st->chk->name, buf);
	}
	va_end(ap);
	return 0;
}

/* Write text to a new private temporary file; its path goes to path. */
static int write_temp(struct config_check *chk, const char *text, size_t len, char *path,
		      size_t pathlen)
{
	const char *dir = getenv("TMPDIR");
	size_t off = 0;
	int fd;

	if (dir == NULL || *dir == '\0')
		dir = "/tmp";
	snprintf(path, pathlen, "%s/hopcache-config-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0) {
		config_error(chk, "%s: cannot create a temporary file in %s: %s", chk->name, dir,
			     strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			config_error(chk, "%s: cannot write a temporary file: %s", chk->name,
				     strerror(errno));
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)w;
	}
	close(fd);
	return 0;
}

/* iniparser on text, through a temporary file; NULL when it gives up. */
static dictionary *load_text(struct config_check *chk, const char *text, size_t len)
{
	char path[4096];
	dictionary *d;

	if (write_temp(chk, text, len, path, sizeof(path)) < 0)
		return NULL;
	d = iniparser_load(path);
	unlink(path);
	return d;
}

/* iniparser gives up on a file with syntax errors. To report the problems
 * in the rest of the file too, parse a copy with those lines (and the lines
 * continued into them) blanked; its own complaints are not repeated. */
static dictionary *load_without_bad_lines(struct ini_state *st, const char *text, size_t len)
{
	char *copy;
	size_t *start = NULL, nlines = 0, i, k;
	dictionary *d = NULL;

	copy = malloc(len + 1);
	start = malloc((len + 2) * sizeof(*start));
	if (copy == NULL || start == NULL)
		goto out;
	memcpy(copy, text, len + 1);
	start[nlines++] = 0;
	for (i = 0; i < len; i++)
		if (copy[i] == '\n')
			start[nlines++] = i + 1;
	for (k = 0; k < st->nbad; k++) {
		size_t l = (size_t)st->bad[k];

		if (l < 1 || l > nlines)
			continue;
		/* blank line l, then earlier lines that continue into it */
		for (i = l - 1;; i--) {
			size_t b = start[i], e = i + 1 < nlines ? start[i + 1] - 1 : len;
			bool continued;

			while (e > b && isspace((unsigned char)copy[e - 1]))
				e--;
			continued = e > b && copy[e - 1] == '\\';
			if (i != l - 1 && !continued)
				break;
			memset(copy + b, ' ', e - b);
			if (i == 0)
				break;
		}
	}
	d = load_text(st->chk, copy, len);
out:
	free(start);
	free(copy);
	return d;
}

/* iniparser on text, its syntax errors reported; the dictionary of what
 * it could read, or NULL. */
static dictionary *parse_text(struct config_check *chk, const char *text, size_t len)
{
	struct ini_state st = { .chk = chk };
	dictionary *d;

	iniparser_set_error_callback(ini_error);
	ini_state = &st;
	d = load_text(chk, text, len);
	ini_state = NULL; /* the second pass's complaints are already reported */
	if (d == NULL && st.nbad > 0)
		d = load_without_bad_lines(&st, text, len);
	iniparser_set_error_callback(NULL);
	free(st.bad);
	return d;
}

/* ---- entries ----------------------------------------------------------------- */

/* The section of the key entry full: the longest prefix before a ':' that
 * iniparser holds as a section (sections are the entries without a value).
 * Its length, or 0 when there is none. */
static size_t section_len(const dictionary *d, const char *full)
{
	static const char absent[] = "";
	char secbuf[4096];

	for (size_t i = strlen(full); i-- > 0;) {
		if (full[i] != ':' || i >= sizeof(secbuf))
			continue;
		memcpy(secbuf, full, i);
		secbuf[i] = '\0';
		if (iniparser_getstring(d, secbuf, absent) == NULL)
			return i;
	}
	return 0;
}

/* The dictionary's entries, in its order (the file's: iniparser appends). */
static struct config_ini *index_entries(struct config_check *chk, dictionary *d)
{
	struct config_ini *ini = calloc(1, sizeof(*ini));

	if (ini == NULL || (d->size > 0 && (ini->entries = calloc((size_t)d->size,
								   sizeof(*ini->entries))) == NULL)) {
		config_error(chk, "%s: out of memory", chk->name);
		free(ini);
		iniparser_freedict(d);
		return NULL;
	}
	ini->dict = d;
	for (ssize_t i = 0; i < d->size; i++) {
		struct config_ini_entry *e = &ini->entries[ini->n];
		const char *full = d->key[i];
		size_t seclen;

		if (full == NULL)
			continue;
		ini->n++;
		if (d->val[i] == NULL) {
			e->section = strdup(full);
		} else if ((seclen = section_len(d, full)) == 0) {
			e->key = full[0] == ':' ? full + 1 : full; /* outside any section */
			e->val = d->val[i];
			continue;
		} else {
			e->section = strndup(full, seclen);
			e->key = full + seclen + 1;
			e->val = d->val[i];
		}
		if (e->section == NULL) {
			config_error(chk, "%s: out of memory", chk->name);
			config_ini_free(ini);
			return NULL;
		}
	}
	return ini;
}

struct config_ini *config_ini_parse(struct config_check *chk, const char *text, size_t len)
{
	dictionary *d;

	if (len > CONFIG_MAX_FILE) {
		config_error(chk, "%s: larger than %d bytes; is this the config file?", chk->name,
			     CONFIG_MAX_FILE);
		return NULL;
	}
	if (prescan(chk, text, len) < 0)
		return NULL;
	d = parse_text(chk, text, len);
	if (d == NULL) {
		if (chk->nerr == 0)
			config_error(chk, "%s: cannot parse", chk->name);
		return NULL;
	}
	return index_entries(chk, d);
}

void config_ini_free(struct config_ini *ini)
{
	if (ini == NULL)
		return;
	for (size_t i = 0; i < ini->n; i++)
		free(ini->entries[i].section);
	free(ini->entries);
	if (ini->dict != NULL)
		iniparser_freedict(ini->dict);
	free(ini);
}

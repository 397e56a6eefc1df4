/* directory_config.c - the [ldap] checks across keys (config_check.h): the
 * URIs, the DNs, the filters, the bind password file (read here, at load,
 * so that -t and a reload find a missing or empty one), and [auth]
 * basic_backend = ldap. Nothing here talks to the directory. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config_check.h"
#include "config_impl.h"
#include "dir_filter.h"

/* The longest bind password file read. */
#define LDAP_PASSWORD_MAX 4096

/* Check one URI of [ldap] uri ("ldap://host[:port][/]"); append it to out
 * (space-separated). */
static void check_uri(struct config_check *chk, const char *u, size_t len, FILE *out, bool *ldaps)
{
	size_t skip = len >= 7 && strncasecmp(u, "ldap://", 7) == 0    ? 7
		      : len >= 8 && strncasecmp(u, "ldaps://", 8) == 0 ? 8
								       : 0;
	const char *h = u + skip, *end = u + len;

	if (skip == 0) {
		config_problem(chk, "ldap", "uri", "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT], "
			       "got \"%.*s\"", (int)(len > 80 ? 80 : len), u);
		return;
	}
	if (skip == 8)
		*ldaps = true;
	if (end > h && end[-1] == '/')
		end--;
	const char *hend = h;
	if (h < end && *h == '[') {
		hend = memchr(h, ']', (size_t)(end - h));
		if (hend == NULL) {
			config_problem(chk, "ldap", "uri", "\"%.*s\": '[' without ']'",
				       (int)(len > 80 ? 80 : len), u);
			return;
		}
		hend++;
	} else {
		while (hend < end && (isalnum((unsigned char)*hend) || *hend == '.' || *hend == '-' ||
				      *hend == '_'))
			hend++;
	}
	bool bad = hend == h;
	if (!bad && hend < end) {
		/* the port: 1..65535 */
		unsigned long port = 0;
		const char *p = hend + 1;
		bad = *hend != ':' || p == end;
		for (; !bad && p < end; p++) {
			bad = !isdigit((unsigned char)*p);
			port = port * 10 + (unsigned long)(*p - '0');
			bad = bad || port > 65535;
		}
		bad = bad || port == 0;
	}
	if (bad) {
		config_problem(chk, "ldap", "uri", "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT] "
			       "(no DN, attributes or filter), got \"%.*s\"",
			       (int)(len > 80 ? 80 : len), u);
		return;
	}
	fprintf(out, "%s%.*s", ftell(out) > 0 ? " " : "", (int)len, u);
}

/* [ldap] uri: one or more URIs, space- or comma-separated, into cfg->ldap_uris. */
static void check_uris(struct config *cfg, struct config_check *chk)
{
	char *list = NULL;
	size_t size = 0;
	bool ldaps = false;
	FILE *out = open_memstream(&list, &size);

	if (out == NULL) {
		config_problem(chk, "ldap", "uri", "out of memory");
		return;
	}
	for (const char *p = cfg->ldap_uri; *p != '\0';) {
		size_t n = strcspn(p, ", \t");
		if (n > 0)
			check_uri(chk, p, n, out, &ldaps);
		p += n;
		p += strspn(p, ", \t");
	}
	fclose(out);
	if (list == NULL || *list == '\0') {
		config_problem(chk, "ldap", "uri", "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]");
		free(list);
		return;
	}
	cfg->ldap_uris = list;
	if (ldaps && cfg->ldap_starttls)
		config_problem(chk, "ldap", "starttls", "yes with an ldaps:// URI: ldaps:// is TLS "
			       "from the start; use ldap:// with starttls, or starttls = no");
}

/* A DN key: a valid DN when set. */
static void check_dn(struct config_check *chk, const char *key, const char *dn)
{
	char err[256];
	char *norm;

	if (dn == NULL)
		return;
	norm = dir_dn_normalize(dn, strlen(dn), err, sizeof(err));
	if (norm == NULL)
		config_problem(chk, "ldap", key, "not a DN: %s", err);
	free(norm);
}

/* bind_password_file: read now, whole; one final line end dropped. */
static void read_password(struct config *cfg, struct config_check *chk)
{
	const char *path = cfg->ldap_bind_password_file;
	char buf[LDAP_PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;
	/* O_NONBLOCK: a FIFO in its place must not hang the load */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0) {
		config_problem(chk, "ldap", "bind_password_file", "%s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		config_problem(chk, "ldap", "bind_password_file", "%s: not a regular file", path);
		close(fd);
		return;
	}
	size_t len = 0;
	while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_problem(chk, "ldap", "bind_password_file", "%s: %s", path,
				       strerror(errno));
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			return;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > LDAP_PASSWORD_MAX)
		config_problem(chk, "ldap", "bind_password_file", "%s: longer than %d bytes", path,
			       LDAP_PASSWORD_MAX);
	else if (len == 0)
		config_problem(chk, "ldap", "bind_password_file", "%s: empty (an empty password "
			       "would be an unauthenticated bind)", path);
	else if (memchr(buf, '\0', len) != NULL || memchr(buf, '\n', len) != NULL)
		config_problem(chk, "ldap", "bind_password_file", "%s: holds a NUL byte or more "
			       "than one line", path);
	else if ((cfg->ldap_bind_password = strndup(buf, len)) == NULL)
		config_problem(chk, "ldap", "bind_password_file", "out of memory");
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* group_attribute: an attribute description (a name or an OID, options
 * after ';'). */
static void check_attribute(struct config_check *chk, const char *a)
{
	const char *p = a;

	while (isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == ';')
		p++;
	if (*a == '\0' || *p != '\0' || !isalnum((unsigned char)*a))
		config_problem(chk, "ldap", "group_attribute", "expected an attribute name like "
			       "memberOf, got \"%s\"", a);
}

/* Keys that only mean something with a directory. */
static void check_unused(const struct config *cfg, struct config_check *chk)
{
	const struct {
		const char *key;
		const char *val;
	} keys[] = {
		{ "base", cfg->ldap_base },
		{ "bind_dn", cfg->ldap_bind_dn },
		{ "bind_password_file", cfg->ldap_bind_password_file },
		{ "ca_file", cfg->ldap_ca_file },
		{ "group_filter", cfg->ldap_group_filter },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].val != NULL)
			config_problem(chk, "ldap", keys[i].key, "set, but [ldap] uri is not (the "
				       "directory is off)");
	if (cfg->auth_basic_backend == CONFIG_BACKEND_LDAP)
		config_problem(chk, "auth", "basic_backend", "ldap needs [ldap] uri");
}

void directory_config_check(struct config *cfg, struct config_check *chk)
{
	char err[256];

	if (cfg->ldap_uri == NULL) {
		check_unused(cfg, chk);
		return;
	}
	check_uris(cfg, chk);
	if (cfg->ldap_base == NULL)
		config_problem(chk, "ldap", "base", "required with uri (the DN searches start at)");
	check_dn(chk, "base", cfg->ldap_base);
	check_dn(chk, "bind_dn", cfg->ldap_bind_dn);
	if (cfg->ldap_bind_dn != NULL && cfg->ldap_bind_password_file == NULL)
		config_problem(chk, "ldap", "bind_password_file", "required with bind_dn (the "
			       "password is never written in the INI)");
	if (cfg->ldap_bind_dn == NULL && cfg->ldap_bind_password_file != NULL)
		config_problem(chk, "ldap", "bind_dn", "required with bind_password_file");
	if (cfg->ldap_bind_password_file != NULL)
		read_password(cfg, chk);
	if (cfg->ldap_ca_file != NULL)
		config_check_readable(chk, "ldap", "ca_file", cfg->ldap_ca_file);
	if (dir_filter_check(cfg->ldap_user_filter, DIR_FILTER_U, DIR_FILTER_U, err,
			     sizeof(err)) < 0)
		config_problem(chk, "ldap", "user_filter", "%s", err);
	if (cfg->ldap_group_filter != NULL &&
	    dir_filter_check(cfg->ldap_group_filter, DIR_FILTER_U | DIR_FILTER_D,
			     DIR_FILTER_U | DIR_FILTER_D, err, sizeof(err)) < 0)
		config_problem(chk, "ldap", "group_filter", "%s", err);
	check_attribute(chk, cfg->ldap_group_attribute);
}

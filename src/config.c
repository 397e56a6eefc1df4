/* config.c - the INI file -> one immutable struct config.
 *
 * Every key is one row of the table in config_keys.c: section, key, type,
 * default (as it would be written in the file), bounds, and where the value
 * lands in struct config. Loading reads the file once (config_ini.c),
 * applies every default, then walks what iniparser found: unknown sections
 * and keys are errors (with a "did you mean" when a known one is close),
 * each value is checked against its row, and every problem is collected as
 * "FILE: [section] key: problem" before the verdict.
 */
#ifdef HAVE_CONFIG_H
#include "autoconfig.h"
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "config.h"
#include "config_impl.h"
#include "config_ini.h"
#include "config_keys.h"
#include "config_rules.h"
#include "config_value.h"
#include "acl.h"
#include "auth.h"
#include "cidr.h"
#include "domainset.h"
#include "decimal.h"
#include "http_parser.h"
#include "pac.h"

/* One load in progress: the messages, and the [rule.NAME] sections as read. */
struct load_ctx {
	struct config_check chk;
	struct config_rules rules;
};

void config_error(struct config_check *chk, const char *fmt, ...)
{
	va_list ap;

	chk->nerr++;
	if (chk->errs == NULL)
		return;
	va_start(ap, fmt);
	config_errors_vadd(chk->errs, fmt, ap);
	va_end(ap);
}

void config_errors_vadd(struct config_errors *errs, const char *fmt, va_list ap)
{
	char *msg = NULL;
	char **grown;

	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	grown = realloc(errs->msg, (errs->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		free(msg);
		return;
	}
	errs->msg = grown;
	errs->msg[errs->n++] = msg;
}

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	config_errors_vadd(errs, fmt, ap);
	va_end(ap);
}

/* Apply every default; a default that fails its own row is our bug. */
static int apply_defaults(struct load_ctx *ctx, struct config *cfg)
{
	char why[256];
	size_t i;
	int rc = 0;

	for (i = 0; i < config_nrows; i++) {
		const struct config_row *r = &config_rows[i];

		if (r->def == NULL)
			continue;
		if (config_row_apply(r, r->def, cfg, why, sizeof(why)) < 0) {
			config_error(&ctx->chk, "%s: [%s] %s: bad built-in default: %s", ctx->chk.name, r->section, r->key, why);
			rc = -1;
		}
	}
	return rc;
}

/* Check one key = value entry and apply it. */
static void apply_entry(struct load_ctx *ctx, const struct config_ini_entry *e, struct config *cfg)
{
	const struct config_row *r, *hint;
	char why[512];

	if (e->section == NULL) {
		hint = config_suggest_key(NULL, e->key);
		if (hint != NULL)
			config_error(&ctx->chk, "%s: %s: not inside any section; did you mean [%s] %s?",
				  ctx->chk.name, e->key, hint->section, hint->key);
		else
			config_error(&ctx->chk, "%s: %s: not inside any section", ctx->chk.name, e->key);
		return;
	}
	if (strncmp(e->section, "rule.", 5) == 0) {
		config_rules_entry(&ctx->chk, &ctx->rules, e->section + 5, e->key, e->val);
		return;
	}
	if (!config_section_known(e->section))
		return; /* reported once for the section */
	r = config_row_find(e->section, e->key);
	if (r == NULL) {
		hint = config_suggest_key(e->section, e->key);
		if (hint != NULL)
			config_error(&ctx->chk, "%s: [%s] %s: unknown key; did you mean [%s] %s?",
				  ctx->chk.name, e->section, e->key, hint->section, hint->key);
		else
			config_error(&ctx->chk, "%s: [%s] %s: unknown key", ctx->chk.name, e->section, e->key);
		return;
	}
	if (*e->val == '\0' && (r->flags & CF_OPTIONAL)) {
		config_row_clear(r, cfg);
		return;
	}
	if (config_row_apply(r, e->val, cfg, why, sizeof(why)) < 0)
		config_error(&ctx->chk, "%s: [%s] %s: %s", ctx->chk.name, r->section, r->key, why);
}

/* A [section] header: [rule.NAME] noted, an unknown section reported (once). */
static void apply_section(struct load_ctx *ctx, const char *sec)
{
	const char *hint;

	if (*sec == '\0') {
		config_error(&ctx->chk, "%s: []: empty section name", ctx->chk.name);
	} else if (strncmp(sec, "rule.", 5) == 0) {
		config_rules_section(&ctx->chk, &ctx->rules, sec + 5);
	} else if (!config_section_known(sec)) {
		hint = config_suggest_section(sec);
		if (hint != NULL)
			config_error(&ctx->chk, "%s: [%s]: unknown section; did you mean [%s]?", ctx->chk.name, sec, hint);
		else
			config_error(&ctx->chk, "%s: [%s]: unknown section", ctx->chk.name, sec);
	}
}

/* Checks across keys, and the files keys name (so -t finds a bad htpasswd
 * line before a restart does). */
/* A file the proxy must be able to read: exists, is a regular file, readable. */
static void check_readable(struct load_ctx *ctx, const char *sec, const char *key, const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		config_error(&ctx->chk, "%s: [%s] %s: %s: %s", ctx->chk.name, sec, key, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_error(&ctx->chk, "%s: [%s] %s: %s: not a regular file", ctx->chk.name, sec, key, path);
	else if (access(path, R_OK) != 0)
		config_error(&ctx->chk, "%s: [%s] %s: %s: %s", ctx->chk.name, sec, key, path, strerror(errno));
}

/* protocols = TLSv1.2 TLSv1.3: a contiguous range of versions. */
static void check_tls(struct load_ctx *ctx, struct config *cfg)
{
	static const struct { const char *name; int v; } versions[] = {
		{ "TLSv1", 0x0301 }, { "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 },
	};
	const char *p = cfg->tls_protocols;
	char item[64], q[96];
	bool toolong;
	int lo = 0, hi = 0;

	while (config_list_next(&p, item, sizeof(item), &toolong)) {
		int v = 0;

		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			if (strcasecmp(item, versions[i].name) == 0)
				v = versions[i].v;
		if (v == 0 || toolong) {
			config_quote(item, q, sizeof(q));
			config_error(&ctx->chk, "%s: [tls] protocols: %s: expected TLSv1.2 and/or TLSv1.3 "
				  "(TLSv1, TLSv1.1 also accepted)", ctx->chk.name, q);
			return;
		}
		lo = lo == 0 || v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	if (lo == 0) {
		config_error(&ctx->chk, "%s: [tls] protocols: expected at least one of TLSv1.2, TLSv1.3", ctx->chk.name);
		return;
	}
	cfg->tls_min_version = lo;
	cfg->tls_max_version = hi;
	if (cfg->ntls_listen == 0)
		return;
	if (cfg->tls_certificate == NULL)
		config_error(&ctx->chk, "%s: [tls] certificate: required when [tls] listen is set", ctx->chk.name);
	else
		check_readable(ctx, "tls", "certificate", cfg->tls_certificate);
	if (cfg->tls_private_key == NULL)
		config_error(&ctx->chk, "%s: [tls] private_key: required when [tls] listen is set", ctx->chk.name);
	else
		check_readable(ctx, "tls", "private_key", cfg->tls_private_key);
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (strcasecmp(cfg->tls_listen[i].host, cfg->listen[j].host) == 0 &&
			    strcmp(cfg->tls_listen[i].port, cfg->listen[j].port) == 0 &&
			    strcmp(cfg->listen[j].port, "0") != 0)
				config_error(&ctx->chk, "%s: [tls] listen: %s:%s is also in [proxy] listen", ctx->chk.name,
					  cfg->listen[j].host, cfg->listen[j].port);
}

/* A list of domain names, each exact or ".suffix" (acl.c's parser, as for
 * [rule.NAME] domains); the set when set is not NULL. */
static void check_domain_list(struct load_ctx *ctx, const char *sec, const char *key,
			      const char *val, struct domainset **set)
{
	struct domainset *d = NULL;
	char err[256];

	if (val == NULL)
		return;
	if (acl_parse_domains(val, &d, err, sizeof(err)) < 0) {
		config_error(&ctx->chk, "%s: [%s] %s: %s", ctx->chk.name, sec, key, err);
		return;
	}
	if (set != NULL)
		*set = d;
	else
		domainset_free(d);
}

/* The header line for the parent (RFC 7617: base64 of user ":" password),
 * allocated to fit whatever lengths the file holds; NULL when out of memory. */
static char *parent_auth_line(const char *user, const char *password)
{
	static const char pre[] = "Proxy-Authorization: Basic ";
	size_t ul = strlen(user), pl = strlen(password), n = ul + 1 + pl;
	size_t b64 = 4 * ((n + 2) / 3);
	char *plain = malloc(n + 1);
	char *line = malloc(sizeof(pre) - 1 + b64 + 3);
	if (plain == NULL || line == NULL || n > INT_MAX) {
		free(plain);
		free(line);
		return NULL;
	}
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, password, pl + 1);
	memcpy(line, pre, sizeof(pre) - 1);
	int w = EVP_EncodeBlock((unsigned char *)line + sizeof(pre) - 1, (const unsigned char *)plain,
				(int)n);
	OPENSSL_cleanse(plain, n);
	free(plain);
	if (w < 0 || (size_t)w != b64) {
		free(line);
		return NULL;
	}
	memcpy(line + sizeof(pre) - 1 + b64, "\r\n", 3);
	return line;
}

static void check_upstream(struct load_ctx *ctx, struct config *cfg)
{
	struct stat st;

	if (cfg->upstream_ca_file != NULL)
		check_readable(ctx, "upstream", "ca_file", cfg->upstream_ca_file);
	if (cfg->upstream_ca_path != NULL &&
	    (stat(cfg->upstream_ca_path, &st) != 0 || !S_ISDIR(st.st_mode)))
		config_error(&ctx->chk, "%s: [upstream] ca_path: %s: not a directory", ctx->chk.name,
			  cfg->upstream_ca_path);
	if (cfg->nparent > 1)
		config_error(&ctx->chk, "%s: [upstream] parent: one host:port expected", ctx->chk.name);
	if (cfg->nparent == 1 && strcmp(cfg->parent[0].port, "0") == 0)
		config_error(&ctx->chk, "%s: [upstream] parent: port 0 is not a parent's port", ctx->chk.name);
	if (cfg->nparent == 0 && (cfg->parent_user != NULL || cfg->parent_direct != NULL))
		config_error(&ctx->chk, "%s: [upstream] %s: set only with [upstream] parent", ctx->chk.name,
			  cfg->parent_user != NULL ? "parent_user" : "parent_direct");
	if ((cfg->parent_user == NULL) != (cfg->parent_password == NULL))
		config_error(&ctx->chk, "%s: [upstream] %s: parent_user and parent_password go together",
			  ctx->chk.name, cfg->parent_user == NULL ? "parent_password" : "parent_user");
	if (cfg->parent_user != NULL && strchr(cfg->parent_user, ':') != NULL)
		config_error(&ctx->chk, "%s: [upstream] parent_user: must not contain ':' (RFC 7617)", ctx->chk.name);
	else if (cfg->parent_user != NULL && cfg->parent_password != NULL &&
		 (cfg->parent_auth = parent_auth_line(cfg->parent_user, cfg->parent_password)) == NULL)
		config_error(&ctx->chk, "%s: [upstream] parent_user: out of memory", ctx->chk.name);
	check_domain_list(ctx, "upstream", "parent_direct", cfg->parent_direct, &cfg->parent_direct_set);
}

static void check_files(struct load_ctx *ctx, struct config *cfg)
{
	char err[512];
	if (cfg->auth_scheme == CONFIG_AUTH_BASIC && cfg->auth_htpasswd == NULL)
		config_error(&ctx->chk, "%s: [auth] htpasswd: required when scheme = basic", ctx->chk.name);
	if (cfg->auth_scheme == CONFIG_AUTH_BASIC && cfg->auth_htpasswd != NULL) {
		cfg->htpasswd = htpasswd_load(cfg->auth_htpasswd, err, sizeof(err));
		if (cfg->htpasswd == NULL)
			config_error(&ctx->chk, "%s: [auth] htpasswd: %s", ctx->chk.name, err);
	}
	if (cfg->auth_groups != NULL) {
		cfg->groups = groups_load(cfg->auth_groups, err, sizeof(err));
		if (cfg->groups == NULL)
			config_error(&ctx->chk, "%s: [auth] groups: %s", ctx->chk.name, err);
	}
	if (strchr(cfg->auth_realm, '"') != NULL || strchr(cfg->auth_realm, '\\') != NULL)
		config_error(&ctx->chk, "%s: [auth] realm: must not contain '\"' or '\\'", ctx->chk.name);
	check_tls(ctx, cfg);
	check_upstream(ctx, cfg);
	check_domain_list(ctx, "pac", "direct_domains", cfg->pac_direct_domains, NULL);
	if (cfg->pac_https && cfg->ntls_listen == 0)
		config_error(&ctx->chk, "%s: [pac] https: needs a [tls] listen address to offer", ctx->chk.name);
	if (cfg->pac_proxy != NULL && !pac_hostport_ok(cfg->pac_proxy)) {
		char q[96];
		config_quote(cfg->pac_proxy, q, sizeof(q));
		config_error(&ctx->chk, "%s: [pac] proxy: expected host[:port] such as proxy.example.com:3128, "
			  "got %s", ctx->chk.name, q);
	}
	for (size_t i = 0; i < cfg->npac_direct_networks; i++)
		if (cfg->pac_direct_networks[i].family != AF_INET)
			config_error(&ctx->chk, "%s: [pac] direct_networks: PAC files test IPv4 networks only (isInNet)",
				  ctx->chk.name);
}

/* A new config with every default applied, or NULL. */
static struct config *config_new(struct load_ctx *ctx)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL || (cfg->path = strdup(ctx->chk.name)) == NULL) {
		config_error(&ctx->chk, "%s: out of memory", ctx->chk.name);
		free(cfg);
		return NULL;
	}
	apply_defaults(ctx, cfg);
	return cfg;
}

/* Load text (len bytes, NUL-terminated): parse, apply the sections and then
 * the entries (both in file order, so messages follow the file), run the
 * checks across keys, compile the rules. */
static struct config *load_text(struct load_ctx *ctx, const char *text, size_t len)
{
	struct config_ini *ini = config_ini_parse(&ctx->chk, text, len);
	struct config *cfg;
	size_t i;

	if (ini == NULL)
		return NULL;
	cfg = config_new(ctx);
	if (cfg == NULL) {
		config_ini_free(ini);
		return NULL;
	}
	for (i = 0; i < ini->n; i++)
		if (ini->entries[i].key == NULL)
			apply_section(ctx, ini->entries[i].section);
	for (i = 0; i < ini->n; i++)
		if (ini->entries[i].key != NULL)
			apply_entry(ctx, &ini->entries[i], cfg);
	config_ini_free(ini);
	check_files(ctx, cfg);
	config_rules_compile(&ctx->chk, &ctx->rules, cfg);
	cfg->rules_text = config_rules_text(&ctx->rules);
	config_rules_free(&ctx->rules);

	if (ctx->chk.nerr > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Load and validate the INI file at path: read once, then as text. */
struct config *config_load(const char *path, struct config_errors *errs)
{
	struct load_ctx ctx = { .chk = { .name = path, .errs = errs } };
	struct config *cfg;
	char *text;
	size_t len = 0;

	text = config_ini_read(&ctx.chk, path, &len);
	if (text == NULL)
		return NULL;
	cfg = load_text(&ctx, text, len);
	free(text);
	return cfg;
}

struct config *config_load_string(const char *text, const char *name, struct config_errors *errs)
{
	struct load_ctx ctx = { .chk = { .name = name, .errs = errs } };

	return load_text(&ctx, text, strlen(text));
}

/* Free a config and everything it owns (NULL is fine). */
void config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < config_nrows; i++)
		config_row_clear(&config_rows[i], cfg);
	if (cfg->acl != NULL) {
		acl_free(cfg->acl);
		free(cfg->acl);
	}
	htpasswd_free(cfg->htpasswd);
	groups_free(cfg->groups);
	domainset_free(cfg->parent_direct_set);
	if (cfg->parent_auth != NULL) {
		OPENSSL_cleanse(cfg->parent_auth, strlen(cfg->parent_auth));
		free(cfg->parent_auth);
	}
	free(cfg->rules_text);
	free(cfg->path);
	free(cfg);
}

/* Free the collected messages and reset the list. */
void config_errors_free(struct config_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

/* Is port within one of the [proxy] connect_ports ranges? */
bool config_connect_port_allowed(const struct config *cfg, unsigned port)
{
	size_t i;

	for (i = 0; i < cfg->nconnect_ports; i++)
		if (port >= cfg->connect_ports[i].lo && port <= cfg->connect_ports[i].hi)
			return true;
	return false;
}

bool config_sni_port(const struct config *cfg, unsigned port)
{
	for (size_t i = 0; i < cfg->nsni_ports; i++)
		if (port >= cfg->sni_ports[i].lo && port <= cfg->sni_ports[i].hi)
			return true;
	return false;
}

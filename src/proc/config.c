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
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "auth.h"
#include "negotiate.h"
#include "config_check.h"
#include "config_impl.h"
#include "config_ini.h"
#include "config_keys.h"
#include "config_rules.h"
#include "domainset.h"

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
static void apply_defaults(struct config_check *chk, struct config *cfg)
{
	char why[256];

	for (size_t i = 0; i < config_nrows; i++) {
		const struct config_row *r = &config_rows[i];

		if (r->def != NULL && config_row_apply(r, r->def, cfg, why, sizeof(why)) < 0)
			config_error(chk, "%s: [%s] %s: bad built-in default: %s", chk->name, r->section,
				     r->key, why);
	}
}

/* A key outside any section: the row it may be meant for. */
static void outside_section(struct config_check *chk, const char *key)
{
	const struct config_row *hint = config_suggest_key(NULL, key);

	if (hint != NULL)
		config_error(chk, "%s: %s: not inside any section; did you mean [%s] %s?", chk->name,
			     key, hint->section, hint->key);
	else
		config_error(chk, "%s: %s: not inside any section", chk->name, key);
}

/* Check one key = value entry and apply it. */
static void apply_entry(struct load_ctx *ctx, const struct config_ini_entry *e, struct config *cfg)
{
	struct config_check *chk = &ctx->chk;
	const struct config_row *r, *hint;
	char why[512];

	if (e->section == NULL) {
		outside_section(chk, e->key);
		return;
	}
	if (strncmp(e->section, "rule.", 5) == 0) {
		config_rules_entry(chk, &ctx->rules, e->section + 5, e->key, e->val);
		return;
	}
	if (!config_section_known(e->section))
		return; /* reported once for the section */
	r = config_row_find(e->section, e->key);
	if (r == NULL) {
		hint = config_suggest_key(e->section, e->key);
		if (hint != NULL)
			config_error(chk, "%s: [%s] %s: unknown key; did you mean [%s] %s?", chk->name,
				     e->section, e->key, hint->section, hint->key);
		else
			config_error(chk, "%s: [%s] %s: unknown key", chk->name, e->section, e->key);
		return;
	}
	if (*e->val == '\0' && (r->flags & CF_OPTIONAL))
		config_row_clear(r, cfg);
	else if (config_row_apply(r, e->val, cfg, why, sizeof(why)) < 0)
		config_error(chk, "%s: [%s] %s: %s", chk->name, r->section, r->key, why);
}

/* A [section] header: [rule.NAME] noted, an unknown section reported (once). */
static void apply_section(struct load_ctx *ctx, const char *sec)
{
	struct config_check *chk = &ctx->chk;
	const char *hint;

	if (*sec == '\0') {
		config_error(chk, "%s: []: empty section name", chk->name);
	} else if (strncmp(sec, "rule.", 5) == 0) {
		config_rules_section(chk, &ctx->rules, sec + 5);
	} else if (!config_section_known(sec)) {
		hint = config_suggest_section(sec);
		if (hint != NULL)
			config_error(chk, "%s: [%s]: unknown section; did you mean [%s]?", chk->name, sec,
				     hint);
		else
			config_error(chk, "%s: [%s]: unknown section", chk->name, sec);
	}
}

/* ---- checks across keys (config_check.h) ------------------------------------ */

/* The modules' checks, in the order they run. */
static void (*const module_checks[])(struct config *, struct config_check *) = {
	auth_config_check,
	tls_config_check,
	upstream_config_check,
	pac_config_check,
	directory_config_check,
	admin_config_check,
};

void config_problem(struct config_check *chk, const char *section, const char *key,
		    const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0) {
		chk->nerr++; /* counted, even without its text */
		return;
	}
	config_error(chk, "%s: [%s] %s: %s", chk->name, section, key, msg);
	free(msg);
}

void config_check_readable(struct config_check *chk, const char *section, const char *key,
			   const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		config_problem(chk, section, key, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_problem(chk, section, key, "%s: not a regular file", path);
	else if (access(path, R_OK) != 0)
		config_problem(chk, section, key, "%s: %s", path, strerror(errno));
}

void config_check_domains(struct config_check *chk, const char *section, const char *key,
			  const char *val, struct domainset **set)
{
	struct domainset *d = NULL;
	char err[256];

	if (val == NULL)
		return;
	if (acl_parse_domains(val, &d, err, sizeof(err)) < 0) {
		config_problem(chk, section, key, "%s", err);
		return;
	}
	if (set != NULL)
		*set = d;
	else
		domainset_free(d);
}

/* A new config with every default applied, or NULL. */
static struct config *config_new(struct config_check *chk)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL || (cfg->path = strdup(chk->name)) == NULL) {
		config_error(chk, "%s: out of memory", chk->name);
		free(cfg);
		return NULL;
	}
	apply_defaults(chk, cfg);
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
	cfg = config_new(&ctx->chk);
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
	for (i = 0; i < sizeof(module_checks) / sizeof(module_checks[0]); i++)
		module_checks[i](cfg, &ctx->chk);
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
	negotiate_keytab_free(cfg->keytab);
	domainset_free(cfg->parent_direct_set);
	if (cfg->parent_auth != NULL) {
		OPENSSL_cleanse(cfg->parent_auth, strlen(cfg->parent_auth));
		free(cfg->parent_auth);
	}
	free(cfg->rules_text);
	free(cfg->ldap_uris);
	if (cfg->ldap_bind_password != NULL) {
		OPENSSL_cleanse(cfg->ldap_bind_password, strlen(cfg->ldap_bind_password));
		free(cfg->ldap_bind_password);
	}
	for (i = 0; i < cfg->ndir_groups; i++)
		free(cfg->dir_groups[i]);
	free(cfg->dir_groups);
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

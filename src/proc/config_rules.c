/* config_rules.c - [rule.NAME] sections -> struct acl_rule, by a table of
 * {key, parser} (config_rules.h). */
#include "config_rules.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "auth.h"
#include "config_value.h"
#include "dir_cache.h"
#include "dir_filter.h"
#include "domainset.h"

/* A [rule.NAME] section as read, before it is compiled: one value (or NULL)
 * per config_rule_keys[] entry. */
struct config_rule_raw {
	char name[64];
	char *val[CONFIG_RULE_NKEYS];
};

/* ---- the keys ---------------------------------------------------------------- */

static int rule_src(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_cidrs(v, &r->src, &r->n_src, err, errlen);
}

static int rule_users(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_names(v, &r->users, &r->n_users, err, errlen);
}

/* Names, or DNs of directory groups (dir_filter.c says how a list is cut). */
static int rule_groups(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return dir_parse_groups(v, &r->groups, &r->n_groups, err, errlen);
}

static int rule_methods(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_methods(v, &r->methods, &r->n_methods, err, errlen);
}

static int rule_domains(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_domains(v, &r->domains, err, errlen);
}

/* The file's path is kept even when it cannot be read. */
static int rule_domain_file(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	r->domain_file = domainset_load(v, err, errlen);
	free(r->domain_file_path);
	r->domain_file_path = strdup(v);
	return r->domain_file == NULL ? -1 : 0;
}

static int rule_dst(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_cidrs(v, &r->dst, &r->n_dst, err, errlen);
}

static int rule_ports(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_ports(v, &r->ports, &r->n_ports, err, errlen);
}

static int rule_url_regex(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_url_regex(v, &r->url_regex, err, errlen);
}

static int rule_time(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	int rc = acl_parse_time(v, &r->time, err, errlen);

	r->has_time = rc == 0;
	return rc;
}

static int rule_action(const char *v, struct acl_rule *r, char *err, size_t errlen)
{
	return acl_parse_action(v, &r->action, err, errlen);
}

const struct config_rule_key config_rule_keys[] = {
	{ "src", rule_src },
	{ "users", rule_users },
	{ "groups", rule_groups },
	{ "methods", rule_methods },
	{ "domains", rule_domains },
	{ "domain_file", rule_domain_file },
	{ "dst", rule_dst },
	{ "ports", rule_ports },
	{ "url_regex", rule_url_regex },
	{ "time", rule_time },
	{ "action", rule_action },
};
_Static_assert(sizeof(config_rule_keys) / sizeof(config_rule_keys[0]) == CONFIG_RULE_NKEYS,
	       "CONFIG_RULE_NKEYS is the number of rule keys");

/* Where a key's value is kept in struct config_rule_raw, or -1. */
static int key_index(const char *key)
{
	for (int k = 0; k < CONFIG_RULE_NKEYS; k++)
		if (strcmp(config_rule_keys[k].key, key) == 0)
			return k;
	return -1;
}

const struct config_rule_key *config_rule_key(const char *key)
{
	int k = key_index(key);

	return k < 0 ? NULL : &config_rule_keys[k];
}

/* ---- reading ----------------------------------------------------------------- */

void config_rules_section(struct config_check *chk, struct config_rules *rs, const char *name)
{
	struct config_rule_raw *grown;

	if (*name == '\0' || strlen(name) >= sizeof(rs->raw[0].name)) {
		config_error(chk, "%s: [rule.%s]: a rule name of 1 to 63 characters is expected",
			     chk->name, name);
		return;
	}
	grown = realloc(rs->raw, (rs->n + 1) * sizeof(*grown));
	if (grown == NULL) {
		config_error(chk, "%s: out of memory", chk->name);
		return;
	}
	rs->raw = grown;
	memset(&rs->raw[rs->n], 0, sizeof(rs->raw[0]));
	snprintf(rs->raw[rs->n].name, sizeof(rs->raw[0].name), "%s", name);
	rs->n++;
}

/* An unknown key of [rule.NAME]: the closest known key, or the list of them. */
static void unknown_key(struct config_check *chk, const char *name, const char *key)
{
	const char *best = NULL;
	size_t bestd = config_typo_budget(key) + 1;
	char list[256];
	size_t o = 0;

	for (size_t k = 0; k < CONFIG_RULE_NKEYS; k++) {
		size_t d = config_edit_distance(key, config_rule_keys[k].key);

		if (d < bestd) {
			best = config_rule_keys[k].key;
			bestd = d;
		}
	}
	if (best != NULL) {
		config_error(chk, "%s: [rule.%s] %s: unknown key; did you mean [rule.%s] %s?",
			     chk->name, name, key, name, best);
		return;
	}
	list[0] = '\0';
	for (size_t k = 0; k < CONFIG_RULE_NKEYS && o < sizeof(list); k++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k == 0 ? "" : ", ",
				      config_rule_keys[k].key);
	config_error(chk, "%s: [rule.%s] %s: unknown key (a rule has %s)", chk->name, name, key, list);
}

void config_rules_entry(struct config_check *chk, struct config_rules *rs, const char *name,
			const char *key, const char *val)
{
	for (size_t i = 0; i < rs->n; i++) {
		int k;

		if (strcmp(rs->raw[i].name, name) != 0)
			continue;
		k = key_index(key);
		if (k < 0) {
			unknown_key(chk, name, key);
			return;
		}
		free(rs->raw[i].val[k]);
		rs->raw[i].val[k] = strdup(val);
		return;
	}
}

void config_rules_free(struct config_rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		for (size_t k = 0; k < CONFIG_RULE_NKEYS; k++)
			free(rs->raw[i].val[k]);
	free(rs->raw);
	rs->raw = NULL;
	rs->n = 0;
}

/* ---- compiling --------------------------------------------------------------- */

/* Compile one rule's values into r; problems are reported per key. */
static void rule_compile(struct config_check *chk, const struct config_rule_raw *raw,
			 struct acl_rule *r)
{
	char err[512];

	r->name = strdup(raw->name);
	for (size_t k = 0; k < CONFIG_RULE_NKEYS; k++) {
		const struct config_rule_key *rk = &config_rule_keys[k];

		if (raw->val[k] != NULL && rk->parse(raw->val[k], r, err, sizeof(err)) != 0)
			config_error(chk, "%s: [rule.%s] %s: %s", chk->name, raw->name, rk->key, err);
	}
	if (raw->val[key_index("action")] == NULL)
		config_error(chk, "%s: [rule.%s] action: missing (allow or deny)", chk->name, raw->name);
}

/* The section of one [acl] rules item, or NULL when it cannot be used
 * (problem reported); used[] marks the sections already listed. */
static const struct config_rule_raw *listed_rule(struct config_check *chk,
						 const struct config_rules *rs, const char *item,
						 bool toolong, size_t itemlen, bool *used)
{
	size_t i;

	if (toolong) {
		/* cut, it could name another rule */
		config_error(chk, "%s: [acl] rules: \"%s...\": a rule name of 1 to %zu characters "
			     "is expected", chk->name, item, itemlen - 1);
		return NULL;
	}
	for (i = 0; i < rs->n; i++)
		if (strcmp(rs->raw[i].name, item) == 0)
			break;
	if (i == rs->n) {
		config_error(chk, "%s: [acl] rules: rule \"%s\" has no [rule.%s] section", chk->name,
			     item, item);
		return NULL;
	}
	if (used[i]) {
		config_error(chk, "%s: [acl] rules: rule \"%s\" is listed twice", chk->name, item);
		return NULL;
	}
	used[i] = true;
	return &rs->raw[i];
}

/* A group a rule names is the [auth] groups file's when the file has it;
 * else, with [ldap], the directory's (listed once in cfg->dir_groups); else
 * a mistake. */
static void classify_group(struct config_check *chk, struct config *cfg, const char *rule,
			   const char *g)
{
	if (cfg->groups != NULL && groups_exists(cfg->groups, g))
		return;
	if (cfg->auth_groups != NULL && cfg->groups == NULL)
		return; /* the file did not load: reported already */
	if (cfg->ldap_uri == NULL) {
		config_error(chk, "%s: [rule.%s] groups: \"%s\" is not a group of the [auth] groups "
			     "file%s, and there is no [ldap] directory", chk->name, rule, g,
			     cfg->auth_groups == NULL ? " (none is set)" : "");
		return;
	}
	for (size_t i = 0; i < cfg->ndir_groups; i++)
		if (strcmp(cfg->dir_groups[i], g) == 0)
			return;
	if (cfg->ndir_groups == DIR_GROUPS_MAX) {
		config_error(chk, "%s: [rule.%s] groups: \"%s\": more than %d directory groups in the "
			     "rules", chk->name, rule, g, DIR_GROUPS_MAX);
		return;
	}
	char **grown = realloc(cfg->dir_groups, (cfg->ndir_groups + 1) * sizeof(*grown));
	if (grown == NULL || (grown[cfg->ndir_groups] = strdup(g)) == NULL) {
		if (grown != NULL)
			cfg->dir_groups = grown;
		config_error(chk, "%s: out of memory", chk->name);
		return;
	}
	cfg->dir_groups = grown;
	cfg->ndir_groups++;
}

void config_rules_compile(struct config_check *chk, const struct config_rules *rs,
			  struct config *cfg)
{
	struct acl *a = calloc(1, sizeof(*a));
	const char *p = cfg->acl_rules != NULL ? cfg->acl_rules : "";
	const struct config_rule_raw *raw;
	char item[64];
	bool toolong, *used;

	if (a == NULL) {
		config_error(chk, "%s: out of memory", chk->name);
		return;
	}
	cfg->acl = a;
	a->default_action = cfg->acl_default ? ACL_ACTION_ALLOW : ACL_ACTION_DENY;
	a->private_destinations = cfg->acl_private ? ACL_ACTION_ALLOW : ACL_ACTION_DENY;
	used = calloc(rs->n + 1, sizeof(bool));
	while (used != NULL && config_list_next(&p, item, sizeof(item), &toolong)) {
		struct acl_rule *grown;

		raw = listed_rule(chk, rs, item, toolong, sizeof(item), used);
		if (raw == NULL)
			continue;
		grown = realloc(a->rules, (a->n_rules + 1) * sizeof(*grown));
		if (grown == NULL)
			break;
		a->rules = grown;
		memset(&a->rules[a->n_rules], 0, sizeof(a->rules[0]));
		rule_compile(chk, raw, &a->rules[a->n_rules]);
		for (size_t g = 0; g < a->rules[a->n_rules].n_groups; g++)
			classify_group(chk, cfg, raw->name, a->rules[a->n_rules].groups[g]);
		a->n_rules++;
	}
	for (size_t i = 0; used != NULL && i < rs->n; i++)
		if (!used[i])
			config_error(chk, "%s: [rule.%s]: not listed in [acl] rules, so never used",
				     chk->name, rs->raw[i].name);
	free(used);
}

char *config_rules_text(const struct config_rules *rs)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < rs->n; i++) {
		fprintf(f, "\n[rule.%s]\n", rs->raw[i].name);
		for (size_t k = 0; k < CONFIG_RULE_NKEYS; k++) {
			const char *v = rs->raw[i].val[k];
			const char *q;

			if (v == NULL)
				continue;
			/* iniparser ends a value at ';' or '#' unless it is quoted */
			q = strpbrk(v, ";#") != NULL ? "\"" : "";
			fprintf(f, "%s = %s%s%s\n", config_rule_keys[k].key, q, v, q);
		}
	}
	fclose(f);
	return text;
}

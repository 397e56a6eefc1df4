/* config_rules.h - the [rule.NAME] sections: kept as read while the file is
 * walked, then compiled into cfg->acl in the order [acl] rules lists them.
 * Private to the config loader (config*.c). */
#ifndef HOPCACHE_CONFIG_RULES_H
#define HOPCACHE_CONFIG_RULES_H

#include <stddef.h>

#include "config_impl.h"

struct acl_rule;

/* One key of a rule section and its parser (acl.c's helpers), which fills
 * the rule's matcher; 0, or -1 with "expected ..., got ..." in err. */
struct config_rule_key {
	const char *key;
	int (*parse)(const char *val, struct acl_rule *r, char *err, size_t errlen);
};

#define CONFIG_RULE_NKEYS 11

/* Every key, in the order they are compiled and printed. */
extern const struct config_rule_key config_rule_keys[];

/* The key's row, or NULL. */
const struct config_rule_key *config_rule_key(const char *key);

/* The sections as read, in file order. */
struct config_rules {
	struct config_rule_raw *raw;
	size_t n;
};

/* [rule.NAME]: note the section (a name of 1 to 63 characters). */
void config_rules_section(struct config_check *chk, struct config_rules *rs, const char *name);

/* key = val inside [rule.NAME]: keep it, or report an unknown key. */
void config_rules_entry(struct config_check *chk, struct config_rules *rs, const char *name,
			const char *key, const char *val);

/* cfg->acl from [acl] rules, default, private_destinations and the
 * sections: every listed rule needs its section, every section must be
 * listed, every value must parse and every rule have an action. */
void config_rules_compile(struct config_check *chk, const struct config_rules *rs,
			  struct config *cfg);

/* The sections as read, as INI text for --print-config (NULL when out of
 * memory; "" when there are none). */
char *config_rules_text(const struct config_rules *rs);

void config_rules_free(struct config_rules *rs);

#endif

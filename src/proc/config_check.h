/* config_check.h - the checks across keys that each module makes on a
 * configuration being loaded (so that -t finds a bad htpasswd line or a
 * missing certificate before a restart does), and what they report with.
 *
 * config.c runs them in this order once every key is applied; a check may
 * also derive what its module needs (the htpasswd file read, the TLS
 * version range, the parent's Proxy-Authorization line); config_free
 * releases it. Each problem reads "FILE: [section] key: problem". */
#ifndef HOPCACHE_CONFIG_CHECK_H
#define HOPCACHE_CONFIG_CHECK_H

#include "config.h"

struct config_check; /* one load in progress */
struct domainset;

void auth_config_check(struct config *cfg, struct config_check *chk);     /* auth.c */
void tls_config_check(struct config *cfg, struct config_check *chk);      /* tls.c */
void upstream_config_check(struct config *cfg, struct config_check *chk); /* upstream_config.c */
void pac_config_check(struct config *cfg, struct config_check *chk);      /* pac.c */
void directory_config_check(struct config *cfg, struct config_check *chk); /* directory_config.c */
void admin_config_check(struct config *cfg, struct config_check *chk);    /* admin.c */

/* Report "FILE: [section] key: " and the formatted problem. */
void config_problem(struct config_check *chk, const char *section, const char *key,
		    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A file the proxy must be able to read: exists, is a regular file, readable. */
void config_check_readable(struct config_check *chk, const char *section, const char *key,
			   const char *path);

/* A list of domain names, each exact or ".suffix" (acl.c's parser, as for
 * [rule.NAME] domains), when val is set; the set goes to *set when set is
 * not NULL. */
void config_check_domains(struct config_check *chk, const char *section, const char *key,
			  const char *val, struct domainset **set);

#endif

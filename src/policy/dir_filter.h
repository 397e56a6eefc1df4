/* dir_filter.h - the pure side of the directory ([ldap]): search filter
 * templates with their RFC 4515 escaping, distinguished names compared as
 * the directory compares them, and the groups a rule names.
 *
 * No I/O, no globals, no log calls: errors come back as text. Everything
 * here is also called from the directory threads (net/directory.c), so
 * nothing keeps state between calls. */
#ifndef HOPCACHE_DIR_FILTER_H
#define HOPCACHE_DIR_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- filters (RFC 4515) ------------------------------------------------ */

/* Which placeholders a template may hold. %u is the user name, %D the
 * user's DN, %% a percent sign. */
#define DIR_FILTER_U 0x1
#define DIR_FILTER_D 0x2

/* Check a filter template: one parenthesised filter, parentheses balanced,
 * every '\' followed by two hex digits (RFC 4515 §3), every '%' one of the
 * placeholders in `allowed` or %%, and at least one of those in `needed`
 * (an OR of the flags; 0: none needed). 0, or -1 with the problem in err. */
int dir_filter_check(const char *tmpl, unsigned allowed, unsigned needed, char *err,
		     size_t errlen);

/* Escape an assertion value (RFC 4515 §3): '*', '(', ')', '\' and NUL become
 * \2a, \28, \29, \5c and \00; other bytes are copied. Writes at most 3 * len
 * bytes to out (no NUL) and returns how many. */
size_t dir_filter_escape(const char *in, size_t len, char *out);

/* Expand a template checked by dir_filter_check: %u becomes user and %D
 * dn (NULL: not allowed), each escaped, %% a '%'. A new NUL-terminated
 * string (sized to the result; free it), or NULL with the problem in err
 * (out of memory, or a placeholder without its value). */
char *dir_filter_expand(const char *tmpl, const char *user, size_t user_len, const char *dn,
			size_t dn_len, char *err, size_t errlen);

/* The attributes a template compares with %u for equality ("(uid=%u)"
 * gives uid), in the order they appear, each once (ignoring ASCII case):
 * the user's entry holds the user name in one of them, spelled as the
 * directory spells it. *out gets a new NULL-terminated array (free each
 * string, then the array); 0, or -1 when out of memory. */
int dir_filter_name_attrs(const char *tmpl, char ***out, size_t *n);

/* Does a directory value v (vlen bytes) name the same user as name, as a
 * directory's caseIgnoreMatch would say (ASCII case ignored, spaces at the
 * ends dropped and inner runs of spaces taken as one)? */
bool dir_name_match(const char *name, size_t nlen, const char *v, size_t vlen);

/* The name a user goes by in the directory: for a Kerberos principal
 * ("alice@EXAMPLE.ORG", kerberos true) the part before the last '@'; else
 * the whole name. Returns its length (the name starts at user). */
size_t dir_user_name(const char *user, bool kerberos);

/* --- distinguished names (RFC 4514) ------------------------------------ */

/* The comparable form of a DN: attribute types and values lower-cased
 * (ASCII), spaces around ',', '+' and '=' and at either end of a value
 * dropped, escapes (\, and \2C alike) decoded and the special characters
 * escaped again one way. A new string (free it), or NULL with the problem
 * in err when dn is not a DN ("cn=a,dc=b"). */
char *dir_dn_normalize(const char *dn, size_t len, char *err, size_t errlen);

/* Are two DNs the same entry's name? False when either is not a DN. */
bool dir_dn_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Does the group a rule names match a group the directory lists for the
 * user? `rule` is a DN (it holds '=') compared as a DN, or a name compared
 * case-insensitively (ASCII) with the group's CN: the value of the first
 * RDN of `group` when it is a DN whose first attribute is cn, else group
 * itself. */
bool dir_group_match(const char *rule, const char *group, size_t glen);

/* --- the groups of a rule ---------------------------------------------- */

/* Parse a [rule.NAME] groups value (see hopcache.ini(5)):
 *   - with '|': items separated by '|', each trimmed; an item may hold
 *     spaces and commas ("Domain Admins | cn=web,ou=groups,dc=example");
 *   - else with '=': the whole value is one DN;
 *   - else names separated by commas and/or whitespace.
 * A DN item must be a valid DN. Empty items are skipped; an empty list is
 * an error. *out gets a new array of n new strings (acl_names_free). 0, or
 * -1 with the problem in err. */
int dir_parse_groups(const char *s, char ***out, size_t *n, char *err, size_t errlen);

/* Is this rule group a DN (rather than a name)? */
bool dir_group_is_dn(const char *group);

#endif

/* test_dir_filter.c - the pure side of the directory (src/policy/dir_filter.c):
 * filter templates checked and expanded with RFC 4515 escaping (table rows
 * and a property test over random names: no byte of a name can end up as
 * filter syntax, and unescaping gives the name back), the Kerberos name,
 * DNs compared as the directory compares them, group matching by CN or DN,
 * and how a rule's groups value is cut into items. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dir_filter.h"
#include "prng.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* --- templates ----------------------------------------------------------------- */

static void test_check(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl;
		unsigned allowed, needed;
		const char *err; /* NULL: accepted; else a part of the message */
	} rows[] = {
		{ "(uid=%u)", DIR_FILTER_U, DIR_FILTER_U, NULL },
		{ "(|(uid=%u)(sAMAccountName=%u))", DIR_FILTER_U, DIR_FILTER_U, NULL },
		{ "(&(objectClass=groupOfNames)(member=%D))", 3, 3, NULL },
		{ "(&(cn=a\\28b\\29)(memberUid=%u))", 3, 3, NULL },
		{ "(uid=%u)(cn=x)", 1, 1, "text after" },
		{ "(uid=%u", 1, 1, "unbalanced parentheses: 1" },
		{ "(uid=%u))", 1, 1, "text after the filter's closing ')' at offset 7" },
		{ "uid=%u", 1, 1, "in parentheses" },
		{ "", 1, 1, "in parentheses" },
		{ "(uid=alice)", 1, 1, "must contain %u" },
		{ "(member=%D)", 1, 1, "%D at offset 8 is not a placeholder" },
		{ "(member=alice)", 3, 3, "must contain %u or %D" },
		{ "(uid=%x)", 3, 3, "%x at offset 5" },
		{ "(uid=%", 3, 3, "not a placeholder" },
		{ "(uid=%%%u)", 1, 1, NULL },
		{ "(cn=a\\2)", 1, 0, "two hex digits" },
		{ "(cn=a\\zz)", 1, 0, "two hex digits" },
		{ "(cn=a\\", 1, 0, "two hex digits" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char err[256] = "";
		int rc = dir_filter_check(rows[i].tmpl, rows[i].allowed, rows[i].needed, err,
					  sizeof(err));
		if (rows[i].err == NULL && rc != 0)
			fail_msg("%s: got \"%s\", want accepted", rows[i].tmpl, err);
		if (rows[i].err != NULL && (rc == 0 || strstr(err, rows[i].err) == NULL))
			fail_msg("%s: got %d \"%s\", want an error with \"%s\"", rows[i].tmpl, rc, err,
				 rows[i].err);
	}
}

static void test_expand(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl, *user, *dn, *want;
	} rows[] = {
		{ "(uid=%u)", "alice", NULL, "(uid=alice)" },
		{ "(|(uid=%u)(sAMAccountName=%u))", "bob", NULL, "(|(uid=bob)(sAMAccountName=bob))" },
		{ "(uid=%u)", "a*", NULL, "(uid=a\\2a)" },
		{ "(uid=%u)", "alice)(uid=*", NULL, "(uid=alice\\29\\28uid=\\2a)" },
		{ "(uid=%u)", "a\\b", NULL, "(uid=a\\5cb)" },
		{ "(uid=%u)", "", NULL, "(uid=)" },
		{ "(member=%D)", "x", "cn=A\\,B,dc=x", "(member=cn=A\\5c,B,dc=x)" },
		{ "(&(member=%D)(x=%u%%))", "u", "cn=a", "(&(member=cn=a)(x=u%))" },
		{ "(uid=%u)", "ünï", NULL, "(uid=ünï)" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char err[128];
		char *got = dir_filter_expand(rows[i].tmpl, rows[i].user, strlen(rows[i].user),
					      rows[i].dn, rows[i].dn ? strlen(rows[i].dn) : 0, err,
					      sizeof(err));
		if (got == NULL || strcmp(got, rows[i].want) != 0)
			fail_msg("%s with %s: got %s, want %s", rows[i].tmpl, rows[i].user,
				 got ? got : err, rows[i].want);
		free(got);
	}
	/* a NUL inside a name (a length, not a C string) is escaped too */
	char err[128];
	char *got = dir_filter_expand("(uid=%u)", "a\0b", 3, NULL, 0, err, sizeof(err));
	assert_non_null(got);
	assert_string_equal(got, "(uid=a\\00b)");
	free(got);
	/* %D where no DN is known */
	assert_null(dir_filter_expand("(member=%D)", "a", 1, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "%D has no value"));
}

static void test_name_attrs(void **state)
{
	(void)state;
	static const struct {
		const char *tmpl, *want; /* the attributes, space-separated */
	} rows[] = {
		{ "(|(uid=%u)(sAMAccountName=%u))", "uid sAMAccountName" },
		{ "(&(objectClass=inetOrgPerson)(sn=%u))", "sn" },
		{ "(|(uid=%u)(UID=%u)(mail=%u@example.org))", "uid" }, /* once; not a substring */
		{ "(uid=%u*)", "" },
		{ "(cn~=%u)", "" },
		{ "(&(member=%D)(uid=x))", "" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char **v = NULL, got[128] = "";
		size_t n = 0, o = 0;
		assert_int_equal(dir_filter_name_attrs(rows[i].tmpl, &v, &n), 0);
		for (size_t k = 0; k < n; k++)
			o += (size_t)snprintf(got + o, sizeof(got) - o, "%s%s", k ? " " : "", v[k]);
		assert_null(v[n]);
		if (strcmp(got, rows[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", rows[i].tmpl, got, rows[i].want);
		acl_names_free(v, n);
	}
	static const struct {
		const char *name, *value;
		bool want;
	} m[] = {
		{ "bob", "bob", true },     { "BOB", "bob", true },   { " bob", "bob", true },
		{ "bob  ", "Bob", true },   { "a  b", "a b", true },  { "a b", "ab", false },
		{ "bob", "bobby", false },  { "bobby", "bob", false }, { "", "", true },
		{ "  ", "", true },         { "b", "", false },
	};
	for (size_t i = 0; i < N(m); i++)
		if (dir_name_match(m[i].name, strlen(m[i].name), m[i].value, strlen(m[i].value)) !=
		    m[i].want)
			fail_msg("\"%s\" vs \"%s\": got %d", m[i].name, m[i].value, !m[i].want);
}

static void test_user_name(void **state)
{
	(void)state;
	assert_int_equal(dir_user_name("alice@EXAMPLE.ORG", true), 5);
	assert_int_equal(dir_user_name("a@b@EXAMPLE.ORG", true), 3);
	assert_int_equal(dir_user_name("alice", true), 5);
	assert_int_equal(dir_user_name("alice@EXAMPLE.ORG", false), 17);
	assert_int_equal(dir_user_name("", true), 0);
}

/* Unescape an RFC 4515 value; -1 if a '\' is not followed by two hex digits. */
static long unescape(const char *s, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		unsigned v;
		char hex[3] = { 0 };
		if (i + 2 >= len)
			return -1;
		memcpy(hex, s + i + 1, 2);
		if (sscanf(hex, "%2x", &v) != 1 || strspn(hex, "0123456789abcdef") != 2)
			return -1;
		out[o++] = (char)v;
		i += 2;
	}
	return (long)o;
}

/* Property: for random names (any bytes, NUL included), the expansion of
 * "(uid=%u)" is "(uid=" + E + ")" where E holds no '*', '(', ')' or NUL,
 * each '\' of E starts a two-hex-digit escape, and unescaping E gives the
 * name back. */
static void test_escape_property(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_dir_filter escape", 20000, &seed);
	static const char special[] = { '*', '(', ')', '\\', '\0', 'a', 'Z', ' ', '=', '\xff' };
	for (unsigned round = 0; round < rounds; round++) {
		char name[64], back[64], err[64];
		size_t len = rnd_below(sizeof(name));
		for (size_t i = 0; i < len; i++)
			name[i] = rnd_below(2) ? special[rnd_below(sizeof(special))]
					       : (char)rnd_below(256);
		char *f = dir_filter_expand("(uid=%u)", name, len, NULL, 0, err, sizeof(err));
		if (f == NULL)
			fail_msg("seed %llu round %u: %s", (unsigned long long)seed, round, err);
		size_t flen = strlen(f);
		if (flen < 6 || strncmp(f, "(uid=", 5) != 0 || f[flen - 1] != ')')
			fail_msg("seed %llu round %u: %s", (unsigned long long)seed, round, f);
		const char *e = f + 5;
		size_t elen = flen - 6;
		for (size_t i = 0; i < elen; i++) {
			if (e[i] == '*' || e[i] == '(' || e[i] == ')')
				fail_msg("seed %llu round %u: unescaped '%c' at %zu in %s",
					 (unsigned long long)seed, round, e[i], i, f);
			if (e[i] == '\\' && (i + 2 >= elen ||
					     strspn(e + i + 1, "0123456789abcdef") < 2))
				fail_msg("seed %llu round %u: a lone '\\' at %zu in %s",
					 (unsigned long long)seed, round, i, f);
		}
		char err2[256] = "";
		if (dir_filter_check(f, 0, 0, err2, sizeof(err2)) != 0 && memchr(name, '%', len) == NULL)
			fail_msg("seed %llu round %u: the expansion is not a filter: %s (%s)",
				 (unsigned long long)seed, round, f, err2);
		long blen = unescape(e, elen, back);
		if (blen != (long)len || memcmp(back, name, len) != 0)
			fail_msg("seed %llu round %u: unescaping gives another name", (unsigned long long)seed,
				 round);
		free(f);
	}
}

/* --- DNs ------------------------------------------------------------------------ */

static void test_dn_normalize(void **state)
{
	(void)state;
	static const struct {
		const char *dn, *want; /* want NULL: refused */
	} rows[] = {
		{ "cn=Staff,ou=Groups,dc=Example,dc=org", "cn=staff,ou=groups,dc=example,dc=org" },
		{ " CN = Staff , OU=Groups ,dc=example", "cn=staff,ou=groups,dc=example" },
		{ "cn=Domain Admins,cn=Users,dc=corp", "cn=domain\\20admins,cn=users,dc=corp" },
		{ "cn=a\\,b,dc=x", "cn=a\\2cb,dc=x" },
		{ "cn=a\\2Cb,dc=x", "cn=a\\2cb,dc=x" },
		{ "cn=a+uid=b,dc=x", "cn=a+uid=b,dc=x" },
		{ "cn=\\ lead,dc=x", "cn=\\20lead,dc=x" },
		{ "uid=#04024869,dc=x", "uid=#04024869,dc=x" },
		{ "2.5.4.3=x", "2.5.4.3=x" },
		{ "", NULL },
		{ "   ", NULL },
		{ "staff", NULL },
		{ "cn=", NULL },
		{ "cn=a,", NULL },
		{ "=a", NULL },
		{ "cn=a\\q", NULL },
		{ "cn=a\\2", NULL },
		{ "cn=\"a\"", NULL },
		{ "cn=#zz", NULL },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char err[128] = "";
		char *got = dir_dn_normalize(rows[i].dn, strlen(rows[i].dn), err, sizeof(err));
		if (rows[i].want == NULL && got != NULL)
			fail_msg("\"%s\": got \"%s\", want refused", rows[i].dn, got);
		if (rows[i].want != NULL && (got == NULL || strcmp(got, rows[i].want) != 0))
			fail_msg("\"%s\": got \"%s\", want \"%s\"", rows[i].dn, got ? got : err,
				 rows[i].want);
		if (rows[i].want == NULL && err[0] == '\0')
			fail_msg("\"%s\": refused without a reason", rows[i].dn);
		free(got);
	}
}

static void test_dn_equal_and_groups(void **state)
{
	(void)state;
	const char *a = "cn=admins,ou=groups,dc=hopcache,dc=test";
	assert_true(dir_dn_equal(a, strlen(a), "CN=Admins, OU=Groups, DC=HopCache, DC=test", 42));
	assert_false(dir_dn_equal(a, strlen(a), "cn=admins,ou=groups,dc=hopcache", 31));
	assert_false(dir_dn_equal("staff", 5, "staff", 5)); /* not DNs */

	static const struct {
		const char *rule, *group;
		bool want;
	} rows[] = {
		{ "staff", "cn=staff,ou=groups,dc=x", true },
		{ "Staff", "CN=STAFF,ou=groups,dc=x", true },
		{ "staff", "cn=staffers,ou=groups,dc=x", false },
		{ "staff", "ou=staff,dc=x", false },       /* the first RDN is not a CN */
		{ "groups", "cn=staff,ou=groups,dc=x", false }, /* only the first RDN */
		{ "Domain Admins", "CN=Domain Admins,CN=Users,DC=corp", true },
		{ "a,b", "cn=a\\,b,dc=x", true },
		{ "staff", "staff", true },               /* a plain value */
		{ "staff", "STAFF", true },
		{ "cn=staff,ou=groups,dc=x", "CN=Staff, OU=groups, DC=x", true },
		{ "cn=staff,ou=groups,dc=x", "cn=staff,ou=groups,dc=y", false },
		{ "cn=staff,ou=groups,dc=x", "staff", false },
	};
	for (size_t i = 0; i < N(rows); i++)
		if (dir_group_match(rows[i].rule, rows[i].group, strlen(rows[i].group)) != rows[i].want)
			fail_msg("rule \"%s\", group \"%s\": got %d", rows[i].rule, rows[i].group,
				 !rows[i].want);
	/* a value that is not NUL-terminated: only its length counts */
	assert_true(dir_group_match("staff", "cn=staff,dc=xJUNK", 13));
}

/* --- a rule's groups -------------------------------------------------------------- */

static void test_parse_groups(void **state)
{
	(void)state;
	static const struct {
		const char *val;
		const char *want[4]; /* NULL-terminated; want[0] NULL: refused */
		const char *err;
	} rows[] = {
		{ "staff", { "staff" }, NULL },
		{ "staff, admins web", { "staff", "admins", "web" }, NULL },
		{ "cn=Domain Admins, cn=Users, dc=corp", { "cn=Domain Admins, cn=Users, dc=corp" }, NULL },
		{ "staff | cn=web,ou=g,dc=x | Domain Admins",
		  { "staff", "cn=web,ou=g,dc=x", "Domain Admins" }, NULL },
		{ "Domain Admins |", { "Domain Admins" }, NULL },
		{ "cn=x,dc=y, other", { NULL }, "separate the items with '|'" },
		{ "staff | cn=", { NULL }, "is not a DN" },
		{ " | ", { NULL }, "empty list" },
		{ "", { NULL }, "empty list" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char **v = NULL;
		size_t n = 0;
		char err[256] = "";
		int rc = dir_parse_groups(rows[i].val, &v, &n, err, sizeof(err));
		if (rows[i].want[0] == NULL) {
			if (rc == 0 || strstr(err, rows[i].err) == NULL)
				fail_msg("\"%s\": got %d \"%s\", want an error with \"%s\"", rows[i].val, rc,
					 err, rows[i].err);
			continue;
		}
		if (rc != 0)
			fail_msg("\"%s\": %s", rows[i].val, err);
		size_t k = 0;
		while (k < 4 && rows[i].want[k] != NULL)
			k++;
		if (n != k)
			fail_msg("\"%s\": %zu items, want %zu", rows[i].val, n, k);
		for (size_t j = 0; j < n; j++)
			if (strcmp(v[j], rows[i].want[j]) != 0)
				fail_msg("\"%s\" item %zu: got \"%s\", want \"%s\"", rows[i].val, j, v[j],
					 rows[i].want[j]);
		acl_names_free(v, n);
	}
	assert_true(dir_group_is_dn("cn=a,dc=b"));
	assert_false(dir_group_is_dn("staff"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_user_name),
		cmocka_unit_test(test_name_attrs),
		cmocka_unit_test(test_escape_property),
		cmocka_unit_test(test_dn_normalize),
		cmocka_unit_test(test_dn_equal_and_groups),
		cmocka_unit_test(test_parse_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

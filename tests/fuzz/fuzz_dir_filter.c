/* fuzz_dir_filter.c - libFuzzer target: the directory's filter templates,
 * RFC 4515 escaping, DNs and rule groups (src/policy/dir_filter.c).
 *
 * The input is three fields split at the first two '\n': a template (also
 * read as a [rule.NAME] groups value), a user name and a DN (both may hold
 * any byte, NUL included). Beyond "no crash, no over-read":
 *   - a template dir_filter_check accepts always expands; the expansion of
 *     a name (and a DN) has no unescaped '*', '(', ')', NUL, nor a '\' that
 *     does not start two hex digits, in the part the value filled;
 *   - a DN that normalizes normalizes again to itself and equals its form;
 *   - dir_dn_equal and dir_name_match are symmetric; a parsed groups value
 *     has items that are non-empty, and DN items normalize; the name
 *     attributes of a template are non-empty parts of it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "dir_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless out[0..len) is a properly escaped assertion value. */
static void check_escaped(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = out[i];
		if (c == '*' || c == '(' || c == ')' || c == '\0')
			abort();
		if (c == '\\') {
			if (i + 2 >= len)
				abort();
			if (strspn(out + i + 1, "0123456789abcdef") < 2)
				abort();
			i += 2;
		}
	}
}

/* Split data at the first '\n' from *off: [start, end). */
static const char *field(const uint8_t *data, size_t size, size_t *off, size_t *len)
{
	const char *p = (const char *)data + *off;
	const char *nl = memchr(p, '\n', size - *off);
	*len = nl != NULL ? (size_t)(nl - p) : size - *off;
	*off += *len + (nl != NULL);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, tlen, ulen, dlen;
	const char *t = field(data, size, &off, &tlen);
	const char *u = field(data, size, &off, &ulen);
	const char *d = field(data, size, &off, &dlen);
	char *tmpl = strndup(t, tlen); /* cut at a NUL: the INI has none */
	char *user = strndup(u, ulen);
	char err[256];
	if (tmpl == NULL || user == NULL)
		abort();

	/* the escaping alone */
	char *esc = malloc(3 * ulen + 1);
	if (esc == NULL)
		abort();
	size_t elen = dir_filter_escape(u, ulen, esc);
	if (elen > 3 * ulen)
		abort();
	check_escaped(esc, elen);
	free(esc);

	/* a checked template expands; "(x=%u)" puts the value between known
	 * bytes, where it must be escaped */
	if (dir_filter_check(tmpl, DIR_FILTER_U | DIR_FILTER_D, 0, err, sizeof(err)) == 0) {
		char *f = dir_filter_expand(tmpl, u, ulen, d, dlen, err, sizeof(err));
		if (f == NULL)
			abort();
		free(f);
	}
	char *f = dir_filter_expand("(x=%u)", u, ulen, NULL, 0, err, sizeof(err));
	if (f == NULL || strncmp(f, "(x=", 3) != 0)
		abort();
	size_t flen = strlen(f);
	if (flen < 4 || f[flen - 1] != ')')
		abort();
	check_escaped(f + 3, flen - 4);
	free(f);

	/* DNs */
	char *n = dir_dn_normalize(d, dlen, err, sizeof(err));
	if (n != NULL) {
		char *n2 = dir_dn_normalize(n, strlen(n), err, sizeof(err));
		if (n2 == NULL || strcmp(n, n2) != 0)
			abort();
		if (!dir_dn_equal(d, dlen, n, strlen(n)))
			abort();
		free(n2);
		free(n);
	}
	if (dir_dn_equal(u, ulen, d, dlen) != dir_dn_equal(d, dlen, u, ulen))
		abort();
	(void)dir_group_match(user, d, dlen);
	(void)dir_user_name(user, true);
	if (dir_name_match(u, ulen, d, dlen) != dir_name_match(d, dlen, u, ulen))
		abort();
	char **attrs = NULL;
	size_t nattrs = 0;
	if (dir_filter_name_attrs(tmpl, &attrs, &nattrs) == 0) {
		if (attrs[nattrs] != NULL)
			abort();
		for (size_t i = 0; i < nattrs; i++)
			if (attrs[i][0] == '\0' || strstr(tmpl, attrs[i]) == NULL)
				abort();
		acl_names_free(attrs, nattrs);
	}

	/* the template as a groups value */
	char **v = NULL;
	size_t nv = 0;
	if (dir_parse_groups(tmpl, &v, &nv, err, sizeof(err)) == 0) {
		if (nv == 0)
			abort();
		for (size_t i = 0; i < nv; i++) {
			if (v[i][0] == '\0')
				abort();
			if (dir_group_is_dn(v[i])) {
				char *g = dir_dn_normalize(v[i], strlen(v[i]), err, sizeof(err));
				if (g == NULL)
					abort();
				free(g);
			}
		}
		acl_names_free(v, nv);
	}
	free(tmpl);
	free(user);
	return 0;
}

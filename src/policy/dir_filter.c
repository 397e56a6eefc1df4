/* dir_filter.c - filter templates, DNs and rule groups for the directory
 * (dir_filter.h). Pure: no I/O, no globals. */
#include "dir_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
	return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* --- filters ----------------------------------------------------------------- */

int dir_filter_check(const char *tmpl, unsigned allowed, unsigned needed, char *err,
		     size_t errlen)
{
	size_t len = strlen(tmpl);
	int depth = 0;
	unsigned seen = 0;

	if (len == 0 || tmpl[0] != '(') {
		snprintf(err, errlen, "expected a filter in parentheses like \"(uid=%%u)\"");
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = tmpl[i];

		if (c == '(') {
			depth++;
		} else if (c == ')') {
			/* depth 0 is reached only at the end (below): never < 0 */
			if (--depth == 0 && i + 1 != len) {
				snprintf(err, errlen, "text after the filter's closing ')' at offset %zu "
					 "(combine filters with (&...) or (|...))", i);
				return -1;
			}
		} else if (c == '\\') {
			if (i + 2 >= len || !is_hex(tmpl[i + 1]) || !is_hex(tmpl[i + 2])) {
				snprintf(err, errlen, "a '\\' at offset %zu is not followed by two hex "
					 "digits (RFC 4515: write \\28 for '(', \\2a for '*')", i);
				return -1;
			}
			i += 2;
		} else if (c == '%') {
			char p = i + 1 < len ? tmpl[i + 1] : '\0';
			unsigned flag = p == 'u' ? DIR_FILTER_U : p == 'D' ? DIR_FILTER_D : 0;

			if (p == '%') {
				i++;
				continue;
			}
			if (flag == 0 || !(allowed & flag)) {
				snprintf(err, errlen, "%%%c at offset %zu is not a placeholder here (use "
					 "%s%%%%)", p ? p : ' ', i,
					 allowed & DIR_FILTER_D ? "%u, %D or " : "%u or ");
				return -1;
			}
			seen |= flag;
			i++;
		}
	}
	if (depth != 0) {
		snprintf(err, errlen, "unbalanced parentheses: %d '(' not closed", depth);
		return -1;
	}
	if (needed != 0 && (seen & needed) == 0) {
		snprintf(err, errlen, "must contain %s", needed == DIR_FILTER_U ? "%u (the user name)"
						: needed == DIR_FILTER_D ? "%D (the user's DN)"
									 : "%u or %D");
		return -1;
	}
	return 0;
}

size_t dir_filter_escape(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0') {
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	return o;
}

char *dir_filter_expand(const char *tmpl, const char *user, size_t user_len, const char *dn,
			size_t dn_len, char *err, size_t errlen)
{
	size_t len = strlen(tmpl), need = 1;

	/* the size first: each placeholder grows to at most 3 bytes per byte */
	for (size_t i = 0; i < len; i++) {
		if (tmpl[i] != '%' || i + 1 >= len) {
			need++;
			continue;
		}
		char p = tmpl[++i];
		size_t vlen = p == 'u' ? user_len : p == 'D' ? dn_len : 1;

		if ((p == 'u' && user == NULL) || (p == 'D' && dn == NULL)) {
			snprintf(err, errlen, "%%%c has no value here", p);
			return NULL;
		}
		if (p != 'u' && p != 'D' && p != '%') {
			snprintf(err, errlen, "%%%c is not a placeholder", p);
			return NULL;
		}
		if (vlen > (SIZE_MAX - need) / 3) {
			snprintf(err, errlen, "filter too large");
			return NULL;
		}
		need += p == '%' ? 1 : 3 * vlen;
	}
	char *out = malloc(need);
	if (out == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (tmpl[i] != '%' || i + 1 >= len) {
			out[o++] = tmpl[i];
			continue;
		}
		char p = tmpl[++i];
		if (p == 'u')
			o += dir_filter_escape(user, user_len, out + o);
		else if (p == 'D')
			o += dir_filter_escape(dn, dn_len, out + o);
		else
			out[o++] = '%';
	}
	out[o] = '\0';
	return out;
}

int dir_filter_name_attrs(const char *tmpl, char ***out, size_t *n)
{
	char **v = calloc(1, sizeof(*v));
	size_t cnt = 0;

	if (v == NULL)
		return -1;
	for (const char *p = tmpl; (p = strstr(p, "=%u")) != NULL; p += 3) {
		/* "(attr=%u)": an equality assertion of the whole value */
		if (p[3] != ')')
			continue;
		const char *e = p, *b = p;
		while (b > tmpl && b[-1] != '(')
			b--;
		if (b == tmpl || e == b)
			continue;
		bool ok = true;
		for (const char *q = b; q < e && ok; q++)
			ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
			     (*q >= '0' && *q <= '9') || *q == '-' || *q == '.' || *q == ';';
		bool seen = false;
		for (size_t i = 0; ok && i < cnt && !seen; i++)
			seen = strlen(v[i]) == (size_t)(e - b) && strncasecmp(v[i], b, (size_t)(e - b)) == 0;
		if (!ok || seen)
			continue;
		char **grown = realloc(v, (cnt + 2) * sizeof(*grown));
		if (grown == NULL || (grown[cnt] = strndup(b, (size_t)(e - b))) == NULL) {
			if (grown != NULL)
				v = grown;
			v[cnt] = NULL;
			acl_names_free(v, cnt);
			return -1;
		}
		v = grown;
		v[++cnt] = NULL;
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* Skip spaces at p (up to end). */
static const char *skip_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

bool dir_name_match(const char *name, size_t nlen, const char *v, size_t vlen)
{
	const char *a = name, *ae = name + nlen, *b = v, *be = v + vlen;

	a = skip_spaces(a, ae);
	b = skip_spaces(b, be);
	while (a < ae && b < be) {
		if (*a == ' ' || *b == ' ') {
			/* a run of spaces is one, and none at the end */
			if (*a != ' ' || *b != ' ')
				return false;
			a = skip_spaces(a, ae);
			b = skip_spaces(b, be);
			if ((a == ae) != (b == be))
				return false;
			continue;
		}
		if (lower(*a) != lower(*b))
			return false;
		a++, b++;
	}
	return skip_spaces(a, ae) == ae && skip_spaces(b, be) == be;
}

size_t dir_user_name(const char *user, bool kerberos)
{
	const char *at = kerberos ? strrchr(user, '@') : NULL;

	return at != NULL ? (size_t)(at - user) : strlen(user);
}

/* --- distinguished names ----------------------------------------------------- */

/* One attribute-value assertion read from a DN: the type as written (a range
 * of the input), the value decoded into val (capacity >= the rest of the
 * input), and whether it was a #hexstring (kept as written). */
struct ava {
	const char *type;
	size_t type_len;
	size_t val_len;
	bool hex;
};

/* The characters a DN value must escape (RFC 4514 §2.4), plus '=' (we
 * escape it on output so that the form is one). */
static bool dn_special(char c)
{
	return c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' ||
	       c == '=' || c == '#' || c == ' ' || c == '\0';
}

/* Read one AVA at *pp (up to end): "type = value", spaces around '=' and
 * at the ends of an unescaped value dropped. *pp is left at the ',' or '+'
 * that ends it, or end. 0, or -1 with the problem in err. */
static int parse_ava(const char **pp, const char *end, struct ava *a, char *val, char *err,
		     size_t errlen)
{
	const char *p = *pp;

	while (p < end && is_space(*p))
		p++;
	a->type = p;
	while (p < end && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
		p++;
	a->type_len = (size_t)(p - a->type);
	while (p < end && is_space(*p))
		p++;
	if (a->type_len == 0 || p == end || *p != '=') {
		snprintf(err, errlen, "expected attribute=value (like cn=staff) at \"%.*s\"",
			 (int)((end - a->type) > 40 ? 40 : (end - a->type)), a->type);
		return -1;
	}
	p++;
	while (p < end && is_space(*p))
		p++;
	size_t o = 0, keep = 0; /* keep: the length without trailing unescaped spaces */
	a->hex = p < end && *p == '#';
	if (a->hex) {
		val[o++] = '#';
		for (p++; p < end && is_hex(*p); p++)
			val[o++] = lower(*p);
		keep = o;
		while (p < end && is_space(*p))
			p++;
		if (o < 3 || (o - 1) % 2 != 0 || (p < end && *p != ',' && *p != '+')) {
			snprintf(err, errlen, "a value starting with '#' must be hex pairs");
			return -1;
		}
	}
	while (!a->hex && p < end && *p != ',' && *p != '+') {
		char c = *p++;

		if (c == '\\') {
			if (p < end && is_hex(*p)) {
				if (p + 1 >= end || !is_hex(p[1])) {
					snprintf(err, errlen, "'\\' must be followed by two hex digits or "
						 "a special character");
					return -1;
				}
				val[o++] = (char)(hex_val(p[0]) * 16 + hex_val(p[1]));
				p += 2;
			} else if (p < end && dn_special(*p)) {
				val[o++] = *p++;
			} else {
				snprintf(err, errlen, "'\\' must be followed by two hex digits or a "
					 "special character");
				return -1;
			}
			keep = o;
			continue;
		}
		if (c == '"') {
			snprintf(err, errlen, "a '\"' in a DN value must be escaped (\\\")");
			return -1;
		}
		val[o++] = c;
		if (!is_space(c))
			keep = o;
	}
	if (keep == 0) {
		snprintf(err, errlen, "empty value for %.*s", (int)a->type_len, a->type);
		return -1;
	}
	a->val_len = keep;
	*pp = p;
	return 0;
}

char *dir_dn_normalize(const char *dn, size_t len, char *err, size_t errlen)
{
	const char *p = dn, *end = dn + len;
	char *val = malloc(len + 1);
	/* each input byte is at most 3 output bytes ("\2c"), plus a NUL */
	char *out = len < SIZE_MAX / 3 ? malloc(3 * len + 1) : NULL;
	size_t o = 0;

	if (val == NULL || out == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (memchr(dn, '\0', len) != NULL) {
		snprintf(err, errlen, "a DN cannot hold a NUL byte");
		goto fail;
	}
	while (p < end && is_space(*p))
		p++;
	if (p == end) {
		snprintf(err, errlen, "empty DN");
		goto fail;
	}
	for (;;) {
		struct ava a;

		if (parse_ava(&p, end, &a, val, err, errlen) < 0)
			goto fail;
		for (size_t i = 0; i < a.type_len; i++)
			out[o++] = lower(a.type[i]);
		out[o++] = '=';
		for (size_t i = 0; i < a.val_len; i++) {
			char c = lower(val[i]);

			if (!a.hex && (dn_special(c) || (unsigned char)c < 0x20)) {
				static const char hex[] = "0123456789abcdef";

				out[o++] = '\\';
				out[o++] = hex[(unsigned char)c >> 4];
				out[o++] = hex[c & 15];
			} else {
				out[o++] = c;
			}
		}
		if (p == end)
			break;
		out[o++] = *p++; /* ',' or '+' */
	}
	out[o] = '\0';
	free(val);
	return out;
fail:
	free(val);
	free(out);
	return NULL;
}

bool dir_dn_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	char err[8];
	char *na = dir_dn_normalize(a, alen, err, sizeof(err));
	char *nb = na != NULL ? dir_dn_normalize(b, blen, err, sizeof(err)) : NULL;
	bool eq = na != NULL && nb != NULL && strcmp(na, nb) == 0;

	free(na);
	free(nb);
	return eq;
}

/* Case-insensitive (ASCII) comparison of a NUL-terminated name with a range. */
static bool name_eq(const char *name, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (name[i] == '\0' || lower(name[i]) != lower(s[i]))
			return false;
	return name[i] == '\0';
}

bool dir_group_match(const char *rule, const char *group, size_t glen)
{
	if (strchr(rule, '=') != NULL)
		return dir_dn_equal(rule, strlen(rule), group, glen);
	if (memchr(group, '=', glen) == NULL)
		return name_eq(rule, group, glen);
	/* the group's CN: the value of its first RDN when that is cn */
	const char *p = group;
	char err[8];
	char *val = malloc(glen + 1);
	struct ava a;
	bool eq = false;

	if (val != NULL && parse_ava(&p, group + glen, &a, val, err, sizeof(err)) == 0 && !a.hex &&
	    a.type_len == 2 && lower(a.type[0]) == 'c' && lower(a.type[1]) == 'n')
		eq = name_eq(rule, val, a.val_len);
	free(val);
	return eq;
}

/* --- the groups of a rule ---------------------------------------------------- */

bool dir_group_is_dn(const char *group)
{
	return strchr(group, '=') != NULL;
}

/* Append a copy of [p, p + len) (trimmed) to the list, checking a DN. */
static int add_item(char ***v, size_t *n, const char *p, size_t len, char *err, size_t errlen)
{
	while (len > 0 && (is_space(*p) || *p == '\n' || *p == '\r'))
		p++, len--;
	while (len > 0 && (is_space(p[len - 1]) || p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	if (len == 0)
		return 0;
	if (memchr(p, '=', len) != NULL) {
		char *norm = dir_dn_normalize(p, len, err, errlen);

		if (norm == NULL) {
			char why[160];

			snprintf(why, sizeof(why), "%s", err);
			snprintf(err, errlen, "\"%.*s\" is not a DN: %s%s", (int)(len > 80 ? 80 : len),
				 p, why,
				 memchr(p, ',', len) != NULL
					 ? " (to list a DN with other groups, separate the items "
					   "with '|')"
					 : "");
			return -1;
		}
		free(norm);
	}
	char **grown = realloc(*v, (*n + 1) * sizeof(*grown));
	if (grown == NULL || (grown[*n] = strndup(p, len)) == NULL) {
		if (grown != NULL)
			*v = grown;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*v = grown;
	(*n)++;
	return 0;
}

int dir_parse_groups(const char *s, char ***out, size_t *n, char *err, size_t errlen)
{
	char **v = NULL;
	size_t cnt = 0;
	int rc = 0;

	if (strchr(s, '|') != NULL) {
		for (const char *p = s; rc == 0;) {
			const char *bar = strchr(p, '|');
			size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);

			rc = add_item(&v, &cnt, p, len, err, errlen);
			if (bar == NULL)
				break;
			p = bar + 1;
		}
	} else if (strchr(s, '=') != NULL) {
		rc = add_item(&v, &cnt, s, strlen(s), err, errlen);
	} else {
		return acl_parse_names(s, out, n, err, errlen);
	}
	if (rc == 0 && cnt == 0) {
		snprintf(err, errlen, "expected group names or DNs, got an empty list");
		rc = -1;
	}
	if (rc < 0) {
		acl_names_free(v, cnt);
		return -1;
	}
	*out = v;
	*n = cnt;
	return 0;
}

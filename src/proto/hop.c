/* hop.c - the header stage: one table of header fields with flags decides,
 * for requests, responses and the cache writer alike, which fields are
 * hop-by-hop (RFC 9110 §7.6.1) and which the proxy rewrites itself.
 * Pure: no I/O, no allocation, no state but the constant table.
 *
 * Decisions this file takes (see hop.h for the contract):
 *   - Proxy-Authorization and Proxy-Authenticate are dropped in BOTH
 *     directions: neither is ever meant for the hop after us, and the cache
 *     must never store either. proxy_auth_index is reported for requests only.
 *   - hop_info describes the message as received: a field is reported
 *     (upgrade_index, max_forwards, expect_continue, proxy_auth_index) even
 *     when keep[] drops it, e.g. a Max-Forwards that Connection lists.
 *   - On an error result every keep[i] is false (nothing is forwarded) and
 *     info holds what was learned up to the offending Connection field.
 *   - Proxy-Connection is dropped but not interpreted (conn_close and
 *     conn_keep_alive come from Connection only). */
#include <assert.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hop.h"
#include "decimal.h"

/* Row flags of the field table. */
enum {
	HF_HOP = 1u << 0,     /* hop-by-hop by definition: hop_is_hop_by_hop() */
	HF_DROP = 1u << 1,    /* never forwarded as received */
	HF_NO_LIST = 1u << 2, /* meant for every recipient: listing it in
				 Connection is an error (RFC 9110 §7.6.1) */
	HF_UPGRADE = 1u << 3, /* kept when an upgrade is being carried out */
};

/* The fields the header stage knows by name. */
enum hop_id {
	HID_CONNECTION,
	HID_KEEP_ALIVE,
	HID_PROXY_CONNECTION,
	HID_TE,
	HID_TRAILER,
	HID_TRANSFER_ENCODING,
	HID_UPGRADE,
	HID_PROXY_AUTHORIZATION,
	HID_PROXY_AUTHENTICATE,
	HID_CONTENT_LENGTH,
	HID_HOST,
	HID_MAX_FORWARDS,
	HID_EXPECT,
	HID_OTHER, /* not in the table: end-to-end */
};

struct hop_row {
	const char *name;
	size_t len;
	enum hop_id id;
	unsigned flags;
};

#define HOP_ROW(n, id, f) { (n), sizeof(n) - 1, (id), (f) }

/* One row per field the stage treats specially, each with its reason. */
static const struct hop_row hop_table[] = {
	/* RFC 9110 §7.6.1: parsed, its listed fields removed, then removed itself. */
	HOP_ROW("Connection", HID_CONNECTION, HF_HOP | HF_DROP),
	/* RFC 9110 §7.6.1, RFC 2068 §19.7.1: HTTP/1.0 persistence parameters. */
	HOP_ROW("Keep-Alive", HID_KEEP_ALIVE, HF_HOP | HF_DROP),
	/* RFC 9110 §7.6.1, RFC 9112 Appendix C.2.2: pre-standard Connection. */
	HOP_ROW("Proxy-Connection", HID_PROXY_CONNECTION, HF_HOP | HF_DROP),
	/* RFC 9110 §7.6.1, §10.1.4: codings the immediate client accepts. */
	HOP_ROW("TE", HID_TE, HF_HOP | HF_DROP),
	/* RFC 9110 §6.6.2: announces trailers; ours are discarded on re-framing. */
	HOP_ROW("Trailer", HID_TRAILER, HF_HOP | HF_DROP),
	/* RFC 9110 §7.6.1, RFC 9112 §6.1: this hop's framing; we re-frame, and
	 * listing it would let a sender hide the framing from us. */
	HOP_ROW("Transfer-Encoding", HID_TRANSFER_ENCODING, HF_HOP | HF_DROP | HF_NO_LIST),
	/* RFC 9110 §7.6.1, §7.8: a protocol switch of this connection only. */
	HOP_ROW("Upgrade", HID_UPGRADE, HF_HOP | HF_DROP | HF_UPGRADE),
	/* RFC 9110 §11.7.2: credentials for this proxy, consumed here. */
	HOP_ROW("Proxy-Authorization", HID_PROXY_AUTHORIZATION, HF_HOP | HF_DROP),
	/* RFC 9110 §11.7.1: applies only to the next outbound client. */
	HOP_ROW("Proxy-Authenticate", HID_PROXY_AUTHENTICATE, HF_HOP | HF_DROP),
	/* RFC 9110 §8.6, RFC 9112 §6.3: framing; the caller writes its own. */
	HOP_ROW("Content-Length", HID_CONTENT_LENGTH, HF_DROP | HF_NO_LIST),
	/* RFC 9112 §3.2.2: a proxy MUST replace Host from the absolute-form target. */
	HOP_ROW("Host", HID_HOST, HF_DROP | HF_NO_LIST),
	/* RFC 9110 §7.6.2: end-to-end; the caller decrements it for OPTIONS/TRACE. */
	HOP_ROW("Max-Forwards", HID_MAX_FORWARDS, 0),
	/* RFC 9110 §10.1.1: end-to-end; the stage notes 100-continue. */
	HOP_ROW("Expect", HID_EXPECT, 0),
};

#define HOP_NROWS (sizeof(hop_table) / sizeof(hop_table[0]))

/* ASCII lower case, independent of the locale. */
static unsigned char hop_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of two byte ranges of equal length n. */
static bool hop_ci_eq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (hop_lower((unsigned char)a[i]) != hop_lower((unsigned char)b[i]))
			return false;
	return true;
}

/* Case-insensitive equality of a slice and a NUL-terminated ASCII literal. */
static bool hop_eq_lit(struct slice s, const char *lit)
{
	return slices_eq_ci(s, slice_make(lit, strlen(lit)));
}

/* The table row for a field name, or NULL for an end-to-end field. */
static const struct hop_row *hop_lookup(struct slice name)
{
	size_t i;

	for (i = 0; i < HOP_NROWS; i++)
		if (hop_table[i].len == name.len &&
		    hop_ci_eq(hop_table[i].name, name.p, name.len))
			return &hop_table[i];
	return NULL;
}

/* The table id for a field name (HID_OTHER when not in the table). */
static enum hop_id hop_id_of(struct slice name)
{
	const struct hop_row *r = hop_lookup(name);

	return r ? r->id : HID_OTHER;
}

/* OWS = *( SP / HTAB ) (RFC 9110 §5.6.3). */
static bool hop_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Next element of a comma list (RFC 9110 §5.6.1), OWS trimmed; elements may
 * be empty. *pos starts at 0; returns false when the list is exhausted. */
static bool hop_list_next(struct slice v, size_t *pos, struct slice *elem)
{
	size_t start = *pos, end;

	if (start > v.len)
		return false;
	end = start;
	while (end < v.len && v.p[end] != ',')
		end++;
	*pos = end + 1;
	while (start < end && hop_is_ows(v.p[start]))
		start++;
	while (end > start && hop_is_ows(v.p[end - 1]))
		end--;
	*elem = slice_make(v.p + start, end - start);
	return true;
}

/* A field index as an int for hop_info (-1 if it does not fit). */
static int hop_index(size_t i)
{
	return i > (size_t)INT_MAX ? -1 : (int)i;
}

/* Max-Forwards = 1*DIGIT (RFC 9110 §7.6.2), clamped to INT32_MAX; -1 if invalid. */
static int hop_parse_max_forwards(struct slice v)
{
	uint64_t n;

	return decimal_parse_clamped(v.p, v.len, INT32_MAX, &n) ? (int)n : -1;
}

/* Parse one Connection field value into info; note whether it names any field.
 * RFC 9110 §7.6.1: connection-option = token; a sender MUST NOT list a field
 * intended for all recipients, and obeying such a list would drop the framing
 * or routing fields, so we refuse the message. */
static enum hop_result hop_parse_connection(struct slice v, struct hop_info *info,
					    bool *names_any)
{
	struct slice e;
	size_t pos = 0;

	while (hop_list_next(v, &pos, &e)) {
		const struct hop_row *r;

		if (e.len == 0)
			continue; /* RFC 9110 §5.6.1: empty elements are tolerated */
		if (!http_is_token(e))
			return HOP_ERR_SYNTAX;
		r = hop_lookup(e);
		if (r && (r->flags & HF_NO_LIST))
			return HOP_ERR_CONNECTION_FRAMING;
		if (hop_eq_lit(e, "close"))
			info->conn_close = true;
		else if (hop_eq_lit(e, "keep-alive"))
			info->conn_keep_alive = true;
		else if (hop_eq_lit(e, "upgrade"))
			info->conn_upgrade = true;
		*names_any = true;
	}
	return HOP_OK;
}

/* Does any Connection field among fields[0..n) list `name`? */
static bool hop_listed(const struct http_field *fields, size_t n, struct slice name)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct slice e;
		size_t pos = 0;

		if (hop_id_of(fields[i].name) != HID_CONNECTION)
			continue;
		while (hop_list_next(fields[i].value, &pos, &e))
			if (slices_eq_ci(e, name))
				return true;
	}
	return false;
}

/* Classify fields[0..n) into forwarded (keep[i]) and consumed; see hop.h. */
enum hop_result hop_classify(const struct http_field *fields, size_t n, enum hop_dir dir,
			     bool keep_upgrade, bool *keep, struct hop_info *info)
{
	size_t i, first_conn = n;
	bool names_any = false;
	enum hop_result rc;

	assert(info != NULL);
	assert(n == 0 || (fields != NULL && keep != NULL));

	info->conn_close = false;
	info->conn_keep_alive = false;
	info->conn_upgrade = false;
	info->upgrade_index = -1;
	info->max_forwards = -1;
	info->max_forwards_index = -1;
	info->expect_continue = false;
	info->proxy_auth_index = -1;

	/* Pass 1: RFC 9110 §7.6.1, a proxy MUST parse every Connection field
	 * before forwarding; also gather what the caller needs to know. */
	for (i = 0; i < n; i++) {
		const struct http_field *f = &fields[i];
		int mf;

		keep[i] = false;
		switch (hop_id_of(f->name)) {
		case HID_CONNECTION:
			if (first_conn == n)
				first_conn = i;
			rc = hop_parse_connection(f->value, info, &names_any);
			if (rc != HOP_OK) {
				for (; i < n; i++)
					keep[i] = false; /* forward nothing */
				return rc;
			}
			break;
		case HID_UPGRADE:
			if (info->upgrade_index < 0)
				info->upgrade_index = hop_index(i);
			break;
		case HID_PROXY_AUTHORIZATION:
			if (dir == HOP_REQUEST && info->proxy_auth_index < 0)
				info->proxy_auth_index = hop_index(i);
			break;
		case HID_MAX_FORWARDS:
			if (info->max_forwards_index >= 0)
				break;
			mf = hop_parse_max_forwards(f->value);
			if (mf >= 0) {
				info->max_forwards = mf;
				info->max_forwards_index = hop_index(i);
			}
			break;
		case HID_EXPECT:
			if (dir == HOP_REQUEST && hop_eq_lit(f->value, "100-continue"))
				info->expect_continue = true;
			break;
		default:
			break;
		}
	}

	/* Pass 2: decide each field. RFC 9110 §7.6.1: remove every field a
	 * Connection option names, wherever it appears, then Connection itself. */
	for (i = 0; i < n; i++) {
		const struct hop_row *r = hop_lookup(fields[i].name);

		if (r && (r->flags & HF_UPGRADE) && keep_upgrade)
			keep[i] = true;
		else if (r && (r->flags & HF_DROP))
			keep[i] = false;
		else if (names_any)
			keep[i] = !hop_listed(fields + first_conn, n - first_conn,
					      fields[i].name);
		else
			keep[i] = true;
	}
	return HOP_OK;
}

/* Is this one of the standard hop-by-hop fields (the HF_HOP rows)? */
bool hop_is_hop_by_hop(struct slice name)
{
	const struct hop_row *r = hop_lookup(name);

	return r != NULL && (r->flags & HF_HOP);
}

/* Does the comma list `value` contain `token` (case-insensitive)? */
bool hop_list_has(struct slice value, const char *token)
{
	struct slice e;
	size_t pos = 0;

	if (token == NULL || token[0] == '\0')
		return false;
	while (hop_list_next(value, &pos, &e))
		if (hop_eq_lit(e, token))
			return true;
	return false;
}

/* cache_key.c - the one function that names a stored response (see
 * cache_key.h for the encoding). */
#include "cache_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cache_policy.h"

/* Make room for n more bytes. */
static int ident_reserve(struct cache_ident *id, size_t n)
{
	if (n <= id->cap - id->len)
		return 0;
	if (n > SIZE_MAX / 2 - id->len)
		return -1;
	size_t cap = id->cap ? id->cap : 256;
	while (cap - id->len < n)
		cap *= 2;
	uint8_t *p = realloc(id->p, cap);
	if (p == NULL)
		return -1;
	id->p = p;
	id->cap = cap;
	return 0;
}

/* Append one part's length prefix (8 bytes, big-endian). */
static int put_len(struct cache_ident *id, uint64_t n)
{
	if (ident_reserve(id, 8) != 0)
		return -1;
	for (int i = 7; i >= 0; i--)
		id->p[id->len++] = (uint8_t)(n >> (8 * i));
	return 0;
}

/* Append one part: its length, then its bytes. */
static int put_part(struct cache_ident *id, const void *p, size_t n)
{
	if (put_len(id, n) != 0 || ident_reserve(id, n) != 0)
		return -1;
	if (n > 0)
		memcpy(id->p + id->len, p, n);
	id->len += n;
	return 0;
}

/* A Vary'd field: its lower-cased name, then its value tagged so that an
 * absent field differs from a present empty one ("-" absent, "=" + the
 * combined value present). */
static int put_vary(struct cache_ident *id, struct slice name, const struct http_field *req,
		    size_t nreq)
{
	if (put_len(id, name.len) != 0 || ident_reserve(id, name.len) != 0)
		return -1;
	for (size_t i = 0; i < name.len; i++) {
		char ch = name.p[i];
		id->p[id->len++] = (uint8_t)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
	}
	bool absent = false;
	size_t vlen = cache_vary_value(req, nreq, name, NULL, 0, &absent);
	if (absent)
		return put_part(id, "-", 1);
	if (vlen == SIZE_MAX || put_len(id, vlen + 1) != 0 || ident_reserve(id, vlen + 1) != 0)
		return -1;
	id->p[id->len++] = '=';
	cache_vary_value(req, nreq, name, (char *)id->p + id->len, vlen, &absent);
	id->len += vlen;
	return 0;
}

int cache_key_hash(const uint8_t *p, size_t len, uint8_t key[CACHE_KEY_LEN])
{
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		  (len == 0 || EVP_DigestUpdate(ctx, p, len) == 1) &&
		  EVP_DigestFinal_ex(ctx, key, &n) == 1 && n == CACHE_KEY_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		memset(key, 0, CACHE_KEY_LEN);
		return -1;
	}
	return 0;
}

int cache_key_make(const struct cache_key_input *in, struct cache_ident *id,
		   uint8_t key[CACHE_KEY_LEN])
{
	id->len = 0;
	int rc = put_part(id, in->method_class.p, in->method_class.len);
	if (rc == 0)
		rc = put_part(id, in->uri.p, in->uri.len);
	if (rc == 0 && in->nvary > 0) {
		rc = put_part(id, in->generation.p, in->generation.len);
		for (size_t i = 0; rc == 0 && i < in->nvary; i++)
			rc = put_vary(id, in->vary_names[i], in->req, in->nreq);
	}
	if (rc != 0) {
		memset(key, 0, CACHE_KEY_LEN);
		return -1;
	}
	return cache_key_hash(id->p, id->len, key);
}

char *cache_uri_normal(const struct http_target *t, size_t *len)
{
	bool https = slice_eq_ci(t->scheme, "https");
	unsigned defport = https ? 443 : 80;
	char port[8] = "";
	if (t->port != defport)
		snprintf(port, sizeof(port), ":%u", (unsigned)t->port);
	bool slash = t->path.len > 0 && t->path.p[0] == '?';
	size_t n = (https ? 8 : 7) + t->host.len + 2 + strlen(port) + slash + t->path.len;
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	memcpy(out, https ? "https://" : "http://", https ? 8 : 7);
	o += https ? 8 : 7;
	if (t->ipv6_literal)
		out[o++] = '[';
	for (size_t i = 0; i < t->host.len; i++) {
		char ch = t->host.p[i];
		out[o++] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
	}
	if (t->ipv6_literal)
		out[o++] = ']';
	memcpy(out + o, port, strlen(port));
	o += strlen(port);
	if (slash)
		out[o++] = '/';
	if (t->path.len > 0)
		memcpy(out + o, t->path.p, t->path.len);
	o += t->path.len;
	out[o] = '\0';
	*len = o;
	return out;
}

int cache_ident_copy(struct cache_ident *dst, const struct cache_ident *src)
{
	dst->len = 0;
	if (ident_reserve(dst, src->len) != 0)
		return -1;
	if (src->len > 0)
		memcpy(dst->p, src->p, src->len);
	dst->len = src->len;
	return 0;
}

bool cache_ident_equal(const struct cache_ident *id, const uint8_t *stored, size_t len)
{
	return id->len == len && (len == 0 || memcmp(id->p, stored, len) == 0);
}

void cache_ident_free(struct cache_ident *id)
{
	free(id->p);
	id->p = NULL;
	id->len = id->cap = 0;
}

int cache_key_primary(const struct http_target *t, uint8_t key[CACHE_KEY_LEN])
{
	size_t ulen;
	char *uri = cache_uri_normal(t, &ulen);
	if (uri == NULL)
		return -1;
	struct cache_ident id = { 0 };
	struct cache_key_input in = { .method_class = SLICE_LIT("GET"),
				      .uri = slice_make(uri, ulen) };
	int r = cache_key_make(&in, &id, key);
	free(uri);
	cache_ident_free(&id);
	return r;
}

int cache_key_of_url(const char *url, uint8_t key[CACHE_KEY_LEN])
{
	struct http_target t;
	if (http_parse_target(SLICE_LIT("GET"), slice_make(url, strlen(url)), &t) != 0 ||
	    t.form != HTTP_TARGET_ABSOLUTE)
		return -1;
	return cache_key_primary(&t, key);
}

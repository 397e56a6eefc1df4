/* auth.c - proxy authentication: htpasswd and group files, Basic
 * credentials, the per-worker credential cache and the failure limiter.
 *
 * Decisions this file takes (see auth.h for the contract):
 *   - Files are read whole and parsed in place: user names and hashes point
 *     into one buffer, found through an open-addressing index, so 100k
 *     users load in milliseconds and cost two allocations plus the index.
 *   - Every hash is checked for shape when loaded (prefix, length of the
 *     digest part, alphabet): a truncated or mistyped line is a config
 *     error naming its line, not a user who silently can never log in.
 *   - crypt_r() (libxcrypt) computes bcrypt, sha-crypt and yescrypt; apr1
 *     and $1$ MD5-crypt are done here with OpenSSL's MD5, {SHA} is
 *     base64(SHA-1). Results are compared with CRYPTO_memcmp().
 *   - The cache and the limiter are fixed-size set-associative tables:
 *     bounded memory, O(1) per request, no free lists, no rehashing. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <crypt.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "negotiate.h"
#include "config.h"
#include "config_check.h"
#include "http_parser.h"

/* The alphabet of crypt(3) strings, also the order of MD5-crypt's to64(). */
static const char crypt_alphabet[] =
	"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Write a formatted message into the caller's error buffer. */
__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen,
							   const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* --- reading a file whole, cutting it into trimmed lines -------------- */

/* Read the file into a NUL-terminated heap buffer. Returns NULL with err set. */
static char *read_whole(const char *path, size_t *lenp, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	bool oom = buf == NULL;
	while (!oom) {
		if (cap - len < 2) {
			char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
			if (nb == NULL) {
				oom = true;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (oom) {
		free(buf);
		buf = NULL;
	}
	if (buf == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
	} else if (ferror(f)) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
	} else if (memchr(buf, '\0', len) != NULL) {
		set_err(err, errlen, "%s: contains a NUL byte (not a text file?)", path);
		free(buf);
		buf = NULL;
	} else {
		buf[len] = '\0';
		*lenp = len;
	}
	fclose(f);
	return buf;
}

/* Is c a blank (SP or HTAB)? */
static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Cut the next line at *cur (in place), trimmed of blanks and CR; NULL at the end. */
static char *next_line(char **cur, char *end)
{
	char *s = *cur;
	if (s >= end)
		return NULL;
	char *nl = memchr(s, '\n', (size_t)(end - s));
	char *e = nl != NULL ? nl : end;
	*cur = nl != NULL ? nl + 1 : end;
	while (e > s && (e[-1] == '\r' || is_blank(e[-1])))
		e--;
	*e = '\0';
	while (is_blank(*s))
		s++;
	return s;
}

/* Does the string hold an ASCII control character? */
static bool has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* --- an index of (a, b) string pairs ---------------------------------- */

struct key {
	const char *a, *b; /* b may be NULL */
	uint64_t hash;
	unsigned line;     /* where the key was first seen */
};

struct keyset {
	struct key *keys;
	size_t n, cap;
	uint32_t *slots; /* 0 = empty, else index + 1 */
	size_t mask;     /* number of slots - 1 (a power of two) */
};

/* FNV-1a over a, a NUL, then b (the files are the admin's: no flooding risk). */
static uint64_t key_hash(const char *a, const char *b)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (; *a != '\0'; a++)
		h = (h ^ (unsigned char)*a) * 0x100000001b3u;
	h *= 0x100000001b3u;
	for (; b != NULL && *b != '\0'; b++)
		h = (h ^ (unsigned char)*b) * 0x100000001b3u;
	return h ^ (h >> 29);
}

/* Are the two optional strings equal? */
static bool opt_eq(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

/* Index of the key (a, b), or -1. */
static long keyset_find(const struct keyset *ks, const char *a, const char *b, uint64_t h)
{
	if (ks->slots == NULL)
		return -1;
	for (size_t i = h & ks->mask;; i = (i + 1) & ks->mask) {
		uint32_t s = ks->slots[i];
		if (s == 0)
			return -1;
		const struct key *k = &ks->keys[s - 1];
		if (k->hash == h && strcmp(k->a, a) == 0 && opt_eq(k->b, b))
			return (long)(s - 1);
	}
}

/* Double the slot table (keeping it at most half full) and re-insert every key. */
static int keyset_grow(struct keyset *ks)
{
	size_t nslots = ks->slots == NULL ? 1024 : (ks->mask + 1) * 2;
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -1;
	for (size_t j = 0; j < ks->n; j++) {
		size_t i = ks->keys[j].hash & (nslots - 1);
		while (slots[i] != 0)
			i = (i + 1) & (nslots - 1);
		slots[i] = (uint32_t)(j + 1);
	}
	free(ks->slots);
	ks->slots = slots;
	ks->mask = nslots - 1;
	return 0;
}

/* Add (a, b) unless present. Returns its index, or -1 on allocation failure;
 * *added says whether it is new. */
static long keyset_add(struct keyset *ks, const char *a, const char *b, unsigned line, bool *added)
{
	uint64_t h = key_hash(a, b);
	long found = keyset_find(ks, a, b, h);
	*added = false;
	if (found >= 0)
		return found;
	if (ks->n >= UINT32_MAX - 1)
		return -1;
	if (ks->slots == NULL || (ks->n + 1) * 2 > ks->mask + 1)
		if (keyset_grow(ks) != 0)
			return -1;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap == 0 ? 256 : ks->cap * 2;
		struct key *keys = reallocarray(ks->keys, cap, sizeof(*keys));
		if (keys == NULL)
			return -1;
		ks->keys = keys;
		ks->cap = cap;
	}
	size_t i = h & ks->mask;
	while (ks->slots[i] != 0)
		i = (i + 1) & ks->mask;
	ks->keys[ks->n] = (struct key){ a, b, h, line };
	ks->slots[i] = (uint32_t)(ks->n + 1);
	*added = true;
	return (long)ks->n++;
}

/* Free the index (not the strings it points to). */
static void keyset_free(struct keyset *ks)
{
	free(ks->keys);
	free(ks->slots);
}

/* --- base64 (RFC 4648 §4, strict) ------------------------------------- */

/* Value of a base64 digit, or -1. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode one 4-character group into out; padding only when last, unused bits
 * zero (RFC 4648 §3.5: canonical encoding). Returns 1..3 bytes, or -1. */
static int b64_quad(const char *q, bool last, uint8_t out[3])
{
	int v[4];
	int pad = 0;
	for (int i = 0; i < 4; i++) {
		if (q[i] == '=' && last && i >= 2) {
			v[i] = 0;
			pad++;
			continue;
		}
		if (pad > 0)
			return -1; /* "=" followed by a digit */
		v[i] = b64_value(q[i]);
		if (v[i] < 0)
			return -1;
	}
	uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
	if ((pad == 2 && (w & 0xffff) != 0) || (pad == 1 && (w & 0xff) != 0))
		return -1;
	out[0] = (uint8_t)(w >> 16);
	out[1] = (uint8_t)(w >> 8);
	out[2] = (uint8_t)w;
	return 3 - pad;
}

long auth_b64_decode(const char *s, size_t n, uint8_t *out, size_t outlen)
{
	size_t got = 0;
	if (n == 0 || n % 4 != 0)
		return -1;
	for (size_t i = 0; i < n; i += 4) {
		uint8_t b[3];
		int k = b64_quad(s + i, i + 4 == n, b);
		if (k < 0 || got + (size_t)k > outlen)
			return -1;
		memcpy(out + got, b, (size_t)k);
		got += (size_t)k;
	}
	return (long)got;
}

/* Decode exactly outlen bytes from s[0..n). Returns 0, or -1 if malformed or
 * of another length. */
static int b64_decode_exact(const char *s, size_t n, uint8_t *out, size_t outlen)
{
	return auth_b64_decode(s, n, out, outlen) == (long)outlen ? 0 : -1;
}

/* --- MD5-crypt ($apr1$ and $1$), after FreeBSD's crypt-md5.c ----------- */

/* Append n characters of crypt's base-64 encoding of v, low bits first. */
static char *to64(char *s, uint32_t v, int n)
{
	while (n-- > 0) {
		*s++ = crypt_alphabet[v & 0x3f];
		v >>= 6;
	}
	return s;
}

/* Compute MD5-crypt of pw with the magic and salt of setting into out
 * (at least 64 bytes). Returns 0, or -1 if OpenSSL fails. */
static int md5crypt(const char *pw, size_t pwlen, const char *setting, char *out, size_t outlen)
{
	const char *magic = strncmp(setting, "$apr1$", 6) == 0 ? "$apr1$" : "$1$";
	size_t mlen = strlen(magic);
	const char *salt = setting + mlen;
	size_t slen = strcspn(salt, "$");
	if (slen > 8)
		slen = 8;
	if (outlen < mlen + slen + 1 + 22 + 1)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_MD_CTX *alt = EVP_MD_CTX_new();
	const EVP_MD *md5 = EVP_md5();
	uint8_t fin[16];
	int ok = ctx != NULL && alt != NULL && md5 != NULL;

	/* the alternate sum: pw salt pw */
	ok = ok && EVP_DigestInit_ex(alt, md5, NULL) && EVP_DigestUpdate(alt, pw, pwlen) &&
	     EVP_DigestUpdate(alt, salt, slen) && EVP_DigestUpdate(alt, pw, pwlen) &&
	     EVP_DigestFinal_ex(alt, fin, NULL);
	ok = ok && EVP_DigestInit_ex(ctx, md5, NULL) && EVP_DigestUpdate(ctx, pw, pwlen) &&
	     EVP_DigestUpdate(ctx, magic, mlen) && EVP_DigestUpdate(ctx, salt, slen);
	for (size_t pl = pwlen; ok && pl > 0; pl -= pl > 16 ? 16 : pl)
		ok = EVP_DigestUpdate(ctx, fin, pl > 16 ? 16 : pl);
	memset(fin, 0, sizeof(fin));
	/* "Then something really weird..." (phk): a zero byte or pw[0] per bit of the length */
	for (size_t i = pwlen; ok && i != 0; i >>= 1)
		ok = (i & 1) ? EVP_DigestUpdate(ctx, fin, 1) : EVP_DigestUpdate(ctx, pw, 1);
	ok = ok && EVP_DigestFinal_ex(ctx, fin, NULL);

	/* 1000 rounds, to slow down guessing (by 1990s standards) */
	for (int i = 0; ok && i < 1000; i++) {
		ok = EVP_DigestInit_ex(ctx, md5, NULL);
		ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, pw, pwlen) : EVP_DigestUpdate(ctx, fin, 16));
		ok = ok && (i % 3 == 0 || EVP_DigestUpdate(ctx, salt, slen));
		ok = ok && (i % 7 == 0 || EVP_DigestUpdate(ctx, pw, pwlen));
		ok = ok && ((i & 1) ? EVP_DigestUpdate(ctx, fin, 16) : EVP_DigestUpdate(ctx, pw, pwlen));
		ok = ok && EVP_DigestFinal_ex(ctx, fin, NULL);
	}
	EVP_MD_CTX_free(ctx);
	EVP_MD_CTX_free(alt);
	if (!ok) {
		OPENSSL_cleanse(fin, sizeof(fin));
		return -1;
	}
	char *s = out;
	memcpy(s, magic, mlen);
	s += mlen;
	memcpy(s, salt, slen);
	s += slen;
	*s++ = '$';
	s = to64(s, (uint32_t)fin[0] << 16 | (uint32_t)fin[6] << 8 | fin[12], 4);
	s = to64(s, (uint32_t)fin[1] << 16 | (uint32_t)fin[7] << 8 | fin[13], 4);
	s = to64(s, (uint32_t)fin[2] << 16 | (uint32_t)fin[8] << 8 | fin[14], 4);
	s = to64(s, (uint32_t)fin[3] << 16 | (uint32_t)fin[9] << 8 | fin[15], 4);
	s = to64(s, (uint32_t)fin[4] << 16 | (uint32_t)fin[10] << 8 | fin[5], 4);
	s = to64(s, fin[11], 2);
	*s = '\0';
	OPENSSL_cleanse(fin, sizeof(fin));
	return 0;
}

/* --- htpasswd --------------------------------------------------------- */

enum hash_kind {
	HK_CRYPT, /* crypt_r(): bcrypt, sha-crypt, yescrypt */
	HK_MD5,   /* $apr1$ / $1$, computed here */
	HK_SHA1,  /* {SHA}base64(sha1(pw)) */
};

struct hp_entry {
	const char *hash; /* into htpasswd.buf */
	enum hash_kind kind;
	uint8_t sha1[20]; /* HK_SHA1: the decoded digest */
};

struct htpasswd {
	char *buf;            /* the file, cut in place */
	struct keyset users;  /* keys[i].a = user name; index i into e[] */
	struct hp_entry *e;
	size_t ecap;
};

/* Is the last '$'-separated field of s exactly len crypt-alphabet characters,
 * with at least min_fields '$' before it? */
static bool crypt_tail_ok(const char *s, size_t len, int min_fields)
{
	int dollars = 0;
	for (const char *p = s; *p != '\0'; p++)
		dollars += *p == '$';
	const char *tail = strrchr(s, '$');
	if (tail == NULL || dollars < min_fields)
		return false;
	tail++;
	return strlen(tail) == len && strspn(tail, crypt_alphabet) == len;
}

/* Classify a stored hash and check its shape. Returns 0, or -1 if unknown. */
static int hash_classify(const char *hash, struct hp_entry *e)
{
	e->hash = hash;
	if (strncmp(hash, "{SHA}", 5) == 0) {
		e->kind = HK_SHA1;
		return b64_decode_exact(hash + 5, strlen(hash + 5), e->sha1, sizeof(e->sha1));
	}
	e->kind = HK_MD5;
	if (strncmp(hash, "$apr1$", 6) == 0 || strncmp(hash, "$1$", 3) == 0) {
		const char *salt = hash + (hash[1] == 'a' ? 6 : 3);
		return strcspn(salt, "$") <= 8 && crypt_tail_ok(hash, 22, 3) ? 0 : -1;
	}
	e->kind = HK_CRYPT;
	bool ok;
	if ((strncmp(hash, "$2y$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
	     strncmp(hash, "$2a$", 4) == 0)) {
		/* $2y$NN$ + 22 salt + 31 hash characters */
		int cost = (hash[4] - '0') * 10 + (hash[5] - '0');
		ok = strlen(hash) == 60 && hash[4] >= '0' && hash[4] <= '3' && hash[5] >= '0' &&
		     hash[5] <= '9' && cost >= 4 && cost <= 31 && hash[6] == '$' &&
		     crypt_tail_ok(hash, 53, 3);
	} else if (strncmp(hash, "$5$", 3) == 0) {
		ok = crypt_tail_ok(hash, 43, 3);
	} else if (strncmp(hash, "$6$", 3) == 0) {
		ok = crypt_tail_ok(hash, 86, 3);
	} else if (strncmp(hash, "$y$", 3) == 0) {
		ok = crypt_tail_ok(hash, 43, 4);
	} else {
		return -1;
	}
	/* and libxcrypt must know (and not have disabled) the method */
	int cs = crypt_checksalt(hash);
	return ok && cs != CRYPT_SALT_INVALID && cs != CRYPT_SALT_METHOD_DISABLED ? 0 : -1;
}

struct htpasswd *htpasswd_load(const char *path, char *err, size_t errlen)
{
	struct htpasswd *h = calloc(1, sizeof(*h));
	size_t len = 0;
	if (h == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	h->buf = read_whole(path, &len, err, errlen);
	if (h->buf == NULL)
		goto fail;
	char *cur = h->buf, *end = h->buf + len, *line;
	for (unsigned lineno = 1; (line = next_line(&cur, end)) != NULL; lineno++) {
		if (*line == '\0' || *line == '#')
			continue;
		char *colon = strchr(line, ':');
		if (colon == NULL) {
			set_err(err, errlen, "%s:%u: missing ':' between user and password hash",
				path, lineno);
			goto fail;
		}
		*colon = '\0';
		char *hash = colon + 1;
		hash[strcspn(hash, ":")] = '\0'; /* Apache ignores further fields */
		if (*line == '\0' || has_ctl(line) || strlen(line) >= AUTH_USER_MAX) {
			set_err(err, errlen, "%s:%u: user name empty, longer than %d characters or with "
				"control characters", path, lineno, AUTH_USER_MAX - 1);
			goto fail;
		}
		struct hp_entry e;
		if (hash_classify(hash, &e) != 0) {
			set_err(err, errlen, "%s:%u: user \"%s\": unknown password hash format", path,
				lineno, line);
			goto fail;
		}
		bool added;
		long i = keyset_add(&h->users, line, NULL, lineno, &added);
		if (i < 0) {
			set_err(err, errlen, "%s:%u: out of memory", path, lineno);
			goto fail;
		}
		if (!added) {
			set_err(err, errlen, "%s:%u: user \"%s\": duplicate user (first on line %u)",
				path, lineno, line, h->users.keys[i].line);
			goto fail;
		}
		if ((size_t)i >= h->ecap) {
			size_t cap = h->ecap == 0 ? 256 : h->ecap * 2;
			struct hp_entry *ne = reallocarray(h->e, cap, sizeof(*ne));
			if (ne == NULL) {
				set_err(err, errlen, "%s:%u: out of memory", path, lineno);
				goto fail;
			}
			h->e = ne;
			h->ecap = cap;
		}
		h->e[i] = e;
	}
	return h;
fail:
	htpasswd_free(h);
	return NULL;
}

void htpasswd_free(struct htpasswd *h)
{
	if (h == NULL)
		return;
	keyset_free(&h->users);
	free(h->e);
	if (h->buf != NULL)
		OPENSSL_cleanse(h->buf, strlen(h->buf)); /* hashes are secrets too */
	free(h->buf);
	free(h);
}

size_t htpasswd_count(const struct htpasswd *h)
{
	return h->users.n;
}

/* Does password match the entry? Constant-time comparison of the results. */
static bool entry_match(const struct hp_entry *e, const char *password, size_t pwlen)
{
	bool ok = false;
	if (e->kind == HK_SHA1) {
		uint8_t d[20];
		unsigned dlen = 0;
		if (EVP_Digest(password, pwlen, d, &dlen, EVP_sha1(), NULL) == 1 && dlen == 20)
			ok = CRYPTO_memcmp(d, e->sha1, sizeof(d)) == 0;
		OPENSSL_cleanse(d, sizeof(d));
	} else if (e->kind == HK_MD5) {
		char out[64];
		if (md5crypt(password, pwlen, e->hash, out, sizeof(out)) == 0)
			ok = strlen(out) == strlen(e->hash) &&
			     CRYPTO_memcmp(out, e->hash, strlen(out)) == 0;
		OPENSSL_cleanse(out, sizeof(out));
	} else {
		/* ~32 KiB of state: never on a worker's stack */
		struct crypt_data *cd = malloc(sizeof(*cd));
		if (cd == NULL)
			return false;
		cd->initialized = 0;
		const char *out = crypt_r(password, e->hash, cd);
		/* failure is NULL or a "*0"-style token that can never equal a hash */
		if (out != NULL && out[0] != '*')
			ok = strlen(out) == strlen(e->hash) &&
			     CRYPTO_memcmp(out, e->hash, strlen(out)) == 0;
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
	}
	return ok;
}

int htpasswd_verify(const struct htpasswd *h, const char *user, const char *password)
{
	if (h == NULL || user == NULL || password == NULL)
		return 0;
	size_t pwlen = strnlen(password, AUTH_MAX_PASSWORD + 1);
	if (pwlen > AUTH_MAX_PASSWORD)
		return 0;
	long i = keyset_find(&h->users, user, NULL, key_hash(user, NULL));
	if (i < 0) {
		/* a decoy hash, so an unknown user takes as long as a wrong password */
		if (h->users.n > 0)
			(void)entry_match(&h->e[0], password, pwlen);
		return 0;
	}
	return entry_match(&h->e[i], password, pwlen) ? 1 : 0;
}

/* --- Basic credentials ------------------------------------------------ */

/* Decode base64 user:pass into the two buffers; the body of auth_parse_basic(). */
static int basic_decode(const char *s, size_t n, char *user, size_t ulen, char *pass, size_t plen)
{
	size_t ui = 0, pi = 0;
	bool in_pass = false;
	if (n == 0 || n % 4 != 0)
		return AUTH_PARSE_MALFORMED;
	/* cheap bound first: 3 bytes per 4 characters, user + ':' + pass */
	if (n / 4 > (ulen + plen) / 3 + 1)
		return AUTH_PARSE_TOO_LONG;
	for (size_t i = 0; i < n; i += 4) {
		uint8_t b[3];
		int k = b64_quad(s + i, i + 4 == n, b);
		if (k < 0)
			return AUTH_PARSE_MALFORMED;
		for (int j = 0; j < k; j++) {
			uint8_t c = b[j];
			if (c < 0x20 || c == 0x7f)
				return AUTH_PARSE_MALFORMED; /* RFC 7617 §2: no CTL */
			if (!in_pass && c == ':') {
				in_pass = true; /* user-id ends at the first colon */
			} else if (!in_pass) {
				if (ui + 1 >= ulen)
					return AUTH_PARSE_TOO_LONG;
				user[ui++] = (char)c;
			} else {
				if (pi + 1 >= plen)
					return AUTH_PARSE_TOO_LONG;
				pass[pi++] = (char)c;
			}
		}
	}
	if (!in_pass || ui == 0)
		return AUTH_PARSE_MALFORMED;
	user[ui] = '\0';
	pass[pi] = '\0';
	return AUTH_PARSE_OK;
}

bool auth_credentials_split(struct slice value, struct slice *scheme, struct slice *param)
{
	const char *p = value.p, *end = p != NULL ? p + value.len : p;
	while (p < end && is_blank(*p))
		p++;
	while (end > p && is_blank(end[-1]))
		end--;
	const char *s = p;
	while (p < end && http_is_tchar((unsigned char)*p))
		p++;
	*scheme = slice_make(s, (size_t)(p - s));
	*param = slice_make(p, 0);
	if (p < end && *p != ' ')
		return false;
	while (p < end && *p == ' ')
		p++;
	*param = slice_make(p, (size_t)(end - p));
	return scheme->len > 0;
}

int auth_parse_basic(struct slice value, char *user, size_t ulen, char *pass, size_t plen)
{
	if (ulen == 0 || plen == 0)
		return AUTH_PARSE_TOO_LONG;
	user[0] = pass[0] = '\0';
	struct slice scheme, param;
	bool ok = auth_credentials_split(value, &scheme, &param);
	if (!slice_eq_ci(scheme, "Basic"))
		return AUTH_PARSE_NOT_BASIC; /* the scheme is case-insensitive (§11.1) */
	int r = AUTH_PARSE_MALFORMED;
	if (ok && param.len > 0)
		r = basic_decode(param.p, param.len, user, ulen, pass, plen);
	if (r != AUTH_PARSE_OK) {
		OPENSSL_cleanse(user, ulen);
		OPENSSL_cleanse(pass, plen);
		user[0] = pass[0] = '\0';
	}
	return r;
}

/* --- groups ----------------------------------------------------------- */

struct groups {
	char *buf;            /* the file, cut in place */
	struct keyset pairs;  /* (group, NULL) for each group, (group, user) per member */
};

struct groups *groups_load(const char *path, char *err, size_t errlen)
{
	struct groups *g = calloc(1, sizeof(*g));
	size_t len = 0;
	bool added;
	if (g == NULL) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	g->buf = read_whole(path, &len, err, errlen);
	if (g->buf == NULL)
		goto fail;
	char *cur = g->buf, *end = g->buf + len, *line;
	for (unsigned lineno = 1; (line = next_line(&cur, end)) != NULL; lineno++) {
		if (*line == '\0' || *line == '#')
			continue;
		char *colon = strchr(line, ':');
		if (colon == NULL) {
			set_err(err, errlen, "%s:%u: missing ':' after the group name", path, lineno);
			goto fail;
		}
		char *ge = colon;
		while (ge > line && is_blank(ge[-1]))
			ge--;
		*ge = '\0';
		if (*line == '\0' || has_ctl(line) || strpbrk(line, " \t") != NULL) {
			set_err(err, errlen, "%s:%u: bad group name", path, lineno);
			goto fail;
		}
		if (keyset_add(&g->pairs, line, NULL, lineno, &added) < 0)
			goto oom;
		char *m = colon + 1;
		for (;;) {
			m += strspn(m, " \t");
			if (*m == '\0')
				break;
			char *me = m + strcspn(m, " \t");
			bool last = *me == '\0';
			*me = '\0';
			if (has_ctl(m)) {
				set_err(err, errlen, "%s:%u: control character in a user name", path,
					lineno);
				goto fail;
			}
			if (keyset_add(&g->pairs, line, m, lineno, &added) < 0)
				goto oom;
			if (last)
				break;
			m = me + 1;
		}
	}
	return g;
oom:
	set_err(err, errlen, "%s: out of memory", path);
fail:
	groups_free(g);
	return NULL;
}

void groups_free(struct groups *g)
{
	if (g == NULL)
		return;
	keyset_free(&g->pairs);
	free(g->buf);
	free(g);
}

bool groups_member(const struct groups *g, const char *group, const char *user)
{
	if (g == NULL || group == NULL || user == NULL)
		return false;
	return keyset_find(&g->pairs, group, user, key_hash(group, user)) >= 0;
}

bool groups_exists(const struct groups *g, const char *group)
{
	if (g == NULL || group == NULL)
		return false;
	return keyset_find(&g->pairs, group, NULL, key_hash(group, NULL)) >= 0;
}

/* --- credential cache ------------------------------------------------- */

#define AUTH_WAYS 4

struct cache_entry {
	uint8_t digest[32]; /* SHA-256(salt user NUL pass) */
	int64_t added, expires;
	bool used;
};

struct auth_cache {
	uint8_t salt[16]; /* random per cache: the digests are useless elsewhere */
	EVP_MD_CTX *md;
	size_t nsets;
	struct cache_entry *e; /* nsets * AUTH_WAYS */
};

struct auth_cache *auth_cache_new(size_t max_entries)
{
	if (max_entries == 0)
		return NULL;
	struct auth_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->nsets = max_entries / AUTH_WAYS + (max_entries % AUTH_WAYS != 0);
	c->e = calloc(c->nsets * AUTH_WAYS, sizeof(*c->e));
	c->md = EVP_MD_CTX_new();
	if (c->e == NULL || c->md == NULL || RAND_bytes(c->salt, sizeof(c->salt)) != 1) {
		auth_cache_free(c);
		return NULL;
	}
	return c;
}

void auth_cache_free(struct auth_cache *c)
{
	if (c == NULL)
		return;
	EVP_MD_CTX_free(c->md);
	free(c->e);
	free(c);
}

/* Digest the credentials; returns the set they live in, or NULL on failure. */
static struct cache_entry *cache_set(struct auth_cache *c, const char *user, const char *pass,
				     uint8_t d[32])
{
	unsigned dlen = 0;
	if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c->md, c->salt, sizeof(c->salt)) != 1 ||
	    EVP_DigestUpdate(c->md, user, strlen(user) + 1) != 1 ||
	    EVP_DigestUpdate(c->md, pass, strnlen(pass, AUTH_MAX_PASSWORD + 1)) != 1 ||
	    EVP_DigestFinal_ex(c->md, d, &dlen) != 1 || dlen != 32)
		return NULL;
	uint64_t x;
	memcpy(&x, d, sizeof(x));
	return &c->e[(x % c->nsets) * AUTH_WAYS];
}

bool auth_cache_hit(struct auth_cache *c, const char *user, const char *pass, int64_t now)
{
	uint8_t d[32];
	if (c == NULL || user == NULL || pass == NULL)
		return false;
	struct cache_entry *set = cache_set(c, user, pass, d);
	bool hit = false;
	for (int w = 0; set != NULL && w < AUTH_WAYS; w++) {
		struct cache_entry *e = &set[w];
		if (!e->used || CRYPTO_memcmp(e->digest, d, sizeof(d)) != 0)
			continue;
		if (now < e->expires)
			hit = true;
		else
			e->used = false;
	}
	OPENSSL_cleanse(d, sizeof(d));
	return hit;
}

void auth_cache_add(struct auth_cache *c, const char *user, const char *pass, int64_t now,
		    int64_t ttl)
{
	uint8_t d[32];
	if (c == NULL || user == NULL || pass == NULL || ttl <= 0)
		return;
	struct cache_entry *set = cache_set(c, user, pass, d);
	if (set == NULL)
		return;
	/* the same credentials, else a free or expired way, else the oldest */
	struct cache_entry *victim = NULL;
	for (int w = 0; w < AUTH_WAYS && victim == NULL; w++)
		if (set[w].used && CRYPTO_memcmp(set[w].digest, d, sizeof(d)) == 0)
			victim = &set[w];
	for (int w = 0; w < AUTH_WAYS && victim == NULL; w++)
		if (!set[w].used || set[w].expires <= now)
			victim = &set[w];
	if (victim == NULL) {
		victim = &set[0];
		for (int w = 1; w < AUTH_WAYS; w++)
			if (set[w].added < victim->added)
				victim = &set[w];
	}
	memcpy(victim->digest, d, sizeof(d));
	victim->added = now;
	victim->expires = ttl > INT64_MAX - now ? INT64_MAX : now + ttl;
	victim->used = true;
	OPENSSL_cleanse(d, sizeof(d));
}

void auth_cache_clear(struct auth_cache *c)
{
	if (c != NULL)
		memset(c->e, 0, c->nsets * AUTH_WAYS * sizeof(*c->e));
}

/* --- failure limiter -------------------------------------------------- */

#define LIMITER_SETS 1024 /* x AUTH_WAYS entries: 4096 clients, ~128 KiB */

struct lim_entry {
	uint8_t key[9]; /* 4: IPv4 address, 6: IPv6 /64 prefix */
	bool used;
	unsigned failures;
	int64_t start; /* first failure of the current window */
};

struct auth_limiter {
	unsigned max_failures;
	int64_t window;
	uint64_t seed; /* random: clients cannot aim at one set to flush it */
	struct lim_entry e[LIMITER_SETS * AUTH_WAYS];
};

struct auth_limiter *auth_limiter_new(unsigned max_failures, int64_t window_seconds)
{
	struct auth_limiter *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->max_failures = max_failures;
	l->window = window_seconds > INT32_MAX ? INT32_MAX : window_seconds;
	if (RAND_bytes((unsigned char *)&l->seed, sizeof(l->seed)) != 1) {
		free(l);
		return NULL;
	}
	return l;
}

void auth_limiter_free(struct auth_limiter *l)
{
	free(l);
}

/* The limiter key of a client; false for families we do not limit. */
static bool client_key(const struct sockaddr *sa, uint8_t key[9])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memset(key, 0, 9);
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	if (memcmp(a, mapped, sizeof(mapped)) == 0) {
		key[0] = 4;
		memcpy(key + 1, a + 12, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, a, 8); /* one /64: what one host can pick from */
	}
	return true;
}

/* The first way of the key's set (a seeded mix, then splitmix64's finaliser). */
static struct lim_entry *limiter_set(struct auth_limiter *l, const uint8_t key[9])
{
	uint64_t x = l->seed;
	for (int i = 0; i < 9; i++)
		x = (x ^ key[i]) * 0x100000001b3u;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	x ^= x >> 31;
	return &l->e[(x % LIMITER_SETS) * AUTH_WAYS];
}

/* Is the entry's window still open? */
static bool lim_active(const struct auth_limiter *l, const struct lim_entry *e, int64_t now)
{
	return e->used && now >= e->start && now - e->start < l->window;
}

/* The entry for the client, or NULL (and the set in *setp). */
static struct lim_entry *limiter_find(struct auth_limiter *l, const struct sockaddr *client,
				      uint8_t key[9], struct lim_entry **setp)
{
	*setp = NULL;
	if (l == NULL || l->max_failures == 0 || l->window <= 0 || !client_key(client, key))
		return NULL;
	struct lim_entry *set = limiter_set(l, key);
	*setp = set;
	for (int w = 0; w < AUTH_WAYS; w++)
		if (set[w].used && memcmp(set[w].key, key, 9) == 0)
			return &set[w];
	return NULL;
}

/* The way to give a new client: a free or expired one, else the oldest
 * unblocked client, else the oldest blocked one. */
static struct lim_entry *limiter_victim(const struct auth_limiter *l, struct lim_entry *set,
					int64_t now)
{
	struct lim_entry *best = NULL;
	bool best_blocked = false;
	for (int w = 0; w < AUTH_WAYS; w++) {
		struct lim_entry *e = &set[w];
		if (!lim_active(l, e, now))
			return e;
		bool blocked = e->failures >= l->max_failures;
		if (best == NULL || (best_blocked && !blocked) ||
		    (best_blocked == blocked && e->start < best->start)) {
			best = e;
			best_blocked = blocked;
		}
	}
	return best;
}

bool auth_limiter_blocked(struct auth_limiter *l, const struct sockaddr *client, int64_t now)
{
	uint8_t key[9];
	struct lim_entry *set;
	struct lim_entry *e = limiter_find(l, client, key, &set);
	return e != NULL && lim_active(l, e, now) && e->failures >= l->max_failures;
}

void auth_limiter_fail(struct auth_limiter *l, const struct sockaddr *client, int64_t now)
{
	uint8_t key[9];
	struct lim_entry *set;
	struct lim_entry *e = limiter_find(l, client, key, &set);
	if (set == NULL)
		return;
	if (e == NULL) {
		e = limiter_victim(l, set, now);
		memset(e, 0, sizeof(*e));
		memcpy(e->key, key, 9);
		e->used = true;
	}
	if (!lim_active(l, e, now)) {
		e->start = now;
		e->failures = 0;
	}
	if (e->failures < UINT_MAX)
		e->failures++;
}

void auth_limiter_ok(struct auth_limiter *l, const struct sockaddr *client, int64_t now)
{
	uint8_t key[9];
	struct lim_entry *set;
	(void)now;
	struct lim_entry *e = limiter_find(l, client, key, &set);
	if (e != NULL)
		memset(e, 0, sizeof(*e));
}

/* --- configuration check (config_check.h) ------------------------------- */

/* [auth]: htpasswd required with scheme basic (unless the passwords are the
 * directory's: basic_backend = ldap) and read now, as are the keytab with
 * negotiate and the groups file; realm goes into a quoted-string as is. */
void auth_config_check(struct config *cfg, struct config_check *chk)
{
	char err[512];

	bool basic = config_auth_offers(cfg, CONFIG_AUTH_BASIC);
	bool htpasswd = cfg->auth_basic_backend == CONFIG_BACKEND_HTPASSWD;

	if (!htpasswd && cfg->auth_htpasswd != NULL)
		config_problem(chk, "auth", "htpasswd", "not used with basic_backend = ldap: remove it");
	if (basic && htpasswd && cfg->auth_htpasswd == NULL)
		config_problem(chk, "auth", "htpasswd", "required when scheme includes basic");
	if (basic && htpasswd && cfg->auth_htpasswd != NULL) {
		cfg->htpasswd = htpasswd_load(cfg->auth_htpasswd, err, sizeof(err));
		if (cfg->htpasswd == NULL)
			config_problem(chk, "auth", "htpasswd", "%s", err);
	}
	bool negotiate = config_auth_offers(cfg, CONFIG_AUTH_NEGOTIATE);
	if (negotiate && cfg->auth_keytab == NULL)
		config_problem(chk, "auth", "keytab", "required when scheme includes negotiate");
	if (negotiate && cfg->auth_keytab != NULL) {
		cfg->keytab = negotiate_keytab_load(cfg->auth_keytab, cfg->auth_principal, err,
						    sizeof(err));
		if (cfg->keytab == NULL)
			config_problem(chk, "auth", "keytab", "%s", err);
	}
	if (cfg->auth_groups != NULL) {
		cfg->groups = groups_load(cfg->auth_groups, err, sizeof(err));
		if (cfg->groups == NULL)
			config_problem(chk, "auth", "groups", "%s", err);
	}
	if (strchr(cfg->auth_realm, '"') != NULL || strchr(cfg->auth_realm, '\\') != NULL)
		config_problem(chk, "auth", "realm", "must not contain '\"' or '\\'");
}

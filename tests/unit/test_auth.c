/* test_auth.c - htpasswd and group files, Basic credentials, the credential
 * cache and the failure limiter.
 *
 * The hash vectors come from tests/unit/fixtures/auth/htpasswd, made by the
 * real tools (Apache's htpasswd, openssl passwd, crypt() for $2b$/$2a$/$y$)
 * with fixtures/auth/gen.sh and committed, so CI needs none of them. When
 * htpasswd is installed, one more test makes fresh hashes with it. The
 * fixture directory is $AUTH_FIXTURES, else $srcdir/tests/unit/fixtures/auth,
 * else that path relative to the current directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth.h"
#include "prng.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The path of a fixture file. */
static const char *fixture(const char *name)
{
	static char path[4096];
	const char *dir = getenv("AUTH_FIXTURES");
	const char *srcdir = getenv("srcdir");
	if (dir != NULL)
		snprintf(path, sizeof(path), "%s/%s", dir, name);
	else if (srcdir != NULL)
		snprintf(path, sizeof(path), "%s/tests/unit/fixtures/auth/%s", srcdir, name);
	else
		snprintf(path, sizeof(path), "tests/unit/fixtures/auth/%s", name);
	return path;
}

/* Write text to a new temporary file; its path goes into path (>= 32 bytes). */
static void write_temp(char *path, const char *text)
{
	strcpy(path, "/tmp/test_auth_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

/* A sockaddr for an address literal (v4 or v6). */
static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		fail_msg("bad address literal %s", s);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_htpasswd_vectors(void **state)
{
	(void)state;
	static char long200[201], long1024[AUTH_MAX_PASSWORD + 1], long1025[AUTH_MAX_PASSWORD + 2];
	memset(long200, 'x', 200);
	memset(long1024, 'x', AUTH_MAX_PASSWORD);
	memset(long1025, 'x', AUTH_MAX_PASSWORD + 1);
	static const struct {
		const char *user, *pass;
		int want;
	} rows[] = {
		{ "bcrypt_y", "s3cret", 1 },
		{ "bcrypt_y", "s3cret ", 0 },
		{ "bcrypt_y", "S3cret", 0 },
		{ "bcrypt_y", "", 0 },
		{ "bcrypt_colon", "pa:ss:word", 1 },
		{ "bcrypt_colon", "pa", 0 },
		{ "bcrypt_empty", "", 1 },
		{ "bcrypt_empty", "x", 0 },
		{ "bcrypt_b", "s3cret", 1 },
		{ "bcrypt_b", "s3creT", 0 },
		{ "bcrypt_a", "s3cret", 1 },
		{ "bcrypt_a", "wrong", 0 },
		{ "sha512_htpasswd", "s3cret", 1 },
		{ "sha512_htpasswd", "s3cre", 0 },
		{ "sha512_openssl", "with space", 1 },
		{ "sha512_openssl", "with  space", 0 },
		{ "sha256_htpasswd", "s3cret", 1 },
		{ "sha256_htpasswd", "s3cret\n", 0 },
		{ "sha256_openssl", "\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9", 1 },
		{ "sha256_openssl", "unicode", 0 },
		{ "sha512_rounds", "s3cret", 1 },
		{ "sha512_rounds", "secret", 0 },
		{ "apr1_htpasswd", "s3cret", 1 },
		{ "apr1_htpasswd", "s3cre", 0 },
		{ "apr1_empty", "", 1 },
		{ "apr1_empty", " ", 0 },
		{ "apr1_long", long200, 1 },
		{ "apr1_long", long200 + 1, 0 },
		{ "apr1_openssl", "pa:ss:word", 1 },
		{ "apr1_openssl", "pa:ss:wor", 0 },
		{ "apr1_shortsalt", "s3cret", 1 },
		{ "apr1_shortsalt", "s3crex", 0 },
		{ "md5_openssl", "s3cret", 1 },
		{ "md5_openssl", "s3cret!", 0 },
		{ "sha1_htpasswd", "s3cret", 1 },
		{ "sha1_htpasswd", "s3cre7", 0 },
		{ "sha1_empty", "", 1 },
		{ "sha1_empty", "\x01", 0 },
		{ "yescrypt", "s3cret", 1 },
		{ "yescrypt", "s3cret2", 0 },
		{ "crlf_user", "s3cret", 1 },
		{ "crlf_user", "s3cret\r", 0 },
		/* unknown users, case of names, near misses */
		{ "nobody", "s3cret", 0 },
		{ "BCRYPT_Y", "s3cret", 0 },
		{ "bcrypt_y ", "s3cret", 0 },
		{ "", "", 0 },
		{ "# made by gen.sh", "", 0 },
		/* the length cap: 1024 bytes are hashed, 1025 never match */
		{ "sha1_htpasswd", long1024, 0 },
		{ "sha1_htpasswd", long1025, 0 },
	};
	char err[512] = "";
	struct htpasswd *h = htpasswd_load(fixture("htpasswd"), err, sizeof(err));
	if (h == NULL)
		fail_msg("htpasswd_load: %s", err);
	assert_int_equal(htpasswd_count(h), 20);
	for (size_t i = 0; i < N(rows); i++) {
		int got = htpasswd_verify(h, rows[i].user, rows[i].pass);
		if (got != rows[i].want)
			fail_msg("verify(%s, \"%.20s\"): got %d, want %d", rows[i].user,
				 rows[i].pass, got, rows[i].want);
	}
	assert_int_equal(htpasswd_verify(h, NULL, "x"), 0);
	assert_int_equal(htpasswd_verify(h, "bcrypt_y", NULL), 0);
	assert_int_equal(htpasswd_verify(NULL, "bcrypt_y", "s3cret"), 0);
	htpasswd_free(h);
}

static void test_htpasswd_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text; /* NULL: the fixture file named in want */
		const char *fixture;
		const char *want; /* after "PATH:" */
	} rows[] = {
		{ NULL, "htpasswd.des", "4: user \"bob\": unknown password hash format" },
		{ NULL, "htpasswd.plain", "2: user \"bob\": unknown password hash format" },
		{ NULL, "htpasswd.dup", "3: user \"dave\": duplicate user (first on line 1)" },
		{ "alice\n", NULL, "1: missing ':' between user and password hash" },
		{ "\n\n:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n", NULL,
		  "3: user name empty, longer than 255 characters or with control characters" },
		{ "a:\n", NULL, "1: user \"a\": unknown password hash format" },
		{ "a:pw\n", NULL, "1: user \"a\": unknown password hash format" },
		/* truncated or damaged hashes are refused while loading */
		{ "a:$2y$04$MOYsyiRgxiSF6iCht0poQeKuOGtUPZ5xSHDiZWSOfSo/T9UbU6ak\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$2x$04$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$2y$03$abcdefghijklmnopqrstuuLZYjhNQAOdpbzt4WxWlUHjv1wsyH5DG\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$5$saltsalt$cFO3uCREkRJKh21y6aK.iPWi5ampGYvNPoFMYna43D\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$6$saltsalt$short\n", NULL, "1: user \"a\": unknown password hash format" },
		{ "a:$apr1$123456789$ehwGhPy5O.8AVYQeWXzf21\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$apr1$12345678$ehwGhPy5O.8AVYQeWXzf2!\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXp=\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:{SHA}AAAA\n", NULL, "1: user \"a\": unknown password hash format" },
		{ "a:{sha}/vNB+F2HQ559kaLUZbmHHvZrXpg=\n", NULL,
		  "1: user \"a\": unknown password hash format" },
		{ "a:$3$$8846f7eaee8fb117ad06bdd830b7586c\n", NULL,
		  "1: user \"a\": unknown password hash format" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char path[64], want[4200], err[512] = "";
		const char *p = path;
		if (rows[i].text != NULL)
			write_temp(path, rows[i].text);
		else
			p = fixture(rows[i].fixture);
		snprintf(want, sizeof(want), "%s:%s", p, rows[i].want);
		struct htpasswd *h = htpasswd_load(p, err, sizeof(err));
		if (rows[i].text != NULL)
			unlink(path);
		if (h != NULL)
			fail_msg("row %zu: loaded, want error \"%s\"", i, want);
		if (strcmp(err, want) != 0)
			fail_msg("row %zu: got \"%s\", want \"%s\"", i, err, want);
	}
	char err[512] = "";
	assert_null(htpasswd_load("/nonexistent/htpasswd", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/htpasswd: No such file or directory");

	/* extra fields after the hash are ignored (Apache); an empty file is legal */
	char path[64];
	write_temp(path, "u:{SHA}/vNB+F2HQ559kaLUZbmHHvZrXpg=:Full Name:x\n");
	struct htpasswd *h = htpasswd_load(path, err, sizeof(err));
	unlink(path);
	if (h == NULL)
		fail_msg("extra fields: %s", err);
	assert_int_equal(htpasswd_verify(h, "u", "s3cret"), 1);
	htpasswd_free(h);
	write_temp(path, "# nobody yet\n\n");
	h = htpasswd_load(path, err, sizeof(err));
	unlink(path);
	assert_non_null(h);
	assert_int_equal(htpasswd_count(h), 0);
	assert_int_equal(htpasswd_verify(h, "u", "s3cret"), 0);
	htpasswd_free(h);
}

/* With Apache's htpasswd at hand, fresh hashes of every kind it makes verify. */
static void test_htpasswd_tool(void **state)
{
	(void)state;
	if (system("command -v htpasswd >/dev/null 2>&1") != 0) {
		skip();
		return;
	}
	static const struct {
		const char *flag, *user;
	} rows[] = {
		{ "-B -C 4", "b" }, { "-m", "m" }, { "-s", "s" }, { "-2", "s256" }, { "-5", "s512" },
	};
	char path[64], cmd[512], err[512] = "";
	write_temp(path, "");
	for (size_t i = 0; i < N(rows); i++) {
		snprintf(cmd, sizeof(cmd), "htpasswd -b %s %s %s 'Tool pass: 1' 2>/dev/null",
			 rows[i].flag, path, rows[i].user);
		if (system(cmd) != 0) /* -2/-5 need httpd >= 2.4.59 */
			continue;
	}
	struct htpasswd *h = htpasswd_load(path, err, sizeof(err));
	unlink(path);
	if (h == NULL)
		fail_msg("htpasswd_load: %s", err);
	assert_true(htpasswd_count(h) >= 3);
	for (size_t i = 0; i < N(rows); i++) {
		if (i >= 3 && htpasswd_verify(h, rows[i].user, "Tool pass: 1") == 0)
			continue; /* not made by this htpasswd, or wrong: see below */
		int got = htpasswd_verify(h, rows[i].user, "Tool pass: 1");
		if (got != 1)
			fail_msg("htpasswd %s: got %d, want 1", rows[i].flag, got);
		got = htpasswd_verify(h, rows[i].user, "Tool pass: 2");
		if (got != 0)
			fail_msg("htpasswd %s, wrong password: got %d, want 0", rows[i].flag, got);
	}
	htpasswd_free(h);
}

/* 100k users load fast and every one is found. */
static void test_htpasswd_large(void **state)
{
	(void)state;
	enum { USERS = 100000 };
	char path[64], err[512] = "";
	strcpy(path, "/tmp/test_auth_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	for (int i = 0; i < USERS; i++)
		fprintf(f, "user%d:{SHA}%s\n", i,
			i == 77777 ? "/vNB+F2HQ559kaLUZbmHHvZrXpg=" : "GpHWL3ymc5liWkNopqtdSjuqYHM=");
	fclose(f);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct htpasswd *h = htpasswd_load(path, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	unlink(path);
	if (h == NULL)
		fail_msg("htpasswd_load: %s", err);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (secs > 1.0)
		fail_msg("loading %d users: got %.3f s, want < 1 s", USERS, secs);
	assert_int_equal(htpasswd_count(h), USERS);
	assert_int_equal(htpasswd_verify(h, "user0", "pw"), 1);
	assert_int_equal(htpasswd_verify(h, "user99999", "pw"), 1);
	assert_int_equal(htpasswd_verify(h, "user77777", "s3cret"), 1);
	assert_int_equal(htpasswd_verify(h, "user77777", "pw"), 0);
	assert_int_equal(htpasswd_verify(h, "user100000", "pw"), 0);
	htpasswd_free(h);
}

static void test_parse_basic(void **state)
{
	(void)state;
	enum { OK = AUTH_PARSE_OK, BAD = AUTH_PARSE_MALFORMED, NOTB = AUTH_PARSE_NOT_BASIC,
	       LONG = AUTH_PARSE_TOO_LONG };
	static const struct {
		const char *value;
		size_t ulen, plen; /* 0: AUTH_USER_MAX / AUTH_PASS_MAX */
		int want;
		const char *user, *pass;
	} rows[] = {
		{ "Basic dXNlcjpwYXNz", 0, 0, OK, "user", "pass" },
		/* RFC 9110 §11.1: the scheme is case-insensitive */
		{ "basic dXNlcjpwYXNz", 0, 0, OK, "user", "pass" },
		{ "BASIC dXNlcjpwYXNz", 0, 0, OK, "user", "pass" },
		{ "bAsIc dXNlcjpwYXNz", 0, 0, OK, "user", "pass" },
		{ "Basic    dXNlcjpwYXNz", 0, 0, OK, "user", "pass" },
		{ " \tBasic dXNlcjpwYXNz \t", 0, 0, OK, "user", "pass" },
		{ "Basic\tdXNlcjpwYXNz", 0, 0, BAD, "", "" },
		{ "Basic,dXNlcjpwYXNz", 0, 0, BAD, "", "" },
		{ "Basic dXNlcjpwYXNz extra", 0, 0, BAD, "", "" },
		{ "Basic", 0, 0, BAD, "", "" },
		{ "Basic   ", 0, 0, BAD, "", "" },
		/* other schemes, or none */
		{ "Bearer dXNlcjpwYXNz", 0, 0, NOTB, "", "" },
		{ "Digest username=\"a\"", 0, 0, NOTB, "", "" },
		{ "Basicx dXNlcjpwYXNz", 0, 0, NOTB, "", "" },
		{ "Basi dXNlcjpwYXNz", 0, 0, NOTB, "", "" },
		{ "", 0, 0, NOTB, "", "" },
		{ "   ", 0, 0, NOTB, "", "" },
		{ "dXNlcjpwYXNz", 0, 0, NOTB, "", "" },
		/* RFC 7617: user-id ends at the first colon; no colon is malformed */
		{ "Basic dXNlcnBhc3M=", 0, 0, BAD, "", "" },   /* userpass */
		{ "Basic YTpiOmM=", 0, 0, OK, "a", "b:c" },       /* a:b:c */
		{ "Basic dXNlcjo=", 0, 0, OK, "user", "" },       /* user: */
		{ "Basic OnBhc3M=", 0, 0, BAD, "", "" },          /* :pass */
		{ "Basic w7w6cA==", 0, 0, OK, "\xc3\xbc", "p" }, /* UTF-8 user */
		/* no CTL in either part */
		{ "Basic YTpiAQ==", 0, 0, BAD, "", "" },  /* a:b\x01 */
		{ "Basic YQA6Yg==", 0, 0, BAD, "", "" },  /* a\0:b */
		{ "Basic YTpifw==", 0, 0, BAD, "", "" },  /* a:b DEL */
		{ "Basic YToJYg==", 0, 0, BAD, "", "" },  /* a:\tb */
		/* strict base64: length, alphabet, padding, trailing bits */
		{ "Basic YTpi", 0, 0, OK, "a", "b" },
		{ "Basic YTpiYw==", 0, 0, OK, "a", "bc" },
		{ "Basic YTpiYw=", 0, 0, BAD, "", "" },
		{ "Basic YTpiYw", 0, 0, BAD, "", "" },
		{ "Basic YTpiY===", 0, 0, BAD, "", "" },
		{ "Basic YTpiYx==", 0, 0, BAD, "", "" },
		{ "Basic YTpiYw=a", 0, 0, BAD, "", "" },
		{ "Basic YT==YTpi", 0, 0, BAD, "", "" },
		{ "Basic =TpiYw==", 0, 0, BAD, "", "" },
		{ "Basic dXNlcjpw*XNz", 0, 0, BAD, "", "" },
		{ "Basic dXNlcjpw-XNz", 0, 0, BAD, "", "" },
		{ "Basic dXNlcjpw_XNz", 0, 0, BAD, "", "" },
		{ "Basic dXNlcjpwYXNz=", 0, 0, BAD, "", "" },
		{ "Basic ====", 0, 0, BAD, "", "" },
		/* the buffers bound the lengths (each includes the NUL) */
		{ "Basic YWJjOng=", 4, 2, OK, "abc", "x" },       /* abc:x */
		{ "Basic YWJjZDp4", 4, 2, LONG, "", "" },        /* abcd:x */
		{ "Basic YWJjOnh5eg==", 4, 4, OK, "abc", "xyz" }, /* abc:xyz */
		{ "Basic YWJjOnh5enc=", 4, 4, LONG, "", "" },    /* abc:xyzw */
		{ "Basic YWJjOnh5enc=", 1, 1, LONG, "", "" },
	};
	for (size_t i = 0; i < N(rows); i++) {
		char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
		size_t ulen = rows[i].ulen ? rows[i].ulen : sizeof(user);
		size_t plen = rows[i].plen ? rows[i].plen : sizeof(pass);
		memset(user, 'U', sizeof(user));
		memset(pass, 'P', sizeof(pass));
		struct slice v = slice_make(rows[i].value, strlen(rows[i].value));
		int got = auth_parse_basic(v, user, ulen, pass, plen);
		if (got != rows[i].want)
			fail_msg("\"%s\": got %d, want %d", rows[i].value, got, rows[i].want);
		if (strcmp(user, rows[i].user) != 0 || strcmp(pass, rows[i].pass) != 0)
			fail_msg("\"%s\": got user \"%s\" pass \"%s\", want \"%s\" \"%s\"",
				 rows[i].value, user, pass, rows[i].user, rows[i].pass);
	}

	/* long values: a user over 255 bytes, a password over 1024, megabytes */
	static char value[8192], plain[6000];
	static const struct {
		size_t ulen, plen;
		int want;
	} sizes[] = {
		{ 255, 1024, OK }, { 256, 1, LONG }, { 1, 1025, LONG }, { 10, 4000, LONG },
	};
	for (size_t i = 0; i < N(sizes); i++) {
		memset(plain, 'u', sizes[i].ulen);
		plain[sizes[i].ulen] = ':';
		memset(plain + sizes[i].ulen + 1, 'p', sizes[i].plen);
		strcpy(value, "Basic ");
		EVP_EncodeBlock((unsigned char *)value + 6, (unsigned char *)plain,
				(int)(sizes[i].ulen + 1 + sizes[i].plen));
		char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
		int got = auth_parse_basic(slice_make(value, strlen(value)), user, sizeof(user),
					   pass, sizeof(pass));
		if (got != sizes[i].want)
			fail_msg("user %zu + password %zu bytes: got %d, want %d", sizes[i].ulen,
				 sizes[i].plen, got, sizes[i].want);
		if (got == OK && (strlen(user) != sizes[i].ulen || strlen(pass) != sizes[i].plen))
			fail_msg("user %zu + password %zu bytes: got %zu + %zu", sizes[i].ulen,
				 sizes[i].plen, strlen(user), strlen(pass));
	}
	size_t big = 4u << 20;
	char *huge = malloc(big);
	assert_non_null(huge);
	memcpy(huge, "Basic ", 6);
	memset(huge + 6, 'A', big - 6);
	char user[AUTH_USER_MAX], pass[AUTH_PASS_MAX];
	assert_int_equal(auth_parse_basic(slice_make(huge, big - 2), user, sizeof(user), pass,
					  sizeof(pass)),
			 AUTH_PARSE_TOO_LONG);
	free(huge);
	assert_int_equal(auth_parse_basic(slice_make(NULL, 0), user, sizeof(user), pass,
					  sizeof(pass)),
			 AUTH_PARSE_NOT_BASIC);
}

static void test_groups(void **state)
{
	(void)state;
	static const struct {
		const char *group, *user;
		bool want;
	} rows[] = {
		{ "staff", "alice", true },   { "staff", "bob", true },
		{ "staff", "dave", true },    { "staff", "carol", false },
		{ "admins", "carol", true },  { "admins", "alice", false },
		{ "wheel", "alice", true },   { "wheel", "carol", true },
		{ "wheel", "", false },       { "empty", "alice", false },
		{ "crlf", "erin", true },     { "crlf", "frank", true },
		{ "crlf", "frank\r", false }, { "Staff", "alice", false },
		{ "staff", "Alice", false },  { "nogroup", "alice", false },
		{ "staff", "alice bob", false },
	};
	char err[512] = "";
	struct groups *g = groups_load(fixture("groups"), err, sizeof(err));
	if (g == NULL)
		fail_msg("groups_load: %s", err);
	for (size_t i = 0; i < N(rows); i++) {
		bool got = groups_member(g, rows[i].group, rows[i].user);
		if (got != rows[i].want)
			fail_msg("%s in %s: got %d, want %d", rows[i].user, rows[i].group, got,
				 rows[i].want);
	}
	assert_true(groups_exists(g, "empty"));
	assert_true(groups_exists(g, "wheel"));
	assert_false(groups_exists(g, "nogroup"));
	assert_false(groups_member(g, NULL, "alice"));
	assert_false(groups_member(NULL, "staff", "alice"));
	groups_free(g);

	static const struct {
		const char *text, *want;
	} bad[] = {
		{ "staff alice bob\n", "1: missing ':' after the group name" },
		{ "# c\n: alice\n", "2: bad group name" },
		{ "two words: alice\n", "1: bad group name" },
	};
	for (size_t i = 0; i < N(bad); i++) {
		char path[64], want[128];
		write_temp(path, bad[i].text);
		snprintf(want, sizeof(want), "%s:%s", path, bad[i].want);
		g = groups_load(path, err, sizeof(err));
		unlink(path);
		if (g != NULL)
			fail_msg("\"%s\": loaded, want error", bad[i].text);
		if (strcmp(err, want) != 0)
			fail_msg("got \"%s\", want \"%s\"", err, want);
	}
}

static void test_cache(void **state)
{
	(void)state;
	assert_null(auth_cache_new(0));
	struct auth_cache *c = auth_cache_new(4); /* one set of four ways */
	assert_non_null(c);
	assert_false(auth_cache_hit(c, "alice", "pw", 100));
	auth_cache_add(c, "alice", "pw", 100, 60);
	static const struct {
		const char *user, *pass;
		int64_t now;
		bool want;
	} rows[] = {
		{ "alice", "pw", 100, true },  { "alice", "pw", 159, true },
		{ "alice", "pw", 160, false }, /* expired: ttl counts from the add */
		{ "alice", "pw", 120, false }, /* and the expired entry is gone */
	};
	for (size_t i = 0; i < N(rows); i++) {
		bool got = auth_cache_hit(c, rows[i].user, rows[i].pass, rows[i].now);
		if (got != rows[i].want)
			fail_msg("row %zu: %s at %lld: got %d, want %d", i, rows[i].user,
				 (long long)rows[i].now, got, rows[i].want);
	}
	/* the digest covers both parts and their boundary */
	auth_cache_add(c, "ab", "c", 200, 60);
	assert_true(auth_cache_hit(c, "ab", "c", 201));
	assert_false(auth_cache_hit(c, "a", "bc", 201));
	assert_false(auth_cache_hit(c, "ab", "C", 201));
	assert_false(auth_cache_hit(c, "ab", "", 201));
	auth_cache_add(c, "empty", "", 200, 60);
	assert_true(auth_cache_hit(c, "empty", "", 201));
	/* ttl <= 0 caches nothing */
	auth_cache_add(c, "zero", "pw", 200, 0);
	assert_false(auth_cache_hit(c, "zero", "pw", 200));
	auth_cache_clear(c);
	assert_false(auth_cache_hit(c, "ab", "c", 201));

	/* a full set evicts its oldest entry */
	static const char *const users[] = { "u0", "u1", "u2", "u3", "u4" };
	for (int i = 0; i < 5; i++)
		auth_cache_add(c, users[i], "pw", 300 + i, 1000);
	static const bool want[] = { false, true, true, true, true };
	for (int i = 0; i < 5; i++) {
		bool got = auth_cache_hit(c, users[i], "pw", 310);
		if (got != want[i])
			fail_msg("after 5 adds to 4 ways, %s: got %d, want %d", users[i], got, want[i]);
	}
	/* ...but an expired one goes first, whatever its age */
	auth_cache_clear(c);
	auth_cache_add(c, "old", "pw", 10, 1000);
	auth_cache_add(c, "short", "pw", 20, 5);
	auth_cache_add(c, "b", "pw", 30, 1000);
	auth_cache_add(c, "c", "pw", 40, 1000);
	auth_cache_add(c, "d", "pw", 50, 1000);
	assert_true(auth_cache_hit(c, "old", "pw", 50));
	assert_false(auth_cache_hit(c, "short", "pw", 50));
	assert_true(auth_cache_hit(c, "d", "pw", 50));
	/* re-adding refreshes instead of taking a second way */
	auth_cache_add(c, "d", "pw", 60, 1000);
	assert_true(auth_cache_hit(c, "old", "pw", 60));
	auth_cache_free(c);

	/* many entries stay bounded and mostly present */
	c = auth_cache_new(1000);
	assert_non_null(c);
	char u[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(u, sizeof(u), "user%d", i);
		auth_cache_add(c, u, "pw", i, 100000);
	}
	int hits = 0;
	for (int i = 4900; i < 5000; i++) {
		snprintf(u, sizeof(u), "user%d", i);
		hits += auth_cache_hit(c, u, "pw", 5000);
	}
	if (hits < 90)
		fail_msg("the 100 newest of 5000 in a 1000-entry cache: got %d hits, want >= 90", hits);
	auth_cache_free(c);
	auth_cache_free(NULL);
}

static void test_limiter(void **state)
{
	(void)state;
	struct auth_limiter *l = auth_limiter_new(3, 60);
	assert_non_null(l);
	struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");
	struct sockaddr_storage a6 = addr("::ffff:192.0.2.1");
	struct sockaddr_storage v6 = addr("2001:db8:1:2::1"), v6same = addr("2001:db8:1:2:ffff::9");
	struct sockaddr_storage v6other = addr("2001:db8:1:3::1");

	static const struct {
		char op; /* f: fail, o: ok, b: expect blocked, u: expect unblocked */
		int who; /* 0: a, 1: b, 2: a as mapped v6 */
		int64_t now;
	} steps[] = {
		{ 'u', 0, 100 }, { 'f', 0, 100 }, { 'f', 0, 110 }, { 'u', 0, 110 },
		{ 'f', 2, 120 }, /* the mapped spelling counts for the same client */
		{ 'b', 0, 120 }, { 'b', 2, 121 }, { 'u', 1, 121 }, { 'b', 0, 159 },
		{ 'u', 0, 160 }, /* the window runs from the first failure */
		{ 'f', 0, 160 }, { 'u', 0, 161 }, /* a new window */
		{ 'f', 0, 170 }, { 'f', 0, 171 }, { 'b', 0, 171 },
		{ 'o', 0, 172 }, { 'u', 0, 172 }, /* success forgets */
		{ 'f', 0, 172 }, { 'u', 0, 172 },
	};
	const struct sockaddr_storage *who[] = { &a, &b, &a6 };
	for (size_t i = 0; i < N(steps); i++) {
		const struct sockaddr *sa = SA(*who[steps[i].who]);
		int64_t now = steps[i].now;
		switch (steps[i].op) {
		case 'f':
			auth_limiter_fail(l, sa, now);
			break;
		case 'o':
			auth_limiter_ok(l, sa, now);
			break;
		default: {
			bool got = auth_limiter_blocked(l, sa, now);
			bool want = steps[i].op == 'b';
			if (got != want)
				fail_msg("step %zu: blocked at %lld: got %d, want %d", i,
					 (long long)now, got, want);
		}
		}
	}

	/* IPv6 clients count per /64 */
	for (int i = 0; i < 2; i++)
		auth_limiter_fail(l, SA(v6), 500);
	auth_limiter_fail(l, SA(v6same), 501);
	assert_true(auth_limiter_blocked(l, SA(v6), 502));
	assert_true(auth_limiter_blocked(l, SA(v6same), 502));
	assert_false(auth_limiter_blocked(l, SA(v6other), 502));

	/* a flood of other clients does not free a blocked one, memory stays fixed */
	for (int i = 0; i < 3; i++)
		auth_limiter_fail(l, SA(b), 600);
	for (unsigned i = 0; i < 20000; i++) {
		struct sockaddr_in s4;
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_addr.s_addr = htonl(0x0a000000u + i);
		auth_limiter_fail(l, (const struct sockaddr *)&s4, 601);
	}
	assert_true(auth_limiter_blocked(l, SA(b), 602));
	assert_false(auth_limiter_blocked(l, SA(b), 660));

	/* families we do not know are never blocked */
	struct sockaddr un = { .sa_family = AF_UNIX };
	for (int i = 0; i < 5; i++)
		auth_limiter_fail(l, &un, 700);
	assert_false(auth_limiter_blocked(l, &un, 700));
	assert_false(auth_limiter_blocked(l, NULL, 700));
	auth_limiter_free(l);

	/* max_failures 0 disables */
	l = auth_limiter_new(0, 60);
	assert_non_null(l);
	for (int i = 0; i < 10; i++)
		auth_limiter_fail(l, SA(a), 100);
	assert_false(auth_limiter_blocked(l, SA(a), 100));
	auth_limiter_free(l);
	auth_limiter_free(NULL);
}

/* auth_b64_decode against OpenSSL's encoder (an independent oracle): random
 * bytes round-trip; a changed character, a missing '=', a bad length or a
 * non-canonical last digit is refused; a short buffer is refused. */
static void test_b64_property(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_b64_property", 2000, &seed);
	for (unsigned r = 0; r < rounds; r++) {
		uint8_t raw[300], out[300];
		size_t n = 1 + rnd_below(sizeof(raw) - 1);
		for (size_t i = 0; i < n; i++)
			raw[i] = (uint8_t)rnd();
		char enc[404];
		int el = EVP_EncodeBlock((unsigned char *)enc, raw, (int)n);
		long got = auth_b64_decode(enc, (size_t)el, out, sizeof(out));
		if (got != (long)n || memcmp(out, raw, n) != 0)
			fail_msg("seed %llu round %u: %zu bytes decoded to %ld",
				 (unsigned long long)seed, r, n, got);
		if (n > 1)
			assert_int_equal(auth_b64_decode(enc, (size_t)el, out, n - 1), -1);
		/* a character outside the alphabet anywhere */
		char bad[404];
		memcpy(bad, enc, (size_t)el);
		size_t at = rnd_below((size_t)el);
		bad[at] = "!-_. \r\x80"[rnd_below(7)];
		if (auth_b64_decode(bad, (size_t)el, out, sizeof(out)) != -1)
			fail_msg("seed %llu round %u: '%c' at %zu accepted", (unsigned long long)seed,
				 r, bad[at], at);
		/* drop the last character: the length is no longer a multiple of 4 */
		assert_int_equal(auth_b64_decode(enc, (size_t)el - 1, out, sizeof(out)), -1);
	}
	uint8_t out[8];
	assert_int_equal(auth_b64_decode("QQ==", 4, out, sizeof(out)), 1);
	assert_int_equal(auth_b64_decode("QR==", 4, out, sizeof(out)), -1); /* trailing bits */
	assert_int_equal(auth_b64_decode("Q===", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_b64_decode("QQ=A", 4, out, sizeof(out)), -1);
	assert_int_equal(auth_b64_decode("", 0, out, sizeof(out)), -1);
}

/* The scheme and the rest of a credentials value. */
static void test_credentials_split(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		bool ok;
		const char *scheme, *param;
	} rows[] = {
		{ "Negotiate YIIabc==", true, "Negotiate", "YIIabc==" },
		{ "  negotiate   tok  ", true, "negotiate", "tok" },
		{ "Negotiate", true, "Negotiate", "" },
		{ "Basic\tQQ==", false, "Basic", "" },
		{ "", false, "", "" },
		{ " ", false, "", "" },
		{ "@x y", false, "", "" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct slice sc, pa;
		bool ok = auth_credentials_split(slice_make(rows[i].in, strlen(rows[i].in)), &sc, &pa);
		if (ok != rows[i].ok || sc.len != strlen(rows[i].scheme) ||
		    memcmp(sc.p, rows[i].scheme, sc.len) != 0 || pa.len != strlen(rows[i].param) ||
		    (pa.len > 0 && memcmp(pa.p, rows[i].param, pa.len) != 0))
			fail_msg("\"%s\": got %d \"%.*s\" \"%.*s\"", rows[i].in, ok, (int)sc.len,
				 sc.p, (int)pa.len, pa.p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_htpasswd_vectors), cmocka_unit_test(test_htpasswd_errors),
		cmocka_unit_test(test_htpasswd_tool),    cmocka_unit_test(test_htpasswd_large),
		cmocka_unit_test(test_parse_basic),      cmocka_unit_test(test_groups),
		cmocka_unit_test(test_cache),            cmocka_unit_test(test_limiter),
		cmocka_unit_test(test_b64_property),     cmocka_unit_test(test_credentials_split),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

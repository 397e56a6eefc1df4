/* test_cache.c - the LMDB store (src/store/cache.c): round trips, replacement,
 * records of unknown versions, eviction in a small map, the full-map path,
 * LRU touches, counters, clear errors from cache_prepare, and a writer
 * SIGKILLed mid-loop that must leave only complete objects. Each test works
 * in its own mkdtemp directory under /tmp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "cache.h"
#include "cache_key.h"
#include "log.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* A temp dir per test; removed by teardown. */
static char tmpdir[64];

/* Remove one entry (nftw callback). */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Make a fresh temp dir for the test. */
static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hc-cache-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

/* Remove the test's temp dir and all it holds. */
static int teardown(void **state)
{
	(void)state;
	chmod(tmpdir, 0700);
	return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The store directory of the test. */
static const char *store_dir(void)
{
	static char d[128];
	snprintf(d, sizeof(d), "%s/store", tmpdir);
	return d;
}

/* Prepare and open the test store with this map size. */
static struct cache *open_store(size_t map, size_t max_object)
{
	char err[512] = "";
	int rc = cache_prepare(store_dir(), map, err, sizeof(err));
	if (rc != 0)
		fail_msg("cache_prepare: %s", err);
	struct cache *c = cache_open(store_dir(), map, max_object, err, sizeof(err));
	if (c == NULL)
		fail_msg("cache_open: %s", err);
	return c;
}

/* Key of a test object number i. */
static void key_of(unsigned i, uint8_t key[CACHE_KEY_LEN])
{
	char uri[64];
	int n = snprintf(uri, sizeof(uri), "http://example.com/%u", i);
	assert_int_equal(cache_key_hash((const uint8_t *)uri, (size_t)n, key), 0);
}

/* FNV-1a 64 over len bytes. */
static uint64_t fnv(const uint8_t *p, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* Fill a self-checking body: u32 id, u32 length, bytes, u64 FNV of the rest. */
static void body_fill(uint8_t *b, size_t len, unsigned id)
{
	assert_true(len >= 16);
	memcpy(b, &id, 4);
	uint32_t l = (uint32_t)len;
	memcpy(b + 4, &l, 4);
	for (size_t i = 8; i < len - 8; i++)
		b[i] = (uint8_t)(i * 31 + id);
	uint64_t h = fnv(b, len - 8);
	memcpy(b + len - 8, &h, 8);
}

/* Whether a body read back is complete and is object id's. */
static int body_ok(const char *body, size_t len, unsigned id)
{
	const uint8_t *b = (const uint8_t *)body;
	uint32_t bid, l;
	uint64_t h;
	if (len < 16)
		return 0;
	memcpy(&bid, b, 4);
	memcpy(&l, b + 4, 4);
	memcpy(&h, b + len - 8, 8);
	return bid == id && l == len && h == fnv(b, len - 8);
}

/* Store object id with a body of len bytes; returns cache_put's result. */
static int put_obj(struct cache *c, unsigned id, size_t len)
{
	uint8_t key[CACHE_KEY_LEN];
	char head[64];
	uint8_t *body = malloc(len);
	assert_non_null(body);
	body_fill(body, len, id);
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nX-Id: %u\r\n\r\n", id);
	struct cache_object o = { .request_time = 1000 + id, .response_time = 2000 + id,
				  .head = head, .head_len = (size_t)hl,
				  .body = (const char *)body, .body_len = len };
	key_of(id, key);
	int rc = cache_put(c, key, &o);
	free(body);
	return rc;
}

/* Whether object id is stored (and, if so, complete). */
static int has_obj(struct cache *c, unsigned id)
{
	uint8_t key[CACHE_KEY_LEN];
	struct cache_object o;
	struct cache_read *rd;
	char head[64];
	key_of(id, key);
	int rc = cache_get(c, key, &o, &rd);
	assert_int_not_equal(rc, -1);
	if (rc == 0)
		return 0;
	int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nX-Id: %u\r\n\r\n", id);
	assert_int_equal(o.head_len, (size_t)hl);
	assert_memory_equal(o.head, head, (size_t)hl);
	assert_true(body_ok(o.body, o.body_len, id));
	assert_int_equal(o.request_time, 1000 + id);
	assert_int_equal(o.response_time, 2000 + id);
	cache_release(rd);
	return 1;
}

/* A record keeps the identity it was stored for, byte for byte, next to
 * its head and body; a record without one reads back with none. */
static void test_identity_kept(void **state)
{
	(void)state;
	struct cache *c = open_store(8 * MiB, MiB);
	uint8_t id[3000];
	for (size_t i = 0; i < sizeof(id); i++)
		id[i] = (uint8_t)(i * 7 + 1);
	struct cache_object o = { .head = "HTTP/1.1 200 OK\r\n\r\n", .head_len = 19,
				  .body = "abc", .body_len = 3, .ident = id,
				  .ident_len = sizeof(id) };
	uint8_t key[CACHE_KEY_LEN];
	struct cache_object g;
	struct cache_read *rd;
	key_of(1, key);
	assert_int_equal(cache_put(c, key, &o), 1);
	assert_int_equal(cache_get(c, key, &g, &rd), 1);
	assert_int_equal(g.ident_len, sizeof(id));
	assert_memory_equal(g.ident, id, sizeof(id));
	assert_int_equal(g.head_len, 19);
	assert_memory_equal(g.body, "abc", 3);
	cache_release(rd);
	o.ident = NULL;
	o.ident_len = 0;
	assert_int_equal(cache_put(c, key, &o), 1);
	assert_int_equal(cache_get(c, key, &g, &rd), 1);
	assert_int_equal(g.ident_len, 0);
	assert_int_equal(g.body_len, 3);
	cache_release(rd);
	cache_close(c);
}

/* Put then get returns every field; stats count the record and its bytes. */
static void test_round_trip(void **state)
{
	(void)state;
	struct cache *c = open_store(8 * MiB, MiB);
	struct cache_stats st;
	time_t before = time(NULL);
	assert_int_equal(put_obj(c, 7, 5000), 1);
	assert_true(has_obj(c, 7));
	assert_false(has_obj(c, 8));

	uint8_t key[CACHE_KEY_LEN];
	struct cache_object o;
	struct cache_read *rd, *rd2;
	key_of(7, key);
	assert_int_equal(cache_get(c, key, &o, &rd), 1);
	assert_true(o.stamp >= before - 1 && o.stamp <= time(NULL) + 1);
	assert_int_equal(o.flags, 0);
	/* Two read handles at once: both stay valid. */
	struct cache_object o2;
	assert_int_equal(cache_get(c, key, &o2, &rd2), 1);
	assert_true(body_ok(o.body, o.body_len, 7));
	cache_release(rd2);
	cache_release(rd);

	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 56 + o.head_len + 5000);
	assert_int_equal(st.map_size, 8 * MiB);
	cache_close(c);

	/* Survives a reopen. */
	c = open_store(8 * MiB, MiB);
	assert_true(has_obj(c, 7));
	cache_close(c);
}

/* Replacing a key keeps one record and the byte total of the new one only. */
static void test_replace_delete(void **state)
{
	(void)state;
	struct cache *c = open_store(8 * MiB, MiB);
	struct cache_stats st;
	uint8_t key[CACHE_KEY_LEN];
	assert_int_equal(put_obj(c, 1, 100000), 1);
	assert_int_equal(put_obj(c, 1, 300), 1);
	assert_int_equal(put_obj(c, 2, 400), 1);
	assert_true(has_obj(c, 1));
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.entries, 2);
	size_t h1 = strlen("HTTP/1.1 200 OK\r\nX-Id: 1\r\n\r\n");
	assert_int_equal(st.bytes, (56 + h1 + 300) + (56 + h1 + 400));

	key_of(1, key);
	assert_int_equal(cache_delete(c, key), 1);
	assert_int_equal(cache_delete(c, key), 0);
	assert_false(has_obj(c, 1));
	assert_true(has_obj(c, 2));
	key_of(2, key);
	assert_int_equal(cache_delete(c, key), 1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	cache_close(c);
}

/* A Vary marker: flag kept, head = field names, no body. */
static void test_vary_marker(void **state)
{
	(void)state;
	struct cache *c = open_store(8 * MiB, MiB);
	uint8_t key[CACHE_KEY_LEN];
	struct cache_object o = { .flags = CACHE_VARY, .head = "accept-encoding, accept-language",
				  .head_len = 32 }, g;
	struct cache_read *rd;
	key_of(3, key);
	assert_int_equal(cache_put(c, key, &o), 1);
	assert_int_equal(cache_get(c, key, &g, &rd), 1);
	assert_int_equal(g.flags, CACHE_VARY);
	assert_int_equal(g.head_len, 32);
	assert_memory_equal(g.head, "accept-encoding, accept-language", 32);
	assert_int_equal(g.body_len, 0);
	cache_release(rd);
	/* Unknown flags are refused rather than stored. */
	o.flags = 0x80;
	assert_int_equal(cache_put(c, key, &o), 0);
	cache_close(c);
}

/* Replace every occurrence of needle in the file; returns how many. */
static int patch_file(const char *path, const void *needle, size_t nlen, const void *repl)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	uint8_t *buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	int n = 0;
	for (size_t i = 0; i + nlen <= (size_t)st.st_size; i++) {
		if (memcmp(buf + i, needle, nlen) == 0) {
			assert_int_equal(pwrite(fd, repl, nlen, (off_t)i), (ssize_t)nlen);
			n++;
		}
	}
	free(buf);
	close(fd);
	return n;
}

/* A record with an unknown format version reads as absent and is deleted by
 * the next write of that process. */
static void test_unknown_record_version(void **state)
{
	(void)state;
	char path[160];
	struct cache *c = open_store(8 * MiB, MiB);
	struct cache_object o = { .head = "HTTP/1.1 200 OK\r\nX-Victim: 1\r\n\r\n", .head_len = 31,
				  .body = "body", .body_len = 4 };
	uint8_t key[CACHE_KEY_LEN];
	struct cache_stats st;
	struct cache_read *rd;
	key_of(1, key);
	assert_int_equal(cache_put(c, key, &o), 1);
	assert_int_equal(put_obj(c, 2, 1000), 1);
	cache_close(c);

	/* Header: magic "HCR\x1a", u16 version 2; the head follows at 56. */
	snprintf(path, sizeof(path), "%s/data.mdb", store_dir());
	uint8_t rec[56 + 31], bad[56 + 31];
	int found = 0;
	int fd = open(path, O_RDONLY);
	struct stat fst;
	assert_int_equal(fstat(fd, &fst), 0);
	uint8_t *all = malloc((size_t)fst.st_size);
	assert_int_equal(pread(fd, all, (size_t)fst.st_size, 0), fst.st_size);
	close(fd);
	for (size_t i = 0; i + sizeof(rec) <= (size_t)fst.st_size && !found; i++) {
		if (memcmp(all + i, "HCR\x1a\x02\x00", 6) == 0 &&
		    memcmp(all + i + 56, o.head, 31) == 0) {
			memcpy(rec, all + i, sizeof(rec));
			found = 1;
		}
	}
	free(all);
	assert_true(found);
	memcpy(bad, rec, sizeof(bad));
	bad[4] = 99; /* format version 99 */
	assert_true(patch_file(path, rec, sizeof(rec), bad) >= 1);

	c = open_store(8 * MiB, MiB);
	struct cache_object g;
	assert_int_equal(cache_get(c, key, &g, &rd), 0);
	assert_null(rd);
	assert_true(has_obj(c, 2));
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.entries, 2);
	/* The next write deletes it. */
	assert_int_equal(put_obj(c, 3, 1000), 1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.entries, 2);
	assert_true(has_obj(c, 2) && has_obj(c, 3));
	/* And the key can be stored again. */
	assert_int_equal(cache_put(c, key, &o), 1);
	assert_int_equal(cache_get(c, key, &g, &rd), 1);
	cache_release(rd);
	cache_close(c);
}

/* A 1 MiB map and many 64 KiB objects: every put stores, the newest are kept,
 * the oldest go, and the map stays bounded. */
static void test_eviction_small_map(void **state)
{
	(void)state;
	struct cache *c = open_store(MiB, MiB);
	struct cache_stats st;
	int stored = 0;
	for (unsigned i = 0; i < 300; i++) {
		int rc = put_obj(c, i, 64 * KiB);
		assert_int_not_equal(rc, -1);
		stored += rc;
		assert_true(has_obj(c, i)); /* the newest is always there */
		if (i >= 3)
			assert_true(has_obj(c, i - 1) && has_obj(c, i - 2) && has_obj(c, i - 3));
	}
	assert_int_equal(stored, 300);
	assert_false(has_obj(c, 0));
	assert_false(has_obj(c, 250));
	assert_int_equal(cache_stats(c, &st), 0);
	assert_true(st.entries >= 5 && st.entries <= 13);
	assert_true(st.bytes <= MiB);
	cache_close(c);
}

/* A read handle held open pins old pages, so evictions free nothing reusable
 * and the map really fills: puts return 0 (never -1), the held object stays
 * intact, and after release the store works again. */
static void test_map_full(void **state)
{
	(void)state;
	struct cache *c = open_store(MiB, MiB);
	uint8_t key[CACHE_KEY_LEN];
	struct cache_object held;
	struct cache_read *rd;
	int zero = 0;
	assert_int_equal(put_obj(c, 0, 64 * KiB), 1);
	key_of(0, key);
	assert_int_equal(cache_get(c, key, &held, &rd), 1);
	for (unsigned i = 1; i < 60; i++) {
		int rc = put_obj(c, i, 64 * KiB);
		assert_int_not_equal(rc, -1);
		zero += rc == 0;
	}
	assert_true(zero > 0);
	assert_true(body_ok(held.body, held.body_len, 0));
	cache_release(rd);
	assert_int_equal(put_obj(c, 100, 64 * KiB), 1);
	assert_int_equal(put_obj(c, 101, 64 * KiB), 1);
	assert_true(has_obj(c, 100) && has_obj(c, 101));
	cache_close(c);
}

/* A body over max_object, or a record over half the map, is not stored. */
static void test_oversized(void **state)
{
	(void)state;
	struct cache *c = open_store(MiB, 1000);
	assert_int_equal(put_obj(c, 1, 1001), 0);
	assert_false(has_obj(c, 1));
	assert_int_equal(put_obj(c, 1, 1000), 1);
	assert_true(has_obj(c, 1));
	cache_close(c);
	c = open_store(MiB, 4 * MiB);
	assert_int_equal(put_obj(c, 2, 600 * KiB), 0);
	assert_int_equal(put_obj(c, 3, 300 * KiB), 1);
	cache_close(c);
}

/* Fill the store with 8 KiB objects from next on until id is evicted;
 * return the next unused id. */
static unsigned fill_until_gone(struct cache *c, unsigned next, unsigned id)
{
	for (unsigned n = 0; has_obj(c, id); n++) {
		assert_true(n < 1000);
		assert_int_equal(put_obj(c, next++, 8 * KiB), 1);
	}
	return next;
}

/* Store objects 1..200 (8 KiB) in a 4 MiB map, touch object 1 with the
 * clock skewed by skew seconds, then fill until object 2 (the oldest after
 * 1) is evicted; returns whether object 1 survived. */
static int touched_survives(int64_t skew)
{
	struct cache *c = open_store(4 * MiB, MiB);
	uint8_t k1[CACHE_KEY_LEN];
	for (unsigned i = 1; i <= 200; i++)
		assert_int_equal(put_obj(c, i, 8 * KiB), 1);
	key_of(1, k1);
	cache_set_clock_skew(c, skew);
	cache_touch(c, k1);
	struct cache_object o;
	struct cache_read *rd;
	assert_int_equal(cache_get(c, k1, &o, &rd), 1);
	if (skew > 60)
		assert_true(o.stamp >= time(NULL) + skew - 10);
	else
		assert_true(o.stamp <= time(NULL));
	assert_true(body_ok(o.body, o.body_len, 1));
	cache_release(rd);
	fill_until_gone(c, 1000, 2);
	int survived = has_obj(c, 1);
	if (survived)
		fill_until_gone(c, 2000, 1); /* and it does go eventually */
	cache_close(c);
	return survived;
}

/* A touch older than a minute moves a record to the young end of the LRU;
 * a touch within the minute changes nothing. */
static void test_touch_lru(void **state)
{
	(void)state;
	assert_false(touched_survives(0));
	teardown(NULL);
	setup(NULL);
	assert_true(touched_survives(120));
}

/* Hits and misses: visible at once to this process, in "meta" within a
 * second for others, and written by cache_close. */
static void test_counters(void **state)
{
	(void)state;
	struct cache *c = open_store(8 * MiB, MiB);
	struct cache_stats st;
	cache_count(c, 3, 1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.hits, 3);
	assert_int_equal(st.misses, 1);
	usleep(1100 * 1000);
	cache_count(c, 2, 0); /* more than a second later: flushed */

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];
		struct cache *cc = cache_open(store_dir(), 8 * MiB, MiB, err, sizeof(err));
		int ok = cc != NULL && cache_stats(cc, &st) == 0 && st.hits == 5 && st.misses == 1;
		cache_close(cc);
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	cache_count(c, 10, 20); /* pending until close */
	cache_close(c);
	c = open_store(8 * MiB, MiB);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.hits, 15);
	assert_int_equal(st.misses, 21);
	cache_close(c);
}

/* Expect cache_prepare(dir) to fail with a message holding each needle. */
static void prepare_fails(const char *dir, size_t map, const char *n1, const char *n2)
{
	char err[512] = "";
	assert_int_equal(cache_prepare(dir, map, err, sizeof(err)), -1);
	if (strstr(err, n1) == NULL || (n2 != NULL && strstr(err, n2) == NULL))
		fail_msg("got \"%s\", want it to contain \"%s\" and \"%s\"", err, n1, n2 ? n2 : "");
}

/* cache_prepare: creates missing dirs 0750; clear errors otherwise. */
static void test_prepare_errors(void **state)
{
	(void)state;
	char path[200], sub[240], err[512];
	struct stat st;

	/* Creates a nested directory with mode 0750. */
	mode_t old = umask(022);
	snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
	assert_int_equal(cache_prepare(path, MiB, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	umask(old);

	/* A file where the directory should be, or on the way to it. */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("x", f);
	fclose(f);
	prepare_fails(path, MiB, path, "not a directory");
	snprintf(sub, sizeof(sub), "%s/sub", path);
	prepare_fails(sub, MiB, sub, "not a directory");

	/* A garbage data.mdb. */
	snprintf(path, sizeof(path), "%s/garbage", tmpdir);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(sub, sizeof(sub), "%s/data.mdb", path);
	f = fopen(sub, "w");
	for (int i = 0; i < 2000; i++)
		fputs("not an lmdb file ", f);
	fclose(f);
	prepare_fails(path, MiB, path, "MDB_INVALID");

	/* A map smaller than the data already stored. */
	struct cache *c = open_store(8 * MiB, MiB);
	for (unsigned i = 0; i < 40; i++)
		assert_int_equal(put_obj(c, i, 64 * KiB), 1);
	cache_close(c);
	prepare_fails(store_dir(), MiB, store_dir(), "smaller than the data");
	c = open_store(8 * MiB, MiB); /* still fine at its size */
	assert_true(has_obj(c, 39));
	cache_close(c);

	/* A store format version we do not know: "version" then u32 2. */
	snprintf(sub, sizeof(sub), "%s/data.mdb", store_dir());
	assert_true(patch_file(sub, "version\x02\x00\x00\x00", 11, "version\x63\x00\x00\x00") >= 1);
	prepare_fails(store_dir(), 8 * MiB, store_dir(), "format version 99 is unknown");

	/* A directory this user may not use. */
	snprintf(path, sizeof(path), "%s/locked", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	chmod(tmpdir, 0711); /* so only "locked" itself is in the way */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(2);
		if (geteuid() != 0)
			chmod(path, 0); /* not root: take our own rights away */
		err[0] = '\0';
		int rc = cache_prepare(path, MiB, err, sizeof(err));
		ssize_t w = write(pfd[1], err, strlen(err) + 1);
		(void)w;
		_exit(rc == -1 ? 0 : 1);
	}
	close(pfd[1]);
	memset(err, 0, sizeof(err));
	ssize_t r = read(pfd[0], err, sizeof(err) - 1);
	(void)r;
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("prepare on an unusable dir: got \"%s\"", err);
	if (strstr(err, path) == NULL || strstr(err, "Permission denied") == NULL)
		fail_msg("got \"%s\", want the path and \"Permission denied\"", err);
}

/* Another process opens the store with a bigger map and fills it past our
 * map: our next transaction sees MDB_MAP_RESIZED and adopts the new size. */
static void test_map_resized(void **state)
{
	(void)state;
	struct cache *c = open_store(2 * MiB, MiB);
	struct cache_stats st;
	assert_int_equal(put_obj(c, 1, 1000), 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[256];
		struct cache *cc = cache_open(store_dir(), 16 * MiB, MiB, err, sizeof(err));
		int ok = cc != NULL;
		for (unsigned i = 100; ok && i < 160; i++)
			ok = put_obj(cc, i, 64 * KiB) == 1;
		cache_close(cc);
		_exit(ok ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(has_obj(c, 159));
	assert_true(has_obj(c, 100));
	assert_int_equal(put_obj(c, 2, 1000), 1);
	assert_int_equal(cache_stats(c, &st), 0);
	assert_int_equal(st.map_size, 16 * MiB);
	assert_int_equal(st.entries, 62);
	cache_close(c);
}

/* The child of the kill test: write (and read) objects forever. */
static void writer_child(unsigned first, volatile unsigned *progress)
{
	char err[256];
	struct cache *c = cache_open(store_dir(), 4 * MiB, MiB, err, sizeof(err));
	if (c == NULL)
		_exit(3);
	for (unsigned i = first;; i++) {
		size_t len = 16 + (i * 7919u) % (80 * KiB);
		if (put_obj(c, i, len) < 0)
			_exit(4);
		uint8_t key[CACHE_KEY_LEN];
		struct cache_object o;
		struct cache_read *rd;
		key_of(i / 2, key);
		if (cache_get(c, key, &o, &rd) == 1) {
			cache_touch(c, key);
			cache_release(rd);
		}
		cache_count(c, 1, 1);
		*progress = i + 1;
	}
}

/* SIGKILL a writer mid-loop, several times: the store opens, every object it
 * still has is complete, and it keeps working. */
static void test_sigkill_writer(void **state)
{
	(void)state;
	char err[256];
	volatile unsigned *progress = mmap(NULL, sizeof(unsigned), PROT_READ | PROT_WRITE,
					  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(progress != MAP_FAILED);
	assert_int_equal(cache_prepare(store_dir(), 4 * MiB, err, sizeof(err)), 0);
	unsigned first = 0;
	srand((unsigned)getpid());
	for (int round = 0; round < 4; round++) {
		*progress = first;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			writer_child(first, progress);
		while (*progress < first + 100) {
			int status;
			assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
			usleep(1000);
		}
		usleep((useconds_t)(rand() % 20000));
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		first = *progress + 1;

		struct cache *c = cache_open(store_dir(), 4 * MiB, MiB, err, sizeof(err));
		if (c == NULL)
			fail_msg("open after SIGKILL: %s", err);
		unsigned present = 0;
		for (unsigned i = 0; i < first; i++)
			present += (unsigned)has_obj(c, i); /* asserts completeness */
		assert_true(present > 0);
		/* before the put below, which may evict */
		struct cache_stats st;
		assert_int_equal(cache_stats(c, &st), 0);
		assert_true(st.entries >= present);
		assert_int_equal(put_obj(c, 1000000 + (unsigned)round, 1000), 1);
		assert_true(has_obj(c, 1000000 + (unsigned)round));
		cache_close(c);
	}
	munmap((void *)(uintptr_t)progress, sizeof(unsigned));
}

int main(void)
{
	const char *what;
	log_open(NULL, NULL, getenv("TEST_DEBUG") ? HC_LOG_DEBUG : HC_LOG_ERROR, &what);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vary_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_record_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction_small_map, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_touch_lru, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_resized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill_writer, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

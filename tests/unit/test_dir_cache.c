/* test_dir_cache.c - the worker's cache of directory memberships
 * (src/policy/dir_cache.c): found and not-found entries and their TTLs, an
 * update replacing an entry, names too long to cache, the fixed size (a
 * full table evicts, never grows), and a property test against a model. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dir_cache.h"
#include "prng.h"

static struct dir_member bits(size_t a, size_t b)
{
	struct dir_member m;
	memset(&m, 0, sizeof(m));
	dir_member_set(&m, a);
	dir_member_set(&m, b);
	return m;
}

static void test_ttl(void **state)
{
	(void)state;
	struct dir_cache *c = dir_cache_new(16, 42);
	assert_non_null(c);
	struct dir_member m = bits(0, 255), got;

	assert_int_equal(dir_cache_get(c, "alice", 100, &got, NULL), DIR_CACHE_MISS);
	dir_cache_put(c, "alice", true, &m, NULL, 100, 300);
	dir_cache_put(c, "mallory", false, NULL, NULL, 100, 60);
	memset(&got, 0, sizeof(got));
	assert_int_equal(dir_cache_get(c, "alice", 399, &got, NULL), DIR_CACHE_FOUND);
	assert_true(dir_member_has(&got, 0));
	assert_true(dir_member_has(&got, 255));
	assert_false(dir_member_has(&got, 1));
	assert_false(dir_member_has(&got, 256)); /* out of range: never */
	assert_int_equal(dir_cache_get(c, "mallory", 159, &got, NULL), DIR_CACHE_NOT_FOUND);
	assert_int_equal(dir_cache_get(c, "mallory", 160, &got, NULL), DIR_CACHE_MISS);
	assert_int_equal(dir_cache_get(c, "alice", 400, &got, NULL), DIR_CACHE_MISS);
	assert_int_equal(dir_cache_count(c, 100), 0);

	/* an update replaces the entry; ttl 0 caches nothing */
	dir_cache_put(c, "bob", true, &m, NULL, 10, 100);
	dir_cache_put(c, "bob", false, NULL, NULL, 20, 100);
	assert_int_equal(dir_cache_get(c, "bob", 30, &got, NULL), DIR_CACHE_NOT_FOUND);
	assert_int_equal(dir_cache_count(c, 30), 1);
	dir_cache_put(c, "carol", true, &m, NULL, 10, 0);
	assert_int_equal(dir_cache_get(c, "carol", 10, &got, NULL), DIR_CACHE_MISS);
	/* the directory's spelling, kept only when it differs */
	const char *canon = "x";
	dir_cache_put(c, "BOB", true, &m, "bob", 10, 100);
	assert_int_equal(dir_cache_get(c, "BOB", 20, &got, &canon), DIR_CACHE_FOUND);
	assert_non_null(canon);
	assert_string_equal(canon, "bob");
	dir_cache_put(c, "BOB", true, &m, "BOB", 10, 100); /* replaced, and the same */
	assert_int_equal(dir_cache_get(c, "BOB", 20, &got, &canon), DIR_CACHE_FOUND);
	assert_null(canon);
	/* names are compared whole and case-sensitively */
	assert_int_equal(dir_cache_get(c, "Bob", 30, &got, NULL), DIR_CACHE_MISS);
	assert_int_equal(dir_cache_get(c, "bo", 30, &got, NULL), DIR_CACHE_MISS);

	/* a name longer than an entry holds is never cached (nor cut) */
	char long_name[DIR_CACHE_USER_MAX + 2];
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	dir_cache_put(c, long_name, true, &m, NULL, 10, 100);
	assert_int_equal(dir_cache_get(c, long_name, 20, &got, NULL), DIR_CACHE_MISS);
	long_name[DIR_CACHE_USER_MAX] = '\0'; /* the longest that fits */
	dir_cache_put(c, long_name, true, &m, NULL, 10, 100);
	assert_int_equal(dir_cache_get(c, long_name, 20, &got, NULL), DIR_CACHE_FOUND);
	dir_cache_free(c);
	dir_cache_free(NULL);
	assert_null(dir_cache_new(0, 1));
	/* a NULL cache (out of memory at start) always misses */
	assert_int_equal(dir_cache_get(NULL, "a", 1, &got, NULL), DIR_CACHE_MISS);
	dir_cache_put(NULL, "a", true, &m, NULL, 1, 1);
}

/* A full table evicts: never more entries than its size, the newest kept. */
static void test_bounded(void **state)
{
	(void)state;
	struct dir_cache *c = dir_cache_new(64, 7);
	assert_non_null(c);
	struct dir_member m = bits(3, 4), got;
	char name[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "user%d", i);
		dir_cache_put(c, name, i % 2 == 0, &m, NULL, 1000 + i, 1000000);
		assert_true(dir_cache_count(c, 1000 + i) <= 64);
	}
	assert_int_equal(dir_cache_get(c, "user9999", 20000, &got, NULL), DIR_CACHE_NOT_FOUND);
	assert_int_equal(dir_cache_get(c, "user9998", 20000, &got, NULL), DIR_CACHE_FOUND);
	assert_true(dir_member_has(&got, 3));
	dir_cache_free(c);
}

/* Property: against a model (a plain list with the same TTLs), every hit
 * the cache gives is the model's answer; it may only forget (miss). */
static void test_model(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("test_dir_cache model", 20000, &seed);
	struct {
		int64_t expires;
		bool found;
		size_t bit;
	} model[40];
	memset(model, 0, sizeof(model));
	struct dir_cache *c = dir_cache_new(16, seed);
	assert_non_null(c);
	int64_t now = 1;
	for (unsigned round = 0; round < rounds; round++) {
		size_t u = rnd_below(40);
		char name[16];
		snprintf(name, sizeof(name), "u%zu", u);
		now += (int64_t)rnd_below(3);
		if (rnd_below(2)) {
			bool found = rnd_below(2);
			int64_t ttl = (int64_t)rnd_below(20);
			size_t bit = rnd_below(DIR_GROUPS_MAX);
			struct dir_member m = bits(bit, bit);
			dir_cache_put(c, name, found, &m, NULL, now, ttl);
			if (ttl > 0) {
				model[u].expires = now + ttl;
				model[u].found = found;
				model[u].bit = bit;
			}
			continue;
		}
		struct dir_member got;
		memset(&got, 0, sizeof(got));
		enum dir_cache_result r = dir_cache_get(c, name, now, &got, NULL);
		bool live = model[u].expires > now;
		if (r != DIR_CACHE_MISS && !live)
			fail_msg("seed %llu round %u: %s answered after its TTL", (unsigned long long)seed,
				 round, name);
		if (r == DIR_CACHE_FOUND && (!model[u].found || !dir_member_has(&got, model[u].bit)))
			fail_msg("seed %llu round %u: %s found with other groups", (unsigned long long)seed,
				 round, name);
		if (r == DIR_CACHE_NOT_FOUND && model[u].found)
			fail_msg("seed %llu round %u: %s said not found", (unsigned long long)seed, round,
				 name);
	}
	dir_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_rate.c - request rates (src/proto/rate.c): the syntax, row by row;
 * format then parse gives the same rate; and the GCRA bucket against a
 * reference model written here from the token-bucket definition (tokens in
 * nanoseconds of refill, capacity burst x interval, a request costs one
 * interval), over random request times. Also SipHash-2-4 against the
 * reference implementation's published vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "prng.h"
#include "rate.h"
#include "siphash.h"

static void test_parse_rows(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		double count;
		char unit;
		unsigned burst;
	} ok[] = {
		{ "100/s, burst 200", 100, 's', 200 }, { "100/s", 100, 's', 100 },
		{ "5/m", 5, 'm', 5 },                  { "2 / min , burst 3", 2, 'm', 3 },
		{ "0.5/s", 0.5, 's', 1 },              { "1.5/hour", 1.5, 'h', 2 },
		{ "10/second,burst 1", 10, 's', 1 },   { "off", 0, 's', 0 },
		{ "0", 0, 's', 0 },                    { "", 0, 's', 0 },
		{ "1000000/s", 1000000, 's', 1000000 }, { "1/h", 1, 'h', 1 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct rate r;
		char why[160] = "";
		if (rate_parse(ok[i].in, &r, why, sizeof(why)) != 0)
			fail_msg("\"%s\": refused: %s", ok[i].in, why);
		if (r.count != ok[i].count || (r.count > 0 && r.unit != ok[i].unit) ||
		    r.burst != ok[i].burst)
			fail_msg("\"%s\": got %g/%c burst %u, want %g/%c burst %u", ok[i].in, r.count,
				 r.unit, r.burst, ok[i].count, ok[i].unit, ok[i].burst);
	}
	static const struct {
		const char *in, *why;
	} bad[] = {
		{ "100", "needs a unit" },         { "100/", "needs a unit" },
		{ "100/d", "needs a unit" },       { "-1/s", "expected a rate" },
		{ "0/s", "expected a rate" },      { "1./s", "expected a rate" },
		{ "x/s", "expected a rate" },      { "2000000/s", "between 1/h" },
		{ "0.5/h", "between 1/h" },        { "10/s, burst 0", "burst must be" },
		{ "10/s, burst", "burst must be" }, { "10/s, burst 2000001", "burst must be" },
		{ "10/s, rate 3", "burst N" },     { "10/s burst 3", "unexpected text" },
		{ "10/s, burst 3 x", "unexpected text" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rate r = { 7, 's', 7 };
		char why[160] = "";
		if (rate_parse(bad[i].in, &r, why, sizeof(why)) == 0)
			fail_msg("\"%s\": accepted as %g/%c burst %u", bad[i].in, r.count, r.unit,
				 r.burst);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("\"%s\": why \"%s\" lacks \"%s\"", bad[i].in, why, bad[i].why);
		assert_true(r.count == 7 && r.burst == 7); /* untouched */
	}
}

static void test_format_parses_back(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("rate format/parse", 2000, &seed);
	static const char units[] = { 's', 'm', 'h' };
	for (unsigned i = 0; i < rounds; i++) {
		char in[64], out[64], why[160];
		char u = units[rnd_below(3)];
		unsigned n = 1 + (unsigned)rnd_below(u == 's' ? 999999 : 3599);
		unsigned frac = (unsigned)rnd_below(4);
		snprintf(in, sizeof(in), "%u.%u/%c, burst %u", n, frac * 25, u,
			 1 + (unsigned)rnd_below(1000));
		struct rate a, b;
		if (rate_parse(in, &a, why, sizeof(why)) != 0)
			fail_msg("seed %llu: \"%s\" refused: %s", (unsigned long long)seed, in, why);
		rate_format(&a, out, sizeof(out));
		if (rate_parse(out, &b, why, sizeof(why)) != 0 || a.count != b.count ||
		    a.unit != b.unit || a.burst != b.burst)
			fail_msg("seed %llu: \"%s\" -> \"%s\" does not parse back", (unsigned long long)seed,
				 in, out);
	}
}

/* The reference token bucket: `tokens` nanoseconds of refill, at most
 * burst x interval; a request takes one interval's worth. */
struct model {
	int64_t tokens, last;
};

static bool model_take(struct model *m, int64_t interval, int64_t cap, int64_t now,
		       int64_t *wait)
{
	m->tokens += now - m->last;
	if (m->tokens > cap)
		m->tokens = cap;
	m->last = now;
	if (m->tokens >= interval) {
		m->tokens -= interval;
		return true;
	}
	*wait = interval - m->tokens;
	return false;
}

static void test_bucket_matches_model(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("rate bucket vs model", 300, &seed);
	for (unsigned round = 0; round < rounds; round++) {
		struct rate r = { (double)(1 + rnd_below(1000)), "smh"[rnd_below(3)],
				  (uint32_t)(1 + rnd_below(50)) };
		int64_t t = rate_interval_ns(&r), cap = t * (int64_t)r.burst;
		int64_t now = INT64_C(1000000000) + (int64_t)rnd_below(1000000000);
		struct model m = { cap, now };
		int64_t tat = 0;
		unsigned allowed = 0;
		for (unsigned i = 0; i < 400; i++) {
			/* bursts of simultaneous requests and gaps of up to 3 intervals */
			if (rnd_below(3) != 0)
				now += (int64_t)rnd_below((size_t)(3 * t));
			int64_t w1 = -1, w2 = -1;
			bool got = rate_take(&r, now, &tat, &w1);
			bool want = model_take(&m, t, cap, now, &w2);
			if (got != want || (!got && w1 != w2))
				fail_msg("seed %llu round %u request %u: %g/%c burst %u at %lld: got %d "
					 "(wait %lld), model %d (wait %lld)",
					 (unsigned long long)seed, round, i, r.count, r.unit, r.burst,
					 (long long)now, got, (long long)w1, want, (long long)w2);
			allowed += got;
		}
		assert_true(allowed >= r.burst || allowed == 400);
	}
}

static void test_bucket_burst_then_rate(void **state)
{
	(void)state;
	struct rate r = { 10, 's', 5 };
	int64_t tat = 0, now = INT64_C(5000000000), wait = 0;
	for (int i = 0; i < 5; i++)
		assert_true(rate_take(&r, now, &tat, &wait));
	assert_false(rate_take(&r, now, &tat, &wait));
	assert_int_equal(wait, 100000000); /* the next token in 0.1 s */
	assert_false(rate_take(&r, now + 99999999, &tat, &wait));
	assert_int_equal(wait, 1);
	assert_true(rate_take(&r, now + 100000000, &tat, &wait));
	assert_true(rate_bucket_full(tat, now + 600000000));
	assert_false(rate_bucket_full(tat, now + 500000000 - 1));
}

/* SipHash-2-4, key 00..0f, message 00..n-1: the reference vectors. */
static void test_siphash_vectors(void **state)
{
	(void)state;
	static const struct {
		size_t n;
		uint64_t h;
	} v[] = {
		{ 0, UINT64_C(0x726fdb47dd0e0e31) }, { 1, UINT64_C(0x74f839c593dc67fd) },
		{ 2, UINT64_C(0x0d6c8009d9a94f5a) }, { 3, UINT64_C(0x85676696d7fb7e2d) },
		{ 4, UINT64_C(0xcf2794e0277187b7) }, { 7, UINT64_C(0xab0200f58b01d137) },
		{ 8, UINT64_C(0x93f5f5799a932462) }, { 15, UINT64_C(0xa129ca6149be45e5) },
		{ 16, UINT64_C(0x3f2acc7f57c29bdb) },
	};
	uint8_t key[16], msg[16];
	for (size_t i = 0; i < 16; i++)
		key[i] = msg[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint64_t h = siphash24(key, msg, v[i].n);
		if (h != v[i].h)
			fail_msg("n=%zu: got %016llx, want %016llx", v[i].n, (unsigned long long)h,
				 (unsigned long long)v[i].h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_rows),
		cmocka_unit_test(test_format_parses_back),
		cmocka_unit_test(test_bucket_matches_model),
		cmocka_unit_test(test_bucket_burst_then_rate),
		cmocka_unit_test(test_siphash_vectors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

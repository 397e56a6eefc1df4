/* prng.h - the seeded generator of the unit tests' property tests.
 *
 * xorshift64*; the seed comes from HOPCACHE_SEED (to replay a run) or the
 * clock and pid, and is printed, as are the rounds (HOPCACHE_ROUNDS). */
#ifndef HOPCACHE_TEST_PRNG_H
#define HOPCACHE_TEST_PRNG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* A number in [0, n), 0 when n is 0. */
static inline size_t rnd_below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

/* Seed the generator for test `name`, print the seed and the rounds
 * (HOPCACHE_ROUNDS, else dflt), and return the rounds. *seed_out gets the
 * seed, for failure messages. */
static inline unsigned prng_start(const char *name, unsigned dflt, uint64_t *seed_out)
{
	const char *env = getenv("HOPCACHE_SEED");
	uint64_t seed = env != NULL ? strtoull(env, NULL, 10)
				    : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (seed == 0)
		seed = 1;
	const char *renv = getenv("HOPCACHE_ROUNDS");
	unsigned rounds = renv != NULL ? (unsigned)strtoul(renv, NULL, 10) : dflt;
	printf("%s: seed %llu (HOPCACHE_SEED=%llu to replay), %u rounds\n", name,
	       (unsigned long long)seed, (unsigned long long)seed, rounds);
	fflush(stdout);
	rng_state = seed;
	*seed_out = seed;
	return rounds;
}

#endif

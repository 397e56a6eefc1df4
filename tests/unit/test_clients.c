/* test_clients.c - the shared client table (src/proc/clients.c): counts per
 * address summed over worker slots, checked against a plain array model over
 * random opens and closes in random slots (and slots reaped); the limit;
 * buckets by address and by user that several processes share; the top
 * clients; and a table that fills up lets clients through untracked while
 * every tracked count stays exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "clients.h"
#include "prng.h"

#define SLOTS 6
#define ADDRS 40

static struct sockaddr_storage addr_v4(unsigned i)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(0x0a000000u + i);
	return ss;
}

static struct sockaddr_storage addr_v6(unsigned i)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_addr.s6_addr[0] = 0x20;
	s6->sin6_addr.s6_addr[1] = 0x01;
	s6->sin6_addr.s6_addr[12] = (uint8_t)(i >> 24);
	s6->sin6_addr.s6_addr[13] = (uint8_t)(i >> 16);
	s6->sin6_addr.s6_addr[14] = (uint8_t)(i >> 8);
	s6->sin6_addr.s6_addr[15] = (uint8_t)i;
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void test_counts_match_model(void **state)
{
	(void)state;
	uint64_t seed;
	unsigned rounds = prng_start("client table vs model", 20, &seed);
	for (unsigned round = 0; round < rounds; round++) {
		struct clients *cl = clients_create(SLOTS);
		assert_non_null(cl);
		unsigned model[SLOTS][ADDRS] = { { 0 } };
		bool open[SLOTS] = { false };
		unsigned limit = (unsigned)rnd_below(6); /* 0: none */
		for (unsigned op = 0; op < 3000; op++) {
			unsigned s = (unsigned)rnd_below(SLOTS), a = (unsigned)rnd_below(ADDRS);
			struct sockaddr_storage sa = a % 2 ? addr_v6(a) : addr_v4(a);
			if (!open[s]) {
				clients_slot_open(cl, s);
				open[s] = true;
				continue;
			}
			unsigned total = 0;
			for (unsigned k = 0; k < SLOTS; k++)
				total += open[k] ? model[k][a] : 0;
			size_t what = rnd_below(20);
			if (what < 10) {
				enum clients_admit r = clients_conn_open(cl, s, SA(sa), limit);
				enum clients_admit want = limit > 0 && total >= limit ? CLIENTS_OVER
										     : CLIENTS_ADMITTED;
				if (r != want)
					fail_msg("seed %llu round %u op %u: open %u in slot %u (total %u, "
						 "limit %u): got %d, want %d",
						 (unsigned long long)seed, round, op, a, s, total, limit, r,
						 want);
				if (r == CLIENTS_ADMITTED)
					model[s][a]++;
			} else if (what < 19) {
				if (model[s][a] > 0) {
					clients_conn_close(cl, s, SA(sa));
					model[s][a]--;
				}
			} else {
				clients_slot_close(cl, s); /* the worker died */
				memset(model[s], 0, sizeof(model[s]));
				open[s] = false;
			}
			for (unsigned b = 0; b < ADDRS; b += 7) {
				struct sockaddr_storage sb = b % 2 ? addr_v6(b) : addr_v4(b);
				unsigned want = 0;
				for (unsigned k = 0; k < SLOTS; k++)
					want += open[k] ? model[k][b] : 0;
				unsigned got = clients_conn_count(cl, SA(sb));
				if (got != want)
					fail_msg("seed %llu round %u op %u: address %u: count %u, model %u",
						 (unsigned long long)seed, round, op, b, got, want);
			}
		}
		clients_destroy(cl);
	}
}

static void test_ipv4_and_mapped_are_one_client(void **state)
{
	(void)state;
	struct clients *cl = clients_create(2);
	clients_slot_open(cl, 0);
	clients_slot_open(cl, 1);
	struct sockaddr_storage v4 = addr_v4(5), m;
	memset(&m, 0, sizeof(m));
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m;
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:10.0.0.5", &s6->sin6_addr);
	assert_int_equal(clients_conn_open(cl, 0, SA(v4), 2), CLIENTS_ADMITTED);
	assert_int_equal(clients_conn_open(cl, 1, SA(m), 2), CLIENTS_ADMITTED);
	assert_int_equal(clients_conn_open(cl, 1, SA(v4), 2), CLIENTS_OVER);
	struct clients_top top[4];
	assert_int_equal(clients_top(cl, top, 4), 1);
	assert_string_equal(top[0].ip, "10.0.0.5");
	assert_int_equal(top[0].conns, 2);
	clients_destroy(cl);
}

static void test_top_clients(void **state)
{
	(void)state;
	struct clients *cl = clients_create(3);
	for (unsigned s = 0; s < 3; s++)
		clients_slot_open(cl, s);
	/* address i has i connections, spread over the slots */
	for (unsigned i = 1; i <= 12; i++) {
		struct sockaddr_storage sa = i % 3 ? addr_v4(i) : addr_v6(i);
		for (unsigned k = 0; k < i; k++)
			assert_int_equal(clients_conn_open(cl, k % 3, SA(sa), 0), CLIENTS_ADMITTED);
	}
	struct clients_top top[5];
	assert_int_equal(clients_top(cl, top, 5), 5);
	static const char *const want[] = { "2001::c", "10.0.0.11", "10.0.0.10", "2001::9",
					    "10.0.0.8" };
	for (unsigned i = 0; i < 5; i++) {
		assert_string_equal(top[i].ip, want[i]);
		assert_int_equal(top[i].conns, 12 - i);
	}
	clients_slot_close(cl, 0);
	assert_int_equal(clients_top(cl, top, 1), 1);
	assert_int_equal(top[0].conns, 8); /* 12 over three slots: 4 were in slot 0 */
	clients_destroy(cl);
}

/* More distinct addresses than one slot's table holds: the overflow is let
 * through untracked, and every tracked address keeps an exact count. */
static void test_full_table_untracked(void **state)
{
	(void)state;
	struct clients *cl = clients_create(1);
	clients_slot_open(cl, 0);
	unsigned n = 20000, tracked = 0, untracked = 0;
	static bool in[20000];
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_storage sa = addr_v4(i);
		enum clients_admit r = clients_conn_open(cl, 0, SA(sa), 1);
		assert_true(r != CLIENTS_OVER);
		in[i] = r == CLIENTS_ADMITTED;
		tracked += in[i];
		untracked += !in[i];
	}
	assert_true(untracked > 0);
	assert_true(tracked >= 8192 * 3 / 4); /* the windows fill most of the table */
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_storage sa = addr_v4(i);
		assert_int_equal(clients_conn_count(cl, SA(sa)), in[i] ? 1 : 0);
		if (in[i])
			assert_int_equal(clients_conn_open(cl, 0, SA(sa), 1), CLIENTS_OVER);
	}
	/* closing frees the places for new addresses */
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_storage sa = addr_v4(i);
		if (in[i])
			clients_conn_close(cl, 0, SA(sa));
	}
	struct sockaddr_storage late = addr_v4(n + 1);
	assert_int_equal(clients_conn_open(cl, 0, SA(late), 1), CLIENTS_ADMITTED);
	clients_destroy(cl);
}

/* Buckets are shared by processes: a child takes two tokens, the parent
 * finds the bucket with one left. Users and addresses have their own. */
static void test_buckets_shared_by_processes(void **state)
{
	(void)state;
	struct clients *cl = clients_create(2);
	struct rate r = { 1, 'h', 3 };
	struct sockaddr_storage sa = addr_v4(9);
	int64_t now = INT64_C(100000000000), wait = 0;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		bool ok = clients_take_addr(cl, SA(sa), &r, now, &wait) == CLIENTS_TOKEN &&
			  clients_take_addr(cl, SA(sa), &r, now, &wait) == CLIENTS_TOKEN &&
			  clients_take_user(cl, "alice", 5, &r, now, &wait) == CLIENTS_TOKEN;
		_exit(ok ? 0 : 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(clients_take_addr(cl, SA(sa), &r, now, &wait), CLIENTS_TOKEN);
	assert_int_equal(clients_take_addr(cl, SA(sa), &r, now, &wait), CLIENTS_EMPTY);
	assert_int_equal(wait, INT64_C(3600000000000));
	assert_int_equal(clients_take_user(cl, "alice", 5, &r, now, &wait), CLIENTS_TOKEN);
	assert_int_equal(clients_take_user(cl, "alice", 5, &r, now, &wait), CLIENTS_TOKEN);
	assert_int_equal(clients_take_user(cl, "alice", 5, &r, now, &wait), CLIENTS_EMPTY);
	assert_int_equal(clients_take_user(cl, "alicf", 5, &r, now, &wait), CLIENTS_TOKEN);
	struct sockaddr_storage other = addr_v4(10);
	assert_int_equal(clients_take_addr(cl, SA(other), &r, now, &wait), CLIENTS_TOKEN);
	clients_destroy(cl);
}

/* A bucket full for a second gives its place to other keys; its key, back
 * later, starts full again (which is what a full bucket is). */
static void test_bucket_places_recycled(void **state)
{
	(void)state;
	struct clients *cl = clients_create(1);
	struct rate r = { 1000, 's', 1 };
	int64_t now = INT64_C(100000000000), wait;
	unsigned room = 0;
	/* 100000 users at one instant: the table (32768) fills up */
	for (unsigned i = 0; i < 100000; i++) {
		char name[16];
		int l = snprintf(name, sizeof(name), "u%u", i);
		enum clients_take t = clients_take_user(cl, name, (size_t)l, &r, now, &wait);
		assert_true(t != CLIENTS_EMPTY);
		room += t == CLIENTS_TOKEN;
	}
	assert_true(room < 100000);
	/* two seconds later every bucket is reusable: 8000 new users (a quarter
	 * of the table) all find one */
	now += INT64_C(2000000000);
	for (unsigned i = 0; i < 8000; i++) {
		char name[16];
		int l = snprintf(name, sizeof(name), "v%u", i);
		if (clients_take_user(cl, name, (size_t)l, &r, now, &wait) != CLIENTS_TOKEN)
			fail_msg("user v%u found no bucket after the others refilled", i);
	}
	clients_destroy(cl);
}

/* Three processes (three worker slots) admit and release one client as fast
 * as they can against a limit of 4: the connections admitted at any moment,
 * counted by the processes themselves in a shared word, never pass it. */
static void test_limit_never_passed_under_races(void **state)
{
	(void)state;
	struct clients *cl = clients_create(3);
	int *live = mmap(NULL, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
	assert_true(live != MAP_FAILED);
	live[0] = live[1] = 0;
	struct sockaddr_storage sa = addr_v4(77);
	pid_t kids[3];
	for (unsigned s = 0; s < 3; s++) {
		clients_slot_open(cl, s);
		kids[s] = fork();
		assert_true(kids[s] >= 0);
		if (kids[s] != 0)
			continue;
		unsigned held = 0;
		for (unsigned i = 0; i < 30000; i++) {
			if (held < 3 && clients_conn_open(cl, s, SA(sa), 4) == CLIENTS_ADMITTED) {
				held++;
				int now = __atomic_add_fetch(&live[0], 1, __ATOMIC_SEQ_CST);
				if (now > 4)
					__atomic_store_n(&live[1], now, __ATOMIC_SEQ_CST);
			} else if (held > 0) {
				__atomic_sub_fetch(&live[0], 1, __ATOMIC_SEQ_CST);
				clients_conn_close(cl, s, SA(sa));
				held--;
			}
		}
		_exit(0);
	}
	for (unsigned s = 0; s < 3; s++) {
		int st;
		assert_int_equal(waitpid(kids[s], &st, 0), kids[s]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	if (live[1] != 0)
		fail_msg("%d connections of one client were admitted at once, limit 4", live[1]);
	munmap(live, 2 * sizeof(int));
	clients_destroy(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts_match_model),
		cmocka_unit_test(test_ipv4_and_mapped_are_one_client),
		cmocka_unit_test(test_top_clients),
		cmocka_unit_test(test_full_table_untracked),
		cmocka_unit_test(test_buckets_shared_by_processes),
		cmocka_unit_test(test_bucket_places_recycled),
		cmocka_unit_test(test_limit_never_passed_under_races),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

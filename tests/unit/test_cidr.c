/* test_cidr.c - address range parsing and matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "cidr.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

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
	return ss;
}

static void test_parse(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok;
		unsigned prefix;
	} rows[] = {
		{ "127.0.0.1", 0, 32 },     { "10.0.0.0/8", 0, 8 },      { "0.0.0.0/0", 0, 0 },
		{ "::1", 0, 128 },          { "2001:db8::/32", 0, 32 },  { "::/0", 0, 0 },
		{ "10.1.2.3/8", -1, 0 },    { "10.0.0.0/33", -1, 0 },    { "2001:db8::1/32", -1, 0 },
		{ "10.0.0.0/", -1, 0 },     { "10.0.0.0/-1", -1, 0 },    { "10.0.0.0/8x", -1, 0 },
		{ "localhost", -1, 0 },     { "", -1, 0 },               { "1.2.3.4/0008", -1, 0 },
		{ "::/129", -1, 0 },        { "256.0.0.0", -1, 0 },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct cidr c;
		int r = cidr_parse(rows[i].in, &c);
		if (r != rows[i].ok)
			fail_msg("cidr_parse(%s): got %d, want %d", rows[i].in, r, rows[i].ok);
		if (r == 0 && c.prefix != rows[i].prefix)
			fail_msg("cidr_parse(%s): got prefix %u, want %u", rows[i].in, c.prefix,
				 rows[i].prefix);
	}
}

static void test_match(void **state)
{
	(void)state;
	static const struct {
		const char *range, *addr;
		bool want;
	} rows[] = {
		{ "10.0.0.0/8", "10.255.255.255", true },
		{ "10.0.0.0/8", "11.0.0.0", false },
		{ "10.0.0.0/8", "9.255.255.255", false },
		{ "192.168.1.0/25", "192.168.1.127", true },
		{ "192.168.1.0/25", "192.168.1.128", false },
		{ "127.0.0.1", "127.0.0.1", true },
		{ "127.0.0.1", "127.0.0.2", false },
		{ "0.0.0.0/0", "8.8.8.8", true },
		{ "0.0.0.0/0", "::1", false },
		{ "127.0.0.1", "::ffff:127.0.0.1", true }, /* IPv4-mapped */
		{ "10.0.0.0/8", "::ffff:10.1.2.3", true },
		{ "::1", "::1", true },
		{ "::1", "127.0.0.1", false },
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/32", "2001:db9::1", false },
		{ "2001:db8::/31", "2001:db9::1", true },
		{ "fe80::/10", "febf::1", true },
		{ "fe80::/10", "fec0::1", false },
	};
	for (size_t i = 0; i < N(rows); i++) {
		struct cidr c;
		assert_int_equal(cidr_parse(rows[i].range, &c), 0);
		struct sockaddr_storage ss = addr(rows[i].addr);
		bool got = cidr_match(&c, (struct sockaddr *)&ss);
		if (got != rows[i].want)
			fail_msg("%s in %s: got %d, want %d", rows[i].addr, rows[i].range, got,
				 rows[i].want);
	}
	struct cidr list[2];
	assert_int_equal(cidr_parse("10.0.0.0/8", &list[0]), 0);
	assert_int_equal(cidr_parse("::1", &list[1]), 0);
	struct sockaddr_storage a = addr("::1"), b = addr("192.0.2.1");
	assert_true(cidr_list_match(list, 2, (struct sockaddr *)&a));
	assert_false(cidr_list_match(list, 2, (struct sockaddr *)&b));
	assert_false(cidr_list_match(list, 0, (struct sockaddr *)&a));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

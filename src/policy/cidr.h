/* cidr.h - client address ranges (IPv4 and IPv6, with prefix lengths). */
#ifndef HOPCACHE_CIDR_H
#define HOPCACHE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order, host bits cleared */
	unsigned prefix;   /* 0..32 or 0..128 */
};

/* Parse "10.0.0.0/8", "2001:db8::/32", or a single address (full prefix).
 * Host bits set beyond the prefix are an error. Returns 0 or -1. */
int cidr_parse(const char *s, struct cidr *out);

/* Does the address fall in the range? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) matches IPv4 ranges. */
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);

bool cidr_list_match(const struct cidr *list, size_t n, const struct sockaddr *sa);

#endif

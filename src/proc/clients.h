/* clients.h - what all workers know about each client, in a shared memory
 * region the master maps before it forks (like the metrics): the open
 * connections of each client address and the token buckets of
 * [limits] requests_per_client and requests_per_user.
 *
 * Connections are counted in one table per worker slot, written only by that
 * worker and read by all; a client's count is the sum over the slots in use.
 * So no lock is shared between processes, and a worker that dies (even by
 * SIGKILL) takes its counts with it: the master clears its slot's table when
 * it reaps it. The buckets are one 64-bit word each (rate.h), updated with a
 * compare-and-swap.
 *
 * Each table is a fixed array; a key is placed by its keyed hash (SipHash,
 * secret key drawn at start) and looked for in a window of a few entries
 * after that place, so every operation costs a bounded number of compares.
 * When a window is full, the key is not tracked: the connection or request
 * is let through, and counted as "untracked" in the metrics. A connection
 * is counted before the limit is checked, so workers admitting the same
 * client at the same instant never take it past the limit (at worst both
 * refuse, one connection short of it). */
#ifndef HOPCACHE_CLIENTS_H
#define HOPCACHE_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "rate.h"

struct clients;

/* Master: map the region with room for nslots worker slots (the metrics'
 * slot numbers). NULL (errno set) on failure. */
struct clients *clients_create(unsigned nslots);
void clients_destroy(struct clients *cl);

/* Master: a worker takes slot `slot` (before fork), or it was reaped (its
 * connections are gone). */
void clients_slot_open(struct clients *cl, unsigned slot);
void clients_slot_close(struct clients *cl, unsigned slot);

/* A client connection from sa opens in the worker of `slot`. limit 0: no
 * limit (still counted, for the status page). */
enum clients_admit {
	CLIENTS_ADMITTED,  /* counted: clients_conn_close when it closes */
	CLIENTS_OVER,      /* the client has `limit` connections already */
	CLIENTS_UNTRACKED, /* the table has no room: let in, not counted */
};
enum clients_admit clients_conn_open(struct clients *cl, unsigned slot,
				     const struct sockaddr *sa, unsigned limit);
void clients_conn_close(struct clients *cl, unsigned slot, const struct sockaddr *sa);

/* The client's connections over all workers. */
unsigned clients_conn_count(const struct clients *cl, const struct sockaddr *sa);

/* One request against a bucket of rate r at `now` (CLOCK_MONOTONIC
 * nanoseconds): the client address's, or the user's (name[0..len)). */
enum clients_take {
	CLIENTS_TOKEN,     /* the bucket had a token */
	CLIENTS_EMPTY,     /* it is empty: *wait_ns until it has one */
	CLIENTS_NO_ROOM,   /* the table has no room: let through, not counted */
};
enum clients_take clients_take_addr(struct clients *cl, const struct sockaddr *sa,
				    const struct rate *r, int64_t now, int64_t *wait_ns);
enum clients_take clients_take_user(struct clients *cl, const char *name, size_t len,
				    const struct rate *r, int64_t now, int64_t *wait_ns);

/* The clients with the most open connections, most first: up to n into
 * out; how many. */
struct clients_top {
	char ip[INET6_ADDRSTRLEN];
	unsigned conns;
};
size_t clients_top(const struct clients *cl, struct clients_top *out, size_t n);

/* An address as the 16 bytes the tables key it by (IPv4 as ::ffff:a.b.c.d).
 * False for a family other than AF_INET/AF_INET6. */
bool clients_addr_key(const struct sockaddr *sa, uint8_t key[16]);

#endif

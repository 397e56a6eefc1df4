/* clients.c - the shared client table: connections per client address (one
 * table per worker slot) and request buckets (one word each). See clients.h. */
#include "clients.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "siphash.h"

#define CONN_ENTRIES 8192u    /* per worker slot: twice the default max_connections */
#define CONN_WINDOW 32u
#define BUCKET_ENTRIES 32768u /* per kind (address, user) */
#define BUCKET_WINDOW 16u
/* A bucket full for this long may go to another key; a claim older than
 * this was abandoned (its worker died in the middle of it). */
#define RECLAIM_NS INT64_C(1000000000)

struct conn_entry {
	uint64_t k0, k1; /* the address (clients_addr_key) */
	int32_t count;   /* 0: free for any key */
	uint32_t pad;
};

struct bucket {
	uint64_t k0, k1; /* the address, or the user name's two hashes */
	int64_t tat;     /* rate.h's state; 0 never used; < 0 being claimed since -tat */
};

enum { KIND_ADDR, KIND_USER };

/* ::ffff:0:0/96, the prefix of an IPv4 address as a key */
static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

struct clients {
	size_t size;      /* of the mapping */
	unsigned nslots;
	uint8_t key[16];  /* the hash key */
	uint8_t key2[16]; /* the second hash of a user name */
	uint32_t high;    /* slots below this have been in use */
	uint32_t *used;   /* per slot: a worker holds it */
	struct conn_entry *conns;       /* nslots x CONN_ENTRIES */
	struct bucket *buckets[2];      /* BUCKET_ENTRIES each */
};

static uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static int32_t ld32(const int32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

struct clients *clients_create(unsigned nslots)
{
	size_t head = (sizeof(struct clients) + 63) & ~(size_t)63;
	size_t used = ((nslots * sizeof(uint32_t)) + 63) & ~(size_t)63;
	size_t buckets = 2 * (size_t)BUCKET_ENTRIES * sizeof(struct bucket);
	size_t conns = (size_t)nslots * CONN_ENTRIES * sizeof(struct conn_entry);
	size_t size = head + used + buckets + conns;
	/* pages are touched only as slots and buckets are used */
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	struct clients *cl = (struct clients *)(void *)p;
	cl->size = size;
	cl->nslots = nslots;
	if (getrandom(cl->key, sizeof(cl->key), 0) != (ssize_t)sizeof(cl->key) ||
	    getrandom(cl->key2, sizeof(cl->key2), 0) != (ssize_t)sizeof(cl->key2)) {
		int e = errno;
		munmap(p, size);
		errno = e;
		return NULL;
	}
	cl->used = (uint32_t *)(void *)(p + head);
	cl->buckets[KIND_ADDR] = (struct bucket *)(void *)(p + head + used);
	cl->buckets[KIND_USER] = cl->buckets[KIND_ADDR] + BUCKET_ENTRIES;
	cl->conns = (struct conn_entry *)(void *)(p + head + used + buckets);
	return cl;
}

void clients_destroy(struct clients *cl)
{
	if (cl != NULL)
		munmap(cl, cl->size);
}

static struct conn_entry *slot_table(const struct clients *cl, unsigned slot)
{
	return cl->conns + (size_t)slot * CONN_ENTRIES;
}

/* Forget a slot's counts, touching only the pages it used. */
static void slot_clear(struct clients *cl, unsigned slot)
{
	struct conn_entry *t = slot_table(cl, slot);
	for (size_t i = 0; i < CONN_ENTRIES; i++)
		if (ld32(&t[i].count) != 0)
			__atomic_store_n(&t[i].count, 0, __ATOMIC_RELEASE);
}

void clients_slot_open(struct clients *cl, unsigned slot)
{
	if (cl == NULL || slot >= cl->nslots)
		return;
	slot_clear(cl, slot);
	__atomic_store_n(&cl->used[slot], 1, __ATOMIC_RELEASE);
	if (slot + 1 > __atomic_load_n(&cl->high, __ATOMIC_ACQUIRE))
		__atomic_store_n(&cl->high, slot + 1, __ATOMIC_RELEASE);
}

void clients_slot_close(struct clients *cl, unsigned slot)
{
	if (cl == NULL || slot >= cl->nslots)
		return;
	__atomic_store_n(&cl->used[slot], 0, __ATOMIC_RELEASE);
	slot_clear(cl, slot);
}

bool clients_addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return true;
	}
	if (sa->sa_family == AF_INET) {
		memcpy(key, v4_mapped, sizeof(v4_mapped));
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	return false;
}

struct key {
	uint64_t k0, k1, h; /* the key and where its window starts */
};

static bool addr_key(const struct clients *cl, const struct sockaddr *sa, struct key *k)
{
	uint8_t a[16];
	if (!clients_addr_key(sa, a))
		return false;
	memcpy(&k->k0, a, 8);
	memcpy(&k->k1, a + 8, 8);
	k->h = siphash24(cl->key, a, sizeof(a));
	return true;
}

static bool conn_match(const struct conn_entry *e, const struct key *k)
{
	return ld64(&e->k0) == k->k0 && ld64(&e->k1) == k->k1;
}

/* The key's count in one slot's table. */
static unsigned slot_count(const struct clients *cl, unsigned slot, const struct key *k)
{
	const struct conn_entry *t = slot_table(cl, slot);
	for (unsigned i = 0; i < CONN_WINDOW; i++) {
		const struct conn_entry *e = &t[(k->h + i) % CONN_ENTRIES];
		int32_t n = ld32(&e->count);
		if (n > 0 && conn_match(e, k))
			return (unsigned)n;
	}
	return 0;
}

static unsigned count_all(const struct clients *cl, const struct key *k)
{
	unsigned high = __atomic_load_n(&cl->high, __ATOMIC_ACQUIRE), n = 0;
	for (unsigned s = 0; s < high && s < cl->nslots; s++)
		if (__atomic_load_n(&cl->used[s], __ATOMIC_ACQUIRE))
			n += slot_count(cl, s, k);
	return n;
}

unsigned clients_conn_count(const struct clients *cl, const struct sockaddr *sa)
{
	struct key k;
	if (cl == NULL || !addr_key(cl, sa, &k))
		return 0;
	return count_all(cl, &k);
}

enum clients_admit clients_conn_open(struct clients *cl, unsigned slot,
				     const struct sockaddr *sa, unsigned limit)
{
	struct key k;
	if (cl == NULL || slot >= cl->nslots || !addr_key(cl, sa, &k))
		return CLIENTS_UNTRACKED;
	if (limit > 0 && count_all(cl, &k) >= limit)
		return CLIENTS_OVER;
	/* this worker is the table's only writer */
	struct conn_entry *t = slot_table(cl, slot), *free_e = NULL, *e = NULL;
	for (unsigned i = 0; i < CONN_WINDOW && e == NULL; i++) {
		struct conn_entry *x = &t[(k.h + i) % CONN_ENTRIES];
		if (conn_match(x, &k))
			e = x;
		else if (free_e == NULL && ld32(&x->count) == 0)
			free_e = x;
	}
	if (e == NULL && free_e == NULL)
		return CLIENTS_UNTRACKED;
	if (e == NULL) {
		e = free_e;
		__atomic_store_n(&e->k0, k.k0, __ATOMIC_RELEASE);
		__atomic_store_n(&e->k1, k.k1, __ATOMIC_RELEASE);
	}
	int32_t n = ld32(&e->count);
	__atomic_store_n(&e->count, n + 1, __ATOMIC_SEQ_CST);
	/* Count first, then look: of two workers admitting the client at once,
	 * at least one sees the other's count, so the limit is never passed
	 * (both may refuse, the worst case being one connection too few). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (limit > 0 && count_all(cl, &k) > limit) {
		__atomic_store_n(&e->count, n, __ATOMIC_RELEASE);
		return CLIENTS_OVER;
	}
	return CLIENTS_ADMITTED;
}

void clients_conn_close(struct clients *cl, unsigned slot, const struct sockaddr *sa)
{
	struct key k;
	if (cl == NULL || slot >= cl->nslots || !addr_key(cl, sa, &k))
		return;
	struct conn_entry *t = slot_table(cl, slot);
	for (unsigned i = 0; i < CONN_WINDOW; i++) {
		struct conn_entry *e = &t[(k.h + i) % CONN_ENTRIES];
		int32_t n = ld32(&e->count);
		if (n > 0 && conn_match(e, &k)) {
			__atomic_store_n(&e->count, n - 1, __ATOMIC_RELEASE);
			return;
		}
	}
}

/* ---- buckets ------------------------------------------------------------- */

static bool bucket_match(const struct bucket *b, const struct key *k)
{
	return ld64(&b->k0) == k->k0 && ld64(&b->k1) == k->k1;
}

/* Charge one request to the key's bucket in tab. A key keeps its bucket
 * while it is in use; a bucket full for RECLAIM_NS (or never used) is
 * claimed by setting its state to -now, then given the key and a fresh
 * state; the claim is what keeps two processes from giving one bucket to two
 * keys. */
static enum clients_take take(struct bucket *tab, const struct key *k, const struct rate *r,
			      int64_t now, int64_t *wait_ns)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		struct bucket *found = NULL, *free_b = NULL;
		int64_t free_tat = 0;
		for (unsigned i = 0; i < BUCKET_WINDOW && found == NULL; i++) {
			struct bucket *b = &tab[(k->h + i) % BUCKET_ENTRIES];
			int64_t tat = __atomic_load_n(&b->tat, __ATOMIC_ACQUIRE);
			bool reclaimable = tat < 0 ? now + tat > RECLAIM_NS : now - tat >= RECLAIM_NS;
			if (tat > 0 && bucket_match(b, k))
				found = b;
			else if (free_b == NULL && reclaimable)
				free_b = b, free_tat = tat;
		}
		if (found != NULL) {
			int64_t tat = __atomic_load_n(&found->tat, __ATOMIC_ACQUIRE);
			while (tat > 0 && bucket_match(found, k)) {
				int64_t next = tat;
				if (!rate_take(r, now, &next, wait_ns))
					return CLIENTS_EMPTY;
				if (__atomic_compare_exchange_n(&found->tat, &tat, next, false,
								__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
					return CLIENTS_TOKEN;
			}
			continue; /* it changed hands meanwhile: look again */
		}
		if (free_b == NULL)
			return CLIENTS_NO_ROOM;
		if (!__atomic_compare_exchange_n(&free_b->tat, &free_tat, -now, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue;
		__atomic_store_n(&free_b->k0, k->k0, __ATOMIC_RELEASE);
		__atomic_store_n(&free_b->k1, k->k1, __ATOMIC_RELEASE);
		int64_t next = 0;
		rate_take(r, now, &next, wait_ns); /* a fresh bucket has a token */
		__atomic_store_n(&free_b->tat, next, __ATOMIC_RELEASE);
		return CLIENTS_TOKEN;
	}
	return CLIENTS_NO_ROOM;
}

enum clients_take clients_take_addr(struct clients *cl, const struct sockaddr *sa,
				    const struct rate *r, int64_t now, int64_t *wait_ns)
{
	struct key k;
	if (cl == NULL || !addr_key(cl, sa, &k))
		return CLIENTS_NO_ROOM;
	return take(cl->buckets[KIND_ADDR], &k, r, now, wait_ns);
}

enum clients_take clients_take_user(struct clients *cl, const char *name, size_t len,
				    const struct rate *r, int64_t now, int64_t *wait_ns)
{
	if (cl == NULL)
		return CLIENTS_NO_ROOM;
	struct key k = { siphash24(cl->key, name, len), siphash24(cl->key2, name, len), 0 };
	k.h = k.k0;
	return take(cl->buckets[KIND_USER], &k, r, now, wait_ns);
}

/* ---- the status page's top clients --------------------------------------- */

struct tally {
	uint64_t k0, k1;
	unsigned n;
};

static int by_key(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;
	if (x->k0 != y->k0)
		return x->k0 < y->k0 ? -1 : 1;
	return x->k1 < y->k1 ? -1 : x->k1 > y->k1;
}

static int by_count(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;
	return x->n > y->n ? -1 : x->n < y->n;
}

/* Every counted entry of the slots in use (a key once per slot): a heap
 * array of *len, or NULL when out of memory. */
static struct tally *collect(const struct clients *cl, size_t *len)
{
	unsigned high = __atomic_load_n(&cl->high, __ATOMIC_ACQUIRE);
	size_t cap = 256, n = 0;
	struct tally *t = malloc(cap * sizeof(*t));
	if (t == NULL)
		return NULL;
	for (unsigned s = 0; s < high && s < cl->nslots; s++) {
		if (!__atomic_load_n(&cl->used[s], __ATOMIC_ACQUIRE))
			continue;
		const struct conn_entry *e = slot_table(cl, s);
		for (size_t i = 0; i < CONN_ENTRIES; i++) {
			int32_t c = ld32(&e[i].count);
			if (c <= 0)
				continue;
			if (n == cap) {
				struct tally *g = realloc(t, 2 * cap * sizeof(*t));
				if (g == NULL) {
					free(t);
					return NULL;
				}
				t = g;
				cap *= 2;
			}
			t[n++] = (struct tally){ ld64(&e[i].k0), ld64(&e[i].k1), (unsigned)c };
		}
	}
	*len = n;
	return t;
}

size_t clients_top(const struct clients *cl, struct clients_top *out, size_t n)
{
	if (cl == NULL || n == 0)
		return 0;
	size_t len = 0;
	struct tally *t = collect(cl, &len);
	if (t == NULL)
		return 0;
	qsort(t, len, sizeof(*t), by_key);
	size_t m = 0;
	for (size_t i = 0; i < len; i++) {
		if (m > 0 && t[m - 1].k0 == t[i].k0 && t[m - 1].k1 == t[i].k1)
			t[m - 1].n += t[i].n;
		else
			t[m++] = t[i];
	}
	qsort(t, m, sizeof(*t), by_count);
	size_t k = m < n ? m : n;
	for (size_t i = 0; i < k; i++) {
		uint8_t a[16];
		memcpy(a, &t[i].k0, 8);
		memcpy(a + 8, &t[i].k1, 8);
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0)
			inet_ntop(AF_INET, a + 12, out[i].ip, sizeof(out[i].ip));
		else
			inet_ntop(AF_INET6, a, out[i].ip, sizeof(out[i].ip));
		out[i].conns = t[i].n;
	}
	free(t);
	return k;
}

/* fuzz_proxy_proto.c - libFuzzer target: the PROXY protocol header parser.
 *
 * Beyond "no crash, no over-read": the outputs agree with the answer (used
 * within the input and the limits, why only on an error, *out only on OK and
 * then a consistent address pair), NEED_MORE only below the largest header,
 * the same bytes give the same answer, and an answer once decided does not
 * change when bytes are cut after the header or added after the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct answer {
	enum proxy_proto_result r;
	size_t used;
	const char *why;
	struct proxy_proto_info info;
};

/* Parse an exactly sized copy of data[0..len), then pad bytes of pad. */
static void parse(const uint8_t *data, size_t len, size_t pad, uint8_t padbyte, struct answer *a)
{
	uint8_t *copy = malloc(len + pad ? len + pad : 1);

	if (!copy)
		abort();
	if (len)
		memcpy(copy, data, len);
	memset(copy + len, padbyte, pad);
	memset(a, 0, sizeof(*a));
	memset(&a->info, 0x5a, sizeof(a->info));
	a->r = proxy_proto_parse(copy, len + pad, &a->info, &a->used, &a->why);
	free(copy);
}

/* Abort unless a is a consistent answer for an input of len bytes. */
static void check(const struct answer *a, size_t len)
{
	struct proxy_proto_info untouched;

	memset(&untouched, 0x5a, sizeof(untouched));
	switch (a->r) {
	case PROXY_PROTO_NEED_MORE:
		if (len >= PROXY_PROTO_MAX || a->used != 0 || a->why != NULL)
			abort();
		break;
	case PROXY_PROTO_ERROR:
		if (a->used != 0 || a->why == NULL || a->why[0] == '\0')
			abort();
		break;
	case PROXY_PROTO_OK:
		if (a->why != NULL || a->used == 0 || a->used > len || a->used > PROXY_PROTO_MAX)
			abort();
		if (a->info.version == 1 ? a->used > PROXY_PROTO_V1_MAX || a->used < 15
					 : a->info.version != 2 || a->used < 16)
			abort();
		if (a->info.local ? a->info.src.ss_family != AF_UNSPEC ||
					    a->info.dst.ss_family != AF_UNSPEC
				  : (a->info.src.ss_family != AF_INET &&
				     a->info.src.ss_family != AF_INET6) ||
					    a->info.dst.ss_family != a->info.src.ss_family)
			abort();
		return;
	default:
		abort();
	}
	if (memcmp(&a->info, &untouched, sizeof(untouched)) != 0)
		abort();
}

/* Abort unless b is the same decided answer as a. */
static void same(const struct answer *a, const struct answer *b)
{
	if (a->r != b->r || a->used != b->used || (a->why == NULL) != (b->why == NULL))
		abort();
	if (a->why != NULL && strcmp(a->why, b->why) != 0)
		abort();
	if (a->r == PROXY_PROTO_OK && memcmp(&a->info, &b->info, sizeof(a->info)) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer full, again, part;

	parse(data, size, 0, 0, &full);
	check(&full, size);
	/* deterministic */
	parse(data, size, 0, 0, &again);
	same(&full, &again);

	/* A header's own bytes decide it: the bytes after it do not matter,
	 * and every shorter prefix still needs more. */
	if (full.r == PROXY_PROTO_OK) {
		parse(data, full.used, 0, 0, &part);
		same(&full, &part);
		parse(data, full.used - 1, 0, 0, &part);
		if (part.r != PROXY_PROTO_NEED_MORE)
			abort();
	}

	/* A prefix is undecided or agrees with the whole input. */
	for (unsigned i = 0; i < 3 && size > 0; i++) {
		size_t cut = i == 0 ? size - 1 : (size_t)data[i % size] * size / 256;
		parse(data, cut, 0, 0, &part);
		check(&part, cut);
		if (part.r != PROXY_PROTO_NEED_MORE)
			same(&full, &part);
	}

	/* More bytes do not change a decided answer; an undecided one gets
	 * decided by enough of them. */
	parse(data, size, 64, size > 0 ? data[0] : 0, &part);
	check(&part, size + 64);
	if (full.r != PROXY_PROTO_NEED_MORE)
		same(&full, &part);
	if (full.r == PROXY_PROTO_NEED_MORE) {
		parse(data, size, PROXY_PROTO_MAX - size, '\r', &part);
		if (part.r == PROXY_PROTO_NEED_MORE)
			abort();
	}
	return 0;
}

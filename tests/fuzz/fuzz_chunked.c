/* fuzz_chunked.c - libFuzzer target: the incremental chunked decoder.
 *
 * The first byte seeds the sizes of the pieces fed to the decoder; the result
 * (decoded bytes, error, done, bytes left) must not depend on how the input
 * was split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct outcome {
	int err;
	int done;
	size_t consumed;
	size_t outlen;
};

/* Decode buf[0..len) in pieces from `seed` (0: all at once). */
static void decode(const char *buf, size_t len, unsigned seed, char *out, struct outcome *o)
{
	struct http_chunked c;
	size_t off = 0;
	uint32_t x = seed * 2654435761u + 1;

	http_chunked_init(&c, 32, 128);
	memset(o, 0, sizeof(*o));
	while (off < len) {
		size_t piece = len - off, end;

		if (seed) {
			x = x * 1103515245u + 12345u;
			piece = 1 + (x >> 16) % 7;
			if (piece > len - off)
				piece = len - off;
		}
		end = off + piece;
		while (off < end) {
			struct slice d;
			ssize_t r = http_chunked_step(&c, buf + off, end - off, &d);

			if (r < 0) {
				o->err = 1;
				o->consumed = off;
				return;
			}
			if ((size_t)r > end - off)
				abort();
			if (d.len) {
				if (d.p < buf + off || d.p + d.len > buf + off + (size_t)r)
					abort();
				memcpy(out + o->outlen, d.p, d.len);
				o->outlen += d.len;
			}
			off += (size_t)r;
			if (http_chunked_done(&c)) {
				struct slice d2;

				if (http_chunked_step(&c, buf + off, len - off, &d2) != 0 ||
				    d2.len != 0)
					abort();
				o->done = 1;
				o->consumed = off;
				return;
			}
			if (r == 0)
				abort(); /* bytes offered, none taken, not done */
		}
	}
	o->consumed = off;
}

/* Compare the whole-buffer decode with a split decode. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct outcome a, b;
	char *outa, *outb;
	unsigned seed;

	if (size < 1)
		return 0;
	seed = data[0] | 1u;
	data++;
	size--;
	outa = malloc(size + 1);
	outb = malloc(size + 1);
	if (!outa || !outb)
		abort();
	decode((const char *)data, size, 0, outa, &a);
	decode((const char *)data, size, seed, outb, &b);
	if (a.err != b.err || a.done != b.done || a.outlen != b.outlen ||
	    memcmp(outa, outb, a.outlen) != 0)
		abort();
	if (a.done && a.consumed != b.consumed)
		abort();
	if (a.outlen > size || a.consumed > size)
		abort();
	free(outa);
	free(outb);
	return 0;
}

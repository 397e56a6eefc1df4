/* fuzz_rate.c - libFuzzer target: the request rate syntax and the bucket
 * (src/proto/rate.c). Beyond "no crash": a rate that parses is off or
 * within the documented bounds, formats to text that parses back to the
 * same rate, and its bucket lets exactly `burst` requests through at one
 * instant, then says a positive wait. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct rate r, back;
	char why[256], text[64];
	if (rate_parse(s, &r, why, sizeof(why)) == 0) {
		rate_format(&r, text, sizeof(text));
		if (rate_parse(text, &back, why, sizeof(why)) != 0 || back.count != r.count ||
		    back.burst != r.burst || (r.count > 0 && back.unit != r.unit))
			abort();
		if (r.count > 0) {
			if (r.burst < 1 || r.burst > RATE_MAX_BURST)
				abort();
			int64_t tat = 0, now = INT64_C(1000000000), wait = 0;
			uint32_t n = r.burst < 5000 ? r.burst : 5000;
			for (uint32_t i = 0; i < n; i++)
				if (!rate_take(&r, now, &tat, &wait))
					abort();
			if (n == r.burst && (rate_take(&r, now, &tat, &wait) || wait <= 0))
				abort();
		}
	}
	free(s);
	return 0;
}

/* http_date.h - HTTP-date (RFC 9110 §5.6.7), parsed and formatted. Pure. */
#ifndef HOPCACHE_HTTP_DATE_H
#define HOPCACHE_HTTP_DATE_H

#include <stddef.h>
#include <stdint.h>

#include "slice.h"

/* HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, obsolete RFC 850 and asctime
 * forms). Returns seconds since the epoch, or -1 when invalid (including "0"
 * and dates before 1970). RFC 850 two-digit years: 00-69 -> 20xx, 70-99 ->
 * 19xx (no clock to apply the 50-year rule). Names match case-insensitively;
 * the weekday is not checked. */
int64_t http_date_parse(struct slice s);

/* Format t as IMF-fixdate into out (>= 30 bytes, NUL-terminated; "" when
 * len < 30). */
void http_date_format(int64_t t, char *out, size_t len);

#endif

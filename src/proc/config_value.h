/* config_value.h - the configuration's value parsers: pure functions of a
 * string (no file, no struct config), each returning 0, or -1 with the
 * problem in why ("expected ..., got ...") where it has something to say.
 * Also the text helpers of the messages: quoting and "did you mean". */
#ifndef HOPCACHE_CONFIG_VALUE_H
#define HOPCACHE_CONFIG_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct cidr;

/* A listen or parent host name: a DNS name has at most 253 characters. */
#define CONFIG_HOST_MAX 253

/* How much of a bad value a message quotes. */
#define CONFIG_QUOTE_MAX 60

/* Render s as a double-quoted, escaped, possibly shortened string for messages. */
void config_quote(const char *s, char *out, size_t outlen);

/* The list iterator: split the next item off *pp (separators: commas and
 * white space) into item; false at the end. An item longer than itemlen - 1
 * is cut there, with *toolong set. */
bool config_list_next(const char **pp, char *item, size_t itemlen, bool *toolong);

/* yes/no, true/false, on/off, 1/0 (any case); -1 for anything else. */
int config_parse_bool(const char *val, bool *out);

/* "N", "NK", "NM" or "NG" (binary units, any case); -1 on junk or overflow. */
int config_parse_size(const char *val, uint64_t *out);

/* A byte count with the largest exact K/M/G suffix ("64K", "1000"). */
void config_format_size(uint64_t v, char *buf, size_t len);

/* Seconds "N" or "N.F" (at most 12 integer digits), without locale or
 * strtod's extras; -1 otherwise. */
int config_parse_duration(const char *val, double *out);

/* "host:port" and "[v6]:port" items: at least one, none twice (port 0
 * excepted). *out and *n are set only on success. */
int config_parse_listen(const char *val, struct config_listen **out, size_t *n, char *why,
			size_t wlen);
void config_listen_free(struct config_listen *l, size_t n);

/* Ports and lo-hi ranges within 1..65535: at least one. */
int config_parse_ports(const char *val, struct config_port_range **out, size_t *n, char *why,
		       size_t wlen);

/* Addresses and CIDR ranges; an empty list gives *out NULL, *n 0. */
int config_parse_cidrs(const char *val, struct cidr **out, size_t *n, char *why, size_t wlen);

/* Levenshtein distance, or a large number for strings over 64 characters. */
size_t config_edit_distance(const char *a, const char *b);

/* How many edits still count as a typo of a name this long. */
size_t config_typo_budget(const char *s);

/* A duration as config_parse_duration reads it: plain decimal seconds,
 * no exponent, no trailing zeros ("31536000", "7.5", "0.25"). */
void config_format_duration(double d, char *buf, size_t len);

#endif

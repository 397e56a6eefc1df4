/* config_keys.h - every key of the INI file as one row of a table:
 * section, key, type, default (as it would be written in the file), bounds,
 * and where the value lands in struct config. Applying a value, clearing a
 * field, looking keys up and suggesting close ones all go by the row.
 * Private to the config loader (config*.c). */
#ifndef HOPCACHE_CONFIG_KEYS_H
#define HOPCACHE_CONFIG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_type {
	CT_STRING,   /* any text without control characters (at most hi characters if hi > 0) */
	CT_TOKEN,    /* an RFC 9110 token (ditto) */
	CT_BOOL,     /* yes/no, true/false, on/off, 1/0 */
	CT_INT,      /* decimal integer within [lo, hi]; int or size_t field */
	CT_WORKERS,  /* "auto" (online CPUs) or an integer within [lo, hi] */
	CT_SIZE,     /* integer with optional K/M/G suffix within [lo, hi] */
	CT_DURATION, /* seconds, fraction allowed, within [dlo, dhi] */
	CT_ENUM,     /* one of names[] */
	CT_ENUMS,    /* a list of distinct names[], in order -> int[] + count; the
			name of value 0 ("none") only alone, as an empty list */
	CT_LISTEN,   /* host:port list -> struct config_listen[] + count */
	CT_PORTS,    /* port and range list -> struct config_port_range[] + count */
	CT_CIDRS,    /* address / CIDR list -> struct cidr[] + count */
	CT_RATE,     /* "N/s, burst B" (rate.h) or off -> struct rate */
};

/* Row flags. */
#define CF_OPTIONAL 0x1 /* an empty value (or no default) means NULL: "not set" */

struct config_enum {
	const char *name;
	int value;
};

struct config_row {
	const char *section;
	const char *key;
	enum config_type type;
	unsigned flags;
	const char *def; /* as written in the file; NULL = unset (NULL/0) */
	uint64_t lo, hi;  /* CT_INT, CT_WORKERS, CT_SIZE */
	double dlo, dhi;  /* CT_DURATION */
	const struct config_enum *names; /* CT_ENUM, NULL-terminated */
	size_t off;       /* the field */
	size_t size;      /* its size */
	size_t off_count; /* CT_LISTEN, CT_PORTS, CT_CIDRS, CT_ENUMS: the count field */
};

extern const struct config_row config_rows[];
extern const size_t config_nrows;

/* The row for (sec, key), or NULL. */
const struct config_row *config_row_find(const char *sec, const char *key);

/* Is this section name one the table knows? */
bool config_section_known(const char *sec);

/* The known section closest to sec, or NULL when none is close. */
const char *config_suggest_section(const char *sec);

/* The row closest to (sec, key): a close key name, one edit more in another
 * section (sec NULL: every section is another); NULL when none is close. */
const struct config_row *config_suggest_key(const char *sec, const char *key);

/* Check val against row r and store it in cfg (releasing what the field
 * held); -1 with the problem in why, cfg unchanged. */
int config_row_apply(const struct config_row *r, const char *val, struct config *cfg, char *why,
		     size_t wlen);

/* Release whatever the row's field owns and reset it (and its count). */
void config_row_clear(const struct config_row *r, struct config *cfg);

/* The name of value in a CT_ENUM row, or NULL. */
const char *config_row_enum_name(const struct config_row *r, int value);

#endif

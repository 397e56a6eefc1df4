/* config_ini.h - the INI text: read once, checked for what iniparser would
 * lose or choke on, parsed by iniparser, and handed over as entries.
 * config_ini.c is the only file that includes <iniparser.h>. */
#ifndef HOPCACHE_CONFIG_INI_H
#define HOPCACHE_CONFIG_INI_H

#include <stddef.h>

#include "config_impl.h"

/* One entry as iniparser holds it (names lowercased), in file order. */
struct config_ini_entry {
	char *section;   /* NULL: a key outside any section */
	const char *key; /* NULL: the entry is the [section] header itself */
	const char *val; /* NULL for a header */
};

struct config_ini {
	struct config_ini_entry *entries;
	size_t n;
	void *dict; /* iniparser's dictionary: key and val point into it */
};

/* Read a whole (small) regular file into a NUL-terminated buffer of *len
 * bytes (at most CONFIG_MAX_FILE + 1: config_ini_parse refuses more). NULL
 * with the problem reported. */
char *config_ini_read(struct config_check *chk, const char *path, size_t *len);

/* Check text (len bytes, NUL-terminated) for NUL bytes, overlong lines and
 * keys given twice, then parse it: every line iniparser calls a syntax
 * error is reported, and the rest of the file still parsed. NULL when
 * there is nothing to apply (the problems reported). */
struct config_ini *config_ini_parse(struct config_check *chk, const char *text, size_t len);

void config_ini_free(struct config_ini *ini);

#endif

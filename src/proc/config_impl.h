/* config_impl.h - what the files of the config loader (config*.c) share:
 * the load in progress and how its problems are collected. */
#ifndef HOPCACHE_CONFIG_IMPL_H
#define HOPCACHE_CONFIG_IMPL_H

#include <stddef.h>

#include "config.h"

/* Larger files are refused: a config is small; long lists live in their own files. */
#define CONFIG_MAX_FILE (1024 * 1024)

/* One load in progress: what messages call the file and where they go. */
struct config_check {
	const char *name;
	struct config_errors *errs; /* may be NULL */
	size_t nerr;                /* counted even when errs is NULL or out of memory */
};

/* Append one whole message ("FILE: ...") and count it. */
void config_error(struct config_check *chk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

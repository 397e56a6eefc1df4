/* fuzz_config.c - libFuzzer target: arbitrary bytes as an INI file through
 * config_load (prescan, iniparser, every row parser), freeing everything. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The one temporary file every input is written to. */
static char path[4096];

/* Remove the temporary file at exit. */
static void remove_temp(void)
{
	if (path[0] != '\0')
		unlink(path);
}

/* Write the input to a private temporary file and load it as a config. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { 0 };
	struct config *cfg;
	char summary[256];
	FILE *f;
	int fd;

	if (path[0] == '\0') {
		const char *dir = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%s/fuzz_config-XXXXXX", dir != NULL && *dir != '\0' ? dir : "/tmp");
		fd = mkstemp(path);
		if (fd < 0)
			abort();
		close(fd);
		atexit(remove_temp);
	}
	f = fopen(path, "wb");
	if (f == NULL)
		abort();
	if (size > 0 && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);

	cfg = config_load(path, &errs);
	if (cfg != NULL) {
		/* A config that loads is complete: check what later code relies on. */
		if (cfg->nlisten == 0 || cfg->nconnect_ports == 0 || cfg->via == NULL ||
		    cfg->error_log == NULL || cfg->resolv_conf == NULL || errs.n != 0)
			abort();
		config_summary(cfg, summary, sizeof(summary));
		(void)config_connect_port_allowed(cfg, 443);
	} else if (errs.n == 0) {
		abort(); /* a rejected config must say why */
	}
	config_free(cfg);
	config_errors_free(&errs);
	return 0;
}

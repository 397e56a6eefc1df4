/* main.c - command line: hopcache [-c FILE] [-f] [-t] [-V] [-h] */
#include "autoconfig.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "master.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hopcache [-c FILE] [-f] [-t] [-V] [-h]\n"
		"  -c FILE  configuration file (default %s/hopcache.ini)\n"
		"  -f       stay in the foreground\n"
		"  -t       test the configuration and exit (0 valid, 1 invalid)\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n",
		SYSCONFDIR);
}

int main(int argc, char **argv)
{
	const char *path = SYSCONFDIR "/hopcache.ini";
	bool foreground = false, test = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'f': foreground = true; break;
		case 't': test = true; break;
		case 'V': printf("hopcache %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hopcache: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	struct config_errors errs = { 0 };
	struct config *cfg = config_load(path, &errs);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		fprintf(stderr, "hopcache: %zu problem%s in %s\n", errs.n, errs.n == 1 ? "" : "s", path);
		config_errors_free(&errs);
		return 1;
	}
	config_errors_free(&errs);
	if (test) {
		char summary[512];
		config_summary(cfg, summary, sizeof(summary));
		printf("%s: ok: %s\n", path, summary);
		config_free(cfg);
		return 0;
	}

	const char *what = NULL;
	int r = log_open(cfg->error_log, cfg->access_log, cfg->log_level, &what);
	if (r < 0) {
		fprintf(stderr, "hopcache: cannot open log %s: %s\n", what, strerror(-r));
		config_free(cfg);
		return 1;
	}
	int status = master_run(cfg, foreground);
	config_free(cfg);
	return status;
}

/* main.c - command line: hopcache [-c FILE] [-f] [-t] [-V] [-h] [--purge URL] [--cache-stats]
 * [--print-config] */
#include "autoconfig.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "cache_key.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "negotiate.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: hopcache [-c FILE] [-f] [-t] [-V] [-h]\n"
		"       hopcache [-c FILE] --purge URL | --cache-stats | --print-config\n"
		"  -c FILE        configuration file (default %s/hopcache.ini)\n"
		"  -f             stay in the foreground\n"
		"  -t             test the configuration and exit (0 valid, 1 invalid)\n"
		"  -V             print the version and exit\n"
		"  -h             print this help and exit\n"
		"  --purge URL    remove URL from the cache (exit 0 removed, 1 not cached)\n"
		"  --cache-stats  print cache entries, bytes, hits and misses\n"
		"  --print-config print the effective configuration (defaults filled in)\n",
		SYSCONFDIR);
}

/* --purge URL / --cache-stats: open the store directly (no running proxy
 * needed; LMDB lets this process share it with the workers). */
static int cache_command(const struct config *cfg, const char *purge)
{
	char err[512];
	if (!cfg->cache_enabled) {
		fprintf(stderr, "hopcache: [cache] enabled = no in %s\n", cfg->path);
		return 1;
	}
	struct cache *store = cache_open(cfg->cache_dir, (size_t)cfg->cache_size,
					 (size_t)cfg->cache_max_object, err, sizeof(err));
	if (store == NULL) {
		fprintf(stderr, "hopcache: %s\n", err);
		return 1;
	}
	int status = 0;
	if (purge != NULL) {
		uint8_t key[CACHE_KEY_LEN];
		int r = cache_key_of_url(purge, key) == 0 ? cache_delete(store, key) : -1;
		if (r < 0) {
			fprintf(stderr, "hopcache: --purge %s: not an absolute http(s) URL\n", purge);
			status = 2;
		} else {
			printf("%s: %s\n", purge, r == 1 ? "purged" : "not cached");
			status = r == 1 ? 0 : 1;
		}
	} else {
		struct cache_stats st;
		if (cache_stats(store, &st) != 0) {
			fprintf(stderr, "hopcache: cannot read the cache statistics\n");
			status = 1;
		} else {
			printf("dir %s\nentries %llu\nbytes %llu\nmap_size %llu\nhits %llu\nmisses %llu\n",
			       cfg->cache_dir, (unsigned long long)st.entries,
			       (unsigned long long)st.bytes, (unsigned long long)st.map_size,
			       (unsigned long long)st.hits, (unsigned long long)st.misses);
		}
	}
	cache_close(store);
	return status;
}

int main(int argc, char **argv)
{
	const char *path = SYSCONFDIR "/hopcache.ini";
	bool foreground = false, test = false, stats = false, print = false;
	const char *purge = NULL;
	static const struct option longopts[] = {
		{ "purge", required_argument, NULL, 'P' },
		{ "cache-stats", no_argument, NULL, 'S' },
		{ "print-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "c:ftVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'P': purge = optarg; break;
		case 'S': stats = true; break;
		case 'C': print = true; break;
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
	if (print) {
		config_print(cfg, stdout);
		config_free(cfg);
		return 0;
	}
	if (test) {
		struct config_errors warns = { 0 };
		int bad = master_check(cfg, NULL, &errs, &warns);
		for (size_t i = 0; i < warns.n; i++)
			fprintf(stderr, "hopcache: warning: %s\n", warns.msg[i]);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (bad != 0) {
			fprintf(stderr, "hopcache: %zu problem%s in %s\n", errs.n, errs.n == 1 ? "" : "s",
				path);
		} else {
			char summary[512];
			config_summary(cfg, summary, sizeof(summary));
			printf("%s: ok: %s\n", path, summary);
			if (cfg->keytab != NULL)
				printf("%s: [auth] keytab %s: %s\n", path, cfg->auth_keytab,
				       negotiate_keytab_principals(cfg->keytab));
		}
		config_errors_free(&warns);
		config_errors_free(&errs);
		config_free(cfg);
		return bad != 0 ? 1 : 0;
	}

	if (purge != NULL || stats) {
		int st = cache_command(cfg, purge);
		config_free(cfg);
		return st;
	}

	const char *what = NULL;
	log_set_access_format(cfg->access_format);
	log_set_syslog_facility(cfg->syslog_facility);
	int r = log_open(cfg->error_log, cfg->access_log, cfg->log_level, &what);
	if (r < 0) {
		fprintf(stderr, "hopcache: cannot open log %s: %s\n", what, strerror(-r));
		config_free(cfg);
		return 1;
	}
	return master_run(cfg, path, foreground);
}

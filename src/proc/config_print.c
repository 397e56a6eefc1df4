/* config_print.c - the configuration as text: every key with its value
 * (hopcache --print-config) and the one-line summary of hopcache -t. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cidr.h"
#include "config_keys.h"
#include "config_value.h"

/* Append formatted text to buf at *o, never past len. */
static void append(char *buf, size_t len, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
	if (n > 0)
		*o = *o + (size_t)n < len ? *o + (size_t)n : len;
}

/* " host:port" for each address, IPv6 ones in brackets. */
static void append_listen(char *buf, size_t len, size_t *o, const struct config_listen *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		append(buf, len, o, strchr(l[i].host, ':') != NULL ? " [%s]:%s" : " %s:%s", l[i].host,
		       l[i].port);
}

/* One line for `hopcache -t`: listen addresses (proxy, TLS, admin), workers, CONNECT ports,
 * logs. */
void config_summary(const struct config *cfg, char *buf, size_t len)
{
	size_t o = 0, i;

	if (len == 0)
		return;
	buf[0] = '\0';
	append(buf, len, &o, "listen");
	append_listen(buf, len, &o, cfg->listen, cfg->nlisten);
	if (cfg->ntls_listen > 0)
		append(buf, len, &o, ", TLS");
	append_listen(buf, len, &o, cfg->tls_listen, cfg->ntls_listen);
	if (cfg->nadmin_listen > 0)
		append(buf, len, &o, ", admin");
	append_listen(buf, len, &o, cfg->admin_listen, cfg->nadmin_listen);
	append(buf, len, &o, ", workers %d, connect ports", cfg->workers);
	for (i = 0; i < cfg->nconnect_ports; i++) {
		const struct config_port_range *p = &cfg->connect_ports[i];

		if (p->lo == p->hi)
			append(buf, len, &o, " %u", p->lo);
		else
			append(buf, len, &o, " %u-%u", p->lo, p->hi);
	}
	if (cfg->cache_enabled)
		append(buf, len, &o, ", cache %s (%llu MiB)", cfg->cache_dir,
		       (unsigned long long)(cfg->cache_size >> 20));
	else
		append(buf, len, &o, ", cache off");
	append(buf, len, &o, ", access log %s",
	       cfg->access_log == NULL ? "off" : strcmp(cfg->access_log, "-") == 0 ? "stdout" : cfg->access_log);
	append(buf, len, &o, ", error log %s (%s)",
	       strcmp(cfg->error_log, "-") == 0 ? "stderr" : cfg->error_log,
	       config_row_enum_name(config_row_find("log", "level"), cfg->log_level));
}

/* ---- --print-config ------------------------------------------------------- */

/* An integer field (int, size_t or uint64_t, by its size). */
static uint64_t field_uint(const struct config_row *r, const struct config *cfg)
{
	const char *field = (const char *)cfg + r->off;
	uint64_t v = 0;

	if (r->size == sizeof(int)) {
		int iv;

		memcpy(&iv, field, sizeof(iv));
		v = (uint64_t)iv;
	} else if (r->size == sizeof(uint64_t)) {
		memcpy(&v, field, sizeof(v));
	} else {
		size_t sv;

		memcpy(&sv, field, sizeof(sv));
		v = sv;
	}
	return v;
}

/* A list field's array and count. */
static const void *field_list(const struct config_row *r, const struct config *cfg, size_t *n)
{
	const void *p;

	memcpy(&p, (const char *)cfg + r->off, sizeof(p));
	memcpy(n, (const char *)cfg + r->off_count, sizeof(*n));
	return p;
}

static void print_listen(FILE *out, const struct config_row *r, const struct config *cfg)
{
	size_t n;
	const struct config_listen *l = field_list(r, cfg, &n);

	for (size_t i = 0; i < n; i++)
		fprintf(out, strchr(l[i].host, ':') ? "%s[%s]:%s" : "%s%s:%s", i ? ", " : "",
			l[i].host, l[i].port);
}

static void print_ports(FILE *out, const struct config_row *r, const struct config *cfg)
{
	size_t n;
	const struct config_port_range *p = field_list(r, cfg, &n);

	for (size_t i = 0; i < n; i++) {
		if (p[i].lo == p[i].hi)
			fprintf(out, "%s%u", i ? ", " : "", p[i].lo);
		else
			fprintf(out, "%s%u-%u", i ? ", " : "", p[i].lo, p[i].hi);
	}
}

static void print_cidrs(FILE *out, const struct config_row *r, const struct config *cfg)
{
	size_t n;
	const struct cidr *c = field_list(r, cfg, &n);

	for (size_t i = 0; i < n; i++) {
		char ip[INET6_ADDRSTRLEN];
		unsigned full = c[i].family == AF_INET ? 32 : 128;

		inet_ntop(c[i].family, c[i].addr, ip, sizeof(ip));
		if (c[i].prefix == full)
			fprintf(out, "%s%s", i ? ", " : "", ip);
		else
			fprintf(out, "%s%s/%u", i ? ", " : "", ip, c[i].prefix);
	}
}

/* One value as it would be written in the file. */
static void print_value(FILE *out, const struct config_row *r, const struct config *cfg)
{
	const char *field = (const char *)cfg + r->off;
	char buf[64];

	switch (r->type) {
	case CT_STRING:
	case CT_TOKEN: {
		const char *v;

		memcpy(&v, field, sizeof(v));
		fputs(v != NULL ? v : "", out);
		break;
	}
	case CT_BOOL: {
		bool b;

		memcpy(&b, field, sizeof(b));
		fputs(b ? "yes" : "no", out);
		break;
	}
	case CT_INT:
	case CT_WORKERS:
		fprintf(out, "%llu", (unsigned long long)field_uint(r, cfg));
		break;
	case CT_SIZE:
		config_format_size(field_uint(r, cfg), buf, sizeof(buf));
		fputs(buf, out);
		break;
	case CT_DURATION: {
		double d;

		memcpy(&d, field, sizeof(d));
		config_format_duration(d, buf, sizeof(buf));
		fputs(buf, out);
		break;
	}
	case CT_ENUM: {
		int v;
		const char *name;

		memcpy(&v, field, sizeof(v));
		if ((name = config_row_enum_name(r, v)) != NULL)
			fputs(name, out);
		break;
	}
	case CT_ENUMS: {
		int v[8];
		size_t n;

		memcpy(&n, (const char *)cfg + r->off_count, sizeof(n));
		memcpy(v, field, n * sizeof(int));
		if (n == 0)
			fputs(config_row_enum_name(r, 0), out);
		for (size_t i = 0; i < n; i++)
			fprintf(out, "%s%s", i ? ", " : "", config_row_enum_name(r, v[i]));
		break;
	}
	case CT_LISTEN: print_listen(out, r, cfg); break;
	case CT_PORTS: print_ports(out, r, cfg); break;
	case CT_CIDRS: print_cidrs(out, r, cfg); break;
	case CT_RATE: {
		struct rate rt;

		memcpy(&rt, field, sizeof(rt));
		rate_format(&rt, buf, sizeof(buf));
		fputs(buf, out);
		break;
	}
	}
}

/* "key = value" of one row, the value quoted when iniparser would cut it. */
static void print_row(FILE *out, const struct config_row *r, const struct config *cfg)
{
	char *v = NULL;
	size_t vlen = 0;
	FILE *m;

	fprintf(out, "%s =", r->key);
	m = open_memstream(&v, &vlen);
	if (m == NULL) {
		fputc('\n', out);
		return;
	}
	print_value(m, r, cfg);
	fclose(m);
	/* iniparser ends a value at ';' or '#' unless it is quoted */
	bool quote_it = v != NULL && strpbrk(v, ";#") != NULL;
	fprintf(out, "%s%s%s%s\n", vlen > 0 ? " " : "", quote_it ? "\"" : "", v != NULL ? v : "",
		quote_it ? "\"" : "");
	free(v);
}

void config_print(const struct config *cfg, FILE *out)
{
	const char *sec = NULL;

	fprintf(out, "; effective configuration of %s (defaults filled in)\n", cfg->path);
	for (size_t i = 0; i < config_nrows; i++) {
		const struct config_row *r = &config_rows[i];

		if (sec == NULL || strcmp(sec, r->section) != 0) {
			sec = r->section;
			fprintf(out, "\n[%s]\n", sec);
		}
		if ((strcmp(r->key, "parent_user") == 0 || strcmp(r->key, "parent_password") == 0) &&
		    cfg->parent_password != NULL) {
			/* a secret, not for pasting into bug reports; both keys
			 * go, since one without the other is an error */
			fprintf(out, "; %s = (hidden: see %s)\n", r->key, cfg->path);
			continue;
		}
		print_row(out, r, cfg);
	}
	if (cfg->rules_text != NULL)
		fputs(cfg->rules_text, out);
}

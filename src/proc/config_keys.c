/* config_keys.c - the table of every key, and applying a value by its row
 * (config_keys.h). Adding a key is adding a row (and the field in config.h). */
#include "config_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "cidr.h"
#include "config_value.h"
#include "decimal.h"
#include "http_parser.h"

#define FIELD(f) .off = offsetof(struct config, f), .size = sizeof(((struct config *)0)->f)
#define COUNT(f) .off_count = offsetof(struct config, f)

static const struct config_enum auth_schemes[] = {
	{ "none", CONFIG_AUTH_NONE }, { "basic", CONFIG_AUTH_BASIC },
	{ "negotiate", CONFIG_AUTH_NEGOTIATE }, { NULL, 0 },
};

static const struct config_enum basic_backends[] = {
	{ "htpasswd", CONFIG_BACKEND_HTPASSWD }, { "ldap", CONFIG_BACKEND_LDAP }, { NULL, 0 },
};

static const struct config_enum alpn_protocols[] = {
	{ "h2", CONFIG_ALPN_H2 }, { "http/1.1", CONFIG_ALPN_HTTP11 }, { NULL, 0 },
};

static const struct config_enum acl_actions[] = {
	{ "deny", 0 }, { "allow", 1 }, { NULL, 0 },
};

static const struct config_enum sni_modes[] = {
	{ "off", CONFIG_SNI_OFF }, { "check", CONFIG_SNI_CHECK }, { "match", CONFIG_SNI_MATCH },
	{ NULL, 0 },
};

static const struct config_enum log_formats[] = {
	{ "native", CONFIG_LOGFMT_NATIVE }, { "squid", CONFIG_LOGFMT_SQUID },
	{ "combined", CONFIG_LOGFMT_COMBINED }, { "json", CONFIG_LOGFMT_JSON }, { NULL, 0 },
};

static const struct config_enum syslog_facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 }, { NULL, 0 },
};

static const struct config_enum log_levels[] = {
	{ "error", 0 }, { "warn", 1 }, { "info", 2 }, { "debug", 3 }, { NULL, 0 },
};

/* Timeouts: at least a millisecond, at most a day. */
#define TIMEOUT .dlo = 0.001, .dhi = 86400

/* Every key. Adding a key is adding a row (and the field in config.h). */
const struct config_row config_rows[] = {
	/* [proxy] */
	{ .section = "proxy", .key = "listen", .type = CT_LISTEN, .def = "127.0.0.1:3128",
	  FIELD(listen), COUNT(nlisten) },
	{ .section = "proxy", .key = "workers", .type = CT_WORKERS, .def = "auto",
	  .lo = 1, .hi = 256, FIELD(workers) },
	{ .section = "proxy", .key = "user", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(user) },
	{ .section = "proxy", .key = "via", .type = CT_TOKEN, .def = "hopcache",
	  .hi = CONFIG_VIA_MAX, FIELD(via) },
	{ .section = "proxy", .key = "connect_ports", .type = CT_PORTS, .def = "443",
	  FIELD(connect_ports), COUNT(nconnect_ports) },
	{ .section = "proxy", .key = "x_forwarded_for", .type = CT_BOOL, .def = "no",
	  FIELD(x_forwarded_for) },
	{ .section = "proxy", .key = "forwarded", .type = CT_BOOL, .def = "no", FIELD(forwarded) },
	{ .section = "proxy", .key = "proxy_protocol", .type = CT_CIDRS, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(proxy_protocol), COUNT(nproxy_protocol) },
	{ .section = "proxy", .key = "pid_file", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(pid_file) },

	/* [limits] */
	{ .section = "limits", .key = "max_request_line", .type = CT_SIZE, .def = "8192",
	  .lo = 256, .hi = 1024 * 1024, FIELD(max_request_line) },
	{ .section = "limits", .key = "max_header_bytes", .type = CT_SIZE, .def = "64K",
	  .lo = 1024, .hi = 16 * 1024 * 1024, FIELD(max_header_bytes) },
	{ .section = "limits", .key = "max_headers", .type = CT_INT, .def = "100",
	  .lo = 1, .hi = 10000, FIELD(max_headers) },
	{ .section = "limits", .key = "max_body", .type = CT_SIZE, .def = "0",
	  .lo = 0, .hi = UINT64_C(1) << 50, FIELD(max_body) },
	{ .section = "limits", .key = "header_timeout", .type = CT_DURATION, .def = "30",
	  TIMEOUT, FIELD(header_timeout) },
	{ .section = "limits", .key = "idle_timeout", .type = CT_DURATION, .def = "60",
	  TIMEOUT, FIELD(idle_timeout) },
	{ .section = "limits", .key = "connect_timeout", .type = CT_DURATION, .def = "10",
	  TIMEOUT, FIELD(connect_timeout) },
	{ .section = "limits", .key = "upstream_timeout", .type = CT_DURATION, .def = "60",
	  TIMEOUT, FIELD(upstream_timeout) },
	{ .section = "limits", .key = "tunnel_idle_timeout", .type = CT_DURATION, .def = "300",
	  TIMEOUT, FIELD(tunnel_idle_timeout) },
	{ .section = "limits", .key = "shutdown_timeout", .type = CT_DURATION, .def = "30",
	  .dlo = 0, .dhi = 86400, FIELD(shutdown_timeout) },
	{ .section = "limits", .key = "client_timeout", .type = CT_DURATION, .def = "60",
	  TIMEOUT, FIELD(client_timeout) },
	{ .section = "limits", .key = "max_connections", .type = CT_INT, .def = "4096",
	  .lo = 1, .hi = 1000000, FIELD(max_connections) },
	{ .section = "limits", .key = "drain_timeout", .type = CT_DURATION, .def = "30",
	  .dlo = 0, .dhi = 86400, FIELD(drain_timeout) },
	{ .section = "limits", .key = "max_connections_per_client", .type = CT_INT, .def = "256",
	  .lo = 0, .hi = 1000000, FIELD(max_connections_per_client) },
	{ .section = "limits", .key = "requests_per_client", .type = CT_RATE, .def = "off",
	  FIELD(requests_per_client) },
	{ .section = "limits", .key = "requests_per_user", .type = CT_RATE, .def = "off",
	  FIELD(requests_per_user) },
	{ .section = "limits", .key = "exempt", .type = CT_CIDRS, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(limits_exempt), COUNT(nlimits_exempt) },
	{ .section = "limits", .key = "min_body_rate", .type = CT_SIZE, .def = "1K",
	  .lo = 0, .hi = UINT64_C(1) << 40, FIELD(min_body_rate) },
	{ .section = "limits", .key = "min_body_rate_after", .type = CT_DURATION, .def = "10",
	  .dlo = 1, .dhi = 86400, FIELD(min_body_rate_after) },

	/* [upstream] */
	{ .section = "upstream", .key = "pool_max_idle", .type = CT_INT, .def = "64",
	  .lo = 0, .hi = 100000, FIELD(pool_max_idle) },
	{ .section = "upstream", .key = "pool_idle_timeout", .type = CT_DURATION, .def = "30",
	  TIMEOUT, FIELD(pool_idle_timeout) },
	{ .section = "upstream", .key = "resolv_conf", .type = CT_STRING, .def = "/etc/resolv.conf",
	  FIELD(resolv_conf) },
	{ .section = "upstream", .key = "verify", .type = CT_BOOL, .def = "yes", FIELD(upstream_verify) },
	{ .section = "upstream", .key = "ca_file", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(upstream_ca_file) },
	{ .section = "upstream", .key = "ca_path", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(upstream_ca_path) },
	{ .section = "upstream", .key = "parent", .type = CT_LISTEN, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(parent), COUNT(nparent) },
	{ .section = "upstream", .key = "parent_user", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(parent_user) },
	{ .section = "upstream", .key = "parent_password", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(parent_password) },
	{ .section = "upstream", .key = "parent_direct", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(parent_direct) },

	/* [tls] */
	{ .section = "tls", .key = "listen", .type = CT_LISTEN, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(tls_listen), COUNT(ntls_listen) },
	{ .section = "tls", .key = "certificate", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(tls_certificate) },
	{ .section = "tls", .key = "private_key", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(tls_private_key) },
	{ .section = "tls", .key = "protocols", .type = CT_STRING, .def = "TLSv1.2 TLSv1.3",
	  FIELD(tls_protocols) },
	{ .section = "tls", .key = "ciphers", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(tls_ciphers) },
	{ .section = "tls", .key = "ciphersuites", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(tls_ciphersuites) },
	{ .section = "tls", .key = "handshake_timeout", .type = CT_DURATION, .def = "10",
	  TIMEOUT, FIELD(tls_handshake_timeout) },
	{ .section = "tls", .key = "protocols_alpn", .type = CT_ENUMS, .def = "h2, http/1.1",
	  .names = alpn_protocols, FIELD(tls_alpn), COUNT(ntls_alpn) },
	{ .section = "tls", .key = "max_concurrent_streams", .type = CT_INT, .def = "100",
	  .lo = 1, .hi = 10000, FIELD(tls_max_streams) },

	/* [log] */
	{ .section = "log", .key = "access", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(access_log) },
	{ .section = "log", .key = "error", .type = CT_STRING, .def = "-", FIELD(error_log) },
	{ .section = "log", .key = "level", .type = CT_ENUM, .def = "info",
	  .names = log_levels, FIELD(log_level) },
	{ .section = "log", .key = "access_format", .type = CT_ENUM, .def = "native",
	  .names = log_formats, FIELD(access_format) },
	{ .section = "log", .key = "syslog_facility", .type = CT_ENUM, .def = "daemon",
	  .names = syslog_facilities, FIELD(syslog_facility) },

	/* [cache] */
	{ .section = "cache", .key = "enabled", .type = CT_BOOL, .def = "no", FIELD(cache_enabled) },
	{ .section = "cache", .key = "dir", .type = CT_STRING, .def = "/var/cache/hopcache",
	  FIELD(cache_dir) },
	{ .section = "cache", .key = "size", .type = CT_SIZE, .def = "1G",
	  .lo = 1024 * 1024, .hi = UINT64_C(1) << 44, FIELD(cache_size) },
	{ .section = "cache", .key = "max_object_size", .type = CT_SIZE, .def = "16M",
	  .lo = 0, .hi = UINT64_C(1) << 32, FIELD(cache_max_object) },
	{ .section = "cache", .key = "heuristic_max", .type = CT_DURATION, .def = "86400",
	  .dlo = 0, .dhi = 31536000, FIELD(cache_heuristic_max) },
	{ .section = "cache", .key = "store_set_cookie", .type = CT_BOOL, .def = "yes",
	  FIELD(cache_store_set_cookie) },
	{ .section = "cache", .key = "purge_allow", .type = CT_CIDRS, .def = "127.0.0.1, ::1",
	  .flags = CF_OPTIONAL, FIELD(purge_allow), COUNT(npurge_allow) },

	/* [auth] */
	{ .section = "auth", .key = "scheme", .type = CT_ENUMS, .def = "none",
	  .names = auth_schemes, FIELD(auth_schemes), COUNT(nauth_schemes) },
	{ .section = "auth", .key = "keytab", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(auth_keytab) },
	{ .section = "auth", .key = "principal", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(auth_principal) },
	{ .section = "auth", .key = "strip_realm", .type = CT_BOOL, .def = "no",
	  FIELD(auth_strip_realm) },
	{ .section = "auth", .key = "connection_auth", .type = CT_BOOL, .def = "yes",
	  FIELD(auth_connection) },
	{ .section = "auth", .key = "replay_cache", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(auth_replay_cache) },
	{ .section = "auth", .key = "realm", .type = CT_STRING, .def = "hopcache", FIELD(auth_realm) },
	{ .section = "auth", .key = "htpasswd", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(auth_htpasswd) },
	{ .section = "auth", .key = "groups", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(auth_groups) },
	{ .section = "auth", .key = "basic_backend", .type = CT_ENUM, .def = "htpasswd",
	  .names = basic_backends, FIELD(auth_basic_backend) },
	{ .section = "auth", .key = "credential_ttl", .type = CT_DURATION, .def = "300",
	  .dlo = 0, .dhi = 86400, FIELD(auth_credential_ttl) },
	{ .section = "auth", .key = "max_failures", .type = CT_INT, .def = "10",
	  .lo = 0, .hi = 1000000, FIELD(auth_max_failures) },
	{ .section = "auth", .key = "failure_window", .type = CT_DURATION, .def = "60",
	  TIMEOUT, FIELD(auth_failure_window) },

	/* [ldap] (checked across keys by directory_config.c) */
	{ .section = "ldap", .key = "uri", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_uri) },
	{ .section = "ldap", .key = "starttls", .type = CT_BOOL, .def = "no", FIELD(ldap_starttls) },
	{ .section = "ldap", .key = "ca_file", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_ca_file) },
	{ .section = "ldap", .key = "base", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_base) },
	{ .section = "ldap", .key = "bind_dn", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_bind_dn) },
	{ .section = "ldap", .key = "bind_password_file", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_bind_password_file) },
	{ .section = "ldap", .key = "user_filter", .type = CT_STRING,
	  .def = "(|(uid=%u)(sAMAccountName=%u))", FIELD(ldap_user_filter) },
	{ .section = "ldap", .key = "group_attribute", .type = CT_STRING, .def = "memberOf",
	  FIELD(ldap_group_attribute) },
	{ .section = "ldap", .key = "group_filter", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(ldap_group_filter) },
	{ .section = "ldap", .key = "timeout", .type = CT_DURATION, .def = "5",
	  .dlo = 0.1, .dhi = 600, FIELD(ldap_timeout) },
	{ .section = "ldap", .key = "cache_ttl", .type = CT_DURATION, .def = "300",
	  .dlo = 0, .dhi = 86400, FIELD(ldap_cache_ttl) },
	{ .section = "ldap", .key = "negative_ttl", .type = CT_DURATION, .def = "60",
	  .dlo = 0, .dhi = 86400, FIELD(ldap_negative_ttl) },

	/* [acl] (the [rule.NAME] sections are read by config_rules.c) */
	{ .section = "acl", .key = "private_destinations", .type = CT_ENUM, .def = "deny",
	  .names = acl_actions, FIELD(acl_private) },
	{ .section = "acl", .key = "default", .type = CT_ENUM, .def = "allow",
	  .names = acl_actions, FIELD(acl_default) },
	{ .section = "acl", .key = "rules", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(acl_rules) },
	{ .section = "acl", .key = "connect_sni", .type = CT_ENUM, .def = "off",
	  .names = sni_modes, FIELD(acl_connect_sni) },
	{ .section = "acl", .key = "sni_ports", .type = CT_PORTS, .def = "443",
	  FIELD(sni_ports), COUNT(nsni_ports) },

	/* [admin] */
	{ .section = "admin", .key = "allow", .type = CT_CIDRS, .def = "127.0.0.1, ::1",
	  .flags = CF_OPTIONAL, FIELD(admin_allow), COUNT(nadmin_allow) },
	{ .section = "admin", .key = "listen", .type = CT_LISTEN, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(admin_listen), COUNT(nadmin_listen) },
	{ .section = "admin", .key = "max_connections", .type = CT_INT, .def = "16",
	  .lo = 1, .hi = 1000, FIELD(admin_max_connections) },

	/* [pac] */
	{ .section = "pac", .key = "proxy", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(pac_proxy) },
	{ .section = "pac", .key = "direct_domains", .type = CT_STRING, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(pac_direct_domains) },
	{ .section = "pac", .key = "direct_networks", .type = CT_CIDRS, .def = NULL,
	  .flags = CF_OPTIONAL, FIELD(pac_direct_networks), COUNT(npac_direct_networks) },
	{ .section = "pac", .key = "https", .type = CT_BOOL, .def = "no", FIELD(pac_https) },
};

const size_t config_nrows = sizeof(config_rows) / sizeof(config_rows[0]);

/* ---- lookups and suggestions --------------------------------------------- */

bool config_section_known(const char *sec)
{
	size_t i;

	for (i = 0; i < config_nrows; i++)
		if (strcmp(config_rows[i].section, sec) == 0)
			return true;
	return false;
}

const char *config_suggest_section(const char *sec)
{
	const char *best = NULL;
	size_t bestd = config_typo_budget(sec) + 1, i;

	for (i = 0; i < config_nrows; i++) {
		size_t d = config_edit_distance(sec, config_rows[i].section);

		if (d < bestd) {
			best = config_rows[i].section;
			bestd = d;
		}
	}
	return best;
}

const struct config_row *config_row_find(const char *sec, const char *key)
{
	size_t i;

	for (i = 0; i < config_nrows; i++)
		if (strcmp(config_rows[i].section, sec) == 0 && strcmp(config_rows[i].key, key) == 0)
			return &config_rows[i];
	return NULL;
}

const struct config_row *config_suggest_key(const char *sec, const char *key)
{
	const struct config_row *best = NULL;
	size_t bestd = config_typo_budget(key) + 1, i;

	for (i = 0; i < config_nrows; i++) {
		const struct config_row *r = &config_rows[i];
		size_t d = config_edit_distance(key, r->key);

		if (sec == NULL || strcmp(sec, r->section) != 0)
			d++;
		if (d < bestd) {
			best = r;
			bestd = d;
		}
	}
	return best;
}

const char *config_row_enum_name(const struct config_row *r, int value)
{
	for (size_t i = 0; r->names[i].name != NULL; i++)
		if (r->names[i].value == value)
			return r->names[i].name;
	return NULL;
}

/* ---- applying a value ------------------------------------------------------ */

/* Write v into an integer field of the given width (int or a 64-bit unsigned). */
static void store_uint(void *field, size_t size, uint64_t v)
{
	if (size == sizeof(int)) {
		int iv = (int)v;

		memcpy(field, &iv, sizeof(iv));
	} else if (size == sizeof(uint64_t)) {
		memcpy(field, &v, sizeof(v));
	} else {
		size_t sv = (size_t)v;

		memcpy(field, &sv, sizeof(sv));
	}
}

void config_row_clear(const struct config_row *r, struct config *cfg)
{
	char *field = (char *)cfg + r->off;
	size_t zero = 0;
	void *ptr;

	switch (r->type) {
	case CT_STRING:
	case CT_TOKEN:
	case CT_PORTS:
	case CT_CIDRS:
		memcpy(&ptr, field, sizeof(ptr));
		free(ptr);
		break;
	case CT_LISTEN: {
		struct config_listen *l;
		size_t n;

		memcpy(&l, field, sizeof(l));
		memcpy(&n, (char *)cfg + r->off_count, sizeof(n));
		config_listen_free(l, n);
		break;
	}
	default:
		break;
	}
	memset(field, 0, r->size);
	if (r->type == CT_LISTEN || r->type == CT_PORTS || r->type == CT_CIDRS || r->type == CT_ENUMS)
		memcpy((char *)cfg + r->off_count, &zero, sizeof(zero));
}

/* Each type's applier: val (quoted as q for messages) into the row's field;
 * -1 with why. Control characters were refused before (lists excepted). */
typedef int (*row_applier)(const struct config_row *r, const char *val, const char *q,
			   struct config *cfg, char *why, size_t wlen);

/* CT_STRING and CT_TOKEN: a copy, or NULL for an empty optional value. */
static int apply_text(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	char *field = (char *)cfg + r->off;
	char *s = NULL;

	if (*val == '\0' && !(r->flags & CF_OPTIONAL)) {
		snprintf(why, wlen, "must not be empty");
		return -1;
	}
	if (r->type == CT_TOKEN) {
		const unsigned char *c = (const unsigned char *)val;

		while (*c != '\0' && http_is_tchar(*c))
			c++;
		if (*val == '\0' || *c != '\0') {
			snprintf(why, wlen, "expected a token (letters, digits and !#$%%&'*+-.^_`|~), got %s",
				 q);
			return -1;
		}
	}
	if (r->hi > 0 && strlen(val) > r->hi) {
		snprintf(why, wlen, "longer than %llu characters: %s", (unsigned long long)r->hi, q);
		return -1;
	}
	if (*val != '\0' && (s = strdup(val)) == NULL) {
		snprintf(why, wlen, "out of memory");
		return -1;
	}
	config_row_clear(r, cfg);
	memcpy(field, &s, sizeof(s));
	// cppcheck-suppress memleak ; s now belongs to the config (the memcpy above)
	return 0;
}

static int apply_bool(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	bool b;

	if (config_parse_bool(val, &b) < 0) {
		snprintf(why, wlen, "expected yes or no (true/false, on/off, 1/0), got %s", q);
		return -1;
	}
	memcpy((char *)cfg + r->off, &b, sizeof(b));
	return 0;
}

/* CT_INT, and CT_WORKERS: "auto" is the online CPUs, within [lo, hi]. */
static int apply_int(const struct config_row *r, const char *val, const char *q,
		     struct config *cfg, char *why, size_t wlen)
{
	uint64_t v;

	if (r->type == CT_WORKERS && strcasecmp(val, "auto") == 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		if (ncpu < (long)r->lo)
			ncpu = (long)r->lo;
		if (ncpu > (long)r->hi)
			ncpu = (long)r->hi;
		store_uint((char *)cfg + r->off, r->size, (uint64_t)ncpu);
		return 0;
	}
	if (!decimal_parse(val, strlen(val), UINT64_MAX, &v) || v < r->lo || v > r->hi) {
		snprintf(why, wlen, "expected %san integer between %llu and %llu, got %s",
			 r->type == CT_WORKERS ? "auto or " : "", (unsigned long long)r->lo,
			 (unsigned long long)r->hi, q);
		return -1;
	}
	store_uint((char *)cfg + r->off, r->size, v);
	return 0;
}

static int apply_size(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	char lo[32], hi[32];
	uint64_t v;

	if (config_parse_size(val, &v) < 0 || v < r->lo || v > r->hi) {
		config_format_size(r->lo, lo, sizeof(lo));
		config_format_size(r->hi, hi, sizeof(hi));
		snprintf(why, wlen, "expected a size between %s and %s (bytes, or with a K, M "
			 "or G suffix), got %s", lo, hi, q);
		return -1;
	}
	store_uint((char *)cfg + r->off, r->size, v);
	return 0;
}

static int apply_duration(const struct config_row *r, const char *val, const char *q,
			  struct config *cfg, char *why, size_t wlen)
{
	double d;

	if (config_parse_duration(val, &d) < 0 || d < r->dlo || d > r->dhi) {
		snprintf(why, wlen, "expected seconds between %g and %g (fractions allowed), got %s",
			 r->dlo, r->dhi, q);
		return -1;
	}
	memcpy((char *)cfg + r->off, &d, sizeof(d));
	return 0;
}

static int apply_enum(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	char list[128] = "";
	size_t o = 0, i;

	for (i = 0; r->names[i].name != NULL; i++) {
		if (strcasecmp(val, r->names[i].name) == 0) {
			memcpy((char *)cfg + r->off, &r->names[i].value, sizeof(int));
			return 0;
		}
	}
	for (i = 0; r->names[i].name != NULL && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				      i == 0 ? "" : r->names[i + 1].name == NULL ? " or " : ", ",
				      r->names[i].name);
	snprintf(why, wlen, "expected one of %s, got %s", list, q);
	return -1;
}

/* CT_ENUMS: names separated by commas and/or blanks, each once, at most as
 * many as the field holds. */
static int apply_enums(const struct config_row *r, const char *val, const char *q,
		       struct config *cfg, char *why, size_t wlen)
{
	size_t cap = r->size / sizeof(int), n = 0;
	int v[8] = { 0 };
	const char *p = val;

	if (cap > sizeof(v) / sizeof(v[0]))
		cap = sizeof(v) / sizeof(v[0]);
	while (*p != '\0') {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t l = strcspn(p, ", \t");
		if (l == 0)
			break;
		char one[32];
		if (l >= sizeof(one) || n == cap) {
			snprintf(why, wlen, "%s: at most %zu distinct names", q, cap);
			return -1;
		}
		memcpy(one, p, l);
		one[l] = '\0';
		if (apply_enum(r, one, q, cfg, why, wlen) < 0)
			return -1; /* it stored nothing */
		memcpy(&v[n], (char *)cfg + r->off, sizeof(int));
		for (size_t i = 0; i < n; i++) {
			if (v[i] == v[n]) {
				snprintf(why, wlen, "%s: \"%s\" named twice", q, one);
				return -1;
			}
		}
		n++;
		p += l;
	}
	bool none = false;
	for (size_t i = 0; i < n; i++)
		none = none || v[i] == 0;
	if (n == 0 || (none && n > 1)) {
		snprintf(why, wlen, n == 0 ? "expected one or more names, got %s"
					   : "%s: \"%s\" cannot be combined with others", q,
			 config_row_enum_name(r, 0));
		return -1;
	}
	if (none)
		n = 0;
	memset((char *)cfg + r->off, 0, r->size);
	memcpy((char *)cfg + r->off, v, n * sizeof(int));
	memcpy((char *)cfg + r->off_count, &n, sizeof(n));
	return 0;
}

static int apply_rate(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	struct rate rt;

	(void)q;
	if (rate_parse(val, &rt, why, wlen) < 0)
		return -1;
	memcpy((char *)cfg + r->off, &rt, sizeof(rt));
	return 0;
}

/* CT_LISTEN, CT_PORTS, CT_CIDRS: the array and its count. */
static int apply_list(const struct config_row *r, const char *val, const char *q,
		      struct config *cfg, char *why, size_t wlen)
{
	char *field = (char *)cfg + r->off;
	size_t n = 0;
	int rc;

	(void)q;
	if (r->type == CT_LISTEN) {
		struct config_listen *l;

		if ((rc = config_parse_listen(val, &l, &n, why, wlen)) == 0) {
			config_row_clear(r, cfg);
			memcpy(field, &l, sizeof(l));
		}
	} else if (r->type == CT_PORTS) {
		struct config_port_range *pr;

		if ((rc = config_parse_ports(val, &pr, &n, why, wlen)) == 0) {
			config_row_clear(r, cfg);
			memcpy(field, &pr, sizeof(pr));
		}
	} else {
		struct cidr *cl;

		if ((rc = config_parse_cidrs(val, &cl, &n, why, wlen)) == 0) {
			config_row_clear(r, cfg);
			memcpy(field, &cl, sizeof(cl));
		}
	}
	if (rc < 0)
		return -1;
	memcpy((char *)cfg + r->off_count, &n, sizeof(n));
	return 0;
}

static const row_applier appliers[] = {
	[CT_STRING] = apply_text,    [CT_TOKEN] = apply_text,   [CT_BOOL] = apply_bool,
	[CT_INT] = apply_int,        [CT_WORKERS] = apply_int,  [CT_SIZE] = apply_size,
	[CT_DURATION] = apply_duration, [CT_ENUM] = apply_enum, [CT_LISTEN] = apply_list,
	[CT_PORTS] = apply_list,     [CT_CIDRS] = apply_list,   [CT_ENUMS] = apply_enums,
	[CT_RATE] = apply_rate,
};

int config_row_apply(const struct config_row *r, const char *val, struct config *cfg, char *why,
		     size_t wlen)
{
	bool list = r->type == CT_LISTEN || r->type == CT_PORTS || r->type == CT_CIDRS;
	char q[96];

	config_quote(val, q, sizeof(q));
	for (const unsigned char *c = (const unsigned char *)val; !list && *c != '\0'; c++) {
		if (*c < 0x20 || *c == 0x7f) {
			snprintf(why, wlen, "contains a control character: %s", q);
			return -1;
		}
	}
	if ((size_t)r->type >= sizeof(appliers) / sizeof(appliers[0]) || appliers[r->type] == NULL) {
		snprintf(why, wlen, "internal error: unknown type");
		return -1;
	}
	return appliers[r->type](r, val, q, cfg, why, wlen);
}

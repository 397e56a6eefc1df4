/* config.h - one immutable struct config, loaded from the INI file.
 * config_ini.c is the only file that includes <iniparser.h>. */
#ifndef HOPCACHE_CONFIG_H
#define HOPCACHE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>

#include "rate.h"

struct config_listen {
	char *host; /* "127.0.0.1", "::1", "0.0.0.0", "::", or a name; brackets removed */
	char *port; /* decimal string, "0" allowed (kernel picks) */
};

struct cidr;
struct htpasswd;
struct groups;
struct negotiate_keytab;
struct domainset;

struct config_port_range {
	uint16_t lo, hi; /* inclusive */
};

struct config {
	char *path; /* the file it was loaded from */

	/* [proxy] */
	struct config_listen *listen; /* listen = host:port, host:port ... (default 127.0.0.1:3128) */
	size_t nlisten;
	int workers;                  /* workers = auto|N (1..256); auto resolved to the CPU count */
	char *user;                   /* user = NAME; NULL = do not drop privileges */
	char *via;                    /* via = pseudonym (default "hopcache"), a token of at
				         most CONFIG_VIA_MAX characters */
	struct config_port_range *connect_ports; /* connect_ports = 443, 8443, 9000-9100 */
	size_t nconnect_ports;
	bool x_forwarded_for;         /* x_forwarded_for = yes|no (default no) */
	bool forwarded;               /* forwarded = yes|no (default no): RFC 7239 for= */
	struct cidr *proxy_protocol;  /* proxy_protocol = balancers that send a PROXY protocol
					 header first (default none) */
	size_t nproxy_protocol;
	char *pid_file;               /* pid_file = PATH (default none) */

	/* [limits] (sizes accept K/M/G suffixes, times are seconds, fractions allowed) */
	size_t max_request_line;      /* default 8192 */
	size_t max_header_bytes;      /* default 65536 */
	size_t max_headers;           /* default 100 */
	uint64_t max_body;            /* 0 = unlimited (default) */
	double header_timeout;        /* default 30 */
	double idle_timeout;          /* keep-alive idle, default 60 */
	double connect_timeout;       /* upstream connect, default 10 */
	double upstream_timeout;      /* upstream first byte / read inactivity, default 60 */
	double tunnel_idle_timeout;   /* default 300 */
	double shutdown_timeout;      /* default 30 */
	double client_timeout;        /* client send/recv inactivity mid-message, default 60 */
	int max_connections;          /* per worker, default 4096 */
	double drain_timeout;         /* reload: old workers finish within this (default 30) */
	int max_connections_per_client; /* over all workers; 0 = no limit (default 256) */
	struct rate requests_per_client; /* token bucket per client address (default off) */
	struct rate requests_per_user;   /* ... per authenticated user (default off) */
	struct cidr *limits_exempt;   /* exempt = addresses no per-client limit applies to */
	size_t nlimits_exempt;
	size_t min_body_rate;         /* bytes/s a request body must keep up (default 1K; 0 off) */
	double min_body_rate_after;   /* ... once it has taken this long (default 10) */

	/* [upstream] */
	int pool_max_idle;            /* idle upstream connections kept per worker, default 64 */
	double pool_idle_timeout;     /* default 30 */
	char *resolv_conf;            /* default /etc/resolv.conf */
	bool upstream_verify;         /* verify = yes|no: check https origins' certificates (yes) */
	char *upstream_ca_file;       /* ca_file = PATH (default: the system store) */
	char *upstream_ca_path;       /* ca_path = DIR (hashed certificates; default: the system store) */
	struct config_listen *parent; /* parent = host:port of a parent proxy (default none) */
	size_t nparent;               /* 0 or 1 */
	char *parent_user;            /* parent_user = NAME: Basic credentials for the parent */
	char *parent_password;        /* parent_password = TEXT */
	char *parent_auth;            /* "Proxy-Authorization: Basic base64(user:password)\r\n"
				         made at load from the two above (sized to them), or NULL */
	char *parent_direct;          /* parent_direct = domains (exact or .suffix) fetched directly */
	struct domainset *parent_direct_set; /* ... compiled, or NULL */

	/* [tls] the HTTPS proxy port(s) */
	struct config_listen *tls_listen; /* listen = host:port ... (default none) */
	size_t ntls_listen;
	char *tls_certificate;        /* certificate = PATH (PEM, chain allowed; required with listen) */
	char *tls_private_key;        /* private_key = PATH (PEM; required with listen) */
	char *tls_protocols;          /* protocols = TLSv1.2 TLSv1.3 (default) */
	int tls_min_version, tls_max_version; /* from protocols: 0x0303 = TLS 1.2, 0x0304 = TLS 1.3 */
	char *tls_ciphers;            /* ciphers = OpenSSL list for TLS <= 1.2 (default OpenSSL's) */
	char *tls_ciphersuites;       /* ciphersuites = TLS 1.3 suites (default OpenSSL's) */
	double tls_handshake_timeout; /* handshake_timeout = seconds (default 10) */
	int tls_alpn[2];              /* protocols_alpn = h2, http/1.1 (CONFIG_ALPN_*, in the
					 order preferred; default both, h2 first) */
	size_t ntls_alpn;
	int tls_max_streams;          /* max_concurrent_streams = N per h2 connection (default 100) */

	/* [log] */
	char *access_log;             /* access = PATH (default none = no access log), "-" = stdout */
	char *error_log;              /* error = PATH (default "-" = stderr) */
	int log_level;                /* level = error|warn|info|debug (0..3, default info=2) */
	int access_format;            /* access_format = native|squid|combined|json (CONFIG_LOGFMT_*) */
	int syslog_facility;          /* syslog_facility = daemon|user|local0..local7 (LOG_* value) */

	/* [cache] */
	bool cache_enabled;           /* enabled = yes|no (default no; the shipped INI says yes) */
	char *cache_dir;              /* dir = PATH (default /var/cache/hopcache) */
	uint64_t cache_size;          /* size = LMDB map size (default 1G) */
	uint64_t cache_max_object;    /* max_object_size = largest body stored (default 16M) */
	double cache_heuristic_max;   /* heuristic_max = cap of heuristic freshness, s (default 86400) */
	bool cache_store_set_cookie;  /* store_set_cookie = yes|no (default yes) */
	struct cidr *purge_allow;     /* purge_allow = clients allowed to PURGE (default 127.0.0.1, ::1) */
	size_t npurge_allow;

	/* [auth] */
	int auth_schemes[2];          /* scheme = none|basic|negotiate, or a list in the
					 order offered (CONFIG_AUTH_*; none: no entry) */
	size_t nauth_schemes;
	char *auth_keytab;            /* keytab = PATH (required with negotiate) */
	char *auth_principal;         /* principal = NAME (default: every key in the keytab) */
	bool auth_strip_realm;        /* strip_realm = yes|no: "user" instead of "user@REALM" */
	bool auth_connection;         /* connection_auth = yes|no (default yes): a Negotiate
					 identity holds for the client connection */
	char *auth_replay_cache;      /* replay_cache = PATH (default: MIT krb5's) */
	char *auth_realm;             /* realm = TEXT (default hopcache) */
	char *auth_htpasswd;          /* htpasswd = PATH (required with basic) */
	char *auth_groups;            /* groups = PATH (optional) */
	double auth_credential_ttl;   /* credential_ttl = seconds (default 300) */
	int auth_max_failures;        /* max_failures = N per client and window (default 10; 0 = off) */
	double auth_failure_window;   /* failure_window = seconds (default 60) */
	struct htpasswd *htpasswd;    /* the htpasswd file, read at load (NULL with scheme none) */
	struct groups *groups;        /* the groups file, read at load, or NULL */
	struct negotiate_keytab *keytab; /* the keytab's keys, read at load (negotiate.h) */
	int auth_basic_backend;       /* basic_backend = htpasswd|ldap (CONFIG_BACKEND_*) */

	/* [ldap] the directory (proc/directory_config.c checks it; net/directory.c uses it) */
	char *ldap_uri;               /* uri = ldap://HOST[:PORT] or ldaps://..., tried in order */
	bool ldap_starttls;           /* starttls = yes|no (default no) */
	char *ldap_ca_file;           /* ca_file = PATH (PEM; default: libldap's trust store) */
	char *ldap_base;              /* base = DN the searches start at (required with uri) */
	char *ldap_bind_dn;           /* bind_dn = DN the proxy searches as (default: anonymous) */
	char *ldap_bind_password_file; /* bind_password_file = PATH (required with bind_dn) */
	char *ldap_user_filter;       /* user_filter = (|(uid=%u)(sAMAccountName=%u)) */
	char *ldap_group_attribute;   /* group_attribute = memberOf */
	char *ldap_group_filter;      /* group_filter = e.g. (&(objectClass=groupOfNames)(member=%D)) */
	double ldap_timeout;          /* timeout = seconds per directory operation (default 5) */
	double ldap_cache_ttl;        /* cache_ttl = seconds a user's groups are kept (default 300) */
	double ldap_negative_ttl;     /* negative_ttl = seconds an unknown user is kept (default 60) */
	char *ldap_uris;              /* uri as libldap takes it (space-separated), made at load */
	char *ldap_bind_password;     /* bind_password_file's content, read at load (or NULL) */
	char **dir_groups;            /* the directory groups the rules name (names or DNs, each
				         once), made at load; a group of the [auth] groups file is
				         not one */
	size_t ndir_groups;           /* at most DIR_GROUPS_MAX */

	/* [acl] and its [rule.NAME] sections, compiled (acl.h) */
	int acl_private;              /* private_destinations = deny|allow (0/1, default deny) */
	int acl_default;              /* default = allow|deny (1/0, default allow) */
	char *acl_rules;              /* rules = name, name ... (evaluated in this order) */
	int acl_connect_sni;          /* connect_sni = off|check|match (CONFIG_SNI_*) */
	struct config_port_range *sni_ports; /* sni_ports = CONNECT ports whose ClientHello is peeked (443) */
	size_t nsni_ports;
	struct acl *acl;              /* the compiled policy (never NULL after a load) */

	/* [admin] */
	struct cidr *admin_allow;     /* allow = clients of /hopcache/metrics and /status (127.0.0.1, ::1) */
	size_t nadmin_allow;
	struct config_listen *admin_listen; /* listen = host:port ... of the admin listener (default none:
					       the resources are on the proxy port) */
	size_t nadmin_listen;
	int admin_max_connections;    /* max_connections = its own budget per worker (default 16) */

	/* [pac] */
	char *pac_proxy;              /* proxy = host:port the PAC names (default: the Host it was fetched by) */
	char *pac_direct_domains;     /* direct_domains = domains (exact or .suffix) browsers reach directly */
	struct cidr *pac_direct_networks; /* direct_networks = IPv4 CIDRs reached directly */
	size_t npac_direct_networks;
	bool pac_https;               /* https = yes|no: offer the [tls] port first (default no) */

	char *rules_text;             /* the [rule.NAME] sections as read (config_print) */
};

/* [proxy] via: at most this many characters (it goes into Cache-Status
 * values and error pages built in fixed-size buffers). */
#define CONFIG_VIA_MAX 64

#define CONFIG_LOGFMT_NATIVE 0
#define CONFIG_LOGFMT_SQUID 1
#define CONFIG_LOGFMT_COMBINED 2
#define CONFIG_LOGFMT_JSON 3

#define CONFIG_SNI_OFF 0
#define CONFIG_SNI_CHECK 1
#define CONFIG_SNI_MATCH 2

#define CONFIG_ALPN_H2 1
#define CONFIG_ALPN_HTTP11 2

#define CONFIG_AUTH_NONE 0
#define CONFIG_AUTH_BASIC 1
#define CONFIG_AUTH_NEGOTIATE 2

/* Is scheme (CONFIG_AUTH_*) among [auth] scheme? */
static inline bool config_auth_offers(const struct config *cfg, int scheme)
{
	for (size_t i = 0; i < cfg->nauth_schemes; i++)
		if (cfg->auth_schemes[i] == scheme)
			return true;
	return false;
}

#define CONFIG_BACKEND_HTPASSWD 0
#define CONFIG_BACKEND_LDAP 1

/* Collected problems, each "FILE: [section] key: problem". */
struct config_errors {
	char **msg;
	size_t n;
};

/* Load and validate. Returns the config (never partially valid) or NULL with
 * every problem found appended to errs (the caller frees errs). */
struct config *config_load(const char *path, struct config_errors *errs);

/* Same, from an in-memory INI text (`name` is used in messages); for tests. */
struct config *config_load_string(const char *text, const char *name, struct config_errors *errs);

void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* Append one formatted message (for checks made outside config.c). */
void config_errors_add(struct config_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void config_errors_vadd(struct config_errors *errs, const char *fmt, va_list ap);

/* Is port allowed for CONNECT? */
bool config_connect_port_allowed(const struct config *cfg, unsigned port);

/* Is port one whose ClientHello is peeked ([acl] sni_ports)? */
bool config_sni_port(const struct config *cfg, unsigned port);

/* The effective configuration as INI text, every key with its value
 * (defaults filled in): `hopcache --print-config`. Loading it again gives
 * the same configuration. */
void config_print(const struct config *cfg, FILE *out);

/* One-line summary for `hopcache -t` ("listen 127.0.0.1:3128, 2 workers, ..."). */
void config_summary(const struct config *cfg, char *buf, size_t len);

#endif

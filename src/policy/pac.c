/* pac.c - the proxy auto-config file (/proxy.pac, /wpad.dat) for this config.
 *
 * Everything that goes into the JavaScript is checked against a small set of
 * characters first (host names, IPv6 literals, port digits), so a hostile
 * Host header or a strange config value can never end a string literal. */
#include "pac.h"

#include "cidr.h"
#include "config.h"
#include "config_check.h"
#include "config_value.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#define HOST_MAX 256 /* a name (<= 253) or a bracketed IPv6 literal */
#define PORT_MAX 6

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.";

/* A decimal port 1..65535 (no sign, no spaces, at most 5 digits)? */
static bool port_ok(const char *p)
{
	size_t d = strspn(p, "0123456789");
	return d > 0 && d <= 5 && p[d] == '\0' && atoi(p) >= 1 && atoi(p) <= 65535;
}

/* The host part at s: a name of letters, digits, '-' and '.' starting with a
 * letter or digit, or a bracketed IPv6 literal. Returns its length or 0. */
static size_t host_len(const char *s)
{
	if (s[0] == '[') {
		char ip[INET6_ADDRSTRLEN];
		struct in6_addr a;
		const char *end = strchr(s, ']');
		size_t n = end != NULL ? (size_t)(end - s - 1) : 0;
		if (n == 0 || n >= sizeof(ip) || strspn(s + 1, "0123456789abcdefABCDEF:.") != n)
			return 0;
		memcpy(ip, s + 1, n);
		ip[n] = '\0';
		return inet_pton(AF_INET6, ip, &a) == 1 ? n + 2 : 0;
	}
	size_t n = strspn(s, name_chars);
	return isalnum((unsigned char)s[0]) && n <= 253 ? n : 0;
}

/* Split "host[:port]" into host and port ("" when absent). False for
 * anything else, including empty strings and trailing bytes. */
static bool parse_hostport(const char *s, char *host, char *port)
{
	size_t n = s != NULL ? host_len(s) : 0;

	if (n == 0 || n >= HOST_MAX)
		return false;
	if (s[n] == ':' && !port_ok(s + n + 1))
		return false;
	if (s[n] != ':' && s[n] != '\0')
		return false;
	memcpy(host, s, n);
	host[n] = '\0';
	snprintf(port, PORT_MAX, "%s", s[n] == ':' ? s + n + 1 : "");
	return true;
}

bool pac_hostport_ok(const char *s)
{
	char host[HOST_MAX], port[PORT_MAX];
	return parse_hostport(s, host, port);
}

/* Is port among the ports of these listen addresses? */
static bool port_in(const struct config_listen *l, size_t n, const char *port)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].port, port) == 0)
			return true;
	return false;
}

/* Is host an unspecified address (0.0.0.0, ::) or empty? */
static bool wildcard(const char *host)
{
	static const unsigned char zero[16];
	unsigned char a[16];

	if (host[0] == '\0')
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return memcmp(a, zero, 4) == 0;
	return inet_pton(AF_INET6, host, a) == 1 && memcmp(a, zero, 16) == 0;
}

/* The first [proxy] listen address as host and port, IPv6 in brackets. */
static bool listen_hostport(const struct config *cfg, char *host, char *port)
{
	char s[HOST_MAX + PORT_MAX + 4];

	if (cfg->nlisten == 0 || wildcard(cfg->listen[0].host))
		return false;
	const char *h = cfg->listen[0].host;
	snprintf(s, sizeof(s), strchr(h, ':') != NULL ? "[%s]:%s" : "%s:%s", h, cfg->listen[0].port);
	return parse_hostport(s, host, port) && port[0] != '\0';
}

/* Choose the host and port the PAC names (see pac.h). */
static bool proxy_address(const struct config *cfg, const char *host_header, char *host, char *port)
{
	const char *def = cfg->nlisten > 0 && port_ok(cfg->listen[0].port) ? cfg->listen[0].port : "";

	if (cfg->pac_proxy != NULL) {
		if (!parse_hostport(cfg->pac_proxy, host, port))
			return false;
	} else if (parse_hostport(host_header, host, port)) {
		/* Fetched through the [tls] port: name the plain proxy port. */
		if (port[0] != '\0' && port_in(cfg->tls_listen, cfg->ntls_listen, port) &&
		    !port_in(cfg->listen, cfg->nlisten, port))
			port[0] = '\0';
	} else {
		return listen_hostport(cfg, host, port);
	}
	if (port[0] == '\0')
		snprintf(port, PORT_MAX, "%s", def);
	return port[0] != '\0';
}

/* Split the next item off *pp (separators: commas and white space) into
 * item, lowercased; false at the end. Items too long are skipped. */
static bool next_domain(const char **pp, char *item, size_t len)
{
	const char *p = *pp;

	for (;;) {
		p += strspn(p, ", \t\r\n");
		if (*p == '\0')
			return false;
		size_t n = strcspn(p, ", \t\r\n");
		const char *s = p;
		p += n;
		if (n >= len)
			continue;
		for (size_t i = 0; i <= n; i++)
			item[i] = i < n ? (char)tolower((unsigned char)s[i]) : '\0';
		*pp = p;
		return true;
	}
}

/* A domain the JavaScript may quote: "example.com" or ".example.com". */
static bool domain_ok(const char *d)
{
	const char *h = d[0] == '.' ? d + 1 : d;
	return h[0] != '\0' && strspn(h, name_chars) == strlen(h) && h[0] != '.';
}

/* if (dnsDomainIs(host, ".a.example") || host == "a.example" || ...) DIRECT */
static void put_domains(const struct config *cfg, struct evbuffer *out)
{
	const char *p = cfg->pac_direct_domains;
	char d[256];
	bool first = true;

	while (p != NULL && next_domain(&p, d, sizeof(d))) {
		if (!domain_ok(d))
			continue;
		if (first)
			evbuffer_add_printf(out, "\n\t/* [pac] direct_domains */\n\tif (");
		else
			evbuffer_add_printf(out, " ||\n\t    ");
		if (d[0] == '.')
			evbuffer_add_printf(out, "dnsDomainIs(host, \"%s\") || host == \"%s\"", d, d + 1);
		else
			evbuffer_add_printf(out, "host == \"%s\"", d);
		first = false;
	}
	if (!first)
		evbuffer_add_printf(out, ")\n\t\treturn \"DIRECT\";\n");
}

/* One dnsResolve, then isInNet for each IPv4 network. */
static void put_networks(const struct config *cfg, struct evbuffer *out)
{
	bool first = true;

	for (size_t i = 0; i < cfg->npac_direct_networks; i++) {
		const struct cidr *c = &cfg->pac_direct_networks[i];
		if (c->family != AF_INET)
			continue;
		uint32_t mask = c->prefix == 0 ? 0 : 0xffffffffu << (32 - c->prefix);
		if (first)
			evbuffer_add_printf(out, "\n\t/* [pac] direct_networks: one lookup; a name that "
						 "does not resolve\n\t * goes through the proxy. */\n"
						 "\tvar ip = dnsResolve(host);\n"
						 "\tif (ip && (");
		else
			evbuffer_add_printf(out, " ||\n\t    ");
		evbuffer_add_printf(out, "isInNet(ip, \"%u.%u.%u.%u\", \"%u.%u.%u.%u\")", c->addr[0],
				    c->addr[1], c->addr[2], c->addr[3], mask >> 24, (mask >> 16) & 255,
				    (mask >> 8) & 255, mask & 255);
		first = false;
	}
	if (!first)
		evbuffer_add_printf(out, "))\n\t\treturn \"DIRECT\";\n");
}

int pac_generate(const struct config *cfg, const char *host_header, struct evbuffer *out)
{
	char host[HOST_MAX], port[PORT_MAX], proxy[2 * (HOST_MAX + PORT_MAX) + 32];

	if (!proxy_address(cfg, host_header, host, port))
		return -1;
	if (cfg->pac_https && cfg->ntls_listen > 0 && port_ok(cfg->tls_listen[0].port))
		snprintf(proxy, sizeof(proxy), "HTTPS %s:%s; PROXY %s:%s", host,
			 cfg->tls_listen[0].port, host, port);
	else
		snprintf(proxy, sizeof(proxy), "PROXY %s:%s", host, port);

	evbuffer_add_printf(out, "/* Proxy auto-config generated by hopcache. */\n"
				 "function FindProxyForURL(url, host) {\n"
				 "\thost = host.toLowerCase();\n\n"
				 "\t/* Plain host names and this machine: direct. */\n"
				 "\tif (isPlainHostName(host) || host == \"localhost\" ||\n"
				 "\t    host == \"127.0.0.1\" || host == \"::1\")\n"
				 "\t\treturn \"DIRECT\";\n");
	put_domains(cfg, out);
	put_networks(cfg, out);
	evbuffer_add_printf(out, "\n\t/* Everything else through the proxy, with no DIRECT "
				 "fallback: the proxy\n\t * applies the policy and must not be "
				 "bypassed when it is down. */\n"
				 "\treturn \"%s\";\n}\n", proxy);
	return 0;
}

/* ---- configuration check (config_check.h) -------------------------------- */

/* [pac]: domains that parse, an https offer only with a [tls] port, a proxy
 * the PAC can name, IPv4 networks only. */
void pac_config_check(struct config *cfg, struct config_check *chk)
{
	char q[96];

	config_check_domains(chk, "pac", "direct_domains", cfg->pac_direct_domains, NULL);
	if (cfg->pac_https && cfg->ntls_listen == 0)
		config_problem(chk, "pac", "https", "needs a [tls] listen address to offer");
	if (cfg->pac_proxy != NULL && !pac_hostport_ok(cfg->pac_proxy)) {
		config_quote(cfg->pac_proxy, q, sizeof(q));
		config_problem(chk, "pac", "proxy",
			       "expected host[:port] such as proxy.example.com:3128, got %s", q);
	}
	for (size_t i = 0; i < cfg->npac_direct_networks; i++)
		if (cfg->pac_direct_networks[i].family != AF_INET)
			config_problem(chk, "pac", "direct_networks",
				       "PAC files test IPv4 networks only (isInNet)");
}

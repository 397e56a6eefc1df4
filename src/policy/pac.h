/* pac.h - the proxy auto-config file (/proxy.pac, /wpad.dat) for this config. */
#ifndef HOPCACHE_PAC_H
#define HOPCACHE_PAC_H

#include <stdbool.h>

struct config;
struct evbuffer;

/* Build the PAC JavaScript for this config into out. host_header is the Host
 * the request came with (may be NULL or hostile); returns 0, or -1 when no
 * proxy address can be named (then nothing was added to out). The proxy is
 * [pac] proxy, else a well-formed Host header (port defaulting to the first
 * [proxy] listen port), else the first [proxy] listen address unless it is a
 * wildcard. There is no DIRECT fallback: the proxy must not be bypassed. */
/* Is s a host[:port] the PAC can name ([pac] proxy; pac_config_check checks it)? */
bool pac_hostport_ok(const char *s);

int pac_generate(const struct config *cfg, const char *host_header, struct evbuffer *out);

#endif

/* master.h - the supervisor: bind, fork a generation of workers, respawn,
 * reload (a new generation), reopen logs, stop. */
#ifndef HOPCACHE_MASTER_H
#define HOPCACHE_MASTER_H

#include <stdbool.h>

#include <openssl/ssl.h>

struct config;
struct config_errors;

/* Bind the listeners, switch to [proxy] user, fork the workers and supervise
 * them until SIGTERM/SIGINT; SIGHUP reloads path. Takes cfg over. Returns the
 * process exit status. */
int master_run(struct config *cfg, const char *path, bool foreground);

/* What a loaded configuration needs beyond config_load: the TLS certificate
 * and key must load (the context goes to *tls when tls is not NULL). With
 * warns, also name each file [proxy] user could not read: after the switch
 * the master re-reads them on reload. 0, or -1 with errs appended. */
int master_check(const struct config *cfg, SSL_CTX **tls, struct config_errors *errs,
		 struct config_errors *warns);

#endif

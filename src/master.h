/* master.h - the supervisor: bind, fork workers, respawn, stop. */
#ifndef HOPCACHE_MASTER_H
#define HOPCACHE_MASTER_H

#include <stdbool.h>

struct config;

/* Bind the listeners, drop privileges, fork the workers and supervise them
 * until SIGTERM/SIGINT. Returns the process exit status. */
int master_run(struct config *cfg, bool foreground);

#endif

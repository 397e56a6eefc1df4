/* bindshim.c - LD_PRELOAD shim for the soak test: every AF_INET stream
 * socket that connect()s without having been bound is first bound to
 * $SOAK_BIND_ADDR (port 0), so a load generator that cannot choose its
 * source address (wrk) comes from the well-behaved client address.
 *
 * Built by tests/soak/soak.py: cc -shared -fPIC -O2 -o bindshim.so bindshim.c -ldl */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static connect_fn real;
	if (real == NULL)
		real = (connect_fn)dlsym(RTLD_NEXT, "connect");
	const char *src = getenv("SOAK_BIND_ADDR");
	if (src != NULL && addr != NULL && addr->sa_family == AF_INET) {
		int type = 0;
		socklen_t tl = sizeof type;
		struct sockaddr_in cur;
		socklen_t cl = sizeof cur;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
		    getsockname(fd, (struct sockaddr *)&cur, &cl) == 0 && cur.sin_port == 0) {
			struct sockaddr_in me;
			memset(&me, 0, sizeof me);
			me.sin_family = AF_INET;
			if (inet_pton(AF_INET, src, &me.sin_addr) == 1) {
				int saved = errno;
				/* a failure leaves the socket unbound: connect as usual */
				(void)bind(fd, (struct sockaddr *)&me, sizeof me);
				errno = saved;
			}
		}
	}
	return real(fd, addr, len);
}

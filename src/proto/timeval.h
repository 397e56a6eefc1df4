/* timeval.h - seconds (a config value, fractions allowed) as the struct
 * timeval libevent's timers and timeouts take. */
#ifndef HOPCACHE_TIMEVAL_H
#define HOPCACHE_TIMEVAL_H

#include <sys/time.h>
#include <sys/types.h>

static inline struct timeval timeval_of(double seconds)
{
	struct timeval tv;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	return tv;
}

#endif

/* reject.c - refused connections: answer, half-close, linger, close. */
#include "reject.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "config.h"
#include "errors.h"
#include "timeval.h"
#include "worker.h"

struct reject {
	struct reject *next, *prev;
	struct worker *w;
	struct event *ev;
	int fd;
	struct timespec until; /* the linger ends then, however the client trickles */
};

static void reject_free(struct reject *r)
{
	struct worker *w = r->w;
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		w->rejects = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	w->nrejects--;
	event_free(r->ev);
	close(r->fd);
	free(r);
}

/* Read and drop what the client sends until it closes or the time is up. */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct reject *r = arg;
	if (what & EV_READ) {
		char buf[4096];
		ssize_t n;
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool over = now.tv_sec > r->until.tv_sec ||
			    (now.tv_sec == r->until.tv_sec && now.tv_nsec >= r->until.tv_nsec);
		if (!over && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
	}
	reject_free(r); /* EOF, an error, or REJECT_LINGER passed */
}

void reject_answer(struct worker *w, int fd, int status, enum outcome error, const char *details,
		   const char *fields)
{
	struct evbuffer *out = evbuffer_new();
	if (out != NULL) {
		errors_respond_fields(out, status, error, details, w->cfg->via, true, false, fields);
		size_t len = evbuffer_get_length(out);
		const void *p = evbuffer_pullup(out, -1);
		/* a fresh socket's send buffer takes these few hundred bytes whole;
		 * if not, the client gets the close alone */
		if (p != NULL && send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			errno = 0;
		evbuffer_free(out);
	}
	struct reject *r = w->nrejects < REJECT_MAX ? calloc(1, sizeof(*r)) : NULL;
	if (r == NULL || shutdown(fd, SHUT_WR) < 0) {
		free(r);
		close(fd);
		return;
	}
	r->w = w;
	r->fd = fd;
	clock_gettime(CLOCK_MONOTONIC, &r->until);
	r->until.tv_sec += (time_t)REJECT_LINGER;
	r->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, linger_cb, r);
	struct timeval tv = timeval_of(REJECT_LINGER);
	if (r->ev == NULL || event_add(r->ev, &tv) < 0) {
		if (r->ev != NULL)
			event_free(r->ev);
		free(r);
		close(fd);
		return;
	}
	r->next = w->rejects;
	if (r->next != NULL)
		r->next->prev = r;
	w->rejects = r;
	w->nrejects++;
}

void reject_stop(struct worker *w)
{
	while (w->rejects != NULL)
		reject_free(w->rejects);
}

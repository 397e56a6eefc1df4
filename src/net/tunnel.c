/* tunnel.c - relay bytes both ways (CONNECT, or after a 101 upgrade).
 *
 * Once a tunnel starts, the sockets leave their bufferevents: each direction
 * reads into one scratch buffer shared by the whole worker and writes it out
 * at once, so an idle or flowing tunnel holds no buffer of its own. Only what
 * a full destination did not take is kept (in `pending`), and the source is
 * not read again until that is written: memory per tunnel is bounded by one
 * read. (splice(2) through a pipe was measured too: slower on loopback, and it
 * costs two pipes per tunnel.) Bytes already buffered in user space when the
 * tunnel starts (the "200 Connection established" head, bytes the client
 * pipelined after its CONNECT, bytes the server sent after its 101) are
 * written first, in order.
 *
 * EOF on one side is passed on as a half-close (shutdown(SHUT_WR)) once
 * everything read before it has been written; the tunnel ends when both
 * directions are shut, on any error, or after tunnel_idle_timeout without a
 * byte either way.
 *
 * When either side speaks TLS (the HTTPS proxy port, an https:// upstream
 * that answered 101), the bytes must pass through OpenSSL, so the tunnel
 * stays on the bufferevents instead: each read moves the input to the other
 * side's output, and a side whose output holds more than TUNNEL_HIGH stops
 * the other from reading until it drains. TLS has no half-close, so EOF on
 * one side ends the tunnel once the other side's output is written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"
#include "timeval.h"

#define READ_SIZE (256 * 1024)
#define TUNNEL_HIGH (256 * 1024) /* bufferevent mode: output bytes held per side */

static char scratch[READ_SIZE]; /* one worker, one thread: shared by all tunnels */

/* One direction: src -> dst. */
struct tunnel_dir {
	struct tunnel *t;
	int src, dst;
	struct evbuffer *pending; /* bytes dst has not taken yet */
	struct event *rev, *wev;  /* src readable, dst writable */
	bool eof, shut;
	uint64_t bytes;           /* bytes read from src */
};

struct tunnel {
	struct conn *c;
	bool bev_mode;           /* TLS on a side: relay through the bufferevents */
	bool bev_eof;            /* bufferevent mode: one side ended */
	int fd[2];               /* client, upstream */
	struct tunnel_dir up;    /* client -> upstream */
	struct tunnel_dir down;  /* upstream -> client */
};

static void tunnel_end(struct conn *c, const char *reason)
{
	conn_close(c, reason); /* logs the tunnel through tunnel_free() */
}

/* Re-arm the idle timer: any byte either way counts as activity. */
static void touch(struct conn *c)
{
	struct timeval tv = timeval_of(c->w->cfg->tunnel_idle_timeout);
	evtimer_add(c->timer, &tv);
}

/* Write what this direction holds to dst. Returns 0 when all of it went
 * out, 1 when dst is full, -1 on error. */
static int dir_flush(struct tunnel_dir *d)
{
	while (evbuffer_get_length(d->pending) > 0) {
		int n = evbuffer_write(d->pending, d->dst);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
	}
	return 0;
}

/* Write n scratch bytes to dst; keep what it does not take. Same returns. */
static int dir_write(struct tunnel_dir *d, size_t n)
{
	size_t off = 0;
	while (off < n) {
		ssize_t w = write(d->dst, scratch + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (w < 0) {
			evbuffer_add(d->pending, scratch + off, n - off);
			return 1;
		}
		off += (size_t)w;
	}
	return 0;
}

/* After a flush: wait for dst or go back to reading src; pass EOF on. */
static void dir_settle(struct tunnel_dir *d, int flushed)
{
	struct conn *c = d->t->c;
	if (flushed < 0) {
		tunnel_end(c, "tunnel write error");
		return;
	}
	if (flushed == 1) {
		event_del(d->rev);
		event_add(d->wev, NULL);
		return;
	}
	event_del(d->wev);
	if (!d->eof) {
		event_add(d->rev, NULL);
		return;
	}
	if (!d->shut) {
		d->shut = true;
		shutdown(d->dst, SHUT_WR);
	}
	struct tunnel *t = d->t;
	if (t->up.shut && t->down.shut)
		tunnel_end(c, "tunnel closed");
}

static void dir_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tunnel_dir *d = arg;
	struct conn *c = d->t->c;
	int flushed = 0;
	/* Move as much as the source has and the destination takes, a bounded
	 * number of rounds so one busy tunnel cannot starve the others. */
	for (int round = 0; round < 16 && flushed == 0; round++) {
		ssize_t n = read(d->src, scratch, sizeof(scratch));
		if (n > 0) {
			d->bytes += (uint64_t)n;
			flushed = dir_write(d, (size_t)n);
			if ((size_t)n < sizeof(scratch))
				break; /* the socket is drained for now */
			continue;
		}
		if (n == 0) {
			d->eof = true;
			event_del(d->rev);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		tunnel_end(c, d == &d->t->up ? "tunnel client error" : "tunnel upstream error");
		return;
	}
	touch(c);
	dir_settle(d, flushed);
}

static void dir_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct tunnel_dir *d = arg;
	dir_settle(d, dir_flush(d));
}

static void tunnel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tunnel_end(arg, "tunnel idle timeout");
}

static int dir_init(struct tunnel *t, struct tunnel_dir *d, int src, int dst)
{
	struct event_base *base = t->c->w->base;
	d->t = t;
	d->src = src;
	d->dst = dst;
	d->pending = evbuffer_new();
	d->rev = event_new(base, src, EV_READ | EV_PERSIST, dir_read_cb, d);
	d->wev = event_new(base, dst, EV_WRITE | EV_PERSIST, dir_write_cb, d);
	return d->pending != NULL && d->rev != NULL && d->wev != NULL ? 0 : -1;
}

static void dir_free(struct tunnel_dir *d)
{
	if (d->rev != NULL)
		event_free(d->rev);
	if (d->wev != NULL)
		event_free(d->wev);
	if (d->pending != NULL)
		evbuffer_free(d->pending);
}

void tunnel_free(struct conn *c)
{
	struct tunnel *t = c->tunnel;
	if (t == NULL)
		return;
	if (c->rq->outcome == OUTCOME_NONE) {
		c->rq->outcome = c->rq->status == 101 ? OUTCOME_OK : OUTCOME_TUNNEL;
		c->rq->bytes_in += t->up.bytes;
		c->rq->bytes_out += t->down.bytes;
		conn_log_access(c);
	}
	metrics_tunnel(c->w->metrics, -1);
	dir_free(&t->up);
	dir_free(&t->down);
	if (!t->bev_mode) {
		close(t->fd[0]);
		close(t->fd[1]);
	}
	free(t);
	c->tunnel = NULL;
}

/* ---- bufferevent mode (TLS on a side) ------------------------------------ */

static struct bufferevent *other_bev(struct conn *c, struct bufferevent *bev)
{
	return bev == c->cbev ? c->ubev : c->cbev;
}

/* After an EOF: end once the surviving side has written what it holds. */
static void bev_maybe_end(struct conn *c)
{
	if (!c->tunnel->bev_eof)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->cbev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->ubev)) == 0)
		tunnel_end(c, "tunnel closed");
}

static void bev_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct tunnel *t = c->tunnel;
	struct bufferevent *dst = other_bev(c, bev);
	struct evbuffer *in = bufferevent_get_input(bev);
	struct tunnel_dir *d = bev == c->cbev ? &t->up : &t->down;
	d->bytes += evbuffer_get_length(in);
	evbuffer_add_buffer(bufferevent_get_output(dst), in);
	touch(c);
	if (evbuffer_get_length(bufferevent_get_output(dst)) >= TUNNEL_HIGH) {
		/* dst is slow: stop reading here until it has drained */
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, TUNNEL_HIGH / 2, 0);
	}
}

static void bev_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct tunnel *t = c->tunnel;
	if (t->bev_eof) {
		bev_maybe_end(c);
		return;
	}
	/* drained below the low mark: the other side may read again */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(other_bev(c, bev), EV_READ);
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct tunnel *t = c->tunnel;
	if (what & BEV_EVENT_ERROR) {
		tunnel_end(c, bev == c->cbev ? "tunnel client error" : "tunnel upstream error");
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* what was read before the EOF is queued on the other side */
		t->bev_eof = true;
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_disable(c->ubev, EV_READ);
		bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
		bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
		bev_maybe_end(c);
	}
}

static void bev_tunnel_start(struct conn *c, struct tunnel *t)
{
	t->bev_mode = true;
	t->up.t = t->down.t = t;
	/* the client's pipelined bytes go first, then whatever the server
	 * sent after its 101 */
	t->up.bytes += evbuffer_get_length(bufferevent_get_input(c->cbev));
	evbuffer_add_buffer(bufferevent_get_output(c->ubev), bufferevent_get_input(c->cbev));
	t->down.bytes += evbuffer_get_length(bufferevent_get_input(c->ubev));
	evbuffer_add_buffer(bufferevent_get_output(c->cbev), bufferevent_get_input(c->ubev));
	bufferevent_set_timeouts(c->cbev, NULL, NULL);
	bufferevent_set_timeouts(c->ubev, NULL, NULL);
	bufferevent_setwatermark(c->cbev, EV_READ, 0, 0);
	bufferevent_setwatermark(c->ubev, EV_READ, 0, 0);
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
	bufferevent_setcb(c->cbev, bev_read_cb, bev_write_cb, bev_event_cb, c);
	bufferevent_setcb(c->ubev, bev_read_cb, bev_write_cb, bev_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
	event_assign(c->timer, c->w->base, -1, 0, tunnel_timer_cb, c);
	touch(c);
}

/* Take the socket out of its bufferevent (which keeps nothing to close). */
static int detach_fd(struct bufferevent *bev)
{
	int fd = bufferevent_getfd(bev);
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	bufferevent_setfd(bev, -1);
	return fd;
}

void tunnel_start(struct conn *c)
{
	struct tunnel *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		conn_close(c, "out of memory starting a tunnel");
		return;
	}
	c->state = CONN_TUNNEL;
	c->tunnel = t;
	t->c = c;
	metrics_tunnel(c->w->metrics, 1);
	if (bufferevent_openssl_get_ssl(c->cbev) != NULL || bufferevent_openssl_get_ssl(c->ubev) != NULL) {
		bev_tunnel_start(c, t);
		return;
	}
	t->fd[0] = detach_fd(c->cbev);
	t->fd[1] = detach_fd(c->ubev);
	if (dir_init(t, &t->up, t->fd[0], t->fd[1]) != 0 ||
	    dir_init(t, &t->down, t->fd[1], t->fd[0]) != 0) {
		log_error("cannot start a tunnel: %s", strerror(errno));
		conn_close(c, "tunnel setup failed");
		return;
	}
	/* What is already in user space goes first, in order: our own head to
	 * the client, then what the server sent after it; the client's
	 * pipelined bytes to the server. */
	evbuffer_add_buffer(t->down.pending, bufferevent_get_output(c->cbev));
	t->down.bytes += evbuffer_get_length(bufferevent_get_input(c->ubev));
	evbuffer_add_buffer(t->down.pending, bufferevent_get_input(c->ubev));
	t->up.bytes += evbuffer_get_length(bufferevent_get_input(c->cbev));
	evbuffer_add_buffer(t->up.pending, bufferevent_get_input(c->cbev));
	evbuffer_add_buffer(t->up.pending, bufferevent_get_output(c->ubev));
	bufferevent_set_timeouts(c->cbev, NULL, NULL);
	bufferevent_set_timeouts(c->ubev, NULL, NULL);
	evtimer_del(c->timer);
	event_assign(c->timer, c->w->base, -1, 0, tunnel_timer_cb, c);
	touch(c);
	dir_settle(&t->up, dir_flush(&t->up));
	if (c->dead)
		return;
	dir_settle(&t->down, dir_flush(&t->down));
}

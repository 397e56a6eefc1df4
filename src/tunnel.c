/* tunnel.c - relay bytes both ways (CONNECT, or after a 101 upgrade).
 *
 * Back-pressure: when one side's output holds RELAY_HIGH bytes the other
 * side stops being read until it drains to half. EOF on one side is passed on
 * as a half-close (shutdown(SHUT_WR)) once everything read before it has been
 * written; the tunnel ends when both directions are shut. An idle timer ends
 * a tunnel that carries nothing in either direction for tunnel_idle_timeout. */
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

#define TUNNEL_HIGH (256 * 1024)

static void tunnel_read_cb(struct bufferevent *bev, void *arg);
static void tunnel_write_cb(struct bufferevent *bev, void *arg);
static void tunnel_event_cb(struct bufferevent *bev, short what, void *arg);

static void tunnel_end(struct conn *c, const char *reason)
{
	c->outcome = c->status == 101 ? "OK" : "TUNNEL";
	c->bytes_in += c->up.bytes;
	c->bytes_out += c->down.bytes;
	conn_log_access(c);
	conn_close(c, reason);
}

/* Re-arm the idle timer: any byte either way counts as activity. */
static void touch(struct conn *c)
{
	double s = c->w->cfg->tunnel_idle_timeout;
	struct timeval tv = { (time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6) };
	evtimer_add(c->timer, &tv);
}

/* Shut the write side of dst once src hit EOF and dst's output is empty. */
static void maybe_shut(struct conn *c, struct bufferevent *dst, struct tunnel_half *h)
{
	if (!h->eof || h->shut || evbuffer_get_length(bufferevent_get_output(dst)) > 0)
		return;
	h->shut = true;
	shutdown(bufferevent_getfd(dst), SHUT_WR);
	if (c->up.shut && c->down.shut)
		tunnel_end(c, "tunnel closed");
}

/* Move what src has read to dst. */
static void pump(struct conn *c, struct bufferevent *src, struct bufferevent *dst,
		 struct tunnel_half *h)
{
	struct evbuffer *in = bufferevent_get_input(src);
	struct evbuffer *out = bufferevent_get_output(dst);
	size_t n = evbuffer_get_length(in);
	if (n > 0) {
		h->bytes += n;
		evbuffer_add_buffer(out, in);
		touch(c);
	}
	if (evbuffer_get_length(out) >= TUNNEL_HIGH) {
		bufferevent_disable(src, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, TUNNEL_HIGH / 2, 0);
	}
}

static void tunnel_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (bev == c->cbev)
		pump(c, c->cbev, c->ubev, &c->up);
	else
		pump(c, c->ubev, c->cbev, &c->down);
}

static void tunnel_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct bufferevent *src = bev == c->cbev ? c->ubev : c->cbev;
	struct tunnel_half *h = bev == c->cbev ? &c->down : &c->up;
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (!h->eof)
		bufferevent_enable(src, EV_READ);
	maybe_shut(c, bev, h);
}

static void tunnel_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	bool client = bev == c->cbev;
	struct bufferevent *dst = client ? c->ubev : c->cbev;
	struct tunnel_half *h = client ? &c->up : &c->down;
	if (what & BEV_EVENT_EOF) {
		/* Relay what is left, then pass the half-close on. */
		tunnel_read_cb(bev, c);
		h->eof = true;
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(dst, EV_WRITE, 0, 0);
		maybe_shut(c, dst, h);
		return;
	}
	tunnel_end(c, client ? "tunnel client error" : "tunnel upstream error");
}

static void tunnel_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	tunnel_end(arg, "tunnel idle timeout");
}

void tunnel_start(struct conn *c)
{
	c->state = CONN_TUNNEL;
	c->up = (struct tunnel_half){ 0 };
	c->down = (struct tunnel_half){ 0 };
	evtimer_del(c->timer);
	event_assign(c->timer, c->w->base, -1, 0, tunnel_timer_cb, c);
	bufferevent_set_timeouts(c->cbev, NULL, NULL);
	bufferevent_set_timeouts(c->ubev, NULL, NULL);
	bufferevent_setwatermark(c->cbev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(c->ubev, EV_WRITE, 0, 0);
	/* Bulk transfer: fewer, larger reads and writes than libevent's 16 KiB
	 * default (bounded by TUNNEL_HIGH, so memory stays bounded). */
	bufferevent_set_max_single_read(c->cbev, TUNNEL_HIGH / 2);
	bufferevent_set_max_single_read(c->ubev, TUNNEL_HIGH / 2);
	bufferevent_set_max_single_write(c->cbev, TUNNEL_HIGH);
	bufferevent_set_max_single_write(c->ubev, TUNNEL_HIGH);
	bufferevent_setcb(c->cbev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, c);
	bufferevent_setcb(c->ubev, tunnel_read_cb, tunnel_write_cb, tunnel_event_cb, c);
	bufferevent_enable(c->cbev, EV_READ | EV_WRITE);
	bufferevent_enable(c->ubev, EV_READ | EV_WRITE);
	touch(c);
	/* Bytes the client pipelined right after its request head. */
	pump(c, c->cbev, c->ubev, &c->up);
	/* Bytes the server sent right after its 101 head. */
	pump(c, c->ubev, c->cbev, &c->down);
}

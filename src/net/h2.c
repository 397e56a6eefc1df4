/* h2.c - HTTP/2 sessions on the HTTPS proxy port (h2.h). */
#include "h2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "body.h"
#include "config.h"
#include "conn.h"
#include "h2_translate.h"
#include "http_parser.h"
#include "stage_limits.h"
#include "log.h"
#include "metrics.h"
#include "timeval.h"
#include "worker.h"

/* TLS output buffered before nghttp2 is told to wait. */
#define H2_SESSION_OUT_HIGH (512 * 1024)
/* The windows this side grants: per stream, and for the whole connection. */
#define H2_STREAM_WINDOW (256 * 1024)
#define H2_CONN_WINDOW (4 * 1024 * 1024)
/* RFC 9113 §6.5.2: a field's size is its name and value plus 32. */
#define H2_FIELD_OVERHEAD 32

enum rstate {
	RS_HEAD,   /* reading the pipeline's response head */
	RS_BODY,   /* its body, by its framing */
	RS_TUNNEL, /* CONNECT answered 2xx: bytes both ways */
	RS_DONE,   /* the whole response is in st->out */
};

/* Offsets of one received field in the stream's header buffer. */
struct field_off {
	size_t name, namelen, value, valuelen;
};

struct h2_stream {
	struct h2_stream *next, *prev;
	struct h2_session *s;
	int32_t id;
	/* the header list being received (request, then trailers) */
	char *hbuf;
	size_t hlen, hcap;
	struct field_off *fld;
	size_t nfld, capfld;
	size_t hsize;       /* its size as RFC 9113 §6.5.2 counts it */
	bool too_large;     /* larger than [limits] max_header_bytes: not kept */
	bool started;       /* the request went to the pipeline */
	bool chunked;       /* its body goes there chunked */
	bool connect;
	bool head_request;
	bool req_done;      /* END_STREAM received */
	bool shut_wr;       /* CONNECT: half-close the pipeline once its output drains */
	bool pipe_wdead;    /* the pipeline stopped reading: the client's DATA is dropped */
	char *req_trailers; /* chunked trailer lines of the request (heap) */
	size_t req_trailers_len;
	/* the pipeline */
	struct bufferevent *pbev;
	size_t unacked;     /* DATA written to the pipeline, its window not yet given back */
	/* the response */
	enum rstate rstate;
	struct http_response res;
	struct http_framing framing;
	struct body body;   /* its body, de-framed (trailers kept) */
	struct evbuffer *out;  /* body bytes waiting for DATA frames */
	bool out_eof;
	bool deferred;      /* the data provider waits for st->out */
	bool submitted;     /* a response went to nghttp2 */
	struct h2_header *trailers; /* response trailers (one allocation) */
	size_t ntrailers;
	bool closed;        /* nghttp2 closed it: freed from the reaper */
};

struct h2_session {
	struct h2_session *next, *prev;
	struct worker *w;
	struct bufferevent *bev;
	nghttp2_session *ng;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	bool counted;      /* the client table counts it (stage_limits.c) */
	char client_ip[64];
	struct h2_stream *streams;
	size_t nstreams;
	struct h2_stream *graveyard; /* closed streams, freed by the reaper */
	struct event *timer;         /* idle timeout without streams */
	struct event *reaper;        /* frees closed streams and a dead session */
	bool draining;
	bool closing;     /* ending: the last frames go out, then close (session_linger) */
	bool shut;        /* close_notify and FIN sent */
	struct event *drain; /* lingering: the socket read and dropped until close */
	bool dead;
	uint64_t id;      /* for the streams' connections to find it (h2_identity_*) */
	char *auth_user;  /* the Negotiate identity a stream gave the connection */
	int64_t auth_until;
	double resets;    /* RST_STREAM budget (a token bucket, refilled by time) */
	struct timespec resets_t;
};

/* RST_STREAM frames a client may send in a burst, and a second after it:
 * beyond, the session ends with GOAWAY ENHANCE_YOUR_CALM (the "rapid reset"
 * attack, CVE-2023-44487). nghttp2's own limit (1000, 33/s) is behind it. */
#define H2_RESET_BURST 500
#define H2_RESET_RATE 33

static void session_close(struct h2_session *s, const char *why);
static void session_end(struct h2_session *s);
static void session_fail(struct h2_session *s, uint32_t code);
static void session_flush(struct h2_session *s);
static void stream_pull(struct h2_stream *st);

/* ---- streams --------------------------------------------------------------- */

/* nghttp2_nv's pointers are not const, though nghttp2 only reads them. */
static uint8_t *nv_bytes(const uint8_t *p)
{
	uint8_t *q;
	memcpy(&q, &p, sizeof(q));
	return q;
}

static void stream_unlink(struct h2_stream *st)
{
	struct h2_session *s = st->s;
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	st->next = st->prev = NULL;
}

static void stream_free(struct h2_stream *st)
{
	if (st->pbev != NULL)
		bufferevent_free(st->pbev); /* the pipeline's connection sees the close */
	if (st->out != NULL)
		evbuffer_free(st->out);
	body_free(&st->body);
	free(st->res.fields);
	free(st->hbuf);
	free(st->fld);
	free(st->req_trailers);
	free(st->trailers);
	free(st);
}

/* A closed stream's pipeline end that still has bytes to write (the
 * client's last DATA, a CONNECT's half-close): it writes them, then closes.
 * The worker's lingering ends are listed, so an exit frees them. */
struct lingering_end {
	struct lingering_end *next, *prev;
	struct bufferevent *bev;
	bool shut_wr;
};

static struct lingering_end *lingering;

static void linger_free(struct lingering_end *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		lingering = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	bufferevent_free(l->bev);
	free(l);
}

static void linger_write_cb(struct bufferevent *bev, void *arg)
{
	struct lingering_end *l = arg;
	if (l->shut_wr)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
	linger_free(l);
}

static void linger_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	linger_free(arg); /* the pipeline went away, or the timeout */
}

static void pipe_linger(struct bufferevent *bev, bool shut_wr, double timeout)
{
	struct lingering_end *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		bufferevent_free(bev); /* out of memory: the bytes are lost, the pipeline sees EOF */
		return;
	}
	l->bev = bev;
	l->shut_wr = shut_wr;
	l->next = lingering;
	if (lingering != NULL)
		lingering->prev = l;
	lingering = l;
	struct timeval wt = timeval_of(timeout);
	bufferevent_setcb(bev, NULL, linger_write_cb, linger_event_cb, l);
	bufferevent_disable(bev, EV_READ);
	bufferevent_set_timeouts(bev, NULL, &wt);
	bufferevent_enable(bev, EV_WRITE);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		linger_write_cb(bev, l); /* only the half-close was left */
}

/* nghttp2 is done with the stream: detach it now, free it later (a callback
 * of ours may still be on the stack). */
static void stream_retire(struct h2_stream *st)
{
	struct h2_session *s = st->s;
	if (st->closed)
		return;
	st->closed = true;
	if (st->unacked > 0 && s->ng != NULL) {
		/* DATA the pipeline never took (it answered and closed early):
		 * the connection's window must not shrink for it */
		nghttp2_session_consume_connection(s->ng, st->unacked);
		st->unacked = 0;
	}
	if (st->pbev != NULL && (evbuffer_get_length(bufferevent_get_output(st->pbev)) > 0 ||
				 st->shut_wr)) {
		pipe_linger(st->pbev, st->shut_wr, s->w->cfg->client_timeout);
		st->pbev = NULL;
	} else if (st->pbev != NULL) {
		bufferevent_disable(st->pbev, EV_READ | EV_WRITE);
		bufferevent_setcb(st->pbev, NULL, NULL, NULL, NULL);
	}
	stream_unlink(st);
	st->next = s->graveyard;
	s->graveyard = st;
	s->nstreams--;
	metrics_h2_stream(s->w->metrics, -1);
	event_active(s->reaper, EV_TIMEOUT, 0);
	if (s->nstreams == 0 && !s->dead && !s->closing) {
		struct timeval tv = timeval_of(s->w->cfg->idle_timeout);
		evtimer_add(s->timer, &tv);
	}
}

/* Refuse the stream: RST_STREAM with code (nothing was forwarded). */
static void stream_reset(struct h2_stream *st, uint32_t code, const char *why)
{
	if (why != NULL)
		log_info("h2 stream %d from %s reset: %s", st->id, st->s->client_ip, why);
	nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

/* Keep one received field (name, value) unless the list is too large. */
static int stream_keep_field(struct h2_stream *st, const uint8_t *name, size_t namelen,
			     const uint8_t *value, size_t valuelen)
{
	size_t max = st->s->w->cfg->max_header_bytes;
	st->hsize += namelen + valuelen + H2_FIELD_OVERHEAD;
	if (st->hsize > max || st->nfld >= st->s->w->cfg->max_headers) {
		st->too_large = true; /* counted, not kept: an HPACK bomb costs no memory */
		return 0;
	}
	if (st->hlen + namelen + valuelen > st->hcap) {
		size_t cap = st->hcap ? st->hcap : 1024;
		while (cap < st->hlen + namelen + valuelen)
			cap *= 2;
		char *nb = realloc(st->hbuf, cap);
		if (nb == NULL)
			return -1;
		st->hbuf = nb;
		st->hcap = cap;
	}
	if (st->nfld == st->capfld) {
		size_t cap = st->capfld ? st->capfld * 2 : 16;
		struct field_off *nf = realloc(st->fld, cap * sizeof(*nf));
		if (nf == NULL)
			return -1;
		st->fld = nf;
		st->capfld = cap;
	}
	struct field_off *f = &st->fld[st->nfld++];
	f->name = st->hlen;
	f->namelen = namelen;
	if (namelen > 0)
		memcpy(st->hbuf + st->hlen, name, namelen);
	st->hlen += namelen;
	f->value = st->hlen;
	f->valuelen = valuelen;
	if (valuelen > 0)
		memcpy(st->hbuf + st->hlen, value, valuelen);
	st->hlen += valuelen;
	return 0;
}

/* The kept fields as h2_headers (heap), pointing into st->hbuf. */
static struct h2_header *stream_fields(const struct h2_stream *st)
{
	struct h2_header *h = calloc(st->nfld ? st->nfld : 1, sizeof(*h));
	if (h == NULL)
		return NULL;
	for (size_t i = 0; i < st->nfld; i++) {
		const struct field_off *f = &st->fld[i];
		h[i] = (struct h2_header){ (const uint8_t *)st->hbuf + f->name, f->namelen,
					   (const uint8_t *)st->hbuf + f->value, f->valuelen };
	}
	return h;
}

static void stream_fields_reset(struct h2_stream *st)
{
	st->hlen = st->nfld = st->hsize = 0;
	st->too_large = false;
}

/* ---- responses to the client ------------------------------------------------ */

/* nghttp2's data source: the body bytes in st->out. */
static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
			 uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	(void)ng;
	(void)id;
	(void)arg;
	struct h2_stream *st = src->ptr;
	int n = evbuffer_remove(st->out, buf, length);
	if (n < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (st->pbev != NULL && !st->out_eof && evbuffer_get_length(st->out) < H2_STREAM_BUFFER / 2)
		bufferevent_enable(st->pbev, EV_READ); /* room again */
	if (n == 0 && !st->out_eof) {
		st->deferred = true;
		return NGHTTP2_ERR_DEFERRED;
	}
	if (st->out_eof && evbuffer_get_length(st->out) == 0) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (st->ntrailers > 0) {
			nghttp2_nv *nv = calloc(st->ntrailers, sizeof(*nv));
			if (nv != NULL) {
				for (size_t i = 0; i < st->ntrailers; i++)
					nv[i] = (nghttp2_nv){ nv_bytes(st->trailers[i].name),
							      nv_bytes(st->trailers[i].value),
							      st->trailers[i].namelen,
							      st->trailers[i].valuelen,
							      NGHTTP2_NV_FLAG_NONE };
				if (nghttp2_submit_trailer(st->s->ng, st->id, nv, st->ntrailers) == 0)
					*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
				free(nv);
			}
		}
	}
	return n;
}

/* More of the body (or its end) is in st->out: wake the data provider. */
static void stream_wake(struct h2_stream *st)
{
	if (st->deferred && st->submitted) {
		st->deferred = false;
		nghttp2_session_resume_data(st->s->ng, st->id);
	}
}

/* Submit the response head (fields from h2_response_fields), with a body
 * provider unless it has none. */
static int stream_submit(struct h2_stream *st, const struct h2_header *h, size_t n, bool body)
{
	nghttp2_nv *nv = calloc(n ? n : 1, sizeof(*nv));
	if (nv == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		nv[i] = (nghttp2_nv){ nv_bytes(h[i].name), nv_bytes(h[i].value), h[i].namelen,
				      h[i].valuelen, NGHTTP2_NV_FLAG_NONE };
	nghttp2_data_provider prd = { .source.ptr = st, .read_callback = data_read };
	int rc = nghttp2_submit_response(st->s->ng, st->id, nv, n, body ? &prd : NULL);
	free(nv);
	if (rc == 0)
		st->submitted = true;
	return rc;
}

/* The response head the pipeline wrote: translate it. Returns the bytes
 * used, 0 for more, -1 when the stream was reset. */
static ssize_t read_head(struct h2_stream *st, const char *buf, size_t len)
{
	const struct config *cfg = st->s->w->cfg;
	/* the pipeline's own head: the origin's fields (at most max_header_bytes)
	 * and the few the proxy adds */
	struct http_limits lim = { 2 * cfg->max_header_bytes + 8192, 2 * cfg->max_header_bytes + 8192,
				   2 * cfg->max_headers + 32 };
	if (st->res.fields == NULL) {
		st->res.fields = calloc(lim.max_headers, sizeof(*st->res.fields));
		if (st->res.fields == NULL)
			return -1;
		st->res.fields_cap = lim.max_headers;
	}
	st->res.nfields = 0;
	ssize_t r = http_parse_response(buf, len, &st->res, &lim);
	if (r == HTTP_NEED_MORE)
		return 0;
	if (r < 0) {
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "the pipeline's response head does not parse");
		return -1;
	}
	if (st->res.status < 200)
		return r; /* interim (100 Continue): the client needs none here */
	struct h2_header *h = NULL;
	size_t n = 0;
	if (http_response_framing(&st->res, st->head_request, st->connect, &st->framing) < 0 ||
	    h2_response_fields(&st->res, &h, &n) < 0) {
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "the pipeline's response cannot be translated");
		return -1;
	}
	bool tunnel = st->connect && st->res.status / 100 == 2;
	bool body = tunnel || st->framing.kind != HTTP_BODY_NONE;
	st->rstate = tunnel ? RS_TUNNEL : !body ? RS_DONE : RS_BODY;
	body_init(&st->body, &st->framing, false, cfg->max_header_bytes);
	st->body.keep_trailers = true;
	st->out_eof = !body;
	int rc = stream_submit(st, h, n, body);
	free(h);
	if (rc != 0) {
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "out of memory");
		return -1;
	}
	return r;
}

/* The trailers of the body just ended, for a trailers HEADERS frame. */
static void take_trailers(struct h2_stream *st)
{
	struct evbuffer *ctl = st->body.ctl;
	size_t len = ctl != NULL ? evbuffer_get_length(ctl) : 0;
	const char *t = len > 0 ? (const char *)evbuffer_pullup(ctl, (ev_ssize_t)len) : NULL;
	size_t n = len > 0 ? http_chunked_trailers(t, len, NULL, 0) : 0;
	struct http_field *f = n > 0 ? calloc(n, sizeof(*f)) : NULL;
	if (f == NULL)
		return; /* none, or out of memory: the stream ends without them */
	http_chunked_trailers(t, len, f, n);
	if (h2_trailer_fields(f, n, &st->trailers, &st->ntrailers) < 0) {
		st->trailers = NULL;
		st->ntrailers = 0;
	}
	free(f);
}

/* Move body bytes from the pipeline's input into st->out, by the framing.
 * Returns -1 when the stream was reset. */
static int read_body(struct h2_stream *st, struct evbuffer *in)
{
	if (st->rstate == RS_TUNNEL) {
		evbuffer_add_buffer(st->out, in);
		return 0;
	}
	int r = body_relay(&st->body, in, st->out, 0);
	if (r == BODY_MALFORMED) {
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "the pipeline's chunked body is malformed");
		return -1;
	}
	if (r == BODY_DONE) {
		take_trailers(st);
		st->rstate = RS_DONE;
		st->out_eof = true;
	}
	return 0;
}

/* Read what the pipeline has written for this stream. */
static void stream_pull(struct h2_stream *st)
{
	struct evbuffer *in = bufferevent_get_input(st->pbev);
	while (st->rstate == RS_HEAD && evbuffer_get_length(in) > 0) {
		size_t avail = evbuffer_get_length(in);
		const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)avail);
		ssize_t used = read_head(st, buf, avail);
		if (used < 0)
			return;
		if (used == 0)
			break;
		evbuffer_drain(in, (size_t)used);
	}
	if ((st->rstate == RS_BODY || st->rstate == RS_TUNNEL) && read_body(st, in) < 0)
		return;
	if (st->rstate == RS_DONE)
		evbuffer_drain(in, evbuffer_get_length(in)); /* nothing follows a response */
	if (evbuffer_get_length(st->out) >= H2_STREAM_BUFFER)
		bufferevent_disable(st->pbev, EV_READ); /* the client's window is the limit */
	stream_wake(st);
}

/* ---- the pipeline's side of a stream ---------------------------------------- */

static void pipe_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct h2_stream *st = arg;
	struct h2_session *s = st->s;
	stream_pull(st);
	session_flush(s);
}

/* The pipeline took the DATA written to it: give the window back, and
 * half-close it after a CONNECT stream's END_STREAM. */
static void pipe_write_cb(struct bufferevent *bev, void *arg)
{
	struct h2_stream *st = arg;
	struct h2_session *s = st->s;
	if (st->unacked > 0) {
		nghttp2_session_consume(s->ng, st->id, st->unacked);
		st->unacked = 0;
	}
	if (st->shut_wr && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		st->shut_wr = false;
	}
	session_flush(s);
}

static void pipe_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct h2_stream *st = arg;
	struct h2_session *s = st->s;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if ((what & BEV_EVENT_WRITING) && !(what & BEV_EVENT_READING)) {
		/* the pipeline stopped reading (it answered early, a 407 say, and
		 * closed): its response may still be in the socket; what the
		 * client sends from now on is dropped */
		st->pipe_wdead = true;
		evbuffer_drain(bufferevent_get_output(bev), evbuffer_get_length(bufferevent_get_output(bev)));
		if (st->unacked > 0) {
			nghttp2_session_consume(s->ng, st->id, st->unacked);
			st->unacked = 0;
		}
		session_flush(s);
		return;
	}
	stream_pull(st);
	bufferevent_disable(st->pbev, EV_READ);
	if (st->rstate == RS_TUNNEL || (st->rstate == RS_BODY && st->framing.kind == HTTP_BODY_CLOSE)) {
		st->rstate = RS_DONE;
		st->out_eof = true;
		stream_wake(st);
	} else if (st->rstate != RS_DONE) {
		/* no response, or a cut one: the pipeline already logged why */
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, NULL);
	}
	session_flush(s);
}

/* ---- requests from the client ----------------------------------------------- */

/* A local answer on the stream itself (the request never reached the
 * pipeline): 431 for a header list over the limit. */
static void stream_answer(struct h2_stream *st, int status, const char *details)
{
	char code[4], ps[256];
	snprintf(code, sizeof(code), "%d", status);
	snprintf(ps, sizeof(ps), "%s; error=http_request_error; details=\"%s\"", st->s->w->cfg->via,
		 details);
	struct h2_header h[] = {
		{ (const uint8_t *)":status", 7, (const uint8_t *)code, strlen(code) },
		{ (const uint8_t *)"proxy-status", 12, (const uint8_t *)ps, strlen(ps) },
	};
	log_info("h2 stream %d from %s: %d %s", st->id, st->s->client_ip, status, details);
	st->out_eof = true;
	if (stream_submit(st, h, 2, false) != 0)
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "out of memory");
}

/* Write the request body's end to the pipeline. */
static void request_end(struct h2_stream *st)
{
	st->req_done = true;
	if (st->pbev == NULL)
		return;
	struct evbuffer *out = bufferevent_get_output(st->pbev);
	if (st->chunked) {
		evbuffer_add(out, "0\r\n", 3);
		if (st->req_trailers != NULL)
			evbuffer_add(out, st->req_trailers, st->req_trailers_len);
		evbuffer_add(out, "\r\n", 2);
	} else if (st->connect) {
		st->shut_wr = true;
		if (evbuffer_get_length(out) == 0) {
			shutdown(bufferevent_getfd(st->pbev), SHUT_WR);
			st->shut_wr = false;
		}
	}
}

/* The request's header list is complete: translate it and hand it to a
 * connection of the pipeline. */
static void request_start(struct h2_stream *st, bool end_stream)
{
	struct h2_session *s = st->s;
	struct worker *w = s->w;
	st->started = true;
	if (st->too_large) {
		char why[96];
		snprintf(why, sizeof(why), "request header list larger than %zu bytes or %zu fields",
			 w->cfg->max_header_bytes, w->cfg->max_headers);
		stream_answer(st, 431, why);
		return;
	}
	struct h2_header *h = stream_fields(st);
	struct h2_request rq;
	const char *why = "out of memory";
	if (h == NULL || h2_request_translate(h, st->nfld, end_stream, 2 * w->cfg->max_header_bytes,
					      &rq, &why) != 0) {
		free(h);
		stream_reset(st, h == NULL ? NGHTTP2_INTERNAL_ERROR : NGHTTP2_PROTOCOL_ERROR, why);
		return;
	}
	for (size_t i = 0; i < st->nfld; i++)
		if (h[i].namelen == 7 && memcmp(h[i].name, ":method", 7) == 0 && h[i].valuelen == 4 &&
		    memcmp(h[i].value, "HEAD", 4) == 0)
			st->head_request = true;
	free(h);
	stream_fields_reset(st);
	st->connect = rq.connect;
	st->chunked = rq.chunked;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
		free(rq.head);
		stream_reset(st, NGHTTP2_REFUSED_STREAM, strerror(errno));
		return;
	}
	struct conn *c = conn_new_h2(w, sv[0], (const struct sockaddr *)&s->peer, (int)s->peerlen);
	st->pbev = bufferevent_socket_new(w->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	st->out = evbuffer_new();
	if (c == NULL || st->pbev == NULL || st->out == NULL) {
		if (c != NULL)
			conn_close(c, "out of memory");
		if (st->pbev == NULL)
			close(sv[1]);
		free(rq.head);
		stream_reset(st, NGHTTP2_INTERNAL_ERROR, "out of memory");
		return;
	}
	c->h2_session = s->id;
	bufferevent_setcb(st->pbev, pipe_read_cb, pipe_write_cb, pipe_event_cb, st);
	bufferevent_enable(st->pbev, EV_READ | EV_WRITE);
	evbuffer_add(bufferevent_get_output(st->pbev), rq.head, rq.head_len);
	free(rq.head);
	if (end_stream)
		request_end(st);
}

/* ---- nghttp2 callbacks --------------------------------------------------------- */

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *arg)
{
	(void)ng;
	(void)flags;
	struct h2_session *s = arg;
	struct evbuffer *out = bufferevent_get_output(s->bev);
	if (evbuffer_get_length(out) >= H2_SESSION_OUT_HIGH)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (evbuffer_add(out, data, len) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	return (ssize_t)len;
}

static int begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_session *s = arg;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct h2_stream *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	st->s = s;
	st->id = frame->hd.stream_id;
	st->next = s->streams;
	if (s->streams != NULL)
		s->streams->prev = st;
	s->streams = st;
	s->nstreams++;
	metrics_h2_stream(s->w->metrics, 1);
	evtimer_del(s->timer);
	nghttp2_session_set_stream_user_data(ng, st->id, st);
	return 0;
}

static int header_cb(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
		     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *arg)
{
	(void)flags;
	(void)arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (st == NULL || frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	return stream_keep_field(st, name, namelen, value, valuelen) < 0
		       ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* nghttp2 refused a field (uppercase name, a connection-specific field,
 * ...): RFC 9113 §8.1.1, the stream is malformed. nghttp2 resets it with
 * PROTOCOL_ERROR when this returns TEMPORAL_CALLBACK_FAILURE. */
static int invalid_header_cb(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
			     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			     void *arg)
{
	(void)ng;
	(void)value;
	(void)valuelen;
	(void)flags;
	struct h2_session *s = arg;
	log_info("h2 stream %d from %s reset: invalid field \"%.*s\"", frame->hd.stream_id,
		 s->client_ip, (int)(namelen < 64 ? namelen : 64), (const char *)name);
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

/* One RST_STREAM from the client: false when over the budget. */
static bool reset_allowed(struct h2_session *s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (s->resets_t.tv_sec == 0) {
		s->resets = H2_RESET_BURST;
	} else {
		double dt = (double)(now.tv_sec - s->resets_t.tv_sec) +
			    (double)(now.tv_nsec - s->resets_t.tv_nsec) / 1e9;
		s->resets += dt * H2_RESET_RATE;
		if (s->resets > H2_RESET_BURST)
			s->resets = H2_RESET_BURST;
	}
	s->resets_t = now;
	s->resets -= 1;
	return s->resets >= 0;
}

static int frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_session *s = arg;
	if (frame->hd.type == NGHTTP2_RST_STREAM && !reset_allowed(s)) {
		log_info("h2 session with %s: more than %d stream resets: GOAWAY", s->client_ip,
			 H2_RESET_BURST);
		s->closing = true; /* session_read_cb sends the GOAWAY */
		nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
	if (st == NULL || st->closed)
		return 0;
	bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
	if (frame->hd.type == NGHTTP2_HEADERS) {
		if (!st->started) {
			request_start(st, end);
			return 0;
		}
		/* trailers (RFC 9113 §8.1): they end the stream */
		if (st->chunked && !st->too_large) {
			struct h2_header *h = stream_fields(st);
			const char *why = "out of memory";
			if (h == NULL || h2_request_trailers(h, st->nfld, st->s->w->cfg->max_header_bytes,
							     &st->req_trailers, &st->req_trailers_len,
							     &why) != 0) {
				free(h);
				stream_reset(st, NGHTTP2_PROTOCOL_ERROR, why);
				return 0;
			}
			free(h);
		}
		stream_fields_reset(st);
		if (end)
			request_end(st);
		return 0;
	}
	if (frame->hd.type == NGHTTP2_DATA && end && st->started && !st->req_done)
		request_end(st);
	return 0;
}

static int data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *arg)
{
	(void)flags;
	(void)arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (st == NULL || st->closed || st->pbev == NULL || st->req_done || st->pipe_wdead) {
		nghttp2_session_consume(ng, id, len); /* nobody takes it: give the window back */
		return 0;
	}
	struct evbuffer *out = bufferevent_get_output(st->pbev);
	if (st->chunked && len > 0)
		evbuffer_add_printf(out, "%zx\r\n", len);
	evbuffer_add(out, data, len);
	if (st->chunked && len > 0)
		evbuffer_add(out, "\r\n", 2);
	st->unacked += len;
	return 0;
}

static int stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	(void)code;
	(void)arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);
	if (st != NULL) {
		nghttp2_session_set_stream_user_data(ng, id, NULL);
		stream_retire(st);
	}
	return 0;
}

/* ---- the session ------------------------------------------------------------------ */

/* Send what nghttp2 has; close the session when neither side wants more. */
static void session_flush(struct h2_session *s)
{
	if (s->dead || s->closing)
		return;
	int rv = nghttp2_session_send(s->ng);
	if (rv != 0) {
		session_close(s, nghttp2_strerror(rv));
		return;
	}
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return;
	/* nghttp2 wants nothing more once a GOAWAY went out and no stream can
	 * send to us, but a stream of ours may still wait for its response */
	if (s->nstreams == 0 && (s->draining || (!nghttp2_session_want_read(s->ng) &&
						 !nghttp2_session_want_write(s->ng))))
		session_end(s);
}

/* The GOAWAY is written: close in a second, or when the client does. What
 * it sends meanwhile is read and dropped, so the close is no reset that
 * could destroy the GOAWAY in flight. */
static void session_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct h2_session *s = arg;
	char buf[16384];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			session_close(s, "done");
			return;
		}
		if (n < 0)
			return;
	}
}

static void session_linger(struct h2_session *s)
{
	if (s->drain != NULL)
		return;
	/* the TLS layer has nothing more to say: read the socket itself, into
	 * a buffer on the stack (a flood costs no memory) */
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	s->drain = event_new(s->w->base, bufferevent_getfd(s->bev), EV_READ | EV_PERSIST,
			     session_drain_cb, s);
	if (s->drain != NULL)
		event_add(s->drain, NULL);
	struct timeval tv = { 1, 0 };
	evtimer_add(s->timer, &tv);
}

/* Everything is written: close_notify and FIN, then read (and drop) until
 * the client closes too, at most a second, so unread bytes of the client's
 * (a WINDOW_UPDATE for our last DATA) do not turn the close into a reset
 * that destroys that DATA in flight. */
static void session_end(struct h2_session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	if (ssl != NULL && SSL_shutdown(ssl) < 0)
		ERR_clear_error();
	s->shut = true;
	shutdown(bufferevent_getfd(s->bev), SHUT_WR);
	session_linger(s);
}

/* End the session for the client's fault: GOAWAY with code, then close
 * once it is written (within client_timeout). */
static void session_fail(struct h2_session *s, uint32_t code)
{
	if (s->dead || s->closing)
		return;
	s->closing = true;
	nghttp2_session_terminate_session(s->ng, code);
	nghttp2_session_send(s->ng);
	/* an abusive client's flood is not read any more (reading it only to
	 * drop it would cost as much as it sends) */
	bufferevent_disable(s->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_linger(s);
}

static void session_read_cb(struct bufferevent *bev, void *arg)
{
	struct h2_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (s->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	size_t len = evbuffer_get_length(in);
	const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)len);
	ssize_t n = nghttp2_session_mem_recv(s->ng, data, len);
	if (s->closing) {
		/* a callback ended the session (GOAWAY queued): as session_fail */
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_disable(bev, EV_READ);
		nghttp2_session_send(s->ng);
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
			session_linger(s);
		return;
	}
	if (n < 0) {
		log_info("h2 session with %s: %s", s->client_ip, nghttp2_strerror((int)n));
		session_fail(s, n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || n == NGHTTP2_ERR_FLOODED
					? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
		return;
	}
	evbuffer_drain(in, (size_t)n);
	session_flush(s);
}

static void session_write_cb(struct bufferevent *bev, void *arg)
{
	struct h2_session *s = arg;
	if (s->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			session_linger(s);
		return;
	}
	session_flush(s);
}

static void session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct h2_session *s = arg;
	if (what & BEV_EVENT_TIMEOUT)
		session_close(s, "client timeout");
	else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		session_close(s, (what & BEV_EVENT_EOF) ? "client closed" : "client error");
}

static void session_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct h2_session *s = arg;
	if (s->closing) {
		session_close(s, s->shut ? "done" : "GOAWAY sent");
		return;
	}
	if (s->nstreams > 0)
		return;
	nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
			      NGHTTP2_NO_ERROR, NULL, 0);
	s->draining = true;
	session_flush(s); /* ends the session once the GOAWAY is written */
}

static void session_free(struct h2_session *s)
{
	while (s->graveyard != NULL) {
		struct h2_stream *st = s->graveyard;
		s->graveyard = st->next;
		stream_free(st);
	}
	event_free(s->timer);
	event_free(s->reaper);
	free(s->auth_user);
	free(s);
}

/* Free closed streams, and the session once it is dead. */
static void session_reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct h2_session *s = arg;
	while (s->graveyard != NULL) {
		struct h2_stream *st = s->graveyard;
		s->graveyard = st->next;
		stream_free(st);
	}
	if (s->dead)
		session_free(s);
}

static void session_close(struct h2_session *s, const char *why)
{
	if (s->dead)
		return;
	struct worker *w = s->w;
	s->dead = true;
	log_debug("h2 session with %s closed: %s", s->client_ip, why);
	while (s->streams != NULL) {
		struct h2_stream *st = s->streams;
		nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
		stream_retire(st);
	}
	nghttp2_session_del(s->ng);
	s->ng = NULL;
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	if (!s->shut && ssl != NULL && SSL_shutdown(ssl) < 0)
		ERR_clear_error();
	if (s->drain != NULL) {
		event_free(s->drain);
		s->drain = NULL;
	}
	bufferevent_free(s->bev);
	s->bev = NULL;
	evtimer_del(s->timer);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->h2_sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_active(s->reaper, EV_TIMEOUT, 0);
	if (s->counted)
		limits_conn_closed(w, (const struct sockaddr *)&s->peer);
	w->nconns--;
	metrics_conn(w->metrics, -1);
	worker_conn_closed(w);
}

/* nghttp2 with this proxy's limits and defences. */
static nghttp2_session *session_ng(struct h2_session *s)
{
	nghttp2_session_callbacks *cb;
	nghttp2_option *opt;
	nghttp2_session *ng = NULL;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		return NULL;
	if (nghttp2_option_new(&opt) != 0) {
		nghttp2_session_callbacks_del(cb);
		return NULL;
	}
	nghttp2_session_callbacks_set_send_callback(cb, send_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
	nghttp2_session_callbacks_set_on_invalid_header_callback(cb, invalid_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_chunk_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, stream_close_cb);
	/* the window is given back when the pipeline took the bytes */
	nghttp2_option_set_no_auto_window_update(opt, 1);
	/* CVE-2023-44487 (rapid reset): at most 1000 resets at once, then 33 a
	 * second, beyond which nghttp2 ends the session (GOAWAY). */
	nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
	/* CVE-2024-27316 (CONTINUATION flood): a header block in at most 8
	 * CONTINUATION frames. */
	nghttp2_option_set_max_continuations(opt, 8);
	/* a SETTINGS frame with more entries than there are settings is abuse */
	nghttp2_option_set_max_settings(opt, 32);
	int rc = nghttp2_session_server_new2(&ng, cb, s, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	return rc == 0 ? ng : NULL;
}

bool h2_session_start(struct worker *w, struct bufferevent *bev, const struct sockaddr *peer,
		      socklen_t peerlen, const char *client_ip, bool counted)
{
	const struct config *cfg = w->cfg;
	struct h2_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	static uint64_t next_id;
	s->w = w;
	s->bev = bev;
	s->id = ++next_id;
	if (peerlen > sizeof(s->peer))
		peerlen = sizeof(s->peer);
	memcpy(&s->peer, peer, peerlen);
	s->peerlen = peerlen;
	s->counted = counted;
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", client_ip);
	s->timer = evtimer_new(w->base, session_timer_cb, s);
	s->reaper = event_new(w->base, -1, 0, session_reaper_cb, s);
	s->ng = session_ng(s);
	if (s->timer == NULL || s->reaper == NULL || s->ng == NULL)
		goto fail;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)cfg->tls_max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_header_bytes },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
	    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0)
		goto fail;
	s->next = w->h2_sessions;
	if (w->h2_sessions != NULL)
		w->h2_sessions->prev = s;
	w->h2_sessions = s;
	w->nconns++; /* the TLS connection's place: its conn closes without uncounting */
	metrics_h2_session(w->metrics);
	struct timeval wt = timeval_of(cfg->client_timeout);
	bufferevent_set_timeouts(bev, NULL, &wt);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_setcb(bev, session_read_cb, session_write_cb, session_event_cb, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	struct timeval it = timeval_of(cfg->idle_timeout);
	evtimer_add(s->timer, &it);
	if (w->draining)
		s->draining = true;
	session_flush(s);
	/* bytes the client sent with its handshake */
	if (!s->dead && evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		session_read_cb(bev, s);
	return true;
fail:
	if (s != NULL) {
		if (s->ng != NULL)
			nghttp2_session_del(s->ng);
		if (s->timer != NULL)
			event_free(s->timer);
		if (s->reaper != NULL)
			event_free(s->reaper);
		free(s);
	}
	bufferevent_free(bev);
	if (counted)
		limits_conn_closed(w, peer);
	log_error("out of memory starting an h2 session");
	return false;
}

static struct h2_session *session_by_id(struct worker *w, uint64_t id)
{
	for (struct h2_session *s = w->h2_sessions; s != NULL; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

void h2_identity_get(struct worker *w, uint64_t id, char **user, int64_t *until)
{
	struct h2_session *s = session_by_id(w, id);
	if (s == NULL || s->auth_user == NULL)
		return;
	if ((*user = strdup(s->auth_user)) != NULL)
		*until = s->auth_until;
}

void h2_identity_set(struct worker *w, uint64_t id, const char *user, int64_t until)
{
	struct h2_session *s = session_by_id(w, id);
	if (s == NULL)
		return;
	char *u = user != NULL ? strdup(user) : NULL;
	if (u == NULL && user != NULL)
		return;
	free(s->auth_user);
	s->auth_user = u;
	s->auth_until = until;
}

void h2_drain_all(struct worker *w)
{
	struct h2_session *s = w->h2_sessions;
	while (s != NULL) {
		struct h2_session *next = s->next;
		if (!s->draining) {
			s->draining = true;
			nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
					      nghttp2_session_get_last_proc_stream_id(s->ng),
					      NGHTTP2_NO_ERROR, NULL, 0);
		}
		session_flush(s); /* may close it */
		s = next;
	}
}

void h2_close_all(struct worker *w)
{
	while (w->h2_sessions != NULL)
		session_close(w->h2_sessions, "worker exit");
	while (lingering != NULL)
		linger_free(lingering);
}

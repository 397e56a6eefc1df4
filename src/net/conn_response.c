/* conn_response.c - the response side of a request: response heads parsed
 * and passed through the header stage, re-framed for the client, the cache
 * stage's say on each, and both bodies relayed (body.c) with back-pressure. */
#include "conn.h"
#include "conn_impl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "conn_cache.h"
#include "head.h"
#include "log.h"
#include "timeval.h"
#include "worker.h"

/* RFC 9209 error type of a chunked response body the decoder refused. */
static enum outcome chunked_error_type(const struct http_chunked *ch)
{
	switch (ch->error) {
	case HTTP_CHUNKED_E_TRAILER_LINE:
		return OUTCOME_HTTP_RESPONSE_TRAILER_SIZE;
	case HTTP_CHUNKED_E_TRAILERS:
		return OUTCOME_HTTP_RESPONSE_TRAILER_SECTION_SIZE;
	default:
		return OUTCOME_HTTP_RESPONSE_TRANSFER_CODING;
	}
}

/* Relay the response body; finish the request when it is complete. */
void conn_relay_response_body(struct conn *c)
{
	struct evbuffer *uin = bufferevent_get_input(c->ubev);
	struct evbuffer *cout = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(cout);
	int r = body_relay(&c->rq->sbody, uin, cout, 0);
	c->rq->bytes_out += evbuffer_get_length(cout) - before;
	if (r == BODY_MALFORMED) {
		/* The head is out (or queued): all we can do is cut the
		 * connection so the client sees an incomplete message. What is
		 * queued (the head, the valid part of the body) is written
		 * first: when the bad bytes came in the same read as the head,
		 * closing at once would leave the client with no response at
		 * all instead of a cut one. */
		c->rq->outcome = c->rq->sbody.in == HTTP_BODY_CHUNKED ? chunked_error_type(&c->rq->sbody.chunked)
							       : OUTCOME_HTTP_RESPONSE_INCOMPLETE;
		conn_log_access(c);
		c->client_keepalive = false;
		conn_flush_close(c);
		return;
	}
	if (r == BODY_DONE) {
		if (!c->rq->rbody.done) {
			/* Early response: the rest of the request body cannot be
			 * told apart from a next request, so close after this. */
			c->client_keepalive = false;
			c->rq->upstream_reusable = false;
		}
		conn_done(c);
		return;
	}
	if (evbuffer_get_length(cout) > RELAY_HIGH) {
		bufferevent_disable(c->ubev, EV_READ);
		bufferevent_setwatermark(c->cbev, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

/* Write the response head for the client. */
static void send_response_head(struct conn *c, const bool *keep, const struct http_framing *fr,
			       const char *cache_status)
{
	const struct config *cfg = c->w->cfg;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	head_status(out, c->rq->res.status, c->rq->res.reason);
	head_fields(out, c->rq->res.fields, c->rq->res.nfields, keep, -1);
	head_date_if_missing(out, c->rq->res.fields, c->rq->res.nfields);
	head_via(out, c->rq->res.minor, cfg->via);
	if (cache_status[0] != '\0')
		head_field_str(out, "Cache-Status", cache_status);
	if (fr->kind == HTTP_BODY_LENGTH) {
		head_framing(out, fr->kind, fr->length);
	} else if (fr->kind == HTTP_BODY_NONE) {
		/* HEAD and 304 keep the Content-Length that describes the
		 * selected representation (RFC 9110 §8.6). */
		if (c->rq->res.status != 204 && c->rq->res.status >= 200) {
			const struct http_field *cl =
				http_field_find(c->rq->res.fields, c->rq->res.nfields, "content-length");
			if (cl != NULL)
				evbuffer_add_printf(out, "Content-Length: %.*s\r\n", (int)cl->value.len,
						    cl->value.p);
		}
	} else if (c->rq->sbody.out_chunked) {
		head_framing(out, HTTP_BODY_CHUNKED, 0);
	}
	conn_auth_reply(c, out);
	head_end(out, !c->client_keepalive);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
	c->rq->status = c->rq->res.status;
	c->rq->res_started = true;
}

/* Forward a 1xx interim response to an HTTP/1.1 client (RFC 9110 §15.2: not
 * to 1.0 clients). */
static void send_interim(struct conn *c, const bool *keep)
{
	if (c->rq->req.minor == 0)
		return;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	head_status(out, c->rq->res.status, c->rq->res.reason);
	head_fields(out, c->rq->res.fields, c->rq->res.nfields, keep, -1);
	head_via(out, c->rq->res.minor, c->w->cfg->via);
	head_end(out, false);
	c->rq->bytes_out += evbuffer_get_length(out) - before;
}

/* Upstream answered something we cannot pass on: 502 if nothing was sent yet. */
void conn_bad_response(struct conn *c, int status, enum outcome error, const char *details)
{
	if (c->rq->res_started) {
		/* the head may still be queued: write what is, then cut */
		c->rq->outcome = error;
		conn_log_access(c);
		c->client_keepalive = false;
		log_debug("cut %s: %s", c->client_ip, details);
		conn_flush_close(c);
		return;
	}
	conn_upstream_release(c, false);
	if (conn_cache_upstream_failed(c, status))
		return;
	c->client_keepalive = false;
	conn_fail(c, status, error, details);
}

/* A chunked final response whose head came with the start of its first
 * chunk-size line: the head waits for the rest of that line (it is in
 * flight), so a line the decoder refuses (too long, malformed) is a 502
 * naming why, not a response cut short. A head with no body bytes behind it
 * goes out at once (a stream may send its first chunk much later).
 * Returns 1 to go on, 0 to wait for more bytes, -1 when answered (502). */
static int first_chunk_line(struct conn *c, struct evbuffer *in, size_t head_len)
{
	struct http_framing fr;
	size_t avail = evbuffer_get_length(in);
	if (avail <= head_len || c->rq->res.status < 200 || c->rq->res.status == 101 ||
	    http_response_framing(&c->rq->res, c->rq->head_request, 0, &fr) != 0 ||
	    fr.kind != HTTP_BODY_CHUNKED)
		return 1;
	char line[HTTP_CHUNK_LINE_MAX + 2];
	struct evbuffer_ptr pos;
	evbuffer_ptr_set(in, &pos, head_len, EVBUFFER_PTR_SET);
	ev_ssize_t n = evbuffer_copyout_from(in, &pos, line, sizeof(line));
	if (n <= 0)
		return 1;
	const char *lf = memchr(line, '\n', (size_t)n);
	size_t len = lf != NULL ? (size_t)(lf - line) + 1 : (size_t)n;
	struct http_chunked ch;
	struct slice data;
	http_chunked_init(&ch, HTTP_CHUNK_LINE_MAX, c->w->cfg->max_header_bytes);
	int ret = http_chunked_step(&ch, line, len, &data) < 0 ? -1 : lf != NULL ? 1 : 0;
	if (ret <= 0) {
		/* c->rq->res points into the input buffer, which is not kept */
		c->rq->res.status = 0;
		c->rq->res.nfields = 0;
	}
	if (ret < 0) {
		char why[128];
		http_chunked_why(&ch, why, sizeof(why));
		conn_bad_response(c, 502, chunked_error_type(&ch), why);
	}
	return ret;
}

/* Parse the next response head from uin and pass it through the header
 * stage (keep, info). Returns 1 when a head is taken, 0 when more bytes are
 * needed, -1 when the request was answered or cut. */
static int take_response_head(struct conn *c, struct evbuffer *uin, bool *keep,
			      struct hop_info *info)
{
	const struct config *cfg = c->w->cfg;
	struct request *rq = c->rq;
	size_t avail = evbuffer_get_length(uin);
	if (avail == 0)
		return 0;
	size_t want = avail < cfg->max_header_bytes + 4 ? avail : cfg->max_header_bytes + 4;
	const char *buf = (const char *)evbuffer_pullup(uin, (ev_ssize_t)want);
	struct http_limits lim = { cfg->max_header_bytes, cfg->max_header_bytes, cfg->max_headers };
	rq->res.nfields = 0;
	ssize_t r = http_parse_response(buf, want, &rq->res, &lim);
	if (r == HTTP_NEED_MORE) {
		if (want <= cfg->max_header_bytes)
			return 0;
		conn_bad_response(c, 502, OUTCOME_HTTP_RESPONSE_HEADER_SECTION_SIZE,
				  "response header section too large");
		return -1;
	}
	if (r == HTTP_ERROR) {
		conn_bad_response(c, 502, OUTCOME_HTTP_PROTOCOL_ERROR,
				  "malformed response from upstream");
		return -1;
	}
	int fl = first_chunk_line(c, uin, (size_t)r);
	if (fl <= 0)
		return fl; /* the head is parsed again with the rest of the line */
	struct slice extra[1] = { rq->res.reason };
	if (conn_keep_head(&rq->rhead, &rq->rhead_cap, buf, (size_t)r, rq->res.fields,
			   rq->res.nfields, extra, 1) < 0) {
		conn_bad_response(c, 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory");
		return -1;
	}
	rq->res.reason = extra[0];
	evbuffer_drain(uin, (size_t)r);
	enum hop_result hr =
		hop_classify(rq->res.fields, rq->res.nfields, HOP_RESPONSE, false, keep, info);
	if (hr != HOP_OK) {
		conn_bad_response(c, 502, OUTCOME_HTTP_PROTOCOL_ERROR,
				  hr == HOP_ERR_CONNECTION_FRAMING
					  ? "response Connection lists a field needed by every recipient"
					  : "malformed Connection header in response");
		return -1;
	}
	return 1;
}

/* The parent wants other credentials than [upstream] parent_user: the client
 * can do nothing about it (and Proxy-Authenticate is not passed on), so say
 * what happened, as for a refused CONNECT. */
static void parent_refused(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	/* sized to the reason phrase, whatever its length */
	char *details = NULL;
	if (asprintf(&details, "parent %s:%s answered 407 %.*s", cfg->parent[0].host,
		     cfg->parent[0].port, (int)c->rq->res.reason.len, c->rq->res.reason.p) < 0) {
		conn_bad_response(c, 502, OUTCOME_DESTINATION_UNAVAILABLE, "parent answered 407");
		return;
	}
	for (char *p = details; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '"' || *p == '\\')
			*p = ' ';
	conn_bad_response(c, 502, OUTCOME_DESTINATION_UNAVAILABLE, details);
	free(details);
}

/* 101: the upgrade the client asked for; pass the head on and tunnel. */
static void switch_protocols(struct conn *c, bool *keep, const struct hop_info *info)
{
	struct request *rq = c->rq;
	if (!rq->upgrading || info->upgrade_index < 0) {
		conn_bad_response(c, 502, OUTCOME_HTTP_UPGRADE_FAILED, "unexpected 101 response");
		return;
	}
	keep[info->upgrade_index] = true;
	struct evbuffer *out = bufferevent_get_output(c->cbev);
	size_t before = evbuffer_get_length(out);
	head_status(out, 101, rq->res.reason);
	head_fields(out, rq->res.fields, rq->res.nfields, keep, -1);
	head_via(out, rq->res.minor, c->w->cfg->via);
	head_field_str(out, "Connection", "upgrade");
	head_end(out, false);
	rq->bytes_out += evbuffer_get_length(out) - before;
	rq->status = 101;
	rq->res_started = true;
	tunnel_start(c);
}

/* The final response: framing for this client, the cache stage's say (it
 * may answer from the store), then the head. Returns true when the body
 * follows. */
static bool start_final(struct conn *c, const bool *keep, const struct hop_info *info)
{
	struct request *rq = c->rq;
	struct http_framing fr;
	if (http_response_framing(&rq->res, rq->head_request, 0, &fr) != 0) {
		conn_bad_response(c, 502, OUTCOME_HTTP_PROTOCOL_ERROR, "invalid response framing");
		return false;
	}
	/* Re-frame for this client: a length passes as is; chunked or
	 * close-delimited bodies go chunked to 1.1 clients and close-delimited
	 * to 1.0 clients. */
	bool out_chunked = false;
	if (fr.kind == HTTP_BODY_CHUNKED || fr.kind == HTTP_BODY_CLOSE) {
		if (rq->req.minor >= 1)
			out_chunked = true;
		else
			c->client_keepalive = false;
	}
	if (c->w->draining)
		c->client_keepalive = false;
	body_init(&rq->sbody, &fr, out_chunked, c->w->cfg->max_header_bytes);
	/* an HTTP/2 client keeps the response's trailers (h2.c passes them
	 * through h2_trailer_fields); an HTTP/1.1 client's hop drops them */
	rq->sbody.keep_trailers = c->h2 && rq->sbody.out_chunked && fr.kind == HTTP_BODY_CHUNKED;
	rq->upstream_reusable = rq->res.minor >= 1 && !info->conn_close &&
				fr.kind != HTTP_BODY_CLOSE && !rq->upgrading;
	char cache_status[160];
	int cr = conn_cache_response(c, keep, &fr, cache_status, sizeof(cache_status));
	if (cr < 0) {
		conn_bad_response(c, 500, OUTCOME_PROXY_INTERNAL_ERROR,
				  "the stored response was lost while it was revalidated");
		return false;
	}
	if (cr == 1) {
		/* answered from the store: the upstream connection is reusable
		 * only if no body follows */
		rq->upstream_reusable = rq->upstream_reusable && fr.kind == HTTP_BODY_NONE;
		rq->sbody.done = false;
		conn_done(c);
		return false;
	}
	send_response_head(c, keep, &fr, cache_status);
	return true;
}

/* Parse response heads until the final one; then start relaying its body. */
void conn_read_response(struct conn *c)
{
	struct evbuffer *uin = bufferevent_get_input(c->ubev);
	bool keep[c->w->cfg->max_headers + 1];
	while (!c->rq->res_started) {
		struct hop_info info;
		if (take_response_head(c, uin, keep, &info) <= 0)
			return;
		struct request *rq = c->rq;
		if (rq->res.status == 407 && rq->via_parent && !rq->upstream_tls) {
			parent_refused(c);
			return;
		}
		if (rq->res.status == 101) {
			switch_protocols(c, keep, &info);
			return;
		}
		if (rq->res.status < 200) {
			send_interim(c, keep);
			continue;
		}
		if (!start_final(c, keep, &info))
			return;
	}
	conn_relay_response_body(c);
}

/* Relay request body bytes from the client to upstream. */
void conn_relay_request_body(struct conn *c)
{
	struct evbuffer *cin = bufferevent_get_input(c->cbev);
	struct evbuffer *uout = bufferevent_get_output(c->ubev);
	size_t before = evbuffer_get_length(cin);
	int r = body_relay(&c->rq->rbody, cin, uout, c->w->cfg->max_body);
	c->rq->bytes_in += before - evbuffer_get_length(cin);
	if (r == BODY_TOO_LARGE || (r >= 0 && c->w->cfg->max_body > 0 && c->rq->rbody.total > c->w->cfg->max_body)) {
		c->client_keepalive = false;
		if (c->rq->res_started) {
			conn_close(c, "request body too large");
			return;
		}
		conn_upstream_release(c, false);
		conn_fail(c, 413, OUTCOME_HTTP_REQUEST_ERROR, "request body too large");
		return;
	}
	if (r == BODY_MALFORMED) {
		c->client_keepalive = false;
		if (c->rq->res_started) {
			conn_close(c, "malformed request body");
			return;
		}
		conn_upstream_release(c, false);
		char why[128];
		http_chunked_why(&c->rq->rbody.chunked, why, sizeof(why));
		conn_fail(c, 400, OUTCOME_HTTP_REQUEST_ERROR, why);
		return;
	}
	if (r == BODY_DONE) {
		/* Body complete: pipelined bytes wait in the buffer. */
		struct timeval wt = timeval_of(c->w->cfg->client_timeout);
		bufferevent_set_timeouts(c->cbev, NULL, &wt);
		struct timeval ut = timeval_of(c->w->cfg->upstream_timeout);
		bufferevent_set_timeouts(c->ubev, &ut, &ut);
		return;
	}
	if (evbuffer_get_length(uout) > RELAY_HIGH) {
		bufferevent_disable(c->cbev, EV_READ);
		bufferevent_setwatermark(c->ubev, EV_WRITE, RELAY_HIGH / 2, 0);
	}
}

void conn_upstream_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (!c->rq->res_started)
		conn_read_response(c);
	else
		conn_relay_response_body(c);
}

void conn_upstream_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (!c->rq->rbody.done) {
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->cbev, EV_READ);
		conn_relay_request_body(c);
	}
}

void conn_upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	struct conn *c = arg;
	if (what & BEV_EVENT_TIMEOUT) {
		if (!c->rq->res_started)
			conn_bad_response(c, 504, OUTCOME_HTTP_RESPONSE_TIMEOUT, "upstream did not answer in time");
		else
			conn_bad_response(c, 504, OUTCOME_CONNECTION_READ_TIMEOUT, "upstream stalled");
		return;
	}
	if (!c->rq->res_started && c->rq->res.status == 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0 && conn_maybe_retry(c))
		return;
	if (what & BEV_EVENT_EOF) {
		/* Bytes may still sit in the input buffer: parse and relay them
		 * first. Either step may end the request or the connection. */
		if (!c->rq->res_started) {
			conn_read_response(c);
			if (c->dead || c->state != CONN_FORWARD)
				return;
			if (!c->rq->res_started) {
				conn_bad_response(c, 502, OUTCOME_HTTP_RESPONSE_INCOMPLETE,
					     "upstream closed without a complete response");
				return;
			}
		}
		conn_relay_response_body(c);
		if (c->dead || c->state != CONN_FORWARD)
			return;
		if (c->rq->sbody.in == HTTP_BODY_CLOSE) {
			c->rq->bytes_out += body_close(&c->rq->sbody, bufferevent_get_output(c->cbev));
			c->rq->upstream_reusable = false;
			if (!c->rq->rbody.done)
				c->client_keepalive = false;
			conn_done(c);
			return;
		}
		conn_bad_response(c, 502, OUTCOME_HTTP_RESPONSE_INCOMPLETE, "upstream closed mid-response");
		return;
	}
	conn_bad_response(c, 502, OUTCOME_CONNECTION_TERMINATED, "upstream connection error");
}

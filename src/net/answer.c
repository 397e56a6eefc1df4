/* answer.c - the proxy's own answers. */
#include "answer.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "head.h"

struct answer answer_max_forwards(struct evbuffer *out, const struct http_request *req,
				  const char *via, bool close)
{
	if (!slice_eq(req->method, "TRACE")) {
		head_status_str(out, 200, "OK");
		head_field_str(out, "Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, CONNECT");
		head_framing(out, HTTP_BODY_LENGTH, 0);
		head_via(out, req->minor, via);
		head_end(out, close);
		return (struct answer){ .status = 200 };
	}
	struct evbuffer *body = evbuffer_new();
	if (body == NULL)
		return (struct answer){ 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory", NULL };
	evbuffer_add_printf(body, "%.*s %.*s HTTP/1.%d\r\n", (int)req->method.len, req->method.p,
			    (int)req->target.len, req->target.p, req->minor);
	for (size_t i = 0; i < req->nfields; i++)
		if (!slice_eq_ci(req->fields[i].name, "proxy-authorization"))
			head_field(body, req->fields[i].name, req->fields[i].value);
	evbuffer_add(body, "\r\n", 2);
	head_status_str(out, 200, "OK");
	head_field_str(out, "Content-Type", "message/http");
	head_framing(out, HTTP_BODY_LENGTH, evbuffer_get_length(body));
	head_via(out, req->minor, via);
	head_end(out, close);
	evbuffer_add_buffer(out, body);
	evbuffer_free(body);
	return (struct answer){ .status = 200 };
}

struct answer answer_admin(struct evbuffer *out, enum admin_resource ar, const struct config *cfg,
			   const struct metrics *all, const struct http_request *req,
			   const struct sockaddr *client, bool admin_listener, bool close)
{
	if (!admin_served_here(cfg, ar, admin_listener))
		return (struct answer){ 404, OUTCOME_HTTP_REQUEST_ERROR,
					ar == ADMIN_PAC ? "the PAC file is served on the proxy port"
							: "served on the admin listener ([admin] listen)",
					NULL };
	if (!admin_allowed(cfg, ar, client))
		return (struct answer){ 403, OUTCOME_HTTP_REQUEST_DENIED, "not an [admin] allow address",
					NULL };
	bool head = slice_eq(req->method, "HEAD");
	if (!slice_eq(req->method, "GET") && !head)
		return (struct answer){ 405, OUTCOME_HTTP_REQUEST_ERROR, "only GET and HEAD",
					"Allow: GET, HEAD\r\n" };
	/* the Host value whole (pac.c checks it): a cut one could name
	 * another host */
	const struct http_field *hf = http_field_find(req->fields, req->nfields, "host");
	char *host = hf != NULL && hf->value.len > 0 ? strndup(hf->value.p, hf->value.len) : NULL;
	struct evbuffer *body = evbuffer_new();
	if (body == NULL || (hf != NULL && hf->value.len > 0 && host == NULL)) {
		free(host);
		if (body != NULL)
			evbuffer_free(body);
		return (struct answer){ 500, OUTCOME_PROXY_INTERNAL_ERROR, "out of memory", NULL };
	}
	const char *ctype = NULL;
	int built = admin_build(ar, cfg, all, host, body, &ctype);
	free(host);
	if (built != 0) {
		evbuffer_free(body);
		if (ar == ADMIN_PAC)
			return (struct answer){ 404, OUTCOME_HTTP_REQUEST_ERROR,
						"no proxy address to name: set [pac] proxy", NULL };
		return (struct answer){ 500, OUTCOME_PROXY_INTERNAL_ERROR, "cannot build the response",
					NULL };
	}
	head_status_str(out, 200, "OK");
	head_field_str(out, "Content-Type", ctype);
	head_framing(out, HTTP_BODY_LENGTH, evbuffer_get_length(body));
	head_field_str(out, "Cache-Control", "no-store");
	head_end(out, close);
	if (!head)
		evbuffer_add_buffer(out, body);
	evbuffer_free(body);
	return (struct answer){ .status = 200 };
}

void answer_connect(struct evbuffer *out, const char *fields)
{
	head_status_str(out, 200, "Connection established");
	if (fields != NULL)
		evbuffer_add(out, fields, strlen(fields));
	head_end(out, false);
}

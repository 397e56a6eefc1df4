/* errors.c - proxy-generated responses. */
#include "errors.h"
#include "head.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

const char *errors_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 407: return "Proxy Authentication Required";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* Append s as the inside of an RFC 8941 sf-string: printable ASCII, '"'
 * and '\' escaped (the rest dropped). */
static void sf_string(struct evbuffer *out, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch > 0x7e)
			continue;
		if (ch == '"' || ch == '\\')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, s, 1);
	}
}

/* Append s as HTML text, escaping what could be markup (control
 * characters dropped). */
static void html_text(struct evbuffer *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': evbuffer_add(out, "&lt;", 4); break;
		case '>': evbuffer_add(out, "&gt;", 4); break;
		case '&': evbuffer_add(out, "&amp;", 5); break;
		case '"': evbuffer_add(out, "&quot;", 6); break;
		default:
			if ((unsigned char)*s >= 0x20)
				evbuffer_add(out, s, 1);
		}
	}
}

void errors_respond(struct evbuffer *out, int status, enum outcome error, const char *details,
		    const char *via, bool close, bool head_only)
{
	errors_respond_fields(out, status, error, details, via, close, head_only, NULL);
}

void errors_respond_fields(struct evbuffer *out, int status, enum outcome error,
			   const char *details, const char *via, bool close, bool head_only,
			   const char *fields)
{
	const char *reason = errors_reason(status);
	bool has_details = details != NULL && *details;
	/* the body first, to know its length; sized to the details */
	struct evbuffer *body = evbuffer_new();
	if (body != NULL) {
		evbuffer_add_printf(body, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
				    "<body><h1>%d %s</h1>\n<p>", status, reason, status, reason);
		html_text(body, has_details ? details : "");
		evbuffer_add_printf(body, "</p>\n<hr><address>%s</address></body></html>\n", via);
	}
	size_t blen = body != NULL ? evbuffer_get_length(body) : 0;

	head_status_str(out, status, reason);
	/* RFC 9209: the error type when there is one, the details when there
	 * are some (a 407, a 504 for only-if-cached: the details alone) */
	if (outcome_is_error(error) || has_details) {
		evbuffer_add_printf(out, "Proxy-Status: %s", via);
		if (outcome_is_error(error))
			evbuffer_add_printf(out, "; error=%s", outcome_name(error));
		if (has_details) {
			evbuffer_add(out, "; details=\"", 11);
			sf_string(out, details);
			evbuffer_add(out, "\"", 1);
		}
		evbuffer_add(out, "\r\n", 2);
	}
	if (fields != NULL)
		evbuffer_add(out, fields, strlen(fields));
	evbuffer_add_printf(out,
			    "Content-Type: text/html; charset=utf-8\r\n"
			    "Content-Length: %zu\r\n"
			    "Cache-Control: no-store\r\n"
			    "%s"
			    "\r\n",
			    blen, close ? "Connection: close\r\n" : "");
	if (body != NULL) {
		if (!head_only)
			evbuffer_add_buffer(out, body);
		evbuffer_free(body);
	}
}

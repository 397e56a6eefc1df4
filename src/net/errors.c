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

/* Copy s into an RFC 8941 sf-string: printable ASCII, '"' and '\' escaped. */
static void sf_string(char *out, size_t len, const char *s)
{
	size_t n = 0;
	for (; *s && n + 3 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch < 0x20 || ch > 0x7e)
			continue;
		if (ch == '"' || ch == '\\')
			out[n++] = '\\';
		out[n++] = (char)ch;
	}
	out[n] = '\0';
}

/* Copy s into HTML text, escaping what could be markup. */
static void html_text(char *out, size_t len, const char *s)
{
	size_t n = 0;
	for (; *s && n + 7 < len; s++) {
		const char *rep = NULL;
		switch (*s) {
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '&': rep = "&amp;"; break;
		case '"': rep = "&quot;"; break;
		}
		if (rep != NULL) {
			size_t r = strlen(rep);
			memcpy(out + n, rep, r);
			n += r;
		} else if ((unsigned char)*s >= 0x20) {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
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
	char esc[512];
	char body[1024];
	html_text(esc, sizeof(esc), details != NULL ? details : "");
	int blen = snprintf(body, sizeof(body),
			    "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
			    "<body><h1>%d %s</h1>\n<p>%s</p>\n<hr><address>%s</address></body></html>\n",
			    status, reason, status, reason, esc, via);
	if (blen < 0 || (size_t)blen >= sizeof(body))
		blen = (int)strlen(body);

	head_status_str(out, status, reason);
	if (!outcome_is_error(error) && details != NULL && *details) {
		/* no RFC 9209 error type fits (a 407, a 504 for only-if-cached):
		 * the details alone */
		sf_string(esc, sizeof(esc), details);
		evbuffer_add_printf(out, "Proxy-Status: %s; details=\"%s\"\r\n", via, esc);
	} else if (outcome_is_error(error)) {
		if (details != NULL && *details) {
			sf_string(esc, sizeof(esc), details);
			evbuffer_add_printf(out, "Proxy-Status: %s; error=%s; details=\"%s\"\r\n", via,
					    outcome_name(error), esc);
		} else {
			evbuffer_add_printf(out, "Proxy-Status: %s; error=%s\r\n", via,
					    outcome_name(error));
		}
	}
	if (fields != NULL)
		evbuffer_add(out, fields, strlen(fields));
	evbuffer_add_printf(out,
			    "Content-Type: text/html; charset=utf-8\r\n"
			    "Content-Length: %d\r\n"
			    "Cache-Control: no-store\r\n"
			    "%s"
			    "\r\n",
			    blen, close ? "Connection: close\r\n" : "");
	if (!head_only)
		evbuffer_add(out, body, (size_t)blen);
}

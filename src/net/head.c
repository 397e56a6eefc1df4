/* head.c - writing HTTP/1.1 message heads. */
#include "head.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "cache_policy.h"

void head_status(struct evbuffer *out, int status, struct slice reason)
{
	evbuffer_add_printf(out, "HTTP/1.1 %d ", status);
	evbuffer_add(out, reason.p, reason.len);
	evbuffer_add(out, "\r\n", 2);
}

void head_status_str(struct evbuffer *out, int status, const char *reason)
{
	head_status(out, status, (struct slice){ reason, strlen(reason) });
}

void head_field(struct evbuffer *out, struct slice name, struct slice value)
{
	evbuffer_add(out, name.p, name.len);
	evbuffer_add(out, ": ", 2);
	evbuffer_add(out, value.p, value.len);
	evbuffer_add(out, "\r\n", 2);
}

void head_field_str(struct evbuffer *out, const char *name, const char *value)
{
	head_field(out, (struct slice){ name, strlen(name) }, (struct slice){ value, strlen(value) });
}

void head_fields(struct evbuffer *out, const struct http_field *f, size_t n, const bool *keep,
		 int skip)
{
	for (size_t i = 0; i < n; i++)
		if ((keep == NULL || keep[i]) && (int)i != skip)
			head_field(out, f[i].name, f[i].value);
}

void head_date_if_missing(struct evbuffer *out, const struct http_field *f, size_t n)
{
	if (http_field_find(f, n, "date") != NULL)
		return;
	char date[40];
	http_date_format(time(NULL), date, sizeof(date));
	evbuffer_add_printf(out, "Date: %s\r\n", date);
}

void head_via(struct evbuffer *out, int minor, const char *via)
{
	if (minor == HEAD_VIA_H2)
		evbuffer_add_printf(out, "Via: 2 %s\r\n", via);
	else
		evbuffer_add_printf(out, "Via: 1.%d %s\r\n", minor, via);
}

void head_framing(struct evbuffer *out, enum http_body_kind kind, uint64_t length)
{
	if (kind == HTTP_BODY_LENGTH)
		evbuffer_add_printf(out, "Content-Length: %llu\r\n", (unsigned long long)length);
	else if (kind == HTTP_BODY_CHUNKED)
		evbuffer_add(out, "Transfer-Encoding: chunked\r\n", 28);
}

void head_end(struct evbuffer *out, bool close)
{
	if (close)
		evbuffer_add(out, "Connection: close\r\n", 19);
	evbuffer_add(out, "\r\n", 2);
}

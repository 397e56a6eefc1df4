/* fuzz_pac.c - libFuzzer target: the PAC generator with a hostile Host.
 *
 * A browser's Host header ends up in JavaScript. Whatever it holds, the PAC
 * must come out (the listen address is the fallback), stay printable ASCII
 * with balanced string quotes, and name in its PROXY entry only a host[:port]
 * the PAC's own check accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "pac.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *load(void)
{
	static const char ini[] = "[proxy]\nlisten = 192.0.2.1:3128\n"
				  "[pac]\ndirect_domains = .corp.example, intranet\n"
				  "direct_networks = 10.0.0.0/8\n";
	struct config_errors errs = { 0 };
	struct config *cfg = config_load_string(ini, "fuzz.ini", &errs);
	config_errors_free(&errs);
	if (cfg == NULL)
		abort();
	return cfg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config *cfg;
	if (cfg == NULL)
		cfg = load();
	char *host = malloc(size + 1);
	struct evbuffer *out = evbuffer_new();
	if (host == NULL || out == NULL)
		abort();
	memcpy(host, data, size);
	host[size] = '\0';
	if (pac_generate(cfg, host, out) != 0)
		abort(); /* the listen address is always there to name */
	size_t len = evbuffer_get_length(out);
	char *js = malloc(len + 1);
	if (js == NULL)
		abort();
	evbuffer_copyout(out, js, len);
	js[len] = '\0';
	size_t quotes = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)js[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f || c == '\\')
			abort();
		quotes += c == '"';
	}
	if (quotes % 2 != 0)
		abort();
	const char *p = strstr(js, "\"PROXY ");
	if (p == NULL)
		abort();
	p += 7;
	const char *end = strchr(p, '"');
	if (end == NULL || (size_t)(end - p) > 300)
		abort();
	char named[301];
	memcpy(named, p, (size_t)(end - p));
	named[end - p] = '\0';
	if (!pac_hostport_ok(named))
		abort();
	free(js);
	free(host);
	evbuffer_free(out);
	return 0;
}

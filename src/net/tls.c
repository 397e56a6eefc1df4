/* tls.c - OpenSSL contexts for the HTTPS proxy port and https:// upstreams,
 * a small per-worker cache of upstream sessions, and error text.
 *
 * The server context is built by the master before it forks (so every
 * worker shares its session-ticket keys) and again on reload; a context that
 * cannot be built is reported with the file and OpenSSL's reason and the
 * previous one stays. The client context verifies peers against the system
 * store unless [upstream] ca_file/ca_path name others. */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "config_check.h"
#include "config_value.h"

struct tls_session_entry {
	char key[300];           /* "host:port" */
	SSL_SESSION *sess;
};

struct tls_sessions {
	struct tls_session_entry *e;
	size_t n, max, next;     /* next: the entry replaced when full */
};

static int key_index = -1;       /* SSL ex_data: the session key, malloc'd */

static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

void tls_err_append(char *out, size_t outlen, unsigned long err)
{
	if (outlen == 0)
		return;
	if (err == 0) {
		unsigned long e;
		bool any = false;
		while ((e = ERR_get_error()) != 0) {
			tls_err_append(out, outlen, e);
			any = true;
		}
		if (!any && out[0] == '\0')
			snprintf(out, outlen, "no reason given by OpenSSL");
		return;
	}
	const char *reason = ERR_reason_error_string(err);
	char buf[256];
	if (reason == NULL && ERR_GET_LIB(err) == 0)
		return; /* not an OpenSSL error code (libevent passes SSL_get_error values on) */
	if (reason == NULL) {
		ERR_error_string_n(err, buf, sizeof(buf));
		reason = buf;
	}
	size_t used = strlen(out);
	if (used + 1 >= outlen || strstr(out, reason) != NULL)
		return; /* full, or said already */
	snprintf(out + used, outlen - used, "%s%s", used > 0 ? "; " : "", reason);
}

/* "[tls] certificate: PATH: reason" */
static SSL_CTX *ctx_fail(SSL_CTX *ctx, char *err, size_t errlen, const char *what, const char *path)
{
	char reasons[512] = "";
	tls_err_append(reasons, sizeof(reasons), 0);
	if (path != NULL)
		snprintf(err, errlen, "%s: %s: %s", what, path, reasons);
	else
		snprintf(err, errlen, "%s: %s", what, reasons);
	SSL_CTX_free(ctx);
	return NULL;
}

/* ALPN ([tls] protocols_alpn): the first protocol of the configured list
 * that the client offers. A client that offers none of them gets the fatal
 * no_application_protocol alert (RFC 7301 §3.2: the server "SHALL respond"
 * so when it supports none of the protocols the client advertises). A
 * client that sends no ALPN is not asked about: it speaks HTTP/1.1. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	const struct config *cfg = arg;
	for (size_t i = 0; i < cfg->ntls_alpn; i++) {
		const char *want = cfg->tls_alpn[i] == CONFIG_ALPN_H2 ? "h2" : "http/1.1";
		size_t wl = strlen(want);
		for (unsigned int o = 0; o < inlen; o += 1u + in[o]) {
			if (o + 1u + in[o] > inlen)
				break; /* a malformed list: OpenSSL checked it, but be sure */
			if (in[o] == wl && memcmp(in + o + 1, want, wl) == 0) {
				*out = in + o + 1;
				*outlen = in[o];
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

bool tls_alpn_h2(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;
	if (ssl != NULL)
		SSL_get0_alpn_selected(ssl, &p, &len);
	return len == 2 && memcmp(p, "h2", 2) == 0;
}

SSL_CTX *tls_server_new(const struct config *cfg, char *err, size_t errlen)
{
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
		return ctx_fail(ctx, err, errlen, "[tls]", NULL);
	if (!SSL_CTX_set_min_proto_version(ctx, cfg->tls_min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, cfg->tls_max_version))
		return ctx_fail(ctx, err, errlen, "[tls] protocols", NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION);
	/* idle keep-alive clients hold no read/write buffers */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cfg->tls_ciphers != NULL && !SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers))
		return ctx_fail(ctx, err, errlen, "[tls] ciphers", cfg->tls_ciphers);
	if (cfg->tls_ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites))
		return ctx_fail(ctx, err, errlen, "[tls] ciphersuites", cfg->tls_ciphersuites);
	if (cfg->tls_certificate == NULL || cfg->tls_private_key == NULL) {
		snprintf(err, errlen, "[tls] certificate and private_key are required");
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_certificate) != 1)
		return ctx_fail(ctx, err, errlen, "[tls] certificate", cfg->tls_certificate);
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_private_key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(ctx, err, errlen, "[tls] private_key", cfg->tls_private_key);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return ctx_fail(ctx, err, errlen,
				"[tls] private_key: does not match the certificate",
				cfg->tls_private_key);
	void *arg;
	memcpy(&arg, &cfg, sizeof(arg)); /* alpn_select only reads it */
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, arg);
	static const unsigned char sid[] = "hopcache";
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	/* Resumption is by session tickets, whose keys every worker shares
	 * (this context is made before the fork). A per-worker session-ID
	 * cache would only cost each handshake a lock, an insert and, every
	 * 255 handshakes, a walk of the whole cache. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

/* A new session from an upstream (TLS 1.3 sends it after the handshake):
 * keep it for the next connection to the same host:port. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_sessions *s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *key = SSL_get_ex_data(ssl, key_index);
	if (s == NULL || key == NULL || s->max == 0)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->e[i].key, key) == 0) {
			SSL_SESSION_free(s->e[i].sess);
			s->e[i].sess = sess;
			return 1; /* we keep the reference */
		}
	}
	struct tls_session_entry *slot;
	if (s->n < s->max) {
		slot = &s->e[s->n++];
	} else {
		slot = &s->e[s->next];
		s->next = (s->next + 1) % s->max;
		SSL_SESSION_free(slot->sess);
	}
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	slot->sess = sess;
	return 1;
}

SSL_CTX *tls_client_new(const struct config *cfg, char *err, size_t errlen)
{
	ERR_clear_error();
	if (key_index < 0)
		key_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, key_free);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return ctx_fail(ctx, err, errlen, "upstream TLS", NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cfg->upstream_ca_file != NULL || cfg->upstream_ca_path != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->upstream_ca_file, cfg->upstream_ca_path) != 1)
			return ctx_fail(ctx, err, errlen,
					cfg->upstream_ca_file ? "[upstream] ca_file" : "[upstream] ca_path",
					cfg->upstream_ca_file ? cfg->upstream_ca_file : cfg->upstream_ca_path);
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		return ctx_fail(ctx, err, errlen, "the system trust store", NULL);
	}
	static const unsigned char h11[] = "\x08http/1.1";
	SSL_CTX_set_alpn_protos(ctx, h11, sizeof(h11) - 1);
	return ctx;
}

void tls_client_sessions(SSL_CTX *ctx, struct tls_sessions *sessions)
{
	SSL_CTX_set_app_data(ctx, sessions);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
}

SSL *tls_server_ssl(SSL_CTX *ctx)
{
	return SSL_new(ctx);
}

static bool is_ip_literal(const char *host)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

SSL *tls_client_ssl(SSL_CTX *ctx, struct tls_sessions *sessions, const char *host, unsigned port,
		    bool verify)
{
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	bool ip = is_ip_literal(host);
	/* RFC 6066 §3: no IP literals in server_name */
	if (!ip && !SSL_set_tlsext_host_name(ssl, host))
		goto fail;
	if (verify) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (ip) {
			if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host))
				goto fail;
		} else {
			SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			if (!SSL_set1_host(ssl, host))
				goto fail;
		}
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	char key[300];
	snprintf(key, sizeof(key), "%s:%u", host, port);
	char *k = strdup(key);
	if (k == NULL || !SSL_set_ex_data(ssl, key_index, k)) {
		free(k);
		goto fail;
	}
	if (sessions != NULL) {
		for (size_t i = 0; i < sessions->n; i++) {
			if (strcmp(sessions->e[i].key, key) == 0) {
				SSL_set_session(ssl, sessions->e[i].sess);
				break;
			}
		}
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

bool tls_cert_failure(SSL *ssl, char *out, size_t outlen)
{
	long v = SSL_get_verify_result(ssl);
	if (v == X509_V_OK)
		return false;
	snprintf(out, outlen, "certificate verify failed: %s", X509_verify_cert_error_string(v));
	ERR_clear_error();
	return true;
}

struct tls_sessions *tls_sessions_new(size_t max)
{
	struct tls_sessions *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->max = max;
	s->e = calloc(max ? max : 1, sizeof(*s->e));
	if (s->e == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void tls_sessions_free(struct tls_sessions *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		SSL_SESSION_free(s->e[i].sess);
	free(s->e);
	free(s);
}

/* ---- configuration check (config_check.h) -------------------------------- */

/* [tls] protocols = TLSv1.2 TLSv1.3: the range of versions they span, into
 * *lo and *hi; -1 (reported) when an item is no version or there is none. */
static int protocols_range(const char *protocols, struct config_check *chk, int *lo, int *hi)
{
	static const struct { const char *name; int v; } versions[] = {
		{ "TLSv1", 0x0301 }, { "TLSv1.1", 0x0302 }, { "TLSv1.2", 0x0303 }, { "TLSv1.3", 0x0304 },
	};
	const char *p = protocols;
	char item[64], q[96];
	bool toolong;

	*lo = *hi = 0;
	while (config_list_next(&p, item, sizeof(item), &toolong)) {
		int v = 0;

		for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
			if (strcasecmp(item, versions[i].name) == 0)
				v = versions[i].v;
		if (v == 0 || toolong) {
			config_quote(item, q, sizeof(q));
			config_problem(chk, "tls", "protocols", "%s: expected TLSv1.2 and/or TLSv1.3 "
				       "(TLSv1, TLSv1.1 also accepted)", q);
			return -1;
		}
		*lo = *lo == 0 || v < *lo ? v : *lo;
		*hi = v > *hi ? v : *hi;
	}
	if (*lo == 0) {
		config_problem(chk, "tls", "protocols", "expected at least one of TLSv1.2, TLSv1.3");
		return -1;
	}
	return 0;
}

/* [tls]: the version range from protocols; with listen set, a readable
 * certificate and key, and no address also in [proxy] listen. */
void tls_config_check(struct config *cfg, struct config_check *chk)
{
	int lo, hi;

	if (protocols_range(cfg->tls_protocols, chk, &lo, &hi) < 0)
		return;
	cfg->tls_min_version = lo;
	cfg->tls_max_version = hi;
	if (cfg->ntls_listen == 0)
		return;
	if (cfg->tls_certificate == NULL)
		config_problem(chk, "tls", "certificate", "required when [tls] listen is set");
	else
		config_check_readable(chk, "tls", "certificate", cfg->tls_certificate);
	if (cfg->tls_private_key == NULL)
		config_problem(chk, "tls", "private_key", "required when [tls] listen is set");
	else
		config_check_readable(chk, "tls", "private_key", cfg->tls_private_key);
	for (size_t i = 0; i < cfg->ntls_listen; i++)
		for (size_t j = 0; j < cfg->nlisten; j++)
			if (strcasecmp(cfg->tls_listen[i].host, cfg->listen[j].host) == 0 &&
			    strcmp(cfg->tls_listen[i].port, cfg->listen[j].port) == 0 &&
			    strcmp(cfg->listen[j].port, "0") != 0)
				config_problem(chk, "tls", "listen", "%s:%s is also in [proxy] listen",
					       cfg->listen[j].host, cfg->listen[j].port);
}

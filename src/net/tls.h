/* tls.h - OpenSSL contexts: the HTTPS proxy port ([tls]) and https://
 * upstreams ([upstream] verify, ca_file, ca_path), a per-worker cache of
 * upstream TLS sessions, and OpenSSL errors as text.
 *
 * tls.c is the only file that builds SSL_CTXs; conn.c and upstream.c only
 * make SSL objects from them (tls_server_ssl, tls_client_ssl). */
#ifndef HOPCACHE_TLS_H
#define HOPCACHE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct config;
struct tls_sessions;

/* The server context of the HTTPS proxy port: certificate chain and key from
 * [tls], protocol range, cipher lists, ALPN http/1.1. NULL with the reason
 * (naming the file and OpenSSL's reason string) in err. */
SSL_CTX *tls_server_new(const struct config *cfg, char *err, size_t errlen);

/* The client context for https:// upstreams: TLS 1.2+, the system trust
 * store or [upstream] ca_file/ca_path, ALPN http/1.1. Made by the master
 * (the trust store is parsed once and shared by the workers). NULL with the
 * reason in err. */
SSL_CTX *tls_client_new(const struct config *cfg, char *err, size_t errlen);

/* In a worker: keep the client sessions of ctx in sessions (resumption). */
void tls_client_sessions(SSL_CTX *ctx, struct tls_sessions *sessions);

/* A server-side SSL for an accepted client (NULL when out of memory). */
SSL *tls_server_ssl(SSL_CTX *ctx);

/* Did ALPN choose h2 on this (server) connection? */
bool tls_alpn_h2(const SSL *ssl);

/* A client-side SSL toward host (a name or an IP literal without brackets),
 * port: SNI for names, hostname or IP check when verify is on, and the last
 * session to the same host:port when one is cached. */
SSL *tls_client_ssl(SSL_CTX *ctx, struct tls_sessions *sessions, const char *host, unsigned port,
		    bool verify);

/* When the peer's certificate was refused: true, and why (OpenSSL's
 * verification result, e.g. "hostname mismatch") in out. RFC 9209 calls that
 * tls_certificate_error; any other handshake failure is tls_protocol_error. */
bool tls_cert_failure(SSL *ssl, char *out, size_t outlen);

/* Append OpenSSL's reason string for err to out ("; " between reasons);
 * err 0 drains and appends OpenSSL's own error queue. Never a bare code. */
void tls_err_append(char *out, size_t outlen, unsigned long err);

/* Per-worker cache of client sessions, one per host:port, bounded. */
struct tls_sessions *tls_sessions_new(size_t max);
void tls_sessions_free(struct tls_sessions *s);

#endif

/* tls_peek.h - find the SNI host name in the first bytes of a TLS client
 * (pure: no I/O, no allocation, no state between calls).
 *
 * The caller hands over everything the client has sent on a CONNECT tunnel so
 * far and calls again with more bytes while the answer is TLS_PEEK_NEED_MORE.
 * Each call scans the buffer from the start; the bytes are never modified.
 *
 *   TLS_PEEK_NEED_MORE  the bytes are a valid prefix of a ClientHello
 *   TLS_PEEK_SNI        complete ClientHello; sni holds the host name,
 *                       lower-cased, one trailing dot removed, NUL-terminated
 *   TLS_PEEK_NO_SNI     complete ClientHello without a server_name host_name
 *   TLS_PEEK_NOT_TLS    the first byte is not a TLS handshake record (22)
 *   TLS_PEEK_MALFORMED  anything else: bad record header, a length that does
 *                       not fit its container, a handshake message other than
 *                       ClientHello or over 16 KiB, a duplicate server_name,
 *                       a host name that is not a DNS name (letters, digits,
 *                       '-', '.', labels 1..63, at most 253 bytes) or that
 *                       does not fit in snilen bytes with its NUL
 *
 * A decided answer never changes when more bytes arrive. The ClientHello may
 * span several handshake records; bytes after the record that ends it (early
 * data, a next record) are not examined. sni is written only on TLS_PEEK_SNI.
 */
#ifndef HOPCACHE_TLS_PEEK_H
#define HOPCACHE_TLS_PEEK_H

#include <stddef.h>
#include <stdint.h>

enum tls_peek_result {
	TLS_PEEK_NEED_MORE = 0,
	TLS_PEEK_SNI = 1,
	TLS_PEEK_NO_SNI = 2,
	TLS_PEEK_NOT_TLS = -1,
	TLS_PEEK_MALFORMED = -2,
};

/* Largest record the record layer accepts (RFC 8446 §5.2 TLSCiphertext bound). */
#define TLS_PEEK_MAX_RECORD (16384 + 2048)
/* Largest ClientHello handshake message, its 4-byte header included. */
#define TLS_PEEK_MAX_HELLO 16384

/* Classify buf[0..len) and extract the SNI host name into sni[0..snilen). */
enum tls_peek_result tls_peek_sni(const uint8_t *buf, size_t len, char *sni, size_t snilen);

#endif

/* tls_peek.c - SNI extraction from a TLS ClientHello (RFC 8446 §4.1.2,
 * §5.1; RFC 6066 §3), zero-copy and stateless.
 *
 * The handshake message may be cut into several records, so it is read
 * through a cursor that steps over record headers as it goes: the "logical"
 * offset counts handshake bytes only, the "physical" position indexes buf.
 * Every length is checked against its container as soon as it is read, so a
 * bad hello is refused at the first inconsistent byte, and running out of
 * bytes inside a consistent structure is always "need more". */
#include "tls_peek.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_CT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_SNI_HOST_NAME 0
#define DNS_MAX_NAME 253
#define DNS_MAX_LABEL 63

/* Outcome of one reading step. */
enum step { STEP_OK, STEP_MORE, STEP_BAD };

/* A read position in the handshake message, which spans records. */
struct hs_cursor {
	const uint8_t *buf;
	size_t len;
	size_t pos;      /* physical: next byte in buf */
	size_t frag_end; /* physical: end of the current record's fragment */
	size_t off;      /* logical: handshake bytes consumed */
	size_t msg_end;  /* logical: end of the handshake message */
};

/* Check the record header at c->pos and enter its fragment (RFC 8446 §5.1). */
static enum step hs_next_record(struct hs_cursor *c)
{
	const uint8_t *h = c->buf + c->pos;
	size_t have = c->len - c->pos;
	size_t rlen;

	if (have < 1)
		return STEP_MORE;
	/* Handshake messages MUST NOT be interleaved with other record types. */
	if (h[0] != TLS_CT_HANDSHAKE)
		return STEP_BAD;
	if (have >= 2 && h[1] != 3)
		return STEP_BAD;
	if (have >= 3 && (h[2] < 1 || h[2] > 4))
		return STEP_BAD;
	if (have < 5)
		return STEP_MORE;
	rlen = (size_t)h[3] << 8 | h[4];
	/* Zero-length handshake fragments MUST NOT be sent (§5.1). */
	if (rlen == 0 || rlen > TLS_PEEK_MAX_RECORD)
		return STEP_BAD;
	c->pos += 5;
	c->frag_end = c->pos + rlen;
	return STEP_OK;
}

/* Make a byte available at c->pos, crossing into the next record if needed. */
static enum step hs_ready(struct hs_cursor *c)
{
	if (c->pos == c->frag_end) {
		enum step s = hs_next_record(c);
		if (s != STEP_OK)
			return s;
	}
	return c->pos < c->len ? STEP_OK : STEP_MORE;
}

/* Read one handshake byte. */
static enum step hs_u8(struct hs_cursor *c, uint8_t *out)
{
	enum step s;

	if (c->off >= c->msg_end)
		return STEP_BAD;
	s = hs_ready(c);
	if (s != STEP_OK)
		return s;
	*out = c->buf[c->pos++];
	c->off++;
	return STEP_OK;
}

/* Read an n-byte big-endian integer (n <= 3). */
static enum step hs_uint(struct hs_cursor *c, unsigned n, size_t *out)
{
	size_t v = 0;

	if (n > c->msg_end - c->off)
		return STEP_BAD;
	for (unsigned i = 0; i < n; i++) {
		uint8_t b;
		enum step s = hs_u8(c, &b);
		if (s != STEP_OK)
			return s;
		v = v << 8 | b;
	}
	*out = v;
	return STEP_OK;
}

/* Skip n handshake bytes, a fragment at a time. */
static enum step hs_skip(struct hs_cursor *c, size_t n)
{
	if (n > c->msg_end - c->off)
		return STEP_BAD;
	while (n > 0) {
		size_t avail, end;
		enum step s = hs_ready(c);
		if (s != STEP_OK)
			return s;
		end = c->frag_end < c->len ? c->frag_end : c->len;
		avail = end - c->pos;
		if (avail > n)
			avail = n;
		c->pos += avail;
		c->off += avail;
		n -= avail;
	}
	return STEP_OK;
}

/* Read a length prefix of n bytes and check that the vector it announces,
 * at least min bytes long, fits before end; *vend gets the vector's end. */
static enum step hs_vector(struct hs_cursor *c, unsigned n, size_t min, size_t end, size_t *vend)
{
	size_t vlen;
	enum step s;

	if (n > end - c->off)
		return STEP_BAD;
	s = hs_uint(c, n, &vlen);
	if (s != STEP_OK)
		return s;
	if (vlen < min || vlen > end - c->off)
		return STEP_BAD;
	*vend = c->off + vlen;
	return STEP_OK;
}

/* The lower-case form of a host-name byte, or 0 if it may not appear. */
static char host_char(uint8_t b)
{
	if ((b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' || b == '.')
		return (char)b;
	if (b >= 'A' && b <= 'Z')
		return (char)(b - 'A' + 'a');
	return 0;
}

/* Read and check a HostName of hlen bytes (RFC 6066 §3: a DNS name, no
 * literal trailing dot; one is tolerated and dropped). *namelen gets the
 * length without that dot. */
static enum step hs_host(struct hs_cursor *c, size_t hlen, size_t *namelen)
{
	size_t label = 0;
	uint8_t b = 0;

	for (size_t i = 0; i < hlen; i++) {
		enum step s = hs_u8(c, &b);
		char ch;
		if (s != STEP_OK)
			return s;
		ch = host_char(b);
		if (ch == 0)
			return STEP_BAD;
		if (ch == '.') {
			if (label == 0) /* leading dot or empty label */
				return STEP_BAD;
			label = 0;
		} else if (++label > DNS_MAX_LABEL) {
			return STEP_BAD;
		}
	}
	*namelen = b == '.' ? hlen - 1 : hlen;
	if (*namelen == 0 || *namelen > DNS_MAX_NAME)
		return STEP_BAD;
	return STEP_OK;
}

/* Walk a server_name extension body ending at end (RFC 6066 §3). On a
 * host_name entry *host is a cursor on its first byte. */
static enum step hs_server_name(struct hs_cursor *c, size_t end, bool *found,
				struct hs_cursor *host, size_t *namelen)
{
	size_t list_end;
	enum step s = hs_vector(c, 2, 1, end, &list_end);

	if (s != STEP_OK)
		return s;
	if (list_end != end)
		return STEP_BAD;
	while (c->off < list_end) {
		uint8_t type;
		size_t name_end;
		if ((s = hs_u8(c, &type)) != STEP_OK)
			return s;
		/* Every name type starts with a 16-bit length (RFC 6066 §3). */
		if ((s = hs_vector(c, 2, 1, list_end, &name_end)) != STEP_OK)
			return s;
		if (type != TLS_SNI_HOST_NAME) {
			s = hs_skip(c, name_end - c->off);
		} else if (*found) { /* MUST NOT contain more than one of a type */
			return STEP_BAD;
		} else {
			*found = true;
			*host = *c;
			s = hs_host(c, name_end - c->off, namelen);
		}
		if (s != STEP_OK)
			return s;
	}
	return STEP_OK;
}

/* Parse the whole ClientHello body; *found says whether a host name was seen. */
static enum step hs_client_hello(struct hs_cursor *c, bool *found, struct hs_cursor *host,
				 size_t *namelen)
{
	size_t end = c->msg_end, vend, exts_end;
	uint8_t major;
	enum step s;
	bool seen_sni = false;

	/* legacy_version, random */
	if ((s = hs_u8(c, &major)) != STEP_OK)
		return s;
	if (major != 3)
		return STEP_BAD;
	if ((s = hs_skip(c, 1 + 32)) != STEP_OK)
		return s;
	/* legacy_session_id<0..32> */
	if ((s = hs_vector(c, 1, 0, end, &vend)) != STEP_OK)
		return s;
	if (vend - c->off > 32)
		return STEP_BAD;
	if ((s = hs_skip(c, vend - c->off)) != STEP_OK)
		return s;
	/* cipher_suites<2..2^16-2> */
	if ((s = hs_vector(c, 2, 2, end, &vend)) != STEP_OK)
		return s;
	if ((vend - c->off) % 2 != 0)
		return STEP_BAD;
	if ((s = hs_skip(c, vend - c->off)) != STEP_OK)
		return s;
	/* legacy_compression_methods<1..2^8-1> */
	if ((s = hs_vector(c, 1, 1, end, &vend)) != STEP_OK)
		return s;
	if ((s = hs_skip(c, vend - c->off)) != STEP_OK)
		return s;
	/* A TLS 1.2 hello may end here, without extensions (RFC 5246 §7.4.1.2). */
	if (c->off == end)
		return STEP_OK;
	if ((s = hs_vector(c, 2, 0, end, &exts_end)) != STEP_OK)
		return s;
	if (exts_end != end)
		return STEP_BAD;
	while (c->off < exts_end) {
		size_t type, ext_end;
		if ((s = hs_uint(c, 2, &type)) != STEP_OK)
			return s;
		if ((s = hs_vector(c, 2, 0, exts_end, &ext_end)) != STEP_OK)
			return s;
		if (type != TLS_EXT_SERVER_NAME) {
			s = hs_skip(c, ext_end - c->off);
		} else if (seen_sni) { /* no two extensions of one type (§4.2) */
			return STEP_BAD;
		} else {
			seen_sni = true;
			s = hs_server_name(c, ext_end, found, host, namelen);
		}
		if (s != STEP_OK)
			return s;
	}
	return STEP_OK;
}

/* Map a step to the caller's result. */
static enum tls_peek_result step_result(enum step s)
{
	return s == STEP_MORE ? TLS_PEEK_NEED_MORE : TLS_PEEK_MALFORMED;
}

enum tls_peek_result tls_peek_sni(const uint8_t *buf, size_t len, char *sni, size_t snilen)
{
	struct hs_cursor c = { buf, len, 0, 0, 0, 4 }, host = c;
	size_t type, body, namelen = 0;
	bool found = false;
	enum step s;

	if (len == 0)
		return TLS_PEEK_NEED_MORE;
	if (buf[0] != TLS_CT_HANDSHAKE)
		return TLS_PEEK_NOT_TLS;
	if ((s = hs_uint(&c, 1, &type)) != STEP_OK)
		return step_result(s);
	if (type != TLS_HS_CLIENT_HELLO)
		return TLS_PEEK_MALFORMED;
	if ((s = hs_uint(&c, 3, &body)) != STEP_OK)
		return step_result(s);
	if (body > TLS_PEEK_MAX_HELLO - 4)
		return TLS_PEEK_MALFORMED;
	c.msg_end = 4 + body;
	if ((s = hs_client_hello(&c, &found, &host, &namelen)) != STEP_OK)
		return step_result(s);
	/* The record that ends the hello must end with it: a client sends
	 * nothing else in its first flight of handshake records. */
	if (c.pos != c.frag_end)
		return TLS_PEEK_MALFORMED;
	if (!found)
		return TLS_PEEK_NO_SNI;
	if (namelen >= snilen)
		return TLS_PEEK_MALFORMED;
	/* The name was validated above; copy it through a second cursor. */
	for (size_t i = 0; i < namelen; i++) {
		uint8_t b = 0;
		(void)hs_u8(&host, &b);
		sni[i] = host_char(b);
	}
	sni[namelen] = '\0';
	return TLS_PEEK_SNI;
}

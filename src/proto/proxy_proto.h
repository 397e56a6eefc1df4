/* proxy_proto.h - the PROXY protocol header a load balancer puts before the
 * client's bytes (HAProxy's proxy-protocol.txt, versions 1 and 2), receive
 * side only (pure: no I/O, no allocation, no state between calls).
 *
 * The caller hands over everything read on the connection so far and calls
 * again with more bytes while the answer is PROXY_PROTO_NEED_MORE; each call
 * scans the buffer from its start and never modifies it. Both versions are
 * accepted; the first byte tells them apart ('P' or CR).
 *
 *   PROXY_PROTO_NEED_MORE  no rule is broken by the bytes so far and the
 *                          header is not complete; only ever answered for
 *                          len < PROXY_PROTO_MAX
 *   PROXY_PROTO_OK         a complete header: *out is filled in and *used is
 *                          its length, the bytes to drop before the HTTP
 *                          stream (what follows is not examined)
 *   PROXY_PROTO_ERROR      not a valid header; *why (static text) says which
 *                          rule was broken. The connection must be closed:
 *                          the spec forbids guessing that there is no header.
 *
 * A decided answer never changes when more bytes arrive: an error is found
 * at the first byte that breaks a rule, so a prefix of a valid header is
 * always NEED_MORE. The bytes are judged as they come: a signature, a v1
 * keyword or a v2 fixed field as soon as it is present, a v1 address or port
 * when the space or CRLF after it arrives, a v2 TLV's length as soon as its
 * header is present.
 *
 * Version 1 (a text line of at most 107 bytes, CRLF included):
 *   "PROXY TCP4 " or "PROXY TCP6 ", source address, SP, destination address,
 *   SP, source port, SP, destination port, CRLF: exactly one space between
 *   fields; addresses as inet_pton(3) reads them for the family (TCP4: a
 *   dotted quad without leading zeros; TCP6: IPv6 text, an embedded dotted
 *   quad included); ports 1 to 5 digits, 0..65535, no sign, no leading zero
 *   but "0" itself.
 *   "PROXY UNKNOWN", then any bytes but CR and LF, then CRLF: local.
 *   A CR not followed by LF, or an LF not after a CR, is an error.
 *
 * Version 2 (binary): the 12-byte signature, ver_cmd (version 2; command
 * LOCAL 0 or PROXY 1), fam (family and transport), len (16 bits, big
 * endian), then len bytes: the address block, its size set by fam, then
 * TLVs (type, 16-bit length, value), whose framing is checked and whose
 * values are skipped. fam must be one the spec lists:
 *   0x00 UNSPEC          block  0  local
 *   0x11 TCP over IPv4   block 12  PROXY: the addresses; LOCAL: local
 *   0x21 TCP over IPv6   block 36  PROXY: the addresses; LOCAL: local
 *   0x31 UNIX stream     block 216 local (not an IP client: the spec's
 *                                  fallback to UNSPEC)
 *   0x12, 0x22, 0x32     datagram transports: local with LOCAL, an error
 *                        with PROXY (not a TCP client of this proxy)
 * The block is required whatever the command: len shorter than it is an
 * error even for LOCAL, whose addresses are then ignored.
 *
 * The limit: a v2 header (16 + len) is refused above PROXY_PROTO_MAX =
 * 4096 bytes, nginx's limit for the same header (NGX_PROXY_PROTOCOL_MAX_HEADER).
 * Every header a known sender builds fits with room to spare: the largest
 * address block is 216 bytes (UNIX), and the TLVs senders emit (ALPN, the
 * authority, CRC32C, a unique ID of at most 128 bytes, SSL with its version,
 * client CN, cipher and algorithms, netns, the cloud load balancers' endpoint
 * IDs) stay under 2 KiB even all together at their usual maximum sizes;
 * 4096 bytes is still one page, which a caller can pull up in one piece
 * before the HTTP parser sees the stream. The spec's own bound is 16 + 65535.
 * A v1 line is bounded by the spec at 107 bytes.
 */
#ifndef HOPCACHE_PROXY_PROTO_H
#define HOPCACHE_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum proxy_proto_result {
	PROXY_PROTO_NEED_MORE = 0, /* a valid prefix: read more bytes */
	PROXY_PROTO_OK,            /* a complete header; *used bytes consumed */
	PROXY_PROTO_ERROR,         /* not a valid header (*why says which rule) */
};

/* Largest header accepted, in bytes (see above). */
#define PROXY_PROTO_MAX 4096
/* Longest v1 line, CRLF included (proxy-protocol.txt §2.1). */
#define PROXY_PROTO_V1_MAX 107

struct proxy_proto_info {
	int version; /* 1 or 2 */
	bool local;  /* v2 LOCAL, v1 UNKNOWN, or a v2 family that is not TCP over
			IP: no address, keep the connection's own (src and dst
			are then zeroed, family AF_UNSPEC) */
	struct sockaddr_storage src; /* the client: AF_INET or AF_INET6, address and port */
	struct sockaddr_storage dst; /* the address and port the client connected to */
};

/* Parse the header at the start of buf[0..len). *used is the header's length
 * on PROXY_PROTO_OK, else 0; *why is the broken rule on PROXY_PROTO_ERROR,
 * else NULL; *out is written only on PROXY_PROTO_OK. */
enum proxy_proto_result proxy_proto_parse(const uint8_t *buf, size_t len,
					  struct proxy_proto_info *out, size_t *used,
					  const char **why);

/* Does buf start with a PROXY protocol signature ("PROXY " or the whole
 * v2 signature)? For telling a header from a client that may not send one
 * apart from a malformed HTTP request. */
bool proxy_proto_signature(const uint8_t *buf, size_t len);

#endif

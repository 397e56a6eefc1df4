/* proxy_proto.c - the PROXY protocol header, versions 1 and 2 (HAProxy's
 * proxy-protocol.txt §2.1, §2.2), zero-copy and stateless.
 *
 * Both versions are read left to right, and each rule is applied as soon as
 * the bytes it needs are present: the answer at a byte depends only on the
 * bytes before it (and, for a CR, the one after), so a decided answer never
 * changes when more bytes arrive, and running out of bytes before any rule
 * is broken is always "need more". Nothing is written to the caller before
 * the header is known to be complete and valid. */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Version 1: the fields after "PROXY TCP4 " or "PROXY TCP6 ". */
#define V1_FIELDS 4
#define V1_ADDR4_MAX 15 /* "255.255.255.255" */
#define V1_ADDR6_MAX 45 /* INET6_ADDRSTRLEN - 1: eight groups, or six and a dotted quad */
#define V1_PORT_MAX 5

/* Version 2: the fixed part and the TLV header. */
#define V2_FIXED 16
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_TLV_HEADER 3

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* The family and transport bytes of §2.2 ("In practice, the following
 * protocol bytes are expected"); every other value is refused. af is the IP
 * family whose addresses a PROXY command hands over, AF_UNSPEC for none. */
static const struct v2_fam {
	uint8_t fam;
	uint8_t block; /* bytes of the address block */
	bool dgram;    /* a datagram transport: no TCP client behind it */
	int af;
} v2_fams[] = {
	{ 0x00, 0, false, AF_UNSPEC },  /* UNSPEC */
	{ 0x11, 12, false, AF_INET },   /* TCP over IPv4: 2*4 + 2*2 */
	{ 0x12, 12, true, AF_INET },    /* UDP over IPv4 */
	{ 0x21, 36, false, AF_INET6 },  /* TCP over IPv6: 2*16 + 2*2 */
	{ 0x22, 36, true, AF_INET6 },   /* UDP over IPv6 */
	{ 0x31, 216, false, AF_UNSPEC }, /* UNIX stream: 2*108, no IP client */
	{ 0x32, 216, true, AF_UNSPEC },  /* UNIX datagram */
};

/* Record a broken rule. */
static enum proxy_proto_result bad(const char **why, const char *rule)
{
	*why = rule;
	return PROXY_PROTO_ERROR;
}

/* Compare buf[pos..len) with lit[0..n): OK when all of lit is there,
 * NEED_MORE when the bytes run out first, ERROR at the first difference. */
static enum proxy_proto_result match(const uint8_t *buf, size_t len, size_t pos,
				     const uint8_t *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (pos + i >= len)
			return PROXY_PROTO_NEED_MORE;
		if (buf[pos + i] != lit[i])
			return PROXY_PROTO_ERROR;
	}
	return PROXY_PROTO_OK;
}

/* An address and a port (network byte order) as a sockaddr of family af. */
static void set_addr(struct sockaddr_storage *ss, int af, const uint8_t *addr, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = port;
		memcpy(&sin.sin_addr, addr, 4);
		memcpy(ss, &sin, sizeof(sin));
	} else {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = port;
		memcpy(&sin6.sin6_addr, addr, 16);
		memcpy(ss, &sin6, sizeof(sin6));
	}
}

/* ------------------------------------------------------------ version 1 --- */

/* What the v1 line forwards, as read so far. */
struct v1_line {
	int af;              /* AF_INET (TCP4), AF_INET6 (TCP6), AF_UNSPEC (UNKNOWN) */
	uint8_t addr[2][16]; /* source, destination */
	uint16_t port[2];    /* source, destination, network byte order */
};

/* The protocol word after "PROXY ": the position after it goes to *pos. */
static enum proxy_proto_result v1_protocol(const uint8_t *buf, size_t len, struct v1_line *line,
					   size_t *pos, const char **why)
{
	static const struct {
		const char *word;
		int af;
	} words[] = {
		{ "TCP4 ", AF_INET },
		{ "TCP6 ", AF_INET6 },
		{ "UNKNOWN", AF_UNSPEC }, /* the rest of the line is ignored */
	};
	bool more = false;

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t n = strlen(words[i].word);
		enum proxy_proto_result r =
			match(buf, len, 6, (const uint8_t *)words[i].word, n);
		if (r == PROXY_PROTO_OK) {
			line->af = words[i].af;
			*pos = 6 + n;
			return PROXY_PROTO_OK;
		}
		more = more || r == PROXY_PROTO_NEED_MORE;
	}
	return more ? PROXY_PROTO_NEED_MORE : bad(why, "v1 protocol is not TCP4, TCP6 or UNKNOWN");
}

/* The line ends at the CR at buf[i]: the LF must follow, within the limit. */
static enum proxy_proto_result v1_crlf(const uint8_t *buf, size_t len, size_t i, size_t *used,
				       const char **why)
{
	if (i + 1 >= PROXY_PROTO_V1_MAX)
		return bad(why, "v1 line longer than 107 bytes");
	if (i + 1 >= len)
		return PROXY_PROTO_NEED_MORE;
	/* The receiver must not tolerate a single CR or LF (§2.1). */
	if (buf[i + 1] != '\n')
		return bad(why, "v1 CR not followed by LF");
	*used = i + 2;
	return PROXY_PROTO_OK;
}

/* May byte c appear in field k (0, 1 addresses; 2, 3 ports) of a line of family af? */
static bool v1_field_byte(uint8_t c, size_t k, int af)
{
	bool digit = c >= '0' && c <= '9';

	if (k >= 2)
		return digit;
	if (af == AF_INET)
		return digit || c == '.';
	return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* The longest field k may be. */
static size_t v1_field_max(size_t k, int af)
{
	if (k >= 2)
		return V1_PORT_MAX;
	return af == AF_INET ? V1_ADDR4_MAX : V1_ADDR6_MAX;
}

/* The rule that a bad byte in field k, or one byte too many, breaks. */
static const char *v1_field_rule(size_t k, int af)
{
	if (k >= 2)
		return "v1 port is not 1 to 5 digits";
	return af == AF_INET ? "v1 TCP4 address is not a dotted-quad IPv4 address"
			     : "v1 TCP6 address is not an IPv6 address";
}

/* Check the complete port p[0..n) (digits, at most 5, checked as they came):
 * 0..65535 without a leading zero (§2.1). NULL or the broken rule. */
static const char *v1_port(const uint8_t *p, size_t n, uint16_t *port)
{
	uint32_t v = 0;

	if (p[0] == '0' && n > 1)
		return "v1 port has a leading zero";
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (uint32_t)(p[i] - '0');
	if (v > 65535)
		return "v1 port is above 65535";
	*port = htons((uint16_t)v);
	return NULL;
}

/* Check the complete field k, p[0..n), and keep its value; NULL or the
 * broken rule. An address is read by inet_pton(3) (its bytes and length
 * were checked as they came): for AF_INET a dotted quad without leading
 * zeros, as §2.1 asks. */
static const char *v1_field(const uint8_t *p, size_t n, size_t k, struct v1_line *line)
{
	char text[V1_ADDR6_MAX + 1];

	if (n == 0)
		return "v1 empty field (fields are separated by exactly one space)";
	if (k >= 2)
		return v1_port(p, n, &line->port[k - 2]);
	memcpy(text, p, n);
	text[n] = '\0';
	if (inet_pton(line->af, text, line->addr[k]) != 1)
		return v1_field_rule(k, line->af);
	return NULL;
}

/* "PROXY UNKNOWN": skip anything but CR and LF up to the CRLF. */
static enum proxy_proto_result v1_unknown(const uint8_t *buf, size_t len, size_t pos,
					  size_t *used, const char **why)
{
	for (size_t i = pos;; i++) {
		if (i >= PROXY_PROTO_V1_MAX)
			return bad(why, "v1 line longer than 107 bytes");
		if (i >= len)
			return PROXY_PROTO_NEED_MORE;
		if (buf[i] == '\n')
			return bad(why, "v1 LF without CR");
		if (buf[i] == '\r')
			return v1_crlf(buf, len, i, used, why);
	}
}

/* "PROXY TCP4 " or "PROXY TCP6 ": four fields, one space apart, then CRLF.
 * A field is checked byte by byte as it comes and whole when it ends. */
static enum proxy_proto_result v1_tcp(const uint8_t *buf, size_t len, size_t pos,
				      struct v1_line *line, size_t *used, const char **why)
{
	size_t k = 0, start = pos;
	const char *rule;

	for (size_t i = pos;; i++) {
		uint8_t c;

		if (i >= PROXY_PROTO_V1_MAX)
			return bad(why, "v1 line longer than 107 bytes");
		if (i >= len)
			return PROXY_PROTO_NEED_MORE;
		c = buf[i];
		if (c == ' ' || c == '\r') {
			if ((rule = v1_field(buf + start, i - start, k, line)) != NULL)
				return bad(why, rule);
			if (c == '\r' && k + 1 < V1_FIELDS)
				return bad(why, "v1 line has fewer than 4 fields after the protocol");
			if (c == '\r')
				return v1_crlf(buf, len, i, used, why);
			if (++k == V1_FIELDS)
				return bad(why, "v1 line has more than 4 fields after the protocol");
			start = i + 1;
			continue;
		}
		if (c == '\n')
			return bad(why, "v1 LF without CR");
		if (!v1_field_byte(c, k, line->af) || i - start + 1 > v1_field_max(k, line->af))
			return bad(why, v1_field_rule(k, line->af));
	}
}

/* A version 1 line (§2.1). */
static enum proxy_proto_result v1_parse(const uint8_t *buf, size_t len,
					struct proxy_proto_info *info, size_t *used,
					const char **why)
{
	struct v1_line line;
	enum proxy_proto_result r;
	size_t pos = 0;

	memset(&line, 0, sizeof(line));
	r = match(buf, len, 0, (const uint8_t *)"PROXY ", 6);
	if (r != PROXY_PROTO_OK)
		return r == PROXY_PROTO_ERROR ? bad(why, "not a PROXY protocol header") : r;
	if ((r = v1_protocol(buf, len, &line, &pos, why)) != PROXY_PROTO_OK)
		return r;
	if (line.af == AF_UNSPEC)
		r = v1_unknown(buf, len, pos, used, why);
	else
		r = v1_tcp(buf, len, pos, &line, used, why);
	if (r != PROXY_PROTO_OK)
		return r;
	info->version = 1;
	/* UNKNOWN: use the connection's own addresses (§2.1). */
	info->local = line.af == AF_UNSPEC;
	if (!info->local) {
		set_addr(&info->src, line.af, line.addr[0], line.port[0]);
		set_addr(&info->dst, line.af, line.addr[1], line.port[1]);
	}
	return PROXY_PROTO_OK;
}

/* ------------------------------------------------------------ version 2 --- */

/* The family and transport byte, or NULL when the spec does not list it. */
static const struct v2_fam *v2_family(uint8_t fam)
{
	for (size_t i = 0; i < sizeof(v2_fams) / sizeof(v2_fams[0]); i++)
		if (v2_fams[i].fam == fam)
			return &v2_fams[i];
	return NULL;
}

/* The TLVs in buf[pos..end): framing only, values skipped (§2.2). */
static enum proxy_proto_result v2_tlvs(const uint8_t *buf, size_t len, size_t pos, size_t end,
				       const char **why)
{
	while (pos < end) {
		size_t vlen;

		if (end - pos < V2_TLV_HEADER)
			return bad(why, "v2 bytes after the last TLV too few for a TLV header");
		if (len < pos + V2_TLV_HEADER)
			return PROXY_PROTO_NEED_MORE;
		vlen = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
		if (vlen > end - pos - V2_TLV_HEADER)
			return bad(why, "v2 TLV longer than the header");
		pos += V2_TLV_HEADER + vlen;
	}
	return len < end ? PROXY_PROTO_NEED_MORE : PROXY_PROTO_OK;
}

/* A version 2 header (§2.2). */
static enum proxy_proto_result v2_parse(const uint8_t *buf, size_t len,
					struct proxy_proto_info *info, size_t *used,
					const char **why)
{
	const struct v2_fam *fam;
	enum proxy_proto_result r;
	unsigned cmd;
	size_t total;

	r = match(buf, len, 0, v2_sig, sizeof(v2_sig));
	if (r != PROXY_PROTO_OK)
		return r == PROXY_PROTO_ERROR ? bad(why, "not a PROXY protocol header") : r;
	if (len < 13)
		return PROXY_PROTO_NEED_MORE;
	/* The receiver must only accept version 2 and must drop unassigned
	 * commands. */
	if (buf[12] >> 4 != 2)
		return bad(why, "v2 version is not 2");
	cmd = buf[12] & 0x0f;
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
		return bad(why, "v2 command is neither LOCAL nor PROXY");
	if (len < 14)
		return PROXY_PROTO_NEED_MORE;
	fam = v2_family(buf[13]);
	if (fam == NULL)
		return bad(why, "v2 address family and transport not one the spec lists");
	if (cmd == V2_CMD_PROXY && fam->dgram)
		return bad(why, "v2 PROXY command for a datagram transport");
	if (len < V2_FIXED)
		return PROXY_PROTO_NEED_MORE;
	total = V2_FIXED + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXY_PROTO_MAX)
		return bad(why, "v2 header longer than 4096 bytes");
	if (total - V2_FIXED < fam->block)
		return bad(why, "v2 address block longer than the header");
	r = v2_tlvs(buf, len, V2_FIXED + fam->block, total, why);
	if (r != PROXY_PROTO_OK)
		return r;
	info->version = 2;
	/* LOCAL: the connection's own endpoints, the block ignored. A PROXY
	 * command for a family without an IP client falls back to the same
	 * (UNSPEC: "the receiver should ignore address information"). */
	info->local = cmd == V2_CMD_LOCAL || fam->af == AF_UNSPEC;
	if (!info->local) {
		size_t alen = fam->af == AF_INET ? 4 : 16;
		const uint8_t *a = buf + V2_FIXED;
		uint16_t sport, dport;

		memcpy(&sport, a + 2 * alen, 2);
		memcpy(&dport, a + 2 * alen + 2, 2);
		set_addr(&info->src, fam->af, a, sport);
		set_addr(&info->dst, fam->af, a + alen, dport);
	}
	*used = total;
	return PROXY_PROTO_OK;
}

enum proxy_proto_result proxy_proto_parse(const uint8_t *buf, size_t len,
					  struct proxy_proto_info *out, size_t *used,
					  const char **why)
{
	struct proxy_proto_info info;
	enum proxy_proto_result r;

	*used = 0;
	*why = NULL;
	if (len == 0)
		return PROXY_PROTO_NEED_MORE;
	memset(&info, 0, sizeof(info));
	/* 'P' starts only a v1 line, CR only the v2 signature. */
	if (buf[0] == 'P')
		r = v1_parse(buf, len, &info, used, why);
	else
		r = v2_parse(buf, len, &info, used, why);
	if (r == PROXY_PROTO_OK)
		*out = info;
	return r;
}

bool proxy_proto_signature(const uint8_t *buf, size_t len)
{
	return (len >= 6 && memcmp(buf, "PROXY ", 6) == 0) ||
	       (len >= sizeof(v2_sig) && memcmp(buf, v2_sig, sizeof(v2_sig)) == 0);
}

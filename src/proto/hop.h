/* hop.h - the header stage: the one place that decides which fields are
 * hop-by-hop (RFC 9110 §7.6.1) and reports what the proxy must act on
 * (Connection options, Upgrade, Max-Forwards, Expect, Proxy-Authorization).
 * The fields the proxy adds (Via, framing, Host) are written by conn.c after
 * this removal, so a client cannot strip them by listing them.
 * Pure: no I/O, no allocation. Requests, responses and the cache writer
 * (conn_cache.c stores exactly the fields kept here) all ask it. */
#ifndef HOPCACHE_HOP_H
#define HOPCACHE_HOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http_parser.h"

enum hop_dir { HOP_REQUEST, HOP_RESPONSE };

/* What the stage learned while classifying a message's fields. */
struct hop_info {
	bool conn_close;       /* Connection lists "close" */
	bool conn_keep_alive;  /* Connection lists "keep-alive" */
	bool conn_upgrade;     /* Connection lists "upgrade" */
	int upgrade_index;     /* index of the (first) Upgrade field, -1 if none */
	int max_forwards;      /* value of the first valid Max-Forwards (clamped to
				  INT32_MAX), -1 if absent or invalid */
	int max_forwards_index;/* index of that field, -1 if none */
	bool expect_continue;  /* request: Expect: 100-continue */
	int proxy_auth_index;  /* request: index of Proxy-Authorization, -1 if none */
};

/* Result codes of hop_classify. */
enum hop_result {
	HOP_OK = 0,
	HOP_ERR_CONNECTION_FRAMING = -1, /* Connection lists Host, Content-Length or
					    Transfer-Encoding: request -> 400,
					    response -> 502 (RFC 9110 §7.6.1) */
	HOP_ERR_SYNTAX = -2,              /* a Connection list element that is not a
					    token: request -> 400, response -> 502 */
};

/* Classify fields[0..n): sets keep[i] = true for every field forwarded to the
 * next hop, false for the ones the header stage consumes:
 *   - Connection, and every field any Connection field lists (any case, any
 *     number of Connection fields, OWS and empty list elements tolerated);
 *   - Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding (the proxy
 *     re-frames the message), Upgrade unless `keep_upgrade`;
 *   - Proxy-Authorization (request) and Proxy-Authenticate (response): never
 *     forwarded;
 *   - Content-Length and Host: also dropped here, because the caller always
 *     writes its own (Host from the target URI, RFC 9112 §3.2.2; framing for
 *     the next hop). These are NOT dropped when listed — listing them is an error;
 *   Max-Forwards is end-to-end and kept; for OPTIONS/TRACE the caller answers
 *   itself at 0 or skips field max_forwards_index and writes the decremented
 *   value (RFC 9110 §7.6.2).
 * Everything else is kept, in order, duplicates included.
 * With keep_upgrade (an upgrade is being carried out), Upgrade is kept and the
 * caller writes "Connection: upgrade" itself. */
enum hop_result hop_classify(const struct http_field *fields, size_t n, enum hop_dir dir,
			     bool keep_upgrade, bool *keep, struct hop_info *info);

/* True for the fields that are hop-by-hop by definition (the standard set:
 * Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding,
 * Upgrade, Proxy-Authorization, Proxy-Authenticate), whatever Connection says. */
bool hop_is_hop_by_hop(struct slice name);

/* Does a Connection-style comma list (one field value) contain `token`
 * (case-insensitive)? */
bool hop_list_has(struct slice value, const char *token);

#endif

/* cache_record.c - the store's record format (cache.c writes and reads
 * records through it): byte order helpers, the fixed header, decoding with
 * every length checked, and the LRU key. Pure: no LMDB, no I/O. */
#include "cache_record.h"

#include <string.h>

/* Store v at p as 4 bytes little-endian. */
void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Load 4 bytes little-endian. */
uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Store v at p as 8 bytes little-endian. */
void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Load 8 bytes little-endian. */
uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* Store v at p as 8 bytes big-endian (so LMDB's memcmp order is numeric). */
void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Load 8 bytes big-endian. */
uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Build the LRU key of a record: big-endian stamp, then the object key. */
void lru_key(uint8_t out[LRU_KEY_LEN], int64_t stamp, const uint8_t *key)
{
	put_be64(out, (uint64_t)stamp);
	memcpy(out + 8, key, CACHE_KEY_LEN);
}

/* Check a stored value and decode it into o (pointers into v) and its stamp
 * in microseconds. Returns 0, or -1 if it is not a record we can read. */
int rec_decode(const void *data, size_t size, struct cache_object *o, int64_t *stamp)
{
	const uint8_t *p = data;
	if (size < REC_HDR)
		return -1;
	if (get_le32(p) != REC_MAGIC || get_le32(p + 4) != CACHE_FORMAT)
		return -1; /* u16 version + u16 zero read as one u32 */
	uint32_t flags = get_le32(p + 8);
	uint64_t head_len = get_le32(p + 12);
	uint64_t body_len = get_le64(p + 16);
	uint64_t ident_len = get_le32(p + 48);
	if ((flags & ~REC_FLAGS_KNOWN) || get_le32(p + 52) != 0)
		return -1;
	size_t room = size - REC_HDR;
	if (head_len > room || ident_len > room - head_len ||
	    body_len != room - head_len - ident_len)
		return -1;
	o->flags = flags;
	o->request_time = (int64_t)get_le64(p + 24);
	o->response_time = (int64_t)get_le64(p + 32);
	*stamp = (int64_t)get_le64(p + 40);
	o->stamp = *stamp / 1000000;
	o->head = (const char *)p + REC_HDR;
	o->head_len = (size_t)head_len;
	o->body = (const char *)p + REC_HDR + head_len;
	o->body_len = (size_t)body_len;
	o->ident = p + REC_HDR + head_len + body_len;
	o->ident_len = (size_t)ident_len;
	return 0;
}

/* Write the fixed record header for o with this stamp at p. */
void rec_header(uint8_t *p, const struct cache_object *o, int64_t stamp)
{
	put_le32(p, REC_MAGIC);
	put_le32(p + 4, CACHE_FORMAT);
	put_le32(p + 8, o->flags);
	put_le32(p + 12, (uint32_t)o->head_len);
	put_le64(p + 16, o->body_len);
	put_le64(p + 24, (uint64_t)o->request_time);
	put_le64(p + 32, (uint64_t)o->response_time);
	put_le64(p + 40, (uint64_t)stamp);
	put_le32(p + 48, (uint32_t)o->ident_len);
	put_le32(p + 52, 0);
}


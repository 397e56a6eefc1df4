/* cache_record.h - the store's record format (private to store/).
 *
 * A record is one LMDB value, integers little-endian: a REC_HDR-byte header
 * (magic, format version, flags, head length, body length, request time,
 * response time, LRU stamp in microseconds, identity length, zero), then the
 * head, the body and the identity the record was stored for. The LRU index
 * key is the stamp big-endian (so LMDB's byte order is numeric order), then
 * the object key. */
#ifndef HOPCACHE_CACHE_RECORD_H
#define HOPCACHE_CACHE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define CACHE_FORMAT 2u /* 2: records carry their identity */
#define REC_MAGIC 0x1a524348u /* "HCR\x1a" as stored (little-endian) */
#define REC_HDR 56
#define REC_FLAGS_KNOWN CACHE_VARY
#define LRU_KEY_LEN (8 + CACHE_KEY_LEN)

void put_le32(uint8_t *p, uint32_t v);
uint32_t get_le32(const uint8_t *p);
void put_le64(uint8_t *p, uint64_t v);
uint64_t get_le64(const uint8_t *p);
void put_be64(uint8_t *p, uint64_t v);
uint64_t get_be64(const uint8_t *p);

/* The LRU key of a record: big-endian stamp, then the object key. */
void lru_key(uint8_t out[LRU_KEY_LEN], int64_t stamp, const uint8_t *key);

/* Check a stored value data[0..size) and decode it into o (pointers into
 * data) and its stamp in microseconds. 0, or -1 when it is not a record of
 * this format. */
int rec_decode(const void *data, size_t size, struct cache_object *o, int64_t *stamp);

/* Write the fixed record header for o with this stamp at p (REC_HDR bytes). */
void rec_header(uint8_t *p, const struct cache_object *o, int64_t stamp);

#endif

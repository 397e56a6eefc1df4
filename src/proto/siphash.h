/* siphash.h - SipHash-2-4 (Aumasson and Bernstein), the keyed hash that
 * places client addresses and user names in the shared client table: with a
 * secret key, nobody outside can choose inputs that collide. Pure. */
#ifndef HOPCACHE_SIPHASH_H
#define HOPCACHE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit SipHash-2-4 of in[0..len) under the 128-bit key k. */
uint64_t siphash24(const uint8_t k[16], const void *in, size_t len);

#endif

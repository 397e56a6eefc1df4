/* domainset.h - sets of domain names with exact and subtree entries.
 *
 * A set holds lowercased ASCII names (IDNA names must be written as
 * punycode "xn--" labels). Each entry is either
 *   exact    "example.com"  matches example.com only, or
 *   subtree  ".example.org" matches example.org and every name below it.
 * Entries loaded from a file are subtree entries (one name a line).
 *
 * Storage: every name lives in one arena (for a loaded file, the file's own
 * bytes normalised in place: one allocation); an open-addressing hash table
 * (linear probing, load factor <= 1/2) maps names to arena offsets. The hash
 * is computed over the name from its last byte to its first, so a lookup
 * walks the suffixes of a host ("com", "example.com", "b.example.com", ...)
 * computing each suffix's hash incrementally: O(length of the host),
 * independent of the size of the set.
 *
 * A set is immutable once built and may be shared read-only.
 */
#ifndef HOPCACHE_DOMAINSET_H
#define HOPCACHE_DOMAINSET_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name we store or match (RFC 1035: 253 characters without the
 * trailing dot). */
#define DOMAINSET_NAME_MAX 253

struct domainset;

/* An empty set, or NULL when out of memory. */
struct domainset *domainset_new(void);

/* Load FILE: one name a line, '#' starts a comment, blank lines and
 * surrounding whitespace ignored, case-insensitive, a trailing dot ignored;
 * a leading "." is allowed and means the same. Every entry matches the name
 * and all its subdomains. Returns a new set, or NULL with "FILE:LINE: problem"
 * (or "FILE: problem") in err. */
struct domainset *domainset_load(const char *path, char *err, size_t errlen);

/* Add one inline entry: "example.com" (exact) or ".example.org" (subtree).
 * Returns 0, or -1 with the problem in err. */
int domainset_add(struct domainset *set, const char *entry, char *err, size_t errlen);

/* Does host (any case, optional trailing dot) match an entry? */
bool domainset_match(const struct domainset *set, const char *host);

/* Like domainset_match for a host already normalised by domainset_normalize. */
bool domainset_match_norm(const struct domainset *set, const char *name, size_t len);

/* Number of distinct names in the set. */
size_t domainset_count(const struct domainset *set);

void domainset_free(struct domainset *set);

/* Normalise a host name of len bytes into out (which may equal in): lowercase,
 * drop one trailing dot, check LDH/underscore characters, label lengths (1..63)
 * and total length. Returns the new length, or -1 with a static description
 * of the problem in *why. */
int domainset_normalize(const char *in, size_t len, char *out, const char **why);

#endif

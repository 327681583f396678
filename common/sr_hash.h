/* sr_hash - FNV-1a, 64 bits: a hash that is the same on every build and host, for hash tables
 * and for anything several processes must agree on (which instance polls a room). Not for
 * secrets: it is not a cryptographic hash.
 */
#ifndef SR_HASH_H
#define SR_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SR_HASH_FNV1A_INIT 0xcbf29ce484222325ULL

/* sr_hash_fnv1a_more - go on hashing len bytes from an earlier value (SR_HASH_FNV1A_INIT) */
uint64_t sr_hash_fnv1a_more(uint64_t h, const void *data, size_t len);
/* sr_hash_fnv1a_str - the hash of a NUL-terminated string */
uint64_t sr_hash_fnv1a_str(const char *s);

#endif

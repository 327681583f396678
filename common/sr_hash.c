/* sr_hash - FNV-1a 64. See sr_hash.h. */
#include "sr_hash.h"

#include <string.h>

uint64_t sr_hash_fnv1a_more(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t sr_hash_fnv1a_str(const char *s)
{
    return sr_hash_fnv1a_more(SR_HASH_FNV1A_INIT, s, strlen(s));
}

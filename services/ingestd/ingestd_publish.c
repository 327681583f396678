/* ingestd_publish - which rooms are due a metric.room message (at most one per interval).
 *
 * A fixed open-addressing table of (room hash, last publish time): no allocation per room and
 * a hard bound on memory. Two rooms whose 64-bit hashes collide would share a slot, which costs
 * at most a skipped publish. When the table fills up it is wiped, which costs at most one extra
 * publish per room.
 */
#include "ingestd.h"

#include "sr_alloc.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 16384 /* power of two; wiped at 3/4 full */

typedef struct {
    uint64_t hash; /* 0 = empty */
    int64_t last_ms;
} slot_t;

struct ingestd_publish_t {
    slot_t *slots;
    size_t used;
    int64_t interval_ms;
};

ingestd_publish_t *ingestd_publish_new(int64_t min_interval_ms)
{
    ingestd_publish_t *self = sr_calloc(1, sizeof *self);
    self->slots = sr_calloc(SLOTS, sizeof *self->slots);
    self->interval_ms = min_interval_ms;
    return self;
}

void ingestd_publish_destroy(ingestd_publish_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->slots);
    free(*self_p);
    *self_p = NULL;
}

/* s_hash - platform and room id, eight bytes per step (it runs for every stored sample, and
 * FNV-1a byte by byte showed up in profiles); the final mix spreads every byte into the low
 * bits that pick the slot */
static uint64_t s_hash(const Sr__RoomSample *s)
{
    const char *id = s->room_id ? s->room_id : "";
    size_t n = strlen(id);
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)s->platform << 32) ^ n;
    for (; n >= 8; n -= 8, id += 8) {
        uint64_t w;
        memcpy(&w, id, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, id, n);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h ? h : 1;
}

int ingestd_publish_due(ingestd_publish_t *self, const Sr__RoomSample *s, int64_t now_ms)
{
    uint64_t h = s_hash(s);
    size_t i = h & (SLOTS - 1);
    while (self->slots[i].hash && self->slots[i].hash != h)
        i = (i + 1) & (SLOTS - 1);
    slot_t *slot = &self->slots[i];
    if (slot->hash) {
        if (now_ms - slot->last_ms < self->interval_ms)
            return 0;
        slot->last_ms = now_ms;
        return 1;
    }
    if (self->used + 1 > SLOTS / 4 * 3) {
        memset(self->slots, 0, SLOTS * sizeof *self->slots);
        self->used = 0;
        i = h & (SLOTS - 1);
        slot = &self->slots[i];
    }
    slot->hash = h;
    slot->last_ms = now_ms;
    self->used++;
    return 1;
}

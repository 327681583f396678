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

/* s_hash - FNV-1a over platform and room id */
static uint64_t s_hash(const Sr__RoomSample *s)
{
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)s->platform;
    for (const unsigned char *p = (const unsigned char *)(s->room_id ? s->room_id : ""); *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
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

/* ingestd_check - what a batch must satisfy before it is queued.
 *
 * A row PostgreSQL refuses would fail its whole flush transaction again and again and block
 * every batch behind it, so everything the database checks is checked here first and the batch
 * is answered REJECTED instead: text must be UTF-8 (protobuf-c does not check), times must be
 * in range, and the keys must be present.
 */
#include "ingestd.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define COLLECTOR_ID_MAX 200
#define TS_MAX_US        253402300800000000LL /* 10000-01-01: far beyond any real sample */

/* ingestd_utf8_ok - ASCII eight bytes at a time (room and session ids almost always are; this
 * runs for every row), the rest decoded and checked one sequence at a time */
int ingestd_utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        uint64_t w;
        if (end - p >= 8 && (memcpy(&w, p, 8), (w & 0x8080808080808080ULL) == 0)) {
            p += 8;
            continue;
        }
        unsigned c = *p;
        int n;
        unsigned min, cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* s_row - the checks every row shares; the first problem lands in err */
static int s_row(const char *kind, size_t i, const char *room_id, int64_t ts_us,
                 const char *const *texts, const char *const *names, size_t ntexts, char *err,
                 size_t errlen)
{
    if (!room_id || !room_id[0]) {
        snprintf(err, errlen, "%s[%zu].room_id: empty", kind, i);
        return -1;
    }
    if (ts_us < 0 || ts_us >= TS_MAX_US) {
        snprintf(err, errlen, "%s[%zu].ts_us: %lld out of range", kind, i, (long long)ts_us);
        return -1;
    }
    for (size_t t = 0; t < ntexts; t++) {
        if (texts[t] && !ingestd_utf8_ok(texts[t])) {
            snprintf(err, errlen, "%s[%zu].%s: not UTF-8", kind, i, names[t]);
            return -1;
        }
    }
    return 0;
}

int ingestd_batch_check(const Sr__CollectorBatch *b, char *err, size_t errlen)
{
    if (!b->collector_id || !b->collector_id[0] || strlen(b->collector_id) > COLLECTOR_ID_MAX ||
        !ingestd_utf8_ok(b->collector_id)) {
        snprintf(err, errlen, "collector_id: must be 1..%d bytes of UTF-8", COLLECTOR_ID_MAX);
        return -1;
    }
    if (b->batch_seq == 0 || b->batch_seq > INT64_MAX) {
        snprintf(err, errlen, "batch_seq: must be 1..2^63-1");
        return -1;
    }
    for (size_t i = 0; i < b->n_samples; i++) {
        const Sr__RoomSample *s = b->samples[i];
        const char *texts[] = {s->room_id, s->session_id};
        static const char *names[] = {"room_id", "session_id"};
        if (s_row("samples", i, s->room_id, s->ts_us, texts, names, 2, err, errlen) < 0)
            return -1;
    }
    for (size_t i = 0; i < b->n_orders; i++) {
        const Sr__OrderEvent *o = b->orders[i];
        const char *texts[] = {o->room_id, o->session_id, o->order_id, o->sku_id, o->buyer_hash};
        static const char *names[] = {"room_id", "session_id", "order_id", "sku_id", "buyer_hash"};
        if (s_row("orders", i, o->room_id, o->ts_us, texts, names, 5, err, errlen) < 0)
            return -1;
    }
    for (size_t i = 0; i < b->n_interactions; i++) {
        const Sr__InteractionEvent *e = b->interactions[i];
        const char *texts[] = {e->room_id, e->session_id, e->text, e->user_hash};
        static const char *names[] = {"room_id", "session_id", "text", "user_hash"};
        if (s_row("interactions", i, e->room_id, e->ts_us, texts, names, 4, err, errlen) < 0)
            return -1;
    }
    return 0;
}

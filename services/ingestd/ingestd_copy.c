/* ingestd_copy - the PGCOPY binary encoder for the hot tables.
 *
 * Format (PostgreSQL docs, "COPY ... Binary Format"): an 11-byte signature, a 32-bit flags
 * field and a 32-bit header extension length; per tuple a 16-bit field count and per field a
 * 32-bit length followed by the value in network byte order; a 16-bit -1 as trailer. timestamptz
 * is int64 microseconds since 2000-01-01 UTC. The buffer only grows, so after warm-up encoding
 * a row allocates nothing.
 */
#include "ingestd.h"

#include "sr_alloc.h"

#include <stdlib.h>
#include <string.h>

/* microseconds from the Unix epoch to the PostgreSQL epoch (2000-01-01) */
#define PG_EPOCH_OFFSET_US 946684800000000LL
#define SEND_CHUNK         (1 << 20)

struct ingestd_copy_t {
    uint8_t *buf;
    size_t len, cap;
};

static const char *s_sql[INGESTD_TABLES] = {
    "COPY metrics.room_samples (platform, room_id, session_id, ts, online_viewers, "
    "cumulative_viewers, new_viewers, avg_watch_seconds, likes, comments, shares, new_followers, "
    "fan_club_joins, product_impressions, product_clicks, orders_created, orders_paid, "
    "paid_buyers, gmv_fen, refunds_count, refunds_fen, ad_spend_fen) FROM STDIN (FORMAT binary)",
    "COPY metrics.orders (platform, room_id, session_id, ts, order_id, sku_id, status, quantity, "
    "amount_fen, buyer_hash) FROM STDIN (FORMAT binary)",
    "COPY metrics.interactions (platform, room_id, session_id, ts, kind, count, value_fen, text, "
    "user_hash) FROM STDIN (FORMAT binary)",
};

static const char *s_names[INGESTD_TABLES] = {"room_samples", "orders", "interactions"};

ingestd_copy_t *ingestd_copy_new(void)
{
    ingestd_copy_t *self = sr_calloc(1, sizeof *self);
    self->cap = 64 * 1024;
    self->buf = sr_malloc(self->cap);
    return self;
}

void ingestd_copy_destroy(ingestd_copy_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

const char *ingestd_copy_sql(ingestd_table_t table)
{
    return s_sql[table];
}

const char *ingestd_copy_table_name(ingestd_table_t table)
{
    return s_names[table];
}

static uint8_t *s_reserve(ingestd_copy_t *self, size_t n)
{
    if (self->len + n > self->cap) {
        while (self->len + n > self->cap)
            self->cap *= 2;
        self->buf = sr_realloc(self->buf, self->cap);
    }
    uint8_t *p = self->buf + self->len;
    self->len += n;
    return p;
}

static void s_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static void s_u16(ingestd_copy_t *self, uint16_t v)
{
    s_be(s_reserve(self, 2), v, 2);
}

static void s_i16(ingestd_copy_t *self, int16_t v)
{
    uint8_t *p = s_reserve(self, 6);
    s_be(p, 2, 4);
    s_be(p + 4, (uint16_t)v, 2);
}

static void s_i64(ingestd_copy_t *self, int64_t v)
{
    uint8_t *p = s_reserve(self, 12);
    s_be(p, 8, 4);
    s_be(p + 4, (uint64_t)v, 8);
}

static void s_ts(ingestd_copy_t *self, int64_t unix_us)
{
    s_i64(self, unix_us - PG_EPOCH_OFFSET_US);
}

/* s_text - protobuf-c gives "" for unset strings, so NULL only comes from hand-built messages */
static void s_text(ingestd_copy_t *self, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    uint8_t *p = s_reserve(self, 4 + n);
    s_be(p, n, 4);
    if (n)
        memcpy(p + 4, s, n);
}

void ingestd_copy_header(ingestd_copy_t *self)
{
    static const uint8_t header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    self->len = 0;
    memcpy(s_reserve(self, sizeof header), header, sizeof header);
}

void ingestd_copy_sample(ingestd_copy_t *self, const Sr__RoomSample *s)
{
    s_u16(self, 22);
    s_i16(self, (int16_t)s->platform);
    s_text(self, s->room_id);
    s_text(self, s->session_id);
    s_ts(self, s->ts_us);
    const int64_t v[] = {s->online_viewers, s->cumulative_viewers,
                         s->new_viewers,    s->avg_watch_seconds,
                         s->likes,          s->comments,
                         s->shares,         s->new_followers,
                         s->fan_club_joins, s->product_impressions,
                         s->product_clicks, s->orders_created,
                         s->orders_paid,    s->paid_buyers,
                         s->gmv_fen,        s->refunds_count,
                         s->refunds_fen,    s->ad_spend_fen};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        s_i64(self, v[i]);
}

void ingestd_copy_order(ingestd_copy_t *self, const Sr__OrderEvent *o)
{
    s_u16(self, 10);
    s_i16(self, (int16_t)o->platform);
    s_text(self, o->room_id);
    s_text(self, o->session_id);
    s_ts(self, o->ts_us);
    s_text(self, o->order_id);
    s_text(self, o->sku_id);
    s_i16(self, (int16_t)o->status);
    s_i64(self, o->quantity);
    s_i64(self, o->amount_fen);
    s_text(self, o->buyer_hash);
}

void ingestd_copy_interaction(ingestd_copy_t *self, const Sr__InteractionEvent *e)
{
    s_u16(self, 9);
    s_i16(self, (int16_t)e->platform);
    s_text(self, e->room_id);
    s_text(self, e->session_id);
    s_ts(self, e->ts_us);
    s_i16(self, (int16_t)e->kind);
    s_i64(self, e->count);
    s_i64(self, e->value_fen);
    s_text(self, e->text);
    s_text(self, e->user_hash);
}

void ingestd_copy_trailer(ingestd_copy_t *self)
{
    s_u16(self, 0xffff);
}

const uint8_t *ingestd_copy_data(const ingestd_copy_t *self, size_t *len)
{
    *len = self->len;
    return self->buf;
}

int ingestd_copy_send(ingestd_copy_t *self, PGconn *conn)
{
    for (size_t off = 0; off < self->len; off += SEND_CHUNK) {
        size_t n = self->len - off < SEND_CHUNK ? self->len - off : SEND_CHUNK;
        if (PQputCopyData(conn, (const char *)self->buf + off, (int)n) != 1)
            return -1;
    }
    self->len = 0;
    return 0;
}

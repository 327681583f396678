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

#include <endian.h>
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

/* The s_put_* helpers write at p (reserved once per row) and return the next byte. */
static uint8_t *s_put_u16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, sizeof v);
    return p + sizeof v;
}

static uint8_t *s_put_u32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, sizeof v);
    return p + sizeof v;
}

static uint8_t *s_put_i16(uint8_t *p, int16_t v)
{
    return s_put_u16(s_put_u32(p, 2), (uint16_t)v);
}

static uint8_t *s_put_i64(uint8_t *p, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    p = s_put_u32(p, 8);
    memcpy(p, &be, sizeof be);
    return p + sizeof be;
}

static uint8_t *s_put_ts(uint8_t *p, int64_t unix_us)
{
    return s_put_i64(p, unix_us - PG_EPOCH_OFFSET_US);
}

static uint8_t *s_put_text(uint8_t *p, const char *s, size_t n)
{
    p = s_put_u32(p, (uint32_t)n);
    if (n)
        memcpy(p, s, n);
    return p + n;
}

/* s_len - protobuf-c gives "" for unset strings, so NULL only comes from hand-built messages */
static size_t s_len(const char *s)
{
    return s ? strlen(s) : 0;
}

void ingestd_copy_header(ingestd_copy_t *self)
{
    static const uint8_t header[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    self->len = 0;
    memcpy(s_reserve(self, sizeof header), header, sizeof header);
}

/* field sizes on the wire: a 4-byte length, then the value */
#define I16_BYTES     6
#define I64_BYTES     12
#define TEXT_BYTES(n) (4 + (n))

void ingestd_copy_sample(ingestd_copy_t *self, const Sr__RoomSample *s)
{
    const int64_t v[] = {s->online_viewers, s->cumulative_viewers,
                         s->new_viewers,    s->avg_watch_seconds,
                         s->likes,          s->comments,
                         s->shares,         s->new_followers,
                         s->fan_club_joins, s->product_impressions,
                         s->product_clicks, s->orders_created,
                         s->orders_paid,    s->paid_buyers,
                         s->gmv_fen,        s->refunds_count,
                         s->refunds_fen,    s->ad_spend_fen};
    size_t nv = sizeof v / sizeof v[0];
    size_t room = s_len(s->room_id), session = s_len(s->session_id);
    uint8_t *p = s_reserve(self, 2 + I16_BYTES + TEXT_BYTES(room) + TEXT_BYTES(session) +
                                     I64_BYTES * (1 + nv));
    p = s_put_u16(p, (uint16_t)(4 + nv));
    p = s_put_i16(p, (int16_t)s->platform);
    p = s_put_text(p, s->room_id, room);
    p = s_put_text(p, s->session_id, session);
    p = s_put_ts(p, s->ts_us);
    for (size_t i = 0; i < nv; i++)
        p = s_put_i64(p, v[i]);
}

void ingestd_copy_order(ingestd_copy_t *self, const Sr__OrderEvent *o)
{
    size_t room = s_len(o->room_id), session = s_len(o->session_id), order = s_len(o->order_id),
           sku = s_len(o->sku_id), buyer = s_len(o->buyer_hash);
    uint8_t *p =
        s_reserve(self, 2 + I16_BYTES * 2 + I64_BYTES * 3 + TEXT_BYTES(room) + TEXT_BYTES(session) +
                            TEXT_BYTES(order) + TEXT_BYTES(sku) + TEXT_BYTES(buyer));
    p = s_put_u16(p, 10);
    p = s_put_i16(p, (int16_t)o->platform);
    p = s_put_text(p, o->room_id, room);
    p = s_put_text(p, o->session_id, session);
    p = s_put_ts(p, o->ts_us);
    p = s_put_text(p, o->order_id, order);
    p = s_put_text(p, o->sku_id, sku);
    p = s_put_i16(p, (int16_t)o->status);
    p = s_put_i64(p, o->quantity);
    p = s_put_i64(p, o->amount_fen);
    s_put_text(p, o->buyer_hash, buyer);
}

void ingestd_copy_interaction(ingestd_copy_t *self, const Sr__InteractionEvent *e)
{
    size_t room = s_len(e->room_id), session = s_len(e->session_id), text = s_len(e->text),
           user = s_len(e->user_hash);
    uint8_t *p = s_reserve(self, 2 + I16_BYTES * 2 + I64_BYTES * 3 + TEXT_BYTES(room) +
                                     TEXT_BYTES(session) + TEXT_BYTES(text) + TEXT_BYTES(user));
    p = s_put_u16(p, 9);
    p = s_put_i16(p, (int16_t)e->platform);
    p = s_put_text(p, e->room_id, room);
    p = s_put_text(p, e->session_id, session);
    p = s_put_ts(p, e->ts_us);
    p = s_put_i16(p, (int16_t)e->kind);
    p = s_put_i64(p, e->count);
    p = s_put_i64(p, e->value_fen);
    p = s_put_text(p, e->text, text);
    s_put_text(p, e->user_hash, user);
}

void ingestd_copy_trailer(ingestd_copy_t *self)
{
    s_put_u16(s_reserve(self, 2), 0xffff);
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

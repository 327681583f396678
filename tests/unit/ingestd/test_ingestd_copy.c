/* test_ingestd_copy - the PGCOPY binary encoder: exact bytes of the header, of one row per
 * table and of the trailer, and a growing buffer that keeps every row. */
#include "ingestd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

/* 2000-01-01T00:00:01.5Z in Unix microseconds: 1.5 s after the PostgreSQL epoch */
#define TS_US (946684800000000LL + 1500000LL)

static const uint8_t s_header[] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n',
                                   0,   0,   0,   0,   0,   0,   0,    0,    0};

static void test_header_and_trailer(void **state)
{
    (void)state;
    ingestd_copy_t *c = ingestd_copy_new();
    ingestd_copy_header(c);
    ingestd_copy_trailer(c);
    size_t len;
    const uint8_t *data = ingestd_copy_data(c, &len);
    assert_int_equal(len, sizeof s_header + 2);
    assert_memory_equal(data, s_header, sizeof s_header);
    assert_int_equal(data[19], 0xff);
    assert_int_equal(data[20], 0xff);
    ingestd_copy_destroy(&c);
    assert_null(c);
    ingestd_copy_destroy(&c);
}

static void test_interaction_row_bytes(void **state)
{
    (void)state;
    Sr__InteractionEvent e = SR__INTERACTION_EVENT__INIT;
    e.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    e.room_id = "r1";
    e.session_id = "";
    e.ts_us = TS_US;
    e.kind = SR__INTERACTION_KIND__INTERACTION_KIND_GIFT;
    e.count = 3;
    e.value_fen = -2;
    e.text = "hi";
    e.user_hash = "u";
    static const uint8_t want[] = {
        0, 9,                                                       /* fields */
        0, 0, 0, 2, 0,    2,                                        /* platform smallint 2 */
        0, 0, 0, 2, 'r',  '1',                                      /* room_id */
        0, 0, 0, 0,                                                 /* session_id "" */
        0, 0, 0, 8, 0,    0,    0,    0,    0,    0x16, 0xe3, 0x60, /* ts: 1500000 us */
        0, 0, 0, 2, 0,    2,                                        /* kind GIFT */
        0, 0, 0, 8, 0,    0,    0,    0,    0,    0,    0,    3,    /* count */
        0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* value_fen -2 */
        0, 0, 0, 2, 'h',  'i',                                      /* text */
        0, 0, 0, 1, 'u',                                            /* user_hash */
    };
    ingestd_copy_t *c = ingestd_copy_new();
    ingestd_copy_header(c);
    ingestd_copy_interaction(c, &e);
    size_t len;
    const uint8_t *data = ingestd_copy_data(c, &len);
    assert_int_equal(len, sizeof s_header + sizeof want);
    assert_memory_equal(data + sizeof s_header, want, sizeof want);
    ingestd_copy_destroy(&c);
}

static void test_order_row_bytes(void **state)
{
    (void)state;
    Sr__OrderEvent o = SR__ORDER_EVENT__INIT;
    o.platform = SR__PLATFORM__PLATFORM_CHANNELS;
    o.room_id = "r";
    o.session_id = "s";
    o.order_id = "o";
    o.sku_id = "k";
    o.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    o.quantity = 1;
    o.amount_fen = 258; /* 0x0102 */
    o.ts_us = 946684800000000LL;
    o.buyer_hash = NULL; /* a hand-built message: encoded as "" */
    static const uint8_t want[] = {
        0, 10,                                   /* fields */
        0, 0,  0, 2, 0,   1,                     /* platform */
        0, 0,  0, 1, 'r', 0, 0, 0, 1, 's',       /* room_id, session_id */
        0, 0,  0, 8, 0,   0, 0, 0, 0, 0,   0, 0, /* ts at the PostgreSQL epoch */
        0, 0,  0, 1, 'o', 0, 0, 0, 1, 'k',       /* order_id, sku_id */
        0, 0,  0, 2, 0,   2,                     /* status PAID */
        0, 0,  0, 8, 0,   0, 0, 0, 0, 0,   0, 1, /* quantity */
        0, 0,  0, 8, 0,   0, 0, 0, 0, 0,   1, 2, /* amount_fen */
        0, 0,  0, 0,                             /* buyer_hash */
    };
    ingestd_copy_t *c = ingestd_copy_new();
    ingestd_copy_header(c);
    ingestd_copy_order(c, &o);
    size_t len;
    const uint8_t *data = ingestd_copy_data(c, &len);
    assert_int_equal(len, sizeof s_header + sizeof want);
    assert_memory_equal(data + sizeof s_header, want, sizeof want);
    ingestd_copy_destroy(&c);
}

/* a sample row: 22 fields; check the layout at the start and the last counter */
static void test_sample_row_layout(void **state)
{
    (void)state;
    Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
    s.platform = SR__PLATFORM__PLATFORM_KUAISHOU;
    s.room_id = "room";
    s.session_id = "";
    s.ts_us = TS_US;
    s.online_viewers = 7;
    s.ad_spend_fen = 0x0102030405060708LL;
    ingestd_copy_t *c = ingestd_copy_new();
    ingestd_copy_header(c);
    ingestd_copy_sample(c, &s);
    size_t len;
    const uint8_t *p = ingestd_copy_data(c, &len) + sizeof s_header;
    size_t row = 2 + 6 + (4 + 4) + 4 + 12 + 18 * 12;
    assert_int_equal(len, sizeof s_header + row);
    assert_int_equal(p[1], 22);
    assert_int_equal(p[7], 3);
    assert_memory_equal(p + 8, "\0\0\0\4room", 8);
    static const uint8_t online[] = {0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7};
    assert_memory_equal(p + 8 + 8 + 4 + 12, online, sizeof online);
    static const uint8_t last[] = {0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(p + row - 12, last, sizeof last);
    ingestd_copy_destroy(&c);
}

/* many rows grow the buffer past its first size without losing any; a new header starts over */
static void test_growth_and_reuse(void **state)
{
    (void)state;
    Sr__InteractionEvent e = SR__INTERACTION_EVENT__INIT;
    e.room_id = "r1";
    e.text = "a comment of some length";
    ingestd_copy_t *c = ingestd_copy_new();
    ingestd_copy_header(c);
    size_t one, len;
    ingestd_copy_interaction(c, &e);
    ingestd_copy_data(c, &one);
    one -= sizeof s_header;
    for (int i = 1; i < 10000; i++)
        ingestd_copy_interaction(c, &e);
    const uint8_t *data = ingestd_copy_data(c, &len);
    assert_int_equal(len, sizeof s_header + 10000 * one);
    assert_memory_equal(data + sizeof s_header + 9999 * one, data + sizeof s_header, one);
    ingestd_copy_header(c);
    ingestd_copy_data(c, &len);
    assert_int_equal(len, sizeof s_header);
    ingestd_copy_destroy(&c);
}

static void test_sql_and_names(void **state)
{
    (void)state;
    const struct {
        ingestd_table_t t;
        const char *name, *sql_start;
    } cases[] = {
        {INGESTD_TABLE_SAMPLES, "room_samples", "COPY metrics.room_samples (platform, room_id"},
        {INGESTD_TABLE_ORDERS, "orders", "COPY metrics.orders (platform, room_id"},
        {INGESTD_TABLE_INTERACTIONS, "interactions", "COPY metrics.interactions (platform"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(ingestd_copy_table_name(cases[i].t), cases[i].name);
        const char *sql = ingestd_copy_sql(cases[i].t);
        assert_memory_equal(sql, cases[i].sql_start, strlen(cases[i].sql_start));
        assert_non_null(strstr(sql, "FROM STDIN (FORMAT binary)"));
    }
}

/* metric.room rate limit: once per interval per room, rooms independent */
static void test_publish_due(void **state)
{
    (void)state;
    ingestd_publish_t *p = ingestd_publish_new(1000);
    Sr__RoomSample a = SR__ROOM_SAMPLE__INIT, b = SR__ROOM_SAMPLE__INIT;
    a.room_id = "a";
    b.room_id = "a";
    b.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    const struct {
        const Sr__RoomSample *s;
        int64_t now;
        int due;
    } steps[] = {
        {&a, 10000, 1}, {&a, 10500, 0}, {&b, 10500, 1}, {&a, 10999, 0},
        {&a, 11000, 1}, {&b, 11000, 0}, {&b, 11600, 1},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        assert_int_equal(ingestd_publish_due(p, steps[i].s, steps[i].now), steps[i].due);
    /* far more rooms than slots: stays bounded and keeps answering */
    char id[32];
    Sr__RoomSample r = SR__ROOM_SAMPLE__INIT;
    r.room_id = id;
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "room-%d", i);
        assert_int_equal(ingestd_publish_due(p, &r, 20000), 1);
    }
    ingestd_publish_destroy(&p);
    assert_null(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_trailer), cmocka_unit_test(test_interaction_row_bytes),
        cmocka_unit_test(test_order_row_bytes),    cmocka_unit_test(test_sample_row_layout),
        cmocka_unit_test(test_growth_and_reuse),   cmocka_unit_test(test_sql_and_names),
        cmocka_unit_test(test_publish_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

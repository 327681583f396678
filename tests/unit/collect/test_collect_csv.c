/* test_collect_csv - sr-collect's CSV import: the good exports in tests/fixtures/csv/ (per
 * platform, Chinese and English headers, BOM, CRLF, quoting, thousands separators) parse to
 * exact samples, and each kind of bad file is refused whole with exact "FILE:LINE:COLUMN:" lines.
 * Fixtures are found under SR_TEST_ROOT, else the current directory. */
#include "collect.h"

#include "sr_alloc.h"
#include "sr_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define DOUYIN     SR__PLATFORM__PLATFORM_DOUYIN
#define CHANNELS   SR__PLATFORM__PLATFORM_CHANNELS
#define KUAISHOU   SR__PLATFORM__PLATFORM_KUAISHOU
#define DY_T0      1797076800000000LL /* 2026-12-12 20:00:00 China time */
#define CH_T0      1797062460000000LL /* 2026-12-12 16:01:00 China time */
#define DY_ROOM    "7312345678901234567"
#define DY_SESSION "7312000000000000001"

static collect_csv_t *s_parse_fixture(const char *file, Sr__Platform p, const char *room)
{
    const char *root = getenv("SR_TEST_ROOT");
    char *path = sr_asprintf("%s/tests/fixtures/csv/%s", root && *root ? root : ".", file);
    size_t len = 0;
    char *data = sr_test_read_file(path, &len);
    assert_non_null(data);
    collect_csv_t *csv = collect_csv_parse(file, data, len, p, room);
    free(data);
    free(path);
    return csv;
}

static void s_assert_sample(const Sr__RoomSample *got, const Sr__RoomSample *want)
{
    assert_int_equal(got->platform, want->platform);
    assert_string_equal(got->room_id, want->room_id);
    assert_string_equal(got->session_id, want->session_id ? want->session_id : "");
#define EQ(f) assert_int_equal(got->f, want->f)
    EQ(ts_us);
    EQ(online_viewers);
    EQ(cumulative_viewers);
    EQ(new_viewers);
    EQ(avg_watch_seconds);
    EQ(likes);
    EQ(comments);
    EQ(shares);
    EQ(new_followers);
    EQ(fan_club_joins);
    EQ(product_impressions);
    EQ(product_clicks);
    EQ(orders_created);
    EQ(orders_paid);
    EQ(paid_buyers);
    EQ(gmv_fen);
    EQ(refunds_count);
    EQ(refunds_fen);
    EQ(ad_spend_fen);
#undef EQ
}

static const Sr__RoomSample s_douyin_zh[] = {
    {.platform = DOUYIN,
     .room_id = DY_ROOM,
     .session_id = DY_SESSION,
     .ts_us = DY_T0,
     .online_viewers = 25412,
     .cumulative_viewers = 812345,
     .avg_watch_seconds = 96,
     .gmv_fen = 234567890,
     .orders_paid = 14011,
     .paid_buyers = 13002,
     .new_followers = 9921,
     .comments = 90211,
     .likes = 2201873,
     .refunds_fen = 4567812,
     .ad_spend_fen = 3000050},
    /* 96.5 s rounds up; "-" and an empty cell are 0 */
    {.platform = DOUYIN,
     .room_id = DY_ROOM,
     .session_id = DY_SESSION,
     .ts_us = DY_T0 + 5000000,
     .online_viewers = 25500,
     .cumulative_viewers = 812901,
     .avg_watch_seconds = 97,
     .gmv_fen = 234570000,
     .orders_paid = 14012,
     .paid_buyers = 13003,
     .new_followers = 9925,
     .comments = 90300,
     .likes = 2202000},
    {.platform = DOUYIN,
     .room_id = DY_ROOM,
     .session_id = DY_SESSION,
     .ts_us = DY_T0 + 10000000,
     .cumulative_viewers = 813000,
     .gmv_fen = 1,
     .orders_paid = 14012,
     .paid_buyers = 13003,
     .new_followers = 9925,
     .comments = 90300,
     .likes = 2202000,
     .refunds_fen = 10},
};

static const Sr__RoomSample s_douyin_en[] = {
    {.platform = DOUYIN,
     .room_id = DY_ROOM,
     .ts_us = DY_T0,
     .online_viewers = 25412,
     .cumulative_viewers = 812345,
     .gmv_fen = 234567890,
     .orders_paid = 14011,
     .paid_buyers = 13002,
     .new_followers = 9921,
     .comments = 90211,
     .likes = 2201873,
     .refunds_fen = 4567812,
     .ad_spend_fen = 3000050},
    {.platform = DOUYIN,
     .room_id = DY_ROOM,
     .ts_us = DY_T0 + 5000000,
     .online_viewers = 25500,
     .cumulative_viewers = 812901,
     .gmv_fen = 234570000,
     .orders_paid = 14012,
     .paid_buyers = 13003,
     .new_followers = 9925,
     .comments = 90300,
     .likes = 2202000},
};

static const Sr__RoomSample s_channels_zh[] = {
    {.platform = CHANNELS,
     .room_id = "ch-room-1",
     .session_id = "ch-live-20261212-0001",
     .ts_us = CH_T0,
     .online_viewers = 12873,
     .cumulative_viewers = 356210,
     .new_followers = 5121,
     .gmv_fen = 123456789,
     .orders_paid = 8211,
     .paid_buyers = 7604,
     .refunds_fen = 2345600,
     .ad_spend_fen = 1500000,
     .product_clicks = 48210},
    {.platform = CHANNELS,
     .room_id = "ch-room-1",
     .session_id = "ch-live-20261212-0001",
     .ts_us = CH_T0 + 30000000,
     .online_viewers = 12900,
     .cumulative_viewers = 356500,
     .new_followers = 5130,
     .gmv_fen = 123460000,
     .orders_paid = 8212,
     .paid_buyers = 7605,
     .refunds_fen = 2345600,
     .ad_spend_fen = 1500000,
     .product_clicks = 48300},
};

static const Sr__RoomSample s_channels_en[] = {
    {.platform = CHANNELS,
     .room_id = "ch-room-1",
     .session_id = "ch-live-20261212-0001",
     .ts_us = CH_T0,
     .online_viewers = 12873,
     .cumulative_viewers = 356210,
     .new_followers = 5121,
     .gmv_fen = 123456789,
     .orders_paid = 8211,
     .paid_buyers = 7604,
     .refunds_fen = 2345600,
     .ad_spend_fen = 1500000,
     .avg_watch_seconds = 187},
};

static const Sr__RoomSample s_kuaishou[] = {
    {.platform = KUAISHOU,
     .room_id = "ks-room-9",
     .session_id = "ks-3xkz9f2q8w",
     .ts_us = CH_T0,
     .online_viewers = 8841,
     .cumulative_viewers = 221034,
     .likes = 402311,
     .comments = 20117,
     .new_followers = 3320,
     .orders_paid = 5510,
     .paid_buyers = 5102,
     .gmv_fen = 87654321,
     .refunds_fen = 1234560,
     .ad_spend_fen = 880000},
};

static void test_good_files(void **state)
{
    (void)state;
    const struct {
        const char *file;
        Sr__Platform platform;
        const char *room;
        const Sr__RoomSample *want;
        size_t n;
    } cases[] = {
        {"douyin_zh.csv", DOUYIN, NULL, s_douyin_zh, 3},
        {"douyin_en.csv", DOUYIN, NULL, s_douyin_en, 2},
        /* --room equal to the room column is fine */
        {"douyin_en.csv", DOUYIN, DY_ROOM, s_douyin_en, 2},
        {"channels_zh.csv", CHANNELS, "ch-room-1", s_channels_zh, 2},
        {"channels_en.csv", CHANNELS, NULL, s_channels_en, 1},
        {"kuaishou_zh.csv", KUAISHOU, NULL, s_kuaishou, 1},
        {"kuaishou_en.csv", KUAISHOU, NULL, s_kuaishou, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%s\n", cases[i].file);
        collect_csv_t *csv = s_parse_fixture(cases[i].file, cases[i].platform, cases[i].room);
        if (collect_csv_n_errors(csv))
            print_message("%s\n", collect_csv_error(csv, 0));
        assert_int_equal(collect_csv_n_errors(csv), 0);
        assert_int_equal(collect_csv_n_samples(csv), cases[i].n);
        for (size_t j = 0; j < cases[i].n; j++)
            s_assert_sample(collect_csv_sample(csv, j), &cases[i].want[j]);
        assert_null(collect_csv_sample(csv, cases[i].n));
        Sr__RoomSample *s;
        for (size_t j = 0; j < cases[i].n; j++) {
            assert_int_equal(collect_csv_next(csv, NULL, &s), COLLECT_READ_OK);
            assert_ptr_equal(s, collect_csv_sample(csv, j));
        }
        assert_int_equal(collect_csv_next(csv, NULL, &s), COLLECT_READ_END);
        collect_csv_destroy(&csv);
        assert_null(csv);
    }
}

static void test_platform_names(void **state)
{
    (void)state;
    assert_int_equal(collect_csv_platform("douyin"), DOUYIN);
    assert_int_equal(collect_csv_platform("channels"), CHANNELS);
    assert_int_equal(collect_csv_platform("kuaishou"), KUAISHOU);
    assert_int_equal(collect_csv_platform("taobao"), 0);
    assert_int_equal(collect_csv_platform(""), 0);
}

#define H "时间,room_id,like_cnt\n"
#define T "2026-12-12 20:00:00"

static void test_bad_files(void **state)
{
    (void)state;
    const struct {
        const char *name, *csv, *room;
        const char *errors[4];
    } cases[] = {
        {"empty file", "", NULL, {"bad.csv:1:1: empty file: no header row"}},
        {"BOM only", "\xEF\xBB\xBF", NULL, {"bad.csv:1:1: empty file: no header row"}},
        {"blank lines only", "\r\n\n", NULL, {"bad.csv:1:1: empty file: no header row"}},
        {"header only", "\xEF\xBB\xBF" H, NULL, {"bad.csv:2:1: no data rows after the header"}},
        {"no time column",
         "room_id,like_cnt\nr,1\n",
         NULL,
         {"bad.csv:1:1: no time column (时间 or time)"}},
        {"no room column",
         "时间,like_cnt\n" T ",1\n",
         NULL,
         {"bad.csv:1:1: no room column (直播间ID or room_id) and no --room"}},
        {"no metric column",
         "时间,room_id,场次ID,备注\n" T ",r,s,x\n",
         NULL,
         {"bad.csv:1:1: no metric column known for douyin"}},
        {"BOM not at the start is part of the name",
         "时间,\xEF\xBB\xBFroom_id,like_cnt\n" T ",r,1\n",
         NULL,
         {"bad.csv:1:1: no room column (直播间ID or room_id) and no --room"}},
        {"same field twice",
         "时间,Time,room_id,like_cnt\n" T "," T ",r,1\n",
         NULL,
         {"bad.csv:1:2: Time: same field as column 1 (时间)"}},
        {"bad number", H T ",r,12a\n", NULL, {"bad.csv:2:3: like_cnt: not a number: \"12a\""}},
        {"negative number", H T ",r,-5\n", NULL, {"bad.csv:2:3: like_cnt: not a number: \"-5\""}},
        {"misplaced thousands separator",
         H T ",r,\"1,23\"\n" T ",r,\"1234,567\"\n",
         NULL,
         {"bad.csv:2:3: like_cnt: not a number: \"1,23\"",
          "bad.csv:3:3: like_cnt: not a number: \"1234,567\""}},
        {"decimals in a count",
         H T ",r,1.5\n",
         NULL,
         {"bad.csv:2:3: like_cnt: not a whole number: \"1.5\""}},
        {"3-decimal yuan",
         "时间,room_id,成交金额（元）\n" T ",r,\"1,234.567\"\n",
         NULL,
         {"bad.csv:2:3: 成交金额(元): more than 2 decimals: \"1,234.567\""}},
        {"number too large",
         "时间,room_id,pay_amt\n" T ",r,99999999999999999999\n",
         NULL,
         {"bad.csv:2:3: pay_amt: number too large: \"99999999999999999999\""}},
        {"bad times",
         H "2026-02-30 10:00:00,r,1\n2026-12-12T20:00:00,r,1\n12345,r,1\n2026-12-12 24:00:00,r,1\n",
         NULL,
         {"bad.csv:2:1: 时间: bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds): "
          "\"2026-02-30 10:00:00\"",
          "bad.csv:3:1: 时间: bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds): "
          "\"2026-12-12T20:00:00\"",
          "bad.csv:4:1: 时间: bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds): "
          "\"12345\"",
          "bad.csv:5:1: 时间: bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds): "
          "\"2026-12-12 24:00:00\""}},
        {"empty room id", H T ", ,1\n", NULL, {"bad.csv:2:2: room_id: empty room id: \" \""}},
        {"room differs from --room",
         H T ",r2,1\n",
         "r1",
         {"bad.csv:2:2: room_id: room \"r2\" is not --room r1"}},
        {"unterminated quote",
         H T ",r,1\n" T ",\"r,1\n" T ",r,1\n",
         NULL,
         {"bad.csv:3:2: unterminated quoted field"}},
        {"quote inside an unquoted field",
         H T ",r\"x,1\n",
         NULL,
         {"bad.csv:2:2: quote inside an unquoted field (quote the whole field)"}},
        {"text after a closing quote",
         H T ",\"r\"x,1\n",
         NULL,
         {"bad.csv:2:2: unexpected text after a closing quote"}},
        {"wrong column count",
         H T ",r\r\n" T ",r,1,2\r\n" T ",r,1\r\n",
         NULL,
         {"bad.csv:2:3: like_cnt: missing (2 fields, the header has 3)",
          "bad.csv:3:4: 4 fields, the header has 3"}},
        {"lines counted through quoted newlines",
         "时间,room_id,like_cnt,备注\n" T ",r,1,\"a\r\nb\n\"\n" T ",r,x,\n",
         NULL,
         {"bad.csv:5:3: like_cnt: not a number: \"x\""}},
        {"every problem of a row",
         H "yesterday,r,x\n",
         NULL,
         {"bad.csv:2:1: 时间: bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds): "
          "\"yesterday\"",
          "bad.csv:2:3: like_cnt: not a number: \"x\""}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("case: %s\n", cases[i].name);
        collect_csv_t *csv =
            collect_csv_parse("bad.csv", cases[i].csv, strlen(cases[i].csv), DOUYIN, cases[i].room);
        size_t n = 0;
        while (n < 4 && cases[i].errors[n])
            n++;
        for (size_t j = 0; collect_csv_n_errors(csv) != n && j < collect_csv_n_errors(csv); j++)
            print_message("  got %s\n", collect_csv_error(csv, j));
        assert_int_equal(collect_csv_n_errors(csv), n);
        for (size_t j = 0; j < n; j++)
            assert_string_equal(collect_csv_error(csv, j), cases[i].errors[j]);
        assert_null(collect_csv_error(csv, n));
        assert_int_equal(collect_csv_n_samples(csv), 0);
        Sr__RoomSample *s;
        assert_int_equal(collect_csv_next(csv, NULL, &s), COLLECT_READ_END);
        collect_csv_destroy(&csv);
    }
}

/* 60 bad rows: 50 problems, then one line saying the rest was not checked */
static void test_problem_limit(void **state)
{
    (void)state;
    char *text = sr_strdup(H);
    for (int i = 0; i < 60; i++) {
        char *more = sr_asprintf("%s" T ",r,bad%d\n", text, i);
        free(text);
        text = more;
    }
    collect_csv_t *csv = collect_csv_parse("many.csv", text, strlen(text), DOUYIN, NULL);
    assert_int_equal(collect_csv_n_errors(csv), COLLECT_CSV_MAX_ERRORS + 1);
    assert_string_equal(collect_csv_error(csv, 0),
                        "many.csv:2:3: like_cnt: not a number: \"bad0\"");
    assert_string_equal(collect_csv_error(csv, 49),
                        "many.csv:51:3: like_cnt: not a number: \"bad49\"");
    assert_string_equal(collect_csv_error(csv, 50),
                        "many.csv:52: more than 50 problems, the rest not checked");
    assert_int_equal(collect_csv_n_samples(csv), 0);
    collect_csv_destroy(&csv);
    free(text);
}

/* a NUL byte means a binary file: refused as a whole, with its line */
static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = H T ",r,1\n" T ",r,\0"
                                   "1\n";
    collect_csv_t *csv = collect_csv_parse("bin.csv", text, sizeof text - 1, DOUYIN, NULL);
    assert_int_equal(collect_csv_n_errors(csv), 1);
    assert_string_equal(collect_csv_error(csv, 0), "bin.csv:3:1: NUL byte: not a text file");
    assert_int_equal(collect_csv_n_samples(csv), 0);
    collect_csv_destroy(&csv);
}

/* an unknown platform is a problem of its own, not a crash */
static void test_unknown_platform(void **state)
{
    (void)state;
    collect_csv_t *csv =
        collect_csv_parse("x.csv", H, strlen(H), SR__PLATFORM__PLATFORM_TAOBAO, NULL);
    assert_int_equal(collect_csv_n_errors(csv), 1);
    assert_string_equal(collect_csv_error(csv, 0), "x.csv:1:1: no CSV format known for platform 4");
    collect_csv_destroy(&csv);
    collect_csv_destroy(&csv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files), cmocka_unit_test(test_platform_names),
        cmocka_unit_test(test_bad_files),  cmocka_unit_test(test_problem_limit),
        cmocka_unit_test(test_nul_byte),   cmocka_unit_test(test_unknown_platform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

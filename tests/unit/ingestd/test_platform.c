/* test_platform - each platform's fixture -> exact normalized values; bad bodies -> the exact
 * error text, the right failure kind and no partial sample.
 *
 * Fixtures are the good ones in tests/fixtures/platforms/ and tests/fixtures/platforms/bad/ (one
 * thing wrong each), found under SR_TEST_ROOT or the current directory.
 */
#include "ingestd_platform.h"
#include "sr_alloc.h"
#include "sr_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* s_parse - parse a fixture file for room_id; returns the parse result */
static ingestd_parse_rc_t s_parse(const char *platform, const char *room_id, const char *rel,
                                  Sr__RoomSample *out, sr_arena_t *arena, char *err, size_t errlen)
{
    const ingestd_platform_t *p = ingestd_platform_find(platform);
    assert_non_null(p);
    size_t len = 0;
    char *body = sr_test_fixture(rel, &len);
    ingestd_parse_rc_t rc = ingestd_platform_parse(p, room_id, body, len, out, arena, err, errlen);
    free(body);
    return rc;
}

typedef struct {
    const char *platform, *room_id, *file;
    const char *session_id;
    int64_t ts_us, online, cumulative, new_viewers, avg_watch, likes, comments, shares, followers,
        fan_club, impressions, clicks, created, paid, buyers, gmv, refunds, refunds_fen, ad_fen;
    Sr__Platform id;
} good_t;

static const good_t s_good[] = {
    {"channels",
     "ch-room-1",
     "platforms/channels_live_data.json",
     "ch-live-20261212-0001",
     1765526460000000,
     12873,
     356210,
     2210,
     187,
     984312,
     45120,
     3312,
     5121,
     412,
     210345,
     48210,
     9120,
     8211,
     7604,
     123456789,
     312,
     2345600,
     1500000,
     SR__PLATFORM__PLATFORM_CHANNELS},
    /* 2026-12-12 20:01:00 China time is 2026-12-12T12:01:00Z */
    {"douyin",
     "7312345678901234567",
     "platforms/douyin_live_screen.json",
     "",
     1797076860000000,
     25412,
     812345,
     5321,
     96,
     2201873,
     90211,
     7712,
     9921,
     1203,
     402113,
     88120,
     15230,
     14011,
     13002,
     234567890,
     420,
     4567812,
     3000050,
     SR__PLATFORM__PLATFORM_DOUYIN},
    {"kuaishou",
     "ks-room-9",
     "platforms/kuaishou_realtime_uv.json",
     "ks-3xkz9f2q8w",
     1765526460000000,
     8841,
     221034,
     1877,
     142,
     402311,
     20117,
     1402,
     3320,
     210,
     140221,
     30110,
     6022,
     5510,
     5102,
     87654321,
     140,
     1234560,
     880000,
     SR__PLATFORM__PLATFORM_KUAISHOU},
};

static void test_fixtures_exact(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(4096);
    for (size_t i = 0; i < sizeof s_good / sizeof s_good[0]; i++) {
        const good_t *g = &s_good[i];
        Sr__RoomSample s;
        char err[256] = "";
        assert_int_equal(s_parse(g->platform, g->room_id, g->file, &s, arena, err, sizeof err),
                         INGESTD_PARSE_OK);
        assert_string_equal(err, "");
        assert_int_equal(s.platform, g->id);
        assert_string_equal(s.room_id, g->room_id);
        assert_string_equal(s.session_id, g->session_id);
        const int64_t got[] = {s.ts_us,
                               s.online_viewers,
                               s.cumulative_viewers,
                               s.new_viewers,
                               s.avg_watch_seconds,
                               s.likes,
                               s.comments,
                               s.shares,
                               s.new_followers,
                               s.fan_club_joins,
                               s.product_impressions,
                               s.product_clicks,
                               s.orders_created,
                               s.orders_paid,
                               s.paid_buyers,
                               s.gmv_fen,
                               s.refunds_count,
                               s.refunds_fen,
                               s.ad_spend_fen};
        const int64_t want[] = {g->ts_us,     g->online,      g->cumulative,  g->new_viewers,
                                g->avg_watch, g->likes,       g->comments,    g->shares,
                                g->followers, g->fan_club,    g->impressions, g->clicks,
                                g->created,   g->paid,        g->buyers,      g->gmv,
                                g->refunds,   g->refunds_fen, g->ad_fen};
        for (size_t f = 0; f < sizeof want / sizeof want[0]; f++)
            if (got[f] != want[f])
                fail_msg("%s field #%zu: got %lld want %lld", g->platform, f, (long long)got[f],
                         (long long)want[f]);
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

typedef struct {
    const char *platform, *room_id;
    const char *file; /* under tests/fixtures/platforms/, or NULL for body */
    const char *body;
    ingestd_parse_rc_t rc;
    const char *err;
} bad_t;

#define CH "ch-room-1"
#define DY "7312345678901234567"
#define KS "ks-room-9"

static const bad_t s_bad[] = {
    {"channels", CH, "platforms/bad/channels_errcode.json", NULL, INGESTD_PARSE_PLATFORM_ERROR,
     "channels: errcode 40001: invalid credential, access_token is invalid or not latest"},
    {"channels", CH, "platforms/bad/channels_no_data.json", NULL, INGESTD_PARSE_BAD_BODY,
     "channels: data: missing"},
    {"channels", CH, "platforms/bad/channels_missing_gmv.json", NULL, INGESTD_PARSE_BAD_BODY,
     "channels: total_gmv: missing"},
    {"channels", CH, "platforms/bad/channels_negative_count.json", NULL, INGESTD_PARSE_BAD_BODY,
     "channels: online_audience_count: negative (-5)"},
    {"douyin", DY, "platforms/bad/douyin_string_count.json", NULL, INGESTD_PARSE_BAD_BODY,
     "douyin: pay_ucnt: expected an integer, got string"},
    {"douyin", DY, "platforms/bad/douyin_three_decimals.json", NULL, INGESTD_PARSE_BAD_BODY,
     "douyin: pay_amt: more than 2 decimals (2345678.905)"},
    {"douyin", DY, "platforms/bad/douyin_rate_limited.json", NULL, INGESTD_PARSE_PLATFORM_ERROR,
     "douyin: code 10002: request too frequent"},
    {"douyin", DY, "platforms/bad/douyin_bad_time.json", NULL, INGESTD_PARSE_BAD_BODY,
     "douyin: update_time: not a time \"YYYY-MM-DD HH:MM:SS\" (\"2026-12-12T20:01:00\")"},
    {"douyin", "7300000000000000001", "platforms/douyin_live_screen.json", NULL,
     INGESTD_PARSE_BAD_BODY,
     "douyin: room_id: answer for room \"7312345678901234567\", asked for "
     "\"7300000000000000001\""},
    {"douyin", DY, "platforms/bad/not_json.html", NULL, INGESTD_PARSE_BAD_BODY,
     "douyin: not JSON: '[' or '{' expected near '<' (line 1 column 1)"},
    {"kuaishou", KS, "platforms/bad/kuaishou_junk_yuan.json", NULL, INGESTD_PARSE_BAD_BODY,
     "kuaishou: gmvYuan: not a yuan amount (\"12a.00\")"},
    {"kuaishou", KS, "platforms/bad/kuaishou_three_decimals.json", NULL, INGESTD_PARSE_BAD_BODY,
     "kuaishou: refundYuan: more than 2 decimals (\"12345.600\")"},
    {"kuaishou", KS, "platforms/bad/kuaishou_token_expired.json", NULL,
     INGESTD_PARSE_PLATFORM_ERROR, "kuaishou: result 0: access token expired"},
    {"kuaishou", KS, NULL, "", INGESTD_PARSE_BAD_BODY, "kuaishou: empty body"},
    {"kuaishou", KS, NULL, "{\"result\":1,\"data\":{\"liveStr", INGESTD_PARSE_BAD_BODY,
     "kuaishou: not JSON: premature end of input near '\"liveStr' (line 1 column 28)"},
    {"kuaishou", KS, NULL, "[1,2]", INGESTD_PARSE_BAD_BODY,
     "kuaishou: expected an object, got array"},
    {"kuaishou", KS, NULL, "{\"result\":\"1\",\"data\":{}}", INGESTD_PARSE_BAD_BODY,
     "kuaishou: result: expected an integer, got string"},
    {"kuaishou", KS, NULL, "{\"error_msg\":\"\",\"data\":{}}", INGESTD_PARSE_BAD_BODY,
     "kuaishou: result: missing"},
    {"kuaishou", KS, NULL, "{\"result\":1,\"data\":[]}", INGESTD_PARSE_BAD_BODY,
     "kuaishou: data: expected an object, got array"},
    {"channels", CH, NULL, "{\"errcode\":0,\"data\":{\"live_id\":null}}", INGESTD_PARSE_BAD_BODY,
     "channels: live_id: missing"},
    {"channels", CH, NULL, "{\"errcode\":0,\"data\":{\"live_id\":\"\"}}", INGESTD_PARSE_BAD_BODY,
     "channels: live_id: empty"},
    {"channels", CH, NULL, "{\"errcode\":0,\"data\":{\"live_id\":\"x\",\"stat_time\":1.5}}",
     INGESTD_PARSE_BAD_BODY, "channels: stat_time: expected an integer, got real"},
};

/* s_fixture_with - a fixture with field's value replaced by json_value; caller frees */
static char *s_fixture_with(const char *rel, const char *field, const char *json_value)
{
    size_t len = 0;
    char *good = sr_test_fixture(rel, &len);
    char *key = sr_asprintf("\"%s\": ", field);
    char *at = strstr(good, key);
    assert_non_null(at);
    size_t head = (size_t)(at - good) + strlen(key);
    char *body = sr_asprintf("%.*s%s%s", (int)head, good, json_value, strpbrk(good + head, ",\n"));
    free(key);
    free(good);
    return body;
}

static void test_bad_bodies(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(4096);
    for (size_t i = 0; i < sizeof s_bad / sizeof s_bad[0]; i++) {
        const bad_t *b = &s_bad[i];
        const ingestd_platform_t *p = ingestd_platform_find(b->platform);
        size_t len = b->body ? strlen(b->body) : 0;
        char *owned = b->file ? sr_test_fixture(b->file, &len) : NULL;
        Sr__RoomSample s;
        char err[256] = "";
        ingestd_parse_rc_t rc = ingestd_platform_parse(p, b->room_id, owned ? owned : b->body, len,
                                                       &s, arena, err, sizeof err);
        free(owned);
        if (rc != b->rc || strcmp(err, b->err) != 0)
            fail_msg("case %zu (%s): rc %d err \"%s\", want rc %d err \"%s\"", i,
                     b->file ? b->file : b->body, rc, err, b->rc, b->err);
        /* no partial sample */
        assert_int_equal(s.platform, SR__PLATFORM__PLATFORM_UNSPECIFIED);
        assert_string_equal(s.room_id, "");
        assert_int_equal(s.online_viewers, 0);
        assert_int_equal(s.ts_us, 0);
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

/* yuan strings: every accepted shape and every rejected one, on Kuaishou's gmvYuan */
static void test_yuan_strings(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int64_t fen; /* -1: rejected with err */
        const char *err;
    } cases[] = {
        {"\"0\"", 0, NULL},
        {"\"7\"", 700, NULL},
        {"\"0.5\"", 50, NULL},
        {"\"0.05\"", 5, NULL},
        {"\"19.99\"", 1999, NULL},
        {"\"123456789012345.67\"", 12345678901234567, NULL},
        {"\"1234567890123456\"", -1, "kuaishou: gmvYuan: out of range (\"1234567890123456\")"},
        {"\"12.345\"", -1, "kuaishou: gmvYuan: more than 2 decimals (\"12.345\")"},
        {"\"-1.00\"", -1, "kuaishou: gmvYuan: negative (\"-1.00\")"},
        {"\"12.\"", -1, "kuaishou: gmvYuan: not a yuan amount (\"12.\")"},
        {"\".5\"", -1, "kuaishou: gmvYuan: not a yuan amount (\".5\")"},
        {"\"\"", -1, "kuaishou: gmvYuan: not a yuan amount (\"\")"},
        {"\" 1.00\"", -1, "kuaishou: gmvYuan: not a yuan amount (\" 1.00\")"},
        {"\"1.00 \"", -1, "kuaishou: gmvYuan: not a yuan amount (\"1.00 \")"},
        {"\"1e3\"", -1, "kuaishou: gmvYuan: not a yuan amount (\"1e3\")"},
        {"876543.21", -1, "kuaishou: gmvYuan: expected a string, got real"},
        {"null", -1, "kuaishou: gmvYuan: missing"},
    };
    const ingestd_platform_t *p = ingestd_platform_find("kuaishou");
    sr_arena_t *arena = sr_arena_new(4096);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body =
            s_fixture_with("platforms/kuaishou_realtime_uv.json", "gmvYuan", cases[i].value);
        Sr__RoomSample s;
        char err[256] = "";
        ingestd_parse_rc_t rc =
            ingestd_platform_parse(p, KS, body, strlen(body), &s, arena, err, sizeof err);
        free(body);
        if (cases[i].fen >= 0) {
            if (rc != INGESTD_PARSE_OK || s.gmv_fen != cases[i].fen)
                fail_msg("%s: rc %d err \"%s\" fen %lld", cases[i].value, rc, err,
                         (long long)s.gmv_fen);
        } else if (rc != INGESTD_PARSE_BAD_BODY || strcmp(err, cases[i].err) != 0) {
            fail_msg("%s: rc %d err \"%s\", want \"%s\"", cases[i].value, rc, err, cases[i].err);
        }
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

/* yuan numbers and times: Douyin's pay_amt and update_time */
static void test_douyin_numbers_and_times(void **state)
{
    (void)state;
    static const struct {
        const char *field, *value;
        int64_t want; /* -1: rejected with err */
        const char *err;
    } cases[] = {
        {"pay_amt", "0.1", 10, NULL},
        {"pay_amt", "0.29", 29, NULL},
        {"pay_amt", "1.15", 115, NULL},
        {"pay_amt", "12", 1200, NULL},
        {"pay_amt", "99999999999.99", 9999999999999, NULL},
        {"pay_amt", "1.005", -1, "douyin: pay_amt: more than 2 decimals (1.005)"},
        {"pay_amt", "-3.5", -1, "douyin: pay_amt: negative (-3.5)"},
        {"pay_amt", "1e12", -1, "douyin: pay_amt: out of range (1e+12)"},
        {"pay_amt", "\"12.00\"", -1, "douyin: pay_amt: expected a number, got string"},
        {"avg_watch_duration", "96.5", 97, NULL},
        {"avg_watch_duration", "0", 0, NULL},
        {"update_time", "\"1970-01-01 08:00:00\"", 0, NULL},
        {"update_time", "\"2024-02-29 23:59:59\"", 1709222399000000, NULL},
        {"update_time", "\"2026-01-01 00:00:00\"", 1767196800000000, NULL},
        {"update_time", "\"2025-02-29 00:00:00\"", -1,
         "douyin: update_time: not a time \"YYYY-MM-DD HH:MM:SS\" (\"2025-02-29 00:00:00\")"},
        {"update_time", "\"2026-12-12 24:00:00\"", -1,
         "douyin: update_time: not a time \"YYYY-MM-DD HH:MM:SS\" (\"2026-12-12 24:00:00\")"},
        {"update_time", "\"2026-12-12 20:01\"", -1,
         "douyin: update_time: not a time \"YYYY-MM-DD HH:MM:SS\" (\"2026-12-12 20:01\")"},
        {"update_time", "1765526460", -1, "douyin: update_time: expected a string, got integer"},
    };
    const ingestd_platform_t *p = ingestd_platform_find("douyin");
    sr_arena_t *arena = sr_arena_new(4096);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *body =
            s_fixture_with("platforms/douyin_live_screen.json", cases[i].field, cases[i].value);
        Sr__RoomSample s;
        char err[256] = "";
        ingestd_parse_rc_t rc =
            ingestd_platform_parse(p, DY, body, strlen(body), &s, arena, err, sizeof err);
        free(body);
        int64_t got = strcmp(cases[i].field, "pay_amt") == 0              ? s.gmv_fen
                      : strcmp(cases[i].field, "avg_watch_duration") == 0 ? s.avg_watch_seconds
                                                                          : s.ts_us;
        if (cases[i].want >= 0) {
            if (rc != INGESTD_PARSE_OK || got != cases[i].want)
                fail_msg("%s=%s: rc %d err \"%s\" got %lld", cases[i].field, cases[i].value, rc,
                         err, (long long)got);
        } else if (rc != INGESTD_PARSE_BAD_BODY || strcmp(err, cases[i].err) != 0) {
            fail_msg("%s=%s: rc %d err \"%s\", want \"%s\"", cases[i].field, cases[i].value, rc,
                     err, cases[i].err);
        }
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

/* an optional field may be absent (0); unknown fields are ignored */
static void test_optional_and_unknown(void **state)
{
    (void)state;
    const char *body = "{\"errcode\":0,\"errmsg\":\"ok\",\"brand_new\":[1],\"data\":{"
                       "\"live_id\":\"L1\",\"stat_time\":10,\"online_audience_count\":1,"
                       "\"cumulative_audience_count\":2,\"new_audience_count\":3,"
                       "\"average_watch_seconds_per_audience\":4,\"like_count\":5,"
                       "\"comment_count\":6,\"share_count\":7,\"new_follow_count\":8,"
                       "\"product_exposure_uv\":9,\"total_clk_uv\":10,\"create_order_count\":11,"
                       "\"pay_order_count\":12,\"total_pay_uv\":13,\"total_gmv\":14,"
                       "\"refund_order_count\":15,\"refund_amount\":16,\"ad_cost\":null,"
                       "\"some_new_metric\":{\"x\":\"y\"}}}";
    sr_arena_t *arena = sr_arena_new(1024);
    Sr__RoomSample s;
    char err[256] = "";
    assert_int_equal(ingestd_platform_parse(ingestd_platform_find("channels"), "r", body,
                                            strlen(body), &s, arena, err, sizeof err),
                     INGESTD_PARSE_OK);
    assert_string_equal(s.session_id, "L1");
    assert_int_equal(s.ts_us, 10000000);
    assert_int_equal(s.gmv_fen, 14);
    assert_int_equal(s.refunds_fen, 16);
    assert_int_equal(s.ad_spend_fen, 0);
    assert_int_equal(s.fan_club_joins, 0);
    sr_arena_destroy(&arena);
}

static void test_find_and_url(void **state)
{
    (void)state;
    assert_null(ingestd_platform_find("taobao"));
    assert_null(ingestd_platform_find(NULL));
    size_t n = 0;
    while (ingestd_platform_at(n))
        n++;
    assert_int_equal(n, 3);
    static const struct {
        const char *platform, *base, *room, *url;
    } cases[] = {
        {"channels", "http://127.0.0.1:8080", "r1",
         "http://127.0.0.1:8080/channels/live/data?room_id=r1"},
        {"douyin", "http://sim/", "7312345678901234567",
         "http://sim/douyin/compass/live_screen?room_id=7312345678901234567"},
        {"kuaishou", "https://api.example.com/v2//", "a b&c=/视",
         "https://api.example.com/v2/kuaishou/live/realtime_uv?room_id=a%20b%26c%3D%2F%E8%A7%86"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ingestd_platform_t *p = ingestd_platform_find(cases[i].platform);
        assert_non_null(p);
        assert_string_equal(ingestd_platform_name(p), cases[i].platform);
        char *url = ingestd_platform_url(p, cases[i].base, cases[i].room);
        assert_string_equal(url, cases[i].url);
        free(url);
    }
    assert_int_equal(ingestd_platform_id(ingestd_platform_find("kuaishou")),
                     SR__PLATFORM__PLATFORM_KUAISHOU);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_exact),
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_yuan_strings),
        cmocka_unit_test(test_douyin_numbers_and_times),
        cmocka_unit_test(test_optional_and_unknown),
        cmocka_unit_test(test_find_and_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

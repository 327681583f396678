/* test_simd_format - the simulator's JSON against the platform fixtures: every field of
 * tests/fixtures/platforms/<platform>.json present with the fixture's JSON type and no other,
 * exact money and time formats, and each platform's error envelopes. Needs SR_TEST_ROOT. */
#include "simd.h"
#include "sr_test.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define T0 1765526460 /* 2025-12-12 08:01:00 UTC = 16:01:00 in China */

static const char *s_fixtures[SIMD_PLATFORM_COUNT] = {
    "tests/fixtures/platforms/channels_live_data.json",
    "tests/fixtures/platforms/douyin_live_screen.json",
    "tests/fixtures/platforms/kuaishou_realtime_uv.json",
};

static json_t *s_load_fixture(simd_platform_t p)
{
    char *path = sr_test_root_path(s_fixtures[p]);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root)
        fail_msg("%s: %s", path, err.text);
    free(path);
    return root;
}

static json_t *s_parse(const char *text)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        fail_msg("not JSON (%s): %s", err.text, text);
    return root;
}

/* s_same_shape - same keys with the same JSON types, recursively through objects */
static void s_same_shape(json_t *want, json_t *got, const char *where)
{
    if (json_typeof(want) != json_typeof(got))
        fail_msg("%s: fixture type %d, simulator type %d", where, json_typeof(want),
                 json_typeof(got));
    if (!json_is_object(want))
        return;
    assert_int_equal(json_object_size(want), json_object_size(got));
    const char *key;
    json_t *value;
    json_object_foreach(want, key, value)
    {
        json_t *other = json_object_get(got, key);
        if (!other)
            fail_msg("%s: simulator lacks \"%s\"", where, key);
        s_same_shape(value, other, key);
    }
}

/* a hand-made sample with awkward numbers: money that a double would print badly */
static simd_sample_t s_sample(void)
{
    simd_sample_t s = {
        .live = 1,
        .online = 12873,
        .viewers = 356210,
        .new_viewers = 2210,
        .avg_watch_s = 96.4,
        .likes = 984312,
        .comments = 45120,
        .shares = 3312,
        .follows = 5121,
        .fans_club = 412,
        .impressions = 210345,
        .clicks = 48210,
        .orders_created = 9120,
        .orders_paid = 8211,
        .buyers = 7604,
        .gmv_fen = 123456790,
        .refund_orders = 312,
        .refund_fen = 2345600,
        .ad_cost_fen = 1500005,
        .avg_price_fen = 15035,
    };
    strcpy(s.session_id, "ks-live-abc-1765526000");
    strcpy(s.export_id, "export/AbC123");
    return s;
}

static void test_shapes_match_fixtures(void **state)
{
    (void)state;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        for (int room = 0; room < 17; room++) {
            char id[SIMD_ROOM_ID_MAX];
            simd_room_id(42, p, room, id);
            simd_sample_t s;
            simd_model(42, p, room, T0, &s);
            char *text = simd_format(p, id, T0, &s);
            json_t *got = s_parse(text), *want = s_load_fixture(p);
            s_same_shape(want, got, simd_platform_name(p));
            json_decref(want);
            json_decref(got);
            free(text);
        }
    }
}

static void test_channels_values(void **state)
{
    (void)state;
    simd_sample_t s = s_sample();
    strcpy(s.session_id, "ch-live-sphx-1765526000");
    char *text = simd_format(SIMD_CHANNELS, "sphx", T0, &s);
    json_t *root = s_parse(text), *d = json_object_get(root, "data");
    assert_int_equal(json_integer_value(json_object_get(root, "errcode")), 0);
    assert_string_equal(json_string_value(json_object_get(root, "errmsg")), "ok");
    assert_string_equal(json_string_value(json_object_get(d, "live_id")), s.session_id);
    assert_string_equal(json_string_value(json_object_get(d, "export_id")), "export/AbC123");
    assert_int_equal(json_integer_value(json_object_get(d, "stat_time")), T0);
    assert_int_equal(json_integer_value(json_object_get(d, "total_gmv")), 123456790);
    assert_int_equal(json_integer_value(json_object_get(d, "refund_amount")), 2345600);
    assert_int_equal(json_integer_value(json_object_get(d, "ad_cost")), 1500005);
    assert_int_equal(json_integer_value(json_object_get(d, "total_pay_uv")), 7604);
    assert_int_equal(json_integer_value(json_object_get(d, "pay_order_count")), 8211);
    assert_int_equal(json_integer_value(json_object_get(d, "average_watch_seconds_per_audience")),
                     96);
    json_decref(root);
    free(text);
}

static void test_douyin_values(void **state)
{
    (void)state;
    simd_sample_t s = s_sample();
    char *text = simd_format(SIMD_DOUYIN, "7312345678901234567", T0, &s);
    /* two decimals on the wire, always */
    assert_non_null(strstr(text, "\"pay_amt\":1234567.90,"));
    assert_non_null(strstr(text, "\"real_refund_amt\":23456.00,"));
    assert_non_null(strstr(text, "\"stat_cost\":15000.05}"));
    /* gpm: GMV per thousand viewers, 1234567.90 * 1000 / 356210 */
    assert_non_null(strstr(text, "\"gpm\":3465.84,"));
    assert_non_null(strstr(text, "\"avg_watch_duration\":96.4,"));
    json_t *root = s_parse(text), *d = json_object_get(root, "data");
    assert_int_equal(json_integer_value(json_object_get(root, "code")), 0);
    assert_string_equal(json_string_value(json_object_get(d, "room_id")), "7312345678901234567");
    assert_string_equal(json_string_value(json_object_get(d, "update_time")),
                        "2025-12-12 16:01:00");
    assert_int_equal(json_integer_value(json_object_get(d, "watch_ucnt")), 356210);
    assert_int_equal(json_integer_value(json_object_get(d, "pay_ucnt")), 7604);
    json_decref(root);
    free(text);
}

static void test_kuaishou_values(void **state)
{
    (void)state;
    simd_sample_t s = s_sample();
    char *text = simd_format(SIMD_KUAISHOU, "abc", T0, &s);
    json_t *root = s_parse(text), *d = json_object_get(root, "data");
    assert_int_equal(json_integer_value(json_object_get(root, "result")), 1);
    assert_string_equal(json_string_value(json_object_get(root, "error_msg")), "");
    assert_string_equal(json_string_value(json_object_get(d, "liveStreamId")), s.session_id);
    assert_int_equal(json_integer_value(json_object_get(d, "timestamp")), T0 * 1000LL);
    assert_string_equal(json_string_value(json_object_get(d, "gmvYuan")), "1234567.90");
    assert_string_equal(json_string_value(json_object_get(d, "refundYuan")), "23456.00");
    assert_string_equal(json_string_value(json_object_get(d, "adCostYuan")), "15000.05");
    /* paying users per viewer: 7604 / 356210 */
    assert_string_equal(json_string_value(json_object_get(d, "payConversionRate")), "2.13%");
    assert_int_equal(json_integer_value(json_object_get(d, "avgWatchSeconds")), 96);
    json_decref(root);
    free(text);
}

/* a room before its first order: zeros everywhere, no division by zero */
static void test_empty_room(void **state)
{
    (void)state;
    simd_sample_t s = {0};
    s.avg_watch_s = 60;
    char *dy = simd_format(SIMD_DOUYIN, "7", 0, &s);
    assert_non_null(strstr(dy, "\"pay_amt\":0.00,"));
    assert_non_null(strstr(dy, "\"gpm\":0.00,"));
    assert_non_null(strstr(dy, "\"update_time\":\"1970-01-01 08:00:00\""));
    char *ks = simd_format(SIMD_KUAISHOU, "k", 0, &s);
    assert_non_null(strstr(ks, "\"payConversionRate\":\"0.00%\""));
    assert_non_null(strstr(ks, "\"gmvYuan\":\"0.00\""));
    free(dy);
    free(ks);
}

static void test_error_envelopes(void **state)
{
    (void)state;
    static const struct {
        simd_platform_t platform;
        simd_error_t error;
        const char *want;
    } cases[] = {
        {SIMD_CHANNELS, SIMD_ERR_UNKNOWN_ROOM,
         "{\"errcode\":40001,\"errmsg\":\"invalid room_id\"}"},
        {SIMD_CHANNELS, SIMD_ERR_BAD_QUERY, "{\"errcode\":40097,\"errmsg\":\"invalid args\"}"},
        {SIMD_CHANNELS, SIMD_ERR_UNAUTHORIZED,
         "{\"errcode\":40014,\"errmsg\":\"invalid access_token\"}"},
        {SIMD_DOUYIN, SIMD_ERR_UNKNOWN_ROOM, "{\"code\":10001,\"msg\":\"room not found\"}"},
        {SIMD_DOUYIN, SIMD_ERR_BAD_QUERY, "{\"code\":10002,\"msg\":\"invalid param\"}"},
        {SIMD_DOUYIN, SIMD_ERR_UNAUTHORIZED, "{\"code\":10008,\"msg\":\"access token invalid\"}"},
        {SIMD_KUAISHOU, SIMD_ERR_UNKNOWN_ROOM,
         "{\"result\":0,\"error_msg\":\"live stream not found\"}"},
        {SIMD_KUAISHOU, SIMD_ERR_BAD_QUERY, "{\"result\":0,\"error_msg\":\"invalid parameter\"}"},
        {SIMD_KUAISHOU, SIMD_ERR_UNAUTHORIZED,
         "{\"result\":0,\"error_msg\":\"access token invalid\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = simd_format_error(cases[i].platform, cases[i].error);
        assert_string_equal(text, cases[i].want);
        /* the envelope's code and message fields have the fixture's types */
        json_t *got = s_parse(text), *fixture = s_load_fixture(cases[i].platform);
        const char *key;
        json_t *value;
        json_object_foreach(got, key, value)
        {
            json_t *f = json_object_get(fixture, key);
            assert_non_null(f);
            assert_int_equal(json_typeof(f), json_typeof(value));
        }
        json_decref(fixture);
        json_decref(got);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes_match_fixtures),
        cmocka_unit_test(test_channels_values),
        cmocka_unit_test(test_douyin_values),
        cmocka_unit_test(test_kuaishou_values),
        cmocka_unit_test(test_empty_room),
        cmocka_unit_test(test_error_envelopes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* simd_format - each platform's JSON for one room, and its error envelopes. See simd.h.
 *
 * The shapes follow the files in tests/fixtures/platforms/ field for field; the parsers in ingestd
 * are tested against the same files. Text is written with printf rather than jansson because the
 * money formats are exact: Douyin's yuan are JSON numbers with two decimals ("123.40", which a
 * double cannot carry), Kuaishou's are decimal strings, Channels' are fen integers. Every string
 * printed comes from simd_rooms.c (letters, digits, '-', '/'), so nothing needs escaping.
 */
#include "simd.h"

#include "sr_alloc.h"

#include <stdio.h>
#include <time.h>

#define CHINA_UTC_OFFSET_S (8 * 3600)

typedef struct {
    char text[32];
} money_t;

/* s_yuan - fen (never negative here) as yuan with two decimals */
static money_t s_yuan(int64_t fen)
{
    money_t m;
    snprintf(m.text, sizeof m.text, "%lld.%02lld", (long long)fen / 100, (long long)fen % 100);
    return m;
}

static char *s_channels(const char *room_id, int64_t t, const simd_sample_t *s)
{
    (void)room_id;
    return sr_asprintf(
        "{\"errcode\":0,\"errmsg\":\"ok\",\"data\":{\"export_id\":\"%s\",\"live_id\":\"%s\","
        "\"stat_time\":%lld,\"online_audience_count\":%lld,\"cumulative_audience_count\":%lld,"
        "\"new_audience_count\":%lld,\"average_watch_seconds_per_audience\":%lld,"
        "\"like_count\":%lld,\"comment_count\":%lld,\"share_count\":%lld,"
        "\"new_follow_count\":%lld,\"new_fans_club_count\":%lld,\"product_exposure_uv\":%lld,"
        "\"total_clk_uv\":%lld,\"create_order_count\":%lld,\"pay_order_count\":%lld,"
        "\"total_pay_uv\":%lld,\"total_gmv\":%lld,\"refund_order_count\":%lld,"
        "\"refund_amount\":%lld,\"ad_cost\":%lld}}",
        s->export_id, s->session_id, (long long)t, (long long)s->online, (long long)s->viewers,
        (long long)s->new_viewers, (long long)(s->avg_watch_s + 0.5), (long long)s->likes,
        (long long)s->comments, (long long)s->shares, (long long)s->follows,
        (long long)s->fans_club, (long long)s->impressions, (long long)s->clicks,
        (long long)s->orders_created, (long long)s->orders_paid, (long long)s->buyers,
        (long long)s->gmv_fen, (long long)s->refund_orders, (long long)s->refund_fen,
        (long long)s->ad_cost_fen);
}

static char *s_douyin(const char *room_id, int64_t t, const simd_sample_t *s)
{
    time_t china = (time_t)(t + CHINA_UTC_OFFSET_S);
    struct tm tm;
    char when[32] = "1970-01-01 00:00:00";
    if (gmtime_r(&china, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    /* GMV per thousand viewers */
    int64_t gpm_fen = s->viewers > 0 ? s->gmv_fen * 1000 / s->viewers : 0;
    return sr_asprintf(
        "{\"code\":0,\"msg\":\"success\",\"data\":{\"room_id\":\"%s\",\"update_time\":\"%s\","
        "\"online_user_cnt\":%lld,\"watch_ucnt\":%lld,\"new_watch_ucnt\":%lld,"
        "\"avg_watch_duration\":%.1f,\"like_cnt\":%lld,\"comment_cnt\":%lld,\"share_cnt\":%lld,"
        "\"incr_fans_cnt\":%lld,\"fans_club_ucnt\":%lld,\"product_show_ucnt\":%lld,"
        "\"product_click_ucnt\":%lld,\"create_order_cnt\":%lld,\"pay_order_cnt\":%lld,"
        "\"pay_ucnt\":%lld,\"pay_amt\":%s,\"real_refund_cnt\":%lld,\"real_refund_amt\":%s,"
        "\"gpm\":%s,\"stat_cost\":%s}}",
        room_id, when, (long long)s->online, (long long)s->viewers, (long long)s->new_viewers,
        s->avg_watch_s, (long long)s->likes, (long long)s->comments, (long long)s->shares,
        (long long)s->follows, (long long)s->fans_club, (long long)s->impressions,
        (long long)s->clicks, (long long)s->orders_created, (long long)s->orders_paid,
        (long long)s->buyers, s_yuan(s->gmv_fen).text, (long long)s->refund_orders,
        s_yuan(s->refund_fen).text, s_yuan(gpm_fen).text, s_yuan(s->ad_cost_fen).text);
}

static char *s_kuaishou(const char *room_id, int64_t t, const simd_sample_t *s)
{
    (void)room_id;
    double conversion = s->viewers > 0 ? 100.0 * (double)s->buyers / (double)s->viewers : 0;
    return sr_asprintf(
        "{\"result\":1,\"error_msg\":\"\",\"data\":{\"liveStreamId\":\"%s\",\"timestamp\":%lld,"
        "\"onlineCount\":%lld,\"totalWatchUv\":%lld,\"newWatchUv\":%lld,\"avgWatchSeconds\":%lld,"
        "\"likeCount\":%lld,\"commentCount\":%lld,\"shareCount\":%lld,\"newFansCount\":%lld,"
        "\"fansGroupJoinCount\":%lld,\"itemExposureUv\":%lld,\"itemClickUv\":%lld,"
        "\"orderCount\":%lld,\"payOrderCount\":%lld,\"payUserCount\":%lld,\"gmvYuan\":\"%s\","
        "\"refundCount\":%lld,\"refundYuan\":\"%s\",\"adCostYuan\":\"%s\","
        "\"payConversionRate\":\"%.2f%%\"}}",
        s->session_id, (long long)t * 1000, (long long)s->online, (long long)s->viewers,
        (long long)s->new_viewers, (long long)(s->avg_watch_s + 0.5), (long long)s->likes,
        (long long)s->comments, (long long)s->shares, (long long)s->follows,
        (long long)s->fans_club, (long long)s->impressions, (long long)s->clicks,
        (long long)s->orders_created, (long long)s->orders_paid, (long long)s->buyers,
        s_yuan(s->gmv_fen).text, (long long)s->refund_orders, s_yuan(s->refund_fen).text,
        s_yuan(s->ad_cost_fen).text, conversion);
}

static char *(*const s_formatters[SIMD_PLATFORM_COUNT])(const char *, int64_t,
                                                        const simd_sample_t *) = {
    s_channels,
    s_douyin,
    s_kuaishou,
};

char *simd_format(simd_platform_t platform, const char *room_id, int64_t t, const simd_sample_t *s)
{
    return s_formatters[platform](room_id, t, s);
}

/* each platform's envelope: code field, success value, message field, and per error its code
 * and message (the codes are the ones the platforms document for these cases) */
static const struct {
    const char *code_key, *msg_key;
    struct {
        int code;
        const char *msg;
    } err[3];
} s_envelopes[SIMD_PLATFORM_COUNT] = {
    {"errcode",
     "errmsg",
     {{40001, "invalid room_id"}, {40097, "invalid args"}, {40014, "invalid access_token"}}},
    {"code",
     "msg",
     {{10001, "room not found"}, {10002, "invalid param"}, {10008, "access token invalid"}}},
    {"result",
     "error_msg",
     {{0, "live stream not found"}, {0, "invalid parameter"}, {0, "access token invalid"}}},
};

char *simd_format_error(simd_platform_t platform, simd_error_t error)
{
    return sr_asprintf("{\"%s\":%d,\"%s\":\"%s\"}", s_envelopes[platform].code_key,
                       s_envelopes[platform].err[error].code, s_envelopes[platform].msg_key,
                       s_envelopes[platform].err[error].msg);
}

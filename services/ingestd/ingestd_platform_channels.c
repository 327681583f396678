/* ingestd_platform_channels - WeChat Channels (视频号) live dashboard data -> RoomSample.
 *
 * Envelope {"errcode":0,"errmsg":"ok","data":{...}}. Money is already fen, stat_time is Unix
 * seconds, live_id is the session. The room id is not in the body: it is the one polled. The
 * shape is tests/fixtures/platforms/channels_live_data.json; the engine is ingestd_platform.c.
 */
#include "ingestd_platform.h"

#include <stddef.h>

#define F(field) offsetof(Sr__RoomSample, field)

/* optional: fan clubs and ads exist only for some rooms, so the platform omits them */
static const ingestd_field_t s_rows[] = {
    {"live_id", F(session_id), INGESTD_CONV_STRING, 1},
    {"stat_time", F(ts_us), INGESTD_CONV_UNIX_S, 1},
    {"online_audience_count", F(online_viewers), INGESTD_CONV_COUNT, 1},
    {"cumulative_audience_count", F(cumulative_viewers), INGESTD_CONV_COUNT, 1},
    {"new_audience_count", F(new_viewers), INGESTD_CONV_COUNT, 1},
    {"average_watch_seconds_per_audience", F(avg_watch_seconds), INGESTD_CONV_SECONDS_REAL, 1},
    {"like_count", F(likes), INGESTD_CONV_COUNT, 1},
    {"comment_count", F(comments), INGESTD_CONV_COUNT, 1},
    {"share_count", F(shares), INGESTD_CONV_COUNT, 1},
    {"new_follow_count", F(new_followers), INGESTD_CONV_COUNT, 1},
    {"new_fans_club_count", F(fan_club_joins), INGESTD_CONV_COUNT, 0},
    {"product_exposure_uv", F(product_impressions), INGESTD_CONV_COUNT, 1},
    {"total_clk_uv", F(product_clicks), INGESTD_CONV_COUNT, 1},
    {"create_order_count", F(orders_created), INGESTD_CONV_COUNT, 1},
    {"pay_order_count", F(orders_paid), INGESTD_CONV_COUNT, 1},
    {"total_pay_uv", F(paid_buyers), INGESTD_CONV_COUNT, 1},
    {"total_gmv", F(gmv_fen), INGESTD_CONV_FEN, 1},
    {"refund_order_count", F(refunds_count), INGESTD_CONV_COUNT, 1},
    {"refund_amount", F(refunds_fen), INGESTD_CONV_FEN, 1},
    {"ad_cost", F(ad_spend_fen), INGESTD_CONV_FEN, 0},
};

const ingestd_platform_t ingestd_platform_channels = {
    .name = "channels",
    .id = SR__PLATFORM__PLATFORM_CHANNELS,
    .path = "/channels/live/data",
    .code_field = "errcode",
    .ok_code = 0,
    .msg_field = "errmsg",
    .rows = s_rows,
    .nrows = sizeof s_rows / sizeof s_rows[0],
};

/* ingestd_platform_kuaishou - Kuaishou real-time UV (快手实时数据) -> RoomSample.
 *
 * Envelope {"result":1,"error_msg":"","data":{...}}: success is result 1, not 0. Money
 * (gmvYuan, refundYuan, adCostYuan) is yuan as decimal strings; timestamp is Unix ms;
 * liveStreamId is the session. The room id is not in the body: it is the one polled.
 * payConversionRate is derived and not stored. The shape is
 * tests/fixtures/platforms/kuaishou_realtime_uv.json; the engine is ingestd_platform.c.
 */
#include "ingestd_platform.h"

#include <stddef.h>

#define F(field) offsetof(Sr__RoomSample, field)

/* optional: fan groups and ad spend exist only for some rooms */
static const ingestd_field_t s_rows[] = {
    {"liveStreamId", F(session_id), INGESTD_CONV_STRING, 1},
    {"timestamp", F(ts_us), INGESTD_CONV_UNIX_MS, 1},
    {"onlineCount", F(online_viewers), INGESTD_CONV_COUNT, 1},
    {"totalWatchUv", F(cumulative_viewers), INGESTD_CONV_COUNT, 1},
    {"newWatchUv", F(new_viewers), INGESTD_CONV_COUNT, 1},
    {"avgWatchSeconds", F(avg_watch_seconds), INGESTD_CONV_SECONDS_REAL, 1},
    {"likeCount", F(likes), INGESTD_CONV_COUNT, 1},
    {"commentCount", F(comments), INGESTD_CONV_COUNT, 1},
    {"shareCount", F(shares), INGESTD_CONV_COUNT, 1},
    {"newFansCount", F(new_followers), INGESTD_CONV_COUNT, 1},
    {"fansGroupJoinCount", F(fan_club_joins), INGESTD_CONV_COUNT, 0},
    {"itemExposureUv", F(product_impressions), INGESTD_CONV_COUNT, 1},
    {"itemClickUv", F(product_clicks), INGESTD_CONV_COUNT, 1},
    {"orderCount", F(orders_created), INGESTD_CONV_COUNT, 1},
    {"payOrderCount", F(orders_paid), INGESTD_CONV_COUNT, 1},
    {"payUserCount", F(paid_buyers), INGESTD_CONV_COUNT, 1},
    {"gmvYuan", F(gmv_fen), INGESTD_CONV_YUAN_STRING, 1},
    {"refundCount", F(refunds_count), INGESTD_CONV_COUNT, 1},
    {"refundYuan", F(refunds_fen), INGESTD_CONV_YUAN_STRING, 1},
    {"adCostYuan", F(ad_spend_fen), INGESTD_CONV_YUAN_STRING, 0},
};

const ingestd_platform_t ingestd_platform_kuaishou = {
    .name = "kuaishou",
    .id = SR__PLATFORM__PLATFORM_KUAISHOU,
    .path = "/kuaishou/live/realtime_uv",
    .code_field = "result",
    .ok_code = 1,
    .msg_field = "error_msg",
    .rows = s_rows,
    .nrows = sizeof s_rows / sizeof s_rows[0],
};

/* ingestd_platform_douyin - Douyin compass live screen data (抖音罗盘大屏) -> RoomSample.
 *
 * Envelope {"code":0,"msg":"success","data":{...}}. Money (pay_amt, real_refund_amt, stat_cost)
 * is yuan as a JSON number with up to 2 decimals; avg_watch_duration is fractional seconds;
 * update_time is China time as text; the body names its room, which must be the room polled.
 * gpm is derived from the others and not stored. The shape is
 * tests/fixtures/platforms/douyin_live_screen.json; the engine is ingestd_platform.c.
 */
#include "ingestd_platform.h"

#include <stddef.h>

#define F(field) offsetof(Sr__RoomSample, field)

/* optional: fan clubs and ad spend exist only for some rooms */
static const ingestd_field_t s_rows[] = {
    {"room_id", F(room_id), INGESTD_CONV_ROOM_ID, 1},
    {"update_time", F(ts_us), INGESTD_CONV_CHINA_TIME, 1},
    {"online_user_cnt", F(online_viewers), INGESTD_CONV_COUNT, 1},
    {"watch_ucnt", F(cumulative_viewers), INGESTD_CONV_COUNT, 1},
    {"new_watch_ucnt", F(new_viewers), INGESTD_CONV_COUNT, 1},
    {"avg_watch_duration", F(avg_watch_seconds), INGESTD_CONV_SECONDS_REAL, 1},
    {"like_cnt", F(likes), INGESTD_CONV_COUNT, 1},
    {"comment_cnt", F(comments), INGESTD_CONV_COUNT, 1},
    {"share_cnt", F(shares), INGESTD_CONV_COUNT, 1},
    {"incr_fans_cnt", F(new_followers), INGESTD_CONV_COUNT, 1},
    {"fans_club_ucnt", F(fan_club_joins), INGESTD_CONV_COUNT, 0},
    {"product_show_ucnt", F(product_impressions), INGESTD_CONV_COUNT, 1},
    {"product_click_ucnt", F(product_clicks), INGESTD_CONV_COUNT, 1},
    {"create_order_cnt", F(orders_created), INGESTD_CONV_COUNT, 1},
    {"pay_order_cnt", F(orders_paid), INGESTD_CONV_COUNT, 1},
    {"pay_ucnt", F(paid_buyers), INGESTD_CONV_COUNT, 1},
    {"pay_amt", F(gmv_fen), INGESTD_CONV_YUAN_NUMBER, 1},
    {"real_refund_cnt", F(refunds_count), INGESTD_CONV_COUNT, 1},
    {"real_refund_amt", F(refunds_fen), INGESTD_CONV_YUAN_NUMBER, 1},
    {"stat_cost", F(ad_spend_fen), INGESTD_CONV_YUAN_NUMBER, 0},
};

const ingestd_platform_t ingestd_platform_douyin = {
    .name = "douyin",
    .id = SR__PLATFORM__PLATFORM_DOUYIN,
    .path = "/douyin/compass/live_screen",
    .code_field = "code",
    .ok_code = 0,
    .msg_field = "msg",
    .rows = s_rows,
    .nrows = sizeof s_rows / sizeof s_rows[0],
};

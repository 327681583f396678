/* simd - the platform simulator: live rooms on WeChat Channels, Douyin and Kuaishou, served
 * over HTTP in each platform's own JSON, so the suite has live data and tests use real libcurl.
 *
 * The numbers come from one pure function, simd_model(seed, platform, room, sim time): every
 * room runs back-to-back ~2 h shows (a seeded start offset, a short break between shows), and
 * within a show every counter only grows. The HTTP layer only looks rooms up and formats.
 * Same seed and same simulated time give byte-identical JSON.
 *
 * Simulated time: sim = start + (now - start) * SR_SIMD_SPEED, start = when sr-simd started;
 * SR_SIMD_CLOCK=fixed:UNIX_SECONDS pins it for tests. Timestamps in the JSON are simulated time.
 *
 * Files: main.c (the definition), simd_rooms.c (room ids and the model), simd_format.c (the
 * three platforms' JSON and error envelopes), simd_http.c (config, endpoints, counters).
 */
#ifndef SIMD_H
#define SIMD_H

#include "sr_service.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SIMD_CHANNELS = 0,
    SIMD_DOUYIN,
    SIMD_KUAISHOU,
    SIMD_PLATFORM_COUNT,
} simd_platform_t;

#define SIMD_ROOM_ID_MAX 32

/* one room's dashboard at one simulated second; money in fen */
typedef struct {
    int live;            /* 1 while the show is on air, 0 in the break after it */
    int flash_sale;      /* 1 while a flash sale (秒杀) runs */
    int64_t show;        /* which show of the room (any integer; new session id each) */
    int64_t show_start;  /* unix s (simulated) when this show started */
    int64_t elapsed_s;   /* seconds since show_start */
    int64_t online;      /* gauge: viewers in the room now */
    int64_t viewers;     /* cumulative distinct viewers */
    int64_t new_viewers; /* gauge: viewers who came in the last minute */
    double avg_watch_s;  /* gauge: average watch time per viewer */
    int64_t likes, comments, shares, follows, fans_club;
    int64_t impressions; /* product exposure UV */
    int64_t clicks;      /* product click UV */
    int64_t orders_created, orders_paid, buyers;
    int64_t gmv_fen; /* orders_paid * avg_price_fen */
    int64_t refund_orders, refund_fen;
    int64_t ad_cost_fen;
    int64_t avg_price_fen; /* the show's seeded average price */
    char session_id[48];   /* the show's live id on the platform (live_id, liveStreamId) */
    char export_id[48];    /* Channels' export_id of the show */
} simd_sample_t;

/* simd_rooms.c */
const char *simd_platform_name(simd_platform_t platform); /* "channels", "douyin", "kuaishou" */
/* simd_room_id - the room's external id on its platform, deterministic from seed and index */
void simd_room_id(uint64_t seed, simd_platform_t platform, int room, char out[SIMD_ROOM_ID_MAX]);
/* simd_model - the room at simulated unix second t */
void simd_model(uint64_t seed, simd_platform_t platform, int room, int64_t t, simd_sample_t *out);

/* simd_format.c: caller frees every result */
/* simd_format - the platform's answer for room_id at simulated unix second t */
char *simd_format(simd_platform_t platform, const char *room_id, int64_t t, const simd_sample_t *s);
typedef enum {
    SIMD_ERR_UNKNOWN_ROOM = 0, /* HTTP 200, as the platforms answer */
    SIMD_ERR_BAD_QUERY,        /* HTTP 400 */
    SIMD_ERR_UNAUTHORIZED,     /* HTTP 401 */
} simd_error_t;
/* simd_format_error - the platform's own error envelope */
char *simd_format_error(simd_platform_t platform, simd_error_t error);

/* simd_http.c */
typedef struct {
    char *addr;    /* SR_SIMD_ADDR */
    int64_t port;  /* SR_SIMD_PORT */
    int64_t rooms; /* SR_SIMD_ROOMS, per platform */
    int64_t seed;  /* SR_SIMD_SEED */
    int64_t speed; /* SR_SIMD_SPEED */
    char *clock;   /* SR_SIMD_CLOCK: "" or "fixed:UNIX_SECONDS" */
    char *token;   /* SR_SIMD_TOKEN */
} simd_config_t;

extern const sr_config_entry_t simd_config[];

int simd_check_config(const void *config, char *err, size_t errlen);
int simd_init(sr_service_t *svc);
void simd_fini(sr_service_t *svc);

#endif

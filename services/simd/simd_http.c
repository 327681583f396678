/* simd_http - sr-simd's configuration, its HTTP routes and its request counters. See simd.h.
 *
 * sr_http serves from its own thread. The state it reads (room ids, the /rooms body, the
 * clock settings) is built in simd_init() and never changes, and counters are atomics, so the
 * handler takes no lock. Routes are one static table; each platform route answers with the
 * platform's JSON for the room as of the simulated now, or the platform's error envelope.
 */
#include "simd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_http.h"
#include "sr_log.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field)  offsetof(simd_config_t, field)
#define CLOCK_FIXED "fixed:"

const sr_config_entry_t simd_config[] = {
    {"SR_SIMD_ADDR", SR_CFG_STR, "127.0.0.1", 0, 0, OFF(addr),
     "address the platform endpoints listen on (IPv4 or IPv6)"},
    {"SR_SIMD_PORT", SR_CFG_INT, "7700", 1, 65535, OFF(port), "port of the platform endpoints"},
    {"SR_SIMD_ROOMS", SR_CFG_INT, "17", 1, 5000, OFF(rooms), "live rooms on each platform"},
    {"SR_SIMD_SEED", SR_CFG_INT, "42", 0, 4294967295, OFF(seed),
     "seed of the room model: same seed and time, same numbers"},
    {"SR_SIMD_SPEED", SR_CFG_INT, "1", 1, 3600, OFF(speed),
     "simulated seconds per real second (60 plays a 2 h show in 2 min)"},
    {"SR_SIMD_CLOCK", SR_CFG_STR, "", 0, 0, OFF(clock),
     "empty = real time from start-up; fixed:UNIX_SECONDS pins the simulated time (tests)"},
    {"SR_SIMD_TOKEN", SR_CFG_SECRET, "", 0, 0, OFF(token),
     "when set, requests must carry \"Authorization: Bearer <token>\" (else 401)"},
    {NULL},
};

typedef enum {
    RESULT_OK = 0,
    RESULT_UNKNOWN_ROOM,
    RESULT_BAD_REQUEST,
    RESULT_UNAUTHORIZED,
    RESULT_NOT_FOUND,
    RESULT_BAD_METHOD,
    RESULT_COUNT,
} result_t;

static const char *s_results[RESULT_COUNT] = {
    "ok", "unknown_room", "bad_request", "unauthorized", "not_found", "bad_method",
};

#define PLATFORM_NONE SIMD_PLATFORM_COUNT /* /rooms and unknown paths */

static sr_http_reply_t s_rooms(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_channels(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_douyin(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_kuaishou(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_refused(void *arg, const sr_http_request_t *req);

static const sr_http_route_t s_routes[] = {
    {"/rooms", s_rooms},
    {"/channels/live/data", s_channels},
    {"/douyin/compass/live_screen", s_douyin},
    {"/kuaishou/live/realtime_uv", s_kuaishou},
    {NULL, s_refused},
};

/* the platform each route above counts under, in the same order (a 405 counts there too) */
static const int s_route_platform[] = {PLATFORM_NONE, SIMD_CHANNELS, SIMD_DOUYIN, SIMD_KUAISHOU,
                                       PLATFORM_NONE};

typedef struct {
    const simd_config_t *cfg;
    uint64_t seed;
    int rooms;
    char (*ids)[SIMD_ROOM_ID_MAX]; /* rooms per platform, platform after platform */
    char *rooms_body;
    char *auth; /* "Bearer <token>", or NULL when no token is asked for */
    int fixed;
    int64_t fixed_s, start_us;
    sr_http_server_t *http;
    sr_counter_t *requests[PLATFORM_NONE + 1][RESULT_COUNT];
} simd_t;

/* s_parse_clock - "" (real time) or "fixed:UNIX_SECONDS"; 0 ok */
static int s_parse_clock(const char *text, int *fixed, int64_t *fixed_s)
{
    *fixed = 0;
    *fixed_s = 0;
    if (!text[0])
        return 0;
    size_t n = strlen(CLOCK_FIXED);
    if (strncmp(text, CLOCK_FIXED, n) != 0 || text[n] < '0' || text[n] > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text + n, &end, 10);
    if (errno || *end)
        return -1;
    *fixed = 1;
    *fixed_s = v;
    return 0;
}

int simd_check_config(const void *config, char *err, size_t errlen)
{
    const simd_config_t *cfg = config;
    int fixed;
    int64_t fixed_s;
    if (s_parse_clock(cfg->clock, &fixed, &fixed_s) < 0) {
        snprintf(err, errlen, "SR_SIMD_CLOCK: '%s' is neither empty nor fixed:UNIX_SECONDS",
                 cfg->clock);
        return -1;
    }
    if (!sr_http_addr_ok(cfg->addr)) {
        snprintf(err, errlen, "SR_SIMD_ADDR: '%s' is not an IPv4 or IPv6 address", cfg->addr);
        return -1;
    }
    return 0;
}

/* s_now - the simulated unix second */
static int64_t s_now(const simd_t *self)
{
    if (self->fixed)
        return self->fixed_s;
    int64_t real_us = sr_clock_now_us();
    return (self->start_us + (real_us - self->start_us) * self->cfg->speed) / 1000000;
}

/* s_token_ok - the Authorization header against the expected one, in constant time */
static int s_token_ok(const simd_t *self, const sr_http_request_t *req)
{
    if (!self->auth)
        return 1;
    const char *got = sr_http_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!got)
        return 0;
    size_t want_len = strlen(self->auth), got_len = strlen(got);
    unsigned char diff = want_len != got_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)self->auth[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

/* s_reply - count the request under platform and result, then answer */
static sr_http_reply_t s_reply(simd_t *self, int platform, result_t result, unsigned status,
                               char *body)
{
    sr_counter_inc(self->requests[platform][result]);
    return (sr_http_reply_t){status, SR_HTTP_JSON, body};
}

static sr_http_reply_t s_plain_error(simd_t *self, int platform, unsigned status, result_t result,
                                     const char *message)
{
    return s_reply(self, platform, result, status, sr_asprintf("{\"error\":\"%s\"}", message));
}

/* s_platform - the room's JSON, or the platform's envelope for a bad or unknown room */
static sr_http_reply_t s_platform(simd_t *self, simd_platform_t platform,
                                  const sr_http_request_t *req)
{
    if (!s_token_ok(self, req))
        return s_reply(self, platform, RESULT_UNAUTHORIZED, MHD_HTTP_UNAUTHORIZED,
                       simd_format_error(platform, SIMD_ERR_UNAUTHORIZED));
    const char *room_id = sr_http_request_query(req, "room_id");
    if (!room_id || !room_id[0] || strlen(room_id) >= SIMD_ROOM_ID_MAX)
        return s_reply(self, platform, RESULT_BAD_REQUEST, MHD_HTTP_BAD_REQUEST,
                       simd_format_error(platform, SIMD_ERR_BAD_QUERY));
    char(*ids)[SIMD_ROOM_ID_MAX] = self->ids + (size_t)platform * (size_t)self->rooms;
    for (int room = 0; room < self->rooms; room++) {
        if (strcmp(ids[room], room_id) == 0) {
            int64_t t = s_now(self);
            simd_sample_t sample;
            simd_model(self->seed, platform, room, t, &sample);
            return s_reply(self, platform, RESULT_OK, MHD_HTTP_OK,
                           simd_format(platform, ids[room], t, &sample));
        }
    }
    /* the platforms answer an unknown room with 200 and an error code in the body */
    return s_reply(self, platform, RESULT_UNKNOWN_ROOM, MHD_HTTP_OK,
                   simd_format_error(platform, SIMD_ERR_UNKNOWN_ROOM));
}

static sr_http_reply_t s_channels(void *arg, const sr_http_request_t *req)
{
    return s_platform(arg, SIMD_CHANNELS, req);
}

static sr_http_reply_t s_douyin(void *arg, const sr_http_request_t *req)
{
    return s_platform(arg, SIMD_DOUYIN, req);
}

static sr_http_reply_t s_kuaishou(void *arg, const sr_http_request_t *req)
{
    return s_platform(arg, SIMD_KUAISHOU, req);
}

static sr_http_reply_t s_rooms(void *arg, const sr_http_request_t *req)
{
    simd_t *self = arg;
    if (!s_token_ok(self, req))
        return s_plain_error(self, PLATFORM_NONE, MHD_HTTP_UNAUTHORIZED, RESULT_UNAUTHORIZED,
                             "unauthorized");
    return s_reply(self, PLATFORM_NONE, RESULT_OK, MHD_HTTP_OK, sr_strdup(self->rooms_body));
}

/* s_refused - an unknown path counts under platform "none", another method than GET under
 * its route's platform */
static sr_http_reply_t s_refused(void *arg, const sr_http_request_t *req)
{
    if (sr_http_request_refused(req) == MHD_HTTP_NOT_FOUND)
        return s_plain_error(arg, PLATFORM_NONE, MHD_HTTP_NOT_FOUND, RESULT_NOT_FOUND,
                             "no such path");
    int platform = PLATFORM_NONE;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        if (s_routes[i].path && strcmp(s_routes[i].path, sr_http_request_path(req)) == 0)
            platform = s_route_platform[i];
    }
    return s_plain_error(arg, platform, MHD_HTTP_METHOD_NOT_ALLOWED, RESULT_BAD_METHOD,
                         "only GET is allowed");
}

/* s_rooms_body - {"rooms":[{"platform":...,"room_id":...}, ...]} */
static char *s_rooms_body(const simd_t *self)
{
    json_t *list = json_array();
    for (int p = 0; p < SIMD_PLATFORM_COUNT && list; p++) {
        for (int room = 0; room < self->rooms; room++) {
            json_t *item = json_pack("{s:s,s:s}", "platform", simd_platform_name(p), "room_id",
                                     self->ids[(size_t)p * (size_t)self->rooms + (size_t)room]);
            if (!item || json_array_append_new(list, item) < 0)
                sr_panic("simd_json", "err=\"cannot build the room list\"");
        }
    }
    json_t *root = list ? json_pack("{s:o}", "rooms", list) : NULL;
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text)
        sr_panic("simd_json", "err=\"cannot build the room list\"");
    json_decref(root);
    return text;
}

static void s_destroy(simd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    simd_t *self = *self_p;
    sr_http_server_destroy(&self->http);
    free(self->ids);
    free(self->rooms_body);
    free(self->auth);
    free(self);
    *self_p = NULL;
}

int simd_init(sr_service_t *svc)
{
    simd_t *self = sr_calloc(1, sizeof *self);
    const simd_config_t *cfg = self->cfg = sr_service_config(svc);
    self->seed = (uint64_t)cfg->seed;
    self->rooms = (int)cfg->rooms;
    self->start_us = sr_clock_now_us();
    if (s_parse_clock(cfg->clock, &self->fixed, &self->fixed_s) < 0)
        sr_panic("simd_clock", "err=\"SR_SIMD_CLOCK passed the check but does not parse\"");
    self->auth = cfg->token[0] ? sr_asprintf("Bearer %s", cfg->token) : NULL;
    self->ids = sr_calloc((size_t)SIMD_PLATFORM_COUNT * (size_t)self->rooms, sizeof *self->ids);
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++)
        for (int room = 0; room < self->rooms; room++)
            simd_room_id(self->seed, p, room, self->ids[(size_t)p * (size_t)self->rooms + room]);
    self->rooms_body = s_rooms_body(self);
    sr_metrics_t *metrics = sr_service_metrics(svc);
    for (int p = 0; p <= PLATFORM_NONE; p++) {
        for (int r = 0; r < RESULT_COUNT; r++) {
            char labels[96];
            snprintf(labels, sizeof labels, "platform=\"%s\",result=\"%s\"",
                     p == PLATFORM_NONE ? "none" : simd_platform_name(p), s_results[r]);
            self->requests[p][r] =
                sr_metrics_counter(metrics, "sr_simd_requests_total", labels,
                                   "simulator HTTP requests by platform, result");
        }
    }
    char err[256];
    self->http = sr_http_server_new(cfg->addr, (uint16_t)cfg->port, s_routes,
                                    sizeof s_routes / sizeof s_routes[0], self, err, sizeof err);
    if (!self->http) {
        sr_error("simd_listen_failed", "listen=%s:%lld err=\"%s\"", cfg->addr, (long long)cfg->port,
                 err);
        s_destroy(&self);
        return -1;
    }
    sr_service_set_state(svc, self);
    sr_info("simd_listening", "listen=%s:%lld rooms_per_platform=%d seed=%lld speed=%lld clock=%s",
            cfg->addr, (long long)cfg->port, self->rooms, (long long)cfg->seed,
            (long long)cfg->speed, self->fixed ? cfg->clock : "real");
    return 0;
}

void simd_fini(sr_service_t *svc)
{
    simd_t *self = sr_service_state(svc);
    s_destroy(&self);
    sr_service_set_state(svc, NULL);
}

/* simd_http - sr-simd's configuration, its HTTP server and its request counters. See simd.h.
 *
 * libmicrohttpd serves from its own thread. The state it reads (room ids, the /rooms body, the
 * clock settings) is built in simd_init() and never changes, and counters are atomics, so the
 * handler takes no lock. Routes are one static table; each platform route answers with the
 * platform's JSON for the room as of the simulated now, or the platform's error envelope.
 */
#include "simd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OFF(field)           offsetof(simd_config_t, field)
#define CONNECTION_LIMIT     512
#define CONNECTION_TIMEOUT_S 10
#define CLOCK_FIXED          "fixed:"
#define JSON_CONTENT_TYPE    "application/json"

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

static const struct {
    const char *path;
    int platform; /* simd_platform_t, or PLATFORM_NONE for /rooms */
} s_routes[] = {
    {"/rooms", PLATFORM_NONE},
    {"/channels/live/data", SIMD_CHANNELS},
    {"/douyin/compass/live_screen", SIMD_DOUYIN},
    {"/kuaishou/live/realtime_uv", SIMD_KUAISHOU},
};

#define ROUTE_COUNT (sizeof s_routes / sizeof s_routes[0])

typedef struct {
    const simd_config_t *cfg;
    uint64_t seed;
    int rooms;
    char (*ids)[SIMD_ROOM_ID_MAX]; /* rooms per platform, platform after platform */
    char *rooms_body;
    char *auth; /* "Bearer <token>", or NULL when no token is asked for */
    int fixed;
    int64_t fixed_s, start_us;
    struct MHD_Daemon *daemon;
    sr_counter_t *requests[PLATFORM_NONE + 1][RESULT_COUNT];
} simd_t;

typedef struct {
    unsigned status;
    char *body; /* malloc'd; MHD frees it */
    result_t result;
} reply_t;

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

/* s_sockaddr - addr:port as an IPv4 or IPv6 socket address; 0 ok */
static int s_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, unsigned *flags)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return -1;
}

int simd_check_config(const void *config, char *err, size_t errlen)
{
    const simd_config_t *cfg = config;
    int fixed;
    int64_t fixed_s;
    struct sockaddr_storage ss;
    unsigned flags = 0;
    if (s_parse_clock(cfg->clock, &fixed, &fixed_s) < 0) {
        snprintf(err, errlen, "SR_SIMD_CLOCK: '%s' is neither empty nor fixed:UNIX_SECONDS",
                 cfg->clock);
        return -1;
    }
    if (s_sockaddr(cfg->addr, 0, &ss, &flags) < 0) {
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
static int s_token_ok(const simd_t *self, struct MHD_Connection *conn)
{
    if (!self->auth)
        return 1;
    const char *got =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!got)
        return 0;
    size_t want_len = strlen(self->auth), got_len = strlen(got);
    unsigned char diff = want_len != got_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)self->auth[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

static reply_t s_plain_error(unsigned status, result_t result, const char *message)
{
    return (reply_t){status, sr_asprintf("{\"error\":\"%s\"}", message), result};
}

/* s_platform - the room's JSON, or the platform's envelope for a bad or unknown room */
static reply_t s_platform(simd_t *self, simd_platform_t platform, struct MHD_Connection *conn)
{
    if (!s_token_ok(self, conn))
        return (reply_t){MHD_HTTP_UNAUTHORIZED, simd_format_error(platform, SIMD_ERR_UNAUTHORIZED),
                         RESULT_UNAUTHORIZED};
    const char *room_id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "room_id");
    if (!room_id || !room_id[0] || strlen(room_id) >= SIMD_ROOM_ID_MAX)
        return (reply_t){MHD_HTTP_BAD_REQUEST, simd_format_error(platform, SIMD_ERR_BAD_QUERY),
                         RESULT_BAD_REQUEST};
    char(*ids)[SIMD_ROOM_ID_MAX] = self->ids + (size_t)platform * (size_t)self->rooms;
    for (int room = 0; room < self->rooms; room++) {
        if (strcmp(ids[room], room_id) == 0) {
            int64_t t = s_now(self);
            simd_sample_t sample;
            simd_model(self->seed, platform, room, t, &sample);
            return (reply_t){MHD_HTTP_OK, simd_format(platform, ids[room], t, &sample), RESULT_OK};
        }
    }
    /* the platforms answer an unknown room with 200 and an error code in the body */
    return (reply_t){MHD_HTTP_OK, simd_format_error(platform, SIMD_ERR_UNKNOWN_ROOM),
                     RESULT_UNKNOWN_ROOM};
}

static reply_t s_rooms(simd_t *self, struct MHD_Connection *conn)
{
    if (!s_token_ok(self, conn))
        return s_plain_error(MHD_HTTP_UNAUTHORIZED, RESULT_UNAUTHORIZED, "unauthorized");
    return (reply_t){MHD_HTTP_OK, sr_strdup(self->rooms_body), RESULT_OK};
}

static enum MHD_Result s_send(struct MHD_Connection *conn, reply_t *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    enum MHD_Result rc =
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CONTENT_TYPE);
    if (rc == MHD_YES)
        rc = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* s_request - MHD's access handler: a GET is answered once the whole request is in (a body is
 * dropped); anything else at once, before its body is read */
static enum MHD_Result s_request(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (is_get && !*con_cls) {
        *con_cls = cls;
        return MHD_YES;
    }
    if (is_get && *upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    simd_t *self = cls;
    size_t route = 0;
    while (route < ROUTE_COUNT && strcmp(url, s_routes[route].path) != 0)
        route++;
    int platform = route < ROUTE_COUNT ? s_routes[route].platform : PLATFORM_NONE;
    reply_t r;
    if (route == ROUTE_COUNT)
        r = s_plain_error(MHD_HTTP_NOT_FOUND, RESULT_NOT_FOUND, "no such path");
    else if (!is_get)
        r = s_plain_error(MHD_HTTP_METHOD_NOT_ALLOWED, RESULT_BAD_METHOD, "only GET is allowed");
    else if (platform == PLATFORM_NONE)
        r = s_rooms(self, conn);
    else
        r = s_platform(self, (simd_platform_t)platform, conn);
    sr_counter_inc(self->requests[platform][r.result]);
    return s_send(conn, &r);
}

/* s_mhd_log - MHD's own complaints, one line each */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    sr_warn("simd_http", "err=\"%s\"", text);
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
    if (self->daemon)
        MHD_stop_daemon(self->daemon);
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
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (s_sockaddr(cfg->addr, (uint16_t)cfg->port, &ss, &flags) < 0)
        sr_panic("simd_addr", "err=\"SR_SIMD_ADDR passed the check but does not parse\"");
    self->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, s_request, self, MHD_OPTION_EXTERNAL_LOGGER,
        s_mhd_log, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!self->daemon) {
        sr_error("simd_listen_failed", "listen=%s:%lld err=\"cannot start the HTTP server\"",
                 cfg->addr, (long long)cfg->port);
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

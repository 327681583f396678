/* test_poll - the poller against a tiny in-test HTTP server playing the three platforms.
 *
 * Good rooms get the fixtures; one room answers HTTP 500, one a platform error code, one
 * garbage, one answers slower than the timeout. After ~2 s on an sr_loop the good rooms must
 * have their samples regardless, every answer must be counted by result, the credential header
 * must have reached the server and must not be in the log.
 */
#include "ingestd_poll.h"
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"
#include "sr_test.h"

#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define CH_TOKEN "Bearer ch-s3cret-7f1e"
#define KS_TOKEN "ks-s3cret-c09a"
#define SLOW_MS  700
#define NROOMS   7

/* what the server does for one room */
typedef struct {
    const char *platform, *room;
    unsigned status;     /* HTTP status */
    const char *fixture; /* body file under tests/fixtures/platforms/ */
    int slow;            /* answer after SLOW_MS */
    int want_samples;    /* 1: the poller must deliver samples for it */
    int fail_first;      /* answer the first this many requests with HTTP 503 */
} room_plan_t;

static const room_plan_t s_plan[NROOMS] = {
    {"channels", "ch-good", 200, "platforms/channels_live_data.json", 0, 1},
    {"channels", "ch-500", 500, NULL, 0, 0},
    {"channels", "ch-denied", 200, "platforms/bad/channels_errcode.json", 0, 0},
    {"douyin", "7312345678901234567", 200, "platforms/douyin_live_screen.json", 0, 1},
    {"douyin", "dy-garbage", 200, "platforms/bad/not_json.html", 0, 0},
    {"kuaishou", "ks-good", 200, "platforms/kuaishou_realtime_uv.json", 0, 1},
    {"kuaishou", "ks-slow", 200, "platforms/kuaishou_realtime_uv.json", 1, 0},
};

/* a room that fails one whole round (1 + 2 retries), then recovers */
static const room_plan_t s_flaky_plan[] = {
    {"channels", "ch-flaky", 200, "platforms/channels_live_data.json", 0, 1, 3},
};

typedef struct {
    const room_plan_t *plan;
    int nplan;
    pthread_mutex_t lock;
    char *bodies[NROOMS];
    size_t lens[NROOMS];
    int requests[NROOMS];
    int auth_ok, auth_bad; /* requests with the right / a wrong or missing credential */
} server_t;

typedef struct {
    const room_plan_t *plan;
    int nplan;
    int samples[NROOMS];
    Sr__RoomSample last[NROOMS]; /* numbers only: strings are checked in the callback */
    int wrong_room;
} sink_t;

static int s_plan_index(const room_plan_t *plan, int nplan, const char *platform, const char *room)
{
    for (int i = 0; i < nplan; i++)
        if (strcmp(plan[i].platform, platform) == 0 && strcmp(plan[i].room, room) == 0)
            return i;
    return -1;
}

/* s_answer - the server: path names the platform, room_id the room */
static enum MHD_Result s_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **con_cls)
{
    (void)method, (void)version, (void)upload, (void)upload_len, (void)con_cls;
    server_t *srv = cls;
    const char *platform = strcmp(url, "/channels/live/data") == 0           ? "channels"
                           : strcmp(url, "/douyin/compass/live_screen") == 0 ? "douyin"
                           : strcmp(url, "/kuaishou/live/realtime_uv") == 0  ? "kuaishou"
                                                                             : "";
    const char *room = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "room_id");
    int i = room ? s_plan_index(srv->plan, srv->nplan, platform, room) : -1;
    const char *auth_name = strcmp(platform, "kuaishou") == 0 ? "access-token" : "Authorization";
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, auth_name);
    const char *want = strcmp(platform, "channels") == 0   ? CH_TOKEN
                       : strcmp(platform, "kuaishou") == 0 ? KS_TOKEN
                                                           : NULL;
    pthread_mutex_lock(&srv->lock);
    int nth = i >= 0 ? ++srv->requests[i] : 0;
    if ((want && auth && strcmp(auth, want) == 0) || (!want && !auth))
        srv->auth_ok++;
    else
        srv->auth_bad++;
    pthread_mutex_unlock(&srv->lock);
    const room_plan_t *plan = i >= 0 ? &srv->plan[i] : NULL;
    if (plan && plan->slow)
        usleep(SLOW_MS * 1000);
    unsigned status = !plan ? 404 : nth <= plan->fail_first ? 503 : plan->status;
    const char *body = status != 200 ? "oops" : srv->bodies[i] ? srv->bodies[i] : "";
    size_t len = status == 200 && srv->bodies[i] ? srv->lens[i] : strlen(body);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void s_on_sample(void *arg, const Sr__RoomSample *s)
{
    sink_t *sink = arg;
    const char *platform = s->platform == SR__PLATFORM__PLATFORM_CHANNELS ? "channels"
                           : s->platform == SR__PLATFORM__PLATFORM_DOUYIN ? "douyin"
                                                                          : "kuaishou";
    int i = s_plan_index(sink->plan, sink->nplan, platform, s->room_id);
    if (i < 0) {
        sink->wrong_room++;
        return;
    }
    sink->samples[i]++;
    sink->last[i] = *s;
    sink->last[i].room_id = NULL;
    sink->last[i].session_id = NULL;
}

/* s_count - times needle occurs in text */
static int s_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static long long s_metric(sr_metrics_t *m, const char *platform, const char *result)
{
    char series[160];
    snprintf(series, sizeof series, "sr_ingest_poll_total{platform=\"%s\",result=\"%s\"}", platform,
             result);
    return sr_test_metric(m, series);
}

/* one test's world: the server, the loop, the poller, the captured log */
typedef struct {
    server_t srv;
    struct MHD_Daemon *daemon;
    char *base;
    sr_loop_t *loop;
    sr_metrics_t *metrics;
    sink_t sink;
    ingestd_poll_t *poll;
    char log_path[32];
    int log_fd;
} harness_t;

static const ingestd_poll_opts_t s_opts = {.interval_ms = 150,
                                           .timeout_ms = 250,
                                           .retries = 2,
                                           .backoff_ms = 20,
                                           .max_backoff_ms = 600,
                                           .max_body = 64 * 1024};

/* s_start - serve plan, poll every room of it with the platforms' credentials */
static void s_start(harness_t *h, const room_plan_t *plan, int nplan)
{
    memset(h, 0, sizeof *h);
    strcpy(h->log_path, "/tmp/test_poll_log.XXXXXX");
    h->log_fd = mkstemp(h->log_path);
    assert_true(h->log_fd >= 0);
    sr_log_set_fd(h->log_fd);

    pthread_mutex_init(&h->srv.lock, NULL);
    h->srv.plan = h->sink.plan = plan;
    h->srv.nplan = h->sink.nplan = nplan;
    for (int i = 0; i < nplan; i++)
        if (plan[i].fixture)
            h->srv.bodies[i] = sr_test_fixture(plan[i].fixture, &h->srv.lens[i]);
    h->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                                 NULL, NULL, s_answer, &h->srv, MHD_OPTION_END);
    assert_non_null(h->daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    h->base = sr_asprintf("http://127.0.0.1:%u/", (unsigned)info->port);

    h->loop = sr_loop_new();
    h->metrics = sr_metrics_new();
    h->poll = ingestd_poll_new(h->loop, h->metrics, &s_opts, s_on_sample, &h->sink);
    assert_int_equal(
        ingestd_poll_platform(h->poll, "channels", h->base, "Authorization: " CH_TOKEN), 0);
    assert_int_equal(ingestd_poll_platform(h->poll, "douyin", h->base, NULL), 0);
    assert_int_equal(ingestd_poll_platform(h->poll, "kuaishou", h->base, "access-token: " KS_TOKEN),
                     0);
    for (int i = 0; i < nplan; i++)
        assert_int_equal(ingestd_poll_add_room(h->poll, plan[i].platform, plan[i].room), 0);
    assert_int_equal(ingestd_poll_rooms(h->poll), nplan);
}

/* s_run - run the loop for ms */
static void s_run(harness_t *h, int64_t ms)
{
    int64_t end = sr_clock_mono_ms() + ms;
    while (sr_clock_mono_ms() < end)
        assert_true(sr_loop_run_once(h->loop, 50) >= 0);
}

/* s_stop - stop the poller and the server; returns the log (caller frees); metrics stay */
static char *s_stop(harness_t *h)
{
    ingestd_poll_destroy(&h->poll);
    assert_null(h->poll);
    ingestd_poll_destroy(&h->poll);
    MHD_stop_daemon(h->daemon);
    sr_loop_destroy(&h->loop);
    for (int i = 0; i < h->srv.nplan; i++)
        free(h->srv.bodies[i]);
    pthread_mutex_destroy(&h->srv.lock);
    free(h->base);
    size_t len = 0;
    char *log = sr_test_read_file(h->log_path, &len);
    assert_non_null(log);
    sr_log_set_fd(2);
    close(h->log_fd);
    unlink(h->log_path);
    return log;
}

static void test_poll_rooms(void **state)
{
    (void)state;
    harness_t h;
    s_start(&h, s_plan, NROOMS);
    s_run(&h, 2000);
    sr_metrics_t *metrics = h.metrics;
    sink_t *sink = &h.sink;

    /* good rooms delivered, exact values, whatever the bad ones did */
    assert_int_equal(sink->wrong_room, 0);
    for (int i = 0; i < NROOMS; i++) {
        if (s_plan[i].want_samples && sink->samples[i] < 5)
            fail_msg("%s/%s: only %d samples", s_plan[i].platform, s_plan[i].room,
                     sink->samples[i]);
        if (!s_plan[i].want_samples && sink->samples[i] != 0)
            fail_msg("%s/%s: %d samples from a bad room", s_plan[i].platform, s_plan[i].room,
                     sink->samples[i]);
    }
    assert_int_equal(sink->last[0].gmv_fen, 123456789);
    assert_int_equal(sink->last[0].ts_us, 1765526460000000);
    assert_int_equal(sink->last[3].gmv_fen, 234567890);
    assert_int_equal(sink->last[3].refunds_fen, 4567812);
    assert_int_equal(sink->last[5].gmv_fen, 87654321);
    assert_int_equal(sink->last[5].ad_spend_fen, 880000);

    /* every delivered sample counted ok, every failure by its kind */
    assert_int_equal(s_metric(metrics, "channels", "ok"), sink->samples[0]);
    assert_int_equal(s_metric(metrics, "douyin", "ok"), sink->samples[3]);
    assert_int_equal(s_metric(metrics, "kuaishou", "ok"), sink->samples[5]);
    /* HTTP 500 is retried within a round: at least one round of 1 + 2 retries */
    assert_true(s_metric(metrics, "channels", "http_error") >= 3);
    assert_true(s_metric(metrics, "channels", "platform_error") >= 1);
    assert_true(s_metric(metrics, "douyin", "bad_body") >= 2);
    assert_true(s_metric(metrics, "kuaishou", "timeout") >= 1);
    assert_int_equal(s_metric(metrics, "channels", "bad_body"), 0);
    assert_int_equal(s_metric(metrics, "channels", "timeout"), 0);
    assert_int_equal(s_metric(metrics, "douyin", "http_error"), 0);
    assert_int_equal(s_metric(metrics, "douyin", "platform_error"), 0);
    assert_int_equal(s_metric(metrics, "kuaishou", "http_error"), 0);
    assert_int_equal(s_metric(metrics, "kuaishou", "bad_body"), 0);

    char *log = s_stop(&h);
    /* a platform error is not retried within a round: one request per counted answer, plus
     * at most the one abandoned at the end */
    assert_true(h.srv.requests[2] <= s_metric(metrics, "channels", "platform_error") + 1);
    assert_true(h.srv.requests[1] >= 3);
    assert_true(h.srv.auth_ok > 20);
    assert_int_equal(h.srv.auth_bad, 0);

    /* the log: failures complained about per platform streak, rate-limited, no credential */
    int dy_lines = s_count(log, "event=dependency_failing dependency=platform.douyin");
    assert_true(dy_lines >= 1);
    assert_true(dy_lines < s_metric(metrics, "douyin", "bad_body"));
    assert_non_null(strstr(log, "room=dy-garbage result=bad_body"));
    assert_non_null(strstr(log, "douyin: not JSON"));
    assert_non_null(strstr(log, "room=ks-slow result=timeout"));
    /* two channels rooms share one streak: whichever failed first was logged */
    assert_true(strstr(log, "room=ch-500 result=http_error attempt=0 err=\"HTTP status 500\"") ||
                strstr(log, "room=ch-denied result=platform_error attempt=0 "
                            "err=\"channels: errcode 40001"));
    assert_non_null(strstr(log, "credential=set"));
    assert_null(strstr(log, "s3cret"));
    /* the bad rooms never recovered; stopping is not a recovery */
    assert_null(strstr(log, "dependency_recovered"));
    free(log);
    sr_metrics_destroy(&h.metrics);
}

/* a room failing a whole round is complained about once, then recovers with one line */
static void test_poll_recovery(void **state)
{
    (void)state;
    harness_t h;
    s_start(&h, s_flaky_plan, 1);
    s_run(&h, 800);
    assert_true(h.sink.samples[0] >= 2);
    assert_int_equal(h.sink.last[0].gmv_fen, 123456789);
    assert_int_equal(s_metric(h.metrics, "channels", "http_error"), 3);
    assert_int_equal(s_metric(h.metrics, "channels", "ok"), h.sink.samples[0]);
    char *log = s_stop(&h);
    assert_int_equal(s_count(log, "event=dependency_failing dependency=platform.channels"), 1);
    assert_non_null(
        strstr(log, "room=ch-flaky result=http_error attempt=0 err=\"HTTP status 503\""));
    assert_int_equal(
        s_count(log, "event=dependency_recovered dependency=platform.channels failures=3"), 1);
    assert_null(strstr(log, "s3cret"));
    free(log);
    sr_metrics_destroy(&h.metrics);
}

/* configuration mistakes are refused, and a removed room is no longer polled */
static void test_poll_config(void **state)
{
    (void)state;
    char log_path[] = "/tmp/test_poll_log.XXXXXX";
    int log_fd = mkstemp(log_path);
    assert_true(log_fd >= 0);
    sr_log_set_fd(log_fd);
    sr_loop_t *loop = sr_loop_new();
    sr_metrics_t *metrics = sr_metrics_new();
    sink_t sink = {0};
    ingestd_poll_opts_t opts = {.interval_ms = 100, .timeout_ms = 100, .max_body = 1024};
    ingestd_poll_t *poll = ingestd_poll_new(loop, metrics, &opts, s_on_sample, &sink);

    assert_int_equal(ingestd_poll_platform(poll, "taobao", "http://x", NULL), -1);
    assert_int_equal(ingestd_poll_platform(poll, "douyin", "http://x", "no-colon-s3cret"), -1);
    assert_int_equal(ingestd_poll_platform(poll, "douyin", "http://x", "A: b\r\nX: s3cret"), -1);
    assert_int_equal(ingestd_poll_add_room(poll, "douyin", "r1"), -1); /* not configured */
    assert_int_equal(ingestd_poll_add_room(poll, "taobao", "r1"), -1);
    /* nothing listens on a free port: connection refused is an http_error, no sample */
    char *base = sr_asprintf("http://127.0.0.1:%u", (unsigned)sr_test_free_port());
    assert_int_equal(ingestd_poll_platform(poll, "douyin", base, "Authorization: s3cret"), 0);
    assert_int_equal(ingestd_poll_add_room(poll, "douyin", "r1"), 0);
    assert_int_equal(ingestd_poll_add_room(poll, "douyin", "r1"), -1);
    assert_int_equal(ingestd_poll_platform(poll, "douyin", base, NULL), -1); /* has rooms */
    assert_int_equal(ingestd_poll_add_room(poll, "douyin", "r2"), 0);
    assert_int_equal(ingestd_poll_remove_room(poll, "douyin", "r2"), 0);
    assert_int_equal(ingestd_poll_remove_room(poll, "douyin", "r2"), -1);
    assert_int_equal(ingestd_poll_rooms(poll), 1);
    int64_t end = sr_clock_mono_ms() + 300;
    while (sr_clock_mono_ms() < end)
        assert_true(sr_loop_run_once(loop, 20) >= 0);
    assert_true(s_metric(metrics, "douyin", "http_error") >= 1);
    assert_int_equal(s_metric(metrics, "douyin", "ok"), 0);

    ingestd_poll_destroy(&poll);
    size_t loglen = 0;
    char *log = sr_test_read_file(log_path, &loglen);
    assert_non_null(log);
    assert_null(strstr(log, "s3cret"));
    assert_non_null(strstr(log, "room=r1 result=http_error"));
    assert_null(strstr(log, "room=r2"));
    free(log);
    free(base);
    sr_log_set_fd(2);
    close(log_fd);
    unlink(log_path);
    sr_metrics_destroy(&metrics);
    sr_loop_destroy(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_rooms),
        cmocka_unit_test(test_poll_recovery),
        cmocka_unit_test(test_poll_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

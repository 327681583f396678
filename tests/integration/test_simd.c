/* test_simd - sr-simd as a real process, spoken to with libcurl as the pollers will: the room
 * list, each platform's JSON in the fixture's shape, error envelopes, the access token, the
 * pinned clock (SR_SIMD_CLOCK=fixed:UNIX_SECONDS) that makes answers comparable, the speed-up,
 * counters on /metrics, configuration errors. Needs SR_TEST_BIN and SR_TEST_ROOT. */
#include "sr_alloc.h"
#include "sr_test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#define T0 1765526460

typedef struct {
    pid_t pid;
    uint16_t port, admin;
    char log[256];
} simd_proc_t;

static const struct {
    const char *platform, *path, *fixture, *code_key;
    long ok_code, unknown_code;
} s_platforms[] = {
    {"channels", "/channels/live/data", "tests/fixtures/platforms/channels_live_data.json",
     "errcode", 0, 40001},
    {"douyin", "/douyin/compass/live_screen", "tests/fixtures/platforms/douyin_live_screen.json",
     "code", 0, 10001},
    {"kuaishou", "/kuaishou/live/realtime_uv", "tests/fixtures/platforms/kuaishou_realtime_uv.json",
     "result", 1, 0},
};

#define PLATFORMS (sizeof s_platforms / sizeof s_platforms[0])

/* s_start - sr-simd on fresh ports with extra settings (NULL-ended) */
static void s_start(simd_proc_t *s, const char *const extra[])
{
    s->port = sr_test_free_port();
    s->admin = sr_test_free_port();
    snprintf(s->log, sizeof s->log, "%s/simd-%u.log", sr_test_env("SR_TEST_TMP"), s->admin);
    char *env[16] = {sr_asprintf("SR_SIMD_PORT=%u", s->port),
                     sr_asprintf("SR_ADMIN_PORT=%u", s->admin)};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        env[n++] = sr_strdup(extra[i]);
    env[n] = NULL;
    s->pid = sr_test_start_daemon("sr-simd", env, s->log, s->admin, 10000);
    sr_test_free_env(env);
}

/* s_request - method on the simulator's path with an optional Authorization header; HTTP
 * status, body in *body (caller frees) */
static long s_request(const simd_proc_t *s, const char *method, const char *path, const char *auth,
                      char **body)
{
    char *url = sr_asprintf("http://127.0.0.1:%u%s", s->port, path);
    char *header = auth ? sr_asprintf("Authorization: %s", auth) : NULL;
    const char *headers[] = {header, NULL};
    sr_test_reply_t r;
    long status = sr_test_http(method, url, headers, NULL, &r);
    if (body) {
        *body = r.body;
        r.body = NULL;
    }
    sr_test_reply_free(&r);
    free(header);
    free(url);
    return status;
}

static long s_get(const simd_proc_t *s, const char *path, char **body)
{
    return s_request(s, "GET", path, NULL, body);
}

static json_t *s_parse(const char *text)
{
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    if (!root)
        fail_msg("not JSON (%s): %s", err.text, text);
    return root;
}

/* s_rooms - the room list as (platform, room id) pairs; caller frees the list */
static json_t *s_rooms(const simd_proc_t *s, const char *auth)
{
    char *body;
    assert_int_equal(s_request(s, "GET", "/rooms", auth, &body), 200);
    json_t *root = s_parse(body);
    free(body);
    json_t *rooms = json_incref(json_object_get(root, "rooms"));
    json_decref(root);
    assert_true(json_is_array(rooms));
    return rooms;
}

static const char *s_room_field(json_t *rooms, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(rooms, i), key));
}

static size_t s_platform_index(const char *name)
{
    for (size_t p = 0; p < PLATFORMS; p++)
        if (strcmp(s_platforms[p].platform, name) == 0)
            return p;
    fail_msg("unknown platform \"%s\"", name);
    return 0;
}

/* s_assert_shape - data holds exactly the fixture's fields with the fixture's JSON types */
static void s_assert_shape(size_t p, json_t *got)
{
    char *path = sr_test_root_path(s_platforms[p].fixture);
    json_error_t err;
    json_t *want = json_load_file(path, 0, &err);
    if (!want)
        fail_msg("%s: %s", path, err.text);
    free(path);
    json_t *wd = json_object_get(want, "data"), *gd = json_object_get(got, "data");
    assert_int_equal(json_object_size(want), json_object_size(got));
    assert_int_equal(json_object_size(wd), json_object_size(gd));
    const char *key;
    json_t *value;
    json_object_foreach(wd, key, value)
    {
        json_t *other = json_object_get(gd, key);
        if (!other || json_typeof(other) != json_typeof(value))
            fail_msg("%s: field \"%s\" missing or of another type", s_platforms[p].platform, key);
    }
    json_decref(want);
}

static void test_rooms_and_platform_json(void **state)
{
    (void)state;
    simd_proc_t s;
    const char *extra[] = {"SR_SIMD_ROOMS=4", "SR_SIMD_CLOCK=fixed:1765526460", NULL};
    s_start(&s, extra);
    json_t *rooms = s_rooms(&s, NULL);
    assert_int_equal(json_array_size(rooms), 3 * 4);
    size_t per_platform[PLATFORMS] = {0};
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        size_t p = s_platform_index(s_room_field(rooms, i, "platform"));
        per_platform[p]++;
        char *path =
            sr_asprintf("%s?room_id=%s", s_platforms[p].path, s_room_field(rooms, i, "room_id"));
        char *body;
        assert_int_equal(s_get(&s, path, &body), 200);
        json_t *root = s_parse(body);
        assert_int_equal(json_integer_value(json_object_get(root, s_platforms[p].code_key)),
                         s_platforms[p].ok_code);
        s_assert_shape(p, root);
        json_decref(root);
        free(body);
        free(path);
    }
    for (size_t p = 0; p < PLATFORMS; p++)
        assert_int_equal(per_platform[p], 4);
    json_decref(rooms);

    /* the pinned clock shows in each platform's own time field */
    char *body;
    rooms = s_rooms(&s, NULL);
    char *path =
        sr_asprintf("/douyin/compass/live_screen?room_id=%s", s_room_field(rooms, 4, "room_id"));
    assert_int_equal(s_get(&s, path, &body), 200);
    assert_non_null(strstr(body, "\"update_time\":\"2025-12-12 16:01:00\""));
    free(body);
    free(path);
    path = sr_asprintf("/kuaishou/live/realtime_uv?room_id=%s", s_room_field(rooms, 8, "room_id"));
    assert_int_equal(s_get(&s, path, &body), 200);
    assert_non_null(strstr(body, "\"timestamp\":1765526460000,"));
    free(body);
    free(path);
    json_decref(rooms);

    /* unknown rooms: 200 and the platform's error; no room_id: 400 and the platform's error */
    for (size_t p = 0; p < PLATFORMS; p++) {
        path = sr_asprintf("%s?room_id=no-such-room", s_platforms[p].path);
        assert_int_equal(s_get(&s, path, &body), 200);
        json_t *root = s_parse(body);
        assert_int_equal(json_integer_value(json_object_get(root, s_platforms[p].code_key)),
                         s_platforms[p].unknown_code);
        assert_null(json_object_get(root, "data"));
        json_decref(root);
        free(body);
        free(path);
        assert_int_equal(s_get(&s, s_platforms[p].path, &body), 400);
        root = s_parse(body);
        assert_non_null(json_object_get(root, s_platforms[p].code_key));
        json_decref(root);
        free(body);
        path = sr_asprintf("%s?room_id=", s_platforms[p].path);
        assert_int_equal(s_get(&s, path, NULL), 400);
        free(path);
    }
    assert_int_equal(s_get(&s, "/nowhere", &body), 404);
    assert_string_equal(body, "{\"error\":\"no such path\"}");
    free(body);
    assert_int_equal(s_request(&s, "POST", "/rooms", NULL, NULL), 405);

    assert_int_equal(sr_test_admin_metric(
                         s.admin, "sr_simd_requests_total{platform=\"channels\",result=\"ok\"}"),
                     4);
    assert_int_equal(
        sr_test_admin_metric(s.admin, "sr_simd_requests_total{platform=\"douyin\",result=\"ok\"}"),
        5);
    assert_int_equal(sr_test_admin_metric(
                         s.admin, "sr_simd_requests_total{platform=\"kuaishou\",result=\"ok\"}"),
                     5);
    assert_int_equal(
        sr_test_admin_metric(s.admin,
                             "sr_simd_requests_total{platform=\"douyin\",result=\"unknown_room\"}"),
        1);
    assert_int_equal(
        sr_test_admin_metric(
            s.admin, "sr_simd_requests_total{platform=\"kuaishou\",result=\"bad_request\"}"),
        2);
    assert_int_equal(
        sr_test_admin_metric(s.admin, "sr_simd_requests_total{platform=\"none\",result=\"ok\"}"),
        2);
    assert_int_equal(sr_test_admin_metric(
                         s.admin, "sr_simd_requests_total{platform=\"none\",result=\"not_found\"}"),
                     1);
    assert_int_equal(
        sr_test_admin_metric(s.admin,
                             "sr_simd_requests_total{platform=\"none\",result=\"bad_method\"}"),
        1);
    assert_int_equal(WEXITSTATUS(sr_test_stop(s.pid, SIGTERM, 5000)), 0);
}

/* two simulators with the same seed and pinned clock answer byte for byte alike; another seed
 * plays other rooms */
static void test_same_seed_same_answers(void **state)
{
    (void)state;
    simd_proc_t a, b, c;
    const char *same[] = {"SR_SIMD_SEED=7", "SR_SIMD_ROOMS=2", "SR_SIMD_CLOCK=fixed:1765526460",
                          NULL};
    const char *other[] = {"SR_SIMD_SEED=8", "SR_SIMD_ROOMS=2", "SR_SIMD_CLOCK=fixed:1765526460",
                           NULL};
    s_start(&a, same);
    s_start(&b, same);
    s_start(&c, other);
    char *la, *lb, *lc;
    assert_int_equal(s_get(&a, "/rooms", &la), 200);
    assert_int_equal(s_get(&b, "/rooms", &lb), 200);
    assert_int_equal(s_get(&c, "/rooms", &lc), 200);
    assert_string_equal(la, lb);
    assert_string_not_equal(la, lc);
    free(la);
    free(lb);
    free(lc);
    json_t *rooms = s_rooms(&a, NULL);
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        size_t p = s_platform_index(s_room_field(rooms, i, "platform"));
        char *path =
            sr_asprintf("%s?room_id=%s", s_platforms[p].path, s_room_field(rooms, i, "room_id"));
        char *ja, *ja2, *jb;
        assert_int_equal(s_get(&a, path, &ja), 200);
        assert_int_equal(s_get(&a, path, &ja2), 200);
        assert_int_equal(s_get(&b, path, &jb), 200);
        assert_string_equal(ja, jb);
        assert_string_equal(ja, ja2);
        free(ja);
        free(ja2);
        free(jb);
        free(path);
    }
    json_decref(rooms);
    sr_test_stop(a.pid, SIGTERM, 5000);
    sr_test_stop(b.pid, SIGTERM, 5000);
    sr_test_stop(c.pid, SIGTERM, 5000);
}

static void test_token(void **state)
{
    (void)state;
    simd_proc_t s;
    const char *extra[] = {"SR_SIMD_TOKEN=s3cret-token", "SR_SIMD_ROOMS=1", NULL};
    s_start(&s, extra);
    assert_int_equal(s_request(&s, "GET", "/rooms", NULL, NULL), 401);
    assert_int_equal(s_request(&s, "GET", "/rooms", "Bearer wrong", NULL), 401);
    json_t *rooms = s_rooms(&s, "Bearer s3cret-token");
    assert_int_equal(json_array_size(rooms), 3);
    for (size_t i = 0; i < json_array_size(rooms); i++) {
        size_t p = s_platform_index(s_room_field(rooms, i, "platform"));
        char *path =
            sr_asprintf("%s?room_id=%s", s_platforms[p].path, s_room_field(rooms, i, "room_id"));
        char *body;
        assert_int_equal(s_request(&s, "GET", path, NULL, &body), 401);
        json_t *root = s_parse(body);
        assert_non_null(json_object_get(root, s_platforms[p].code_key));
        json_decref(root);
        free(body);
        assert_int_equal(s_request(&s, "GET", path, "Bearer s3cret-tokenX", NULL), 401);
        assert_int_equal(s_request(&s, "GET", path, "s3cret-token", NULL), 401);
        assert_int_equal(s_request(&s, "GET", path, "Bearer s3cret-token", NULL), 200);
        free(path);
    }
    json_decref(rooms);
    assert_int_equal(
        sr_test_admin_metric(s.admin,
                             "sr_simd_requests_total{platform=\"douyin\",result=\"unauthorized\"}"),
        3);
    assert_int_equal(WEXITSTATUS(sr_test_stop(s.pid, SIGTERM, 5000)), 0);
    char *log = sr_test_read_file(s.log, NULL);
    assert_non_null(log);
    assert_null(strstr(log, "s3cret"));
    free(log);
}

/* SR_SIMD_SPEED: an hour of show per real second */
static void test_speed(void **state)
{
    (void)state;
    simd_proc_t s;
    const char *extra[] = {"SR_SIMD_SPEED=3600", "SR_SIMD_ROOMS=1", NULL};
    s_start(&s, extra);
    json_t *rooms = s_rooms(&s, NULL);
    const char *channels = NULL;
    for (size_t i = 0; i < json_array_size(rooms); i++)
        if (strcmp(s_room_field(rooms, i, "platform"), "channels") == 0)
            channels = s_room_field(rooms, i, "room_id");
    assert_non_null(channels);
    char *path = sr_asprintf("/channels/live/data?room_id=%s", channels);
    long long stamp[2];
    for (int i = 0; i < 2; i++) {
        char *body;
        assert_int_equal(s_get(&s, path, &body), 200);
        json_t *root = s_parse(body);
        stamp[i] = json_integer_value(json_object_get(json_object_get(root, "data"), "stat_time"));
        json_decref(root);
        free(body);
        if (i == 0)
            sr_test_sleep_ms(1100);
    }
    assert_true(stamp[1] - stamp[0] >= 3600);
    free(path);
    json_decref(rooms);
    sr_test_stop(s.pid, SIGTERM, 5000);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const struct {
        const char *env, *message;
    } bad[] = {
        {"SR_SIMD_CLOCK=yesterday", "SR_SIMD_CLOCK: 'yesterday' is neither empty nor fixed:"},
        {"SR_SIMD_CLOCK=fixed:12x", "SR_SIMD_CLOCK"},
        {"SR_SIMD_CLOCK=fixed:", "SR_SIMD_CLOCK"},
        {"SR_SIMD_ADDR=localhost", "SR_SIMD_ADDR: 'localhost' is not an IPv4 or IPv6 address"},
        {"SR_SIMD_ROOMS=0", "SR_SIMD_ROOMS"},
        {"SR_SIMD_SPEED=0", "SR_SIMD_SPEED"},
        {"SR_SIMD_PORT=70000", "SR_SIMD_PORT"},
        {"SR_SIMD_SEED=-1", "SR_SIMD_SEED"},
    };
    char *out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *env[] = {(char *)bad[i].env, sr_asprintf("SR_ADMIN_PORT=%u", sr_test_free_port()),
                       NULL};
        assert_int_equal(sr_test_run("sr-simd", NULL, env, &out), 2);
        if (!strstr(out, bad[i].message))
            fail_msg("%s: output lacks \"%s\": %s", bad[i].env, bad[i].message, out);
        free(out);
        free(env[1]);
    }
    /* the platform port taken: exit 1 with one clear line */
    simd_proc_t s;
    s_start(&s, NULL);
    char *env[] = {sr_asprintf("SR_SIMD_PORT=%u", s.port),
                   sr_asprintf("SR_ADMIN_PORT=%u", sr_test_free_port()), NULL};
    assert_int_equal(sr_test_run("sr-simd", NULL, env, &out), 1);
    assert_non_null(strstr(out, "event=simd_listen_failed"));
    free(out);
    free(env[0]);
    free(env[1]);
    sr_test_stop(s.pid, SIGTERM, 5000);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rooms_and_platform_json),
        cmocka_unit_test(test_same_seed_same_answers),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_config_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

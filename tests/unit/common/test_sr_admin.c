/* test_sr_admin - the admin endpoint over real loopback HTTP: /metrics text and content type,
 * /healthz with no, up and down checks, 404 and 405 JSON, the request counters, a taken port,
 * and an idempotent stop. */
#include "sr_admin.h"

#include "sr_log.h"
#include "sr_test.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* s_http - one request; post_body NULL sends no body */
static sr_test_reply_t s_http(const char *method, uint16_t port, const char *path,
                              const char *post_body)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    sr_test_reply_t r;
    sr_test_http(method, url, NULL, post_body, &r);
    assert_true(r.status != 0);
    return r;
}

static void s_expect(const char *method, uint16_t port, const char *path, long status,
                     const char *content_type, const char *body)
{
    sr_test_reply_t r = s_http(method, port, path, NULL);
    if (r.status != status || strcmp(r.content_type ? r.content_type : "", content_type) != 0 ||
        (body && strcmp(r.body, body) != 0))
        fail_msg("%s %s: got %ld %s '%s', want %ld %s '%s'", method, path, r.status, r.content_type,
                 r.body, status, content_type, body ? body : "(any)");
    sr_test_reply_free(&r);
}

static void test_metrics(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    sr_counter_add(sr_metrics_counter(m, "sr_test_things_total", NULL, "things"), 7);
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, m);
    assert_non_null(a);
    assert_true(sr_admin_port(a) != 0);

    sr_test_reply_t r = s_http("GET", sr_admin_port(a), "/metrics", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4");
    const char *want = "# HELP sr_test_things_total things\n"
                       "# TYPE sr_test_things_total counter\n"
                       "sr_test_things_total 7\n"
                       "# HELP sr_admin_requests_total admin HTTP requests by path\n"
                       "# TYPE sr_admin_requests_total counter\n"
                       "sr_admin_requests_total{path=\"/metrics\"} 1\n"
                       "sr_admin_requests_total{path=\"/healthz\"} 0\n"
                       "sr_admin_requests_total{path=\"other\"} 0\n";
    assert_string_equal(r.body, want);
    sr_test_reply_free(&r);

    s_expect("GET", sr_admin_port(a), "/healthz", 200, "application/json", NULL);
    s_expect("GET", sr_admin_port(a), "/nope", 404, "application/json", NULL);
    s_expect("GET", sr_admin_port(a), "/metrics?name=x", 200, "text/plain; version=0.0.4", NULL);
    r = s_http("GET", sr_admin_port(a), "/metrics", NULL);
    assert_non_null(strstr(r.body, "sr_admin_requests_total{path=\"/metrics\"} 3\n"
                                   "sr_admin_requests_total{path=\"/healthz\"} 1\n"
                                   "sr_admin_requests_total{path=\"other\"} 1\n"));
    sr_test_reply_free(&r);
    sr_admin_stop(&a);
    sr_metrics_destroy(&m);
}

static void test_healthz(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, m);
    assert_non_null(a);
    uint16_t port = sr_admin_port(a);
    static const struct {
        const char *name; /* NULL: just GET */
        int ok;
        const char *detail;
        long status;
        const char *body;
    } steps[] = {
        {NULL, 0, NULL, 200, "{\"status\":\"ok\",\"checks\":{}}"},
        {"db", 1, "", 200, "{\"status\":\"ok\",\"checks\":{\"db\":\"ok\"}}"},
        {"bus", 0, "connecting", 503,
         "{\"status\":\"down\",\"checks\":{\"db\":\"ok\",\"bus\":\"down: connecting\"}}"},
        {"bus", 1, "", 200, "{\"status\":\"ok\",\"checks\":{\"db\":\"ok\",\"bus\":\"ok\"}}"},
        {"db", 0, "connection refused\n", 503,
         "{\"status\":\"down\",\"checks\":{\"db\":\"down: connection refused\",\"bus\":\"ok\"}}"},
        {"bus", 0, NULL, 503,
         "{\"status\":\"down\",\"checks\":{\"db\":\"down: connection refused\",\"bus\":\"down\"}}"},
        {"db", 1, "ignored while up", 503,
         "{\"status\":\"down\",\"checks\":{\"db\":\"ok\",\"bus\":\"down\"}}"},
        {"quote", 0, "said \"no\"", 503,
         "{\"status\":\"down\",\"checks\":{\"db\":\"ok\",\"bus\":\"down\",\"quote\":\"down: "
         "said \\\"no\\\"\"}}"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i].name)
            sr_admin_set_check(a, steps[i].name, steps[i].ok, steps[i].detail);
        s_expect("GET", port, "/healthz", steps[i].status, "application/json", steps[i].body);
    }
    sr_admin_stop(&a);
    sr_metrics_destroy(&m);
}

/* a loop that stops beating turns the last checks stale: 503 naming the loop */
static void test_heartbeat(void **state)
{
    (void)state;
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, NULL);
    assert_non_null(a);
    uint16_t port = sr_admin_port(a);
    sr_admin_set_check(a, "db", 1, "");
    sr_admin_heartbeat(a, 200);
    s_expect("GET", port, "/healthz", 200, "application/json",
             "{\"status\":\"ok\",\"checks\":{\"db\":\"ok\"}}");
    sr_test_sleep_ms(400);
    char url[64], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
    assert_int_equal(sr_test_http_get(url, &body), 503);
    assert_non_null(strstr(body, "\"db\":\"ok\",\"loop\":\"down: no heartbeat for "));
    free(body);
    sr_admin_heartbeat(a, 200);
    s_expect("GET", port, "/healthz", 200, "application/json",
             "{\"status\":\"ok\",\"checks\":{\"db\":\"ok\"}}");
    sr_admin_stop(&a);
}

static void test_errors(void **state)
{
    (void)state;
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, NULL);
    assert_non_null(a);
    uint16_t port = sr_admin_port(a);
    const char *not_found = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}";
    const char *not_allowed =
        "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"only GET is allowed\"}}";
    static const struct {
        const char *method, *path, *body;
        long status;
        int allow;
    } cases[] = {
        {"GET", "/", NULL, 404, 0},           {"GET", "/metrics/", NULL, 404, 0},
        {"GET", "/healthzz", NULL, 404, 0},   {"POST", "/nope", "x=1", 404, 0},
        {"POST", "/metrics", NULL, 405, 1},   {"POST", "/healthz", "{\"a\":1}", 405, 1},
        {"DELETE", "/healthz", NULL, 405, 1}, {"PUT", "/metrics", "data", 405, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sr_test_reply_t r = s_http(cases[i].method, port, cases[i].path, cases[i].body);
        if (r.status != cases[i].status)
            fail_msg("%s %s: status %ld", cases[i].method, cases[i].path, r.status);
        assert_string_equal(r.content_type, "application/json");
        assert_string_equal(r.body, cases[i].status == 404 ? not_found : not_allowed);
        if (cases[i].allow)
            assert_string_equal(r.allow ? r.allow : "(none)", "GET");
        sr_test_reply_free(&r);
    }
    /* the admin's own registry, since none was given, still counts */
    sr_test_reply_t r = s_http("GET", port, "/metrics", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "# HELP sr_admin_requests_total admin HTTP requests by path\n"
                                "# TYPE sr_admin_requests_total counter\n"
                                "sr_admin_requests_total{path=\"/metrics\"} 3\n"
                                "sr_admin_requests_total{path=\"/healthz\"} 2\n"
                                "sr_admin_requests_total{path=\"other\"} 4\n");
    sr_test_reply_free(&r);
    sr_admin_stop(&a);
}

/* a GET is answered after the whole request is in, so scrapes can reuse one connection */
static void test_keep_alive(void **state)
{
    (void)state;
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, NULL);
    assert_non_null(a);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    sr_test_buf_t b = {calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sr_test_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    static const char *const paths[] = {"/metrics", "/healthz", "/nope", "/healthz"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%u%s", sr_admin_port(a), paths[i]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        long connects = -1;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        if (connects != (i == 0 ? 1 : 0))
            fail_msg("request %zu (%s) opened %ld connections", i, paths[i], connects);
    }
    curl_easy_cleanup(c);
    free(b.data);
    /* a body on a GET is dropped, not an error */
    sr_test_reply_t r = s_http("GET", sr_admin_port(a), "/healthz", "ignored=1");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\",\"checks\":{}}");
    sr_test_reply_free(&r);
    sr_admin_stop(&a);
}

/* s_start_logged - sr_admin_start with its log lines captured in *log (caller frees) */
static sr_admin_t *s_start_logged(const char *addr, uint16_t port, char **log)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    sr_log_set_fd(fileno(tmp));
    sr_admin_t *a = sr_admin_start(addr, port, NULL);
    sr_log_set_fd(2);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    *log = calloc(1, (size_t)n + 1);
    assert_non_null(*log);
    rewind(tmp);
    assert_int_equal(fread(*log, 1, (size_t)n, tmp), (size_t)n);
    assert_int_equal(fclose(tmp), 0);
    return a;
}

static void test_port_taken(void **state)
{
    (void)state;
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, NULL);
    assert_non_null(a);
    char *log = NULL;
    sr_admin_t *b = s_start_logged("127.0.0.1", sr_admin_port(a), &log);
    assert_null(b);
    char want[128];
    snprintf(want, sizeof want,
             "level=error service=sr event=admin_start_failed listen=127.0.0.1:%u",
             sr_admin_port(a));
    if (!strstr(log, want) || !strstr(log, "Address already in use"))
        fail_msg("log line: %s", log);
    free(log);
    /* the first one still answers */
    s_expect("GET", sr_admin_port(a), "/healthz", 200, "application/json", NULL);
    sr_admin_stop(&a);

    b = s_start_logged("not-an-address", 0, &log);
    assert_null(b);
    assert_non_null(strstr(log, "event=admin_start_failed listen=not-an-address:0 "
                                "err=\"not an IPv4 or IPv6 address\""));
    free(log);
}

static void test_stop_idempotent(void **state)
{
    (void)state;
    sr_admin_t *a = sr_admin_start("127.0.0.1", 0, NULL);
    assert_non_null(a);
    uint16_t port = sr_admin_port(a);
    sr_admin_stop(&a);
    assert_null(a);
    sr_admin_stop(&a);
    sr_admin_stop(NULL);
    assert_int_equal(sr_admin_port(a), 0);
    assert_int_equal(sr_test_http_get("http://127.0.0.1:0/", NULL), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
    assert_int_equal(sr_test_http_get(url, NULL), 0);
    /* the port is free again */
    a = sr_admin_start("127.0.0.1", port, NULL);
    assert_non_null(a);
    assert_int_equal(sr_admin_port(a), port);
    char *body = NULL;
    assert_int_equal(sr_test_http_get(url, &body), 200);
    assert_string_equal(body, "{\"status\":\"ok\",\"checks\":{}}");
    free(body);
    sr_admin_stop(&a);
}

int main(void)
{
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),         cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_heartbeat),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_keep_alive),      cmocka_unit_test(test_port_taken),
        cmocka_unit_test(test_stop_idempotent),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}

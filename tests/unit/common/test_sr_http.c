/* test_sr_http - the GET server over real loopback HTTP: routes by exact path, 404 and 405 (with
 * Allow) in the default envelope or from a fallback route, query arguments, header lookup, an
 * empty body, port 0, a taken port and a bad address, an idempotent destroy. */
#include "sr_http.h"

#include "sr_alloc.h"
#include "sr_test.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *s_or_none(const char *text)
{
    return text ? text : "(none)";
}

/* s_echo - what the handler saw, so the test can check the request accessors */
static sr_http_reply_t s_echo(void *arg, const sr_http_request_t *req)
{
    return (sr_http_reply_t){200, "text/plain",
                             sr_asprintf("%s %s %s x=%s y=%s h=%s", (const char *)arg,
                                         sr_http_request_method(req), sr_http_request_path(req),
                                         s_or_none(sr_http_request_query(req, "x")),
                                         s_or_none(sr_http_request_query(req, "y")),
                                         s_or_none(sr_http_request_header(req, "X-Test")))};
}

static sr_http_reply_t s_created(void *arg, const sr_http_request_t *req)
{
    (void)arg;
    (void)req;
    return (sr_http_reply_t){201, SR_HTTP_JSON, sr_strdup("{\"made\":true}")};
}

static sr_http_reply_t s_empty(void *arg, const sr_http_request_t *req)
{
    (void)arg;
    (void)req;
    return (sr_http_reply_t){204, NULL, NULL};
}

static sr_http_reply_t s_refused(void *arg, const sr_http_request_t *req)
{
    (void)arg;
    return (sr_http_reply_t){sr_http_request_refused(req), "text/plain",
                             sr_asprintf("refused %u %s %s", sr_http_request_refused(req),
                                         sr_http_request_method(req), sr_http_request_path(req))};
}

/* s_body - the POST body as the handler got it, with its length */
static sr_http_reply_t s_body(void *arg, const sr_http_request_t *req)
{
    (void)arg;
    size_t len;
    const char *body = sr_http_request_body(req, &len);
    return (sr_http_reply_t){200, "text/plain", sr_asprintf("%zu:%s", len, body)};
}

static const sr_http_route_t s_routes[] = {
    {"/echo", s_echo},
    {"/made", s_created},
    {"/empty", s_empty},
    {"/upload", s_body, "POST", 16},
};

static const sr_http_route_t s_routes_fallback[] = {
    {"/echo", s_echo},
    {NULL, s_refused},
};

static sr_http_server_t *s_new(const sr_http_route_t *routes, size_t n)
{
    char err[256] = "";
    sr_http_server_t *s = sr_http_server_new("127.0.0.1", 0, routes, n, "arg", err, sizeof err);
    if (!s)
        fail_msg("cannot start: %s", err);
    assert_true(sr_http_server_port(s) != 0);
    return s;
}

typedef struct {
    const char *method, *path, *header, *send;
    long status;
    const char *content_type, *body, *allow;
} case_t;

static void s_run_cases(sr_http_server_t *s, const case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char url[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%u%s", sr_http_server_port(s), cases[i].path);
        const char *headers[] = {cases[i].header, NULL};
        sr_test_reply_t r;
        sr_test_http(cases[i].method, url, headers, cases[i].send, &r);
        if (r.status != cases[i].status ||
            strcmp(s_or_none(r.content_type), s_or_none(cases[i].content_type)) != 0 ||
            strcmp(r.body, cases[i].body) != 0 ||
            strcmp(s_or_none(r.allow), s_or_none(cases[i].allow)) != 0)
            fail_msg("%s %s: got %ld %s '%s' allow %s, want %ld %s '%s' allow %s", cases[i].method,
                     cases[i].path, r.status, s_or_none(r.content_type), r.body, s_or_none(r.allow),
                     cases[i].status, s_or_none(cases[i].content_type), cases[i].body,
                     s_or_none(cases[i].allow));
        sr_test_reply_free(&r);
    }
}

static void test_routes(void **state)
{
    (void)state;
    sr_http_server_t *s = s_new(s_routes, sizeof s_routes / sizeof s_routes[0]);
    const char *not_found = "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}";
    const char *not_allowed =
        "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"only GET is allowed\"}}";
    static const char *json = SR_HTTP_JSON;
    const case_t cases[] = {
        {"GET", "/echo", NULL, NULL, 200, "text/plain", "arg GET /echo x=(none) y=(none) h=(none)",
         NULL},
        {"GET", "/echo?x=1&y=a%20b%26c", NULL, NULL, 200, "text/plain",
         "arg GET /echo x=1 y=a b&c h=(none)", NULL},
        {"GET", "/echo?x=", "x-test: Hello", NULL, 200, "text/plain",
         "arg GET /echo x= y=(none) h=Hello", NULL},
        {"GET", "/echo", "X-Other: no", "a body on a GET is dropped", 200, "text/plain",
         "arg GET /echo x=(none) y=(none) h=(none)", NULL},
        {"GET", "/made", NULL, NULL, 201, json, "{\"made\":true}", NULL},
        {"GET", "/empty", NULL, NULL, 204, NULL, "", NULL},
        {"GET", "/", NULL, NULL, 404, json, not_found, NULL},
        {"GET", "/echo/", NULL, NULL, 404, json, not_found, NULL},
        {"GET", "/ech", NULL, NULL, 404, json, not_found, NULL},
        {"POST", "/nope", NULL, "x=1", 404, json, not_found, NULL},
        {"POST", "/echo", NULL, "x=1", 405, json, not_allowed, "GET"},
        {"DELETE", "/made", NULL, NULL, 405, json, not_allowed, "GET"},
        {"PUT", "/empty", NULL, "data", 405, json, not_allowed, "GET"},
        {"POST", "/upload", NULL, "0123456789abcdef", 200, "text/plain", "16:0123456789abcdef",
         NULL},
        {"POST", "/upload", NULL, "", 200, "text/plain", "0:", NULL},
        {"POST", "/upload", NULL, "0123456789abcdefX", 413, json,
         "{\"error\":{\"code\":\"too_large\",\"message\":\"request body too large\"}}", NULL},
        {"POST", "/upload", "Transfer-Encoding: chunked", "0123456789abcdefX", 413, json,
         "{\"error\":{\"code\":\"too_large\",\"message\":\"request body too large\"}}", NULL},
        {"GET", "/upload", NULL, NULL, 405, json,
         "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"only POST is allowed\"}}",
         "POST"},
    };
    s_run_cases(s, cases, sizeof cases / sizeof cases[0]);
    sr_http_server_destroy(&s);
}

static void test_fallback(void **state)
{
    (void)state;
    sr_http_server_t *s =
        s_new(s_routes_fallback, sizeof s_routes_fallback / sizeof s_routes_fallback[0]);
    const case_t cases[] = {
        {"GET", "/echo?x=2", NULL, NULL, 200, "text/plain", "arg GET /echo x=2 y=(none) h=(none)",
         NULL},
        {"GET", "/nope?x=1", NULL, NULL, 404, "text/plain", "refused 404 GET /nope", NULL},
        {"POST", "/nope", NULL, "x=1", 404, "text/plain", "refused 404 POST /nope", NULL},
        {"POST", "/echo", NULL, "x=1", 405, "text/plain", "refused 405 POST /echo", "GET"},
        {"OPTIONS", "/echo", NULL, NULL, 405, "text/plain", "refused 405 OPTIONS /echo", "GET"},
    };
    s_run_cases(s, cases, sizeof cases / sizeof cases[0]);
    sr_http_server_destroy(&s);
}

static void test_ports(void **state)
{
    (void)state;
    sr_http_server_t *a = s_new(s_routes, 1);
    uint16_t port = sr_http_server_port(a);
    char err[256] = "";
    sr_http_server_t *b = sr_http_server_new("127.0.0.1", port, s_routes, 1, NULL, err, sizeof err);
    assert_null(b);
    if (!strstr(err, "Address already in use"))
        fail_msg("err: %s", err);
    /* the first one still answers */
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/echo", port);
    assert_int_equal(sr_test_http_get(url, NULL), 200);
    sr_http_server_destroy(&a);
    assert_null(a);
    sr_http_server_destroy(&a);
    sr_http_server_destroy(NULL);
    assert_int_equal(sr_http_server_port(a), 0);
    assert_int_equal(sr_test_http_get(url, NULL), 0);
    /* the port is free again, and a fixed port is kept */
    a = sr_http_server_new(NULL, port, s_routes, 1, "again", err, sizeof err);
    assert_non_null(a);
    assert_int_equal(sr_http_server_port(a), port);
    char *body = NULL;
    assert_int_equal(sr_test_http_get(url, &body), 200);
    assert_string_equal(body, "again GET /echo x=(none) y=(none) h=(none)");
    free(body);
    sr_http_server_destroy(&a);
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *addr;
        int ok;
    } cases[] = {
        {"127.0.0.1", 1}, {"0.0.0.0", 1},     {"::1", 1},          {"::", 1},
        {"localhost", 0}, {"127.0.0.256", 0}, {"1.2.3", 0},        {"", 0},
        {"::1%lo", 0},    {"[::1]", 0},       {"127.0.0.1:80", 0}, {NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sr_http_addr_ok(cases[i].addr) != cases[i].ok)
            fail_msg("%s: want %d", s_or_none(cases[i].addr), cases[i].ok);
        if (cases[i].ok || !cases[i].addr)
            continue;
        char err[64] = "";
        assert_null(sr_http_server_new(cases[i].addr, 0, s_routes, 1, NULL, err, sizeof err));
        assert_string_equal(err, "not an IPv4 or IPv6 address");
    }
}

static void test_error_reply(void **state)
{
    (void)state;
    sr_http_reply_t r = sr_http_error(418, "teapot", "short and \"stout\"");
    assert_int_equal(r.status, 418);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(
        r.body, "{\"error\":{\"code\":\"teapot\",\"message\":\"short and \\\"stout\\\"\"}}");
    free(r.body);
}

int main(void)
{
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),      cmocka_unit_test(test_fallback),
        cmocka_unit_test(test_ports),       cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_error_reply),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return failed;
}

/* test_sr_metrics - the registry: exact Prometheus text, series identity, atomic updates from
 * several threads, histogram bucket placement, and the panics that guard programming errors. */
#include "sr_metrics.h"

#include "sr_log.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void test_render_golden(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    sr_counter_t *paid = sr_metrics_counter(m, "sr_bus_messages_total", "topic=\"order.paid\"",
                                            "messages published");
    sr_counter_t *low = sr_metrics_counter(m, "sr_bus_messages_total", "topic=\"stock.low\"",
                                           "ignored: HELP comes from the first registration");
    sr_gauge_t *depth = sr_metrics_gauge(m, "sr_queue_depth", NULL, "a \\ b\nsecond line");
    sr_gauge_t *temp = sr_metrics_gauge(m, "sr_temperature", "room=\"7\"", NULL);
    const double bounds[] = {0.005, 0.5, 1};
    sr_histogram_t *h = sr_metrics_histogram(m, "sr_rpc_seconds", "method=\"stock.reserve\"",
                                             "RPC latency", bounds, 3);
    sr_histogram_t *bare = sr_metrics_histogram(m, "sr_bare_seconds", NULL, "no labels", bounds, 1);

    sr_counter_add(paid, 41);
    sr_counter_inc(paid);
    sr_counter_inc(low);
    sr_gauge_set(depth, 0.1);
    sr_gauge_add(depth, 0.2);
    sr_gauge_set(temp, -2.5);
    sr_histogram_observe(h, 0.001);
    sr_histogram_observe(h, 0.5);
    sr_histogram_observe(h, 3);
    sr_histogram_observe(bare, 0.1);

    const char *want = "# HELP sr_bus_messages_total messages published\n"
                       "# TYPE sr_bus_messages_total counter\n"
                       "sr_bus_messages_total{topic=\"order.paid\"} 42\n"
                       "sr_bus_messages_total{topic=\"stock.low\"} 1\n"
                       "# HELP sr_queue_depth a \\\\ b\\nsecond line\n"
                       "# TYPE sr_queue_depth gauge\n"
                       "sr_queue_depth 0.30000000000000004\n"
                       "# TYPE sr_temperature gauge\n"
                       "sr_temperature{room=\"7\"} -2.5\n"
                       "# HELP sr_rpc_seconds RPC latency\n"
                       "# TYPE sr_rpc_seconds histogram\n"
                       "sr_rpc_seconds_bucket{method=\"stock.reserve\",le=\"0.005\"} 1\n"
                       "sr_rpc_seconds_bucket{method=\"stock.reserve\",le=\"0.5\"} 2\n"
                       "sr_rpc_seconds_bucket{method=\"stock.reserve\",le=\"1\"} 2\n"
                       "sr_rpc_seconds_bucket{method=\"stock.reserve\",le=\"+Inf\"} 3\n"
                       "sr_rpc_seconds_sum{method=\"stock.reserve\"} 3.501\n"
                       "sr_rpc_seconds_count{method=\"stock.reserve\"} 3\n"
                       "# HELP sr_bare_seconds no labels\n"
                       "# TYPE sr_bare_seconds histogram\n"
                       "sr_bare_seconds_bucket{le=\"0.005\"} 0\n"
                       "sr_bare_seconds_bucket{le=\"+Inf\"} 1\n"
                       "sr_bare_seconds_sum 0.1\n"
                       "sr_bare_seconds_count 1\n";
    char *got = sr_metrics_render(m);
    assert_string_equal(got, want);
    free(got);
    sr_metrics_destroy(&m);
    assert_null(m);
    sr_metrics_destroy(&m);
}

static void test_render_empty(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    char *got = sr_metrics_render(m);
    assert_string_equal(got, "");
    free(got);
    sr_metrics_destroy(&m);
}

static void test_gauge_numbers(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {0.1, "0.1"},
        {1763779487.123456, "1763779487.123456"},
        {1e-300, "1e-300"},
        {1.0 / 3, "0.3333333333333333"},
        {-0.0005, "-0.0005"},
        {1e21, "1e+21"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sr_metrics_t *m = sr_metrics_new();
        sr_gauge_set(sr_metrics_gauge(m, "g", NULL, NULL), cases[i].v);
        char *got = sr_metrics_render(m);
        char want[128];
        snprintf(want, sizeof want, "# TYPE g gauge\ng %s\n", cases[i].text);
        assert_string_equal(got, want);
        free(got);
        sr_metrics_destroy(&m);
    }
}

static void test_same_series_same_pointer(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    sr_counter_t *a = sr_metrics_counter(m, "c_total", "x=\"1\"", "h");
    assert_ptr_equal(sr_metrics_counter(m, "c_total", "x=\"1\"", "h"), a);
    assert_ptr_not_equal(sr_metrics_counter(m, "c_total", "x=\"2\"", "h"), a);
    sr_counter_t *none = sr_metrics_counter(m, "c_total", NULL, "h");
    assert_ptr_equal(sr_metrics_counter(m, "c_total", "", "h"), none);
    sr_gauge_t *g = sr_metrics_gauge(m, "g", NULL, NULL);
    assert_ptr_equal(sr_metrics_gauge(m, "g", NULL, NULL), g);
    sr_histogram_t *h = sr_metrics_histogram(m, "h", NULL, NULL, sr_metrics_latency_bounds,
                                             sr_metrics_latency_nbounds);
    assert_ptr_equal(sr_metrics_histogram(m, "h", NULL, NULL, sr_metrics_latency_bounds,
                                          sr_metrics_latency_nbounds),
                     h);
    sr_counter_inc(a);
    sr_counter_inc(sr_metrics_counter(m, "c_total", "x=\"1\"", "h"));
    assert_int_equal(sr_counter_value(a), 2);
    sr_metrics_destroy(&m);
}

#define THREADS    4
#define PER_THREAD 100000

typedef struct {
    sr_metrics_t *m;
} worker_arg_t;

/* s_worker - registers lazily (as services do) and updates from its own thread */
static void *s_worker(void *arg)
{
    sr_metrics_t *m = ((worker_arg_t *)arg)->m;
    sr_counter_t *c = sr_metrics_counter(m, "hits_total", NULL, "hits");
    sr_gauge_t *g = sr_metrics_gauge(m, "level", NULL, "level");
    sr_histogram_t *h = sr_metrics_histogram(m, "lat_seconds", NULL, "latency",
                                             sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
    for (int i = 0; i < PER_THREAD; i++) {
        sr_counter_inc(c);
        sr_gauge_add(g, 1.0);
        sr_histogram_observe(h, 0.25);
        if (i % 10000 == 0)
            free(sr_metrics_render(m));
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    (void)state;
    sr_metrics_t *m = sr_metrics_new();
    pthread_t t[THREADS];
    worker_arg_t arg = {m};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_worker, &arg), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(sr_counter_value(sr_metrics_counter(m, "hits_total", NULL, NULL)),
                     THREADS * PER_THREAD);
    assert_true(sr_gauge_value(sr_metrics_gauge(m, "level", NULL, NULL)) ==
                (double)(THREADS * PER_THREAD));
    sr_histogram_t *h = sr_metrics_histogram(m, "lat_seconds", NULL, NULL,
                                             sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
    assert_int_equal(sr_histogram_count(h), THREADS * PER_THREAD);
    char *text = sr_metrics_render(m);
    assert_non_null(strstr(text, "hits_total 400000\n"));
    assert_non_null(strstr(text, "level 400000\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.1\"} 0\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.25\"} 400000\n"));
    assert_non_null(strstr(text, "lat_seconds_sum 100000\n"));
    assert_non_null(strstr(text, "lat_seconds_count 400000\n"));
    free(text);
    sr_metrics_destroy(&m);
}

static void test_histogram_boundaries(void **state)
{
    (void)state;
    const double bounds[] = {1, 2, 5};
    /* observation -> cumulative counts for le=1, 2, 5, +Inf */
    static const struct {
        double v;
        unsigned long long want[4];
    } cases[] = {
        {-1, {1, 1, 1, 1}},        {0, {1, 1, 1, 1}},        {1, {1, 1, 1, 1}},
        {1.0000001, {0, 1, 1, 1}}, {2, {0, 1, 1, 1}},        {5, {0, 0, 1, 1}},
        {5.5, {0, 0, 0, 1}},       {INFINITY, {0, 0, 0, 1}}, {NAN, {0, 0, 0, 1}},
    };
    const char *les[] = {"1", "2", "5", "+Inf"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sr_metrics_t *m = sr_metrics_new();
        sr_histogram_t *h = sr_metrics_histogram(m, "h", NULL, NULL, bounds, 3);
        sr_histogram_observe(h, cases[i].v);
        assert_int_equal(sr_histogram_count(h), 1);
        char *text = sr_metrics_render(m);
        for (size_t b = 0; b < 4; b++) {
            char line[64];
            snprintf(line, sizeof line, "h_bucket{le=\"%s\"} %llu\n", les[b], cases[i].want[b]);
            if (!strstr(text, line))
                fail_msg("observe %g: missing %s in\n%s", cases[i].v, line, text);
        }
        free(text);
        sr_metrics_destroy(&m);
    }
}

static void test_latency_bounds(void **state)
{
    (void)state;
    static const double want[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    assert_int_equal(sr_metrics_latency_nbounds, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sr_metrics_latency_nbounds; i++)
        assert_true(sr_metrics_latency_bounds[i] == want[i]);
}

/* s_dies - run fn in a child and report whether it aborted (sr_panic) */
static int s_dies(void (*fn)(const char *), const char *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        sr_log_set_fd(devnull);
        fn(arg);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void s_register_counter(const char *name)
{
    sr_metrics_t *m = sr_metrics_new();
    sr_metrics_counter(m, name, NULL, NULL);
    sr_metrics_destroy(&m);
}

static void s_register_clash(const char *name)
{
    sr_metrics_t *m = sr_metrics_new();
    sr_metrics_counter(m, name, NULL, NULL);
    sr_metrics_gauge(m, name, "other=\"labels\"", NULL);
    sr_metrics_destroy(&m);
}

static void s_register_bad_bounds(const char *name)
{
    const double bounds[] = {1, 1};
    sr_metrics_t *m = sr_metrics_new();
    sr_metrics_histogram(m, name, NULL, NULL, bounds, 2);
    sr_metrics_destroy(&m);
}

static void s_register_other_bounds(const char *name)
{
    const double bounds[] = {1, 2};
    sr_metrics_t *m = sr_metrics_new();
    sr_metrics_histogram(m, name, NULL, NULL, bounds, 2);
    sr_metrics_histogram(m, name, "x=\"1\"", NULL, bounds, 1);
    sr_metrics_destroy(&m);
}

static void test_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int ok;
    } cases[] = {
        {"http_requests_total", 1},
        {"_x", 1},
        {"a:b:c", 1},
        {"A9", 1},
        {"", 0},
        {"9lives", 0},
        {"a-b", 0},
        {"a b", 0},
        {"caf\xc3\xa9", 0},
        {"x{y}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (s_dies(s_register_counter, cases[i].name) == cases[i].ok)
            fail_msg("name \"%s\": expected %s", cases[i].name, cases[i].ok ? "ok" : "panic");
    }
}

static void test_programming_errors_panic(void **state)
{
    (void)state;
    assert_true(s_dies(s_register_clash, "x"));
    assert_true(s_dies(s_register_bad_bounds, "h"));
    assert_true(s_dies(s_register_other_bounds, "h"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_golden),
        cmocka_unit_test(test_render_empty),
        cmocka_unit_test(test_gauge_numbers),
        cmocka_unit_test(test_same_series_same_pointer),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_histogram_boundaries),
        cmocka_unit_test(test_latency_bounds),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_programming_errors_panic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

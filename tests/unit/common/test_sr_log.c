/* test_sr_log - line format, levels, one line per event, rate-limited complaints. */
#include "sr_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char s_path[] = "/tmp/test_sr_log.XXXXXX";
static int s_fd = -1;

static int s_setup(void **state)
{
    (void)state;
    strcpy(s_path, "/tmp/test_sr_log.XXXXXX");
    s_fd = mkstemp(s_path);
    sr_log_set_fd(s_fd);
    sr_log_init("testsvc", "testsvc-1");
    sr_log_set_level(SR_LOG_INFO);
    return s_fd < 0;
}

static int s_teardown(void **state)
{
    (void)state;
    sr_log_set_fd(2);
    close(s_fd);
    unlink(s_path);
    return 0;
}

/* s_output - everything logged so far */
static char *s_output(void)
{
    static char buf[16384];
    ssize_t n = pread(s_fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int s_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_line_format(void **state)
{
    (void)state;
    sr_info("room_sample", "room=%s online=%d", "r-9", 120);
    const char *out = s_output();
    assert_int_equal(strncmp(out, "ts=", 3), 0);
    assert_non_null(strstr(out, "Z level=info service=testsvc instance=testsvc-1 "
                                "event=room_sample room=r-9 online=120\n"));
    assert_int_equal(s_lines(out), 1);
}

static void test_levels_filter(void **state)
{
    (void)state;
    sr_debug("hidden", "x=1");
    sr_warn("shown", "x=2");
    sr_log_set_level(SR_LOG_ERROR);
    sr_warn("hidden_too", "x=3");
    sr_error("shown_too", "x=4");
    const char *out = s_output();
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "level=warn service=testsvc instance=testsvc-1 event=shown x=2"));
    assert_non_null(strstr(out, "level=error"));
    assert_int_equal(s_lines(out), 2);
}

static void test_newlines_stay_on_one_line(void **state)
{
    (void)state;
    sr_warn("bad_input", "text=\"%s\"", "line one\nline two\r\nthree");
    const char *out = s_output();
    assert_int_equal(s_lines(out), 1);
    assert_non_null(strstr(out, "text=\"line one line two  three\""));
}

static void test_long_line_is_cut_not_overflowed(void **state)
{
    (void)state;
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sr_info("big", "v=%s", big);
    const char *out = s_output();
    assert_int_equal(s_lines(out), 1);
    assert_true(strlen(out) <= 4096);
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        sr_log_level_t level;
    } cases[] = {{"debug", 0, SR_LOG_DEBUG}, {"info", 0, SR_LOG_INFO},   {"warn", 0, SR_LOG_WARN},
                 {"error", 0, SR_LOG_ERROR}, {"fatal", -1, SR_LOG_INFO}, {"INFO", -1, SR_LOG_INFO},
                 {"", -1, SR_LOG_INFO}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sr_log_level_t level = SR_LOG_INFO;
        assert_int_equal(sr_log_level_parse(cases[i].text, &level), cases[i].rc);
        assert_int_equal(level, cases[i].level);
    }
    sr_log_level_t level;
    assert_int_equal(sr_log_level_parse(NULL, &level), -1);
}

static void test_complaints_are_rate_limited(void **state)
{
    (void)state;
    sr_complaint_t c = SR_COMPLAINT_INIT("db");
    for (int i = 0; i < 1000; i++)
        sr_complain(&c, "err=\"connection refused\"");
    const char *out = s_output();
    /* one line for the first failure; the rest wait for the back-off */
    assert_int_equal(s_lines(out), 1);
    assert_non_null(strstr(out, "event=dependency_failing dependency=db failures=1 suppressed=0 "
                                "err=\"connection refused\""));
    assert_int_equal(c.failures, 1000);
    assert_int_equal(c.suppressed, 999);
    /* after the back-off the next complaint reports how many were suppressed */
    c.next_log_ms = 0;
    sr_complain(&c, "err=\"again\"");
    out = s_output();
    assert_non_null(strstr(out, "failures=1001 suppressed=999 err=\"again\""));
    assert_int_equal(c.backoff_ms, 4000);
    sr_recovered(&c);
    sr_recovered(&c);
    out = s_output();
    assert_int_equal(s_lines(out), 3);
    assert_non_null(strstr(out, "event=dependency_recovered dependency=db failures=1001"));
    assert_int_equal(c.failing, 0);
}

static void test_recovered_without_failure_is_silent(void **state)
{
    (void)state;
    sr_complaint_t c = SR_COMPLAINT_INIT("bus");
    sr_recovered(&c);
    assert_int_equal(s_lines(s_output()), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_format, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_levels_filter, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_newlines_stay_on_one_line, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_long_line_is_cut_not_overflowed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_level_parse, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_complaints_are_rate_limited, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_recovered_without_failure_is_silent, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

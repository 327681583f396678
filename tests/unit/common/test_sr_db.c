/* test_sr_db - sr_db without a server: bad URLs, retries against a dead port, no password in
 * the logs. The tests with a real PostgreSQL are in tests/integration/test_db.c. */
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_db.h"
#include "sr_log.h"
#include "sr_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* s_capture_start - send log lines to a fresh temporary file; returns its fd */
static int s_capture_start(void)
{
    char path[] = "/tmp/test_sr_db.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    sr_log_set_fd(fd);
    return fd;
}

/* s_capture_end - the lines logged since s_capture_start; caller frees */
static char *s_capture_end(int fd)
{
    sr_log_set_fd(2);
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len >= 0);
    char *text = sr_calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, text, (size_t)len, 0), len);
    close(fd);
    return text;
}

static int s_count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_bad_url_fails_at_once(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "postgresql://u@h:5432/db?nosuchoption=1",
        "host=h port=5432 dbname",
        "postgresql://[::1",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        int fd = s_capture_start();
        int64_t t0 = sr_clock_mono_ms();
        sr_db_t *db = sr_db_connect(urls[i], "test", 5, 1000);
        int64_t took = sr_clock_mono_ms() - t0;
        char *log = s_capture_end(fd);
        assert_null(db);
        assert_true(took < 1000);
        assert_int_equal(s_count(log, "event=db_url_invalid"), 1);
        assert_int_equal(s_count(log, "event=db_connect_failed"), 0);
        free(log);
    }
}

static void test_dead_port_retries_and_hides_password(void **state)
{
    (void)state;
    uint16_t port = sr_test_free_port();
    char *url = sr_asprintf("postgresql://alice:hunter2secret@127.0.0.1:%u/shop", port);
    int fd = s_capture_start();
    int64_t t0 = sr_clock_mono_ms();
    sr_db_t *db = sr_db_connect(url, "test", 3, 200);
    int64_t took = sr_clock_mono_ms() - t0;
    char *log = s_capture_end(fd);
    assert_null(db);
    /* back-off 100 ms then 200 ms between the three attempts */
    assert_true(took >= 300);
    assert_true(took < 5000);
    assert_int_equal(s_count(log, "event=db_connect_failed"), 3);
    assert_int_equal(s_count(log, "attempt=1 of=3"), 1);
    assert_int_equal(s_count(log, "attempt=3 of=3"), 1);
    char *where = sr_asprintf("host=127.0.0.1 port=%u db=shop user=alice", port);
    assert_int_equal(s_count(log, where), 3);
    assert_null(strstr(log, "hunter2secret"));
    free(where);
    free(log);
    free(url);
}

/* a text[] literal PostgreSQL reads back as the same items, quotes and backslashes included */
static void test_text_array(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(256);
    char *items[] = {"east", "a\"b", "c\\d", "华东"};
    assert_string_equal(sr_db_text_array(a, items, 4), "{\"east\",\"a\\\"b\",\"c\\\\d\",\"华东\"}");
    assert_string_equal(sr_db_text_array(a, NULL, 0), "{}");
    sr_arena_destroy(&a);
}

static void test_destroy_is_null_safe(void **state)
{
    (void)state;
    sr_db_t *db = NULL;
    sr_db_destroy(&db);
    sr_db_destroy(NULL);
    assert_null(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_url_fails_at_once),
        cmocka_unit_test(test_dead_port_retries_and_hides_password),
        cmocka_unit_test(test_destroy_is_null_safe),
        cmocka_unit_test(test_text_array),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

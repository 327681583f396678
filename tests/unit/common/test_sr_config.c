/* test_sr_config - parsing every type (good and bad values, bounds, overflow), the file source
 * and the environment overriding it, the --help and Markdown tables, and the start-up log line
 * that must never show a secret. */
#include "sr_config.h"

#include "sr_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char *name;
    char *token;
    int64_t port;
    int verbose;
    int64_t interval;
    int64_t max_msg;
    char *db_url;
} cfg_t;

#define OFF(f) offsetof(cfg_t, f)

static const sr_config_entry_t s_table[] = {
    {"SR_T_NAME", SR_CFG_STR, "sr-test", 0, 0, OFF(name), "instance name"},
    {"SR_T_TOKEN", SR_CFG_SECRET, "", 0, 0, OFF(token), "API token; never logged"},
    {"SR_T_PORT", SR_CFG_INT, "8080", 1, 65535, OFF(port), "port | the admin one"},
    {"SR_T_VERBOSE", SR_CFG_BOOL, "off", 0, 0, OFF(verbose), "chatty logs"},
    {"SR_T_INTERVAL", SR_CFG_DURATION, "5s", 10, 3600000, OFF(interval), "cron period"},
    {"SR_T_MAX_MSG", SR_CFG_SIZE, "4M", 0, 0, OFF(max_msg), "largest message"},
    {"SR_T_DB_URL", SR_CFG_SECRET, NULL, 0, 0, OFF(db_url), "database URL"},
    {NULL},
};

static const char *const s_vars[] = {"SR_T_NAME",    "SR_T_TOKEN",    "SR_T_PORT",
                                     "SR_T_VERBOSE", "SR_T_INTERVAL", "SR_T_MAX_MSG",
                                     "SR_T_DB_URL",  "SR_T_X",        "SR_CONFIG_FILE"};

static char s_file[64];

static int s_clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_vars / sizeof s_vars[0]; i++)
        unsetenv(s_vars[i]);
    if (s_file[0]) {
        unlink(s_file);
        s_file[0] = '\0';
    }
    return 0;
}

/* s_write_file - a config file in a fresh temp path, named by SR_CONFIG_FILE */
static void s_write_file(const char *text)
{
    snprintf(s_file, sizeof s_file, "/tmp/test_sr_config.XXXXXX");
    int fd = mkstemp(s_file);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
    assert_int_equal(setenv("SR_CONFIG_FILE", s_file, 1), 0);
}

typedef struct {
    int64_t n;
    int b;
    char *s;
} one_t;

/* s_load_one - load a one-entry table SR_T_X from text; returns sr_config_load's result */
static int s_load_one(sr_cfg_type_t type, const char *text, int64_t min, int64_t max, one_t *out,
                      char *err, size_t errlen)
{
    size_t off = type == SR_CFG_BOOL  ? offsetof(one_t, b)
                 : type == SR_CFG_STR ? offsetof(one_t, s)
                                      : offsetof(one_t, n);
    sr_config_entry_t table[] = {{"SR_T_X", type, "", min, max, off, "x"}, {NULL}};
    assert_int_equal(setenv("SR_T_X", text, 1), 0);
    memset(out, 0, sizeof *out);
    return sr_config_load(table, out, err, errlen);
}

static void test_good_values(void **state)
{
    (void)state;
    static const struct {
        sr_cfg_type_t type;
        const char *text;
        int64_t min, max;
        int64_t want;
    } cases[] = {
        {SR_CFG_INT, "0", 0, 0, 0},
        {SR_CFG_INT, "-42", 0, 0, -42},
        {SR_CFG_INT, "+7", 0, 0, 7},
        {SR_CFG_INT, "9223372036854775807", 0, 0, INT64_MAX},
        {SR_CFG_INT, "-9223372036854775808", 0, 0, INT64_MIN},
        {SR_CFG_INT, "1", 1, 65535, 1},
        {SR_CFG_INT, "65535", 1, 65535, 65535},
        {SR_CFG_DURATION, "250ms", 0, 0, 250},
        {SR_CFG_DURATION, "5s", 0, 0, 5000},
        {SR_CFG_DURATION, "2m", 0, 0, 120000},
        {SR_CFG_DURATION, "1h", 0, 0, 3600000},
        {SR_CFG_DURATION, "0", 0, 0, 0},
        {SR_CFG_DURATION, "1500", 0, 0, 1500},
        {SR_CFG_DURATION, "10m", 10, 600000, 600000},
        {SR_CFG_SIZE, "512", 0, 0, 512},
        {SR_CFG_SIZE, "64k", 0, 0, 65536},
        {SR_CFG_SIZE, "16M", 0, 0, 16777216},
        {SR_CFG_SIZE, "1G", 0, 0, 1073741824},
        {SR_CFG_SIZE, "8589934591G", 0, 0, INT64_MAX - 1073741823},
        {SR_CFG_BOOL, "true", 0, 0, 1},
        {SR_CFG_BOOL, "FALSE", 0, 0, 0},
        {SR_CFG_BOOL, "yes", 0, 0, 1},
        {SR_CFG_BOOL, "no", 0, 0, 0},
        {SR_CFG_BOOL, "On", 0, 0, 1},
        {SR_CFG_BOOL, "off", 0, 0, 0},
        {SR_CFG_BOOL, "1", 0, 0, 1},
        {SR_CFG_BOOL, "0", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        one_t v;
        char err[256] = "";
        if (s_load_one(cases[i].type, cases[i].text, cases[i].min, cases[i].max, &v, err,
                       sizeof err) != 0)
            fail_msg("case %zu \"%s\": %s", i, cases[i].text, err);
        int64_t got = cases[i].type == SR_CFG_BOOL ? v.b : v.n;
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %lld want %lld", i, cases[i].text, (long long)got,
                     (long long)cases[i].want);
    }
}

static void test_bad_values(void **state)
{
    (void)state;
    static const struct {
        sr_cfg_type_t type;
        const char *text;
        int64_t min, max;
        const char *err;
    } cases[] = {
        {SR_CFG_INT, "", 0, 0, "SR_T_X: \"\" is not an integer"},
        {SR_CFG_INT, "abc", 0, 0, "SR_T_X: \"abc\" is not an integer"},
        {SR_CFG_INT, "12abc", 0, 0, "SR_T_X: \"12abc\" is not an integer"},
        {SR_CFG_INT, " 12", 0, 0, "SR_T_X: \" 12\" is not an integer"},
        {SR_CFG_INT, "12 ", 0, 0, "SR_T_X: \"12 \" is not an integer"},
        {SR_CFG_INT, "1.5", 0, 0, "SR_T_X: \"1.5\" is not an integer"},
        {SR_CFG_INT, "9223372036854775808", 0, 0,
         "SR_T_X: \"9223372036854775808\" is out of range"},
        {SR_CFG_INT, "-9223372036854775809", 0, 0,
         "SR_T_X: \"-9223372036854775809\" is out of range"},
        {SR_CFG_INT, "70000", 0, 65535, "SR_T_X: \"70000\" is above the maximum 65535"},
        {SR_CFG_INT, "0", 1, 65535, "SR_T_X: \"0\" is below the minimum 1"},
        {SR_CFG_DURATION, "5 parsecs", 0, 0,
         "SR_T_X: \"5 parsecs\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "5 s", 0, 0, "SR_T_X: \"5 s\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "-5s", 0, 0, "SR_T_X: \"-5s\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "1.5s", 0, 0,
         "SR_T_X: \"1.5s\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "s", 0, 0, "SR_T_X: \"s\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "5S", 0, 0, "SR_T_X: \"5S\" is not a duration (use 250ms, 5s, 2m, 1h)"},
        {SR_CFG_DURATION, "9999999999999999h", 0, 0,
         "SR_T_X: \"9999999999999999h\" is out of range"},
        {SR_CFG_DURATION, "99999999999999999999", 0, 0,
         "SR_T_X: \"99999999999999999999\" is out of range"},
        {SR_CFG_DURATION, "2h", 10, 3600000, "SR_T_X: \"2h\" is above the maximum 1h"},
        {SR_CFG_DURATION, "5ms", 10, 3600000, "SR_T_X: \"5ms\" is below the minimum 10ms"},
        {SR_CFG_SIZE, "12X", 0, 0, "SR_T_X: \"12X\" is not a size (use 512, 64k, 16M, 1G)"},
        {SR_CFG_SIZE, "16MB", 0, 0, "SR_T_X: \"16MB\" is not a size (use 512, 64k, 16M, 1G)"},
        {SR_CFG_SIZE, "-1", 0, 0, "SR_T_X: \"-1\" is not a size (use 512, 64k, 16M, 1G)"},
        {SR_CFG_SIZE, "8589934592G", 0, 0, "SR_T_X: \"8589934592G\" is out of range"},
        {SR_CFG_SIZE, "1G", 1024, 268435456, "SR_T_X: \"1G\" is above the maximum 256M"},
        {SR_CFG_BOOL, "maybe", 0, 0,
         "SR_T_X: \"maybe\" is not a boolean (use true/false, yes/no, on/off, 1/0)"},
        {SR_CFG_BOOL, "", 0, 0,
         "SR_T_X: \"\" is not a boolean (use true/false, yes/no, on/off, 1/0)"},
        {SR_CFG_BOOL, "2", 0, 0,
         "SR_T_X: \"2\" is not a boolean (use true/false, yes/no, on/off, 1/0)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        one_t v;
        char err[256] = "";
        if (s_load_one(cases[i].type, cases[i].text, cases[i].min, cases[i].max, &v, err,
                       sizeof err) != -1)
            fail_msg("case %zu \"%s\": accepted", i, cases[i].text);
        if (strcmp(err, cases[i].err) != 0)
            fail_msg("case %zu: got '%s' want '%s'", i, err, cases[i].err);
    }
}

static void test_defaults_and_strings(void **state)
{
    (void)state;
    assert_int_equal(setenv("SR_T_DB_URL", "postgresql://u:hunter2@db/x", 1), 0);
    cfg_t c = {0};
    char err[256] = "";
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), 0);
    assert_string_equal(c.name, "sr-test");
    assert_string_equal(c.token, "");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.verbose, 0);
    assert_int_equal(c.interval, 5000);
    assert_int_equal(c.max_msg, 4 * 1024 * 1024);
    assert_string_equal(c.db_url, "postgresql://u:hunter2@db/x");
    sr_config_free(s_table, &c);
    assert_null(c.name);
    assert_null(c.token);
    assert_null(c.db_url);
    sr_config_free(s_table, &c);
}

static void test_required(void **state)
{
    (void)state;
    static const char *const values[] = {NULL, ""};
    for (size_t i = 0; i < 2; i++) {
        if (values[i])
            assert_int_equal(setenv("SR_T_DB_URL", values[i], 1), 0);
        cfg_t c = {0};
        char err[256] = "";
        assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), -1);
        assert_string_equal(err, "SR_T_DB_URL: required but not set");
        /* the strings loaded before the failure are already released */
        assert_null(c.name);
        assert_null(c.token);
        sr_config_free(s_table, &c);
    }
}

static void test_bad_value_releases_earlier_strings(void **state)
{
    (void)state;
    assert_int_equal(setenv("SR_T_PORT", "http", 1), 0);
    assert_int_equal(setenv("SR_T_DB_URL", "x", 1), 0);
    cfg_t c = {0};
    char err[256] = "";
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), -1);
    assert_string_equal(err, "SR_T_PORT: \"http\" is not an integer");
    assert_null(c.name);
    assert_null(c.token);
}

static void test_file_and_env_override(void **state)
{
    (void)state;
    s_write_file("# showrunner test config\n"
                 "\n"
                 "SR_T_NAME=\"from file\"\n"
                 "  SR_T_PORT = 9000  \r\n"
                 "SR_T_VERBOSE='yes'\n"
                 "SR_T_INTERVAL=250ms\n"
                 "   # indented comment\n"
                 "SR_T_DB_URL=postgresql://x/#not-a-comment\n"
                 "SR_T_MAX_MSG=1k\n"
                 "SR_T_MAX_MSG=64k\n"
                 "SR_T_TOKEN=\"\n");
    cfg_t c = {0};
    char err[256] = "";
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), 0);
    assert_string_equal(c.name, "from file");
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.verbose, 1);
    assert_int_equal(c.interval, 250);
    assert_int_equal(c.max_msg, 65536);
    assert_string_equal(c.db_url, "postgresql://x/#not-a-comment");
    assert_string_equal(c.token, "\"");
    sr_config_free(s_table, &c);

    assert_int_equal(setenv("SR_T_PORT", "9100", 1), 0);
    assert_int_equal(setenv("SR_T_NAME", "", 1), 0);
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), 0);
    assert_int_equal(c.port, 9100);
    assert_string_equal(c.name, "");
    assert_int_equal(c.interval, 250);
    sr_config_free(s_table, &c);
}

static void test_file_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want; /* %s is the file's path */
    } cases[] = {
        {"SR_T_DB_URL=x\n# fine\nSR_NOPE=1\n", "unknown variable SR_NOPE in %s line 3"},
        {"SR_T_DB_URL=x\nSR_T_PORT 9000\n", "%s line 2: not a NAME=value line"},
        {"=5\n", "%s line 1: not a NAME=value line"},
        {"SR T=5\n", "%s line 1: not a NAME=value line"},
        {"export SR_T_PORT=5\n", "%s line 1: not a NAME=value line"},
        {"SR_T_DB_URL=x\n\nSR_T_PORT=70000\n",
         "SR_T_PORT: \"70000\" is above the maximum 65535 (%s line 3)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_write_file(cases[i].text);
        char want[256], err[256] = "";
        snprintf(want, sizeof want, cases[i].want, s_file);
        cfg_t c = {0};
        assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), -1);
        assert_string_equal(err, want);
        assert_null(c.name);
        s_clean_env(NULL);
    }
    assert_int_equal(setenv("SR_CONFIG_FILE", "/nonexistent/sr.conf", 1), 0);
    cfg_t c = {0};
    char err[256] = "";
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), -1);
    assert_string_equal(
        err, "SR_CONFIG_FILE: cannot read /nonexistent/sr.conf: No such file or directory");
}

static void test_bad_default(void **state)
{
    (void)state;
    const sr_config_entry_t table[] = {
        {"SR_T_X", SR_CFG_DURATION, "5 secs", 0, 0, 0, "x"},
        {NULL},
    };
    int64_t v = 0;
    char err[256] = "";
    assert_int_equal(sr_config_load(table, &v, err, sizeof err), -1);
    assert_string_equal(
        err, "SR_T_X: \"5 secs\" is not a duration (use 250ms, 5s, 2m, 1h) (the default)");
}

/* s_capture - what fn(out, table) prints */
static char *s_capture(void (*fn)(FILE *, const sr_config_entry_t *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    fn(out, s_table);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void test_print_help(void **state)
{
    (void)state;
    char *text = s_capture(sr_config_print_help);
    const char *want = "  VARIABLE       TYPE      DEFAULT     BOUNDS    MEANING\n"
                       "  SR_T_NAME      string    sr-test     -         instance name\n"
                       "  SR_T_TOKEN     secret    (empty)     -         API token; never logged\n"
                       "  SR_T_PORT      int       8080        1..65535  port | the admin one\n"
                       "  SR_T_VERBOSE   bool      off         -         chatty logs\n"
                       "  SR_T_INTERVAL  duration  5s          10ms..1h  cron period\n"
                       "  SR_T_MAX_MSG   size      4M          -         largest message\n"
                       "  SR_T_DB_URL    secret    (required)  -         database URL\n";
    assert_string_equal(text, want);
    free(text);
}

static void test_secret_default_hidden(void **state)
{
    (void)state;
    const sr_config_entry_t table[] = {
        {"SR_T_X", SR_CFG_SECRET, "postgresql://u:hunter2@db/x", 0, 0, 0, "db"},
        {NULL},
    };
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    sr_config_print_help(out, table);
    sr_config_print_markdown(out, table);
    assert_int_equal(fclose(out), 0);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, "  SR_T_X    secret  (hidden)  -       db\n"));
    assert_non_null(strstr(text, "| `SR_T_X` | secret | (hidden) | db |\n"));
    free(text);
}

static void test_print_markdown(void **state)
{
    (void)state;
    char *text = s_capture(sr_config_print_markdown);
    const char *want = "| Variable | Type | Default | Meaning |\n"
                       "|---|---|---|---|\n"
                       "| `SR_T_NAME` | string | sr-test | instance name |\n"
                       "| `SR_T_TOKEN` | secret | (empty) | API token; never logged |\n"
                       "| `SR_T_PORT` | int (1..65535) | 8080 | port \\| the admin one |\n"
                       "| `SR_T_VERBOSE` | bool | off | chatty logs |\n"
                       "| `SR_T_INTERVAL` | duration (10ms..1h) | 5s | cron period |\n"
                       "| `SR_T_MAX_MSG` | size | 4M | largest message |\n"
                       "| `SR_T_DB_URL` | secret | (required) | database URL |\n";
    assert_string_equal(text, want);
    free(text);
}

/* s_logged - the log lines sr_config_log writes for c */
static char *s_logged(const cfg_t *c)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    sr_log_set_fd(fileno(tmp));
    sr_config_log(s_table, c);
    sr_log_set_fd(2);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    assert_true(n > 0);
    char *text = calloc(1, (size_t)n + 1);
    assert_non_null(text);
    rewind(tmp);
    assert_int_equal(fread(text, 1, (size_t)n, tmp), (size_t)n);
    assert_int_equal(fclose(tmp), 0);
    return text;
}

static void test_log_hides_secrets(void **state)
{
    (void)state;
    assert_int_equal(setenv("SR_T_NAME", "say \"hi\"", 1), 0);
    assert_int_equal(setenv("SR_T_DB_URL", "postgresql://u:hunter2@db/x", 1), 0);
    assert_int_equal(setenv("SR_T_VERBOSE", "yes", 1), 0);
    assert_int_equal(setenv("SR_T_INTERVAL", "90000", 1), 0);
    cfg_t c = {0};
    char err[256] = "";
    assert_int_equal(sr_config_load(s_table, &c, err, sizeof err), 0);
    char *text = s_logged(&c);
    assert_null(strstr(text, "hunter2"));
    assert_non_null(strstr(text, " level=info "));
    assert_non_null(strstr(text, " event=config SR_T_NAME=\"say \\\"hi\\\"\" SR_T_TOKEN=(unset) "
                                 "SR_T_PORT=8080 SR_T_VERBOSE=true SR_T_INTERVAL=90s "
                                 "SR_T_MAX_MSG=4M SR_T_DB_URL=(set)\n"));
    assert_non_null(strchr(text, '\n'));
    assert_int_equal(strchr(text, '\n')[1], '\0');
    free(text);
    sr_config_free(s_table, &c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_values, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_bad_values, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_defaults_and_strings, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_required, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_bad_value_releases_earlier_strings, s_clean_env,
                                        s_clean_env),
        cmocka_unit_test_setup_teardown(test_file_and_env_override, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_file_errors, s_clean_env, s_clean_env),
        cmocka_unit_test_setup_teardown(test_bad_default, s_clean_env, s_clean_env),
        cmocka_unit_test(test_print_help),
        cmocka_unit_test(test_secret_default_hidden),
        cmocka_unit_test(test_print_markdown),
        cmocka_unit_test_setup_teardown(test_log_hides_secrets, s_clean_env, s_clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

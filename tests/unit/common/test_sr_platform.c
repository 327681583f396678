/* test_sr_platform - platform names to the Platform enum and back, and unknown names refused. */
#include "metrics.pb-c.h"
#include "sr_platform.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_names(void **state)
{
    (void)state;
    char buf[32];
    const struct {
        const char *name;
        int value;
    } cases[] = {{"channels", SR__PLATFORM__PLATFORM_CHANNELS},
                 {"douyin", SR__PLATFORM__PLATFORM_DOUYIN},
                 {"kuaishou", SR__PLATFORM__PLATFORM_KUAISHOU},
                 {"taobao", SR__PLATFORM__PLATFORM_TAOBAO}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sr_platform_parse(cases[i].name), cases[i].value);
        assert_string_equal(sr_platform_name(cases[i].value, buf, sizeof buf), cases[i].name);
    }
    assert_int_equal(sr_platform_parse("Douyin"), 0);
    assert_int_equal(sr_platform_parse("unspecified"), 0);
    assert_int_equal(sr_platform_parse(""), 0);
    assert_int_equal(sr_platform_parse(NULL), 0);
    assert_string_equal(sr_platform_name(99, buf, sizeof buf), "unspecified");
    assert_string_equal(sr_platform_name(SR__PLATFORM__PLATFORM_KUAISHOU, buf, 4), "kua");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_names)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_taskd_cpm - the critical path behind the Gantt view: known graphs with their critical
 * tasks, slack and path, a task of no duration, dependencies outside the set, no tasks. */
#include "taskd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define H 3600000000LL /* an hour in microseconds */

static void test_diamond(void **state)
{
    (void)state;
    /* 1 (2h) -> 2 (3h) -> 4 (1h); 1 -> 3 (1h) -> 4: the path is 1, 2, 4; 3 has 2h slack */
    const int64_t d2[] = {1}, d3[] = {1}, d4[] = {2, 3};
    taskd_cpm_task_t t[] = {
        {1, 10 * H, 12 * H, NULL, 0, 0, 0},
        {2, 12 * H, 15 * H, d2, 1, 0, 0},
        {3, 12 * H, 13 * H, d3, 1, 0, 0},
        {4, 15 * H, 16 * H, d4, 2, 0, 0},
    };
    int64_t path[4];
    assert_int_equal(taskd_cpm(t, 4, path), 3);
    assert_int_equal(path[0], 1);
    assert_int_equal(path[1], 2);
    assert_int_equal(path[2], 4);
    assert_true(t[0].critical && t[1].critical && t[3].critical);
    assert_false(t[2].critical);
    assert_int_equal(t[2].slack_us, 2 * H);
}

static void test_independent_chains(void **state)
{
    (void)state;
    /* chain a: 1 (1h) -> 2 (1h); chain b: 3 (5h); the longest is b alone */
    const int64_t d2[] = {1};
    taskd_cpm_task_t t[] = {
        {1, 100 * H, 101 * H, NULL, 0, 0, 0},
        {2, 101 * H, 102 * H, d2, 1, 0, 0},
        {3, 100 * H, 105 * H, NULL, 0, 0, 0},
    };
    int64_t path[3];
    assert_int_equal(taskd_cpm(t, 3, path), 1);
    assert_int_equal(path[0], 3);
    assert_int_equal(t[0].slack_us, 3 * H);
    assert_int_equal(t[1].slack_us, 3 * H);
}

static void test_undated_and_outside(void **state)
{
    (void)state;
    /* 2 waits for 9, which is not in the set (another project's view): ignored; 1 has no dates
     * and takes no time (0 is "not set", not the epoch) */
    const int64_t d2[] = {9, 1};
    taskd_cpm_task_t t[] = {
        {1, 0, 0, NULL, 0, 0, 0},
        {2, 100 * H, 102 * H, d2, 2, 0, 0},
    };
    int64_t path[2];
    assert_int_equal(taskd_cpm(t, 2, path), 2);
    assert_int_equal(path[0], 1);
    assert_int_equal(path[1], 2);
    assert_int_equal(taskd_cpm(t, 0, path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diamond),
        cmocka_unit_test(test_independent_chains),
        cmocka_unit_test(test_undated_and_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_taskd_lifecycle - the three status machines, table-driven: every pair of states of each
 * kind against the moves the life cycles allow, and the messages that list them. */
#include "taskd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

typedef struct {
    taskd_kind_t kind;
    const char *from, *to;
} move_t;

static const move_t s_allowed[] = {
    {TASKD_PROJECT, "proposed", "planning"},
    {TASKD_PROJECT, "proposed", "cancelled"},
    {TASKD_PROJECT, "planning", "executing"},
    {TASKD_PROJECT, "planning", "cancelled"},
    {TASKD_PROJECT, "executing", "reviewing"},
    {TASKD_PROJECT, "executing", "planning"},
    {TASKD_PROJECT, "executing", "cancelled"},
    {TASKD_PROJECT, "reviewing", "closed"},
    {TASKD_PROJECT, "reviewing", "executing"},
    {TASKD_PROJECT, "reviewing", "cancelled"},
    {TASKD_SHOW, "scheduled", "live"},
    {TASKD_SHOW, "scheduled", "cancelled"},
    {TASKD_SHOW, "live", "ended"},
    {TASKD_SHOW, "ended", "reviewed"},
    {TASKD_TASK, "todo", "doing"},
    {TASKD_TASK, "todo", "blocked"},
    {TASKD_TASK, "todo", "done"},
    {TASKD_TASK, "todo", "cancelled"},
    {TASKD_TASK, "doing", "todo"},
    {TASKD_TASK, "doing", "blocked"},
    {TASKD_TASK, "doing", "done"},
    {TASKD_TASK, "doing", "cancelled"},
    {TASKD_TASK, "blocked", "todo"},
    {TASKD_TASK, "blocked", "doing"},
    {TASKD_TASK, "blocked", "done"},
    {TASKD_TASK, "blocked", "cancelled"},
    {TASKD_TASK, "done", "todo"},
    {TASKD_TASK, "done", "doing"},
    {TASKD_TASK, "cancelled", "todo"},
};

static const char *const s_states[][6] = {
    {"proposed", "planning", "executing", "reviewing", "closed", "cancelled"},
    {"scheduled", "live", "ended", "reviewed", "cancelled", NULL},
    {"todo", "doing", "blocked", "done", "cancelled", NULL},
};

static int s_listed(taskd_kind_t kind, const char *from, const char *to)
{
    if (strcmp(from, to) == 0)
        return 1; /* staying is no move */
    for (size_t i = 0; i < sizeof s_allowed / sizeof s_allowed[0]; i++)
        if (s_allowed[i].kind == kind && strcmp(s_allowed[i].from, from) == 0 &&
            strcmp(s_allowed[i].to, to) == 0)
            return 1;
    return 0;
}

static void test_every_pair(void **state)
{
    (void)state;
    for (int kind = TASKD_PROJECT; kind <= TASKD_TASK; kind++)
        for (int a = 0; a < 6 && s_states[kind][a]; a++) {
            assert_true(taskd_status_known(kind, s_states[kind][a]));
            for (int b = 0; b < 6 && s_states[kind][b]; b++) {
                int want = s_listed(kind, s_states[kind][a], s_states[kind][b]);
                if (taskd_transition_ok(kind, s_states[kind][a], s_states[kind][b]) != want)
                    fail_msg("kind %d: %s -> %s should be %s", kind, s_states[kind][a],
                             s_states[kind][b], want ? "allowed" : "refused");
            }
        }
}

static void test_unknown_states(void **state)
{
    (void)state;
    assert_false(taskd_status_known(TASKD_TASK, "paused"));
    assert_false(taskd_status_known(TASKD_SHOW, "todo"));
    assert_false(taskd_status_known(TASKD_PROJECT, NULL));
    assert_false(taskd_transition_ok(TASKD_TASK, "todo", "paused"));
    assert_false(taskd_transition_ok(TASKD_TASK, "paused", "todo"));
    assert_false(taskd_transition_ok(TASKD_SHOW, "live", "live "));
}

static void test_messages(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(1024);
    assert_string_equal(taskd_next_statuses(a, TASKD_PROJECT, "proposed"), "planning or cancelled");
    assert_string_equal(taskd_next_statuses(a, TASKD_PROJECT, "executing"),
                        "reviewing, planning or cancelled");
    assert_string_equal(taskd_next_statuses(a, TASKD_SHOW, "live"), "ended");
    assert_string_equal(taskd_next_statuses(a, TASKD_SHOW, "reviewed"), "nothing (it is final)");
    assert_string_equal(taskd_statuses(TASKD_TASK), "todo, doing, blocked, done, cancelled");
    sr_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair),
        cmocka_unit_test(test_unknown_states),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

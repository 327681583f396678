/* taskd_lifecycle - the three status machines, one table each: which state may follow which.
 *
 * Project (立项 -> 策划 -> 执行 -> 复盘): proposed -> planning -> executing -> reviewing ->
 * closed; any state before closed may be cancelled; a project in execution may go back to
 * planning (a show moved), and one under review back to executing (a make-up show).
 * Show: scheduled -> live -> ended -> reviewed; a scheduled show may be cancelled.
 * Task: todo, doing and blocked move freely among themselves and to done or cancelled; a done
 * task may be reopened (todo or doing), a cancelled one brought back to todo.
 */
#include "taskd.h"

#include "sr_rpc.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *from;
    const char *to[6];
} move_t;

static const move_t s_project[] = {
    {"proposed", {"planning", "cancelled"}},
    {"planning", {"executing", "cancelled"}},
    {"executing", {"reviewing", "planning", "cancelled"}},
    {"reviewing", {"closed", "executing", "cancelled"}},
    {"closed", {NULL}},
    {"cancelled", {NULL}},
    {NULL, {NULL}},
};

static const move_t s_show[] = {
    {"scheduled", {"live", "cancelled"}},
    {"live", {"ended"}},
    {"ended", {"reviewed"}},
    {"reviewed", {NULL}},
    {"cancelled", {NULL}},
    {NULL, {NULL}},
};

static const move_t s_task[] = {
    {"todo", {"doing", "blocked", "done", "cancelled"}},
    {"doing", {"todo", "blocked", "done", "cancelled"}},
    {"blocked", {"todo", "doing", "done", "cancelled"}},
    {"done", {"todo", "doing"}},
    {"cancelled", {"todo"}},
    {NULL, {NULL}},
};

static const move_t *const s_machines[] = {s_project, s_show, s_task};
static const char *const s_lists[] = {
    "proposed, planning, executing, reviewing, closed, cancelled",
    "scheduled, live, ended, reviewed, cancelled",
    "todo, doing, blocked, done, cancelled",
};

static const move_t *s_state(taskd_kind_t kind, const char *status)
{
    for (const move_t *m = s_machines[kind]; status && m->from; m++)
        if (strcmp(m->from, status) == 0)
            return m;
    return NULL;
}

int taskd_status_known(taskd_kind_t kind, const char *status)
{
    return s_state(kind, status) != NULL;
}

int taskd_transition_ok(taskd_kind_t kind, const char *from, const char *to)
{
    const move_t *m = s_state(kind, from);
    if (!m || !s_state(kind, to))
        return 0;
    if (strcmp(from, to) == 0)
        return 1;
    for (int i = 0; m->to[i]; i++)
        if (strcmp(m->to[i], to) == 0)
            return 1;
    return 0;
}

const char *taskd_statuses(taskd_kind_t kind)
{
    return s_lists[kind];
}

const char *taskd_next_statuses(sr_arena_t *arena, taskd_kind_t kind, const char *from)
{
    const move_t *m = s_state(kind, from);
    if (!m || !m->to[0])
        return "nothing (it is final)";
    char buf[128];
    size_t used = 0;
    for (int i = 0; m->to[i]; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s",
                                 i == 0 ? "" : (m->to[i + 1] ? ", " : " or "), m->to[i]);
    return sr_arena_strdup(arena, buf);
}

Sr__Status taskd_status_move(sr_rpc_call_t *call, taskd_kind_t kind, int64_t id, const char *from,
                             const char *to)
{
    static const char *const names[] = {"project", "show", "task"};
    if (!taskd_status_known(kind, to))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "status",
                           "status must be one of %s", taskd_statuses(kind));
    if (!taskd_transition_ok(kind, from, to))
        return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "invalid_transition", "status",
                           "%s %lld is %s; it can go to %s, not %s", names[kind], (long long)id,
                           from, taskd_next_statuses(call->arena, kind, from), to);
    return SR__STATUS__STATUS_OK;
}

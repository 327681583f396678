/* taskd_reminders - task.due_soon and task.overdue, once per task per due date and state.
 *
 * Each cron marks at most SR_TASK_REMINDER_BATCH open tasks (todo, doing, blocked) that came
 * within SR_TASK_DUE_SOON of their due time, or past it, and writes their events to the outbox
 * in the same transaction: the flag and the event commit together, so a crash sends neither or
 * both, and a second instance skips the rows the first holds (SKIP LOCKED). A change of the due
 * date or the status clears the flags (taskd_tasks.c), so the new state is reminded again. An
 * overdue task is not also reported due soon; tasks of closed and cancelled projects are left
 * alone.
 */
#include "taskd.h"

#include "sr_arena.h"
#include "sr_log.h"

#include <string.h>

typedef struct {
    taskd_t *self;
    const char *topic;
    sr_arena_t *arena;
    int sent;
} remind_t;

static int s_remind_tx(sr_db_t *db, void *arg)
{
    remind_t *r = arg;
    int overdue = strcmp(r->topic, "task.overdue") == 0;
    const char *params[] = {taskd_num(r->arena, r->self->cfg->due_soon_ms * 1000),
                            taskd_num(r->arena, r->self->cfg->reminder_batch)};
    PGresult *res = sr_db_query(
        db,
        overdue ? "UPDATE tasks.tasks t SET overdue_sent = true, due_soon_sent = true WHERE t.id "
                  "IN (SELECT id FROM tasks.tasks WHERE status IN ('todo', 'doing', 'blocked') "
                  "AND project_id IN (SELECT id FROM tasks.projects WHERE status NOT IN ('closed', "
                  "'cancelled')) AND NOT overdue_sent AND due_at <= now() AND $1::bigint >= 0 "
                  "ORDER BY due_at "
                  "LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING t.id"
                : "UPDATE tasks.tasks t SET due_soon_sent = true WHERE t.id IN (SELECT id FROM "
                  "tasks.tasks WHERE status IN ('todo', 'doing', 'blocked') AND project_id IN "
                  "(SELECT id "
                  "FROM tasks.projects WHERE status NOT IN ('closed', 'cancelled')) AND NOT "
                  "due_soon_sent "
                  "AND due_at > now() AND due_at <= now() + $1::bigint * interval '1 "
                  "microsecond' ORDER BY due_at LIMIT $2::int FOR UPDATE SKIP LOCKED) RETURNING "
                  "t.id",
        2, params);
    if (!res)
        return -1;
    size_t n, found;
    int64_t *ids = taskd_result_ids(r->arena, res, &n);
    PQclear(res);
    Sr__Task **due = n ? taskd_tasks_fetch(db, r->arena, ids, n, &found) : NULL;
    if (n && (!due || found != n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        Sr__TaskReminder rem = SR__TASK_REMINDER__INIT;
        rem.task = due[i];
        rem.lead_us = overdue ? 0 : r->self->cfg->due_soon_ms * 1000;
        if (taskd_event_put(r->self, r->topic, &rem.base, NULL) < 0)
            return -1;
    }
    r->sent = (int)n;
    return 0;
}

void taskd_reminders_run(taskd_t *self)
{
    static const char *const topics[] = {"task.overdue", "task.due_soon"};
    for (size_t i = 0; i < 2; i++) {
        remind_t r = {self, topics[i], sr_arena_new(16384), 0};
        int rc = sr_db_tx(sr_service_db(self->svc), s_remind_tx, &r);
        sr_arena_destroy(&r.arena);
        if (rc != 0) {
            sr_error("task_reminders_failed", "topic=%s err=\"%s\"", topics[i],
                     sr_db_error(sr_service_db(self->svc)));
            continue;
        }
        if (r.sent) {
            sr_counter_add(i == 0 ? self->overdue : self->due_soon, (uint64_t)r.sent);
            sr_info("task_reminders", "topic=%s tasks=%d", topics[i], r.sent);
            sr_outbox_pub_flush(sr_service_outbox(self->svc));
        }
    }
}

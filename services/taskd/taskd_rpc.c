/* taskd_rpc - the tasks.* method table, and what every method shares: loading the project a
 * record belongs to as the caller may see it, the error answers, and events with audit.
 *
 * Region rule: a record belongs to its project's region. A caller who does not see that region
 * is answered "not found", as if the record did not exist, so ids of other regions do not leak.
 */
#include "taskd.h"

#include "sr_alloc.h"
#include "sr_cursor.h"
#include "sr_log.h"
#include "sr_outbox.h"
#include "sr_pbrow.h"
#include "sr_perm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define M(name, fn, req, rep, perm)                                                                \
    {                                                                                              \
        name, fn, &sr__##req##__descriptor, &sr__##rep##__descriptor, perm                         \
    }
/* a read: answered by a read worker when there are some */
#define R(name, fn, req, rep, perm)                                                                \
    {                                                                                              \
        name, fn, &sr__##req##__descriptor, &sr__##rep##__descriptor, perm, SR_RPC_READ            \
    }

const sr_rpc_method_t taskd_methods[] = {
    M("tasks.project.create", taskd_project_create, project_create, project, "projects.plan"),
    R("tasks.project.get", taskd_project_get, task_id, project, "projects.read"),
    R("tasks.project.list", taskd_project_list, project_list, project_page, "projects.read"),
    M("tasks.project.update", taskd_project_update, project_update, project, "projects.plan"),
    R("tasks.project.kanban", taskd_kanban, task_id, kanban, "projects.read"),
    R("tasks.project.gantt", taskd_gantt, task_id, gantt, "projects.read"),
    M("tasks.show.create", taskd_show_create, show_create, show, "projects.plan"),
    R("tasks.show.get", taskd_show_get, task_id, show, "projects.read"),
    R("tasks.show.list", taskd_show_list, show_list, show_page, "projects.read"),
    M("tasks.show.update", taskd_show_update, show_update, show, "projects.plan"),
    M("tasks.show.apply", taskd_template_apply, template_apply, task_page, "projects.plan"),
    M("tasks.task.create", taskd_task_create, task_create, task, "projects.plan"),
    R("tasks.task.get", taskd_task_get, task_id, task, "projects.read"),
    R("tasks.task.list", taskd_task_list, task_list, task_page, "projects.read"),
    R("tasks.task.mine", taskd_task_mine, task_list, task_page, "projects.read"),
    M("tasks.task.update", taskd_task_update, task_update, task, "tasks.work"),
    M("tasks.task.depend", taskd_dependency_add, dependency_change, task, "projects.plan"),
    M("tasks.task.undepend", taskd_dependency_remove, dependency_change, task, "projects.plan"),
    M("tasks.checklist.add", taskd_checklist_add, checklist_add, task, "tasks.work"),
    M("tasks.checklist.update", taskd_checklist_update, checklist_update, task, "tasks.work"),
    M("tasks.comment.add", taskd_comment_add, comment_add, comment, "tasks.work"),
    R("tasks.comment.list", taskd_comment_list, comment_list, comment_page, "projects.read"),
    M("tasks.template.create", taskd_template_create, template_create, template, "projects.plan"),
    R("tasks.template.get", taskd_template_get, task_id, template, "projects.read"),
    R("tasks.template.list", taskd_template_list, template_list, template_page, "projects.read"),
    M("tasks.template.copy", taskd_template_copy, template_copy, template, "projects.plan"),
    M("tasks.template.delete", taskd_template_delete, task_id, template, "projects.plan"),
    M("tasks.recurring.create", taskd_recurring_create, recurring_rule, recurring_rule,
      "projects.plan"),
    R("tasks.recurring.list", taskd_recurring_list, recurring_list, recurring_page,
      "projects.read"),
    M("tasks.recurring.delete", taskd_recurring_delete, task_id, recurring_rule, "projects.plan"),
};

const size_t taskd_method_count = sizeof taskd_methods / sizeof taskd_methods[0];

taskd_t *taskd_of(sr_rpc_call_t *call)
{
    return ((taskd_ctx_t *)call->state)->self;
}

sr_db_t *taskd_db(sr_rpc_call_t *call)
{
    return ((taskd_ctx_t *)call->state)->db;
}

const char *taskd_num(sr_arena_t *arena, int64_t v)
{
    return sr_arena_printf(arena, "%lld", (long long)v);
}

int64_t taskd_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

char *taskd_str(sr_arena_t *arena, const PGresult *res, int row, int col)
{
    return sr_arena_strdup(arena, PQgetvalue(res, row, col));
}

int taskd_bool(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

Sr__Status taskd_db_fail(sr_rpc_call_t *call)
{
    const char *state = sr_db_sqlstate(taskd_db(call));
    const char *err = sr_db_error(taskd_db(call));
    /* class 22 (bad data) and 23 (a violated constraint) are input no check in C caught */
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
        sr_warn("task_input_refused", "method=%s sqlstate=%s err=\"%s\"", call->method, state, err);
        const char *nl = strchr(err, '\n');
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", NULL,
                           "the database refused the change: %.*s",
                           (int)(nl ? nl - err : (long)strlen(err)), err);
    }
    sr_error("task_db_failed", "method=%s sqlstate=%s err=\"%s\"", call->method, state, err);
    return sr_rpc_fail(call, SR__STATUS__STATUS_UNAVAILABLE, "unavailable", NULL,
                       "the database did not answer");
}

Sr__Status taskd_bad(sr_rpc_call_t *call, const char *field, const char *fmt, ...)
{
    char message[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", field, "%s", message);
}

Sr__Status taskd_not_found(sr_rpc_call_t *call, const char *what, int64_t id)
{
    return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", "id", "no %s %lld", what,
                       (long long)id);
}

Sr__Status taskd_stale(sr_rpc_call_t *call, const char *what, int64_t id, int64_t have,
                       int64_t sent)
{
    return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "version_conflict", "version",
                       "%s %lld is at version %lld, not %lld; read it again", what, (long long)id,
                       (long long)have, (long long)sent);
}

int taskd_time_ok(int64_t us)
{
    return us >= 0 && us <= TASKD_US_MAX;
}

int taskd_text_ok(const char *s, size_t max)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        chars += (*p & 0xC0) != 0x80;
    return chars <= max;
}

int taskd_has_mask(char *const *mask, size_t n, const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(mask[i], field) == 0)
            return 1;
    return 0;
}

int taskd_can_plan(const Sr__Principal *p)
{
    return sr_perm_allows(p, "projects.plan");
}

int taskd_event_put(taskd_t *self, const char *topic, const ProtobufCMessage *payload,
                    const char *trace_id)
{
    return sr_outbox_put(sr_service_db(self->svc), "tasks", sr_service_instance(self->svc), topic,
                         payload, trace_id, NULL);
}

int taskd_event(sr_rpc_call_t *call, const char *topic, const ProtobufCMessage *payload)
{
    return taskd_event_put(taskd_of(call), topic, payload, call->trace_id);
}

void taskd_published(sr_rpc_call_t *call, const char *entity, int64_t id, const char *region,
                     const ProtobufCMessage *before, const ProtobufCMessage *after)
{
    sr_outbox_pub_flush(sr_service_outbox(taskd_of(call)->svc));
    char text[24];
    snprintf(text, sizeof text, "%lld", (long long)id);
    sr_rpc_audit(call, entity, text, region, before, after);
}

int taskd_cursor_id(sr_rpc_call_t *call, const char *cursor, int64_t *id)
{
    if (sr_cursor_id(call->arena, cursor, id) < 0) {
        sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "cursor",
                    "not a cursor this list gave out");
        return -1;
    }
    return 0;
}

Sr__Project *taskd_project_row(sr_arena_t *arena, const PGresult *res, int row)
{
    Sr__Project *p = sr_arena_alloc(arena, sizeof *p);
    sr__project__init(p);
    p->id = taskd_int(res, row, 0);
    p->name = taskd_str(arena, res, row, 1);
    p->brand = taskd_str(arena, res, row, 2);
    p->region = taskd_str(arena, res, row, 3);
    p->platforms = sr_pbrow_text_list(arena, PQgetvalue(res, row, 4), &p->n_platforms);
    p->starts_us = taskd_int(res, row, 5);
    p->ends_us = taskd_int(res, row, 6);
    p->owner_id = taskd_int(res, row, 7);
    p->gmv_target_fen = taskd_int(res, row, 8);
    p->reach_target = taskd_int(res, row, 9);
    p->follower_target = taskd_int(res, row, 10);
    p->budget_fen = taskd_int(res, row, 11);
    p->status = taskd_str(arena, res, row, 12);
    p->auto_schedule = taskd_bool(res, row, 13);
    p->wip_todo = (int32_t)taskd_int(res, row, 14);
    p->wip_doing = (int32_t)taskd_int(res, row, 15);
    p->wip_blocked = (int32_t)taskd_int(res, row, 16);
    p->version = taskd_int(res, row, 17);
    p->created_us = taskd_int(res, row, 18);
    p->updated_us = taskd_int(res, row, 19);
    return p;
}

int taskd_prepare(sr_db_t *db)
{
    if (sr_db_prepare(db, TASKD_SQL_PROJECT,
                      "SELECT " TASKD_PROJECT_COLS " FROM tasks.projects p WHERE p.id = $1::bigint",
                      1) < 0)
        return -1;
    if (sr_db_prepare(db, TASKD_SQL_CHECKLISTS,
                      "SELECT task_id, id, text, done FROM tasks.task_checklist WHERE task_id = "
                      "ANY($1::bigint[]) ORDER BY task_id, id",
                      1) < 0 ||
        sr_db_prepare(db, TASKD_SQL_DEPENDENCIES,
                      "SELECT task_id, depends_on FROM tasks.task_deps WHERE task_id = "
                      "ANY($1::bigint[]) ORDER BY task_id, depends_on",
                      1) < 0)
        return -1;
    if (sr_db_prepare(db, TASKD_SQL_TASKS,
                      "SELECT " TASKD_TASK_COLS " FROM tasks.tasks t JOIN tasks.projects p ON "
                      "p.id = t.project_id WHERE t.id = ANY($1::bigint[]) ORDER BY t.id",
                      1) < 0)
        return -1;
    return sr_db_prepare(db, TASKD_SQL_PROJECT_TASKS,
                         "SELECT " TASKD_TASK_COLS " FROM tasks.tasks t JOIN tasks.projects p ON "
                         "p.id = t.project_id WHERE t.project_id = $1::bigint AND t.id > "
                         "$2::bigint ORDER BY t.id LIMIT $3::int",
                         3);
}

Sr__Project *taskd_project_load(sr_rpc_call_t *call, int64_t id, int lock, int *failed)
{
    const char *params[] = {taskd_num(call->arena, id)};
    PGresult *res = lock ? sr_db_query(taskd_db(call),
                                       "SELECT " TASKD_PROJECT_COLS
                                       " FROM tasks.projects p WHERE p.id = $1::bigint FOR UPDATE",
                                       1, params)
                         : sr_db_run(taskd_db(call), TASKD_SQL_PROJECT, 1, params);
    *failed = !res;
    Sr__Project *p = res && PQntuples(res) == 1 ? taskd_project_row(call->arena, res, 0) : NULL;
    PQclear(res);
    return p;
}

Sr__Project *taskd_visible_project(sr_rpc_call_t *call, int64_t id, const char *field, int lock,
                                   Sr__Status *st)
{
    int failed;
    Sr__Project *p = id > 0 ? taskd_project_load(call, id, lock, &failed) : NULL;
    if (id > 0 && failed) {
        *st = taskd_db_fail(call);
        return NULL;
    }
    if (!p || !sr_principal_sees_region(call->principal, p->region)) {
        *st = sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", field, "no project %lld",
                          (long long)id);
        return NULL;
    }
    *st = SR__STATUS__STATUS_OK;
    return p;
}

/* taskd_tasks - tasks: create, read, list, "my tasks", change; checklists, comments and
 * finish-to-start dependencies.
 *
 * Every task change locks its project row first, so the checks that span tasks - the kanban
 * WIP limits, dependency cycles, rescheduling dependants - see no concurrent change. Planners
 * (projects.plan) change anything; crew (tasks.work only) change the status, checklist and
 * comments of tasks assigned to them. A dependency that would close a cycle is refused with
 * 400 naming the cycle. When the project schedules automatically, moving a task's due date
 * shifts every task that (transitively) waits for it by the same amount - not done or
 * cancelled ones - each published as task.changed. A new due date or status clears the
 * reminders already sent, so task.due_soon / task.overdue come again for the new state.
 */
#include "taskd.h"

#include "sr_log.h"
#include "sr_perm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_FROM " FROM tasks.tasks t JOIN tasks.projects p ON p.id = t.project_id "
#define MAX_ITEMS 100 /* checklist items and dependencies a request may add at once */
/* a change of the due date or the status clears the reminders sent for the old one */
#define UPDATE_SQL                                                                                 \
    "UPDATE tasks.tasks SET show_id = nullif($1::bigint, 0), title = $2, description = $3, "       \
    "phase = $4, assignee_id = $5::bigint, role = $6, priority = $7, starts_at = " TASKD_TSN(      \
        "$8") ", due_at = " TASKD_TSN("$9") ", estimate_hours = $10::float8, due_soon_sent = "     \
                                            "due_soon_sent AND due_at IS NOT DISTINCT "            \
                                            "FROM " TASKD_TSN(                                     \
                                                "$9") " AND status = $11, "                        \
                                                      "overdue_sent = overdue_sent AND due_at IS " \
                                                      "NOT DISTINCT FROM " TASKD_TSN(              \
                                                          "$9") " AND status "                     \
                                                                "= $11, status = $11, version = "  \
                                                                "version + 1, updated_at = now() " \
                                                                "WHERE id = $12::bigint AND "      \
                                                                "version = $13::bigint"

int taskd_role_ok(const char *role)
{
    return !role[0] || sr_role_parse(role) >= 0;
}

int taskd_phase_ok(const char *phase)
{
    return strcmp(phase, "prep") == 0 || strcmp(phase, "live") == 0 || strcmp(phase, "review") == 0;
}

int taskd_priority_ok(const char *priority)
{
    return strlen(priority) == 2 && priority[0] == 'P' && priority[1] >= '0' && priority[1] <= '3';
}

static Sr__Task *s_row(sr_arena_t *a, const PGresult *res, int row)
{
    Sr__Task *t = sr_arena_alloc(a, sizeof *t);
    sr__task__init(t);
    t->id = taskd_int(res, row, 0);
    t->project_id = taskd_int(res, row, 1);
    t->show_id = taskd_int(res, row, 2);
    t->region = taskd_str(a, res, row, 3);
    t->title = taskd_str(a, res, row, 4);
    t->description = taskd_str(a, res, row, 5);
    t->phase = taskd_str(a, res, row, 6);
    t->assignee_id = taskd_int(res, row, 7);
    t->role = taskd_str(a, res, row, 8);
    t->priority = taskd_str(a, res, row, 9);
    t->starts_us = taskd_int(res, row, 10);
    t->due_us = taskd_int(res, row, 11);
    t->estimate_hours = strtod(PQgetvalue(res, row, 12), NULL);
    t->status = taskd_str(a, res, row, 13);
    t->template_id = taskd_int(res, row, 14);
    t->recurring_id = taskd_int(res, row, 15);
    t->version = taskd_int(res, row, 16);
    t->created_us = taskd_int(res, row, 17);
    t->updated_us = taskd_int(res, row, 18);
    t->checklist = NULL;
    t->depends_on = NULL;
    return t;
}

typedef struct {
    int64_t id;
    Sr__Task *task;
} by_id_t;

static int s_by_id(const void *a, const void *b)
{
    int64_t x = ((const by_id_t *)a)->id, y = ((const by_id_t *)b)->id;
    return x < y ? -1 : x > y;
}

/* s_owner - the task of id among the sorted index, NULL when none */
static Sr__Task *s_owner(const by_id_t *index, size_t n, int64_t id)
{
    by_id_t key = {id, NULL};
    const by_id_t *hit = bsearch(&key, index, n, sizeof *index, s_by_id);
    return hit ? hit->task : NULL;
}

/* s_attach - the rows of a checklist or dependency statement onto their tasks; the rows come
 * ordered by task, so one pass counts and a second fills */
static void s_attach(sr_arena_t *a, const PGresult *res, const by_id_t *index, size_t n,
                     int checklist)
{
    int rows = PQntuples(res);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < rows; i++) {
            Sr__Task *t = s_owner(index, n, taskd_int(res, i, 0));
            if (!t)
                continue;
            if (pass == 0) {
                /* counts ride in the n_ fields until the arrays exist */
                if (checklist)
                    t->n_checklist++;
                else
                    t->n_depends_on++;
                continue;
            }
            if (checklist) {
                if (!t->checklist) {
                    t->checklist = sr_arena_alloc(a, t->n_checklist * sizeof *t->checklist);
                    t->n_checklist = 0;
                }
                Sr__ChecklistItem *c = sr_arena_alloc(a, sizeof *c);
                sr__checklist_item__init(c);
                c->id = taskd_int(res, i, 1);
                c->text = taskd_str(a, res, i, 2);
                c->done = taskd_bool(res, i, 3);
                t->checklist[t->n_checklist++] = c;
            } else {
                if (!t->depends_on) {
                    t->depends_on = sr_arena_alloc(a, t->n_depends_on * sizeof *t->depends_on);
                    t->n_depends_on = 0;
                }
                t->depends_on[t->n_depends_on++] = taskd_int(res, i, 1);
            }
        }
}

/* s_id_array - ids as a bigint[] literal, in arena */
static const char *s_id_array(sr_arena_t *a, const int64_t *ids, size_t n)
{
    char *text = sr_arena_alloc(a, n * 21 + 3);
    size_t used = 0;
    text[used++] = '{';
    for (size_t i = 0; i < n; i++)
        used += (size_t)sprintf(text + used, "%s%lld", i ? "," : "", (long long)ids[i]);
    text[used++] = '}', text[used] = '\0';
    return text;
}

int64_t *taskd_result_ids(sr_arena_t *a, const PGresult *res, size_t *n)
{
    *n = (size_t)PQntuples(res);
    int64_t *ids = sr_arena_alloc(a, (*n + 1) * sizeof *ids);
    for (size_t i = 0; i < *n; i++)
        ids[i] = taskd_int(res, (int)i, 0);
    return ids;
}

Sr__Task **taskd_task_rows(sr_db_t *db, sr_arena_t *a, const PGresult *res, int rows)
{
    Sr__Task **tasks = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *tasks);
    by_id_t *index = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *index);
    int64_t *ids = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *ids);
    for (int i = 0; i < rows; i++) {
        tasks[i] = s_row(a, res, i);
        index[i] = (by_id_t){tasks[i]->id, tasks[i]};
        ids[i] = tasks[i]->id;
    }
    if (rows == 0)
        return tasks;
    qsort(index, (size_t)rows, sizeof *index, s_by_id);
    const char *params[] = {s_id_array(a, ids, (size_t)rows)};
    const char *statements[] = {TASKD_SQL_CHECKLISTS, TASKD_SQL_DEPENDENCIES};
    for (int k = 0; k < 2; k++) {
        PGresult *items = sr_db_run(db, statements[k], 1, params);
        if (!items)
            return NULL;
        s_attach(a, items, index, (size_t)rows, k == 0);
        PQclear(items);
    }
    return tasks;
}

Sr__Task **taskd_tasks_fetch(sr_db_t *db, sr_arena_t *a, const int64_t *ids, size_t n,
                             size_t *found)
{
    const char *params[] = {s_id_array(a, ids, n)};
    PGresult *res = sr_db_run(db, TASKD_SQL_TASKS, 1, params);
    *found = res ? (size_t)PQntuples(res) : 0;
    Sr__Task **tasks = res ? taskd_task_rows(db, a, res, PQntuples(res)) : NULL;
    PQclear(res);
    return tasks;
}

Sr__Task *taskd_task_fetch(sr_db_t *db, sr_arena_t *arena, int64_t id, int *failed)
{
    size_t found;
    Sr__Task **t = taskd_tasks_fetch(db, arena, &id, 1, &found);
    *failed = !t;
    return t && found == 1 ? t[0] : NULL;
}

Sr__Task *taskd_task_load(sr_rpc_call_t *call, int64_t id, int *failed)
{
    Sr__Task *t = taskd_task_fetch(taskd_db(call), call->arena, id, failed);
    return t && sr_principal_sees_region(call->principal, t->region) ? t : NULL;
}

Sr__Status taskd_wip_check(sr_rpc_call_t *call, const Sr__Project *project, const char *status,
                           int adding)
{
    int32_t limit = strcmp(status, "todo") == 0      ? project->wip_todo
                    : strcmp(status, "doing") == 0   ? project->wip_doing
                    : strcmp(status, "blocked") == 0 ? project->wip_blocked
                                                     : 0;
    if (limit == 0)
        return SR__STATUS__STATUS_OK;
    const char *params[] = {taskd_num(call->arena, project->id), status};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT count(*) FROM tasks.tasks WHERE project_id = $1::bigint AND status = $2", 2,
        params);
    if (!res)
        return taskd_db_fail(call);
    int64_t count = taskd_int(res, 0, 0);
    PQclear(res);
    if (count + adding > limit)
        return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "wip_limit", "status",
                           "column %s of project %lld holds %lld tasks, its WIP limit is %d",
                           status, (long long)project->id, (long long)count, limit);
    return SR__STATUS__STATUS_OK;
}

/* --- the write path shared by every task change ------------------------------------------- */

typedef struct {
    sr_rpc_call_t *call;
    const ProtobufCMessage *in;
    Sr__Project *project;
    Sr__Task *before, *after;
    Sr__Status st;
    int64_t result_id; /* a created checklist item or comment */
    Sr__Comment *comment;
} write_t;

static int s_fail(write_t *w)
{
    w->st = taskd_db_fail(w->call);
    return -1;
}

/* s_begin - in the transaction: the task (visible to the caller) and its project, locked */
static int s_begin(write_t *w, int64_t task_id)
{
    int failed;
    w->before = taskd_task_load(w->call, task_id, &failed);
    if (failed)
        return s_fail(w);
    if (!w->before) {
        w->st = taskd_not_found(w->call, "task", task_id);
        return -1;
    }
    w->project = taskd_visible_project(w->call, w->before->project_id, "project_id", 1, &w->st);
    if (!w->project)
        return -1;
    /* read again under the project's lock: a change that waited for it sees the one before */
    w->before = taskd_task_load(w->call, task_id, &failed);
    if (!w->before)
        return s_fail(w);
    return 0;
}

/* s_may_work - planners change any task, crew only their own */
static int s_may_work(write_t *w)
{
    const Sr__Principal *p = w->call->principal;
    if (taskd_can_plan(p) || (w->before->assignee_id != 0 && w->before->assignee_id == p->user_id))
        return 0;
    w->st = sr_rpc_fail(w->call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", "assignee_id",
                        "task %lld is not assigned to you; you may change only your own tasks",
                        (long long)w->before->id);
    return -1;
}

/* s_bump - a change to a task's checklist or dependencies is a new version of the task */
static int s_bump(write_t *w, int64_t task_id)
{
    const char *params[] = {taskd_num(w->call->arena, task_id)};
    PGresult *res = sr_db_query(taskd_db(w->call),
                                "UPDATE tasks.tasks SET version = version + 1, updated_at = now() "
                                "WHERE id = $1::bigint",
                                1, params);
    if (!res)
        return s_fail(w);
    PQclear(res);
    return 0;
}

/* s_end - reread the task, publish task.changed; the transaction commits after */
static int s_end(write_t *w, int64_t task_id)
{
    int failed;
    w->after = taskd_task_load(w->call, task_id, &failed);
    if (!w->after || taskd_event(w->call, "task.changed", &w->after->base) < 0)
        return s_fail(w);
    return 0;
}

/* s_touched - after a statement on a part of task_id (a dependency, a checklist item): 404
 * naming field when it touched no row, else a new version of the task, published */
static int s_touched(write_t *w, PGresult *res, int64_t task_id, const char *field, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static int s_touched(write_t *w, PGresult *res, int64_t task_id, const char *field, const char *fmt,
                     ...)
{
    if (!res)
        return s_fail(w);
    int rows = atoi(PQcmdTuples(res));
    PQclear(res);
    if (!rows) {
        char message[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(message, sizeof message, fmt, ap);
        va_end(ap);
        w->st =
            sr_rpc_fail(w->call, SR__STATUS__STATUS_NOT_FOUND, "not_found", field, "%s", message);
        return -1;
    }
    return s_bump(w, task_id) < 0 ? -1 : s_end(w, task_id);
}

static Sr__Status s_run(sr_rpc_call_t *call, int (*fn)(sr_db_t *, void *), write_t *w,
                        ProtobufCMessage **reply)
{
    if (sr_db_tx(taskd_db(call), fn, w) != 0)
        return w->st != SR__STATUS__STATUS_OK ? w->st : taskd_db_fail(call);
    taskd_published(call, "task", w->after->id, w->after->region,
                    w->before ? &w->before->base : NULL, &w->after->base);
    *reply = &w->after->base;
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    int64_t show_id, assignee_id, starts_us, due_us;
    const char *title, *description, *phase, *role, *priority;
    double estimate;
} fields_t;

static Sr__Status s_check(sr_rpc_call_t *call, const fields_t *f)
{
    if (!f->title[0] || !taskd_text_ok(f->title, 200))
        return taskd_bad(call, "title", "title must be 1 to 200 characters");
    if (!taskd_text_ok(f->description, 4000))
        return taskd_bad(call, "description", "description must be at most 4000 characters");
    if (!taskd_phase_ok(f->phase))
        return taskd_bad(call, "phase", "phase must be prep, live or review");
    if (!taskd_role_ok(f->role))
        return taskd_bad(call, "role", "role must be a role name (see the permission matrix)");
    if (!taskd_priority_ok(f->priority))
        return taskd_bad(call, "priority", "priority must be P0, P1, P2 or P3");
    if (f->starts_us < 0 || f->due_us < 0 ||
        (f->starts_us && f->due_us && f->due_us < f->starts_us))
        return taskd_bad(call, "due_us", "due_us must not be before starts_us");
    if (!taskd_time_ok(f->starts_us) || !taskd_time_ok(f->due_us))
        return taskd_bad(call, taskd_time_ok(f->starts_us) ? "due_us" : "starts_us",
                         "times are microseconds from 1970 to 9999");
    if (!(f->estimate >= 0 && f->estimate <= 10000))
        return taskd_bad(call, "estimate_hours", "estimate_hours must be 0 to 10000");
    if (f->assignee_id < 0 || f->show_id < 0)
        return taskd_bad(call, f->show_id < 0 ? "show_id" : "assignee_id", "ids are positive");
    return SR__STATUS__STATUS_OK;
}

/* s_show_ok - a task's show must be one of its project's */
static int s_show_ok(write_t *w, int64_t show_id)
{
    if (!show_id)
        return 0;
    const char *params[] = {taskd_num(w->call->arena, show_id),
                            taskd_num(w->call->arena, w->project->id)};
    PGresult *res = sr_db_query(
        taskd_db(w->call),
        "SELECT 1 FROM tasks.shows WHERE id = $1::bigint AND project_id = $2::bigint", 2, params);
    if (!res)
        return s_fail(w);
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        w->st = taskd_bad(w->call, "show_id", "show %lld is not a show of project %lld",
                          (long long)show_id, (long long)w->project->id);
        return -1;
    }
    return 0;
}

static int s_add_item(write_t *w, int64_t task_id, const char *text)
{
    if (!text[0] || !taskd_text_ok(text, 500)) {
        w->st = taskd_bad(w->call, "text", "a checklist item is 1 to 500 characters");
        return -1;
    }
    const char *params[] = {taskd_num(w->call->arena, task_id), text};
    PGresult *res = sr_db_query(taskd_db(w->call),
                                "INSERT INTO tasks.task_checklist (task_id, text) VALUES "
                                "($1::bigint, $2) RETURNING id",
                                2, params);
    if (!res)
        return s_fail(w);
    w->result_id = taskd_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* s_cycle - when id -> depends_on would close a cycle, the cycle as "5 -> 9 -> 7 -> 5" in
 * arena (each waits for the next); "" when it would not, NULL on a database failure. A breadth-
 * first walk in C over the project's dependencies (the project row is locked), so the cost is
 * the number of edges, however the graph is shaped. */
static const char *s_cycle(write_t *w, int64_t id, int64_t depends_on)
{
    sr_arena_t *a = w->call->arena;
    const char *params[] = {taskd_num(a, w->project->id)};
    PGresult *res = sr_db_query(taskd_db(w->call),
                                "SELECT d.task_id, d.depends_on FROM tasks.task_deps d JOIN "
                                "tasks.tasks t ON t.id = d.task_id WHERE t.project_id = "
                                "$1::bigint ORDER BY d.task_id",
                                1, params);
    if (!res)
        return NULL;
    size_t edges = (size_t)PQntuples(res);
    int64_t *from = sr_arena_alloc(a, (edges + 1) * sizeof *from);
    int64_t *to = sr_arena_alloc(a, (edges + 1) * sizeof *to);
    for (size_t i = 0; i < edges; i++)
        from[i] = taskd_int(res, (int)i, 0), to[i] = taskd_int(res, (int)i, 1);
    PQclear(res);
    /* nodes reached from depends_on, each with the node it was reached from */
    int64_t *node = sr_arena_alloc(a, (edges + 2) * sizeof *node);
    int64_t *parent = sr_arena_alloc(a, (edges + 2) * sizeof *parent);
    size_t n = 0, head = 0;
    node[n] = depends_on, parent[n++] = -1;
    long found = depends_on == id ? 0 : -1;
    while (head < n && found < 0) {
        int64_t cur = node[head];
        for (size_t e = 0; e < edges && found < 0; e++) {
            if (from[e] != cur)
                continue;
            size_t k = 0;
            while (k < n && node[k] != to[e])
                k++;
            if (k < n)
                continue;
            node[n] = to[e], parent[n] = (int64_t)head;
            if (to[e] == id)
                found = (long)n;
            n++;
        }
        head++;
    }
    if (found < 0)
        return "";
    char *path = sr_arena_printf(a, "%lld", (long long)id);
    int64_t chain[64];
    size_t len = 0;
    for (long k = found; k >= 0 && len < 64; k = (long)parent[k])
        chain[len++] = node[k];
    for (size_t i = len; i-- > 0;)
        path = sr_arena_printf(a, "%s -> %lld", path, (long long)chain[i]);
    return path;
}

static int s_add_dep(write_t *w, int64_t id, int64_t depends_on)
{
    sr_rpc_call_t *call = w->call;
    if (depends_on == id) {
        w->st = taskd_bad(call, "depends_on", "task %lld cannot wait for itself", (long long)id);
        return -1;
    }
    const char *params[] = {taskd_num(call->arena, depends_on),
                            taskd_num(call->arena, w->project->id)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT 1 FROM tasks.tasks WHERE id = $1::bigint AND project_id = $2::bigint", 2, params);
    if (!res)
        return s_fail(w);
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found) {
        w->st = taskd_bad(call, "depends_on", "task %lld is not a task of project %lld",
                          (long long)depends_on, (long long)w->project->id);
        return -1;
    }
    const char *cycle = s_cycle(w, id, depends_on);
    if (!cycle)
        return s_fail(w);
    if (cycle[0]) {
        w->st = sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "dependency_cycle", "depends_on",
                            "that would make a cycle: %s (each waits for the next)", cycle);
        return -1;
    }
    const char *ins[] = {taskd_num(call->arena, id), params[0]};
    res = sr_db_query(taskd_db(call),
                      "INSERT INTO tasks.task_deps (task_id, depends_on) VALUES ($1::bigint, "
                      "$2::bigint) ON CONFLICT DO NOTHING",
                      2, ins);
    if (!res)
        return s_fail(w);
    PQclear(res);
    return 0;
}

/* --- create ---------------------------------------------------------------------------------- */

static int s_create_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    const Sr__TaskCreate *in = (const Sr__TaskCreate *)w->in;
    if (!(w->project = taskd_visible_project(call, in->project_id, "project_id", 1, &w->st)))
        return -1;
    fields_t f = {in->show_id,
                  in->assignee_id,
                  in->starts_us,
                  in->due_us,
                  in->title,
                  in->description,
                  in->phase[0] ? in->phase : "prep",
                  in->role,
                  in->priority[0] ? in->priority : "P2",
                  in->estimate_hours};
    if ((w->st = s_check(call, &f)) != SR__STATUS__STATUS_OK || s_show_ok(w, f.show_id) < 0 ||
        (w->st = taskd_wip_check(call, w->project, "todo", 1)) != SR__STATUS__STATUS_OK)
        return -1;
    sr_arena_t *a = call->arena;
    const char *params[] = {taskd_num(a, w->project->id),
                            taskd_num(a, f.show_id),
                            f.title,
                            f.description,
                            f.phase,
                            taskd_num(a, f.assignee_id),
                            f.role,
                            f.priority,
                            taskd_num(a, f.starts_us),
                            taskd_num(a, f.due_us),
                            sr_arena_printf(a, "%.17g", f.estimate)};
    PGresult *res = sr_db_query(
        db,
        "INSERT INTO tasks.tasks (project_id, show_id, title, description, phase, assignee_id, "
        "role, priority, starts_at, due_at, estimate_hours) VALUES ($1::bigint, "
        "nullif($2::bigint, 0), $3, $4, $5, $6::bigint, $7, $8, " TASKD_TSN("$9") ", " TASKD_TSN(
            "$10") ", $11::float8) RETURNING id",
        11, params);
    if (!res)
        return s_fail(w);
    int64_t id = taskd_int(res, 0, 0);
    PQclear(res);
    if (in->n_checklist > MAX_ITEMS || in->n_depends_on > MAX_ITEMS) {
        w->st = taskd_bad(call, in->n_checklist > MAX_ITEMS ? "checklist" : "depends_on",
                          "at most %d checklist items and %d dependencies at once", MAX_ITEMS,
                          MAX_ITEMS);
        return -1;
    }
    for (size_t i = 0; i < in->n_checklist; i++)
        if (s_add_item(w, id, in->checklist[i]) < 0)
            return -1;
    for (size_t i = 0; i < in->n_depends_on; i++)
        if (s_add_dep(w, id, in->depends_on[i]) < 0)
            return -1;
    return s_end(w, id);
}

TASKD_METHOD(taskd_task_create)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_create_tx, &w, reply);
}

/* --- read ------------------------------------------------------------------------------------ */

TASKD_METHOD(taskd_task_get)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    int failed;
    Sr__Task *t = taskd_task_load(call, in->id, &failed);
    if (failed)
        return taskd_db_fail(call);
    if (!t)
        return taskd_not_found(call, "task", in->id);
    *reply = &t->base;
    return SR__STATUS__STATUS_OK;
}

/* s_query - a filtered task page (the general statement) */
static PGresult *s_query(sr_rpc_call_t *call, const Sr__TaskList *in, int64_t assignee,
                         int64_t after, int limit)
{
    const Sr__Principal *p = call->principal;
    sr_arena_t *a = call->arena;
    const char *params[] = {sr_principal_is_hq(p) ? "t" : "f",
                            sr_db_text_array(a, p->regions, p->n_regions),
                            taskd_num(a, in->project_id),
                            taskd_num(a, in->show_id),
                            taskd_num(a, assignee),
                            in->status,
                            in->phase,
                            in->due,
                            taskd_num(a, taskd_of(call)->cfg->due_soon_ms * 1000),
                            taskd_num(a, after),
                            taskd_num(a, limit + 1)};
    return sr_db_query(
        taskd_db(call),
        "SELECT " TASKD_TASK_COLS TASK_FROM
        "WHERE ($1::bool OR p.region = ANY($2::text[])) AND ($3::bigint = 0 OR t.project_id = "
        "$3::bigint) AND ($4::bigint = 0 OR t.show_id = $4::bigint) AND ($5::bigint = 0 OR "
        "t.assignee_id = $5::bigint) AND ($6 = '' OR t.status = $6) AND ($7 = '' OR t.phase = "
        "$7) AND ($8 = '' OR (t.status IN ('todo', 'doing', 'blocked') AND CASE $8 WHEN "
        "'overdue' THEN t.due_at < now() ELSE t.due_at >= now() AND t.due_at < now() + "
        "$9::bigint * interval '1 microsecond' END)) AND t.id > $10::bigint ORDER BY t.id LIMIT "
        "$11::int",
        11, params);
}

static Sr__Status s_list(sr_rpc_call_t *call, const Sr__TaskList *in, int64_t assignee,
                         ProtobufCMessage **reply)
{
    const Sr__Principal *p = call->principal;
    if (in->status[0] && !taskd_status_known(TASKD_TASK, in->status))
        return taskd_bad(call, "status", "status must be one of %s", taskd_statuses(TASKD_TASK));
    if (in->phase[0] && !taskd_phase_ok(in->phase))
        return taskd_bad(call, "phase", "phase must be prep, live or review");
    if (in->due[0] && strcmp(in->due, "overdue") != 0 && strcmp(in->due, "soon") != 0)
        return taskd_bad(call, "due", "due must be overdue or soon");
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    sr_arena_t *a = call->arena;
    /* a project's tasks and nothing else: the prepared statement, and one query when the page
     * has rows (they carry the project's region) */
    int plain = in->project_id && !in->show_id && !assignee && !in->status[0] && !in->phase[0] &&
                !in->due[0];
    PGresult *res = NULL;
    if (plain) {
        const char *params[] = {taskd_num(a, in->project_id), taskd_num(a, after),
                                taskd_num(a, limit + 1)};
        if (!(res = sr_db_run(taskd_db(call), TASKD_SQL_PROJECT_TASKS, 3, params)))
            return taskd_db_fail(call);
        if (PQntuples(res) && !sr_principal_sees_region(p, PQgetvalue(res, 0, 3))) {
            PQclear(res);
            return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", "project_id",
                               "no project %lld", (long long)in->project_id);
        }
    }
    if ((!res || !PQntuples(res)) && in->project_id) {
        Sr__Status st;
        if (!taskd_visible_project(call, in->project_id, "project_id", 0, &st)) {
            PQclear(res);
            return st;
        }
    }
    if (!res)
        res = s_query(call, in, assignee, after, limit);
    if (!res)
        return taskd_db_fail(call);
    Sr__TaskPage *out = sr_arena_alloc(a, sizeof *out);
    sr__task_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->tasks = taskd_task_rows(taskd_db(call), a, res, rows);
    if (!out->tasks) {
        PQclear(res);
        return taskd_db_fail(call);
    }
    out->n_tasks = (size_t)rows;
    out->next_cursor =
        sr_cursor_after(a, PQntuples(res), limit, rows ? out->tasks[rows - 1]->id : 0);
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_task_list)
{
    const Sr__TaskList *in = (const Sr__TaskList *)request;
    return s_list(call, in, in->assignee_id, reply);
}

TASKD_METHOD(taskd_task_mine)
{
    const Sr__TaskList *in = (const Sr__TaskList *)request;
    if (in->assignee_id)
        return taskd_bad(call, "assignee_id", "my tasks are the caller's; leave assignee_id out");
    if (call->principal->user_id <= 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", NULL,
                           "my tasks need a user");
    return s_list(call, in, call->principal->user_id, reply);
}

/* --- update ---------------------------------------------------------------------------------- */

/* s_shift - move the not finished tasks that wait for id (transitively) by delta_us */
static int s_shift(write_t *w, int64_t id, int64_t delta_us)
{
    sr_rpc_call_t *call = w->call;
    const char *params[] = {taskd_num(call->arena, id), taskd_num(call->arena, delta_us)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "WITH RECURSIVE down (id) AS (SELECT task_id FROM tasks.task_deps WHERE depends_on = "
        "$1::bigint UNION SELECT d.task_id FROM tasks.task_deps d JOIN down ON d.depends_on = "
        "down.id) UPDATE tasks.tasks t SET starts_at = t.starts_at + $2::bigint * interval '1 "
        "microsecond', due_at = t.due_at + $2::bigint * interval '1 microsecond', due_soon_sent "
        "= false, overdue_sent = false, version = t.version + 1, updated_at = now() FROM down "
        "WHERE t.id = down.id AND t.status NOT IN ('done', 'cancelled') RETURNING t.id",
        2, params);
    if (!res)
        return s_fail(w);
    size_t n, found;
    int64_t *ids = taskd_result_ids(call->arena, res, &n);
    PQclear(res);
    Sr__Task **moved = n ? taskd_tasks_fetch(taskd_db(call), call->arena, ids, n, &found) : NULL;
    if (n && !moved)
        return s_fail(w);
    for (size_t i = 0; i < n && i < found; i++)
        if (taskd_event(call, "task.changed", &moved[i]->base) < 0)
            return s_fail(w);
    if (n)
        sr_info("task_rescheduled", "task=%lld dependants=%zu delta_s=%lld", (long long)id, n,
                (long long)(delta_us / 1000000));
    return 0;
}

static int s_update_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    const Sr__TaskUpdate *in = (const Sr__TaskUpdate *)w->in;
    if (s_begin(w, in->id) < 0 || s_may_work(w) < 0)
        return -1;
    const Sr__Task *b = w->before;
    char *const *mask = in->update_mask;
    size_t nm = in->n_update_mask;
    if (!taskd_can_plan(call->principal))
        for (size_t i = 0; i < nm; i++)
            if (strcmp(mask[i], "status") != 0 && strcmp(mask[i], "version") != 0) {
                w->st =
                    sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", mask[i],
                                "you may change the status of your tasks, not their %s", mask[i]);
                return -1;
            }
    if (b->version != in->version) {
        w->st = taskd_stale(call, "task", b->id, b->version, in->version);
        return -1;
    }
    fields_t f = {TASKD_PICK("show_id", in->show_id, b->show_id),
                  TASKD_PICK("assignee_id", in->assignee_id, b->assignee_id),
                  TASKD_PICK("starts_us", in->starts_us, b->starts_us),
                  TASKD_PICK("due_us", in->due_us, b->due_us),
                  TASKD_PICK("title", in->title, b->title),
                  TASKD_PICK("description", in->description, b->description),
                  TASKD_PICK("phase", in->phase, b->phase),
                  TASKD_PICK("role", in->role, b->role),
                  TASKD_PICK("priority", in->priority, b->priority),
                  TASKD_PICK("estimate_hours", in->estimate_hours, b->estimate_hours)};
    const char *status = TASKD_PICK("status", in->status, b->status);
    if ((w->st = s_check(call, &f)) != SR__STATUS__STATUS_OK)
        return -1;
    if ((w->st = taskd_status_move(call, TASKD_TASK, b->id, b->status, status)) !=
        SR__STATUS__STATUS_OK)
        return -1;
    if (f.show_id != b->show_id && s_show_ok(w, f.show_id) < 0)
        return -1;
    if (strcmp(status, b->status) != 0 &&
        (w->st = taskd_wip_check(call, w->project, status, 1)) != SR__STATUS__STATUS_OK)
        return -1;
    sr_arena_t *a = call->arena;
    const char *params[] = {taskd_num(a, f.show_id),
                            f.title,
                            f.description,
                            f.phase,
                            taskd_num(a, f.assignee_id),
                            f.role,
                            f.priority,
                            taskd_num(a, f.starts_us),
                            taskd_num(a, f.due_us),
                            sr_arena_printf(a, "%.17g", f.estimate),
                            status,
                            taskd_num(a, b->id),
                            taskd_num(a, b->version)};
    PGresult *res = sr_db_query(db, UPDATE_SQL, 13, params);
    if (!res)
        return s_fail(w);
    int updated = atoi(PQcmdTuples(res));
    PQclear(res);
    if (updated != 1) {
        w->st = taskd_stale(call, "task", b->id, b->version + 1, b->version);
        return -1;
    }
    if (w->project->auto_schedule && b->due_us && f.due_us && f.due_us != b->due_us &&
        s_shift(w, b->id, f.due_us - b->due_us) < 0)
        return -1;
    return s_end(w, b->id);
}

TASKD_METHOD(taskd_task_update)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_update_tx, &w, reply);
}

/* --- dependencies ---------------------------------------------------------------------------- */

static int s_depend_tx(sr_db_t *db, void *arg)
{
    (void)db;
    write_t *w = arg;
    const Sr__DependencyChange *in = (const Sr__DependencyChange *)w->in;
    if (s_begin(w, in->id) < 0 || s_add_dep(w, in->id, in->depends_on) < 0 || s_bump(w, in->id) < 0)
        return -1;
    return s_end(w, in->id);
}

TASKD_METHOD(taskd_dependency_add)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_depend_tx, &w, reply);
}

static int s_undepend_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    const Sr__DependencyChange *in = (const Sr__DependencyChange *)w->in;
    if (s_begin(w, in->id) < 0)
        return -1;
    const char *params[] = {taskd_num(w->call->arena, in->id),
                            taskd_num(w->call->arena, in->depends_on)};
    PGresult *res = sr_db_query(
        db, "DELETE FROM tasks.task_deps WHERE task_id = $1::bigint AND depends_on = $2::bigint", 2,
        params);
    return s_touched(w, res, in->id, "depends_on", "task %lld does not wait for task %lld",
                     (long long)in->id, (long long)in->depends_on);
}

TASKD_METHOD(taskd_dependency_remove)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_undepend_tx, &w, reply);
}

/* --- checklist ------------------------------------------------------------------------------- */

static int s_item_add_tx(sr_db_t *db, void *arg)
{
    (void)db;
    write_t *w = arg;
    const Sr__ChecklistAdd *in = (const Sr__ChecklistAdd *)w->in;
    if (s_begin(w, in->id) < 0 || s_may_work(w) < 0 || s_add_item(w, in->id, in->text) < 0 ||
        s_bump(w, in->id) < 0)
        return -1;
    return s_end(w, in->id);
}

TASKD_METHOD(taskd_checklist_add)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_item_add_tx, &w, reply);
}

static int s_item_update_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    const Sr__ChecklistUpdate *in = (const Sr__ChecklistUpdate *)w->in;
    if (s_begin(w, in->id) < 0 || s_may_work(w) < 0)
        return -1;
    int text = taskd_has_mask(in->update_mask, in->n_update_mask, "text");
    if (text && (!in->text[0] || !taskd_text_ok(in->text, 500))) {
        w->st = taskd_bad(w->call, "text", "a checklist item is 1 to 500 characters");
        return -1;
    }
    const char *params[] = {taskd_num(w->call->arena, in->id),
                            taskd_num(w->call->arena, in->item_id),
                            text ? "t" : "f",
                            in->text,
                            taskd_has_mask(in->update_mask, in->n_update_mask, "done") ? "t" : "f",
                            in->done ? "t" : "f"};
    PGresult *res = sr_db_query(db,
                                "UPDATE tasks.task_checklist SET text = CASE WHEN $3::bool THEN "
                                "$4 ELSE text END, done = CASE WHEN $5::bool THEN $6::bool ELSE "
                                "done END WHERE task_id = $1::bigint AND id = $2::bigint",
                                6, params);
    return s_touched(w, res, in->id, "item_id", "task %lld has no checklist item %lld",
                     (long long)in->id, (long long)in->item_id);
}

TASKD_METHOD(taskd_checklist_update)
{
    write_t w = {.call = call, .in = request};
    return s_run(call, s_item_update_tx, &w, reply);
}

/* --- comments -------------------------------------------------------------------------------- */

static Sr__Comment *s_comment_row(sr_arena_t *a, const PGresult *res, int row)
{
    Sr__Comment *c = sr_arena_alloc(a, sizeof *c);
    sr__comment__init(c);
    c->id = taskd_int(res, row, 0);
    c->task_id = taskd_int(res, row, 1);
    c->author_id = taskd_int(res, row, 2);
    c->author = taskd_str(a, res, row, 3);
    c->body = taskd_str(a, res, row, 4);
    c->created_us = taskd_int(res, row, 5);
    return c;
}

#define COMMENT_COLS "id, task_id, author_id, author, body, " TASKD_US("created_at")

static int s_comment_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    const Sr__CommentAdd *in = (const Sr__CommentAdd *)w->in;
    if (s_begin(w, in->id) < 0 || s_may_work(w) < 0)
        return -1;
    if (!in->body[0] || !taskd_text_ok(in->body, 4000)) {
        w->st = taskd_bad(w->call, "body", "a comment is 1 to 4000 characters");
        return -1;
    }
    const Sr__Principal *p = w->call->principal;
    const char *params[] = {taskd_num(w->call->arena, in->id),
                            taskd_num(w->call->arena, p->user_id), p->user_name, in->body};
    PGresult *res =
        sr_db_query(db,
                    "INSERT INTO tasks.task_comments (task_id, author_id, author, "
                    "body) VALUES ($1::bigint, $2::bigint, $3, $4) RETURNING " COMMENT_COLS,
                    4, params);
    if (!res)
        return s_fail(w);
    w->comment = s_comment_row(w->call->arena, res, 0);
    PQclear(res);
    return 0;
}

TASKD_METHOD(taskd_comment_add)
{
    write_t w = {.call = call, .in = request};
    if (sr_db_tx(taskd_db(call), s_comment_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    taskd_published(call, "comment", w.comment->id, w.before->region, NULL, &w.comment->base);
    *reply = &w.comment->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_comment_list)
{
    const Sr__CommentList *in = (const Sr__CommentList *)request;
    int failed;
    if (!taskd_task_load(call, in->id, &failed))
        return failed ? taskd_db_fail(call) : taskd_not_found(call, "task", in->id);
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    const char *params[] = {taskd_num(call->arena, in->id), taskd_num(call->arena, after),
                            taskd_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "SELECT " COMMENT_COLS " FROM tasks.task_comments WHERE task_id = "
                                "$1::bigint AND id > $2::bigint ORDER BY id LIMIT $3::int",
                                3, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__CommentPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__comment_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->comments = sr_arena_alloc(call->arena, (size_t)(rows + 1) * sizeof *out->comments);
    for (int i = 0; i < rows; i++)
        out->comments[out->n_comments++] = s_comment_row(call->arena, res, i);
    out->next_cursor =
        sr_cursor_after(call->arena, PQntuples(res), limit, rows ? out->comments[rows - 1]->id : 0);
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

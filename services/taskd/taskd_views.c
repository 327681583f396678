/* taskd_views - a project's kanban and Gantt chart, and the critical path behind the Gantt.
 *
 * Kanban: one column per task status in life-cycle order, with the column's WIP limit (the
 * project's wip_todo / wip_doing / wip_blocked; 0 = none), its count and its tasks.
 * Gantt: every task with start, due and dependencies, ordered by start, and the critical path:
 * a forward pass gives each task its earliest finish (its duration after the latest earliest
 * finish of what it waits for), a backward pass its latest finish without moving the project's
 * end; a task with no slack is critical, and the chain of critical tasks that ends last is the
 * path. Durations are due - start; a task without both dates takes no time.
 */
#include "taskd.h"

#include "sr_alloc.h"

#include <stdlib.h>
#include <string.h>

#define TASK_FROM " FROM tasks.tasks t JOIN tasks.projects p ON p.id = t.project_id "

static const char *const s_columns[] = {"todo", "doing", "blocked", "done", "cancelled"};

TASKD_METHOD(taskd_kanban)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    Sr__Status st;
    Sr__Project *project = taskd_visible_project(call, in->id, "id", 0, &st);
    if (!project)
        return st;
    const char *params[] = {taskd_num(call->arena, project->id)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "SELECT " TASKD_TASK_COLS TASK_FROM
                                "WHERE t.project_id = $1::bigint ORDER BY t.priority, "
                                "t.due_at NULLS LAST, t.id",
                                1, params);
    if (!res)
        return taskd_db_fail(call);
    sr_arena_t *a = call->arena;
    size_t ncol = sizeof s_columns / sizeof s_columns[0];
    Sr__Kanban *out = sr_arena_alloc(a, sizeof *out);
    sr__kanban__init(out);
    out->project_id = project->id;
    out->columns = sr_arena_alloc(a, ncol * sizeof *out->columns);
    int rows = PQntuples(res);
    for (size_t c = 0; c < ncol; c++) {
        Sr__KanbanColumn *col = sr_arena_alloc(a, sizeof *col);
        sr__kanban_column__init(col);
        col->status = (char *)s_columns[c];
        col->wip_limit = c == 0   ? project->wip_todo
                         : c == 1 ? project->wip_doing
                         : c == 2 ? project->wip_blocked
                                  : 0;
        col->tasks = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *col->tasks);
        out->columns[out->n_columns++] = col;
    }
    for (int i = 0; i < rows; i++) {
        Sr__Task *t = taskd_task_row(a, res, i);
        for (size_t c = 0; c < ncol; c++)
            if (strcmp(t->status, s_columns[c]) == 0) {
                out->columns[c]->tasks[out->columns[c]->n_tasks++] = t;
                out->columns[c]->count++;
            }
    }
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static int64_t s_duration(const taskd_cpm_task_t *t)
{
    return t->starts_us && t->due_us && t->due_us > t->starts_us ? t->due_us - t->starts_us : 0;
}

/* s_index - position of id in tasks, -1 when it is not there */
static long s_index(const taskd_cpm_task_t *tasks, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (tasks[i].id == id)
            return (long)i;
    return -1;
}

size_t taskd_cpm(taskd_cpm_task_t *tasks, size_t n, int64_t *path)
{
    if (n == 0)
        return 0;
    int64_t *ef = sr_calloc(n, sizeof *ef), *lf = sr_calloc(n, sizeof *lf);
    size_t *order = sr_calloc(n, sizeof *order), done = 0;
    char *placed = sr_calloc(n, 1);
    /* topological order (dependencies are acyclic; a dependency on a task not in the set is
     * ignored) */
    while (done < n) {
        size_t before = done;
        for (size_t i = 0; i < n; i++) {
            if (placed[i])
                continue;
            int ready = 1;
            for (size_t d = 0; d < tasks[i].n_depends_on; d++) {
                long j = s_index(tasks, n, tasks[i].depends_on[d]);
                if (j >= 0 && !placed[j])
                    ready = 0;
            }
            if (ready) {
                placed[i] = 1;
                order[done++] = i;
            }
        }
        if (done == before) /* a cycle after all: place the rest as they come */
            for (size_t i = 0; i < n; i++)
                if (!placed[i])
                    placed[i] = 1, order[done++] = i;
    }
    int64_t end = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        int64_t es = 0;
        for (size_t d = 0; d < tasks[i].n_depends_on; d++) {
            long j = s_index(tasks, n, tasks[i].depends_on[d]);
            if (j >= 0 && ef[j] > es)
                es = ef[j];
        }
        ef[i] = es + s_duration(&tasks[i]);
        if (ef[i] > end)
            end = ef[i];
    }
    for (size_t i = 0; i < n; i++)
        lf[i] = end;
    for (size_t k = n; k-- > 0;) {
        size_t i = order[k];
        int64_t ls = lf[i] - s_duration(&tasks[i]);
        for (size_t d = 0; d < tasks[i].n_depends_on; d++) {
            long j = s_index(tasks, n, tasks[i].depends_on[d]);
            if (j >= 0 && ls < lf[j])
                lf[j] = ls;
        }
    }
    size_t len = 0;
    long last = -1;
    for (size_t i = 0; i < n; i++) {
        tasks[i].slack_us = lf[i] - ef[i];
        tasks[i].critical = tasks[i].slack_us == 0;
        if (tasks[i].critical && ef[i] == end && (last < 0 || tasks[i].id < tasks[last].id))
            last = (long)i;
    }
    /* walk back from the critical task that ends last through critical predecessors whose
     * finish it starts at */
    while (last >= 0 && len < n) {
        path[len++] = tasks[last].id;
        int64_t es = ef[last] - s_duration(&tasks[last]);
        long prev = -1;
        for (size_t d = 0; d < tasks[last].n_depends_on; d++) {
            long j = s_index(tasks, n, tasks[last].depends_on[d]);
            if (j >= 0 && tasks[j].critical && ef[j] == es &&
                (prev < 0 || tasks[j].id < tasks[prev].id))
                prev = j;
        }
        last = prev;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int64_t t = path[i];
        path[i] = path[len - 1 - i], path[len - 1 - i] = t;
    }
    free(ef), free(lf), free(order), free(placed);
    return len;
}

TASKD_METHOD(taskd_gantt)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    Sr__Status st;
    Sr__Project *project = taskd_visible_project(call, in->id, "id", 0, &st);
    if (!project)
        return st;
    const char *params[] = {taskd_num(call->arena, project->id)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT " TASKD_TASK_COLS TASK_FROM
        "WHERE t.project_id = $1::bigint AND t.status <> 'cancelled' ORDER BY t.starts_at NULLS "
        "LAST, t.id",
        1, params);
    if (!res)
        return taskd_db_fail(call);
    sr_arena_t *a = call->arena;
    size_t n = (size_t)PQntuples(res);
    Sr__Gantt *out = sr_arena_alloc(a, sizeof *out);
    sr__gantt__init(out);
    out->project_id = project->id;
    out->tasks = sr_arena_alloc(a, (n + 1) * sizeof *out->tasks);
    taskd_cpm_task_t *cpm = sr_arena_alloc(a, (n + 1) * sizeof *cpm);
    for (size_t i = 0; i < n; i++) {
        Sr__Task *t = taskd_task_row(a, res, (int)i);
        Sr__GanttTask *g = sr_arena_alloc(a, sizeof *g);
        sr__gantt_task__init(g);
        g->id = t->id;
        g->title = t->title;
        g->status = t->status;
        g->assignee_id = t->assignee_id;
        g->starts_us = t->starts_us;
        g->due_us = t->due_us;
        g->depends_on = t->depends_on;
        g->n_depends_on = t->n_depends_on;
        out->tasks[out->n_tasks++] = g;
        cpm[i] = (taskd_cpm_task_t){
            t->id, t->starts_us, t->due_us, t->depends_on, t->n_depends_on, 0, 0};
        if (t->starts_us && (!out->starts_us || t->starts_us < out->starts_us))
            out->starts_us = t->starts_us;
        if (t->due_us > out->ends_us)
            out->ends_us = t->due_us;
    }
    PQclear(res);
    out->critical_path = sr_arena_alloc(a, (n + 1) * sizeof *out->critical_path);
    out->n_critical_path = taskd_cpm(cpm, n, out->critical_path);
    for (size_t i = 0; i < n; i++) {
        out->tasks[i]->critical = cpm[i].critical;
        out->tasks[i]->slack_us = cpm[i].slack_us;
    }
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

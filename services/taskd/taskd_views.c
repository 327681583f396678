/* taskd_views - a project's kanban and Gantt chart, and the critical path behind the Gantt.
 *
 * Kanban: one column per task status in life-cycle order, with the column's WIP limit (the
 * project's wip_todo / wip_doing / wip_blocked; 0 = none), its count and its first
 * KANBAN_COLUMN_MAX tasks by priority and due date.
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

#define TASK_FROM         " FROM tasks.tasks t JOIN tasks.projects p ON p.id = t.project_id "
#define KANBAN_COLUMN_MAX 500 /* tasks listed per column (count has them all) */

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
    Sr__Task **tasks = taskd_task_rows(taskd_db(call), a, res, rows);
    PQclear(res);
    if (!tasks)
        return taskd_db_fail(call);
    for (int i = 0; i < rows; i++) {
        Sr__Task *t = tasks[i];
        for (size_t c = 0; c < ncol; c++)
            if (strcmp(t->status, s_columns[c]) == 0) {
                if (out->columns[c]->n_tasks < KANBAN_COLUMN_MAX)
                    out->columns[c]->tasks[out->columns[c]->n_tasks++] = t;
                out->columns[c]->count++;
            }
    }
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static int64_t s_duration(const taskd_cpm_task_t *t)
{
    return t->starts_us && t->due_us && t->due_us > t->starts_us ? t->due_us - t->starts_us : 0;
}

typedef struct {
    int64_t id;
    size_t at;
} slot_t;

static int s_slot_cmp(const void *a, const void *b)
{
    int64_t x = ((const slot_t *)a)->id, y = ((const slot_t *)b)->id;
    return x < y ? -1 : x > y;
}

/* s_index - position of id in tasks through the sorted slots, -1 when it is not there */
static long s_index(const slot_t *slots, size_t n, int64_t id)
{
    slot_t key = {id, 0};
    const slot_t *hit = bsearch(&key, slots, n, sizeof *slots, s_slot_cmp);
    return hit ? (long)hit->at : -1;
}

size_t taskd_cpm(taskd_cpm_task_t *tasks, size_t n, int64_t *path)
{
    if (n == 0)
        return 0;
    slot_t *slots = sr_calloc(n, sizeof *slots);
    for (size_t i = 0; i < n; i++)
        slots[i] = (slot_t){tasks[i].id, i};
    qsort(slots, n, sizeof *slots, s_slot_cmp);
    /* dependencies as positions (a dependency on a task not in the set is ignored), the
     * reverse edges for Kahn's algorithm, and each task's count of dependencies not placed */
    size_t edges = 0;
    for (size_t i = 0; i < n; i++)
        edges += tasks[i].n_depends_on;
    size_t *first = sr_calloc(n + 1, sizeof *first), *next = sr_calloc(edges + 1, sizeof *next);
    long *dep = sr_calloc(edges + 1, sizeof *dep);
    size_t *owner = sr_calloc(edges + 1, sizeof *owner); /* the task an edge belongs to */
    size_t *waiting = sr_calloc(n, sizeof *waiting), *order = sr_calloc(n, sizeof *order);
    int64_t *ef = sr_calloc(n, sizeof *ef), *lf = sr_calloc(n, sizeof *lf);
    size_t *head = sr_calloc(n, sizeof *head); /* 0 = none, else edge index + 1 */
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = e;
        for (size_t d = 0; d < tasks[i].n_depends_on; d++, e++) {
            dep[e] = s_index(slots, n, tasks[i].depends_on[d]);
            owner[e] = i;
            if (dep[e] >= 0) {
                waiting[i]++;
                next[e] = head[dep[e]]; /* the successors of dep[e], as a list through next */
                head[dep[e]] = e + 1;
            }
        }
    }
    first[n] = e;
    size_t placed = 0, done = 0;
    for (size_t i = 0; i < n; i++)
        if (!waiting[i])
            order[placed++] = i;
    while (done < placed) {
        size_t i = order[done++];
        for (size_t k = head[i]; k; k = next[k - 1]) {
            size_t succ = owner[k - 1];
            if (--waiting[succ] == 0)
                order[placed++] = succ;
        }
    }
    /* a cycle after all (it cannot be made through the API): the rest as they come */
    for (size_t i = 0; i < n && placed < n; i++)
        if (waiting[i])
            waiting[i] = 0, order[placed++] = i;
    int64_t end = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        int64_t es = 0;
        for (size_t x = first[i]; x < first[i + 1]; x++)
            if (dep[x] >= 0 && ef[dep[x]] > es)
                es = ef[dep[x]];
        ef[i] = es + s_duration(&tasks[i]);
        if (ef[i] > end)
            end = ef[i];
    }
    for (size_t i = 0; i < n; i++)
        lf[i] = end;
    for (size_t k = n; k-- > 0;) {
        size_t i = order[k];
        int64_t ls = lf[i] - s_duration(&tasks[i]);
        for (size_t x = first[i]; x < first[i + 1]; x++)
            if (dep[x] >= 0 && ls < lf[dep[x]])
                lf[dep[x]] = ls;
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
        for (size_t x = first[last]; x < first[last + 1]; x++) {
            long j = dep[x];
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
    free(slots), free(first), free(next), free(dep), free(owner), free(waiting), free(order);
    free(ef), free(lf), free(head);
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
    Sr__Task **tasks = taskd_task_rows(taskd_db(call), a, res, (int)n);
    PQclear(res);
    if (!tasks)
        return taskd_db_fail(call);
    for (size_t i = 0; i < n; i++) {
        Sr__Task *t = tasks[i];
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
    out->critical_path = sr_arena_alloc(a, (n + 1) * sizeof *out->critical_path);
    out->n_critical_path = taskd_cpm(cpm, n, out->critical_path);
    for (size_t i = 0; i < n; i++) {
        out->tasks[i]->critical = cpm[i].critical;
        out->tasks[i]->slack_us = cpm[i].slack_us;
    }
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

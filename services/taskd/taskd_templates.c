/* taskd_templates - SOP templates (lists of tasks relative to a show's start) and applying one
 * to a show.
 *
 * A template is shared (project_id 0: the three built-in ones, and those HQ makes) or belongs to
 * one project (and so to its region). Steps name earlier steps they wait for, so a template's
 * dependencies never form a cycle. Applying a template to a show creates one task per step:
 * start = show start + offset, due = start + duration, the step's role, priority and checklist,
 * the assignee by role from the show (anchor, field_control) or its crew (the first crew member
 * with that role; operator falls back to the project's owner), and the steps' dependencies
 * between the new tasks. A template applies to a show once: again is 409.
 */
#include "taskd.h"

#include "sr_pbrow.h"

#include "sr_log.h"
#include "sr_perm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_COLS                                                                              \
    "t.id, t.name, t.description, coalesce(t.project_id, 0), coalesce(p.region, ''), t.builtin, "  \
    "t.version, " TASKD_US("t.created_at")
#define TEMPLATE_FROM " FROM tasks.templates t LEFT JOIN tasks.projects p ON p.id = t.project_id "
#define STEP_COLS                                                                                  \
    "key, title, phase, role, offset_minutes, duration_minutes, priority, depends_on, checklist"
#define MAX_STEPS 200

static int s_steps(sr_rpc_call_t *call, Sr__Template *t)
{
    const char *params[] = {taskd_num(call->arena, t->id)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "SELECT " STEP_COLS " FROM tasks.template_steps WHERE "
                                "template_id = $1::bigint ORDER BY pos",
                                1, params);
    if (!res)
        return -1;
    sr_arena_t *a = call->arena;
    t->steps = sr_arena_alloc(a, (size_t)(PQntuples(res) + 1) * sizeof *t->steps);
    for (int i = 0; i < PQntuples(res); i++) {
        Sr__TemplateStep *s = sr_arena_alloc(a, sizeof *s);
        sr__template_step__init(s);
        s->key = taskd_str(a, res, i, 0);
        s->title = taskd_str(a, res, i, 1);
        s->phase = taskd_str(a, res, i, 2);
        s->role = taskd_str(a, res, i, 3);
        s->offset_minutes = taskd_int(res, i, 4);
        s->duration_minutes = taskd_int(res, i, 5);
        s->priority = taskd_str(a, res, i, 6);
        s->depends_on = sr_pbrow_text_list(a, PQgetvalue(res, i, 7), &s->n_depends_on);
        s->checklist = sr_pbrow_text_list(a, PQgetvalue(res, i, 8), &s->n_checklist);
        t->steps[t->n_steps++] = s;
    }
    PQclear(res);
    return 0;
}

static Sr__Template *s_row(sr_arena_t *a, const PGresult *res, int row)
{
    Sr__Template *t = sr_arena_alloc(a, sizeof *t);
    sr__template__init(t);
    t->id = taskd_int(res, row, 0);
    t->name = taskd_str(a, res, row, 1);
    t->description = taskd_str(a, res, row, 2);
    t->project_id = taskd_int(res, row, 3);
    t->region = taskd_str(a, res, row, 4);
    t->builtin = taskd_bool(res, row, 5);
    t->version = taskd_int(res, row, 6);
    t->created_us = taskd_int(res, row, 7);
    return t;
}

/* s_load - a template with its steps, as the caller may see it; NULL with *st */
static Sr__Template *s_load(sr_rpc_call_t *call, int64_t id, Sr__Status *st)
{
    const char *params[] = {taskd_num(call->arena, id)};
    PGresult *res = sr_db_query(
        taskd_db(call), "SELECT " TEMPLATE_COLS TEMPLATE_FROM "WHERE t.id = $1::bigint", 1, params);
    if (!res) {
        *st = taskd_db_fail(call);
        return NULL;
    }
    Sr__Template *t = PQntuples(res) == 1 ? s_row(call->arena, res, 0) : NULL;
    PQclear(res);
    if (!t || (t->project_id && !sr_principal_sees_region(call->principal, t->region))) {
        *st = taskd_not_found(call, "template", id);
        return NULL;
    }
    if (s_steps(call, t) < 0) {
        *st = taskd_db_fail(call);
        return NULL;
    }
    *st = SR__STATUS__STATUS_OK;
    return t;
}

TASKD_METHOD(taskd_template_get)
{
    Sr__Status st;
    Sr__Template *t = s_load(call, ((const Sr__TaskId *)request)->id, &st);
    if (t)
        *reply = &t->base;
    return st;
}

TASKD_METHOD(taskd_template_list)
{
    const Sr__TemplateList *in = (const Sr__TemplateList *)request;
    const Sr__Principal *p = call->principal;
    if (in->project_id) {
        Sr__Status st;
        if (!taskd_visible_project(call, in->project_id, "project_id", 0, &st))
            return st;
    }
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    sr_arena_t *a = call->arena;
    const char *params[] = {
        sr_principal_is_hq(p) ? "t" : "f", sr_db_text_array(a, p->regions, p->n_regions),
        taskd_num(a, in->project_id), taskd_num(a, after), taskd_num(a, limit + 1)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT " TEMPLATE_COLS TEMPLATE_FROM
        "WHERE (t.project_id IS NULL OR $1::bool OR p.region = ANY($2::text[])) AND ($3::bigint "
        "= 0 OR t.project_id IS NULL OR t.project_id = $3::bigint) AND t.id > $4::bigint ORDER "
        "BY t.id LIMIT $5::int",
        5, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__TemplatePage *out = sr_arena_alloc(a, sizeof *out);
    sr__template_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->templates = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *out->templates);
    for (int i = 0; i < rows; i++)
        out->templates[out->n_templates++] = s_row(a, res, i);
    out->next_cursor =
        sr_cursor_after(a, PQntuples(res), limit, rows ? out->templates[rows - 1]->id : 0);
    PQclear(res);
    for (size_t i = 0; i < out->n_templates; i++)
        if (s_steps(call, out->templates[i]) < 0)
            return taskd_db_fail(call);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* s_check_steps - every step valid, keys unique, dependencies on earlier steps only */
static Sr__Status s_check_steps(sr_rpc_call_t *call, Sr__TemplateStep *const *steps, size_t n)
{
    if (n == 0 || n > MAX_STEPS)
        return taskd_bad(call, "steps", "a template has 1 to %d steps", MAX_STEPS);
    for (size_t i = 0; i < n; i++) {
        const Sr__TemplateStep *s = steps[i];
        char field[48];
        snprintf(field, sizeof field, "steps[%zu]", i);
        if (!s->key[0] || strlen(s->key) > 64)
            return taskd_bad(call, field, "%s.key must be 1 to 64 bytes", field);
        for (size_t j = 0; j < i; j++)
            if (strcmp(steps[j]->key, s->key) == 0)
                return taskd_bad(call, field, "%s.key %s is used twice", field, s->key);
        if (!s->title[0] || !taskd_text_ok(s->title, 200))
            return taskd_bad(call, field, "%s.title must be 1 to 200 characters", field);
        if (!taskd_phase_ok(s->phase))
            return taskd_bad(call, field, "%s.phase must be prep, live or review", field);
        if (!taskd_role_ok(s->role))
            return taskd_bad(call, field, "%s.role must be a role name", field);
        if (s->priority[0] && !taskd_priority_ok(s->priority))
            return taskd_bad(call, field, "%s.priority must be P0 to P3", field);
        if (s->duration_minutes < 0 || s->duration_minutes > 525600 ||
            s->offset_minutes < -525600 || s->offset_minutes > 525600)
            return taskd_bad(call, field, "%s: offset and duration must be within a year", field);
        if (s->n_depends_on > MAX_STEPS || s->n_checklist > 100)
            return taskd_bad(call, field, "%s: at most %d dependencies and 100 checklist items",
                             field, MAX_STEPS);
        for (size_t d = 0; d < s->n_depends_on; d++) {
            for (size_t e = 0; e < d; e++)
                if (strcmp(s->depends_on[e], s->depends_on[d]) == 0)
                    return taskd_bad(call, field, "%s waits for %s twice", field, s->depends_on[d]);
            size_t j = 0;
            while (j < i && strcmp(steps[j]->key, s->depends_on[d]) != 0)
                j++;
            if (j == i)
                return taskd_bad(call, field, "%s waits for %s, which is not an earlier step",
                                 field, s->depends_on[d]);
        }
        for (size_t c = 0; c < s->n_checklist; c++)
            if (!s->checklist[c][0] || !taskd_text_ok(s->checklist[c], 500))
                return taskd_bad(call, field, "%s.checklist items are 1 to 500 characters", field);
    }
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    sr_rpc_call_t *call;
    const char *name, *description;
    int64_t project_id;
    Sr__TemplateStep *const *steps;
    size_t n_steps;
    Sr__Template *after;
    Sr__Status st;
} write_t;

/* s_owner_ok - a project template needs that project (visible); a shared one an HQ caller */
static Sr__Status s_owner_ok(sr_rpc_call_t *call, int64_t project_id)
{
    Sr__Status st = SR__STATUS__STATUS_OK;
    if (project_id)
        taskd_visible_project(call, project_id, "project_id", 0, &st);
    else if (!sr_principal_is_hq(call->principal))
        st = sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", "project_id",
                         "only HQ makes shared templates; give a project_id");
    return st;
}

static int s_create_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    sr_arena_t *a = call->arena;
    const char *params[] = {w->name, w->description, taskd_num(a, w->project_id)};
    PGresult *res = sr_db_query(db,
                                "INSERT INTO tasks.templates (name, description, project_id) "
                                "VALUES ($1, $2, nullif($3::bigint, 0)) RETURNING id",
                                3, params);
    if (!res)
        return -1;
    int64_t id = taskd_int(res, 0, 0);
    PQclear(res);
    for (size_t i = 0; i < w->n_steps; i++) {
        const Sr__TemplateStep *s = w->steps[i];
        const char *sp[] = {taskd_num(a, id),
                            taskd_num(a, (int64_t)i + 1),
                            s->key,
                            s->title,
                            s->phase,
                            s->role,
                            taskd_num(a, s->offset_minutes),
                            taskd_num(a, s->duration_minutes),
                            s->priority[0] ? s->priority : "P2",
                            sr_db_text_array(a, s->depends_on, s->n_depends_on),
                            sr_db_text_array(a, s->checklist, s->n_checklist)};
        res = sr_db_query(db,
                          "INSERT INTO tasks.template_steps (template_id, pos, " STEP_COLS
                          ") VALUES ($1::bigint, $2::int, $3, $4, $5, $6, $7::bigint, "
                          "$8::bigint, $9, $10::text[], $11::text[])",
                          11, sp);
        if (!res)
            return -1;
        PQclear(res);
    }
    if (!(w->after = s_load(call, id, &w->st)))
        return -1;
    return 0;
}

static Sr__Status s_create(write_t *w, ProtobufCMessage **reply)
{
    sr_rpc_call_t *call = w->call;
    if (!w->name[0] || !taskd_text_ok(w->name, 200))
        return taskd_bad(call, "name", "name must be 1 to 200 characters");
    if (!taskd_text_ok(w->description, 2000))
        return taskd_bad(call, "description", "description must be at most 2000 characters");
    Sr__Status st = s_owner_ok(call, w->project_id);
    if (st != SR__STATUS__STATUS_OK ||
        (st = s_check_steps(call, w->steps, w->n_steps)) != SR__STATUS__STATUS_OK)
        return st;
    if (sr_db_tx(taskd_db(call), s_create_tx, w) != 0)
        return w->st != SR__STATUS__STATUS_OK ? w->st : taskd_db_fail(call);
    taskd_published(call, "template", w->after->id, w->after->region, NULL, &w->after->base);
    *reply = &w->after->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_template_create)
{
    const Sr__TemplateCreate *in = (const Sr__TemplateCreate *)request;
    write_t w = {call, in->name, in->description, in->project_id, in->steps, in->n_steps};
    return s_create(&w, reply);
}

TASKD_METHOD(taskd_template_copy)
{
    const Sr__TemplateCopy *in = (const Sr__TemplateCopy *)request;
    Sr__Status st;
    Sr__Template *from = s_load(call, in->id, &st);
    if (!from)
        return st;
    write_t w = {call,
                 in->name[0] ? in->name : from->name,
                 from->description,
                 in->project_id,
                 from->steps,
                 from->n_steps};
    return s_create(&w, reply);
}

static int s_delete_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    const char *params[] = {taskd_num(w->call->arena, w->after->id)};
    PGresult *res = sr_db_query(db, "DELETE FROM tasks.templates WHERE id = $1::bigint", 1, params);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

TASKD_METHOD(taskd_template_delete)
{
    Sr__Status st;
    Sr__Template *t = s_load(call, ((const Sr__TaskId *)request)->id, &st);
    if (!t)
        return st;
    if (t->builtin)
        return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "builtin", "id",
                           "template %lld is built in; copy it to change it", (long long)t->id);
    if ((st = s_owner_ok(call, t->project_id)) != SR__STATUS__STATUS_OK)
        return st;
    write_t w = {.call = call, .after = t};
    if (sr_db_tx(taskd_db(call), s_delete_tx, &w) != 0)
        return taskd_db_fail(call);
    taskd_published(call, "template", t->id, t->region, &t->base, NULL);
    *reply = &t->base;
    return SR__STATUS__STATUS_OK;
}

/* --- applying a template to a show ----------------------------------------------------------- */

typedef struct {
    sr_rpc_call_t *call;
    const Sr__TemplateApply *in;
    Sr__Template *tpl;
    Sr__Project *project;
    Sr__TaskPage *out;
    const char *region;
    Sr__Status st;
} apply_t;

/* s_assignee - who does a step of role on show: the show's anchor or field controller, the
 * first crew member with the role, the project's owner for operator; 0 = nobody yet */
static int64_t s_assignee(const PGresult *show, const Sr__Project *project, const char *role)
{
    if (strcmp(role, "anchor") == 0)
        return taskd_int(show, 0, 1);
    if (strcmp(role, "field_control") == 0)
        return taskd_int(show, 0, 2);
    for (int i = 0; i < PQntuples(show); i++)
        if (!PQgetisnull(show, i, 3) && strcmp(PQgetvalue(show, i, 3), role) == 0)
            return taskd_int(show, i, 4);
    return strcmp(role, "operator") == 0 ? project->owner_id : 0;
}

static int s_apply_tx(sr_db_t *db, void *arg)
{
    apply_t *w = arg;
    sr_rpc_call_t *call = w->call;
    sr_arena_t *a = call->arena;
    const char *sp[] = {taskd_num(a, w->in->id)};
    PGresult *show =
        sr_db_query(db,
                    "SELECT s.project_id, s.anchor_id, s.controller_id, c.role, c.user_id, "
                    "(extract(epoch FROM s.starts_at) * 1000000)::bigint, s.status FROM "
                    "tasks.shows s LEFT JOIN "
                    "tasks.show_crew c ON c.show_id = s.id WHERE s.id = $1::bigint ORDER BY c.pos",
                    1, sp);
    if (!show) {
        w->st = taskd_db_fail(call);
        return -1;
    }
    if (PQntuples(show) == 0) {
        PQclear(show);
        w->st = taskd_not_found(call, "show", w->in->id);
        return -1;
    }
    w->project = taskd_visible_project(call, taskd_int(show, 0, 0), "id", 1, &w->st);
    if (!w->project) {
        PQclear(show);
        if (w->st == SR__STATUS__STATUS_NOT_FOUND)
            w->st = taskd_not_found(call, "show", w->in->id);
        return -1;
    }
    const char *show_status = PQgetvalue(show, 0, 6);
    if (strcmp(show_status, "scheduled") != 0 && strcmp(show_status, "live") != 0) {
        w->st = sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "show_closed", "id",
                            "show %lld is %s; templates apply to scheduled and live shows",
                            (long long)w->in->id, show_status);
        PQclear(show);
        return -1;
    }
    if (strcmp(w->project->status, "closed") == 0 || strcmp(w->project->status, "cancelled") == 0) {
        PQclear(show);
        w->st = sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "project_closed", "id",
                            "project %lld is %s; its shows cannot change",
                            (long long)w->project->id, w->project->status);
        return -1;
    }
    if (w->tpl->project_id && w->tpl->project_id != w->project->id) {
        PQclear(show);
        w->st = taskd_bad(call, "template_id",
                          "template %lld belongs to project %lld; copy it to project %lld first",
                          (long long)w->tpl->id, (long long)w->tpl->project_id,
                          (long long)w->project->id);
        return -1;
    }
    if ((w->st = taskd_wip_check(call, w->project, "todo", (int)w->tpl->n_steps)) !=
        SR__STATUS__STATUS_OK) {
        PQclear(show);
        return -1;
    }
    const char *once[] = {sp[0], taskd_num(a, w->tpl->id)};
    PGresult *mark = sr_db_query(db,
                                 "INSERT INTO tasks.show_templates (show_id, template_id) VALUES "
                                 "($1::bigint, $2::bigint) ON CONFLICT DO NOTHING",
                                 2, once);
    int first = mark && atoi(PQcmdTuples(mark)) == 1;
    PQclear(mark);
    if (!first) {
        PQclear(show);
        w->st =
            mark ? sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "already_applied", "template_id",
                               "template %lld is applied to show %lld already; it applies "
                               "to a show once",
                               (long long)w->tpl->id, (long long)w->in->id)
                 : taskd_db_fail(call);
        return -1;
    }
    int64_t show_start = taskd_int(show, 0, 5);
    size_t n = w->tpl->n_steps;
    int64_t *ids = sr_arena_alloc(a, (n + 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        const Sr__TemplateStep *s = w->tpl->steps[i];
        int64_t start = show_start + s->offset_minutes * 60000000LL;
        const char *params[] = {taskd_num(a, w->project->id),
                                sp[0],
                                s->title,
                                s->phase,
                                taskd_num(a, s_assignee(show, w->project, s->role)),
                                s->role,
                                s->priority,
                                taskd_num(a, start),
                                taskd_num(a, start + s->duration_minutes * 60000000LL),
                                sr_arena_printf(a, "%.17g", s->duration_minutes / 60.0),
                                taskd_num(a, w->tpl->id),
                                s->key,
                                sr_db_text_array(a, s->checklist, s->n_checklist)};
        PGresult *res = sr_db_query(
            db,
            "WITH t AS (INSERT INTO tasks.tasks (project_id, show_id, title, phase, assignee_id, "
            "role, priority, starts_at, due_at, estimate_hours, template_id, template_key) VALUES "
            "($1::bigint, $2::bigint, $3, $4, $5::bigint, $6, $7, " TASKD_TS("$8") ", " TASKD_TS(
                "$9") ", $10::float8, $11::bigint, $12) RETURNING id), c AS (INSERT INTO "
                      "tasks.task_checklist (task_id, "
                      "text) SELECT t.id, item FROM t, unnest($13::text[]) WITH ORDINALITY AS "
                      "u (item, n) ORDER BY n) SELECT id FROM t",
            13, params);
        if (!res) {
            PQclear(show);
            w->st = taskd_db_fail(call);
            return -1;
        }
        ids[i] = taskd_int(res, 0, 0);
        PQclear(res);
    }
    PQclear(show);
    for (size_t i = 0; i < n; i++) {
        const Sr__TemplateStep *s = w->tpl->steps[i];
        for (size_t d = 0; d < s->n_depends_on; d++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(w->tpl->steps[j]->key, s->depends_on[d]) == 0) {
                    const char *dp[] = {taskd_num(a, ids[i]), taskd_num(a, ids[j])};
                    PGresult *res = sr_db_query(db,
                                                "INSERT INTO tasks.task_deps (task_id, "
                                                "depends_on) VALUES ($1::bigint, $2::bigint)",
                                                2, dp);
                    if (!res) {
                        w->st = taskd_db_fail(call);
                        return -1;
                    }
                    PQclear(res);
                }
    }
    w->out = sr_arena_alloc(a, sizeof *w->out);
    sr__task_page__init(w->out);
    w->out->next_cursor = "";
    /* the ids grow with the steps, so the page lists the tasks in step order */
    size_t found;
    w->out->tasks = taskd_tasks_fetch(db, a, ids, n, &found);
    if (!w->out->tasks || found != n) {
        w->st = taskd_db_fail(call);
        return -1;
    }
    w->out->n_tasks = n;
    for (size_t i = 0; i < n; i++)
        if (taskd_event(call, "task.changed", &w->out->tasks[i]->base) < 0) {
            w->st = taskd_db_fail(call);
            return -1;
        }
    return 0;
}

TASKD_METHOD(taskd_template_apply)
{
    apply_t w = {.call = call, .in = (const Sr__TemplateApply *)request};
    if (!(w.tpl = s_load(call, w.in->template_id, &w.st))) {
        if (call->error)
            call->error->field = "template_id";
        return w.st;
    }
    if (sr_db_tx(taskd_db(call), s_apply_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    sr_outbox_pub_flush(sr_service_outbox(taskd_of(call)->svc));
    char id[48];
    snprintf(id, sizeof id, "%lld", (long long)w.in->id);
    sr_rpc_audit(call, "show_template", id, w.project->region, NULL, &w.out->base);
    sr_info("template_applied", "show=%lld template=%lld tasks=%zu", (long long)w.in->id,
            (long long)w.tpl->id, w.out->n_tasks);
    *reply = &w.out->base;
    return SR__STATUS__STATUS_OK;
}

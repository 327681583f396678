/* taskd_recurring - recurring tasks: a rule (daily, or weekly on given weekdays, at a time of
 * day in SR_TASK_TIMEZONE) and its occurrences, generated SR_TASK_RECURRING_HORIZON days ahead.
 *
 * Generation is one INSERT ... SELECT over the days of the horizon with ON CONFLICT
 * (recurring_id, occurs_on) DO NOTHING, so running it again - every minute from the cron, after
 * a restart, from two instances - creates nothing twice. Occurrences before the rule was made
 * are not created; ones a stopped taskd missed are, once it runs again, from today on (days
 * already past stay missed). Closed and cancelled projects get no new occurrences, and
 * occurrences are not held back by the kanban's todo limit. Each new task goes out as
 * task.changed.
 */
#include "taskd.h"

#include "sr_pbrow.h"

#include "sr_arena.h"
#include "sr_log.h"
#include "sr_perm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULE_COLS                                                                                  \
    "r.id, r.project_id, p.region, r.title, r.phase, r.role, r.assignee_id, r.priority, "          \
    "r.weekdays, r.at_minute, r.duration_minutes, r.starts_on::text, coalesce(r.ends_on::text, "   \
    "''), r.version, " TASKD_US("r.created_at")
#define RULE_FROM " FROM tasks.recurring r JOIN tasks.projects p ON p.id = r.project_id "

static Sr__RecurringRule *s_row(sr_arena_t *a, const PGresult *res, int row)
{
    Sr__RecurringRule *r = sr_arena_alloc(a, sizeof *r);
    sr__recurring_rule__init(r);
    r->id = taskd_int(res, row, 0);
    r->project_id = taskd_int(res, row, 1);
    r->region = taskd_str(a, res, row, 2);
    r->title = taskd_str(a, res, row, 3);
    r->phase = taskd_str(a, res, row, 4);
    r->role = taskd_str(a, res, row, 5);
    r->assignee_id = taskd_int(res, row, 6);
    r->priority = taskd_str(a, res, row, 7);
    size_t n;
    char **days = sr_pbrow_text_list(a, PQgetvalue(res, row, 8), &n);
    r->weekdays = sr_arena_alloc(a, (n + 1) * sizeof *r->weekdays);
    for (size_t i = 0; i < n; i++)
        r->weekdays[r->n_weekdays++] = (int32_t)strtol(days[i], NULL, 10);
    r->at_minute = (int32_t)taskd_int(res, row, 9);
    r->duration_minutes = (int32_t)taskd_int(res, row, 10);
    r->starts_on = taskd_str(a, res, row, 11);
    r->ends_on = taskd_str(a, res, row, 12);
    r->version = taskd_int(res, row, 13);
    r->created_us = taskd_int(res, row, 14);
    return r;
}

/* s_date_ok - YYYY-MM-DD by shape; PostgreSQL judges the calendar */
static int s_date_ok(const char *d)
{
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9'))
            return 0;
    return 1;
}

static Sr__Status s_check(sr_rpc_call_t *call, const Sr__RecurringRule *in)
{
    if (in->id || in->version || in->created_us || in->region[0])
        return taskd_bad(call,
                         in->id          ? "id"
                         : in->version   ? "version"
                         : in->region[0] ? "region"
                                         : "created_us",
                         "id, region, version and created_us are set by taskd");
    if (!in->title[0] || !taskd_text_ok(in->title, 200))
        return taskd_bad(call, "title", "title must be 1 to 200 characters");
    if (!taskd_phase_ok(in->phase[0] ? in->phase : "prep"))
        return taskd_bad(call, "phase", "phase must be prep, live or review");
    if (!taskd_role_ok(in->role))
        return taskd_bad(call, "role", "role must be a role name");
    if (in->priority[0] && !taskd_priority_ok(in->priority))
        return taskd_bad(call, "priority", "priority must be P0, P1, P2 or P3");
    if (in->n_weekdays > 7)
        return taskd_bad(call, "weekdays", "at most seven weekdays");
    for (size_t i = 0; i < in->n_weekdays; i++)
        if (in->weekdays[i] < 1 || in->weekdays[i] > 7)
            return taskd_bad(call, "weekdays", "weekdays are 1 (Monday) to 7 (Sunday)");
    if (in->at_minute < 0 || in->at_minute > 1439)
        return taskd_bad(call, "at_minute", "at_minute is 0 to 1439 (minutes after midnight)");
    if (in->duration_minutes < 0 || in->duration_minutes > 10080)
        return taskd_bad(call, "duration_minutes", "duration_minutes is 0 to 10080");
    if (!s_date_ok(in->starts_on))
        return taskd_bad(call, "starts_on", "starts_on must be a date YYYY-MM-DD");
    if (in->ends_on[0] && (!s_date_ok(in->ends_on) || strcmp(in->ends_on, in->starts_on) < 0))
        return taskd_bad(call, "ends_on",
                         "ends_on must be a date YYYY-MM-DD, not before starts_on");
    if (in->assignee_id < 0)
        return taskd_bad(call, "assignee_id", "assignee_id must not be negative");
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    sr_rpc_call_t *call;
    const Sr__RecurringRule *in;
    Sr__RecurringRule *after;
    Sr__Status st;
} write_t;

static int s_create_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    const Sr__RecurringRule *in = w->in;
    Sr__Project *p = taskd_visible_project(call, in->project_id, "project_id", 1, &w->st);
    if (!p)
        return -1;
    sr_arena_t *a = call->arena;
    char *days = sr_arena_alloc(a, in->n_weekdays * 3 + 3);
    size_t used = 0;
    days[used++] = '{';
    for (size_t i = 0; i < in->n_weekdays; i++)
        used += (size_t)sprintf(days + used, "%s%d", i ? "," : "", (int)in->weekdays[i]);
    days[used++] = '}', days[used] = '\0';
    const char *params[] = {taskd_num(a, p->id),
                            in->title,
                            in->phase[0] ? in->phase : "prep",
                            in->role,
                            taskd_num(a, in->assignee_id),
                            in->priority[0] ? in->priority : "P2",
                            days,
                            taskd_num(a, in->at_minute),
                            taskd_num(a, in->duration_minutes),
                            in->starts_on,
                            in->ends_on[0] ? in->ends_on : NULL};
    PGresult *res = sr_db_query(
        db,
        "WITH r AS (INSERT INTO tasks.recurring (project_id, title, phase, role, assignee_id, "
        "priority, weekdays, at_minute, duration_minutes, starts_on, ends_on) VALUES "
        "($1::bigint, $2, $3, $4, $5::bigint, $6, $7::int[], $8::int, $9::int, $10::date, "
        "$11::date) RETURNING *) SELECT " RULE_COLS " FROM r JOIN tasks.projects p ON p.id = "
        "r.project_id",
        11, params);
    if (!res) {
        w->st = taskd_db_fail(call);
        return -1;
    }
    w->after = s_row(a, res, 0);
    PQclear(res);
    return 0;
}

TASKD_METHOD(taskd_recurring_create)
{
    const Sr__RecurringRule *in = (const Sr__RecurringRule *)request;
    Sr__Status st = s_check(call, in);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    write_t w = {.call = call, .in = in};
    if (sr_db_tx(taskd_db(call), s_create_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)w.after->id);
    sr_rpc_audit(call, "recurring", id, w.after->region, NULL, &w.after->base);
    if (taskd_recurring_generate(taskd_of(call), w.after->id, call->trace_id) < 0)
        sr_warn("recurring_generate_later", "rule=%lld", (long long)w.after->id);
    *reply = &w.after->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_recurring_list)
{
    const Sr__RecurringList *in = (const Sr__RecurringList *)request;
    Sr__Status st;
    if (!taskd_visible_project(call, in->project_id, "project_id", 0, &st))
        return st;
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    const char *params[] = {taskd_num(call->arena, in->project_id), taskd_num(call->arena, after),
                            taskd_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "SELECT " RULE_COLS RULE_FROM "WHERE r.project_id = $1::bigint "
                                "AND r.id > $2::bigint ORDER BY r.id LIMIT $3::int",
                                3, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__RecurringPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__recurring_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->rules = sr_arena_alloc(call->arena, (size_t)(rows + 1) * sizeof *out->rules);
    for (int i = 0; i < rows; i++)
        out->rules[out->n_rules++] = s_row(call->arena, res, i);
    out->next_cursor =
        sr_cursor_after(call->arena, PQntuples(res), limit, rows ? out->rules[rows - 1]->id : 0);
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_recurring_delete)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    const char *params[] = {taskd_num(call->arena, in->id)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "SELECT " RULE_COLS RULE_FROM "WHERE r.id = $1::bigint", 1, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__RecurringRule *r = PQntuples(res) == 1 ? s_row(call->arena, res, 0) : NULL;
    PQclear(res);
    if (!r || !sr_principal_sees_region(call->principal, r->region))
        return taskd_not_found(call, "recurring rule", in->id);
    /* the occurrences made so far stay, as tasks of their own */
    res =
        sr_db_query(taskd_db(call), "DELETE FROM tasks.recurring WHERE id = $1::bigint", 1, params);
    if (!res)
        return taskd_db_fail(call);
    PQclear(res);
    sr_rpc_audit(call, "recurring", params[0], r->region, &r->base, NULL);
    *reply = &r->base;
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    taskd_t *self;
    int64_t rule_id;
    const char *trace_id;
    sr_arena_t *arena;
    int created;
} generate_t;

static int s_generate_tx(sr_db_t *db, void *arg)
{
    generate_t *g = arg;
    const char *params[] = {taskd_num(g->arena, g->rule_id), g->self->cfg->timezone,
                            taskd_num(g->arena, g->self->cfg->horizon_days)};
    PGresult *res = sr_db_query(
        db,
        "INSERT INTO tasks.tasks (project_id, title, phase, role, assignee_id, priority, "
        "starts_at, due_at, estimate_hours, recurring_id, occurs_on) SELECT r.project_id, "
        "r.title, r.phase, r.role, r.assignee_id, r.priority, o.at, o.at + r.duration_minutes * "
        "interval '1 minute', r.duration_minutes / 60.0, r.id, o.day FROM tasks.recurring r JOIN "
        "tasks.projects p ON p.id = r.project_id CROSS JOIN LATERAL (SELECT d::date AS day, "
        "(d::date + r.at_minute * interval '1 minute') AT TIME ZONE $2 AS at FROM "
        "generate_series(greatest(r.starts_on, (now() AT TIME ZONE $2)::date), "
        "least(coalesce(r.ends_on, 'infinity'::date), (now() AT TIME ZONE $2)::date + "
        "$3::int), interval '1 day') AS d) o WHERE ($1::bigint = 0 OR r.id = $1::bigint) AND "
        "p.status NOT IN ('closed', 'cancelled') AND (cardinality(r.weekdays) = 0 OR "
        "extract(isodow FROM o.day)::int = ANY(r.weekdays)) AND o.at >= r.created_at ON "
        "CONFLICT (recurring_id, occurs_on) DO NOTHING RETURNING id",
        3, params);
    if (!res)
        return -1;
    size_t n, found;
    int64_t *ids = taskd_result_ids(g->arena, res, &n);
    PQclear(res);
    Sr__Task **made = n ? taskd_tasks_fetch(db, g->arena, ids, n, &found) : NULL;
    if (n && (!made || found != n))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (taskd_event_put(g->self, "task.changed", &made[i]->base, g->trace_id) < 0)
            return -1;
    g->created = (int)n;
    return 0;
}

int taskd_recurring_generate(taskd_t *self, int64_t rule_id, const char *trace_id)
{
    generate_t g = {self, rule_id, trace_id, sr_arena_new(16384), 0};
    int rc = sr_db_tx(sr_service_db(self->svc), s_generate_tx, &g);
    sr_arena_destroy(&g.arena);
    if (rc != 0) {
        sr_error("recurring_generate_failed", "rule=%lld err=\"%s\"", (long long)rule_id,
                 sr_db_error(sr_service_db(self->svc)));
        return -1;
    }
    if (g.created) {
        sr_counter_add(self->generated, (uint64_t)g.created);
        sr_info("recurring_generated", "rule=%lld tasks=%d", (long long)rule_id, g.created);
        sr_outbox_pub_flush(sr_service_outbox(self->svc));
    }
    return g.created;
}

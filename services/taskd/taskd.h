/* taskd - campaigns (projects), shows (场次), tasks, SOP templates, recurring tasks, reminders.
 *
 * sr-taskd owns schema tasks and answers the gateway's /api/v1/projects, /shows, /tasks and
 * /templates routes over RPC (methods tasks.*) on SR_TASK_RPC_BIND, from the loop thread, on the
 * service's own connection. Every method checks the caller's principal itself: the permission
 * in the method table (projects.read, projects.plan, tasks.work), then the region of the
 * project the record belongs to - a record of a region the caller does not see is answered not
 * found. Crew roles (tasks.work without projects.plan) may change only the status, checklist and
 * comments of tasks assigned to them. Every change is written with its outbox event
 * (project.changed, session.changed / session.ended, task.changed) in one transaction and
 * handed to the gateway's audit log (sr_rpc_audit). The cron generates recurring tasks ahead
 * and publishes task.due_soon and task.overdue once per task per due date and state.
 *
 * Files: main.c (the definition), taskd_daemon.c (settings, init, cron, the RPC server),
 * taskd_rpc.c (the method table and what the methods share: loading a record the caller may
 * see, errors, events), taskd_lifecycle.c (the status machines), taskd_projects.c,
 * taskd_shows.c (overlap checks), taskd_tasks.c (tasks, checklists, comments, dependencies,
 * rescheduling), taskd_views.c (kanban, Gantt and the critical path), taskd_templates.c (SOP
 * templates and applying them to a show), taskd_recurring.c, taskd_reminders.c,
 * migrations/001_tasks.sql, 002_builtin_templates.sql.
 */
#ifndef TASKD_H
#define TASKD_H

#include "rpc.pb-c.h"
#include "sr_cursor.h"
#include "sr_rpc.h"
#include "sr_service.h"
#include "tasks.pb-c.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *rpc_bind;         /* SR_TASK_RPC_BIND */
    int64_t due_soon_ms;    /* SR_TASK_DUE_SOON */
    int64_t horizon_days;   /* SR_TASK_RECURRING_HORIZON */
    char *timezone;         /* SR_TASK_TIMEZONE */
    int64_t reminder_batch; /* SR_TASK_REMINDER_BATCH */
    int64_t read_workers;   /* SR_TASK_READ_WORKERS */
} taskd_config_t;

extern const sr_config_entry_t taskd_config[];
extern const sr_migration_t taskd_migrations[];

typedef struct taskd_t taskd_t;

/* what a method runs with (call->state): the daemon, and the connection of the thread it runs
 * on - the service's own on the loop thread, a read worker's own on a worker */
typedef struct {
    taskd_t *self;
    sr_db_t *db;
} taskd_ctx_t;

struct taskd_t {
    sr_service_t *svc;
    const taskd_config_t *cfg;
    taskd_ctx_t main; /* the loop thread's context */
    sr_rpc_server_t *server;
    sr_counter_t *due_soon, *overdue, *generated;
    int64_t recurring_ms; /* monotonic time of the last recurring run */
};

int taskd_check_config(const void *config, char *err, size_t errlen);
int taskd_init(sr_service_t *svc);
void taskd_cron(sr_service_t *svc);
void taskd_fini(sr_service_t *svc);

/* --- taskd_lifecycle: the status machines ------------------------------------------------- */

typedef enum { TASKD_PROJECT = 0, TASKD_SHOW, TASKD_TASK } taskd_kind_t;

/* taskd_status_known - 1 when status is one of kind's states */
int taskd_status_known(taskd_kind_t kind, const char *status);
/* taskd_transition_ok - 1 when kind may go from one status to another (the same is no move) */
int taskd_transition_ok(taskd_kind_t kind, const char *from, const char *to);
/* taskd_statuses - kind's states, in life-cycle order, for messages: "todo, doing, ..." */
const char *taskd_statuses(taskd_kind_t kind);
/* taskd_next_statuses - where kind may go from status, in arena: "planning or cancelled" */
const char *taskd_next_statuses(sr_arena_t *arena, taskd_kind_t kind, const char *from);
/* taskd_status_move - OK when record id of kind may go from one status to another, else the
 * answer: 400 for a status that does not exist, 409 naming the moves there are */
Sr__Status taskd_status_move(sr_rpc_call_t *call, taskd_kind_t kind, int64_t id, const char *from,
                             const char *to);

/* --- taskd_rpc: what the methods share ------------------------------------------------------ */

/* SQL fragments: microseconds <-> timestamptz, exact */
#define TASKD_US(col) "coalesce((extract(epoch FROM " col ") * 1000000)::bigint, 0)"
#define TASKD_TS(p)   "('epoch'::timestamptz + " p "::bigint * interval '1 microsecond')"
#define TASKD_TSN(p)  "CASE WHEN " p "::bigint = 0 THEN NULL ELSE " TASKD_TS(p) " END"

sr_db_t *taskd_db(sr_rpc_call_t *call);
taskd_t *taskd_of(sr_rpc_call_t *call);
const char *taskd_num(sr_arena_t *arena, int64_t v);
int64_t taskd_int(const PGresult *res, int row, int col);
char *taskd_str(sr_arena_t *arena, const PGresult *res, int row, int col);
int taskd_bool(const PGresult *res, int row, int col);

/* taskd_db_fail - the answer to a failed statement: a violated check is the caller's bad
 * input (400), anything else the database's trouble (503); logged either way */
Sr__Status taskd_db_fail(sr_rpc_call_t *call);
Sr__Status taskd_bad(sr_rpc_call_t *call, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
Sr__Status taskd_not_found(sr_rpc_call_t *call, const char *what, int64_t id);
Sr__Status taskd_stale(sr_rpc_call_t *call, const char *what, int64_t id, int64_t have,
                       int64_t sent);
/* the latest time taskd takes, 9999-12-31T23:59:59.999999Z, so that offsets cannot overflow */
#define TASKD_US_MAX 253402300799999999LL
/* taskd_time_ok - 1 for 0 (not set) or a time from the epoch to TASKD_US_MAX */
int taskd_time_ok(int64_t us);
/* taskd_text_ok - 1 when s is at most max characters (the lengths the tables check) */
int taskd_text_ok(const char *s, size_t max);
int taskd_has_mask(char *const *mask, size_t n, const char *field);
/* TASKD_PICK - in an update: the request's value when its update_mask names field, else the
 * record's (mask and nm in scope) */
#define TASKD_PICK(field, from_in, from_b) (taskd_has_mask(mask, nm, field) ? (from_in) : (from_b))
/* taskd_can_plan - 1 when the caller plans (projects.plan), not only works on own tasks */
int taskd_can_plan(const Sr__Principal *p);
/* taskd_event - write topic with payload to the outbox in the open transaction; 0 ok */
int taskd_event(sr_rpc_call_t *call, const char *topic, const ProtobufCMessage *payload)
    __attribute__((warn_unused_result));
/* taskd_event_put - the same outside a call (the cron), with its own trace id or NULL */
int taskd_event_put(taskd_t *self, const char *topic, const ProtobufCMessage *payload,
                    const char *trace_id) __attribute__((warn_unused_result));
/* taskd_published - after a commit: send the outbox now and record the audit */
void taskd_published(sr_rpc_call_t *call, const char *entity, int64_t id, const char *region,
                     const ProtobufCMessage *before, const ProtobufCMessage *after);
/* taskd_cursor_id - sr_cursor_id, or -1 with the call failed (400 naming the cursor) */
int taskd_cursor_id(sr_rpc_call_t *call, const char *cursor, int64_t *id)
    __attribute__((warn_unused_result));

/* taskd_prepare - the statements of the hot reads on a connection (kept across reconnects) */
int taskd_prepare(sr_db_t *db) __attribute__((warn_unused_result));
#define TASKD_SQL_PROJECT       "taskd_project"
#define TASKD_SQL_PROJECT_TASKS "taskd_project_tasks"
#define TASKD_SQL_CHECKLISTS    "taskd_checklists"
#define TASKD_SQL_DEPENDENCIES  "taskd_dependencies"
#define TASKD_SQL_TASKS         "taskd_tasks"

/* the project (region, wip limits, auto scheduling) a record belongs to, for checks */
Sr__Project *taskd_project_load(sr_rpc_call_t *call, int64_t id, int lock, int *failed);
Sr__Project *taskd_project_row(sr_arena_t *arena, const PGresult *res, int row);
#define TASKD_PROJECT_COLS                                                                         \
    "p.id, p.name, p.brand, p.region, p.platforms, " TASKD_US("p.starts_at") ", " TASKD_US(        \
        "p.ends_at") ", p.owner_id, p.gmv_target_fen, p.reach_target, p.follower_target, "         \
                     "p.budget_fen, p.status, p.auto_schedule, p.wip_todo, p.wip_doing, "          \
                     "p.wip_blocked, "                                                             \
                     "p.version, " TASKD_US("p.created_at") ", " TASKD_US("p.updated_at")
/* taskd_visible_project - load project id (the request's field, for the error) for a caller:
 * NULL with the reply's status in *st (404 when it does not exist or is of another region,
 * 503) */
Sr__Project *taskd_visible_project(sr_rpc_call_t *call, int64_t id, const char *field, int lock,
                                   Sr__Status *st);

/* --- the methods, by file (each a sr_rpc_handler_fn) ---------------------------------------- */

#define TASKD_METHOD(name)                                                                         \
    Sr__Status name(sr_rpc_call_t *call, const ProtobufCMessage *request, ProtobufCMessage **reply)

TASKD_METHOD(taskd_project_create);
TASKD_METHOD(taskd_project_get);
TASKD_METHOD(taskd_project_list);
TASKD_METHOD(taskd_project_update);

TASKD_METHOD(taskd_show_create);
TASKD_METHOD(taskd_show_get);
TASKD_METHOD(taskd_show_list);
TASKD_METHOD(taskd_show_update);

TASKD_METHOD(taskd_task_create);
TASKD_METHOD(taskd_task_get);
TASKD_METHOD(taskd_task_list);
TASKD_METHOD(taskd_task_mine);
TASKD_METHOD(taskd_task_update);
TASKD_METHOD(taskd_dependency_add);
TASKD_METHOD(taskd_dependency_remove);
TASKD_METHOD(taskd_checklist_add);
TASKD_METHOD(taskd_checklist_update);
TASKD_METHOD(taskd_comment_add);
TASKD_METHOD(taskd_comment_list);

TASKD_METHOD(taskd_kanban);
TASKD_METHOD(taskd_gantt);

TASKD_METHOD(taskd_template_create);
TASKD_METHOD(taskd_template_get);
TASKD_METHOD(taskd_template_list);
TASKD_METHOD(taskd_template_copy);
TASKD_METHOD(taskd_template_delete);
TASKD_METHOD(taskd_template_apply);

TASKD_METHOD(taskd_recurring_create);
TASKD_METHOD(taskd_recurring_list);
TASKD_METHOD(taskd_recurring_delete);

extern const sr_rpc_method_t taskd_methods[];
extern const size_t taskd_method_count;

/* --- shared by tasks, views and templates --------------------------------------------------- */

/* the columns of a task row as taskd_task_rows reads them; FROM tasks.tasks t JOIN
 * tasks.projects p ON p.id = t.project_id */
#define TASKD_TASK_COLS                                                                            \
    "t.id, t.project_id, coalesce(t.show_id, 0), p.region, t.title, t.description, t.phase, "      \
    "t.assignee_id, t.role, t.priority, " TASKD_US("t.starts_at") ", " TASKD_US(                   \
        "t.due_at") ", t.estimate_hours, t.status, coalesce(t.template_id, 0), "                   \
                    "coalesce(t.recurring_id, 0), "                                                \
                    "t.version, " TASKD_US("t.created_at") ", " TASKD_US("t.updated_at")
/* taskd_task_rows - the first rows of res as tasks, with their checklists and dependencies
 * (two statements for all of them, on db); NULL when those failed */
Sr__Task **taskd_task_rows(sr_db_t *db, sr_arena_t *arena, const PGresult *res, int rows);
/* taskd_task_load - one task by id with its project, in the open transaction or not; NULL when
 * unknown, of a region the caller does not see, or *failed */
Sr__Task *taskd_task_load(sr_rpc_call_t *call, int64_t id, int *failed);
/* taskd_task_fetch - one task whoever asks (the cron's work); NULL when unknown or *failed */
Sr__Task *taskd_task_fetch(sr_db_t *db, sr_arena_t *arena, int64_t id, int *failed);
/* taskd_tasks_fetch - the tasks of ids whoever asks, by id, with checklists and dependencies:
 * three statements however many; *found how many exist; NULL on a database failure */
Sr__Task **taskd_tasks_fetch(sr_db_t *db, sr_arena_t *arena, const int64_t *ids, size_t n,
                             size_t *found);
/* taskd_result_ids - column 0 of every row of res (RETURNING id) as ids, in arena */
int64_t *taskd_result_ids(sr_arena_t *arena, const PGresult *res, size_t *n);
/* taskd_wip_check - 409 when moving one more task into status would pass the project's limit
 * (the project row is locked by the caller); OK otherwise */
Sr__Status taskd_wip_check(sr_rpc_call_t *call, const Sr__Project *project, const char *status,
                           int adding);
/* taskd_role_ok, taskd_phase_ok, taskd_priority_ok - input checks the tables repeat */
int taskd_role_ok(const char *role);
int taskd_phase_ok(const char *phase);
int taskd_priority_ok(const char *priority);

/* --- taskd_views: the critical path (pure, unit-tested) ------------------------------------- */

typedef struct {
    int64_t id, starts_us, due_us;
    const int64_t *depends_on;
    size_t n_depends_on;
    /* out */
    int critical;
    int64_t slack_us;
} taskd_cpm_task_t;

/* taskd_cpm - earliest/latest finish over finish-to-start dependencies with each task's
 * duration (due - start; 0 when either is unset); sets critical and slack_us, and writes the
 * critical chain's ids, first to last, into path (capacity n), returning its length */
size_t taskd_cpm(taskd_cpm_task_t *tasks, size_t n, int64_t *path);

/* --- taskd_recurring, taskd_reminders: the cron's work ------------------------------------- */

/* taskd_recurring_generate - create the occurrences of rule (0 = every rule) up to the horizon
 * that do not exist yet; the number created, -1 on a database failure */
int taskd_recurring_generate(taskd_t *self, int64_t rule_id, const char *trace_id);
/* taskd_reminders_run - publish task.due_soon and task.overdue for tasks that became so */
void taskd_reminders_run(taskd_t *self);

#endif

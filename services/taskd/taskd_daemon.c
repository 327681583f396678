/* taskd_daemon - taskd's settings and its life: the RPC server init opens (with
 * SR_TASK_READ_WORKERS threads for the reads, each with its own connection), and the cron that
 * sends reminders every tick and generates recurring tasks once a minute (and at start-up).
 */
#include "taskd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"
#include "sr_perm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field)         offsetof(taskd_config_t, field)
#define RECURRING_EVERY_MS 60000

const sr_config_entry_t taskd_config[] = {
    {"SR_TASK_RPC_BIND", SR_CFG_STR, "tcp://127.0.0.1:7661", 0, 0, OFF(rpc_bind),
     "where the gateway reaches taskd's tasks.* methods (the gateway's SR_GATEWAY_TASKS_RPC)"},
    {"SR_TASK_DUE_SOON", SR_CFG_DURATION, "24h", 60000, 2592000000LL, OFF(due_soon_ms),
     "a task this close to its due time is due soon: task.due_soon, and the due=soon list"},
    {"SR_TASK_RECURRING_HORIZON", SR_CFG_INT, "14", 1, 366, OFF(horizon_days),
     "days ahead recurring tasks are generated for"},
    {"SR_TASK_TIMEZONE", SR_CFG_STR, "Asia/Shanghai", 0, 0, OFF(timezone),
     "time zone of recurring tasks' times of day and of times in messages"},
    {"SR_TASK_REMINDER_BATCH", SR_CFG_INT, "500", 1, 100000, OFF(reminder_batch),
     "reminders of each kind sent per cron tick at most (the rest follow on the next)"},
    {"SR_TASK_READ_WORKERS", SR_CFG_INT, "4", 0, 64, OFF(read_workers),
     "threads answering reads, each with its own database connection; 0 = all on the loop"},
    {NULL},
};

int taskd_check_config(const void *config, char *err, size_t errlen)
{
    const taskd_config_t *cfg = config;
    if (strncmp(cfg->rpc_bind, "tcp://", 6) != 0 && strncmp(cfg->rpc_bind, "ipc://", 6) != 0) {
        snprintf(err, errlen, "SR_TASK_RPC_BIND: must be a tcp:// or ipc:// endpoint");
        return -1;
    }
    if (!cfg->timezone[0] || strlen(cfg->timezone) > 64) {
        snprintf(err, errlen, "SR_TASK_TIMEZONE: must be a time zone name such as Asia/Shanghai");
        return -1;
    }
    return 0;
}

/* s_timezone_ok - PostgreSQL knows the zone (a wrong one would fail every recurring run) */
static int s_timezone_ok(sr_service_t *svc, const char *tz)
{
    const char *params[] = {tz};
    PGresult *res = sr_db_query(sr_service_db(svc),
                                "SELECT 1 FROM pg_timezone_names WHERE name = $1", 1, params);
    int ok = res && PQntuples(res) == 1;
    PQclear(res);
    return ok;
}

/* s_worker_init - a read worker's context: a connection of its own */
static void *s_worker_init(void *state, int index)
{
    taskd_ctx_t *main = state;
    char name[32];
    snprintf(name, sizeof name, "taskd-read-%d", index);
    sr_db_t *db = sr_db_connect(sr_service_common(main->self->svc)->db_url, name, 5, 2000);
    if (db && taskd_prepare(db) < 0)
        sr_db_destroy(&db);
    if (!db)
        return NULL;
    taskd_ctx_t *ctx = sr_calloc(1, sizeof *ctx);
    *ctx = (taskd_ctx_t){main->self, db};
    return ctx;
}

static void s_worker_fini(void *state)
{
    taskd_ctx_t *ctx = state;
    sr_db_destroy(&ctx->db);
    free(ctx);
}

int taskd_init(sr_service_t *svc)
{
    taskd_t *self = sr_calloc(1, sizeof *self);
    sr_service_set_state(svc, self);
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    if (!s_timezone_ok(svc, self->cfg->timezone)) {
        sr_error("task_bad_timezone", "SR_TASK_TIMEZONE=%s is not a time zone PostgreSQL knows",
                 self->cfg->timezone);
        return -1;
    }
    sr_metrics_t *m = sr_service_metrics(svc);
    self->due_soon = sr_metrics_counter(m, "sr_task_reminders_total", "kind=\"due_soon\"",
                                        "task reminders published");
    self->overdue = sr_metrics_counter(m, "sr_task_reminders_total", "kind=\"overdue\"",
                                       "task reminders published");
    self->generated = sr_metrics_counter(m, "sr_task_recurring_generated_total", NULL,
                                         "tasks generated from recurring rules");
    self->main = (taskd_ctx_t){self, sr_service_db(svc)};
    if (taskd_prepare(self->main.db) < 0) {
        sr_error("task_prepare_failed", "err=\"%s\"", sr_db_error(self->main.db));
        return -1;
    }
    sr_rpc_opts_t opts = {.max_msg_size = sr_service_common(svc)->bus_max_msg,
                          .metrics = m,
                          .workers = (int)self->cfg->read_workers,
                          .worker_init = s_worker_init,
                          .worker_fini = s_worker_fini};
    self->server = sr_rpc_server_new(sr_service_zctx(svc), self->cfg->rpc_bind, taskd_methods,
                                     taskd_method_count, &self->main, sr_perm_authorize, &opts);
    if (!self->server || sr_rpc_server_attach(self->server, sr_service_loop(svc)) < 0) {
        sr_error("task_rpc_failed", "endpoint=%s", self->cfg->rpc_bind);
        return -1;
    }
    sr_info("task_rpc_listening", "endpoint=%s", self->cfg->rpc_bind);
    taskd_recurring_generate(self, 0, NULL);
    self->recurring_ms = sr_clock_mono_ms();
    return 0;
}

void taskd_cron(sr_service_t *svc)
{
    taskd_t *self = sr_service_state(svc);
    int64_t now = sr_clock_mono_ms();
    if (now - self->recurring_ms >= RECURRING_EVERY_MS) {
        self->recurring_ms = now;
        if (taskd_recurring_generate(self, 0, NULL) < 0)
            self->recurring_ms -= RECURRING_EVERY_MS / 2; /* try again sooner */
    }
    taskd_reminders_run(self);
}

void taskd_fini(sr_service_t *svc)
{
    taskd_t *self = sr_service_state(svc);
    if (!self)
        return;
    sr_rpc_server_destroy(&self->server);
    free(self);
    sr_service_set_state(svc, NULL);
}

/* ingestd_upkeep - the daily partitions and the per-minute rollup, run from the cron.
 *
 * metrics.ensure_partitions() creates SR_INGEST_PARTITION_DAYS_AHEAD daily partitions ahead and
 * drops those older than SR_INGEST_RETENTION_DAYS (hourly, every minute after a failure);
 * metrics.roll_minutes() recomputes the closed minutes of the last SR_INGEST_ROLLUP_LOOKBACK
 * every SR_INGEST_ROLLUP_INTERVAL, so late rows are counted. Both run on the service's own
 * connection, not on a writer's.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <stdio.h>
#include <stdlib.h>

#define PARTITION_EVERY_MS (3600 * 1000)
#define PARTITION_RETRY_MS (60 * 1000)
#define ROLLUP_SQL                                                                                 \
    "SELECT metrics.roll_minutes(date_trunc('minute', now()) - $1::bigint * interval '1 ms', "     \
    "date_trunc('minute', now()))"

struct ingestd_upkeep_t {
    const ingestd_config_t *cfg;
    sr_db_t *db;
    int64_t rollup_at_ms, partitions_due_ms; /* monotonic */
    sr_complaint_t down;
    sr_counter_t *rollup_rows, *rollup_failures, *partition_failures;
};

/* s_partitions - daily partitions ahead, old ones dropped; 0 ok */
static int s_partitions(ingestd_upkeep_t *self)
{
    char ahead[24], keep[24];
    snprintf(ahead, sizeof ahead, "%lld", (long long)self->cfg->partition_days);
    snprintf(keep, sizeof keep, "%lld", (long long)self->cfg->retention_days);
    const char *params[] = {ahead, keep};
    PGresult *res =
        sr_db_query(self->db, "SELECT metrics.ensure_partitions($1::int, $2::int)", 2, params);
    if (!res) {
        self->partitions_due_ms = sr_clock_mono_ms() + PARTITION_RETRY_MS;
        sr_complain(&self->down, "step=partitions err=\"%s\"", sr_db_error(self->db));
        return -1;
    }
    sr_info("ingest_partitions", "changed=%s days_ahead=%s retention_days=%s",
            PQgetvalue(res, 0, 0), ahead, keep);
    PQclear(res);
    self->partitions_due_ms = sr_clock_mono_ms() + PARTITION_EVERY_MS;
    return 0;
}

/* s_rollup - recompute the per-minute rollup of the last closed minutes */
static void s_rollup(ingestd_upkeep_t *self)
{
    char lookback[24];
    snprintf(lookback, sizeof lookback, "%lld", (long long)self->cfg->rollup_lookback_ms);
    const char *params[] = {lookback};
    PGresult *res = sr_db_run(self->db, "ingest_rollup", 1, params);
    self->rollup_at_ms = sr_clock_mono_ms();
    if (!res) {
        sr_counter_inc(self->rollup_failures);
        sr_complain(&self->down, "step=rollup err=\"%s\"", sr_db_error(self->db));
        return;
    }
    sr_recovered(&self->down);
    sr_counter_add(self->rollup_rows, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
}

ingestd_upkeep_t *ingestd_upkeep_new(sr_service_t *svc)
{
    ingestd_upkeep_t *self = sr_calloc(1, sizeof *self);
    self->cfg = sr_service_config(svc);
    self->db = sr_service_db(svc);
    self->down = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.upkeep");
    sr_metrics_t *m = sr_service_metrics(svc);
    self->rollup_rows = sr_metrics_counter(m, "sr_ingest_rollup_rows_total", NULL,
                                           "metrics.room_minutes rows written (recomputed too)");
    self->rollup_failures =
        sr_metrics_counter(m, "sr_ingest_rollup_failures_total", NULL, "rollup runs failed");
    self->partition_failures = sr_metrics_counter(m, "sr_ingest_partition_failures_total", NULL,
                                                  "partition upkeep runs failed");
    if (sr_db_prepare(self->db, "ingest_rollup", ROLLUP_SQL, 1) < 0 || s_partitions(self) < 0) {
        ingestd_upkeep_destroy(&self);
        return NULL;
    }
    return self;
}

void ingestd_upkeep_destroy(ingestd_upkeep_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void ingestd_upkeep_run(ingestd_upkeep_t *self)
{
    int64_t now = sr_clock_mono_ms();
    if (now >= self->partitions_due_ms && sr_db_ok(self->db) && s_partitions(self) < 0)
        sr_counter_inc(self->partition_failures);
    if (now - self->rollup_at_ms >= self->cfg->rollup_interval_ms && sr_db_ok(self->db))
        s_rollup(self);
}

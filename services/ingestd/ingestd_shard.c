/* ingestd_shard - how the ingestd instances that poll the platforms share the rooms.
 *
 * Every polling instance keeps its row in metrics.pollers fresh (HEARTBEAT_MS) and learns, in
 * the same statement, how many instances are alive (rows seen within TTL_MS) and its place
 * among them by name. It polls a room when the room's hash modulo that count is its place, so
 * `docker compose up --scale ingestd=4` splits the rooms four ways with nothing to configure
 * but a distinct SR_INSTANCE per instance (the default, NAME-HOSTNAME, is). An instance that
 * dies stops refreshing, and within TTL_MS + HEARTBEAT_MS the others take its rooms over; one
 * that stops cleanly deletes its row so they do at once. While the database does not answer,
 * the last share is kept: rooms stay polled rather than dropped.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_db.h"
#include "sr_hash.h"
#include "sr_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEARTBEAT_MS 2000
#define TTL_MS       10000
#define HEARTBEAT_SQL                                                                              \
    "WITH me AS (INSERT INTO metrics.pollers (instance, seen_at) VALUES ($1, now()) "              \
    "ON CONFLICT (instance) DO UPDATE SET seen_at = now()), "                                      \
    "gone AS (DELETE FROM metrics.pollers WHERE instance <> $1 "                                   \
    "AND seen_at < now() - $2::bigint * interval '1 ms'), "                                        \
    "live AS (SELECT instance FROM metrics.pollers WHERE instance <> $1 "                          \
    "AND seen_at >= now() - $2::bigint * interval '1 ms') "                                        \
    "SELECT (SELECT count(*) FROM live WHERE instance < $1), (SELECT count(*) FROM live) + 1"
#define LEAVE_SQL "DELETE FROM metrics.pollers WHERE instance = $1"

struct ingestd_shard_t {
    sr_db_t *db;
    const char *instance;
    uint64_t index, count; /* this instance's place among count live ones */
    int64_t due_ms;        /* monotonic time of the next heartbeat */
    sr_complaint_t down;
    sr_gauge_t *instances;
};

uint64_t ingestd_shard_hash(const char *platform, const char *room_id)
{
    uint64_t h = sr_hash_fnv1a_more(SR_HASH_FNV1A_INIT, platform, strlen(platform));
    h = sr_hash_fnv1a_more(h, ":", 1);
    return sr_hash_fnv1a_more(h, room_id, strlen(room_id));
}

ingestd_shard_t *ingestd_shard_new(sr_service_t *svc)
{
    ingestd_shard_t *self = sr_calloc(1, sizeof *self);
    self->db = sr_service_db(svc);
    self->instance = sr_service_instance(svc);
    self->count = 1;
    self->down = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.pollers");
    self->instances = sr_metrics_gauge(sr_service_metrics(svc), "sr_ingest_poll_instances", NULL,
                                       "ingestd instances sharing the polled rooms");
    sr_gauge_set(self->instances, 1);
    if (sr_db_prepare(self->db, "ingest_poll_heartbeat", HEARTBEAT_SQL, 2) < 0 ||
        sr_db_prepare(self->db, "ingest_poll_leave", LEAVE_SQL, 1) < 0) {
        free(self);
        return NULL;
    }
    ingestd_shard_refresh(self);
    return self;
}

void ingestd_shard_destroy(ingestd_shard_t **self_p)
{
    ingestd_shard_t *self = *self_p;
    if (!self)
        return;
    const char *params[] = {self->instance};
    PGresult *res = sr_db_ok(self->db) ? sr_db_run(self->db, "ingest_poll_leave", 1, params) : NULL;
    PQclear(res);
    free(self);
    *self_p = NULL;
}

int ingestd_shard_refresh(ingestd_shard_t *self)
{
    int64_t now = sr_clock_mono_ms();
    if (now < self->due_ms)
        return 0;
    self->due_ms = now + HEARTBEAT_MS;
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", TTL_MS);
    const char *params[] = {self->instance, ttl};
    PGresult *res =
        sr_db_ok(self->db) ? sr_db_run(self->db, "ingest_poll_heartbeat", 2, params) : NULL;
    if (!res) {
        sr_complain(&self->down, "err=\"%s\" keeping=%llu/%llu", sr_db_error(self->db),
                    (unsigned long long)self->index, (unsigned long long)self->count);
        return 0;
    }
    sr_recovered(&self->down);
    uint64_t index = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    uint64_t count = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (index == self->index && count == self->count)
        return 0;
    sr_info("poll_share", "instance=%s index=%llu instances=%llu", self->instance,
            (unsigned long long)index, (unsigned long long)count);
    self->index = index;
    self->count = count;
    sr_gauge_set(self->instances, (double)count);
    return 1;
}

int ingestd_shard_mine(const ingestd_shard_t *self, const char *platform, const char *room_id)
{
    return ingestd_shard_hash(platform, room_id) % self->count == self->index;
}

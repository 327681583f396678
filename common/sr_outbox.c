/* sr_outbox - event rows written with the state change, published in order, read back on gaps.
 *
 * The tables are created by sr_migrate() as version 0 of each schema. Statements name a schema,
 * which is an identifier, not a value: each is prepared once per schema with the quoted name,
 * through sr_db (so a reset prepares it again); every value is still a parameter.
 * The publisher holds the session advisory lock keyed by 'sr_outbox:<schema>' while it sends;
 * the subscriber keeps the last seq per followed schema (the Envelope's source).
 * See sr_outbox.h for the contract, sr_bus.h for the wire, sr_migrate.c for the tables.
 */
#include "sr_outbox.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_hash.h"
#include "sr_log.h"
#include "sr_migrate.h"
#include "sr_topics.h"

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ROWS    1000
#define STR_(x)       #x
#define STR(x)        STR_(x)
#define STMT_NAME_MAX 128
#define SEQ_MAX_TEXT  "9223372036854775807"

typedef enum {
    ST_NEXT_SEQ,
    ST_INSERT,
    ST_LAST,
    ST_PUBLISHED,
    ST_MARK,
    ST_ROWS,
    ST_PRUNE,
    ST_COUNT,
} stmt_id_t;

/* the per-schema statements; %s is the quoted schema */
static const struct {
    const char *what;
    const char *sql;
    int nparams;
} s_stmts[ST_COUNT] = {
    [ST_NEXT_SEQ] = {"next_seq",
                     "UPDATE %s.outbox_seq SET last = last + 1 WHERE id = 1 RETURNING last", 0},
    [ST_INSERT] = {"insert", "INSERT INTO %s.outbox (seq, topic, envelope) VALUES ($1, $2, $3)", 3},
    [ST_LAST] = {"last", "SELECT last FROM %s.outbox_seq WHERE id = 1", 0},
    [ST_PUBLISHED] = {"published", "SELECT published FROM %s.outbox_state WHERE id = 1", 0},
    [ST_MARK] = {"mark", "UPDATE %s.outbox_state SET published = $1 WHERE id = 1", 1},
    [ST_ROWS] = {"rows",
                 "SELECT seq, topic, envelope FROM %s.outbox WHERE seq > $1 AND seq < $2"
                 " ORDER BY seq LIMIT " STR(BATCH_ROWS),
                 2},
    [ST_PRUNE] = {"prune",
                  "DELETE FROM %1$s.outbox WHERE created_at < now() - $1::interval"
                  " AND seq <= (SELECT published FROM %1$s.outbox_state WHERE id = 1)",
                  1},
};

/* s_stmt - prepare statement id for schema (a lookup after the first time); its name in name:
 * "sr_outbox_<what>:<schema>", or with a hash of the schema when that passes PostgreSQL's
 * 63-byte limit, where longer names would be cut and could collide */
static int s_stmt(sr_db_t *db, const char *schema, stmt_id_t id, char name[STMT_NAME_MAX])
{
    int len = snprintf(name, STMT_NAME_MAX, "sr_outbox_%s:%s", s_stmts[id].what, schema);
    if (len > SR_DB_NAME_MAX) {
        uint64_t hash = sr_hash_fnv1a_str(schema);
        snprintf(name, STMT_NAME_MAX, "sr_outbox_%s#%016" PRIx64, s_stmts[id].what, hash);
    }
    char *quoted = PQescapeIdentifier(sr_db_conn(db), schema, strlen(schema));
    if (!quoted)
        return -1;
    char *sql = sr_asprintf(s_stmts[id].sql, quoted);
    PQfreemem(quoted);
    int rc = sr_db_prepare(db, name, sql, s_stmts[id].nparams);
    free(sql);
    return rc;
}

/* s_run - run the schema's statement id; NULL (error in sr_db_error) on failure */
static PGresult *s_run(sr_db_t *db, const char *schema, stmt_id_t id, const char *const *params,
                       const int *lengths, const int *formats, int result_format)
{
    char name[STMT_NAME_MAX];
    if (s_stmt(db, schema, id, name) != 0)
        return NULL;
    return sr_db_run_binary(db, name, s_stmts[id].nparams, params, lengths, formats, result_format);
}

/* s_int64 - the one value of a one-row text result */
static int s_int64(PGresult *res, int64_t *out)
{
    int ok = res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (ok)
        *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return ok ? 0 : -1;
}

int sr_outbox_put(sr_db_t *db, const char *schema, const char *instance, const char *topic,
                  const ProtobufCMessage *payload, const char *trace_id, uint64_t *seq_out)
{
    const sr_topic_t *row = topic ? sr_topic_find(topic) : NULL;
    if (!sr_migrate_schema_ok(schema) || !row || !payload || payload->descriptor != row->payload) {
        sr_error("outbox_put_invalid", "schema=\"%s\" topic=\"%s\" err=\"%s\"",
                 schema ? schema : "", topic ? topic : "",
                 !sr_migrate_schema_ok(schema) ? "bad schema name"
                 : !row                        ? "topic not in sr_topics"
                                               : "payload type does not match the topic");
        return -1;
    }
    if (PQtransactionStatus(sr_db_conn(db)) != PQTRANS_INTRANS) {
        /* outside a transaction the seq would commit apart from the row: a hole or a reorder */
        sr_error("outbox_put_invalid", "schema=%s topic=%s err=\"not inside a transaction\"",
                 schema, topic);
        return -1;
    }
    int64_t seq = 0;
    if (s_int64(s_run(db, schema, ST_NEXT_SEQ, NULL, NULL, NULL, 0), &seq) != 0) {
        sr_error("outbox_put_failed", "schema=%s topic=%s step=seq sqlstate=%s err=\"%s\"", schema,
                 topic, sr_db_sqlstate(db), sr_db_error(db));
        return -1;
    }
    uint8_t *envelope = NULL;
    size_t len = 0;
    if (sr_bus_envelope_pack(schema, instance, (uint64_t)seq, sr_clock_now_us(), trace_id, payload,
                             &envelope, &len) != 0) {
        sr_error("outbox_put_failed", "schema=%s topic=%s step=pack", schema, topic);
        return -1;
    }
    /* subscribers refuse larger messages, so such a row could never be delivered */
    if (len > SR_BUS_MAX_MSG_DEFAULT) {
        sr_error("outbox_put_failed", "schema=%s topic=%s step=pack bytes=%zu err=\"too large\"",
                 schema, topic, len);
        free(envelope);
        return -1;
    }
    char seq_text[24];
    snprintf(seq_text, sizeof seq_text, "%" PRId64, seq);
    const char *params[] = {seq_text, topic, (const char *)envelope};
    const int lengths[] = {0, 0, (int)len};
    const int formats[] = {0, 0, 1};
    PGresult *res = s_run(db, schema, ST_INSERT, params, lengths, formats, 0);
    free(envelope);
    if (!res) {
        sr_error("outbox_put_failed", "schema=%s topic=%s step=insert sqlstate=%s err=\"%s\"",
                 schema, topic, sr_db_sqlstate(db), sr_db_error(db));
        return -1;
    }
    PQclear(res);
    if (seq_out)
        *seq_out = (uint64_t)seq;
    return 0;
}

/* s_row_seq - column 0 of a binary result row: bigint, network byte order */
static int64_t s_row_seq(const PGresult *res, int row)
{
    uint64_t be = 0;
    if (PQgetlength(res, row, 0) == (int)sizeof be)
        memcpy(&be, PQgetvalue(res, row, 0), sizeof be);
    return (int64_t)be64toh(be);
}

/* s_rows - rows after `after` and before `before` (binary: seq, topic, envelope), BATCH_ROWS
 * at most */
static PGresult *s_rows(sr_db_t *db, const char *schema, int64_t after, const char *before)
{
    char after_text[24];
    snprintf(after_text, sizeof after_text, "%" PRId64, after);
    const char *params[] = {after_text, before};
    return s_run(db, schema, ST_ROWS, params, NULL, NULL, 1);
}

/* --- publisher -------------------------------------------------------------------------- */

struct sr_outbox_pub_t {
    sr_db_t *db;
    sr_bus_pub_t *bus;
    char *schema;
    char *lock_name; /* 'sr_outbox:<schema>', hashed by PostgreSQL into the lock key */
    int lock_pid;    /* server backend that holds the lock for us; 0 = not held */
    sr_complaint_t complaint;
};

sr_outbox_pub_t *sr_outbox_pub_new(sr_db_t *db, const char *schema, sr_bus_pub_t *bus)
{
    if (!db || !bus || !sr_migrate_schema_ok(schema)) {
        sr_error("outbox_pub_invalid", "schema=\"%s\"", schema ? schema : "");
        return NULL;
    }
    sr_outbox_pub_t *self = sr_calloc(1, sizeof *self);
    self->db = db;
    self->bus = bus;
    self->schema = sr_strdup(schema);
    self->lock_name = sr_asprintf("sr_outbox:%s", schema);
    self->complaint = (sr_complaint_t)SR_COMPLAINT_INIT("outbox.publish");
    return self;
}

void sr_outbox_pub_destroy(sr_outbox_pub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_outbox_pub_t *self = *self_p;
    if (self->lock_pid && self->lock_pid == PQbackendPID(sr_db_conn(self->db))) {
        const char *params[] = {self->lock_name};
        PQclear(
            sr_db_query(self->db, "SELECT pg_advisory_unlock(hashtextextended($1, 0))", 1, params));
    }
    free(self->schema);
    free(self->lock_name);
    free(self);
    *self_p = NULL;
}

/* s_pub_lock - 1 when this publisher holds the schema's lock, 0 when another one does, -1 on
 * failure. A session lock dies with its session, so after a reconnect (another backend pid)
 * it is taken again. */
static int s_pub_lock(sr_outbox_pub_t *self)
{
    int pid = PQbackendPID(sr_db_conn(self->db));
    if (self->lock_pid && self->lock_pid == pid)
        return 1;
    self->lock_pid = 0;
    const char *params[] = {self->lock_name};
    PGresult *res =
        sr_db_query(self->db, "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", 1, params);
    if (!res)
        return -1;
    int got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (got) {
        self->lock_pid = pid;
        sr_info("outbox_publisher_active", "schema=%s", self->schema);
    }
    return got;
}

/* s_pub_batch - send one batch after the recorded position and record the new one; rows sent,
 * *full set when the batch was full, -1 on failure with *why "bus" or "db" */
static int s_pub_batch(sr_outbox_pub_t *self, int *full, const char **why)
{
    int64_t published = 0;
    *why = "db";
    if (s_int64(s_run(self->db, self->schema, ST_PUBLISHED, NULL, NULL, NULL, 0), &published) != 0)
        return -1;
    PGresult *rows = s_rows(self->db, self->schema, published, SEQ_MAX_TEXT);
    if (!rows)
        return -1;
    int n = PQntuples(rows), sent = 0;
    int64_t last = published;
    for (int i = 0; i < n; i++) {
        const char *topic = PQgetvalue(rows, i, 1);
        const uint8_t *envelope = (const uint8_t *)PQgetvalue(rows, i, 2);
        if (sr_bus_publish_packed(self->bus, topic, envelope, (size_t)PQgetlength(rows, i, 2)) != 0)
            break;
        last = s_row_seq(rows, i);
        sent++;
    }
    PQclear(rows);
    *full = n == BATCH_ROWS && sent == n;
    if (sent < n)
        *why = "bus";
    if (last > published) {
        char last_text[24];
        snprintf(last_text, sizeof last_text, "%" PRId64, last);
        const char *params[] = {last_text};
        PGresult *res = s_run(self->db, self->schema, ST_MARK, params, NULL, NULL, 0);
        if (!res) {
            *why = "db";
            return -1;
        }
        PQclear(res);
    }
    return sent < n ? -1 : sent;
}

/* sr_outbox_pub_flush - failures are complained about at a falling rate, since the cron calls
 * this every tick while the database or the bus is away */
int sr_outbox_pub_flush(sr_outbox_pub_t *self)
{
    int locked = s_pub_lock(self);
    if (locked < 0) {
        sr_complain(&self->complaint, "schema=%s step=lock err=\"%s\"", self->schema,
                    sr_db_error(self->db));
        return -1;
    }
    int total = 0, full = locked;
    while (full) {
        const char *why = "";
        int sent = s_pub_batch(self, &full, &why);
        if (sent < 0) {
            sr_complain(&self->complaint, "schema=%s sent=%d step=%s err=\"%s\"", self->schema,
                        total, why, strcmp(why, "db") == 0 ? sr_db_error(self->db) : "send failed");
            return -1;
        }
        total += sent;
    }
    sr_recovered(&self->complaint);
    return total;
}

int sr_outbox_pub_prune(sr_outbox_pub_t *self, int64_t keep_ms)
{
    if (!self->lock_pid)
        return 0; /* the instance that publishes prunes */
    char keep[48];
    snprintf(keep, sizeof keep, "%lld milliseconds", (long long)keep_ms);
    const char *params[] = {keep};
    PGresult *res = s_run(self->db, self->schema, ST_PRUNE, params, NULL, NULL, 0);
    if (!res) {
        sr_warn("outbox_prune_failed", "schema=%s err=\"%s\"", self->schema, sr_db_error(self->db));
        return -1;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    if (n > 0)
        sr_info("outbox_pruned", "schema=%s rows=%d keep_ms=%lld", self->schema, n,
                (long long)keep_ms);
    return n;
}

/* --- subscriber ------------------------------------------------------------------------- */

typedef struct {
    char *schema;
    uint64_t last;
} source_t;

struct sr_outbox_sub_t {
    sr_db_t *db;
    sr_outbox_fn *fn;
    void *arg;
    source_t **sources; /* pointers stay put when a callback follows another source */
    size_t nsources;
    sr_arena_t *arena; /* envelopes and payloads read from a table, one row at a time */
    sr_outbox_sub_stats_t stats;
};

sr_outbox_sub_t *sr_outbox_sub_new(sr_db_t *db, sr_outbox_fn *fn, void *arg)
{
    if (!db || !fn)
        return NULL;
    sr_outbox_sub_t *self = sr_calloc(1, sizeof *self);
    self->db = db;
    self->fn = fn;
    self->arg = arg;
    self->arena = sr_arena_new(16 * 1024);
    return self;
}

void sr_outbox_sub_destroy(sr_outbox_sub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_outbox_sub_t *self = *self_p;
    for (size_t i = 0; i < self->nsources; i++) {
        free(self->sources[i]->schema);
        free(self->sources[i]);
    }
    free(self->sources);
    sr_arena_destroy(&self->arena);
    free(self);
    *self_p = NULL;
}

static source_t *s_source(const sr_outbox_sub_t *self, const char *schema)
{
    for (size_t i = 0; i < self->nsources; i++) {
        if (strcmp(self->sources[i]->schema, schema) == 0)
            return self->sources[i];
    }
    return NULL;
}

int sr_outbox_sub_follow(sr_outbox_sub_t *self, const char *schema, int64_t after_seq)
{
    if (!sr_migrate_schema_ok(schema) || after_seq < -1) {
        sr_error("outbox_follow_invalid", "schema=\"%s\" after=%" PRId64, schema ? schema : "",
                 after_seq);
        return -1;
    }
    if (after_seq == -1 &&
        s_int64(s_run(self->db, schema, ST_LAST, NULL, NULL, NULL, 0), &after_seq) != 0) {
        sr_error("outbox_follow_failed", "schema=%s err=\"%s\"", schema, sr_db_error(self->db));
        return -1;
    }
    source_t *src = s_source(self, schema);
    if (!src) {
        src = sr_calloc(1, sizeof *src);
        src->schema = sr_strdup(schema);
        self->sources = sr_realloc(self->sources, (self->nsources + 1) * sizeof *self->sources);
        self->sources[self->nsources++] = src;
    }
    src->last = (uint64_t)after_seq;
    sr_info("outbox_follow", "schema=%s after=%" PRIu64, schema, src->last);
    return 0;
}

/* s_deliver_row - decode one stored row and hand it on; a row that does not decode is logged
 * and passed over, since reading it again would not change it */
static void s_deliver_row(sr_outbox_sub_t *self, source_t *src, const PGresult *rows, int i)
{
    int64_t seq = s_row_seq(rows, i);
    const char *topic = PQgetvalue(rows, i, 1);
    size_t len = (size_t)PQgetlength(rows, i, 2);
    ProtobufCAllocator *alloc = sr_arena_pb_allocator(self->arena);
    Sr__Envelope *env = NULL;
    if (len <= SR_BUS_MAX_MSG_DEFAULT && strlen(topic) < SR_BUS_TOPIC_MAX)
        env = sr__envelope__unpack(alloc, len, (const uint8_t *)PQgetvalue(rows, i, 2));
    const sr_topic_t *row = sr_topic_find(topic);
    ProtobufCMessage *payload = NULL;
    if (env && row)
        payload =
            protobuf_c_message_unpack(row->payload, alloc, env->payload.len, env->payload.data);
    src->last = (uint64_t)seq;
    if (!env || env->seq != (uint64_t)seq || (row && !payload)) {
        sr_error("outbox_row_bad", "schema=%s seq=%" PRId64 " topic=\"%s\" bytes=%zu", src->schema,
                 seq, topic, len);
    } else {
        self->stats.recovered++;
        self->stats.delivered++;
        self->fn(self->arg, topic, env, payload);
    }
    sr_arena_reset(self->arena);
}

/* s_read_back - deliver the stored rows of src after its last seq and before `before`
 * (decimal text); -1 when they could not be read */
static int s_read_back(sr_outbox_sub_t *self, source_t *src, const char *before)
{
    int n = BATCH_ROWS;
    while (n == BATCH_ROWS) {
        PGresult *rows = s_rows(self->db, src->schema, (int64_t)src->last, before);
        if (!rows) {
            sr_warn("outbox_read_back_failed", "schema=%s after=%" PRIu64 " err=\"%s\"",
                    src->schema, src->last, sr_db_error(self->db));
            return -1;
        }
        n = PQntuples(rows);
        for (int i = 0; i < n; i++)
            s_deliver_row(self, src, rows, i);
        PQclear(rows);
    }
    return 0;
}

int sr_outbox_sub_deliver(sr_outbox_sub_t *self, const sr_bus_msg_t *msg)
{
    const Sr__Envelope *env = msg ? msg->envelope : NULL;
    source_t *src = env && env->source ? s_source(self, env->source) : NULL;
    if (!src)
        return 0;
    if (env->seq > src->last + 1) {
        char before[24];
        snprintf(before, sizeof before, "%" PRIu64, env->seq);
        if (s_read_back(self, src, before) != 0)
            return -1;
        if (src->last + 1 < env->seq)
            sr_warn("outbox_rows_missing", "schema=%s from=%" PRIu64 " to=%" PRIu64, src->schema,
                    src->last + 1, env->seq - 1);
    }
    if (env->seq <= src->last) {
        self->stats.duplicates++;
        return 0;
    }
    src->last = env->seq;
    self->stats.delivered++;
    self->fn(self->arg, msg->topic, env, msg->payload);
    return 0;
}

int sr_outbox_sub_catch_up(sr_outbox_sub_t *self)
{
    int rc = 0;
    for (size_t i = 0; i < self->nsources; i++) {
        if (s_read_back(self, self->sources[i], SEQ_MAX_TEXT) != 0)
            rc = -1;
    }
    return rc;
}

uint64_t sr_outbox_sub_last(const sr_outbox_sub_t *self, const char *schema)
{
    const source_t *src = schema ? s_source(self, schema) : NULL;
    return src ? src->last : 0;
}

sr_outbox_sub_stats_t sr_outbox_sub_stats(const sr_outbox_sub_t *self)
{
    return self->stats;
}

/* gatewayd_call - what a request thread owns, and the calls it makes.
 *
 * Each HTTP thread gets, on first use, its own PostgreSQL connection (with the token statements
 * prepared), one RPC socket per remote service and an arena for one request at a time; libpq
 * connections and ZeroMQ sockets are not to be shared between threads. They are listed here so
 * fini can close them once the HTTP server has stopped its threads.
 *
 * A call goes to the gateway's own access.* table (sr_rpc_dispatch: the same permission check
 * and handler contract as a remote server, without packing) or over RPC with the configured
 * deadline; a service that does not answer in time is STATUS_DEADLINE, which the route layer
 * answers 503. A successful mutation's audit record becomes a row of access.audit.
 */
#include "gatewayd.h"

#include "sr_alloc.h"
#include "sr_log.h"
#include "sr_perm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREAD_ARENA 65536
#define AUDIT_SQL                                                                                  \
    "INSERT INTO access.audit (actor_id, actor_name, actor_roles, region, action, entity, "        \
    "entity_id, before, after, request_id, method) VALUES (nullif($1::bigint, 0), $2, "            \
    "$3::text[], $4, $5, $6, $7, nullif($8, '')::jsonb, nullif($9, '')::jsonb, $10, $11)"

static _Thread_local gatewayd_thread_t *s_mine;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static gatewayd_thread_t **s_all;
static size_t s_count;
static sr_complaint_t s_db_down = SR_COMPLAINT_INIT("gateway.db");

static const char *s_service_names[GW_SERVICES] = {"access", "metrics", "tasks", "stream"};

const char *gatewayd_service_name(gw_service_t service)
{
    return service < GW_SERVICES ? s_service_names[service] : "";
}

gatewayd_thread_t *gatewayd_thread(gatewayd_t *gw)
{
    (void)gw;
    if (s_mine)
        return s_mine;
    gatewayd_thread_t *t = sr_calloc(1, sizeof *t);
    t->arena = sr_arena_new(THREAD_ARENA);
    pthread_mutex_lock(&s_lock);
    s_all = sr_realloc(s_all, (s_count + 1) * sizeof *s_all);
    s_all[s_count++] = t;
    pthread_mutex_unlock(&s_lock);
    s_mine = t;
    return t;
}

sr_db_t *gatewayd_thread_db(gatewayd_t *gw)
{
    gatewayd_thread_t *t = gatewayd_thread(gw);
    if (!t->db) {
        t->db = sr_db_connect(gw->db_url, "gatewayd-http", 1, 1000);
        if (t->db && (gatewayd_auth_prepare(t->db) < 0 ||
                      sr_db_prepare(t->db, "gw_audit", AUDIT_SQL, 11) < 0))
            sr_db_destroy(&t->db);
        if (!t->db) {
            sr_complain(&s_db_down, "err=\"cannot connect\"");
            return NULL;
        }
    }
    if (!sr_db_ok(t->db)) {
        sr_complain(&s_db_down, "err=\"%s\"", sr_db_error(t->db));
        return NULL;
    }
    sr_recovered(&s_db_down);
    return t->db;
}

void gatewayd_threads_free(void)
{
    pthread_mutex_lock(&s_lock);
    for (size_t i = 0; i < s_count; i++) {
        gatewayd_thread_t *t = s_all[i];
        sr_db_destroy(&t->db);
        for (int c = 0; c < GW_SERVICES; c++)
            sr_rpc_client_destroy(&t->clients[c]);
        sr_arena_destroy(&t->arena);
        free(t);
    }
    free(s_all);
    s_all = NULL;
    s_count = 0;
    pthread_mutex_unlock(&s_lock);
}

static gw_result_t s_fail(sr_arena_t *arena, Sr__Status status, const char *code,
                          const char *message)
{
    gw_result_t r = {.status = status};
    r.error = sr_arena_alloc(arena, sizeof *r.error);
    sr__error__init(r.error);
    r.error->code = sr_arena_strdup(arena, code);
    r.error->message = sr_arena_strdup(arena, message);
    return r;
}

/* s_endpoint - where a remote service answers */
static const char *s_endpoint(const gatewayd_t *gw, gw_service_t service)
{
    return service == GW_SVC_METRICS ? gw->cfg->metrics_rpc
           : service == GW_SVC_TASKS ? gw->cfg->tasks_rpc
                                     : "";
}

gw_result_t gatewayd_call(gatewayd_t *gw, gw_service_t service, const char *method,
                          const Sr__Principal *principal, const char *request_id,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *reply_type, int64_t token_id,
                          const char *client_ip, sr_arena_t *arena)
{
    gw_result_t r = {0};
    if (service == GW_SVC_ACCESS) {
        sr_db_t *db = gatewayd_thread_db(gw);
        if (!db)
            return s_fail(arena, SR__STATUS__STATUS_UNAVAILABLE, "unavailable",
                          "the database does not answer");
        gw_local_t local = {.gw = gw, .db = db, .token_id = token_id, .client_ip = client_ip};
        r.status = sr_rpc_dispatch(gatewayd_access_methods, gatewayd_access_method_count,
                                   sr_perm_authorize, &local, method, principal, request_id,
                                   request, arena, &r.reply, &r.error, &r.audit);
        return r;
    }
    gatewayd_thread_t *t = gatewayd_thread(gw);
    if (!t->clients[service]) {
        sr_rpc_opts_t opts = {.max_msg_size = sr_service_common(gw->svc)->bus_max_msg};
        t->clients[service] = sr_rpc_client_new(gw->zctx, s_endpoint(gw, service), &opts);
        if (!t->clients[service])
            return s_fail(arena, SR__STATUS__STATUS_UNAVAILABLE, "unavailable",
                          "cannot open a socket to the service");
    }
    r.status =
        sr_rpc_call_audited(t->clients[service], method, principal, request_id, request, reply_type,
                            (int)gw->cfg->rpc_timeout_ms, arena, &r.reply, &r.error, &r.audit);
    return r;
}

int gatewayd_audit_write(gatewayd_t *gw, const gw_audit_ctx_t *ctx, const Sr__Audit *audit)
{
    sr_db_t *db = gatewayd_thread_db(gw);
    const Sr__Principal *p = ctx->principal;
    char actor[24];
    snprintf(actor, sizeof actor, "%lld", (long long)(p ? p->user_id : 0));
    sr_arena_t *arena = gatewayd_thread(gw)->arena;
    const char *roles = sr_db_text_array(arena, p ? p->roles : NULL, p ? p->n_roles : 0);
    const char *params[] = {actor,
                            p && p->user_name ? p->user_name : "",
                            roles,
                            audit->region,
                            ctx->action,
                            audit->entity,
                            audit->entity_id,
                            audit->before,
                            audit->after,
                            ctx->request_id,
                            ctx->method};
    PGresult *res = db ? sr_db_run(db, "gw_audit", 11, params) : NULL;
    if (!res) {
        sr_counter_inc(gw->audit_failures);
        sr_error("gateway_audit_failed",
                 "request_id=%s action=%s entity=%s entity_id=%s err=\"%s\"", ctx->request_id,
                 ctx->action, audit->entity, audit->entity_id,
                 db ? sr_db_error(db) : "no database connection");
        return -1;
    }
    PQclear(res);
    return 0;
}

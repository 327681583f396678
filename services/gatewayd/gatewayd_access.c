/* gatewayd_access - the access.* methods: login and tokens, the caller's own account, regions,
 * users and the audit log, on schema access.
 *
 * They run through sr_rpc_dispatch with the same contract as any service's RPC handlers: the
 * table names each method's permission (checked before the handler runs) and the handler checks
 * what the matrix cannot say - regions (a record the caller may not see answers not found),
 * another user's tokens (tokens.admin). A change and its access.* event (outbox) commit together;
 * the handler records before and after with sr_rpc_audit and the route layer writes the audit
 * row. SQL goes only through parameters.
 */
#include "gatewayd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_cursor.h"
#include "sr_log.h"
#include "sr_outbox.h"
#include "sr_perm.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256
#define US(col)      "(extract(epoch FROM " col ") * 1000000)::bigint"

#define USER_COLS                                                                                  \
    "u.id, u.name, u.display_name, array_to_string(u.roles, ','), "                                \
    "coalesce((SELECT string_agg(r.code, ',' ORDER BY r.code) FROM access.user_regions ur "        \
    "JOIN access.regions r ON r.id = ur.region_id WHERE ur.user_id = u.id), ''), u.disabled, "     \
    "u.version, " US("u.created_at") ", " US("u.updated_at")
#define REGION_COLS "id, code, name, version, " US("created_at") ", " US("updated_at")
#define TOKEN_COLS                                                                                 \
    "id, user_id, name, kind, prefix, " US("created_at") ", coalesce(" US(                         \
        "expires_at") ", 0), "                                                                     \
                      "coalesce(" US("last_used_at") ", 0), coalesce(" US("revoked_at") ", 0)"

/* --- small helpers ------------------------------------------------------------------------- */

static gw_local_t *s_local(sr_rpc_call_t *call)
{
    return call->state;
}

static const char *s_num(sr_arena_t *arena, int64_t v)
{
    return sr_arena_printf(arena, "%lld", (long long)v);
}

static int64_t s_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *s_str(sr_arena_t *arena, const PGresult *res, int row, int col)
{
    return sr_arena_strdup(arena, PQgetvalue(res, row, col));
}

static Sr__Status s_db_fail(sr_rpc_call_t *call, sr_db_t *db, const char *what)
{
    const char *state = sr_db_sqlstate(db);
    if (strcmp(state, "23505") == 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "exists", NULL, "%s already exists",
                           what);
    if (strcmp(state, "23503") == 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "in_use", NULL, "%s is still in use",
                           what);
    if (strcmp(state, "23514") == 0 || strcmp(state, "22001") == 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", NULL,
                           "%s: the database refused a value", what);
    sr_error("gateway_db_failed", "what=\"%s\" sqlstate=%s err=\"%s\"", what, state,
             sr_db_error(db));
    return sr_rpc_fail(call, SR__STATUS__STATUS_UNAVAILABLE, "unavailable", NULL,
                       "the database did not complete the request");
}

static int s_has_mask(char **mask, size_t n, const char *field)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(mask[i], field) == 0)
            return 1;
    return 0;
}

/* s_utf8_chars - characters in a UTF-8 string */
static size_t s_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xc0) != 0x80;
    return n;
}

static int s_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return 0;
    for (const char *p = name; *p; p++) {
        int alnum =
            (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == name || !strchr("._@-", *p)))
            return 0;
    }
    return 1;
}

static int s_event(sr_rpc_call_t *call, const char *topic, const ProtobufCMessage *msg)
{
    gw_local_t *l = s_local(call);
    return sr_outbox_put(l->db, "access", sr_service_instance(l->gw->svc), topic, msg,
                         call->trace_id, NULL);
}

/* --- rows to messages ---------------------------------------------------------------------- */

static Sr__User *s_user_row(sr_arena_t *arena, const PGresult *res, int row)
{
    Sr__User *u = sr_arena_alloc(arena, sizeof *u);
    sr__user__init(u);
    u->id = s_i64(res, row, 0);
    u->name = s_str(arena, res, row, 1);
    u->display_name = s_str(arena, res, row, 2);
    u->roles = sr_arena_split(arena, PQgetvalue(res, row, 3), ',', &u->n_roles);
    u->regions = sr_arena_split(arena, PQgetvalue(res, row, 4), ',', &u->n_regions);
    u->disabled = PQgetvalue(res, row, 5)[0] == 't';
    u->version = s_i64(res, row, 6);
    u->created_us = s_i64(res, row, 7);
    u->updated_us = s_i64(res, row, 8);
    return u;
}

static Sr__Region *s_region_row(sr_arena_t *arena, const PGresult *res, int row)
{
    Sr__Region *r = sr_arena_alloc(arena, sizeof *r);
    sr__region__init(r);
    r->id = s_i64(res, row, 0);
    r->code = s_str(arena, res, row, 1);
    r->name = s_str(arena, res, row, 2);
    r->version = s_i64(res, row, 3);
    r->created_us = s_i64(res, row, 4);
    r->updated_us = s_i64(res, row, 5);
    return r;
}

static Sr__ApiToken *s_token_row(sr_arena_t *arena, const PGresult *res, int row)
{
    Sr__ApiToken *t = sr_arena_alloc(arena, sizeof *t);
    sr__api_token__init(t);
    t->id = s_i64(res, row, 0);
    t->user_id = s_i64(res, row, 1);
    t->name = s_str(arena, res, row, 2);
    t->kind = s_str(arena, res, row, 3);
    t->prefix = s_str(arena, res, row, 4);
    t->created_us = s_i64(res, row, 5);
    t->expires_us = s_i64(res, row, 6);
    t->last_used_us = s_i64(res, row, 7);
    t->revoked_us = s_i64(res, row, 8);
    return t;
}

/* s_user_load - one user by id (FOR UPDATE inside a transaction when lock); NULL when none */
static Sr__User *s_user_load(sr_db_t *db, sr_arena_t *arena, int64_t id, int lock, int *failed)
{
    const char *params[] = {s_num(arena, id)};
    PGresult *res = sr_db_query(db,
                                lock ? "SELECT " USER_COLS " FROM access.users u WHERE u.id = $1 "
                                       "FOR UPDATE"
                                     : "SELECT " USER_COLS " FROM access.users u WHERE u.id = $1",
                                1, params);
    *failed = !res;
    if (!res || PQntuples(res) != 1) {
        PQclear(res);
        return NULL;
    }
    Sr__User *u = s_user_row(arena, res, 0);
    PQclear(res);
    return u;
}

/* s_shares_region - 1 when the principal sees the user: HQ, or a region in common */
static int s_sees_user(const Sr__Principal *p, const Sr__User *u)
{
    if (sr_principal_is_hq(p) || p->user_id == u->id)
        return 1;
    for (size_t i = 0; i < u->n_regions; i++)
        if (sr_principal_sees_region(p, u->regions[i]))
            return 1;
    return 0;
}

Sr__Principal *gatewayd_principal_load(sr_db_t *db, int64_t user_id, sr_arena_t *arena)
{
    int failed;
    Sr__User *u = s_user_load(db, arena, user_id, 0, &failed);
    if (!u || u->disabled)
        return NULL;
    Sr__Principal *p = sr_arena_alloc(arena, sizeof *p);
    sr__principal__init(p);
    p->user_id = u->id;
    p->user_name = u->name;
    p->roles = u->roles;
    p->n_roles = u->n_roles;
    p->regions = u->regions;
    p->n_regions = u->n_regions;
    return p;
}

/* --- login, logout, tokens ----------------------------------------------------------------- */

/* s_token_insert - a new token row for user; the token text in *token (arena) */
static Sr__ApiToken *s_token_insert(sr_db_t *db, sr_arena_t *arena, int64_t user_id,
                                    const char *kind, const char *name, int64_t ttl_ms,
                                    char **token)
{
    char text[GW_TOKEN_CHARS + 1];
    uint8_t hash[32];
    gatewayd_token_new(text, hash);
    char prefix[13], hex[65];
    snprintf(prefix, sizeof prefix, "%.12s", text);
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    const char *params[] = {s_num(arena, user_id), kind, name, hex, prefix, s_num(arena, ttl_ms)};
    PGresult *res = sr_db_query(
        db,
        "INSERT INTO access.tokens (user_id, kind, name, hash, prefix, expires_at) VALUES ($1, $2, "
        "$3, decode($4, 'hex'), $5, CASE WHEN $6::bigint > 0 THEN now() + $6::bigint * "
        "interval '1 ms' END) RETURNING " TOKEN_COLS,
        6, params);
    Sr__ApiToken *t = NULL;
    if (res && PQntuples(res) == 1) {
        t = s_token_row(arena, res, 0);
        *token = sr_arena_strdup(arena, text);
    }
    PQclear(res);
    sodium_memzero(text, sizeof text);
    return t;
}

static Sr__Status s_login(sr_rpc_call_t *call, const ProtobufCMessage *request,
                          ProtobufCMessage **reply)
{
    const Sr__LoginRequest *in = (const Sr__LoginRequest *)request;
    gw_local_t *l = s_local(call);
    const char *params[] = {in->user};
    PGresult *res = sr_db_query(
        l->db, "SELECT id, password_hash FROM access.users WHERE name = $1 AND NOT disabled", 1,
        params);
    if (!res)
        return s_db_fail(call, l->db, "login");
    int found = PQntuples(res) == 1;
    int ok = gatewayd_password_ok(found ? PQgetvalue(res, 0, 1) : NULL, in->password);
    int64_t user_id = found ? s_i64(res, 0, 0) : 0;
    PQclear(res);
    if (!ok)
        return sr_rpc_fail(call, SR__STATUS__STATUS_UNAUTHENTICATED, "bad_credentials", NULL,
                           "unknown user or wrong password");
    Sr__LoginReply *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__login_reply__init(out);
    Sr__ApiToken *t = s_token_insert(l->db, call->arena, user_id, "session", "login",
                                     l->gw->cfg->session_ttl_ms, &out->token);
    int failed;
    out->user = s_user_load(l->db, call->arena, user_id, 0, &failed);
    if (!t || !out->user)
        return s_db_fail(call, l->db, "session");
    out->expires_us = t->expires_us;
    sr_info("gateway_login", "user=%s token_id=%lld addr=%s", out->user->name, (long long)t->id,
            l->client_ip ? l->client_ip : "");
    sr_rpc_audit(call, "session", s_num(call->arena, t->id), "", NULL, &t->base);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* s_revoke - revoke token id of owner (any owner when owner is 0); the token before, or NULL */
static Sr__ApiToken *s_revoke(sr_rpc_call_t *call, int64_t id, int64_t owner, int *failed)
{
    gw_local_t *l = s_local(call);
    const char *params[] = {s_num(call->arena, id), s_num(call->arena, owner)};
    PGresult *res = sr_db_query(l->db,
                                "UPDATE access.tokens SET revoked_at = now() WHERE id = $1 AND "
                                "revoked_at IS NULL AND ($2::bigint = 0 OR user_id = $2) "
                                "RETURNING " TOKEN_COLS,
                                2, params);
    *failed = !res;
    Sr__ApiToken *t = res && PQntuples(res) == 1 ? s_token_row(call->arena, res, 0) : NULL;
    PQclear(res);
    if (t)
        gatewayd_auth_forget(l->gw->auth, id, 0);
    return t;
}

static Sr__Status s_logout(sr_rpc_call_t *call, const ProtobufCMessage *request,
                           ProtobufCMessage **reply)
{
    (void)request;
    gw_local_t *l = s_local(call);
    int failed;
    Sr__ApiToken *t = s_revoke(call, l->token_id, call->principal->user_id, &failed);
    if (failed)
        return s_db_fail(call, l->db, "logout");
    if (t) {
        Sr__ApiToken after = *t;
        after.revoked_us = sr_clock_now_us();
        t->revoked_us = 0;
        sr_rpc_audit(call, "session", s_num(call->arena, t->id), "", &t->base, &after.base);
    }
    Sr__Empty *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__empty__init(out);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_me(sr_rpc_call_t *call, const ProtobufCMessage *request,
                       ProtobufCMessage **reply)
{
    (void)request;
    const Sr__Principal *p = call->principal;
    Sr__MeReply *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__me_reply__init(out);
    /* from the principal (itself from the token cache): no database round trip */
    out->id = p->user_id;
    out->name = p->user_name;
    out->roles = p->roles;
    out->n_roles = p->n_roles;
    out->regions = p->regions;
    out->n_regions = p->n_regions;
    size_t n;
    const sr_perm_t *all = sr_perm_all(&n);
    out->permissions = sr_arena_alloc(call->arena, n * sizeof *out->permissions);
    for (size_t i = 0; i < n; i++)
        if (sr_perm_allows(p, all[i].action))
            out->permissions[out->n_permissions++] = (char *)all[i].action;
    out->hq = sr_principal_is_hq(p);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_token_create(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                 ProtobufCMessage **reply)
{
    const Sr__TokenCreate *in = (const Sr__TokenCreate *)request;
    gw_local_t *l = s_local(call);
    if (!in->name[0] || s_utf8_chars(in->name) > 100)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "name",
                           "name must be 1 to 100 characters");
    if (in->days < 0 || in->days > 3650)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "days",
                           "days must be 0 (never expires) to 3650");
    Sr__TokenCreated *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__token_created__init(out);
    out->info = s_token_insert(l->db, call->arena, call->principal->user_id, "api", in->name,
                               (int64_t)in->days * 86400000, &out->token);
    if (!out->info)
        return s_db_fail(call, l->db, "token");
    sr_rpc_audit(call, "token", s_num(call->arena, out->info->id), "", NULL, &out->info->base);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_token_list(sr_rpc_call_t *call, const ProtobufCMessage *request,
                               ProtobufCMessage **reply)
{
    const Sr__TokenList *in = (const Sr__TokenList *)request;
    gw_local_t *l = s_local(call);
    int64_t owner = in->user_id ? in->user_id : call->principal->user_id;
    if (owner != call->principal->user_id && !sr_perm_allows(call->principal, "tokens.admin"))
        return sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", "user_id",
                           "listing another user's tokens needs tokens.admin");
    int64_t after = in->cursor[0] ? strtoll(in->cursor, NULL, 10) : 0;
    int limit = sr_page_limit(in->limit);
    const char *params[] = {s_num(call->arena, owner), s_num(call->arena, after),
                            s_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(l->db,
                                "SELECT " TOKEN_COLS " FROM access.tokens WHERE user_id = $1 AND "
                                "id > $2 ORDER BY id LIMIT $3",
                                3, params);
    if (!res)
        return s_db_fail(call, l->db, "tokens");
    Sr__TokenPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__token_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->tokens = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->tokens);
    for (int i = 0; i < rows; i++)
        out->tokens[out->n_tokens++] = s_token_row(call->arena, res, i);
    out->next_cursor =
        PQntuples(res) > limit ? (char *)s_num(call->arena, out->tokens[rows - 1]->id) : "";
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_token_revoke(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                 ProtobufCMessage **reply)
{
    const Sr__IdRequest *in = (const Sr__IdRequest *)request;
    gw_local_t *l = s_local(call);
    int64_t owner = sr_perm_allows(call->principal, "tokens.admin") ? 0 : call->principal->user_id;
    int failed;
    Sr__ApiToken *t = s_revoke(call, in->id, owner, &failed);
    if (failed)
        return s_db_fail(call, l->db, "token");
    if (!t)
        return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", "id",
                           "no active token %lld", (long long)in->id);
    Sr__ApiToken after = *t;
    after.revoked_us = sr_clock_now_us();
    sr_rpc_audit(call, "token", s_num(call->arena, t->id), "", &t->base, &after.base);
    Sr__Empty *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__empty__init(out);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* --- regions ------------------------------------------------------------------------------- */

static Sr__Region *s_region_load(sr_db_t *db, sr_arena_t *arena, int64_t id, int lock, int *failed)
{
    const char *params[] = {s_num(arena, id)};
    PGresult *res =
        sr_db_query(db,
                    lock ? "SELECT " REGION_COLS " FROM access.regions WHERE id = $1 FOR UPDATE"
                         : "SELECT " REGION_COLS " FROM access.regions WHERE id = $1",
                    1, params);
    *failed = !res;
    Sr__Region *r = res && PQntuples(res) == 1 ? s_region_row(arena, res, 0) : NULL;
    PQclear(res);
    return r;
}

static Sr__Status s_not_found(sr_rpc_call_t *call, const char *what, int64_t id)
{
    return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", "id", "no %s %lld", what,
                       (long long)id);
}

static Sr__Status s_stale(sr_rpc_call_t *call, const char *what, int64_t id, int64_t have,
                          int64_t sent)
{
    return sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "version_conflict", "version",
                       "%s %lld is at version %lld, not %lld: read it again", what, (long long)id,
                       (long long)have, (long long)sent);
}

static Sr__Status s_region_get(sr_rpc_call_t *call, const ProtobufCMessage *request,
                               ProtobufCMessage **reply)
{
    const Sr__IdRequest *in = (const Sr__IdRequest *)request;
    gw_local_t *l = s_local(call);
    int failed;
    Sr__Region *r = s_region_load(l->db, call->arena, in->id, 0, &failed);
    if (failed)
        return s_db_fail(call, l->db, "region");
    if (!r || !sr_principal_sees_region(call->principal, r->code))
        return s_not_found(call, "region", in->id);
    *reply = &r->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_region_list(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                ProtobufCMessage **reply)
{
    const Sr__RegionList *in = (const Sr__RegionList *)request;
    gw_local_t *l = s_local(call);
    const Sr__Principal *p = call->principal;
    int limit = sr_page_limit(in->limit);
    int hq = sr_principal_is_hq(p);
    const char *params[] = {s_num(call->arena, in->cursor[0] ? strtoll(in->cursor, NULL, 10) : 0),
                            s_num(call->arena, limit + 1), hq ? "t" : "f",
                            sr_db_text_array(call->arena, p->regions, p->n_regions)};
    PGresult *res = sr_db_query(l->db,
                                "SELECT " REGION_COLS " FROM access.regions WHERE id > $1 AND "
                                "($3::bool OR code = ANY($4::text[])) ORDER BY id LIMIT $2",
                                4, params);
    if (!res)
        return s_db_fail(call, l->db, "regions");
    Sr__RegionPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__region_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->regions = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->regions);
    for (int i = 0; i < rows; i++)
        out->regions[out->n_regions++] = s_region_row(call->arena, res, i);
    out->next_cursor =
        PQntuples(res) > limit ? (char *)s_num(call->arena, out->regions[rows - 1]->id) : "";
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_region_check(sr_rpc_call_t *call, const char *code, const char *name)
{
    if (code && !sr_region_code_ok(code))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "code",
                           "code must be 1 to 32 of a-z 0-9 _ -, starting with a letter or digit");
    if (name && (!name[0] || s_utf8_chars(name) > 100))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "name",
                           "name must be 1 to 100 characters");
    return SR__STATUS__STATUS_OK;
}

/* one mutation inside a transaction: fn fills *result and returns the status */
typedef struct {
    sr_rpc_call_t *call;
    const ProtobufCMessage *in;
    ProtobufCMessage *result;
    Sr__Status status;
} tx_t;

static int s_tx_run(sr_rpc_call_t *call, const ProtobufCMessage *in, int (*fn)(sr_db_t *, void *),
                    tx_t *tx)
{
    *tx = (tx_t){.call = call, .in = in, .status = SR__STATUS__STATUS_OK};
    int rc = sr_db_tx(s_local(call)->db, fn, tx);
    if (rc != 0 && tx->status == SR__STATUS__STATUS_OK)
        tx->status = s_db_fail(call, s_local(call)->db, "change");
    return tx->status == SR__STATUS__STATUS_OK ? 0 : -1;
}

/* s_region_write - run a statement that returns the region row, keep it, and put its event */
static int s_region_write(tx_t *tx, sr_db_t *db, const char *sql, const char *const *params,
                          const char *topic)
{
    PGresult *res = sr_db_query(db, sql, 2, params);
    if (!res) {
        tx->status = s_db_fail(tx->call, db, "region");
        return -1;
    }
    Sr__Region *r = s_region_row(tx->call->arena, res, 0);
    PQclear(res);
    tx->result = &r->base;
    return s_event(tx->call, topic, &r->base);
}

static int s_region_create_tx(sr_db_t *db, void *arg)
{
    tx_t *tx = arg;
    const Sr__RegionCreate *in = (const Sr__RegionCreate *)tx->in;
    const char *params[] = {in->code, in->name};
    return s_region_write(tx, db,
                          "INSERT INTO access.regions (code, name) VALUES ($1, $2) "
                          "RETURNING " REGION_COLS,
                          params, "region.created");
}

static Sr__Status s_region_create(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                  ProtobufCMessage **reply)
{
    const Sr__RegionCreate *in = (const Sr__RegionCreate *)request;
    Sr__Status st = s_region_check(call, in->code, in->name);
    tx_t tx;
    if (st != SR__STATUS__STATUS_OK)
        return st;
    if (s_tx_run(call, request, s_region_create_tx, &tx) < 0)
        return tx.status;
    Sr__Region *r = (Sr__Region *)tx.result;
    sr_rpc_audit(call, "region", s_num(call->arena, r->id), r->code, NULL, &r->base);
    *reply = tx.result;
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    tx_t tx;
    Sr__Region *before;
} region_tx_t;

static int s_region_update_tx(sr_db_t *db, void *arg)
{
    region_tx_t *rt = arg;
    tx_t *tx = &rt->tx;
    const Sr__RegionUpdate *in = (const Sr__RegionUpdate *)tx->in;
    int failed;
    rt->before = s_region_load(db, tx->call->arena, in->id, 1, &failed);
    if (failed) {
        tx->status = s_db_fail(tx->call, db, "region");
        return -1;
    }
    if (!rt->before) {
        tx->status = s_not_found(tx->call, "region", in->id);
        return -1;
    }
    if (rt->before->version != in->version) {
        tx->status = s_stale(tx->call, "region", in->id, rt->before->version, in->version);
        return -1;
    }
    int name = s_has_mask(in->update_mask, in->n_update_mask, "name");
    const char *params[] = {s_num(tx->call->arena, in->id), name ? in->name : rt->before->name};
    return s_region_write(tx, db,
                          "UPDATE access.regions SET name = $2, version = version + 1, "
                          "updated_at = now() WHERE id = $1 RETURNING " REGION_COLS,
                          params, "region.updated");
}

static Sr__Status s_region_update(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                  ProtobufCMessage **reply)
{
    const Sr__RegionUpdate *in = (const Sr__RegionUpdate *)request;
    int name = s_has_mask(in->update_mask, in->n_update_mask, "name");
    if (in->version <= 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "version",
                           "version is required: send the version you read");
    Sr__Status st = s_region_check(call, NULL, name ? in->name : NULL);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    region_tx_t rt;
    memset(&rt, 0, sizeof rt);
    if (s_tx_run(call, request, s_region_update_tx, &rt.tx) < 0)
        return rt.tx.status;
    Sr__Region *r = (Sr__Region *)rt.tx.result;
    sr_rpc_audit(call, "region", s_num(call->arena, r->id), r->code, &rt.before->base, &r->base);
    *reply = rt.tx.result;
    return SR__STATUS__STATUS_OK;
}

static int s_region_delete_tx(sr_db_t *db, void *arg)
{
    region_tx_t *rt = arg;
    tx_t *tx = &rt->tx;
    const Sr__IdRequest *in = (const Sr__IdRequest *)tx->in;
    int failed;
    rt->before = s_region_load(db, tx->call->arena, in->id, 1, &failed);
    if (failed || !rt->before) {
        tx->status =
            failed ? s_db_fail(tx->call, db, "region") : s_not_found(tx->call, "region", in->id);
        return -1;
    }
    const char *params[] = {s_num(tx->call->arena, in->id)};
    PGresult *res = sr_db_query(db, "DELETE FROM access.regions WHERE id = $1", 1, params);
    if (!res) {
        tx->status = s_db_fail(tx->call, db, "region");
        return -1;
    }
    PQclear(res);
    return s_event(tx->call, "region.deleted", &rt->before->base);
}

static Sr__Status s_region_delete(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                  ProtobufCMessage **reply)
{
    region_tx_t rt;
    memset(&rt, 0, sizeof rt);
    if (s_tx_run(call, request, s_region_delete_tx, &rt.tx) < 0)
        return rt.tx.status;
    sr_rpc_audit(call, "region", s_num(call->arena, rt.before->id), rt.before->code,
                 &rt.before->base, NULL);
    Sr__Empty *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__empty__init(out);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* --- users --------------------------------------------------------------------------------- */

static Sr__Status s_user_get(sr_rpc_call_t *call, const ProtobufCMessage *request,
                             ProtobufCMessage **reply)
{
    const Sr__IdRequest *in = (const Sr__IdRequest *)request;
    gw_local_t *l = s_local(call);
    int failed;
    Sr__User *u = s_user_load(l->db, call->arena, in->id, 0, &failed);
    if (failed)
        return s_db_fail(call, l->db, "user");
    if (!u || !s_sees_user(call->principal, u))
        return s_not_found(call, "user", in->id);
    *reply = &u->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_user_list(sr_rpc_call_t *call, const ProtobufCMessage *request,
                              ProtobufCMessage **reply)
{
    const Sr__UserList *in = (const Sr__UserList *)request;
    gw_local_t *l = s_local(call);
    const Sr__Principal *p = call->principal;
    static const struct {
        const char *sort, *order, *after;
    } sorts[] = {
        {"id", "u.id", "u.id > $5 AND $6::text IS NOT NULL"},
        {"-id", "u.id DESC", "u.id < $5 AND $6::text IS NOT NULL"},
        {"name", "u.name, u.id", "(u.name, u.id) > ($6, $5)"},
        {"-name", "u.name DESC, u.id DESC", "(u.name, u.id) < ($6, $5)"},
    };
    size_t s = 0;
    const char *sort = in->sort[0] ? in->sort : "id";
    while (s < 4 && strcmp(sorts[s].sort, sort) != 0)
        s++;
    if (s == 4)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "sort",
                           "sort must be id, -id, name or -name");
    if (in->role[0] && sr_role_parse(in->role) < 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "role",
                           "unknown role \"%.40s\"", in->role);
    char *key = "";
    int64_t after = 0;
    if (in->cursor[0] && sr_cursor_read(call->arena, in->cursor, &key, &after) < 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "cursor",
                           "not a cursor this list gave out");
    int limit = sr_page_limit(in->limit);
    char sql[1400];
    snprintf(sql, sizeof sql,
             "SELECT " USER_COLS " FROM access.users u WHERE ($1::bool OR EXISTS (SELECT 1 FROM "
             "access.user_regions ur JOIN access.regions r ON r.id = ur.region_id WHERE "
             "ur.user_id = u.id AND r.code = ANY($2::text[])) OR u.id = $9) "
             "AND ($3 = '' OR EXISTS (SELECT 1 FROM access.user_regions ur JOIN access.regions r "
             "ON r.id = ur.region_id WHERE ur.user_id = u.id AND r.code = $3)) "
             "AND ($4 = '' OR $4 = ANY(u.roles)) "
             "AND ($7 = '' OR strpos(u.name, $7) > 0 OR strpos(u.display_name, $7) > 0) "
             "AND ($10::bool OR %s) ORDER BY %s LIMIT $8",
             sorts[s].after, sorts[s].order);
    const char *params[] = {sr_principal_is_hq(p) ? "t" : "f",
                            sr_db_text_array(call->arena, p->regions, p->n_regions),
                            in->region,
                            in->role,
                            s_num(call->arena, after),
                            key,
                            in->q,
                            s_num(call->arena, limit + 1),
                            s_num(call->arena, p->user_id),
                            in->cursor[0] ? "f" : "t"};
    PGresult *res = sr_db_query(l->db, sql, 10, params);
    if (!res)
        return s_db_fail(call, l->db, "users");
    Sr__UserPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__user_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->users = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->users);
    for (int i = 0; i < rows; i++)
        out->users[out->n_users++] = s_user_row(call->arena, res, i);
    out->next_cursor = "";
    if (PQntuples(res) > limit) {
        const Sr__User *last = out->users[rows - 1];
        out->next_cursor = sr_cursor_make(call->arena, s >= 2 ? last->name : "", last->id);
    }
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* s_check_roles_regions - every role known, every region code existing; the bad one named */
static Sr__Status s_check_roles_regions(sr_rpc_call_t *call, sr_db_t *db, char **roles,
                                        size_t nroles, char **regions, size_t nregions)
{
    char field[32];
    for (size_t i = 0; i < nroles; i++)
        if (sr_role_parse(roles[i]) < 0) {
            snprintf(field, sizeof field, "roles[%zu]", i);
            return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", field,
                               "unknown role \"%.40s\"", roles[i]);
        }
    for (size_t i = 0; i < nregions; i++) {
        const char *params[] = {regions[i]};
        PGresult *res = sr_db_query(db, "SELECT 1 FROM access.regions WHERE code = $1", 1, params);
        if (!res)
            return s_db_fail(call, db, "region");
        int found = PQntuples(res) == 1;
        PQclear(res);
        if (!found) {
            snprintf(field, sizeof field, "regions[%zu]", i);
            return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", field,
                               "no region \"%.40s\"", regions[i]);
        }
    }
    return SR__STATUS__STATUS_OK;
}

/* s_bind_regions - the user's regions become exactly these codes */
static int s_bind_regions(sr_db_t *db, sr_arena_t *arena, int64_t user_id, char **regions, size_t n)
{
    const char *params[] = {s_num(arena, user_id), sr_db_text_array(arena, regions, n)};
    PGresult *res =
        sr_db_query(db, "DELETE FROM access.user_regions WHERE user_id = $1", 1, params);
    if (!res)
        return -1;
    PQclear(res);
    res = sr_db_query(db,
                      "INSERT INTO access.user_regions (user_id, region_id) SELECT $1, id FROM "
                      "access.regions WHERE code = ANY($2::text[])",
                      2, params);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

typedef struct {
    sr_db_t *db;
    const char *instance, *trace_id;
    const Sr__UserCreate *in;
    sr_arena_t *arena;
    Sr__User *out;
    char *hash;
} create_tx_t;

static int s_user_create_tx(sr_db_t *db, void *arg)
{
    create_tx_t *c = arg;
    const char *params[] = {c->in->name, c->in->display_name, c->hash,
                            sr_db_text_array(c->arena, c->in->roles, c->in->n_roles)};
    PGresult *res = sr_db_query(db,
                                "INSERT INTO access.users (name, display_name, password_hash, "
                                "roles) VALUES ($1, $2, $3, $4::text[]) RETURNING id",
                                4, params);
    if (!res)
        return -1;
    int64_t id = s_i64(res, 0, 0);
    PQclear(res);
    int failed;
    if (s_bind_regions(db, c->arena, id, c->in->regions, c->in->n_regions) < 0 ||
        !(c->out = s_user_load(db, c->arena, id, 0, &failed)))
        return -1;
    return sr_outbox_put(db, "access", c->instance, "user.created", &c->out->base, c->trace_id,
                         NULL);
}

Sr__Status gatewayd_user_create(sr_db_t *db, const char *instance, const Sr__UserCreate *in,
                                sr_arena_t *arena, Sr__User **out, Sr__Error **error)
{
    sr_rpc_call_t call = {.arena = arena, .principal = NULL};
    Sr__Status st = SR__STATUS__STATUS_OK;
    size_t plen = strlen(in->password);
    if (!s_name_ok(in->name))
        st = sr_rpc_fail(&call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "name",
                         "name must be 1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter "
                         "or digit");
    else if (s_utf8_chars(in->display_name) > 100)
        st = sr_rpc_fail(&call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "display_name",
                         "display_name is at most 100 characters");
    else if (plen < PASSWORD_MIN || plen > PASSWORD_MAX)
        st = sr_rpc_fail(&call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "password",
                         "password must be %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
    else
        st = s_check_roles_regions(&call, db, in->roles, in->n_roles, in->regions, in->n_regions);
    if (st != SR__STATUS__STATUS_OK) {
        *error = call.error;
        return st;
    }
    create_tx_t c = {.db = db, .instance = instance, .in = in, .arena = arena};
    c.hash = gatewayd_password_hash(in->password);
    if (!c.hash) {
        st = sr_rpc_fail(&call, SR__STATUS__STATUS_INTERNAL, "internal", NULL,
                         "cannot hash the password");
        *error = call.error;
        return st;
    }
    int rc = sr_db_tx(db, s_user_create_tx, &c);
    free(c.hash);
    if (rc != 0) {
        st = s_db_fail(&call, db, "user");
        *error = call.error;
        return st;
    }
    *out = c.out;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_user_create(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                ProtobufCMessage **reply)
{
    gw_local_t *l = s_local(call);
    Sr__User *u = NULL;
    Sr__Error *error = NULL;
    Sr__Status st = gatewayd_user_create(l->db, sr_service_instance(l->gw->svc),
                                         (const Sr__UserCreate *)request, call->arena, &u, &error);
    if (st != SR__STATUS__STATUS_OK) {
        call->error = error;
        return st;
    }
    sr_rpc_audit(call, "user", s_num(call->arena, u->id), u->n_regions ? u->regions[0] : "", NULL,
                 &u->base);
    *reply = &u->base;
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    tx_t tx;
    Sr__User *before;
    char *hash; /* the new password's, or NULL */
} user_tx_t;

static int s_user_update_tx(sr_db_t *db, void *arg)
{
    user_tx_t *ut = arg;
    tx_t *tx = &ut->tx;
    sr_rpc_call_t *call = tx->call;
    const Sr__UserUpdate *in = (const Sr__UserUpdate *)tx->in;
    int failed;
    ut->before = s_user_load(db, call->arena, in->id, 1, &failed);
    if (failed || !ut->before) {
        tx->status = failed ? s_db_fail(call, db, "user") : s_not_found(call, "user", in->id);
        return -1;
    }
    if (ut->before->version != in->version) {
        tx->status = s_stale(call, "user", in->id, ut->before->version, in->version);
        return -1;
    }
    char **mask = in->update_mask;
    size_t nm = in->n_update_mask;
    const Sr__User *b = ut->before;
    int roles = s_has_mask(mask, nm, "roles"), regions = s_has_mask(mask, nm, "regions");
    const char *params[] = {
        s_num(call->arena, in->id),
        s_has_mask(mask, nm, "display_name") ? in->display_name : b->display_name,
        roles ? sr_db_text_array(call->arena, in->roles, in->n_roles)
              : sr_db_text_array(call->arena, b->roles, b->n_roles),
        (s_has_mask(mask, nm, "disabled") ? in->disabled : b->disabled) ? "t" : "f",
        ut->hash,
    };
    PGresult *res = sr_db_query(db,
                                "UPDATE access.users SET display_name = $2, roles = $3::text[], "
                                "disabled = $4, password_hash = coalesce($5, password_hash), "
                                "version = version + 1, updated_at = now() WHERE id = $1",
                                5, params);
    if (!res) {
        tx->status = s_db_fail(call, db, "user");
        return -1;
    }
    PQclear(res);
    if (ut->hash) { /* a new password ends every session and API token of the old one */
        res = sr_db_query(db,
                          "UPDATE access.tokens SET revoked_at = now() WHERE user_id = $1 AND "
                          "revoked_at IS NULL",
                          1, params);
        if (!res) {
            tx->status = s_db_fail(call, db, "tokens");
            return -1;
        }
        PQclear(res);
    }
    if (regions && s_bind_regions(db, call->arena, in->id, in->regions, in->n_regions) < 0) {
        tx->status = s_db_fail(call, db, "user");
        return -1;
    }
    Sr__User *u = s_user_load(db, call->arena, in->id, 0, &failed);
    if (!u) {
        tx->status = s_db_fail(call, db, "user");
        return -1;
    }
    tx->result = &u->base;
    return s_event(call, "user.updated", &u->base);
}

static Sr__Status s_user_update(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                ProtobufCMessage **reply)
{
    const Sr__UserUpdate *in = (const Sr__UserUpdate *)request;
    gw_local_t *l = s_local(call);
    char **mask = in->update_mask;
    size_t nm = in->n_update_mask;
    if (in->version <= 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "version",
                           "version is required: send the version you read");
    if (s_has_mask(mask, nm, "display_name") && s_utf8_chars(in->display_name) > 100)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "display_name",
                           "display_name is at most 100 characters");
    size_t plen = strlen(in->password);
    int password = s_has_mask(mask, nm, "password");
    if (password && (plen < PASSWORD_MIN || plen > PASSWORD_MAX))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "password",
                           "password must be %d to %d bytes", PASSWORD_MIN, PASSWORD_MAX);
    Sr__Status st =
        s_check_roles_regions(call, l->db, s_has_mask(mask, nm, "roles") ? in->roles : NULL,
                              s_has_mask(mask, nm, "roles") ? in->n_roles : 0,
                              s_has_mask(mask, nm, "regions") ? in->regions : NULL,
                              s_has_mask(mask, nm, "regions") ? in->n_regions : 0);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    user_tx_t ut;
    memset(&ut, 0, sizeof ut);
    if (password && !(ut.hash = gatewayd_password_hash(in->password)))
        return sr_rpc_fail(call, SR__STATUS__STATUS_INTERNAL, "internal", NULL,
                           "cannot hash the password");
    char *hash = ut.hash;
    int rc = s_tx_run(call, request, s_user_update_tx, &ut.tx);
    free(hash);
    if (rc < 0)
        return ut.tx.status;
    gatewayd_auth_forget(l->gw->auth, 0, in->id);
    Sr__User *u = (Sr__User *)ut.tx.result;
    sr_rpc_audit(call, "user", s_num(call->arena, u->id), u->n_regions ? u->regions[0] : "",
                 &ut.before->base, &u->base);
    *reply = &u->base;
    return SR__STATUS__STATUS_OK;
}

/* --- the audit log ------------------------------------------------------------------------- */

static Sr__Status s_audit_list(sr_rpc_call_t *call, const ProtobufCMessage *request,
                               ProtobufCMessage **reply)
{
    const Sr__AuditList *in = (const Sr__AuditList *)request;
    gw_local_t *l = s_local(call);
    int limit = sr_page_limit(in->limit);
    int64_t before = in->cursor[0] ? strtoll(in->cursor, NULL, 10) : 0;
    const char *params[] = {s_num(call->arena, before),
                            s_num(call->arena, in->actor_id),
                            in->action,
                            in->entity,
                            in->entity_id,
                            in->region,
                            s_num(call->arena, in->since_us),
                            s_num(call->arena, in->until_us),
                            s_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(
        l->db,
        "SELECT id, " US(
            "at") ", coalesce(actor_id, 0), actor_name, array_to_string(actor_roles, "
                  "','), region, action, entity, entity_id, coalesce(before::text, ''), "
                  "coalesce(after::text, ''), request_id, method FROM access.audit WHERE "
                  "($1::bigint = 0 OR id < $1) AND ($2::bigint = 0 OR actor_id = $2) AND ($3 = '' "
                  "OR "
                  "action = $3) AND ($4 = '' OR entity = $4) AND ($5 = '' OR entity_id = $5) AND "
                  "($6 = '' "
                  "OR region = $6) AND ($7::bigint = 0 OR at >= to_timestamp($7::bigint / 1e6)) "
                  "AND "
                  "($8::bigint = 0 OR at < to_timestamp($8::bigint / 1e6)) ORDER BY id DESC LIMIT "
                  "$9",
        9, params);
    if (!res)
        return s_db_fail(call, l->db, "audit");
    Sr__AuditPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__audit_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->entries = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->entries);
    for (int i = 0; i < rows; i++) {
        Sr__AuditEntry *e = sr_arena_alloc(call->arena, sizeof *e);
        sr__audit_entry__init(e);
        e->id = s_i64(res, i, 0);
        e->at_us = s_i64(res, i, 1);
        e->actor_id = s_i64(res, i, 2);
        e->actor_name = s_str(call->arena, res, i, 3);
        e->actor_roles = sr_arena_split(call->arena, PQgetvalue(res, i, 4), ',', &e->n_actor_roles);
        e->region = s_str(call->arena, res, i, 5);
        e->action = s_str(call->arena, res, i, 6);
        e->entity = s_str(call->arena, res, i, 7);
        e->entity_id = s_str(call->arena, res, i, 8);
        e->before = s_str(call->arena, res, i, 9);
        e->after = s_str(call->arena, res, i, 10);
        e->request_id = s_str(call->arena, res, i, 11);
        e->method = s_str(call->arena, res, i, 12);
        out->entries[out->n_entries++] = e;
    }
    out->next_cursor =
        PQntuples(res) > limit ? (char *)s_num(call->arena, out->entries[rows - 1]->id) : "";
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* --- the table ----------------------------------------------------------------------------- */

#define M(name, fn, req, rep, perm)                                                                \
    {                                                                                              \
        name, fn, &req##__descriptor, &rep##__descriptor, perm                                     \
    }

const sr_rpc_method_t gatewayd_access_methods[] = {
    M("access.auth.login", s_login, sr__login_request, sr__login_reply, NULL),
    M("access.auth.logout", s_logout, sr__empty, sr__empty, "tokens.own"),
    M("access.me.get", s_me, sr__empty, sr__me_reply, "me.read"),
    M("access.token.list", s_token_list, sr__token_list, sr__token_page, "tokens.own"),
    M("access.token.create", s_token_create, sr__token_create, sr__token_created, "tokens.own"),
    M("access.token.revoke", s_token_revoke, sr__id_request, sr__empty, "tokens.own"),
    M("access.region.list", s_region_list, sr__region_list, sr__region_page, "regions.read"),
    M("access.region.get", s_region_get, sr__id_request, sr__region, "regions.read"),
    M("access.region.create", s_region_create, sr__region_create, sr__region, "regions.write"),
    M("access.region.update", s_region_update, sr__region_update, sr__region, "regions.write"),
    M("access.region.delete", s_region_delete, sr__id_request, sr__empty, "regions.write"),
    M("access.user.list", s_user_list, sr__user_list, sr__user_page, "users.read"),
    M("access.user.get", s_user_get, sr__id_request, sr__user, "users.read"),
    M("access.user.create", s_user_create, sr__user_create, sr__user, "users.write"),
    M("access.user.update", s_user_update, sr__user_update, sr__user, "users.write"),
    M("access.audit.list", s_audit_list, sr__audit_list, sr__audit_page, "audit.read"),
};

const size_t gatewayd_access_method_count =
    sizeof gatewayd_access_methods / sizeof gatewayd_access_methods[0];

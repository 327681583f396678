/* gatewayd_routes - the one route table, and how an HTTP request becomes a call and back.
 *
 * A route is {method, path pattern, owning service, RPC method, request type, reply type,
 * permission, flags}; adding a service's API is adding rows (and their openapi.yaml entries,
 * which a test holds the table to). Serving a request: the bearer token gives the principal,
 * the token's bucket may answer 429, the route's permission may answer 403; the JSON body (an
 * object), the {path} parameters and the query parameters are merged into one JSON object -
 * each path and query parameter must be a scalar field of the request message, typed as that
 * field is - and decoded by the generic codec, which names the offending field on any error;
 * `limit` must be 1..200; a PATCH gets the body's keys as update_mask. The reply message is
 * encoded back to JSON; a failed call's status becomes the HTTP status with the error body
 * {"error":{"code","message","field"}}. A successful mutation writes its audit row.
 */
#include "gatewayd.h"

#include "rooms.pb-c.h"
#include "tasks.pb-c.h"
#include "sr_alloc.h"
#include "sr_cursor.h"
#include "sr_log.h"
#include "sr_pbjson.h"
#include "sr_perm.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D(t) &sr__##t##__descriptor

#define ACCESS(m, p, rpc, req, rep, perm, flags, summary)                                          \
    {                                                                                              \
        m, p, GW_SVC_ACCESS, rpc, D(req), D(rep), perm, flags, summary                             \
    }
#define TASKS(m, p, rpc, req, rep, perm, flags, summary)                                           \
    {                                                                                              \
        m, p, GW_SVC_TASKS, rpc, D(req), D(rep), perm, flags, summary                              \
    }
#define METRICS(m, p, rpc, req, rep, perm, flags, summary)                                         \
    {                                                                                              \
        m, p, GW_SVC_METRICS, rpc, D(req), D(rep), perm, flags, summary                            \
    }

const gw_route_t gatewayd_routes[] = {
    ACCESS("POST", "/api/v1/auth/login", "access.auth.login", login_request, login_reply, NULL,
           GW_PUBLIC | GW_LOGIN | GW_MUTATION, "Log in with a user name and password"),
    ACCESS("POST", "/api/v1/auth/logout", "access.auth.logout", empty, empty, "tokens.own",
           GW_MUTATION, "Revoke the token this request carries"),
    ACCESS("GET", "/api/v1/me", "access.me.get", empty, me_reply, "me.read", 0,
           "The caller's account, regions and permissions"),
    ACCESS("GET", "/api/v1/tokens", "access.token.list", token_list, token_page, "tokens.own", 0,
           "List tokens (one's own; admins: any user's)"),
    ACCESS("POST", "/api/v1/tokens", "access.token.create", token_create, token_created,
           "tokens.own", GW_MUTATION | GW_CREATED, "Create a long-lived API token"),
    ACCESS("DELETE", "/api/v1/tokens/{id}", "access.token.revoke", id_request, empty, "tokens.own",
           GW_MUTATION, "Revoke a token"),
    ACCESS("GET", "/api/v1/regions", "access.region.list", region_list, region_page, "regions.read",
           0, "List regions"),
    ACCESS("POST", "/api/v1/regions", "access.region.create", region_create, region,
           "regions.write", GW_MUTATION | GW_CREATED, "Create a region"),
    ACCESS("GET", "/api/v1/regions/{id}", "access.region.get", id_request, region, "regions.read",
           0, "Read a region"),
    ACCESS("PATCH", "/api/v1/regions/{id}", "access.region.update", region_update, region,
           "regions.write", GW_MUTATION | GW_MASK, "Rename a region"),
    ACCESS("DELETE", "/api/v1/regions/{id}", "access.region.delete", id_request, empty,
           "regions.write", GW_MUTATION, "Delete a region no user is bound to"),
    ACCESS("GET", "/api/v1/users", "access.user.list", user_list, user_page, "users.read", 0,
           "List users"),
    ACCESS("POST", "/api/v1/users", "access.user.create", user_create, user, "users.write",
           GW_MUTATION | GW_CREATED, "Create a user"),
    ACCESS("GET", "/api/v1/users/{id}", "access.user.get", id_request, user, "users.read", 0,
           "Read a user"),
    ACCESS("PATCH", "/api/v1/users/{id}", "access.user.update", user_update, user, "users.write",
           GW_MUTATION | GW_MASK, "Change a user's name, roles, regions, password or state"),
    ACCESS("GET", "/api/v1/audit", "access.audit.list", audit_list, audit_page, "audit.read", 0,
           "Read the audit log, newest first"),
    METRICS("GET", "/api/v1/rooms", "metrics.room.list", room_list, room_page, "rooms.read", 0,
            "List registered rooms"),
    METRICS("GET", "/api/v1/rooms/{platform}/{room_id}", "metrics.room.get", room_key, room,
            "rooms.read", 0, "Read a room"),
    METRICS("PUT", "/api/v1/rooms/{platform}/{room_id}", "metrics.room.put", room_put, room,
            "rooms.write", GW_MUTATION, "Register a room or change its region and name"),
    METRICS("GET", "/api/v1/rooms/{platform}/{room_id}/minutes", "metrics.room.minutes",
            room_minutes_request, room_minutes_page, "rooms.read", 0,
            "A room's numbers per minute"),
    TASKS("GET", "/api/v1/projects", "tasks.project.list", project_list, project_page,
          "projects.read", 0, "List projects (campaigns)"),
    TASKS("POST", "/api/v1/projects", "tasks.project.create", project_create, project,
          "projects.plan", GW_MUTATION | GW_CREATED, "Create a project"),
    {"GET", "/api/v1/projects/{id}", GW_SVC_TASKS, "tasks.project.get", D(task_id), D(project),
     "projects.read", 0, "Read a project",
     "SELECT * FROM tasks.api_projects WHERE id = $1::bigint AND ($2::bool OR region = "
     "ANY($3::text[]))"},
    TASKS("PATCH", "/api/v1/projects/{id}", "tasks.project.update", project_update, project,
          "projects.plan", GW_MUTATION | GW_MASK, "Change a project or move its status"),
    {"GET", "/api/v1/projects/{project_id}/tasks", GW_SVC_TASKS, "tasks.task.list", D(task_list),
     D(task_page), "projects.read", 0, "List a project's tasks",
     "SELECT * FROM tasks.api_tasks WHERE project_id = $1::bigint AND ($2::bool OR region = "
     "ANY($3::text[])) AND id > $4::bigint ORDER BY id LIMIT $5::int"},
    TASKS("GET", "/api/v1/projects/{id}/kanban", "tasks.project.kanban", task_id, kanban,
          "projects.read", 0, "A project's tasks by status, with WIP limits"),
    TASKS("GET", "/api/v1/projects/{id}/gantt", "tasks.project.gantt", task_id, gantt,
          "projects.read", 0, "A project's tasks on a timeline, with the critical path"),
    TASKS("GET", "/api/v1/projects/{project_id}/recurring", "tasks.recurring.list", recurring_list,
          recurring_page, "projects.read", 0, "List a project's recurring tasks"),
    TASKS("POST", "/api/v1/projects/{project_id}/recurring", "tasks.recurring.create",
          recurring_rule, recurring_rule, "projects.plan", GW_MUTATION | GW_CREATED,
          "Create a recurring task (daily or on weekdays)"),
    TASKS("DELETE", "/api/v1/recurring/{id}", "tasks.recurring.delete", task_id, recurring_rule,
          "projects.plan", GW_MUTATION, "Stop a recurring task (the tasks made stay)"),
    TASKS("GET", "/api/v1/shows", "tasks.show.list", show_list, show_page, "projects.read", 0,
          "List shows"),
    TASKS("POST", "/api/v1/shows", "tasks.show.create", show_create, show, "projects.plan",
          GW_MUTATION | GW_CREATED, "Schedule a show"),
    TASKS("GET", "/api/v1/shows/{id}", "tasks.show.get", task_id, show, "projects.read", 0,
          "Read a show"),
    TASKS("PATCH", "/api/v1/shows/{id}", "tasks.show.update", show_update, show, "projects.plan",
          GW_MUTATION | GW_MASK, "Change a show or move its status"),
    TASKS("POST", "/api/v1/shows/{id}/apply-template", "tasks.show.apply", template_apply,
          task_page, "projects.plan", GW_MUTATION | GW_CREATED,
          "Create a show's tasks from an SOP template"),
    TASKS("GET", "/api/v1/tasks", "tasks.task.list", task_list, task_page, "projects.read", 0,
          "List tasks (filters: project, show, assignee, status, phase, overdue, due soon)"),
    TASKS("POST", "/api/v1/tasks", "tasks.task.create", task_create, task, "projects.plan",
          GW_MUTATION | GW_CREATED, "Create a task"),
    TASKS("GET", "/api/v1/me/tasks", "tasks.task.mine", task_list, task_page, "projects.read", 0,
          "The caller's tasks across projects"),
    TASKS("GET", "/api/v1/tasks/{id}", "tasks.task.get", task_id, task, "projects.read", 0,
          "Read a task"),
    TASKS("PATCH", "/api/v1/tasks/{id}", "tasks.task.update", task_update, task, "tasks.work",
          GW_MUTATION | GW_MASK, "Change a task (crew: the status of their own)"),
    TASKS("POST", "/api/v1/tasks/{id}/dependencies", "tasks.task.depend", dependency_change, task,
          "projects.plan", GW_MUTATION, "Make a task wait for another (finish-to-start)"),
    TASKS("DELETE", "/api/v1/tasks/{id}/dependencies/{depends_on}", "tasks.task.undepend",
          dependency_change, task, "projects.plan", GW_MUTATION, "Remove a dependency"),
    TASKS("POST", "/api/v1/tasks/{id}/checklist", "tasks.checklist.add", checklist_add, task,
          "tasks.work", GW_MUTATION | GW_CREATED, "Add a checklist item"),
    TASKS("PATCH", "/api/v1/tasks/{id}/checklist/{item_id}", "tasks.checklist.update",
          checklist_update, task, "tasks.work", GW_MUTATION | GW_MASK,
          "Tick or rename a checklist item"),
    TASKS("GET", "/api/v1/tasks/{id}/comments", "tasks.comment.list", comment_list, comment_page,
          "projects.read", 0, "A task's comments, oldest first"),
    TASKS("POST", "/api/v1/tasks/{id}/comments", "tasks.comment.add", comment_add, comment,
          "tasks.work", GW_MUTATION | GW_CREATED, "Comment on a task"),
    TASKS("GET", "/api/v1/templates", "tasks.template.list", template_list, template_page,
          "projects.read", 0, "List SOP templates (shared and a project's)"),
    TASKS("POST", "/api/v1/templates", "tasks.template.create", template_create, template,
          "projects.plan", GW_MUTATION | GW_CREATED, "Create an SOP template"),
    TASKS("GET", "/api/v1/templates/{id}", "tasks.template.get", task_id, template, "projects.read",
          0, "Read an SOP template"),
    TASKS("DELETE", "/api/v1/templates/{id}", "tasks.template.delete", task_id, template,
          "projects.plan", GW_MUTATION, "Delete an SOP template (not a built-in one)"),
    TASKS("POST", "/api/v1/templates/{id}/copy", "tasks.template.copy", template_copy, template,
          "projects.plan", GW_MUTATION | GW_CREATED, "Copy a template to a project"),
    {"GET", "/api/v1/stream", GW_SVC_STREAM, NULL, NULL, NULL, "stream.read", GW_STREAM,
     "Live events as Server-Sent Events"},
};

const size_t gatewayd_route_count = sizeof gatewayd_routes / sizeof gatewayd_routes[0];

/* --- matching ------------------------------------------------------------------------------ */

/* s_match - does path fit pattern; {name} takes one non-empty segment */
static int s_match(const char *pattern, const char *path, gw_param_t *params, size_t *n)
{
    *n = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t seg = strcspn(s, "/");
            if (!close || seg == 0 || seg >= sizeof params[0].value || *n == GW_MAX_PARAMS)
                return 0;
            gw_param_t *param = &params[(*n)++];
            param->name = NULL;
            memcpy(param->value, s, seg);
            param->value[seg] = '\0';
            /* the name stays in the pattern: remember where */
            param->name = p + 1;
            p = close + 1;
            s += seg;
            continue;
        }
        if (*p != *s)
            return 0;
        p++, s++;
    }
    return *p == '\0' && *s == '\0';
}

const gw_route_t *gatewayd_route_match(const char *method, const char *path,
                                       gw_param_t params[GW_MAX_PARAMS], size_t *nparams,
                                       char *allow, size_t allow_len)
{
    allow[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < gatewayd_route_count; i++) {
        const gw_route_t *r = &gatewayd_routes[i];
        if (!s_match(r->pattern, path, params, nparams))
            continue;
        if (strcmp(r->method, method) == 0)
            return r;
        used += (size_t)snprintf(allow + used, used < allow_len ? allow_len - used : 0, "%s%s",
                                 used ? ", " : "", r->method);
    }
    *nparams = 0;
    return NULL;
}

/* --- errors -------------------------------------------------------------------------------- */

char *gatewayd_error_body(const char *code, const char *message, const char *field)
{
    json_t *err = json_pack("{s:s, s:s}", "code", code, "message", message);
    if (field && field[0])
        json_object_set_new(err, "field", json_string(field));
    json_t *root = json_pack("{s:o}", "error", err);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

gw_http_out_t gatewayd_error(unsigned status, const char *code, const char *field, const char *fmt,
                             ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return (gw_http_out_t){.status = status, .body = gatewayd_error_body(code, message, field)};
}

static unsigned s_http_status(Sr__Status st)
{
    switch (st) {
    case SR__STATUS__STATUS_OK:
        return 200;
    case SR__STATUS__STATUS_BAD_REQUEST:
        return 400;
    case SR__STATUS__STATUS_UNAUTHENTICATED:
        return 401;
    case SR__STATUS__STATUS_FORBIDDEN:
        return 403;
    case SR__STATUS__STATUS_NOT_FOUND:
        return 404;
    case SR__STATUS__STATUS_CONFLICT:
        return 409;
    case SR__STATUS__STATUS_UNAVAILABLE:
    case SR__STATUS__STATUS_DEADLINE:
        return 503;
    case SR__STATUS__STATUS_UNKNOWN_METHOD:
        return 502;
    default:
        return 500;
    }
}

/* --- building the request ------------------------------------------------------------------ */

static const ProtobufCFieldDescriptor *s_field(const ProtobufCMessageDescriptor *d,
                                               const char *name, size_t len)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (strlen(d->fields[i].name) == len && strncmp(d->fields[i].name, name, len) == 0)
            return &d->fields[i];
    return NULL;
}

/* s_scalar - value (text from a path or query) as the JSON the field's type wants; NULL with
 * *why set when it cannot be one */
static json_t *s_scalar(const ProtobufCFieldDescriptor *f, const char *value, const char **why)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED || f->type == PROTOBUF_C_TYPE_MESSAGE ||
        f->type == PROTOBUF_C_TYPE_BYTES) {
        *why = "cannot be given in the path or the query";
        return NULL;
    }
    char *end;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        long long v = strtoll(value, &end, 10);
        if (!value[0] || *end) {
            *why = "must be an integer";
            return NULL;
        }
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
            return json_boolean(value[0] == 't');
        *why = "must be true or false";
        return NULL;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = strtod(value, &end);
        if (!value[0] || *end) {
            *why = "must be a number";
            return NULL;
        }
        return json_real(v);
    }
    default: /* strings, enums by name, 64-bit integers as strings: the codec checks them */
        return json_string(value);
    }
}

/* s_set - put a path or query parameter into the request object */
static gw_http_out_t s_set(json_t *obj, const ProtobufCMessageDescriptor *d, const char *name,
                           size_t len, const char *value, const char *where)
{
    gw_http_out_t none = {0};
    char field[128];
    snprintf(field, sizeof field, "%.*s", (int)len, name);
    const ProtobufCFieldDescriptor *f = s_field(d, name, len);
    if (!f || strcmp(field, "update_mask") == 0)
        return gatewayd_error(400, "unknown_parameter", field, "%s parameter %s is not known here",
                              where, field);
    const char *why = NULL;
    json_t *v = s_scalar(f, value, &why);
    if (!v)
        return gatewayd_error(400, "invalid_parameter", field, "%s parameter %s %s", where, field,
                              why);
    json_t *had = json_object_get(obj, field);
    /* the body may send the same value as a number where the path has its text */
    int same = had && (json_equal(had, v) ||
                       (json_is_integer(had) && json_is_string(v) &&
                        json_integer_value(had) == strtoll(json_string_value(v), NULL, 10)));
    if (had && !same) {
        json_decref(v);
        return gatewayd_error(400, "conflicting_field", field,
                              "%s differs from the %s parameter of the same name", field, where);
    }
    json_object_set_new(obj, field, v);
    return none;
}

/* s_request - the JSON object for the route's request message */
static gw_http_out_t s_request(const gw_route_t *route, const gw_http_in_t *in, json_t **out)
{
    gw_http_out_t none = {0};
    json_t *obj = NULL;
    int has_body = strcmp(route->method, "GET") != 0 && strcmp(route->method, "DELETE") != 0;
    if (has_body && in->body && in->body_len > 0) {
        json_error_t jerr;
        obj = json_loadb(in->body, in->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj)
            return gatewayd_error(400, "malformed_json", NULL,
                                  "body is not JSON: %s (line %d, "
                                  "column %d)",
                                  jerr.text, jerr.line, jerr.column);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return gatewayd_error(400, "malformed_json", NULL, "body must be a JSON object");
        }
    } else
        obj = json_object();
    if (route->flags & GW_MASK) {
        if (json_object_get(obj, "update_mask")) {
            json_decref(obj);
            return gatewayd_error(400, "unknown_field", "update_mask",
                                  "update_mask is set by the gateway from the keys you send");
        }
        json_t *mask = json_array();
        const char *key;
        json_t *value;
        json_object_foreach(obj, key, value)
        {
            (void)value;
            json_array_append_new(mask, json_string(key));
        }
        json_object_set_new(obj, "update_mask", mask);
    }
    gw_http_out_t err;
    for (size_t i = 0; i < in->nparams; i++) {
        const char *name = in->params[i].name;
        err = s_set(obj, route->request, name, strcspn(name, "}"), in->params[i].value, "path");
        if (err.status) {
            json_decref(obj);
            return err;
        }
    }
    for (size_t i = 0; i < in->nquery; i++) {
        err = s_set(obj, route->request, in->query_names[i], strlen(in->query_names[i]),
                    in->query_values[i], "query");
        if (err.status) {
            json_decref(obj);
            return err;
        }
    }
    json_t *limit = json_object_get(obj, "limit");
    if (limit && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                  json_integer_value(limit) > SR_PAGE_LIMIT_MAX)) {
        json_decref(obj);
        return gatewayd_error(400, "invalid_field", "limit", "limit must be 1 to %d",
                              SR_PAGE_LIMIT_MAX);
    }
    *out = obj;
    return none;
}

/* --- serving ------------------------------------------------------------------------------- */

gw_http_out_t gatewayd_route_authorize(gatewayd_t *gw, const gw_route_t *route,
                                       const gw_http_in_t *in, sr_arena_t *arena,
                                       Sr__Principal **principal, int64_t *token_id)
{
    gw_http_out_t none = {0};
    *principal = NULL;
    *token_id = 0;
    if (route->flags & GW_PUBLIC)
        return none;
    switch (gatewayd_auth_check(gw->auth, in->authorization, arena, principal, token_id)) {
    case GW_AUTH_OK:
        break;
    case GW_AUTH_MISSING:
        return gatewayd_error(401, "unauthenticated", NULL,
                              "send Authorization: Bearer <token> (POST /api/v1/auth/login)");
    case GW_AUTH_BAD:
        return gatewayd_error(401, "bad_token", NULL, "the token is unknown, expired or revoked");
    default:
        return gatewayd_error(503, "unavailable", NULL,
                              "cannot check the token: the database "
                              "does not answer");
    }
    int wait = gatewayd_auth_rate(gw->auth, (*principal)->user_id);
    if (wait) {
        gw_http_out_t out =
            gatewayd_error(429, "rate_limited", NULL, "more than %lld requests per second",
                           (long long)gw->cfg->rate);
        out.retry_after = wait;
        return out;
    }
    if (!sr_perm_allows(*principal, route->permission))
        return gatewayd_error(403, "forbidden", NULL, "your roles do not allow %s",
                              route->permission);
    return none;
}

/* s_login_user - the user name of a login body, for the rate limit ("" when none) */
static const char *s_login_user(const ProtobufCMessage *request)
{
    return ((const Sr__LoginRequest *)request)->user;
}

static gw_http_out_t s_answer(gatewayd_t *gw, const gw_route_t *route, const gw_http_in_t *in,
                              const Sr__Principal *principal, const gw_result_t *r)
{
    if (r->status != SR__STATUS__STATUS_OK) {
        const Sr__Error *e = r->error;
        if (r->status == SR__STATUS__STATUS_DEADLINE)
            return gatewayd_error(
                503, "unavailable", NULL, "the %s service did not answer within %lld ms",
                gatewayd_service_name(route->service), (long long)gw->cfg->rpc_timeout_ms);
        return gatewayd_error(s_http_status(r->status), e && e->code[0] ? e->code : "error",
                              e ? e->field : NULL, "%s", e ? e->message : "failed");
    }
    if (route->flags & GW_MUTATION) {
        char method[300];
        snprintf(method, sizeof method, "%s %s", route->method, in->path);
        const Sr__Principal *actor = principal;
        Sr__Principal login = SR__PRINCIPAL__INIT;
        if ((route->flags & GW_LOGIN) && r->reply) { /* the actor is who just logged in */
            const Sr__User *u = ((const Sr__LoginReply *)r->reply)->user;
            login.user_id = u->id;
            login.user_name = u->name;
            login.roles = u->roles;
            login.n_roles = u->n_roles;
            actor = &login;
        }
        gw_audit_ctx_t ctx = {.principal = actor,
                              .action = route->permission ? route->permission : route->rpc,
                              .method = method,
                              .request_id = in->request_id};
        Sr__Audit none = SR__AUDIT__INIT;
        none.entity = (char *)route->rpc;
        gatewayd_audit_write(gw, &ctx, r->audit ? r->audit : &none);
    }
    gw_http_out_t out = {.status = (route->flags & GW_CREATED) ? 201 : 200};
    out.body = r->reply ? sr_pbjson_encode_text(r->reply) : sr_strdup("{}");
    return out;
}

/* s_serve - an authorized request: build the request, call, answer */
static gw_http_out_t s_serve(gatewayd_t *gw, const gw_route_t *route, const gw_http_in_t *in,
                             sr_arena_t *arena, const Sr__Principal *principal, int64_t token_id)
{
    gw_http_out_t out;
    json_t *obj = NULL;
    out = s_request(route, in, &obj);
    if (out.status)
        return out;
    ProtobufCMessage *request = NULL;
    sr_pbjson_error_t perr;
    int rc = sr_pbjson_decode(obj, route->request, arena, &request, &perr);
    json_decref(obj);
    if (rc < 0)
        return gatewayd_error(400, "invalid_field", perr.path, "%s%s%s", perr.path,
                              perr.path[0] ? ": " : "", perr.message);
    if (route->flags & GW_LOGIN) {
        int wait = gatewayd_auth_login_blocked(gw->auth, s_login_user(request), in->client_ip);
        if (wait) {
            out = gatewayd_error(429, "too_many_failures", NULL,
                                 "too many failed logins; try again in %d s", wait);
            out.retry_after = wait;
            return out;
        }
    }
    gw_result_t r = {0};
    if (route->view && gatewayd_view_read(gw, route, request, principal, arena, &r.reply) == 1)
        return s_answer(gw, route, in, principal, &r);
    r = gatewayd_call(gw, route->service, route->rpc, principal, in->request_id, request,
                      route->reply, token_id, in->client_ip, arena);
    if (route->flags & GW_LOGIN) {
        if (r.status == SR__STATUS__STATUS_UNAUTHENTICATED)
            gatewayd_auth_login_failed(gw->auth, s_login_user(request), in->client_ip);
        else if (r.status == SR__STATUS__STATUS_OK)
            gatewayd_auth_login_ok(gw->auth, s_login_user(request));
    }
    return s_answer(gw, route, in, principal, &r);
}

gw_http_out_t gatewayd_route_serve(gatewayd_t *gw, const gw_route_t *route, const gw_http_in_t *in)
{
    gatewayd_thread_t *t = gatewayd_thread(gw);
    sr_arena_t *arena = t->arena;
    Sr__Principal *principal;
    int64_t token_id;
    gw_http_out_t out = gatewayd_route_authorize(gw, route, in, arena, &principal, &token_id);
    if (!out.status)
        out = s_serve(gw, route, in, arena, principal, token_id);
    if (principal)
        out.principal_name = sr_strdup(principal->user_name);
    return out;
}

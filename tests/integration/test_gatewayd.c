/* test_gatewayd - sr-gatewayd over HTTP with a real PostgreSQL, sr-busd and sr-ingestd:
 * bootstrap-admin and login; every error class with its exact status and body (malformed JSON,
 * wrong types, unknown fields, validation, 401, 403, 404, 405, 409, 413, 415, 429 with
 * Retry-After, 503 when the owning service is stopped); bodies of 2 MiB, invalid UTF-8, deep
 * nesting, SQL-looking text stored verbatim; every role against every route as the permission
 * matrix says; region isolation (404 across regions), also when the owning service is called
 * without the gateway; audit rows; API tokens, logout, revocation and expiry; failed-login
 * limits; a stalled client closed after the connection timeout; HTTPS with a certificate. Needs the
 * SR_TEST_* environment (tests/run.sh). */
#include "rooms.pb-c.h"
#include "sr_alloc.h"
#include "sr_perm.h"
#include "sr_rpc.h"
#include "sr_test_api.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

typedef struct {
    sr_test_busd_t bus;
    sr_test_gateway_t gw;
    pid_t ingestd;
    uint16_t ingestd_admin;
    char rpc[64];
    char *admin; /* the admin's session token */
    sr_db_t *db;
    void *zctx;
    long long east, south; /* region ids */
} fixture_t;

static fixture_t s_fx;

static void s_start_ingestd(void)
{
    char *env[] = {sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL")),
                   sr_asprintf("SR_BUS_PUB=%s", s_fx.bus.front_ep),
                   sr_asprintf("SR_ADMIN_PORT=%u", s_fx.ingestd_admin),
                   sr_asprintf("SR_INGEST_COLLECTOR_BIND=tcp://127.0.0.1:%u", sr_test_free_port()),
                   sr_asprintf("SR_INGEST_RPC_BIND=%s", s_fx.rpc),
                   sr_asprintf("SR_INGEST_SPOOL_DIR=%s/gw-spool", sr_test_env("SR_TEST_TMP")),
                   NULL};
    char *log = sr_asprintf("%s/gw-ingestd.log", sr_test_env("SR_TEST_TMP"));
    s_fx.ingestd = sr_test_start_daemon("sr-ingestd", env, log, s_fx.ingestd_admin, 15000);
    free(log);
    sr_test_free_env(env);
}

static int s_setup(void **state)
{
    (void)state;
    s_fx.db = sr_test_db("test_gatewayd");
    sr_test_db_reset_schema(s_fx.db, "access");
    sr_test_db_reset_schema(s_fx.db, "metrics");
    sr_test_busd_start(&s_fx.bus);
    s_fx.ingestd_admin = sr_test_free_port();
    snprintf(s_fx.rpc, sizeof s_fx.rpc, "tcp://127.0.0.1:%u", sr_test_free_port());
    s_start_ingestd();
    assert_int_equal(sr_test_bootstrap_admin(), 0);
    char *extra[] = {"SR_GATEWAY_TOKEN_CACHE=0", "SR_GATEWAY_RATE=0",
                     "SR_GATEWAY_RPC_TIMEOUT=500ms", NULL};
    sr_test_gateway_start(&s_fx.gw, &s_fx.bus, s_fx.rpc, extra);
    s_fx.admin = sr_test_login(&s_fx.gw, SR_TEST_ADMIN, SR_TEST_ADMIN_PASSWORD);
    json_t *e = sr_test_api_json(&s_fx.gw, "POST", "/regions", s_fx.admin,
                                 "{\"code\":\"east\",\"name\":\"华东\"}", 201);
    json_t *s = sr_test_api_json(&s_fx.gw, "POST", "/regions", s_fx.admin,
                                 "{\"code\":\"south\",\"name\":\"华南\"}", 201);
    s_fx.east = sr_test_json_int(e, "id");
    s_fx.south = sr_test_json_int(s, "id");
    json_decref(e);
    json_decref(s);
    s_fx.zctx = zmq_ctx_new();
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    free(s_fx.admin);
    sr_db_destroy(&s_fx.db);
    zmq_ctx_term(s_fx.zctx);
    return 0;
}

/* s_expect - METHOD path answers status with exactly this body */
static void s_expect(const char *method, const char *path, const char *token, const char *body,
                     long status, const char *want)
{
    sr_test_reply_t r;
    long got = sr_test_api(&s_fx.gw, method, path, token, body, &r);
    if (got != status || (want && strcmp(r.body, want) != 0))
        fail_msg("%s %s: %ld %s\n  want %ld %s", method, path, got, r.body, status,
                 want ? want : "(any body)");
    sr_test_reply_free(&r);
}

/* s_user - create a user with one role and regions (a JSON array text); its id */
static long long s_user(const char *name, const char *role, const char *regions)
{
    char *body = sr_asprintf("{\"name\":\"%s\",\"password\":\"password-%s\",\"roles\":[\"%s\"],"
                             "\"regions\":%s}",
                             name, name, role, regions);
    json_t *u = sr_test_api_json(&s_fx.gw, "POST", "/users", s_fx.admin, body, 201);
    long long id = sr_test_json_int(u, "id");
    json_decref(u);
    free(body);
    return id;
}

static char *s_login_as(const char *name)
{
    char *password = sr_asprintf("password-%s", name);
    char *token = sr_test_login(&s_fx.gw, name, password);
    free(password);
    return token;
}

static void test_login_and_me(void **state)
{
    (void)state;
    assert_int_equal(strlen(s_fx.admin), 47);
    assert_memory_equal(s_fx.admin, "srt_", 4);
    json_t *me = sr_test_api_json(&s_fx.gw, "GET", "/me", s_fx.admin, NULL, 200);
    assert_string_equal(sr_test_json_str(me, "name"), SR_TEST_ADMIN);
    assert_true(json_is_true(json_object_get(me, "hq")));
    size_t actions;
    sr_perm_all(&actions);
    assert_int_equal(json_array_size(json_object_get(me, "permissions")), actions);
    json_decref(me);
    const char *bad =
        "{\"error\":{\"code\":\"bad_credentials\",\"message\":\"unknown user or wrong "
        "password\"}}";
    s_expect("POST", "/auth/login", NULL, "{\"user\":\"" SR_TEST_ADMIN "\",\"password\":\"nope\"}",
             401, bad);
    s_expect("POST", "/auth/login", NULL, "{\"user\":\"nobody\",\"password\":\"nope-nope-1\"}", 401,
             bad);
    /* the token is stored as its SHA-256 only */
    char *sql = sr_asprintf("SELECT count(*) FROM access.tokens WHERE hash = "
                            "sha256(convert_to('%s', 'UTF8')) AND prefix = left('%s', 12)",
                            s_fx.admin, s_fx.admin);
    assert_int_equal(sr_test_db_number(s_fx.db, sql), 1);
    free(sql);
    assert_int_equal(sr_test_db_number(s_fx.db,
                                       "SELECT count(*) FROM access.tokens t, "
                                       "access.users u WHERE position(t.name IN "
                                       "u.password_hash) > 0 OR t.hash::text LIKE '%srt_%'"),
                     0);
    /* a second bootstrap is refused */
    assert_int_equal(sr_test_bootstrap_admin(), 1);
}

static void test_error_classes(void **state)
{
    (void)state;
    const char *a = s_fx.admin;
    s_expect("GET", "/me", NULL, NULL, 401,
             "{\"error\":{\"code\":\"unauthenticated\",\"message\":\"send Authorization: Bearer "
             "<token> (POST /api/v1/auth/login)\"}}");
    s_expect("GET", "/me", "srt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 401,
             "{\"error\":{\"code\":\"bad_token\",\"message\":\"the token is unknown, expired or "
             "revoked\"}}");
    s_expect("GET", "/me", "not-a-token", NULL, 401, NULL);
    s_expect("POST", "/regions", a, "{\"code\":", 400,
             "{\"error\":{\"code\":\"malformed_json\",\"message\":\"body is not JSON: unexpected "
             "token near end of file (line 1, column 8)\"}}");
    s_expect(
        "POST", "/regions", a, "[1]", 400,
        "{\"error\":{\"code\":\"malformed_json\",\"message\":\"body must be a JSON object\"}}");
    s_expect(
        "POST", "/regions", a, "{\"code\":5,\"name\":\"x\"}", 400,
        "{\"error\":{\"code\":\"invalid_field\",\"message\":\"code: expected string, got number\","
        "\"field\":\"code\"}}");
    s_expect("POST", "/regions", a, "{\"code\":\"north\",\"name\":\"x\",\"colour\":\"red\"}", 400,
             "{\"error\":{\"code\":\"invalid_field\",\"message\":\"colour: unknown field\","
             "\"field\":\"colour\"}}");
    s_expect("POST", "/regions", a, "{\"code\":\"North!\",\"name\":\"x\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"code must be 1 to 32 of a-z 0-9 _ -, "
             "starting with a letter or digit\",\"field\":\"code\"}}");
    s_expect("POST", "/users", a,
             "{\"name\":\"u1\",\"password\":\"password-u1\",\"roles\":[\"operator\",\"boss\"]}",
             400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"unknown role \\\"boss\\\"\","
             "\"field\":\"roles[1]\"}}");
    s_expect("GET", "/users?limit=201", a, NULL, 400,
             "{\"error\":{\"code\":\"invalid_field\",\"message\":\"limit must be 1 to 200\","
             "\"field\":\"limit\"}}");
    s_expect("GET", "/users?colour=red", a, NULL, 400,
             "{\"error\":{\"code\":\"unknown_parameter\",\"message\":\"query parameter colour is "
             "not known here\",\"field\":\"colour\"}}");
    s_expect("GET", "/users/abc", a, NULL, 400, NULL);
    s_expect(
        "GET", "/users/999999", a, NULL, 404,
        "{\"error\":{\"code\":\"not_found\",\"message\":\"no user 999999\",\"field\":\"id\"}}");
    s_expect("GET", "/nowhere", a, NULL, 404,
             "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}");
    sr_test_reply_t r;
    assert_int_equal(sr_test_api(&s_fx.gw, "DELETE", "/me", a, NULL, &r), 405);
    assert_string_equal(r.allow, "GET");
    assert_string_equal(r.body, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"DELETE "
                                "is not allowed here; use GET\"}}");
    assert_non_null(r.request_id);
    sr_test_reply_free(&r);
    /* 415: a body that is not declared JSON, refused before it is read */
    char *url = sr_asprintf("%s/regions", s_fx.gw.base);
    char *auth = sr_asprintf("Authorization: Bearer %s", a);
    const char *form[] = {auth, "Content-Type: text/plain", NULL};
    assert_int_equal(sr_test_http("POST", url, form, "{}", &r), 415);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"unsupported_media_type\",\"message\":"
                                "\"send the body as Content-Type: application/json\"}}");
    sr_test_reply_free(&r);
    /* 413: 2 MiB */
    char *big = sr_malloc(2 * 1024 * 1024 + 1);
    memset(big, 'a', 2 * 1024 * 1024);
    big[2 * 1024 * 1024] = '\0';
    s_expect("POST", "/regions", a, big, 413,
             "{\"error\":{\"code\":\"too_large\",\"message\":\"the body is over 1048576 "
             "bytes\"}}");
    free(big);
    /* invalid UTF-8 and deep nesting are malformed JSON, 400, and change nothing */
    s_expect("POST", "/regions", a, "{\"code\":\"x\xff\",\"name\":\"y\"}", 400, NULL);
    size_t depth = 100000;
    char *deep = sr_malloc(2 * depth + 16);
    size_t at = (size_t)sprintf(deep, "{\"code\":");
    for (size_t i = 0; i < depth; i++)
        deep[at++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[at++] = ']';
    deep[at++] = '}';
    deep[at] = '\0';
    assert_int_equal(sr_test_api(&s_fx.gw, "POST", "/regions", a, deep, &r), 400);
    assert_non_null(strstr(r.body, "maximum parsing depth"));
    sr_test_reply_free(&r);
    free(deep);
    assert_int_equal(sr_test_db_number(s_fx.db, "SELECT count(*) FROM access.regions"), 2);
    /* SQL-looking text is stored as it is */
    const char *sql = "Robert'); DROP TABLE access.users;-- \\\"x\\\"";
    char *body = sr_asprintf("{\"code\":\"bobby\",\"name\":\"%s\"}", sql);
    json_t *made = sr_test_api_json(&s_fx.gw, "POST", "/regions", a, body, 201);
    char *path = sr_asprintf("/regions/%lld", sr_test_json_int(made, "id"));
    json_t *got = sr_test_api_json(&s_fx.gw, "GET", path, a, NULL, 200);
    assert_string_equal(sr_test_json_str(got, "name"),
                        "Robert'); DROP TABLE access.users;-- \"x\"");
    assert_true(sr_test_db_number(s_fx.db, "SELECT count(*) FROM access.users") >= 1);
    s_expect("DELETE", path, a, NULL, 200, "{}");
    json_decref(got);
    json_decref(made);
    free(path);
    free(body);
    free(auth);
    free(url);
}

/* 409: a stale version, and a region still in use */
static void test_conflicts(void **state)
{
    (void)state;
    char *path = sr_asprintf("/regions/%lld", s_fx.east);
    json_t *r = sr_test_api_json(&s_fx.gw, "GET", path, s_fx.admin, NULL, 200);
    long long v = sr_test_json_int(r, "version");
    json_decref(r);
    char *body = sr_asprintf("{\"version\":\"%lld\",\"name\":\"华东大区\"}", v);
    json_t *after = sr_test_api_json(&s_fx.gw, "PATCH", path, s_fx.admin, body, 200);
    assert_int_equal(sr_test_json_int(after, "version"), v + 1);
    assert_string_equal(sr_test_json_str(after, "code"), "east"); /* not in the mask: kept */
    json_decref(after);
    char *want =
        sr_asprintf("{\"error\":{\"code\":\"version_conflict\",\"message\":\"region %lld "
                    "is at version %lld, not %lld: read it again\",\"field\":\"version\"}}",
                    s_fx.east, v + 1, v);
    s_expect("PATCH", path, s_fx.admin, body, 409, want);
    s_user("in-east", "viewer", "[\"east\"]");
    s_expect("DELETE", path, s_fx.admin, NULL, 409,
             "{\"error\":{\"code\":\"in_use\",\"message\":\"region is still in use\"}}");
    free(want);
    free(body);
    free(path);
}

typedef struct {
    const char *method, *path, *body, *action;
} gw_probe_t;

/* s_try - one request per route, for a role; its status */
static long s_try(const gw_probe_t *p, const char *token)
{
    return sr_test_api(&s_fx.gw, p->method, p->path, token, p->body, NULL);
}

/* every role against every route: 403 exactly when the matrix denies the route's action */
static void test_roles_against_routes(void **state)
{
    (void)state;
    /* bodies that are invalid or name nothing, so that allowed calls change little */
    char users1[64], regions1[64], tokens9[64];
    snprintf(users1, sizeof users1, "/users/%d", 1);
    snprintf(regions1, sizeof regions1, "/regions/%lld", s_fx.east);
    snprintf(tokens9, sizeof tokens9, "/tokens/%d", 999999);
    const gw_probe_t probes[] = {
        {"GET", "/me", NULL, "me.read"},
        {"GET", "/tokens", NULL, "tokens.own"},
        {"POST", "/tokens", "{}", "tokens.own"},
        {"DELETE", tokens9, NULL, "tokens.own"},
        {"GET", "/regions", NULL, "regions.read"},
        {"POST", "/regions", "{}", "regions.write"},
        {"GET", regions1, NULL, "regions.read"},
        {"PATCH", regions1, "{}", "regions.write"},
        {"DELETE", "/regions/999999", NULL, "regions.write"},
        {"GET", "/users", NULL, "users.read"},
        {"POST", "/users", "{}", "users.write"},
        {"GET", users1, NULL, "users.read"},
        {"PATCH", users1, "{}", "users.write"},
        {"GET", "/audit", NULL, "audit.read"},
        {"GET", "/rooms", NULL, "rooms.read"},
        {"GET", "/rooms/douyin/matrix-room", NULL, "rooms.read"},
        {"PUT", "/rooms/douyin/matrix-room", "{\"region\":\"nowhere!\"}", "rooms.write"},
        {"GET", "/rooms/douyin/matrix-room/minutes", NULL, "rooms.read"},
    };
    size_t checked = 0;
    for (int role = 0; role < SR_ROLES; role++) {
        char name[40];
        snprintf(name, sizeof name, "matrix-%s", sr_role_name((sr_role_t)role));
        s_user(name, sr_role_name((sr_role_t)role), "[\"east\"]");
        char *token = s_login_as(name);
        char *roles[] = {(char *)sr_role_name((sr_role_t)role)};
        Sr__Principal p = SR__PRINCIPAL__INIT;
        p.roles = roles;
        p.n_roles = 1;
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            long status = s_try(&probes[i], token);
            int allowed = sr_perm_allows(&p, probes[i].action);
            if ((status == 403) == allowed || status == 401 || status >= 500)
                fail_msg("%s: %s %s answered %ld, the matrix %s %s", name, probes[i].method,
                         probes[i].path, status, allowed ? "allows" : "denies", probes[i].action);
            checked++;
        }
        free(token);
    }
    print_message("roles x routes: %zu checked\n", checked);
}

/* a record of another region is not found, through the gateway and at the owner itself */
static void test_region_isolation(void **state)
{
    (void)state;
    long long south_user = s_user("only-south", "cs", "[\"south\"]");
    s_user("east-operator", "operator", "[\"east\"]");
    char *op = s_login_as("east-operator");
    char *path = sr_asprintf("/regions/%lld", s_fx.south);
    char *want = sr_asprintf("{\"error\":{\"code\":\"not_found\",\"message\":\"no region %lld\","
                             "\"field\":\"id\"}}",
                             s_fx.south);
    s_expect("GET", path, op, NULL, 404, want);
    free(path);
    free(want);
    path = sr_asprintf("/users/%lld", south_user);
    want = sr_asprintf("{\"error\":{\"code\":\"not_found\",\"message\":\"no user %lld\","
                       "\"field\":\"id\"}}",
                       south_user);
    s_expect("GET", path, op, NULL, 404, want);
    json_t *list = sr_test_api_json(&s_fx.gw, "GET", "/regions", op, NULL, 200);
    json_t *regions = json_object_get(list, "regions");
    assert_int_equal(json_array_size(regions), 1);
    assert_string_equal(sr_test_json_str(json_array_get(regions, 0), "code"), "east");
    json_decref(list);
    /* rooms live in sr-ingestd: the admin registers one in each region */
    json_decref(sr_test_api_json(&s_fx.gw, "PUT", "/rooms/douyin/7300001", s_fx.admin,
                                 "{\"region\":\"east\",\"name\":\"东区一号\"}", 200));
    json_decref(sr_test_api_json(&s_fx.gw, "PUT", "/rooms/douyin/7300002", s_fx.admin,
                                 "{\"region\":\"south\",\"name\":\"南区一号\"}", 200));
    s_expect("PUT", "/rooms/douyin/7300001", s_fx.admin, "{\"region\":\"south\"}", 409,
             "{\"error\":{\"code\":\"version_conflict\",\"message\":\"room douyin:7300001 is "
             "at version 1, not 0\",\"field\":\"version\"}}");
    s_expect("GET", "/rooms/douyin/7300002", op, NULL, 404,
             "{\"error\":{\"code\":\"not_found\",\"message\":\"no room douyin:7300002\","
             "\"field\":\"room_id\"}}");
    s_expect("GET", "/rooms/douyin/7300002/minutes", op, NULL, 404, NULL);
    list = sr_test_api_json(&s_fx.gw, "GET", "/rooms", op, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "rooms")), 1);
    json_decref(list);
    s_expect("PUT", "/rooms/douyin/7300003", op, "{\"region\":\"south\"}", 403,
             "{\"error\":{\"code\":\"forbidden\",\"message\":\"you may assign rooms to your own "
             "regions only\",\"field\":\"region\"}}");
    json_decref(sr_test_api_json(&s_fx.gw, "PUT", "/rooms/douyin/7300003", op,
                                 "{\"region\":\"east\"}", 200));
    /* the owner checks the principal itself: a call that skips the gateway gets no further */
    sr_rpc_client_t *c = sr_rpc_client_new(s_fx.zctx, s_fx.rpc, NULL);
    sr_arena_t *arena = sr_arena_new(4096);
    char *roles[] = {"viewer"}, *regions_east[] = {"east"};
    Sr__Principal viewer = SR__PRINCIPAL__INIT;
    viewer.roles = roles;
    viewer.n_roles = 1;
    viewer.regions = regions_east;
    viewer.n_regions = 1;
    Sr__RoomKey key = SR__ROOM_KEY__INIT;
    key.platform = "douyin";
    key.room_id = "7300002";
    ProtobufCMessage *reply;
    Sr__Error *error;
    assert_int_equal(sr_rpc_call(c, "metrics.room.get", &viewer, "t", &key.base,
                                 &sr__room__descriptor, 2000, arena, &reply, &error),
                     SR__STATUS__STATUS_NOT_FOUND);
    Sr__RoomPut put = SR__ROOM_PUT__INIT;
    put.platform = "douyin";
    put.room_id = "7300009";
    put.region = "east";
    assert_int_equal(sr_rpc_call(c, "metrics.room.put", &viewer, "t", &put.base,
                                 &sr__room__descriptor, 2000, arena, &reply, &error),
                     SR__STATUS__STATUS_FORBIDDEN);
    sr_arena_destroy(&arena);
    sr_rpc_client_destroy(&c);
    free(path);
    free(want);
    free(op);
}

/* every mutation leaves an audit row with actor, action, entity, before and after */
static void test_audit(void **state)
{
    (void)state;
    long long id = s_user("audited", "content", "[\"south\"]");
    char *path = sr_asprintf("/users/%lld", id);
    json_t *u = sr_test_api_json(&s_fx.gw, "GET", path, s_fx.admin, NULL, 200);
    char *body = sr_asprintf("{\"version\":\"%lld\",\"roles\":[\"content\",\"cs\"]}",
                             sr_test_json_int(u, "version"));
    json_decref(sr_test_api_json(&s_fx.gw, "PATCH", path, s_fx.admin, body, 200));
    json_decref(u);
    char *q = sr_asprintf("/audit?entity=user&entity_id=%lld", id);
    json_t *page = sr_test_api_json(&s_fx.gw, "GET", q, s_fx.admin, NULL, 200);
    json_t *entries = json_object_get(page, "entries");
    assert_int_equal(json_array_size(entries), 2);
    json_t *patch = json_array_get(entries, 0), *create = json_array_get(entries, 1);
    assert_string_equal(sr_test_json_str(patch, "action"), "users.write");
    assert_string_equal(sr_test_json_str(patch, "actor_name"), SR_TEST_ADMIN);
    assert_string_equal(sr_test_json_str(patch, "region"), "south");
    assert_non_null(strstr(sr_test_json_str(patch, "method"), "PATCH /api/v1/users/"));
    assert_non_null(strstr(sr_test_json_str(patch, "before"), "\"roles\": [\"content\"]"));
    assert_non_null(strstr(sr_test_json_str(patch, "after"), "\"roles\": [\"content\", \"cs\"]"));
    assert_string_equal(sr_test_json_str(create, "before"), "");
    assert_true(strlen(sr_test_json_str(create, "request_id")) > 0);
    json_decref(page);
    char *sql = sr_asprintf("SELECT count(*) FROM access.audit WHERE entity = 'user' AND "
                            "entity_id = '%lld' AND after->'roles' ? 'cs'",
                            id);
    assert_int_equal(sr_test_db_number(s_fx.db, sql), 1);
    /* mutations of sr-ingestd's rooms are audited here too */
    assert_true(sr_test_db_number(s_fx.db, "SELECT count(*) FROM access.audit WHERE entity = "
                                           "'room' AND action = 'rooms.write'") >= 2);
    char *viewer = s_login_as("matrix-viewer");
    s_expect("GET", "/audit", viewer, NULL, 403,
             "{\"error\":{\"code\":\"forbidden\",\"message\":\"your roles do not allow "
             "audit.read\"}}");
    free(viewer);
    free(sql);
    free(q);
    free(body);
    free(path);
}

/* API tokens: made, used, listed, revoked; logout revokes the session */
static void test_tokens(void **state)
{
    (void)state;
    s_user("scripter", "viewer", "[\"east\"]");
    char *session = s_login_as("scripter");
    json_t *made = sr_test_api_json(&s_fx.gw, "POST", "/tokens", session,
                                    "{\"name\":\"big screen\",\"days\":30}", 201);
    const char *api = sr_test_json_str(made, "token");
    json_t *me = sr_test_api_json(&s_fx.gw, "GET", "/me", api, NULL, 200);
    assert_string_equal(sr_test_json_str(me, "name"), "scripter");
    json_decref(me);
    json_t *list = sr_test_api_json(&s_fx.gw, "GET", "/tokens", session, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(list, "tokens")), 2);
    json_decref(list);
    char *path = sr_asprintf("/tokens/%lld", sr_test_json_int(json_object_get(made, "info"), "id"));
    s_expect("DELETE", path, session, NULL, 200, "{}");
    s_expect("GET", "/me", api, NULL, 401, NULL);
    s_expect("DELETE", path, session, NULL, 404, NULL);
    /* another user's token is not found for a non-admin */
    char *other = s_login_as("matrix-viewer");
    s_expect("GET", "/tokens?user_id=1", other, NULL, 403, NULL);
    free(other);
    s_expect("POST", "/auth/logout", session, NULL, 200, "{}");
    s_expect("GET", "/me", session, NULL, 401, NULL);
    /* a new password ends the user's sessions and API tokens; a body id equal to the path's is
     * fine as a number too */
    char *again = s_login_as("scripter");
    json_t *api2 =
        sr_test_api_json(&s_fx.gw, "POST", "/tokens", again, "{\"name\":\"second\"}", 201);
    json_t *me2 = sr_test_api_json(&s_fx.gw, "GET", "/me", again, NULL, 200);
    long long uid = sr_test_json_int(me2, "id");
    char *upath = sr_asprintf("/users/%lld", uid);
    json_t *u = sr_test_api_json(&s_fx.gw, "GET", upath, s_fx.admin, NULL, 200);
    char *body = sr_asprintf("{\"id\":%lld,\"version\":\"%lld\",\"password\":\"fresh-password-9\"}",
                             uid, sr_test_json_int(u, "version"));
    json_decref(sr_test_api_json(&s_fx.gw, "PATCH", upath, s_fx.admin, body, 200));
    s_expect("GET", "/me", again, NULL, 401, NULL);
    s_expect("GET", "/me", sr_test_json_str(api2, "token"), NULL, 401, NULL);
    free(sr_test_login(&s_fx.gw, "scripter", "fresh-password-9"));
    json_decref(u);
    json_decref(me2);
    json_decref(api2);
    free(body);
    free(upath);
    free(again);
    json_decref(made);
    free(path);
    free(session);
}

/* a second gateway with short sessions and a low rate: expiry and 429 with Retry-After */
static void test_expiry_and_rates(void **state)
{
    (void)state;
    sr_test_gateway_t gw;
    char *extra[] = {"SR_GATEWAY_TOKEN_CACHE=0",
                     "SR_GATEWAY_SESSION_TTL=2s",
                     "SR_GATEWAY_RATE=1",
                     "SR_GATEWAY_BURST=3",
                     "SR_GATEWAY_LOGIN_FAILURES=3",
                     "SR_GATEWAY_CONN_TIMEOUT=1s",
                     NULL};
    sr_test_gateway_start(&gw, &s_fx.bus, s_fx.rpc, extra);
    /* a client that sends half a request and stalls is closed after the timeout */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(gw.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, "GET /api/v1/me HTTP/1.1\r\nHost: x\r\n", 35), 35);
    struct pollfd pfd = {fd, POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    char byte;
    assert_true(read(fd, &byte, 1) <= 0); /* closed, nothing answered */
    close(fd);
    s_user("limited", "viewer", "[\"east\"]");
    char *token = sr_test_login(&gw, "limited", "password-limited");
    long statuses[4];
    for (int i = 0; i < 4; i++)
        statuses[i] = sr_test_api(&gw, "GET", "/me", token, NULL, NULL);
    assert_int_equal(statuses[2], 200);
    sr_test_reply_t r;
    assert_int_equal(sr_test_api(&gw, "GET", "/me", token, NULL, &r), 429);
    assert_non_null(r.retry_after);
    assert_true(atoi(r.retry_after) >= 1);
    assert_string_equal(r.body, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"more than 1 "
                                "requests per second\"}}");
    sr_test_reply_free(&r);
    sr_test_sleep_ms(2500);
    assert_int_equal(sr_test_api(&gw, "GET", "/me", token, NULL, NULL), 401); /* expired */
    /* failed logins: the fourth attempt after three failures is refused, even a right one */
    for (int i = 0; i < 3; i++)
        assert_int_equal(sr_test_api(&gw, "POST", "/auth/login", NULL,
                                     "{\"user\":\"limited\",\"password\":\"wrong-pass\"}", NULL),
                         401);
    assert_int_equal(sr_test_api(&gw, "POST", "/auth/login", NULL,
                                 "{\"user\":\"limited\",\"password\":\"password-limited\"}", &r),
                     429);
    assert_non_null(r.retry_after);
    assert_true(atoi(r.retry_after) > 800);
    assert_non_null(strstr(r.body, "\"code\":\"too_many_failures\""));
    sr_test_reply_free(&r);
    sr_test_gateway_stop(&gw);
    free(token);
}

/* the owning service stopped: 503 within the deadline, never a hang; back when it is */
static void test_owner_stopped(void **state)
{
    (void)state;
    sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    s_expect("GET", "/rooms", s_fx.admin, NULL, 503,
             "{\"error\":{\"code\":\"unavailable\",\"message\":\"the metrics service did not "
             "answer within 500 ms\"}}");
    s_start_ingestd();
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        status = sr_test_api(&s_fx.gw, "GET", "/rooms", s_fx.admin, NULL, NULL);
        if (status != 200)
            sr_test_sleep_ms(100);
    }
    assert_int_equal(status, 200);
}

/* /metrics counts requests by route and status */
static void test_metrics(void **state)
{
    (void)state;
    assert_true(sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_requests_total{route=\"GET "
                                                    "/api/v1/me\",status=\"200\"}") >= 1);
    assert_true(
        sr_test_admin_metric(s_fx.gw.admin,
                             "sr_gateway_requests_total{route=\"unmatched\",status=\"404\"}") >= 1);
    assert_true(sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_request_seconds_count{route=\"GET "
                                                    "/api/v1/me\"}") >= 1);
    assert_int_equal(sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_audit_failures_total"), 0);
}

/* HTTPS when a certificate and key are configured */
static void test_tls(void **state)
{
    (void)state;
    const char *tmp = sr_test_env("SR_TEST_TMP");
    char *cmd = sr_asprintf("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                            "-keyout %s/gw.key -out %s/gw.crt >/dev/null 2>&1",
                            tmp, tmp);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    char *cert = sr_asprintf("SR_GATEWAY_TLS_CERT=%s/gw.crt", tmp);
    char *key = sr_asprintf("SR_GATEWAY_TLS_KEY=%s/gw.key", tmp);
    char *extra[] = {cert, key, NULL};
    sr_test_gateway_t gw;
    sr_test_gateway_start(&gw, &s_fx.bus, s_fx.rpc, extra);
    char *url = sr_asprintf("https://127.0.0.1:%u/api/v1/me", gw.port);
    CURL *c = curl_easy_init();
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sr_test_collect);
    sr_test_buf_t b = {sr_calloc(1, 1), 0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 401);
    curl_easy_cleanup(c);
    free(b.data);
    /* plain HTTP to the TLS port gets no API answer */
    char *plain = sr_asprintf("http://127.0.0.1:%u/api/v1/me", gw.port);
    assert_true(sr_test_http("GET", plain, NULL, NULL, NULL) != 401);
    sr_test_gateway_stop(&gw);
    free(plain);
    free(url);
    free(cert);
    free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_login_and_me),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_conflicts),
        cmocka_unit_test(test_roles_against_routes),
        cmocka_unit_test(test_region_isolation),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_expiry_and_rates),
        cmocka_unit_test(test_owner_stopped),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_tls),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}

/* test_taskd - sr-taskd through the gateway with a real PostgreSQL and sr-busd: project life
 * cycle (allowed and refused moves, stale versions), show overlaps (room and anchor), dependency
 * cycles, SOP templates applied with exact dates, roles and dependencies, automatic
 * rescheduling, kanban WIP limits, the Gantt critical path, recurring tasks generated once across
 * restarts, due-soon and overdue events exactly once, permissions and regions per route (also at
 * taskd itself, without the gateway), audit rows and events for every change. Needs the SR_TEST_*
 * environment (tests/run.sh). */
#include "sr_alloc.h"
#include "sr_perm.h"
#include "sr_rpc.h"
#include "sr_test_api.h"
#include "tasks.pb-c.h"

#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <zmq.h>

#define MIN_US  60000000LL
#define HOUR_US (60 * MIN_US)
#define DAY_US  (24 * HOUR_US)
/* 2030-01-07 12:00 UTC (a Monday): shows far from now, so nothing is due soon by accident */
#define SHOW_AT 1894017600000000LL

typedef struct {
    sr_test_busd_t bus;
    sr_test_gateway_t gw;
    pid_t taskd;
    uint16_t taskd_admin;
    char rpc[64];
    char *admin, *op_east, *op_south, *anchor, *viewer;
    long long anchor_id, op_east_id, cs_id;
    /* the project test_task_page_view fills, read again with taskd down */
    long long paged_project;
    sr_db_t *db;
    void *zctx;
} fixture_t;

static fixture_t s_fx;

static void s_start_taskd(void)
{
    char *env[] = {sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL")),
                   sr_asprintf("SR_BUS_PUB=%s", s_fx.bus.front_ep),
                   sr_asprintf("SR_ADMIN_PORT=%u", s_fx.taskd_admin),
                   sr_asprintf("SR_TASK_RPC_BIND=%s", s_fx.rpc),
                   sr_strdup("SR_CRON_INTERVAL=100ms"),
                   sr_strdup("SR_TASK_DUE_SOON=1h"),
                   sr_strdup("SR_TASK_RECURRING_HORIZON=14"),
                   sr_strdup("SR_TASK_TIMEZONE=Asia/Shanghai"),
                   NULL};
    char *log = sr_asprintf("%s/taskd.log", sr_test_env("SR_TEST_TMP"));
    s_fx.taskd = sr_test_start_daemon("sr-taskd", env, log, s_fx.taskd_admin, 15000);
    free(log);
    sr_test_free_env(env);
}

/* s_json - METHOD path as token with body (printf-style), expecting status; the reply */
static json_t *s_json(long status, const char *method, const char *path, const char *token,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static json_t *s_json(long status, const char *method, const char *path, const char *token,
                      const char *fmt, ...)
{
    char *body = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        assert_true(vasprintf(&body, fmt, ap) >= 0);
        va_end(ap);
    }
    json_t *j = sr_test_api_json(&s_fx.gw, method, path, token, body, status);
    free(body);
    return j;
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

static long long s_user(const char *name, const char *role, const char *regions)
{
    json_t *u = s_json(201, "POST", "/users", s_fx.admin,
                       "{\"name\":\"%s\",\"password\":\"password-%s\",\"roles\":[\"%s\"],"
                       "\"regions\":%s}",
                       name, name, role, regions);
    long long id = sr_test_json_int(u, "id");
    json_decref(u);
    return id;
}

static char *s_login_as(const char *name)
{
    char password[80];
    snprintf(password, sizeof password, "password-%s", name);
    return sr_test_login(&s_fx.gw, name, password);
}

static int s_setup(void **state)
{
    (void)state;
    s_fx.db = sr_test_db("test_taskd");
    sr_test_db_reset_schema(s_fx.db, "access");
    sr_test_db_reset_schema(s_fx.db, "tasks");
    sr_test_busd_start(&s_fx.bus);
    s_fx.taskd_admin = sr_test_free_port();
    snprintf(s_fx.rpc, sizeof s_fx.rpc, "tcp://127.0.0.1:%u", sr_test_free_port());
    s_start_taskd();
    assert_int_equal(sr_test_bootstrap_admin(), 0);
    char *tasks_rpc = sr_asprintf("SR_GATEWAY_TASKS_RPC=%s", s_fx.rpc);
    char *extra[] = {"SR_GATEWAY_TOKEN_CACHE=0", "SR_GATEWAY_RATE=0", "SR_GATEWAY_RPC_TIMEOUT=2s",
                     tasks_rpc, NULL};
    sr_test_gateway_start(&s_fx.gw, &s_fx.bus, NULL, extra);
    free(tasks_rpc);
    s_fx.admin = sr_test_login(&s_fx.gw, SR_TEST_ADMIN, SR_TEST_ADMIN_PASSWORD);
    json_decref(
        s_json(201, "POST", "/regions", s_fx.admin, "{\"code\":\"east\",\"name\":\"华东\"}"));
    json_decref(
        s_json(201, "POST", "/regions", s_fx.admin, "{\"code\":\"south\",\"name\":\"华南\"}"));
    s_fx.op_east_id = s_user("op-east", "operator", "[\"east\"]");
    s_user("op-south", "operator", "[\"south\"]");
    s_fx.anchor_id = s_user("anchor-east", "anchor", "[\"east\"]");
    s_fx.cs_id = s_user("cs-east", "cs", "[\"east\"]");
    s_user("viewer-east", "viewer", "[\"east\"]");
    s_fx.op_east = s_login_as("op-east");
    s_fx.op_south = s_login_as("op-south");
    s_fx.anchor = s_login_as("anchor-east");
    s_fx.viewer = s_login_as("viewer-east");
    s_fx.zctx = zmq_ctx_new();
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    free(s_fx.admin);
    free(s_fx.op_east);
    free(s_fx.op_south);
    free(s_fx.anchor);
    free(s_fx.viewer);
    sr_db_destroy(&s_fx.db);
    zmq_ctx_term(s_fx.zctx);
    return 0;
}

/* --- helpers ------------------------------------------------------------------------------- */

static long long s_project(const char *name, const char *extra)
{
    json_t *p = s_json(201, "POST", "/projects", s_fx.op_east,
                       "{\"name\":\"%s\",\"brand\":\"Acme\",\"region\":\"east\",\"platforms\":["
                       "\"douyin\"],\"owner_id\":\"%lld\"%s%s}",
                       name, s_fx.op_east_id, extra ? "," : "", extra ? extra : "");
    long long id = sr_test_json_int(p, "id");
    json_decref(p);
    return id;
}

static long long s_task(long long project, const char *title, const char *extra)
{
    json_t *t = s_json(201, "POST", "/tasks", s_fx.op_east,
                       "{\"project_id\":\"%lld\",\"title\":\"%s\"%s%s}", project, title,
                       extra ? "," : "", extra ? extra : "");
    long long id = sr_test_json_int(t, "id");
    json_decref(t);
    return id;
}

static json_t *s_get(const char *fmt, long long id)
{
    char path[128];
    snprintf(path, sizeof path, fmt, id);
    return s_json(200, "GET", path, s_fx.admin, NULL);
}

static long long s_version(const char *fmt, long long id)
{
    json_t *j = s_get(fmt, id);
    long long v = sr_test_json_int(j, "version");
    json_decref(j);
    return v;
}

static long long s_count(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long s_count(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return sr_test_db_number(s_fx.db, sql);
}

/* s_patch_status - PATCH path {status, version}; the HTTP status */
static long s_patch_status(const char *kind, long long id, const char *status, const char *token)
{
    char path[64], body[128];
    snprintf(path, sizeof path, "/%s/%lld", kind, id);
    char fmt[64];
    snprintf(fmt, sizeof fmt, "/%s/%%lld", kind);
    snprintf(body, sizeof body, "{\"status\":\"%s\",\"version\":\"%lld\"}", status,
             s_version(fmt, id));
    return sr_test_api(&s_fx.gw, "PATCH", path, token, body, NULL);
}

/* --- tests --------------------------------------------------------------------------------- */

static void test_project_lifecycle(void **state)
{
    (void)state;
    long long events = s_count("SELECT count(*) FROM tasks.outbox WHERE topic = 'project.changed'");
    long long id = s_project("双十二大促", "\"gmv_target_fen\":\"50000000\",\"wip_doing\":3");
    json_t *p = s_get("/projects/%lld", id);
    assert_string_equal(sr_test_json_str(p, "status"), "proposed");
    assert_string_equal(sr_test_json_str(p, "gmv_target_fen"), "50000000");
    assert_int_equal(json_integer_value(json_object_get(p, "wip_doing")), 3);
    json_decref(p);
    char path[64], want[300];
    snprintf(path, sizeof path, "/projects/%lld", id);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid_transition\",\"message\":\"project %lld is proposed; "
             "it can go to planning or cancelled, not executing\",\"field\":\"status\"}}",
             id);
    s_expect("PATCH", path, s_fx.op_east, "{\"status\":\"executing\",\"version\":\"1\"}", 409,
             want);
    s_expect("PATCH", path, s_fx.op_east, "{\"status\":\"paused\",\"version\":\"1\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"status must be one of proposed, "
             "planning, executing, reviewing, closed, cancelled\",\"field\":\"status\"}}");
    /* the gateway reads GET /projects/{id} from taskd's published view: the same bytes as
     * taskd's own answer to the change */
    sr_test_reply_t changed, read;
    snprintf(want, sizeof want,
             "{\"brand\":\"Acme \\\"美妆\\\"\",\"platforms\":[\"douyin\",\"taobao\"],"
             "\"starts_us\":\"1894017600000001\",\"version\":\"1\"}");
    assert_int_equal(sr_test_api(&s_fx.gw, "PATCH", path, s_fx.op_east, want, &changed), 200);
    assert_int_equal(sr_test_api(&s_fx.gw, "GET", path, s_fx.viewer, NULL, &read), 200);
    assert_string_equal(read.body, changed.body);
    sr_test_reply_free(&changed);
    sr_test_reply_free(&read);
    const char *moves[] = {"planning", "executing", "planning", "executing", "reviewing", "closed"};
    for (size_t i = 0; i < sizeof moves / sizeof moves[0]; i++)
        assert_int_equal(s_patch_status("projects", id, moves[i], s_fx.op_east), 200);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid_transition\",\"message\":\"project %lld is closed; "
             "it can go to nothing (it is final), not cancelled\",\"field\":\"status\"}}",
             id);
    char body[80];
    snprintf(body, sizeof body, "{\"status\":\"cancelled\",\"version\":\"%lld\"}",
             s_version("/projects/%lld", id));
    s_expect("PATCH", path, s_fx.op_east, body, 409, want);
    /* a stale version */
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"version_conflict\",\"message\":\"project %lld is at version "
             "8, not 2; read it again\",\"field\":\"version\"}}",
             id);
    s_expect("PATCH", path, s_fx.op_east, "{\"name\":\"x\",\"version\":\"2\"}", 409, want);
    /* every accepted change: one event, one audit row with before and after */
    assert_int_equal(
        s_count("SELECT count(*) FROM tasks.outbox WHERE topic = 'project.changed'") - events, 8);
    assert_int_equal(s_count("SELECT count(*) FROM access.audit WHERE entity = 'project' AND "
                             "entity_id = '%lld'",
                             id),
                     8);
    assert_int_equal(s_count("SELECT count(*) FROM access.audit WHERE entity = 'project' AND "
                             "entity_id = '%lld' AND after->>'status' = 'closed' AND "
                             "before->>'status' = 'reviewing' AND actor_name = 'op-east'",
                             id),
                     1);
    /* a closed project takes no new shows */
    char show[256];
    snprintf(show, sizeof show,
             "{\"project_id\":\"%lld\",\"platform\":\"douyin\",\"room_id\":\"closed-room\","
             "\"starts_us\":\"%lld\",\"ends_us\":\"%lld\"}",
             id, SHOW_AT, SHOW_AT + HOUR_US);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"project_closed\",\"message\":\"project %lld is closed; its "
             "shows cannot change\",\"field\":\"project_id\"}}",
             id);
    s_expect("POST", "/shows", s_fx.op_east, show, 409, want);
}

static long long s_show(long long project, const char *room, long long anchor, long long start,
                        long long end, long want_status, char **error_body)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"project_id\":\"%lld\",\"platform\":\"douyin\",\"room_id\":\"%s\",\"anchor_id\":"
             "\"%lld\",\"starts_us\":\"%lld\",\"ends_us\":\"%lld\",\"theme\":\"专场\"}",
             project, room, anchor, start, end);
    sr_test_reply_t r;
    long got = sr_test_api(&s_fx.gw, "POST", "/shows", s_fx.op_east, body, &r);
    if (got != want_status)
        fail_msg("POST /shows %s: %ld %s, want %ld", room, got, r.body, want_status);
    long long id = 0;
    if (got == 201) {
        json_t *j = json_loads(r.body, 0, NULL);
        id = sr_test_json_int(j, "id");
        json_decref(j);
    }
    if (error_body)
        *error_body = sr_strdup(r.body);
    sr_test_reply_free(&r);
    return id;
}

static void test_show_overlaps(void **state)
{
    (void)state;
    long long project = s_project("overlaps", NULL);
    long long a =
        s_show(project, "room-1", s_fx.anchor_id, SHOW_AT, SHOW_AT + 4 * HOUR_US, 201, NULL);
    char *err, want[300];
    /* the same room an hour later, while a is still on: refused, naming a (times in Shanghai) */
    s_show(project, "room-1", 0, SHOW_AT + HOUR_US, SHOW_AT + 5 * HOUR_US, 409, &err);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"show_overlap\",\"message\":\"room douyin:room-1 already has "
             "show %lld at 2030-01-07 20:00-00:00\",\"field\":\"starts_us\"}}",
             a);
    assert_string_equal(err, want);
    free(err);
    /* the anchor in another room at the same time */
    s_show(project, "room-2", s_fx.anchor_id, SHOW_AT + 3 * HOUR_US, SHOW_AT + 6 * HOUR_US, 409,
           &err);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"anchor_busy\",\"message\":\"anchor %lld is on show %lld in "
             "room douyin:room-1 at 2030-01-07 20:00-00:00\",\"field\":\"anchor_id\"}}",
             s_fx.anchor_id, a);
    assert_string_equal(err, want);
    free(err);
    /* right after a ends is free; another room with another anchor is free */
    long long b = s_show(project, "room-1", s_fx.anchor_id, SHOW_AT + 4 * HOUR_US,
                         SHOW_AT + 6 * HOUR_US, 201, NULL);
    s_show(project, "room-2", 0, SHOW_AT, SHOW_AT + 4 * HOUR_US, 201, NULL);
    /* moving b onto a is refused the same way; cancelling a frees its slot */
    char path[64], body[128];
    snprintf(path, sizeof path, "/shows/%lld", b);
    snprintf(body, sizeof body, "{\"starts_us\":\"%lld\",\"version\":\"1\"}", SHOW_AT + HOUR_US);
    s_expect("PATCH", path, s_fx.op_east, body, 409, NULL);
    assert_int_equal(s_patch_status("shows", a, "cancelled", s_fx.op_east), 200);
    s_expect("PATCH", path, s_fx.op_east, body, 200, NULL);
    s_expect("PATCH", path, s_fx.op_east, "{\"ends_us\":\"1\",\"version\":\"2\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"a show needs starts_us and a later "
             "ends_us\",\"field\":\"ends_us\"}}");
    /* show life cycle: scheduled -> live -> ended (session.ended) -> reviewed */
    assert_int_equal(s_patch_status("shows", b, "ended", s_fx.op_east), 409);
    long long ended = s_count("SELECT count(*) FROM tasks.outbox WHERE topic = 'session.ended'");
    assert_int_equal(s_patch_status("shows", b, "live", s_fx.op_east), 200);
    assert_int_equal(s_patch_status("shows", b, "ended", s_fx.op_east), 200);
    assert_int_equal(s_patch_status("shows", b, "reviewed", s_fx.op_east), 200);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.outbox WHERE topic = 'session.ended'"),
                     ended + 1);
    assert_int_equal(s_patch_status("shows", b, "live", s_fx.op_east), 409);
    /* the rows: three shows of this project are not cancelled */
    assert_int_equal(s_count("SELECT count(*) FROM tasks.shows WHERE project_id = %lld AND "
                             "status <> 'cancelled'",
                             project),
                     2);
}

static void test_dependency_cycle(void **state)
{
    (void)state;
    long long project = s_project("cycles", NULL);
    long long a = s_task(project, "select", NULL);
    long long b = s_task(project, "script", NULL);
    long long c = s_task(project, "rehearse", NULL);
    char path[64], body[64], want[300];
    snprintf(path, sizeof path, "/tasks/%lld/dependencies", b);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", a);
    s_expect("POST", path, s_fx.op_east, body, 200, NULL);
    snprintf(path, sizeof path, "/tasks/%lld/dependencies", c);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", b);
    s_expect("POST", path, s_fx.op_east, body, 200, NULL);
    snprintf(path, sizeof path, "/tasks/%lld/dependencies", a);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", c);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"dependency_cycle\",\"message\":\"that would make a cycle: "
             "%lld -> %lld -> %lld -> %lld (each waits for the next)\",\"field\":\"depends_on\"}}",
             a, c, b, a);
    s_expect("POST", path, s_fx.op_east, body, 400, want);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", a);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"task %lld cannot wait for "
             "itself\",\"field\":\"depends_on\"}}",
             a);
    s_expect("POST", path, s_fx.op_east, body, 400, want);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.task_deps WHERE task_id IN (%lld, %lld, "
                             "%lld)",
                             a, b, c),
                     2);
    /* a task of another project cannot be waited for */
    long long other = s_task(s_project("other", NULL), "elsewhere", NULL);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", other);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"task %lld is not a task of project "
             "%lld\",\"field\":\"depends_on\"}}",
             other, project);
    s_expect("POST", path, s_fx.op_east, body, 400, want);
    /* and removed again */
    snprintf(path, sizeof path, "/tasks/%lld/dependencies/%lld", c, b);
    json_t *t = s_json(200, "DELETE", path, s_fx.op_east, NULL);
    assert_int_equal(json_array_size(json_object_get(t, "depends_on")), 0);
    json_decref(t);
    s_expect("DELETE", path, s_fx.op_east, NULL, 404, NULL);
}

/* the built-in big promotion template: key, role, offset and duration in minutes, deps */
static const struct {
    const char *key, *role;
    long long offset, duration;
    const char *deps;
} s_big_promotion[] = {
    {"selection", "operator", -10080, 1440, ""},
    {"stock", "operator", -8640, 1440, "selection"},
    {"script", "content", -7200, 1440, "selection"},
    {"warmup", "content", -4320, 2880, "script"},
    {"coupons", "operator", -2880, 720, "stock"},
    {"rehearsal", "anchor", -2880, 240, "script"},
    {"cs_brief", "cs", -1440, 120, "coupons"},
    {"equipment", "field_control", -1440, 180, ""},
    {"live_checklist", "field_control", 0, 240, "equipment,rehearsal,warmup,cs_brief"},
    {"review", "operator", 1440, 240, "live_checklist"},
};

static void test_template_apply(void **state)
{
    (void)state;
    long long project = s_project("双十二 templates", NULL);
    char body[700];
    long long controller = s_fx.op_east_id;
    snprintf(body, sizeof body,
             "{\"project_id\":\"%lld\",\"platform\":\"douyin\",\"room_id\":\"tpl-room\","
             "\"anchor_id\":\"%lld\",\"controller_id\":\"%lld\",\"crew\":[{\"role\":\"content\","
             "\"user_id\":\"%lld\"}],\"starts_us\":\"%lld\",\"ends_us\":\"%lld\"}",
             project, s_fx.anchor_id, controller, s_fx.cs_id, SHOW_AT + 10 * DAY_US,
             SHOW_AT + 10 * DAY_US + 4 * HOUR_US);
    json_t *show = s_json(201, "POST", "/shows", s_fx.op_east, "%s", body);
    long long show_id = sr_test_json_int(show, "id");
    json_decref(show);
    json_t *list = s_json(200, "GET", "/templates", s_fx.op_east, NULL);
    json_t *templates = json_object_get(list, "templates");
    assert_int_equal(json_array_size(templates), 3);
    long long big = sr_test_json_int(json_array_get(templates, 0), "id");
    assert_true(json_is_true(json_object_get(json_array_get(templates, 0), "builtin")));
    json_decref(list);
    char path[64];
    snprintf(path, sizeof path, "/shows/%lld/apply-template", show_id);
    json_t *page = s_json(201, "POST", path, s_fx.op_east, "{\"template_id\":\"%lld\"}", big);
    json_t *tasks = json_object_get(page, "tasks");
    size_t n = sizeof s_big_promotion / sizeof s_big_promotion[0];
    assert_int_equal(json_array_size(tasks), n);
    long long ids[16];
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tasks, i);
        ids[i] = sr_test_json_int(t, "id");
        long long start = SHOW_AT + 10 * DAY_US + s_big_promotion[i].offset * MIN_US;
        assert_int_equal(sr_test_json_int(t, "starts_us"), start);
        assert_int_equal(sr_test_json_int(t, "due_us"),
                         start + s_big_promotion[i].duration * MIN_US);
        assert_string_equal(sr_test_json_str(t, "role"), s_big_promotion[i].role);
        assert_int_equal(sr_test_json_int(t, "show_id"), show_id);
        assert_int_equal(sr_test_json_int(t, "template_id"), big);
        const char *role = s_big_promotion[i].role;
        long long who = strcmp(role, "anchor") == 0          ? s_fx.anchor_id
                        : strcmp(role, "field_control") == 0 ? controller
                        : strcmp(role, "content") == 0       ? s_fx.cs_id
                        : strcmp(role, "operator") == 0      ? s_fx.op_east_id
                                                             : 0;
        assert_int_equal(sr_test_json_int(t, "assignee_id"), who);
        /* dependencies: the ids of the steps named */
        json_t *deps = json_object_get(t, "depends_on");
        size_t want_deps = 0;
        for (size_t j = 0; j < i; j++) {
            char key[40];
            snprintf(key, sizeof key, ",%s,", s_big_promotion[j].key);
            char list_text[120];
            snprintf(list_text, sizeof list_text, ",%s,", s_big_promotion[i].deps);
            if (!strstr(list_text, key))
                continue;
            want_deps++;
            int found = 0;
            for (size_t d = 0; d < json_array_size(deps); d++)
                found |= atoll(json_string_value(json_array_get(deps, d))) == ids[j];
            if (!found)
                fail_msg("step %s should wait for %s", s_big_promotion[i].key,
                         s_big_promotion[j].key);
        }
        assert_int_equal(json_array_size(deps), want_deps);
    }
    assert_int_equal(json_array_size(json_object_get(json_array_get(tasks, 0), "checklist")), 3);
    json_decref(page);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE show_id = %lld", show_id), n);
    /* once per show */
    snprintf(body, sizeof body, "{\"template_id\":\"%lld\"}", big);
    char want[300];
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"already_applied\",\"message\":\"template %lld is applied "
             "to show %lld already; it applies to a show once\",\"field\":\"template_id\"}}",
             big, show_id);
    s_expect("POST", path, s_fx.op_east, body, 409, want);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE show_id = %lld", show_id), n);
    /* the Gantt's critical path: selection, script, warmup, live checklist, review */
    snprintf(path, sizeof path, "/projects/%lld/gantt", project);
    json_t *g = s_json(200, "GET", path, s_fx.viewer, NULL);
    json_t *cp = json_object_get(g, "critical_path");
    const int chain[] = {0, 2, 3, 8, 9};
    assert_int_equal(json_array_size(cp), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(atoll(json_string_value(json_array_get(cp, i))), ids[chain[i]]);
    assert_int_equal(json_array_size(json_object_get(g, "tasks")), n);
    json_decref(g);
    snprintf(path, sizeof path, "/shows/%lld/apply-template", show_id);
    /* another template on the same show is fine, though its step keys are the same */
    json_t *regular =
        s_json(201, "POST", path, s_fx.op_east, "{\"template_id\":\"%lld\"}", big + 1);
    assert_int_equal(json_array_size(json_object_get(regular, "tasks")), 4);
    json_decref(regular);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE show_id = %lld", show_id),
                     n + 4);
    /* a user's own template, copied from a built-in one to this project, then to another */
    snprintf(path, sizeof path, "/templates/%lld/copy", big);
    json_t *copy = s_json(201, "POST", path, s_fx.op_east,
                          "{\"project_id\":\"%lld\",\"name\":\"我们的大促\"}", project);
    long long mine = sr_test_json_int(copy, "id");
    assert_false(json_is_true(json_object_get(copy, "builtin")));
    assert_int_equal(json_array_size(json_object_get(copy, "steps")), n);
    json_decref(copy);
    json_t *made = s_json(201, "POST", "/templates", s_fx.op_east,
                          "{\"name\":\"mini\",\"project_id\":\"%lld\",\"steps\":[{\"key\":\"a\","
                          "\"title\":\"prepare\",\"phase\":\"prep\",\"role\":\"content\","
                          "\"offset_minutes\":\"-60\",\"duration_minutes\":\"30\"},{\"key\":\"b\","
                          "\"title\":\"go\",\"phase\":\"live\",\"offset_minutes\":\"0\","
                          "\"duration_minutes\":\"60\",\"depends_on\":[\"a\"]}]}",
                          project);
    json_decref(made);
    s_expect("POST", "/templates", s_fx.op_east,
             "{\"name\":\"bad\",\"project_id\":\"1\",\"steps\":[{\"key\":\"a\",\"title\":\"x\","
             "\"phase\":\"prep\",\"depends_on\":[\"b\"]}]}",
             400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"steps[0] waits for b, which is not an "
             "earlier step\",\"field\":\"steps[0]\"}}");
    long long other = s_project("another", NULL);
    long long other_show = s_show(other, "tpl-room-2", 0, SHOW_AT, SHOW_AT + HOUR_US, 201, NULL);
    snprintf(path, sizeof path, "/shows/%lld/apply-template", other_show);
    snprintf(body, sizeof body, "{\"template_id\":\"%lld\"}", mine);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"template %lld belongs to project "
             "%lld; copy it to project %lld first\",\"field\":\"template_id\"}}",
             mine, project, other);
    s_expect("POST", path, s_fx.op_east, body, 400, want);
    snprintf(path, sizeof path, "/templates/%lld/copy", mine);
    copy = s_json(201, "POST", path, s_fx.op_east, "{\"project_id\":\"%lld\"}", other);
    long long theirs = sr_test_json_int(copy, "id");
    assert_string_equal(sr_test_json_str(copy, "name"), "我们的大促");
    json_decref(copy);
    snprintf(path, sizeof path, "/shows/%lld/apply-template", other_show);
    page = s_json(201, "POST", path, s_fx.op_east, "{\"template_id\":\"%lld\"}", theirs);
    assert_int_equal(json_array_size(json_object_get(page, "tasks")), n);
    json_decref(page);
    snprintf(path, sizeof path, "/templates/%lld", big);
    s_expect("DELETE", path, s_fx.admin, NULL, 409, NULL);
    /* no template on a cancelled show */
    assert_int_equal(s_patch_status("shows", other_show, "cancelled", s_fx.op_east), 200);
    snprintf(path, sizeof path, "/shows/%lld/apply-template", other_show);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"show_closed\",\"message\":\"show %lld is cancelled; "
             "templates apply to scheduled and live shows\",\"field\":\"id\"}}",
             other_show);
    snprintf(body, sizeof body, "{\"template_id\":\"%lld\"}", big);
    s_expect("POST", path, s_fx.op_east, body, 409, want);
}

static void test_reschedule(void **state)
{
    (void)state;
    long long project = s_project("auto", "\"auto_schedule\":true");
    char extra[200];
    snprintf(extra, sizeof extra, "\"starts_us\":\"%lld\",\"due_us\":\"%lld\"", SHOW_AT,
             SHOW_AT + HOUR_US);
    long long a = s_task(project, "a", extra);
    snprintf(extra, sizeof extra,
             "\"starts_us\":\"%lld\",\"due_us\":\"%lld\",\"depends_on\":[\"%lld\"]",
             SHOW_AT + HOUR_US, SHOW_AT + 2 * HOUR_US, a);
    long long b = s_task(project, "b", extra);
    snprintf(extra, sizeof extra,
             "\"starts_us\":\"%lld\",\"due_us\":\"%lld\",\"depends_on\":[\"%lld\",\"%lld\"]",
             SHOW_AT + 2 * HOUR_US, SHOW_AT + 3 * HOUR_US, a, b);
    long long c = s_task(project, "c", extra);
    snprintf(extra, sizeof extra, "\"starts_us\":\"%lld\",\"due_us\":\"%lld\"", SHOW_AT,
             SHOW_AT + HOUR_US);
    long long d = s_task(project, "d", extra);
    char path[64];
    snprintf(path, sizeof path, "/tasks/%lld", a);
    json_decref(s_json(200, "PATCH", path, s_fx.op_east, "{\"due_us\":\"%lld\",\"version\":\"1\"}",
                       SHOW_AT + 3 * HOUR_US));
    /* b and c (waiting for a, c also through b - moved once) by +2h; d stays */
    const struct {
        long long id, start, due;
    } want[] = {{b, SHOW_AT + 3 * HOUR_US, SHOW_AT + 4 * HOUR_US},
                {c, SHOW_AT + 4 * HOUR_US, SHOW_AT + 5 * HOUR_US},
                {d, SHOW_AT, SHOW_AT + HOUR_US}};
    for (size_t i = 0; i < 3; i++) {
        json_t *t = s_get("/tasks/%lld", want[i].id);
        assert_int_equal(sr_test_json_int(t, "starts_us"), want[i].start);
        assert_int_equal(sr_test_json_int(t, "due_us"), want[i].due);
        json_decref(t);
    }
    /* a done task is not moved; a project without automatic scheduling moves nothing */
    assert_int_equal(s_patch_status("tasks", c, "done", s_fx.op_east), 200);
    json_decref(s_json(200, "PATCH", path, s_fx.op_east, "{\"due_us\":\"%lld\",\"version\":\"2\"}",
                       SHOW_AT + 4 * HOUR_US));
    json_t *t = s_get("/tasks/%lld", c);
    assert_int_equal(sr_test_json_int(t, "due_us"), SHOW_AT + 5 * HOUR_US);
    json_decref(t);
    t = s_get("/tasks/%lld", b);
    assert_int_equal(sr_test_json_int(t, "due_us"), SHOW_AT + 5 * HOUR_US);
    json_decref(t);
    long long manual = s_project("manual", NULL);
    snprintf(extra, sizeof extra, "\"starts_us\":\"%lld\",\"due_us\":\"%lld\"", SHOW_AT,
             SHOW_AT + HOUR_US);
    long long m1 = s_task(manual, "m1", extra);
    snprintf(extra, sizeof extra,
             "\"starts_us\":\"%lld\",\"due_us\":\"%lld\",\"depends_on\":[\"%lld\"]",
             SHOW_AT + HOUR_US, SHOW_AT + 2 * HOUR_US, m1);
    long long m2 = s_task(manual, "m2", extra);
    snprintf(path, sizeof path, "/tasks/%lld", m1);
    json_decref(s_json(200, "PATCH", path, s_fx.op_east, "{\"due_us\":\"%lld\",\"version\":\"1\"}",
                       SHOW_AT + 3 * HOUR_US));
    t = s_get("/tasks/%lld", m2);
    assert_int_equal(sr_test_json_int(t, "starts_us"), SHOW_AT + HOUR_US);
    json_decref(t);
}

static void test_wip_limit(void **state)
{
    (void)state;
    long long project = s_project("kanban", "\"wip_doing\":2");
    long long t[3];
    for (int i = 0; i < 3; i++)
        t[i] = s_task(project, "wip", NULL);
    assert_int_equal(s_patch_status("tasks", t[0], "doing", s_fx.op_east), 200);
    assert_int_equal(s_patch_status("tasks", t[1], "doing", s_fx.op_east), 200);
    char path[64], body[64], want[300];
    snprintf(path, sizeof path, "/tasks/%lld", t[2]);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"wip_limit\",\"message\":\"column doing of project %lld "
             "holds 2 tasks, its WIP limit is 2\",\"field\":\"status\"}}",
             project);
    s_expect("PATCH", path, s_fx.op_east, "{\"status\":\"doing\",\"version\":\"1\"}", 409, want);
    snprintf(path, sizeof path, "/projects/%lld/kanban", project);
    json_t *k = s_json(200, "GET", path, s_fx.viewer, NULL);
    json_t *cols = json_object_get(k, "columns");
    assert_int_equal(json_array_size(cols), 5);
    const char *names[] = {"todo", "doing", "blocked", "done", "cancelled"};
    const int counts[] = {1, 2, 0, 0, 0}, limits[] = {0, 2, 0, 0, 0};
    for (size_t i = 0; i < 5; i++) {
        json_t *c = json_array_get(cols, i);
        assert_string_equal(sr_test_json_str(c, "status"), names[i]);
        assert_int_equal(json_integer_value(json_object_get(c, "count")), counts[i]);
        assert_int_equal(json_integer_value(json_object_get(c, "wip_limit")), limits[i]);
        assert_int_equal(json_array_size(json_object_get(c, "tasks")), counts[i]);
    }
    json_decref(k);
    /* one done frees the column; raising the limit lets more in */
    assert_int_equal(s_patch_status("tasks", t[0], "done", s_fx.op_east), 200);
    assert_int_equal(s_patch_status("tasks", t[2], "doing", s_fx.op_east), 200);
    snprintf(path, sizeof path, "/projects/%lld", project);
    snprintf(body, sizeof body, "{\"wip_doing\":5,\"version\":\"%lld\"}",
             s_version("/projects/%lld", project));
    s_expect("PATCH", path, s_fx.op_east, body, 200, NULL);
    assert_int_equal(s_patch_status("tasks", t[0], "doing", s_fx.op_east), 200);
}

static void test_recurring_idempotent(void **state)
{
    (void)state;
    long long project = s_project("daily", NULL);
    char path[64];
    snprintf(path, sizeof path, "/projects/%lld/recurring", project);
    /* a rule from yesterday, every day at 09:30 Shanghai time, and one on Mondays only */
    time_t now = time(NULL);
    char yesterday[16];
    strftime(yesterday, sizeof yesterday, "%Y-%m-%d", gmtime(&(time_t){now - 86400}));
    json_t *rule = s_json(201, "POST", path, s_fx.op_east,
                          "{\"title\":\"开播前检查\",\"at_minute\":570,\"duration_minutes\":30,"
                          "\"starts_on\":\"%s\",\"role\":\"field_control\"}",
                          yesterday);
    long long daily = sr_test_json_int(rule, "id");
    json_decref(rule);
    rule = s_json(201, "POST", path, s_fx.op_east,
                  "{\"title\":\"周会\",\"weekdays\":[1],\"at_minute\":600,"
                  "\"duration_minutes\":60,\"starts_on\":\"%s\"}",
                  yesterday);
    long long weekly = sr_test_json_int(rule, "id");
    json_decref(rule);
    long long made = s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld", daily);
    /* today's 09:30 may have passed before the rule existed; the 14 days ahead are there */
    assert_true(made >= 14 && made <= 15);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld AND "
                             "(starts_at AT TIME ZONE 'Asia/Shanghai')::time <> '09:30'",
                             daily),
                     0);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld AND "
                             "due_at - starts_at <> interval '30 minutes'",
                             daily),
                     0);
    long long mondays =
        s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld", weekly);
    assert_true(mondays >= 2 && mondays <= 3);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld AND "
                             "extract(isodow FROM starts_at AT TIME ZONE 'Asia/Shanghai') <> 1",
                             weekly),
                     0);
    /* restarts and cron runs add nothing */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sr_test_stop(s_fx.taskd, SIGTERM, 10000), 0);
        s_start_taskd();
    }
    sr_test_sleep_ms(500);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld", daily),
                     made);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE recurring_id = %lld", weekly),
                     mondays);
    assert_int_equal(s_count("SELECT count(DISTINCT occurs_on) FROM tasks.tasks WHERE "
                             "recurring_id = %lld",
                             daily),
                     made);
    json_t *list = s_json(200, "GET", path, s_fx.viewer, NULL);
    assert_int_equal(json_array_size(json_object_get(list, "rules")), 2);
    json_decref(list);
    s_expect("POST", path, s_fx.op_east,
             "{\"title\":\"x\",\"weekdays\":[8],\"at_minute\":0,\"starts_on\":\"2030-01-01\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"weekdays are 1 (Monday) to 7 "
             "(Sunday)\",\"field\":\"weekdays\"}}");
}

/* s_wait_count - poll until SQL counts want (at most 5 s); the last count */
static long long s_wait_count(long long want, const char *sql)
{
    long long got = -1;
    for (int i = 0; i < 100 && got != want; i++) {
        got = sr_test_db_number(s_fx.db, sql);
        if (got != want)
            sr_test_sleep_ms(50);
    }
    return got;
}

static void test_reminders_once(void **state)
{
    (void)state;
    long long project = s_project("reminders", NULL);
    long long now = (long long)time(NULL) * 1000000;
    char extra[160];
    snprintf(extra, sizeof extra, "\"due_us\":\"%lld\"", now + 30 * MIN_US);
    long long soon = s_task(project, "due in half an hour", extra);
    snprintf(extra, sizeof extra, "\"due_us\":\"%lld\"", now - MIN_US);
    long long late = s_task(project, "due a minute ago", extra);
    snprintf(extra, sizeof extra, "\"due_us\":\"%lld\"", now + 3 * HOUR_US);
    long long later = s_task(project, "due in three hours", extra);
    (void)later;
    long long base = s_count("SELECT coalesce(max(seq), 0) FROM tasks.outbox");
    char q_soon[200], q_late[200];
    snprintf(q_soon, sizeof q_soon,
             "SELECT count(*) FROM tasks.outbox WHERE topic = 'task.due_soon' AND seq > %lld",
             base);
    snprintf(q_late, sizeof q_late,
             "SELECT count(*) FROM tasks.outbox WHERE topic = 'task.overdue' AND seq > %lld", base);
    assert_int_equal(s_wait_count(1, q_soon), 1);
    assert_int_equal(s_wait_count(1, q_late), 1);
    sr_test_sleep_ms(600); /* six more cron ticks: nothing again */
    assert_int_equal(s_count("%s", q_soon), 1);
    assert_int_equal(s_count("%s", q_late), 1);
    assert_int_equal(
        s_count("SELECT count(*) FROM tasks.tasks WHERE id = %lld AND due_soon_sent", soon), 1);
    assert_int_equal(
        s_count("SELECT count(*) FROM tasks.tasks WHERE id = %lld AND overdue_sent", late), 1);
    assert_int_equal(s_count("SELECT count(*) FROM tasks.tasks WHERE id = %lld AND (due_soon_sent "
                             "OR overdue_sent)",
                             later),
                     0);
    /* a new due date is a new state: reminded again, once; a done task never */
    char path[64];
    snprintf(path, sizeof path, "/tasks/%lld", soon);
    json_decref(s_json(200, "PATCH", path, s_fx.op_east, "{\"due_us\":\"%lld\",\"version\":\"1\"}",
                       now + 40 * MIN_US));
    assert_int_equal(s_wait_count(2, q_soon), 2);
    assert_int_equal(s_patch_status("tasks", late, "done", s_fx.op_east), 200);
    sr_test_sleep_ms(500);
    assert_int_equal(s_count("%s", q_soon), 2);
    assert_int_equal(s_count("%s", q_late), 1);
    /* the lists behind reminders */
    snprintf(path, sizeof path, "/tasks?project_id=%lld&due=soon", project);
    json_t *l = s_json(200, "GET", path, s_fx.viewer, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "tasks")), 1);
    assert_int_equal(sr_test_json_int(json_array_get(json_object_get(l, "tasks"), 0), "id"), soon);
    json_decref(l);
    snprintf(path, sizeof path, "/tasks?project_id=%lld&due=overdue", project);
    l = s_json(200, "GET", path, s_fx.viewer, NULL);
    assert_int_equal(json_array_size(json_object_get(l, "tasks")), 0);
    json_decref(l);
    s_expect("GET", "/tasks?due=yesterday", s_fx.viewer, NULL, 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"due must be overdue or soon\","
             "\"field\":\"due\"}}");
}

typedef struct {
    const char *method;
    char path[80];
    const char *body;
    const char *action;
} probe_t;

/* every role against every taskd route: 403 exactly when the matrix denies the action (for
 * tasks.work, on a task assigned to the caller) */
static void test_roles_against_routes(void **state)
{
    (void)state;
    long long project = s_project("matrix", NULL);
    long long task = s_task(project, "matrix task", NULL);
    long long show = s_show(project, "matrix-room", 0, SHOW_AT + 40 * DAY_US,
                            SHOW_AT + 40 * DAY_US + HOUR_US, 201, NULL);
    probe_t probes[] = {
        {"GET", "/projects", NULL, "projects.read"},
        {"POST", "/projects", "{}", "projects.plan"},
        {"GET", "", NULL, "projects.read"},
        {"PATCH", "", "{\"version\":\"0\"}", "projects.plan"},
        {"GET", "", NULL, "projects.read"},
        {"GET", "", NULL, "projects.read"},
        {"GET", "", NULL, "projects.read"},
        {"GET", "", NULL, "projects.read"},
        {"POST", "", "{}", "projects.plan"},
        {"DELETE", "/recurring/999999", NULL, "projects.plan"},
        {"GET", "/shows", NULL, "projects.read"},
        {"POST", "/shows", "{}", "projects.plan"},
        {"GET", "", NULL, "projects.read"},
        {"PATCH", "", "{\"version\":\"0\"}", "projects.plan"},
        {"POST", "", "{\"template_id\":\"999999\"}", "projects.plan"},
        {"GET", "/tasks", NULL, "projects.read"},
        {"POST", "/tasks", "{}", "projects.plan"},
        {"GET", "/me/tasks", NULL, "projects.read"},
        {"GET", "", NULL, "projects.read"},
        {"PATCH", "", "{\"version\":\"0\"}", "tasks.work"},
        {"POST", "", "{\"depends_on\":\"999999\"}", "projects.plan"},
        {"DELETE", "", NULL, "projects.plan"},
        {"POST", "", "{\"text\":\"\"}", "tasks.work"},
        {"PATCH", "", "{\"done\":true}", "tasks.work"},
        {"GET", "", NULL, "projects.read"},
        {"POST", "", "{\"body\":\"\"}", "tasks.work"},
        {"GET", "/templates", NULL, "projects.read"},
        {"POST", "/templates", "{}", "projects.plan"},
        {"GET", "/templates/1", NULL, "projects.read"},
        {"DELETE", "/templates/1", NULL, "projects.plan"},
        {"POST", "/templates/1/copy", "{\"project_id\":\"999999\"}", "projects.plan"},
    };
    snprintf(probes[2].path, sizeof probes[2].path, "/projects/%lld", project);
    snprintf(probes[3].path, sizeof probes[3].path, "/projects/%lld", project);
    snprintf(probes[4].path, sizeof probes[4].path, "/projects/%lld/tasks", project);
    snprintf(probes[5].path, sizeof probes[5].path, "/projects/%lld/kanban", project);
    snprintf(probes[6].path, sizeof probes[6].path, "/projects/%lld/gantt", project);
    snprintf(probes[7].path, sizeof probes[7].path, "/projects/%lld/recurring", project);
    snprintf(probes[8].path, sizeof probes[8].path, "/projects/%lld/recurring", project);
    snprintf(probes[12].path, sizeof probes[12].path, "/shows/%lld", show);
    snprintf(probes[13].path, sizeof probes[13].path, "/shows/%lld", show);
    snprintf(probes[14].path, sizeof probes[14].path, "/shows/%lld/apply-template", show);
    snprintf(probes[18].path, sizeof probes[18].path, "/tasks/%lld", task);
    snprintf(probes[20].path, sizeof probes[20].path, "/tasks/%lld/dependencies", task);
    snprintf(probes[21].path, sizeof probes[21].path, "/tasks/%lld/dependencies/999999", task);
    snprintf(probes[24].path, sizeof probes[24].path, "/tasks/%lld/comments", task);
    size_t checked = 0;
    for (int role = 0; role < SR_ROLES; role++) {
        char name[40];
        snprintf(name, sizeof name, "tm-%s", sr_role_name((sr_role_t)role));
        long long user = s_user(name, sr_role_name((sr_role_t)role), "[\"east\"]");
        char *token = s_login_as(name);
        char *roles[] = {(char *)sr_role_name((sr_role_t)role)};
        Sr__Principal p = SR__PRINCIPAL__INIT;
        p.roles = roles;
        p.n_roles = 1;
        /* crew work on tasks assigned to them: the task routes probe the role's own task */
        char extra[64];
        snprintf(extra, sizeof extra, "\"assignee_id\":\"%lld\"", user);
        long long own = s_task(project, "matrix task", extra);
        snprintf(probes[19].path, sizeof probes[19].path, "/tasks/%lld", own);
        snprintf(probes[22].path, sizeof probes[22].path, "/tasks/%lld/checklist", own);
        snprintf(probes[23].path, sizeof probes[23].path, "/tasks/%lld/checklist/999999", own);
        snprintf(probes[25].path, sizeof probes[25].path, "/tasks/%lld/comments", own);
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            long status = sr_test_api(&s_fx.gw, probes[i].method, probes[i].path, token,
                                      probes[i].body, NULL);
            int allowed = sr_perm_allows(&p, probes[i].action);
            if ((status == 403) == allowed || status == 401 || status >= 500)
                fail_msg("%s: %s %s answered %ld, the matrix %s %s", name, probes[i].method,
                         probes[i].path, status, allowed ? "allows" : "denies", probes[i].action);
            checked++;
        }
        free(token);
    }
    print_message("roles x task routes: %zu checked\n", checked);
}

static void test_regions_and_crew(void **state)
{
    (void)state;
    long long east = s_project("east only", NULL);
    char path[64], want[300];
    snprintf(path, sizeof path, "/projects/%lld", east);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"not_found\",\"message\":\"no project %lld\",\"field\":"
             "\"id\"}}",
             east);
    s_expect("GET", path, s_fx.op_south, NULL, 404, want);
    s_expect("GET", path, s_fx.viewer, NULL, 200, NULL);
    s_expect("POST", "/projects", s_fx.op_south, "{\"name\":\"x\",\"region\":\"east\"}", 403,
             "{\"error\":{\"code\":\"forbidden\",\"message\":\"you may plan projects in your own "
             "regions only\",\"field\":\"region\"}}");
    json_t *mine = s_json(201, "POST", "/projects", s_fx.op_south,
                          "{\"name\":\"南区专场\",\"region\":\"south\"}");
    long long south = sr_test_json_int(mine, "id");
    json_decref(mine);
    json_t *list = s_json(200, "GET", "/projects?limit=200", s_fx.op_south, NULL);
    json_t *projects = json_object_get(list, "projects");
    for (size_t i = 0; i < json_array_size(projects); i++)
        assert_string_equal(sr_test_json_str(json_array_get(projects, i), "region"), "south");
    assert_true(json_array_size(projects) >= 1);
    json_decref(list);
    /* tasks of an east project are not found from the south, not even in lists */
    char extra[80];
    snprintf(extra, sizeof extra, "\"assignee_id\":\"%lld\"", s_fx.anchor_id);
    long long own = s_task(east, "rehearse", extra);
    long long others = s_task(east, "not the anchor's", NULL);
    snprintf(path, sizeof path, "/tasks/%lld", own);
    s_expect("GET", path, s_fx.op_south, NULL, 404, NULL);
    snprintf(path, sizeof path, "/tasks?project_id=%lld", east);
    s_expect("GET", path, s_fx.op_south, NULL, 404, NULL);
    list = s_json(200, "GET", "/tasks?limit=200", s_fx.op_south, NULL);
    for (size_t i = 0; i < json_array_size(json_object_get(list, "tasks")); i++)
        assert_string_equal(
            sr_test_json_str(json_array_get(json_object_get(list, "tasks"), i), "region"), "south");
    json_decref(list);
    (void)south;
    /* the anchor: the status of their own task, its checklist and comments; nothing else */
    snprintf(path, sizeof path, "/tasks/%lld", own);
    json_decref(
        s_json(200, "PATCH", path, s_fx.anchor, "{\"status\":\"doing\",\"version\":\"1\"}"));
    s_expect("PATCH", path, s_fx.anchor, "{\"title\":\"mine now\",\"version\":\"2\"}", 403,
             "{\"error\":{\"code\":\"forbidden\",\"message\":\"you may change the status of your "
             "tasks, not their title\",\"field\":\"title\"}}");
    snprintf(path, sizeof path, "/tasks/%lld/checklist", own);
    json_t *t = s_json(201, "POST", path, s_fx.anchor, "{\"text\":\"试播一次\"}");
    long long item = sr_test_json_int(json_array_get(json_object_get(t, "checklist"), 0), "id");
    json_decref(t);
    snprintf(path, sizeof path, "/tasks/%lld/checklist/%lld", own, item);
    t = s_json(200, "PATCH", path, s_fx.anchor, "{\"done\":true}");
    assert_true(
        json_is_true(json_object_get(json_array_get(json_object_get(t, "checklist"), 0), "done")));
    json_decref(t);
    snprintf(path, sizeof path, "/tasks/%lld/comments", own);
    json_t *c = s_json(201, "POST", path, s_fx.anchor, "{\"body\":\"脚本已读\"}");
    assert_string_equal(sr_test_json_str(c, "author"), "anchor-east");
    json_decref(c);
    c = s_json(200, "GET", path, s_fx.viewer, NULL);
    assert_int_equal(json_array_size(json_object_get(c, "comments")), 1);
    json_decref(c);
    snprintf(path, sizeof path, "/tasks/%lld", others);
    snprintf(want, sizeof want,
             "{\"error\":{\"code\":\"forbidden\",\"message\":\"task %lld is not assigned to you; "
             "you may change only your own tasks\",\"field\":\"assignee_id\"}}",
             others);
    s_expect("PATCH", path, s_fx.anchor, "{\"status\":\"doing\",\"version\":\"1\"}", 403, want);
    snprintf(path, sizeof path, "/tasks/%lld/comments", others);
    s_expect("POST", path, s_fx.anchor, "{\"body\":\"hi\"}", 403, want);
    /* my tasks: the anchor's own, across projects */
    json_t *me = s_json(200, "GET", "/me/tasks", s_fx.anchor, NULL);
    json_t *tasks = json_object_get(me, "tasks");
    assert_true(json_array_size(tasks) >= 1);
    for (size_t i = 0; i < json_array_size(tasks); i++)
        assert_int_equal(sr_test_json_int(json_array_get(tasks, i), "assignee_id"), s_fx.anchor_id);
    json_decref(me);
    /* audit rows name the crew member and the change */
    assert_int_equal(s_count("SELECT count(*) FROM access.audit WHERE entity = 'task' AND "
                             "entity_id = '%lld' AND actor_name = 'anchor-east'",
                             own),
                     3);
    assert_int_equal(s_count("SELECT count(*) FROM access.audit WHERE entity = 'comment' AND "
                             "actor_name = 'anchor-east'"),
                     1);
    /* taskd checks the principal itself: a call that skips the gateway gets no further */
    sr_rpc_client_t *rpc = sr_rpc_client_new(s_fx.zctx, s_fx.rpc, NULL);
    sr_arena_t *arena = sr_arena_new(4096);
    char *viewer_roles[] = {"viewer"}, *south_regions[] = {"south"}, *op_roles[] = {"operator"};
    Sr__Principal viewer = SR__PRINCIPAL__INIT;
    viewer.roles = viewer_roles;
    viewer.n_roles = 1;
    viewer.regions = south_regions;
    viewer.n_regions = 1;
    Sr__ProjectCreate create = SR__PROJECT_CREATE__INIT;
    create.name = "sneaky";
    create.region = "south";
    ProtobufCMessage *reply;
    Sr__Error *error;
    assert_int_equal(sr_rpc_call(rpc, "tasks.project.create", &viewer, "t", &create.base,
                                 &sr__project__descriptor, 2000, arena, &reply, &error),
                     SR__STATUS__STATUS_FORBIDDEN);
    Sr__Principal op = viewer;
    op.roles = op_roles;
    Sr__TaskId id = SR__TASK_ID__INIT;
    id.id = east;
    assert_int_equal(sr_rpc_call(rpc, "tasks.project.get", &op, "t", &id.base,
                                 &sr__project__descriptor, 2000, arena, &reply, &error),
                     SR__STATUS__STATUS_NOT_FOUND);
    sr_arena_destroy(&arena);
    sr_rpc_client_destroy(&rpc);
}

static void test_bad_input(void **state)
{
    (void)state;
    s_expect("POST", "/projects", s_fx.op_east, "{\"name\":\"\",\"region\":\"east\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"name must be 1 to 200 characters\","
             "\"field\":\"name\"}}");
    s_expect("POST", "/projects", s_fx.op_east,
             "{\"name\":\"x\",\"region\":\"east\",\"platforms\":[\"tiktok\"]}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"platforms must be channels, douyin, "
             "kuaishou or taobao\",\"field\":\"platforms\"}}");
    s_expect("POST", "/projects", s_fx.op_east,
             "{\"name\":\"x\",\"region\":\"east\",\"budget_fen\":\"-1\"}", 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"goals and budget must not be "
             "negative\",\"field\":\"budget_fen\"}}");
    long long project = s_project("bad input", NULL);
    char body[200];
    snprintf(body, sizeof body, "{\"project_id\":\"%lld\",\"title\":\"t\",\"priority\":\"P9\"}",
             project);
    s_expect("POST", "/tasks", s_fx.op_east, body, 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"priority must be P0, P1, P2 or P3\","
             "\"field\":\"priority\"}}");
    snprintf(body, sizeof body,
             "{\"project_id\":\"%lld\",\"title\":\"t\",\"starts_us\":\"20\",\"due_us\":\"10\"}",
             project);
    s_expect("POST", "/tasks", s_fx.op_east, body, 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"due_us must not be before "
             "starts_us\",\"field\":\"due_us\"}}");
    s_expect("GET", "/projects/999999", s_fx.op_east, NULL, 404,
             "{\"error\":{\"code\":\"not_found\",\"message\":\"no project 999999\",\"field\":"
             "\"id\"}}");
    s_expect("GET", "/projects?cursor=nonsense", s_fx.op_east, NULL, 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"not a cursor this list gave out\","
             "\"field\":\"cursor\"}}");
    /* SQL-looking text is stored as it is */
    snprintf(body, sizeof body,
             "{\"project_id\":\"%lld\",\"title\":\"x'); DROP TABLE tasks.tasks; --\"}", project);
    json_t *t = s_json(201, "POST", "/tasks", s_fx.op_east, "%s", body);
    assert_string_equal(sr_test_json_str(t, "title"), "x'); DROP TABLE tasks.tasks; --");
    json_decref(t);
    /* pages: every task once, in order */
    for (int i = 0; i < 5; i++)
        s_task(project, "paged", NULL);
    char path[96];
    snprintf(path, sizeof path, "/projects/%lld/tasks?limit=2", project);
    int seen = 0;
    long long last = 0;
    for (int pages = 0; pages < 10; pages++) {
        json_t *page = s_json(200, "GET", path, s_fx.viewer, NULL);
        json_t *tasks = json_object_get(page, "tasks");
        for (size_t i = 0; i < json_array_size(tasks); i++) {
            long long id = sr_test_json_int(json_array_get(tasks, i), "id");
            assert_true(id > last);
            last = id;
            seen++;
        }
        const char *next = sr_test_json_str(page, "next_cursor");
        if (!next[0]) {
            json_decref(page);
            break;
        }
        snprintf(path, sizeof path, "/projects/%lld/tasks?limit=2&cursor=%s", project, next);
        json_decref(page);
    }
    assert_int_equal(seen, 6);
}

/* s_same_pages - every page of view_path (served from tasks.api_tasks) and of rpc_path (the same
 * list asked of taskd) has the same bytes; the number of pages */
static int s_same_pages(const char *view_path, const char *rpc_path)
{
    char view[192], rpc[192];
    snprintf(view, sizeof view, "%s", view_path);
    snprintf(rpc, sizeof rpc, "%s", rpc_path);
    const char *sep = strchr(view_path, '?') ? "&" : "?";
    for (int pages = 1; pages < 20; pages++) {
        sr_test_reply_t from_view, from_taskd;
        assert_int_equal(sr_test_api(&s_fx.gw, "GET", view, s_fx.viewer, NULL, &from_view), 200);
        assert_int_equal(sr_test_api(&s_fx.gw, "GET", rpc, s_fx.viewer, NULL, &from_taskd), 200);
        assert_string_equal(from_view.body, from_taskd.body);
        json_t *page = json_loads(from_view.body, 0, NULL);
        assert_non_null(page);
        const char *next = sr_test_json_str(page, "next_cursor");
        int last = !next[0];
        snprintf(view, sizeof view, "%s%scursor=%s", view_path, sep, next);
        snprintf(rpc, sizeof rpc, "%s&cursor=%s", rpc_path, next);
        json_decref(page);
        sr_test_reply_free(&from_view);
        sr_test_reply_free(&from_taskd);
        if (last)
            return pages;
    }
    fail_msg("%s: no last page", view_path);
    return 0;
}

/* the gateway reads a project's plain task page from taskd's view tasks.api_tasks, with
 * checklists, dependencies and cursors as taskd gives them; anything else goes to taskd */
static void test_task_page_view(void **state)
{
    (void)state;
    long long project = s_project("page view", NULL);
    long long a = s_task(project, "选品 \\\"select\\\"",
                         "\"description\":\"SKUs\\nand prices\",\"priority\":\"P0\","
                         "\"estimate_hours\":2.5");
    long long b = s_task(project, "script", "\"phase\":\"live\",\"role\":\"content\"");
    long long c = s_task(project, "rehearse", NULL);
    char path[96], rpc[96], body[64];
    snprintf(path, sizeof path, "/tasks/%lld/checklist", c);
    json_decref(s_json(201, "POST", path, s_fx.op_east, "{\"text\":\"Cart checked\"}"));
    json_t *t = s_json(201, "POST", path, s_fx.op_east, "{\"text\":\"优惠券 live\"}");
    long long item = sr_test_json_int(json_array_get(json_object_get(t, "checklist"), 1), "id");
    json_decref(t);
    snprintf(path, sizeof path, "/tasks/%lld/checklist/%lld", c, item);
    json_decref(s_json(200, "PATCH", path, s_fx.op_east, "{\"done\":true}"));
    snprintf(path, sizeof path, "/tasks/%lld/dependencies", c);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", b);
    s_expect("POST", path, s_fx.op_east, body, 200, NULL);
    snprintf(body, sizeof body, "{\"depends_on\":\"%lld\"}", a);
    s_expect("POST", path, s_fx.op_east, body, 200, NULL);
    s_fx.paged_project = project;

    snprintf(path, sizeof path, "/projects/%lld/tasks", project);
    snprintf(rpc, sizeof rpc, "/tasks?project_id=%lld", project);
    assert_int_equal(s_same_pages(path, rpc), 1);
    snprintf(path, sizeof path, "/projects/%lld/tasks?limit=2", project);
    snprintf(rpc, sizeof rpc, "/tasks?project_id=%lld&limit=2", project);
    assert_int_equal(s_same_pages(path, rpc), 2);
    snprintf(path, sizeof path, "/projects/%lld/tasks?limit=1", project);
    snprintf(rpc, sizeof rpc, "/tasks?project_id=%lld&limit=1", project);
    assert_int_equal(s_same_pages(path, rpc), 3);
    json_t *page = s_json(200, "GET", path, s_fx.viewer, NULL);
    json_t *first = json_array_get(json_object_get(page, "tasks"), 0);
    assert_int_equal(sr_test_json_int(first, "id"), a);
    assert_string_equal(sr_test_json_str(first, "title"), "选品 \"select\"");
    json_decref(page);

    /* another region's project is not found, as taskd says; a bad cursor is refused */
    snprintf(path, sizeof path, "/projects/%lld/tasks", project);
    s_expect("GET", path, s_fx.op_south, NULL, 404, NULL);
    snprintf(path, sizeof path, "/projects/%lld/tasks?cursor=nonsense", project);
    s_expect("GET", path, s_fx.viewer, NULL, 400,
             "{\"error\":{\"code\":\"invalid\",\"message\":\"not a cursor this list gave out\","
             "\"field\":\"cursor\"}}");
    /* a filtered page is taskd's */
    assert_int_equal(s_patch_status("tasks", b, "doing", s_fx.op_east), 200);
    snprintf(path, sizeof path, "/projects/%lld/tasks?status=todo", project);
    page = s_json(200, "GET", path, s_fx.viewer, NULL);
    json_t *tasks = json_object_get(page, "tasks");
    assert_int_equal(json_array_size(tasks), 2);
    assert_int_equal(sr_test_json_int(json_array_get(tasks, 0), "id"), a);
    assert_int_equal(sr_test_json_int(json_array_get(tasks, 1), "id"), c);
    json_decref(page);
}

/* taskd stopped: the gateway answers 503 quickly, and again 200 once it is back */
static void test_taskd_down(void **state)
{
    (void)state;
    assert_int_equal(sr_test_stop(s_fx.taskd, SIGTERM, 10000), 0);
    sr_test_reply_t r;
    long st = sr_test_api(&s_fx.gw, "GET", "/projects", s_fx.viewer, NULL, &r);
    assert_int_equal(st, 503);
    sr_test_reply_free(&r);
    /* one project still reads, from the view; a change needs taskd */
    s_expect("GET", "/projects/1", s_fx.admin, NULL, 200, NULL);
    s_expect("PATCH", "/projects/1", s_fx.admin, "{\"name\":\"x\",\"version\":\"1\"}", 503, NULL);
    /* so does a project's plain task page; a filtered one needs taskd */
    char path[96];
    snprintf(path, sizeof path, "/projects/%lld/tasks", s_fx.paged_project);
    json_t *page = s_json(200, "GET", path, s_fx.viewer, NULL);
    assert_int_equal(json_array_size(json_object_get(page, "tasks")), 3);
    json_decref(page);
    snprintf(path, sizeof path, "/projects/%lld/tasks?status=todo", s_fx.paged_project);
    s_expect("GET", path, s_fx.viewer, NULL, 503, NULL);
    s_start_taskd();
    s_expect("GET", "/projects", s_fx.viewer, NULL, 200, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_project_lifecycle),
        cmocka_unit_test(test_show_overlaps),
        cmocka_unit_test(test_dependency_cycle),
        cmocka_unit_test(test_template_apply),
        cmocka_unit_test(test_reschedule),
        cmocka_unit_test(test_wip_limit),
        cmocka_unit_test(test_recurring_idempotent),
        cmocka_unit_test(test_reminders_once),
        cmocka_unit_test(test_roles_against_routes),
        cmocka_unit_test(test_regions_and_crew),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_task_page_view),
        cmocka_unit_test(test_taskd_down),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}

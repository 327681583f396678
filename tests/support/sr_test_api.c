/* sr_test_api - driving a real sr-gatewayd from tests. See sr_test_api.h. */
#include "sr_test_api.h"

#include "sr_alloc.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

void sr_test_gateway_start(sr_test_gateway_t *gw, const sr_test_busd_t *bus,
                           const char *metrics_rpc, char *const extra[])
{
    gw->port = sr_test_free_port();
    gw->admin = sr_test_free_port();
    snprintf(gw->base, sizeof gw->base, "http://127.0.0.1:%u/api/v1", gw->port);
    snprintf(gw->log, sizeof gw->log, "%s/gatewayd-%u.log", sr_test_env("SR_TEST_TMP"), gw->port);
    char *env[32];
    size_t n = 0;
    env[n++] = sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL"));
    env[n++] = sr_asprintf("SR_BUS_PUB=%s", bus->front_ep);
    env[n++] = sr_asprintf("SR_BUS_SUB=%s", bus->back_ep);
    env[n++] = sr_asprintf("SR_ADMIN_PORT=%u", gw->admin);
    env[n++] = sr_asprintf("SR_GATEWAY_BIND=127.0.0.1:%u", gw->port);
    env[n++] =
        sr_asprintf("SR_GATEWAY_METRICS_RPC=%s", metrics_rpc ? metrics_rpc : "tcp://127.0.0.1:1");
    env[n++] = sr_strdup("SR_GATEWAY_THREADS=2");
    env[n++] = sr_strdup("SR_CRON_INTERVAL=200ms");
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        env[n++] = sr_strdup(extra[i]);
    env[n] = NULL;
    gw->pid = sr_test_start_daemon("sr-gatewayd", env, gw->log, gw->admin, 15000);
    sr_test_free_env(env);
}

void sr_test_gateway_stop(sr_test_gateway_t *gw)
{
    if (gw->pid > 0)
        sr_test_stop(gw->pid, SIGTERM, 15000);
    gw->pid = 0;
}

int sr_test_bootstrap_admin(void)
{
    char *env[] = {sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL")),
                   sr_strdup("SR_ADMIN_PASSWORD=" SR_TEST_ADMIN_PASSWORD), NULL};
    char *out = NULL;
    char *bin = sr_test_bin_path("sr-gatewayd");
    char *argv[] = {bin, "bootstrap-admin", SR_TEST_ADMIN, NULL};
    char *log = sr_asprintf("%s/bootstrap-%d.log", sr_test_env("SR_TEST_TMP"), getpid());
    pid_t pid = sr_test_spawn(argv, env, log);
    int status = sr_test_stop(pid, 0, 20000);
    out = sr_test_read_file(log, NULL);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        print_message("bootstrap-admin: %s\n", out ? out : "(no output)");
    free(out);
    free(log);
    free(bin);
    sr_test_free_env(env);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long sr_test_api(const sr_test_gateway_t *gw, const char *method, const char *path,
                 const char *token, const char *body, sr_test_reply_t *reply)
{
    char *url = sr_asprintf("%s%s", gw->base, path);
    char *auth = token ? sr_asprintf("Authorization: Bearer %s", token) : NULL;
    const char *headers[3] = {0};
    size_t n = 0;
    if (auth)
        headers[n++] = auth;
    if (body)
        headers[n++] = "Content-Type: application/json";
    long status = sr_test_http(method, url, headers, body, reply);
    free(auth);
    free(url);
    return status;
}

json_t *sr_test_api_json(const sr_test_gateway_t *gw, const char *method, const char *path,
                         const char *token, const char *body, long want)
{
    sr_test_reply_t r;
    long status = sr_test_api(gw, method, path, token, body, &r);
    if (status != want)
        fail_msg("%s %s: status %ld, want %ld: %s", method, path, status, want, r.body);
    json_error_t err;
    json_t *json = json_loads(r.body, 0, &err);
    if (!json)
        fail_msg("%s %s: not JSON: %s", method, path, r.body);
    sr_test_reply_free(&r);
    return json;
}

char *sr_test_login(const sr_test_gateway_t *gw, const char *user, const char *password)
{
    char *body = sr_asprintf("{\"user\":\"%s\",\"password\":\"%s\"}", user, password);
    json_t *j = sr_test_api_json(gw, "POST", "/auth/login", NULL, body, 200);
    free(body);
    char *token = sr_strdup(sr_test_json_str(j, "token"));
    json_decref(j);
    return token;
}

const char *sr_test_json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

long long sr_test_json_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return atoll(json_string_value(v));
    return -1;
}

/* sr_test - helpers for test binaries. See sr_test.h. */
#include "sr_test.h"

#include "sr_alloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

extern char **environ;

#define MAX_CHILDREN 64
static pid_t s_children[MAX_CHILDREN];
static int s_atexit_set;

const char *sr_test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "sr_test: %s is not set; run the tests through tests/run.sh\n", name);
        exit(1);
    }
    return v;
}

uint16_t sr_test_free_port(void)
{
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
            close(fd);
            return ntohs(a.sin_port);
        }
        if (fd >= 0)
            close(fd);
    }
    fprintf(stderr, "sr_test: no free port\n");
    exit(1);
}

char *sr_test_root_path(const char *rel)
{
    return sr_asprintf("%s/%s", sr_test_env("SR_TEST_ROOT"), rel);
}

char *sr_test_bin_path(const char *name)
{
    return sr_asprintf("%s/%s", sr_test_env("SR_TEST_BIN"), name);
}

static void s_remember(pid_t pid)
{
    if (!s_atexit_set) {
        atexit(sr_test_reap_all);
        s_atexit_set = 1;
    }
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (s_children[i] == 0) {
            s_children[i] = pid;
            return;
        }
    }
}

static void s_forget(pid_t pid)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (s_children[i] == pid)
            s_children[i] = 0;
    }
}

pid_t sr_test_spawn(char *const argv[], char *const env[], const char *log_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        execv(argv[0], argv);
        fprintf(stderr, "sr_test: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s_remember(pid);
    return pid;
}

int sr_test_stop(pid_t pid, int sig, int timeout_ms)
{
    int status = -1;
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            s_forget(pid);
            return status;
        }
        if (r < 0) {
            s_forget(pid);
            return -1;
        }
        sr_test_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    s_forget(pid);
    return -1;
}

void sr_test_reap_all(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++) {
        if (s_children[i] > 0) {
            pid_t pid = s_children[i];
            s_children[i] = 0;
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
}

void sr_test_free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
}

pid_t sr_test_start_daemon(const char *name, char *const env[], const char *log_path,
                           uint16_t admin_port, int timeout_ms)
{
    char *bin = sr_test_bin_path(name);
    char *argv[] = {bin, NULL};
    pid_t pid = sr_test_spawn(argv, env, log_path);
    free(bin);
    if (pid < 0)
        fail_msg("cannot start %s", name);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", admin_port);
    if (sr_test_wait_http(url, 200, timeout_ms) != 0)
        fail_msg("%s: no 200 on %s within %d ms (log: %s)", name, url, timeout_ms,
                 log_path ? log_path : "none");
    return pid;
}

int sr_test_run(const char *name, const char *arg, char *const env[], char **out)
{
    char *bin = sr_test_bin_path(name);
    char *log = sr_asprintf("%s/%s-run-%d.log", sr_test_env("SR_TEST_TMP"), name, getpid());
    unlink(log);
    char *argv[] = {bin, (char *)arg, NULL};
    pid_t pid = sr_test_spawn(argv, env, log);
    /* signal 0 only waits; a daemon still running after that is killed and counts as -1 */
    int status = sr_test_stop(pid, 0, 10000);
    *out = sr_test_read_file(log, NULL);
    if (!*out)
        *out = sr_strdup("");
    free(log);
    free(bin);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void sr_test_busd_start(sr_test_busd_t *b)
{
    if (!b->front)
        b->front = sr_test_free_port();
    if (!b->back)
        b->back = sr_test_free_port();
    if (!b->admin)
        b->admin = sr_test_free_port();
    snprintf(b->front_ep, sizeof b->front_ep, "tcp://127.0.0.1:%u", b->front);
    snprintf(b->back_ep, sizeof b->back_ep, "tcp://127.0.0.1:%u", b->back);
    snprintf(b->log, sizeof b->log, "%s/busd-%u.log", sr_test_env("SR_TEST_TMP"), b->admin);
    char *env[] = {
        sr_asprintf("SR_BUSD_FRONTEND=%s", b->front_ep),
        sr_asprintf("SR_BUSD_BACKEND=%s", b->back_ep), sr_asprintf("SR_ADMIN_PORT=%u", b->admin),
        sr_asprintf("SR_BUSD_CURVE_SECRET=%s", b->curve_secret ? b->curve_secret : ""), NULL};
    b->pid = sr_test_start_daemon("sr-busd", env, b->log, b->admin, 10000);
    sr_test_free_env(env);
}

size_t sr_test_collect(char *ptr, size_t size, size_t n, void *arg)
{
    sr_test_buf_t *b = arg;
    b->data = sr_realloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* s_header - keep the Allow header, which curl has no getinfo for */
/* s_header - keep the reply headers tests look at */
static size_t s_header(char *ptr, size_t size, size_t n, void *arg)
{
    sr_test_reply_t *r = arg;
    static const struct {
        const char *name;
        size_t off;
    } kept[] = {
        {"Allow: ", offsetof(sr_test_reply_t, allow)},
        {"Retry-After: ", offsetof(sr_test_reply_t, retry_after)},
        {"X-Request-Id: ", offsetof(sr_test_reply_t, request_id)},
    };
    for (size_t k = 0; k < sizeof kept / sizeof kept[0]; k++) {
        size_t len = strlen(kept[k].name);
        if (size * n > len && strncasecmp(ptr, kept[k].name, len) == 0) {
            char **slot = (char **)((char *)r + kept[k].off);
            free(*slot);
            *slot = sr_strndup(ptr + len, strcspn(ptr + len, "\r\n"));
        }
    }
    return size * n;
}

long sr_test_http(const char *method, const char *url, const char *const headers[],
                  const char *send, sr_test_reply_t *reply)
{
    sr_test_reply_t r = {0};
    sr_test_buf_t b = {sr_calloc(1, 1), 0};
    struct curl_slist *list = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *grown = curl_slist_append(list, headers[i]);
        if (!grown)
            fail_msg("curl_slist_append failed");
        list = grown;
    }
    CURL *c = curl_easy_init();
    if (!c)
        fail_msg("curl_easy_init failed");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    if (send)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, send);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sr_test_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        r.content_type = ct ? sr_strdup(ct) : NULL;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(list);
    r.body = b.data;
    long status = r.status;
    if (reply)
        *reply = r;
    else
        sr_test_reply_free(&r);
    return status;
}

void sr_test_reply_free(sr_test_reply_t *reply)
{
    free(reply->body);
    free(reply->content_type);
    free(reply->allow);
    free(reply->retry_after);
    free(reply->request_id);
    *reply = (sr_test_reply_t){0};
}

long sr_test_http_get(const char *url, char **body)
{
    sr_test_reply_t r;
    long status = sr_test_http("GET", url, NULL, NULL, &r);
    if (body) {
        *body = r.body;
        r.body = NULL;
    }
    sr_test_reply_free(&r);
    return status;
}

int sr_test_wait_http(const char *url, long want_status, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (sr_test_http_get(url, NULL) == want_status)
            return 0;
        sr_test_sleep_ms(50);
    }
    return -1;
}

void sr_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

char *sr_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    sr_test_buf_t b = {sr_calloc(1, 1), 0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        sr_test_collect(chunk, 1, n, &b);
    fclose(f);
    if (len)
        *len = b.len;
    return b.data;
}

long long sr_test_metric_in(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ')
            return strtoll(line + len + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -1;
}

long long sr_test_admin_metric(uint16_t port, const char *series)
{
    char url[64], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", port);
    assert_int_equal(sr_test_http_get(url, &body), 200);
    long long value = sr_test_metric_in(body, series);
    free(body);
    return value;
}

long long sr_test_metric(sr_metrics_t *metrics, const char *series)
{
    char *text = sr_metrics_render(metrics);
    long long value = sr_test_metric_in(text, series);
    free(text);
    return value;
}

sr_db_t *sr_test_db(const char *app_name)
{
    sr_db_t *db = sr_db_connect(sr_test_env("SR_TEST_DB_URL"), app_name, 3, 500);
    assert_non_null(db);
    return db;
}

void sr_test_db_exec(sr_db_t *db, const char *sql)
{
    if (sr_db_exec(db, sql) != 0)
        fail_msg("%s: %s", sql, sr_db_error(db));
}

long long sr_test_db_number(sr_db_t *db, const char *sql)
{
    PGresult *r = sr_db_query(db, sql, 0, NULL);
    if (!r || PQntuples(r) != 1)
        fail_msg("%s: %s", sql, r ? "not one row" : sr_db_error(db));
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

void sr_test_db_reset_schema(sr_db_t *db, const char *schema)
{
    char *sql = sr_asprintf("DROP SCHEMA IF EXISTS %s CASCADE;"
                            "DO $$ BEGIN IF to_regclass('public.sr_migrations') IS NOT NULL THEN"
                            " DELETE FROM public.sr_migrations WHERE schema = '%s'; END IF; END $$",
                            schema, schema);
    sr_test_db_exec(db, sql);
    free(sql);
}

char *sr_test_fixture(const char *rel, size_t *len)
{
    char *path = sr_asprintf("%s/tests/fixtures/%s", sr_test_env("SR_TEST_ROOT"), rel);
    char *body = sr_test_read_file(path, len);
    if (!body)
        fail_msg("cannot read %s", path);
    free(path);
    return body;
}

/* sr_test - helpers for test binaries. See sr_test.h. */
#include "sr_test.h"

#include "sr_alloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t s_collect(char *ptr, size_t size, size_t n, void *arg)
{
    buf_t *b = arg;
    b->data = sr_realloc(b->data, b->len + size * n + 1);
    memcpy(b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

long sr_test_http_get(const char *url, char **body)
{
    CURL *c = curl_easy_init();
    buf_t b = {sr_calloc(1, 1), 0};
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (body)
        *body = b.data;
    else
        free(b.data);
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
    buf_t b = {sr_calloc(1, 1), 0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        s_collect(chunk, 1, n, &b);
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

void sr_test_db_reset_schema(sr_db_t *db, const char *schema)
{
    char *sql = sr_asprintf("DROP SCHEMA IF EXISTS %s CASCADE;"
                            "DO $$ BEGIN IF to_regclass('public.sr_migrations') IS NOT NULL THEN"
                            " DELETE FROM public.sr_migrations WHERE schema = '%s'; END IF; END $$",
                            schema, schema);
    sr_test_db_exec(db, sql);
    free(sql);
}

/* sr_test - helpers shared by the test binaries (linked as libsrtest.a).
 *
 * Environment set by tests/run.sh: SR_TEST_DB_URL, SR_TEST_BIN, SR_TEST_ROOT, SR_TEST_TMP,
 * SR_TEST_PG_DIR, SR_TEST_PG_PORT. Processes started with sr_test_spawn() are remembered and
 * killed by sr_test_reap_all(), which also runs at exit, so a failing test leaves nothing behind.
 */
#ifndef SR_TEST_H
#define SR_TEST_H

#include "sr_db.h"
#include "sr_metrics.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* sr_test_env - the variable's value; fails the test (exit 1) when unset */
const char *sr_test_env(const char *name);
/* sr_test_free_port - a TCP port on 127.0.0.1 nobody listens on right now */
uint16_t sr_test_free_port(void);
/* sr_test_path - SR_TEST_ROOT + "/" + rel, or SR_TEST_BIN + "/" + name; caller frees */
char *sr_test_root_path(const char *rel);
char *sr_test_bin_path(const char *name);

/* sr_test_spawn - start argv[0] with argv and extra environment entries "K=V" (NULL-ended, may
 * be NULL) on top of ours; output appended to log_path (or discarded when NULL). */
pid_t sr_test_spawn(char *const argv[], char *const env[], const char *log_path);
/* sr_test_stop - send sig, wait up to timeout_ms, then SIGKILL; returns the exit status as
 * waitpid() reports it, or -1 */
int sr_test_stop(pid_t pid, int sig, int timeout_ms);
void sr_test_reap_all(void);

/* sr_test_free_env - free the entries of a NULL-ended array (not the array) */
void sr_test_free_env(char **env);
/* sr_test_start_daemon - spawn SR_TEST_BIN/name with env (as sr_test_spawn) and wait up to
 * timeout_ms for 200 on its /healthz at admin_port; fails the test when it does not come up */
pid_t sr_test_start_daemon(const char *name, char *const env[], const char *log_path,
                           uint16_t admin_port, int timeout_ms);
/* sr_test_run - run SR_TEST_BIN/name [arg] with env to completion (10 s at most, then killed);
 * its exit code, or -1 when it did not exit; its output in *out (caller frees) */
int sr_test_run(const char *name, const char *arg, char *const env[], char **out);

/* a real sr-busd; ports left 0 are picked free by sr_test_busd_start() and kept, so starting
 * it again after a kill brings it back on the same endpoints */
typedef struct {
    pid_t pid;
    uint16_t front, back, admin;
    char front_ep[64], back_ep[64]; /* tcp://127.0.0.1:front, :back */
    char log[256];                  /* SR_TEST_TMP/busd-<admin>.log */
    const char *curve_secret;       /* SR_BUSD_CURVE_SECRET, NULL for none */
} sr_test_busd_t;

/* sr_test_busd_start - start sr-busd and wait for its /healthz; fails the test when it cannot */
void sr_test_busd_start(sr_test_busd_t *b);

typedef struct {
    char *data; /* NUL-ended; caller frees */
    size_t len;
} sr_test_buf_t;

/* sr_test_collect - a CURLOPT_WRITEFUNCTION appending to the sr_test_buf_t in arg */
size_t sr_test_collect(char *ptr, size_t size, size_t n, void *arg);

typedef struct {
    long status;        /* 0 when there was no connection */
    char *body;         /* "" when none */
    char *content_type; /* NULL when none */
    char *allow;        /* the Allow header, NULL when none */
    char *retry_after;  /* the Retry-After header, NULL when none */
    char *request_id;   /* the X-Request-Id header, NULL when none */
} sr_test_reply_t;

/* sr_test_http - one request with extra headers ("Name: value", NULL-ended, may be NULL) and a
 * body to send (NULL for none); returns the status, and fills *reply when not NULL (free it
 * with sr_test_reply_free) */
long sr_test_http(const char *method, const char *url, const char *const headers[],
                  const char *send, sr_test_reply_t *reply);
void sr_test_reply_free(sr_test_reply_t *reply);
/* sr_test_http_get - GET url; returns HTTP status (0 when no connection), body in *body if
 * not NULL (caller frees) */
long sr_test_http_get(const char *url, char **body);
/* sr_test_wait_http - poll url until it answers want_status or timeout_ms passes; 0 ok */
int sr_test_wait_http(const char *url, long want_status, int timeout_ms);
/* sr_test_fixture - contents of SR_TEST_ROOT/tests/fixtures/rel (length in *len, may be NULL);
 * fails the test when it cannot be read; caller frees */
char *sr_test_fixture(const char *rel, size_t *len);
/* sr_test_sleep_ms - sleep */
void sr_test_sleep_ms(int ms);
/* sr_test_read_file - whole file, caller frees; NULL when it cannot be read */
char *sr_test_read_file(const char *path, size_t *len);

/* sr_test_metric_in - the value of one series ("name{labels}") in Prometheus text, or -1 */
long long sr_test_metric_in(const char *text, const char *series);
/* sr_test_admin_metric - the same, read from a daemon's admin endpoint on 127.0.0.1:port
 * (asserts that /metrics answers 200) */
long long sr_test_admin_metric(uint16_t port, const char *series);
/* sr_test_metric - the same, rendered from a registry */
long long sr_test_metric(sr_metrics_t *metrics, const char *series);

/* sr_test_db - a connection to SR_TEST_DB_URL; fails the test when there is none */
sr_db_t *sr_test_db(const char *app_name);
/* sr_test_db_exec - run SQL that returns no rows; fails the test with PostgreSQL's message */
void sr_test_db_exec(sr_db_t *db, const char *sql);
/* sr_test_db_number - the first column of the one row SQL returns, as a number; fails the test
 * on an error or another number of rows */
long long sr_test_db_number(sr_db_t *db, const char *sql);
/* sr_test_db_reset_schema - drop a test's schema and forget its migrations, so reruns start
 * clean */
void sr_test_db_reset_schema(sr_db_t *db, const char *schema);

#endif

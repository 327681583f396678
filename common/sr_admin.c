/* sr_admin - the admin HTTP endpoint (/metrics, /healthz) on libmicrohttpd. See sr_admin.h.
 *
 * MHD serves from its own polling thread; this module owns the daemon, the list of health
 * checks (under a mutex, since the loop thread sets them while MHD reads them) and the
 * sr_admin_requests_total counters it adds to the registry. Routes are one static table.
 * Every answer is built in full before it is queued, so a request never waits on anything but
 * the registry's lock. The rendering itself lives in sr_metrics.c.
 */
#include "sr_admin.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CONNECTION_LIMIT     64
#define CONNECTION_TIMEOUT_S 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"
#define JSON_CONTENT_TYPE    "application/json"

typedef struct {
    unsigned status;
    const char *content_type;
    char *body; /* malloc'd; MHD frees it */
} reply_t;

typedef reply_t (*route_fn)(sr_admin_t *self);

static reply_t s_metrics(sr_admin_t *self);
static reply_t s_healthz(sr_admin_t *self);

static const struct {
    const char *path;
    route_fn fn;
} s_routes[] = {
    {"/metrics", s_metrics},
    {"/healthz", s_healthz},
};

#define ROUTE_COUNT (sizeof s_routes / sizeof s_routes[0])

typedef struct {
    char *name;
    int ok;
    char *detail;
} check_t;

struct sr_admin_t {
    struct MHD_Daemon *daemon;
    sr_metrics_t *metrics;
    sr_metrics_t *own_metrics; /* when the caller gave none */
    sr_counter_t *other_requests;
    sr_counter_t *route_requests[ROUTE_COUNT];
    uint16_t port;
    pthread_mutex_t lock; /* checks, started, start_err */
    check_t *checks;
    size_t nchecks, cap;
    int started;
    int64_t beat_ms, beat_max_ms; /* last sr_admin_heartbeat() and how old it may grow */
    char start_err[256];          /* MHD's first complaint while starting, for the one error line */
};

/* s_json - compact JSON text of root, which it releases */
static char *s_json(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text)
        sr_panic("admin_json", "err=\"cannot build reply\"");
    json_decref(root);
    return text;
}

static reply_t s_error(unsigned status, const char *code, const char *message)
{
    json_t *root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    return (reply_t){status, JSON_CONTENT_TYPE, s_json(root)};
}

static reply_t s_metrics(sr_admin_t *self)
{
    return (reply_t){MHD_HTTP_OK, METRICS_CONTENT_TYPE, sr_metrics_render(self->metrics)};
}

/* s_healthz - 200 when every check is up, else 503; checks in the order they were added */
static reply_t s_healthz(sr_admin_t *self)
{
    json_t *checks = json_object();
    if (!checks)
        sr_panic("admin_json", "err=\"cannot build reply\"");
    int all_ok = 1;
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->nchecks; i++) {
        const check_t *c = &self->checks[i];
        char *text = c->ok          ? sr_strdup("ok")
                     : c->detail[0] ? sr_asprintf("down: %s", c->detail)
                                    : sr_strdup("down");
        json_t *value = json_string(text);
        if (!value)
            value = json_string(c->ok ? "ok" : "down"); /* detail was not UTF-8 */
        if (json_object_set_new(checks, c->name, value) < 0)
            sr_warn("admin_check_skipped", "check=\"%s\" err=\"name is not UTF-8\"", c->name);
        all_ok = all_ok && c->ok;
        free(text);
    }
    int64_t silent_ms = self->beat_max_ms ? sr_clock_mono_ms() - self->beat_ms : 0;
    pthread_mutex_unlock(&self->lock);
    if (silent_ms > self->beat_max_ms) {
        /* the loop that runs the checks is stuck, so what they last said is stale */
        char text[96];
        snprintf(text, sizeof text, "down: no heartbeat for %lld ms", (long long)silent_ms);
        json_object_set_new(checks, "loop", json_string(text));
        all_ok = 0;
    }
    json_t *root = json_pack("{s:s,s:o}", "status", all_ok ? "ok" : "down", "checks", checks);
    return (reply_t){all_ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, JSON_CONTENT_TYPE,
                     s_json(root)};
}

/* s_send - queue the reply; MHD takes the body */
static enum MHD_Result s_send(struct MHD_Connection *conn, reply_t *r, int allow_get)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(r->body), r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    enum MHD_Result rc =
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (rc == MHD_YES && allow_get)
        rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
    if (rc == MHD_YES)
        rc = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* s_request - MHD's access handler. A GET is answered once the whole request is in, so the
 * connection can be kept alive between scrapes (a body, which a GET should not have, is
 * dropped); anything else is answered at the first call, before its body is read, so a client
 * cannot make the admin thread take in an upload. */
static enum MHD_Result s_request(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    if (is_get && !*con_cls) {
        *con_cls = cls;
        return MHD_YES;
    }
    if (is_get && *upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    sr_admin_t *self = cls;
    size_t route = 0;
    while (route < ROUTE_COUNT && strcmp(url, s_routes[route].path) != 0)
        route++;
    sr_counter_inc(route < ROUTE_COUNT ? self->route_requests[route] : self->other_requests);
    int wrong_method = !is_get;
    reply_t r;
    if (route == ROUTE_COUNT)
        r = s_error(MHD_HTTP_NOT_FOUND, "not_found", "no such path");
    else if (wrong_method)
        r = s_error(MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "only GET is allowed");
    else
        r = s_routes[route].fn(self);
    return s_send(conn, &r, route < ROUTE_COUNT && wrong_method);
}

/* s_mhd_log - MHD's complaints: kept for the error line while starting, logged after */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    sr_admin_t *self = cls;
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    pthread_mutex_lock(&self->lock);
    int started = self->started;
    if (!started && !self->start_err[0])
        snprintf(self->start_err, sizeof self->start_err, "%s", text);
    pthread_mutex_unlock(&self->lock);
    if (started)
        sr_warn("admin_http", "err=\"%s\"", text);
}

static void s_free(sr_admin_t *self)
{
    for (size_t i = 0; i < self->nchecks; i++) {
        free(self->checks[i].name);
        free(self->checks[i].detail);
    }
    free(self->checks);
    sr_metrics_destroy(&self->own_metrics);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

/* s_sockaddr - addr as an IPv4 or IPv6 socket address; 0 ok, -1 when it is neither */
static int s_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, unsigned *flags)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return -1;
}

sr_admin_t *sr_admin_start(const char *addr, uint16_t port, sr_metrics_t *metrics)
{
    if (!addr)
        addr = "127.0.0.1";
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (s_sockaddr(addr, port, &ss, &flags) < 0) {
        sr_error("admin_start_failed", "listen=%s:%u err=\"not an IPv4 or IPv6 address\"", addr,
                 port);
        return NULL;
    }
    sr_admin_t *self = sr_calloc(1, sizeof *self);
    int rc = pthread_mutex_init(&self->lock, NULL);
    if (rc != 0)
        sr_panic("admin_mutex", "err=\"%s\"", strerror(rc));
    if (!metrics)
        metrics = self->own_metrics = sr_metrics_new();
    self->metrics = metrics;
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "path=\"%s\"", s_routes[i].path);
        self->route_requests[i] = sr_metrics_counter(metrics, "sr_admin_requests_total", labels,
                                                     "admin HTTP requests by path");
    }
    self->other_requests = sr_metrics_counter(metrics, "sr_admin_requests_total", "path=\"other\"",
                                              "admin HTTP requests by path");
    /* the logger goes first, or MHD uses its own for what the options before it say */
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_request, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    pthread_mutex_lock(&self->lock);
    self->started = self->daemon != NULL;
    pthread_mutex_unlock(&self->lock);
    if (!self->daemon) {
        sr_error("admin_start_failed", "listen=%s:%u err=\"%s\"", addr, port,
                 self->start_err[0] ? self->start_err : "cannot start the HTTP daemon");
        s_free(self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info && info->port ? info->port : port;
    return self;
}

void sr_admin_stop(sr_admin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_admin_t *self = *self_p;
    MHD_stop_daemon(self->daemon);
    s_free(self);
    *self_p = NULL;
}

uint16_t sr_admin_port(const sr_admin_t *self)
{
    return self ? self->port : 0;
}

void sr_admin_set_check(sr_admin_t *self, const char *name, int ok, const char *detail)
{
    char *copy = sr_strdup(detail ? detail : "");
    /* libpq's messages end in a newline; the JSON should not */
    size_t n = strlen(copy);
    while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == '\r' || copy[n - 1] == ' '))
        copy[--n] = '\0';
    pthread_mutex_lock(&self->lock);
    check_t *c = NULL;
    for (size_t i = 0; i < self->nchecks && !c; i++) {
        if (strcmp(self->checks[i].name, name) == 0)
            c = &self->checks[i];
    }
    if (!c) {
        if (self->nchecks == self->cap) {
            self->cap = self->cap ? self->cap * 2 : 4;
            self->checks = sr_realloc(self->checks, self->cap * sizeof *self->checks);
        }
        c = &self->checks[self->nchecks++];
        *c = (check_t){sr_strdup(name), 0, NULL};
    }
    c->ok = ok != 0;
    free(c->detail);
    c->detail = copy;
    pthread_mutex_unlock(&self->lock);
}

void sr_admin_heartbeat(sr_admin_t *self, int64_t max_age_ms)
{
    pthread_mutex_lock(&self->lock);
    self->beat_ms = sr_clock_mono_ms();
    self->beat_max_ms = max_age_ms;
    pthread_mutex_unlock(&self->lock);
}

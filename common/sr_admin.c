/* sr_admin - the admin HTTP endpoint (/metrics, /healthz) on sr_http. See
 * sr_admin.h.
 *
 * sr_http serves from its own thread; this module owns the server, the list of
 * health checks (under a mutex, since the loop thread sets them while the
 * server reads them) and the sr_admin_requests_total counters it adds to the
 * registry. Routes are one static table. Every answer is built in full before
 * it is queued, so a request never waits on anything but the registry's lock.
 * The rendering itself lives in sr_metrics.c.
 */
#include "sr_admin.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_http.h"
#include "sr_log.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

static sr_http_reply_t s_metrics(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_healthz(void *arg, const sr_http_request_t *req);
static sr_http_reply_t s_refused(void *arg, const sr_http_request_t *req);

/* the fallback comes last, so a route's index is also its counter's */
static const sr_http_route_t s_routes[] = {
    {"/metrics", s_metrics},
    {"/healthz", s_healthz},
    {NULL, s_refused},
};

#define ROUTE_COUNT (sizeof s_routes / sizeof s_routes[0] - 1)

typedef struct {
    char *name;
    int ok;
    char *detail;
} check_t;

struct sr_admin_t {
    sr_http_server_t *http;
    sr_metrics_t *metrics;
    sr_metrics_t *own_metrics; /* when the caller gave none */
    sr_counter_t *other_requests;
    sr_counter_t *route_requests[ROUTE_COUNT];
    pthread_mutex_t lock; /* checks, beat_ms, beat_max_ms */
    check_t *checks;
    size_t nchecks, cap;
    int64_t beat_ms, beat_max_ms; /* last sr_admin_heartbeat() and how old it may grow */
};

static sr_http_reply_t s_metrics(void *arg, const sr_http_request_t *req)
{
    (void)req;
    sr_admin_t *self = arg;
    sr_counter_inc(self->route_requests[0]);
    return (sr_http_reply_t){MHD_HTTP_OK, METRICS_CONTENT_TYPE, sr_metrics_render(self->metrics)};
}

/* s_healthz - 200 when every check is up, else 503; checks in the order they
 * were added */
static sr_http_reply_t s_healthz(void *arg, const sr_http_request_t *req)
{
    (void)req;
    sr_admin_t *self = arg;
    sr_counter_inc(self->route_requests[1]);
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
        /* the loop that runs the checks is stuck, so what they last said is stale
         */
        char text[96];
        snprintf(text, sizeof text, "down: no heartbeat for %lld ms", (long long)silent_ms);
        json_object_set_new(checks, "loop", json_string(text));
        all_ok = 0;
    }
    json_t *root = json_pack("{s:s,s:o}", "status", all_ok ? "ok" : "down", "checks", checks);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text)
        sr_panic("admin_json", "err=\"cannot build reply\"");
    json_decref(root);
    return (sr_http_reply_t){all_ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, SR_HTTP_JSON,
                             text};
}

/* s_refused - a 404 counts as "other", a 405 on a known path as that path */
static sr_http_reply_t s_refused(void *arg, const sr_http_request_t *req)
{
    sr_admin_t *self = arg;
    sr_counter_t *counter = self->other_requests;
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        if (strcmp(sr_http_request_path(req), s_routes[i].path) == 0)
            counter = self->route_requests[i];
    }
    sr_counter_inc(counter);
    if (sr_http_request_refused(req) == MHD_HTTP_NOT_FOUND)
        return sr_http_error(MHD_HTTP_NOT_FOUND, "not_found", "no such path");
    return sr_http_error(MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "only GET is allowed");
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

sr_admin_t *sr_admin_start(const char *addr, uint16_t port, sr_metrics_t *metrics)
{
    if (!addr)
        addr = "127.0.0.1";
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
    char err[256];
    self->http = sr_http_server_new(addr, port, s_routes, sizeof s_routes / sizeof s_routes[0],
                                    self, err, sizeof err);
    if (!self->http) {
        sr_error("admin_start_failed", "listen=%s:%u err=\"%s\"", addr, port, err);
        s_free(self);
        return NULL;
    }
    return self;
}

void sr_admin_stop(sr_admin_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_admin_t *self = *self_p;
    sr_http_server_destroy(&self->http);
    s_free(self);
    *self_p = NULL;
}

uint16_t sr_admin_port(const sr_admin_t *self)
{
    return self ? sr_http_server_port(self->http) : 0;
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

/* gatewayd_http - the gateway's HTTP server on libmicrohttpd.
 *
 * A pool of SR_GATEWAY_THREADS threads serves the connections (epoll), at most
 * SR_GATEWAY_MAX_CONNECTIONS at once, each closed after SR_GATEWAY_CONN_TIMEOUT without
 * progress, so slow clients cannot pile up; with SR_GATEWAY_TLS_CERT and SR_GATEWAY_TLS_KEY it
 * speaks HTTPS (GnuTLS). A request's life: on its first call the headers are checked - a
 * Content-Length over SR_GATEWAY_MAX_BODY is answered 413 and a body that is not JSON 415
 * before any of it is read; the body is gathered (413 once it passes the limit); then the route
 * is matched (404, or 405 with Allow) and served (gatewayd_routes.c), or a stream is opened
 * (gatewayd_stream.c). Every answer carries X-Request-Id (the client's, when it sent a sane
 * one, else a new one), is counted by route and status with its latency, and is logged in one
 * access-log line.
 */
#include "gatewayd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_http.h"
#include "sr_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define JSON_TYPE   "application/json; charset=utf-8"
#define QUERY_MAX   32
#define REQ_ID_MAX  64
#define PEM_MAX     (1 << 20)
#define STATUS_LIST 16

static const unsigned s_statuses[STATUS_LIST] = {200, 201, 400, 401, 403, 404, 405, 409,
                                                 413, 415, 429, 500, 502, 503, 0,   0};

struct gatewayd_http_t {
    gatewayd_t *gw;
    struct MHD_Daemon *daemon;
    uint16_t port;
    char *cert, *key;
    int access_log;
    /* per route (the last row: no route matched) and status */
    sr_counter_t **requests;
    sr_histogram_t **latency;
};

typedef struct {
    int64_t start_us;
    char request_id[REQ_ID_MAX + 1];
    char *body;
    size_t len, cap;
    int too_large, refused; /* refused: answered on the first call already */
} request_t;

/* --- metrics and the access log ------------------------------------------------------------ */

static size_t s_status_index(unsigned status)
{
    for (size_t i = 0; s_statuses[i]; i++)
        if (s_statuses[i] == status)
            return i;
    return STATUS_LIST - 1; /* "other" */
}

static void s_observe(gatewayd_http_t *self, const gw_route_t *route, unsigned status,
                      int64_t start_us)
{
    size_t row = route ? (size_t)(route - gatewayd_routes) : gatewayd_route_count;
    size_t slot = row * STATUS_LIST + s_status_index(status);
    sr_counter_t *c = __atomic_load_n(&self->requests[slot], __ATOMIC_ACQUIRE);
    if (!c) {
        char labels[200], st[8];
        snprintf(st, sizeof st, "%u", status);
        snprintf(labels, sizeof labels, "route=\"%s%s%s\",status=\"%s\"",
                 route ? route->method : "", route ? " " : "", route ? route->pattern : "unmatched",
                 s_status_index(status) == STATUS_LIST - 1 ? "other" : st);
        c = sr_metrics_counter(self->gw->metrics, "sr_gateway_requests_total", labels,
                               "HTTP requests answered, by route and status");
        __atomic_store_n(&self->requests[slot], c, __ATOMIC_RELEASE);
    }
    sr_counter_inc(c);
    sr_histogram_observe(self->latency[row], (double)(sr_clock_mono_us() - start_us) / 1e6);
}

/* s_clean - text safe inside key="..." of a log line: no quotes, no control characters */
static void s_clean(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && n + 1 < size; p++)
        out[n++] = *p < 0x20 || *p == '"' || *p == '\\' || *p == 0x7f ? '_' : (char)*p;
    out[n] = '\0';
}

static void s_client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, size, "-");
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

static void s_log(gatewayd_http_t *self, const request_t *rq, const char *method, const char *url,
                  unsigned status, const char *user, const char *ip)
{
    if (!self->access_log)
        return;
    char path[256], who[80];
    s_clean(path, sizeof path, url);
    s_clean(who, sizeof who, user ? user : "-");
    sr_info("http_request",
            "request_id=%s method=%.10s path=\"%s\" status=%u ms=%.2f user=%s addr=%s",
            rq->request_id, method, path, status, (double)(sr_clock_mono_us() - rq->start_us) / 1e3,
            who, ip);
}

/* --- answering ----------------------------------------------------------------------------- */

static enum MHD_Result s_queue(struct MHD_Connection *conn, const request_t *rq, gw_http_out_t *out,
                               const char *allow)
{
    char *body = out->body ? out->body : sr_strdup("{}");
    out->body = NULL;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
    if (allow && allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (out->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", out->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    enum MHD_Result rc = MHD_queue_response(conn, out->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* s_request_id - the client's X-Request-Id when it is 1..64 of [A-Za-z0-9._-], else a new one */
static void s_request_id(struct MHD_Connection *conn, char out[REQ_ID_MAX + 1])
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    int ok = n > 0 && n <= REQ_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (given[i] >= 'A' && given[i] <= 'Z') || (given[i] >= 'a' && given[i] <= 'z') ||
             (given[i] >= '0' && given[i] <= '9') || strchr("._-", given[i]);
    if (ok) {
        memcpy(out, given, n + 1);
        return;
    }
    uint8_t raw[12];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, REQ_ID_MAX + 1, raw, sizeof raw);
}

static int s_has_body(const char *method)
{
    return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
           strcmp(method, "PATCH") == 0;
}

/* s_is_json - application/json, parameters (charset) allowed */
static int s_is_json(const char *type)
{
    if (!type)
        return 0;
    while (*type == ' ')
        type++;
    size_t n = strlen("application/json");
    return strncasecmp(type, "application/json", n) == 0 &&
           (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* s_first - the checks on the headers; 0 to go on, else the status already queued */
static unsigned s_first(gatewayd_http_t *self, struct MHD_Connection *conn, request_t *rq,
                        const char *method, enum MHD_Result *rc)
{
    if (!s_has_body(method))
        return 0;
    const char *len =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    long long declared = len ? strtoll(len, NULL, 10) : 0;
    gw_http_out_t out = {0};
    if (declared > self->gw->cfg->max_body)
        out = gatewayd_error(413, "too_large", NULL, "the body is over %lld bytes",
                             (long long)self->gw->cfg->max_body);
    else if ((declared > 0 || te) && !s_is_json(MHD_lookup_connection_value(
                                         conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
        out = gatewayd_error(415, "unsupported_media_type", NULL,
                             "send the body as Content-Type: application/json");
    if (!out.status)
        return 0;
    *rc = s_queue(conn, rq, &out, NULL);
    return out.status;
}

typedef struct {
    const char *names[QUERY_MAX], *values[QUERY_MAX];
    size_t n;
    int overflow;
} query_t;

static enum MHD_Result s_query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    query_t *q = cls;
    if (q->n == QUERY_MAX) {
        q->overflow = 1;
        return MHD_NO;
    }
    q->names[q->n] = key;
    q->values[q->n++] = value ? value : "";
    return MHD_YES;
}

/* s_complete - the whole request is in: route and answer it */
static enum MHD_Result s_complete(gatewayd_http_t *self, struct MHD_Connection *conn, request_t *rq,
                                  const char *url, const char *method)
{
    gatewayd_t *gw = self->gw;
    char ip[INET6_ADDRSTRLEN + 1], allow[64];
    s_client_ip(conn, ip, sizeof ip);
    gw_param_t params[GW_MAX_PARAMS];
    size_t nparams = 0;
    const gw_route_t *route =
        gatewayd_route_match(method, url, params, &nparams, allow, sizeof allow);
    gw_http_out_t out = {0};
    query_t q = {0};
    if (!route && allow[0])
        out = gatewayd_error(405, "method_not_allowed", NULL, "%s is not allowed here; use %s",
                             method, allow);
    else if (!route)
        out = gatewayd_error(404, "not_found", NULL, "no such path");
    else if (rq->too_large)
        out = gatewayd_error(413, "too_large", NULL, "the body is over %lld bytes",
                             (long long)gw->cfg->max_body);
    else {
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, s_query_arg, &q);
        if (q.overflow)
            out = gatewayd_error(400, "too_many_parameters", NULL, "more than %d query parameters",
                                 QUERY_MAX);
    }
    gw_http_in_t in = {
        .method = method,
        .path = url,
        .body = rq->body,
        .body_len = rq->len,
        .params = params,
        .nparams = nparams,
        .query_names = q.names,
        .query_values = q.values,
        .nquery = q.n,
        .request_id = rq->request_id,
        .client_ip = ip,
        .authorization =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
    };
    enum MHD_Result rc;
    if (!out.status && (route->flags & GW_STREAM)) {
        gatewayd_thread_t *t = gatewayd_thread(gw);
        Sr__Principal *principal;
        int64_t token_id;
        out = gatewayd_route_authorize(gw, route, &in, t->arena, &principal, &token_id);
        if (!out.status) {
            const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
            if (!last)
                last = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last_event_id");
            struct MHD_Response *resp = gatewayd_stream_open(
                gw->stream, conn, principal, token_id,
                MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "topics"), last, &out);
            if (resp) {
                MHD_add_response_header(resp, "X-Request-Id", rq->request_id);
                rc = MHD_queue_response(conn, 200, resp);
                MHD_destroy_response(resp);
                s_observe(self, route, 200, rq->start_us);
                s_log(self, rq, method, url, 200, principal->user_name, ip);
                sr_arena_reset(t->arena);
                return rc;
            }
        }
        sr_arena_reset(t->arena);
    } else if (!out.status) {
        out = gatewayd_route_serve(gw, route, &in);
        sr_arena_reset(gatewayd_thread(gw)->arena);
    }
    rc = s_queue(conn, rq, &out, out.status == 405 ? allow : NULL);
    s_observe(self, route, out.status, rq->start_us);
    s_log(self, rq, method, url, out.status, out.principal_name, ip);
    free(out.principal_name);
    return rc;
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    (void)version;
    gatewayd_http_t *self = cls;
    request_t *rq = *con_cls;
    if (!rq) {
        rq = sr_calloc(1, sizeof *rq);
        rq->start_us = sr_clock_mono_us();
        s_request_id(conn, rq->request_id);
        *con_cls = rq;
        enum MHD_Result rc = MHD_YES;
        unsigned status = s_first(self, conn, rq, method, &rc);
        if (status) {
            rq->refused = 1;
            s_observe(self, NULL, status, rq->start_us);
            char ip[INET6_ADDRSTRLEN + 1];
            s_client_ip(conn, ip, sizeof ip);
            s_log(self, rq, method, url, status, NULL, ip);
        }
        return rc;
    }
    if (rq->refused) { /* answered already: drop the rest of the body */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (rq->too_large || rq->len + n > (size_t)self->gw->cfg->max_body) {
            rq->too_large = 1;
            return MHD_YES;
        }
        if (rq->len + n + 1 > rq->cap) {
            rq->cap = (rq->len + n + 1) * 2;
            rq->body = sr_realloc(rq->body, rq->cap);
        }
        memcpy(rq->body + rq->len, upload, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    return s_complete(self, conn, rq, url, method);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    request_t *rq = *con_cls;
    if (!rq)
        return;
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    sr_debug("http_server", "msg=\"%s\"", line);
}

/* s_read_pem - a whole PEM file; NULL (with err) when it cannot be read */
static char *s_read_pem(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s", path);
        return NULL;
    }
    char *buf = sr_malloc(PEM_MAX + 1);
    size_t n = fread(buf, 1, PEM_MAX, f);
    fclose(f);
    buf[n] = '\0';
    if (n == 0 || n == PEM_MAX || !strstr(buf, "-----BEGIN")) {
        snprintf(err, errlen, "%s is not a PEM file", path);
        free(buf);
        return NULL;
    }
    return buf;
}

gatewayd_http_t *gatewayd_http_new(gatewayd_t *gw)
{
    const gatewayd_config_t *cfg = gw->cfg;
    gatewayd_http_t *self = sr_calloc(1, sizeof *self);
    self->gw = gw;
    self->access_log = strcmp(cfg->access_log, "off") != 0;
    size_t rows = gatewayd_route_count + 1;
    self->requests = sr_calloc(rows * STATUS_LIST, sizeof *self->requests);
    self->latency = sr_calloc(rows, sizeof *self->latency);
    for (size_t r = 0; r < rows; r++) {
        char labels[160];
        const gw_route_t *route = r < gatewayd_route_count ? &gatewayd_routes[r] : NULL;
        snprintf(labels, sizeof labels, "route=\"%s%s%s\"", route ? route->method : "",
                 route ? " " : "", route ? route->pattern : "unmatched");
        self->latency[r] =
            sr_metrics_histogram(gw->metrics, "sr_gateway_request_seconds", labels,
                                 "time to answer an HTTP request, by route",
                                 sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
    }
    char addr[64], err[300] = "";
    uint16_t port = 0;
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (sr_http_split_bind(cfg->bind, addr, sizeof addr, &port) < 0 ||
        sr_http_sockaddr(addr, port, &ss, &flags) < 0) {
        sr_error("gateway_bind_invalid", "bind=%s", cfg->bind);
        gatewayd_http_destroy(&self);
        return NULL;
    }
    if (cfg->tls_cert[0]) {
        if (!(self->cert = s_read_pem(cfg->tls_cert, err, sizeof err)) ||
            !(self->key = s_read_pem(cfg->tls_key, err, sizeof err))) {
            sr_error("gateway_tls_failed", "err=\"%s\"", err);
            gatewayd_http_destroy(&self);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, self->cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, self->key},
        {MHD_OPTION_END, 0, NULL},
    };
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)cfg->threads, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)((cfg->conn_timeout_ms + 999) / 1000),
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_ARRAY,
        self->cert ? tls : tls + 2, MHD_OPTION_END);
    if (!self->daemon) {
        sr_error("gateway_listen_failed", "bind=%s err=\"cannot listen (port taken?)\"", cfg->bind);
        gatewayd_http_destroy(&self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : port;
    sr_info("gateway_listening", "url=%s://%s:%u/api/v1 threads=%lld",
            self->cert ? "https" : "http", addr, self->port, (long long)cfg->threads);
    return self;
}

uint16_t gatewayd_http_port(const gatewayd_http_t *self)
{
    return self ? self->port : 0;
}

void gatewayd_http_destroy(gatewayd_http_t **self_p)
{
    gatewayd_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        MHD_socket listener = MHD_quiesce_daemon(self->daemon); /* no new connections */
        gatewayd_stream_end_all(self->gw->stream);
        MHD_stop_daemon(self->daemon);
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
    }
    free(self->requests);
    free(self->latency);
    if (self->key)
        sodium_memzero(self->key, strlen(self->key));
    free(self->cert);
    free(self->key);
    free(self);
    *self_p = NULL;
}

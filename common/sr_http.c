/* sr_http - the GET server skeleton on libmicrohttpd. See sr_http.h.
 *
 * Owns the MHD daemon and nothing the routes serve: the caller's table and arg
 * are borrowed. MHD's complaints while starting become the err text of
 * sr_http_server_new(); later ones are warn lines. Users: sr_admin.c,
 * services/simd/simd_http.c.
 */
#include "sr_http.h"

#include "sr_alloc.h"
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

#define CONNECTION_LIMIT     512
#define CONNECTION_TIMEOUT_S 10

struct sr_http_server_t {
    struct MHD_Daemon *daemon;
    const sr_http_route_t *routes;
    size_t nroutes;
    const sr_http_route_t *fallback;
    void *arg;
    uint16_t port;
    char listen[80];
    pthread_mutex_t lock; /* started, start_err, listen: MHD's thread may log
                             while we start */
    int started;
    char start_err[256];
};

struct sr_http_request_t {
    struct MHD_Connection *conn;
    const char *path, *method;
    unsigned refused;
    const char *body;
    size_t body_len;
};

/* body_t - the upload of a POST in progress (the connection's con_cls) */
typedef struct {
    char *data;
    size_t len, cap;
} body_t;

int sr_http_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, unsigned *flags)
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

int sr_http_addr_ok(const char *addr)
{
    struct sockaddr_storage ss;
    unsigned flags = 0;
    return addr && sr_http_sockaddr(addr, 0, &ss, &flags) == 0;
}

int sr_http_split_bind(const char *bind, char *addr, size_t addrlen, uint16_t *port)
{
    const char *colon = strrchr(bind, ':');
    if (!colon || colon == bind)
        return -1;
    const char *start = bind, *end = colon;
    if (*start == '[' && end[-1] == ']')
        start++, end--;
    char *rest;
    long p = strtol(colon + 1, &rest, 10);
    if (!colon[1] || *rest || p < 0 || p > 65535 || (size_t)(end - start) >= addrlen)
        return -1;
    memcpy(addr, start, (size_t)(end - start));
    addr[end - start] = '\0';
    *port = (uint16_t)p;
    return sr_http_addr_ok(addr) ? 0 : -1;
}

sr_http_reply_t sr_http_error(unsigned status, const char *code, const char *message)
{
    json_t *root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!text)
        sr_panic("http_json", "err=\"cannot build the error reply\"");
    json_decref(root);
    return (sr_http_reply_t){status, SR_HTTP_JSON, text};
}

/* s_send - queue the reply; MHD takes the body. allow is the method a 405 names. */
static enum MHD_Result s_send(struct MHD_Connection *conn, sr_http_reply_t *r, const char *allow)
{
    size_t len = r->body ? strlen(r->body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, r->body ? r->body : "", r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(r->body);
        return MHD_NO;
    }
    enum MHD_Result rc = MHD_YES;
    if (r->content_type)
        rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (rc == MHD_YES && r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
        rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (rc == MHD_YES)
        rc = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static const char *s_route_method(const sr_http_route_t *route)
{
    return route->method ? route->method : MHD_HTTP_METHOD_GET;
}

/* s_route - the route for path and method; *path_known tells whether the path has any */
static const sr_http_route_t *s_route(const sr_http_server_t *self, const char *path,
                                      const char *method, const sr_http_route_t **path_known)
{
    *path_known = NULL;
    for (size_t i = 0; i < self->nroutes; i++) {
        const sr_http_route_t *r = &self->routes[i];
        if (!r->path || strcmp(path, r->path) != 0)
            continue;
        if (strcmp(method, s_route_method(r)) == 0)
            return r;
        *path_known = r;
    }
    return NULL;
}

/* s_body - take a piece of a POST body; 0 ok, -1 when it passes the route's limit */
static int s_body(body_t *body, const char *data, size_t n, size_t max)
{
    if (body->len + n > max)
        return -1;
    if (body->len + n + 1 > body->cap) {
        body->cap = (body->len + n + 1) * 2 < max + 1 ? (body->len + n + 1) * 2 : max + 1;
        body->data = sr_realloc(body->data, body->cap);
    }
    memcpy(body->data + body->len, data, n);
    body->len += n;
    body->data[body->len] = '\0';
    return 0;
}

/* s_request - MHD's access handler. A GET waits for the whole request so the
 * connection can be kept alive, and its body is dropped. A POST to a POST route
 * is read up to the route's max_body (413 beyond, checked against
 * Content-Length first) and handed to the handler once complete. Anything else
 * is answered at the first call, before its body is read, so a client cannot
 * make the server's thread take in an upload it does not want. */
static enum MHD_Result s_request(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    (void)version;
    sr_http_server_t *self = cls;
    const sr_http_route_t *other = NULL;
    const sr_http_route_t *route = s_route(self, url, method, &other);
    int is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int reads_body = route && !is_get;
    sr_http_request_t req = {conn, url, method, 0, NULL, 0};
    if (reads_body) {
        body_t *body = *con_cls;
        if (!body) {
            const char *length =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (length && strtoull(length, NULL, 10) > route->max_body) {
                sr_http_reply_t r = sr_http_error(MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
                                                  "request body too large");
                return s_send(conn, &r, NULL);
            }
            *con_cls = sr_calloc(1, sizeof(body_t));
            return MHD_YES;
        }
        if (*upload_data_size) {
            int ok = s_body(body, upload_data, *upload_data_size, route->max_body) == 0;
            *upload_data_size = 0;
            if (ok)
                return MHD_YES;
            body->len = SIZE_MAX; /* remembered: answer 413 when the upload ends */
            return MHD_YES;
        }
        if (body->len == SIZE_MAX) {
            sr_http_reply_t r =
                sr_http_error(MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "request body too large");
            return s_send(conn, &r, NULL);
        }
        req.body = body->data ? body->data : "";
        req.body_len = body->len;
    } else {
        if (is_get && !*con_cls) {
            *con_cls = cls;
            return MHD_YES;
        }
        if (is_get && *upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
    }
    if (!route)
        req.refused = other ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
    const char *allow = other ? s_route_method(other) : MHD_HTTP_METHOD_GET;
    sr_http_reply_t r;
    if (!req.refused)
        r = route->handler(self->arg, &req);
    else if (self->fallback)
        r = self->fallback->handler(self->arg, &req);
    else if (req.refused == MHD_HTTP_NOT_FOUND)
        r = sr_http_error(MHD_HTTP_NOT_FOUND, "not_found", "no such path");
    else {
        char msg[64];
        snprintf(msg, sizeof msg, "only %s is allowed", allow);
        r = sr_http_error(MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg);
    }
    return s_send(conn, &r, allow);
}

/* s_completed - free a POST's body when its request ends, answered or not */
static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    if (*con_cls && *con_cls != cls) {
        body_t *body = *con_cls;
        free(body->data);
        free(body);
    }
    *con_cls = NULL;
}

/* s_mhd_log - MHD's complaints: the first one while starting is kept for err,
 * later ones logged */
static void s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    sr_http_server_t *self = cls;
    char text[256];
    vsnprintf(text, sizeof text, fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    char listen[sizeof self->listen];
    pthread_mutex_lock(&self->lock);
    int started = self->started;
    if (!started && !self->start_err[0])
        snprintf(self->start_err, sizeof self->start_err, "%s", text);
    memcpy(listen, self->listen, sizeof listen);
    pthread_mutex_unlock(&self->lock);
    if (started)
        sr_warn("http_error", "listen=%s err=\"%s\"", listen, text);
}

static void s_free(sr_http_server_t *self)
{
    pthread_mutex_destroy(&self->lock);
    free(self);
}

sr_http_server_t *sr_http_server_new(const char *addr, uint16_t port, const sr_http_route_t *routes,
                                     size_t nroutes, void *arg, char *err, size_t errlen)
{
    if (!addr)
        addr = "127.0.0.1";
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (sr_http_sockaddr(addr, port, &ss, &flags) < 0) {
        snprintf(err, errlen, "not an IPv4 or IPv6 address");
        return NULL;
    }
    sr_http_server_t *self = sr_calloc(1, sizeof *self);
    int rc = pthread_mutex_init(&self->lock, NULL);
    if (rc != 0)
        sr_panic("http_mutex", "err=\"%s\"", strerror(rc));
    self->routes = routes;
    self->nroutes = nroutes;
    self->arg = arg;
    for (size_t i = 0; i < nroutes; i++) {
        if (!routes[i].path)
            self->fallback = &routes[i];
    }
    snprintf(self->listen, sizeof self->listen, "%s:%u", addr, port);
    /* the logger goes first, or MHD uses its own for what the options before it
     * say */
    self->daemon =
        MHD_start_daemon(flags, port, NULL, NULL, s_request, self, MHD_OPTION_EXTERNAL_LOGGER,
                         s_mhd_log, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT_S,
                         MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_END);
    pthread_mutex_lock(&self->lock);
    self->started = self->daemon != NULL;
    if (self->daemon) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT);
        self->port = info && info->port ? info->port : port;
        snprintf(self->listen, sizeof self->listen, "%s:%u", addr, self->port);
    }
    pthread_mutex_unlock(&self->lock);
    if (!self->daemon) {
        snprintf(err, errlen, "%s",
                 self->start_err[0] ? self->start_err : "cannot start the HTTP daemon");
        s_free(self);
        return NULL;
    }
    return self;
}

void sr_http_server_destroy(sr_http_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_http_server_t *self = *self_p;
    MHD_stop_daemon(self->daemon);
    s_free(self);
    *self_p = NULL;
}

uint16_t sr_http_server_port(const sr_http_server_t *self)
{
    return self ? self->port : 0;
}

const char *sr_http_request_path(const sr_http_request_t *req)
{
    return req->path;
}

const char *sr_http_request_method(const sr_http_request_t *req)
{
    return req->method;
}

const char *sr_http_request_query(const sr_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *sr_http_request_header(const sr_http_request_t *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sr_http_request_body(const sr_http_request_t *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

unsigned sr_http_request_refused(const sr_http_request_t *req)
{
    return req->refused;
}

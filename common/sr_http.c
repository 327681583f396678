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
};

/* s_sockaddr - addr:port as an IPv4 or IPv6 socket address; 0 ok, -1 when it is
 * neither */
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

int sr_http_addr_ok(const char *addr)
{
    struct sockaddr_storage ss;
    unsigned flags = 0;
    return addr && s_sockaddr(addr, 0, &ss, &flags) == 0;
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

/* s_send - queue the reply; MHD takes the body */
static enum MHD_Result s_send(struct MHD_Connection *conn, sr_http_reply_t *r)
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
        rc = MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
    if (rc == MHD_YES)
        rc = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* s_request - MHD's access handler. A GET waits for the whole request so the
 * connection can be kept alive; anything else is answered at the first call,
 * before its body is read, so a client cannot make the server's thread take in
 * an upload. */
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
    sr_http_server_t *self = cls;
    const sr_http_route_t *route = NULL;
    for (size_t i = 0; i < self->nroutes && !route; i++) {
        if (self->routes[i].path && strcmp(url, self->routes[i].path) == 0)
            route = &self->routes[i];
    }
    sr_http_request_t req = {conn, url, method, 0};
    if (!route)
        req.refused = MHD_HTTP_NOT_FOUND;
    else if (!is_get)
        req.refused = MHD_HTTP_METHOD_NOT_ALLOWED;
    sr_http_reply_t r;
    if (!req.refused)
        r = route->handler(self->arg, &req);
    else if (self->fallback)
        r = self->fallback->handler(self->arg, &req);
    else if (req.refused == MHD_HTTP_NOT_FOUND)
        r = sr_http_error(MHD_HTTP_NOT_FOUND, "not_found", "no such path");
    else
        r = sr_http_error(MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "only GET is allowed");
    return s_send(conn, &r);
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
    if (s_sockaddr(addr, port, &ss, &flags) < 0) {
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
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_request, self, MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
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

unsigned sr_http_request_refused(const sr_http_request_t *req)
{
    return req->refused;
}

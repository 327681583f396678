/* sr_http - a small HTTP server on libmicrohttpd for the admin endpoint, the
 * simulator, webhooks.
 *
 * MHD serves from its own thread; a handler runs there, so whatever it reads
 * must be safe to read from that thread. Routes are the caller's static table,
 * matched by exact path and method (GET unless the route names another). A GET
 * is answered once the whole request is in (a body is dropped, keep-alive
 * works); a request to a POST route once its body is in, up to the route's
 * max_body (413 "too_large" beyond). Any other request is answered at once,
 * before its body is read, with 405 and "Allow: <the route's method>" on a
 * known path, 404 on an unknown one. Those two refusals get the standard JSON error envelope
 * (sr_http_error()) unless the table has a fallback route (path NULL), which
 * then answers them instead.
 */
#ifndef SR_HTTP_H
#define SR_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define SR_HTTP_JSON "application/json"

typedef struct sr_http_server_t sr_http_server_t;
typedef struct sr_http_request_t sr_http_request_t;

typedef struct {
    unsigned status;
    const char *content_type; /* static text */
    char *body;               /* malloc'd, the server frees it; NULL sends an empty body */
} sr_http_reply_t;

typedef sr_http_reply_t (*sr_http_handler_fn)(void *arg, const sr_http_request_t *req);

typedef struct {
    const char *path; /* exact; NULL makes this the fallback for 404 and 405 */
    sr_http_handler_fn handler;
    const char *method; /* NULL = GET; "POST" reads the body */
    size_t max_body;    /* bytes of a POST body at most */
} sr_http_route_t;

/* sr_http_server_new - listen on addr:port (an IPv4 or IPv6 literal, NULL for
 * 127.0.0.1; port 0 picks a free one) and serve routes with arg; NULL with the
 * reason in err when it cannot. routes must outlive the server. */
sr_http_server_t *sr_http_server_new(const char *addr, uint16_t port, const sr_http_route_t *routes,
                                     size_t nroutes, void *arg, char *err, size_t errlen);
/* sr_http_server_destroy - stop serving (waits for a running handler);
 * idempotent */
void sr_http_server_destroy(sr_http_server_t **self_p);
/* sr_http_server_port - the port it listens on; 0 for NULL */
uint16_t sr_http_server_port(const sr_http_server_t *self);

/* sr_http_request_path / _method - as the client sent them (path without the
 * query) */
const char *sr_http_request_path(const sr_http_request_t *req);
const char *sr_http_request_method(const sr_http_request_t *req);
/* sr_http_request_query - a query argument, decoded; NULL when absent */
const char *sr_http_request_query(const sr_http_request_t *req, const char *name);
/* sr_http_request_header - a request header (name case-insensitive); NULL when
 * absent */
const char *sr_http_request_header(const sr_http_request_t *req, const char *name);
/* sr_http_request_body - a POST's body, NUL-terminated (len without the NUL);
 * NULL for a GET */
const char *sr_http_request_body(const sr_http_request_t *req, size_t *len);
/* sr_http_request_refused - in the fallback route: 404 or 405, what the server
 * would answer */
unsigned sr_http_request_refused(const sr_http_request_t *req);

/* sr_http_error - status with {"error":{"code":code,"message":message}} as JSON
 */
sr_http_reply_t sr_http_error(unsigned status, const char *code, const char *message);
/* sr_http_addr_ok - 1 when addr is an IPv4 or IPv6 literal sr_http_server_new()
 * can bind */
int sr_http_addr_ok(const char *addr);
/* sr_http_split_bind - "addr:port" ("[v6addr]:port" for IPv6) into its parts; 0 ok, -1 when
 * it is not that or addr is not an IP literal */
int sr_http_split_bind(const char *bind, char *addr, size_t addrlen, uint16_t *port);
struct sockaddr_storage;
/* sr_http_sockaddr - addr:port as an IPv4 or IPv6 socket address, adding MHD_USE_IPv6 to
 * *flags for IPv6; 0 ok, -1 when addr is neither */
int sr_http_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, unsigned *flags);

#endif

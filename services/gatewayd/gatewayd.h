/* gatewayd - the HTTP/JSON API for regional teams and HQ.
 *
 * sr-gatewayd authenticates every request (bearer tokens, stored as SHA-256), checks the route's
 * action against the permission matrix (common/sr_perm.h), turns the JSON body, the path and the
 * query into the route's request message (common/sr_pbjson.h), and calls the owning service:
 * access.* methods it serves itself from schema access (regions, users, tokens, audit), the
 * others over RPC (metrics.* to sr-ingestd). The principal travels with every call and the owner
 * checks it again. Every successful mutation writes an audit row. GET /api/v1/stream pushes bus
 * events to browsers as Server-Sent Events, filtered by topic and by the caller's regions.
 *
 * Threads: libmicrohttpd serves requests on a pool of SR_GATEWAY_THREADS threads; each has its
 * own PostgreSQL connection, RPC sockets and arena (gatewayd_thread_t), so requests share only
 * the token cache, the rate limiters and the stream hub, each behind its own mutex. The service
 * loop thread runs the bus subscription of the stream hub, the outbox publisher and the cron.
 *
 * Files: main.c (the definition), gatewayd_http.c (the HTTP server: bodies, limits, TLS, access
 * log, metrics), gatewayd_routes.c (the route table and how a request becomes a call),
 * gatewayd_call.c (per-thread resources, local and remote calls, audit rows),
 * gatewayd_auth.c (tokens, password hashes, login and request rate limits), gatewayd_access.c
 * (the access.* methods), gatewayd_stream.c (SSE), gatewayd_commands.c (bootstrap-admin,
 * permissions, routes), migrations/001_access.sql, openapi.yaml.
 */
#ifndef GATEWAYD_H
#define GATEWAYD_H

#include "access.pb-c.h"
#include "rpc.pb-c.h"
#include "sr_arena.h"
#include "sr_db.h"
#include "sr_rpc.h"
#include "sr_service.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *bind;              /* SR_GATEWAY_BIND "addr:port" */
    int64_t threads;         /* SR_GATEWAY_THREADS */
    int64_t max_connections; /* SR_GATEWAY_MAX_CONNECTIONS */
    int64_t conn_timeout_ms; /* SR_GATEWAY_CONN_TIMEOUT */
    int64_t max_body;        /* SR_GATEWAY_MAX_BODY */
    char *tls_cert;          /* SR_GATEWAY_TLS_CERT: PEM file, "" = plain HTTP */
    char *tls_key;           /* SR_GATEWAY_TLS_KEY */
    int64_t session_ttl_ms;  /* SR_GATEWAY_SESSION_TTL */
    int64_t token_cache_ms;  /* SR_GATEWAY_TOKEN_CACHE */
    int64_t rate;            /* SR_GATEWAY_RATE: requests per second per token, 0 = no limit */
    int64_t burst;           /* SR_GATEWAY_BURST */
    int64_t login_failures;  /* SR_GATEWAY_LOGIN_FAILURES: per user name and window */
    int64_t addr_failures;   /* SR_GATEWAY_LOGIN_ADDR_FAILURES: per address and window */
    int64_t login_window_ms; /* SR_GATEWAY_LOGIN_WINDOW */
    int64_t rpc_timeout_ms;  /* SR_GATEWAY_RPC_TIMEOUT */
    char *metrics_rpc;       /* SR_GATEWAY_METRICS_RPC: sr-ingestd's RPC endpoint */
    char *tasks_rpc;         /* SR_GATEWAY_TASKS_RPC: sr-taskd's RPC endpoint */
    int64_t heartbeat_ms;    /* SR_GATEWAY_SSE_HEARTBEAT */
    int64_t stream_queue; /* SR_GATEWAY_SSE_QUEUE: bytes queued per stream before it is dropped */
    int64_t max_streams;  /* SR_GATEWAY_SSE_MAX */
    char *access_log;     /* SR_GATEWAY_ACCESS_LOG: on or off */
} gatewayd_config_t;

extern const sr_config_entry_t gatewayd_config[];
extern const sr_migration_t gatewayd_migrations[];

typedef struct gatewayd_t gatewayd_t;
typedef struct gatewayd_http_t gatewayd_http_t;
typedef struct gatewayd_auth_t gatewayd_auth_t;
typedef struct gatewayd_stream_t gatewayd_stream_t;

/* the service callbacks (gatewayd_http.c holds the daemon's state) */
int gatewayd_check_config(const void *config, char *err, size_t errlen);
int gatewayd_init(sr_service_t *svc);
int gatewayd_drain(sr_service_t *svc);
void gatewayd_fini(sr_service_t *svc);
int gatewayd_command(int argc, char **argv);

/* --- the daemon state, shared by the modules ------------------------------------------------ */

struct gatewayd_t {
    sr_service_t *svc;
    const gatewayd_config_t *cfg;
    const char *db_url;
    void *zctx;
    gatewayd_http_t *http;
    gatewayd_auth_t *auth;
    gatewayd_stream_t *stream;
    sr_metrics_t *metrics;
    sr_counter_t *audit_failures;
};

/* --- gatewayd_call: per-thread resources and the calls -------------------------------------- */

/* the owners of routes: the gateway itself, or a daemon reached over RPC */
typedef enum {
    GW_SVC_ACCESS = 0,
    GW_SVC_METRICS,
    GW_SVC_TASKS,
    GW_SVC_STREAM,
    GW_SERVICES
} gw_service_t;

typedef struct {
    sr_db_t *db;                           /* this thread's connection, NULL until first use */
    sr_rpc_client_t *clients[GW_SERVICES]; /* this thread's RPC sockets */
    sr_arena_t *arena;                     /* reset after each request */
} gatewayd_thread_t;

/* gatewayd_thread - the calling thread's resources (made on first use, freed at fini) */
gatewayd_thread_t *gatewayd_thread(gatewayd_t *gw);
/* gatewayd_thread_db - the calling thread's connection, connected (once) on first use; NULL
 * when the database cannot be reached */
sr_db_t *gatewayd_thread_db(gatewayd_t *gw);
/* gatewayd_threads_free - close every thread's connection and sockets (after the HTTP server
 * has stopped, so no thread uses them) */
void gatewayd_threads_free(void);

/* the context a local (access.*) handler gets as call->state */
typedef struct {
    gatewayd_t *gw;
    sr_db_t *db;
    int64_t token_id;      /* the token the request came with, 0 for none */
    const char *client_ip; /* for logs */
} gw_local_t;

typedef struct {
    Sr__Status status;
    ProtobufCMessage *reply;
    Sr__Error *error;
    Sr__Audit *audit;
} gw_result_t;

/* gatewayd_call - method of service with request for principal, local or over RPC; results
 * in arena */
gw_result_t gatewayd_call(gatewayd_t *gw, gw_service_t service, const char *method,
                          const Sr__Principal *principal, const char *request_id,
                          const ProtobufCMessage *request,
                          const ProtobufCMessageDescriptor *reply_type, int64_t token_id,
                          const char *client_ip, sr_arena_t *arena);
/* gatewayd_service_name - "access", "metrics" (sr-ingestd), for messages */
const char *gatewayd_service_name(gw_service_t service);

typedef struct {
    const Sr__Principal *principal;
    const char *action; /* the route's permission */
    const char *method; /* "PATCH /api/v1/users/7" */
    const char *request_id;
} gw_audit_ctx_t;

/* gatewayd_audit_write - one audit row for a successful mutation; 0 ok, -1 (logged, counted) */
int gatewayd_audit_write(gatewayd_t *gw, const gw_audit_ctx_t *ctx, const Sr__Audit *audit);

/* --- gatewayd_auth: tokens, passwords, rate limits ------------------------------------------ */

#define GW_TOKEN_PREFIX "srt_"
#define GW_TOKEN_CHARS  47 /* "srt_" + 43 characters of base64url of 32 random bytes */

gatewayd_auth_t *gatewayd_auth_new(gatewayd_t *gw);
void gatewayd_auth_destroy(gatewayd_auth_t **self_p);

typedef enum { GW_AUTH_OK = 0, GW_AUTH_MISSING, GW_AUTH_BAD, GW_AUTH_UNAVAILABLE } gw_auth_result_t;

/* gatewayd_auth_check - the principal of an "Authorization: Bearer ..." header value (NULL =
 * none), from the cache or the database; *principal and *token_id valid in arena */
gw_auth_result_t gatewayd_auth_check(gatewayd_auth_t *self, const char *header, sr_arena_t *arena,
                                     Sr__Principal **principal, int64_t *token_id);
/* gatewayd_auth_forget - drop a token (revoked) or every token of a user (changed) from the
 * cache; 0 matches nothing */
void gatewayd_auth_forget(gatewayd_auth_t *self, int64_t token_id, int64_t user_id);
/* gatewayd_auth_rate - 0 when the user (all their tokens together) may make one more request
 * now, else the seconds until they may (for Retry-After) */
int gatewayd_auth_rate(gatewayd_auth_t *self, int64_t user_id);
/* gatewayd_auth_login_blocked - seconds until a login for user from addr may be tried again,
 * 0 when it may now */
int gatewayd_auth_login_blocked(gatewayd_auth_t *self, const char *user, const char *addr);
/* gatewayd_auth_login_failed - count a failed login of user from addr */
void gatewayd_auth_login_failed(gatewayd_auth_t *self, const char *user, const char *addr);
/* gatewayd_auth_login_ok - a successful login clears the user's failures */
void gatewayd_auth_login_ok(gatewayd_auth_t *self, const char *user);

/* gatewayd_auth_prepare - prepare the token statements on a thread's connection; 0 ok */
int gatewayd_auth_prepare(sr_db_t *db);

/* gatewayd_token_new - a fresh bearer token (GW_TOKEN_CHARS + 1 bytes) and its SHA-256 */
void gatewayd_token_new(char token[GW_TOKEN_CHARS + 1], uint8_t hash[32]);
/* gatewayd_token_hash - SHA-256 of a token's text */
void gatewayd_token_hash(const char *token, uint8_t hash[32]);
/* gatewayd_password_hash - argon2id string of password (caller frees); NULL when out of memory */
char *gatewayd_password_hash(const char *password);
/* gatewayd_password_ok - 1 when password matches the stored hash (NULL: checks a dummy, so an
 * unknown user takes as long as a known one) */
int gatewayd_password_ok(const char *hash, const char *password);

/* --- gatewayd_access: the access.* methods -------------------------------------------------- */

extern const sr_rpc_method_t gatewayd_access_methods[];
extern const size_t gatewayd_access_method_count;

/* gatewayd_principal_load - the principal of user_id (roles, region codes) from db; NULL when
 * the user does not exist or is disabled; in arena */
Sr__Principal *gatewayd_principal_load(sr_db_t *db, int64_t user_id, sr_arena_t *arena);
/* gatewayd_user_create - the one place users are inserted (API and bootstrap-admin); 0 ok, else
 * the status with *error filled in arena */
Sr__Status gatewayd_user_create(sr_db_t *db, const char *instance, const Sr__UserCreate *in,
                                sr_arena_t *arena, Sr__User **out, Sr__Error **error);

/* --- gatewayd_routes: the route table -------------------------------------------------------- */

enum {
    GW_MUTATION = 1 << 0, /* audited */
    GW_MASK = 1 << 1,     /* the JSON body's keys become the request's update_mask */
    GW_CREATED = 1 << 2,  /* answered 201 */
    GW_PUBLIC = 1 << 3,   /* no token needed (login) */
    GW_LOGIN = 1 << 4,    /* login: rate-limited by user and address */
    GW_STREAM = 1 << 5,   /* Server-Sent Events, not a call */
};

typedef struct {
    const char *method;  /* "GET" */
    const char *pattern; /* "/api/v1/users/{id}": {name} segments become fields of the request */
    gw_service_t service;
    const char *rpc; /* the method called, e.g. "access.user.get" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    const char *permission; /* the action (sr_perm.h); NULL only with GW_PUBLIC */
    unsigned flags;
    const char *summary; /* one line, as in openapi.yaml */
    /* a read the owning service also publishes as a view (gatewayd_view.c): SQL with $1 the
     * pattern's first {field}, $2 "t" for an HQ caller, $3 the caller's regions (text[]),
     * answering one row named as the reply's fields when the caller may see it; for a page
     * reply also $4 the id its cursor ends at (0 for the first page) and $5 the rows to read
     * (limit + 1), answering the items in id order. No row (or no view yet) goes to the owner
     * over RPC */
    const char *view;
} gw_route_t;

extern const gw_route_t gatewayd_routes[];
extern const size_t gatewayd_route_count;

/* --- gatewayd_view: reads from the views owners publish ------------------------------------- */

/* gatewayd_view_read - route's view for request as principal: 1 with *reply set, 0 when the
 * request filters on more than the view takes, it has no row for the caller or cannot be read
 * (the caller then asks the owner) */
int gatewayd_view_read(gatewayd_t *gw, const gw_route_t *route, const ProtobufCMessage *request,
                       const Sr__Principal *principal, sr_arena_t *arena, ProtobufCMessage **reply);

#define GW_MAX_PARAMS 4

typedef struct {
    const char *name;
    char value[256];
} gw_param_t;

/* gatewayd_route_match - the route for method and path, with its path parameters; NULL when no
 * pattern matches; *allow is set to the methods of a matching path when the method is wrong */
const gw_route_t *gatewayd_route_match(const char *method, const char *path,
                                       gw_param_t params[GW_MAX_PARAMS], size_t *nparams,
                                       char *allow, size_t allow_len);

/* the parts of an HTTP request a call is built from */
typedef struct {
    const char *method, *path;
    const char *body; /* NULL or "" for none */
    size_t body_len;
    const gw_param_t *params;
    size_t nparams;
    /* the query: names and values, in order */
    const char *const *query_names;
    const char *const *query_values;
    size_t nquery;
    const char *request_id;
    const char *client_ip;
    const char *authorization; /* the header value, NULL when absent */
} gw_http_in_t;

typedef struct {
    unsigned status;
    char *body;           /* JSON, malloc'd */
    int retry_after;      /* seconds, 0 = no header */
    char *principal_name; /* for the access log; malloc'd or NULL */
} gw_http_out_t;

/* gatewayd_route_authorize - the token's principal, its rate and the route's permission: a
 * reply with status 0 when the request may go on, else the error to answer */
gw_http_out_t gatewayd_route_authorize(gatewayd_t *gw, const gw_route_t *route,
                                       const gw_http_in_t *in, sr_arena_t *arena,
                                       Sr__Principal **principal, int64_t *token_id);
/* gatewayd_route_serve - answer one matched request (not a stream) */
gw_http_out_t gatewayd_route_serve(gatewayd_t *gw, const gw_route_t *route, const gw_http_in_t *in);
/* gatewayd_error_body - {"error":{"code","message","field"}} (field left out when NULL or "") */
char *gatewayd_error_body(const char *code, const char *message, const char *field);
/* gatewayd_error - a reply with that body */
gw_http_out_t gatewayd_error(unsigned status, const char *code, const char *field, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* --- gatewayd_http: the server --------------------------------------------------------------- */

gatewayd_http_t *gatewayd_http_new(gatewayd_t *gw);
/* gatewayd_http_destroy - stop serving (streams are ended first) */
void gatewayd_http_destroy(gatewayd_http_t **self_p);
uint16_t gatewayd_http_port(const gatewayd_http_t *self);

/* --- gatewayd_stream: Server-Sent Events ------------------------------------------------------ */

struct MHD_Connection;
struct MHD_Response;

gatewayd_stream_t *gatewayd_stream_new(gatewayd_t *gw);
void gatewayd_stream_destroy(gatewayd_stream_t **self_p);
/* gatewayd_stream_open - a new stream for principal (with token_id) on connection: topics is the
 * comma-separated prefix list, last_event_id the Last-Event-ID header (NULL = none). The
 * response to queue, or NULL with *out set to the error to answer instead. */
struct MHD_Response *gatewayd_stream_open(gatewayd_stream_t *self, struct MHD_Connection *conn,
                                          const Sr__Principal *principal, int64_t token_id,
                                          const char *topics, const char *last_event_id,
                                          gw_http_out_t *out);
/* gatewayd_stream_forget - end the streams of a token (revoked) or of a user (changed); 0
 * matches nothing. Other instances notice within SR_GATEWAY_SSE_HEARTBEAT. */
void gatewayd_stream_forget(gatewayd_stream_t *self, int64_t token_id, int64_t user_id);
/* gatewayd_stream_end_all - end every stream (before the HTTP server stops) */
void gatewayd_stream_end_all(gatewayd_stream_t *self);

#endif

/* sr_rpc - request/reply from the gateway (or a tool) to the daemon that owns a domain.
 *
 * Server: a ROUTER socket and one static dispatch table per service
 * {method, handler, request type, reply type, permission}. A request whose method is unknown,
 * whose bytes or body do not decode, or whose principal lacks the permission gets an error
 * Reply, never a crash; a request past its deadline is dropped (the caller has given up).
 * Handlers allocate the reply and anything in it from call->arena, reset after the reply.
 *
 * Workers: with opts.workers > 0 the methods flagged SR_RPC_READ are answered by that many
 * threads, each with a state of its own (opts.worker_init: a database connection, say), so that
 * reads run in parallel; the loop thread still receives every request and sends every reply
 * (forwarding reads over inproc sockets), and answers the other methods itself, in order. A
 * read handler must touch nothing but its call (state, arena) and thread-safe things.
 *
 * Client: a DEALER socket with deadlines. sr_rpc_call() waits at most timeout_ms; a dead or
 * stopped service yields STATUS_DEADLINE, never a hang, and a late reply to an earlier call is
 * recognised by its id and discarded. With several instances connected, calls are spread
 * round-robin by the DEALER.
 */
#ifndef SR_RPC_H
#define SR_RPC_H

#include "rpc.pb-c.h"
#include "sr_arena.h"
#include "sr_loop.h"
#include "sr_metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sr_rpc_server_t sr_rpc_server_t;
typedef struct sr_rpc_client_t sr_rpc_client_t;

typedef struct {
    const char *method;
    const Sr__Principal *principal; /* never NULL: an empty principal when none was sent */
    const char *trace_id;
    sr_arena_t *arena; /* for the reply and everything it points to */
    void *state;       /* the server's state pointer */
    Sr__Error *error;  /* set by sr_rpc_fail() */
    Sr__Audit *audit;  /* set by sr_rpc_audit() on a successful mutation */
} sr_rpc_call_t;

/* a handler returns SR__STATUS__STATUS_OK with *reply set, or the sr_rpc_fail() result */
typedef Sr__Status(sr_rpc_handler_fn)(sr_rpc_call_t *call, const ProtobufCMessage *request,
                                      ProtobufCMessage **reply);

/* flags of a method: SR_RPC_READ changes nothing and needs no loop-thread resource, so it may
 * run on a worker */
#define SR_RPC_READ 1u

typedef struct {
    const char *method; /* "tasks.project.get" */
    sr_rpc_handler_fn *handler;
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *reply;
    const char *permission; /* NULL = anyone may call */
    unsigned flags;         /* SR_RPC_READ */
} sr_rpc_method_t;

/* authorize: 1 when principal holds permission; consulted for methods with a permission.
 * A server without one refuses every method that names a permission. */
typedef int(sr_rpc_authorize_fn)(const Sr__Principal *principal, const char *permission,
                                 void *state);

/* a worker's state, made on the worker's thread (index 0..workers-1); NULL ends that worker */
typedef void *(sr_rpc_worker_init_fn)(void *state, int index);
typedef void(sr_rpc_worker_fini_fn)(void *worker_state);

typedef struct {
    int64_t max_msg_size;  /* 0 = SR_BUS_MAX_MSG_DEFAULT */
    int hwm;               /* 0 = SR_BUS_HWM_DEFAULT */
    sr_metrics_t *metrics; /* requests by method and status, latency; may be NULL */
    int workers;           /* threads for SR_RPC_READ methods; 0 = every method on the loop */
    sr_rpc_worker_init_fn *worker_init; /* NULL: workers get the server's state */
    sr_rpc_worker_fini_fn *worker_fini;
} sr_rpc_opts_t;

/* sr_rpc_server_new - bind a ROUTER at endpoint; NULL when it cannot bind */
sr_rpc_server_t *sr_rpc_server_new(void *zctx, const char *endpoint, const sr_rpc_method_t *table,
                                   size_t count, void *state, sr_rpc_authorize_fn *authorize,
                                   const sr_rpc_opts_t *opts);
/* sr_rpc_server_attach - serve from loop: its sockets join the loop (and leave it at destroy);
 * 0 ok */
int sr_rpc_server_attach(sr_rpc_server_t *self, sr_loop_t *loop)
    __attribute__((warn_unused_result));
/* sr_rpc_server_destroy - stop the workers (each finishes its request), detach, close */
void sr_rpc_server_destroy(sr_rpc_server_t **self_p);
/* sr_rpc_server_socket, sr_rpc_server_handle - the ROUTER and the function that answers every
 * request waiting on it, for a caller that polls the socket itself (without workers) */
void *sr_rpc_server_socket(sr_rpc_server_t *self);
void sr_rpc_server_handle(void *self);

/* sr_rpc_audit - record what a mutation changed, for the caller's audit log: the entity, its id
 * and region, and the record before and after as JSON (NULL for a creation or a deletion) */
void sr_rpc_audit(sr_rpc_call_t *call, const char *entity, const char *entity_id,
                  const char *region, const ProtobufCMessage *before,
                  const ProtobufCMessage *after);

/* sr_rpc_dispatch - run a method of table in this process, as a server would for a request from
 * a peer (permission check, handler, error), without packing anything: for a service that
 * answers some of its own routes itself (the gateway's access.* methods). Results as in
 * sr_rpc_call, in arena; *audit set when the handler recorded one. */
Sr__Status sr_rpc_dispatch(const sr_rpc_method_t *table, size_t count,
                           sr_rpc_authorize_fn *authorize, void *state, const char *method,
                           const Sr__Principal *principal, const char *trace_id,
                           const ProtobufCMessage *request, sr_arena_t *arena,
                           ProtobufCMessage **reply, Sr__Error **error, Sr__Audit **audit);

/* sr_rpc_fail - fill call->error and return status; field may be NULL */
Sr__Status sr_rpc_fail(sr_rpc_call_t *call, Sr__Status status, const char *code, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

sr_rpc_client_t *sr_rpc_client_new(void *zctx, const char *endpoint, const sr_rpc_opts_t *opts);
void sr_rpc_client_destroy(sr_rpc_client_t **self_p);

/* sr_rpc_call - one call; on OK *reply is the decoded body, else *error says why (both in
 * arena). principal and trace_id may be NULL. */
Sr__Status sr_rpc_call(sr_rpc_client_t *self, const char *method, const Sr__Principal *principal,
                       const char *trace_id, const ProtobufCMessage *request,
                       const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                       sr_arena_t *arena, ProtobufCMessage **reply, Sr__Error **error);
/* sr_rpc_call_audited - sr_rpc_call that also hands back the reply's audit record (NULL when
 * the server sent none), in arena */
Sr__Status sr_rpc_call_audited(sr_rpc_client_t *self, const char *method,
                               const Sr__Principal *principal, const char *trace_id,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                               sr_arena_t *arena, ProtobufCMessage **reply, Sr__Error **error,
                               Sr__Audit **audit);

#endif

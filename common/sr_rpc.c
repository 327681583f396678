/* sr_rpc - ROUTER server with a dispatch table, DEALER client with deadlines. See sr_rpc.h.
 *
 * Owns both sockets, the server's per-request arena and its metrics. Wire format is
 * proto/rpc.proto: the client sends one frame (a packed Request), the ROUTER sees
 * [identity][Request] and answers [identity][Reply]. Socket limits and the bus defaults come from
 * sr_bus.h; services build their tables in services/<name>/<name>_rpc.c.
 *
 * Workers: the loop thread passes a read request on as [identity][Request][meta] through an
 * inproc DEALER, which deals them round-robin to the workers' DEALERs; a worker answers
 * [identity][Reply][meta] the same way back, and the loop thread counts it (metrics and
 * complaints stay on one thread) and sends the reply. When no worker takes a request (none
 * started, or every queue is full) the loop thread answers it itself.
 */
#include "sr_rpc.h"

#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_clock.h"
#include "sr_log.h"
#include "sr_pbjson.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RPC_BATCH_MAX   64 /* requests answered per wake-up of the loop */
#define ARENA_CHUNK     (64 * 1024)
#define STATUS_COUNT    (SR__STATUS__STATUS_DEADLINE + 1)
#define METHOD_ECHO_MAX 128 /* bytes of an unknown method name echoed in the error */

typedef enum {
    DROP_FRAMES = 0, /* not [identity][request] */
    DROP_LATE,       /* past its deadline: the caller has given up */
    DROP_UNSENT,     /* the reply could not be sent: caller gone, or its queue full */
    DROP_COUNT,
} drop_reason_t;

static const char *const s_drop_names[DROP_COUNT] = {"frames", "late", "unsent"};

/* what travels with a request to a worker and back */
typedef struct {
    int64_t start_us; /* when the loop thread received it */
    uint32_t row;     /* the method's table row (count: unknown) */
    int32_t status;   /* the reply's status; -1 when the worker dropped it */
} worker_meta_t;

typedef struct {
    sr_rpc_server_t *server;
    int index;
    pthread_t thread;
    int started;
} rpc_worker_t;

struct sr_rpc_server_t {
    void *socket;
    void *zctx;
    void *backend; /* inproc DEALER to the workers, NULL without */
    char *backend_ep;
    rpc_worker_t *workers;
    int nworkers;
    atomic_int stop;
    sr_rpc_worker_init_fn *worker_init;
    sr_rpc_worker_fini_fn *worker_fini;
    sr_loop_t *loop;
    char *endpoint;
    const sr_rpc_method_t *table;
    size_t count;
    void *state;
    sr_rpc_authorize_fn *authorize;
    int64_t max_msg_size;
    sr_arena_t *arena;
    sr_metrics_t *metrics;
    /* rows 0..count-1 follow the table, row count is "unknown"; NULL without metrics */
    sr_counter_t **requests; /* [(count + 1) * STATUS_COUNT], registered on first use */
    sr_histogram_t **latency;
    sr_counter_t *dropped[DROP_COUNT];
    sr_complaint_t complaint;
};

struct sr_rpc_client_t {
    void *socket;
    char *endpoint;
    uint64_t last_id;
    int64_t max_msg_size;
};

static const Sr__Principal s_no_principal = SR__PRINCIPAL__INIT;

static int s_status_valid(int status)
{
    return status >= 0 && status < STATUS_COUNT;
}

/* s_status_label - "bad_request" for STATUS_BAD_REQUEST: metrics labels and default codes */
static const char *s_status_label(Sr__Status status, char *buf, size_t size)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&sr__status__descriptor, (int)status);
    const char *name = v ? v->name : "STATUS_UNKNOWN";
    if (strncmp(name, "STATUS_", 7) == 0)
        name += 7;
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++)
        buf[i] = (char)tolower((unsigned char)name[i]);
    buf[i] = '\0';
    return buf;
}

static Sr__Error *s_error_vnew(sr_arena_t *arena, const char *code, const char *field,
                               const char *fmt, va_list ap)
{
    Sr__Error *e = sr_arena_alloc(arena, sizeof *e);
    sr__error__init(e);
    e->code = sr_arena_strdup(arena, code ? code : "");
    e->field = sr_arena_strdup(arena, field ? field : "");
    va_list copy;
    va_copy(copy, ap);
    int len = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    e->message = sr_arena_alloc(arena, len > 0 ? (size_t)len + 1 : 1);
    if (len > 0)
        vsnprintf(e->message, (size_t)len + 1, fmt, ap);
    return e;
}

static Sr__Error *s_error_new(sr_arena_t *arena, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static Sr__Error *s_error_new(sr_arena_t *arena, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    Sr__Error *e = s_error_vnew(arena, code, NULL, fmt, ap);
    va_end(ap);
    return e;
}

Sr__Status sr_rpc_fail(sr_rpc_call_t *call, Sr__Status status, const char *code, const char *field,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    call->error = s_error_vnew(call->arena, code, field, fmt, ap);
    va_end(ap);
    return status;
}

/* s_pack - msg packed into the arena */
static void s_pack(sr_arena_t *arena, const ProtobufCMessage *msg, ProtobufCBinaryData *out)
{
    out->len = protobuf_c_message_get_packed_size(msg);
    out->data = sr_arena_alloc(arena, out->len);
    if (protobuf_c_message_pack(msg, out->data) != out->len)
        sr_panic("rpc_pack_failed", "type=%s", msg->descriptor->name);
}

/* --- server ------------------------------------------------------------------------------ */

static void s_server_drop(sr_rpc_server_t *self, drop_reason_t reason, const char *detail)
{
    if (self->dropped[reason])
        sr_counter_inc(self->dropped[reason]);
    sr_complain(&self->complaint, "reason=%s endpoint=%s %s", s_drop_names[reason], self->endpoint,
                detail);
}

static void s_server_metrics_init(sr_rpc_server_t *self)
{
    if (!self->metrics)
        return;
    self->requests = sr_calloc((self->count + 1) * STATUS_COUNT, sizeof *self->requests);
    self->latency = sr_calloc(self->count + 1, sizeof *self->latency);
    for (size_t i = 0; i <= self->count; i++) {
        char *labels =
            sr_asprintf("method=\"%s\"", i < self->count ? self->table[i].method : "unknown");
        self->latency[i] = sr_metrics_histogram(
            self->metrics, "sr_rpc_request_seconds", labels, "time to answer an RPC request",
            sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
        free(labels);
    }
    for (int i = 0; i < DROP_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_drop_names[i]);
        self->dropped[i] = sr_metrics_counter(self->metrics, "sr_rpc_dropped_total", labels,
                                              "RPC requests dropped without a reply, by reason");
    }
}

/* s_server_observe - count one answered request under its method row and status */
static void s_server_observe(sr_rpc_server_t *self, size_t row, Sr__Status status, int64_t start_us)
{
    if (!self->metrics)
        return;
    sr_counter_t **slot = &self->requests[row * STATUS_COUNT + (size_t)status];
    if (!*slot) {
        char label[32];
        char *labels = sr_asprintf("method=\"%s\",status=\"%s\"",
                                   row < self->count ? self->table[row].method : "unknown",
                                   s_status_label(status, label, sizeof label));
        *slot = sr_metrics_counter(self->metrics, "sr_rpc_requests_total", labels,
                                   "RPC requests answered, by method and status");
        free(labels);
    }
    sr_counter_inc(*slot);
    sr_histogram_observe(self->latency[row], (double)(sr_clock_mono_us() - start_us) / 1e6);
}

static int s_workers_start(sr_rpc_server_t *self, int n);

sr_rpc_server_t *sr_rpc_server_new(void *zctx, const char *endpoint, const sr_rpc_method_t *table,
                                   size_t count, void *state, sr_rpc_authorize_fn *authorize,
                                   const sr_rpc_opts_t *opts)
{
    void *socket = zmq_socket(zctx, ZMQ_ROUTER);
    if (!socket) {
        sr_error("rpc_socket_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        return NULL;
    }
    int64_t max_msg = opts && opts->max_msg_size > 0 ? opts->max_msg_size : SR_BUS_MAX_MSG_DEFAULT;
    /* mandatory routing makes a reply to a vanished caller fail loudly instead of silently */
    int mandatory = 1;
    if (sr_bus_limit_socket(socket, opts ? opts->hwm : 0, max_msg) != 0 ||
        zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory) != 0) {
        sr_error("rpc_socket_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    if (zmq_bind(socket, endpoint) != 0) {
        sr_error("rpc_bind_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    sr_rpc_server_t *self = sr_calloc(1, sizeof *self);
    self->socket = socket;
    self->endpoint = sr_strdup(endpoint);
    self->table = table;
    self->count = count;
    self->state = state;
    self->authorize = authorize;
    self->max_msg_size = max_msg;
    self->arena = sr_arena_new(ARENA_CHUNK);
    self->metrics = opts ? opts->metrics : NULL;
    self->complaint = (sr_complaint_t)SR_COMPLAINT_INIT("rpc.server");
    self->zctx = zctx;
    s_server_metrics_init(self);
    if (opts && opts->workers > 0) {
        self->worker_init = opts->worker_init;
        self->worker_fini = opts->worker_fini;
        if (s_workers_start(self, opts->workers) < 0) {
            sr_rpc_server_destroy(&self);
            return NULL;
        }
    }
    return self;
}

void sr_rpc_server_destroy(sr_rpc_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_rpc_server_t *self = *self_p;
    if (self->loop) {
        sr_loop_remove_socket(self->loop, self->socket);
        if (self->backend)
            sr_loop_remove_socket(self->loop, self->backend);
    }
    atomic_store(&self->stop, 1);
    for (int i = 0; i < self->nworkers; i++)
        if (self->workers[i].started)
            pthread_join(self->workers[i].thread, NULL);
    free(self->workers);
    if (self->backend)
        zmq_close(self->backend);
    free(self->backend_ep);
    zmq_close(self->socket);
    sr_arena_destroy(&self->arena);
    free(self->endpoint);
    free(self->requests);
    free(self->latency);
    SR_FREE(*self_p);
}

void *sr_rpc_server_socket(sr_rpc_server_t *self)
{
    return self->socket;
}

static const sr_rpc_method_t *s_find(const sr_rpc_server_t *self, const char *method, size_t *row)
{
    for (size_t i = 0; i < self->count; i++) {
        if (strcmp(self->table[i].method, method) == 0) {
            *row = i;
            return &self->table[i];
        }
    }
    return NULL;
}

/* s_run - the allowed, decoded request through its handler, into reply */
static void s_run(sr_arena_t *arena, void *state, const sr_rpc_method_t *m, const Sr__Request *req,
                  const ProtobufCMessage *body, Sr__Reply *reply)
{
    sr_rpc_call_t call = {
        .method = m->method,
        .principal = req->principal ? req->principal : &s_no_principal,
        .trace_id = req->trace_id ? req->trace_id : "",
        .arena = arena,
        .state = state,
    };
    ProtobufCMessage *out = NULL;
    Sr__Status status = m->handler(&call, body, &out);
    if (!s_status_valid((int)status)) {
        sr_error("rpc_handler_bad_status", "method=%s status=%d", m->method, (int)status);
        call.error = s_error_new(arena, "internal", "%s answered an unknown status", m->method);
        status = SR__STATUS__STATUS_INTERNAL;
    }
    reply->status = status;
    if (status != SR__STATUS__STATUS_OK) {
        char label[32];
        reply->error = call.error ? call.error
                                  : s_error_new(arena, s_status_label(status, label, sizeof label),
                                                "%s failed", m->method);
        return;
    }
    reply->audit = call.audit;
    if (!out)
        return;
    if (out->descriptor != m->reply)
        sr_panic("rpc_handler_bad_reply", "method=%s reply=%s want=%s", m->method,
                 out->descriptor->name, m->reply->name);
    s_pack(arena, out, &reply->body);
}

void sr_rpc_audit(sr_rpc_call_t *call, const char *entity, const char *entity_id,
                  const char *region, const ProtobufCMessage *before, const ProtobufCMessage *after)
{
    Sr__Audit *a = sr_arena_alloc(call->arena, sizeof *a);
    sr__audit__init(a);
    a->entity = sr_arena_strdup(call->arena, entity ? entity : "");
    a->entity_id = sr_arena_strdup(call->arena, entity_id ? entity_id : "");
    a->region = sr_arena_strdup(call->arena, region ? region : "");
    const ProtobufCMessage *msgs[2] = {before, after};
    char **texts[2] = {&a->before, &a->after};
    for (int i = 0; i < 2; i++) {
        char *json = msgs[i] ? sr_pbjson_encode_text(msgs[i]) : NULL;
        *texts[i] = sr_arena_strdup(call->arena, json ? json : "");
        free(json);
    }
    call->audit = a;
}

Sr__Status sr_rpc_dispatch(const sr_rpc_method_t *table, size_t count,
                           sr_rpc_authorize_fn *authorize, void *state, const char *method,
                           const Sr__Principal *principal, const char *trace_id,
                           const ProtobufCMessage *request, sr_arena_t *arena,
                           ProtobufCMessage **reply, Sr__Error **error, Sr__Audit **audit)
{
    *reply = NULL;
    *error = NULL;
    *audit = NULL;
    const sr_rpc_method_t *m = NULL;
    for (size_t i = 0; i < count && !m; i++)
        if (strcmp(table[i].method, method) == 0)
            m = &table[i];
    if (!m) {
        *error =
            s_error_new(arena, "unknown_method", "unknown method %.*s", METHOD_ECHO_MAX, method);
        return SR__STATUS__STATUS_UNKNOWN_METHOD;
    }
    if (!principal)
        principal = &s_no_principal;
    if (m->permission && !(authorize && authorize(principal, m->permission, state) == 1)) {
        *error =
            s_error_new(arena, "forbidden", "%s needs permission %s", m->method, m->permission);
        return SR__STATUS__STATUS_FORBIDDEN;
    }
    if (request && request->descriptor != m->request)
        sr_panic("rpc_dispatch_bad_request", "method=%s request=%s want=%s", m->method,
                 request->descriptor->name, m->request->name);
    sr_rpc_call_t call = {
        .method = m->method,
        .principal = principal,
        .trace_id = trace_id ? trace_id : "",
        .arena = arena,
        .state = state,
    };
    Sr__Status status = m->handler(&call, request, reply);
    if (!s_status_valid((int)status)) {
        sr_error("rpc_handler_bad_status", "method=%s status=%d", m->method, (int)status);
        call.error = s_error_new(arena, "internal", "%s answered an unknown status", m->method);
        status = SR__STATUS__STATUS_INTERNAL;
    }
    if (status != SR__STATUS__STATUS_OK) {
        char label[32];
        *reply = NULL;
        *error = call.error ? call.error
                            : s_error_new(arena, s_status_label(status, label, sizeof label),
                                          "%s failed", m->method);
        return status;
    }
    if (*reply && (*reply)->descriptor != m->reply)
        sr_panic("rpc_handler_bad_reply", "method=%s reply=%s want=%s", m->method,
                 (*reply)->descriptor->name, m->reply->name);
    *audit = call.audit;
    return status;
}

typedef enum { RUN_HERE = 0, RUN_WORKER, RUN_NOWHERE } route_t;

/* s_dispatch - decode, check and run one request into reply, in arena with state; RUN_NOWHERE
 * when it is dropped unanswered (late), RUN_WORKER (and nothing run) when to_worker is set and
 * the method is a read. *row is the method's table row, or self->count while it is not known. */
static route_t s_dispatch(const sr_rpc_server_t *self, sr_arena_t *arena, void *state,
                          const uint8_t *data, size_t len, int to_worker, Sr__Reply *reply,
                          size_t *row)
{
    ProtobufCAllocator *pb = sr_arena_pb_allocator(arena);
    *row = self->count;
    reply->status = SR__STATUS__STATUS_BAD_REQUEST;
    if ((int64_t)len > self->max_msg_size) {
        reply->error = s_error_new(arena, "bad_request", "request of %zu bytes is over %lld", len,
                                   (long long)self->max_msg_size);
        return RUN_HERE;
    }
    Sr__Request *req = sr__request__unpack(pb, len, data);
    if (!req) {
        reply->error = s_error_new(arena, "bad_request", "request does not decode");
        return RUN_HERE;
    }
    reply->id = req->id;
    if (req->deadline_us != 0 && req->deadline_us < sr_clock_now_us())
        return RUN_NOWHERE;
    const sr_rpc_method_t *m = s_find(self, req->method, row);
    if (!m) {
        reply->status = SR__STATUS__STATUS_UNKNOWN_METHOD;
        reply->error = s_error_new(arena, "unknown_method", "unknown method %.*s", METHOD_ECHO_MAX,
                                   req->method);
        return RUN_HERE;
    }
    if (to_worker && (m->flags & SR_RPC_READ))
        return RUN_WORKER;
    const Sr__Principal *principal = req->principal ? req->principal : &s_no_principal;
    if (m->permission &&
        !(self->authorize && self->authorize(principal, m->permission, state) == 1)) {
        reply->status = SR__STATUS__STATUS_FORBIDDEN;
        reply->error =
            s_error_new(arena, "forbidden", "%s needs permission %s", m->method, m->permission);
        return RUN_HERE;
    }
    ProtobufCMessage *body =
        protobuf_c_message_unpack(m->request, pb, req->body.len, req->body.data);
    if (!body) {
        reply->error =
            s_error_new(arena, "bad_body", "body does not decode as %s", m->request->name);
        return RUN_HERE;
    }
    s_run(arena, state, m, req, body, reply);
    return RUN_HERE;
}

/* s_pack_reply - the packed reply, in arena */
static uint8_t *s_pack_reply(sr_arena_t *arena, const Sr__Reply *reply, size_t *len)
{
    *len = sr__reply__get_packed_size(reply);
    uint8_t *buf = sr_arena_alloc(arena, *len ? *len : 1);
    if (sr__reply__pack(reply, buf) != *len)
        sr_panic("rpc_pack_failed", "type=Reply");
    return buf;
}

/* s_send_packed - [identity][reply bytes] back to the caller, without blocking */
static void s_send_packed(sr_rpc_server_t *self, zmq_msg_t *identity, const void *buf, size_t len)
{
    if (zmq_msg_send(identity, self->socket, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) < 0) {
        char detail[128];
        snprintf(detail, sizeof detail, "bytes=%zu err=\"%s\"", len, zmq_strerror(errno));
        s_server_drop(self, DROP_UNSENT, detail);
    }
}

static void s_send_reply(sr_rpc_server_t *self, zmq_msg_t *identity, const Sr__Reply *reply)
{
    size_t len;
    uint8_t *buf = s_pack_reply(self->arena, reply, &len);
    s_send_packed(self, identity, buf, len);
}

/* s_to_worker - hand [identity][request][meta] to a worker; 0 when one took it */
static int s_to_worker(sr_rpc_server_t *self, zmq_msg_t *identity, zmq_msg_t *request,
                       const worker_meta_t *meta)
{
    zmq_msg_t id_copy;
    zmq_msg_init(&id_copy);
    zmq_msg_copy(&id_copy, identity);
    if (zmq_msg_send(&id_copy, self->backend, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id_copy); /* no worker ready: nothing was queued */
        return -1;
    }
    /* the first frame is queued, so the rest goes with it (an atomic multipart message) */
    zmq_msg_send(request, self->backend, ZMQ_SNDMORE);
    zmq_send(self->backend, meta, sizeof *meta, 0);
    return 0;
}

/* s_handle_one - answer one waiting request; 1 when none was waiting, -1 when the socket failed */
static int s_handle_one(sr_rpc_server_t *self)
{
    zmq_msg_t identity, request;
    zmq_msg_init(&identity);
    if (zmq_msg_recv(&identity, self->socket, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close(&identity);
        if (err == EAGAIN || err == EINTR)
            return 1;
        sr_error("rpc_recv_failed", "endpoint=%s err=\"%s\"", self->endpoint, zmq_strerror(err));
        return -1;
    }
    int64_t start_us = sr_clock_mono_us();
    if (!zmq_msg_more(&identity)) {
        zmq_msg_close(&identity);
        s_server_drop(self, DROP_FRAMES, "frames=1");
        return 0;
    }
    zmq_msg_init(&request);
    if (zmq_msg_recv(&request, self->socket, ZMQ_DONTWAIT) < 0) {
        sr_error("rpc_recv_failed", "endpoint=%s frame=request err=\"%s\"", self->endpoint,
                 zmq_strerror(errno));
        zmq_msg_close(&identity);
        zmq_msg_close(&request);
        return -1;
    }
    if (zmq_msg_more(&request)) {
        sr_bus_discard_rest(self->socket);
        s_server_drop(self, DROP_FRAMES, "frames=3+");
    } else {
        Sr__Reply reply = SR__REPLY__INIT;
        size_t row;
        route_t route = s_dispatch(self, self->arena, self->state, zmq_msg_data(&request),
                                   zmq_msg_size(&request), self->backend != NULL, &reply, &row);
        if (route == RUN_WORKER) {
            worker_meta_t meta = {start_us, (uint32_t)row, 0};
            if (s_to_worker(self, &identity, &request, &meta) == 0)
                goto done;
            /* no worker took it: answer here */
            route = s_dispatch(self, self->arena, self->state, zmq_msg_data(&request),
                               zmq_msg_size(&request), 0, &reply, &row);
        }
        if (route == RUN_NOWHERE) {
            s_server_drop(self, DROP_LATE, "");
        } else {
            /* counted first, so a caller holding the reply sees it in the metrics */
            s_server_observe(self, row, reply.status, start_us);
            s_send_reply(self, &identity, &reply);
        }
    }
done:
    zmq_msg_close(&identity);
    zmq_msg_close(&request);
    sr_arena_reset(self->arena);
    return 0;
}

void sr_rpc_server_handle(void *self)
{
    /* a bounded batch, so a stream of requests cannot starve timers and signals; zmq_poll
     * reports the socket readable again while requests wait */
    for (int i = 0; i < RPC_BATCH_MAX && s_handle_one(self) == 0; i++)
        ;
}

/* --- workers --------------------------------------------------------------------------------- */

/* s_recv_three - [identity][payload][meta] from socket; 0 ok, 1 nothing waiting, -1 bad */
static int s_recv_three(void *socket, zmq_msg_t *id, zmq_msg_t *payload, worker_meta_t *meta,
                        int flags)
{
    zmq_msg_init(id);
    zmq_msg_init(payload);
    if (zmq_msg_recv(id, socket, flags) < 0)
        return errno == EAGAIN || errno == EINTR ? 1 : -1;
    if (!zmq_msg_more(id) || zmq_msg_recv(payload, socket, 0) < 0 || !zmq_msg_more(payload) ||
        zmq_recv(socket, meta, sizeof *meta, 0) != (int)sizeof *meta) {
        sr_bus_discard_rest(socket);
        return -1;
    }
    return 0;
}

/* s_replies - the workers' answers, counted and sent on; for sr_loop */
static void s_replies(void *arg)
{
    sr_rpc_server_t *self = arg;
    for (int i = 0; i < RPC_BATCH_MAX; i++) {
        zmq_msg_t id, reply;
        worker_meta_t meta;
        int rc = s_recv_three(self->backend, &id, &reply, &meta, ZMQ_DONTWAIT);
        if (rc == 0) {
            if (meta.status < 0) {
                s_server_drop(self, DROP_LATE, "");
            } else {
                size_t row = meta.row <= self->count ? meta.row : self->count;
                s_server_observe(self, row, (Sr__Status)meta.status, meta.start_us);
                s_send_packed(self, &id, zmq_msg_data(&reply), zmq_msg_size(&reply));
            }
        }
        zmq_msg_close(&id);
        zmq_msg_close(&reply);
        if (rc == 1)
            break;
        if (rc < 0)
            sr_error("rpc_worker_frames", "endpoint=%s", self->endpoint);
    }
}

static void *s_worker_main(void *arg)
{
    rpc_worker_t *w = arg;
    sr_rpc_server_t *self = w->server;
    void *state = self->worker_init ? self->worker_init(self->state, w->index) : self->state;
    if (!state) {
        sr_error("rpc_worker_not_started", "endpoint=%s worker=%d", self->endpoint, w->index);
        return NULL;
    }
    void *socket = zmq_socket(self->zctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger);
    if (!socket || zmq_connect(socket, self->backend_ep) != 0) {
        sr_error("rpc_worker_not_started", "endpoint=%s worker=%d err=\"%s\"", self->endpoint,
                 w->index, zmq_strerror(errno));
        if (socket)
            zmq_close(socket);
        if (self->worker_fini)
            self->worker_fini(state);
        return NULL;
    }
    sr_arena_t *arena = sr_arena_new(ARENA_CHUNK);
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t item = {.socket = socket, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t id, request;
        worker_meta_t meta;
        if (s_recv_three(socket, &id, &request, &meta, 0) == 0) {
            Sr__Reply reply = SR__REPLY__INIT;
            size_t row;
            route_t route = s_dispatch(self, arena, state, zmq_msg_data(&request),
                                       zmq_msg_size(&request), 0, &reply, &row);
            size_t len = 0;
            uint8_t *buf = route == RUN_NOWHERE ? NULL : s_pack_reply(arena, &reply, &len);
            meta.row = (uint32_t)row;
            meta.status = route == RUN_NOWHERE ? -1 : (int32_t)reply.status;
            zmq_msg_send(&id, socket, ZMQ_SNDMORE);
            zmq_send(socket, buf ? buf : (const void *)"", len, ZMQ_SNDMORE);
            zmq_send(socket, &meta, sizeof meta, 0);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&request);
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
    zmq_close(socket);
    if (self->worker_fini && state != self->state)
        self->worker_fini(state);
    return NULL;
}

/* s_workers_start - the backend socket and the worker threads; 0 ok */
static int s_workers_start(sr_rpc_server_t *self, int n)
{
    self->backend_ep = sr_asprintf("inproc://sr-rpc-%p", (void *)self);
    self->backend = zmq_socket(self->zctx, ZMQ_DEALER);
    int linger = 0, hwm = 1000;
    if (!self->backend || zmq_setsockopt(self->backend, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(self->backend, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
        zmq_bind(self->backend, self->backend_ep) != 0) {
        sr_error("rpc_workers_failed", "endpoint=%s err=\"%s\"", self->endpoint,
                 zmq_strerror(errno));
        return -1;
    }
    self->workers = sr_calloc((size_t)n, sizeof *self->workers);
    self->nworkers = n;
    for (int i = 0; i < n; i++) {
        self->workers[i] = (rpc_worker_t){.server = self, .index = i};
        if (pthread_create(&self->workers[i].thread, NULL, s_worker_main, &self->workers[i]) != 0)
            sr_fatal("rpc_worker_thread", "endpoint=%s worker=%d", self->endpoint, i);
        self->workers[i].started = 1;
    }
    return 0;
}

int sr_rpc_server_attach(sr_rpc_server_t *self, sr_loop_t *loop)
{
    if (sr_loop_add_socket(loop, self->socket, sr_rpc_server_handle, self) < 0)
        return -1;
    if (self->backend && sr_loop_add_socket(loop, self->backend, s_replies, self) < 0) {
        sr_loop_remove_socket(loop, self->socket);
        return -1;
    }
    self->loop = loop;
    return 0;
}

/* --- client ------------------------------------------------------------------------------ */

sr_rpc_client_t *sr_rpc_client_new(void *zctx, const char *endpoint, const sr_rpc_opts_t *opts)
{
    void *socket = zmq_socket(zctx, ZMQ_DEALER);
    if (!socket) {
        sr_error("rpc_socket_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        return NULL;
    }
    int64_t max_msg = opts && opts->max_msg_size > 0 ? opts->max_msg_size : SR_BUS_MAX_MSG_DEFAULT;
    /* linger 0: a call that timed out must not keep the process alive at exit; immediate: a request
     * with no live connection fails its send instead of queueing for a server to come */
    int linger = 0, immediate = 1;
    if (sr_bus_limit_socket(socket, opts ? opts->hwm : 0, max_msg) != 0 ||
        zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(socket, ZMQ_IMMEDIATE, &immediate, sizeof immediate) != 0) {
        sr_error("rpc_socket_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    if (zmq_connect(socket, endpoint) != 0) {
        sr_error("rpc_connect_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    sr_rpc_client_t *self = sr_calloc(1, sizeof *self);
    self->socket = socket;
    self->endpoint = sr_strdup(endpoint);
    self->max_msg_size = max_msg;
    return self;
}

void sr_rpc_client_destroy(sr_rpc_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zmq_close((*self_p)->socket);
    free((*self_p)->endpoint);
    SR_FREE(*self_p);
}

/* s_wait - poll the client socket for events until deadline_us (monotonic); 1 ready, 0 deadline,
 * -1 error */
static int s_wait(sr_rpc_client_t *self, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left_us = deadline_us - sr_clock_mono_us();
        if (left_us <= 0)
            return 0;
        zmq_pollitem_t item = {.socket = self->socket, .events = events};
        /* rounded up, so a call never gives up before its full timeout */
        int n = zmq_poll(&item, 1, (long)((left_us + 999) / 1000));
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static Sr__Status s_client_fail(sr_arena_t *arena, Sr__Error **error, Sr__Status status,
                                const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static Sr__Status s_client_fail(sr_arena_t *arena, Sr__Error **error, Sr__Status status,
                                const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    *error = s_error_vnew(arena, code, NULL, fmt, ap);
    va_end(ap);
    return status;
}

/* s_send_request - send the packed request, waiting for a live connection until deadline_us; 1
 * sent, 0 deadline, -1 error */
static int s_send_request(sr_rpc_client_t *self, const uint8_t *buf, size_t len,
                          int64_t deadline_us)
{
    for (;;) {
        if (zmq_send(self->socket, buf, len, ZMQ_DONTWAIT) >= 0)
            return 1;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        int rc = s_wait(self, ZMQ_POLLOUT, deadline_us);
        if (rc <= 0)
            return rc;
    }
}

/* s_take_reply - the caller's results from our reply: body decoded or error copied, in arena */
/* s_copy_audit - the reply's audit record, copied into arena */
static Sr__Audit *s_copy_audit(const Sr__Audit *from, sr_arena_t *arena)
{
    if (!from)
        return NULL;
    Sr__Audit *a = sr_arena_alloc(arena, sizeof *a);
    sr__audit__init(a);
    a->entity = sr_arena_strdup(arena, from->entity);
    a->entity_id = sr_arena_strdup(arena, from->entity_id);
    a->region = sr_arena_strdup(arena, from->region);
    a->before = sr_arena_strdup(arena, from->before);
    a->after = sr_arena_strdup(arena, from->after);
    return a;
}

static Sr__Status s_take_reply(const Sr__Reply *r, const char *method,
                               const ProtobufCMessageDescriptor *reply_type, sr_arena_t *arena,
                               ProtobufCMessage **reply, Sr__Error **error)
{
    if (!s_status_valid((int)r->status))
        return s_client_fail(arena, error, SR__STATUS__STATUS_INTERNAL, "bad_reply",
                             "%s answered unknown status %d", method, (int)r->status);
    if (r->status != SR__STATUS__STATUS_OK) {
        char label[32];
        const Sr__Error *e = r->error;
        *error = s_error_new(
            arena, e && e->code[0] ? e->code : s_status_label(r->status, label, sizeof label), "%s",
            e ? e->message : "");
        if (e && e->field[0])
            (*error)->field = sr_arena_strdup(arena, e->field);
        return r->status;
    }
    if (!reply_type)
        return SR__STATUS__STATUS_OK;
    *reply = protobuf_c_message_unpack(reply_type, sr_arena_pb_allocator(arena), r->body.len,
                                       r->body.data);
    if (!*reply)
        return s_client_fail(arena, error, SR__STATUS__STATUS_INTERNAL, "bad_reply",
                             "reply body of %s does not decode as %s", method, reply_type->name);
    return SR__STATUS__STATUS_OK;
}

/* s_await - read replies until ours (id) comes or deadline_us passes; others are stale */
static Sr__Status s_await(sr_rpc_client_t *self, uint64_t id, const char *method,
                          const ProtobufCMessageDescriptor *reply_type, int64_t deadline_us,
                          int timeout_ms, sr_arena_t *arena, ProtobufCMessage **reply,
                          Sr__Error **error, Sr__Audit **audit)
{
    for (;;) {
        int rc = s_wait(self, ZMQ_POLLIN, deadline_us);
        if (rc == 0)
            break;
        if (rc < 0)
            return s_client_fail(arena, error, SR__STATUS__STATUS_UNAVAILABLE, "recv_failed",
                                 "cannot receive from %s: %s", self->endpoint, zmq_strerror(errno));
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            continue;
        }
        if (zmq_msg_more(&frame)) {
            zmq_msg_close(&frame);
            sr_bus_discard_rest(self->socket);
            sr_warn("rpc_reply_dropped", "endpoint=%s reason=frames", self->endpoint);
            continue;
        }
        size_t size = zmq_msg_size(&frame);
        if ((int64_t)size > self->max_msg_size) {
            zmq_msg_close(&frame);
            return s_client_fail(arena, error, SR__STATUS__STATUS_INTERNAL, "bad_reply",
                                 "reply from %s is %zu bytes, over %lld", self->endpoint, size,
                                 (long long)self->max_msg_size);
        }
        Sr__Reply *r = sr__reply__unpack(NULL, size, zmq_msg_data(&frame));
        zmq_msg_close(&frame);
        if (!r)
            return s_client_fail(arena, error, SR__STATUS__STATUS_INTERNAL, "bad_reply",
                                 "reply from %s does not decode", self->endpoint);
        if (r->id != id) {
            sr_debug("rpc_reply_stale", "endpoint=%s id=%llu want=%llu", self->endpoint,
                     (unsigned long long)r->id, (unsigned long long)id);
            sr__reply__free_unpacked(r, NULL);
            continue;
        }
        Sr__Status status = s_take_reply(r, method, reply_type, arena, reply, error);
        if (audit && status == SR__STATUS__STATUS_OK)
            *audit = s_copy_audit(r->audit, arena);
        sr__reply__free_unpacked(r, NULL);
        return status;
    }
    return s_client_fail(arena, error, SR__STATUS__STATUS_DEADLINE, "deadline",
                         "no reply from %s within %d ms", self->endpoint, timeout_ms);
}

Sr__Status sr_rpc_call(sr_rpc_client_t *self, const char *method, const Sr__Principal *principal,
                       const char *trace_id, const ProtobufCMessage *request,
                       const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                       sr_arena_t *arena, ProtobufCMessage **reply, Sr__Error **error)
{
    return sr_rpc_call_audited(self, method, principal, trace_id, request, reply_type, timeout_ms,
                               arena, reply, error, NULL);
}

Sr__Status sr_rpc_call_audited(sr_rpc_client_t *self, const char *method,
                               const Sr__Principal *principal, const char *trace_id,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *reply_type, int timeout_ms,
                               sr_arena_t *arena, ProtobufCMessage **reply, Sr__Error **error,
                               Sr__Audit **audit)
{
    *reply = NULL;
    *error = NULL;
    if (audit)
        *audit = NULL;
    Sr__Request req = SR__REQUEST__INIT;
    /* the server's deadline is taken first, so it has passed by the time the caller gives up */
    req.deadline_us = sr_clock_now_us() + (int64_t)timeout_ms * 1000;
    int64_t deadline_us = sr_clock_mono_us() + (int64_t)timeout_ms * 1000;
    req.id = ++self->last_id;
    req.method = (char *)method;
    req.principal = (Sr__Principal *)principal;
    req.trace_id = (char *)(trace_id ? trace_id : "");
    uint8_t *body = NULL;
    if (request) {
        req.body.len = protobuf_c_message_get_packed_size(request);
        body = sr_malloc(req.body.len ? req.body.len : 1);
        if (protobuf_c_message_pack(request, body) != req.body.len)
            sr_panic("rpc_pack_failed", "type=%s", request->descriptor->name);
        req.body.data = body;
    }
    size_t len = sr__request__get_packed_size(&req);
    uint8_t *buf = sr_malloc(len ? len : 1);
    if (sr__request__pack(&req, buf) != len)
        sr_panic("rpc_pack_failed", "type=Request");
    free(body);
    /* the server's libzmq would drop the connection over it, failing every call in flight */
    if ((int64_t)len > self->max_msg_size) {
        free(buf);
        return s_client_fail(arena, error, SR__STATUS__STATUS_BAD_REQUEST, "too_large",
                             "request of %zu bytes is over %lld", len,
                             (long long)self->max_msg_size);
    }
    int sent = s_send_request(self, buf, len, deadline_us);
    int err = errno;
    free(buf);
    if (sent < 0)
        return s_client_fail(arena, error, SR__STATUS__STATUS_UNAVAILABLE, "send_failed",
                             "cannot send to %s: %s", self->endpoint, zmq_strerror(err));
    if (sent == 0)
        return s_client_fail(arena, error, SR__STATUS__STATUS_DEADLINE, "deadline",
                             "no reply from %s within %d ms", self->endpoint, timeout_ms);
    return s_await(self, req.id, method, reply_type, deadline_us, timeout_ms, arena, reply, error,
                   audit);
}

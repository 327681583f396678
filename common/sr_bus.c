/* sr_bus - PUB/SUB sockets that speak [topic][Envelope], with limits and counters. See sr_bus.h.
 *
 * Owns the publisher and subscriber sockets, a socket monitor per socket (to answer "are we
 * connected to busd?") and the CURVE helpers every bus socket uses. Topics and payload types come
 * from sr_topics.c; the outbox (sr_outbox.c) packs Envelopes with sr_bus_envelope_pack() and sends
 * them with sr_bus_publish_packed().
 */
#include "sr_bus.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"
#include "sr_topics.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define LINGER_MS        1000 /* pending messages get a chance at close, but close never hangs */
#define Z85_KEY_LEN      40
#define FRAMES_DRAIN_MAX 1024 /* frames read from one malformed message before giving up */

typedef enum {
    DROP_GARBAGE = 0,
    DROP_OVERSIZE,
    DROP_UNKNOWN_TOPIC,
    DROP_HWM,
    DROP_FRAMES,
    DROP_COUNT,
} drop_reason_t;

static const char *const s_drop_names[DROP_COUNT] = {"garbage", "oversize", "unknown_topic", "hwm",
                                                     "frames"};

/* the counters a socket updates; all NULL without a registry */
typedef struct {
    sr_counter_t *sent;
    sr_counter_t *received;
    sr_counter_t *dropped[DROP_COUNT];
} counters_t;

/* a socket monitor: a PAIR socket reading the events of one bus socket */
typedef struct {
    void *pair;
    int curve;     /* with CURVE only a finished handshake counts as connected */
    int connected; /* last state seen */
} monitor_t;

struct sr_bus_pub_t {
    void *socket;
    monitor_t monitor;
    char *endpoint;
    char *source;
    char *instance;
    uint64_t seq;
    counters_t counters;
    sr_complaint_t hwm_complaint;
};

struct sr_bus_sub_t {
    void *socket;
    monitor_t monitor;
    char *endpoint;
    int64_t max_msg_size;
    counters_t counters;
    sr_complaint_t drop_complaint;
};

static atomic_uint s_monitor_serial;

static int s_hwm(const sr_bus_opts_t *opts)
{
    return opts && opts->hwm > 0 ? opts->hwm : SR_BUS_HWM_DEFAULT;
}

static int64_t s_max_msg(const sr_bus_opts_t *opts)
{
    return opts && opts->max_msg_size > 0 ? opts->max_msg_size : SR_BUS_MAX_MSG_DEFAULT;
}

static int s_curve_wanted(const sr_bus_opts_t *opts)
{
    return opts && opts->curve_server_key && opts->curve_server_key[0];
}

static void s_count(sr_counter_t *c)
{
    if (c)
        sr_counter_inc(c);
}

static void s_counters_init(counters_t *self, sr_metrics_t *metrics)
{
    memset(self, 0, sizeof *self);
    if (!metrics)
        return;
    self->sent = sr_metrics_counter(metrics, "sr_bus_sent_total", NULL, "bus messages sent");
    self->received = sr_metrics_counter(metrics, "sr_bus_received_total", NULL,
                                        "bus messages received and decoded");
    for (int i = 0; i < DROP_COUNT; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_drop_names[i]);
        self->dropped[i] = sr_metrics_counter(metrics, "sr_bus_dropped_total", labels,
                                              "bus messages dropped, by reason");
    }
}

/* s_monitor_start - watch socket's connection events on a fresh inproc endpoint */
static int s_monitor_start(monitor_t *self, void *zctx, void *socket, int curve)
{
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "inproc://sr-bus-mon-%ld-%u", (long)getpid(),
             atomic_fetch_add(&s_monitor_serial, 1));
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    self->curve = curve;
    self->connected = 0;
    if (zmq_socket_monitor(socket, endpoint, events) != 0) {
        sr_error("bus_monitor_failed", "err=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    /* an unbounded queue: libzmq's I/O thread blocks on a full monitor queue, and a socket that
     * keeps failing its handshake makes events faster than a quiet daemon asks for them */
    self->pair = zmq_socket(zctx, ZMQ_PAIR);
    int linger = 0, unbounded = 0;
    if (!self->pair || zmq_setsockopt(self->pair, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(self->pair, ZMQ_RCVHWM, &unbounded, sizeof unbounded) != 0 ||
        zmq_connect(self->pair, endpoint) != 0) {
        sr_error("bus_monitor_failed", "err=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

static void s_monitor_stop(monitor_t *self, void *socket)
{
    if (socket && self->pair) {
        if (zmq_socket_monitor(socket, NULL, 0) != 0)
            sr_warn("bus_monitor_stop_failed", "err=\"%s\"", zmq_strerror(errno));
    }
    if (self->pair)
        zmq_close(self->pair);
    self->pair = NULL;
}

/* s_monitor_poll - apply every event waiting, without blocking; the current state */
static int s_monitor_poll(monitor_t *self)
{
    while (self->pair) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->pair, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            break;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&frame) >= sizeof event)
            memcpy(&event, zmq_msg_data(&frame), sizeof event);
        int more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
        /* the second frame names the endpoint; nothing in it matters here */
        while (more) {
            zmq_msg_init(&frame);
            if (zmq_msg_recv(&frame, self->pair, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&frame);
                break;
            }
            more = zmq_msg_more(&frame);
            zmq_msg_close(&frame);
        }
        if (event == ZMQ_EVENT_CONNECTED && !self->curve)
            self->connected = 1;
        else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && self->curve)
            self->connected = 1;
        else if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                 event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            self->connected = 0;
    }
    return self->connected;
}

int sr_bus_limit_socket(void *socket, int hwm, int64_t max_msg_size)
{
    int linger = LINGER_MS;
    if (hwm <= 0)
        hwm = SR_BUS_HWM_DEFAULT;
    if (max_msg_size <= 0)
        max_msg_size = SR_BUS_MAX_MSG_DEFAULT;
    if (zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &max_msg_size, sizeof max_msg_size) != 0 ||
        zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof linger) != 0) {
        sr_error("bus_socket_limits_failed", "err=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

const char *sr_bus_key_problem(const char *key)
{
    if (!key || strlen(key) != Z85_KEY_LEN)
        return "not 40 characters long (a Z85 CURVE key from `sr-busd keygen`)";
    uint8_t binary[32];
    if (!zmq_z85_decode(binary, key))
        return "not Z85 text (a CURVE key from `sr-busd keygen`)";
    explicit_bzero(binary, sizeof binary);
    return NULL;
}

/* s_key_check - 0 when key is a valid Z85 key; what names the key in the error line */
static int s_key_check(const char *key, const char *what)
{
    const char *problem = sr_bus_key_problem(key);
    if (problem) {
        sr_error("bus_curve_key_invalid", "key=%s problem=\"%s\"", what, problem);
        return -1;
    }
    return 0;
}

int sr_bus_curve_client(void *socket, const char *server_key)
{
    if (s_key_check(server_key, "server_public") != 0)
        return -1;
    char public_key[Z85_KEY_LEN + 1];
    char secret_key[Z85_KEY_LEN + 1];
    int rc = -1;
    if (zmq_curve_keypair(public_key, secret_key) != 0)
        sr_error("bus_curve_failed", "step=keypair err=\"%s\"", zmq_strerror(errno));
    else if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, Z85_KEY_LEN) != 0 ||
             zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_key, Z85_KEY_LEN) != 0 ||
             zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_key, Z85_KEY_LEN) != 0)
        sr_error("bus_curve_failed", "step=client_keys err=\"%s\"", zmq_strerror(errno));
    else
        rc = 0;
    explicit_bzero(secret_key, sizeof secret_key);
    return rc;
}

int sr_bus_curve_server(void *socket, const char *secret_key)
{
    if (s_key_check(secret_key, "server_secret") != 0)
        return -1;
    int on = 1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on) != 0 ||
        zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_key, Z85_KEY_LEN) != 0) {
        sr_error("bus_curve_failed", "step=server_key err=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    return 0;
}

/* s_socket_open - a connected bus socket of type with limits, CURVE and a monitor */
static void *s_socket_open(void *zctx, int type, const char *endpoint, const sr_bus_opts_t *opts,
                           monitor_t *monitor)
{
    void *socket = zmq_socket(zctx, type);
    if (!socket) {
        sr_error("bus_socket_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        return NULL;
    }
    /* with NODROP a PUB at its high-water mark fails the send, so the drop is counted */
    int nodrop = 1;
    if (sr_bus_limit_socket(socket, s_hwm(opts), s_max_msg(opts)) != 0 ||
        (s_curve_wanted(opts) && sr_bus_curve_client(socket, opts->curve_server_key) != 0) ||
        (type == ZMQ_PUB && zmq_setsockopt(socket, ZMQ_XPUB_NODROP, &nodrop, sizeof nodrop) != 0) ||
        s_monitor_start(monitor, zctx, socket, s_curve_wanted(opts)) != 0) {
        s_monitor_stop(monitor, socket);
        zmq_close(socket);
        return NULL;
    }
    if (zmq_connect(socket, endpoint) != 0) {
        sr_error("bus_connect_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        s_monitor_stop(monitor, socket);
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

sr_bus_pub_t *sr_bus_pub_new(void *zctx, const char *endpoint, const char *source,
                             const char *instance, const sr_bus_opts_t *opts)
{
    sr_bus_pub_t *self = sr_calloc(1, sizeof *self);
    self->socket = s_socket_open(zctx, ZMQ_PUB, endpoint, opts, &self->monitor);
    if (!self->socket) {
        free(self);
        return NULL;
    }
    self->endpoint = sr_strdup(endpoint);
    self->source = sr_strdup(source ? source : "");
    self->instance = sr_strdup(instance ? instance : "");
    self->hwm_complaint = (sr_complaint_t)SR_COMPLAINT_INIT("bus.pub");
    s_counters_init(&self->counters, opts ? opts->metrics : NULL);
    return self;
}

void sr_bus_pub_destroy(sr_bus_pub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_bus_pub_t *self = *self_p;
    s_monitor_stop(&self->monitor, self->socket);
    zmq_close(self->socket);
    free(self->endpoint);
    free(self->source);
    free(self->instance);
    SR_FREE(*self_p);
}

int sr_bus_envelope_pack(const char *source, const char *instance, uint64_t seq,
                         int64_t event_time_us, const char *trace_id,
                         const ProtobufCMessage *payload, uint8_t **out, size_t *len)
{
    Sr__Envelope env = SR__ENVELOPE__INIT;
    env.schema_version = SR_BUS_SCHEMA_VERSION;
    env.source = (char *)(source ? source : "");
    env.instance = (char *)(instance ? instance : "");
    env.seq = seq;
    env.event_time_us = event_time_us;
    env.trace_id = (char *)(trace_id ? trace_id : "");
    uint8_t *body = NULL;
    if (payload) {
        env.payload.len = protobuf_c_message_get_packed_size(payload);
        body = sr_malloc(env.payload.len ? env.payload.len : 1);
        if (protobuf_c_message_pack(payload, body) != env.payload.len) {
            sr_error("bus_pack_failed", "what=payload type=%s", payload->descriptor->name);
            free(body);
            return -1;
        }
        env.payload.data = body;
    }
    *len = sr__envelope__get_packed_size(&env);
    *out = sr_malloc(*len ? *len : 1);
    size_t packed = sr__envelope__pack(&env, *out);
    free(body);
    if (packed != *len) {
        sr_error("bus_pack_failed", "what=envelope");
        SR_FREE(*out);
        return -1;
    }
    return 0;
}

/* s_send - [topic][envelope] without blocking; a full queue counts as an hwm drop */
static int s_send(sr_bus_pub_t *self, const char *topic, const uint8_t *envelope, size_t len)
{
    s_monitor_poll(&self->monitor);
    if (zmq_send(self->socket, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN) {
            s_count(self->counters.dropped[DROP_HWM]);
            sr_complain(&self->hwm_complaint, "reason=hwm endpoint=%s topic=%s", self->endpoint,
                        topic);
        } else {
            sr_error("bus_send_failed", "endpoint=%s topic=%s err=\"%s\"", self->endpoint, topic,
                     zmq_strerror(errno));
        }
        return -1;
    }
    /* the high-water mark counts whole messages, so once the topic went the envelope goes too */
    if (zmq_send(self->socket, envelope, len, ZMQ_DONTWAIT) < 0) {
        sr_error("bus_send_failed", "endpoint=%s topic=%s frame=envelope err=\"%s\"",
                 self->endpoint, topic, zmq_strerror(errno));
        return -1;
    }
    s_count(self->counters.sent);
    return 0;
}

int sr_bus_publish(sr_bus_pub_t *self, const char *topic, const ProtobufCMessage *payload,
                   const char *trace_id)
{
    const sr_topic_t *row = sr_topic_find(topic);
    if (!row) {
        sr_error("bus_publish_refused", "topic=%s problem=\"not in the topic table\"",
                 topic ? topic : "(null)");
        return -1;
    }
    if (!payload || payload->descriptor != row->payload) {
        sr_error("bus_publish_refused", "topic=%s problem=\"payload is %s, want %s\"", topic,
                 payload ? payload->descriptor->name : "(null)", row->payload->name);
        return -1;
    }
    uint8_t *envelope = NULL;
    size_t len = 0;
    /* a message dropped below still uses its seq, so subscribers see the gap */
    uint64_t seq = ++self->seq;
    if (sr_bus_envelope_pack(self->source, self->instance, seq, sr_clock_now_us(), trace_id,
                             payload, &envelope, &len) != 0)
        return -1;
    int rc = s_send(self, topic, envelope, len);
    free(envelope);
    return rc;
}

int sr_bus_publish_packed(sr_bus_pub_t *self, const char *topic, const uint8_t *envelope,
                          size_t len)
{
    if (!sr_topic_find(topic)) {
        sr_error("bus_publish_refused", "topic=%s problem=\"not in the topic table\"",
                 topic ? topic : "(null)");
        return -1;
    }
    return s_send(self, topic, envelope, len);
}

uint64_t sr_bus_pub_seq(const sr_bus_pub_t *self)
{
    return self->seq;
}

int sr_bus_pub_connected(sr_bus_pub_t *self)
{
    return s_monitor_poll(&self->monitor);
}

sr_bus_sub_t *sr_bus_sub_new(void *zctx, const char *endpoint, const sr_bus_opts_t *opts)
{
    sr_bus_sub_t *self = sr_calloc(1, sizeof *self);
    self->socket = s_socket_open(zctx, ZMQ_SUB, endpoint, opts, &self->monitor);
    if (!self->socket) {
        free(self);
        return NULL;
    }
    self->endpoint = sr_strdup(endpoint);
    self->max_msg_size = s_max_msg(opts);
    self->drop_complaint = (sr_complaint_t)SR_COMPLAINT_INIT("bus.sub");
    s_counters_init(&self->counters, opts ? opts->metrics : NULL);
    return self;
}

void sr_bus_sub_destroy(sr_bus_sub_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_bus_sub_t *self = *self_p;
    s_monitor_stop(&self->monitor, self->socket);
    zmq_close(self->socket);
    free(self->endpoint);
    SR_FREE(*self_p);
}

int sr_bus_subscribe(sr_bus_sub_t *self, const char *prefix)
{
    if (zmq_setsockopt(self->socket, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) != 0) {
        sr_error("bus_subscribe_failed", "prefix=%s err=\"%s\"", prefix, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

void *sr_bus_sub_socket(sr_bus_sub_t *self)
{
    return self->socket;
}

int sr_bus_sub_connected(sr_bus_sub_t *self)
{
    return s_monitor_poll(&self->monitor);
}

/* s_drop - count and (rate-limited) log one dropped message */
static sr_bus_recv_t s_drop(sr_bus_sub_t *self, drop_reason_t reason, size_t bytes)
{
    s_count(self->counters.dropped[reason]);
    sr_complain(&self->drop_complaint, "reason=%s endpoint=%s bytes=%zu", s_drop_names[reason],
                self->endpoint, bytes);
    return SR_BUS_RECV_DROPPED;
}

void sr_bus_discard_rest(void *socket)
{
    int more = 1;
    for (int i = 0; more && i < FRAMES_DRAIN_MAX; i++) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return;
        }
        more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
    }
}

/* s_decode - check and unpack one [topic][envelope] pair into msg */
static sr_bus_recv_t s_decode(sr_bus_sub_t *self, zmq_msg_t *topic, zmq_msg_t *envelope,
                              sr_arena_t *arena, sr_bus_msg_t *msg)
{
    size_t topic_len = zmq_msg_size(topic);
    size_t len = zmq_msg_size(envelope);
    if (topic_len >= SR_BUS_TOPIC_MAX || memchr(zmq_msg_data(topic), '\0', topic_len))
        return s_drop(self, DROP_UNKNOWN_TOPIC, len);
    if ((int64_t)len > self->max_msg_size)
        return s_drop(self, DROP_OVERSIZE, len);
    char name[SR_BUS_TOPIC_MAX];
    memcpy(name, zmq_msg_data(topic), topic_len);
    name[topic_len] = '\0';
    ProtobufCAllocator *pb = sr_arena_pb_allocator(arena);
    Sr__Envelope *env = sr__envelope__unpack(pb, len, zmq_msg_data(envelope));
    if (!env)
        return s_drop(self, DROP_GARBAGE, len);
    const sr_topic_t *row = sr_topic_find(name);
    if (!row)
        return s_drop(self, DROP_UNKNOWN_TOPIC, len);
    ProtobufCMessage *payload =
        protobuf_c_message_unpack(row->payload, pb, env->payload.len, env->payload.data);
    if (!payload)
        return s_drop(self, DROP_GARBAGE, len);
    memcpy(msg->topic, name, topic_len + 1);
    msg->envelope = env;
    msg->payload = payload;
    s_count(self->counters.received);
    return SR_BUS_RECV_OK;
}

sr_bus_recv_t sr_bus_recv(sr_bus_sub_t *self, sr_arena_t *arena, sr_bus_msg_t *msg, int timeout_ms)
{
    s_monitor_poll(&self->monitor);
    if (timeout_ms != 0) {
        zmq_pollitem_t item = {.socket = self->socket, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, timeout_ms);
        if (n < 0 && errno != EINTR) {
            sr_error("bus_recv_failed", "endpoint=%s err=\"%s\"", self->endpoint,
                     zmq_strerror(errno));
            return SR_BUS_RECV_ERROR;
        }
        if (n <= 0)
            return SR_BUS_RECV_EMPTY;
    }
    zmq_msg_t topic, envelope;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, self->socket, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close(&topic);
        if (err == EAGAIN || err == EINTR)
            return SR_BUS_RECV_EMPTY;
        sr_error("bus_recv_failed", "endpoint=%s err=\"%s\"", self->endpoint, zmq_strerror(err));
        return SR_BUS_RECV_ERROR;
    }
    if (!zmq_msg_more(&topic)) {
        size_t len = zmq_msg_size(&topic);
        zmq_msg_close(&topic);
        return s_drop(self, DROP_FRAMES, len);
    }
    zmq_msg_init(&envelope);
    /* the rest of a multipart message is already here: the socket hands out whole messages */
    if (zmq_msg_recv(&envelope, self->socket, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close(&topic);
        zmq_msg_close(&envelope);
        sr_error("bus_recv_failed", "endpoint=%s frame=envelope err=\"%s\"", self->endpoint,
                 zmq_strerror(err));
        return SR_BUS_RECV_ERROR;
    }
    sr_bus_recv_t rc;
    if (zmq_msg_more(&envelope)) {
        sr_bus_discard_rest(self->socket);
        rc = s_drop(self, DROP_FRAMES, zmq_msg_size(&envelope));
    } else {
        rc = s_decode(self, &topic, &envelope, arena, msg);
    }
    zmq_msg_close(&topic);
    zmq_msg_close(&envelope);
    return rc;
}

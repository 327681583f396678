/* busd_forward - the two sockets and the forwarding between them, with counters.
 *
 * Messages go frontend -> backend frame by frame, keeping multipart boundaries; subscription
 * frames go backend -> frontend. Forwarded messages are counted per known topic (unknown topics
 * share one "other" series, so a stray publisher cannot blow up /metrics).
 */
#include "busd.h"

#include "sr_alloc.h"
#include "sr_log.h"
#include "sr_topics.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define OFF(field)        offsetof(busd_config_t, field)
#define FORWARD_BATCH_MAX 10000

const sr_config_entry_t busd_config[] = {
    {"SR_BUSD_FRONTEND", SR_CFG_STR, "tcp://127.0.0.1:7601", 0, 0, OFF(frontend),
     "where publishers connect (XSUB bind); tcp://0.0.0.0:7601 to serve other hosts"},
    {"SR_BUSD_BACKEND", SR_CFG_STR, "tcp://127.0.0.1:7602", 0, 0, OFF(backend),
     "where subscribers connect (XPUB bind)"},
    {"SR_BUSD_CURVE_SECRET", SR_CFG_SECRET, "", 0, 0, OFF(curve_secret),
     "CURVE secret key (Z85, from `sr-busd keygen`); empty = plain TCP"},
    {NULL},
};

int busd_check_config(const void *config, char *err, size_t errlen)
{
    const busd_config_t *cfg = config;
    const char *problem = cfg->curve_secret[0] ? sr_bus_key_problem(cfg->curve_secret) : NULL;
    if (problem) {
        snprintf(err, errlen, "SR_BUSD_CURVE_SECRET: %s", problem);
        return -1;
    }
    return 0;
}

typedef struct {
    sr_service_t *svc;
    void *frontend, *backend;
    sr_counter_t *messages, *bytes, *subscribes, *unsubscribes, *other_topic;
    sr_counter_t **per_topic; /* same order as sr_topics_all() */
    size_t ntopics;
} busd_t;

/* s_count_topic - one counter per known topic, "other" for the rest */
static void s_count_topic(busd_t *self, const zmq_msg_t *frame)
{
    const sr_topic_t *topics = sr_topics_all(&self->ntopics);
    size_t len = zmq_msg_size(frame);
    for (size_t i = 0; i < self->ntopics; i++) {
        if (strlen(topics[i].topic) == len &&
            memcmp(topics[i].topic, zmq_msg_data((zmq_msg_t *)frame), len) == 0) {
            sr_counter_inc(self->per_topic[i]);
            return;
        }
    }
    sr_counter_inc(self->other_topic);
}

/* s_pass - move one whole multipart message from one socket to the other; 0 when there was
 * nothing to read. first_frame is called with the first frame before it is sent. */
static int s_pass(busd_t *self, void *from, void *to,
                  void (*first_frame)(busd_t *, const zmq_msg_t *))
{
    zmq_msg_t frame;
    int more = 1, first = 1;
    while (more) {
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, from, first ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&frame);
            if (errno != EAGAIN)
                sr_warn("busd_recv_failed", "err=\"%s\"", zmq_strerror(errno));
            return 0;
        }
        if (first && first_frame)
            first_frame(self, &frame);
        sr_counter_add(self->bytes, zmq_msg_size(&frame));
        more = zmq_msg_more(&frame);
        first = 0;
        if (zmq_msg_send(&frame, to, more ? ZMQ_SNDMORE : 0) < 0) {
            sr_warn("busd_send_failed", "err=\"%s\"", zmq_strerror(errno));
            zmq_msg_close(&frame);
        }
    }
    return 1;
}

static void s_count_subscription(busd_t *self, const zmq_msg_t *frame)
{
    const unsigned char *data = zmq_msg_data((zmq_msg_t *)frame);
    if (zmq_msg_size(frame) > 0)
        sr_counter_inc(data[0] == 1 ? self->subscribes : self->unsubscribes);
}

/* s_on_frontend - forward a bounded batch, so a flood cannot starve the cron and signals; the
 * loop polls again at once while messages wait */
static void s_on_frontend(void *arg)
{
    busd_t *self = arg;
    for (int i = 0;
         i < FORWARD_BATCH_MAX && s_pass(self, self->frontend, self->backend, s_count_topic); i++)
        sr_counter_inc(self->messages);
}

static void s_on_backend(void *arg)
{
    busd_t *self = arg;
    while (s_pass(self, self->backend, self->frontend, s_count_subscription))
        ;
}

static void *s_bind(busd_t *self, int type, const char *endpoint, const char *curve_secret)
{
    const sr_common_config_t *cc = sr_service_common(self->svc);
    void *socket = zmq_socket(sr_service_zctx(self->svc), type);
    if (!socket || sr_bus_limit_socket(socket, (int)cc->bus_hwm, cc->bus_max_msg) < 0 ||
        (curve_secret[0] && sr_bus_curve_server(socket, curve_secret) < 0) ||
        zmq_bind(socket, endpoint) < 0) {
        sr_error("busd_bind_failed", "endpoint=%s err=\"%s\"", endpoint, zmq_strerror(errno));
        if (socket)
            zmq_close(socket);
        return NULL;
    }
    return socket;
}

static void s_register_metrics(busd_t *self)
{
    sr_metrics_t *m = sr_service_metrics(self->svc);
    self->messages = sr_metrics_counter(m, "sr_busd_messages_total", NULL, "messages forwarded");
    self->bytes = sr_metrics_counter(m, "sr_busd_bytes_total", NULL, "bytes forwarded, both ways");
    self->subscribes = sr_metrics_counter(m, "sr_busd_subscriptions_total", "op=\"subscribe\"",
                                          "subscription frames passed upstream");
    self->unsubscribes =
        sr_metrics_counter(m, "sr_busd_subscriptions_total", "op=\"unsubscribe\"", NULL);
    const sr_topic_t *topics = sr_topics_all(&self->ntopics);
    self->per_topic = sr_calloc(self->ntopics, sizeof *self->per_topic);
    for (size_t i = 0; i < self->ntopics; i++) {
        char labels[160];
        snprintf(labels, sizeof labels, "topic=\"%s\"", topics[i].topic);
        self->per_topic[i] = sr_metrics_counter(m, "sr_busd_topic_messages_total", labels,
                                                "messages forwarded per topic");
    }
    self->other_topic =
        sr_metrics_counter(m, "sr_busd_topic_messages_total", "topic=\"other\"", NULL);
}

int busd_init(sr_service_t *svc)
{
    busd_config_t *cfg = sr_service_config(svc);
    busd_t *self = sr_calloc(1, sizeof *self);
    self->svc = svc;
    sr_service_set_state(svc, self);
    s_register_metrics(self);
    self->frontend = s_bind(self, ZMQ_XSUB, cfg->frontend, cfg->curve_secret);
    self->backend = s_bind(self, ZMQ_XPUB, cfg->backend, cfg->curve_secret);
    if (!self->frontend || !self->backend)
        return -1;
    if (sr_loop_add_socket(sr_service_loop(svc), self->frontend, s_on_frontend, self) < 0 ||
        sr_loop_add_socket(sr_service_loop(svc), self->backend, s_on_backend, self) < 0)
        return -1;
    sr_admin_set_check(sr_service_admin(svc), "bus", 1, "");
    sr_info("busd_listening", "frontend=%s backend=%s curve=%s", cfg->frontend, cfg->backend,
            cfg->curve_secret[0] ? "on" : "off");
    return 0;
}

void busd_fini(sr_service_t *svc)
{
    busd_t *self = sr_service_state(svc);
    if (!self)
        return;
    if (self->frontend)
        zmq_close(self->frontend);
    if (self->backend)
        zmq_close(self->backend);
    free(self->per_topic);
    free(self);
    sr_service_set_state(svc, NULL);
}

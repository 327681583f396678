/* ingestd_push - Douyin live interaction pushes (live_comment, live_gift, live_like,
 * live_fansclub) received on ingestd's own HTTP endpoint.
 *
 * POST /douyin/push with the headers x-roomid and x-msg-type and a JSON array of messages
 * (a single object is taken as an array of one). With SR_INGEST_PUSH_SECRET set, x-signature
 * must be Douyin's: base64(MD5("x-msg-type=..&x-nonce-str=..&x-roomid=..&x-timestamp=.." + body
 * + secret)), the four headers sorted by name, and x-timestamp (seconds) within five minutes.
 * Each message becomes an InteractionEvent (count 1 for a comment or a fan-club event, gift_num
 * or like_num otherwise; gift_value in fen; sec_openid only as a hash). The whole push is
 * checked before anything is taken: a bad one is answered 400 with the message index and field.
 *
 * MHD runs the handler on its own thread, so a checked push is packed into an inbox under a
 * mutex and the loop thread is woken (sr_loop_wakeup); it queues the events like polled samples
 * (ingestd_enqueue_interaction). 200 means ingestd holds the events (queue or spool); 503 when
 * the inbox is full or ingestd is stopping, so the platform sends the push again.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_http.h"
#include "sr_log.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PUSH_PATH        "/douyin/push"
#define PUSH_BODY_MAX    (1 << 20)
#define INBOX_MAX_BYTES  (16 << 20)
#define SIGNATURE_SKEW_S 300

typedef struct {
    const char *name; /* x-msg-type */
    Sr__InteractionKind kind;
    const char *count_field; /* NULL = 1 */
} msg_type_t;

static const msg_type_t s_types[] = {
    {"live_comment", SR__INTERACTION_KIND__INTERACTION_KIND_COMMENT, NULL},
    {"live_gift", SR__INTERACTION_KIND__INTERACTION_KIND_GIFT, "gift_num"},
    {"live_like", SR__INTERACTION_KIND__INTERACTION_KIND_LIKE, "like_num"},
    {"live_fansclub", SR__INTERACTION_KIND__INTERACTION_KIND_FAN_CLUB, NULL},
};

enum { R_ACCEPTED, R_INVALID, R_UNSIGNED, R_BUSY, R_DROPPED, R_RESULTS };
static const char *s_result_names[R_RESULTS] = {"accepted", "invalid", "bad_signature", "busy",
                                                "dropped"};

struct ingestd_push_t {
    sr_service_t *svc;
    const ingestd_config_t *cfg;
    sr_http_server_t *http;
    sr_loop_wakeup_t *wakeup;
    pthread_mutex_t mutex;
    uint8_t *inbox; /* [u32 length][packed CollectorBatch]... */
    size_t inbox_len, inbox_cap;
    int stopping;
    sr_counter_t *results[R_RESULTS]; /* sr_ingest_push_total{result}, dropped counts events */
};

static sr_http_reply_t s_error(ingestd_push_t *self, int result, unsigned status, const char *code,
                               const char *message)
{
    sr_counter_inc(self->results[result]);
    return sr_http_error(status, code, message);
}

/* s_signature_ok - Douyin's x-signature over the sorted x- headers, the body and the secret */
static int s_signature_ok(const ingestd_push_t *self, const sr_http_request_t *req,
                          const char *body, size_t len)
{
    static const char *const names[] = {"x-msg-type", "x-nonce-str", "x-roomid", "x-timestamp"};
    const char *given = sr_http_request_header(req, "x-signature");
    const char *ts = sr_http_request_header(req, "x-timestamp");
    if (!given || !ts)
        return 0;
    long long at = strtoll(ts, NULL, 10), now = sr_clock_now_us() / 1000000;
    if (at < now - SIGNATURE_SKEW_S || at > now + SIGNATURE_SKEW_S)
        return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1;
    for (size_t i = 0; ok && i < sizeof names / sizeof names[0]; i++) {
        const char *v = sr_http_request_header(req, names[i]);
        ok = EVP_DigestUpdate(md, i ? "&" : "", i ? 1 : 0) == 1 &&
             EVP_DigestUpdate(md, names[i], strlen(names[i])) == 1 &&
             EVP_DigestUpdate(md, "=", 1) == 1 &&
             EVP_DigestUpdate(md, v ? v : "", v ? strlen(v) : 0) == 1;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    ok = ok && EVP_DigestUpdate(md, body, len) == 1 &&
         EVP_DigestUpdate(md, self->cfg->push_secret, strlen(self->cfg->push_secret)) == 1 &&
         EVP_DigestFinal_ex(md, digest, &dlen) == 1;
    EVP_MD_CTX_free(md);
    if (!ok)
        return 0;
    char want[64];
    EVP_EncodeBlock((unsigned char *)want, digest, (int)dlen);
    return strlen(given) == strlen(want) && sodium_memcmp(given, want, strlen(want)) == 0;
}

/* s_user_hash - a stable 16-hex-digit hash of the viewer's openid; the id itself is not kept */
static void s_user_hash(const char *openid, char out[17])
{
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)openid, strlen(openid), NULL, 0);
    sodium_bin2hex(out, 17, h, sizeof h);
}

/* s_int_field - an integer field (a JSON number, or digits in a string as the platforms send
 * them); 0 ok with *out set, -1 when present but not a non-negative integer */
static int s_int_field(json_t *obj, const char *name, int64_t *out)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        return 1;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (*s && !*end && errno == 0 && n >= 0) {
            *out = n;
            return 0;
        }
    }
    return -1;
}

/* s_event - one message of the push into e (strings point into the JSON); NULL or the problem */
static const char *s_event(const msg_type_t *type, json_t *m, const char *room, char hash[17],
                           Sr__InteractionEvent *e)
{
    sr__interaction_event__init(e);
    e->platform = SR__PLATFORM__PLATFORM_DOUYIN;
    e->room_id = (char *)room;
    e->kind = type->kind;
    e->count = 1;
    if (!json_is_object(m))
        return "not an object";
    json_t *openid = json_object_get(m, "sec_openid");
    if (openid && !json_is_string(openid))
        return "sec_openid: not a string";
    s_user_hash(openid ? json_string_value(openid) : "", hash);
    e->user_hash = openid ? hash : "";
    if (type->count_field && s_int_field(m, type->count_field, &e->count) != 0)
        return type->count_field;
    int64_t ts_ms = 0;
    if (s_int_field(m, "timestamp", &ts_ms) < 0)
        return "timestamp";
    e->ts_us = ts_ms ? ts_ms * 1000 : sr_clock_now_us();
    if (type->kind == SR__INTERACTION_KIND__INTERACTION_KIND_GIFT &&
        s_int_field(m, "gift_value", &e->value_fen) < 0)
        return "gift_value";
    if (type->kind == SR__INTERACTION_KIND__INTERACTION_KIND_COMMENT) {
        json_t *content = json_object_get(m, "content");
        if (!json_is_string(content))
            return "content";
        e->text = (char *)json_string_value(content);
    }
    return NULL;
}

/* s_inbox_put - append a packed batch for the loop thread; -1 when the inbox is full */
static int s_inbox_put(ingestd_push_t *self, const Sr__CollectorBatch *batch)
{
    size_t len = sr__collector_batch__get_packed_size(batch);
    int rc = -1;
    pthread_mutex_lock(&self->mutex);
    if (!self->stopping && self->inbox_len + 4 + len <= INBOX_MAX_BYTES) {
        if (self->inbox_len + 4 + len > self->inbox_cap) {
            self->inbox_cap = (self->inbox_len + 4 + len) * 2;
            self->inbox = sr_realloc(self->inbox, self->inbox_cap);
        }
        uint32_t n = (uint32_t)len;
        memcpy(self->inbox + self->inbox_len, &n, 4);
        sr__collector_batch__pack(batch, self->inbox + self->inbox_len + 4);
        self->inbox_len += 4 + len;
        rc = 0;
    }
    pthread_mutex_unlock(&self->mutex);
    if (rc == 0)
        sr_loop_wakeup(self->wakeup);
    return rc;
}

static sr_http_reply_t s_on_push(void *arg, const sr_http_request_t *req)
{
    ingestd_push_t *self = arg;
    size_t len;
    const char *body = sr_http_request_body(req, &len);
    if (self->cfg->push_secret[0] && !s_signature_ok(self, req, body, len))
        return s_error(self, R_UNSIGNED, 401, "bad_signature",
                       "x-signature does not match (or x-timestamp is off by more than 5 minutes)");
    const char *room = sr_http_request_header(req, "x-roomid");
    const char *kind = sr_http_request_header(req, "x-msg-type");
    if (!room || !room[0] || !ingestd_utf8_ok(room))
        return s_error(self, R_INVALID, 400, "invalid", "x-roomid: missing");
    const msg_type_t *type = NULL;
    for (size_t i = 0; kind && i < sizeof s_types / sizeof s_types[0]; i++)
        if (strcmp(kind, s_types[i].name) == 0)
            type = &s_types[i];
    if (!type)
        return s_error(self, R_INVALID, 400, "invalid",
                       "x-msg-type: not live_comment, live_gift, live_like or live_fansclub");
    json_error_t jerr;
    json_t *doc = json_loadb(body, len, 0, &jerr);
    if (!doc) {
        char msg[256];
        snprintf(msg, sizeof msg, "body: not JSON (line %d: %s)", jerr.line, jerr.text);
        return s_error(self, R_INVALID, 400, "invalid", msg);
    }
    if (json_is_object(doc)) {
        json_t *one = json_array();
        json_array_append_new(one, doc);
        doc = one;
    }
    size_t n = json_is_array(doc) ? json_array_size(doc) : 0;
    Sr__InteractionEvent *events = sr_calloc(n ? n : 1, sizeof *events);
    Sr__InteractionEvent **ptrs = sr_calloc(n ? n : 1, sizeof *ptrs);
    char(*hashes)[17] = sr_calloc(n ? n : 1, sizeof *hashes);
    sr_http_reply_t reply;
    const char *problem = json_is_array(doc) ? NULL : "body: not an array of messages";
    size_t bad = 0;
    for (size_t i = 0; !problem && i < n; i++) {
        ptrs[i] = &events[i];
        problem = s_event(type, json_array_get(doc, i), room, hashes[i], &events[i]);
        if (!problem && !ingestd_utf8_ok(events[i].text))
            problem = "content: not UTF-8";
        bad = i;
    }
    if (problem) {
        char msg[160];
        snprintf(msg, sizeof msg, "[%zu]: %s", bad, problem);
        reply = s_error(self, R_INVALID, 400, "invalid", json_is_array(doc) ? msg : problem);
    } else {
        Sr__CollectorBatch batch = SR__COLLECTOR_BATCH__INIT;
        batch.interactions = ptrs;
        batch.n_interactions = n;
        if (n > 0 && s_inbox_put(self, &batch) < 0)
            reply = s_error(self, R_BUSY, 503, "busy", "ingestd cannot take pushes now; resend");
        else {
            sr_counter_inc(self->results[R_ACCEPTED]);
            reply = (sr_http_reply_t){200, SR_HTTP_JSON,
                                      sr_strdup("{\"err_no\":0,\"err_msg\":\"success\"}")};
        }
    }
    free(hashes);
    free(ptrs);
    free(events);
    json_decref(doc);
    return reply;
}

/* s_take_inbox - on the loop thread: queue what the handler put into the inbox */
static void s_take_inbox(void *arg)
{
    ingestd_push_t *self = arg;
    pthread_mutex_lock(&self->mutex);
    uint8_t *inbox = self->inbox;
    size_t len = self->inbox_len;
    self->inbox = NULL;
    self->inbox_len = self->inbox_cap = 0;
    pthread_mutex_unlock(&self->mutex);
    for (size_t off = 0; off + 4 <= len;) {
        uint32_t n;
        memcpy(&n, inbox + off, 4);
        Sr__CollectorBatch *b = sr__collector_batch__unpack(NULL, n, inbox + off + 4);
        off += 4 + n;
        for (size_t i = 0; b && i < b->n_interactions; i++)
            if (ingestd_enqueue_interaction(self->svc, b->interactions[i]) < 0)
                sr_counter_inc(self->results[R_DROPPED]);
        sr__collector_batch__free_unpacked(b, NULL);
    }
    free(inbox);
}

static const sr_http_route_t s_routes[] = {
    {PUSH_PATH, s_on_push, "POST", PUSH_BODY_MAX},
};

int ingestd_push_check_bind(const char *bind)
{
    char addr[64];
    uint16_t port;
    return !bind[0] || sr_http_split_bind(bind, addr, sizeof addr, &port) == 0 ? 0 : -1;
}

ingestd_push_t *ingestd_push_new(sr_service_t *svc)
{
    ingestd_push_t *self = sr_calloc(1, sizeof *self);
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    pthread_mutex_init(&self->mutex, NULL);
    sr_metrics_t *m = sr_service_metrics(svc);
    char labels[64];
    for (int r = 0; r < R_RESULTS; r++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", s_result_names[r]);
        self->results[r] = sr_metrics_counter(
            m, "sr_ingest_push_total", labels,
            "Douyin pushes by answer (dropped: events the full queue and spool refused)");
    }
    char addr[64], err[256];
    uint16_t port = 0;
    if (!(self->wakeup = sr_loop_wakeup_new(sr_service_loop(svc), s_take_inbox, self))) {
        ingestd_push_destroy(&self);
        return NULL;
    }
    sr_http_split_bind(self->cfg->push_bind, addr, sizeof addr, &port);
    self->http = sr_http_server_new(addr, port, s_routes, sizeof s_routes / sizeof s_routes[0],
                                    self, err, sizeof err);
    if (!self->http) {
        sr_error("ingest_push_failed", "bind=%s err=\"%s\"", self->cfg->push_bind, err);
        ingestd_push_destroy(&self);
        return NULL;
    }
    sr_info("ingest_push_listening", "url=http://%s:%u%s signed=%s", addr,
            sr_http_server_port(self->http), PUSH_PATH, self->cfg->push_secret[0] ? "yes" : "no");
    return self;
}

void ingestd_push_stop(ingestd_push_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->mutex);
    self->stopping = 1;
    pthread_mutex_unlock(&self->mutex);
    s_take_inbox(self);
}

void ingestd_push_destroy(ingestd_push_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestd_push_t *self = *self_p;
    sr_http_server_destroy(&self->http);
    sr_loop_wakeup_destroy(&self->wakeup);
    pthread_mutex_destroy(&self->mutex);
    free(self->inbox);
    free(self);
    *self_p = NULL;
}

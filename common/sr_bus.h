/* sr_bus - publish and subscribe through busd, in Envelopes, with explicit limits.
 *
 * Frames on the wire: [topic][Envelope]. Publishers connect a PUB socket to busd's XSUB
 * endpoint (SR_BUS_PUB), subscribers a SUB socket to busd's XPUB endpoint (SR_BUS_SUB).
 * Every socket sets SNDHWM/RCVHWM and ZMQ_MAXMSGSIZE; a received message is size-capped,
 * unpacked with a NULL check and its payload decoded by the topic table (sr_topics.h).
 * Anything that does not decode is counted (sr_bus_dropped_total{reason=...}) and dropped.
 * When a server key is configured the sockets speak CURVE to busd.
 *
 * PUB/SUB may lose messages (slow joiners, high-water marks): the bus carries notifications and
 * PostgreSQL holds the truth; see sr_outbox.h for the catch-up that makes delivery whole.
 */
#ifndef SR_BUS_H
#define SR_BUS_H

#include "envelope.pb-c.h"
#include "sr_arena.h"
#include "sr_metrics.h"

#include <stddef.h>
#include <stdint.h>

#define SR_BUS_MAX_MSG_DEFAULT (4 * 1024 * 1024)
#define SR_BUS_HWM_DEFAULT     100000
#define SR_BUS_TOPIC_MAX       128
#define SR_BUS_SCHEMA_VERSION  1

typedef struct {
    const char *curve_server_key; /* busd's public key (Z85, 40 chars); NULL or "" = plain */
    int hwm;                      /* send/receive high-water mark; 0 = SR_BUS_HWM_DEFAULT */
    int64_t max_msg_size;         /* bytes; 0 = SR_BUS_MAX_MSG_DEFAULT */
    sr_metrics_t *metrics;        /* where to count sent/received/dropped; may be NULL */
} sr_bus_opts_t;

typedef struct sr_bus_pub_t sr_bus_pub_t;
typedef struct sr_bus_sub_t sr_bus_sub_t;

/* sr_bus_pub_new - connect a publisher; source names its seq stream, instance the process */
sr_bus_pub_t *sr_bus_pub_new(void *zctx, const char *endpoint, const char *source,
                             const char *instance, const sr_bus_opts_t *opts);
void sr_bus_pub_destroy(sr_bus_pub_t **self_p);
/* sr_bus_publish - wrap payload in an Envelope with the next seq and the time now, and send */
int sr_bus_publish(sr_bus_pub_t *self, const char *topic, const ProtobufCMessage *payload,
                   const char *trace_id) __attribute__((warn_unused_result));
/* sr_bus_publish_packed - send an already packed Envelope as is (the outbox publisher's path) */
int sr_bus_publish_packed(sr_bus_pub_t *self, const char *topic, const uint8_t *envelope,
                          size_t len) __attribute__((warn_unused_result));
/* sr_bus_pub_seq - the seq of the last message sent by sr_bus_publish() */
uint64_t sr_bus_pub_seq(const sr_bus_pub_t *self);
/* sr_bus_pub_connected - 1 while connected to busd (from the socket monitor), else 0 */
int sr_bus_pub_connected(sr_bus_pub_t *self);

/* sr_bus_envelope_pack - the Envelope for payload, packed; caller frees *out */
int sr_bus_envelope_pack(const char *source, const char *instance, uint64_t seq,
                         int64_t event_time_us, const char *trace_id,
                         const ProtobufCMessage *payload, uint8_t **out, size_t *len)
    __attribute__((warn_unused_result));

sr_bus_sub_t *sr_bus_sub_new(void *zctx, const char *endpoint, const sr_bus_opts_t *opts);
void sr_bus_sub_destroy(sr_bus_sub_t **self_p);
int sr_bus_subscribe(sr_bus_sub_t *self, const char *prefix) __attribute__((warn_unused_result));
/* sr_bus_sub_socket - the SUB socket, for sr_loop_add_socket() */
void *sr_bus_sub_socket(sr_bus_sub_t *self);
/* sr_bus_sub_connected - 1 while connected to busd, else 0 */
int sr_bus_sub_connected(sr_bus_sub_t *self);

typedef struct {
    char topic[SR_BUS_TOPIC_MAX];
    Sr__Envelope *envelope;    /* in the arena */
    ProtobufCMessage *payload; /* decoded per sr_topics, in the arena */
} sr_bus_msg_t;

typedef enum {
    SR_BUS_RECV_OK = 0,      /* *msg is filled */
    SR_BUS_RECV_EMPTY = 1,   /* nothing waiting (non-blocking) or the timeout passed */
    SR_BUS_RECV_DROPPED = 2, /* a bad message was counted and dropped; call again */
    SR_BUS_RECV_ERROR = -1,  /* the socket failed */
} sr_bus_recv_t;

/* sr_bus_recv - receive one message, waiting up to timeout_ms (0 = do not wait, -1 = forever).
 * The envelope and payload are allocated in arena; reset it when done with them. */
sr_bus_recv_t sr_bus_recv(sr_bus_sub_t *self, sr_arena_t *arena, sr_bus_msg_t *msg, int timeout_ms);

/* sr_bus_key_problem - NULL when key is a CURVE key (40 Z85 characters), else what is wrong */
const char *sr_bus_key_problem(const char *key);
/* sr_bus_curve_client - make a socket a CURVE client of server_key with a fresh key pair */
int sr_bus_curve_client(void *socket, const char *server_key) __attribute__((warn_unused_result));
/* sr_bus_curve_server - make a socket a CURVE server with the given secret key (Z85) */
int sr_bus_curve_server(void *socket, const char *secret_key) __attribute__((warn_unused_result));
/* sr_bus_discard_rest - read and drop the remaining frames of a malformed multipart message
 * (at most 1024), so the next receive starts at a message boundary */
void sr_bus_discard_rest(void *socket);
/* sr_bus_limit_socket - set HWMs, ZMQ_MAXMSGSIZE and linger on any socket the suite opens */
int sr_bus_limit_socket(void *socket, int hwm, int64_t max_msg_size)
    __attribute__((warn_unused_result));

#endif

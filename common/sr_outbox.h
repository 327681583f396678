/* sr_outbox - state change and event in one transaction; delivery that loses nothing.
 *
 * Every schema has <schema>.outbox(seq, topic, envelope, created_at) and a one-row seq counter,
 * created by sr_migrate(). sr_outbox_put() takes the next seq from the counter row inside the
 * caller's transaction, so seq order is commit order and there are no holes. The Envelope's
 * source is the schema name: the stream is the outbox, whichever instance wrote the row.
 *
 * Publisher: sr_outbox_pub_flush() sends rows past the last published seq in order and records
 * how far it got; with several instances only the one holding the schema's advisory lock sends.
 * A crash between send and record re-sends, and subscribers drop the duplicates.
 *
 * Subscriber (zguide "Clone"): subscribe first, then catch up from the table, then drop
 * duplicates. sr_outbox_sub_deliver() hands each bus message to the callback exactly once, in
 * seq order per source: when the message's seq jumps ahead, the missing rows are read back from
 * the outbox first. sr_outbox_sub_catch_up() reads whatever is past the last seq (at start-up,
 * and from cron so that a lost last message is found too).
 */
#ifndef SR_OUTBOX_H
#define SR_OUTBOX_H

#include "sr_bus.h"
#include "sr_db.h"

#include <stdint.h>

/* sr_outbox_put - write an event row in the caller's open transaction; *seq_out may be NULL */
int sr_outbox_put(sr_db_t *db, const char *schema, const char *instance, const char *topic,
                  const ProtobufCMessage *payload, const char *trace_id, uint64_t *seq_out)
    __attribute__((warn_unused_result));

typedef struct sr_outbox_pub_t sr_outbox_pub_t;
sr_outbox_pub_t *sr_outbox_pub_new(sr_db_t *db, const char *schema, sr_bus_pub_t *bus);
void sr_outbox_pub_destroy(sr_outbox_pub_t **self_p);
/* sr_outbox_pub_flush - send unsent rows in seq order; the number sent, or -1 */
int sr_outbox_pub_flush(sr_outbox_pub_t *self);
/* sr_outbox_pub_prune - delete published rows older than keep_ms, so the table stays bounded;
 * a subscriber further behind than that finds its gap gone (logged as outbox_rows_missing).
 * Only the instance holding the publisher lock prunes. Rows deleted, or -1 */
int sr_outbox_pub_prune(sr_outbox_pub_t *self, int64_t keep_ms);

/* called once per event, in seq order per source; payload decoded per sr_topics (or NULL) */
typedef void(sr_outbox_fn)(void *arg, const char *topic, const Sr__Envelope *envelope,
                           const ProtobufCMessage *payload);

typedef struct sr_outbox_sub_t sr_outbox_sub_t;
sr_outbox_sub_t *sr_outbox_sub_new(sr_db_t *db, sr_outbox_fn *fn, void *arg);
void sr_outbox_sub_destroy(sr_outbox_sub_t **self_p);
/* sr_outbox_sub_follow - deliver events of schema's outbox after after_seq; -1 = from the
 * current end (only what is written from now on) */
int sr_outbox_sub_follow(sr_outbox_sub_t *self, const char *schema, int64_t after_seq)
    __attribute__((warn_unused_result));
/* sr_outbox_sub_deliver - feed one received bus message; 0 ok, -1 when a gap could not be
 * read back (the message is kept back; the next catch-up retries) */
int sr_outbox_sub_deliver(sr_outbox_sub_t *self, const sr_bus_msg_t *msg);
/* sr_outbox_sub_catch_up - deliver every stored row past the last seq of each followed source */
int sr_outbox_sub_catch_up(sr_outbox_sub_t *self);
/* sr_outbox_sub_last - the last seq delivered for schema (0 when none) */
uint64_t sr_outbox_sub_last(const sr_outbox_sub_t *self, const char *schema);

typedef struct {
    uint64_t delivered;  /* events handed to the callback */
    uint64_t duplicates; /* bus messages at or below the last seq, dropped */
    uint64_t recovered;  /* of the delivered, those read back from an outbox table */
} sr_outbox_sub_stats_t;
/* sr_outbox_sub_stats - counts since sr_outbox_sub_new() */
sr_outbox_sub_stats_t sr_outbox_sub_stats(const sr_outbox_sub_t *self);

#endif

/* sr_collector - the client side of the acked batch protocol (proto/collector.proto).
 *
 * A DEALER socket connects to one or more sr-ingestd ROUTER endpoints; ZeroMQ spreads batches
 * round-robin over the connected ones (ZMQ_IMMEDIATE: never onto a peer that is not up). Each
 * batch gets the next batch_seq (from 1) and is kept, packed, until an ack settles it: STORED,
 * SPOOLED (in ingestd's spool file, stored later), DUPLICATE (stored before) and REJECTED
 * (resending will not help) end it; BUSY waits busy_wait_ms
 * and resends; no answer within resend_ms resends. Because ingestd records (collector_id,
 * batch_seq) in the same transaction as the rows, resending is always safe.
 *
 * batch_seq starts at 1 for each sr_collector_new(), so collector_id must be unique per run (e.g.
 * include the host, the pid and the start time) unless the caller wants a rerun with the same id
 * and the same batches to be recognised as duplicates.
 *
 * Not thread-safe: one collector per thread.
 */
#ifndef SR_COLLECTOR_H
#define SR_COLLECTOR_H

#include "collector.pb-c.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sr_collector_t sr_collector_t;

typedef struct {
    int64_t resend_ms;    /* resend a batch with no ack after this long; 0 = 2000 */
    int64_t busy_wait_ms; /* after a BUSY ack, wait this long before resending; 0 = 1000 */
    int hwm;              /* send high-water mark; 0 = 10000 */
} sr_collector_opts_t;

typedef struct {
    uint64_t sent;      /* batches handed to sr_collector_send() */
    uint64_t resent;    /* sends after the first, for any reason */
    uint64_t stored;    /* acks STORED */
    uint64_t spooled;   /* acks SPOOLED */
    uint64_t duplicate; /* acks DUPLICATE */
    uint64_t rejected;  /* acks REJECTED */
    uint64_t busy;      /* acks BUSY */
    uint64_t rows;      /* rows stored or spooled, as the STORED and SPOOLED acks say */
} sr_collector_stats_t;

/* sr_collector_new - connect to endpoints (comma-separated, e.g. "tcp://a:7620,tcp://b:7620");
 * NULL (logged) when an endpoint is malformed or collector_id is empty. opts may be NULL. */
sr_collector_t *sr_collector_new(void *zctx, const char *endpoints, const char *collector_id,
                                 const sr_collector_opts_t *opts);
void sr_collector_destroy(sr_collector_t **self_p);

/* sr_collector_send - set batch->collector_id and batch->batch_seq, pack the batch and send it (or
 * queue it while no ingestd is connected). The batch stays the caller's: the collector keeps its
 * own packed copy until the batch is settled (batch->collector_id then points at the collector's
 * copy of the id, valid until sr_collector_destroy). Returns the batch_seq (> 0). */
uint64_t sr_collector_send(sr_collector_t *self, Sr__CollectorBatch *batch);

/* sr_collector_poll - wait up to timeout_ms for acks, handle every ack that arrived and resend
 * what is due; returns the number of acks handled, -1 when the socket failed */
int sr_collector_poll(sr_collector_t *self, int timeout_ms);

/* sr_collector_wait - poll until no batch is pending or timeout_ms passed; 0 when none is */
int sr_collector_wait(sr_collector_t *self, int timeout_ms) __attribute__((warn_unused_result));

/* sr_collector_pending - batches sent and not settled yet */
size_t sr_collector_pending(const sr_collector_t *self);
const sr_collector_stats_t *sr_collector_stats(const sr_collector_t *self);
/* sr_collector_last_error - the error text of the last REJECTED ack, "" when none */
const char *sr_collector_last_error(const sr_collector_t *self);

#endif

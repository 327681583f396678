/* ingestd_poll - polls each configured room's live data from its platform, without blocking.
 *
 * libcurl multi driven by a short repeating sr_loop timer (curl_multi_perform never blocks), so
 * hundreds of rooms poll concurrently on the daemon's one loop thread. Per room: one request
 * every interval_ms, each bounded by timeout_ms; a transport failure (connection, HTTP status,
 * timeout) is retried up to `retries` times after backoff_ms, doubling; a round that still fails
 * (or a platform error or bad body, which retrying would not fix) waits the interval, doubled
 * per failed round up to max_backoff_ms. A failing room never delays another.
 *
 * Every answer is counted as sr_ingest_poll_total{platform=,result=ok|http_error|
 * platform_error|bad_body|timeout}; failures are complained about once per streak per platform
 * (sr_complaint_t "platform.<name>"), and recovery is logged when the platform's last failing
 * room recovers. Credentials (a header per platform) are sent, never logged.
 *
 * The poller owns its curl handles and its rooms; it does not own storage: each good sample goes
 * to on_sample, which must not add or remove rooms. Parsing is ingestd_platform.h.
 */
#ifndef INGESTD_POLL_H
#define INGESTD_POLL_H

#include "metrics.pb-c.h"
#include "sr_loop.h"
#include "sr_metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ingestd_poll_t ingestd_poll_t;

/* ingestd_sample_fn - one good sample; it and its strings live only during the call */
typedef void(ingestd_sample_fn)(void *arg, const Sr__RoomSample *sample);

typedef struct {
    int64_t interval_ms;    /* between two polls of one room */
    int64_t timeout_ms;     /* one request, connecting included */
    int retries;            /* quick retries of a transport failure within one round */
    int64_t backoff_ms;     /* delay before the first retry; doubles per retry */
    int64_t max_backoff_ms; /* cap of the wait after failed rounds (at least interval_ms) */
    size_t max_body;        /* a larger answer is a bad body; all but retries and backoff_ms
                               must be > 0 */
} ingestd_poll_opts_t;

/* ingestd_poll_new - a poller on loop, counting into metrics; nothing polls until rooms are
 * added. Both loop and metrics must outlive it. */
ingestd_poll_t *ingestd_poll_new(sr_loop_t *loop, sr_metrics_t *metrics,
                                 const ingestd_poll_opts_t *opts, ingestd_sample_fn *on_sample,
                                 void *arg);
void ingestd_poll_destroy(ingestd_poll_t **self_p);

/* ingestd_poll_platform - where platform ("channels", "douyin", "kuaishou") is polled, and the
 * credential header ("Authorization: Bearer ...", "access-token: ...") or NULL; both copied.
 * -1 (logged, credential not shown) for an unknown platform, a malformed header, or a platform
 * that has rooms (remove them first). */
int ingestd_poll_platform(ingestd_poll_t *self, const char *platform, const char *base_url,
                          const char *auth_header) __attribute__((warn_unused_result));

/* ingestd_poll_add_room - poll room_id on platform from now on, first at the next tick; -1
 * (logged) when the platform is unknown or not configured, or the room is already polled */
int ingestd_poll_add_room(ingestd_poll_t *self, const char *platform, const char *room_id)
    __attribute__((warn_unused_result));
/* ingestd_poll_remove_room - stop polling it, abandoning a request in flight; -1 if unknown */
int ingestd_poll_remove_room(ingestd_poll_t *self, const char *platform, const char *room_id)
    __attribute__((warn_unused_result));
size_t ingestd_poll_rooms(const ingestd_poll_t *self);

#endif

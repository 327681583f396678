/* sr_admin - each daemon's small admin HTTP endpoint: /healthz and /metrics.
 *
 * libmicrohttpd serves it from its own thread. /metrics renders the registry (Prometheus text).
 * /healthz answers 200 {"status":"ok","checks":{"db":"ok","bus":"ok"}} when every registered
 * check is up, else 503 with "down: <detail>" for the failing ones. The daemon's loop thread
 * runs the real checks (in its cron) and reports them with sr_admin_set_check(), so a health
 * probe never blocks on the database. Anything else answers 404 JSON.
 */
#ifndef SR_ADMIN_H
#define SR_ADMIN_H

#include "sr_metrics.h"

#include <stdint.h>

typedef struct sr_admin_t sr_admin_t;

/* sr_admin_start - listen on addr:port (port 0 picks a free one); NULL if it cannot bind */
sr_admin_t *sr_admin_start(const char *addr, uint16_t port, sr_metrics_t *metrics);
void sr_admin_stop(sr_admin_t **self_p);
uint16_t sr_admin_port(const sr_admin_t *self);
/* sr_admin_set_check - set (or add) a named check; detail is copied; thread-safe */
void sr_admin_set_check(sr_admin_t *self, const char *name, int ok, const char *detail);
/* sr_admin_heartbeat - the loop is alive; from the first call on, /healthz answers 503 with
 * "loop":"down: no heartbeat for N ms" once the last call is older than max_age_ms */
void sr_admin_heartbeat(sr_admin_t *self, int64_t max_age_ms);

#endif

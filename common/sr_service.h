/* sr_service - the skeleton every daemon runs in; a daemon's main() is one call to it.
 *
 * sr_service_main() owns argv (--help, --version, --config-markdown, and the daemon's own
 * commands such as `sr-busd keygen`), configuration (the common
 * table below plus the daemon's own), logging, the database connection and migrations of the
 * daemon's schema, the bus publisher and its outbox publisher, the admin HTTP endpoint, signals
 * and the one poll loop with a periodic cron. The daemon hands it callbacks:
 *
 *   init   after all of the above is up: open sockets, add them to the loop, register metrics;
 *   cron   every SR_CRON_INTERVAL (housekeeping, health, catch-up);
 *   drain  after the first SIGTERM/SIGINT, called every loop tick until it returns 1 (drained)
 *          or SR_DRAIN_TIMEOUT passes; a second signal exits at once;
 *   fini   last, to free what init made.
 *
 * Exit status: 0 after a clean stop; 1 when the environment is broken at start-up (port taken,
 * database unreachable after retries) or when a second signal or the drain timeout cut the
 * drain short; 2 for a bad configuration value or argument.
 */
#ifndef SR_SERVICE_H
#define SR_SERVICE_H

#include "sr_admin.h"
#include "sr_bus.h"
#include "sr_config.h"
#include "sr_db.h"
#include "sr_loop.h"
#include "sr_metrics.h"
#include "sr_migrate.h"
#include "sr_outbox.h"

#include <stdint.h>

/* what a daemon needs the skeleton to set up for it */
enum {
    SR_NEEDS_DB = 1 << 0,  /* connect SR_DB_URL, migrate the schema, health-check it */
    SR_NEEDS_PUB = 1 << 1, /* a bus publisher on SR_BUS_PUB (and an outbox publisher with DB) */
    SR_NEEDS_SUB = 1 << 2, /* the SR_BUS_SUB setting, for a daemon that subscribes itself */
    SR_NEEDS_BUS = 1 << 3, /* only the bus limits, for a daemon with its own sockets (busd) */
};

/* the settings every daemon shares, from the common configuration table */
typedef struct {
    char *instance;         /* SR_INSTANCE */
    char *log_level;        /* SR_LOG_LEVEL */
    char *admin_addr;       /* SR_ADMIN_ADDR */
    int64_t admin_port;     /* SR_ADMIN_PORT */
    char *db_url;           /* SR_DB_URL */
    int64_t db_attempts;    /* SR_DB_CONNECT_ATTEMPTS */
    char *bus_pub;          /* SR_BUS_PUB */
    char *bus_sub;          /* SR_BUS_SUB */
    char *bus_server_key;   /* SR_BUS_SERVER_KEY */
    int64_t bus_hwm;        /* SR_BUS_HWM */
    int64_t bus_max_msg;    /* SR_BUS_MAX_MSG */
    int64_t cron_ms;        /* SR_CRON_INTERVAL */
    int64_t drain_ms;       /* SR_DRAIN_TIMEOUT */
    int64_t outbox_keep_ms; /* SR_OUTBOX_RETENTION */
    char *config_file;      /* SR_CONFIG_FILE (read by sr_config_load itself) */
} sr_common_config_t;

typedef struct sr_service_t sr_service_t;

typedef struct {
    const char *name;                      /* "busd": binary sr-busd, logs service=busd */
    const char *summary;                   /* one line for --help */
    const char *commands;                  /* usage of extra commands ("keygen"), or NULL */
    int (*command)(int argc, char **argv); /* runs `sr-NAME COMMAND ...`; returns exit status */
    unsigned needs;                        /* SR_NEEDS_* */
    uint16_t admin_port;                   /* default SR_ADMIN_PORT */
    const char *schema;                    /* schema the daemon owns (SR_NEEDS_DB), else NULL */
    const sr_migration_t *migrations; /* ended by {0, NULL, NULL}; deploy/embed-sql.sh makes it */
    const sr_config_entry_t *config;  /* the daemon's own table, or NULL */
    size_t config_size;               /* sizeof the daemon's config struct */
    /* check_config - settings that are each valid but wrong (a malformed key, a pair that
     * conflicts): 0 ok, -1 with a message naming the variable in err; start-up exits 2 */
    int (*check_config)(const void *config, char *err, size_t errlen);
    int (*init)(sr_service_t *svc); /* 0 ok; -1 stops start-up with exit 1 */
    void (*cron)(sr_service_t *svc);
    int (*drain)(sr_service_t *svc); /* 1 when drained; NULL = nothing to drain */
    void (*fini)(sr_service_t *svc);
} sr_service_def_t;

int sr_service_main(int argc, char **argv, const sr_service_def_t *def);

/* accessors for callbacks; none of the results is the caller's to free */
const sr_common_config_t *sr_service_common(const sr_service_t *svc);
void *sr_service_config(sr_service_t *svc); /* the daemon's config struct */
const char *sr_service_instance(const sr_service_t *svc);
void *sr_service_zctx(sr_service_t *svc);
sr_loop_t *sr_service_loop(sr_service_t *svc);
sr_metrics_t *sr_service_metrics(sr_service_t *svc);
sr_admin_t *sr_service_admin(sr_service_t *svc);
sr_db_t *sr_service_db(sr_service_t *svc);       /* NULL without SR_NEEDS_DB */
sr_bus_pub_t *sr_service_pub(sr_service_t *svc); /* NULL without SR_NEEDS_PUB */
/* sr_service_outbox - the publisher of the schema's outbox (SR_NEEDS_DB + SR_NEEDS_PUB + a
 * schema), flushed by the cron; call sr_outbox_pub_flush() after a commit for low latency */
sr_outbox_pub_t *sr_service_outbox(sr_service_t *svc);
sr_bus_opts_t sr_service_bus_opts(sr_service_t *svc);
void sr_service_set_state(sr_service_t *svc, void *state);
void *sr_service_state(sr_service_t *svc);
/* sr_service_draining - 1 after the first stop signal */
int sr_service_draining(const sr_service_t *svc);

#endif

/* busd - the bus forwarder: publishers connect to its XSUB side, subscribers to its XPUB side.
 *
 * busd is stateless: it owns no schema and keeps no messages. It counts what it forwards and
 * passes subscriptions upstream so publishers filter at the source. Slow subscribers lose
 * messages at their own high-water mark (libzmq drops per subscriber); they see the gap in the
 * Envelope seq and read the rest from the outbox (common/sr_outbox.h).
 *
 * Files: main.c (the definition handed to sr_service_main), busd_forward.c (sockets and
 * counters), busd_commands.c (`sr-busd keygen`, `sr-busd topics`).
 */
#ifndef BUSD_H
#define BUSD_H

#include "sr_service.h"

typedef struct {
    char *frontend;     /* SR_BUSD_FRONTEND: XSUB bind, publishers connect here */
    char *backend;      /* SR_BUSD_BACKEND: XPUB bind, subscribers connect here */
    char *curve_secret; /* SR_BUSD_CURVE_SECRET: CURVE secret key (Z85), empty = plain */
} busd_config_t;

extern const sr_config_entry_t busd_config[];

int busd_check_config(const void *config, char *err, size_t errlen);
int busd_init(sr_service_t *svc);
void busd_fini(sr_service_t *svc);
int busd_command(int argc, char **argv);

#endif

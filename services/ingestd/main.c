/* sr-ingestd - live-room metrics, orders and interactions from collectors into PostgreSQL. */
#include "ingestd.h"

#include <stddef.h>

static const sr_service_def_t ingestd = {
    .name = "ingestd",
    .summary = "Stores collector batches (samples, orders, interactions) in PostgreSQL by COPY.",
    .needs = SR_NEEDS_DB | SR_NEEDS_PUB,
    .admin_port = 7610,
    .schema = "metrics",
    .migrations = ingestd_migrations,
    .config = ingestd_config,
    .config_size = sizeof(ingestd_config_t),
    .check_config = ingestd_check_config,
    .init = ingestd_init,
    .cron = ingestd_cron,
    .drain = ingestd_drain,
    .fini = ingestd_fini,
};

int main(int argc, char **argv)
{
    return sr_service_main(argc, argv, &ingestd);
}

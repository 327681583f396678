/* sr-gatewayd - the HTTP/JSON API for regional teams and HQ (see gatewayd.h). */
#include "gatewayd.h"

#include <stddef.h>

static const sr_service_def_t gatewayd = {
    .name = "gatewayd",
    .summary = "Serves the HTTP/JSON API: accounts, roles, regions, audit, live events, and the "
               "routes of the owning daemons.",
    .commands = "bootstrap-admin NAME | permissions | routes",
    .command = gatewayd_command,
    .needs = SR_NEEDS_DB | SR_NEEDS_PUB | SR_NEEDS_SUB,
    .admin_port = 7650,
    .schema = "access",
    .migrations = gatewayd_migrations,
    .config = gatewayd_config,
    .config_size = sizeof(gatewayd_config_t),
    .check_config = gatewayd_check_config,
    .init = gatewayd_init,
    .drain = gatewayd_drain,
    .fini = gatewayd_fini,
};

int main(int argc, char **argv)
{
    return sr_service_main(argc, argv, &gatewayd);
}

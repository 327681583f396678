/* sr-busd - the XSUB/XPUB forwarder every daemon publishes and subscribes through. */
#include "busd.h"

#include <stddef.h>

static const sr_service_def_t busd = {
    .name = "busd",
    .summary = "Forwards every bus message from publishers (XSUB) to subscribers (XPUB).",
    .commands = "keygen | topics   (a CURVE key pair | the bus topic table)",
    .command = busd_command,
    .needs = SR_NEEDS_BUS,
    .admin_port = 7600,
    .config = busd_config,
    .config_size = sizeof(busd_config_t),
    .check_config = busd_check_config,
    .init = busd_init,
    .fini = busd_fini,
};

int main(int argc, char **argv)
{
    return sr_service_main(argc, argv, &busd);
}

/* sr-simd - the platform simulator: live rooms in Channels, Douyin and Kuaishou JSON. */
#include "simd.h"

#include <stddef.h>

static const sr_service_def_t simd = {
    .name = "simd",
    .summary = "Plays live rooms on WeChat Channels, Douyin and Kuaishou over HTTP, in each "
               "platform's own JSON, deterministic from a seed.",
    .needs = 0,
    .admin_port = 7690,
    .config = simd_config,
    .config_size = sizeof(simd_config_t),
    .check_config = simd_check_config,
    .init = simd_init,
    .fini = simd_fini,
};

int main(int argc, char **argv)
{
    return sr_service_main(argc, argv, &simd);
}

/* sr-taskd - campaigns, shows, tasks, SOP templates, recurring tasks and reminders. */
#include "taskd.h"

#include <stddef.h>

static const sr_service_def_t taskd = {
    .name = "taskd",
    .summary = "Plans campaigns: projects, shows, tasks, SOP templates, recurring tasks, "
               "reminders (RPC tasks.*).",
    .needs = SR_NEEDS_DB | SR_NEEDS_PUB,
    .admin_port = 7660,
    .schema = "tasks",
    .migrations = taskd_migrations,
    .config = taskd_config,
    .config_size = sizeof(taskd_config_t),
    .check_config = taskd_check_config,
    .init = taskd_init,
    .cron = taskd_cron,
    .fini = taskd_fini,
};

int main(int argc, char **argv)
{
    return sr_service_main(argc, argv, &taskd);
}

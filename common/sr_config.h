/* sr_config - configuration from SR_* environment variables, one table per daemon.
 *
 * Each daemon describes its settings in one static table of sr_config_entry_t; the values land
 * in the daemon's own config struct at each entry's offset. Sources, later wins: the entry's
 * default, the file named by SR_CONFIG_FILE (lines "SR_NAME=value", # comments), the environment.
 * A bad value (not a number, out of bounds, unknown unit, required but unset) stops start-up
 * with a message naming the variable; sr_service_main() exits 2 on it. `--help` prints the table.
 *
 * Strings land as char * owned by the config (sr_config_free() releases them); numbers as
 * int64_t; booleans as int. Secrets are strings that are never printed or logged.
 */
#ifndef SR_CONFIG_H
#define SR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    SR_CFG_STR,      /* char * */
    SR_CFG_SECRET,   /* char *, shown as "(set)" */
    SR_CFG_INT,      /* int64_t, within [min, max] */
    SR_CFG_BOOL,     /* int: 1/0 from true/false/yes/no/on/off/1/0 */
    SR_CFG_DURATION, /* int64_t milliseconds from "250ms", "5s", "2m", "1h" or a bare number of ms
                      */
    SR_CFG_SIZE,     /* int64_t bytes from "512", "64k", "16M", "1G" */
} sr_cfg_type_t;

typedef struct {
    const char *env; /* SR_DB_URL; NULL ends the table */
    sr_cfg_type_t type;
    const char *def;  /* default as text; NULL = required, "" = empty string */
    int64_t min, max; /* bounds for numbers, inclusive; both 0 = unbounded */
    size_t offset;    /* offsetof(daemon config struct, field) */
    const char *help; /* one line */
} sr_config_entry_t;

/* sr_config_load - fill base from table; 0 ok, -1 with a message naming the variable in err */
int sr_config_load(const sr_config_entry_t *table, void *base, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* sr_config_free - free the strings that sr_config_load put into base */
void sr_config_free(const sr_config_entry_t *table, void *base);
/* sr_config_print_help - the table as aligned text: variable, type, default, bounds, help */
void sr_config_print_help(FILE *out, const sr_config_entry_t *table);
/* sr_config_print_markdown - the table as Markdown rows, as the README shows it */
void sr_config_print_markdown(FILE *out, const sr_config_entry_t *table);
/* sr_config_log - one info line with every effective value; secrets as "(set)" or "(unset)" */
void sr_config_log(const sr_config_entry_t *table, const void *base);

#endif

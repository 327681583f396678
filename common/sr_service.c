/* sr_service - the daemon skeleton: argv, config, logging, database, bus, admin HTTP, signals,
 * the loop and its cron. A daemon's main.c fills an sr_service_def_t and calls
 * sr_service_main(); see sr_service.h for the callbacks and exit statuses.
 *
 * Configuration is one table: the common rows below (those the daemon needs) followed by the
 * daemon's own, whose offsets are shifted past sr_common_config_t so that one sr_config_load()
 * reads both and one --help prints both.
 */
#include "sr_service.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <signal.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#ifndef SR_VERSION
#define SR_VERSION "dev"
#endif

#define COMMON_SIZE       ((sizeof(sr_common_config_t) + 15) & ~(size_t)15)
#define DRAIN_TICK_MS     50
#define HEARTBEAT_ROUNDS  3 /* cron rounds missed before /healthz calls the loop stuck */
#define PRUNE_INTERVAL_MS (60 * 60 * 1000)

struct sr_service_t {
    const sr_service_def_t *def;
    sr_config_entry_t *table; /* common rows + the daemon's, one table */
    void *config;             /* sr_common_config_t, then the daemon's struct */
    void *zctx;
    sr_loop_t *loop;
    sr_metrics_t *metrics;
    sr_admin_t *admin;
    sr_db_t *db;
    sr_bus_pub_t *pub;
    sr_outbox_pub_t *outbox;
    void *state;
    int draining;
    int64_t drain_deadline_ms;
    int exit_code;
    int init_called;
    int64_t next_prune_ms;
    char instance[128];
    sr_counter_t *cron_runs;
    sr_complaint_t bus_complaint;
};

#define OFF(field) offsetof(sr_common_config_t, field)

enum {
    ROW_ALL = 0,
    ROW_DB = SR_NEEDS_DB,
    ROW_PUB = SR_NEEDS_PUB,
    ROW_SUB = SR_NEEDS_SUB,
    ROW_CLIENT = SR_NEEDS_PUB | SR_NEEDS_SUB,
    ROW_LIMITS = SR_NEEDS_PUB | SR_NEEDS_SUB | SR_NEEDS_BUS,
    ROW_OUTBOX = SR_NEEDS_DB | SR_NEEDS_PUB, /* both bits and a schema: see s_build_table */
};

typedef struct {
    unsigned needs; /* which daemons get the row: 0 = all, else any of these bits */
    sr_config_entry_t entry;
} common_row_t;

static const common_row_t s_common_rows[] = {
    {ROW_ALL,
     {"SR_INSTANCE", SR_CFG_STR, "", 0, 0, OFF(instance),
      "instance name in logs and envelopes; empty = NAME-HOSTNAME"}},
    {ROW_ALL,
     {"SR_LOG_LEVEL", SR_CFG_STR, "info", 0, 0, OFF(log_level), "debug, info, warn or error"}},
    {ROW_ALL,
     {"SR_ADMIN_ADDR", SR_CFG_STR, "127.0.0.1", 0, 0, OFF(admin_addr),
      "address of the admin HTTP endpoint (/healthz, /metrics)"}},
    {ROW_ALL,
     {"SR_ADMIN_PORT", SR_CFG_INT, NULL, 0, 65535, OFF(admin_port),
      "port of the admin HTTP endpoint; 0 picks a free one"}},
    {ROW_DB,
     {"SR_DB_URL", SR_CFG_SECRET, "postgresql://showrunner@127.0.0.1:7432/showrunner", 0, 0,
      OFF(db_url), "PostgreSQL connection URL (libpq syntax); never logged"}},
    {ROW_DB,
     {"SR_DB_CONNECT_ATTEMPTS", SR_CFG_INT, "30", 1, 100000, OFF(db_attempts),
      "connection attempts at start-up, with doubling back-off up to 5 s"}},
    {ROW_PUB,
     {"SR_BUS_PUB", SR_CFG_STR, "tcp://127.0.0.1:7601", 0, 0, OFF(bus_pub),
      "busd endpoint publishers connect to (its XSUB side)"}},
    {ROW_SUB,
     {"SR_BUS_SUB", SR_CFG_STR, "tcp://127.0.0.1:7602", 0, 0, OFF(bus_sub),
      "busd endpoint subscribers connect to (its XPUB side)"}},
    {ROW_CLIENT,
     {"SR_BUS_SERVER_KEY", SR_CFG_STR, "", 0, 0, OFF(bus_server_key),
      "busd's CURVE public key (Z85); empty = plain TCP"}},
    {ROW_LIMITS,
     {"SR_BUS_HWM", SR_CFG_INT, "100000", 1, 100000000, OFF(bus_hwm),
      "high-water mark of every bus socket, in messages"}},
    {ROW_LIMITS,
     {"SR_BUS_MAX_MSG", SR_CFG_SIZE, "4M", 1024, 268435456, OFF(bus_max_msg),
      "largest bus or RPC message accepted (ZMQ_MAXMSGSIZE)"}},
    {ROW_OUTBOX,
     {"SR_OUTBOX_RETENTION", SR_CFG_DURATION, "168h", 3600000, 8760LL * 3600000,
      OFF(outbox_keep_ms), "published outbox events older than this are deleted"}},
    {ROW_ALL,
     {"SR_CRON_INTERVAL", SR_CFG_DURATION, "1s", 10, 3600000, OFF(cron_ms),
      "period of housekeeping: health checks, outbox flush, the daemon's cron"}},
    {ROW_ALL,
     {"SR_DRAIN_TIMEOUT", SR_CFG_DURATION, "10s", 0, 600000, OFF(drain_ms),
      "after the first SIGTERM, how long to finish work before exiting"}},
    {ROW_ALL,
     {"SR_CONFIG_FILE", SR_CFG_STR, "", 0, 0, OFF(config_file),
      "optional file of SR_NAME=value lines; the environment wins over it"}},
};

/* s_build_table - the common rows this daemon needs, then its own rows shifted past them */
static sr_config_entry_t *s_build_table(const sr_service_def_t *def, char *admin_port_default)
{
    size_t nown = 0;
    while (def->config && def->config[nown].env)
        nown++;
    size_t ncommon = sizeof s_common_rows / sizeof s_common_rows[0];
    sr_config_entry_t *table = sr_calloc(ncommon + nown + 1, sizeof *table);
    size_t n = 0;
    for (size_t i = 0; i < ncommon; i++) {
        unsigned needs = s_common_rows[i].needs;
        int wanted = needs == ROW_OUTBOX ? (def->needs & needs) == needs && def->schema
                                         : !needs || (needs & def->needs);
        if (!wanted)
            continue;
        table[n] = s_common_rows[i].entry;
        if (strcmp(table[n].env, "SR_ADMIN_PORT") == 0)
            table[n].def = admin_port_default;
        n++;
    }
    for (size_t i = 0; i < nown; i++) {
        table[n] = def->config[i];
        table[n].offset += COMMON_SIZE;
        n++;
    }
    return table;
}

static void s_usage(FILE *out, const sr_service_def_t *def, const sr_config_entry_t *table)
{
    fprintf(out, "usage: sr-%s [--help | --version | --config-markdown]\n", def->name);
    if (def->commands)
        fprintf(out, "       sr-%s %s\n", def->name, def->commands);
    fprintf(out, "\n%s\n\nConfigured only by environment variables (or SR_CONFIG_FILE):\n\n",
            def->summary);
    sr_config_print_help(out, table);
}

/* s_parse_args - 0 to run, otherwise the exit status + 1 of an answered or refused argv */
static int s_parse_args(int argc, char **argv, const sr_service_def_t *def,
                        const sr_config_entry_t *table)
{
    if (argc <= 1)
        return 0;
    const char *arg = argv[1];
    if (arg[0] != '-' && def->command)
        return def->command(argc - 1, argv + 1) + 1;
    int help = strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
    int version = strcmp(arg, "--version") == 0;
    int markdown = strcmp(arg, "--config-markdown") == 0;
    if (!help && !version && !markdown) {
        fprintf(stderr, "sr-%s: unknown argument '%s'\n", def->name, arg);
        s_usage(stderr, def, table);
        return 3;
    }
    if (argc > 2) {
        fprintf(stderr, "sr-%s: unexpected argument '%s' after %s\n", def->name, argv[2], arg);
        return 3;
    }
    if (help)
        s_usage(stdout, def, table);
    else if (version)
        printf("sr-%s %s\n", def->name, SR_VERSION);
    else
        sr_config_print_markdown(stdout, table);
    return 1;
}

/* s_drain_tick - while draining, give the daemon its drain() until done or out of time */
static void s_drain_tick(void *arg)
{
    sr_service_t *svc = arg;
    if (!svc->draining)
        return;
    int done = svc->def->drain ? svc->def->drain(svc) : 1;
    if (done) {
        sr_info("drained", "");
        sr_loop_stop(svc->loop);
    } else if (sr_clock_mono_ms() >= svc->drain_deadline_ms) {
        sr_warn("drain_timeout", "timeout_ms=%lld", (long long)sr_service_common(svc)->drain_ms);
        svc->exit_code = 1;
        sr_loop_stop(svc->loop);
    }
}

/* Signals go through a self-pipe rather than a blocked mask and signalfd: libmicrohttpd and
 * libzmq start threads of their own, and a process-directed SIGTERM may land on any of them.
 * Before the loop runs there is nothing to drain, so a stop signal ends start-up at once
 * (database retries and a migration lock wait included). */
static int s_signal_pipe[2] = {-1, -1};
static volatile sig_atomic_t s_loop_running;

static void s_signal_handler(int sig)
{
    if (!s_loop_running) {
        static const char line[] = "level=warn event=stopped_during_start_up exit=1\n";
        ssize_t w = write(2, line, sizeof line - 1);
        (void)w;
        _exit(1);
    }
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(s_signal_pipe[1], &b, 1);
    (void)w;
}

static int s_catch_signals(void)
{
    if (pipe2(s_signal_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    struct sigaction sa = {.sa_handler = s_signal_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    signal(SIGPIPE, SIG_IGN);
    return sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ? -1 : 0;
}

static void s_on_signal(void *arg)
{
    sr_service_t *svc = arg;
    unsigned char signo;
    while (read(s_signal_pipe[0], &signo, 1) == 1) {
        if (svc->draining) {
            sr_warn("stop_now", "signal=%u", signo);
            svc->exit_code = 1;
            sr_loop_stop(svc->loop);
            return;
        }
        svc->draining = 1;
        svc->drain_deadline_ms = sr_clock_mono_ms() + sr_service_common(svc)->drain_ms;
        if (sr_loop_add_timer(svc->loop, DRAIN_TICK_MS, 1, s_drain_tick, svc) <= 0)
            sr_loop_stop(svc->loop);
        sr_info("draining", "signal=%u timeout_ms=%lld", signo,
                (long long)sr_service_common(svc)->drain_ms);
    }
}

/* s_cron - health of the shared dependencies, outbox delivery, then the daemon's own cron */
static void s_cron(void *arg)
{
    sr_service_t *svc = arg;
    sr_counter_inc(svc->cron_runs);
    sr_admin_heartbeat(svc->admin, HEARTBEAT_ROUNDS * sr_service_common(svc)->cron_ms + 1000);
    if (svc->db) {
        int up = sr_db_ok(svc->db) && sr_db_ping(svc->db) == 0;
        sr_admin_set_check(svc->admin, "db", up, up ? "" : sr_db_error(svc->db));
    }
    if (svc->pub) {
        int up = sr_bus_pub_connected(svc->pub);
        sr_admin_set_check(svc->admin, "bus", up, up ? "" : "not connected to busd");
        if (up)
            sr_recovered(&svc->bus_complaint);
        else
            sr_complain(&svc->bus_complaint, "endpoint=%s", sr_service_common(svc)->bus_pub);
    }
    if (svc->outbox && sr_outbox_pub_flush(svc->outbox) < 0)
        sr_warn("outbox_flush_failed", "schema=%s", svc->def->schema);
    if (svc->outbox && sr_clock_mono_ms() >= svc->next_prune_ms) {
        svc->next_prune_ms = sr_clock_mono_ms() + PRUNE_INTERVAL_MS;
        (void)sr_outbox_pub_prune(svc->outbox, sr_service_common(svc)->outbox_keep_ms);
    }
    if (svc->def->cron)
        svc->def->cron(svc);
}

/* s_count_migrations - rows of the daemon's table before its {0, NULL, NULL} end */
static size_t s_count_migrations(const sr_service_def_t *def)
{
    size_t n = 0;
    while (def->migrations && def->migrations[n].version != 0)
        n++;
    return n;
}

/* s_start - everything up to and including the daemon's init; 0 or an exit status */
static int s_start(sr_service_t *svc)
{
    const sr_service_def_t *def = svc->def;
    const sr_common_config_t *cc = sr_service_common(svc);
    svc->zctx = zmq_ctx_new();
    svc->loop = sr_loop_new();
    svc->metrics = sr_metrics_new();
    if (!svc->zctx) {
        sr_error("start_failed", "what=\"zmq context\"");
        return 1;
    }
    char labels[256];
    snprintf(labels, sizeof labels, "service=\"%s\",instance=\"%s\",version=\"%s\"", def->name,
             svc->instance, SR_VERSION);
    sr_gauge_set(sr_metrics_gauge(svc->metrics, "sr_service_info", labels,
                                  "constant 1, labelled with what runs"),
                 1);
    sr_gauge_set(sr_metrics_gauge(svc->metrics, "sr_service_start_time_seconds", NULL,
                                  "Unix time the process started"),
                 (double)sr_clock_now_us() / 1e6);
    svc->cron_runs = sr_metrics_counter(svc->metrics, "sr_service_cron_runs_total", NULL,
                                        "housekeeping rounds run");
    svc->admin = sr_admin_start(cc->admin_addr, (uint16_t)cc->admin_port, svc->metrics);
    if (!svc->admin)
        return 1;
    if (def->needs & SR_NEEDS_DB) {
        /* /healthz says 503 until the schema is migrated, so nobody takes a daemon still
         * connecting for a working one */
        sr_admin_set_check(svc->admin, "db", 0, "connecting");
        char app[80];
        snprintf(app, sizeof app, "sr-%s", def->name);
        svc->db = sr_db_connect(cc->db_url, app, (int)cc->db_attempts, 5000);
        if (!svc->db) {
            sr_error("db_unreachable", "attempts=%lld", (long long)cc->db_attempts);
            return 1;
        }
        if (def->schema &&
            sr_migrate(svc->db, def->schema, def->migrations, s_count_migrations(def)) < 0)
            return 1;
        sr_admin_set_check(svc->admin, "db", 1, "");
    }
    if (def->needs & SR_NEEDS_PUB) {
        sr_bus_opts_t opts = sr_service_bus_opts(svc);
        svc->pub = sr_bus_pub_new(svc->zctx, cc->bus_pub, svc->instance, svc->instance, &opts);
        if (!svc->pub)
            return 1;
        sr_admin_set_check(svc->admin, "bus", 0, "connecting");
        if (svc->db && def->schema)
            svc->outbox = sr_outbox_pub_new(svc->db, def->schema, svc->pub);
    }
    if (sr_loop_add_timer(svc->loop, cc->cron_ms, 1, s_cron, svc) <= 0 ||
        sr_loop_add_fd(svc->loop, s_signal_pipe[0], s_on_signal, svc) < 0) {
        sr_error("start_failed", "what=\"timers or signals\"");
        return 1;
    }
    svc->init_called = 1;
    if (def->init && def->init(svc) < 0) {
        sr_error("init_failed", "");
        return 1;
    }
    sr_info("started", "admin=%s:%u pid=%d", cc->admin_addr, sr_admin_port(svc->admin),
            (int)getpid());
    return 0;
}

static void s_shutdown(sr_service_t *svc)
{
    if (svc->def->fini && svc->init_called)
        svc->def->fini(svc);
    sr_outbox_pub_destroy(&svc->outbox);
    sr_bus_pub_destroy(&svc->pub);
    sr_db_destroy(&svc->db);
    sr_admin_stop(&svc->admin);
    sr_metrics_destroy(&svc->metrics);
    sr_loop_destroy(&svc->loop);
    if (svc->zctx)
        zmq_ctx_term(svc->zctx);
}

/* s_check_common - the common settings that need more than their table row: the log level's
 * name and the bus key's shape */
static int s_check_common(const sr_common_config_t *cc, sr_log_level_t *level, char *err,
                          size_t errlen)
{
    if (sr_log_level_parse(cc->log_level, level) < 0) {
        snprintf(err, errlen, "SR_LOG_LEVEL: \"%s\" is not debug, info, warn or error",
                 cc->log_level);
        return -1;
    }
    const char *problem =
        cc->bus_server_key && cc->bus_server_key[0] ? sr_bus_key_problem(cc->bus_server_key) : NULL;
    if (problem) {
        snprintf(err, errlen, "SR_BUS_SERVER_KEY: %s", problem);
        return -1;
    }
    return 0;
}

int sr_service_main(int argc, char **argv, const sr_service_def_t *def)
{
    char port_default[8];
    snprintf(port_default, sizeof port_default, "%u", def->admin_port);
    sr_service_t svc = {.def = def, .bus_complaint = SR_COMPLAINT_INIT("bus")};
    svc.table = s_build_table(def, port_default);
    int rc = s_parse_args(argc, argv, def, svc.table);
    if (rc) {
        free(svc.table);
        return rc - 1;
    }
    sr_log_init(def->name, NULL);
    svc.config = sr_calloc(1, COMMON_SIZE + def->config_size);
    char err[512];
    sr_log_level_t level;
    if (sr_config_load(svc.table, svc.config, err, sizeof err) < 0 ||
        s_check_common(sr_service_common(&svc), &level, err, sizeof err) < 0 ||
        (def->check_config && def->check_config(sr_service_config(&svc), err, sizeof err) < 0)) {
        fprintf(stderr, "sr-%s: configuration: %s\n", def->name, err);
        sr_config_free(svc.table, svc.config);
        free(svc.config);
        free(svc.table);
        return 2;
    }
    const sr_common_config_t *cc = sr_service_common(&svc);
    if (cc->instance[0]) {
        snprintf(svc.instance, sizeof svc.instance, "%s", cc->instance);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(svc.instance, sizeof svc.instance, "%s-%s", def->name, host);
    }
    sr_log_init(def->name, svc.instance);
    sr_log_set_level(level);
    sr_config_log(svc.table, svc.config);

    rc = s_catch_signals() < 0 ? 1 : s_start(&svc);
    if (rc == 0) {
        s_loop_running = 1;
        rc = sr_loop_run(svc.loop) < 0 ? 1 : svc.exit_code;
    }
    s_shutdown(&svc);
    sr_info("stopped", "exit=%d", rc);
    sr_config_free(svc.table, svc.config);
    free(svc.config);
    free(svc.table);
    return rc;
}

const sr_common_config_t *sr_service_common(const sr_service_t *svc)
{
    return svc->config;
}

void *sr_service_config(sr_service_t *svc)
{
    return (char *)svc->config + COMMON_SIZE;
}

const char *sr_service_instance(const sr_service_t *svc)
{
    return svc->instance;
}

void *sr_service_zctx(sr_service_t *svc)
{
    return svc->zctx;
}

sr_loop_t *sr_service_loop(sr_service_t *svc)
{
    return svc->loop;
}

sr_metrics_t *sr_service_metrics(sr_service_t *svc)
{
    return svc->metrics;
}

sr_admin_t *sr_service_admin(sr_service_t *svc)
{
    return svc->admin;
}

sr_db_t *sr_service_db(sr_service_t *svc)
{
    return svc->db;
}

sr_bus_pub_t *sr_service_pub(sr_service_t *svc)
{
    return svc->pub;
}

sr_outbox_pub_t *sr_service_outbox(sr_service_t *svc)
{
    return svc->outbox;
}

sr_bus_opts_t sr_service_bus_opts(sr_service_t *svc)
{
    const sr_common_config_t *cc = sr_service_common(svc);
    return (sr_bus_opts_t){.curve_server_key = cc->bus_server_key,
                           .hwm = (int)cc->bus_hwm,
                           .max_msg_size = cc->bus_max_msg,
                           .metrics = svc->metrics};
}

void sr_service_set_state(sr_service_t *svc, void *state)
{
    svc->state = state;
}

void *sr_service_state(sr_service_t *svc)
{
    return svc->state;
}

int sr_service_draining(const sr_service_t *svc)
{
    return svc->draining;
}

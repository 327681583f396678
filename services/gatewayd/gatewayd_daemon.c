/* gatewayd_daemon - the gateway's settings and its life: what init starts, what the cron does,
 * how it stops. A stop ends the open streams first (browsers reconnect elsewhere with
 * Last-Event-ID), then stops serving, then closes every thread's connection and sockets.
 */
#include "gatewayd.h"

#include "sr_alloc.h"
#include "sr_http.h"
#include "sr_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field) offsetof(gatewayd_config_t, field)

const sr_config_entry_t gatewayd_config[] = {
    {"SR_GATEWAY_BIND", SR_CFG_STR, "127.0.0.1:7680", 0, 0, OFF(bind),
     "ADDR:PORT of the API (\"[v6addr]:PORT\" for IPv6); 0.0.0.0:7680 to serve other hosts"},
    {"SR_GATEWAY_THREADS", SR_CFG_INT, "4", 1, 64, OFF(threads),
     "threads serving HTTP, each with its own database connection"},
    {"SR_GATEWAY_MAX_CONNECTIONS", SR_CFG_INT, "1024", 1, 100000, OFF(max_connections),
     "open connections at most; more are refused"},
    {"SR_GATEWAY_CONN_TIMEOUT", SR_CFG_DURATION, "30s", 1000, 3600000, OFF(conn_timeout_ms),
     "a connection without progress for this long is closed (slow clients)"},
    {"SR_GATEWAY_MAX_BODY", SR_CFG_SIZE, "1M", 1024, 67108864, OFF(max_body),
     "largest request body; larger ones are answered 413"},
    {"SR_GATEWAY_TLS_CERT", SR_CFG_STR, "", 0, 0, OFF(tls_cert),
     "PEM certificate (chain) for HTTPS; empty = plain HTTP"},
    {"SR_GATEWAY_TLS_KEY", SR_CFG_STR, "", 0, 0, OFF(tls_key),
     "PEM private key of the certificate"},
    {"SR_GATEWAY_SESSION_TTL", SR_CFG_DURATION, "12h", 1000, 2592000000LL, OFF(session_ttl_ms),
     "how long a login's token is valid"},
    {"SR_GATEWAY_TOKEN_CACHE", SR_CFG_DURATION, "5s", 0, 600000, OFF(token_cache_ms),
     "a checked token is trusted this long before the database is asked again (revocation "
     "reaches other instances within it)"},
    {"SR_GATEWAY_RATE", SR_CFG_INT, "50", 0, 1000000, OFF(rate),
     "requests per second per user, all their tokens together (token bucket); 0 = no limit"},
    {"SR_GATEWAY_BURST", SR_CFG_INT, "100", 1, 1000000, OFF(burst),
     "requests a user may make at once before the rate applies"},
    {"SR_GATEWAY_LOGIN_FAILURES", SR_CFG_INT, "5", 1, 100, OFF(login_failures),
     "failed logins per user name within the window before 429"},
    {"SR_GATEWAY_LOGIN_ADDR_FAILURES", SR_CFG_INT, "20", 1, 1000, OFF(addr_failures),
     "failed logins per client address within the window before 429"},
    {"SR_GATEWAY_LOGIN_WINDOW", SR_CFG_DURATION, "15m", 1000, 86400000, OFF(login_window_ms),
     "the window failed logins are counted in"},
    {"SR_GATEWAY_RPC_TIMEOUT", SR_CFG_DURATION, "2s", 10, 60000, OFF(rpc_timeout_ms),
     "how long a call to an owning service may take before 503"},
    {"SR_GATEWAY_METRICS_RPC", SR_CFG_STR, "tcp://127.0.0.1:7640", 0, 0, OFF(metrics_rpc),
     "sr-ingestd's RPC endpoint (SR_INGEST_RPC_BIND) for the /api/v1/rooms routes"},
    {"SR_GATEWAY_TASKS_RPC", SR_CFG_STR, "tcp://127.0.0.1:7661", 0, 0, OFF(tasks_rpc),
     "sr-taskd's RPC endpoint (SR_TASK_RPC_BIND) for the projects, shows, tasks and templates "
     "routes"},
    {"SR_GATEWAY_SSE_HEARTBEAT", SR_CFG_DURATION, "15s", 100, 600000, OFF(heartbeat_ms),
     "a comment line goes to each idle stream this often"},
    {"SR_GATEWAY_SSE_QUEUE", SR_CFG_SIZE, "1M", 4096, 268435456, OFF(stream_queue),
     "unsent bytes a stream may hold; a browser further behind is dropped"},
    {"SR_GATEWAY_SSE_MAX", SR_CFG_INT, "256", 1, 100000, OFF(max_streams),
     "open event streams at most; more are answered 503"},
    {"SR_GATEWAY_ACCESS_LOG", SR_CFG_STR, "on", 0, 0, OFF(access_log),
     "on: one log line per request; off: none"},
    {NULL},
};

int gatewayd_check_config(const void *config, char *err, size_t errlen)
{
    const gatewayd_config_t *cfg = config;
    char addr[64];
    uint16_t port;
    if (sr_http_split_bind(cfg->bind, addr, sizeof addr, &port) < 0) {
        snprintf(err, errlen, "SR_GATEWAY_BIND: must be ADDR:PORT with an IP address");
        return -1;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, errlen, "SR_GATEWAY_TLS_CERT and SR_GATEWAY_TLS_KEY: set both or neither");
        return -1;
    }
    if (strcmp(cfg->access_log, "on") != 0 && strcmp(cfg->access_log, "off") != 0) {
        snprintf(err, errlen, "SR_GATEWAY_ACCESS_LOG: must be on or off");
        return -1;
    }
    const char *const endpoints[][2] = {{"SR_GATEWAY_METRICS_RPC", cfg->metrics_rpc},
                                        {"SR_GATEWAY_TASKS_RPC", cfg->tasks_rpc}};
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
        if (strncmp(endpoints[i][1], "tcp://", 6) != 0 &&
            strncmp(endpoints[i][1], "ipc://", 6) != 0) {
            snprintf(err, errlen, "%s: must be a tcp:// or ipc:// endpoint", endpoints[i][0]);
            return -1;
        }
    return 0;
}

int gatewayd_init(sr_service_t *svc)
{
    gatewayd_t *gw = sr_calloc(1, sizeof *gw);
    sr_service_set_state(svc, gw);
    gw->svc = svc;
    gw->cfg = sr_service_config(svc);
    gw->db_url = sr_service_common(svc)->db_url;
    gw->zctx = sr_service_zctx(svc);
    gw->metrics = sr_service_metrics(svc);
    gw->audit_failures = sr_metrics_counter(gw->metrics, "sr_gateway_audit_failures_total", NULL,
                                            "audit rows that could not be written");
    if (!(gw->auth = gatewayd_auth_new(gw)) || !(gw->stream = gatewayd_stream_new(gw)) ||
        !(gw->http = gatewayd_http_new(gw)))
        return -1;
    return 0;
}

int gatewayd_drain(sr_service_t *svc)
{
    gatewayd_t *gw = sr_service_state(svc);
    gatewayd_stream_end_all(gw->stream);
    return 1;
}

void gatewayd_fini(sr_service_t *svc)
{
    gatewayd_t *gw = sr_service_state(svc);
    if (!gw)
        return;
    gatewayd_http_destroy(&gw->http);
    gatewayd_stream_destroy(&gw->stream);
    gatewayd_threads_free();
    gatewayd_auth_destroy(&gw->auth);
    free(gw);
    sr_service_set_state(svc, NULL);
}

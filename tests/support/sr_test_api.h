/* sr_test_api - the gateway's HTTP API driven from tests: a real sr-gatewayd (with sr-busd and,
 * for the /api/v1/rooms routes, sr-ingestd) on free ports, JSON requests with a bearer token,
 * logins, and the first admin made with `sr-gatewayd bootstrap-admin`.
 */
#ifndef SR_TEST_API_H
#define SR_TEST_API_H

#include "sr_test.h"

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#define SR_TEST_ADMIN          "root-admin"
#define SR_TEST_ADMIN_PASSWORD "admin-password-1"

typedef struct {
    pid_t pid;
    uint16_t port, admin;
    char base[64]; /* "http://127.0.0.1:PORT/api/v1" */
    char log[256];
} sr_test_gateway_t;

/* sr_test_gateway_start - sr-gatewayd on free ports with the bus endpoints of busd, the RPC
 * endpoint of sr-ingestd (may be NULL) and extra settings ("K=V", NULL-ended, may be NULL) */
void sr_test_gateway_start(sr_test_gateway_t *gw, const sr_test_busd_t *bus,
                           const char *metrics_rpc, char *const extra[]);
void sr_test_gateway_stop(sr_test_gateway_t *gw);

/* sr_test_bootstrap_admin - sr-gatewayd bootstrap-admin SR_TEST_ADMIN; its exit status */
int sr_test_bootstrap_admin(void);

/* sr_test_api - METHOD base+path with the token (NULL = none) and a JSON body (NULL = none);
 * the status, the reply in *reply (free with sr_test_reply_free) when not NULL */
long sr_test_api(const sr_test_gateway_t *gw, const char *method, const char *path,
                 const char *token, const char *body, sr_test_reply_t *reply);
/* sr_test_api_json - the same, the body parsed (caller json_decref()s); fails the test when the
 * status is not want or the body is not JSON */
json_t *sr_test_api_json(const sr_test_gateway_t *gw, const char *method, const char *path,
                         const char *token, const char *body, long want);
/* sr_test_login - a session token for user (caller frees); fails the test when login fails */
char *sr_test_login(const sr_test_gateway_t *gw, const char *user, const char *password);
/* sr_test_json_str / _int - a member of an object ("" / -1 when absent); 64-bit integers come
 * as strings */
const char *sr_test_json_str(const json_t *obj, const char *key);
long long sr_test_json_int(const json_t *obj, const char *key);

#endif

/* test_gatewayd_routes - the route table holds together: every action is in the permission
 * matrix, every {param} of a pattern is a scalar field of the route's request message, no
 * method and pattern appear twice; matching takes path parameters and names the methods a path
 * does take; the error body is the documented envelope. */
#include "gatewayd.h"

#include "sr_perm.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_table(void **state)
{
    (void)state;
    assert_true(gatewayd_route_count > 0);
    for (size_t i = 0; i < gatewayd_route_count; i++) {
        const gw_route_t *r = &gatewayd_routes[i];
        if (!(r->flags & GW_PUBLIC))
            assert_non_null(sr_perm_find(r->permission));
        assert_true(strlen(r->summary) > 0);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->method, gatewayd_routes[j].method) == 0 &&
                strcmp(r->pattern, gatewayd_routes[j].pattern) == 0)
                fail_msg("%s %s is in the table twice", r->method, r->pattern);
        if (r->flags & GW_STREAM)
            continue;
        assert_non_null(r->rpc);
        for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
            size_t n = strcspn(p + 1, "}");
            const ProtobufCFieldDescriptor *f = NULL;
            for (unsigned k = 0; k < r->request->n_fields && !f; k++)
                if (strlen(r->request->fields[k].name) == n &&
                    strncmp(r->request->fields[k].name, p + 1, n) == 0)
                    f = &r->request->fields[k];
            if (!f || f->label == PROTOBUF_C_LABEL_REPEATED)
                fail_msg("%s %s: {%.*s} is not a scalar field of %s", r->method, r->pattern, (int)n,
                         p + 1, r->request->name);
        }
        if (r->flags & GW_MASK) {
            int has = 0;
            for (unsigned k = 0; k < r->request->n_fields; k++)
                has |= strcmp(r->request->fields[k].name, "update_mask") == 0;
            assert_true(has);
        }
    }
}

static void test_match(void **state)
{
    (void)state;
    gw_param_t params[GW_MAX_PARAMS];
    size_t n;
    char allow[64];
    const gw_route_t *r = gatewayd_route_match("GET", "/api/v1/rooms/douyin/7300001/minutes",
                                               params, &n, allow, sizeof allow);
    assert_non_null(r);
    assert_string_equal(r->rpc, "metrics.room.minutes");
    assert_int_equal(n, 2);
    assert_memory_equal(params[0].name, "platform}", 9);
    assert_string_equal(params[0].value, "douyin");
    assert_string_equal(params[1].value, "7300001");
    assert_null(gatewayd_route_match("DELETE", "/api/v1/users/7", params, &n, allow, sizeof allow));
    assert_string_equal(allow, "GET, PATCH");
    assert_null(gatewayd_route_match("GET", "/api/v1/users/", params, &n, allow, sizeof allow));
    assert_string_equal(allow, "");
    assert_null(
        gatewayd_route_match("GET", "/api/v1/users/7/extra", params, &n, allow, sizeof allow));
    assert_null(gatewayd_route_match("GET", "/api/v1/me/", params, &n, allow, sizeof allow));
    assert_non_null(gatewayd_route_match("GET", "/api/v1/me", params, &n, allow, sizeof allow));
    assert_int_equal(n, 0);
}

static void test_error_body(void **state)
{
    (void)state;
    char *b = gatewayd_error_body("invalid", "name is \"too long\"", "roles[1]");
    assert_string_equal(b,
                        "{\"error\":{\"code\":\"invalid\",\"message\":\"name is \\\"too long\\\"\","
                        "\"field\":\"roles[1]\"}}");
    free(b);
    b = gatewayd_error_body("not_found", "no such path", "");
    assert_string_equal(b, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}");
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_error_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

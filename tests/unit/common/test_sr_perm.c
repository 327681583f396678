/* test_sr_perm - the roles, the permission matrix and who sees which region: HQ roles see
 * everything, others their bound regions only, a record of no region only HQ; unknown roles and
 * actions allow nothing; every action has a role and admin holds them all. */
#include "sr_perm.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static Sr__Principal s_principal(char **roles, size_t nroles, char **regions, size_t nregions)
{
    Sr__Principal p = SR__PRINCIPAL__INIT;
    p.roles = roles;
    p.n_roles = nroles;
    p.regions = regions;
    p.n_regions = nregions;
    return p;
}

static void test_roles(void **state)
{
    (void)state;
    for (int r = 0; r < SR_ROLES; r++) {
        assert_int_equal(sr_role_parse(sr_role_name((sr_role_t)r)), r);
        assert_true(strlen(sr_role_meaning((sr_role_t)r)) > 0);
    }
    assert_int_equal(sr_role_parse("field_control"), SR_ROLE_FIELD_CONTROL);
    assert_int_equal(sr_role_parse("Admin"), -1);
    assert_int_equal(sr_role_parse(""), -1);
    assert_int_equal(sr_role_parse(NULL), -1);
}

static void test_matrix(void **state)
{
    (void)state;
    size_t n;
    const sr_perm_t *all = sr_perm_all(&n);
    assert_true(n > 0);
    char *admin[] = {"admin"};
    Sr__Principal a = s_principal(admin, 1, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(all[i].roles != 0);
        assert_true(sr_perm_allows(&a, all[i].action));
        assert_ptr_equal(sr_perm_find(all[i].action), &all[i]);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(all[i].action, all[j].action);
    }
    char *viewer[] = {"viewer"}, *op_and_junk[] = {"nonsense", "operator"}, *junk[] = {"root"};
    Sr__Principal v = s_principal(viewer, 1, NULL, 0), o = s_principal(op_and_junk, 2, NULL, 0),
                  j = s_principal(junk, 1, NULL, 0);
    assert_true(sr_perm_allows(&v, "me.read"));
    assert_false(sr_perm_allows(&v, "users.write"));
    assert_false(sr_perm_allows(&v, "audit.read"));
    assert_true(sr_perm_allows(&o, "rooms.write"));
    assert_false(sr_perm_allows(&j, "me.read"));
    assert_false(sr_perm_allows(&a, "no.such.action"));
    assert_false(sr_perm_allows(NULL, "me.read"));
    assert_int_equal(sr_perm_authorize(&o, "users.read", NULL), 1);
}

static void test_regions(void **state)
{
    (void)state;
    char *hq[] = {"hq_manager"}, *op[] = {"operator"}, *east[] = {"east"};
    Sr__Principal h = s_principal(hq, 1, NULL, 0), e = s_principal(op, 1, east, 1),
                  none = s_principal(op, 1, NULL, 0);
    assert_true(sr_principal_is_hq(&h));
    assert_false(sr_principal_is_hq(&e));
    assert_true(sr_principal_sees_region(&h, "south"));
    assert_true(sr_principal_sees_region(&h, ""));
    assert_true(sr_principal_sees_region(&e, "east"));
    assert_false(sr_principal_sees_region(&e, "south"));
    assert_false(sr_principal_sees_region(&e, ""));
    assert_false(sr_principal_sees_region(&e, "eas"));
    assert_false(sr_principal_sees_region(&none, "east"));
}

static void test_region_codes(void **state)
{
    (void)state;
    const char *good[] = {"east", "1st", "south-china", "a_b", "abcdefghijklmnopqrstuvwxyz012345"};
    const char *bad[] = {"",      "East", "-east", "_east",
                         "ea st", "华东", "east!", "abcdefghijklmnopqrstuvwxyz0123456",
                         NULL};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(sr_region_code_ok(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(sr_region_code_ok(bad[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_regions),
        cmocka_unit_test(test_region_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

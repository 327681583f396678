/* sr_perm - the roles and the one permission matrix. See sr_perm.h.
 *
 * Add a row when a service adds an action; the gateway's route table and every service's RPC
 * table name actions from here, and tests/unit/common/test_sr_perm.c checks them against it.
 */
#include "sr_perm.h"

#include <string.h>

#define R(role) (1u << (role))
#define ALL     ((1u << SR_ROLES) - 1)
#define HQ      (R(SR_ROLE_ADMIN) | R(SR_ROLE_HQ_MANAGER))

static const struct {
    const char *name, *meaning;
} s_roles[SR_ROLES] = {
    [SR_ROLE_ADMIN] = {"admin", "runs the installation: users, regions, audit (HQ)"},
    [SR_ROLE_HQ_MANAGER] = {"hq_manager", "HQ operations: plans and watches every region (HQ)"},
    [SR_ROLE_OPERATOR] = {"operator",
                          "a region's operations lead (运营): plans its shows and rooms"},
    [SR_ROLE_ANCHOR] = {"anchor", "host of shows (主播)"},
    [SR_ROLE_FIELD_CONTROL] = {"field_control", "runs the room during a show (场控)"},
    [SR_ROLE_CONTENT] = {"content", "scripts, posts and assets (内容)"},
    [SR_ROLE_CS] = {"cs", "customer service (客服)"},
    [SR_ROLE_FINANCE] = {"finance", "settlement and payouts"},
    [SR_ROLE_VIEWER] = {"viewer", "reads, changes nothing (e.g. a big screen)"},
};

static const sr_perm_t s_matrix[] = {
    {"me.read", ALL, "read one's own account and permissions"},
    {"tokens.own", ALL, "log out; list, create and revoke one's own API tokens"},
    {"tokens.admin", R(SR_ROLE_ADMIN), "list and revoke other users' tokens"},
    {"regions.read", ALL, "read regions (one's own; HQ: all)"},
    {"regions.write", R(SR_ROLE_ADMIN), "create, rename and delete regions"},
    {"users.read", HQ | R(SR_ROLE_OPERATOR), "read users (sharing a region; HQ: all)"},
    {"users.write", R(SR_ROLE_ADMIN), "create users, change their roles, regions, password"},
    {"audit.read", R(SR_ROLE_ADMIN), "read the audit log"},
    {"rooms.read", ALL, "read live rooms and their per-minute numbers (one's regions)"},
    {"rooms.write", HQ | R(SR_ROLE_OPERATOR), "register rooms and assign them to a region"},
    {"stream.read", ALL, "live events over SSE (one's regions)"},
    {"projects.read", ALL,
     "read projects, shows, tasks, templates, kanban and Gantt (one's regions)"},
    {"projects.plan", HQ | R(SR_ROLE_OPERATOR),
     "plan: create and change projects, shows, tasks, dependencies, templates, recurring tasks"},
    {"tasks.work", ALL & ~(R(SR_ROLE_FINANCE) | R(SR_ROLE_VIEWER)),
     "change the status, checklist and comments of tasks assigned to oneself"},
};

#define MATRIX_ROWS (sizeof s_matrix / sizeof s_matrix[0])

const char *sr_role_name(sr_role_t role)
{
    return role < SR_ROLES ? s_roles[role].name : "";
}

const char *sr_role_meaning(sr_role_t role)
{
    return role < SR_ROLES ? s_roles[role].meaning : "";
}

int sr_role_parse(const char *name)
{
    for (int r = 0; name && r < SR_ROLES; r++)
        if (strcmp(s_roles[r].name, name) == 0)
            return r;
    return -1;
}

const sr_perm_t *sr_perm_all(size_t *n)
{
    *n = MATRIX_ROWS;
    return s_matrix;
}

const sr_perm_t *sr_perm_find(const char *action)
{
    for (size_t i = 0; action && i < MATRIX_ROWS; i++)
        if (strcmp(s_matrix[i].action, action) == 0)
            return &s_matrix[i];
    return NULL;
}

/* s_roles_of - the principal's roles as bits; unknown role names count for nothing */
static unsigned s_roles_of(const Sr__Principal *p)
{
    unsigned bits = 0;
    for (size_t i = 0; p && i < p->n_roles; i++) {
        int r = sr_role_parse(p->roles[i]);
        if (r >= 0)
            bits |= R(r);
    }
    return bits;
}

int sr_perm_allows(const Sr__Principal *principal, const char *action)
{
    const sr_perm_t *row = sr_perm_find(action);
    return row && (row->roles & s_roles_of(principal)) != 0;
}

int sr_perm_authorize(const Sr__Principal *principal, const char *action, void *state)
{
    (void)state;
    return sr_perm_allows(principal, action);
}

int sr_principal_is_hq(const Sr__Principal *principal)
{
    return (s_roles_of(principal) & HQ) != 0;
}

int sr_principal_sees_region(const Sr__Principal *principal, const char *region)
{
    if (sr_principal_is_hq(principal))
        return 1;
    if (!region || !region[0])
        return 0;
    for (size_t i = 0; principal && i < principal->n_regions; i++)
        if (strcmp(principal->regions[i], region) == 0)
            return 1;
    return 0;
}

int sr_region_code_ok(const char *code)
{
    size_t n = code ? strlen(code) : 0;
    if (n < 1 || n > 32 ||
        !((code[0] >= 'a' && code[0] <= 'z') || (code[0] >= '0' && code[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= '0' && code[i] <= '9') ||
              code[i] == '_' || code[i] == '-'))
            return 0;
    return 1;
}

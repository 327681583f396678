/* sr_perm - roles, the permission matrix (role x action) and who sees which region.
 *
 * The matrix is one static table (sr_perm.c): each action lists the roles allowed to do it.
 * The gateway checks the route's action before it calls the owning service, and the owning
 * service checks the same action again from the principal in the request (sr_perm_authorize as
 * its sr_rpc authorize callback), so a second path in cannot skip it. Regions: HQ roles (admin,
 * hq_manager) see every region; every other principal sees only the regions it is bound to, and
 * a record of another region is answered as not found, so its existence does not leak.
 * `sr-gatewayd permissions` prints the matrix as the README shows it.
 */
#ifndef SR_PERM_H
#define SR_PERM_H

#include "rpc.pb-c.h"

#include <stddef.h>

typedef enum {
    SR_ROLE_ADMIN = 0,
    SR_ROLE_HQ_MANAGER,
    SR_ROLE_OPERATOR,
    SR_ROLE_ANCHOR,
    SR_ROLE_FIELD_CONTROL,
    SR_ROLE_CONTENT,
    SR_ROLE_CS,
    SR_ROLE_FINANCE,
    SR_ROLE_VIEWER,
    SR_ROLES
} sr_role_t;

typedef struct {
    const char *action;  /* "users.write" */
    unsigned roles;      /* bit (1 << sr_role_t) per role allowed */
    const char *meaning; /* one line for the README */
} sr_perm_t;

/* sr_role_name - "field_control"; sr_role_parse - the role of a name, -1 when unknown */
const char *sr_role_name(sr_role_t role);
int sr_role_parse(const char *name);
/* sr_role_meaning - one line about the role, for the README */
const char *sr_role_meaning(sr_role_t role);

/* sr_perm_all - every row of the matrix, count in *n */
const sr_perm_t *sr_perm_all(size_t *n);
/* sr_perm_find - the row of an action, NULL when there is none */
const sr_perm_t *sr_perm_find(const char *action);
/* sr_perm_allows - 1 when one of the principal's roles may do action (0 for an unknown action) */
int sr_perm_allows(const Sr__Principal *principal, const char *action);
/* sr_perm_authorize - sr_perm_allows as an sr_rpc_authorize_fn (state unused) */
int sr_perm_authorize(const Sr__Principal *principal, const char *action, void *state);

/* sr_region_code_ok - 1 for a region code: 1 to 32 of a-z 0-9 _ -, starting with a letter or
 * digit (the gateway's regions, and every record that names one) */
int sr_region_code_ok(const char *code);

/* sr_principal_is_hq - 1 when the principal holds an HQ role and so sees every region */
int sr_principal_is_hq(const Sr__Principal *principal);
/* sr_principal_sees_region - 1 when the principal may see a record of region (a region code;
 * "" is a record of no region, which only HQ sees) */
int sr_principal_sees_region(const Sr__Principal *principal, const char *region);

#endif

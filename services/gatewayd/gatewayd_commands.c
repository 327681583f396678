/* gatewayd_commands - what `sr-gatewayd COMMAND` does besides serving:
 *   bootstrap-admin NAME  create the first admin (password from SR_ADMIN_PASSWORD, else the
 *                         first line of standard input) in the database of SR_DB_URL, applying
 *                         the access migrations first; refused once any admin exists
 *   permissions           the permission matrix (role x action) as the README shows it
 *   routes                the route table, one "METHOD PATTERN ACTION" line each (the
 *                         OpenAPI test compares it with openapi.yaml)
 */
#include "gatewayd.h"

#include "sr_arena.h"
#include "sr_db.h"
#include "sr_log.h"
#include "sr_perm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_permissions(void)
{
    printf("| action |");
    for (int r = 0; r < SR_ROLES; r++)
        printf(" %s |", sr_role_name((sr_role_t)r));
    printf(" meaning |\n|---|");
    for (int r = 0; r < SR_ROLES; r++)
        printf(":-:|");
    printf("---|\n");
    size_t n;
    const sr_perm_t *all = sr_perm_all(&n);
    for (size_t i = 0; i < n; i++) {
        printf("| `%s` |", all[i].action);
        for (int r = 0; r < SR_ROLES; r++)
            printf(" %s |", all[i].roles & (1u << r) ? "yes" : "");
        printf(" %s |\n", all[i].meaning);
    }
    return 0;
}

static int s_routes(void)
{
    for (size_t i = 0; i < gatewayd_route_count; i++)
        printf("%s %s %s\n", gatewayd_routes[i].method, gatewayd_routes[i].pattern,
               gatewayd_routes[i].permission ? gatewayd_routes[i].permission : "-");
    return 0;
}

/* s_password - SR_ADMIN_PASSWORD, or one line of standard input without its newline */
static char *s_password(void)
{
    const char *env = getenv("SR_ADMIN_PASSWORD");
    if (env && env[0])
        return strdup(env);
    char line[512];
    if (!fgets(line, sizeof line, stdin))
        return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

static int s_bootstrap(const char *name)
{
    const char *url = getenv("SR_DB_URL");
    if (!url || !url[0]) {
        fprintf(stderr, "sr-gatewayd: set SR_DB_URL to the database to create the admin in\n");
        return 2;
    }
    size_t nmig = 0;
    while (gatewayd_migrations[nmig].version)
        nmig++;
    sr_db_t *db = sr_db_connect(url, "gatewayd-bootstrap", 3, 1000);
    if (!db || sr_migrate(db, "access", gatewayd_migrations, nmig) < 0) {
        fprintf(stderr, "sr-gatewayd: cannot reach or prepare the database (see the log)\n");
        sr_db_destroy(&db);
        return 1;
    }
    PGresult *res = sr_db_query(db,
                                "SELECT name FROM access.users WHERE 'admin' = ANY(roles) "
                                "ORDER BY id LIMIT 1",
                                0, NULL);
    if (!res || PQntuples(res) > 0) {
        if (res)
            fprintf(stderr,
                    "sr-gatewayd: an admin exists already (%s): create users through "
                    "the API\n",
                    PQgetvalue(res, 0, 0));
        PQclear(res);
        sr_db_destroy(&db);
        return 1;
    }
    PQclear(res);
    char *password = s_password();
    if (!password) {
        fprintf(stderr, "sr-gatewayd: no password: set SR_ADMIN_PASSWORD or pipe it in\n");
        sr_db_destroy(&db);
        return 2;
    }
    char *roles[] = {"admin"};
    Sr__UserCreate in = SR__USER_CREATE__INIT;
    in.name = (char *)name;
    in.display_name = (char *)name;
    in.password = password;
    in.roles = roles;
    in.n_roles = 1;
    sr_arena_t *arena = sr_arena_new(4096);
    Sr__User *user = NULL;
    Sr__Error *error = NULL;
    Sr__Status st = gatewayd_user_create(db, "bootstrap", &in, arena, &user, &error);
    memset(password, 0, strlen(password));
    free(password);
    int rc = 0;
    if (st == SR__STATUS__STATUS_OK)
        printf("admin %s created (user id %lld); log in with POST /api/v1/auth/login\n", user->name,
               (long long)user->id);
    else {
        fprintf(stderr, "sr-gatewayd: %s%s%s\n", error && error->field[0] ? error->field : "",
                error && error->field[0] ? ": " : "", error ? error->message : "failed");
        rc = st == SR__STATUS__STATUS_BAD_REQUEST ? 2 : 1;
    }
    sr_arena_destroy(&arena);
    sr_db_destroy(&db);
    return rc;
}

int gatewayd_command(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "permissions") == 0)
        return s_permissions();
    if (argc == 1 && strcmp(argv[0], "routes") == 0)
        return s_routes();
    if (argc == 2 && strcmp(argv[0], "bootstrap-admin") == 0)
        return s_bootstrap(argv[1]);
    fprintf(stderr,
            "sr-gatewayd: unknown command '%s'\nusage: sr-gatewayd bootstrap-admin NAME "
            "| permissions | routes\n",
            argv[0]);
    return 2;
}

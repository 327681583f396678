/* sr_config - SR_* settings from the environment and an optional file. See sr_config.h.
 *
 * sr_config_load() reads SR_CONFIG_FILE (if the environment names one) into a list of
 * name/value/line triples, then resolves each table entry from the environment, the file or its
 * default, in that order, and parses it strictly: no trailing junk, overflow detected, bounds
 * checked. Errors name the variable, the bad value (never a secret's) and where it came from.
 * Strings are copied into the daemon's struct and owned by it until sr_config_free().
 * The table formats (--help, --config-markdown) and the start-up log line live here too.
 */
#include "sr_config.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *suffix;
    int64_t scale;
} unit_t;

/* accepted suffixes: a bare duration is milliseconds, a bare size bytes; k, M, G are 1024^n */
static const unit_t s_duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}, {NULL, 0},
};

static const unit_t s_size_units[] = {
    {"", 1},
    {"k", 1024},
    {"K", 1024},
    {"m", 1024 * 1024},
    {"M", 1024 * 1024},
    {"g", 1024 * 1024 * 1024},
    {"G", 1024 * 1024 * 1024},
    {NULL, 0},
};

/* how values are shown (help, bounds, the log line): largest unit first */
static const unit_t s_duration_shown[] = {
    {"h", 60 * 60 * 1000}, {"m", 60 * 1000}, {"s", 1000}, {"ms", 1}, {NULL, 0},
};

static const unit_t s_size_shown[] = {
    {"G", 1024 * 1024 * 1024},
    {"M", 1024 * 1024},
    {"k", 1024},
    {NULL, 0},
};

static const char *const s_type_names[] = {"string", "secret", "int", "bool", "duration", "size"};

static const struct {
    const char *text;
    int value;
} s_bools[] = {
    {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"on", 1}, {"off", 0}, {"1", 1}, {"0", 0},
};

/* one SR_NAME=value line of the file */
typedef struct {
    char *name;
    char *value;
    int line;
} file_var_t;

typedef struct {
    const char *path;
    file_var_t *vars;
    size_t count, cap;
} file_vars_t;

/* one row of --help: variable, type, default, bounds, meaning */
typedef struct {
    const char *cells[5];
} help_row_t;

/* where a value came from, for error messages */
typedef struct {
    const char *text;
    const char *file; /* NULL: environment or default */
    int line;
    int is_default;
} source_t;

static void s_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int s_is_number_type(sr_cfg_type_t type)
{
    return type == SR_CFG_INT || type == SR_CFG_DURATION || type == SR_CFG_SIZE;
}

static int s_is_string_type(sr_cfg_type_t type)
{
    return type == SR_CFG_STR || type == SR_CFG_SECRET;
}

static void *s_field(void *base, const sr_config_entry_t *e)
{
    return (char *)base + e->offset;
}

static const void *s_cfield(const void *base, const sr_config_entry_t *e)
{
    return (const char *)base + e->offset;
}

/* s_format_number - a duration or size in the largest unit that divides it exactly */
static void s_format_number(char *buf, size_t size, sr_cfg_type_t type, int64_t v)
{
    const unit_t *units = type == SR_CFG_DURATION ? s_duration_shown
                          : type == SR_CFG_SIZE   ? s_size_shown
                                                  : NULL;
    for (const unit_t *u = units; u && u->suffix && v != 0; u++) {
        if (v % u->scale == 0) {
            snprintf(buf, size, "%lld%s", (long long)(v / u->scale), u->suffix);
            return;
        }
    }
    snprintf(buf, size, "%lld", (long long)v);
}

static int s_bounded(const sr_config_entry_t *e)
{
    return s_is_number_type(e->type) && !(e->min == 0 && e->max == 0);
}

static void s_format_bounds(char *buf, size_t size, const sr_config_entry_t *e)
{
    if (!s_bounded(e)) {
        snprintf(buf, size, "-");
        return;
    }
    char lo[32], hi[32];
    s_format_number(lo, sizeof lo, e->type, e->min);
    s_format_number(hi, sizeof hi, e->type, e->max);
    snprintf(buf, size, "%s..%s", lo, hi);
}

/* s_shown_default - the default as help shows it; a secret's value never */
static const char *s_shown_default(const sr_config_entry_t *e)
{
    if (!e->def)
        return "(required)";
    if (!e->def[0])
        return "(empty)";
    if (e->type == SR_CFG_SECRET)
        return "(hidden)";
    return e->def;
}

/* s_parse_int - strict decimal int64: optional sign, digits, nothing else; -2 on overflow */
static int s_parse_int(const char *s, int64_t *out)
{
    if (!s[0] || isspace((unsigned char)s[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        return -1;
    if (errno == ERANGE)
        return -2;
    *out = v;
    return 0;
}

/* s_parse_scaled - digits then one of units' suffixes; -1 malformed, -2 overflow */
static int s_parse_scaled(const char *s, const unit_t *units, int64_t *out)
{
    const char *p = s;
    int64_t v = 0;
    int overflow = 0;
    while (*p >= '0' && *p <= '9') {
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10)
            overflow = 1;
        else
            v = v * 10 + digit;
        p++;
    }
    if (p == s)
        return -1;
    for (const unit_t *u = units; u->suffix; u++) {
        if (strcmp(p, u->suffix) != 0)
            continue;
        if (overflow || v > INT64_MAX / u->scale)
            return -2;
        *out = v * u->scale;
        return 0;
    }
    return -1;
}

static int s_parse_bool(const char *s, int *out)
{
    for (size_t i = 0; i < sizeof s_bools / sizeof s_bools[0]; i++) {
        if (strcasecmp(s, s_bools[i].text) == 0) {
            *out = s_bools[i].value;
            return 0;
        }
    }
    return -1;
}

/* s_where - " (FILE line N)" or " (the default)" after an error, so the user knows what to fix */
static void s_where(char *buf, size_t size, const source_t *src)
{
    if (src->file)
        snprintf(buf, size, " (%s line %d)", src->file, src->line);
    else if (src->is_default)
        snprintf(buf, size, " (the default)");
    else
        buf[0] = '\0';
}

/* s_parse_value - parse src->text by e's type into base; 0 ok, -1 with err set */
static int s_parse_value(const sr_config_entry_t *e, const source_t *src, void *base, char *err,
                         size_t errlen)
{
    char where[600];
    s_where(where, sizeof where, src);
    const char *text = src->text;
    int64_t v = 0;
    int rc = 0;
    switch (e->type) {
    case SR_CFG_STR:
    case SR_CFG_SECRET:
        *(char **)s_field(base, e) = sr_strdup(text);
        return 0;
    case SR_CFG_BOOL:
        if (s_parse_bool(text, (int *)s_field(base, e)) == 0)
            return 0;
        s_set_err(err, errlen,
                  "%s: \"%s\" is not a boolean (use true/false, yes/no, on/off, 1/0)%s", e->env,
                  text, where);
        return -1;
    case SR_CFG_INT:
        rc = s_parse_int(text, &v);
        if (rc == -1)
            s_set_err(err, errlen, "%s: \"%s\" is not an integer%s", e->env, text, where);
        break;
    case SR_CFG_DURATION:
        rc = s_parse_scaled(text, s_duration_units, &v);
        if (rc == -1)
            s_set_err(err, errlen, "%s: \"%s\" is not a duration (use 250ms, 5s, 2m, 1h)%s", e->env,
                      text, where);
        break;
    case SR_CFG_SIZE:
        rc = s_parse_scaled(text, s_size_units, &v);
        if (rc == -1)
            s_set_err(err, errlen, "%s: \"%s\" is not a size (use 512, 64k, 16M, 1G)%s", e->env,
                      text, where);
        break;
    }
    if (rc == -2)
        s_set_err(err, errlen, "%s: \"%s\" is out of range%s", e->env, text, where);
    if (rc < 0)
        return -1;
    if (s_bounded(e) && (v < e->min || v > e->max)) {
        char bound[32];
        s_format_number(bound, sizeof bound, e->type, v < e->min ? e->min : e->max);
        s_set_err(err, errlen, "%s: \"%s\" is %s the %s %s%s", e->env, text,
                  v < e->min ? "below" : "above", v < e->min ? "minimum" : "maximum", bound, where);
        return -1;
    }
    *(int64_t *)s_field(base, e) = v;
    return 0;
}

static const sr_config_entry_t *s_find(const sr_config_entry_t *table, const char *name)
{
    for (const sr_config_entry_t *e = table; e->env; e++) {
        if (strcmp(e->env, name) == 0)
            return e;
    }
    return NULL;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int s_valid_name(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    }
    return 1;
}

static void s_file_vars_free(file_vars_t *fv)
{
    for (size_t i = 0; i < fv->count; i++) {
        free(fv->vars[i].name);
        free(fv->vars[i].value);
    }
    free(fv->vars);
    fv->vars = NULL;
    fv->count = fv->cap = 0;
}

/* s_parse_line - one line of the file into fv; blank and # lines are skipped */
static int s_parse_line(char *line, int lineno, const sr_config_entry_t *table, file_vars_t *fv,
                        char *err, size_t errlen)
{
    char *s = s_trim(line);
    if (!s[0] || s[0] == '#')
        return 0;
    char *eq = strchr(s, '=');
    if (eq)
        *eq = '\0';
    char *name = s_trim(s);
    if (!eq || !s_valid_name(name)) {
        s_set_err(err, errlen, "%s line %d: not a NAME=value line", fv->path, lineno);
        return -1;
    }
    if (!s_find(table, name)) {
        s_set_err(err, errlen, "unknown variable %s in %s line %d", name, fv->path, lineno);
        return -1;
    }
    char *value = s_trim(eq + 1);
    size_t n = strlen(value);
    if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
        value[n - 1] = '\0';
        value++;
    }
    if (fv->count == fv->cap) {
        fv->cap = fv->cap ? fv->cap * 2 : 16;
        fv->vars = sr_realloc(fv->vars, fv->cap * sizeof *fv->vars);
    }
    fv->vars[fv->count++] = (file_var_t){sr_strdup(name), sr_strdup(value), lineno};
    return 0;
}

/* s_read_file - every SR_NAME=value line of the file; unknown names and junk are errors */
static int s_read_file(const sr_config_entry_t *table, file_vars_t *fv, char *err, size_t errlen)
{
    FILE *f = fopen(fv->path, "r");
    if (!f) {
        s_set_err(err, errlen, "SR_CONFIG_FILE: cannot read %s: %s", fv->path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0)
        rc = s_parse_line(line, ++lineno, table, fv, err, errlen);
    if (rc == 0 && ferror(f)) {
        s_set_err(err, errlen, "SR_CONFIG_FILE: cannot read %s: %s", fv->path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc < 0)
        s_file_vars_free(fv);
    return rc;
}

/* s_resolve - the environment, else the file's last line for it, else the default */
static source_t s_resolve(const sr_config_entry_t *e, const file_vars_t *fv)
{
    const char *env = getenv(e->env);
    if (env)
        return (source_t){env, NULL, 0, 0};
    for (size_t i = fv->count; i-- > 0;) {
        if (strcmp(fv->vars[i].name, e->env) == 0)
            return (source_t){fv->vars[i].value, fv->path, fv->vars[i].line, 0};
    }
    return (source_t){e->def, NULL, 0, 1};
}

static void s_free_strings(const sr_config_entry_t *table, size_t count, void *base)
{
    for (size_t i = 0; i < count && table[i].env; i++) {
        if (!s_is_string_type(table[i].type))
            continue;
        char **p = s_field(base, &table[i]);
        if (*p && table[i].type == SR_CFG_SECRET)
            explicit_bzero(*p, strlen(*p));
        SR_FREE(*p);
    }
}

int sr_config_load(const sr_config_entry_t *table, void *base, char *err, size_t errlen)
{
    file_vars_t fv = {getenv("SR_CONFIG_FILE")};
    if (fv.path && fv.path[0] && s_read_file(table, &fv, err, errlen) < 0)
        return -1;
    size_t i = 0;
    int rc = 0;
    for (; table[i].env && rc == 0; i++) {
        const sr_config_entry_t *e = &table[i];
        source_t src = s_resolve(e, &fv);
        if (!src.text || (!e->def && !src.text[0])) {
            s_set_err(err, errlen, "%s: required but not set", e->env);
            rc = -1;
        } else {
            rc = s_parse_value(e, &src, base, err, errlen);
        }
    }
    if (rc < 0)
        s_free_strings(table, i, base);
    s_file_vars_free(&fv);
    return rc;
}

void sr_config_free(const sr_config_entry_t *table, void *base)
{
    s_free_strings(table, SIZE_MAX, base);
}

void sr_config_print_help(FILE *out, const sr_config_entry_t *table)
{
    size_t rows = 0;
    while (table[rows].env)
        rows++;
    char(*bounds)[80] = sr_calloc(rows + 1, sizeof *bounds);
    help_row_t *r = sr_calloc(rows + 1, sizeof *r);
    r[0] = (help_row_t){{"VARIABLE", "TYPE", "DEFAULT", "BOUNDS", "MEANING"}};
    size_t width[4] = {0};
    for (size_t i = 0; i <= rows; i++) {
        if (i > 0) {
            const sr_config_entry_t *e = &table[i - 1];
            s_format_bounds(bounds[i], sizeof bounds[i], e);
            r[i] = (help_row_t){{e->env, s_type_names[e->type], s_shown_default(e), bounds[i],
                                 e->help ? e->help : ""}};
        }
        for (size_t c = 0; c < 4; c++) {
            size_t n = strlen(r[i].cells[c]);
            if (n > width[c])
                width[c] = n;
        }
    }
    for (size_t i = 0; i <= rows; i++) {
        fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", (int)width[0], r[i].cells[0], (int)width[1],
                r[i].cells[1], (int)width[2], r[i].cells[2], (int)width[3], r[i].cells[3],
                r[i].cells[4]);
    }
    free(r);
    free(bounds);
}

/* s_md_cell - text with | escaped, so a help line cannot break the table */
static void s_md_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
}

void sr_config_print_markdown(FILE *out, const sr_config_entry_t *table)
{
    fprintf(out, "| Variable | Type | Default | Meaning |\n|---|---|---|---|\n");
    for (const sr_config_entry_t *e = table; e->env; e++) {
        char bounds[80];
        s_format_bounds(bounds, sizeof bounds, e);
        fprintf(out, "| `%s` | %s", e->env, s_type_names[e->type]);
        if (s_bounded(e))
            fprintf(out, " (%s)", bounds);
        fputs(" | ", out);
        s_md_cell(out, s_shown_default(e));
        fputs(" | ", out);
        s_md_cell(out, e->help ? e->help : "");
        fputs(" |\n", out);
    }
}

/* s_log_string - a quoted value with " and \ escaped, so the line stays parseable */
static void s_log_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"' || *p == '\\')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

void sr_config_log(const sr_config_entry_t *table, const void *base)
{
    char *line = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&line, &len);
    if (!out)
        sr_panic("config_log", "err=\"open_memstream failed\"");
    for (const sr_config_entry_t *e = table; e->env; e++) {
        const void *field = s_cfield(base, e);
        char num[32];
        fprintf(out, "%s%s=", e == table ? "" : " ", e->env);
        switch (e->type) {
        case SR_CFG_STR:
            s_log_string(out, *(char *const *)field);
            break;
        case SR_CFG_SECRET: {
            const char *secret = *(char *const *)field;
            fputs(secret && secret[0] ? "(set)" : "(unset)", out);
            break;
        }
        case SR_CFG_BOOL:
            fputs(*(const int *)field ? "true" : "false", out);
            break;
        case SR_CFG_INT:
        case SR_CFG_DURATION:
        case SR_CFG_SIZE:
            s_format_number(num, sizeof num, e->type, *(const int64_t *)field);
            fputs(num, out);
            break;
        }
    }
    if (fclose(out) != 0 || !line)
        sr_panic("config_log", "err=\"out of memory\"");
    sr_info("config", "%s", line);
    free(line);
}

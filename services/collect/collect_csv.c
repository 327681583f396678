/* collect_csv - a platform's exported session data (CSV, one row per snapshot) -> RoomSamples.
 *
 * The file is parsed whole and every problem collected before anything may be sent, so a bad
 * file is never half-imported. CSV is RFC 4180 (quoted fields, "" inside quotes, CRLF or LF) plus
 * a UTF-8 BOM at the start and blank lines, which exports carry and which are skipped. Headers
 * are matched per platform against s_douyin, s_channels and s_kuaishou (Chinese as the back-ends
 * show them, English case-insensitively, full-width parentheses as ASCII); unknown columns are
 * ignored. Everything lives in one arena owned by the collect_csv_t.
 */
#include "collect.h"

#include "sr_alloc.h"
#include "sr_arena.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define F(field)       offsetof(Sr__RoomSample, field)
#define CHINA_OFFSET_S (8 * 3600)
#define UNIX_MIN_S     946684800LL  /* 2000-01-01: smaller numbers are not export times */
#define UNIX_MAX_S     4102444800LL /* 2100-01-01 */

typedef enum {
    UNIT_TIME,    /* "YYYY-MM-DD HH:MM:SS" China time or Unix seconds -> ts_us */
    UNIT_ROOM,    /* text -> room_id */
    UNIT_SESSION, /* text -> session_id */
    UNIT_COUNT,   /* whole number, thousands separators allowed */
    UNIT_SECONDS, /* seconds, up to 2 decimals, rounded half up */
    UNIT_YUAN,    /* yuan, up to 2 decimals -> fen exactly */
    UNIT_FEN,     /* already fen: a whole number */
} unit_t;

typedef struct {
    const char *names[4]; /* the headers the platform writes, Chinese first; NULL-padded */
    size_t field;         /* offset in Sr__RoomSample */
    unit_t unit;
} column_t;

/* Column 0 is the time, column 1 the room (error messages name them); a name appears once. */
static const column_t s_douyin[] = {
    {{"时间", "time", "update_time"}, F(ts_us), UNIT_TIME},
    {{"直播间ID", "room_id"}, F(room_id), UNIT_ROOM},
    {{"场次ID", "session_id"}, F(session_id), UNIT_SESSION},
    {{"实时在线人数", "在线人数", "online_user_cnt"}, F(online_viewers), UNIT_COUNT},
    {{"累计观看人数", "watch_ucnt"}, F(cumulative_viewers), UNIT_COUNT},
    {{"新增观看人数", "new_watch_ucnt"}, F(new_viewers), UNIT_COUNT},
    {{"人均观看时长(秒)", "avg_watch_duration"}, F(avg_watch_seconds), UNIT_SECONDS},
    {{"点赞次数", "like_cnt"}, F(likes), UNIT_COUNT},
    {{"评论次数", "comment_cnt"}, F(comments), UNIT_COUNT},
    {{"分享次数", "share_cnt"}, F(shares), UNIT_COUNT},
    {{"新增粉丝数", "incr_fans_cnt"}, F(new_followers), UNIT_COUNT},
    {{"新加团人数", "fans_club_ucnt"}, F(fan_club_joins), UNIT_COUNT},
    {{"商品曝光人数", "product_show_ucnt"}, F(product_impressions), UNIT_COUNT},
    {{"商品点击人数", "product_click_ucnt"}, F(product_clicks), UNIT_COUNT},
    {{"创建订单数", "create_order_cnt"}, F(orders_created), UNIT_COUNT},
    {{"成交订单数", "pay_order_cnt"}, F(orders_paid), UNIT_COUNT},
    {{"成交人数", "pay_ucnt"}, F(paid_buyers), UNIT_COUNT},
    {{"成交金额(元)", "pay_amt"}, F(gmv_fen), UNIT_YUAN},
    {{"退款订单数", "real_refund_cnt"}, F(refunds_count), UNIT_COUNT},
    {{"退款金额(元)", "real_refund_amt"}, F(refunds_fen), UNIT_YUAN},
    {{"投放消耗(元)", "stat_cost"}, F(ad_spend_fen), UNIT_YUAN},
};

static const column_t s_channels[] = {
    {{"时间", "time", "stat_time"}, F(ts_us), UNIT_TIME},
    {{"直播间ID", "room_id"}, F(room_id), UNIT_ROOM},
    {{"场次ID", "live_id"}, F(session_id), UNIT_SESSION},
    {{"在线人数", "online_audience_count"}, F(online_viewers), UNIT_COUNT},
    {{"累计观看人数", "cumulative_audience_count"}, F(cumulative_viewers), UNIT_COUNT},
    {{"新增观看人数", "new_audience_count"}, F(new_viewers), UNIT_COUNT},
    {{"人均观看时长(秒)", "average_watch_seconds_per_audience"},
     F(avg_watch_seconds),
     UNIT_SECONDS},
    {{"点赞次数", "like_count"}, F(likes), UNIT_COUNT},
    {{"评论次数", "comment_count"}, F(comments), UNIT_COUNT},
    {{"分享次数", "share_count"}, F(shares), UNIT_COUNT},
    {{"新增关注", "new_follow_count"}, F(new_followers), UNIT_COUNT},
    {{"新增粉丝团", "new_fans_club_count"}, F(fan_club_joins), UNIT_COUNT},
    {{"商品曝光人数", "product_exposure_uv"}, F(product_impressions), UNIT_COUNT},
    {{"商品点击人数", "total_clk_uv"}, F(product_clicks), UNIT_COUNT},
    {{"创建订单数", "create_order_count"}, F(orders_created), UNIT_COUNT},
    {{"成交订单数", "pay_order_count"}, F(orders_paid), UNIT_COUNT},
    {{"成交人数", "total_pay_uv"}, F(paid_buyers), UNIT_COUNT},
    {{"成交金额(分)", "total_gmv"}, F(gmv_fen), UNIT_FEN},
    {{"退款订单数", "refund_order_count"}, F(refunds_count), UNIT_COUNT},
    {{"退款金额(分)", "refund_amount"}, F(refunds_fen), UNIT_FEN},
    {{"投放消耗(分)", "ad_cost"}, F(ad_spend_fen), UNIT_FEN},
};

static const column_t s_kuaishou[] = {
    {{"时间", "time"}, F(ts_us), UNIT_TIME},
    {{"直播间ID", "room_id"}, F(room_id), UNIT_ROOM},
    {{"直播ID", "liveStreamId"}, F(session_id), UNIT_SESSION},
    {{"在线人数", "onlineCount"}, F(online_viewers), UNIT_COUNT},
    {{"累计观看人数", "totalWatchUv"}, F(cumulative_viewers), UNIT_COUNT},
    {{"新增观看人数", "newWatchUv"}, F(new_viewers), UNIT_COUNT},
    {{"人均观看时长(秒)", "avgWatchSeconds"}, F(avg_watch_seconds), UNIT_SECONDS},
    {{"点赞数", "likeCount"}, F(likes), UNIT_COUNT},
    {{"评论数", "commentCount"}, F(comments), UNIT_COUNT},
    {{"分享数", "shareCount"}, F(shares), UNIT_COUNT},
    {{"新增粉丝数", "newFansCount"}, F(new_followers), UNIT_COUNT},
    {{"加入粉丝团人数", "fansGroupJoinCount"}, F(fan_club_joins), UNIT_COUNT},
    {{"商品曝光人数", "itemExposureUv"}, F(product_impressions), UNIT_COUNT},
    {{"商品点击人数", "itemClickUv"}, F(product_clicks), UNIT_COUNT},
    {{"订单数", "orderCount"}, F(orders_created), UNIT_COUNT},
    {{"支付订单数", "payOrderCount"}, F(orders_paid), UNIT_COUNT},
    {{"支付人数", "payUserCount"}, F(paid_buyers), UNIT_COUNT},
    {{"成交金额(元)", "gmvYuan"}, F(gmv_fen), UNIT_YUAN},
    {{"退款订单数", "refundCount"}, F(refunds_count), UNIT_COUNT},
    {{"退款金额(元)", "refundYuan"}, F(refunds_fen), UNIT_YUAN},
    {{"投放消耗(元)", "adCostYuan"}, F(ad_spend_fen), UNIT_YUAN},
};

typedef struct {
    const char *name;
    Sr__Platform platform;
    const column_t *columns;
    size_t n_columns;
} platform_t;

#define TABLE(t) t, sizeof t / sizeof t[0]
static const platform_t s_platforms[] = {
    {"douyin", SR__PLATFORM__PLATFORM_DOUYIN, TABLE(s_douyin)},
    {"channels", SR__PLATFORM__PLATFORM_CHANNELS, TABLE(s_channels)},
    {"kuaishou", SR__PLATFORM__PLATFORM_KUAISHOU, TABLE(s_kuaishou)},
};

typedef struct {
    const char *text; /* NUL-terminated, unquoted */
    size_t line;      /* where the field starts */
} field_t;

struct collect_csv_t {
    const char *name;
    sr_arena_t *arena;   /* what outlives a record: samples, their strings, errors, the header */
    sr_arena_t *scratch; /* the current record's fields, reset per record */
    char **errors;
    size_t n_errors, cap_errors;
    bool full; /* COLLECT_CSV_MAX_ERRORS reached */
    Sr__RoomSample **samples;
    size_t n_samples, cap_samples, next;
    /* the parser */
    const char *p, *end;
    size_t line;
    field_t *fields;
    size_t n_fields, cap_fields;
    char *buf; /* the current field, unquoted */
    size_t buf_len, buf_cap;
};

Sr__Platform collect_csv_platform(const char *name)
{
    for (size_t i = 0; i < sizeof s_platforms / sizeof s_platforms[0]; i++)
        if (strcmp(s_platforms[i].name, name) == 0)
            return s_platforms[i].platform;
    return SR__PLATFORM__PLATFORM_UNSPECIFIED;
}

/* s_error - add "NAME:LINE:COLUMN: message"; false once the file is given up */
__attribute__((format(printf, 4, 5))) static bool s_error(collect_csv_t *self, size_t line,
                                                          size_t column, const char *fmt, ...)
{
    if (self->full)
        return false;
    if (self->n_errors == self->cap_errors) {
        self->cap_errors = self->cap_errors ? self->cap_errors * 2 : 8;
        self->errors = sr_realloc(self->errors, self->cap_errors * sizeof *self->errors);
    }
    if (self->n_errors == COLLECT_CSV_MAX_ERRORS) {
        self->errors[self->n_errors++] =
            sr_arena_printf(self->arena, "%s:%zu: more than %d problems, the rest not checked",
                            self->name, line, COLLECT_CSV_MAX_ERRORS);
        self->full = true;
        return false;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    self->errors[self->n_errors++] =
        sr_arena_printf(self->arena, "%s:%zu:%zu: %s", self->name, line, column, msg);
    return true;
}

static void s_buf_add(collect_csv_t *self, char c)
{
    if (self->buf_len + 1 >= self->buf_cap) {
        self->buf_cap = self->buf_cap ? self->buf_cap * 2 : 256;
        self->buf = sr_realloc(self->buf, self->buf_cap);
    }
    self->buf[self->buf_len++] = c;
}

static void s_field_end(collect_csv_t *self, size_t line)
{
    if (self->n_fields == self->cap_fields) {
        self->cap_fields = self->cap_fields ? self->cap_fields * 2 : 32;
        self->fields = sr_realloc(self->fields, self->cap_fields * sizeof *self->fields);
    }
    self->fields[self->n_fields++] =
        (field_t){sr_arena_strndup(self->scratch, self->buf ? self->buf : "", self->buf_len), line};
    self->buf_len = 0;
}

/* s_record - the next record's fields into self->fields; 1 read, 0 end of input, -1 a quoting
 * problem (reported; the parse stops there, since where records begin is no longer known) */
static int s_record(collect_csv_t *self)
{
    self->n_fields = 0;
    sr_arena_reset(self->scratch);
    if (self->p >= self->end)
        return 0;
    size_t field_line = self->line;
    for (;;) {
        if (self->p < self->end && *self->p == '"') {
            size_t open_line = self->line;
            self->p++;
            for (;;) {
                if (self->p >= self->end) {
                    s_error(self, open_line, self->n_fields + 1, "unterminated quoted field");
                    return -1;
                }
                char c = *self->p++;
                if (c == '"') {
                    if (self->p < self->end && *self->p == '"')
                        self->p++;
                    else
                        break;
                } else if (c == '\n')
                    self->line++;
                s_buf_add(self, c);
            }
            if (self->p < self->end && *self->p != ',' && *self->p != '\n' &&
                !(*self->p == '\r' && self->p + 1 < self->end && self->p[1] == '\n')) {
                s_error(self, self->line, self->n_fields + 1,
                        "unexpected text after a closing quote");
                return -1;
            }
        } else {
            while (self->p < self->end && *self->p != ',' && *self->p != '\n') {
                if (*self->p == '\r' && self->p + 1 < self->end && self->p[1] == '\n')
                    break;
                if (*self->p == '"') {
                    s_error(self, self->line, self->n_fields + 1,
                            "quote inside an unquoted field (quote the whole field)");
                    return -1;
                }
                s_buf_add(self, *self->p++);
            }
        }
        s_field_end(self, field_line);
        if (self->p >= self->end)
            return 1;
        if (*self->p == ',') {
            self->p++;
            field_line = self->line;
            continue;
        }
        self->p += *self->p == '\r' ? 2 : 1;
        self->line++;
        return 1;
    }
}

static bool s_blank(const collect_csv_t *self)
{
    return self->n_fields == 1 && self->fields[0].text[0] == '\0';
}

/* s_trim - the text without surrounding ASCII spaces and tabs, in arena */
static char *s_trim(sr_arena_t *arena, const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return sr_arena_strndup(arena, s, n);
}

/* s_header_key - a header as the tables spell it: trimmed, full-width parentheses as ASCII */
static char *s_header_key(collect_csv_t *self, const char *h)
{
    char *t = s_trim(self->arena, h), *o = t;
    for (const char *s = t; *s;) {
        if (strncmp(s, "（", 3) == 0 || strncmp(s, "）", 3) == 0) {
            *o++ = s[2] == '\x88' ? '(' : ')';
            s += 3;
        } else
            *o++ = *s++;
    }
    *o = '\0';
    return t;
}

static const column_t *s_lookup(const platform_t *pf, const char *key)
{
    for (size_t i = 0; i < pf->n_columns; i++)
        for (size_t n = 0; n < 4 && pf->columns[i].names[n]; n++)
            if (strcasecmp(pf->columns[i].names[n], key) == 0)
                return &pf->columns[i];
    return NULL;
}

/* s_decimal - "1,234.56" -> 123456 with decimals == 2; -1 with *why set when malformed */
static int s_decimal(const char *s, int decimals, int64_t *out, const char **why)
{
    int64_t v = 0;
    int digits = 0, group = -1, frac = -1;
    *why = "not a number";
    for (const char *c = s; *c; c++) {
        if (*c >= '0' && *c <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                *why = "number too large";
                return -1;
            }
            v = v * 10 + (*c - '0');
            digits++;
            if (frac >= 0)
                frac++;
            else if (group >= 0)
                group++;
        } else if (*c == ',' && frac < 0 && digits > 0 && (group < 0 ? digits <= 3 : group == 3))
            group = 0;
        else if (*c == '.' && frac < 0 && digits > 0 && (group < 0 || group == 3))
            frac = 0;
        else
            return -1;
    }
    if (digits == 0 || frac == 0 || (group >= 0 && frac < 0 && group != 3))
        return -1;
    if (frac > decimals) {
        *why = decimals ? "more than 2 decimals" : "not a whole number";
        return -1;
    }
    for (int i = frac < 0 ? 0 : frac; i < decimals; i++) {
        if (v > INT64_MAX / 10) {
            *why = "number too large";
            return -1;
        }
        v *= 10;
    }
    *out = v;
    return 0;
}

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* s_time - "YYYY-MM-DD HH:MM:SS" (China time) or Unix seconds -> microseconds since the epoch */
static int s_time(const char *s, int64_t *out)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t secs;
    const char *why;
    if (strspn(s, "0123456789") == strlen(s)) {
        if (s_decimal(s, 0, &secs, &why) < 0 || secs < UNIX_MIN_S || secs >= UNIX_MAX_S)
            return -1;
        *out = secs * 1000000;
        return 0;
    }
    static const char pattern[] = "dddd-dd-dd dd:dd:dd";
    if (strlen(s) != sizeof pattern - 1)
        return -1;
    for (size_t i = 0; pattern[i]; i++)
        if (pattern[i] == 'd' ? s[i] < '0' || s[i] > '9' : s[i] != pattern[i])
            return -1;
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) != 6)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] + (mo == 2 && s_leap(y)) || h > 23 ||
        mi > 59 || se > 59)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    secs = (int64_t)timegm(&tm) - CHINA_OFFSET_S;
    if (secs < UNIX_MIN_S || secs >= UNIX_MAX_S)
        return -1;
    *out = secs * 1000000;
    return 0;
}

/* s_cell - one value into sample s; false when reported as a problem */
static bool s_cell(collect_csv_t *self, const column_t *col, const char *header, size_t column,
                   const field_t *f, Sr__RoomSample *s)
{
    bool text = col->unit == UNIT_ROOM || col->unit == UNIT_SESSION;
    char *v = s_trim(text ? self->arena : self->scratch, f->text);
    void *at = (char *)s + col->field;
    const char *why = NULL;
    int64_t n = 0;
    switch (col->unit) {
    case UNIT_ROOM:
    case UNIT_SESSION:
        if (col->unit == UNIT_ROOM && !*v)
            why = "empty room id";
        *(char **)at = v;
        break;
    case UNIT_TIME:
        if (s_time(v, &n) < 0)
            why = "bad time (want YYYY-MM-DD HH:MM:SS China time or Unix seconds)";
        *(int64_t *)at = n;
        break;
    default:
        /* exports write "-" or nothing where the platform had no number yet */
        if (*v && strcmp(v, "-") != 0) {
            int decimals = col->unit == UNIT_YUAN || col->unit == UNIT_SECONDS ? 2 : 0;
            if (s_decimal(v, decimals, &n, &why) == 0) {
                why = NULL;
                if (col->unit == UNIT_SECONDS)
                    n = (n + 50) / 100;
            }
        }
        *(int64_t *)at = n;
    }
    if (!why)
        return true;
    s_error(self, f->line, column, "%s: %s: \"%s\"", header, why, f->text);
    return false;
}

/* s_parse - header, then rows; problems go to self->errors */
static void s_parse(collect_csv_t *self, const platform_t *pf, const char *room)
{
    int rc;
    while ((rc = s_record(self)) == 1 && s_blank(self))
        ;
    if (rc == 0) {
        s_error(self, 1, 1, "empty file: no header row");
        return;
    }
    if (rc < 0)
        return;
    size_t n_cols = self->n_fields, header_line = self->fields[0].line;
    const column_t **map = sr_arena_alloc(self->arena, n_cols * sizeof *map);
    char **names = sr_arena_alloc(self->arena, n_cols * sizeof *names);
    const column_t *time_col = NULL, *room_col = NULL;
    size_t metrics = 0;
    for (size_t i = 0; i < n_cols; i++) {
        names[i] = s_header_key(self, self->fields[i].text);
        map[i] = s_lookup(pf, names[i]);
        for (size_t j = 0; map[i] && j < i; j++)
            if (map[j] == map[i])
                s_error(self, header_line, i + 1, "%s: same field as column %zu (%s)", names[i],
                        j + 1, names[j]);
        if (!map[i])
            continue;
        if (map[i]->unit == UNIT_TIME)
            time_col = map[i];
        else if (map[i]->unit == UNIT_ROOM)
            room_col = map[i];
        else if (map[i]->unit != UNIT_SESSION)
            metrics++;
    }
    const column_t *tcol = &pf->columns[0], *rcol = &pf->columns[1];
    if (!time_col)
        s_error(self, header_line, 1, "no time column (%s or %s)", tcol->names[0], tcol->names[1]);
    if (!room_col && !room)
        s_error(self, header_line, 1, "no room column (%s or %s) and no --room", rcol->names[0],
                rcol->names[1]);
    if (!metrics)
        s_error(self, header_line, 1, "no metric column known for %s", pf->name);
    if (self->n_errors)
        return;
    while ((rc = s_record(self)) == 1) {
        if (s_blank(self))
            continue;
        size_t line = self->fields[0].line;
        if (self->n_fields != n_cols) {
            bool ok = self->n_fields < n_cols
                          ? s_error(self, line, self->n_fields + 1,
                                    "%s: missing (%zu fields, the header has %zu)",
                                    names[self->n_fields], self->n_fields, n_cols)
                          : s_error(self, line, n_cols + 1, "%zu fields, the header has %zu",
                                    self->n_fields, n_cols);
            if (!ok)
                return;
            continue;
        }
        Sr__RoomSample *s = sr_arena_alloc(self->arena, sizeof *s);
        sr__room_sample__init(s);
        s->platform = pf->platform;
        s->room_id = room ? (char *)room : "";
        for (size_t i = 0; i < n_cols; i++) {
            if (!map[i])
                continue;
            if (!s_cell(self, map[i], names[i], i + 1, &self->fields[i], s) && self->full)
                return;
            if (map[i]->unit == UNIT_ROOM && room && strcmp(s->room_id, room) != 0 && *s->room_id &&
                !s_error(self, line, i + 1, "%s: room \"%s\" is not --room %s", names[i],
                         s->room_id, room))
                return;
        }
        if (self->n_samples == self->cap_samples) {
            self->cap_samples = self->cap_samples ? self->cap_samples * 2 : 256;
            self->samples = sr_realloc(self->samples, self->cap_samples * sizeof *self->samples);
        }
        self->samples[self->n_samples++] = s;
    }
    if (rc == 0 && !self->n_samples && !self->n_errors)
        s_error(self, self->line, 1, "no data rows after the header");
}

collect_csv_t *collect_csv_parse(const char *name, const char *data, size_t len,
                                 Sr__Platform platform, const char *room)
{
    collect_csv_t *self = sr_calloc(1, sizeof *self);
    self->arena = sr_arena_new(64 * 1024);
    self->scratch = sr_arena_new(16 * 1024);
    self->name = sr_arena_strdup(self->arena, name);
    room = room ? sr_arena_strdup(self->arena, room) : NULL;
    self->p = data;
    self->end = data + len;
    self->line = 1;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        self->p += 3;
    const platform_t *pf = NULL;
    for (size_t i = 0; i < sizeof s_platforms / sizeof s_platforms[0]; i++)
        if (s_platforms[i].platform == platform)
            pf = &s_platforms[i];
    const char *nul = memchr(data, '\0', len);
    if (!pf)
        s_error(self, 1, 1, "no CSV format known for platform %d", (int)platform);
    else if (nul) {
        size_t line = 1;
        for (const char *c = data; c < nul; c++)
            line += *c == '\n';
        s_error(self, line, 1, "NUL byte: not a text file");
    } else
        s_parse(self, pf, room);
    if (self->n_errors)
        self->n_samples = 0;
    return self;
}

void collect_csv_destroy(collect_csv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    collect_csv_t *self = *self_p;
    sr_arena_destroy(&self->arena);
    sr_arena_destroy(&self->scratch);
    free(self->errors);
    free(self->samples);
    free(self->fields);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

size_t collect_csv_n_errors(const collect_csv_t *self)
{
    return self->n_errors;
}

const char *collect_csv_error(const collect_csv_t *self, size_t i)
{
    return i < self->n_errors ? self->errors[i] : NULL;
}

size_t collect_csv_n_samples(const collect_csv_t *self)
{
    return self->n_samples;
}

Sr__RoomSample *collect_csv_sample(const collect_csv_t *self, size_t i)
{
    return i < self->n_samples ? self->samples[i] : NULL;
}

collect_read_t collect_csv_next(void *src, ProtobufCAllocator *allocator, Sr__RoomSample **out)
{
    collect_csv_t *self = src;
    (void)allocator;
    if (self->next >= self->n_samples)
        return COLLECT_READ_END;
    *out = self->samples[self->next++];
    return COLLECT_READ_OK;
}

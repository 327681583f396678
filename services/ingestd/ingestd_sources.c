/* ingestd_sources - the platforms ingestd polls itself, feeding the collector queue.
 *
 * Owns the poller (ingestd_poll.c) on the service loop and, with SR_INGEST_POLL_ROOMS=discover,
 * the room discovery: GET <url>/rooms ({"rooms":[{"platform":..,"room_id":..}]}) at start-up and
 * every DISCOVER_EVERY_MS, non-blocking on its own libcurl multi handle moved on by a short timer
 * while the request is in flight. Rooms that appear are added to the poller, rooms that vanish
 * are removed. Of all these rooms the instance polls its share (ingestd_shard.c), taken anew
 * when instances come or go. Every polled sample goes to ingestd_enqueue_sample, so it
 * is stored by the same COPY flush and published through the same metric.room rate limit.
 * The token is sent as a header and never logged. Also the checks of the polling settings.
 */
#include "ingestd.h"
#include "ingestd_platform.h"
#include "ingestd_poll.h"

#include "sr_alloc.h"
#include "sr_db.h"
#include "sr_log.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVER_EVERY_MS (60 * 1000)
#define DISCOVER_TICK_MS  10
#define DISCOVER_MAX_BODY (4 << 20)
#define POLL_RETRIES      2
#define POLL_BACKOFF_MS   200
#define POLL_MAX_BACKOFF  (5 * 60 * 1000)
#define POLL_MAX_BODY     (1 << 20)

struct ingestd_sources_t {
    sr_service_t *svc;
    const ingestd_config_t *cfg;
    ingestd_poll_t *poll;
    ingestd_shard_t *shard;
    ingestd_room_list_t all;    /* configured or discovered: every instance's rooms */
    ingestd_room_list_t polled; /* this instance's share, handed to the poller */
    sr_counter_t *dropped;      /* samples the full queue refused */
    sr_gauge_t *rooms;          /* rooms this instance polls */
    /* discovery */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    int busy, every_timer, tick_timer;
    char *body;
    size_t len, cap;
    char curl_err[CURL_ERROR_SIZE];
    sr_complaint_t discover_down;
    sr_counter_t *discovered[2]; /* sr_ingest_discover_total{result=ok|error} */
};

/* --- the room list ------------------------------------------------------------------------ */

void ingestd_room_list_free(ingestd_room_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->platforms[i]);
        free(list->rooms[i]);
    }
    free(list->platforms);
    free(list->rooms);
    memset(list, 0, sizeof *list);
}

static int s_list_has(const ingestd_room_list_t *list, const char *platform, const char *room)
{
    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->platforms[i], platform) == 0 && strcmp(list->rooms[i], room) == 0)
            return 1;
    return 0;
}

/* s_list_add - append a checked pair; -1 with the reason in err */
static int s_list_add(ingestd_room_list_t *list, const char *platform, const char *room, char *err,
                      size_t errlen)
{
    if (!ingestd_platform_find(platform)) {
        snprintf(err, errlen, "unknown platform \"%s\" (channels, douyin or kuaishou)", platform);
        return -1;
    }
    if (!room[0]) {
        snprintf(err, errlen, "empty room id for platform %s", platform);
        return -1;
    }
    for (const unsigned char *c = (const unsigned char *)room; *c; c++)
        if (*c <= ' ' || *c == 0x7f) {
            snprintf(err, errlen, "room id \"%s\" has a space or control character", room);
            return -1;
        }
    if (!ingestd_utf8_ok(room)) { /* it would fail the COPY of every flush it is in */
        snprintf(err, errlen, "room id of %s is not UTF-8", platform);
        return -1;
    }
    if (s_list_has(list, platform, room)) {
        snprintf(err, errlen, "%s:%s is listed twice", platform, room);
        return -1;
    }
    list->platforms = sr_realloc(list->platforms, (list->count + 1) * sizeof *list->platforms);
    list->rooms = sr_realloc(list->rooms, (list->count + 1) * sizeof *list->rooms);
    list->platforms[list->count] = sr_strdup(platform);
    list->rooms[list->count] = sr_strdup(room);
    list->count++;
    return 0;
}

int ingestd_room_list_parse(const char *text, ingestd_room_list_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *copy = sr_strdup(text);
    int rc = 0;
    size_t n = 1;
    /* split by hand: strtok_r would skip the empty entries of "a,,b" that hide a mistake */
    for (char *item = copy, *next; item && rc == 0; item = next, n++) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        item += strspn(item, " \t");
        size_t len = strlen(item);
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            item[--len] = '\0';
        char *colon = strchr(item, ':');
        char why[160];
        if (n == 1 && !next && strcmp(item, "discover") == 0) {
            out->discover = 1;
        } else if (!colon) {
            snprintf(err, errlen, "entry %zu \"%s\": expected platform:room_id or \"discover\"", n,
                     item);
            rc = -1;
        } else {
            *colon = '\0';
            if (s_list_add(out, item, colon + 1, why, sizeof why) < 0) {
                snprintf(err, errlen, "entry %zu: %s", n, why);
                rc = -1;
            }
        }
    }
    free(copy);
    if (rc < 0)
        ingestd_room_list_free(out);
    return rc;
}

int ingestd_check_config(const void *config, char *err, size_t errlen)
{
    const ingestd_config_t *cfg = config;
    int has_url = cfg->platform_url[0] != '\0', has_rooms = cfg->poll_rooms[0] != '\0';
    if (has_url && strncmp(cfg->platform_url, "http://", 7) != 0 &&
        strncmp(cfg->platform_url, "https://", 8) != 0) {
        snprintf(err, errlen, "SR_INGEST_PLATFORM_URL: must start with http:// or https://");
        return -1;
    }
    if (has_url != has_rooms) {
        snprintf(err, errlen, "%s is set but %s is empty",
                 has_url ? "SR_INGEST_PLATFORM_URL" : "SR_INGEST_POLL_ROOMS",
                 has_url ? "SR_INGEST_POLL_ROOMS" : "SR_INGEST_PLATFORM_URL");
        return -1;
    }
    for (const unsigned char *c = (const unsigned char *)cfg->platform_token; *c; c++)
        if (*c < ' ' || *c == 0x7f) {
            snprintf(err, errlen, "SR_INGEST_PLATFORM_TOKEN: has a control character");
            return -1;
        }
    if (strcmp(cfg->spool_fsync, "always") != 0 && strcmp(cfg->spool_fsync, "second") != 0 &&
        strcmp(cfg->spool_fsync, "never") != 0) {
        snprintf(err, errlen, "SR_INGEST_SPOOL_FSYNC: must be always, second or never");
        return -1;
    }
    if (cfg->spool_max_bytes > 0 && !cfg->spool_dir[0]) {
        snprintf(err, errlen,
                 "SR_INGEST_SPOOL_DIR: empty (set SR_INGEST_SPOOL_MAX=0 for no spool)");
        return -1;
    }
    if (ingestd_push_check_bind(cfg->push_bind) < 0) {
        snprintf(err, errlen, "SR_INGEST_PUSH_BIND: must be ADDR:PORT with an IP address");
        return -1;
    }
    if (has_rooms) {
        ingestd_room_list_t list;
        char why[200];
        if (ingestd_room_list_parse(cfg->poll_rooms, &list, why, sizeof why) < 0) {
            snprintf(err, errlen, "SR_INGEST_POLL_ROOMS: %s", why);
            return -1;
        }
        ingestd_room_list_free(&list);
    }
    return 0;
}

/* --- polling ------------------------------------------------------------------------------ */

static void s_on_sample(void *arg, const Sr__RoomSample *sample)
{
    ingestd_sources_t *self = arg;
    if (ingestd_enqueue_sample(self->svc, sample) < 0)
        sr_counter_inc(self->dropped);
}

/* s_sync - make the poller poll exactly the rooms of want (taken over) */
static void s_sync(ingestd_sources_t *self, ingestd_room_list_t *want)
{
    size_t added = 0, removed = 0;
    for (size_t i = 0; i < self->polled.count; i++) {
        if (s_list_has(want, self->polled.platforms[i], self->polled.rooms[i]))
            continue;
        if (ingestd_poll_remove_room(self->poll, self->polled.platforms[i],
                                     self->polled.rooms[i]) == 0)
            removed++;
    }
    ingestd_room_list_t now = {0};
    char why[200];
    for (size_t i = 0; i < want->count; i++) {
        int had = s_list_has(&self->polled, want->platforms[i], want->rooms[i]);
        if (!had && ingestd_poll_add_room(self->poll, want->platforms[i], want->rooms[i]) < 0)
            continue;
        added += !had;
        if (s_list_add(&now, want->platforms[i], want->rooms[i], why, sizeof why) < 0)
            sr_warn("poll_room_skipped", "err=\"%s\"", why);
    }
    ingestd_room_list_free(&self->polled);
    ingestd_room_list_free(want);
    self->polled = now;
    sr_gauge_set(self->rooms, (double)self->polled.count);
    if (added || removed)
        sr_info("poll_rooms", "rooms=%zu added=%zu removed=%zu", self->polled.count, added,
                removed);
}

/* s_apply - poll this instance's share of all the rooms */
static void s_apply(ingestd_sources_t *self)
{
    ingestd_room_list_t mine = {0};
    char why[200];
    for (size_t i = 0; i < self->all.count; i++)
        if (ingestd_shard_mine(self->shard, self->all.platforms[i], self->all.rooms[i]) &&
            s_list_add(&mine, self->all.platforms[i], self->all.rooms[i], why, sizeof why) < 0)
            sr_warn("poll_room_skipped", "err=\"%s\"", why);
    s_sync(self, &mine);
}

void ingestd_sources_cron(ingestd_sources_t *self)
{
    if (self && ingestd_shard_refresh(self->shard))
        s_apply(self);
}

/* --- discovery ---------------------------------------------------------------------------- */

static size_t s_write(char *data, size_t size, size_t n, void *arg)
{
    ingestd_sources_t *self = arg;
    size_t bytes = size * n;
    if (self->len + bytes > DISCOVER_MAX_BODY)
        return 0;
    if (self->len + bytes + 1 > self->cap) {
        self->cap = (self->len + bytes + 1) * 2;
        self->body = sr_realloc(self->body, self->cap);
    }
    memcpy(self->body + self->len, data, bytes);
    self->len += bytes;
    return bytes;
}

/* s_parse_rooms - the /rooms body into want; rooms of platforms ingestd has no connector for
 * are skipped (counted in *skipped); -1 with the problem in err */
static int s_parse_rooms(const char *body, size_t len, ingestd_room_list_t *want, size_t *skipped,
                         char *err, size_t errlen)
{
    memset(want, 0, sizeof *want);
    *skipped = 0;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    json_t *rooms = root ? json_object_get(root, "rooms") : NULL;
    if (!json_is_array(rooms)) {
        snprintf(err, errlen, "%s", root ? "no \"rooms\" array" : jerr.text);
        json_decref(root);
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(rooms, i, item)
    {
        const char *platform = json_string_value(json_object_get(item, "platform"));
        const char *room = json_string_value(json_object_get(item, "room_id"));
        char why[200];
        if (!platform || !room) {
            snprintf(err, errlen, "rooms[%zu]: platform and room_id must be strings", i);
            json_decref(root);
            ingestd_room_list_free(want);
            return -1;
        }
        if (!ingestd_platform_find(platform))
            (*skipped)++;
        else if (!s_list_has(want, platform, room) &&
                 s_list_add(want, platform, room, why, sizeof why) < 0) {
            snprintf(err, errlen, "rooms[%zu]: %s", i, why);
            json_decref(root);
            ingestd_room_list_free(want);
            return -1;
        }
    }
    json_decref(root);
    return 0;
}

/* s_discover_done - the /rooms answer arrived (or failed) */
static void s_discover_done(ingestd_sources_t *self, CURLcode cc)
{
    self->busy = 0;
    sr_loop_cancel_timer(sr_service_loop(self->svc), self->tick_timer);
    self->tick_timer = 0;
    if (curl_multi_remove_handle(self->multi, self->easy) != CURLM_OK)
        sr_warn("curl_remove_failed", "what=discover");
    long status = 0;
    if (curl_easy_getinfo(self->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    char err[256] = "";
    ingestd_room_list_t want = {0};
    size_t skipped = 0;
    if (cc != CURLE_OK)
        snprintf(err, sizeof err, "%s",
                 self->curl_err[0] ? self->curl_err : curl_easy_strerror(cc));
    else if (status != 200)
        snprintf(err, sizeof err, "HTTP status %ld", status);
    else
        s_parse_rooms(self->body ? self->body : "", self->len, &want, &skipped, err, sizeof err);
    if (err[0]) {
        sr_counter_inc(self->discovered[1]);
        sr_complain(&self->discover_down, "url=\"%s/rooms\" err=\"%s\"", self->cfg->platform_url,
                    err);
        return;
    }
    sr_counter_inc(self->discovered[0]);
    sr_recovered(&self->discover_down);
    if (skipped)
        sr_debug("poll_discover_skipped", "rooms=%zu err=\"no connector for their platform\"",
                 skipped);
    ingestd_room_list_free(&self->all);
    self->all = want;
    s_apply(self);
}

static void s_discover_tick(void *arg)
{
    ingestd_sources_t *self = arg;
    int running = 0;
    CURLMcode mc = curl_multi_perform(self->multi, &running);
    if (mc != CURLM_OK)
        sr_warn("curl_perform_failed", "what=discover err=\"%s\"", curl_multi_strerror(mc));
    int left = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(self->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            s_discover_done(self, msg->data.result);
            return;
        }
}

/* s_discover - start a GET <url>/rooms unless one is in flight */
static void s_discover(void *arg)
{
    ingestd_sources_t *self = arg;
    if (self->busy)
        return;
    self->len = 0;
    self->curl_err[0] = '\0';
    if (curl_multi_add_handle(self->multi, self->easy) != CURLM_OK) {
        sr_warn("curl_add_failed", "what=discover");
        return;
    }
    self->tick_timer =
        sr_loop_add_timer(sr_service_loop(self->svc), DISCOVER_TICK_MS, 1, s_discover_tick, self);
    if (self->tick_timer <= 0) {
        if (curl_multi_remove_handle(self->multi, self->easy) != CURLM_OK)
            sr_warn("curl_remove_failed", "what=discover");
        return;
    }
    self->busy = 1;
}

/* s_discover_setup - the multi and easy handles of discovery, set once */
static int s_discover_setup(ingestd_sources_t *self)
{
    self->multi = curl_multi_init();
    self->easy = curl_easy_init();
    if (!self->multi || !self->easy)
        return -1;
    const char *base = self->cfg->platform_url;
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    char *url = sr_asprintf("%.*s/rooms", (int)blen, base);
    CURL *e = self->easy;
    int ok =
        curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, self->headers) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_WRITEDATA, self) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, self->curl_err) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->cfg->poll_timeout_ms) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(e, CURLOPT_USERAGENT, "sr-ingestd") == CURLE_OK;
    free(url);
    return ok ? 0 : -1;
}

/* --- lifecycle ---------------------------------------------------------------------------- */

ingestd_sources_t *ingestd_sources_new(sr_service_t *svc)
{
    ingestd_sources_t *self = sr_calloc(1, sizeof *self);
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    sr_metrics_t *m = sr_service_metrics(svc);
    self->dropped = sr_metrics_counter(m, "sr_ingest_poll_dropped_total", NULL,
                                       "polled samples dropped because the queue was full");
    self->rooms = sr_metrics_gauge(m, "sr_ingest_poll_rooms", NULL,
                                   "rooms this instance polls (its share of all of them)");
    const ingestd_poll_opts_t opts = {
        .interval_ms = self->cfg->poll_interval_ms,
        .timeout_ms = self->cfg->poll_timeout_ms,
        .retries = POLL_RETRIES,
        .backoff_ms = POLL_BACKOFF_MS,
        .max_backoff_ms = POLL_MAX_BACKOFF,
        .max_body = POLL_MAX_BODY,
    };
    self->poll = ingestd_poll_new(sr_service_loop(svc), m, &opts, s_on_sample, self);
    char *auth = self->cfg->platform_token[0]
                     ? sr_asprintf("Authorization: Bearer %s", self->cfg->platform_token)
                     : NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && ingestd_platform_at(i); i++)
        rc = ingestd_poll_platform(self->poll, ingestd_platform_name(ingestd_platform_at(i)),
                                   self->cfg->platform_url, auth);
    if (rc == 0 && auth) {
        self->headers = curl_slist_append(NULL, auth);
        rc = self->headers ? 0 : -1;
    }
    free(auth);
    ingestd_room_list_t list;
    char err[200];
    if (rc == 0 && ingestd_room_list_parse(self->cfg->poll_rooms, &list, err, sizeof err) < 0) {
        sr_error("poll_rooms_invalid", "err=\"%s\"", err);
        rc = -1;
    }
    if (rc == 0 && !(self->shard = ingestd_shard_new(svc))) {
        sr_error("poll_share_failed", "err=\"%s\"", sr_db_error(sr_service_db(svc)));
        ingestd_room_list_free(&list);
        rc = -1;
    }
    if (rc < 0) {
        ingestd_sources_destroy(&self);
        return NULL;
    }
    if (!list.discover) {
        self->all = list;
        s_apply(self);
        return self;
    }
    self->discover_down = (sr_complaint_t)SR_COMPLAINT_INIT("platform.rooms");
    for (int r = 0; r < 2; r++)
        self->discovered[r] = sr_metrics_counter(m, "sr_ingest_discover_total",
                                                 r == 0 ? "result=\"ok\"" : "result=\"error\"",
                                                 "room discoveries (GET <url>/rooms) by result");
    if (s_discover_setup(self) < 0) {
        sr_error("poll_discover_failed", "err=\"curl setup failed\"");
        ingestd_sources_destroy(&self);
        return NULL;
    }
    self->every_timer =
        sr_loop_add_timer(sr_service_loop(svc), DISCOVER_EVERY_MS, 1, s_discover, self);
    if (self->every_timer <= 0) {
        ingestd_sources_destroy(&self);
        return NULL;
    }
    sr_info("poll_discover", "url=\"%s/rooms\" every_ms=%d", self->cfg->platform_url,
            DISCOVER_EVERY_MS);
    s_discover(self);
    return self;
}

void ingestd_sources_destroy(ingestd_sources_t **self_p)
{
    ingestd_sources_t *self = *self_p;
    if (!self)
        return;
    sr_loop_t *loop = sr_service_loop(self->svc);
    if (self->every_timer > 0)
        sr_loop_cancel_timer(loop, self->every_timer);
    if (self->tick_timer > 0)
        sr_loop_cancel_timer(loop, self->tick_timer);
    if (self->busy && curl_multi_remove_handle(self->multi, self->easy) != CURLM_OK)
        sr_warn("curl_remove_failed", "what=discover");
    if (self->easy)
        curl_easy_cleanup(self->easy);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    curl_slist_free_all(self->headers);
    free(self->body);
    ingestd_poll_destroy(&self->poll);
    ingestd_shard_destroy(&self->shard);
    ingestd_room_list_free(&self->all);
    ingestd_room_list_free(&self->polled);
    free(self);
    *self_p = NULL;
}

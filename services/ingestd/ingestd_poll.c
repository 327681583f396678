/* ingestd_poll - libcurl multi poller of the platforms' live-room data. See ingestd_poll.h.
 *
 * Owns one CURLM, one reusable CURL easy handle per room (so connections are kept alive), the
 * credential header lists and one arena for the sample being handed out. A repeating timer of
 * TICK_MS starts the rooms that are due and calls curl_multi_perform, which only does the I/O
 * that is ready: sr_loop watches file descriptors for reading only, and a connect needs
 * writability, so the socket_action interface would need more of sr_loop than it offers.
 * Parsing is ingestd_platform.c.
 */
#include "ingestd_poll.h"

#include "ingestd_platform.h"
#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <assert.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_MS       10
#define NPLATFORMS    3
#define MAX_SHIFT     16
#define ERR_TEXT_SIZE 512

typedef enum {
    RESULT_OK,
    RESULT_HTTP_ERROR,
    RESULT_PLATFORM_ERROR,
    RESULT_BAD_BODY,
    RESULT_TIMEOUT,
    NRESULTS,
} result_t;

static const char *const s_result_names[NRESULTS] = {"ok", "http_error", "platform_error",
                                                     "bad_body", "timeout"};

typedef struct {
    const ingestd_platform_t *platform;
    char *base_url;                /* NULL until configured */
    struct curl_slist *headers;    /* holds the credential: never logged */
    char *what;                    /* "platform.<name>", the complaint's dependency */
    sr_complaint_t complaint;      /* one streak per platform */
    size_t nfailing;               /* rooms whose last round failed */
    sr_counter_t *polls[NRESULTS]; /* sr_ingest_poll_total by result */
} plat_t;

typedef struct {
    ingestd_poll_t *poll;
    plat_t *plat;
    char *room_id;
    CURL *easy;
    int busy;          /* a request is in flight */
    int failing;       /* failed since its last good answer: in plat->nfailing */
    int attempt;       /* retries done in this round */
    int failed_rounds; /* consecutive rounds that failed */
    int64_t due_ms;    /* monotonic time of the next request */
    int64_t round_ms;  /* when the current round began, for a steady cadence */
    char *body;        /* the answer so far */
    size_t len, cap;
    int too_big; /* the answer passed max_body and was cut */
    char curl_err[CURL_ERROR_SIZE];
} room_t;

struct ingestd_poll_t {
    sr_loop_t *loop;
    ingestd_poll_opts_t opts;
    ingestd_sample_fn *on_sample;
    void *arg;
    CURLM *multi;
    int timer;
    plat_t plats[NPLATFORMS];
    room_t **rooms;
    size_t nrooms, caprooms;
    sr_arena_t *arena;
};

static void s_tick(void *arg);

ingestd_poll_t *ingestd_poll_new(sr_loop_t *loop, sr_metrics_t *metrics,
                                 const ingestd_poll_opts_t *opts, ingestd_sample_fn *on_sample,
                                 void *arg)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        sr_panic("curl_init", "err=\"curl_global_init failed\"");
    ingestd_poll_t *self = sr_calloc(1, sizeof *self);
    self->loop = loop;
    assert(opts->interval_ms > 0 && opts->timeout_ms > 0 && opts->retries >= 0 &&
           opts->backoff_ms >= 0 && opts->max_body > 0);
    self->opts = *opts;
    if (self->opts.max_backoff_ms < self->opts.interval_ms)
        self->opts.max_backoff_ms = self->opts.interval_ms;
    self->on_sample = on_sample;
    self->arg = arg;
    self->multi = curl_multi_init();
    if (!self->multi)
        sr_panic("curl_init", "err=\"curl_multi_init failed\"");
    self->arena = sr_arena_new(4096);
    assert(ingestd_platform_at(NPLATFORMS - 1) && !ingestd_platform_at(NPLATFORMS));
    for (size_t i = 0; i < NPLATFORMS; i++) {
        plat_t *pl = &self->plats[i];
        pl->platform = ingestd_platform_at(i);
        pl->what = sr_asprintf("platform.%s", ingestd_platform_name(pl->platform));
        pl->complaint = (sr_complaint_t)SR_COMPLAINT_INIT(pl->what);
        for (int r = 0; r < NRESULTS; r++) {
            char *labels = sr_asprintf("platform=\"%s\",result=\"%s\"",
                                       ingestd_platform_name(pl->platform), s_result_names[r]);
            pl->polls[r] = sr_metrics_counter(metrics, "sr_ingest_poll_total", labels,
                                              "Platform polls by platform and result");
            free(labels);
        }
    }
    self->timer = sr_loop_add_timer(loop, TICK_MS, 1, s_tick, self);
    return self;
}

/* s_room_free - forget one room, abandoning its request */
static void s_room_free(ingestd_poll_t *self, room_t *room)
{
    if (room->busy && curl_multi_remove_handle(self->multi, room->easy) != CURLM_OK)
        sr_warn("curl_remove_failed", "room=%s", room->room_id);
    /* the streak ends with its last failing room, but nothing recovered: end it quietly */
    if (room->failing && --room->plat->nfailing == 0)
        room->plat->complaint = (sr_complaint_t)SR_COMPLAINT_INIT(room->plat->what);
    curl_easy_cleanup(room->easy);
    free(room->room_id);
    free(room->body);
    free(room);
}

void ingestd_poll_destroy(ingestd_poll_t **self_p)
{
    ingestd_poll_t *self = *self_p;
    if (!self)
        return;
    sr_loop_cancel_timer(self->loop, self->timer);
    for (size_t i = 0; i < self->nrooms; i++)
        s_room_free(self, self->rooms[i]);
    free(self->rooms);
    curl_multi_cleanup(self->multi);
    for (size_t i = 0; i < NPLATFORMS; i++) {
        free(self->plats[i].base_url);
        curl_slist_free_all(self->plats[i].headers);
        free(self->plats[i].what);
    }
    sr_arena_destroy(&self->arena);
    free(self);
    curl_global_cleanup();
    *self_p = NULL;
}

static plat_t *s_plat(ingestd_poll_t *self, const char *name)
{
    for (size_t i = 0; i < NPLATFORMS; i++)
        if (strcmp(ingestd_platform_name(self->plats[i].platform), name) == 0)
            return &self->plats[i];
    return NULL;
}

int ingestd_poll_platform(ingestd_poll_t *self, const char *platform, const char *base_url,
                          const char *auth_header)
{
    plat_t *pl = s_plat(self, platform);
    if (!pl) {
        sr_error("poll_platform_unknown", "platform=\"%s\"", platform);
        return -1;
    }
    /* rooms' handles point at the URL and header list in flight: they cannot change under them */
    for (size_t i = 0; i < self->nrooms; i++)
        if (self->rooms[i]->plat == pl) {
            sr_error("poll_platform_busy", "platform=%s err=\"remove its rooms first\"", platform);
            return -1;
        }
    /* a header without "Name:" or with a line break would be sent as something else */
    if (auth_header &&
        (!strchr(auth_header, ':') || *auth_header == ':' || strpbrk(auth_header, "\r\n"))) {
        sr_error("poll_credential_malformed", "platform=%s expected=\"Name: value\"", platform);
        return -1;
    }
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    if (headers && auth_header) {
        struct curl_slist *more = curl_slist_append(headers, auth_header);
        if (!more)
            curl_slist_free_all(headers);
        headers = more;
    }
    if (!headers)
        sr_panic("curl_slist", "err=\"out of memory\"");
    free(pl->base_url);
    curl_slist_free_all(pl->headers);
    pl->base_url = sr_strdup(base_url);
    pl->headers = headers;
    sr_info("poll_platform", "platform=%s base_url=\"%s\" credential=%s", platform, base_url,
            auth_header ? "set" : "none");
    return 0;
}

/* s_write - libcurl's body sink; stops the transfer past max_body */
static size_t s_write(char *data, size_t size, size_t n, void *arg)
{
    room_t *room = arg;
    size_t bytes = size * n;
    if (room->len + bytes > room->poll->opts.max_body) {
        room->too_big = 1;
        return 0;
    }
    if (room->len + bytes + 1 > room->cap) {
        room->cap = (room->len + bytes + 1) * 2;
        room->body = sr_realloc(room->body, room->cap);
    }
    memcpy(room->body + room->len, data, bytes);
    room->len += bytes;
    return bytes;
}

/* s_easy_setup - one room's handle, set once and reused for every request */
static int s_easy_setup(ingestd_poll_t *self, room_t *room)
{
    char *url = ingestd_platform_url(room->plat->platform, room->plat->base_url, room->room_id);
    CURL *e = room->easy;
    int ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_HTTPHEADER, room->plat->headers) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, s_write) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_WRITEDATA, room) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_PRIVATE, room) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_ERRORBUFFER, room->curl_err) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)self->opts.timeout_ms) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_USERAGENT, "sr-ingestd") == CURLE_OK;
    free(url);
    return ok ? 0 : -1;
}

int ingestd_poll_add_room(ingestd_poll_t *self, const char *platform, const char *room_id)
{
    plat_t *pl = s_plat(self, platform);
    if (!pl || !pl->base_url) {
        sr_error("poll_room_rejected", "platform=\"%s\" room=\"%s\" err=\"%s\"", platform, room_id,
                 pl ? "platform not configured" : "unknown platform");
        return -1;
    }
    for (size_t i = 0; i < self->nrooms; i++)
        if (self->rooms[i]->plat == pl && strcmp(self->rooms[i]->room_id, room_id) == 0) {
            sr_error("poll_room_rejected", "platform=%s room=\"%s\" err=\"already polled\"",
                     platform, room_id);
            return -1;
        }
    room_t *room = sr_calloc(1, sizeof *room);
    room->poll = self;
    room->plat = pl;
    room->room_id = sr_strdup(room_id);
    room->easy = curl_easy_init();
    room->due_ms = sr_clock_mono_ms();
    if (!room->easy || s_easy_setup(self, room) < 0) {
        sr_error("poll_room_rejected", "platform=%s room=\"%s\" err=\"curl setup failed\"",
                 platform, room_id);
        s_room_free(self, room);
        return -1;
    }
    if (self->nrooms == self->caprooms) {
        self->caprooms = self->caprooms ? self->caprooms * 2 : 16;
        self->rooms = sr_realloc(self->rooms, self->caprooms * sizeof *self->rooms);
    }
    self->rooms[self->nrooms++] = room;
    return 0;
}

int ingestd_poll_remove_room(ingestd_poll_t *self, const char *platform, const char *room_id)
{
    for (size_t i = 0; i < self->nrooms; i++) {
        room_t *room = self->rooms[i];
        if (strcmp(ingestd_platform_name(room->plat->platform), platform) == 0 &&
            strcmp(room->room_id, room_id) == 0) {
            s_room_free(self, room);
            self->rooms[i] = self->rooms[--self->nrooms];
            return 0;
        }
    }
    return -1;
}

size_t ingestd_poll_rooms(const ingestd_poll_t *self)
{
    return self->nrooms;
}

/* s_start - send the room's next request */
static void s_start(ingestd_poll_t *self, room_t *room, int64_t now)
{
    if (room->attempt == 0)
        room->round_ms = now;
    room->len = 0;
    room->too_big = 0;
    room->curl_err[0] = '\0';
    if (curl_multi_add_handle(self->multi, room->easy) != CURLM_OK) {
        sr_warn("curl_add_failed", "platform=%s room=%s",
                ingestd_platform_name(room->plat->platform), room->room_id);
        room->due_ms = now + self->opts.interval_ms;
        return;
    }
    room->busy = 1;
}

/* s_schedule - when the room asks next, after a request that ended with result */
static void s_schedule(ingestd_poll_t *self, room_t *room, result_t result, int64_t now)
{
    plat_t *pl = room->plat;
    if (result == RESULT_OK) {
        room->attempt = 0;
        room->failed_rounds = 0;
        room->due_ms = room->round_ms + self->opts.interval_ms;
        if (room->failing) {
            room->failing = 0;
            if (--pl->nfailing == 0)
                sr_recovered(&pl->complaint);
        }
        return;
    }
    if (!room->failing) {
        room->failing = 1;
        pl->nfailing++;
    }
    /* the transport may work on a second try; a platform error or bad body will not */
    int transport = result == RESULT_HTTP_ERROR || result == RESULT_TIMEOUT;
    if (transport && room->attempt < self->opts.retries) {
        int64_t delay = self->opts.backoff_ms
                        << (room->attempt < MAX_SHIFT ? room->attempt : MAX_SHIFT);
        room->due_ms =
            now + (delay < self->opts.max_backoff_ms ? delay : self->opts.max_backoff_ms);
        room->attempt++;
        return;
    }
    room->attempt = 0;
    if (room->failed_rounds < MAX_SHIFT)
        room->failed_rounds++;
    int64_t wait = self->opts.interval_ms << (room->failed_rounds - 1);
    if (wait > self->opts.max_backoff_ms)
        wait = self->opts.max_backoff_ms;
    room->due_ms = now + wait;
}

/* s_finish - classify a finished request, hand out its sample or complain */
static void s_finish(ingestd_poll_t *self, room_t *room, CURLcode cc)
{
    room->busy = 0;
    if (curl_multi_remove_handle(self->multi, room->easy) != CURLM_OK)
        sr_warn("curl_remove_failed", "room=%s", room->room_id);
    plat_t *pl = room->plat;
    result_t result;
    char err[ERR_TEXT_SIZE] = "";
    long status = 0;
    if (curl_easy_getinfo(room->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        status = 0;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        result = RESULT_TIMEOUT;
        snprintf(err, sizeof err, "no answer within %lld ms", (long long)self->opts.timeout_ms);
    } else if (cc == CURLE_WRITE_ERROR && room->too_big) {
        result = RESULT_BAD_BODY;
        snprintf(err, sizeof err, "answer larger than %zu bytes", self->opts.max_body);
    } else if (cc != CURLE_OK) {
        result = RESULT_HTTP_ERROR;
        snprintf(err, sizeof err, "%s",
                 room->curl_err[0] ? room->curl_err : curl_easy_strerror(cc));
    } else if (status != 200) {
        result = RESULT_HTTP_ERROR;
        snprintf(err, sizeof err, "HTTP status %ld", status);
    } else {
        Sr__RoomSample sample;
        ingestd_parse_rc_t rc =
            ingestd_platform_parse(pl->platform, room->room_id, room->body, room->len, &sample,
                                   self->arena, err, sizeof err);
        result = rc == INGESTD_PARSE_OK               ? RESULT_OK
                 : rc == INGESTD_PARSE_PLATFORM_ERROR ? RESULT_PLATFORM_ERROR
                                                      : RESULT_BAD_BODY;
        if (result == RESULT_OK)
            self->on_sample(self->arg, &sample);
        sr_arena_reset(self->arena);
    }
    sr_counter_inc(pl->polls[result]);
    if (result != RESULT_OK)
        sr_complain(&pl->complaint, "room=%s result=%s attempt=%d err=\"%s\"", room->room_id,
                    s_result_names[result], room->attempt, err);
    s_schedule(self, room, result, sr_clock_mono_ms());
}

/* s_tick - start what is due, move the transfers on, finish what is done */
static void s_tick(void *arg)
{
    ingestd_poll_t *self = arg;
    int64_t now = sr_clock_mono_ms();
    for (size_t i = 0; i < self->nrooms; i++)
        if (!self->rooms[i]->busy && now >= self->rooms[i]->due_ms)
            s_start(self, self->rooms[i], now);
    int running = 0;
    CURLMcode mc = curl_multi_perform(self->multi, &running);
    if (mc != CURLM_OK)
        sr_warn("curl_perform_failed", "err=\"%s\"", curl_multi_strerror(mc));
    int left = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(self->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        room_t *room = NULL;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&room) != CURLE_OK ||
            !room)
            sr_panic("curl_private", "err=\"finished transfer without its room\"");
        s_finish(self, room, msg->data.result);
    }
}

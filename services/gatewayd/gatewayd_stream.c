/* gatewayd_stream - GET /api/v1/stream: bus events to browsers as Server-Sent Events.
 *
 * The hub subscribes to the whole bus on the service loop thread. Each event is offered to
 * every open stream; a stream takes it when the topic starts with one of the prefixes it asked
 * for (?topics=metric.room,region.), the principal holds the action the topic needs
 * (regions.read for region., users.read for user., rooms.read for the rest) and sees one of the
 * event's regions: a region's or a room's own, a user's bound regions, and for room numbers the
 * region of the room in the registry (sr-ingestd's metrics.room.list, read by a thread of its
 * own every ROOMS_EVERY_MS so a slow sr-ingestd never holds up the loop, and updated on each
 * room.registered). An event of no known region goes to HQ roles only.
 *
 * Each event is written as "id: <source>:<seq>", "event: <topic>", "data: <JSON>". Events of a
 * source with an outbox (the owning daemon's schema, e.g. access) can be resumed: with
 * Last-Event-ID the stream first reads the rows after that seq from <source>.outbox, then the
 * live ones, and drops what it has already sent (a catch-up before joining the hub and one more
 * after, so nothing falls between). Numbers published straight to the bus (metric.room) are
 * live only. A comment line goes out every SR_GATEWAY_SSE_HEARTBEAT, which also notices
 * browsers that went away. A stream whose unsent bytes pass SR_GATEWAY_SSE_QUEUE is dropped and
 * counted (sr_gateway_sse_dropped_total): a slow browser never makes the gateway buffer without
 * bound. libmicrohttpd suspends a stream's connection while it has nothing to send and the hub
 * resumes it when it has.
 */
#include "gatewayd.h"

#include "metrics.pb-c.h"
#include "rooms.pb-c.h"
#include "tasks.pb-c.h"
#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_clock.h"
#include "sr_hash.h"
#include "sr_log.h"
#include "sr_migrate.h"
#include "sr_outbox.h"
#include "sr_pbjson.h"
#include "sr_perm.h"
#include "sr_platform.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PREFIXES_MAX   16
#define ROOM_SLOTS     16384 /* power of two */
#define ROOMS_EVERY_MS 30000
#define ROOMS_PAGE     200
#define READ_BLOCK     4096

typedef struct stream_t stream_t;

typedef struct {
    uint64_t seq;
    char *text;
    size_t len;
} pending_t;

struct stream_t {
    gatewayd_stream_t *hub;
    struct MHD_Connection *conn;
    Sr__Principal *principal; /* owned (unpacked copy) */
    char *prefixes[PREFIXES_MAX];
    size_t nprefixes;
    pthread_mutex_t lock;
    char *buf; /* unsent bytes */
    size_t len, cap;
    int suspended, closed, sent_since_beat;
    int64_t token_id, user_id, opened_us; /* re-checked while the stream is open */
    /* resuming one outbox source (Last-Event-ID): its last seq sent, and while the catch-up
     * runs, that source's live events wait in pending so that none falls between */
    char source[64]; /* "" = not resuming */
    uint64_t last_seq;
    int catching_up;
    pending_t *pending;
    size_t npending, pending_bytes;
    stream_t *next;
};

typedef struct {
    char key[160]; /* "platform:room_id" (room ids are at most 128 bytes); "" = empty */
    char region[40];
} room_t;

struct gatewayd_stream_t {
    gatewayd_t *gw;
    pthread_mutex_t lock;       /* the list; taken before a stream's lock, never after */
    pthread_mutex_t rooms_lock; /* the room map; taken last */
    stream_t *streams;
    size_t count;
    sr_bus_sub_t *sub;
    sr_arena_t *arena; /* the loop thread's, for received messages */
    int beat_timer;
    pthread_t upkeep_thread;
    int upkeep_started, stopping;
    pthread_cond_t upkeep_wake; /* with lock: stop the upkeep thread */
    room_t *rooms;
    sr_complaint_t rooms_down;
    sr_gauge_t *open;
    sr_counter_t *events, *dropped, *resumed;
};

/* --- which events a stream takes ----------------------------------------------------------- */

static const char *s_topic_action(const char *topic)
{
    return strncmp(topic, "region.", 7) == 0 ? "regions.read"
           : strncmp(topic, "user.", 5) == 0 ? "users.read"
           : strncmp(topic, "project.", 8) == 0 || strncmp(topic, "session.", 8) == 0 ||
                   strncmp(topic, "task.", 5) == 0
               ? "projects.read"
               : "rooms.read";
}

static size_t s_room_slot(const char *key)
{
    return (size_t)(sr_hash_fnv1a_str(key) & (ROOM_SLOTS - 1));
}

/* s_room_region - the registry's region of a room into out ("" when unknown); rooms_lock held */
static void s_room_region(gatewayd_stream_t *self, const char *platform, const char *room,
                          char *out, size_t size)
{
    char key[160];
    snprintf(key, sizeof key, "%s:%s", platform, room);
    out[0] = '\0';
    for (size_t i = s_room_slot(key), probe = 0; probe < ROOM_SLOTS && self->rooms[i].key[0];
         probe++, i = (i + 1) & (ROOM_SLOTS - 1))
        if (strcmp(self->rooms[i].key, key) == 0) {
            snprintf(out, size, "%s", self->rooms[i].region);
            return;
        }
}

/* s_room_put - remember a room's region in a map (self->rooms with rooms_lock held, or a map
 * being built) */
static void s_room_put(room_t *rooms, const char *platform, const char *room, const char *region)
{
    char key[160];
    snprintf(key, sizeof key, "%s:%s", platform, room);
    size_t i = s_room_slot(key);
    for (size_t probe = 0; probe < ROOM_SLOTS / 2; probe++, i = (i + 1) & (ROOM_SLOTS - 1))
        if (!rooms[i].key[0] || strcmp(rooms[i].key, key) == 0) {
            snprintf(rooms[i].key, sizeof rooms[i].key, "%s", key);
            snprintf(rooms[i].region, sizeof rooms[i].region, "%s", region);
            return;
        }
}

#define REGIONS_MAX 16

typedef struct {
    const char *regions[REGIONS_MAX];
    size_t n;
    char room_region[40];
} regions_t;

/* s_regions - the regions an event belongs to (takes rooms_lock for room numbers) */
static void s_regions(gatewayd_stream_t *self, const ProtobufCMessage *p, regions_t *out)
{
    out->n = 0;
    if (!p)
        return;
    char platform[24];
    const ProtobufCMessageDescriptor *d = p->descriptor;
    if (d == &sr__region__descriptor)
        out->regions[out->n++] = ((const Sr__Region *)p)->code;
    else if (d == &sr__user__descriptor) {
        const Sr__User *u = (const Sr__User *)p;
        for (size_t i = 0; i < u->n_regions && out->n < REGIONS_MAX; i++)
            out->regions[out->n++] = u->regions[i];
    } else if (d == &sr__room__descriptor)
        out->regions[out->n++] = ((const Sr__Room *)p)->region;
    else if (d == &sr__project__descriptor)
        out->regions[out->n++] = ((const Sr__Project *)p)->region;
    else if (d == &sr__show__descriptor)
        out->regions[out->n++] = ((const Sr__Show *)p)->region;
    else if (d == &sr__task__descriptor)
        out->regions[out->n++] = ((const Sr__Task *)p)->region;
    else if (d == &sr__task_reminder__descriptor && ((const Sr__TaskReminder *)p)->task)
        out->regions[out->n++] = ((const Sr__TaskReminder *)p)->task->region;
    else if (d == &sr__room_sample__descriptor || d == &sr__order_event__descriptor ||
             d == &sr__interaction_event__descriptor) {
        int plat = d == &sr__room_sample__descriptor ? (int)((const Sr__RoomSample *)p)->platform
                   : d == &sr__order_event__descriptor
                       ? (int)((const Sr__OrderEvent *)p)->platform
                       : (int)((const Sr__InteractionEvent *)p)->platform;
        const char *room = d == &sr__room_sample__descriptor ? ((const Sr__RoomSample *)p)->room_id
                           : d == &sr__order_event__descriptor
                               ? ((const Sr__OrderEvent *)p)->room_id
                               : ((const Sr__InteractionEvent *)p)->room_id;
        pthread_mutex_lock(&self->rooms_lock);
        s_room_region(self, sr_platform_name(plat, platform, sizeof platform), room,
                      out->room_region, sizeof out->room_region);
        pthread_mutex_unlock(&self->rooms_lock);
        out->regions[out->n++] = out->room_region;
    }
}

static int s_wants(const stream_t *s, const char *topic, const regions_t *regions)
{
    int match = s->nprefixes == 0;
    for (size_t i = 0; i < s->nprefixes && !match; i++)
        match = strncmp(topic, s->prefixes[i], strlen(s->prefixes[i])) == 0;
    if (!match || !sr_perm_allows(s->principal, s_topic_action(topic)))
        return 0;
    if (sr_principal_is_hq(s->principal))
        return 1;
    for (size_t i = 0; i < regions->n; i++)
        if (sr_principal_sees_region(s->principal, regions->regions[i]))
            return 1;
    return 0;
}

/* --- queueing into a stream ---------------------------------------------------------------- */

/* s_resume - wake the connection when it sleeps; stream lock held */
static void s_resume(stream_t *s)
{
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

/* s_append - queue bytes, or drop the stream when its queue is full; stream lock held */
static void s_append(stream_t *s, const char *text, size_t n)
{
    if (s->closed)
        return;
    if (s->len + n > (size_t)s->hub->gw->cfg->stream_queue) {
        s->closed = 1;
        sr_counter_inc(s->hub->dropped);
        sr_warn("gateway_stream_dropped", "user=%s queued=%zu err=\"the browser reads too slowly\"",
                s->principal->user_name, s->len);
        s_resume(s);
        return;
    }
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = sr_realloc(s->buf, s->cap);
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->sent_since_beat = 1;
    s_resume(s);
}

/* s_resumed - 1 when the event is of the source the stream resumes; lock held */
static int s_resumed(const stream_t *s, const Sr__Envelope *env)
{
    return s->source[0] && strcmp(s->source, env->source) == 0;
}

/* s_close - end a stream (the browser reconnects); lock held */
static void s_close(stream_t *s)
{
    s->closed = 1;
    s_resume(s);
}

/* s_event_text - the SSE lines of one event; caller frees */
static char *s_event_text(const char *topic, const Sr__Envelope *env, const ProtobufCMessage *p,
                          size_t *len)
{
    char *json = p ? sr_pbjson_encode_text(p) : sr_strdup("null");
    char *text = sr_asprintf("id: %s:%llu\nevent: %s\ndata: %s\n\n", env->source,
                             (unsigned long long)env->seq, topic, json);
    free(json);
    *len = strlen(text);
    return text;
}

/* s_offer_locked - one event to one stream (live: from the bus, else read back); lock held */
static void s_offer_locked(stream_t *s, const char *topic, const Sr__Envelope *env,
                           const ProtobufCMessage *payload, const regions_t *regions, int live)
{
    if (s->closed || !s_wants(s, topic, regions))
        return;
    int resumed = s_resumed(s, env);
    if (resumed && !(live && s->catching_up) && env->seq <= s->last_seq)
        return; /* sent already */
    size_t len;
    char *text = s_event_text(topic, env, payload, &len);
    if (resumed && live && s->catching_up) { /* held back until the catch-up is done */
        s->pending_bytes += len;
        if (s->pending_bytes > (size_t)s->hub->gw->cfg->stream_queue) {
            free(text);
            s_append(s, "", (size_t)s->hub->gw->cfg->stream_queue + 1); /* over: dropped */
            return;
        }
        s->pending = sr_realloc(s->pending, (s->npending + 1) * sizeof *s->pending);
        s->pending[s->npending++] = (pending_t){env->seq, text, len};
        return;
    }
    if (resumed)
        s->last_seq = env->seq;
    s_append(s, text, len);
    free(text);
    sr_counter_inc(s->hub->events);
}

/* s_on_outbox - a row read back for one stream's catch-up (arg is the stream) */
static void s_on_outbox(void *arg, const char *topic, const Sr__Envelope *env,
                        const ProtobufCMessage *payload)
{
    stream_t *s = arg;
    regions_t regions;
    s_regions(s->hub, payload, &regions);
    pthread_mutex_lock(&s->lock);
    s_offer_locked(s, topic, env, payload, &regions, 0);
    pthread_mutex_unlock(&s->lock);
}

/* s_caught_up - the catch-up is done: the held-back live events it did not cover, then live */
static void s_caught_up(stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->npending; i++) {
        if (s->pending[i].seq > s->last_seq) {
            s->last_seq = s->pending[i].seq;
            s_append(s, s->pending[i].text, s->pending[i].len);
            sr_counter_inc(s->hub->events);
        }
        free(s->pending[i].text);
    }
    free(s->pending);
    s->pending = NULL;
    s->npending = s->pending_bytes = 0;
    s->catching_up = 0;
    pthread_mutex_unlock(&s->lock);
}

/* --- the bus, on the loop thread ----------------------------------------------------------- */

static void s_on_bus(void *arg)
{
    gatewayd_stream_t *self = arg;
    for (int i = 0; i < 1000; i++) {
        sr_bus_msg_t msg;
        sr_bus_recv_t rc = sr_bus_recv(self->sub, self->arena, &msg, 0);
        if (rc == SR_BUS_RECV_DROPPED)
            continue;
        if (rc != SR_BUS_RECV_OK)
            break;
        if (msg.payload && msg.payload->descriptor == &sr__room__descriptor) {
            const Sr__Room *room = (const Sr__Room *)msg.payload;
            pthread_mutex_lock(&self->rooms_lock);
            s_room_put(self->rooms, room->platform, room->room_id, room->region);
            pthread_mutex_unlock(&self->rooms_lock);
        }
        pthread_mutex_lock(&self->lock);
        regions_t regions;
        s_regions(self, msg.payload, &regions);
        for (stream_t *s = self->streams; s; s = s->next) {
            pthread_mutex_lock(&s->lock);
            s_offer_locked(s, msg.topic, msg.envelope, msg.payload, &regions, 1);
            pthread_mutex_unlock(&s->lock);
        }
        pthread_mutex_unlock(&self->lock);
        sr_arena_reset(self->arena);
    }
}

static void s_on_beat(void *arg)
{
    gatewayd_stream_t *self = arg;
    pthread_mutex_lock(&self->lock);
    for (stream_t *s = self->streams; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        if (!s->sent_since_beat)
            s_append(s, ": ping\n\n", 8);
        s->sent_since_beat = 0;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&self->lock);
}

/* s_refresh_rooms - the room -> region map from sr-ingestd's registry, page by page */
static void s_refresh_rooms(gatewayd_stream_t *self)
{
    gatewayd_t *gw = self->gw;
    char *roles[] = {"hq_manager"};
    Sr__Principal me = SR__PRINCIPAL__INIT;
    me.user_name = "sr-gatewayd";
    me.roles = roles;
    me.n_roles = 1;
    sr_arena_t *arena = gatewayd_thread(gw)->arena;
    char cursor[256] = "";
    room_t *map = sr_calloc(ROOM_SLOTS, sizeof *map);
    int complete = 0;
    for (int page = 0; page < ROOM_SLOTS / ROOMS_PAGE / 2; page++) {
        Sr__RoomList req = SR__ROOM_LIST__INIT;
        req.limit = ROOMS_PAGE;
        req.cursor = cursor;
        gw_result_t r = gatewayd_call(gw, GW_SVC_METRICS, "metrics.room.list", &me, "", &req.base,
                                      &sr__room_page__descriptor, 0, NULL, arena);
        if (r.status != SR__STATUS__STATUS_OK) {
            sr_complain(&self->rooms_down, "err=\"%s\"", r.error ? r.error->message : "failed");
            break;
        }
        sr_recovered(&self->rooms_down);
        const Sr__RoomPage *p = (const Sr__RoomPage *)r.reply;
        for (size_t i = 0; i < p->n_rooms; i++)
            s_room_put(map, p->rooms[i]->platform, p->rooms[i]->room_id, p->rooms[i]->region);
        snprintf(cursor, sizeof cursor, "%s", p->next_cursor);
        sr_arena_reset(arena);
        if (!cursor[0]) {
            complete = 1;
            break;
        }
    }
    sr_arena_reset(arena);
    if (complete) { /* a partial answer keeps the map there was */
        pthread_mutex_lock(&self->rooms_lock);
        room_t *old = self->rooms;
        self->rooms = map;
        map = old;
        pthread_mutex_unlock(&self->rooms_lock);
    }
    free(map);
}

/* s_recheck - end the streams whose token is no longer valid (revoked, expired, its user
 * disabled) or whose user changed since the stream opened (roles, regions): the browser
 * reconnects with its Last-Event-ID and gets a stream for who the user is now */
static void s_recheck(gatewayd_stream_t *self)
{
    gatewayd_t *gw = self->gw;
    sr_arena_t *arena = gatewayd_thread(gw)->arena;
    pthread_mutex_lock(&self->lock);
    size_t n = 0;
    char **ids = sr_arena_alloc(arena, (self->count + 1) * sizeof *ids);
    for (stream_t *s = self->streams; s; s = s->next)
        ids[n++] = sr_arena_printf(arena, "%lld", (long long)s->token_id);
    pthread_mutex_unlock(&self->lock);
    sr_db_t *db = n ? gatewayd_thread_db(gw) : NULL;
    const char *params[] = {db ? sr_db_text_array(arena, ids, n) : ""};
    PGresult *res = db ? sr_db_query(db,
                                     "SELECT t.id, "
                                     "(extract(epoch FROM u.updated_at) * "
                                     "1000000)::bigint FROM access.tokens t JOIN access.users u "
                                     "ON u.id = t.user_id WHERE t.id = ANY($1::bigint[]) AND "
                                     "t.revoked_at IS NULL AND (t.expires_at IS NULL OR "
                                     "t.expires_at > now()) AND NOT u.disabled",
                                     1, params)
                       : NULL;
    if (res) { /* a database that does not answer ends nothing */
        pthread_mutex_lock(&self->lock);
        for (stream_t *s = self->streams; s; s = s->next) {
            int valid = 0;
            for (int r = 0; r < PQntuples(res) && !valid; r++)
                valid = strtoll(PQgetvalue(res, r, 0), NULL, 10) == s->token_id &&
                        strtoll(PQgetvalue(res, r, 1), NULL, 10) <= s->opened_us;
            if (!valid) {
                pthread_mutex_lock(&s->lock);
                s_close(s);
                pthread_mutex_unlock(&s->lock);
            }
        }
        pthread_mutex_unlock(&self->lock);
        PQclear(res);
    }
    sr_arena_reset(arena);
}

void gatewayd_stream_forget(gatewayd_stream_t *self, int64_t token_id, int64_t user_id)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    for (stream_t *s = self->streams; s; s = s->next)
        if ((token_id && s->token_id == token_id) || (user_id && s->user_id == user_id)) {
            pthread_mutex_lock(&s->lock);
            s_close(s);
            pthread_mutex_unlock(&s->lock);
        }
    pthread_mutex_unlock(&self->lock);
}

/* s_upkeep_thread - off the loop thread, since both ask other processes: the room map now and
 * every ROOMS_EVERY_MS, the open streams' tokens every SR_GATEWAY_SSE_HEARTBEAT */
static void *s_upkeep_thread(void *arg)
{
    gatewayd_stream_t *self = arg;
    int64_t rooms_due = 0, every = self->gw->cfg->heartbeat_ms;
    pthread_mutex_lock(&self->lock);
    while (!self->stopping) {
        pthread_mutex_unlock(&self->lock);
        if (sr_clock_mono_ms() >= rooms_due) {
            s_refresh_rooms(self);
            rooms_due = sr_clock_mono_ms() + ROOMS_EVERY_MS;
        }
        s_recheck(self);
        pthread_mutex_lock(&self->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += every / 1000;
        until.tv_nsec += (every % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!self->stopping &&
               pthread_cond_timedwait(&self->upkeep_wake, &self->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

/* --- one stream's life, on an HTTP thread -------------------------------------------------- */

static ssize_t s_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_t *s = cls;
    pthread_mutex_lock(&s->lock);
    ssize_t n = 0;
    if (s->len > 0) {
        size_t take = s->len < max ? s->len : max;
        memcpy(buf, s->buf, take);
        memmove(s->buf, s->buf + take, s->len - take);
        s->len -= take;
        n = (ssize_t)take;
    } else if (s->closed)
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    else {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* s_discard - free a stream that is in no list */
static void s_discard(stream_t *s)
{
    for (size_t i = 0; i < s->nprefixes; i++)
        free(s->prefixes[i]);
    if (s->principal)
        sr__principal__free_unpacked(s->principal, NULL);
    for (size_t i = 0; i < s->npending; i++)
        free(s->pending[i].text);
    free(s->pending);
    pthread_mutex_destroy(&s->lock);
    free(s->buf);
    free(s);
}

/* s_stream_free - libmicrohttpd is done with the stream's response: leave the hub, free it */
static void s_stream_free(void *cls)
{
    stream_t *s = cls;
    gatewayd_stream_t *hub = s->hub;
    pthread_mutex_lock(&hub->lock);
    for (stream_t **p = &hub->streams; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            hub->count--;
            break;
        }
    sr_gauge_set(hub->open, (double)hub->count);
    pthread_mutex_unlock(&hub->lock);
    s_discard(s);
}

/* s_prefixes - the topics list into the stream; -1 with err when a prefix is malformed */
static int s_prefixes(stream_t *s, const char *topics, char *err, size_t errlen)
{
    if (!topics || !topics[0])
        return 0;
    const char *p = topics;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 64 || s->nprefixes == PREFIXES_MAX) {
            snprintf(err, errlen,
                     "topics must be up to %d comma-separated prefixes of 1 to 64 "
                     "characters",
                     PREFIXES_MAX);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '.' ||
                  p[i] == '_')) {
                snprintf(err, errlen, "topic prefix \"%.*s\" may hold a-z 0-9 . _ only", (int)n, p);
                return -1;
            }
        s->prefixes[s->nprefixes] = sr_malloc(n + 1);
        memcpy(s->prefixes[s->nprefixes], p, n);
        s->prefixes[s->nprefixes++][n] = '\0';
        p += n + (p[n] == ',');
    }
    return 0;
}

/* s_catch_up - the outbox rows of source after seq into the stream, a row at a time under its
 * lock (never across the reads); the last seq read, seq itself when there was nothing */
static uint64_t s_catch_up(gatewayd_stream_t *self, stream_t *s, const char *source, uint64_t seq)
{
    sr_db_t *db = gatewayd_thread_db(self->gw);
    if (!db)
        return seq;
    const char *params[] = {source};
    PGresult *res =
        sr_db_query(db, "SELECT to_regclass(quote_ident($1) || '.outbox') IS NOT NULL", 1, params);
    int exists = res && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!exists)
        return seq;
    sr_outbox_sub_t *sub = sr_outbox_sub_new(db, s_on_outbox, s);
    uint64_t last = seq;
    if (sr_outbox_sub_follow(sub, source, (int64_t)seq) == 0 && sr_outbox_sub_catch_up(sub) == 0) {
        sr_counter_add(self->resumed, sr_outbox_sub_stats(sub).delivered);
        last = sr_outbox_sub_last(sub, source);
    }
    sr_outbox_sub_destroy(&sub);
    return last;
}

/* s_last_event_id - "<source>:<seq>" into its parts; -1 when it is not that. A source that is
 * not a schema name cannot be resumed: source is left "" (live events only). */
static int s_last_event_id(const char *id, char source[64], uint64_t *seq)
{
    source[0] = '\0';
    *seq = 0;
    if (!id || !id[0])
        return 0;
    const char *colon = strrchr(id, ':');
    if (!colon || colon == id || (size_t)(colon - id) >= 64 || !colon[1])
        return -1;
    char *end;
    *seq = strtoull(colon + 1, &end, 10);
    if (*end || colon[1] == '-')
        return -1;
    memcpy(source, id, (size_t)(colon - id));
    source[colon - id] = '\0';
    if (!sr_migrate_schema_ok(source))
        source[0] = '\0';
    return 0;
}

struct MHD_Response *gatewayd_stream_open(gatewayd_stream_t *self, struct MHD_Connection *conn,
                                          const Sr__Principal *principal, int64_t token_id,
                                          const char *topics, const char *last_event_id,
                                          gw_http_out_t *out)
{
    char err[200], source[64];
    uint64_t seq;
    if (s_last_event_id(last_event_id, source, &seq) < 0) {
        *out = gatewayd_error(400, "invalid_parameter", "Last-Event-ID",
                              "Last-Event-ID must be <source>:<seq> as the stream sent it");
        return NULL;
    }
    stream_t *s = sr_calloc(1, sizeof *s);
    s->hub = self;
    s->conn = conn;
    s->token_id = token_id;
    s->user_id = principal->user_id;
    s->opened_us = sr_clock_now_us();
    pthread_mutex_init(&s->lock, NULL);
    if (s_prefixes(s, topics, err, sizeof err) < 0) {
        *out = gatewayd_error(400, "invalid_parameter", "topics", "%s", err);
        s_discard(s);
        return NULL;
    }
    size_t plen = sr__principal__get_packed_size(principal);
    uint8_t *packed = sr_malloc(plen ? plen : 1);
    sr__principal__pack(principal, packed);
    s->principal = sr__principal__unpack(NULL, plen, packed);
    free(packed);
    s_append(s, "retry: 3000\n: connected\n\n", 25);
    snprintf(s->source, sizeof s->source, "%s", source);
    s->last_seq = seq;
    uint64_t read_to = source[0] ? s_catch_up(self, s, source, seq) : 0;
    pthread_mutex_lock(&self->lock);
    if (self->stopping || self->count >= (size_t)self->gw->cfg->max_streams) {
        int stopping = self->stopping;
        pthread_mutex_unlock(&self->lock);
        *out = stopping
                   ? gatewayd_error(503, "stopping", NULL,
                                    "the gateway is stopping; "
                                    "reconnect to another instance")
                   : gatewayd_error(503, "too_many_streams", NULL, "%lld streams are open already",
                                    (long long)self->gw->cfg->max_streams);
        s_discard(s);
        return NULL;
    }
    s->catching_up = source[0] != '\0';
    s->next = self->streams;
    self->streams = s;
    self->count++;
    sr_gauge_set(self->open, (double)self->count);
    pthread_mutex_unlock(&self->lock);
    if (source[0]) { /* what came between the first catch-up and joining the hub */
        s_catch_up(self, s, source, read_to);
        s_caught_up(s);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK, s_read, s, s_stream_free);
    if (!resp) {
        s_stream_free(s);
        *out = gatewayd_error(500, "internal", NULL, "cannot open the stream");
        return NULL;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return resp;
}

void gatewayd_stream_end_all(gatewayd_stream_t *self)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->lock);
    self->stopping = 1; /* no new streams from here on */
    pthread_cond_broadcast(&self->upkeep_wake);
    for (stream_t *s = self->streams; s; s = s->next) {
        pthread_mutex_lock(&s->lock);
        s_close(s);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&self->lock);
    /* let the HTTP threads end them before the server stops (it must not stop with suspended
     * connections) */
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&self->lock);
        size_t left = self->count;
        pthread_mutex_unlock(&self->lock);
        if (!left)
            break;
        usleep(10000);
    }
}

/* --- lifecycle ----------------------------------------------------------------------------- */

gatewayd_stream_t *gatewayd_stream_new(gatewayd_t *gw)
{
    gatewayd_stream_t *self = sr_calloc(1, sizeof *self);
    self->gw = gw;
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->rooms_lock, NULL);
    pthread_cond_init(&self->upkeep_wake, NULL);
    self->rooms = sr_calloc(ROOM_SLOTS, sizeof *self->rooms);
    self->arena = sr_arena_new(65536);
    self->rooms_down = (sr_complaint_t)SR_COMPLAINT_INIT("gateway.rooms");
    sr_metrics_t *m = gw->metrics;
    self->open = sr_metrics_gauge(m, "sr_gateway_sse_streams", NULL, "open event streams");
    self->events =
        sr_metrics_counter(m, "sr_gateway_sse_events_total", NULL, "events written to streams");
    self->dropped = sr_metrics_counter(m, "sr_gateway_sse_dropped_total", NULL,
                                       "streams dropped because the browser read too slowly");
    self->resumed = sr_metrics_counter(m, "sr_gateway_sse_resumed_total", NULL,
                                       "events read back from an outbox for Last-Event-ID");
    sr_service_t *svc = gw->svc;
    sr_bus_opts_t opts = sr_service_bus_opts(svc);
    self->sub = sr_bus_sub_new(gw->zctx, sr_service_common(svc)->bus_sub, &opts);
    if (!self->sub || sr_bus_subscribe(self->sub, "") < 0 ||
        sr_loop_add_socket(sr_service_loop(svc), sr_bus_sub_socket(self->sub), s_on_bus, self) <
            0 ||
        (self->beat_timer = sr_loop_add_timer(sr_service_loop(svc), gw->cfg->heartbeat_ms, 1,
                                              s_on_beat, self)) <= 0 ||
        pthread_create(&self->upkeep_thread, NULL, s_upkeep_thread, self) != 0) {
        gatewayd_stream_destroy(&self);
        return NULL;
    }
    self->upkeep_started = 1;
    return self;
}

void gatewayd_stream_destroy(gatewayd_stream_t **self_p)
{
    gatewayd_stream_t *self = *self_p;
    if (!self)
        return;
    if (self->upkeep_started) {
        pthread_mutex_lock(&self->lock);
        self->stopping = 1;
        pthread_cond_broadcast(&self->upkeep_wake);
        pthread_mutex_unlock(&self->lock);
        pthread_join(self->upkeep_thread, NULL);
    }
    sr_loop_t *loop = sr_service_loop(self->gw->svc);
    if (self->beat_timer > 0)
        sr_loop_cancel_timer(loop, self->beat_timer);
    if (self->sub) {
        sr_loop_remove_socket(loop, sr_bus_sub_socket(self->sub));
        sr_bus_sub_destroy(&self->sub);
    }
    sr_arena_destroy(&self->arena);
    free(self->rooms);
    pthread_cond_destroy(&self->upkeep_wake);
    pthread_mutex_destroy(&self->rooms_lock);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* gatewayd_auth - bearer tokens, password hashes and the rate limits of the gateway.
 *
 * A token is "srt_" and 43 characters of base64url (32 random bytes); only its SHA-256 is
 * stored. Checking one costs a hash and, once per SR_GATEWAY_TOKEN_CACHE, a database lookup
 * (token, user, roles, region codes in one query); the cache is cleared for a token when it is
 * revoked and for a user when the user changes, in this instance at once and in others within
 * the cache period. Passwords are argon2id (libsodium, "interactive" limits); an unknown user is
 * checked against a dummy hash so that both take as long. Failed logins are limited per user
 * name and per client address (SR_GATEWAY_LOGIN_*; the table is keyed by a secret hash and never
 * gives up an entry at its limit), requests per user - all of the user's tokens together, so
 * making more tokens does not buy more - by a token bucket (SR_GATEWAY_RATE, SR_GATEWAY_BURST).
 * The limiters live in this instance's memory.
 */
#include "gatewayd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS   4096 /* power of two */
#define BUCKET_SLOTS  4096
#define FAILURE_SLOTS 4096
#define KEY_MAX       130

#define LOOKUP_SQL                                                                                 \
    "SELECT t.id, t.user_id, u.name, array_to_string(u.roles, ','), "                              \
    "coalesce((SELECT string_agg(r.code, ',' ORDER BY r.code) FROM access.user_regions ur "        \
    "JOIN access.regions r ON r.id = ur.region_id WHERE ur.user_id = u.id), ''), "                 \
    "t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' "                      \
    "FROM access.tokens t JOIN access.users u ON u.id = t.user_id "                                \
    "WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > "      \
    "now()) AND NOT u.disabled"
#define TOUCH_SQL "UPDATE access.tokens SET last_used_at = now() WHERE id = $1"

typedef struct {
    uint8_t hash[32];
    int used;
    int64_t token_id, user_id;
    int64_t cached_ms;
    char *name, *roles, *regions; /* comma-separated, owned */
} cached_t;

typedef struct {
    int64_t user_id; /* 0 = empty */
    double tokens;
    int64_t last_ms;
} bucket_t;

typedef struct {
    char key[KEY_MAX]; /* "u:<name>" or "a:<address>"; "" = empty */
    int64_t *times;    /* the last `limit` failures, oldest first */
    int n;
} failures_t;

struct gatewayd_auth_t {
    gatewayd_t *gw;
    const gatewayd_config_t *cfg;
    pthread_mutex_t lock;
    cached_t *cache;
    bucket_t *buckets;
    size_t nbuckets;
    failures_t *failures;
    uint64_t generation; /* bumped by forget: a lookup that raced with it is not cached */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    sr_counter_t *hits, *misses, *limited, *login_blocked;
};

static char s_dummy_hash[crypto_pwhash_STRBYTES];

/* --- tokens and passwords ------------------------------------------------------------------ */

void gatewayd_token_hash(const char *token, uint8_t hash[32])
{
    crypto_hash_sha256(hash, (const unsigned char *)token, strlen(token));
}

void gatewayd_token_new(char token[GW_TOKEN_CHARS + 1], uint8_t hash[32])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(token, GW_TOKEN_PREFIX, 4);
    sodium_bin2base64(token + 4, GW_TOKEN_CHARS + 1 - 4, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    gatewayd_token_hash(token, hash);
}

char *gatewayd_password_hash(const char *password)
{
    char *out = sr_malloc(crypto_pwhash_STRBYTES);
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

int gatewayd_password_ok(const char *hash, const char *password)
{
    const char *against = hash ? hash : s_dummy_hash;
    int ok = crypto_pwhash_str_verify(against, password, strlen(password)) == 0;
    return hash && ok;
}

/* --- the token cache ----------------------------------------------------------------------- */

static size_t s_slot(const uint8_t hash[32])
{
    uint64_t h;
    memcpy(&h, hash, sizeof h);
    return (size_t)(h & (CACHE_SLOTS - 1));
}

static void s_cached_clear(cached_t *c)
{
    free(c->name);
    free(c->roles);
    free(c->regions);
    memset(c, 0, sizeof *c);
}

static Sr__Principal *s_principal(sr_arena_t *arena, int64_t user_id, const char *name,
                                  const char *roles, const char *regions)
{
    Sr__Principal *p = sr_arena_alloc(arena, sizeof *p);
    sr__principal__init(p);
    p->user_id = user_id;
    p->user_name = sr_arena_strdup(arena, name);
    p->roles = sr_arena_split(arena, roles, ',', &p->n_roles);
    p->regions = sr_arena_split(arena, regions, ',', &p->n_regions);
    return p;
}

/* s_cache_get - a fresh cached principal for hash, copied into arena; NULL when none */
static Sr__Principal *s_cache_get(gatewayd_auth_t *self, const uint8_t hash[32], sr_arena_t *arena,
                                  int64_t *token_id)
{
    Sr__Principal *p = NULL;
    int64_t now = sr_clock_mono_ms();
    pthread_mutex_lock(&self->lock);
    cached_t *c = &self->cache[s_slot(hash)];
    if (c->used && memcmp(c->hash, hash, 32) == 0) {
        if (now - c->cached_ms < self->cfg->token_cache_ms) {
            p = s_principal(arena, c->user_id, c->name, c->roles, c->regions);
            *token_id = c->token_id;
        } else
            s_cached_clear(c);
    }
    pthread_mutex_unlock(&self->lock);
    return p;
}

static void s_cache_put(gatewayd_auth_t *self, const uint8_t hash[32], uint64_t generation,
                        int64_t token_id, int64_t user_id, const char *name, const char *roles,
                        const char *regions)
{
    pthread_mutex_lock(&self->lock);
    if (generation != self->generation) { /* a token or user was forgotten meanwhile */
        pthread_mutex_unlock(&self->lock);
        return;
    }
    cached_t *c = &self->cache[s_slot(hash)];
    s_cached_clear(c); /* one token per slot: a collision replaces the older one */
    memcpy(c->hash, hash, 32);
    c->used = 1;
    c->token_id = token_id;
    c->user_id = user_id;
    c->cached_ms = sr_clock_mono_ms();
    c->name = sr_strdup(name);
    c->roles = sr_strdup(roles);
    c->regions = sr_strdup(regions);
    pthread_mutex_unlock(&self->lock);
}

void gatewayd_auth_forget(gatewayd_auth_t *self, int64_t token_id, int64_t user_id)
{
    gatewayd_stream_forget(self->gw->stream, token_id, user_id);
    pthread_mutex_lock(&self->lock);
    self->generation++;
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        cached_t *c = &self->cache[i];
        if (c->used &&
            ((token_id && c->token_id == token_id) || (user_id && c->user_id == user_id)))
            s_cached_clear(c);
    }
    pthread_mutex_unlock(&self->lock);
}

/* s_token_shape_ok - "srt_" and 43 base64url characters */
static int s_token_shape_ok(const char *t)
{
    if (strncmp(t, GW_TOKEN_PREFIX, 4) != 0 || strlen(t) != GW_TOKEN_CHARS)
        return 0;
    for (const char *p = t + 4; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

gw_auth_result_t gatewayd_auth_check(gatewayd_auth_t *self, const char *header, sr_arena_t *arena,
                                     Sr__Principal **principal, int64_t *token_id)
{
    *principal = NULL;
    *token_id = 0;
    if (!header || !header[0])
        return GW_AUTH_MISSING;
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return GW_AUTH_BAD;
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    if (!s_token_shape_ok(token))
        return GW_AUTH_BAD;
    uint8_t hash[32];
    gatewayd_token_hash(token, hash);
    if ((*principal = s_cache_get(self, hash, arena, token_id))) {
        sr_counter_inc(self->hits);
        return GW_AUTH_OK;
    }
    sr_counter_inc(self->misses);
    pthread_mutex_lock(&self->lock);
    uint64_t generation = self->generation;
    pthread_mutex_unlock(&self->lock);
    sr_db_t *db = gatewayd_thread_db(self->gw);
    if (!db)
        return GW_AUTH_UNAVAILABLE;
    const char *params[] = {(const char *)hash};
    const int lengths[] = {32}, formats[] = {1};
    PGresult *res = sr_db_run_binary(db, "gw_token_lookup", 1, params, lengths, formats, 0);
    if (!res)
        return GW_AUTH_UNAVAILABLE;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return GW_AUTH_BAD;
    }
    *token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    int64_t user_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    *principal = s_principal(arena, user_id, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
                             PQgetvalue(res, 0, 4));
    s_cache_put(self, hash, generation, *token_id, user_id, PQgetvalue(res, 0, 2),
                PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 4));
    int touch = PQgetvalue(res, 0, 5)[0] == 't';
    PQclear(res);
    if (touch) {
        char id[24];
        snprintf(id, sizeof id, "%lld", (long long)*token_id);
        const char *p[] = {id};
        PQclear(sr_db_run(db, "gw_token_touch", 1, p)); /* last_used_at: best effort */
    }
    return GW_AUTH_OK;
}

/* --- the request rate per token ------------------------------------------------------------ */

/* s_bucket_slot - where a user's bucket lives (the table is kept at most 3/4 full) */
static size_t s_bucket_slot(const bucket_t *table, int64_t user_id)
{
    size_t i = (size_t)((uint64_t)user_id * 0x9e3779b97f4a7c15ULL >> 52) & (BUCKET_SLOTS - 1);
    while (table[i].user_id && table[i].user_id != user_id)
        i = (i + 1) & (BUCKET_SLOTS - 1);
    return i;
}

/* s_buckets_compact - drop the buckets that have refilled (a new one would be the same); lock
 * held */
static void s_buckets_compact(gatewayd_auth_t *self, int64_t now)
{
    int64_t refill_ms = (int64_t)(1000.0 * (double)self->cfg->burst / (double)self->cfg->rate) + 1;
    bucket_t *fresh = sr_calloc(BUCKET_SLOTS, sizeof *fresh);
    size_t kept = 0;
    for (size_t i = 0; i < BUCKET_SLOTS; i++)
        if (self->buckets[i].user_id && now - self->buckets[i].last_ms < refill_ms) {
            fresh[s_bucket_slot(fresh, self->buckets[i].user_id)] = self->buckets[i];
            kept++;
        }
    free(self->buckets);
    self->buckets = fresh;
    self->nbuckets = kept;
}

int gatewayd_auth_rate(gatewayd_auth_t *self, int64_t user_id)
{
    if (self->cfg->rate <= 0 || user_id <= 0)
        return 0;
    int64_t now = sr_clock_mono_ms();
    double rate = (double)self->cfg->rate, burst = (double)self->cfg->burst;
    int wait = 0;
    pthread_mutex_lock(&self->lock);
    bucket_t *b = &self->buckets[s_bucket_slot(self->buckets, user_id)];
    if (!b->user_id) {
        if (self->nbuckets + 1 > BUCKET_SLOTS / 4 * 3) {
            s_buckets_compact(self, now);
            if (self->nbuckets + 1 > BUCKET_SLOTS / 4 * 3) { /* every one busy: start over */
                memset(self->buckets, 0, BUCKET_SLOTS * sizeof *self->buckets);
                self->nbuckets = 0;
            }
        }
        b = &self->buckets[s_bucket_slot(self->buckets, user_id)];
        *b = (bucket_t){.user_id = user_id, .tokens = burst, .last_ms = now};
        self->nbuckets++;
    }
    b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now;
    if (b->tokens >= 1.0)
        b->tokens -= 1.0;
    else
        wait = (int)((1.0 - b->tokens) / rate) + 1;
    pthread_mutex_unlock(&self->lock);
    if (wait)
        sr_counter_inc(self->limited);
    return wait;
}

/* --- failed logins ------------------------------------------------------------------------- */

/* s_key_slot - keyed (SipHash with a key drawn at start-up), so that nobody can choose names
 * that crowd out someone else's count */
static size_t s_key_slot(const gatewayd_auth_t *self, const char *key)
{
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, (const unsigned char *)key, strlen(key), self->hash_key);
    return (size_t)(h & (FAILURE_SLOTS - 1));
}

static int s_recent(failures_t *f, int64_t now, int64_t window);

static int64_t s_limit_of(const gatewayd_auth_t *self, const char *key)
{
    return key[0] == 'u' ? self->cfg->login_failures : self->cfg->addr_failures;
}

/* s_failures - the entry of key; with create, a free entry (empty, or with no failure left in
 * the window) or one of a key not at its limit that failed longest ago is taken over. NULL when
 * there is none (create: every nearby entry is at its limit, so the caller refuses). Lock held. */
static failures_t *s_failures(gatewayd_auth_t *self, const char *key, int create, int64_t now)
{
    size_t home = s_key_slot(self, key), i = home;
    failures_t *free_slot = NULL, *oldest = NULL;
    for (size_t probe = 0; probe < 16; probe++, i = (i + 1) & (FAILURE_SLOTS - 1)) {
        failures_t *f = &self->failures[i];
        if (strcmp(f->key, key) == 0)
            return f;
        if (!create || free_slot)
            continue;
        int recent = f->key[0] ? s_recent(f, now, self->cfg->login_window_ms) : 0;
        if (recent == 0)
            free_slot = f;
        else if (recent < s_limit_of(self, f->key) &&
                 (!oldest || f->times[f->n - 1] < oldest->times[oldest->n - 1]))
            oldest = f;
    }
    failures_t *f = free_slot ? free_slot : oldest;
    if (f) {
        snprintf(f->key, sizeof f->key, "%s", key);
        f->n = 0;
    }
    return f;
}

/* s_recent - failures of f within the window; drops older ones */
static int s_recent(failures_t *f, int64_t now, int64_t window)
{
    int keep = 0;
    for (int i = 0; i < f->n; i++)
        if (now - f->times[i] < window)
            f->times[keep++] = f->times[i];
    f->n = keep;
    return keep;
}

static int s_blocked_key(gatewayd_auth_t *self, const char *key, int64_t limit, int64_t now)
{
    failures_t *f = s_failures(self, key, 1, now); /* a place for this attempt's failure */
    if (!f)
        return (int)(self->cfg->login_window_ms / 1000) + 1;
    if (s_recent(f, now, self->cfg->login_window_ms) < limit)
        return 0;
    int64_t wait_ms = f->times[f->n - limit] + self->cfg->login_window_ms - now;
    return (int)(wait_ms / 1000) + 1;
}

static void s_key(char *out, const char *kind, const char *value)
{
    snprintf(out, KEY_MAX, "%s:%.120s", kind, value ? value : "");
}

int gatewayd_auth_login_blocked(gatewayd_auth_t *self, const char *user, const char *addr)
{
    char ukey[KEY_MAX], akey[KEY_MAX];
    s_key(ukey, "u", user);
    s_key(akey, "a", addr);
    int64_t now = sr_clock_mono_ms();
    pthread_mutex_lock(&self->lock);
    int a = s_blocked_key(self, ukey, self->cfg->login_failures, now);
    int b = s_blocked_key(self, akey, self->cfg->addr_failures, now);
    pthread_mutex_unlock(&self->lock);
    int wait = a > b ? a : b;
    if (wait)
        sr_counter_inc(self->login_blocked);
    return wait;
}

static void s_fail_key(gatewayd_auth_t *self, const char *key, int64_t limit, int64_t now)
{
    failures_t *f = s_failures(self, key, 1, now);
    if (!f)
        return;      /* no room: the next attempt is refused by s_blocked_key */
    if (!f->times) { /* room for the larger of the two limits */
        int64_t most = self->cfg->addr_failures > self->cfg->login_failures
                           ? self->cfg->addr_failures
                           : self->cfg->login_failures;
        f->times = sr_calloc((size_t)most + 1, sizeof *f->times);
    }
    s_recent(f, now, self->cfg->login_window_ms);
    if (f->n >= limit) { /* keep the newest `limit` */
        memmove(f->times, f->times + 1, (size_t)(f->n - 1) * sizeof *f->times);
        f->n--;
    }
    f->times[f->n++] = now;
}

void gatewayd_auth_login_failed(gatewayd_auth_t *self, const char *user, const char *addr)
{
    char ukey[KEY_MAX], akey[KEY_MAX];
    s_key(ukey, "u", user);
    s_key(akey, "a", addr);
    int64_t now = sr_clock_mono_ms();
    pthread_mutex_lock(&self->lock);
    s_fail_key(self, ukey, self->cfg->login_failures, now);
    s_fail_key(self, akey, self->cfg->addr_failures, now);
    pthread_mutex_unlock(&self->lock);
}

void gatewayd_auth_login_ok(gatewayd_auth_t *self, const char *user)
{
    char ukey[KEY_MAX];
    s_key(ukey, "u", user);
    pthread_mutex_lock(&self->lock);
    failures_t *f = s_failures(self, ukey, 0, 0);
    if (f)
        f->n = 0;
    pthread_mutex_unlock(&self->lock);
}

/* --- lifecycle ----------------------------------------------------------------------------- */

gatewayd_auth_t *gatewayd_auth_new(gatewayd_t *gw)
{
    if (sodium_init() < 0) {
        sr_error("gateway_sodium_failed", "err=\"sodium_init\"");
        return NULL;
    }
    if (!s_dummy_hash[0]) {
        char *dummy = gatewayd_password_hash("a password nobody has");
        if (!dummy)
            return NULL;
        snprintf(s_dummy_hash, sizeof s_dummy_hash, "%s", dummy);
        free(dummy);
    }
    gatewayd_auth_t *self = sr_calloc(1, sizeof *self);
    self->gw = gw;
    self->cfg = gw->cfg;
    pthread_mutex_init(&self->lock, NULL);
    self->cache = sr_calloc(CACHE_SLOTS, sizeof *self->cache);
    self->buckets = sr_calloc(BUCKET_SLOTS, sizeof *self->buckets);
    self->failures = sr_calloc(FAILURE_SLOTS, sizeof *self->failures);
    crypto_shorthash_keygen(self->hash_key);
    sr_metrics_t *m = gw->metrics;
    self->hits = sr_metrics_counter(m, "sr_gateway_token_cache_total", "result=\"hit\"",
                                    "token checks answered from the cache or the database");
    self->misses = sr_metrics_counter(m, "sr_gateway_token_cache_total", "result=\"miss\"",
                                      "token checks answered from the cache or the database");
    self->limited = sr_metrics_counter(m, "sr_gateway_rate_limited_total", NULL,
                                       "requests refused 429 by the per-token rate limit");
    self->login_blocked = sr_metrics_counter(m, "sr_gateway_login_blocked_total", NULL,
                                             "logins refused 429 after too many failures");
    return self;
}

void gatewayd_auth_destroy(gatewayd_auth_t **self_p)
{
    gatewayd_auth_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        s_cached_clear(&self->cache[i]);
    for (size_t i = 0; i < FAILURE_SLOTS; i++)
        free(self->failures[i].times);
    free(self->cache);
    free(self->buckets);
    free(self->failures);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* gatewayd_auth_prepare - the statements a thread's connection needs; 0 ok */
int gatewayd_auth_prepare(sr_db_t *db)
{
    return sr_db_prepare(db, "gw_token_lookup", LOOKUP_SQL, 1) < 0 ||
                   sr_db_prepare(db, "gw_token_touch", TOUCH_SQL, 1) < 0
               ? -1
               : 0;
}

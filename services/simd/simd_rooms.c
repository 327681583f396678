/* simd_rooms - room ids and the deterministic room model. See simd.h.
 *
 * Everything here is a pure function of (seed, platform, room, simulated second): no state, no
 * clock. A room runs shows back to back on a fixed per-room period (show ~2 h, then a break);
 * each show draws its own audience size, price and conversion rates from the seed.
 *
 * Counters are integrals of per-minute rates (rate at the minute's midpoint, linear within the
 * minute), so they never shrink within a show and the chain impressions >= clicks >= created >=
 * paid >= buyers holds term by term. Gauges (online, new viewers, watch time) move freely.
 */
#include "simd.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define WARMUP_TAU_S    240.0 /* online reaches ~95% of its level by ~12 min */
#define TAPER_S         900   /* the last 15 min the audience drains away */
#define SALE_EVERY_S    1200  /* a flash sale every ~20 min */
#define SALE_JITTER_S   120
#define SALE_LEN_S      180
#define NOISE_KNOT_S    60
#define NOISE_AMPLITUDE 0.08
#define FIRST_CROWD     2.2 /* viewers already counted for the crowd that fills the room */

enum { /* salts: one independent stream of numbers per use */
       SALT_ROOM_ID = 1,
       SALT_LENGTH,
       SALT_GAP,
       SALT_OFFSET,
       SALT_PEAK,
       SALT_WATCH,
       SALT_PRICE,
       SALT_LIKE,
       SALT_COMMENT,
       SALT_SHARE,
       SALT_FOLLOW,
       SALT_FANS_CLUB,
       SALT_IMPRESSION,
       SALT_CTR,
       SALT_CONV,
       SALT_PAY,
       SALT_BUYER,
       SALT_REFUND,
       SALT_AD,
       SALT_SALE_PHASE,
       SALT_SALE_AMP,
       SALT_SALE_JITTER,
       SALT_NOISE,
       SALT_SESSION,
       SALT_EXPORT,
};

typedef struct {
    int64_t length_s, period_s, offset_s;
} schedule_t;

/* one show's character */
typedef struct {
    uint64_t key;
    int64_t length_s;
    double peak, watch_s, like, comment, share, follow, fans_club;
    double impression, ctr, conv, pay, buyer, refund, ad_fen_s;
    int64_t price_fen, sale_phase_s;
    double sale_amp;
} show_t;

/* per-second rates during one minute */
typedef struct {
    double viewers, likes, comments, shares, follows, fans_club, impressions, clicks, created,
        ad_fen;
} rates_t;

static const char *s_names[SIMD_PLATFORM_COUNT] = {"channels", "douyin", "kuaishou"};

/* audience, watch time, in each platform's usual range */
static const struct {
    double peak_lo, peak_hi, watch_lo, watch_hi;
} s_scale[SIMD_PLATFORM_COUNT] = {
    {3000, 20000, 150, 220},
    {6000, 40000, 70, 120},
    {2000, 15000, 110, 170},
};

/* s_mix - splitmix64's finaliser: a good 64-bit hash step */
static uint64_t s_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t s_hash(uint64_t key, uint64_t a, uint64_t b)
{
    return s_mix(s_mix(key ^ s_mix(a)) ^ b);
}

/* s_unit - a number in [0, 1) */
static double s_unit(uint64_t key, uint64_t a, uint64_t b)
{
    return (double)(s_hash(key, a, b) >> 11) / 9007199254740992.0;
}

static double s_range(uint64_t key, uint64_t salt, double lo, double hi)
{
    return lo + (hi - lo) * s_unit(key, salt, 0);
}

static uint64_t s_room_key(uint64_t seed, simd_platform_t platform, int room)
{
    return s_hash(s_mix(seed), (uint64_t)platform + 1, (uint64_t)room);
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static schedule_t s_schedule(uint64_t room_key)
{
    schedule_t s;
    s.length_s = (int64_t)s_range(room_key, SALT_LENGTH, 6600, 7800);
    s.period_s = s.length_s + (int64_t)s_range(room_key, SALT_GAP, 600, 1500);
    s.offset_s = (int64_t)s_range(room_key, SALT_OFFSET, 0, (double)s.period_s);
    return s;
}

static show_t s_show(simd_platform_t platform, uint64_t room_key, int64_t show, int64_t length_s)
{
    show_t w;
    uint64_t k = w.key = s_hash(room_key, SALT_SESSION, (uint64_t)show);
    w.length_s = length_s;
    w.peak = s_range(k, SALT_PEAK, s_scale[platform].peak_lo, s_scale[platform].peak_hi);
    w.watch_s = s_range(k, SALT_WATCH, s_scale[platform].watch_lo, s_scale[platform].watch_hi);
    w.like = s_range(k, SALT_LIKE, 0.02, 0.08);
    w.comment = s_range(k, SALT_COMMENT, 0.001, 0.004);
    w.share = s_range(k, SALT_SHARE, 0.0002, 0.0006);
    w.follow = s_range(k, SALT_FOLLOW, 0.01, 0.03);
    w.fans_club = s_range(k, SALT_FANS_CLUB, 0.05, 0.12);
    w.impression = s_range(k, SALT_IMPRESSION, 0.4, 0.6);
    w.ctr = s_range(k, SALT_CTR, 0.15, 0.30);
    w.conv = s_range(k, SALT_CONV, 0.12, 0.22);
    w.pay = s_range(k, SALT_PAY, 0.85, 0.95);
    w.buyer = s_range(k, SALT_BUYER, 0.88, 0.97);
    w.refund = s_range(k, SALT_REFUND, 0.02, 0.06);
    w.ad_fen_s = s_range(k, SALT_AD, 50, 400);
    w.price_fen = ((int64_t)s_range(k, SALT_PRICE, 39, 399)) * 100 - 10; /* 38.90 .. 398.90 */
    w.sale_phase_s = (int64_t)s_range(k, SALT_SALE_PHASE, 600, 900);
    w.sale_amp = s_range(k, SALT_SALE_AMP, 0.5, 1.0);
    return w;
}

/* s_sale - how far into a flash sale second e is, as a bump in [0, 1]; 0 outside sales. Sales
 * stop before the taper, when the host is saying goodbye. */
static double s_sale(const show_t *w, double e)
{
    int64_t near = s_floor_div((int64_t)e - w->sale_phase_s, SALE_EVERY_S);
    for (int64_t i = near; i <= near + 1; i++) {
        if (i < 0)
            continue;
        double jitter = s_range(s_hash(w->key, SALT_SALE_JITTER, (uint64_t)i), 0, -SALE_JITTER_S,
                                SALE_JITTER_S);
        double start = (double)(w->sale_phase_s + i * SALE_EVERY_S) + jitter;
        if (start + SALE_LEN_S > (double)(w->length_s - TAPER_S))
            continue;
        if (e >= start && e < start + SALE_LEN_S)
            return sin(M_PI * (e - start) / SALE_LEN_S);
    }
    return 0;
}

static double s_warm(double e)
{
    return 1.0 - exp(-e / WARMUP_TAU_S);
}

/* s_noise - smooth wobble in [-1, 1]: seeded knots every minute, linear between */
static double s_noise(const show_t *w, double e)
{
    int64_t j = (int64_t)(e / NOISE_KNOT_S);
    double f = (e - (double)j * NOISE_KNOT_S) / NOISE_KNOT_S;
    double a = s_unit(w->key, SALT_NOISE, (uint64_t)j) * 2 - 1;
    double b = s_unit(w->key, SALT_NOISE, (uint64_t)j + 1) * 2 - 1;
    return a + (b - a) * f;
}

static double s_online(const show_t *w, double e)
{
    if (e < 0 || e >= (double)w->length_s)
        return 0;
    double left = (double)w->length_s - e;
    double taper = left < TAPER_S ? 0.25 + 0.75 * left / TAPER_S : 1.0;
    return w->peak * s_warm(e) * taper * (1 + NOISE_AMPLITUDE * s_noise(w, e)) *
           (1 + w->sale_amp * s_sale(w, e));
}

static double s_watch(const show_t *w, double e)
{
    return w->watch_s * (0.6 + 0.4 * s_warm(e));
}

static double s_min(double a, double b)
{
    return a < b ? a : b;
}

/* s_rates - per-second rates during minute m, from the audience at its midpoint */
static rates_t s_rates(const show_t *w, int64_t m)
{
    double mid = (double)m * 60 + 30;
    double online = s_online(w, mid), sale = s_sale(w, mid);
    rates_t r;
    r.viewers = online / s_watch(w, mid) * (1 + 0.5 * sale);
    r.likes = online * w->like * (1 + sale);
    r.comments = online * w->comment * (1 + 2 * sale);
    r.shares = online * w->share;
    r.follows = r.viewers * w->follow;
    r.fans_club = r.follows * w->fans_club;
    r.impressions = r.viewers * s_min(0.95, w->impression * (1 + sale));
    r.clicks = r.impressions * s_min(0.9, w->ctr * (1 + 0.5 * sale));
    r.created = r.clicks * s_min(0.9, w->conv * (1 + sale));
    r.ad_fen = w->ad_fen_s * (1 + 0.5 * sale);
    return r;
}

/* s_integrate - the counters at second e: whole minutes, then the part of the current one */
static rates_t s_integrate(const show_t *w, int64_t e)
{
    rates_t sum = {0};
    int64_t minutes = e / 60;
    for (int64_t m = 0; m <= minutes; m++) {
        rates_t r = s_rates(w, m);
        double secs = m < minutes ? 60 : (double)(e - m * 60);
        sum.viewers += r.viewers * secs;
        sum.likes += r.likes * secs;
        sum.comments += r.comments * secs;
        sum.shares += r.shares * secs;
        sum.follows += r.follows * secs;
        sum.fans_club += r.fans_club * secs;
        sum.impressions += r.impressions * secs;
        sum.clicks += r.clicks * secs;
        sum.created += r.created * secs;
        sum.ad_fen += r.ad_fen * secs;
    }
    return sum;
}

static int64_t s_viewers(const show_t *w, int64_t e)
{
    return (int64_t)(s_integrate(w, e).viewers + FIRST_CROWD * w->peak * s_warm((double)e));
}

/* s_id - n characters of alphabet drawn from key */
static void s_id(char *out, uint64_t key, const char *alphabet, int n)
{
    size_t base = strlen(alphabet);
    for (int i = 0; i < n; i++)
        out[i] = alphabet[s_hash(key, 7, (uint64_t)i) % base];
    out[n] = '\0';
}

const char *simd_platform_name(simd_platform_t platform)
{
    return platform < SIMD_PLATFORM_COUNT ? s_names[platform] : "unknown";
}

void simd_room_id(uint64_t seed, simd_platform_t platform, int room, char out[SIMD_ROOM_ID_MAX])
{
    uint64_t key = s_hash(s_room_key(seed, platform, room), SALT_ROOM_ID, 0);
    switch (platform) {
    case SIMD_CHANNELS:
        memcpy(out, "sph", 3);
        s_id(out + 3, key, "0123456789abcdefghijklmnopqrstuvwxyz", 12);
        break;
    case SIMD_DOUYIN: /* 19 digits, as Douyin's room ids */
        snprintf(out, SIMD_ROOM_ID_MAX, "73%017llu",
                 (unsigned long long)(key % 100000000000000000ULL));
        break;
    default:
        s_id(out, key, "0123456789abcdefghijklmnopqrstuvwxyz", 10);
        break;
    }
}

void simd_model(uint64_t seed, simd_platform_t platform, int room, int64_t t, simd_sample_t *out)
{
    uint64_t room_key = s_room_key(seed, platform, room);
    schedule_t sch = s_schedule(room_key);
    int64_t show = s_floor_div(t - sch.offset_s, sch.period_s);
    show_t w = s_show(platform, room_key, show, sch.length_s);
    memset(out, 0, sizeof *out);
    out->show = show;
    out->show_start = sch.offset_s + show * sch.period_s;
    out->elapsed_s = t - out->show_start;
    out->live = out->elapsed_s < sch.length_s;
    /* after the show the dashboard keeps its final totals */
    int64_t e = out->live ? out->elapsed_s : sch.length_s;
    double ed = (double)e;
    out->flash_sale = out->live && s_sale(&w, ed) > 0;
    out->online = out->live ? (int64_t)s_online(&w, ed) : 0;
    out->avg_watch_s = round(s_watch(&w, ed) * 10) / 10;
    rates_t c = s_integrate(&w, e);
    out->viewers = s_viewers(&w, e);
    out->new_viewers = out->live ? out->viewers - s_viewers(&w, e >= 60 ? e - 60 : 0) : 0;
    out->likes = (int64_t)c.likes;
    out->comments = (int64_t)c.comments;
    out->shares = (int64_t)c.shares;
    out->follows = (int64_t)c.follows;
    out->fans_club = (int64_t)c.fans_club;
    out->impressions = (int64_t)c.impressions;
    out->clicks = (int64_t)c.clicks;
    out->orders_created = (int64_t)c.created;
    out->orders_paid = (int64_t)(c.created * w.pay);
    out->buyers = (int64_t)(c.created * w.pay * w.buyer);
    out->avg_price_fen = w.price_fen;
    out->gmv_fen = out->orders_paid * w.price_fen;
    /* refunds come in as the show goes on: a growing share of what was paid */
    double progress = ed / (double)sch.length_s;
    out->refund_orders = (int64_t)((double)out->orders_paid * w.refund * progress * sqrt(progress));
    out->refund_fen = out->refund_orders * w.price_fen;
    out->ad_cost_fen = (int64_t)c.ad_fen;
    char room_id[SIMD_ROOM_ID_MAX];
    simd_room_id(seed, platform, room, room_id);
    snprintf(out->session_id, sizeof out->session_id, "%s-live-%s-%lld",
             platform == SIMD_KUAISHOU ? "ks"
             : platform == SIMD_DOUYIN ? "dy"
                                       : "ch",
             room_id, (long long)out->show_start);
    memcpy(out->export_id, "export/", 7);
    s_id(out->export_id + 7, s_hash(w.key, SALT_EXPORT, 0),
         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", 40);
}

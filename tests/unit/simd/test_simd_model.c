/* test_simd_model - the simulator's room model: counters never shrink within a show, the order
 * funnel holds, shows warm up, spike on flash sales and taper, and the numbers are a function
 * of (seed, platform, room, time) only. */
#include "simd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define SEED 42
#define T0   1765526460 /* 2025-12-12 08:01:00 UTC */

/* s_show_start - the first second of the show that is on (or just over) at t */
static int64_t s_show_start(uint64_t seed, simd_platform_t p, int room, int64_t t)
{
    simd_sample_t s;
    simd_model(seed, p, room, t, &s);
    return s.show_start;
}

/* the counters that must never shrink within a show */
static void s_counters(const simd_sample_t *s, int64_t out[13])
{
    int64_t v[13] = {s->viewers,   s->likes,       s->comments,   s->shares,         s->follows,
                     s->fans_club, s->impressions, s->clicks,     s->orders_created, s->orders_paid,
                     s->buyers,    s->gmv_fen,     s->ad_cost_fen};
    memcpy(out, v, sizeof v);
}

typedef struct {
    int64_t length_s, sales, checked_sales, max_online, online_at_60s, online_at_30min, online_last;
} show_stats_t;

/* s_play - step through one whole show and its break at 1 s, checking every invariant */
static show_stats_t s_play(uint64_t seed, simd_platform_t p, int room)
{
    int64_t start = s_show_start(seed, p, room, T0);
    simd_sample_t first, s, prev;
    simd_model(seed, p, room, start, &first);
    assert_int_equal(first.elapsed_s, 0);
    assert_true(first.live);
    show_stats_t st = {0};
    int64_t before[13], now[13];
    s_counters(&first, before);
    prev = first;
    int64_t sale_start = -1, sale_peak = 0;
    for (int64_t t = start + 1;; t++) {
        simd_model(seed, p, room, t, &s);
        if (s.show != first.show)
            break;
        assert_int_equal(s.show_start, start);
        assert_string_equal(s.session_id, first.session_id);
        s_counters(&s, now);
        for (int i = 0; i < 13; i++) {
            if (now[i] < before[i])
                fail_msg("platform %d room %d counter %d shrank at +%lld s: %lld -> %lld", p, room,
                         i, (long long)s.elapsed_s, (long long)before[i], (long long)now[i]);
        }
        assert_true(s.refund_orders >= prev.refund_orders);
        memcpy(before, now, sizeof now);
        /* the funnel */
        assert_true(s.viewers >= s.online);
        assert_true(s.viewers >= s.impressions);
        assert_true(s.impressions >= s.clicks);
        assert_true(s.clicks >= s.orders_created);
        assert_true(s.orders_created >= s.orders_paid);
        assert_true(s.orders_paid >= s.buyers);
        assert_int_equal(s.gmv_fen, s.orders_paid * s.avg_price_fen);
        assert_true(s.refund_orders <= s.orders_paid);
        assert_int_equal(s.refund_fen, s.refund_orders * s.avg_price_fen);
        assert_true(s.new_viewers >= 0 && s.new_viewers <= s.viewers);
        assert_true(s.avg_watch_s > 0);
        if (!s.live) {
            if (prev.live)
                st.length_s = s.elapsed_s;
            assert_int_equal(s.online, 0);
            assert_int_equal(s.new_viewers, 0);
            assert_false(s.flash_sale);
        } else {
            assert_int_equal(st.length_s, 0); /* no second show within one period */
            if (s.online > st.max_online)
                st.max_online = s.online;
            if (s.elapsed_s == 60)
                st.online_at_60s = s.online;
            if (s.elapsed_s == 1800)
                st.online_at_30min = s.online;
            st.online_last = s.online;
        }
        /* a flash sale lifts the audience above what it was just before and after */
        if (s.flash_sale && !prev.flash_sale) {
            sale_start = t;
            sale_peak = 0;
            st.sales++;
        }
        if (s.flash_sale && s.online > sale_peak)
            sale_peak = s.online;
        if (!s.flash_sale && prev.flash_sale && sale_start - start >= 900) {
            simd_sample_t before_sale, after_sale;
            simd_model(seed, p, room, sale_start - 60, &before_sale);
            simd_model(seed, p, room, t + 60, &after_sale);
            int64_t base =
                before_sale.online > after_sale.online ? before_sale.online : after_sale.online;
            if (sale_peak * 100 < base * 120)
                fail_msg("platform %d room %d: sale at +%lld s peaked at %lld, around it %lld", p,
                         room, (long long)(sale_start - start), (long long)sale_peak,
                         (long long)base);
            st.checked_sales++;
        }
        prev = s;
    }
    assert_true(st.length_s > 0);
    return st;
}

static void test_show_shapes(void **state)
{
    (void)state;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        for (int room = 0; room < 2; room++) {
            show_stats_t st = s_play(SEED, p, room);
            /* ~2 h */
            assert_in_range(st.length_s, 6600, 7800);
            /* a flash sale every ~20 min while the show is in full swing */
            assert_in_range(st.sales, 4, 6);
            assert_true(st.checked_sales >= 3);
            /* warm-up: the first minute is far below the room at half an hour */
            assert_true(st.online_at_60s * 3 < st.online_at_30min);
            /* taper: the last second is far below the peak */
            assert_true(st.online_last * 2 < st.max_online);
        }
    }
}

static void test_final_totals_kept_after_show(void **state)
{
    (void)state;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        int64_t start = s_show_start(SEED, p, 3, T0);
        simd_sample_t s, end, later;
        int64_t t = start;
        do {
            simd_model(SEED, p, 3, ++t, &s);
        } while (s.live);
        simd_model(SEED, p, 3, t - 1, &end);
        simd_model(SEED, p, 3, t + 300, &later);
        assert_true(end.live);
        assert_false(later.live);
        assert_int_equal(later.show, end.show);
        assert_true(later.orders_paid >= end.orders_paid);
        assert_true(later.orders_paid > 0);
        assert_int_equal(later.orders_paid, s.orders_paid);
        assert_int_equal(later.gmv_fen, s.gmv_fen);
        assert_int_equal(later.viewers, s.viewers);
    }
}

static void test_deterministic(void **state)
{
    (void)state;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        for (int64_t t = T0; t < T0 + 3 * 86400; t += 3607) {
            simd_sample_t a, b;
            simd_model(SEED, p, 5, t, &a);
            simd_model(SEED, p, 5, t, &b);
            assert_memory_equal(&a, &b, sizeof a);
            char ida[SIMD_ROOM_ID_MAX], idb[SIMD_ROOM_ID_MAX];
            simd_room_id(SEED, p, 5, ida);
            simd_room_id(SEED, p, 5, idb);
            assert_string_equal(ida, idb);
            char *ja = simd_format(p, ida, t, &a), *jb = simd_format(p, idb, t, &b);
            assert_string_equal(ja, jb);
            free(ja);
            free(jb);
        }
    }
}

static void test_seeds_differ(void **state)
{
    (void)state;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        char a[SIMD_ROOM_ID_MAX], b[SIMD_ROOM_ID_MAX];
        simd_room_id(SEED, p, 0, a);
        simd_room_id(SEED + 1, p, 0, b);
        assert_string_not_equal(a, b);
        int differ = 0;
        for (int room = 0; room < 4; room++) {
            simd_sample_t x, y;
            simd_model(SEED, p, room, T0, &x);
            simd_model(SEED + 1, p, room, T0, &y);
            differ += x.viewers != y.viewers || x.show_start != y.show_start;
        }
        assert_int_equal(differ, 4);
    }
}

/* room ids look like the platform's and never repeat */
static void test_room_ids(void **state)
{
    (void)state;
    static const struct {
        size_t len;
        const char *prefix, *alphabet;
    } want[SIMD_PLATFORM_COUNT] = {
        {15, "sph", "0123456789abcdefghijklmnopqrstuvwxyz"},
        {19, "7", "0123456789"},
        {10, "", "0123456789abcdefghijklmnopqrstuvwxyz"},
    };
    enum { ROOMS = 200 };
    static char ids[SIMD_PLATFORM_COUNT * ROOMS][SIMD_ROOM_ID_MAX];
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        for (int room = 0; room < ROOMS; room++) {
            char *id = ids[p * ROOMS + room];
            simd_room_id(SEED, p, room, id);
            assert_int_equal(strlen(id), want[p].len);
            assert_memory_equal(id, want[p].prefix, strlen(want[p].prefix));
            assert_int_equal(strspn(id + strlen(want[p].prefix), want[p].alphabet),
                             want[p].len - strlen(want[p].prefix));
        }
    }
    for (int i = 0; i < SIMD_PLATFORM_COUNT * ROOMS; i++)
        for (int j = i + 1; j < SIMD_PLATFORM_COUNT * ROOMS; j++)
            assert_string_not_equal(ids[i], ids[j]);
    assert_string_equal(simd_platform_name(SIMD_CHANNELS), "channels");
    assert_string_equal(simd_platform_name(SIMD_DOUYIN), "douyin");
    assert_string_equal(simd_platform_name(SIMD_KUAISHOU), "kuaishou");
}

/* rooms are spread over their schedules: at any moment most are live, some between shows */
static void test_rooms_spread(void **state)
{
    (void)state;
    int live = 0, total = 0;
    for (int p = 0; p < SIMD_PLATFORM_COUNT; p++) {
        for (int room = 0; room < 17; room++) {
            simd_sample_t s;
            simd_model(SEED, p, room, T0, &s);
            assert_true(s.elapsed_s >= 0);
            live += s.live;
            total++;
        }
    }
    assert_true(live >= total * 3 / 4);
    assert_true(live < total);
}

/* the Unix epoch and times before any show are handled like any other second */
static void test_early_times(void **state)
{
    (void)state;
    for (int64_t t = 0; t < 20000; t += 997) {
        simd_sample_t s;
        simd_model(SEED, SIMD_DOUYIN, 0, t, &s);
        assert_true(s.show_start <= t);
        assert_true(s.elapsed_s >= 0 && s.elapsed_s < 9300);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_shapes),   cmocka_unit_test(test_final_totals_kept_after_show),
        cmocka_unit_test(test_deterministic), cmocka_unit_test(test_seeds_differ),
        cmocka_unit_test(test_room_ids),      cmocka_unit_test(test_rooms_spread),
        cmocka_unit_test(test_early_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

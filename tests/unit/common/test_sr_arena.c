/* test_sr_arena - alignment, zeroing, large allocations, reset, protobuf unpack into an arena,
 * splitting a list. */
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_arena.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_alloc_aligned_and_zeroed(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(256);
    for (size_t size = 1; size < 200; size += 7) {
        unsigned char *p = sr_arena_alloc(a, size);
        assert_int_equal((uintptr_t)p % 16, 0);
        for (size_t i = 0; i < size; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, size);
    }
    sr_arena_destroy(&a);
    assert_null(a);
    sr_arena_destroy(&a);
}

static void test_large_and_reset(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(1024);
    char *big = sr_arena_alloc(a, 100000);
    memset(big, 1, 100000);
    char *s = sr_arena_strdup(a, "直播带货");
    assert_string_equal(s, "直播带货");
    assert_string_equal(sr_arena_strndup(a, "abcdef", 3), "abc");
    assert_string_equal(sr_arena_printf(a, "%s-%d", "room", 7), "room-7");
    assert_true(sr_arena_used(a) >= 100000);
    sr_arena_reset(a);
    assert_int_equal(sr_arena_used(a), 0);
    char *again = sr_arena_alloc(a, 64);
    assert_non_null(again);
    sr_arena_destroy(&a);
}

static void test_protobuf_unpack_into_arena(void **state)
{
    (void)state;
    Sr__RoomSample in = SR__ROOM_SAMPLE__INIT;
    in.room_id = "room-42";
    in.gmv_fen = 123456789;
    in.platform = SR__PLATFORM__PLATFORM_KUAISHOU;
    size_t len = sr__room_sample__get_packed_size(&in);
    uint8_t *buf = sr_malloc(len);
    sr__room_sample__pack(&in, buf);
    sr_arena_t *a = sr_arena_new(512);
    Sr__RoomSample *out = sr__room_sample__unpack(sr_arena_pb_allocator(a), len, buf);
    assert_non_null(out);
    assert_string_equal(out->room_id, "room-42");
    assert_int_equal(out->gmv_fen, 123456789);
    assert_int_equal(out->platform, SR__PLATFORM__PLATFORM_KUAISHOU);
    /* freeing through the arena allocator is a no-op; destroy releases everything */
    sr__room_sample__free_unpacked(out, sr_arena_pb_allocator(a));
    free(buf);
    sr_arena_destroy(&a);
}

static void test_split(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(256);
    size_t n;
    char **parts = sr_arena_split(a, "east,south,,north", ',', &n);
    assert_int_equal(n, 4);
    assert_string_equal(parts[0], "east");
    assert_string_equal(parts[2], "");
    assert_string_equal(parts[3], "north");
    assert_null(sr_arena_split(a, "", ',', &n));
    assert_int_equal(n, 0);
    parts = sr_arena_split(a, "one", ',', &n);
    assert_int_equal(n, 1);
    assert_string_equal(parts[0], "one");
    sr_arena_destroy(&a);
}

static void test_alloc_helpers(void **state)
{
    (void)state;
    char *s = sr_asprintf("%s=%lld", "gmv_fen", 12345678901LL);
    assert_string_equal(s, "gmv_fen=12345678901");
    SR_FREE(s);
    assert_null(s);
    char *d = sr_strndup("abcdef", 4);
    assert_string_equal(d, "abcd");
    free(d);
    int *z = sr_calloc(10, sizeof *z);
    for (int i = 0; i < 10; i++)
        assert_int_equal(z[i], 0);
    z = sr_realloc(z, 20 * sizeof *z);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_and_zeroed),
        cmocka_unit_test(test_large_and_reset),
        cmocka_unit_test(test_protobuf_unpack_into_arena),
        cmocka_unit_test(test_alloc_helpers),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

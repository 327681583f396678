/* test_sr_cursor - page cursors come back as they went out (keys with any text, negative ids),
 * and what is not one of ours is refused; also the FNV-1a values of sr_hash. */
#include "sr_cursor.h"
#include "sr_hash.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_round_trip(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(1024);
    const struct {
        const char *key;
        int64_t id;
    } cases[] = {
        {"", 0}, {"li.na", 42}, {"douyin:7300001", -7}, {"华东 直播间", 9007199254740993LL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = sr_cursor_make(a, cases[i].key, cases[i].id);
        for (const char *p = c; *p; p++)
            assert_non_null(
                strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
        char *key;
        int64_t id;
        assert_int_equal(sr_cursor_read(a, c, &key, &id), 0);
        assert_string_equal(key, cases[i].key);
        assert_int_equal(id, cases[i].id);
    }
    sr_arena_destroy(&a);
}

static void test_garbage(void **state)
{
    (void)state;
    sr_arena_t *a = sr_arena_new(1024);
    char *key;
    int64_t id;
    const char *bad[] = {"not base64!", "aGVsbG8", /* "hello": no separator */
                         "eB94", /* "x\x1fx": no number */ ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sr_cursor_read(a, bad[i], &key, &id), -1);
    sr_arena_destroy(&a);
}

static void test_fnv1a(void **state)
{
    (void)state;
    assert_int_equal(sr_hash_fnv1a_str(""), 0xcbf29ce484222325ULL);
    assert_int_equal(sr_hash_fnv1a_str("a"), 0xaf63dc4c8601ec8cULL);
    uint64_t h = sr_hash_fnv1a_more(SR_HASH_FNV1A_INIT, "foo", 3);
    assert_int_equal(sr_hash_fnv1a_more(h, "bar", 3), sr_hash_fnv1a_str("foobar"));
}

/* a page holds the limit asked for when it is 1..200, else the default 50 */
static void test_page_limit(void **state)
{
    (void)state;
    assert_int_equal(sr_page_limit(0), 50);
    assert_int_equal(sr_page_limit(-3), 50);
    assert_int_equal(sr_page_limit(1), 1);
    assert_int_equal(sr_page_limit(200), 200);
    assert_int_equal(sr_page_limit(201), 50);
}

/* pages in id order: a cursor after the last id only when the query read one row more */
static void test_id_pages(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(1024);
    assert_string_equal(sr_cursor_after(arena, 50, 50, 7), "");
    char *next = sr_cursor_after(arena, 51, 50, 7);
    int64_t id = -1;
    assert_int_equal(sr_cursor_id(arena, next, &id), 0);
    assert_true(id == 7);
    assert_int_equal(sr_cursor_id(arena, "", &id), 0);
    assert_true(id == 0);
    assert_int_equal(sr_cursor_id(arena, "nonsense", &id), -1);
    assert_int_equal(sr_cursor_id(arena, sr_cursor_make(arena, "", 0), &id), -1);
    assert_int_equal(sr_cursor_id(arena, sr_cursor_make(arena, "", -5), &id), -1);
    sr_arena_destroy(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_fnv1a),      cmocka_unit_test(test_page_limit),
        cmocka_unit_test(test_id_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

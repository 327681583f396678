/* test_ingestd_shard - the room hash the polling instances share rooms by: the same value on
 * every build and host (instances of different versions must agree on who polls what), and an
 * even spread over the instances. */
#include "ingestd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

static void test_hash_is_fixed(void **state)
{
    (void)state;
    /* FNV-1a 64 of "platform:room", as any other implementation computes it */
    assert_int_equal(ingestd_shard_hash("douyin", "7300001"), 0x12e3136e8679edc6ULL);
    assert_int_equal(ingestd_shard_hash("channels", "sph123"), 0x2112e2b94879b406ULL);
    assert_int_equal(ingestd_shard_hash("", ""), 0xaf63b74c8601adadULL);
    assert_true(ingestd_shard_hash("douyin", "1") != ingestd_shard_hash("kuaishou", "1"));
}

static void test_spread(void **state)
{
    (void)state;
    int per[4] = {0};
    char room[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(room, sizeof room, "73%011d", i * 7919);
        per[ingestd_shard_hash("douyin", room) % 4]++;
    }
    for (int k = 0; k < 4; k++)
        if (per[k] < 850 || per[k] > 1150)
            fail_msg("instance %d of 4 gets %d of 4000 rooms", k, per[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_fixed),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

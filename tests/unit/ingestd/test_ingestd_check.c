/* test_ingestd_check - batch validation before queueing: each rule PostgreSQL would enforce
 * later (UTF-8 text, time range, keys) is refused up front with the field that broke it. */
#include "ingestd.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_utf8(void **state)
{
    (void)state;
    const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"", 1},
        {"plain ascii", 1},
        {"直播间 €", 1},
        {"\xf0\x9f\x8e\x81 gift", 1}, /* U+1F381 */
        {"\xf4\x8f\xbf\xbf", 1},      /* U+10FFFF */
        {"\xff", 0},                  /* never valid */
        {"\xc3", 0},                  /* truncated */
        {"\xc3(", 0},                 /* bad continuation */
        {"\xc0\xaf", 0},              /* overlong '/' */
        {"\xe0\x80\xaf", 0},          /* overlong, 3 bytes */
        {"\xed\xa0\x80", 0},          /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0},      /* above U+10FFFF */
        {"ok \x80 stray", 0},         /* stray continuation */
        {"\xe4\xbd\xa0\xe5\xa5", 0},  /* truncated at the end */
        /* the eight-bytes-at-a-time ASCII path: runs longer than a word around the bad byte */
        {"room-7312345678901234567", 1},
        {"room-73123456\xff"
         "78901234567",
         0},
        {"room-731234567890123456\xc3", 0},
        {"abcdefgh\xe7\x9b\xb4"
         "abcdefgh",
         1},
        {"abcdefgh\xe0\x80\xaf"
         "abcdefgh",
         0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (ingestd_utf8_ok(cases[i].s) != cases[i].ok)
            fail_msg("case %zu: want %d", i, cases[i].ok);
}

typedef struct {
    Sr__CollectorBatch b;
    Sr__RoomSample s, *sp;
    Sr__OrderEvent o, *op;
    Sr__InteractionEvent e, *ep;
} batch_t;

static void s_good(batch_t *t)
{
    sr__collector_batch__init(&t->b);
    sr__room_sample__init(&t->s);
    sr__order_event__init(&t->o);
    sr__interaction_event__init(&t->e);
    t->b.collector_id = "c1";
    t->b.batch_seq = 1;
    t->s.room_id = t->o.room_id = t->e.room_id = "room";
    t->s.ts_us = t->o.ts_us = t->e.ts_us = 1767323045000000LL;
    t->e.text = "好看";
    t->sp = &t->s;
    t->op = &t->o;
    t->ep = &t->e;
    t->b.samples = &t->sp;
    t->b.n_samples = 1;
    t->b.orders = &t->op;
    t->b.n_orders = 1;
    t->b.interactions = &t->ep;
    t->b.n_interactions = 1;
}

static void s_empty_id(batch_t *t)
{
    t->b.collector_id = "";
}
static void s_long_id(batch_t *t)
{
    static char id[202];
    memset(id, 'x', 201);
    t->b.collector_id = id;
}
static void s_seq_zero(batch_t *t)
{
    t->b.batch_seq = 0;
}
static void s_seq_huge(batch_t *t)
{
    t->b.batch_seq = (uint64_t)INT64_MAX + 1;
}
static void s_no_room(batch_t *t)
{
    t->s.room_id = "";
}
static void s_ts_negative(batch_t *t)
{
    t->o.ts_us = -1;
}
static void s_ts_far(batch_t *t)
{
    t->e.ts_us = INT64_MAX;
}
static void s_bad_session(batch_t *t)
{
    t->s.session_id = "\xff";
}
static void s_bad_sku(batch_t *t)
{
    t->o.sku_id = "\xc0\xaf";
}
static void s_bad_text(batch_t *t)
{
    t->e.text = "\xed\xa0\x80";
}
static void s_nothing(batch_t *t)
{
    (void)t;
}
static void s_no_rows(batch_t *t)
{
    t->b.n_samples = t->b.n_orders = t->b.n_interactions = 0;
}

static void test_batch_check(void **state)
{
    (void)state;
    const struct {
        void (*spoil)(batch_t *);
        const char *error; /* NULL = accepted */
    } cases[] = {
        {s_nothing, NULL},
        {s_no_rows, NULL},
        {s_empty_id, "collector_id: must be 1..200 bytes of UTF-8"},
        {s_long_id, "collector_id: must be 1..200 bytes of UTF-8"},
        {s_seq_zero, "batch_seq: must be 1..2^63-1"},
        {s_seq_huge, "batch_seq: must be 1..2^63-1"},
        {s_no_room, "samples[0].room_id: empty"},
        {s_ts_negative, "orders[0].ts_us: -1 out of range"},
        {s_ts_far, "interactions[0].ts_us: 9223372036854775807 out of range"},
        {s_bad_session, "samples[0].session_id: not UTF-8"},
        {s_bad_sku, "orders[0].sku_id: not UTF-8"},
        {s_bad_text, "interactions[0].text: not UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        batch_t t;
        s_good(&t);
        cases[i].spoil(&t);
        char err[160] = "";
        int rc = ingestd_batch_check(&t.b, err, sizeof err);
        if (!cases[i].error) {
            if (rc != 0)
                fail_msg("case %zu refused: %s", i, err);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err, cases[i].error);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_batch_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

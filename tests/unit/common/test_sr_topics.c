/* test_sr_topics - the topic table: names, uniqueness, payload types, exact lookup. */
#include "sr_topics.h"

#include "metrics.pb-c.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

/* s_lower_snake - a run of [a-z0-9_] starting with a letter, not ending with '_' */
static int s_lower_snake(const char *s, size_t len)
{
    if (len == 0 || s[0] < 'a' || s[0] > 'z' || s[len - 1] == '_')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static void test_every_row_is_domain_dot_event(void **state)
{
    (void)state;
    size_t n = 0;
    const sr_topic_t *all = sr_topics_all(&n);
    assert_true(n >= 9);
    for (size_t i = 0; i < n; i++) {
        const char *t = all[i].topic;
        const char *dot = strchr(t, '.');
        assert_non_null(dot);
        assert_null(strchr(dot + 1, '.'));
        assert_true(s_lower_snake(t, (size_t)(dot - t)));
        assert_true(s_lower_snake(dot + 1, strlen(dot + 1)));
        assert_true(strlen(t) < 128);
        assert_non_null(all[i].payload);
        assert_int_equal(all[i].payload->magic, PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
        assert_non_null(all[i].meaning);
        assert_true(strlen(all[i].meaning) > 0);
        assert_null(strchr(all[i].meaning, '\n'));
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(t, all[j].topic);
    }
}

static void test_rows_map_to_their_payloads(void **state)
{
    (void)state;
    static const struct {
        const char *topic;
        const ProtobufCMessageDescriptor *payload;
    } cases[] = {
        {"metric.room", &sr__room_sample__descriptor},
        {"order.created", &sr__order_event__descriptor},
        {"order.paid", &sr__order_event__descriptor},
        {"order.cancelled", &sr__order_event__descriptor},
        {"order.refunded", &sr__order_event__descriptor},
        {"interaction.comment", &sr__interaction_event__descriptor},
        {"interaction.gift", &sr__interaction_event__descriptor},
        {"interaction.like", &sr__interaction_event__descriptor},
        {"interaction.fan_club", &sr__interaction_event__descriptor},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const sr_topic_t *row = sr_topic_find(cases[i].topic);
        assert_non_null(row);
        assert_string_equal(row->topic, cases[i].topic);
        assert_ptr_equal(row->payload, cases[i].payload);
    }
}

static void test_find_is_exact(void **state)
{
    (void)state;
    static const char *const misses[] = {
        "",
        "metric",
        "metric.",
        "metric.roo",
        "metric.room.",
        "metric.rooms",
        "Metric.room",
        " metric.room",
        "order",
        "order.*",
        "interaction.fan-club",
    };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
        assert_null(sr_topic_find(misses[i]));
    assert_null(sr_topic_find(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_is_domain_dot_event),
        cmocka_unit_test(test_rows_map_to_their_payloads),
        cmocka_unit_test(test_find_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_sr_pbjson - the JSON <-> protobuf codec against golden files.
 *
 * Fixtures are in tests/fixtures/pbjson/ (found under SR_TEST_ROOT, else the current directory,
 * which is the checkout when run by `make test`): *.json are exact compact encodings, checked
 * byte for byte both ways (message built here -> text, and text -> message -> text, also through
 * protobuf pack/unpack); errors/NAME.json are bad inputs, each with its expected error path and
 * message in s_errors below. Messages come from tests/fixtures/pbjson/pbtest*.proto, and
 * proto/metrics.proto and proto/rpc.proto for real traffic.
 */
#include "metrics.pb-c.h"
#include "pbtest.pb-c.h"
#include "pbtest_optional.pb-c.h"
#include "rpc.pb-c.h"
#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_pbjson.h"
#include "sr_test.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* s_fixture - contents of tests/fixtures/pbjson/name without one trailing newline; caller frees */
static char *s_fixture(const char *name, size_t *len)
{
    const char *root = getenv("SR_TEST_ROOT");
    char *path = sr_asprintf("%s/tests/fixtures/pbjson/%s", root && *root ? root : ".", name);
    char *text = sr_test_read_file(path, len);
    if (!text)
        fail_msg("cannot read %s", path);
    free(path);
    if (*len > 0 && text[*len - 1] == '\n')
        text[--*len] = '\0';
    return text;
}

/* s_decode - decode text, asserting success */
static ProtobufCMessage *s_decode(const char *text, const ProtobufCMessageDescriptor *desc,
                                  sr_arena_t *arena)
{
    ProtobufCMessage *msg = NULL;
    sr_pbjson_error_t err;
    int rc = sr_pbjson_decode_text(text, strlen(text), desc, arena, &msg, &err);
    if (rc != 0)
        fail_msg("decode %s: path=\"%s\" message=\"%s\"", text, err.path, err.message);
    assert_non_null(msg);
    assert_ptr_equal(msg->descriptor, desc);
    return msg;
}

/* s_assert_encodes - msg encodes to exactly want */
static void s_assert_encodes(const ProtobufCMessage *msg, const char *want)
{
    char *text = sr_pbjson_encode_text(msg);
    assert_string_equal(text, want);
    free(text);
}

/* ---- encoding: messages built in C against golden text -------------------------------------- */

static void s_build_full(ProtobufCMessage *msg)
{
    Pbtest__All *m = (Pbtest__All *)msg;
    static Pbtest__Inner inner = PBTEST__INNER__INIT, r0 = PBTEST__INNER__INIT,
                         r1 = PBTEST__INNER__INIT, choice = PBTEST__INNER__INIT;
    static Pbtest__Inner *r_inner[] = {&r0, &r1};
    static int32_t r_int32[] = {1, -2, 3};
    static int64_t r_int64[] = {1, -2};
    static char *r_string[] = {"a", ""};
    static uint8_t bytes[] = {0x00, 0xff, 0x10, 'a'}, two[] = {1, 2};
    static ProtobufCBinaryData r_bytes[] = {{0, NULL}, {2, two}};
    static Pbtest__Color r_enum[] = {PBTEST__COLOR__COLOR_GREEN, PBTEST__COLOR__COLOR_UNSPECIFIED};

    inner.name = "in";
    inner.count = 3;
    r0.name = "x";
    r0.count = 1;
    choice.name = "c";
    choice.count = 9;
    m->f_int32 = -42;
    m->f_late = PBTEST__COLOR__COLOR_GREEN;
    m->f_int64 = -9007199254740993LL; /* not exact as a JavaScript number: why int64 is a string */
    m->f_uint32 = UINT32_MAX;
    m->f_uint64 = UINT64_MAX;
    m->f_sint32 = INT32_MIN;
    m->f_sint64 = INT64_MIN;
    m->f_fixed32 = 7;
    m->f_fixed64 = 8;
    m->f_sfixed32 = -9;
    m->f_sfixed64 = -10;
    m->f_float = 0.1f;
    m->f_double = 2.5;
    m->f_bool = 1;
    m->f_string = "héllo \"world\"\n直播";
    m->f_bytes = (ProtobufCBinaryData){sizeof bytes, bytes};
    m->f_enum = PBTEST__COLOR__COLOR_RED;
    m->f_inner = &inner;
    m->n_r_int32 = 3;
    m->r_int32 = r_int32;
    m->n_r_int64 = 2;
    m->r_int64 = r_int64;
    m->n_r_string = 2;
    m->r_string = r_string;
    m->n_r_bytes = 2;
    m->r_bytes = r_bytes;
    m->n_r_enum = 2;
    m->r_enum = r_enum;
    m->n_r_inner = 2;
    m->r_inner = r_inner;
    m->choice_case = PBTEST__ALL__CHOICE_CHOICE_INNER;
    m->choice_inner = &choice;
}

static void s_build_choice_zero(ProtobufCMessage *msg)
{
    Pbtest__All *m = (Pbtest__All *)msg;
    m->choice_case = PBTEST__ALL__CHOICE_CHOICE_NUMBER;
    m->choice_number = 0;
}

static void s_build_optionals_set(ProtobufCMessage *msg)
{
    Pbtest__Optionals *m = (Pbtest__Optionals *)msg;
    static Pbtest__Optionals__Sub sub = PBTEST__OPTIONALS__SUB__INIT;
    m->has_o_int32 = m->has_o_int64 = m->has_o_bytes = m->has_o_bool = m->has_o_double = 1;
    m->o_string = "";
    m->o_sub = &sub;
}

static void test_encode_golden(void **state)
{
    (void)state;
    static const struct {
        const char *fixture;
        const ProtobufCMessageDescriptor *desc;
        void (*build)(ProtobufCMessage *); /* NULL: the message as initialised */
    } cases[] = {
        {"full.json", &pbtest__all__descriptor, s_build_full},
        {"defaults.json", &pbtest__all__descriptor, NULL},
        {"choice_zero.json", &pbtest__all__descriptor, s_build_choice_zero},
        {"optionals_set.json", &pbtest__optionals__descriptor, s_build_optionals_set},
        {"optionals_empty.json", &pbtest__optionals__descriptor, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ProtobufCMessage *msg = sr_calloc(1, cases[i].desc->sizeof_message);
        protobuf_c_message_init(cases[i].desc, msg);
        if (cases[i].build)
            cases[i].build(msg);
        size_t len;
        char *want = s_fixture(cases[i].fixture, &len);
        s_assert_encodes(msg, want);
        free(want);
        free(msg);
    }
}

/* ---- decode -> encode round trips ----------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    static const struct {
        const char *fixture;
        const ProtobufCMessageDescriptor *desc;
    } cases[] = {
        {"full.json", &pbtest__all__descriptor},
        {"defaults.json", &pbtest__all__descriptor},
        {"choice_zero.json", &pbtest__all__descriptor},
        {"optionals_set.json", &pbtest__optionals__descriptor},
        {"optionals_empty.json", &pbtest__optionals__descriptor},
        {"room_sample_batch.json", &sr__room_sample_batch__descriptor},
        {"rpc_request.json", &sr__request__descriptor},
    };
    sr_arena_t *arena = sr_arena_new(4096);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *want = s_fixture(cases[i].fixture, &len);
        ProtobufCMessage *msg = s_decode(want, cases[i].desc, arena);
        s_assert_encodes(msg, want);

        /* the decoded message is a valid protobuf-c message: it packs and unpacks the same */
        size_t size = protobuf_c_message_get_packed_size(msg);
        uint8_t *wire = sr_malloc(size ? size : 1);
        assert_int_equal(protobuf_c_message_pack(msg, wire), size);
        ProtobufCMessage *back = protobuf_c_message_unpack(cases[i].desc, NULL, size, wire);
        assert_non_null(back);
        s_assert_encodes(back, want);
        protobuf_c_message_free_unpacked(back, NULL);
        free(wire);
        free(want);
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

/* ---- decoded values ------------------------------------------------------------------------- */

static void test_decoded_values(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(4096);
    size_t len;
    char *text = s_fixture("full.json", &len);
    Pbtest__All *m = (Pbtest__All *)s_decode(text, &pbtest__all__descriptor, arena);
    assert_int_equal(m->f_int32, -42);
    assert_true(m->f_int64 == -9007199254740993LL);
    assert_true(m->f_uint32 == UINT32_MAX);
    assert_true(m->f_uint64 == UINT64_MAX);
    assert_true(m->f_sint32 == INT32_MIN);
    assert_true(m->f_sint64 == INT64_MIN);
    assert_true(m->f_fixed64 == 8 && m->f_sfixed32 == -9 && m->f_sfixed64 == -10);
    assert_true(m->f_float == 0.1f);
    assert_true(m->f_double == 2.5);
    assert_true(m->f_bool);
    assert_string_equal(m->f_string, "héllo \"world\"\n直播");
    assert_int_equal(m->f_bytes.len, 4);
    assert_memory_equal(m->f_bytes.data,
                        "\x00\xff\x10"
                        "a",
                        4);
    assert_int_equal(m->f_enum, PBTEST__COLOR__COLOR_RED);
    assert_int_equal(m->f_late, PBTEST__COLOR__COLOR_GREEN);
    assert_string_equal(m->f_inner->name, "in");
    assert_int_equal(m->n_r_int32, 3);
    assert_int_equal(m->r_int32[1], -2);
    assert_int_equal(m->n_r_bytes, 2);
    assert_int_equal(m->r_bytes[0].len, 0);
    assert_memory_equal(m->r_bytes[1].data, "\x01\x02", 2);
    assert_int_equal(m->r_enum[0], PBTEST__COLOR__COLOR_GREEN);
    assert_string_equal(m->r_string[1], "");
    assert_int_equal(m->n_r_inner, 2);
    assert_string_equal(m->r_inner[1]->name, "");
    assert_int_equal(m->choice_case, PBTEST__ALL__CHOICE_CHOICE_INNER);
    assert_int_equal(m->choice_inner->count, 9);
    free(text);
    sr_arena_destroy(&arena);
}

/* absent fields keep their defaults; strings are "" (protobuf-c's empty string), never NULL */
static void test_presence_and_defaults(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(1024);
    Pbtest__All *all = (Pbtest__All *)s_decode("{}", &pbtest__all__descriptor, arena);
    assert_non_null(all->f_string);
    assert_string_equal(all->f_string, "");
    assert_null(all->f_inner);
    assert_int_equal(all->n_r_inner, 0);
    assert_int_equal(all->choice_case, PBTEST__ALL__CHOICE__NOT_SET);

    all = (Pbtest__All *)s_decode("{\"f_string\":\"\",\"f_inner\":null,\"choice_text\":\"\"}",
                                  &pbtest__all__descriptor, arena);
    assert_non_null(all->f_string);
    assert_string_equal(all->f_string, "");
    assert_null(all->f_inner);
    assert_int_equal(all->choice_case, PBTEST__ALL__CHOICE_CHOICE_TEXT);
    assert_string_equal(all->choice_text, "");

    /* a oneof member given as null leaves the oneof unset */
    all = (Pbtest__All *)s_decode("{\"choice_inner\":null}", &pbtest__all__descriptor, arena);
    assert_int_equal(all->choice_case, PBTEST__ALL__CHOICE__NOT_SET);

    Pbtest__Optionals *opt =
        (Pbtest__Optionals *)s_decode("{}", &pbtest__optionals__descriptor, arena);
    assert_false(opt->has_o_int32 || opt->has_o_int64 || opt->has_o_bytes || opt->has_o_bool);
    assert_null(opt->o_string);
    assert_null(opt->o_sub);
    opt = (Pbtest__Optionals *)s_decode("{\"o_int64\":\"-3\",\"o_string\":\"s\",\"o_sub\":{}}",
                                        &pbtest__optionals__descriptor, arena);
    assert_true(opt->has_o_int64 && opt->o_int64 == -3);
    assert_false(opt->has_o_int32);
    assert_string_equal(opt->o_string, "s");
    assert_non_null(opt->o_sub);
    assert_false(opt->o_sub->has_count);
    s_assert_encodes(&opt->base, "{\"o_int64\":\"-3\",\"o_string\":\"s\",\"o_sub\":{}}");
    sr_arena_destroy(&arena);
}

/* ---- 64-bit integers ------------------------------------------------------------------------ */

static void test_int64_string_and_number(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int64_t int64;
        uint64_t uint64;
    } cases[] = {
        {"{\"f_int64\":5,\"f_uint64\":5}", 5, 5},
        {"{\"f_int64\":\"5\",\"f_uint64\":\"5\"}", 5, 5},
        {"{\"f_int64\":-5,\"f_uint64\":\"007\"}", -5, 7},
        {"{\"f_int64\":\"-5\",\"f_uint64\":\"-0\"}", -5, 0},
        {"{\"f_int64\":2.0,\"f_uint64\":1e3}", 2, 1000},
        {"{\"f_int64\":9223372036854775807,\"f_uint64\":9223372036854775807}", INT64_MAX,
         INT64_MAX},
        {"{\"f_int64\":-9223372036854775808,\"f_uint64\":0}", INT64_MIN, 0},
        {"{\"f_int64\":\"9223372036854775807\",\"f_uint64\":\"18446744073709551615\"}", INT64_MAX,
         UINT64_MAX},
        {"{\"f_int64\":\"-9223372036854775808\",\"f_uint64\":\"0\"}", INT64_MIN, 0},
    };
    sr_arena_t *arena = sr_arena_new(1024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Pbtest__All *m = (Pbtest__All *)s_decode(cases[i].json, &pbtest__all__descriptor, arena);
        assert_true(m->f_int64 == cases[i].int64);
        assert_true(m->f_uint64 == cases[i].uint64);
        /* every 64-bit type goes through the same reader */
        char *text = sr_pbjson_encode_text(&m->base);
        char want[128];
        snprintf(want, sizeof want, "\"f_int64\":\"%lld\",\"f_uint32\":0,\"f_uint64\":\"%llu\"",
                 (long long)cases[i].int64, (unsigned long long)cases[i].uint64);
        assert_non_null(strstr(text, want));
        free(text);
    }
    Pbtest__All *m = (Pbtest__All *)s_decode(
        "{\"f_sint64\":\"-9223372036854775808\",\"f_sfixed64\":9223372036854775807,"
        "\"f_fixed64\":\"18446744073709551615\",\"r_int64\":[1,\"-2\",3e0]}",
        &pbtest__all__descriptor, arena);
    assert_true(m->f_sint64 == INT64_MIN);
    assert_true(m->f_sfixed64 == INT64_MAX);
    assert_true(m->f_fixed64 == UINT64_MAX);
    assert_int_equal(m->n_r_int64, 3);
    assert_true(m->r_int64[0] == 1 && m->r_int64[1] == -2 && m->r_int64[2] == 3);
    sr_arena_destroy(&arena);
}

/* ---- floats ---------------------------------------------------------------------------------- */

static void test_float_special_values(void **state)
{
    (void)state;
    static const struct {
        float f;
        double d;
        const char *json; /* the two fields as written */
    } cases[] = {
        {NAN, -NAN, "\"f_float\":\"NaN\",\"f_double\":\"NaN\""},
        {INFINITY, -INFINITY, "\"f_float\":\"Infinity\",\"f_double\":\"-Infinity\""},
        {0.1f, 0.1, "\"f_float\":0.10000000000000001,\"f_double\":0.10000000000000001"},
        {FLT_MAX, DBL_MAX, "\"f_float\":3.4028234999999999e38,\"f_double\":1.7976931348623157e308"},
        {-1.5f, -0.0, "\"f_float\":-1.5,\"f_double\":-0.0"},
        {FLT_MIN, DBL_MIN,
         "\"f_float\":1.1754944000000001e-38,\"f_double\":2.2250738585072014e-308"},
    };
    sr_arena_t *arena = sr_arena_new(1024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Pbtest__All in = PBTEST__ALL__INIT;
        in.f_float = cases[i].f;
        in.f_double = cases[i].d;
        char *text = sr_pbjson_encode_text(&in.base);
        if (!strstr(text, cases[i].json))
            fail_msg("want %s in %s", cases[i].json, text);
        Pbtest__All *out = (Pbtest__All *)s_decode(text, &pbtest__all__descriptor, arena);
        if (isnan(cases[i].f))
            assert_true(isnan(out->f_float) && isnan(out->f_double));
        else
            assert_memory_equal(&out->f_float, &cases[i].f, sizeof(float));
        if (!isnan(cases[i].d))
            assert_memory_equal(&out->f_double, &cases[i].d, sizeof(double));
        free(text);
    }
    Pbtest__All *m =
        (Pbtest__All *)s_decode("{\"f_float\":7,\"f_double\":-3}", &pbtest__all__descriptor, arena);
    assert_true(m->f_float == 7.0f && m->f_double == -3.0);
    sr_arena_destroy(&arena);
}

/* ---- encoding edge cases --------------------------------------------------------------------- */

static void test_encode_edge_cases(void **state)
{
    (void)state;
    /* protobuf-c does not check UTF-8 on unpack: each bad byte becomes U+FFFD */
    Pbtest__Inner inner = PBTEST__INNER__INIT;
    inner.name = "a\xff"
                 "b\xe7\x9b"
                 "c\xed\xa0\x80";
    s_assert_encodes(&inner.base, "{\"name\":\"a\xef\xbf\xbd"
                                  "b\xef\xbf\xbd\xef\xbf\xbd"
                                  "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"count\":0}");
    inner.name = NULL;
    s_assert_encodes(&inner.base, "{\"name\":\"\",\"count\":0}");

    /* an enum number the descriptor does not know is kept as a number */
    Pbtest__WithMap map = PBTEST__WITH_MAP__INIT;
    Pbtest__All all = PBTEST__ALL__INIT;
    all.f_enum = 7;
    char *text = sr_pbjson_encode_text(&all.base);
    assert_non_null(strstr(text, "\"f_enum\":7,"));
    free(text);

    /* the encoder writes a map as the repeated entry messages it is */
    Pbtest__WithMap__LabelsEntry entry = PBTEST__WITH_MAP__LABELS_ENTRY__INIT,
                                 *entries[] = {&entry};
    entry.key = "k";
    entry.value = 1;
    map.n_labels = 1;
    map.labels = entries;
    s_assert_encodes(&map.base, "{\"name\":\"\",\"labels\":[{\"key\":\"k\",\"value\":1}]}");

    json_t *json = sr_pbjson_encode(&inner.base);
    assert_true(json_is_object(json));
    assert_int_equal(json_object_size(json), 2);
    assert_string_equal(json_string_value(json_object_get(json, "name")), "");
    json_decref(json);
}

/* ---- errors ---------------------------------------------------------------------------------- */

#define ALL  (&pbtest__all__descriptor)
#define OPT  (&pbtest__optionals__descriptor)
#define MAP  (&pbtest__with_map__descriptor)
#define BAT  (&sr__room_sample_batch__descriptor)
#define REQ  (&sr__request__descriptor)
#define LINE "invalid JSON at line 1 column "

static const struct {
    const char *file; /* under tests/fixtures/pbjson/errors/ */
    const ProtobufCMessageDescriptor *desc;
    const char *path;
    const char *message;
} s_errors[] = {
    {"unknown_field", ALL, "nope", "unknown field"},
    {"unknown_nested_field", ALL, "f_inner.size", "unknown field"},
    {"camel_case_name", ALL, "fInt32", "unknown field"},
    {"string_wrong_type", ALL, "f_string", "expected string, got number"},
    {"bool_wrong_type", ALL, "f_bool", "expected boolean, got string"},
    {"int32_as_string", ALL, "f_int32", "expected integer, got string"},
    {"int32_overflow", ALL, "f_int32", "value 3000000000 out of range for int32"},
    {"sint32_underflow", ALL, "f_sint32", "value -2147483649 out of range for sint32"},
    {"uint32_negative", ALL, "f_uint32", "value -1 out of range for uint32"},
    {"fixed32_overflow", ALL, "f_fixed32", "value 4294967296 out of range for fixed32"},
    {"int32_fraction", ALL, "f_int32", "value 1.5 is not an integer"},
    {"int64_fraction_string", ALL, "f_int64", "value \"1.5\" is not a decimal integer"},
    {"int64_overflow_string", ALL, "f_int64", "value 9223372036854775808 out of range for int64"},
    {"sfixed64_underflow_string", ALL, "f_sfixed64",
     "value -9223372036854775809 out of range for sfixed64"},
    {"uint64_overflow_string", ALL, "f_uint64",
     "value 18446744073709551616 out of range for uint64"},
    {"fixed64_negative_string", ALL, "f_fixed64", "value -1 out of range for fixed64"},
    {"int64_spaced_string", ALL, "f_int64", "value \" 12\" is not a decimal integer"},
    {"int64_plus_string", ALL, "f_int64", "value \"+12\" is not a decimal integer"},
    {"int64_empty_string", ALL, "f_int64", "value \"\" is not a decimal integer"},
    {"int64_boolean", ALL, "f_int64", "expected integer or decimal string, got boolean"},
    {"int64_real_overflow", ALL, "f_int64", "value 10000000000000000000 out of range for int64"},
    {"uint64_number_too_big", ALL, "", LINE "32: too big integer near '18446744073709551616'"},
    {"float_overflow", ALL, "f_float", "value 1e+39 out of range for float"},
    {"double_bad_string", ALL, "f_double", "expected number, got string"},
    {"enum_unknown", ALL, "f_enum", "unknown value \"COLOR_PURPLE\" for enum pbtest.Color"},
    {"enum_number", ALL, "f_enum", "expected enum name, got number"},
    {"enum_newline", ALL, "f_enum", "unknown value \"COLOR?RED\" for enum pbtest.Color"},
    {"bytes_bad_char", ALL, "f_bytes", "invalid base64"},
    {"bytes_unpadded", ALL, "f_bytes", "invalid base64"},
    {"bytes_urlsafe", ALL, "f_bytes", "invalid base64"},
    {"repeated_not_array", ALL, "r_int32", "expected array, got number"},
    {"repeated_element_type", ALL, "r_int32[1]", "expected integer, got string"},
    {"repeated_message_field", ALL, "r_inner[2].name", "expected string, got number"},
    {"repeated_null_element", ALL, "r_inner[0]", "expected object, got null"},
    {"message_not_object", ALL, "f_inner", "expected object, got array"},
    {"scalar_null", ALL, "f_int32", "expected integer, got null"},
    {"oneof_conflict", ALL, "choice_number", "oneof already set by \"choice_text\""},
    {"oneof_null_then_set", ALL, "choice_number", "oneof already set by \"choice_text\""},
    {"map_field", MAP, "labels", "map fields are not supported"},
    {"optional_nested", OPT, "o_sub.count", "expected integer, got string"},
    {"batch_sample_field", BAT, "samples[1].ts_us", "value \"12x\" is not a decimal integer"},
    {"request_principal_roles", REQ, "principal.roles[1]", "expected string, got number"},
    {"top_level_array", ALL, "", "expected object, got array"},
    {"top_level_number", ALL, "", "expected object, got number"},
    {"top_level_string", ALL, "", "expected object, got string"},
    {"empty_input", ALL, "", "invalid JSON at line 1 column 0: unexpected token near end of file"},
    {"truncated", ALL, "", LINE "11: unexpected token near end of file"},
    {"trailing_garbage", ALL, "", LINE "15: end of file expected near 'x'"},
    {"duplicate_key", ALL, "",
     "invalid JSON at line 2 column 10: duplicate object key near '\"f_int32\"'"},
    {"invalid_utf8", ALL, "", LINE "14: unable to decode byte 0xff near '\"a'"},
    {"utf8_surrogate", ALL, "", LINE "13: unable to decode byte 0xed near '\"'"},
    {"nul_escape", ALL, "",
     LINE "22: \\u0000 is not allowed without JSON_ALLOW_NUL near '\"a\\u0000b\"'"},
};

static void test_errors(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(1024);
    for (size_t i = 0; i < sizeof s_errors / sizeof s_errors[0]; i++) {
        char *name = sr_asprintf("errors/%s.json", s_errors[i].file);
        size_t len;
        char *text = s_fixture(name, &len);
        ProtobufCMessage *msg = (ProtobufCMessage *)&msg; /* must be overwritten with NULL */
        sr_pbjson_error_t err;
        int rc = sr_pbjson_decode_text(text, len, s_errors[i].desc, arena, &msg, &err);
        if (rc != -1 || strcmp(err.path, s_errors[i].path) != 0 ||
            strcmp(err.message, s_errors[i].message) != 0)
            fail_msg("%s: rc=%d path=\"%s\" message=\"%s\"", name, rc, err.path, err.message);
        assert_null(msg);
        free(text);
        free(name);
        sr_arena_reset(arena);
    }
    sr_arena_destroy(&arena);
}

/* s_nested_nodes - {"next":{"next":...}} with depth objects in all */
static char *s_nested_nodes(int depth)
{
    char *text = sr_malloc((size_t)depth * 10 + 1);
    char *p = text;
    for (int i = 1; i < depth; i++)
        p += sprintf(p, "{\"next\":");
    p += sprintf(p, "{}");
    for (int i = 1; i < depth; i++)
        *p++ = '}';
    *p = '\0';
    return text;
}

static void test_nesting_limit(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(4096);
    char *text = s_nested_nodes(SR_PBJSON_MAX_DEPTH);
    Pbtest__Node *node = (Pbtest__Node *)s_decode(text, &pbtest__node__descriptor, arena);
    int depth = 1;
    while (node->next) {
        node = node->next;
        depth++;
    }
    assert_int_equal(depth, SR_PBJSON_MAX_DEPTH);
    free(text);

    text = s_nested_nodes(SR_PBJSON_MAX_DEPTH + 1);
    ProtobufCMessage *msg = NULL;
    sr_pbjson_error_t err;
    assert_int_equal(
        sr_pbjson_decode_text(text, strlen(text), &pbtest__node__descriptor, arena, &msg, &err),
        -1);
    assert_null(msg);
    char want[256] = "next";
    for (int i = 1; i < SR_PBJSON_MAX_DEPTH; i++)
        strcat(want, ".next");
    assert_string_equal(err.path, want);
    assert_string_equal(err.message, "nesting deeper than 32 messages");
    free(text);

    /* far deeper than jansson's own limit is still a clean error */
    text = s_nested_nodes(5000);
    assert_int_equal(
        sr_pbjson_decode_text(text, strlen(text), &pbtest__node__descriptor, arena, &msg, &err),
        -1);
    assert_string_equal(err.path, "");
    assert_non_null(strstr(err.message, "maximum parsing depth"));
    free(text);
    sr_arena_destroy(&arena);
}

/* the json_t entry point: objects built in C, and what text cannot carry */
static void test_decode_json_values(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(1024);
    ProtobufCMessage *msg = NULL;
    sr_pbjson_error_t err;

    json_t *json = json_pack("{s:s, s:[i, I]}", "method", "m", "id", 1, (json_int_t)2);
    assert_non_null(json);
    assert_int_equal(sr_pbjson_decode(json, &sr__request__descriptor, arena, &msg, &err), -1);
    assert_string_equal(err.path, "id");
    assert_string_equal(err.message, "expected integer or decimal string, got array");
    json_decref(json);

    json = json_pack("{s:s#}", "f_string", "a\0b", (int)3);
    assert_non_null(json);
    assert_int_equal(sr_pbjson_decode(json, &pbtest__all__descriptor, arena, &msg, &err), -1);
    assert_string_equal(err.path, "f_string");
    assert_string_equal(err.message, "string contains a NUL character");
    json_decref(json);

    json = json_pack("{s:s#}", "f_int64",
                     "12\0"
                     "3",
                     (int)4);
    assert_non_null(json);
    assert_int_equal(sr_pbjson_decode(json, &pbtest__all__descriptor, arena, &msg, &err), -1);
    assert_string_equal(err.message, "value \"12\" is not a decimal integer");
    json_decref(json);

    json = json_pack("{s:I, s:{s:s}}", "id", (json_int_t)77, "principal", "user_name", "ann");
    assert_non_null(json);
    assert_int_equal(sr_pbjson_decode(json, &sr__request__descriptor, arena, &msg, &err), 0);
    Sr__Request *req = (Sr__Request *)msg;
    assert_true(req->id == 77);
    assert_string_equal(req->principal->user_name, "ann");
    assert_string_equal(req->method, "");
    assert_string_equal(err.path, "");
    assert_string_equal(err.message, "");
    json_decref(json);
    sr_arena_destroy(&arena);
}

/* a long unknown key is cut in the path without splitting a character */
static void test_long_path_stays_utf8(void **state)
{
    (void)state;
    sr_arena_t *arena = sr_arena_new(1024);
    char key[2 + 200 * 3 + 1] = "ab";
    for (int i = 0; i < 200; i++)
        strcat(key, "直");
    char *text = sr_asprintf("{\"f_inner\":{\"%s\":1}}", key);
    ProtobufCMessage *msg = NULL;
    sr_pbjson_error_t err;
    assert_int_equal(
        sr_pbjson_decode_text(text, strlen(text), &pbtest__all__descriptor, arena, &msg, &err), -1);
    /* 255 bytes fit: "f_inner.ab" (10), 81 characters of 3 bytes, 2 bytes of the next one */
    char want[256] = "f_inner.ab";
    for (int i = 0; i < 81; i++)
        strcat(want, "直");
    strcat(want, "??");
    assert_string_equal(err.path, want);
    assert_string_equal(err.message, "unknown field");
    free(text);
    sr_arena_destroy(&arena);
}

/* s_assert_same_as_tree - the text encoder writes what jansson dumps of the tree encoder */
static void s_assert_same_as_tree(const ProtobufCMessage *msg)
{
    json_t *tree = sr_pbjson_encode(msg);
    char *want = json_dumps(tree, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *got = sr_pbjson_encode_text(msg);
    assert_string_equal(got, want);
    free(got);
    free(want);
    json_decref(tree);
}

/* the text encoder against the tree: every type, every byte a string can hold, odd reals */
static void test_text_matches_tree(void **state)
{
    (void)state;
    Pbtest__All all = PBTEST__ALL__INIT;
    s_assert_same_as_tree(&all.base);
    s_build_full(&all.base);
    s_assert_same_as_tree(&all.base);
    char every[160];
    size_t n = 0;
    for (int c = 1; c < 0x80; c++)
        every[n++] = (char)c;
    memcpy(every + n, "/\xc3\xa9\xe7\x9b\xb4\xf0\x9f\x93\xba\xff\xc0\xaf\xed\xa0\x80\xe7", 17);
    every[n + 17] = '\0';
    all.f_string = every;
    const double reals[] = {0.0,           -0.0, 24.0,     0.1,       1e300,   -2.5e-300,
                            123456789.125, NAN,  INFINITY, -INFINITY, DBL_MAX, DBL_MIN};
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        all.f_double = reals[i];
        all.f_float = (float)reals[i];
        s_assert_same_as_tree(&all.base);
    }
    all.f_enum = 99;
    all.choice_case = PBTEST__ALL__CHOICE_CHOICE_TEXT;
    all.choice_text = "\t\"x\"";
    s_assert_same_as_tree(&all.base);
    Pbtest__Optionals opt = PBTEST__OPTIONALS__INIT;
    s_assert_same_as_tree(&opt.base);
    s_build_optionals_set(&opt.base);
    s_assert_same_as_tree(&opt.base);
    Pbtest__WithMap map = PBTEST__WITH_MAP__INIT;
    Pbtest__WithMap__LabelsEntry entry = PBTEST__WITH_MAP__LABELS_ENTRY__INIT,
                                 *entries[] = {&entry};
    entry.key = "k\n";
    entry.value = -1;
    map.n_labels = 1;
    map.labels = entries;
    s_assert_same_as_tree(&map.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_golden),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_decoded_values),
        cmocka_unit_test(test_presence_and_defaults),
        cmocka_unit_test(test_int64_string_and_number),
        cmocka_unit_test(test_float_special_values),
        cmocka_unit_test(test_encode_edge_cases),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_nesting_limit),
        cmocka_unit_test(test_decode_json_values),
        cmocka_unit_test(test_long_path_stays_utf8),
        cmocka_unit_test(test_text_matches_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

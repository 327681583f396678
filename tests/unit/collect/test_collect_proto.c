/* test_collect_proto - the length-delimited RoomSample reader of sr-collect: good streams read
 * back exactly, and each kind of bad stream is refused with the record and byte it broke at. */
#include "collect.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* s_stream - a memory FILE holding n packed samples (likes = index), then tail bytes */
static FILE *s_stream(int n, const uint8_t *tail, size_t tail_len, char **mem, size_t *len)
{
    FILE *f = open_memstream(mem, len);
    for (int i = 0; i < n; i++) {
        Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
        s.room_id = "room";
        s.likes = i;
        s.gmv_fen = 1000000; /* a multi-byte varint inside */
        uint8_t buf[64];
        size_t l = sr__room_sample__pack(&s, buf);
        fputc((int)l, f);
        fwrite(buf, 1, l, f);
    }
    if (tail_len)
        fwrite(tail, 1, tail_len, f);
    fflush(f);
    fclose(f);
    return fmemopen(*mem, *len ? *len : 1, "rb");
}

static void test_good_stream(void **state)
{
    (void)state;
    char *mem = NULL;
    size_t len = 0;
    FILE *f = s_stream(300, NULL, 0, &mem, &len);
    collect_reader_t *r = collect_reader_new(f);
    Sr__RoomSample *s;
    for (int i = 0; i < 300; i++) {
        assert_int_equal(collect_reader_next(r, NULL, &s), COLLECT_READ_OK);
        assert_string_equal(s->room_id, "room");
        assert_int_equal(s->likes, i);
        assert_int_equal(s->gmv_fen, 1000000);
        sr__room_sample__free_unpacked(s, NULL);
    }
    assert_int_equal(collect_reader_next(r, NULL, &s), COLLECT_READ_END);
    collect_reader_destroy(&r);
    assert_null(r);
    fclose(f);
    free(mem);
}

static void test_bad_streams(void **state)
{
    (void)state;
    const struct {
        const char *name;
        uint8_t tail[8];
        size_t tail_len;
        const char *error;
    } cases[] = {
        {"truncated length", {0x85}, 1, "record 3 at byte 26: truncated length"},
        {"length too long",
         {0xff, 0xff, 0xff, 0xff, 0x01},
         5,
         "record 3 at byte 26: length varint too long"},
        {"over 1 MiB",
         {0x81, 0x80, 0x80, 0x01},
         4,
         "record 3 at byte 26: record longer than 1 MiB"},
        {"truncated record", {0x05, 0x08, 0x01}, 3, "record 3 at byte 26: truncated record"},
        {"not a sample", {0x02, 0xff, 0xff}, 3, "record 3 at byte 26: not a RoomSample"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *mem = NULL;
        size_t len = 0;
        FILE *f = s_stream(2, cases[i].tail, cases[i].tail_len, &mem, &len);
        collect_reader_t *r = collect_reader_new(f);
        Sr__RoomSample *s;
        for (int k = 0; k < 2; k++) {
            assert_int_equal(collect_reader_next(r, NULL, &s), COLLECT_READ_OK);
            sr__room_sample__free_unpacked(s, NULL);
        }
        if (collect_reader_next(r, NULL, &s) != COLLECT_READ_BAD)
            fail_msg("%s: not refused", cases[i].name);
        assert_string_equal(collect_reader_error(r), cases[i].error);
        collect_reader_destroy(&r);
        fclose(f);
        free(mem);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_stream),
        cmocka_unit_test(test_bad_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

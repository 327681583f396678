/* test_ingestd_spool - the spool file: records come back in order after a reopen, a torn or
 * corrupt tail is kept aside and cut off, the size limit answers ENOSPC, reset empties it, an
 * open spool cannot be opened twice, and the spools of instances that are gone are adopted. */
#include "ingestd.h"

#include "sr_test.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char s_dir[256];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/sr-spool-test.XXXXXX");
    assert_non_null(mkdtemp(s_dir));
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static ingestd_spool_t *s_open(uint64_t max)
{
    char err[256] = "";
    ingestd_spool_t *sp =
        ingestd_spool_open(s_dir, "unit:1", max, INGESTD_SPOOL_SYNC_ALWAYS, err, sizeof err);
    if (!sp)
        fail_msg("open: %s", err);
    return sp;
}

static void s_put(ingestd_spool_t *sp, int i)
{
    char rec[64];
    int n = snprintf(rec, sizeof rec, "record-%d", i);
    assert_int_equal(ingestd_spool_append(sp, (const uint8_t *)rec, (size_t)n), 0);
}

/* s_expect - the next records are record-from .. record-(to-1), then none */
static void s_expect(ingestd_spool_t *sp, int from, int to)
{
    const uint8_t *data;
    char want[64];
    for (int i = from; i < to; i++) {
        int n = snprintf(want, sizeof want, "record-%d", i);
        assert_int_equal(ingestd_spool_next(sp, &data), n);
        assert_memory_equal(data, want, (size_t)n);
    }
    assert_int_equal(ingestd_spool_next(sp, &data), 0);
}

static void test_crc32c(void **state)
{
    (void)state;
    /* the standard check value of CRC-32C */
    assert_int_equal(ingestd_crc32c("123456789", 9), 0xe3069283u);
}

static void test_order_and_reopen(void **state)
{
    (void)state;
    ingestd_spool_t *sp = s_open(1 << 20);
    assert_non_null(strstr(ingestd_spool_path(sp), "/ingestd-unit_1.spool"));
    for (int i = 0; i < 100; i++)
        s_put(sp, i);
    ingestd_spool_close(&sp);
    sp = s_open(1 << 20);
    assert_int_equal(ingestd_spool_unread(sp), ingestd_spool_bytes(sp));
    s_expect(sp, 0, 100);
    s_put(sp, 100);
    s_expect(sp, 100, 101);
    assert_int_equal(ingestd_spool_unread(sp), 0);
    assert_int_equal(ingestd_spool_reset(sp), 0);
    assert_int_equal(ingestd_spool_bytes(sp), 0);
    ingestd_spool_close(&sp);
    struct stat st;
    char path[400];
    snprintf(path, sizeof path, "%s/ingestd-unit_1.spool", s_dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
}

static void s_flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static int s_bad_files(void)
{
    char pattern[400];
    snprintf(pattern, sizeof pattern, "%s/ingestd-unit_1.spool.bad-*", s_dir);
    glob_t g;
    int n = glob(pattern, 0, NULL, &g) == 0 ? (int)g.gl_pathc : 0;
    globfree(&g);
    return n;
}

static void test_torn_and_corrupt_tail(void **state)
{
    (void)state;
    ingestd_spool_t *sp = s_open(1 << 20);
    for (int i = 0; i < 10; i++)
        s_put(sp, i);
    char path[400];
    snprintf(path, sizeof path, "%s", ingestd_spool_path(sp));
    uint64_t size = ingestd_spool_bytes(sp);
    ingestd_spool_close(&sp);

    /* a torn last record: half of it written */
    assert_int_equal(truncate(path, (off_t)size - 5), 0);
    sp = s_open(1 << 20);
    assert_true(ingestd_spool_cut_bytes(sp) > 0);
    assert_int_equal(s_bad_files(), 1);
    s_expect(sp, 0, 9);
    uint64_t nine = ingestd_spool_bytes(sp);
    ingestd_spool_close(&sp);

    /* a flipped payload byte in record 4: records 0-3 stay, the rest is set aside */
    s_flip(path, (off_t)(nine * 4 / 9 + 14));
    sleep(1); /* the kept copy is named by the second */
    sp = s_open(1 << 20);
    assert_int_equal(ingestd_spool_cut_bytes(sp), nine - nine * 4 / 9);
    assert_int_equal(s_bad_files(), 2);
    s_expect(sp, 0, 4);
    s_put(sp, 4);
    s_expect(sp, 4, 5);
    ingestd_spool_close(&sp);
}

static void test_full(void **state)
{
    (void)state;
    ingestd_spool_t *sp = s_open(12 + 8);
    assert_int_equal(ingestd_spool_reset(sp), 0);
    s_put(sp, 1); /* 12-byte header + "record-1" = 20 bytes: exactly full */
    errno = 0;
    assert_int_equal(ingestd_spool_append(sp, (const uint8_t *)"x", 1), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(ingestd_spool_append(sp, (const uint8_t *)"", 0), -1);
    s_expect(sp, 1, 2);
    ingestd_spool_close(&sp);
    assert_null(sp);
    ingestd_spool_close(&sp);
}

/* a second open of a spool that is open (another ingestd with the same SR_INSTANCE) fails */
static void test_locked(void **state)
{
    (void)state;
    ingestd_spool_t *sp = s_open(1 << 20);
    char err[256] = "";
    ingestd_spool_t *again =
        ingestd_spool_open(s_dir, "unit:1", 1 << 20, INGESTD_SPOOL_SYNC_NEVER, err, sizeof err);
    assert_null(again);
    assert_non_null(strstr(err, "in use by another running ingestd"));
    ingestd_spool_close(&sp);
    sp = s_open(1 << 20); /* closed: free again */
    ingestd_spool_close(&sp);
}

static ingestd_spool_t *s_open_as(const char *instance, uint64_t max)
{
    char err[256] = "";
    ingestd_spool_t *sp =
        ingestd_spool_open(s_dir, instance, max, INGESTD_SPOOL_SYNC_NEVER, err, sizeof err);
    if (!sp)
        fail_msg("open %s: %s", instance, err);
    return sp;
}

/* the spool of an instance that is gone is moved behind ours and removed; one that is open
 * (its instance runs) and one too big for our room are left alone */
static void test_adopt(void **state)
{
    (void)state;
    ingestd_spool_t *gone = s_open_as("gone-host", 1 << 20);
    for (int i = 0; i < 5; i++)
        s_put(gone, i);
    char gone_path[400];
    snprintf(gone_path, sizeof gone_path, "%s", ingestd_spool_path(gone));
    ingestd_spool_close(&gone);
    ingestd_spool_t *live = s_open_as("live-host", 1 << 20);
    s_put(live, 200);
    ingestd_spool_t *big = s_open_as("big-host", 1 << 20);
    for (int i = 0; i < 40; i++)
        s_put(big, 300 + i);
    char big_path[400];
    snprintf(big_path, sizeof big_path, "%s", ingestd_spool_path(big));
    ingestd_spool_close(&big);

    ingestd_spool_t *sp = s_open(400);
    assert_int_equal(ingestd_spool_reset(sp), 0);
    s_put(sp, 100);
    assert_int_equal(ingestd_spool_adopt(sp, s_dir), 5);
    const uint8_t *data;
    assert_int_equal(ingestd_spool_next(sp, &data), 10);
    assert_memory_equal(data, "record-100", 10);
    s_expect(sp, 0, 5);
    struct stat st;
    assert_int_equal(stat(gone_path, &st), -1);
    assert_int_equal(stat(ingestd_spool_path(live), &st), 0);
    assert_int_equal(stat(big_path, &st), 0); /* 40 records do not fit in 400 bytes */
    assert_int_equal(ingestd_spool_adopt(sp, s_dir), 0);
    ingestd_spool_close(&sp);
    ingestd_spool_close(&live);
    unlink(big_path);
}

static void test_unusable_dir(void **state)
{
    (void)state;
    char err[256] = "";
    ingestd_spool_t *sp = ingestd_spool_open("/proc/no-such/spool", "x", 1 << 20,
                                             INGESTD_SPOOL_SYNC_NEVER, err, sizeof err);
    assert_null(sp);
    assert_non_null(strstr(err, "/proc/no-such/spool/ingestd-x.spool"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_order_and_reopen),
        cmocka_unit_test(test_torn_and_corrupt_tail),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_unusable_dir),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}

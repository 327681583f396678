/* ingestd_spool - the local spool file that holds batches while PostgreSQL is down.
 *
 * One append-only file per instance, <dir>/ingestd-<instance>.spool. A record is a 12-byte
 * header - the magic "SRSP", the payload length and the CRC-32C of the payload, each a
 * little-endian u32 - followed by the payload, a packed CollectorBatch that carries its own
 * (collector_id, batch_seq). Records are read back in the order they were written; once every
 * record read has been committed, the owner calls ingestd_spool_reset() and the file is emptied.
 * A record read twice after a crash is harmless: the batch id makes the second one a duplicate.
 *
 * On open the whole file is checked. A torn or corrupt tail (a crash in the middle of a write,
 * a damaged disk) is copied to <file>.bad-<unix seconds> for inspection, cut off, counted and
 * logged; everything before it is replayed.
 *
 * The owner holds an exclusive flock on its file for as long as it runs, so two instances with
 * the same name cannot share one, and a file nobody holds belongs to an instance that is gone
 * (a container recreated under a new hostname, an instance renamed). ingestd_spool_adopt()
 * moves such files' records to the end of the caller's own spool, so they are replayed rather
 * than forgotten, and removes them. Whoever opens a file checks, once it holds the lock, that
 * the name still leads to it, since an adopter may have removed it in between.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC        0x50535253u /* "SRSP" read as a little-endian u32 */
#define HEADER_BYTES 12
#define RECORD_MAX   (1u << 30)
#define LOCK_TRIES   300 /* 10 ms apart: an adopter holds a file only while it copies it */

struct ingestd_spool_t {
    char path[4096];
    int fd;
    ingestd_spool_sync_t sync;
    uint64_t max_bytes;
    uint64_t size;      /* bytes in the file */
    uint64_t read_off;  /* next record to hand out */
    uint64_t records;   /* records in the file */
    uint64_t cut_bytes; /* corrupt bytes cut off at open */
    int dirty;          /* written since the last fsync */
    uint8_t *buf;       /* the last record read */
    size_t buf_cap;
};

/* CRC-32C (Castagnoli), reflected, table-driven */
static uint32_t s_crc_table[256];

static void s_crc_init(void)
{
    if (s_crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        s_crc_table[i] = c;
    }
}

uint32_t ingestd_crc32c(const void *data, size_t len)
{
    s_crc_init();
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    while (len--)
        c = s_crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t s_get_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return le32toh(v);
}

static void s_put_u32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof v);
}

/* s_pread_all - exactly n bytes at off; 0 ok, -1 short or failed */
static int s_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        p += got;
        n -= (size_t)got;
        off += (uint64_t)got;
    }
    return 0;
}

static int s_write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n > 0) {
        ssize_t put = write(fd, p, n);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        p += put;
        n -= (size_t)put;
    }
    return 0;
}

static uint8_t *s_buffer(ingestd_spool_t *self, size_t n)
{
    if (n > self->buf_cap) {
        self->buf_cap = n;
        self->buf = sr_realloc(self->buf, n);
    }
    return self->buf;
}

/* s_record_at - the payload length of a valid record at off (payload in self->buf), or -1 */
static int64_t s_record_at(ingestd_spool_t *self, uint64_t off)
{
    uint8_t head[HEADER_BYTES];
    if (off + HEADER_BYTES > self->size || s_pread_all(self->fd, head, sizeof head, off) < 0)
        return -1;
    uint32_t len = s_get_u32(head + 4);
    if (s_get_u32(head) != MAGIC || len > RECORD_MAX || off + HEADER_BYTES + len > self->size)
        return -1;
    uint8_t *payload = s_buffer(self, len ? len : 1);
    if (s_pread_all(self->fd, payload, len, off + HEADER_BYTES) < 0 ||
        ingestd_crc32c(payload, len) != s_get_u32(head + 8))
        return -1;
    return len;
}

/* s_cut - keep the bytes from off on in <path>.bad-<time>, then truncate the file at off */
static int s_cut(ingestd_spool_t *self, uint64_t off)
{
    char bad[4200];
    snprintf(bad, sizeof bad, "%s.bad-%lld", self->path, (long long)time(NULL));
    uint64_t n = self->size - off;
    int out = open(bad, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    uint8_t *chunk = s_buffer(self, 65536);
    for (uint64_t at = off; out >= 0 && at < self->size;) {
        size_t step = self->size - at < 65536 ? (size_t)(self->size - at) : 65536;
        if (s_pread_all(self->fd, chunk, step, at) < 0 || s_write_all(out, chunk, step) < 0)
            break;
        at += step;
    }
    if (out >= 0)
        close(out);
    sr_error("ingest_spool_corrupt", "file=%s offset=%llu bytes=%llu kept_in=%s", self->path,
             (unsigned long long)off, (unsigned long long)n, out >= 0 ? bad : "(not kept)");
    if (ftruncate(self->fd, (off_t)off) < 0)
        return -1;
    self->cut_bytes += n;
    self->size = off;
    return 0;
}

static int s_mkdirs(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* s_open_locked - open path (created when create is set) with the exclusive flock held and the
 * name still leading to the file; -1 with errno (EWOULDBLOCK: someone holds it). The lock is
 * tried `tries` times, 10 ms apart. */
static int s_open_locked(const char *path, int create, int tries)
{
    for (int attempt = 0;; attempt++) {
        int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
        if (fd < 0)
            return -1;
        struct stat by_fd, by_name;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            int saved = errno;
            close(fd);
            if (saved != EWOULDBLOCK || attempt + 1 >= tries) {
                errno = saved;
                return -1;
            }
            usleep(10000);
            continue;
        }
        if (fstat(fd, &by_fd) == 0 && stat(path, &by_name) == 0 && by_fd.st_ino == by_name.st_ino &&
            by_fd.st_dev == by_name.st_dev)
            return fd;
        close(fd); /* removed by an adopter while we waited: open the name again */
        if (!create) {
            errno = ENOENT;
            return -1;
        }
    }
}

/* s_check - count the valid records of an open file and cut a corrupt tail; 0 ok */
static int s_check(ingestd_spool_t *self, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(self->fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", self->path, strerror(errno));
        return -1;
    }
    self->size = (uint64_t)st.st_size;
    uint64_t off = 0;
    int64_t len;
    while (off < self->size && (len = s_record_at(self, off)) >= 0) {
        off += HEADER_BYTES + (uint64_t)len;
        self->records++;
    }
    if (off < self->size && s_cut(self, off) < 0) {
        snprintf(err, errlen, "%s: cannot cut the corrupt tail: %s", self->path, strerror(errno));
        return -1;
    }
    return 0;
}

ingestd_spool_t *ingestd_spool_open(const char *dir, const char *instance, uint64_t max_bytes,
                                    ingestd_spool_sync_t sync, char *err, size_t errlen)
{
    ingestd_spool_t *self = sr_calloc(1, sizeof *self);
    self->fd = -1;
    self->sync = sync;
    self->max_bytes = max_bytes;
    int n = snprintf(self->path, sizeof self->path, "%s/ingestd-", dir);
    for (const char *c = instance; *c && n < (int)sizeof self->path - 8; c++)
        self->path[n++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'
                              ? *c
                              : '_';
    snprintf(self->path + n, sizeof self->path - (size_t)n, ".spool");
    if (s_mkdirs(dir) < 0 || (self->fd = s_open_locked(self->path, 1, LOCK_TRIES)) < 0) {
        snprintf(err, errlen, "%s: %s", self->path,
                 errno == EWOULDBLOCK
                     ? "in use by another running ingestd (give each instance its own SR_INSTANCE)"
                     : strerror(errno));
        ingestd_spool_close(&self);
        return NULL;
    }
    if (s_check(self, err, errlen) < 0) {
        ingestd_spool_close(&self);
        return NULL;
    }
    if (self->size)
        sr_info("ingest_spool_found", "file=%s records=%llu bytes=%llu", self->path,
                (unsigned long long)self->records, (unsigned long long)self->size);
    return self;
}

void ingestd_spool_close(ingestd_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestd_spool_t *self = *self_p;
    if (self->fd >= 0) {
        if (self->dirty && self->sync != INGESTD_SPOOL_SYNC_NEVER)
            fdatasync(self->fd);
        close(self->fd);
    }
    free(self->buf);
    free(self);
    *self_p = NULL;
}

int ingestd_spool_append(ingestd_spool_t *self, const uint8_t *data, size_t len)
{
    if (len == 0 || len > RECORD_MAX || self->size + HEADER_BYTES + len > self->max_bytes) {
        errno = ENOSPC;
        return -1;
    }
    uint8_t head[HEADER_BYTES];
    s_put_u32(head, MAGIC);
    s_put_u32(head + 4, (uint32_t)len);
    s_put_u32(head + 8, ingestd_crc32c(data, len));
    if (s_write_all(self->fd, head, sizeof head) < 0 || s_write_all(self->fd, data, len) < 0) {
        int saved = errno;
        if (ftruncate(self->fd, (off_t)self->size) < 0) /* no torn record behind us */
            sr_error("ingest_spool_truncate_failed", "file=%s err=\"%s\"", self->path,
                     strerror(errno));
        errno = saved;
        return -1;
    }
    self->size += HEADER_BYTES + len;
    self->records++;
    self->dirty = 1;
    if (self->sync == INGESTD_SPOOL_SYNC_ALWAYS)
        return ingestd_spool_flush(self);
    return 0;
}

int ingestd_spool_flush(ingestd_spool_t *self)
{
    if (!self->dirty)
        return 0;
    if (fdatasync(self->fd) < 0)
        return -1;
    self->dirty = 0;
    return 0;
}

int64_t ingestd_spool_next(ingestd_spool_t *self, const uint8_t **data)
{
    if (self->read_off >= self->size)
        return 0;
    int64_t len = s_record_at(self, self->read_off);
    if (len < 0) {
        /* checked at open and written only by us: the file was changed under us */
        sr_error("ingest_spool_unreadable", "file=%s offset=%llu", self->path,
                 (unsigned long long)self->read_off);
        if (s_cut(self, self->read_off) < 0)
            return -1;
        return 0;
    }
    self->read_off += HEADER_BYTES + (uint64_t)len;
    *data = self->buf;
    return len;
}

uint64_t ingestd_spool_unread(const ingestd_spool_t *self)
{
    return self->size - self->read_off;
}

uint64_t ingestd_spool_bytes(const ingestd_spool_t *self)
{
    return self->size;
}

uint64_t ingestd_spool_cut_bytes(const ingestd_spool_t *self)
{
    return self->cut_bytes;
}

const char *ingestd_spool_path(const ingestd_spool_t *self)
{
    return self->path;
}

int ingestd_spool_reset(ingestd_spool_t *self)
{
    if (ftruncate(self->fd, 0) < 0)
        return -1;
    self->size = self->read_off = self->records = 0;
    self->dirty = 1;
    return 0;
}

/* s_adopt_one - move every record of the orphan at path to the end of self; the orphan is
 * removed once all of it is in self and synced, kept whole when it does not fit */
static int64_t s_adopt_one(ingestd_spool_t *self, const char *dir, const char *name)
{
    ingestd_spool_t orphan = {.fd = -1};
    if (snprintf(orphan.path, sizeof orphan.path, "%s/%s", dir, name) >= (int)sizeof orphan.path)
        return 0;
    const char *path = orphan.path;
    char err[512];
    if ((orphan.fd = s_open_locked(path, 0, 1)) < 0)
        return 0; /* its owner runs, or it is gone */
    int64_t moved = 0;
    if (s_check(&orphan, err, sizeof err) < 0) {
        sr_error("ingest_spool_adopt_failed", "err=\"%s\"", err);
        moved = -1;
    } else if (self->size + orphan.size > self->max_bytes) {
        sr_warn("ingest_spool_adopt_later", "file=%s bytes=%llu err=\"no room in %s\"", path,
                (unsigned long long)orphan.size, self->path);
    } else {
        int64_t len;
        for (uint64_t off = 0; moved >= 0 && off < orphan.size;
             off += HEADER_BYTES + (uint64_t)len) {
            len = s_record_at(&orphan, off);
            if (len < 0 || ingestd_spool_append(self, orphan.buf, (size_t)len) < 0)
                moved = -1;
            else
                moved++;
        }
        if (moved >= 0 && ingestd_spool_flush(self) == 0 && unlink(path) == 0)
            sr_info("ingest_spool_adopted", "file=%s records=%lld into=%s", path, (long long)moved,
                    self->path);
        else {
            sr_error("ingest_spool_adopt_failed",
                     "file=%s err=\"%s\" (kept; its records that "
                     "were copied are replayed once)",
                     path, strerror(errno));
            moved = -1;
        }
    }
    close(orphan.fd);
    free(orphan.buf);
    return moved;
}

int64_t ingestd_spool_adopt(ingestd_spool_t *self, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    const char *own = strrchr(self->path, '/') + 1;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= 14 || strncmp(e->d_name, "ingestd-", 8) != 0 ||
            strcmp(e->d_name + n - 6, ".spool") != 0 || strcmp(e->d_name, own) == 0)
            continue;
        int64_t moved = s_adopt_one(self, dir, e->d_name);
        total = moved < 0 || total < 0 ? -1 : total + moved;
    }
    closedir(d);
    return total;
}

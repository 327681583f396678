/* sr_log - levels, key=value lines, rate-limited complaints. See sr_log.h. */
#include "sr_log.h"

#include "sr_clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES             4096
#define COMPLAINT_FIRST_BACKOFF_MS 1000
#define COMPLAINT_MAX_BACKOFF_MS   (5 * 60 * 1000)

static char s_service[64] = "sr";
static char s_instance[96] = "";
static sr_log_level_t s_level = SR_LOG_INFO;
static int s_fd = 2;

static const char *const s_level_names[] = {"debug", "info", "warn", "error", "fatal"};

void sr_log_init(const char *service, const char *instance)
{
    snprintf(s_service, sizeof s_service, "%s", service ? service : "sr");
    snprintf(s_instance, sizeof s_instance, "%s", instance ? instance : "");
}

void sr_log_set_level(sr_log_level_t level)
{
    s_level = level;
}

void sr_log_set_fd(int fd)
{
    s_fd = fd;
}

int sr_log_level_parse(const char *text, sr_log_level_t *level)
{
    for (int i = SR_LOG_DEBUG; i <= SR_LOG_ERROR; i++) {
        if (text && strcmp(text, s_level_names[i]) == 0) {
            *level = (sr_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

/* s_emit - format the whole line in one buffer and write it with one write(2), so lines from
 * several threads never interleave */
static void s_emit(sr_log_level_t level, const char *event, const char *fmt, va_list ap)
{
    char line[LINE_MAX_BYTES];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ level=%s service=%s%s%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, s_level_names[level], s_service,
                     s_instance[0] ? " instance=" : "", s_instance, event);
    if (fmt && fmt[0] && n < (int)sizeof line - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        n = m < 0 ? n - 1 : n + m;
    }
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = 0; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[n++] = '\n';
    ssize_t off = 0;
    while (off < n) {
        ssize_t w = write(s_fd, line + off, (size_t)(n - off));
        if (w <= 0)
            break;
        off += w;
    }
}

void sr_log(sr_log_level_t level, const char *event, const char *fmt, ...)
{
    if (level < s_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    s_emit(level, event, fmt, ap);
    va_end(ap);
}

void sr_fatal(const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_emit(SR_LOG_FATAL, event, fmt, ap);
    va_end(ap);
    exit(1);
}

void sr_panic(const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_emit(SR_LOG_FATAL, event, fmt, ap);
    va_end(ap);
    abort();
}

void sr_complain(sr_complaint_t *c, const char *fmt, ...)
{
    int64_t now = sr_clock_mono_ms();
    c->failures++;
    if (!c->failing) {
        c->failing = 1;
        c->backoff_ms = COMPLAINT_FIRST_BACKOFF_MS;
        c->next_log_ms = 0;
    }
    if (now < c->next_log_ms) {
        c->suppressed++;
        return;
    }
    char detail[1024] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    sr_log(SR_LOG_WARN, "dependency_failing", "dependency=%s failures=%llu suppressed=%llu %s",
           c->what, (unsigned long long)c->failures, (unsigned long long)c->suppressed, detail);
    c->suppressed = 0;
    c->next_log_ms = now + c->backoff_ms;
    c->backoff_ms *= 2;
    if (c->backoff_ms > COMPLAINT_MAX_BACKOFF_MS)
        c->backoff_ms = COMPLAINT_MAX_BACKOFF_MS;
}

void sr_recovered(sr_complaint_t *c)
{
    if (!c->failing)
        return;
    sr_log(SR_LOG_INFO, "dependency_recovered", "dependency=%s failures=%llu", c->what,
           (unsigned long long)c->failures);
    c->failing = 0;
    c->failures = 0;
    c->suppressed = 0;
    c->next_log_ms = 0;
    c->backoff_ms = 0;
}

/* sr_log - one logging API: levels, one key=value line per event, on stderr.
 *
 * A line reads: ts=2026-11-22T02:44:47.123456Z level=warn service=ingestd instance=ingestd-1
 * event=db_down attempt=3 err="connection refused". The caller names the event and adds its own
 * key=value fields with a printf format; quote free text as key="%s". Newlines in the line are
 * escaped so one event is always one line. Never pass secrets or full tokens.
 *
 * Three severities of failure, as in Postfix: sr_warn/sr_error for a bad message or a failing
 * dependency (the daemon goes on), sr_fatal for a broken environment at start-up (exit 1), and
 * sr_panic for a programming error (abort, with a core).
 *
 * sr_complaint_t rate-limits complaints about a dependency that keeps failing: the first failure
 * is logged, then at most one line per back-off period (doubling up to 5 minutes) with the count,
 * and one line when it recovers.
 */
#ifndef SR_LOG_H
#define SR_LOG_H

#include <stdint.h>

typedef enum {
    SR_LOG_DEBUG = 0,
    SR_LOG_INFO,
    SR_LOG_WARN,
    SR_LOG_ERROR,
    SR_LOG_FATAL,
} sr_log_level_t;

/* sr_log_init - name the process in every line; both strings are copied */
void sr_log_init(const char *service, const char *instance);
void sr_log_set_level(sr_log_level_t level);
/* sr_log_level_parse - "debug", "info", "warn", "error" -> level; -1 on anything else */
int sr_log_level_parse(const char *text, sr_log_level_t *level) __attribute__((warn_unused_result));
/* sr_log_set_fd - where lines go (stderr by default); tests point it at a pipe or file */
void sr_log_set_fd(int fd);

void sr_log(sr_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sr_debug(event, ...) sr_log(SR_LOG_DEBUG, event, __VA_ARGS__)
#define sr_info(event, ...)  sr_log(SR_LOG_INFO, event, __VA_ARGS__)
#define sr_warn(event, ...)  sr_log(SR_LOG_WARN, event, __VA_ARGS__)
#define sr_error(event, ...) sr_log(SR_LOG_ERROR, event, __VA_ARGS__)

/* sr_fatal - log and exit(1): the environment is broken (config, port, database at start-up) */
void sr_fatal(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));
/* sr_panic - log and abort(): a programming error, the state can no longer be trusted */
void sr_panic(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

typedef struct {
    const char *what;    /* the dependency, e.g. "db" or "platform.douyin" */
    int failing;         /* 1 while in a failure streak */
    uint64_t failures;   /* failures in the current streak */
    uint64_t suppressed; /* failures not logged since the last line */
    int64_t next_log_ms; /* monotonic time before which complaints stay quiet */
    int64_t backoff_ms;  /* current quiet period */
} sr_complaint_t;

#define SR_COMPLAINT_INIT(what_)                                                                   \
    {                                                                                              \
        .what = (what_)                                                                            \
    }

/* sr_complain - count a failure; log it when the back-off allows, with the streak's count */
void sr_complain(sr_complaint_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sr_recovered - end a streak with one line; does nothing when there was no streak */
void sr_recovered(sr_complaint_t *c);

#endif

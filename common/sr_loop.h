/* sr_loop - the one poll loop of a daemon: ZeroMQ sockets, file descriptors and timers.
 *
 * Handlers run on the loop's thread, one at a time, and must not block. A readable socket's
 * handler should drain what is there (ZMQ_DONTWAIT until EAGAIN), because ZeroMQ sockets are
 * edge-like: poll reports them readable once for a burst. Timers use the monotonic clock.
 */
#ifndef SR_LOOP_H
#define SR_LOOP_H

#include <stdint.h>

typedef struct sr_loop_t sr_loop_t;
typedef void(sr_loop_fn)(void *arg);

sr_loop_t *sr_loop_new(void);
void sr_loop_destroy(sr_loop_t **self_p);

/* sr_loop_add_socket - call fn(arg) when the ZeroMQ socket has a message to read */
int sr_loop_add_socket(sr_loop_t *self, void *socket, sr_loop_fn *fn, void *arg)
    __attribute__((warn_unused_result));
/* sr_loop_add_fd - call fn(arg) when fd is readable */
int sr_loop_add_fd(sr_loop_t *self, int fd, sr_loop_fn *fn, void *arg)
    __attribute__((warn_unused_result));
void sr_loop_remove_socket(sr_loop_t *self, void *socket);
void sr_loop_remove_fd(sr_loop_t *self, int fd);

/* sr_loop_add_timer - call fn(arg) every interval_ms (once when repeat is 0); returns an id > 0 */
int sr_loop_add_timer(sr_loop_t *self, int64_t interval_ms, int repeat, sr_loop_fn *fn, void *arg);
void sr_loop_cancel_timer(sr_loop_t *self, int id);

/* sr_loop_wakeup_t - lets other threads run fn(arg) on the loop thread: any number of
 * sr_loop_wakeup() calls before the loop gets to it make one call of fn, so fn takes whatever
 * the other threads handed over (under their own lock) */
typedef struct sr_loop_wakeup_t sr_loop_wakeup_t;

/* sr_loop_wakeup_new - NULL (logged) when the pipe behind it cannot be made */
sr_loop_wakeup_t *sr_loop_wakeup_new(sr_loop_t *loop, sr_loop_fn *fn, void *arg);
/* sr_loop_wakeup - from any thread; never blocks */
void sr_loop_wakeup(sr_loop_wakeup_t *self);
/* sr_loop_wakeup_destroy - on the loop thread; NULL is a no-op */
void sr_loop_wakeup_destroy(sr_loop_wakeup_t **self_p);

/* sr_loop_run - run until sr_loop_stop(); 0 when stopped, -1 when polling failed */
int sr_loop_run(sr_loop_t *self);
/* sr_loop_run_once - one poll of at most timeout_ms and its handlers; for tests and tools */
int sr_loop_run_once(sr_loop_t *self, int timeout_ms);
void sr_loop_stop(sr_loop_t *self);

#endif

/* sr_loop - one zmq_poll loop over ZeroMQ sockets, file descriptors and timers.
 *
 * Items live in a growable array rebuilt into a zmq_pollitem_t array only when it changes.
 * Timers are few (cron, flush timers), so a linear scan for the next deadline is enough.
 * See sr_loop.h; sr_service.c is the one user in daemons.
 */
#include "sr_loop.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    void *socket; /* NULL for an fd item */
    int fd;
    sr_loop_fn *fn;
    void *arg;
    int removed;
} item_t;

typedef struct {
    int id;
    int64_t interval_ms;
    int64_t due_ms;
    int repeat;
    sr_loop_fn *fn;
    void *arg;
} timer_t_;

struct sr_loop_t {
    item_t *items;
    size_t nitems, capitems;
    zmq_pollitem_t *poll;
    size_t npoll;
    int dirty; /* items changed since poll was built */
    timer_t_ *timers;
    size_t ntimers, captimers;
    int next_timer_id;
    int stopped;
};

sr_loop_t *sr_loop_new(void)
{
    sr_loop_t *self = sr_calloc(1, sizeof *self);
    self->next_timer_id = 1;
    return self;
}

void sr_loop_destroy(sr_loop_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_loop_t *self = *self_p;
    free(self->items);
    free(self->poll);
    free(self->timers);
    SR_FREE(*self_p);
}

static int s_add(sr_loop_t *self, void *socket, int fd, sr_loop_fn *fn, void *arg)
{
    if (!fn || (!socket && fd < 0))
        return -1;
    if (self->nitems == self->capitems) {
        self->capitems = self->capitems ? self->capitems * 2 : 8;
        self->items = sr_realloc(self->items, self->capitems * sizeof *self->items);
    }
    self->items[self->nitems++] = (item_t){socket, fd, fn, arg, 0};
    self->dirty = 1;
    return 0;
}

int sr_loop_add_socket(sr_loop_t *self, void *socket, sr_loop_fn *fn, void *arg)
{
    return s_add(self, socket, -1, fn, arg);
}

int sr_loop_add_fd(sr_loop_t *self, int fd, sr_loop_fn *fn, void *arg)
{
    return s_add(self, NULL, fd, fn, arg);
}

/* s_remove - mark only; the array is compacted when poll is rebuilt, so a handler may remove
 * an item (even itself) while the loop walks the array */
static void s_remove(sr_loop_t *self, void *socket, int fd)
{
    for (size_t i = 0; i < self->nitems; i++) {
        item_t *it = &self->items[i];
        if (!it->removed && (socket ? it->socket == socket : (!it->socket && it->fd == fd))) {
            it->removed = 1;
            self->dirty = 1;
        }
    }
}

void sr_loop_remove_socket(sr_loop_t *self, void *socket)
{
    s_remove(self, socket, -1);
}

void sr_loop_remove_fd(sr_loop_t *self, int fd)
{
    s_remove(self, NULL, fd);
}

int sr_loop_add_timer(sr_loop_t *self, int64_t interval_ms, int repeat, sr_loop_fn *fn, void *arg)
{
    if (self->ntimers == self->captimers) {
        self->captimers = self->captimers ? self->captimers * 2 : 8;
        self->timers = sr_realloc(self->timers, self->captimers * sizeof *self->timers);
    }
    int id = self->next_timer_id++;
    if (interval_ms < 1)
        interval_ms = 1;
    self->timers[self->ntimers++] =
        (timer_t_){id, interval_ms, sr_clock_mono_ms() + interval_ms, repeat, fn, arg};
    return id;
}

void sr_loop_cancel_timer(sr_loop_t *self, int id)
{
    for (size_t i = 0; i < self->ntimers; i++) {
        if (self->timers[i].id == id) {
            self->timers[i] = self->timers[--self->ntimers];
            return;
        }
    }
}

static void s_rebuild(sr_loop_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->nitems; i++) {
        if (!self->items[i].removed)
            self->items[n++] = self->items[i];
    }
    self->nitems = n;
    self->poll = sr_realloc(self->poll, (n ? n : 1) * sizeof *self->poll);
    for (size_t i = 0; i < n; i++) {
        self->poll[i] = (zmq_pollitem_t){
            .socket = self->items[i].socket, .fd = self->items[i].fd, .events = ZMQ_POLLIN};
    }
    self->npoll = n;
    self->dirty = 0;
}

/* s_run_timers - fire every due timer once; a timer added by a handler waits for the next
 * round, and a cancelled one is simply gone */
static void s_run_timers(sr_loop_t *self)
{
    int64_t now = sr_clock_mono_ms();
    int last_id = self->next_timer_id;
    for (size_t i = 0; i < self->ntimers;) {
        timer_t_ t = self->timers[i];
        if (t.id >= last_id || t.due_ms > now) {
            i++;
            continue;
        }
        if (t.repeat) {
            /* catch up without firing a burst after a long stall */
            self->timers[i].due_ms =
                t.due_ms + t.interval_ms > now ? t.due_ms + t.interval_ms : now + t.interval_ms;
            i++;
        } else {
            self->timers[i] = self->timers[--self->ntimers];
        }
        t.fn(t.arg);
        if (self->stopped)
            return;
    }
}

static int64_t s_next_timeout(sr_loop_t *self, int64_t cap_ms)
{
    int64_t now = sr_clock_mono_ms(), wait = cap_ms;
    for (size_t i = 0; i < self->ntimers; i++) {
        int64_t left = self->timers[i].due_ms - now;
        if (left < 0)
            left = 0;
        if (wait < 0 || left < wait)
            wait = left;
    }
    return wait;
}

int sr_loop_run_once(sr_loop_t *self, int timeout_ms)
{
    if (self->dirty)
        s_rebuild(self);
    long wait = (long)s_next_timeout(self, timeout_ms);
    int rc = zmq_poll(self->poll, (int)self->npoll, wait);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        sr_error("loop_poll_failed", "err=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    /* walk a snapshot of the count: handlers may add items, which wait for the next round */
    size_t n = self->npoll;
    for (size_t i = 0; i < n && rc > 0 && !self->stopped; i++) {
        if (!(self->poll[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            continue;
        rc--;
        item_t it = self->items[i];
        if (!it.removed)
            it.fn(it.arg);
    }
    if (!self->stopped)
        s_run_timers(self);
    return 0;
}

int sr_loop_run(sr_loop_t *self)
{
    self->stopped = 0;
    while (!self->stopped) {
        if (sr_loop_run_once(self, -1) < 0)
            return -1;
    }
    return 0;
}

void sr_loop_stop(sr_loop_t *self)
{
    self->stopped = 1;
}

struct sr_loop_wakeup_t {
    sr_loop_t *loop;
    sr_loop_fn *fn;
    void *arg;
    int pipe[2]; /* a byte written = "look"; non-blocking both ends */
};

static void s_on_wakeup(void *arg)
{
    sr_loop_wakeup_t *self = arg;
    char buf[64];
    while (read(self->pipe[0], buf, sizeof buf) > 0)
        ;
    self->fn(self->arg);
}

sr_loop_wakeup_t *sr_loop_wakeup_new(sr_loop_t *loop, sr_loop_fn *fn, void *arg)
{
    sr_loop_wakeup_t *self = sr_calloc(1, sizeof *self);
    self->loop = loop;
    self->fn = fn;
    self->arg = arg;
    if (pipe2(self->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        sr_error("loop_wakeup_failed", "err=\"%s\"", strerror(errno));
        free(self);
        return NULL;
    }
    if (sr_loop_add_fd(loop, self->pipe[0], s_on_wakeup, self) < 0) {
        close(self->pipe[0]);
        close(self->pipe[1]);
        free(self);
        return NULL;
    }
    return self;
}

void sr_loop_wakeup(sr_loop_wakeup_t *self)
{
    char byte = 1;
    /* EAGAIN: the pipe is full of wake-ups already, one more changes nothing */
    while (write(self->pipe[1], &byte, 1) < 0 && errno == EINTR)
        ;
}

void sr_loop_wakeup_destroy(sr_loop_wakeup_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_loop_wakeup_t *self = *self_p;
    sr_loop_remove_fd(self->loop, self->pipe[0]);
    close(self->pipe[0]);
    close(self->pipe[1]);
    free(self);
    *self_p = NULL;
}

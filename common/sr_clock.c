/* sr_clock - wall and monotonic time. See sr_clock.h. */
#include "sr_clock.h"

#include <time.h>

static int64_t s_read(clockid_t id, int64_t div)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * (1000000000 / div) + ts.tv_nsec / div;
}

int64_t sr_clock_now_us(void)
{
    return s_read(CLOCK_REALTIME, 1000);
}

int64_t sr_clock_mono_ms(void)
{
    return s_read(CLOCK_MONOTONIC, 1000000);
}

int64_t sr_clock_mono_us(void)
{
    return s_read(CLOCK_MONOTONIC, 1000);
}

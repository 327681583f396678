/* sr_clock - the two clocks every daemon needs.
 *
 * Wall time (sr_clock_now_us) stamps events and rows; the monotonic clock (sr_clock_mono_ms)
 * measures intervals, timers and deadlines, and never jumps when NTP moves the wall clock.
 */
#ifndef SR_CLOCK_H
#define SR_CLOCK_H

#include <stdint.h>

int64_t sr_clock_now_us(void);  /* microseconds since the Unix epoch */
int64_t sr_clock_mono_ms(void); /* milliseconds on the monotonic clock */
int64_t sr_clock_mono_us(void); /* microseconds on the monotonic clock */

#endif

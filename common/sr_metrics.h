/* sr_metrics - counters, gauges and histograms rendered in Prometheus text format.
 *
 * Services register what they count at start-up (or lazily, e.g. one counter per topic) and
 * update from any thread: values are atomics, so the admin HTTP thread renders while the loop
 * thread counts. Registering the same name and labels twice returns the same metric; the same
 * name with other labels adds a series to one family (HELP and TYPE printed once). Metrics live
 * as long as the registry.
 *
 * labels is the Prometheus label text without braces, e.g. "topic=\"order.paid\"", or NULL.
 */
#ifndef SR_METRICS_H
#define SR_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sr_metrics_t sr_metrics_t;
typedef struct sr_counter_t sr_counter_t;
typedef struct sr_gauge_t sr_gauge_t;
typedef struct sr_histogram_t sr_histogram_t;

sr_metrics_t *sr_metrics_new(void);
void sr_metrics_destroy(sr_metrics_t **self_p);

sr_counter_t *sr_metrics_counter(sr_metrics_t *self, const char *name, const char *labels,
                                 const char *help);
sr_gauge_t *sr_metrics_gauge(sr_metrics_t *self, const char *name, const char *labels,
                             const char *help);
/* sr_metrics_histogram - bounds are the upper bounds of the buckets, ascending; +Inf is added */
sr_histogram_t *sr_metrics_histogram(sr_metrics_t *self, const char *name, const char *labels,
                                     const char *help, const double *bounds, size_t nbounds);

void sr_counter_inc(sr_counter_t *c);
void sr_counter_add(sr_counter_t *c, uint64_t n);
uint64_t sr_counter_value(const sr_counter_t *c);
void sr_gauge_set(sr_gauge_t *g, double v);
void sr_gauge_add(sr_gauge_t *g, double delta);
double sr_gauge_value(const sr_gauge_t *g);
void sr_histogram_observe(sr_histogram_t *h, double v);
uint64_t sr_histogram_count(const sr_histogram_t *h);

/* sr_metrics_render - the whole registry in Prometheus text exposition format; caller frees */
char *sr_metrics_render(sr_metrics_t *self);

/* the usual latency buckets in seconds, 0.5 ms .. 10 s */
extern const double sr_metrics_latency_bounds[];
extern const size_t sr_metrics_latency_nbounds;

#endif

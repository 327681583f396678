/* sr_metrics - counters, gauges and histograms in Prometheus text format. See sr_metrics.h.
 *
 * The registry owns families (one name, one type, one HELP) and each family owns its series
 * (one per label text). Registration and rendering take the registry's mutex; updates touch
 * only atomics, so a counter bump never waits for a scrape. Series are allocated one by one
 * and never move, which is why the pointers handed out stay valid for the registry's life.
 *
 * Numbers: counters and bucket counts are integers; gauges, sums and le bounds use the
 * shortest %.{15,16,17}g text that reads back as the same double (0.1 renders as "0.1", not
 * "0.10000000000000001"), with NaN, +Inf and -Inf spelled as Prometheus wants them.
 * sr_admin.c serves the rendered text on /metrics.
 */
#include "sr_metrics.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *const s_kind_names[] = {"counter", "gauge", "histogram"};

struct sr_counter_t {
    _Atomic uint64_t value;
};

/* the double's bits, so that set and add are lock-free */
struct sr_gauge_t {
    _Atomic uint64_t bits;
};

/* buckets[i] counts observations in (bounds[i-1], bounds[i]]; buckets[nbounds] is (last, +Inf).
 * Rendering makes them cumulative, and _count is their total so one scrape is consistent. */
struct sr_histogram_t {
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t *buckets;
    _Atomic uint64_t sum_bits;
};

typedef struct {
    char *labels; /* "" when none */
    union {
        sr_counter_t counter;
        sr_gauge_t gauge;
        sr_histogram_t histogram;
    } u;
} series_t;

typedef struct {
    char *name;
    char *help; /* NULL: no HELP line */
    kind_t kind;
    double *bounds; /* histograms only */
    size_t nbounds;
    series_t **series;
    size_t nseries, cap;
} family_t;

struct sr_metrics_t {
    pthread_mutex_t lock;
    family_t **families;
    size_t nfamilies, cap;
};

const double sr_metrics_latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t sr_metrics_latency_nbounds =
    sizeof sr_metrics_latency_bounds / sizeof sr_metrics_latency_bounds[0];

static uint64_t s_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double s_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* s_atomic_add_double - add to a double kept as bits; retry while another thread got there
 * first */
static void s_atomic_add_double(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, s_bits(s_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}

static int s_valid_name(const char *name)
{
    if (!name || !name[0])
        return 0;
    for (const char *p = name; *p; p++) {
        int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == ':';
        int digit = *p >= '0' && *p <= '9';
        if (!alpha && !(digit && p != name))
            return 0;
    }
    return 1;
}

static void s_family_destroy(family_t *f)
{
    for (size_t i = 0; i < f->nseries; i++) {
        if (f->kind == KIND_HISTOGRAM)
            free(f->series[i]->u.histogram.buckets);
        free(f->series[i]->labels);
        free(f->series[i]);
    }
    free(f->series);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

sr_metrics_t *sr_metrics_new(void)
{
    sr_metrics_t *self = sr_calloc(1, sizeof *self);
    int rc = pthread_mutex_init(&self->lock, NULL);
    if (rc != 0)
        sr_panic("metrics_mutex", "err=\"%s\"", strerror(rc));
    return self;
}

void sr_metrics_destroy(sr_metrics_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_metrics_t *self = *self_p;
    for (size_t i = 0; i < self->nfamilies; i++)
        s_family_destroy(self->families[i]);
    free(self->families);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* s_family - find or add the family; called with the lock held. A name registered as another
 * type, or a histogram with other bounds, is a programming error. */
static family_t *s_family(sr_metrics_t *self, const char *name, kind_t kind, const char *help,
                          const double *bounds, size_t nbounds)
{
    for (size_t i = 0; i < self->nfamilies; i++) {
        family_t *f = self->families[i];
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->kind != kind)
            sr_panic("metric_type_clash", "name=%s registered=%s requested=%s", name,
                     s_kind_names[f->kind], s_kind_names[kind]);
        if (kind == KIND_HISTOGRAM &&
            (f->nbounds != nbounds ||
             (nbounds && memcmp(f->bounds, bounds, nbounds * sizeof *bounds) != 0)))
            sr_panic("metric_bounds_clash", "name=%s", name);
        return f;
    }
    family_t *f = sr_calloc(1, sizeof *f);
    f->name = sr_strdup(name);
    f->help = help ? sr_strdup(help) : NULL;
    f->kind = kind;
    if (kind == KIND_HISTOGRAM) {
        f->bounds = sr_calloc(nbounds, sizeof *bounds);
        if (nbounds)
            memcpy(f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
    }
    if (self->nfamilies == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->families = sr_realloc(self->families, self->cap * sizeof *self->families);
    }
    self->families[self->nfamilies++] = f;
    return f;
}

/* s_series - the registry's series for name and labels, created on first use */
static series_t *s_series(sr_metrics_t *self, const char *name, const char *labels, kind_t kind,
                          const char *help, const double *bounds, size_t nbounds)
{
    if (!s_valid_name(name))
        sr_panic("metric_bad_name", "name=\"%s\"", name ? name : "(null)");
    if (!labels)
        labels = "";
    pthread_mutex_lock(&self->lock);
    family_t *f = s_family(self, name, kind, help, bounds, nbounds);
    series_t *s = NULL;
    for (size_t i = 0; i < f->nseries && !s; i++) {
        if (strcmp(f->series[i]->labels, labels) == 0)
            s = f->series[i];
    }
    if (!s) {
        s = sr_calloc(1, sizeof *s);
        s->labels = sr_strdup(labels);
        if (kind == KIND_HISTOGRAM) {
            s->u.histogram.bounds = f->bounds;
            s->u.histogram.nbounds = f->nbounds;
            s->u.histogram.buckets = sr_calloc(f->nbounds + 1, sizeof(_Atomic uint64_t));
            for (size_t i = 0; i <= f->nbounds; i++)
                atomic_init(&s->u.histogram.buckets[i], 0);
            atomic_init(&s->u.histogram.sum_bits, s_bits(0.0));
        } else if (kind == KIND_GAUGE) {
            atomic_init(&s->u.gauge.bits, s_bits(0.0));
        } else {
            atomic_init(&s->u.counter.value, 0);
        }
        if (f->nseries == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 4;
            f->series = sr_realloc(f->series, f->cap * sizeof *f->series);
        }
        f->series[f->nseries++] = s;
    }
    pthread_mutex_unlock(&self->lock);
    return s;
}

sr_counter_t *sr_metrics_counter(sr_metrics_t *self, const char *name, const char *labels,
                                 const char *help)
{
    return &s_series(self, name, labels, KIND_COUNTER, help, NULL, 0)->u.counter;
}

sr_gauge_t *sr_metrics_gauge(sr_metrics_t *self, const char *name, const char *labels,
                             const char *help)
{
    return &s_series(self, name, labels, KIND_GAUGE, help, NULL, 0)->u.gauge;
}

sr_histogram_t *sr_metrics_histogram(sr_metrics_t *self, const char *name, const char *labels,
                                     const char *help, const double *bounds, size_t nbounds)
{
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            sr_panic("metric_bad_bounds", "name=%s index=%zu", name ? name : "(null)", i);
    }
    return &s_series(self, name, labels, KIND_HISTOGRAM, help, bounds, nbounds)->u.histogram;
}

void sr_counter_inc(sr_counter_t *c)
{
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

void sr_counter_add(sr_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t sr_counter_value(const sr_counter_t *c)
{
    return atomic_load_explicit(&c->value, memory_order_relaxed);
}

void sr_gauge_set(sr_gauge_t *g, double v)
{
    atomic_store_explicit(&g->bits, s_bits(v), memory_order_relaxed);
}

void sr_gauge_add(sr_gauge_t *g, double delta)
{
    s_atomic_add_double(&g->bits, delta);
}

double sr_gauge_value(const sr_gauge_t *g)
{
    return s_double(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

/* sr_histogram_observe - le is inclusive: v == bounds[i] lands in bucket i; NaN lands in +Inf */
void sr_histogram_observe(sr_histogram_t *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && !(v <= h->bounds[i]))
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    s_atomic_add_double(&h->sum_bits, v);
}

uint64_t sr_histogram_count(const sr_histogram_t *h)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= h->nbounds; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return total;
}

/* s_format_double - the shortest of %.15g..%.17g that reads back exactly */
static void s_format_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buf, size, "%.*g", precision, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* s_write_help - HELP text with backslash and newline escaped, as the format requires */
static void s_write_help(FILE *out, const family_t *f)
{
    fprintf(out, "# HELP %s ", f->name);
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('\n', out);
}

/* s_write_labels - "{labels}" or "{labels,extra}"; nothing when both are empty */
static void s_write_labels(FILE *out, const char *labels, const char *extra)
{
    if (!labels[0] && !extra)
        return;
    fprintf(out, "{%s%s%s}", labels, labels[0] && extra ? "," : "", extra ? extra : "");
}

static void s_write_histogram(FILE *out, const family_t *f, const series_t *s)
{
    const sr_histogram_t *h = &s->u.histogram;
    char num[40], le[64];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->nbounds) {
            s_format_double(num, sizeof num, h->bounds[i]);
            snprintf(le, sizeof le, "le=\"%s\"", num);
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        fprintf(out, "%s_bucket", f->name);
        s_write_labels(out, s->labels, le);
        fprintf(out, " %llu\n", (unsigned long long)cumulative);
    }
    s_format_double(num, sizeof num,
                    s_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    fprintf(out, "%s_sum", f->name);
    s_write_labels(out, s->labels, NULL);
    fprintf(out, " %s\n%s_count", num, f->name);
    s_write_labels(out, s->labels, NULL);
    fprintf(out, " %llu\n", (unsigned long long)cumulative);
}

static void s_write_family(FILE *out, const family_t *f)
{
    if (f->help)
        s_write_help(out, f);
    fprintf(out, "# TYPE %s %s\n", f->name, s_kind_names[f->kind]);
    char num[40];
    for (size_t i = 0; i < f->nseries; i++) {
        const series_t *s = f->series[i];
        if (f->kind == KIND_HISTOGRAM) {
            s_write_histogram(out, f, s);
            continue;
        }
        fputs(f->name, out);
        s_write_labels(out, s->labels, NULL);
        if (f->kind == KIND_COUNTER) {
            fprintf(out, " %llu\n", (unsigned long long)sr_counter_value(&s->u.counter));
        } else {
            s_format_double(num, sizeof num, sr_gauge_value(&s->u.gauge));
            fprintf(out, " %s\n", num);
        }
    }
}

char *sr_metrics_render(sr_metrics_t *self)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        sr_panic("metrics_render", "err=\"open_memstream failed\"");
    pthread_mutex_lock(&self->lock);
    for (size_t i = 0; i < self->nfamilies; i++)
        s_write_family(out, self->families[i]);
    pthread_mutex_unlock(&self->lock);
    if (fclose(out) != 0 || !text)
        sr_panic("metrics_render", "err=\"out of memory\"");
    return text;
}

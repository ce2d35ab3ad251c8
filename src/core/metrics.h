#ifndef TRANSITD_METRICS_H
#define TRANSITD_METRICS_H
/*
 * Request counters and latency histograms per route and status, kept in
 * relaxed atomics (no lock on the request path) and rendered in the
 * Prometheus text format 0.0.4.
 */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* labels[i] is the route label of index i ("GET /api/v1/stations"); index n
 * counts requests that matched no route. The array must stay valid as long
 * as requests are counted or metrics rendered (main frees it after shutdown). */
void metrics_init(const char *const *labels, size_t n);
void metrics_observe(size_t route, int status, uint64_t duration_us);
void metrics_render(struct buf *out);

#endif

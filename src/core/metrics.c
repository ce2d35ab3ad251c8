#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

static const int statuses[] = { 200, 201, 202, 204, 301, 304, 400, 401, 402, 403, 404,
				405, 409, 413, 415, 422, 429, 500, 503, 0 /* other */ };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
static const uint64_t bounds_us[] = { 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000 };
#define NBUCKETS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct route_metrics {
	uint64_t count[NSTATUS];
	uint64_t bucket[NBUCKETS + 1]; /* last = +Inf */
	uint64_t sum_us;
};

static const char *const *labels;
static size_t nroutes;
static struct route_metrics *m;

void metrics_init(const char *const *l, size_t n)
{
	labels = l;
	nroutes = n;
	m = xcalloc(n + 1, sizeof(*m));
}

void metrics_observe(size_t route, int status, uint64_t us)
{
	if (!m)
		return;
	if (route > nroutes)
		route = nroutes;
	struct route_metrics *r = &m[route];
	size_t s = 0;
	while (statuses[s] && statuses[s] != status)
		s++;
	size_t b = 0;
	while (b < NBUCKETS && us > bounds_us[b])
		b++;
	__atomic_add_fetch(&r->count[s], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->bucket[b], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&r->sum_us, us, __ATOMIC_RELAXED);
}

static void add_label(struct buf *out, size_t i)
{
	/* Labels come from the route table: no quotes or backslashes to escape. */
	buf_adds(out, "route=\"");
	buf_adds(out, i < nroutes ? labels[i] : "unmatched");
	buf_addch(out, '"');
}

void metrics_render(struct buf *out)
{
	if (!m)
		return;
	buf_adds(out, "# HELP transitd_http_requests_total HTTP requests answered, by route and status.\n"
		      "# TYPE transitd_http_requests_total counter\n");
	for (size_t i = 0; i <= nroutes; i++) {
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t c = __atomic_load_n(&m[i].count[s], __ATOMIC_RELAXED);
			if (!c)
				continue;
			buf_adds(out, "transitd_http_requests_total{");
			add_label(out, i);
			if (statuses[s])
				buf_addf(out, ",status=\"%d\"} %llu\n", statuses[s], (unsigned long long)c);
			else
				buf_addf(out, ",status=\"other\"} %llu\n", (unsigned long long)c);
		}
	}
	buf_adds(out, "# HELP transitd_http_request_duration_seconds Time from request start to response sent.\n"
		      "# TYPE transitd_http_request_duration_seconds histogram\n");
	for (size_t i = 0; i <= nroutes; i++) {
		uint64_t total = 0;
		for (size_t b = 0; b <= NBUCKETS; b++)
			total += __atomic_load_n(&m[i].bucket[b], __ATOMIC_RELAXED);
		if (!total)
			continue;
		uint64_t cum = 0;
		for (size_t b = 0; b <= NBUCKETS; b++) {
			cum += __atomic_load_n(&m[i].bucket[b], __ATOMIC_RELAXED);
			buf_adds(out, "transitd_http_request_duration_seconds_bucket{");
			add_label(out, i);
			if (b < NBUCKETS)
				buf_addf(out, ",le=\"%g\"} %llu\n", (double)bounds_us[b] / 1e6, (unsigned long long)cum);
			else
				buf_addf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
		}
		buf_adds(out, "transitd_http_request_duration_seconds_sum{");
		add_label(out, i);
		buf_addf(out, "} %.6f\n", (double)__atomic_load_n(&m[i].sum_us, __ATOMIC_RELAXED) / 1e6);
		buf_adds(out, "transitd_http_request_duration_seconds_count{");
		add_label(out, i);
		buf_addf(out, "} %llu\n", (unsigned long long)cum);
	}
}

#include "worker.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../store/cache.h"
#include "../store/replicas.h"
#include "lanes.h"
#include "../core/xalloc.h"
#include "../core/banned.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct request **ring;
	int cap, head, len, reserved;
	int stopping;
	int busy;
	int nthreads;
	pthread_t *threads;
	struct worker *workers;
	struct worker_ops ops;
} q = { .lock = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER };

static const struct sql_stmt wal_position = { "wal_position", "SELECT pg_current_wal_lsn()::text" };

struct pg *worker_read_db(struct worker *w)
{
	struct api_error ignored;
	if (w->replica_index >= 0 && w->read_on_replica && replicas_usable(w->replica_index, w->read_lsn)) {
		if (pg_connect(&w->replica, &ignored) == 0) {
			w->read_used_replica = 1;
			return &w->replica;
		}
		replicas_mark_down(w->replica_index);
	}
	w->read_used_replica = 0;
	return &w->primary;
}

void worker_invalidate(struct worker *w, struct arena *a, const char *const *keys, size_t n)
{
	uint64_t lsn = 0;
	if (replicas_count()) {
		struct api_error ignored;
		PGresult *r = pg_exec(&w->primary, a, &wal_position, 0, NULL, &ignored);
		if (r && PQntuples(r) == 1)
			lsn = lsn_parse(PQgetvalue(r, 0, 0));
	}
	cache_invalidate(&w->redis, a, keys, n, lsn);
}

/* Each handler (or lane batch) starts reading from the primary. */
static void read_state_reset(struct worker *w)
{
	w->read_on_replica = 0;
	w->read_lsn = 0;
	w->read_used_replica = 0;
}

/* Runs requests (one, or a batch of one lane) and hands each back. */
static void run(struct worker *w, struct request **reqs, int n)
{
	struct request *go[LANE_BATCH_MAX];
	int m = 0;
	for (int i = 0; i < n; i++) {
		if (!q.ops.admit || q.ops.admit(reqs[i], w) == 0)
			go[m++] = reqs[i];
	}
	/* In arrival order; consecutive requests of a route that runs batches
	 * (a lane may hold several routes' writes of one card) run as one. */
	for (int i = 0; i < m;) {
		int j = i + 1;
		while (j < m && go[j]->route == go[i]->route)
			j++;
		read_state_reset(w);
		if (j - i > 1 && go[i]->route->lane_batch) {
			go[i]->route->lane_batch(go + i, j - i, w);
			i = j;
			continue;
		}
		struct request *req = go[i++];
		(req->async ? q.ops.async_run : req->route->handler)(req, w);
	}
	for (int i = 0; i < n; i++) {
		if (!reqs[i]->res.status) {
			struct api_error e;
			api_fail(&e, "internal", "the handler gave no answer");
			reply_problem(reqs[i], &e);
		}
		q.ops.done(reqs[i]);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct api_error ignored;
	/* Connect and prepare before the first request needs it; a failure here
	 * is retried by that request. */
	pg_connect(&w->primary, &ignored);
	for (;;) {
		pthread_mutex_lock(&q.lock);
		while (!q.len && !q.stopping)
			pthread_cond_wait(&q.nonempty, &q.lock);
		if (!q.len) {
			pthread_mutex_unlock(&q.lock);
			break;
		}
		struct request *req = q.ring[q.head];
		q.head = (q.head + 1) % q.cap;
		q.len--;
		q.reserved--;
		pthread_mutex_unlock(&q.lock);

		/* A write of a card whose writes are running here waits in the
		 * card's lane, holding no worker (lanes.h). */
		int64_t lane = !req->async && req->route->lane ? req->route->lane(req) : 0;
		if (lane && !lanes_enter(lane, req))
			continue;
		__atomic_add_fetch(&q.busy, 1, __ATOMIC_RELAXED);
		run(w, &req, 1);
		/* This worker owns the lane: what was parked meanwhile, in batches. */
		struct request *batch[LANE_BATCH_MAX];
		int n;
		while (lane && (n = lanes_next(lane, batch, LANE_BATCH_MAX)) > 0)
			run(w, batch, n);
		__atomic_sub_fetch(&q.busy, 1, __ATOMIC_RELAXED);
	}
	pg_close(&w->primary);
	pg_close(&w->replica);
	redis_close(&w->redis);
	broker_close(&w->broker);
	return NULL;
}

/* The n-th URL of a comma-separated list, into out; 0 or -1 when empty. */
static int nth_url(const char *list, int n, char *out, size_t len)
{
	int count = 0;
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l)
			count++;
		p += l + (p[l] == ',');
	}
	if (!count)
		return -1;
	n %= count;
	for (const char *p = list; *p;) {
		size_t l = strcspn(p, ",");
		if (l && n-- == 0) {
			snprintf(out, len, "%.*s", (int)l, p);
			return 0;
		}
		p += l + (p[l] == ',');
	}
	return -1;
}

void worker_init(struct worker *w, const struct config *cfg, int id)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	pg_init(&w->primary, cfg->database_url, cfg, 1);
	pg_init(&w->replica, NULL, cfg, 1);
	w->replica_index = -1;
	redis_init(&w->redis, cfg);
	broker_init(&w->broker, cfg);
}

int workers_start(const struct config *cfg, const struct worker_ops *ops)
{
	q.cap = cfg->job_queue_size;
	q.ring = xcalloc((size_t)q.cap, sizeof(*q.ring));
	q.ops = *ops;
	q.nthreads = cfg->workers;
	q.threads = xcalloc((size_t)q.nthreads, sizeof(*q.threads));
	q.workers = xcalloc((size_t)q.nthreads, sizeof(*q.workers));
	pg_register(&wal_position, 1);
	for (int i = 0; i < q.nthreads; i++) {
		struct worker *w = &q.workers[i];
		char url[1024];
		worker_init(w, cfg, i);
		/* Workers are spread over the replicas in turn. */
		w->replica_index = replicas_count() ? i % replicas_count() : -1;
		if (nth_url(cfg->replica_urls, i, url, sizeof(url)) == 0)
			pg_init(&w->replica, xstrdup(url), cfg, 1);
		if (pthread_create(&q.threads[i], NULL, worker_main, w)) {
			log_msg(LOG_ERROR, "cannot start worker %d", i);
			return -1;
		}
	}
	return 0;
}

int workers_reserve(void)
{
	pthread_mutex_lock(&q.lock);
	/* Requests parked in lanes wait too: they count against the queue. */
	int ok = !q.stopping && q.len + q.reserved + lanes_parked() < q.cap;
	if (ok)
		q.reserved++;
	pthread_mutex_unlock(&q.lock);
	return ok ? 0 : -1;
}

void workers_submit(struct request *req)
{
	pthread_mutex_lock(&q.lock);
	q.ring[(q.head + q.len) % q.cap] = req;
	q.len++;
	pthread_cond_signal(&q.nonempty);
	pthread_mutex_unlock(&q.lock);
}

void workers_stop(void)
{
	pthread_mutex_lock(&q.lock);
	q.stopping = 1;
	pthread_cond_broadcast(&q.nonempty);
	pthread_mutex_unlock(&q.lock);
	for (int i = 0; i < q.nthreads; i++)
		pthread_join(q.threads[i], NULL);
	for (int i = 0; i < q.nthreads; i++)
		free((char *)q.workers[i].replica.url);
	free(q.threads);
	free(q.workers);
	free(q.ring);
	q.threads = NULL;
	q.workers = NULL;
	q.ring = NULL;
	q.nthreads = 0;
}

int workers_queue_depth(void)
{
	return __atomic_load_n(&q.len, __ATOMIC_RELAXED);
}

int workers_busy(void)
{
	return __atomic_load_n(&q.busy, __ATOMIC_RELAXED);
}

int workers_count(void)
{
	return q.nthreads;
}

#include "hashpool.h"

#include <pthread.h>
#include <stdlib.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "worker.h"
#include "../core/banned.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct request **ring;
	int cap, head, len, busy, stopping, nthreads;
	pthread_t *threads;
	struct worker *ctx; /* one per thread: its Redis connection */
	void (*done)(struct request *);
} p = { .lock = PTHREAD_MUTEX_INITIALIZER, .nonempty = PTHREAD_COND_INITIALIZER };

/* After prepare: to a worker, or back with the answer prepare (or a full
 * worker queue) gave. */
static void hand_on(struct request *req)
{
	if (!req->res.status) {
		if (workers_reserve() == 0) {
			workers_submit(req);
			return;
		}
		struct api_error e;
		api_fail(&e, "unavailable", "the server is at capacity; retry shortly");
		e.retry_after = 1;
		reply_problem(req, &e);
	}
	p.done(req);
}

static void *pool_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		pthread_mutex_lock(&p.lock);
		while (!p.len && !p.stopping)
			pthread_cond_wait(&p.nonempty, &p.lock);
		if (!p.len) {
			pthread_mutex_unlock(&p.lock);
			break;
		}
		struct request *req = p.ring[p.head];
		p.head = (p.head + 1) % p.cap;
		p.len--;
		p.busy++;
		pthread_mutex_unlock(&p.lock);
		req->route->prepare(req, w);
		pthread_mutex_lock(&p.lock);
		p.busy--;
		pthread_mutex_unlock(&p.lock);
		hand_on(req);
	}
	redis_close(&w->redis);
	return NULL;
}

int hashpool_start(const struct config *cfg, void (*done)(struct request *))
{
	p.nthreads = cfg->password_hashers;
	/* Room for what the threads hold, plus the queue. */
	p.cap = cfg->password_queue + 1;
	p.ring = xcalloc((size_t)p.cap, sizeof(*p.ring));
	p.done = done;
	p.threads = xcalloc((size_t)p.nthreads, sizeof(*p.threads));
	p.ctx = xcalloc((size_t)p.nthreads, sizeof(*p.ctx));
	for (int i = 0; i < p.nthreads; i++) {
		p.ctx[i].id = -1 - i;
		pg_init(&p.ctx[i].primary, NULL, cfg, 0); /* never connected: prepare stages use no database */
		pg_init(&p.ctx[i].replica, NULL, cfg, 0);
		redis_init(&p.ctx[i].redis, cfg);
		if (pthread_create(&p.threads[i], NULL, pool_main, &p.ctx[i])) {
			log_msg(LOG_ERROR, "cannot start password pool thread %d", i);
			return -1;
		}
	}
	return 0;
}

int hashpool_submit(struct request *req)
{
	pthread_mutex_lock(&p.lock);
	/* Waiting requests, not counting those a thread is working on. */
	int ok = !p.stopping && p.len < p.cap - 1 + (p.busy < p.nthreads ? 1 : 0);
	if (ok) {
		p.ring[(p.head + p.len) % p.cap] = req;
		p.len++;
		pthread_cond_signal(&p.nonempty);
	}
	pthread_mutex_unlock(&p.lock);
	return ok ? 0 : -1;
}

void hashpool_stop(void)
{
	if (!p.threads)
		return;
	pthread_mutex_lock(&p.lock);
	p.stopping = 1;
	pthread_cond_broadcast(&p.nonempty);
	pthread_mutex_unlock(&p.lock);
	for (int i = 0; i < p.nthreads; i++)
		pthread_join(p.threads[i], NULL);
	free(p.threads);
	free(p.ctx);
	free(p.ring);
	p.threads = NULL;
	p.ctx = NULL;
	p.ring = NULL;
}

int hashpool_depth(void)
{
	pthread_mutex_lock(&p.lock);
	int n = p.len;
	pthread_mutex_unlock(&p.lock);
	return n;
}

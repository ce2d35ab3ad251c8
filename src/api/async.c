#include "async.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "../core/log.h"
#include "../core/xalloc.h"
#include "../domain/operations.h"
#include "../http/router.h"
#include "../http/server.h"
#include "../store/broker.h"
#include "idempotency.h"
#include "../core/banned.h"

#define RETRY_WAIT_MS 500 /* between tries while the database is unavailable */

struct consumer {
	struct worker w;  /* its own database and Redis connections, as a worker's */
	struct broker b;
	int dead;         /* consumes the dead-letter queue */
	pthread_t thread;
};

static struct {
	const struct config *cfg;
	const struct route *routes;
	size_t nroutes;
	struct consumer *consumers;
	int n;
	int stopping;
	int lose_confirms_ms; /* tests only: a confirmed publish is reported unconfirmed after this wait */
	long unacked;
	unsigned long published, confirmed, refused, consumed, succeeded, failed, retried, dead_lettered;
	unsigned long latency_buckets[8]; /* publish to outcome, ms: 5 10 25 50 100 250 1000 +Inf */
	double latency_sum_ms;
	pthread_mutex_t latency_lock;
} A = { .latency_lock = PTHREAD_MUTEX_INITIALIZER };

static const int latency_le[] = { 5, 10, 25, 50, 100, 250, 1000 };

static void count(unsigned long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void async_register(void)
{
	operations_register();
}

/* ------------------------------------------------------------- accepting */

static void accepted(struct request *req, int64_t id, int replayed)
{
	struct buf *b = reply(req, 202);
	buf_addf(b, "{\"operation_id\":%lld,\"status\":\"pending\"}", (long long)id);
	reply_header(req, "Location", arena_printf(&req->arena, "/api/v1/operations/%lld", (long long)id));
	if (replayed)
		reply_header(req, "Idempotent-Replayed", "true");
}

/* TRANSITD_TEST_LOSE_CONFIRMS=ms (tests only): the broker took the message
 * but its confirm is "lost", as when the broker stops before sending it. */
static int lost_confirm(struct api_error *e)
{
	if (!A.lose_confirms_ms)
		return 0;
	sleep_ms(A.lose_confirms_ms);
	api_fail(e, "unavailable", "the message broker is unavailable; retry shortly");
	e->retry_after = 1;
	return -1;
}

void async_submit(struct request *req, struct worker *w)
{
	struct api_error e;
	struct operation op = { 0 };
	int created;
	/* The checks the synchronous handler makes before its effect. */
	if (req->route->check && req->route->check(req, w, &e))
		goto fail;
	if (broker_connect(&w->broker, &e)) {
		if (A.cfg->async_fallback_sync) { /* ASYNC_FALLBACK=sync: the broker is down, answer now */
			req->route->handler(req, w);
			return;
		}
		goto fail;
	}
	op.user_id = req->auth ? req->auth->user_id : 0;
	op.role = req->auth ? role_name(req->auth->role) : "";
	op.method = req->method_name;
	op.route = req->route->pattern;
	op.path = req->path;
	op.request = req->body.ptr;
	if (req->idempotency_key) {
		if (idem_identify(req, &op.scope, &op.hash, &e))
			goto fail;
		op.key = req->idempotency_key;
	}
	const char *hash = op.hash;
	if (operation_create(&w->primary, &req->arena, &op, &created, &e))
		goto fail;
	if (!created) { /* the key was used before, as for a synchronous request */
		int again = 0;
		if (strcmp(op.hash, hash)) {
			api_fail(&e, "idempotency-mismatch", "this Idempotency-Key was used for a different request");
			goto fail;
		}
		if (!op.unqueued) { /* queued (or being queued): the first answer again */
			accepted(req, op.id, 1);
			return;
		}
		if (operation_retry(&w->primary, &req->arena, op.id, &again, &e))
			goto fail;
		if (!again) {
			api_fail(&e, "idempotency-in-progress", "a request with this Idempotency-Key is still running");
			e.retry_after = 1;
			goto fail;
		}
	}
	char msg[96];
	snprintf(msg, sizeof(msg), "{\"operation_id\":%lld,\"published_ms\":%lld}", (long long)op.id,
		 (long long)wall_ms());
	count(&A.published);
	if (broker_publish(&w->broker, msg, strlen(msg), arena_printf(&req->arena, "op-%lld", (long long)op.id),
			   &e) ||
	    lost_confirm(&e)) {
		struct buf doc = BUF_INIT;
		problem_render(&doc, &e, req->path, req->request_id);
		struct api_error ignored;
		int refused = 1; /* when even that cannot be recorded, the caller is told 503 */
		operation_refuse(&w->primary, &req->arena, op.id, doc.ptr, &refused, &ignored);
		buf_release(&doc);
		if (!refused) { /* a consumer has claimed it: the broker took it after all */
			count(&A.confirmed);
			accepted(req, op.id, 0);
			return;
		}
		count(&A.refused);
		if (A.cfg->async_fallback_sync) { /* failed, so a late delivery is skipped: answer now */
			req->route->handler(req, w);
			return;
		}
		goto fail;
	}
	count(&A.confirmed);
	accepted(req, op.id, 0);
	return;
fail:
	reply_problem(req, &e);
}

/* ------------------------------------------------------------- consuming */

static const struct route *route_of(const char *method, const char *pattern)
{
	for (size_t i = 0; i < A.nroutes; i++)
		if (!strcmp(A.routes[i].pattern, pattern) && !strcmp(router_method_name(A.routes[i].method), method))
			return &A.routes[i];
	return NULL;
}

static int64_t operation_of(const struct broker_message *m, int64_t *published_ms)
{
	json_t *doc = json_loadb(m->body, m->len, 0, NULL);
	json_t *id = doc ? json_object_get(doc, "operation_id") : NULL;
	json_t *at = doc ? json_object_get(doc, "published_ms") : NULL;
	int64_t v = json_is_integer(id) && json_integer_value(id) > 0 ? json_integer_value(id) : 0;
	*published_ms = json_is_integer(at) ? json_integer_value(at) : 0;
	json_decref(doc);
	return v;
}

static void observe_latency(int64_t published_ms)
{
	if (!published_ms)
		return;
	double ms = (double)(wall_ms() - published_ms);
	pthread_mutex_lock(&A.latency_lock);
	int k = 0;
	while (k < 7 && ms > latency_le[k])
		k++;
	A.latency_buckets[k]++;
	A.latency_sum_ms += ms;
	pthread_mutex_unlock(&A.latency_lock);
}

/* The synchronous request operation op was accepted for: its body, path
 * ids, caller and role, with the operation id as its Idempotency-Key. */
static struct request *rebuild(const struct operation *op, const struct route *route)
{
	struct request *req = request_new();
	req->route = route;
	req->method = router_method_parse(op->method);
	req->method_name = arena_strdup(&req->arena, op->method);
	req->path = arena_strdup(&req->arena, op->path);
	req->request_id = arena_printf(&req->arena, "op-%lld", (long long)op->id);
	req->client = "broker";
	req->idempotency_key = arena_printf(&req->arena, "operation-%lld", (long long)op->id);
	req->content_type = "application/json";
	buf_adds(&req->body, op->request);
	const struct route *matched;
	unsigned allow;
	char bad[64];
	router_match(route, 1, req->method, req->path, &matched, req->ids, &req->nids, &allow, bad, sizeof(bad));
	if (op->user_id) {
		req->auth = arena_zalloc(&req->arena, sizeof(*req->auth));
		req->auth->user_id = op->user_id;
		req->auth->role = role_parse(op->role);
	}
	return req;
}

/* 1: ack; 0: give it back to the queue. */
static int apply(struct consumer *c, const struct broker_message *m)
{
	struct api_error e;
	int64_t published_ms;
	int64_t id = operation_of(m, &published_ms);
	if (!id) {
		log_msg(LOG_WARN, "async: a message that names no operation (delivery %ld)", m->deliveries);
		return 0;
	}
	for (;;) {
		struct arena a;
		arena_init(&a);
		struct operation op;
		int rc = operation_claim(&c->w.primary, &a, id, &op, &e);
		if (rc && e.status == 503 && !__atomic_load_n(&A.stopping, __ATOMIC_ACQUIRE)) {
			arena_release(&a);
			sleep_ms(RETRY_WAIT_MS);
			continue;
		}
		if (rc) {
			log_msg(LOG_WARN, "async: operation %lld: %s", (long long)id, e.detail);
			arena_release(&a);
			return e.status != 503; /* an unknown operation has nothing to apply */
		}
		if (strcmp(op.status, "pending")) {
			arena_release(&a);
			return 1; /* applied, or failed, before */
		}
		const struct route *route = route_of(op.method, op.route);
		if (!route) { /* another version's route: perhaps another instance knows it */
			log_msg(LOG_WARN, "async: operation %lld: no route %s %s here", (long long)id, op.method, op.route);
			arena_release(&a);
			return 0;
		}
		struct request *req = rebuild(&op, route);
		arena_release(&a);
		struct api_error perr;
		if ((route->flags & ROUTE_JSON_BODY) && json_parse_body(req->body.ptr, req->body.len, &req->json, &perr))
			reply_problem(req, &perr);
		else
			route->handler(req, &c->w);
		int status = req->res.status;
		if (status == 503 && !__atomic_load_n(&A.stopping, __ATOMIC_ACQUIRE)) {
			request_free(req);
			sleep_ms(RETRY_WAIT_MS); /* the database or Redis: wait, this is not the command's fault */
			continue;
		}
		if (status >= 500 || status == 0) {
			request_free(req);
			count(&A.retried);
			return 0;
		}
		const char *body = req->res.body.len ? req->res.body.ptr : "null";
		while (operation_finish(&c->w.primary, &req->arena, id, status, body, &e) &&
		       !__atomic_load_n(&A.stopping, __ATOMIC_ACQUIRE))
			sleep_ms(RETRY_WAIT_MS);
		count(&A.consumed);
		count(status < 300 ? &A.succeeded : &A.failed);
		observe_latency(published_ms);
		request_free(req);
		if (getenv("TRANSITD_TEST_CRASH_BEFORE_ACK")) {
			/* tests only: the outcome is committed, the message not acked */
			log_msg(LOG_WARN, "async: TRANSITD_TEST_CRASH_BEFORE_ACK set: aborting before the ack");
			abort();
		}
		return 1;
	}
}

/* A dead-lettered command: its operation ends failed, saying why. */
static int bury(struct consumer *c, const struct broker_message *m)
{
	struct api_error e, why;
	int64_t published_ms;
	int64_t id = operation_of(m, &published_ms);
	count(&A.dead_lettered);
	if (!id) {
		log_msg(LOG_WARN, "async: dropped a dead-lettered message that names no operation");
		return 1;
	}
	api_fail(&why, "dead-lettered", "the command could not be applied after %d deliveries (%s)",
		 A.cfg->amqp_delivery_limit, *m->death ? m->death : "rejected");
	struct buf doc = BUF_INIT;
	problem_render(&doc, &why, "", "");
	struct arena a;
	arena_init(&a);
	int rc = operation_finish(&c->w.primary, &a, id, why.status, doc.ptr, &e);
	arena_release(&a);
	buf_release(&doc);
	if (!rc)
		count(&A.failed);
	return rc == 0;
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct api_error e;
	while (!__atomic_load_n(&A.stopping, __ATOMIC_ACQUIRE)) {
		if (!c->b.consuming && broker_consume(&c->b, c->dead ? "dead" : "", 8, &e)) {
			sleep_ms(RETRY_WAIT_MS);
			continue;
		}
		struct broker_message m;
		if (broker_next(&c->b, 250, &m) <= 0)
			continue;
		__atomic_add_fetch(&A.unacked, 1, __ATOMIC_RELAXED);
		int ack = c->dead ? bury(c, &m) : apply(c, &m);
		if (ack)
			broker_ack(&c->b, m.tag);
		else
			broker_nack(&c->b, m.tag);
		__atomic_sub_fetch(&A.unacked, 1, __ATOMIC_RELAXED);
		broker_message_free(&m);
	}
	broker_close(&c->b);
	pg_close(&c->w.primary);
	redis_close(&c->w.redis);
	return NULL;
}

int async_start(const struct config *cfg, const struct route *routes, size_t nroutes)
{
	A.cfg = cfg;
	A.routes = routes;
	A.nroutes = nroutes;
	const char *lose = getenv("TRANSITD_TEST_LOSE_CONFIRMS");
	A.lose_confirms_ms = lose ? atoi(lose) : 0;
	if (!*cfg->amqp_url || cfg->async_consumers == 0)
		return 0;
	A.n = cfg->async_consumers + 1; /* and one for the dead letters */
	A.consumers = xcalloc((size_t)A.n, sizeof(*A.consumers));
	for (int i = 0; i < A.n; i++) {
		struct consumer *c = &A.consumers[i];
		c->dead = i == A.n - 1;
		worker_init(&c->w, cfg, -1 - i);
		broker_init(&c->b, cfg);
		if (pthread_create(&c->thread, NULL, consumer_main, c)) {
			log_msg(LOG_ERROR, "cannot start the command consumers");
			return -1;
		}
	}
	return 0;
}

void async_stop(void)
{
	__atomic_store_n(&A.stopping, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < A.n; i++)
		pthread_join(A.consumers[i].thread, NULL);
	free(A.consumers);
	A.consumers = NULL;
	A.n = 0;
}

long async_unacked(void)
{
	return __atomic_load_n(&A.unacked, __ATOMIC_RELAXED);
}

void async_metrics(struct buf *b)
{
	static const struct {
		const char *event;
		unsigned long *n;
	} events[] = {
		{ "published", &A.published },	{ "confirmed", &A.confirmed }, { "refused", &A.refused },
		{ "consumed", &A.consumed },	{ "succeeded", &A.succeeded }, { "failed", &A.failed },
		{ "retried", &A.retried },	{ "dead_lettered", &A.dead_lettered },
	};
	buf_adds(b, "# HELP transitd_async_commands_total Asynchronous commands by event: published, confirmed by "
		    "the broker, refused (no confirm), consumed (outcome recorded), succeeded, failed, given back "
		    "for another delivery, dead-lettered.\n# TYPE transitd_async_commands_total counter\n");
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		buf_addf(b, "transitd_async_commands_total{event=\"%s\"} %lu\n", events[i].event,
			 __atomic_load_n(events[i].n, __ATOMIC_RELAXED));
	buf_adds(b, "# HELP transitd_async_apply_seconds From publishing a command to recording its outcome.\n"
		    "# TYPE transitd_async_apply_seconds histogram\n");
	pthread_mutex_lock(&A.latency_lock);
	unsigned long cum = 0;
	for (int k = 0; k < 8; k++) {
		cum += A.latency_buckets[k];
		if (k < 7)
			buf_addf(b, "transitd_async_apply_seconds_bucket{le=\"%g\"} %lu\n", latency_le[k] / 1000.0, cum);
		else
			buf_addf(b, "transitd_async_apply_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
	}
	buf_addf(b, "transitd_async_apply_seconds_sum %.6f\ntransitd_async_apply_seconds_count %lu\n",
		 A.latency_sum_ms / 1000.0, cum);
	pthread_mutex_unlock(&A.latency_lock);
	buf_addf(b, "# HELP transitd_async_unacked Commands this process's consumers hold, not yet acked.\n"
		    "# TYPE transitd_async_unacked gauge\ntransitd_async_unacked %ld\n",
		 async_unacked());
}

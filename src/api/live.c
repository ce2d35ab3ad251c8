#include "live.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../domain/network.h"
#include "../http/evloop.h"
#include "../http/worker.h"
#include "../store/cache.h"
#include "../store/pg.h"
#include "../core/banned.h"

struct board {
	int64_t station_id;
	int streams;
	int dirty_alerts, dirty_arrivals;
	int64_t arrivals_due; /* ms */
	int64_t alerts_due;   /* ms: an alert starts or ends by time (0: none known) */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct board *boards;
	int n, cap;
	int64_t last_id;
	int stopping, running;
	pthread_t thread;
	const struct config *cfg;
} V = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Event ids grow, also within a millisecond. Lock held. */
static int64_t next_id(void)
{
	int64_t now = wall_ms();
	V.last_id = now > V.last_id ? now : V.last_id + 1;
	return V.last_id;
}

static struct board *board_of(int64_t station_id, int create)
{
	for (int i = 0; i < V.n; i++)
		if (V.boards[i].station_id == station_id)
			return &V.boards[i];
	if (!create)
		return NULL;
	if (V.n == V.cap) {
		V.cap = V.cap ? 2 * V.cap : 16;
		V.boards = xrealloc(V.boards, (size_t)V.cap * sizeof(*V.boards));
	}
	struct board *b = &V.boards[V.n++];
	memset(b, 0, sizeof(*b));
	b->station_id = station_id;
	return b;
}

/* "event: NAME / id / data" with the document on one line (JSON keeps its
 * own newlines escaped, so raw ones are only layout). */
static void add_event(struct buf *out, const char *name, int64_t id, const char *doc, size_t len)
{
	buf_addf(out, "id: %lld\nevent: %s\ndata: ", (long long)id, name);
	for (size_t i = 0; i < len; i++)
		buf_addch(out, doc[i] == '\n' || doc[i] == '\r' ? ' ' : doc[i]);
	buf_adds(out, "\n\n");
}

/* The station's documents as events into out; -1 with err. */
static int snapshot(struct pg *db, struct arena *a, int64_t station_id, int arrivals, int alerts, struct buf *out,
		    struct api_error *err)
{
	struct buf doc = BUF_INIT;
	int rc = 0;
	if (arrivals && !(rc = network_arrivals(db, a, station_id, &doc, err))) {
		pthread_mutex_lock(&V.lock);
		int64_t id = next_id();
		pthread_mutex_unlock(&V.lock);
		add_event(out, "arrivals", id, doc.ptr, doc.len);
	}
	buf_reset(&doc);
	if (!rc && alerts && !(rc = network_alerts(db, a, station_id, 1, &doc, err))) {
		pthread_mutex_lock(&V.lock);
		int64_t id = next_id();
		pthread_mutex_unlock(&V.lock);
		add_event(out, "alerts", id, doc.ptr, doc.len);
	}
	buf_release(&doc);
	return rc;
}

/* The stream topic of a station's live board (evloop_publish fans out by it). */
#define TOPIC_FMT "station:%lld"

void station_live(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t id = req->ids[0];
	struct buf *out = reply(req, 200);
	if (network_station(&w->primary, &req->arena, id, out, &e))
		goto fail;
	buf_reset(out);
	buf_adds(out, "retry: 2000\n\n");
	if (snapshot(&w->primary, &req->arena, id, 1, 1, out, &e))
		goto fail;
	req->res.content_type = "text/event-stream";
	req->res.stream_topic = arena_printf(&req->arena, TOPIC_FMT, (long long)id);
	pthread_mutex_lock(&V.lock);
	struct board *b = board_of(id, 1);
	b->streams++;
	/* A change between the snapshot and the stream's start would be missed:
	 * the next round sends both again (a repeated snapshot is harmless). */
	b->dirty_alerts = b->dirty_arrivals = 1;
	pthread_cond_signal(&V.wake);
	pthread_mutex_unlock(&V.lock);
	return;
fail:
	reply_problem(req, &e);
}

void live_stream_closed(const char *topic)
{
	long long id;
	if (sscanf(topic, "station:%lld", &id) != 1)
		return;
	pthread_mutex_lock(&V.lock);
	struct board *b = board_of(id, 0);
	if (b && --b->streams <= 0)
		*b = V.boards[--V.n];
	pthread_mutex_unlock(&V.lock);
}

void live_invalidated(const char *key)
{
	long long id;
	char what[16];
	const char *k = key;
	if (!strcmp(key, "*")) {
		pthread_mutex_lock(&V.lock);
		for (int i = 0; i < V.n; i++)
			V.boards[i].dirty_alerts = V.boards[i].dirty_arrivals = 1;
		pthread_cond_signal(&V.wake);
		pthread_mutex_unlock(&V.lock);
		return;
	}
	size_t prefix = strlen(cache_prefix());
	if (!strncmp(k, cache_prefix(), prefix))
		k += prefix;
	if (sscanf(k, "station:%lld:%15s", &id, what) != 2)
		return;
	pthread_mutex_lock(&V.lock);
	struct board *b = board_of(id, 0);
	if (b) {
		if (!strcmp(what, "alerts"))
			b->dirty_alerts = 1;
		else if (!strcmp(what, "arrivals"))
			b->dirty_arrivals = 1;
		pthread_cond_signal(&V.wake);
	}
	pthread_mutex_unlock(&V.lock);
}

/* Sends what changed (and the arrivals that are due) to each board's streams. */
static void *live_main(void *arg)
{
	(void)arg;
	struct pg db;
	pg_init(&db, V.cfg->database_url, V.cfg, 1);
	pthread_mutex_lock(&V.lock);
	while (!V.stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&V.wake, &V.lock, &until);
		int64_t now = wall_ms();
		for (int i = 0; i < V.n && !V.stopping; i++) {
			struct board *b = &V.boards[i];
			int arrivals = b->dirty_arrivals || now >= b->arrivals_due;
			int alerts = b->dirty_alerts || (b->alerts_due && now >= b->alerts_due);
			if (!arrivals && !alerts)
				continue;
			int64_t station = b->station_id;
			b->dirty_arrivals = b->dirty_alerts = 0;
			if (arrivals)
				b->arrivals_due = now + LIVE_ARRIVALS_MS;
			if (alerts)
				b->alerts_due = 0;
			pthread_mutex_unlock(&V.lock); /* boards may move meanwhile: i is only a cursor */
			struct arena a;
			struct api_error e;
			struct buf events = BUF_INIT;
			arena_init(&a);
			char topic[48];
			snprintf(topic, sizeof(topic), TOPIC_FMT, (long long)station);
			int64_t next_change = 0;
			if (snapshot(&db, &a, station, arrivals, alerts, &events, &e) == 0) {
				evloop_publish(topic, events.ptr, events.len);
				if (alerts && network_alerts_next_change(&db, &a, station, &next_change, &e))
					log_msg(LOG_WARN, "live board %lld: %s", (long long)station, e.detail);
			} else {
				log_msg(LOG_WARN, "live board %lld: %s", (long long)station, e.detail);
			}
			buf_release(&events);
			arena_release(&a);
			pthread_mutex_lock(&V.lock);
			/* An alert that ends (or starts) at a set time changes the board
			 * with no write to tell: read it again then. */
			struct board *again = next_change ? board_of(station, 0) : NULL;
			if (again && (!again->alerts_due || next_change < again->alerts_due))
				again->alerts_due = next_change;
		}
	}
	pthread_mutex_unlock(&V.lock);
	pg_close(&db);
	return NULL;
}

int live_start(const struct config *cfg)
{
	V.cfg = cfg;
	if (pthread_create(&V.thread, NULL, live_main, NULL)) {
		log_msg(LOG_ERROR, "cannot start the live board thread");
		return -1;
	}
	V.running = 1;
	return 0;
}

void live_stop(void)
{
	if (!V.running)
		return;
	pthread_mutex_lock(&V.lock);
	V.stopping = 1;
	pthread_cond_signal(&V.wake);
	pthread_mutex_unlock(&V.lock);
	pthread_join(V.thread, NULL);
	V.running = 0;
	free(V.boards);
	V.boards = NULL;
	V.n = V.cap = 0;
}

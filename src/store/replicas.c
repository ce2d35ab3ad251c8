#include "replicas.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "pg.h"
#include "../core/banned.h"

#define SAMPLES 512 /* of the primary's position: about 50 s at REPLICA_CHECK_MS */

struct replica {
	struct pg pg;
	char *url;
	char *shown; /* url without its password */
	int up;
	int64_t lag_ms;
	uint64_t replay_lsn;
	unsigned long reads, skipped;
	int was_up; /* for logging changes */
};

static struct {
	struct replica *r;
	int n;
	int max_lag_ms;
	struct pg primary;
	struct {
		int64_t t_ms;
		uint64_t lsn;
	} samples[SAMPLES];
	int nsamples, next;
	pthread_t thread;
	int stopping;
} R;

uint64_t lsn_parse(const char *text)
{
	unsigned long hi, lo;
	char end;
	if (!text || sscanf(text, "%lx/%lx%c", &hi, &lo, &end) != 2 || hi > 0xffffffffUL || lo > 0xffffffffUL)
		return 0;
	return ((uint64_t)hi << 32) | lo;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The one-row, one-column answer of sql as a WAL position, or 0. */
static uint64_t position(struct pg *pg, const char *sql)
{
	struct api_error ignored;
	if (pg_connect(pg, &ignored))
		return 0;
	PGresult *res = PQexec(pg->conn, sql);
	uint64_t lsn = 0;
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		lsn = lsn_parse(PQgetvalue(res, 0, 0));
	else
		pg_close(pg);
	PQclear(res);
	return lsn;
}

/* How long ago the primary was at lsn: the age of the first sample past it. */
static int64_t lag_of(uint64_t lsn, int64_t now)
{
	if (!R.nsamples)
		return -1;
	int newest = (R.next + SAMPLES - 1) % SAMPLES;
	if (lsn >= R.samples[newest].lsn)
		return 0;
	int oldest = R.nsamples < SAMPLES ? 0 : R.next;
	for (int k = 0; k < R.nsamples; k++) {
		int i = (oldest + k) % SAMPLES;
		if (R.samples[i].lsn > lsn)
			return now - R.samples[i].t_ms;
	}
	return now - R.samples[oldest].t_ms;
}

static void check(void)
{
	int64_t now = mono_ms();
	uint64_t head = position(&R.primary, "SELECT pg_current_wal_lsn()::text");
	if (head) {
		R.samples[R.next].t_ms = now;
		R.samples[R.next].lsn = head;
		R.next = (R.next + 1) % SAMPLES;
		if (R.nsamples < SAMPLES)
			R.nsamples++;
	}
	for (int i = 0; i < R.n; i++) {
		struct replica *r = &R.r[i];
		uint64_t replay = position(&r->pg, "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
						   "ELSE pg_current_wal_lsn() END::text");
		int up = replay != 0;
		int64_t lag = up && head ? lag_of(replay, now) : -1;
		__atomic_store_n(&r->replay_lsn, replay, __ATOMIC_RELAXED);
		__atomic_store_n(&r->lag_ms, lag, __ATOMIC_RELAXED);
		__atomic_store_n(&r->up, up, __ATOMIC_RELEASE);
		if (up != r->was_up)
			log_msg(up ? LOG_INFO : LOG_WARN, "replica %s is %s", r->shown, up ? "up" : "down");
		r->was_up = up;
	}
}

static void *monitor_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&R.stopping, __ATOMIC_ACQUIRE)) {
		check();
		struct timespec ts = { 0, REPLICA_CHECK_MS * 1000000L };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* postgresql://user:secret@host/db → postgresql://user@host/db */
static char *without_password(const char *url)
{
	char *s = xstrdup(url);
	char *auth = strstr(s, "://");
	char *at = auth ? strchr(auth + 3, '@') : NULL;
	char *colon = at ? memchr(auth + 3, ':', (size_t)(at - auth - 3)) : NULL;
	if (colon)
		memmove(colon, at, strlen(at) + 1);
	return s;
}

int replicas_start(const struct config *cfg)
{
	R.max_lag_ms = cfg->replica_max_lag_ms;
	for (const char *p = cfg->replica_urls; *p;) {
		size_t l = strcspn(p, ",");
		if (l) {
			R.r = xrealloc(R.r, (size_t)(R.n + 1) * sizeof(*R.r));
			struct replica *r = &R.r[R.n++];
			memset(r, 0, sizeof(*r));
			r->url = xstrndup(p, l);
			r->shown = without_password(r->url);
			r->lag_ms = -1;
			pg_init(&r->pg, r->url, cfg, 0);
		}
		p += l + (p[l] == ',');
	}
	if (!R.n)
		return 0;
	pg_init(&R.primary, cfg->database_url, cfg, 0);
	check(); /* know the replicas before the first request */
	if (pthread_create(&R.thread, NULL, monitor_main, NULL)) {
		log_msg(LOG_ERROR, "cannot start the replica monitor");
		return -1;
	}
	return 0;
}

void replicas_stop(void)
{
	if (!R.n)
		return;
	__atomic_store_n(&R.stopping, 1, __ATOMIC_RELEASE);
	pthread_join(R.thread, NULL);
	pg_close(&R.primary);
	for (int i = 0; i < R.n; i++) {
		pg_close(&R.r[i].pg);
		free(R.r[i].url);
		free(R.r[i].shown);
	}
	free(R.r);
	R.r = NULL;
	R.n = 0;
}

int replicas_count(void)
{
	return R.n;
}

int replicas_usable(int i, uint64_t lsn)
{
	struct replica *r = &R.r[i];
	int64_t lag = __atomic_load_n(&r->lag_ms, __ATOMIC_RELAXED);
	int ok = __atomic_load_n(&r->up, __ATOMIC_ACQUIRE) && lag >= 0 && lag <= R.max_lag_ms &&
		 __atomic_load_n(&r->replay_lsn, __ATOMIC_RELAXED) >= lsn;
	__atomic_add_fetch(ok ? &r->reads : &r->skipped, 1, __ATOMIC_RELAXED);
	return ok;
}

void replicas_mark_down(int i)
{
	__atomic_store_n(&R.r[i].up, 0, __ATOMIC_RELEASE);
}

void replicas_status(int i, struct replica_status *out)
{
	struct replica *r = &R.r[i];
	out->url = r->shown;
	out->up = __atomic_load_n(&r->up, __ATOMIC_ACQUIRE);
	out->lag_ms = __atomic_load_n(&r->lag_ms, __ATOMIC_RELAXED);
	out->replay_lsn = __atomic_load_n(&r->replay_lsn, __ATOMIC_RELAXED);
	out->reads = __atomic_load_n(&r->reads, __ATOMIC_RELAXED);
	out->skipped = __atomic_load_n(&r->skipped, __ATOMIC_RELAXED);
}

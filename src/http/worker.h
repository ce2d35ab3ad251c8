#ifndef TRANSITD_WORKER_H
#define TRANSITD_WORKER_H
/*
 * The worker pool: a bounded queue of suspended requests and a fixed set of
 * threads, each owning its connections (primary, optional replica, Redis,
 * broker), so a handler runs plain blocking calls without sharing anything.
 * A write whose card is busy on another worker waits in the card's lane
 * (lanes.h) instead of holding this one.
 *
 * The I/O thread reserves a queue slot before it suspends a connection, so
 * a full queue is answered with 503 at once and a reserved slot can never
 * fail to be used.
 */
#include "../core/config.h"
#include "../store/pg.h"
#include "../store/broker.h"
#include "../store/redis.h"
#include "http.h"

struct worker {
	int id;
	struct pg primary;
	struct pg replica;
	int replica_index;  /* of this worker's replica (replicas.h), -1 without one */
	/* The read of the current request: by default on the primary; a cache
	 * fill that knows the WAL position it needs may go to the replica. */
	int read_on_replica; /* allowed */
	uint64_t read_lsn;   /* the position the read needs */
	int read_used_replica;
	struct redis redis;
	struct broker broker;  /* connected on first use */
};

/* Sets up a worker's connections (none opened yet); id < 0 for threads
 * that are not in the pool (the command consumers). */
void worker_init(struct worker *w, const struct config *cfg, int id);

/* The connection for the current request's reads: the replica when the
 * read may use it (see above) and it is up, lagging less than
 * REPLICA_MAX_LAG_MS and past read_lsn; else the primary. */
struct pg *worker_read_db(struct worker *w);

/* Invalidates cache keys after a write (cache_invalidate), tagging them with
 * the primary's WAL position when replicas are in use, so that a refill of
 * those keys never reads a replica that has not replayed the write. */
void worker_invalidate(struct worker *w, struct arena *a, const char *const *keys, size_t n);

/* What the workers run around a request's handler. */
struct worker_ops {
	/* The dispatcher's last stage, run on the worker before the handler,
	 * for every request (each of a lane batch too): 0, go on; -1, req was
	 * answered and its handler is not run. NULL: every request goes on. */
	int (*admit)(struct request *req, struct worker *w);
	/* Run instead of the handler for a request marked async (api/async.h). */
	route_handler async_run;
	/* Hands an answered request back (on the worker thread). */
	void (*done)(struct request *req);
};

/* Starts cfg->workers threads running ops. 0 or -1. */
int workers_start(const struct config *cfg, const struct worker_ops *ops);
/* Reserves a queue slot: 0, or -1 when the queue is full. */
int workers_reserve(void);
/* Queues a request into a reserved slot. */
void workers_submit(struct request *req);
/* Lets the queue drain, then joins every thread. */
void workers_stop(void);

int workers_queue_depth(void);
int workers_busy(void);
int workers_count(void);

#endif

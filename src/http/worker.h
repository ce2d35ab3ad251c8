#ifndef TRANSITD_WORKER_H
#define TRANSITD_WORKER_H
/*
 * The worker pool: a bounded queue of suspended requests and a fixed set of
 * threads, each owning its connections (primary, optional replica, Redis),
 * so a handler runs plain blocking calls without sharing anything.
 *
 * The I/O thread reserves a queue slot before it suspends a connection, so
 * a full queue is answered with 503 at once and a reserved slot can never
 * fail to be used.
 */
#include "../core/config.h"
#include "../store/pg.h"
#include "../store/redis.h"
#include "http.h"

struct worker {
	int id;
	struct pg primary;
	struct pg replica;
	int has_replica;
	struct redis redis;
};

/* The connection for reads: the replica when configured and up, else the primary. */
struct pg *worker_read_db(struct worker *w);

/* Starts cfg->workers threads; done(req) is called on the worker thread
 * after the handler has answered. 0 or -1. */
int workers_start(const struct config *cfg, void (*done)(struct request *));
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

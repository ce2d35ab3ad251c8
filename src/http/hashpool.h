#ifndef TRANSITD_HASHPOOL_H
#define TRANSITD_HASHPOOL_H
/*
 * The password pool: a few threads of its own, with a short bounded queue,
 * for the requests whose route has a prepare stage (registration: a 64 MiB
 * Argon2id hash). A worker never waits on such a hash, so a burst of
 * registrations cannot take the workers from other routes; when this pool
 * is full the request is answered 503 + Retry-After at once.
 *
 * A pooled request runs route->prepare on a pool thread (which owns a Redis
 * connection for rate limits, and no database connection). If prepare
 * answered (a 422, a 429) the request goes back to its I/O thread;
 * otherwise it is queued for a worker, which runs route->handler with what
 * prepare left in req->stage (503 when the worker queue is full).
 */
#include "../core/config.h"
#include "http.h"

/* Starts cfg->password_hashers threads with room for cfg->password_queue
 * waiting requests; done(req) hands an answered request back. 0 or -1. */
int hashpool_start(const struct config *cfg, void (*done)(struct request *));
/* Queues req for its prepare stage: 0, or -1 when the pool is full. I/O thread. */
int hashpool_submit(struct request *req);
/* Runs what is queued, then joins the threads. */
void hashpool_stop(void);

int hashpool_depth(void);

#endif

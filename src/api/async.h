#ifndef TRANSITD_ASYNC_H
#define TRANSITD_ASYNC_H
/*
 * Asynchronous commands through the message broker (store/broker.h).
 *
 * A POST on a route marked ROUTE_ASYNC, sent with Prefer: respond-async
 * while AMQP_URL is set, goes to a worker as usual, which runs
 * async_submit instead of the handler: the route's own checks (so bad
 * input gets its 4xx at once), an operation row (pending, owner, route,
 * request), the command published to the durable queue, and 202 with
 * Location: /api/v1/operations/{id} once the broker confirmed it. Without
 * a confirm the operation is marked failed and the answer is 503.
 *
 * Consumer threads (ASYNC_CONSUMERS of them, each with its own database,
 * Redis and broker connections) take commands from the queue and run the
 * route's handler on a request rebuilt from the operation row, with the
 * operation id as its Idempotency-Key: the effect and its stored answer
 * commit together, so a redelivered command finds its answer and has no
 * second effect. The outcome is written to the operation, then the message
 * is acked. Business failures (4xx) end the operation failed with their
 * problem; an unavailable database is waited out; anything else is given
 * back to the queue, which dead-letters it after AMQP_DELIVERY_LIMIT
 * deliveries, and a dead-letter consumer ends its operation failed.
 */
#include "../core/buf.h"
#include "../core/config.h"
#include "../http/http.h"
#include "../http/worker.h"

void async_register(void);
/* Starts the consumers (none without AMQP_URL). 0 or -1. */
int async_start(const struct config *cfg, const struct route *routes, size_t nroutes);
/* Lets each consumer finish its message, then joins them. */
void async_stop(void);

/* On a worker, for a request the dispatcher marked async. */
void async_submit(struct request *req, struct worker *w);

/* Counters for /metrics. */
void async_metrics(struct buf *out);
/* Messages taken by this process's consumers and not yet acked. */
long async_unacked(void);

#endif

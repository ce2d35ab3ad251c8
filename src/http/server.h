#ifndef TRANSITD_SERVER_H
#define TRANSITD_SERVER_H
/*
 * The HTTP server: what a request means (route, roles, body checks,
 * near-cache, hand-off to the password pool or a worker, the per-client
 * budget on the worker) on top of the I/O threads of evloop.h, which read
 * and write the bytes. README.md tells a request's life.
 */
#include <stddef.h>

#include "../core/config.h"
#include "http.h"

/* async_run: what a worker runs for a request marked async (api/async.h). */
int server_start(const struct config *cfg, const struct route *routes, size_t n, route_handler async_run);
/* Stops accepting, lets in-flight requests finish (at most timeout_s), then
 * stops the password pool, the workers and the I/O threads. Blocks; safe to
 * call once. */
void server_stop(int timeout_s);

/* Called when a stream (evloop.h) on topic ends. */
void server_on_stream_closed(void (*fn)(const char *topic));

/* Marks the server as stopping: /readyz answers 503 while it still serves
 * (SHUTDOWN_DELAY_MS), so that load balancers stop sending requests before
 * server_stop closes the listener. */
void server_begin_drain(void);
int server_draining(void);

/* Requests begun (their first byte read) and not yet completed
 * (request_inflight). */
int server_inflight(void);

#endif

#ifndef TRANSITD_SERVER_H
#define TRANSITD_SERVER_H
/*
 * The HTTP server: what a request means (route, roles, body checks,
 * near-cache, hand-off to a worker) on top of the I/O threads of
 * evloop.h, which read and write the bytes.
 */
#include <stddef.h>

#include "../core/config.h"
#include "http.h"

int server_start(const struct config *cfg, const struct route *routes, size_t n);
/* Stops accepting, lets in-flight requests finish (at most timeout_s), then
 * stops the daemon and the workers. Safe to call once. */
void server_stop(int timeout_s);

/* Requests begun (their first byte read) and not yet completed. */
int server_inflight(void);

/* A new request with its id; counted in flight until server_request_free. */
struct request *server_request_new(void);
void server_request_free(struct request *req);

#endif

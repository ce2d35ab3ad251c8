#ifndef TRANSITD_SERVER_H
#define TRANSITD_SERVER_H
/*
 * The HTTP server: libmicrohttpd with an epoll thread pool (the I/O
 * threads), dispatching to the route table and the worker pool.
 */
#include <stddef.h>

#include "../core/config.h"
#include "http.h"

int server_start(const struct config *cfg, const struct route *routes, size_t n);
/* Stops accepting, lets in-flight requests finish (at most timeout_s), then
 * stops the daemon and the workers. Safe to call once. */
void server_stop(int timeout_s);

/* Requests accepted and not yet completed. */
int server_inflight(void);

#endif

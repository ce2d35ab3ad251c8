#ifndef TRANSITD_EVLOOP_H
#define TRANSITD_EVLOOP_H
/*
 * The I/O threads: one epoll instance each, sharing one listening socket.
 * Connections are registered edge-triggered once and never re-armed, so the
 * cost of a wake-up follows the connections that are ready, not the ones
 * that are open. A connection belongs to the thread that accepted it for
 * its whole life; only that thread touches it.
 *
 * Per connection: framing (framing.h) turns bytes into requests one at a
 * time, in order; a request is answered at once or handed to a worker,
 * and while a worker has it the connection reads nothing more (pipelined
 * bytes wait in the connection). The worker hands the request back with
 * evloop_resume, which wakes the owning thread through an eventfd.
 *
 * Slow and greedy clients: a request head must arrive within the header
 * timeout of the connection's first byte (or of its acceptance), a body
 * within the body timeout of its head, a kept-alive connection may idle
 * for the idle timeout, and a client that stops reading its response is
 * dropped after the send timeout. Each of these is one list per thread,
 * ordered by deadline because every entry of a list has the same timeout,
 * so arming, disarming and expiring are O(1). Connections over the global
 * cap are answered 503 and closed, those over the per-address cap 429.
 *
 * Streams: a 200 response with a stream topic (Server-Sent Events) keeps its
 * connection: its body ends only when the connection does, and everything
 * published to the topic, from any thread, is written to it. A comment line
 * every 15 s keeps idle proxies from closing it. Streams are bounded per
 * instance and per client address; past a bound the stream is refused with
 * 503 or 429 instead.
 */
#include "../core/cidr.h"
#include <stddef.h>

#include "http.h"

struct evloop_config {
	const char *bind;
	int port;
	int threads;
	size_t max_body;
	int header_timeout_ms;
	int body_timeout_ms;
	int idle_timeout_ms;
	int send_timeout_ms;
	int max_connections;     /* open connections, all threads */
	int max_per_client;      /* open connections per client address; 0 = no cap */
	int max_streams;         /* open streams, all threads */
	int max_streams_per_client;
	const struct cidr *trusted; /* proxies: exempt from max_per_client, their forwarding headers read */
	int ntrusted;
};

struct evloop_ops {
	/* A whole request, or one that must be answered before its body (too
	 * large): answers it in req->res and returns 0, or hands it on (to a
	 * worker, or the password pool) and returns 1 (evloop_resume brings it
	 * back). */
	int (*dispatch)(struct request *req);
	/* Just before a response is written: headers every response carries. */
	void (*finish)(struct request *req);
	/* The response was written (sent = 1) or the connection was lost first
	 * (0). Frees req. */
	void (*complete)(struct request *req, int sent);
	/* A stream on topic ended (the client went, or the server stops). */
	void (*stream_closed)(const char *topic);
};

/* Listens and starts the threads. 0, or -1 (logged). */
int evloop_start(const struct evloop_config *cfg, const struct evloop_ops *ops);

/* From any thread: req, dispatched to a worker, has its response. */
void evloop_resume(struct request *req);

/* Stops accepting (the listening socket is closed when this returns),
 * closes idle connections, and makes every later response close its
 * connection. */
void evloop_drain(void);

/* Closes every connection and joins the threads. Call after the workers
 * have stopped, so that no request is still with a worker. */
void evloop_stop(void);

/* From any thread: writes data (whole events) to every stream on topic. */
void evloop_publish(const char *topic, const char *data, size_t len);
int evloop_streams(void);

/* Open connections, and connections refused since start by reason. */
int evloop_connections(void);
unsigned long evloop_refused_capacity(void);
unsigned long evloop_refused_client(void);
unsigned long evloop_timeouts(void);

#endif

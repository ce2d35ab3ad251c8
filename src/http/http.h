#ifndef TRANSITD_HTTP_H
#define TRANSITD_HTTP_H
/*
 * The request as handlers see it, the response they fill, and the route
 * table entry that binds them.
 *
 * Life of a request: an I/O thread (evloop.c) reads it off the connection
 * (framing.c), matches a route, checks method, body size, content type and
 * JSON once, then either answers at once (ROUTE_INLINE, near-cache hit) or
 * queues the request for a worker and stops reading that connection. The
 * worker runs the handler with its own database and Redis connections and
 * hands the request back to its I/O thread, which writes the response.
 * Everything the request allocates lives in its arena and goes when the
 * response has been written.
 */
#include <jansson.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "../core/problem.h"
#include "../auth/auth.h"

struct conn;
struct worker;
struct request;
struct cache_family;

enum method {
	METHOD_GET = 1,
	METHOD_POST = 2,
	METHOD_PUT = 4,
	METHOD_PATCH = 8,
	METHOD_DELETE = 16,
	METHOD_OPTIONS = 32,
	METHOD_HEAD = 64,
};

/* Runs on a worker thread (w != NULL) or, for ROUTE_INLINE, on the I/O
 * thread (w == NULL). Always leaves a response in req->res. */
typedef void (*route_handler)(struct request *req, struct worker *w);

enum route_flags {
	ROUTE_INLINE = 1,    /* no I/O: answered on the I/O thread */
	ROUTE_JSON_BODY = 2, /* requires a JSON object body, parsed into req->json (otherwise
			      * req->body holds the raw bytes; see request_json_or_reply) */
	ROUTE_ASYNC = 4,     /* with Prefer: respond-async, published for a consumer (api/async.h) */
};

/* The checks a handler makes before its effect, for ROUTE_ASYNC routes:
 * 0, or -1 with err filled. Runs on a worker. */
typedef int (*route_check)(struct request *req, struct worker *w, struct api_error *err);

struct route {
	enum method method;
	const char *pattern; /* "/api/v1/stations/{station_id}"; {x} segments are ids ≥ 1 */
	route_handler handler;
	const char *handler_name; /* for `transitd routes --table` */
	unsigned flags;
	unsigned roles; /* enum role bits allowed; 0 = public */
	struct cache_family *cache; /* cache-aside family (counts hits), or NULL */
	route_check check;          /* ROUTE_ASYNC: the checks before publishing */
	/* CPU-heavy first stage (a password hash), run on the password pool
	 * (hashpool.h) before the handler; it may answer, or leave its work in
	 * req->stage for the handler. NULL for almost every route. */
	route_handler prepare;
	/* Writes of one card run one at a time per instance, and wait without a
	 * worker (http/lanes.h): the card the request writes (its lane), or 0. */
	int64_t (*lane)(struct request *req);
	/* Runs 2..LANE_BATCH_MAX requests of one lane at once, answering each
	 * (as the handler would); NULL: they run one by one. */
	void (*lane_batch)(struct request **reqs, int n, struct worker *w);
};

#define REQUEST_MAX_IDS 3

struct query_param {
	const char *name;
	const char *value;
};

struct http_header {
	const char *name;
	const char *value;
};

struct response {
	int status; /* 0 until a handler answers */
	struct buf body;
	const char *static_body; /* instead of body: bytes that outlive the request (static files) */
	size_t static_len;
	/* A 200 with a topic becomes a stream (Server-Sent Events): body is its
	 * first events, and every evloop_publish to the topic follows it. */
	const char *stream_topic;
	const char *content_type;
	const char *x_cache; /* "HIT", "MISS", "BYPASS" or NULL */
	const char *page_csp; /* an HTML page: its Content-Security-Policy (outlives the request) */
	const char *headers[24][2];
	int nheaders;
};

struct request {
	struct arena arena;
	struct conn *conn;       /* owned by an I/O thread; NULL in unit tests */
	struct request *next;    /* in the I/O thread's list of answered requests, or parked in a lane */
	const struct route *route;
	enum method method;
	const char *method_name;
	const char *raw_target;  /* as received */
	const char *path;        /* percent-decoded */
	const char *query_string; /* raw, after '?', or NULL */
	struct http_header *headers;
	int nheaders;
	int http_minor;          /* HTTP/1.<minor> */
	int keep_alive;          /* the client allows another request on this connection */
	int expect_continue;     /* Expect: 100-continue, and a body is coming */
	int async;               /* to publish, not to run (ROUTE_ASYNC, respond-async, a broker) */
	int64_t ids[REQUEST_MAX_IDS]; /* path parameters, in pattern order */
	int nids;
	struct query_param *query;
	int nquery;
	const char *bad_query; /* a query parameter that cannot be accepted */
	const char *request_id;
	const char *trace_id;
	const char *content_type;
	const char *authorization;
	const char *idempotency_key;
	const char *prefer;
	const char *origin;
	const char *client;      /* the client's address (the peer, or behind a trusted proxy the
				  * address it forwarded): the rate-limit key without a token */
	int via_proxy;           /* the peer is a trusted proxy */
	struct principal *auth;  /* the verified caller, NULL on public routes */
	struct buf body;
	int body_too_large;
	int bad_path;            /* the raw path holds %00 */
	json_t *json;         /* parsed body for ROUTE_JSON_BODY routes */
	void *stage;          /* what route->prepare left for the handler (in the arena) */
	const char *cache_key;   /* Redis key when route->cache is set */
	const char *cache_field; /* hash field of the variant, or NULL */
	const char *near_key;    /* near-cache key, NULL when not cacheable */
	uint64_t start_ns;
	int state;
	struct response res;
};

/* A new request with its arena and a fresh id (32 hex digits); counted in
 * flight until request_free. Any thread. */
struct request *request_new(void);
/* Frees req: its parsed body, its buffers and its arena. */
void request_free(struct request *req);
/* Requests made and not yet freed (server_inflight). */
int request_inflight(void);

/* The first value of header name (any case), or NULL. */
const char *request_header(const struct request *req, const char *name);

#define MAX_QUERY_PARAMS 32
/* Splits req->query_string into req->query (percent-decoded, '+' as a
 * space; the first occurrence of a name wins; at most MAX_QUERY_PARAMS).
 * A name or value holding an encoded NUL or bytes that are not UTF-8 sets
 * req->bad_query (to the name, or "query" when the name itself is bad). */
void request_parse_query(struct request *req);

/* The value of query parameter name, or NULL. */
const char *request_query(const struct request *req, const char *name);

/* Parses the body into req->json as the dispatcher does for ROUTE_JSON_BODY
 * routes, for a handler that must see the raw bytes first (a signed
 * webhook). 0, or -1 with req answered 415, 400 or 422. */
int request_json_or_reply(struct request *req);

/* Sets status and returns the body to write JSON into (content type JSON). */
struct buf *reply(struct request *req, int status);
void reply_json(struct request *req, int status, const char *json, size_t len);
void reply_problem(struct request *req, const struct api_error *e);
void reply_header(struct request *req, const char *name, const char *value);

uint64_t now_ns(void);

/* Logs a security event of req (log_security): never a secret in detail. */
void security_event(const struct request *req, const char *event, const char *detail);

#endif

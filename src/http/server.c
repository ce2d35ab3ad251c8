#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/json.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../store/cache.h"
#include "../store/nearcache.h"
#include "evloop.h"
#include "forwarded.h"
#include "framing.h"
#include "hashpool.h"
#include "ratelimit.h"
#include "router.h"
#include "worker.h"
#include "../core/banned.h"


static const struct config *cfg;
static const struct route *routes;
static size_t nroutes;
static int started;
static int draining;

void server_begin_drain(void)
{
	__atomic_store_n(&draining, 1, __ATOMIC_RELEASE);
}

int server_draining(void)
{
	return __atomic_load_n(&draining, __ATOMIC_ACQUIRE);
}

int server_inflight(void)
{
	return request_inflight();
}

static int valid_request_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.' || c == ':'))
			return 0;
	}
	return n > 0 && n <= 128;
}

/* The 32-hex-digit trace id of a W3C traceparent, or NULL. */
static const char *trace_id_of(struct request *req, const char *tp)
{
	if (!tp || strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-')
		return NULL;
	for (int i = 3; i < 35; i++)
		if (!strchr("0123456789abcdef", tp[i]))
			return NULL;
	return arena_strndup(&req->arena, tp + 3, 32);
}

/* Answers req with the problem slug, its detail formatted as api_fail's,
 * and returns -1: the last step of every ..._or_reply below. */
static int fail_reply(struct request *req, const char *slug, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_reply(struct request *req, const char *slug, const char *fmt, ...)
{
	struct api_error e;
	va_list ap;
	va_start(ap, fmt);
	api_failv(&e, slug, fmt, ap);
	va_end(ap);
	reply_problem(req, &e);
	return -1;
}

/* Checks the bearer token against the route's roles: 0, or -1 with req
 * answered 401, 403 or 503. */
static int authorize_or_reply(struct request *req)
{
	const char *h = req->authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) || !h[7]) {
		fail_reply(req, "unauthorized", "a bearer token is required");
		reply_header(req, "WWW-Authenticate", "Bearer");
		return -1;
	}
	struct principal *p = arena_zalloc(&req->arena, sizeof(*p));
	switch (token_verify(h + 7, p)) {
	case TOKEN_OK:
		break;
	case TOKEN_UNVERIFIABLE:
		fail_reply(req, "unavailable", "token revocations cannot be checked right now");
		reply_header(req, "Retry-After", "1");
		return -1;
	default:
		fail_reply(req, "unauthorized", "the token is invalid, expired or revoked");
		reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		return -1;
	}
	req->auth = p;
	if (!(req->route->roles & p->role)) {
		security_event(req, "role-denied", role_name(p->role));
		return fail_reply(req, "forbidden", "the %s role may not do this", role_name(p->role));
	}
	return 0;
}

/* The headers handlers read, once the head is complete. */
static void request_prepare(struct request *req)
{
	const char *rid = request_header(req, "X-Request-ID");
	if (rid && valid_request_id(rid))
		req->request_id = rid;
	req->trace_id = trace_id_of(req, request_header(req, "traceparent"));
	req->content_type = request_header(req, "Content-Type");
	req->authorization = request_header(req, "Authorization");
	req->idempotency_key = request_header(req, "Idempotency-Key");
	req->prefer = request_header(req, "Prefer");
	req->origin = request_header(req, "Origin");
	unsigned char addr[16];
	if (req->via_proxy &&
	    forwarded_client(req->headers, req->nheaders, cfg->trusted_proxies, cfg->ntrusted_proxies, addr) == 0) {
		char *text = arena_alloc(&req->arena, ADDR_TEXT_MAX);
		addr_format(addr, text);
		req->client = text;
	} else {
		req->client = arena_strdup(&req->arena, req->client ? req->client : "unknown");
	}
}

static int is_json_media_type(const char *ct)
{
	if (!ct)
		return 0;
	size_t n = strcspn(ct, "; \t");
	if (n == 16 && !strncasecmp(ct, "application/json", 16))
		return 1;
	return n > 5 && !strncasecmp(ct + n - 5, "+json", 5) && !strncasecmp(ct, "application/", 12);
}

int request_json_or_reply(struct request *req)
{
	struct api_error e;
	if (!is_json_media_type(req->content_type))
		return fail_reply(req, "unsupported-media-type", "Content-Type must be application/json, not %s",
				  req->content_type ? req->content_type : "(none)");
	if (json_parse_body(req->body.ptr, req->body.len, &req->json, &e)) {
		reply_problem(req, &e);
		return -1;
	}
	return 0;
}

/* Headers every response carries, added just before it is written. */
static void finish(struct request *req)
{
	reply_header(req, "X-Request-ID", req->request_id);
	/* Nothing here is meant to be sniffed into another type (a JSON body as HTML). */
	reply_header(req, "X-Content-Type-Options", "nosniff");
	if (req->res.page_csp) {
		reply_header(req, "Content-Security-Policy", req->res.page_csp);
		reply_header(req, "Referrer-Policy", "no-referrer");
		reply_header(req, "X-Frame-Options", "DENY");
	}
	if (req->res.x_cache)
		reply_header(req, "X-Cache", req->res.x_cache);
	if (!req->origin || !config_origin_allowed(cfg, req->origin))
		return;
	reply_header(req, "Access-Control-Allow-Origin", req->origin);
	reply_header(req, "Vary", "Origin");
	reply_header(req, "Access-Control-Expose-Headers",
		     "X-Request-ID, X-Cache, Retry-After, RateLimit, RateLimit-Policy, Location, Idempotent-Replayed");
}

static void preflight(struct request *req, unsigned allow)
{
	char methods[96];
	router_allow_string(allow | METHOD_OPTIONS, methods, sizeof(methods));
	reply(req, 204);
	reply_header(req, "Allow", methods);
	if (req->origin && config_origin_allowed(cfg, req->origin) &&
	    request_header(req, "Access-Control-Request-Method")) {
		reply_header(req, "Access-Control-Allow-Methods", methods);
		reply_header(req, "Access-Control-Allow-Headers",
			     "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Prefer, traceparent");
		reply_header(req, "Access-Control-Max-Age", "600");
	}
}

/* Prefer: respond-async, among other preferences (RFC 7240). */
static int prefers_async(const char *prefer)
{
	for (const char *p = prefer; p && *p;) {
		p += strspn(p, " \t,");
		size_t n = strcspn(p, ",;= \t");
		if (n == 13 && !strncasecmp(p, "respond-async", 13))
			return 1;
		p += strcspn(p, ",");
	}
	return 0;
}

/* Sets query parameter name to value (the canonical text of a cache family). */
static void query_replace(struct request *req, const char *name, const char *value)
{
	for (int i = 0; i < req->nquery; i++) {
		if (!strcmp(req->query[i].name, name)) {
			req->query[i].value = value;
			return;
		}
	}
	if (value && req->nquery < MAX_QUERY_PARAMS) {
		req->query[req->nquery].name = name;
		req->query[req->nquery].value = value;
		req->nquery++;
	}
}

/* Fills the cache keys of a request from its route's family, ids and the
 * canonical values of its query: 0, or -1 with req answered 422. */
static int cache_key_or_reply(struct request *req)
{
	const struct cache_family *f = req->route->cache;
	const char *values[8];
	int n = 0;
	for (const char *const *q = f->query; q && *q && n < 8; q++)
		values[n++] = request_query(req, *q);
	if (f->normalize) {
		struct api_error e;
		if (f->normalize(req, values, &e)) {
			reply_problem(req, &e);
			return -1;
		}
		for (int i = 0; i < n; i++)
			query_replace(req, f->query[i], values[i]);
	}
	req->cache_key = cache_key(&req->arena, f, req->ids, req->nids);
	if (!f->query) {
		req->near_key = req->cache_key;
		return 0;
	}
	req->cache_field = cache_field(&req->arena, values, n);
	if (!req->cache_field)
		req->cache_key = NULL; /* absurdly long query: not cached */
	else
		req->near_key = arena_printf(&req->arena, "%s#%s", req->cache_key, req->cache_field);
	return 0;
}

/* Finds the request's route: 0, or -1 with req answered (400, 404, 405,
 * 422 for a bad id, or 204 to a CORS preflight). */
static int route_or_reply(struct request *req)
{
	unsigned allow = 0;
	char bad[64], methods[96];
	if (req->bad_path)
		return fail_reply(req, "bad-request", "the path contains an encoded NUL (%%00)");
	if (!req->method)
		return fail_reply(req, "method-not-allowed", "method %s is not supported", req->method_name);
	switch (router_match(routes, nroutes, req->method, req->path, &req->route, req->ids, &req->nids, &allow, bad,
			     sizeof(bad))) {
	case ROUTER_OK:
		return 0;
	case ROUTER_NOT_FOUND:
		return fail_reply(req, "not-found", "no resource at %s", req->path);
	case ROUTER_METHOD_NOT_ALLOWED:
		if (req->method == METHOD_OPTIONS) {
			preflight(req, allow);
			return -1;
		}
		router_allow_string(allow, methods, sizeof(methods));
		fail_reply(req, "method-not-allowed", "allowed methods: %s", methods);
		reply_header(req, "Allow", methods);
		return -1;
	case ROUTER_BAD_ID: {
		struct api_error e;
		api_fail_field(&e, bad, "must be a positive integer");
		reply_problem(req, &e);
		return -1;
	}
	}
	return 0;
}

/* What the route declares of a request: roles, body size, query text, a
 * JSON body. 0, or -1 with req answered (401, 403, 413, 415, 400, 422). */
static int admit_or_reply(struct request *req)
{
	if (req->route->roles && authorize_or_reply(req))
		return -1;
	if (req->body_too_large)
		return fail_reply(req, "payload-too-large", "the body exceeds the limit of %zu bytes",
				  cfg->max_body_bytes);
	request_parse_query(req);
	if (req->bad_query) {
		struct api_error e;
		api_fail_field(&e, req->bad_query, "must be UTF-8 text without NUL characters");
		reply_problem(req, &e);
		return -1;
	}
	if ((req->route->flags & ROUTE_JSON_BODY) && request_json_or_reply(req))
		return -1;
	return 0;
}

/* 1 when a cached read was answered from the near-cache (X-Cache: HIT)
 * or refused by its family's from_memory; 0 when a worker must answer. */
static int answered_from_memory(struct request *req)
{
	const struct cache_family *f = req->route->cache;
	const char *val;
	size_t len;
	if (!req->near_key || !f->near || cfg->near_cache_ttl_ms <= 0)
		return 0;
	int may = f->from_memory ? f->from_memory(req) : 1;
	if (may < 0)
		return 1;
	if (!may || nearcache_get_or_refresh(req->near_key, &req->arena, &val, &len))
		return 0;
	reply_json(req, 200, val, len);
	req->res.x_cache = "HIT";
	return 1;
}

/* The tail of dispatch: a cached read from the near-cache, answered here
 * (0), or the request queued for a worker (1); 0 also when it was answered
 * 422 (its cache key's query) or 503 (the queue is full). */
static int answer_or_queue(struct request *req)
{
	if (req->route->cache && (cache_key_or_reply(req) || answered_from_memory(req)))
		return 0;
	req->async = (req->route->flags & ROUTE_ASYNC) && *cfg->amqp_url && prefers_async(req->prefer);
	if (workers_reserve()) {
		fail_reply(req, "unavailable", "the server is at capacity; retry shortly");
		reply_header(req, "Retry-After", "1");
		return 0;
	}
	workers_submit(req);
	return 1;
}

/* Decides what happens to a request: answered now on the I/O thread (0),
 * or handed on (1) to a worker, or first to the password pool for a route
 * with a prepare stage; they hand it back through evloop_resume. */
static int dispatch(struct request *req)
{
	request_prepare(req);
	if (route_or_reply(req) || admit_or_reply(req))
		return 0;
	if (req->route->flags & ROUTE_INLINE) {
		req->route->handler(req, NULL);
		return 0;
	}
	if (!req->route->prepare)
		return answer_or_queue(req);
	if (hashpool_submit(req)) {
		fail_reply(req, "unavailable", "too many requests are waiting for a password hash; retry shortly");
		reply_header(req, "Retry-After", "1");
		return 0;
	}
	return 1;
}

/* Dispatch's last stage, on the worker just before the handler: the
 * per-client budget (RATE_LIMIT_PER_MINUTE). Answers from the I/O thread
 * (health, docs, near-cache hits) cost no database work and are not
 * counted; every request of a lane batch is. 0: go on; -1: req was
 * answered 429 (or 503). */
static int within_budget(struct request *req, struct worker *w)
{
	int limit = cfg->rate_limit_per_minute;
	if (!limit)
		return 0;
	const char *subject = req->auth ? arena_printf(&req->arena, "u%lld", (long long)req->auth->user_id)
					: req->client;
	return ratelimit_check(req, &w->redis, "default", subject, limit);
}

/* The response was written (sent) or the connection went first. */
static void complete(struct request *req, int sent)
{
	uint64_t us = (now_ns() - req->start_ns) / 1000;
	int status = req->res.status;
	size_t route = req->route ? (size_t)(req->route - routes) : nroutes;
	metrics_observe(route, status, us);
	cache_count(req->route ? req->route->cache : NULL, req->res.x_cache);
	struct buf line = BUF_INIT;
	if (log_begin(&line, sent ? LOG_INFO : LOG_WARN, "request")) {
		log_str(&line, "request_id", req->request_id);
		if (req->trace_id)
			log_str(&line, "trace_id", req->trace_id);
		log_str(&line, "method", req->method_name ? req->method_name : "");
		log_str(&line, "path", req->path ? req->path : "");
		log_int(&line, "status", status);
		log_int(&line, "duration_us", (int64_t)us);
		log_int(&line, "bytes", (int64_t)(req->res.static_body ? req->res.static_len : req->res.body.len));
		if (!sent)
			log_str(&line, "error", "connection closed before the response was sent");
		log_end(&line);
	}
	request_free(req);
}

static void (*on_stream_closed)(const char *topic);

void server_on_stream_closed(void (*fn)(const char *topic))
{
	on_stream_closed = fn;
}

static void stream_closed(const char *topic)
{
	if (on_stream_closed)
		on_stream_closed(topic);
}

int server_start(const struct config *c, const struct route *table, size_t n, route_handler async_run)
{
	cfg = c;
	routes = table;
	nroutes = n;
	framing_setup();
	struct worker_ops wops = { within_budget, async_run, evloop_resume };
	if (workers_start(cfg, &wops))
		return -1;
	if (hashpool_start(cfg, evloop_resume)) {
		workers_stop();
		return -1;
	}
	static const struct evloop_ops ops = { dispatch, finish, complete, stream_closed };
	struct evloop_config ec = {
		.bind = cfg->bind,
		.port = cfg->port,
		.threads = cfg->io_threads,
		.max_body = cfg->max_body_bytes,
		.header_timeout_ms = cfg->http_header_timeout_ms,
		.body_timeout_ms = cfg->http_body_timeout_ms,
		.idle_timeout_ms = cfg->http_idle_timeout_ms,
		.send_timeout_ms = cfg->http_send_timeout_ms,
		.max_connections = cfg->max_connections,
		.max_per_client = cfg->max_connections_per_client,
		.max_streams = cfg->streams_max,
		.max_streams_per_client = cfg->streams_per_client,
		.trusted = cfg->trusted_proxies,
		.ntrusted = cfg->ntrusted_proxies,
	};
	if (evloop_start(&ec, &ops)) {
		hashpool_stop();
		workers_stop();
		return -1;
	}
	started = 1;
	return 0;
}

void server_stop(int timeout_s)
{
	if (!started)
		return;
	started = 0;
	/* No new connections, idle ones closed, every answer closes its connection. */
	evloop_drain();
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000u;
	while (server_inflight() > 0 && now_ns() < deadline)
		usleep(10 * 1000);
	int left = server_inflight();
	if (left)
		log_msg(LOG_WARN, "shutdown: %d requests still in flight after %d s", left, timeout_s);
	/* The password pool hands on to workers, so it goes first; after the
	 * workers no request is away from its I/O thread. */
	hashpool_stop();
	workers_stop();
	evloop_stop();
}

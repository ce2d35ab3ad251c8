#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../core/json.h"
#include "../core/log.h"
#include "../core/metrics.h"
#include "../core/xalloc.h"
#include "../store/cache.h"
#include "../store/nearcache.h"
#include "router.h"
#include "worker.h"
#include "../core/banned.h"

enum { REQ_NEW, REQ_READING, REQ_QUEUED, REQ_DONE };

#define MAX_QUERY_PARAMS 32

static const struct config *cfg;
static const struct route *routes;
static size_t nroutes;
static struct MHD_Daemon *daemon_;
static int inflight;
static int draining; /* stopping: responses carry Connection: close */
static int closing;  /* stopping, nothing in flight: new requests are dropped */

int server_inflight(void)
{
	return __atomic_load_n(&inflight, __ATOMIC_RELAXED);
}

static const char *header(struct request *req, const char *name)
{
	const char *v = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
	return v ? arena_strdup(&req->arena, v) : NULL;
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

static const char *client_address(struct request *req)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char text[INET6_ADDRSTRLEN] = "unknown";
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, text, sizeof(text));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, text,
				  sizeof(text));
	}
	return arena_strdup(&req->arena, text);
}

/* Security events: failed logins, token reuse, role denials, rate limits.
 * Never a password or a token. */
void security_event(const struct request *req, const char *event, const char *detail)
{
	struct buf line = BUF_INIT;
	if (!log_begin(&line, LOG_WARN, "security"))
		return;
	log_str(&line, "event", event);
	log_str(&line, "request_id", req->request_id);
	log_str(&line, "client", req->client);
	log_str(&line, "path", req->path);
	if (req->auth)
		log_int(&line, "user_id", req->auth->user_id);
	if (detail)
		log_str(&line, "detail", detail);
	log_end(&line);
}

/* Checks the bearer token against the route's roles; answers and returns -1
 * when the caller may not go on. */
static int authorize(struct request *req)
{
	struct api_error e;
	const char *h = req->authorization;
	if (!h || strncasecmp(h, "Bearer ", 7) || !h[7]) {
		api_fail(&e, "unauthorized", "a bearer token is required");
		reply_problem(req, &e);
		reply_header(req, "WWW-Authenticate", "Bearer");
		return -1;
	}
	struct principal *p = arena_zalloc(&req->arena, sizeof(*p));
	switch (token_verify(h + 7, p)) {
	case TOKEN_OK:
		break;
	case TOKEN_UNVERIFIABLE:
		api_fail(&e, "unavailable", "token revocations cannot be checked right now");
		e.retry_after = 1;
		reply_problem(req, &e);
		return -1;
	default:
		api_fail(&e, "unauthorized", "the token is invalid, expired or revoked");
		reply_problem(req, &e);
		reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		return -1;
	}
	req->auth = p;
	if (!(req->route->roles & p->role)) {
		security_event(req, "role-denied", role_name(p->role));
		api_fail(&e, "forbidden", "the %s role may not do this", role_name(p->role));
		reply_problem(req, &e);
		return -1;
	}
	return 0;
}

/* Called with the raw request target before libmicrohttpd decodes it; the
 * request is born here so that what decoding hides can still be seen. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	struct request *req = xcalloc(1, sizeof(*req));
	arena_init(&req->arena);
	buf_init(&req->body);
	buf_init(&req->res.body);
	req->conn = conn;
	req->start_ns = now_ns();
	req->state = REQ_NEW;
	/* %00 would end the decoded path early and name another resource. */
	size_t plen = strcspn(uri, "?");
	for (size_t i = 0; i + 2 < plen; i++)
		if (uri[i] == '%' && uri[i + 1] == '0' && uri[i + 2] == '0')
			req->bad_path = 1;
	__atomic_add_fetch(&inflight, 1, __ATOMIC_RELAXED);
	return req;
}

static void request_init(struct request *req, const char *url, const char *method)
{
	struct MHD_Connection *conn = req->conn;
	req->state = REQ_READING;
	req->start_ns = now_ns();
	req->method = router_method_parse(method);
	req->method_name = arena_strdup(&req->arena, method);
	req->path = arena_strdup(&req->arena, url);
	const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
	if (rid && valid_request_id(rid)) {
		req->request_id = arena_strdup(&req->arena, rid);
	} else {
		unsigned char raw[16];
		char *hex = arena_alloc(&req->arena, 33);
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(hex, 33, raw, sizeof(raw));
		req->request_id = hex;
	}
	req->trace_id = trace_id_of(req, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent"));
	req->content_type = header(req, "Content-Type");
	req->authorization = header(req, "Authorization");
	req->idempotency_key = header(req, "Idempotency-Key");
	req->prefer = header(req, "Prefer");
	req->origin = header(req, "Origin");
	req->client = client_address(req);
}

static void request_free(struct request *req)
{
	if (req->json)
		json_decref(req->json);
	buf_release(&req->body);
	buf_release(&req->res.body);
	arena_release(&req->arena);
	free(req);
	__atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
				     const char *value, size_t value_size)
{
	(void)kind;
	struct request *req = cls;
	if (req->nquery == MAX_QUERY_PARAMS)
		return MHD_NO;
	/* A NUL inside a name or value would cut it short without anyone noticing. */
	if (strlen(key) != key_size || (value && strlen(value) != value_size)) {
		req->bad_query = arena_strdup(&req->arena, key);
		return MHD_NO;
	}
	if (request_query(req, key))
		return MHD_YES; /* the first occurrence wins */
	req->query[req->nquery].name = arena_strdup(&req->arena, key);
	req->query[req->nquery].value = arena_strdup(&req->arena, value ? value : "");
	req->nquery++;
	return MHD_YES;
}

static void fail(struct request *req, const char *slug, const char *fmt, const char *arg)
{
	struct api_error e;
	api_fail(&e, slug, fmt, arg);
	reply_problem(req, &e);
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

static void add_cors(struct request *req, struct MHD_Response *r)
{
	if (!req->origin || !config_origin_allowed(cfg, req->origin))
		return;
	MHD_add_response_header(r, "Access-Control-Allow-Origin", req->origin);
	MHD_add_response_header(r, "Vary", "Origin");
	MHD_add_response_header(r, "Access-Control-Expose-Headers",
				"X-Request-ID, X-Cache, Retry-After, RateLimit, RateLimit-Policy, Location, "
				"Idempotent-Replayed");
}

static void preflight(struct request *req, unsigned allow)
{
	char methods[96];
	router_allow_string(allow | HTTP_OPTIONS, methods, sizeof(methods));
	reply(req, 204);
	reply_header(req, "Allow", methods);
	if (req->origin && config_origin_allowed(cfg, req->origin) &&
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
		reply_header(req, "Access-Control-Allow-Methods", methods);
		reply_header(req, "Access-Control-Allow-Headers",
			     "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Prefer, traceparent");
		reply_header(req, "Access-Control-Max-Age", "600");
	}
}

/* Fills the cache keys of a request from its route's family, ids and query. */
static void make_cache_key(struct request *req)
{
	const struct cache_family *f = req->route->cache;
	const char *values[8];
	int n = 0;
	for (const char *const *q = f->query; q && *q && n < 8; q++)
		values[n++] = request_query(req, *q);
	req->cache_key = cache_key(&req->arena, f, req->ids, req->nids);
	if (!f->query) {
		req->near_key = req->cache_key;
		return;
	}
	req->cache_field = cache_field(&req->arena, values, n);
	if (!req->cache_field)
		req->cache_key = NULL; /* absurdly long query: not cached */
	else
		req->near_key = arena_printf(&req->arena, "%s#%s", req->cache_key, req->cache_field);
}

static void worker_done(struct request *req)
{
	req->state = REQ_DONE;
	MHD_resume_connection(req->conn);
}

/* Decides what happens to a fully read request: answered now (state DONE)
 * or queued for a worker (state QUEUED, connection suspended). */
static void dispatch(struct request *req)
{
	struct api_error e;
	unsigned allow = 0;
	char bad[64];
	req->state = REQ_DONE;
	if (req->bad_path) {
		fail(req, "bad-request", "%s", "the path contains an encoded NUL (%00)");
		return;
	}
	if (!req->method) {
		fail(req, "method-not-allowed", "method %s is not supported", req->method_name);
		return;
	}
	enum router_result rr = router_match(routes, nroutes, req->method, req->path, &req->route, req->ids,
					     &req->nids, &allow, bad, sizeof(bad));
	if (rr == ROUTER_METHOD_NOT_ALLOWED && req->method == HTTP_OPTIONS) {
		preflight(req, allow);
		return;
	}
	if (rr == ROUTER_NOT_FOUND) {
		fail(req, "not-found", "no resource at %s", req->path);
		return;
	}
	if (rr == ROUTER_METHOD_NOT_ALLOWED) {
		char methods[96];
		router_allow_string(allow, methods, sizeof(methods));
		fail(req, "method-not-allowed", "allowed methods: %s", methods);
		reply_header(req, "Allow", methods);
		return;
	}
	if (rr == ROUTER_BAD_ID) {
		api_fail_field(&e, bad, "must be a positive integer");
		reply_problem(req, &e);
		return;
	}
	if (req->route->roles && authorize(req))
		return;
	if (req->body_too_large) {
		char limit[32];
		snprintf(limit, sizeof(limit), "%zu", cfg->max_body_bytes);
		fail(req, "payload-too-large", "the body exceeds the limit of %s bytes", limit);
		return;
	}
	req->query = arena_alloc(&req->arena, MAX_QUERY_PARAMS * sizeof(*req->query));
	MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, collect_query, req);
	if (req->bad_query) {
		api_fail_field(&e, req->bad_query, "must not contain a NUL character");
		reply_problem(req, &e);
		return;
	}

	if (req->route->flags & ROUTE_JSON_BODY) {
		if (!is_json_media_type(req->content_type)) {
			fail(req, "unsupported-media-type", "Content-Type must be application/json, not %s",
			     req->content_type ? req->content_type : "(none)");
			return;
		}
		if (json_parse_body(req->body.ptr, req->body.len, &req->json, &e)) {
			reply_problem(req, &e);
			return;
		}
	}
	if (req->route->flags & ROUTE_INLINE) {
		req->route->handler(req, NULL);
		return;
	}
	if (req->route->cache) {
		make_cache_key(req);
		const char *val;
		size_t len;
		if (req->near_key && req->route->cache->near && cfg->near_cache_ttl_ms > 0 &&
		    nearcache_get(req->near_key, &req->arena, &val, &len) == 0) {
			reply_json(req, 200, val, len);
			req->res.x_cache = "HIT";
			return;
		}
	}
	if (workers_reserve()) {
		fail(req, "unavailable", "%s", "the server is at capacity; retry shortly");
		reply_header(req, "Retry-After", "1");
		return;
	}
	req->state = REQ_QUEUED;
	MHD_suspend_connection(req->conn);
	workers_submit(req);
}

static enum MHD_Result send_response(struct request *req)
{
	struct response *res = &req->res;
	struct MHD_Response *r =
		MHD_create_response_from_buffer(res->body.len, res->body.ptr, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	if (res->status != 204 && res->content_type)
		MHD_add_response_header(r, "Content-Type", res->content_type);
	MHD_add_response_header(r, "X-Request-ID", req->request_id);
	if (res->x_cache)
		MHD_add_response_header(r, "X-Cache", res->x_cache);
	for (int i = 0; i < res->nheaders; i++)
		MHD_add_response_header(r, res->headers[i][0], res->headers[i][1]);
	add_cors(req, r);
	if (__atomic_load_n(&draining, __ATOMIC_RELAXED))
		MHD_add_response_header(r, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)res->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct request *req = *con_cls;
	if (req->state == REQ_NEW) {
		request_init(req, url, method);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		int64_t declared;
		if (cl && parse_int64(cl, 0, INT64_MAX, &declared) == 0 && (uint64_t)declared > cfg->max_body_bytes) {
			/* Refused before reading: the connection closes after the answer. */
			req->body_too_large = 1;
			dispatch(req);
			return send_response(req);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!req->body_too_large) {
			if (req->body.len + *upload_size > cfg->max_body_bytes) {
				req->body_too_large = 1;
				buf_release(&req->body);
			} else {
				buf_add(&req->body, upload, *upload_size);
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->state == REQ_READING && __atomic_load_n(&closing, __ATOMIC_ACQUIRE))
		return MHD_NO; /* closes the connection unanswered: the client may retry */
	if (req->state == REQ_READING)
		dispatch(req);
	if (req->state == REQ_DONE)
		return send_response(req);
	return MHD_YES; /* suspended until a worker answers */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	struct request *req = *con_cls;
	if (!req)
		return;
	*con_cls = NULL;
	uint64_t us = (now_ns() - req->start_ns) / 1000;
	int status = req->res.status;
	size_t route = req->route ? (size_t)(req->route - routes) : nroutes;
	metrics_observe(route, status, us);
	cache_count(req->route ? req->route->cache : NULL, req->res.x_cache);
	struct buf line = BUF_INIT;
	if (log_begin(&line, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? LOG_INFO : LOG_WARN, "request")) {
		log_str(&line, "request_id", req->request_id);
		if (req->trace_id)
			log_str(&line, "trace_id", req->trace_id);
		log_str(&line, "method", req->method_name ? req->method_name : "");
		log_str(&line, "path", req->path ? req->path : "");
		log_int(&line, "status", status);
		log_int(&line, "duration_us", (int64_t)us);
		log_int(&line, "bytes", (int64_t)req->res.body.len);
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
			log_str(&line, "error", "connection closed before the response was sent");
		log_end(&line);
	}
	request_free(req);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	struct buf msg = BUF_INIT;
	buf_vaddf(&msg, fmt, ap);
	while (msg.len && msg.ptr[msg.len - 1] == '\n')
		msg.ptr[--msg.len] = '\0';
	log_msg(LOG_DEBUG, "libmicrohttpd: %s", msg.ptr);
	buf_release(&msg);
}

int server_start(const struct config *c, const struct route *table, size_t n)
{
	cfg = c;
	routes = table;
	nroutes = n;
	if (workers_start(cfg, worker_done))
		return -1;

	struct sockaddr_in6 a6;
	struct sockaddr_in a4;
	struct sockaddr *addr;
	/* poll(2) by default: with epoll (edge-triggered in libmicrohttpd 0.9.75)
	 * suspended-then-resumed connections were seen to stall under load. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (cfg->use_epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	memset(&a4, 0, sizeof(a4));
	memset(&a6, 0, sizeof(a6));
	if (inet_pton(AF_INET, cfg->bind, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons((uint16_t)cfg->port);
		addr = (struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, cfg->bind, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons((uint16_t)cfg->port);
		addr = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		log_msg(LOG_ERROR, "BIND must be an IPv4 or IPv6 address");
		return -1;
	}
	daemon_ = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, NULL,
				   MHD_OPTION_SOCK_ADDR, addr,
				   MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->io_threads,
				   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				   MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)20000,
				   MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096,
				   MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
				   MHD_OPTION_END);
	if (!daemon_) {
		log_msg(LOG_ERROR, "cannot listen on %s:%d", cfg->bind, cfg->port);
		workers_stop();
		return -1;
	}
	return 0;
}

void server_stop(int timeout_s)
{
	if (!daemon_)
		return;
	__atomic_store_n(&draining, 1, __ATOMIC_RELAXED);
	MHD_socket fd = MHD_quiesce_daemon(daemon_);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	/* Suspended connections must be resumed before MHD_stop_daemon, so wait
	 * until every accepted request has been answered and sent. */
	uint64_t deadline = now_ns() + (uint64_t)timeout_s * 1000000000u;
	while (server_inflight() > 0 && now_ns() < deadline)
		usleep(10 * 1000);
	/* A request may have arrived on a kept-alive connection meanwhile: from
	 * now on new ones are dropped, and the last ones are let finish. */
	__atomic_store_n(&closing, 1, __ATOMIC_RELEASE);
	while (server_inflight() > 0 && now_ns() < deadline)
		usleep(10 * 1000);
	int left = server_inflight();
	if (left)
		log_msg(LOG_WARN, "shutdown: %d requests still in flight after %d s", left, timeout_s);
	/* Workers first: after this no connection is left suspended. */
	workers_stop();
	usleep(50 * 1000); /* let resumed connections be processed */
	MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}

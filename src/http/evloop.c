#include "evloop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "framing.h"
#include "../core/banned.h"

#define READ_CHUNK (64 * 1024)
#define OUT_HIGH_WATER (64 * 1024) /* stop reading pipelined requests above this much unsent output */
#define COPY_BODY_MAX (16 * 1024)  /* larger bodies are written from where they are */
#define ACCEPT_BATCH 32
#define LINGER_MS 2000
#define REFUSING_MAX 1024          /* refused connections lingering at once; beyond, closed at once */
#define HEARTBEAT_MS 15000

enum timer { T_HEAD, T_BODY, T_IDLE, T_SEND, T_LINGER, T_COUNT, T_NONE = T_COUNT };

struct conn {
	int fd;
	struct io_thread *t;
	struct framing fr;
	struct request *waiting;   /* with a worker */
	struct buf pending;        /* received, not yet parsed (input behind a request with a worker) */
	struct buf out;            /* unsent response bytes from out_off */
	size_t out_off;
	char *tail;                /* a large body written from where it is, after out */
	size_t tail_len, tail_off;
	int tail_owned;            /* tail was malloc'd for this connection */
	struct conn *tprev, *tnext; /* in t->timers[timer] */
	int64_t deadline;
	enum timer timer;
	struct conn *prev, *next;   /* in t->conns */
	struct client *client;      /* per-address count, NULL when not counted */
	char address[INET6_ADDRSTRLEN];
	char *topic;                /* a stream's topic, NULL otherwise */
	struct conn *sprev, *snext; /* in t->streams */
	unsigned read_ready : 1;    /* input may be waiting that was not read */
	unsigned close_after : 1;   /* close once the output is written */
	unsigned unread : 1;        /* the client may still be sending what will not be read */
	unsigned dead : 1;          /* socket closed while a worker had the request */
	unsigned refused : 1;       /* over a cap: answered at once, not counted as open */
	unsigned eof : 1;           /* the client sent all it will send */
	unsigned peer_closed : 1;   /* EPOLLRDHUP seen: read on to the end of input */
	unsigned lingering : 1;     /* answered for the last time; input is discarded */
	unsigned proxy : 1;         /* the peer is a trusted proxy */
};

struct push {
	struct push *next;
	char *topic;
	size_t len;
	char data[];
};

struct timer_list {
	struct conn *head, *tail;
};

struct io_thread {
	int epfd;
	int evfd;
	pthread_t tid;
	pthread_mutex_t lock;            /* guards done */
	struct request *done, *done_tail; /* answered by workers, not yet written */
	struct push *pushes, *pushes_tail; /* published to streams, not yet written */
	struct conn *streams;
	int64_t heartbeat_at;
	int wake_pending;
	struct timer_list timers[T_COUNT];
	struct conn *conns;
	struct conn *graveyard;          /* freed after the current batch of events */
	int drained;
	int spare_fd;                    /* closed to accept-and-close when out of descriptors */
	int listening;
	int64_t now;                     /* ms, monotonic, once per wake-up */
	char *scratch;
};

static struct {
	struct evloop_config cfg;
	struct evloop_ops ops;
	int listen_fd;
	struct io_thread *threads;
	int nthreads;
	int timeout_ms[T_COUNT];
	int draining;
	int stopping;
	int unlistened; /* threads that took the listener out of their epoll */
	int open;
	int refusing;
	int streams;
	unsigned long refused_capacity, refused_client, timeouts;
} L = { .listen_fd = -1 };

/* ---------------------------------------------------------------- clients */

struct client {
	struct client *next;
	unsigned char addr[16];
	int count;
};

#define CLIENT_BUCKETS 4096
static struct client *clients[CLIENT_BUCKETS];
static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned addr_hash(const unsigned char a[16])
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < 16; i++)
		h = (h ^ a[i]) * 1099511628211ull;
	return (unsigned)(h >> 20) % CLIENT_BUCKETS;
}

/* Counts one more connection of addr; NULL when it is over the cap. */
static struct client *client_acquire(const unsigned char addr[16])
{
	unsigned b = addr_hash(addr);
	pthread_mutex_lock(&clients_lock);
	struct client *c = clients[b];
	while (c && memcmp(c->addr, addr, 16))
		c = c->next;
	if (!c) {
		c = xcalloc(1, sizeof(*c));
		memcpy(c->addr, addr, 16);
		c->next = clients[b];
		clients[b] = c;
	}
	if (c->count >= L.cfg.max_per_client) {
		c = NULL;
	} else {
		c->count++;
	}
	pthread_mutex_unlock(&clients_lock);
	return c;
}

static void client_release(struct client *c)
{
	unsigned b = addr_hash(c->addr);
	pthread_mutex_lock(&clients_lock);
	if (--c->count == 0) {
		struct client **p = &clients[b];
		while (*p != c)
			p = &(*p)->next;
		*p = c->next;
		free(c);
	}
	pthread_mutex_unlock(&clients_lock);
}

/* Streams per client address: a small table under one lock (streams start
 * and end rarely next to requests). */
struct stream_client {
	struct stream_client *next;
	char address[INET6_ADDRSTRLEN];
	int count;
};
static struct stream_client *stream_clients[256];
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned text_hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % 256;
}

/* Counts a stream for address: 0, or -1 (nothing counted) past a bound. */
static int stream_acquire(const char *address, int *too_many_for_client)
{
	*too_many_for_client = 0;
	pthread_mutex_lock(&stream_lock);
	struct stream_client **p = &stream_clients[text_hash(address)];
	while (*p && strcmp((*p)->address, address))
		p = &(*p)->next;
	int mine = *p ? (*p)->count : 0;
	int ok = L.streams < L.cfg.max_streams && mine < L.cfg.max_streams_per_client;
	*too_many_for_client = !ok && mine >= L.cfg.max_streams_per_client;
	if (ok) {
		if (!*p) {
			*p = xcalloc(1, sizeof(**p));
			snprintf((*p)->address, sizeof((*p)->address), "%s", address);
		}
		(*p)->count++;
		L.streams++;
	}
	pthread_mutex_unlock(&stream_lock);
	return ok ? 0 : -1;
}

static void stream_release(const char *address)
{
	pthread_mutex_lock(&stream_lock);
	struct stream_client **p = &stream_clients[text_hash(address)];
	while (*p && strcmp((*p)->address, address))
		p = &(*p)->next;
	if (*p && --(*p)->count == 0) {
		struct stream_client *gone = *p;
		*p = gone->next;
		free(gone);
	}
	L.streams--;
	pthread_mutex_unlock(&stream_lock);
}

/* ----------------------------------------------------------------- timers */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void timer_stop(struct conn *c)
{
	if (c->timer == T_NONE)
		return;
	struct timer_list *l = &c->t->timers[c->timer];
	if (c->tprev)
		c->tprev->tnext = c->tnext;
	else
		l->head = c->tnext;
	if (c->tnext)
		c->tnext->tprev = c->tprev;
	else
		l->tail = c->tprev;
	c->tprev = c->tnext = NULL;
	c->timer = T_NONE;
}

/* Arms timer k from now; a connection is on one list at a time. */
static void timer_start(struct conn *c, enum timer k)
{
	timer_stop(c);
	struct timer_list *l = &c->t->timers[k];
	c->timer = k;
	c->deadline = c->t->now + L.timeout_ms[k];
	c->tprev = l->tail;
	c->tnext = NULL;
	if (l->tail)
		l->tail->tnext = c;
	else
		l->head = c;
	l->tail = c;
}

/* ------------------------------------------------------------ connections */

static void conn_free(struct conn *c)
{
	struct io_thread *t = c->t;
	timer_stop(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->topic) {
		if (c->sprev)
			c->sprev->snext = c->snext;
		else
			t->streams = c->snext;
		if (c->snext)
			c->snext->sprev = c->sprev;
		stream_release(c->address);
		L.ops.stream_closed(c->topic);
		free(c->topic);
		c->topic = NULL;
	}
	framing_release(&c->fr);
	buf_release(&c->pending);
	buf_release(&c->out);
	if (c->tail_owned)
		free(c->tail);
	if (c->client)
		client_release(c->client);
	if (c->refused)
		__atomic_sub_fetch(&L.refusing, 1, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(&L.open, 1, __ATOMIC_RELAXED);
	/* An event for c may still be in this batch: it sees fd < 0 and skips. */
	c->fd = -1;
	c->next = t->graveyard;
	t->graveyard = c;
}

static void bury(struct io_thread *t)
{
	while (t->graveyard) {
		struct conn *c = t->graveyard;
		t->graveyard = c->next;
		free(c);
	}
}

/* Closes the socket now. A request with a worker keeps the connection
 * (dead) until it comes back. */
static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->waiting) {
		c->dead = 1;
		timer_stop(c);
		return;
	}
	conn_free(c);
}

/* After the last answer: discards input until the client closes or the
 * linger time is over. */
static void conn_linger(struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->t->scratch, READ_CHUNK, 0);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		conn_close(c);
		return;
	}
}

/* After the last response: stop sending, and read off what the client may
 * still be sending so that closing does not reset the connection before
 * it has read the answer. */
static void conn_finish(struct conn *c)
{
	if (c->eof || (!c->unread && !c->pending.len)) {
		conn_close(c);
		return;
	}
	shutdown(c->fd, SHUT_WR);
	c->lingering = 1;
	buf_release(&c->pending);
	timer_start(c, T_LINGER);
	conn_linger(c);
}

static struct conn *conn_new(struct io_thread *t, int fd)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->t = t;
	c->timer = T_NONE;
	framing_init(&c->fr, L.cfg.max_body);
	buf_init(&c->pending);
	buf_init(&c->out);
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	return c;
}

static int out_pending(const struct conn *c)
{
	return c->out_off < c->out.len || (c->tail && c->tail_off < c->tail_len);
}

/* Writes what it can: 0 (all written, or the socket is full), -1 when the
 * connection was closed. */
static int conn_flush(struct conn *c)
{
	while (out_pending(c)) {
		struct iovec iov[2];
		int n = 0;
		if (c->out_off < c->out.len)
			iov[n++] = (struct iovec){ c->out.ptr + c->out_off, c->out.len - c->out_off };
		if (c->tail && c->tail_off < c->tail_len)
			iov[n++] = (struct iovec){ c->tail + c->tail_off, c->tail_len - c->tail_off };
		ssize_t w = writev(c->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (c->timer != T_SEND)
					timer_start(c, T_SEND);
				return 0;
			}
			conn_close(c);
			return -1;
		}
		size_t left = (size_t)w;
		size_t a = c->out.len - c->out_off;
		if (left >= a) {
			c->out_off = c->out.len;
			left -= a;
			c->tail_off += left;
		} else {
			c->out_off += left;
		}
		if (c->timer == T_SEND)
			timer_start(c, T_SEND); /* progress: a new deadline */
	}
	if (c->out.cap > COPY_BODY_MAX * 2)
		buf_release(&c->out);
	else
		buf_reset(&c->out);
	c->out_off = 0;
	if (c->tail_owned)
		free(c->tail);
	c->tail = NULL;
	c->tail_len = c->tail_off = 0;
	c->tail_owned = 0;
	if (c->timer == T_SEND)
		timer_stop(c);
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* "Sat, 05 Dec 2026 10:53:56 GMT", formatted once a second per thread. */
static const char *http_date(void)
{
	static __thread char text[40];
	static __thread time_t at;
	time_t now = time(NULL);
	if (now != at) {
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		at = now;
	}
	return text;
}

static int header_safe(const char *v)
{
	return !strpbrk(v, "\r\n");
}

/* Queues req's response on c and completes req. */
/* A 200 with a topic opens a stream, within its bounds. */
static int stream_open(struct conn *c, struct request *req)
{
	int client_bound = 0;
	if (__atomic_load_n(&L.draining, __ATOMIC_RELAXED) || stream_acquire(c->address, &client_bound)) {
		struct api_error e;
		if (client_bound)
			api_fail(&e, "rate-limited", "this address holds %d streams already", L.cfg.max_streams_per_client);
		else
			api_fail(&e, "unavailable", "the server holds as many streams as it can; retry shortly");
		e.retry_after = 5;
		req->res.stream_topic = NULL;
		reply_problem(req, &e);
		return 0;
	}
	c->topic = xstrdup(req->res.stream_topic);
	c->snext = c->t->streams;
	if (c->snext)
		c->snext->sprev = c;
	c->t->streams = c;
	return 1;
}

static void conn_respond(struct conn *c, struct request *req)
{
	struct response *res = &req->res;
	int stream = res->stream_topic && res->status == 200 && stream_open(c, req);
	L.ops.finish(req);
	if (!stream && (!req->keep_alive || __atomic_load_n(&L.draining, __ATOMIC_RELAXED)))
		c->close_after = 1;
	const char *body = res->static_body ? res->static_body : res->body.ptr;
	size_t len = res->static_body ? res->static_len : res->body.len;
	int bodiless = res->status == 204 || res->status == 304;
	struct buf *o = &c->out;
	buf_adds(o, "HTTP/1.1 ");
	buf_add_i64(o, res->status);
	buf_addch(o, ' ');
	buf_adds(o, reason(res->status));
	buf_adds(o, "\r\nDate: ");
	buf_adds(o, http_date());
	buf_adds(o, "\r\n");
	if (stream) {
		/* no length: the body is every event until the connection ends */
		buf_adds(o, "Content-Type: text/event-stream\r\nCache-Control: no-store\r\n");
	} else if (!bodiless) {
		if (res->content_type) {
			buf_adds(o, "Content-Type: ");
			buf_adds(o, res->content_type);
			buf_adds(o, "\r\n");
		}
		buf_adds(o, "Content-Length: ");
		buf_add_i64(o, (int64_t)len);
		buf_adds(o, "\r\n");
	}
	for (int i = 0; i < res->nheaders; i++) {
		if (!header_safe(res->headers[i][1]))
			continue;
		buf_adds(o, res->headers[i][0]);
		buf_adds(o, ": ");
		buf_adds(o, res->headers[i][1]);
		buf_adds(o, "\r\n");
	}
	if (c->close_after || stream)
		buf_adds(o, "Connection: close\r\n");
	else if (req->http_minor == 0)
		buf_adds(o, "Connection: keep-alive\r\n");
	buf_adds(o, "\r\n");
	if (bodiless || req->method == METHOD_HEAD) {
		len = 0;
	} else if (len <= COPY_BODY_MAX || c->tail) {
		buf_add(o, body, len);
	} else if (res->static_body) {
		c->tail = (char *)res->static_body;
		c->tail_len = len;
	} else {
		c->tail = buf_detach(&res->body, &c->tail_len);
		c->tail_owned = 1;
	}
	L.ops.complete(req, 1);
}

static int may_parse(const struct conn *c)
{
	return !c->waiting && !c->close_after && !c->topic && c->fd >= 0 && !c->tail && c->out.len - c->out_off < OUT_HIGH_WATER;
}

/* A request to answer: at once, or by a worker. */
static void conn_request(struct conn *c, struct request *req)
{
	req->conn = c;
	req->client = c->address;
	req->via_proxy = c->proxy;
	if (L.ops.dispatch(req)) {
		c->waiting = req;
		timer_stop(c);
		return;
	}
	conn_respond(c, req);
}

/* Parses and answers requests from data, as far as the connection may go
 * now; keeps the rest in c->pending. */
static void conn_input(struct conn *c, const char *data, size_t len)
{
	while (len && may_parse(c)) {
		size_t used;
		enum framing_event ev = framing_feed(&c->fr, data, len, &used);
		data += used;
		len -= used;
		switch (ev) {
		case FRAMING_MORE:
			/* the first bytes of a request start its header clock */
			if (c->fr.in_body) {
				if (c->timer != T_BODY)
					timer_start(c, T_BODY);
			} else if (framing_busy(&c->fr) && c->timer != T_HEAD) {
				timer_start(c, T_HEAD);
			}
			break;
		case FRAMING_HEAD:
			if (c->fr.req->body_too_large) {
				c->close_after = 1;
				c->unread = 1;
				conn_request(c, framing_take(&c->fr));
				len = 0;
			} else { /* Expect: 100-continue */
				buf_adds(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
				timer_start(c, T_BODY);
			}
			break;
		case FRAMING_REQUEST:
			timer_stop(c);
			conn_request(c, framing_take(&c->fr));
			break;
		case FRAMING_ERROR:
			c->close_after = 1;
			c->unread = 1;
			timer_stop(c);
			conn_respond(c, framing_take(&c->fr));
			len = 0;
			break;
		}
	}
	if (len && c->close_after)
		c->unread = 1;
	if (len && c->fd >= 0 && !c->close_after) {
		if (c->pending.len + len > FRAMING_MAX_HEAD + L.cfg.max_body + 4096) {
			/* a client pipelining far ahead of its answers */
			c->close_after = 1;
			c->unread = 1;
			return;
		}
		buf_add(&c->pending, data, len);
	}
}

/* Reads while the connection may take input. */
static void conn_read(struct conn *c)
{
	struct io_thread *t = c->t;
	while (c->fd >= 0 && may_parse(c) && !c->pending.len) {
		ssize_t n = recv(c->fd, t->scratch, READ_CHUNK, 0);
		if (n > 0) {
			if (c->timer == T_IDLE)
				timer_stop(c);
			conn_input(c, t->scratch, (size_t)n);
			if (n < READ_CHUNK && !c->peer_closed) {
				c->read_ready = 0; /* a short read emptied the socket */
				return;
			}
			continue;
		}
		if (n == 0) {
			/* The client is done sending: answer what it sent, then close. */
			c->read_ready = 0;
			c->eof = 1;
			if (framing_busy(&c->fr))
				conn_close(c);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			c->read_ready = 0;
		else
			conn_close(c);
		return;
	}
}

/* Moves the connection on as far as it can without blocking: writes, then
 * parses held input, then reads, until it must wait for the socket or a
 * worker. */
static void conn_run(struct conn *c)
{
	while (c->fd >= 0 && !c->waiting) {
		if (conn_flush(c) || out_pending(c))
			return; /* closed, or EPOLLOUT brings us back */
		if (c->close_after || (c->eof && !c->pending.len)) {
			conn_finish(c);
			return;
		}
		if (c->pending.len) {
			struct buf held = c->pending;
			buf_init(&c->pending);
			conn_input(c, held.ptr, held.len);
			buf_release(&held);
			continue;
		}
		if (c->topic) {
			if (c->read_ready) /* a stream reads nothing more: only its end matters */
				conn_linger(c);
			return;
		}
		if (c->read_ready) {
			conn_read(c);
			continue;
		}
		if (c->timer == T_NONE && !framing_busy(&c->fr))
			timer_start(c, T_IDLE);
		return;
	}
}

/* Answers a connection over a cap without reading it, then lingers. */
static void conn_refuse(struct conn *c, const char *slug, const char *detail)
{
	struct request *req = request_new();
	struct api_error e;
	api_fail(&e, slug, "%s", detail);
	e.retry_after = 1;
	req->client = c->address;
	reply_problem(req, &e);
	c->close_after = 1;
	c->unread = 1;
	conn_respond(c, req);
	conn_run(c);
}

static void on_accept(struct io_thread *t)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(L.listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && t->spare_fd >= 0) {
				/* out of descriptors: take the connection off the queue and drop it */
				close(t->spare_fd);
				fd = accept(L.listen_fd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				log_msg(LOG_WARN, "out of file descriptors: a connection was dropped");
			}
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		unsigned char key[16] = { 0 };
		char text[INET6_ADDRSTRLEN] = "unknown";
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)&ss;
			key[10] = key[11] = 0xff;
			memcpy(key + 12, &a->sin_addr, 4);
			inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)&ss;
			memcpy(key, &a->sin6_addr, 16);
			inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
		}

		int open_now = __atomic_add_fetch(&L.open, 1, __ATOMIC_RELAXED);
		struct client *cl = NULL;
		const char *refuse = NULL;
		/* Behind a proxy every connection comes from it: no per-address cap. */
		int proxy = L.cfg.ntrusted && cidr_match(L.cfg.trusted, L.cfg.ntrusted, key);
		if (open_now > L.cfg.max_connections)
			refuse = "unavailable";
		else if (L.cfg.max_per_client && !proxy && !(cl = client_acquire(key)))
			refuse = "too-many-connections";
		if (refuse) {
			__atomic_sub_fetch(&L.open, 1, __ATOMIC_RELAXED);
			__atomic_add_fetch(refuse[0] == 'u' ? &L.refused_capacity : &L.refused_client, 1,
					   __ATOMIC_RELAXED);
			if (__atomic_add_fetch(&L.refusing, 1, __ATOMIC_RELAXED) > REFUSING_MAX) {
				__atomic_sub_fetch(&L.refusing, 1, __ATOMIC_RELAXED);
				close(fd);
				continue;
			}
		}
		struct conn *c = conn_new(t, fd);
		c->client = cl;
		c->proxy = proxy;
		c->refused = refuse != NULL;
		memcpy(c->address, text, sizeof(text));
		struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			conn_close(c);
			continue;
		}
		if (refuse) {
			if (refuse[0] == 'u')
				conn_refuse(c, refuse, "the server holds as many connections as it can; retry shortly");
			else
				conn_refuse(c, refuse, "this address holds as many connections as it may");
			continue;
		}
		timer_start(c, T_HEAD);
	}
}

static void on_timeout(struct conn *c, enum timer k)
{
	__atomic_add_fetch(&L.timeouts, 1, __ATOMIC_RELAXED);
	if ((k == T_HEAD && framing_busy(&c->fr)) || k == T_BODY) {
		/* too slow: say so, then close */
		struct request *req = framing_take(&c->fr);
		struct api_error e;
		api_fail(&e, "request-timeout", k == T_HEAD ? "the request head took longer than %d ms"
							     : "the request body took longer than %d ms",
			 L.timeout_ms[k]);
		req->keep_alive = 0;
		reply_problem(req, &e);
		c->close_after = 1;
		c->unread = 1;
		timer_stop(c);
		conn_respond(c, req);
		conn_run(c);
		return;
	}
	conn_close(c);
}

static void expire_timers(struct io_thread *t)
{
	for (int k = 0; k < T_COUNT; k++) {
		struct conn *c;
		while ((c = t->timers[k].head) && c->deadline <= t->now) {
			timer_stop(c);
			on_timeout(c, (enum timer)k);
		}
	}
}

static int next_timeout(struct io_thread *t)
{
	int64_t soonest = t->now + 1000;
	for (int k = 0; k < T_COUNT; k++)
		if (t->timers[k].head && t->timers[k].head->deadline < soonest)
			soonest = t->timers[k].head->deadline;
	int64_t ms = soonest - t->now;
	return ms < 0 ? 0 : (int)ms + 1; /* +1: the coarse clock must have passed the deadline */
}

static void take_resumed(struct io_thread *t)
{
	uint64_t v;
	if (read(t->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_msg(LOG_WARN, "eventfd read: %s", strerror(errno));
	pthread_mutex_lock(&t->lock);
	struct request *req = t->done;
	t->done = t->done_tail = NULL;
	struct push *push = t->pushes;
	t->pushes = t->pushes_tail = NULL;
	t->wake_pending = 0;
	pthread_mutex_unlock(&t->lock);
	while (push) {
		struct push *next = push->next;
		for (struct conn *c = t->streams, *cn; c; c = cn) {
			cn = c->snext; /* c may close while it writes */
			if (c->fd >= 0 && !strcmp(c->topic, push->topic)) {
				buf_add(&c->out, push->data, push->len);
				conn_run(c);
			}
		}
		free(push->topic);
		free(push);
		push = next;
	}
	while (req) {
		struct request *next = req->next;
		struct conn *c = req->conn;
		c->waiting = NULL;
		if (c->dead) {
			L.ops.complete(req, 0);
			conn_free(c);
		} else {
			conn_respond(c, req);
			conn_run(c);
		}
		req = next;
	}
}

/* On draining: no more accepting, and connections between requests go. */
static void drain_thread(struct io_thread *t)
{
	if (t->drained)
		return;
	t->drained = 1;
	if (t->listening) {
		epoll_ctl(t->epfd, EPOLL_CTL_DEL, L.listen_fd, NULL);
		t->listening = 0;
		__atomic_add_fetch(&L.unlistened, 1, __ATOMIC_RELEASE);
	}
	struct conn *c = t->conns, *next;
	for (; c; c = next) {
		next = c->next;
		if (c->fd >= 0 && c->topic) {
			c->close_after = 1; /* a stream ends cleanly: what was written, then EOF */
			conn_run(c);
		} else if (c->fd >= 0 && !c->waiting && !framing_busy(&c->fr) && !out_pending(c) && !c->pending.len &&
			   !c->lingering) {
			conn_close(c);
		}
	}
}

static void *io_main(void *arg)
{
	struct io_thread *t = arg;
	struct epoll_event events[256];
	t->now = now_ms();
	while (!__atomic_load_n(&L.stopping, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(t->epfd, events, 256, next_timeout(t));
		t->now = now_ms();
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;
			uint32_t e = events[i].events;
			if (p == &L.listen_fd) {
				if (t->listening)
					on_accept(t);
				continue;
			}
			if (p == t) {
				take_resumed(t);
				continue;
			}
			struct conn *c = p;
			if (c->fd < 0)
				continue; /* closed earlier in this batch */
			if (e & (EPOLLERR | EPOLLHUP)) {
				conn_close(c);
				continue;
			}
			if (c->lingering) {
				conn_linger(c);
				continue;
			}
			if (e & (EPOLLIN | EPOLLRDHUP))
				c->read_ready = 1;
			if (e & EPOLLRDHUP)
				c->peer_closed = 1;
			conn_run(c);
		}
		if (__atomic_load_n(&L.draining, __ATOMIC_ACQUIRE))
			drain_thread(t);
		expire_timers(t);
		if (t->streams && t->now >= t->heartbeat_at) {
			t->heartbeat_at = t->now + HEARTBEAT_MS;
			for (struct conn *c = t->streams, *cn; c; c = cn) {
				cn = c->snext;
				if (c->fd >= 0) {
					buf_adds(&c->out, ":\n\n");
					conn_run(c);
				}
			}
		}
		bury(t);
	}
	/* Stopping: the workers are gone, so nothing is with a worker any more. */
	take_resumed(t);
	while (t->conns) {
		struct conn *c = t->conns;
		if (c->waiting) {
			L.ops.complete(c->waiting, 0);
			c->waiting = NULL;
		}
		conn_close(c);
	}
	bury(t);
	return NULL;
}

/* ------------------------------------------------------------------- API */

static void wake(struct io_thread *t)
{
	uint64_t one = 1;
	if (write(t->evfd, &one, sizeof(one)) < 0)
		log_msg(LOG_WARN, "eventfd write: %s", strerror(errno));
}

/* For one who has just queued work for t, holding t->lock: releases it and
 * wakes t, unless a wake-up is already pending (one per batch). */
static void wake_unlock(struct io_thread *t)
{
	int pending = t->wake_pending;
	t->wake_pending = 1;
	pthread_mutex_unlock(&t->lock);
	if (!pending)
		wake(t);
}

void evloop_resume(struct request *req)
{
	struct io_thread *t = req->conn->t;
	req->next = NULL;
	pthread_mutex_lock(&t->lock);
	if (t->done_tail)
		t->done_tail->next = req;
	else
		t->done = req;
	t->done_tail = req;
	wake_unlock(t);
}

void evloop_publish(const char *topic, const char *data, size_t len)
{
	for (int i = 0; L.threads && i < L.nthreads; i++) {
		struct io_thread *t = &L.threads[i];
		if (!__atomic_load_n(&t->streams, __ATOMIC_RELAXED))
			continue; /* a racy look: a stream opening now gets its first events itself */
		struct push *p = xmalloc(sizeof(*p) + len);
		p->next = NULL;
		p->topic = xstrdup(topic);
		p->len = len;
		memcpy(p->data, data, len);
		pthread_mutex_lock(&t->lock);
		if (t->pushes_tail)
			t->pushes_tail->next = p;
		else
			t->pushes = p;
		t->pushes_tail = p;
		wake_unlock(t);
	}
}

int evloop_streams(void)
{
	pthread_mutex_lock(&stream_lock);
	int n = L.streams;
	pthread_mutex_unlock(&stream_lock);
	return n;
}

static void wake_all(void)
{
	for (int i = 0; i < L.nthreads; i++)
		wake(&L.threads[i]);
}

static int listen_on(const char *bind_addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (void *)&ss;
	struct sockaddr_in6 *a6 = (void *)&ss;
	if (inet_pton(AF_INET, bind_addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, bind_addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		len = sizeof(*a6);
	} else {
		log_msg(LOG_ERROR, "BIND must be an IPv4 or IPv6 address");
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 4096)) {
		log_msg(LOG_ERROR, "cannot listen on %s:%d: %s", bind_addr, port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int evloop_start(const struct evloop_config *cfg, const struct evloop_ops *ops)
{
	L.cfg = *cfg;
	L.ops = *ops;
	L.timeout_ms[T_HEAD] = cfg->header_timeout_ms;
	L.timeout_ms[T_BODY] = cfg->body_timeout_ms;
	L.timeout_ms[T_IDLE] = cfg->idle_timeout_ms;
	L.timeout_ms[T_SEND] = cfg->send_timeout_ms;
	L.timeout_ms[T_LINGER] = LINGER_MS;
	L.listen_fd = listen_on(cfg->bind, cfg->port);
	if (L.listen_fd < 0)
		return -1;
	L.nthreads = cfg->threads;
	L.threads = xcalloc((size_t)L.nthreads, sizeof(*L.threads));
	for (int i = 0; i < L.nthreads; i++) {
		struct io_thread *t = &L.threads[i];
		pthread_mutex_init(&t->lock, NULL);
		t->scratch = xmalloc(READ_CHUNK);
		t->epfd = epoll_create1(EPOLL_CLOEXEC);
		t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		t->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		struct epoll_event wake = { .events = EPOLLIN, .data.ptr = t };
		/* EPOLLEXCLUSIVE: a new connection wakes one thread, not all */
		struct epoll_event lev = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &L.listen_fd };
		if (t->epfd < 0 || t->evfd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &wake) ||
		    epoll_ctl(t->epfd, EPOLL_CTL_ADD, L.listen_fd, &lev)) {
			log_msg(LOG_ERROR, "epoll set-up failed: %s", strerror(errno));
			return -1;
		}
		t->listening = 1;
	}
	for (int i = 0; i < L.nthreads; i++)
		if (pthread_create(&L.threads[i].tid, NULL, io_main, &L.threads[i])) {
			log_msg(LOG_ERROR, "cannot start I/O threads");
			return -1;
		}
	return 0;
}

void evloop_drain(void)
{
	if (L.listen_fd < 0)
		return;
	__atomic_store_n(&L.draining, 1, __ATOMIC_RELEASE);
	wake_all();
	/* Each thread takes the listener out of its epoll set before it is closed,
	 * so no thread can accept on a descriptor number that was reused. */
	while (__atomic_load_n(&L.unlistened, __ATOMIC_ACQUIRE) < L.nthreads)
		usleep(1000);
	close(L.listen_fd);
	L.listen_fd = -1;
}

void evloop_stop(void)
{
	if (!L.threads)
		return;
	evloop_drain();
	__atomic_store_n(&L.stopping, 1, __ATOMIC_RELEASE);
	wake_all();
	for (int i = 0; i < L.nthreads; i++) {
		struct io_thread *t = &L.threads[i];
		pthread_join(t->tid, NULL);
		close(t->epfd);
		close(t->evfd);
		if (t->spare_fd >= 0)
			close(t->spare_fd);
		free(t->scratch);
		pthread_mutex_destroy(&t->lock);
	}
	free(L.threads);
	L.threads = NULL;
}

int evloop_connections(void)
{
	return __atomic_load_n(&L.open, __ATOMIC_RELAXED);
}

unsigned long evloop_refused_capacity(void)
{
	return __atomic_load_n(&L.refused_capacity, __ATOMIC_RELAXED);
}

unsigned long evloop_refused_client(void)
{
	return __atomic_load_n(&L.refused_client, __ATOMIC_RELAXED);
}

unsigned long evloop_timeouts(void)
{
	return __atomic_load_n(&L.timeouts, __ATOMIC_RELAXED);
}

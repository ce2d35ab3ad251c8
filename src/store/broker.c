#include "broker.h"

#include <amqp_tcp_socket.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../core/banned.h"

#define CHANNEL 1

void broker_init(struct broker *b, const struct config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
}

void broker_close(struct broker *b)
{
	if (!b->conn)
		return;
	amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(b->conn);
	b->conn = NULL;
	b->consuming = 0;
	b->published = 0;
}

static int unavailable(struct broker *b, struct api_error *err, const char *what)
{
	log_msg(LOG_WARN, "message broker: %s%s%s%s", what, *b->why ? " (" : "", b->why, *b->why ? ")" : "");
	*b->why = 0;
	if (b->conn) {
		amqp_destroy_connection(b->conn); /* no close handshake: the connection is broken */
		b->conn = NULL;
	}
	b->consuming = 0;
	b->published = 0;
	api_fail(err, "unavailable", "the message broker is unavailable; retry shortly");
	err->retry_after = 1;
	return -1;
}

static int rpc_ok(struct broker *b)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
	amqp_bytes_t text = { 0, NULL };
	unsigned code = 0;
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *m = r.reply.decoded;
		code = m->reply_code;
		text = m->reply_text;
	} else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *m = r.reply.decoded;
		code = m->reply_code;
		text = m->reply_text;
	}
	if (text.bytes)
		snprintf(b->why, sizeof(b->why), "%u %.*s", code, (int)text.len, (const char *)text.bytes);
	else
		snprintf(b->why, sizeof(b->why), "%s",
			 r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(r.library_error)
									 : "no reason given");
	return 0;
}

static struct timeval tv_of(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	return tv;
}

static amqp_table_entry_t str_entry(const char *k, const char *v)
{
	amqp_table_entry_t e;
	e.key = amqp_cstring_bytes(k);
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes(v);
	return e;
}

static amqp_table_entry_t int_entry(const char *k, int v)
{
	amqp_table_entry_t e;
	e.key = amqp_cstring_bytes(k);
	e.value.kind = AMQP_FIELD_KIND_I32;
	e.value.value.i32 = v;
	return e;
}

static int declare(struct broker *b, const char *name, int dead_letter)
{
	char dead[256];
	snprintf(dead, sizeof(dead), "%s.dead", b->cfg->amqp_queue);
	amqp_table_entry_t entries[4];
	int n = 0;
	entries[n++] = str_entry("x-queue-type", "quorum");
	if (dead_letter) {
		entries[n++] = int_entry("x-delivery-limit", b->cfg->amqp_delivery_limit);
		entries[n++] = str_entry("x-dead-letter-exchange", "");
		entries[n++] = str_entry("x-dead-letter-routing-key", dead);
	}
	amqp_table_t args = { n, entries };
	amqp_queue_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
	return rpc_ok(b) ? 0 : -1;
}

/* An idle publisher connection has nothing to read (no heartbeats, every
 * confirm taken) unless the broker closed it, as a restart does: such a
 * connection is replaced before use, so a restart costs no request. */
static void drop_if_closed(struct broker *b)
{
	if (!b->conn || b->consuming || amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn))
		return;
	struct pollfd p = { amqp_get_sockfd(b->conn), POLLIN, 0 };
	if (p.fd >= 0 && poll(&p, 1, 0) == 1) {
		amqp_destroy_connection(b->conn);
		b->conn = NULL;
		b->published = 0;
	}
}

int broker_connect(struct broker *b, struct api_error *err)
{
	drop_if_closed(b);
	if (b->conn)
		return 0;
	const struct config *cfg = b->cfg;
	struct amqp_connection_info info;
	char *url = xstrdup(cfg->amqp_url);
	if (amqp_parse_url(url, &info) != AMQP_STATUS_OK) {
		free(url);
		return unavailable(b, err, "AMQP_URL cannot be parsed");
	}
	b->conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(b->conn);
	struct timeval tv = tv_of(cfg->amqp_confirm_timeout_ms);
	int rc = sock ? amqp_socket_open_noblock(sock, info.host, info.port, &tv) : -1;
	if (rc != AMQP_STATUS_OK) {
		free(url);
		return unavailable(b, err, "cannot connect");
	}
	amqp_set_rpc_timeout(b->conn, &tv);
	amqp_rpc_reply_t login = amqp_login(b->conn, info.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user,
					    info.password);
	free(url);
	if (login.reply_type != AMQP_RESPONSE_NORMAL)
		return unavailable(b, err, "login refused");
	amqp_channel_open(b->conn, CHANNEL);
	if (!rpc_ok(b))
		return unavailable(b, err, "cannot open a channel");
	char dead[256];
	snprintf(dead, sizeof(dead), "%s.dead", cfg->amqp_queue);
	if (declare(b, dead, 0) || declare(b, cfg->amqp_queue, 1))
		return unavailable(b, err, "cannot declare the queues");
	amqp_confirm_select(b->conn, CHANNEL);
	if (!rpc_ok(b))
		return unavailable(b, err, "cannot turn on publisher confirms");
	b->published = 0;
	return 0;
}

int broker_publish(struct broker *b, const char *body, size_t len, const char *message_id, struct api_error *err)
{
	if (broker_connect(b, err))
		return -1;
	amqp_basic_properties_t props;
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
	props.message_id = amqp_cstring_bytes(message_id);
	amqp_bytes_t payload = { len, (void *)body };
	if (amqp_basic_publish(b->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(b->cfg->amqp_queue), 1, 0,
			       &props, payload) != AMQP_STATUS_OK)
		return unavailable(b, err, "publish failed");
	uint64_t tag = ++b->published;
	/* Wait for this message's confirm (basic.ack), within the timeout. A
	 * basic.return before it means the queue was not there: not queued. */
	int returned = 0;
	struct timeval start;
	gettimeofday(&start, NULL);
	for (;;) {
		struct timeval now, left;
		gettimeofday(&now, NULL);
		long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000;
		if (spent >= b->cfg->amqp_confirm_timeout_ms)
			return unavailable(b, err, "no publisher confirm in time");
		left = tv_of(b->cfg->amqp_confirm_timeout_ms - (int)spent);
		amqp_frame_t frame;
		if (amqp_simple_wait_frame_noblock(b->conn, &frame, &left) != AMQP_STATUS_OK)
			return unavailable(b, err, "no publisher confirm in time");
		if (frame.frame_type != AMQP_FRAME_METHOD)
			continue; /* the body of a returned message */
		if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
			returned = 1;
			continue;
		}
		if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD)
			return unavailable(b, err, "the broker refused the message");
		if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
		    frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
			return unavailable(b, err, "the broker closed the channel");
		if (frame.payload.method.id != AMQP_BASIC_ACK_METHOD)
			continue;
		amqp_basic_ack_t *ack = frame.payload.method.decoded;
		if (ack->delivery_tag == tag || (ack->multiple && ack->delivery_tag >= tag))
			break;
	}
	if (returned)
		return unavailable(b, err, "the command queue is missing");
	return 0;
}

int broker_consume(struct broker *b, const char *queue, int prefetch, struct api_error *err)
{
	if (broker_connect(b, err))
		return -1;
	char name[256];
	snprintf(name, sizeof(name), "%s%s%s", b->cfg->amqp_queue, *queue ? "." : "", queue);
	amqp_basic_qos(b->conn, CHANNEL, 0, (uint16_t)prefetch, 0);
	if (!rpc_ok(b))
		return unavailable(b, err, "basic.qos refused");
	amqp_basic_consume(b->conn, CHANNEL, amqp_cstring_bytes(name), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (!rpc_ok(b))
		return unavailable(b, err, "basic.consume refused");
	b->consuming = 1;
	return 0;
}

static const amqp_field_value_t *header(const amqp_basic_properties_t *p, const char *name)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];
		if (e->key.len == strlen(name) && !memcmp(e->key.bytes, name, e->key.len))
			return &e->value;
	}
	return NULL;
}

static long integer_of(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_I8: return v->value.i8;
	case AMQP_FIELD_KIND_U8: return v->value.u8;
	case AMQP_FIELD_KIND_I16: return v->value.i16;
	case AMQP_FIELD_KIND_U16: return v->value.u16;
	case AMQP_FIELD_KIND_I32: return v->value.i32;
	case AMQP_FIELD_KIND_U32: return (long)v->value.u32;
	case AMQP_FIELD_KIND_I64: return (long)v->value.i64;
	case AMQP_FIELD_KIND_U64: return (long)v->value.u64;
	default: return 0;
	}
}

int broker_next(struct broker *b, int timeout_ms, struct broker_message *m)
{
	memset(m, 0, sizeof(*m));
	if (!b->conn || !b->consuming)
		return -1;
	amqp_maybe_release_buffers(b->conn);
	struct timeval tv = tv_of(timeout_ms);
	amqp_rpc_reply_t r = amqp_consume_message(b->conn, &m->envelope, &tv, 0);
	if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
		return 0;
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		struct api_error ignored;
		unavailable(b, &ignored, "the consumer's connection was lost");
		return -1;
	}
	const amqp_basic_properties_t *p = &m->envelope.message.properties;
	m->body = m->envelope.message.body.bytes;
	m->len = m->envelope.message.body.len;
	m->tag = m->envelope.delivery_tag;
	const amqp_field_value_t *count = header(p, "x-delivery-count");
	m->deliveries = 1 + (count ? integer_of(count) : 0);
	const amqp_field_value_t *why = header(p, "x-first-death-reason");
	static __thread char reason[64];
	reason[0] = '\0';
	if (why && (why->kind == AMQP_FIELD_KIND_UTF8 || why->kind == AMQP_FIELD_KIND_BYTES))
		snprintf(reason, sizeof(reason), "%.*s", (int)why->value.bytes.len, (const char *)why->value.bytes.bytes);
	m->death = reason;
	return 1;
}

void broker_message_free(struct broker_message *m)
{
	amqp_destroy_envelope(&m->envelope);
}

int broker_ack(struct broker *b, uint64_t tag)
{
	return b->conn && amqp_basic_ack(b->conn, CHANNEL, tag, 0) == AMQP_STATUS_OK ? 0 : -1;
}

int broker_nack(struct broker *b, uint64_t tag)
{
	return b->conn && amqp_basic_nack(b->conn, CHANNEL, tag, 0, 1) == AMQP_STATUS_OK ? 0 : -1;
}

static int passive_count(struct broker *b, const char *name, long *messages, long *consumers)
{
	amqp_queue_declare_ok_t *ok =
		amqp_queue_declare(b->conn, CHANNEL, amqp_cstring_bytes(name), 1, 1, 0, 0, amqp_empty_table);
	if (!ok)
		return -1;
	*messages = ok->message_count;
	if (consumers)
		*consumers = ok->consumer_count;
	return 0;
}

int broker_depth(struct broker *b, long *ready, long *consumers, long *dead, struct api_error *err)
{
	if (broker_connect(b, err))
		return -1;
	char name[256];
	snprintf(name, sizeof(name), "%s.dead", b->cfg->amqp_queue);
	if (passive_count(b, b->cfg->amqp_queue, ready, consumers) || passive_count(b, name, dead, NULL))
		return unavailable(b, err, "cannot read the queue depth");
	return 0;
}

#ifndef TRANSITD_BROKER_H
#define TRANSITD_BROKER_H
/*
 * The message broker: RabbitMQ over AMQP 0-9-1 (librabbitmq). Like a
 * database connection, one struct broker belongs to one thread, and calls
 * block, bounded by AMQP_CONFIRM_TIMEOUT_MS.
 *
 * Topology, declared by whoever connects first: a durable quorum queue of
 * commands (AMQP_QUEUE, "transitd.commands") whose messages are
 * dead-lettered to "<queue>.dead" after AMQP_DELIVERY_LIMIT deliveries.
 *
 * A publisher connection is in confirm mode: broker_publish returns only
 * when the broker has confirmed that the message is in the queue.
 */
#include <amqp.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"
#include "../core/problem.h"

struct broker {
	amqp_connection_state_t conn;
	const struct config *cfg;
	int consuming;
	uint64_t published; /* delivery tags of this channel so far */
	char why[160];      /* the broker's (or the library's) reason for the last refusal */
};

/* A message handed to a consumer; release with broker_message_free. */
struct broker_message {
	amqp_envelope_t envelope;
	const char *body;
	size_t len;
	uint64_t tag;
	long deliveries;   /* 1 on the first delivery (x-delivery-count + 1) */
	const char *death; /* on the dead-letter queue: why it died, or "" */
};

void broker_init(struct broker *b, const struct config *cfg);
void broker_close(struct broker *b);

/* Connects, logs in, declares the queues and, for publishing, turns on
 * confirms. 0, or -1 with err 503. */
int broker_connect(struct broker *b, struct api_error *err);

/* Publishes body (persistent) to the command queue and waits for the
 * broker's confirm. 0, or -1 with err 503 (nothing is known to be queued). */
int broker_publish(struct broker *b, const char *body, size_t len, const char *message_id, struct api_error *err);

/* Starts consuming queue ("" = the command queue, "dead" = the dead-letter
 * queue) with prefetch messages at a time. 0 or -1. */
int broker_consume(struct broker *b, const char *queue, int prefetch, struct api_error *err);
/* The next message: 1, 0 after timeout_ms without one, -1 when the
 * connection is lost (reconnect and consume again). */
int broker_next(struct broker *b, int timeout_ms, struct broker_message *m);
void broker_message_free(struct broker_message *m);
int broker_ack(struct broker *b, uint64_t tag);
/* Gives a message back: requeued, counted as a delivery. */
int broker_nack(struct broker *b, uint64_t tag);

/* Ready messages and consumers of the command queue and the dead queue
 * (passive declares). 0 or -1 with err. */
int broker_depth(struct broker *b, long *ready, long *consumers, long *dead, struct api_error *err);

#endif

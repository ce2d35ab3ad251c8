#ifndef TRANSITD_DOMAIN_OPERATIONS_H
#define TRANSITD_DOMAIN_OPERATIONS_H
/*
 * Operations: the record of an asynchronous command, from acceptance to its
 * outcome (db/migrations/0009_operations.sql). Every function blocks on the
 * given connection and returns 0, or -1 with err.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

struct operation {
	int64_t id;
	int64_t user_id;    /* 0: none */
	const char *role;
	const char *method, *route, *path, *request;
	const char *scope, *key, *hash; /* the caller's Idempotency-Key, or NULL */
	const char *status;
	int unqueued; /* failed because the broker never confirmed it */
};

void operations_register(void);

/*
 * Records a new command. With a key already used in the scope, *op is the
 * earlier operation instead and *created is 0 (the caller compares hashes).
 */
int operation_create(struct pg *db, struct arena *a, struct operation *op, int *created, struct api_error *err);
/* A command that failed because the broker never confirmed it is made
 * pending again for a retry with the same key: *again is 1 when this caller
 * may publish it again. */
int operation_retry(struct pg *db, struct arena *a, int64_t id, int *again, struct api_error *err);
/* Marks the operation as taken by a consumer and loads what the consumer
 * needs (apply it only while its status is pending); 404 when there is no
 * such operation. */
int operation_claim(struct pg *db, struct arena *a, int64_t id, struct operation *op, struct api_error *err);
/*
 * The broker did not confirm the command: it ends failed with the 503
 * problem document unless a consumer has claimed it. *refused is 0 when a
 * consumer has it (the broker did take it: the command is accepted).
 */
int operation_refuse(struct pg *db, struct arena *a, int64_t id, const char *problem, int *refused,
		     struct api_error *err);
/*
 * Records the outcome: succeeded with the result document, or failed with
 * the problem document. Success wins over an earlier failure (the effect is
 * the truth); a failure never overwrites an outcome.
 */
int operation_finish(struct pg *db, struct arena *a, int64_t id, int http_status, const char *body,
		     struct api_error *err);
/* The operation document for its owner (owner != 0) or anyone (0); 404 otherwise. */
int operation_get(struct pg *db, struct arena *a, int64_t id, int64_t owner, struct buf *out, struct api_error *err);

#endif

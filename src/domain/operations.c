#include "operations.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "../core/banned.h"

enum { CREATE, FIND, RETRY, CLAIM, REFUSE, FINISH, GET };

static const struct sql_stmt stmts[] = {
	[CREATE] = { "op_create",
		"INSERT INTO operations (user_id, role, method, route, path, request, scope, idempotency_key,"
		" request_hash) VALUES (nullif($1::bigint, 0), $2, $3, $4, $5, $6, $7, $8, $9)"
		" ON CONFLICT (scope, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
		" RETURNING operation_id" },
	[FIND] = { "op_find",
		"SELECT operation_id, request_hash, status, status = 'failed' AND http_status = 503 FROM operations"
		" WHERE scope = $1 AND idempotency_key = $2" },
	[RETRY] = { "op_retry",
		"UPDATE operations SET status = 'pending', http_status = NULL, error = NULL, finished_at = NULL,"
		" claimed_at = NULL"
		" WHERE operation_id = $1 AND status = 'failed' AND http_status = 503 RETURNING operation_id" },
	[CLAIM] = { "op_claim",
		"UPDATE operations SET claimed_at = coalesce(claimed_at, now()) WHERE operation_id = $1"
		" RETURNING status, coalesce(user_id, 0), role, method, route, path, request" },
	[REFUSE] = { "op_refuse",
		"UPDATE operations SET status = 'failed', http_status = 503, error = $2::jsonb, finished_at = now()"
		" WHERE operation_id = $1 AND status = 'pending' AND claimed_at IS NULL RETURNING 1" },
	[FINISH] = { "op_finish",
		"UPDATE operations SET status = CASE WHEN $2 BETWEEN 200 AND 299 THEN 'succeeded' ELSE 'failed' END,"
		" http_status = $2,"
		" result = CASE WHEN $2 BETWEEN 200 AND 299 THEN $3::jsonb END,"
		" error = CASE WHEN $2 BETWEEN 200 AND 299 THEN NULL ELSE $3::jsonb END, finished_at = now()"
		" WHERE operation_id = $1 AND (status = 'pending' OR $2 BETWEEN 200 AND 299)" },
	[GET] = { "op_get",
		"SELECT operation_json(o) FROM operations o WHERE operation_id = $1 AND ($2 = 0 OR user_id = $2)" },
};

void operations_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

int operation_create(struct pg *db, struct arena *a, struct operation *op, int *created, struct api_error *err)
{
	const char *v[] = { pg_int(a, op->user_id), op->role, op->method, op->route, op->path, op->request,
			    op->scope, op->key, op->hash };
	PGresult *r = pg_exec(db, a, &stmts[CREATE], 9, v, err);
	if (!r)
		return -1;
	*created = PQntuples(r) == 1;
	if (*created) {
		op->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		op->status = "pending";
		op->unqueued = 0;
		return 0;
	}
	const char *f[] = { op->scope, op->key };
	r = pg_exec(db, a, &stmts[FIND], 2, f, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) /* removed between the two statements */
		return api_fail(err, "conflict", "the operation with this Idempotency-Key changed; retry");
	op->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	op->hash = arena_strdup(a, PQgetvalue(r, 0, 1));
	op->status = arena_strdup(a, PQgetvalue(r, 0, 2));
	op->unqueued = !strcmp(PQgetvalue(r, 0, 3), "t");
	return 0;
}

int operation_retry(struct pg *db, struct arena *a, int64_t id, int *again, struct api_error *err)
{
	const char *v[] = { pg_int(a, id) };
	PGresult *r = pg_exec(db, a, &stmts[RETRY], 1, v, err);
	if (!r)
		return -1;
	*again = PQntuples(r) == 1;
	return 0;
}

int operation_claim(struct pg *db, struct arena *a, int64_t id, struct operation *op, struct api_error *err)
{
	const char *v[] = { pg_int(a, id) };
	PGresult *r = pg_exec(db, a, &stmts[CLAIM], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "operation %lld does not exist", (long long)id);
	memset(op, 0, sizeof(*op));
	op->id = id;
	op->status = PQgetvalue(r, 0, 0);
	op->user_id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
	op->role = PQgetvalue(r, 0, 2);
	op->method = PQgetvalue(r, 0, 3);
	op->route = PQgetvalue(r, 0, 4);
	op->path = PQgetvalue(r, 0, 5);
	op->request = PQgetvalue(r, 0, 6);
	return 0;
}

int operation_refuse(struct pg *db, struct arena *a, int64_t id, const char *problem, int *refused,
		     struct api_error *err)
{
	const char *v[] = { pg_int(a, id), problem };
	PGresult *r = pg_exec(db, a, &stmts[REFUSE], 2, v, err);
	if (!r)
		return -1;
	*refused = PQntuples(r) == 1;
	return 0;
}

int operation_finish(struct pg *db, struct arena *a, int64_t id, int http_status, const char *body,
		     struct api_error *err)
{
	const char *v[] = { pg_int(a, id), pg_int(a, http_status), body };
	return pg_exec(db, a, &stmts[FINISH], 3, v, err) ? 0 : -1;
}

int operation_get(struct pg *db, struct arena *a, int64_t id, int64_t owner, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, id), pg_int(a, owner) };
	return document_read(db, a, &stmts[GET], 2, v, "operation", out, err);
}

#include "idempotency.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../core/banned.h"

#define KEY_MAX 255

enum { LOCK, FIND, SAVE, EXPIRE };

static const struct sql_stmt stmts[] = {
	[LOCK] = { "idem_lock", "SELECT pg_try_advisory_xact_lock($1::bigint)" },
	[FIND] = { "idem_find",
		"SELECT request_hash, status, body FROM idempotency_keys"
		" WHERE scope = $1 AND key = $2 AND created_at > now() - interval '24 hours'" },
	[SAVE] = { "idem_save",
		"INSERT INTO idempotency_keys (scope, key, request_hash, status, body) VALUES ($1, $2, $3, $4, $5)"
		" ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
		"  status = EXCLUDED.status, body = EXCLUDED.body, created_at = now()" },
	[EXPIRE] = { "idem_expire",
		"DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'" },
};

void idempotency_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static int valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > KEY_MAX)
		return 0;
	for (; *k; k++)
		if (*k < 0x21 || *k > 0x7e)
			return 0;
	return 1;
}

/* BLAKE2b over the parts, each followed by a newline. */
static void digest(const char *const *parts, const size_t *lens, int n, unsigned char out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	for (int i = 0; i < n; i++) {
		crypto_generichash_update(&st, (const unsigned char *)parts[i], lens[i]);
		crypto_generichash_update(&st, (const unsigned char *)"\n", 1);
	}
	crypto_generichash_final(&st, out, 32);
}

int idem_identify(struct request *req, const char **scope, const char **hash, struct api_error *err)
{
	if (!valid_key(req->idempotency_key))
		return api_fail_field(err, "Idempotency-Key", "must be 1 to %d visible ASCII characters", KEY_MAX);
	/* Keys are the caller's: two users never collide on one. */
	*scope = arena_printf(&req->arena, "%s %s %lld", req->method_name, req->route->pattern,
			      req->auth ? (long long)req->auth->user_id : 0LL);
	unsigned char h[32];
	const char *parts[] = { req->method_name, req->path, req->body.ptr };
	size_t lens[] = { strlen(req->method_name), strlen(req->path), req->body.len };
	digest(parts, lens, 3, h);
	char *hex = arena_alloc(&req->arena, 65);
	sodium_bin2hex(hex, 65, h, sizeof(h));
	*hash = hex;
	return 0;
}

/* The advisory lock id of a key: 64 bits of the digest of scope and key. */
static long long lock_id(const char *scope, const char *key)
{
	unsigned char h[32];
	const char *parts[] = { scope, key };
	size_t lens[] = { strlen(scope), strlen(key) };
	long long id;
	digest(parts, lens, 2, h);
	memcpy(&id, h, sizeof(id));
	return id;
}

int idem_key_or_reply(struct request *req, struct write_key *k)
{
	struct api_error e;
	memset(k, 0, sizeof(*k));
	if (!req->idempotency_key)
		return 0;
	if (idem_identify(req, &k->scope, &k->hash, &e))
		goto fail;
	k->key = req->idempotency_key;
	k->lock = arena_printf(&req->arena, "%lld", lock_id(k->scope, k->key));
	return 0;
fail:
	reply_problem(req, &e);
	return -1;
}

void reply_outcome(struct request *req, const struct write_outcome *o)
{
	reply_json(req, o->status, o->body, o->len);
	if (o->replayed)
		reply_header(req, "Idempotent-Replayed", "true");
}

/* Rolls back after a failure; no-op without a transaction. */
static void rollback(struct idem *im)
{
	struct api_error ignored;
	if (im->tx && im->db->conn)
		pg_run(im->db, "ROLLBACK", &ignored);
	im->tx = 0;
}

int idem_begin_or_reply(struct idem *im, struct request *req, struct pg *db, int transaction)
{
	struct api_error e;
	im->db = db;
	im->key = NULL;
	im->tx = 0;
	if (!req->idempotency_key && !transaction)
		return 0;
	if (req->idempotency_key) {
		if (idem_identify(req, &im->scope, &im->hash, &e))
			goto fail;
		im->key = req->idempotency_key;
	}
	if (pg_run(db, "BEGIN", &e))
		goto fail;
	im->tx = 1;
	if (!im->key)
		return 0;
	const char *lock_v[] = { arena_printf(&req->arena, "%lld", lock_id(im->scope, im->key)) };
	PGresult *r = pg_exec(db, &req->arena, &stmts[LOCK], 1, lock_v, &e);
	if (!r)
		goto fail;
	if (strcmp(PQgetvalue(r, 0, 0), "t")) {
		api_fail(&e, "idempotency-in-progress", "a request with this Idempotency-Key is still running");
		e.retry_after = 1;
		goto fail;
	}
	const char *find_v[] = { im->scope, im->key };
	if (!(r = pg_exec(db, &req->arena, &stmts[FIND], 2, find_v, &e)))
		goto fail;
	if (PQntuples(r) == 0)
		return 0; /* first time: go on inside the transaction */
	rollback(im);
	if (strcmp(PQgetvalue(r, 0, 0), im->hash)) {
		api_fail(&e, "idempotency-mismatch", "this Idempotency-Key was used for a different request");
		goto fail;
	}
	reply_json(req, atoi(PQgetvalue(r, 0, 1)), PQgetvalue(r, 0, 2), (size_t)PQgetlength(r, 0, 2));
	reply_header(req, "Idempotent-Replayed", "true");
	return -1;
fail:
	rollback(im);
	reply_problem(req, &e);
	return -1;
}

int idem_finish_or_reply(struct idem *im, struct request *req, int rc, const struct api_error *err)
{
	struct api_error e;
	if (rc) {
		e = *err;
		goto fail;
	}
	if (!im->tx)
		return 0;
	const char *v[] = { im->scope, im->key, im->hash, arena_printf(&req->arena, "%d", req->res.status),
			    req->res.body.ptr };
	if ((im->key && !pg_exec(im->db, &req->arena, &stmts[SAVE], 5, v, &e)) || pg_run(im->db, "COMMIT", &e))
		goto fail;
	im->tx = 0;
	if (!im->key)
		return 0;
	/* Expired records go now and then, off the hot path of most requests. */
	if (randombytes_uniform(1000) == 0)
		pg_exec(im->db, &req->arena, &stmts[EXPIRE], 0, NULL, &e);
	return 0;
fail:
	rollback(im);
	reply_problem(req, &e);
	return -1;
}

#ifndef TRANSITD_IDEMPOTENCY_H
#define TRANSITD_IDEMPOTENCY_H
/*
 * Idempotency-Key for mutating requests.
 *
 * With a key, the request runs in one transaction that also records its
 * response, so the effect and its record commit together (a crash leaves
 * neither). A transaction-scoped advisory lock on (scope, key) makes a
 * duplicate that arrives while the first runs answer 409 at once; a later
 * replay gets the stored status and body with Idempotent-Replayed: true; the
 * same key with another request is 422. Only successful (2xx) responses are
 * recorded: a failed request changed nothing and may be retried as is.
 * Records live 24 hours.
 *
 *   struct idem im;
 *   if (idem_begin_or_reply(&im, req, db, 0))
 *           return;          // answered: replay, 409, 422 or 503
 *   int rc = domain_call(db, ..., reply(req, 201), &e);   // inside the transaction
 *   if (idem_finish_or_reply(&im, req, rc, &e) == 0)
 *           ...              // committed: invalidate caches
 */
#include "../domain/outcome.h"
#include "../http/http.h"
#include "../store/pg.h"

struct idem {
	struct pg *db;
	const char *scope;
	const char *key;  /* NULL: no Idempotency-Key, nothing to do */
	const char *hash; /* of method, path and body */
	int tx;           /* a transaction is open */
};

void idempotency_register(void);

/*
 * The money writes (recharge, tap-in, tap-out, booking, cancellation) do all
 * of the above inside their one call in SQL (domain/outcome.h): the key is
 * claimed under the same advisory lock, a replay or a mismatch is answered,
 * and a 2xx is stored with its effect. Their handlers only fill the key:
 *
 *   struct write_key k;
 *   struct write_outcome o;
 *   if (idem_key_or_reply(req, &k))
 *           return;                    // answered 422
 *   if (domain_call(db, ..., &k, &o, &e))
 *           goto fail;                 // reply_problem(req, &e)
 *   reply_outcome(req, &o);            // Idempotent-Replayed on a replay
 *   if (!o.replayed) ...               // invalidate caches
 */
/* Fills k from req's Idempotency-Key (all NULL without one). 0, or -1 with
 * req answered 422 naming the header. */
int idem_key_or_reply(struct request *req, struct write_key *k);
/* Answers a money call's outcome (its status and document). */
void reply_outcome(struct request *req, const struct write_outcome *o);

/* 0: go on, with a transaction open on db when a key was given or when
 * transaction is set (a multi-statement operation); -1: req answered (the
 * stored answer replayed, 409 in progress, 422, 503), nothing open. */
int idem_begin_or_reply(struct idem *im, struct request *req, struct pg *db, int transaction);
/* The scope (method, route, caller) and request hash of req's valid
 * Idempotency-Key; -1 with a 422 naming the header otherwise. */
int idem_identify(struct request *req, const char **scope, const char **hash, struct api_error *err);
/* Ends what idem_begin_or_reply began, after the write. rc 0 (the write
 * succeeded and answered req): records req->res with a key and commits; 0,
 * or -1 with the transaction rolled back and req answered (503). rc -1:
 * rolls back and answers err; -1. */
int idem_finish_or_reply(struct idem *im, struct request *req, int rc, const struct api_error *err);

#endif

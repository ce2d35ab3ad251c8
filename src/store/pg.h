#ifndef TRANSITD_PG_H
#define TRANSITD_PG_H
/*
 * One PostgreSQL connection owned by one thread, with every registered
 * statement prepared on it once, right after it connects.
 *
 * Calls block (plain libpq) and are meant for worker threads. A broken
 * connection is reopened on the next call; while the server is unreachable
 * calls fail at once (connect_timeout bounds a silent server) with a 503
 * "unavailable" error, never a hang.
 */
#include <libpq-fe.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/problem.h"

/* A named prepared statement. Tables of these live beside the domain code. */
struct sql_stmt {
	const char *name;
	const char *sql;
};

struct pg {
	PGconn *conn;
	const char *url;
	const struct config *cfg;
	int prepare;      /* prepare the registered statements on connect */
	char sqlstate[6]; /* of the last failed statement, "" otherwise */
};

/* Registers statements to prepare on every connection. Call before any
 * pg_connect; the table must outlive the process. */
void pg_register(const struct sql_stmt *stmts, size_t n);

/* prepare: whether to prepare the registered statements (worker connections
 * do; migrate and admin connections must not, the tables may not exist yet). */
void pg_init(struct pg *pg, const char *url, const struct config *cfg, int prepare);
/* Connects if needed. 0 or -1 with err 503. */
int pg_connect(struct pg *pg, struct api_error *err);
void pg_close(struct pg *pg);

/*
 * Executes a prepared statement with text parameters (NULL = SQL NULL).
 * Returns the result, owned by arena a, or NULL with err filled: 503 when the
 * server is unreachable, 500 otherwise; pg->sqlstate tells which SQL error.
 */
PGresult *pg_exec(struct pg *pg, struct arena *a, const struct sql_stmt *stmt, int nparams,
		  const char *const *values, struct api_error *err);
/* Plain SQL without parameters (BEGIN, COMMIT, migrations). 0 or -1. */
int pg_run(struct pg *pg, const char *sql, struct api_error *err);

/* Decimal text of v, allocated in a: a statement parameter. */
const char *pg_int(struct arena *a, int64_t v);

#endif

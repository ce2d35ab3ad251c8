#include "pg.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "../core/banned.h"

#define MAX_TABLES 32

static struct {
	const struct sql_stmt *stmts;
	size_t n;
} tables[MAX_TABLES];
static size_t ntables;

void pg_register(const struct sql_stmt *stmts, size_t n)
{
	if (ntables == MAX_TABLES) {
		log_msg(LOG_ERROR, "pg_register: too many statement tables");
		return;
	}
	tables[ntables].stmts = stmts;
	tables[ntables].n = n;
	ntables++;
}

void pg_init(struct pg *pg, const char *url, const struct config *cfg, int prepare)
{
	pg->conn = NULL;
	pg->prepare = prepare;
	pg->url = url;
	pg->cfg = cfg;
	pg->sqlstate[0] = '\0';
}

void pg_close(struct pg *pg)
{
	if (pg->conn)
		PQfinish(pg->conn);
	pg->conn = NULL;
}

static int unavailable(struct pg *pg, struct api_error *err, const char *what)
{
	const char *msg = pg->conn ? PQerrorMessage(pg->conn) : "no connection";
	log_msg(LOG_WARN, "postgresql %s: %.*s", what, (int)strcspn(msg, "\n"), msg);
	pg_close(pg);
	api_fail(err, "unavailable", "the database is unavailable; retry shortly");
	err->retry_after = 1;
	return -1;
}

/* An idle connection has nothing to read unless the server has closed it
 * (a restart sends a FATAL message, then EOF): such a connection is replaced
 * before use, so a restart of PostgreSQL costs no failed request. Only when
 * idle: inside a transaction a lost connection must fail the request. */
static void drop_if_closed(struct pg *pg)
{
	if (!pg->conn || PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
		return;
	/* Nothing is LISTENed for, so anything readable is the server's goodbye. */
	struct pollfd p = { PQsocket(pg->conn), POLLIN, 0 };
	if (p.fd >= 0 && poll(&p, 1, 0) == 1)
		pg_close(pg);
}

int pg_connect(struct pg *pg, struct api_error *err)
{
	drop_if_closed(pg);
	if (pg->conn && PQstatus(pg->conn) == CONNECTION_OK)
		return 0;
	pg_close(pg);
	char timeout[16], options[64];
	snprintf(timeout, sizeof(timeout), "%d", pg->cfg->db_connect_timeout_s);
	snprintf(options, sizeof(options), "-c statement_timeout=%d", pg->cfg->db_statement_timeout_ms);
	const char *keys[] = { "dbname", "connect_timeout", "options", "application_name",
			       "keepalives_idle", "keepalives_interval", "keepalives_count", NULL };
	const char *vals[] = { pg->url, timeout, options, "transitd", "10", "5", "3", NULL };
	pg->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(pg->conn) != CONNECTION_OK)
		return unavailable(pg, err, "connect");
	for (size_t t = 0; pg->prepare && t < ntables; t++) {
		for (size_t i = 0; i < tables[t].n; i++) {
			const struct sql_stmt *s = &tables[t].stmts[i];
			PGresult *r = PQprepare(pg->conn, s->name, s->sql, 0, NULL);
			int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
			if (!ok)
				log_msg(LOG_ERROR, "prepare %s: %s", s->name, PQresultErrorMessage(r));
			PQclear(r);
			if (!ok) {
				api_fail(err, "internal", "statement %s failed to prepare", s->name);
				pg_close(pg);
				return -1;
			}
		}
	}
	return 0;
}

static void clear_result(void *r)
{
	PQclear(r);
}

/* Classifies a failed result: connection loss → 503, SQL error → 500 with sqlstate. */
static int fail_result(struct pg *pg, PGresult *r, struct api_error *err)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(pg->sqlstate, sizeof(pg->sqlstate), "%s", state ? state : "");
	if (PQstatus(pg->conn) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P", 3)) {
		PQclear(r);
		return unavailable(pg, err, "query");
	}
	if (!strcmp(state, "57014")) { /* statement_timeout */
		PQclear(r);
		api_fail(err, "unavailable", "the database took too long to answer");
		err->retry_after = 1;
		return -1;
	}
	/* Data exceptions (class 22: a number out of range for its column, text
	 * that is not valid in the database's encoding) come from values the
	 * client sent, such as a path id past 2^31 for an integer key: a 422,
	 * never a 500. Callers check their input first; this is the net under it. */
	if (!strncmp(state, "22", 2)) {
		log_msg(LOG_DEBUG, "sql data exception %s: %.*s", state, (int)strcspn(PQresultErrorMessage(r), "\n"),
			PQresultErrorMessage(r));
		PQclear(r);
		api_fail_field(err, "request", "holds a value out of range or not valid text");
		return -1;
	}
	/* Integrity violations (class 23) are expected answers that callers map
	 * to 409/422 or a retry; anything else is a bug worth an error line. */
	log_msg(strncmp(state, "23", 2) ? LOG_ERROR : LOG_DEBUG, "sql error %s: %.*s", state,
		(int)strcspn(PQresultErrorMessage(r), "\n"), PQresultErrorMessage(r));
	PQclear(r);
	api_fail(err, "internal", "database error");
	return -1;
}

PGresult *pg_exec(struct pg *pg, struct arena *a, const struct sql_stmt *stmt, int nparams,
		  const char *const *values, struct api_error *err)
{
	pg->sqlstate[0] = '\0';
	if (pg_connect(pg, err))
		return NULL;
	PGresult *r = PQexecPrepared(pg->conn, stmt->name, nparams, values, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		fail_result(pg, r, err);
		return NULL;
	}
	return arena_defer(a, clear_result, r);
}

int pg_run(struct pg *pg, const char *sql, struct api_error *err)
{
	pg->sqlstate[0] = '\0';
	if (pg_connect(pg, err))
		return -1;
	PGresult *r = PQexec(pg->conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
		return fail_result(pg, r, err);
	PQclear(r);
	return 0;
}

const char *pg_int(struct arena *a, int64_t v)
{
	return arena_printf(a, "%lld", (long long)v);
}

#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "embedded.h"
#include "../core/banned.h"

#define LOCK_ID "7213064"

static int version_of(const char *name)
{
	return atoi(name);
}

int migrate_known_version(void)
{
	int v = 0;
	for (const struct embedded_file *f = embedded_migrations; f->name; f++)
		v = version_of(f->name);
	return v;
}

static int exec_checked(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "transitd: %s", PQresultErrorMessage(r));
	PQclear(r);
	return ok ? 0 : -1;
}

static int applied(PGconn *c, int version)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", version);
	const char *vals[] = { v };
	PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, vals, NULL,
				   NULL, 0);
	int yes = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	PQclear(r);
	return yes;
}

int migrate_up(struct pg *pg)
{
	struct api_error err;
	if (pg_connect(pg, &err)) {
		fprintf(stderr, "transitd: cannot connect to the database: %s\n", err.detail);
		return -1;
	}
	PGconn *c = pg->conn;
	if (exec_checked(c, "SET client_min_messages = warning") || exec_checked(c, "SET statement_timeout = 0") ||
	    exec_checked(c, "SELECT pg_advisory_lock(" LOCK_ID ")") ||
	    exec_checked(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			    " version integer PRIMARY KEY, name text NOT NULL,"
			    " applied_at timestamptz NOT NULL DEFAULT now())"))
		return -1;
	int rc = 0, count = 0;
	for (const struct embedded_file *f = embedded_migrations; f->name && !rc; f++) {
		int v = version_of(f->name);
		if (applied(c, v))
			continue;
		if (exec_checked(c, "BEGIN") || exec_checked(c, f->start)) {
			fprintf(stderr, "transitd: migration %s failed\n", f->name);
			exec_checked(c, "ROLLBACK");
			rc = -1;
			break;
		}
		char v_s[16];
		snprintf(v_s, sizeof(v_s), "%d", v);
		const char *vals[] = { v_s, f->name };
		PGresult *r = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
					   NULL, vals, NULL, NULL, 0);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
		if (!ok || exec_checked(c, "COMMIT")) {
			exec_checked(c, "ROLLBACK");
			rc = -1;
			break;
		}
		printf("migrated %s\n", f->name);
		count++;
	}
	exec_checked(c, "SELECT pg_advisory_unlock(" LOCK_ID ")");
	if (!rc && !count)
		printf("schema is current (version %d)\n", migrate_known_version());
	return rc;
}

int migrate_check(struct pg *pg, int *db_version)
{
	struct api_error err;
	*db_version = 0;
	if (pg_connect(pg, &err))
		return -1;
	PGresult *r = PQexec(pg->conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		int missing = state && !strcmp(state, "42P01"); /* no table yet */
		PQclear(r);
		return missing ? 1 : -1;
	}
	*db_version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	int known = migrate_known_version();
	return *db_version > known ? 2 : *db_version < known ? 1 : 0;
}

int migrate_seed(struct pg *pg, const char *prefix, const char *setup)
{
	struct api_error err;
	if (pg_connect(pg, &err)) {
		fprintf(stderr, "transitd: cannot connect to the database: %s\n", err.detail);
		return -1;
	}
	/* Loading a large dataset takes longer than any request may. */
	if (exec_checked(pg->conn, "SET statement_timeout = 0") || exec_checked(pg->conn, "BEGIN") ||
	    (setup && exec_checked(pg->conn, setup)))
		return -1;
	int count = 0;
	for (const struct embedded_file *f = embedded_seeds; f->name; f++) {
		if (strncmp(f->name, prefix, strlen(prefix)))
			continue;
		if (exec_checked(pg->conn, f->start)) {
			exec_checked(pg->conn, "ROLLBACK");
			fprintf(stderr, "transitd: seed %s failed\n", f->name);
			return -1;
		}
		count++;
	}
	if (!count) {
		exec_checked(pg->conn, "ROLLBACK");
		fprintf(stderr, "transitd: no seed files start with %s\n", prefix);
		return -1;
	}
	return exec_checked(pg->conn, "COMMIT");
}

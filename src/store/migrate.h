#ifndef TRANSITD_MIGRATE_H
#define TRANSITD_MIGRATE_H
/*
 * Schema migrations: the numbered SQL files compiled into the binary, applied
 * in order, each in its own transaction together with its row in
 * schema_migrations. A session advisory lock keeps two instances from
 * migrating at once.
 */
#include "pg.h"

/* Applies what is missing; prints one line per applied file. 0 or -1. */
int migrate_up(struct pg *pg);

/* The highest version this binary knows. */
int migrate_known_version(void);

/*
 * Compares the database with this binary: 0 when current, 1 when migrations
 * are missing, 2 when the database has a version this binary does not know,
 * -1 when it cannot tell (database unreachable).
 */
int migrate_check(struct pg *pg, int *db_version);

/* Runs every embedded seed file whose name starts with prefix, in name
 * order, in one transaction, after the SQL in setup (or NULL). 0 or -1. */
int migrate_seed(struct pg *pg, const char *prefix, const char *setup);

#endif

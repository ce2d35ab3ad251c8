#ifndef TRANSITD_DOMAIN_DOCUMENT_H
#define TRANSITD_DOMAIN_DOCUMENT_H
/*
 * Reads whose answer PostgreSQL builds whole: a statement whose one row and
 * one column is the API's JSON document (json_build_object, json_agg and
 * the *_json functions of the migrations). Every domain read goes through
 * document_read, so "no row" is the same 404 everywhere.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

/*
 * Runs stmt with its n text parameters and appends the document to out.
 * 0, or -1 with err: 404 "<what> <first parameter> does not exist" when
 * the statement answers no row (or a NULL document), else what pg_exec
 * reports (503 database down, 500). Blocks on db.
 */
int document_read(struct pg *db, struct arena *a, const struct sql_stmt *stmt, int n, const char *const *v,
		  const char *what, struct buf *out, struct api_error *err);

/* Appends the first column of r's first row (a document) to out; r has a row. */
void document_copy(PGresult *r, struct buf *out);

#endif

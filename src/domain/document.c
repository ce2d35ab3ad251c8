#include "document.h"

#include "../core/banned.h"

int document_read(struct pg *db, struct arena *a, const struct sql_stmt *stmt, int n, const char *const *v,
		  const char *what, struct buf *out, struct api_error *err)
{
	PGresult *r = pg_exec(db, a, stmt, n, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		if (!n)
			return api_fail(err, "not-found", "%s does not exist", what);
		return api_fail(err, "not-found", "%s %s does not exist", what, v[0] ? v[0] : "");
	}
	document_copy(r, out);
	return 0;
}

void document_copy(PGresult *r, struct buf *out)
{
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
}

#include "outcome.h"

#include <stdlib.h>
#include <string.h>

#include "../core/banned.h"

enum { STATUS, BODY, REPLAYED, SLUG, DETAIL, FIELD, EXTRA, CARD, REF };

static int64_t id_or_zero(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : atoll(PQgetvalue(r, row, col));
}

int write_outcome_read(PGresult *r, struct arena *a, struct write_outcome *o, struct api_error *err)
{
	if (PQntuples(r) != 1)
		return api_fail(err, "internal", "a money call answered no outcome");
	return write_outcome_read_row(r, 0, a, o, err);
}

int write_outcome_read_row(PGresult *r, int row, struct arena *a, struct write_outcome *o, struct api_error *err)
{
	memset(o, 0, sizeof(*o));
	if (row >= PQntuples(r) || PQnfields(r) != REF + 1)
		return api_fail(err, "internal", "a money call answered no outcome");
	if (PQgetisnull(r, row, STATUS)) {
		const char *slug = PQgetisnull(r, row, SLUG) ? "internal" : PQgetvalue(r, row, SLUG);
		const char *detail = PQgetvalue(r, row, DETAIL);
		if (!PQgetisnull(r, row, FIELD))
			api_fail_field(err, PQgetvalue(r, row, FIELD), "%s", detail);
		else
			api_fail(err, slug, "%s", detail);
		if (!PQgetisnull(r, row, EXTRA))
			err->extra = arena_strdup(a, PQgetvalue(r, row, EXTRA));
		if (!strcmp(err->slug, "idempotency-in-progress"))
			err->retry_after = 1;
		return -1;
	}
	o->status = atoi(PQgetvalue(r, row, STATUS));
	o->body = PQgetvalue(r, row, BODY);
	o->len = (size_t)PQgetlength(r, row, BODY);
	o->replayed = !PQgetisnull(r, row, REPLAYED) && PQgetvalue(r, row, REPLAYED)[0] == 't';
	o->card_id = id_or_zero(r, row, CARD);
	o->ref_id = id_or_zero(r, row, REF);
	return 0;
}

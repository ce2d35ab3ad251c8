#include "outcome.h"

#include <stdlib.h>
#include <string.h>

#include "../core/banned.h"

enum { STATUS, BODY, REPLAYED, SLUG, DETAIL, FIELD, EXTRA, CARD, REF };

static int64_t id_or_zero(PGresult *r, int col)
{
	return PQgetisnull(r, 0, col) ? 0 : atoll(PQgetvalue(r, 0, col));
}

int write_outcome_read(PGresult *r, struct arena *a, struct write_outcome *o, struct api_error *err)
{
	memset(o, 0, sizeof(*o));
	if (PQntuples(r) != 1 || PQnfields(r) != REF + 1)
		return api_fail(err, "internal", "a money call answered no outcome");
	if (PQgetisnull(r, 0, STATUS)) {
		const char *slug = PQgetisnull(r, 0, SLUG) ? "internal" : PQgetvalue(r, 0, SLUG);
		const char *detail = PQgetvalue(r, 0, DETAIL);
		if (!PQgetisnull(r, 0, FIELD))
			api_fail_field(err, PQgetvalue(r, 0, FIELD), "%s", detail);
		else
			api_fail(err, slug, "%s", detail);
		if (!PQgetisnull(r, 0, EXTRA))
			err->extra = arena_strdup(a, PQgetvalue(r, 0, EXTRA));
		if (!strcmp(err->slug, "idempotency-in-progress"))
			err->retry_after = 1;
		return -1;
	}
	o->status = atoi(PQgetvalue(r, 0, STATUS));
	o->body = PQgetvalue(r, 0, BODY);
	o->len = (size_t)PQgetlength(r, 0, BODY);
	o->replayed = !PQgetisnull(r, 0, REPLAYED) && PQgetvalue(r, 0, REPLAYED)[0] == 't';
	o->card_id = id_or_zero(r, CARD);
	o->ref_id = id_or_zero(r, REF);
	return 0;
}

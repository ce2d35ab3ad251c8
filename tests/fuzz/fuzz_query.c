/* libFuzzer harness: query strings through the decoder, the page and cursor
 * parser, and the canonical forms of the cached families. Invariants: a
 * canonical value is a fixed point (normalising it again changes nothing),
 * and two spellings of one query share one cache field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/params.h"
#include "http/http.h"
#include "store/cache.h"

static struct cache_family *const families[] = { &family_stations, &family_alerts, &family_rail_runs,
						 &family_card_history };

static struct request *new_request(const char *qs)
{
	struct request *req = calloc(1, sizeof(*req));
	arena_init(&req->arena);
	req->query_string = qs;
	request_parse_query(req);
	return req;
}

static void free_request(struct request *req)
{
	arena_release(&req->arena);
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *qs = malloc(size + 1);
	memcpy(qs, data, size);
	qs[size] = '\0';
	struct request *req = new_request(qs);
	struct api_error e;
	int64_t limit, cursor;
	if (!req->bad_query && query_page(req, &limit, &cursor, &e) == 0 &&
	    (limit < 1 || limit > 100 || cursor < 0))
		abort();
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]) && !req->bad_query; f++) {
		const struct cache_family *fam = families[f];
		const char *v[8], *again[8];
		int n = 0;
		for (const char *const *q = fam->query; *q; q++, n++)
			v[n] = request_query(req, *q);
		if (fam->normalize(req, v, &e))
			continue;
		const char *field = cache_field(&req->arena, v, n);
		/* The canonical values, sent again, come out unchanged. */
		struct buf b = BUF_INIT;
		for (int i = 0; i < n; i++) {
			if (!v[i])
				continue;
			if (b.len)
				buf_addch(&b, '&');
			buf_adds(&b, fam->query[i]);
			buf_addch(&b, '=');
			for (const char *p = v[i]; *p; p++)
				buf_addf(&b, "%%%02X", (unsigned char)*p);
		}
		buf_addch(&b, '\0');
		struct request *second = new_request(b.ptr);
		for (int i = 0; i < n; i++)
			again[i] = request_query(second, fam->query[i]);
		if (second->bad_query || fam->normalize(second, again, &e))
			abort();
		const char *field2 = cache_field(&second->arena, again, n);
		if ((field == NULL) != (field2 == NULL) || (field && strcmp(field, field2)))
			abort();
		free_request(second);
		buf_release(&b);
	}
	free_request(req);
	free(qs);
	return 0;
}

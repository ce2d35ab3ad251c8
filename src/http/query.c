/* The query string of a request, split and percent-decoded. */
#include <string.h>

#include "../core/text.h"
#include "framing.h"
#include "http.h"
#include "../core/banned.h"

/* Splits the query string; the first occurrence of a name wins. */
void request_parse_query(struct request *req)
{
	req->query = arena_alloc(&req->arena, MAX_QUERY_PARAMS * sizeof(*req->query));
	const char *p = req->query_string;
	while (p && *p && req->nquery < MAX_QUERY_PARAMS) {
		size_t n = strcspn(p, "&");
		size_t klen = strcspn(p, "=");
		if (klen > n)
			klen = n;
		if (klen) {
			size_t kl, vl = 0;
			char *key = framing_decode(&req->arena, p, klen, 1, &kl);
			char *value = klen < n ? framing_decode(&req->arena, p + klen + 1, n - klen - 1, 1, &vl)
					       : arena_strdup(&req->arena, "");
			/* A NUL inside a name or value would cut it short without anyone
			 * noticing; bytes that are not UTF-8 would reach the database. */
			if (!text_utf8_valid(key, kl) || !text_utf8_valid(value, vl)) {
				req->bad_query = text_utf8_valid(key, kl) ? key : "query";
				return;
			}
			if (!request_query(req, key)) {
				req->query[req->nquery].name = key;
				req->query[req->nquery].value = value;
				req->nquery++;
			}
		}
		p += n;
		if (*p == '&')
			p++;
	}
}


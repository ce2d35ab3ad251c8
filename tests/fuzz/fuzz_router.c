/* libFuzzer harness: the real route table against any method and path.
 * Invariants: a match names a route of that method whose pattern has as
 * many {ids} as were parsed ({*rest} segments are not ids), every id is
 * >= 1; 405 lists allowed methods. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	static const enum method methods[] = { METHOD_GET, METHOD_POST, METHOD_PUT, METHOD_PATCH,
					       METHOD_DELETE, METHOD_OPTIONS, METHOD_HEAD };
	enum method m = methods[data[0] % 7];
	char *path = malloc(size);
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	const struct route *route = NULL;
	int64_t ids[REQUEST_MAX_IDS];
	int nids = 0;
	unsigned allow = 0;
	char bad[64];
	enum router_result rr = router_match(api_routes, api_routes_count, m, path, &route, ids, &nids, &allow, bad,
					     sizeof(bad));
	if (rr == ROUTER_OK) {
		/* HEAD is answered by the GET route */
		enum method want = m == METHOD_HEAD ? METHOD_GET : m;
		if (!route || route->method != want || nids < 0 || nids > REQUEST_MAX_IDS)
			abort();
		int braces = 0;
		for (const char *p = route->pattern; *p; p++)
			braces += p[0] == '{' && p[1] != '*';
		if (braces != nids)
			abort();
		for (int i = 0; i < nids; i++)
			if (ids[i] < 1)
				abort();
	} else if (rr == ROUTER_METHOD_NOT_ALLOWED) {
		char methods_text[96];
		if (!allow || (allow & m))
			abort();
		router_allow_string(allow, methods_text, sizeof(methods_text));
	} else if (rr == ROUTER_BAD_ID) {
		if (!bad[0] || !memchr(bad, '\0', sizeof(bad)))
			abort();
	}
	free(path);
	return 0;
}

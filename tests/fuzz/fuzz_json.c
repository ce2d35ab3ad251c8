/* libFuzzer harness: request bodies through the strict JSON reader and the
 * field getters every handler uses. Invariants: a refused body is a 400
 * malformed-json or a 422 naming a field; an accepted one is an object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root;
	struct api_error e;
	memset(&e, 0, sizeof(e));
	if (json_parse_body((const char *)data, size, &root, &e)) {
		if (!((e.status == 400 && !strcmp(e.slug, "malformed-json")) ||
		      (e.status == 422 && !strcmp(e.slug, "validation") && e.field[0])))
			abort();
		return 0;
	}
	if (!json_is_object(root))
		abort();
	static const char *const fields[] = { "amount", "card_id", "email", "password", "seat_ids", "run_id",
					      "user_id", "role", "body", "" };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int64_t n;
		int present;
		const char *str;
		if (json_get_int(root, fields[i], i & 1, 1000, 500000, &n, &present, &e) == 0 && present &&
		    (n < 1000 || n > 500000))
			abort();
		if (json_get_str(root, fields[i], 0, 8, &str, &e) == 0 && str && strlen(str) > 8 * 4)
			abort();
		if (json_get_time(root, fields[i], 0, &str, &e) == 0 && str && !rfc3339_valid(str))
			abort();
	}
	json_decref(root);
	return 0;
}

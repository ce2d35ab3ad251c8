#include "keys.h"

#include <string.h>

#include "../core/banned.h"

const char *family_key(struct arena *a, const struct cache_family *f, int64_t id)
{
	return cache_key(a, f, &id, 1) + strlen(cache_prefix());
}

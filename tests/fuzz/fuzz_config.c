/* libFuzzer harness: the configuration as the environment gives it. The
 * input is lines NAME=value for the settings parsed by hand (URLs, address
 * ranges, numbers); its first line also goes straight to the Redis URL,
 * TRUSTED_PROXIES and X-Forwarded-For parsers. Invariants: a loaded
 * configuration is within its documented bounds; a parsed Redis URL has a
 * host and a port in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "http/forwarded.h"

static const char *const names[] = { "REDIS_URL", "DATABASE_URL", "TRUSTED_PROXIES", "PORT", "WORKERS",
				     "MAX_BODY_BYTES", "CACHE_PREFIX", "LOG_LEVEL", "AMQP_URL", "CORS_ORIGINS",
				     "MAX_CARDS_PER_RIDER", "PASSWORD_QUEUE" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unsetenv(names[i]);
	char *line = text, *first = NULL;
	while (line) {
		char *next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!first)
			first = line;
		char *eq = strchr(line, '=');
		if (eq) {
			*eq = '\0';
			for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
				if (!strcmp(line, names[i]))
					setenv(names[i], eq + 1, 1);
			*eq = '=';
		}
		line = next;
	}
	struct config c;
	char err[256];
	if (config_load(&c, err, sizeof(err)) == 0) {
		if (c.port < 1 || c.port > 65535 || c.workers < 1 || c.redis_port < 1 || c.redis_port > 65535 ||
		    !c.redis_host[0] || c.ntrusted_proxies < 0 || c.ntrusted_proxies > CIDR_MAX ||
		    c.max_cards_per_rider < 1)
			abort();
	} else if (!memchr(err, '\0', sizeof(err)) || !err[0]) {
		abort();
	}
	struct config r;
	memset(&r, 0, sizeof(r));
	if (first && config_parse_redis_url(&r, first) == 0 &&
	    (!r.redis_host[0] || r.redis_port < 1 || r.redis_port > 65535 || r.redis_db < 0 || r.redis_db > 15))
		abort();
	struct cidr list[CIDR_MAX];
	int n = first ? cidr_parse_list(first, list, CIDR_MAX, err, sizeof(err)) : 0;
	if (n > 0) {
		struct http_header h[2] = { { "X-Forwarded-For", first }, { "Forwarded", first } };
		unsigned char out[16];
		forwarded_client(h, 1, list, n, out);
		forwarded_client(h, 2, list, n, out);
	} else if (first) {
		struct http_header h[1] = { { (data[0] & 1) ? "Forwarded" : "X-Forwarded-For", first } };
		unsigned char out[16];
		forwarded_client(h, 1, NULL, 0, out);
	}
	free(text);
	return 0;
}

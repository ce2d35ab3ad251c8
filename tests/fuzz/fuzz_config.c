/* libFuzzer harness: the configuration as the environment gives it. The
 * input is lines NAME=value for any setting of the table (or an older
 * name); its first line also goes straight to the Redis URL,
 * TRUSTED_PROXIES and X-Forwarded-For parsers. Invariants: a loaded
 * configuration has every number within its row's bounds and every string
 * set; a parsed Redis URL has a host and a port in range. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "http/forwarded.h"

static void clear_settings(void)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		unsetenv(config_settings[i].name);
		if (config_settings[i].alias)
			unsetenv(config_settings[i].alias);
	}
}

/* Whether every field of a loaded configuration is what its row allows. */
static int within_table(const struct config *c)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		const char *f = (const char *)c + s->offset;
		long n;
		switch (s->type) {
		case CONFIG_INT:
		case CONFIG_BOOL:
			n = *(const int *)f;
			break;
		case CONFIG_SIZE:
			n = (long)*(const size_t *)f;
			break;
		case CONFIG_ENUM:
			n = *(const int *)f;
			if (n < 0 || n > 16)
				return 0;
			continue;
		default:
			if (!*(const char *const *)f || (s->max && strlen(*(const char *const *)f) > (size_t)s->max))
				return 0;
			continue;
		}
		if (n < s->min || n > s->max)
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	clear_settings();
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
			if (config_setting_find(line))
				setenv(line, eq + 1, 1);
			*eq = '=';
		}
		line = next;
	}
	struct config c;
	char err[256];
	if (config_load(&c, err, sizeof(err)) == 0) {
		if (!within_table(&c) || c.redis_port < 1 || c.redis_port > 65535 || !c.redis_host[0] ||
		    c.ntrusted_proxies < 0 || c.ntrusted_proxies > CIDR_MAX)
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

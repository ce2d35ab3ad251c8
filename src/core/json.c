#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* After jansson refused an integer that does not fit in 64 bits, find which
 * field held it so the client is told its name. */
static const char *find_huge(json_t *v, const char *name)
{
	if (json_is_real(v) && fabs(json_real_value(v)) >= 9.2e18)
		return name;
	const char *key;
	json_t *child;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) {
			const char *f = find_huge(child, key);
			if (f)
				return f;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child) {
			const char *f = find_huge(child, name);
			if (f)
				return f;
		}
	}
	return NULL;
}

/* The key whose value ends at byte pos, as in "amount": 99999999999999999999,
 * read back from the text: jansson reports where it gave up. */
static int key_before(const char *data, size_t pos, char *out, size_t len)
{
	size_t i = pos;
	while (i > 0 && strchr("0123456789+-.eE \t\r\n", data[i - 1]))
		i--;
	if (i == 0 || data[i - 1] != ':')
		return -1;
	i--;
	while (i > 0 && strchr(" \t\r\n", data[i - 1]))
		i--;
	if (i < 2 || data[i - 1] != '"')
		return -1;
	size_t end = --i;
	while (i > 0 && (data[i - 1] != '"' || (i > 1 && data[i - 2] == '\\')))
		i--;
	if (i == 0 || end - i >= len)
		return -1;
	memcpy(out, data + i, end - i);
	out[end - i] = '\0';
	return 0;
}

int json_parse_body(const char *data, size_t len, json_t **out, struct api_error *err)
{
	json_error_t je;
	*out = NULL;
	if (len == 0)
		return api_fail(err, "malformed-json", "the request body is empty; a JSON object is expected");
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (strstr(je.text, "too big")) {
			char key[64];
			size_t pos = (size_t)je.position < len ? (size_t)je.position : len;
			json_t *reals = json_loadb(data, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &je);
			if (!reals)
				return api_fail(err, "malformed-json", "invalid JSON at line %d column %d: %s", je.line,
						je.column, je.text);
			const char *f = key_before(data, pos, key, sizeof(key)) == 0 ? key : find_huge(reals, "body");
			int rc = api_fail_field(err, f ? f : "body", "must be an integer that fits in 64 bits");
			json_decref(reals);
			return rc;
		}
		return api_fail(err, "malformed-json", "invalid JSON at line %d column %d: %s", je.line,
				je.column, je.text);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return api_fail_field(err, "body", "must be a JSON object");
	}
	*out = root;
	return 0;
}

int json_get_int(json_t *obj, const char *field, int required, int64_t lo, int64_t hi, int64_t *out,
		 int *present, struct api_error *err)
{
	json_t *v = json_object_get(obj, field);
	if (present)
		*present = v && !json_is_null(v);
	if (!v || json_is_null(v)) {
		if (required)
			return api_fail_field(err, field, "is required");
		return 0;
	}
	if (!json_is_integer(v))
		return api_fail_field(err, field, "must be an integer from %lld to %lld", (long long)lo, (long long)hi);
	json_int_t n = json_integer_value(v);
	if (n < lo || n > hi)
		return api_fail_field(err, field, "must be between %lld and %lld", (long long)lo, (long long)hi);
	*out = n;
	return 0;
}

int json_get_str(json_t *obj, const char *field, int required, size_t max_len, const char **out,
		 struct api_error *err)
{
	json_t *v = json_object_get(obj, field);
	if (!v || json_is_null(v)) {
		*out = NULL;
		if (required)
			return api_fail_field(err, field, "is required");
		return 0;
	}
	if (!json_is_string(v))
		return api_fail_field(err, field, "must be a string");
	/* Characters, not bytes: count the bytes that do not continue a UTF-8 sequence. */
	size_t chars = 0, bytes = json_string_length(v);
	const unsigned char *p = (const unsigned char *)json_string_value(v);
	for (size_t i = 0; i < bytes; i++)
		chars += (p[i] & 0xc0) != 0x80;
	if (chars > max_len)
		return api_fail_field(err, field, "must be at most %zu characters", max_len);
	*out = json_string_value(v);
	return 0;
}

int json_get_bool(json_t *obj, const char *field, int required, int *out, int *present, struct api_error *err)
{
	json_t *v = json_object_get(obj, field);
	if (present)
		*present = v && !json_is_null(v);
	if (!v || json_is_null(v)) {
		if (required)
			return api_fail_field(err, field, "is required");
		return 0;
	}
	if (!json_is_boolean(v))
		return api_fail_field(err, field, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

int parse_int64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	if (!s || !*s)
		return -1;
	const char *p = s + (*s == '-');
	if (!*p)
		return -1;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return -1;
	errno = 0;
	char *end;
	long long n = strtoll(s, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

/* RFC 3339 with a zone: 2026-11-26T10:00:00Z or 2026-11-26T05:00:00.5-05:00.
 * Checked before PostgreSQL sees it: it would also take "tomorrow" or "infinity". */
static int digits(const char *s, int n)
{
	int v = 0;
	while (n--)
		v = v * 10 + (*s++ - '0');
	return v;
}

int rfc3339_valid(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	static const int days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t i = 0;
	for (; shape[i]; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return 0;
	}
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] ||
	    (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) || digits(s + 11, 2) > 23 ||
	    digits(s + 14, 2) > 59 || digits(s + 17, 2) > 59)
		return 0;
	if (s[i] == '.') {
		i++;
		if (s[i] < '0' || s[i] > '9')
			return 0;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (s[i] == 'Z')
		return s[i + 1] == '\0';
	if (s[i] != '+' && s[i] != '-')
		return 0;
	const char *z = s + i + 1;
	return z[0] >= '0' && z[0] <= '9' && z[1] >= '0' && z[1] <= '9' && z[2] == ':' && z[3] >= '0' &&
	       z[3] <= '9' && z[4] >= '0' && z[4] <= '9' && z[5] == '\0' && digits(z, 2) <= 23 && digits(z + 3, 2) <= 59;
}

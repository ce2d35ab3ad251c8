#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

/* The name of the member whose value holds byte pos (jansson reports where
 * it gave up, just after the number it refused): the innermost object key
 * open there, so a number inside an array is named by the array's key.
 * Scans the text jansson had accepted up to pos. 0, or -1 when the value is
 * not inside an object (a bare number, or deeper than it tracks). */
#define FIELD_DEPTH 32
static int field_at(const char *data, size_t pos, char *out, size_t len)
{
	char keys[FIELD_DEPTH][64], last[64];
	char kind[FIELD_DEPTH];
	int has_key[FIELD_DEPTH];
	int depth = 0, have_last = 0;
	for (size_t i = 0; i < pos; i++) {
		char ch = data[i];
		if (ch == '"') {
			size_t n = 0;
			for (i++; i < pos && data[i] != '"'; i++) {
				if (data[i] == '\\' && i + 1 < pos)
					i++;
				if (n + 1 < sizeof(last))
					last[n++] = data[i];
			}
			last[n] = '\0';
			have_last = 1;
			continue;
		}
		if (ch == ':' && have_last && depth > 0 && depth <= FIELD_DEPTH) {
			memcpy(keys[depth - 1], last, sizeof(last));
			has_key[depth - 1] = 1;
		} else if (ch == '{' || ch == '[') {
			depth++;
			if (depth <= FIELD_DEPTH) {
				kind[depth - 1] = ch;
				has_key[depth - 1] = 0;
			}
		} else if ((ch == '}' || ch == ']') && depth > 0) {
			depth--;
		}
		if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n')
			have_last = 0;
	}
	for (int d = (depth < FIELD_DEPTH ? depth : FIELD_DEPTH) - 1; d >= 0; d--) {
		if (kind[d] == '{' && has_key[d]) {
			if (!keys[d][0] || strlen(keys[d]) >= len)
				return -1;
			memcpy(out, keys[d], strlen(keys[d]) + 1);
			return 0;
		}
	}
	return -1;
}

static int number_refused(const json_error_t *je)
{
	return strstr(je->text, "too big") || strstr(je->text, "real number overflow");
}

/* jansson refused the document. A number too large for its type is valid
 * syntax: the field holding it is out of range (422 naming it), provided the
 * rest of the document is well formed, which a copy with each such number
 * replaced by 0 tells. Anything else is malformed JSON (400). */
static int refused(const char *data, size_t len, json_error_t *je, struct api_error *err)
{
	if (!number_refused(je))
		return api_fail(err, "malformed-json", "invalid JSON at line %d column %d: %s", je->line, je->column,
				je->text);
	char key[64];
	size_t pos = (size_t)je->position < len ? (size_t)je->position : len;
	const char *field = field_at(data, pos, key, sizeof(key)) == 0 ? key : "body";
	const char *why = strstr(je->text, "too big") ? "must be an integer that fits in 64 bits" : "is a number out of range";
	char *copy = xmalloc(len);
	memcpy(copy, data, len);
	int ranged = 0;
	for (int round = 0; round < 64; round++) {
		size_t start = pos;
		while (start > 0 && strchr("0123456789+-.eE", copy[start - 1]))
			start--;
		if (start == pos)
			break;
		memset(copy + start, ' ', pos - start);
		copy[start] = '0';
		json_t *again = json_loadb(copy, len, JSON_REJECT_DUPLICATES, je);
		if (again) {
			json_decref(again);
			ranged = 1;
			break;
		}
		if (!number_refused(je))
			break;
		pos = (size_t)je->position < len ? (size_t)je->position : len;
	}
	free(copy);
	if (ranged)
		return api_fail_field(err, field, "%s", why);
	return api_fail(err, "malformed-json", "invalid JSON at line %d column %d: %s", je->line, je->column, je->text);
}

int json_parse_body(const char *data, size_t len, json_t **out, struct api_error *err)
{
	json_error_t je;
	*out = NULL;
	if (len == 0)
		return api_fail(err, "malformed-json", "the request body is empty; a JSON object is expected");
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return refused(data, len, &je, err);
	if (!json_is_object(root)) {
		json_decref(root);
		return api_fail_field(err, "body", "must be a JSON object");
	}
	*out = root;
	return 0;
}

/* The value of field, or NULL when it is absent or null, with *rc: -1 (err
 * filled) when the field is required, else 0. *present (may be NULL) says
 * whether it was given. */
static json_t *given(json_t *obj, const char *field, int required, int *present, int *rc, struct api_error *err)
{
	json_t *v = json_object_get(obj, field);
	if (present)
		*present = v && !json_is_null(v);
	*rc = 0;
	if (v && !json_is_null(v))
		return v;
	if (required)
		*rc = api_fail_field(err, field, "is required");
	return NULL;
}

int json_get_int(json_t *obj, const char *field, int required, int64_t lo, int64_t hi, int64_t *out,
		 int *present, struct api_error *err)
{
	int rc;
	json_t *v = given(obj, field, required, present, &rc, err);
	if (!v)
		return rc;
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
	int rc;
	json_t *v = given(obj, field, required, NULL, &rc, err);
	if (!v) {
		*out = NULL;
		return rc;
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

int json_get_time(json_t *obj, const char *field, int required, const char **out, struct api_error *err)
{
	if (json_get_str(obj, field, required, 40, out, err))
		return -1;
	if (*out && !rfc3339_valid(*out))
		return api_fail_field(err, field, "must be an RFC 3339 time with a zone");
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

/* "dddd-dd-dd" at s, a day that exists (29 February in leap years only),
 * the year from lo to hi. Reads at most 10 bytes (stops at a NUL). */
static int date_at(const char *s, int lo, int hi)
{
	static const char shape[] = "dddd-dd-dd";
	static const int days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	for (size_t i = 0; shape[i]; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return 0;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	return y >= lo && y <= hi && mo >= 1 && mo <= 12 && d >= 1 && d <= days[mo - 1] &&
	       !(mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400)));
}

int date_valid(const char *s, int lo_year, int hi_year)
{
	return date_at(s, lo_year, hi_year) && s[10] == '\0';
}

int rfc3339_valid(const char *s)
{
	static const char shape[] = "Tdd:dd:dd";
	if (!date_at(s, 1900, 9999))
		return 0;
	size_t i = 10;
	for (size_t k = 0; shape[k]; k++, i++) {
		if (shape[k] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[k])
			return 0;
	}
	if (digits(s + 11, 2) > 23 || digits(s + 14, 2) > 59 || digits(s + 17, 2) > 59)
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

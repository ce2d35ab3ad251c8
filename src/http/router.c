#include "router.h"

#include <stdio.h>
#include <string.h>

#include "../core/json.h"
#include "../core/banned.h"

static const struct {
	enum method m;
	const char *name;
} methods[] = {
	{ METHOD_GET, "GET" },	 { METHOD_HEAD, "HEAD" },	      { METHOD_POST, "POST" },	   { METHOD_PUT, "PUT" },
	{ METHOD_PATCH, "PATCH" }, { METHOD_DELETE, "DELETE" }, { METHOD_OPTIONS, "OPTIONS" },
};

const char *router_method_name(enum method m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (methods[i].m == m)
			return methods[i].name;
	return "?";
}

enum method router_method_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(methods[i].name, s))
			return methods[i].m;
	return 0;
}

const char *router_allow_string(unsigned allow, char *buf, size_t len)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!(allow & methods[i].m))
			continue;
		int n = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0';
			break;
		}
		off += (size_t)n;
	}
	return buf;
}

/*
 * Compares one pattern with a path. Returns 1 on match, 0 on no match, -1
 * when only an {id} segment failed to parse (the path has the route's shape).
 */
static int match_one(const char *pat, const char *path, int64_t ids[], int *nids, char *bad, size_t bad_len)
{
	int n = 0, bad_id = 0;
	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		size_t pl = strcspn(pat, "/");
		size_t sl = strcspn(path, "/");
		if (pat[0] == '{' && pat[1] == '*') {
			/* the rest of the path: one segment or more, none empty */
			if (!*path || *path == '/' || strstr(path, "//") || path[strlen(path) - 1] == '/')
				return 0;
			*nids = n;
			return bad_id ? -1 : 1;
		}
		if (*pat == '{') {
			char seg[24];
			int64_t v;
			if (sl == 0)
				return 0;
			if (sl >= sizeof(seg) || n >= REQUEST_MAX_IDS) {
				v = -1;
			} else {
				memcpy(seg, path, sl);
				seg[sl] = '\0';
				if (parse_int64(seg, 1, INT64_MAX, &v))
					v = -1;
			}
			if (v < 0 && !bad_id) {
				bad_id = 1;
				snprintf(bad, bad_len, "%.*s", (int)(pl - 2), pat + 1);
			}
			if (n < REQUEST_MAX_IDS)
				ids[n++] = v;
		} else if (pl != sl || memcmp(pat, path, pl)) {
			return 0;
		}
		pat += pl;
		path += sl;
	}
	if (*pat || *path)
		return 0;
	*nids = n;
	return bad_id ? -1 : 1;
}

const char *router_rest(const char *pattern, const char *path)
{
	const char *star = strstr(pattern, "/{*");
	if (!star)
		return NULL;
	/* The segments before it are literal or ids: skip as many in path. */
	int segments = 0;
	for (const char *p = pattern; p <= star; p++)
		segments += *p == '/';
	const char *p = path;
	for (int i = 0; i < segments; i++) {
		p = strchr(p, '/');
		if (!p)
			return NULL;
		p++;
	}
	return *p ? p : NULL;
}

enum router_result router_match(const struct route *table, size_t n, enum method method, const char *path,
				const struct route **out, int64_t ids[REQUEST_MAX_IDS], int *nids,
				unsigned *allow, char *bad_param, size_t bad_len)
{
	enum method want = method == METHOD_HEAD ? METHOD_GET : method;
	int shape_bad = 0;
	*allow = 0;
	/* A trailing slash names the same resource. */
	char trimmed[512];
	size_t len = strlen(path);
	if (len > 1 && path[len - 1] == '/' && len < sizeof(trimmed)) {
		memcpy(trimmed, path, len - 1);
		trimmed[len - 1] = '\0';
		path = trimmed;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t tmp[REQUEST_MAX_IDS];
		int tn = 0;
		char bad[64];
		int m = match_one(table[i].pattern, path, tmp, &tn, bad, sizeof(bad));
		if (m == 0)
			continue;
		if (m < 0) {
			if (!shape_bad)
				snprintf(bad_param, bad_len, "%s", bad);
			shape_bad = 1;
			continue;
		}
		*allow |= table[i].method;
		if (table[i].method == METHOD_GET)
			*allow |= METHOD_HEAD;
		if (table[i].method == want) {
			*out = &table[i];
			memcpy(ids, tmp, sizeof(tmp));
			*nids = tn;
			return ROUTER_OK;
		}
	}
	if (*allow)
		return ROUTER_METHOD_NOT_ALLOWED;
	return shape_bad ? ROUTER_BAD_ID : ROUTER_NOT_FOUND;
}

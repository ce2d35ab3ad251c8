#ifndef TRANSITD_ROUTER_H
#define TRANSITD_ROUTER_H
/*
 * Matching a method and path against the route table. Patterns are literal
 * segments and {name} segments, which match a positive 64-bit integer; a
 * last segment {*name} matches the rest of the path (one or more non-empty
 * segments), which the handler reads from req->path (router_rest).
 */
#include <stddef.h>

#include "http.h"

enum router_result {
	ROUTER_OK,
	ROUTER_NOT_FOUND,
	ROUTER_METHOD_NOT_ALLOWED, /* *allow holds the methods the path has */
	ROUTER_BAD_ID,             /* *bad_param names the {segment} that is not an id */
};

/*
 * Finds the route for method and path. On ROUTER_OK fills *out, ids[] and
 * *nids. On ROUTER_METHOD_NOT_ALLOWED, *allow is a bit set of methods. On
 * ROUTER_BAD_ID, bad_param receives the parameter name (NUL-terminated).
 * HEAD matches GET routes.
 */
enum router_result router_match(const struct route *table, size_t n, enum method method, const char *path,
				const struct route **out, int64_t ids[REQUEST_MAX_IDS], int *nids,
				unsigned *allow, char *bad_param, size_t bad_len);

/* The part of path a {*name} segment of pattern matched, or NULL when the
 * pattern has none or path does not reach it. */
const char *router_rest(const char *pattern, const char *path);

/* "GET, POST" for a method bit set; returns buf. */
const char *router_allow_string(unsigned allow, char *buf, size_t len);
const char *router_method_name(enum method m);
enum method router_method_parse(const char *s);

#endif

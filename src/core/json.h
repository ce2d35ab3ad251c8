#ifndef TRANSITD_JSON_H
#define TRANSITD_JSON_H
/*
 * Strict reading of client JSON (jansson underneath).
 *
 * Every getter returns 0 on success and -1 with err filled as a 422 naming
 * the field. Integers must be JSON integers: 1000.0, "1000", 1e3, true and
 * values beyond 64 bits are all refused. Unknown fields are ignored.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "problem.h"

/* Parses a request body into an object. -1 with 400 malformed-json (or 422
 * naming a field whose integer does not fit in 64 bits). *out is a new
 * reference the caller releases. */
int json_parse_body(const char *data, size_t len, json_t **out, struct api_error *err);

/* *present (may be NULL) says whether the field was given (null counts as absent). */
int json_get_int(json_t *obj, const char *field, int required, int64_t lo, int64_t hi, int64_t *out,
		 int *present, struct api_error *err);
int json_get_str(json_t *obj, const char *field, int required, size_t max_len, const char **out,
		 struct api_error *err);
/* A string of at most 40 characters that is an RFC 3339 time with a zone
 * (rfc3339_valid); *out is NULL when absent and not required. */
int json_get_time(json_t *obj, const char *field, int required, const char **out, struct api_error *err);

/* Strict decimal integer text (query strings, path segments): optional '-',
 * digits only, no spaces, within [lo, hi]. 0 or -1. */
int parse_int64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* 1 when s is an RFC 3339 time with a zone (Z or ±hh:mm), of a day that
 * exists in a year from 1900, 0 otherwise. */
int rfc3339_valid(const char *s);
/* 1 when s is exactly a date YYYY-MM-DD that exists (29 February in leap
 * years only) with a year from lo_year to hi_year, 0 otherwise. */
int date_valid(const char *s, int lo_year, int hi_year);

#endif

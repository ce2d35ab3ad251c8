#ifndef TRANSITD_PROBLEM_H
#define TRANSITD_PROBLEM_H
/*
 * The one error convention: a function that fails returns -1 and fills a
 * struct api_error; the HTTP layer renders it as RFC 9457 problem+json.
 * A slug names the problem type; one table maps slugs to status and title,
 * so a handler never picks a status by hand.
 */
#include <stdarg.h>

#include "buf.h"

struct api_error {
	int status;
	const char *slug;
	char detail[256];
	char field[64];      /* validation: the field named, "" otherwise */
	char message[192];   /* validation: what is wrong with it */
	const char *extra;   /* raw JSON members appended to the problem, or NULL */
	int retry_after;     /* seconds, 0 = no Retry-After header */
};

/* Fills e for the slug (status from the table) and returns -1. */
int api_fail(struct api_error *e, const char *slug, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* api_fail with a va_list, for helpers that take api_fail's arguments. */
int api_failv(struct api_error *e, const char *slug, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* A 422 "validation" error naming field; returns -1. */
int api_fail_field(struct api_error *e, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int problem_status(const char *slug);
const char *problem_title(const char *slug);

/* Appends the problem document for e to out. */
void problem_render(struct buf *out, const struct api_error *e, const char *instance, const char *request_id);

#endif

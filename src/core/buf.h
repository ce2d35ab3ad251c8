#ifndef TRANSITD_BUF_H
#define TRANSITD_BUF_H
/*
 * struct buf: a growable byte string.
 *
 * Invariants: `ptr` is never NULL and ptr[len] == '\0', so a buf is always a
 * valid C string (it may also hold NUL bytes inside). After buf_init the buf
 * points at a shared empty string and owns no memory.
 *
 * Lifecycle: buf_init → appends → buf_release (frees, leaves it initialised)
 * or buf_detach (hands the malloc'd string to the caller).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *ptr;
	size_t len;
	size_t cap; /* 0 while ptr is the shared empty string */
};

#define BUF_INIT { buf_empty, 0, 0 }
extern char buf_empty[];

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps the memory */
char *buf_detach(struct buf *b, size_t *len);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
void buf_add_i64(struct buf *b, int64_t v);

/* Appends s as a JSON string literal, quotes included. */
void buf_add_json_str(struct buf *b, const char *s);
void buf_add_json_strn(struct buf *b, const char *s, size_t n);

#endif

#ifndef TRANSITD_ARENA_H
#define TRANSITD_ARENA_H
/*
 * struct arena: memory with one lifetime, normally one HTTP request.
 *
 * Allocations are carved from chunks and are never freed one by one;
 * arena_release frees every chunk and runs every registered cleanup (today
 * each PGresult and redisReply; a request's JSON body and buffers are freed
 * by request_free) in reverse order of registration. Error paths therefore cannot leak: whatever was
 * registered goes when the request goes. Not thread-safe: one owner at a time.
 */
#include <stddef.h>

struct arena_chunk;
struct arena_cleanup;

struct arena {
	struct arena_chunk *chunk;
	struct arena_cleanup *cleanups;
	size_t bytes; /* total allocated, for metrics and tests */
};

void arena_init(struct arena *a);
/* Frees everything; the arena is initialised again and can be reused. */
void arena_release(struct arena *a);

/* 16-byte aligned, never NULL (aborts when out of memory). */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs fn(p) at release. Returns p so calls can be chained. */
void *arena_defer(struct arena *a, void (*fn)(void *), void *p);

#endif

#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"
#include "banned.h"

#define CHUNK_MIN 4096
#define ALIGN 16

struct arena_chunk {
	struct arena_chunk *prev;
	size_t used, size;
	_Alignas(ALIGN) unsigned char data[];
};

struct arena_cleanup {
	struct arena_cleanup *prev;
	void (*fn)(void *);
	void *p;
};

void arena_init(struct arena *a)
{
	a->chunk = NULL;
	a->cleanups = NULL;
	a->bytes = 0;
}

void arena_release(struct arena *a)
{
	/* Cleanups live in the chunks, so run them all before freeing any chunk. */
	for (struct arena_cleanup *c = a->cleanups; c; c = c->prev)
		c->fn(c->p);
	struct arena_chunk *ch = a->chunk;
	while (ch) {
		struct arena_chunk *prev = ch->prev;
		free(ch);
		ch = prev;
	}
	arena_init(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
	struct arena_chunk *ch = a->chunk;
	if (ch && ch->size - ch->used < need && need > ch->size / 4) {
		/* A big one-off gets a chunk of its own behind the current one,
		 * which stays the place for small allocations. */
		struct arena_chunk *own = xmalloc(sizeof(*own) + need);
		own->size = own->used = need;
		own->prev = ch->prev;
		ch->prev = own;
		a->bytes += need;
		return own->data;
	}
	if (!ch || ch->size - ch->used < need) {
		size_t size = ch ? ch->size * 2 : CHUNK_MIN;
		if (size > 1 << 20)
			size = 1 << 20;
		if (size < need)
			size = need;
		struct arena_chunk *fresh = xmalloc(sizeof(*fresh) + size);
		fresh->used = 0;
		fresh->size = size;
		fresh->prev = ch;
		a->chunk = ch = fresh;
	}
	void *p = ch->data + ch->used;
	ch->used += need;
	a->bytes += need;
	return p;
}

void *arena_zalloc(struct arena *a, size_t n)
{
	return memset(arena_alloc(a, n), 0, n);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return arena_strdup(a, "");
	char *p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void *arena_defer(struct arena *a, void (*fn)(void *), void *p)
{
	struct arena_cleanup *c = arena_alloc(a, sizeof(*c));
	c->fn = fn;
	c->p = p;
	c->prev = a->cleanups;
	a->cleanups = c;
	return p;
}

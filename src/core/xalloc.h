#ifndef TRANSITD_XALLOC_H
#define TRANSITD_XALLOC_H
/*
 * Allocation that cannot fail: out of memory aborts the process, so callers
 * never test for NULL. Sizes that come from a client must be checked against
 * a limit before they reach these.
 */
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif

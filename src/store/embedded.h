#ifndef TRANSITD_EMBEDDED_H
#define TRANSITD_EMBEDDED_H
/*
 * Files compiled into the binary by scripts/embed.sh. Each table ends with an
 * entry whose name is NULL; data is NUL-terminated and sorted by file name.
 */
#include <stddef.h>

struct embedded_file {
	const char *name;
	const char *start;
	const char *end;
};

extern const struct embedded_file embedded_migrations[]; /* db/migrations, in order */
extern const struct embedded_file embedded_seeds[];      /* db/seed */
extern const struct embedded_file embedded_docs[];       /* docs/openapi.json */

static inline size_t embedded_len(const struct embedded_file *f)
{
	return (size_t)(f->end - f->start);
}

#endif

#ifndef TRANSITD_TEXT_H
#define TRANSITD_TEXT_H
/*
 * Folding names for comparison: "Estación Facatativá", "ESTACION FACATATIVA"
 * and "estacion facatativa" fold alike. ASCII letters go to lower case and
 * the accented Latin letters of Spanish, Portuguese and French (UTF-8,
 * U+00C0..U+00FF) to their base letter. Everything else, blanks included,
 * is kept as it is ("Kennedy " is not "Kennedy").
 * The SQL function fold_name() (db/migrations/0008_security.sql) folds the
 * same way, so a folded query value compares equal to a folded column.
 */
#include <stddef.h>

#include "arena.h"

/* 1 when the n bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing past U+10FFFF, no NUL), 0 otherwise. */
int text_utf8_valid(const char *s, size_t n);

/* The folded copy of s, allocated in a. Never NULL. */
char *text_fold(struct arena *a, const char *s);

#endif

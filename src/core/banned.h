#ifndef TRANSITD_BANNED_H
#define TRANSITD_BANNED_H
/* Unbounded string functions: use struct buf or a checked snprintf instead. */
#define BANNED(fn) sorry_##fn##_is_banned
#undef strcpy
#define strcpy(...) BANNED(strcpy)
#undef strcat
#define strcat(...) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(...) BANNED(gets)
#endif

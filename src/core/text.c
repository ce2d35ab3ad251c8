#include "text.h"

#include <string.h>

#include "banned.h"

/* Base letters of U+00C0..U+00FF, in order; '\0' keeps the character
 * (×, ÷, Æ, æ, Ð, ð, Þ, þ, ß have no single base letter). */
static const char latin1_base[64] = {
	'a', 'a', 'a', 'a', 'a', 'a', 0,   'c', 'e', 'e', 'e', 'e', 'i', 'i', 'i', 'i', /* C0..CF */
	0,   'n', 'o', 'o', 'o', 'o', 'o', 0,   'o', 'u', 'u', 'u', 'u', 'y', 0,   0,   /* D0..DF */
	'a', 'a', 'a', 'a', 'a', 'a', 0,   'c', 'e', 'e', 'e', 'e', 'i', 'i', 'i', 'i', /* E0..EF */
	0,   'n', 'o', 'o', 'o', 'o', 'o', 0,   'o', 'u', 'u', 'u', 'u', 'y', 0,   'y', /* F0..FF */
};

int text_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			p++;
			continue;
		}
		int len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
		if (!len || c > 0xf4 || c == 0xc0 || c == 0xc1 || end - p < len)
			return 0;
		for (int i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
		    (c == 0xf4 && p[1] > 0x8f))
			return 0;
		p += len;
	}
	return 1;
}

char *text_fold(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *out = arena_alloc(a, n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z') {
			out[o++] = (char)(c + 32);
		} else if ((c == 0xc3) && i + 1 < n && ((unsigned char)s[i + 1] & 0xc0) == 0x80) {
			/* U+00C0..U+00FF is C3 80..C3 BF */
			unsigned idx = (unsigned char)s[i + 1] - 0x80;
			char base = latin1_base[idx];
			if (base) {
				out[o++] = base;
			} else {
				out[o++] = (char)c;
				out[o++] = s[i + 1];
			}
			i++;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "banned.h"

int addr_parse(const char *s, size_t len, unsigned char out[16])
{
	char text[ADDR_TEXT_MAX];
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	struct in_addr v4;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

static int is_mapped(const unsigned char a[16])
{
	static const unsigned char prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	return !memcmp(a, prefix, 12);
}

void addr_format(const unsigned char a[16], char out[ADDR_TEXT_MAX])
{
	if (is_mapped(a))
		inet_ntop(AF_INET, a + 12, out, ADDR_TEXT_MAX);
	else
		inet_ntop(AF_INET6, a, out, ADDR_TEXT_MAX);
}

/* One item: an address, or an address, '/', and a prefix length. */
static int parse_item(const char *s, size_t len, struct cidr *c)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	if (addr_parse(s, alen, c->addr))
		return -1;
	int v4 = is_mapped(c->addr) && memchr(s, ':', alen) == NULL;
	int max = v4 ? 32 : 128;
	int bits = max;
	if (slash) {
		const char *p = slash + 1, *end = s + len;
		if (p == end || end - p > 3)
			return -1;
		bits = 0;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			bits = bits * 10 + (*p - '0');
		}
		if (bits > max)
			return -1;
	}
	c->bits = v4 ? bits + 96 : bits;
	/* The host part must be zero: "10.1.2.3/8" is more likely a typo than meant. */
	for (int i = c->bits; i < 128; i++)
		if (c->addr[i / 8] & (0x80 >> (i % 8)))
			return -1;
	return 0;
}

int cidr_parse_list(const char *s, struct cidr *out, int max, char *err, size_t errlen)
{
	int n = 0;
	while (*s) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		size_t len = strcspn(s, ",");
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (!len)
			break;
		if (n == max) {
			snprintf(err, errlen, "at most %d ranges", max);
			return -1;
		}
		if (parse_item(s, len, &out[n])) {
			snprintf(err, errlen, "\"%.*s\" is not an address or a range (a.b.c.d/n, x:y::/n) with a zero host "
				 "part", (int)(len > 60 ? 60 : len), s);
			return -1;
		}
		n++;
		s += len;
		while (*s && *s != ',')
			s++;
	}
	return n;
}

int cidr_match(const struct cidr *list, int n, const unsigned char a[16])
{
	for (int k = 0; k < n; k++) {
		int bits = list[k].bits, full = bits / 8, rest = bits % 8;
		if (memcmp(list[k].addr, a, (size_t)full))
			continue;
		if (rest && ((list[k].addr[full] ^ a[full]) & (unsigned char)(0xff << (8 - rest))))
			continue;
		return 1;
	}
	return 0;
}

#include "forwarded.h"

#include <string.h>
#include <strings.h>

#include "../core/banned.h"

struct hops {
	unsigned char addr[FORWARDED_MAX_HOPS][16];
	int valid[FORWARDED_MAX_HOPS];
	int n;
};

/* "192.0.2.1", "192.0.2.1:8080", "[2001:db8::1]", "[2001:db8::1]:8080" or "2001:db8::1". */
static void add_hop(struct hops *h, const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (h->n == FORWARDED_MAX_HOPS) {
		/* keep the rightmost hops: they are the trusted end of the chain */
		memmove(h->addr[0], h->addr[1], sizeof(h->addr[0]) * (FORWARDED_MAX_HOPS - 1));
		memmove(&h->valid[0], &h->valid[1], sizeof(h->valid[0]) * (FORWARDED_MAX_HOPS - 1));
		h->n--;
	}
	int i = h->n++;
	h->valid[i] = 0;
	if (len && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return;
		size_t after = len - (size_t)(close - s) - 1;
		if (after && close[1] != ':')
			return;
		h->valid[i] = addr_parse(s + 1, (size_t)(close - s) - 1, h->addr[i]) == 0;
		return;
	}
	const char *colon = memchr(s, ':', len);
	if (colon && !memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
		len = (size_t)(colon - s); /* IPv4 with a port */
	h->valid[i] = addr_parse(s, len, h->addr[i]) == 0;
}

/* X-Forwarded-For: addresses separated by commas. */
static void parse_xff(struct hops *h, const char *v)
{
	while (*v) {
		size_t n = strcspn(v, ",");
		add_hop(h, v, n);
		v += n + (v[n] == ',');
	}
}

/* Forwarded: elements separated by commas, pairs by semicolons; the value of
 * for= is a token or a quoted string. Every element adds one hop (without
 * for=, an unknown one). */
static void parse_forwarded(struct hops *h, const char *v)
{
	while (*v) {
		int found = 0;
		const char *elem_end = v;
		/* a comma inside a quoted string does not end the element */
		for (int quoted = 0; *elem_end && (quoted || *elem_end != ','); elem_end++) {
			if (*elem_end == '"')
				quoted = !quoted;
			else if (quoted && *elem_end == '\\' && elem_end[1])
				elem_end++;
		}
		const char *p = v;
		while (p < elem_end) {
			while (p < elem_end && (*p == ' ' || *p == '\t' || *p == ';'))
				p++;
			const char *eq = memchr(p, '=', (size_t)(elem_end - p));
			if (!eq)
				break;
			const char *val = eq + 1, *val_end;
			if (val < elem_end && *val == '"') {
				val++;
				val_end = memchr(val, '"', (size_t)(elem_end - val));
				if (!val_end)
					val_end = elem_end;
			} else {
				val_end = val;
				while (val_end < elem_end && *val_end != ';')
					val_end++;
			}
			if (eq - p == 3 && !strncasecmp(p, "for", 3) && !found) {
				add_hop(h, val, (size_t)(val_end - val));
				found = 1;
			}
			p = val_end;
			while (p < elem_end && *p != ';')
				p++;
		}
		if (!found)
			add_hop(h, "", 0);
		v = *elem_end ? elem_end + 1 : elem_end;
	}
}

int forwarded_client(const struct http_header *headers, int nheaders, const struct cidr *trusted, int ntrusted,
		     unsigned char out[16])
{
	struct hops h;
	h.n = 0;
	int standard = 0;
	for (int i = 0; i < nheaders; i++)
		standard |= !strcasecmp(headers[i].name, "Forwarded");
	for (int i = 0; i < nheaders; i++) {
		if (standard && !strcasecmp(headers[i].name, "Forwarded"))
			parse_forwarded(&h, headers[i].value);
		else if (!standard && !strcasecmp(headers[i].name, "X-Forwarded-For"))
			parse_xff(&h, headers[i].value);
	}
	int got = 0;
	for (int i = h.n - 1; i >= 0 && h.valid[i]; i--) {
		memcpy(out, h.addr[i], 16);
		got = 1;
		if (!cidr_match(trusted, ntrusted, h.addr[i]))
			return 0;
	}
	/* Every readable hop a trusted proxy: the leftmost of them is as near
	 * the client as can be told. */
	return got ? 0 : -1;
}

#ifndef TRANSITD_CIDR_H
#define TRANSITD_CIDR_H
/*
 * Addresses and address ranges (TRUSTED_PROXIES). Every address is held as
 * 16 bytes: IPv6 as it is, IPv4 mapped (::ffff:a.b.c.d), so one comparison
 * serves both; an IPv4 range a.b.c.d/n covers the mapped range /96+n.
 * CPU only, no allocation.
 */
#include <stddef.h>

#define CIDR_MAX 32
#define ADDR_TEXT_MAX 46 /* INET6_ADDRSTRLEN */

struct cidr {
	unsigned char addr[16];
	int bits; /* prefix length over the 16 bytes */
};

/* Parses len bytes of text as an IPv4 or IPv6 address. 0 or -1. */
int addr_parse(const char *s, size_t len, unsigned char out[16]);
/* The usual text of an address (IPv4 dotted for mapped ones). */
void addr_format(const unsigned char a[16], char out[ADDR_TEXT_MAX]);

/* Parses a comma-separated list of addresses or ranges ("10.0.0.0/8,
 * 2001:db8::/32, 192.0.2.7") into out (at most max). Blanks around items
 * are allowed; an empty string is an empty list. The count, or -1 with a
 * message naming the bad item in err. */
int cidr_parse_list(const char *s, struct cidr *out, int max, char *err, size_t errlen);

/* Whether a is inside one of the n ranges. */
int cidr_match(const struct cidr *list, int n, const unsigned char a[16]);

#endif

/* Unit tests for src/core/cidr.c and src/http/forwarded.c: which address is
 * the client behind trusted proxies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/cidr.h"
#include "http/forwarded.h"

static struct cidr list[CIDR_MAX];
static int nlist;

static void trust(const char *s)
{
	char err[160];
	nlist = cidr_parse_list(s, list, CIDR_MAX, err, sizeof(err));
	assert_true(nlist >= 0);
}

static int in(const char *addr)
{
	unsigned char a[16];
	assert_int_equal(addr_parse(addr, strlen(addr), a), 0);
	return cidr_match(list, nlist, a);
}

static void test_cidr(void **state)
{
	(void)state;
	trust(" 10.0.0.0/8 ,192.168.1.7, 2001:db8::/32,::1");
	assert_int_equal(nlist, 4);
	assert_true(in("10.255.0.1"));
	assert_false(in("11.0.0.1"));
	assert_true(in("192.168.1.7"));
	assert_false(in("192.168.1.8"));
	assert_true(in("2001:db8:1::9"));
	assert_false(in("2001:db9::1"));
	assert_true(in("::1"));
	assert_false(in("::2"));
	assert_true(in("::ffff:10.1.2.3")); /* a mapped IPv4 address is that address */
	trust("");
	assert_int_equal(nlist, 0);
	assert_false(in("10.0.0.1"));
	trust("0.0.0.0/0");
	assert_true(in("203.0.113.5"));
	assert_false(in("2001:db8::1"));

	char err[160];
	const char *bad[] = { "10.0.0.0/33", "10.1.2.3/8", "banana", "10.0.0.0/", "10.0.0.0/-1", "::1/129",
			      "1.2.3.4/0x8", "1.2.3", "fe80::1%eth0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cidr_parse_list(bad[i], list, CIDR_MAX, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "fe80::1%eth0"));
}

static const char *client(const char *name, const char *value, const char *name2, const char *value2)
{
	static char text[ADDR_TEXT_MAX];
	struct http_header h[2] = { { name, value }, { name2, value2 } };
	unsigned char a[16];
	if (forwarded_client(h, name2 ? 2 : 1, list, nlist, a))
		return NULL;
	addr_format(a, text);
	return text;
}

static void test_forwarded(void **state)
{
	(void)state;
	trust("10.0.0.0/8");
	/* the rightmost address that is not a trusted proxy */
	assert_string_equal(client("X-Forwarded-For", "198.51.100.7", NULL, NULL), "198.51.100.7");
	assert_string_equal(client("X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.0.0.2", NULL, NULL), "198.51.100.7");
	/* several header lines are one list, in order */
	assert_string_equal(client("x-forwarded-for", "6.6.6.6", "X-Forwarded-For", "203.0.113.1"), "203.0.113.1");
	/* ports and brackets */
	assert_string_equal(client("X-Forwarded-For", "198.51.100.7:5555", NULL, NULL), "198.51.100.7");
	assert_string_equal(client("X-Forwarded-For", "[2001:db8::5]:80", NULL, NULL), "2001:db8::5");
	assert_string_equal(client("X-Forwarded-For", "2001:db8::5", NULL, NULL), "2001:db8::5");
	/* garbage at the right end: nothing trusted vouches for anything */
	assert_null(client("X-Forwarded-For", "198.51.100.7, unknown", NULL, NULL));
	assert_null(client("X-Forwarded-For", "", NULL, NULL));
	/* garbage further left stops the walk at the last good hop */
	assert_string_equal(client("X-Forwarded-For", "junk, 10.0.0.9, 10.0.0.8", NULL, NULL), "10.0.0.9");
	/* Forwarded wins over X-Forwarded-For */
	assert_string_equal(client("X-Forwarded-For", "6.6.6.6", "Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43"),
			    "192.0.2.60");
	assert_string_equal(client("Forwarded", "for=\"[2001:db8:cafe::17]:4711\"", NULL, NULL), "2001:db8:cafe::17");
	assert_string_equal(client("Forwarded", "for=6.6.6.6, for=198.51.100.17;by=x, FOR=10.0.0.1", NULL, NULL),
			    "198.51.100.17");
	assert_string_equal(client("Forwarded", "for=\"1.2.3.4, 5.6.7.8\"", NULL, NULL) ? "x" : "none", "none");
	assert_null(client("Forwarded", "for=_hidden", NULL, NULL));
	assert_null(client("Forwarded", "proto=https", NULL, NULL));
	assert_null(client("Other", "1.2.3.4", NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_forwarded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

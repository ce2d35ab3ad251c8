#ifndef TRANSITD_FORWARDED_H
#define TRANSITD_FORWARDED_H
/*
 * The client behind trusted proxies (TRUSTED_PROXIES). Only a connection
 * whose peer is a trusted proxy has its Forwarded (RFC 7239, preferred when
 * present) or X-Forwarded-For headers read at all. Each proxy appends the
 * address it received the request from, so the list is read from the right:
 * trusted proxies are skipped and the first address that is not one is the
 * client. What lies left of it was written by the client and is ignored,
 * and an entry that is not an address ("unknown", an obfuscated name,
 * garbage) ends the walk, since nothing trusted vouches for what precedes it.
 * CPU only.
 */
#include "../core/cidr.h"
#include "http.h"

#define FORWARDED_MAX_HOPS 64

/* The client's address into out: 0, or -1 when the headers name none (then
 * the peer, the proxy itself, is the client). */
int forwarded_client(const struct http_header *headers, int nheaders, const struct cidr *trusted, int ntrusted,
		     unsigned char out[16]);

#endif

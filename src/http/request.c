/* A request's making and freeing, and the count of those alive. */
#include <sodium.h>
#include <stdlib.h>

#include "../core/xalloc.h"
#include "http.h"
#include "../core/banned.h"

static int inflight;

int request_inflight(void)
{
	return __atomic_load_n(&inflight, __ATOMIC_RELAXED);
}

/* 32 hex digits, unique without a system call: a per-thread random key
 * and counter through a bijective mix. */
static void new_request_id(char out[33])
{
	static __thread uint64_t key[2], n;
	if (!key[0]) {
		randombytes_buf(key, sizeof(key));
		key[0] |= 1;
	}
	n++;
	uint64_t v[2] = { key[0] + n, key[1] ^ (n * 0x9e3779b97f4a7c15ull) };
	for (int i = 0; i < 2; i++) {
		uint64_t z = v[i];
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		v[i] = z ^ (z >> 31);
	}
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		unsigned byte = (unsigned)(v[i / 8] >> (8 * (i % 8))) & 0xff;
		out[2 * i] = hex[byte >> 4];
		out[2 * i + 1] = hex[byte & 15];
	}
	out[32] = '\0';
}

struct request *request_new(void)
{
	struct request *req = xcalloc(1, sizeof(*req));
	arena_init(&req->arena);
	buf_init(&req->body);
	buf_init(&req->res.body);
	req->start_ns = now_ns();
	char *id = arena_alloc(&req->arena, 33);
	new_request_id(id);
	req->request_id = id;
	__atomic_add_fetch(&inflight, 1, __ATOMIC_RELAXED);
	return req;
}

void request_free(struct request *req)
{
	if (req->json)
		json_decref(req->json);
	buf_release(&req->body);
	buf_release(&req->res.body);
	arena_release(&req->arena);
	free(req);
	__atomic_sub_fetch(&inflight, 1, __ATOMIC_RELAXED);
}

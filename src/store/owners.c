#include "owners.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/xalloc.h"
#include "../core/banned.h"

#define LOCKS 64

struct slot {
	int64_t card_id; /* 0: empty */
	int64_t owner;
	uint64_t expires_ms;
};

static struct {
	struct slot *slots;
	size_t mask;
	pthread_mutex_t locks[LOCKS];
	uint64_t drops[LOCKS]; /* generations, per lock */
	int ready;
} M;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static size_t slot_of(int64_t card_id)
{
	uint64_t h = (uint64_t)card_id * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 20) & M.mask;
}

static pthread_mutex_t *lock_of(size_t slot, size_t *which)
{
	*which = slot % LOCKS;
	return &M.locks[*which];
}

void owners_init(size_t slots)
{
	size_t n = 1024;
	while (n < slots)
		n <<= 1;
	M.slots = xcalloc(n, sizeof(*M.slots));
	M.mask = n - 1;
	for (int i = 0; i < LOCKS; i++) {
		pthread_mutex_init(&M.locks[i], NULL);
		M.drops[i] = 0;
	}
	M.ready = 1;
}

void owners_free(void)
{
	if (!M.ready)
		return;
	M.ready = 0;
	for (int i = 0; i < LOCKS; i++)
		pthread_mutex_destroy(&M.locks[i]);
	free(M.slots);
	M.slots = NULL;
}

int owners_get(int64_t card_id, int64_t *owner)
{
	if (!M.ready || card_id <= 0)
		return -1;
	size_t i = slot_of(card_id), l;
	pthread_mutex_t *lock = lock_of(i, &l);
	int rc = -1;
	pthread_mutex_lock(lock);
	struct slot *s = &M.slots[i];
	if (s->card_id == card_id && s->expires_ms > mono_ms()) {
		*owner = s->owner;
		rc = 0;
	}
	pthread_mutex_unlock(lock);
	return rc;
}

uint64_t owners_generation(int64_t card_id)
{
	if (!M.ready)
		return 0;
	size_t l;
	pthread_mutex_t *lock = lock_of(slot_of(card_id), &l);
	pthread_mutex_lock(lock);
	uint64_t g = M.drops[l];
	pthread_mutex_unlock(lock);
	return g;
}

void owners_put(int64_t card_id, int64_t owner, uint64_t generation)
{
	if (!M.ready || card_id <= 0)
		return;
	size_t i = slot_of(card_id), l;
	pthread_mutex_t *lock = lock_of(i, &l);
	pthread_mutex_lock(lock);
	if (M.drops[l] == generation) {
		M.slots[i].card_id = card_id;
		M.slots[i].owner = owner;
		M.slots[i].expires_ms = mono_ms() + OWNERS_TTL_MS;
	}
	pthread_mutex_unlock(lock);
}

void owners_drop(int64_t card_id)
{
	if (!M.ready)
		return;
	size_t i = slot_of(card_id), l;
	pthread_mutex_t *lock = lock_of(i, &l);
	pthread_mutex_lock(lock);
	M.drops[l]++;
	if (M.slots[i].card_id == card_id)
		M.slots[i].card_id = 0;
	pthread_mutex_unlock(lock);
}

void owners_clear(void)
{
	if (!M.ready)
		return;
	for (size_t l = 0; l < LOCKS; l++) {
		pthread_mutex_lock(&M.locks[l]);
		M.drops[l]++;
		for (size_t i = l; i <= M.mask; i += LOCKS)
			M.slots[i].card_id = 0;
		pthread_mutex_unlock(&M.locks[l]);
	}
}

void owners_invalidated(const char *key, const char *prefix)
{
	if (!strcmp(key, "*")) {
		owners_clear();
		return;
	}
	size_t n = strlen(prefix);
	if (strncmp(key, prefix, n) || strncmp(key + n, "card:", 5))
		return;
	const char *p = key + n + 5;
	char *end;
	long long id = strtoll(p, &end, 10);
	if (end != p && id > 0 && !strcmp(end, ":owner"))
		owners_drop(id);
}

#include "lanes.h"

#include <pthread.h>
#include <stdlib.h>

#include "../core/xalloc.h"
#include "../core/banned.h"

#define BUCKETS 1024

/* A lane exists while it has an owner; parked requests chain through
 * request->next (free while a request is away from its I/O thread). */
struct lane {
	struct lane *next;
	int64_t key;
	struct request *head, *tail;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct lane *buckets[BUCKETS];
static long parked;
static unsigned long batches, batched;

static struct lane **find(int64_t key)
{
	struct lane **pp = &buckets[(uint64_t)key * 0x9e3779b97f4a7c15ull >> 54];
	while (*pp && (*pp)->key != key)
		pp = &(*pp)->next;
	return pp;
}

int lanes_enter(int64_t key, struct request *req)
{
	pthread_mutex_lock(&lock);
	struct lane **pp = find(key);
	if (!*pp) {
		struct lane *l = xcalloc(1, sizeof(*l));
		l->key = key;
		*pp = l;
		pthread_mutex_unlock(&lock);
		return 1;
	}
	struct lane *l = *pp;
	req->next = NULL;
	if (l->tail)
		l->tail->next = req;
	else
		l->head = req;
	l->tail = req;
	parked++;
	pthread_mutex_unlock(&lock);
	return 0;
}

int lanes_next(int64_t key, struct request **reqs, int max)
{
	int n = 0;
	pthread_mutex_lock(&lock);
	struct lane **pp = find(key);
	struct lane *l = *pp;
	if (!l) { /* not ours: nothing to take */
		pthread_mutex_unlock(&lock);
		return 0;
	}
	while (l->head && n < max) {
		struct request *r = l->head;
		l->head = r->next;
		r->next = NULL;
		reqs[n++] = r;
	}
	if (!l->head)
		l->tail = NULL;
	parked -= n;
	if (n) {
		batches++;
		batched += (unsigned long)n;
	} else {
		*pp = l->next;
		free(l);
	}
	pthread_mutex_unlock(&lock);
	return n;
}

long lanes_parked(void)
{
	return __atomic_load_n(&parked, __ATOMIC_RELAXED);
}

unsigned long lanes_batches(void)
{
	return __atomic_load_n(&batches, __ATOMIC_RELAXED);
}

unsigned long lanes_batched(void)
{
	return __atomic_load_n(&batched, __ATOMIC_RELAXED);
}

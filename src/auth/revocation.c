/* The in-memory mirror of the Redis revocation set. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/xalloc.h"
#include "auth.h"
#include "../core/banned.h"

#define BUCKETS 1024

struct entry {
	struct entry *next;
	int64_t exp;
	char name[];
};

static struct entry *buckets[BUCKETS];
static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static int current;
static int fail_open;

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

int revocation_is_current(void)
{
	return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

void revocation_set_current(int c)
{
	__atomic_store_n(&current, c, __ATOMIC_RELEASE);
}

void revocation_fail_open(int open)
{
	fail_open = open;
}

/* Drops expired entries of one chain (write lock held). */
static void prune(struct entry **pp, int64_t now)
{
	while (*pp) {
		if ((*pp)->exp <= now) {
			struct entry *dead = *pp;
			*pp = dead->next;
			free(dead);
		} else {
			pp = &(*pp)->next;
		}
	}
}

void revocation_add(const char *name, int64_t exp)
{
	int64_t now = time(NULL);
	if (exp <= now)
		return;
	unsigned b = hash(name);
	size_t n = strlen(name);
	pthread_rwlock_wrlock(&lock);
	prune(&buckets[b], now);
	struct entry *e;
	for (e = buckets[b]; e; e = e->next)
		if (!strcmp(e->name, name))
			break;
	if (e) {
		if (exp > e->exp)
			e->exp = exp;
	} else {
		e = xmalloc(sizeof(*e) + n + 1);
		memcpy(e->name, name, n + 1);
		e->exp = exp;
		e->next = buckets[b];
		buckets[b] = e;
	}
	pthread_rwlock_unlock(&lock);
}

/* 1 revoked, 0 not, -1 unknown (list not current and auth fails closed). */
int revocation_has(const char *name)
{
	int found = 0;
	int64_t now = time(NULL);
	pthread_rwlock_rdlock(&lock);
	for (struct entry *e = buckets[hash(name)]; e; e = e->next)
		if (e->exp > now && !strcmp(e->name, name))
			found = 1;
	pthread_rwlock_unlock(&lock);
	if (found)
		return 1;
	if (!__atomic_load_n(&current, __ATOMIC_ACQUIRE) && !fail_open)
		return -1;
	return 0;
}

void revocation_clear(void)
{
	pthread_rwlock_wrlock(&lock);
	for (int b = 0; b < BUCKETS; b++)
		prune(&buckets[b], INT64_MAX);
	pthread_rwlock_unlock(&lock);
}

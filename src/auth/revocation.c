/* The in-memory mirror of the Redis revocation set. */
#include <pthread.h>
#include <stdio.h>
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
	int64_t since; /* "u:<user>" entries: tokens issued before this (unix ms) are revoked */
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

void revocation_add(const char *member, int64_t exp)
{
	int64_t now = time(NULL);
	if (exp <= now)
		return;
	/* "u:<user>:<cut-off ms>" is kept as "u:<user>" with the latest cut-off. */
	char user[40];
	int64_t since = 0;
	const char *name = member;
	if (!strncmp(member, "u:", 2)) {
		const char *colon = strchr(member + 2, ':');
		char *end;
		if (!colon || (size_t)(colon - member) >= sizeof(user))
			return;
		since = strtoll(colon + 1, &end, 10);
		if (*end || since <= 0)
			return;
		memcpy(user, member, (size_t)(colon - member));
		user[colon - member] = '\0';
		name = user;
	}
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
		if (since > e->since)
			e->since = since;
	} else {
		e = xmalloc(sizeof(*e) + n + 1);
		memcpy(e->name, name, n + 1);
		e->exp = exp;
		e->since = since;
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

int64_t revocation_user_cutoff(int64_t user_id)
{
	char name[32];
	snprintf(name, sizeof(name), "u:%lld", (long long)user_id);
	int64_t since = 0, now = time(NULL);
	pthread_rwlock_rdlock(&lock);
	for (struct entry *e = buckets[hash(name)]; e; e = e->next)
		if (e->exp > now && !strcmp(e->name, name))
			since = e->since;
	pthread_rwlock_unlock(&lock);
	return since;
}

void revocation_each(void (*fn)(const char *member, int64_t exp, void *ctx), void *ctx)
{
	int64_t now = time(NULL);
	char member[96];
	pthread_rwlock_rdlock(&lock);
	for (int b = 0; b < BUCKETS; b++)
		for (struct entry *e = buckets[b]; e; e = e->next) {
			if (e->exp <= now)
				continue;
			if (e->since)
				snprintf(member, sizeof(member), "%s:%lld", e->name, (long long)e->since);
			fn(e->since ? member : e->name, e->exp, ctx);
		}
	pthread_rwlock_unlock(&lock);
}

void revocation_clear(void)
{
	pthread_rwlock_wrlock(&lock);
	for (int b = 0; b < BUCKETS; b++)
		prune(&buckets[b], INT64_MAX);
	pthread_rwlock_unlock(&lock);
}

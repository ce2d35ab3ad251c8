#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <string.h>

#include "auth.h"
#include "../core/banned.h"

/* Argon2id interactive needs 64 MiB per hash: bound how many run at once. */
#define PARALLEL_HASHES 4

static sem_t slots;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

static void init(void)
{
	sem_init(&slots, 0, PARALLEL_HASHES);
	if (crypto_pwhash_str(dummy_hash, "transitd-dummy-password", 23, crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE))
		dummy_hash[0] = '\0'; /* out of memory: verification then fails fast */
}

int password_hash(const char *password, char out[128])
{
	pthread_once(&once, init);
	_Static_assert(crypto_pwhash_STRBYTES <= 128, "hash buffer");
	sem_wait(&slots);
	int rc = crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
				   crypto_pwhash_MEMLIMIT_INTERACTIVE);
	sem_post(&slots);
	return rc ? -1 : 0;
}

int password_verify(const char *hash, const char *password)
{
	pthread_once(&once, init);
	const char *h = hash && *hash ? hash : dummy_hash;
	if (!*h)
		return 0;
	sem_wait(&slots);
	int ok = crypto_pwhash_str_verify(h, password, strlen(password)) == 0;
	sem_post(&slots);
	return ok && h != dummy_hash;
}

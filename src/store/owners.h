#ifndef TRANSITD_OWNERS_H
#define TRANSITD_OWNERS_H
/*
 * Who owns each card, as far as this process has looked: the map that lets
 * an I/O thread answer a rider's own-card read from memory (or refuse
 * another rider's with 404) without a worker or a query.
 *
 * A fixed table of slots, direct-mapped by card id and guarded by 64 locks;
 * a card that lands on a slot in use takes it (the other is looked up again
 * when needed). Entries expire after OWNERS_TTL_MS, and are dropped when the
 * invalidation channel names "card:<id>:owner" (a card blocked, unblocked or
 * given to someone else: card_cache_invalidate). As for the near-cache, a
 * lookup that fills the map takes a generation first, and its answer is
 * kept only if no drop came in between (owners_put).
 */
#include <stddef.h>
#include <stdint.h>

#define OWNERS_TTL_MS (10 * 60 * 1000)

/* slots: rounded up to a power of two. */
void owners_init(size_t slots);
void owners_free(void);

/* 0 with *owner (0: an anonymous card), or -1 when not known. CPU only. */
int owners_get(int64_t card_id, int64_t *owner);
/* Take before looking the owner up in PostgreSQL; pass to owners_put. */
uint64_t owners_generation(int64_t card_id);
void owners_put(int64_t card_id, int64_t owner, uint64_t generation);
void owners_drop(int64_t card_id);
void owners_clear(void);

/* An invalidated cache key (with CACHE_PREFIX): drops the owner when it is
 * "card:<id>:owner", everything when it is "*". */
void owners_invalidated(const char *key, const char *prefix);

#endif

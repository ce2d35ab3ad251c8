#ifndef TRANSITD_REPLICAS_H
#define TRANSITD_REPLICAS_H
/*
 * Read replicas (DATABASE_REPLICA_URLS): which one may serve a read now.
 *
 * A monitor thread samples, every REPLICA_CHECK_MS, the primary's WAL
 * position and each replica's replay position. From the primary's recent
 * positions it estimates each replica's lag in time: how long ago the
 * primary was where the replica is now (0 when the replica has replayed
 * everything the primary had). A replica serves a read when it is up, its
 * lag is at most REPLICA_MAX_LAG_MS, and it has replayed the WAL position
 * the read needs: the commit of the last write that invalidated what is
 * being read (http/cached.c). A read that fails on a replica marks it down
 * until the monitor sees it answer again, and is run again on the primary.
 *
 * WAL positions are PostgreSQL LSNs as 64-bit integers ("16/B374D848" is
 * 0x16B374D848).
 */
#include <stdint.h>

#include "../core/config.h"

#define REPLICA_CHECK_MS 100

struct replica_status {
	const char *url;       /* without a password */
	int up;
	int64_t lag_ms;        /* -1 while unknown */
	uint64_t replay_lsn;
	unsigned long reads;   /* reads it served */
	unsigned long skipped; /* reads sent to the primary instead (lagging, behind the write, or down) */
};

/* Starts the monitor when replicas are configured. 0 or -1 (logged). */
int replicas_start(const struct config *cfg);
void replicas_stop(void);
int replicas_count(void);

/* Whether replica i may serve a read that needs WAL position lsn (0: any);
 * counts the read as served or skipped. */
int replicas_usable(int i, uint64_t lsn);
/* A read failed on replica i: no more reads until the monitor sees it back. */
void replicas_mark_down(int i);
void replicas_status(int i, struct replica_status *out);

/* Parses "X/Y" into a position; 0 when malformed. */
uint64_t lsn_parse(const char *text);

#endif

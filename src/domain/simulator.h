#ifndef TRANSITD_DOMAIN_SIMULATOR_H
#define TRANSITD_DOMAIN_SIMULATOR_H
/*
 * The arrivals simulator behind `transitd simulate`: the vehicle location
 * system of the demo. Each step, in one transaction on the primary:
 *
 *  - arrivals whose time has come are taken away (the vehicle has reached
 *    that stop and moves on along its route);
 *  - a few vehicles, drawn at random, fall behind: every later stop of theirs
 *    moves 30-120 s later and reads "delayed";
 *  - arrivals within two minutes read "arriving";
 *  - each route keeps running at its headway: new arrivals are added at
 *    every stop so that the next hour is always predicted, each run by the
 *    next vehicle of the route's fleet, as the demo seed lays them out.
 *
 * Only one simulator steps at a time (a transaction-scoped advisory lock);
 * another one's step is skipped. The caller invalidates the arrivals of the
 * stations the step changed, which is what makes the live boards move.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

struct simulate_result {
	int skipped;           /* another simulator held the lock */
	long passed, added, delayed, arriving;
	const char *stations;  /* ids of the stations whose arrivals changed, comma-separated (arena) */
	uint64_t lsn;          /* the primary's WAL position after the step */
};

void simulator_register(void);

/* One step; delay_probability is the chance of each active vehicle to fall
 * behind in this step. 0, or -1 with err (503 when the database is down).
 * Blocks on db. */
int simulate_step(struct pg *db, struct arena *a, double delay_probability, struct simulate_result *out,
		  struct api_error *err);

#endif

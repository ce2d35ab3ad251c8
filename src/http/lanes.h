#ifndef TRANSITD_LANES_H
#define TRANSITD_LANES_H
/*
 * Lanes: the writes of one card run one at a time in this process, in
 * arrival order, and the ones waiting hold no worker.
 *
 * Every money write of a card takes the card's row lock, so writes of one
 * card queue there anyway; without lanes they queue holding workers (and
 * their database connections), and a thousand clients paying from one card
 * leave no worker for anyone else. With lanes a worker that picks up a
 * write whose card is busy parks it and goes on with the queue; the worker
 * that owns the lane takes what was parked when it is done, as a batch
 * (route->lane_batch runs a batch as one database call, so a busy card
 * commits once per batch, not once per request). Parked requests count
 * against JOB_QUEUE_SIZE (workers_reserve).
 */
#include <stdint.h>

#include "http.h"

#define LANE_BATCH_MAX 32

/* Enters req into the lane of key: 1 when the lane was free and the caller
 * now owns it (and runs req), 0 when req was parked behind the owner. */
int lanes_enter(int64_t key, struct request *req);
/* For the lane's owner, after each run: up to max parked requests into reqs
 * (oldest first), still owning the lane; 0 when none was left, and the lane
 * is free again. */
int lanes_next(int64_t key, struct request **reqs, int max);

/* Requests parked now, and batches run so far (and the requests in them). */
long lanes_parked(void);
unsigned long lanes_batches(void);
unsigned long lanes_batched(void);

#endif

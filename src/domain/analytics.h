#ifndef TRANSITD_DOMAIN_ANALYTICS_H
#define TRANSITD_DOMAIN_ANALYTICS_H
/*
 * Aggregates for the analytics endpoints. Trip and revenue figures come from
 * trip_stats, which the trip writes keep current (migration 0005), so they
 * cost a sum over 320 rows however many trips there are. Revenue is the sum
 * of fares charged (the ledger's fare entries), so it reconciles with
 * balances; per-locality figures (by boarding station) add up to the totals.
 * Each function writes the API's JSON document into out and returns 0, or
 * -1 with err (503 when the database is down). All block on db.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

void analytics_register(void);

int analytics_trips_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int analytics_trips_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int analytics_revenue(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int analytics_revenue_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* Trips, completions and revenue of each of the last `days` days (1-366) of
 * Bogotá's calendar, oldest first, from trip_days (migration 0010). */
int analytics_trips_daily(struct pg *db, struct arena *a, int days, struct buf *out, struct api_error *err);
/* The ten stations most travelled to from a station (completed trips); 404
 * for an unknown station. */
int analytics_top_destinations(struct pg *db, struct arena *a, int64_t station_id, struct buf *out,
			       struct api_error *err);

#endif

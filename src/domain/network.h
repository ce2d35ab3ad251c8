#ifndef TRANSITD_DOMAIN_NETWORK_H
#define TRANSITD_DOMAIN_NETWORK_H
/*
 * The network: localities, stations, routes, arrivals, alerts. Each
 * function returns 0, or -1 with err (404 for an unknown id, 422 naming a
 * field, 503 when the database is down); the reads and the alert writes
 * write the API's JSON document into out (PostgreSQL builds it). All block
 * on the given connection.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

struct station_filter {
	const char *locality; /* name (any case) or number 1-20, or NULL */
	const char *type;     /* station_type, or NULL */
	int64_t after_id;     /* cursor: stations with a greater id */
	int64_t limit;
};

void network_register(void);

int network_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* A keyset page of stations by id; 422 locality when it names none. */
int network_stations(struct pg *db, struct arena *a, const struct station_filter *f, struct buf *out,
		     struct api_error *err);
int network_station(struct pg *db, struct arena *a, int64_t id, struct buf *out, struct api_error *err);
int network_arrivals(struct pg *db, struct arena *a, int64_t station_id, struct buf *out, struct api_error *err);
int network_alerts(struct pg *db, struct arena *a, int64_t station_id, int active_only, struct buf *out,
		   struct api_error *err);
/* When the station's active alerts change next with no write: the earliest
 * alert start or end still to come (ms since the epoch), 0 when none. */
int network_alerts_next_change(struct pg *db, struct arena *a, int64_t station_id, int64_t *ms,
			       struct api_error *err);
int network_routes(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
int network_route(struct pg *db, struct arena *a, int64_t id, struct buf *out, struct api_error *err);

struct alert {
	const char *severity, *alert_type, *message, *start, *end; /* type, start, end may be NULL */
	int64_t station_id, route_id;                             /* 0 = none */
};
/* Writes the alert document; *stations receives the ids of the stations
 * whose alert lists changed, comma-separated (may be empty). 422
 * station_id / route_id when they name nothing, 422 end_timestamp before
 * the start; alert_end: 404 for an unknown alert. */
int alert_create(struct pg *db, struct arena *a, const struct alert *al, struct buf *out, const char **stations,
		 struct api_error *err);
int alert_end(struct pg *db, struct arena *a, int64_t alert_id, const char *end, struct buf *out,
	      const char **stations, struct api_error *err);

#endif

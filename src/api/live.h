#ifndef TRANSITD_LIVE_H
#define TRANSITD_LIVE_H
/*
 * Live station boards: GET /api/v1/stations/{id}/live, Server-Sent Events
 * (http/evloop.h streams). A stream starts with the station's arrivals and
 * active alerts and then receives them again whenever they change: a write
 * on any instance invalidates the station's cache keys, the invalidation
 * channel tells every instance, and each instance's live thread reads the
 * new document and publishes it to the streams it holds. Arrivals are also
 * sent every LIVE_ARRIVALS_MS, since their minutes-away move with time, and
 * alerts again when one of the station's alerts starts or ends at its set
 * time (no write announces that).
 *
 * Events are whole snapshots: "event: arrivals" or "event: alerts", with
 * "id:" a number that grows (milliseconds). A client that reconnects with
 * Last-Event-ID gets the current snapshots, all newer than what it had.
 */
#include "../core/config.h"
#include "../http/http.h"

#define LIVE_ARRIVALS_MS 10000

int live_start(const struct config *cfg);
void live_stop(void);
/* Hooks: a cache key was invalidated; a stream ended. */
void live_invalidated(const char *key);
void live_stream_closed(const char *topic);

void station_live(struct request *req, struct worker *w);

#endif
